/* emit_softmax.c - C for Softmax/LogSoftmax/Hardmax and CumSum. The tensor
 * is seen as [outer, len, inner] around the axis (before opset 13 the
 * softmax family reduces over everything from |axis| on, so inner = 1).
 * Softmax subtracts the maximum before exp and sums in double. CumSum
 * walks the axis with the innermost loop over contiguous elements, each
 * row adding to the previous output row; integers wrap. */
#include <stdio.h>

#include "cgen.h"

static void split(const moss_value *x, int axis, int flatten, int64_t *outer, int64_t *len,
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

static moss_status emit_cumsum(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0];
  const char *T = moss_dtype_ctype(x->dtype), *U = NULL;
  int64_t axis = moss_value_get_i64(n->inputs[1], 0), outer, len, inner;
  int excl = moss_attr_int(n, "exclusive", 0) != 0, rev = moss_attr_int(n, "reverse", 0) != 0;
  char add[256];
  if (axis < 0) axis += x->rank;
  split(x, (int)axis, 0, &outer, &len, &inner);
  if (outer * len * inner == 0) {
    moss_c_line(cg, "/* empty tensor */");
    return MOSS_OK;
  }
  if (!moss_dtype_is_float(x->dtype))
    U = (x->dtype == MOSS_DT_I64 || x->dtype == MOSS_DT_U64) ? "uint64_t" : "uint32_t";
  if (U)
    snprintf(add, sizeof add,
             "yo[j * %lld + i] = (%s)((%s)yo[p * %lld + i] + (%s)xo[%s * %lld + i]);",
             (long long)inner, T, U, (long long)inner, U, excl ? "p" : "j", (long long)inner);
  else
    snprintf(add, sizeof add, "yo[j * %lld + i] = yo[p * %lld + i] + xo[%s * %lld + i];",
             (long long)inner, (long long)inner, excl ? "p" : "j", (long long)inner);
  moss_c_open(cg, "for (long o = 0; o < %lld; o++)", (long long)outer);
  moss_c_line(cg, "const %s *xo = x0 + o * %lld;", T, (long long)(len * inner));
  moss_c_line(cg, "%s *yo = y0 + o * %lld;", T, (long long)(len * inner));
  {
    int64_t j0 = rev ? len - 1 : 0;
    if (excl)
      moss_c_line(cg, "for (long i = 0; i < %lld; i++) yo[%lld + i] = 0;", (long long)inner,
                  (long long)(j0 * inner));
    else
      moss_c_line(cg, "for (long i = 0; i < %lld; i++) yo[%lld + i] = xo[%lld + i];",
                  (long long)inner, (long long)(j0 * inner), (long long)(j0 * inner));
  }
  moss_c_open(cg, "for (long s = 1; s < %lld; s++)", (long long)len);
  if (rev) {
    moss_c_line(cg, "const long j = %lld - s;", (long long)(len - 1));
    moss_c_line(cg, "const long p = j + 1;");
  } else {
    moss_c_line(cg, "const long j = s;");
    moss_c_line(cg, "const long p = j - 1;");
  }
  moss_c_line(cg, "for (long i = 0; i < %lld; i++) %s", (long long)inner, add);
  moss_c_close(cg);
  moss_c_close(cg);
  return MOSS_OK;
}

moss_status moss_c_emit_softmax(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0];
  const char *T = moss_dtype_ctype(x->dtype);
  int f32 = x->dtype == MOSS_DT_F32, flatten = cg->g->opset < 13;
  int64_t ax, outer, len, inner;
  const char *F = f32 ? "f" : "";
  if (n->op == MOSS_OP_CumSum) return emit_cumsum(cg, n);
  ax = moss_attr_int(n, "axis", flatten ? 1 : -1);
  if (ax < 0) ax += x->rank;
  split(x, (int)ax, flatten, &outer, &len, &inner);
  if (outer * len * inner == 0) {
    moss_c_line(cg, "/* empty tensor */");
    return MOSS_OK;
  }
  moss_c_open(cg, "for (long o = 0; o < %lld; o++)", (long long)outer);
  moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)inner);
  moss_c_line(cg, "const %s *xp = x0 + o * %lld + i;", T, (long long)(len * inner));
  moss_c_line(cg, "%s *yp = y0 + o * %lld + i;", T, (long long)(len * inner));
  moss_c_line(cg, "%s m = xp[0];", T);
  if (n->op == MOSS_OP_Hardmax) {
    moss_c_line(cg, "long best = 0;");
    moss_c_open(cg, "for (long j = 1; j < %lld; j++)", (long long)len);
    moss_c_line(cg, "if (xp[j * %lld] > m) m = xp[j * %lld], best = j;", (long long)inner,
                (long long)inner);
    moss_c_close(cg);
  } else {
    moss_c_line(cg, "for (long j = 1; j < %lld; j++) if (xp[j * %lld] > m) m = xp[j * %lld];",
                (long long)len, (long long)inner, (long long)inner);
  }
  if (n->op == MOSS_OP_Hardmax) {
    moss_c_line(cg, "for (long j = 0; j < %lld; j++) yp[j * %lld] = j == best ? 1 : 0;",
                (long long)len, (long long)inner);
  } else {
    moss_c_line(cg, "double s = 0;");
    if (n->op == MOSS_OP_Softmax) {
      moss_c_open(cg, "for (long j = 0; j < %lld; j++)", (long long)len);
      moss_c_line(cg, "const %s e = exp%s(xp[j * %lld] - m);", T, F, (long long)inner);
      moss_c_line(cg, "yp[j * %lld] = e;", (long long)inner);
      moss_c_line(cg, "s += e;");
      moss_c_close(cg);
      moss_c_line(cg, "const %s r = (%s)(1.0 / s);", T, T);
      moss_c_line(cg, "for (long j = 0; j < %lld; j++) yp[j * %lld] *= r;", (long long)len,
                  (long long)inner);
    } else {
      moss_c_line(cg, "for (long j = 0; j < %lld; j++) s += exp%s(xp[j * %lld] - m);",
                  (long long)len, F, (long long)inner);
      moss_c_line(cg, "const %s l = (%s)log(s);", T, T);
      moss_c_line(cg, "for (long j = 0; j < %lld; j++) yp[j * %lld] = (xp[j * %lld] - m) - l;",
                  (long long)len, (long long)inner, (long long)inner);
    }
  }
  moss_c_close(cg);
  moss_c_close(cg);
  return MOSS_OK;
}
