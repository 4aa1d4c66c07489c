/* lower_sparse.c - the kernels of a Gemm, MatMul or Conv whose weight the
 * sparse pass (compiler/passes/sparse.c, docs/sparse.md) put in a sparse
 * format (n->sparse), float32 or int8 (QLinearConv, ConvInteger,
 * QLinearMatMul, MatMulInteger, MossQGemm), and the dense int8
 * convolutions that take the sparse kernels' loops over every weight term
 * (group 1, weight zero points 0). The weight, seen as Wt [rows = outputs,
 * cols = reduction terms] (moss_sparse_view), is encoded here at compile
 * time into constant tables: CSR (row pointers, column indices, values),
 * CSR of 4x1 blocks (one column per block of 4 consecutive rows, 4
 * values), CSR of 1x4 blocks (the block's first column, 4 values) or 2:4
 * (2 values and 2 byte offsets per group of 4 columns, no row pointers).
 * The dense weight is then not read.
 *
 * Gemm and MatMul gather: each output element is a dot product of the
 * row's stored values with the input row at their columns, its loop bounds
 * read from the row pointers; alpha, beta, C and the fused activation
 * follow as in the dense kernel. Conv scatters: for each output channel,
 * each stored entry (input channel, tap) adds its weight times the strided
 * input rows it reaches into the output plane, the valid output range of
 * each tap read from tables made here, so the inner loop has no bounds
 * test. int8 convolutions accumulate a tile of output rows in a private
 * int32 array, then requantize it (REQUANT, docs/numerics-int8.md). The
 * weight zero points are 0, so every int8 sum is exact and equals the
 * dense kernel's bit for bit; the float kernels keep the summation order
 * the C backend's former emit_sparse.c had. */
#include <stdio.h>
#include <string.h>

#include "../ops/sparse.h"
#include "lower.h"
#include "lower_quant.h"

static moss_kx *bin(moss_kb *b, moss_kx_op op, moss_kx *x, moss_kx *y) {
  return moss_k_bin(b, op, x, y);
}
static moss_kx *I(moss_kb *b, int64_t v) { return moss_k_idx(b, v); }
static moss_kx *i32(moss_kb *b, int64_t v) { return moss_k_int(b, MOSS_DT_I32, v); }
static moss_kx *f32(moss_kb *b, double v) { return moss_k_flt(b, MOSS_DT_F32, v); }
/* buf[idx] as an I64 index. */
static moss_kx *ldi(moss_kb *b, int buf, moss_kx *idx) {
  return moss_k_cast(b, MOSS_DT_I64, moss_k_load(b, buf, idx));
}
static moss_kx *sum(moss_kb *b, moss_kx *x, moss_kx *y) { return moss_k_add(b, x, y); }
/* var = var + v. */
static void acc_add(moss_kb *b, moss_kx *var, moss_kx *v) {
  moss_k_set(b, var, bin(b, MOSS_KX_ADD, var, v));
}

/* The encoded weight: table buffers. */
typedef struct enc {
  int rp, ci, v;  /* row pointers (I32), column indices, values */
  int64_t nnz;    /* stored values (blocks * 4 for block formats) */
  int64_t groups; /* 2:4: groups of 4 columns per row */
} enc;

/* Wt[r, c] stored as the weight's type into |dst| at |at| (0 past the last column). */
static void put_value(void *dst, const moss_sparse_view *v, int64_t at, int64_t r, int64_t c) {
  float x = c < v->cols ? moss_sparse_at(v, r, c) : 0.0f;
  if (v->dtype == MOSS_DT_F32) ((float *)dst)[at] = x;
  else if (v->dtype == MOSS_DT_I8) ((int8_t *)dst)[at] = (int8_t)(int)x;
  else ((uint8_t *)dst)[at] = (uint8_t)(int)x;
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

/* 2:4 tables: "col_idx" uint8 offsets and "values", 2 per group of 4
 * columns, row after row. */
static void encode_nm(moss_kb *b, const moss_sparse_view *v, enc *e) {
  int64_t r, g, at = 0, total;
  int off[2];
  uint8_t *o;
  void *val;
  e->groups = (v->cols + 3) / 4;
  total = v->rows * e->groups * 2;
  o = moss_k_scratch(b, total, 1);
  val = moss_k_scratch(b, total, moss_dtype_size(v->dtype));
  if (!o || !val) return;
  for (r = 0; r < v->rows; r++)
    for (g = 0; g < e->groups; g++, at += 2) {
      int64_t c0 = 4 * g, k;
      int nz = 0;
      nm_offsets(v, r, g, off);
      o[at] = (uint8_t)off[0];
      o[at + 1] = (uint8_t)off[1];
      for (k = c0; k < c0 + 4 && k < v->cols; k++) nz += moss_sparse_at(v, r, k) != 0.0f;
      put_value(val, v, at, r, nz > 0 ? c0 + off[0] : v->cols);
      put_value(val, v, at + 1, r, nz > 1 ? c0 + off[1] : v->cols);
    }
  e->ci = moss_k_table(b, "col_idx", MOSS_DT_U8, total, o);
  e->v = moss_k_table(b, "values", v->dtype, total, val);
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

/* The tables of |v| in format |fmt|: CSR of single elements, of 4x1
 * blocks or of 1x4 blocks (column index of the block's first column), or
 * the 2:4 tables; and the comments that name the format. */
static void encode(moss_kb *b, const moss_node *n, const moss_sparse_view *v, int fmt, enc *e) {
  int64_t nrow = fmt == MOSS_SPARSE_BLOCK_4x1 ? v->rows / 4 : v->rows;
  int64_t ncol = fmt == MOSS_SPARSE_BLOCK_1x4 ? v->cols / 4 : v->cols;
  int64_t r, c, k, cnt = 0, put = 0, nz = 0;
  int bs = fmt == MOSS_SPARSE_CSR ? 1 : 4, wide = v->cols > 65536;
  int32_t *rp;
  void *ci, *val;
  memset(e, 0, sizeof *e);
  moss_k_comment(b, "node '%s' (%s): weight '%s' as %s, %lld x %lld", n->name, n->op_type,
                 n->inputs[v->winput]->name, moss_sparse_format_name(fmt), (long long)v->rows,
                 (long long)v->cols);
  if (fmt == MOSS_SPARSE_NM_2_4) {
    encode_nm(b, v, e);
  } else {
    rp = moss_k_scratch(b, nrow + 1, sizeof *rp);
    if (!rp) return;
    for (r = 0; r < nrow; r++) {
      rp[r] = (int32_t)cnt;
      for (c = 0; c < ncol; c++) cnt += block_nz(v, fmt, r, c);
    }
    rp[nrow] = (int32_t)cnt;
    /* 16-bit column indices where they fit: half the index traffic. */
    ci = moss_k_scratch(b, cnt > 0 ? cnt : 1, wide ? 4 : 2);
    val = moss_k_scratch(b, cnt > 0 ? cnt * bs : 1, moss_dtype_size(v->dtype));
    if (!ci || !val) return;
    memset(ci, 0, wide ? 4 : 2);
    memset(val, 0, moss_dtype_size(v->dtype));
    for (r = 0; r < nrow; r++)
      for (c = 0; c < ncol; c++) {
        int64_t col = fmt == MOSS_SPARSE_BLOCK_1x4 ? c * 4 : c;
        if (!block_nz(v, fmt, r, c)) continue;
        if (wide) ((int32_t *)ci)[put / bs] = (int32_t)col;
        else ((uint16_t *)ci)[put / bs] = (uint16_t)col;
        for (k = 0; k < bs; k++, put++) {
          if (fmt == MOSS_SPARSE_BLOCK_4x1) put_value(val, v, put, r * 4 + k, c);
          else if (fmt == MOSS_SPARSE_BLOCK_1x4) put_value(val, v, put, r, c * 4 + k);
          else put_value(val, v, put, r, c);
        }
      }
    e->rp = moss_k_table(b, "row_ptr", MOSS_DT_I32, nrow + 1, rp);
    e->ci = moss_k_table(b, "col_idx", wide ? MOSS_DT_I32 : MOSS_DT_U16, cnt > 0 ? cnt : 1, ci);
    e->v = moss_k_table(b, "values", v->dtype, cnt > 0 ? cnt * bs : 1, val);
    e->nnz = put;
  }
  for (r = 0; r < v->rows; r++)
    for (c = 0; c < v->cols; c++) nz += moss_sparse_at(v, r, c) != 0.0f;
  moss_k_comment(b, "sparse %s: %lld of %lld weights nonzero, %lld values stored",
                 moss_sparse_format_name(fmt), (long long)nz, (long long)(v->rows * v->cols),
                 (long long)e->nnz);
}

/* ---- Gemm and MatMul, float32 ------------------------------------------ */

typedef struct lin {
  int64_t M, K, N;
  double alpha, beta;
  const moss_value *c; /* Gemm's C or NULL */
  int64_t cm, cn;      /* C's dims padded to rank 2 */
  int x, y, xc;        /* buffers */
} lin;

/* The value stored for accumulated |s| of output row |i|, column |col|:
 * alpha * s + beta * C, then the activation. */
static moss_kx *epilogue(moss_kb *b, const moss_node *n, const lin *p, moss_kx *s, moss_kx *i,
                         moss_kx *col) {
  moss_kx *v = s;
  if (p->alpha != 1.0) v = bin(b, MOSS_KX_MUL, f32(b, p->alpha), v);
  if (p->c && p->beta != 0.0) {
    moss_kx *at = I(b, 0), *cv;
    if (p->cm != 1 && p->cn != 1) at = sum(b, moss_k_mulc(b, i, p->cn), col);
    else if (p->cm != 1) at = i;
    else if (p->cn != 1) at = col;
    cv = moss_k_load(b, p->xc, at);
    if (p->beta != 1.0) cv = bin(b, MOSS_KX_MUL, f32(b, p->beta), cv);
    v = bin(b, MOSS_KX_ADD, v, cv);
  }
  if (n->act.kind == MOSS_ACT_NONE) return v;
  return moss_k_act(b, n, moss_k_let(b, "v", v));
}

/* ---- Gemm and MatMul on the register tile -------------------------------- */

/* The product Y^T[N, Mb] = Wt X^T of a pruned float32 Gemm or MatMul whose
 * input has Mb rows: 0 (the gather loops) when the machine has no tile or
 * Mb is under one vector (a single row: the tile would have no vector to
 * fill), else the arena scratch for X^T and Y^T, in bytes. */
#define LIN_TILE_MAX_SCRATCH ((int64_t)64 << 20)
/* X^T's bytes, whole 64-byte lines (Y^T follows it). */
static int64_t lin_xt_bytes(int64_t k, int64_t mb) { return (k * mb * 4 + 63) / 64 * 64; }
static int64_t lin_tile_scratch(const moss_node *n, const moss_kernel_cpu *cpu, const moss_sparse_view *v,
                                int64_t *out_mb) {
  moss_kb probe;
  int mr, nr, lanes;
  int64_t mb;
  if ((n->op != MOSS_OP_Gemm && n->op != MOSS_OP_MatMul) || v->dtype != MOSS_DT_F32 || !cpu) return 0;
  memset(&probe, 0, sizeof probe);
  probe.cpu = *cpu;
  if (!moss_tile_shape(&probe, MOSS_DT_F32, &mr, &nr, &lanes)) return 0;
  mb = moss_value_numel(n->outputs[0]) / v->rows;
  if (mb < lanes || (v->cols + v->rows) > LIN_TILE_MAX_SCRATCH / 4 / mb) return 0;
  if (out_mb) *out_mb = mb;
  return lin_xt_bytes(v->cols, mb) + v->rows * mb * 4;
}

int64_t moss_lower_linear_sparse_scratch(const moss_node *n, const moss_kernel_cpu *cpu) {
  moss_sparse_view v;
  if (!moss_sparse_view_get(n, &v)) return 0;
  return lin_tile_scratch(n, cpu, &v, NULL);
}

/* On the tile, S is the weight's nonzero terms (rows of 4 outputs for 4x1
 * blocks, else of one: 1x4 and 2:4 drop their stored zeros), V the input
 * transposed into the scratch (X^T, K x Mb), its sums Y^T (N x Mb) in the
 * scratch too, then out by input row with alpha, beta C and the activation.
 * Each output sums its terms in k order. */
static int lower_linear_tile(moss_kb *b, const moss_node *n, const moss_sparse_view *v, const lin *p) {
  int64_t mb = 0, need = lin_tile_scratch(n, &b->cpu, v, &mb), k, *rows;
  int xt, yt, blk = n->sparse == MOSS_SPARSE_BLOCK_4x1 ? 4 : 1;
  moss_tile t;
  moss_kx *j, *r, *at;
  if (need <= 0 || need > n->scratch_bytes || mb != p->M || p->N % blk) return 0;
  rows = moss_arena_alloc(b->arena, sizeof *rows * (size_t)p->K, 8);
  if (!rows) {
    moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
    return 1;
  }
  for (k = 0; k < p->K; k++) rows[k] = k * mb;
  xt = moss_k_arena_scratch(b, "xt", MOSS_DT_F32, p->K * mb, 0);
  yt = moss_k_arena_scratch(b, "yt", MOSS_DT_F32, p->N * mb, lin_xt_bytes(p->K, mb));
  moss_tile_sparse_s(b, &t, MOSS_DT_F32, v->w, v->rs, v->cs, p->N, p->K, blk, rows);
  t.N = mb;
  t.v = xt;
  t.v_at = moss_k_idx(b, 0);
  t.y = yt;
  t.y_at = moss_k_idx(b, 0);
  t.y_row = mb;
  moss_k_comment(b, "the input transposed: X^T, %lld x %lld", (long long)p->K, (long long)mb);
  j = moss_k_range(b, "j", mb, MOSS_KL_PARALLEL);
  r = moss_k_range(b, "k", p->K, MOSS_KL_PARALLEL);
  moss_k_store(b, xt, sum(b, moss_k_mulc(b, r, mb), j), moss_k_load(b, p->x, sum(b, moss_k_mulc(b, j, p->K), r)));
  moss_k_end(b);
  moss_k_end(b);
  moss_tile_product(b, &t);
  moss_k_comment(b, "the sums out, by input row");
  j = moss_k_range(b, "j", mb, MOSS_KL_PARALLEL);
  r = moss_k_range(b, "r", p->N, MOSS_KL_PARALLEL);
  at = moss_k_let(b, "s", moss_k_load(b, yt, sum(b, moss_k_mulc(b, r, mb), j)));
  moss_k_store(b, p->y, sum(b, moss_k_mulc(b, j, p->N), r), epilogue(b, n, p, at, j, r));
  moss_k_end(b);
  moss_k_end(b);
  return 1;
}

static moss_status lower_linear(moss_kb *b, const moss_node *n, const moss_sparse_view *v) {
  lin p;
  enc e;
  moss_kx *i, *r, *ar, *s[4], *q, *c;
  int k, fmt = n->sparse;
  memset(&p, 0, sizeof p);
  p.K = v->cols;
  p.N = v->rows;
  p.M = moss_value_numel(n->outputs[0]) / p.N;
  p.alpha = 1.0;
  if (n->op == MOSS_OP_Gemm) {
    p.alpha = moss_attr_float(n, "alpha", 1.0f);
    p.beta = moss_attr_float(n, "beta", 1.0f);
    p.c = moss_node_input(n, 2);
    if (p.c) {
      p.cm = p.c->rank == 2 ? p.c->dims[0] : 1;
      p.cn = p.c->rank >= 1 ? p.c->dims[p.c->rank - 1] : 1;
      p.xc = moss_k_input(b, 2);
    }
  }
  if (p.M > 0) {
    p.x = moss_k_input(b, 0);
    p.y = moss_k_output(b, 0);
    if (lower_linear_tile(b, n, v, &p)) return b->st;
  }
  encode(b, n, v, fmt, &e);
  if (p.M == 0) {
    moss_k_comment(b, "empty output");
    return MOSS_OK;
  }
  i = moss_k_range(b, "i", p.M, MOSS_KL_PARALLEL);
  ar = moss_k_let(b, "ar", moss_k_mulc(b, i, p.K)); /* the input row */
  if (fmt == MOSS_SPARSE_BLOCK_4x1) {
    moss_kx *rb = moss_k_range(b, "rb", p.N / 4, MOSS_KL_PARALLEL), *a;
    for (k = 0; k < 4; k++) s[k] = moss_k_let(b, k ? (k == 1 ? "s1" : k == 2 ? "s2" : "s3") : "s0", f32(b, 0));
    q = moss_k_for(b, "q", ldi(b, e.rp, rb), ldi(b, e.rp, moss_k_addc(b, rb, 1)), 1, MOSS_KL_REDUCE, 0);
    a = moss_k_let(b, "a", moss_k_load(b, p.x, sum(b, ar, ldi(b, e.ci, q))));
    for (k = 0; k < 4; k++)
      acc_add(b, s[k], bin(b, MOSS_KX_MUL, moss_k_load(b, e.v, moss_k_addc(b, moss_k_mulc(b, q, 4), k)), a));
    moss_k_end(b);
    r = moss_k_mulc(b, rb, 4);
    for (k = 0; k < 4; k++) {
      moss_kx *col = moss_k_addc(b, r, k);
      moss_k_store(b, p.y, sum(b, moss_k_mulc(b, i, p.N), col), epilogue(b, n, &p, s[k], i, col));
    }
    moss_k_end(b); /* rb */
    moss_k_end(b); /* i */
    return MOSS_OK;
  }
  r = moss_k_range(b, "r", p.N, MOSS_KL_PARALLEL);
  if (fmt == MOSS_SPARSE_CSR) {
    /* Four partial sums hide the add latency (reassociation stays within
     * the float tolerance of the dense twin), then the remainder. */
    moss_kx *q0 = moss_k_let(b, "q0", ldi(b, e.rp, r));
    moss_kx *qe = moss_k_let(b, "qe", ldi(b, e.rp, moss_k_addc(b, r, 1)));
    moss_kx *q4 = moss_k_let(b, "q4", bin(b, MOSS_KX_SUB, qe, bin(b, MOSS_KX_REM, bin(b, MOSS_KX_SUB, qe, q0), I(b, 4))));
    s[0] = moss_k_let(b, "s0", f32(b, 0));
    s[1] = moss_k_let(b, "s1", f32(b, 0));
    s[2] = moss_k_let(b, "s2", f32(b, 0));
    s[3] = moss_k_let(b, "s3", f32(b, 0));
    q = moss_k_for(b, "q", q0, q4, 4, MOSS_KL_REDUCE, 0);
    for (k = 0; k < 4; k++) {
      moss_kx *qk = moss_k_addc(b, q, k);
      acc_add(b, s[k], bin(b, MOSS_KX_MUL, moss_k_load(b, e.v, qk),
                           moss_k_load(b, p.x, sum(b, ar, ldi(b, e.ci, qk)))));
    }
    moss_k_end(b);
    q = moss_k_for(b, "q", q4, qe, 1, MOSS_KL_REDUCE, 0);
    acc_add(b, s[0], bin(b, MOSS_KX_MUL, moss_k_load(b, e.v, q),
                         moss_k_load(b, p.x, sum(b, ar, ldi(b, e.ci, q)))));
    moss_k_end(b);
    c = bin(b, MOSS_KX_ADD, bin(b, MOSS_KX_ADD, s[0], s[1]), bin(b, MOSS_KX_ADD, s[2], s[3]));
  } else if (fmt == MOSS_SPARSE_BLOCK_1x4) {
    /* One 4-wide block: 4 contiguous weights times 4 contiguous inputs. */
    moss_kx *a;
    s[0] = moss_k_let(b, "s0", f32(b, 0));
    s[1] = moss_k_let(b, "s1", f32(b, 0));
    s[2] = moss_k_let(b, "s2", f32(b, 0));
    s[3] = moss_k_let(b, "s3", f32(b, 0));
    q = moss_k_for(b, "q", ldi(b, e.rp, r), ldi(b, e.rp, moss_k_addc(b, r, 1)), 1, MOSS_KL_REDUCE, 0);
    a = moss_k_let(b, "a", sum(b, ar, ldi(b, e.ci, q)));
    for (k = 0; k < 4; k++)
      acc_add(b, s[k], bin(b, MOSS_KX_MUL, moss_k_load(b, e.v, moss_k_addc(b, moss_k_mulc(b, q, 4), k)),
                           moss_k_load(b, p.x, moss_k_addc(b, a, k))));
    moss_k_end(b);
    c = bin(b, MOSS_KX_ADD, bin(b, MOSS_KX_ADD, s[0], s[1]), bin(b, MOSS_KX_ADD, s[2], s[3]));
  } else { /* 2:4: 2 multiply-adds per group of 4 inputs, at the stored offsets */
    moss_kx *w = moss_k_let(b, "w", moss_k_mulc(b, r, 2 * e.groups)), *g;
    s[0] = moss_k_let(b, "s0", f32(b, 0));
    s[1] = moss_k_let(b, "s1", f32(b, 0));
    g = moss_k_range(b, "g", e.groups, MOSS_KL_REDUCE);
    for (k = 0; k < 2; k++) {
      moss_kx *at = moss_k_addc(b, sum(b, w, moss_k_mulc(b, g, 2)), k);
      acc_add(b, s[k], bin(b, MOSS_KX_MUL, moss_k_load(b, e.v, at),
                           moss_k_load(b, p.x, sum(b, sum(b, ar, moss_k_mulc(b, g, 4)), ldi(b, e.ci, at)))));
    }
    moss_k_end(b);
    c = bin(b, MOSS_KX_ADD, s[0], s[1]);
  }
  c = moss_k_let(b, "s", c);
  moss_k_store(b, p.y, sum(b, moss_k_mulc(b, i, p.N), r), epilogue(b, n, &p, c, i, r));
  moss_k_end(b); /* r */
  moss_k_end(b); /* i */
  return MOSS_OK;
}

/* ---- Conv: geometry and the loop over stored entries ---------------------- */

static int64_t floordiv(int64_t a, int64_t d) { return a >= 0 ? a / d : -((-a + d - 1) / d); }
static int64_t ceildiv(int64_t a, int64_t d) { return -floordiv(-a, d); }

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

/* The geometry of a 2-D convolution as the sparse kernels see it: pads
 * resolved from auto_pad, a pointwise convolution over the whole plane
 * flattened to one long row, and per kernel row (column) the range of
 * output rows (columns) whose tap lands inside the input: the tables
 * lo[0]/hi[0] (rows) and lo[1]/hi[1] (columns). */
typedef struct conv_geom {
  int64_t B, C, M, H, W, OH, OW, KH, KW, KK;
  int64_t s[2], d[2], p[2];
  int lo[2], hi[2];
} conv_geom;

static moss_status conv_geometry(moss_kb *b, const moss_node *n, const moss_value *w,
                                 conv_geom *gm) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  const char *ap = moss_attr_string(n, "auto_pad", "NOTSET");
  int64_t pads[4], kk, *lo, *hi;
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
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "sparse kernel wider than 64 taps");
  /* A one-entry table gets an unused second entry: gcc folds a load from
   * a one-element constant array to that element whatever the index,
   * which for a 1x1 kernel makes the inner loops' bounds invariant (see
   * entries()). */
  lo = moss_k_scratch(b, 2 * 64, sizeof *lo);
  hi = moss_k_scratch(b, 2 * 64, sizeof *hi);
  if (!lo || !hi) return b->st;
  memset(lo, 0, 2 * 64 * sizeof *lo);
  memset(hi, 0, 2 * 64 * sizeof *hi);
  for (kk = 0; kk < gm->KH; kk++)
    range(gm->OH, gm->s[0], kk * gm->d[0] - gm->p[0], gm->H, &lo[kk], &hi[kk]);
  for (kk = 0; kk < gm->KW; kk++)
    range(gm->OW, gm->s[1], kk * gm->d[1] - gm->p[1], gm->W, &lo[64 + kk], &hi[64 + kk]);
  gm->lo[0] = moss_k_table(b, "oh_lo", MOSS_DT_I64, gm->KH < 2 ? 2 : gm->KH, lo);
  gm->hi[0] = moss_k_table(b, "oh_hi", MOSS_DT_I64, gm->KH < 2 ? 2 : gm->KH, hi);
  gm->lo[1] = moss_k_table(b, "ow_lo", MOSS_DT_I64, gm->KW < 2 ? 2 : gm->KW, lo + 64);
  gm->hi[1] = moss_k_table(b, "ow_hi", MOSS_DT_I64, gm->KW < 2 ? 2 : gm->KW, hi + 64);
  return b->st;
}

/* What entries() opens: the entry's reduction term's tap, the offset |xo|
 * of the tap's input row start for output row 0, and its weight |wv| (or,
 * for 4x1 blocks, the index |wq| of its 4 weights in the values). */
typedef struct entry {
  moss_kx *kh, *kw, *xo, *wv, *wq;
  int levels; /* loops and branches to close */
} entry;

/* Opens the loop over output channel block |mb|'s stored entries (of the
 * dense weight input |dense| for MOSS_SPARSE_DENSE). With |taps|, kh and
 * kw are loaded from the tables "kh"/"kw" (one byte per term) instead of
 * computed: the int8 kernel needs that, for when the kernel is 1x1 they
 * would be the constant 0, the inner loop's bounds would be invariant,
 * and gcc -O3 would unroll-and-jam the entry loop into a scalar loop
 * (measured 3x slower on a 128-channel 1x1 convolution). Stored zeros
 * (padding of a 2:4 group, zeros inside a 1x4 block) are skipped. */
static void entries(moss_kb *b, const conv_geom *gm, int fmt, const enc *e, int dense,
                    moss_dtype wt, moss_kx *mb, int taps, entry *en) {
  moss_kx *q, *c, *ch;
  int64_t cols = gm->C * gm->KK;
  memset(en, 0, sizeof *en);
  en->levels = 1;
  if (fmt == MOSS_SPARSE_DENSE) { /* every term, from the dense weight */
    c = moss_k_range(b, "c", cols, MOSS_KL_SERIAL);
    en->wv = moss_k_let(b, "wv", moss_k_load(b, dense, sum(b, moss_k_mulc(b, mb, cols), c)));
  } else if (fmt == MOSS_SPARSE_NM_2_4) {
    q = moss_k_for(b, "q", moss_k_mulc(b, mb, 2 * e->groups),
                   moss_k_mulc(b, moss_k_addc(b, mb, 1), 2 * e->groups), 1, MOSS_KL_SERIAL, 0);
    en->wv = moss_k_let(b, "wv", moss_k_load(b, e->v, q));
    moss_k_if(b, bin(b, MOSS_KX_NE, en->wv, moss_k_cast(b, wt, i32(b, 0)))); /* not a padding */
    en->levels++;
    c = moss_k_let(b, "c", sum(b, moss_k_mulc(b, bin(b, MOSS_KX_DIV, bin(b, MOSS_KX_REM, q, I(b, 2 * e->groups)), I(b, 2)), 4),
                               ldi(b, e->ci, q)));
  } else if (fmt == MOSS_SPARSE_BLOCK_1x4) {
    q = moss_k_for(b, "q4", moss_k_mulc(b, ldi(b, e->rp, mb), 4),
                   moss_k_mulc(b, ldi(b, e->rp, moss_k_addc(b, mb, 1)), 4), 1, MOSS_KL_SERIAL, 0);
    en->wv = moss_k_let(b, "wv", moss_k_load(b, e->v, q));
    moss_k_if(b, bin(b, MOSS_KX_NE, en->wv, moss_k_cast(b, wt, i32(b, 0)))); /* a zero in the block */
    en->levels++;
    c = moss_k_let(b, "c", sum(b, ldi(b, e->ci, bin(b, MOSS_KX_DIV, q, I(b, 4))),
                               bin(b, MOSS_KX_REM, q, I(b, 4))));
  } else {
    q = moss_k_for(b, "q", ldi(b, e->rp, mb), ldi(b, e->rp, moss_k_addc(b, mb, 1)), 1,
                   MOSS_KL_SERIAL, 0);
    c = moss_k_let(b, "c", ldi(b, e->ci, q));
    if (fmt == MOSS_SPARSE_BLOCK_4x1) en->wq = moss_k_mulc(b, q, 4);
    else en->wv = moss_k_let(b, "wv", moss_k_load(b, e->v, q));
  }
  ch = moss_k_let(b, "ch", bin(b, MOSS_KX_DIV, c, I(b, gm->KK)));
  if (taps) {
    uint8_t *th = moss_k_scratch(b, cols, 1), *tw = moss_k_scratch(b, cols, 1);
    int64_t t;
    int bh, bw;
    if (!th || !tw) return;
    for (t = 0; t < cols; t++) {
      th[t] = (uint8_t)(t % gm->KK / gm->KW);
      tw[t] = (uint8_t)(t % gm->KW);
    }
    bh = moss_k_table(b, "kh", MOSS_DT_U8, cols, th);
    bw = moss_k_table(b, "kw", MOSS_DT_U8, cols, tw);
    en->kh = moss_k_let(b, "kh", ldi(b, bh, c));
    en->kw = moss_k_let(b, "kw", ldi(b, bw, c));
  } else {
    en->kh = moss_k_let(b, "kh", bin(b, MOSS_KX_DIV, bin(b, MOSS_KX_REM, c, I(b, gm->KK)), I(b, gm->KW)));
    en->kw = moss_k_let(b, "kw", bin(b, MOSS_KX_REM, c, I(b, gm->KW)));
  }
  /* ch * H * W + (kh * d0 - p0) * W + kw * d1 - p1 */
  en->xo = moss_k_let(
      b, "xo",
      moss_k_addc(b,
                  sum(b, sum(b, moss_k_mulc(b, ch, gm->H * gm->W), moss_k_mulc(b, en->kh, gm->d[0] * gm->W)),
                      moss_k_mulc(b, en->kw, gm->d[1])),
                  -(gm->p[0] * gm->W + gm->p[1])));
}

/* ---- Conv, float32 ------------------------------------------------------- */

static moss_status lower_conv(moss_kb *b, const moss_node *n, const moss_sparse_view *v) {
  int nt = n->sparse == MOSS_SPARSE_BLOCK_4x1 ? 4 : 1, x, y, k;
  int64_t P;
  enc e;
  conv_geom gm;
  entry en;
  moss_kx *bb, *mb, *m, *xb, *ym, *oh, *j, *rb;
  encode(b, n, v, n->sparse, &e);
  MOSS_TRY(conv_geometry(b, n, n->inputs[1], &gm));
  P = gm.OH * gm.OW;
  x = moss_k_input(b, 0);
  y = moss_k_output(b, 0);
  bb = moss_k_range(b, "b", gm.B, MOSS_KL_PARALLEL);
  xb = moss_k_let(b, "xb", moss_k_mulc(b, bb, gm.C * gm.H * gm.W));
  mb = moss_k_range(b, "mb", gm.M / nt, MOSS_KL_PARALLEL);
  m = moss_k_let(b, "m", moss_k_mulc(b, mb, nt));
  ym = moss_k_let(b, "ym", moss_k_mulc(b, sum(b, moss_k_mulc(b, bb, gm.M), m), P));
  if (moss_node_input(n, 2)) {
    int xbias = moss_k_input(b, 2);
    moss_kx *t = moss_k_range(b, "t", nt, MOSS_KL_PARALLEL);
    j = moss_k_range(b, "j", P, MOSS_KL_PARALLEL);
    moss_k_store(b, y, sum(b, sum(b, ym, moss_k_mulc(b, t, P)), j), moss_k_load(b, xbias, sum(b, m, t)));
    moss_k_end(b);
    moss_k_end(b);
  } else {
    j = moss_k_range(b, "j", nt * P, MOSS_KL_PARALLEL);
    moss_k_store(b, y, sum(b, ym, j), f32(b, 0));
    moss_k_end(b);
  }
  /* One stored entry at a time; 4x1 blocks take 4 weights per entry. */
  entries(b, &gm, n->sparse, &e, 0, MOSS_DT_F32, mb, 0, &en);
  if (nt == 4) {
    moss_kx *wk[4];
    for (k = 0; k < 4; k++)
      wk[k] = moss_k_let(b, k == 0 ? "wa" : k == 1 ? "wb" : k == 2 ? "wc" : "wd",
                         moss_k_load(b, e.v, moss_k_addc(b, en.wq, k)));
    oh = moss_k_for(b, "oh", ldi(b, gm.lo[0], en.kh), ldi(b, gm.hi[0], en.kh), 1, MOSS_KL_PARALLEL, 0);
    rb = moss_k_let(b, "rb", sum(b, moss_k_mulc(b, oh, gm.s[0] * gm.W), en.xo));
    j = moss_k_for(b, "j", ldi(b, gm.lo[1], en.kw), ldi(b, gm.hi[1], en.kw), 1, MOSS_KL_PARALLEL, 0);
    {
      moss_kx *xv = moss_k_let(b, "xv", moss_k_load(b, x, sum(b, sum(b, xb, rb), moss_k_mulc(b, j, gm.s[1]))));
      moss_kx *at = sum(b, sum(b, ym, moss_k_mulc(b, oh, gm.OW)), j);
      for (k = 0; k < 4; k++) {
        moss_kx *ak = moss_k_addc(b, at, k * P);
        moss_k_store(b, y, ak, bin(b, MOSS_KX_ADD, moss_k_load(b, y, ak), bin(b, MOSS_KX_MUL, wk[k], xv)));
      }
    }
  } else {
    oh = moss_k_for(b, "oh", ldi(b, gm.lo[0], en.kh), ldi(b, gm.hi[0], en.kh), 1, MOSS_KL_PARALLEL, 0);
    rb = moss_k_let(b, "rb", sum(b, moss_k_mulc(b, oh, gm.s[0] * gm.W), en.xo));
    j = moss_k_for(b, "j", ldi(b, gm.lo[1], en.kw), ldi(b, gm.hi[1], en.kw), 1, MOSS_KL_PARALLEL, 0);
    {
      moss_kx *at = sum(b, sum(b, ym, moss_k_mulc(b, oh, gm.OW)), j);
      moss_kx *xv = moss_k_load(b, x, sum(b, sum(b, xb, rb), moss_k_mulc(b, j, gm.s[1])));
      moss_k_store(b, y, at, bin(b, MOSS_KX_ADD, moss_k_load(b, y, at), bin(b, MOSS_KX_MUL, en.wv, xv)));
    }
  }
  moss_k_end(b); /* j */
  moss_k_end(b); /* oh */
  for (k = 0; k < en.levels; k++) moss_k_end(b); /* entries */
  if (n->act.kind != MOSS_ACT_NONE || moss_node_input(n, 3)) { /* the fused residual, the activation */
    moss_kx *at;
    j = moss_k_range(b, "j", nt * P, MOSS_KL_PARALLEL);
    at = sum(b, ym, j);
    moss_k_store(b, y, at, moss_lower_conv_out(b, n, moss_k_load(b, y, at), at, "v"));
    moss_k_end(b);
  }
  moss_k_end(b); /* mb */
  moss_k_end(b); /* b */
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
  int requant;  /* 1: QLinear* and MossQGemm (8-bit output); 0: int32 output */
  int xzp, yzp; /* zero point buffers, or -1 */
  int bias;     /* bias buffer, or -1 */
  moss_kreq rq; /* x_scale * w_scale[r] / y_scale */
} qio;

static void qio_init(moss_kb *b, const moss_node *n, const moss_sparse_view *v, qio *q) {
  memset(q, 0, sizeof *q);
  q->requant = v->winput == 3;
  q->xzp = moss_node_input(n, 2) ? moss_k_input(b, 2) : -1;
  q->yzp = q->requant && moss_node_input(n, 7) ? moss_k_input(b, 7) : -1;
  q->bias = q->requant && moss_node_input(n, 8) ? moss_k_input(b, 8) : -1;
  if (q->requant) {
    const moss_value *ws = n->inputs[4];
    double sx = ((const float *)n->inputs[1]->data)[0], sy = ((const float *)n->inputs[6]->data)[0];
    int64_t r, nw = moss_value_numel(ws);
    double *ms = moss_k_scratch(b, nw, sizeof *ms);
    if (!ms) return;
    for (r = 0; r < nw; r++) ms[r] = sx * ((const float *)ws->data)[r] / sy;
    moss_k_requant_init(b, &q->rq, ms, nw);
  }
}

/* Stores the finished sum |acc| (int32, bias included) of output row |row|
 * at y0[|at|]: as is, or requantized and clamped to the 8-bit type. */
static void qstore(moss_kb *b, const moss_node *n, const qio *q, int y, moss_kx *at,
                   moss_kx *acc, moss_kx *row) {
  moss_kx *r;
  if (!q->requant) {
    moss_k_store(b, y, at, acc);
    return;
  }
  r = moss_k_requant(b, &q->rq, acc, row);
  if (q->yzp >= 0) r = bin(b, MOSS_KX_ADD, moss_k_cast(b, MOSS_DT_I32, moss_k_load(b, q->yzp, I(b, 0))), r);
  moss_k_store(b, y, at, moss_k_qclamp(b, n, n->outputs[0]->dtype, r));
}

/* Conv, int8: the output plane of one channel (of 4 for block4x1) in
 * tiles of whole output rows (a row longer than QCAP / 4 is cut in column
 * tiles), each held in a private int32 array of at most QCAP accumulators
 * (16 KiB). Every stored entry adds w * (x - x_zp) over the rows its
 * kernel row and the columns its kernel column reach inside the input;
 * taps in the padding add nothing, as in the dense kernel (which pads with
 * x_zp). Then the tile is requantized and stored. */
#define QCAP 4096

static moss_status lower_qconv(moss_kb *b, const moss_node *n, const moss_sparse_view *v) {
  const moss_value *w = n->inputs[v->winput], *y = n->outputs[0];
  int nt = n->sparse == MOSS_SPARSE_BLOCK_4x1 ? 4 : 1, x, yb, acc, k, dense = -1;
  int64_t T, R, RT;
  enc e;
  conv_geom gm;
  entry en;
  qio q;
  moss_kx *xz, *bb, *xb, *mb, *m, *r0, *j0, *re, *je, *t, *i, *ra, *rz, *lo, *hi, *oh, *xr, *o, *j;
  moss_kx *wk[4];
  if (moss_value_numel(y) <= 0) return MOSS_OK;
  if (n->sparse) {
    encode(b, n, v, n->sparse, &e);
  } else { /* the dense twin: the same loops over every term of the weight */
    memset(&e, 0, sizeof e);
    moss_k_comment(b, "dense int8 weights, every term");
    dense = moss_k_input(b, v->winput);
  }
  MOSS_TRY(conv_geometry(b, n, w, &gm));
  T = gm.OW < QCAP / 4 ? gm.OW : QCAP / 4; /* columns per tile */
  R = T < gm.OW ? 1 : QCAP / (nt * T);      /* rows per tile */
  if (R > gm.OH) R = gm.OH;
  RT = R * T;
  qio_init(b, n, v, &q);
  x = moss_k_input(b, 0);
  yb = moss_k_output(b, 0);
  acc = moss_k_local(b, "acc", MOSS_DT_I32, nt * RT);
  xz = moss_k_let(b, "xz", q.xzp >= 0 ? moss_k_cast(b, MOSS_DT_I32, moss_k_load(b, q.xzp, I(b, 0))) : i32(b, 0));
  bb = moss_k_range(b, "b", gm.B, MOSS_KL_PARALLEL);
  xb = moss_k_let(b, "xb", moss_k_mulc(b, bb, gm.C * gm.H * gm.W));
  mb = moss_k_range(b, "mb", gm.M / nt, MOSS_KL_PARALLEL);
  m = moss_k_let(b, "m", moss_k_mulc(b, mb, nt));
  r0 = moss_k_for(b, "r0", I(b, 0), I(b, gm.OH), R, MOSS_KL_PARALLEL, 0);
  j0 = moss_k_for(b, "j0", I(b, 0), I(b, gm.OW), T, MOSS_KL_PARALLEL, 0);
  re = moss_k_let(b, "re", bin(b, MOSS_KX_MIN, moss_k_addc(b, r0, R), I(b, gm.OH)));
  je = moss_k_let(b, "je", bin(b, MOSS_KX_MIN, moss_k_addc(b, j0, T), I(b, gm.OW)));
  t = moss_k_range(b, "t", nt, MOSS_KL_SERIAL);
  i = moss_k_range(b, "i", RT, MOSS_KL_PARALLEL);
  moss_k_store(b, acc, sum(b, moss_k_mulc(b, t, RT), i),
               q.bias >= 0 ? moss_k_load(b, q.bias, sum(b, m, t)) : i32(b, 0));
  moss_k_end(b);
  moss_k_end(b);
  entries(b, &gm, n->sparse, &e, dense, v->dtype, mb, 1, &en);
  ra = moss_k_let(b, "ra", bin(b, MOSS_KX_MAX, ldi(b, gm.lo[0], en.kh), r0));
  rz = moss_k_let(b, "rz", bin(b, MOSS_KX_MIN, ldi(b, gm.hi[0], en.kh), re));
  lo = moss_k_let(b, "lo", bin(b, MOSS_KX_MAX, ldi(b, gm.lo[1], en.kw), j0));
  hi = moss_k_let(b, "hi", bin(b, MOSS_KX_MIN, ldi(b, gm.hi[1], en.kw), je));
  /* (x - x_zp) and w are exact in int32, so is their product. */
  if (nt == 4) {
    for (k = 0; k < 4; k++)
      wk[k] = moss_k_let(b, k == 0 ? "wa" : k == 1 ? "wb" : k == 2 ? "wc" : "wd",
                         moss_k_cast(b, MOSS_DT_I32, moss_k_load(b, e.v, moss_k_addc(b, en.wq, k))));
  } else {
    wk[0] = moss_k_let(b, "wi", moss_k_cast(b, MOSS_DT_I32, en.wv));
  }
  oh = moss_k_for(b, "oh", ra, rz, 1, MOSS_KL_PARALLEL, 0);
  xr = moss_k_let(b, "xr", sum(b, sum(b, xb, moss_k_mulc(b, oh, gm.s[0] * gm.W)),
                               sum(b, en.xo, moss_k_mulc(b, lo, gm.s[1]))));
  o = moss_k_let(b, "o", bin(b, MOSS_KX_SUB, sum(b, moss_k_mulc(b, bin(b, MOSS_KX_SUB, oh, r0), T), lo), j0));
  j = moss_k_for(b, "j", I(b, 0), bin(b, MOSS_KX_SUB, hi, lo), 1, MOSS_KL_PARALLEL, 0);
  {
    moss_kx *xv = bin(b, MOSS_KX_SUB,
                      moss_k_cast(b, MOSS_DT_I32, moss_k_load(b, x, sum(b, xr, moss_k_mulc(b, j, gm.s[1])))), xz);
    if (nt == 4) xv = moss_k_let(b, "xv", xv);
    for (k = 0; k < nt; k++) {
      moss_kx *at = sum(b, moss_k_addc(b, o, k * RT), j);
      moss_k_store(b, acc, at, bin(b, MOSS_KX_ADD, moss_k_load(b, acc, at), bin(b, MOSS_KX_MUL, wk[k], xv)));
    }
  }
  moss_k_end(b); /* j */
  moss_k_end(b); /* oh */
  for (k = 0; k < en.levels; k++) moss_k_end(b); /* entries */
  t = moss_k_range(b, "t", nt, MOSS_KL_PARALLEL);
  oh = moss_k_for(b, "oh", r0, re, 1, MOSS_KL_PARALLEL, 0);
  j = moss_k_for(b, "j", j0, je, 1, MOSS_KL_PARALLEL, 0);
  {
    moss_kx *s = moss_k_let(b, "s", moss_k_load(b, acc,
        sum(b, moss_k_mulc(b, t, RT), bin(b, MOSS_KX_SUB, sum(b, moss_k_mulc(b, bin(b, MOSS_KX_SUB, oh, r0), T), j), j0))));
    moss_kx *at = sum(b, moss_k_mulc(b, sum(b, moss_k_mulc(b, sum(b, moss_k_mulc(b, bb, gm.M), sum(b, m, t)), gm.OH), oh), gm.OW), j);
    qstore(b, n, &q, yb, at, s, sum(b, m, t));
  }
  moss_k_end(b); /* j */
  moss_k_end(b); /* oh */
  moss_k_end(b); /* t */
  moss_k_end(b); /* j0 */
  moss_k_end(b); /* r0 */
  moss_k_end(b); /* mb */
  moss_k_end(b); /* b */
  return MOSS_OK;
}

/* By columns: the columns of |v| that hold a nonzero (|*kept| of them,
 * their indices the table |*ci|) and the weight on them, [rows, kept] (the
 * table |*wv|), |kept| rounded up to a multiple of |lanes| with columns of
 * zeros (their index 0) so that the dot products are whole vectors. */
static void encode_columns(moss_kb *b, const moss_node *n, const moss_sparse_view *v, int lanes,
                           int *ci, int *wv, int64_t *kept) {
  int64_t r, c, k = 0, kp;
  int32_t *idx = moss_k_scratch(b, v->cols + lanes, sizeof *idx);
  void *val;
  *kept = 0;
  if (!idx) return;
  for (c = 0; c < v->cols; c++) {
    for (r = 0; r < v->rows && moss_sparse_at(v, r, c) == 0.0f; r++) {}
    if (r < v->rows) idx[k++] = (int32_t)c;
  }
  if (k == 0) idx[k++] = 0; /* an all-zero weight: one column of zeros */
  kp = (k + lanes - 1) / lanes * lanes;
  val = moss_k_scratch(b, v->rows * kp, moss_dtype_size(v->dtype));
  if (!val) return;
  for (c = k; c < kp; c++) idx[c] = 0;
  for (r = 0; r < v->rows; r++)
    for (c = 0; c < kp; c++) put_value(val, v, r * kp + c, r, c < k ? idx[c] : v->cols);
  moss_k_comment(b,
                 "node '%s' (%s): weight '%s' as columns, %lld of %lld columns kept, %lld x %lld",
                 n->name, n->op_type, n->inputs[v->winput]->name, (long long)k, (long long)v->cols,
                 (long long)v->rows, (long long)kp);
  *ci = moss_k_table(b, "col_idx", MOSS_DT_I32, kp, idx);
  *wv = moss_k_table(b, "values", v->dtype, v->rows * kp, val);
  *kept = kp;
}

/* The byte lanes of the columns kernel's vectors on |cpu|: one SIMD
 * register of bytes; 1 (scalar loops) without SIMD, on a GPU, or where
 * nothing is known (the C backend). */
int moss_lower_columns_lanes(const moss_kernel_cpu *cpu) {
  if (!cpu || cpu->gpu || cpu->no_simd || cpu->vector_bytes < 2) return 1;
  return cpu->vector_bytes;
}

/* Gemm and MatMul, int8 (CSR, or by columns): each output is the dot
 * product of the row's stored weights with the input row at their
 * columns, less x_zp times the row's weight sum (a table), plus the bias.
 * By columns, the input row is first gathered at the kept columns into a
 * private array, and the dot products run over it in explicit vectors of
 * one register's bytes, widened to int32 lanes and summed across at the
 * end (the kept columns padded to whole vectors): left to the loop
 * vectorizer, a short loop of kept columns was unrolled whole and the rows
 * vectorized instead, by gathers. */
static moss_status lower_qlinear(moss_kb *b, const moss_node *n, const moss_sparse_view *v) {
  const moss_value *x = n->inputs[0], *xzv = moss_node_input(n, 2);
  int64_t K = v->cols, N = v->rows, M = moss_value_numel(n->outputs[0]) / N, r, c, kept = 0;
  int64_t rowsM = x->rank >= 2 ? x->dims[x->rank - 2] : 1;
  int32_t *rsum;
  int rs, xb, yb, cols = n->sparse == MOSS_SPARSE_COLUMNS, ci = -1, wv = -1, xs = -1;
  int L = cols ? moss_lower_columns_lanes(&b->cpu) : 1;
  enc e;
  qio q;
  moss_kx *i, *ri, *xr, *xz, *s, *p, *a;
  if (n->sparse != MOSS_SPARSE_CSR && !cols)
    return moss_kb_fail(b, MOSS_E_INTERNAL, "int8 %s weights take CSR or columns only, not %s",
                        n->op_type, moss_sparse_format_name(n->sparse));
  if (cols) encode_columns(b, n, v, L, &ci, &wv, &kept);
  else encode(b, n, v, n->sparse, &e);
  if (b->st != MOSS_OK) return b->st;
  rsum = moss_k_scratch(b, N, sizeof *rsum);
  if (!rsum) return b->st;
  for (r = 0; r < N; r++) {
    int64_t t = 0;
    for (c = 0; c < K; c++) t += (int64_t)moss_sparse_at(v, r, c);
    rsum[r] = (int32_t)t;
  }
  rs = moss_k_table(b, "row_sum", MOSS_DT_I32, N, rsum);
  qio_init(b, n, v, &q);
  if (M <= 0) {
    moss_k_comment(b, "empty output");
    return MOSS_OK;
  }
  xb = moss_k_input(b, 0);
  yb = moss_k_output(b, 0);
  if (cols) xs = moss_k_local(b, "xs", x->dtype, kept);
  i = moss_k_range(b, "i", M, MOSS_KL_PARALLEL);
  xr = moss_k_let(b, "xr", moss_k_mulc(b, i, K));
  if (xzv && moss_value_numel(xzv) > 1) /* MatMulInteger: a zero point per row of A */
    xz = moss_k_let(b, "xz", moss_k_cast(b, MOSS_DT_I64, moss_k_load(b, q.xzp, bin(b, MOSS_KX_REM, i, I(b, rowsM)))));
  else
    xz = moss_k_let(b, "xz", q.xzp >= 0 ? moss_k_cast(b, MOSS_DT_I64, moss_k_load(b, q.xzp, I(b, 0))) : I(b, 0));
  if (cols) { /* the row at the kept columns */
    p = moss_k_range(b, "c", kept, MOSS_KL_PARALLEL);
    moss_k_store(b, xs, p, moss_k_load(b, xb, sum(b, xr, ldi(b, ci, p))));
    moss_k_end(b);
  }
  ri = moss_k_range(b, "r", N, MOSS_KL_PARALLEL);
  s = moss_k_let(b, "s", i32(b, 0));
  if (cols) {
    moss_kx *wk;
    if (L > 1) {
      moss_kx *vs = moss_k_let(b, "vs", moss_k_splat(b, i32(b, 0), L)), *at;
      p = moss_k_range(b, "k", kept / L, MOSS_KL_REDUCE);
      at = moss_k_mulc(b, p, L);
      wk = moss_k_vload(b, wv, sum(b, moss_k_mulc(b, ri, kept), at), L);
      acc_add(b, vs, bin(b, MOSS_KX_MUL, moss_k_cast(b, MOSS_DT_I32, moss_k_vload(b, xs, at, L)),
                         moss_k_cast(b, MOSS_DT_I32, wk)));
      moss_k_end(b);
      moss_k_set(b, s, moss_k_hsum(b, vs));
    } else {
      p = moss_k_range(b, "k", kept, MOSS_KL_REDUCE);
      wk = moss_k_load(b, wv, sum(b, moss_k_mulc(b, ri, kept), p));
      acc_add(b, s, bin(b, MOSS_KX_MUL, moss_k_cast(b, MOSS_DT_I32, moss_k_load(b, xs, p)),
                        moss_k_cast(b, MOSS_DT_I32, wk)));
      moss_k_end(b);
    }
  } else {
    moss_kx *xk;
    p = moss_k_for(b, "p", ldi(b, e.rp, ri), ldi(b, e.rp, moss_k_addc(b, ri, 1)), 1,
                   MOSS_KL_REDUCE, 0);
    xk = moss_k_load(b, xb, sum(b, xr, ldi(b, e.ci, p)));
    acc_add(b, s, bin(b, MOSS_KX_MUL, moss_k_cast(b, MOSS_DT_I32, xk),
                      moss_k_cast(b, MOSS_DT_I32, moss_k_load(b, e.v, p))));
    moss_k_end(b);
  }
  /* (int64) s - xz * row_sum[r] + bias[r], back to int32 */
  a = bin(b, MOSS_KX_SUB, moss_k_cast(b, MOSS_DT_I64, s), bin(b, MOSS_KX_MUL, xz, ldi(b, rs, ri)));
  if (q.bias >= 0) a = bin(b, MOSS_KX_ADD, a, ldi(b, q.bias, ri));
  a = moss_k_let(b, "acc", moss_k_cast(b, MOSS_DT_I32, a));
  qstore(b, n, &q, yb, sum(b, moss_k_mulc(b, i, N), ri), a, ri);
  moss_k_end(b); /* r */
  moss_k_end(b); /* i */
  return MOSS_OK;
}

/* ---- entry -------------------------------------------------------------- */

/* The dense int8 convolutions that take the sparse kernels' loops. */
static int dense_twin(const moss_node *n, moss_sparse_view *v) {
  return !n->sparse && (n->op == MOSS_OP_QLinearConv || n->op == MOSS_OP_ConvInteger) &&
         moss_sparse_view_get(n, v) && v->dtype != MOSS_DT_F32;
}

int moss_lower_takes_sparse(const moss_node *n) {
  moss_sparse_view v;
  if (dense_twin(n, &v)) return 1;
  if (n->sparse <= MOSS_SPARSE_DENSE || n->sparse >= MOSS_SPARSE_NFORMATS) return 0;
  switch (n->op) {
  case MOSS_OP_Gemm: case MOSS_OP_MatMul: case MOSS_OP_Conv:
  case MOSS_OP_QLinearConv: case MOSS_OP_ConvInteger:
    return 1;
  case MOSS_OP_QLinearMatMul: case MOSS_OP_MatMulInteger: case MOSS_OP_MossQGemm:
    return n->sparse == MOSS_SPARSE_CSR || n->sparse == MOSS_SPARSE_COLUMNS;
  default:
    return 0;
  }
}

moss_status moss_lower_sparse(moss_kb *b, const moss_node *n) {
  moss_sparse_view v;
  moss_sparse_stats s;
  if (dense_twin(n, &v)) {
    if (moss_lower_qconv_gpu_tiles(b, n)) return b->st; /* lower_quant.c: a GPU's work-group tiles */
    if (moss_lower_qconv_igemm(b, n)) return b->st; /* lower_conv.c, with DOT4 */
    return lower_qconv(b, n, &v);
  }
  if (n->sparse <= MOSS_SPARSE_DENSE || n->sparse >= MOSS_SPARSE_NFORMATS)
    return moss_kb_fail(b, MOSS_E_INTERNAL, "unknown sparse format %d", n->sparse);
  if (!moss_sparse_view_get(n, &v) || !moss_sparse_stats_compute(n, &s) ||
      moss_sparse_cost(&s, n->sparse) < 0.0)
    return moss_kb_fail(b, MOSS_E_INTERNAL, "sparse format %s on a weight that cannot take it",
                        moss_sparse_format_name(n->sparse));
  /* an int8 Conv on the tile: its kept words (lower_conv.c) */
  if (n->op == MOSS_OP_QLinearConv && moss_lower_qconv_igemm(b, n)) return b->st;
  if (n->op == MOSS_OP_QLinearConv || n->op == MOSS_OP_ConvInteger) return lower_qconv(b, n, &v);
  if (v.dtype != MOSS_DT_F32) return lower_qlinear(b, n, &v);
  if (n->op == MOSS_OP_Conv) {
    /* On a machine with the register tile: the implicit product (lower_conv.c). */
    if (moss_lower_conv_sparse(b, n, n->sparse == MOSS_SPARSE_BLOCK_4x1 ? 4 : 1)) return b->st;
    return lower_conv(b, n, &v);
  }
  return lower_linear(b, n, &v);
}
