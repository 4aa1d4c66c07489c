/* lower_quant.c - ONNX's quantized operators (compiler/ops/quant.c,
 * docs/numerics-int8.md) as kernel descriptions. QuantizeLinear,
 * DequantizeLinear and DynamicQuantizeLinear are the float<->int boundary
 * and use float32 arithmetic like ONNX: x / scale rounded half to even
 * (RINT in the default rounding mode), plus the zero point, clamped to the
 * output range; NaN gives the zero point. MatMulInteger, ConvInteger,
 * QLinearMatMul and QLinearConv are integer only: int32 sums of
 * (a - a_zp) * (b - b_zp), and for QLinear* the REQUANT intrinsic with
 * multipliers decomposed at compile time by moss_requant_compute, the same
 * integer formula as moss_requant_apply, so every backend agrees bit for
 * bit. Zero points may be run-time inputs (loaded) or constants (baked);
 * scales of QLinear* are constants. Nodes whose weight the sparse pass
 * encoded, and the dense int8 convolutions that take its scatter kernel
 * (its "dense twin"), are described by lower_sparse.c:
 * moss_lower_takes_quant leaves them out. The shared requantization and
 * clamp helpers (lower_quant.h) are at the end. */
#include <stdio.h>
#include <string.h>

#include "../ops/sparse.h"
#include "lower.h"
#include "lower_quant.h"

static moss_kx *bin(moss_kb *b, moss_kx_op op, moss_kx *x, moss_kx *y) {
  return moss_k_bin(b, op, x, y);
}
static moss_kx *i32(moss_kb *b, int64_t v) { return moss_k_int(b, MOSS_DT_I32, v); }
static moss_kx *f32(moss_kb *b, double v) { return moss_k_flt(b, MOSS_DT_F32, v); }

static int64_t lo_of(moss_dtype dt) { return dt == MOSS_DT_I8 ? -128 : 0; }
static int64_t hi_of(moss_dtype dt) { return dt == MOSS_DT_I8 ? 127 : 255; }

/* |e| as a local named |name| unless it is a constant or a variable. */
static moss_kx *named(moss_kb *b, const char *name, moss_kx *e) {
  if (e->op == MOSS_KX_CONST || e->op == MOSS_KX_VAR) return e;
  return moss_k_let(b, name, e);
}

/* Input |i|'s zero point at |idx| (per-element inputs only) as int32: a
 * constant when the input is one scalar constant, else a load; NULL when
 * it is absent or the constant 0 (nothing to subtract). */
static moss_kx *zero_point(moss_kb *b, const moss_node *n, int i, moss_kx *idx) {
  const moss_value *z = moss_node_input(n, i);
  int64_t ne;
  if (!z) return NULL;
  ne = moss_value_numel(z);
  if (ne == 1 && z->data) {
    int64_t v = moss_load_i64(z->dtype, z->data, 0);
    return v ? i32(b, v) : NULL;
  }
  return moss_k_cast(b, MOSS_DT_I32,
                     moss_k_load(b, moss_k_input(b, i), ne > 1 ? idx : moss_k_idx(b, 0)));
}

/* Whether input |i| (a zero point) has one value per element of an axis. */
static int per_axis(const moss_node *n, int i) {
  const moss_value *z = moss_node_input(n, i);
  return z && moss_value_numel(z) > 1;
}

/* Input |i|'s zero point at |idx|, a local when it is loaded: called where
 * |idx| is defined, outside the loops that do not change it. */
static moss_kx *zero_point_at(moss_kb *b, const moss_node *n, int i, moss_kx *idx,
                              const char *name) {
  moss_kx *z = zero_point(b, n, i, idx);
  return z ? named(b, name, z) : NULL;
}

/* v - zp for int32 operands, v when |zp| is NULL (v + |zp| for a
 * negative constant). */
static moss_kx *minus(moss_kb *b, moss_kx *v, moss_kx *zp) {
  if (!zp) return v;
  if (zp->op == MOSS_KX_CONST && zp->i < 0) return bin(b, MOSS_KX_ADD, v, i32(b, -zp->i));
  return bin(b, MOSS_KX_SUB, v, zp);
}

/* (int32)v - zp, or v when |zp| is NULL. */
static moss_kx *centered(moss_kb *b, moss_kx *v, moss_kx *zp) {
  return minus(b, moss_k_cast(b, MOSS_DT_I32, v), zp);
}

/* round(x / scale) + zp saturated to [lo, hi] as int32 (ONNX's
 * QuantizeLinear, float32): |x| and |scale| float32, |zp| int32 (NULL: 0).
 * The clamp is done in float, so the conversion to int32 is always in
 * range; a NaN quotient gives the zero point. */
static moss_kx *quantize(moss_kb *b, moss_kx *x, moss_kx *scale, moss_kx *zp, int64_t lo,
                         int64_t hi) {
  moss_kx *q = moss_k_let(b, "q", bin(b, MOSS_KX_DIV, x, scale));
  moss_kx *r = moss_k_call(b, MOSS_KFN_RINT, q, NULL, NULL);
  if (zp) r = bin(b, MOSS_KX_ADD, r, moss_k_cast(b, MOSS_DT_F32, zp));
  r = moss_k_call(b, MOSS_KFN_FMIN, moss_k_call(b, MOSS_KFN_FMAX, r, f32(b, (double)lo), NULL),
                  f32(b, (double)hi), NULL);
  return moss_k_select(b, moss_k_call(b, MOSS_KFN_ISNAN, q, NULL, NULL), zp ? zp : i32(b, 0),
                       moss_k_cast(b, MOSS_DT_I32, r));
}

/* QuantizeLinear, DequantizeLinear: one loop over the tensor, or with
 * per-axis parameters the loops before, along and after the axis. */
static moss_status lower_qdq(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *s = n->inputs[1], *y = n->outputs[0];
  int64_t ne = moss_value_numel(x), outer = 1, dim = 1, inner = 1;
  int xi, si, yi, axis, k, loops = 0;
  moss_kx *at, *c, *sc, *zp, *v;
  MOSS_TRY(moss_quant_axis(b->ctx, n, x, s, moss_node_input(n, 2), &axis));
  if (ne <= 0) return MOSS_OK;
  xi = moss_k_input(b, 0);
  si = moss_k_input(b, 1);
  yi = moss_k_output(b, 0);
  /* The scale and zero point, loaded outside the loops they do not change in. */
  if (axis < 0) {
    c = moss_k_idx(b, 0);
    sc = named(b, "s", moss_k_cast(b, MOSS_DT_F32, moss_k_load(b, si, c)));
    zp = zero_point_at(b, n, 2, c, "z");
    at = moss_k_range(b, "i", ne, MOSS_KL_PARALLEL);
    loops = 1;
  } else {
    moss_kx *i = moss_k_idx(b, 0), *j = moss_k_idx(b, 0);
    for (k = 0; k < axis; k++) outer *= x->dims[k];
    for (k = axis + 1; k < x->rank; k++) inner *= x->dims[k];
    dim = x->dims[axis];
    if (outer > 1) i = moss_k_range(b, "i", outer, MOSS_KL_PARALLEL), loops++;
    c = moss_k_range(b, "c", dim, MOSS_KL_PARALLEL);
    loops++;
    sc = named(b, "s", moss_k_cast(b, MOSS_DT_F32, moss_k_load(b, si, c)));
    zp = zero_point_at(b, n, 2, c, "z");
    if (inner > 1) j = moss_k_range(b, "j", inner, MOSS_KL_PARALLEL), loops++;
    at = moss_k_add(b, moss_k_add(b, moss_k_mulc(b, i, dim * inner), moss_k_mulc(b, c, inner)), j);
  }
  v = moss_k_cast(b, MOSS_DT_F32, moss_k_load(b, xi, at));
  if (n->op == MOSS_OP_QuantizeLinear) {
    v = quantize(b, v, sc, zp, lo_of(y->dtype), hi_of(y->dtype));
  } else {
    if (zp) v = bin(b, MOSS_KX_SUB, v, moss_k_cast(b, MOSS_DT_F32, zp));
    v = bin(b, MOSS_KX_MUL, v, sc);
  }
  moss_k_store(b, yi, at, moss_k_cast(b, y->dtype, v));
  while (loops--) moss_k_end(b);
  return b->st;
}

/* DynamicQuantizeLinear (uint8), as the ONNX spec: the range of x widened
 * to include 0, scale = range / 255 (1 for an empty range), the zero point
 * 0 - min / scale clamped to [0, 255] and rounded, then QuantizeLinear. */
static moss_status lower_dynamic(moss_kb *b, const moss_node *n) {
  int64_t ne = moss_value_numel(n->inputs[0]);
  int xi = moss_k_input(b, 0), y0 = moss_k_output(b, 0);
  moss_kx *mn = moss_k_let(b, "mn", f32(b, 0)), *mx = moss_k_let(b, "mx", f32(b, 0));
  moss_kx *i, *v, *sc, *izp, *zp;
  i = moss_k_range(b, "i", ne, MOSS_KL_REDUCE);
  v = moss_k_load(b, xi, i);
  moss_k_set(b, mn, bin(b, MOSS_KX_MIN, v, mn));
  moss_k_set(b, mx, bin(b, MOSS_KX_MAX, v, mx));
  moss_k_end(b);
  sc = moss_k_let(b, "sc",
                  moss_k_select(b, bin(b, MOSS_KX_EQ, mx, mn), f32(b, 1),
                                bin(b, MOSS_KX_DIV, bin(b, MOSS_KX_SUB, mx, mn), f32(b, 255))));
  izp = moss_k_let(b, "izp", bin(b, MOSS_KX_SUB, f32(b, 0), bin(b, MOSS_KX_DIV, mn, sc)));
  moss_k_set(
      b, izp,
      moss_k_select(b, bin(b, MOSS_KX_LT, izp, f32(b, 0)), f32(b, 0),
                    moss_k_select(b, bin(b, MOSS_KX_GT, izp, f32(b, 255)), f32(b, 255), izp)));
  zp = moss_k_let(b, "zp",
                  moss_k_cast(b, MOSS_DT_I32, moss_k_call(b, MOSS_KFN_RINT, izp, NULL, NULL)));
  i = moss_k_range(b, "i", ne, MOSS_KL_PARALLEL);
  moss_k_store(
      b, y0, i,
      moss_k_cast(b, n->outputs[0]->dtype, quantize(b, moss_k_load(b, xi, i), sc, zp, 0, 255)));
  moss_k_end(b);
  if (n->noutputs > 1 && n->outputs[1])
    moss_k_store(b, moss_k_output(b, 1), moss_k_idx(b, 0),
                 moss_k_cast(b, n->outputs[1]->dtype, sc));
  if (n->noutputs > 2 && n->outputs[2])
    moss_k_store(b, moss_k_output(b, 2), moss_k_idx(b, 0),
                 moss_k_cast(b, n->outputs[2]->dtype, zp));
  return b->st;
}

/* QLinear*: the multipliers a_scale[i] * b_scale[j] / y_scale (inputs 1,
 * 4 and 6) for i < na, j < nb, row-major (mult_index gives the index). */
static moss_status multipliers(moss_kb *b, const moss_node *n, moss_kreq *q, int64_t *out_na,
                               int64_t *out_nb) {
  const moss_value *sa = n->inputs[1], *sb = n->inputs[4], *sy = n->inputs[6];
  int64_t na = moss_value_numel(sa), nb = moss_value_numel(sb), i, j;
  double *ms;
  float ys;
  *out_na = na;
  *out_nb = nb;
  if (!sa->data || !sb->data || !sy->data)
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "quantization scales are not constants");
  if (sa->dtype != MOSS_DT_F32 || sb->dtype != MOSS_DT_F32 || sy->dtype != MOSS_DT_F32)
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "quantization scales of type %s",
                        moss_dtype_name(sa->dtype != MOSS_DT_F32   ? sa->dtype
                                        : sb->dtype != MOSS_DT_F32 ? sb->dtype
                                                                   : sy->dtype));
  ms = moss_k_scratch(b, na * nb, sizeof *ms);
  if (!ms) return b->st;
  ys = ((const float *)sy->data)[0];
  for (i = 0; i < na; i++)
    for (j = 0; j < nb; j++)
      ms[i * nb + j] = (double)((const float *)sa->data)[i] * ((const float *)sb->data)[j] / ys;
  moss_k_requant_init(b, q, ms, na * nb);
  return b->st;
}

/* The multiplier's index for row |ia| of A and column |ib| of B. */
static moss_kx *mult_index(moss_kb *b, int64_t na, int64_t nb, moss_kx *ia, moss_kx *ib) {
  if (na > 1 && nb > 1) return moss_k_add(b, moss_k_mulc(b, ia, nb), ib);
  return na > 1 ? ia : ib;
}

/* Stores the finished sum |acc| at |at|: as it is for an int32 output,
 * else |zy| (y_zp, NULL: 0) + REQUANT, clamped to the 8-bit output. */
static void store(moss_kb *b, const moss_node *n, moss_kx *at, moss_kx *acc, const moss_kreq *q,
                  moss_kx *qidx, moss_kx *zy) {
  const moss_value *y = n->outputs[0];
  int yi = moss_k_output(b, 0);
  moss_kx *r;
  if (y->dtype == MOSS_DT_I32) {
    moss_k_store(b, yi, at, acc);
    return;
  }
  r = moss_k_requant(b, q, acc, qidx);
  if (zy && zy->op == MOSS_KX_CONST) /* r + zy, as r - |zy| when zy < 0 */
    r = minus(b, r, i32(b, -zy->i));
  else if (zy)
    r = bin(b, MOSS_KX_ADD, zy, r);
  moss_k_store(b, yi, at, moss_k_qclamp(b, n, y->dtype, r));
}

/* MatMulInteger, QLinearMatMul: numpy matmul, batch dimensions broadcast;
 * zero points per tensor, per row of A or per column of B. */
static moss_status lower_matmul(moss_kb *b, const moss_node *n) {
  int ql = n->op == MOSS_OP_QLinearMatMul;
  int ib = ql ? 3 : 1, izb = ql ? 5 : 3, k, xa, xb;
  const moss_value *a = n->inputs[0], *w = n->inputs[ib];
  moss_quant_matmul p;
  moss_kreq q;
  int64_t na = 1, nb = 1;
  moss_kx *idx[MOSS_MAX_RANK], *ao, *bo, *yo, *m, *j, *kk, *acc, *prod;
  moss_kx *za = NULL, *zb = NULL, *zy = NULL;
  memset(&q, 0, sizeof q);
  q.cnt = 1;
  MOSS_TRY(moss_quant_matmul_compute(b->ctx, n, a, w, &p));
  if (moss_value_numel(n->outputs[0]) <= 0) return MOSS_OK;
  if (ql) MOSS_TRY(multipliers(b, n, &q, &na, &nb));
  xa = moss_k_input(b, 0);
  xb = moss_k_input(b, ib);
  if (!per_axis(n, 2)) za = zero_point_at(b, n, 2, moss_k_idx(b, 0), "za");
  if (!per_axis(n, izb)) zb = zero_point_at(b, n, izb, moss_k_idx(b, 0), "zb");
  if (ql) zy = zero_point_at(b, n, 7, moss_k_idx(b, 0), "zy");
  for (k = 0; k < p.rank; k++) {
    char name[16];
    snprintf(name, sizeof name, "i%d", k);
    idx[k] = moss_k_range(b, name, p.dims[k], MOSS_KL_PARALLEL);
  }
  ao = named(
      b, "ao",
      moss_k_mulc(b, moss_k_bcast_index(b, p.rank, p.dims, idx, p.arank, p.adims), p.M * p.K));
  bo = named(
      b, "bo",
      moss_k_mulc(b, moss_k_bcast_index(b, p.rank, p.dims, idx, p.brank, p.bdims), p.K * p.N));
  yo = named(b, "yo", moss_k_mulc(b, moss_k_flat_index(b, p.rank, p.dims, idx), p.M * p.N));
  m = moss_k_range(b, "m", p.M, MOSS_KL_PARALLEL);
  if (per_axis(n, 2)) za = zero_point_at(b, n, 2, m, "za");
  j = moss_k_range(b, "j", p.N, MOSS_KL_PARALLEL);
  if (per_axis(n, izb)) zb = zero_point_at(b, n, izb, j, "zb");
  acc = moss_k_let(b, "acc", i32(b, 0));
  kk = moss_k_range(b, "k", p.K, MOSS_KL_REDUCE);
  prod = bin(
      b, MOSS_KX_MUL,
      centered(b, moss_k_load(b, xa, moss_k_add(b, moss_k_add(b, ao, moss_k_mulc(b, m, p.K)), kk)),
               za),
      centered(b, moss_k_load(b, xb, moss_k_add(b, moss_k_add(b, bo, moss_k_mulc(b, kk, p.N)), j)),
               zb));
  moss_k_set(b, acc, bin(b, MOSS_KX_ADD, acc, prod));
  moss_k_end(b);
  store(b, n, moss_k_add(b, moss_k_add(b, yo, moss_k_mulc(b, m, p.N)), j), acc, &q,
        mult_index(b, na, nb, m, j), zy);
  moss_k_end(b);
  moss_k_end(b);
  for (k = 0; k < p.rank; k++) moss_k_end(b);
  return b->st;
}

/* A one-group ConvInteger or QLinearConv on a GPU as work-group tiles
 * (lower_gputile.c) of the implicit product in int32: A(m, k) = w - w_zp,
 * B(k, p) = x - x_zp at tap k of position p (0 in the padding, where the
 * input is its zero point), each sum from the bias (integer sums wrap: the
 * CPU's bits in any order), then the node's requantization. */
typedef struct qconv_tile {
  const moss_node *n;
  moss_gtile_conv cv;
  int xi, wi, izw;
  int64_t M, K, P;
  moss_kx *zx, *zw, *zy, *img; /* zw: NULL when per channel (loaded per row) */
  const moss_kreq *q;
  int64_t na, nb;
} qconv_tile;

static moss_kx *lt(moss_kb *b, moss_kx *v, int64_t hi) { return bin(b, MOSS_KX_LT, v, moss_k_idx(b, hi)); }

/* (int32)buf[at] - zp where |in|, else 0 (nothing read). */
static moss_kx *centered_or_0(moss_kb *b, int buf, moss_kx *at, moss_kx *in, moss_kx *zp) {
  moss_dtype dt = b->k->bufs[buf].dt;
  return moss_k_select(b, in, centered(b, moss_k_load_or(b, buf, at, in, moss_k_int(b, dt, 0)), zp), i32(b, 0));
}

/* Input |i|'s zero point at |idx| where |in|, as int32 (per axis). */
static moss_kx *zero_point_or_0(moss_kb *b, const moss_node *n, int i, moss_kx *idx, moss_kx *in) {
  return moss_k_cast(b, MOSS_DT_I32,
                     moss_k_load_or(b, moss_k_input(b, i), idx, in, moss_k_int(b, n->inputs[i]->dtype, 0)));
}

static moss_kx *qtile_w(moss_kb *b, const void *arg, moss_kx *m, moss_kx *k) {
  const qconv_tile *t = arg;
  moss_kx *in = bin(b, MOSS_KX_LAND, lt(b, m, t->M), lt(b, k, t->K)), *zw = t->zw;
  if (!zw && per_axis(t->n, t->izw)) /* per output channel: read only for rows inside */
    zw = zero_point_or_0(b, t->n, t->izw, m, lt(b, m, t->M));
  return centered_or_0(b, t->wi, moss_k_add(b, moss_k_mulc(b, m, t->K), k), in, zw);
}

static moss_kx *qtile_x(moss_kb *b, const void *arg, moss_kx *k, moss_kx *pos) {
  const qconv_tile *t = arg;
  moss_kx *in, *at = moss_gtile_patch(b, &t->cv, t->img, k, pos, &in);
  return centered_or_0(b, t->xi, at, in, t->zx);
}

static moss_kx *qtile_bias(moss_kb *b, const void *arg, moss_kx *m) {
  const qconv_tile *t = arg;
  return moss_k_cast(b, MOSS_DT_I32, moss_k_load_or(b, moss_k_input(b, 8), m, lt(b, m, t->M),
                                                    moss_k_int(b, t->n->inputs[8]->dtype, 0)));
}

static void qtile_store(moss_kb *b, const void *arg, moss_kx *m, moss_kx *pos, moss_kx *acc) {
  const qconv_tile *t = arg;
  moss_kx *at = moss_k_add(b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, t->img, t->M), m), t->P), pos);
  store(b, t->n, at, acc, t->q, mult_index(b, t->na, t->nb, moss_k_idx(b, 0), m), t->zy);
}

int moss_lower_qconv_gpu_tiles(moss_kb *b, const moss_node *n) {
  int ql = n->op == MOSS_OP_QLinearConv, iw = ql ? 3 : 1, d;
  const moss_value *x = n->inputs[0], *w = n->inputs[iw], *y = n->outputs[0];
  moss_quant_conv c;
  moss_kreq q;
  qconv_tile t;
  moss_gtile gt;
  int64_t taps = 1;
  if (!b->cpu.gpu || (n->op != MOSS_OP_QLinearConv && n->op != MOSS_OP_ConvInteger) || per_axis(n, 2) ||
      moss_value_numel(y) <= 0)
    return 0;
  memset(&q, 0, sizeof q);
  memset(&t, 0, sizeof t);
  q.cnt = 1;
  if (moss_quant_conv_compute(b->ctx, n, x, w, &c) != MOSS_OK || c.group != 1) return 0;
  t.n = n;
  t.izw = ql ? 5 : 3;
  t.cv.nsp = c.nsp;
  t.cv.C = x->dims[1];
  t.P = 1;
  for (d = 0; d < c.nsp; d++) {
    t.cv.in[d] = c.in[d];
    t.cv.out[d] = c.out[d];
    t.cv.k[d] = c.k[d];
    t.cv.s[d] = c.s[d];
    t.cv.d[d] = c.d[d];
    t.cv.p[d] = c.p[d];
    taps *= c.k[d];
    t.P *= c.out[d];
  }
  t.M = w->dims[0];
  t.K = t.cv.C * taps;
  t.q = &q;
  t.na = t.nb = 1;
  moss_gtile_set(&gt, MOSS_DT_I32, t.M, t.P, t.K, qtile_w, qtile_x, qtile_store, &t);
  gt.init = ql && moss_node_input(n, 8) ? qtile_bias : NULL;
  gt.dot4 = b->cpu.gpu_dot4 && moss_gtile_dot4_off(n, iw, t.izw, &gt.a_off) && moss_gtile_dot4_off(n, 0, 2, &gt.b_off);
  if (!moss_gtile_takes(&b->cpu, &gt)) return 0;
  if (ql && multipliers(b, n, &q, &t.na, &t.nb) != MOSS_OK) return 1; /* b->st holds the failure */
  t.xi = moss_k_input(b, 0);
  t.wi = moss_k_input(b, iw);
  t.zx = zero_point_at(b, n, 2, moss_k_idx(b, 0), "zx");
  if (!per_axis(n, t.izw)) t.zw = zero_point_at(b, n, t.izw, moss_k_idx(b, 0), "zw");
  if (ql) t.zy = zero_point_at(b, n, 7, moss_k_idx(b, 0), "zy");
  t.img = moss_k_range(b, "img", x->dims[0], MOSS_KL_PARALLEL);
  moss_gtile_product(b, &gt);
  moss_k_end(b);
  return 1;
}

/* MatMulInteger or QLinearMatMul on a GPU as work-group tiles
 * (lower_gputile.c) in int32: A(m, k) = a - a_zp (per tensor, or per row
 * m), B(k, n) = b - b_zp (per tensor, or per column n), the batch one grid
 * loop whose index is cut into the batch dimensions (each operand's
 * broadcast from them), then the node's requantization. */
typedef struct qmm_tile {
  const moss_node *n;
  int xa, xb, iza, izb;
  int64_t M, N, K, na, nb;
  moss_kx *ao, *bo, *yo, *za, *zb, *zy; /* za, zb: NULL when per axis (loaded per row, column) */
  const moss_kreq *q;
} qmm_tile;

static moss_kx *qmm_a(moss_kb *b, const void *arg, moss_kx *m, moss_kx *k) {
  const qmm_tile *t = arg;
  moss_kx *in = bin(b, MOSS_KX_LAND, lt(b, m, t->M), lt(b, k, t->K)), *za = t->za;
  if (!za && per_axis(t->n, t->iza)) za = zero_point_or_0(b, t->n, t->iza, m, lt(b, m, t->M));
  return centered_or_0(b, t->xa, moss_k_add(b, t->ao, moss_k_add(b, moss_k_mulc(b, m, t->K), k)), in, za);
}

static moss_kx *qmm_b(moss_kb *b, const void *arg, moss_kx *k, moss_kx *j) {
  const qmm_tile *t = arg;
  moss_kx *in = bin(b, MOSS_KX_LAND, lt(b, k, t->K), lt(b, j, t->N)), *zb = t->zb;
  if (!zb && per_axis(t->n, t->izb)) zb = zero_point_or_0(b, t->n, t->izb, j, lt(b, j, t->N));
  return centered_or_0(b, t->xb, moss_k_add(b, t->bo, moss_k_add(b, moss_k_mulc(b, k, t->N), j)), in, zb);
}

static void qmm_store(moss_kb *b, const void *arg, moss_kx *m, moss_kx *j, moss_kx *acc) {
  const qmm_tile *t = arg;
  store(b, t->n, moss_k_add(b, t->yo, moss_k_add(b, moss_k_mulc(b, m, t->N), j)), acc, t->q,
        mult_index(b, t->na, t->nb, m, j), t->zy);
}

/* Returns 1 when it appended the tiled kernel (or failed: b->st), 0 when
 * the node keeps lower_matmul's loops. */
static int qmatmul_gpu_tiles(moss_kb *b, const moss_node *n) {
  int ql = n->op == MOSS_OP_QLinearMatMul, k;
  moss_quant_matmul p;
  moss_kreq q;
  qmm_tile t;
  moss_gtile gt;
  moss_kx *idx[MOSS_MAX_RANK], *f = NULL;
  int64_t total = 1, stride;
  if (!b->cpu.gpu || moss_value_numel(n->outputs[0]) <= 0) return 0;
  if (moss_quant_matmul_compute(b->ctx, n, n->inputs[0], n->inputs[ql ? 3 : 1], &p) != MOSS_OK) return 0;
  memset(&q, 0, sizeof q);
  memset(&t, 0, sizeof t);
  q.cnt = 1;
  t.n = n;
  t.iza = 2;
  t.izb = ql ? 5 : 3;
  t.M = p.M;
  t.N = p.N;
  t.K = p.K;
  t.na = t.nb = 1;
  t.q = &q;
  moss_gtile_set(&gt, MOSS_DT_I32, p.M, p.N, p.K, qmm_a, qmm_b, qmm_store, &t);
  gt.dot4 = b->cpu.gpu_dot4 && moss_gtile_dot4_off(n, 0, t.iza, &gt.a_off) &&
            moss_gtile_dot4_off(n, ql ? 3 : 1, t.izb, &gt.b_off);
  if (!moss_gtile_takes(&b->cpu, &gt)) return 0;
  if (ql && multipliers(b, n, &q, &t.na, &t.nb) != MOSS_OK) return 1; /* b->st holds the failure */
  t.xa = moss_k_input(b, 0);
  t.xb = moss_k_input(b, ql ? 3 : 1);
  if (!per_axis(n, t.iza)) t.za = zero_point_at(b, n, t.iza, moss_k_idx(b, 0), "za");
  if (!per_axis(n, t.izb)) t.zb = zero_point_at(b, n, t.izb, moss_k_idx(b, 0), "zb");
  if (ql) t.zy = zero_point_at(b, n, 7, moss_k_idx(b, 0), "zy");
  for (k = 0; k < p.rank; k++) total *= p.dims[k];
  if (p.rank > 0) f = moss_k_range(b, "bt", total, MOSS_KL_PARALLEL);
  for (k = p.rank - 1, stride = 1; k >= 0; stride *= p.dims[k], k--) { /* (f / stride) % dims[k] */
    idx[k] = stride > 1 ? bin(b, MOSS_KX_DIV, f, moss_k_idx(b, stride)) : f;
    if (k > 0) idx[k] = bin(b, MOSS_KX_REM, idx[k], moss_k_idx(b, p.dims[k]));
  }
  t.ao = p.rank ? moss_k_mulc(b, moss_k_bcast_index(b, p.rank, p.dims, idx, p.arank, p.adims), p.M * p.K)
                : moss_k_idx(b, 0);
  t.bo = p.rank ? moss_k_mulc(b, moss_k_bcast_index(b, p.rank, p.dims, idx, p.brank, p.bdims), p.K * p.N)
                : moss_k_idx(b, 0);
  t.yo = p.rank ? moss_k_mulc(b, f, p.M * p.N) : moss_k_idx(b, 0);
  moss_gtile_product(b, &gt);
  if (p.rank > 0) moss_k_end(b);
  return 1;
}

/* ConvInteger, QLinearConv: a direct loop nest over (batch, group, output
 * channel, output position) summing (x - x_zp) * (w - w_zp[o]) over the
 * group's input channels and the kernel taps; padding contributes nothing
 * (a padded input equals the zero point), so taps outside the input are
 * skipped, tested only along dimensions where a window can leave it. */
static moss_status lower_conv(moss_kb *b, const moss_node *n) {
  int ql = n->op == MOSS_OP_QLinearConv;
  int iw = ql ? 3 : 1, izw = ql ? 5 : 3, k, xi, wi, nif = 0;
  const moss_value *x = n->inputs[0], *w = n->inputs[iw], *y = n->outputs[0];
  const moss_value *bias = ql ? moss_node_input(n, 8) : NULL;
  moss_quant_conv c;
  moss_kreq q;
  int64_t oc = w->dims[0], ic = x->dims[1], cpg, opg, na = 1, nb = 1;
  int64_t xs[MOSS_MAX_RANK], ws[MOSS_MAX_RANK], ys[MOSS_MAX_RANK], XS = 1, WS = 1, YS = 1;
  moss_kx *bt, *o, *g = NULL, *cc, *acc, *xat, *wat, *yat, *op[MOSS_MAX_RANK];
  moss_kx *zx, *zw = NULL, *zy = NULL;
  memset(&q, 0, sizeof q);
  q.cnt = 1;
  if (moss_lower_qconv_gpu_tiles(b, n)) return b->st;
  MOSS_TRY(moss_quant_conv_compute(b->ctx, n, x, w, &c));
  if (moss_value_numel(y) <= 0) return MOSS_OK;
  cpg = ic / c.group;
  opg = oc / c.group;
  if (ql) MOSS_TRY(multipliers(b, n, &q, &na, &nb));
  for (k = c.nsp - 1; k >= 0; k--) { /* strides of the spatial dimensions */
    xs[k] = XS, XS *= c.in[k];
    ws[k] = WS, WS *= c.k[k];
    ys[k] = YS, YS *= c.out[k];
  }
  xi = moss_k_input(b, 0);
  wi = moss_k_input(b, iw);
  zx = zero_point_at(b, n, 2, moss_k_idx(b, 0), "zx");
  if (!per_axis(n, izw)) zw = zero_point_at(b, n, izw, moss_k_idx(b, 0), "zw");
  if (ql) zy = zero_point_at(b, n, 7, moss_k_idx(b, 0), "zy");
  bt = moss_k_range(b, "b", x->dims[0], MOSS_KL_PARALLEL);
  if (c.group > 1) {
    moss_kx *oo;
    g = moss_k_range(b, "g", c.group, MOSS_KL_PARALLEL);
    oo = moss_k_range(b, "m", opg, MOSS_KL_PARALLEL);
    o = moss_k_let(b, "o", moss_k_add(b, moss_k_mulc(b, g, opg), oo));
  } else {
    o = moss_k_range(b, "o", oc, MOSS_KL_PARALLEL);
  }
  if (per_axis(n, izw)) zw = zero_point_at(b, n, izw, o, "zw");
  yat = moss_k_add(b, moss_k_mulc(b, bt, oc * YS), moss_k_mulc(b, o, YS));
  for (k = 0; k < c.nsp; k++) {
    char name[16];
    snprintf(name, sizeof name, "o%d", k);
    op[k] = moss_k_range(b, name, c.out[k], MOSS_KL_PARALLEL);
    yat = moss_k_add(b, yat, moss_k_mulc(b, op[k], ys[k]));
  }
  acc = moss_k_let(b, "acc", i32(b, 0));
  cc = moss_k_range(b, "c", cpg, MOSS_KL_REDUCE);
  xat = moss_k_add(b, moss_k_mulc(b, bt, ic * XS), moss_k_mulc(b, cc, XS));
  if (g) xat = moss_k_add(b, xat, moss_k_mulc(b, g, cpg * XS));
  wat = moss_k_add(b, moss_k_mulc(b, o, cpg * WS), moss_k_mulc(b, cc, WS));
  for (k = 0; k < c.nsp; k++) {
    char name[16];
    moss_kx *kk, *pos, *cond = NULL;
    snprintf(name, sizeof name, "k%d", k);
    kk = moss_k_range(b, name, c.k[k], MOSS_KL_REDUCE);
    pos = moss_k_add(b, moss_k_mulc(b, op[k], c.s[k]), moss_k_mulc(b, kk, c.d[k]));
    if (c.p[k]) pos = bin(b, MOSS_KX_SUB, pos, moss_k_idx(b, c.p[k]));
    /* The first tap of the first window and the last of the last. */
    if (c.p[k] > 0 || (c.out[k] - 1) * c.s[k] + (c.k[k] - 1) * c.d[k] - c.p[k] >= c.in[k]) {
      snprintf(name, sizeof name, "p%d", k);
      pos = moss_k_let(b, name, pos);
      if (c.p[k] > 0) cond = bin(b, MOSS_KX_GE, pos, moss_k_idx(b, 0));
      if ((c.out[k] - 1) * c.s[k] + (c.k[k] - 1) * c.d[k] - c.p[k] >= c.in[k]) {
        moss_kx *hi = bin(b, MOSS_KX_LT, pos, moss_k_idx(b, c.in[k]));
        cond = cond ? bin(b, MOSS_KX_LAND, cond, hi) : hi;
      }
      moss_k_if(b, cond);
      nif++;
    }
    xat = moss_k_add(b, xat, moss_k_mulc(b, pos, xs[k]));
    wat = moss_k_add(b, wat, moss_k_mulc(b, kk, ws[k]));
  }
  moss_k_set(b, acc,
             bin(b, MOSS_KX_ADD, acc,
                 bin(b, MOSS_KX_MUL, centered(b, moss_k_load(b, xi, xat), zx),
                     centered(b, moss_k_load(b, wi, wat), zw))));
  for (k = 0; k < c.nsp + nif; k++) moss_k_end(b);
  moss_k_end(b); /* c */
  if (bias)
    moss_k_set(b, acc,
               bin(b, MOSS_KX_ADD, acc,
                   moss_k_cast(b, MOSS_DT_I32, moss_k_load(b, moss_k_input(b, 8), o))));
  store(b, n, yat, acc, &q, mult_index(b, na, nb, moss_k_idx(b, 0), o), zy);
  for (k = 0; k < c.nsp; k++) moss_k_end(b);
  moss_k_end(b); /* o, or m */
  if (g) moss_k_end(b);
  moss_k_end(b); /* b */
  return b->st;
}

int moss_lower_takes_quant(const moss_node *n) {
  moss_sparse_view v;
  if (n->sparse) return 0;
  return !((n->op == MOSS_OP_QLinearConv || n->op == MOSS_OP_ConvInteger) &&
           moss_sparse_view_get(n, &v));
}

moss_status moss_lower_quant(moss_kb *b, const moss_node *n) {
  switch (n->op) {
  case MOSS_OP_QuantizeLinear:
  case MOSS_OP_DequantizeLinear: return lower_qdq(b, n);
  case MOSS_OP_DynamicQuantizeLinear: return lower_dynamic(b, n);
  case MOSS_OP_MatMulInteger:
  case MOSS_OP_QLinearMatMul:
    if (qmatmul_gpu_tiles(b, n)) return b->st; /* on a GPU, where the tiles take it */
    return lower_matmul(b, n);
  case MOSS_OP_ConvInteger: return lower_conv(b, n);
  case MOSS_OP_QLinearConv:
    if (moss_lower_qconv_igemm(b, n)) return b->st; /* depthwise on int32 planes, lower_conv.c */
    return lower_conv(b, n);
  default: return moss_kb_fail(b, MOSS_E_INTERNAL, "not a quantized operator");
  }
}

/* ---- shared with lower_qfold.c (lower_quant.h) ------------------------------------------- */

void *moss_k_scratch(moss_kb *b, int64_t cnt, size_t size) {
  size_t bytes;
  void *p;
  if (b->st != MOSS_OK) return NULL;
  if (cnt < 0 || !moss_size_mul((size_t)cnt, size, &bytes)) {
    moss_kb_fail(b, MOSS_E_INVALID_MODEL, "kernel table of %lld elements", (long long)cnt);
    return NULL;
  }
  p = moss_arena_alloc(b->arena, bytes ? bytes : 1, 16);
  if (!p) moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
  return p;
}

void moss_k_requant_init(moss_kb *b, moss_kreq *q, const double *ms, int64_t cnt) {
  int32_t *qm, *qs;
  int64_t i;
  memset(q, 0, sizeof *q);
  q->cnt = cnt;
  if (cnt <= 1) {
    moss_requant r;
    moss_requant_compute(cnt == 1 ? ms[0] : 0.0, &r);
    q->mult = r.mult;
    q->shift = r.shift;
    return;
  }
  qm = moss_k_scratch(b, cnt, sizeof *qm);
  qs = moss_k_scratch(b, cnt, sizeof *qs);
  if (!qm || !qs) return;
  for (i = 0; i < cnt; i++) {
    moss_requant r;
    moss_requant_compute(ms[i], &r);
    qm[i] = r.mult;
    qs[i] = r.shift;
  }
  q->qm = moss_k_table(b, "qm", MOSS_DT_I32, cnt, qm);
  q->qs = moss_k_table(b, "qs", MOSS_DT_I32, cnt, qs);
}

moss_kx *moss_k_requant(moss_kb *b, const moss_kreq *q, moss_kx *acc, moss_kx *idx) {
  if (q->cnt <= 1) return moss_k_call(b, MOSS_KFN_REQUANT, acc, i32(b, q->mult), i32(b, q->shift));
  return moss_k_call(b, MOSS_KFN_REQUANT, acc, moss_k_load(b, q->qm, idx),
                     moss_k_load(b, q->qs, idx));
}

moss_kx *moss_k_qclamp(moss_kb *b, const moss_node *n, moss_dtype dt, moss_kx *r) {
  int64_t tlo = lo_of(dt), thi = hi_of(dt);
  int64_t lo = moss_attr_int(n, "qmin", tlo), hi = moss_attr_int(n, "qmax", thi);
  if (lo < tlo) lo = tlo;
  if (hi > thi) hi = thi;
  r = named(b, "r", r);
  if (lo == tlo && hi == thi) return moss_k_sat(b, dt, r);
  /* r < lo ? lo : min(r, hi): within the type, so a plain conversion. */
  return moss_k_cast(b, dt,
                     moss_k_select(b, bin(b, MOSS_KX_LT, r, i32(b, lo)), i32(b, lo),
                                   bin(b, MOSS_KX_MIN, r, i32(b, hi))));
}
