/* test_sparse.c - the sparse-format pass (compiler/passes/sparse.c) on
 * hand-made weights: what it measures (density, nonzero 4x1 blocks), the
 * format the cost rule of docs/sparse.md picks, and the MOSS_SPARSE
 * override. Each expected cost below is worked out by hand from the rule:
 * dense = rows*cols, csr = 2.5*nnz + rows, block4x1 = 5*blocks + rows/4,
 * block1x4 = 5*blocks + rows (cols % 4 == 0), 2:4 = 3.5*rows*ceil(cols/4)
 * (no group of 4 columns of a row with more than 2 nonzeros). Each test
 * runs the pass with allocation N failing, N = 1, 2, ... (oom.h). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "graph_build.h"
#include "harness.h"
#include "oom.h"
#include "passes/sparse.h"

/* A constant of shape |dims| whose element i is |nz[j]|+1 for i == idx[j],
 * zero elsewhere. */
static moss_value *cst(moss_ctx *ctx, moss_graph *g, const char *name, int rank,
                       const int64_t *dims, int n, const int *idx) {
  moss_value *v = val(ctx, g, name, rank, dims);
  int64_t numel = 1;
  int k;
  float *d;
  for (k = 0; k < rank; k++) numel *= dims[k];
  d = moss_graph_alloc(g, (size_t)numel * sizeof(float));
  for (k = 0; k < n; k++) d[idx[k]] = (float)(k + 1);
  v->data = d;
  return v;
}

static void set_int(moss_graph *g, moss_node *n, const char *name, int64_t v) {
  moss_attr *a = moss_graph_alloc(g, (size_t)(n->nattrs + 1) * sizeof *a);
  if (n->nattrs) memcpy(a, n->attrs, (size_t)n->nattrs * sizeof *a);
  a[n->nattrs].name = name;
  a[n->nattrs].type = MOSS_ATTR_INT;
  a[n->nattrs].i = v;
  n->attrs = a;
  n->nattrs++;
}

/* Gemm A[2,8] x B[8,8], B nonzero at (0,0) and (0,1): Wt = B^T holds them
 * at rows 0 and 1 of column 0, one 4x1 block. dense 64, csr 2*2.5+8 = 13,
 * block 5+2 = 7: block4x1. */
TEST(gemm_two_nonzeros_in_one_block) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_sparse_stats s;
    int64_t da[2] = {2, 8}, db[2] = {8, 8};
    static const int nz[2] = {0, 1};
    moss_node *n;
    oom_ctx_init(&ctx);
    ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
    n = node2(&ctx, g, "Gemm", "gemm", val(&ctx, g, "a", 2, da), cst(&ctx, g, "b", 2, db, 2, nz),
              val(&ctx, g, "y", 2, da));
    ASSERT_EQ(moss_sparse_stats_compute(n, &s), 1);
    ASSERT_EQ(s.rows, 8);
    ASSERT_EQ(s.cols, 8);
    ASSERT_EQ(s.nnz, 2);
    ASSERT_EQ(s.nblocks4x1, 1);
    ASSERT_NEAR(s.cost_dense, 64.0, 0.0);
    ASSERT_NEAR(s.cost_csr, 13.0, 0.0);
    ASSERT_NEAR(s.cost_block4x1, 7.0, 0.0);
    /* Two 1x4 blocks (rows 0 and 1, columns 0..3): 10+8 = 18; 2:4 fits:
     * 3.5*8*2 = 56. */
    ASSERT_EQ(s.nblocks1x4, 2);
    ASSERT_NEAR(s.cost_block1x4, 18.0, 0.0);
    ASSERT_EQ(s.nm24, 1);
    ASSERT_NEAR(s.cost_nm24, 56.0, 0.0);
    ASSERT_EQ(moss_sparse_choose(&s), MOSS_SPARSE_BLOCK_4x1);
    ASSERT_NEAR(moss_sparse_density(n), 2.0 / 64.0, 1e-12);
    unsetenv("MOSS_SPARSE");
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(n->sparse, MOSS_SPARSE_BLOCK_4x1);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* Gemm transB=1 with B[6,8] (Wt = B, 6 rows: no 4x1 blocks), nonzeros at
 * (0,0), (0,1): csr 5+6 = 11 < 48: csr. The same B without transB has
 * Wt = B^T [8, 6], nonzeros in rows 0 and 1 of column 0: one block,
 * 5+2 = 7 < csr 5+8 = 13: block. */
TEST(gemm_transb_rows_not_multiple_of_4) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_sparse_stats s;
    int64_t da[2] = {2, 8}, db[2] = {6, 8}, dy[2] = {2, 6}, da2[2] = {2, 6}, dy2[2] = {2, 8};
    static const int nz[2] = {0, 1};
    moss_node *t, *u;
    oom_ctx_init(&ctx);
    ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
    t = node2(&ctx, g, "Gemm", "gemm_t", val(&ctx, g, "a", 2, da), cst(&ctx, g, "b", 2, db, 2, nz),
              val(&ctx, g, "y", 2, dy));
    set_int(g, t, "transB", 1);
    u = node2(&ctx, g, "Gemm", "gemm_n", val(&ctx, g, "a2", 2, da2),
              cst(&ctx, g, "b2", 2, db, 2, nz), val(&ctx, g, "y2", 2, dy2));
    ASSERT_EQ(moss_sparse_stats_compute(t, &s), 1);
    ASSERT_EQ(s.rows, 6);
    ASSERT_EQ(s.nnz, 2);
    ASSERT_EQ(s.nblocks4x1, 0);
    ASSERT_TRUE(s.cost_block4x1 < 0);
    ASSERT_NEAR(s.cost_csr, 11.0, 0.0);
    /* One 1x4 block: 5+6 = 11, a tie with csr: the lower code, csr. */
    ASSERT_NEAR(s.cost_block1x4, 11.0, 0.0);
    ASSERT_EQ(moss_sparse_choose(&s), MOSS_SPARSE_CSR);
    ASSERT_EQ(moss_sparse_stats_compute(u, &s), 1);
    ASSERT_EQ(s.rows, 8);
    ASSERT_EQ(s.cols, 6);
    ASSERT_EQ(s.nblocks4x1, 1);
    setenv("MOSS_SPARSE", "auto", 1);
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(t->sparse, MOSS_SPARSE_CSR);
    ASSERT_EQ(u->sparse, MOSS_SPARSE_BLOCK_4x1);
    /* block mode: 4x1 where the rows allow, else csr. */
    setenv("MOSS_SPARSE", "block", 1);
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(t->sparse, MOSS_SPARSE_CSR);
    ASSERT_EQ(u->sparse, MOSS_SPARSE_BLOCK_4x1);
    unsetenv("MOSS_SPARSE");
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* Half the weights zero (every other element of an 8x8 B, so Wt = B^T has
 * its even rows full, its odd rows zero): csr costs 32*2.5+8 = 88 > 64,
 * every 4x1 block holds a nonzero (5*16+2 = 82), a full group of 4 rules
 * out 2:4, but the zero rows leave 8 1x4 blocks: 5*8+8 = 48: block1x4. A
 * full B stays dense; forced csr takes both. */
TEST(half_zeros_whole_rows_take_block1x4) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_sparse_stats s;
    int64_t da[2] = {2, 8}, db[2] = {8, 8};
    int half[32], full[64], k;
    moss_node *h, *f;
    for (k = 0; k < 32; k++) half[k] = 2 * k;
    for (k = 0; k < 64; k++) full[k] = k;
    oom_ctx_init(&ctx);
    ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
    h = node2(&ctx, g, "MatMul", "half", val(&ctx, g, "a", 2, da),
              cst(&ctx, g, "b", 2, db, 32, half), val(&ctx, g, "y", 2, da));
    f = node2(&ctx, g, "MatMul", "full", val(&ctx, g, "a2", 2, da),
              cst(&ctx, g, "b2", 2, db, 64, full), val(&ctx, g, "y2", 2, da));
    ASSERT_EQ(moss_sparse_stats_compute(h, &s), 1);
    ASSERT_EQ(s.nnz, 32);
    ASSERT_EQ(s.nblocks4x1, 16);
    ASSERT_NEAR(s.cost_csr, 88.0, 0.0);
    ASSERT_NEAR(s.cost_block4x1, 82.0, 0.0);
    ASSERT_EQ(s.nblocks1x4, 8);
    ASSERT_NEAR(s.cost_block1x4, 48.0, 0.0);
    ASSERT_EQ(s.nm24, 0);
    ASSERT_TRUE(s.cost_nm24 < 0);
    ASSERT_TRUE(moss_sparse_cost(&s, MOSS_SPARSE_NM_2_4) < 0);
    ASSERT_NEAR(moss_sparse_cost(&s, MOSS_SPARSE_BLOCK_1x4), 48.0, 0.0);
    ASSERT_NEAR(moss_sparse_density(h), 0.5, 1e-12);
    ASSERT_NEAR(moss_sparse_density(f), 1.0, 1e-12);
    unsetenv("MOSS_SPARSE");
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(h->sparse, MOSS_SPARSE_BLOCK_1x4);
    ASSERT_EQ(f->sparse, MOSS_SPARSE_DENSE);
    /* 2:4 forced: neither fits, both fall back to csr; block1x4 forced: 8
     * columns allow it for both. */
    setenv("MOSS_SPARSE", "2:4", 1);
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(h->sparse, MOSS_SPARSE_CSR);
    ASSERT_EQ(f->sparse, MOSS_SPARSE_CSR);
    setenv("MOSS_SPARSE", "block1x4", 1);
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(h->sparse, MOSS_SPARSE_BLOCK_1x4);
    ASSERT_EQ(f->sparse, MOSS_SPARSE_BLOCK_1x4);
    setenv("MOSS_SPARSE", "csr", 1);
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(h->sparse, MOSS_SPARSE_CSR);
    ASSERT_EQ(f->sparse, MOSS_SPARSE_CSR);
    setenv("MOSS_SPARSE", "off", 1);
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(h->sparse, MOSS_SPARSE_DENSE);
    ASSERT_EQ(f->sparse, MOSS_SPARSE_DENSE);
    unsetenv("MOSS_SPARSE");
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* Conv W[4,2,3,3] = Wt [4, 18], nonzeros at (m0, col 0), (m1, col 0),
 * (m2, col 5): 2 blocks. dense 72, csr 3*2.5+4 = 11.5, block 10+1 = 11:
 * block. A grouped Conv and a MatMul with a run-time B are not looked at. */
TEST(conv_blocks_and_what_is_skipped) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_sparse_stats s;
    int64_t dx[4] = {1, 2, 6, 6}, dw[4] = {4, 2, 3, 3}, dy[4] = {1, 4, 4, 4};
    int64_t dxg[4] = {1, 4, 6, 6}, dwg[4] = {4, 2, 3, 3}, d2[2] = {4, 4};
    static const int nz[3] = {0, 18, 2 * 18 + 5};
    moss_node *c, *grp, *mm;
    oom_ctx_init(&ctx);
    ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
    c = node2(&ctx, g, "Conv", "conv", val(&ctx, g, "x", 4, dx), cst(&ctx, g, "w", 4, dw, 3, nz),
              val(&ctx, g, "y", 4, dy));
    grp = node2(&ctx, g, "Conv", "grouped", val(&ctx, g, "xg", 4, dxg),
                cst(&ctx, g, "wg", 4, dwg, 3, nz), val(&ctx, g, "yg", 4, dy));
    set_int(g, grp, "group", 2);
    mm = node2(&ctx, g, "MatMul", "runtime_b", val(&ctx, g, "a", 2, d2), val(&ctx, g, "b", 2, d2),
               val(&ctx, g, "ym", 2, d2));
    ASSERT_EQ(moss_sparse_stats_compute(c, &s), 1);
    ASSERT_EQ(s.rows, 4);
    ASSERT_EQ(s.cols, 18);
    ASSERT_EQ(s.nnz, 3);
    ASSERT_EQ(s.nblocks4x1, 2);
    ASSERT_NEAR(s.cost_csr, 11.5, 0.0);
    ASSERT_NEAR(s.cost_block4x1, 11.0, 0.0);
    /* 18 columns: no 1x4 blocks; 2:4 fits with a short last group (columns
     * 16, 17): 3.5*4*5 = 70. */
    ASSERT_EQ(s.nblocks1x4, 0);
    ASSERT_TRUE(s.cost_block1x4 < 0);
    ASSERT_EQ(s.nm24, 1);
    ASSERT_NEAR(s.cost_nm24, 70.0, 0.0);
    ASSERT_EQ(moss_sparse_stats_compute(grp, &s), 0);
    ASSERT_EQ(moss_sparse_stats_compute(mm, &s), 0);
    ASSERT_NEAR(moss_sparse_density(grp), -1.0, 0.0);
    setenv("MOSS_SPARSE", "csr", 1);
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(c->sparse, MOSS_SPARSE_CSR);
    ASSERT_EQ(grp->sparse, MOSS_SPARSE_DENSE);
    ASSERT_EQ(mm->sparse, MOSS_SPARSE_DENSE);
    setenv("MOSS_SPARSE", "block1x4", 1);
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(c->sparse, MOSS_SPARSE_CSR);
    setenv("MOSS_SPARSE", "2:4", 1);
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(c->sparse, MOSS_SPARSE_NM_2_4);
    setenv("MOSS_SPARSE", "block4x1", 1);
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(c->sparse, MOSS_SPARSE_BLOCK_4x1);
    unsetenv("MOSS_SPARSE");
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(c->sparse, MOSS_SPARSE_BLOCK_4x1);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

TEST(bad_mode_and_names) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    oom_ctx_init(&ctx);
    ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
    setenv("MOSS_SPARSE", "sometimes", 1);
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_E_UNSUPPORTED, done);
    unsetenv("MOSS_SPARSE");
    ASSERT_STR_CONTAINS(moss_sparse_format_name(MOSS_SPARSE_DENSE), "dense");
    ASSERT_STR_CONTAINS(moss_sparse_format_name(MOSS_SPARSE_CSR), "csr");
    ASSERT_STR_CONTAINS(moss_sparse_format_name(MOSS_SPARSE_BLOCK_4x1), "block4x1");
    ASSERT_STR_CONTAINS(moss_sparse_format_name(MOSS_SPARSE_BLOCK_1x4), "block1x4");
    ASSERT_STR_CONTAINS(moss_sparse_format_name(MOSS_SPARSE_NM_2_4), "2:4");
    ASSERT_STR_CONTAINS(moss_sparse_format_name(42), "?");
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* A checkerboard 8x8 B (element (i, j) nonzero when i + j is even): 32
 * nonzeros, 2 in every group of 4: 2:4 fits, 3.5*8*2 = 56 < dense 64;
 * csr 88, 4x1 blocks 16 (82), 1x4 blocks 16 (88): 2:4. One more nonzero,
 * B (0, 1) = Wt (1, 0), puts 3 in row 1's first group: no 2:4, and csr
 * 90.5, 4x1 82, 1x4 88 all lose to dense 64. */
TEST(checkerboard_takes_2_4) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_sparse_stats s;
    int64_t da[2] = {2, 8}, db[2] = {8, 8};
    int cb[33], k, i, j;
    moss_node *n, *m;
    for (k = 0, i = 0; i < 8; i++)
      for (j = 0; j < 8; j++)
        if ((i + j) % 2 == 0) cb[k++] = i * 8 + j;
    cb[32] = 1; /* B (0, 1) */
    oom_ctx_init(&ctx);
    ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
    n = node2(&ctx, g, "MatMul", "cb", val(&ctx, g, "a", 2, da), cst(&ctx, g, "b", 2, db, 32, cb),
              val(&ctx, g, "y", 2, da));
    m = node2(&ctx, g, "MatMul", "cb1", val(&ctx, g, "a2", 2, da),
              cst(&ctx, g, "b2", 2, db, 33, cb), val(&ctx, g, "y2", 2, da));
    ASSERT_EQ(moss_sparse_stats_compute(n, &s), 1);
    ASSERT_EQ(s.nnz, 32);
    ASSERT_EQ(s.nm24, 1);
    ASSERT_NEAR(s.cost_nm24, 56.0, 0.0);
    ASSERT_EQ(s.nblocks4x1, 16);
    ASSERT_EQ(s.nblocks1x4, 16);
    ASSERT_NEAR(s.cost_block1x4, 88.0, 0.0);
    ASSERT_EQ(moss_sparse_choose(&s), MOSS_SPARSE_NM_2_4);
    ASSERT_EQ(moss_sparse_stats_compute(m, &s), 1);
    ASSERT_EQ(s.nnz, 33);
    ASSERT_EQ(s.nm24, 0);
    ASSERT_EQ(moss_sparse_choose(&s), MOSS_SPARSE_DENSE);
    unsetenv("MOSS_SPARSE");
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(n->sparse, MOSS_SPARSE_NM_2_4);
    ASSERT_EQ(m->sparse, MOSS_SPARSE_DENSE);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* MossQGemm: the int8 weight w [N 4, K 8] (input 3) is Wt as it is. With
 * every w_zp 0 the pass measures it: 2 nonzeros in row 0, columns 0 and 1,
 * so CSR is (2.5 * 2 + 4) * MOSS_SPARSE_INT8_CSR_FACTOR 8 = 72, above
 * dense 32 (1.5 * 2 + 4 = 7 under the no-vector rule), and the block formats are -1 (int8 Gemm takes CSR only). A
 * nonzero w_zp makes a zero weight a nonzero product: no view at all. */
TEST(qgemm_int8_csr_forced_dense_auto) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_sparse_stats s;
    int64_t dx[2] = {2, 8}, dw[2] = {4, 8}, dy[2] = {2, 4}, one[1] = {1};
    moss_node *q, *z;
    int8_t *w, *zp0, *zp1;
    int k;
    oom_ctx_init(&ctx);
    ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
    w = moss_graph_alloc(g, 32);
    zp0 = moss_graph_alloc(g, 1);
    zp1 = moss_graph_alloc(g, 1);
    memset(w, 0, 32);
    w[0] = 3;
    w[1] = -7;
    *zp0 = 0;
    *zp1 = 1;
    for (k = 0; k < 2; k++) {
      moss_node *n = moss_graph_add_node(&ctx, g, "MossQGemm", k ? "qz" : "q", 8, 1);
      moss_value *x = val(&ctx, g, k ? "xz" : "x", 2, dx);
      moss_value *wv = val(&ctx, g, k ? "wz" : "w", 2, dw);
      moss_value *zp = val(&ctx, g, k ? "zpz" : "zp", 1, one), *y = val(&ctx, g, k ? "yz" : "y", 2, dy);
      x->dtype = wv->dtype = zp->dtype = y->dtype = MOSS_DT_I8;
      wv->data = w;
      zp->data = k ? zp1 : zp0;
      n->inputs[0] = x;
      n->inputs[3] = wv;
      n->inputs[5] = zp;
      n->outputs[0] = y;
      y->producer = n;
      if (k) z = n;
      else q = n;
    }
    ASSERT_EQ(moss_sparse_stats_compute(q, &s), 1);
    ASSERT_EQ(s.dtype, MOSS_DT_I8);
    ASSERT_EQ(s.rows, 4);
    ASSERT_EQ(s.cols, 8);
    ASSERT_EQ(s.nnz, 2);
    ASSERT_NEAR(s.cost_csr, 72.0, 0.0);
    ASSERT_NEAR(s.cost_block4x1, -1.0, 0.0);
    ASSERT_NEAR(s.cost_block1x4, -1.0, 0.0);
    ASSERT_NEAR(s.cost_nm24, -1.0, 0.0);
    /* By columns: 2 columns hold a nonzero, 4 * 2 + 9 * 2 = 26 in scalar
     * loops (no lanes), below dense 32 */
    ASSERT_EQ(s.cols_nz, 2);
    ASSERT_NEAR(s.cost_columns, 26.0, 0.0);
    ASSERT_EQ(moss_sparse_choose(&s), MOSS_SPARSE_COLUMNS);
    /* In vectors of 16 bytes (NEON) the 2 columns pad to 16: 4 * 16 + 9 * 2
     * = 82, above dense 32 */
    q->sparse_rule = MOSS_SPARSE_RULE_MAKE(MOSS_SPARSE_RULE_SCALAR, 16);
    ASSERT_EQ(moss_sparse_stats_compute(q, &s), 1);
    ASSERT_NEAR(s.cost_columns, 82.0, 0.0);
    ASSERT_EQ(moss_sparse_choose(&s), MOSS_SPARSE_DENSE);
    /* On a device without SIMD (cortex-m7) the dense dot product is scalar
     * too: CSR is 1.5 * 2 + 4 = 7, below dense 32. */
    q->sparse_rule = MOSS_SPARSE_RULE_Q8_NOVEC;
    ASSERT_EQ(moss_sparse_stats_compute(q, &s), 1);
    ASSERT_NEAR(s.cost_csr, 7.0, 1e-12);
    ASSERT_NEAR(s.cost_block4x1, -1.0, 0.0);
    ASSERT_EQ(moss_sparse_choose(&s), MOSS_SPARSE_CSR);
    ASSERT_EQ(strcmp(moss_sparse_rule_name(q->sparse_rule), "int8-no-vector"), 0);
    q->sparse_rule = MOSS_SPARSE_RULE_SCALAR;
    ASSERT_EQ(moss_sparse_stats_compute(z, &s), 0);
    /* int8 takes CSR when forced; a nonzero weight zero point has no sparse
     * view, so z stays dense. */
    setenv("MOSS_SPARSE", "csr", 1);
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(q->sparse, MOSS_SPARSE_CSR);
    ASSERT_EQ(z->sparse, MOSS_SPARSE_DENSE);
    /* Forced 4x1 blocks: not for int8 Gemm, so CSR. */
    setenv("MOSS_SPARSE", "block", 1);
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(q->sparse, MOSS_SPARSE_CSR);
    /* Forced columns: int8 Gemm takes it. */
    setenv("MOSS_SPARSE", "columns", 1);
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(q->sparse, MOSS_SPARSE_COLUMNS);
    /* auto: CSR 72 is not below dense 32; columns 26 (no lanes) is. */
    setenv("MOSS_SPARSE", "auto", 1);
    OOM_CHECK(&ctx, moss_pass_sparse(&ctx, g, NULL), MOSS_OK, done);
    ASSERT_EQ(q->sparse, MOSS_SPARSE_COLUMNS);
    unsetenv("MOSS_SPARSE");
  done:
    moss_graph_destroy(&ctx, g);
  }
}

/* QLinearConv, W [4, 5, 1, 2] (5 channels: words {0..3} and {4}, 2 taps),
 * nonzero at (m0, c0, t0), (m0, c4, t1), (m1, c1, t0), (m1, c2, t0),
 * (m3, c3, t1): of 4 x 2 x 2 = 16 words 4 hold a nonzero (m0: 2, m1: 1,
 * m3: 1); of the 4 blocks of 4 rows x a word, 3 ((c0-3, t0), (c0-3, t1),
 * (c4, t1)). On the int8-widened rule (docs/sparse.md) dense = 4 x 10 x
 * 0.11 = 4.4, csr = 4.4 x (0.17 + 1.03 x 4/16) = 1.881, block4x1 = 4.4 x
 * (0.15 + 0.90 x 3/4) = 3.63: csr. On the scalar rule no words are
 * counted and csr is 5 nonzeros x 1.0. */
TEST(qconv_words_on_the_tile) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_sparse_stats s;
    int64_t dx[4] = {1, 5, 3, 3}, dw[4] = {4, 5, 1, 2}, dy[4] = {1, 4, 3, 2}, one[1] = {1};
    static const int nz[5][3] = {{0, 0, 0}, {0, 4, 1}, {1, 1, 0}, {1, 2, 0}, {3, 3, 1}};
    moss_node *q;
    moss_value *x, *w, *y, *sx, *sw, *sy;
    int8_t *wd;
    float *f;
    int k;
    oom_ctx_init(&ctx);
    ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
    q = moss_graph_add_node(&ctx, g, "QLinearConv", "qc", 8, 1);
    x = val(&ctx, g, "x", 4, dx);
    w = val(&ctx, g, "w", 4, dw);
    y = val(&ctx, g, "y", 4, dy);
    sx = val(&ctx, g, "sx", 1, one);
    sw = val(&ctx, g, "sw", 1, one);
    sy = val(&ctx, g, "sy", 1, one);
    x->dtype = y->dtype = MOSS_DT_U8;
    w->dtype = MOSS_DT_I8;
    wd = moss_graph_alloc(g, 40);
    f = moss_graph_alloc(g, 3 * sizeof *f);
    if (!wd || !f) goto done;
    memset(wd, 0, 40);
    for (k = 0; k < 5; k++) wd[(nz[k][0] * 5 + nz[k][1]) * 2 + nz[k][2]] = (int8_t)(k + 1);
    f[0] = f[1] = f[2] = 0.5f;
    w->data = wd;
    sx->data = &f[0];
    sw->data = &f[1];
    sy->data = &f[2];
    q->inputs[0] = x;
    q->inputs[1] = sx;
    q->inputs[3] = w;
    q->inputs[4] = sw;
    q->inputs[6] = sy;
    q->outputs[0] = y;
    y->producer = q;
    q->sparse_rule = MOSS_SPARSE_RULE_Q8_WIDE;
    ASSERT_EQ(moss_sparse_stats_compute(q, &s), 1);
    ASSERT_EQ(s.q8tile, 1);
    ASSERT_EQ(s.words, 16);
    ASSERT_EQ(s.words_nz, 4);
    ASSERT_EQ(s.wblocks, 4);
    ASSERT_EQ(s.wblocks_nz, 3);
    ASSERT_NEAR(s.cost_dense, 4.4, 1e-12);
    ASSERT_NEAR(s.cost_csr, 1.881, 1e-12);
    ASSERT_NEAR(s.cost_block4x1, 3.63, 1e-12);
    ASSERT_NEAR(s.cost_columns, -1.0, 0.0);
    ASSERT_EQ(moss_sparse_choose(&s), MOSS_SPARSE_CSR);
    q->sparse_rule = MOSS_SPARSE_RULE_SCALAR;
    ASSERT_EQ(moss_sparse_stats_compute(q, &s), 1);
    ASSERT_EQ(s.q8tile, 0);
    ASSERT_NEAR(s.cost_dense, 40.0, 0.0);
    ASSERT_NEAR(s.cost_csr, 5.0, 0.0);
  done:
    moss_graph_destroy(&ctx, g);
  }
}

TEST_MAIN()
