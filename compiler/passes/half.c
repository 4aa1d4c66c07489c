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

/* ---- float16 computed as such (docs/kernel.md, "Half precision") ---- */

/* The operators whose float16 result is the float32 one rounded once, so
 * that computing them in float16 gives the same bits as the Casts do
 * (float32 holds every product and quotient of two float16 exactly enough
 * for one rounding: 24 >= 2 x 11 + 2 bits). */
static int exact_in_half(const moss_node *n) {
  switch (n->op) {
  case MOSS_OP_Add: case MOSS_OP_Sub: case MOSS_OP_Mul: case MOSS_OP_Div:
    return n->ninputs == 2;
  case MOSS_OP_Max: case MOSS_OP_Min:
    return n->ninputs == 2;
  case MOSS_OP_Relu: case MOSS_OP_Neg: case MOSS_OP_Abs: case MOSS_OP_Sqrt:
    return n->ninputs == 1;
  default:
    return 0;
  }
}

/* |v| as a float16 value: the float16 value a Cast to float32 read, or a
 * float32 constant every element of which is a float16 (made one, once:
 * |made|[id], shared by its readers); NULL otherwise. */
static moss_value *half_source(moss_ctx *ctx, moss_graph *g, moss_value *v, int device, moss_value **made, int nv) {
  moss_node *c = v ? v->producer : NULL;
  moss_value *h;
  int64_t i, n;
  uint16_t *bits;
  if (c && !c->dead && c->op == MOSS_OP_Cast && c->inputs[0] && c->inputs[0]->dtype == MOSS_DT_F16 &&
      v->dtype == MOSS_DT_F32) {
    moss_value *h16 = c->inputs[0];
    moss_node *r;
    /* a float16 value rounded from a float32 one that came from float16 is that value */
    while ((r = h16->producer) && !r->dead && r->op == MOSS_OP_Cast && r->inputs[0] &&
           r->inputs[0]->dtype == MOSS_DT_F32 && (c = r->inputs[0]->producer) && !c->dead &&
           c->op == MOSS_OP_Cast && c->inputs[0] && c->inputs[0]->dtype == MOSS_DT_F16 &&
           c->device == device)
      h16 = c->inputs[0];
    return v->producer->device == device ? h16 : NULL;
  }
  if (!v || !v->data || v->dtype != MOSS_DT_F32 || (n = moss_value_numel(v)) < 0) return NULL;
  if (v->id >= 0 && v->id < nv && made[v->id]) return made[v->id];
  for (i = 0; i < n; i++) {
    double x = moss_value_get_f64(v, i);
    if (x == x && moss_half_to_f64(MOSS_DT_F16, moss_half_from_f64(MOSS_DT_F16, x)) != x) return NULL;
  }
  { /* named as the Casts name theirs: w.f16 for a constant w.f16.f32 (--float16), else w.f16 */
    char name[512];
    size_t len = v->name ? strlen(v->name) : 0;
    if (len > 4 && !strcmp(v->name + len - 4, ".f32"))
      snprintf(name, sizeof name, "%.*s", (int)(len - 4), v->name);
    else snprintf(name, sizeof name, "%s.f16", v->name ? v->name : "w");
    h = moss_graph_add_constant(ctx, g, name, MOSS_DT_F16, v->rank, v->dims, NULL);
  }
  if (!h) return NULL;
  bits = h->data;
  for (i = 0; i < n; i++) bits[i] = moss_half_from_f64(MOSS_DT_F16, moss_value_get_f64(v, i));
  if (v->id >= 0 && v->id < nv) made[v->id] = h;
  return h;
}

moss_status moss_pass_native_half(moss_ctx *ctx, moss_graph *g, const unsigned char *native) {
  int i, k, changed = 0, nv = g->nvalues;
  size_t bytes = sizeof(moss_node *) * ((size_t)nv + 1), vbytes = sizeof(moss_value *) * ((size_t)nv + 1);
  moss_node **rounds = moss_alloc(ctx, bytes); /* by value id: the Cast to float16 that reads it */
  moss_value **as16 = moss_alloc(ctx, vbytes);  /* by value id: a float32 constant's float16 twin */
  if (!rounds || !as16) {
    moss_free(ctx, rounds, bytes);
    moss_free(ctx, as16, vbytes);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "float16 pass");
  }
  memset(rounds, 0, bytes);
  memset(as16, 0, vbytes);
  moss_graph_compute_uses(g);
  for (i = 0; i < g->nnodes; i++) {
    moss_node *c = g->nodes[i];
    if (!c->dead && c->op == MOSS_OP_Cast && c->inputs[0] && c->inputs[0]->id >= 0 && c->inputs[0]->id < nv &&
        c->outputs[0] && c->outputs[0]->dtype == MOSS_DT_F16)
      rounds[c->inputs[0]->id] = c;
  }
  for (i = 0; i < g->nnodes; i++) {
    moss_node *n = g->nodes[i], *back;
    moss_value *in[8], *y;
    if (n->dead || !native[n->device] || n->noutputs != 1 || n->ninputs > 8 ||
        !(n->half_layer || (exact_in_half(n) && !n->act.kind)))
      continue;
    y = n->outputs[0];
    /* its float32 result rounded by a Cast into a float16 value, and read by nothing else */
    back = y && y->dtype == MOSS_DT_F32 && y->nuses == 1 && y->output_index < 0 && y->id >= 0 && y->id < nv
               ? rounds[y->id] : NULL;
    if (!back || back->dead || back->device != n->device) continue;
    for (k = 0; k < n->ninputs; k++)
      if (!(in[k] = half_source(ctx, g, n->inputs[k], n->device, as16, nv))) break;
    if (k < n->ninputs) continue;
    for (k = 0; k < n->ninputs; k++) n->inputs[k] = in[k];
    n->outputs[0] = back->outputs[0];
    n->outputs[0]->producer = n;
    back->dead = 1;
    n->native_half = 1;
    changed = 1;
  }
  moss_free(ctx, rounds, bytes);
  moss_free(ctx, as16, vbytes);
  if (!changed) return MOSS_OK;
  /* the Casts to float32 nothing reads now */
  do {
    changed = 0;
    moss_graph_compute_uses(g);
    for (i = 0; i < g->nnodes; i++) {
      moss_node *c = g->nodes[i];
      if (!c->dead && c->op == MOSS_OP_Cast && c->outputs[0] && c->outputs[0]->nuses == 0 &&
          c->outputs[0]->output_index < 0)
        c->dead = changed = 1;
    }
  } while (changed);
  moss_graph_compact(g);
  return MOSS_OK;
}

/* ---- --float16: layers the user asked for in float16 ---- */

/* A float32 constant with |v|'s values rounded to float16. */
static moss_value *rounded_constant(moss_ctx *ctx, moss_graph *g, const moss_value *v) {
  char name[512];
  int64_t i, n = moss_value_numel(v);
  moss_value *r;
  float *d;
  snprintf(name, sizeof name, "%s.f16.f32", v->name ? v->name : "w");
  if (n < 0 || !(r = moss_graph_add_constant(ctx, g, name, MOSS_DT_F32, v->rank, v->dims, NULL)))
    return NULL;
  d = r->data;
  for (i = 0; i < n; i++)
    d[i] = (float)moss_half_to_f64(MOSS_DT_F16,
                                   moss_half_from_f64(MOSS_DT_F16, moss_value_get_f64(v, i)));
  return r;
}

/* |n|'s inputs read rounded to float16 and its result rounded so. */
static moss_status half_layer(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  char name[512];
  moss_value *y = n->outputs[0], *t, *h;
  int k;
  for (k = 0; k < n->ninputs; k++) {
    moss_value *v = n->inputs[k], *f;
    if (!v) continue;
    if (v->data) {
      if (!(n->inputs[k] = rounded_constant(ctx, g, v)))
        return moss_fail(ctx, MOSS_E_NOMEM, n, "--float16");
      continue;
    }
    snprintf(name, sizeof name, "%s.to_f16.%d", n->name, k);
    /* named apart from the rounding of the layer that made |v| (v.f16) */
    if (!(h = like(ctx, g, v, ".in_f16", MOSS_DT_F16)) || !cast(ctx, g, n, v, h, name) ||
        !(f = like(ctx, g, v, ".in_f16.f32", MOSS_DT_F32)))
      return moss_fail(ctx, MOSS_E_NOMEM, n, "--float16");
    snprintf(name, sizeof name, "%s.from_f16.%d", n->name, k);
    if (!cast(ctx, g, n, h, f, name)) return moss_fail(ctx, MOSS_E_NOMEM, n, "--float16");
    n->inputs[k] = f;
  }
  if (!(t = like(ctx, g, y, ".f32", MOSS_DT_F32)) || !(h = like(ctx, g, y, ".f16", MOSS_DT_F16)))
    return moss_fail(ctx, MOSS_E_NOMEM, n, "--float16");
  t->producer = n;
  n->outputs[0] = t;
  snprintf(name, sizeof name, "%s.to_f16", n->name);
  if (!cast(ctx, g, n, t, h, name)) return moss_fail(ctx, MOSS_E_NOMEM, n, "--float16");
  snprintf(name, sizeof name, "%s.from_f16", n->name);
  if (!cast(ctx, g, n, h, y, name)) return moss_fail(ctx, MOSS_E_NOMEM, n, "--float16");
  n->half_layer = 1;
  return MOSS_OK;
}

moss_status moss_pass_half_layers(moss_ctx *ctx, moss_graph *g, const char *names) {
  const char *p = names;
  int i, k, count = g->nnodes;
  while (p && *p) { /* every name one float32 Conv, Gemm or MatMul */
    size_t len = strcspn(p, ",");
    moss_node *n = moss_graph_find_node(g, p, len);
    if (!n)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "--float16: the model has no node named "
                       "'%.*s' (after fusion; see --dump-after=fuse for the names)", (int)len, p);
    if (n->op != MOSS_OP_Conv && n->op != MOSS_OP_Gemm && n->op != MOSS_OP_MatMul)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "--float16: '%s' is a %s; only Conv, Gemm "
                       "and MatMul layers compute in float16", n->name, moss_op_infos[n->op].name);
    for (k = 0; k < n->ninputs; k++)
      if (n->inputs[k] && n->inputs[k]->dtype != MOSS_DT_F32) break;
    if (k < n->ninputs || n->noutputs != 1 || !n->outputs[0] || n->outputs[0]->dtype != MOSS_DT_F32)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "--float16: '%s' is not a float32 layer "
                       "(only float32 layers are rounded to float16)", n->name);
    p += len;
    if (*p) p++;
  }
  for (i = 0; i < count; i++) {
    moss_node *n = g->nodes[i];
    if (!n->dead && !n->half_layer && moss_name_listed(names, n->name))
      MOSS_TRY(half_layer(ctx, g, n));
  }
  return moss_graph_sort(ctx, g);
}
