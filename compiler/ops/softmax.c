/* softmax.c - Softmax, LogSoftmax and Hardmax (before opset 13 over the
 * input flattened to 2-D at |axis|, default 1; from 13 along the single
 * axis |axis|, default -1) and CumSum (axis given by a constant input,
 * exclusive and reverse attributes). Shapes and types pass through. */
#include "ops.h"

moss_status moss_infer_softmax(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = n->inputs[0];
  moss_dtype dt;
  int axis;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  dt = x->dtype;
  if (dt == MOSS_DT_F16 || dt == MOSS_DT_BF16 || dt == MOSS_DT_STRING)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "element type %s", moss_dtype_name(dt));
  if (n->op == MOSS_OP_CumSum) {
    moss_value *a = moss_node_input(n, 1);
    int64_t av;
    switch (dt) {
    case MOSS_DT_F32:
    case MOSS_DT_F64:
    case MOSS_DT_I32:
    case MOSS_DT_I64:
    case MOSS_DT_U32:
    case MOSS_DT_U64:
    case MOSS_DT_I8:
    case MOSS_DT_I16:
    case MOSS_DT_U8:
    case MOSS_DT_U16: break;
    default: return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "element type %s", moss_dtype_name(dt));
    }
    MOSS_TRY(moss_need_input(ctx, n, 1));
    MOSS_TRY(moss_need_constant(ctx, n, 1, "axis"));
    if ((a->dtype != MOSS_DT_I32 && a->dtype != MOSS_DT_I64) || moss_value_numel(a) != 1 ||
        a->rank > 1)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "axis must be an int32/int64 scalar");
    av = moss_value_get_i64(a, 0);
    if (x->rank == 0) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "CumSum of a scalar");
    MOSS_TRY(moss_norm_axis(ctx, n, av, x->rank, &axis));
  } else {
    if (dt != MOSS_DT_F32 && dt != MOSS_DT_F64)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "element type %s (floating point only)",
                       moss_dtype_name(dt));
    if (x->rank == 0) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input is a scalar");
    MOSS_TRY(
        moss_norm_axis(ctx, n, moss_attr_int(n, "axis", g->opset < 13 ? 1 : -1), x->rank, &axis));
  }
  moss_set_output(n, 0, dt, x->rank, x->dims);
  return MOSS_OK;
}

moss_status moss_eval_softmax(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED;
}
