/* half.c - float16 and bfloat16 tensors are stored in 16 bits and computed
 * on in float32 (docs/kernel.md, "Half precision"). Inference
 * (passes/infer.c) calls in here around each node other than Cast and
 * CastLike that reads such a tensor: before the node is inferred, each such
 * input is read through a Cast to float32 (one per value, shared by its
 * readers; a constant one folds on the spot), so the node is inferred,
 * checked and lowered as a float32 node; after it, each output that came
 * out float32 is made in float32 by the node and rounded back by a Cast
 * into the original value, which keeps its name, its readers and the
 * input's 16-bit type. So each operation rounds its float32 result once,
 * to nearest even, as numpy's float16 arithmetic does, and only Cast
 * (kernel/lower_cast.c) ever sees the 16-bit bits. */
#include <stdio.h>
#include <string.h>

#include "passes.h"

/* A new value shaped like |v|, of type |dt|, named |v|'s name + |suffix|. */
static moss_value *like(moss_ctx *ctx, moss_graph *g, const moss_value *v, const char *suffix,
                        moss_dtype dt) {
  char name[512];
  moss_value *r;
  snprintf(name, sizeof name, "%s%s", v->name ? v->name : "v", suffix);
  r = moss_graph_add_value(ctx, g, name);
  if (!r) return NULL;
  r->dtype = dt;
  r->rank = v->rank;
  memcpy(r->dims, v->dims, sizeof r->dims);
  return r;
}

/* A Cast node from |x| to |y| (to |y|->dtype), named |x| or |y|'s name + |suffix|. */
static moss_node *cast(moss_ctx *ctx, moss_graph *g, const moss_node *n, moss_value *x, moss_value *y,
                       const char *name) {
  moss_node *c = moss_graph_add_node(ctx, g, "Cast", name, 1, 1);
  if (!c || !(c->attrs = moss_graph_alloc(g, sizeof *c->attrs))) return NULL;
  c->nattrs = 1;
  c->attrs[0].name = "to";
  c->attrs[0].type = MOSS_ATTR_INT;
  c->attrs[0].i = y->dtype;
  c->opset = n->opset;
  c->inputs[0] = x;
  c->outputs[0] = y;
  y->producer = c;
  return c;
}

moss_status moss_half_inputs(moss_ctx *ctx, moss_graph *g, moss_node *n, moss_value **as_f32, int nv,
                             moss_dtype *out_half) {
  char name[512];
  int k, folded;
  *out_half = MOSS_DT_UNDEF;
  if (n->op == MOSS_OP_Cast || n->op == MOSS_OP_CastLike || !strcmp(moss_op_infos[n->op].family, "control"))
    return MOSS_OK;
  for (k = 0; k < n->ninputs; k++) {
    moss_value *v = n->inputs[k];
    moss_node *c;
    if (!v || !moss_dtype_is_half(v->dtype)) continue;
    if (*out_half == MOSS_DT_UNDEF) *out_half = v->dtype;
    if (v->id < 0 || v->id >= nv) return moss_fail(ctx, MOSS_E_INTERNAL, n, "float16 value id");
    if (!as_f32[v->id]) {
      moss_value *f = like(ctx, g, v, ".f32", MOSS_DT_F32);
      snprintf(name, sizeof name, "%s.to_f32", v->name ? v->name : "v");
      if (!f || !(c = cast(ctx, g, n, v, f, name))) return moss_fail(ctx, MOSS_E_NOMEM, n, "float16 casts");
      if (v->data) MOSS_TRY(moss_fold_node(ctx, g, c, &folded));
      as_f32[v->id] = f;
    }
    n->inputs[k] = as_f32[v->id];
  }
  return MOSS_OK;
}

moss_status moss_half_outputs(moss_ctx *ctx, moss_graph *g, moss_node *n, moss_dtype half) {
  char name[512];
  int k;
  for (k = 0; k < n->noutputs; k++) {
    moss_value *v = n->outputs[k], *f;
    if (!v || v->dtype != MOSS_DT_F32 || v->data) continue;
    if (!(f = like(ctx, g, v, ".f32", MOSS_DT_F32))) return moss_fail(ctx, MOSS_E_NOMEM, n, "float16 casts");
    f->producer = n;
    n->outputs[k] = f;
    v->dtype = half;
    snprintf(name, sizeof name, "%s.to_%s", v->name ? v->name : "v", moss_dtype_short(half));
    if (!cast(ctx, g, n, f, v, name)) return moss_fail(ctx, MOSS_E_NOMEM, n, "float16 casts");
  }
  return MOSS_OK;
}
