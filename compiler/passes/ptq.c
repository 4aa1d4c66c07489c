/* ptq.c - the rewrites of post-training quantization (ptq.h), after 'fuse'
 * and before 'qdq': the calibration build's graph (every activation an
 * output), and, given the ranges the driver's "calibrate" stage measured,
 * standard ONNX QuantizeLinear/DequantizeLinear nodes around Conv/Gemm/
 * MatMul layers (per-channel symmetric int8 weights, int32 biases,
 * per-tensor uint8 activations) and the data-movement ops between them.
 * The qdq pass folds the result into integer-only ops.
 * docs/quantization.md. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ptq.h"

moss_status moss_ptq_observe(moss_ctx *ctx, moss_graph *g) {
  int i, j, n = 0;
  moss_value **outs;
  for (i = 0; i < g->nnodes; i++)
    for (j = 0; j < g->nodes[i]->noutputs; j++) n++;
  outs = moss_graph_alloc(g, sizeof *outs * (size_t)(g->noutputs + n + 1));
  if (!outs) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "calibration outputs");
  if (g->noutputs) memcpy(outs, g->outputs, sizeof *outs * (size_t)g->noutputs);
  g->outputs = outs;
  for (i = 0; i < g->nnodes; i++) {
    const moss_node *nd = g->nodes[i];
    if (nd->dead) continue;
    for (j = 0; j < nd->noutputs; j++) {
      moss_value *v = nd->outputs[j];
      if (!v || v->data || v->dtype != MOSS_DT_F32 || v->output_index >= 0) continue;
      v->output_index = g->noutputs;
      g->outputs[g->noutputs++] = v;
    }
  }
  return MOSS_OK;
}

void moss_ptq_act_params(float lo, float hi, float *out_scale, uint8_t *out_zp) {
  float s, z;
  if (!(lo < 0.0f)) lo = 0.0f; /* NaN too */
  if (!(hi > 0.0f)) hi = 0.0f;
  s = (hi - lo) / 255.0f;
  if (!(s >= 1e-8f)) s = 1e-8f;
  z = nearbyintf(-lo / s);
  *out_scale = s;
  *out_zp = (uint8_t)(z < 0.0f ? 0 : z > 255.0f ? 255 : (int)z);
}

int moss_name_listed(const char *list, const char *name) {
  size_t n = strlen(name);
  while (list && *list) {
    size_t k = strcspn(list, ",");
    if (k == n && !strncmp(list, name, n)) return 1;
    list += k;
    if (*list) list++;
  }
  return 0;
}

moss_status moss_ptq_check_keep_float(moss_ctx *ctx, const moss_graph *g, const char *keep_float) {
  const char *p = keep_float;
  while (p && *p) {
    size_t k = strcspn(p, ",");
    if (!moss_graph_find_node(g, p, k) && k)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                       "--keep-float: the model has no node named '%.*s' (after fusion; see "
                       "--dump-after=fuse for the names)", (int)k, p);
    p += k;
    if (*p) p++;
  }
  return MOSS_OK;
}

/* The rewrite's state. */
typedef struct qstate {
  moss_ctx *ctx;
  moss_graph *g;
  const moss_ptq_range *ranges;
  int nranges;
} qstate;

static const moss_ptq_range *range_of(const qstate *q, const moss_value *v) {
  if (v->id < 0 || v->id >= q->nranges || !q->ranges[v->id].seen) return NULL;
  return &q->ranges[v->id];
}

/* |v| if it is the output of a DequantizeLinear fed by a QuantizeLinear
 * (a quantized activation), else NULL. */
static const moss_node *quantized(const moss_value *v) {
  const moss_node *d = v ? v->producer : NULL;
  if (!d || d->op != MOSS_OP_DequantizeLinear || !d->inputs[0]->producer ||
      d->inputs[0]->producer->op != MOSS_OP_QuantizeLinear)
    return NULL;
  return d;
}

static moss_status set_axis(qstate *q, moss_node *n, int64_t axis) {
  n->attrs = moss_graph_alloc(q->g, sizeof *n->attrs);
  if (!n->attrs) return moss_fail(q->ctx, MOSS_E_NOMEM, n, "attribute");
  n->nattrs = 1;
  n->attrs[0].name = "axis";
  n->attrs[0].type = MOSS_ATTR_INT;
  n->attrs[0].i = axis;
  return MOSS_OK;
}

static moss_value *like(qstate *q, const moss_value *v, const char *suffix, moss_dtype dt) {
  char name[512];
  moss_value *r;
  snprintf(name, sizeof name, "%s%s", v->name, suffix);
  r = moss_graph_add_value(q->ctx, q->g, name);
  if (!r) return NULL;
  r->dtype = dt;
  r->rank = v->rank;
  memcpy(r->dims, v->dims, sizeof r->dims);
  return r;
}

/* A QuantizeLinear -> DequantizeLinear pair on |v| (scale |s|, zero point
 * |zp|) that every reader of |v| now reads through. A graph output keeps
 * its name: the Dequantize output takes it over. */
static moss_status pair(qstate *q, moss_value *v, float s, uint8_t zp) {
  char name[512];
  moss_value *sc, *z, *vq, *vd;
  moss_node *qn, *dn;
  snprintf(name, sizeof name, "%s.q_scale", v->name);
  sc = moss_graph_add_constant(q->ctx, q->g, name, MOSS_DT_F32, 0, NULL, &s);
  snprintf(name, sizeof name, "%s.q_zero_point", v->name);
  z = sc ? moss_graph_add_constant(q->ctx, q->g, name, MOSS_DT_U8, 0, NULL, &zp) : NULL;
  vq = z ? like(q, v, ".q", MOSS_DT_U8) : NULL;
  vd = vq ? like(q, v, ".dq", MOSS_DT_F32) : NULL;
  snprintf(name, sizeof name, "%s.Quantize", v->name);
  qn = vd ? moss_graph_add_node(q->ctx, q->g, "QuantizeLinear", name, 3, 1) : NULL;
  snprintf(name, sizeof name, "%s.Dequantize", v->name);
  dn = qn ? moss_graph_add_node(q->ctx, q->g, "DequantizeLinear", name, 3, 1) : NULL;
  if (!dn) return moss_fail(q->ctx, MOSS_E_NOMEM, NULL, "quantization of '%s'", v->name);
  moss_graph_replace_uses(q->g, v, vd);
  qn->inputs[0] = v;
  qn->inputs[1] = dn->inputs[1] = sc;
  qn->inputs[2] = dn->inputs[2] = z;
  qn->outputs[0] = vq;
  vq->producer = qn;
  dn->inputs[0] = vq;
  dn->outputs[0] = vd;
  vd->producer = dn;
  if (v->output_index >= 0) {
    const char *t = v->name;
    if (!moss_graph_rename_value(q->g, v, vd->name) || !moss_graph_rename_value(q->g, vd, t))
      return moss_fail(q->ctx, MOSS_E_NOMEM, NULL, "quantization");
    vd->output_index = v->output_index;
    v->output_index = -1;
  }
  return MOSS_OK;
}

/* The scale and zero point of a quantized activation (from its pair). */
static void params_of(const moss_node *dq, float *out_s, uint8_t *out_zp) {
  *out_s = *(const float *)dq->inputs[1]->data;
  *out_zp = *(const uint8_t *)dq->inputs[2]->data;
}

/* Quantizes activation |v| from its observed range, unless it already is;
 * its scale goes to |out_s|. Returns 0 (nothing changed) when |v| has no
 * range. */
static moss_status quantize_act(qstate *q, moss_value *v, float *out_s, int *out_ok) {
  const moss_node *dq = quantized(v);
  const moss_ptq_range *r;
  uint8_t zp;
  *out_ok = 1;
  if (dq) {
    params_of(dq, out_s, &zp);
    return MOSS_OK;
  }
  r = range_of(q, v);
  if (!r) {
    *out_ok = 0;
    return MOSS_OK;
  }
  moss_ptq_act_params(r->lo, r->hi, out_s, &zp);
  return pair(q, v, *out_s, zp);
}

/* Per-channel symmetric int8 weights: input |wi| of |n| along |axis|
 * becomes DequantizeLinear(int8 constant); the channel scales go to
 * |scales| (graph arena). */
static moss_status quantize_weight(qstate *q, moss_node *n, int wi, int axis, float **out_scales) {
  const moss_value *w = n->inputs[wi];
  const float *src = w->data;
  int64_t nc = w->dims[axis], ne = moss_value_numel(w), inner = 1, c, i;
  int k;
  float *sc = moss_graph_alloc(q->g, sizeof(float) * (size_t)nc);
  int8_t *qw = moss_graph_alloc(q->g, (size_t)ne + 1), *zp = moss_graph_alloc(q->g, (size_t)nc);
  char name[512];
  moss_value *vq, *vs, *vz, *vd;
  moss_node *dn;
  *out_scales = sc;
  if (!sc || !qw || !zp) return moss_fail(q->ctx, MOSS_E_NOMEM, n, "weights");
  for (k = axis + 1; k < w->rank; k++) inner *= w->dims[k];
  for (c = 0; c < nc; c++) sc[c] = 0.0f;
  for (i = 0; i < ne; i++) {
    float a = fabsf(src[i]);
    c = (i / inner) % nc;
    if (a > sc[c]) sc[c] = a;
  }
  for (c = 0; c < nc; c++) sc[c] = sc[c] > 0.0f ? sc[c] / 127.0f : 1.0f;
  for (i = 0; i < ne; i++) {
    float r = nearbyintf(src[i] / sc[(i / inner) % nc]);
    qw[i] = (int8_t)(r < -127.0f ? -127 : r > 127.0f ? 127 : (int)r);
  }
  snprintf(name, sizeof name, "%s.int8", w->name);
  vq = moss_graph_add_constant(q->ctx, q->g, name, MOSS_DT_I8, w->rank, w->dims, qw);
  snprintf(name, sizeof name, "%s.scale", w->name);
  vs = vq ? moss_graph_add_constant(q->ctx, q->g, name, MOSS_DT_F32, 1, &nc, sc) : NULL;
  snprintf(name, sizeof name, "%s.zero_point", w->name);
  vz = vs ? moss_graph_add_constant(q->ctx, q->g, name, MOSS_DT_I8, 1, &nc, zp) : NULL;
  vd = vz ? like(q, w, ".dq", MOSS_DT_F32) : NULL;
  snprintf(name, sizeof name, "%s.Dequantize", w->name);
  dn = vd ? moss_graph_add_node(q->ctx, q->g, "DequantizeLinear", name, 3, 1) : NULL;
  if (!dn) return moss_fail(q->ctx, MOSS_E_NOMEM, n, "weights");
  dn->inputs[0] = vq;
  dn->inputs[1] = vs;
  dn->inputs[2] = vz;
  dn->outputs[0] = vd;
  vd->producer = dn;
  n->inputs[wi] = vd;
  return set_axis(q, dn, axis);
}

/* The bias (input 2) as int32 round(b / (x_scale * w_scale_c)) behind a
 * DequantizeLinear with those scales. */
static moss_status quantize_bias(qstate *q, moss_node *n, float xs, const float *ws) {
  const moss_value *b = n->inputs[2];
  int64_t nc = b->dims[0], c;
  int32_t *qb = moss_graph_alloc(q->g, sizeof(int32_t) * (size_t)nc);
  int32_t *zp = moss_graph_alloc(q->g, sizeof(int32_t) * (size_t)nc);
  float *bs = moss_graph_alloc(q->g, sizeof(float) * (size_t)nc);
  char name[512];
  moss_value *vq, *vs, *vz, *vd;
  moss_node *dn;
  if (!qb || !zp || !bs) return moss_fail(q->ctx, MOSS_E_NOMEM, n, "bias");
  for (c = 0; c < nc; c++) {
    double r;
    bs[c] = xs * ws[c];
    r = nearbyint((double)((const float *)b->data)[c] / (double)bs[c]);
    qb[c] = r < -2147483647.0 ? -2147483647 : r > 2147483647.0 ? 2147483647 : (int32_t)r;
  }
  snprintf(name, sizeof name, "%s.int32", b->name);
  vq = moss_graph_add_constant(q->ctx, q->g, name, MOSS_DT_I32, 1, &nc, qb);
  snprintf(name, sizeof name, "%s.scale", b->name);
  vs = vq ? moss_graph_add_constant(q->ctx, q->g, name, MOSS_DT_F32, 1, &nc, bs) : NULL;
  snprintf(name, sizeof name, "%s.zero_point", b->name);
  vz = vs ? moss_graph_add_constant(q->ctx, q->g, name, MOSS_DT_I32, 1, &nc, zp) : NULL;
  vd = vz ? like(q, b, ".dq", MOSS_DT_F32) : NULL;
  snprintf(name, sizeof name, "%s.Dequantize", b->name);
  dn = vd ? moss_graph_add_node(q->ctx, q->g, "DequantizeLinear", name, 3, 1) : NULL;
  if (!dn) return moss_fail(q->ctx, MOSS_E_NOMEM, n, "bias");
  dn->inputs[0] = vq;
  dn->inputs[1] = vs;
  dn->inputs[2] = vz;
  dn->outputs[0] = vd;
  vd->producer = dn;
  n->inputs[2] = vd;
  return set_axis(q, dn, 0);
}

static int is_f32_const(const moss_value *v) {
  return v && v->data && v->dtype == MOSS_DT_F32 && moss_value_shape_known(v);
}

/* The weight axis of a layer moss quantizes, or -1 when |n| is not one. */
static int layer_axis(const moss_node *n) {
  const moss_value *x = n->inputs[0], *w = moss_node_input(n, 1), *y = n->outputs[0];
  if (!y || y->dtype != MOSS_DT_F32 || !x || x->data || x->dtype != MOSS_DT_F32 || !is_f32_const(w))
    return -1;
  switch (n->op) {
  case MOSS_OP_Conv:
    return w->rank >= 3 && x->rank == w->rank ? 0 : -1;
  case MOSS_OP_Gemm:
    if (w->rank != 2 || moss_attr_int(n, "transA", 0) || moss_attr_float(n, "alpha", 1.0f) != 1.0f ||
        moss_attr_float(n, "beta", 1.0f) != 1.0f)
      return -1;
    return moss_attr_int(n, "transB", 0) ? 0 : 1;
  case MOSS_OP_MatMul:
    return w->rank == 2 && x->rank >= 2 ? 1 : -1;
  default:
    return -1;
  }
}

static moss_status quantize_layer(qstate *q, moss_node *n, int axis, int *out_done) {
  moss_value *x = n->inputs[0], *y = n->outputs[0], *b = moss_node_input(n, 2);
  const moss_value *w = n->inputs[1];
  float xs = 1.0f, ys, *ws;
  int ok;
  uint8_t yz;
  const moss_ptq_range *ry = range_of(q, y);
  *out_done = 0;
  if (!ry || (!quantized(x) && !range_of(q, x))) return MOSS_OK; /* never observed */
  if (b && (!is_f32_const(b) || b->rank != 1 || b->dims[0] != w->dims[axis]))
    b = NULL; /* a bias moss cannot give per-channel int32 stays float */
  MOSS_TRY(quantize_act(q, x, &xs, &ok));
  MOSS_TRY(quantize_weight(q, n, 1, axis, &ws));
  if (b) MOSS_TRY(quantize_bias(q, n, xs, ws));
  moss_ptq_act_params(ry->lo, ry->hi, &ys, &yz);
  MOSS_TRY(pair(q, y, ys, yz));
  *out_done = 1;
  return MOSS_OK;
}

/* Ops that move or pick quantized values keep the input's parameters
 * (they fold to plain int8 ops); pools, Add and Concat get their own. */
static moss_status quantize_between(qstate *q, moss_node *n) {
  moss_value *y = n->outputs[0];
  const moss_node *dq;
  const moss_ptq_range *r;
  float s;
  uint8_t zp;
  int i;
  if (!y || y->dtype != MOSS_DT_F32 || quantized(y)) return MOSS_OK;
  for (i = 1; i < n->noutputs; i++)
    if (n->outputs[i]) return MOSS_OK; /* MaxPool's Indices */
  switch (n->op) {
  case MOSS_OP_MaxPool: case MOSS_OP_Flatten: case MOSS_OP_Reshape: case MOSS_OP_Transpose:
  case MOSS_OP_Squeeze: case MOSS_OP_Unsqueeze:
    dq = quantized(n->inputs[0]);
    if (!dq) return MOSS_OK;
    params_of(dq, &s, &zp);
    return pair(q, y, s, zp);
  case MOSS_OP_AveragePool: case MOSS_OP_GlobalAveragePool:
    if (!quantized(n->inputs[0])) return MOSS_OK;
    break;
  case MOSS_OP_Add: case MOSS_OP_Concat:
    for (i = 0; i < n->ninputs; i++)
      if (!quantized(n->inputs[i])) return MOSS_OK;
    break;
  default:
    return MOSS_OK;
  }
  r = range_of(q, y);
  if (!r) return MOSS_OK;
  moss_ptq_act_params(r->lo, r->hi, &s, &zp);
  return pair(q, y, s, zp);
}

moss_status moss_ptq_insert(moss_ctx *ctx, moss_graph *g, const moss_ptq_range *ranges, int nranges,
                            const char *keep_float, int *out_nquant, int *out_nkept) {
  qstate q;
  int i, count = g->nnodes;
  *out_nquant = *out_nkept = 0;
  q.ctx = ctx;
  q.g = g;
  q.ranges = ranges;
  q.nranges = nranges;
  for (i = 0; i < count; i++) { /* topological: producers first; new nodes go to the end */
    moss_node *n = g->nodes[i];
    int axis, done;
    if (n->dead) continue;
    axis = layer_axis(n);
    if (moss_name_listed(keep_float, n->name) || n->half_layer) { /* --float16's too */
      *out_nkept += axis >= 0;
      continue;
    }
    if (axis >= 0) {
      MOSS_TRY(quantize_layer(&q, n, axis, &done));
      *out_nquant += done;
    } else {
      MOSS_TRY(quantize_between(&q, n));
    }
  }
  return moss_graph_sort(ctx, g);
}
