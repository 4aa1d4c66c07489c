/* norm.c - normalizations: BatchNormalization (inference, and the
 * training-mode form of opset 14+ with its running statistics),
 * LayerNormalization, InstanceNormalization, GroupNormalization,
 * MeanVarianceNormalization, LRN, LpNormalization. All keep the input's
 * shape; LayerNormalization's Mean/InvStdDev and BatchNormalization's
 * running statistics have their own. Floating point only. No constant
 * folding: normalizations never decide shapes. */
#include "ops.h"

/* Fails unless input |i| is a 1-D tensor of |len| elements of type |dt|. */
static moss_status need_vec(moss_ctx *ctx, const moss_node *n, int i, int64_t len, moss_dtype dt,
                            const char *what) {
  moss_value *v;
  MOSS_TRY(moss_need_input(ctx, n, i));
  v = n->inputs[i];
  if (moss_value_numel(v) != len || v->rank != 1)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%s must have shape [%lld]", what,
                     (long long)len);
  if (v->dtype != dt)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "%s has type %s, the input %s", what,
                     moss_dtype_name(v->dtype), moss_dtype_name(dt));
  return MOSS_OK;
}

static moss_status infer_batchnorm(moss_ctx *ctx, moss_graph *g, moss_node *n, moss_value *x) {
  int64_t c = x->dims[1];
  int i, training = 0;
  if (g->opset >= 14) training = (int)moss_attr_int(n, "training_mode", 0);
  else
    for (i = 1; i < n->noutputs; i++)
      if (n->outputs[i])
        return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                         "training-mode outputs before opset 14");
  if (g->opset < 9 && moss_attr_int(n, "spatial", 1) != 1)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "spatial=0");
  MOSS_TRY(need_vec(ctx, n, 1, c, x->dtype, "scale"));
  MOSS_TRY(need_vec(ctx, n, 2, c, x->dtype, "B"));
  MOSS_TRY(need_vec(ctx, n, 3, c, n->inputs[3] ? n->inputs[3]->dtype : x->dtype, "input_mean"));
  MOSS_TRY(need_vec(ctx, n, 4, c, n->inputs[3]->dtype, "input_var"));
  if (n->inputs[3]->dtype != MOSS_DT_F32 && n->inputs[3]->dtype != MOSS_DT_F64)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "mean type %s",
                     moss_dtype_name(n->inputs[3]->dtype));
  if (!training)
    for (i = 1; i < n->noutputs; i++)
      if (n->outputs[i])
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                         "running statistics are outputs only in training mode");
  moss_set_output(n, 0, x->dtype, x->rank, x->dims);
  moss_set_output(n, 1, n->inputs[3]->dtype, 1, &c);
  moss_set_output(n, 2, n->inputs[3]->dtype, 1, &c);
  return MOSS_OK;
}

/* Scale/B of LayerNormalization: one value, or one per normalized element. */
static moss_status infer_layernorm(moss_ctx *ctx, moss_node *n, moss_value *x) {
  int axis, k, i;
  int64_t inner = 1, dims[MOSS_MAX_RANK], stash = moss_attr_int(n, "stash_type", 1);
  moss_dtype ut = stash == 11 ? MOSS_DT_F64 : stash == 1 ? MOSS_DT_F32 : x->dtype;
  MOSS_TRY(moss_norm_axis(ctx, n, moss_attr_int(n, "axis", -1), x->rank, &axis));
  for (k = axis; k < x->rank; k++) inner *= x->dims[k];
  for (i = 1; i < 3; i++) {
    moss_value *v = moss_node_input(n, i);
    int64_t ne;
    if (!v) {
      if (i == 1) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "Scale is missing");
      continue;
    }
    ne = moss_value_numel(v);
    if (v->dtype != x->dtype)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "'%s' has another type", v->name);
    if (ne != 1 && ne != inner)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                       "'%s' has %lld elements; one or %lld (the normalized shape) supported",
                       v->name, (long long)ne, (long long)inner);
  }
  moss_set_output(n, 0, x->dtype, x->rank, x->dims);
  for (k = 0; k < x->rank; k++) dims[k] = k < axis ? x->dims[k] : 1;
  moss_set_output(n, 1, ut, x->rank, dims);
  moss_set_output(n, 2, ut, x->rank, dims);
  return MOSS_OK;
}

moss_status moss_infer_norm(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  x = n->inputs[0];
  if (x->dtype != MOSS_DT_F32 && x->dtype != MOSS_DT_F64)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "input type %s (float32 and float64 only)",
                     moss_dtype_name(x->dtype));
  switch (n->op) {
  case MOSS_OP_BatchNormalization:
    if (x->rank < 2) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input rank %d", x->rank);
    return infer_batchnorm(ctx, g, n, x);
  case MOSS_OP_LayerNormalization:
    return infer_layernorm(ctx, n, x);
  case MOSS_OP_InstanceNormalization:
    if (x->rank < 3) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input rank %d", x->rank);
    MOSS_TRY(need_vec(ctx, n, 1, x->dims[1], x->dtype, "scale"));
    MOSS_TRY(need_vec(ctx, n, 2, x->dims[1], x->dtype, "B"));
    break;
  case MOSS_OP_GroupNormalization: {
    int64_t G = moss_attr_int(n, "num_groups", 0), len;
    if (x->rank < 3) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input rank %d", x->rank);
    if (G < 1 || x->dims[1] % G)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "num_groups %lld does not divide %lld channels",
                       (long long)G, (long long)x->dims[1]);
    MOSS_TRY(moss_need_input(ctx, n, 1));
    /* Opset 18 scales per group, opset 21 per channel. */
    len = moss_value_numel(n->inputs[1]) == x->dims[1] ? x->dims[1] : G;
    MOSS_TRY(need_vec(ctx, n, 1, len, x->dtype, "scale"));
    MOSS_TRY(need_vec(ctx, n, 2, len, x->dtype, "bias"));
    break;
  }
  case MOSS_OP_MeanVarianceNormalization: {
    const int64_t *axes;
    int na = moss_attr_ints(n, "axes", &axes), k, a;
    for (k = 0; axes && k < na; k++) MOSS_TRY(moss_norm_axis(ctx, n, axes[k], x->rank, &a));
    if (!axes && x->rank < 4)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "default axes [0, 2, 3] need rank 4");
    break;
  }
  case MOSS_OP_LRN:
    if (x->rank < 2) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input rank %d", x->rank);
    if (moss_attr_int(n, "size", 0) < 1)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "size must be positive");
    break;
  case MOSS_OP_LpNormalization: {
    int a;
    int64_t p = moss_attr_int(n, "p", 2);
    MOSS_TRY(moss_norm_axis(ctx, n, moss_attr_int(n, "axis", -1), x->rank, &a));
    if (p != 1 && p != 2) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "p must be 1 or 2");
    break;
  }
  default: return moss_fail(ctx, MOSS_E_INTERNAL, n, "not a normalization");
  }
  moss_set_output(n, 0, x->dtype, x->rank, x->dims);
  return MOSS_OK;
}

moss_status moss_eval_norm(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED;
}
