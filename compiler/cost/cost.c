/* cost.c - the cost and energy model, run after the memory plan: it walks
 * the planned graph in execution order and, for each node on its device,
 * counts MACs (dense, and those the emitted kernel performs: a sparse
 * format's stored values), element ops, and the bytes read and written per
 * memory level as the code stores them (sparse arrays, int8 tables); turns
 * them into a roofline cycle count on the threads the code runs with and a
 * time, then into energy by DESIGN.md's formula with the target's figures,
 * each labelled by its source. Values that cross devices are costed as
 * transfers. The same walk over the model's fp32 dense twin (every tensor in
 * f32, every weight dense, no Quantize/Dequantize) gives the baseline.
 * docs/report.md states every rule. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../ops/ops.h"
#include "../ops/sparse.h"
#include "../plan/plan.h"
#include "cost.h"

#define NM "not-modeled"

typedef struct costing {
  moss_ctx *ctx;
  const moss_graph *g;
  const moss_target *t;
  moss_cost_report *r;
  int baseline;            /* every tensor f32, every weight dense */
  int steps;               /* n->segment numbers the bundle's EXEC steps (moss_cost_opts) */
  int new_step;            /* the node being costed starts a step (each does without steps) */
  /* The fp32 twin's placement (place_twin), by node id, and its steps; NULL:
   * the nodes' own. |force| >= 0: every node on that device. */
  const int *place, *place_seg;
  int force;
  double arena_bytes, weight_bytes; /* of this costing, for the level rule */
  moss_cost_totals *tot;
  const moss_cost_opts *opts;      /* estimate(): a device's own cost model */
} costing;

/* ------------------------------------------------------------ helpers */

/* |p|, an arena string just made; when it could not be, the report fails
 * at the end of moss_cost_compute and "" stands in until then. */
static const char *kept(moss_cost_report *r, const char *p) {
  if (!p) r->nomem = 1;
  return p ? p : "";
}

static const char *dup(moss_cost_report *r, const char *s) {
  return s ? kept(r, moss_arena_strdup(r->arena, s)) : NULL;
}

static const char *fmt(moss_cost_report *r, const char *f, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static const char *fmt(moss_cost_report *r, const char *f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return kept(r, moss_arena_strdup(r->arena, buf));
}

/* The label of a source attribute: its first word ("op-model (Horowitz...)"
 * -> "op-model"). */
static const char *label_of(moss_cost_report *r, const char *source) {
  size_t n;
  char buf[128];
  if (!source || !*source) return NM;
  n = strcspn(source, " ");
  if (n >= sizeof buf) n = sizeof buf - 1;
  memcpy(buf, source, n);
  buf[n] = 0;
  return kept(r, moss_arena_strdup(r->arena, buf));
}

static moss_cost_figure fig(double v, const char *label, const char *source) {
  moss_cost_figure f;
  f.value = v;
  f.label = label ? label : NM;
  f.source = source ? source : "";
  f.partial = 0;
  return f;
}

static moss_cost_figure not_modeled(const char *why) { return fig(0, NM, why); }

static int is_nm(const moss_cost_figure *f) { return !strcmp(f->label, NM); }

/* An empty op-model sum; add() folds parts into it. */
static moss_cost_figure sum_start(const char *source) {
  moss_cost_figure f = fig(0, NM, source);
  f.partial = -1; /* no part yet */
  return f;
}

static void add(moss_cost_figure *acc, const moss_cost_figure *part) {
  int first = acc->partial == -1;
  if (first) acc->partial = 0;
  if (is_nm(part)) {
    acc->partial = 1;
    return;
  }
  acc->value += part->value;
  acc->label = "op-model";
  if (part->partial) acc->partial = 1;
}

/* Ends a sum: with no modeled part it is not-modeled; partial only if some
 * part was modeled and some was not. */
static void sum_end(moss_cost_figure *acc) {
  if (acc->partial == -1) acc->partial = 0; /* an empty sum: exactly 0 */
  if (is_nm(acc)) acc->partial = 0;
}

static void empty_sum_is_zero(moss_cost_figure *acc) {
  if (acc->partial == -1) {
    acc->partial = 0;
    acc->label = "op-model";
  }
}

static int is8(const moss_value *v) {
  return v && (v->dtype == MOSS_DT_I8 || v->dtype == MOSS_DT_U8);
}

static double numel(const moss_value *v);

/* The device |n| is costed on: the forced one, the twin's, or its own. */
static int node_dev(const costing *c, const moss_node *n) {
  if (c->force >= 0) return c->force;
  if (c->place && n->id >= 0 && n->id < c->g->nnodes && c->g->nodes[n->id] == n)
    return c->place[n->id];
  return n->device;
}

/* The step |n| belongs to, with the same choice. */
static int node_seg(const costing *c, const moss_node *n) {
  if (c->place_seg && n->id >= 0 && n->id < c->g->nnodes && c->g->nodes[n->id] == n)
    return c->place_seg[n->id];
  return n->segment;
}

/* The device |v| is made on in this costing (a graph input: |host|). */
static int value_dev(const costing *c, const moss_value *v, int host) {
  return v->producer ? node_dev(c, v->producer) : host;
}

/* Threads device |d|'s code runs on, what compute time divides by
 * (docs/report.md): the estimate is of one thread on a cpu device whatever
 * its `units` (the parts the code runs on the session's threads are not
 * modeled yet); a gpu's kernels spread their
 * workgroups over every compute unit and an npu's plugin drives all its
 * arrays, so those use `units` (1 when the file gives none). */
static int device_threads(const moss_target *t, int d) {
  const char *kind = moss_target_device_kind(t, d);
  int units = moss_target_device_units(t, d);
  if (!kind || !strcmp(kind, "cpu")) return 1;
  return units > 0 ? units : 1;
}

/* Input |k| of |n| is a scale or zero point of a quantized op. */
static int qparam(const moss_node *n, int k) {
  switch (n->op) {
  case MOSS_OP_QuantizeLinear:
  case MOSS_OP_DequantizeLinear: return k == 1 || k == 2;
  case MOSS_OP_QLinearConv:
  case MOSS_OP_QLinearMatMul:
  case MOSS_OP_MossQGemm:
  case MOSS_OP_MossQAdd:
  case MOSS_OP_MossQMul: return k == 1 || k == 2 || (k >= 4 && k <= 7);
  case MOSS_OP_MossQAvgPool: return k >= 1 && k <= 4;
  case MOSS_OP_ConvInteger:
  case MOSS_OP_MatMulInteger: return k == 2 || k == 3;
  default: return 0;
  }
}

static int fused_in_twin(const moss_node *n);

/* Whether |n| exists in the model's fp32 dense twin (the baseline). The
 * Quantize/Dequantize nodes of a QDQ model do not, nor does a MossQLookup
 * that only moves a value from one 8-bit quantization to another (the qdq
 * pass notes it so, compiler/passes/qdq.c: a bare DequantizeLinear ->
 * QuantizeLinear, or a requantization after MaxPool or Concat), nor one
 * whose float op the twin fuses into the layer before it (its ops are
 * counted there); every other integer op stands for the float op it
 * replaced. */
static int has_fp32_twin(const moss_node *n) {
  switch (n->op) {
  case MOSS_OP_QuantizeLinear:
  case MOSS_OP_DequantizeLinear:
  case MOSS_OP_DynamicQuantizeLinear: return 0;
  case MOSS_OP_MossQLookup:
    return !(n->qnote && (strstr(n->qnote, "from one 8-bit quantization to another") ||
                          strstr(n->qnote, "DequantizeLinear -> DequantizeLinear"))) &&
           !fused_in_twin(n);
  default: return 1;
  }
}

/* Whether, in the fp32 twin, the float op a MossQLookup stands for would be
 * fused into the Conv, Gemm or MatMul before it (compiler/passes/fuse.c:
 * Relu, Clip, LeakyRelu, Sigmoid or Tanh whose input has no other reader
 * and is not a graph output): then it costs its element ops and moves no
 * bytes. The float op is the one the qdq pass's note names. */
static int fused_in_twin(const moss_node *n) {
  static const char *const acts[] = {"-> Relu ->", "-> Clip ->", "-> LeakyRelu ->",
                                     "-> Sigmoid ->", "-> Tanh ->"};
  const moss_value *x = n->op == MOSS_OP_MossQLookup ? moss_node_input(n, 0) : NULL;
  const moss_node *p = x ? x->producer : NULL;
  size_t k;
  if (!p || p->dead || x->nuses != 1 || x->output_index >= 0 || !n->qnote) return 0;
  if (p->op != MOSS_OP_MossQGemm && p->op != MOSS_OP_QLinearConv &&
      p->op != MOSS_OP_QLinearMatMul)
    return 0;
  for (k = 0; k < sizeof acts / sizeof acts[0]; k++)
    if (strstr(n->qnote, acts[k])) return 1;
  return 0;
}

/* The weight format |n| was compiled with, when it is a sparse one. */
typedef struct wformat {
  int sparse;             /* 1: a sparse format below; 0: the weight is stored dense */
  int fmt;                /* MOSS_SPARSE_* */
  int winput;             /* the weight's input index */
  moss_sparse_stats s;
} wformat;

static void weight_format(const moss_node *n, wformat *out) {
  moss_sparse_view v;
  memset(out, 0, sizeof *out);
  if (n->sparse == MOSS_SPARSE_DENSE || !moss_sparse_view_get(n, &v) ||
      !moss_sparse_stats_compute(n, &out->s) || moss_sparse_bytes(&out->s, n->sparse) < 0)
    return;
  out->sparse = 1;
  out->fmt = n->sparse;
  out->winput = v.winput;
}

static int is_int_op(const moss_node *n) {
  return n->op == MOSS_OP_MossQGemm || n->op == MOSS_OP_QLinearConv ||
         n->op == MOSS_OP_QLinearMatMul || n->op == MOSS_OP_ConvInteger ||
         n->op == MOSS_OP_MatMulInteger;
}

static int any_nonzero(const moss_value *v) {
  int64_t i, n = v && v->data ? moss_value_numel(v) : 0;
  for (i = 0; i < n; i++)
    if (moss_load_i64(v->dtype, v->data, i) != 0) return 1;
  return 0;
}

/* Bytes read of constant input |k| (= |v|) of |n|, as the code stores it
 * (docs/report.md): a sparse weight as its format's arrays (and, int8
 * Gemm/MatMul CSR, the int32 row sums), a MossQGemm weight with nonzero
 * zero points widened to int16; a scalar scale or zero point is an
 * immediate in the code (0 bytes), a per-channel weight scale the int32
 * multiplier and shift tables (8 bytes each), MossQGemm's weight zero
 * points folded away. Baseline: 4 bytes per element, and no quantization
 * parameter or lookup table (the fp32 model has none). */
static double const_bytes(const costing *c, const moss_node *n, int k, const moss_value *v,
                          const wformat *wf) {
  if (c->baseline) {
    if (qparam(n, k) || (n->op == MOSS_OP_MossQLookup && k == 1)) return 0;
    return numel(v) * 4;
  }
  if (qparam(n, k)) {
    if (numel(v) <= 1) return 0;
    if (k == 4 && (n->op == MOSS_OP_QLinearConv || n->op == MOSS_OP_QLinearMatMul ||
                   n->op == MOSS_OP_MossQGemm))
      return numel(v) * 8;
    if (n->op == MOSS_OP_MossQGemm && k == 5) return 0;
    return (double)moss_value_nbytes(v);
  }
  if (wf && wf->sparse && k == wf->winput) {
    double b = moss_sparse_bytes(&wf->s, wf->fmt);
    if (is_int_op(n) && n->op != MOSS_OP_QLinearConv && n->op != MOSS_OP_ConvInteger)
      b += (double)wf->s.rows * 4; /* row_sum (lower_sparse.c) */
    return b;
  }
  if (n->op == MOSS_OP_MossQGemm && k == 3 && any_nonzero(moss_node_input(n, 5)))
    return numel(v) * 2; /* qw: w - w_zp as int16 (lower_qfold.c) */
  return (double)moss_value_nbytes(v);
}

static double numel(const moss_value *v) {
  int64_t n = v ? moss_value_numel(v) : 0;
  return n > 0 ? (double)n : 0;
}

/* A byte total summed in doubles, as the report's int64_t: the planner has
 * checked the real sizes, but the fp32 baseline (4 bytes per element) may
 * still pass INT64_MAX, where a plain cast is undefined. */
static int64_t total_bytes(double b) {
  return b < 9.2e18 ? (int64_t)b : INT64_MAX;
}

/* Bytes of |v| in this costing: its own size, or 4 per element (baseline). */
static double vbytes(const costing *c, const moss_value *v) {
  if (!v) return 0;
  return c->baseline ? numel(v) * 4 : (double)moss_value_nbytes(v);
}

static int is_zero_elem(const moss_value *v, int64_t i, size_t esz) {
  const unsigned char *p = (const unsigned char *)v->data + (size_t)i * esz;
  size_t k;
  switch (v->dtype) {
  case MOSS_DT_F32: case MOSS_DT_F64: return moss_value_get_f64(v, i) == 0.0;
  case MOSS_DT_F16: case MOSS_DT_BF16: {
    uint16_t h;
    memcpy(&h, p, 2);
    return (h & 0x7fff) == 0; /* +0 and -0 */
  }
  default:
    for (k = 0; k < esz; k++)
      if (p[k]) return 0;
    return 1;
  }
}

/* Share of non-zero elements of constant |w|; 1 when |w| is not constant. */
static double density(const moss_value *w) {
  int64_t n, i, nz = 0;
  size_t esz;
  if (!w || !w->data) return 1;
  n = moss_value_numel(w);
  esz = moss_dtype_size(w->dtype);
  if (n <= 0 || esz == 0) return 1;
  for (i = 0; i < n; i++) nz += !is_zero_elem(w, i, esz);
  return (double)nz / (double)n;
}

/* cost.h's count of formats is sparse.h's. */
typedef char moss_cost_sparse_formats_match[MOSS_COST_SPARSE_FORMATS == MOSS_SPARSE_NFORMATS ? 1
                                                                                              : -1];

/* The sparse pass's view of |n|'s weight: the format it chose and the
 * cost rule's estimate of every format (docs/sparse.md). */
static void sparse_formats(const moss_node *n, moss_cost_node *cn) {
  moss_sparse_stats s;
  int f;
  if (!moss_sparse_stats_compute(n, &s)) return;
  cn->sparse_layer = 1;
  cn->sparse_format = moss_sparse_format_name(n->sparse);
  cn->sparse_rule = moss_sparse_rule_name(n->sparse_rule);
  for (f = 0; f < MOSS_COST_SPARSE_FORMATS; f++) cn->sparse_cost[f] = moss_sparse_cost(&s, f);
}

/* The first constant among inputs |a|, |b| (the weights of a MAC op). */
static const moss_value *const_of(const moss_node *n, int a, int b) {
  moss_value *x = moss_node_input(n, a), *y = moss_node_input(n, b);
  if (x && x->data) return x;
  if (y && y->data) return y;
  return NULL;
}

/* Dense MACs of |n| and its weight tensor; returns 0 for ops that do not
 * multiply-accumulate (they count element ops instead). The one table of
 * MAC-counting ops. */
static int mac_count(const moss_node *n, double *out_macs, const moss_value **out_w) {
  moss_value *x = moss_node_input(n, 0), *w = moss_node_input(n, 1), *y = n->outputs[0];
  double prod = 1;
  int k;
  *out_macs = 0;
  *out_w = NULL;
  switch (n->op) {
  case MOSS_OP_Conv: /* each output element: C/group x kernel MACs */
    if (!w || !y || w->rank < 1) return 1;
    for (k = 1; k < w->rank; k++) prod *= (double)w->dims[k];
    *out_macs = numel(y) * prod;
    *out_w = const_of(n, 1, 1);
    return 1;
  case MOSS_OP_ConvTranspose: /* each input element: (M/group) x kernel MACs */
    if (!w || !x || w->rank < 1) return 1;
    for (k = 1; k < w->rank; k++) prod *= (double)w->dims[k];
    *out_macs = numel(x) * prod;
    *out_w = const_of(n, 1, 1);
    return 1;
  case MOSS_OP_Gemm: /* Y[M,N] = A[M,K] B[K,N]: M x N x K */
    if (!x || !y || x->rank != 2) return 1;
    *out_macs = numel(y) * (double)(moss_attr_int(n, "transA", 0) ? x->dims[0] : x->dims[1]);
    *out_w = const_of(n, 1, 0);
    return 1;
  case MOSS_OP_MatMul: /* every output element: K MACs, K = A's last dim */
    if (!x || !y || x->rank < 1) return 1;
    *out_macs = numel(y) * (double)x->dims[x->rank - 1];
    *out_w = const_of(n, 1, 0);
    return 1;
  case MOSS_OP_ConvInteger:
  case MOSS_OP_QLinearConv: { /* as Conv; the weight is input 1 or 3 */
    int iw = n->op == MOSS_OP_QLinearConv ? 3 : 1;
    w = moss_node_input(n, iw);
    if (!w || !y || w->rank < 1) return 1;
    for (k = 1; k < w->rank; k++) prod *= (double)w->dims[k];
    *out_macs = numel(y) * prod;
    *out_w = const_of(n, iw, iw);
    return 1;
  }
  case MOSS_OP_MatMulInteger:
  case MOSS_OP_QLinearMatMul: { /* as MatMul; B is input 1 or 3 */
    int ib = n->op == MOSS_OP_QLinearMatMul ? 3 : 1;
    if (!x || !y || x->rank < 1) return 1;
    *out_macs = numel(y) * (double)x->dims[x->rank - 1];
    *out_w = const_of(n, ib, 0);
    return 1;
  }
  case MOSS_OP_MossQGemm: /* Y[..., N] = X[..., K] W[N, K]^T: K MACs per output */
    if (!x || !y || x->rank < 1) return 1;
    *out_macs = numel(y) * (double)x->dims[x->rank - 1];
    *out_w = const_of(n, 3, 3);
    return 1;
  case MOSS_OP_Einsum: { /* (inputs - 1) multiplies per point of the label space */
    moss_einsum e;
    char err[128];
    int l;
    if (n->ninputs < 2 || n->ninputs > MOSS_EINSUM_MAX_IN) return 0;
    if (moss_einsum_compute(moss_attr_string(n, "equation", ""), n->ninputs, n->inputs, err,
                            sizeof err, &e) != 0)
      return 0;
    for (l = 0; l < MOSS_EINSUM_LABELS; l++)
      if (e.size[l] >= 0) prod *= (double)e.size[l];
    *out_macs = prod * (double)(n->ninputs - 1);
    for (k = 0; k < n->ninputs && !*out_w; k++)
      if (n->inputs[k] && n->inputs[k]->data) *out_w = n->inputs[k];
    return 1;
  }
  default: return 0;
  }
}

/* The level |bytes| are read from on |dev| (docs/report.md): the innermost
 * whose size holds them, levels without a size skipped, the outermost taking
 * what fits nowhere, among the writable levels for activations and, for
 * constants (|constants| 1) on a device with a read-only level (flash: where
 * `static const` data lives on a microcontroller), among the read-only
 * levels. -1: no levels. */
static int pick_level(const moss_target *t, int dev, double bytes, int constants) {
  int k, nl = moss_target_device_level_count(t, dev), ro = 0, last = -1;
  moss_target_level lv;
  for (k = 0; k < nl; k++) {
    moss_target_device_level(t, dev, k, &lv);
    ro |= lv.read_only;
  }
  ro = constants && ro;
  for (k = 0; k < nl; k++) {
    moss_target_device_level(t, dev, k, &lv);
    if (!lv.read_only != !ro) continue;
    last = k;
    if (lv.size_bytes > 0 && (double)lv.size_bytes >= bytes) return k;
  }
  return last >= 0 ? last : nl - 1;
}

static int all_outputs_alias(const moss_node *n) {
  int k, any = 0;
  for (k = 0; k < n->noutputs; k++) {
    if (!n->outputs[k]) continue;
    if (!n->outputs[k]->alias) return 0;
    any = 1;
  }
  return any;
}

/* -------------------------------------------------------------- nodes */

/* The MACs of |n|'s weight format: |*timed| the work its kernel is costed
 * on (the cost rule's estimate, docs/sparse.md, per output row or position
 * times their number), |*eff| the multiply-adds it performs (the stored
 * values: CSR its nonzeros, 4x1 and 1x4 blocks 4 per block, 2:4 2 per group
 * of 4 columns; a Conv skips the stored zeros of 1x4 blocks and 2:4
 * groups). */
static void sparse_macs(const moss_node *n, const wformat *wf, double dense, double *timed,
                        double *eff) {
  const moss_sparse_stats *s = &wf->s;
  double cells = (double)s->rows * (double)s->cols, pos = cells > 0 ? dense / cells : 0;
  double stored = (double)s->nnz;
  int conv = n->op == MOSS_OP_Conv || n->op == MOSS_OP_QLinearConv || n->op == MOSS_OP_ConvInteger;
  int rule = MOSS_SPARSE_RULE_KIND(n->sparse_rule);
  switch (wf->fmt) {
  case MOSS_SPARSE_BLOCK_4x1: stored = 4.0 * (double)s->nblocks4x1; break;
  case MOSS_SPARSE_BLOCK_1x4: stored = conv ? stored : 4.0 * (double)s->nblocks1x4; break;
  case MOSS_SPARSE_NM_2_4:
    stored = conv ? stored : 2.0 * (double)s->rows * (double)((s->cols + 3) / 4);
    break;
  case MOSS_SPARSE_COLUMNS: stored = (double)s->rows * (double)s->cols_nz; break;
  default: break;
  }
  if (s->q8tile && wf->fmt == MOSS_SPARSE_CSR) stored = 4.0 * (double)s->words_nz; /* whole words */
  if (s->q8tile && wf->fmt == MOSS_SPARSE_BLOCK_4x1) stored = 16.0 * (double)s->wblocks_nz;
  *timed = pos * moss_sparse_cost(s, wf->fmt);
  /* An int8 Conv whose dense kernel is the byte dot products' (rules
   * int8-dot, int8-widened): the rule's estimates count in scalar terms,
   * the dense kernel's MACs at the device's int8 rate are its vector ones,
   * so the format takes the dense time times its estimate over dense's. */
  if (conv && (rule == MOSS_SPARSE_RULE_Q8_DOT4 || rule == MOSS_SPARSE_RULE_Q8_WIDE) &&
      s->cost_dense > 0)
    *timed = dense * moss_sparse_cost(s, wf->fmt) / s->cost_dense;
  *eff = pos * stored;
}

/* The kernel class of |n| for <achieved kernel=...> (target.h): "gemm"
 * for the products the register tile runs (Gemm, MatMul, a pointwise
 * Conv: 1 x 1 kernel, output plane = input plane, one group),
 * "conv-strided" for convolutions with a stride above 1, "conv" for the
 * other convolutions, "other" for the rest. */
static const char *kernel_class(const moss_node *n) {
  const moss_value *x, *w, *y;
  const int64_t *s;
  int k, ns;
  if (n->op == MOSS_OP_Gemm || n->op == MOSS_OP_MatMul) return "gemm";
  if (n->op != MOSS_OP_Conv && n->op != MOSS_OP_ConvTranspose) return "other";
  /* Arena scratch: the lowering made it a product on the register tile
   * (the implicit product, ConvTranspose's W^T X) or, with groups, the
   * depthwise kernel on a padded copy. */
  if (n->scratch_bytes > 0) return moss_attr_int(n, "group", 1) == 1 ? "gemm" : "conv";
  ns = moss_attr_ints(n, "strides", &s);
  for (k = 0; k < ns; k++)
    if (s[k] > 1) return "conv-strided";
  x = n->ninputs > 0 ? n->inputs[0] : NULL;
  w = n->ninputs > 1 ? n->inputs[1] : NULL;
  y = n->noutputs > 0 ? n->outputs[0] : NULL;
  if (n->op != MOSS_OP_Conv || !x || !w || !y || !w->data || w->rank < 3 ||
      x->rank != w->rank || y->rank != w->rank || moss_attr_int(n, "group", 1) != 1)
    return "conv";
  for (k = 2; k < w->rank; k++)
    if (w->dims[k] != 1 || x->dims[k] != y->dims[k]) return "conv";
  return "gemm";
}

static moss_status cost_node(costing *c, const moss_node *n, moss_cost_node *cn) {
  const moss_target *t = c->t;
  moss_cost_report *r = c->r;
  int d = node_dev(c, n), k, nl, have_clock, threads;
  const moss_value *w = NULL;
  double clock = moss_target_device_clock_mhz(t, d), rate, work;
  moss_dtype dt;
  const char *src, *rate_as, *basis = "dense MACs";
  double pj, idle, active, own_cycles = 0, own_bytes[MOSS_COST_MAX_LEVELS];
  int own = 0;
  moss_target_level lv;
  wformat wf;

  memset(cn, 0, sizeof *cn);
  cn->step = c->steps ? node_seg(c, n) : -1;
  memset(&wf, 0, sizeof wf);
  cn->name = dup(r, n->name ? n->name : "");
  cn->op_type = dup(r, n->op_type ? n->op_type : "?");
  cn->device = d;
  cn->act_level = cn->weight_level = -1;
  cn->weight_density = 1;
  if (!c->baseline) weight_format(n, &wf);

  /* MACs or ops, and the compute dtype. */
  cn->mac_op = mac_count(n, &cn->macs_dense, &w);
  if (cn->mac_op) {
    moss_value *x = moss_node_input(n, 0);
    if (!c->baseline) cn->weight_density = density(w);
    if (!c->baseline) sparse_formats(n, cn);
    cn->macs_effective = cn->macs_timed = cn->macs_dense;
    if (wf.sparse) {
      sparse_macs(n, &wf, cn->macs_dense, &cn->macs_timed, &cn->macs_effective);
      basis = fmt(r, "the %s kernel's work (docs/sparse.md)", moss_sparse_format_name(wf.fmt));
    }
    if (n->act.kind != MOSS_ACT_NONE) cn->ops = numel(n->outputs[0]);
    /* A Relu or Clip folded into an integer op's clamp (the qdq pass's
     * note names it, docs/qdq.md), or a MossQLookup after it that the fp32
     * twin fuses, is the fused activation again in the fp32 twin. */
    if (c->baseline && n->qnote && (strstr(n->qnote, "Relu") || strstr(n->qnote, "Clip")))
      cn->ops = numel(n->outputs[0]);
    if (c->baseline && n->outputs[0] && n->outputs[0]->nuses == 1) {
      const moss_value *y = n->outputs[0];
      int i, j;
      for (i = 0; i < c->g->nnodes; i++) {
        const moss_node *u = c->g->nodes[i];
        if (u->dead || u->op != MOSS_OP_MossQLookup) continue;
        for (j = 0; j < u->ninputs; j++)
          if (u->inputs[j] == y && fused_in_twin(u)) cn->ops = numel(u->outputs[0]);
      }
    }
    if (is8(x) && (!w || is8(w))) cn->dtype = "i8"; /* 8-bit MACs, 32-bit accumulate */
    else cn->dtype = moss_dtype_short(x ? x->dtype : MOSS_DT_F32);
  } else if (!all_outputs_alias(n)) {
    double most = 0;
    for (k = 0; k < n->noutputs; k++)
      if (numel(n->outputs[k]) > most) most = numel(n->outputs[k]);
    for (k = 0; k < n->ninputs; k++) {
      moss_value *v = moss_node_input(n, k);
      if (v && !v->data && numel(v) > most) most = numel(v);
    }
    /* A MossFused chain: each of its nodes' operations, in one pass. */
    cn->ops = n->op == MOSS_OP_MossFused ? most * n->nbody : most;
    dt = n->noutputs && n->outputs[0] ? n->outputs[0]->dtype : MOSS_DT_F32;
    cn->dtype = moss_dtype_short(dt);
  } else {
    cn->dtype = moss_dtype_short(n->outputs[0] ? n->outputs[0]->dtype : MOSS_DT_F32);
  }
  if (c->baseline) cn->dtype = "f32";

  /* Bytes: activations read and written, weights read as stored; a view
   * moves nothing. */
  if (!all_outputs_alias(n)) {
    for (k = 0; k < n->ninputs; k++) {
      moss_value *v = moss_node_input(n, k);
      if (!v) continue;
      if (v->data) cn->weight_bytes += const_bytes(c, n, k, v, &wf);
      else cn->act_bytes += vbytes(c, v);
    }
    for (k = 0; k < n->noutputs; k++) cn->act_bytes += vbytes(c, n->outputs[k]);
  }
  nl = moss_target_device_level_count(t, d);
  if (nl > MOSS_COST_MAX_LEVELS)
    return moss_fail(c->ctx, MOSS_E_TARGET, n, "target '%s': device '%s' has %d memory levels; "
                     "the cost model takes at most %d", moss_target_name(t),
                     moss_target_device_id(t, d), nl, MOSS_COST_MAX_LEVELS);
  cn->act_level = pick_level(t, d, c->arena_bytes, 0);
  cn->weight_level = pick_level(t, d, c->weight_bytes, 1);
  if (cn->act_level >= 0) cn->bytes[cn->act_level] += cn->act_bytes;
  if (cn->weight_level >= 0) cn->bytes[cn->weight_level] += cn->weight_bytes;
  /* The device's own model, where it has one: its bytes per level (its
   * tiling's DRAM traffic) and, below, its cycles. */
  if (!c->baseline && c->opts && c->opts->estimate &&
      c->opts->estimate(c->opts->estimate_user, d, n, &own_cycles, own_bytes, nl))
    for (own = 1, k = 0; k < nl; k++) cn->bytes[k] = own_bytes[k];

  /* Roofline: compute cycles (the timed MACs + ops at the dtype's peak rate
   * on the threads the code runs with) against each level's transfer cycles. */
  threads = device_threads(t, d);
  rate = moss_target_device_mac_rate(t, d, cn->dtype, &rate_as) * threads;
  have_clock = clock > 0;
  work = cn->macs_timed + cn->ops;
  if (work <= 0)
    cn->compute_cycles = fig(0, "op-model", "no MACs or ops");
  else if (rate > 0)
    cn->compute_cycles =
        fig(work / rate, "estimate",
            fmt(r, "(%s %.15g + ops %.15g) / (%g %s MACs per cycle x %d thread%s%s)", basis,
                cn->macs_timed, cn->ops, rate / threads, rate_as, threads,
                threads == 1 ? "" : "s",
                strcmp(moss_target_device_kind(t, d) ? moss_target_device_kind(t, d) : "cpu",
                       "cpu") == 0 && moss_target_device_units(t, d) > 1
                    ? fmt(r, "; the estimate is of one thread of the device's %d cores",
                          moss_target_device_units(t, d))
                    : ""));
  else
    cn->compute_cycles = not_modeled(fmt(r, "no MAC rate for %s on device '%s'", cn->dtype,
                                         moss_target_device_id(t, d)));
  if (work > 0 && rate > 0) { /* the share of the peak the code reaches (a calibration) */
    const char *cls = kernel_class(n), *asrc;
    double share = moss_target_device_achieved(t, d, cls, &asrc);
    if (asrc) {
      cn->compute_cycles.value /= share;
      cn->compute_cycles.source = fmt(r, "%s; / %g, the share of peak reached on %s kernels (%s)",
                                      cn->compute_cycles.source, share, cls, asrc);
    }
  }
  cn->cycles = cn->compute_cycles.value;
  {
    int partial = is_nm(&cn->compute_cycles);
    const char *missing = partial ? cn->compute_cycles.source : NULL;
    for (k = 0; k < nl; k++) {
      moss_target_device_level(t, d, k, &lv);
      if (cn->bytes[k] <= 0) {
        cn->mem_cycles[k] = fig(0, "op-model", "no bytes");
        continue;
      }
      if (lv.bandwidth_gbps > 0 && have_clock)
        cn->mem_cycles[k] = fig(cn->bytes[k] * clock / (lv.bandwidth_gbps * 1000.0), "estimate",
                                fmt(r, "%.15g B / %g GB/s (level %s) x %g MHz", cn->bytes[k],
                                    lv.bandwidth_gbps, lv.name, clock));
      else {
        cn->mem_cycles[k] = not_modeled(
            have_clock ? fmt(r, "no bandwidth for level %s", lv.name)
                       : fmt(r, "device '%s' has no clock", moss_target_device_id(t, d)));
        partial = 1;
        if (!missing) missing = cn->mem_cycles[k].source;
      }
      if (cn->mem_cycles[k].value > cn->cycles) cn->cycles = cn->mem_cycles[k].value;
    }
    if (nl == 0 && cn->act_bytes + cn->weight_bytes > 0 && !missing)
      partial = 1, missing = "the device has no memory levels";
    if (!have_clock)
      cn->time_s = not_modeled(fmt(r, "device '%s' has no clock", moss_target_device_id(t, d)));
    else {
      double step = c->new_step ? moss_target_device_step_ns(t, d) : 0;
      cn->time_s = fig(cn->cycles / (clock * 1e6) + step * 1e-9, "estimate",
                       missing ? fmt(r, "roofline: max(compute, memory) cycles / clock; %s",
                                     missing)
                               : "roofline: max(compute, memory) cycles / clock");
      if (step > 0)
        cn->time_s.source = fmt(r, "%s, + %g ns for its step (<compute step-ns>)",
                                cn->time_s.source, step);
      cn->time_s.partial = partial;
    }
    if (own) { /* the device's cycles replace the roofline's (its overlap of DMA and compute) */
      cn->compute_cycles =
          fig(own_cycles, "estimate",
              fmt(r, "device '%s''s own cost model (its backend's estimate: the plugin's tiling)",
                  moss_target_device_id(t, d)));
      cn->cycles = own_cycles;
      if (have_clock) {
        double step = c->new_step ? moss_target_device_step_ns(t, d) : 0;
        cn->time_s = fig(own_cycles / (clock * 1e6) + step * 1e-9, "estimate",
                         fmt(r, "device '%s''s own cost model: its cycles / clock%s",
                             moss_target_device_id(t, d), step > 0 ? ", + its step-ns" : ""));
      }
    }
  }

  /* Energy: MACs, bytes per level, static power x time. */
  if (moss_target_device_mac_pj(t, d, cn->dtype, &pj, &src))
    cn->mac_pj = fig(pj, label_of(r, src), dup(r, src));
  else
    cn->mac_pj = not_modeled(fmt(r, "no MAC energy for %s on device '%s'", cn->dtype,
                                 moss_target_device_id(t, d)));
  if (cn->macs_effective == 0)
    cn->compute_j =
        fig(0, "op-model", cn->mac_op ? "no effective MACs" : "no MACs (ops not priced)");
  else if (is_nm(&cn->mac_pj))
    cn->compute_j = not_modeled(cn->mac_pj.source);
  else
    cn->compute_j = fig(cn->macs_effective * cn->mac_pj.value * 1e-12, cn->mac_pj.label,
                        cn->mac_pj.source);
  for (k = 0; k < nl; k++) {
    moss_target_device_level(t, d, k, &lv);
    if (cn->bytes[k] == 0) cn->mem_j[k] = fig(0, "op-model", "no bytes");
    else if (!lv.has_energy)
      cn->mem_j[k] = not_modeled(fmt(r, "level %s: %s", lv.name, lv.source));
    else
      cn->mem_j[k] = fig(cn->bytes[k] * lv.pj_per_byte * 1e-12, label_of(r, lv.source),
                         dup(r, lv.source));
  }
  if (!moss_target_device_power(t, d, &idle, &active, &src))
    cn->static_j = not_modeled(fmt(r, "device '%s' has no power figures",
                                   moss_target_device_id(t, d)));
  else if (is_nm(&cn->time_s))
    cn->static_j = not_modeled(cn->time_s.source);
  else {
    cn->static_j = fig(idle * cn->time_s.value, label_of(r, src), dup(r, src));
    cn->static_j.partial = cn->time_s.partial;
  }
  cn->energy_j = sum_start("op-model: MACs x pJ/MAC + bytes x pJ/byte + idle W x time");
  add(&cn->energy_j, &cn->compute_j);
  for (k = 0; k < nl; k++) add(&cn->energy_j, &cn->mem_j[k]);
  if (nl == 0 && cn->act_bytes + cn->weight_bytes > 0) {
    moss_cost_figure none = not_modeled("the device has no memory levels");
    add(&cn->energy_j, &none);
  }
  add(&cn->energy_j, &cn->static_j);
  sum_end(&cn->energy_j);
  return MOSS_OK;
}

/* A transfer of |v| from device |from| to |to|. */
static void cost_transfer(costing *c, const moss_value *v, int from, int to,
                          moss_cost_transfer *tr) {
  moss_cost_report *r = c->r;
  const moss_target *t = c->t;
  int ls = pick_level(t, from, c->arena_bytes, 0), ld = pick_level(t, to, c->arena_bytes, 0);
  moss_target_level a, b;
  memset(tr, 0, sizeof *tr);
  tr->value = dup(r, v->name ? v->name : "");
  tr->from = from;
  tr->to = to;
  tr->bytes = vbytes(c, v);
  if (ls < 0 || ld < 0) {
    tr->time_s = not_modeled("a device without memory levels");
    tr->energy_j = not_modeled("a device without memory levels");
    return;
  }
  moss_target_device_level(t, from, ls, &a);
  moss_target_device_level(t, to, ld, &b);
  if (a.bandwidth_gbps > 0 && b.bandwidth_gbps > 0) {
    double bw = a.bandwidth_gbps < b.bandwidth_gbps ? a.bandwidth_gbps : b.bandwidth_gbps;
    tr->time_s = fig(tr->bytes / (bw * 1e9), "estimate",
                     fmt(r, "bytes / the slower bandwidth (%s -> %s)", a.name, b.name));
  } else
    tr->time_s = not_modeled(fmt(r, "no bandwidth for %s or %s", a.name, b.name));
  if (a.has_energy && b.has_energy)
    tr->energy_j = fig(tr->bytes * (a.pj_per_byte + b.pj_per_byte) * 1e-12, "op-model",
                       fmt(r, "read at %s + write at %s", a.name, b.name));
  else
    tr->energy_j = not_modeled(fmt(r, "no energy per byte for %s",
                                   a.has_energy ? b.name : a.name));
}

double moss_cost_transfer_seconds(const moss_target *t, int from, int to, double bytes) {
  int ls = pick_level(t, from, HUGE_VAL, 0), ld = pick_level(t, to, HUGE_VAL, 0);
  moss_target_level a, b;
  double bw, lat;
  if (ls < 0 || ld < 0) return -1;
  moss_target_device_level(t, from, ls, &a);
  moss_target_device_level(t, to, ld, &b);
  bw = a.bandwidth_gbps > 0 && b.bandwidth_gbps > 0
           ? (a.bandwidth_gbps < b.bandwidth_gbps ? a.bandwidth_gbps : b.bandwidth_gbps)
           : a.bandwidth_gbps + b.bandwidth_gbps; /* the one given: a lower bound on the time */
  lat = (a.latency_ns > b.latency_ns ? a.latency_ns : b.latency_ns) * 1e-9;
  if (bw <= 0 && lat <= 0) return -1;
  return lat + (bw > 0 ? bytes / (bw * 1e9) : 0);
}

/* ------------------------------------------------------------- totals */

static void grid_carbon(moss_cost_report *r, const moss_cost_figure *e, moss_cost_figure *g1,
                        moss_cost_figure *gm) {
  const char *src = r->grid_fallback
                        ? fmt(r, "kWh x %g gCO2e/kWh (fallback: IEA 2019 world average; "
                                 "give --grid-intensity)", r->grid_g_per_kwh)
                        : fmt(r, "kWh x %g gCO2e/kWh (--grid-intensity)", r->grid_g_per_kwh);
  if (is_nm(e)) {
    *g1 = not_modeled(e->source);
    *gm = not_modeled(e->source);
    return;
  }
  *g1 = fig(e->value / 3.6e6 * r->grid_g_per_kwh, e->label, src);
  g1->partial = e->partial;
  *gm = *g1;
  gm->value = g1->value * 1e6;
}

/* Records (once) and costs the move of |v| from device |from| to |to|. */
static moss_status add_transfer(costing *c, const moss_value *v, int from, int to,
                                moss_cost_transfer **trs, int *ntr, int *cap) {
  moss_cost_transfer *tr;
  int j;
  if (from == to || from < 0 || from >= moss_target_device_count(c->t)) return MOSS_OK;
  for (j = 0; j < *ntr; j++)
    if (!strcmp((*trs)[j].value, v->name ? v->name : "") && (*trs)[j].to == to) return MOSS_OK;
  if (*ntr == *cap) {
    int ncap = *cap ? *cap * 2 : 8;
    moss_cost_transfer *nt = moss_arena_alloc(c->r->arena, sizeof *nt * (size_t)ncap, 8);
    if (!nt) return moss_fail(c->ctx, MOSS_E_NOMEM, NULL, "cost report");
    if (*ntr) memcpy(nt, *trs, sizeof *nt * (size_t)*ntr);
    *trs = nt;
    *cap = ncap;
  }
  tr = &(*trs)[(*ntr)++];
  cost_transfer(c, v, from, to, tr);
  add(&c->tot->time_s, &tr->time_s);
  add(&c->tot->transfer_j, &tr->energy_j);
  add(&c->tot->energy_j, &tr->energy_j);
  return MOSS_OK;
}

static moss_status cost_all(costing *c, moss_cost_node *nodes, moss_cost_transfer **out_tr,
                            int *out_ntr) {
  const moss_graph *g = c->g;
  const moss_target *t = c->t;
  moss_cost_report *r = c->r;
  moss_cost_totals *tot = c->tot;
  int i, k, nn = 0, ntr = 0, cap = 0, nd = moss_target_device_count(t);
  int host = moss_target_host_device(t);
  moss_cost_transfer *trs = NULL;
  moss_cost_figure *busy = moss_arena_alloc(r->arena, sizeof *busy * (size_t)(nd + 1), 8);
  moss_cost_figure *dev_e = moss_arena_alloc(r->arena, sizeof *dev_e * (size_t)(nd + 1), 8);

  if (!busy || !dev_e) return moss_fail(c->ctx, MOSS_E_NOMEM, NULL, "cost report");

  tot->time_s = sum_start("nodes and transfers in sequence");
  tot->compute_j = sum_start("effective MACs x pJ/MAC");
  tot->mem_j = sum_start("bytes x pJ/byte per level");
  tot->static_j = sum_start("idle W x time");
  tot->transfer_j = sum_start("bytes x pJ/byte at both ends");
  tot->energy_j = sum_start("op-model: MACs x pJ/MAC + bytes x pJ/byte + idle W x time "
                            "+ transfers");
  for (i = 0; i < nd; i++) {
    dev_e[i] = sum_start("op-model: the energy of its nodes");
    busy[i] = sum_start("the time of its nodes");
  }
  for (i = 0; i < g->nnodes; i++) {
    const moss_node *n = g->nodes[i];
    moss_cost_node *cn;
    int d;
    if (n->dead || (c->baseline && !has_fp32_twin(n))) continue;
    d = node_dev(c, n);
    if (d < 0 || d >= nd)
      return moss_fail(c->ctx, MOSS_E_INTERNAL, n, "node placed on device %d; target '%s' has %d",
                       d, moss_target_name(t), nd);
    cn = &nodes[nn++];
    c->new_step = !c->steps || nn == 1 || node_seg(c, n) != nodes[nn - 2].step;
    MOSS_TRY(cost_node(c, n, cn));
    tot->macs_dense += cn->macs_dense;
    tot->macs_effective += cn->macs_effective;
    tot->ops += cn->ops;
    tot->act_bytes += cn->act_bytes;
    tot->weight_read_bytes += cn->weight_bytes;
    tot->cycles += cn->cycles;
    add(&tot->time_s, &cn->time_s);
    add(&busy[cn->device], &cn->time_s);
    add(&tot->compute_j, &cn->compute_j);
    for (k = 0; k < moss_target_device_level_count(t, d); k++)
      add(&tot->mem_j, &cn->mem_j[k]);
    add(&tot->static_j, &cn->static_j);
    add(&tot->energy_j, &cn->energy_j);
    add(&dev_e[d], &cn->energy_j);

    /* Values this node reads that live on another device (a graph input
     * lives on the host), once per (value, reading device). */
    for (k = 0; k < n->ninputs; k++) {
      moss_value *v = moss_node_input(n, k);
      if (!v || v->data) continue;
      MOSS_TRY(add_transfer(c, v, value_dev(c, v, host), d, &trs, &ntr, &cap));
    }
  }
  /* Graph outputs made away from the host go back to it. */
  for (i = 0; i < g->noutputs; i++) {
    moss_value *v = g->outputs[i];
    if (v && !v->data) MOSS_TRY(add_transfer(c, v, value_dev(c, v, host), host, &trs, &ntr, &cap));
  }
  empty_sum_is_zero(&tot->time_s);
  if (!is_nm(&tot->time_s)) tot->time_s.label = "estimate";
  empty_sum_is_zero(&tot->compute_j);
  empty_sum_is_zero(&tot->mem_j);
  empty_sum_is_zero(&tot->static_j);
  empty_sum_is_zero(&tot->transfer_j);
  empty_sum_is_zero(&tot->energy_j);
  sum_end(&tot->time_s);
  sum_end(&tot->compute_j);
  sum_end(&tot->mem_j);
  sum_end(&tot->static_j);
  sum_end(&tot->transfer_j);
  sum_end(&tot->energy_j);
  tot->kwh = tot->energy_j.value / 3.6e6;

  /* Platform model, per device: active W while busy, idle W the rest. A
   * supply several devices share (<power shared=...>) is counted once, with
   * their summed busy time, on the first of them. */
  for (i = 0; i < nd; i++) {
    int none = busy[i].partial == -1;
    empty_sum_is_zero(&busy[i]);
    sum_end(&busy[i]);
    if (none) busy[i].source = "no node runs on it";
    else if (!is_nm(&busy[i])) busy[i].label = "estimate";
    else busy[i].source = fmt(r, "device '%s' has no clock: its nodes' times are not-modeled",
                              moss_target_device_id(t, i));
  }
  tot->platform_j = sum_start("platform-model: active W x busy time + idle W x the rest");
  for (i = 0; i < nd; i++) {
    double idle, active, bv = 0;
    const char *src, *shared = moss_target_device_power_shared(t, i);
    moss_cost_figure p;
    int first = -1, j, missing = 0, partial = 0;
    char with[256] = "";
    for (j = 0; j < nd; j++) { /* the devices drawing this supply: i alone when not shared */
      const char *o = moss_target_device_power_shared(t, j);
      if (j != i && (!shared || !o || strcmp(o, shared) != 0)) continue;
      if (first < 0) first = j;
      if (is_nm(&busy[j])) missing = 1;
      else bv += busy[j].value, partial |= busy[j].partial;
      if (j != i)
        snprintf(with + strlen(with), sizeof with - strlen(with), "%s'%s'", *with ? ", " : "",
                 moss_target_device_id(t, j));
    }
    if (!moss_target_device_power(t, i, &idle, &active, &src))
      p = not_modeled(fmt(r, "device '%s' has no power figures", moss_target_device_id(t, i)));
    else if (first != i)
      p = fig(0, "platform-model",
              fmt(r, "shared supply '%s': counted once, with device '%s'", shared,
                  moss_target_device_id(t, first)));
    else if (is_nm(&tot->time_s))
      p = not_modeled(tot->time_s.source);
    else {
      p = fig(active * bv + idle * (tot->time_s.value - bv), "platform-model",
              *with ? fmt(r, "%s; shared supply '%s', also drawn by device%s %s: counted once, "
                             "busy = their summed time", src, shared,
                          strchr(with, ',') ? "s" : "", with)
                    : dup(r, src));
      p.partial = tot->time_s.partial || partial || missing;
    }
    add(&tot->platform_j, &p);
    if (!c->baseline) {
      moss_cost_device *dv = &r->devices[i];
      dv->busy_s = busy[i];
      dv->platform_j = p;
      empty_sum_is_zero(&dev_e[i]);
      sum_end(&dev_e[i]);
      dv->energy_j = dev_e[i];
    }
  }
  if (!is_nm(&tot->platform_j)) tot->platform_j.label = "platform-model";
  sum_end(&tot->platform_j);
  grid_carbon(r, &tot->energy_j, &tot->carbon_g, &tot->carbon_g_per_million);
  {
    moss_cost_figure unused;
    grid_carbon(r, &tot->platform_j, &tot->platform_carbon_g, &unused);
  }
  if (out_tr) {
    *out_tr = trs;
    *out_ntr = ntr;
  }
  return MOSS_OK;
}

/* Per-device sums of the nodes' memory, compute and static energy. */
static void device_sums(moss_cost_report *r, const moss_target *t) {
  int i, k;
  for (i = 0; i < r->ndevices; i++) {
    moss_cost_device *dv = &r->devices[i];
    dv->compute_j = sum_start("effective MACs x pJ/MAC");
    dv->static_j = sum_start("idle W x time");
    for (k = 0; k < dv->nlevels; k++) dv->mem_j[k] = sum_start("bytes x pJ/byte");
  }
  for (i = 0; i < r->nnodes; i++) {
    moss_cost_node *cn = &r->nodes[i];
    moss_cost_device *dv = &r->devices[cn->device];
    add(&dv->compute_j, &cn->compute_j);
    add(&dv->static_j, &cn->static_j);
    for (k = 0; k < dv->nlevels; k++) {
      dv->bytes[k] += cn->bytes[k];
      add(&dv->mem_j[k], &cn->mem_j[k]);
    }
  }
  for (i = 0; i < r->ndevices; i++) {
    moss_cost_device *dv = &r->devices[i];
    empty_sum_is_zero(&dv->compute_j);
    empty_sum_is_zero(&dv->static_j);
    sum_end(&dv->compute_j);
    sum_end(&dv->static_j);
    for (k = 0; k < dv->nlevels; k++) {
      empty_sum_is_zero(&dv->mem_j[k]);
      sum_end(&dv->mem_j[k]);
    }
  }
  (void)t;
}

/* ------------------------------------------------------------- public */

/* run_id: a hash of model, target and the totals, so the same compile gives
 * the same id. */
static void set_run_id(moss_cost_report *r) {
  char buf[64];
  uint64_t h = moss_hash64(r->model, strlen(r->model), 0x6d6f7373);
  h = moss_hash64(r->target, strlen(r->target), h);
  snprintf(buf, sizeof buf, "%.17g %.17g", r->total.energy_j.value, r->total.time_s.value);
  h = moss_hash64(buf, strlen(buf), h);
  snprintf(r->run_id_buf, sizeof r->run_id_buf, "%016llx", (unsigned long long)h);
  r->run_id = r->run_id_buf;
}

moss_status moss_cost_set_measured(moss_ctx *ctx, moss_cost_report *r, const int *node_step,
                                   const double *step_s, int nsteps, double total_s, int runs,
                                   const char *how, const moss_cost_figure *counter) {
  const char *src, *shared_src;
  int i, j;
  r->measured = 0;
  src = fmt(r, "median of %d runs on this machine, CLOCK_MONOTONIC read around its step", runs);
  shared_src = fmt(r, "median of %d runs on this machine, CLOCK_MONOTONIC read around the step "
                   "it shares with other nodes, split by their estimated times", runs);
  r->measured_how = dup(r, how);
  if (r->nomem) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "report");
  for (i = 0; i < r->nnodes; i++) {
    moss_cost_node *n = &r->nodes[i];
    int k = node_step[i], share = 0;
    double est = 0, mine = is_nm(&n->time_s) ? 0 : n->time_s.value;
    if (k < 0 || k >= nsteps) {
      n->measured_s = not_modeled("no step of the plan runs it alone");
      continue;
    }
    for (j = 0; j < r->nnodes; j++) /* the nodes of its step */
      if (node_step[j] == k) {
        share++;
        est += is_nm(&r->nodes[j].time_s) ? 0 : r->nodes[j].time_s.value;
      }
    if (share == 1) n->measured_s = fig(step_s[k], "measured:clock", src);
    else if (est > 0) n->measured_s = fig(step_s[k] * mine / est, "measured:clock", shared_src);
    else n->measured_s = not_modeled("its step runs other nodes too, and no estimate splits it");
  }
  for (i = 0; i < r->ndevices; i++) {
    moss_cost_device *dv = &r->devices[i];
    dv->measured_busy_s = sum_start("the measured times of its nodes");
    for (j = 0; j < r->nnodes; j++)
      if (r->nodes[j].device == i) add(&dv->measured_busy_s, &r->nodes[j].measured_s);
    empty_sum_is_zero(&dv->measured_busy_s);
    if (!is_nm(&dv->measured_busy_s)) dv->measured_busy_s.label = "measured:clock";
    sum_end(&dv->measured_busy_s);
  }
  r->measured_platform_j = sum_start("active W x measured busy time + idle W x the rest of the "
                                     "measured run");
  for (i = 0; i < r->ndevices; i++) {
    moss_cost_device *dv = &r->devices[i];
    moss_cost_figure p;
    double busy = 0;
    int missing = 0, partial = 0;
    for (j = 0; j < r->ndevices; j++) /* the devices its supply feeds: i alone when not shared */
      if (r->devices[j].supply == i) {
        if (is_nm(&r->devices[j].measured_busy_s)) missing = 1;
        else busy += r->devices[j].measured_busy_s.value;
        partial |= r->devices[j].measured_busy_s.partial;
      }
    if (!dv->has_power)
      p = not_modeled(fmt(r, "device '%s' has no power figures", dv->id));
    else if (dv->supply != i)
      p = fig(0, "measured:clock", fmt(r, "shared supply '%s': counted once, with device '%s'",
                                       dv->power_shared, r->devices[dv->supply].id));
    else {
      p = fig(dv->active_w * busy + dv->idle_w * (total_s > busy ? total_s - busy : 0),
              "measured:clock", fmt(r, "%s, with measured time", dv->power_source));
      p.partial = missing || partial;
    }
    dv->measured_platform_j = p;
    add(&r->measured_platform_j, &p);
  }
  if (!is_nm(&r->measured_platform_j)) r->measured_platform_j.label = "measured:clock";
  sum_end(&r->measured_platform_j);
  {
    moss_cost_figure unused;
    grid_carbon(r, &r->measured_platform_j, &r->measured_platform_carbon_g, &unused);
  }
  r->measured_time_s = fig(total_s, "measured:clock",
                           fmt(r, "median of %d whole runs on this machine, CLOCK_MONOTONIC", runs));
  if (counter) {
    r->measured_energy_j = *counter;
    r->measured_energy_j.label = dup(r, counter->label);
    r->measured_energy_j.source = dup(r, counter->source);
  } else {
    r->measured_energy_j = not_modeled("no energy counter was read");
  }
  r->measured_runs = runs;
  if (r->nomem) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "report");
  r->measured = 1;
  return MOSS_OK;
}

moss_status moss_cost_set_model(moss_ctx *ctx, moss_cost_report *r, const char *name) {
  const char *copy = moss_arena_strdup(r->arena, name ? name : "");
  if (!copy) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "cost report");
  r->model = copy;
  set_run_id(r);
  return MOSS_OK;
}

/* The fp32 twin's placement, into |place| and |seg| (by node id, g->nodes
 * order; docs/report.md, "The baseline"). With |choose| (the partition
 * stage, through moss_cost_opts.twin_device), the twins are placed as
 * moss_partition places a float model, so that the baseline of a quantized
 * model is what its float model costs on the same target: node after
 * node, each twin goes to a device that accepts it in f32
 * (moss_cost_opts.twin_accepts); with the target's placement="cost" to the
 * one at the least time, the moves of its inputs from the devices the twin
 * made them on (graph inputs: the host) and of its graph outputs to the
 * host included, its times costed as the partitioner's table costs them
 * (each node a step of its own); else to the first in file order; none: the
 * fallback; with moss_cost_opts.host_only, to the host. Without |choose|,
 * each twin is where the partition stage put it (moss_node.twin_device),
 * or on its node's device. Either way a node without a twin (a Quantize, a
 * requantizing lookup) passes on the device of its first non-constant
 * input, and the steps are the runs of twins on one device. */
static moss_status place_twin(costing *c, double weight_bytes, const moss_cost_opts *o,
                              int choose, int *place, int *seg) {
  const moss_graph *g = c->g;
  const moss_target *t = c->t;
  int nd = moss_target_device_count(t), host = moss_target_host_device(t);
  int host_only = o && o->host_only;
  int bycost = choose && moss_target_placement_cost(t) && nd > 1 && !host_only;
  int fb = moss_target_fallback(t), i, d, k, prev = -1, s = -1;
  double *times = NULL;
  moss_cost_node tmp;

  for (i = 0; i < g->nnodes; i++) place[i] = g->nodes[i]->device, seg[i] = 0;
  if (bycost) {
    times = moss_arena_alloc(c->r->arena, sizeof *times * ((size_t)g->nnodes * (size_t)nd + 1), 8);
    if (!times) return moss_fail(c->ctx, MOSS_E_NOMEM, NULL, "cost report");
    c->baseline = 1;
    c->weight_bytes = weight_bytes;
    c->new_step = 1;
    for (d = 0; d < nd; d++) {
      c->force = d;
      for (i = 0; i < g->nnodes; i++) {
        const moss_node *n = g->nodes[i];
        double *ts = &times[(size_t)i * (size_t)nd + (size_t)d];
        *ts = -1;
        if (n->dead || !has_fp32_twin(n)) continue;
        MOSS_TRY(cost_node(c, n, &tmp));
        if (!is_nm(&tmp.time_s)) *ts = tmp.time_s.value;
      }
    }
    c->force = -1;
    c->baseline = 0;
  }
  c->place = place; /* value_dev reads the twins' devices as they are placed */
  for (i = 0; i < g->nnodes; i++) {
    const moss_node *n = g->nodes[i];
    int placed = -1, first = -1;
    double best = -1;
    if (n->dead) continue;
    if (!has_fp32_twin(n)) {
      place[i] = host;
      for (k = 0; k < n->ninputs; k++)
        if (n->inputs[k] && !n->inputs[k]->data) {
          place[i] = value_dev(c, n->inputs[k], host);
          break;
        }
      seg[i] = s < 0 ? 0 : s;
      continue;
    }
    for (d = 0; d < nd && choose && (bycost || placed < 0); d++) {
      double x, ts;
      if (host_only && d != host) continue;
      if (o && o->twin_accepts && !o->twin_accepts(o->twin_user, d, n)) continue;
      if (first < 0) first = d;
      if (!bycost) {
        placed = d;
        continue;
      }
      if ((ts = times[(size_t)i * (size_t)nd + (size_t)d]) < 0) continue;
      for (k = 0; k < n->ninputs + n->noutputs; k++) {
        const moss_value *v = k < n->ninputs ? n->inputs[k] : n->outputs[k - n->ninputs];
        int from = d, to = d;
        if (!v || v->data) continue;
        if (k < n->ninputs) from = value_dev(c, v, host);
        else if (v->output_index >= 0) to = host;
        if (from == to) continue;
        x = moss_cost_transfer_seconds(t, from, to, numel(v) * 4);
        if (x > 0) ts += x;
      }
      if (best < 0 || ts < best) best = ts, placed = d;
    }
    if (!choose) placed = n->twin_device >= 0 && n->twin_device < nd ? n->twin_device : n->device;
    else if (placed < 0) placed = first >= 0 ? first : fb >= 0 ? fb : n->device;
    place[i] = placed;
    if (placed != prev) s++;
    prev = placed;
    seg[i] = s;
  }
  c->place = NULL;
  return MOSS_OK;
}

moss_status moss_cost_compute(moss_ctx *ctx, const moss_graph *g, const moss_target *t,
                              const moss_cost_opts *opts, moss_cost_report **out) {
  moss_cost_report *r;
  moss_arena *ar;
  moss_status st;
  costing c;
  moss_cost_node *scratch;
  int i, k, nlive = 0, nd = moss_target_device_count(t);
  unsigned char *seen;
  int *place = NULL, *seg = NULL;
  double arena = 0, weights = 0, base_weights = 0, scale = 1;

  *out = NULL;
  if (moss_arena_create(ctx->alloc, 1 << 16, &ar) != MOSS_OK)
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "cost report");
  r = moss_arena_alloc(ar, sizeof *r, 8);
  if (!r) {
    moss_arena_destroy(ar);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "cost report");
  }
  r->arena = ar;
  for (i = 0; i < g->nnodes; i++) nlive += !g->nodes[i]->dead;
  r->nodes = moss_arena_alloc(ar, sizeof *r->nodes * (size_t)(nlive + 1), 8);
  scratch = moss_arena_alloc(ar, sizeof *scratch * (size_t)(nlive + 1), 8);
  r->devices = moss_arena_alloc(ar, sizeof *r->devices * (size_t)(nd + 1), 8);
  seen = moss_arena_alloc(ar, (size_t)g->nvalues + 1, 1);
  if (!r->nodes || !scratch || !r->devices || !seen) {
    moss_arena_destroy(ar);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "cost report");
  }
  r->model = dup(r, g->name && *g->name ? g->name : "model");
  r->target = dup(r, moss_target_name(t));
  r->target_description = dup(r, moss_target_description(t) ? moss_target_description(t) : "");
  r->grid_fallback = !opts || !(opts->grid_g_per_kwh > 0);
  r->grid_g_per_kwh = r->grid_fallback ? MOSS_COST_GRID_FALLBACK : opts->grid_g_per_kwh;
  r->ndevices = nd;
  for (i = 0; i < nd; i++) {
    moss_cost_device *dv = &r->devices[i];
    const char *cpu = moss_target_device_codegen(t, i, "cpu");
    dv->id = dup(r, moss_target_device_id(t, i));
    dv->kind = dup(r, moss_target_device_kind(t, i) ? moss_target_device_kind(t, i) : "cpu");
    dv->model = dup(r, cpu ? cpu : r->target_description);
    dv->threads = device_threads(t, i);
    dv->power_shared = dup(r, moss_target_device_power_shared(t, i));
    {
      const char *src = NULL;
      int j;
      dv->has_power = moss_target_device_power(t, i, &dv->idle_w, &dv->active_w, &src);
      dv->power_source = dv->has_power ? dup(r, src) : NULL;
      dv->supply = i; /* the first device drawing the same shared supply carries it */
      for (j = 0; dv->power_shared && j < i; j++)
        if (r->devices[j].power_shared && !strcmp(r->devices[j].power_shared, dv->power_shared)) {
          dv->supply = j;
          break;
        }
    }
    dv->nlevels = moss_target_device_level_count(t, i);
    if (dv->nlevels > MOSS_COST_MAX_LEVELS) dv->nlevels = MOSS_COST_MAX_LEVELS;
    for (k = 0; k < dv->nlevels; k++) {
      moss_target_level lv;
      moss_target_device_level(t, i, k, &lv);
      dv->level_name[k] = dup(r, lv.name);
    }
  }

  /* Arena (planned offsets) and weights (constants read, each once). */
  for (i = 0; i < g->nvalues; i++) {
    const moss_value *v = g->values[i];
    if (v->offset >= 0 && !v->alias && !v->data) {
      /* The planner's slots: sizes rounded up to MOSS_PLAN_ALIGN, at least one. */
      double sz = (double)moss_value_nbytes(v);
      double end = (double)v->offset +
                   (sz > 0 ? ceil(sz / MOSS_PLAN_ALIGN) * MOSS_PLAN_ALIGN : MOSS_PLAN_ALIGN);
      double ratio = moss_dtype_size(v->dtype) ? 4.0 / (double)moss_dtype_size(v->dtype) : 1;
      if (end > arena) arena = end;
      if (ratio > scale) scale = ratio;
    }
  }
  /* The weights as the code stores them, each constant once (a sparse
   * encoding belongs to its node); those of the fp32 dense twin. */
  memset(&c, 0, sizeof c);
  c.force = -1;
  c.ctx = ctx;
  c.g = g;
  c.t = t;
  c.r = r;
  c.steps = opts && opts->steps;
  c.opts = opts;
  for (i = 0; i < g->nnodes; i++) {
    const moss_node *n = g->nodes[i];
    wformat wf;
    if (n->dead) continue;
    weight_format(n, &wf);
    for (k = 0; k < n->ninputs; k++) {
      moss_value *v = moss_node_input(n, k);
      if (!v) continue;
      if (moss_value_numel(v) < 0) {
        moss_arena_destroy(ar);
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input '%s' has an unknown shape; the "
                         "cost model needs static shapes", v->name ? v->name : "");
      }
      if (!v->data || v->id < 0 || v->id >= g->nvalues) continue;
      if (wf.sparse && k == wf.winput) {
        weights += const_bytes(&c, n, k, v, &wf);
        continue;
      }
      if (seen[v->id] & 1) continue;
      seen[v->id] |= 1;
      weights += const_bytes(&c, n, k, v, &wf);
    }
    if (!has_fp32_twin(n)) continue;
    c.baseline = 1;
    for (k = 0; k < n->ninputs; k++) {
      moss_value *v = moss_node_input(n, k);
      if (!v || !v->data || v->id < 0 || v->id >= g->nvalues || (seen[v->id] & 2)) continue;
      seen[v->id] |= 2;
      base_weights += const_bytes(&c, n, k, v, NULL);
    }
    c.baseline = 0;
  }

  c.arena_bytes = arena;
  c.weight_bytes = weights;
  c.tot = &r->total;
  st = cost_all(&c, r->nodes, &r->transfers, &r->ntransfers);
  if (st == MOSS_OK) {
    r->nnodes = nlive;
    r->total.arena_bytes = total_bytes(arena);
    r->total.weight_bytes = total_bytes(weights);
    device_sums(r, t);
    place = moss_arena_alloc(ar, sizeof *place * (size_t)(g->nnodes + 1), 8);
    seg = moss_arena_alloc(ar, sizeof *seg * (size_t)(g->nnodes + 1), 8);
    if (!place || !seg) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "cost report");
    else if (opts && opts->twin_device)
      st = place_twin(&c, base_weights, opts, 1, opts->twin_device, seg);
  }
  if (st == MOSS_OK) st = place_twin(&c, base_weights, opts, 0, place, seg);
  if (st == MOSS_OK) {
    c.place = place;
    c.place_seg = seg;
    c.baseline = 1;
    c.arena_bytes = arena * scale;
    c.weight_bytes = base_weights;
    c.tot = &r->baseline;
    st = cost_all(&c, scratch, NULL, NULL);
    r->baseline.arena_bytes = total_bytes(arena * scale);
    r->baseline.weight_bytes = total_bytes(base_weights);
  }
  if (st == MOSS_OK && r->nomem) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "cost report");
  if (st != MOSS_OK) {
    moss_arena_destroy(ar);
    return st;
  }
  set_run_id(r);
  *out = r;
  return MOSS_OK;
}

moss_cost_figure moss_cost_ratio(const moss_cost_figure *num, const moss_cost_figure *den) {
  moss_cost_figure f;
  if (is_nm(num)) return not_modeled(num->source);
  if (is_nm(den)) return not_modeled(den->source);
  if (den->value == 0) return not_modeled("division by an exact 0");
  f = fig(num->value / den->value, "op-model", "the ratio of the two figures");
  f.partial = num->partial || den->partial;
  if (num->partial && den->partial)
    f.source = "both figures are partial (lower bounds): the ratio is neither exact nor a bound";
  else if (den->partial)
    f.source = "divides by a partial figure (a lower bound): the ratio is neither exact nor a "
               "bound";
  else if (num->partial)
    f.source = "a partial figure (a lower bound) divided: the ratio is a lower bound";
  return f;
}

void moss_cost_destroy(moss_ctx *ctx, moss_cost_report *r) {
  (void)ctx;
  if (r) moss_arena_destroy(r->arena);
}

/* "1.23 µs": |v| scaled to an SI prefix, 3 significant digits. */
static void si(double v, const char *unit, char *buf, size_t cap) {
  static const char *pre[] = {"p", "n", "\xc2\xb5", "m", "", "k", "M", "G"};
  int e = 4;
  double a = fabs(v);
  if (v == 0) {
    snprintf(buf, cap, "0 %s", unit);
    return;
  }
  while (a < 1 && e > 0) a *= 1000, v *= 1000, e--;
  while (a >= 1000 && e < 7) a /= 1000, v /= 1000, e++;
  snprintf(buf, cap, "%.3g %s%s", v, pre[e], unit);
}

static void fig_text(const moss_cost_figure *f, const char *unit, char *buf, size_t cap) {
  char num[48];
  if (is_nm(f)) {
    snprintf(buf, cap, "? %s (not-modeled)", unit);
    return;
  }
  si(f->value, unit, num, sizeof num);
  snprintf(buf, cap, "%s (%s%s)", num, f->label, f->partial ? ", partial" : "");
}

void moss_cost_summary(const moss_cost_report *r, char *buf, size_t cap) {
  char tm[64], e[80], p[80], co[80];
  if (!buf || cap == 0) return;
  if (is_nm(&r->total.time_s)) snprintf(tm, sizeof tm, "? s (not-modeled)");
  else si(r->total.time_s.value, "s", tm, sizeof tm);
  fig_text(&r->total.energy_j, "J", e, sizeof e);
  fig_text(&r->total.platform_j, "J", p, sizeof p);
  if (is_nm(&r->total.carbon_g)) snprintf(co, sizeof co, "? gCO2e");
  else si(r->total.carbon_g.value, "gCO2e", co, sizeof co);
  snprintf(buf, cap, "moss: cost on %s: %s, %s, %s, %s (grid %g%s), arena %lld B, weights %lld B",
           r->target, tm, e, p, co, r->grid_g_per_kwh, r->grid_fallback ? ", fallback" : "",
           (long long)r->total.arena_bytes, (long long)r->total.weight_bytes);
}
