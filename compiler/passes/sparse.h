/* sparse.h - the sparse-format pass: after partitioning, it picks for each
 * constant weight of a Gemm, MatMul or Conv (float32, or int8 with zero
 * points 0) dense or a sparse format (moss_node.sparse), by the cost rule
 * of docs/sparse.md, among the formats its device's backend can encode.
 * The formats, the weight view and the rule are compiler/ops/sparse.h,
 * included here for the code that still reaches them through this file. */
#ifndef MOSS_SPARSE_H
#define MOSS_SPARSE_H

#include "../../backends/backend.h"
#include "../ops/sparse.h"

typedef struct moss_sparse_opts {
  /* Per device of the partition's target (moss_node.device): its backend,
   * whose sparse_formats are the formats a node there may take; a device
   * without a backend keeps its nodes dense. NULL: every format is open
   * to every node (the rule alone, as in tests). */
  const moss_backend_device *devices;
  /* Per node (g->nodes order): the kernels its formats would run on, on
   * its device (MOSS_SPARSE_RULE_MAKE, moss_kernel_sparse_rule), whose
   * figures price them; the pass stores it in n->sparse_rule. NULL: the
   * scalar kernels' everywhere. */
  const int *rules;
} moss_sparse_opts;

/* Sets n->sparse on every node that can take a sparse weight, among the
 * formats of its device's backend (|o|, may be NULL). The environment
 * variable MOSS_SPARSE selects the mode: "auto" (default, the cost rule),
 * "off" (all dense), "csr" (CSR wherever possible), "block" or "block4x1"
 * (4x1 blocks wherever the rows allow, else CSR), "block1x4" (1x4 blocks
 * wherever the columns allow, else CSR) or "2:4" (2:4 wherever the weight
 * fits the pattern, else CSR); a forced format the backend cannot encode
 * falls back the same way, then to dense. Any other value fails with
 * category 'unsupported'. Nodes whose weight has no view get 0. */
moss_status moss_pass_sparse(moss_ctx *ctx, moss_graph *g, const moss_sparse_opts *o);

#endif
