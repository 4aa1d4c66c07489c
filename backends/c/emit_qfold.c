/* emit_qfold.c - C for moss's own integer ops (compiler/ops/qfold.c).
 * Integer only: int32 sums, then docs/numerics-int8.md's fixed-point
 * requantization (moss_requant, emitted once per file by emit_quant.c)
 * with multipliers decomposed at compile time, then the clamp to the
 * output range (narrowed by qmin/qmax for a fused Relu/Clip). */
#include <stdio.h>
#include <string.h>

#include "../../compiler/passes/sparse.h"
#include "cgen.h"

static double f32_at(const moss_value *v, int64_t i) {
  return (double)((const float *)v->data)[moss_value_numel(v) == 1 ? 0 : i];
}

static int64_t int_at(const moss_value *v, int64_t i) {
  return moss_load_i64(v->dtype, v->data, moss_value_numel(v) == 1 ? 0 : i);
}

/* MossQGemm: y[m, n] = requant(bias'[n] + sum_k x[m, k] * w'[n, k]) with
 * w' = w - w_zp[n] and bias' = bias - x_zp * sum_k w'[n, k] folded at
 * compile time, so the inner loop is a plain 8-bit dot product. A weight
 * the sparse pass put in CSR goes to backends/c/emit_sparse.c. */
static moss_status emit_gemm(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0], *w = n->inputs[3], *ws = n->inputs[4], *wz = n->inputs[5];
  const moss_value *bias = moss_node_input(n, 8), *y = n->outputs[0];
  int64_t K = w->dims[1], N = w->dims[0], M = moss_value_numel(x) / (K ? K : 1), j, k;
  int64_t xz = int_at(n->inputs[2], 0), yz = int_at(n->inputs[7], 0);
  double sx = f32_at(n->inputs[1], 0), sy = f32_at(n->inputs[6], 0);
  int zw = 0, per = moss_value_numel(ws) > 1, lo, hi;
  const char *W = "x3";
  moss_buf *o = cg->out;
  if (n->sparse) return moss_c_emit_sparse(cg, n); /* backends/c/emit_sparse.c */
  if (M <= 0 || N <= 0) return MOSS_OK;
  for (j = 0; j < moss_value_numel(wz); j++) zw |= int_at(wz, j) != 0;
  moss_c_need_requant(cg);
  moss_c_qbounds(n, y->dtype, &lo, &hi);
  if (zw) { /* w - w_zp fits int16 */
    moss_c_line(cg, "static const int16_t qw[%lld] = {", (long long)(N * K));
    for (j = 0; j < N; j++) {
      moss_buf_printf(o, "%*s", 2 * cg->indent + 6, "");
      for (k = 0; k < K; k++)
        moss_buf_printf(o, "%lld,%s", (long long)(moss_load_i64(w->dtype, w->data, j * K + k) - int_at(wz, j)),
                        k + 1 < K ? " " : "\n");
    }
    moss_c_line(cg, "};");
    W = "qw";
  }
  moss_c_line(cg, "static const int32_t qb[%lld] = {", (long long)N);
  for (j = 0; j < N; j++) {
    int64_t sum = 0, b = bias ? moss_load_i64(bias->dtype, bias->data, j) : 0;
    for (k = 0; k < K; k++) sum += moss_load_i64(w->dtype, w->data, j * K + k) - int_at(wz, j);
    b -= xz * sum;
    if (b > INT32_MAX || b < INT32_MIN)
      return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n,
                       "the zero-point correction of output %lld overflows int32", (long long)j);
    moss_buf_printf(o, "%*s%lld,\n", 2 * cg->indent + 6, "", (long long)b);
  }
  moss_c_line(cg, "};");
  if (per) {
    int pass;
    for (pass = 0; pass < 2; pass++) {
      moss_c_line(cg, "static const %s %s[%lld] = {", pass ? "int" : "int32_t", pass ? "qs" : "qm",
                  (long long)N);
      for (j = 0; j < N; j++) {
        moss_requant q;
        moss_requant_compute(sx * f32_at(ws, j) / sy, &q);
        moss_buf_printf(o, "%*s%ld,\n", 2 * cg->indent + 6, "", pass ? (long)q.shift : (long)q.mult);
      }
      moss_c_line(cg, "};");
    }
  }
  moss_c_open(cg, "for (long m = 0; m < %lld; m++)", (long long)M);
  moss_c_line(cg, "const %s *xr = x0 + m * %lld;", moss_dtype_ctype(x->dtype), (long long)K);
  moss_c_open(cg, "for (long j = 0; j < %lld; j++)", (long long)N);
  moss_c_line(cg, "const %s *wr = %s + j * %lld;", zw ? "int16_t" : moss_dtype_ctype(w->dtype), W,
              (long long)K);
  moss_c_line(cg, "int32_t acc = 0, r;");
  moss_c_line(cg, "for (long k = 0; k < %lld; k++) acc += (int32_t)xr[k] * (int32_t)wr[k];",
              (long long)K);
  if (per) {
    moss_c_line(cg, "r = %lld + moss_requant(acc + qb[j], qm[j], qs[j]);", (long long)yz);
  } else {
    moss_requant q;
    moss_requant_compute(sx * f32_at(ws, 0) / sy, &q);
    moss_c_line(cg, "r = %lld + moss_requant(acc + qb[j], %ld, %d);", (long long)yz, (long)q.mult,
                q.shift);
  }
  moss_c_line(cg, "y0[m * %lld + j] = (%s)(r < %d ? %d : (r > %d ? %d : r));", (long long)N,
              moss_dtype_ctype(y->dtype), lo, lo, hi, hi);
  moss_c_close(cg);
  moss_c_close(cg);
  return MOSS_OK;
}

/* MossQAdd: both sides brought to a common scale with 20 bits of headroom
 * (a' = requant((a - a_zp) * 2^20, a_scale / 2m), m = max of the two
 * scales), summed, and requantized by 2m / (y_scale * 2^20): the sum keeps
 * 2^-20 of a unit of precision, so the result is the float one rounded,
 * except within that margin of a tie. MossQMul: one product, one
 * requantization by a_scale * b_scale / y_scale. */
static moss_status emit_binary(moss_cgen *cg, const moss_node *n) {
  const moss_value *a = n->inputs[0], *b = n->inputs[3], *y = n->outputs[0];
  double sa = f32_at(n->inputs[1], 0), sb = f32_at(n->inputs[4], 0), sy = f32_at(n->inputs[6], 0);
  int64_t za = int_at(n->inputs[2], 0), zb = int_at(n->inputs[5], 0), zy = int_at(n->inputs[7], 0);
  int rk[2], lo, hi;
  int64_t dims[2][MOSS_MAX_RANK];
  char stmt[1024];
  moss_requant qa, qb, qy;
  moss_c_need_requant(cg);
  moss_c_qbounds(n, y->dtype, &lo, &hi);
  if (n->op == MOSS_OP_MossQAdd) {
    double m2 = 2.0 * (sa > sb ? sa : sb);
    moss_requant_compute(sa / m2, &qa);
    moss_requant_compute(sb / m2, &qb);
    moss_requant_compute(m2 / (sy * 1048576.0), &qy);
    snprintf(stmt, sizeof stmt,
             "const int32_t a = moss_requant(((int32_t)x0[%%0] - %lld) * 1048576, %ld, %d), "
             "b = moss_requant(((int32_t)x3[%%1] - %lld) * 1048576, %ld, %d); "
             "const int32_t r = %lld + moss_requant(a + b, %ld, %d); "
             "y0[%%o] = (%s)(r < %d ? %d : (r > %d ? %d : r));",
             (long long)za, (long)qa.mult, qa.shift, (long long)zb, (long)qb.mult, qb.shift,
             (long long)zy, (long)qy.mult, qy.shift, moss_dtype_ctype(y->dtype), lo, lo, hi, hi);
  } else {
    moss_requant_compute(sa * sb / sy, &qy);
    snprintf(stmt, sizeof stmt,
             "const int32_t r = %lld + moss_requant(((int32_t)x0[%%0] - %lld) * ((int32_t)x3[%%1] - "
             "%lld), %ld, %d); y0[%%o] = (%s)(r < %d ? %d : (r > %d ? %d : r));",
             (long long)zy, (long long)za, (long long)zb, (long)qy.mult, qy.shift,
             moss_dtype_ctype(y->dtype), lo, lo, hi, hi);
  }
  rk[0] = a->rank;
  rk[1] = b->rank;
  memcpy(dims[0], a->dims, sizeof dims[0]);
  memcpy(dims[1], b->dims, sizeof dims[1]);
  moss_c_broadcast_loop(cg, y->rank, y->dims, 2, rk, (const int64_t(*)[MOSS_MAX_RANK])dims, stmt);
  return MOSS_OK;
}

static moss_status emit_lookup(moss_cgen *cg, const moss_node *n) {
  int64_t ne = moss_value_numel(n->inputs[0]);
  if (ne <= 0) return MOSS_OK;
  moss_c_line(cg, "for (long i = 0; i < %lld; i++) y0[i] = x1[(int)x0[i]%s];", (long long)ne,
              n->inputs[0]->dtype == MOSS_DT_I8 ? " + 128" : "");
  return MOSS_OK;
}

moss_status moss_c_emit_qfold(moss_cgen *cg, const moss_node *n) {
  switch (n->op) {
  case MOSS_OP_MossQGemm: return emit_gemm(cg, n);
  case MOSS_OP_MossQAdd:
  case MOSS_OP_MossQMul: return emit_binary(cg, n);
  case MOSS_OP_MossQAvgPool: return moss_c_emit_qavgpool(cg, n);
  case MOSS_OP_MossQLookup: return emit_lookup(cg, n);
  default: return moss_fail(cg->ctx, MOSS_E_INTERNAL, n, "not one of moss's integer ops");
  }
}
