/* test_fit.c - sizes against the target and size arithmetic that cannot
 * overflow: the checked int64 helpers (base/memory.c), a value's checked
 * size (ir/graph.c), the planner's offsets (plan/plan.c) and the plan
 * against the memories a target declares (plan/fit.c), on hand-built
 * graphs. Every expected figure is worked out in the comments from the
 * shapes and from the target files: cortex-m7.xml (sram 1048576 B, flash
 * 2097152 B read-only), cost/cost-two.xml (cpu: dram 1048576 B; npu0: buf
 * 4096 B), c99.xml (no sizes). */
#include <stdint.h>
#include <string.h>

#include "diag_sink.h"
#include "graph_build.h"
#include "harness.h"
#include "plan/plan.h"
#include "target/target.h"

#define COST_DATA MOSS_TEST_DATA_DIR "/cost/"

static unsigned char weight_bytes[1]; /* v->data of made-up weights: never read */

static moss_value *vec(moss_ctx *ctx, moss_graph *g, const char *name, int64_t n) {
  return val(ctx, g, name, 1, &n);
}

static moss_value *weight(moss_ctx *ctx, moss_graph *g, const char *name, int64_t n) {
  moss_value *v = vec(ctx, g, name, n);
  v->data = weight_bytes;
  return v;
}

static void set_io(moss_graph *g, moss_value *x, moss_value *y) {
  g->inputs = moss_graph_alloc(g, sizeof(moss_value *));
  g->outputs = moss_graph_alloc(g, sizeof(moss_value *));
  x->input_index = 0;
  g->inputs[g->ninputs++] = x;
  y->output_index = 0;
  g->outputs[g->noutputs++] = y;
}

/* Plans |g| and checks it against target |name|; the diagnostics in |b|. */
static moss_status plan_and_fit(moss_ctx *ctx, moss_graph *g, const char *name) {
  moss_target *t;
  int64_t arena;
  moss_status st = moss_target_load(ctx, name, &t);
  if (st != MOSS_OK) return MOSS_E_INTERNAL; /* the fixture itself is broken */
  st = moss_plan_compute(ctx, g, &arena);
  if (st == MOSS_OK) st = moss_plan_check_memory(ctx, g, t, arena);
  moss_target_destroy(ctx, t);
  return st;
}

TEST(checked_int64_arithmetic) {
  int64_t r = 0;
  ASSERT_EQ(moss_i64_add(INT64_MAX - 1, 1, &r), 1);
  ASSERT_EQ(r, INT64_MAX);
  ASSERT_EQ(moss_i64_add(INT64_MAX, 1, &r), 0);
  ASSERT_EQ(moss_i64_add(-1, 1, &r), 0);
  ASSERT_EQ(moss_i64_mul((int64_t)1 << 31, (int64_t)1 << 31, &r), 1); /* 2^62 */
  ASSERT_EQ(r, (int64_t)1 << 62);
  ASSERT_EQ(moss_i64_mul((int64_t)1 << 32, (int64_t)1 << 31, &r), 0); /* 2^63 */
  ASSERT_EQ(moss_i64_mul(0, INT64_MAX, &r), 1);
  ASSERT_EQ(r, 0);
}

/* f32 [2^62] is 2^64 bytes: moss_value_nbytes says 0 (as for an empty
 * tensor), the checked size -1. [2^61] is 2^63 bytes, one more than
 * INT64_MAX: -1. [2^60] is 2^62 bytes. [0, 2^40, 2^40] has no element but
 * a stride of 2^80. */
TEST(value_size_is_checked) {
  moss_ctx ctx;
  moss_graph *g;
  int64_t d3[3] = {0, (int64_t)1 << 40, (int64_t)1 << 40}, d2[2] = {3, 0};
  moss_value *v;
  moss_ctx_init(&ctx, moss_allocator_libc());
  ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
  v = vec(&ctx, g, "a", (int64_t)1 << 62);
  ASSERT_EQ(moss_value_nbytes(v), 0);
  ASSERT_EQ(moss_value_nbytes_checked(v), -1);
  ASSERT_EQ(moss_value_nbytes_checked(vec(&ctx, g, "a2", (int64_t)1 << 61)), -1);
  v = vec(&ctx, g, "b", (int64_t)1 << 60);
  ASSERT_EQ(moss_value_nbytes_checked(v), (int64_t)1 << 62);
  ASSERT_EQ(moss_value_nbytes_checked(val(&ctx, g, "c", 3, d3)), -1);
  ASSERT_EQ(moss_value_nbytes_checked(val(&ctx, g, "d", 2, d2)), 0);
  v = vec(&ctx, g, "e", 1);
  v->rank = -1;
  ASSERT_EQ(moss_value_nbytes_checked(v), -1);
  moss_graph_destroy(&ctx, g);
}

/* x[1] -> Relu a[2^62] -> Relu y[1]: a is 2^64 bytes, which used to wrap to
 * 0 and be planned in a 64-byte slot. */
TEST(planner_refuses_a_size_that_overflows) {
  moss_ctx ctx;
  sink_buf b;
  moss_graph *g;
  moss_value *x, *a, *y;
  int64_t arena = -1;
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
  x = vec(&ctx, g, "x", 1);
  a = vec(&ctx, g, "a", (int64_t)1 << 62);
  y = vec(&ctx, g, "y", 1);
  set_io(g, x, y);
  node2(&ctx, g, "Relu", "r0", x, NULL, a);
  node2(&ctx, g, "Relu", "r1", a, NULL, y);
  ASSERT_EQ(moss_plan_compute(&ctx, g, &arena), MOSS_E_INVALID_MODEL);
  ASSERT_EQ(arena, 0);
  ASSERT_STR_CONTAINS(b.text, "node 'r0' (Relu): invalid-model: output 'a'");
  moss_graph_destroy(&ctx, g);
}

/* x -> Relu a[2^60], x -> Relu b[2^60], Add(a, b) -> y: a and b (2^62
 * bytes each) are live together, so b goes at 2^62 and ends at 2^63,
 * past INT64_MAX: the arena would have wrapped negative. */
TEST(planner_refuses_an_arena_that_overflows) {
  moss_ctx ctx;
  sink_buf b;
  moss_graph *g;
  moss_value *x, *a, *c, *y;
  int64_t arena = -1;
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
  x = vec(&ctx, g, "x", 1);
  a = vec(&ctx, g, "a", (int64_t)1 << 60);
  c = vec(&ctx, g, "b", (int64_t)1 << 60);
  y = vec(&ctx, g, "y", (int64_t)1 << 60);
  set_io(g, x, y);
  node2(&ctx, g, "Relu", "r0", x, NULL, a);
  node2(&ctx, g, "Relu", "r1", x, NULL, c);
  node2(&ctx, g, "Add", "add", a, c, y);
  ASSERT_EQ(moss_plan_compute(&ctx, g, &arena), MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(b.text, "node 'r1' (Relu): invalid-model: the arena overflows 64 bits");
  moss_graph_destroy(&ctx, g);
}

/* cortex-m7: x[16] -> Relu a[300000] -> Relu y[16]. a is 1200000 bytes, more
 * than the 1048576 of sram, the outermost level that is not read-only; the
 * arena (a's 1200000 rounded to 64: 1200000) too. */
TEST(buffer_larger_than_sram_is_refused) {
  moss_ctx ctx;
  sink_buf b;
  moss_graph *g;
  moss_value *x, *a, *y;
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
  x = vec(&ctx, g, "x", 16);
  a = vec(&ctx, g, "a", 300000);
  y = vec(&ctx, g, "y", 16);
  set_io(g, x, y);
  node2(&ctx, g, "Relu", "r0", x, NULL, a);
  node2(&ctx, g, "Relu", "r1", a, NULL, y);
  ASSERT_EQ(plan_and_fit(&ctx, g, "cortex-m7"), MOSS_E_TARGET);
  ASSERT_STR_CONTAINS(b.text, "node 'r0' (Relu): target: buffer 'a': 1200000 bytes (1.14 MiB) "
                      "do not fit in memory level 'sram' of device 'cpu', which holds 1048576 "
                      "bytes (1 MiB, datasheet; target 'cortex-m7', ");
  ASSERT_STR_CONTAINS(b.text, "cortex-m7.xml)");
  ASSERT_STR_CONTAINS(b.text, "target: the arena: 1200000 bytes");
  ASSERT_EQ(b.count, 2);
  moss_graph_destroy(&ctx, g);
}

/* cortex-m7: x[16] -> Relu y[300000], a graph output: the arena is empty
 * (the output lives in the caller's buffer), but y's 1200000 bytes must be
 * somewhere writable. */
TEST(graph_outputs_are_counted) {
  moss_ctx ctx;
  sink_buf b;
  moss_graph *g;
  moss_value *x, *y;
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
  x = vec(&ctx, g, "x", 16);
  y = vec(&ctx, g, "y", 300000);
  set_io(g, x, y);
  node2(&ctx, g, "Relu", "r0", x, NULL, y);
  ASSERT_EQ(plan_and_fit(&ctx, g, "cortex-m7"), MOSS_E_TARGET);
  ASSERT_STR_CONTAINS(b.text, "node 'r0' (Relu): target: graph output 'y': 1200000 bytes");
  ASSERT_STR_CONTAINS(b.text, "'sram' of device 'cpu'");
  moss_graph_destroy(&ctx, g);
}

/* cortex-m7: Mul(x[16], W[400000]) -> y[16]. W is 1600000 bytes: too big
 * for sram, but weights live in flash (2097152 bytes, read-only): it fits.
 * With W[600000] (2400000 bytes) it does not: the weight and the weights. */
TEST(weights_go_to_flash) {
  moss_ctx ctx;
  sink_buf b;
  moss_graph *g;
  moss_value *x, *w, *y;
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
  x = vec(&ctx, g, "x", 16);
  w = weight(&ctx, g, "W", 400000);
  y = vec(&ctx, g, "y", 16);
  set_io(g, x, y);
  node2(&ctx, g, "Mul", "mul", x, w, y);
  ASSERT_EQ(plan_and_fit(&ctx, g, "cortex-m7"), MOSS_OK);
  ASSERT_EQ(b.count, 0);
  w->dims[0] = 600000;
  ASSERT_EQ(plan_and_fit(&ctx, g, "cortex-m7"), MOSS_E_TARGET);
  ASSERT_STR_CONTAINS(b.text, "node 'mul' (Mul): target: weight 'W': 2400000 bytes (2.29 MiB) do "
                      "not fit in memory level 'flash' of device 'cpu', which holds 2097152 bytes");
  ASSERT_STR_CONTAINS(b.text, "target: the weights: 2400000 bytes");
  moss_graph_destroy(&ctx, g);
}

/* cost-two: x[16] on the cpu -> Relu a[2048] on npu0 -> Relu y[16] on the
 * cpu. a (8192 bytes) fits the cpu's dram but not npu0's 4096-byte buf; a
 * second graph: Mul(x, W[2000]) on npu0: W is 8000 bytes. */
TEST(each_device_has_its_own_memory) {
  moss_ctx ctx;
  sink_buf b;
  moss_graph *g;
  moss_value *x, *a, *w, *y;
  moss_node *n;
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
  x = vec(&ctx, g, "x", 16);
  a = vec(&ctx, g, "a", 2048);
  y = vec(&ctx, g, "y", 16);
  set_io(g, x, y);
  n = node2(&ctx, g, "Relu", "r0", x, NULL, a);
  n->device = 1;
  node2(&ctx, g, "Relu", "r1", a, NULL, y)->device = 0;
  ASSERT_EQ(plan_and_fit(&ctx, g, COST_DATA "cost-two.xml"), MOSS_E_TARGET);
  ASSERT_STR_CONTAINS(b.text, "node 'r0' (Relu): target: buffer 'a': 8192 bytes (8 KiB) do not fit "
                      "in memory level 'buf' of device 'npu0', which holds 4096 bytes");
  ASSERT_STR_CONTAINS(b.text, "cost-two.xml)");
  ASSERT_EQ(b.count, 1);
  moss_graph_destroy(&ctx, g);

  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
  x = vec(&ctx, g, "x", 16);
  w = weight(&ctx, g, "W", 2000);
  y = vec(&ctx, g, "y", 16);
  set_io(g, x, y);
  node2(&ctx, g, "Mul", "mul", x, w, y)->device = 1;
  ASSERT_EQ(plan_and_fit(&ctx, g, COST_DATA "cost-two.xml"), MOSS_E_TARGET);
  ASSERT_STR_CONTAINS(b.text, "node 'mul' (Mul): target: weight 'W': 8000 bytes");
  ASSERT_STR_CONTAINS(b.text, "target: the weights device 'npu0' reads: 8000 bytes");
  ASSERT_EQ(b.count, 2);
  moss_graph_destroy(&ctx, g);
}

/* cost-two's cpu: x[100000] -> Relu a[100000] -> Mul(a, W[16]) y[100000]:
 * x, a (the arena) and y are 400000 bytes each, each fits the 1048576 of
 * dram; the arena, input, output and the 64 bytes of weights (the same
 * level: dram is not read-only) are 1200064 together, and do not. */
TEST(host_memory_holds_everything_together) {
  moss_ctx ctx;
  sink_buf b;
  moss_graph *g;
  moss_value *x, *a, *w, *y;
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
  x = vec(&ctx, g, "x", 100000);
  a = vec(&ctx, g, "a", 100000);
  w = weight(&ctx, g, "W", 16);
  y = vec(&ctx, g, "y", 100000);
  set_io(g, x, y);
  node2(&ctx, g, "Relu", "r0", x, NULL, a);
  node2(&ctx, g, "Mul", "mul", a, w, y);
  ASSERT_EQ(plan_and_fit(&ctx, g, COST_DATA "cost-two.xml"), MOSS_E_TARGET);
  ASSERT_STR_CONTAINS(b.text, "target: the arena with the graph inputs and outputs and the weights: "
                      "1200064 bytes (1.14 MiB) do not fit in memory level 'dram' of device 'cpu'");
  ASSERT_EQ(b.count, 1);
  moss_graph_destroy(&ctx, g);
}

/* cortex-m7.xml: dtcm, sram, flash; only flash says read-only="true". */
TEST(read_only_levels_are_loaded) {
  moss_ctx ctx;
  moss_target *t;
  moss_target_level lv;
  moss_ctx_init(&ctx, moss_allocator_libc());
  ASSERT_EQ(moss_target_load(&ctx, "cortex-m7", &t), MOSS_OK);
  ASSERT_EQ(moss_target_device_level_count(t, 0), 3);
  moss_target_device_level(t, 0, 1, &lv);
  ASSERT_TRUE(strcmp(lv.name, "sram") == 0);
  ASSERT_EQ(lv.read_only, 0);
  moss_target_device_level(t, 0, 2, &lv);
  ASSERT_TRUE(strcmp(lv.name, "flash") == 0);
  ASSERT_EQ(lv.read_only, 1);
  ASSERT_EQ(lv.size_bytes, 2097152);
  moss_target_destroy(&ctx, t);
}

/* c99.xml declares no sizes: nothing can be checked, a 2^40-byte buffer
 * passes. */
TEST(levels_without_a_size_are_not_checked) {
  moss_ctx ctx;
  sink_buf b;
  moss_graph *g;
  moss_value *x, *a, *y;
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
  x = vec(&ctx, g, "x", 16);
  a = vec(&ctx, g, "a", (int64_t)1 << 38);
  y = vec(&ctx, g, "y", 16);
  set_io(g, x, y);
  node2(&ctx, g, "Relu", "r0", x, NULL, a);
  node2(&ctx, g, "Relu", "r1", a, NULL, y);
  ASSERT_EQ(plan_and_fit(&ctx, g, "c99"), MOSS_OK);
  ASSERT_EQ(b.count, 0);
  moss_graph_destroy(&ctx, g);
}

TEST_MAIN()
