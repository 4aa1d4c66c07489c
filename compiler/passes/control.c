/* control.c - If becomes the branch that runs, and Loop and Scan their
 * bodies once per iteration (docs/control-flow.md).
 * Inference (passes/infer.c) calls in here when it meets an If, whose
 * condition it has inferred, and folded where it could: computed from
 * constants, --constant inputs and shapes, it is known, and the branch it
 * picks takes the node's place, its nodes put right after the If in the
 * node list (inference visits them next, before the If's readers), its
 * outputs copied into the If's by Identity nodes (views: the planner
 * aliases them). The other branch is dropped. A condition known only at
 * run time puts both branches there, and a Where per output, flagged
 * "moss.if_output" so that its inference insists the two branches give
 * one type and shape, picks the output: both branches run, and the one
 * the condition names is kept. A Loop (a trip count known at compile
 * time) or a Scan is unrolled: its body's nodes are copied once per
 * iteration, each copy reading the values the iteration before made
 * (Loop's carried values, Scan's states), its iteration number (a
 * constant) and, for Scan, its slices of the scan inputs (Gather); the
 * last iteration's values are the node's first outputs, and each scan
 * output stacks every iteration's (Unsqueeze, Concat). A Loop whose end
 * only the run knows (a trip count or condition from an input, a body that
 * computes its condition) is unrolled to --max-trip-count iterations with
 * a running flag: each iteration's carried values are taken only while
 * the flag holds (Where), and the flag is the condition the body gives
 * and the iteration under the trip count. */
#include <stdio.h>
#include <string.h>

#include "../ops/ops.h"
#include "passes.h"

/* A node |op| named |n|'s name + |what|, made at the end of the list. */
static moss_node *make(moss_ctx *ctx, moss_graph *g, const moss_node *n, const char *op, const char *what, int k,
                       int nin, int nattrs) {
  char name[512];
  moss_node *m;
  snprintf(name, sizeof name, "%s/%s%d", n->name, what, k);
  m = moss_graph_add_node(ctx, g, op, name, nin, 1);
  if (!m) return NULL;
  m->opset = 17; /* Reshape with a shape input */
  if (nattrs && !(m->attrs = moss_graph_alloc(g, sizeof *m->attrs * (size_t)nattrs))) return NULL;
  return m;
}

static moss_status expand_if(moss_ctx *ctx, moss_graph *g, int at) {
  moss_node *n = g->nodes[at];
  const moss_subgraph *th = moss_node_subgraph(n, "then_branch"), *el = moss_node_subgraph(n, "else_branch");
  const moss_subgraph *run[2];
  moss_value *cond = n->inputs[0], *c0 = NULL;
  moss_node **list;
  int nrun, k, j, cnt = 0, before = g->nnodes, made;
  size_t cap;
  moss_status st;
  if (cond->data) {
    run[0] = moss_value_get_i64(cond, 0) ? th : el;
    nrun = 1;
  } else {
    run[0] = th;
    run[1] = el;
    nrun = 2;
  }
  cap = sizeof *list * (size_t)(th->nnodes + el->nnodes + n->noutputs + 2);
  if (!(list = moss_alloc(ctx, cap))) return moss_fail(ctx, MOSS_E_NOMEM, n, "If");
  for (j = 0; j < nrun; j++)
    for (k = 0; k < run[j]->nnodes; k++) list[cnt++] = run[j]->nodes[k];
  st = MOSS_OK;
  if (nrun == 2) { /* the condition as a scalar, so that Where keeps each output's shape */
    moss_node *r = make(ctx, g, n, "Reshape", "cond", 0, 2, 0);
    int64_t none = 0;
    moss_value *shape = moss_graph_add_constant(ctx, g, NULL, MOSS_DT_I64, 1, &none, NULL);
    char name[512];
    snprintf(name, sizeof name, "%s/cond", n->name);
    c0 = moss_graph_add_value(ctx, g, name);
    if (!r || !shape || !c0) st = MOSS_E_NOMEM;
    else {
      r->inputs[0] = cond;
      r->inputs[1] = shape;
      r->outputs[0] = c0;
      c0->producer = r;
    }
  }
  for (k = 0; k < n->noutputs && st == MOSS_OK; k++) {
    moss_value *y = n->outputs[k];
    moss_node *m;
    if (!y) continue;
    if (nrun == 1) {
      if (!(m = make(ctx, g, n, "Identity", "out", k, 1, 0))) st = MOSS_E_NOMEM;
      else m->inputs[0] = run[0]->outputs[k];
    } else {
      if (!(m = make(ctx, g, n, "Where", "select", k, 3, 1))) st = MOSS_E_NOMEM;
      else {
        m->inputs[0] = c0;
        m->inputs[1] = th->outputs[k];
        m->inputs[2] = el->outputs[k];
        m->nattrs = 1;
        m->attrs[0].name = "moss.if_output";
        m->attrs[0].type = MOSS_ATTR_INT;
        m->attrs[0].i = k;
      }
    }
    if (m) {
      m->outputs[0] = y;
      y->producer = m;
    }
  }
  if (st != MOSS_OK) {
    moss_free(ctx, list, cap);
    return moss_fail(ctx, MOSS_E_NOMEM, n, "If");
  }
  /* the nodes made here, taken from the end of the list, after the branches */
  made = g->nnodes - before;
  for (k = 0; k < made; k++) list[cnt++] = g->nodes[before + k];
  g->nnodes = before;
  n->dead = 1;
  st = moss_graph_insert_nodes(ctx, g, at + 1, list, cnt);
  moss_free(ctx, list, cap);
  return st;
}

/* A Loop or Scan being unrolled: |bound|[id] is what body value |id|
 * stands for in the iteration |stamp|[id] (1-based), |made|[id] whether
 * a body node makes it. */
typedef struct unroll {
  moss_ctx *ctx;
  moss_graph *g;
  moss_node *n;
  const moss_subgraph *body;
  moss_value **bound;
  int *stamp;
  unsigned char *made;
  int cap;
  int failed;   /* out of memory */
  int disorder; /* a body node reads a body value no earlier node made */
} unroll;

/* Starts unrolling |body| of |n|: the binding tables, the body's values
 * marked as made by its nodes. 0: out of memory (reported). */
static int unroll_open(unroll *u, moss_ctx *ctx, moss_graph *g, moss_node *n, const moss_subgraph *body) {
  int k, j;
  memset(u, 0, sizeof *u);
  u->ctx = ctx;
  u->g = g;
  u->n = n;
  u->body = body;
  u->cap = g->nvalues;
  u->bound = moss_alloc(ctx, sizeof *u->bound * (size_t)u->cap);
  u->stamp = moss_alloc(ctx, sizeof *u->stamp * (size_t)u->cap);
  u->made = moss_alloc(ctx, (size_t)u->cap);
  if (!u->bound || !u->stamp || !u->made) {
    moss_fail(ctx, MOSS_E_NOMEM, n, "unrolling");
    return 0;
  }
  memset(u->stamp, 0, sizeof *u->stamp * (size_t)u->cap);
  memset(u->made, 0, (size_t)u->cap);
  for (k = 0; k < body->nnodes; k++)
    for (j = 0; j < body->nodes[k]->noutputs; j++)
      if (body->nodes[k]->outputs[j] && body->nodes[k]->outputs[j]->id < u->cap)
        u->made[body->nodes[k]->outputs[j]->id] = 1;
  return 1;
}

static void unroll_close(unroll *u) {
  moss_free(u->ctx, u->bound, sizeof *u->bound * (size_t)u->cap);
  moss_free(u->ctx, u->stamp, sizeof *u->stamp * (size_t)u->cap);
  moss_free(u->ctx, u->made, (size_t)u->cap);
}

static moss_value *lookup(unroll *u, moss_value *v, int it) {
  if (!v || v->id >= u->cap) return v;
  if (u->stamp[v->id] == it + 1) return u->bound[v->id];
  if (u->made[v->id]) u->disorder = 1;
  return v; /* a value from outside, or a constant of the body */
}

static void bind(unroll *u, const moss_value *v, moss_value *to, int it) {
  if (v && v->id < u->cap) {
    u->bound[v->id] = to;
    u->stamp[v->id] = it + 1;
  }
}

static moss_node *node(unroll *u, const char *op, const char *name, int nin, int nout) {
  moss_node *m;
  if (u->failed) return NULL;
  m = moss_graph_add_node(u->ctx, u->g, op, name, nin, nout);
  if (!m) u->failed = 1;
  else m->opset = 17; /* the input forms: Unsqueeze's axes */
  return m;
}

static moss_value *value(unroll *u, const char *name) {
  moss_value *v = u->failed ? NULL : moss_graph_add_value(u->ctx, u->g, name);
  if (!v) u->failed = 1;
  return v;
}

static moss_value *ints(unroll *u, int64_t x, int rank) {
  int64_t one = 1;
  moss_value *v = u->failed ? NULL : moss_graph_add_constant(u->ctx, u->g, NULL, MOSS_DT_I64, rank, &one, &x);
  if (!v) u->failed = 1;
  return v;
}

/* A node |op| of one output (|into|, or a new value named |name|). */
static moss_value *make1(unroll *u, const char *op, const char *name, int nin, moss_value *const *in,
                         moss_value *into, int64_t axis, int has_axis) {
  moss_node *m = node(u, op, name, nin, 1);
  int k;
  if (!m) return NULL;
  for (k = 0; k < nin; k++) m->inputs[k] = in[k];
  if (has_axis) {
    if (!(m->attrs = moss_graph_alloc(u->g, sizeof *m->attrs))) {
      u->failed = 1;
      return NULL;
    }
    m->nattrs = 1;
    m->attrs[0].name = "axis";
    m->attrs[0].type = MOSS_ATTR_INT;
    m->attrs[0].i = axis;
  }
  if (!into) into = value(u, name);
  if (!into) return NULL;
  m->outputs[0] = into;
  into->producer = m;
  return into;
}

/* |x| as a scalar (a Reshape to shape []). */
static moss_value *scalar(unroll *u, moss_value *x, const char *name) {
  int64_t zero = 0;
  moss_value *in[2];
  in[0] = x;
  in[1] = u->failed ? NULL : moss_graph_add_constant(u->ctx, u->g, NULL, MOSS_DT_I64, 1, &zero, NULL);
  if (!in[1]) u->failed = 1;
  return make1(u, "Reshape", name, 2, in, NULL, 0, 0);
}

/* Where(|active|, |now|, |before|): a carried value that stops changing
 * when the loop has ended (flagged, so that inference insists the two
 * have one type and shape). */
static moss_value *keep(unroll *u, moss_value *active, moss_value *now, moss_value *before, int k, int it) {
  char name[600];
  moss_value *in[3];
  moss_node *m;
  in[0] = active;
  in[1] = now;
  in[2] = before;
  snprintf(name, sizeof name, "%s/keep%d#%d", u->n->name, k, it);
  if (!make1(u, "Where", name, 3, in, NULL, 0, 0)) return NULL;
  m = u->g->nodes[u->g->nnodes - 1];
  if (!(m->attrs = moss_graph_alloc(u->g, sizeof *m->attrs))) {
    u->failed = 1;
    return NULL;
  }
  m->nattrs = 1;
  m->attrs[0].name = "moss.loop_carried";
  m->attrs[0].type = MOSS_ATTR_INT;
  m->attrs[0].i = k;
  return m->outputs[0];
}

static moss_node *copy_node(unroll *u, const moss_node *b, int it);

/* A copy of subgraph |sg| (an If's branch, a Loop's body inside the body
 * being unrolled) for iteration |it|: its nodes, inputs and the values
 * they make are new (named + "#it"), what they read from the body is that
 * iteration's. Its nodes stay out of the node list, as a subgraph's do;
 * nested subgraphs are copied the same way. */
static moss_subgraph *copy_subgraph(unroll *u, const moss_subgraph *sg, int it) {
  char name[600];
  moss_subgraph *c = u->failed ? NULL : moss_graph_alloc(u->g, sizeof *c);
  int k;
  if (!c || !(c->inputs = moss_graph_alloc(u->g, sizeof *c->inputs * (size_t)(sg->ninputs + 1))) ||
      !(c->nodes = moss_graph_alloc(u->g, sizeof *c->nodes * (size_t)(sg->nnodes + 1))) ||
      !(c->outputs = moss_graph_alloc(u->g, sizeof *c->outputs * (size_t)(sg->noutputs + 1)))) {
    u->failed = 1;
    return NULL;
  }
  for (k = 0; k < sg->ninputs && !u->failed; k++) {
    snprintf(name, sizeof name, "%s#%d", sg->inputs[k]->name, it);
    if (!(c->inputs[k] = value(u, name))) return NULL;
    bind(u, sg->inputs[k], c->inputs[k], it);
  }
  c->ninputs = sg->ninputs;
  for (k = 0; k < sg->nnodes && !u->failed; k++) {
    moss_node *m = copy_node(u, sg->nodes[k], it);
    if (!m) return NULL;
    u->g->nnodes--; /* the last one made: a subgraph's node is not in the list */
    c->nodes[c->nnodes++] = m;
  }
  for (k = 0; k < sg->noutputs; k++) c->outputs[k] = lookup(u, sg->outputs[k], it);
  c->noutputs = sg->noutputs;
  return u->failed ? NULL : c;
}

/* A copy of body node |b| for iteration |it| (appended to the node list),
 * reading what |lookup| binds; its subgraphs copied too. */
static moss_node *copy_node(unroll *u, const moss_node *b, int it) {
  char name[600];
  moss_node *c;
  int j, sub = 0;
  snprintf(name, sizeof name, "%s#%d", b->name, it);
  if (!(c = node(u, b->op_type, name, b->ninputs, b->noutputs))) return NULL;
  c->opset = b->opset;
  c->domain = b->domain;
  c->attrs = b->attrs; /* read only, but for the subgraphs */
  c->nattrs = b->nattrs;
  for (j = 0; j < b->ninputs; j++) c->inputs[j] = lookup(u, b->inputs[j], it);
  for (j = 0; j < b->noutputs; j++) {
    moss_value *v;
    if (!b->outputs[j]) continue;
    snprintf(name, sizeof name, "%s#%d", b->outputs[j]->name, it);
    if (!(v = value(u, name))) return NULL;
    v->producer = c;
    c->outputs[j] = v;
  }
  for (j = 0; j < b->nattrs; j++) sub |= b->attrs[j].type == MOSS_ATTR_GRAPH;
  if (sub) { /* its own subgraphs, reading this iteration's values */
    if (!(c->attrs = moss_graph_alloc(u->g, sizeof *c->attrs * (size_t)b->nattrs))) {
      u->failed = 1;
      return NULL;
    }
    memcpy(c->attrs, b->attrs, sizeof *c->attrs * (size_t)b->nattrs);
    for (j = 0; j < b->nattrs && !u->failed; j++)
      if (b->attrs[j].type == MOSS_ATTR_GRAPH && b->attrs[j].graph)
        c->attrs[j].graph = copy_subgraph(u, b->attrs[j].graph, it);
    if (u->failed) return NULL;
  }
  for (j = 0; j < b->noutputs; j++) /* after the subgraphs: they cannot read the node's outputs */
    if (b->outputs[j]) bind(u, b->outputs[j], c->outputs[j], it);
  return c;
}

/* The body's nodes for iteration |it|, reading what |lookup| binds. */
static void iteration(unroll *u, int it) {
  int k;
  for (k = 0; k < u->body->nnodes && !u->failed; k++)
    if (!copy_node(u, u->body->nodes[k], it)) u->failed = 1;
}

/* |col|[0..cnt) stacked along a new axis |axis| (Unsqueeze, then Concats
 * of at most 32 inputs, a tree), the last first where |reverse| says so,
 * into |y| (or a new value where it is NULL); |col| is overwritten. |tag|
 * names the nodes made. */
static moss_value *stack(unroll *u, moss_value **col, int64_t cnt, int64_t axis, int reverse, moss_value *y,
                         const char *tag) {
  char name[700];
  int64_t it, m;
  for (it = 0; it < cnt; it++) { /* each with the new axis */
    moss_value *in[2];
    in[0] = col[it];
    in[1] = ints(u, axis, 1);
    snprintf(name, sizeof name, "%s/stack%s#%d", u->n->name, tag, (int)it);
    col[it] = make1(u, "Unsqueeze", name, 2, in, NULL, 0, 0);
  }
  if (reverse) /* the last iteration's first */
    for (it = 0; it < cnt / 2; it++) {
      moss_value *t = col[it];
      col[it] = col[cnt - 1 - it];
      col[cnt - 1 - it] = t;
    }
  for (m = cnt; m > 1 && !u->failed;) { /* Concats of at most 32 inputs, a tree */
    int64_t out_n = 0;
    for (it = 0; it < m; it += 32) {
      int cnt2 = (int)(m - it < 32 ? m - it : 32);
      snprintf(name, sizeof name, "%s/concat%s_%d#%d", u->n->name, tag, (int)m, (int)it);
      col[out_n++] = make1(u, "Concat", name, cnt2, col + it, m <= 32 ? y : NULL, axis, 1);
    }
    m = out_n;
  }
  if (cnt == 1 && y) {
    snprintf(name, sizeof name, "%s/stack%s", u->n->name, tag);
    make1(u, "Identity", name, 1, col, y, 0, 0);
  }
  return u->failed ? NULL : y ? y : col[0];
}

/* Row |r| of |x| (Gather on axis 0): Scan-8's rows, one per batch element. */
static moss_value *row(unroll *u, moss_value *x, int64_t r, const char *what, int k) {
  char name[700];
  moss_value *in[2];
  in[0] = x;
  in[1] = ints(u, r, 0);
  snprintf(name, sizeof name, "%s/%s%d#row%d", u->n->name, what, k, (int)r);
  return make1(u, "Gather", name, 2, in, NULL, 0, 1);
}

static moss_status expand_loop(moss_ctx *ctx, moss_graph *g, int at) {
  moss_node *n = g->nodes[at];
  const moss_subgraph *body = moss_node_subgraph(n, "body");
  moss_control c;
  unroll u;
  moss_value **state = NULL, **scans = NULL, **rowout = NULL, *truth = NULL, *active = NULL, *count = NULL;
  moss_value *src[MOSS_CONTROL_MAX];
  char name[600];
  int before = g->nnodes, k, j;
  int64_t it, T, r, rows;
  size_t ssz, csz, rsz;
  moss_status st = MOSS_OK;
  MOSS_TRY(moss_control_read(ctx, n, g->max_trip_count, &c));
  T = c.trips;
  rows = c.batch ? c.batch : 1; /* Scan-8: each row's T iterations, then the rows stacked */
  if (!unroll_open(&u, ctx, g, n, body)) {
    unroll_close(&u);
    return MOSS_E_NOMEM;
  }
  ssz = sizeof *state * (size_t)(c.nstate + 1);
  csz = sizeof *scans * (size_t)(c.nscan_out * T + 1);
  rsz = sizeof *rowout * (size_t)((c.nstate + c.nscan_out) * c.batch + 1);
  state = moss_alloc(ctx, ssz);
  scans = moss_alloc(ctx, csz);
  rowout = moss_alloc(ctx, rsz);
  if (!state || !scans || !rowout) {
    st = moss_fail(ctx, MOSS_E_NOMEM, n, "unrolling");
    goto done;
  }
  if (n->op == MOSS_OP_Loop) {
    uint8_t one = 1;
    truth = moss_graph_add_constant(ctx, g, NULL, MOSS_DT_BOOL, 0, NULL, &one);
    if (!truth) u.failed = 1;
  }
  if (c.dynamic) { /* running: the condition, and the iteration under the trip count */
    moss_value *in[2];
    active = moss_node_input(n, 1) ? scalar(&u, n->inputs[1], "cond") : truth;
    if (moss_node_input(n, 0)) {
      snprintf(name, sizeof name, "%s/count", n->name);
      count = scalar(&u, n->inputs[0], name);
      in[0] = ints(&u, 0, 0);
      in[1] = count;
      snprintf(name, sizeof name, "%s/runs#0", n->name);
      in[1] = make1(&u, "Less", name, 2, in, NULL, 0, 0);
      in[0] = active;
      snprintf(name, sizeof name, "%s/active#0", n->name);
      active = make1(&u, "And", name, 2, in, NULL, 0, 0);
    }
  }
  for (r = 0; r < rows && !u.failed; r++) {
    for (k = 0; k < c.nstate; k++) /* Scan-8: row r of each state and scan input */
      state[k] = c.batch ? row(&u, n->inputs[c.first_state + k], r, "state", k) : n->inputs[c.first_state + k];
    for (j = 0; j < c.nscan_in; j++) {
      moss_value *x = n->inputs[c.first_state + c.nstate + j];
      src[j] = c.batch ? row(&u, x, r, "row", j) : x;
    }
    for (it = 0; it < T && !u.failed; it++) {
      int i = (int)(r * T + it); /* the copy's number: rows after rows */
      if (n->op == MOSS_OP_Loop) { /* iteration number, condition, carried values */
        bind(&u, body->inputs[0], ints(&u, it, 0), i);
        bind(&u, body->inputs[1], c.dynamic ? active : truth, i);
        for (k = 0; k < c.nstate; k++) bind(&u, body->inputs[2 + k], state[k], i);
      } else { /* states, then each scan input's slice */
        for (k = 0; k < c.nstate; k++) bind(&u, body->inputs[k], state[k], i);
        for (j = 0; j < c.nscan_in; j++) {
          moss_value *in[2];
          in[0] = src[j];
          in[1] = ints(&u, c.in_reverse[j] ? T - 1 - it : it, 0);
          snprintf(name, sizeof name, "%s/slice%d#%d", n->name, j, i);
          bind(&u, body->inputs[c.nstate + j], make1(&u, "Gather", name, 2, in, NULL, c.in_axis[j], 1), i);
        }
      }
      iteration(&u, i);
      for (k = 0; k < c.nstate; k++) {
        moss_value *now = lookup(&u, body->outputs[(n->op == MOSS_OP_Loop) + k], i);
        state[k] = c.dynamic ? keep(&u, active, now, state[k], k, i) : now;
      }
      if (c.dynamic) { /* still running after this iteration: it was, the body says so, and under the count */
        moss_value *in[2];
        snprintf(name, sizeof name, "%s/cond#%d", n->name, i);
        in[0] = active;
        in[1] = scalar(&u, lookup(&u, body->outputs[0], i), name);
        snprintf(name, sizeof name, "%s/active#%d", n->name, i + 1);
        active = make1(&u, "And", name, 2, in, NULL, 0, 0);
        if (count) {
          in[0] = ints(&u, it + 1, 0);
          in[1] = count;
          snprintf(name, sizeof name, "%s/runs#%d", n->name, i + 1);
          in[1] = make1(&u, "Less", name, 2, in, NULL, 0, 0);
          in[0] = active;
          snprintf(name, sizeof name, "%s/active#%d'", n->name, i + 1);
          active = make1(&u, "And", name, 2, in, NULL, 0, 0);
        }
      }
      for (j = 0; j < c.nscan_out; j++)
        scans[j * T + it] = lookup(&u, body->outputs[(n->op == MOSS_OP_Loop) + c.nstate + j], i);
    }
    if (c.batch) { /* row r's last states and its scan outputs [T, ...] */
      for (k = 0; k < c.nstate; k++) rowout[k * c.batch + r] = state[k];
      for (j = 0; j < c.nscan_out && T > 0; j++) {
        char tag[64];
        snprintf(tag, sizeof tag, "%d_row%d", j, (int)r);
        if (c.nstate + j < n->noutputs && n->outputs[c.nstate + j])
          rowout[(c.nstate + j) * c.batch + r] = stack(&u, scans + j * T, T, 0, 0, NULL, tag);
      }
    }
  }
  if (u.failed) {
    st = moss_fail(ctx, MOSS_E_NOMEM, n, "unrolling");
    goto done;
  }
  if (u.disorder) {
    st = moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the body's nodes are not in topological order");
    goto done;
  }
  /* the node's outputs: the last states, then each scan output stacked
   * (Scan-8: each row's, stacked along the batch axis) */
  for (k = 0; k < c.nstate && k < n->noutputs && !u.failed; k++)
    if (n->outputs[k]) {
      char tag[64];
      snprintf(name, sizeof name, "%s/out%d", n->name, k);
      snprintf(tag, sizeof tag, "_out%d", k);
      if (c.batch) stack(&u, rowout + k * c.batch, c.batch, 0, 0, n->outputs[k], tag);
      else make1(&u, "Identity", name, 1, &state[k], n->outputs[k], 0, 0);
    }
  for (j = 0; j < c.nscan_out && c.nstate + j < n->noutputs && !u.failed; j++) {
    moss_value *y = n->outputs[c.nstate + j];
    if (!y) continue;
    snprintf(name, sizeof name, "%d", j);
    if (c.batch) stack(&u, rowout + (c.nstate + j) * c.batch, c.batch, 0, 0, y, name);
    else stack(&u, scans + j * T, T, c.out_axis[j], c.out_reverse[j], y, name);
  }
  if (u.failed) {
    st = moss_fail(ctx, MOSS_E_NOMEM, n, "unrolling");
    goto done;
  }
  st = moss_graph_replace_by_made(ctx, g, n, before);
done:
  unroll_close(&u);
  moss_free(ctx, state, ssz);
  moss_free(ctx, scans, csz);
  moss_free(ctx, rowout, rsz);
  if (st != MOSS_OK && g->nnodes > before) g->nnodes = before; /* what was made stays out of the list */
  return st;
}

/* SequenceMap (docs/sequences.md): the body once per element of the
 * sequences, reading element i of each sequence input and the other inputs
 * whole; output j is the sequence of the copies' output j. */
static moss_status expand_map(moss_ctx *ctx, moss_graph *g, int at) {
  moss_node *n = g->nodes[at];
  const moss_subgraph *body = moss_node_subgraph(n, "body");
  unroll u;
  moss_list **outs = NULL;
  int before = g->nnodes, k, j, it, len = n->inputs[0]->list->n;
  size_t osz = sizeof *outs * (size_t)(n->noutputs + 1);
  moss_status st = MOSS_OK;
  if ((double)len * (body->nnodes + 1) > MOSS_UNROLL_MAX_NODES)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "%d elements through a body of %d nodes: moss unrolls the "
                     "body, to %d nodes", len, body->nnodes, MOSS_UNROLL_MAX_NODES);
  if (!unroll_open(&u, ctx, g, n, body)) {
    unroll_close(&u);
    return MOSS_E_NOMEM;
  }
  if (!(outs = moss_alloc(ctx, osz))) {
    st = moss_fail(ctx, MOSS_E_NOMEM, n, "unrolling");
    goto done;
  }
  for (j = 0; j < n->noutputs; j++) {
    moss_list *l = moss_graph_alloc(g, sizeof *l);
    if (!l || !(l->items = moss_graph_alloc(g, sizeof *l->items * (size_t)(len + 1)))) {
      st = moss_fail(ctx, MOSS_E_NOMEM, n, "unrolling");
      goto done;
    }
    l->kind = MOSS_LIST_SEQUENCE;
    l->n = len;
    outs[j] = l;
  }
  for (it = 0; it < len && !u.failed; it++) {
    for (k = 0; k < body->ninputs; k++) {
      moss_value *x = n->inputs[k];
      bind(&u, body->inputs[k], x->list ? x->list->items[it] : x, it);
    }
    iteration(&u, it);
    for (j = 0; j < n->noutputs; j++) outs[j]->items[it] = lookup(&u, body->outputs[j], it);
  }
  if (u.failed || u.disorder) {
    st = u.failed ? moss_fail(ctx, MOSS_E_NOMEM, n, "unrolling")
                  : moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the body's nodes are not in topological order");
    goto done;
  }
  for (j = 0; j < n->noutputs; j++) {
    moss_value *y = n->outputs[j];
    const moss_value *b = body->outputs[j];
    if (!y) continue;
    outs[j]->elem = b->dtype; /* the body's declared type, if any: the copies' once inferred */
    y->list = outs[j];
    y->rank = 0;
    y->dtype = b->dtype != MOSS_DT_UNDEF ? b->dtype : MOSS_DT_F32;
  }
  st = moss_graph_replace_by_made(ctx, g, n, before);
done:
  unroll_close(&u);
  moss_free(ctx, outs, osz);
  if (st != MOSS_OK && g->nnodes > before) g->nnodes = before;
  return st;
}

moss_status moss_control_expand(moss_ctx *ctx, moss_graph *g, int at) {
  switch (g->nodes[at]->op) {
  case MOSS_OP_If: return expand_if(ctx, g, at);
  case MOSS_OP_SequenceMap: return expand_map(ctx, g, at);
  default: return expand_loop(ctx, g, at);
  }
}
