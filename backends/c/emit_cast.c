/* emit_cast.c - C for Cast and CastLike: one flat loop. Float to integer
 * goes through a guarded conversion (NaN -> 0, out of range saturates),
 * because a plain C cast of such a value is undefined behaviour. */
#include <stdio.h>

#include "cgen.h"

/* Min and max of an integer type as C literals. */
static void limits(moss_dtype dt, const char **lo, const char **hi) {
  switch (dt) {
  case MOSS_DT_I8: *lo = "-128", *hi = "127"; break;
  case MOSS_DT_U8: *lo = "0", *hi = "255"; break;
  case MOSS_DT_I16: *lo = "-32768", *hi = "32767"; break;
  case MOSS_DT_U16: *lo = "0", *hi = "65535"; break;
  case MOSS_DT_I32: *lo = "(-2147483647 - 1)", *hi = "2147483647"; break;
  case MOSS_DT_U32: *lo = "0u", *hi = "4294967295u"; break;
  case MOSS_DT_U64: *lo = "0", *hi = "UINT64_MAX"; break;
  default: *lo = "INT64_MIN", *hi = "INT64_MAX"; break;
  }
}

/* Exclusive bounds (exact doubles) inside which the conversion is defined. */
static void bounds(moss_dtype dt, const char **lo, const char **hi) {
  switch (dt) {
  case MOSS_DT_I8: *lo = "-129.0", *hi = "128.0"; break;
  case MOSS_DT_U8: *lo = "-1.0", *hi = "256.0"; break;
  case MOSS_DT_I16: *lo = "-32769.0", *hi = "32768.0"; break;
  case MOSS_DT_U16: *lo = "-1.0", *hi = "65536.0"; break;
  case MOSS_DT_I32: *lo = "-2147483649.0", *hi = "2147483648.0"; break;
  case MOSS_DT_U32: *lo = "-1.0", *hi = "4294967296.0"; break;
  case MOSS_DT_U64: *lo = "-1.0", *hi = "18446744073709551616.0"; break;
  default: *lo = "-9223372036854777856.0", *hi = "9223372036854775808.0"; break;
  }
}

moss_status moss_c_emit_cast(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  moss_dtype xt = x->dtype, yt = y->dtype;
  const char *ct = moss_dtype_ctype(yt);
  int64_t ne = moss_value_numel(y);
  if (!ct || !moss_dtype_ctype(xt))
    return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "cast from %s to %s", moss_dtype_name(xt),
                     moss_dtype_name(yt));
  if (ne <= 0) return MOSS_OK;
  if (xt == yt) {
    if (y->alias != x) moss_c_line(cg, "memcpy(y0, x0, %zu);", moss_value_nbytes(y));
    return MOSS_OK;
  }
  moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)ne);
  if (yt == MOSS_DT_BOOL) {
    moss_c_line(cg, "y0[i] = (uint8_t)(x0[i] != 0);");
  } else if (moss_dtype_is_float(xt) && !moss_dtype_is_float(yt)) {
    const char *lo, *hi, *mn, *mx;
    bounds(yt, &lo, &hi);
    limits(yt, &mn, &mx);
    moss_c_line(cg, "const double v = (double)x0[i];");
    moss_c_line(cg, "y0[i] = v > %s && v < %s ? (%s)v : (v != v ? 0 : (v <= %s ? %s : %s));", lo, hi,
                ct, lo, mn, mx);
  } else {
    moss_c_line(cg, "y0[i] = (%s)x0[i];", ct);
  }
  moss_c_close(cg);
  return MOSS_OK;
}
