/* test_partition.c - placing nodes on devices (compiler/passes/partition.c)
 * for the fixture target tests/unit/data/partition/accel.xml: an "acc"
 * device listed first that takes f32 Conv (kernels 1 or 3, stride 1, at
 * most 64 channels), Relu and Add, and a cpu fallback. The expected device
 * of every node follows from those lines of the XML by hand. Each test runs
 * the pass with allocation N failing, N = 1, 2, ... (oom.h). */
#include <string.h>

#include "graph_build.h"
#include "harness.h"
#include "oom.h"
#include "passes/partition.h"

/* A constant Conv weight [cout, cin, k, k] (zeros: only the shape matters). */
static moss_value *weight(moss_ctx *ctx, moss_graph *g, const char *name, int64_t cout,
                          int64_t cin, int64_t k) {
  int64_t dims[4];
  dims[0] = cout;
  dims[1] = cin;
  dims[2] = k;
  dims[3] = k;
  moss_value *w = val(ctx, g, name, 4, dims);
  w->data = moss_graph_alloc(g, (size_t)(cout * cin * k * k) * 4);
  return w;
}

static void set_stride(moss_graph *g, moss_node *n, int64_t s) {
  n->attrs = moss_graph_alloc(g, sizeof *n->attrs);
  n->attrs[0].name = "strides";
  n->attrs[0].type = MOSS_ATTR_INTS;
  n->attrs[0].ints = moss_graph_alloc(g, 2 * sizeof(int64_t));
  n->attrs[0].ints[0] = n->attrs[0].ints[1] = s;
  n->attrs[0].n = 2;
  n->nattrs = 1;
}

/* x[1,8,16,16] -> conv3 (3x3, 8->16) -> relu -> conv5 (5x5: not 1 or 3)
 *   -> conv1s2 (1x1, stride 2: not stride 1) -> conv_wide (1x1, 16->128:
 *   over 64 channels) -> softmax (not listed) -> add (listed) -> y.
 * Expected: acc acc | cpu cpu cpu cpu | acc; segments 0 0 1 1 1 1 2. */
TEST(first_device_that_takes_it_else_fallback) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_target *t;
    moss_partition_opts o;
    int nseg = -1, i;
    int64_t d8[4] = {1, 8, 16, 16}, d16[4] = {1, 16, 16, 16}, d16s[4] = {1, 16, 8, 8};
    int64_t d128[4] = {1, 128, 8, 8};
    moss_value *x, *a, *b, *c, *e, *f, *h, *y;
    moss_node *n[7];
    static const int want_dev[7] = {0, 0, 1, 1, 1, 1, 0};
    static const int want_seg[7] = {0, 0, 1, 1, 1, 1, 2};
    oom_ctx_init(&ctx);
    ASSERT_EQ(moss_target_load(&ctx, MOSS_TEST_DATA_DIR "/partition/accel.xml", &t), MOSS_OK);
    ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
    x = val(&ctx, g, "x", 4, d8);
    a = val(&ctx, g, "a", 4, d16);
    b = val(&ctx, g, "b", 4, d16);
    c = val(&ctx, g, "c", 4, d16);
    e = val(&ctx, g, "e", 4, d16s);
    f = val(&ctx, g, "f", 4, d128);
    h = val(&ctx, g, "h", 4, d128);
    y = val(&ctx, g, "y", 4, d128);
    n[0] = node2(&ctx, g, "Conv", "conv3", x, weight(&ctx, g, "w3", 16, 8, 3), a);
    n[1] = node2(&ctx, g, "Relu", "relu", a, NULL, b);
    n[2] = node2(&ctx, g, "Conv", "conv5", b, weight(&ctx, g, "w5", 16, 16, 5), c);
    n[3] = node2(&ctx, g, "Conv", "conv1s2", c, weight(&ctx, g, "w1", 16, 16, 1), e);
    set_stride(g, n[3], 2);
    n[4] = node2(&ctx, g, "Conv", "conv_wide", e, weight(&ctx, g, "ww", 128, 16, 1), f);
    n[5] = node2(&ctx, g, "Softmax", "softmax", f, NULL, h);
    n[6] = node2(&ctx, g, "Add", "add", h, h, y);
    memset(&o, 0, sizeof o);
    o.target = t;
    o.devices = NULL;
    OOM_CHECK(&ctx, moss_partition(&ctx, g, &o, &nseg), MOSS_OK, done);
    ASSERT_EQ(nseg, 3);
    for (i = 0; i < 7; i++) {
      if (n[i]->device != want_dev[i] || n[i]->segment != want_seg[i])
        FAIL_("node %s: device %d segment %d, expected %d %d (%s)", n[i]->name, n[i]->device,
              n[i]->segment, want_dev[i], want_seg[i], n[i]->placement);
    }
    ASSERT_STR_CONTAINS(n[0]->placement, "first device that takes Conv f32");
    ASSERT_STR_CONTAINS(n[2]->placement, "first device that takes Conv f32");
    ASSERT_STR_CONTAINS(n[2]->placement, "acc declined");
    ASSERT_STR_CONTAINS(n[2]->placement, "5");
    ASSERT_STR_CONTAINS(n[3]->placement, "stride");
    ASSERT_STR_CONTAINS(n[4]->placement, "128");
    ASSERT_STR_CONTAINS(n[5]->placement, "Softmax");
    ASSERT_EQ(moss_target_host_device(t), 1);
    ASSERT_EQ(moss_value_device(x, 1), 1);
    ASSERT_EQ(moss_value_device(b, 1), 0);
  done:
    moss_graph_destroy(&ctx, g);
    moss_target_destroy(&ctx, t);
  }
}

/* A target whose only device takes nothing of the graph and has no
 * fallback: the partition fails and names the node. */
TEST(no_device_and_no_fallback_fails) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_target *t;
    moss_partition_opts o;
    int nseg;
    int64_t d[1] = {4};
    moss_value *x, *y;
    char last[1024] = "";
    oom_ctx_init(&ctx);
    ASSERT_EQ(moss_target_load(&ctx, MOSS_TEST_DATA_DIR "/partition/only_acc.xml", &t), MOSS_OK);
    ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
    x = val(&ctx, g, "x", 1, d);
    y = val(&ctx, g, "y", 1, d);
    node2(&ctx, g, "Softmax", "sm", x, NULL, y);
    memset(&o, 0, sizeof o);
    o.target = t;
    o.devices = NULL;
    OOM_CHECK(&ctx, moss_partition(&ctx, g, &o, &nseg), MOSS_E_UNSUPPORTED, done);
    snprintf(last, sizeof last, "%s", ctx.last);
    ASSERT_STR_CONTAINS(last, "node 'sm' (Softmax)");
    ASSERT_STR_CONTAINS(last, "no fallback");
  done:
    moss_graph_destroy(&ctx, g);
    moss_target_destroy(&ctx, t);
  }
}

/* listed_cpu.xml: acc takes Relu, the cpu lists only Add; Softmax is taken
 * by neither, so it goes to the fallback (the cpu) with both reasons. */
TEST(fallback_when_no_device_takes_it) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_target *t;
    moss_partition_opts o;
    int nseg;
    int64_t d[1] = {4};
    moss_value *x, *a, *y;
    moss_node *relu, *sm;
    oom_ctx_init(&ctx);
    ASSERT_EQ(moss_target_load(&ctx, MOSS_TEST_DATA_DIR "/partition/listed_cpu.xml", &t), MOSS_OK);
    ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
    x = val(&ctx, g, "x", 1, d);
    a = val(&ctx, g, "a", 1, d);
    y = val(&ctx, g, "y", 1, d);
    relu = node2(&ctx, g, "Relu", "relu", x, NULL, a);
    sm = node2(&ctx, g, "Softmax", "sm", a, NULL, y);
    memset(&o, 0, sizeof o);
    o.target = t;
    o.devices = NULL;
    OOM_CHECK(&ctx, moss_partition(&ctx, g, &o, &nseg), MOSS_OK, done);
    ASSERT_EQ(nseg, 2);
    ASSERT_EQ(relu->device, 0);
    ASSERT_EQ(sm->device, 1);
    ASSERT_STR_CONTAINS(sm->placement, "fallback: acc declined");
    ASSERT_STR_CONTAINS(sm->placement, "cpu declined");
  done:
    moss_graph_destroy(&ctx, g);
    moss_target_destroy(&ctx, t);
  }
}

/* rates.xml: the npu has no <ops> list but gives MAC rates for i8 only:
 * a float MatMul is declined there (no f32 rate) and runs on the cpu, while
 * a float Relu (not a MAC op) stays on the npu. */
TEST(mac_op_needs_a_rate_for_its_dtype) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_target *t;
    moss_partition_opts o;
    int nseg;
    int64_t d[2] = {2, 2};
    moss_value *x, *w, *a, *y;
    moss_node *mm, *relu;
    oom_ctx_init(&ctx);
    ASSERT_EQ(moss_target_load(&ctx, MOSS_TEST_DATA_DIR "/partition/rates.xml", &t), MOSS_OK);
    ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
    x = val(&ctx, g, "x", 2, d);
    w = val(&ctx, g, "w", 2, d);
    w->data = moss_graph_alloc(g, 16);
    a = val(&ctx, g, "a", 2, d);
    y = val(&ctx, g, "y", 2, d);
    mm = node2(&ctx, g, "MatMul", "mm", x, w, a);
    relu = node2(&ctx, g, "Relu", "relu", a, NULL, y);
    memset(&o, 0, sizeof o);
    o.target = t;
    o.devices = NULL;
    OOM_CHECK(&ctx, moss_partition(&ctx, g, &o, &nseg), MOSS_OK, done);
    ASSERT_EQ(mm->device, 1);
    ASSERT_STR_CONTAINS(mm->placement, "npu declined: no f32 MAC rate");
    ASSERT_EQ(relu->device, 0);
    ASSERT_EQ(nseg, 2);
  done:
    moss_graph_destroy(&ctx, g);
    moss_target_destroy(&ctx, t);
  }
}

TEST_MAIN()
