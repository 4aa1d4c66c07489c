/* test_ptq.c - post-training quantization's rewrites (compiler/passes/
 * ptq.c) on hand-built graphs with given activation ranges, and the
 * --calibration-method parser (compiler/driver/calibrate.c). Every
 * expected scale, zero point, int8 weight and int32 bias is worked out by
 * hand in the comments from the scheme of docs/quantization.md:
 *   activations: [lo, hi] widened to hold 0, scale = (hi - lo) / 255,
 *                zp = round(-lo / scale) in [0, 255];
 *   weights:     per output channel, scale = max|w| / 127, q = round half
 *                even (w / scale) in [-127, 127];
 *   bias:        int32 round(b / (x_scale * w_scale_c)).
 * Weights are picked so that w / scale is exact in float32 (powers of two),
 * which makes the ties (2.5 -> 2, 3.5 -> 4) real ties. The tests of the
 * rewrites run with allocation N failing, N = 1, 2, ... (oom.h):
 * out-of-memory and nothing leaked, until the run that completes. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "driver/ptq.h" /* moss_ptq_parse_method */
#include "graph_build.h"
#include "harness.h"
#include "oom.h"
#include "passes/ptq.h"

static moss_value *cst(moss_ctx *ctx, moss_graph *g, const char *name, int rank,
                       const int64_t *dims, const float *data) {
  return moss_graph_add_constant(ctx, g, name, MOSS_DT_F32, rank, dims, data);
}

static void set_int(moss_graph *g, moss_node *n, const char *name, int64_t v) {
  moss_attr *a = moss_graph_alloc(g, (size_t)(n->nattrs + 1) * sizeof *a);
  if (n->nattrs) memcpy(a, n->attrs, (size_t)n->nattrs * sizeof *a);
  a[n->nattrs].name = name;
  a[n->nattrs].type = MOSS_ATTR_INT;
  a[n->nattrs].i = v;
  n->attrs = a;
  n->nattrs++;
}

static moss_node *node(moss_ctx *ctx, moss_graph *g, const char *op, const char *name, int nin,
                       moss_value **in, moss_value *y) {
  moss_node *n = moss_graph_add_node(ctx, g, op, name, nin, 1);
  int i;
  for (i = 0; i < nin; i++) n->inputs[i] = in[i];
  n->outputs[0] = y;
  y->producer = n;
  return n;
}

static void io(moss_graph *g, moss_value *x, moss_value *y) {
  g->inputs = moss_graph_alloc(g, sizeof *g->inputs);
  g->outputs = moss_graph_alloc(g, sizeof *g->outputs);
  g->inputs[0] = x;
  x->input_index = 0;
  g->ninputs = 1;
  g->outputs[0] = y;
  y->output_index = 0;
  g->noutputs = 1;
}

static void set_range(moss_ptq_range *r, const moss_value *v, float lo, float hi) {
  r[v->id].lo = lo;
  r[v->id].hi = hi;
  r[v->id].seen = 1;
}

/* The DequantizeLinear producing |v|, or NULL. */
static const moss_node *dq(const moss_value *v) {
  return v && v->producer && v->producer->op == MOSS_OP_DequantizeLinear ? v->producer : NULL;
}

static float f32_at(const moss_value *v, int i) { return ((const float *)v->data)[i]; }

/* Gemm Y[1,3] = X[1,2] W^T + b (transB = 1), X in [-1, 3], Y in [0.5, 2]. */
static moss_graph *gemm_graph(moss_ctx *ctx, moss_ptq_range **out_r, int *out_nr) {
  static const float w[6] = {
      1.984375f, 0.0390625f, /* max 127/64: scale 1/64; 127, 2.5 -> 2 */
      0.0f, 0.0f,            /* all zero: scale 1, q 0 */
      0.02734375f, -0.9921875f}; /* max 63.5/64: scale 1/128; 3.5 -> 4, -127 */
  static const float b[3] = {0.1f, 0.2f, -0.3f};
  int64_t dx[2] = {1, 2}, dw[2] = {3, 2}, db[1] = {3}, dy[2] = {1, 3};
  moss_graph *g;
  moss_value *in[3], *x, *y;
  moss_node *n;
  moss_graph_create(ctx, &g);
  x = val(ctx, g, "X", 2, dx);
  y = val(ctx, g, "Y", 2, dy);
  in[0] = x;
  in[1] = cst(ctx, g, "W", 2, dw, w);
  in[2] = cst(ctx, g, "B", 1, db, b);
  n = node(ctx, g, "Gemm", "fc", 3, in, y);
  set_int(g, n, "transB", 1);
  io(g, x, y);
  *out_nr = g->nvalues;
  *out_r = calloc((size_t)g->nvalues, sizeof **out_r);
  set_range(*out_r, x, -1.0f, 3.0f);
  set_range(*out_r, y, 0.5f, 2.0f);
  return g;
}

TEST(act_params) {
  float s;
  uint8_t z;
  /* [-1, 3]: scale 4/255 = 0.0156862745, zp round(1 / (4/255)) = round(63.75) = 64 */
  moss_ptq_act_params(-1.0f, 3.0f, &s, &z);
  ASSERT_NEAR(s, 4.0 / 255.0, 1e-9);
  ASSERT_EQ(z, 64);
  /* [2, 4] widened to [0, 4]: zp 0 */
  moss_ptq_act_params(2.0f, 4.0f, &s, &z);
  ASSERT_NEAR(s, 4.0 / 255.0, 1e-9);
  ASSERT_EQ(z, 0);
  /* [-2, -1] widened to [-2, 0]: scale 2/255, zp 255 */
  moss_ptq_act_params(-2.0f, -1.0f, &s, &z);
  ASSERT_NEAR(s, 2.0 / 255.0, 1e-9);
  ASSERT_EQ(z, 255);
  /* all zero: the 1e-8 floor */
  moss_ptq_act_params(0.0f, 0.0f, &s, &z);
  ASSERT_NEAR(s, 1e-8, 1e-15);
  ASSERT_EQ(z, 0);
}

TEST(gemm_weights_bias_activations) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_ptq_range *r;
    int nr, nq, nk;
    const moss_node *fc = NULL, *wdq, *bdq, *xdq, *ydq;
    const moss_value *wq, *ws, *bq, *bs, *y;
    int i;
    moss_status st;
    oom_ctx_init(&ctx);
    g = gemm_graph(&ctx, &r, &nr);
    st = OOM_CALL(&ctx, moss_ptq_insert(&ctx, g, r, nr, NULL, &nq, &nk));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_EQ(nq, 1);
    ASSERT_EQ(nk, 0);
    ASSERT_EQ(moss_ir_verify(&ctx, g), MOSS_OK);
    for (i = 0; i < g->nnodes; i++)
      if (g->nodes[i]->op == MOSS_OP_Gemm) fc = g->nodes[i];
    ASSERT_TRUE(fc != NULL);
    /* weights: int8 behind DequantizeLinear, axis 0 (transB = 1) */
    wdq = dq(fc->inputs[1]);
    ASSERT_TRUE(wdq != NULL);
    ASSERT_EQ(moss_attr_int(wdq, "axis", -1), 0);
    wq = wdq->inputs[0];
    ws = wdq->inputs[1];
    ASSERT_EQ(wq->dtype, MOSS_DT_I8);
    {
      static const int expect[6] = {127, 2, 0, 0, 4, -127};
      for (i = 0; i < 6; i++) ASSERT_EQ(((const int8_t *)wq->data)[i], expect[i]);
    }
    ASSERT_EQ(moss_value_numel(ws), 3);
    ASSERT_NEAR(f32_at(ws, 0), 1.0 / 64, 1e-9);
    ASSERT_NEAR(f32_at(ws, 1), 1.0, 0);
    ASSERT_NEAR(f32_at(ws, 2), 1.0 / 128, 1e-9);
    ASSERT_EQ(wdq->inputs[2]->dtype, MOSS_DT_I8);
    ASSERT_EQ(moss_value_get_i64(wdq->inputs[2], 0), 0);
    /* bias: int32, scale x_scale * w_scale_c with x_scale 4/255:
     *   0.1 / (4/255/64) = 408, 0.2 / (4/255) = 12.75 -> 13, -0.3 / (4/255/128) = -2448 */
    bdq = dq(fc->inputs[2]);
    ASSERT_TRUE(bdq != NULL);
    bq = bdq->inputs[0];
    bs = bdq->inputs[1];
    ASSERT_EQ(bq->dtype, MOSS_DT_I32);
    ASSERT_EQ(((const int32_t *)bq->data)[0], 408);
    ASSERT_EQ(((const int32_t *)bq->data)[1], 13);
    ASSERT_EQ(((const int32_t *)bq->data)[2], -2448);
    ASSERT_NEAR(f32_at(bs, 0), 4.0 / 255 / 64, 1e-10);
    ASSERT_NEAR(f32_at(bs, 1), 4.0 / 255, 1e-9);
    ASSERT_NEAR(f32_at(bs, 2), 4.0 / 255 / 128, 1e-10);
    ASSERT_EQ(bdq->inputs[2]->dtype, MOSS_DT_I32);
    /* input: Quantize -> Dequantize, scale 4/255, zp 64, uint8 */
    xdq = dq(fc->inputs[0]);
    ASSERT_TRUE(xdq != NULL);
    ASSERT_EQ(xdq->inputs[0]->producer->op, MOSS_OP_QuantizeLinear);
    ASSERT_EQ(xdq->inputs[0]->dtype, MOSS_DT_U8);
    ASSERT_EQ(xdq->inputs[0]->producer->inputs[0], g->inputs[0]);
    ASSERT_NEAR(f32_at(xdq->inputs[1], 0), 4.0 / 255, 1e-9);
    ASSERT_EQ(*(const uint8_t *)xdq->inputs[2]->data, 64);
    /* output: [0.5, 2] -> [0, 2], scale 2/255, zp 0; the graph output keeps the name Y */
    y = g->outputs[0];
    ASSERT_TRUE(!strcmp(y->name, "Y"));
    ASSERT_EQ(y->output_index, 0);
    ydq = dq(y);
    ASSERT_TRUE(ydq != NULL);
    ASSERT_NEAR(f32_at(ydq->inputs[1], 0), 2.0 / 255, 1e-9);
    ASSERT_EQ(*(const uint8_t *)ydq->inputs[2]->data, 0);
    ASSERT_EQ(ydq->inputs[0]->producer->inputs[0], fc->outputs[0]);
  done:
    moss_graph_destroy(&ctx, g);
    free(r);
  }
}

TEST(keep_float) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_ptq_range *r;
    int nr, nq, nk, i, nnodes;
    moss_status st;
    oom_ctx_init(&ctx);
    g = gemm_graph(&ctx, &r, &nr);
    nnodes = g->nnodes;
    st = OOM_CALL(&ctx, moss_ptq_check_keep_float(&ctx, g, "fc"));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    st = OOM_CALL(&ctx, moss_ptq_check_keep_float(&ctx, g, "fc,nope"));
    if (OOM_STOPPED()) goto done;
    ASSERT_TRUE(st != MOSS_OK);
    ASSERT_STR_CONTAINS(ctx.last, "'nope'");
    st = OOM_CALL(&ctx, moss_ptq_insert(&ctx, g, r, nr, "other,fc", &nq, &nk));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_EQ(nq, 0);
    ASSERT_EQ(nk, 1);
    ASSERT_EQ(g->nnodes, nnodes);
    for (i = 0; i < g->nnodes; i++) ASSERT_TRUE(g->nodes[i]->op == MOSS_OP_Gemm);
  done:
    moss_graph_destroy(&ctx, g);
    free(r);
  }
}

/* Conv (1 -> 2 channels, 1x1) -> MaxPool -> Flatten -> MatMul [2,2]: the
 * movement ops reuse the Conv output's parameters; MatMul weights are per
 * column (axis 1). */
TEST(conv_pool_flatten_matmul) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_ptq_range *r;
    /* per channel: scales 0.5/127, 0.25/127; q 127, -127 */
    static const float wc[2] = {0.5f, -0.25f};
    static const float wm[4] = {1.0f, 0.5f, 0.25f, -2.0f}; /* columns {1, .25}, {.5, -2}:
                                                              scales 1/127, 2/127;
                                                              q [127, 32; 32, -127]:
                                                              0.25*127 = 31.75 -> 32,
                                                              0.5*127/2 = 31.75 -> 32 */
    int64_t dx[4] = {1, 1, 2, 2}, dwc[4] = {2, 1, 1, 1}, dc[4] = {1, 2, 2, 2}, dp[4] = {1, 2, 1, 1};
    int64_t df[2] = {1, 2}, dwm[2] = {2, 2}, dy[2] = {1, 2};
    moss_value *x, *c, *p, *f, *y, *in[2];
    moss_node *conv, *mm;
    const moss_node *pdq, *fdq, *cdq, *wdq;
    int nq, nk, i;
    int64_t ks[2] = {2, 2};
    moss_status st;
    oom_ctx_init(&ctx);
    moss_graph_create(&ctx, &g);
    x = val(&ctx, g, "x", 4, dx);
    c = val(&ctx, g, "c", 4, dc);
    p = val(&ctx, g, "p", 4, dp);
    f = val(&ctx, g, "f", 2, df);
    y = val(&ctx, g, "y", 2, dy);
    in[0] = x;
    in[1] = cst(&ctx, g, "wc", 4, dwc, wc);
    conv = node(&ctx, g, "Conv", "conv", 2, in, c);
    conv->act.kind = MOSS_ACT_RELU;
    in[0] = c;
    {
      moss_node *mp = node(&ctx, g, "MaxPool", "pool", 1, in, p);
      moss_attr *a = moss_graph_alloc(g, sizeof *a);
      a->name = "kernel_shape";
      a->type = MOSS_ATTR_INTS;
      a->ints = ks;
      a->n = 2;
      mp->attrs = a;
      mp->nattrs = 1;
    }
    in[0] = p;
    node(&ctx, g, "Flatten", "flat", 1, in, f);
    in[0] = f;
    in[1] = cst(&ctx, g, "wm", 2, dwm, wm);
    mm = node(&ctx, g, "MatMul", "mm", 2, in, y);
    io(g, x, y);
    r = calloc((size_t)g->nvalues, sizeof *r);
    set_range(r, x, 0.0f, 1.0f);
    set_range(r, c, 0.0f, 5.1f); /* scale 0.02, zp 0 */
    set_range(r, p, 0.0f, 100.0f); /* not used: MaxPool keeps its input's parameters */
    set_range(r, f, 0.0f, 100.0f);
    set_range(r, y, -0.5f, 2.0f);
    st = OOM_CALL(&ctx, moss_ptq_insert(&ctx, g, r, g->nvalues, NULL, &nq, &nk));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_EQ(nq, 2);
    ASSERT_EQ(moss_ir_verify(&ctx, g), MOSS_OK);
    ASSERT_EQ(conv->outputs[0], c); /* c itself stays the Conv output */
    cdq = NULL;
    /* the pool reads the Conv output through its pair (scale 5.1/255 = 0.02) */
    for (i = 0; i < g->nnodes; i++)
      if (g->nodes[i]->op == MOSS_OP_MaxPool) cdq = dq(g->nodes[i]->inputs[0]);
    ASSERT_TRUE(cdq != NULL);
    ASSERT_NEAR(f32_at(cdq->inputs[1], 0), 0.02, 1e-7);
    pdq = NULL;
    for (i = 0; i < g->nnodes; i++)
      if (g->nodes[i]->op == MOSS_OP_Flatten) pdq = dq(g->nodes[i]->inputs[0]);
    ASSERT_TRUE(pdq != NULL);
    ASSERT_NEAR(f32_at(pdq->inputs[1], 0), 0.02, 1e-7);
    ASSERT_EQ(*(const uint8_t *)pdq->inputs[2]->data, 0);
    fdq = dq(mm->inputs[0]);
    ASSERT_TRUE(fdq != NULL);
    ASSERT_NEAR(f32_at(fdq->inputs[1], 0), 0.02, 1e-7);
    /* Conv weights: axis 0, 127 and -127 */
    wdq = dq(conv->inputs[1]);
    ASSERT_TRUE(wdq != NULL);
    ASSERT_EQ(moss_attr_int(wdq, "axis", -1), 0);
    ASSERT_EQ(((const int8_t *)wdq->inputs[0]->data)[0], 127);
    ASSERT_EQ(((const int8_t *)wdq->inputs[0]->data)[1], -127);
    ASSERT_NEAR(f32_at(wdq->inputs[1], 1), 0.25 / 127, 1e-9);
    /* MatMul weights: axis 1 */
    wdq = dq(mm->inputs[1]);
    ASSERT_TRUE(wdq != NULL);
    ASSERT_EQ(moss_attr_int(wdq, "axis", -1), 1);
    {
      static const int expect[4] = {127, 32, 32, -127};
      for (i = 0; i < 4; i++) ASSERT_EQ(((const int8_t *)wdq->inputs[0]->data)[i], expect[i]);
    }
    ASSERT_NEAR(f32_at(wdq->inputs[1], 0), 1.0 / 127, 1e-9);
    ASSERT_NEAR(f32_at(wdq->inputs[1], 1), 2.0 / 127, 1e-9);
    /* output y: [-0.5, 2], scale 2.5/255, zp 0.5 / (2.5/255) = 51 */
    ASSERT_NEAR(f32_at(dq(g->outputs[0])->inputs[1], 0), 2.5 / 255, 1e-9);
    ASSERT_EQ(*(const uint8_t *)dq(g->outputs[0])->inputs[2]->data, 51);
  done:
    moss_graph_destroy(&ctx, g);
    free(r);
  }
}

TEST(observe_and_methods) {
  moss_ctx ctx;
  moss_graph *g;
  moss_ptq_range *r;
  int nr;
  double p;
  OOM_LOOP {
    moss_status st;
    oom_ctx_init(&ctx);
    g = gemm_graph(&ctx, &r, &nr);
    st = OOM_CALL(&ctx, moss_ptq_observe(&ctx, g));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_EQ(g->noutputs, 1); /* Y already was the only activation */
  done:
    moss_graph_destroy(&ctx, g);
    free(r);
  }
  ASSERT_EQ(moss_ptq_parse_method(&ctx, NULL, &p), MOSS_OK);
  ASSERT_NEAR(p, 0, 0);
  ASSERT_EQ(moss_ptq_parse_method(&ctx, "percentile", &p), MOSS_OK);
  ASSERT_NEAR(p, 99.99, 1e-12);
  ASSERT_EQ(moss_ptq_parse_method(&ctx, "percentile:99.5", &p), MOSS_OK);
  ASSERT_NEAR(p, 99.5, 1e-12);
  ASSERT_TRUE(moss_ptq_parse_method(&ctx, "percentile:0", &p) != MOSS_OK);
  ASSERT_TRUE(moss_ptq_parse_method(&ctx, "entropy", &p) != MOSS_OK);
}

TEST_MAIN()
