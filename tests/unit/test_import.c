/* test_import.c - the importer and the front of the pipeline on bad input:
 * each malformed model from scripts/make_test_models.py gets one clear
 * message in the DESIGN.md shape and a failing status, never a crash. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "driver/driver.h"

static char g_msgs[8192];
static int g_nmsgs;

static void sink(void *user, moss_status code, const char *msg) {
  size_t n = strlen(g_msgs);
  (void)user;
  (void)code;
  snprintf(g_msgs + n, sizeof g_msgs - n, "%s\n", msg);
  g_nmsgs++;
}

/* Compiles tests/unit/data/models/<name> into a temporary folder. */
static moss_status compile(const char *name, moss_onnx_binding *b, int nb) {
  moss_ctx ctx;
  moss_compile_opts o;
  char path[1024];
  moss_ctx_init(&ctx, moss_allocator_libc());
  ctx.sink = sink;
  g_msgs[0] = 0;
  g_nmsgs = 0;
  snprintf(path, sizeof path, "%s/models/%s", MOSS_TEST_DATA_DIR, name);
  memset(&o, 0, sizeof o);
  o.model = path;
  o.out = MOSS_TEST_OUT_DIR;
  o.target = "c99";
  o.emit = "c";
  o.bindings = b;
  o.nbindings = nb;
  return moss_compile(&ctx, &o);
}

TEST(good_model_compiles) {
  ASSERT_EQ(compile("good.onnx", NULL, 0), MOSS_OK);
  ASSERT_EQ(g_nmsgs, 0);
}

TEST(truncated) {
  ASSERT_EQ(compile("truncated.onnx", NULL, 0), MOSS_E_INVALID_MODEL);
  ASSERT_EQ(g_nmsgs, 1);
  ASSERT_STR_CONTAINS(g_msgs, "truncated.onnx: invalid-model: not an ONNX model");
}

TEST(not_protobuf) {
  ASSERT_EQ(compile("not_protobuf.onnx", NULL, 0), MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_msgs, "not_protobuf.onnx: invalid-model: not an ONNX model");
}

TEST(missing_file) {
  ASSERT_EQ(compile("no_such_model.onnx", NULL, 0), MOSS_E_IO);
  ASSERT_STR_CONTAINS(g_msgs, "io: cannot open");
}

TEST(missing_initializer) {
  ASSERT_EQ(compile("missing_initializer.onnx", NULL, 0), MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_msgs, "node 'add0' (Add): invalid-model: input 'missing_w' is neither");
}

TEST(inconsistent_shapes) {
  ASSERT_EQ(compile("inconsistent_shapes.onnx", NULL, 0), MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_msgs, "node 'add_bad' (Add): invalid-model: shapes do not broadcast");
}

TEST(unknown_dtype) {
  ASSERT_EQ(compile("unknown_dtype.onnx", NULL, 0), MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_msgs, "invalid-model: graph input 'x' has unknown type 99");
}

TEST(cycle) {
  ASSERT_EQ(compile("cycle.onnx", NULL, 0), MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_msgs, "invalid-model: the graph has a cycle");
}

TEST(every_unsupported_node_is_listed) {
  ASSERT_EQ(compile("two_unsupported.onnx", NULL, 0), MOSS_E_UNSUPPORTED);
  ASSERT_EQ(g_nmsgs, 2);
  ASSERT_STR_CONTAINS(g_msgs, "node 'frob_a' (FrobnicateA): unsupported: operator 'FrobnicateA'");
  ASSERT_STR_CONTAINS(g_msgs, "node 'frob_b' (FrobnicateB): unsupported: operator 'FrobnicateB'");
}

TEST(symbolic_dimension_needs_binding) {
  ASSERT_EQ(compile("shape_input.onnx", NULL, 0), MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_msgs, "symbolic dimension 0 ('batch'); bind it with --input-shape x=");
}

TEST(shape_input_needs_constant) {
  moss_onnx_binding b[1] = {{"x", "2x6", NULL}};
  ASSERT_EQ(compile("shape_input.onnx", b, 1), MOSS_E_UNSUPPORTED);
  ASSERT_STR_CONTAINS(g_msgs, "node 'reshape0' (Reshape): unsupported: input 'shape'");
  ASSERT_STR_CONTAINS(g_msgs, "--constant shape=FILE");
}

TEST(shape_input_frozen) {
  char file[1024];
  moss_onnx_binding b[2] = {{"x", "2x6", NULL}, {"shape", NULL, file}};
  snprintf(file, sizeof file, "%s/models/shape_3x4.npy", MOSS_TEST_DATA_DIR);
  ASSERT_EQ(compile("shape_input.onnx", b, 2), MOSS_OK);
}

TEST(bad_input_shape_text) {
  moss_onnx_binding b[1] = {{"x", "2xq", NULL}};
  ASSERT_EQ(compile("shape_input.onnx", b, 1), MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_msgs, "bad shape '2xq'");
}

TEST(binding_unknown_input) {
  moss_onnx_binding b[2] = {{"x", "2x6", NULL}, {"nope", "1", NULL}};
  ASSERT_EQ(compile("shape_input.onnx", b, 2), MOSS_E_INVALID_MODEL);
  ASSERT_STR_CONTAINS(g_msgs, "'nope', which is not a graph input");
}

TEST(external_data) {
  ASSERT_EQ(compile("external.onnx", NULL, 0), MOSS_OK);
}

TEST_MAIN()
