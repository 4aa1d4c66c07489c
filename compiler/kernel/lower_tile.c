/* lower_tile.c - the register-tiled matrix product (lower.h, moss_tile):
 * the one fast path Gemm, MatMul and the pointwise Conv share on a machine
 * with SIMD registers. With int32 sums (dt I32, a machine with DOT4) each
 * element of V and S holds four bytes, S's signed and V's unsigned (DOT4)
 * or signed (DOT4S, where cpu.dot4_signed), and the multiply-add is four
 * byte products per lane (int8 Conv).
 *
 * Y (M x N) is cut into column blocks of nr = nv * lanes and, inside each,
 * row blocks of mr. A tile keeps its mr * nv vector sums in locals for the
 * whole k loop (backends keep them in registers: LLVM promotes the locals,
 * and the counts are chosen to fit the register file with room for the nv
 * row vectors of V and one broadcast element of S). Per k, the tile reads
 * nv vectors of V's row and mr elements of S's column: mr * nv vector
 * multiply-adds for nv + mr loads. Column blocks run outermost, so a block
 * of V (K x nr) stays in cache while every row block of S streams past.
 * The last, narrower column block takes the whole vectors that fit, then
 * single columns with scalar sums; the last row block has fewer rows.
 *
 * Constant operands are packed at compile time (moss_tile_pack) so that a
 * tile reads them contiguously: V in blocks of nr columns ([K][nr] each),
 * S in blocks of mr rows ([K][mr] each). A pruned S (s_sparse) keeps only
 * its nonzero terms: a row block of s_blk rows (its tile rows) loops over
 * its own terms, each naming the row of V it multiplies. */
#include <stdio.h>
#include <string.h>

#include "lower.h"
#include "lower_quant.h"

#define TILE_MAX_ROWS 8
#define TILE_MAX_VECS 4

/* The shape for elements of |es| bytes; |bytes|: int32 sums of byte products. */
static int shape(const moss_kb *b, int es, int bytes, int *out_mr, int *out_nr, int *out_lanes) {
  int lanes, mr, nv;
  *out_mr = *out_nr = *out_lanes = 0;
  if (!es || b->cpu.vector_bytes < 2 * es) return 0;
  lanes = b->cpu.vector_bytes / es;
  /* int32 sums of byte products: where the machine has a byte dot product,
   * only at its width; elsewhere the backend widens the bytes. */
  if (bytes && b->cpu.dot4 && b->cpu.dot4 != lanes) return 0;
  /* The sums, nv row vectors and one broadcast must fit the register file:
   * 6 x 4 + 4 + 1 = 29 of 32 registers, 6 x 2 + 2 + 1 = 15 of 16. */
  if (b->cpu.vector_regs >= 32) mr = 6, nv = 4;
  else mr = 6, nv = 2;
  *out_mr = mr;
  *out_nr = nv * lanes;
  *out_lanes = lanes;
  return 1;
}

int moss_tile_shape(const moss_kb *b, moss_dtype dt, int *out_mr, int *out_nr, int *out_lanes) {
  return shape(b, dt == MOSS_DT_F32 ? 4 : dt == MOSS_DT_F64 ? 8 : 0, 0, out_mr, out_nr, out_lanes);
}

int moss_tile_shape_bytes(const moss_kb *b, int *out_mr, int *out_nr, int *out_lanes) {
  return shape(b, 4, 1, out_mr, out_nr, out_lanes);
}

int moss_tile_pack(moss_kb *b, const char *name, moss_dtype dt, const void *data, int64_t K,
                   int64_t X, int64_t ks, int64_t xs, int64_t blk) {
  size_t es = moss_dtype_size(dt), bytes;
  const unsigned char *src = data;
  unsigned char *t;
  int64_t x0, k, x;
  if (b->st != MOSS_OK) return 0;
  if (K < 0 || X < 0 || blk < 1 || !moss_size_mul((size_t)K * (size_t)X, es, &bytes)) {
    moss_kb_fail(b, MOSS_E_INVALID_MODEL, "weight '%s' too large to pack", name);
    return 0;
  }
  t = moss_arena_alloc(b->arena, bytes ? bytes : 1, 64);
  if (!t) {
    moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
    return 0;
  }
  for (x0 = 0; x0 < X; x0 += blk) {
    int64_t w = X - x0 < blk ? X - x0 : blk;
    for (k = 0; k < K; k++)
      for (x = 0; x < w; x++)
        memcpy(t + (size_t)(x0 * K + k * w + x) * es, src + (size_t)(k * ks + (x0 + x) * xs) * es, es);
  }
  return moss_k_table(b, name, dt, K * X, t);
}

/* Where one tile sits: rows [i0, i0 + mr) of Y; columns jb + c0 .. of the
 * column block starting at |jb|, |bw| columns wide (V's packed block width),
 * as |nv| vectors of |lanes| (1: single columns). */
typedef struct at {
  moss_kx *i0, *jb, *c0;
  moss_kx *row; /* with t->v_rows: rows[k], loaded once per k */
  moss_kx *sp[TILE_MAX_ROWS], *srow; /* with t->s_rows: pos[i0 + r] per tile, rows[k] per k */
  int mr, nv, lanes;
  int64_t bw;
} at;

static moss_kx *s_elem(moss_kb *b, const moss_tile *t, const at *p, int r, moss_kx *k) {
  moss_kx *e;
  if (t->s_sparse)
    return moss_k_load(b, t->s, moss_k_addc(b, moss_k_mulc(b, k, t->s_blk), r));
  if (t->s_rows)
    e = moss_k_add(b, p->sp[r], p->srow);
  else if (t->s_packed)
    e = moss_k_addc(b, moss_k_add(b, moss_k_mulc(b, p->i0, t->K), moss_k_mulc(b, k, p->mr)), r);
  else
    e = moss_k_add(b, moss_k_mulc(b, moss_k_addc(b, p->i0, r), t->s_row), moss_k_mulc(b, k, t->s_k));
  return moss_k_load(b, t->s, moss_k_add(b, t->s_at, e));
}

static moss_kx *v_row(moss_kb *b, const moss_tile *t, const at *p, int v, moss_kx *k) {
  moss_kx *c = moss_k_addc(b, p->c0, (int64_t)v * p->lanes), *e;
  if (t->v_packed)
    e = moss_k_add(b, moss_k_add(b, moss_k_mulc(b, p->jb, t->K), moss_k_mulc(b, k, p->bw)), c);
  else if (t->v_rows || t->s_sparse)
    e = moss_k_add(b, p->row, moss_k_add(b, p->jb, c));
  else
    e = moss_k_add(b, moss_k_mulc(b, k, t->v_k), moss_k_add(b, p->jb, c));
  e = moss_k_add(b, t->v_at, e);
  return p->lanes > 1 ? moss_k_vload(b, t->v, e, p->lanes) : moss_k_load(b, t->v, e);
}

/* One tile: the sums in locals over the whole k loop, then the stores. */
static void tile(moss_kb *b, const moss_tile *t, const at *p) {
  moss_kx *acc[TILE_MAX_ROWS][TILE_MAX_VECS], *bv[TILE_MAX_VECS], *k, *a, *zero;
  moss_kfn dot = b->cpu.dot4_signed ? MOSS_KFN_DOT4S : MOSS_KFN_DOT4;
  at q;
  char name[24];
  int r, v;
  zero = moss_k_splat(b, t->dt == MOSS_DT_I32 ? moss_k_int(b, t->dt, 0) : moss_k_flt(b, t->dt, 0.0), p->lanes);
  for (r = 0; r < p->mr; r++)
    for (v = 0; v < p->nv; v++) {
      snprintf(name, sizeof name, "c%d_%d", r, v);
      acc[r][v] = moss_k_let(b, name, zero);
    }
  q = *p;
  if (t->s_rows)
    for (r = 0; r < p->mr; r++) {
      snprintf(name, sizeof name, "sp%d", r);
      q.sp[r] = moss_k_let(b, name, moss_k_load(b, t->s_pos, moss_k_addc(b, p->i0, r)));
    }
  p = &q;
  if (t->s_sparse) { /* the row block's nonzero terms */
    moss_kx *ib = t->s_blk > 1 ? moss_k_bin(b, MOSS_KX_DIV, p->i0, moss_k_idx(b, t->s_blk)) : p->i0;
    k = moss_k_for(b, "k", moss_k_cast(b, MOSS_DT_I64, moss_k_load(b, t->s_rp, ib)),
                   moss_k_cast(b, MOSS_DT_I64, moss_k_load(b, t->s_rp, moss_k_addc(b, ib, 1))), 1,
                   MOSS_KL_REDUCE, 0);
    q.row = moss_k_let(b, "row", moss_k_cast(b, MOSS_DT_I64, moss_k_load(b, t->s_voff, k)));
  } else {
    k = moss_k_range(b, "k", t->K, MOSS_KL_REDUCE);
  }
  if (t->v_rows) q.row = moss_k_let(b, "row", moss_k_load(b, t->v_koff, k));
  if (t->s_rows) q.srow = moss_k_let(b, "srow", moss_k_load(b, t->s_koff, k));
  for (v = 0; v < p->nv; v++) {
    snprintf(name, sizeof name, "v%d", v);
    bv[v] = moss_k_let(b, name, v_row(b, t, p, v, k));
  }
  for (r = 0; r < p->mr; r++) {
    snprintf(name, sizeof name, "s%d", r);
    a = moss_k_splat(b, moss_k_let(b, name, s_elem(b, t, p, r, k)), p->lanes);
    for (v = 0; v < p->nv; v++)
      moss_k_set(b, acc[r][v],
                 t->dt == MOSS_DT_I32 ? moss_k_call(b, dot, acc[r][v], bv[v], a)
                 : b->cpu.fma ? moss_k_call(b, MOSS_KFN_FMA, a, bv[v], acc[r][v])
                              : moss_k_bin(b, MOSS_KX_ADD, acc[r][v], moss_k_bin(b, MOSS_KX_MUL, a, bv[v])));
  }
  moss_k_end(b);
  for (r = 0; r < p->mr; r++) {
    moss_kx *row = moss_k_addc(b, p->i0, r);
    moss_kx *yr = moss_k_add(b, t->y_at, moss_k_add(b, moss_k_mulc(b, row, t->y_row), p->jb));
    for (v = 0; v < p->nv; v++) {
      moss_kx *c = moss_k_addc(b, p->c0, (int64_t)v * p->lanes), *val = acc[r][v], *at = moss_k_add(b, yr, c);
      if (t->epilogue) val = t->epilogue(b, t->arg, val, row, moss_k_add(b, p->jb, c), at, r);
      moss_k_store(b, t->y, at, val);
    }
  }
}

/* Every row block of one column block: full blocks of mr rows in a loop,
 * then the remaining rows. */
static void rows(moss_kb *b, const moss_tile *t, at p, int mr) {
  int64_t mfull = t->M / mr * mr;
  if (mfull > 0) {
    p.i0 = moss_k_for(b, "i", moss_k_idx(b, 0), moss_k_idx(b, mfull), mr, MOSS_KL_PARALLEL, 0);
    p.mr = mr;
    tile(b, t, &p);
    moss_k_end(b);
  }
  if (t->M > mfull) {
    p.i0 = moss_k_idx(b, mfull);
    p.mr = (int)(t->M - mfull);
    tile(b, t, &p);
  }
}

/* Every column block of one row block (p.i0, p.mr set): full blocks of
 * nr columns in a loop, then the whole vectors and single columns left. */
static void cols(moss_kb *b, const moss_tile *t, at p, int nr, int lanes) {
  int64_t nfull = t->N / nr * nr, nrem = t->N - nfull, vecs = nrem / lanes;
  p.c0 = moss_k_idx(b, 0);
  if (nfull > 0) {
    p.jb = moss_k_for(b, "jb", moss_k_idx(b, 0), moss_k_idx(b, nfull), nr, MOSS_KL_SERIAL, 0);
    p.nv = nr / lanes;
    p.lanes = lanes;
    p.bw = nr;
    tile(b, t, &p);
    moss_k_end(b);
  }
  if (nrem > 0) {
    p.jb = moss_k_idx(b, nfull);
    p.bw = nrem;
    if (vecs > 0) {
      p.nv = (int)vecs;
      p.lanes = lanes;
      tile(b, t, &p);
    }
    if (nrem > vecs * lanes) {
      p.c0 = moss_k_for(b, "jc", moss_k_idx(b, vecs * lanes), moss_k_idx(b, nrem), 1, MOSS_KL_SERIAL, 0);
      p.nv = 1;
      p.lanes = 1;
      tile(b, t, &p);
      moss_k_end(b);
    }
  }
}

/* Whether S's element |i| of type |dt| (F32 or I32) is zero (-0.0 too). */
static int s_zero(const void *w, moss_dtype dt, int64_t i) {
  return dt == MOSS_DT_I32 ? ((const int32_t *)w)[i] == 0 : ((const float *)w)[i] == 0.0f;
}

void moss_tile_sparse_s(moss_kb *b, moss_tile *t, moss_dtype dt, const void *w, int64_t is,
                        int64_t ks, int64_t M, int64_t K, int blk, const int64_t *rows) {
  int64_t nb = M / blk, r, k, q, cnt = 0, put = 0;
  size_t es = moss_dtype_size(dt);
  int32_t *rp = moss_k_scratch(b, nb + 1, sizeof *rp), *voff;
  unsigned char *val;
  if (!rp) return;
  if (dt != MOSS_DT_F32 && dt != MOSS_DT_I32) {
    moss_kb_fail(b, MOSS_E_INTERNAL, "sparse tile of %s", moss_dtype_name(dt));
    return;
  }
  for (r = 0; r < nb; r++) {
    rp[r] = (int32_t)cnt;
    for (k = 0; k < K; k++) {
      for (q = 0; q < blk && s_zero(w, dt, (r * blk + q) * is + k * ks); q++) {}
      cnt += q < blk;
    }
  }
  rp[nb] = (int32_t)cnt;
  voff = moss_k_scratch(b, cnt ? cnt : 1, sizeof *voff);
  val = moss_k_scratch(b, cnt ? cnt * blk : 1, es);
  if (!voff || !val) return;
  voff[0] = 0;
  memset(val, 0, es);
  for (r = 0; r < nb; r++)
    for (k = 0; k < K; k++) {
      for (q = 0; q < blk && s_zero(w, dt, (r * blk + q) * is + k * ks); q++) {}
      if (q == blk) continue;
      voff[put] = (int32_t)rows[k]; /* the callers keep V under 2^31 elements */
      for (q = 0; q < blk; q++)
        memcpy(val + (size_t)(put * blk + q) * es,
               (const unsigned char *)w + (size_t)((r * blk + q) * is + k * ks) * es, es);
      put++;
    }
  memset(t, 0, sizeof *t);
  t->dt = dt;
  t->M = M;
  t->K = K;
  t->s_sparse = 1;
  t->s_blk = blk;
  t->s_rp = moss_k_table(b, "row_ptr", MOSS_DT_I32, nb + 1, rp);
  t->s_voff = moss_k_table(b, "term_rows", MOSS_DT_I32, cnt ? cnt : 1, voff);
  t->s = moss_k_table(b, "values", dt, cnt ? cnt * blk : 1, val);
  t->s_at = moss_k_idx(b, 0);
  moss_k_comment(b, "sparse weight on the tile: %lld terms in rows of %d (of %lld x %lld)", (long long)cnt, blk,
                 (long long)M, (long long)K);
}

void moss_tile_product(moss_kb *b, const moss_tile *t) {
  int mr, nr, lanes;
  int64_t nfull, nrem;
  at p;
  if (b->st != MOSS_OK) return;
  if (!(t->dt == MOSS_DT_I32 ? moss_tile_shape_bytes(b, &mr, &nr, &lanes) : moss_tile_shape(b, t->dt, &mr, &nr, &lanes)) ||
      mr > TILE_MAX_ROWS || nr / lanes > TILE_MAX_VECS) {
    moss_kb_fail(b, MOSS_E_INTERNAL, "no register tile for this machine");
    return;
  }
  if (t->s_sparse) { /* one row block per row of S's blocks */
    if (t->s_blk < 1 || t->s_blk > TILE_MAX_ROWS || t->M % t->s_blk || t->v_rows) {
      moss_kb_fail(b, MOSS_E_INTERNAL, "sparse tile rows");
      return;
    }
    mr = t->s_blk;
  }
  nfull = t->N / nr * nr;
  nrem = t->N - nfull;
  memset(&p, 0, sizeof p);
  p.c0 = moss_k_idx(b, 0);
  moss_k_comment(b, "register tiles of %d x %d (%d-lane vectors)%s", mr, nr, lanes,
                 b->cpu.fma ? ", fused multiply-add" : "");
  /* Threads take the outermost parallel loop's parts (parts.c): where
   * there are too few column blocks to share out evenly (under 2 per
   * thread) and more row blocks, the row blocks go outermost. The sums
   * are the same either way; only the order of the tiles changes. */
  if (b->cpu.threads > 1 && t->N / nr < 2 * b->cpu.threads && t->M / mr > t->N / nr) {
    int64_t mfull = t->M / mr * mr;
    moss_k_comment(b, "row blocks outermost: %lld of them against %lld whole column blocks, for %d threads",
                   (long long)(t->M / mr), (long long)(t->N / nr), b->cpu.threads);
    p.i0 = moss_k_for(b, "i", moss_k_idx(b, 0), moss_k_idx(b, mfull), mr, MOSS_KL_PARALLEL, 0);
    p.mr = mr;
    cols(b, t, p, nr, lanes);
    moss_k_end(b);
    if (t->M > mfull) {
      p.i0 = moss_k_idx(b, mfull);
      p.mr = (int)(t->M - mfull);
      cols(b, t, p, nr, lanes);
    }
    return;
  }
  if (nfull > 0) {
    p.jb = moss_k_for(b, "jb", moss_k_idx(b, 0), moss_k_idx(b, nfull), nr, MOSS_KL_PARALLEL, 0);
    p.nv = nr / lanes;
    p.lanes = lanes;
    p.bw = nr;
    rows(b, t, p, mr);
    moss_k_end(b);
  }
  if (nrem > 0) {
    int64_t vecs = nrem / lanes;
    p.jb = moss_k_idx(b, nfull);
    p.bw = nrem;
    if (vecs > 0) {
      p.nv = (int)vecs;
      p.lanes = lanes;
      rows(b, t, p, mr);
    }
    if (nrem > vecs * lanes) {
      p.c0 = moss_k_for(b, "jc", moss_k_idx(b, vecs * lanes), moss_k_idx(b, nrem), 1,
                        MOSS_KL_PARALLEL, 0);
      p.nv = 1;
      p.lanes = 1;
      rows(b, t, p, mr);
      moss_k_end(b);
    }
  }
}
