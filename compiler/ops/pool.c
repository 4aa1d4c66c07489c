/* pool.c - pooling: MaxPool (with its optional Indices output),
 * AveragePool, LpPool, their Global forms, and MaxUnpool. Output shapes
 * follow kernel_shape, strides, dilations, pads, auto_pad and ceil_mode.
 * No constant folding: pools never decide shapes. */
#include <string.h>

#include "ops.h"

static moss_status check_type(moss_ctx *ctx, const moss_node *n, moss_dtype dt) {
  int ok = dt == MOSS_DT_F32 || dt == MOSS_DT_F64;
  if ((n->op == MOSS_OP_MaxPool || n->op == MOSS_OP_GlobalMaxPool || n->op == MOSS_OP_MaxUnpool) &&
      moss_dtype_ctype(dt) && dt != MOSS_DT_BOOL)
    ok = 1;
  if (!ok)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "input type %s", moss_dtype_name(dt));
  return MOSS_OK;
}

static moss_status infer_window(moss_ctx *ctx, moss_node *n, const moss_value *x) {
  int nsp = x->rank - 2, k;
  int64_t ks[MOSS_MAX_RANK], st[MOSS_MAX_RANK], dl[MOSS_MAX_RANK], pads[2 * MOSS_MAX_RANK];
  int64_t dims[MOSS_MAX_RANK];
  const char *ap = moss_attr_string(n, "auto_pad", "NOTSET");
  int ceil_mode = (int)moss_attr_int(n, "ceil_mode", 0);
  const int64_t *ka;
  if (moss_attr_ints(n, "kernel_shape", &ka) != nsp || !ka)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "kernel_shape must have %d values", nsp);
  MOSS_TRY(moss_spatial_ints(ctx, n, "kernel_shape", nsp, 1, ks));
  MOSS_TRY(moss_spatial_ints(ctx, n, "strides", nsp, 1, st));
  MOSS_TRY(moss_spatial_ints(ctx, n, "dilations", nsp, 1, dl));
  MOSS_TRY(moss_spatial_ints(ctx, n, "pads", 2 * nsp, 0, pads));
  dims[0] = x->dims[0];
  dims[1] = x->dims[1];
  for (k = 0; k < nsp; k++) {
    int64_t ek = (ks[k] - 1) * dl[k] + 1, in = x->dims[k + 2], span, o;
    if (st[k] < 1 || dl[k] < 1 || ks[k] < 1 || pads[k] < 0 || pads[k + nsp] < 0)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "invalid strides, dilations, pads or kernel");
    if (n->op == MOSS_OP_MaxUnpool) {
      dims[k + 2] = (in - 1) * st[k] - pads[k] - pads[k + nsp] + ks[k];
      if (dims[k + 2] < 1) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "empty output");
      continue;
    }
    if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
      dims[k + 2] = (in + st[k] - 1) / st[k];
      continue;
    }
    if (!strcmp(ap, "VALID")) span = in;
    else if (!strcmp(ap, "NOTSET")) span = in + pads[k] + pads[k + nsp];
    else return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "unknown auto_pad '%s'", ap);
    if (span < ek)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "kernel larger than the padded input");
    o = (span - ek + (ceil_mode ? st[k] - 1 : 0)) / st[k] + 1;
    /* A last window starting in the end padding is dropped. */
    if (ceil_mode && (o - 1) * st[k] >= in + (strcmp(ap, "VALID") ? pads[k] : 0)) o--;
    dims[k + 2] = o;
  }
  if (n->op == MOSS_OP_MaxUnpool) {
    moss_value *os = moss_node_input(n, 2);
    if (os) {
      MOSS_TRY(moss_need_constant(ctx, n, 2, "output_shape"));
      if (moss_value_numel(os) != x->rank)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "output_shape must have %d values",
                         x->rank);
      for (k = 0; k < x->rank; k++) {
        dims[k] = moss_value_get_i64(os, k);
        if (dims[k] < 1) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "output_shape %lld",
                                          (long long)dims[k]);
      }
    }
  }
  moss_set_output(n, 0, x->dtype, x->rank, dims);
  if (n->op == MOSS_OP_MaxPool) moss_set_output(n, 1, MOSS_DT_I64, x->rank, dims);
  return MOSS_OK;
}

moss_status moss_infer_pool(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x;
  int64_t dims[MOSS_MAX_RANK];
  int k;
  (void)g;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  x = n->inputs[0];
  MOSS_TRY(check_type(ctx, n, x->dtype));
  if (x->rank < 3)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input rank %d (needs N, C and spatial)",
                     x->rank);
  switch (n->op) {
  case MOSS_OP_GlobalAveragePool: case MOSS_OP_GlobalMaxPool: case MOSS_OP_GlobalLpPool:
    for (k = 0; k < x->rank; k++) dims[k] = k < 2 ? x->dims[k] : 1;
    moss_set_output(n, 0, x->dtype, x->rank, dims);
    return MOSS_OK;
  case MOSS_OP_MaxUnpool: {
    moss_value *ix;
    MOSS_TRY(moss_need_input(ctx, n, 1));
    ix = n->inputs[1];
    if (ix->dtype != MOSS_DT_I64 || moss_value_numel(ix) != moss_value_numel(x))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "indices must be int64 shaped like X");
    return infer_window(ctx, n, x);
  }
  default:
    if (n->op == MOSS_OP_MaxPool && n->noutputs > 1 && n->outputs[1] &&
        moss_attr_int(n, "storage_order", 0) != 0 && moss_attr_int(n, "storage_order", 0) != 1)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "storage_order must be 0 or 1");
    return infer_window(ctx, n, x);
  }
}

moss_status moss_eval_pool(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED;
}
