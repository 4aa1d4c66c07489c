/* verify.c - structural invariants of the IR, checked after every pass in
 * debug builds. A failure here is moss's bug, so it is reported as
 * internal, naming the pass-independent fact that broke. */
#include "ir.h"

moss_status moss_ir_verify(moss_ctx *ctx, moss_graph *g) {
  int i, j;
  for (i = 0; i < g->nvalues; i++)
    if (g->values[i]->id != i) return moss_fail(ctx, MOSS_E_INTERNAL, NULL, "value id mismatch");
  for (i = 0; i < g->nnodes; i++) {
    moss_node *n = g->nodes[i];
    if (n->dead) return moss_fail(ctx, MOSS_E_INTERNAL, n, "dead node left in the node list");
    for (j = 0; j < n->ninputs; j++) {
      moss_value *v = n->inputs[j];
      if (!v) continue;
      if (v->producer && (v->producer->dead || v->producer->id >= i))
        return moss_fail(ctx, MOSS_E_INTERNAL, n, "input '%s' is not produced before its use",
                         v->name);
    }
    for (j = 0; j < n->noutputs; j++) {
      moss_value *v = n->outputs[j];
      if (v && v->producer != n)
        return moss_fail(ctx, MOSS_E_INTERNAL, n, "output '%s' names another producer", v->name);
      if (v && v->data)
        return moss_fail(ctx, MOSS_E_INTERNAL, n, "output '%s' is also a constant", v->name);
    }
  }
  for (i = 0; i < g->noutputs; i++)
    if (!g->outputs[i]) return moss_fail(ctx, MOSS_E_INTERNAL, NULL, "graph output %d is NULL", i);
  return MOSS_OK;
}
