/* print.c - the readable text dump of the IR (--dump-ir, --dump-after). One
 * line per node: outputs = Op[attrs](inputs), with types and planned
 * arena offsets once the planner has run. */
#include <stdio.h>

#include "ir.h"

static void print_value(moss_buf *out, const moss_value *v) {
  char t[160];
  moss_buf_printf(out, "%%%s:%s", v->name, moss_value_type_str(v, t, sizeof t));
  if (v->data) moss_buf_printf(out, "=const");
  if (v->alias) moss_buf_printf(out, "@alias(%s)", v->alias->name);
  else if (v->offset >= 0) moss_buf_printf(out, "@%lld", (long long)v->offset);
}

static void print_attr(moss_buf *out, const moss_attr *a) {
  int i;
  moss_buf_printf(out, "%s=", a->name);
  switch (a->type) {
  case MOSS_ATTR_INT: moss_buf_printf(out, "%lld", (long long)a->i); break;
  case MOSS_ATTR_FLOAT: moss_buf_printf(out, "%g", a->f); break;
  case MOSS_ATTR_STRING: moss_buf_printf(out, "\"%s\"", a->s); break;
  case MOSS_ATTR_INTS:
    moss_buf_printf(out, "[");
    for (i = 0; i < a->n; i++) moss_buf_printf(out, "%s%lld", i ? "," : "", (long long)a->ints[i]);
    moss_buf_printf(out, "]");
    break;
  case MOSS_ATTR_FLOATS:
    moss_buf_printf(out, "[");
    for (i = 0; i < a->n; i++) moss_buf_printf(out, "%s%g", i ? "," : "", a->floats[i]);
    moss_buf_printf(out, "]");
    break;
  case MOSS_ATTR_TENSOR: moss_buf_printf(out, "<tensor>"); break;
  case MOSS_ATTR_GRAPH:
    moss_buf_printf(out, "<graph of %d nodes>", a->graph ? a->graph->nnodes : 0);
    break;
  default: moss_buf_printf(out, "<%d>", (int)a->type); break;
  }
}

static void print_node(moss_buf *out, const moss_node *n, const char *indent) {
  static const char *acts[] = {"", "relu", "clip", "leaky_relu", "sigmoid", "tanh"};
  int j;
  moss_buf_printf(out, "%s", indent);
  for (j = 0; j < n->noutputs; j++) {
    if (j) moss_buf_printf(out, ", ");
    if (n->outputs[j]) print_value(out, n->outputs[j]);
    else moss_buf_printf(out, "_");
  }
  moss_buf_printf(out, " = %s", n->op_type);
  if (n->nattrs || n->act.kind) {
    moss_buf_printf(out, "[");
    for (j = 0; j < n->nattrs; j++) {
      if (j) moss_buf_printf(out, " ");
      print_attr(out, &n->attrs[j]);
    }
    if (n->act.kind)
      moss_buf_printf(out, "%sfused=%s(%g,%g)", n->nattrs ? " " : "", acts[n->act.kind], n->act.alpha,
                      n->act.beta);
    moss_buf_printf(out, "]");
  }
  moss_buf_printf(out, "(");
  for (j = 0; j < n->ninputs; j++) {
    if (j) moss_buf_printf(out, ", ");
    if (n->inputs[j]) moss_buf_printf(out, "%%%s", n->inputs[j]->name);
    else moss_buf_printf(out, "_");
  }
  moss_buf_printf(out, ")  # '%s'\n", n->name);
}

void moss_ir_print(moss_graph *g, moss_buf *out) {
  int i, j;
  moss_buf_printf(out, "graph %s (opset %lld)\n", g->name, (long long)g->opset);
  for (i = 0; i < g->ninputs; i++) {
    moss_buf_printf(out, "  input  ");
    print_value(out, g->inputs[i]);
    moss_buf_printf(out, "\n");
  }
  for (i = 0; i < g->nnodes; i++) {
    const moss_node *n = g->nodes[i];
    print_node(out, n, "  ");
    /* A fused chain's nodes, one a line under it, marked '|'. */
    for (j = 0; j < n->nbody; j++) print_node(out, n->body[j], "    | ");
  }
  for (i = 0; i < g->noutputs; i++) {
    moss_buf_printf(out, "  output ");
    print_value(out, g->outputs[i]);
    moss_buf_printf(out, "\n");
  }
}
