/* generator.c - operators whose output does not depend on input data, or
 * only on small constant inputs: Constant, Shape, Size, ConstantOfShape,
 * Range, EyeLike and the Hann/Hamming/Blackman windows. All of them are
 * computable at compile time, so constant folding normally removes them;
 * their lowering (kernel/lower_generator.c) writes them out when their
 * result is a graph output or too big to fold. */
#include <math.h>
#include <string.h>

#include "ops.h"

#define PI_ 3.14159265358979323846

void moss_shape_range(const moss_node *n, int rank, int *out_start, int *out_end) {
  int64_t s = moss_attr_int(n, "start", 0), e = moss_attr_int(n, "end", rank);
  if (s < 0) s += rank;
  if (e < 0) e += rank;
  if (s < 0) s = 0;
  if (s > rank) s = rank;
  if (e < 0) e = 0;
  if (e > rank) e = rank;
  if (e < s) e = s;
  *out_start = (int)s;
  *out_end = (int)e;
}

/* Element count of Range(start, limit, delta); -1 when delta is 0. */
static int64_t range_count(const moss_value *st, const moss_value *li, const moss_value *de) {
  if (moss_dtype_is_float(st->dtype)) {
    double s = moss_value_get_f64(st, 0), l = moss_value_get_f64(li, 0);
    double d = moss_value_get_f64(de, 0), c;
    if (d == 0 || !isfinite(s) || !isfinite(l) || !isfinite(d)) return -1;
    c = ceil((l - s) / d);
    if (c < 0) c = 0;
    if (c > 1e12) return -1;
    return (int64_t)c;
  } else {
    int64_t s = moss_value_get_i64(st, 0), l = moss_value_get_i64(li, 0);
    int64_t d = moss_value_get_i64(de, 0);
    double diff = (double)l - (double)s;
    if (d == 0) return -1;
    if (fabs(diff / (double)d) > 1e12) return -1;
    if (d > 0) return l <= s ? 0 : (l - s + d - 1) / d;
    return l >= s ? 0 : (s - l + (-d) - 1) / (-d);
  }
}

/* The three cosine-sum coefficients of a window operator. */
static void window_coeffs(moss_op op, double *a0, double *a1, double *a2) {
  *a2 = 0;
  if (op == MOSS_OP_HannWindow) *a0 = 0.5, *a1 = 0.5;
  else if (op == MOSS_OP_HammingWindow) *a0 = 25.0 / 46.0, *a1 = 21.0 / 46.0;
  else *a0 = 0.42, *a1 = 0.5, *a2 = 0.08;
}

static moss_status check_ctype(moss_ctx *ctx, const moss_node *n, moss_dtype dt) {
  if (dt <= MOSS_DT_UNDEF || dt >= MOSS_DT_COUNT_ || !moss_dtype_size(dt))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "unknown data type %d", (int)dt);
  if (!moss_dtype_ctype(dt))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "data type %s", moss_dtype_name(dt));
  return MOSS_OK;
}

static moss_status infer_constant(moss_ctx *ctx, moss_node *n) {
  const moss_attr *a;
  int64_t d[1];
  if ((a = moss_node_find_attr(n, "value")) != NULL) {
    if (a->type != MOSS_ATTR_TENSOR || !a->t)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "attribute 'value' is not a tensor");
    if (a->t->rank > MOSS_MAX_RANK) return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "rank %d", a->t->rank);
    MOSS_TRY(check_ctype(ctx, n, a->t->dtype));
    moss_set_output(n, 0, a->t->dtype, a->t->rank, a->t->dims);
    return MOSS_OK;
  }
  if ((a = moss_node_find_attr(n, "value_float")) != NULL) {
    moss_set_output(n, 0, MOSS_DT_F32, 0, d);
    return MOSS_OK;
  }
  if ((a = moss_node_find_attr(n, "value_int")) != NULL) {
    moss_set_output(n, 0, MOSS_DT_I64, 0, d);
    return MOSS_OK;
  }
  if ((a = moss_node_find_attr(n, "value_floats")) != NULL) {
    d[0] = a->n;
    moss_set_output(n, 0, MOSS_DT_F32, 1, d);
    return MOSS_OK;
  }
  if ((a = moss_node_find_attr(n, "value_ints")) != NULL) {
    d[0] = a->n;
    moss_set_output(n, 0, MOSS_DT_I64, 1, d);
    return MOSS_OK;
  }
  if (moss_node_find_attr(n, "value_string") || moss_node_find_attr(n, "value_strings"))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "string constants are not supported");
  if (moss_node_find_attr(n, "sparse_value"))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "sparse constants are not supported");
  return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "Constant has no value attribute");
}

static moss_status need_scalar(moss_ctx *ctx, const moss_node *n, int i, const char *what) {
  moss_value *v = moss_node_input(n, i);
  MOSS_TRY(moss_need_input(ctx, n, i));
  MOSS_TRY(moss_need_constant(ctx, n, i, what));
  if (moss_value_numel(v) != 1)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%s must be a scalar", what);
  return MOSS_OK;
}

/* Shape and Size need only their input's static shape, never its data, so
 * they become constants right here even when the input is computed at run
 * time (the fold pass folds only nodes whose inputs are all constant); that
 * is what lets Shape -> Gather -> Concat -> Reshape chains fold. A graph
 * output stays computed (lower_generator.c stores the literals). */
static moss_status fold_static(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *y = n->outputs[0];
  moss_status st;
  if (!y || y->data || y->output_index >= 0) return MOSS_OK;
  y->data = moss_graph_alloc(g, moss_value_nbytes(y) ? moss_value_nbytes(y) : 1);
  if (!y->data) return moss_fail(ctx, MOSS_E_NOMEM, n, "folding");
  st = moss_eval_generator(ctx, g, n);
  if (st != MOSS_OK) {
    y->data = NULL;
    return MOSS_OK;
  }
  y->producer = NULL;
  n->dead = 1;
  return MOSS_OK;
}

moss_status moss_infer_generator(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  int64_t dims[MOSS_MAX_RANK];
  int k;
  switch (n->op) {
  case MOSS_OP_Constant: return infer_constant(ctx, n);
  case MOSS_OP_Shape: {
    int s, e;
    MOSS_TRY(moss_need_input(ctx, n, 0));
    moss_shape_range(n, n->inputs[0]->rank, &s, &e);
    dims[0] = e - s;
    moss_set_output(n, 0, MOSS_DT_I64, 1, dims);
    return fold_static(ctx, g, n);
  }
  case MOSS_OP_Size:
    MOSS_TRY(moss_need_input(ctx, n, 0));
    moss_set_output(n, 0, MOSS_DT_I64, 0, dims);
    return fold_static(ctx, g, n);
  case MOSS_OP_ConstantOfShape: {
    moss_value *s = n->inputs[0];
    const moss_attr *a = moss_node_find_attr(n, "value");
    moss_dtype dt = MOSS_DT_F32;
    int rank;
    MOSS_TRY(moss_need_input(ctx, n, 0));
    MOSS_TRY(moss_need_constant(ctx, n, 0, "shape"));
    if (s->dtype != MOSS_DT_I64 || s->rank > 1)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the shape input must be a 1-D int64 tensor");
    rank = (int)moss_value_numel(s);
    if (rank > MOSS_MAX_RANK) return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "rank %d", rank);
    for (k = 0; k < rank; k++) {
      dims[k] = moss_value_get_i64(s, k);
      if (dims[k] < 0)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "negative dimension %lld in shape",
                         (long long)dims[k]);
    }
    if (a) {
      if (a->type != MOSS_ATTR_TENSOR || !a->t || moss_value_numel(a->t) != 1)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "'value' must be a one-element tensor");
      dt = a->t->dtype;
      MOSS_TRY(check_ctype(ctx, n, dt));
    }
    moss_set_output(n, 0, dt, rank, dims);
    if (moss_value_numel(n->outputs[0]) < 0)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "output too large");
    return MOSS_OK;
  }
  case MOSS_OP_Range: {
    moss_value *st = n->inputs[0];
    int64_t c;
    moss_status bad = MOSS_OK;
    int runtime = 0;
    for (k = 0; k < 3; k++) {
      MOSS_TRY(moss_need_input(ctx, n, k));
      runtime |= !n->inputs[k]->data;
    }
    if (runtime && !g->max_length) {
      char buf[1024] = "";
      const char *hint;
      size_t len = 0;
      for (k = 0; k < 3; k++) /* every graph input behind them, so one retry can freeze them all */
        if (!n->inputs[k]->data && (hint = moss_freeze_hint(n->inputs[k], buf + len, sizeof buf - len)))
          len = strlen(buf);
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "start, limit or delta is known only at run time "
                       "and decides the output's length: fix %s at compile time%s%s, or bound the "
                       "output with --max-length N (docs/dynamic-shapes.md)",
                       len ? "them" : "it", len ? " with" : "", buf);
    }
    if (runtime) { /* bounded by --max-length (ops/bounded.c) */
      for (k = 0; k < 3; k++) {
        if (moss_value_numel(n->inputs[k]) != 1)
          return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input %d must be a scalar", k);
        if (n->inputs[k]->dtype != st->dtype)
          return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "start, limit and delta differ in type");
      }
      MOSS_TRY(check_ctype(ctx, n, st->dtype));
      if (st->dtype == MOSS_DT_BOOL || st->dtype == MOSS_DT_F16 || st->dtype == MOSS_DT_BF16)
        return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "Range of %s", moss_dtype_name(st->dtype));
      dims[0] = g->max_length;
      moss_set_output(n, 0, st->dtype, 1, dims);
      return moss_bound_output(ctx, g, n, 0, 0);
    }
    /* Report every run-time input at once, so one retry can freeze them all. */
    for (k = 0; k < 3; k++) {
      moss_status s1 = need_scalar(ctx, n, k, k == 0 ? "start" : k == 1 ? "limit" : "delta");
      if (s1 != MOSS_OK && bad == MOSS_OK) bad = s1;
    }
    if (bad != MOSS_OK) return bad;
    for (k = 1; k < 3; k++)
      if (n->inputs[k]->dtype != st->dtype)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "start, limit and delta differ in type");
    MOSS_TRY(check_ctype(ctx, n, st->dtype));
    if (st->dtype == MOSS_DT_BOOL)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "Range of bool");
    c = range_count(st, n->inputs[1], n->inputs[2]);
    if (c < 0)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "delta is zero, or the range is too long");
    dims[0] = c;
    moss_set_output(n, 0, st->dtype, 1, dims);
    return MOSS_OK;
  }
  case MOSS_OP_EyeLike: {
    moss_value *x = n->inputs[0];
    moss_dtype dt;
    MOSS_TRY(moss_need_input(ctx, n, 0));
    if (x->rank != 2) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "EyeLike needs a 2-D input");
    dt = (moss_dtype)moss_attr_int(n, "dtype", x->dtype);
    MOSS_TRY(check_ctype(ctx, n, dt));
    moss_set_output(n, 0, dt, 2, x->dims);
    return MOSS_OK;
  }
  case MOSS_OP_HannWindow: case MOSS_OP_HammingWindow: case MOSS_OP_BlackmanWindow: {
    moss_dtype dt = (moss_dtype)moss_attr_int(n, "output_datatype", MOSS_DT_F32);
    int64_t size;
    MOSS_TRY(need_scalar(ctx, n, 0, "size"));
    if (moss_dtype_is_float(n->inputs[0]->dtype) || n->inputs[0]->dtype == MOSS_DT_BOOL)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "size must be an integer");
    MOSS_TRY(check_ctype(ctx, n, dt));
    size = moss_value_get_i64(n->inputs[0], 0);
    if (size < 0 || size > ((int64_t)1 << 32))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "window size %lld", (long long)size);
    dims[0] = size;
    moss_set_output(n, 0, dt, 1, dims);
    return MOSS_OK;
  }
  default:
    return moss_fail(ctx, MOSS_E_INTERNAL, n, "not a generator operator");
  }
}

moss_status moss_eval_generator(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *y = n->outputs[0];
  int64_t i, ne = moss_value_numel(y);
  const moss_attr *a;
  (void)ctx;
  (void)g;
  if (!y || !y->data) return MOSS_E_UNSUPPORTED;
  switch (n->op) {
  case MOSS_OP_Constant:
    if ((a = moss_node_find_attr(n, "value")) != NULL) {
      if (!a->t || !a->t->data || a->t->dtype != y->dtype) return MOSS_E_UNSUPPORTED;
      memcpy(y->data, a->t->data, moss_value_nbytes(y));
    } else if ((a = moss_node_find_attr(n, "value_float")) != NULL) {
      ((float *)y->data)[0] = a->f;
    } else if ((a = moss_node_find_attr(n, "value_int")) != NULL) {
      ((int64_t *)y->data)[0] = a->i;
    } else if ((a = moss_node_find_attr(n, "value_floats")) != NULL) {
      if (ne) memcpy(y->data, a->floats, sizeof(float) * (size_t)ne);
    } else if ((a = moss_node_find_attr(n, "value_ints")) != NULL) {
      if (ne) memcpy(y->data, a->ints, sizeof(int64_t) * (size_t)ne);
    } else {
      return MOSS_E_UNSUPPORTED;
    }
    return MOSS_OK;
  case MOSS_OP_Shape: {
    int s, e, k;
    moss_shape_range(n, n->inputs[0]->rank, &s, &e);
    for (k = s; k < e; k++) ((int64_t *)y->data)[k - s] = n->inputs[0]->dims[k];
    return MOSS_OK;
  }
  case MOSS_OP_Size:
    ((int64_t *)y->data)[0] = moss_value_numel(n->inputs[0]);
    return MOSS_OK;
  case MOSS_OP_ConstantOfShape: {
    size_t es = moss_dtype_size(y->dtype);
    a = moss_node_find_attr(n, "value");
    if (!a) return MOSS_OK; /* float 0: already zeroed */
    for (i = 0; i < ne; i++) memcpy((char *)y->data + (size_t)i * es, a->t->data, es);
    return MOSS_OK;
  }
  case MOSS_OP_Range: {
    const moss_value *st = n->inputs[0], *de = n->inputs[2];
    if (moss_dtype_is_float(y->dtype)) {
      double s = moss_value_get_f64(st, 0), d = moss_value_get_f64(de, 0);
      for (i = 0; i < ne; i++) moss_store_f64(y->dtype, y->data, i, s + (double)i * d);
    } else {
      int64_t s = moss_value_get_i64(st, 0), d = moss_value_get_i64(de, 0);
      for (i = 0; i < ne; i++) moss_store_i64(y->dtype, y->data, i, s + i * d);
    }
    return MOSS_OK;
  }
  case MOSS_OP_EyeLike: {
    int64_t r = y->dims[0], c = y->dims[1], k = moss_attr_int(n, "k", 0);
    for (i = 0; i < r; i++)
      if (i + k >= 0 && i + k < c) moss_store_i64(y->dtype, y->data, i * c + i + k, 1);
    return MOSS_OK;
  }
  case MOSS_OP_HannWindow: case MOSS_OP_HammingWindow: case MOSS_OP_BlackmanWindow: {
    double a0, a1, a2, den = (double)(moss_attr_int(n, "periodic", 1) ? ne : ne - 1);
    window_coeffs(n->op, &a0, &a1, &a2);
    for (i = 0; i < ne; i++) {
      double v = den > 0 ? a0 - a1 * cos(2 * PI_ * (double)i / den) + a2 * cos(4 * PI_ * (double)i / den)
                         : a0 - a1 + a2;
      moss_store_f64(y->dtype, y->data, i, v);
    }
    return MOSS_OK;
  }
  default:
    return MOSS_E_UNSUPPORTED;
  }
}
