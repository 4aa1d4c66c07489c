/* sparse.c - the sparse-format pass, after dce: for each Gemm, MatMul and
 * Conv whose weight is a float32 constant, counts the weight's nonzeros
 * and its nonzero 4x1 blocks, estimates the inner-loop work of the dense
 * kernel and of each sparse format, and records the cheapest in
 * n->sparse. The C backend then encodes the weight in that format
 * (backends/c/emit_sparse.c). Nothing in the graph changes but that field,
 * so the dense twin of a model is the same graph with the field cleared
 * (MOSS_SPARSE=off). */
#include <stdlib.h>
#include <string.h>

#include "passes.h"
#include "sparse.h"

static int known(const moss_value *v) {
  return v && moss_value_shape_known(v) && moss_value_numel(v) >= 0 &&
         moss_value_numel(v) < ((int64_t)1 << 31);
}

int moss_sparse_view_get(const moss_node *n, moss_sparse_view *out_view) {
  const moss_value *a, *w, *y;
  memset(out_view, 0, sizeof *out_view);
  if (n->op != MOSS_OP_Gemm && n->op != MOSS_OP_MatMul && n->op != MOSS_OP_Conv) return 0;
  if (n->ninputs < 2 || n->noutputs < 1) return 0;
  a = moss_node_input(n, 0);
  w = moss_node_input(n, 1);
  y = n->outputs[0];
  if (!a || !w || !y || !w->data || !known(a) || !known(w) || !known(y)) return 0;
  if (a->dtype != MOSS_DT_F32 || w->dtype != MOSS_DT_F32 || y->dtype != MOSS_DT_F32) return 0;
  out_view->w = (const float *)w->data;
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

int moss_sparse_stats_compute(const moss_node *n, moss_sparse_stats *out_stats) {
  moss_sparse_view v;
  int64_t r, c, k;
  memset(out_stats, 0, sizeof *out_stats);
  if (!moss_sparse_view_get(n, &v)) return 0;
  out_stats->rows = v.rows;
  out_stats->cols = v.cols;
  for (r = 0; r < v.rows; r++)
    for (c = 0; c < v.cols; c++)
      if (moss_sparse_at(&v, r, c) != 0.0f) out_stats->nnz++;
  if (v.rows % 4 == 0) {
    for (r = 0; r < v.rows; r += 4)
      for (c = 0; c < v.cols; c++)
        for (k = 0; k < 4; k++)
          if (moss_sparse_at(&v, r + k, c) != 0.0f) {
            out_stats->nblocks4x1++;
            break;
          }
  }
  out_stats->cost_dense = (double)v.rows * (double)v.cols;
  out_stats->cost_csr =
      MOSS_SPARSE_COST_CSR_NZ * (double)out_stats->nnz + MOSS_SPARSE_COST_CSR_ROW * (double)v.rows;
  if (v.rows % 4 == 0)
    out_stats->cost_block4x1 = MOSS_SPARSE_COST_BLOCK * (double)out_stats->nblocks4x1 +
                               MOSS_SPARSE_COST_BLOCK_ROW * (double)(v.rows / 4);
  else
    out_stats->cost_block4x1 = -1.0;
  return 1;
}

int moss_sparse_choose(const moss_sparse_stats *s) {
  int best = MOSS_SPARSE_DENSE;
  double cost = s->cost_dense;
  if (s->cost_csr < cost) {
    best = MOSS_SPARSE_CSR;
    cost = s->cost_csr;
  }
  if (s->cost_block4x1 >= 0.0 && s->cost_block4x1 < cost) best = MOSS_SPARSE_BLOCK_4x1;
  return best;
}

moss_status moss_pass_sparse(moss_ctx *ctx, moss_graph *g) {
  const char *mode = getenv("MOSS_SPARSE");
  int i;
  if (!mode || !*mode) mode = "auto";
  if (strcmp(mode, "auto") && strcmp(mode, "off") && strcmp(mode, "csr") && strcmp(mode, "block"))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                     "MOSS_SPARSE=%s: expected auto, off, csr or block", mode);
  for (i = 0; i < g->nnodes; i++) {
    moss_node *n = g->nodes[i];
    moss_sparse_stats s;
    n->sparse = MOSS_SPARSE_DENSE;
    if (!strcmp(mode, "off") || !moss_sparse_stats_compute(n, &s)) continue;
    if (!strcmp(mode, "csr"))
      n->sparse = MOSS_SPARSE_CSR;
    else if (!strcmp(mode, "block"))
      n->sparse = s.cost_block4x1 >= 0.0 ? MOSS_SPARSE_BLOCK_4x1 : MOSS_SPARSE_CSR;
    else
      n->sparse = moss_sparse_choose(&s);
  }
  return MOSS_OK;
}

const char *moss_sparse_format_name(int code) {
  switch (code) {
  case MOSS_SPARSE_DENSE: return "dense";
  case MOSS_SPARSE_CSR: return "csr";
  case MOSS_SPARSE_BLOCK_4x1: return "block4x1";
  default: return "?";
  }
}

double moss_sparse_density(const moss_node *n) {
  moss_sparse_stats s;
  if (!moss_sparse_stats_compute(n, &s)) return -1.0;
  return (double)s.nnz / ((double)s.rows * (double)s.cols);
}
