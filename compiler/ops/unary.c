/* unary.c - elementwise operators of one input (and Clip, whose bounds are
 * optional inputs): types and shapes pass through, Not/IsNaN/IsInf give
 * bool. Evaluation covers what constant folding meets in practice. */
#include <math.h>

#include "ops.h"

moss_status moss_infer_unary(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = n->inputs[0];
  moss_dtype dt;
  (void)g;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  dt = x->dtype;
  switch (n->op) {
  case MOSS_OP_Not:
    if (dt != MOSS_DT_BOOL) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "Not needs bool input");
    break;
  case MOSS_OP_IsNaN: case MOSS_OP_IsInf:
    if (!moss_dtype_is_float(dt))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "needs a floating-point input");
    dt = MOSS_DT_BOOL;
    break;
  case MOSS_OP_Abs: case MOSS_OP_Neg: case MOSS_OP_Relu: case MOSS_OP_Sign: case MOSS_OP_Clip:
  case MOSS_OP_Floor: case MOSS_OP_Ceil: case MOSS_OP_Round: case MOSS_OP_Reciprocal:
  case MOSS_OP_BitwiseNot:
    break;
  default:
    if (!moss_dtype_is_float(dt))
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "input type %s (floating point only)",
                       moss_dtype_name(dt));
    break;
  }
  if (n->op == MOSS_OP_Clip) {
    int i;
    for (i = 1; i < n->ninputs; i++) {
      moss_value *b = moss_node_input(n, i);
      if (b && moss_value_numel(b) != 1)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "Clip's bound '%s' is not a scalar", b->name);
      if (b && b->dtype != x->dtype)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "Clip's bound '%s' has another type", b->name);
    }
  }
  moss_set_output(n, 0, dt, x->rank, x->dims);
  return MOSS_OK;
}

moss_status moss_eval_unary(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = n->inputs[0], *y = n->outputs[0];
  int64_t i, ne = moss_value_numel(x);
  int isf = moss_dtype_is_float(x->dtype);
  (void)ctx;
  (void)g;
  if (!moss_dtype_ctype(x->dtype)) return MOSS_E_UNSUPPORTED;
  for (i = 0; i < ne; i++) {
    double v = moss_load_f64(x->dtype, x->data, i);
    int64_t iv = moss_load_i64(x->dtype, x->data, i);
    switch (n->op) {
    case MOSS_OP_Neg:
      if (isf) moss_store_f64(y->dtype, y->data, i, -v);
      else moss_store_i64(y->dtype, y->data, i, -iv);
      break;
    case MOSS_OP_Abs:
      if (isf) moss_store_f64(y->dtype, y->data, i, fabs(v));
      else moss_store_i64(y->dtype, y->data, i, iv < 0 ? -iv : iv);
      break;
    case MOSS_OP_Relu:
      if (isf) moss_store_f64(y->dtype, y->data, i, v > 0 ? v : 0);
      else moss_store_i64(y->dtype, y->data, i, iv > 0 ? iv : 0);
      break;
    case MOSS_OP_Not: moss_store_i64(y->dtype, y->data, i, !iv); break;
    case MOSS_OP_Sqrt: moss_store_f64(y->dtype, y->data, i, sqrt(v)); break;
    case MOSS_OP_Exp: moss_store_f64(y->dtype, y->data, i, exp(v)); break;
    case MOSS_OP_Log: moss_store_f64(y->dtype, y->data, i, log(v)); break;
    case MOSS_OP_Floor: if (!isf) return MOSS_E_UNSUPPORTED; moss_store_f64(y->dtype, y->data, i, floor(v)); break;
    case MOSS_OP_Ceil: if (!isf) return MOSS_E_UNSUPPORTED; moss_store_f64(y->dtype, y->data, i, ceil(v)); break;
    default: return MOSS_E_UNSUPPORTED;
    }
  }
  return MOSS_OK;
}
