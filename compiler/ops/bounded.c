/* bounded.c - bounded dynamic shapes (docs/dynamic-shapes.md): outputs
 * whose length along one axis only the run knows. The node that decides
 * it (NonZero, Unique, NonMaxSuppression here; Compress with a run-time
 * condition, TopK with a run-time k) gets an upper bound at compile time
 * and one more output, an int64 holding the length; the value's dims hold
 * the bound, the arena is planned for it, and its data is laid out for it
 * (the rows past the length are padding). The nodes after it that only
 * carry the axis along (elementwise arithmetic, casts, transposes, views
 * that keep the axis whole, gathers, slices of the other axes) compute on
 * the padded layout and pass the length on; the others are refused, each
 * naming the input. Where such a value is a graph output, MossCompact
 * copies its rows compact into the caller's buffer, and the bundle (or
 * the C header) says where the length lies in the arena. */
#include <stdio.h>
#include <string.h>

#include "ops.h"

moss_status moss_bound_output(moss_ctx *ctx, moss_graph *g, moss_node *n, int i, int axis) {
  int at = moss_op_infos[n->op].max_out, j;
  moss_value *len;
  if (n->noutputs <= at) {
    moss_value **outs = moss_graph_alloc(g, sizeof *outs * (size_t)(at + 1));
    char name[300];
    if (!outs) return moss_fail(ctx, MOSS_E_NOMEM, n, "the length output");
    for (j = 0; j < n->noutputs; j++) outs[j] = n->outputs[j];
    snprintf(name, sizeof name, "%s/length", n->name ? n->name : moss_op_infos[n->op].name);
    outs[at] = moss_graph_add_value(ctx, g, name);
    if (!outs[at]) return moss_fail(ctx, MOSS_E_NOMEM, n, "the length output");
    outs[at]->producer = n;
    n->outputs = outs;
    n->noutputs = at + 1;
  }
  len = n->outputs[at];
  len->dtype = MOSS_DT_I64;
  len->rank = 1;
  len->dims[0] = 1;
  if (n->outputs[i]) {
    n->outputs[i]->bounded = axis + 1;
    n->outputs[i]->length = len;
  }
  return MOSS_OK;
}

moss_value *moss_bound_length(const moss_node *n) {
  int at = n->op > MOSS_OP_UNKNOWN_ && n->op < MOSS_OP_COUNT_ ? moss_op_infos[n->op].max_out : -1;
  return at >= 0 && n->noutputs > at ? n->outputs[at] : NULL;
}

/* NonZero: the indices of the nonzero elements, [rank, count]. A constant
 * input gives the count now; otherwise it is bounded by the element count. */
static moss_status infer_nonzero(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = n->inputs[0];
  int64_t dims[2], numel = moss_value_numel(x), i, cnt = 0;
  if (x->rank == 0) return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "NonZero of a scalar");
  if (x->dtype == MOSS_DT_F16 || x->dtype == MOSS_DT_BF16 ||
      (!moss_arith_type(x->dtype) && x->dtype != MOSS_DT_BOOL))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "element type %s", moss_dtype_name(x->dtype));
  dims[0] = x->rank;
  if (x->data) {
    for (i = 0; i < numel; i++) cnt += moss_value_get_f64(x, i) != 0;
    dims[1] = cnt;
    moss_set_output(n, 0, MOSS_DT_I64, 2, dims);
    return MOSS_OK;
  }
  dims[1] = numel;
  moss_set_output(n, 0, MOSS_DT_I64, 2, dims);
  return moss_bound_output(ctx, g, n, 0, 1);
}

static moss_status infer_unique(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = n->inputs[0];
  const moss_attr *ax = moss_node_find_attr(n, "axis");
  int a = -1, k;
  int64_t dims[MOSS_MAX_RANK], bound, len;
  if (!moss_arith_type(x->dtype))
    return moss_fail(ctx, x->dtype == MOSS_DT_F16 || x->dtype == MOSS_DT_BF16 ||
                                  x->dtype == MOSS_DT_BOOL
                              ? MOSS_E_UNSUPPORTED
                              : MOSS_E_INVALID_MODEL,
                     n, "element type %s", moss_dtype_name(x->dtype));
  if (ax) MOSS_TRY(moss_norm_axis(ctx, n, ax->i, x->rank, &a));
  len = a >= 0 ? x->dims[a] : moss_value_numel(x);
  bound = len;
  if (a >= 0) {
    for (k = 0; k < x->rank; k++) dims[k] = x->dims[k];
    moss_set_output(n, 0, x->dtype, x->rank, dims);
  } else {
    moss_set_output(n, 0, x->dtype, 1, &bound);
  }
  moss_set_output(n, 1, MOSS_DT_I64, 1, &bound);
  moss_set_output(n, 2, MOSS_DT_I64, 1, &len);
  moss_set_output(n, 3, MOSS_DT_I64, 1, &bound);
  MOSS_TRY(moss_bound_output(ctx, g, n, 0, a >= 0 ? a : 0));
  MOSS_TRY(moss_bound_output(ctx, g, n, 1, 0));
  return moss_bound_output(ctx, g, n, 3, 0);
}

/* NonMaxSuppression: [selected, 3] rows (batch, class, box), at most
 * batches x classes x min(boxes, max_output_boxes_per_class). */
static moss_status infer_nms(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *bx = n->inputs[0], *sc = n->inputs[1], *mv = moss_node_input(n, 2);
  int64_t per, dims[2];
  int k;
  MOSS_TRY(moss_need_input(ctx, n, 1));
  if (bx->rank != 3 || bx->dims[2] != 4 || sc->rank != 3 || sc->dims[0] != bx->dims[0] ||
      sc->dims[2] != bx->dims[1])
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "boxes must be [batches, boxes, 4] and scores [batches, classes, boxes]");
  if (bx->dtype != MOSS_DT_F32 || sc->dtype != MOSS_DT_F32)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "boxes and scores of type %s (float32 is)",
                     moss_dtype_name(bx->dtype != MOSS_DT_F32 ? bx->dtype : sc->dtype));
  for (k = 2; k < 5; k++) {
    moss_value *v = moss_node_input(n, k);
    if (v && moss_value_numel(v) != 1)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input %d must hold one value", k);
    if (v && v->dtype != (k == 2 ? MOSS_DT_I64 : MOSS_DT_F32))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input %d has type %s", k,
                       moss_dtype_name(v->dtype));
  }
  per = bx->dims[1];
  if (!mv) per = 0; /* no max_output_boxes_per_class: none selected */
  else if (mv->data && moss_value_get_i64(mv, 0) < per) per = moss_value_get_i64(mv, 0);
  if (per < 0) per = 0;
  dims[0] = bx->dims[0] * sc->dims[1] * per;
  dims[1] = 3;
  moss_set_output(n, 0, MOSS_DT_I64, 2, dims);
  if (dims[0] == 0) return MOSS_OK;
  return moss_bound_output(ctx, g, n, 0, 0);
}

static moss_status infer_compact(moss_ctx *ctx, moss_node *n) {
  moss_value *x = n->inputs[0], *y = n->outputs[0];
  if (!x->bounded || x->length != n->inputs[1])
    return moss_fail(ctx, MOSS_E_INTERNAL, n, "MossCompact of a value that is not bounded");
  moss_set_output(n, 0, x->dtype, x->rank, x->dims);
  y->bounded = x->bounded;
  y->length = x->length;
  return MOSS_OK;
}

moss_status moss_infer_bounded(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  MOSS_TRY(moss_need_input(ctx, n, 0));
  switch (n->op) {
  case MOSS_OP_NonZero: return infer_nonzero(ctx, g, n);
  case MOSS_OP_Unique: return infer_unique(ctx, g, n);
  case MOSS_OP_NonMaxSuppression: return infer_nms(ctx, g, n);
  case MOSS_OP_MossCompact: return infer_compact(ctx, n);
  default: return moss_fail(ctx, MOSS_E_INTERNAL, n, "not a bounded operator");
  }
}

/* Only NonZero of a constant is evaluated (its count made it static). */
moss_status moss_eval_bounded(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  const moss_value *x = n->inputs[0];
  moss_value *y = n->outputs[0];
  int64_t numel = moss_value_numel(x), i, c = 0, st[MOSS_MAX_RANK];
  int k;
  (void)ctx;
  (void)g;
  if (n->op != MOSS_OP_NonZero || y->bounded) return MOSS_E_UNSUPPORTED;
  moss_strides(x->rank, x->dims, st);
  for (i = 0; i < numel; i++) {
    if (moss_value_get_f64(x, i) == 0) continue;
    for (k = 0; k < x->rank; k++)
      moss_store_i64(MOSS_DT_I64, y->data, k * y->dims[1] + c, (i / st[k]) % x->dims[k]);
    c++;
  }
  return MOSS_OK;
}

/* The product of |dims| over [lo, hi). */
static int64_t prod(const int64_t *dims, int lo, int hi) {
  int64_t p = 1;
  for (; lo < hi; lo++) p *= dims[lo];
  return p;
}

/* The axis of |y| that carries axis |a| of |x| when |y| has |x|'s
 * elements in the same order (a view): the one of the same length with as
 * many elements before it; -1 when there is none. */
static int view_axis(const moss_value *x, int a, const moss_value *y) {
  int k;
  int64_t before = prod(x->dims, 0, a);
  for (k = 0; k < y->rank; k++)
    if (y->dims[k] == x->dims[a] && prod(y->dims, 0, k) == before) return k;
  return -1;
}

/* The axes a Slice node cuts (its |axes| input, or all of |starts|). */
static int slice_cuts(const moss_node *n, int rank, int axis) {
  const moss_value *st = moss_node_input(n, 1), *ax = moss_node_input(n, 3);
  int64_t i, cnt;
  if (!st) return 1;
  cnt = moss_value_numel(st);
  if (!ax) return axis < cnt;
  if (!ax->data) return 1;
  for (i = 0; i < moss_value_numel(ax); i++) {
    int64_t v = moss_value_get_i64(ax, i);
    if (v < 0) v += rank;
    if (v == axis) return 1;
  }
  return 0;
}

/* For |n| that is not a bounded producer: which output axis carries the
 * bounded axis of its input |j| (-1: it cannot be carried). |*out| gets
 * the output that carries it. */
static int carried_axis(moss_ctx *ctx, const moss_node *n, int j, const moss_value *x, int *out) {
  int a = x->bounded - 1, k;
  const moss_value *y = n->outputs[0];
  const char *fam = moss_op_infos[n->op].family;
  *out = 0;
  if (!y) return -1;
  if (!strcmp(fam, "unary") || !strcmp(fam, "cast"))
    return j == 0 && y->rank == x->rank ? a : -1;
  if (!strcmp(fam, "binary") || !strcmp(fam, "variadic")) {
    int oa = y->rank - x->rank + a;
    return y->dims[oa] == x->dims[a] ? oa : -1;
  }
  if (!strcmp(fam, "reduce") && j == 0) { /* over the other axes only: the padding would count */
    int mask[MOSS_MAX_RANK], noop = 0, before = 0;
    if (n->op == MOSS_OP_ArgMax || n->op == MOSS_OP_ArgMin) {
      int64_t ax = moss_attr_int(n, "axis", 0);
      memset(mask, 0, sizeof mask);
      mask[ax < 0 ? ax + x->rank : ax] = 1;
    } else if (moss_reduce_mask(ctx, n, x->rank, mask, &noop) != MOSS_OK) {
      return -1;
    }
    if (noop) return a;
    if (mask[a]) return -1;
    for (k = 0; k < a; k++) before += mask[k];
    return moss_attr_int(n, "keepdims", 1) ? a : a - before;
  }
  if (!strcmp(fam, "softmax") && j == 0) { /* along another axis (before opset 13: the axes from
                                             * |axis| on are one) */
    int64_t sa = moss_attr_int(n, "axis", n->opset > 0 && n->opset < 13 ? 1 : -1);
    if (sa < 0) sa += x->rank;
    if (n->opset > 0 && n->opset < 13) return a < sa ? a : -1;
    return a != sa ? a : -1;
  }
  switch (n->op) {
  case MOSS_OP_Reshape: case MOSS_OP_Flatten: case MOSS_OP_Squeeze: case MOSS_OP_Unsqueeze:
  case MOSS_OP_Identity: case MOSS_OP_Dropout:
    return j == 0 ? view_axis(x, a, y) : -1;
  case MOSS_OP_Transpose: {
    const int64_t *p;
    int cnt = moss_attr_ints(n, "perm", &p);
    for (k = 0; k < y->rank; k++)
      if ((cnt == y->rank ? p[k] : y->rank - 1 - k) == a) return k;
    return -1;
  }
  case MOSS_OP_Gather: {
    const moss_value *d = n->inputs[0], *ix = n->inputs[1];
    int ga = (int)moss_attr_int(n, "axis", 0);
    if (ga < 0) ga += d->rank;
    if (j == 1) return ga + a;
    if (a == ga || (ix && ix->bounded)) return -1;
    return a < ga ? a : a - 1 + ix->rank;
  }
  case MOSS_OP_GatherND: /* bounded indices (torch's x[mask]: NonZero, Transpose, GatherND) */
    return j == 1 && moss_attr_int(n, "batch_dims", 0) == 0 && a < x->rank - 1 ? a : -1;
  case MOSS_OP_Slice:
    return j == 0 && !slice_cuts(n, x->rank, a) ? a : -1;
  case MOSS_OP_Concat: {
    int ca = (int)moss_attr_int(n, "axis", 0);
    if (ca < 0) ca += x->rank;
    if (ca == a) return -1;
    for (k = 0; k < n->ninputs; k++)
      if (!n->inputs[k] || n->inputs[k]->length != x->length || n->inputs[k]->bounded != x->bounded)
        return -1;
    return a;
  }
  default: return -1;
  }
}

moss_status moss_bound_carry(moss_ctx *ctx, moss_node *n) {
  int j, k, out, oa;
  const moss_value *from = NULL;
  moss_status st = MOSS_OK;
  int producer = moss_bound_length(n) != NULL || n->op == MOSS_OP_MossCompact;
  for (j = 0; j < n->noutputs && !producer; j++)
    if (n->outputs[j]) {
      n->outputs[j]->bounded = 0;
      n->outputs[j]->length = NULL;
    }
  for (j = 0; j < n->ninputs; j++) {
    const moss_value *x = n->inputs[j];
    if (!x || !x->bounded || (n->op == MOSS_OP_MossCompact && j == 0)) continue;
    oa = producer ? -1 : carried_axis(ctx, n, j, x, &out);
    /* Every other input must agree: broadcast over the axis, or carry the same length. */
    for (k = 0; oa >= 0 && k < n->ninputs; k++) {
      const moss_value *o = n->inputs[k];
      int ok;
      if (k == j || !o) continue;
      if (o->bounded) ok = o->length == x->length;
      else if (!strcmp(moss_op_infos[n->op].family, "binary") ||
               !strcmp(moss_op_infos[n->op].family, "variadic")) {
        int ka = oa - (n->outputs[out]->rank - o->rank);
        ok = ka < 0 || o->dims[ka] == 1;
      } else ok = 1;
      if (!ok) oa = -1;
    }
    if (oa < 0) {
      char ty[256];
      st = moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "input %d ('%s', %s) has a length along axis %d that only the run knows "
                     "(at most %lld, decided by node '%s'); %s does not take it there "
                     "(docs/dynamic-shapes.md)",
                     j, x->name ? x->name : "", moss_value_type_str(x, ty, sizeof ty),
                     x->bounded - 1, (long long)x->dims[x->bounded - 1],
                     x->length && x->length->producer && x->length->producer->name
                         ? x->length->producer->name
                         : "?",
                     n->op_type ? n->op_type : moss_op_infos[n->op].name);
      break;
    }
    if (from && from->length != x->length) {
      st = moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "inputs '%s' and '%s' have lengths that only the run knows, from two "
                     "nodes: they may differ (docs/dynamic-shapes.md)",
                     from->name, x->name);
      break;
    }
    from = x;
    n->outputs[out]->bounded = oa + 1;
    n->outputs[out]->length = x->length;
  }
  return st;
}

moss_status moss_bound_outputs(moss_ctx *ctx, moss_graph *g) {
  int i;
  for (i = 0; i < g->noutputs; i++) {
    moss_value *v = g->outputs[i], *c;
    moss_node *n;
    char name[300];
    const char *old;
    if (!v->bounded || (v->producer && v->producer->op == MOSS_OP_MossCompact)) continue;
    if (prod(v->dims, 0, v->bounded - 1) == 1) continue; /* padded is compact already */
    snprintf(name, sizeof name, "%s/padded", v->name);
    old = v->name;
    n = moss_graph_add_node(ctx, g, "MossCompact", name, 2, 1);
    c = moss_graph_add_value(ctx, g, NULL);
    if (!n || !c || !moss_graph_rename_value(g, v, name) || !moss_graph_rename_value(g, c, old))
      return moss_fail(ctx, MOSS_E_NOMEM, NULL, "compacting output '%s'", old);
    n->op = MOSS_OP_MossCompact;
    n->inputs[0] = v;
    n->inputs[1] = v->length;
    n->outputs[0] = c;
    n->opset = v->producer ? v->producer->opset : g->opset;
    c->producer = n;
    c->output_index = i;
    c->input_index = -1;
    v->output_index = -1;
    g->outputs[i] = c;
    MOSS_TRY(infer_compact(ctx, n));
  }
  return MOSS_OK;
}
