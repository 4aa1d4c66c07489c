/* conv.c - Conv and ConvTranspose: output shapes from kernel, strides,
 * dilations, pads, auto_pad (and for ConvTranspose output_padding and
 * output_shape). 1-D to 3-D (any spatial rank moss can hold). No constant
 * folding: convolutions never decide shapes. */
#include <string.h>

#include "ops.h"

/* The kernel's |nsp| spatial sizes, from the weights |w|; a kernel_shape
 * attribute, when present, must agree. */
static moss_status kernel_shape(moss_ctx *ctx, const moss_node *n, const moss_value *w, int nsp,
                                int64_t *ks) {
  int k;
  for (k = 0; k < nsp; k++) ks[k] = w->dims[k + 2];
  if (moss_node_find_attr(n, "kernel_shape")) {
    int64_t ka[MOSS_MAX_RANK];
    MOSS_TRY(moss_spatial_ints(ctx, n, "kernel_shape", nsp, 1, ka));
    for (k = 0; k < nsp; k++)
      if (ka[k] != ks[k])
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "kernel_shape disagrees with the weights");
  }
  return MOSS_OK;
}

static moss_status infer_conv(moss_ctx *ctx, moss_node *n, moss_value *x, moss_value *w) {
  int nsp = x->rank - 2, k;
  int64_t ks[MOSS_MAX_RANK], st[MOSS_MAX_RANK], dl[MOSS_MAX_RANK], pads[2 * MOSS_MAX_RANK];
  int64_t dims[MOSS_MAX_RANK];
  int64_t group = moss_attr_int(n, "group", 1);
  const char *ap = moss_attr_string(n, "auto_pad", "NOTSET");
  moss_value *b = moss_node_input(n, 2);
  MOSS_TRY(moss_spatial_ints(ctx, n, "strides", nsp, 1, st));
  MOSS_TRY(moss_spatial_ints(ctx, n, "dilations", nsp, 1, dl));
  MOSS_TRY(moss_spatial_ints(ctx, n, "pads", 2 * nsp, 0, pads));
  MOSS_TRY(kernel_shape(ctx, n, w, nsp, ks));
  if (group < 1 || x->dims[1] % group || w->dims[0] % group || w->dims[1] * group != x->dims[1])
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "channels do not match: input %lld, weights [%lld, %lld], group %lld",
                     (long long)x->dims[1], (long long)w->dims[0], (long long)w->dims[1],
                     (long long)group);
  if (b && (b->rank != 1 || b->dims[0] != w->dims[0] || b->dtype != x->dtype))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "bias must be 1-D of %lld elements",
                     (long long)w->dims[0]);
  dims[0] = x->dims[0];
  dims[1] = w->dims[0];
  for (k = 0; k < nsp; k++) {
    int64_t ek = (ks[k] - 1) * dl[k] + 1, in = x->dims[k + 2];
    if (st[k] < 1 || dl[k] < 1 || ks[k] < 1 || pads[k] < 0 || pads[k + nsp] < 0)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "invalid strides, dilations, pads or kernel");
    if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
      dims[k + 2] = (in + st[k] - 1) / st[k];
    } else if (!strcmp(ap, "VALID")) {
      if (in < ek) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "kernel larger than the input");
      dims[k + 2] = (in - ek) / st[k] + 1;
    } else if (!strcmp(ap, "NOTSET")) {
      int64_t span = in + pads[k] + pads[k + nsp];
      if (span < ek)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "kernel larger than the padded input");
      dims[k + 2] = (span - ek) / st[k] + 1;
    } else {
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "unknown auto_pad '%s'", ap);
    }
  }
  moss_set_output(n, 0, x->dtype, x->rank, dims);
  return MOSS_OK;
}

static moss_status infer_convtranspose(moss_ctx *ctx, moss_node *n, moss_value *x, moss_value *w) {
  int nsp = x->rank - 2, k;
  int64_t ks[MOSS_MAX_RANK], st[MOSS_MAX_RANK], dl[MOSS_MAX_RANK], pads[2 * MOSS_MAX_RANK];
  int64_t op[MOSS_MAX_RANK], dims[MOSS_MAX_RANK];
  int64_t group = moss_attr_int(n, "group", 1);
  const char *ap = moss_attr_string(n, "auto_pad", "NOTSET");
  const int64_t *os;
  int nos = moss_attr_ints(n, "output_shape", &os);
  moss_value *b = moss_node_input(n, 2);
  MOSS_TRY(moss_spatial_ints(ctx, n, "strides", nsp, 1, st));
  MOSS_TRY(moss_spatial_ints(ctx, n, "dilations", nsp, 1, dl));
  MOSS_TRY(moss_spatial_ints(ctx, n, "pads", 2 * nsp, 0, pads));
  MOSS_TRY(moss_spatial_ints(ctx, n, "output_padding", nsp, 0, op));
  MOSS_TRY(kernel_shape(ctx, n, w, nsp, ks));
  if (group < 1 || w->dims[0] != x->dims[1] || x->dims[1] % group)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "channels do not match: input %lld, weights [%lld, %lld], group %lld",
                     (long long)x->dims[1], (long long)w->dims[0], (long long)w->dims[1],
                     (long long)group);
  if (b && (b->rank != 1 || b->dims[0] != w->dims[1] * group || b->dtype != x->dtype))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "bias must be 1-D of %lld elements",
                     (long long)(w->dims[1] * group));
  if (os && nos != nsp && nos != nsp + 2)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "output_shape has %d values", nos);
  if (strcmp(ap, "NOTSET") && strcmp(ap, "SAME_UPPER") && strcmp(ap, "SAME_LOWER") &&
      strcmp(ap, "VALID"))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "unknown auto_pad '%s'", ap);
  dims[0] = x->dims[0];
  dims[1] = w->dims[1] * group;
  for (k = 0; k < nsp; k++) {
    int64_t ek = (ks[k] - 1) * dl[k] + 1, in = x->dims[k + 2];
    int64_t full = st[k] * (in - 1) + op[k] + ek;
    if (st[k] < 1 || dl[k] < 1 || ks[k] < 1 || op[k] < 0 || pads[k] < 0 || pads[k + nsp] < 0)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "invalid strides, dilations, pads or kernel");
    if (os) dims[k + 2] = os[nos - nsp + k];
    else if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) dims[k + 2] = in * st[k];
    else if (!strcmp(ap, "VALID")) dims[k + 2] = full;
    else dims[k + 2] = full - pads[k] - pads[k + nsp];
    if (dims[k + 2] < 1 || (!os && dims[k + 2] > full))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "output size %lld impossible (at most %lld)",
                       (long long)dims[k + 2], (long long)full);
  }
  moss_set_output(n, 0, x->dtype, x->rank, dims);
  return MOSS_OK;
}

moss_status moss_infer_conv(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x, *w;
  (void)g;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  MOSS_TRY(moss_need_input(ctx, n, 1));
  x = n->inputs[0];
  w = n->inputs[1];
  if (x->dtype != MOSS_DT_F32 && x->dtype != MOSS_DT_F64)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "input type %s (float32 and float64 only)",
                     moss_dtype_name(x->dtype));
  if (w->dtype != x->dtype)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "weights and input types differ");
  if (x->rank < 3 || w->rank != x->rank)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input rank %d and weight rank %d", x->rank,
                     w->rank);
  if (n->op == MOSS_OP_ConvTranspose) return infer_convtranspose(ctx, n, x, w);
  return infer_conv(ctx, n, x, w);
}

moss_status moss_eval_conv(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED;
}
