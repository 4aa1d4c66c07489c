/* lower_norm.c - the normalizations, specialized to the node's shapes.
 * Statistics are taken in two passes (the mean, then the mean squared
 * deviation) with double accumulators; the output pass is a contiguous
 * multiply-add with per-block constants, so it vectorizes. LRN and
 * LpNormalization accumulate their sums of squares in the output itself,
 * row by row, to keep every inner loop contiguous. Mixed float types
 * combine as C's usual arithmetic conversions do (float with double gives
 * double), so the arithmetic is that of the C emitter this replaced.
 *
 * BatchNormalization's training mode is read from its attribute alone:
 * the attribute exists from opset 14 on (the description does not carry
 * the model's opset; shape inference already refused training outputs
 * before 14). */
#include <stdio.h>
#include <string.h>

#include "lower.h"

static const moss_dtype D = MOSS_DT_F64;

static int64_t prod(const int64_t *d, int from, int to) {
  int64_t p = 1;
  int k;
  for (k = from; k < to; k++) p *= d[k];
  return p;
}

/* x op y after C's conversions between float and double. */
static moss_kx *fop(moss_kb *b, moss_kx_op op, moss_kx *x, moss_kx *y) {
  if (x->dt != y->dt) {
    x = moss_k_cast(b, D, x);
    y = moss_k_cast(b, D, y);
  }
  return moss_k_bin(b, op, x, y);
}

static moss_kx *kadd(moss_kb *b, moss_kx *x, moss_kx *y) { return fop(b, MOSS_KX_ADD, x, y); }
static moss_kx *ksub(moss_kb *b, moss_kx *x, moss_kx *y) { return fop(b, MOSS_KX_SUB, x, y); }
static moss_kx *kmul(moss_kb *b, moss_kx *x, moss_kx *y) { return fop(b, MOSS_KX_MUL, x, y); }
static moss_kx *kdiv(moss_kb *b, moss_kx *x, moss_kx *y) { return fop(b, MOSS_KX_DIV, x, y); }
static moss_kx *fsqrt(moss_kb *b, moss_kx *x) {
  return moss_k_call(b, MOSS_KFN_SQRT, x, NULL, NULL);
}
static moss_kx *dbl(moss_kb *b, double v) { return moss_k_flt(b, D, v); }
static moss_kx *ld(moss_kb *b, int buf, moss_kx *at) { return moss_k_load(b, buf, at); }

/* A loop over [0, |extent|) with |role|, or the index 0 when |extent| is 1
 * (no loop to close); counts the loops opened in |*opened|. */
static moss_kx *loop(moss_kb *b, const char *name, int64_t extent, moss_kloop_role role,
                     int *opened) {
  if (extent == 1) return moss_k_idx(b, 0);
  ++*opened;
  return moss_k_range(b, name, extent, role);
}

static void close_loops(moss_kb *b, int *opened) {
  while (*opened > 0) {
    moss_k_end(b);
    --*opened;
  }
}

/* A local for the index |e|, unless it is a constant or a variable. */
static moss_kx *let_index(moss_kb *b, const char *name, moss_kx *e) {
  if (e->op == MOSS_KX_CONST || e->op == MOSS_KX_VAR) return e;
  return moss_k_let(b, name, e);
}

/* The mean |*mu| and variance |*var| (double locals) of the |cnt|
 * contiguous elements of input |xi| from |base|. */
static void stats(moss_kb *b, int xi, moss_kx *base, int64_t cnt, moss_kx **mu, moss_kx **var) {
  moss_kx *sum = moss_k_let(b, "sum", dbl(b, 0)), *sq = moss_k_let(b, "sq", dbl(b, 0)), *j, *d;
  j = moss_k_range(b, "j", cnt, MOSS_KL_REDUCE);
  moss_k_set(b, sum, kadd(b, sum, ld(b, xi, moss_k_add(b, base, j))));
  moss_k_end(b);
  *mu = moss_k_let(b, "mu", kdiv(b, sum, dbl(b, (double)cnt)));
  j = moss_k_range(b, "j", cnt, MOSS_KL_REDUCE);
  d = moss_k_let(b, "d", ksub(b, ld(b, xi, moss_k_add(b, base, j)), *mu));
  moss_k_set(b, sq, kadd(b, sq, kmul(b, d, d)));
  moss_k_end(b);
  *var = moss_k_let(b, "var", kdiv(b, sq, dbl(b, (double)cnt)));
}

/* y = x * a + sh over the |S| contiguous elements from |at|. */
static void scale_shift(moss_kb *b, int xi, int yi, moss_kx *at, int64_t S, moss_kx *a,
                        moss_kx *sh) {
  moss_kx *j = moss_k_range(b, "j", S, MOSS_KL_PARALLEL), *e = moss_k_add(b, at, j);
  moss_k_store(b, yi, e, kadd(b, kmul(b, ld(b, xi, e), a), sh));
  moss_k_end(b);
}

/* Inside a loop over channel |c|: y = x * a + sh over the |N| planes of |S|
 * elements that channel c of the [N, C, S] input holds. */
static void planes(moss_kb *b, int xi, int yi, moss_kx *c, int64_t N, int64_t C, int64_t S,
                   moss_kx *a, moss_kx *sh) {
  int opened = 0;
  moss_kx *bn = loop(b, "bn", N, MOSS_KL_PARALLEL, &opened);
  moss_kx *at = let_index(b, "at", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bn, C), c), S));
  scale_shift(b, xi, yi, at, S, a, sh);
  close_loops(b, &opened);
}

static moss_status lower_batchnorm(moss_kb *b, const moss_node *n, moss_dtype T, moss_kx *eps) {
  const moss_value *x = n->inputs[0];
  int64_t N = x->dims[0], C = x->dims[1], S = prod(x->dims, 2, x->rank);
  int training = moss_attr_int(n, "training_mode", 0) != 0;
  int xi = moss_k_input(b, 0), yi = moss_k_output(b, 0), sc = moss_k_input(b, 1),
      bi = moss_k_input(b, 2);
  int mi = moss_k_input(b, 3), vi = moss_k_input(b, 4), opened = 0;
  moss_kx *c, *a, *sh, *mu, *var;
  double mom = moss_attr_float(n, "momentum", 0.9f);
  c = loop(b, "c", C, MOSS_KL_PARALLEL, &opened);
  if (!training) {
    /* a = x1[c] / sqrt(x4[c] + eps), sh = x2[c] - x3[c] * a */
    a = moss_k_let(
        b, "a",
        moss_k_cast(
            b, T, kdiv(b, ld(b, sc, c), fsqrt(b, kadd(b, moss_k_cast(b, D, ld(b, vi, c)), eps)))));
    sh = moss_k_let(b, "sh", moss_k_cast(b, T, ksub(b, ld(b, bi, c), kmul(b, ld(b, mi, c), a))));
    planes(b, xi, yi, c, N, C, S, a, sh);
    close_loops(b, &opened);
    return b->st;
  }
  {
    /* The statistics of channel c over the N planes. */
    moss_kx *sum = moss_k_let(b, "sum", dbl(b, 0)), *sq = moss_k_let(b, "sq", dbl(b, 0)), *bn, *j,
            *d, *at;
    bn = moss_k_range(b, "bn", N, MOSS_KL_REDUCE);
    at = let_index(b, "at", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bn, C), c), S));
    j = moss_k_range(b, "j", S, MOSS_KL_REDUCE);
    moss_k_set(b, sum, kadd(b, sum, ld(b, xi, moss_k_add(b, at, j))));
    moss_k_end(b);
    moss_k_end(b);
    mu = moss_k_let(b, "mu", kdiv(b, sum, dbl(b, (double)(N * S))));
    bn = moss_k_range(b, "bn", N, MOSS_KL_REDUCE);
    at = let_index(b, "at", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bn, C), c), S));
    j = moss_k_range(b, "j", S, MOSS_KL_REDUCE);
    d = moss_k_let(b, "d", ksub(b, ld(b, xi, moss_k_add(b, at, j)), mu));
    moss_k_set(b, sq, kadd(b, sq, kmul(b, d, d)));
    moss_k_end(b);
    moss_k_end(b);
    var = moss_k_let(b, "var", kdiv(b, sq, dbl(b, (double)(N * S))));
  }
  a = moss_k_let(b, "a", moss_k_cast(b, T, kdiv(b, ld(b, sc, c), fsqrt(b, kadd(b, var, eps)))));
  sh = moss_k_let(b, "sh", moss_k_cast(b, T, ksub(b, ld(b, bi, c), kmul(b, mu, a))));
  planes(b, xi, yi, c, N, C, S, a, sh);
  /* The running statistics: x * momentum + batch statistic * (1 - momentum). */
  if (n->noutputs > 1 && n->outputs[1])
    moss_k_store(
        b, moss_k_output(b, 1), c,
        moss_k_cast(b, n->outputs[1]->dtype,
                    kadd(b, kmul(b, ld(b, mi, c), dbl(b, mom)), kmul(b, mu, dbl(b, 1.0 - mom)))));
  if (n->noutputs > 2 && n->outputs[2])
    moss_k_store(
        b, moss_k_output(b, 2), c,
        moss_k_cast(b, n->outputs[2]->dtype,
                    kadd(b, kmul(b, ld(b, vi, c), dbl(b, mom)), kmul(b, var, dbl(b, 1.0 - mom)))));
  close_loops(b, &opened);
  return b->st;
}

static moss_status lower_layernorm(moss_kb *b, const moss_node *n, moss_dtype T, moss_kx *eps) {
  const moss_value *x = n->inputs[0], *sc = n->inputs[1], *bv = moss_node_input(n, 2);
  int axis = (int)moss_attr_int(n, "axis", -1), opened = 0;
  int xi = moss_k_input(b, 0), yi = moss_k_output(b, 0), si = moss_k_input(b, 1);
  int64_t outer, inner;
  moss_kx *o, *base, *mu, *var, *rs, *m, *r, *j, *e, *v;
  if (axis < 0) axis += x->rank;
  outer = prod(x->dims, 0, axis);
  inner = prod(x->dims, axis, x->rank);
  o = loop(b, "o", outer, MOSS_KL_PARALLEL, &opened);
  base = let_index(b, "base", moss_k_mulc(b, o, inner));
  stats(b, xi, base, inner, &mu, &var);
  rs = moss_k_let(b, "rs", kdiv(b, dbl(b, 1.0), fsqrt(b, kadd(b, var, eps))));
  m = moss_k_let(b, "m", moss_k_cast(b, T, mu));
  r = moss_k_let(b, "r", moss_k_cast(b, T, rs));
  /* y = (x - m) * r * scale + bias */
  j = moss_k_range(b, "j", inner, MOSS_KL_PARALLEL);
  e = moss_k_add(b, base, j);
  v = kmul(b, kmul(b, ksub(b, ld(b, xi, e), m), r),
           ld(b, si, moss_value_numel(sc) == 1 ? moss_k_idx(b, 0) : j));
  if (bv)
    v = kadd(b, v, ld(b, moss_k_input(b, 2), moss_value_numel(bv) == 1 ? moss_k_idx(b, 0) : j));
  moss_k_store(b, yi, e, moss_k_cast(b, T, v));
  moss_k_end(b);
  if (n->noutputs > 1 && n->outputs[1])
    moss_k_store(b, moss_k_output(b, 1), o, moss_k_cast(b, n->outputs[1]->dtype, mu));
  if (n->noutputs > 2 && n->outputs[2])
    moss_k_store(b, moss_k_output(b, 2), o, moss_k_cast(b, n->outputs[2]->dtype, rs));
  close_loops(b, &opened);
  return b->st;
}

/* InstanceNormalization (G = C) and GroupNormalization: statistics over
 * each block of C/G channels times the spatial size, then a per-channel
 * (or per-group) scale and shift. */
static moss_status lower_groupnorm(moss_kb *b, const moss_node *n, moss_dtype T, moss_kx *eps) {
  const moss_value *x = n->inputs[0];
  int64_t N = x->dims[0], C = x->dims[1], S = prod(x->dims, 2, x->rank);
  int64_t G = n->op == MOSS_OP_InstanceNormalization ? C : moss_attr_int(n, "num_groups", 1), Cg;
  int perch = moss_value_numel(n->inputs[1]) == C, opened = 0;
  int xi = moss_k_input(b, 0), yi = moss_k_output(b, 0), si = moss_k_input(b, 1),
      bi = moss_k_input(b, 2);
  moss_kx *bn, *g, *base, *mu, *var, *rs, *cg, *ch, *a, *sh;
  if (G <= 0 || C % G != 0)
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "%lld channels in %lld groups", (long long)C,
                        (long long)G);
  Cg = C / G;
  bn = loop(b, "bn", N, MOSS_KL_PARALLEL, &opened);
  g = loop(b, "g", G, MOSS_KL_PARALLEL, &opened);
  base = let_index(b, "base", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bn, G), g), Cg * S));
  stats(b, xi, base, Cg * S, &mu, &var);
  rs = moss_k_let(b, "rs", kdiv(b, dbl(b, 1.0), fsqrt(b, kadd(b, var, eps))));
  cg = moss_k_range(b, "cg", Cg, MOSS_KL_PARALLEL);
  ch = perch ? let_index(b, "ch", moss_k_add(b, moss_k_mulc(b, g, Cg), cg)) : g;
  a = moss_k_let(b, "a", moss_k_cast(b, T, kmul(b, ld(b, si, ch), rs)));
  sh = moss_k_let(b, "sh", moss_k_cast(b, T, ksub(b, ld(b, bi, ch), kmul(b, mu, a))));
  scale_shift(b, xi, yi, moss_k_add(b, base, moss_k_mulc(b, cg, S)), S, a, sh);
  moss_k_end(b);
  close_loops(b, &opened);
  return b->st;
}

/* MeanVarianceNormalization over any set of axes: loops over the kept
 * axes outside, the reduced axes inside (adjacent axes of one kind
 * merged). */
static moss_status lower_mvn(moss_kb *b, const moss_node *n, moss_dtype T) {
  const moss_value *x = n->inputs[0];
  static const int64_t def_axes[3] = {0, 2, 3};
  const int64_t *axes = def_axes;
  int na = moss_attr_ints(n, "axes", &axes), k, nk = 0, nr = 0, red[MOSS_MAX_RANK];
  int xi = moss_k_input(b, 0), yi = moss_k_output(b, 0), pass;
  int64_t st[MOSS_MAX_RANK], ksz[MOSS_MAX_RANK], kst[MOSS_MAX_RANK], rsz[MOSS_MAX_RANK],
      rst[MOSS_MAX_RANK], rcnt = 1;
  moss_kx *base = moss_k_idx(b, 0), *sum, *sq, *mu = NULL, *r = NULL;
  char name[16];
  if (!axes) {
    axes = def_axes;
    na = 3;
  }
  memset(red, 0, sizeof red);
  for (k = 0; k < na; k++) {
    int64_t a = axes[k] < 0 ? axes[k] + x->rank : axes[k];
    if (a < 0 || a >= x->rank)
      return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "axis %lld", (long long)axes[k]);
    red[a] = 1;
  }
  for (k = x->rank - 1; k >= 0; k--) st[k] = k == x->rank - 1 ? 1 : st[k + 1] * x->dims[k + 1];
  for (k = 0; k < x->rank; k++) {
    int64_t *sz = red[k] ? rsz : ksz, *sd = red[k] ? rst : kst;
    int *cnt = red[k] ? &nr : &nk;
    if (x->dims[k] == 1) continue;
    if (red[k]) rcnt *= x->dims[k];
    /* Merge with the previous axis of the same kind when contiguous. */
    if (*cnt && sd[*cnt - 1] == st[k] * x->dims[k]) {
      sz[*cnt - 1] *= x->dims[k];
      sd[*cnt - 1] = st[k];
    } else {
      sz[*cnt] = x->dims[k];
      sd[*cnt] = st[k];
      (*cnt)++;
    }
  }
  for (k = 0; k < nk; k++) {
    snprintf(name, sizeof name, "a%d", k);
    base = moss_k_add(b, base,
                      moss_k_mulc(b, moss_k_range(b, name, ksz[k], MOSS_KL_PARALLEL), kst[k]));
  }
  base = let_index(b, "base", base);
  sum = moss_k_let(b, "sum", dbl(b, 0));
  sq = moss_k_let(b, "sq", dbl(b, 0));
  /* Three passes over the reduced positions: the sum, the squared
   * deviations, the output. */
  for (pass = 0; pass < 3; pass++) {
    moss_kx *i = base, *d;
    for (k = 0; k < nr; k++) {
      snprintf(name, sizeof name, "r%d", k);
      i = moss_k_add(
          b, i,
          moss_k_mulc(b,
                      moss_k_range(b, name, rsz[k], pass < 2 ? MOSS_KL_REDUCE : MOSS_KL_PARALLEL),
                      rst[k]));
    }
    i = let_index(b, "i", i);
    if (pass == 0) {
      moss_k_set(b, sum, kadd(b, sum, ld(b, xi, i)));
    } else {
      d = moss_k_let(b, "d", ksub(b, ld(b, xi, i), mu));
      if (pass == 1)
        moss_k_set(b, sq, kadd(b, sq, kmul(b, d, d)));
      else
        moss_k_store(b, yi, i, moss_k_cast(b, T, kmul(b, d, r)));
    }
    for (k = 0; k < nr; k++) moss_k_end(b);
    if (pass == 0) mu = moss_k_let(b, "mu", kdiv(b, sum, dbl(b, (double)rcnt)));
    if (pass == 1)
      r = moss_k_let(
          b, "r",
          kdiv(b, dbl(b, 1.0), kadd(b, fsqrt(b, kdiv(b, sq, dbl(b, (double)rcnt))), dbl(b, 1e-9))));
  }
  for (k = 0; k < nk; k++) moss_k_end(b);
  return b->st;
}

static moss_status lower_lrn(moss_kb *b, const moss_node *n, moss_dtype T) {
  const moss_value *x = n->inputs[0];
  int64_t N = x->dims[0], C = x->dims[1], S = prod(x->dims, 2, x->rank);
  int64_t size = moss_attr_int(n, "size", 1), before = (size - 1) / 2, after = size - 1 - before;
  int xi = moss_k_input(b, 0), yi = moss_k_output(b, 0), opened = 0;
  moss_kx *al = moss_k_flt(b, T, (double)moss_attr_float(n, "alpha", 1e-4f) / (double)size);
  moss_kx *be = moss_k_flt(b, T, moss_attr_float(n, "beta", 0.75f));
  moss_kx *bi = moss_k_flt(b, T, moss_attr_float(n, "bias", 1.0f));
  moss_kx *bn, *c, *yo, *lo, *hi, *q, *xq, *j, *e, *v;
  if (size < 1) return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "size %lld", (long long)size);
  bn = loop(b, "bn", N, MOSS_KL_PARALLEL, &opened);
  c = loop(b, "c", C, MOSS_KL_PARALLEL, &opened);
  yo = let_index(b, "yo", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bn, C), c), S));
  /* The window of channels [lo, hi) around c, clipped to [0, C). */
  lo =
      moss_k_let(b, "lo", moss_k_bin(b, MOSS_KX_MAX, moss_k_addc(b, c, -before), moss_k_idx(b, 0)));
  hi = moss_k_let(b, "hi",
                  moss_k_bin(b, MOSS_KX_MIN, moss_k_addc(b, c, after + 1), moss_k_idx(b, C)));
  j = moss_k_range(b, "j", S, MOSS_KL_PARALLEL);
  moss_k_store(b, yi, moss_k_add(b, yo, j), moss_k_flt(b, T, 0.0));
  moss_k_end(b);
  q = moss_k_for(b, "q", lo, hi, 1, MOSS_KL_REDUCE, 0);
  xq = let_index(b, "xq", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bn, C), q), S));
  j = moss_k_range(b, "j", S, MOSS_KL_PARALLEL);
  e = moss_k_add(b, yo, j);
  v = moss_k_let(b, "v", ld(b, xi, moss_k_add(b, xq, j)));
  moss_k_store(b, yi, e, kadd(b, ld(b, yi, e), kmul(b, v, v)));
  moss_k_end(b);
  moss_k_end(b);
  /* y = x / pow(bias + alpha / size * sum, beta) */
  j = moss_k_range(b, "j", S, MOSS_KL_PARALLEL);
  e = moss_k_add(b, yo, j);
  moss_k_store(
      b, yi, e,
      kdiv(b, ld(b, xi, e),
           moss_k_call(b, MOSS_KFN_POW, kadd(b, bi, kmul(b, al, ld(b, yi, e))), be, NULL)));
  moss_k_end(b);
  close_loops(b, &opened);
  return b->st;
}

static moss_status lower_lpnorm(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0];
  int axis = (int)moss_attr_int(n, "axis", -1), opened = 0;
  int xi = moss_k_input(b, 0), yi = moss_k_output(b, 0);
  int64_t p = moss_attr_int(n, "p", 2), O, A, I;
  moss_kx *o, *base, *a, *j, *e, *v, *ra;
  if (p != 1 && p != 2)
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "p = %lld (1 or 2)", (long long)p);
  if (axis < 0) axis += x->rank;
  O = prod(x->dims, 0, axis);
  A = x->dims[axis];
  I = prod(x->dims, axis + 1, x->rank);
  o = loop(b, "o", O, MOSS_KL_PARALLEL, &opened);
  base = let_index(b, "base", moss_k_mulc(b, o, A * I));
  /* The norms gather in the first row of the output, which is written last. */
  j = moss_k_range(b, "j", I, MOSS_KL_PARALLEL);
  moss_k_store(b, yi, moss_k_add(b, base, j), moss_k_flt(b, x->dtype, 0.0));
  moss_k_end(b);
  a = moss_k_range(b, "a", A, MOSS_KL_REDUCE);
  j = moss_k_range(b, "j", I, MOSS_KL_PARALLEL);
  e = moss_k_add(b, base, j);
  v = ld(b, xi, moss_k_add(b, moss_k_add(b, base, moss_k_mulc(b, a, I)), j));
  if (p == 1) {
    v = moss_k_call(b, MOSS_KFN_FABS, v, NULL, NULL);
  } else {
    v = moss_k_let(b, "v", v);
    v = kmul(b, v, v);
  }
  moss_k_store(b, yi, e, kadd(b, ld(b, yi, e), v));
  moss_k_end(b);
  moss_k_end(b);
  if (p == 2) {
    j = moss_k_range(b, "j", I, MOSS_KL_PARALLEL);
    e = moss_k_add(b, base, j);
    moss_k_store(b, yi, e, fsqrt(b, ld(b, yi, e)));
    moss_k_end(b);
  }
  /* Rows A-1 down to 0, so the norms in row 0 are overwritten last. */
  a = moss_k_range(b, "t", A, MOSS_KL_SERIAL);
  ra =
      moss_k_let(b, "ra", moss_k_add(b, base, moss_k_mulc(b, ksub(b, moss_k_idx(b, A - 1), a), I)));
  j = moss_k_range(b, "j", I, MOSS_KL_PARALLEL);
  e = moss_k_add(b, ra, j);
  moss_k_store(b, yi, e, kdiv(b, ld(b, xi, e), ld(b, yi, moss_k_add(b, base, j))));
  moss_k_end(b);
  moss_k_end(b);
  close_loops(b, &opened);
  return b->st;
}

moss_status moss_lower_norm(moss_kb *b, const moss_node *n) {
  moss_dtype dt = n->inputs[0]->dtype;
  moss_kx *eps;
  if (dt != MOSS_DT_F32 && dt != MOSS_DT_F64)
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "type %s", moss_dtype_name(dt));
  eps = dbl(b, moss_attr_float(n, "epsilon", 1e-5f));
  switch (n->op) {
  case MOSS_OP_BatchNormalization: return lower_batchnorm(b, n, dt, eps);
  case MOSS_OP_LayerNormalization: return lower_layernorm(b, n, dt, eps);
  case MOSS_OP_InstanceNormalization:
  case MOSS_OP_GroupNormalization: return lower_groupnorm(b, n, dt, eps);
  case MOSS_OP_MeanVarianceNormalization: return lower_mvn(b, n, dt);
  case MOSS_OP_LRN: return lower_lrn(b, n, dt);
  case MOSS_OP_LpNormalization: return lower_lpnorm(b, n);
  default: return moss_kb_fail(b, MOSS_E_INTERNAL, "not a normalization");
  }
}
