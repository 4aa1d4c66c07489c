/* emit_sparse.c - C for a Gemm, MatMul or Conv whose weight the sparse
 * pass (compiler/passes/sparse.c) put in a sparse format. The weight, seen
 * as Wt [rows = outputs, cols = reduction terms] (moss_sparse_view), is
 * encoded at compile time into file-scope static const arrays: CSR
 * (row_ptr, col_idx, values) or CSR of 4x1 blocks (one column index per
 * block of 4 consecutive rows, 4 values). The dense weight is then never
 * referenced, so it is not emitted.
 *
 * Gemm and MatMul gather: each output element is a dot product of the
 * row's nonzeros with the input row at their columns; alpha, beta, C and
 * the fused activation follow as in the dense kernel. Conv scatters: for
 * each output channel, each nonzero (input channel, tap) adds its weight
 * times the strided input rows it reaches into the output plane, the valid
 * output range of each tap coming from small tables computed here, so the
 * inner loop has no bounds test and vectorizes like the dense one. */
#include <stdio.h>
#include <string.h>

#include "../../compiler/passes/sparse.h"
#include "cgen.h"

/* The encoded weight: array names in the decls. */
typedef struct enc {
  char base[24], rp[48], ci[48], v[48];
  int64_t nnz;    /* stored values (blocks * 4 for block formats) */
  int64_t groups; /* 2:4: groups of 4 columns per row */
} enc;

/* Writes "lit," for Wt[r, c] (0 when |c| is past the last column). */
static void put_value(moss_buf *d, const moss_sparse_view *v, int64_t r, int64_t c, int64_t *cnt,
                      int64_t total) {
  char lit[64];
  float x = c < v->cols ? moss_sparse_at(v, r, c) : 0.0f;
  if (*cnt % 8 == 0) moss_buf_printf(d, "\n ");
  (*cnt)++;
  if (v->dtype == MOSS_DT_F32)
    moss_buf_printf(d, " %s%s", moss_c_lit_f64(MOSS_DT_F32, (double)x, lit, sizeof lit),
                    *cnt < total ? "," : "");
  else
    moss_buf_printf(d, " %d%s", (int)x, *cnt < total ? "," : "");
}

/* The C type of the stored values. */
static const char *value_type(const moss_sparse_view *v) {
  return v->dtype == MOSS_DT_I8 ? "int8_t" : v->dtype == MOSS_DT_U8 ? "uint8_t" : "float";
}

/* 2:4: the offsets (within the group) of the 2 entries of group |g| of row
 * |r|: its nonzeros in order, then offset 0 with a stored zero. */
static void nm_offsets(const moss_sparse_view *v, int64_t r, int64_t g, int off[2]) {
  int64_t c;
  int k = 0;
  off[0] = off[1] = 0;
  for (c = 4 * g; c < 4 * g + 4 && c < v->cols; c++)
    if (moss_sparse_at(v, r, c) != 0.0f && k < 2) off[k++] = (int)(c - 4 * g);
}

/* 2:4 arrays: "<base>_col_idx" uint8 offsets and "<base>_values", 2 per
 * group of 4 columns, row after row; no row pointers. */
static void encode_nm(moss_cgen *cg, const moss_sparse_view *v, enc *e) {
  moss_buf *d = cg->decls;
  int64_t r, g, cnt = 0, total;
  int off[2];
  e->groups = (v->cols + 3) / 4;
  total = v->rows * e->groups * 2;
  moss_buf_printf(d, "static const uint8_t %s[%lld] = {", e->ci, (long long)total);
  for (r = 0; r < v->rows; r++)
    for (g = 0; g < e->groups; g++) {
      nm_offsets(v, r, g, off);
      if (cnt % 16 == 0) moss_buf_printf(d, "\n ");
      cnt += 2;
      moss_buf_printf(d, " %d, %d%s", off[0], off[1], cnt < total ? "," : "");
    }
  moss_buf_printf(d, "\n};\n");
  moss_buf_printf(d, "static const %s %s[%lld] MOSS_ALIGNED = {", value_type(v), e->v,
                  (long long)total);
  cnt = 0;
  for (r = 0; r < v->rows; r++)
    for (g = 0; g < e->groups; g++) {
      int64_t c0 = 4 * g, k;
      int nz = 0;
      nm_offsets(v, r, g, off);
      for (k = c0; k < c0 + 4 && k < v->cols; k++) nz += moss_sparse_at(v, r, k) != 0.0f;
      put_value(d, v, r, nz > 0 ? c0 + off[0] : v->cols, &cnt, total);
      put_value(d, v, r, nz > 1 ? c0 + off[1] : v->cols, &cnt, total);
    }
  moss_buf_printf(d, "\n};\n\n");
  e->nnz = total;
}

/* Is the block of format |fmt| at block row |r|, block column |c| nonzero? */
static int block_nz(const moss_sparse_view *v, int fmt, int64_t r, int64_t c) {
  int64_t k;
  for (k = 0; k < 4; k++) {
    if (fmt == MOSS_SPARSE_CSR) return moss_sparse_at(v, r, c) != 0.0f;
    if (fmt == MOSS_SPARSE_BLOCK_4x1 && moss_sparse_at(v, r * 4 + k, c) != 0.0f) return 1;
    if (fmt == MOSS_SPARSE_BLOCK_1x4 && moss_sparse_at(v, r, c * 4 + k) != 0.0f) return 1;
  }
  return 0;
}

/* Writes the arrays of |v| in format |fmt| under the names |e|: CSR of
 * single elements, of 4x1 blocks or of 1x4 blocks (column index of the
 * block's first column), or the 2:4 arrays. */
static void encode(moss_cgen *cg, const moss_node *n, const moss_sparse_view *v, int fmt, enc *e) {
  int64_t nrow = fmt == MOSS_SPARSE_BLOCK_4x1 ? v->rows / 4 : v->rows;
  int64_t ncol = fmt == MOSS_SPARSE_BLOCK_1x4 ? v->cols / 4 : v->cols;
  int64_t r, c, k, cnt, put;
  int bs = fmt == MOSS_SPARSE_CSR ? 1 : 4;
  int id = cg->uid++;
  moss_buf *d = cg->decls;
  memset(e, 0, sizeof *e);
  snprintf(e->base, sizeof e->base, "sw%d", id);
  snprintf(e->rp, sizeof e->rp, "sw%d_row_ptr", id);
  snprintf(e->ci, sizeof e->ci, "sw%d_col_idx", id);
  snprintf(e->v, sizeof e->v, "sw%d_values", id);
  moss_buf_printf(d, "/* node '%s' (%s): weight '%s' as %s, %lld x %lld */\n", n->name,
                  n->op_type, n->inputs[v->winput]->name, moss_sparse_format_name(fmt),
                  (long long)v->rows, (long long)v->cols);
  if (fmt == MOSS_SPARSE_NM_2_4) {
    encode_nm(cg, v, e);
    return;
  }
  /* Row pointers (and the count of stored entries). */
  moss_buf_printf(d, "static const int32_t %s[%lld] = {", e->rp, (long long)(nrow + 1));
  cnt = 0;
  for (r = 0; r <= nrow; r++) {
    if (r % 16 == 0) moss_buf_printf(d, "\n ");
    moss_buf_printf(d, " %lld%s", (long long)cnt, r < nrow ? "," : "");
    if (r == nrow) break;
    for (c = 0; c < ncol; c++) cnt += block_nz(v, fmt, r, c);
  }
  moss_buf_printf(d, "\n};\n");
  /* Column indices: one per stored entry (a nonzero or a nonzero block). */
  /* 16-bit column indices where they fit: half the index traffic. */
  moss_buf_printf(d, "static const %s %s[%lld] = {", v->cols <= 65536 ? "uint16_t" : "int32_t", e->ci,
                  (long long)(cnt > 0 ? cnt : 1));
  if (cnt == 0) moss_buf_printf(d, "0");
  put = 0;
  for (r = 0; r < nrow; r++)
    for (c = 0; c < ncol; c++)
      if (block_nz(v, fmt, r, c)) {
        if (put % 16 == 0) moss_buf_printf(d, "\n ");
        put++;
        moss_buf_printf(d, " %lld%s", (long long)(fmt == MOSS_SPARSE_BLOCK_1x4 ? c * 4 : c),
                        put < cnt ? "," : "");
      }
  moss_buf_printf(d, "\n};\n");
  /* Values, |bs| per entry. */
  moss_buf_printf(d, "static const %s %s[%lld] MOSS_ALIGNED = {", value_type(v), e->v,
                  (long long)(cnt > 0 ? cnt * bs : 1));
  if (cnt == 0) moss_buf_printf(d, "0");
  put = 0;
  for (r = 0; r < nrow; r++)
    for (c = 0; c < ncol; c++) {
      if (!block_nz(v, fmt, r, c)) continue;
      for (k = 0; k < bs; k++) {
        if (fmt == MOSS_SPARSE_BLOCK_4x1) put_value(d, v, r * 4 + k, c, &put, cnt * bs);
        else if (fmt == MOSS_SPARSE_BLOCK_1x4) put_value(d, v, r, c * 4 + k, &put, cnt * bs);
        else put_value(d, v, r, c, &put, cnt * bs);
      }
    }
  moss_buf_printf(d, "\n};\n\n");
  e->nnz = put;
}

static void comment(moss_cgen *cg, const moss_sparse_view *v, int fmt, const enc *e) {
  int64_t nz = 0, r, c;
  for (r = 0; r < v->rows; r++)
    for (c = 0; c < v->cols; c++)
      if (moss_sparse_at(v, r, c) != 0.0f) nz++;
  moss_c_line(cg, "/* sparse %s: %lld of %lld weights nonzero, %lld values stored */",
              moss_sparse_format_name(fmt), (long long)nz, (long long)(v->rows * v->cols),
              (long long)e->nnz);
}

/* ---- Gemm and MatMul ------------------------------------------------- */

typedef struct lin {
  int64_t M, K, N;
  double alpha, beta;
  const moss_value *c; /* Gemm's C or NULL */
  int64_t cm, cn;      /* C's dims padded to rank 2 */
} lin;

/* The stored value for accumulated |s| at output row "i", column |col|. */
static void epilogue(const moss_node *n, const lin *p, const char *s, const char *col, char *out,
                     size_t cap) {
  char cidx[128];
  if (p->cm != 1 && p->cn != 1)
    snprintf(cidx, sizeof cidx, "i * %lld + %s", (long long)p->cn, col);
  else if (p->cm != 1)
    snprintf(cidx, sizeof cidx, "i");
  else if (p->cn != 1)
    snprintf(cidx, sizeof cidx, "%s", col);
  else
    snprintf(cidx, sizeof cidx, "0");
  moss_c_gemm_epilogue(n, MOSS_DT_F32, p->alpha, p->beta, p->c ? cidx : NULL, s, out, cap);
}

static moss_status emit_linear(moss_cgen *cg, const moss_node *n, const moss_sparse_view *v) {
  const moss_value *y = n->outputs[0];
  lin p;
  enc e;
  char ex[1024], s[16], col[32];
  int k;
  memset(&p, 0, sizeof p);
  p.K = v->cols;
  p.N = v->rows;
  p.M = moss_value_numel(y) / p.N;
  p.alpha = 1.0;
  if (n->op == MOSS_OP_Gemm) {
    p.alpha = moss_attr_float(n, "alpha", 1.0f);
    p.beta = moss_attr_float(n, "beta", 1.0f);
    p.c = moss_node_input(n, 2);
    if (p.c) {
      p.cm = p.c->rank == 2 ? p.c->dims[0] : 1;
      p.cn = p.c->rank >= 1 ? p.c->dims[p.c->rank - 1] : 1;
    }
  }
  encode(cg, n, v, n->sparse, &e);
  comment(cg, v, n->sparse, &e);
  if (p.M == 0) {
    moss_c_line(cg, "/* empty output */");
    return MOSS_OK;
  }
  moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)p.M);
  moss_c_line(cg, "const float *ar = x0 + i * %lld;", (long long)p.K);
  moss_c_line(cg, "float *yr = y0 + i * %lld;", (long long)p.N);
  if (n->sparse == MOSS_SPARSE_CSR) {
    moss_c_open(cg, "for (long r = 0; r < %lld; r++)", (long long)p.N);
    /* Four partial sums hide the add latency (reassociation stays within
     * the float tolerance of the dense twin). */
    moss_c_line(cg, "long q = %s[r], qe = %s[r + 1];", e.rp, e.rp);
    moss_c_line(cg, "float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s;");
    moss_c_open(cg, "for (; q + 4 <= qe; q += 4)");
    moss_c_line(cg, "s0 += %s[q] * ar[%s[q]];", e.v, e.ci);
    moss_c_line(cg, "s1 += %s[q + 1] * ar[%s[q + 1]];", e.v, e.ci);
    moss_c_line(cg, "s2 += %s[q + 2] * ar[%s[q + 2]];", e.v, e.ci);
    moss_c_line(cg, "s3 += %s[q + 3] * ar[%s[q + 3]];", e.v, e.ci);
    moss_c_close(cg);
    moss_c_line(cg, "for (; q < qe; q++) s0 += %s[q] * ar[%s[q]];", e.v, e.ci);
    moss_c_line(cg, "s = (s0 + s1) + (s2 + s3);");
    epilogue(n, &p, "s", "r", ex, sizeof ex);
    moss_c_line(cg, "yr[r] = %s;", ex);
    moss_c_close(cg);
  } else if (n->sparse == MOSS_SPARSE_BLOCK_1x4) {
    /* One 4-wide block: 4 contiguous weights times 4 contiguous inputs. */
    moss_c_open(cg, "for (long r = 0; r < %lld; r++)", (long long)p.N);
    moss_c_line(cg, "float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s;");
    moss_c_open(cg, "for (long q = %s[r]; q < %s[r + 1]; q++)", e.rp, e.rp);
    moss_c_line(cg, "const float *a = ar + %s[q];", e.ci);
    moss_c_line(cg, "const float *w = %s + q * 4;", e.v);
    moss_c_line(cg, "s0 += w[0] * a[0];");
    moss_c_line(cg, "s1 += w[1] * a[1];");
    moss_c_line(cg, "s2 += w[2] * a[2];");
    moss_c_line(cg, "s3 += w[3] * a[3];");
    moss_c_close(cg);
    moss_c_line(cg, "s = (s0 + s1) + (s2 + s3);");
    epilogue(n, &p, "s", "r", ex, sizeof ex);
    moss_c_line(cg, "yr[r] = %s;", ex);
    moss_c_close(cg);
  } else if (n->sparse == MOSS_SPARSE_NM_2_4) {
    /* 2 multiply-adds per group of 4 inputs, at the stored offsets. */
    moss_c_open(cg, "for (long r = 0; r < %lld; r++)", (long long)p.N);
    moss_c_line(cg, "const float *w = %s + r * %lld;", e.v, (long long)(2 * e.groups));
    moss_c_line(cg, "const uint8_t *o = %s + r * %lld;", e.ci, (long long)(2 * e.groups));
    moss_c_line(cg, "float s0 = 0, s1 = 0, s;");
    moss_c_open(cg, "for (long g = 0; g < %lld; g++)", (long long)e.groups);
    moss_c_line(cg, "s0 += w[2 * g] * ar[4 * g + o[2 * g]];");
    moss_c_line(cg, "s1 += w[2 * g + 1] * ar[4 * g + o[2 * g + 1]];");
    moss_c_close(cg);
    moss_c_line(cg, "s = s0 + s1;");
    epilogue(n, &p, "s", "r", ex, sizeof ex);
    moss_c_line(cg, "yr[r] = %s;", ex);
    moss_c_close(cg);
  } else {
    moss_c_open(cg, "for (long r = 0; r < %lld; r += 4)", (long long)p.N);
    moss_c_line(cg, "float s0 = 0, s1 = 0, s2 = 0, s3 = 0;");
    moss_c_open(cg, "for (long q = %s[r / 4]; q < %s[r / 4 + 1]; q++)", e.rp, e.rp);
    moss_c_line(cg, "const float a = ar[%s[q]];", e.ci);
    moss_c_line(cg, "const float *w = %s + q * 4;", e.v);
    moss_c_line(cg, "s0 += w[0] * a;");
    moss_c_line(cg, "s1 += w[1] * a;");
    moss_c_line(cg, "s2 += w[2] * a;");
    moss_c_line(cg, "s3 += w[3] * a;");
    moss_c_close(cg);
    for (k = 0; k < 4; k++) {
      snprintf(s, sizeof s, "s%d", k);
      snprintf(col, sizeof col, "(r + %d)", k);
      epilogue(n, &p, s, col, ex, sizeof ex);
      moss_c_line(cg, "yr[r + %d] = %s;", k, ex);
    }
    moss_c_close(cg);
  }
  moss_c_close(cg);
  return MOSS_OK;
}

/* ---- Conv -------------------------------------------------------------- */

static int64_t floordiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int64_t ceildiv(int64_t a, int64_t b) { return -floordiv(-a, b); }

/* Range [lo, hi) of output positions o in [0, no) with 0 <= o*s + off < lim. */
static void range(int64_t no, int64_t s, int64_t off, int64_t lim, int64_t *lo, int64_t *hi) {
  *lo = ceildiv(-off, s);
  *hi = floordiv(lim - 1 - off, s) + 1;
  if (*lo < 0) *lo = 0;
  if (*hi > no) *hi = no;
  if (*hi < *lo) *hi = *lo;
}

static void pair(const moss_node *n, const char *name, int cnt, int64_t def, int64_t *out) {
  const int64_t *a;
  int c = moss_attr_ints(n, name, &a), k;
  for (k = 0; k < cnt; k++) out[k] = a && c == cnt ? a[k] : def;
}

/* One table "static const long <name>[cnt] = {...};" into the decls. */
/* A one-entry table gets an unused second entry: gcc folds a load from a
 * one-element constant array to that element whatever the index, which for
 * a 1x1 kernel makes the inner loops' bounds invariant (see conv_entries). */
static void table(moss_cgen *cg, const char *name, const int64_t *t, int64_t cnt) {
  int64_t k;
  moss_buf_printf(cg->decls, "static const long %s[%lld] = {", name, (long long)(cnt < 2 ? 2 : cnt));
  for (k = 0; k < cnt; k++) moss_buf_printf(cg->decls, "%s%lld", k ? ", " : "", (long long)t[k]);
  moss_buf_printf(cg->decls, "%s};\n", cnt < 2 ? ", 0" : "");
}

/* The geometry of a 2-D convolution as the sparse kernels see it: pads
 * resolved from auto_pad, a pointwise convolution over the whole plane
 * flattened to one long row, and per kernel row (column) the range of
 * output rows (columns) whose tap lands inside the input, as the tables
 * "<base>_oh_lo", "_oh_hi", "_ow_lo", "_ow_hi" in the decls. */
typedef struct conv_geom {
  int64_t B, C, M, H, W, OH, OW, KH, KW, KK;
  int64_t s[2], d[2], p[2];
  char lo[2][64], hi[2][64]; /* table names: [0] rows, [1] columns */
  char sj[32];               /* the input column of output column j, from the row's start */
} conv_geom;

static moss_status conv_geometry(moss_cgen *cg, const moss_node *n, const moss_value *x,
                                 const moss_value *w, const moss_value *y, const char *base,
                                 conv_geom *gm) {
  const char *ap = moss_attr_string(n, "auto_pad", "NOTSET");
  int64_t pads[4], kk, lo[64], hi[64];
  int k;
  memset(gm, 0, sizeof *gm);
  gm->B = x->dims[0];
  gm->C = x->dims[1];
  gm->M = w->dims[0];
  gm->H = x->dims[2];
  gm->W = x->dims[3];
  gm->OH = y->dims[2];
  gm->OW = y->dims[3];
  gm->KH = w->dims[2];
  gm->KW = w->dims[3];
  gm->KK = gm->KH * gm->KW;
  pair(n, "strides", 2, 1, gm->s);
  pair(n, "dilations", 2, 1, gm->d);
  pair(n, "pads", 4, 0, pads);
  for (k = 0; k < 2; k++) {
    int64_t ek = (w->dims[k + 2] - 1) * gm->d[k] + 1, in = x->dims[k + 2], out = y->dims[k + 2];
    int64_t total = (out - 1) * gm->s[k] + ek - in;
    if (total < 0) total = 0;
    if (!strcmp(ap, "NOTSET")) gm->p[k] = pads[k];
    else if (!strcmp(ap, "SAME_UPPER")) gm->p[k] = total / 2;
    else if (!strcmp(ap, "SAME_LOWER")) gm->p[k] = total - total / 2;
    else gm->p[k] = 0;
  }
  if (gm->KK == 1 && gm->s[0] == 1 && gm->s[1] == 1 && gm->p[0] == 0 && gm->p[1] == 0 &&
      gm->H == gm->OH && gm->W == gm->OW) {
    gm->W = gm->OW = gm->H * gm->W;
    gm->H = gm->OH = 1;
  }
  if (gm->KH > 64 || gm->KW > 64)
    return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "sparse kernel wider than 64 taps");
  if (gm->s[1] == 1) snprintf(gm->sj, sizeof gm->sj, "j");
  else snprintf(gm->sj, sizeof gm->sj, "j * %lld", (long long)gm->s[1]);
  for (k = 0; k < 2; k++) {
    snprintf(gm->lo[k], sizeof gm->lo[k], "%s_%s_lo", base, k ? "ow" : "oh");
    snprintf(gm->hi[k], sizeof gm->hi[k], "%s_%s_hi", base, k ? "ow" : "oh");
  }
  for (kk = 0; kk < gm->KH; kk++)
    range(gm->OH, gm->s[0], kk * gm->d[0] - gm->p[0], gm->H, &lo[kk], &hi[kk]);
  table(cg, gm->lo[0], lo, gm->KH);
  table(cg, gm->hi[0], hi, gm->KH);
  for (kk = 0; kk < gm->KW; kk++)
    range(gm->OW, gm->s[1], kk * gm->d[1] - gm->p[1], gm->W, &lo[kk], &hi[kk]);
  table(cg, gm->lo[1], lo, gm->KW);
  table(cg, gm->hi[1], hi, gm->KW);
  moss_buf_printf(cg->decls, "\n");
  return MOSS_OK;
}

/* Opens the loop over output channel m's stored entries and declares the
 * entry's reduction term c (and kh, kw, and xo: the offset of the tap's
 * input row start, for output row 0) and, except for block4x1 (4 weights
 * at wq = values + q * 4), its weight wv of type |wt|. With |taps|, kh and
 * kw are loaded from the tables "<base>_kh"/"_kw" (one byte per term)
 * instead of computed: the int8 kernel needs that, for when the kernel is
 * 1x1 they would be the constant 0, the inner loop's bounds would be
 * invariant, and gcc -O3 would unroll-and-jam the entry loop into a scalar
 * loop (measured 3x slower on a 128-channel 1x1 convolution). */
static void conv_entries(moss_cgen *cg, const conv_geom *gm, int fmt, const enc *e,
                         const char *wt, int taps) {
  if (fmt == MOSS_SPARSE_DENSE) { /* every term, from the dense weight |e->v| */
    moss_c_open(cg, "for (long c = 0; c < %lld; c++)", (long long)(gm->C * gm->KK));
    moss_c_line(cg, "const %s wv = %s[m * %lld + c];", wt, e->v, (long long)(gm->C * gm->KK));
  } else if (fmt == MOSS_SPARSE_NM_2_4) {
    moss_c_open(cg, "for (long q = m * %lld; q < (m + 1) * %lld; q++)", (long long)(2 * e->groups),
                (long long)(2 * e->groups));
    moss_c_line(cg, "const %s wv = %s[q];", wt, e->v);
    moss_c_line(cg, "if (wv == 0) continue; /* padding of a group with < 2 nonzeros */");
    moss_c_line(cg, "const long c = (q %% %lld) / 2 * 4 + %s[q];", (long long)(2 * e->groups), e->ci);
  } else if (fmt == MOSS_SPARSE_BLOCK_1x4) {
    moss_c_open(cg, "for (long q4 = %s[m] * 4; q4 < %s[m + 1] * 4; q4++)", e->rp, e->rp);
    moss_c_line(cg, "const %s wv = %s[q4];", wt, e->v);
    moss_c_line(cg, "if (wv == 0) continue; /* a zero inside the block */");
    moss_c_line(cg, "const long c = %s[q4 / 4] + q4 %% 4;", e->ci);
  } else {
    int block = fmt == MOSS_SPARSE_BLOCK_4x1;
    moss_c_open(cg, "for (long q = %s[m%s]; q < %s[m%s + 1]; q++)", e->rp, block ? " / 4" : "",
                e->rp, block ? " / 4" : "");
    moss_c_line(cg, "const long c = %s[q];", e->ci);
    if (block) moss_c_line(cg, "const %s *wq = %s + q * 4;", wt, e->v);
    else moss_c_line(cg, "const %s wv = %s[q];", wt, e->v);
  }
  if (taps) {
    int64_t c, cols = gm->C * gm->KK;
    for (int k = 0; k < 2; k++) {
      moss_buf_printf(cg->decls, "static const uint8_t %s_%s[%lld] = {", e->base, k ? "kw" : "kh",
                      (long long)cols);
      for (c = 0; c < cols; c++)
        moss_buf_printf(cg->decls, "%s%s%lld", c ? "," : "", c % 32 ? " " : "\n  ",
                        (long long)(k ? c % gm->KW : c % gm->KK / gm->KW));
      moss_buf_printf(cg->decls, "\n};\n");
    }
    moss_c_line(cg, "const long ch = c / %lld, kh = %s_kh[c], kw = %s_kw[c];", (long long)gm->KK,
                e->base, e->base);
  } else {
    moss_c_line(cg, "const long ch = c / %lld, kh = c %% %lld / %lld, kw = c %% %lld;",
                (long long)gm->KK, (long long)gm->KK, (long long)gm->KW, (long long)gm->KW);
  }
  moss_c_line(cg, "const long xo = ch * %lld + (kh * %lld - %lld) * %lld + kw * %lld - %lld;",
              (long long)(gm->H * gm->W), (long long)gm->d[0], (long long)gm->p[0],
              (long long)gm->W, (long long)gm->d[1], (long long)gm->p[1]);
}

static moss_status emit_conv(moss_cgen *cg, const moss_node *n, const moss_sparse_view *v) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1], *y = n->outputs[0];
  int block = n->sparse == MOSS_SPARSE_BLOCK_4x1;
  int64_t P;
  enc e;
  conv_geom gm;
  encode(cg, n, v, n->sparse, &e);
  MOSS_TRY(conv_geometry(cg, n, x, w, y, e.base, &gm));
  P = gm.OH * gm.OW;
  comment(cg, v, n->sparse, &e);
  moss_c_open(cg, "for (long b = 0; b < %lld; b++)", (long long)gm.B);
  moss_c_line(cg, "const float *xb = x0 + b * %lld;", (long long)(gm.C * gm.H * gm.W));
  moss_c_open(cg, "for (long m = 0; m < %lld; m%s)", (long long)gm.M, block ? " += 4" : "++");
  moss_c_line(cg, "float *ym = y0 + (b * %lld + m) * %lld;", (long long)gm.M, (long long)P);
  if (moss_node_input(n, 2))
    moss_c_line(cg, "for (long t = 0; t < %d; t++) for (long j = 0; j < %lld; j++) "
                "ym[t * %lld + j] = x2[m + t];", block ? 4 : 1, (long long)P, (long long)P);
  else
    moss_c_line(cg, "for (long j = 0; j < %lld; j++) ym[j] = 0;", (long long)((block ? 4 : 1) * P));
  /* One stored entry (c, wv) at a time; block4x1 takes 4 weights per entry. */
  conv_entries(cg, &gm, n->sparse, &e, "float", 0);
  if (block) moss_c_line(cg, "const float wa = wq[0], wb = wq[1], wc = wq[2], wd = wq[3];");
  moss_c_open(cg, "for (long oh = %s[kh]; oh < %s[kh]; oh++)", gm.lo[0], gm.hi[0]);
  moss_c_line(cg, "const long rb = oh * %lld + xo;", (long long)(gm.s[0] * gm.W));
  if (block) {
    moss_c_line(cg, "float *restrict ya = ym + oh * %lld;", (long long)gm.OW);
    moss_c_line(cg, "float *restrict yb = ya + %lld;", (long long)P);
    moss_c_line(cg, "float *restrict yc = yb + %lld;", (long long)P);
    moss_c_line(cg, "float *restrict yd = yc + %lld;", (long long)P);
    moss_c_open(cg, "for (long j = %s[kw]; j < %s[kw]; j++)", gm.lo[1], gm.hi[1]);
    moss_c_line(cg, "const float xv = xb[rb + %s];", gm.sj);
    moss_c_line(cg, "ya[j] += wa * xv;");
    moss_c_line(cg, "yb[j] += wb * xv;");
    moss_c_line(cg, "yc[j] += wc * xv;");
    moss_c_line(cg, "yd[j] += wd * xv;");
    moss_c_close(cg);
  } else {
    moss_c_line(cg, "float *restrict yr = ym + oh * %lld;", (long long)gm.OW);
    moss_c_line(cg, "for (long j = %s[kw]; j < %s[kw]; j++) yr[j] += wv * xb[rb + %s];", gm.lo[1],
                gm.hi[1], gm.sj);
  }
  moss_c_close(cg); /* oh */
  moss_c_close(cg); /* q */
  if (n->act.kind != MOSS_ACT_NONE) {
    char ex[512];
    moss_c_line(cg, "for (long j = 0; j < %lld; j++) ym[j] = %s;", (long long)((block ? 4 : 1) * P),
                moss_c_act(n, "ym[j]", ex, sizeof ex));
  }
  moss_c_close(cg); /* m */
  moss_c_close(cg); /* b */
  return MOSS_OK;
}

/* ---- int8: QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger, MossQGemm */

/* These share one input layout: QLinear* and MossQGemm x 0, x_scale 1,
 * x_zp 2, w 3, w_scale 4, w_zp 5, y_scale 6, y_zp 7, bias 8 (QLinearConv,
 * MossQGemm); ConvInteger and MatMulInteger x 0, w 1, x_zp 2, w_zp 3 and an
 * int32 output. The weight's zero points are 0 (the sparse pass checks), so
 * sum (x - x_zp) * w runs over the stored weights only and every sum is an
 * exact integer: the output equals the dense kernel's bit for bit. */
typedef struct qio {
  int requant;     /* 1: QLinear* and MossQGemm (8-bit output); 0: int32 output */
  char xz[64];     /* the input's zero point: "0", "(int32_t)x2[0]" */
  char yz[64];     /* the output's zero point */
  char bias[64];   /* " + x8[<row>]", or "" */
  char qm[64], qs[64]; /* the multiplier of output row "r": constant or table[r] */
} qio;

/* Fills |q|; the per-output multipliers x_scale * w_scale[r] / y_scale go
 * to tables "<base>_qm"/"<base>_qs" when w_scale has more than one. */
static void qio_init(moss_cgen *cg, const moss_node *n, const moss_sparse_view *v,
                     const char *base, const char *row, qio *q) {
  memset(q, 0, sizeof *q);
  q->requant = v->winput == 3;
  snprintf(q->xz, sizeof q->xz, moss_node_input(n, 2) ? "(int32_t)x2[0]" : "0");
  snprintf(q->yz, sizeof q->yz, q->requant && moss_node_input(n, 7) ? "(int32_t)x7[0]" : "0");
  if (q->requant && moss_node_input(n, 8)) snprintf(q->bias, sizeof q->bias, " + x8[%s]", row);
  if (q->requant) {
    const moss_value *ws = n->inputs[4];
    double sx = ((const float *)n->inputs[1]->data)[0], sy = ((const float *)n->inputs[6]->data)[0];
    int64_t r, nw = moss_value_numel(ws);
    moss_requant rq;
    moss_c_need_requant(cg);
    if (nw == 1) {
      moss_requant_compute(sx * ((const float *)ws->data)[0] / sy, &rq);
      snprintf(q->qm, sizeof q->qm, "%ld", (long)rq.mult);
      snprintf(q->qs, sizeof q->qs, "%d", rq.shift);
      return;
    }
    for (int pass = 0; pass < 2; pass++) {
      moss_buf_printf(cg->decls, "static const %s %s_%s[%lld] = {", pass ? "int" : "int32_t", base,
                      pass ? "qs" : "qm", (long long)nw);
      for (r = 0; r < nw; r++) {
        moss_requant_compute(sx * ((const float *)ws->data)[r] / sy, &rq);
        if (r % 8 == 0) moss_buf_printf(cg->decls, "\n ");
        moss_buf_printf(cg->decls, " %ld%s", pass ? (long)rq.shift : (long)rq.mult,
                        r + 1 < nw ? "," : "");
      }
      moss_buf_printf(cg->decls, "\n};\n");
    }
    snprintf(q->qm, sizeof q->qm, "%s_qm[%s]", base, row);
    snprintf(q->qs, sizeof q->qs, "%s_qs[%s]", base, row);
  }
}

/* Stores the finished sum |acc| (int32, bias included) of output row "r"
 * at y0[|at|]. */
static void qstore(moss_cgen *cg, const moss_node *n, const qio *q, const char *at,
                   const char *acc) {
  if (!q->requant) {
    moss_c_line(cg, "y0[%s] = %s;", at, acc);
    return;
  }
  moss_c_line(cg, "const int32_t v = %s + moss_requant(%s, %s, %s);", q->yz, acc, q->qm, q->qs);
  moss_c_store_clamped(cg, n, n->outputs[0]->dtype, at, "v");
}

/* Conv, int8: the output plane of one channel (of 4 for block4x1) in
 * tiles of whole output rows (a row longer than QCAP / 4 is cut in column
 * tiles), each held in int32 accumulators on the stack, at most QCAP of
 * them (16 KiB). Every stored entry adds w * (x - x_zp) over the rows its
 * kernel row and the columns its kernel column reach inside the input;
 * taps in the padding add nothing, as in the dense kernel (which pads with
 * x_zp). Then the tile is requantized and stored. */
#define QCAP 4096

static moss_status emit_qconv(moss_cgen *cg, const moss_node *n, const moss_sparse_view *v) {
  const moss_value *x = n->inputs[0], *w = n->inputs[v->winput], *y = n->outputs[0];
  const char *wt = value_type(v), *xt = moss_dtype_ctype(x->dtype);
  int block = n->sparse == MOSS_SPARSE_BLOCK_4x1, nt = block ? 4 : 1;
  int64_t T, R;
  enc e;
  conv_geom gm;
  qio q;
  char at[160];
  if (moss_value_numel(y) <= 0) return MOSS_OK;
  if (n->sparse) {
    encode(cg, n, v, n->sparse, &e);
  } else { /* the dense twin: the same loops over every term of the weight */
    memset(&e, 0, sizeof e);
    snprintf(e.base, sizeof e.base, "qc%d", cg->uid++);
    snprintf(e.v, sizeof e.v, "x%d", v->winput);
  }
  MOSS_TRY(conv_geometry(cg, n, x, w, y, e.base, &gm));
  T = gm.OW < QCAP / 4 ? gm.OW : QCAP / 4; /* columns per tile */
  R = T < gm.OW ? 1 : QCAP / (nt * T);      /* rows per tile */
  if (R > gm.OH) R = gm.OH;
  if (n->sparse) comment(cg, v, n->sparse, &e);
  else moss_c_line(cg, "/* dense int8 weights, every term */");
  qio_init(cg, n, v, e.base, "m + t", &q);
  moss_c_line(cg, "const int16_t xz = (int16_t)%s;", q.xz);
  moss_c_open(cg, "for (long b = 0; b < %lld; b++)", (long long)gm.B);
  moss_c_line(cg, "const %s *xb = x0 + b * %lld;", xt, (long long)(gm.C * gm.H * gm.W));
  moss_c_open(cg, "for (long m = 0; m < %lld; m%s)", (long long)gm.M, block ? " += 4" : "++");
  moss_c_open(cg, "for (long r0 = 0; r0 < %lld; r0 += %lld)", (long long)gm.OH, (long long)R);
  moss_c_open(cg, "for (long j0 = 0; j0 < %lld; j0 += %lld)", (long long)gm.OW, (long long)T);
  moss_c_line(cg, "const long re = r0 + %lld < %lld ? r0 + %lld : %lld;", (long long)R,
              (long long)gm.OH, (long long)R, (long long)gm.OH);
  moss_c_line(cg, "const long je = j0 + %lld < %lld ? j0 + %lld : %lld;", (long long)T,
              (long long)gm.OW, (long long)T, (long long)gm.OW);
  moss_c_line(cg, "int32_t acc[%d][%lld];", nt, (long long)(R * T));
  moss_c_line(cg, "for (long t = 0; t < %d; t++) for (long i = 0; i < %lld; i++) acc[t][i] = 0%s;",
              nt, (long long)(R * T), q.bias);
  conv_entries(cg, &gm, n->sparse, &e, wt, 1);
  moss_c_line(cg, "const long ra = %s[kh] > r0 ? %s[kh] : r0, rz = %s[kh] < re ? %s[kh] : re;",
              gm.lo[0], gm.lo[0], gm.hi[0], gm.hi[0]);
  moss_c_line(cg, "const long lo = %s[kw] > j0 ? %s[kw] : j0, hi = %s[kw] < je ? %s[kw] : je;",
              gm.lo[1], gm.lo[1], gm.hi[1], gm.hi[1]);
  moss_c_line(cg, "if (lo >= hi || ra >= rz) continue;");
  /* (x - x_zp) and w fit int16, so does their product: 16-bit multiplies,
   * widened to int32 on the add (x86 has no fast 32-bit multiply). */
  if (block) moss_c_line(cg, "const int16_t wa = wq[0], wb = wq[1], wc = wq[2], wd = wq[3];");
  else moss_c_line(cg, "const int16_t wi = wv;");
  moss_c_open(cg, "for (long oh = ra; oh < rz; oh++)");
  moss_c_line(cg, "const %s *restrict xr = xb + (oh * %lld + xo + lo * %lld);", xt,
              (long long)(gm.s[0] * gm.W), (long long)gm.s[1]);
  moss_c_line(cg, "const long o = (oh - r0) * %lld + lo - j0;", (long long)T);
  if (block) {
    moss_c_line(cg, "int32_t *restrict ya = acc[0] + o, *restrict yb = acc[1] + o;");
    moss_c_line(cg, "int32_t *restrict yc = acc[2] + o, *restrict yd = acc[3] + o;");
    moss_c_open(cg, "for (long j = 0; j < hi - lo; j++)");
    moss_c_line(cg, "const int16_t xv = (int16_t)(xr[%s] - xz);", gm.sj);
    moss_c_line(cg, "ya[j] += wa * xv;");
    moss_c_line(cg, "yb[j] += wb * xv;");
    moss_c_line(cg, "yc[j] += wc * xv;");
    moss_c_line(cg, "yd[j] += wd * xv;");
    moss_c_close(cg);
  } else {
    moss_c_line(cg, "int32_t *restrict ar = acc[0] + o;");
    moss_c_line(cg, "for (long j = 0; j < hi - lo; j++) ar[j] += wi * (int16_t)(xr[%s] - xz);", gm.sj);
  }
  moss_c_close(cg); /* oh */
  moss_c_close(cg); /* q */
  moss_c_open(cg, "for (long t = 0; t < %d; t++)", nt);
  moss_c_open(cg, "for (long oh = r0; oh < re; oh++)");
  moss_c_open(cg, "for (long j = j0; j < je; j++)");
  moss_c_line(cg, "const int32_t s = acc[t][(oh - r0) * %lld + j - j0];", (long long)T);
  snprintf(at, sizeof at, "((b * %lld + m + t) * %lld + oh) * %lld + j", (long long)gm.M,
           (long long)gm.OH, (long long)gm.OW);
  qstore(cg, n, &q, at, "s");
  moss_c_close(cg);
  moss_c_close(cg);
  moss_c_close(cg); /* t */
  moss_c_close(cg); /* j0 */
  moss_c_close(cg); /* r0 */
  moss_c_close(cg); /* m */
  moss_c_close(cg); /* b */
  return MOSS_OK;
}

/* Gemm and MatMul, int8 (CSR): each output is the dot product of the row's
 * stored weights with the input row at their columns, less x_zp times the
 * row's weight sum (a table), plus the bias. */
static moss_status emit_qlinear(moss_cgen *cg, const moss_node *n, const moss_sparse_view *v) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0], *xzv = moss_node_input(n, 2);
  int64_t K = v->cols, N = v->rows, M = moss_value_numel(y) / N, r, c, cnt = 0;
  int64_t rowsM = x->rank >= 2 ? x->dims[x->rank - 2] : 1;
  enc e;
  qio q;
  char rs[64], at[64];
  if (n->sparse != MOSS_SPARSE_CSR)
    return moss_fail(cg->ctx, MOSS_E_INTERNAL, n, "int8 %s weights take CSR only, not %s",
                     n->op_type, moss_sparse_format_name(n->sparse));
  encode(cg, n, v, n->sparse, &e);
  snprintf(rs, sizeof rs, "%s_sum", e.base);
  moss_buf_printf(cg->decls, "static const int32_t %s[%lld] = {", rs, (long long)N);
  for (r = 0; r < N; r++) {
    int64_t sum = 0;
    for (c = 0; c < K; c++) sum += (int64_t)moss_sparse_at(v, r, c);
    if (cnt++ % 8 == 0) moss_buf_printf(cg->decls, "\n ");
    moss_buf_printf(cg->decls, " %lld%s", (long long)sum, r + 1 < N ? "," : "");
  }
  moss_buf_printf(cg->decls, "\n};\n\n");
  comment(cg, v, n->sparse, &e);
  qio_init(cg, n, v, e.base, "r", &q);
  if (M <= 0) {
    moss_c_line(cg, "/* empty output */");
    return MOSS_OK;
  }
  moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)M);
  moss_c_line(cg, "const %s *xr = x0 + i * %lld;", moss_dtype_ctype(x->dtype), (long long)K);
  if (xzv && moss_value_numel(xzv) > 1) /* MatMulInteger: a zero point per row of A */
    moss_c_line(cg, "const int64_t xz = (int64_t)x2[i %% %lld];", (long long)rowsM);
  else
    moss_c_line(cg, "const int64_t xz = %s;", q.xz);
  moss_c_open(cg, "for (long r = 0; r < %lld; r++)", (long long)N);
  moss_c_line(cg, "int32_t s = 0;");
  moss_c_line(cg, "for (long p = %s[r]; p < %s[r + 1]; p++) s += (int32_t)xr[%s[p]] * (int32_t)%s[p];",
              e.rp, e.rp, e.ci, e.v);
  moss_c_line(cg, "const int32_t acc = (int32_t)((int64_t)s - xz * %s[r]%s);", rs, q.bias);
  snprintf(at, sizeof at, "i * %lld + r", (long long)N);
  qstore(cg, n, &q, at, "acc");
  moss_c_close(cg);
  moss_c_close(cg);
  return MOSS_OK;
}

moss_status moss_c_emit_qconv(moss_cgen *cg, const moss_node *n) {
  moss_sparse_view v;
  if (n->sparse) return moss_c_emit_sparse(cg, n);
  if (!moss_sparse_view_get(n, &v) || v.dtype == MOSS_DT_F32)
    return moss_fail(cg->ctx, MOSS_E_INTERNAL, n, "not an int8 convolution with zero-point-0 weights");
  return emit_qconv(cg, n, &v);
}

moss_status moss_c_emit_sparse(moss_cgen *cg, const moss_node *n) {
  moss_sparse_view v;
  moss_sparse_stats s;
  if (n->sparse <= MOSS_SPARSE_DENSE || n->sparse >= MOSS_SPARSE_NFORMATS)
    return moss_fail(cg->ctx, MOSS_E_INTERNAL, n, "unknown sparse format %d", n->sparse);
  if (!moss_sparse_view_get(n, &v) || !moss_sparse_stats_compute(n, &s) ||
      moss_sparse_cost(&s, n->sparse) < 0.0)
    return moss_fail(cg->ctx, MOSS_E_INTERNAL, n, "sparse format %s on a weight that cannot take it",
                     moss_sparse_format_name(n->sparse));
  if (n->op == MOSS_OP_QLinearConv || n->op == MOSS_OP_ConvInteger) return emit_qconv(cg, n, &v);
  if (v.dtype != MOSS_DT_F32) return emit_qlinear(cg, n, &v);
  if (n->op == MOSS_OP_Conv) return emit_conv(cg, n, &v);
  return emit_linear(cg, n, &v);
}
