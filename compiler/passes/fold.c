/* fold.c - constant folding: a node whose inputs are all constant is run
 * at compile time by its family's evaluator and replaced by constants. */
#include "../ops/ops.h"
#include "passes.h"

/* Bigger results stay computed at run time rather than bloat the weights. */
#define FOLD_MAX_BYTES ((size_t)16 << 20)

moss_status moss_fold_node(moss_ctx *ctx, moss_graph *g, moss_node *n, int *out_folded) {
  int j;
  moss_status st;
  *out_folded = 0;
  if (n->dead) return MOSS_OK;
  for (j = 0; j < n->ninputs; j++)
    if (n->inputs[j] && !n->inputs[j]->data) return MOSS_OK;
  for (j = 0; j < n->noutputs; j++) {
    moss_value *v = n->outputs[j];
    size_t nb;
    if (!v) continue;
    if (v->output_index >= 0 && n->op != MOSS_OP_Constant) return MOSS_OK;
    if (!moss_dtype_ctype(v->dtype) || moss_value_nbytes_checked(v) < 0 ||
        (nb = moss_value_nbytes(v)) > FOLD_MAX_BYTES)
      return MOSS_OK; /* an unsized one is refused by inference and the planner */
    v->data = moss_graph_alloc(g, nb ? nb : 1);
    if (!v->data) return moss_fail(ctx, MOSS_E_NOMEM, n, "folding");
  }
  st = moss_eval_table[n->op](ctx, g, n);
  if (st != MOSS_OK) {
    for (j = 0; j < n->noutputs; j++)
      if (n->outputs[j]) n->outputs[j]->data = NULL;
    return st == MOSS_E_UNSUPPORTED ? MOSS_OK : st;
  }
  for (j = 0; j < n->noutputs; j++)
    if (n->outputs[j]) n->outputs[j]->producer = NULL;
  n->dead = 1;
  *out_folded = 1;
  return MOSS_OK;
}

moss_status moss_pass_fold(moss_ctx *ctx, moss_graph *g) {
  int i, folded;
  for (i = 0; i < g->nnodes; i++) MOSS_TRY(moss_fold_node(ctx, g, g->nodes[i], &folded));
  moss_graph_compact(g);
  return MOSS_OK;
}
