/* emit_pool.c - C for pooling, specialized to the node's shapes: one loop
 * over the N*C planes, a loop nest over output positions, and for each
 * position the kernel taps inside the input (their range is computed once
 * per output position and dimension, or is a constant where no window
 * crosses the border), so no tap is bounds-checked. Global pools reduce
 * each contiguous plane; MaxUnpool zeroes the output and scatters. */
#include <stdio.h>
#include <string.h>

#include "cgen.h"

typedef struct geom {
  int nsp;
  int64_t in[MOSS_MAX_RANK], out[MOSS_MAX_RANK], k[MOSS_MAX_RANK];
  int64_t s[MOSS_MAX_RANK], d[MOSS_MAX_RANK], p[MOSS_MAX_RANK], pe[MOSS_MAX_RANK];
} geom;

static void ints(const moss_node *n, const char *name, int cnt, int64_t def, int64_t *out) {
  const int64_t *a;
  int c = moss_attr_ints(n, name, &a), k;
  for (k = 0; k < cnt; k++) out[k] = a && c == cnt ? a[k] : def;
}

static void get_geom(const moss_node *n, geom *g) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  const char *ap = moss_attr_string(n, "auto_pad", "NOTSET");
  int64_t pads[2 * MOSS_MAX_RANK];
  int k;
  g->nsp = x->rank - 2;
  ints(n, "kernel_shape", g->nsp, 1, g->k);
  ints(n, "strides", g->nsp, 1, g->s);
  ints(n, "dilations", g->nsp, 1, g->d);
  ints(n, "pads", 2 * g->nsp, 0, pads);
  for (k = 0; k < g->nsp; k++) {
    int64_t ek = (g->k[k] - 1) * g->d[k] + 1, total;
    g->in[k] = x->dims[k + 2];
    g->out[k] = y->dims[k + 2];
    if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
      total = (g->out[k] - 1) * g->s[k] + ek - g->in[k];
      if (total < 0) total = 0;
      g->p[k] = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
      g->pe[k] = total - g->p[k];
    } else if (!strcmp(ap, "VALID")) {
      g->p[k] = g->pe[k] = 0;
    } else {
      g->p[k] = pads[k];
      g->pe[k] = pads[k + g->nsp];
    }
  }
}

static int64_t prod(const int64_t *d, int from, int to) {
  int64_t p = 1;
  int k;
  for (k = from; k < to; k++) p *= d[k];
  return p;
}

/* Lowest value of |dt|, the start of a max. */
static const char *lowest(moss_dtype dt, char *buf, size_t cap) {
  switch (dt) {
  case MOSS_DT_F32: return "-INFINITY";
  case MOSS_DT_F64: return "-(double)INFINITY";
  case MOSS_DT_I8: return "INT8_MIN";
  case MOSS_DT_I16: return "INT16_MIN";
  case MOSS_DT_I32: return "INT32_MIN";
  case MOSS_DT_I64: return "INT64_MIN";
  default: snprintf(buf, cap, "0"); return buf;
  }
}

/* Output index text "o0 * 35 + o1 * 7 + o2" over |d|. */
static void flat(char *buf, size_t cap, const char *v, const int64_t *d, int nsp, int colmajor) {
  size_t len = 0;
  int k;
  buf[0] = 0;
  for (k = 0; k < nsp && len < cap; k++) {
    int64_t st = colmajor ? prod(d, 0, k) : prod(d, k + 1, nsp);
    if (st == 1) len += (size_t)snprintf(buf + len, cap - len, "%s%s%d", k ? " + " : "", v, k);
    else
      len += (size_t)snprintf(buf + len, cap - len, "%s%s%d * %lld", k ? " + " : "", v, k,
                              (long long)st);
  }
}

/* MossQAvgPool: the requantization multipliers x_scale / (y_scale * c)
 * for window counts c = 0..|kv| (c = 0 gives 0), as static tables qm/qs. */
static void qavg_tables(moss_cgen *cg, const moss_node *n, int64_t kv) {
  double sx = ((const float *)n->inputs[1]->data)[0], sy = ((const float *)n->inputs[3]->data)[0];
  int64_t c;
  int pass;
  moss_c_need_requant(cg);
  for (pass = 0; pass < 2; pass++) {
    moss_c_line(cg, "static const %s %s[%lld] = {", pass ? "int" : "int32_t", pass ? "qs" : "qm",
                (long long)(kv + 1));
    for (c = 0; c <= kv; c++) {
      moss_requant q;
      moss_requant_compute(c ? sx / (sy * (double)c) : 0.0, &q);
      moss_buf_printf(cg->out, "%*s%ld,\n", 2 * cg->indent + 6, "", pass ? (long)q.shift : (long)q.mult);
    }
    moss_c_line(cg, "};");
  }
}

static moss_status emit_window(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0];
  moss_dtype dt = x->dtype;
  const char *T = moss_dtype_ctype(dt), *F = dt == MOSS_DT_F32 ? "f" : "";
  const char *A = dt == MOSS_DT_F64 ? "double" : "float"; /* accumulator of Average/Lp */
  int qavg = n->op == MOSS_OP_MossQAvgPool;
  geom g;
  int k, nsp, isinc = (int)moss_attr_int(n, "count_include_pad", 0);
  int withidx = n->op == MOSS_OP_MaxPool && n->noutputs > 1 && n->outputs[1];
  int colmajor = (int)moss_attr_int(n, "storage_order", 0) == 1;
  int64_t NC = x->dims[0] * x->dims[1], XS, YS, p = moss_attr_int(n, "p", 2);
  char buf[512], lo[64];
  get_geom(n, &g);
  nsp = g.nsp;
  XS = prod(g.in, 0, nsp);
  YS = prod(g.out, 0, nsp);
  if (n->op == MOSS_OP_LpPool && p < 1)
    return moss_fail(cg->ctx, MOSS_E_INVALID_MODEL, n, "p must be at least 1");
  if (qavg) {
    int64_t kv = prod(g.k, 0, nsp);
    A = "int32_t";
    qavg_tables(cg, n, kv);
  }
  moss_c_open(cg, "for (long bc = 0; bc < %lld; bc++)", (long long)NC);
  moss_c_line(cg, "const %s *xp = x0 + bc * %lld;", T, (long long)XS);
  moss_c_line(cg, "%s *yp = y0 + bc * %lld;", moss_dtype_ctype(n->outputs[0]->dtype), (long long)YS);
  if (withidx) moss_c_line(cg, "int64_t *ip = y1 + bc * %lld;", (long long)YS);
  for (k = 0; k < nsp; k++) {
    int64_t ek = (g.k[k] - 1) * g.d[k] + 1;
    moss_c_open(cg, "for (long o%d = 0; o%d < %lld; o%d++)", k, k, (long long)g.out[k], k);
    moss_c_line(cg, "const long s%d = o%d * %lld - %lld;", k, k, (long long)g.s[k],
                (long long)g.p[k]);
    if (g.p[k] == 0 && (g.out[k] - 1) * g.s[k] + ek <= g.in[k]) {
      moss_c_line(cg, "const long a%d = 0, e%d = %lld;", k, k, (long long)g.k[k]);
    } else {
      /* First tap at or after position 0, end of the taps before the end. */
      if (g.d[k] == 1) {
        moss_c_line(cg, "const long a%d = s%d < 0 ? -s%d : 0;", k, k, k);
        moss_c_line(cg, "long e%d = s%d >= %lld ? 0 : %lld - s%d;", k, k, (long long)g.in[k],
                    (long long)g.in[k], k);
      } else {
        moss_c_line(cg, "const long a%d = s%d < 0 ? (-s%d + %lld) / %lld : 0;", k, k, k,
                    (long long)(g.d[k] - 1), (long long)g.d[k]);
        moss_c_line(cg, "long e%d = s%d >= %lld ? 0 : (%lld - s%d) / %lld;", k, k,
                    (long long)g.in[k], (long long)(g.in[k] + g.d[k] - 1), k, (long long)g.d[k]);
      }
      moss_c_line(cg, "if (e%d > %lld) e%d = %lld;", k, (long long)g.k[k], k, (long long)g.k[k]);
    }
  }
  switch (n->op) {
  case MOSS_OP_MaxPool: moss_c_line(cg, "%s m = %s;", T, lowest(dt, lo, sizeof lo)); break;
  default: moss_c_line(cg, "%s acc = 0;", A); break;
  }
  if (withidx) moss_c_line(cg, "long mi = 0;");
  for (k = 0; k < nsp; k++) {
    moss_c_open(cg, "for (long k%d = a%d; k%d < e%d; k%d++)", k, k, k, k, k);
    if (g.d[k] == 1) moss_c_line(cg, "const long i%d = s%d + k%d;", k, k, k);
    else moss_c_line(cg, "const long i%d = s%d + k%d * %lld;", k, k, k, (long long)g.d[k]);
  }
  flat(buf, sizeof buf, "i", g.in, nsp, 0);
  moss_c_line(cg, "const %s v = xp[%s];", T, buf);
  switch (n->op) {
  case MOSS_OP_MaxPool:
    if (withidx) {
      flat(buf, sizeof buf, "i", g.in, nsp, colmajor);
      moss_c_open(cg, "if (v > m)");
      moss_c_line(cg, "m = v;");
      moss_c_line(cg, "mi = %s;", buf);
      moss_c_close(cg);
    } else {
      moss_c_line(cg, "if (v > m) m = v;");
    }
    break;
  case MOSS_OP_AveragePool: moss_c_line(cg, "acc += v;"); break;
  case MOSS_OP_MossQAvgPool: moss_c_line(cg, "acc += (int32_t)v - (int32_t)x2[0];"); break;
  default:
    if (p == 1) moss_c_line(cg, "acc += fabs%s(v);", F);
    else if (p == 2) moss_c_line(cg, "acc += v * v;");
    else moss_c_line(cg, "acc += pow%s(fabs%s(v), %lld);", F, F, (long long)p);
    break;
  }
  for (k = 0; k < nsp; k++) moss_c_close(cg);
  flat(buf, sizeof buf, "o", g.out, nsp, 0);
  switch (n->op) {
  case MOSS_OP_MaxPool:
    moss_c_line(cg, "yp[%s] = m;", buf);
    if (withidx) moss_c_line(cg, "ip[%s] = bc * %lld + mi;", buf, (long long)XS);
    break;
  case MOSS_OP_AveragePool:
  case MOSS_OP_MossQAvgPool: {
    char cnt[512];
    size_t len = 0;
    for (k = 0; k < nsp && len < sizeof cnt; k++) {
      if (isinc) {
        /* Taps inside the padded input (a ceil_mode window may pass it). */
        int64_t lim = g.in[k] + g.pe[k];
        moss_c_line(cg, "long c%d = (%lld - s%d) / %lld;", k, (long long)(lim + g.d[k] - 1), k,
                    (long long)g.d[k]);
        moss_c_line(cg, "if (c%d > %lld) c%d = %lld;", k, (long long)g.k[k], k,
                    (long long)g.k[k]);
        len += (size_t)snprintf(cnt + len, sizeof cnt - len, "%sc%d", k ? " * " : "", k);
      } else {
        len += (size_t)snprintf(cnt + len, sizeof cnt - len, "%s(e%d > a%d ? e%d - a%d : 0)", k ? " * " : "",
                                k, k, k, k);
      }
    }
    moss_c_line(cg, "const long cnt = %s;", cnt);
    if (qavg) {
      int lo, hi;
      moss_c_qbounds(n, n->outputs[0]->dtype, &lo, &hi);
      moss_c_line(cg, "const int32_t r = (int32_t)x4[0] + moss_requant(acc, qm[cnt], qs[cnt]);");
      moss_c_line(cg, "yp[%s] = (%s)(r < %d ? %d : (r > %d ? %d : r));", buf,
                  moss_dtype_ctype(n->outputs[0]->dtype), lo, lo, hi, hi);
    } else {
      moss_c_line(cg, "yp[%s] = (%s)(cnt > 0 ? acc / (%s)cnt : 0);", buf, T, A);
    }
    break;
  }
  default:
    if (p == 1) moss_c_line(cg, "yp[%s] = (%s)acc;", buf, T);
    else if (p == 2) moss_c_line(cg, "yp[%s] = (%s)sqrt%s(acc);", buf, T, F);
    else
      moss_c_line(cg, "yp[%s] = (%s)pow%s(acc, (%s)1 / %lld);", buf, T, F, A, (long long)p);
    break;
  }
  for (k = 0; k < nsp; k++) moss_c_close(cg);
  moss_c_close(cg);
  return MOSS_OK;
}

static moss_status emit_global(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0];
  moss_dtype dt = x->dtype;
  const char *T = moss_dtype_ctype(dt), *F = dt == MOSS_DT_F32 ? "f" : "";
  const char *A = dt == MOSS_DT_F64 ? "double" : "float";
  int64_t NC = x->dims[0] * x->dims[1], XS = moss_value_numel(x) / (NC ? NC : 1);
  int64_t p = moss_attr_int(n, "p", 2);
  char lo[64];
  if (n->op == MOSS_OP_GlobalLpPool && p < 1)
    return moss_fail(cg->ctx, MOSS_E_INVALID_MODEL, n, "p must be at least 1");
  moss_c_open(cg, "for (long bc = 0; bc < %lld; bc++)", (long long)NC);
  moss_c_line(cg, "const %s *xp = x0 + bc * %lld;", T, (long long)XS);
  switch (n->op) {
  case MOSS_OP_GlobalMaxPool:
    moss_c_line(cg, "%s m = %s;", T, lowest(dt, lo, sizeof lo));
    moss_c_line(cg, "for (long i = 0; i < %lld; i++) m = xp[i] > m ? xp[i] : m;", (long long)XS);
    moss_c_line(cg, "y0[bc] = m;");
    break;
  case MOSS_OP_GlobalAveragePool:
    moss_c_line(cg, "%s acc = 0;", A);
    moss_c_line(cg, "for (long i = 0; i < %lld; i++) acc += xp[i];", (long long)XS);
    moss_c_line(cg, "y0[bc] = (%s)(acc / %lld);", T, (long long)XS);
    break;
  default:
    moss_c_line(cg, "%s acc = 0;", A);
    if (p == 1) moss_c_line(cg, "for (long i = 0; i < %lld; i++) acc += fabs%s(xp[i]);", (long long)XS, F);
    else if (p == 2) moss_c_line(cg, "for (long i = 0; i < %lld; i++) acc += xp[i] * xp[i];", (long long)XS);
    else
      moss_c_line(cg, "for (long i = 0; i < %lld; i++) acc += pow%s(fabs%s(xp[i]), %lld);",
                  (long long)XS, F, F, (long long)p);
    if (p == 1) moss_c_line(cg, "y0[bc] = (%s)acc;", T);
    else if (p == 2) moss_c_line(cg, "y0[bc] = (%s)sqrt%s(acc);", T, F);
    else moss_c_line(cg, "y0[bc] = (%s)pow%s(acc, (%s)1 / %lld);", T, F, A, (long long)p);
    break;
  }
  moss_c_close(cg);
  return MOSS_OK;
}

moss_status moss_c_emit_qavgpool(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0];
  int64_t NC = x->dims[0] * x->dims[1], XS = moss_value_numel(x) / (NC ? NC : 1);
  moss_requant q;
  int lo, hi;
  if (!n->inputs[1]->data || !n->inputs[3]->data)
    return moss_fail(cg->ctx, MOSS_E_INTERNAL, n, "scales are not constants");
  if (!moss_attr_int(n, "global", 0)) return emit_window(cg, n);
  moss_requant_compute((double)((const float *)n->inputs[1]->data)[0] /
                           ((double)((const float *)n->inputs[3]->data)[0] * (double)XS),
                       &q);
  moss_c_need_requant(cg);
  moss_c_qbounds(n, n->outputs[0]->dtype, &lo, &hi);
  moss_c_open(cg, "for (long bc = 0; bc < %lld; bc++)", (long long)NC);
  moss_c_line(cg, "const %s *xp = x0 + bc * %lld;", moss_dtype_ctype(x->dtype), (long long)XS);
  moss_c_line(cg, "int32_t acc = 0, r;");
  moss_c_line(cg, "for (long i = 0; i < %lld; i++) acc += (int32_t)xp[i] - (int32_t)x2[0];",
              (long long)XS);
  moss_c_line(cg, "r = (int32_t)x4[0] + moss_requant(acc, %ld, %d);", (long)q.mult, q.shift);
  moss_c_line(cg, "y0[bc] = (%s)(r < %d ? %d : (r > %d ? %d : r));",
              moss_dtype_ctype(n->outputs[0]->dtype), lo, lo, hi, hi);
  moss_c_close(cg);
  return MOSS_OK;
}

static moss_status emit_unpool(moss_cgen *cg, const moss_node *n) {
  int64_t nx = moss_value_numel(n->inputs[0]), ny = moss_value_numel(n->outputs[0]);
  moss_c_line(cg, "for (long i = 0; i < %lld; i++) y0[i] = 0;", (long long)ny);
  moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)nx);
  moss_c_line(cg, "const int64_t j = x1[i];");
  /* Indices outside the output are ignored rather than written. */
  moss_c_line(cg, "if (j >= 0 && j < %lld) y0[j] = x0[i];", (long long)ny);
  moss_c_close(cg);
  return MOSS_OK;
}

moss_status moss_c_emit_pool(moss_cgen *cg, const moss_node *n) {
  switch (n->op) {
  case MOSS_OP_MaxPool: case MOSS_OP_AveragePool: case MOSS_OP_LpPool: return emit_window(cg, n);
  case MOSS_OP_GlobalAveragePool: case MOSS_OP_GlobalMaxPool: case MOSS_OP_GlobalLpPool:
    return emit_global(cg, n);
  case MOSS_OP_MaxUnpool: return emit_unpool(cg, n);
  default: return moss_fail(cg->ctx, MOSS_E_INTERNAL, n, "not a pooling operator");
  }
}
