/* sparse.h - sparse weight formats: the pass that measures each constant
 * weight of a Gemm, MatMul or Conv and picks dense or a sparse format for
 * it (moss_node.sparse), and the weight view the C backend encodes from.
 * docs/sparse.md describes the formats and the choice rule. */
#ifndef MOSS_SPARSE_H
#define MOSS_SPARSE_H

#include "../ir/ir.h"

/* Values of moss_node.sparse. */
enum {
  MOSS_SPARSE_DENSE = 0,
  MOSS_SPARSE_CSR = 1,       /* compressed sparse rows, one value per nonzero */
  MOSS_SPARSE_BLOCK_4x1 = 2  /* CSR of 4x1 blocks: 4 consecutive output rows, one column */
};

/* The cost rule's weights, in units of one dense multiply-add; a format's
 * estimated work is the sum over what it stores (docs/sparse.md). */
#define MOSS_SPARSE_COST_CSR_NZ 2.5    /* per nonzero: index load, gather, multiply-add */
#define MOSS_SPARSE_COST_CSR_ROW 1.0   /* per row: row bounds */
#define MOSS_SPARSE_COST_BLOCK 5.0     /* per 4x1 block: 4 multiply-adds, one index, one gather */
#define MOSS_SPARSE_COST_BLOCK_ROW 1.0 /* per block row */

/* Every node that can take a sparse weight sees it as a matrix Wt of
 * |rows| outputs by |cols| reduction terms: Gemm and MatMul, B transposed
 * ([N, K]); Conv, W as [Cout, Cin*kh*kw]. The output element r of one row
 * (or one output position) is the sum over c of Wt[r, c] * input term c. */
typedef struct moss_sparse_view {
  const float *w;  /* the constant weight's payload */
  int64_t rows, cols;
  int64_t rs, cs;  /* strides of Wt's row and column index in |w| */
} moss_sparse_view;

/* Fills |out_view| and returns 1 when |n| can take a sparse weight: a Gemm
 * (transA 0, constant 2-D B), a MatMul (constant 2-D B, A of rank >= 2) or
 * a Conv (2-D, group 1, constant W), float32, shapes known and element
 * counts below 2^31. Returns 0 otherwise (|out_view| zeroed). */
int moss_sparse_view_get(const moss_node *n, moss_sparse_view *out_view);

/* Wt[r, c] of a view. */
static inline float moss_sparse_at(const moss_sparse_view *v, int64_t r, int64_t c) {
  return v->w[r * v->rs + c * v->cs];
}

/* What the pass measured on one weight. */
typedef struct moss_sparse_stats {
  int64_t rows, cols;
  int64_t nnz;         /* nonzero elements (0.0 and -0.0 are zeros) */
  int64_t nblocks4x1;  /* 4x1 blocks holding a nonzero; 0 when rows % 4 != 0 */
  double cost_dense, cost_csr, cost_block4x1; /* block: negative when not possible */
} moss_sparse_stats;

/* Measures |n|'s weight; returns 0 (|out_stats| zeroed) when it has no
 * view. */
int moss_sparse_stats_compute(const moss_node *n, moss_sparse_stats *out_stats);

/* The format the cost rule picks for |s|: the cheapest estimate, dense on
 * ties. */
int moss_sparse_choose(const moss_sparse_stats *s);

/* Sets n->sparse on every node that can take a sparse weight. The
 * environment variable MOSS_SPARSE selects the mode: "auto" (default, the
 * cost rule), "off" (all dense), "csr" (CSR wherever possible) or "block"
 * (4x1 blocks wherever the rows allow, else CSR); any other value fails
 * with category 'unsupported'. Nodes whose weight has no view keep 0. */
moss_status moss_pass_sparse(moss_ctx *ctx, moss_graph *g);

/* "dense", "csr", "block4x1"; "?" for an unknown code. */
const char *moss_sparse_format_name(int code);

/* Fraction of nonzero weight elements of |n|, in [0, 1]; -1 when |n| has
 * no weight the pass looks at. */
double moss_sparse_density(const moss_node *n);

/* The C backend's sparse kernels (backends/c/emit_sparse.c): the node's
 * block for a node with n->sparse set. Declared here so that the Gemm,
 * MatMul and Conv emitters can hand over without a header of their own. */
struct moss_cgen;
moss_status moss_c_emit_sparse(struct moss_cgen *cg, const moss_node *n);

#endif
