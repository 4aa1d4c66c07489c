/* view.c - operators whose output is the input's bytes under another shape:
 * Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout (inference, or
 * training mode with ratio 0, which drops nothing). The memory planner
 * aliases them in place where legal. */
#include <string.h>

#include "ops.h"

/* The axes of Squeeze/Unsqueeze: the attribute before opset 13, the
 * optional second input from 13 on. Returns the count or -1 if none. */
static int get_axes(moss_ctx *ctx, moss_node *n, int64_t *axes, moss_status *st) {
  const int64_t *a;
  int k, cnt;
  moss_value *v = moss_node_input(n, 1);
  *st = MOSS_OK;
  if (v) {
    if ((*st = moss_need_constant(ctx, n, 1, "axes")) != MOSS_OK) return -1;
    cnt = (int)moss_value_numel(v);
    if (cnt > MOSS_MAX_RANK) {
      *st = moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "too many axes");
      return -1;
    }
    for (k = 0; k < cnt; k++) axes[k] = moss_value_get_i64(v, k);
    return cnt;
  }
  cnt = moss_attr_ints(n, "axes", &a);
  if (!a) return -1;
  if (cnt > MOSS_MAX_RANK) {
    *st = moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "too many axes");
    return -1;
  }
  for (k = 0; k < cnt; k++) axes[k] = a[k];
  return cnt;
}

static moss_status infer_reshape(moss_ctx *ctx, moss_node *n, moss_value *x) {
  int64_t dims[MOSS_MAX_RANK], known = 1, numel = moss_value_numel(x);
  int k, rank, infer_at = -1;
  int allowzero = (int)moss_attr_int(n, "allowzero", 0);
  moss_value *s = moss_node_input(n, 1);
  if (s) {
    MOSS_TRY(moss_need_constant(ctx, n, 1, "shape"));
    if (s->dtype != MOSS_DT_I64)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "shape must be int64");
    rank = (int)moss_value_numel(s);
    if (rank > MOSS_MAX_RANK) return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "rank %d", rank);
    for (k = 0; k < rank; k++) dims[k] = moss_value_get_i64(s, k);
  } else {
    const int64_t *a;
    rank = moss_attr_ints(n, "shape", &a);
    if (!a) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "no shape input or attribute");
    if (rank > MOSS_MAX_RANK) return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "rank %d", rank);
    for (k = 0; k < rank; k++) dims[k] = a[k];
  }
  for (k = 0; k < rank; k++) {
    if (dims[k] == 0 && !allowzero) {
      if (k >= x->rank) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "0 in shape beyond input rank");
      dims[k] = x->dims[k];
    }
    if (dims[k] == -1) {
      if (infer_at >= 0) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "more than one -1 in shape");
      infer_at = k;
      continue;
    }
    if (dims[k] < 0) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "negative dimension in shape");
    if (!moss_i64_mul(known, dims[k], &known))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "shape's element count overflows 64 bits");
  }
  if (infer_at >= 0) {
    if (known == 0 || numel % known)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "cannot reshape %lld elements", (long long)numel);
    dims[infer_at] = numel / known;
  } else if (known != numel) {
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "cannot reshape %lld elements into %lld",
                     (long long)numel, (long long)known);
  }
  moss_set_output(n, 0, x->dtype, rank, dims);
  return MOSS_OK;
}

/* Fails unless Dropout's input |i| (|what|) is a constant: it decides
 * whether the node drops elements, so the code moss writes depends on it.
 * The message names the option that fixes it (a graph input), or the graph
 * inputs it is computed from. */
static moss_status dropout_known(moss_ctx *ctx, const moss_node *n, int i, const char *what) {
  moss_value *v = moss_node_input(n, i);
  char buf[512];
  const char *hint;
  if (v->data) return MOSS_OK;
  if (v->input_index >= 0)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "input '%s' (%s) decides whether Dropout drops elements; fix it at "
                     "compile time with --constant %s=FILE",
                     v->name, what, v->name);
  hint = moss_freeze_hint(v, buf, sizeof buf);
  if (hint)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "input %d (%s) decides whether Dropout drops elements but is computed at "
                     "run time from graph inputs: fix them at compile time with %s",
                     i, what, hint);
  return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                   "input %d (%s) decides whether Dropout drops elements but is computed at "
                   "run time",
                   i, what);
}

/* Dropout in training mode drops each element with probability |ratio|
 * through a random mask, which compiled code cannot reproduce; with ratio 0
 * it drops nothing and is the inference form (output = input, mask all
 * true), which is what moss compiles. Training mode: is_test = 0 before
 * opset 7, the training_mode input from opset 12 (constant: it decides
 * the code). The ratio: an attribute before opset 12, else the input
 * (constant; default 0.5). */
static moss_status dropout_training(moss_ctx *ctx, const moss_graph *g, const moss_node *n) {
  moss_value *tm = moss_node_input(n, 2), *r = moss_node_input(n, 1);
  double ratio;
  if (g->opset < 7 && moss_attr_int(n, "is_test", 1) == 0) {
    ratio = moss_attr_float(n, "ratio", 0.5f);
  } else {
    if (!tm) return MOSS_OK;
    MOSS_TRY(dropout_known(ctx, n, 2, "training_mode"));
    if (tm->dtype != MOSS_DT_BOOL || moss_value_numel(tm) != 1)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                       "training_mode holds %lld %s element%s; Dropout takes one bool",
                       (long long)moss_value_numel(tm), moss_dtype_name(tm->dtype),
                       moss_value_numel(tm) == 1 ? "" : "s");
    if (!moss_value_get_i64(tm, 0)) return MOSS_OK;
    ratio = 0.5;
    if (r) {
      MOSS_TRY(dropout_known(ctx, n, 1, "ratio"));
      if (!moss_dtype_is_float(r->dtype) || moss_value_numel(r) != 1)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                         "ratio holds %lld %s element%s; Dropout takes one float",
                         (long long)moss_value_numel(r), moss_dtype_name(r->dtype),
                         moss_value_numel(r) == 1 ? "" : "s");
      ratio = moss_value_get_f64(r, 0);
    }
  }
  if (!(ratio >= 0 && ratio < 1))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "ratio %g; Dropout takes [0, 1)", ratio);
  if (ratio != 0)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "Dropout in training mode with ratio %g: it drops elements through a random "
                     "mask, which moss cannot reproduce (it compiles training mode only with "
                     "ratio 0, which drops nothing)",
                     ratio);
  return MOSS_OK;
}

moss_status moss_infer_view(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = n->inputs[0];
  int64_t dims[MOSS_MAX_RANK], axes[MOSS_MAX_RANK];
  int k, rank = 0, cnt, ax;
  moss_status st;
  (void)g;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  switch (n->op) {
  case MOSS_OP_Reshape: return infer_reshape(ctx, n, x);
  case MOSS_OP_Flatten: {
    int64_t a = 1, b = 1, axis = moss_attr_int(n, "axis", 1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis > x->rank)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "axis out of range");
    for (k = 0; k < x->rank; k++) *(k < axis ? &a : &b) *= x->dims[k];
    dims[0] = a;
    dims[1] = b;
    moss_set_output(n, 0, x->dtype, 2, dims);
    return MOSS_OK;
  }
  case MOSS_OP_Squeeze: {
    unsigned drop = 0;
    cnt = get_axes(ctx, n, axes, &st);
    if (st != MOSS_OK) return st;
    for (k = 0; k < cnt; k++) {
      MOSS_TRY(moss_norm_axis(ctx, n, axes[k], x->rank, &ax));
      if (x->dims[ax] != 1)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "cannot squeeze axis %d of size %lld", ax,
                         (long long)x->dims[ax]);
      drop |= 1u << ax;
    }
    if (cnt < 0)
      for (k = 0; k < x->rank; k++)
        if (x->dims[k] == 1) drop |= 1u << k;
    for (k = 0; k < x->rank; k++)
      if (!(drop & (1u << k))) dims[rank++] = x->dims[k];
    moss_set_output(n, 0, x->dtype, rank, dims);
    return MOSS_OK;
  }
  case MOSS_OP_Unsqueeze: {
    unsigned ins = 0;
    int j = 0;
    cnt = get_axes(ctx, n, axes, &st);
    if (st != MOSS_OK) return st;
    if (cnt < 0) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "no axes");
    rank = x->rank + cnt;
    if (rank > MOSS_MAX_RANK) return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "rank %d", rank);
    for (k = 0; k < cnt; k++) {
      MOSS_TRY(moss_norm_axis(ctx, n, axes[k], rank, &ax));
      if (ins & (1u << ax)) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "repeated axis");
      ins |= 1u << ax;
    }
    for (k = 0; k < rank; k++) dims[k] = ins & (1u << k) ? 1 : x->dims[j++];
    moss_set_output(n, 0, x->dtype, rank, dims);
    return MOSS_OK;
  }
  case MOSS_OP_Dropout: {
    MOSS_TRY(dropout_training(ctx, g, n));
    moss_set_output(n, 0, x->dtype, x->rank, x->dims);
    moss_set_output(n, 1, MOSS_DT_BOOL, x->rank, x->dims);
    return MOSS_OK;
  }
  default:
    moss_set_output(n, 0, x->dtype, x->rank, x->dims);
    return MOSS_OK;
  }
}

moss_status moss_eval_view(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  memcpy(n->outputs[0]->data, n->inputs[0]->data, moss_value_nbytes(n->inputs[0]));
  if (n->noutputs > 1 && n->outputs[1])
    memset(n->outputs[1]->data, 1, moss_value_nbytes(n->outputs[1]));
  return MOSS_OK;
}
