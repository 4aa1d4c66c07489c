/* lower.h - the lowerings: one function per operator family that describes
 * a node of that family as a kernel (kernel.h). lower.c holds the table. */
#ifndef MOSS_LOWER_H
#define MOSS_LOWER_H

#include "../ops/ops.h"
#include "kernel.h"

typedef moss_status (*moss_lower_fn)(moss_kb *b, const moss_node *n);

/* The families that have a lowering, one line each: X(family, takes),
 * where |takes| is NULL when the lowering describes every node of the
 * family, or a predicate naming the nodes it describes (nodes with a
 * sparse weight go to moss_lower_sparse first, lower_sparse.c). */
#define MOSS_LOWERED_FAMILIES(X) \
  X(unary, NULL)                 \
  X(binary, NULL)                \
  X(conv, moss_lower_takes_conv) \
  X(pool, NULL)                  \
  X(matmul, moss_lower_takes_matmul) \
  X(variadic, NULL)              \
  X(cast, NULL)                  \
  X(view, NULL)                  \
  X(movement, NULL)              \
  X(gather, NULL)                \
  X(generator, NULL)             \
  X(topk, NULL)                  \
  X(resize, NULL)                \
  X(loss, NULL)                  \
  X(quant, moss_lower_takes_quant) \
  X(qfold, moss_lower_takes_qfold) \
  X(einsum, NULL)                \
  X(softmax, NULL)               \
  X(reduce, NULL)                \
  X(norm, NULL)                  \
  /* end */

/* The window of a pooling node over its spatial dimensions: kernel_shape,
 * strides, dilations and pads (or auto_pad) with ONNX's defaults
 * (lower_pool.c; MossQAvgPool's lowering uses it too). */
typedef struct moss_pool_geom {
  int nsp;
  int64_t in[MOSS_MAX_RANK], out[MOSS_MAX_RANK], k[MOSS_MAX_RANK];
  int64_t s[MOSS_MAX_RANK], d[MOSS_MAX_RANK], p[MOSS_MAX_RANK], pe[MOSS_MAX_RANK];
} moss_pool_geom;
void moss_lower_pool_geom(const moss_node *n, moss_pool_geom *out_g);

#define MOSS_LOWER_DECL(f, takes) moss_status moss_lower_##f(moss_kb *b, const moss_node *n);
MOSS_LOWERED_FAMILIES(MOSS_LOWER_DECL)
#undef MOSS_LOWER_DECL
/* Sparse-weight nodes (n->sparse) and the dense int8 Conv on their loops, before the families. */
moss_status moss_lower_sparse(moss_kb *b, const moss_node *n);
int moss_lower_takes_sparse(const moss_node *n);
/* Quantized ops with a sparse weight, and the dense int8 Conv that takes
 * the sparse kernels' dense twin, go to lower_sparse.c. */
int moss_lower_takes_quant(const moss_node *n);
/* MossQGemm with a sparse weight goes to lower_sparse.c. */
int moss_lower_takes_qfold(const moss_node *n);
/* Gemm and MatMul with a sparse weight go to lower_sparse.c. */
int moss_lower_takes_matmul(const moss_node *n);
/* Conv and ConvTranspose with a sparse weight go to lower_sparse.c. */
int moss_lower_takes_conv(const moss_node *n);

#endif
