/* cast.c - Cast (target type from the `to` attribute) and CastLike (target
 * type from the second input's dtype), between every numeric type and bool,
 * float16 and bfloat16 included (rounded to nearest even in one step).
 * Float to integer truncates toward zero like C; NaN gives 0 and values out
 * of the target's range saturate, so neither the folder nor the generated
 * code (emit_cast.c) ever performs an undefined conversion. */
#include <math.h>

#include "ops.h"

static moss_status target_type(moss_ctx *ctx, const moss_node *n, moss_dtype *out_dt) {
  int64_t to;
  if (n->op == MOSS_OP_CastLike) {
    MOSS_TRY(moss_need_input(ctx, n, 1));
    *out_dt = n->inputs[1]->dtype;
    return MOSS_OK;
  }
  if (!moss_node_find_attr(n, "to"))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "Cast has no 'to' attribute");
  to = moss_attr_int(n, "to", 0);
  if (to <= 0 || to >= MOSS_DT_COUNT_ || !moss_dtype_size((moss_dtype)to)) {
    if (to == MOSS_DT_STRING)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "cast to string is not supported");
    if (to >= 17 && to <= 20)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "cast to float8 (type %lld) is not supported",
                       (long long)to);
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "unknown target type %lld", (long long)to);
  }
  *out_dt = (moss_dtype)to;
  return MOSS_OK;
}

moss_status moss_infer_cast(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = n->inputs[0];
  moss_dtype to = MOSS_DT_UNDEF;
  (void)g;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  MOSS_TRY(target_type(ctx, n, &to));
  if (!moss_dtype_ctype(moss_dtype_storage(x->dtype)))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "cast from %s is not supported",
                     moss_dtype_name(x->dtype));
  if (!moss_dtype_ctype(moss_dtype_storage(to)))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "cast to %s is not supported", moss_dtype_name(to));
  moss_set_output(n, 0, to, x->rank, x->dims);
  return MOSS_OK;
}

/* Range of an integer type, as doubles: the conversion is defined for
 * lo < v < hi (exclusive bounds, exactly representable). */
static void int_bounds(moss_dtype dt, double *lo, double *hi) {
  switch (dt) {
  case MOSS_DT_I8: *lo = -129.0, *hi = 128.0; break;
  case MOSS_DT_U8: *lo = -1.0, *hi = 256.0; break;
  case MOSS_DT_I16: *lo = -32769.0, *hi = 32768.0; break;
  case MOSS_DT_U16: *lo = -1.0, *hi = 65536.0; break;
  case MOSS_DT_I32: *lo = -2147483649.0, *hi = 2147483648.0; break;
  case MOSS_DT_U32: *lo = -1.0, *hi = 4294967296.0; break;
  case MOSS_DT_U64: *lo = -1.0, *hi = 18446744073709551616.0; break;
  default: *lo = -9223372036854777856.0, *hi = 9223372036854775808.0; break;
  }
}

moss_status moss_eval_cast(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = n->inputs[0], *y = n->outputs[0];
  moss_dtype xt = x->dtype, yt = y->dtype;
  int64_t i, ne = moss_value_numel(x);
  (void)ctx;
  (void)g;
  if (!moss_dtype_ctype(moss_dtype_storage(xt)) || !moss_dtype_ctype(moss_dtype_storage(yt)))
    return MOSS_E_UNSUPPORTED;
  for (i = 0; i < ne; i++) {
    if (yt == MOSS_DT_BOOL) {
      ((uint8_t *)y->data)[i] = moss_dtype_is_float(xt) ? moss_load_f64(xt, x->data, i) != 0
                                                        : moss_load_i64(xt, x->data, i) != 0;
    } else if (moss_dtype_is_float(xt)) {
      double v = moss_load_f64(xt, x->data, i), lo, hi;
      if (moss_dtype_is_float(yt)) {
        moss_store_f64(yt, y->data, i, v);
        continue;
      }
      int_bounds(yt, &lo, &hi);
      if (v != v) v = 0;
      if (yt == MOSS_DT_U64) {
        ((uint64_t *)y->data)[i] = v <= lo ? 0 : v >= hi ? UINT64_MAX : (uint64_t)v;
        continue;
      }
      if (v <= lo) moss_store_i64(yt, y->data, i, yt == MOSS_DT_I64 ? INT64_MIN : (int64_t)(lo + 1));
      else if (v >= hi) moss_store_i64(yt, y->data, i, yt == MOSS_DT_I64 ? INT64_MAX : (int64_t)(hi - 1));
      else moss_store_i64(yt, y->data, i, (int64_t)v);
    } else if (xt == MOSS_DT_U64) {
      uint64_t v = ((const uint64_t *)x->data)[i];
      if (yt == MOSS_DT_F32) ((float *)y->data)[i] = (float)v;
      else if (yt == MOSS_DT_F64) ((double *)y->data)[i] = (double)v;
      else moss_store_i64(yt, y->data, i, (int64_t)v);
    } else {
      moss_store_i64(yt, y->data, i, moss_load_i64(xt, x->data, i));
    }
  }
  return MOSS_OK;
}
