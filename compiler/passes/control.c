/* control.c - If becomes the branch that runs (docs/control-flow.md).
 * Inference (passes/infer.c) calls in here when it meets an If, whose
 * condition it has inferred, and folded where it could: computed from
 * constants, --constant inputs and shapes, it is known, and the branch it
 * picks takes the node's place, its nodes put right after the If in the
 * node list (inference visits them next, before the If's readers), its
 * outputs copied into the If's by Identity nodes (views: the planner
 * aliases them). The other branch is dropped. A condition known only at
 * run time puts both branches there, and a Where per output, flagged
 * "moss.if_output" so that its inference insists the two branches give
 * one type and shape, picks the output: both branches run, and the one
 * the condition names is kept. */
#include <stdio.h>
#include <string.h>

#include "../ops/ops.h"
#include "passes.h"

/* A node |op| named |n|'s name + |what|, made at the end of the list. */
static moss_node *make(moss_ctx *ctx, moss_graph *g, const moss_node *n, const char *op, const char *what, int k,
                       int nin, int nattrs) {
  char name[512];
  moss_node *m;
  snprintf(name, sizeof name, "%s/%s%d", n->name, what, k);
  m = moss_graph_add_node(ctx, g, op, name, nin, 1);
  if (!m) return NULL;
  m->opset = 17; /* Reshape with a shape input */
  if (nattrs && !(m->attrs = moss_graph_alloc(g, sizeof *m->attrs * (size_t)nattrs))) return NULL;
  return m;
}

moss_status moss_control_expand(moss_ctx *ctx, moss_graph *g, int at) {
  moss_node *n = g->nodes[at];
  const moss_subgraph *th = moss_if_branch(n, "then_branch"), *el = moss_if_branch(n, "else_branch");
  const moss_subgraph *run[2];
  moss_value *cond = n->inputs[0], *c0 = NULL;
  moss_node **list;
  int nrun, k, j, cnt = 0, before = g->nnodes, made;
  size_t cap;
  moss_status st;
  if (cond->data) {
    run[0] = moss_value_get_i64(cond, 0) ? th : el;
    nrun = 1;
  } else {
    run[0] = th;
    run[1] = el;
    nrun = 2;
  }
  cap = sizeof *list * (size_t)(th->nnodes + el->nnodes + n->noutputs + 2);
  if (!(list = moss_alloc(ctx, cap))) return moss_fail(ctx, MOSS_E_NOMEM, n, "If");
  for (j = 0; j < nrun; j++)
    for (k = 0; k < run[j]->nnodes; k++) list[cnt++] = run[j]->nodes[k];
  st = MOSS_OK;
  if (nrun == 2) { /* the condition as a scalar, so that Where keeps each output's shape */
    moss_node *r = make(ctx, g, n, "Reshape", "cond", 0, 2, 0);
    int64_t none = 0;
    moss_value *shape = moss_graph_add_constant(ctx, g, NULL, MOSS_DT_I64, 1, &none, NULL);
    char name[512];
    snprintf(name, sizeof name, "%s/cond", n->name);
    c0 = moss_graph_add_value(ctx, g, name);
    if (!r || !shape || !c0) st = MOSS_E_NOMEM;
    else {
      r->inputs[0] = cond;
      r->inputs[1] = shape;
      r->outputs[0] = c0;
      c0->producer = r;
    }
  }
  for (k = 0; k < n->noutputs && st == MOSS_OK; k++) {
    moss_value *y = n->outputs[k];
    moss_node *m;
    if (!y) continue;
    if (nrun == 1) {
      if (!(m = make(ctx, g, n, "Identity", "out", k, 1, 0))) st = MOSS_E_NOMEM;
      else m->inputs[0] = run[0]->outputs[k];
    } else {
      if (!(m = make(ctx, g, n, "Where", "select", k, 3, 1))) st = MOSS_E_NOMEM;
      else {
        m->inputs[0] = c0;
        m->inputs[1] = th->outputs[k];
        m->inputs[2] = el->outputs[k];
        m->nattrs = 1;
        m->attrs[0].name = "moss.if_output";
        m->attrs[0].type = MOSS_ATTR_INT;
        m->attrs[0].i = k;
      }
    }
    if (m) {
      m->outputs[0] = y;
      y->producer = m;
    }
  }
  if (st != MOSS_OK) {
    moss_free(ctx, list, cap);
    return moss_fail(ctx, MOSS_E_NOMEM, n, "If");
  }
  /* the nodes made here, taken from the end of the list, after the branches */
  made = g->nnodes - before;
  for (k = 0; k < made; k++) list[cnt++] = g->nodes[before + k];
  g->nnodes = before;
  n->dead = 1;
  st = moss_graph_insert_nodes(ctx, g, at + 1, list, cnt);
  moss_free(ctx, list, cap);
  return st;
}
