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
 *   mm:   MatMul, dense MACs = 4 outputs x K 8 = 32. Its kernel is dense (the
 *         sparse pass did not run), so it multiplies every weight, zeros too:
 *         effective MACs 32 (docs/report.md: MACs as emitted).
 *   relu: Relu, no MACs, 4 ops (its largest activation has 4 elements).
 * Level rule: activations go to the innermost level holding the arena (64 B:
 * sram), weights to the innermost holding all weights (128 B: dram on the
 * cpu, buf on the npu). */
#include <dirent.h>
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

static int mm_sparse; /* the weight format model() gives the MatMul (n->sparse) */

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
  n->sparse = mm_sparse;
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
 *         compute 32 dense MACs / (2 per cycle x 1 thread) = 16 cycles; sram 48 B at
 *         1 GB/s = 48 ns = 4.8 cycles at 100 MHz; dram 128 B at 0.5 GB/s = 256 ns =
 *         25.6 cycles. cycles = 25.6, time = 256 ns.
 *         energy: 32 x 4 = 128; sram 48 x 2 = 96; dram 128 x 100 = 12800;
 *         static 0.1 W x 256 ns = 25600. Sum 38624.
 *   relu: sram 16 + 16 = 32 B. compute 4 ops / 2 = 2 cycles; sram 32 ns = 3.2 cycles.
 *         time 32 ns. energy: 0 MACs; sram 64; static 0.1 x 32 ns = 3200. Sum 3264.
 *   total: time 288 ns; energy 41888 pJ (compute 128, memory 12960, static 28800);
 *          platform: cpu 1 W x 288 ns + npu0 idle 0.05 W x 288 ns = 302.4 nJ.
 *   carbon: 41888e-12 J / 3.6e6 J/kWh x 475 g/kWh (fallback); x 100 with --grid 100.
 *   baseline (f32 dense): the same graph, already fp32 and dense: 41888 pJ, same time. */
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
  ASSERT_REL(mm->macs_effective, 32);
  ASSERT_REL(mm->macs_timed, 32);
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
  ASSERT_REL(mm->compute_cycles.value, 16);
  ASSERT_LABEL(mm->compute_cycles, "estimate");
  ASSERT_REL(mm->mem_cycles[0].value, 4.8);
  ASSERT_REL(mm->mem_cycles[1].value, 25.6);
  ASSERT_REL(mm->cycles, 25.6);
  ASSERT_REL(mm->time_s.value, 256e-9);
  ASSERT_LABEL(mm->time_s, "estimate");
  ASSERT_REL(mm->mac_pj.value, 4);
  ASSERT_REL(mm->compute_j.value, 128e-12);
  ASSERT_LABEL(mm->compute_j, "op-model");
  ASSERT_REL(mm->mem_j[0].value, 96e-12);
  ASSERT_LABEL(mm->mem_j[0], "datasheet");
  ASSERT_REL(mm->mem_j[1].value, 12800e-12);
  ASSERT_LABEL(mm->mem_j[1], "estimate");
  ASSERT_REL(mm->static_j.value, 25600e-12);
  ASSERT_LABEL(mm->static_j, "estimate");
  ASSERT_STR_CONTAINS(mm->static_j.source, "made up for the test");
  ASSERT_REL(mm->energy_j.value, 38624e-12);
  ASSERT_LABEL(mm->energy_j, "op-model");
  ASSERT_EQ(mm->energy_j.partial, 0);

  ASSERT_EQ(relu->mac_op, 0);
  ASSERT_REL(relu->macs_dense, 0);
  ASSERT_REL(relu->ops, 4);
  ASSERT_REL(relu->act_bytes, 32);
  ASSERT_REL(relu->weight_bytes, 0);
  ASSERT_REL(relu->compute_cycles.value, 2);
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
  ASSERT_REL(r->total.macs_effective, 32);
  ASSERT_REL(r->total.time_s.value, 288e-9);
  ASSERT_REL(r->total.compute_j.value, 128e-12);
  ASSERT_REL(r->total.mem_j.value, 12960e-12);
  ASSERT_REL(r->total.static_j.value, 28800e-12);
  ASSERT_REL(r->total.transfer_j.value, 0);
  ASSERT_REL(r->total.energy_j.value, 41888e-12);
  ASSERT_LABEL(r->total.energy_j, "op-model");
  ASSERT_EQ(r->total.energy_j.partial, 0);
  ASSERT_REL(r->total.platform_j.value, 302.4e-9);
  ASSERT_LABEL(r->total.platform_j, "platform-model");
  ASSERT_REL(r->total.kwh, 41888e-12 / 3.6e6);
  ASSERT_EQ(r->grid_fallback, 1);
  ASSERT_REL(r->grid_g_per_kwh, 475);
  ASSERT_REL(r->total.carbon_g.value, 41888e-12 / 3.6e6 * 475);
  ASSERT_REL(r->total.carbon_g_per_million.value, 41888e-12 / 3.6e6 * 475 * 1e6);
  ASSERT_STR_CONTAINS(r->total.carbon_g.source, "fallback");
  ASSERT_REL(r->total.platform_carbon_g.value, 302.4e-9 / 3.6e6 * 475);
  ASSERT_REL(r->devices[0].busy_s.value, 288e-9);
  ASSERT_LABEL(r->devices[0].busy_s, "estimate");
  ASSERT_REL(r->devices[1].busy_s.value, 0); /* no node on npu0: exactly 0 */
  ASSERT_LABEL(r->devices[1].busy_s, "op-model");
  ASSERT_EQ(r->devices[0].threads, 1);
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
  ASSERT_REL(r->total.carbon_g.value, 41888e-12 / 3.6e6 * 100);
  ASSERT_REL(r->total.carbon_g_per_million.value, 41888e-12 / 3.6e6 * 100 * 1e6);
  ASSERT_TRUE(strstr(r->total.carbon_g.source, "fallback") == NULL);
  moss_cost_destroy(&ctx, r);
}

/* MatMul on npu0, Relu on the cpu.
 *   mm on npu0: buf 48 + 128 = 176 B. compute 32 / 8 = 4 cycles; buf 176 B at 4 GB/s =
 *     44 ns = 8.8 cycles at 200 MHz; time 44 ns. energy: 32 x 2 = 64 (datasheet);
 *     buf 176 x 1 = 176; static 0.05 W x 44 ns = 2200. Sum 2440.
 *   relu on the cpu: as above, 32 ns, 3264.
 *   transfers: X (input, on the host cpu) -> npu0: 32 B; from sram (1 GB/s, 2 pJ/B) to buf
 *     (4 GB/s, 1 pJ/B): 32 ns at the slower 1 GB/s, 32 x (2 + 1) = 96 pJ.
 *     H npu0 -> cpu: 16 B, 16 ns, 48 pJ. Y is made on the host: no transfer.
 *   total: time 44 + 32 + 32 + 16 = 124 ns; energy 2440 + 3264 + 96 + 48 = 5848 pJ.
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
  ASSERT_REL(mm->compute_cycles.value, 4);
  ASSERT_REL(mm->cycles, 8.8);
  ASSERT_REL(mm->time_s.value, 44e-9);
  ASSERT_REL(mm->compute_j.value, 64e-12);
  ASSERT_LABEL(mm->compute_j, "datasheet");
  ASSERT_REL(mm->mem_j[0].value, 176e-12);
  ASSERT_REL(mm->static_j.value, 2200e-12);
  ASSERT_REL(mm->energy_j.value, 2440e-12);
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
  ASSERT_REL(r->total.energy_j.value, 5848e-12);
  ASSERT_REL(r->devices[0].platform_j.value, 41.2e-9);
  ASSERT_REL(r->devices[1].platform_j.value, 26e-9);
  ASSERT_REL(r->total.platform_j.value, 67.2e-9);
  ASSERT_REL(r->devices[1].energy_j.value, 2440e-12);
  moss_cost_destroy(&ctx, r);
}

/* int8: Y i32[1,4] = X i8[1,8] x W i8[8,4] (8 zero weights), one node on the cpu.
 *   dtype i8; X 8 B + Y 16 B = 24 B of activations, W 32 B; no arena value, so the
 *   arena is 0 and both go to sram: 56 B. compute 32 / 8 = 4 cycles; sram 56 B at
 *   1 GB/s = 56 ns = 5.6 cycles; time 56 ns. energy: 32 x 0.5 = 16 (a dense kernel:
 *   every weight multiplied); sram 112; static 0.1 x 56 ns = 5600. Sum 5728 pJ.
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
  ASSERT_REL(mm->macs_effective, 32);
  ASSERT_REL(mm->bytes[0], 56);
  ASSERT_REL(mm->time_s.value, 56e-9);
  ASSERT_REL(mm->mac_pj.value, 0.5);
  ASSERT_REL(mm->energy_j.value, 5728e-12);
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
  /* 288 ns; 41888 pJ = 41.9 nJ; 302.4 nJ; 41888e-12 / 3.6e6 x 475 = 5.53e-12 g. */
  ASSERT_STR_CONTAINS(line, "moss: cost on cost-two: 288 ns, 41.9 nJ (op-model), "
                            "302 nJ (platform-model), 5.53 pgCO2e (grid 475, fallback), "
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
    "weight_total_bytes,cycles,duration,duration_lower_bound,time_label,compute_energy_j,"
    "memory_energy_j,static_energy_j,energy_j,compute_label,memory_label,static_label,"
    "energy_label,energy_consumed,energy_consumed_lower_bound,emissions,emissions_lower_bound,"
    "emissions_rate,cpu_energy,gpu_energy,npu_energy,platform_energy_j,platform_label,cpu_model,"
    "gpu_model,grid_intensity,grid_fallback,sparse_format,sparse_cost_dense,sparse_cost_csr,"
    "sparse_cost_block4x1,sparse_cost_block1x4,sparse_cost_2_4,sparse_cost_columns,measured_duration,"
    "measured_energy_consumed,measured_label\n";

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
                              "\"csr\": 64, \"block4x1\": 41, \"block1x4\": 34, \"2:4\": \"-\", \"columns\": \"-\"}");
  ASSERT_STR_CONTAINS(b.data, "\"sparse_format\": null, \"sparse_costs\": null");
  moss_buf_deinit(&b);
  moss_buf_init(&b, &ctx);
  ASSERT_EQ(moss_report_csv(&ctx, r, &b), MOSS_OK);
  ASSERT_STR_CONTAINS(b.data, ",dense,32,64,41,34,-,-,,,\n"); /* no measurement: empty cells */
  moss_buf_deinit(&b);
  moss_buf_init(&b, &ctx);
  ASSERT_EQ(moss_report_html(&ctx, r, &b), MOSS_OK);
  ASSERT_STR_CONTAINS(b.data, "<td class=\"fmt\"><span><b>dense 32</b></span>, <span>csr 64</span>, "
                              "<span><abbr title=\"block4x1\">4x1</abbr> 41</span>, <span><abbr "
                              "title=\"block1x4\">1x4</abbr> 34</span>, <span>2:4 -</span>, <span><abbr title=\"columns\">cols</abbr> -</span></td>");
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
  reps[0] = cost(&ctx, DATA "cost-two.xml", 0, 0, 0, 0); /* 41888 pJ, 288 ns, 192 B */
  reps[1] = NULL;
  reps[2] = cost(&ctx, DATA "cost-two.xml", 0, 1, 0, 0); /* 5848 pJ, 124 ns, 192 B */
  ASSERT_TRUE(reps[0] && reps[2]);
  moss_buf_init(&b, &ctx);
  moss_compare_table(names, reps, errs, 3, &b);
  a = strstr(b.data, "\n1    cost-two-npu");
  c = strstr(b.data, "\n2    cost-two ");
  d = strstr(b.data, "\n-    broken       failed: no such target");
  ASSERT_TRUE(a && c && d && a < c && c < d);
  ASSERT_STR_CONTAINS(b.data, "5.85 nJ");
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

/* ------------------------------------------------------------------ issue 12 */

/* Costs |g| (planned, devices set) on |target|; |g| is destroyed. */
static moss_cost_report *cost_graph(moss_ctx *ctx, const char *target, moss_graph *g) {
  moss_target *t;
  moss_cost_report *r = NULL;
  if (!g) return NULL;
  if (moss_target_load(ctx, target, &t) != MOSS_OK) {
    moss_graph_destroy(ctx, g);
    return NULL;
  }
  if (moss_cost_compute(ctx, g, t, NULL, &r) != MOSS_OK) r = NULL;
  moss_graph_destroy(ctx, g);
  moss_target_destroy(ctx, t);
  return r;
}

static float big_w[256 * 64];

/* Y f32[M,N] = X[M,K] x W[K,N], W constant (ones), one MatMul on |dev|. X is
 * a graph input and Y a graph output, so the arena is empty. */
static moss_graph *matmul(moss_ctx *ctx, int64_t M, int64_t K, int64_t N, int dev) {
  moss_graph *g;
  moss_value *x, *w, *y;
  moss_node *n;
  int64_t wd[2], arena, i;
  wd[0] = K;
  wd[1] = N;
  for (i = 0; i < K * N && i < (int64_t)(sizeof big_w / sizeof big_w[0]); i++) big_w[i] = 1;
  if (moss_graph_create(ctx, &g) != MOSS_OK) return NULL;
  g->name = "matmul";
  x = tensor(ctx, g, "X", MOSS_DT_F32, M, K);
  w = moss_graph_add_constant(ctx, g, "W", MOSS_DT_F32, 2, wd, big_w);
  y = tensor(ctx, g, "Y", MOSS_DT_F32, M, N);
  g->inputs = moss_graph_alloc(g, sizeof(moss_value *));
  g->outputs = moss_graph_alloc(g, sizeof(moss_value *));
  x->input_index = 0;
  g->inputs[g->ninputs++] = x;
  y->output_index = 0;
  g->outputs[g->noutputs++] = y;
  n = moss_graph_add_node(ctx, g, "MatMul", "mm", 2, 1);
  n->inputs[0] = x;
  n->inputs[1] = w;
  n->outputs[0] = y;
  n->device = dev;
  y->producer = n;
  if (moss_plan_compute(ctx, g, &arena) != MOSS_OK) {
    moss_graph_destroy(ctx, g);
    return NULL;
  }
  return g;
}

/* Y = Relu(X), X [1,4] of |dt|, on the cpu. */
static moss_graph *relu_of(moss_ctx *ctx, moss_dtype dt) {
  moss_graph *g;
  moss_value *x, *y;
  moss_node *n;
  int64_t arena;
  if (moss_graph_create(ctx, &g) != MOSS_OK) return NULL;
  g->name = "relu";
  x = tensor(ctx, g, "X", dt, 1, 4);
  y = tensor(ctx, g, "Y", dt, 1, 4);
  g->inputs = moss_graph_alloc(g, sizeof(moss_value *));
  g->outputs = moss_graph_alloc(g, sizeof(moss_value *));
  x->input_index = 0;
  g->inputs[g->ninputs++] = x;
  y->output_index = 0;
  g->outputs[g->noutputs++] = y;
  n = moss_graph_add_node(ctx, g, "Relu", "relu", 1, 1);
  n->inputs[0] = x;
  n->outputs[0] = y;
  y->producer = n;
  if (moss_plan_compute(ctx, g, &arena) != MOSS_OK) {
    moss_graph_destroy(ctx, g);
    return NULL;
  }
  return g;
}

/* Compute time divides by the threads the code runs with: one on a cpu
 * (moss's CPU code is single-threaded), every unit on a gpu or npu.
 *   cost-threads.xml (cost-two with a 4-core cpu and a 2-array npu0):
 *     mm on the cpu: 32 MACs / (2 per cycle x 1 thread) = 16 cycles (not 32 / 8 = 4);
 *     relu: 4 ops / 2 = 2 cycles. mm on npu0: 32 / (8 x 2 arrays) = 2 cycles.
 *   rpi4.xml, Y[64,64] = X[64,256] x W[256,64] on the cpu: 64 x 64 x 256 = 1048576
 *     MACs / (4 f32 MACs per cycle (one A72 core) x 1 thread) = 262144 cycles. Memory:
 *     the arena is empty, so X and Y (65536 + 16384 B) are in l1 (24 GB/s): 81920 x
 *     1500 / 24000 = 5120 cycles; W (65536 B > the 32 KiB l1) in l2 (12 GB/s): 65536 x
 *     1500 / 12000 = 8192 cycles. Time = 262144 / 1.5 GHz = 174.76 us (the old rule,
 *     8 MACs x 4 cores, said 21.8 us).
 *   jetson-orin-nano.xml, the same MatMul on the gpu (8 SMs, 128 f32 MACs per SM per
 *     cycle): 1048576 / (128 x 8) = 1024 cycles. */
TEST(compute_time_uses_the_threads_the_code_runs_on) {
  moss_ctx ctx;
  moss_cost_report *r;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = cost(&ctx, DATA "cost-threads.xml", 0, 0, 0, 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_EQ(r->devices[0].threads, 1);
  ASSERT_EQ(r->devices[1].threads, 2);
  ASSERT_REL(r->nodes[0].compute_cycles.value, 16);
  ASSERT_STR_CONTAINS(r->nodes[0].compute_cycles.source, "1 thread");
  ASSERT_STR_CONTAINS(r->nodes[0].compute_cycles.source, "one thread of the device's 4 cores");
  ASSERT_REL(r->nodes[1].compute_cycles.value, 2);
  moss_cost_destroy(&ctx, r);
  r = cost(&ctx, DATA "cost-threads.xml", 0, 1, 0, 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_REL(r->nodes[0].compute_cycles.value, 2);
  moss_cost_destroy(&ctx, r);

  r = cost_graph(&ctx, "rpi4", matmul(&ctx, 64, 256, 64, 0));
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_REL(r->nodes[0].macs_dense, 1048576);
  ASSERT_REL(r->nodes[0].compute_cycles.value, 262144);
  ASSERT_EQ(r->nodes[0].act_level, 0);
  ASSERT_EQ(r->nodes[0].weight_level, 1);
  ASSERT_REL(r->nodes[0].mem_cycles[0].value, 5120);
  ASSERT_REL(r->nodes[0].mem_cycles[1].value, 8192);
  ASSERT_REL(r->nodes[0].time_s.value, 262144 / 1.5e9);
  moss_cost_destroy(&ctx, r);

  r = cost_graph(&ctx, "jetson-orin-nano", matmul(&ctx, 64, 256, 64, 1));
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_EQ(r->devices[1].threads, 8);
  ASSERT_REL(r->nodes[0].compute_cycles.value, 1024);
  moss_cost_destroy(&ctx, r);
}

/* The shipped targets' figures against sources moss does not control:
 *   rpi4: one Cortex-A72 core at 2.0 GHz ran 15.875 single-precision GFLOPS in
 *     vfpbench (wlog.flatlib.jp, 2015-10-30): 15.875e9 / (2 flops x 2.0e9) = 3.97
 *     MACs per cycle; the file's f32 rate must be that within 1 %, and i8 (widening
 *     multiplies, on one of the two pipes) at most twice it.
 *   every file in targets/: a memory level is at least as fast as every level
 *     outside it (where both give a bandwidth): data comes in through the inner
 *     levels, so an outer one cannot feed a core faster. */
TEST(target_figures_hold_against_sources) {
  moss_ctx ctx;
  moss_target *t;
  const char *dir = getenv("MOSS_TARGETS_DIR");
  DIR *d;
  struct dirent *e;
  int files = 0;
  moss_ctx_init(&ctx, moss_allocator_libc());
  ASSERT_EQ(moss_target_load(&ctx, "rpi4", &t), MOSS_OK);
  ASSERT_TRUE(fabs(moss_target_device_macs_per_cycle(t, 0, "f32") - 15.875e9 / 4e9) <=
              0.01 * 15.875e9 / 4e9);
  ASSERT_TRUE(moss_target_device_macs_per_cycle(t, 0, "i8") <=
              2 * moss_target_device_macs_per_cycle(t, 0, "f32"));
  moss_target_destroy(&ctx, t);

  d = opendir(dir && *dir ? dir : "targets");
  ASSERT_TRUE(d != NULL);
  while ((e = readdir(d)) != NULL) {
    char path[1024];
    size_t n = strlen(e->d_name);
    int i, k, j;
    if (n <= 4 || strcmp(e->d_name + n - 4, ".xml") != 0) continue;
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "targets", e->d_name);
    if (moss_target_load(&ctx, path, &t) != MOSS_OK) {
      closedir(d);
      FAIL_("%s: %s", path, ctx.last);
    }
    files++;
    for (i = 0; i < moss_target_device_count(t); i++)
      for (k = 0; k < moss_target_device_level_count(t, i); k++)
        for (j = k + 1; j < moss_target_device_level_count(t, i); j++) {
          moss_target_level in, out;
          moss_target_device_level(t, i, k, &in);
          moss_target_device_level(t, i, j, &out);
          if (in.bandwidth_gbps > 0 && out.bandwidth_gbps > 0 &&
              in.bandwidth_gbps < out.bandwidth_gbps) {
            closedir(d);
            FAIL_("%s: device '%s': level %s (%g GB/s) is slower than %s (%g GB/s) outside it",
                  e->d_name, moss_target_device_id(t, i), in.name, in.bandwidth_gbps, out.name,
                  out.bandwidth_gbps);
          }
        }
    moss_target_destroy(&ctx, t);
  }
  closedir(d);
  ASSERT_TRUE(files >= 13);
}

/* A supply several devices share is counted once.
 *   cost-shared.xml: cost-two with both devices on one board supply, idle 0.1 W,
 *     active 1 W. MatMul on npu0 (44 ns), Relu on the cpu (32 ns), transfers 32 + 16 ns
 *     (two_devices_and_transfers above): time 124 ns, busy 44 + 32 = 76 ns.
 *     Platform: 1 W x 76 ns + 0.1 W x (124 - 76) ns = 80.8 nJ, carried by the cpu
 *     (the first device of the supply); npu0 exactly 0. Counted per device, it was
 *     41.2 + (1 x 44 + 0.1 x 80) = 93.2 nJ.
 *   jetson-orin-nano.xml, everything on the cpu: the module's 15 W while busy, which is
 *     all the time, so platform / time = 15 W exactly (per device the idle gpu added
 *     its 3 W: 18 W).
 *   cost-shared-bad.xml: one supply, two figures: refused, naming both places. */
TEST(shared_supply_counted_once) {
  moss_ctx ctx;
  moss_cost_report *r;
  moss_target *t = NULL;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = cost(&ctx, DATA "cost-shared.xml", 0, 1, 0, 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_REL(r->total.time_s.value, 124e-9);
  ASSERT_REL(r->devices[0].platform_j.value, 80.8e-9);
  ASSERT_STR_CONTAINS(r->devices[0].platform_j.source, "shared supply 'board'");
  ASSERT_REL(r->devices[1].platform_j.value, 0);
  ASSERT_LABEL(r->devices[1].platform_j, "platform-model");
  ASSERT_STR_CONTAINS(r->devices[1].platform_j.source, "counted once, with device 'cpu'");
  ASSERT_REL(r->total.platform_j.value, 80.8e-9);
  ASSERT_TRUE(!strcmp(r->devices[1].power_shared, "board"));
  moss_cost_destroy(&ctx, r);

  r = cost(&ctx, "jetson-orin-nano", 0, 0, 0, 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_REL(r->total.platform_j.value / r->total.time_s.value, 15);
  ASSERT_REL(r->devices[1].platform_j.value, 0);
  moss_cost_destroy(&ctx, r);

  ASSERT_EQ(moss_target_load(&ctx, DATA "cost-shared-bad.xml", &t), MOSS_E_TARGET);
  ASSERT_TRUE(t == NULL);
  ASSERT_STR_CONTAINS(ctx.last, "cost-shared-bad.xml:15: device 'npu0': power shared=\"board\" "
                                "is idle 0.05 W, active 0.5 W, but device 'cpu' gives 0.1 W, "
                                "1 W for the same supply (");
}

/* A sparse weight is costed as the code stores and runs it: the MatMul of
 * model() with its weight in CSR (n->sparse, as the sparse pass would set it).
 *   Wt = W^T, 4 rows x 8 columns, row 0 zero: 24 nonzeros.
 *   bytes (docs/sparse.md's arrays): row_ptr 5 x 4 + col_idx 24 x 2 (uint16) + values
 *     24 x 4 = 20 + 48 + 96 = 164 B (the dense weight: 128 B). 164 > 100 B of sram: dram.
 *   time: the CSR rule's work 2.5 x 24 + 1 x 4 rows = 64 dense MACs for the one output
 *     row, / 2 per cycle = 32 cycles; dram 164 B at 0.5 GB/s = 328 ns = 32.8 cycles;
 *     sram 48 B = 4.8 cycles. Time 328 ns.
 *   energy: 24 stored values x 4 pJ = 96; sram 48 x 2 = 96; dram 164 x 100 = 16400;
 *     static 0.1 W x 328 ns = 32800. Sum 49392 pJ. */
TEST(sparse_weight_costed_as_emitted) {
  moss_ctx ctx;
  moss_cost_report *r;
  const moss_cost_node *mm;
  moss_ctx_init(&ctx, moss_allocator_libc());
  mm_sparse = 1; /* MOSS_SPARSE_CSR */
  r = cost(&ctx, DATA "cost-two.xml", 0, 0, 0, 0);
  mm_sparse = 0;
  if (!r) FAIL_("cost failed: %s", ctx.last);
  mm = &r->nodes[0];
  ASSERT_TRUE(!strcmp(mm->sparse_format, "csr"));
  ASSERT_REL(mm->weight_bytes, 164);
  ASSERT_EQ(r->total.weight_bytes, 164);
  ASSERT_EQ(mm->weight_level, 1);
  ASSERT_REL(mm->macs_dense, 32);
  ASSERT_REL(mm->macs_timed, 64);
  ASSERT_REL(mm->macs_effective, 24);
  ASSERT_REL(mm->compute_cycles.value, 32);
  ASSERT_STR_CONTAINS(mm->compute_cycles.source, "csr");
  ASSERT_REL(mm->mem_cycles[1].value, 32.8);
  ASSERT_REL(mm->time_s.value, 328e-9);
  ASSERT_REL(mm->compute_j.value, 96e-12);
  ASSERT_REL(mm->mem_j[1].value, 16400e-12);
  ASSERT_REL(mm->energy_j.value, 49392e-12);
  ASSERT_REL(r->baseline.weight_bytes, 128);
  moss_cost_destroy(&ctx, r);
}

/* cortex-m7.xml: the weights of the generated C are `static const`, in flash,
 * the read-only level; activations in dtcm (the arena, 64 B, fits).
 *   mm: compute 32 MACs / 1 per cycle = 32 cycles; dtcm 48 B at 3.84 GB/s = 48 x 480 /
 *     3840 = 6 cycles; flash 128 B at 1.536 GB/s = 128 x 480 / 1536 = 40 cycles.
 *     Time 40 / 480 MHz = 83.33 ns. Energy: 32 x 4.6 = 147.2; dtcm 48 x 2.5 = 120;
 *     flash 128 x 15 = 1920; static 0.01 W x 83.33 ns = 833.33. Sum 3020.53 pJ,
 *     complete (it was priced as dtcm reads, partial for want of a bandwidth). */
TEST(mcu_weights_read_from_flash) {
  moss_ctx ctx;
  moss_cost_report *r;
  const moss_cost_node *mm;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = cost(&ctx, "cortex-m7", 0, 0, 0, 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  mm = &r->nodes[0];
  ASSERT_TRUE(!strcmp(r->devices[0].level_name[2], "flash"));
  ASSERT_EQ(mm->weight_level, 2);
  ASSERT_EQ(mm->act_level, 0);
  ASSERT_REL(mm->mem_cycles[0].value, 6);
  ASSERT_REL(mm->mem_cycles[2].value, 40);
  ASSERT_REL(mm->time_s.value, 40 / 480e6);
  ASSERT_EQ(mm->time_s.partial, 0);
  ASSERT_REL(mm->mem_j[2].value, 1920e-12);
  ASSERT_LABEL(mm->mem_j[2], "estimate");
  ASSERT_REL(mm->energy_j.value, (147.2 + 120 + 1920) * 1e-12 + 0.01 * 40 / 480e6);
  ASSERT_EQ(mm->energy_j.partial, 0);
  moss_cost_destroy(&ctx, r);
}

/* What is not modeled is never a silent 0.
 *   c99.xml has no clock: every time, and the device's busy time, is not-modeled
 *     (JSON null with the label), not 0.
 *   cost-two.xml has no f16 rate: a Relu on f16 has work (4 ops) and no rate, so its
 *     compute cycles are not-modeled and its time partial.
 *   u8 takes the i8 rate (same width): 4 ops / 8 per cycle = 0.5 cycles. */
TEST(not_modeled_is_never_zero) {
  moss_ctx ctx;
  moss_cost_report *r;
  moss_buf b;
  moss_ctx_init(&ctx, moss_allocator_libc());
  r = cost(&ctx, "c99", 0, 0, 0, 0);
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_LABEL(r->devices[0].busy_s, "not-modeled");
  ASSERT_LABEL(r->nodes[0].mem_cycles[r->nodes[0].act_level], "not-modeled");
  moss_buf_init(&b, &ctx);
  ASSERT_EQ(moss_report_json(&ctx, r, &b), MOSS_OK);
  ASSERT_STR_CONTAINS(b.data, "\"busy_s\": {\"value\": null, \"label\": \"not-modeled\"");
  moss_buf_deinit(&b);
  moss_cost_destroy(&ctx, r);

  r = cost_graph(&ctx, DATA "cost-two.xml", relu_of(&ctx, MOSS_DT_F16));
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_LABEL(r->nodes[0].compute_cycles, "not-modeled");
  ASSERT_STR_CONTAINS(r->nodes[0].compute_cycles.source, "no MAC rate for f16");
  ASSERT_EQ(r->nodes[0].time_s.partial, 1);
  moss_buf_init(&b, &ctx);
  ASSERT_EQ(moss_report_json(&ctx, r, &b), MOSS_OK);
  ASSERT_STR_CONTAINS(b.data,
                      "\"compute_cycles\": {\"value\": null, \"label\": \"not-modeled\"");
  moss_buf_deinit(&b);
  moss_cost_destroy(&ctx, r);

  r = cost_graph(&ctx, DATA "cost-two.xml", relu_of(&ctx, MOSS_DT_U8));
  if (!r) FAIL_("cost failed: %s", ctx.last);
  ASSERT_REL(r->nodes[0].compute_cycles.value, 0.5);
  ASSERT_STR_CONTAINS(r->nodes[0].compute_cycles.source, "i8");
  moss_cost_destroy(&ctx, r);
}

/* A ratio says when it divides by (or divides) a partial figure. */
TEST(ratio_of_partial_figures_says_so) {
  moss_cost_figure a = {2e-9, "op-model", "", 0}, p = {1e-9, "op-model", "", 1};
  moss_cost_figure nm = {0, "not-modeled", "no power", 0}, x;
  x = moss_cost_ratio(&a, &a);
  ASSERT_REL(x.value, 1);
  ASSERT_EQ(x.partial, 0);
  x = moss_cost_ratio(&a, &p);
  ASSERT_REL(x.value, 2);
  ASSERT_EQ(x.partial, 1);
  ASSERT_STR_CONTAINS(x.source, "divides by a partial figure");
  x = moss_cost_ratio(&p, &a);
  ASSERT_EQ(x.partial, 1);
  x = moss_cost_ratio(&a, &nm);
  ASSERT_LABEL(x, "not-modeled");
}

TEST_MAIN()
