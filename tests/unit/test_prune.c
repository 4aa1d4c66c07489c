/* test_prune.c - compile-time pruning (compiler/passes/prune.c) on hand-made
 * weights. Every expected zero mask is worked out by hand in the comment
 * above its test from the rules in docs/pruning.md; every malformed spec
 * has its whole message checked. Every test runs with allocation N failing,
 * N = 1, 2, ... (oom.h): out-of-memory and nothing leaked, until the run that
 * completes, whose results are checked. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diag_sink.h"
#include "harness.h"
#include "oom.h"
#include "passes/prune.h"

/* A context on the counting allocator of oom.h whose diagnostics go to |b|. */
static void oom_ctx_with_sink(moss_ctx *ctx, sink_buf *b) {
  ctx_with_sink(ctx, b);
  ctx->alloc = oom_allocator();
}

/* ---- building graphs ---- */

static moss_value *act(moss_ctx *ctx, moss_graph *g, const char *name) {
  moss_value *v = moss_graph_add_value(ctx, g, name);
  v->dtype = MOSS_DT_F32;
  return v;
}

static moss_value *weight(moss_ctx *ctx, moss_graph *g, const char *name, int rank,
                          const int64_t *dims, const float *data) {
  return moss_graph_add_constant(ctx, g, name, MOSS_DT_F32, rank, dims, data);
}

/* |op| node y = op(x, w[, b]) with an optional integer attribute. */
static moss_node *layer_node(moss_ctx *ctx, moss_graph *g, const char *op, const char *name,
                             moss_value *x, moss_value *w, moss_value *b, const char *attr,
                             int64_t attr_value) {
  moss_node *n = moss_graph_add_node(ctx, g, op, name, b ? 3 : 2, 1);
  moss_value *y = act(ctx, g, NULL);
  n->inputs[0] = x;
  n->inputs[1] = w;
  if (b) n->inputs[2] = b;
  n->outputs[0] = y;
  y->producer = n;
  if (attr) {
    n->attrs = moss_graph_alloc(g, sizeof *n->attrs);
    n->attrs[0].name = attr;
    n->attrs[0].type = MOSS_ATTR_INT;
    n->attrs[0].i = attr_value;
    n->nattrs = 1;
  }
  return n;
}

static moss_node *gemm_t(moss_ctx *ctx, moss_graph *g, const char *name, moss_value *w) {
  return layer_node(ctx, g, "Gemm", name, act(ctx, g, NULL), w, NULL, "transB", 1);
}

/* Compares the weight |v| with |want| element by element. */
static int same(const moss_value *v, const float *want, int n) {
  const float *d = v->data;
  int i;
  for (i = 0; i < n; i++)
    if (d[i] != want[i]) {
      fprintf(stderr, "  element %d of '%s': %g, expected %g\n", i, v->name, d[i], want[i]);
      return 0;
    }
  return 1;
}

/* Two Gemm layers (transB=1):
 *   wa [2,3] = 0.1 -0.5 0.2 / 0.9 -0.05 0.3      (6)
 *   wb [2,2] = 2 -1 / 0.15 3                    (4)
 * Ten weights by |w|: 0.05 a4, 0.1 a0, 0.15 b2, 0.2 a2, 0.3 a5, 0.5 a1,
 * 0.9 a3, 1 b1, 2 b0, 3 b3. */
static const float WA[6] = {0.1f, -0.5f, 0.2f, 0.9f, -0.05f, 0.3f};
static const float WB[4] = {2.0f, -1.0f, 0.15f, 3.0f};

static void two_layers(moss_ctx *ctx, moss_graph **g, moss_value **wa, moss_value **wb) {
  static const int64_t da[2] = {2, 3}, db[2] = {2, 2};
  moss_graph_create(ctx, g);
  *wa = weight(ctx, *g, "wa", 2, da, WA);
  *wb = weight(ctx, *g, "wb", 2, db, WB);
  gemm_t(ctx, *g, "fc1", *wa);
  gemm_t(ctx, *g, "fc2", *wb);
}

/* magnitude:0.5, global: floor(0.5 * 10) = 5 smallest over both layers:
 * a4 a0 b2 a2 a5. wa keeps -0.5 and 0.9; wb loses only 0.15. */
TEST(magnitude_global) {
  static const float ea[6] = {0, -0.5f, 0, 0.9f, 0, 0}, eb[4] = {2, -1, 0, 3};
  OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *wa, *wb;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    two_layers(&ctx, &g, &wa, &wb);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "magnitude:0.5", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(same(wa, ea, 6));
    ASSERT_TRUE(same(wb, eb, 4));
    ASSERT_EQ(r.nlayers, 2);
    ASSERT_TRUE(!strcmp(r.layers[0].node, "fc1") && !strcmp(r.layers[0].weight, "wa"));
    ASSERT_TRUE(!strcmp(r.layers[1].node, "fc2") && !strcmp(r.layers[1].op_type, "Gemm"));
    ASSERT_EQ(r.layers[0].elements, 6);
    ASSERT_EQ(r.layers[0].zeros_before, 0);
    ASSERT_EQ(r.layers[0].zeros_after, 4);
    ASSERT_EQ(r.layers[1].zeros_after, 1);
    ASSERT_EQ(r.elements, 10);
    ASSERT_EQ(r.zeros_after, 5);
    ASSERT_EQ(r.spec.kind, MOSS_PRUNE_MAGNITUDE);
    ASSERT_EQ(sb.count, 0);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* magnitude-layer:0.5: floor(0.5 * 6) = 3 of wa (a4 a0 a2), floor(0.5 * 4)
 * = 2 of wb (b2, b1): unlike the global rule, wb loses -1 and wa keeps 0.3. */
TEST(magnitude_per_layer) {
  static const float ea[6] = {0, -0.5f, 0, 0.9f, 0, 0.3f}, eb[4] = {2, 0, 0, 3};
  OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *wa, *wb;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    two_layers(&ctx, &g, &wa, &wb);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "magnitude-layer:0.5", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(same(wa, ea, 6));
    ASSERT_TRUE(same(wb, eb, 4));
    ASSERT_EQ(r.layers[0].zeros_after, 3);
    ASSERT_EQ(r.layers[1].zeros_after, 2);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* layer=NODE:SPEC (--budget's plans): only the layers named, each by its
 * own spec; magnitude:R within the layer. fc2 at magnitude:0.5: floor(2)
 * smallest of wb (b2, b1); fc1 untouched. Then fc1 by nm:1:3 (keep the
 * largest |w| of each row of 3: -0.5, 0.9), and the errors: a name that is
 * no layer, a layer named twice, an item that is not layer=NODE:SPEC. */
TEST(per_layer_specs) {
  static const float eb[4] = {2, 0, 0, 3}, ea[6] = {0, -0.5f, 0, 0.9f, 0, 0};
  static const char *const bad[][2] = {
      {"layer=fc3:magnitude:0.5", "layer=fc3: the model has no Conv, Gemm or MatMul node"},
      {"layer=fc1:nm:1:3,layer=fc1:magnitude:0.5", "layer=fc1 is named twice"},
      {"layer=fc1:magnitude:0.5,nm:2:4", "item 'nm:2:4' is not layer=NODE:SPEC"},
      {"layer=fc1:magnitude:1.5", "ratio '1.5' is outside [0, 1)"},
      {"layer=:magnitude:0.5", "is not layer=NODE:SPEC with a node name"}};
  moss_ctx ctx;
  sink_buf sb;
  moss_graph *g;
  moss_value *wa, *wb;
  moss_prune_result r;
  moss_prune_spec ps;
  size_t i;
  ctx_with_sink(&ctx, &sb);
  two_layers(&ctx, &g, &wa, &wb);
  ASSERT_EQ(moss_prune(&ctx, g, "layer=fc2:magnitude:0.5", &r), MOSS_OK);
  ASSERT_TRUE(same(wa, WA, 6));
  ASSERT_TRUE(same(wb, eb, 4));
  ASSERT_EQ(r.spec.kind, MOSS_PRUNE_PER_LAYER);
  ASSERT_EQ(r.zeros_after, 2);
  moss_graph_destroy(&ctx, g);
  two_layers(&ctx, &g, &wa, &wb);
  ASSERT_EQ(moss_prune(&ctx, g, "layer=fc2:magnitude:0.5,layer=fc1:nm:1:3", &r), MOSS_OK);
  ASSERT_TRUE(same(wa, ea, 6));
  ASSERT_TRUE(same(wb, eb, 4));
  moss_graph_destroy(&ctx, g);
  ASSERT_EQ(sb.count, 0);
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    two_layers(&ctx, &g, &wa, &wb);
    sb.count = 0, sb.len = 0, sb.text[0] = 0;
    ASSERT_EQ(moss_prune(&ctx, g, bad[i][0], &r), MOSS_E_INVALID_MODEL);
    ASSERT_EQ(sb.count, 1);
    if (!strstr(sb.text, bad[i][1])) FAIL_("spec '%s': got %s", bad[i][0], sb.text);
    moss_graph_destroy(&ctx, g);
  }
  ASSERT_EQ(moss_prune_parse(&ctx, "layer=a:b:block:2x2:0.5", &ps), MOSS_OK); /* NODE "a:b" */
  ASSERT_EQ(ps.kind, MOSS_PRUNE_PER_LAYER);
}

/* Ties go by position. w [1,6] = 0.5 -0.5 0.5 0.25 -0.25 1, magnitude:0.5
 * -> floor(3) smallest: 0.25 at 3, -0.25 at 4 (a tie: 3 first), then the
 * three 0.5s tie and position 0 wins. */
TEST(magnitude_ties_by_position) {
  static const float w[6] = {0.5f, -0.5f, 0.5f, 0.25f, -0.25f, 1.0f};
  static const float e[6] = {0, -0.5f, 0.5f, 0, 0, 1.0f};
  static const int64_t d[2] = {1, 6};
  OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *v;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    moss_graph_create(&ctx, &g);
    v = weight(&ctx, g, "w", 2, d, w);
    gemm_t(&ctx, g, "fc", v);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "magnitude:0.5", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(same(v, e, 6));
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* Across layers a tie goes to the earlier layer: two [1,2] layers of ones,
 * magnitude:0.5 zeroes 2 of 4, both in the first. */
TEST(magnitude_ties_across_layers) {
  static const float ones[2] = {1, 1}, zero[2] = {0, 0};
  static const int64_t d[2] = {1, 2};
  OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *a, *b;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    moss_graph_create(&ctx, &g);
    a = weight(&ctx, g, "a", 2, d, ones);
    b = weight(&ctx, g, "b", 2, d, ones);
    gemm_t(&ctx, g, "first", a);
    gemm_t(&ctx, g, "second", b);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "magnitude:0.5", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(same(a, zero, 2));
    ASSERT_TRUE(same(b, ones, 2));
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* Existing zeros (either sign) are counted before, rank first, and count
 * towards the share: w = -0 0 3 -2, magnitude:0.5 -> 2 smallest are the two
 * zeros; nothing else changes. magnitude:0.75 -> 3: -2 goes too. */
TEST(existing_zeros_count) {
  static const float w[4] = {-0.0f, 0.0f, 3.0f, -2.0f}, e[4] = {0, 0, 3, 0};
  static const int64_t d[2] = {1, 4};
  OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *v;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    moss_graph_create(&ctx, &g);
    v = weight(&ctx, g, "w", 2, d, w);
    gemm_t(&ctx, g, "fc", v);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "magnitude:0.5", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_EQ(r.layers[0].zeros_before, 2);
    ASSERT_EQ(r.layers[0].zeros_after, 2);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "magnitude:0.75", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(same(v, e, 4));
    ASSERT_EQ(r.layers[0].zeros_before, 2);
    ASSERT_EQ(r.layers[0].zeros_after, 3);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* The count is floor(R * n) from R's decimal digits: 0.57 of 100 is 57
 * (0.57 * 100 in binary floating point is 56.99999999999999), 0.34 of 10
 * is 3, 0 prunes nothing, 0.999 of 100 is 99. Weights 1..100. */
TEST(share_is_exact_floor) {
  static const int64_t d[2] = {1, 100};
  static const char *specs[4] = {"magnitude:0.57", "magnitude:.34", "magnitude:0",
                                 "magnitude:0.999"};
  static const int64_t n[4] = {100, 10, 100, 100}, want[4] = {57, 3, 0, 99};
  float w[100];
  int s, i;
  for (s = 0; s < 4; s++) OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *v;
    moss_prune_result r;
    moss_status st;
    int64_t dd[2];
    oom_ctx_with_sink(&ctx, &sb);
    moss_graph_create(&ctx, &g);
    for (i = 0; i < 100; i++) w[i] = (float)(i + 1);
    dd[0] = d[0];
    dd[1] = n[s];
    v = weight(&ctx, g, "w", 2, dd, w);
    gemm_t(&ctx, g, "fc", v);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, specs[s], &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_EQ(r.zeros_after, want[s]);
    /* the smallest are the first ones */
    ASSERT_EQ(want[s] == 0 || ((float *)v->data)[want[s] - 1] == 0.0f, 1);
    ASSERT_EQ(want[s] == n[s] || ((float *)v->data)[want[s]] != 0.0f, 1);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* block:2x2:0.5 on a Conv W [4,1,1,3], seen as [out 4, in 3]:
 *   o0: 1   1   0.1      blocks (rows {0,1},{2,3} x cols {0,1},{2}):
 *   o1: 1   1   0.1      B00 mean square 1,    B01 (edge, 2 elements) 0.01
 *   o2: 0.5 0.5 3        B10 0.25,             B11 (edge) 9
 *   o3: 0.5 0.5 3
 * floor(0.5 * 4) = 2 blocks: B01 and B10. */
TEST(block_conv_with_edge_blocks) {
  static const float w[12] = {1, 1, 0.1f, 1, 1, 0.1f, 0.5f, 0.5f, 3, 0.5f, 0.5f, 3};
  static const float e[12] = {1, 1, 0, 1, 1, 0, 0, 0, 3, 0, 0, 3};
  static const int64_t d[4] = {4, 1, 1, 3};
  OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *v;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    moss_graph_create(&ctx, &g);
    v = weight(&ctx, g, "w", 4, d, w);
    layer_node(&ctx, g, "Conv", "conv", act(&ctx, g, NULL), v, NULL, NULL, 0);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "block:2x2:0.5", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(same(v, e, 12));
    ASSERT_EQ(r.spec.block_h, 2);
    ASSERT_EQ(r.spec.block_w, 2);
    ASSERT_EQ(r.layers[0].zeros_after, 6);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* An edge block is scored by its mean square, not its plain L2 norm:
 * [2 out, 3 in] = 0.5 0.5 0.6 / 0.5 0.5 0.6, block:2x2:0.5 -> 1 of 2.
 * B00 mean square 0.25 (L2^2 1.0), B01 (edge) 0.36 (L2^2 0.72): B00 goes. */
TEST(block_edge_scored_by_mean_square) {
  static const float w[6] = {0.5f, 0.5f, 0.6f, 0.5f, 0.5f, 0.6f};
  static const float e[6] = {0, 0, 0.6f, 0, 0, 0.6f};
  static const int64_t d[4] = {2, 1, 1, 3};
  OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *v;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    moss_graph_create(&ctx, &g);
    v = weight(&ctx, g, "w", 4, d, w);
    layer_node(&ctx, g, "Conv", "conv", act(&ctx, g, NULL), v, NULL, NULL, 0);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "block:2x2:0.5", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(same(v, e, 6));
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* Edge along the out axis, and a block larger than the weight: Conv W
 * [3,1,1,1] = 0.1 0.1 0.2, block:2x1:0.5: blocks {o0,o1} (0.01) and {o2}
 * (0.04), 1 goes: the first. block:8x8:0.5: one block, floor(0.5) = 0. */
TEST(block_edge_on_out_axis) {
  static const float w[3] = {0.1f, 0.1f, 0.2f}, e[3] = {0, 0, 0.2f};
  static const int64_t d[4] = {3, 1, 1, 1};
  OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *v;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    moss_graph_create(&ctx, &g);
    v = weight(&ctx, g, "w", 4, d, w);
    layer_node(&ctx, g, "Conv", "conv", act(&ctx, g, NULL), v, NULL, NULL, 0);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "block:8x8:0.5", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(same(v, w, 3));
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "block:2x1:0.5", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(same(v, e, 3));
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* Gemm transB=0: B [K 3, N 2], the out axis is B's columns. block:2x1:0.5
 * makes one block per row of B (both outputs, one input): scores
 * row0 (1,1) 1, row1 (0.1,0.2) 0.025, row2 (3,0) 4.5; floor(1.5) = 1: row1.
 * With transB=1 the same bytes are [N 3, K 2]: blocks are two rows by one
 * column, {r0,r1} x c0 = 1 0.1 (0.505), {r0,r1} x c1 = 1 0.2 (0.52), and the
 * edge {r2} x c0 = 3 (9), {r2} x c1 = 0 (0); floor(0.5 * 4) = 2: the zero
 * block and {r0,r1} x c0. */
TEST(block_gemm_axis) {
  static const float w[6] = {1, 1, 0.1f, 0.2f, 3, 0};
  static const float e0[6] = {1, 1, 0, 0, 3, 0}, e1[6] = {0, 1, 0, 0.2f, 3, 0};
  static const int64_t d[2] = {3, 2};
  int tb;
  for (tb = 0; tb < 2; tb++) OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *v;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    moss_graph_create(&ctx, &g);
    v = weight(&ctx, g, "b", 2, d, w);
    layer_node(&ctx, g, "Gemm", "fc", act(&ctx, g, NULL), v, NULL, "transB", tb);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "block:2x1:0.5", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(same(v, tb ? e1 : e0, 6));
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* MatMul B [K 2, N 3] = 1 2 3 / 4 5 6, block:1x2:0.34: one block per output
 * column: 8.5, 14.5, 22.5; floor(1.02) = 1: column 0. */
TEST(block_matmul_columns) {
  static const float w[6] = {1, 2, 3, 4, 5, 6}, e[6] = {0, 2, 3, 0, 5, 6};
  static const int64_t d[2] = {2, 3};
  OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *v;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    moss_graph_create(&ctx, &g);
    v = weight(&ctx, g, "b", 2, d, w);
    layer_node(&ctx, g, "MatMul", "mm", act(&ctx, g, NULL), v, NULL, NULL, 0);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "block:1x2:0.34", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(same(v, e, 6));
    ASSERT_TRUE(!strcmp(r.layers[0].op_type, "MatMul"));
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* channels:1x2:0.5 on a Conv W [2 out, 3 channels, 1, 2 taps]: blocks of
 * one output x channels {0,1} or {2} at one tap, mean squares
 *   o0: t0 {1, 1} 1    t1 {0.1, 0.1} 0.01   {3} 9    {0.2} 0.04
 *   o1: t0 {.5, .5} .25  t1 {2, 2} 4        {0.3} 0.09  {4} 16
 * floor(0.5 * 8) = 4 go: 0.01, 0.04, 0.09, 0.25. The same spec on a MatMul
 * is block:1x2 (block_matmul_columns). */
TEST(channels_conv_words_and_matmul) {
  static const float w[12] = {1, 0.1f, 1, 0.1f, 3, 0.2f, 0.5f, 2, 0.5f, 2, 0.3f, 4};
  static const float e[12] = {1, 0, 1, 0, 3, 0, 0, 2, 0, 2, 0, 4};
  static const float wm[6] = {1, 2, 3, 4, 5, 6}, em[6] = {0, 2, 3, 0, 5, 6};
  static const int64_t d[4] = {2, 3, 1, 2}, dm[2] = {2, 3};
  OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *v, *vm;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    moss_graph_create(&ctx, &g);
    v = weight(&ctx, g, "w", 4, d, w);
    layer_node(&ctx, g, "Conv", "conv", act(&ctx, g, NULL), v, NULL, NULL, 0);
    vm = weight(&ctx, g, "b", 2, dm, wm);
    layer_node(&ctx, g, "MatMul", "mm", act(&ctx, g, NULL), vm, NULL, NULL, 0);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "layer=conv:channels:1x2:0.5,layer=mm:channels:1x2:0.34", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(same(v, e, 12));
    ASSERT_TRUE(same(vm, em, 6));
    ASSERT_EQ(r.nlayers, 2);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* columns:R on a Gemm, transB=1, B [N 3, K 4] (out = rows of B):
 *   1  0.1  2  -3
 *   1 -0.1  2   3      column mean squares 1, 0.01, 4, 9
 *   1  0.1  2   3
 * columns:0.5: floor(2) = 2 go, columns 1 and 0. On a Conv W [2, 1, 1, 2]
 * = 1 2 / 3 0.5, [out 2, in 2]: mean squares 5, 2.125; columns:0.5 drops
 * column 1 (one tap of every output). */
TEST(columns_gemm_and_conv) {
  static const float w[12] = {1, 0.1f, 2, -3, 1, -0.1f, 2, 3, 1, 0.1f, 2, 3};
  static const float e[12] = {0, 0, 2, -3, 0, 0, 2, 3, 0, 0, 2, 3};
  static const float wc[4] = {1, 2, 3, 0.5f}, ec[4] = {1, 0, 3, 0};
  static const int64_t d[2] = {3, 4}, dc[4] = {2, 1, 1, 2};
  OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *v, *vc;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    moss_graph_create(&ctx, &g);
    v = weight(&ctx, g, "w", 2, d, w);
    gemm_t(&ctx, g, "fc", v);
    vc = weight(&ctx, g, "wc", 4, dc, wc);
    layer_node(&ctx, g, "Conv", "conv", act(&ctx, g, NULL), vc, NULL, NULL, 0);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "columns:0.5", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(same(v, e, 12));
    ASSERT_TRUE(same(vc, ec, 4));
    ASSERT_EQ(r.spec.kind, MOSS_PRUNE_COLUMNS);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* columns-act:R weighs each column's weight mean square by its input's
 * mean square. The Gemm of columns_gemm_and_conv (column mean squares 1,
 * 0.01, 4, 9) reading inputs of mean squares 4, 200, 0, 1: scores 4, 2, 0,
 * 9, so columns:0.5 drops columns 2 and 1 (plain columns:0.5 drops 1 and
 * 0). A Conv W [1, 2, 1, 1] = 1 3 (channel mean squares 1, 9) reading
 * channels of mean squares 10 and 0.1: scores 10, 0.9, channel 1 goes (by
 * the weight alone channel 0 would). A NaN input mean square ranks last.
 * Without the inputs' mean squares, or with ones of another length, the
 * spec fails and names the input. */
TEST(columns_act_weighs_inputs) {
  static const float w[12] = {1, 0.1f, 2, -3, 1, -0.1f, 2, 3, 1, 0.1f, 2, 3};
  static const float e[12] = {1, 0, 0, -3, 1, 0, 0, 3, 1, 0, 0, 3};
  static const float wc[2] = {1, 3}, ec[2] = {1, 0};
  static const float en[12] = {0, 0, 2, -3, 0, 0, 2, 3, 0, 0, 2, 3};
  static const int64_t d[2] = {3, 4}, dc[4] = {1, 2, 1, 1};
  static double last[4] = {4, 200, 0, 1}, chan[2] = {10, 0.1};
  int k;
  for (k = 0; k < 4; k++) OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *v, *vc;
    moss_node *fc, *conv;
    moss_prune_result r;
    moss_status st;
    moss_act_power pw[16];
    double nanlast[4] = {4, 200, NAN, 1};
    oom_ctx_with_sink(&ctx, &sb);
    moss_graph_create(&ctx, &g);
    v = weight(&ctx, g, "w", 2, d, w);
    fc = gemm_t(&ctx, g, "fc", v);
    vc = weight(&ctx, g, "wc", 4, dc, wc);
    conv = layer_node(&ctx, g, "Conv", "conv", act(&ctx, g, "xc"), vc, NULL, NULL, 0);
    if (OOM_STOPPED()) goto done;
    ASSERT_TRUE(g->nvalues <= 16);
    memset(pw, 0, sizeof pw);
    pw[fc->inputs[0]->id].last = k == 2 ? nanlast : last;
    pw[fc->inputs[0]->id].nlast = k == 3 ? 3 : 4;
    pw[conv->inputs[0]->id].chan = chan;
    pw[conv->inputs[0]->id].nchan = 2;
    ASSERT_EQ(moss_prune_needs_power("columns-act:0.5"), 1);
    ASSERT_EQ(moss_prune_needs_power("layer=fc:columns-act:0.5"), 1);
    ASSERT_EQ(moss_prune_needs_power("columns:0.5"), 0);
    st = OOM_CALL(&ctx, moss_prune_act(&ctx, g, "columns-act:0.5", k == 1 ? NULL : pw,
                                       k == 1 ? 0 : g->nvalues, &r));
    if (OOM_STOPPED()) goto done;
    if (k == 1 || k == 3) { /* no mean squares; the Gemm's of 3, not 4 */
      ASSERT_EQ(st, MOSS_E_INVALID_MODEL);
      ASSERT_TRUE(strstr(sb.text, "columns-act needs --calibration DATA") != NULL);
      ASSERT_TRUE(strstr(sb.text, "no mean square of the input") != NULL);
      ASSERT_TRUE(same(v, w, 12));
      goto done;
    }
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_EQ(r.spec.kind, MOSS_PRUNE_COLUMNS_ACT);
    /* k 2: column 2's NaN ranks last: columns 1 (score 2) and 0 (4) go */
    ASSERT_TRUE(same(v, k == 2 ? en : e, 12));
    ASSERT_TRUE(same(vc, ec, 2));
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* nm:2:4 on MatMul B [K 6, N 2] (the out axis is B's last): output 0 reads
 * 1 -4 3 2 | 5 0.5, output 1 reads 2 2 -2 1 | 7 8. Group 0 of output 0
 * keeps -4 and 3; of output 1, 1 goes and of the three |2| the earliest
 * goes too. The last groups hold 2 elements: kept whole. */
TEST(nm_2_4_matmul_ties_and_short_group) {
  static const float w[12] = {1, 2, -4, 2, 3, -2, 2, 1, 5, 7, 0.5f, 8};
  static const float e[12] = {0, 0, -4, 2, 3, -2, 0, 0, 5, 7, 0.5f, 8};
  static const int64_t d[2] = {6, 2};
  OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *v;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    moss_graph_create(&ctx, &g);
    v = weight(&ctx, g, "b", 2, d, w);
    layer_node(&ctx, g, "MatMul", "mm", act(&ctx, g, NULL), v, NULL, NULL, 0);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "nm:2:4", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(same(v, e, 12));
    ASSERT_EQ(r.nlayers, 1);
    ASSERT_EQ(r.zeros_after, 4);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* nm:1:3 on the Gemm (transB=1) wa [2,3] = 0.1 -0.5 0.2 / 0.9 -0.05 0.3:
 * each row keeps its largest |w|: -0.5 and 0.9. */
TEST(nm_1_3_gemm_rows) {
  static const float e[6] = {0, -0.5f, 0, 0.9f, 0, 0};
  static const int64_t da[2] = {2, 3};
  OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *v;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    moss_graph_create(&ctx, &g);
    v = weight(&ctx, g, "wa", 2, da, WA);
    gemm_t(&ctx, g, "fc1", v);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "nm:1:3", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(same(v, e, 6));
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* Biases, int8 weights, non-constant B and other ops are never touched;
 * a graph with nothing prunable gives an empty result. */
TEST(only_weights_are_pruned) {
  static const float w[2] = {1, 2}, bias[2] = {0.001f, 0.002f};
  static const int64_t d[2] = {2, 1}, db[1] = {2};
  static const int8_t q[2] = {1, 2};
  OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *v, *b, *qv;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    moss_graph_create(&ctx, &g);
    v = weight(&ctx, g, "w", 2, d, w);
    b = weight(&ctx, g, "bias", 1, db, bias);
    qv = moss_graph_add_constant(&ctx, g, "q", MOSS_DT_I8, 2, d, q);
    layer_node(&ctx, g, "Gemm", "fc", act(&ctx, g, NULL), v, b, "transB", 1);
    layer_node(&ctx, g, "MatMul", "mm", act(&ctx, g, NULL), act(&ctx, g, NULL), NULL, NULL, 0);
    layer_node(&ctx, g, "MatMul", "qmm", act(&ctx, g, NULL), qv, NULL, NULL, 0);
    layer_node(&ctx, g, "Add", "add", act(&ctx, g, NULL), b, NULL, NULL, 0);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "magnitude:0.5", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_EQ(r.nlayers, 1);
    ASSERT_TRUE(!strcmp(r.layers[0].weight, "w"));
    ASSERT_TRUE(same(b, bias, 2));
    ASSERT_EQ(((int8_t *)qv->data)[0], 1);
    moss_graph_destroy(&ctx, g);

    moss_graph_create(&ctx, &g);
    layer_node(&ctx, g, "Relu", "relu", act(&ctx, g, NULL), NULL, NULL, NULL, 0);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "block:4x1:0.5", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_EQ(r.nlayers, 0);
    ASSERT_TRUE(r.layers == NULL);
    ASSERT_EQ(sb.count, 0);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* A weight shared by two nodes is pruned once and listed once, under the
 * first node: [1,4] = 4 3 2 1, magnitude:0.5 -> 2 and 1 go (not 4 and 3,
 * as pruning twice would do). */
TEST(shared_weight_pruned_once) {
  static const float w[4] = {4, 3, 2, 1}, e[4] = {4, 3, 0, 0};
  static const int64_t d[2] = {1, 4};
  OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *v;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    moss_graph_create(&ctx, &g);
    v = weight(&ctx, g, "w", 2, d, w);
    gemm_t(&ctx, g, "fc1", v);
    gemm_t(&ctx, g, "fc2", v);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "magnitude:0.5", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_EQ(r.nlayers, 1);
    ASSERT_TRUE(!strcmp(r.layers[0].node, "fc1"));
    ASSERT_TRUE(same(v, e, 4));
    ASSERT_TRUE(g->nodes[0]->inputs[1] == v && g->nodes[1]->inputs[1] == v);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* A weight that is also read as data (here by an Add) or is a graph output
 * keeps its values there; the weight slots get a pruned copy. */
TEST(weight_also_used_as_data_is_copied) {
  static const float w[4] = {4, 3, 2, 1}, e[4] = {4, 3, 0, 0};
  static const int64_t d[2] = {1, 4};
  int variant;
  for (variant = 0; variant < 2; variant++) OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *v;
    moss_node *fc, *add = NULL;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    moss_graph_create(&ctx, &g);
    v = weight(&ctx, g, "w", 2, d, w);
    fc = gemm_t(&ctx, g, "fc", v);
    if (variant == 0) {
      add = layer_node(&ctx, g, "Add", "add", act(&ctx, g, NULL), v, NULL, NULL, 0);
    } else {
      g->outputs = moss_graph_alloc(g, sizeof(moss_value *));
      g->outputs[g->noutputs++] = v;
      v->output_index = 0;
    }
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "magnitude:0.5", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(same(v, w, 4));
    ASSERT_TRUE(fc->inputs[1] != v);
    ASSERT_TRUE(!strcmp(fc->inputs[1]->name, "w.pruned"));
    ASSERT_TRUE(same(fc->inputs[1], e, 4));
    ASSERT_TRUE(!strcmp(r.layers[0].weight, "w.pruned"));
    if (add) ASSERT_TRUE(add->inputs[1] == v);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* Every malformed spec: one diagnostic, the whole text checked, and the
 * graph left alone. */
TEST(bad_specs) {
  static const struct {
    const char *spec, *reason;
  } cases[] = {
      {"", "--prune '': empty spec"},
      {"foo:0.5", "--prune 'foo:0.5': unknown kind 'foo'"},
      {"Magnitude:0.5", "--prune 'Magnitude:0.5': unknown kind 'Magnitude'"},
      {"magnitude", "--prune 'magnitude': missing :R"},
      {"block", "--prune 'block': missing :HxW:R"},
      {"block:4x1", "--prune 'block:4x1': missing ':R' after the block shape"},
      {"magnitude:", "--prune 'magnitude:': ratio '' is not a plain decimal number"},
      {"magnitude:.", "--prune 'magnitude:.': ratio '.' is not a plain decimal number"},
      {"magnitude:abc", "--prune 'magnitude:abc': ratio 'abc' is not a plain decimal number"},
      {"magnitude:0.5x", "--prune 'magnitude:0.5x': ratio '0.5x' is not a plain decimal number"},
      {"magnitude: 0.5", "--prune 'magnitude: 0.5': ratio ' 0.5' is not a plain decimal number"},
      {"magnitude:-0.1", "--prune 'magnitude:-0.1': ratio '-0.1' is not a plain decimal number"},
      {"magnitude:1e-1", "--prune 'magnitude:1e-1': ratio '1e-1' is not a plain decimal number"},
      {"magnitude:1", "--prune 'magnitude:1': ratio '1' is outside [0, 1)"},
      {"magnitude-layer:1.0", "--prune 'magnitude-layer:1.0': ratio '1.0' is outside [0, 1)"},
      {"magnitude:2.5", "--prune 'magnitude:2.5': ratio '2.5' is outside [0, 1)"},
      {"magnitude:0.1234567891",
       "--prune 'magnitude:0.1234567891': ratio '0.1234567891' has more than 9 decimals"},
      {"magnitude:0.5:1", "--prune 'magnitude:0.5:1': trailing ':1' after the ratio"},
      {"block:4x1:0.5:7", "--prune 'block:4x1:0.5:7': trailing ':7' after the ratio"},
      {"block:0x4:0.5",
       "--prune 'block:0x4:0.5': block shape '0x4' is not HxW with whole numbers "
       "1 <= H, W <= 4096"},
      {"block:4:0.5",
       "--prune 'block:4:0.5': block shape '4' is not HxW with whole numbers 1 <= H, W <= 4096"},
      {"block:4x:0.5",
       "--prune 'block:4x:0.5': block shape '4x' is not HxW with whole numbers 1 <= H, W <= 4096"},
      {"block:4x1x2:0.5", "--prune 'block:4x1x2:0.5': block shape '4x1x2' is not HxW with whole "
                          "numbers 1 <= H, W <= 4096"},
      {"block:5000x1:0.5", "--prune 'block:5000x1:0.5': block shape '5000x1' is not HxW with "
                           "whole numbers 1 <= H, W <= 4096"},
      {"block:4X1:0.5",
       "--prune 'block:4X1:0.5': block shape '4X1' is not HxW with whole numbers "
       "1 <= H, W <= 4096"},
      {"block:4x1:1", "--prune 'block:4x1:1': ratio '1' is outside [0, 1)"},
      {"channels", "--prune 'channels': missing :HxC:R"},
      {"channels:4x4", "--prune 'channels:4x4': missing ':R' after the block shape"},
      {"channels:4:0.5",
       "--prune 'channels:4:0.5': block shape '4' is not HxC with whole numbers 1 <= H, C <= 4096"},
      {"channels:1x4:1", "--prune 'channels:1x4:1': ratio '1' is outside [0, 1)"},
      {"columns", "--prune 'columns': missing :R"},
      {"columns:1x4:0.5", "--prune 'columns:1x4:0.5': trailing ':0.5' after the ratio"},
      {"columns-act", "--prune 'columns-act': missing :R"},
      {"columns-act:1", "--prune 'columns-act:1': ratio '1' is outside [0, 1)"},
      {"columns-actx:0.5", "--prune 'columns-actx:0.5': unknown kind 'columns-actx'"},
      {"nm", "--prune 'nm': missing :N:M"},
      {"nm:2", "--prune 'nm:2': '2' is not N:M with whole numbers 1 <= N < M <= 64"},
      {"nm:4:4", "--prune 'nm:4:4': '4:4' is not N:M with whole numbers 1 <= N < M <= 64"},
      {"nm:0:4", "--prune 'nm:0:4': '0:4' is not N:M with whole numbers 1 <= N < M <= 64"},
      {"nm:2:65", "--prune 'nm:2:65': '2:65' is not N:M with whole numbers 1 <= N < M <= 64"},
      {"nm:2:4:0.5",
       "--prune 'nm:2:4:0.5': '2:4:0.5' is not N:M with whole numbers 1 <= N < M <= 64"},
      {"nm:2x4", "--prune 'nm:2x4': '2x4' is not N:M with whole numbers 1 <= N < M <= 64"},
  };
  static const float w[4] = {4, 3, 2, 1};
  static const int64_t d[2] = {1, 4};
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *v;
    moss_prune_result r;
    moss_status st;
    moss_prune_spec ps;
    char want[512];
    oom_ctx_with_sink(&ctx, &sb);
    ctx.file = "net.onnx";
    moss_graph_create(&ctx, &g);
    v = weight(&ctx, g, "w", 2, d, w);
    gemm_t(&ctx, g, "fc", v);
    snprintf(want, sizeof want,
             "net.onnx: invalid-model: %s; expected magnitude:R, magnitude-layer:R, "
             "block:HxW:R, channels:HxC:R, columns:R or columns-act:R with 0 <= R < 1, or "
             "nm:N:M with 1 <= N < M <= 64 [prune.c:",
             cases[i].reason);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, cases[i].spec, &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_E_INVALID_MODEL);
    ASSERT_EQ(sb.count, 1);
    if (strncmp(sb.text, want, strlen(want)) != 0)
      FAIL_("spec '%s':\n    got  %s    want %s...", cases[i].spec, sb.text, want);
    ASSERT_TRUE(same(v, w, 4));
    ASSERT_EQ(r.nlayers, 0);
    ASSERT_EQ(moss_prune_parse(&ctx, cases[i].spec, &ps), MOSS_E_INVALID_MODEL);
    ASSERT_EQ(sb.count, 2);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* Good specs parse to what they say. */
TEST(good_specs) {
  moss_ctx ctx;
  sink_buf sb;
  moss_prune_spec s;
  ctx_with_sink(&ctx, &sb);
  ASSERT_EQ(moss_prune_parse(&ctx, "magnitude:0.8", &s), MOSS_OK);
  ASSERT_EQ(s.kind, MOSS_PRUNE_MAGNITUDE);
  ASSERT_EQ(s.ratio_num, 8);
  ASSERT_EQ(s.ratio_den, 10);
  ASSERT_NEAR(s.ratio, 0.8, 1e-12);
  ASSERT_EQ(moss_prune_parse(&ctx, "magnitude-layer:0", &s), MOSS_OK);
  ASSERT_EQ(s.kind, MOSS_PRUNE_MAGNITUDE_LAYER);
  ASSERT_EQ(s.ratio_num, 0);
  ASSERT_EQ(moss_prune_parse(&ctx, "block:4x1:0.875", &s), MOSS_OK);
  ASSERT_EQ(s.kind, MOSS_PRUNE_BLOCK);
  ASSERT_EQ(s.block_h, 4);
  ASSERT_EQ(s.block_w, 1);
  ASSERT_EQ(s.ratio_num, 875);
  ASSERT_EQ(s.ratio_den, 1000);
  ASSERT_EQ(moss_prune_parse(&ctx, "block:4096x16:0.999999999", &s), MOSS_OK);
  ASSERT_EQ(s.ratio_num, 999999999);
  ASSERT_EQ(moss_prune_parse(&ctx, "magnitude:00.5", &s), MOSS_OK);
  ASSERT_EQ(s.ratio_num, 5);
  ASSERT_EQ(moss_prune_parse(&ctx, "nm:2:4", &s), MOSS_OK);
  ASSERT_EQ(s.kind, MOSS_PRUNE_NM);
  ASSERT_EQ(s.nm_n, 2);
  ASSERT_EQ(s.nm_m, 4);
  ASSERT_NEAR(s.ratio, 0.5, 0.0);
  ASSERT_EQ(moss_prune_parse(&ctx, "nm:1:64", &s), MOSS_OK);
  ASSERT_EQ(s.nm_m, 64);
  ASSERT_EQ(sb.count, 0);
}

/* The text lines the driver prints. */
TEST(emit_text) {
  OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *wa, *wb;
    moss_prune_result r;
    moss_status st;
    moss_buf b;
    oom_ctx_with_sink(&ctx, &sb);
    two_layers(&ctx, &g, &wa, &wb);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, "magnitude:0.5", &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    moss_buf_init(&b, &ctx);
    moss_prune_emit_text(&r, &b);
    ASSERT_TRUE(b.data != NULL);
    ASSERT_STR_CONTAINS(b.data,
                        "prune fc1 (Gemm) wa: 6 weights, 0 zero before, 4 after (66.7% sparse)\n"
                        "prune fc2 (Gemm) wb: 4 weights, 0 zero before, 1 after (25.0% sparse)\n"
                        "prune total: 10 weights in 2 layers, 0 zero before, 5 after "
                        "(50.0% sparse)\n");
    moss_buf_deinit(&b);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* ---- allocation failures ---- */

/* Every spec kind on the copy path too (wb is also read by an Add), with
 * allocation N failing for N = 1, 2, ... until it completes: out-of-memory
 * and nothing leaked, or success with the hand-derived counts.
 * block:1x2:0.5 on wa [2 out, 3 in]: blocks {0,1},{2} per row, mean squares
 * 0.13, 0.04 / 0.406, 0.09 -> the two single-element edge blocks go (2
 * zeros); on wb [2,2]: rows 2.5 / 4.51 -> row 0 goes (2 zeros). */
TEST(allocation_failures) {
  static const char *specs[3] = {"magnitude:0.5", "magnitude-layer:0.5", "block:1x2:0.5"};
  int s;
  for (s = 0; s < 3; s++) OOM_LOOP {
    moss_ctx ctx;
    sink_buf sb;
    moss_graph *g;
    moss_value *wa, *wb;
    moss_prune_result r;
    moss_status st;
    oom_ctx_with_sink(&ctx, &sb);
    two_layers(&ctx, &g, &wa, &wb);
    layer_node(&ctx, g, "Add", "add", act(&ctx, g, NULL), wb, NULL, NULL, 0);
    st = OOM_CALL(&ctx, moss_prune(&ctx, g, specs[s], &r));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_EQ(r.nlayers, 2);
    ASSERT_EQ(r.zeros_after, s == 2 ? 4 : 5); /* block: 2 + 2 (see above) */
  done:
    moss_graph_destroy(&ctx, g);
  }
}

TEST_MAIN()
