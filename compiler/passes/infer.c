/* infer.c - shape and dtype inference, node by node in topological order,
 * folding constants as it goes (a Reshape's shape often comes out of
 * Shape -> Gather -> Concat). A node that cannot be compiled is reported
 * and inference continues past it, so every unsupported node is listed. */
#include "../ops/ops.h"
#include "passes.h"

moss_status moss_pass_infer(moss_ctx *ctx, moss_graph *g) {
  int i, j, failed = 0;
  moss_status first = MOSS_OK;
  unsigned char *poisoned = moss_alloc(ctx, (size_t)g->nvalues + 1);
  if (!poisoned) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "inference");
  for (i = 0; i < g->nnodes; i++) {
    moss_node *n = g->nodes[i];
    int skip = 0, folded;
    moss_status st;
    for (j = 0; j < n->ninputs; j++)
      if (n->inputs[j] && (n->inputs[j]->id >= g->nvalues || poisoned[n->inputs[j]->id])) skip = 1;
    if (!skip) {
      st = moss_infer_table[n->op](ctx, g, n);
      if (st == MOSS_OK) {
        for (j = 0; j < n->noutputs && st == MOSS_OK; j++) {
          moss_value *v = n->outputs[j];
          if (v && (!moss_value_shape_known(v) || v->dtype == MOSS_DT_UNDEF))
            st = moss_fail(ctx, MOSS_E_INTERNAL, n, "inference left output '%s' untyped", v->name);
        }
      }
      /* DequantizeLinear of a constant stays: the qdq pass needs the 8-bit
       * weight; the fold pass after it folds what stays float. */
      if (st == MOSS_OK && n->op != MOSS_OP_DequantizeLinear) st = moss_fold_node(ctx, g, n, &folded);
      if (st == MOSS_OK) continue;
      if (st == MOSS_E_NOMEM || st == MOSS_E_INTERNAL) {
        moss_free(ctx, poisoned, (size_t)g->nvalues + 1);
        return st;
      }
      failed++;
      if (first == MOSS_OK) first = st;
    }
    for (j = 0; j < n->noutputs; j++)
      if (n->outputs[j] && n->outputs[j]->id < g->nvalues) poisoned[n->outputs[j]->id] = 1;
  }
  moss_free(ctx, poisoned, (size_t)g->nvalues + 1);
  if (failed) return first;
  moss_graph_compact(g);
  return MOSS_OK;
}
