/* lower_softmax.c - Softmax, LogSoftmax, Hardmax and CumSum. The tensor is
 * seen as [outer, len, inner] around the axis, one (outer, inner) row at a
 * time. Softmax subtracts the row's maximum before exp and sums in double
 * (on machines with vectors, rows of whole vectors take both in lanes of
 * partial results);
 * Hardmax marks the first maximum. CumSum walks the axis with the
 * innermost loop over contiguous elements, each step adding to the
 * previous output row; integers wrap.
 *
 * Before opset 13 the softmax family reduced over everything from |axis|
 * on (default 1), from 13 over the single axis |axis| (default -1): the
 * node's opset (n->opset) says which. */
#include "lower.h"

/* A parallel loop over [0, |extent|), or the index 0 when |extent| is 1 (no
 * loop to close); counts the loops opened in |*opened|. */
static moss_kx *loop(moss_kb *b, const char *name, int64_t extent, int *opened) {
  if (extent == 1) return moss_k_idx(b, 0);
  ++*opened;
  return moss_k_range(b, name, extent, MOSS_KL_PARALLEL);
}

/* A local for the index |e|, unless it is a constant or a variable. */
static moss_kx *let_index(moss_kb *b, const char *name, moss_kx *e) {
  if (e->op == MOSS_KX_CONST || e->op == MOSS_KX_VAR) return e;
  return moss_k_let(b, name, e);
}

/* |x| as [outer, len, inner] around |axis|; with |flatten| (the softmax
 * family before opset 13) everything from the axis on is one row. */
static void split_as(const moss_value *x, int axis, int flatten, int64_t *outer, int64_t *len,
                     int64_t *inner) {
  int k;
  *outer = *len = *inner = 1;
  for (k = 0; k < x->rank; k++) {
    if (k < axis)
      *outer *= x->dims[k];
    else if (k == axis || flatten)
      *len *= x->dims[k];
    else
      *inner *= x->dims[k];
  }
}

static void split(const moss_value *x, int axis, int64_t *outer, int64_t *len, int64_t *inner) {
  split_as(x, axis, 0, outer, len, inner);
}

static moss_status lower_cumsum(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *a = n->inputs[1];
  int excl = moss_attr_int(n, "exclusive", 0) != 0, rev = moss_attr_int(n, "reverse", 0) != 0;
  int xi, yi, opened = 0, inner_loop = 0;
  int64_t axis, outer, len, inner, j0;
  moss_kx *o, *i, *s, *base, *at, *prev;
  if (!a || !a->data) return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "axis is not a constant");
  axis = moss_value_get_i64(a, 0);
  if (axis < 0) axis += x->rank;
  split(x, (int)axis, &outer, &len, &inner);
  if (outer * len * inner == 0) {
    moss_k_comment(b, "empty tensor");
    return b->st;
  }
  xi = moss_k_input(b, 0);
  yi = moss_k_output(b, 0);
  o = loop(b, "o", outer, &opened);
  base = let_index(b, "base", moss_k_mulc(b, o, len * inner));
  /* The first row along the axis (the last one in reverse). */
  j0 = rev ? len - 1 : 0;
  i = loop(b, "i", inner, &inner_loop);
  at = moss_k_add(b, moss_k_addc(b, base, j0 * inner), i);
  moss_k_store(
      b, yi, at,
      excl ? moss_k_cast(b, x->dtype, moss_k_int(b, MOSS_DT_I64, 0)) : moss_k_load(b, xi, at));
  if (inner_loop) moss_k_end(b);
  inner_loop = 0;
  s = moss_k_for(b, "s", moss_k_idx(b, 1), moss_k_idx(b, len), 1, MOSS_KL_SERIAL, 0);
  /* Row j = s (len - 1 - s in reverse) adds to row p = j - 1 (j + 1). */
  {
    moss_kx *jrow =
        rev ? moss_k_let(b, "j", moss_k_bin(b, MOSS_KX_SUB, moss_k_idx(b, len - 1), s)) : s;
    moss_kx *jo = let_index(b, "jo", moss_k_add(b, base, moss_k_mulc(b, jrow, inner)));
    moss_kx *po = moss_k_addc(b, jo, rev ? inner : -inner);
    i = loop(b, "i", inner, &inner_loop);
    at = moss_k_add(b, jo, i);
    prev = moss_k_add(b, po, i);
    moss_k_store(
        b, yi, at,
        moss_k_bin(b, MOSS_KX_ADD, moss_k_load(b, yi, prev), moss_k_load(b, xi, excl ? prev : at)));
    if (inner_loop) moss_k_end(b);
  }
  moss_k_end(b);
  while (opened--) moss_k_end(b);
  return b->st;
}

/* e^t in float32 without a library call, so that a loop of it vectorizes
 * (machines with SIMD only): t clamped below at -87.3 (e^t is then about
 * FLT_MIN instead of a denormal or 0: an absolute error under 2e-38),
 * t = n ln2 + r with |r| <= ln2 / 2, e^r by a degree-7 polynomial (the
 * classic single-precision one: about 1 ulp), times 2^n built in the
 * exponent bits. NaN gives NaN; +inf is not reached (t = x - max <= 0). */
static moss_kx *exp_f32(moss_kb *b, moss_kx *t) {
  static const double c[6] = {1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                              4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1};
  moss_dtype F = MOSS_DT_F32;
  moss_kx *u, *nn, *r, *p, *scale;
  int k;
  t = moss_k_let(b, "t", t);
  u = moss_k_let(b, "u", moss_k_bin(b, MOSS_KX_MAX, t, moss_k_flt(b, F, -87.3)));
  nn = moss_k_let(b, "n", moss_k_call(b, MOSS_KFN_RINT, moss_k_bin(b, MOSS_KX_MUL, u, moss_k_flt(b, F, 1.44269504088896341)),
                                      NULL, NULL));
  r = moss_k_call(b, MOSS_KFN_FMA, nn, moss_k_flt(b, F, -0.693359375), u);
  r = moss_k_let(b, "r", moss_k_call(b, MOSS_KFN_FMA, nn, moss_k_flt(b, F, 2.12194440e-4), r));
  p = moss_k_flt(b, F, c[0]);
  for (k = 1; k < 6; k++) p = moss_k_call(b, MOSS_KFN_FMA, p, r, moss_k_flt(b, F, c[k]));
  p = moss_k_call(b, MOSS_KFN_FMA, p, moss_k_bin(b, MOSS_KX_MUL, r, r),
                  moss_k_bin(b, MOSS_KX_ADD, r, moss_k_flt(b, F, 1.0)));
  scale = moss_k_bits(b, F, moss_k_bin(b, MOSS_KX_SHL,
                                       moss_k_bin(b, MOSS_KX_ADD, moss_k_cast(b, MOSS_DT_I32, nn),
                                                  moss_k_int(b, MOSS_DT_I32, 127)),
                                       moss_k_int(b, MOSS_DT_I32, 23)));
  return moss_k_select(b, moss_k_call(b, MOSS_KFN_ISNAN, t, NULL, NULL), t, moss_k_bin(b, MOSS_KX_MUL, p, scale));
}

moss_status moss_lower_softmax(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0];
  moss_dtype dt = x->dtype, D = MOSS_DT_F64;
  int axis, xi, yi, opened = 0;
  int64_t outer, len, inner;
  moss_kx *o, *i, *j, *base, *m, *at;
  if (n->op == MOSS_OP_CumSum) return lower_cumsum(b, n);
  {
    /* Before opset 13 the family reduces over everything from |axis|
     * (default 1); from 13 on over |axis| alone (default -1). */
    int flatten = n->opset > 0 && n->opset < 13;
    int64_t ax = moss_attr_int(n, "axis", flatten ? 1 : -1);
    if (ax < 0) ax += x->rank;
    if (ax < 0 || ax >= x->rank) return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "axis out of range");
    axis = (int)ax;
    if (!moss_dtype_is_float(dt) || !moss_kernel_dtype_ok(dt))
      return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "type %s", moss_dtype_name(dt));
    split_as(x, axis, flatten, &outer, &len, &inner);
  }
  if (outer * len * inner == 0) {
    moss_k_comment(b, "empty tensor");
    return b->st;
  }
  xi = moss_k_input(b, 0);
  yi = moss_k_output(b, 0);
  o = loop(b, "o", outer, &opened);
  i = loop(b, "i", inner, &opened);
  base = let_index(b, "base", moss_k_add(b, moss_k_mulc(b, o, len * inner), i));
#define AT(jv) moss_k_add(b, base, moss_k_mulc(b, (jv), inner))
  m = moss_k_let(b, "m", moss_k_load(b, xi, base));
  if (n->op == MOSS_OP_Hardmax) {
    moss_kx *best = moss_k_let(b, "best", moss_k_idx(b, 0)), *v;
    j = moss_k_for(b, "j", moss_k_idx(b, 1), moss_k_idx(b, len), 1, MOSS_KL_REDUCE, 0);
    v = moss_k_let(b, "v", moss_k_load(b, xi, AT(j)));
    moss_k_if(b, moss_k_bin(b, MOSS_KX_GT, v, m));
    moss_k_set(b, m, v);
    moss_k_set(b, best, j);
    moss_k_end(b);
    moss_k_end(b);
    j = moss_k_range(b, "j", len, MOSS_KL_PARALLEL);
    moss_k_store(b, yi, AT(j),
                 moss_k_select(b, moss_k_bin(b, MOSS_KX_EQ, j, best), moss_k_flt(b, dt, 1.0),
                               moss_k_flt(b, dt, 0.0)));
    moss_k_end(b);
  } else {
    moss_kx *s, *e;
    /* Rows of whole vectors (contiguous, at least two): the maximum and the
     * sum in |L| lanes of partial results, so that neither is a chain of
     * dependent scalar steps. */
    int L = b->cpu.vector_bytes / 4;
    int64_t lv = n->op == MOSS_OP_Softmax && dt == MOSS_DT_F32 && b->cpu.fma && L >= 4 && inner == 1
                     ? len / L * L : 0;
    if (lv < 2 * L) lv = 0;
    if (lv) {
      moss_kx *vm = moss_k_let(b, "vm", moss_k_vload(b, xi, base, L)), *k;
      j = moss_k_for(b, "j", moss_k_idx(b, L), moss_k_idx(b, lv), L, MOSS_KL_REDUCE, 0);
      moss_k_set(b, vm, moss_k_bin(b, MOSS_KX_MAX, moss_k_vload(b, xi, moss_k_add(b, base, j), L), vm));
      moss_k_end(b);
      /* The lanes' maximum, through the output row (written again below). */
      moss_k_store(b, yi, base, vm);
      j = moss_k_for(b, "j", moss_k_idx(b, 1), moss_k_idx(b, L), 1, MOSS_KL_REDUCE, 0);
      moss_k_set(b, m, moss_k_bin(b, MOSS_KX_MAX, moss_k_load(b, yi, moss_k_add(b, base, j)), m));
      moss_k_end(b);
      moss_k_set(b, m, moss_k_bin(b, MOSS_KX_MAX, moss_k_load(b, yi, base), m));
      k = moss_k_for(b, "j", moss_k_idx(b, lv), moss_k_idx(b, len), 1, MOSS_KL_REDUCE, 0);
      moss_k_set(b, m, moss_k_bin(b, MOSS_KX_MAX, moss_k_load(b, xi, moss_k_add(b, base, k)), m));
      moss_k_end(b);
    } else {
      j = moss_k_for(b, "j", moss_k_idx(b, 1), moss_k_idx(b, len), 1, MOSS_KL_REDUCE, 0);
      moss_k_set(b, m, moss_k_bin(b, MOSS_KX_MAX, moss_k_load(b, xi, AT(j)), m));
      moss_k_end(b);
    }
    s = moss_k_let(b, "s", moss_k_flt(b, D, 0.0));
    if (n->op == MOSS_OP_Softmax) {
      moss_kx *r;
      if (dt == MOSS_DT_F32 && b->cpu.vector_bytes && b->cpu.fma) {
        /* The exponentials in one loop that vectorizes, then their sum in
         * double: in |L| partial sums on rows of whole vectors, else in
         * order, as below. */
        j = moss_k_range(b, "j", len, MOSS_KL_PARALLEL);
        at = AT(j);
        moss_k_store(b, yi, at, exp_f32(b, moss_k_bin(b, MOSS_KX_SUB, moss_k_load(b, xi, at), m)));
        moss_k_end(b);
        if (lv) {
          moss_kx *vs = moss_k_let(b, "vs", moss_k_splat(b, moss_k_flt(b, D, 0.0), L));
          j = moss_k_for(b, "j", moss_k_idx(b, 0), moss_k_idx(b, lv), L, MOSS_KL_REDUCE, 0);
          moss_k_set(b, vs, moss_k_bin(b, MOSS_KX_ADD, vs, moss_k_cast(b, D, moss_k_vload(b, yi, moss_k_add(b, base, j), L))));
          moss_k_end(b);
          moss_k_set(b, s, moss_k_hsum(b, vs));
        }
        j = moss_k_for(b, "j", moss_k_idx(b, lv), moss_k_idx(b, len), 1, MOSS_KL_REDUCE, 0);
        moss_k_set(b, s, moss_k_bin(b, MOSS_KX_ADD, s, moss_k_cast(b, D, moss_k_load(b, yi, AT(j)))));
        moss_k_end(b);
      } else {
        j = moss_k_range(b, "j", len, MOSS_KL_REDUCE);
        at = AT(j);
        e = moss_k_let(
            b, "e",
            moss_k_call(b, MOSS_KFN_EXP, moss_k_bin(b, MOSS_KX_SUB, moss_k_load(b, xi, at), m), NULL,
                        NULL));
        moss_k_store(b, yi, at, e);
        moss_k_set(b, s, moss_k_bin(b, MOSS_KX_ADD, s, moss_k_cast(b, D, e)));
        moss_k_end(b);
      }
      r = moss_k_let(b, "r",
                     moss_k_cast(b, dt, moss_k_bin(b, MOSS_KX_DIV, moss_k_flt(b, D, 1.0), s)));
      j = moss_k_range(b, "j", len, MOSS_KL_PARALLEL);
      at = AT(j);
      moss_k_store(b, yi, at, moss_k_bin(b, MOSS_KX_MUL, moss_k_load(b, yi, at), r));
      moss_k_end(b);
    } else {
      moss_kx *l;
      j = moss_k_range(b, "j", len, MOSS_KL_REDUCE);
      e = moss_k_call(b, MOSS_KFN_EXP, moss_k_bin(b, MOSS_KX_SUB, moss_k_load(b, xi, AT(j)), m),
                      NULL, NULL);
      moss_k_set(b, s, moss_k_bin(b, MOSS_KX_ADD, s, moss_k_cast(b, D, e)));
      moss_k_end(b);
      l = moss_k_let(b, "l", moss_k_cast(b, dt, moss_k_call(b, MOSS_KFN_LOG, s, NULL, NULL)));
      j = moss_k_range(b, "j", len, MOSS_KL_PARALLEL);
      at = AT(j);
      moss_k_store(
          b, yi, at,
          moss_k_bin(b, MOSS_KX_SUB, moss_k_bin(b, MOSS_KX_SUB, moss_k_load(b, xi, at), m), l));
      moss_k_end(b);
    }
  }
#undef AT
  while (opened--) moss_k_end(b);
  return b->st;
}
