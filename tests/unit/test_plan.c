/* test_plan.c - the memory planner on hand-built graphs whose expected
 * offsets and arena sizes are worked out by hand in the comments. Each test
 * runs with the planner's allocation N failing, N = 1, 2, ... (oom.h). */
#include <string.h>

#include "harness.h"
#include "oom.h"
#include "plan/plan.h"

static moss_value *val(moss_ctx *ctx, moss_graph *g, const char *name, int64_t n) {
  moss_value *v = moss_graph_add_value(ctx, g, name);
  v->dtype = MOSS_DT_F32;
  v->rank = 1;
  v->dims[0] = n;
  return v;
}

static moss_node *node(moss_ctx *ctx, moss_graph *g, const char *op, moss_value *in,
                       moss_value *out) {
  moss_node *n = moss_graph_add_node(ctx, g, op, NULL, 1, 1);
  n->inputs[0] = in;
  n->outputs[0] = out;
  out->producer = n;
  return n;
}

/* Marks |x| as the graph's only input and |y| as its only output. */
static void set_io(moss_graph *g, moss_value *x, moss_value *y) {
  g->inputs = moss_graph_alloc(g, sizeof(moss_value *));
  g->outputs = moss_graph_alloc(g, sizeof(moss_value *));
  x->input_index = 0;
  g->inputs[g->ninputs++] = x;
  y->output_index = 0;
  g->outputs[g->noutputs++] = y;
}

/* x -> Relu a(100 floats = 400 B -> 448 B slot) -> Relu b -> Relu c -> y.
 * a lives [0,1], b [1,2], c [2,3]: a and c can share offset 0, b sits
 * at 448; the arena is 896 bytes. */
TEST(chain_reuses_memory) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_value *x, *a, *b, *c, *y;
    int64_t arena;
    moss_status st;
    oom_ctx_init(&ctx);
    ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
    x = val(&ctx, g, "x", 100);
    a = val(&ctx, g, "a", 100);
    b = val(&ctx, g, "b", 100);
    c = val(&ctx, g, "c", 100);
    y = val(&ctx, g, "y", 100);
    set_io(g, x, y);
    node(&ctx, g, "Relu", x, a);
    node(&ctx, g, "Relu", a, b);
    node(&ctx, g, "Relu", b, c);
    node(&ctx, g, "Relu", c, y);
    st = OOM_CALL(&ctx, moss_plan_compute(&ctx, g, &arena));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_EQ(a->offset, 0);
    ASSERT_EQ(b->offset, 448);
    ASSERT_EQ(c->offset, 0);
    ASSERT_EQ(y->offset, -1);
    ASSERT_EQ(arena, 896);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* x -> Relu a -> Reshape r (aliases a) -> Relu b -> Relu c -> y.
 * r extends a's life to node 2, so b cannot take a's place; c can. */
TEST(view_aliases_and_extends_life) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_value *x, *a, *r, *b, *c, *y;
    int64_t arena;
    moss_status st;
    oom_ctx_init(&ctx);
    ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
    x = val(&ctx, g, "x", 16);
    a = val(&ctx, g, "a", 16);
    r = val(&ctx, g, "r", 16);
    b = val(&ctx, g, "b", 16);
    c = val(&ctx, g, "c", 16);
    y = val(&ctx, g, "y", 16);
    set_io(g, x, y);
    node(&ctx, g, "Relu", x, a);
    node(&ctx, g, "Identity", a, r);
    node(&ctx, g, "Relu", r, b);
    node(&ctx, g, "Relu", b, c);
    node(&ctx, g, "Relu", c, y);
    st = OOM_CALL(&ctx, moss_plan_compute(&ctx, g, &arena));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(r->alias == a);
    ASSERT_EQ(a->offset, 0);
    ASSERT_EQ(b->offset, 64);
    ASSERT_EQ(c->offset, 0);
    ASSERT_EQ(arena, 128);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* A view whose output is a graph output is not aliased: it must land in
 * the caller's buffer. */
TEST(view_to_graph_output_is_copied) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_value *x, *a, *y;
    int64_t arena;
    moss_status st;
    oom_ctx_init(&ctx);
    ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
    x = val(&ctx, g, "x", 4);
    a = val(&ctx, g, "a", 4);
    y = val(&ctx, g, "y", 4);
    set_io(g, x, y);
    node(&ctx, g, "Relu", x, a);
    node(&ctx, g, "Reshape", a, y);
    st = OOM_CALL(&ctx, moss_plan_compute(&ctx, g, &arena));
    if (OOM_STOPPED()) goto done;
    ASSERT_EQ(st, MOSS_OK);
    ASSERT_TRUE(y->alias == NULL);
    ASSERT_EQ(arena, 64);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

TEST_MAIN()
