/* dce.c - dead-node removal: walks back from the graph outputs and drops
 * every node none of them depends on. */
#include "passes.h"

moss_status moss_pass_dce(moss_ctx *ctx, moss_graph *g) {
  int i, j;
  unsigned char *live = moss_alloc(ctx, (size_t)g->nvalues + 1);
  if (!live) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "dce");
  for (i = 0; i < g->noutputs; i++) live[g->outputs[i]->id] = 1;
  for (i = g->nnodes - 1; i >= 0; i--) {
    moss_node *n = g->nodes[i];
    int used = 0;
    for (j = 0; j < n->noutputs; j++)
      if (n->outputs[j] && live[n->outputs[j]->id]) used = 1;
    if (!used) {
      n->dead = 1;
      continue;
    }
    for (j = 0; j < n->ninputs; j++)
      if (n->inputs[j]) live[n->inputs[j]->id] = 1;
  }
  moss_free(ctx, live, (size_t)g->nvalues + 1);
  moss_graph_compact(g);
  return MOSS_OK;
}
