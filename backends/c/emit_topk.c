/* emit_topk.c - C for TopK: per position around the axis, an insertion
 * into the (already sorted) output lanes, O(len * k). Elements are visited
 * in index order and an element moves ahead only of strictly worse ones,
 * so equal values keep the lower index first, as the ONNX reference does.
 * The output is sorted whatever |sorted| says (allowed: unsorted order is
 * unspecified). */
#include <stdio.h>

#include "cgen.h"

moss_status moss_c_emit_topk(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  const char *T = moss_dtype_ctype(x->dtype);
  int axis, k, largest = moss_attr_int(n, "largest", 1) != 0;
  int64_t outer = 1, inner = 1, len, kk;
  const char *worse = largest ? "<" : ">";
  if (!y || n->noutputs < 2 || !n->outputs[1])
    return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "TopK without both outputs");
  axis = (int)moss_attr_int(n, "axis", -1);
  if (axis < 0) axis += x->rank;
  len = x->dims[axis];
  kk = y->dims[axis];
  for (k = 0; k < axis; k++) outer *= x->dims[k];
  for (k = axis + 1; k < x->rank; k++) inner *= x->dims[k];
  if (outer * inner * kk == 0) {
    moss_c_line(cg, "/* empty output */");
    return MOSS_OK;
  }
  moss_c_open(cg, "for (long o = 0; o < %lld; o++)", (long long)outer);
  moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)inner);
  moss_c_line(cg, "const %s *xp = x0 + o * %lld + i;", T, (long long)(len * inner));
  moss_c_line(cg, "%s *vp = y0 + o * %lld + i;", T, (long long)(kk * inner));
  moss_c_line(cg, "int64_t *ip = y1 + o * %lld + i;", (long long)(kk * inner));
  moss_c_line(cg, "long cnt = 0;");
  moss_c_open(cg, "for (long j = 0; j < %lld; j++)", (long long)len);
  moss_c_line(cg, "const %s v = xp[j * %lld];", T, (long long)inner);
  moss_c_line(cg, "long p;");
  moss_c_line(cg, "if (cnt == %lld && !(vp[%lld] %s v)) continue;", (long long)kk,
              (long long)((kk - 1) * inner), worse);
  moss_c_line(cg, "if (cnt < %lld) cnt++;", (long long)kk);
  moss_c_open(cg, "for (p = cnt - 1; p > 0 && vp[(p - 1) * %lld] %s v; p--)", (long long)inner,
              worse);
  moss_c_line(cg, "vp[p * %lld] = vp[(p - 1) * %lld];", (long long)inner, (long long)inner);
  moss_c_line(cg, "ip[p * %lld] = ip[(p - 1) * %lld];", (long long)inner, (long long)inner);
  moss_c_close(cg);
  moss_c_line(cg, "vp[p * %lld] = v;", (long long)inner);
  moss_c_line(cg, "ip[p * %lld] = j;", (long long)inner);
  moss_c_close(cg);
  moss_c_close(cg);
  moss_c_close(cg);
  return MOSS_OK;
}
