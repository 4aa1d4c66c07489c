/* opencl.c - the OpenCL backend: each segment of nodes on an OpenCL device
 * becomes one blob (runtime/include/moss_bundle.h, "OpenCL segment blob")
 * holding an OpenCL C 1.2 program printed from the nodes' kernel
 * descriptions, the launch of each kernel, and the constant weights they
 * read. The printer is the C backend's (backends/c/kprint.c, in its OpenCL
 * dialect: types from a prelude of typedefs, tables in __constant memory,
 * the outermost parallel loops as work-items), so an operator is still
 * described once.
 *
 * Memory on the device: each tensor the segment reads from or writes for
 * the rest of the plan (its step's tensors, in the order of the step) is a
 * buffer t<k> of its own; the values that live only inside the segment sit
 * at their planned arena offsets in one device buffer mirroring the arena
 * (a); constants sit in one read-only buffer (w), uploaded once. Every
 * kernel takes (moss_a, moss_w, moss_t0, moss_t1, ...), and binds its inputs and outputs to
 * offsets in them. Kernels run in order on one in-order queue. */
#include <stdio.h>
#include <string.h>

#include "../../compiler/kernel/kernel.h"
#include "../c/cgen.h"
#include "moss_bundle.h"
#include "opencl.h"

/* OpenCL C 1.2 has its own names for the C99 types and math functions the
 * printer writes; the prelude maps them. */
static const char prelude[] =
    "/* moss: OpenCL C 1.2 program */\n"
    "typedef char int8_t;\ntypedef uchar uint8_t;\ntypedef short int16_t;\ntypedef ushort uint16_t;\n"
    "typedef int int32_t;\ntypedef uint uint32_t;\ntypedef long int64_t;\ntypedef ulong uint64_t;\n"
    "#define INT64_C(x) (x##L)\n#define UINT64_C(x) (x##UL)\n"
    "#define INT32_MAX 2147483647\n#define INT32_MIN (-2147483647 - 1)\n"
    "#define MOSS_ALIGNED\n#define half moss_half /* a type in OpenCL C, a name in the printer's C */\n"
    "#define expf exp\n#define logf log\n#define sqrtf sqrt\n#define tanhf tanh\n#define erff erf\n"
    "#define sinf sin\n#define cosf cos\n#define tanf tan\n#define asinf asin\n#define acosf acos\n"
    "#define atanf atan\n#define sinhf sinh\n#define coshf cosh\n#define asinhf asinh\n"
    "#define acoshf acosh\n#define atanhf atanh\n#define floorf floor\n#define ceilf ceil\n"
    "#define rintf rint\n#define truncf trunc\n#define fabsf fabs\n#define log1pf log1p\n"
    "#define powf pow\n#define fmodf fmod\n#define fminf fmin\n#define fmaxf fmax\n#define fmaf fma\n\n";

static int supported_type(moss_dtype dt) {
  switch (dt) {
  case MOSS_DT_F32: case MOSS_DT_I8: case MOSS_DT_U8: case MOSS_DT_I16: case MOSS_DT_U16:
  case MOSS_DT_I32: case MOSS_DT_U32: case MOSS_DT_I64: case MOSS_DT_BOOL:
    return 1;
  default:
    return 0;
  }
}

int moss_opencl_takes(const moss_backend_device *d, const moss_node *n, char *why, size_t cap) {
  int i;
  (void)d;
  if (!moss_kernel_can_lower(n)) {
    snprintf(why, cap, "no kernel description for %s", n->op_type);
    return 0;
  }
  for (i = 0; i < n->ninputs + n->noutputs; i++) {
    const moss_value *v = i < n->ninputs ? n->inputs[i] : n->outputs[i - n->ninputs];
    if (v && !supported_type(v->dtype)) {
      snprintf(why, cap, "%s has type %s (OpenCL C 1.2 here: no float64 or float16)", v->name,
               moss_dtype_name(v->dtype));
      return 0;
    }
  }
  return 1;
}

static const moss_value *root_of(const moss_value *v) {
  while (v->alias) v = v->alias;
  return v;
}

static void put_u32(moss_buf *b, uint32_t v) {
  unsigned char c[4];
  int i;
  for (i = 0; i < 4; i++) c[i] = (unsigned char)(v >> (8 * i));
  moss_buf_put(b, c, 4);
}

static void put_u64(moss_buf *b, uint64_t v) {
  put_u32(b, (uint32_t)v);
  put_u32(b, (uint32_t)(v >> 32));
}

static int in_list(moss_node *const *nodes, int nnodes, const moss_node *n) {
  int k;
  for (k = 0; k < nnodes; k++)
    if (nodes[k] == n) return 1;
  return 0;
}

/* The state of one segment's emission. */
typedef struct seg {
  moss_ctx *ctx;
  const moss_graph *g;
  int *tensor;           /* per value id: its step tensor index k (buffer t<k>), -1: none */
  int64_t *woff;         /* per value id: offset of a constant in w, -1: not placed */
  moss_buf weights;      /* w's bytes */
  int64_t arena_end;     /* the bytes of a the segment touches */
} seg;

/* The OpenCL C expression of |v|'s storage, a pointer to its element type. */
static void storage(seg *s, const moss_value *v, int writable, char *buf, size_t cap) {
  const moss_value *r = root_of(v);
  const char *ct = moss_dtype_ctype(v->dtype), *cq = writable ? "" : "const ";
  if (s->tensor[r->id] >= 0) {
    snprintf(buf, cap, "(__global %s%s *)moss_t%d", cq, ct, s->tensor[r->id]);
  } else if (r->data) {
    if (s->woff[r->id] < 0) {
      static const unsigned char zero[64];
      size_t pad = (64 - s->weights.len % 64) % 64;
      moss_buf_put(&s->weights, zero, pad);
      s->woff[r->id] = (int64_t)s->weights.len;
      moss_buf_put(&s->weights, r->data, moss_value_nbytes(r));
    }
    snprintf(buf, cap, "(__global const %s *)(moss_w + %lld)", ct, (long long)s->woff[r->id]);
  } else {
    int64_t end = r->offset + (int64_t)moss_value_nbytes(r);
    if (end > s->arena_end) s->arena_end = end;
    snprintf(buf, cap, "(__global %s%s *)(moss_a + %lld)", cq, ct, (long long)r->offset);
  }
}

/* Whether the text |t| uses the identifier |id|. */
static int uses(const char *t, const char *id) {
  size_t n = strlen(id);
  const char *p = t;
  while ((p = strstr(p, id)) != NULL) {
    int before = p > t && ((p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= 'A' && p[-1] <= 'Z') ||
                           (p[-1] >= '0' && p[-1] <= '9') || p[-1] == '_');
    char c = p[n];
    int after = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!before && !after) return 1;
    p += n;
  }
  return 0;
}

/* One node as __kernel void moss_k<k>(a, w, t0..): its bindings, then its
 * kernel description's body; its work-item count into |*out_items|. */
static moss_status emit_node(seg *s, moss_cgen *cg, moss_buf *src, const moss_node *n, int k, int ntensors,
                             int64_t *out_items) {
  moss_buf body;
  moss_status st;
  int i;
  char e[160], id[16];
  moss_buf_init(&body, s->ctx);
  cg->out = &body;
  cg->indent = 0;
  cg->work_items = 1;
  st = moss_c_emit_kernel(cg, n);
  if (st == MOSS_OK && body.failed) st = moss_fail(s->ctx, MOSS_E_NOMEM, n, "OpenCL backend");
  if (st != MOSS_OK) {
    moss_buf_deinit(&body);
    return st;
  }
  moss_buf_printf(src, "/* node %d '%s' (%s) */\n__kernel void moss_k%d(__global uchar *moss_a, __global const uchar *moss_w",
                  n->id, n->name, n->op_type, k);
  for (i = 0; i < ntensors; i++) moss_buf_printf(src, ", __global uchar *moss_t%d", i);
  moss_buf_printf(src, ") {\n");
  for (i = 0; i < n->ninputs + n->noutputs; i++) {
    int out = i >= n->ninputs;
    const moss_value *v = out ? n->outputs[i - n->ninputs] : n->inputs[i];
    snprintf(id, sizeof id, "%c%d", out ? 'y' : 'x', out ? i - n->ninputs : i);
    if (!v || !body.data || !uses(body.data, id)) continue;
    storage(s, v, out, e, sizeof e);
    moss_buf_printf(src, "  __global %s%s *%s = %s;\n", out ? "" : "const ", moss_dtype_ctype(v->dtype), id, e);
  }
  moss_buf_printf(src, "  {\n"); /* the body's names may be the parameters' */
  if (body.data) moss_buf_put(src, body.data, body.len);
  moss_buf_printf(src, "  }\n}\n\n");
  moss_buf_deinit(&body);
  *out_items = cg->work_items;
  return MOSS_OK;
}

moss_status moss_opencl_emit_segment(const moss_backend_device *d, const moss_graph *g,
                                     moss_node *const *nodes, int nnodes, moss_buf *blob,
                                     int **out_in_ids, int *out_nin, int **out_out_ids, int *out_nout) {
  moss_ctx *ctx = d->ctx;
  size_t nv = (size_t)g->nvalues + 1;
  seg s;
  moss_cgen cg;
  moss_buf src, decls, launch;
  moss_arena *karena = NULL;
  char *produced = NULL, *needed = NULL;
  int *ins = NULL, *outs = NULL, ni = 0, no = 0, i, k;
  int64_t *items = NULL;
  unsigned char *emitted = NULL;
  moss_status st = MOSS_OK;
  *out_in_ids = *out_out_ids = NULL;
  *out_nin = *out_nout = 0;
  memset(&s, 0, sizeof s);
  s.ctx = ctx;
  s.g = g;
  moss_buf_init(&s.weights, ctx);
  moss_buf_init(&src, ctx);
  moss_buf_init(&decls, ctx);
  moss_buf_init(&launch, ctx);
  produced = moss_alloc(ctx, nv);
  needed = moss_alloc(ctx, nv);
  emitted = moss_alloc(ctx, nv);
  s.tensor = moss_alloc(ctx, sizeof(int) * nv);
  s.woff = moss_alloc(ctx, sizeof(int64_t) * nv);
  ins = moss_alloc(ctx, sizeof(int) * nv);
  outs = moss_alloc(ctx, sizeof(int) * nv);
  items = moss_alloc(ctx, sizeof(int64_t) * (size_t)(nnodes + 1));
  if (moss_arena_create(ctx->alloc, 1 << 16, &karena) != MOSS_OK) karena = NULL;
  if (!produced || !needed || !emitted || !s.tensor || !s.woff || !ins || !outs || !items || !karena) {
    st = moss_fail(ctx, MOSS_E_NOMEM, nodes[0], "OpenCL backend");
    goto done;
  }
  memset(produced, 0, nv);
  memset(needed, 0, nv);
  memset(emitted, 0, nv);
  for (i = 0; i < (int)nv; i++) s.tensor[i] = -1, s.woff[i] = -1;
  /* The step's tensors: the non-constant values read from outside, in
   * order of first use, then the values produced for outside (graph
   * outputs, reads by other nodes), in order of production. */
  for (k = 0; k < nnodes; k++)
    for (i = 0; i < nodes[k]->noutputs; i++)
      if (nodes[k]->outputs[i]) produced[nodes[k]->outputs[i]->id] = 1;
  for (i = 0; i < g->noutputs; i++) needed[g->outputs[i]->id] = 1;
  for (k = 0; k < g->nnodes; k++) {
    const moss_node *n = g->nodes[k];
    if (n->dead || in_list(nodes, nnodes, n)) continue;
    for (i = 0; i < n->ninputs; i++)
      if (n->inputs[i]) needed[n->inputs[i]->id] = 1;
  }
  for (k = 0; k < nnodes; k++)
    for (i = 0; i < nodes[k]->ninputs; i++) {
      const moss_value *v = nodes[k]->inputs[i];
      if (!v || v->data || produced[v->id] || s.tensor[root_of(v)->id] >= 0) continue;
      s.tensor[root_of(v)->id] = ni;
      ins[ni++] = v->id;
    }
  for (k = 0; k < nnodes; k++)
    for (i = 0; i < nodes[k]->noutputs; i++) {
      const moss_value *v = nodes[k]->outputs[i];
      if (!v || !needed[v->id] || s.tensor[root_of(v)->id] >= 0) continue;
      s.tensor[root_of(v)->id] = ni + no;
      outs[no++] = v->id;
    }
  /* The kernels. */
  memset(&cg, 0, sizeof cg);
  cg.ctx = ctx;
  cg.g = (moss_graph *)g;
  cg.prefix = "moss";
  cg.decls = &decls;
  cg.emitted = emitted;
  cg.karena = karena;
  cg.opencl = 1;
  for (k = 0; k < nnodes && st == MOSS_OK; k++) {
    if (nodes[k]->scratch_bytes > 0) {
      st = moss_fail(ctx, MOSS_E_INTERNAL, nodes[k], "OpenCL backend: a kernel with arena scratch");
      break;
    }
    st = emit_node(&s, &cg, &src, nodes[k], k, ni + no, &items[k]);
  }
  if (st != MOSS_OK) goto done;
  if (src.failed || decls.failed || s.weights.failed) {
    st = moss_fail(ctx, MOSS_E_NOMEM, nodes[0], "OpenCL backend");
    goto done;
  }
  /* The blob (moss_bundle.h, "OpenCL segment blob"). */
  moss_buf_put(blob, "MOCL", 4);
  put_u32(blob, MOSS_OPENCL_BLOB_VERSION);
  put_u32(blob, (uint32_t)(ni + no));
  put_u32(blob, (uint32_t)nnodes);
  put_u64(blob, (uint64_t)s.arena_end);
  put_u64(blob, (uint64_t)s.weights.len);
  put_u64(blob, (uint64_t)(strlen(prelude) + decls.len + src.len));
  for (i = 0; i < ni + no; i++) put_u64(blob, moss_value_nbytes(g->values[i < ni ? ins[i] : outs[i - ni]]));
  for (k = 0; k < nnodes; k++) put_u64(blob, (uint64_t)items[k]);
  moss_buf_put(blob, prelude, strlen(prelude));
  if (decls.len) moss_buf_put(blob, decls.data, decls.len);
  if (src.len) moss_buf_put(blob, src.data, src.len);
  if (s.weights.len) moss_buf_put(blob, s.weights.data, s.weights.len);
  if (blob->failed) {
    st = moss_fail(ctx, MOSS_E_NOMEM, nodes[0], "OpenCL backend");
    goto done;
  }
  if (ni && !(*out_in_ids = moss_alloc(ctx, sizeof(int) * (size_t)ni))) st = MOSS_E_NOMEM;
  if (no && !(*out_out_ids = moss_alloc(ctx, sizeof(int) * (size_t)no))) st = MOSS_E_NOMEM;
  if (st != MOSS_OK) {
    moss_free(ctx, *out_in_ids, sizeof(int) * (size_t)ni);
    *out_in_ids = NULL;
    st = moss_fail(ctx, MOSS_E_NOMEM, nodes[0], "OpenCL backend");
    goto done;
  }
  if (ni) memcpy(*out_in_ids, ins, sizeof(int) * (size_t)ni);
  if (no) memcpy(*out_out_ids, outs, sizeof(int) * (size_t)no);
  *out_nin = ni;
  *out_nout = no;
done:
  moss_free(ctx, produced, nv);
  moss_free(ctx, needed, nv);
  moss_free(ctx, emitted, nv);
  moss_free(ctx, s.tensor, sizeof(int) * nv);
  moss_free(ctx, s.woff, sizeof(int64_t) * nv);
  moss_free(ctx, ins, sizeof(int) * nv);
  moss_free(ctx, outs, sizeof(int) * nv);
  moss_free(ctx, items, sizeof(int64_t) * (size_t)(nnodes + 1));
  if (karena) moss_arena_destroy(karena);
  moss_buf_deinit(&s.weights);
  moss_buf_deinit(&src);
  moss_buf_deinit(&decls);
  moss_buf_deinit(&launch);
  return st;
}
