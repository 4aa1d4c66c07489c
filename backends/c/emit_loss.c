/* emit_loss.c - C for NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss:
 * one pass over the N x d1..dk positions; at each, SoftmaxCrossEntropyLoss
 * takes the log-sum-exp over the C classes (stride D = d1*..*dk), then the
 * target class's term is weighted and written or accumulated in double.
 * Targets equal to ignore_index, or outside [0, C), contribute nothing. */
#include <string.h>

#include "cgen.h"

moss_status moss_c_emit_loss(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0], *w = moss_node_input(n, 2);
  const moss_value *lp = n->noutputs > 1 ? n->outputs[1] : NULL;
  const char *red = moss_attr_string(n, "reduction", "mean");
  const char *ct = moss_dtype_ctype(x->dtype);
  const moss_attr *ii = moss_node_find_attr(n, "ignore_index");
  int none = !strcmp(red, "none"), mean = !strcmp(red, "mean"), sce = n->op == MOSS_OP_SoftmaxCrossEntropyLoss;
  int64_t N = x->dims[0], C = x->dims[1], D = 1;
  int k;
  char lit[64];
  for (k = 2; k < x->rank; k++) D *= x->dims[k];
  if (!none) moss_c_line(cg, "double num = 0%s;", mean ? ", den = 0" : "");
  if (N * D > 0 && C > 0) {
    moss_c_open(cg, "for (long nn = 0; nn < %lld; nn++)", (long long)N);
    moss_c_open(cg, "for (long dd = 0; dd < %lld; dd++)", (long long)D);
    moss_c_line(cg, "const int64_t t = x1[nn * %lld + dd];", (long long)D);
    moss_c_line(cg, "const %s *xp = x0 + nn * %lld + dd;", ct, (long long)(C * D));
    if (sce) {
      moss_c_line(cg, "double m = xp[0], s = 0, lse;");
      moss_c_line(cg, "for (long c = 1; c < %lld; c++) m = xp[c * %lld] > m ? xp[c * %lld] : m;",
                  (long long)C, (long long)D, (long long)D);
      moss_c_line(cg, "for (long c = 0; c < %lld; c++) s += exp(xp[c * %lld] - m);", (long long)C,
                  (long long)D);
      moss_c_line(cg, "lse = m + log(s);");
      if (lp)
        moss_c_line(cg, "for (long c = 0; c < %lld; c++) y1[nn * %lld + dd + c * %lld] = (%s)(xp[c * %lld] - lse);",
                    (long long)C, (long long)(C * D), (long long)D, ct, (long long)D);
    }
    if (ii)
      moss_c_open(cg, "if (t == %s || t < 0 || t >= %lld)", moss_c_lit_i64(MOSS_DT_I64, ii->i, lit, sizeof lit), (long long)C);
    else
      moss_c_open(cg, "if (t < 0 || t >= %lld)", (long long)C);
    if (none) moss_c_line(cg, "y0[nn * %lld + dd] = 0;", (long long)D);
    moss_c_line(cg, "continue;");
    moss_c_close(cg);
    moss_c_line(cg, "const double wt = %s;", w ? "(double)x2[t]" : "1.0");
    moss_c_line(cg, "const double l = -((double)xp[t * %lld]%s) * wt;", (long long)D, sce ? " - lse" : "");
    if (none) moss_c_line(cg, "y0[nn * %lld + dd] = (%s)l;", (long long)D, ct);
    else moss_c_line(cg, "num += l;");
    if (mean) moss_c_line(cg, "den += wt;");
    moss_c_close(cg);
    moss_c_close(cg);
  }
  if (!strcmp(red, "sum")) moss_c_line(cg, "y0[0] = (%s)num;", ct);
  else if (!none) moss_c_line(cg, "y0[0] = (%s)(num / den);", ct);
  return MOSS_OK;
}
