/* quant.c - the quantized operators: QuantizeLinear and DequantizeLinear
 * (per tensor or per axis, int8/uint8; opset 10 to 19 forms),
 * DynamicQuantizeLinear (uint8), MatMulInteger and ConvInteger (int32
 * results of zero-point-corrected products) and QLinearMatMul/QLinearConv
 * (the same products requantized to int8/uint8).
 *
 * Requantization uses one fixed-point scheme, defined here and described in
 * docs/numerics-int8.md: the real multiplier M = a_scale * b_scale / y_scale
 * becomes at compile time a Q31 mantissa and a shift (moss_requant_compute),
 * and every backend applies moss_requant_apply's integer formula at run
 * time, so int8 outputs are bit-identical across backends. The scales of
 * QLinear* must therefore be constants when the model is compiled. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops.h"

void moss_requant_compute(double m, moss_requant *out_q) {
  int e = 0;
  double f;
  int64_t q;
  out_q->mult = 0;
  out_q->shift = 0;
  if (!(m > 0) || m != m || isinf(m)) return; /* zero, negative or NaN: the result is zp */
  f = frexp(m, &e); /* m = f * 2^e, 0.5 <= f < 1 */
  q = (int64_t)floor(f * 2147483648.0 + 0.5);
  if (q == ((int64_t)1 << 31)) {
    q /= 2;
    e++;
  }
  if (e > 31) { /* beyond any int32 product: saturate through the largest left shift */
    q = INT32_MAX;
    e = 31;
  }
  if (-e > 62) return; /* below 2^-63: every product rounds to 0 */
  out_q->mult = (int32_t)q;
  out_q->shift = -e;
}

int32_t moss_requant_apply(int32_t acc, moss_requant q) {
  /* One rounding of the exact product: round(acc * mult / 2^(31 + shift)),
   * ties to even; |acc * mult| < 2^62, so the product is exact in int64. */
  int64_t p = (int64_t)acc * q.mult, fl, rem, half;
  int s = 31 + q.shift;
  if (s <= 0) { /* cannot happen for mult/shift from moss_requant_compute (shift >= -31) */
    fl = p;
  } else if (s >= 63) {
    return 0;
  } else {
    fl = p >= 0 ? p >> s : -((-p - 1) >> s) - 1; /* floor, no shift of a negative number */
    rem = p - fl * ((int64_t)1 << s);             /* in [0, 2^s) */
    half = (int64_t)1 << (s - 1);
    if (rem > half || (rem == half && (fl & 1))) fl++;
  }
  if (fl > INT32_MAX) return INT32_MAX;
  if (fl < INT32_MIN) return INT32_MIN;
  return (int32_t)fl;
}

static int q8(moss_dtype dt) { return dt == MOSS_DT_I8 || dt == MOSS_DT_U8; }

/* Fails naming every scale input of |n| (indices |idx|) that is not a
 * constant, with the --constant options that would fix them. */
static moss_status need_scales(moss_ctx *ctx, const moss_node *n, const int *idx, int cnt) {
  char names[512], opts[1024];
  size_t ln = 0, lo = 0;
  int i, missing = 0;
  names[0] = opts[0] = 0;
  for (i = 0; i < cnt; i++) {
    const moss_value *v = moss_node_input(n, idx[i]);
    if (!v || v->data) continue;
    if (v->input_index < 0)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                       "scale '%s' is computed at run time; moss requantizes with a fixed-point "
                       "multiplier derived at compile time, so the scales must be constants",
                       v->name);
    missing++;
    if (ln < sizeof names)
      ln += (size_t)snprintf(names + ln, sizeof names - ln, "%s'%s'", ln ? ", " : "", v->name);
    if (lo < sizeof opts)
      lo += (size_t)snprintf(opts + lo, sizeof opts - lo, "%s--constant %s=FILE", lo ? " " : "",
                             v->name);
  }
  if (!missing) return MOSS_OK;
  return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                   "scale input%s %s must be known at compile time (the fixed-point requantization "
                   "multiplier is derived from them); fix %s with %s",
                   missing > 1 ? "s" : "", names, missing > 1 ? "them" : "it", opts);
}

moss_status moss_quant_axis(moss_ctx *ctx, const moss_node *n, const moss_value *x,
                            const moss_value *scale, const moss_value *zp, int *out_axis) {
  int64_t ns = moss_value_numel(scale);
  *out_axis = -1;
  if (scale->rank > 1)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "scale of rank %d (blocked quantization is not supported)", scale->rank);
  /* One value each is per tensor whatever the ranks: ONNX Runtime's own
   * quantizer writes a [1] scale with a scalar zero point. */
  if (zp && !(ns == 1 && moss_value_numel(zp) == 1) &&
      (zp->rank != scale->rank || moss_value_numel(zp) != ns))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "zero point and scale shapes differ");
  if (ns == 1) return MOSS_OK; /* one value: per tensor, whatever the axis */
  MOSS_TRY(moss_norm_axis(ctx, n, moss_attr_int(n, "axis", 1), x->rank, out_axis));
  if (x->dims[*out_axis] != ns)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "scale has %lld values, axis %d of the input has %lld", (long long)ns,
                     *out_axis, (long long)x->dims[*out_axis]);
  return MOSS_OK;
}

moss_status moss_quant_matmul_compute(moss_ctx *ctx, const moss_node *n, const moss_value *a,
                                      const moss_value *b, moss_quant_matmul *out_p) {
  int k, ra = a->rank, rb = b->rank, r;
  int64_t ad[MOSS_MAX_RANK], bd[MOSS_MAX_RANK];
  memset(out_p, 0, sizeof *out_p);
  if (ra < 1 || rb < 1)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "inputs of rank %d and %d", ra, rb);
  out_p->M = ra == 1 ? 1 : a->dims[ra - 2];
  out_p->K = a->dims[ra - 1];
  out_p->N = rb == 1 ? 1 : b->dims[rb - 1];
  if ((rb == 1 ? b->dims[0] : b->dims[rb - 2]) != out_p->K)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "inner dimensions differ: %lld vs %lld",
                     (long long)out_p->K, (long long)(rb == 1 ? b->dims[0] : b->dims[rb - 2]));
  out_p->arank = ra > 2 ? ra - 2 : 0;
  out_p->brank = rb > 2 ? rb - 2 : 0;
  for (k = 0; k < out_p->arank; k++) out_p->adims[k] = ad[k] = a->dims[k];
  for (k = 0; k < out_p->brank; k++) out_p->bdims[k] = bd[k] = b->dims[k];
  MOSS_TRY(moss_broadcast(ctx, n, out_p->arank, ad, out_p->brank, bd, &out_p->rank,
                          out_p->dims));
  out_p->nbatch = 1;
  for (k = 0; k < out_p->rank; k++) out_p->nbatch *= out_p->dims[k];
  r = out_p->rank;
  out_p->yrank = r;
  for (k = 0; k < r; k++) out_p->ydims[k] = out_p->dims[k];
  if (ra > 1) out_p->ydims[out_p->yrank++] = out_p->M;
  if (rb > 1) out_p->ydims[out_p->yrank++] = out_p->N;
  return MOSS_OK;
}

moss_status moss_quant_conv_compute(moss_ctx *ctx, const moss_node *n, const moss_value *x,
                                    const moss_value *w, moss_quant_conv *out_c) {
  const char *ap = moss_attr_string(n, "auto_pad", "NOTSET");
  int64_t pads[2 * MOSS_MAX_RANK], ks[MOSS_MAX_RANK];
  int k, nsp = x->rank - 2;
  memset(out_c, 0, sizeof *out_c);
  if (x->rank < 3 || w->rank != x->rank)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input rank %d and weight rank %d", x->rank,
                     w->rank);
  out_c->nsp = nsp;
  out_c->group = moss_attr_int(n, "group", 1);
  MOSS_TRY(moss_spatial_ints(ctx, n, "strides", nsp, 1, out_c->s));
  MOSS_TRY(moss_spatial_ints(ctx, n, "dilations", nsp, 1, out_c->d));
  MOSS_TRY(moss_spatial_ints(ctx, n, "pads", 2 * nsp, 0, pads));
  MOSS_TRY(moss_spatial_ints(ctx, n, "kernel_shape", nsp, 0, ks));
  if (out_c->group < 1 || x->dims[1] % out_c->group || w->dims[0] % out_c->group ||
      w->dims[1] * out_c->group != x->dims[1])
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "channels do not match: input %lld, weights [%lld, %lld], group %lld",
                     (long long)x->dims[1], (long long)w->dims[0], (long long)w->dims[1],
                     (long long)out_c->group);
  out_c->ydims[0] = x->dims[0];
  out_c->ydims[1] = w->dims[0];
  for (k = 0; k < nsp; k++) {
    int64_t ek, in = x->dims[k + 2], total;
    out_c->in[k] = in;
    out_c->k[k] = w->dims[k + 2];
    if (ks[k] && ks[k] != out_c->k[k])
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "kernel_shape disagrees with the weights");
    ek = (out_c->k[k] - 1) * out_c->d[k] + 1;
    if (out_c->s[k] < 1 || out_c->d[k] < 1 || out_c->k[k] < 1 || pads[k] < 0 ||
        pads[k + nsp] < 0)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "invalid strides, dilations, pads or kernel");
    if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
      out_c->out[k] = (in + out_c->s[k] - 1) / out_c->s[k];
      total = (out_c->out[k] - 1) * out_c->s[k] + ek - in;
      if (total < 0) total = 0;
      out_c->p[k] = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
    } else if (!strcmp(ap, "VALID") || !strcmp(ap, "NOTSET")) {
      int64_t span = in;
      if (!strcmp(ap, "NOTSET")) {
        span += pads[k] + pads[k + nsp];
        out_c->p[k] = pads[k];
      }
      if (span < ek)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "kernel larger than the padded input");
      out_c->out[k] = (span - ek) / out_c->s[k] + 1;
    } else {
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "unknown auto_pad '%s'", ap);
    }
    out_c->ydims[k + 2] = out_c->out[k];
  }
  return MOSS_OK;
}

/* Checks the optional zero point |i| of |n|: |want| elements at most (1
 * or |per|), of type |dt|. */
static moss_status check_zp(moss_ctx *ctx, const moss_node *n, int i, moss_dtype dt, int64_t per,
                            const char *what) {
  const moss_value *z = moss_node_input(n, i);
  int64_t nz;
  if (!z) return MOSS_OK;
  MOSS_TRY(moss_need_input(ctx, n, i));
  nz = moss_value_numel(z);
  if (z->dtype != dt)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%s zero point has type %s, expected %s", what,
                     moss_dtype_name(z->dtype), moss_dtype_name(dt));
  if (z->rank > 1 || (nz != 1 && nz != per))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "%s zero point of shape with %lld values (a scalar or %lld values)", what,
                     (long long)nz, (long long)per);
  return MOSS_OK;
}

static moss_status check_scale(moss_ctx *ctx, const moss_node *n, int i, int64_t per,
                               const char *what) {
  const moss_value *s;
  int64_t ns;
  MOSS_TRY(moss_need_input(ctx, n, i));
  s = n->inputs[i];
  ns = moss_value_numel(s);
  if (s->dtype != MOSS_DT_F32)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "%s scale of type %s (float32 only)", what,
                     moss_dtype_name(s->dtype));
  if (s->rank > 1 || (ns != 1 && ns != per))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "%s scale with %lld values (a scalar or %lld values)", what, (long long)ns,
                     (long long)per);
  return MOSS_OK;
}

static moss_status infer_q(moss_ctx *ctx, moss_node *n) {
  moss_value *x = n->inputs[0], *s, *z = moss_node_input(n, 2);
  moss_dtype yt;
  int axis;
  MOSS_TRY(moss_need_input(ctx, n, 1));
  s = n->inputs[1];
  if (z) MOSS_TRY(moss_need_input(ctx, n, 2));
  if (s->dtype != MOSS_DT_F32)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "scale of type %s (float32 only)",
                     moss_dtype_name(s->dtype));
  if (moss_attr_int(n, "block_size", 0) != 0) /* opset 21 */
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "blocked quantization (block_size %lld)",
                     (long long)moss_attr_int(n, "block_size", 0));
  MOSS_TRY(moss_quant_axis(ctx, n, x, s, z, &axis));
  if (n->op == MOSS_OP_QuantizeLinear) {
    int64_t od = moss_attr_int(n, "output_dtype", 0); /* opset 21; 0: the zero point's */
    if (x->dtype != MOSS_DT_F32 && x->dtype != MOSS_DT_I32)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "input of type %s (float32 or int32)",
                       moss_dtype_name(x->dtype));
    if (z && od && od != (int64_t)z->dtype)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                       "output_dtype %lld differs from the zero point's type %s", (long long)od,
                       moss_dtype_name(z->dtype));
    yt = z ? z->dtype : od ? (moss_dtype)od : MOSS_DT_U8;
    if (!q8(yt))
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "quantization to %s (int8 and uint8 only)",
                       moss_dtype_name(yt));
    moss_set_output(n, 0, yt, x->rank, x->dims);
    return MOSS_OK;
  }
  if (!q8(x->dtype) && x->dtype != MOSS_DT_I32)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "input of type %s (int8, uint8 or int32)",
                     moss_dtype_name(x->dtype));
  if (z && z->dtype != x->dtype)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "zero point type %s, input type %s",
                     moss_dtype_name(z->dtype), moss_dtype_name(x->dtype));
  moss_set_output(n, 0, MOSS_DT_F32, x->rank, x->dims);
  return MOSS_OK;
}

static moss_status infer_matmul(moss_ctx *ctx, moss_node *n) {
  int ql = n->op == MOSS_OP_QLinearMatMul;
  int ia = 0, ib = ql ? 3 : 1;
  moss_value *a, *b;
  moss_quant_matmul p;
  MOSS_TRY(moss_need_input(ctx, n, ib));
  a = n->inputs[ia];
  b = n->inputs[ib];
  if (!q8(a->dtype) || !q8(b->dtype))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "input types %s and %s (int8 and uint8 only)",
                     moss_dtype_name(a->dtype), moss_dtype_name(b->dtype));
  MOSS_TRY(moss_quant_matmul_compute(ctx, n, a, b, &p));
  if (!ql) {
    MOSS_TRY(check_zp(ctx, n, 2, a->dtype, p.M, "A"));
    MOSS_TRY(check_zp(ctx, n, 3, b->dtype, p.N, "B"));
    moss_set_output(n, 0, MOSS_DT_I32, p.yrank, p.ydims);
    return MOSS_OK;
  } else {
    static const int scales[] = {1, 4, 6};
    moss_value *yz;
    MOSS_TRY(check_scale(ctx, n, 1, p.M, "a"));
    MOSS_TRY(check_scale(ctx, n, 4, p.N, "b"));
    MOSS_TRY(check_scale(ctx, n, 6, 1, "y"));
    MOSS_TRY(moss_need_input(ctx, n, 7));
    yz = n->inputs[7];
    MOSS_TRY(check_zp(ctx, n, 2, a->dtype, p.M, "a"));
    MOSS_TRY(check_zp(ctx, n, 5, b->dtype, p.N, "b"));
    MOSS_TRY(check_zp(ctx, n, 7, yz->dtype, 1, "y"));
    if (!q8(yz->dtype))
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "output type %s (int8 and uint8 only)",
                       moss_dtype_name(yz->dtype));
    MOSS_TRY(need_scales(ctx, n, scales, 3));
    moss_set_output(n, 0, yz->dtype, p.yrank, p.ydims);
    return MOSS_OK;
  }
}

static moss_status infer_conv(moss_ctx *ctx, moss_node *n) {
  int ql = n->op == MOSS_OP_QLinearConv;
  int iw = ql ? 3 : 1;
  moss_value *x = n->inputs[0], *w, *bias;
  moss_quant_conv c;
  MOSS_TRY(moss_need_input(ctx, n, iw));
  w = n->inputs[iw];
  if (!q8(x->dtype) || !q8(w->dtype))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "input types %s and %s (int8 and uint8 only)",
                     moss_dtype_name(x->dtype), moss_dtype_name(w->dtype));
  MOSS_TRY(moss_quant_conv_compute(ctx, n, x, w, &c));
  if (!ql) {
    MOSS_TRY(check_zp(ctx, n, 2, x->dtype, 1, "x"));
    MOSS_TRY(check_zp(ctx, n, 3, w->dtype, w->dims[0], "w"));
    moss_set_output(n, 0, MOSS_DT_I32, x->rank, c.ydims);
    return MOSS_OK;
  } else {
    static const int scales[] = {1, 4, 6};
    moss_value *yz;
    MOSS_TRY(check_scale(ctx, n, 1, 1, "x"));
    MOSS_TRY(check_scale(ctx, n, 4, w->dims[0], "w"));
    MOSS_TRY(check_scale(ctx, n, 6, 1, "y"));
    MOSS_TRY(moss_need_input(ctx, n, 7));
    yz = n->inputs[7];
    MOSS_TRY(check_zp(ctx, n, 2, x->dtype, 1, "x"));
    MOSS_TRY(check_zp(ctx, n, 5, w->dtype, w->dims[0], "w"));
    MOSS_TRY(check_zp(ctx, n, 7, yz->dtype, 1, "y"));
    if (!q8(yz->dtype))
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "output type %s (int8 and uint8 only)",
                       moss_dtype_name(yz->dtype));
    bias = moss_node_input(n, 8);
    if (bias) {
      MOSS_TRY(moss_need_input(ctx, n, 8));
      if (bias->dtype != MOSS_DT_I32 || bias->rank != 1 || bias->dims[0] != w->dims[0])
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "bias must be int32 of %lld values",
                         (long long)w->dims[0]);
    }
    MOSS_TRY(need_scales(ctx, n, scales, 3));
    moss_set_output(n, 0, yz->dtype, x->rank, c.ydims);
    return MOSS_OK;
  }
}

moss_status moss_infer_quant(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x;
  (void)g;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  x = n->inputs[0];
  switch (n->op) {
  case MOSS_OP_QuantizeLinear:
  case MOSS_OP_DequantizeLinear: return infer_q(ctx, n);
  case MOSS_OP_DynamicQuantizeLinear:
    if (x->dtype != MOSS_DT_F32)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "input of type %s (float32 only)",
                       moss_dtype_name(x->dtype));
    moss_set_output(n, 0, MOSS_DT_U8, x->rank, x->dims);
    moss_set_output(n, 1, MOSS_DT_F32, 0, NULL);
    moss_set_output(n, 2, MOSS_DT_U8, 0, NULL);
    return MOSS_OK;
  case MOSS_OP_MatMulInteger:
  case MOSS_OP_QLinearMatMul: return infer_matmul(ctx, n);
  case MOSS_OP_ConvInteger:
  case MOSS_OP_QLinearConv: return infer_conv(ctx, n);
  default: return moss_fail(ctx, MOSS_E_INTERNAL, n, "not a quantized operator");
  }
}

float moss_quant_round(float v) {
  float r = floorf(v), d = v - r;
  if (d > 0.5f || (d == 0.5f && fmodf(r, 2.0f) != 0.0f)) r += 1.0f;
  return r;
}

int32_t moss_quantize_one(float x, float scale, int32_t zp, int32_t lo, int32_t hi) {
  float q = x / scale;
  if (q != q) return zp;
  q = moss_quant_round(q) + (float)zp;
  return q <= (float)lo ? lo : q >= (float)hi ? hi : (int32_t)q;
}

/* Element |i| of a per-tensor (axis < 0) or per-axis parameter. */
static int64_t param_index(const moss_value *x, int axis, int64_t i) {
  int64_t inner = 1;
  int k;
  if (axis < 0) return 0;
  for (k = axis + 1; k < x->rank; k++) inner *= x->dims[k];
  return (i / inner) % x->dims[axis];
}

moss_status moss_eval_quant(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = n->inputs[0], *s = moss_node_input(n, 1), *z = moss_node_input(n, 2);
  moss_value *y = n->outputs[0];
  int64_t i, ne = moss_value_numel(x);
  int axis;
  (void)g;
  if (n->op != MOSS_OP_QuantizeLinear && n->op != MOSS_OP_DequantizeLinear)
    return MOSS_E_UNSUPPORTED;
  if (moss_quant_axis(ctx, n, x, s, z, &axis) != MOSS_OK) return MOSS_E_INTERNAL;
  for (i = 0; i < ne; i++) {
    int64_t j = param_index(x, axis, i);
    float sc = ((const float *)s->data)[j];
    int32_t zp = z ? (int32_t)moss_load_i64(z->dtype, z->data, j) : 0;
    if (n->op == MOSS_OP_QuantizeLinear) {
      float v = (float)moss_load_f64(x->dtype, x->data, i);
      int lo = y->dtype == MOSS_DT_I8 ? -128 : 0, hi = y->dtype == MOSS_DT_I8 ? 127 : 255;
      moss_store_i64(y->dtype, y->data, i, moss_quantize_one(v, sc, zp, lo, hi));
    } else {
      int64_t v = moss_load_i64(x->dtype, x->data, i);
      ((float *)y->data)[i] = ((float)v - (float)zp) * sc;
    }
  }
  return MOSS_OK;
}

/* Element |i| of float32 constant |v|, as a double; 0 when absent. */
static double scale_at(const moss_value *v, int64_t i) {
  return v && v->data && v->dtype == MOSS_DT_F32 && i < moss_value_numel(v)
             ? (double)((const float *)v->data)[i]
             : 0.0;
}

static int f32_const(const moss_value *v) {
  return v && v->data && v->dtype == MOSS_DT_F32 && moss_value_numel(v) >= 1;
}

int64_t moss_requant_node(const moss_node *n, double *out, int64_t cap) {
  const moss_value *x = moss_node_input(n, 0);
  int64_t cnt, i, j, na, nb;
  switch (n->op) {
  case MOSS_OP_QLinearConv:
  case MOSS_OP_MossQGemm:
  case MOSS_OP_QLinearMatMul:
    if (!f32_const(moss_node_input(n, 1)) || !f32_const(moss_node_input(n, 4)) ||
        !f32_const(moss_node_input(n, 6)))
      return 0;
    na = n->op == MOSS_OP_QLinearMatMul ? moss_value_numel(n->inputs[1]) : 1;
    nb = moss_value_numel(n->inputs[4]);
    cnt = na * nb;
    if (cnt <= cap)
      for (i = 0; i < na; i++)
        for (j = 0; j < nb; j++)
          out[i * nb + j] =
              scale_at(n->inputs[1], i) * scale_at(n->inputs[4], j) / scale_at(n->inputs[6], 0);
    return cnt;
  case MOSS_OP_MossQAdd:
  case MOSS_OP_MossQMul: {
    double sa = scale_at(moss_node_input(n, 1), 0), sb = scale_at(moss_node_input(n, 4), 0);
    double sy = scale_at(moss_node_input(n, 6), 0), m2 = 2.0 * (sa > sb ? sa : sb);
    if (!f32_const(moss_node_input(n, 1)) || !f32_const(moss_node_input(n, 4)) ||
        !f32_const(moss_node_input(n, 6)))
      return 0;
    if (n->op == MOSS_OP_MossQMul) {
      if (cap >= 1) out[0] = sa * sb / sy;
      return 1;
    }
    if (cap >= 3) {
      out[0] = sa / m2;
      out[1] = sb / m2;
      out[2] = m2 / (sy * 1048576.0);
    }
    return 3;
  }
  case MOSS_OP_MossQAvgPool: {
    double sx = scale_at(moss_node_input(n, 1), 0), sy = scale_at(moss_node_input(n, 3), 0);
    const int64_t *ks = NULL;
    int nk;
    if (!f32_const(moss_node_input(n, 1)) || !f32_const(moss_node_input(n, 3)) || !x ||
        x->rank < 3)
      return 0;
    if (moss_attr_int(n, "global", 0)) {
      int64_t plane = 1;
      for (i = 2; i < x->rank; i++) plane *= x->dims[i];
      if (cap >= 1) out[0] = sx / (sy * (double)plane);
      return 1;
    }
    nk = moss_attr_ints(n, "kernel_shape", &ks);
    for (cnt = 1, i = 0; i < nk; i++) cnt *= ks[i];
    if (nk <= 0 || cnt <= 0) return 0;
    if (cnt + 1 <= cap)
      for (i = 0; i <= cnt; i++) out[i] = i ? sx / (sy * (double)i) : 0.0;
    return cnt + 1;
  }
  default: return 0;
  }
}
