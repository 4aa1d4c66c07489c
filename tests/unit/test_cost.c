/* test_cost.c - the cost and energy model (compiler/cost/) on a two-node
 * model, Y = Relu(X[1,8] x W[8,4]), on the round figures of
 * data/cost/cost-two.xml. Every expected number is worked out by hand in the
 * comments from those figures; none is copied from the code's output.
 *
 * The fixture target, cost-two.xml:
 *   cpu  (device 0, the host): 100 MHz, 1 unit, f32 2 MACs/cycle, i8 8;
 *        sram 100 B at 1 GB/s, 2 pJ/B (datasheet); dram 1 MiB at 0.5 GB/s,
 *        100 pJ/B (estimate); MAC f32 4 pJ, i8 0.5 pJ (op-model);
 *        power idle 0.1 W, active 1 W (estimate).
 *   npu0 (device 1): 200 MHz, 1 unit, f32 8 MACs/cycle; buf 4096 B at
 *        4 GB/s, 1 pJ/B (estimate); MAC f32 2 pJ (datasheet); power idle
 *        0.05 W, active 0.5 W (estimate).
 *
 * The model: X f32[1,8] (graph input, 32 B), W f32[8,4] constant (128 B) whose
 * first column is zero (8 of 32 zero: density 3/4), H f32[1,4] (16 B, the
 * only arena value: one 64-byte slot at offset 0, so the arena is 64 B),
 * Y f32[1,4] (graph output, 16 B).
 *   mm:   MatMul, dense MACs = 4 outputs x K 8 = 32; effective = 32 x 3/4 = 24.
 *   relu: Relu, no MACs, 4 ops (its largest activation has 4 elements).
 * Level rule: activations go to the innermost level holding the arena (64 B:
 * sram), weights to the innermost holding all weights (128 B: dram on the
 * cpu, buf on the npu). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cost/cost.h"
#include "driver/driver.h"
#include "harness.h"
#include "plan/plan.h"

#define DATA MOSS_TEST_DATA_DIR "/cost/"
#define OUT MOSS_TEST_OUT_DIR "/"

/* |a| within a relative 1e-9 of |b| (absolute 1e-30 around 0). */
#define ASSERT_REL(a, b)                                                               \
  do {                                                                                 \
    double ra_ = (a), rb_ = (b);                                                       \
    if (!(fabs(ra_ - rb_) <= 1e-9 * fabs(rb_) + 1e-30))                                \
      FAIL_("%s ~ %s: %.17g != %.17g", #a, #b, ra_, rb_);                              \
  } while (0)
#define ASSERT_LABEL(f, l) ASSERT_TRUE(!strcmp((f).label, (l)))

static const float wdata[32] = {0, 1, 1.5, 2, 0, 3, 3.5, 4, 0, 5, 5.5, 6, 0, 7, 7.5, 8,
                                0, 9, 9.5, 10, 0, 11, 11.5, 12, 0, 13, 13.5, 14, 0, 15, 15.5, 16};
static const int8_t w8[32] = {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3,
                              0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3};

static moss_value *tensor(moss_ctx *ctx, moss_graph *g, const char *name, moss_dtype dt,
                          int64_t d0, int64_t d1) {
  moss_value *v = moss_graph_add_value(ctx, g, name);
  v->dtype = dt;
  v->rank = 2;
  v->dims[0] = d0;
  v->dims[1] = d1;
  return v;
}

/* Y = Relu(X x W) in f32 with the MatMul on device |mm_dev|, the Relu on
 * |relu_dev|; planned. int8 (|relu| 0): Y i32 = X i8 x W i8, one node. */
static moss_graph *model(moss_ctx *ctx, int int8, int mm_dev, int relu_dev, int64_t *arena) {
  moss_graph *g;
  moss_value *x, *w, *h, *y;
  moss_node *n;
  int64_t wd[2] = {8, 4};
  if (moss_graph_create(ctx, &g) != MOSS_OK) return NULL;
  g->name = "matmul_relu";
  x = tensor(ctx, g, "X", int8 ? MOSS_DT_I8 : MOSS_DT_F32, 1, 8);
  w = moss_graph_add_constant(ctx, g, "W", int8 ? MOSS_DT_I8 : MOSS_DT_F32, 2, wd,
                              int8 ? (const void *)w8 : (const void *)wdata);
  h = tensor(ctx, g, "H", int8 ? MOSS_DT_I32 : MOSS_DT_F32, 1, 4);
  g->inputs = moss_graph_alloc(g, sizeof(moss_value *));
  g->outputs = moss_graph_alloc(g, sizeof(moss_value *));
  x->input_index = 0;
  g->inputs[g->ninputs++] = x;
  n = moss_graph_add_node(ctx, g, "MatMul", "mm", 2, 1);
  n->inputs[0] = x;
  n->inputs[1] = w;
  n->outputs[0] = h;
  n->device = mm_dev;
  h->producer = n;
  if (int8) {
    y = h;
  } else {
    y = tensor(ctx, g, "Y", MOSS_DT_F32, 1, 4);
    n = moss_graph_add_node(ctx, g, "Relu", "relu", 1, 1);
    n->inputs[0] = h;
    n->outputs[0] = y;
    n->device = relu_dev;
    y->producer = n;
  }
  y->output_index = 0;
  g->outputs[g->noutputs++] = y;
  if (moss_plan_compute(ctx, g, arena) != MOSS_OK) {
    moss_graph_destroy(ctx, g);
    return NULL;
  }
  return g;
}

static int64_t plan_arena; /* the planner's arena of the last model() */

static moss_cost_report *cost(moss_ctx *ctx, const char *target, int int8, int mm_dev,
                              int relu_dev, double grid) {
  moss_graph *g;
  moss_target *t;
  moss_cost_report *r = NULL;
  moss_cost_opts o;
  int64_t arena;
  memset(&o, 0, sizeof o);
  o.grid_g_per_kwh = grid;
  if (moss_target_load(ctx, target, &t) != MOSS_OK) return NULL;
  g = model(ctx, int8, mm_dev, relu_dev, &arena);
  plan_arena = arena;
  if (g && moss_cost_compute(ctx, g, t, &o, &r) != MOSS_OK) r = NULL;
  if (g) moss_graph_destroy(ctx, g);
  moss_target_destroy(ctx, t);
  return r;
}

/* Both nodes on the cpu. pJ below; 1 pJ = 1e-12 J.
 *   mm:   sram 32 (X) + 16 (H) = 48 B, dram 128 B (W).
 *         compute 32 dense MACs / 2 per cycle = 16 cycles; sram 48 B at 1 GB/s = 48 ns =
 *         4.8 cycles at 100 MHz; dram 128 B at 0.5 GB/s = 256 ns = 25.6 cycles.
 *         cycles = 25.6, time = 256 ns.
 *         energy: 24 x 4 = 96; sram 48 x 2 = 96; dram 128 x 100 = 12800;
 *         static 0.1 W x 256 ns = 25600. Sum 38592.
 *   relu: sram 16 + 16 = 32 B. compute 4 ops / 2 = 2 cycles; sram 32 ns = 3.2 cycles.
 *         time 32 ns. energy: 0 MACs; sram 64; static 0.1 x 32 ns = 3200. Sum 3264.
 *   total: time 288 ns; energy 41856 pJ (compute 96, memory 12960, static 28800);
 *          platform: cpu 1 W x 288 ns + npu0 idle 0.05 W x 288 ns = 302.4 nJ.
 *   carbon: 41856e-12 J / 3.6e6 J/kWh x 475 g/kWh (fallback); x 100 with --grid 100.
 *   baseline (f32 dense): 32 MACs x 4 = 128 instead of 96: 41888 pJ, same time. */
TEST(two_nodes_one_device) {
  moss_ctx ctx;
  moss_cost_report *r;
  const moss_cost_node *mm, *relu;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = cost(&ctx, DATA "cost-two.xml", 0, 0, 0, 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_EQ(r->nnodes, 2);
  ASSERT_EQ(r->ntransfers, 0);
  ASSERT_TRUE(!strcmp(r->target, "cost-two"));
  ASSERT_TRUE(!strcmp(r->model, "matmul_relu"));
  mm = &r->nodes[0];
  relu = &r->nodes[1];

  ASSERT_TRUE(!strcmp(mm->dtype, "f32"));
  ASSERT_EQ(mm->mac_op, 1);
  ASSERT_REL(mm->macs_dense, 32);
  ASSERT_REL(mm->macs_effective, 24);
  ASSERT_REL(mm->weight_density, 0.75);
  /* The sparse formats (docs/sparse.md) of Wt = W^T [4 outputs, 8]: row 0
   * zero, rows 1..3 full, 24 nonzeros. dense 4*8 = 32; csr 2.5*24+4 = 64;
   * block4x1: 8 columns of one 4-row band, all nonzero: 5*8+1 = 41;
   * block1x4: rows 1..3 x 2 blocks: 5*6+4 = 34; 2:4: a group of 4
   * nonzeros rules it out. The pass did not run: dense. */
  ASSERT_EQ(mm->sparse_layer, 1);
  ASSERT_TRUE(!strcmp(mm->sparse_format, "dense"));
  ASSERT_REL(mm->sparse_cost[0], 32);
  ASSERT_REL(mm->sparse_cost[1], 64);
  ASSERT_REL(mm->sparse_cost[2], 41);
  ASSERT_REL(mm->sparse_cost[3], 34);
  ASSERT_TRUE(mm->sparse_cost[4] < 0);
  ASSERT_EQ(relu->sparse_layer, 0);
  ASSERT_REL(mm->ops, 0);
  ASSERT_REL(mm->act_bytes, 48);
  ASSERT_REL(mm->weight_bytes, 128);
  ASSERT_EQ(mm->act_level, 0);
  ASSERT_EQ(mm->weight_level, 1);
  ASSERT_REL(mm->bytes[0], 48);
  ASSERT_REL(mm->bytes[1], 128);
  ASSERT_REL(mm->compute_cycles, 16);
  ASSERT_REL(mm->mem_cycles[0], 4.8);
  ASSERT_REL(mm->mem_cycles[1], 25.6);
  ASSERT_REL(mm->cycles, 25.6);
  ASSERT_REL(mm->time_s.value, 256e-9);
  ASSERT_LABEL(mm->time_s, "estimate");
  ASSERT_REL(mm->mac_pj.value, 4);
  ASSERT_REL(mm->compute_j.value, 96e-12);
  ASSERT_LABEL(mm->compute_j, "op-model");
  ASSERT_REL(mm->mem_j[0].value, 96e-12);
  ASSERT_LABEL(mm->mem_j[0], "datasheet");
  ASSERT_REL(mm->mem_j[1].value, 12800e-12);
  ASSERT_LABEL(mm->mem_j[1], "estimate");
  ASSERT_REL(mm->static_j.value, 25600e-12);
  ASSERT_LABEL(mm->static_j, "estimate");
  ASSERT_STR_CONTAINS(mm->static_j.source, "made up for the test");
  ASSERT_REL(mm->energy_j.value, 38592e-12);
  ASSERT_LABEL(mm->energy_j, "op-model");
  ASSERT_EQ(mm->energy_j.partial, 0);

  ASSERT_EQ(relu->mac_op, 0);
  ASSERT_REL(relu->macs_dense, 0);
  ASSERT_REL(relu->ops, 4);
  ASSERT_REL(relu->act_bytes, 32);
  ASSERT_REL(relu->weight_bytes, 0);
  ASSERT_REL(relu->compute_cycles, 2);
  ASSERT_REL(relu->cycles, 3.2);
  ASSERT_REL(relu->time_s.value, 32e-9);
  ASSERT_REL(relu->compute_j.value, 0);
  ASSERT_REL(relu->mem_j[0].value, 64e-12);
  ASSERT_REL(relu->static_j.value, 3200e-12);
  ASSERT_REL(relu->energy_j.value, 3264e-12);

  ASSERT_EQ(r->total.arena_bytes, 64);
  ASSERT_EQ(plan_arena, 64); /* the same rule as the planner's */
  ASSERT_EQ(r->total.weight_bytes, 128);
  ASSERT_REL(r->total.act_bytes, 80);
  ASSERT_REL(r->total.weight_read_bytes, 128);
  ASSERT_REL(r->total.macs_dense, 32);
  ASSERT_REL(r->total.macs_effective, 24);
  ASSERT_REL(r->total.time_s.value, 288e-9);
  ASSERT_REL(r->total.compute_j.value, 96e-12);
  ASSERT_REL(r->total.mem_j.value, 12960e-12);
  ASSERT_REL(r->total.static_j.value, 28800e-12);
  ASSERT_REL(r->total.transfer_j.value, 0);
  ASSERT_REL(r->total.energy_j.value, 41856e-12);
  ASSERT_LABEL(r->total.energy_j, "op-model");
  ASSERT_EQ(r->total.energy_j.partial, 0);
  ASSERT_REL(r->total.platform_j.value, 302.4e-9);
  ASSERT_LABEL(r->total.platform_j, "platform-model");
  ASSERT_REL(r->total.kwh, 41856e-12 / 3.6e6);
  ASSERT_EQ(r->grid_fallback, 1);
  ASSERT_REL(r->grid_g_per_kwh, 475);
  ASSERT_REL(r->total.carbon_g.value, 41856e-12 / 3.6e6 * 475);
  ASSERT_REL(r->total.carbon_g_per_million.value, 41856e-12 / 3.6e6 * 475 * 1e6);
  ASSERT_STR_CONTAINS(r->total.carbon_g.source, "fallback");
  ASSERT_REL(r->total.platform_carbon_g.value, 302.4e-9 / 3.6e6 * 475);
  ASSERT_REL(r->devices[0].busy_s, 288e-9);
  ASSERT_REL(r->devices[0].platform_j.value, 288e-9);
  ASSERT_REL(r->devices[1].platform_j.value, 0.05 * 288e-9);
  ASSERT_REL(r->devices[0].bytes[0], 80);
  ASSERT_REL(r->devices[0].mem_j[1].value, 12800e-12);

  ASSERT_REL(r->baseline.macs_effective, 32);
  ASSERT_REL(r->baseline.compute_j.value, 128e-12);
  ASSERT_REL(r->baseline.energy_j.value, 41888e-12);
  ASSERT_REL(r->baseline.time_s.value, 288e-9);
  ASSERT_EQ(r->baseline.arena_bytes, 64);
  ASSERT_EQ(r->baseline.weight_bytes, 128);
  moss_cost_destroy(&ctx, r);

  /* --grid-intensity 100: same energy, carbon x 100/475, no fallback flag. */
  r = cost(&ctx, DATA "cost-two.xml", 0, 0, 0, 100);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_EQ(r->grid_fallback, 0);
  ASSERT_REL(r->total.carbon_g.value, 41856e-12 / 3.6e6 * 100);
  ASSERT_REL(r->total.carbon_g_per_million.value, 41856e-12 / 3.6e6 * 100 * 1e6);
  ASSERT_TRUE(strstr(r->total.carbon_g.source, "fallback") == NULL);
  moss_cost_destroy(&ctx, r);
}

/* MatMul on npu0, Relu on the cpu.
 *   mm on npu0: buf 48 + 128 = 176 B. compute 32 / 8 = 4 cycles; buf 176 B at 4 GB/s =
 *     44 ns = 8.8 cycles at 200 MHz; time 44 ns. energy: 24 x 2 = 48 (datasheet);
 *     buf 176 x 1 = 176; static 0.05 W x 44 ns = 2200. Sum 2424.
 *   relu on the cpu: as above, 32 ns, 3264.
 *   transfers: X (input, on the host cpu) -> npu0: 32 B; from sram (1 GB/s, 2 pJ/B) to buf
 *     (4 GB/s, 1 pJ/B): 32 ns at the slower 1 GB/s, 32 x (2 + 1) = 96 pJ.
 *     H npu0 -> cpu: 16 B, 16 ns, 48 pJ. Y is made on the host: no transfer.
 *   total: time 44 + 32 + 32 + 16 = 124 ns; energy 2424 + 3264 + 96 + 48 = 5832 pJ.
 *   platform: cpu 1 W x 32 ns + 0.1 W x 92 ns = 41.2 nJ; npu0 0.5 W x 44 ns + 0.05 W x
 *     80 ns = 26 nJ; 67.2 nJ in all. */
TEST(two_devices_and_transfers) {
  moss_ctx ctx;
  moss_cost_report *r;
  const moss_cost_node *mm;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = cost(&ctx, DATA "cost-two.xml", 0, 1, 0, 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  mm = &r->nodes[0];
  ASSERT_EQ(mm->device, 1);
  ASSERT_EQ(mm->act_level, 0);
  ASSERT_EQ(mm->weight_level, 0);
  ASSERT_REL(mm->bytes[0], 176);
  ASSERT_REL(mm->compute_cycles, 4);
  ASSERT_REL(mm->cycles, 8.8);
  ASSERT_REL(mm->time_s.value, 44e-9);
  ASSERT_REL(mm->compute_j.value, 48e-12);
  ASSERT_LABEL(mm->compute_j, "datasheet");
  ASSERT_REL(mm->mem_j[0].value, 176e-12);
  ASSERT_REL(mm->static_j.value, 2200e-12);
  ASSERT_REL(mm->energy_j.value, 2424e-12);
  ASSERT_REL(r->nodes[1].energy_j.value, 3264e-12);

  ASSERT_EQ(r->ntransfers, 2);
  ASSERT_TRUE(!strcmp(r->transfers[0].value, "X"));
  ASSERT_EQ(r->transfers[0].from, 0);
  ASSERT_EQ(r->transfers[0].to, 1);
  ASSERT_REL(r->transfers[0].bytes, 32);
  ASSERT_REL(r->transfers[0].time_s.value, 32e-9);
  ASSERT_REL(r->transfers[0].energy_j.value, 96e-12);
  ASSERT_TRUE(!strcmp(r->transfers[1].value, "H"));
  ASSERT_EQ(r->transfers[1].from, 1);
  ASSERT_EQ(r->transfers[1].to, 0);
  ASSERT_REL(r->transfers[1].time_s.value, 16e-9);
  ASSERT_REL(r->transfers[1].energy_j.value, 48e-12);

  ASSERT_REL(r->total.time_s.value, 124e-9);
  ASSERT_REL(r->total.transfer_j.value, 144e-12);
  ASSERT_REL(r->total.energy_j.value, 5832e-12);
  ASSERT_REL(r->devices[0].platform_j.value, 41.2e-9);
  ASSERT_REL(r->devices[1].platform_j.value, 26e-9);
  ASSERT_REL(r->total.platform_j.value, 67.2e-9);
  ASSERT_REL(r->devices[1].energy_j.value, 2424e-12);
  moss_cost_destroy(&ctx, r);
}

/* int8: Y i32[1,4] = X i8[1,8] x W i8[8,4] (8 zero weights), one node on the cpu.
 *   dtype i8; X 8 B + Y 16 B = 24 B of activations, W 32 B; no arena value, so the
 *   arena is 0 and both go to sram: 56 B. compute 32 / 8 = 4 cycles; sram 56 B at
 *   1 GB/s = 56 ns = 5.6 cycles; time 56 ns. energy: 24 x 0.5 = 12; sram 112;
 *   static 0.1 x 56 ns = 5600. Sum 5724 pJ.
 *   baseline (f32, dense): X 32 + Y 16 = 48 B in sram; W 128 B in dram (> 100 B).
 *   16 compute cycles, 4.8 sram, 25.6 dram: 256 ns. 32 x 4 = 128; 96; 12800;
 *   0.1 x 256 ns = 25600. Sum 38624 pJ. */
TEST(int8_and_its_baseline) {
  moss_ctx ctx;
  moss_cost_report *r;
  const moss_cost_node *mm;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = cost(&ctx, DATA "cost-two.xml", 1, 0, 0, 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  mm = &r->nodes[0];
  ASSERT_EQ(r->nnodes, 1);
  ASSERT_TRUE(!strcmp(mm->dtype, "i8"));
  ASSERT_REL(mm->macs_effective, 24);
  ASSERT_REL(mm->bytes[0], 56);
  ASSERT_REL(mm->time_s.value, 56e-9);
  ASSERT_REL(mm->mac_pj.value, 0.5);
  ASSERT_REL(mm->energy_j.value, 5724e-12);
  ASSERT_EQ(r->total.weight_bytes, 32);
  ASSERT_REL(r->baseline.time_s.value, 256e-9);
  ASSERT_REL(r->baseline.energy_j.value, 38624e-12);
  ASSERT_EQ(r->baseline.weight_bytes, 128);
  moss_cost_destroy(&ctx, r);
}

/* cost-no-mac.xml: no f32 MAC energy, no power, flash without energy.
 *   mm: compute not-modeled; sram 48 x 2 = 96 pJ; W (128 B > 100) in flash: not-modeled;
 *       static not-modeled (no power). energy 96 pJ, partial.
 *   relu: sram 64 pJ; static not-modeled. 64 pJ partial. Total 160 pJ, partial;
 *   the platform figure is not-modeled. The summary: time 256 + 32 = 288 ns. */
TEST(missing_figures_are_not_modeled) {
  moss_ctx ctx;
  moss_cost_report *r;
  const moss_cost_node *mm;
  char line[512];
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = cost(&ctx, DATA "cost-no-mac.xml", 0, 0, 0, 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  mm = &r->nodes[0];
  ASSERT_LABEL(mm->mac_pj, "not-modeled");
  ASSERT_LABEL(mm->compute_j, "not-modeled");
  ASSERT_STR_CONTAINS(mm->compute_j.source, "no MAC energy for f32");
  ASSERT_LABEL(mm->mem_j[1], "not-modeled");
  ASSERT_LABEL(mm->static_j, "not-modeled");
  ASSERT_REL(mm->energy_j.value, 96e-12);
  ASSERT_LABEL(mm->energy_j, "op-model");
  ASSERT_EQ(mm->energy_j.partial, 1);
  ASSERT_REL(mm->time_s.value, 256e-9); /* flash has a bandwidth: time is whole */
  ASSERT_EQ(mm->time_s.partial, 0);
  ASSERT_REL(r->total.energy_j.value, 160e-12);
  ASSERT_EQ(r->total.energy_j.partial, 1);
  /* The compute total: mm's part is missing, relu's is exactly 0 (no MACs). */
  ASSERT_LABEL(r->total.compute_j, "op-model");
  ASSERT_EQ(r->total.compute_j.partial, 1);
  ASSERT_REL(r->total.compute_j.value, 0);
  ASSERT_EQ(r->baseline.compute_j.partial, 1);
  ASSERT_LABEL(r->total.platform_j, "not-modeled");
  ASSERT_EQ(r->total.carbon_g.partial, 1);
  moss_cost_summary(r, line, sizeof line);
  ASSERT_STR_CONTAINS(line, "moss: cost on cost-no-mac: 288 ns, 160 pJ (op-model, partial)");
  ASSERT_STR_CONTAINS(line, "? J (not-modeled)");
  moss_cost_destroy(&ctx, r);
}

TEST(summary_line) {
  moss_ctx ctx;
  moss_cost_report *r;
  char line[512];
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = cost(&ctx, DATA "cost-two.xml", 0, 0, 0, 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  moss_cost_summary(r, line, sizeof line);
  /* 288 ns; 41856 pJ = 41.9 nJ; 302.4 nJ; 41856e-12 / 3.6e6 x 475 = 5.52e-12 g. */
  ASSERT_STR_CONTAINS(line, "moss: cost on cost-two: 288 ns, 41.9 nJ (op-model), "
                            "302 nJ (platform-model), 5.52 pgCO2e (grid 475, fallback), "
                            "arena 64 B, weights 128 B");
  moss_cost_summary(r, line, 20); /* truncates, never overflows */
  ASSERT_EQ(strlen(line), 19);
  {
    char before[17];
    snprintf(before, sizeof before, "%s", r->run_id);
    ASSERT_EQ(strlen(r->run_id), 16);
    ASSERT_EQ(moss_cost_set_model(&ctx, r, "kws"), MOSS_OK);
    ASSERT_TRUE(!strcmp(r->model, "kws"));
    ASSERT_EQ(strlen(r->run_id), 16);
    ASSERT_TRUE(strcmp(before, r->run_id) != 0);
  }
  moss_cost_destroy(&ctx, r);
}

/* The documented CSV columns (docs/report.md), in order. */
static const char csv_header[] =
    "project_name,run_id,row,name,op_type,device,device_kind,dtype,macs_dense,macs_effective,"
    "weight_density,ops,activation_bytes,weight_bytes,activation_level,weight_level,arena_bytes,"
    "weight_total_bytes,cycles,duration,compute_energy_j,memory_energy_j,static_energy_j,"
    "energy_j,compute_label,memory_label,static_label,energy_label,energy_consumed,emissions,"
    "emissions_rate,cpu_energy,gpu_energy,npu_energy,platform_energy_j,cpu_model,gpu_model,"
    "grid_intensity,grid_fallback,sparse_format,sparse_cost_dense,sparse_cost_csr,"
    "sparse_cost_block4x1,sparse_cost_block1x4,sparse_cost_2_4\n";

/* Writes the three reports for the python checker (check_reports.py, run by
 * ctest after this test) and checks what C can check. */
TEST(reports) {
  moss_ctx ctx;
  moss_cost_report *r;
  moss_buf b;
  uint8_t *data;
  size_t n;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = cost(&ctx, DATA "cost-two.xml", 0, 1, 0, 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_EQ(moss_report_write(&ctx, r, OUT "report.json"), MOSS_OK);
  ASSERT_EQ(moss_report_write(&ctx, r, OUT "report.csv"), MOSS_OK);
  ASSERT_EQ(moss_report_write(&ctx, r, OUT "report.html"), MOSS_OK);
  ASSERT_EQ(moss_report_write(&ctx, r, OUT "report.txt"), MOSS_E_IO);
  ASSERT_STR_CONTAINS(ctx.last, "must end in .json, .csv or .html");
  ASSERT_EQ(moss_report_write(&ctx, r, OUT "no/such/dir/report.json"), MOSS_E_IO);

  ASSERT_EQ(moss_file_read(&ctx, OUT "report.csv", &data, &n), MOSS_OK);
  ASSERT_TRUE(n > sizeof csv_header && !memcmp(data, csv_header, sizeof csv_header - 1));
  /* rows: 2 nodes, 2 transfers, total, baseline. */
  {
    size_t i, lines = 0;
    for (i = 0; i < n; i++) lines += data[i] == '\n';
    ASSERT_EQ(lines, 7);
  }
  moss_free(&ctx, data, n + 1);

  moss_buf_init(&b, &ctx);
  ASSERT_EQ(moss_report_json(&ctx, r, &b), MOSS_OK);
  ASSERT_STR_CONTAINS(b.data, "{\"format\": \"moss-cost-report\", \"version\": 1, ");
  ASSERT_STR_CONTAINS(b.data, "\"grid\": {\"g_per_kwh\": 475, \"fallback\": true");
  ASSERT_STR_CONTAINS(b.data, "\"sparse_format\": \"dense\", \"sparse_costs\": {\"dense\": 32, "
                              "\"csr\": 64, \"block4x1\": 41, \"block1x4\": 34, \"2:4\": \"-\"}");
  ASSERT_STR_CONTAINS(b.data, "\"sparse_format\": null, \"sparse_costs\": null");
  moss_buf_deinit(&b);
  moss_buf_init(&b, &ctx);
  ASSERT_EQ(moss_report_csv(&ctx, r, &b), MOSS_OK);
  ASSERT_STR_CONTAINS(b.data, ",dense,32,64,41,34,-\n");
  moss_buf_deinit(&b);
  moss_buf_init(&b, &ctx);
  ASSERT_EQ(moss_report_html(&ctx, r, &b), MOSS_OK);
  ASSERT_STR_CONTAINS(b.data, "dense (<b>dense 32</b>, csr 64, block4x1 41, block1x4 34, 2:4 -)");
  moss_buf_deinit(&b);
  moss_cost_destroy(&ctx, r);

  /* The not-modeled case too: null values in JSON, empty cells in CSV. */
  r = cost(&ctx, DATA "cost-no-mac.xml", 0, 0, 0, 30);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_EQ(moss_report_write(&ctx, r, OUT "report-nm.json"), MOSS_OK);
  ASSERT_EQ(moss_report_write(&ctx, r, OUT "report-nm.csv"), MOSS_OK);
  ASSERT_EQ(moss_report_write(&ctx, r, OUT "report-nm.html"), MOSS_OK);
  moss_buf_init(&b, &ctx);
  ASSERT_EQ(moss_report_json(&ctx, r, &b), MOSS_OK);
  ASSERT_STR_CONTAINS(b.data, "\"compute_j\": {\"value\": null, \"label\": \"not-modeled\"");
  moss_buf_deinit(&b);
  moss_cost_destroy(&ctx, r);
}

/* A node placed on a device the target does not have is our bug. */
TEST(bad_device_index) {
  moss_ctx ctx;
  moss_cost_report *r;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = cost(&ctx, DATA "cost-two.xml", 0, 5, 0, 0);
  ASSERT_TRUE(r == NULL);
  ASSERT_STR_CONTAINS(ctx.last, "internal: node placed on device 5; target 'cost-two' has 2");
}

/* Each allocation failing in turn: a clean error, no leak, no crash. */
static int fail_at, calls;
static void *failing(void *user, void *p, size_t old, size_t sz) {
  (void)user;
  if (sz && ++calls == fail_at) return NULL;
  return moss_allocator_libc().fn(NULL, p, old, sz);
}

TEST(allocation_failures) {
  moss_ctx ctx, fctx;
  moss_graph *g;
  moss_target *t;
  moss_cost_report *r = NULL;
  int64_t arena;
  moss_allocator fa = {failing, NULL};
  moss_status st = MOSS_E_NOMEM;
  moss_ctx_init(&ctx, moss_allocator_libc());
  ASSERT_EQ(moss_target_load(&ctx, DATA "cost-two.xml", &t), MOSS_OK);
  g = model(&ctx, 0, 1, 0, &arena);
  ASSERT_TRUE(g != NULL);
  for (fail_at = 1; fail_at < 10000 && st != MOSS_OK; fail_at++) {
    moss_buf b;
    calls = 0;
    moss_ctx_init(&fctx, fa);
    st = moss_cost_compute(&fctx, g, t, NULL, &r);
    if (st != MOSS_OK) {
      ASSERT_EQ(st, MOSS_E_NOMEM);
      ASSERT_TRUE(r == NULL);
      continue;
    }
    moss_buf_init(&b, &fctx);
    moss_report_html(&fctx, r, &b); /* may fail later on; must not crash */
    moss_buf_deinit(&b);
    moss_cost_destroy(&fctx, r);
  }
  ASSERT_EQ(st, MOSS_OK);
  moss_graph_destroy(&ctx, g);
  moss_target_destroy(&ctx, t);
}

/* The compare table: ranked by energy, failed targets last with their reason. */
TEST(compare_table) {
  moss_ctx ctx;
  moss_cost_report *reps[3];
  const char *names[3] = {"cost-two", "broken", "cost-two-npu"};
  const char *errs[3] = {NULL, "no such target", NULL};
  moss_buf b;
  const char *a, *c, *d;
  moss_ctx_init(&ctx, moss_allocator_libc());
  reps[0] = cost(&ctx, DATA "cost-two.xml", 0, 0, 0, 0); /* 41856 pJ, 288 ns, 192 B */
  reps[1] = NULL;
  reps[2] = cost(&ctx, DATA "cost-two.xml", 0, 1, 0, 0); /* 5832 pJ, 124 ns, 192 B */
  ASSERT_TRUE(reps[0] && reps[2]);
  moss_buf_init(&b, &ctx);
  moss_compare_table(names, reps, errs, 3, &b);
  a = strstr(b.data, "\n1    cost-two-npu");
  c = strstr(b.data, "\n2    cost-two ");
  d = strstr(b.data, "\n-    broken       failed: no such target");
  ASSERT_TRUE(a && c && d && a < c && c < d);
  ASSERT_STR_CONTAINS(b.data, "5.83 nJ");
  ASSERT_STR_CONTAINS(b.data, "192 B (64+128)");
  ASSERT_STR_CONTAINS(b.data, "fallback");
  moss_buf_deinit(&b);
  moss_cost_destroy(&ctx, reps[0]);
  moss_cost_destroy(&ctx, reps[2]);
}

/* moss compare through the pipeline: one good target, one that does not
 * exist (its row says why); all failing is an error. */
TEST(compare_cli) {
  moss_ctx ctx;
  char *ok[] = {"compare", DATA "matmul_relu.onnx", "--targets",
                DATA "cost-cpu.xml," DATA "no-such.xml", "--grid-intensity", "50"};
  char *bad[] = {"compare", DATA "matmul_relu.onnx", "--targets", DATA "no-such.xml"};
  char *usage[] = {"compare", DATA "matmul_relu.onnx"};
  moss_ctx_init(&ctx, moss_allocator_libc());
  ASSERT_EQ(moss_compare_cli(&ctx, 6, ok), MOSS_OK);
  ASSERT_TRUE(moss_compare_cli(&ctx, 4, bad) != MOSS_OK);
  ASSERT_EQ(moss_compare_cli(&ctx, 2, usage), MOSS_E_TARGET);
  ASSERT_STR_CONTAINS(ctx.last, "no --targets");
}

TEST_MAIN()
