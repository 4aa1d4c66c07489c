/* sparse.c - the view of a Gemm, MatMul or Conv's constant weight as the
 * matrix Wt (outputs by reduction terms), what the sparse pass measures on
 * it (nonzeros, nonzero 4x1 and 1x4 blocks, whether it fits 2:4) and the
 * cost rule's estimate of each format (docs/sparse.md). Read by the pass
 * (compiler/passes/sparse.c), the kernels that encode the weight and the
 * cost report. */
#include <string.h>

#include "sparse.h"

static int known(const moss_value *v) {
  return v && moss_value_shape_known(v) && moss_value_numel(v) >= 0 &&
         moss_value_numel(v) < ((int64_t)1 << 31);
}

/* 1 when every element of constant |z| is 0 (an absent zero point is 0). */
static int all_zero(const moss_value *z) {
  int64_t i, n;
  size_t esz, k;
  if (!z) return 1;
  if (!z->data) return 0;
  n = moss_value_numel(z);
  esz = moss_dtype_size(z->dtype);
  if (n < 0 || esz == 0) return 0;
  for (i = 0; i < n; i++)
    for (k = 0; k < esz; k++)
      if (((const unsigned char *)z->data)[(size_t)i * esz + k]) return 0;
  return 1;
}

static int is8(moss_dtype t) { return t == MOSS_DT_I8 || t == MOSS_DT_U8; }

/* MossQGemm (docs: the lead's contract): w [N, K] at input 3 is Wt as it is. */
static int view_qgemm(const moss_node *n, moss_sparse_view *v) {
  const moss_value *x = moss_node_input(n, 0), *w = moss_node_input(n, 3), *y = n->outputs[0];
  if (!x || !w || !y || !w->data || !known(x) || !known(w) || !known(y)) return 0;
  if (!is8(x->dtype) || !is8(w->dtype) || !is8(y->dtype) || w->rank != 2 || x->rank < 1 ||
      x->dims[x->rank - 1] != w->dims[1] || !all_zero(moss_node_input(n, 5)))
    return 0;
  v->w = w->data;
  v->dtype = w->dtype;
  v->winput = 3;
  v->rows = w->dims[0];
  v->cols = w->dims[1];
  v->rs = w->dims[1];
  v->cs = 1;
  return 1;
}

/* The integer ops of ONNX with a constant weight: QLinearConv (w input 3,
 * w_zp 5), ConvInteger (1, 3), QLinearMatMul (3, 5), MatMulInteger (1, 3).
 * Conv: 2-D, group 1, Wt = W as [M, C*kh*kw]; MatMul: B 2-D, Wt = B^T.
 * The weight's zero points must be 0, the scales of QLinear* constants. */
static int view_qonnx(const moss_node *n, moss_sparse_view *v) {
  static const int scale_input[3] = {1, 4, 6}; /* x_scale, w_scale, y_scale */
  int ql = n->op == MOSS_OP_QLinearConv || n->op == MOSS_OP_QLinearMatMul;
  int conv = n->op == MOSS_OP_QLinearConv || n->op == MOSS_OP_ConvInteger;
  int iw = ql ? 3 : 1, k;
  const moss_value *x = moss_node_input(n, 0), *w = moss_node_input(n, iw), *y = n->outputs[0];
  const moss_value *xz = moss_node_input(n, 2), *yz = ql ? moss_node_input(n, 7) : NULL;
  if (!x || !w || !y || !w->data || !known(x) || !known(w) || !known(y)) return 0;
  if (!is8(x->dtype) || !is8(w->dtype) || !(ql ? is8(y->dtype) : y->dtype == MOSS_DT_I32) ||
      !all_zero(moss_node_input(n, ql ? 5 : 3)))
    return 0;
  if (conv) {
    if (x->rank != 4 || w->rank != 4 || y->rank != 4 || moss_attr_int(n, "group", 1) != 1 ||
        x->dims[1] != w->dims[1])
      return 0;
    v->rows = w->dims[0];
    v->cols = w->dims[1] * w->dims[2] * w->dims[3];
    v->rs = v->cols;
    v->cs = 1;
  } else {
    if (x->rank < 2 || w->rank != 2 || y->rank != x->rank || x->dims[x->rank - 1] != w->dims[0])
      return 0;
    v->rows = w->dims[1];
    v->cols = w->dims[0];
    v->rs = 1;
    v->cs = w->dims[1];
  }
  /* Per-tensor x and y; w per tensor or per output. */
  for (k = 0; ql && k < 3; k++) {
    const moss_value *sc = moss_node_input(n, scale_input[k]);
    if (!sc || !sc->data || sc->dtype != MOSS_DT_F32) return 0;
    if (moss_value_numel(sc) != 1 && (k != 1 || moss_value_numel(sc) != v->rows)) return 0;
  }
  if (yz && moss_value_numel(yz) != 1) return 0;
  /* x_zp per tensor, or MatMulInteger's per row of A. */
  if (xz && moss_value_numel(xz) != 1 &&
      (ql || conv || moss_value_numel(xz) != x->dims[x->rank - 2]))
    return 0;
  v->w = w->data;
  v->dtype = w->dtype;
  v->winput = iw;
  return 1;
}

int moss_sparse_view_get(const moss_node *n, moss_sparse_view *out_view) {
  const moss_value *a, *w, *y;
  memset(out_view, 0, sizeof *out_view);
  if (n->op == MOSS_OP_MossQGemm || n->op == MOSS_OP_QLinearConv || n->op == MOSS_OP_ConvInteger ||
      n->op == MOSS_OP_QLinearMatMul || n->op == MOSS_OP_MatMulInteger) {
    int ok = n->noutputs >= 1 &&
             (n->op == MOSS_OP_MossQGemm ? view_qgemm(n, out_view) : view_qonnx(n, out_view));
    if (!ok) {
      memset(out_view, 0, sizeof *out_view);
      return 0;
    }
    if (out_view->rows <= 0 || out_view->cols <= 0) {
      memset(out_view, 0, sizeof *out_view);
      return 0;
    }
    return 1;
  }
  if (n->op != MOSS_OP_Gemm && n->op != MOSS_OP_MatMul && n->op != MOSS_OP_Conv) return 0;
  if (n->ninputs < 2 || n->noutputs < 1) return 0;
  a = moss_node_input(n, 0);
  w = moss_node_input(n, 1);
  y = n->outputs[0];
  if (!a || !w || !y || !w->data || !known(a) || !known(w) || !known(y)) return 0;
  if (a->dtype != MOSS_DT_F32 || w->dtype != MOSS_DT_F32 || y->dtype != MOSS_DT_F32) return 0;
  out_view->w = w->data;
  out_view->dtype = MOSS_DT_F32;
  out_view->winput = 1;
  switch (n->op) {
  case MOSS_OP_Gemm:
    if (moss_attr_int(n, "transA", 0) != 0 || a->rank != 2 || w->rank != 2) return 0;
    if (moss_attr_int(n, "transB", 0) != 0) {
      out_view->rows = w->dims[0]; /* B is [N, K]: already Wt */
      out_view->cols = w->dims[1];
      out_view->rs = w->dims[1];
      out_view->cs = 1;
    } else {
      out_view->rows = w->dims[1];
      out_view->cols = w->dims[0];
      out_view->rs = 1;
      out_view->cs = w->dims[1];
    }
    break;
  case MOSS_OP_MatMul:
    if (a->rank < 2 || w->rank != 2 || y->rank != a->rank) return 0;
    out_view->rows = w->dims[1];
    out_view->cols = w->dims[0];
    out_view->rs = 1;
    out_view->cs = w->dims[1];
    break;
  default: /* Conv */
    if (a->rank != 4 || w->rank != 4 || y->rank != 4 || moss_attr_int(n, "group", 1) != 1 ||
        a->dims[1] != w->dims[1])
      return 0;
    out_view->rows = w->dims[0];
    out_view->cols = w->dims[1] * w->dims[2] * w->dims[3];
    out_view->rs = out_view->cols;
    out_view->cs = 1;
    break;
  }
  if (out_view->rows <= 0 || out_view->cols <= 0) {
    memset(out_view, 0, sizeof *out_view);
    return 0;
  }
  return 1;
}

/* The words of an int8 Conv's weight (moss_sparse_stats.q8tile): Wt is
 * [M, C x taps], channel-major; a word is 4 channels at one tap. */
static void q8_words(const moss_node *n, const moss_sparse_view *v, moss_sparse_stats *s) {
  const moss_value *w = n->inputs[v->winput];
  int64_t C = w->rank >= 2 ? w->dims[1] : 0, taps, cg, r, t, q, r4;
  if (C < 1 || v->cols % C) return;
  taps = v->cols / C;
  cg = (C + 3) / 4;
  s->q8tile = 1;
  s->words = v->rows * cg * taps;
  s->wblocks = v->rows % 4 == 0 ? v->rows / 4 * cg * taps : 0;
  for (r4 = 0; r4 < v->rows; r4 += 4)
    for (t = 0; t < cg * taps; t++) {
      int any4 = 0;
      for (r = r4; r < r4 + 4 && r < v->rows; r++) {
        int any = 0;
        for (q = 4 * (t / taps); q < 4 * (t / taps) + 4 && q < C; q++)
          any |= moss_sparse_at(v, r, q * taps + t % taps) != 0.0f;
        s->words_nz += any;
        any4 |= any;
      }
      s->wblocks_nz += any4 && s->wblocks;
    }
}

int moss_sparse_stats_compute(const moss_node *n, moss_sparse_stats *out_stats) {
  moss_sparse_view v;
  int64_t r, c, k, groups;
  int rule = MOSS_SPARSE_RULE_KIND(n->sparse_rule);
  memset(out_stats, 0, sizeof *out_stats);
  if (!moss_sparse_view_get(n, &v)) return 0;
  out_stats->dtype = v.dtype;
  out_stats->rows = v.rows;
  out_stats->cols = v.cols;
  out_stats->nm24 = 1;
  for (r = 0; r < v.rows; r++)
    for (c = 0; c < v.cols; c += 4) {
      int64_t in_group = 0;
      for (k = c; k < c + 4 && k < v.cols; k++) in_group += moss_sparse_at(&v, r, k) != 0.0f;
      out_stats->nnz += in_group;
      if (in_group > 2) out_stats->nm24 = 0;
      if (in_group > 0 && v.cols % 4 == 0) out_stats->nblocks1x4++;
    }
  if (v.rows % 4 == 0) {
    for (r = 0; r < v.rows; r += 4)
      for (c = 0; c < v.cols; c++)
        for (k = 0; k < 4; k++)
          if (moss_sparse_at(&v, r + k, c) != 0.0f) {
            out_stats->nblocks4x1++;
            break;
          }
  }
  out_stats->cost_columns = -1.0;
  groups = (v.cols + 3) / 4;
  out_stats->cost_dense = (double)v.rows * (double)v.cols;
  out_stats->cost_csr =
      MOSS_SPARSE_COST_CSR_NZ * (double)out_stats->nnz + MOSS_SPARSE_COST_CSR_ROW * (double)v.rows;
  if (v.rows % 4 == 0)
    out_stats->cost_block4x1 = MOSS_SPARSE_COST_BLOCK * (double)out_stats->nblocks4x1 +
                               MOSS_SPARSE_COST_BLOCK_ROW * (double)(v.rows / 4);
  else
    out_stats->cost_block4x1 = -1.0;
  if (v.cols % 4 == 0)
    out_stats->cost_block1x4 = MOSS_SPARSE_COST_B1x4 * (double)out_stats->nblocks1x4 +
                               MOSS_SPARSE_COST_B1x4_ROW * (double)v.rows;
  else
    out_stats->cost_block1x4 = -1.0;
  if (out_stats->nm24)
    out_stats->cost_nm24 = MOSS_SPARSE_COST_NM24 * (double)v.rows * (double)groups;
  else
    out_stats->cost_nm24 = -1.0;
  if (n->op == MOSS_OP_QLinearConv &&
      (rule == MOSS_SPARSE_RULE_Q8_DOT4 || rule == MOSS_SPARSE_RULE_Q8_WIDE))
    q8_words(n, &v, out_stats);
  if (v.dtype != MOSS_DT_F32 && (n->op == MOSS_OP_QLinearConv || n->op == MOSS_OP_ConvInteger)) {
    /* int8 Conv: its own measured weights (sparse.h) */
    double nz = (double)out_stats->nnz;
    out_stats->cost_csr = MOSS_SPARSE_Q8CONV_NZ * nz;
    if (out_stats->cost_block4x1 >= 0.0)
      out_stats->cost_block4x1 = MOSS_SPARSE_Q8CONV_BLOCK * (double)out_stats->nblocks4x1;
    if (out_stats->cost_block1x4 >= 0.0)
      out_stats->cost_block1x4 = MOSS_SPARSE_Q8CONV_NZ * nz +
                                 MOSS_SPARSE_Q8CONV_SLOT * (4.0 * (double)out_stats->nblocks1x4 - nz);
    if (out_stats->cost_nm24 >= 0.0)
      out_stats->cost_nm24 = MOSS_SPARSE_Q8CONV_NZ * nz +
                             MOSS_SPARSE_Q8CONV_SLOT * (2.0 * (double)v.rows * (double)groups - nz);
    if (rule == MOSS_SPARSE_RULE_Q8_DOT4) out_stats->cost_dense *= MOSS_SPARSE_Q8CONV_DOT4;
    if (rule == MOSS_SPARSE_RULE_Q8_WIDE) out_stats->cost_dense *= MOSS_SPARSE_Q8CONV_WIDE;
    if (out_stats->q8tile) { /* CSR and 4x1 as the tile's words */
      int dot = rule == MOSS_SPARSE_RULE_Q8_DOT4;
      out_stats->cost_csr =
          out_stats->cost_dense *
          ((dot ? MOSS_SPARSE_Q8TILE_FIXED_CSR_DOT4 : MOSS_SPARSE_Q8TILE_FIXED_CSR_WIDE) +
           (dot ? MOSS_SPARSE_Q8TILE_SLOPE_CSR_DOT4 : MOSS_SPARSE_Q8TILE_SLOPE_CSR_WIDE) *
               (double)out_stats->words_nz / (double)out_stats->words);
      if (out_stats->cost_block4x1 >= 0.0 && out_stats->wblocks > 0)
        out_stats->cost_block4x1 =
            out_stats->cost_dense *
            ((dot ? MOSS_SPARSE_Q8TILE_FIXED_BLOCK_DOT4 : MOSS_SPARSE_Q8TILE_FIXED_BLOCK_WIDE) +
             (dot ? MOSS_SPARSE_Q8TILE_SLOPE_BLOCK_DOT4 : MOSS_SPARSE_Q8TILE_SLOPE_BLOCK_WIDE) *
                 (double)out_stats->wblocks_nz / (double)out_stats->wblocks);
    }
  } else if (v.dtype != MOSS_DT_F32) {
    int64_t lanes = MOSS_SPARSE_RULE_LANES(n->sparse_rule), padded;
    /* int8 Gemm and MatMul: CSR only, at the measured handicap where the
     * dense dot product has vectors, else about one dense term a nonzero */
    if (rule == MOSS_SPARSE_RULE_Q8_NOVEC)
      out_stats->cost_csr = MOSS_SPARSE_Q8LIN_NOVEC_NZ * (double)out_stats->nnz +
                            MOSS_SPARSE_COST_CSR_ROW * (double)v.rows;
    else out_stats->cost_csr *= MOSS_SPARSE_INT8_CSR_FACTOR;
    out_stats->cost_block4x1 = out_stats->cost_block1x4 = out_stats->cost_nm24 = -1.0;
    /* by columns: the input gathered at the kept columns into a private
     * array (on the stack: at most 16 KiB), padded to whole vectors of the
     * kernel's lanes, then the dot products over it */
    if (lanes < 1) lanes = 1;
    for (c = 0; c < v.cols; c++)
      for (r = 0; r < v.rows; r++)
        if (moss_sparse_at(&v, r, c) != 0.0f) {
          out_stats->cols_nz++;
          break;
        }
    padded = (out_stats->cols_nz + lanes - 1) / lanes * lanes;
    if (padded <= MOSS_SPARSE_COLUMNS_MAX)
      out_stats->cost_columns = (double)v.rows * (double)padded +
                                MOSS_SPARSE_Q8COLS_GATHER * (double)out_stats->cols_nz;
  } else if (rule == MOSS_SPARSE_RULE_TILE_CONV || rule == MOSS_SPARSE_RULE_TILE_WINO) {
    if (rule == MOSS_SPARSE_RULE_TILE_WINO) out_stats->cost_dense *= MOSS_SPARSE_TILE_WINO;
    /* every format is the tile's terms: CSR's price, so CSR wins the ties */
    out_stats->cost_csr = MOSS_SPARSE_TILE_CONV_NZ * (double)out_stats->nnz;
    if (out_stats->cost_block4x1 >= 0.0)
      out_stats->cost_block4x1 = MOSS_SPARSE_TILE_CONV_BLOCK * (double)out_stats->nblocks4x1;
    if (out_stats->cost_block1x4 >= 0.0) out_stats->cost_block1x4 = out_stats->cost_csr;
    if (out_stats->cost_nm24 >= 0.0) out_stats->cost_nm24 = out_stats->cost_csr;
  } else if (rule == MOSS_SPARSE_RULE_TILE_LIN) {
    out_stats->cost_csr = MOSS_SPARSE_TILE_MM_NZ * (double)out_stats->nnz;
    if (out_stats->cost_block4x1 >= 0.0)
      out_stats->cost_block4x1 = MOSS_SPARSE_TILE_MM_BLOCK * (double)out_stats->nblocks4x1;
    if (out_stats->cost_block1x4 >= 0.0) out_stats->cost_block1x4 = out_stats->cost_csr;
    if (out_stats->cost_nm24 >= 0.0) out_stats->cost_nm24 = out_stats->cost_csr;
  } else if (rule == MOSS_SPARSE_RULE_TILE_DENSE) {
    double f = (double)MOSS_SPARSE_RULE_LANES(n->sparse_rule) / 16.0;
    out_stats->cost_csr = f * MOSS_SPARSE_TILE_LIN_NZ * (double)out_stats->nnz;
    if (out_stats->cost_block4x1 >= 0.0)
      out_stats->cost_block4x1 = f * MOSS_SPARSE_TILE_LIN_BLOCK * (double)out_stats->nblocks4x1;
    if (out_stats->cost_block1x4 >= 0.0)
      out_stats->cost_block1x4 = f * MOSS_SPARSE_TILE_LIN_B1x4 * (double)out_stats->nblocks1x4;
    if (out_stats->cost_nm24 >= 0.0)
      out_stats->cost_nm24 = f * MOSS_SPARSE_TILE_LIN_NM24 * (double)v.rows * (double)groups;
  }
  return 1;
}

const char *moss_sparse_rule_name(int rule) {
  switch (MOSS_SPARSE_RULE_KIND(rule)) {
  case MOSS_SPARSE_RULE_SCALAR: return "scalar";
  case MOSS_SPARSE_RULE_Q8_DOT4: return "int8-dot";
  case MOSS_SPARSE_RULE_Q8_WIDE: return "int8-widened";
  case MOSS_SPARSE_RULE_TILE_CONV: return "tile";
  case MOSS_SPARSE_RULE_TILE_DENSE: return "tile-dense";
  case MOSS_SPARSE_RULE_TILE_WINO: return "tile-winograd";
  case MOSS_SPARSE_RULE_TILE_LIN: return "tile-linear";
  case MOSS_SPARSE_RULE_Q8_NOVEC: return "int8-no-vector";
  default: return "?";
  }
}

double moss_sparse_cost(const moss_sparse_stats *s, int fmt) {
  switch (fmt) {
  case MOSS_SPARSE_DENSE: return s->cost_dense;
  case MOSS_SPARSE_CSR: return s->cost_csr;
  case MOSS_SPARSE_BLOCK_4x1: return s->cost_block4x1;
  case MOSS_SPARSE_BLOCK_1x4: return s->cost_block1x4;
  case MOSS_SPARSE_NM_2_4: return s->cost_nm24;
  case MOSS_SPARSE_COLUMNS: return s->cost_columns;
  default: return -1.0;
  }
}

double moss_sparse_bytes(const moss_sparse_stats *s, int fmt) {
  double esz = (double)moss_dtype_size(s->dtype), idx = s->cols > 65536 ? 4.0 : 2.0;
  double rows = (double)s->rows, n;
  if (moss_sparse_cost(s, fmt) < 0) return -1.0;
  if (s->q8tile && fmt == MOSS_SPARSE_CSR) /* row_ptr, a V offset and a word a kept word */
    return (rows + 1) * 4 + (double)(s->words_nz > 0 ? s->words_nz : 1) * 8;
  if (s->q8tile && fmt == MOSS_SPARSE_BLOCK_4x1) /* row_ptr, an offset and 4 words a block */
    return (rows / 4 + 1) * 4 + (double)(s->wblocks_nz > 0 ? s->wblocks_nz : 1) * 20;
  switch (fmt) {
  case MOSS_SPARSE_DENSE: return rows * (double)s->cols * esz;
  case MOSS_SPARSE_CSR: /* row_ptr[rows + 1], col_idx[nnz], values[nnz] */
    n = s->nnz > 0 ? (double)s->nnz : 1.0;
    return (rows + 1) * 4 + n * idx + n * esz;
  case MOSS_SPARSE_BLOCK_4x1: /* row_ptr[rows/4 + 1], col_idx[blocks], values[4 blocks] */
    n = (double)s->nblocks4x1;
    return (rows / 4 + 1) * 4 + (n > 0 ? n : 1) * idx + (n > 0 ? 4 * n : 1) * esz;
  case MOSS_SPARSE_BLOCK_1x4: /* row_ptr[rows + 1], col_idx[blocks], values[4 blocks] */
    n = (double)s->nblocks1x4;
    return (rows + 1) * 4 + (n > 0 ? n : 1) * idx + (n > 0 ? 4 * n : 1) * esz;
  case MOSS_SPARSE_NM_2_4: /* col_idx and values: 2 per group of 4 columns, row by row */
    n = rows * (double)((s->cols + 3) / 4) * 2;
    return n * (1 + esz);
  case MOSS_SPARSE_COLUMNS: /* col_idx[kept] (int32), values[rows x kept] */
    n = s->cols_nz > 0 ? (double)s->cols_nz : 1.0;
    return n * 4 + rows * n * esz;
  default: return -1.0;
  }
}

int moss_sparse_choose(const moss_sparse_stats *s) {
  return moss_sparse_choose_among(s, MOSS_SPARSE_ALL);
}

int moss_sparse_choose_among(const moss_sparse_stats *s, unsigned formats) {
  int best = MOSS_SPARSE_DENSE, f;
  double cost = s->cost_dense;
  for (f = MOSS_SPARSE_CSR; f < MOSS_SPARSE_NFORMATS; f++) {
    double c = moss_sparse_cost(s, f);
    if ((formats & MOSS_SPARSE_BIT(f)) && c >= 0.0 && c < cost) {
      best = f;
      cost = c;
    }
  }
  return best;
}

const char *moss_sparse_format_name(int code) {
  switch (code) {
  case MOSS_SPARSE_DENSE: return "dense";
  case MOSS_SPARSE_CSR: return "csr";
  case MOSS_SPARSE_BLOCK_4x1: return "block4x1";
  case MOSS_SPARSE_BLOCK_1x4: return "block1x4";
  case MOSS_SPARSE_NM_2_4: return "2:4";
  case MOSS_SPARSE_COLUMNS: return "columns";
  default: return "?";
  }
}

double moss_sparse_density(const moss_node *n) {
  moss_sparse_stats s;
  if (!moss_sparse_stats_compute(n, &s)) return -1.0;
  return (double)s.nnz / ((double)s.rows * (double)s.cols);
}
