/* emit_movement.c - C for the data-movement operators (compiler/ops/
 * movement.c). Most are one affine copy: the index space is simplified
 * (unit dimensions dropped, dimensions contiguous on both sides merged) and
 * written as a loop nest whose innermost level is a memcpy when both sides
 * are contiguous there. Pad's non-constant modes use per-axis index tables,
 * Compress a table of the kept indices; every index is fixed at compile time
 * except Trilu's k and ReverseSequence's lengths, which are clamped. */
#include <stdio.h>
#include <string.h>

#include "cgen.h"

#define TILE 16 /* side of the tiles a transposing copy walks */

static int64_t numel(const moss_value *v) {
  int64_t n = 1;
  int k;
  for (k = 0; k < v->rank; k++) n *= v->dims[k];
  return n;
}

/* "base + i0 * s0 + ..." over the first |r| loop variables. */
static const char *index_text(char *buf, size_t cap, int64_t base, int r, const int64_t *s) {
  size_t len = 0;
  int k;
  buf[0] = 0;
  if (base) len += (size_t)snprintf(buf, cap, "%lld", (long long)base);
  for (k = 0; k < r && len < cap; k++) {
    long long v = (long long)s[k];
    if (!v) continue;
    if (len)
      len += (size_t)snprintf(buf + len, cap - len, " %c ", v < 0 ? '-' : '+');
    else if (v < 0)
      len += (size_t)snprintf(buf + len, cap - len, "-");
    if (v == 1 || v == -1)
      len += (size_t)snprintf(buf + len, cap - len, "i%d", k);
    else
      len += (size_t)snprintf(buf + len, cap - len, "i%d * %lld", k, v < 0 ? -v : v);
  }
  if (!buf[0]) snprintf(buf, cap, "0");
  return buf;
}

/* yname[ob + ...] = xname[ib + ...] over the index space of |in|. */
static void emit_affine(moss_cgen *cg, const char *yname, const char *xname, size_t esz,
                        const moss_affine *in) {
  moss_affine a;
  int k, r = 0, loops;
  char yi[512], xi[512];
  a.ib = in->ib;
  a.ob = in->ob;
  for (k = 0; k < in->rank; k++) {
    if (in->dims[k] == 0) return;
    if (in->dims[k] == 1) continue;
    if (r > 0 && a.os[r - 1] == in->os[k] * in->dims[k] && a.is[r - 1] == in->is[k] * in->dims[k]) {
      a.dims[r - 1] *= in->dims[k];
      a.os[r - 1] = in->os[k];
      a.is[r - 1] = in->is[k];
      continue;
    }
    a.dims[r] = in->dims[k];
    a.os[r] = in->os[k];
    a.is[r] = in->is[k];
    r++;
  }
  a.rank = r;
  if (r > 0 && a.os[r - 1] == 1 && a.is[r - 1] == 1) {
    /* Contiguous on both sides innermost: one memcpy per row. */
    loops = r - 1;
    for (k = 0; k < loops; k++)
      moss_c_open(cg, "for (long i%d = 0; i%d < %lld; i%d++)", k, k, (long long)a.dims[k], k);
    index_text(yi, sizeof yi, a.ob, loops, a.os);
    index_text(xi, sizeof xi, a.ib, loops, a.is);
    moss_c_line(cg, "memcpy(%s + %s, %s + %s, %lld);", yname, yi, xname, xi,
                (long long)(a.dims[r - 1] * (int64_t)esz));
  } else {
    int p = -1;
    loops = r;
    /* A transposing copy (the input's contiguous axis is not the output's):
     * move that axis next to the innermost and walk both in square tiles,
     * so reads and writes each stay within a few cache lines. */
    for (k = 0; r >= 2 && a.dims[r - 1] >= 2 * TILE && k < r - 1; k++)
      if (a.is[k] == 1 && a.os[r - 1] == 1 && a.dims[k] >= 2 * TILE) p = k;
    if (p >= 0) {
      int q = r - 2;
      int64_t t;
      t = a.dims[p], a.dims[p] = a.dims[q], a.dims[q] = t;
      t = a.is[p], a.is[p] = a.is[q], a.is[q] = t;
      t = a.os[p], a.os[p] = a.os[q], a.os[q] = t;
      for (k = 0; k < q; k++)
        moss_c_open(cg, "for (long i%d = 0; i%d < %lld; i%d++)", k, k, (long long)a.dims[k], k);
      for (k = q; k < r; k++)
        moss_c_open(cg, "for (long t%d = 0; t%d < %lld; t%d += %d)", k, k, (long long)a.dims[k], k,
                    TILE);
      for (k = q; k < r; k++)
        moss_c_open(cg, "for (long i%d = t%d; i%d < (t%d + %d < %lld ? t%d + %d : %lld); i%d++)", k,
                    k, k, k, TILE, (long long)a.dims[k], k, TILE, (long long)a.dims[k], k);
      loops = r + 2;
    } else {
      for (k = 0; k < loops; k++)
        moss_c_open(cg, "for (long i%d = 0; i%d < %lld; i%d++)", k, k, (long long)a.dims[k], k);
    }
    index_text(yi, sizeof yi, a.ob, r, a.os);
    index_text(xi, sizeof xi, a.ib, r, a.is);
    moss_c_line(cg, "%s[%s] = %s[%s];", yname, yi, xname, xi);
  }
  for (k = 0; k < loops; k++) moss_c_close(cg);
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

static int64_t pad_map(const char *mode, int64_t i, int64_t d) {
  if (!strcmp(mode, "edge")) return clamp64(i, 0, d - 1);
  if (!strcmp(mode, "wrap")) return ((i % d) + d) % d;
  if (d == 1) return 0;
  {
    int64_t p = 2 * (d - 1), m = ((i % p) + p) % p;
    return m >= d ? p - m : m;
  }
}

static moss_status emit_pad(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  const char *mode = moss_attr_string(n, "mode", "constant");
  int64_t pb[MOSS_MAX_RANK], pe[MOSS_MAX_RANK], xs[MOSS_MAX_RANK], ys[MOSS_MAX_RANK];
  int64_t ny = numel(y);
  size_t esz = moss_dtype_size(x->dtype);
  int k, r = x->rank;
  char lit[64], idx[1024];
  MOSS_TRY(moss_pad_compute(cg->ctx, n, r, pb, pe));
  moss_strides(r, x->dims, xs);
  moss_strides(r, y->dims, ys);
  if (ny == 0) return MOSS_OK;
  if (!strcmp(mode, "constant")) {
    moss_affine a;
    int grows = 0, zero = 0;
    moss_value *cv = moss_node_input(n, 2);
    const char *val = lit;
    for (k = 0; k < r; k++)
      if (pb[k] > 0 || y->dims[k] - pb[k] > x->dims[k]) grows = 1;
    if (cv && cv->data && moss_value_numel(cv) > 0) {
      moss_c_lit_elem(cv, 0, lit, sizeof lit);
      zero = moss_value_get_f64(cv, 0) == 0;
    } else if (cv && !cv->data && moss_value_numel(cv) > 0) {
      val = "x2[0]";
    } else if (!cv && !moss_node_input(n, 1)) {
      double v = moss_attr_float(n, "value", 0.0f);
      moss_c_lit_f64(x->dtype, v, lit, sizeof lit);
      zero = v == 0;
    } else {
      snprintf(lit, sizeof lit, "0");
      zero = 1;
    }
    if (grows && zero)
      moss_c_line(cg, "memset(y0, 0, %lld);", (long long)(ny * (int64_t)esz));
    else if (grows) {
      moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)ny);
      moss_c_line(cg, "y0[i] = %s;", val);
      moss_c_close(cg);
    }
    /* The part of the input that lands in the output. */
    a.rank = r;
    a.ib = a.ob = 0;
    for (k = 0; k < r; k++) {
      int64_t lo = pb[k] < 0 ? -pb[k] : 0, hi = x->dims[k];
      if (y->dims[k] - pb[k] < hi) hi = y->dims[k] - pb[k];
      a.dims[k] = hi > lo ? hi - lo : 0;
      a.is[k] = xs[k];
      a.os[k] = ys[k];
      a.ib += lo * xs[k];
      a.ob += (lo + pb[k]) * ys[k];
    }
    emit_affine(cg, "y0", "x0", esz, &a);
    return MOSS_OK;
  }
  /* edge / reflect / wrap: an index table per padded axis. */
  {
    size_t len = 0;
    idx[0] = 0;
    for (k = 0; k < r; k++) {
      int64_t o;
      int padded = pb[k] != 0 || y->dims[k] != x->dims[k];
      if (padded) {
        moss_buf_printf(cg->out, "%*sstatic const long m%d[%lld] = {", 2 * (cg->indent + 2), "", k,
                        (long long)y->dims[k]);
        for (o = 0; o < y->dims[k]; o++)
          moss_buf_printf(cg->out, "%s%lld", o ? ", " : "",
                          (long long)(pad_map(mode, o - pb[k], x->dims[k]) * xs[k]));
        moss_buf_printf(cg->out, "};\n");
        len += (size_t)snprintf(idx + len, sizeof idx - len, "%sm%d[i%d]", len ? " + " : "", k, k);
      } else if (x->dims[k] > 1) {
        len += (size_t)snprintf(idx + len, sizeof idx - len, "%si%d * %lld", len ? " + " : "", k,
                                (long long)xs[k]);
      }
      if (len >= sizeof idx) return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "index too long");
    }
    if (!idx[0]) snprintf(idx, sizeof idx, "0");
    moss_c_line(cg, "long o = 0;");
    for (k = 0; k < r; k++)
      moss_c_open(cg, "for (long i%d = 0; i%d < %lld; i%d++)", k, k, (long long)y->dims[k], k);
    moss_c_line(cg, "y0[o++] = x0[%s];", idx);
    for (k = 0; k < r; k++) moss_c_close(cg);
  }
  return MOSS_OK;
}

static void emit_concat_split(moss_cgen *cg, const moss_node *n) {
  int split = n->op == MOSS_OP_Split, nparts = split ? n->noutputs : n->ninputs, i;
  const moss_value *whole = split ? n->inputs[0] : n->outputs[0];
  int64_t off = 0;
  int64_t axis = moss_attr_int(n, "axis", split ? 0 : 1);
  size_t esz = moss_dtype_size(whole->dtype);
  if (axis < 0) axis += whole->rank;
  for (i = 0; i < nparts; i++) {
    const moss_value *part = split ? n->outputs[i] : n->inputs[i];
    moss_affine a;
    char pn[16];
    if (!part) continue;
    moss_affine_compute_part(whole, part, (int)axis, off, !split, &a);
    snprintf(pn, sizeof pn, "%s%d", split ? "y" : "x", i);
    if (split)
      emit_affine(cg, pn, "x0", esz, &a);
    else
      emit_affine(cg, "y0", pn, esz, &a);
    off += part->dims[axis];
  }
}

static void emit_trilu(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0], *kv = moss_node_input(n, 1);
  int r = x->rank, upper = moss_attr_int(n, "upper", 1) != 0;
  int64_t R = x->dims[r - 2], C = x->dims[r - 1], B = R * C > 0 ? numel(x) / (R * C) : 0;
  int64_t lim = R + C + 1;
  if (numel(x) == 0) return;
  if (kv && !kv->data) {
    moss_c_line(cg, "long long kk = x1[0];");
    moss_c_line(cg, "if (kk < %lld) kk = %lld;", (long long)-lim, (long long)-lim);
    moss_c_line(cg, "if (kk > %lld) kk = %lld;", (long long)lim, (long long)lim);
  } else {
    int64_t k = kv ? moss_value_get_i64(kv, 0) : 0;
    moss_c_line(cg, "const long long kk = %lld;", (long long)clamp64(k, -lim, lim));
  }
  /* Row i keeps columns [i + k, C) (upper) or [0, i + k + 1) (lower). */
  moss_c_open(cg, "for (long b = 0; b < %lld; b++)", (long long)B);
  moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)R);
  moss_c_line(cg, "const long o = (b * %lld + i) * %lld;", (long long)R, (long long)C);
  moss_c_line(cg, "long t = (long)(i + kk%s);", upper ? "" : " + 1");
  moss_c_line(cg, "if (t < 0) t = 0;");
  moss_c_line(cg, "if (t > %lld) t = %lld;", (long long)C, (long long)C);
  if (upper) {
    moss_c_line(cg, "for (long j = 0; j < t; j++) y0[o + j] = 0;");
    moss_c_line(cg, "for (long j = t; j < %lld; j++) y0[o + j] = x0[o + j];", (long long)C);
  } else {
    moss_c_line(cg, "for (long j = 0; j < t; j++) y0[o + j] = x0[o + j];");
    moss_c_line(cg, "for (long j = t; j < %lld; j++) y0[o + j] = 0;", (long long)C);
  }
  moss_c_close(cg);
  moss_c_close(cg);
}

static void emit_reverse_sequence(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0];
  int ba = (int)moss_attr_int(n, "batch_axis", 0), ta = (int)moss_attr_int(n, "time_axis", 1);
  int64_t xs[MOSS_MAX_RANK], inner, B = x->dims[ba], T = x->dims[ta];
  size_t esz = moss_dtype_size(x->dtype);
  moss_strides(x->rank, x->dims, xs);
  inner = xs[1];
  if (numel(x) == 0) return;
  moss_c_open(cg, "for (long b = 0; b < %lld; b++)", (long long)B);
  moss_c_line(cg, "long long len = x1[b];");
  moss_c_line(cg, "if (len < 0) len = 0;");
  moss_c_line(cg, "if (len > %lld) len = %lld;", (long long)T, (long long)T);
  moss_c_open(cg, "for (long t = 0; t < %lld; t++)", (long long)T);
  moss_c_line(cg, "const long s = t < len ? (long)(len - 1 - t) : t;");
  if (inner == 1)
    moss_c_line(cg, "y0[b * %lld + t * %lld] = x0[b * %lld + s * %lld];", (long long)xs[ba],
                (long long)xs[ta], (long long)xs[ba], (long long)xs[ta]);
  else
    moss_c_line(cg, "memcpy(y0 + b * %lld + t * %lld, x0 + b * %lld + s * %lld, %lld);",
                (long long)xs[ba], (long long)xs[ta], (long long)xs[ba], (long long)xs[ta],
                (long long)(inner * (int64_t)esz));
  moss_c_close(cg);
  moss_c_close(cg);
}

static void emit_compress(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0], *c = n->inputs[1], *y = n->outputs[0];
  const moss_attr *ax = moss_node_find_attr(n, "axis");
  int a = ax ? (int)(ax->i < 0 ? ax->i + x->rank : ax->i) : -1, k;
  int64_t outer = 1, inner = 1, D = a >= 0 ? x->dims[a] : numel(x), len = c->dims[0], i, cnt = 0;
  int64_t nsel = a >= 0 ? y->dims[a] : y->dims[0];
  size_t esz = moss_dtype_size(x->dtype);
  if (numel(y) == 0) return;
  for (k = 0; a >= 0 && k < x->rank; k++) {
    if (k < a) outer *= x->dims[k];
    if (k > a) inner *= x->dims[k];
  }
  if (len > D) len = D;
  moss_buf_printf(cg->out, "%*sstatic const long s[%lld] = {", 2 * (cg->indent + 2), "",
                  (long long)nsel);
  for (i = 0; i < len; i++)
    if (moss_value_get_i64(c, i))
      moss_buf_printf(cg->out, "%s%lld", cnt++ ? ", " : "", (long long)i);
  moss_buf_printf(cg->out, "};\n");
  moss_c_open(cg, "for (long o = 0; o < %lld; o++)", (long long)outer);
  moss_c_open(cg, "for (long j = 0; j < %lld; j++)", (long long)nsel);
  if (inner == 1)
    moss_c_line(cg, "y0[o * %lld + j] = x0[o * %lld + s[j]];", (long long)nsel, (long long)D);
  else
    moss_c_line(cg, "memcpy(y0 + (o * %lld + j) * %lld, x0 + (o * %lld + s[j]) * %lld, %lld);",
                (long long)nsel, (long long)inner, (long long)D, (long long)inner,
                (long long)(inner * (int64_t)esz));
  moss_c_close(cg);
  moss_c_close(cg);
}

moss_status moss_c_emit_movement(moss_cgen *cg, const moss_node *n) {
  moss_affine a;
  switch (n->op) {
  case MOSS_OP_Concat:
  case MOSS_OP_Split: emit_concat_split(cg, n); return MOSS_OK;
  case MOSS_OP_Pad: return emit_pad(cg, n);
  case MOSS_OP_Trilu: emit_trilu(cg, n); return MOSS_OK;
  case MOSS_OP_ReverseSequence: emit_reverse_sequence(cg, n); return MOSS_OK;
  case MOSS_OP_Compress: emit_compress(cg, n); return MOSS_OK;
  default:
    if (moss_affine_compute(cg->ctx, n, &a) != MOSS_OK)
      return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n,
                       "the C backend has no code for this operator");
    emit_affine(cg, "y0", "x0", moss_dtype_size(n->inputs[0]->dtype), &a);
    return MOSS_OK;
  }
}
