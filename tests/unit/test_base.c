/* test_base.c - compiler/base: arena alignment and reuse, checked sizes,
 * the text buffer, SHA-256 against the FIPS 180-2 test vectors, and .npy
 * files read back after writing; and the allocation-failure harness of
 * tests/unit/oom.h, on small functions with each kind of bug it must catch. */
#include <string.h>

#include "harness.h"
#include "import/onnx.h"
#include "oom.h"

TEST(arena_alignment) {
  moss_arena *ar;
  int i;
  ASSERT_EQ(moss_arena_create(moss_allocator_libc(), 1024, &ar), MOSS_OK);
  for (i = 0; i < 100; i++) {
    char *p = moss_arena_alloc(ar, (size_t)(i * 37 % 500 + 1), 64);
    ASSERT_TRUE(p != NULL);
    ASSERT_EQ((uintptr_t)p % 64, 0);
    memset(p, 0xab, (size_t)(i * 37 % 500 + 1));
  }
  moss_arena_reset(ar);
  ASSERT_TRUE(moss_arena_alloc(ar, 5000, 16) != NULL);
  moss_arena_destroy(ar);
}

TEST(size_arithmetic) {
  size_t out;
  ASSERT_EQ(moss_size_mul((size_t)1 << 40, (size_t)1 << 30, &out), 0);
  ASSERT_EQ(moss_size_mul(3, 5, &out), 1);
  ASSERT_EQ(out, 15);
  ASSERT_EQ(moss_size_add((size_t)-1, 1, &out), 0);
}

TEST(sha256_vectors) {
  char h[65];
  moss_sha256_hex("abc", 3, h);
  ASSERT_TRUE(!strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
  moss_sha256_hex("", 0, h);
  ASSERT_TRUE(!strcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  moss_sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, h);
  ASSERT_TRUE(!strcmp(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
}

TEST(buf_printf) {
  moss_ctx ctx;
  moss_buf b;
  int i;
  moss_ctx_init(&ctx, moss_allocator_libc());
  moss_buf_init(&b, &ctx);
  for (i = 0; i < 1000; i++) moss_buf_printf(&b, "%d,", i);
  ASSERT_TRUE(!b.failed);
  ASSERT_TRUE(!strncmp(b.data, "0,1,2,", 6));
  ASSERT_EQ(b.len, strlen(b.data));
  moss_buf_deinit(&b);
}

TEST(npy_round_trip) {
  moss_ctx ctx;
  moss_graph *g;
  moss_value *v;
  int64_t dims[3] = {2, 1, 3};
  float data[6] = {1.5f, -2, 3, 4, 5, 6e-8f};
  char path[1024];
  moss_ctx_init(&ctx, moss_allocator_libc());
  snprintf(path, sizeof path, "%s/rt.npy", MOSS_TEST_OUT_DIR);
  ASSERT_EQ(moss_npy_write(&ctx, path, MOSS_DT_F32, 3, dims, data), MOSS_OK);
  ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
  ASSERT_EQ(moss_tensor_file_read(&ctx, g, path, &v), MOSS_OK);
  ASSERT_EQ(v->dtype, MOSS_DT_F32);
  ASSERT_EQ(v->rank, 3);
  ASSERT_EQ(v->dims[2], 3);
  ASSERT_TRUE(!memcmp(v->data, data, sizeof data));
  moss_graph_destroy(&ctx, g);
}

TEST(npy_reads_numpy_file) {
  /* Written by numpy (scripts/make_test_models.py): int64 [3, 4]. */
  moss_ctx ctx;
  moss_graph *g;
  moss_value *v;
  char path[1024];
  moss_ctx_init(&ctx, moss_allocator_libc());
  snprintf(path, sizeof path, "%s/models/shape_3x4.npy", MOSS_TEST_DATA_DIR);
  ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
  ASSERT_EQ(moss_tensor_file_read(&ctx, g, path, &v), MOSS_OK);
  ASSERT_EQ(v->dtype, MOSS_DT_I64);
  ASSERT_EQ(v->rank, 1);
  ASSERT_EQ(moss_value_get_i64(v, 0), 3);
  ASSERT_EQ(moss_value_get_i64(v, 1), 4);
  moss_graph_destroy(&ctx, g);
}

TEST(bad_tensor_file) {
  moss_ctx ctx;
  moss_graph *g;
  moss_value *v;
  char path[1024];
  moss_ctx_init(&ctx, moss_allocator_libc());
  snprintf(path, sizeof path, "%s/models/not_protobuf.onnx", MOSS_TEST_DATA_DIR);
  ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
  ASSERT_TRUE(moss_tensor_file_read(&ctx, g, path, &v) != MOSS_OK);
  ASSERT_STR_CONTAINS(ctx.last, "io:");
  moss_graph_destroy(&ctx, g);
}

/* ---- the allocation-failure harness itself (oom.h) ---- */

static void *g_kept;

/* Two allocations, each failure reported as out-of-memory: correct. */
static moss_status good(moss_ctx *ctx) {
  void *a = moss_alloc(ctx, 8), *b;
  if (!a) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "a");
  b = moss_alloc(ctx, 16);
  if (!b) {
    moss_free(ctx, a, 8);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "b");
  }
  moss_free(ctx, b, 16);
  moss_free(ctx, a, 8);
  return MOSS_OK;
}

/* Keeps its block on success: a leak. */
static moss_status leaks(moss_ctx *ctx) {
  g_kept = moss_alloc(ctx, 8);
  return g_kept ? MOSS_OK : moss_fail(ctx, MOSS_E_NOMEM, NULL, "x");
}

/* Leaks the first block when the second fails. */
static moss_status leaks_on_error(moss_ctx *ctx) {
  void *a = moss_alloc(ctx, 8), *b;
  if (!a) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "a");
  b = moss_alloc(ctx, 16);
  if (!b) {
    g_kept = a;
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "b");
  }
  moss_free(ctx, b, 16);
  moss_free(ctx, a, 8);
  return MOSS_OK;
}

/* Goes on without the block it did not get. */
static moss_status ignores(moss_ctx *ctx) {
  void *a = moss_alloc(ctx, 8);
  moss_free(ctx, a, 8);
  return MOSS_OK;
}

static moss_status wrong_category(moss_ctx *ctx) {
  void *a = moss_alloc(ctx, 8);
  if (!a) return moss_fail(ctx, MOSS_E_INTERNAL, NULL, "no block");
  moss_free(ctx, a, 8);
  return MOSS_OK;
}

static moss_status no_message(moss_ctx *ctx) {
  void *a = moss_alloc(ctx, 8);
  if (!a) return MOSS_E_NOMEM;
  moss_free(ctx, a, 8);
  return MOSS_OK;
}

static moss_status wrong_size(moss_ctx *ctx) {
  void *a = moss_alloc(ctx, 8);
  if (!a) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "a");
  moss_free(ctx, a, 4);
  return MOSS_OK;
}

/* Runs |fn| under OOM_LOOP; returns 1 when the harness failed it. */
static int harness_fails(moss_status (*fn)(moss_ctx *), long *out_runs) {
  int failed = 0, *failed_ = &failed;
  long runs = g_oom.total_runs;
  fprintf(stderr, "  (expected from the harness:)\n");
  OOM_LOOP {
    moss_ctx ctx;
    moss_status st;
    oom_ctx_init(&ctx);
    st = OOM_CALL(&ctx, fn(&ctx));
    if (OOM_STOPPED()) continue;
    if (st != MOSS_OK) failed = 1;
  }
  if (g_kept) oom_realloc(&g_oom, g_kept, 8, 0); /* what the leaky ones kept */
  g_kept = NULL;
  *out_runs = g_oom.total_runs - runs;
  return failed;
}

TEST(oom_harness_catches_each_bug) {
  long runs;
  ASSERT_EQ(harness_fails(good, &runs), 0);
  ASSERT_EQ(runs, 3); /* allocation 1 failing, 2 failing, then the clean run */
  ASSERT_EQ(harness_fails(leaks, &runs), 1);
  ASSERT_EQ(runs, 2);
  ASSERT_EQ(harness_fails(leaks_on_error, &runs), 1);
  ASSERT_EQ(runs, 2);
  ASSERT_EQ(harness_fails(ignores, &runs), 1);
  ASSERT_EQ(harness_fails(wrong_category, &runs), 1);
  ASSERT_EQ(harness_fails(no_message, &runs), 1);
  ASSERT_EQ(harness_fails(wrong_size, &runs), 1);
  ASSERT_EQ(runs, 2);
}

TEST_MAIN()
