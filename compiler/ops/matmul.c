/* matmul.c - matrix products: Gemm (alpha, beta, transA, transB, a C that
 * broadcasts one way to [M, N]), MatMul (numpy batching with broadcast
 * batch dimensions and 1-D promotion) and Det (determinant of the last two
 * dimensions). Shapes only; the kernels are in compiler/kernel/lower_matmul.c.
 * Constant MatMul/Gemm are left to the backend: they rarely decide shapes. */
#include <math.h>

#include "ops.h"

static moss_status check_type(moss_ctx *ctx, const moss_node *n, moss_dtype dt) {
  if (dt == MOSS_DT_F16 || dt == MOSS_DT_BF16 || dt == MOSS_DT_STRING)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "element type %s", moss_dtype_name(dt));
  if (!moss_arith_type(dt))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "element type %s is not a numeric type",
                     moss_dtype_name(dt));
  return MOSS_OK;
}

/* Inputs A and B: present with known shapes, of one accepted type. */
static moss_status check_inputs(moss_ctx *ctx, const moss_node *n) {
  const moss_value *a, *b;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  MOSS_TRY(moss_need_input(ctx, n, 1));
  a = n->inputs[0];
  b = n->inputs[1];
  if (a->dtype != b->dtype)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input types differ: %s and %s",
                     moss_dtype_name(a->dtype), moss_dtype_name(b->dtype));
  return check_type(ctx, n, a->dtype);
}

static moss_status infer_gemm(moss_ctx *ctx, moss_node *n) {
  moss_value *a = n->inputs[0], *b = n->inputs[1], *c = moss_node_input(n, 2);
  int64_t m, k, k2, nn, dims[2];
  int ta = moss_attr_int(n, "transA", 0) != 0, tb = moss_attr_int(n, "transB", 0) != 0;
  MOSS_TRY(check_inputs(ctx, n));
  if (a->rank != 2 || b->rank != 2)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "A and B must be 2-D (ranks %d and %d)", a->rank,
                     b->rank);
  m = ta ? a->dims[1] : a->dims[0];
  k = ta ? a->dims[0] : a->dims[1];
  k2 = tb ? b->dims[1] : b->dims[0];
  nn = tb ? b->dims[0] : b->dims[1];
  if (k != k2)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "inner dimensions differ: %lld vs %lld",
                     (long long)k, (long long)k2);
  if (c) {
    int i;
    if (!moss_value_shape_known(c))
      return moss_fail(ctx, MOSS_E_INTERNAL, n, "input '%s' has no known shape", c->name);
    if (c->dtype != a->dtype)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "C has type %s, A has %s",
                       moss_dtype_name(c->dtype), moss_dtype_name(a->dtype));
    if (c->rank > 2)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "C has rank %d (at most 2)", c->rank);
    for (i = 0; i < c->rank; i++) {
      int64_t want = (c->rank - i == 1) ? nn : m;
      if (c->dims[i] != 1 && c->dims[i] != want)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                         "C of dimension %lld does not broadcast to [%lld, %lld]",
                         (long long)c->dims[i], (long long)m, (long long)nn);
    }
  }
  if (!moss_dtype_is_float(a->dtype) && (moss_attr_float(n, "alpha", 1.0f) != 1.0f ||
                                         (c && moss_attr_float(n, "beta", 1.0f) != 1.0f)))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "integer Gemm with alpha or beta other than 1");
  dims[0] = m;
  dims[1] = nn;
  moss_set_output(n, 0, a->dtype, 2, dims);
  return MOSS_OK;
}

static moss_status infer_matmul(moss_ctx *ctx, moss_node *n) {
  moss_value *a = n->inputs[0], *b = n->inputs[1];
  int ra, rb, rank, r = 0, i;
  int64_t da[MOSS_MAX_RANK], db[MOSS_MAX_RANK], bd[MOSS_MAX_RANK], dims[MOSS_MAX_RANK];
  MOSS_TRY(check_inputs(ctx, n));
  if (a->rank < 1 || b->rank < 1)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "MatMul inputs must have rank >= 1");
  ra = a->rank > 2 ? a->rank - 2 : 0;
  rb = b->rank > 2 ? b->rank - 2 : 0;
  for (i = 0; i < ra; i++) da[i] = a->dims[i];
  for (i = 0; i < rb; i++) db[i] = b->dims[i];
  {
    int64_t ka = a->dims[a->rank - 1];
    int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    if (ka != kb)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "inner dimensions differ: %lld vs %lld",
                       (long long)ka, (long long)kb);
  }
  MOSS_TRY(moss_broadcast(ctx, n, ra, da, rb, db, &rank, bd));
  for (i = 0; i < rank; i++) dims[r++] = bd[i];
  if (a->rank >= 2) dims[r++] = a->dims[a->rank - 2];
  if (b->rank >= 2) dims[r++] = b->dims[b->rank - 1];
  if (r > MOSS_MAX_RANK)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "rank above %d", MOSS_MAX_RANK);
  moss_set_output(n, 0, a->dtype, r, dims);
  return MOSS_OK;
}

static moss_status infer_det(moss_ctx *ctx, moss_node *n) {
  moss_value *x = n->inputs[0];
  MOSS_TRY(moss_need_input(ctx, n, 0));
  if (!moss_dtype_is_float(x->dtype))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "Det needs a floating-point input");
  if (x->dtype != MOSS_DT_F32 && x->dtype != MOSS_DT_F64)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "element type %s", moss_dtype_name(x->dtype));
  if (x->rank < 2 || x->dims[x->rank - 1] != x->dims[x->rank - 2])
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "Det needs square matrices in the last two dims");
  if (x->dims[x->rank - 1] > 64)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "Det of matrices larger than 64x64");
  moss_set_output(n, 0, x->dtype, x->rank - 2, x->dims);
  return MOSS_OK;
}

moss_status moss_infer_matmul(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)g;
  switch (n->op) {
  case MOSS_OP_Gemm: return infer_gemm(ctx, n);
  case MOSS_OP_MatMul: return infer_matmul(ctx, n);
  case MOSS_OP_Det: return infer_det(ctx, n);
  default: return moss_fail(ctx, MOSS_E_INTERNAL, n, "not a matmul-family operator");
  }
}

moss_status moss_eval_matmul(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED;
}
