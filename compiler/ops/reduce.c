/* reduce.c - reductions over a set of axes (ReduceSum/Mean/Max/Min/Prod/
 * L1/L2/LogSum/LogSumExp/SumSquare) and the arg reductions (ArgMax/ArgMin).
 * The axes come from the "axes" attribute (older opsets) or from the
 * optional second input (ReduceSum from opset 13, the others from 18),
 * which must then be a constant since it decides the output shape. No axes
 * means all axes, or the identity with noop_with_empty_axes=1. Evaluation
 * covers Sum/Prod/Min/Max/Mean and the arg reductions, which shape
 * computations use. */
#include <math.h>
#include <string.h>

#include "ops.h"

moss_status moss_reduce_mask(moss_ctx *ctx, const moss_node *n, int rank, int *mask,
                             int *out_noop) {
  const int64_t *ax = NULL;
  int64_t nax = 0, i;
  const moss_value *av = n->ninputs > 1 ? moss_node_input(n, 1) : NULL;
  *out_noop = 0;
  memset(mask, 0, sizeof(int) * MOSS_MAX_RANK);
  if (moss_node_find_attr(n, "axes")) {
    nax = moss_attr_ints(n, "axes", &ax);
  } else if (av) {
    MOSS_TRY(moss_need_constant(ctx, n, 1, "axes"));
    if (av->dtype != MOSS_DT_I64 && av->dtype != MOSS_DT_I32)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "axes must be int64");
    if (av->rank > 1) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "axes must be 1-D");
    nax = moss_value_numel(av);
  }
  if (nax == 0) {
    if (moss_attr_int(n, "noop_with_empty_axes", 0)) {
      *out_noop = 1;
      return MOSS_OK;
    }
    for (i = 0; i < rank; i++) mask[i] = 1;
    return MOSS_OK;
  }
  for (i = 0; i < nax; i++) {
    int64_t a = ax ? ax[i] : moss_value_get_i64(av, i);
    int k;
    if (a < -rank || a >= rank)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "axis %lld is out of range for rank %d",
                       (long long)a, rank);
    k = (int)(a < 0 ? a + rank : a);
    if (mask[k]) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "axis %lld repeated", (long long)a);
    mask[k] = 1;
  }
  return MOSS_OK;
}

static int type_ok(moss_op op, moss_dtype dt) {
  if (dt == MOSS_DT_BOOL) return op == MOSS_OP_ReduceMax || op == MOSS_OP_ReduceMin;
  return moss_arith_type(dt);
}

moss_status moss_infer_reduce(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = n->inputs[0];
  int mask[MOSS_MAX_RANK], noop, k, r = 0;
  int keep = moss_attr_int(n, "keepdims", 1) != 0;
  int64_t dims[MOSS_MAX_RANK];
  (void)g;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  if (!type_ok(n->op, x->dtype)) {
    if (x->dtype == MOSS_DT_F16 || x->dtype == MOSS_DT_BF16 || x->dtype == MOSS_DT_STRING ||
        x->dtype == MOSS_DT_BOOL)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "element type %s", moss_dtype_name(x->dtype));
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "element type %s", moss_dtype_name(x->dtype));
  }
  if (n->op == MOSS_OP_ArgMax || n->op == MOSS_OP_ArgMin) {
    int axis;
    MOSS_TRY(moss_norm_axis(ctx, n, moss_attr_int(n, "axis", 0), x->rank, &axis));
    if (x->rank == 0) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input is a scalar");
    if (x->dims[axis] == 0)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "arg reduction over an empty axis");
    for (k = 0; k < x->rank; k++) {
      if (k != axis)
        dims[r++] = x->dims[k];
      else if (keep)
        dims[r++] = 1;
    }
    moss_set_output(n, 0, MOSS_DT_I64, r, dims);
    return MOSS_OK;
  }
  MOSS_TRY(moss_reduce_mask(ctx, n, x->rank, mask, &noop));
  if (noop) {
    moss_set_output(n, 0, x->dtype, x->rank, x->dims);
    return MOSS_OK;
  }
  for (k = 0; k < x->rank; k++) {
    if (!mask[k])
      dims[r++] = x->dims[k];
    else if (keep)
      dims[r++] = 1;
  }
  moss_set_output(n, 0, x->dtype, r, dims);
  return MOSS_OK;
}

/* Per output element: walks the reduced positions with |mask| over the input. */
moss_status moss_eval_reduce(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = n->inputs[0], *y = n->outputs[0];
  int mask[MOSS_MAX_RANK], noop = 0, k, isf = moss_dtype_is_float(x->dtype), arg;
  int64_t strides[MOSS_MAX_RANK], kd[MOSS_MAX_RANK], rd[MOSS_MAX_RANK], ks[MOSS_MAX_RANK],
      rs[MOSS_MAX_RANK], nk = 0, nr = 0, o, no = moss_value_numel(y), cnt = 1;
  int last = moss_attr_int(n, "select_last_index", 0) != 0;
  (void)g;
  if (!moss_dtype_ctype(x->dtype) || !x->data) return MOSS_E_UNSUPPORTED;
  arg = n->op == MOSS_OP_ArgMax || n->op == MOSS_OP_ArgMin;
  switch (n->op) {
  case MOSS_OP_ReduceSum:
  case MOSS_OP_ReduceProd:
  case MOSS_OP_ReduceMin:
  case MOSS_OP_ReduceMax:
  case MOSS_OP_ReduceMean:
  case MOSS_OP_ArgMax:
  case MOSS_OP_ArgMin: break;
  default: return MOSS_E_UNSUPPORTED;
  }
  if (arg) {
    int axis = (int)moss_attr_int(n, "axis", 0);
    if (axis < 0) axis += x->rank;
    memset(mask, 0, sizeof mask);
    if (axis < 0 || axis >= x->rank) return MOSS_E_UNSUPPORTED;
    mask[axis] = 1;
  } else if (moss_reduce_mask(ctx, n, x->rank, mask, &noop) != MOSS_OK) {
    return MOSS_E_UNSUPPORTED;
  }
  if (noop) {
    memcpy(y->data, x->data, moss_value_nbytes(x));
    return MOSS_OK;
  }
  moss_strides(x->rank, x->dims, strides);
  for (k = 0; k < x->rank; k++) {
    if (mask[k]) {
      rd[nr] = x->dims[k];
      rs[nr++] = strides[k];
      cnt *= x->dims[k];
    } else {
      kd[nk] = x->dims[k];
      ks[nk++] = strides[k];
    }
  }
  for (o = 0; o < no; o++) {
    int64_t base = 0, rem = o, r, besti = 0;
    double facc = 0, fbest = 0;
    int64_t iacc = 0, ibest = 0;
    int j;
    for (j = (int)nk - 1; j >= 0; j--) {
      base += (rem % kd[j]) * ks[j];
      rem /= kd[j];
    }
    if (n->op == MOSS_OP_ReduceProd) facc = 1, iacc = 1;
    if (n->op == MOSS_OP_ReduceMax) facc = -INFINITY, iacc = INT64_MIN;
    if (n->op == MOSS_OP_ReduceMin) facc = INFINITY, iacc = INT64_MAX;
    if (x->dtype == MOSS_DT_U64 && !arg && n->op != MOSS_OP_ReduceSum &&
        n->op != MOSS_OP_ReduceProd)
      return MOSS_E_UNSUPPORTED;
    for (r = 0; r < cnt; r++) {
      int64_t idx = base, q = r;
      double fv;
      int64_t iv;
      for (j = (int)nr - 1; j >= 0; j--) {
        idx += (q % rd[j]) * rs[j];
        q /= rd[j];
      }
      fv = moss_load_f64(x->dtype, x->data, idx);
      iv = moss_load_i64(x->dtype, x->data, idx);
      switch (n->op) {
      case MOSS_OP_ReduceSum:
      case MOSS_OP_ReduceMean:
        facc += fv;
        iacc = (int64_t)((uint64_t)iacc + (uint64_t)iv);
        break;
      case MOSS_OP_ReduceProd:
        facc *= fv;
        iacc = (int64_t)((uint64_t)iacc * (uint64_t)iv);
        break;
      case MOSS_OP_ReduceMax:
        if (fv > facc || isnan(fv)) facc = fv;
        if (iv > iacc) iacc = iv;
        break;
      case MOSS_OP_ReduceMin:
        if (fv < facc || isnan(fv)) facc = fv;
        if (iv < iacc) iacc = iv;
        break;
      default: { /* arg reductions */
        int better;
        if (r == 0)
          better = 1;
        else if (isf && isnan(fbest))
          better = last && isnan(fv);
        else if (isf && isnan(fv))
          better = 1;
        else if (n->op == MOSS_OP_ArgMax)
          better = isf ? (last ? fv >= fbest : fv > fbest) : (last ? iv >= ibest : iv > ibest);
        else
          better = isf ? (last ? fv <= fbest : fv < fbest) : (last ? iv <= ibest : iv < ibest);
        if (better) fbest = fv, ibest = iv, besti = r;
        break;
      }
      }
    }
    if (arg)
      moss_store_i64(y->dtype, y->data, o, besti);
    else if (isf)
      moss_store_f64(y->dtype, y->data, o, n->op == MOSS_OP_ReduceMean ? facc / (double)cnt : facc);
    else if (n->op == MOSS_OP_ReduceMean) {
      if (cnt == 0) return MOSS_E_UNSUPPORTED;
      moss_store_i64(y->dtype, y->data, o, iacc / cnt);
    } else
      moss_store_i64(y->dtype, y->data, o, iacc);
  }
  return MOSS_OK;
}
