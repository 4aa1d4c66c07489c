/* variadic.c - elementwise Min/Max/Sum/Mean over any number of broadcast
 * inputs, and Where(condition, x, y). */
#include <string.h>

#include "ops.h"

moss_status moss_infer_variadic(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  int rank = 0, i, first = n->op == MOSS_OP_Where ? 1 : 0;
  int64_t dims[MOSS_MAX_RANK];
  (void)g;
  if (n->op == MOSS_OP_Where &&
      (moss_node_find_attr(n, "moss.if_output") || moss_node_find_attr(n, "moss.loop_carried"))) {
    /* passes/control.c: an If's output chosen at run time, or a Loop's carried value kept once
     * the loop has ended: the two sides must be alike */
    const moss_value *a = n->inputs[1], *b = n->inputs[2];
    char ta[128], tb[128];
    int loop = moss_node_find_attr(n, "moss.loop_carried") != NULL;
    MOSS_TRY(moss_need_input(ctx, n, 1));
    MOSS_TRY(moss_need_input(ctx, n, 2));
    if (a->dtype != b->dtype || a->rank != b->rank ||
        memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)(a->rank > 0 ? a->rank : 0)))
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                       loop ? "the Loop's carried value %lld is %s after an iteration and %s before it; a "
                              "loop that ends at run time keeps one type and shape"
                            : "the If's output %lld is %s from then_branch and %s from else_branch; with a "
                              "condition known only at run time both branches must give one type and shape",
                       (long long)moss_attr_int(n, loop ? "moss.loop_carried" : "moss.if_output", 0),
                       moss_value_type_str(a, ta, sizeof ta), moss_value_type_str(b, tb, sizeof tb));
  }
  for (i = 0; i < n->ninputs; i++) {
    moss_value *v = n->inputs[i];
    MOSS_TRY(moss_need_input(ctx, n, i));
    if (i > first && v->dtype != n->inputs[first]->dtype)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input types differ: %s and %s",
                       moss_dtype_name(n->inputs[first]->dtype), moss_dtype_name(v->dtype));
    MOSS_TRY(moss_broadcast(ctx, n, rank, dims, v->rank, v->dims, &rank, dims));
  }
  if (n->op == MOSS_OP_Where && n->inputs[0]->dtype != MOSS_DT_BOOL)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "Where's condition must be bool");
  if ((n->op == MOSS_OP_Mean) && !moss_dtype_is_float(n->inputs[0]->dtype))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "Mean takes floating-point inputs");
  moss_set_output(n, 0, n->inputs[first]->dtype, rank, dims);
  return MOSS_OK;
}

moss_status moss_eval_variadic(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *y = n->outputs[0];
  int64_t o, ne = moss_value_numel(y);
  (void)ctx;
  (void)g;
  if (n->op != MOSS_OP_Where || !moss_dtype_ctype(y->dtype)) return MOSS_E_UNSUPPORTED;
  for (o = 0; o < ne; o++) {
    moss_value *c = n->inputs[0];
    int64_t ic = moss_broadcast_index(y->rank, y->dims, c->rank, c->dims, o);
    moss_value *s = ((const uint8_t *)c->data)[ic] ? n->inputs[1] : n->inputs[2];
    int64_t is = moss_broadcast_index(y->rank, y->dims, s->rank, s->dims, o);
    if (moss_dtype_is_float(y->dtype)) moss_store_f64(y->dtype, y->data, o, moss_load_f64(s->dtype, s->data, is));
    else moss_store_i64(y->dtype, y->data, o, moss_load_i64(s->dtype, s->data, is));
  }
  return MOSS_OK;
}
