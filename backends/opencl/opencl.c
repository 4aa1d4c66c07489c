/* opencl.c - the OpenCL backend: each segment of nodes on an OpenCL device
 * becomes one blob (runtime/include/moss_bundle.h, "OpenCL segment blob")
 * holding the program in two forms, the launch of each kernel, and the
 * constant weights they read:
 * - OpenCL C 1.2 printed from the nodes' kernel descriptions by the C
 *   backend's printer (backends/c/kprint.c, in its OpenCL dialect: types
 *   from a prelude of typedefs, tables in __constant memory, the outermost
 *   parallel loops as work-items), for every OpenCL device;
 * - the same kernels as SPIR-V 1.0 (Kernel capability), for devices with
 *   cl_khr_il_program: the LLVM backend builds them as a spir64 module
 *   from the same descriptions (backends/llvm, moss_llvm_emit_gpu: the
 *   same launches and work-item counts, the same places in the buffers
 *   below), llvm-spirv-15 translates it and SPIRV-Tools validates it
 *   (translate.c).
 * So an operator is still described once. A segment with a node the SPIR-V
 * form cannot build (moss_llvm_spir_takes: none today, on the GPU's
 * kernel shapes) still compiles: its blob carries no SPIR-V, its OpenCL C
 * starts with a comment naming the node and why, and every device builds
 * it from source.
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
#include "../gpu/segment.h"
#include "../llvm/llvm.h"
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
    if (v && !supported_type(v->dtype) && !(moss_dtype_is_half(v->dtype) && moss_kernel_half_ok(n))) {
      snprintf(why, cap,
               "%s has type %s (OpenCL C 1.2 here: no float64; float16 only in a Cast, or "
               "computed as such where the target lists cl_khr_fp16)", v->name,
               moss_dtype_name(v->dtype));
      return 0;
    }
  }
  return 1;
}

/* A float16 segment's program starts with this, before the prelude (whose
 * #define hides the name half): float16 arithmetic where the device has
 * cl_khr_fp16 (the target lists it: passes/half.c, moss_node.native_half).
 * libmossrt refuses such a program on a device without the extension. */
static const char half_prelude[] =
    "#pragma OPENCL EXTENSION cl_khr_fp16 : enable\ntypedef half moss_f16;\n";

/* The OpenCL C type of |v|'s elements as |n| reads or writes them:
 * float16 itself where |n| computes in it, else the storage type (float16
 * and bfloat16 as their bits). */
static const char *elem_ctype(const moss_node *n, const moss_value *v) {
  if (n->native_half && v->dtype == MOSS_DT_F16) return "moss_f16";
  return moss_dtype_ctype(moss_dtype_storage(v->dtype));
}

/* The OpenCL C expression of |v|'s storage, a pointer to its element type. */
static void storage(moss_gpu_seg *s, const moss_node *n, const moss_value *v, int writable,
                    char *buf, size_t cap) {
  const char *ct = elem_ctype(n, v), *cq = writable ? "" : "const ";
  int t;
  int64_t off;
  switch (moss_gpu_seg_where(s, v, &t, &off)) {
  case MOSS_GPU_TENSOR: snprintf(buf, cap, "(__global %s%s *)moss_t%d", cq, ct, t); break;
  case MOSS_GPU_WEIGHTS: snprintf(buf, cap, "(__global const %s *)(moss_w + %lld)", ct, (long long)off); break;
  case MOSS_GPU_ARENA: snprintf(buf, cap, "(__global %s%s *)(moss_a + %lld)", cq, ct, (long long)off); break;
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

/* One launch of a node (cg->launch) as __kernel void moss_k<k>(a, w,
 * t0..): its bindings, then its kernel description's body; its work-item
 * count into |*out_items|. */
static moss_status emit_node(moss_gpu_seg *s, moss_cgen *cg, moss_buf *src, const moss_node *n, int k, int ntensors,
                             int64_t *out_items) {
  moss_buf body, kscope;
  moss_status st;
  int i;
  char e[160], id[16];
  moss_buf_init(&body, s->ctx);
  moss_buf_init(&kscope, s->ctx);
  cg->out = &body;
  cg->kscope = &kscope;
  cg->indent = 0;
  cg->work_items = 1;
  cg->work_group = 0;
  st = moss_c_emit_kernel(cg, n);
  cg->kscope = NULL;
  if (st == MOSS_OK && (body.failed || kscope.failed)) st = moss_fail(s->ctx, MOSS_E_NOMEM, n, "OpenCL backend");
  if (st != MOSS_OK) {
    moss_buf_deinit(&body);
    moss_buf_deinit(&kscope);
    return st;
  }
  moss_buf_printf(src, "/* node %d '%s' (%s) */\n__kernel void moss_k%d(__global uchar *moss_a, __global const uchar *moss_w",
                  n->id, n->name, n->op_type, k);
  for (i = 0; i < ntensors; i++) moss_buf_printf(src, ", __global uchar *moss_t%d", i);
  moss_buf_printf(src, ") {\n");
  if (n->native_half) /* each float16 product and sum rounded by itself (docs/kernel.md) */
    moss_buf_printf(src, "#pragma OPENCL FP_CONTRACT OFF\n");
  for (i = 0; i < n->ninputs + n->noutputs; i++) {
    int out = i >= n->ninputs;
    const moss_value *v = out ? n->outputs[i - n->ninputs] : n->inputs[i];
    snprintf(id, sizeof id, "%c%d", out ? 'y' : 'x', out ? i - n->ninputs : i);
    if (!v || !body.data || !uses(body.data, id)) continue;
    storage(s, n, v, out, e, sizeof e);
    moss_buf_printf(src, "  __global %s%s *%s = %s;\n", out ? "" : "const ", elem_ctype(n, v), id,
                    e);
  }
  if (kscope.len) moss_buf_put(src, kscope.data, kscope.len);
  moss_buf_printf(src, "  {\n"); /* the body's names may be the parameters' */
  if (body.data) moss_buf_put(src, body.data, body.len);
  moss_buf_printf(src, "  }\n}\n\n");
  moss_buf_deinit(&body);
  moss_buf_deinit(&kscope);
  *out_items = (int64_t)MOSS_GPU_LAUNCH(cg->work_items, cg->work_group);
  return MOSS_OK;
}

/* The SPIR-V form of |nodes| (|*out_words|, |*out_nwords| words; none,
 * with the reason in |note|, when a node is one it cannot build), whose
 * kernels must be the OpenCL C's: the same count and work-items as
 * |items| (|nk| kernels). */
static moss_status spirv_form(moss_gpu_seg *s, const moss_kernel_cpu *facts, moss_node *const *nodes, int nnodes,
                              const int64_t *items, int nk, uint32_t **out_words, size_t *out_nwords, char *note,
                              size_t cap) {
  moss_ctx *ctx = s->ctx;
  moss_llvm_gpu lg;
  moss_buf sitems;
  char *bc = NULL, why[200];
  size_t len = 0;
  int k;
  moss_status st;
  *out_words = NULL;
  *out_nwords = 0;
  note[0] = 0;
  for (k = 0; k < nnodes; k++)
    if (!moss_llvm_spir_takes(ctx, nodes[k], why, sizeof why)) {
      size_t i;
      snprintf(note, cap, "/* moss: no SPIR-V form (every device builds this source): node '%s' (%s): %s",
               nodes[k]->name, nodes[k]->op_type, why);
      for (i = 0; note[i] && note[i + 1]; i++)
        if (note[i] == '*' && note[i + 1] == '/' && i > 0) note[i + 1] = '|'; /* no end of the comment in a name */
      if (strlen(note) + 4 < cap) strcat(note, " */\n");
      return MOSS_OK;
    }
  memset(&lg, 0, sizeof lg);
  lg.triple = "spir64-unknown-unknown";
  lg.nparams = 2 + s->nin + s->nout;
  lg.where = moss_gpu_seg_param;
  lg.table = moss_gpu_seg_table_at;
  lg.user = s;
  lg.facts = *facts;
  moss_buf_init(&sitems, ctx);
  st = moss_llvm_emit_gpu(ctx, s->g, nodes, nnodes, &lg, &sitems, &bc, &len);
  if (st == MOSS_OK && (sitems.len != (size_t)nk * sizeof(int64_t) || memcmp(sitems.data, items, sitems.len)))
    st = moss_fail(ctx, MOSS_E_INTERNAL, nodes[0], "OpenCL backend: the SPIR-V form has other kernels (%zu) than "
                   "the OpenCL C (%d)", sitems.len / sizeof(int64_t), nk);
  if (st == MOSS_OK) st = moss_opencl_spirv(ctx, bc, len, nodes[0], out_words, out_nwords);
  if (bc) moss_free(ctx, bc, len + 1);
  moss_buf_deinit(&sitems);
  return st;
}

moss_status moss_opencl_emit_segment(const moss_backend_device *d, const moss_graph *g,
                                     moss_node *const *nodes, int nnodes, moss_buf *blob,
                                     int **out_in_ids, int *out_nin, int **out_out_ids, int *out_nout) {
  moss_ctx *ctx = d->ctx;
  size_t nv = (size_t)g->nvalues + 1;
  moss_gpu_seg s;
  moss_cgen cg;
  moss_buf src, decls, items;
  moss_arena *karena = NULL;
  unsigned char *emitted = NULL;
  uint32_t *words = NULL;
  size_t nwords = 0;
  char note[400];
  int k, half = 0;
  moss_status st;
  *out_in_ids = *out_out_ids = NULL;
  *out_nin = *out_nout = 0;
  MOSS_TRY(moss_gpu_seg_init(&s, ctx, g, nodes, nnodes, "OpenCL backend"));
  moss_buf_init(&src, ctx);
  moss_buf_init(&decls, ctx);
  moss_buf_init(&items, ctx);
  emitted = moss_alloc(ctx, nv);
  if (moss_arena_create(ctx->alloc, 1 << 16, &karena) != MOSS_OK) karena = NULL;
  if (!emitted || !karena) {
    st = moss_fail(ctx, MOSS_E_NOMEM, nodes[0], "OpenCL backend");
    goto done;
  }
  memset(emitted, 0, nv);
  memset(&cg, 0, sizeof cg);
  cg.ctx = ctx;
  cg.g = (moss_graph *)g;
  cg.prefix = "moss";
  cg.decls = &decls;
  cg.emitted = emitted;
  cg.karena = karena;
  cg.opencl = 1;
  cg.table_at = moss_gpu_seg_table_at;
  cg.table_user = &s;
  moss_backend_device_kernel_cpu(d, &cg.gpu);
  st = MOSS_OK;
  for (k = 0; k < nnodes && st == MOSS_OK; k++) {
    half |= nodes[k]->native_half;
    if (nodes[k]->scratch_bytes > 0) {
      st = moss_fail(ctx, MOSS_E_INTERNAL, nodes[k], "OpenCL backend: a kernel with arena scratch");
      break;
    }
    cg.launch = 0;
    cg.launches = 1;
    do { /* each launch of the node a kernel */
      int64_t n1 = 0;
      st = emit_node(&s, &cg, &src, nodes[k], (int)(items.len / sizeof n1), s.nin + s.nout, &n1);
      moss_buf_put(&items, &n1, sizeof n1);
    } while (st == MOSS_OK && ++cg.launch < cg.launches);
  }
  if (st != MOSS_OK) goto done;
  if (src.failed || decls.failed || items.failed) {
    st = moss_fail(ctx, MOSS_E_NOMEM, nodes[0], "OpenCL backend");
    goto done;
  }
  st = spirv_form(&s, &cg.gpu, nodes, nnodes, (const int64_t *)items.data, (int)(items.len / sizeof(int64_t)), &words,
                  &nwords, note, sizeof note);
  if (st != MOSS_OK) goto done;
  { /* the code: u64 text length, the text, zeros to a multiple of 4 bytes, the SPIR-V words */
    static const char zeros[4];
    unsigned char tl[8];
    const char *hp = half ? half_prelude : "";
    uint64_t text = (uint64_t)(strlen(note) + strlen(hp) + strlen(prelude) + decls.len + src.len);
    const char *parts[8] = {(const char *)tl, note, hp, prelude, decls.data, src.data, zeros,
                            (const char *)words};
    size_t lens[8] = {8, strlen(note), strlen(hp), strlen(prelude), decls.len, src.len,
                      (4 - (size_t)(8 + text) % 4) % 4, 4 * nwords};
    int i;
    for (i = 0; i < 8; i++) tl[i] = (unsigned char)(text >> (8 * i));
    st = moss_gpu_seg_blob(&s, MOSS_OPENCL_BLOB_MAGIC, MOSS_OPENCL_BLOB_VERSION, (const int64_t *)items.data,
                           (int)(items.len / sizeof(int64_t)), parts, lens, 8, blob, nodes[0],
                           out_in_ids, out_nin, out_out_ids, out_nout);
  }
done:
  if (words) moss_free(ctx, words, 4 * nwords);
  moss_free(ctx, emitted, nv);
  moss_buf_deinit(&items);
  if (karena) moss_arena_destroy(karena);
  moss_buf_deinit(&src);
  moss_buf_deinit(&decls);
  moss_gpu_seg_deinit(&s);
  return st;
}
