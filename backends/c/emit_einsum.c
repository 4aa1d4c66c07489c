/* emit_einsum.c - C for Einsum: one generic loop nest, the output labels
 * outside (in output order, so the output is written contiguously) and
 * the summed labels inside, accumulating the product of the inputs (double
 * for floats, wrapping uint64_t for integers). The equation parser is
 * the one in compiler/ops/einsum.c. */
#include <stdio.h>
#include <string.h>

#include "cgen.h"

moss_status moss_c_emit_einsum(moss_cgen *cg, const moss_node *n) {
  const moss_value *y = n->outputs[0];
  moss_dtype dt = y->dtype;
  const char *T = moss_dtype_ctype(dt);
  int isf = moss_dtype_is_float(dt), sgn = moss_dtype_is_signed(dt);
  moss_einsum e;
  char err[160], prod[2048], oidx[512];
  int i, k, p, depth = 0, sum[MOSS_EINSUM_LABELS], nsum = 0;
  size_t lp = 0, lo = 0;
  if (moss_einsum_compute(moss_attr_string(n, "equation", ""), n->ninputs, n->inputs, err,
                          sizeof err, &e))
    return moss_fail(cg->ctx, MOSS_E_INVALID_MODEL, n, "equation: %s", err);
  if (moss_value_numel(y) == 0) {
    moss_c_line(cg, "/* empty output */");
    return MOSS_OK;
  }
  for (k = 0; k < MOSS_EINSUM_LABELS; k++)
    if (e.size[k] >= 0 && !e.in_out[k]) sum[nsum++] = k;
  /* The product of the inputs at the current labels. */
  prod[0] = 0;
  for (i = 0; i < e.nin; i++) {
    const moss_value *x = n->inputs[i];
    int64_t stride = 1;
    char idx[512];
    size_t li = 0;
    idx[0] = 0;
    for (p = e.rank[i] - 1; p >= 0; p--) {
      if (x->dims[p] != 1 && li < sizeof idx)
        li += (size_t)snprintf(idx + li, sizeof idx - li, "%se%d * %lld", li ? " + " : "",
                               e.lab[i][p], (long long)stride);
      stride *= x->dims[p];
    }
    if (!idx[0]) snprintf(idx, sizeof idx, "0");
    if (lp < sizeof prod) {
      if (isf)
        lp += (size_t)snprintf(prod + lp, sizeof prod - lp, "%s(double)x%d[%s]", i ? " * " : "", i,
                               idx);
      else
        lp += (size_t)snprintf(prod + lp, sizeof prod - lp, "%s(uint64_t)%sx%d[%s]", i ? " * " : "",
                               sgn ? "(int64_t)" : "", i, idx);
    }
  }
  {
    int64_t stride = 1;
    oidx[0] = 0;
    for (k = e.orank - 1; k >= 0; k--) {
      if (y->dims[k] != 1 && lo < sizeof oidx)
        lo += (size_t)snprintf(oidx + lo, sizeof oidx - lo, "%se%d * %lld", lo ? " + " : "",
                               e.olab[k], (long long)stride);
      stride *= y->dims[k];
    }
    if (!oidx[0]) snprintf(oidx, sizeof oidx, "0");
  }
  for (k = 0; k < e.orank; k++, depth++)
    moss_c_open(cg, "for (long e%d = 0; e%d < %lld; e%d++)", e.olab[k], e.olab[k],
                (long long)y->dims[k], e.olab[k]);
  moss_c_line(cg, "%s acc = 0;", isf ? "double" : "uint64_t");
  for (k = 0; k < nsum; k++)
    moss_c_open(cg, "for (long e%d = 0; e%d < %lld; e%d++)", sum[k], sum[k],
                (long long)e.size[sum[k]], sum[k]);
  moss_c_line(cg, "acc += %s;", prod);
  for (k = 0; k < nsum; k++) moss_c_close(cg);
  moss_c_line(cg, "y0[%s] = (%s)acc;", oidx, T);
  while (depth--) moss_c_close(cg);
  return MOSS_OK;
}
