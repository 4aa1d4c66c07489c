/* lower_unary.c - elementwise operators of one input: one parallel loop
 * over the flat tensor storing the operator's scalar expression of the
 * element (the float ones through the math intrinsics). */
#include <string.h>

#include "lower.h"

static moss_kx *flt(moss_kb *b, moss_dtype dt, double v) { return moss_k_flt(b, dt, v); }
static moss_kx *bin(moss_kb *b, moss_kx_op op, moss_kx *x, moss_kx *y) { return moss_k_bin(b, op, x, y); }
static moss_kx *call(moss_kb *b, moss_kfn fn, moss_kx *x) { return moss_k_call(b, fn, x, NULL, NULL); }
static moss_kx *sel(moss_kb *b, moss_kx *c, moss_kx *x, moss_kx *y) { return moss_k_select(b, c, x, y); }

/* fmax(0, fmin(1, v)) */
static moss_kx *unit_clamp(moss_kb *b, moss_dtype dt, moss_kx *v) {
  return moss_k_call(b, MOSS_KFN_FMAX, flt(b, dt, 0), moss_k_call(b, MOSS_KFN_FMIN, flt(b, dt, 1), v, NULL),
                     NULL);
}

/* The float intrinsic of the operators named like their C function. */
static int math_fn(moss_op op, moss_kfn *out_fn) {
  static const struct {
    moss_op op;
    moss_kfn fn;
  } map[] = {{MOSS_OP_Sqrt, MOSS_KFN_SQRT}, {MOSS_OP_Exp, MOSS_KFN_EXP},     {MOSS_OP_Log, MOSS_KFN_LOG},
             {MOSS_OP_Erf, MOSS_KFN_ERF},   {MOSS_OP_Tanh, MOSS_KFN_TANH},   {MOSS_OP_Sin, MOSS_KFN_SIN},
             {MOSS_OP_Cos, MOSS_KFN_COS},   {MOSS_OP_Tan, MOSS_KFN_TAN},     {MOSS_OP_Asin, MOSS_KFN_ASIN},
             {MOSS_OP_Acos, MOSS_KFN_ACOS}, {MOSS_OP_Atan, MOSS_KFN_ATAN},   {MOSS_OP_Sinh, MOSS_KFN_SINH},
             {MOSS_OP_Cosh, MOSS_KFN_COSH}, {MOSS_OP_Asinh, MOSS_KFN_ASINH}, {MOSS_OP_Acosh, MOSS_KFN_ACOSH},
             {MOSS_OP_Atanh, MOSS_KFN_ATANH}, {MOSS_OP_Floor, MOSS_KFN_FLOOR}, {MOSS_OP_Ceil, MOSS_KFN_CEIL}};
  size_t i;
  for (i = 0; i < sizeof map / sizeof map[0]; i++)
    if (map[i].op == op) return *out_fn = map[i].fn, 1;
  return 0;
}

moss_status moss_lower_unary_expr(moss_kb *b, const moss_node *n, moss_kx *const *in, moss_kx **out) {
  moss_dtype dt = n->inputs[0]->dtype;
  moss_kx *v = in[0];
  int isf = moss_dtype_is_float(dt);
  moss_kfn fn;
  double alpha, beta;
  *out = v;
  if (math_fn(n->op, &fn)) {
    if (!isf) {
      if (n->op == MOSS_OP_Floor || n->op == MOSS_OP_Ceil) return MOSS_OK;
      return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "type %s", moss_dtype_name(dt));
    }
    *out = call(b, fn, v);
    return MOSS_OK;
  }
  switch (n->op) {
  case MOSS_OP_Abs:
    if (isf) *out = call(b, MOSS_KFN_FABS, v);
    else if (moss_dtype_is_signed(dt))
      *out = sel(b, bin(b, MOSS_KX_LT, v, moss_k_int(b, dt, 0)), moss_k_un(b, MOSS_KX_NEG, v), v);
    return MOSS_OK;
  case MOSS_OP_Neg: *out = moss_k_un(b, MOSS_KX_NEG, v); return MOSS_OK;
  case MOSS_OP_Reciprocal:
    *out = bin(b, MOSS_KX_DIV, isf ? flt(b, dt, 1) : moss_k_int(b, dt, 1), v);
    return MOSS_OK;
  case MOSS_OP_Round:
    if (isf) *out = call(b, MOSS_KFN_RINT, v);
    return MOSS_OK;
  case MOSS_OP_Relu:
    *out = bin(b, MOSS_KX_MAX, v, isf ? flt(b, dt, 0) : moss_k_int(b, dt, 0));
    return MOSS_OK;
  case MOSS_OP_Not: *out = moss_k_un(b, MOSS_KX_NOT, v); return MOSS_OK;
  case MOSS_OP_IsNaN:
    *out = isf ? call(b, MOSS_KFN_ISNAN, v) : moss_k_int(b, MOSS_DT_BOOL, 0);
    return MOSS_OK;
  case MOSS_OP_IsInf: {
    int pos = (int)moss_attr_int(n, "detect_positive", 1), neg = (int)moss_attr_int(n, "detect_negative", 1);
    moss_kx *inf = isf ? call(b, MOSS_KFN_ISINF, v) : moss_k_int(b, MOSS_DT_BOOL, 0);
    if (!isf || (pos && neg)) *out = inf;
    else if (pos) *out = bin(b, MOSS_KX_LAND, inf, bin(b, MOSS_KX_GT, v, flt(b, dt, 0)));
    else if (neg) *out = bin(b, MOSS_KX_LAND, inf, bin(b, MOSS_KX_LT, v, flt(b, dt, 0)));
    else *out = moss_k_int(b, MOSS_DT_BOOL, 0);
    return MOSS_OK;
  }
  case MOSS_OP_BitwiseNot: *out = moss_k_un(b, MOSS_KX_BNOT, v); return MOSS_OK;
  case MOSS_OP_Sign: /* (v > 0) - (v < 0), in the element type */
    *out = bin(b, MOSS_KX_SUB,
               moss_k_cast(b, dt, bin(b, MOSS_KX_GT, v, isf ? flt(b, dt, 0) : moss_k_int(b, dt, 0))),
               moss_k_cast(b, dt, bin(b, MOSS_KX_LT, v, isf ? flt(b, dt, 0) : moss_k_int(b, dt, 0))));
    return MOSS_OK;
  case MOSS_OP_Clip: {
    moss_kx *a = in[1], *c = in[2];
    /* Before opset 11 the bounds are attributes. */
    if (!a && moss_node_find_attr(n, "min")) a = flt(b, dt, moss_attr_float(n, "min", 0));
    if (!c && moss_node_find_attr(n, "max")) c = flt(b, dt, moss_attr_float(n, "max", 0));
    if (c) *out = sel(b, bin(b, MOSS_KX_GT, v, c), c, v);
    if (a) *out = sel(b, bin(b, MOSS_KX_LT, v, a), a, *out);
    return MOSS_OK;
  }
  case MOSS_OP_Shrink: {
    moss_kx *l, *bs, *zero;
    alpha = moss_attr_float(n, "lambd", 0.5f);
    beta = moss_attr_float(n, "bias", 0.0f);
    l = isf ? flt(b, dt, alpha) : moss_k_int(b, dt, (int64_t)alpha);
    bs = isf ? flt(b, dt, beta) : moss_k_int(b, dt, (int64_t)beta);
    zero = isf ? flt(b, dt, 0) : moss_k_int(b, dt, 0);
    *out = sel(b, bin(b, MOSS_KX_LT, v, moss_k_un(b, MOSS_KX_NEG, l)), bin(b, MOSS_KX_ADD, v, bs),
               sel(b, bin(b, MOSS_KX_GT, v, l), bin(b, MOSS_KX_SUB, v, bs), zero));
    return MOSS_OK;
  }
  default: break;
  }
  if (!isf) return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "type %s", moss_dtype_name(dt));
  switch (n->op) {
  case MOSS_OP_Sigmoid:
    *out = bin(b, MOSS_KX_DIV, flt(b, dt, 1),
               bin(b, MOSS_KX_ADD, flt(b, dt, 1), call(b, MOSS_KFN_EXP, moss_k_un(b, MOSS_KX_NEG, v))));
    break;
  case MOSS_OP_LeakyRelu:
    *out = sel(b, bin(b, MOSS_KX_GE, v, flt(b, dt, 0)), v,
               bin(b, MOSS_KX_MUL, flt(b, dt, moss_attr_float(n, "alpha", 0.01f)), v));
    break;
  case MOSS_OP_Elu:
    *out = sel(b, bin(b, MOSS_KX_GE, v, flt(b, dt, 0)), v,
               bin(b, MOSS_KX_MUL, flt(b, dt, moss_attr_float(n, "alpha", 1.0f)),
                   bin(b, MOSS_KX_SUB, call(b, MOSS_KFN_EXP, v), flt(b, dt, 1))));
    break;
  case MOSS_OP_Selu: {
    moss_kx *a = flt(b, dt, moss_attr_float(n, "alpha", 1.67326319217681884765625f));
    moss_kx *g = flt(b, dt, moss_attr_float(n, "gamma", 1.05070102214813232421875f));
    *out = bin(b, MOSS_KX_MUL, g,
               sel(b, bin(b, MOSS_KX_GT, v, flt(b, dt, 0)), v,
                   bin(b, MOSS_KX_SUB, bin(b, MOSS_KX_MUL, a, call(b, MOSS_KFN_EXP, v)), a)));
    break;
  }
  case MOSS_OP_Celu: {
    moss_kx *a = flt(b, dt, moss_attr_float(n, "alpha", 1.0f)), *zero = flt(b, dt, 0);
    *out = bin(b, MOSS_KX_ADD, sel(b, bin(b, MOSS_KX_GT, v, zero), v, zero),
               sel(b, bin(b, MOSS_KX_LT, v, zero),
                   bin(b, MOSS_KX_MUL, a,
                       bin(b, MOSS_KX_SUB, call(b, MOSS_KFN_EXP, bin(b, MOSS_KX_DIV, v, a)), flt(b, dt, 1))),
                   zero));
    break;
  }
  case MOSS_OP_ThresholdedRelu:
    *out = sel(b, bin(b, MOSS_KX_GT, v, flt(b, dt, moss_attr_float(n, "alpha", 1.0f))), v, flt(b, dt, 0));
    break;
  case MOSS_OP_HardSigmoid:
    *out = unit_clamp(b, dt,
                      bin(b, MOSS_KX_ADD,
                          bin(b, MOSS_KX_MUL, flt(b, dt, moss_attr_float(n, "alpha", 0.2f)), v),
                          flt(b, dt, moss_attr_float(n, "beta", 0.5f))));
    break;
  case MOSS_OP_HardSwish:
    *out = bin(b, MOSS_KX_MUL, v,
               unit_clamp(b, dt,
                          bin(b, MOSS_KX_ADD, bin(b, MOSS_KX_MUL, v, flt(b, dt, 1.0 / 6.0)), flt(b, dt, 0.5))));
    break;
  case MOSS_OP_Softplus:
    *out = call(b, MOSS_KFN_LOG, bin(b, MOSS_KX_ADD, call(b, MOSS_KFN_EXP, v), flt(b, dt, 1)));
    break;
  case MOSS_OP_Softsign:
    *out = bin(b, MOSS_KX_DIV, v, bin(b, MOSS_KX_ADD, flt(b, dt, 1), call(b, MOSS_KFN_FABS, v)));
    break;
  case MOSS_OP_Gelu: {
    moss_kx *half_v = bin(b, MOSS_KX_MUL, flt(b, dt, 0.5), v), *t;
    if (!strcmp(moss_attr_string(n, "approximate", "none"), "tanh")) {
      moss_kx *cube = bin(b, MOSS_KX_MUL, bin(b, MOSS_KX_MUL, bin(b, MOSS_KX_MUL, flt(b, dt, 0.044715), v), v), v);
      t = call(b, MOSS_KFN_TANH,
               bin(b, MOSS_KX_MUL, flt(b, dt, 0.7978845608028654), bin(b, MOSS_KX_ADD, v, cube)));
    } else {
      t = call(b, MOSS_KFN_ERF, bin(b, MOSS_KX_MUL, v, flt(b, dt, 0.70710678118654752440)));
    }
    *out = bin(b, MOSS_KX_MUL, half_v, bin(b, MOSS_KX_ADD, flt(b, dt, 1), t));
    break;
  }
  case MOSS_OP_Mish:
    *out = bin(b, MOSS_KX_MUL, v, call(b, MOSS_KFN_TANH, call(b, MOSS_KFN_LOG1P, call(b, MOSS_KFN_EXP, v))));
    break;
  default:
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "no kernel description for this operator");
  }
  return MOSS_OK;
}

moss_status moss_lower_unary(moss_kb *b, const moss_node *n) {
  int x = moss_k_input(b, 0), y = moss_k_output(b, 0), k;
  moss_kx *i, *e = NULL, *in[3] = {NULL, NULL, NULL};
  i = moss_k_range(b, "i", moss_value_numel(n->outputs[0]), MOSS_KL_PARALLEL);
  in[0] = moss_k_load(b, x, i);
  for (k = 1; k < 3; k++) /* Clip's bounds, one element each */
    if (moss_node_input(n, k)) in[k] = moss_k_load(b, moss_k_input(b, k), moss_k_idx(b, 0));
  MOSS_TRY(moss_lower_unary_expr(b, n, in, &e));
  moss_k_store(b, y, i, moss_k_cast(b, n->outputs[0]->dtype, e));
  moss_k_end(b);
  return b->st;
}
