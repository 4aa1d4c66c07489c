/* test_robust.c - the importer and the passes on damaged models: every
 * prefix of a real model (truncation at each byte) and thousands of
 * deterministic random byte mutations of it must give MOSS_OK or a
 * diagnostic, never a crash, a hang or a leak (the suite also runs under
 * ASan/UBSan, which turn any bad access here into a failure). The intact
 * models also compile with each allocation failing in turn. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "import/onnx.h"
#include "oom.h"
#include "passes/passes.h"
#include "plan/plan.h"

static uint8_t *g_model;
static size_t g_size;

static void load(const char *name) {
  char path[1024];
  FILE *f;
  long n;
  snprintf(path, sizeof path, "%s/%s", MOSS_E2E_DIR, name);
  f = fopen(path, "rb");
  if (!f) return;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  free(g_model);
  g_model = malloc((size_t)n);
  g_size = g_model && fread(g_model, 1, (size_t)n, f) == (size_t)n ? (size_t)n : 0;
  fclose(f);
}

/* Import, then every pass and the planner, as the driver does, in |ctx|. */
static moss_status compile_in(moss_ctx *ctx, const uint8_t *data, size_t size, const char *shape) {
  moss_graph *g;
  moss_onnx_binding b[1] = {{"input", NULL, NULL}};
  moss_pass_fn passes[] = {moss_pass_check, moss_pass_infer, moss_pass_bn_fold,
                           moss_pass_fuse, moss_pass_fold, moss_pass_dce};
  moss_status st;
  size_t i;
  int64_t arena;
  b[0].shape = shape;
  ctx->debug = 1;
  st = moss_onnx_import_memory(ctx, NULL, data, size, b, 1, &g);
  if (st != MOSS_OK) return ctx->nerrors ? st : MOSS_E_INTERNAL;
  st = moss_graph_sort(ctx, g);
  for (i = 0; st == MOSS_OK && i < sizeof passes / sizeof passes[0]; i++) {
    st = passes[i](ctx, g);
    if (st == MOSS_OK) st = moss_ir_verify(ctx, g);
  }
  if (st == MOSS_OK) st = moss_plan_compute(ctx, g, &arena);
  moss_graph_destroy(ctx, g);
  /* A failure must come with a message. */
  if (st != MOSS_OK && ctx->nerrors == 0) return MOSS_E_INTERNAL;
  return st;
}

static moss_status compile_bytes(const uint8_t *data, size_t size, const char *shape) {
  moss_ctx ctx;
  moss_ctx_init(&ctx, moss_allocator_libc());
  return compile_in(&ctx, data, size, shape);
}

TEST(intact_models_compile) {
  load("mlp.onnx");
  ASSERT_TRUE(g_size > 0);
  ASSERT_EQ(compile_bytes(g_model, g_size, "2x64"), MOSS_OK);
  load("cnn.onnx");
  ASSERT_TRUE(g_size > 0);
  ASSERT_EQ(compile_bytes(g_model, g_size, "2x1x8x8"), MOSS_OK);
}

/* The same with allocation N failing, N = 1, 2, ...: out-of-memory and
 * nothing leaked (oom.h), until the run that completes. */
TEST(intact_models_under_allocation_failure) {
  static const char *models[2][2] = {{"mlp.onnx", "2x64"}, {"cnn.onnx", "2x1x8x8"}};
  int m;
  for (m = 0; m < 2; m++) {
    load(models[m][0]);
    ASSERT_TRUE(g_size > 0);
    OOM_LOOP {
      moss_ctx ctx;
      moss_status st;
      oom_ctx_init(&ctx);
      st = OOM_CALL(&ctx, compile_in(&ctx, g_model, g_size, models[m][1]));
      if (OOM_STOPPED()) continue;
      ASSERT_EQ(st, MOSS_OK);
    }
  }
}

TEST(every_truncation) {
  size_t n;
  load("cnn.onnx");
  ASSERT_TRUE(g_size > 0);
  for (n = 0; n < g_size; n++) {
    moss_status st = compile_bytes(g_model, n, "2x1x8x8");
    if (st == MOSS_E_INTERNAL) FAIL_("truncation at %zu bytes: internal error or silent failure", n);
  }
}

TEST(random_mutations) {
  uint8_t *copy;
  unsigned seed = 12345;
  int round, k, nok = 0;
  load("cnn.onnx");
  ASSERT_TRUE(g_size > 0);
  copy = malloc(g_size);
  ASSERT_TRUE(copy != NULL);
  for (round = 0; round < 20000; round++) {
    moss_status st;
    memcpy(copy, g_model, g_size);
    for (k = 0; k < 1 + round % 4; k++) {
      seed = seed * 1103515245u + 12345u;
      copy[(seed >> 8) % g_size] = (uint8_t)(seed >> 24);
    }
    st = compile_bytes(copy, g_size, "2x1x8x8");
    nok += st == MOSS_OK;
    if (st == MOSS_E_INTERNAL) {
      free(copy);
      FAIL_("mutation round %d: internal error or silent failure", round);
    }
  }
  free(copy);
  /* Most single-byte changes land in weights: they must still compile. */
  printf("  %d of 20000 mutated models compiled, the rest were refused with a message\n", nok);
  ASSERT_TRUE(nok > 1000);
}

TEST_MAIN()
