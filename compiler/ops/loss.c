/* loss.c - NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss over
 * [N, C, d1..dk] scores and [N, d1..dk] integer targets, with an optional
 * per-class weight, ignore_index and reduction none/sum/mean.
 * SoftmaxCrossEntropyLoss may also output the log-softmax of its input.
 * Not evaluated at compile time: losses never feed shape computations. */
#include <string.h>

#include "ops.h"

moss_status moss_infer_loss(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = n->inputs[0], *t = n->inputs[1], *w = moss_node_input(n, 2);
  const char *red = moss_attr_string(n, "reduction", "mean");
  int64_t dims[MOSS_MAX_RANK];
  int k;
  (void)g;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  MOSS_TRY(moss_need_input(ctx, n, 1));
  if (x->dtype != MOSS_DT_F32 && x->dtype != MOSS_DT_F64)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "input type %s (float32 and float64 only)",
                     moss_dtype_name(x->dtype));
  if (t->dtype != MOSS_DT_I32 && t->dtype != MOSS_DT_I64)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "target must be int32 or int64");
  if (x->rank < 2) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input must be [N, C, ...]");
  if (t->rank != x->rank - 1)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "target must have rank %d", x->rank - 1);
  for (k = 0; k < t->rank; k++)
    if (t->dims[k] != x->dims[k ? k + 1 : 0])
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "target shape does not match the input");
  if (w && (w->rank != 1 || w->dims[0] != x->dims[1] || w->dtype != x->dtype))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "weight must be a [C] tensor of the input type");
  if (!strcmp(red, "none")) moss_set_output(n, 0, x->dtype, t->rank, t->dims);
  else if (!strcmp(red, "sum") || !strcmp(red, "mean")) moss_set_output(n, 0, x->dtype, 0, dims);
  else return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "unknown reduction '%s'", red);
  if (n->op == MOSS_OP_SoftmaxCrossEntropyLoss) moss_set_output(n, 1, x->dtype, x->rank, x->dims);
  return MOSS_OK;
}

moss_status moss_eval_loss(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED;
}
