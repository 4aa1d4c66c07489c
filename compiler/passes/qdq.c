/* qdq.c - folding of quantized regions. Exporters write an int8 model as
 * float operators between DequantizeLinear and QuantizeLinear nodes (the
 * "QDQ" form); run as written, every layer would compute in float. This
 * pass finds each QuantizeLinear whose float input comes from one operator
 * (optionally with a constant bias Add and a Relu/Clip after it) whose
 * float inputs are all dequantized 8-bit tensors, and replaces the pattern
 * by one integer-only op:
 *
 *   Conv                          -> QLinearConv (per-channel weights, int32 bias)
 *   Gemm, MatMul (constant B)     -> MossQGemm
 *   MatMul (two activations)      -> QLinearMatMul
 *   Add, Mul                      -> MossQAdd, MossQMul
 *   AveragePool, GlobalAveragePool-> MossQAvgPool
 *   MaxPool, Concat, Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Identity,
 *   Resize (mode nearest)         -> the same op on the 8-bit data (plus a
 *                                    MossQLookup when the scales differ)
 *   Relu, Clip, Sigmoid, HardSwish, Tanh, ... (one input, elementwise)
 *                                 -> MossQLookup: a 256-entry table computed
 *                                    at compile time from the float op
 *
 * A fused Relu/Clip becomes a clamp of the quantized output (qmin/qmax
 * attributes): quantization is monotone, so Q(relu(v)) = max(Q(v), Q(0)).
 * Requantization is docs/numerics-int8.md's fixed-point scheme. Casts that
 * do not change the type (torch writes them) are removed first. A node that
 * stays float inside a quantized region gets the reason in n->qnote, and
 * --explain lists it; nothing falls back silently. docs/qdq.md. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../ops/ops.h"
#include "passes.h"

static int q8(moss_dtype dt) { return dt == MOSS_DT_I8 || dt == MOSS_DT_U8; }
static int32_t lo_of(moss_dtype dt) { return dt == MOSS_DT_I8 ? -128 : 0; }
static int32_t hi_of(moss_dtype dt) { return dt == MOSS_DT_I8 ? 127 : 255; }

/* A dequantized 8-bit activation: the integer tensor and its parameters. */
typedef struct qact {
  moss_value *q;       /* the 8-bit tensor (may be a constant) */
  moss_value *s, *z;   /* scale and zero point values (z may be NULL: 0) */
  float scale;
  int32_t zp;
} qact;

/* A dequantized constant weight. */
typedef struct qweight {
  moss_value *q, *s, *z; /* z may be NULL */
  int axis;              /* -1: per tensor */
} qweight;

typedef struct qdq_state {
  moss_ctx *ctx;
  moss_graph *g;
  int folded;          /* integer nodes made */
  int nomem;           /* an allocation failed: the pass fails, not the fold */
} qdq_state;

/* |p|, just allocated; NULL records out-of-memory (a fold that returns
 * NULL otherwise declined, and says why). */
static void *got(qdq_state *st, void *p) {
  if (!p) st->nomem = 1;
  return p;
}

/* n->qnote = "<prefix>: <formatted>" in the graph arena. */
static void note(qdq_state *st, moss_node *n, const char *prefix, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static void note(qdq_state *st, moss_node *n, const char *prefix, const char *fmt, ...) {
  char buf[512];
  int len;
  va_list ap;
  len = snprintf(buf, sizeof buf, "%s: ", prefix);
  va_start(ap, fmt);
  if (len > 0 && (size_t)len < sizeof buf) vsnprintf(buf + len, sizeof buf - (size_t)len, fmt, ap);
  va_end(ap);
  n->qnote = got(st, moss_arena_strdup(st->g->arena, buf));
}

static int live_op(const moss_value *v, moss_op op) {
  return v && v->producer && !v->producer->dead && v->producer->op == op;
}

/* The float value |v| has one reader and is not a graph output. */
static int sole(const moss_value *v) { return v && v->nuses == 1 && v->output_index < 0; }

/* Per-tensor constant scale and zero point of a QuantizeLinear or
 * DequantizeLinear node. 0 with |why| set otherwise. */
static int params(const moss_node *d, float *out_s, int32_t *out_z, const char **why) {
  const moss_value *s = moss_node_input(d, 1), *z = moss_node_input(d, 2);
  if (!s || !s->data || s->dtype != MOSS_DT_F32) {
    *why = "its scale is not a float32 constant";
    return 0;
  }
  if (moss_value_numel(s) != 1) {
    *why = "it is quantized per axis (an activation needs one scale)";
    return 0;
  }
  if (z && !z->data) {
    *why = "its zero point is computed at run time";
    return 0;
  }
  *out_s = ((const float *)s->data)[0];
  *out_z = z ? (int32_t)moss_load_i64(z->dtype, z->data, 0) : 0;
  if (!(*out_s > 0) || isinf(*out_s)) {
    *why = "its scale is not a positive finite number";
    return 0;
  }
  return 1;
}

/* |v| is DequantizeLinear(8-bit tensor) with per-tensor constant
 * parameters. */
static int act_of(moss_value *v, qact *out, char *why, size_t cap) {
  moss_node *d;
  const char *w = NULL;
  memset(out, 0, sizeof *out);
  if (!v) {
    snprintf(why, cap, "an input is missing");
    return 0;
  }
  if (!live_op(v, MOSS_OP_DequantizeLinear)) {
    snprintf(why, cap, "input '%s' is float, not the output of a DequantizeLinear", v->name);
    return 0;
  }
  d = v->producer;
  if (!q8(d->inputs[0]->dtype)) {
    snprintf(why, cap, "input '%s' dequantizes a %s tensor (8-bit only)", v->name,
             moss_dtype_name(d->inputs[0]->dtype));
    return 0;
  }
  if (!params(d, &out->scale, &out->zp, &w)) {
    snprintf(why, cap, "the DequantizeLinear of input '%s': %s", v->name, w);
    return 0;
  }
  out->q = d->inputs[0];
  out->s = d->inputs[1];
  out->z = moss_node_input(d, 2);
  return 1;
}

/* |v| is DequantizeLinear(constant 8-bit weight), per tensor or per axis. */
static int weight_of(moss_ctx *ctx, moss_value *v, qweight *out, char *why, size_t cap) {
  moss_node *d;
  moss_value *z;
  memset(out, 0, sizeof *out);
  if (!live_op(v, MOSS_OP_DequantizeLinear)) {
    snprintf(why, cap, "weight '%s' is float, not a dequantized 8-bit constant", v->name);
    return 0;
  }
  d = v->producer;
  z = moss_node_input(d, 2);
  if (!d->inputs[0]->data || !q8(d->inputs[0]->dtype)) {
    snprintf(why, cap, "weight '%s' is not a constant 8-bit tensor", v->name);
    return 0;
  }
  if (!d->inputs[1]->data || d->inputs[1]->dtype != MOSS_DT_F32 || (z && !z->data)) {
    snprintf(why, cap, "weight '%s' has run-time quantization parameters", v->name);
    return 0;
  }
  if (moss_quant_axis(ctx, d, d->inputs[0], d->inputs[1], z, &out->axis) != MOSS_OK) {
    snprintf(why, cap, "weight '%s' has quantization parameters moss cannot use", v->name);
    return 0;
  }
  out->q = d->inputs[0];
  out->s = d->inputs[1];
  out->z = z;
  return 1;
}

/* Float values of a bias: a float32 constant or DequantizeLinear of a
 * constant, |n| values (a single value broadcasts). */
static int bias_values(const moss_value *v, int64_t n, double *out) {
  int64_t ne = moss_value_numel(v), i;
  if (ne != n && ne != 1) return 0;
  if (v->data && v->dtype == MOSS_DT_F32) {
    for (i = 0; i < n; i++) out[i] = ((const float *)v->data)[ne == 1 ? 0 : i];
    return 1;
  }
  if (live_op(v, MOSS_OP_DequantizeLinear)) {
    const moss_node *d = v->producer;
    const moss_value *x = d->inputs[0], *s = d->inputs[1], *z = moss_node_input(d, 2);
    int64_t ns = s ? moss_value_numel(s) : 0, nz = z ? moss_value_numel(z) : 0;
    if (!x->data || !s->data || s->dtype != MOSS_DT_F32 || (z && !z->data)) return 0;
    if ((ns != 1 && ns != ne) || (z && nz != 1 && nz != ne)) return 0;
    for (i = 0; i < n; i++) {
      int64_t j = ne == 1 ? 0 : i;
      float sc = ((const float *)s->data)[ns == 1 ? 0 : j];
      int64_t zp = z ? moss_load_i64(z->dtype, z->data, nz == 1 ? 0 : j) : 0;
      out[i] = ((float)moss_load_i64(x->dtype, x->data, j) - (float)zp) * sc;
    }
    return 1;
  }
  return 0;
}


/* A scalar constant of |dt| holding |v|. */
static moss_value *scalar(qdq_state *st, const char *name, moss_dtype dt, int64_t v) {
  unsigned char buf[16];
  memset(buf, 0, sizeof buf);
  moss_store_i64(dt, buf, 0, v);
  return got(st, moss_graph_add_constant(st->ctx, st->g, name, dt, 0, NULL, buf));
}

/* The zero point value of |a|, made when the DequantizeLinear had none. */
static moss_value *zp_value(qdq_state *st, moss_value *z, moss_dtype dt) {
  return z ? z : scalar(st, "zero_point", dt, 0);
}

static int add_int_attr(qdq_state *st, moss_node *n, const char *name, int64_t v) {
  moss_attr *a = got(st, moss_arena_alloc(st->g->arena, sizeof *a * (size_t)(n->nattrs + 1), 16));
  if (!a) return 0;
  if (n->nattrs) memcpy(a, n->attrs, sizeof *a * (size_t)n->nattrs);
  a[n->nattrs].name = got(st, moss_arena_strdup(st->g->arena, name));
  a[n->nattrs].type = MOSS_ATTR_INT;
  a[n->nattrs].i = v;
  n->attrs = a;
  n->nattrs++;
  return a[n->nattrs - 1].name != NULL;
}

/* Relu or Clip (constant bounds) as an activation. */
static int act_of_node(const moss_node *n, moss_act *out) {
  const moss_value *lo, *hi;
  memset(out, 0, sizeof *out);
  if (n->op == MOSS_OP_Relu) {
    out->kind = MOSS_ACT_RELU;
    return 1;
  }
  if (n->op != MOSS_OP_Clip) return 0;
  lo = moss_node_input(n, 1);
  hi = moss_node_input(n, 2);
  if ((lo && (!lo->data || lo->dtype != MOSS_DT_F32)) || (hi && (!hi->data || hi->dtype != MOSS_DT_F32)))
    return 0;
  out->kind = MOSS_ACT_CLIP;
  out->alpha = lo ? ((const float *)lo->data)[0] : moss_attr_float(n, "min", -INFINITY);
  out->beta = hi ? ((const float *)hi->data)[0] : moss_attr_float(n, "max", INFINITY);
  return 1;
}

/* The clamp of the quantized output equivalent to |act|. */
static int act_bounds(const moss_act *act, float sy, int32_t zy, moss_dtype dt, int32_t *qmin,
                      int32_t *qmax) {
  int32_t lo = lo_of(dt), hi = hi_of(dt);
  *qmin = lo;
  *qmax = hi;
  switch (act->kind) {
  case MOSS_ACT_NONE: return 1;
  case MOSS_ACT_RELU: *qmin = moss_quantize_one(0.0f, sy, zy, lo, hi); return 1;
  case MOSS_ACT_CLIP:
    *qmin = moss_quantize_one(act->alpha, sy, zy, lo, hi);
    *qmax = moss_quantize_one(act->beta, sy, zy, lo, hi);
    return 1;
  default: return 0;
  }
}

static const char *act_name(moss_act_kind k) {
  switch (k) {
  case MOSS_ACT_LEAKY_RELU: return "LeakyRelu";
  case MOSS_ACT_SIGMOID: return "Sigmoid";
  case MOSS_ACT_TANH: return "Tanh";
  default: return "?";
  }
}

/* A float constant, or DequantizeLinear of a constant. */
static int const_like(const moss_value *v) {
  if (!v) return 0;
  if (v->data) return v->dtype == MOSS_DT_F32;
  return live_op(v, MOSS_OP_DequantizeLinear) && v->producer->inputs[0]->data;
}

/* The bias |b| varies only along axis |axis| of an output of rank |rank|. */
static int bias_axis_ok(const moss_value *b, int rank, int axis) {
  int k;
  if (b->rank > rank) return 0;
  for (k = 0; k < b->rank; k++)
    if (b->dims[k] != 1 && rank - b->rank + k != axis) return 0;
  return 1;
}

/* int32 bias round(b / (x_scale * w_scale[o])) for |n| outputs. */
static moss_value *int_bias(qdq_state *st, const char *name, const double *b, int64_t n,
                            double x_scale, const float *ws, int64_t nws, double gain) {
  int32_t *q = got(st, moss_graph_alloc(st->g, sizeof *q * (size_t)n));
  int64_t o, d[1];
  if (!q) return NULL;
  for (o = 0; o < n; o++) {
    double sc = x_scale * ws[nws == 1 ? 0 : o] * gain, v = sc > 0 ? nearbyint(b[o] / sc) : 0;
    q[o] = v > 2147483647.0 ? INT32_MAX : v < -2147483648.0 ? INT32_MIN : (int32_t)v;
  }
  d[0] = n;
  return got(st, moss_graph_add_constant(st->ctx, st->g, name, MOSS_DT_I32, 1, d, q));
}

/* The 256 8-bit values of |x|'s type (i - 128 for int8) dequantized. */
static void lut_inputs(const qact *x, float in[256]) {
  int i, off = x->q->dtype == MOSS_DT_I8 ? -128 : 0;
  for (i = 0; i < 256; i++) in[i] = ((float)(i + off) - (float)x->zp) * x->scale;
}

/* |out|'s 256 values quantized to |sy|/|zy|/|ydt| into |tab|. */
static void lut_store(const float out[256], float sy, int32_t zy, moss_dtype ydt, unsigned char *tab) {
  int i;
  for (i = 0; i < 256; i++) {
    int32_t v = moss_quantize_one(out[i], sy, zy, lo_of(ydt), hi_of(ydt));
    if (ydt == MOSS_DT_I8) ((int8_t *)tab)[i] = (int8_t)v;
    else tab[i] = (unsigned char)v;
  }
}

/* Table of MossQLookup: entry i (the 8-bit value i, or i - 128 for int8)
 * dequantized with |x|, passed through |f| when given (evaluated at
 * compile time like constant folding) and quantized to |sy|/|zy|/|ydt|. */
static moss_value *lut(qdq_state *st, const qact *x, moss_node *f, float sy, int32_t zy,
                       moss_dtype ydt, char *why, size_t cap) {
  float in[256], out[256];
  unsigned char tab[256];
  int64_t d[1] = {256};
  lut_inputs(x, in);
  memcpy(out, in, sizeof out);
  if (f) {
    moss_value vin, vout, *ins[8], *outs[1];
    moss_node tmp;
    int j;
    if (f->ninputs > 8 || f->noutputs < 1) return NULL;
    vin = *f->inputs[0];
    vout = *f->outputs[0];
    vin.dtype = vout.dtype = MOSS_DT_F32;
    vin.rank = vout.rank = 1;
    vin.dims[0] = vout.dims[0] = 256;
    vin.dim_param[0] = vout.dim_param[0] = NULL;
    vin.data = in;
    vout.data = out;
    vin.producer = NULL;
    ins[0] = &vin;
    for (j = 1; j < f->ninputs; j++) {
      ins[j] = f->inputs[j];
      if (ins[j] && !ins[j]->data) {
        snprintf(why, cap, "input '%s' is not a constant", ins[j]->name);
        return NULL;
      }
    }
    outs[0] = &vout;
    tmp = *f;
    tmp.inputs = ins;
    tmp.outputs = outs;
    tmp.noutputs = 1;
    if ((j = moss_eval_table[f->op](st->ctx, st->g, &tmp)) != MOSS_OK) {
      if (j == MOSS_E_NOMEM) st->nomem = 1;
      snprintf(why, cap, "moss cannot evaluate %s at compile time to build its table", f->op_type);
      return NULL;
    }
  }
  lut_store(out, sy, zy, ydt, tab);
  return got(st, moss_graph_add_constant(st->ctx, st->g, "table", ydt, 1, d, tab));
}

/* MossQLookup |x| -> |y| through |table|. */
static moss_node *lookup_node(qdq_state *st, const char *name, moss_value *xq, moss_value *table,
                              moss_value *y) {
  moss_node *n = got(st, moss_graph_add_node(st->ctx, st->g, "MossQLookup", name, 2, 1));
  if (!n) return NULL;
  n->inputs[0] = xq;
  n->inputs[1] = table;
  n->outputs[0] = y;
  y->producer = n;
  note(st, n, "integer", "a 256-entry table from one 8-bit quantization to another");
  st->folded++;
  return n;
}

/* A new 8-bit value shaped like |like| (the float value it replaces). */
static moss_value *int_value(qdq_state *st, const moss_value *like, moss_dtype dt) {
  char name[256];
  moss_value *v;
  snprintf(name, sizeof name, "%s_q", like->name);
  v = got(st, moss_graph_add_value(st->ctx, st->g, name));
  if (!v) return NULL;
  v->dtype = dt;
  v->rank = like->rank;
  memcpy(v->dims, like->dims, sizeof v->dims);
  return v;
}

/* |x| requantized to (sy, zy, ydt), through a MossQLookup when the
 * parameters differ. */
static moss_value *requantized(qdq_state *st, const char *name, const qact *x, float sy, int32_t zy,
                               moss_dtype ydt, char *why, size_t cap) {
  moss_value *t, *v;
  if (x->q->dtype == ydt && x->scale == sy && x->zp == zy) return x->q;
  t = lut(st, x, NULL, sy, zy, ydt, why, cap);
  v = t ? int_value(st, x->q, ydt) : NULL;
  if (!v || !lookup_node(st, name, x->q, t, v)) return NULL;
  return v;
}

/* What try_fold found between the dequantized inputs and the Quantize. */
typedef struct pattern {
  moss_node *q;         /* the QuantizeLinear */
  moss_node *core;      /* the operator */
  moss_node *add;       /* a bias Add after a Conv/Gemm/MatMul, or NULL */
  moss_value *bias;     /* its constant operand */
  moss_node *act_node;  /* a Relu/Clip before the Quantize, or NULL */
  moss_act act;         /* that activation, or the core's fused one */
  float sy;
  int32_t zy;
  moss_value *y;        /* the Quantize's output: the integer op's output */
} pattern;

static moss_value *y_zp(qdq_state *st, const pattern *p) {
  return zp_value(st, moss_node_input(p->q, 2), p->y->dtype);
}

/* An 8-bit tensor, its scale and zero point as inputs |i| to |i| + 2 of
 * |n| (a zero point the model left out becomes a constant 0). */
static void put_q(qdq_state *st, moss_node *n, int i, moss_value *q, moss_value *s, moss_value *z) {
  n->inputs[i] = q;
  n->inputs[i + 1] = s;
  n->inputs[i + 2] = zp_value(st, z, q->dtype);
}

/* The QuantizeLinear's scale and zero point as inputs |i|, |i| + 1. */
static void put_y(qdq_state *st, moss_node *n, int i, const pattern *p) {
  n->inputs[i] = p->q->inputs[1];
  n->inputs[i + 1] = y_zp(st, p);
}

/* Qmin/qmax attributes of |n| from the pattern's activation. */
static int set_bounds(qdq_state *st, moss_node *n, const pattern *p, char *why, size_t cap) {
  int32_t qmin, qmax;
  if (!act_bounds(&p->act, p->sy, p->zy, p->y->dtype, &qmin, &qmax)) {
    snprintf(why, cap, "its fused %s has no integer form here (only Relu and Clip do)",
             act_name(p->act.kind));
    return 0;
  }
  return add_int_attr(st, n, "qmin", qmin) && add_int_attr(st, n, "qmax", qmax);
}

/* Conv -> QLinearConv. */
static moss_node *fold_conv(qdq_state *st, const pattern *p, char *why, size_t cap) {
  moss_node *c = p->core, *n;
  moss_value *b = moss_node_input(c, 2), *bq = NULL;
  qact x;
  qweight w;
  int64_t co;
  double *bf;
  if (!act_of(c->inputs[0], &x, why, cap) || !weight_of(st->ctx, c->inputs[1], &w, why, cap))
    return NULL;
  if (w.axis > 0) {
    snprintf(why, cap, "its weight is quantized along axis %d (per output channel is axis 0)", w.axis);
    return NULL;
  }
  if (b && p->bias) {
    snprintf(why, cap, "it has a bias input and a bias Add");
    return NULL;
  }
  if (!b) b = p->bias;
  co = w.q->dims[0];
  if (p->bias && !bias_axis_ok(p->bias, c->outputs[0]->rank, 1)) {
    snprintf(why, cap, "the Add after it is not a per-channel bias");
    return NULL;
  }
  if (b) {
    bf = got(st, moss_graph_alloc(st->g, sizeof *bf * (size_t)co));
    if (!bf) return NULL;
    if (!bias_values(b, co, bf)) {
      snprintf(why, cap, "its bias '%s' is not a constant of %lld values", b->name, (long long)co);
      return NULL;
    }
    bq = int_bias(st, "bias", bf, co, x.scale, (const float *)w.s->data, moss_value_numel(w.s), 1.0);
    if (!bq) return NULL;
  }
  n = got(st, moss_graph_add_node(st->ctx, st->g, "QLinearConv", c->name, b ? 9 : 8, 1));
  if (!n) return NULL;
  put_q(st, n, 0, x.q, x.s, x.z);
  put_q(st, n, 3, w.q, w.s, w.z);
  put_y(st, n, 6, p);
  if (b) n->inputs[8] = bq;
  n->attrs = c->attrs;
  n->nattrs = c->nattrs;
  if (!set_bounds(st, n, p, why, cap)) {
    n->dead = 1;
    return NULL;
  }
  return n;
}

/* Gemm, or MatMul with a constant B -> MossQGemm (weights as [N, K]). */
static moss_node *fold_gemm(qdq_state *st, const pattern *p, char *why, size_t cap) {
  moss_node *c = p->core, *n;
  int gemm = c->op == MOSS_OP_Gemm, tb = gemm ? (int)moss_attr_int(c, "transB", 0) : 0;
  float alpha = gemm ? moss_attr_float(c, "alpha", 1.0f) : 1.0f;
  float beta = gemm ? moss_attr_float(c, "beta", 1.0f) : 1.0f;
  moss_value *b = gemm ? moss_node_input(c, 2) : NULL, *bq = NULL, *wt, *ws;
  int64_t K, N, k, j, ns, d[2];
  size_t esz;
  qact x;
  qweight w;
  unsigned char *t;
  float *sv;
  if (gemm && moss_attr_int(c, "transA", 0)) {
    snprintf(why, cap, "transA = 1");
    return NULL;
  }
  if (!act_of(c->inputs[0], &x, why, cap) || !weight_of(st->ctx, c->inputs[1], &w, why, cap))
    return NULL;
  if (w.q->rank != 2 || x.q->rank < 1 || (gemm && x.q->rank != 2)) {
    snprintf(why, cap, "input ranks %d and %d", x.q->rank, w.q->rank);
    return NULL;
  }
  K = w.q->dims[tb ? 1 : 0];
  N = w.q->dims[tb ? 0 : 1];
  if (w.axis >= 0 && w.axis != (tb ? 0 : 1)) {
    snprintf(why, cap, "its weight is quantized along the reduction axis");
    return NULL;
  }
  if (b && beta == 0.0f) b = NULL;
  if (b && p->bias) {
    snprintf(why, cap, "it has a C input and a bias Add");
    return NULL;
  }
  if (!b) b = p->bias;
  if (b && b == p->bias && !bias_axis_ok(b, c->outputs[0]->rank, c->outputs[0]->rank - 1)) {
    snprintf(why, cap, "the Add after it is not a bias over the last axis");
    return NULL;
  }
  if (b == moss_node_input(c, 2) && b && !bias_axis_ok(b, 2, 1)) {
    snprintf(why, cap, "C varies along the rows (only a bias per column has an integer form)");
    return NULL;
  }
  esz = moss_dtype_size(w.q->dtype);
  t = got(st, moss_graph_alloc(st->g, (size_t)(K * N) * esz));
  ns = moss_value_numel(w.s);
  sv = got(st, moss_graph_alloc(st->g, sizeof *sv * (size_t)ns));
  if (!t || !sv) return NULL;
  for (j = 0; j < N; j++) /* Wt[j, k] */
    for (k = 0; k < K; k++)
      memcpy(t + (size_t)(j * K + k) * esz,
             (const unsigned char *)w.q->data + (size_t)(tb ? j * K + k : k * N + j) * esz, esz);
  for (j = 0; j < ns; j++) sv[j] = ((const float *)w.s->data)[j] * alpha;
  d[0] = N;
  d[1] = K;
  wt = got(st, moss_graph_add_constant(st->ctx, st->g, w.q->name, w.q->dtype, 2, d, t));
  ws = got(st, moss_graph_add_constant(st->ctx, st->g, w.s->name, MOSS_DT_F32, w.s->rank,
                                       w.s->dims, sv));
  if (!wt || !ws) return NULL;
  if (b) {
    double *bf = got(st, moss_graph_alloc(st->g, sizeof *bf * (size_t)N));
    if (!bf) return NULL;
    if (!bias_values(b, N, bf)) {
      snprintf(why, cap, "its bias '%s' is not a constant of %lld values", b->name, (long long)N);
      return NULL;
    }
    for (j = 0; j < N; j++) bf[j] *= (b == p->bias ? 1.0 : beta);
    bq = int_bias(st, "bias", bf, N, x.scale, sv, ns, 1.0);
    if (!bq) return NULL;
  }
  n = got(st, moss_graph_add_node(st->ctx, st->g, "MossQGemm", c->name, b ? 9 : 8, 1));
  if (!n) return NULL;
  put_q(st, n, 0, x.q, x.s, x.z);
  put_q(st, n, 3, wt, ws, w.z);
  put_y(st, n, 6, p);
  if (b) n->inputs[8] = bq;
  if (!set_bounds(st, n, p, why, cap)) {
    n->dead = 1;
    return NULL;
  }
  return n;
}

/* MatMul of two activations -> QLinearMatMul. */
static moss_node *fold_qmatmul(qdq_state *st, const pattern *p, char *why, size_t cap) {
  moss_node *c = p->core, *n;
  qact a, b;
  if (!act_of(c->inputs[0], &a, why, cap) || !act_of(c->inputs[1], &b, why, cap)) return NULL;
  if (p->act.kind || p->bias) {
    snprintf(why, cap, "a MatMul of two activations with a bias or an activation after it");
    return NULL;
  }
  n = got(st, moss_graph_add_node(st->ctx, st->g, "QLinearMatMul", c->name, 8, 1));
  if (!n) return NULL;
  put_q(st, n, 0, a.q, a.s, a.z);
  put_q(st, n, 3, b.q, b.s, b.z);
  put_y(st, n, 6, p);
  return n;
}

/* Add, Mul -> MossQAdd, MossQMul. */
static moss_node *fold_binary(qdq_state *st, const pattern *p, char *why, size_t cap) {
  moss_node *c = p->core, *n;
  qact a, b;
  if (!act_of(c->inputs[0], &a, why, cap) || !act_of(c->inputs[1], &b, why, cap)) return NULL;
  n = got(st, moss_graph_add_node(st->ctx, st->g, c->op == MOSS_OP_Add ? "MossQAdd" : "MossQMul",
                                   c->name, 8, 1));
  if (!n) return NULL;
  put_q(st, n, 0, a.q, a.s, a.z);
  put_q(st, n, 3, b.q, b.s, b.z);
  put_y(st, n, 6, p);
  if (!set_bounds(st, n, p, why, cap)) {
    n->dead = 1;
    return NULL;
  }
  return n;
}

/* AveragePool, GlobalAveragePool -> MossQAvgPool. */
static moss_node *fold_avgpool(qdq_state *st, const pattern *p, char *why, size_t cap) {
  moss_node *c = p->core, *n;
  qact x;
  if (!act_of(c->inputs[0], &x, why, cap)) return NULL;
  if (c->inputs[0]->rank < 3) {
    snprintf(why, cap, "input of rank %d", c->inputs[0]->rank);
    return NULL;
  }
  n = got(st, moss_graph_add_node(st->ctx, st->g, "MossQAvgPool", c->name, 5, 1));
  if (!n) return NULL;
  put_q(st, n, 0, x.q, x.s, x.z);
  put_y(st, n, 3, p);
  n->attrs = c->attrs;
  n->nattrs = c->nattrs;
  if (!add_int_attr(st, n, "global", c->op == MOSS_OP_GlobalAveragePool)) return NULL;
  return n;
}

/* One-input elementwise float op -> MossQLookup. */
static moss_node *fold_table(qdq_state *st, const pattern *p, char *why, size_t cap) {
  moss_node *c = p->core, *n;
  moss_value *t;
  qact x;
  /* A DequantizeLinear core (Q(DQ(x)): a requantization, such as the
   * int8 <-> uint8 conversions of TFLite's QUANTIZE) is itself the
   * dequantized activation. */
  if (!act_of(c->op == MOSS_OP_DequantizeLinear ? c->outputs[0] : c->inputs[0], &x, why, cap))
    return NULL;
  if (!(t = lut(st, &x, c->op == MOSS_OP_DequantizeLinear ? NULL : c, p->sy, p->zy, p->y->dtype,
                why, cap)))
    return NULL;
  n = got(st, moss_graph_add_node(st->ctx, st->g, "MossQLookup", c->name, 2, 1));
  if (!n) return NULL;
  n->inputs[0] = x.q;
  n->inputs[1] = t;
  return n;
}

/* BatchNormalization (inference) -> a MossQLookup with a table per
 * channel: channel c's 256 8-bit values dequantized, scaled and shifted as
 * the BN kernel does (lower_norm.c: a = scale / sqrt(var + eps) in double,
 * then float; shift = B - mean a and x a + shift in float), clamped by the
 * activation and quantized. ONNX Runtime's quantizer leaves BN between a
 * Quantize and a Dequantize when the model's BN was not folded into its
 * Conv first. (As a depthwise 1x1 QLinearConv, integer scale and shift on
 * vectors, int8 MobileNetV2 ran 10 % slower than with these tables: the
 * vector requantization costs more than a scalar table read.) */
static moss_node *fold_bn(qdq_state *st, const pattern *p, char *why, size_t cap) {
  moss_node *c = p->core, *n;
  moss_value *t;
  qact x;
  int64_t C, ch, d[1];
  double *par;
  float in[256], out[256];
  unsigned char *tab;
  double eps = moss_attr_float(c, "epsilon", 1e-5f);
  int i, j;
  if (!act_of(c->inputs[0], &x, why, cap)) return NULL;
  if (moss_attr_int(c, "training_mode", 0) || c->ninputs < 5 || c->inputs[0]->rank < 2 ||
      (c->noutputs > 1 && (c->outputs[1] || (c->noutputs > 2 && c->outputs[2])))) {
    snprintf(why, cap, "a BatchNormalization in training mode or of rank < 2");
    return NULL;
  }
  if (p->act.kind && p->act.kind != MOSS_ACT_RELU && p->act.kind != MOSS_ACT_CLIP) {
    snprintf(why, cap, "its fused %s", act_name(p->act.kind));
    return NULL;
  }
  C = c->inputs[0]->dims[1];
  par = got(st, moss_graph_alloc(st->g, sizeof *par * (size_t)(4 * C)));
  tab = got(st, moss_graph_alloc(st->g, (size_t)(C * 256)));
  if (!par || !tab) return NULL;
  for (j = 0; j < 4; j++) /* scale, B, mean, var: float32 values, exact in double */
    if (!c->inputs[j + 1] || !bias_values(c->inputs[j + 1], C, par + j * C)) {
      snprintf(why, cap, "its input '%s' is not a constant", c->inputs[j + 1] ? c->inputs[j + 1]->name : "?");
      return NULL;
    }
  lut_inputs(&x, in);
  for (ch = 0; ch < C; ch++) {
    float a = (float)(par[ch] / sqrt(par[3 * C + ch] + eps));
    float sh = (float)par[C + ch] - (float)par[2 * C + ch] * a;
    for (i = 0; i < 256; i++) {
      float yv = in[i] * a + sh;
      if (p->act.kind == MOSS_ACT_RELU) yv = yv > 0 ? yv : 0;
      if (p->act.kind == MOSS_ACT_CLIP) yv = yv < p->act.alpha ? p->act.alpha : yv > p->act.beta ? p->act.beta : yv;
      out[i] = yv;
    }
    lut_store(out, p->sy, p->zy, p->y->dtype, tab + ch * 256);
  }
  d[0] = C * 256;
  t = got(st, moss_graph_add_constant(st->ctx, st->g, "table", p->y->dtype, 1, d, tab));
  n = t ? got(st, moss_graph_add_node(st->ctx, st->g, "MossQLookup", c->name, 2, 1)) : NULL;
  if (!n) return NULL;
  n->inputs[0] = x.q;
  n->inputs[1] = t;
  return n;
}

/* MaxPool and data movement: the same op on the 8-bit data, requantized
 * after it by a table when the Quantize's parameters differ. Concat:
 * each input requantized to the output's parameters first. */
static moss_node *fold_retype(qdq_state *st, const pattern *p, char *why, size_t cap) {
  moss_node *c = p->core;
  moss_value *out = c->outputs[0];
  qact x;
  int j;
  if (c->noutputs > 1 && c->outputs[1]) {
    snprintf(why, cap, "its second output (Indices) is used");
    return NULL;
  }
  if (c->op == MOSS_OP_Concat) {
    moss_value **ins = got(st, moss_graph_alloc(st->g, sizeof *ins * (size_t)c->ninputs));
    if (!ins) return NULL;
    for (j = 0; j < c->ninputs; j++) {
      if (!act_of(c->inputs[j], &x, why, cap)) return NULL;
      ins[j] = requantized(st, c->name, &x, p->sy, p->zy, p->y->dtype, why, cap);
      if (!ins[j]) return NULL;
    }
    for (j = 0; j < c->ninputs; j++) c->inputs[j] = ins[j];
    c->outputs[0] = p->y;
    p->y->producer = c;
    return c;
  }
  if (!act_of(c->inputs[0], &x, why, cap)) return NULL;
  if (x.q->dtype == p->y->dtype && x.scale == p->sy && x.zp == p->zy) {
    c->inputs[0] = x.q;
    c->outputs[0] = p->y;
    p->y->producer = c;
    return c;
  } else {
    moss_value *t = lut(st, &x, NULL, p->sy, p->zy, p->y->dtype, why, cap);
    moss_value *v = t ? int_value(st, out, x.q->dtype) : NULL;
    if (!v || !lookup_node(st, c->name, v, t, p->y)) return NULL;
    c->inputs[0] = x.q;
    c->outputs[0] = v;
    v->producer = c;
    return c;
  }
}

static int is_table_op(moss_op op) {
  switch (op) {
  case MOSS_OP_Relu: case MOSS_OP_Clip: case MOSS_OP_Sigmoid: case MOSS_OP_HardSigmoid:
  case MOSS_OP_HardSwish: case MOSS_OP_Tanh: case MOSS_OP_LeakyRelu: case MOSS_OP_Elu:
  case MOSS_OP_Selu: case MOSS_OP_Softplus: case MOSS_OP_Softsign: case MOSS_OP_Neg:
  case MOSS_OP_Abs: case MOSS_OP_Exp: case MOSS_OP_Sqrt: case MOSS_OP_Erf:
  case MOSS_OP_DequantizeLinear:
    return 1;
  default: return 0;
  }
}

static int is_retype_op(moss_op op) {
  switch (op) {
  case MOSS_OP_MaxPool: case MOSS_OP_Reshape: case MOSS_OP_Flatten: case MOSS_OP_Transpose:
  case MOSS_OP_Squeeze: case MOSS_OP_Unsqueeze: case MOSS_OP_Identity: case MOSS_OP_Concat:
    return 1;
  default: return 0;
  }
}

/* A nearest-neighbour Resize only picks input elements (tf2onnx writes
 * TFLite's RESIZE_NEAREST_NEIGHBOR so): data movement, like Reshape. */
static int nearest_resize(const moss_node *n) {
  return n->op == MOSS_OP_Resize && !strcmp(moss_attr_string(n, "mode", "nearest"), "nearest");
}

static int is_mac_op(const moss_node *n) {
  return n && !n->dead &&
         (n->op == MOSS_OP_Conv || n->op == MOSS_OP_Gemm || n->op == MOSS_OP_MatMul);
}

/* Folds the pattern ending in the QuantizeLinear |q|, or notes why not. */
static moss_status try_fold(qdq_state *st, moss_node *q) {
  moss_value *v = q->inputs[0];
  moss_node *n = NULL;
  pattern p;
  char why[400];
  const char *w = NULL;
  int side;
  memset(&p, 0, sizeof p);
  p.q = q;
  p.y = q->outputs[0];
  p.core = v ? v->producer : NULL;
  if (!p.core || p.core->dead || !p.y) return MOSS_OK; /* a graph input: the float boundary */
  if (!params(q, &p.sy, &p.zy, &w)) {
    note(st, p.core, "float", "the QuantizeLinear '%s' after it: %s", q->name, w);
    return MOSS_OK;
  }
  if (!sole(v)) {
    note(st, p.core, "float", "its float output '%s' has other readers or is a graph output",
         v->name);
    return MOSS_OK;
  }
  /* Relu/Clip after a MAC op or an Add/Mul: a clamp of the integer op;
   * after a BatchNormalization: part of its tables. */
  if ((p.core->op == MOSS_OP_Relu || p.core->op == MOSS_OP_Clip) && sole(p.core->inputs[0])) {
    moss_node *c = p.core->inputs[0]->producer;
    moss_act a;
    if (c && !c->dead && !c->act.kind && act_of_node(p.core, &a) &&
        (is_mac_op(c) || c->op == MOSS_OP_Add || c->op == MOSS_OP_Mul || c->op == MOSS_OP_BatchNormalization)) {
      p.act_node = p.core;
      p.act = a;
      p.core = c;
    }
  }
  /* A constant bias Add after a MAC op. */
  if (p.core->op == MOSS_OP_Add)
    for (side = 0; side < 2; side++) {
      moss_value *o = p.core->inputs[side], *b = p.core->inputs[1 - side];
      if (o && sole(o) && is_mac_op(o->producer) && !o->producer->act.kind && const_like(b)) {
        p.add = p.core;
        p.bias = b;
        p.core = o->producer;
        break;
      }
    }
  if (p.core->act.kind) {
    if (p.act_node) {
      note(st, p.core, "float", "two activations in a row");
      return MOSS_OK;
    }
    p.act = p.core->act;
  }
  snprintf(why, sizeof why, "%s has no integer form in moss", p.core->op_type);
  switch (p.core->op) {
  case MOSS_OP_Conv: n = fold_conv(st, &p, why, sizeof why); break;
  case MOSS_OP_Gemm: n = fold_gemm(st, &p, why, sizeof why); break;
  case MOSS_OP_MatMul: {
    moss_value *b = p.core->inputs[1];
    if (live_op(b, MOSS_OP_DequantizeLinear) && b->producer->inputs[0]->data)
      n = fold_gemm(st, &p, why, sizeof why);
    else
      n = fold_qmatmul(st, &p, why, sizeof why);
    break;
  }
  case MOSS_OP_Add:
  case MOSS_OP_Mul: n = fold_binary(st, &p, why, sizeof why); break;
  case MOSS_OP_AveragePool:
  case MOSS_OP_GlobalAveragePool: n = fold_avgpool(st, &p, why, sizeof why); break;
  case MOSS_OP_BatchNormalization: n = fold_bn(st, &p, why, sizeof why); break;
  default:
    if (p.act.kind) break;
    if (is_table_op(p.core->op) && p.core->ninputs >= 1 && p.core->noutputs == 1)
      n = fold_table(st, &p, why, sizeof why);
    else if (is_retype_op(p.core->op) || nearest_resize(p.core))
      n = fold_retype(st, &p, why, sizeof why);
    break;
  }
  if (st->nomem) return moss_fail(st->ctx, MOSS_E_NOMEM, p.core, "folding its quantized pattern");
  if (!n) {
    note(st, p.core, "float", "%s", why);
    if (p.add) note(st, p.add, "float", "bias of '%s', which stays float", p.core->name);
    if (p.act_node)
      note(st, p.act_node, "float", "activation of '%s', which stays float", p.core->name);
    return MOSS_OK;
  }
  if (!n->outputs[0]) {
    n->outputs[0] = p.y;
    p.y->producer = n;
  }
  note(st, n, "integer", "DequantizeLinear -> %s%s%s%s -> QuantizeLinear", p.core->op_type,
       p.core->act.kind == MOSS_ACT_RELU ? " (fused Relu)"
                                         : p.core->act.kind == MOSS_ACT_CLIP ? " (fused Clip)" : "",
       p.add ? " -> Add" : "",
       p.act_node ? (p.act_node->op == MOSS_OP_Relu ? " -> Relu" : " -> Clip") : "");
  st->folded++;
  q->dead = 1;
  if (n != p.core) p.core->dead = 1;
  if (p.add) p.add->dead = 1;
  if (p.act_node) p.act_node->dead = 1;
  return MOSS_OK;
}

/* Casts to the type the value already has. */
static void drop_noop_casts(moss_graph *g) {
  int i;
  for (i = 0; i < g->nnodes; i++) {
    moss_node *n = g->nodes[i];
    moss_value *x, *y;
    if (n->dead || n->op != MOSS_OP_Cast) continue;
    x = n->inputs[0];
    y = n->outputs[0];
    if (!x || !y || x->dtype != y->dtype || y->output_index >= 0) continue;
    moss_graph_replace_uses(g, y, x);
    n->dead = 1;
  }
}

/* Notes every float node of a quantized region (reading a live
 * DequantizeLinear or read by a live QuantizeLinear) that has no note. */
static moss_status note_float(qdq_state *st) {
  moss_ctx *ctx = st->ctx;
  moss_graph *g = st->g;
  unsigned char *readq = moss_alloc(ctx, (size_t)g->nvalues + 1);
  int i, j;
  if (!readq) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "qdq folding");
  for (i = 0; i < g->nnodes; i++) {
    const moss_node *n = g->nodes[i];
    if (!n->dead && n->op == MOSS_OP_QuantizeLinear && n->inputs[0] && n->inputs[0]->id < g->nvalues)
      readq[n->inputs[0]->id] = 1;
  }
  for (i = 0; i < g->nnodes; i++) {
    moss_node *n = g->nodes[i];
    int dq_in = 0, q_out = 0;
    if (n->dead || n->op == MOSS_OP_QuantizeLinear || n->op == MOSS_OP_DequantizeLinear ||
        n->op == MOSS_OP_Constant)
      continue;
    if (n->qnote && !strncmp(n->qnote, "integer", 7)) continue;
    for (j = 0; j < n->ninputs; j++) dq_in |= live_op(n->inputs[j], MOSS_OP_DequantizeLinear);
    for (j = 0; j < n->noutputs; j++)
      q_out |= n->outputs[j] && n->outputs[j]->id < g->nvalues && readq[n->outputs[j]->id];
    if (!dq_in && !q_out) {
      n->qnote = NULL;
      continue;
    }
    if (!n->qnote)
      note(st, n, "float", "%s", q_out ? "its inputs are not dequantized 8-bit tensors"
                                       : "no QuantizeLinear follows it, so it computes in float");
  }
  moss_free(ctx, readq, (size_t)g->nvalues + 1);
  return st->nomem ? moss_fail(ctx, MOSS_E_NOMEM, NULL, "qdq folding: notes") : MOSS_OK;
}

moss_status moss_pass_qdq(moss_ctx *ctx, moss_graph *g) {
  qdq_state st;
  int i, n0;
  memset(&st, 0, sizeof st);
  st.ctx = ctx;
  st.g = g;
  drop_noop_casts(g);
  moss_graph_compute_uses(g);
  n0 = g->nnodes;
  for (i = 0; i < n0; i++) {
    moss_node *q = g->nodes[i];
    if (q->dead || q->op != MOSS_OP_QuantizeLinear) continue;
    MOSS_TRY(try_fold(&st, q));
    if (st.nomem) return moss_fail(ctx, MOSS_E_NOMEM, q, "qdq folding: notes");
  }
  MOSS_TRY(note_float(&st));
  moss_graph_compact(g);
  return st.folded ? moss_graph_sort(ctx, g) : MOSS_OK;
}
