/* lower_cast.c - Cast and CastLike: one parallel loop over the flat
 * tensor. float16 and bfloat16, stored as their bits, convert through
 * integer operations on the bits, which every backend has. A float converted to an integer type goes through a guarded
 * conversion (NaN gives 0, values outside the type's range saturate),
 * because converting such a value is undefined in C and poison in LLVM;
 * the conversion itself sits in the branch of a select that is taken only
 * when the value is in range. CastLike's second input gives only the type. */
#include <math.h>

#include "lower.h"

/* The exclusive bounds (exact doubles) inside which converting to the
 * integer type |dt| is defined, and the type's smallest and largest values. */
static void range(moss_dtype dt, double *lo, double *hi, int64_t *mn, int64_t *mx) {
  switch (dt) {
  case MOSS_DT_I8: *lo = -129.0, *hi = 128.0, *mn = -128, *mx = 127; break;
  case MOSS_DT_U8: *lo = -1.0, *hi = 256.0, *mn = 0, *mx = 255; break;
  case MOSS_DT_I16: *lo = -32769.0, *hi = 32768.0, *mn = -32768, *mx = 32767; break;
  case MOSS_DT_U16: *lo = -1.0, *hi = 65536.0, *mn = 0, *mx = 65535; break;
  case MOSS_DT_I32:
    *lo = -2147483649.0, *hi = 2147483648.0, *mn = INT32_MIN, *mx = INT32_MAX;
    break;
  case MOSS_DT_U32: *lo = -1.0, *hi = 4294967296.0, *mn = 0, *mx = UINT32_MAX; break;
  case MOSS_DT_U64: /* the largest value is UINT64_MAX, -1 as bits */
    *lo = -1.0, *hi = 18446744073709551616.0, *mn = 0, *mx = -1;
    break;
  default:
    *lo = -9223372036854777856.0, *hi = 9223372036854775808.0, *mn = INT64_MIN, *mx = INT64_MAX;
    break;
  }
}

/* The float |v| converted to the integer type |dt|, saturating. */
static moss_kx *to_int(moss_kb *b, moss_dtype dt, moss_kx *v) {
  double lo, hi;
  int64_t mn, mx;
  moss_kx *d, *clo, *inside, *outside;
  range(dt, &lo, &hi, &mn, &mx);
  d = moss_k_let(b, "v", moss_k_cast(b, MOSS_DT_F64, v));
  clo = moss_k_flt(b, MOSS_DT_F64, lo);
  inside = moss_k_bin(b, MOSS_KX_LAND, moss_k_bin(b, MOSS_KX_GT, d, clo),
                      moss_k_bin(b, MOSS_KX_LT, d, moss_k_flt(b, MOSS_DT_F64, hi)));
  outside = moss_k_select(b, moss_k_call(b, MOSS_KFN_ISNAN, d, NULL, NULL), moss_k_int(b, dt, 0),
                          moss_k_select(b, moss_k_bin(b, MOSS_KX_LE, d, clo), moss_k_int(b, dt, mn),
                                        moss_k_int(b, dt, mx)));
  return moss_k_select(b, inside, moss_k_cast(b, dt, d), outside);
}

/* An unsigned constant of |dt|. */
static moss_kx *u(moss_kb *b, moss_dtype dt, uint64_t v) { return moss_k_int(b, dt, (int64_t)v); }

static moss_kx *bin(moss_kb *b, moss_kx_op op, moss_kx *x, moss_kx *y) { return moss_k_bin(b, op, x, y); }

/* float16 or bfloat16 bits |h| (U16) as the float32 they stand for,
 * exactly: bfloat16 is float32's top half; a float16's exponent is
 * rebiased (normal numbers), its fraction scaled by 2^-24 (subnormal ones),
 * or carried into float32's infinity or NaN. */
static moss_kx *half_to_f32(moss_kb *b, moss_dtype xt, moss_kx *h) {
  moss_kx *w = moss_k_let(b, "h", moss_k_cast(b, MOSS_DT_U32, h)), *s, *e, *m, *mag, *sub;
  if (xt == MOSS_DT_BF16) return moss_k_bits(b, MOSS_DT_F32, bin(b, MOSS_KX_SHL, w, u(b, MOSS_DT_U32, 16)));
  s = bin(b, MOSS_KX_SHL, bin(b, MOSS_KX_BAND, w, u(b, MOSS_DT_U32, 0x8000)), u(b, MOSS_DT_U32, 16));
  e = moss_k_let(b, "e", bin(b, MOSS_KX_BAND, bin(b, MOSS_KX_SHR, w, u(b, MOSS_DT_U32, 10)), u(b, MOSS_DT_U32, 0x1f)));
  m = bin(b, MOSS_KX_BAND, w, u(b, MOSS_DT_U32, 0x3ff));
  /* (e << 23 | m << 13) + (127 - 15) << 23; infinities and NaNs once more */
  mag = bin(b, MOSS_KX_ADD, bin(b, MOSS_KX_SHL, bin(b, MOSS_KX_BAND, w, u(b, MOSS_DT_U32, 0x7fff)), u(b, MOSS_DT_U32, 13)),
            moss_k_select(b, bin(b, MOSS_KX_EQ, e, u(b, MOSS_DT_U32, 31)), u(b, MOSS_DT_U32, 0x70000000u),
                          u(b, MOSS_DT_U32, 0x38000000u)));
  sub = bin(b, MOSS_KX_MUL, moss_k_cast(b, MOSS_DT_F32, m), moss_k_flt(b, MOSS_DT_F32, 5.9604644775390625e-08));
  return moss_k_select(b, bin(b, MOSS_KX_EQ, e, u(b, MOSS_DT_U32, 0)),
                       moss_k_bits(b, MOSS_DT_F32, bin(b, MOSS_KX_BOR, moss_k_bits(b, MOSS_DT_U32, sub), s)),
                       moss_k_bits(b, MOSS_DT_F32, bin(b, MOSS_KX_BOR, mag, s)));
}

/* Float |v| (F32 or F64) as float16 or bfloat16 bits (U16), rounded to
 * nearest even in one step, on the bits of |v|'s own type: W-bit words,
 * P fraction bits, E exponent bias; the target's p fraction bits and bias
 * e. NaN: a quiet NaN; at or past the halfway point to 2^(emax+1):
 * infinity; below the smallest normal: |v| scaled to the subnormal's unit
 * and rounded (rint: to nearest even); else the fraction rounded at bit
 * P - p (adding half a unit less one, plus the kept part's last bit) and
 * the exponent rebiased. */
static moss_kx *half_from(moss_kb *b, moss_dtype yt, moss_kx *v) {
  int f64 = v->dt == MOSS_DT_F64, bf = yt == MOSS_DT_BF16;
  moss_dtype wt = f64 ? MOSS_DT_U64 : MOSS_DT_U32;
  int W = f64 ? 64 : 32, P = f64 ? 52 : 23, E = f64 ? 1023 : 127, p = bf ? 7 : 10, e = bf ? 127 : 15;
  int sh = P - p;
  uint64_t absmask = ((uint64_t)1 << (W - 1)) - 1, infbits = (uint64_t)(2 * E + 1) << P;
  /* the halfway point past the largest finite: 2^(emax) x (2 - 2^-(p+1)) */
  uint64_t over = ((uint64_t)(e + E + 1) << P) - ((uint64_t)1 << (sh - 1));
  uint64_t minnorm = (uint64_t)(E - e + 1) << P, rebias = (uint64_t)(E - e) << P;
  uint16_t qnan = (uint16_t)(((2u * (unsigned)e + 1u) << p) | (1u << (p - 1))), inf = (uint16_t)((2u * (unsigned)e + 1u) << p);
  moss_kx *w = moss_k_let(b, "w", moss_k_bits(b, wt, v)), *s, *a, *sub, *nrm, *r;
  s = moss_k_cast(b, MOSS_DT_U16, bin(b, MOSS_KX_BAND, bin(b, MOSS_KX_SHR, w, u(b, wt, (uint64_t)W - 16)), u(b, wt, 0x8000)));
  a = moss_k_let(b, "a", bin(b, MOSS_KX_BAND, w, u(b, wt, absmask)));
  nrm = bin(b, MOSS_KX_ADD, a, bin(b, MOSS_KX_ADD, u(b, wt, ((uint64_t)1 << (sh - 1)) - 1),
                                   bin(b, MOSS_KX_BAND, bin(b, MOSS_KX_SHR, a, u(b, wt, (uint64_t)sh)), u(b, wt, 1))));
  nrm = moss_k_cast(b, MOSS_DT_U16, bin(b, MOSS_KX_SHR, bin(b, MOSS_KX_SUB, nrm, u(b, wt, rebias)), u(b, wt, (uint64_t)sh)));
  /* bfloat16 from float32: the same exponent range, so float32's subnormal
   * numbers round like the rest; else they are scaled (2^(e - 1 + p)) */
  if (bf && !f64)
    sub = nrm;
  else
    sub = moss_k_cast(b, MOSS_DT_U16, moss_k_call(b, MOSS_KFN_RINT,
                      bin(b, MOSS_KX_MUL, moss_k_bits(b, v->dt, a), moss_k_flt(b, v->dt, ldexp(1.0, e - 1 + p))), NULL, NULL));
  r = moss_k_select(b, bin(b, MOSS_KX_GT, a, u(b, wt, infbits)), u(b, MOSS_DT_U16, qnan),
                    moss_k_select(b, bin(b, MOSS_KX_GE, a, u(b, wt, over)), u(b, MOSS_DT_U16, inf),
                                  moss_k_select(b, bin(b, MOSS_KX_LT, a, u(b, wt, minnorm)), sub, nrm)));
  return bin(b, MOSS_KX_BOR, r, s);
}

moss_status moss_lower_cast_expr(moss_kb *b, const moss_node *n, moss_kx *v, moss_kx **out) {
  moss_dtype xt = n->inputs[0]->dtype, yt = n->outputs[0]->dtype;
  *out = v;
  if (!moss_kernel_dtype_ok(moss_dtype_storage(xt)) || !moss_kernel_dtype_ok(moss_dtype_storage(yt)))
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "cast from %s to %s", moss_dtype_name(xt), moss_dtype_name(yt));
  /* float16 and bfloat16 are their bits (U16): from them through float32,
   * which holds them exactly; to them from float32 or float64 in one
   * rounding (integers and bool through float64, exact to 2^53). */
  if (moss_dtype_is_half(xt)) {
    v = half_to_f32(b, xt, v);
    xt = MOSS_DT_F32;
  }
  if (moss_dtype_is_half(yt)) {
    *out = half_from(b, yt, xt == MOSS_DT_F32 ? v : moss_k_cast(b, MOSS_DT_F64, v));
    return b->st;
  }
  if (moss_dtype_is_float(xt) && !moss_dtype_is_float(yt) && yt != MOSS_DT_BOOL)
    *out = to_int(b, yt, v);
  else
    *out = moss_k_cast(b, yt, v); /* to BOOL: v != 0 */
  return b->st;
}

moss_status moss_lower_cast(moss_kb *b, const moss_node *n) {
  int64_t ne = moss_value_numel(n->outputs[0]);
  int xb, yb;
  moss_kx *i, *v = NULL;
  if (!moss_kernel_dtype_ok(moss_dtype_storage(n->inputs[0]->dtype)) ||
      !moss_kernel_dtype_ok(moss_dtype_storage(n->outputs[0]->dtype)))
    return moss_lower_cast_expr(b, n, NULL, &v); /* the failure */
  if (ne <= 0) return b->st;
  xb = moss_k_input(b, 0);
  yb = moss_k_output(b, 0);
  i = moss_k_range(b, "i", ne, MOSS_KL_PARALLEL);
  MOSS_TRY(moss_lower_cast_expr(b, n, moss_k_load(b, xb, i), &v));
  moss_k_store(b, yb, i, v);
  moss_k_end(b);
  return b->st;
}
