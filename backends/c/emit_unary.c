/* emit_unary.c - C for elementwise operators of one input: one flat loop
 * over the tensor with the operator's scalar expression, the float32 forms
 * using the f-suffixed <math.h> functions. */
#include <stdio.h>
#include <string.h>

#include "cgen.h"

/* Writes the C expression of |n| applied to the scalar `v` into |e|. */
static moss_status expr(moss_cgen *cg, const moss_node *n, char *e, size_t cap) {
  moss_dtype dt = n->inputs[0]->dtype;
  int f32 = dt == MOSS_DT_F32, isf = moss_dtype_is_float(dt);
  const char *F = f32 ? "f" : "";
  char a[64], b[64], c[64];
  float alpha, beta;
  switch (n->op) {
  case MOSS_OP_Abs:
    if (isf) snprintf(e, cap, "fabs%s(v)", F);
    else if (moss_dtype_is_signed(dt)) snprintf(e, cap, "v < 0 ? -v : v");
    else snprintf(e, cap, "v");
    break;
  case MOSS_OP_Neg: snprintf(e, cap, "-v"); break;
  case MOSS_OP_Reciprocal: snprintf(e, cap, "%s / v", moss_c_lit_f64(dt, 1.0, a, sizeof a)); break;
  case MOSS_OP_Sqrt: case MOSS_OP_Exp: case MOSS_OP_Log: case MOSS_OP_Erf: case MOSS_OP_Tanh:
  case MOSS_OP_Sin: case MOSS_OP_Cos: case MOSS_OP_Tan: case MOSS_OP_Asin: case MOSS_OP_Acos:
  case MOSS_OP_Atan: case MOSS_OP_Sinh: case MOSS_OP_Cosh: case MOSS_OP_Asinh: case MOSS_OP_Acosh:
  case MOSS_OP_Atanh: case MOSS_OP_Floor: case MOSS_OP_Ceil: {
    char fn[16];
    size_t k;
    snprintf(fn, sizeof fn, "%s", n->op_type);
    for (k = 0; fn[k]; k++) fn[k] = (char)(fn[k] >= 'A' && fn[k] <= 'Z' ? fn[k] - 'A' + 'a' : fn[k]);
    if (!isf) {
      if (n->op == MOSS_OP_Floor || n->op == MOSS_OP_Ceil) return snprintf(e, cap, "v"), MOSS_OK;
      return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "type %s", moss_dtype_name(dt));
    }
    snprintf(e, cap, "%s%s(v)", fn, F);
    break;
  }
  case MOSS_OP_Round:
    snprintf(e, cap, isf ? "rint%s(v)" : "v", F);
    break;
  case MOSS_OP_Sigmoid:
    snprintf(e, cap, "%s / (%s + exp%s(-v))", moss_c_lit_f64(dt, 1, a, 64), a, F);
    break;
  case MOSS_OP_Relu: snprintf(e, cap, "v > 0 ? v : 0"); break;
  case MOSS_OP_LeakyRelu:
    snprintf(e, cap, "v >= 0 ? v : %s * v",
             moss_c_lit_f64(dt, moss_attr_float(n, "alpha", 0.01f), a, 64));
    break;
  case MOSS_OP_Elu:
    snprintf(e, cap, "v >= 0 ? v : %s * (exp%s(v) - 1)",
             moss_c_lit_f64(dt, moss_attr_float(n, "alpha", 1.0f), a, 64), F);
    break;
  case MOSS_OP_Selu:
    alpha = moss_attr_float(n, "alpha", 1.67326319217681884765625f);
    beta = moss_attr_float(n, "gamma", 1.05070102214813232421875f);
    snprintf(e, cap, "%s * (v > 0 ? v : %s * exp%s(v) - %s)", moss_c_lit_f64(dt, beta, b, 64),
             moss_c_lit_f64(dt, alpha, a, 64), F, a);
    break;
  case MOSS_OP_Celu:
    alpha = moss_attr_float(n, "alpha", 1.0f);
    snprintf(e, cap, "(v > 0 ? v : 0) + (v < 0 ? %s * (exp%s(v / %s) - 1) : 0)",
             moss_c_lit_f64(dt, alpha, a, 64), F, a);
    break;
  case MOSS_OP_ThresholdedRelu:
    snprintf(e, cap, "v > %s ? v : 0", moss_c_lit_f64(dt, moss_attr_float(n, "alpha", 1.0f), a, 64));
    break;
  case MOSS_OP_HardSigmoid:
    snprintf(e, cap, "fmax%s(0, fmin%s(1, %s * v + %s))", F, F,
             moss_c_lit_f64(dt, moss_attr_float(n, "alpha", 0.2f), a, 64),
             moss_c_lit_f64(dt, moss_attr_float(n, "beta", 0.5f), b, 64));
    break;
  case MOSS_OP_HardSwish:
    snprintf(e, cap, "v * fmax%s(0, fmin%s(1, v * %s + %s))", F, F,
             moss_c_lit_f64(dt, 1.0 / 6.0, a, 64), moss_c_lit_f64(dt, 0.5, b, 64));
    break;
  case MOSS_OP_Softplus: snprintf(e, cap, "log%s(exp%s(v) + 1)", F, F); break;
  case MOSS_OP_Softsign: snprintf(e, cap, "v / (1 + fabs%s(v))", F); break;
  case MOSS_OP_Gelu:
    if (!strcmp(moss_attr_string(n, "approximate", "none"), "tanh"))
      snprintf(e, cap, "%s * v * (1 + tanh%s(%s * (v + %s * v * v * v)))",
               moss_c_lit_f64(dt, 0.5, a, 64), F, moss_c_lit_f64(dt, 0.7978845608028654, b, 64),
               moss_c_lit_f64(dt, 0.044715, c, 64));
    else
      snprintf(e, cap, "%s * v * (1 + erf%s(v * %s))", moss_c_lit_f64(dt, 0.5, a, 64), F,
               moss_c_lit_f64(dt, 0.70710678118654752440, b, 64));
    break;
  case MOSS_OP_Mish: snprintf(e, cap, "v * tanh%s(log1p%s(exp%s(v)))", F, F, F); break;
  case MOSS_OP_Shrink:
    alpha = moss_attr_float(n, "lambd", 0.5f);
    beta = moss_attr_float(n, "bias", 0.0f);
    if (isf)
      snprintf(e, cap, "v < -%s ? v + %s : (v > %s ? v - %s : 0)", moss_c_lit_f64(dt, alpha, a, 64),
               moss_c_lit_f64(dt, beta, b, 64), a, b);
    else
      snprintf(e, cap, "v < -%lld ? v + %lld : (v > %lld ? v - %lld : 0)", (long long)alpha,
               (long long)beta, (long long)alpha, (long long)beta);
    break;
  case MOSS_OP_Sign: snprintf(e, cap, "(v > 0) - (v < 0)"); break;
  case MOSS_OP_Not: snprintf(e, cap, "!v"); break;
  case MOSS_OP_IsNaN: snprintf(e, cap, "v != v"); break;
  case MOSS_OP_IsInf: {
    int pos = (int)moss_attr_int(n, "detect_positive", 1), neg = (int)moss_attr_int(n, "detect_negative", 1);
    snprintf(e, cap, "(%s)", pos && neg ? "isinf(v)" : pos ? "isinf(v) && v > 0" : neg ? "isinf(v) && v < 0" : "0");
    break;
  }
  case MOSS_OP_BitwiseNot: snprintf(e, cap, "~v"); break;
  case MOSS_OP_Clip: {
    moss_value *lo = moss_node_input(n, 1), *hi = moss_node_input(n, 2);
    int has_lo = lo != NULL, has_hi = hi != NULL;
    /* Before opset 11 the bounds are attributes. */
    if (!lo && moss_node_find_attr(n, "min")) {
      has_lo = 1;
      moss_c_lit_f64(dt, moss_attr_float(n, "min", 0), a, 64);
    } else if (lo) snprintf(a, 64, "x1[0]");
    if (!hi && moss_node_find_attr(n, "max")) {
      has_hi = 1;
      moss_c_lit_f64(dt, moss_attr_float(n, "max", 0), b, 64);
    } else if (hi) snprintf(b, 64, "x2[0]");
    if (has_lo && has_hi) snprintf(e, cap, "v < %s ? %s : (v > %s ? %s : v)", a, a, b, b);
    else if (has_lo) snprintf(e, cap, "v < %s ? %s : v", a, a);
    else if (has_hi) snprintf(e, cap, "v > %s ? %s : v", b, b);
    else snprintf(e, cap, "v");
    break;
  }
  default:
    return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "no C expression for this operator");
  }
  return MOSS_OK;
}

moss_status moss_c_emit_unary(moss_cgen *cg, const moss_node *n) {
  char e[1024];
  int64_t ne = moss_value_numel(n->outputs[0]);
  MOSS_TRY(expr(cg, n, e, sizeof e));
  moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)ne);
  moss_c_line(cg, "const %s v = x0[i];", moss_dtype_ctype(n->inputs[0]->dtype));
  moss_c_line(cg, "y0[i] = (%s)(%s);", moss_dtype_ctype(n->outputs[0]->dtype), e);
  moss_c_close(cg);
  return MOSS_OK;
}
