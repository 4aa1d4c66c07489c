/* test_import.c - the importer and the front of the pipeline on bad input:
 * each malformed model from scripts/make_test_models.py gets one clear
 * message in the DESIGN.md shape and a failing status, never a crash.
 * Each test runs the whole compile with allocation N failing, N = 1, 2, ...
 * (oom.h): out-of-memory and nothing leaked, until the run that completes;
 * two digits models take the same runs through every stage. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "oom.h"
#include "driver/driver.h"
#include "target/target.h"

static char g_msgs[8192];
static int g_nmsgs;

static void sink(void *user, moss_status code, const char *msg) {
  size_t n = strlen(g_msgs);
  (void)user;
  (void)code;
  snprintf(g_msgs + n, sizeof g_msgs - n, "%s\n", msg);
  g_nmsgs++;
}

/* Compiles the model at |path| to C in a temporary folder, on the counting
 * allocator with failures armed (then OOM_STOPPED() tells whether the
 * allocation to fail was reached); |prune|: --prune, or NULL; |t|: the c99
 * target already loaded, or NULL to load it. */
static moss_status compile_path(const char *path, moss_onnx_binding *b, int nb,
                                const char *prune, const moss_target *t) {
  moss_ctx ctx;
  moss_compile_opts o;
  oom_ctx_init(&ctx);
  ctx.sink = sink;
  g_msgs[0] = 0;
  g_nmsgs = 0;
  memset(&o, 0, sizeof o);
  o.model = path;
  o.out = MOSS_TEST_OUT_DIR;
  o.target = "c99";
  o.emit = "c";
  o.bindings = b;
  o.nbindings = nb;
  o.prune = prune;
  o.loaded_target = t;
  return OOM_CALL(&ctx, moss_compile(&ctx, &o));
}

/* The same for tests/unit/data/models/<name>. */
static moss_status compile(const char *name, moss_onnx_binding *b, int nb) {
  char path[1024];
  snprintf(path, sizeof path, "%s/models/%s", MOSS_TEST_DATA_DIR, name);
  return compile_path(path, b, nb, NULL, NULL);
}

TEST(good_model_compiles) {
  OOM_LOOP {
    moss_status st = compile("good.onnx", NULL, 0);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_EQ(g_nmsgs, 0);
  }
}

/* An If whose constant condition picks a branch holding an LSTM: the
 * subgraph import, the branch put in the If's place and the LSTM's time
 * steps, every allocation of them failed in turn. */
TEST(if_with_lstm_compiles) {
  OOM_LOOP {
    moss_status st = compile("if_lstm.onnx", NULL, 0);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_EQ(g_nmsgs, 0);
  }
}

/* A Loop feeding a Scan, both unrolled, every allocation failed in turn. */
TEST(loop_and_scan_compile) {
  OOM_LOOP {
    moss_status st = compile("loop_scan.onnx", NULL, 0);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_EQ(g_nmsgs, 0);
  }
}

TEST(truncated) {
  OOM_LOOP {
    moss_status st = compile("truncated.onnx", NULL, 0);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_E_INVALID_MODEL);
    ASSERT_EQ(g_nmsgs, 1);
    ASSERT_STR_CONTAINS(g_msgs, "truncated.onnx: invalid-model: not an ONNX model");
  }
}

TEST(not_protobuf) {
  OOM_LOOP {
    moss_status st = compile("not_protobuf.onnx", NULL, 0);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_E_INVALID_MODEL);
    ASSERT_STR_CONTAINS(g_msgs, "not_protobuf.onnx: invalid-model: not an ONNX model");
  }
}

TEST(missing_file) {
  OOM_LOOP {
    moss_status st = compile("no_such_model.onnx", NULL, 0);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_E_IO);
    ASSERT_STR_CONTAINS(g_msgs, "io: cannot open");
  }
}

TEST(missing_initializer) {
  OOM_LOOP {
    moss_status st = compile("missing_initializer.onnx", NULL, 0);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_E_INVALID_MODEL);
    ASSERT_STR_CONTAINS(g_msgs, "node 'add0' (Add): invalid-model: input 'missing_w' is neither");
  }
}

TEST(inconsistent_shapes) {
  OOM_LOOP {
    moss_status st = compile("inconsistent_shapes.onnx", NULL, 0);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_E_INVALID_MODEL);
    ASSERT_STR_CONTAINS(g_msgs, "node 'add_bad' (Add): invalid-model: shapes do not broadcast");
  }
}

TEST(unknown_dtype) {
  OOM_LOOP {
    moss_status st = compile("unknown_dtype.onnx", NULL, 0);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_E_INVALID_MODEL);
    ASSERT_STR_CONTAINS(g_msgs, "invalid-model: graph input 'x' has unknown type 99");
  }
}

TEST(cycle) {
  OOM_LOOP {
    moss_status st = compile("cycle.onnx", NULL, 0);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_E_INVALID_MODEL);
    ASSERT_STR_CONTAINS(g_msgs, "invalid-model: the graph has a cycle");
  }
}

TEST(every_unsupported_node_is_listed) {
  OOM_LOOP {
    moss_status st = compile("two_unsupported.onnx", NULL, 0);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_E_UNSUPPORTED);
    ASSERT_EQ(g_nmsgs, 2);
    ASSERT_STR_CONTAINS(g_msgs, "node 'frob_a' (FrobnicateA): unsupported: operator 'FrobnicateA'");
    ASSERT_STR_CONTAINS(g_msgs, "node 'frob_b' (FrobnicateB): unsupported: operator 'FrobnicateB'");
  }
}

TEST(custom_domain_is_unsupported) {
  OOM_LOOP {
    moss_status st = compile("custom_domain.onnx", NULL, 0);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_E_UNSUPPORTED);
    ASSERT_STR_CONTAINS(g_msgs, "node 'frob0' (Frob): unsupported: operator domain 'com.example'");
  }
}

TEST(symbolic_dimension_needs_binding) {
  OOM_LOOP {
    moss_status st = compile("shape_input.onnx", NULL, 0);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_E_INVALID_MODEL);
    ASSERT_STR_CONTAINS(g_msgs, "symbolic dimension 0 ('batch'); bind it with --input-shape x=");
  }
}

TEST(shape_input_needs_constant) {
  OOM_LOOP {
    moss_onnx_binding b[1] = {{"x", "2x6", NULL}};
    moss_status st = compile("shape_input.onnx", b, 1);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_E_UNSUPPORTED);
    ASSERT_STR_CONTAINS(g_msgs, "node 'reshape0' (Reshape): unsupported: input 'shape'");
    ASSERT_STR_CONTAINS(g_msgs, "--constant shape=FILE");
  }
}

TEST(shape_input_frozen) {
  OOM_LOOP {
    char file[1024];
    moss_onnx_binding b[2] = {{"x", "2x6", NULL}, {"shape", NULL, file}};
    moss_status st;
    snprintf(file, sizeof file, "%s/models/shape_3x4.npy", MOSS_TEST_DATA_DIR);
    st = compile("shape_input.onnx", b, 2);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_OK);
  }
}

TEST(bad_input_shape_text) {
  OOM_LOOP {
    moss_onnx_binding b[1] = {{"x", "2xq", NULL}};
    moss_status st = compile("shape_input.onnx", b, 1);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_E_INVALID_MODEL);
    ASSERT_STR_CONTAINS(g_msgs, "bad shape '2xq'");
  }
}

TEST(binding_unknown_input) {
  OOM_LOOP {
    moss_onnx_binding b[2] = {{"x", "2x6", NULL}, {"nope", "1", NULL}};
    moss_status st = compile("shape_input.onnx", b, 2);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_E_INVALID_MODEL);
    ASSERT_STR_CONTAINS(g_msgs, "'nope', which is not a graph input");
  }
}

TEST(external_data) {
  OOM_LOOP {
    moss_status st = compile("external.onnx", NULL, 0);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_OK);
  }
}

/* Three digits models of tests/e2e through every stage but the C
 * compiler: the QDQ CNN through the qdq pass (Conv, MaxPool, Flatten and
 * Gemm folded), the float MLP through --prune and the sparse pass, the MLP
 * in ONNX Runtime's QOperator form through the contrib pass (QGemm); all
 * through partition, plan, cost and the C backend. The target is loaded
 * once (the tests above fail its allocations too). */
TEST(digits_models_through_every_stage) {
  static const struct {
    const char *file, *shape, *prune;
  } models[] = {{"cnn_qdq_pc.onnx", "2x1x8x8", NULL},
                {"mlp.onnx", "2x64", "magnitude:0.9"},
                {"../ort_quant/mlp_qop_pc_u8.onnx", "2x64", NULL}};
  size_t m;
  moss_ctx tctx;
  moss_target *t;
  moss_ctx_init(&tctx, moss_allocator_libc());
  ASSERT_EQ(moss_target_load(&tctx, "c99", &t), MOSS_OK);
  for (m = 0; m < sizeof models / sizeof models[0]; m++) OOM_LOOP {
    char path[1024];
    moss_onnx_binding b[1] = {{"input", NULL, NULL}};
    moss_status st;
    b[0].shape = models[m].shape;
    snprintf(path, sizeof path, "%s/%s", MOSS_E2E_DIR, models[m].file);
    st = compile_path(path, b, 1, models[m].prune, t);
    if (OOM_STOPPED()) continue;
    if (st != MOSS_OK) FAIL_("%s: %s", models[m].file, g_msgs);
  }
  moss_target_destroy(&tctx, t);
}

/* No --input-shape on a model whose only open dimension is its batch axis
 * (passes/batch.c): the digits MLP compiles for batch 1, and its header
 * says it runs over slices of axis 0; a Loop whose body reads rows of the
 * input (tests/e2e/control) is refused. Both through the second import
 * and inference at batch 2, with allocation N failing. */
TEST(batch_axis_without_input_shape) {
  moss_ctx tctx;
  moss_target *t;
  moss_ctx_init(&tctx, moss_allocator_libc());
  ASSERT_EQ(moss_target_load(&tctx, "c99", &t), MOSS_OK);
  OOM_LOOP {
    char path[1024];
    moss_status st;
    snprintf(path, sizeof path, "%s/mlp.onnx", MOSS_E2E_DIR);
    st = compile_path(path, NULL, 0, NULL, t);
    if (OOM_STOPPED()) continue;
    if (st != MOSS_OK) FAIL_("mlp.onnx: %s", g_msgs);
  }
  {
    char hdr[4096];
    FILE *f = fopen(MOSS_TEST_OUT_DIR "/mlp.h", "r");
    size_t n;
    ASSERT_TRUE(f != NULL);
    n = fread(hdr, 1, sizeof hdr - 1, f);
    fclose(f);
    hdr[n] = 0;
    ASSERT_STR_CONTAINS(hdr, "#define MLP_BATCH_AXIS 0");
    ASSERT_STR_CONTAINS(hdr, "#define MLP_IN0_DIMS 1, 64");
  }
  OOM_LOOP {
    char path[1024];
    moss_status st;
    snprintf(path, sizeof path, "%s/../control/loop_range.onnx", MOSS_E2E_DIR);
    st = compile_path(path, NULL, 0, NULL, t);
    if (OOM_STOPPED()) continue;
    ASSERT_EQ(st, MOSS_E_INVALID_MODEL);
    ASSERT_STR_CONTAINS(g_msgs, "not batch-independent");
    ASSERT_STR_CONTAINS(g_msgs, "bind the batch with --input-shape ");
  }
  moss_target_destroy(&tctx, t);
}

TEST_MAIN()
