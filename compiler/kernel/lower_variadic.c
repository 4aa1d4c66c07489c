/* lower_variadic.c - Min, Max, Sum and Mean over any number of inputs, and
 * Where(condition, x, y), all with numpy broadcasting: one pass over the
 * output (moss_k_bcast_open) that folds the inputs into an accumulator in
 * input order, so the float additions happen in the same order as the
 * reference's ((x0 + x1) + x2) ... and Mean divides the sum once at the end.
 * Float Min and Max propagate a NaN from any input, as ONNX does. */
#include <string.h>

#include "lower.h"

/* |v| folded into the accumulator |acc| under |n|'s operator. */
static void fold(moss_kb *b, const moss_node *n, moss_kx *acc, moss_kx *v) {
  moss_kx_op op = n->op == MOSS_OP_Min ? MOSS_KX_MIN : MOSS_KX_MAX;
  if (n->op == MOSS_OP_Sum || n->op == MOSS_OP_Mean) {
    moss_k_set(b, acc, moss_k_bin(b, MOSS_KX_ADD, acc, v));
  } else if (moss_dtype_is_float(v->dt)) {
    /* v replaces acc when it is smaller (larger) or NaN; a NaN in acc stays. */
    moss_kx *x = moss_k_let(b, "v", v);
    moss_kx *better = moss_k_bin(b, op == MOSS_KX_MIN ? MOSS_KX_LT : MOSS_KX_GT, x, acc);
    moss_k_set(b, acc,
               moss_k_select(b,
                             moss_k_bin(b, MOSS_KX_LOR, better,
                                        moss_k_call(b, MOSS_KFN_ISNAN, x, NULL, NULL)),
                             x, acc));
  } else {
    moss_k_set(b, acc, moss_k_bin(b, op, v, acc)); /* v < acc ? v : acc */
  }
}

moss_status moss_lower_variadic(moss_kb *b, const moss_node *n) {
  const moss_value *y = n->outputs[0];
  int nin = n->ninputs, j, loops, yo;
  int *rk, *buf;
  int64_t(*dims)[MOSS_MAX_RANK];
  moss_kx *o, **idx, *acc;
  if (nin < 1) return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "no inputs");
  for (j = 0; j < nin; j++)
    if (!n->inputs[j]) return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "input %d is missing", j);
  if (n->op != MOSS_OP_Where && y->dtype == MOSS_DT_BOOL)
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "type %s", moss_dtype_name(y->dtype));
  rk = moss_arena_alloc(b->arena, sizeof *rk * (size_t)nin, 16);
  buf = moss_arena_alloc(b->arena, sizeof *buf * (size_t)nin, 16);
  dims = moss_arena_alloc(b->arena, sizeof *dims * (size_t)nin, 16);
  idx = moss_arena_alloc(b->arena, sizeof *idx * (size_t)nin, 16);
  if (!rk || !buf || !dims || !idx) return moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
  for (j = 0; j < nin; j++) {
    rk[j] = n->inputs[j]->rank;
    memcpy(dims[j], n->inputs[j]->dims, sizeof dims[j]);
    buf[j] = moss_k_input(b, j);
  }
  yo = moss_k_output(b, 0);
  if (moss_value_numel(y) <= 0) return b->st;
  loops = moss_k_bcast_open(b, y->rank, y->dims, nin, rk, (const int64_t(*)[MOSS_MAX_RANK])dims, &o,
                            idx);
  if (n->op == MOSS_OP_Where) {
    if (nin != 3) return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "Where takes 3 inputs, not %d", nin);
    moss_k_store(b, yo, o,
                 moss_k_select(b, moss_k_load(b, buf[0], idx[0]), moss_k_load(b, buf[1], idx[1]),
                               moss_k_load(b, buf[2], idx[2])));
  } else if (nin == 1) {
    moss_k_store(b, yo, o, moss_k_load(b, buf[0], idx[0]));
  } else {
    acc = moss_k_let(b, "acc", moss_k_load(b, buf[0], idx[0]));
    for (j = 1; j < nin; j++) fold(b, n, acc, moss_k_load(b, buf[j], idx[j]));
    if (n->op == MOSS_OP_Mean)
      acc = moss_k_bin(b, MOSS_KX_DIV, acc,
                       moss_dtype_is_float(y->dtype) ? moss_k_flt(b, y->dtype, nin)
                                                     : moss_k_int(b, y->dtype, nin));
    moss_k_store(b, yo, o, acc);
  }
  while (loops--) moss_k_end(b);
  return b->st;
}
