/* emit_quant.c - C for the quantized operators (compiler/ops/quant.c).
 * QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear are the
 * float<->int boundary and use float32 arithmetic like ONNX (ties to even).
 * MatMulInteger, ConvInteger, QLinearMatMul and QLinearConv are integer
 * only: int32 sums of (a - a_zp) * (b - b_zp), and for QLinear* the
 * requantization of docs/numerics-int8.md. Its multiplier is decomposed at
 * compile time by moss_requant_compute, and the generated code applies it
 * with the file-scope helper moss_requant, emitted once per file: the same
 * integer formula as moss_requant_apply, so the two always agree. Zero
 * points may be run-time inputs; scales of QLinear* are constants. */
#include <stdio.h>
#include <string.h>

#include "../../compiler/passes/sparse.h"
#include "cgen.h"

/* Helper bits in cg->helpers, next to cgen.h's MOSS_CH_* (which stop at
 * 1u << 1); kept high so that new MOSS_CH_* values do not collide. */
#define CH_REQUANT (1u << 20)
#define CH_QUANTIZE (1u << 21)

/* Emits the file-scope helper |bit| once. */
static void need(moss_cgen *cg, unsigned bit) {
  if (cg->helpers & bit) return;
  cg->helpers |= bit;
  if (bit == CH_REQUANT)
    moss_buf_printf(
        cg->decls,
        "/* round(acc * M), M = mult * 2^-31 * 2^-shift (docs/numerics-int8.md):\n"
        " * the exact int64 product rounded once, ties to even, saturated. */\n"
        "static int32_t moss_requant(int32_t acc, int32_t mult, int shift) {\n"
        "  const int64_t p = (int64_t)acc * mult;\n"
        "  const int s = 31 + shift;\n"
        "  int64_t fl, rem, half;\n"
        "  if (s >= 63) return 0;\n"
        "  if (s <= 0) {\n"
        "    fl = p;\n"
        "  } else {\n"
        "    fl = p >= 0 ? p >> s : -((-p - 1) >> s) - 1;\n"
        "    rem = p - fl * ((int64_t)1 << s);\n"
        "    half = (int64_t)1 << (s - 1);\n"
        "    if (rem > half || (rem == half && (fl & 1))) fl++;\n"
        "  }\n"
        "  return fl > INT32_MAX ? INT32_MAX : (fl < INT32_MIN ? INT32_MIN : (int32_t)fl);\n"
        "}\n\n");
  else
    moss_buf_printf(
        cg->decls,
        "/* round(x / scale) (float32, ties to even) + zp, saturated to [lo, hi]. */\n"
        "static float moss_qround(float v) {\n"
        "  float r = floorf(v), d = v - r;\n"
        "  if (d > 0.5f || (d == 0.5f && fmodf(r, 2.0f) != 0.0f)) r += 1.0f;\n"
        "  return r;\n"
        "}\n\n"
        "static int32_t moss_quantize(float x, float scale, int32_t zp, int32_t lo, int32_t hi) {\n"
        "  float q = x / scale;\n"
        "  if (q != q) return zp;\n"
        "  q = moss_qround(q) + (float)zp;\n"
        "  return q <= (float)lo ? lo : q >= (float)hi ? hi : (int32_t)q;\n"
        "}\n\n");
}

static int lo_of(moss_dtype dt) { return dt == MOSS_DT_I8 ? -128 : 0; }
static int hi_of(moss_dtype dt) { return dt == MOSS_DT_I8 ? 127 : 255; }

/* "x<i>[idx]" as int32_t, or "0" when input |i| is absent. */
static const char *zp_expr(const moss_node *n, int i, const char *idx, char *buf, size_t cap) {
  const moss_value *z = moss_node_input(n, i);
  if (!z) snprintf(buf, cap, "0");
  else snprintf(buf, cap, "(int32_t)x%d[%s]", i, moss_value_numel(z) > 1 ? idx : "0");
  return buf;
}

static moss_status emit_qdq(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0], *s = n->inputs[1], *y = n->outputs[0];
  int64_t ne = moss_value_numel(x), inner = 1;
  char idx[96], z[128];
  int axis, k;
  MOSS_TRY(moss_quant_axis(cg->ctx, n, x, s, moss_node_input(n, 2), &axis));
  if (ne <= 0) return MOSS_OK;
  if (axis >= 0) {
    for (k = axis + 1; k < x->rank; k++) inner *= x->dims[k];
    snprintf(idx, sizeof idx, "(i / %lld) %% %lld", (long long)inner, (long long)x->dims[axis]);
  } else {
    snprintf(idx, sizeof idx, "0");
  }
  zp_expr(n, 2, idx, z, sizeof z);
  moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)ne);
  if (n->op == MOSS_OP_QuantizeLinear) {
    need(cg, CH_QUANTIZE);
    moss_c_line(cg, "y0[i] = (%s)moss_quantize((float)x0[i], x1[%s], %s, %d, %d);",
                moss_dtype_ctype(y->dtype), idx, z, lo_of(y->dtype), hi_of(y->dtype));
  } else {
    moss_c_line(cg, "y0[i] = ((float)x0[i] - (float)%s) * x1[%s];", z, idx);
  }
  moss_c_close(cg);
  return MOSS_OK;
}

static moss_status emit_dynamic(moss_cgen *cg, const moss_node *n) {
  int64_t ne = moss_value_numel(n->inputs[0]);
  need(cg, CH_QUANTIZE);
  moss_c_line(cg, "float mn = 0.0f, mx = 0.0f, sc, izp;");
  moss_c_line(cg, "int32_t zp;");
  moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)ne);
  moss_c_line(cg, "if (x0[i] < mn) mn = x0[i];");
  moss_c_line(cg, "if (x0[i] > mx) mx = x0[i];");
  moss_c_close(cg);
  moss_c_line(cg, "sc = mx == mn ? 1.0f : (mx - mn) / 255.0f;");
  moss_c_line(cg, "izp = 0.0f - mn / sc;");
  moss_c_line(cg, "izp = izp < 0.0f ? 0.0f : (izp > 255.0f ? 255.0f : izp);");
  moss_c_line(cg, "zp = (int32_t)moss_qround(izp);");
  moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)ne);
  moss_c_line(cg, "y0[i] = (uint8_t)moss_quantize(x0[i], sc, zp, 0, 255);");
  moss_c_close(cg);
  moss_c_line(cg, "y1[0] = sc;");
  moss_c_line(cg, "y2[0] = (uint8_t)zp;");
  return MOSS_OK;
}

/* QLinear*: the requantization multipliers a_scale[i] * b_scale[j] /
 * y_scale for i < |na|, j < |nb| (row-major), as static tables qm/qs, or
 * as the constants of one multiplier (written into |m|/|s|). */
static moss_status multipliers(moss_cgen *cg, const moss_node *n, int ia, int ib, int iy,
                               int64_t *out_na, int64_t *out_nb, char *m, char *s, size_t cap,
                               const char *idx_a, const char *idx_b) {
  const moss_value *sa = n->inputs[ia], *sb = n->inputs[ib], *sy = n->inputs[iy];
  int64_t na = moss_value_numel(sa), nb = moss_value_numel(sb), i, j;
  moss_buf *o = cg->out;
  float ys;
  *out_na = na;
  *out_nb = nb;
  if (!sa->data || !sb->data || !sy->data)
    return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "quantization scales are not constants");
  ys = ((const float *)sy->data)[0];
  if (na * nb == 1) {
    moss_requant q;
    moss_requant_compute((double)((const float *)sa->data)[0] * ((const float *)sb->data)[0] / ys,
                         &q);
    snprintf(m, cap, "%ld", (long)q.mult);
    snprintf(s, cap, "%d", q.shift);
    return MOSS_OK;
  }
  for (int pass = 0; pass < 2; pass++) {
    moss_c_line(cg, "static const %s %s[%lld] = {", pass ? "int" : "int32_t", pass ? "qs" : "qm",
                (long long)(na * nb));
    for (i = 0; i < na; i++)
      for (j = 0; j < nb; j++) {
        moss_requant q;
        moss_requant_compute((double)((const float *)sa->data)[i] *
                                 ((const float *)sb->data)[j] / ys,
                             &q);
        moss_buf_printf(o, "%*s%ld,\n", 2 * cg->indent + 4, "",
                        pass ? (long)q.shift : (long)q.mult);
      }
    moss_c_line(cg, "};");
  }
  if (na > 1 && nb > 1) snprintf(m, cap, "qm[(%s) * %lld + %s]", idx_a, (long long)nb, idx_b);
  else snprintf(m, cap, "qm[%s]", na > 1 ? idx_a : idx_b);
  if (na > 1 && nb > 1) snprintf(s, cap, "qs[(%s) * %lld + %s]", idx_a, (long long)nb, idx_b);
  else snprintf(s, cap, "qs[%s]", na > 1 ? idx_a : idx_b);
  return MOSS_OK;
}

/* Appends " * dim + var" to the index expression in |buf| (|cap| bytes),
 * parenthesizing what is there: "((e) * dim + var)". 0 when it fits. */
static int nest(char *buf, size_t cap, int64_t dim, const char *var, int k) {
  char tmp[512];
  int len = snprintf(tmp, sizeof tmp, "(%s) * %lld + %s%d", buf, (long long)dim, var, k);
  if (len < 0 || (size_t)len >= sizeof tmp || (size_t)len >= cap) return -1;
  memcpy(buf, tmp, (size_t)len + 1);
  return 0;
}

/* The store of the finished sum |acc| at |at|. */
static void store(moss_cgen *cg, const moss_node *n, const char *at, const char *m,
                  const char *s) {
  const moss_value *y = n->outputs[0];
  char z[64];
  if (y->dtype == MOSS_DT_I32) {
    moss_c_line(cg, "y0[%s] = acc;", at);
    return;
  }
  zp_expr(n, 7, "0", z, sizeof z);
  need(cg, CH_REQUANT);
  moss_c_line(cg, "const int32_t v = %s + moss_requant(acc, %s, %s);", z, m, s);
  moss_c_store_clamped(cg, n, y->dtype, at, "v");
}

void moss_c_need_requant(moss_cgen *cg) { need(cg, CH_REQUANT); }

void moss_c_qbounds(const moss_node *n, moss_dtype dt, int *out_lo, int *out_hi) {
  int64_t lo = moss_attr_int(n, "qmin", lo_of(dt)), hi = moss_attr_int(n, "qmax", hi_of(dt));
  *out_lo = lo < lo_of(dt) ? lo_of(dt) : (int)lo;
  *out_hi = hi > hi_of(dt) ? hi_of(dt) : (int)hi;
}

void moss_c_store_clamped(moss_cgen *cg, const moss_node *n, moss_dtype dt, const char *at,
                          const char *v) {
  int lo, hi;
  moss_c_qbounds(n, dt, &lo, &hi);
  moss_c_line(cg, "y0[%s] = (%s)(%s < %d ? %d : (%s > %d ? %d : %s));", at, moss_dtype_ctype(dt), v,
              lo, lo, v, hi, hi, v);
}

static moss_status emit_matmul(moss_cgen *cg, const moss_node *n) {
  int ql = n->op == MOSS_OP_QLinearMatMul;
  int ib = ql ? 3 : 1, iza = 2, izb = ql ? 5 : 3, k;
  const moss_value *a = n->inputs[0], *b = n->inputs[ib];
  moss_quant_matmul p;
  char ai[256], bi[256], yi[256], za[64], zb[64], m[128] = "0", s[128] = "0";
  MOSS_TRY(moss_quant_matmul_compute(cg->ctx, n, a, b, &p));
  if (n->sparse) return moss_c_emit_sparse(cg, n); /* backends/c/emit_sparse.c */
  if (moss_value_numel(n->outputs[0]) <= 0) return MOSS_OK;
  if (ql) {
    int64_t na, nb;
    MOSS_TRY(multipliers(cg, n, 1, 4, 6, &na, &nb, m, s, sizeof m, "m", "j"));
  }
  moss_c_index_expr(ai, sizeof ai, 'i', p.rank, p.dims, p.arank, p.adims);
  moss_c_index_expr(bi, sizeof bi, 'i', p.rank, p.dims, p.brank, p.bdims);
  moss_c_index_expr(yi, sizeof yi, 'i', p.rank, p.dims, p.rank, p.dims);
  for (k = 0; k < p.rank; k++)
    moss_c_open(cg, "for (long i%d = 0; i%d < %lld; i%d++)", k, k, (long long)p.dims[k], k);
  moss_c_line(cg, "{");
  cg->indent++;
  moss_c_line(cg, "const long ao = (%s) * %lld, bo = (%s) * %lld, yo = (%s) * %lld;", ai,
              (long long)(p.M * p.K), bi, (long long)(p.K * p.N), yi, (long long)(p.M * p.N));
  moss_c_open(cg, "for (long m = 0; m < %lld; m++)", (long long)p.M);
  moss_c_open(cg, "for (long j = 0; j < %lld; j++)", (long long)p.N);
  moss_c_line(cg, "int32_t acc = 0;");
  moss_c_open(cg, "for (long k = 0; k < %lld; k++)", (long long)p.K);
  moss_c_line(cg, "acc += ((int32_t)x0[ao + m * %lld + k] - %s) * ((int32_t)x%d[bo + k * %lld + j] - %s);",
              (long long)p.K, zp_expr(n, iza, "m", za, sizeof za), ib, (long long)p.N,
              zp_expr(n, izb, "j", zb, sizeof zb));
  moss_c_close(cg);
  snprintf(ai, sizeof ai, "yo + m * %lld + j", (long long)p.N);
  store(cg, n, ai, m, s);
  moss_c_close(cg);
  moss_c_close(cg);
  moss_c_close(cg);
  for (k = 0; k < p.rank; k++) moss_c_close(cg);
  return MOSS_OK;
}

static moss_status emit_conv(moss_cgen *cg, const moss_node *n) {
  int ql = n->op == MOSS_OP_QLinearConv;
  int iw = ql ? 3 : 1, izw = ql ? 5 : 3, k;
  const moss_value *x = n->inputs[0], *w = n->inputs[iw], *bias = moss_node_input(n, 8);
  moss_quant_conv c;
  int64_t oc = w->dims[0], ic = x->dims[1], cpg, opg;
  char xi[512], wi[512], yi[512], zx[64], zw[64], m[128] = "0", s[128] = "0";
  int bad = 0;
  moss_sparse_view sv;
  MOSS_TRY(moss_quant_conv_compute(cg->ctx, n, x, w, &c));
  if (n->sparse || moss_sparse_view_get(n, &sv))
    return moss_c_emit_qconv(cg, n); /* backends/c/emit_sparse.c: group 1, w_zp 0 */
  if (moss_value_numel(n->outputs[0]) <= 0) return MOSS_OK;
  cpg = ic / c.group;
  opg = oc / c.group;
  if (ql) {
    int64_t na, nb;
    MOSS_TRY(multipliers(cg, n, 1, 4, 6, &na, &nb, m, s, sizeof m, "0", "o"));
  }
  moss_c_open(cg, "for (long b = 0; b < %lld; b++)", (long long)x->dims[0]);
  moss_c_open(cg, "for (long o = 0; o < %lld; o++)", (long long)oc);
  moss_c_line(cg, "const long g = o / %lld;", (long long)opg);
  snprintf(xi, sizeof xi, "b * %lld + g * %lld + c", (long long)ic, (long long)cpg);
  snprintf(wi, sizeof wi, "o * %lld + c", (long long)cpg);
  snprintf(yi, sizeof yi, "b * %lld + o", (long long)oc);
  for (k = 0; k < c.nsp; k++) {
    moss_c_open(cg, "for (long o%d = 0; o%d < %lld; o%d++)", k, k, (long long)c.out[k], k);
    bad |= nest(yi, sizeof yi, c.out[k], "o", k);
  }
  moss_c_line(cg, "int32_t acc = 0;");
  moss_c_open(cg, "for (long c = 0; c < %lld; c++)", (long long)cpg);
  for (k = 0; k < c.nsp; k++) {
    moss_c_open(cg, "for (long k%d = 0; k%d < %lld; k%d++)", k, k, (long long)c.k[k], k);
    moss_c_line(cg, "const long p%d = o%d * %lld + k%d * %lld - %lld;", k, k, (long long)c.s[k], k,
                (long long)c.d[k], (long long)c.p[k]);
    moss_c_line(cg, "if (p%d < 0 || p%d >= %lld) continue;", k, k, (long long)c.in[k]);
    bad |= nest(xi, sizeof xi, c.in[k], "p", k);
    bad |= nest(wi, sizeof wi, c.k[k], "k", k);
  }
  if (bad)
    return moss_fail(cg->ctx, MOSS_E_INTERNAL, n, "index expression too long");
  moss_c_line(cg, "acc += ((int32_t)x0[%s] - %s) * ((int32_t)x%d[%s] - %s);", xi,
              zp_expr(n, 2, "0", zx, sizeof zx), iw, wi, zp_expr(n, izw, "o", zw, sizeof zw));
  for (k = 0; k < c.nsp; k++) moss_c_close(cg);
  moss_c_close(cg);
  if (bias) moss_c_line(cg, "acc += x8[o];");
  store(cg, n, yi, m, s);
  for (k = 0; k < c.nsp; k++) moss_c_close(cg);
  moss_c_close(cg);
  moss_c_close(cg);
  return MOSS_OK;
}

moss_status moss_c_emit_quant(moss_cgen *cg, const moss_node *n) {
  switch (n->op) {
  case MOSS_OP_QuantizeLinear:
  case MOSS_OP_DequantizeLinear: return emit_qdq(cg, n);
  case MOSS_OP_DynamicQuantizeLinear: return emit_dynamic(cg, n);
  case MOSS_OP_MatMulInteger:
  case MOSS_OP_QLinearMatMul: return emit_matmul(cg, n);
  case MOSS_OP_ConvInteger:
  case MOSS_OP_QLinearConv: return emit_conv(cg, n);
  default: return moss_fail(cg->ctx, MOSS_E_INTERNAL, n, "not a quantized operator");
  }
}
