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

/* The float32 activations, in the float32 arithmetic of the C backend's
 * expressions (backends/c/emit_unary.c), so that a folded constant or a
 * quantized lookup table (passes/qdq.c) equals what the code computes.
 * Returns 0 for the ops it does not cover. */
static int eval_f32(const moss_node *n, float v, float *out) {
  float a, b;
  switch (n->op) {
  case MOSS_OP_Sigmoid: *out = 1.0f / (1.0f + expf(-v)); return 1;
  case MOSS_OP_Tanh: *out = tanhf(v); return 1;
  case MOSS_OP_Erf: *out = erff(v); return 1;
  case MOSS_OP_LeakyRelu: a = moss_attr_float(n, "alpha", 0.01f); *out = v >= 0 ? v : a * v; return 1;
  case MOSS_OP_Elu: a = moss_attr_float(n, "alpha", 1.0f); *out = v >= 0 ? v : a * (expf(v) - 1); return 1;
  case MOSS_OP_Selu:
    a = moss_attr_float(n, "alpha", 1.67326319217681884765625f);
    b = moss_attr_float(n, "gamma", 1.05070102214813232421875f);
    *out = b * (v > 0 ? v : a * expf(v) - a);
    return 1;
  case MOSS_OP_Celu:
    a = moss_attr_float(n, "alpha", 1.0f);
    *out = (v > 0 ? v : 0) + (v < 0 ? a * (expf(v / a) - 1) : 0);
    return 1;
  case MOSS_OP_ThresholdedRelu: *out = v > moss_attr_float(n, "alpha", 1.0f) ? v : 0; return 1;
  case MOSS_OP_HardSigmoid:
    *out = fmaxf(0, fminf(1, moss_attr_float(n, "alpha", 0.2f) * v + moss_attr_float(n, "beta", 0.5f)));
    return 1;
  case MOSS_OP_HardSwish: *out = v * fmaxf(0, fminf(1, v * (float)(1.0 / 6.0) + 0.5f)); return 1;
  case MOSS_OP_Softplus: *out = logf(expf(v) + 1); return 1;
  case MOSS_OP_Softsign: *out = v / (1 + fabsf(v)); return 1;
  case MOSS_OP_Mish: *out = v * tanhf(log1pf(expf(v))); return 1;
  default: return 0;
  }
}

moss_status moss_eval_unary(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = n->inputs[0], *y = n->outputs[0];
  int64_t i, ne = moss_value_numel(x);
  int isf = moss_dtype_is_float(x->dtype);
  (void)ctx;
  (void)g;
  if (!moss_dtype_ctype(x->dtype)) return MOSS_E_UNSUPPORTED;
  if (x->dtype == MOSS_DT_F32 && y->dtype == MOSS_DT_F32) {
    float t;
    if (n->op == MOSS_OP_Clip) { /* bounds: constant inputs (opset 11+) or attributes */
      const moss_value *lo = moss_node_input(n, 1), *hi = moss_node_input(n, 2);
      float a = lo ? ((const float *)lo->data)[0] : moss_attr_float(n, "min", -INFINITY);
      float b = hi ? ((const float *)hi->data)[0] : moss_attr_float(n, "max", INFINITY);
      for (i = 0; i < ne; i++) {
        float v = ((const float *)x->data)[i];
        ((float *)y->data)[i] = v < a ? a : (v > b ? b : v);
      }
      return MOSS_OK;
    }
    if (ne > 0 && eval_f32(n, 0.0f, &t)) {
      for (i = 0; i < ne; i++) eval_f32(n, ((const float *)x->data)[i], (float *)y->data + i);
      return MOSS_OK;
    }
  }
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
