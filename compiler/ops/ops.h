/* ops.h - operator semantics, one family per file in compiler/ops/ (the
 * family column of ir/ops.def): shape and dtype inference, and evaluation
 * on constant inputs for constant folding. */
#ifndef MOSS_OPS_H
#define MOSS_OPS_H

#include "../ir/ir.h"

/* Sets the dtype and shape of every output of |n| from its inputs (and
 * from the data of constant inputs that decide shapes). Reports
 * invalid-model or unsupported against |n|. */
typedef moss_status (*moss_infer_fn)(moss_ctx *ctx, moss_graph *g, moss_node *n);
/* Computes the data of every output of |n|, whose inputs are all constant
 * and whose output shapes are known; each output's |data| is already
 * allocated (zeroed). Returns MOSS_E_UNSUPPORTED, without a diagnostic,
 * when the family cannot evaluate this node; the node then stays. */
typedef moss_status (*moss_eval_fn)(moss_ctx *ctx, moss_graph *g, moss_node *n);

#define MOSS_FAMILY(f)                                                      \
  moss_status moss_infer_##f(moss_ctx *ctx, moss_graph *g, moss_node *n);   \
  moss_status moss_eval_##f(moss_ctx *ctx, moss_graph *g, moss_node *n);
#include "families.def"
#undef MOSS_FAMILY

extern const moss_infer_fn moss_infer_table[MOSS_OP_COUNT_];
extern const moss_eval_fn moss_eval_table[MOSS_OP_COUNT_];

/* Helpers shared by the families (ops/common.c). */

/* Sets output |i| of |n| to |dt| with the given shape. */
void moss_set_output(moss_node *n, int i, moss_dtype dt, int rank, const int64_t *dims);
/* Numpy-style broadcast of the shapes of |a| and |b| into |out_dims|. */
moss_status moss_broadcast(moss_ctx *ctx, const moss_node *n, int ra, const int64_t *da, int rb,
                           const int64_t *db, int *out_rank, int64_t *out_dims);
/* Normalizes |axis| (may be negative) against |rank|; fails if out of range. */
moss_status moss_norm_axis(moss_ctx *ctx, const moss_node *n, int64_t axis, int rank,
                           int *out_axis);
/* Fails with a message naming input |i| when it is not a constant: used by
 * ops whose output shape depends on that input's value. */
moss_status moss_need_constant(moss_ctx *ctx, const moss_node *n, int i, const char *what);
/* Fails unless input |i| is present and has a known shape. */
moss_status moss_need_input(moss_ctx *ctx, const moss_node *n, int i);

/* Generic element access for evaluation: element |i| of a value as double
 * or int64, and a store of a double/int64 into element |i| of |dt|. */
double moss_load_f64(moss_dtype dt, const void *p, int64_t i);
int64_t moss_load_i64(moss_dtype dt, const void *p, int64_t i);
void moss_store_f64(moss_dtype dt, void *p, int64_t i, double v);
void moss_store_i64(moss_dtype dt, void *p, int64_t i, int64_t v);
/* Flat index into an input of shape |in_rank|/|in_dims| broadcast to the
 * output shape |rank|/|dims|, for the output's flat index |o|. */
int64_t moss_broadcast_index(int rank, const int64_t *dims, int in_rank, const int64_t *in_dims,
                             int64_t o);
/* Row-major strides of a shape (in elements). */
void moss_strides(int rank, const int64_t *dims, int64_t *out_strides);

#endif
