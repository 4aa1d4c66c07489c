/* control.c - If, Loop and Scan: their inputs and subgraphs checked
 * (moss_control_read). The output types come from the subgraph that runs,
 * which inference puts in the node's place right after this check
 * (passes/control.c: the branch an If picks; a Loop's or Scan's body once
 * per iteration); nothing is set here. */
#include <string.h>

#include "ops.h"

const moss_subgraph *moss_node_subgraph(const moss_node *n, const char *name) {
  const moss_attr *a = moss_node_find_attr(n, name);
  return a && a->type == MOSS_ATTR_GRAPH ? a->graph : NULL;
}

/* Whether |v| is a bool true, as a constant. */
static int const_true(const moss_value *v) {
  return v && v->data && v->dtype == MOSS_DT_BOOL && moss_value_numel(v) == 1 && moss_value_get_i64(v, 0);
}

/* Whether a Loop body's condition output |v| is true whenever the loop
 * runs: the condition input passed on, a constant true (outside, or a
 * Constant node of the body), through Identity nodes (torch writes
 * Identity of the graph's constant true). */
static int stays_true(const moss_subgraph *b, const moss_value *v, int depth) {
  const moss_attr *t;
  if (!v || depth > 16) return 0;
  if (v == b->inputs[1] || const_true(v)) return 1;
  if (!v->producer) return 0;
  if (v->producer->op == MOSS_OP_Identity) return stays_true(b, v->producer->inputs[0], depth + 1);
  t = v->producer->op == MOSS_OP_Constant ? moss_node_find_attr(v->producer, "value") : NULL;
  return t && t->type == MOSS_ATTR_TENSOR && const_true(t->t);
}

static moss_status read_if(moss_ctx *ctx, const moss_node *n) {
  static const char *const names[2] = {"then_branch", "else_branch"};
  const moss_value *cond;
  int k;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  cond = n->inputs[0];
  if (cond->dtype != MOSS_DT_BOOL || moss_value_numel(cond) != 1)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the condition '%s' must be one bool, not %lld of %s",
                     cond->name, (long long)moss_value_numel(cond), moss_dtype_name(cond->dtype));
  for (k = 0; k < 2; k++) {
    const moss_subgraph *b = moss_node_subgraph(n, names[k]);
    if (!b) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "no %s graph", names[k]);
    if (b->noutputs != n->noutputs)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%s gives %d outputs; the node has %d", names[k],
                       b->noutputs, n->noutputs);
  }
  return MOSS_OK;
}

/* Loop: a trip count known at compile time, a condition that is true
 * (absent, or a constant) and that the body passes on unchanged; or,
 * with a bound (--max-trip-count), any of them known only at run time
 * (c->dynamic: the iterations past the loop's end keep its values). */
static moss_status read_loop(moss_ctx *ctx, const moss_node *n, const moss_subgraph *b, int64_t bound,
                             moss_control *c) {
  const moss_value *m = moss_node_input(n, 0), *cond = moss_node_input(n, 1), *out;
  int k, dyn = 0;
  if (b->ninputs < 2 || b->noutputs < b->ninputs - 1)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the body has %d inputs and %d outputs; a Loop's body takes "
                     "the iteration, the condition and the carried values, and gives the condition, the "
                     "carried values and any scan outputs", b->ninputs, b->noutputs);
  c->nstate = b->ninputs - 2;
  c->nscan_out = b->noutputs - 1 - c->nstate;
  c->first_state = 2;
  if (n->noutputs > c->nstate + c->nscan_out)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%d outputs; its body gives %d", n->noutputs,
                     c->nstate + c->nscan_out);
  for (k = 0; k < c->nstate; k++) MOSS_TRY(moss_need_input(ctx, n, 2 + k));
  if (m && (moss_value_numel(m) != 1 || m->dtype != MOSS_DT_I64))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the trip count must be one int64");
  if (cond && (cond->dtype != MOSS_DT_BOOL || moss_value_numel(cond) != 1))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the condition must be one bool");
  if (!m && !bound)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "a Loop without a trip count runs until its condition "
                     "turns false; moss unrolls loops whose trip count is known at compile time, or up to "
                     "--max-trip-count N");
  if (m && !m->data) {
    char buf[512];
    const char *hint = moss_freeze_hint(m, buf, sizeof buf);
    if (!bound)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "the trip count '%s' is known only at run time: fix it at "
                       "compile time with %s, or bound the loop with --max-trip-count N", m->name,
                       hint ? hint : "--constant on the inputs it comes from");
    dyn = 1;
  }
  if (cond && !cond->data) {
    char buf[512];
    const char *hint = moss_freeze_hint(cond, buf, sizeof buf);
    if (!bound)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "the condition '%s' is known only at run time: fix it at "
                       "compile time with %s, or bound the loop with --max-trip-count N", cond->name,
                       hint ? hint : "--constant on the inputs it comes from");
    dyn = 1;
  }
  out = b->outputs[0];
  if (!stays_true(b, out, 0)) {
    if (!bound)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "the body computes its condition '%s' (a while loop), which "
                       "only the run knows: bound the loop with --max-trip-count N", out->name);
    dyn = 1;
  }
  if (!m) dyn = 1;
  c->trips = m && m->data ? moss_value_get_i64(m, 0) : bound;
  if (cond && cond->data && !moss_value_get_i64(cond, 0)) c->trips = 0, dyn = 0;
  if (dyn) {
    if (m && m->data && c->trips > bound) c->trips = bound; /* the bound is a promise */
    for (k = c->nstate; k < n->noutputs; k++)
      if (n->outputs[k])
        return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "scan output '%s' of a Loop that ends at run time: "
                         "its length only the run knows", n->outputs[k]->name);
    c->dynamic = 1;
  }
  return MOSS_OK;
}

/* Scan-8: sequence_lens (absent, or a constant of T each), the states
 * [B, ...] and the scan inputs [B, T, ...], batch rows scanned one by one
 * (c->batch), each along its axis 0 once its row is taken; the outputs
 * [B, ...] and [B, T, ...]. */
static moss_status read_scan8(moss_ctx *ctx, const moss_node *n, const moss_subgraph *b, moss_control *c) {
  const int64_t *dir = NULL;
  int ndir = moss_attr_ints(n, "directions", &dir);
  int64_t m = moss_attr_int(n, "num_scan_inputs", -1), B = -1, T = -1, i;
  const moss_value *lens = moss_node_input(n, 0);
  int k, j;
  if (m < 1 || m > b->ninputs || m > MOSS_CONTROL_MAX)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "num_scan_inputs %lld for a body of %d inputs", (long long)m,
                     b->ninputs);
  c->nscan_in = (int)m;
  c->nstate = b->ninputs - c->nscan_in;
  c->first_state = 1;
  c->nscan_out = b->noutputs - c->nstate;
  if (c->nscan_out < 0 || c->nscan_out > MOSS_CONTROL_MAX || n->noutputs > b->noutputs)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the body gives %d outputs for %d states", b->noutputs,
                     c->nstate);
  if (dir && ndir != c->nscan_in)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%d directions for %d scan inputs", ndir, c->nscan_in);
  for (k = 0; k < c->nstate + c->nscan_in; k++) MOSS_TRY(moss_need_input(ctx, n, 1 + k));
  for (k = 0; k < c->nstate + c->nscan_in; k++) {
    const moss_value *x = n->inputs[1 + k];
    int scan = k >= c->nstate;
    if (x->rank < 1 + scan)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "'%s' of rank %d: Scan-8's %s have a batch axis%s", x->name,
                       x->rank, scan ? "scan inputs" : "states", scan ? " and a sequence axis" : "");
    if (x->dims[0] < 0 || (scan && x->dims[1] < 0))
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "'%s' has a batch or sequence length only the run knows; "
                       "moss unrolls Scan-8 over both", x->name);
    if (B >= 0 && x->dims[0] != B)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "batches of %lld and %lld rows ('%s')", (long long)B,
                       (long long)x->dims[0], x->name);
    B = x->dims[0];
    if (!scan) continue;
    if (T >= 0 && x->dims[1] != T)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "scan inputs of lengths %lld and %lld", (long long)T,
                       (long long)x->dims[1]);
    T = x->dims[1];
  }
  for (j = 0; j < c->nscan_in; j++) c->in_reverse[j] = dir && dir[j]; /* in_axis 0: the row's time axis */
  if (B < 1)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "a batch of %lld rows: its outputs would be empty", (long long)B);
  if (lens) {
    char buf[512];
    const char *hint;
    if ((lens->dtype != MOSS_DT_I64 && lens->dtype != MOSS_DT_I32) || lens->rank != 1 || lens->dims[0] != B)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "sequence_lens '%s' must be int64[%lld]", lens->name,
                       (long long)B);
    if (!lens->data) {
      hint = moss_freeze_hint(lens, buf, sizeof buf);
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "sequence_lens '%s' is known only at run time; moss unrolls "
                       "every row over all %lld steps, so it must be a constant of %lld each (fix it with %s)",
                       lens->name, (long long)T, (long long)T, hint ? hint : "--constant on the inputs it comes from");
    }
    for (i = 0; i < B; i++) {
      int64_t len = moss_value_get_i64(lens, i);
      if (len < 0 || len > T)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "sequence_lens '%s' gives row %lld a length of %lld; the "
                         "scan inputs have %lld steps", lens->name, (long long)i, (long long)len, (long long)T);
      if (len != T)
        return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "sequence_lens '%s' gives row %lld %lld steps, shorter than "
                         "the scan inputs' %lld; moss unrolls every row over all the steps, so shorter sequences "
                         "are not supported", lens->name, (long long)i, (long long)len, (long long)T);
    }
  }
  c->trips = T;
  c->batch = B;
  return MOSS_OK;
}

/* Scan (opset 9 on): num_scan_inputs of the node's inputs cut along their
 * axes, every one as long; the states before them. */
static moss_status read_scan(moss_ctx *ctx, const moss_node *n, const moss_subgraph *b, moss_control *c) {
  const int64_t *ax = NULL, *dir = NULL, *oax = NULL, *odir = NULL;
  int nax = moss_attr_ints(n, "scan_input_axes", &ax), ndir = moss_attr_ints(n, "scan_input_directions", &dir);
  int noax = moss_attr_ints(n, "scan_output_axes", &oax), nodir = moss_attr_ints(n, "scan_output_directions", &odir);
  int64_t m = moss_attr_int(n, "num_scan_inputs", -1);
  int k, j;
  if (n->opset > 0 && n->opset < 9) return read_scan8(ctx, n, b, c);
  if (m < 1 || m > b->ninputs || m > MOSS_CONTROL_MAX)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "num_scan_inputs %lld for a body of %d inputs", (long long)m,
                     b->ninputs);
  c->nscan_in = (int)m;
  c->nstate = b->ninputs - c->nscan_in;
  c->first_state = 0;
  c->nscan_out = b->noutputs - c->nstate;
  if (c->nscan_out < 0 || c->nscan_out > MOSS_CONTROL_MAX || n->noutputs > b->noutputs)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the body gives %d outputs for %d states", b->noutputs,
                     c->nstate);
  if ((ax && nax != c->nscan_in) || (dir && ndir != c->nscan_in) || (oax && noax != c->nscan_out) ||
      (odir && nodir != c->nscan_out))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "scan axes or directions of another count than the scan "
                     "inputs (%d) and outputs (%d)", c->nscan_in, c->nscan_out);
  c->trips = -1;
  for (k = 0; k < c->nstate + c->nscan_in; k++) MOSS_TRY(moss_need_input(ctx, n, k));
  for (j = 0; j < c->nscan_in; j++) {
    const moss_value *x = n->inputs[c->nstate + j];
    int axis;
    MOSS_TRY(moss_norm_axis(ctx, n, ax ? ax[j] : 0, x->rank, &axis));
    c->in_axis[j] = axis;
    c->in_reverse[j] = dir && dir[j];
    if (c->trips >= 0 && x->dims[axis] != c->trips)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "scan inputs of lengths %lld and %lld",
                       (long long)c->trips, (long long)x->dims[axis]);
    c->trips = x->dims[axis];
  }
  for (j = 0; j < c->nscan_out; j++) {
    c->out_axis[j] = oax ? (int)oax[j] : 0; /* normalized against the output's rank when it is known */
    c->out_reverse[j] = odir && odir[j];
  }
  return MOSS_OK;
}

moss_status moss_control_read(moss_ctx *ctx, const moss_node *n, int64_t bound, moss_control *c) {
  const moss_subgraph *b;
  double rows;
  memset(c, 0, sizeof *c);
  if (n->op == MOSS_OP_If) return read_if(ctx, n);
  if (!(b = moss_node_subgraph(n, "body"))) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "no body graph");
  MOSS_TRY(n->op == MOSS_OP_Loop ? read_loop(ctx, n, b, bound, c) : read_scan(ctx, n, b, c));
  rows = c->batch ? (double)c->batch : 1; /* Scan-8 unrolls each row's T iterations */
  if (c->nscan_out > MOSS_CONTROL_MAX)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "%d scan outputs (moss takes %d)", c->nscan_out, MOSS_CONTROL_MAX);
  if (c->trips < 1) { /* an empty scan output has no shape to plan; the states pass through */
    int k;
    for (k = c->nstate; k < n->noutputs; k++)
      if (n->outputs[k])
        return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "%lld iterations: its scan output '%s' would be empty",
                         (long long)c->trips, n->outputs[k]->name);
  }
  if (c->trips > 0 && (double)c->trips * rows * (b->nnodes + 2) > MOSS_UNROLL_MAX_NODES)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "%.0f iterations of a body of %d nodes: moss unrolls loops, "
                     "to %d nodes", (double)c->trips * rows, b->nnodes, MOSS_UNROLL_MAX_NODES);
  return MOSS_OK;
}

moss_status moss_infer_control(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_control c;
  return moss_control_read(ctx, n, g->max_trip_count, &c);
}

moss_status moss_eval_control(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED; /* replaced by what runs (passes/control.c) */
}
