/* lower_loss.c - NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss:
 * one pass over the N x d1..dk positions (parallel for reduction 'none',
 * accumulating otherwise); at each, SoftmaxCrossEntropyLoss takes the
 * log-sum-exp over the C classes (stride D = d1*..*dk) and may store the
 * log-probabilities, then the target class's term is weighted and stored
 * or accumulated in double. Targets equal to ignore_index, or outside
 * [0, C), contribute nothing. */
#include <string.h>

#include "lower.h"

static moss_kx *f64(moss_kb *b, double v) { return moss_k_flt(b, MOSS_DT_F64, v); }
static moss_kx *dbl(moss_kb *b, moss_kx *v) { return moss_k_cast(b, MOSS_DT_F64, v); }
static moss_kx *bin(moss_kb *b, moss_kx_op op, moss_kx *x, moss_kx *y) {
  return moss_k_bin(b, op, x, y);
}

/* x0's class |c| at the position whose class 0 is |base|, in double. */
static moss_kx *cls(moss_kb *b, int x0, moss_kx *base, moss_kx *c, int64_t D) {
  return dbl(b, moss_k_load(b, x0, moss_k_add(b, base, moss_k_mulc(b, c, D))));
}

/* The log-sum-exp over the |C| classes at |base|: m + log(sum exp(x - m)),
 * m the largest; stores the log-probabilities x - lse into output 1 when
 * |lp| (that output) is non-NULL. */
static moss_kx *log_sum_exp(moss_kb *b, int x0, moss_kx *base, int64_t C, int64_t D,
                            const moss_value *lp) {
  moss_kx *m = moss_k_let(b, "m", cls(b, x0, base, moss_k_idx(b, 0), D));
  moss_kx *s = moss_k_let(b, "s", f64(b, 0)), *c, *e, *lse;
  c = moss_k_for(b, "c", moss_k_idx(b, 1), moss_k_idx(b, C), 1, MOSS_KL_REDUCE, 0);
  moss_k_set(b, m, bin(b, MOSS_KX_MAX, cls(b, x0, base, c, D), m));
  moss_k_end(b);
  c = moss_k_range(b, "c", C, MOSS_KL_REDUCE);
  e = moss_k_call(b, MOSS_KFN_EXP, bin(b, MOSS_KX_SUB, cls(b, x0, base, c, D), m), NULL, NULL);
  moss_k_set(b, s, bin(b, MOSS_KX_ADD, s, e));
  moss_k_end(b);
  lse = moss_k_let(b, "lse", bin(b, MOSS_KX_ADD, m, moss_k_call(b, MOSS_KFN_LOG, s, NULL, NULL)));
  if (lp) { /* log_prob has x0's shape */
    int y1 = moss_k_output(b, 1);
    c = moss_k_range(b, "c", C, MOSS_KL_PARALLEL);
    moss_k_store(b, y1, moss_k_add(b, base, moss_k_mulc(b, c, D)),
                 moss_k_cast(b, lp->dtype, bin(b, MOSS_KX_SUB, cls(b, x0, base, c, D), lse)));
    moss_k_end(b);
  }
  return lse;
}

moss_status moss_lower_loss(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *w = moss_node_input(n, 2);
  const moss_value *lp = n->noutputs > 1 ? n->outputs[1] : NULL;
  const char *red = moss_attr_string(n, "reduction", "mean");
  const moss_attr *ii = moss_node_find_attr(n, "ignore_index");
  moss_dtype dt = x->dtype;
  int none = !strcmp(red, "none"), mean = !strcmp(red, "mean"),
      sce = n->op == MOSS_OP_SoftmaxCrossEntropyLoss;
  moss_kloop_role role = none ? MOSS_KL_PARALLEL : MOSS_KL_REDUCE;
  int64_t N = x->dims[0], C = x->dims[1], D = 1;
  int k, x0 = moss_k_input(b, 0), x1 = moss_k_input(b, 1), y0 = moss_k_output(b, 0);
  moss_kx *num = NULL, *den = NULL, *nn, *dd, *t, *base, *lse = NULL, *valid, *wt, *l, *at;
  for (k = 2; k < x->rank; k++) D *= x->dims[k];
  if (!none && !mean && strcmp(red, "sum"))
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "reduction '%s'", red);
  if (!none) {
    num = moss_k_let(b, "num", f64(b, 0));
    if (mean) den = moss_k_let(b, "den", f64(b, 0));
  }
  if (N * D > 0 && C > 0) {
    nn = N > 1 ? moss_k_range(b, "n", N, role) : moss_k_idx(b, 0);
    dd = D > 1 ? moss_k_range(b, "d", D, role) : moss_k_idx(b, 0);
    at = moss_k_add(b, moss_k_mulc(b, nn, D), dd); /* in the target and y0 */
    if (at->op != MOSS_KX_VAR && at->op != MOSS_KX_CONST) at = moss_k_let(b, "at", at);
    t = moss_k_let(b, "t", moss_k_cast(b, MOSS_DT_I64, moss_k_load(b, x1, at)));
    base = moss_k_add(b, moss_k_mulc(b, nn, C * D), dd); /* class 0 in x0 */
    if (base->op != MOSS_KX_VAR && base->op != MOSS_KX_CONST) base = moss_k_let(b, "xb", base);
    if (sce) lse = log_sum_exp(b, x0, base, C, D, lp);
    valid = bin(b, MOSS_KX_LAND, bin(b, MOSS_KX_GE, t, moss_k_idx(b, 0)),
                bin(b, MOSS_KX_LT, t, moss_k_idx(b, C)));
    if (ii) valid = bin(b, MOSS_KX_LAND, bin(b, MOSS_KX_NE, t, moss_k_idx(b, ii->i)), valid);
    moss_k_if(b, valid);
    wt = w ? moss_k_let(b, "wt", dbl(b, moss_k_load(b, moss_k_input(b, 2), t))) : f64(b, 1);
    l = cls(b, x0, base, t, D);
    if (sce) l = bin(b, MOSS_KX_SUB, l, lse);
    l = moss_k_un(b, MOSS_KX_NEG, l);
    if (w) l = bin(b, MOSS_KX_MUL, l, wt); /* without weights, wt is 1: exact */
    l = moss_k_let(b, "l", l);
    if (none)
      moss_k_store(b, y0, at, moss_k_cast(b, dt, l));
    else
      moss_k_set(b, num, bin(b, MOSS_KX_ADD, num, l));
    if (mean) moss_k_set(b, den, bin(b, MOSS_KX_ADD, den, wt));
    if (none) {
      moss_k_else(b);
      moss_k_store(b, y0, at,
                   moss_dtype_is_float(dt) ? moss_k_flt(b, dt, 0) : moss_k_int(b, dt, 0));
    }
    moss_k_end(b); /* if */
    if (D > 1) moss_k_end(b);
    if (N > 1) moss_k_end(b);
  }
  if (!strcmp(red, "sum"))
    moss_k_store(b, y0, moss_k_idx(b, 0), moss_k_cast(b, dt, num));
  else if (!none)
    moss_k_store(b, y0, moss_k_idx(b, 0), moss_k_cast(b, dt, bin(b, MOSS_KX_DIV, num, den)));
  return b->st;
}
