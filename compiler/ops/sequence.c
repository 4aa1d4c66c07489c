/* sequence.c - sequences and optionals as lists known at compile time
 * (docs/sequences.md). A sequence or optional value holds a moss_list of
 * tensor values and has no storage. Inference resolves each operator on
 * them as it meets it (moss_sequence_resolve, called by passes/infer.c
 * before the node's own inference):
 *   - the ones that make a list (SequenceEmpty, SequenceConstruct,
 *     SequenceInsert, SequenceErase, Optional, Identity of a list, If's
 *     selection of lists) give their output its list and die;
 *   - SequenceAt and OptionalGetElement of a tensor become an Identity of
 *     the element; SequenceLength and OptionalHasElement an Identity of a
 *     constant;
 *   - ConcatFromSequence and SplitToSequence become Unsqueeze, Concat,
 *     Slice and Gather nodes, put right after them (inference visits them
 *     next);
 *   - SequenceMap's body is unrolled once per element (passes/control.c).
 * A graph output that is a list is returned as its elements
 * (moss_sequence_outputs: moss_graph.groups). Positions and split sizes
 * must be known at compile time; any other operator refuses a list. */
#include <stdio.h>
#include <string.h>

#include "ops.h"

static int is_seq_op(moss_op op) { return !strcmp(moss_op_infos[op].family, "sequence"); }

/* A list of |count| items of |kind| (items zeroed). */
static moss_list *new_list(moss_graph *g, moss_list_kind kind, int count, moss_dtype elem) {
  moss_list *l = moss_graph_alloc(g, sizeof *l);
  if (!l) return NULL;
  l->kind = kind;
  l->n = count;
  l->elem = elem;
  l->items = moss_graph_alloc(g, sizeof *l->items * (size_t)(count + 1));
  return l->items ? l : NULL;
}

/* Gives |v| the list |l|: no storage, rank 0, the elements' type. */
static void set_list(moss_value *v, moss_list *l) {
  v->list = l;
  v->rank = 0;
  v->dtype = l->elem != MOSS_DT_UNDEF ? l->elem : MOSS_DT_F32;
  v->data = NULL;
}

static const char *what(const moss_value *v) {
  return v->list->kind == MOSS_LIST_OPTIONAL ? "an optional" : "a sequence";
}

/* Input |i| as a sequence, or a diagnostic. */
static moss_status need_seq(moss_ctx *ctx, const moss_node *n, int i, const moss_list **out) {
  const moss_value *v = moss_node_input(n, i);
  if (!v || !v->list || v->list->kind != MOSS_LIST_SEQUENCE)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input %d%s%s%s must be a sequence", i, v ? " '" : "",
                     v ? v->name : "", v ? "'" : "");
  *out = v->list;
  return MOSS_OK;
}

/* Input |i| as a tensor (not a list), or a diagnostic. */
static moss_status need_tensor(moss_ctx *ctx, const moss_node *n, int i) {
  const moss_value *v = moss_node_input(n, i);
  MOSS_TRY(moss_need_input(ctx, n, i));
  if (v->list)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input '%s' is %s; a tensor is expected", v->name, what(v));
  return MOSS_OK;
}

/* A position input |i| (a constant integer scalar or [1]) within
 * [-count, count - 1 + extra] (extra 1: an insertion may go at the end),
 * normalized into |*out|; |def| when the input is absent. */
static moss_status position(moss_ctx *ctx, const moss_node *n, int i, int count, int extra, int def, int *out) {
  const moss_value *p = moss_node_input(n, i);
  int64_t k;
  if (!p) {
    *out = def;
    return MOSS_OK;
  }
  MOSS_TRY(need_tensor(ctx, n, i));
  MOSS_TRY(moss_need_constant(ctx, n, i, "the position in the sequence"));
  if ((p->dtype != MOSS_DT_I32 && p->dtype != MOSS_DT_I64) || moss_value_numel(p) != 1)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the position '%s' must be one int32 or int64", p->name);
  k = moss_value_get_i64(p, 0);
  if (k < -(int64_t)count || k > (int64_t)count - 1 + extra)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "position %lld is outside a sequence of %d", (long long)k, count);
  *out = (int)(k < 0 ? k + count : k);
  return MOSS_OK;
}

/* Turns |n| into Identity of |x| (one input, one output); inference then
 * infers it as such. */
static void become_identity(moss_node *n, moss_value *x) {
  n->op = MOSS_OP_Identity;
  n->op_type = "Identity";
  n->inputs[0] = x;
  n->ninputs = 1;
  n->noutputs = 1;
  n->nattrs = 0;
}

/* The scalar constant |x| of |dt| (INT64 or BOOL). */
static moss_value *scalar_const(moss_ctx *ctx, moss_graph *g, moss_dtype dt, int64_t x) {
  uint8_t b = (uint8_t)(x != 0);
  return moss_graph_add_constant(ctx, g, NULL, dt, 0, NULL, dt == MOSS_DT_BOOL ? (const void *)&b : (const void *)&x);
}

/* A node |op| named after |n| and |k|, opset 17 (inputs for axes and
 * sizes), with output |y| or a new value. */
static moss_node *made_node(moss_ctx *ctx, moss_graph *g, const moss_node *n, const char *op, int k, int nin,
                            moss_value *y) {
  char name[512];
  moss_node *m;
  snprintf(name, sizeof name, "%s/%s%d", n->name, op, k);
  if (!(m = moss_graph_add_node(ctx, g, op, name, nin, 1))) return NULL;
  m->opset = 17;
  if (!y && !(y = moss_graph_add_value(ctx, g, name))) return NULL;
  m->outputs[0] = y;
  y->producer = m;
  return m;
}

static moss_value *ints1(moss_ctx *ctx, moss_graph *g, int64_t x) {
  int64_t one = 1;
  return moss_graph_add_constant(ctx, g, NULL, MOSS_DT_I64, 1, &one, &x);
}

/* ConcatFromSequence: Concat of the elements (new_axis: each unsqueezed). */
static moss_status concat_from(moss_ctx *ctx, moss_graph *g, moss_node *n, const moss_list *l) {
  int newaxis = (int)moss_attr_int(n, "new_axis", 0), before = g->nnodes, k, r, ax;
  int64_t axis = moss_attr_int(n, "axis", 0);
  moss_value **in;
  moss_node *c;
  if (!moss_node_find_attr(n, "axis")) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "attribute 'axis' is required");
  if (l->n == 0)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the sequence is empty: there is nothing to concatenate");
  r = l->items[0]->rank;
  MOSS_TRY(moss_norm_axis(ctx, n, axis, r + (newaxis != 0), &ax));
  if (!(in = moss_graph_alloc(g, sizeof *in * (size_t)l->n))) return moss_fail(ctx, MOSS_E_NOMEM, n, "nodes");
  for (k = 0; k < l->n; k++) { /* the Unsqueezes first: the Concat reads them */
    in[k] = l->items[k];
    if (newaxis) {
      moss_node *u = made_node(ctx, g, n, "Unsqueeze", k, 2, NULL);
      if (!u || !(u->inputs[1] = ints1(ctx, g, ax))) return moss_fail(ctx, MOSS_E_NOMEM, n, "nodes");
      u->inputs[0] = in[k];
      in[k] = u->outputs[0];
    }
  }
  if (!(c = made_node(ctx, g, n, "Concat", 0, l->n, n->outputs[0])) || !(c->attrs = moss_graph_alloc(g, sizeof *c->attrs)))
    return moss_fail(ctx, MOSS_E_NOMEM, n, "nodes");
  c->nattrs = 1;
  c->attrs[0].name = "axis";
  c->attrs[0].type = MOSS_ATTR_INT;
  c->attrs[0].i = ax;
  memcpy(c->inputs, in, sizeof *in * (size_t)l->n);
  return moss_graph_replace_by_made(ctx, g, n, before);
}

/* SplitToSequence: a Slice per part (Gather for keepdims 0 without split). */
static moss_status split_to(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  const moss_value *x = n->inputs[0], *s = moss_node_input(n, 1);
  int keep = (int)moss_attr_int(n, "keepdims", 1), before = g->nnodes, ax, k, parts;
  int64_t len, sizes_buf[1], *sizes = NULL, start = 0;
  moss_list *l;
  MOSS_TRY(need_tensor(ctx, n, 0));
  if (x->rank < 1) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the input '%s' is a scalar", x->name);
  MOSS_TRY(moss_norm_axis(ctx, n, moss_attr_int(n, "axis", 0), x->rank, &ax));
  len = x->dims[ax];
  if (s) {
    int64_t m, i;
    MOSS_TRY(need_tensor(ctx, n, 1));
    MOSS_TRY(moss_need_constant(ctx, n, 1, "the split sizes"));
    m = moss_value_numel(s);
    if (s->dtype != MOSS_DT_I32 && s->dtype != MOSS_DT_I64)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the split '%s' must be int32 or int64", s->name);
    if (s->rank == 0) { /* parts of that size, the last one smaller */
      int64_t each = moss_value_get_i64(s, 0);
      if (each < 1) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "split size %lld (at least 1)", (long long)each);
      parts = (int)(len / each + (len % each != 0)); /* no len + each: |each| may be near 2^63 */
      if (len > 1 << 16) return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "%lld parts", (long long)len);
      if (!(sizes = moss_graph_alloc(g, sizeof *sizes * (size_t)(parts + 1)))) return MOSS_E_NOMEM;
      for (i = 0; i < parts; i++) sizes[i] = i + 1 < parts ? each : len - each * i;
    } else {
      int64_t sum = 0;
      if (s->rank != 1 || m > 1 << 16) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the split must be a scalar or 1-D");
      parts = (int)m;
      if (!(sizes = moss_graph_alloc(g, sizeof *sizes * (size_t)(parts + 1)))) return MOSS_E_NOMEM;
      for (i = 0; i < m; i++) {
        sizes[i] = moss_value_get_i64(s, i);
        if (sizes[i] < 0 || sizes[i] > len) /* each at most the axis: the sum cannot overflow */
          return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "split size %lld (axis %d has %lld)",
                           (long long)sizes[i], ax, (long long)len);
        sum += sizes[i];
      }
      if (sum != len)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the split sizes add up to %lld; axis %d has %lld",
                         (long long)sum, ax, (long long)len);
    }
  } else {
    if (len > 1 << 16) return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "%lld parts", (long long)len);
    parts = (int)len;
    sizes_buf[0] = 1;
  }
  if (!(l = new_list(g, MOSS_LIST_SEQUENCE, parts, x->dtype))) return moss_fail(ctx, MOSS_E_NOMEM, n, "sequence");
  for (k = 0; k < parts; k++) {
    int64_t size = sizes ? sizes[k] : sizes_buf[0];
    moss_node *m;
    if (!s && !keep) { /* element k without the axis */
      m = made_node(ctx, g, n, "Gather", k, 2, NULL);
      if (!m || !(m->inputs[1] = scalar_const(ctx, g, MOSS_DT_I64, k)) ||
          !(m->attrs = moss_graph_alloc(g, sizeof *m->attrs)))
        return moss_fail(ctx, MOSS_E_NOMEM, n, "nodes");
      m->nattrs = 1;
      m->attrs[0].name = "axis";
      m->attrs[0].type = MOSS_ATTR_INT;
      m->attrs[0].i = ax;
    } else {
      m = made_node(ctx, g, n, "Slice", k, 4, NULL);
      if (!m || !(m->inputs[1] = ints1(ctx, g, start)) || !(m->inputs[2] = ints1(ctx, g, start + size)) ||
          !(m->inputs[3] = ints1(ctx, g, ax)))
        return moss_fail(ctx, MOSS_E_NOMEM, n, "nodes");
    }
    m->inputs[0] = n->inputs[0];
    l->items[k] = m->outputs[0];
    start += size;
  }
  set_list(n->outputs[0], l);
  return moss_graph_replace_by_made(ctx, g, n, before);
}

/* The element type the 'type' attribute (a TypeProto) of Optional names is
 * not read by the importer; an empty optional takes float32. */
static moss_status optional_make(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = moss_node_input(n, 0);
  moss_list *l = new_list(g, MOSS_LIST_OPTIONAL, x ? 1 : 0, x ? x->dtype : MOSS_DT_UNDEF);
  if (!l) return moss_fail(ctx, MOSS_E_NOMEM, n, "optional");
  if (x) {
    if (x->list && x->list->kind != MOSS_LIST_SEQUENCE)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "an optional of an optional");
    l->items[0] = x;
    l->elem_is_list = x->list != NULL;
    l->elem = x->list ? x->list->elem : x->dtype;
  }
  set_list(n->outputs[0], l);
  n->dead = 1;
  return MOSS_OK;
}

/* The operators of the sequence family. *handled: |n| is resolved (dead);
 * else it became a tensor operator that inference goes on with. */
static moss_status resolve_seq_op(moss_ctx *ctx, moss_graph *g, moss_node *n, int *handled) {
  const moss_list *s;
  moss_list *l;
  moss_value *y = n->outputs[0];
  int k, at;
  *handled = 1;
  switch (n->op) {
  case MOSS_OP_SequenceEmpty: {
    moss_dtype dt = (moss_dtype)moss_attr_int(n, "dtype", MOSS_DT_F32);
    if (dt <= 0 || dt >= MOSS_DT_COUNT_ || !moss_dtype_size(dt))
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "element type %d", (int)dt);
    if (!(l = new_list(g, MOSS_LIST_SEQUENCE, 0, dt))) return MOSS_E_NOMEM;
    break;
  }
  case MOSS_OP_SequenceConstruct:
    if (!(l = new_list(g, MOSS_LIST_SEQUENCE, n->ninputs, MOSS_DT_UNDEF))) return MOSS_E_NOMEM;
    for (k = 0; k < n->ninputs; k++) {
      MOSS_TRY(need_tensor(ctx, n, k));
      if (k && n->inputs[k]->dtype != n->inputs[0]->dtype)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input '%s' is %s, input '%s' %s: a sequence holds one type",
                         n->inputs[k]->name, moss_dtype_name(n->inputs[k]->dtype), n->inputs[0]->name,
                         moss_dtype_name(n->inputs[0]->dtype));
      l->items[k] = n->inputs[k];
    }
    l->elem = n->inputs[0]->dtype;
    break;
  case MOSS_OP_SequenceInsert:
    MOSS_TRY(need_seq(ctx, n, 0, &s));
    MOSS_TRY(need_tensor(ctx, n, 1));
    if (s->elem != MOSS_DT_UNDEF && n->inputs[1]->dtype != s->elem)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "inserting %s into a sequence of %s",
                       moss_dtype_name(n->inputs[1]->dtype), moss_dtype_name(s->elem));
    MOSS_TRY(position(ctx, n, 2, s->n, 1, s->n, &at));
    if (!(l = new_list(g, MOSS_LIST_SEQUENCE, s->n + 1, n->inputs[1]->dtype))) return MOSS_E_NOMEM;
    for (k = 0; k < s->n + 1; k++) l->items[k] = k < at ? s->items[k] : k == at ? n->inputs[1] : s->items[k - 1];
    break;
  case MOSS_OP_SequenceErase:
    MOSS_TRY(need_seq(ctx, n, 0, &s));
    if (s->n == 0) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "erasing from an empty sequence");
    MOSS_TRY(position(ctx, n, 1, s->n, 0, s->n - 1, &at));
    if (!(l = new_list(g, MOSS_LIST_SEQUENCE, s->n - 1, s->elem))) return MOSS_E_NOMEM;
    for (k = 0; k < s->n - 1; k++) l->items[k] = s->items[k < at ? k : k + 1];
    break;
  case MOSS_OP_SequenceAt:
    MOSS_TRY(need_seq(ctx, n, 0, &s));
    MOSS_TRY(position(ctx, n, 1, s->n, 0, 0, &at));
    become_identity(n, s->items[at]);
    *handled = 0;
    return MOSS_OK;
  case MOSS_OP_SequenceLength: {
    moss_value *c;
    MOSS_TRY(need_seq(ctx, n, 0, &s));
    if (!(c = scalar_const(ctx, g, MOSS_DT_I64, s->n))) return MOSS_E_NOMEM;
    become_identity(n, c);
    *handled = 0;
    return MOSS_OK;
  }
  case MOSS_OP_ConcatFromSequence:
    MOSS_TRY(need_seq(ctx, n, 0, &s));
    return concat_from(ctx, g, n, s);
  case MOSS_OP_SplitToSequence:
    return split_to(ctx, g, n);
  case MOSS_OP_Optional:
    return optional_make(ctx, g, n);
  case MOSS_OP_OptionalHasElement: {
    moss_value *x = moss_node_input(n, 0), *c;
    int has = x && (!x->list || x->list->kind != MOSS_LIST_OPTIONAL || x->list->n > 0);
    if (!(c = scalar_const(ctx, g, MOSS_DT_BOOL, has))) return MOSS_E_NOMEM;
    become_identity(n, c);
    *handled = 0;
    return MOSS_OK;
  }
  case MOSS_OP_OptionalGetElement: {
    moss_value *x = moss_node_input(n, 0);
    if (!x) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "required input 0 is missing");
    if (x->list && x->list->kind == MOSS_LIST_OPTIONAL) {
      if (x->list->n == 0) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the optional '%s' is empty", x->name);
      x = x->list->items[0];
    }
    if (!x->list) {
      become_identity(n, x);
      *handled = 0;
      return MOSS_OK;
    }
    l = x->list; /* a sequence, passed on */
    break;
  }
  case MOSS_OP_SequenceMap:
    *handled = 0; /* unrolled by passes/control.c */
    return MOSS_OK;
  default:
    return moss_fail(ctx, MOSS_E_INTERNAL, n, "not a sequence operator");
  }
  if (!y) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "no output");
  set_list(y, l);
  n->dead = 1;
  return MOSS_OK;
}

/* If's selection (passes/control.c: a Where flagged moss.if_output) of two
 * lists: one Where per element, the lists alike in kind and length. */
static moss_status select_lists(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  const moss_value *a = n->inputs[1], *b = n->inputs[2];
  const moss_list *la = a->list, *lb = b->list;
  moss_list *l;
  int before = g->nnodes, k;
  char buf[512];
  const char *hint = moss_freeze_hint(n->inputs[0], buf, sizeof buf);
  if (!la || !lb || la->kind != lb->kind || la->n != lb->n || la->elem_is_list != lb->elem_is_list)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "the branches give %s of %d and %s of %d: a sequence or optional is known at compile "
                     "time, so the condition must be too: fix it with %s",
                     la ? what(a) : "a tensor", la ? la->n : 1, lb ? what(b) : "a tensor", lb ? lb->n : 1,
                     hint ? hint : "--constant on the inputs it comes from");
  if (la->elem_is_list && la->n) { /* an optional of a sequence: the sequences' elements */
    moss_node *w;
    if (!(w = made_node(ctx, g, n, "Where", 0, 3, NULL))) return MOSS_E_NOMEM;
    w->inputs[0] = n->inputs[0];
    w->inputs[1] = la->items[0];
    w->inputs[2] = lb->items[0];
    w->attrs = n->attrs;
    w->nattrs = n->nattrs;
    if (!(l = new_list(g, la->kind, 1, la->elem))) return MOSS_E_NOMEM;
    l->elem_is_list = 1;
    l->items[0] = w->outputs[0];
  } else {
    if (!(l = new_list(g, la->kind, la->n, la->elem))) return MOSS_E_NOMEM;
    for (k = 0; k < la->n; k++) {
      moss_node *w = made_node(ctx, g, n, "Where", k, 3, NULL);
      if (!w) return MOSS_E_NOMEM;
      w->inputs[0] = n->inputs[0];
      w->inputs[1] = la->items[k];
      w->inputs[2] = lb->items[k];
      w->attrs = n->attrs;
      w->nattrs = n->nattrs;
      l->items[k] = w->outputs[0];
    }
  }
  set_list(n->outputs[0], l);
  return moss_graph_replace_by_made(ctx, g, n, before);
}

moss_status moss_sequence_resolve(moss_ctx *ctx, moss_graph *g, moss_node *n, int *handled) {
  int k;
  const moss_value *lv = NULL;
  *handled = 0;
  if (is_seq_op(n->op)) return resolve_seq_op(ctx, g, n, handled);
  for (k = 0; k < n->ninputs && !lv; k++)
    if (n->inputs[k] && n->inputs[k]->list) lv = n->inputs[k];
  if (!lv) return MOSS_OK;
  if (n->op == MOSS_OP_Identity && n->noutputs >= 1 && n->outputs[0]) {
    set_list(n->outputs[0], lv->list);
    n->dead = 1;
    *handled = 1;
    return MOSS_OK;
  }
  if (n->op == MOSS_OP_Where && moss_node_find_attr(n, "moss.if_output")) {
    *handled = 1;
    return select_lists(ctx, g, n);
  }
  if (n->op == MOSS_OP_Where && moss_node_find_attr(n, "moss.loop_carried")) {
    /* a Loop unrolled to --max-trip-count keeps each carried value from
     * when it ended: a list's length would then be the run's */
    char buf[512];
    const char *hint = moss_freeze_hint(n->inputs[0], buf, sizeof buf);
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "the Loop carries %s ('%s') and ends at run time: a sequence's length is known at "
                     "compile time, so its trip count and condition must be too: fix them with %s",
                     what(lv), lv->name, hint ? hint : "--constant on the inputs they come from");
  }
  /* control flow passes lists on: the values its subgraphs read */
  if (n->op == MOSS_OP_If || n->op == MOSS_OP_Loop || n->op == MOSS_OP_Scan) return MOSS_OK;
  return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "input '%s' is %s; %s takes tensors", lv->name, what(lv), n->op_type);
}

moss_status moss_infer_sequence(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)g;
  if (n->op == MOSS_OP_SequenceMap) { /* checked here, unrolled by passes/control.c */
    const moss_attr *a = moss_node_find_attr(n, "body");
    int k, nlist = 0;
    if (!a || a->type != MOSS_ATTR_GRAPH || !a->graph)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "no body graph");
    if (!n->inputs[0] || !n->inputs[0]->list || n->inputs[0]->list->kind != MOSS_LIST_SEQUENCE)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input 0 must be a sequence");
    for (k = 0; k < a->graph->ninputs && k < n->ninputs; k++)
      if (n->inputs[k] && n->inputs[k]->list) {
        if (n->inputs[k]->list->kind != MOSS_LIST_SEQUENCE ||
            n->inputs[k]->list->n != n->inputs[0]->list->n)
          return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input '%s' is not a sequence as long as '%s'",
                           n->inputs[k]->name, n->inputs[0]->name);
        nlist++;
      }
    if (a->graph->ninputs > n->ninputs || a->graph->noutputs != n->noutputs)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the body has %d inputs and %d outputs; the node %d and %d",
                       a->graph->ninputs, a->graph->noutputs, n->ninputs, n->noutputs);
    (void)nlist;
    return MOSS_OK;
  }
  return moss_fail(ctx, MOSS_E_INTERNAL, n, "left to moss_sequence_resolve");
}

moss_status moss_eval_sequence(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED;
}

/* Graph output |i|, a list value: its elements become graph outputs of
 * their own (each through an Identity, so that each has its own buffer
 * and name "<output>.<k>"), recorded as a group. */
moss_status moss_sequence_outputs(moss_ctx *ctx, moss_graph *g) {
  int i, k, total = 0, nout = 0, ngroups = 0;
  moss_value **outs, **decl;
  for (i = 0; i < g->noutputs; i++) {
    const moss_list *l = g->outputs[i]->list;
    if (!l) {
      total++;
      continue;
    }
    ngroups++;
    if (l->elem_is_list && l->n) l = l->items[0]->list;
    total += l->n;
  }
  if (!ngroups) return MOSS_OK;
  outs = moss_graph_alloc(g, sizeof *outs * (size_t)(total + 1));
  decl = moss_graph_alloc(g, sizeof *decl * (size_t)(total + 1));
  g->groups = moss_graph_alloc(g, sizeof *g->groups * (size_t)ngroups);
  if (!outs || !decl || !g->groups) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "outputs");
  g->ngroups = 0;
  for (i = 0; i < g->noutputs; i++) {
    moss_value *v = g->outputs[i];
    const moss_list *l = v->list, *items;
    struct moss_group *gr;
    if (!l) {
      decl[nout] = g->output_decl ? g->output_decl[i] : NULL;
      v->output_index = nout;
      outs[nout++] = v;
      continue;
    }
    v->output_index = -1;
    gr = &g->groups[g->ngroups++];
    gr->position = i;
    gr->first = nout;
    gr->kind = l->kind;
    gr->optional_of_sequence = l->elem_is_list;
    gr->absent = l->kind == MOSS_LIST_OPTIONAL && l->n == 0;
    gr->elem = l->elem;
    gr->name = v->name;
    items = l->elem_is_list && l->n ? l->items[0]->list : l;
    gr->count = items->n;
    for (k = 0; k < items->n; k++) {
      char name[512];
      moss_node *m;
      moss_value *y;
      snprintf(name, sizeof name, "%s.%d", v->name, k);
      m = moss_graph_add_node(ctx, g, "Identity", name, 1, 1);
      y = moss_graph_add_value(ctx, g, name);
      if (!m || !y) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "outputs");
      m->inputs[0] = items->items[k];
      m->outputs[0] = y;
      y->producer = m;
      MOSS_TRY(moss_infer_table[MOSS_OP_Identity](ctx, g, m));
      y->output_index = nout;
      decl[nout] = NULL;
      outs[nout++] = y;
    }
  }
  g->outputs = outs;
  g->output_decl = decl;
  g->noutputs = nout;
  return MOSS_OK;
}
