/* control.c - If: the condition (one bool), the two branches, each giving
 * as many outputs as the node has. The output types come from the branch
 * that runs, which inference puts in the node's place right after this
 * check (passes/control.c); nothing is set here. */
#include "ops.h"

/* The subgraph of GRAPH attribute |name| of |n|, or NULL. */
const moss_subgraph *moss_if_branch(const moss_node *n, const char *name) {
  const moss_attr *a = moss_node_find_attr(n, name);
  return a && a->type == MOSS_ATTR_GRAPH ? a->graph : NULL;
}

moss_status moss_infer_control(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  static const char *const names[2] = {"then_branch", "else_branch"};
  const moss_value *c;
  int k;
  (void)g;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  c = n->inputs[0];
  if (c->dtype != MOSS_DT_BOOL || moss_value_numel(c) != 1)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the condition '%s' must be one bool, not %lld of %s",
                     c->name, (long long)moss_value_numel(c), moss_dtype_name(c->dtype));
  for (k = 0; k < 2; k++) {
    const moss_subgraph *b = moss_if_branch(n, names[k]);
    if (!b) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "no %s graph", names[k]);
    if (b->noutputs != n->noutputs)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%s gives %d outputs; the node has %d", names[k],
                       b->noutputs, n->noutputs);
  }
  return MOSS_OK;
}

moss_status moss_eval_control(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED; /* replaced by a branch (passes/control.c) */
}
