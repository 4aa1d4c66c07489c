/* lower_qfold.c - moss's own integer ops (compiler/ops/qfold.c), which the
 * qdq pass makes from Dequantize -> op -> Quantize patterns (docs/qdq.md),
 * as kernel descriptions. Integer only: int32 sums, then docs/numerics-
 * int8.md's requantization (the REQUANT intrinsic) with multipliers
 * decomposed at compile time, then the clamp to the 8-bit output, narrowed
 * by qmin/qmax for a fused Relu or Clip (lower_quant.h's helpers). Scales
 * and zero points are constants, so zero points are baked into the
 * expressions. A MossQGemm weight the sparse pass encoded is still printed
 * by lower_sparse.c: moss_lower_takes_qfold leaves it out. */
#include <stdio.h>
#include <string.h>

#include "lower.h"
#include "lower_quant.h"

static moss_kx *bin(moss_kb *b, moss_kx_op op, moss_kx *x, moss_kx *y) {
  return moss_k_bin(b, op, x, y);
}
static moss_kx *i32(moss_kb *b, int64_t v) { return moss_k_int(b, MOSS_DT_I32, v); }

static double f32_at(const moss_value *v, int64_t i) {
  return (double)((const float *)v->data)[moss_value_numel(v) == 1 ? 0 : i];
}

static int64_t int_at(const moss_value *v, int64_t i) {
  return moss_load_i64(v->dtype, v->data, moss_value_numel(v) == 1 ? 0 : i);
}

/* v + c for an int32 v and a constant c (written v - |c| when c < 0). */
static moss_kx *plus(moss_kb *b, moss_kx *v, int64_t c) {
  if (!c) return v;
  return c < 0 ? bin(b, MOSS_KX_SUB, v, i32(b, -c)) : bin(b, MOSS_KX_ADD, v, i32(b, c));
}

/* (int32)v - zp, zp a constant. */
static moss_kx *centered(moss_kb *b, moss_kx *v, int64_t zp) {
  return plus(b, moss_k_cast(b, MOSS_DT_I32, v), -zp);
}

/* zp + r, r int32. */
static moss_kx *plus_zp(moss_kb *b, int64_t zp, moss_kx *r) { return plus(b, r, zp); }

/* MossQGemm's product on a GPU as work-group tiles (lower_gputile.c), in
 * int32: A = x [M, K], B(k, j) = w'[j, k], each sum from bias'[j] (integer
 * sums wrap: the CPU's bits in any order). */
typedef struct qgemm_tile {
  const moss_node *n;
  int xi, wi, qb, yi;
  int64_t M, N, K, yz;
  const moss_kreq *q;
} qgemm_tile;

static moss_kx *inside(moss_kb *b, moss_kx *i, int64_t ni, moss_kx *j, int64_t nj) {
  return bin(b, MOSS_KX_LAND, bin(b, MOSS_KX_LT, i, moss_k_idx(b, ni)), bin(b, MOSS_KX_LT, j, moss_k_idx(b, nj)));
}

static moss_kx *load_i32_or_0(moss_kb *b, int buf, moss_kx *at, moss_kx *in) {
  return moss_k_cast(b, MOSS_DT_I32, moss_k_load_or(b, buf, at, in, moss_k_int(b, b->k->bufs[buf].dt, 0)));
}

static moss_kx *qgemm_a(moss_kb *b, const void *arg, moss_kx *m, moss_kx *k) {
  const qgemm_tile *t = arg;
  return load_i32_or_0(b, t->xi, moss_k_add(b, moss_k_mulc(b, m, t->K), k), inside(b, m, t->M, k, t->K));
}

static moss_kx *qgemm_b(moss_kb *b, const void *arg, moss_kx *k, moss_kx *j) {
  const qgemm_tile *t = arg;
  return load_i32_or_0(b, t->wi, moss_k_add(b, moss_k_mulc(b, j, t->K), k), inside(b, k, t->K, j, t->N));
}

static void qgemm_store(moss_kb *b, const void *arg, moss_kx *m, moss_kx *j, moss_kx *acc) {
  const qgemm_tile *t = arg;
  moss_kx *r = moss_k_requant(b, t->q, bin(b, MOSS_KX_ADD, acc, moss_k_load(b, t->qb, j)), j);
  moss_k_store(b, t->yi, moss_k_add(b, moss_k_mulc(b, m, t->N), j),
               moss_k_qclamp(b, t->n, t->n->outputs[0]->dtype, plus_zp(b, t->yz, r)));
}

/* MossQGemm: y[m, n] = requant(bias'[n] + sum_k x[m, k] * w'[n, k]) with
 * w' = w - w_zp[n] and bias' = bias - x_zp * sum_k w'[n, k] folded at
 * compile time (tables), so the inner loop is a plain 8-bit dot product. */
static moss_status lower_gemm(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *w = n->inputs[3], *ws = n->inputs[4], *wz = n->inputs[5];
  const moss_value *bias = moss_node_input(n, 8), *y = n->outputs[0];
  int64_t K = w->dims[1], N = w->dims[0], M = moss_value_numel(x) / (K ? K : 1), j, k;
  int64_t xz = int_at(n->inputs[2], 0), yz = int_at(n->inputs[7], 0);
  double sx = f32_at(n->inputs[1], 0), sy = f32_at(n->inputs[6], 0), *ms;
  int zw = 0, per = moss_value_numel(ws) > 1, xi, wi, qb;
  int32_t *bt;
  moss_kreq q;
  moss_kx *m, *jj, *kk, *acc, *r;
  if (M <= 0 || N <= 0) return MOSS_OK;
  for (j = 0; j < moss_value_numel(wz); j++) zw |= int_at(wz, j) != 0;
  xi = moss_k_input(b, 0);
  if (zw) { /* w - w_zp fits int16 */
    int16_t *t = moss_k_scratch(b, N * K, sizeof *t);
    if (!t) return b->st;
    for (j = 0; j < N; j++)
      for (k = 0; k < K; k++)
        t[j * K + k] = (int16_t)(moss_load_i64(w->dtype, w->data, j * K + k) - int_at(wz, j));
    wi = moss_k_table(b, "qw", MOSS_DT_I16, N * K, t);
  } else {
    wi = moss_k_input(b, 3);
  }
  bt = moss_k_scratch(b, N, sizeof *bt);
  ms = moss_k_scratch(b, per ? N : 1, sizeof *ms);
  if (!bt || !ms) return b->st;
  for (j = 0; j < N; j++) {
    int64_t sum = 0, bj = bias ? moss_load_i64(bias->dtype, bias->data, j) : 0;
    for (k = 0; k < K; k++) sum += moss_load_i64(w->dtype, w->data, j * K + k) - int_at(wz, j);
    bj -= xz * sum;
    if (bj > INT32_MAX || bj < INT32_MIN)
      return moss_kb_fail(b, MOSS_E_UNSUPPORTED,
                          "the zero-point correction of output %lld overflows int32", (long long)j);
    bt[j] = (int32_t)bj;
  }
  qb = moss_k_table(b, "qb", MOSS_DT_I32, N, bt);
  for (j = 0; j < (per ? N : 1); j++) ms[j] = sx * f32_at(ws, j) / sy;
  moss_k_requant_init(b, &q, ms, per ? N : 1);
  if (b->cpu.gpu) {
    qgemm_tile t;
    moss_gtile gt;
    t.n = n;
    t.xi = xi;
    t.wi = wi;
    t.qb = qb;
    t.yi = moss_k_output(b, 0);
    t.M = M;
    t.N = N;
    t.K = K;
    t.yz = yz;
    t.q = &q;
    moss_gtile_set(&gt, MOSS_DT_I32, M, N, K, qgemm_a, qgemm_b, qgemm_store, &t);
    gt.b_n_contig = 0; /* w' is [N, K] */
    /* x as it is (its zero point is in bias'), w' = w - w_zp: bytes once shifted */
    gt.a_off = x->dtype == MOSS_DT_U8 ? -128 : 0;
    gt.dot4 = b->cpu.gpu_dot4 && moss_gtile_dot4_off(n, 3, 5, &gt.b_off);
    if (moss_gtile_takes(&b->cpu, &gt)) {
      moss_gtile_product(b, &gt);
      return b->st;
    }
  }
  m = moss_k_range(b, "m", M, MOSS_KL_PARALLEL);
  jj = moss_k_range(b, "j", N, MOSS_KL_PARALLEL);
  acc = moss_k_let(b, "acc", i32(b, 0));
  kk = moss_k_range(b, "k", K, MOSS_KL_REDUCE);
  moss_k_set(b, acc,
             bin(b, MOSS_KX_ADD, acc,
                 bin(b, MOSS_KX_MUL,
                     moss_k_cast(b, MOSS_DT_I32,
                                 moss_k_load(b, xi, moss_k_add(b, moss_k_mulc(b, m, K), kk))),
                     moss_k_cast(b, MOSS_DT_I32,
                                 moss_k_load(b, wi, moss_k_add(b, moss_k_mulc(b, jj, K), kk))))));
  moss_k_end(b);
  r = moss_k_requant(b, &q, bin(b, MOSS_KX_ADD, acc, moss_k_load(b, qb, jj)), jj);
  moss_k_store(b, moss_k_output(b, 0), moss_k_add(b, moss_k_mulc(b, m, N), jj),
               moss_k_qclamp(b, n, y->dtype, plus_zp(b, yz, r)));
  moss_k_end(b);
  moss_k_end(b);
  return b->st;
}

/* MossQAdd: both sides brought to a common scale with 20 bits of headroom
 * (a' = requant((a - a_zp) * 2^20, a_scale / 2m), m = max of the two
 * scales), summed, and requantized by 2m / (y_scale * 2^20): the sum keeps
 * 2^-20 of a unit of precision, so the result is the float one rounded,
 * except within that margin of a tie. MossQMul: one product, one
 * requantization by a_scale * b_scale / y_scale. */
static moss_status lower_binary(moss_kb *b, const moss_node *n) {
  const moss_value *a = n->inputs[0], *c = n->inputs[3], *y = n->outputs[0];
  double sa = f32_at(n->inputs[1], 0), sb = f32_at(n->inputs[4], 0);
  double sy = f32_at(n->inputs[6], 0), mq;
  int64_t za = int_at(n->inputs[2], 0), zb = int_at(n->inputs[5], 0), zy = int_at(n->inputs[7], 0);
  int rk[2], xa = moss_k_input(b, 0), xc = moss_k_input(b, 3), loops;
  int64_t dims[2][MOSS_MAX_RANK];
  const int64_t(*dp)[MOSS_MAX_RANK] = (const int64_t(*)[MOSS_MAX_RANK])dims;
  moss_kreq qy;
  moss_kx *o, *idx[2], *va, *vc, *r;
  rk[0] = a->rank;
  rk[1] = c->rank;
  memcpy(dims[0], a->dims, sizeof dims[0]);
  memcpy(dims[1], c->dims, sizeof dims[1]);
  loops = moss_k_bcast_open(b, y->rank, y->dims, 2, rk, dp, &o, idx);
  va = centered(b, moss_k_load(b, xa, idx[0]), za);
  vc = centered(b, moss_k_load(b, xc, idx[1]), zb);
  if (n->op == MOSS_OP_MossQAdd) {
    double m2 = 2.0 * (sa > sb ? sa : sb);
    moss_kreq qa, qc;
    mq = sa / m2;
    moss_k_requant_init(b, &qa, &mq, 1);
    mq = sb / m2;
    moss_k_requant_init(b, &qc, &mq, 1);
    mq = m2 / (sy * 1048576.0);
    moss_k_requant_init(b, &qy, &mq, 1);
    va = moss_k_let(b, "a", moss_k_requant(b, &qa, bin(b, MOSS_KX_MUL, va, i32(b, 1048576)), NULL));
    vc = moss_k_let(b, "c", moss_k_requant(b, &qc, bin(b, MOSS_KX_MUL, vc, i32(b, 1048576)), NULL));
    r = moss_k_requant(b, &qy, bin(b, MOSS_KX_ADD, va, vc), NULL);
  } else {
    mq = sa * sb / sy;
    moss_k_requant_init(b, &qy, &mq, 1);
    r = moss_k_requant(b, &qy, bin(b, MOSS_KX_MUL, va, vc), NULL);
  }
  moss_k_store(b, moss_k_output(b, 0), o, moss_k_qclamp(b, n, y->dtype, plus_zp(b, zy, r)));
  while (loops--) moss_k_end(b);
  return b->st;
}

/* The window of an average pool (lower_pool.c). */
typedef moss_pool_geom geom;

static moss_kx *named(moss_kb *b, const char *name, moss_kx *e) {
  if (e->op == MOSS_KX_CONST || e->op == MOSS_KX_VAR) return e;
  return moss_k_let(b, name, e);
}

static moss_kx *idiv(moss_kb *b, moss_kx *x, int64_t d) {
  return d == 1 ? x : bin(b, MOSS_KX_DIV, x, moss_k_idx(b, d));
}

static moss_kx *imin(moss_kb *b, moss_kx *x, int64_t v) {
  return bin(b, MOSS_KX_MIN, x, moss_k_idx(b, v));
}

/* v - x (I64). */
static moss_kx *rsub(moss_kb *b, int64_t v, moss_kx *x) {
  return v ? bin(b, MOSS_KX_SUB, moss_k_idx(b, v), x) : moss_k_un(b, MOSS_KX_NEG, x);
}

/* MossQAvgPool: the int32 sum of x - x_zp over the window's taps inside
 * the input, requantized by x_scale / (y_scale * count): one multiplier
 * per possible count (tables indexed by the count) unless the count is
 * the same everywhere. For each output position and dimension the taps
 * run over [a, e), computed from the window's start, or constants where
 * no window crosses the border, so no tap is bounds-checked. */
static moss_status lower_avgpool(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  int64_t NC = x->dims[0] * x->dims[1], XS = moss_value_numel(x) / (NC ? NC : 1), YS, kv, c;
  int64_t xz = int_at(n->inputs[2], 0), yz = int_at(n->inputs[4], 0);
  double sx, sy, *ms;
  int k, nsp, isinc = (int)moss_attr_int(n, "count_include_pad", 0), xi, yi;
  moss_kx *bc, *acc, *xat, *yat, *cnt;
  moss_kx *o[MOSS_MAX_RANK], *st[MOSS_MAX_RANK], *a[MOSS_MAX_RANK], *e[MOSS_MAX_RANK];
  moss_kreq q;
  geom g;
  if (!n->inputs[1]->data || !n->inputs[3]->data)
    return moss_kb_fail(b, MOSS_E_INTERNAL, "scales are not constants");
  sx = ((const float *)n->inputs[1]->data)[0];
  sy = ((const float *)n->inputs[3]->data)[0];
  xi = moss_k_input(b, 0);
  yi = moss_k_output(b, 0);
  if (moss_attr_int(n, "global", 0)) {
    double mq = sx / (sy * (double)XS);
    moss_k_requant_init(b, &q, &mq, 1);
    bc = moss_k_range(b, "bc", NC, MOSS_KL_PARALLEL);
    acc = moss_k_let(b, "acc", i32(b, 0));
    {
      moss_kx *i = moss_k_range(b, "i", XS, MOSS_KL_REDUCE);
      moss_k_set(
          b, acc,
          bin(b, MOSS_KX_ADD, acc,
              centered(b, moss_k_load(b, xi, moss_k_add(b, moss_k_mulc(b, bc, XS), i)), xz)));
      moss_k_end(b);
    }
    moss_k_store(b, yi, bc,
                 moss_k_qclamp(b, n, y->dtype, plus_zp(b, yz, moss_k_requant(b, &q, acc, NULL))));
    moss_k_end(b);
    return b->st;
  }
  moss_lower_pool_geom(n, &g);
  nsp = g.nsp;
  XS = YS = kv = 1;
  for (k = 0; k < nsp; k++) XS *= g.in[k], YS *= g.out[k], kv *= g.k[k];
  bc = moss_k_range(b, "bc", NC, MOSS_KL_PARALLEL);
  for (k = 0; k < nsp; k++) {
    int64_t ek = (g.k[k] - 1) * g.d[k] + 1;
    char name[16];
    snprintf(name, sizeof name, "o%d", k);
    o[k] = moss_k_range(b, name, g.out[k], MOSS_KL_PARALLEL);
    snprintf(name, sizeof name, "s%d", k);
    st[k] = moss_k_mulc(b, o[k], g.s[k]);
    if (g.p[k]) st[k] = bin(b, MOSS_KX_SUB, st[k], moss_k_idx(b, g.p[k]));
    st[k] = named(b, name, st[k]);
    /* The first tap at or after position 0 (0 unless a window starts
     * before it), the end of the taps before the end of the input (all of
     * them unless a window passes it). */
    if (g.p[k] == 0) {
      a[k] = moss_k_idx(b, 0);
    } else {
      snprintf(name, sizeof name, "a%d", k);
      a[k] =
          moss_k_let(b, name,
                     moss_k_select(b, bin(b, MOSS_KX_LT, st[k], moss_k_idx(b, 0)),
                                   idiv(b, rsub(b, g.d[k] - 1, st[k]), g.d[k]), moss_k_idx(b, 0)));
    }
    if ((g.out[k] - 1) * g.s[k] - g.p[k] + ek <= g.in[k]) {
      e[k] = moss_k_idx(b, g.k[k]);
    } else {
      snprintf(name, sizeof name, "e%d", k);
      e[k] = moss_k_let(b, name,
                        moss_k_select(b, bin(b, MOSS_KX_GE, st[k], moss_k_idx(b, g.in[k])),
                                      moss_k_idx(b, 0),
                                      idiv(b, rsub(b, g.in[k] + g.d[k] - 1, st[k]), g.d[k])));
      moss_k_set(b, e[k], imin(b, e[k], g.k[k]));
    }
  }
  /* The count of taps: inside the input, or inside the padded input (a
   * ceil_mode window may pass it). */
  cnt = moss_k_idx(b, 1);
  for (k = 0; k < nsp; k++) {
    int64_t ek = (g.k[k] - 1) * g.d[k] + 1, lim = g.in[k] + g.pe[k];
    moss_kx *ck;
    if (isinc && (g.out[k] - 1) * g.s[k] - g.p[k] + ek <= lim) {
      ck = moss_k_idx(b, g.k[k]);
    } else if (isinc) {
      char name[16];
      snprintf(name, sizeof name, "c%d", k);
      ck = moss_k_let(b, name, idiv(b, rsub(b, lim + g.d[k] - 1, st[k]), g.d[k]));
      moss_k_set(b, ck, imin(b, ck, g.k[k]));
    } else if (a[k]->op == MOSS_KX_CONST && e[k]->op == MOSS_KX_CONST) {
      ck = moss_k_idx(b, e[k]->i > a[k]->i ? e[k]->i - a[k]->i : 0);
    } else {
      ck = moss_k_select(b, bin(b, MOSS_KX_GT, e[k], a[k]), bin(b, MOSS_KX_SUB, e[k], a[k]),
                         moss_k_idx(b, 0));
    }
    cnt = moss_k_mul(b, cnt, ck);
  }
  if (cnt->op == MOSS_KX_CONST) {
    double mq = cnt->i ? sx / (sy * (double)cnt->i) : 0.0;
    moss_k_requant_init(b, &q, &mq, 1);
  } else {
    ms = moss_k_scratch(b, kv + 1, sizeof *ms);
    if (!ms) return b->st;
    for (c = 0; c <= kv; c++) ms[c] = c ? sx / (sy * (double)c) : 0.0;
    moss_k_requant_init(b, &q, ms, kv + 1);
    cnt = moss_k_let(b, "cnt", cnt);
  }
  acc = moss_k_let(b, "acc", i32(b, 0));
  xat = moss_k_mulc(b, bc, XS);
  yat = moss_k_mulc(b, bc, YS);
  for (k = 0; k < nsp; k++) {
    int64_t xs = 1, ys = 1;
    int j;
    char name[16];
    moss_kx *kk;
    for (j = k + 1; j < nsp; j++) xs *= g.in[j], ys *= g.out[j];
    snprintf(name, sizeof name, "k%d", k);
    kk = moss_k_for(b, name, a[k], e[k], 1, MOSS_KL_REDUCE, 0);
    xat = moss_k_add(b, xat, moss_k_mulc(b, moss_k_add(b, st[k], moss_k_mulc(b, kk, g.d[k])), xs));
    yat = moss_k_add(b, yat, moss_k_mulc(b, o[k], ys));
  }
  moss_k_set(b, acc, bin(b, MOSS_KX_ADD, acc, centered(b, moss_k_load(b, xi, xat), xz)));
  for (k = 0; k < nsp; k++) moss_k_end(b);
  moss_k_store(b, yi, yat,
               moss_k_qclamp(b, n, y->dtype, plus_zp(b, yz, moss_k_requant(b, &q, acc, cnt))));
  for (k = 0; k < nsp; k++) moss_k_end(b);
  moss_k_end(b);
  return b->st;
}

/* Whole vectors of 64 bytes of x [at, at + vfull) through the 256-byte
 * table at |base| of |ti|: held in four registers, each byte looked up in
 * the half its top bit picks (TBL128 twice, then a select). */
static void lookup_tbl(moss_kb *b, int xi, int ti, int yi, moss_dtype xdt, moss_kx *at, moss_kx *base,
                       int64_t vfull) {
  moss_kx *t[4], *iv, *ix, *lo, *hi;
  char name[8];
  int k;
  for (k = 0; k < 4; k++) {
    snprintf(name, sizeof name, "t%d", k);
    t[k] = moss_k_let(b, name, moss_k_vload(b, ti, moss_k_addc(b, base, 64 * k), 64));
  }
  iv = moss_k_for(b, "i", moss_k_idx(b, 0), moss_k_idx(b, vfull), 64, MOSS_KL_PARALLEL, 0);
  iv = moss_k_let(b, "e", moss_k_add(b, at, iv));
  ix = moss_k_cast(b, MOSS_DT_U8, moss_k_vload(b, xi, iv, 64));
  if (xdt == MOSS_DT_I8) /* x + 128, in bytes */
    ix = moss_k_bin(b, MOSS_KX_BXOR, ix, moss_k_splat(b, moss_k_int(b, MOSS_DT_U8, 128), 64));
  ix = moss_k_let(b, "ix", ix);
  lo = moss_k_call(b, MOSS_KFN_TBL128, t[0], t[1], ix);
  hi = moss_k_call(b, MOSS_KFN_TBL128, t[2], t[3], ix);
  moss_k_store(b, yi, iv, moss_k_select(b, moss_k_bin(b, MOSS_KX_GE, ix, moss_k_splat(b, moss_k_int(b, MOSS_DT_U8, 128), 64)),
                                        hi, lo));
  moss_k_end(b);
}

/* MossQLookup: y = table[x], x + 128 for int8; with a table per channel
 * (C * 256 entries), table c's for the elements of channel c. Where the
 * machine has a 64-byte table instruction (cpu.tbl128), whole vectors of
 * 64 elements go through it, the table in registers (lookup_tbl). */
static moss_status lower_lookup(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0];
  int64_t ne = moss_value_numel(x), nt = moss_value_numel(n->inputs[1]), C = 1, inner = ne, vfull = 0;
  int xi, ti, yi, d;
  moss_kx *i, *at, *oc = NULL, *base = NULL;
  if (ne <= 0) return MOSS_OK;
  xi = moss_k_input(b, 0);
  ti = moss_k_input(b, 1);
  yi = moss_k_output(b, 0);
  if (nt > 256) { /* per channel: (image, channel) rows of |inner| elements */
    C = x->dims[1];
    for (inner = 1, d = 2; d < x->rank; d++) inner *= x->dims[d];
    oc = moss_k_range(b, "oc", ne / inner, MOSS_KL_PARALLEL);
    base = moss_k_let(b, "tab", moss_k_mulc(b, moss_k_bin(b, MOSS_KX_REM, oc, moss_k_idx(b, C)), 256));
  }
  if (b->cpu.tbl128 == 64) {
    vfull = inner / 64 * 64;
    if (vfull > 0)
      lookup_tbl(b, xi, ti, yi, x->dtype, oc ? moss_k_mulc(b, oc, inner) : moss_k_idx(b, 0),
                 base ? base : moss_k_idx(b, 0), vfull);
  }
  i = moss_k_for(b, "i", moss_k_idx(b, vfull), moss_k_idx(b, inner), 1, MOSS_KL_PARALLEL, 0);
  if (oc) i = moss_k_add(b, moss_k_mulc(b, oc, inner), i);
  at = moss_k_cast(b, MOSS_DT_I64, moss_k_load(b, xi, i));
  if (x->dtype == MOSS_DT_I8) at = moss_k_addc(b, at, 128);
  if (base) at = moss_k_add(b, base, at);
  moss_k_store(b, yi, i, moss_k_load(b, ti, at));
  moss_k_end(b);
  if (oc) moss_k_end(b);
  return b->st;
}

int moss_lower_takes_qfold(const moss_node *n) { return !n->sparse; }

moss_status moss_lower_qfold(moss_kb *b, const moss_node *n) {
  switch (n->op) {
  case MOSS_OP_MossQGemm: return lower_gemm(b, n);
  case MOSS_OP_MossQAdd:
  case MOSS_OP_MossQMul: return lower_binary(b, n);
  case MOSS_OP_MossQAvgPool: return lower_avgpool(b, n);
  case MOSS_OP_MossQLookup: return lower_lookup(b, n);
  default: return moss_kb_fail(b, MOSS_E_INTERNAL, "not one of moss's integer ops");
  }
}
