/* graph_build.h - small graphs built by hand for the unit tests of the
 * passes: a float32 value of a given shape, and a node of one or two
 * inputs and one output. */
#ifndef MOSS_TEST_GRAPH_BUILD_H
#define MOSS_TEST_GRAPH_BUILD_H

#include "ir/ir.h"

static inline moss_value *val(moss_ctx *ctx, moss_graph *g, const char *name, int rank,
                              const int64_t *dims) {
  moss_value *v = moss_graph_add_value(ctx, g, name);
  int k;
  v->dtype = MOSS_DT_F32;
  v->rank = rank;
  for (k = 0; k < rank; k++) v->dims[k] = dims[k];
  return v;
}

static inline moss_node *node2(moss_ctx *ctx, moss_graph *g, const char *op, const char *name,
                               moss_value *a, moss_value *b, moss_value *y) {
  moss_node *n = moss_graph_add_node(ctx, g, op, name, b ? 2 : 1, 1);
  n->inputs[0] = a;
  if (b) n->inputs[1] = b;
  n->outputs[0] = y;
  y->producer = n;
  return n;
}

#endif
