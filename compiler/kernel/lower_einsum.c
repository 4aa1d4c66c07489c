/* lower_einsum.c - Einsum as one generic loop nest: the output labels
 * outside (in output order, so the output is written contiguously) and
 * the summed labels inside, accumulating the product of the inputs (in
 * double for floats, in wrapping uint64 for integers). A label has one
 * loop variable, so a label repeated in an input reads its diagonal. The
 * equation parser is the one in compiler/ops/einsum.c. */
#include <stdio.h>

#include "lower.h"

moss_status moss_lower_einsum(moss_kb *b, const moss_node *n) {
  const moss_value *y = n->outputs[0];
  moss_dtype dt = y->dtype, acc_dt = moss_dtype_is_float(dt) ? MOSS_DT_F64 : MOSS_DT_U64;
  moss_einsum e;
  char err[160], name[16];
  moss_kx *lab[MOSS_EINSUM_LABELS], *acc, *prod = NULL, *oidx;
  int i, k, p, nsum = 0;
  if (moss_einsum_compute(moss_attr_string(n, "equation", ""), n->ninputs, n->inputs, err,
                          sizeof err, &e))
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "equation: %s", err);
  if (dt == MOSS_DT_BOOL || !moss_kernel_dtype_ok(dt))
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "type %s", moss_dtype_name(dt));
  if (moss_value_numel(y) == 0) {
    moss_k_comment(b, "empty output");
    return b->st;
  }
  for (k = 0; k < MOSS_EINSUM_LABELS; k++) lab[k] = NULL;
  for (k = 0; k < e.orank; k++) {
    snprintf(name, sizeof name, "e%d", e.olab[k]);
    lab[e.olab[k]] = moss_k_range(b, name, y->dims[k], MOSS_KL_PARALLEL);
  }
  {
    moss_kx *idx[MOSS_MAX_RANK];
    for (k = 0; k < e.orank; k++) idx[k] = lab[e.olab[k]];
    oidx = moss_k_flat_index(b, e.orank, y->dims, idx);
  }
  acc = moss_k_let(b, "acc", moss_k_cast(b, acc_dt, moss_k_int(b, MOSS_DT_I64, 0)));
  for (k = 0; k < MOSS_EINSUM_LABELS; k++) {
    if (e.size[k] < 0 || e.in_out[k]) continue;
    snprintf(name, sizeof name, "e%d", k);
    lab[k] = moss_k_range(b, name, e.size[k], MOSS_KL_REDUCE);
    nsum++;
  }
  for (i = 0; i < e.nin; i++) {
    const moss_value *x = n->inputs[i];
    moss_kx *idx = moss_k_idx(b, 0), *v;
    int64_t stride = 1;
    for (p = e.rank[i] - 1; p >= 0; p--) {
      /* A dimension of 1 is broadcast: it does not move. */
      if (x->dims[p] != 1) idx = moss_k_add(b, idx, moss_k_mulc(b, lab[e.lab[i][p]], stride));
      stride *= x->dims[p];
    }
    v = moss_k_cast(b, acc_dt, moss_k_load(b, moss_k_input(b, i), idx));
    prod = prod ? moss_k_bin(b, MOSS_KX_MUL, prod, v) : v;
  }
  moss_k_set(b, acc, moss_k_bin(b, MOSS_KX_ADD, acc, prod));
  while (nsum--) moss_k_end(b);
  moss_k_store(b, moss_k_output(b, 0), oidx, moss_k_cast(b, dt, acc));
  for (k = 0; k < e.orank; k++) moss_k_end(b);
  return b->st;
}
