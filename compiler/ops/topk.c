/* topk.c - TopK: the k largest (or smallest) elements along an axis and
 * their int64 indices. k is an attribute before opset 10 and an input
 * after: a constant, or a run-time value that bounds the outputs by the
 * axis's length (ops/bounded.c). */
#include "ops.h"

/* k of |n| into *out_k: -1 when only the run knows it (a bounded output). */
static moss_status topk_k(moss_ctx *ctx, const moss_node *n, int64_t *out_k) {
  const moss_value *kv = moss_node_input(n, 1);
  *out_k = 0;
  if (!kv) {
    if (!moss_node_find_attr(n, "k"))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "k is missing");
    *out_k = moss_attr_int(n, "k", 0);
    return MOSS_OK;
  }
  if ((kv->dtype != MOSS_DT_I64 && kv->dtype != MOSS_DT_I32) || moss_value_numel(kv) != 1)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "k must hold one int64");
  *out_k = kv->data ? moss_value_get_i64(kv, 0) : -1;
  return MOSS_OK;
}

moss_status moss_infer_topk(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = n->inputs[0];
  int64_t k, dims[MOSS_MAX_RANK];
  int axis, i;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  if (!moss_arith_type(x->dtype))
    return moss_fail(ctx,
                     x->dtype == MOSS_DT_F16 || x->dtype == MOSS_DT_BF16 ? MOSS_E_UNSUPPORTED
                                                                         : MOSS_E_INVALID_MODEL,
                     n, "element type %s", moss_dtype_name(x->dtype));
  if (x->rank == 0) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input is a scalar");
  MOSS_TRY(moss_norm_axis(ctx, n, moss_attr_int(n, "axis", -1), x->rank, &axis));
  MOSS_TRY(topk_k(ctx, n, &k));
  if (k == -1 && !moss_node_input(n, 1)->data) {
    for (i = 0; i < x->rank; i++) dims[i] = x->dims[i];
    moss_set_output(n, 0, x->dtype, x->rank, dims);
    moss_set_output(n, 1, MOSS_DT_I64, x->rank, dims);
    MOSS_TRY(moss_bound_output(ctx, g, n, 0, axis));
    return moss_bound_output(ctx, g, n, 1, axis);
  }
  if (k < 0 || k > x->dims[axis])
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "k = %lld for an axis of %lld elements",
                     (long long)k, (long long)x->dims[axis]);
  for (i = 0; i < x->rank; i++) dims[i] = i == axis ? k : x->dims[i];
  moss_set_output(n, 0, x->dtype, x->rank, dims);
  moss_set_output(n, 1, MOSS_DT_I64, x->rank, dims);
  return MOSS_OK;
}

moss_status moss_eval_topk(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED;
}
