/* test_plugin.c - the compile-side plugin loader (compiler/plugin/plugin.c)
 * with the elementwise example plugin: its supports() decisions on a graph
 * built with the IR API, a lowered subgraph run through the plugin's own
 * runtime side on hand-made inputs (expected outputs worked out by hand in
 * the comments), a corrupt blob, and one broken plugin per way a plugin can
 * be wrong, each with the message moss must give. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "diag_sink.h"
#include "harness.h"
#include "ir/ir.h"
#include "moss_plugin.h"
#include "plugin/plugin.h"

#define BROKEN(name) MOSS_PLUGIN_BROKEN_DIR "/" name ".so"

static void ctx_with_sink_file(moss_ctx *ctx, sink_buf *b) {
  ctx_with_sink(ctx, b);
  ctx->file = "model.onnx";
}

/* ---- graph building --------------------------------------------------------- */

static moss_value *val(moss_ctx *ctx, moss_graph *g, const char *name, moss_dtype dt, int rank,
                       int64_t d0, int64_t d1) {
  moss_value *v = moss_graph_add_value(ctx, g, name);
  v->dtype = dt;
  v->rank = rank;
  v->dims[0] = d0;
  v->dims[1] = d1;
  return v;
}

static moss_value *f32(moss_ctx *ctx, moss_graph *g, const char *name, int64_t d0, int64_t d1) {
  return val(ctx, g, name, MOSS_DT_F32, d1 ? 2 : 1, d0, d1);
}

static moss_node *node2(moss_ctx *ctx, moss_graph *g, const char *op, const char *name,
                        moss_value *a, moss_value *b, moss_value *out) {
  moss_node *n = moss_graph_add_node(ctx, g, op, name, b ? 2 : 1, 1);
  n->inputs[0] = a;
  if (b) n->inputs[1] = b;
  n->outputs[0] = out;
  out->producer = n;
  return n;
}

static moss_node *node1(moss_ctx *ctx, moss_graph *g, const char *op, const char *name,
                        moss_value *a, moss_value *out) {
  return node2(ctx, g, op, name, a, NULL, out);
}

static void set_io(moss_graph *g, moss_value **ins, int nin, moss_value **outs, int nout) {
  int i;
  g->inputs = moss_graph_alloc(g, sizeof(moss_value *) * (size_t)nin);
  g->outputs = moss_graph_alloc(g, sizeof(moss_value *) * (size_t)nout);
  for (i = 0; i < nin; i++) {
    ins[i]->input_index = i;
    g->inputs[g->ninputs++] = ins[i];
  }
  for (i = 0; i < nout; i++) {
    outs[i]->output_index = i;
    g->outputs[g->noutputs++] = outs[i];
  }
}

/* ---- the plugin's runtime side ----------------------------------------------- */

/* Loads |blob| on the good plugin's device and runs it once. 0 on success;
 * otherwise the plugin's message is in |err|. */
static int run_blob(const void *blob, size_t n, const void *const *in, void *const *out,
                    char *err, size_t errcap) {
  void *dl = dlopen(MOSS_PLUGIN_GOOD, RTLD_NOW | RTLD_LOCAL), *dev = NULL, *prog = NULL, *sym;
  const moss_plugin_device *d;
  int ret = 1;
  err[0] = 0;
  if (!dl || !(sym = dlsym(dl, "moss_plugin_device_get"))) {
    snprintf(err, errcap, "cannot load the plugin's runtime side");
    if (dl) dlclose(dl);
    return 1;
  }
  d = ((moss_plugin_device_get_fn)sym)();
  if (d && d->abi_version == MOSS_PLUGIN_ABI_VERSION &&
      d->struct_size == sizeof(moss_plugin_device) && d->open(&dev, err, errcap) == 0) {
    if (d->load(dev, blob, n, &prog, err, errcap) == 0) {
      ret = d->run(dev, prog, in, out, err, errcap);
      d->unload(dev, prog);
    }
    d->close(dev);
  }
  dlclose(dl);
  return ret;
}

/* Only the load step: 0 when |blob| is accepted. */
static int load_blob(const void *blob, size_t n, char *err, size_t errcap) {
  void *dl = dlopen(MOSS_PLUGIN_GOOD, RTLD_NOW | RTLD_LOCAL), *dev = NULL, *prog = NULL;
  const moss_plugin_device *d;
  int ret = 1;
  err[0] = 0;
  if (!dl) return 1;
  d = ((moss_plugin_device_get_fn)dlsym(dl, "moss_plugin_device_get"))();
  if (d->open(&dev, err, errcap) == 0) {
    ret = d->load(dev, blob, n, &prog, err, errcap);
    if (ret == 0) d->unload(dev, prog);
    d->close(dev);
  }
  dlclose(dl);
  return ret;
}

#define TOL(b) (1e-5 + 1e-4 * ((b) < 0 ? -(b) : (b)))

/* ---- loading ------------------------------------------------------------------ */

TEST(open_good_plugin) {
  moss_ctx ctx;
  sink_buf b;
  moss_plugin *p;
  ctx_with_sink_file(&ctx, &b);
  ASSERT_EQ(moss_plugin_open(&ctx, MOSS_PLUGIN_GOOD, "elementwise", &p), MOSS_OK);
  ASSERT_TRUE(strcmp(moss_plugin_name(p), "elementwise") == 0);
  ASSERT_TRUE(strcmp(moss_plugin_path(p), MOSS_PLUGIN_GOOD) == 0);
  moss_plugin_close(&ctx, p);
  ASSERT_EQ(b.count, 0);
  moss_plugin_close(&ctx, NULL);
}

/* Opens |path| as plugin |name| expecting failure; the message is in |b|. */
static moss_status open_fails(const char *path, const char *name, sink_buf *b) {
  moss_ctx ctx;
  moss_plugin *p = (moss_plugin *)&p;
  moss_status st;
  ctx_with_sink_file(&ctx, b);
  st = moss_plugin_open(&ctx, path, name, &p);
  if (p) {
    if (st == MOSS_OK) moss_plugin_close(&ctx, p);
    return MOSS_OK;
  }
  return st;
}

TEST(broken_plugins_get_clear_errors) {
  sink_buf b;
  ASSERT_EQ(open_fails(BROKEN("bad_abi"), "bad_abi", &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1);
  ASSERT_STR_CONTAINS(b.text, "model.onnx: target: plugin '" BROKEN("bad_abi") "': ");
  ASSERT_STR_CONTAINS(b.text, "built for plugin ABI 3, this moss speaks 2");

  ASSERT_EQ(open_fails(BROKEN("no_abi"), "no_abi", &b), MOSS_E_TARGET);
  ASSERT_STR_CONTAINS(b.text, "plugin '" BROKEN("no_abi") "': does not export "
                              "moss_plugin_abi_version");

  ASSERT_EQ(open_fails(BROKEN("no_compiler"), "no_compiler", &b), MOSS_E_TARGET);
  ASSERT_STR_CONTAINS(b.text, "plugin '" BROKEN("no_compiler") "': does not export "
                              "moss_plugin_compiler_get");

  ASSERT_EQ(open_fails(BROKEN("null_lower"), "null_lower", &b), MOSS_E_TARGET);
  ASSERT_STR_CONTAINS(b.text, "its compiler table has no lower() function");

  ASSERT_EQ(open_fails(BROKEN("bad_table"), "bad_table", &b), MOSS_E_TARGET);
  ASSERT_STR_CONTAINS(b.text, "its compiler table is 8 bytes, this moss expects");

  ASSERT_EQ(open_fails(BROKEN("wrong_name"), "elementwise", &b), MOSS_E_TARGET);
  ASSERT_STR_CONTAINS(b.text, "is named 'elementwize', but the target asks for "
                              "plugin:elementwise");
  /* The good library under another name is refused the same way. */
  ASSERT_EQ(open_fails(MOSS_PLUGIN_GOOD, "npu-systolic", &b), MOSS_E_TARGET);
  ASSERT_STR_CONTAINS(b.text, "is named 'elementwise', but the target asks for "
                              "plugin:npu-systolic");
}

TEST(missing_plugin_file) {
  sink_buf b;
  ASSERT_EQ(open_fails(BROKEN("no-such-plugin"), "x", &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1);
  /* dlerror()'s text names the file and says why. */
  ASSERT_STR_CONTAINS(b.text, "plugin '" BROKEN("no-such-plugin") "': cannot load: ");
  ASSERT_STR_CONTAINS(b.text, "no-such-plugin.so: cannot open shared object file");
  ASSERT_EQ(open_fails("", "x", &b), MOSS_E_TARGET);
  ASSERT_STR_CONTAINS(b.text, "plugin 'x': no library path given");
}

/* ---- supports ------------------------------------------------------------------ */

/* Asks the good plugin about |n|: returns its answer, reason in |why|. */
static int ask(moss_plugin *p, moss_ctx *ctx, const moss_node *n, char *why, size_t cap) {
  return moss_plugin_supports(ctx, p, n, why, cap);
}

TEST(supports_decisions) {
  moss_ctx ctx;
  sink_buf b;
  moss_graph *g;
  moss_plugin *p;
  moss_value *x, *y, *c, *o[12], *pp, *q, *i1, *i2, *u;
  moss_node *n;
  char why[200];
  float two = 2;
  int64_t one = 1;
  int k;
  ctx_with_sink_file(&ctx, &b);
  ASSERT_EQ(moss_plugin_open(&ctx, MOSS_PLUGIN_GOOD, "elementwise", &p), MOSS_OK);
  ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
  x = f32(&ctx, g, "x", 2, 3);
  y = f32(&ctx, g, "y", 2, 3);
  c = moss_graph_add_constant(&ctx, g, "c", MOSS_DT_F32, 1, &one, &two);
  for (k = 0; k < 12; k++) o[k] = f32(&ctx, g, NULL, 2, 3);

  ASSERT_EQ(ask(p, &ctx, node2(&ctx, g, "Add", "add", x, y, o[0]), why, sizeof why), 1);
  /* A one-element constant operand broadcasts. */
  ASSERT_EQ(ask(p, &ctx, node2(&ctx, g, "Mul", "mul", x, c, o[1]), why, sizeof why), 1);
  ASSERT_EQ(ask(p, &ctx, node1(&ctx, g, "Relu", "relu", x, o[2]), why, sizeof why), 1);
  n = node1(&ctx, g, "Sqrt", "sqrt", x, o[3]);
  n->act.kind = MOSS_ACT_CLIP; /* a fused activation is fine */
  n->act.alpha = 0;
  n->act.beta = 6;
  ASSERT_EQ(ask(p, &ctx, n, why, sizeof why), 1);

  ASSERT_EQ(ask(p, &ctx, node1(&ctx, g, "Softmax", "sm", x, o[4]), why, sizeof why), 0);
  ASSERT_TRUE(strcmp(why, "Softmax: not elementwise") == 0);
  ASSERT_EQ(ask(p, &ctx, node1(&ctx, g, "Log", "log", x, o[5]), why, sizeof why), 0);
  ASSERT_TRUE(strcmp(why, "Log: not implemented by this plugin") == 0);

  pp = f32(&ctx, g, "p", 3, 1);
  q = f32(&ctx, g, "q", 1, 4);
  ASSERT_EQ(ask(p, &ctx, node2(&ctx, g, "Add", "bc", pp, q, f32(&ctx, g, NULL, 3, 4)), why,
                sizeof why),
            0);
  ASSERT_TRUE(strcmp(why, "Add: broadcast of [3,1] and [1,4] not supported") == 0);

  i1 = val(&ctx, g, "i1", MOSS_DT_I64, 1, 2, 0);
  i2 = val(&ctx, g, "i2", MOSS_DT_I64, 1, 2, 0);
  ASSERT_EQ(ask(p, &ctx, node2(&ctx, g, "Sub", "isub", i1, i2,
                               val(&ctx, g, NULL, MOSS_DT_I64, 1, 2, 0)),
                why, sizeof why),
            0);
  ASSERT_TRUE(strcmp(why, "Sub: float32 only, 'i1' is int64") == 0);

  n = moss_graph_add_node(&ctx, g, "Max", "max3", 3, 1);
  n->inputs[0] = x;
  n->inputs[1] = y;
  n->inputs[2] = x;
  n->outputs[0] = o[6];
  ASSERT_EQ(ask(p, &ctx, n, why, sizeof why), 0);
  ASSERT_TRUE(strcmp(why, "Max: 3 inputs, takes 2") == 0);

  /* Attributes reach the plugin through the view. */
  n = node2(&ctx, g, "Add", "legacy", x, y, o[7]);
  n->attrs = moss_graph_alloc(g, sizeof(moss_attr));
  n->attrs[0].name = "broadcast";
  n->attrs[0].type = MOSS_ATTR_INT;
  n->attrs[0].i = 1;
  n->nattrs = 1;
  ASSERT_EQ(ask(p, &ctx, n, why, sizeof why), 0);
  ASSERT_TRUE(strcmp(why, "Add: attribute 'broadcast' not supported") == 0);

  /* An unknown shape is declined by moss before the plugin sees it. */
  u = val(&ctx, g, "u", MOSS_DT_F32, -1, 0, 0);
  ASSERT_EQ(ask(p, &ctx, node1(&ctx, g, "Relu", "ur", u, o[8]), why, sizeof why), 0);
  ASSERT_TRUE(strcmp(why, "tensor 'u' has an unknown rank") == 0);
  /* A short reason buffer is truncated, never overrun. */
  ASSERT_EQ(ask(p, &ctx, g->nodes[4], why, 8), 0);
  ASSERT_TRUE(strcmp(why, "Softmax") == 0);

  ASSERT_EQ(b.count, 0);
  moss_graph_destroy(&ctx, g);
  moss_plugin_close(&ctx, p);
}

/* ---- lowering and running ------------------------------------------------------ */

/* x, y [2,3] -> a = Add(x, y) -> b = Mul(a, c=2) -> d = Sub(b, x) -> e = Neg(d) with a fused
 * Clip(-1, 5); s = Softmax(b) stays outside. Graph outputs: e, s.
 * The list [Add, Mul, Sub, Neg] reads x and y (inputs, in order of first use; c is a constant,
 * not an input) and must hand out b (read by the Softmax outside) and e (a graph output).
 * With x = [1,-2,3,-4,5,-6] and y = 0.5 everywhere:
 *   a = [1.5,-1.5,3.5,-3.5,5.5,-5.5], b = 2a = [3,-3,7,-7,11,-11],
 *   d = b - x = [2,-1,4,-3,6,-5], -d = [-2,1,-4,3,-6,5], clipped to [-1,5]: [-1,1,-1,3,-1,5]. */
typedef struct chain {
  moss_graph *g;
  moss_value *x, *y, *b, *e;
  moss_node *list[4];
} chain;

static int make_chain(moss_ctx *ctx, chain *c) {
  moss_value *cst, *a, *d, *s, *ins[2], *outs[2];
  float two = 2;
  int64_t one = 1;
  moss_node *neg;
  if (moss_graph_create(ctx, &c->g) != MOSS_OK) return 0;
  c->x = f32(ctx, c->g, "x", 2, 3);
  c->y = f32(ctx, c->g, "y", 2, 3);
  cst = moss_graph_add_constant(ctx, c->g, "c", MOSS_DT_F32, 1, &one, &two);
  a = f32(ctx, c->g, "a", 2, 3);
  c->b = f32(ctx, c->g, "b", 2, 3);
  d = f32(ctx, c->g, "d", 2, 3);
  c->e = f32(ctx, c->g, "e", 2, 3);
  s = f32(ctx, c->g, "s", 2, 3);
  c->list[0] = node2(ctx, c->g, "Add", "n_add", c->x, c->y, a);
  c->list[1] = node2(ctx, c->g, "Mul", "n_mul", a, cst, c->b);
  node1(ctx, c->g, "Softmax", "n_softmax", c->b, s);
  c->list[2] = node2(ctx, c->g, "Sub", "n_sub", c->b, c->x, d);
  c->list[3] = neg = node1(ctx, c->g, "Neg", "n_neg", d, c->e);
  neg->act.kind = MOSS_ACT_CLIP;
  neg->act.alpha = -1;
  neg->act.beta = 5;
  ins[0] = c->x;
  ins[1] = c->y;
  outs[0] = c->e;
  outs[1] = s;
  set_io(c->g, ins, 2, outs, 2);
  return 1;
}

TEST(lower_and_run_a_chain) {
  moss_ctx ctx;
  sink_buf sb;
  moss_plugin *p;
  chain c;
  moss_buf blob;
  int *in_ids, *out_ids, nin, nout, i;
  static _Alignas(64) float x[6] = {1, -2, 3, -4, 5, -6};
  static _Alignas(64) float y[6] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
  static _Alignas(64) float ob[6], oe[6];
  const float want_b[6] = {3, -3, 7, -7, 11, -11}, want_e[6] = {-1, 1, -1, 3, -1, 5};
  const void *in[2] = {x, y};
  void *out[2] = {ob, oe};
  char err[256];
  ctx_with_sink_file(&ctx, &sb);
  ASSERT_EQ(moss_plugin_open(&ctx, MOSS_PLUGIN_GOOD, "elementwise", &p), MOSS_OK);
  ASSERT_TRUE(make_chain(&ctx, &c));
  moss_buf_init(&blob, &ctx);
  moss_buf_put(&blob, "xyz", 3); /* lower() appends */
  ASSERT_EQ(moss_plugin_lower(&ctx, p, c.g, c.list, 4, &blob, &in_ids, &nin, &out_ids, &nout),
            MOSS_OK);
  ASSERT_EQ(nin, 2);
  ASSERT_EQ(in_ids[0], c.x->id);
  ASSERT_EQ(in_ids[1], c.y->id);
  ASSERT_EQ(nout, 2);
  ASSERT_EQ(out_ids[0], c.b->id);
  ASSERT_EQ(out_ids[1], c.e->id);
  ASSERT_TRUE(memcmp(blob.data, "xyz", 3) == 0);
  ASSERT_TRUE(blob.len > 3);
  ASSERT_EQ(run_blob(blob.data + 3, blob.len - 3, in, out, err, sizeof err), 0);
  for (i = 0; i < 6; i++) {
    ASSERT_NEAR(ob[i], want_b[i], TOL(want_b[i]));
    ASSERT_NEAR(oe[i], want_e[i], TOL(want_e[i]));
  }
  ASSERT_EQ(sb.count, 0);
  moss_free(&ctx, in_ids, sizeof(int) * (size_t)nin);
  moss_free(&ctx, out_ids, sizeof(int) * (size_t)nout);
  moss_buf_deinit(&blob);
  moss_graph_destroy(&ctx, c.g);
  moss_plugin_close(&ctx, p);
}

/* Every operator once, each node's result a graph output, on
 *   x = [0, 1, 4, 2.25], t = [0, ln 3, -ln 3, 0], z = [-2, 3, -0.5, 0].
 * sigmoid(ln 3) = 1/(1 + 1/3) = 0.75; tanh(ln 3) = (3 - 1/3)/(3 + 1/3) = 0.8. */
TEST(every_operator) {
  static const struct {
    const char *op;
    char a, b; /* 'x', 't', 'z', 'c' (constant [4]), 'k' (rank-0 constant 3), 0: none */
    moss_act_kind act;
    float alpha, beta;
    float want[4];
  } cases[] = {
      {"Sqrt", 'x', 0, MOSS_ACT_NONE, 0, 0, {0, 1, 2, 1.5f}},
      {"Exp", 'x', 0, MOSS_ACT_NONE, 0, 0, {1, 2.718281828f, 54.59815003f, 9.487735836f}},
      {"Sigmoid", 't', 0, MOSS_ACT_NONE, 0, 0, {0.5f, 0.75f, 0.25f, 0.5f}},
      {"Tanh", 't', 0, MOSS_ACT_NONE, 0, 0, {0, 0.8f, -0.8f, 0}},
      {"Abs", 'z', 0, MOSS_ACT_NONE, 0, 0, {2, 3, 0.5f, 0}},
      {"Relu", 'z', 0, MOSS_ACT_NONE, 0, 0, {0, 3, 0, 0}},
      {"Div", 'z', 'c', MOSS_ACT_NONE, 0, 0, {-0.5f, 0.75f, -0.125f, 0}},
      {"Max", 'z', 'x', MOSS_ACT_NONE, 0, 0, {0, 3, 4, 2.25f}},
      {"Min", 'z', 'x', MOSS_ACT_NONE, 0, 0, {-2, 1, -0.5f, 0}},
      /* z + z = [-4, 6, -1, 0], leaky 0.1 */
      {"Add", 'z', 'z', MOSS_ACT_LEAKY_RELU, 0.1f, 0, {-0.4f, 6, -0.1f, 0}},
      /* x - z = [2, -2, 4.5, 2.25], relu */
      {"Sub", 'x', 'z', MOSS_ACT_RELU, 0, 0, {2, 0, 4.5f, 2.25f}},
      /* 3 z = [-6, 9, -1.5, 0], clip to [-1, 5] */
      {"Mul", 'k', 'z', MOSS_ACT_CLIP, -1, 5, {-1, 5, -1, 0}},
      /* -t = [0, -ln 3, ln 3, 0], sigmoid */
      {"Neg", 't', 0, MOSS_ACT_SIGMOID, 0, 0, {0.5f, 0.25f, 0.75f, 0.5f}},
      /* |x| = [0, 1, 4, 2.25], tanh (values from a table of tanh) */
      {"Abs", 'x', 0, MOSS_ACT_TANH, 0, 0, {0, 0.761594156f, 0.999329300f, 0.978026115f}},
  };
  enum { N = sizeof cases / sizeof cases[0] };
  moss_ctx ctx;
  sink_buf sb;
  moss_plugin *p;
  moss_graph *g;
  moss_value *x, *t, *z, *c, *k, *outs[N], *ins[3];
  moss_node *list[N];
  moss_buf blob;
  int *in_ids, *out_ids, nin, nout, i, j;
  float four = 4, three = 3;
  int64_t one = 1;
  static _Alignas(64) float vx[4] = {0, 1, 4, 2.25f};
  static _Alignas(64) float vt[4] = {0, 1.0986122887f, -1.0986122887f, 0};
  static _Alignas(64) float vz[4] = {-2, 3, -0.5f, 0};
  static _Alignas(64) float res[N][16];
  const void *in[3] = {vx, vt, vz};
  void *out[N];
  char err[256];
  ctx_with_sink_file(&ctx, &sb);
  ASSERT_EQ(moss_plugin_open(&ctx, MOSS_PLUGIN_GOOD, "elementwise", &p), MOSS_OK);
  ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
  x = f32(&ctx, g, "x", 4, 0);
  t = f32(&ctx, g, "t", 4, 0);
  z = f32(&ctx, g, "z", 4, 0);
  c = moss_graph_add_constant(&ctx, g, "c", MOSS_DT_F32, 1, &one, &four);
  k = moss_graph_add_constant(&ctx, g, "k", MOSS_DT_F32, 0, NULL, &three);
  for (i = 0; i < N; i++) {
    moss_value *ab[2];
    char opnd[2] = {cases[i].a, cases[i].b};
    for (j = 0; j < 2; j++)
      ab[j] = opnd[j] == 'x' ? x : opnd[j] == 't' ? t : opnd[j] == 'z' ? z : opnd[j] == 'c' ? c
              : opnd[j] == 'k' ? k : NULL;
    outs[i] = f32(&ctx, g, NULL, 4, 0);
    list[i] = node2(&ctx, g, cases[i].op, NULL, ab[0], ab[1], outs[i]);
    list[i]->act.kind = cases[i].act;
    list[i]->act.alpha = cases[i].alpha;
    list[i]->act.beta = cases[i].beta;
    ASSERT_EQ(moss_plugin_supports(&ctx, p, list[i], err, sizeof err), 1);
    out[i] = res[i];
  }
  ins[0] = x;
  ins[1] = t;
  ins[2] = z;
  set_io(g, ins, 3, outs, N);
  moss_buf_init(&blob, &ctx);
  ASSERT_EQ(moss_plugin_lower(&ctx, p, g, list, N, &blob, &in_ids, &nin, &out_ids, &nout),
            MOSS_OK);
  ASSERT_EQ(nin, 3);
  ASSERT_EQ(in_ids[0], x->id);
  ASSERT_EQ(in_ids[1], t->id);
  ASSERT_EQ(in_ids[2], z->id);
  ASSERT_EQ(nout, N);
  for (i = 0; i < N; i++) ASSERT_EQ(out_ids[i], outs[i]->id);
  ASSERT_EQ(run_blob(blob.data, blob.len, in, out, err, sizeof err), 0);
  for (i = 0; i < N; i++)
    for (j = 0; j < 4; j++) {
      if (!(res[i][j] - cases[i].want[j] <= TOL(cases[i].want[j]) &&
            cases[i].want[j] - res[i][j] <= TOL(cases[i].want[j])))
        FAIL_("%s[%d]: %.9g, expected %.9g", cases[i].op, j, res[i][j], cases[i].want[j]);
    }
  moss_free(&ctx, in_ids, sizeof(int) * (size_t)nin);
  moss_free(&ctx, out_ids, sizeof(int) * (size_t)nout);
  moss_buf_deinit(&blob);
  moss_graph_destroy(&ctx, g);
  moss_plugin_close(&ctx, p);
  ASSERT_EQ(sb.count, 0);
}

/* The runtime side checks every field of a blob: each truncation, a wrong
 * magic or version, an out-of-range buffer and trailing bytes are refused
 * with a message (under ASan the copy is exactly as long as claimed). */
TEST(corrupt_blobs_are_refused) {
  moss_ctx ctx;
  sink_buf sb;
  moss_plugin *p;
  chain c;
  moss_buf blob;
  int *in_ids, *out_ids, nin, nout;
  size_t len, n;
  unsigned char *copy;
  char err[256];
  ctx_with_sink_file(&ctx, &sb);
  ASSERT_EQ(moss_plugin_open(&ctx, MOSS_PLUGIN_GOOD, "elementwise", &p), MOSS_OK);
  ASSERT_TRUE(make_chain(&ctx, &c));
  moss_buf_init(&blob, &ctx);
  ASSERT_EQ(moss_plugin_lower(&ctx, p, c.g, c.list, 4, &blob, &in_ids, &nin, &out_ids, &nout),
            MOSS_OK);
  len = blob.len;
  ASSERT_EQ(load_blob(blob.data, len, err, sizeof err), 0);
  for (n = 0; n < len; n++) {
    copy = malloc(n ? n : 1);
    memcpy(copy, blob.data, n);
    if (load_blob(copy, n, err, sizeof err) == 0) FAIL_("a blob cut to %zu bytes loads", n);
    free(copy);
    ASSERT_TRUE(err[0] != 0);
  }
  copy = malloc(len + 1);
  memcpy(copy, blob.data, len);
  copy[len] = 0;
  ASSERT_EQ(load_blob(copy, len + 1, err, sizeof err), 1);
  ASSERT_STR_CONTAINS(err, "bytes after the buffers");
  copy[0] = 'X';
  ASSERT_EQ(load_blob(copy, len, err, sizeof err), 1);
  ASSERT_STR_CONTAINS(err, "bad magic");
  copy[0] = 'M';
  copy[4] = 2;
  ASSERT_EQ(load_blob(copy, len, err, sizeof err), 1);
  ASSERT_STR_CONTAINS(err, "blob version 2, this plugin reads 1");
  copy[4] = 1;
  /* The blob ends with 4 instructions of 32 bytes; make the first one's
   * operand a (at byte 16) buffer 99. */
  copy[len - 4 * 32 + 16] = 99;
  ASSERT_EQ(load_blob(copy, len, err, sizeof err), 1);
  ASSERT_STR_CONTAINS(err, "instruction 0 names a buffer out of range");
  /* Random byte changes: load() accepts or refuses, and never reads out of
   * bounds (ASan). A fixed LCG keeps the run reproducible. */
  {
    unsigned long seed = 12345;
    int m, refused = 0;
    for (m = 0; m < 3000; m++) {
      int j, nflip = 1 + m % 3;
      memcpy(copy, blob.data, len);
      for (j = 0; j < nflip; j++) {
        seed = seed * 6364136223846793005ul + 1442695040888963407ul;
        copy[(seed >> 33) % len] = (unsigned char)(seed >> 20);
      }
      if (load_blob(copy, len, err, sizeof err) != 0) {
        ASSERT_TRUE(err[0] != 0);
        refused++;
      }
    }
    /* Changes to constant values or activation parameters load; header and
     * index changes do not: both kinds must have happened. */
    ASSERT_TRUE(refused > 100 && refused < 3000);
  }
  free(copy);
  moss_free(&ctx, in_ids, sizeof(int) * (size_t)nin);
  moss_free(&ctx, out_ids, sizeof(int) * (size_t)nout);
  moss_buf_deinit(&blob);
  moss_graph_destroy(&ctx, c.g);
  moss_plugin_close(&ctx, p);
}

TEST(failing_lower_reports_the_plugins_message) {
  moss_ctx ctx;
  sink_buf sb;
  moss_plugin *p;
  chain c;
  moss_buf blob;
  int *in_ids = (int *)&in_ids, *out_ids = (int *)&out_ids, nin = 7, nout = 7;
  ctx_with_sink_file(&ctx, &sb);
  ASSERT_EQ(moss_plugin_open(&ctx, BROKEN("failing_lower"), "failing", &p), MOSS_OK);
  ASSERT_TRUE(make_chain(&ctx, &c));
  moss_buf_init(&blob, &ctx);
  moss_buf_put(&blob, "keep", 4);
  ASSERT_EQ(moss_plugin_lower(&ctx, p, c.g, c.list, 4, &blob, &in_ids, &nin, &out_ids, &nout),
            MOSS_E_TARGET);
  ASSERT_EQ(sb.count, 1);
  ASSERT_STR_CONTAINS(sb.text, "model.onnx: node 'n_add' (Add): target: plugin 'failing': "
                               "4 nodes need 3 GiB of scratchpad, the device has 1 MiB");
  ASSERT_EQ(blob.len, 4); /* the partial blob is dropped */
  ASSERT_TRUE(in_ids == NULL && out_ids == NULL && nin == 0 && nout == 0);
  moss_buf_deinit(&blob);
  moss_graph_destroy(&ctx, c.g);
  moss_plugin_close(&ctx, p);
}

TEST(lower_refuses_an_empty_list) {
  moss_ctx ctx;
  sink_buf sb;
  moss_plugin *p;
  chain c;
  moss_buf blob;
  int *in_ids, *out_ids, nin, nout;
  ctx_with_sink_file(&ctx, &sb);
  ASSERT_EQ(moss_plugin_open(&ctx, MOSS_PLUGIN_GOOD, "elementwise", &p), MOSS_OK);
  ASSERT_TRUE(make_chain(&ctx, &c));
  moss_buf_init(&blob, &ctx);
  ASSERT_EQ(moss_plugin_lower(&ctx, p, c.g, c.list, 0, &blob, &in_ids, &nin, &out_ids, &nout),
            MOSS_E_INTERNAL);
  ASSERT_STR_CONTAINS(sb.text, "internal: lowering an empty subgraph for plugin 'elementwise'");
  /* A list the plugin did not take is its lower()'s error to give. */
  c.list[1]->op_type = "Softmax";
  ASSERT_EQ(moss_plugin_lower(&ctx, p, c.g, c.list, 4, &blob, &in_ids, &nin, &out_ids, &nout),
            MOSS_E_TARGET);
  ASSERT_STR_CONTAINS(sb.text, "node 'n_add' (Add): target: plugin 'elementwise': node 'n_mul': "
                               "Softmax: not elementwise");
  ASSERT_EQ(blob.len, 0);
  moss_buf_deinit(&blob);
  moss_graph_destroy(&ctx, c.g);
  moss_plugin_close(&ctx, p);
}

/* ---- allocation failures ---------------------------------------------------------- */

typedef struct fail_alloc {
  long calls, fail_at;
  long long live;
} fail_alloc;

static void *fail_realloc(void *user, void *ptr, size_t old_size, size_t new_size) {
  fail_alloc *f = user;
  void *q;
  if (new_size == 0) {
    free(ptr);
    f->live -= (long long)old_size;
    return NULL;
  }
  if (++f->calls == f->fail_at) return NULL;
  if (!(q = realloc(ptr, new_size))) return NULL;
  f->live += (long long)new_size - (long long)old_size;
  return q;
}

/* open, supports, lower and close with allocation N failing, N = 1, 2, ...
 * until all succeed: each failure is out-of-memory, and nothing leaks. The
 * graph itself is built with libc. */
TEST(allocation_failures_do_not_leak) {
  moss_ctx gctx;
  sink_buf gb;
  chain c;
  long n;
  ctx_with_sink_file(&gctx, &gb);
  ASSERT_TRUE(make_chain(&gctx, &c));
  for (n = 1; n < 10000; n++) {
    fail_alloc f = {0, n, 0};
    moss_ctx ctx;
    sink_buf b;
    moss_plugin *p = NULL;
    moss_buf blob;
    int *in_ids = NULL, *out_ids = NULL, nin = 0, nout = 0, ok = 0;
    char why[64];
    moss_status st;
    ctx_with_sink_file(&ctx, &b);
    ctx.alloc.fn = fail_realloc;
    ctx.alloc.user = &f;
    moss_buf_init(&blob, &ctx);
    st = moss_plugin_open(&ctx, MOSS_PLUGIN_GOOD, "elementwise", &p);
    if (st == MOSS_OK && moss_plugin_supports(&ctx, p, c.list[0], why, sizeof why) == 1) {
      st = moss_plugin_lower(&ctx, p, c.g, c.list, 4, &blob, &in_ids, &nin, &out_ids, &nout);
      ok = st == MOSS_OK;
    }
    if (ok) {
      ASSERT_TRUE(f.calls < n); /* no failure was injected */
      ASSERT_EQ(b.count, 0);
    } else {
      ASSERT_EQ(b.count, 1);
      ASSERT_STR_CONTAINS(b.text, "out-of-memory");
    }
    moss_free(&ctx, in_ids, sizeof(int) * (size_t)nin);
    moss_free(&ctx, out_ids, sizeof(int) * (size_t)nout);
    moss_buf_deinit(&blob);
    moss_plugin_close(&ctx, p);
    ASSERT_EQ(f.live, 0);
    if (ok) break;
  }
  ASSERT_TRUE(n > 3 && n < 10000);
  moss_graph_destroy(&gctx, c.g);
}


/* ---- ABI 2: the device's facts and the requantization multipliers ----------- */

static moss_value *f32_const(moss_ctx *ctx, moss_graph *g, const char *name, int64_t n,
                             const float *vals) {
  moss_value *v = f32(ctx, g, name, n, 0);
  v->data = moss_graph_alloc(g, sizeof(float) * (size_t)n);
  memcpy(v->data, vals, sizeof(float) * (size_t)n);
  return v;
}

TEST(plugin_sees_the_device_and_the_multipliers) {
  moss_ctx ctx;
  sink_buf b;
  moss_graph *g;
  moss_plugin *p;
  moss_target *t;
  moss_node *n;
  char why[600];
  static const float xs = 0.5f, ws[2] = {0.25f, 0.75f}, ys = 0.125f;
  ctx_with_sink_file(&ctx, &b);
  ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
  n = moss_graph_add_node(&ctx, g, "QLinearConv", "conv", 8, 1);
  n->inputs[0] = val(&ctx, g, "x", MOSS_DT_I8, 2, 1, 4);
  n->inputs[1] = f32_const(&ctx, g, "xs", 1, &xs);
  n->inputs[4] = f32_const(&ctx, g, "ws", 2, ws);
  n->inputs[6] = f32_const(&ctx, g, "ys", 1, &ys);
  n->outputs[0] = val(&ctx, g, "y", MOSS_DT_I8, 2, 1, 2);
  ASSERT_EQ(moss_target_load(&ctx, MOSS_PROBE_XML, &t), MOSS_OK);
  ASSERT_EQ(moss_plugin_open(&ctx, BROKEN("probe"), "probe", &p), MOSS_OK);
  /* Before a bind: an empty target. */
  ASSERT_EQ(moss_plugin_supports(&ctx, p, n, why, sizeof why), 0);
  ASSERT_STR_CONTAINS(why, "-/- clock 0 units 0");
  ASSERT_EQ(moss_plugin_bind(&ctx, p, t, moss_target_device_find(t, "acc")), MOSS_OK);
  moss_target_destroy(&ctx, t); /* the view is a copy */
  ASSERT_EQ(moss_plugin_supports(&ctx, p, n, why, sizeof why), 0);
  ASSERT_STR_CONTAINS(why, "probe-npu/acc clock 750 units 2 i8 64/cycle 0.25 pJ power 0.05 0.5;");
  ASSERT_STR_CONTAINS(why, " level sram 65536 48 3 5; level dram 0 6.4 150 -1;");
  ASSERT_STR_CONTAINS(why, " array-rows=8; mode=weight stationary;");
  /* x_scale * w_scale[o] / y_scale = 1 and 3: 0.5 * 2^1 and 0.75 * 2^2, as
   * Q31 mantissas 2^30 and 0.75 * 2^31 with right shifts -1 and -2. */
  ASSERT_STR_CONTAINS(why, " requant 2: 1073741824>>-1 1610612736>>-2");
  { /* the plugin's own estimate: 100 cycles, 1 and 2 bytes per output element */
    double cyc = -1, lb[2] = {-1, -1};
    ASSERT_EQ(moss_plugin_estimate_node(&ctx, p, n, &cyc, lb, 2), 1);
    ASSERT_NEAR(cyc, 200, 0);
    ASSERT_NEAR(lb[0], 2, 0);
    ASSERT_NEAR(lb[1], 4, 0);
  }
  /* A node that does not requantize gets none. */
  n = node1(&ctx, g, "Relu", "relu", n->outputs[0], val(&ctx, g, "r", MOSS_DT_I8, 2, 1, 2));
  ASSERT_EQ(moss_plugin_supports(&ctx, p, n, why, sizeof why), 0);
  ASSERT_STR_CONTAINS(why, " requant 0:");
  moss_plugin_close(&ctx, p);
  moss_graph_destroy(&ctx, g);
  ASSERT_EQ(b.count, 0);
}

TEST_MAIN()
