/* cost.c - the cost and energy model, run after the memory plan: it walks
 * the planned graph in execution order and, for each node on its device,
 * counts MACs (dense, and effective from the share of non-zero weights),
 * element ops, and bytes read and written per memory level; turns them into a
 * roofline cycle count and a time, then into energy by DESIGN.md's formula
 * with the target's figures, each labelled by its source. Values that cross
 * devices are costed as transfers. The same walk with every tensor in f32 and
 * every weight dense gives the baseline. docs/report.md states every rule. */
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
  double arena_bytes, weight_bytes; /* of this costing, for the level rule */
  moss_cost_totals *tot;
} costing;

/* ------------------------------------------------------------ helpers */

static const char *dup(moss_cost_report *r, const char *s) {
  return s ? moss_arena_strdup(r->arena, s) : NULL;
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
  return moss_arena_strdup(r->arena, buf);
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
  return moss_arena_strdup(r->arena, buf);
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

static double numel(const moss_value *v) {
  int64_t n = v ? moss_value_numel(v) : 0;
  return n > 0 ? (double)n : 0;
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

/* Innermost level whose size holds |bytes|; levels without a size are
 * skipped; the outermost level takes what fits nowhere. -1: no levels. */
static int pick_level(const moss_target *t, int dev, double bytes) {
  int k, nl = moss_target_device_level_count(t, dev);
  moss_target_level lv;
  for (k = 0; k < nl; k++) {
    moss_target_device_level(t, dev, k, &lv);
    if (lv.size_bytes > 0 && (double)lv.size_bytes >= bytes) return k;
  }
  return nl - 1;
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

static moss_status cost_node(costing *c, const moss_node *n, moss_cost_node *cn) {
  const moss_target *t = c->t;
  moss_cost_report *r = c->r;
  int d = n->device, k, nl, have_rate, have_clock;
  const moss_value *w = NULL;
  double clock = moss_target_device_clock_mhz(t, d), rate, units;
  moss_dtype dt;
  const char *src;
  double pj, idle, active;
  moss_target_level lv;

  memset(cn, 0, sizeof *cn);
  cn->name = dup(r, n->name ? n->name : "");
  cn->op_type = dup(r, n->op_type ? n->op_type : "?");
  cn->device = d;
  cn->act_level = cn->weight_level = -1;
  cn->weight_density = 1;

  /* MACs or ops, and the compute dtype. */
  cn->mac_op = mac_count(n, &cn->macs_dense, &w);
  if (cn->mac_op) {
    moss_value *x = moss_node_input(n, 0);
    if (!c->baseline) cn->weight_density = density(w);
    if (!c->baseline) sparse_formats(n, cn);
    cn->macs_effective = cn->macs_dense * cn->weight_density;
    if (n->act.kind != MOSS_ACT_NONE) cn->ops = numel(n->outputs[0]);
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
    cn->ops = most;
    dt = n->noutputs && n->outputs[0] ? n->outputs[0]->dtype : MOSS_DT_F32;
    cn->dtype = moss_dtype_short(dt);
  } else {
    cn->dtype = moss_dtype_short(n->outputs[0] ? n->outputs[0]->dtype : MOSS_DT_F32);
  }
  if (c->baseline) cn->dtype = "f32";

  /* Bytes: activations read and written, weights read; a view moves nothing. */
  if (!all_outputs_alias(n)) {
    for (k = 0; k < n->ninputs; k++) {
      moss_value *v = moss_node_input(n, k);
      if (!v) continue;
      if (v->data) cn->weight_bytes += vbytes(c, v);
      else cn->act_bytes += vbytes(c, v);
    }
    for (k = 0; k < n->noutputs; k++) cn->act_bytes += vbytes(c, n->outputs[k]);
  }
  nl = moss_target_device_level_count(t, d);
  if (nl > MOSS_COST_MAX_LEVELS)
    return moss_fail(c->ctx, MOSS_E_TARGET, n, "target '%s': device '%s' has %d memory levels; "
                     "the cost model takes at most %d", moss_target_name(t),
                     moss_target_device_id(t, d), nl, MOSS_COST_MAX_LEVELS);
  cn->act_level = pick_level(t, d, c->arena_bytes);
  cn->weight_level = pick_level(t, d, c->weight_bytes);
  if (cn->act_level >= 0) cn->bytes[cn->act_level] += cn->act_bytes;
  if (cn->weight_level >= 0) cn->bytes[cn->weight_level] += cn->weight_bytes;

  /* Roofline: compute cycles (dense MACs + ops at the dtype's peak rate)
   * against each level's transfer cycles. */
  units = moss_target_device_units(t, d) > 0 ? moss_target_device_units(t, d) : 1;
  rate = moss_target_device_macs_per_cycle(t, d, cn->dtype) * units;
  have_rate = rate > 0;
  have_clock = clock > 0;
  if (have_rate) cn->compute_cycles = (cn->macs_dense + cn->ops) / rate;
  cn->cycles = cn->compute_cycles;
  {
    int partial = !have_rate && cn->macs_dense + cn->ops > 0;
    const char *missing = partial ? fmt(r, "no MAC rate for %s", cn->dtype) : NULL;
    for (k = 0; k < nl; k++) {
      moss_target_device_level(t, d, k, &lv);
      if (cn->bytes[k] <= 0) continue;
      if (lv.bandwidth_gbps > 0 && have_clock)
        cn->mem_cycles[k] = cn->bytes[k] * clock / (lv.bandwidth_gbps * 1000.0);
      else if (!missing) partial = 1, missing = fmt(r, "no bandwidth for level %s", lv.name);
      else partial = 1;
      if (cn->mem_cycles[k] > cn->cycles) cn->cycles = cn->mem_cycles[k];
    }
    if (nl == 0 && cn->act_bytes + cn->weight_bytes > 0 && !missing)
      partial = 1, missing = "the device has no memory levels";
    if (!have_clock)
      cn->time_s = not_modeled(fmt(r, "device '%s' has no clock", moss_target_device_id(t, d)));
    else {
      cn->time_s = fig(cn->cycles / (clock * 1e6), "estimate",
                       missing ? fmt(r, "roofline: max(compute, memory) cycles / clock; %s",
                                     missing)
                               : "roofline: max(compute, memory) cycles / clock");
      cn->time_s.partial = partial;
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
  int ls = pick_level(t, from, c->arena_bytes), ld = pick_level(t, to, c->arena_bytes);
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
  double *busy = moss_arena_alloc(r->arena, sizeof *busy * (size_t)(nd + 1), 8);
  moss_cost_figure *dev_e = moss_arena_alloc(r->arena, sizeof *dev_e * (size_t)(nd + 1), 8);

  if (!busy || !dev_e) return moss_fail(c->ctx, MOSS_E_NOMEM, NULL, "cost report");

  tot->time_s = sum_start("nodes and transfers in sequence");
  tot->compute_j = sum_start("effective MACs x pJ/MAC");
  tot->mem_j = sum_start("bytes x pJ/byte per level");
  tot->static_j = sum_start("idle W x time");
  tot->transfer_j = sum_start("bytes x pJ/byte at both ends");
  tot->energy_j = sum_start("op-model: MACs x pJ/MAC + bytes x pJ/byte + idle W x time "
                            "+ transfers");
  for (i = 0; i < nd; i++) dev_e[i] = sum_start("op-model: the energy of its nodes");
  for (i = 0; i < g->nnodes; i++) {
    const moss_node *n = g->nodes[i];
    moss_cost_node *cn;
    if (n->dead) continue;
    if (n->device < 0 || n->device >= nd)
      return moss_fail(c->ctx, MOSS_E_INTERNAL, n, "node placed on device %d; target '%s' has %d",
                       n->device, moss_target_name(t), nd);
    cn = &nodes[nn++];
    MOSS_TRY(cost_node(c, n, cn));
    tot->macs_dense += cn->macs_dense;
    tot->macs_effective += cn->macs_effective;
    tot->ops += cn->ops;
    tot->act_bytes += cn->act_bytes;
    tot->weight_read_bytes += cn->weight_bytes;
    tot->cycles += cn->cycles;
    add(&tot->time_s, &cn->time_s);
    if (!is_nm(&cn->time_s)) busy[cn->device] += cn->time_s.value;
    add(&tot->compute_j, &cn->compute_j);
    for (k = 0; k < moss_target_device_level_count(t, n->device); k++)
      add(&tot->mem_j, &cn->mem_j[k]);
    add(&tot->static_j, &cn->static_j);
    add(&tot->energy_j, &cn->energy_j);
    add(&dev_e[n->device], &cn->energy_j);

    /* Values this node reads that live on another device (a graph input
     * lives on the host), once per (value, reading device). */
    for (k = 0; k < n->ninputs; k++) {
      moss_value *v = moss_node_input(n, k);
      if (!v || v->data) continue;
      MOSS_TRY(add_transfer(c, v, moss_value_device(v, host), n->device, &trs, &ntr, &cap));
    }
  }
  /* Graph outputs made away from the host go back to it. */
  for (i = 0; i < g->noutputs; i++) {
    moss_value *v = g->outputs[i];
    if (v && !v->data) MOSS_TRY(add_transfer(c, v, moss_value_device(v, host), host, &trs, &ntr,
                                             &cap));
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

  /* Platform model, per device: active W while busy, idle W the rest. */
  tot->platform_j = sum_start("platform-model: active W x busy time + idle W x the rest");
  for (i = 0; i < nd; i++) {
    double idle, active;
    const char *src;
    moss_cost_figure p;
    if (!moss_target_device_power(t, i, &idle, &active, &src))
      p = not_modeled(fmt(r, "device '%s' has no power figures", moss_target_device_id(t, i)));
    else if (is_nm(&tot->time_s))
      p = not_modeled(tot->time_s.source);
    else {
      double b = busy[i];
      p = fig(active * b + idle * (tot->time_s.value - b), "platform-model", dup(r, src));
      p.partial = tot->time_s.partial;
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

moss_status moss_cost_set_model(moss_ctx *ctx, moss_cost_report *r, const char *name) {
  const char *copy = moss_arena_strdup(r->arena, name ? name : "");
  if (!copy) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "cost report");
  r->model = copy;
  set_run_id(r);
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
  for (i = 0; i < g->nnodes; i++) {
    const moss_node *n = g->nodes[i];
    if (n->dead) continue;
    for (k = 0; k < n->ninputs; k++) {
      moss_value *v = moss_node_input(n, k);
      if (!v) continue;
      if (moss_value_numel(v) < 0) {
        moss_arena_destroy(ar);
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input '%s' has an unknown shape; the "
                         "cost model needs static shapes", v->name ? v->name : "");
      }
      if (!v->data || v->id < 0 || v->id >= g->nvalues || seen[v->id]) continue;
      seen[v->id] = 1;
      weights += (double)moss_value_nbytes(v);
      base_weights += numel(v) * 4;
    }
  }

  memset(&c, 0, sizeof c);
  c.ctx = ctx;
  c.g = g;
  c.t = t;
  c.r = r;
  c.arena_bytes = arena;
  c.weight_bytes = weights;
  c.tot = &r->total;
  st = cost_all(&c, r->nodes, &r->transfers, &r->ntransfers);
  if (st == MOSS_OK) {
    r->nnodes = nlive;
    r->total.arena_bytes = (int64_t)arena;
    r->total.weight_bytes = (int64_t)weights;
    device_sums(r, t);
    c.baseline = 1;
    c.arena_bytes = arena * scale;
    c.weight_bytes = base_weights;
    c.tot = &r->baseline;
    st = cost_all(&c, scratch, NULL, NULL);
    r->baseline.arena_bytes = (int64_t)(arena * scale);
    r->baseline.weight_bytes = (int64_t)base_weights;
  }
  if (st != MOSS_OK) {
    moss_arena_destroy(ar);
    return st;
  }
  set_run_id(r);
  *out = r;
  return MOSS_OK;
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
