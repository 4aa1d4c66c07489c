/* emit_norm.c - C for normalizations, specialized to the node's shapes.
 * Statistics are taken in two passes (mean, then the mean squared
 * deviation) with double accumulators; the output pass is a contiguous
 * multiply-add with per-block constants, so it vectorizes. LRN and
 * LpNormalization accumulate their sums of squares in the output itself,
 * row by row, to keep every inner loop contiguous. */
#include <stdio.h>
#include <string.h>

#include "cgen.h"

static int64_t prod(const int64_t *d, int from, int to) {
  int64_t p = 1;
  int k;
  for (k = from; k < to; k++) p *= d[k];
  return p;
}

/* Emits mean `mu` and variance `var` (both double) of |cnt| contiguous
 * elements at `xp`. */
static void emit_stats(moss_cgen *cg, int64_t cnt) {
  moss_c_line(cg, "double sum = 0, sq = 0;");
  moss_c_line(cg, "for (long j = 0; j < %lld; j++) sum += xp[j];", (long long)cnt);
  moss_c_line(cg, "const double mu = sum / %lld;", (long long)cnt);
  moss_c_open(cg, "for (long j = 0; j < %lld; j++)", (long long)cnt);
  moss_c_line(cg, "const double d = xp[j] - mu;");
  moss_c_line(cg, "sq += d * d;");
  moss_c_close(cg);
  moss_c_line(cg, "const double var = sq / %lld;", (long long)cnt);
}

/* Inside a loop over channel c: y = x * a + sh over the |N| planes of |S|
 * elements that channel c of the [N, C, S] input holds. */
static void emit_scale_shift(moss_cgen *cg, const char *T, int64_t N, int64_t C, int64_t S) {
  moss_c_open(cg, "for (long b = 0; b < %lld; b++)", (long long)N);
  moss_c_line(cg, "const %s *xp = x0 + (b * %lld + c) * %lld;", T, (long long)C, (long long)S);
  moss_c_line(cg, "%s *yp = y0 + (b * %lld + c) * %lld;", T, (long long)C, (long long)S);
  moss_c_line(cg, "for (long j = 0; j < %lld; j++) yp[j] = xp[j] * a + sh;", (long long)S);
  moss_c_close(cg);
}

static moss_status emit_batchnorm(moss_cgen *cg, const moss_node *n, const char *T,
                                  const char *lit_eps) {
  const moss_value *x = n->inputs[0];
  int64_t N = x->dims[0], C = x->dims[1], S = prod(x->dims, 2, x->rank);
  int training = cg->g->opset >= 14 && moss_attr_int(n, "training_mode", 0);
  char mom[64], omom[64];
  if (!training) {
    moss_c_open(cg, "for (long c = 0; c < %lld; c++)", (long long)C);
    moss_c_line(cg, "const %s a = (%s)(x1[c] / sqrt((double)x4[c] + %s));", T, T, lit_eps);
    moss_c_line(cg, "const %s sh = (%s)(x2[c] - x3[c] * a);", T, T);
    emit_scale_shift(cg, T, N, C, S);
    moss_c_close(cg);
    return MOSS_OK;
  }
  moss_c_lit_f64(MOSS_DT_F64, moss_attr_float(n, "momentum", 0.9f), mom, sizeof mom);
  moss_c_lit_f64(MOSS_DT_F64, 1.0 - moss_attr_float(n, "momentum", 0.9f), omom, sizeof omom);
  moss_c_open(cg, "for (long c = 0; c < %lld; c++)", (long long)C);
  moss_c_line(cg, "double sum = 0, sq = 0;");
  moss_c_line(cg, "for (long b = 0; b < %lld; b++)", (long long)N);
  moss_c_line(cg, "  for (long j = 0; j < %lld; j++) sum += x0[(b * %lld + c) * %lld + j];",
              (long long)S, (long long)C, (long long)S);
  moss_c_line(cg, "const double mu = sum / %lld;", (long long)(N * S));
  moss_c_open(cg, "for (long b = 0; b < %lld; b++)", (long long)N);
  moss_c_open(cg, "for (long j = 0; j < %lld; j++)", (long long)S);
  moss_c_line(cg, "const double d = x0[(b * %lld + c) * %lld + j] - mu;", (long long)C,
              (long long)S);
  moss_c_line(cg, "sq += d * d;");
  moss_c_close(cg);
  moss_c_close(cg);
  moss_c_line(cg, "const double var = sq / %lld;", (long long)(N * S));
  moss_c_line(cg, "const %s a = (%s)(x1[c] / sqrt(var + %s));", T, T, lit_eps);
  moss_c_line(cg, "const %s sh = (%s)(x2[c] - mu * a);", T, T);
  emit_scale_shift(cg, T, N, C, S);
  if (n->noutputs > 1 && n->outputs[1])
    moss_c_line(cg, "y1[c] = (%s)(x3[c] * %s + mu * %s);", moss_dtype_ctype(n->outputs[1]->dtype),
                mom, omom);
  if (n->noutputs > 2 && n->outputs[2])
    moss_c_line(cg, "y2[c] = (%s)(x4[c] * %s + var * %s);", moss_dtype_ctype(n->outputs[2]->dtype),
                mom, omom);
  moss_c_close(cg);
  return MOSS_OK;
}

static moss_status emit_layernorm(moss_cgen *cg, const moss_node *n, const char *T,
                                  const char *lit_eps) {
  const moss_value *x = n->inputs[0];
  int axis = (int)moss_attr_int(n, "axis", -1);
  int64_t outer, inner;
  const moss_value *sc = n->inputs[1], *b = moss_node_input(n, 2);
  if (axis < 0) axis += x->rank;
  outer = prod(x->dims, 0, axis);
  inner = prod(x->dims, axis, x->rank);
  moss_c_open(cg, "for (long o = 0; o < %lld; o++)", (long long)outer);
  moss_c_line(cg, "const %s *xp = x0 + o * %lld;", T, (long long)inner);
  moss_c_line(cg, "%s *yp = y0 + o * %lld;", T, (long long)inner);
  emit_stats(cg, inner);
  moss_c_line(cg, "const double rs = 1 / sqrt(var + %s);", lit_eps);
  moss_c_line(cg, "const %s m = (%s)mu, r = (%s)rs;", T, T, T);
  moss_c_line(cg, "for (long j = 0; j < %lld; j++) yp[j] = (xp[j] - m) * r * x1[%s]%s%s;",
              (long long)inner, moss_value_numel(sc) == 1 ? "0" : "j", b ? " + x2" : "",
              !b ? "" : moss_value_numel(b) == 1 ? "[0]" : "[j]");
  if (n->noutputs > 1 && n->outputs[1])
    moss_c_line(cg, "y1[o] = (%s)mu;", moss_dtype_ctype(n->outputs[1]->dtype));
  if (n->noutputs > 2 && n->outputs[2])
    moss_c_line(cg, "y2[o] = (%s)rs;", moss_dtype_ctype(n->outputs[2]->dtype));
  moss_c_close(cg);
  return MOSS_OK;
}

/* InstanceNormalization (G = C) and GroupNormalization: statistics over
 * each block of C/G channels times the spatial size, then a per-channel
 * (or per-group) scale and shift. */
static moss_status emit_groupnorm(moss_cgen *cg, const moss_node *n, const char *T,
                                  const char *lit_eps) {
  const moss_value *x = n->inputs[0];
  int64_t N = x->dims[0], C = x->dims[1], S = prod(x->dims, 2, x->rank);
  int64_t G = n->op == MOSS_OP_InstanceNormalization ? C : moss_attr_int(n, "num_groups", 1);
  int64_t Cg = C / G;
  int perch = moss_value_numel(n->inputs[1]) == C;
  moss_c_open(cg, "for (long ng = 0; ng < %lld; ng++)", (long long)(N * G));
  moss_c_line(cg, "const %s *xp = x0 + ng * %lld;", T, (long long)(Cg * S));
  moss_c_line(cg, "%s *yp = y0 + ng * %lld;", T, (long long)(Cg * S));
  emit_stats(cg, Cg * S);
  moss_c_line(cg, "const double rs = 1 / sqrt(var + %s);", lit_eps);
  moss_c_open(cg, "for (long cg = 0; cg < %lld; cg++)", (long long)Cg);
  if (perch) moss_c_line(cg, "const long ch = ng %% %lld * %lld + cg;", (long long)G, (long long)Cg);
  else moss_c_line(cg, "const long ch = ng %% %lld;", (long long)G);
  moss_c_line(cg, "const %s a = (%s)(x1[ch] * rs);", T, T);
  moss_c_line(cg, "const %s sh = (%s)(x2[ch] - mu * a);", T, T);
  moss_c_line(cg, "for (long j = cg * %lld; j < (cg + 1) * %lld; j++) yp[j] = xp[j] * a + sh;",
              (long long)S, (long long)S);
  moss_c_close(cg);
  moss_c_close(cg);
  return MOSS_OK;
}

/* MeanVarianceNormalization over any set of axes: loops over the kept
 * axes outside, the reduced axes inside (adjacent axes of one kind
 * merged). */
static moss_status emit_mvn(moss_cgen *cg, const moss_node *n, const char *T) {
  const moss_value *x = n->inputs[0];
  static const int64_t def_axes[3] = {0, 2, 3};
  const int64_t *axes = def_axes;
  int na = moss_attr_ints(n, "axes", &axes), k, nk = 0, nr = 0, red[MOSS_MAX_RANK];
  int64_t st[MOSS_MAX_RANK], ksz[MOSS_MAX_RANK], kst[MOSS_MAX_RANK], rsz[MOSS_MAX_RANK],
      rst[MOSS_MAX_RANK], rcnt = 1;
  char koff[512], roff[512];
  size_t len;
  if (!axes) {
    axes = def_axes;
    na = 3;
  }
  memset(red, 0, sizeof red);
  for (k = 0; k < na; k++) red[axes[k] < 0 ? axes[k] + x->rank : axes[k]] = 1;
  for (k = x->rank - 1; k >= 0; k--) st[k] = k == x->rank - 1 ? 1 : st[k + 1] * x->dims[k + 1];
  for (k = 0; k < x->rank; k++) {
    int64_t *sz = red[k] ? rsz : ksz, *sd = red[k] ? rst : kst;
    int *cnt = red[k] ? &nr : &nk;
    if (x->dims[k] == 1) continue;
    if (red[k]) rcnt *= x->dims[k];
    /* Merge with the previous axis of the same kind when contiguous. */
    if (*cnt && sd[*cnt - 1] == st[k] * x->dims[k]) {
      sz[*cnt - 1] *= x->dims[k];
      sd[*cnt - 1] = st[k];
    } else {
      sz[*cnt] = x->dims[k];
      sd[*cnt] = st[k];
      (*cnt)++;
    }
  }
  len = 0;
  koff[0] = 0;
  for (k = 0; k < nk; k++) {
    moss_c_open(cg, "for (long a%d = 0; a%d < %lld; a%d++)", k, k, (long long)ksz[k], k);
    len += (size_t)snprintf(koff + len, sizeof koff - len, " + a%d * %lld", k, (long long)kst[k]);
  }
  moss_c_line(cg, "const long base = 0%s;", koff);
  len = 0;
  roff[0] = 0;
  for (k = 0; k < nr; k++)
    len += (size_t)snprintf(roff + len, sizeof roff - len, " + r%d * %lld", k, (long long)rst[k]);
#define RLOOPS(stmt)                                                                          \
  do {                                                                                        \
    for (k = 0; k < nr; k++)                                                                  \
      moss_c_open(cg, "for (long r%d = 0; r%d < %lld; r%d++)", k, k, (long long)rsz[k], k); \
    moss_c_line(cg, "const long i = base%s;", roff);                                          \
    stmt;                                                                                     \
    for (k = 0; k < nr; k++) moss_c_close(cg);                                                \
  } while (0)
  moss_c_line(cg, "double sum = 0, sq = 0;");
  RLOOPS(moss_c_line(cg, "sum += x0[i];"));
  moss_c_line(cg, "const double mu = sum / %lld;", (long long)rcnt);
  RLOOPS(moss_c_line(cg, "sq += (x0[i] - mu) * (x0[i] - mu);"));
  moss_c_line(cg, "const double r = 1 / (sqrt(sq / %lld) + 1e-9);", (long long)rcnt);
  RLOOPS(moss_c_line(cg, "y0[i] = (%s)((x0[i] - mu) * r);", T));
#undef RLOOPS
  for (k = 0; k < nk; k++) moss_c_close(cg);
  return MOSS_OK;
}

static moss_status emit_lrn(moss_cgen *cg, const moss_node *n, const char *T, const char *F) {
  const moss_value *x = n->inputs[0];
  moss_dtype dt = x->dtype;
  int64_t N = x->dims[0], C = x->dims[1], S = prod(x->dims, 2, x->rank);
  int64_t size = moss_attr_int(n, "size", 1), before = (size - 1) / 2, after = size - 1 - before;
  char al[64], be[64], bi[64];
  moss_c_lit_f64(dt, (double)moss_attr_float(n, "alpha", 1e-4f) / (double)size, al, sizeof al);
  moss_c_lit_f64(dt, moss_attr_float(n, "beta", 0.75f), be, sizeof be);
  moss_c_lit_f64(dt, moss_attr_float(n, "bias", 1.0f), bi, sizeof bi);
  moss_c_open(cg, "for (long b = 0; b < %lld; b++)", (long long)N);
  moss_c_open(cg, "for (long c = 0; c < %lld; c++)", (long long)C);
  moss_c_line(cg, "%s *yp = y0 + (b * %lld + c) * %lld;", T, (long long)C, (long long)S);
  moss_c_line(cg, "const %s *xp = x0 + (b * %lld + c) * %lld;", T, (long long)C, (long long)S);
  moss_c_line(cg, "const long lo = c < %lld ? 0 : c - %lld;", (long long)before, (long long)before);
  moss_c_line(cg, "const long hi = c + %lld >= %lld ? %lld : c + %lld;", (long long)after,
              (long long)C, (long long)(C - 1), (long long)after);
  moss_c_line(cg, "for (long j = 0; j < %lld; j++) yp[j] = 0;", (long long)S);
  moss_c_open(cg, "for (long q = lo; q <= hi; q++)");
  moss_c_line(cg, "const %s *xq = x0 + (b * %lld + q) * %lld;", T, (long long)C, (long long)S);
  moss_c_line(cg, "for (long j = 0; j < %lld; j++) yp[j] += xq[j] * xq[j];", (long long)S);
  moss_c_close(cg);
  moss_c_line(cg, "for (long j = 0; j < %lld; j++) yp[j] = xp[j] / pow%s(%s + %s * yp[j], %s);",
              (long long)S, F, bi, al, be);
  moss_c_close(cg);
  moss_c_close(cg);
  return MOSS_OK;
}

static moss_status emit_lpnorm(moss_cgen *cg, const moss_node *n, const char *T, const char *F) {
  const moss_value *x = n->inputs[0];
  int axis = (int)moss_attr_int(n, "axis", -1);
  int64_t p = moss_attr_int(n, "p", 2), O, A, I;
  if (axis < 0) axis += x->rank;
  O = prod(x->dims, 0, axis);
  A = x->dims[axis];
  I = prod(x->dims, axis + 1, x->rank);
  moss_c_open(cg, "for (long o = 0; o < %lld; o++)", (long long)O);
  moss_c_line(cg, "const %s *xp = x0 + o * %lld;", T, (long long)(A * I));
  moss_c_line(cg, "%s *yp = y0 + o * %lld;", T, (long long)(A * I));
  /* The norms gather in the first row of the output, which is written last. */
  moss_c_line(cg, "for (long j = 0; j < %lld; j++) yp[j] = 0;", (long long)I);
  moss_c_open(cg, "for (long a = 0; a < %lld; a++)", (long long)A);
  if (p == 1)
    moss_c_line(cg, "for (long j = 0; j < %lld; j++) yp[j] += fabs%s(xp[a * %lld + j]);",
                (long long)I, F, (long long)I);
  else
    moss_c_line(cg,
                "for (long j = 0; j < %lld; j++) yp[j] += xp[a * %lld + j] * xp[a * %lld + j];",
                (long long)I, (long long)I, (long long)I);
  moss_c_close(cg);
  if (p == 2) moss_c_line(cg, "for (long j = 0; j < %lld; j++) yp[j] = sqrt%s(yp[j]);",
                          (long long)I, F);
  moss_c_line(cg, "for (long a = %lld; a >= 0; a--)", (long long)(A - 1));
  moss_c_line(cg, "  for (long j = 0; j < %lld; j++) yp[a * %lld + j] = xp[a * %lld + j] / yp[j];",
              (long long)I, (long long)I, (long long)I);
  moss_c_close(cg);
  return MOSS_OK;
}

moss_status moss_c_emit_norm(moss_cgen *cg, const moss_node *n) {
  moss_dtype dt = n->inputs[0]->dtype;
  const char *T = moss_dtype_ctype(dt), *F = dt == MOSS_DT_F32 ? "f" : "";
  char eps[64];
  if (dt != MOSS_DT_F32 && dt != MOSS_DT_F64)
    return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "type %s", moss_dtype_name(dt));
  moss_c_lit_f64(MOSS_DT_F64, moss_attr_float(n, "epsilon", 1e-5f), eps, sizeof eps);
  switch (n->op) {
  case MOSS_OP_BatchNormalization: return emit_batchnorm(cg, n, T, eps);
  case MOSS_OP_LayerNormalization: return emit_layernorm(cg, n, T, eps);
  case MOSS_OP_InstanceNormalization: case MOSS_OP_GroupNormalization:
    return emit_groupnorm(cg, n, T, eps);
  case MOSS_OP_MeanVarianceNormalization: return emit_mvn(cg, n, T);
  case MOSS_OP_LRN: return emit_lrn(cg, n, T, F);
  case MOSS_OP_LpNormalization: return emit_lpnorm(cg, n, T, F);
  default: return moss_fail(cg->ctx, MOSS_E_INTERNAL, n, "not a normalization");
  }
}
