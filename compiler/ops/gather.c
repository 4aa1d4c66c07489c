/* gather.c - indexing operators: Gather, GatherElements, GatherND,
 * ScatterElements (and its deprecated alias Scatter), ScatterND and OneHot.
 * Indices are data: only OneHot's depth decides a shape and must be
 * constant. Gather folds at compile time (Shape -> Gather -> Concat chains
 * that compute Reshape shapes); a constant out-of-range index there is an
 * invalid model, while run-time indices are bounds-checked by the code. */
#include <string.h>

#include "ops.h"

static int is_index_type(moss_dtype dt) {
  return dt == MOSS_DT_I64 || dt == MOSS_DT_I32 || dt == MOSS_DT_I16 || dt == MOSS_DT_I8 ||
         dt == MOSS_DT_U64 || dt == MOSS_DT_U32 || dt == MOSS_DT_U16 || dt == MOSS_DT_U8;
}

static moss_status need_indices(moss_ctx *ctx, const moss_node *n, int i) {
  moss_value *v;
  MOSS_TRY(moss_need_input(ctx, n, i));
  v = n->inputs[i];
  if (!is_index_type(v->dtype))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "indices must be integers, not %s",
                     moss_dtype_name(v->dtype));
  return MOSS_OK;
}

static const char *reduction(const moss_node *n) {
  return moss_attr_string(n, "reduction", "none");
}

/* ScatterElements / GatherElements: indices of the data's rank, no larger
 * than the data on the other axes. */
static moss_status check_elements(moss_ctx *ctx, const moss_node *n, const moss_value *d,
                                  const moss_value *ix, int axis) {
  int k;
  if (ix->rank != d->rank)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "indices have rank %d, data %d", ix->rank,
                     d->rank);
  for (k = 0; k < d->rank; k++)
    if (k != axis && ix->dims[k] > d->dims[k])
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "indices exceed the data on axis %d", k);
  return MOSS_OK;
}

moss_status moss_infer_gather(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = n->inputs[0], *ix;
  int64_t dims[MOSS_MAX_RANK];
  int k, r = 0, axis;
  (void)g;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  if (n->op != MOSS_OP_OneHot && !moss_dtype_ctype(x->dtype))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "%s data is not supported",
                     moss_dtype_name(x->dtype));
  switch (n->op) {
  case MOSS_OP_Gather:
    MOSS_TRY(need_indices(ctx, n, 1));
    ix = n->inputs[1];
    MOSS_TRY(moss_norm_axis(ctx, n, moss_attr_int(n, "axis", 0), x->rank, &axis));
    if (x->rank == 0) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "cannot gather from a scalar");
    if (x->rank - 1 + ix->rank > MOSS_MAX_RANK)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "output rank above %d", MOSS_MAX_RANK);
    for (k = 0; k < axis; k++) dims[r++] = x->dims[k];
    for (k = 0; k < ix->rank; k++) dims[r++] = ix->dims[k];
    for (k = axis + 1; k < x->rank; k++) dims[r++] = x->dims[k];
    moss_set_output(n, 0, x->dtype, r, dims);
    return MOSS_OK;
  case MOSS_OP_GatherElements:
    MOSS_TRY(need_indices(ctx, n, 1));
    ix = n->inputs[1];
    MOSS_TRY(moss_norm_axis(ctx, n, moss_attr_int(n, "axis", 0), x->rank, &axis));
    MOSS_TRY(check_elements(ctx, n, x, ix, axis));
    moss_set_output(n, 0, x->dtype, ix->rank, ix->dims);
    return MOSS_OK;
  case MOSS_OP_GatherND: {
    int64_t b = moss_attr_int(n, "batch_dims", 0), m;
    MOSS_TRY(need_indices(ctx, n, 1));
    ix = n->inputs[1];
    if (ix->rank < 1) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "indices must have rank >= 1");
    m = ix->dims[ix->rank - 1];
    if (b < 0 || b >= ix->rank || b > x->rank)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "batch_dims %lld out of range", (long long)b);
    if (m < 0 || m > x->rank - b)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "index tuples of %lld for data rank %d",
                       (long long)m, x->rank);
    for (k = 0; k < b; k++)
      if (ix->dims[k] != x->dims[k])
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "batch dimension %d differs", k);
    for (k = 0; k < ix->rank - 1; k++) dims[r++] = ix->dims[k];
    for (k = (int)(b + m); k < x->rank; k++) {
      if (r >= MOSS_MAX_RANK) return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "output rank too high");
      dims[r++] = x->dims[k];
    }
    moss_set_output(n, 0, x->dtype, r, dims);
    return MOSS_OK;
  }
  case MOSS_OP_ScatterElements:
  case MOSS_OP_Scatter: {
    moss_value *u;
    const char *red = reduction(n);
    MOSS_TRY(need_indices(ctx, n, 1));
    MOSS_TRY(moss_need_input(ctx, n, 2));
    ix = n->inputs[1];
    u = n->inputs[2];
    MOSS_TRY(moss_norm_axis(ctx, n, moss_attr_int(n, "axis", 0), x->rank, &axis));
    MOSS_TRY(check_elements(ctx, n, x, ix, axis));
    if (u->dtype != x->dtype || u->rank != ix->rank ||
        memcmp(u->dims, ix->dims, sizeof(int64_t) * (size_t)ix->rank))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                       "updates must match the indices' shape and the data's type");
    if (strcmp(red, "none") && strcmp(red, "add") && strcmp(red, "mul") && strcmp(red, "max") &&
        strcmp(red, "min"))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "unknown reduction '%s'", red);
    moss_set_output(n, 0, x->dtype, x->rank, x->dims);
    return MOSS_OK;
  }
  case MOSS_OP_ScatterND: {
    moss_value *u;
    const char *red = reduction(n);
    int64_t m;
    MOSS_TRY(need_indices(ctx, n, 1));
    MOSS_TRY(moss_need_input(ctx, n, 2));
    ix = n->inputs[1];
    u = n->inputs[2];
    if (ix->rank < 1) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "indices must have rank >= 1");
    m = ix->dims[ix->rank - 1];
    if (m < 0 || m > x->rank)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "index tuples of %lld for data rank %d",
                       (long long)m, x->rank);
    /* updates: indices.shape[:-1] + data.shape[m:] */
    if (u->dtype != x->dtype || u->rank != ix->rank - 1 + x->rank - (int)m)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "updates have the wrong type or rank");
    for (k = 0; k < u->rank; k++) {
      int64_t want = k < ix->rank - 1 ? ix->dims[k] : x->dims[m + k - (ix->rank - 1)];
      if (u->dims[k] != want)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "updates differ in dimension %d", k);
    }
    if (strcmp(red, "none") && strcmp(red, "add") && strcmp(red, "mul") && strcmp(red, "max") &&
        strcmp(red, "min"))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "unknown reduction '%s'", red);
    moss_set_output(n, 0, x->dtype, x->rank, x->dims);
    return MOSS_OK;
  }
  case MOSS_OP_OneHot: {
    moss_value *dv = n->inputs[1], *vv = n->inputs[2];
    int64_t depth;
    MOSS_TRY(moss_need_input(ctx, n, 1));
    MOSS_TRY(moss_need_input(ctx, n, 2));
    if (!moss_dtype_ctype(x->dtype) || x->dtype == MOSS_DT_BOOL)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "%s indices are not supported",
                       moss_dtype_name(x->dtype));
    if (!moss_dtype_ctype(vv->dtype))
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "%s values are not supported",
                       moss_dtype_name(vv->dtype));
    MOSS_TRY(moss_need_constant(ctx, n, 1, "depth"));
    if (moss_value_numel(dv) != 1 || !moss_dtype_ctype(dv->dtype))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "depth must hold one number");
    if (moss_value_numel(vv) != 2)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "values must hold [off, on]");
    {
      double dd = moss_value_get_f64(dv, 0);
      if (!(dd >= 0 && dd < 1e12))
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "depth out of range");
      depth = (int64_t)dd;
    }
    if (x->rank + 1 > MOSS_MAX_RANK)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "output rank too high");
    MOSS_TRY(moss_norm_axis(ctx, n, moss_attr_int(n, "axis", -1), x->rank + 1, &axis));
    for (k = 0; k <= x->rank; k++)
      dims[k] = k < axis ? x->dims[k] : k == axis ? depth : x->dims[k - 1];
    moss_set_output(n, 0, vv->dtype, x->rank + 1, dims);
    return MOSS_OK;
  }
  default: return moss_fail(ctx, MOSS_E_INTERNAL, n, "not a gather operator");
  }
}

moss_status moss_eval_gather(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  const moss_value *x = n->inputs[0], *ix = n->inputs[1];
  int64_t outer = 1, inner = 1, D, ni = moss_value_numel(ix), o, j;
  size_t esz = moss_dtype_size(x->dtype);
  int k, axis;
  char *y = n->outputs[0]->data;
  (void)g;
  if (n->op != MOSS_OP_Gather || !esz) return MOSS_E_UNSUPPORTED;
  axis = (int)moss_attr_int(n, "axis", 0);
  if (axis < 0) axis += x->rank;
  D = x->dims[axis];
  for (k = 0; k < x->rank; k++) {
    if (k < axis) outer *= x->dims[k];
    if (k > axis) inner *= x->dims[k];
  }
  for (j = 0; j < ni; j++) {
    int64_t v = moss_value_get_i64(ix, j);
    if (v < -D || v >= D)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                       "index %lld is out of range for dimension %lld", (long long)v, (long long)D);
  }
  for (o = 0; o < outer; o++)
    for (j = 0; j < ni; j++) {
      int64_t v = moss_value_get_i64(ix, j);
      if (v < 0) v += D;
      memcpy(y + (size_t)((o * ni + j) * inner) * esz,
             (const char *)x->data + (size_t)((o * D + v) * inner) * esz, (size_t)inner * esz);
    }
  return MOSS_OK;
}
