/* qfold.c - moss's own integer ops, made only by the qdq pass
 * (compiler/passes/qdq.c, docs/qdq.md) from Dequantize -> op -> Quantize
 * patterns; the check pass refuses them in a model. Their outputs are
 * typed when the pass makes them (they take over the QuantizeLinear's
 * output), so inference only checks what the backends rely on:
 *
 *   MossQGemm(x, x_scale, x_zp, w[N,K], w_scale, w_zp, y_scale, y_zp [, bias int32[N]])
 *       y[..., n] = clamp(y_zp + requant(bias[n] + sum_k (x - x_zp)(w[n,k] - w_zp[n]),
 *                         x_scale * w_scale[n] / y_scale), qmin, qmax)
 *   MossQAdd / MossQMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp)   (broadcasting)
 *   MossQAvgPool(x, x_scale, x_zp, y_scale, y_zp)   (AveragePool attributes; global = 1
 *       for GlobalAveragePool)
 *   MossQLookup(x, table[256])   y = table[x] (x + 128 for int8)
 *   MossQLookup(x, table[C * 256])   per channel (axis 1, C = x.dims[1]):
 *       y = table[c * 256 + x] for an element of channel c
 *
 * All scales and zero points are constants; qmin/qmax (int attributes)
 * narrow the output range for a fused Relu/Clip. */
#include "ops.h"

static int q8(moss_dtype dt) { return dt == MOSS_DT_I8 || dt == MOSS_DT_U8; }

/* Input |i| is a constant scalar (one element). */
static int scalar_const(const moss_node *n, int i) {
  const moss_value *v = moss_node_input(n, i);
  return v && v->data && moss_value_numel(v) == 1;
}

moss_status moss_infer_qfold(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  (void)g;
  if (!x || !y || !q8(x->dtype) || !moss_value_shape_known(y) || !q8(y->dtype))
    return moss_fail(ctx, MOSS_E_INTERNAL, n, "malformed %s: 8-bit input and output expected",
                     n->op_type);
  switch (n->op) {
  case MOSS_OP_MossQGemm: {
    const moss_value *w = n->inputs[3];
    int64_t N = w && w->rank == 2 ? w->dims[0] : -1;
    int64_t ns = moss_value_numel(n->inputs[4]), nz = moss_value_numel(n->inputs[5]);
    if (!w || !w->data || w->rank != 2 || !q8(w->dtype) || x->rank < 1 ||
        x->dims[x->rank - 1] != w->dims[1] || !scalar_const(n, 1) || !scalar_const(n, 2) ||
        !scalar_const(n, 6) || !scalar_const(n, 7) || !n->inputs[4]->data ||
        !n->inputs[5]->data || (ns != 1 && ns != N) || (nz != 1 && nz != N) ||
        y->dims[y->rank - 1] != N)
      return moss_fail(ctx, MOSS_E_INTERNAL, n, "malformed MossQGemm");
    if (moss_node_input(n, 8) &&
        (n->inputs[8]->dtype != MOSS_DT_I32 || moss_value_numel(n->inputs[8]) != N))
      return moss_fail(ctx, MOSS_E_INTERNAL, n, "malformed MossQGemm bias");
    return MOSS_OK;
  }
  case MOSS_OP_MossQAdd:
  case MOSS_OP_MossQMul:
    if (!n->inputs[3] || !q8(n->inputs[3]->dtype) || !scalar_const(n, 1) || !scalar_const(n, 2) ||
        !scalar_const(n, 4) || !scalar_const(n, 5) || !scalar_const(n, 6) || !scalar_const(n, 7))
      return moss_fail(ctx, MOSS_E_INTERNAL, n, "malformed %s", n->op_type);
    return MOSS_OK;
  case MOSS_OP_MossQAvgPool:
    if (x->rank < 3 || !scalar_const(n, 1) || !scalar_const(n, 2) || !scalar_const(n, 3) ||
        !scalar_const(n, 4))
      return moss_fail(ctx, MOSS_E_INTERNAL, n, "malformed MossQAvgPool");
    return MOSS_OK;
  case MOSS_OP_MossQLookup:
    if (!n->inputs[1] || !n->inputs[1]->data || n->inputs[1]->dtype != y->dtype ||
        (moss_value_numel(n->inputs[1]) != 256 &&
         (x->rank < 2 || moss_value_numel(n->inputs[1]) != 256 * x->dims[1])))
      return moss_fail(ctx, MOSS_E_INTERNAL, n, "malformed MossQLookup");
    return MOSS_OK;
  default: return moss_fail(ctx, MOSS_E_INTERNAL, n, "not one of moss's integer ops");
  }
}

moss_status moss_eval_qfold(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED; /* never constant-folded: the pass made them from run-time data */
}
