/* emit_variadic.c - C for Min/Max/Sum/Mean over any number of broadcast
 * inputs (a running accumulator, one broadcast loop per input) and for
 * Where(condition, x, y). */
#include <stdio.h>
#include <string.h>

#include "cgen.h"

moss_status moss_c_emit_variadic(moss_cgen *cg, const moss_node *n) {
  const moss_value *y = n->outputs[0];
  int rk[3], i;
  int64_t dims[3][MOSS_MAX_RANK];
  char stmt[512], lit[64];
  if (n->op == MOSS_OP_Where) {
    for (i = 0; i < 3; i++) {
      rk[i] = n->inputs[i]->rank;
      memcpy(dims[i], n->inputs[i]->dims, sizeof dims[i]);
    }
    moss_c_broadcast_loop(cg, y->rank, y->dims, 3, rk, (const int64_t(*)[MOSS_MAX_RANK])dims,
                          "y0[%o] = x0[%0] ? x1[%1] : x2[%2];");
    return MOSS_OK;
  }
  /* y = x0 broadcast; then y = y op xi for each further input. */
  for (i = 0; i < n->ninputs; i++) {
    const moss_value *x = n->inputs[i];
    char xi[16];
    rk[0] = y->rank;
    memcpy(dims[0], y->dims, sizeof dims[0]);
    rk[1] = x->rank;
    memcpy(dims[1], x->dims, sizeof dims[1]);
    snprintf(xi, sizeof xi, "x%d", i);
    if (i == 0) snprintf(stmt, sizeof stmt, "y0[%%o] = x0[%%1];");
    else if (n->op == MOSS_OP_Min)
      snprintf(stmt, sizeof stmt, "if (%s[%%1] < y0[%%o] || %s[%%1] != %s[%%1]) y0[%%o] = %s[%%1];", xi, xi, xi, xi);
    else if (n->op == MOSS_OP_Max)
      snprintf(stmt, sizeof stmt, "if (%s[%%1] > y0[%%o] || %s[%%1] != %s[%%1]) y0[%%o] = %s[%%1];", xi, xi, xi, xi);
    else snprintf(stmt, sizeof stmt, "y0[%%o] += %s[%%1];", xi);
    moss_c_broadcast_loop(cg, y->rank, y->dims, 2, rk, (const int64_t(*)[MOSS_MAX_RANK])dims, stmt);
  }
  if (n->op == MOSS_OP_Mean) {
    moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)moss_value_numel(y));
    moss_c_line(cg, "y0[i] /= %s;", moss_c_lit_f64(y->dtype, n->ninputs, lit, sizeof lit));
    moss_c_close(cg);
  }
  return MOSS_OK;
}
