/* batch.c - whether a model whose only open dimension is the batch axis
 * may be compiled for batch 1 and run once per slice of axis 0
 * (moss_onnx_import_batch, docs/dynamic-shapes.md). That equals running
 * batch N only when no node mixes rows. The driver imports and infers the
 * model twice, at batch 1 (the graph it compiles) and at batch 2; this pass
 * compares the two, by value name, after inference (control flow and
 * recurrences expanded, Shape and friends folded). Two general rules:
 *
 *  - shapes: a value computed from the inputs has axis 0 equal to the batch
 *    (1, then 2) and the same other dimensions at both; every graph output
 *    is such a value. This refuses Concat, Flatten, Reshape to [-1],
 *    Transpose and reductions over axis 0, and a batch moved elsewhere.
 *    Such a node may read a constant that changed with the batch (a Shape
 *    folded) only as a shape: Reshape's, Expand's, Slice's starts and ends,
 *    whose output the first half of the rule then holds.
 *  - axes: an operator that keeps the shape but reads across an axis
 *    (Softmax, CumSum, Gather, Scatter, Slice backwards, GatherND, ...)
 *    must not name axis 0 of a value that carries the batch; nor is
 *    BatchNormalization in training mode (statistics over the batch).
 *
 * Each node that breaks a rule is reported; the message asks for
 * --input-shape, which compiles the model for one fixed batch. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "passes.h"

typedef struct checker {
  moss_ctx *ctx;
  const moss_graph *g1, *g2;
  unsigned char *carry; /* per value id of |g1|: computed from the inputs */
  char hint[512];       /* moss_batch_hint's */
  int errors;
} checker;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void refuse(checker *c, const moss_node *n, const char *fmt, ...) {
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  moss_fail(c->ctx, MOSS_E_INVALID_MODEL, n,
            "%s: the model is not batch-independent, so moss cannot run it over slices of "
            "axis 0; %s",
            why, c->hint);
  c->errors++;
}

static int carries(const checker *c, const moss_value *v) { return v && c->carry[v->id]; }

/* |v| at batch 2: the value of that name in |g2|, or NULL. */
static const moss_value *twin(const checker *c, const moss_value *v) {
  return moss_graph_find_value((moss_graph *)c->g2, v->name);
}

/* Axis 0 at batch 1 and 2, the other dimensions equal. */
static int batched_shape(const moss_value *a, const moss_value *b) {
  int k;
  if (!a || !b || a->rank < 1 || a->rank != b->rank || a->dims[0] != 1 || b->dims[0] != 2 ||
      a->bounded || b->bounded)
    return 0;
  for (k = 1; k < a->rank; k++)
    if (a->dims[k] != b->dims[k]) return 0;
  return 1;
}

/* A constant input the same at both batch sizes. */
static int same_constant(const checker *c, const moss_value *v) {
  const moss_value *w = twin(c, v);
  size_t nb = moss_value_nbytes(v);
  return w && w->data && w->dtype == v->dtype && moss_value_same_shape(v, w) &&
         moss_value_nbytes(w) == nb && !memcmp(v->data, w->data, nb);
}

static int reads_shape_at(const moss_node *n, int i) {
  if (!strcmp(n->op_type, "Reshape") || !strcmp(n->op_type, "Expand")) return i == 1;
  if (!strcmp(n->op_type, "Slice")) return i == 1 || i == 2;
  return 0;
}

static int in_list(const char *op, const char *const *list) {
  for (; *list; list++)
    if (!strcmp(op, *list)) return 1;
  return 0;
}

/* Whether |a| names axis 0 of a tensor of rank |rank|. */
static int axis0(int64_t a, int rank) { return a == 0 || (rank > 0 && a == -(int64_t)rank); }

/* The axis rule for |n|, whose input 0 (Concat: some input) carries the batch. */
static void check_axes(checker *c, const moss_node *n) {
  static const char *const axis_default0[] = {"Gather", "GatherElements", "ScatterElements",
                                              "Scatter", "Split", "ArgMax", "ArgMin",
                                              "SplitToSequence", "ReverseSequence", NULL};
  static const char *const axis_default_last[] = {"Softmax", "LogSoftmax", "Hardmax", "TopK",
                                                  "LpNormalization", "LayerNormalization", NULL};
  static const char *const axes_input1[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin",
                                            "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
                                            "ReduceLogSumExp", "ReduceSumSquare", "Squeeze",
                                            "Unsqueeze", NULL};
  const moss_value *x = moss_node_input(n, 0), *o = n->noutputs > 0 ? n->outputs[0] : NULL;
  const char *op = n->op_type;
  const char *axis_name = !strcmp(op, "ReverseSequence") ? "time_axis" : "axis";
  const moss_attr *a = moss_node_find_attr(n, axis_name);
  int rank = x ? x->rank : 0;
  int reduce = !strncmp(op, "Reduce", 6);
  const int64_t *axes = NULL;
  int naxes = 0, k;

  if (!strcmp(op, "Unsqueeze") || !strcmp(op, "Concat")) rank = o ? o->rank : rank;
  /* One axis, from the attribute or the operator's default. */
  if ((a && a->type == MOSS_ATTR_INT) || in_list(op, axis_default0) ||
      in_list(op, axis_default_last) || !strcmp(op, "CumSum") || !strcmp(op, "Compress")) {
    int64_t ax = a && a->type == MOSS_ATTR_INT ? a->i : in_list(op, axis_default0) ? 0 : -1;
    const moss_value *in1 = moss_node_input(n, 1);
    if (!a && (!strcmp(op, "Softmax") || !strcmp(op, "LogSoftmax") || !strcmp(op, "Hardmax")) &&
        n->opset < 13)
      ax = 1; /* before 13: the input as 2-D at |axis|; axis 0 would flatten the batch in */
    if (!strcmp(op, "CumSum")) ax = in1 && in1->data ? moss_value_get_i64(in1, 0) : 0;
    if (!strcmp(op, "Compress") && !a) ax = 0; /* no axis: the input flattened */
    if ((!strcmp(op, "QuantizeLinear") || !strcmp(op, "DequantizeLinear")) &&
        (!in1 || moss_value_numel(in1) <= 1))
      ax = 1; /* a per-tensor scale: the axis means nothing */
    if (axis0(ax, rank)) {
      refuse(c, n, "%s reads across axis 0 (axis %lld), the batch axis",
             !strcmp(op, "Compress") && !a ? "it flattens its input and" : "it", (long long)ax);
      return;
    }
  }
  /* A list of axes: the attribute, or input 1 (Reduce* since 18, Squeeze, Unsqueeze). */
  naxes = moss_attr_ints(n, "axes", &axes);
  if (!naxes && in_list(op, axes_input1)) {
    const moss_value *in1 = moss_node_input(n, 1);
    if (in1 && in1->data) {
      int64_t m = moss_value_numel(in1);
      for (k = 0; k < m; k++)
        if (axis0(moss_value_get_i64(in1, k), rank)) naxes = -1;
    } else if (reduce && !in1 && !moss_attr_int(n, "noop_with_empty_axes", 0)) {
      naxes = -1; /* no axes: all of them */
    }
  }
  if (!naxes && !strcmp(op, "MeanVarianceNormalization")) naxes = -1; /* default [0,2,3] */
  for (k = 0; k < naxes; k++)
    if (axis0(axes[k], rank)) naxes = -1;
  if (naxes < 0) {
    refuse(c, n, "it works along axis 0%s, the batch axis", reduce ? " (reduces it)" : "");
    return;
  }
  if (!strcmp(op, "Slice")) { /* a step other than 1 on axis 0 reorders the rows */
    const moss_value *ax = moss_node_input(n, 3), *st = moss_node_input(n, 4);
    int64_t m = st && st->data ? moss_value_numel(st) : 0;
    for (k = 0; k < m; k++)
      if (axis0(ax && ax->data ? moss_value_get_i64(ax, k) : k, rank) &&
          moss_value_get_i64(st, k) != 1)
        refuse(c, n, "it steps through axis 0, the batch axis, by %lld",
               (long long)moss_value_get_i64(st, k));
    return;
  }
  if (!strcmp(op, "BatchNormalization") && moss_attr_int(n, "training_mode", 0))
    refuse(c, n, "its statistics are taken over the batch (training_mode=%lld)",
           (long long)moss_attr_int(n, "training_mode", 0));
  else if ((!strcmp(op, "GatherND") || !strcmp(op, "ScatterND")) &&
           !moss_attr_int(n, "batch_dims", 0))
    refuse(c, n, "its indices address axis 0 of the data, the batch axis");
  else if ((!strcmp(op, "Trilu") || !strcmp(op, "EyeLike")) && rank == 2)
    refuse(c, n, "the row index along axis 0, the batch axis, decides the result");
}

void moss_batch_hint(const moss_graph *g, char *buf, size_t cap) {
  size_t len = (size_t)snprintf(buf, cap, "bind the batch with");
  int i, k;
  for (i = 0; i < g->ninputs && len < cap; i++) {
    const moss_value *x = g->inputs[i];
    len += (size_t)snprintf(buf + len, cap - len, " --input-shape %s=N", x->name);
    for (k = 1; k < x->rank && len < cap; k++)
      len += (size_t)snprintf(buf + len, cap - len, "x%lld", (long long)x->dims[k]);
  }
}

moss_status moss_pass_batch(moss_ctx *ctx, const moss_graph *g1, const moss_graph *g2) {
  checker c;
  int i, k, more;
  memset(&c, 0, sizeof c);
  c.ctx = ctx;
  c.g1 = g1;
  c.g2 = g2;
  if (g1->ninputs < 1 || g1->ninputs != g2->ninputs || g1->noutputs != g2->noutputs)
    return moss_fail(ctx, MOSS_E_INTERNAL, NULL, "batch: the two imports differ");
  moss_batch_hint(g1, c.hint, sizeof c.hint);
  c.carry = moss_alloc(ctx, (size_t)g1->nvalues + 1);
  if (!c.carry) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "batch check");
  for (i = 0; i < g1->ninputs; i++) c.carry[g1->inputs[i]->id] = 1;
  do { /* to a fixed point: expansions append nodes after their users */
    more = 0;
    for (i = 0; i < g1->nnodes; i++) {
      const moss_node *n = g1->nodes[i];
      int any = 0;
      if (n->dead) continue;
      for (k = 0; k < n->ninputs; k++) any |= carries(&c, n->inputs[k]);
      for (k = 0; any && k < n->noutputs; k++) {
        const moss_value *o = n->outputs[k];
        if (o && !o->data && !o->list && !c.carry[o->id]) c.carry[o->id] = 1, more = 1;
      }
    }
  } while (more);
  for (i = 0; i < g1->nnodes; i++) {
    const moss_node *n = g1->nodes[i];
    int any = 0, first = c.errors;
    if (n->dead) continue;
    for (k = 0; k < n->ninputs; k++) any |= carries(&c, n->inputs[k]);
    if (!any) continue;
    for (k = 0; k < n->noutputs && c.errors == first; k++) {
      const moss_value *o = n->outputs[k];
      char s1[96], s2[96];
      if (!o || !carries(&c, o) || batched_shape(o, twin(&c, o))) continue;
      moss_value_type_str(o, s1, sizeof s1);
      if (twin(&c, o)) moss_value_type_str(twin(&c, o), s2, sizeof s2);
      else snprintf(s2, sizeof s2, "?");
      refuse(&c, n, "its output '%s' is %s at batch 1, %s at batch 2 (axis 0 should follow "
             "the batch, the other axes stay)", o->name, s1, s2);
    }
    for (k = 0; k < n->ninputs && c.errors == first; k++) {
      const moss_value *v = n->inputs[k];
      if (v && v->data && !reads_shape_at(n, k) && !same_constant(&c, v))
        refuse(&c, n, "its input '%s' changes with the batch size (computed from a shape)",
               v->name);
    }
    if (c.errors == first && (carries(&c, moss_node_input(n, 0)) || !strcmp(n->op_type, "Concat")))
      check_axes(&c, n);
  }
  for (i = 0; !c.errors && i < g1->noutputs; i++) { /* a node's refusal says it already */
    const moss_value *o = g1->outputs[i];
    if (!carries(&c, o) || !batched_shape(o, g2->outputs[i]))
      refuse(&c, NULL, "graph output '%s' does not carry the batch on axis 0", o->name);
  }
  moss_free(ctx, c.carry, (size_t)g1->nvalues + 1);
  return c.errors ? MOSS_E_INVALID_MODEL : MOSS_OK;
}
