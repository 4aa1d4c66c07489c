/* sparse.c - the sparse-format pass, after partitioning: for each Gemm,
 * MatMul and Conv whose weight is a float32 constant (and each integer
 * Gemm, MatMul and Conv whose int8 weight has zero points 0), measures the
 * weight (its nonzeros, nonzero 4x1 and 1x4 blocks, whether it fits 2:4;
 * compiler/ops/sparse.c), estimates the inner-loop work of the dense kernel
 * and of each sparse format, and records the cheapest that the node's
 * device's backend can encode in n->sparse (a backend that encodes none,
 * like LLVM's today, keeps its nodes dense). The backend then encodes the
 * weight in that format (the C backend: backends/c/emit_sparse.c). Nothing
 * in the graph changes but that field, so the dense twin of a model is the
 * same graph with the field cleared (MOSS_SPARSE=off). */
#include <stdlib.h>
#include <string.h>

#include "passes.h"
#include "sparse.h"

/* The MOSS_SPARSE modes: the format each forces (-1: off, -2: auto). */
static const struct {
  const char *name;
  int fmt;
} modes[] = {{"auto", -2},
             {"off", -1},
             {"csr", MOSS_SPARSE_CSR},
             {"block", MOSS_SPARSE_BLOCK_4x1},
             {"block4x1", MOSS_SPARSE_BLOCK_4x1},
             {"block1x4", MOSS_SPARSE_BLOCK_1x4},
             {"2:4", MOSS_SPARSE_NM_2_4},
             {"columns", MOSS_SPARSE_COLUMNS}};

moss_status moss_pass_sparse(moss_ctx *ctx, moss_graph *g, const moss_sparse_opts *o) {
  const char *mode = getenv("MOSS_SPARSE");
  int i, fmt = -3;
  if (!mode || !*mode) mode = "auto";
  for (i = 0; i < (int)(sizeof modes / sizeof modes[0]); i++)
    if (!strcmp(mode, modes[i].name)) fmt = modes[i].fmt;
  if (fmt == -3)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                     "MOSS_SPARSE=%s: expected auto, off, csr, block (= block4x1), block1x4, 2:4 or "
                     "columns",
                     mode);
  for (i = 0; i < g->nnodes; i++) {
    moss_node *n = g->nodes[i];
    moss_sparse_stats s;
    unsigned formats = MOSS_SPARSE_ALL;
    if (o && o->devices) {
      const moss_backend *b = o->devices[n->device].backend;
      formats = b ? b->sparse_formats : 0;
    }
    n->sparse = MOSS_SPARSE_DENSE;
    n->sparse_rule = o && o->rules ? o->rules[i] : MOSS_SPARSE_RULE_SCALAR;
    if (fmt == -1 || !formats || !moss_sparse_stats_compute(n, &s)) continue;
    if (fmt == -2)
      n->sparse = moss_sparse_choose_among(&s, formats);
    else if ((formats & MOSS_SPARSE_BIT(fmt)) && moss_sparse_cost(&s, fmt) >= 0.0)
      n->sparse = fmt;
    else if (formats & MOSS_SPARSE_BIT(MOSS_SPARSE_CSR))
      n->sparse = MOSS_SPARSE_CSR;
  }
  return MOSS_OK;
}
