/* cgen.c - the C backend's frame: the file banner, weights as static const
 * arrays, the <name>_run() function with one commented block per node at
 * its planned arena offsets, the public header and the manifest that
 * `moss run` reads. The per-operator code is each node's kernel
 * description, printed by kprint.c. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../compiler/kernel/kernel.h"
#include "cgen.h"
#include "moss_bundle.h"

/* Every node the C backend prints comes from its kernel description. */
static moss_status (*emitter(const moss_node *n))(moss_cgen *, const moss_node *) {
  if (n->op <= MOSS_OP_UNKNOWN_ || n->op >= MOSS_OP_COUNT_) return NULL;
  return moss_kernel_can_lower(n) ? moss_c_emit_kernel : NULL;
}

void moss_c_line(moss_cgen *cg, const char *fmt, ...) {
  va_list ap;
  char tmp[2048];
  int i;
  for (i = 0; i < cg->indent + 2; i++) moss_buf_put(cg->out, "  ", 2);
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  moss_buf_printf(cg->out, "%s\n", tmp);
}

void moss_c_open(moss_cgen *cg, const char *fmt, ...) {
  va_list ap;
  char tmp[2048];
  int i;
  for (i = 0; i < cg->indent + 2; i++) moss_buf_put(cg->out, "  ", 2);
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  moss_buf_printf(cg->out, "%s {\n", tmp);
  cg->indent++;
}

void moss_c_close(moss_cgen *cg) {
  int i;
  cg->indent--;
  for (i = 0; i < cg->indent + 2; i++) moss_buf_put(cg->out, "  ", 2);
  moss_buf_put(cg->out, "}\n", 2);
}

const char *moss_c_lit_f64(moss_dtype dt, double v, char *buf, size_t cap) {
  if (dt != MOSS_DT_F32 && dt != MOSS_DT_F64) {
    if (dt == MOSS_DT_BOOL) return snprintf(buf, cap, "%d", v != 0), buf;
    return moss_c_lit_i64(dt, isfinite(v) ? (int64_t)v : 0, buf, cap);
  }
  if (isnan(v)) snprintf(buf, cap, dt == MOSS_DT_F32 ? "NAN" : "((double)NAN)");
  else if (isinf(v))
    snprintf(buf, cap, "%s%s", v < 0 ? "-" : "", dt == MOSS_DT_F32 ? "INFINITY" : "((double)INFINITY)");
  else {
    char *p;
    if (dt == MOSS_DT_F32) snprintf(buf, cap, "%.9g", (double)(float)v);
    else snprintf(buf, cap, "%.17g", v);
    for (p = buf; *p && *p != '.' && *p != 'e'; p++) {}
    if (!*p) strncat(buf, ".0", cap - strlen(buf) - 1);
    if (dt == MOSS_DT_F32) strncat(buf, "f", cap - strlen(buf) - 1);
  }
  return buf;
}

const char *moss_c_lit_i64(moss_dtype dt, int64_t v, char *buf, size_t cap) {
  switch (dt) {
  case MOSS_DT_I64:
    if (v == INT64_MIN) snprintf(buf, cap, "(-INT64_C(9223372036854775807) - 1)");
    else snprintf(buf, cap, "INT64_C(%lld)", (long long)v);
    break;
  case MOSS_DT_U64: snprintf(buf, cap, "UINT64_C(%llu)", (unsigned long long)v); break;
  case MOSS_DT_U32: snprintf(buf, cap, "%lluu", (unsigned long long)(uint32_t)v); break;
  case MOSS_DT_I32:
    if ((int32_t)v == INT32_MIN) snprintf(buf, cap, "(-2147483647 - 1)");
    else snprintf(buf, cap, "%ld", (long)(int32_t)v);
    break;
  case MOSS_DT_F32: case MOSS_DT_F64: return moss_c_lit_f64(dt, (double)v, buf, cap);
  case MOSS_DT_BOOL: snprintf(buf, cap, "%d", v != 0); break;
  default: snprintf(buf, cap, "%lld", (long long)v); break;
  }
  return buf;
}

const char *moss_c_lit_elem(const moss_value *v, int64_t i, char *buf, size_t cap) {
  if (moss_dtype_is_half(v->dtype)) /* stored as its bits */
    return snprintf(buf, cap, "%u", (unsigned)((const uint16_t *)v->data)[i]), buf;
  if (moss_dtype_is_float(v->dtype)) return moss_c_lit_f64(v->dtype, moss_value_get_f64(v, i), buf, cap);
  if (v->dtype == MOSS_DT_U64)
    return snprintf(buf, cap, "UINT64_C(%llu)", (unsigned long long)((const uint64_t *)v->data)[i]), buf;
  return moss_c_lit_i64(v->dtype, moss_value_get_i64(v, i), buf, cap);
}






void moss_c_identifier(char *dst, size_t cap, const char *src) {
  moss_identifier_emit(dst, cap, src);
}

static const moss_value *root_of(const moss_value *v) {
  while (v->alias) v = v->alias;
  return v;
}

static void weight_name(const moss_cgen *cg, char *buf, size_t cap, const moss_value *v) {
  char s[40];
  moss_c_identifier(s, sizeof s, v->name);
  if (cg->wfile) snprintf(buf, cap, "%s_w%d_%s", cg->prefix, v->id, s);
  else snprintf(buf, cap, "w%d_%s", v->id, s);
}

/* Defines the weight array of constant |v| at file scope, once. */
static void emit_weight(moss_cgen *cg, const moss_value *v) {
  char name[64], lit[64];
  int64_t i, n = moss_value_numel(v);
  const char *ct = moss_dtype_ctype(moss_dtype_storage(v->dtype));
  if (cg->emitted[v->id]) return;
  cg->emitted[v->id] = 1;
  moss_buf *out = cg->wfile ? cg->wfile : cg->decls;
  weight_name(cg, name, sizeof name, v);
  if (cg->wfile)
    moss_buf_printf(cg->decls, "extern const %s %s[%lld];\n", ct, name, (long long)(n > 0 ? n : 1));
  moss_buf_printf(out, "/* '%s' %s */\n%sconst %s %s[%lld] MOSS_ALIGNED = {", v->name,
                  moss_value_type_str(v, lit, sizeof lit), cg->wfile ? "" : "static ", ct, name,
                  (long long)(n > 0 ? n : 1));
  if (n <= 0) moss_buf_printf(out, "0");
  for (i = 0; i < n; i++) {
    if (i % 8 == 0) moss_buf_printf(out, "\n ");
    moss_buf_printf(out, " %s%s", moss_c_lit_elem(v, i, lit, sizeof lit), i + 1 < n ? "," : "");
  }
  moss_buf_printf(out, "\n};\n\n");
}

/* The C expression of |v|'s storage, typed as a pointer to its element. */
static void storage_expr(moss_cgen *cg, const moss_value *v, int writable, char *buf, size_t cap) {
  const moss_value *r = root_of(v);
  const char *ct = moss_dtype_ctype(moss_dtype_storage(v->dtype));
  if (r->input_index >= 0)
    snprintf(buf, cap, "(const %s *)in[%d]", ct, r->input_index);
  else if (r->output_index >= 0)
    snprintf(buf, cap, "(%s *)out[%d]", ct, r->output_index);
  else if (r->data) {
    char name[64];
    emit_weight(cg, r);
    weight_name(cg, name, sizeof name, r);
    if (r->dtype == v->dtype) snprintf(buf, cap, "%s", name);
    else snprintf(buf, cap, "(const %s *)(const void *)%s", ct, name);
  } else
    snprintf(buf, cap, "(%s *)(a + %lld)", ct, (long long)r->offset);
  (void)writable;
}

static int uses_ident(const char *text, const char *id) {
  size_t n = strlen(id);
  const char *p = text;
  while ((p = strstr(p, id)) != NULL) {
    int before = p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_');
    int after = isalnum((unsigned char)p[n]) || p[n] == '_';
    if (!before && !after) return 1;
    p += n;
  }
  return 0;
}

static const char *where_str(const moss_value *v, char *buf, size_t cap) {
  const moss_value *r = root_of(v);
  if (r->input_index >= 0) snprintf(buf, cap, "in%d", r->input_index);
  else if (r->output_index >= 0) snprintf(buf, cap, "out%d", r->output_index);
  else if (r->data) snprintf(buf, cap, "const");
  else snprintf(buf, cap, "a+%lld", (long long)r->offset);
  return buf;
}

/* Whether output |y| of |n| may share memory with one of its inputs (an
 * in-place view, or overlapping arena ranges): then it is no restrict
 * pointer. Otherwise the compiler may assume the output aliases nothing
 * the node reads, as the planner guarantees. */
static int shares_storage(const moss_node *n, const moss_value *y) {
  const moss_value *ry = root_of(y);
  int i;
  for (i = 0; i < n->ninputs; i++) {
    const moss_value *x = n->inputs[i], *rx;
    if (!x) continue;
    rx = root_of(x);
    if (rx == ry) return 1;
    if (rx->offset >= 0 && ry->offset >= 0 && rx->input_index < 0 && rx->output_index < 0 && !rx->data &&
        ry->input_index < 0 && ry->output_index < 0 && rx->offset < ry->offset + (int64_t)moss_value_nbytes(ry) &&
        ry->offset < rx->offset + (int64_t)moss_value_nbytes(rx))
      return 1;
  }
  return 0;
}

static moss_status emit_node(moss_cgen *cg, moss_buf *fn, const moss_node *n) {
  moss_buf body;
  moss_buf *saved = cg->out;
  moss_status st;
  int i, k;
  char t[160], w[64], e[256], id[16];
  moss_buf_init(&body, cg->ctx);
  cg->out = &body;
  cg->indent = 0;
  st = emitter(n)(cg, n);
  cg->out = saved;
  if (st == MOSS_OK && body.failed) st = moss_fail(cg->ctx, MOSS_E_NOMEM, n, "generated code");
  if (st != MOSS_OK) {
    moss_buf_deinit(&body);
    return st;
  }
  moss_buf_printf(fn, "  /* node %d '%s' (%s):", n->id, n->name, n->op_type);
  for (i = 0, k = 0; i < n->ninputs; i++)
    if (n->inputs[i])
      moss_buf_printf(fn, "%s %s %s", k++ ? "," : "", moss_value_type_str(n->inputs[i], t, sizeof t),
                      where_str(n->inputs[i], w, sizeof w));
  moss_buf_printf(fn, " ->");
  for (i = 0, k = 0; i < n->noutputs; i++)
    if (n->outputs[i])
      moss_buf_printf(fn, "%s %s %s", k++ ? "," : "", moss_value_type_str(n->outputs[i], t, sizeof t),
                      where_str(n->outputs[i], w, sizeof w));
  moss_buf_printf(fn, " */\n  {\n");
  for (i = 0; i < n->ninputs; i++) {
    const moss_value *v = n->inputs[i];
    snprintf(id, sizeof id, "x%d", i);
    if (!v || !body.data || !uses_ident(body.data, id)) continue;
    if (!moss_dtype_ctype(moss_dtype_storage(v->dtype))) {
      moss_buf_deinit(&body);
      return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "input '%s' has type %s", v->name,
                       moss_dtype_name(v->dtype));
    }
    storage_expr(cg, v, 0, e, sizeof e);
    moss_buf_printf(fn, "    const %s *x%d = %s;\n", moss_dtype_ctype(moss_dtype_storage(v->dtype)), i, e);
  }
  for (i = 0; i < n->noutputs; i++) {
    const moss_value *v = n->outputs[i];
    snprintf(id, sizeof id, "y%d", i);
    if (!v || !body.data || !uses_ident(body.data, id)) continue;
    if (!moss_dtype_ctype(moss_dtype_storage(v->dtype))) {
      moss_buf_deinit(&body);
      return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "output '%s' has type %s", v->name,
                       moss_dtype_name(v->dtype));
    }
    storage_expr(cg, v, 1, e, sizeof e);
    moss_buf_printf(fn, "    %s *%sy%d = %s;\n", moss_dtype_ctype(moss_dtype_storage(v->dtype)),
                    shares_storage(n, v) ? "" : "restrict ", i, e);
  }
  if (body.data) moss_buf_put(fn, body.data, body.len);
  moss_buf_printf(fn, "  }\n");
  moss_buf_deinit(&body);
  return MOSS_OK;
}

static void upper(char *dst, size_t cap, const char *src) {
  size_t n = 0;
  for (; *src && n + 1 < cap; src++) dst[n++] = (char)toupper((unsigned char)*src);
  dst[n] = 0;
}

static int64_t arena_bytes(const moss_graph *g) {
  int64_t end = 0;
  int i;
  for (i = 0; i < g->nvalues; i++) {
    const moss_value *v = g->values[i];
    if (!v->alias && v->offset >= 0 && v->offset + (int64_t)moss_value_nbytes(v) > end)
      end = v->offset + (int64_t)moss_value_nbytes(v);
  }
  for (i = 0; i < g->nnodes; i++) { /* the kernels' scratch */
    const moss_node *n = g->nodes[i];
    if (n->scratch_bytes > 0 && n->scratch_offset + n->scratch_bytes > end)
      end = n->scratch_offset + n->scratch_bytes;
  }
  return (end + 63) / 64 * 64;
}

static void dims_text(moss_buf *b, const moss_value *v) {
  int k;
  for (k = 0; k < v->rank; k++) moss_buf_printf(b, "%s%lld", k ? ", " : "", (long long)v->dims[k]);
  if (v->rank == 0) moss_buf_printf(b, "1");
}

int moss_c_can_emit(const moss_node *n) {
  return emitter(n) != NULL;
}

moss_status moss_c_emit(moss_ctx *ctx, moss_graph *g, const char *prefix, const char *dir,
                        const char *source_hash, const char *target_name) {
  return moss_c_emit_segments(ctx, g, prefix, dir, source_hash, target_name, NULL, 0, NULL, 0);
}

/* Appends one function of the segmented form to |file|. */
static void segment_fn(moss_buf *file, const char *p, int k, const moss_buf *body) {
  moss_buf_printf(file,
                  "\nint %s_seg%d(const void *const *in, void *const *out, void *arena, "
                  "const void *par) {\n"
                  "  unsigned char *a = (unsigned char *)arena;\n"
                  "  (void)in;\n  (void)out;\n  (void)a;\n  (void)par; /* C runs its loops on one thread */\n",
                  p, k);
  if (body->data) moss_buf_put(file, body->data, body->len);
  moss_buf_printf(file, "  return 0;\n}\n");
}

/* The segmented form's moss_figures (runtime/include/moss_bundle.h,
 * moss_bundle_figures): the |n| bytes at |fig| the bundle writer made, as
 * 64-bit little-endian words, then the segment functions in order. */
static void figures_text(moss_buf *file, const char *p, const unsigned char *seg_is_c, int nseg,
                         const uint8_t *fig, size_t n) {
  size_t i, nw = n / 8;
  int k, nent = 0;
  for (k = 0; k < nseg; k++) nent += seg_is_c[k] != 0;
  moss_buf_printf(file,
                  "\n/* What this code was compiled for: the bundle's arena, tensors, steps and\n"
                  " * tensor references, then the entry points in the order the plan calls\n"
                  " * them. libmossrt refuses a bundle whose metadata or plan says otherwise\n"
                  " * (moss_bundle.h, moss_bundle_figures). */\n"
                  "const struct {\n  uint64_t figures[%zu];\n"
                  "  int (*entries[%d])(const void *const *, void *const *, void *, const void *);\n"
                  "} " MOSS_BUNDLE_FIGURES_SYMBOL " = {\n  {",
                  nw ? nw : 1, nent ? nent : 1);
  for (i = 0; i < nw; i++) {
    uint64_t w = 0;
    int b;
    for (b = 7; b >= 0; b--) w = w << 8 | fig[i * 8 + (size_t)b];
    moss_buf_printf(file, "%sUINT64_C(0x%016llx)", i == 0 ? "" : i % 3 ? ", " : ",\n   ",
                    (unsigned long long)w);
  }
  moss_buf_printf(file, "%s},\n  {", nw ? "" : "0");
  for (k = 0, i = 0; k < nseg; k++)
    if (seg_is_c[k]) moss_buf_printf(file, "%s%s_seg%d", i++ ? ", " : "", p, k);
  moss_buf_printf(file, "%s}\n};\n", nent ? "" : "0");
}

/* Graph outputs that no node writes (a constant or a graph input) are
 * copied into place. */
static moss_status output_copies(moss_cgen *cg, moss_buf *fn) {
  moss_graph *g = cg->g;
  int i;
  for (i = 0; i < g->noutputs; i++) {
    const moss_value *v = g->outputs[i];
    char e[256];
    if (v->producer) continue;
    if (!moss_dtype_ctype(moss_dtype_storage(v->dtype)))
      return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, NULL, "output '%s' has type %s", v->name,
                       moss_dtype_name(v->dtype));
    if (v->data) {
      char name[64];
      emit_weight(cg, v);
      weight_name(cg, name, sizeof name, v);
      snprintf(e, sizeof e, "%s", name);
    } else {
      snprintf(e, sizeof e, "in[%d]", v->input_index);
    }
    moss_buf_printf(fn, "  /* graph output %d '%s' is not computed: copy it */\n", i, v->name);
    moss_buf_printf(fn, "  memcpy(out[%d], %s, %zu);\n", i, e, moss_value_nbytes(v));
  }
  return MOSS_OK;
}

/* The text of <name>.h: the standalone form's entry points, or with
 * |seg_is_c| the functions of the segmented form. */
static void header_text(const moss_graph *g, const char *p, const char *src_name, const char *source_hash,
                        const char *target_name, const unsigned char *seg_is_c, int nseg, moss_buf *out) {
  moss_buf *hdr_ = out;
  char P[128], t[160];
  int i;
  int64_t arena = arena_bytes(g);
  upper(P, sizeof P, p);
  /* <name>.h */
  moss_buf_printf(hdr_,
                  "/* %s.h - generated by moss %s from %s (sha256 %s),\n"
                  " * target %s. Do not edit. */\n"
                  "#ifndef %s_H\n#define %s_H\n\n#include <stddef.h>\n#include <stdint.h>\n\n"
                  "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
                  "/* Scratch memory for %s_run(): caller-owned, 64-byte aligned. */\n"
                  "#define %s_ARENA_BYTES %lldu\n#define %s_NUM_INPUTS %d\n"
                  "#define %s_NUM_OUTPUTS %d\n\n",
                  p, MOSS_VERSION, src_name, source_hash, target_name, P, P, p,
                  P, (long long)arena, P, g->ninputs, P, g->noutputs);
  if (g->batch)
    moss_buf_printf(hdr_,
                    "/* Batched: the model's only open dimension was its batch axis, and this\n"
                    " * code is for batch 1 (axis 0 of every input and output below is 1). A\n"
                    " * batch of N is N calls, call j on slice j of that axis of every input\n"
                    " * and output (_NUMEL elements apart). */\n"
                    "#define %s_BATCH_AXIS 0\n\n", P);
  for (i = 0; i < g->ninputs + g->noutputs; i++) {
    const moss_value *v = i < g->ninputs ? g->inputs[i] : g->outputs[i - g->ninputs];
    const char *kind = i < g->ninputs ? "IN" : "OUT";
    int k = i < g->ninputs ? i : i - g->ninputs;
    moss_buf_printf(hdr_, "/* %s '%s' */\n#define %s_%s%d_RANK %d\n#define %s_%s%d_DIMS ",
                    moss_value_type_str(v, t, sizeof t), v->name, P, kind, k, v->rank, P, kind, k);
    dims_text(hdr_, v);
    moss_buf_printf(hdr_, "\n#define %s_%s%d_NUMEL %lldu\n\n", P, kind, k,
                    (long long)moss_value_numel(v));
    if (i >= g->ninputs && v->bounded && v->length)
      moss_buf_printf(hdr_,
                      "/* The run decides the length of axis %d of output %d\n"
                      " * (docs/dynamic-shapes.md): _DIMS holds its bound there. After a run it\n"
                      " * is the int64_t at arena + %s_OUT%d_LENGTH_OFFSET, and the output's\n"
                      " * data is compact: a tensor of that shape at the start of the buffer. */\n"
                      "#define %s_OUT%d_BOUNDED_AXIS %d\n#define %s_OUT%d_LENGTH_OFFSET %lldu\n\n",
                      v->bounded - 1, k, P, k, P, k, v->bounded - 1, P, k,
                      (long long)v->length->offset);
  }
  for (i = 0; i < g->ngroups; i++) {
    const struct moss_group *gr = &g->groups[i];
    moss_buf_printf(hdr_,
                    "/* Output %d of the model, '%s', is %s%s: outputs %d to %d above hold its\n"
                    " * %d element%s, in order (docs/sequences.md). */\n"
                    "#define %s_GROUP%d_POSITION %d\n#define %s_GROUP%d_FIRST %d\n#define %s_GROUP%d_COUNT %d\n\n",
                    gr->position, gr->name,
                    gr->kind == MOSS_LIST_OPTIONAL ? (gr->absent ? "an empty optional" : "an optional") : "a sequence",
                    gr->kind == MOSS_LIST_OPTIONAL && gr->optional_of_sequence ? " of a sequence" : "", gr->first,
                    gr->first + gr->count - 1, gr->count, gr->count == 1 ? "" : "s", P, i, gr->position, P, i,
                    gr->first, P, i, gr->count);
  }
  if (seg_is_c) {
    moss_buf_printf(hdr_, "/* The parts of one inference that run on the CPU, in the order the plan\n"
                          " * of the bundle calls them with the other devices' steps between\n"
                          " * (|par|: the runtime's thread pool, which C code does not use). */\n");
    for (i = 0; i < nseg; i++)
      if (seg_is_c[i])
        moss_buf_printf(hdr_, "int %s_seg%d(const void *const *in, void *const *out, void *arena, "
                        "const void *par);\n", p, i);
    moss_buf_printf(hdr_, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
  } else {
  moss_buf_printf(hdr_, "/* Runs one inference. Not reentrant on the same arena; no allocation.\n"
                        " * Returns 0. */\nint %s_run(", p);
  for (i = 0; i < g->ninputs; i++)
    moss_buf_printf(hdr_, "const %s *in%d, ", moss_dtype_ctype(moss_dtype_storage(g->inputs[i]->dtype)), i);
  for (i = 0; i < g->noutputs; i++)
    moss_buf_printf(hdr_, "%s *out%d, ", moss_dtype_ctype(moss_dtype_storage(g->outputs[i]->dtype)), i);
  moss_buf_printf(hdr_,
                  "void *arena);\n\n/* The same, with inputs and outputs in arrays (in graph order). */\n"
                  "int %s_run_v(const void *const *in, void *const *out, void *arena);\n\n"
                  "#ifdef __cplusplus\n}\n#endif\n\n#endif\n",
                  p);
  }

}

/* The text of <name>.manifest; |extra| (may be NULL) is one more line. */
static void manifest_text(const moss_graph *g, const char *p, const char *extra, moss_buf *out) {
  moss_buf *man_ = out;
  int i;
  int64_t arena = arena_bytes(g);
  /* <name>.manifest: what `moss run` needs, one fact per line. */
  moss_buf_printf(man_, "moss-c 1\nname %s\narena %lld\n", p, (long long)arena);
  if (extra) moss_buf_printf(man_, "%s\n", extra);
  if (g->batch) moss_buf_printf(man_, "batch 0\n"); /* runs over slices of axis 0 */
  for (i = 0; i < g->ninputs + g->noutputs; i++) {
    const moss_value *v = i < g->ninputs ? g->inputs[i] : g->outputs[i - g->ninputs];
    int k;
    moss_buf_printf(man_, "%s %d %d %d", i < g->ninputs ? "input" : "output",
                    i < g->ninputs ? i : i - g->ninputs, (int)v->dtype, v->rank);
    for (k = 0; k < v->rank; k++) moss_buf_printf(man_, " %lld", (long long)v->dims[k]);
    moss_buf_printf(man_, " %s\n", v->name);
  }
  /* group <model output> <kind> <first output> <count> <flags> <element type> (docs/sequences.md) */
  for (i = 0; i < g->ngroups; i++)
    moss_buf_printf(man_, "group %d %d %d %d %d %d\n", g->groups[i].position, (int)g->groups[i].kind,
                    g->groups[i].first, g->groups[i].count,
                    g->groups[i].optional_of_sequence | g->groups[i].absent << 1, (int)g->groups[i].elem);
  for (i = 0; i < g->noutputs; i++) /* bound <output> <axis> <arena offset of its length> */
    if (g->outputs[i]->bounded && g->outputs[i]->length)
      moss_buf_printf(man_, "bound %d %d %lld\n", i, g->outputs[i]->bounded - 1,
                      (long long)g->outputs[i]->length->offset);

}

void moss_c_header_emit(const moss_graph *g, const char *prefix, const char *src_name,
                        const char *source_hash, const char *target_name, moss_buf *out) {
  char p[128];
  moss_c_identifier(p, sizeof p, prefix);
  header_text(g, p, src_name, source_hash, target_name, NULL, 0, out);
}

void moss_c_manifest_emit(const moss_graph *g, const char *prefix, const char *extra, moss_buf *out) {
  char p[128];
  moss_c_identifier(p, sizeof p, prefix);
  manifest_text(g, p, extra, out);
}

moss_status moss_c_emit_segments(moss_ctx *ctx, moss_graph *g, const char *prefix,
                                 const char *dir, const char *source_hash,
                                 const char *target_name, const unsigned char *seg_is_c,
                                 int nseg, const uint8_t *figures, size_t nfigures) {
  moss_cgen cg;
  moss_buf fn, decls, file, hdr, man, wfile, segs;
  int cur_seg = -1, first_c = -1;
  char p[128], path[4096];
  moss_status st = MOSS_OK;
  int i;
  const char *src_name = ctx->file ? ctx->file : "?";

  if (strrchr(src_name, '/')) src_name = strrchr(src_name, '/') + 1;

  moss_c_identifier(p, sizeof p, prefix);
  memset(&cg, 0, sizeof cg);
  cg.ctx = ctx;
  cg.g = g;
  cg.prefix = p;
  cg.emitted = moss_alloc(ctx, (size_t)g->nvalues + 1);
  if (!cg.emitted) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "C backend");
  if (moss_arena_create(ctx->alloc, 1 << 16, &cg.karena) != MOSS_OK) {
    moss_free(ctx, cg.emitted, (size_t)g->nvalues + 1);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "C backend");
  }
  moss_buf_init(&fn, ctx);
  moss_buf_init(&decls, ctx);
  moss_buf_init(&file, ctx);
  moss_buf_init(&hdr, ctx);
  moss_buf_init(&man, ctx);
  moss_buf_init(&segs, ctx);
  cg.decls = &decls;
  {
    size_t wbytes = 0;
    for (i = 0; i < g->nvalues; i++)
      if (g->values[i]->data && !g->values[i]->producer) wbytes += moss_value_nbytes(g->values[i]);
    moss_buf_init(&wfile, ctx);
    if (wbytes > MOSS_C_WEIGHTS_FILE_BYTES) cg.wfile = &wfile;
  }

  if (seg_is_c) {
    /* One function per C segment; copies of constants and inputs into
     * outputs depend on nothing, so the first C segment does them. */
    for (i = 0; i < nseg; i++)
      if (seg_is_c[i] && first_c < 0) first_c = i;
    for (i = 0; i < g->noutputs; i++)
      if (!g->outputs[i]->producer && first_c < 0)
        st = moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                       "output '%s' is a copy of a constant or an input, and no device of the "
                       "target runs C code to copy it", g->outputs[i]->name);
    if (st == MOSS_OK) st = output_copies(&cg, &fn);
  }
  for (i = 0; i < g->nnodes && st == MOSS_OK; i++) {
    const moss_node *n = g->nodes[i];
    if (seg_is_c && (n->segment < 0 || n->segment >= nseg || !seg_is_c[n->segment])) continue;
    moss_progress(ctx, "C code", i, g->nnodes);
    if (seg_is_c && n->segment != cur_seg) {
      if (cur_seg >= 0) {
        segment_fn(&segs, p, cur_seg, &fn);
        moss_buf_deinit(&fn);
        moss_buf_init(&fn, ctx);
      }
      cur_seg = n->segment;
    }
    if (!moss_c_can_emit(n))
      st = moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "the C backend has no code for this operator");
    else
      st = emit_node(&cg, &fn, n);
  }
  if (seg_is_c && st == MOSS_OK && cur_seg < 0 && first_c >= 0) cur_seg = first_c;
  if (seg_is_c && st == MOSS_OK && cur_seg >= 0) {
    segment_fn(&segs, p, cur_seg, &fn);
    moss_buf_deinit(&fn);
    moss_buf_init(&fn, ctx);
  }
  if (st == MOSS_OK && !seg_is_c) st = output_copies(&cg, &fn);
  if (st != MOSS_OK) goto done;

  /* <name>.c */
  moss_buf_printf(&file,
                  "/* %s.c - generated by moss %s from %s (sha256 %s),\n"
                  " * target %s. Do not edit. */\n"
                  "#include <math.h>\n#include <string.h>\n\n#include \"%s.h\"\n\n"
                  "#if defined(__GNUC__)\n#define MOSS_ALIGNED __attribute__((aligned(64)))\n"
                  "#else\n#define MOSS_ALIGNED\n#endif\n\n",
                  p, MOSS_VERSION, src_name, source_hash, target_name, p);
  if (decls.data) moss_buf_put(&file, decls.data, decls.len);
  if (seg_is_c) {
    if (segs.data) moss_buf_put(&file, segs.data, segs.len);
    figures_text(&file, p, seg_is_c, nseg, figures, nfigures);
  } else {
  moss_buf_printf(&file,
                  "int %s_run_v(const void *const *in, void *const *out, void *arena) {\n"
                  "  unsigned char *a = (unsigned char *)arena;\n"
                  "  (void)in;\n  (void)out;\n  (void)a;\n",
                  p);
  if (fn.data) moss_buf_put(&file, fn.data, fn.len);
  moss_buf_printf(&file, "  return 0;\n}\n\nint %s_run(", p);
  for (i = 0; i < g->ninputs; i++)
    moss_buf_printf(&file, "const %s *in%d, ", moss_dtype_ctype(moss_dtype_storage(g->inputs[i]->dtype)), i);
  for (i = 0; i < g->noutputs; i++)
    moss_buf_printf(&file, "%s *out%d, ", moss_dtype_ctype(moss_dtype_storage(g->outputs[i]->dtype)), i);
  moss_buf_printf(&file, "void *arena) {\n  const void *in[%d];\n  void *out[%d];\n",
                  g->ninputs ? g->ninputs : 1, g->noutputs ? g->noutputs : 1);
  if (!g->ninputs) moss_buf_printf(&file, "  in[0] = 0;\n");
  for (i = 0; i < g->ninputs; i++) moss_buf_printf(&file, "  in[%d] = in%d;\n", i, i);
  for (i = 0; i < g->noutputs; i++) moss_buf_printf(&file, "  out[%d] = out%d;\n", i, i);
  moss_buf_printf(&file, "  return %s_run_v(in, out, arena);\n}\n", p);
  }

  header_text(g, p, src_name, source_hash, target_name, seg_is_c, nseg, &hdr);
  {
    char extra[300];
    snprintf(extra, sizeof extra, "weights-file %s_weights.c", p);
    manifest_text(g, p, cg.wfile ? extra : NULL, &man);
  }

  if (file.failed || hdr.failed || man.failed || fn.failed || decls.failed || segs.failed ||
      wfile.failed) {
    st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "generated code");
    goto done;
  }
  snprintf(path, sizeof path, "%s/%s.c", dir, p);
  st = moss_file_write(ctx, path, file.data, file.len);
  if (st == MOSS_OK) {
    snprintf(path, sizeof path, "%s/%s.h", dir, p);
    st = moss_file_write(ctx, path, hdr.data, hdr.len);
  }
  /* A shared object built from an earlier compile into this folder is stale. */
  snprintf(path, sizeof path, "%s/%s.so", dir, p);
  moss_file_remove_stale(ctx, path, NULL);
  snprintf(path, sizeof path, "%s/%s_weights.c", dir, p);
  if (st == MOSS_OK && cg.wfile) {
    moss_buf head;
    moss_buf_init(&head, ctx);
    moss_buf_printf(&head,
                    "/* %s_weights.c - the weights of %s.c, generated by moss %s from %s.\n"
                    " * Do not edit. */\n#include <stdint.h>\n\n"
                    "#if defined(__GNUC__)\n#define MOSS_ALIGNED __attribute__((aligned(64)))\n"
                    "#else\n#define MOSS_ALIGNED\n#endif\n\n",
                    p, p, MOSS_VERSION, src_name);
    if (wfile.data) moss_buf_put(&head, wfile.data, wfile.len);
    st = head.failed ? moss_fail(ctx, MOSS_E_NOMEM, NULL, "weights file")
                     : moss_file_write(ctx, path, head.data, head.len);
    moss_buf_deinit(&head);
  } else if (st == MOSS_OK) {
    moss_file_remove_stale(ctx, path, "generated by moss"); /* it would be linked in */
  }
  if (st == MOSS_OK) {
    snprintf(path, sizeof path, "%s/%s.manifest", dir, p);
    st = moss_file_write(ctx, path, man.data, man.len);
  }
done:
  moss_free(ctx, cg.emitted, (size_t)g->nvalues + 1);
  moss_arena_destroy(cg.karena);
  moss_buf_deinit(&fn);
  moss_buf_deinit(&decls);
  moss_buf_deinit(&file);
  moss_buf_deinit(&hdr);
  moss_buf_deinit(&man);
  moss_buf_deinit(&wfile);
  moss_buf_deinit(&segs);
  return st;
}
