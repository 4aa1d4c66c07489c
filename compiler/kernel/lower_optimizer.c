/* lower_optimizer.c - Adagrad, Adam and Momentum (ops/optimizer.c): the
 * step's scalars (the learning rate adjusted for the update count T) are
 * LETs read once from R and T, then one parallel loop per optimized tensor
 * computes ONNX's update rule element by element, in the order of the
 * spec's pseudo code (onnx/defs/training/defs.cc), in the tensors' type:
 *
 *   all:      G' = norm_coefficient X + G
 *   Adagrad:  H' = H + G' G';  X' = X - (R / (1 + T decay_factor)) G' / (sqrt(H') + epsilon)
 *   Momentum: V' = alpha V + (T > 0 ? beta : 1) G'
 *             standard: X' = X - R V';  nesterov: X' = X - R (G' + alpha V')
 *   Adam:     V' = alpha V + (1 - alpha) G';  H' = beta H + (1 - beta) G' G'
 *             R' = T > 0 ? R sqrt(1 - beta^T) / (1 - alpha^T) : R
 *             X' = (1 - norm_coefficient_post) (X - R' (V' / (sqrt(H') + epsilon)))
 *
 * Each element's inputs are read before any output is stored. */
#include <string.h>

#include "lower.h"

static moss_kx *flt(moss_kb *b, moss_dtype dt, double v) { return moss_k_flt(b, dt, v); }
static moss_kx *bin(moss_kb *b, moss_kx_op op, moss_kx *x, moss_kx *y) {
  return moss_k_bin(b, op, x, y);
}
static moss_kx *add(moss_kb *b, moss_kx *x, moss_kx *y) { return bin(b, MOSS_KX_ADD, x, y); }
static moss_kx *sub(moss_kb *b, moss_kx *x, moss_kx *y) { return bin(b, MOSS_KX_SUB, x, y); }
static moss_kx *mul(moss_kb *b, moss_kx *x, moss_kx *y) { return bin(b, MOSS_KX_MUL, x, y); }
static moss_kx *dvd(moss_kb *b, moss_kx *x, moss_kx *y) { return bin(b, MOSS_KX_DIV, x, y); }
static moss_kx *sqrt_(moss_kb *b, moss_kx *x) {
  return moss_k_call(b, MOSS_KFN_SQRT, x, NULL, NULL);
}

/* Element |i| of the node's input |k|. */
static moss_kx *in(moss_kb *b, int k, moss_kx *i) { return moss_k_load(b, moss_k_input(b, k), i); }

/* Stores |v| into output |k| of |n| at |i| where the model has that output. */
static void put(moss_kb *b, const moss_node *n, int k, moss_kx *i, moss_kx *v) {
  if (k < n->noutputs && n->outputs[k]) moss_k_store(b, moss_k_output(b, k), i, v);
}

/* The step's scalars, LETs before the loops: the learning rate |*out_rate|
 * (Adagrad's decayed, Adam's corrected: R itself for Momentum) and
 * Momentum's gradient coefficient |*out_bg|. */
static void scalars(moss_kb *b, const moss_node *n, moss_dtype dt, moss_kx **out_rate,
                    moss_kx **out_bg) {
  double alpha = moss_attr_float(n, "alpha", 0.9f), beta = moss_attr_float(n, "beta", 0.999f);
  double decay = moss_attr_float(n, "decay_factor", 0.0f);
  moss_kx *r, *t, *tf, *pos, *pa, *pb, *one = flt(b, dt, 1);
  r = moss_k_let(b, "r", moss_k_cast(b, dt, in(b, 0, moss_k_idx(b, 0))));
  t = moss_k_let(b, "t", in(b, 1, moss_k_idx(b, 0)));
  pos = bin(b, MOSS_KX_GT, t, moss_k_int(b, MOSS_DT_I64, 0));
  *out_rate = r;
  *out_bg = NULL;
  if (n->op == MOSS_OP_Momentum) {
    moss_k_comment(b, "the gradient's coefficient: 1 at the first update");
    *out_bg = moss_k_let(b, "bg", moss_k_select(b, pos, flt(b, dt, beta), one));
    return;
  }
  tf = moss_k_let(b, "tf", moss_k_cast(b, dt, t)); /* T in the tensors' type */
  if (n->op == MOSS_OP_Adagrad) {
    moss_k_comment(b, "the learning rate decayed by the update count");
    *out_rate = moss_k_let(b, "rate", dvd(b, r, add(b, one, mul(b, tf, flt(b, dt, decay)))));
    return;
  }
  pa = moss_k_call(b, MOSS_KFN_POW, flt(b, dt, alpha), tf, NULL);
  pb = moss_k_call(b, MOSS_KFN_POW, flt(b, dt, beta), tf, NULL);
  moss_k_comment(b, "the learning rate with the momentums' bias correction (none at T = 0)");
  *out_rate = moss_k_let(b, "rate",
                         moss_k_select(b, pos,
                                       dvd(b, mul(b, r, sqrt_(b, sub(b, one, pb))),
                                           sub(b, flt(b, dt, 1), pa)),
                                       r));
}

moss_status moss_lower_optimizer(moss_kb *b, const moss_node *n) {
  int acc = n->op == MOSS_OP_Adam ? 2 : 1, m = (n->ninputs - 2) / (2 + acc), j;
  moss_dtype dt = n->inputs[2]->dtype;
  double alpha = moss_attr_float(n, "alpha", 0.9f), beta = moss_attr_float(n, "beta", 0.999f);
  double norm = moss_attr_float(n, "norm_coefficient", 0.0f);
  double eps = moss_attr_float(n, "epsilon", 1e-6f);
  double post = moss_attr_float(n, "norm_coefficient_post", 0.0f);
  int nesterov = !strcmp(moss_attr_string(n, "mode", "standard"), "nesterov");
  moss_kx *rate, *bg;
  scalars(b, n, dt, &rate, &bg);
  for (j = 0; j < m; j++) {
    const moss_value *xv = n->inputs[2 + j];
    int64_t ne = moss_value_numel(xv);
    int a0 = 2 + 2 * m + j; /* the first accumulator's input; Adam's H is a0 + m */
    moss_kx *i, *x, *gr, *v = NULL, *h = NULL, *xn;
    moss_k_comment(b, "tensor %d: '%s'", j, xv->name);
    if (ne == 0) continue;
    i = moss_k_range(b, "i", ne, MOSS_KL_PARALLEL);
    x = moss_k_let(b, "x", in(b, 2 + j, i));
    gr = moss_k_let(b, "gr", add(b, mul(b, flt(b, dt, norm), x), in(b, 2 + m + j, i)));
    if (n->op == MOSS_OP_Adagrad) {
      h = moss_k_let(b, "h", add(b, in(b, a0, i), mul(b, gr, gr)));
      xn = sub(b, x, dvd(b, mul(b, rate, gr), add(b, sqrt_(b, h), flt(b, dt, eps))));
    } else if (n->op == MOSS_OP_Momentum) {
      v = moss_k_let(b, "v", add(b, mul(b, flt(b, dt, alpha), in(b, a0, i)), mul(b, bg, gr)));
      xn = sub(b, x, mul(b, rate, nesterov ? add(b, gr, mul(b, flt(b, dt, alpha), v)) : v));
    } else { /* Adam */
      v = moss_k_let(b, "v", add(b, mul(b, flt(b, dt, alpha), in(b, a0, i)),
                                 mul(b, flt(b, dt, 1 - alpha), gr)));
      h = moss_k_let(b, "h", add(b, mul(b, flt(b, dt, beta), in(b, a0 + m, i)),
                                 mul(b, flt(b, dt, 1 - beta), mul(b, gr, gr))));
      xn = sub(b, x, mul(b, rate, dvd(b, v, add(b, sqrt_(b, h), flt(b, dt, eps)))));
      if (post != 0) xn = mul(b, flt(b, dt, 1 - post), xn); /* 1 x is x, inf and NaN too */
    }
    put(b, n, j, i, xn);
    put(b, n, m + j, i, v ? v : h); /* Adagrad's H, the others' V */
    if (v && h) put(b, n, 2 * m + j, i, h);
    moss_k_end(b);
  }
  return b->st;
}
