/* fused.c - MossFused, moss's own elementwise chain (compiler/passes/fuse.c,
 * the chains pass): a node whose body holds the unary and binary nodes it
 * computes in one loop. Its shape is its last body node's, inferred again
 * through the body; it is made after constant folding and never folds. */
#include "ops.h"

moss_status moss_infer_fused(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  int i;
  const moss_node *last;
  if (n->nbody < 1 || !n->body || !n->outputs[0])
    return moss_fail(ctx, MOSS_E_INTERNAL, n, "malformed MossFused: no body");
  for (i = 0; i < n->nbody; i++) {
    moss_node *m = n->body[i];
    if (m->op <= MOSS_OP_UNKNOWN_ || m->op >= MOSS_OP_COUNT_ || m->noutputs != 1)
      return moss_fail(ctx, MOSS_E_INTERNAL, n, "malformed MossFused: body node %d", i);
    MOSS_TRY(moss_infer_table[m->op](ctx, g, m));
  }
  last = n->body[n->nbody - 1];
  if (last->outputs[0] != n->outputs[0])
    return moss_fail(ctx, MOSS_E_INTERNAL, n, "malformed MossFused: its output is not its body's");
  return MOSS_OK;
}

moss_status moss_eval_fused(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx, (void)g, (void)n;
  return MOSS_E_UNSUPPORTED;
}
