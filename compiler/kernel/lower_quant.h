/* lower_quant.h - what the two integer families' lowerings share
 * (lower_quant.c for ONNX's quantized operators, lower_qfold.c for moss's
 * own): docs/numerics-int8.md's requantization multipliers, decomposed at
 * compile time into constants or per-channel tables, and the clamp of a
 * requantized int32 to an 8-bit output. Defined in lower_quant.c. */
#ifndef MOSS_LOWER_QUANT_H
#define MOSS_LOWER_QUANT_H

#include "kernel.h"

/* The requantization by one or more real multipliers: one multiplier is
 * two constants, several are the tables "qm" (Q31 mantissas) and "qs"
 * (shifts) of the kernel, indexed at run time. */
typedef struct moss_kreq {
  int64_t cnt;
  int32_t mult;
  int shift;
  int qm, qs; /* table buffers when cnt > 1 */
} moss_kreq;

/* Decomposes the |cnt| multipliers |ms| with moss_requant_compute. */
void moss_k_requant_init(moss_kb *b, moss_kreq *q, const double *ms, int64_t cnt);
/* REQUANT(|acc|, mult, shift) by multiplier |idx| (an I64 expression; not
 * read when there is one multiplier). */
moss_kx *moss_k_requant(moss_kb *b, const moss_kreq *q, moss_kx *acc, moss_kx *idx);
/* The int32 |r| (a zero point plus a requantized sum) as |n|'s 8-bit output
 * type |dt|: saturated to the type, or clamped to [qmin, qmax], the int
 * attributes the qdq pass sets for a fused Relu or Clip (docs/qdq.md).
 * Declares |r| as a local when it is not a variable already. */
moss_kx *moss_k_qclamp(moss_kb *b, const moss_node *n, moss_dtype dt, moss_kx *r);
/* |cnt| elements of |size| bytes in the kernel's arena (NULL after a
 * failure, recorded in |b|). */
void *moss_k_scratch(moss_kb *b, int64_t cnt, size_t size);

#endif
