/* common.c - the per-operator tables built from ir/ops.def, and helpers
 * every operator family uses for shape inference and evaluation. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops.h"

const moss_infer_fn moss_infer_table[MOSS_OP_COUNT_] = {
    NULL,
#define MOSS_OP(name, family, min_in, max_in, min_out, max_out) moss_infer_##family,
#include "../ir/ops.def"
#undef MOSS_OP
};

const moss_eval_fn moss_eval_table[MOSS_OP_COUNT_] = {
    NULL,
#define MOSS_OP(name, family, min_in, max_in, min_out, max_out) moss_eval_##family,
#include "../ir/ops.def"
#undef MOSS_OP
};

void moss_set_output(moss_node *n, int i, moss_dtype dt, int rank, const int64_t *dims) {
  moss_value *v = i < n->noutputs ? n->outputs[i] : NULL;
  int k;
  if (!v) return;
  v->dtype = dt;
  v->rank = rank;
  for (k = 0; k < rank; k++) v->dims[k] = dims[k];
}

moss_status moss_broadcast(moss_ctx *ctx, const moss_node *n, int ra, const int64_t *da, int rb,
                           const int64_t *db, int *out_rank, int64_t *out_dims) {
  int r = ra > rb ? ra : rb, k;
  for (k = 0; k < r; k++) {
    int64_t a = k - (r - ra) >= 0 ? da[k - (r - ra)] : 1;
    int64_t b = k - (r - rb) >= 0 ? db[k - (r - rb)] : 1;
    if (a != b && a != 1 && b != 1)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                       "shapes do not broadcast: dimension %lld vs %lld", (long long)a,
                       (long long)b);
    out_dims[k] = a == 1 ? b : a;
  }
  *out_rank = r;
  return MOSS_OK;
}

moss_status moss_norm_axis(moss_ctx *ctx, const moss_node *n, int64_t axis, int rank,
                           int *out_axis) {
  if (axis < -rank || axis >= (rank ? rank : 1))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "axis %lld is out of range for rank %d",
                     (long long)axis, rank);
  *out_axis = (int)(axis < 0 ? axis + rank : axis);
  return MOSS_OK;
}

/* Appends " --constant <name>=FILE" to |buf| for each graph input |v| is
 * computed from (within 6 producers; the string says each once). */
static int freeze_walk(const moss_value *v, char *buf, size_t cap, int depth) {
  int found = 0, j;
  if (!v || depth > 6) return 0;
  if (v->input_index >= 0 && !v->data) {
    char opt[300];
    size_t n = strlen(buf);
    snprintf(opt, sizeof opt, " --constant %s=FILE", v->name);
    if (strstr(buf, opt) || n + strlen(opt) + 1 > cap) return 0;
    memcpy(buf + n, opt, strlen(opt) + 1);
    return 1;
  }
  if (!v->producer) return 0;
  for (j = 0; j < v->producer->ninputs; j++)
    found += freeze_walk(v->producer->inputs[j], buf, cap, depth + 1);
  return found;
}

const char *moss_freeze_hint(const moss_value *v, char *buf, size_t cap) {
  if (cap) buf[0] = 0;
  if (cap && freeze_walk(v, buf, cap, 0)) return buf + 1;
  return NULL;
}

moss_status moss_need_constant(moss_ctx *ctx, const moss_node *n, int i, const char *what) {
  moss_value *v = moss_node_input(n, i);
  if (v && v->data) return MOSS_OK;
  if (v && v->input_index >= 0)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "input '%s' (%s) decides the output shape; fix it at compile time with "
                     "--constant %s=FILE",
                     v->name, what, v->name);
  {
    /* Name the graph inputs it is computed from: freezing them may fold it. */
    char buf[512];
    const char *hint = moss_freeze_hint(v, buf, sizeof buf);
    if (hint)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                       "input %d (%s) decides the output shape but is computed at run time "
                       "from graph inputs: fix them at compile time with %s",
                       i, what, hint);
  }
  return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                   "input %d (%s) decides the output shape but is computed at run time", i,
                   what);
}

moss_status moss_need_input(moss_ctx *ctx, const moss_node *n, int i) {
  moss_value *v = moss_node_input(n, i);
  if (!v) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "required input %d is missing", i);
  if (!moss_value_shape_known(v))
    return moss_fail(ctx, MOSS_E_INTERNAL, n, "input '%s' has no known shape", v->name);
  return MOSS_OK;
}

/* The element reads are ir/graph.c's, on a value that views |p| as |dt|
 * (moss_value_get_* read only |dtype| and |data|). */
double moss_load_f64(moss_dtype dt, const void *p, int64_t i) {
  moss_value v;
  v.dtype = dt;
  v.data = (void *)p;
  return moss_value_get_f64(&v, i);
}

int64_t moss_load_i64(moss_dtype dt, const void *p, int64_t i) {
  moss_value v;
  v.dtype = dt;
  v.data = (void *)p;
  return moss_value_get_i64(&v, i);
}

void moss_store_f64(moss_dtype dt, void *p, int64_t i, double v) {
  switch (dt) {
  case MOSS_DT_F32: ((float *)p)[i] = (float)v; break;
  case MOSS_DT_F64: ((double *)p)[i] = v; break;
  case MOSS_DT_F16:
  case MOSS_DT_BF16: ((uint16_t *)p)[i] = moss_half_from_f64(dt, v); break;
  case MOSS_DT_BOOL: ((uint8_t *)p)[i] = v != 0; break;
  default: moss_store_i64(dt, p, i, isfinite(v) && fabs(v) < 9.2e18 ? (int64_t)v : 0); break;
  }
}

void moss_store_i64(moss_dtype dt, void *p, int64_t i, int64_t v) {
  switch (dt) {
  case MOSS_DT_I64: ((int64_t *)p)[i] = v; break;
  case MOSS_DT_I32: ((int32_t *)p)[i] = (int32_t)v; break;
  case MOSS_DT_I16: ((int16_t *)p)[i] = (int16_t)v; break;
  case MOSS_DT_I8: ((int8_t *)p)[i] = (int8_t)v; break;
  case MOSS_DT_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
  case MOSS_DT_BOOL: ((uint8_t *)p)[i] = v != 0; break;
  case MOSS_DT_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
  case MOSS_DT_U32: ((uint32_t *)p)[i] = (uint32_t)v; break;
  case MOSS_DT_U64: ((uint64_t *)p)[i] = (uint64_t)v; break;
  case MOSS_DT_F32: ((float *)p)[i] = (float)v; break;
  case MOSS_DT_F64: ((double *)p)[i] = (double)v; break;
  case MOSS_DT_F16:
  case MOSS_DT_BF16: ((uint16_t *)p)[i] = moss_half_from_f64(dt, (double)v); break;
  default: break;
  }
}

void moss_strides(int rank, const int64_t *dims, int64_t *out_strides) {
  int64_t s = 1;
  int k;
  for (k = rank - 1; k >= 0; k--) {
    out_strides[k] = s;
    s *= dims[k];
  }
}

int64_t moss_broadcast_index(int rank, const int64_t *dims, int in_rank, const int64_t *in_dims,
                             int64_t o) {
  int64_t idx = 0, stride = 1;
  int k;
  for (k = rank - 1; k >= 0; k--) {
    int64_t c = dims[k] ? o % dims[k] : 0;
    int ik = k - (rank - in_rank);
    o = dims[k] ? o / dims[k] : 0;
    if (ik < 0) break;
    if (in_dims[ik] != 1) idx += c * stride;
    stride *= in_dims[ik];
  }
  return idx;
}

moss_status moss_spatial_ints(moss_ctx *ctx, const moss_node *n, const char *name, int want,
                              int64_t def, int64_t *out_vals) {
  const int64_t *a;
  int cnt = moss_attr_ints(n, name, &a), k;
  if (!a) {
    for (k = 0; k < want; k++) out_vals[k] = def;
    return MOSS_OK;
  }
  if (cnt != want)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "'%s' has %d values, expected %d", name, cnt,
                     want);
  for (k = 0; k < want; k++) out_vals[k] = a[k];
  return MOSS_OK;
}

int moss_arith_type(moss_dtype dt) {
  switch (dt) {
  case MOSS_DT_F32:
  case MOSS_DT_F64:
  case MOSS_DT_I8:
  case MOSS_DT_I16:
  case MOSS_DT_I32:
  case MOSS_DT_I64:
  case MOSS_DT_U8:
  case MOSS_DT_U16:
  case MOSS_DT_U32:
  case MOSS_DT_U64: return 1;
  default: return 0;
  }
}
