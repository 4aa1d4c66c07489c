/* optimizer.c - ONNX's training optimizers, the operators Adagrad, Adam and
 * Momentum of the domain ai.onnx.preview.training, version 1 (the only
 * operators moss takes outside the default domain: passes/check.c). Each
 * node is one step of its update rule over several tensors at once.
 * Inputs: the learning rate R and the update count T (one element each),
 * then, for m optimized tensors, the m tensors X, the m gradients G and
 * the m tensors of each accumulator (Adagrad: H; Momentum: V; Adam: V, then
 * H); outputs: the m new X, then the m new tensors of each accumulator in
 * the same order (an output may be left out). Every tensor of a group has
 * its X's shape and all of them one float type; the update is elementwise
 * (kernel/lower_optimizer.c). Nothing is folded at compile time: R and T
 * change with every step. */
#include <stdio.h>
#include <string.h>

#include "ops.h"

/* The accumulators per optimized tensor: Adam keeps two (V and H). */
static int accumulators(const moss_node *n) { return n->op == MOSS_OP_Adam ? 2 : 1; }

static const char *group_names(const moss_node *n) {
  switch (n->op) {
  case MOSS_OP_Adagrad: return "X, G, H";
  case MOSS_OP_Adam: return "X, G, V, H";
  default: return "X, G, V";
  }
}

/* Momentum has no defaults: ONNX requires each of its attributes. */
static moss_status momentum_attrs(moss_ctx *ctx, const moss_node *n) {
  static const char *const need[] = {"alpha", "beta", "mode", "norm_coefficient"};
  const char *mode;
  size_t k;
  for (k = 0; k < sizeof need / sizeof need[0]; k++)
    if (!moss_node_find_attr(n, need[k]))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                       "attribute '%s' is missing; Momentum requires it", need[k]);
  mode = moss_attr_string(n, "mode", "");
  if (strcmp(mode, "standard") && strcmp(mode, "nesterov"))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "mode '%s'; Momentum takes 'standard' or 'nesterov'", mode);
  return MOSS_OK;
}

/* R (T1: float or double) and T (T2: int64), one element each. */
static moss_status check_scalars(moss_ctx *ctx, const moss_node *n) {
  const moss_value *r = n->inputs[0], *t = n->inputs[1];
  if ((r->dtype != MOSS_DT_F32 && r->dtype != MOSS_DT_F64) || moss_value_numel(r) != 1)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "the learning rate R is %s with %lld element%s; %s takes one float or double",
                     moss_dtype_name(r->dtype), (long long)moss_value_numel(r),
                     moss_value_numel(r) == 1 ? "" : "s", n->op_type);
  if (t->dtype != MOSS_DT_I64 || moss_value_numel(t) != 1)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "the update count T is %s with %lld element%s; %s takes one int64",
                     moss_dtype_name(t->dtype), (long long)moss_value_numel(t),
                     moss_value_numel(t) == 1 ? "" : "s", n->op_type);
  return MOSS_OK;
}

/* |v|'s shape as "[2, 3]" in |buf| (|cap| at least 32). */
static const char *shape_text(const moss_value *v, char *buf, size_t cap) {
  size_t len = 1;
  int k;
  buf[0] = '[';
  buf[1] = 0;
  for (k = 0; k < v->rank && len + 28 < cap; k++)
    len += (size_t)snprintf(buf + len, cap - len, "%s%lld", k ? ", " : "", (long long)v->dims[k]);
  snprintf(buf + len, cap - len, "%s]", k < v->rank ? ", ..." : "");
  return buf;
}


moss_status moss_infer_optimizer(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  int acc = accumulators(n), per = 2 + acc, m, nout = n->noutputs, j, a, k;
  moss_dtype dt;
  (void)g;
  if (n->ninputs < 2 + per || (n->ninputs - 2) % per)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "has %d inputs; %s takes R, T and %d per optimized tensor (%s), grouped "
                     "by kind",
                     n->ninputs, n->op_type, per, group_names(n));
  m = (n->ninputs - 2) / per;
  while (nout > 0 && !n->outputs[nout - 1]) nout--;
  if (nout > m * (1 + acc))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "has %d outputs; %s gives %d for %d optimized tensor%s (the new X, then "
                     "the new accumulators)",
                     nout, n->op_type, m * (1 + acc), m, m == 1 ? "" : "s");
  for (k = 0; k < n->ninputs; k++) MOSS_TRY(moss_need_input(ctx, n, k));
  MOSS_TRY(check_scalars(ctx, n));
  if (n->op == MOSS_OP_Momentum) MOSS_TRY(momentum_attrs(ctx, n));
  dt = n->inputs[2]->dtype;
  if (dt != MOSS_DT_F32 && dt != MOSS_DT_F64)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "X is %s; %s optimizes float and double tensors", moss_dtype_name(dt),
                     n->op_type);
  for (j = 0; j < m; j++) {
    const moss_value *x = n->inputs[2 + j];
    for (a = 0; a <= acc; a++) { /* G, then each accumulator */
      const moss_value *v = n->inputs[2 + (1 + a) * m + j];
      if (v->dtype != dt)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                         "input '%s' is %s and input '%s' %s; %s takes one float type for all "
                         "optimized tensors",
                         v->name, moss_dtype_name(v->dtype), n->inputs[2]->name,
                         moss_dtype_name(dt), n->op_type);
      if (!moss_value_same_shape(v, x)) {
        char vs[160], xs[160];
        return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                         "input '%s' has shape %s, the tensor '%s' it goes with %s; moss takes "
                         "each gradient and accumulator in its tensor's shape",
                         v->name, shape_text(v, vs, sizeof vs), x->name,
                         shape_text(x, xs, sizeof xs));
      }
    }
    if (x->dtype != dt)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                       "input '%s' is %s and input '%s' %s; %s takes one float type for all "
                       "optimized tensors",
                       x->name, moss_dtype_name(x->dtype), n->inputs[2]->name,
                       moss_dtype_name(dt), n->op_type);
  }
  for (k = 0; k < nout; k++) {
    const moss_value *x = n->inputs[2 + k % m];
    moss_set_output(n, k, dt, x->rank, x->dims);
  }
  return MOSS_OK;
}

moss_status moss_eval_optimizer(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED;
}
