/* check.c - the first pass: every node names an operator moss knows, in
 * the default ONNX domain, with a legal number of inputs and outputs. All
 * offending nodes are reported, so a user sees the whole list at once. */
#include <string.h>

#include "passes.h"

moss_status moss_pass_check(moss_ctx *ctx, moss_graph *g) {
  int i;
  moss_status first = MOSS_OK;
  for (i = 0; i < g->nnodes; i++) {
    moss_node *n = g->nodes[i];
    const moss_op_info *info = &moss_op_infos[n->op];
    int nin = n->ninputs, nout = n->noutputs;
    if (n->domain && *n->domain) {
      if (!first) first = MOSS_E_UNSUPPORTED;
      moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "operator domain '%s' is not supported", n->domain);
      continue;
    }
    if (n->op == MOSS_OP_UNKNOWN_ || !strcmp(info->family, "qfold")) { /* qfold: internal */
      if (!first) first = MOSS_E_UNSUPPORTED;
      moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "operator '%s' is not supported", n->op_type);
      continue;
    }
    while (nin > 0 && !n->inputs[nin - 1]) nin--;
    while (nout > 0 && !n->outputs[nout - 1]) nout--;
    if (nin < info->min_in || (info->max_in >= 0 && nin > info->max_in)) {
      if (!first) first = MOSS_E_INVALID_MODEL;
      moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "has %d inputs; %s takes %d to %d", nin, info->name,
                info->min_in, info->max_in);
    } else if (nout < 1 || (info->max_out >= 0 && nout > info->max_out)) {
      if (!first) first = MOSS_E_INVALID_MODEL;
      moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "has %d outputs; %s gives %d to %d", nout,
                info->name, info->min_out, info->max_out);
    }
    n->ninputs = nin;
  }
  return first;
}
