/* contrib.c - the first pass: the quantized operators of ONNX Runtime's
 * com.microsoft domain that its quantizer writes in QOperator format
 * (QGemm, QLinearAdd, QLinearMul, QLinearSigmoid, QLinearLeakyRelu,
 * QLinearAveragePool, QLinearGlobalAveragePool, QLinearConcat) become
 * what they mean in the default domain: DequantizeLinear of each quantized
 * input, the float operator, QuantizeLinear of the output (docs/qdq.md,
 * "QOperator models"). The qdq pass then folds each such region into
 * moss's integer kernels exactly as it folds a QDQ model's, so the two
 * formats compile to the same code. Other com.microsoft operators stay,
 * and the check pass names them. The rewrite reads no shapes: a weight's
 * per-channel axis comes from its scale's size and the node's attributes. */
#include <stdio.h>
#include <string.h>

#include "passes.h"

typedef struct cx {
  moss_ctx *ctx;
  moss_graph *g;
  moss_node *n;
  int count;
  int failed;
} cx;

static moss_node *make(cx *c, const char *op, int nin, moss_value *const *in, moss_value *into, int nattrs) {
  char name[512];
  moss_node *m;
  int k;
  if (c->failed) return NULL;
  for (k = 0; k < nin; k++)
    if (!in[k]) { /* a required input the model left out */
      c->failed = 3;
      return NULL;
    }
  snprintf(name, sizeof name, "%s/%s%d", c->n->name, op, c->count++);
  m = moss_graph_add_node(c->ctx, c->g, op, name, nin, 1);
  if (!m || (nattrs && !(m->attrs = moss_graph_alloc(c->g, sizeof *m->attrs * (size_t)nattrs)))) {
    c->failed = 1;
    return NULL;
  }
  if (nattrs) memset(m->attrs, 0, sizeof *m->attrs * (size_t)nattrs);
  m->opset = c->n->opset > 13 ? c->n->opset : 13; /* DequantizeLinear's axis */
  for (k = 0; k < nin; k++) m->inputs[k] = in[k];
  if (!into && !(into = moss_graph_add_value(c->ctx, c->g, name))) {
    c->failed = 1;
    return NULL;
  }
  m->outputs[0] = into;
  into->producer = m;
  return m;
}

static moss_attr *attr(moss_node *m, const char *name, moss_attr_type t) {
  moss_attr *a = &m->attrs[m->nattrs++];
  a->name = name;
  a->type = t;
  return a;
}

static moss_value *out(moss_node *m) { return m ? m->outputs[0] : NULL; }

/* DequantizeLinear(x, scale, zp), along |axis| when |axis| >= 0. */
static moss_value *dq(cx *c, moss_value *x, moss_value *s, moss_value *zp, int axis) {
  moss_value *in[3];
  moss_node *m;
  in[0] = x;
  in[1] = s;
  in[2] = zp;
  m = make(c, "DequantizeLinear", zp ? 3 : 2, in, NULL, 1);
  if (m && axis >= 0) attr(m, "axis", MOSS_ATTR_INT)->i = axis;
  return out(m);
}

/* QuantizeLinear(x, scale, zp) into |y|, or |x| copied into |y| when the
 * node gives float (no scale). */
static void q(cx *c, moss_value *x, moss_value *s, moss_value *zp, moss_value *y) {
  moss_value *in[3];
  in[0] = x;
  in[1] = s;
  in[2] = zp;
  if (s) make(c, "QuantizeLinear", zp ? 3 : 2, in, y, 0);
  else make(c, "Identity", 1, in, y, 0);
}

static moss_value *in(const moss_node *n, int i) { return moss_node_input(n, i); }

/* QGemm(A, a_scale, a_zp, B, b_scale, b_zp, C, y_scale, y_zp; alpha,
 * transA, transB): B per channel along its N axis when b_scale has more
 * than one value; C an int32 bias of scale alpha * a_scale * b_scale. */
static void qgemm(cx *c) {
  moss_node *n = c->n, *m;
  moss_value *bs = in(n, 4), *g[3], *cs, *mul[2], *zero;
  int trans_b = (int)moss_attr_int(n, "transB", 0);
  float alpha = moss_attr_float(n, "alpha", 1.0f);
  int per_channel = bs && moss_value_numel(bs) > 1;
  int64_t nz;
  g[0] = dq(c, in(n, 0), in(n, 1), in(n, 2), -1);
  g[1] = dq(c, in(n, 3), bs, in(n, 5), per_channel ? (trans_b ? 0 : 1) : -1);
  g[2] = NULL;
  if (in(n, 6)) { /* the bias: scale a_scale * b_scale (* alpha), zero point 0 */
    mul[0] = in(n, 1);
    mul[1] = bs;
    cs = out(make(c, "Mul", 2, mul, NULL, 0));
    if (alpha != 1.0f) {
      mul[0] = cs;
      mul[1] = moss_graph_add_constant(c->ctx, c->g, NULL, MOSS_DT_F32, 0, NULL, &alpha);
      if (!mul[1]) c->failed = 1;
      cs = out(make(c, "Mul", 2, mul, NULL, 0));
    }
    nz = bs ? moss_value_numel(bs) : 1;
    zero = moss_graph_add_constant(c->ctx, c->g, NULL, MOSS_DT_I32, per_channel ? 1 : 0, &nz, NULL);
    if (!zero) c->failed = 1;
    g[2] = dq(c, in(n, 6), cs, zero, per_channel ? 0 : -1);
  }
  m = make(c, "Gemm", g[2] ? 3 : 2, g, NULL, 3);
  if (m) {
    attr(m, "alpha", MOSS_ATTR_FLOAT)->f = alpha;
    attr(m, "transA", MOSS_ATTR_INT)->i = moss_attr_int(n, "transA", 0);
    attr(m, "transB", MOSS_ATTR_INT)->i = trans_b;
  }
  q(c, out(m), in(n, 7), in(n, 8), n->outputs[0]);
}

/* The ops whose quantized inputs come in (x, scale, zp) triples from input
 * |first| on, |ntriples| of them (-1: as many as there are), then the
 * output's (scale, zp); |op| the float operator, attributes copied. */
static void lifted(cx *c, const char *op, int first, int ntriples) {
  moss_node *n = c->n, *m;
  moss_value *x[64];
  int k, nx = 0, ys;
  if (ntriples < 0) ntriples = (n->ninputs - first) / 3;
  ys = ntriples < 0 ? 0 : first + 3 * ntriples;
  if (ntriples > 64) {
    c->failed = 2;
    return;
  }
  for (k = 0; k < ntriples; k++) x[nx++] = dq(c, in(n, first + 3 * k), in(n, first + 3 * k + 1),
                                               in(n, first + 3 * k + 2), -1);
  m = make(c, op, nx, x, NULL, n->nattrs);
  if (m && n->nattrs) {
    memcpy(m->attrs, n->attrs, sizeof *m->attrs * (size_t)n->nattrs);
    m->nattrs = n->nattrs;
  }
  if (!strcmp(op, "Concat")) ys = 0; /* QLinearConcat: the output's scale and zero point come first */
  q(c, out(m), in(n, ys), in(n, ys + 1), n->outputs[0]);
}

static const struct {
  const char *name;
  const char *op; /* the float operator; NULL: QGemm */
  int first, ntriples;
} table[] = {
    {"QGemm", NULL, 0, 0},
    {"QLinearAdd", "Add", 0, 2},
    {"QLinearMul", "Mul", 0, 2},
    {"QLinearSigmoid", "Sigmoid", 0, 1},
    {"QLinearLeakyRelu", "LeakyRelu", 0, 1},
    {"QLinearAveragePool", "AveragePool", 0, 1},
    {"QLinearGlobalAveragePool", "GlobalAveragePool", 0, 1},
    {"QLinearConcat", "Concat", 2, -1},
};

moss_status moss_pass_contrib(moss_ctx *ctx, moss_graph *g) {
  int i, nnodes = g->nnodes, changed = 0;
  size_t t;
  for (i = 0; i < nnodes; i++) {
    moss_node *n = g->nodes[i];
    cx c;
    if (!n->domain || strcmp(n->domain, "com.microsoft")) continue;
    for (t = 0; t < sizeof table / sizeof table[0]; t++)
      if (!strcmp(n->op_type, table[t].name)) break;
    if (t == sizeof table / sizeof table[0]) continue; /* the check pass names it */
    if (n->noutputs != 1 || !n->outputs[0]) continue;
    if (moss_attr_int(n, "channels_last", 0)) continue; /* NHWC pooling: the check pass names it */
    memset(&c, 0, sizeof c);
    c.ctx = ctx;
    c.g = g;
    c.n = n;
    if (table[t].op) lifted(&c, table[t].op, table[t].first, table[t].ntriples);
    else qgemm(&c);
    if (c.failed == 2) return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "more than 64 inputs");
    if (c.failed == 3) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "a required input is missing");
    if (c.failed) return moss_fail(ctx, MOSS_E_NOMEM, n, "rewriting");
    n->dead = 1;
    changed = 1;
  }
  if (!changed) return MOSS_OK;
  moss_graph_compact(g);
  return moss_graph_sort(ctx, g);
}
