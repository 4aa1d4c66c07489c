/* lower_cast.c - Cast and CastLike: one parallel loop over the flat
 * tensor. A float converted to an integer type goes through a guarded
 * conversion (NaN gives 0, values outside the type's range saturate),
 * because converting such a value is undefined in C and poison in LLVM;
 * the conversion itself sits in the branch of a select that is taken only
 * when the value is in range. CastLike's second input gives only the type. */
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

moss_status moss_lower_cast_expr(moss_kb *b, const moss_node *n, moss_kx *v, moss_kx **out) {
  moss_dtype xt = n->inputs[0]->dtype, yt = n->outputs[0]->dtype;
  *out = v;
  if (!moss_kernel_dtype_ok(xt) || !moss_kernel_dtype_ok(yt))
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "cast from %s to %s", moss_dtype_name(xt), moss_dtype_name(yt));
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
  if (!moss_kernel_dtype_ok(n->inputs[0]->dtype) || !moss_kernel_dtype_ok(n->outputs[0]->dtype))
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
