/* lower_generator.c - Constant, Shape, Size, ConstantOfShape, Range,
 * EyeLike and the window operators. Constant folding usually removes these
 * nodes; they reach the lowering when their result is a graph output
 * (which folding leaves computed) or too big to fold. Everything they
 * produce is known at compile time (Shape and Size read only the static
 * shape), so the kernel stores constants (a few stores, or a copy loop from
 * a constant table) or runs one parallel loop of compile-time values. */
#include <string.h>

#include "lower.h"

/* Above this many elements, known values go through a table and a loop
 * instead of one store each. */
#define FEW 8

static moss_kx *elem(moss_kb *b, moss_dtype dt, const moss_value *v, int64_t i) {
  if (moss_dtype_is_float(dt)) return moss_k_flt(b, dt, moss_value_get_f64(v, i));
  return moss_k_int(b, dt, moss_value_get_i64(v, i));
}

/* y0[0..ne) = the |ne| values of type |dt| at |data|, converted to y0's type. */
static void put(moss_kb *b, const moss_node *n, moss_dtype dt, int64_t ne, const void *data) {
  int y = moss_k_output(b, 0);
  moss_dtype ydt = n->outputs[0]->dtype;
  moss_value v;
  int64_t i;
  memset(&v, 0, sizeof v);
  v.dtype = dt;
  v.data = (void *)data;
  if (ne <= FEW) {
    for (i = 0; i < ne; i++)
      moss_k_store(b, y, moss_k_idx(b, i), moss_k_cast(b, ydt, elem(b, dt, &v, i)));
  } else {
    int t = moss_k_table(b, "value", dt, ne, data);
    moss_kx *j = moss_k_range(b, "i", ne, MOSS_KL_PARALLEL);
    moss_k_store(b, y, j, moss_k_cast(b, ydt, moss_k_load(b, t, j)));
    moss_k_end(b);
  }
}

/* y0[0..numel) = |v|. */
static void fill(moss_kb *b, const moss_node *n, moss_kx *v) {
  int y = moss_k_output(b, 0);
  int64_t ne = moss_value_numel(n->outputs[0]);
  moss_kx *i;
  if (ne <= 0) return;
  if (ne == 1) {
    moss_k_store(b, y, moss_k_idx(b, 0), v);
    return;
  }
  i = moss_k_range(b, "i", ne, MOSS_KL_PARALLEL);
  moss_k_store(b, y, i, v);
  moss_k_end(b);
}

static moss_status constant(moss_kb *b, const moss_node *n) {
  const moss_attr *a;
  if ((a = moss_node_find_attr(n, "value")) != NULL && a->t && a->t->data)
    put(b, n, a->t->dtype, moss_value_numel(a->t), a->t->data);
  else if ((a = moss_node_find_attr(n, "value_float")) != NULL)
    put(b, n, MOSS_DT_F32, 1, &a->f);
  else if ((a = moss_node_find_attr(n, "value_int")) != NULL)
    put(b, n, MOSS_DT_I64, 1, &a->i);
  else if ((a = moss_node_find_attr(n, "value_floats")) != NULL)
    put(b, n, MOSS_DT_F32, a->n, a->floats);
  else if ((a = moss_node_find_attr(n, "value_ints")) != NULL)
    put(b, n, MOSS_DT_I64, a->n, a->ints);
  else
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "this Constant has no value a kernel can hold");
  return b->st;
}

/* Input |i| of a Range (a scalar) in |dt|: its constant, or a load. */
static moss_kx *scalar_in(moss_kb *b, const moss_node *n, int i, moss_dtype dt) {
  const moss_value *v = n->inputs[i];
  if (v->data)
    return moss_dtype_is_float(dt) ? moss_k_flt(b, dt, moss_value_get_f64(v, 0))
                                   : moss_k_idx(b, moss_value_get_i64(v, 0));
  return moss_k_cast(b, dt, moss_k_load(b, moss_k_input(b, i), moss_k_idx(b, 0)));
}

/* A Range the run decides (ops/bounded.c): its length max(ceil((limit -
 * start) / delta), 0), clamped to the bound (0 for a zero delta), in
 * double; the elements past it are zeros. */
static moss_status range_run(moss_kb *b, const moss_node *n) {
  moss_dtype dt = n->outputs[0]->dtype, wt = moss_dtype_is_float(dt) ? MOSS_DT_F64 : MOSS_DT_I64;
  int64_t B = n->outputs[0]->dims[0];
  int y = moss_k_output(b, 0);
  moss_kx *s, *d, *c, *len, *i, *v, *zero = moss_k_flt(b, MOSS_DT_F64, 0);
  s = moss_k_let(b, "start", scalar_in(b, n, 0, wt));
  d = moss_k_let(b, "delta", scalar_in(b, n, 2, wt));
  c = moss_k_call(b, MOSS_KFN_CEIL,
                  moss_k_bin(b, MOSS_KX_DIV, moss_k_bin(b, MOSS_KX_SUB, moss_k_cast(b, MOSS_DT_F64, scalar_in(b, n, 1, wt)),
                                                        moss_k_cast(b, MOSS_DT_F64, s)),
                             moss_k_cast(b, MOSS_DT_F64, d)),
                  NULL, NULL);
  /* MAX(NaN, 0) is 0 (kernel.h): a NaN length is none */
  c = moss_k_bin(b, MOSS_KX_MIN, moss_k_bin(b, MOSS_KX_MAX, c, zero), moss_k_flt(b, MOSS_DT_F64, (double)B));
  c = moss_k_select(b, moss_k_bin(b, MOSS_KX_EQ, moss_k_cast(b, MOSS_DT_F64, d), zero), zero, c);
  len = moss_k_let(b, "len", moss_k_cast(b, MOSS_DT_I64, c));
  moss_k_store(b, moss_k_output(b, 1), moss_k_idx(b, 0), len);
  if (B <= 0) return b->st;
  i = moss_k_range(b, "i", B, MOSS_KL_SERIAL);
  v = moss_k_bin(b, MOSS_KX_ADD, s, moss_k_bin(b, MOSS_KX_MUL, moss_k_cast(b, wt, i), d));
  moss_k_store(b, y, i, moss_k_select(b, moss_k_bin(b, MOSS_KX_LT, i, len), moss_k_cast(b, dt, v),
                                      moss_k_zero(b, dt)));
  moss_k_end(b);
  return b->st;
}

/* y0[i] = start + i * delta, in double for floats and int64 for integers,
 * converted to the output type. */
static moss_status range(moss_kb *b, const moss_node *n) {
  const moss_value *st = n->inputs[0], *de = n->inputs[2];
  moss_dtype dt = n->outputs[0]->dtype;
  int64_t ne = moss_value_numel(n->outputs[0]);
  int y = moss_k_output(b, 0);
  moss_kx *i, *v;
  if (n->outputs[0]->bounded) return range_run(b, n);
  if (ne <= 0) return b->st;
  if (!st->data || !de->data)
    return moss_kb_fail(b, MOSS_E_INTERNAL, "Range inputs are not constant");
  i = moss_k_range(b, "i", ne, MOSS_KL_PARALLEL);
  if (moss_dtype_is_float(dt))
    v = moss_k_bin(b, MOSS_KX_ADD, moss_k_flt(b, MOSS_DT_F64, moss_value_get_f64(st, 0)),
                   moss_k_bin(b, MOSS_KX_MUL, moss_k_cast(b, MOSS_DT_F64, i),
                              moss_k_flt(b, MOSS_DT_F64, moss_value_get_f64(de, 0))));
  else
    v = moss_k_bin(b, MOSS_KX_ADD, moss_k_idx(b, moss_value_get_i64(st, 0)),
                   moss_k_bin(b, MOSS_KX_MUL, i, moss_k_idx(b, moss_value_get_i64(de, 0))));
  moss_k_store(b, y, i, moss_k_cast(b, dt, v));
  moss_k_end(b);
  return b->st;
}

/* y0[r][c] = (c == r + k), over the whole matrix. */
static moss_status eyelike(moss_kb *b, const moss_node *n) {
  const moss_value *yv = n->outputs[0];
  int64_t rows = yv->dims[0], cols = yv->dims[1], k = moss_attr_int(n, "k", 0);
  int y = moss_k_output(b, 0);
  moss_kx *r, *c;
  if (moss_value_numel(yv) <= 0) return b->st;
  r = moss_k_range(b, "r", rows, MOSS_KL_PARALLEL);
  c = moss_k_range(b, "c", cols, MOSS_KL_PARALLEL);
  moss_k_store(b, y, moss_k_add(b, moss_k_mulc(b, r, cols), c),
               moss_k_cast(b, yv->dtype, moss_k_bin(b, MOSS_KX_EQ, c, moss_k_addc(b, r, k))));
  moss_k_end(b);
  moss_k_end(b);
  return b->st;
}

/* The cosine-sum windows: a0 - a1 cos(t) + a2 cos(2t), t = 2 pi i / den,
 * in double. */
static moss_status window(moss_kb *b, const moss_node *n) {
  const moss_value *yv = n->outputs[0];
  moss_dtype dt = yv->dtype, f64 = MOSS_DT_F64;
  int64_t ne = moss_value_numel(yv), den = moss_attr_int(n, "periodic", 1) ? ne : ne - 1;
  double a0, a1, a2 = 0;
  int y = moss_k_output(b, 0);
  moss_kx *i, *t, *v;
  if (ne <= 0) return b->st;
  if (n->op == MOSS_OP_HannWindow)
    a0 = 0.5, a1 = 0.5;
  else if (n->op == MOSS_OP_HammingWindow)
    a0 = 25.0 / 46.0, a1 = 21.0 / 46.0;
  else
    a0 = 0.42, a1 = 0.5, a2 = 0.08;
  if (den <= 0) { /* one element, symmetric: the value at i = 0 */
    fill(b, n,
         moss_k_cast(b, dt, moss_k_flt(b, f64, n->op == MOSS_OP_HammingWindow ? 4.0 / 46.0 : 0.0)));
    return b->st;
  }
  i = moss_k_range(b, "i", ne, MOSS_KL_PARALLEL);
  t = moss_k_let(
      b, "t",
      moss_k_bin(b, MOSS_KX_DIV,
                 moss_k_bin(b, MOSS_KX_MUL, moss_k_flt(b, f64, 2.0 * 3.14159265358979323846),
                            moss_k_cast(b, f64, i)),
                 moss_k_flt(b, f64, (double)den)));
  v = moss_k_bin(b, MOSS_KX_SUB, moss_k_flt(b, f64, a0),
                 moss_k_bin(b, MOSS_KX_MUL, moss_k_flt(b, f64, a1),
                            moss_k_call(b, MOSS_KFN_COS, t, NULL, NULL)));
  if (a2 != 0)
    v = moss_k_bin(b, MOSS_KX_ADD, v,
                   moss_k_bin(b, MOSS_KX_MUL, moss_k_flt(b, f64, a2),
                              moss_k_call(b, MOSS_KFN_COS,
                                          moss_k_bin(b, MOSS_KX_MUL, moss_k_flt(b, f64, 2.0), t),
                                          NULL, NULL)));
  moss_k_store(b, y, i, moss_k_cast(b, dt, v));
  moss_k_end(b);
  return b->st;
}

moss_status moss_lower_generator(moss_kb *b, const moss_node *n) {
  const moss_value *y = n->outputs[0];
  const moss_attr *a;
  if (!moss_kernel_dtype_ok(y->dtype))
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "output type %s", moss_dtype_name(y->dtype));
  switch (n->op) {
  case MOSS_OP_Constant: return constant(b, n);
  case MOSS_OP_Shape: {
    int s, e;
    moss_shape_range(n, n->inputs[0]->rank, &s, &e);
    if (e > s) put(b, n, MOSS_DT_I64, e - s, n->inputs[0]->dims + s);
    return b->st;
  }
  case MOSS_OP_Size: {
    int64_t ne = moss_value_numel(n->inputs[0]);
    put(b, n, MOSS_DT_I64, 1, &ne);
    return b->st;
  }
  case MOSS_OP_ConstantOfShape:
    a = moss_node_find_attr(n, "value");
    if (a && a->t && a->t->data && moss_value_numel(a->t) > 0)
      fill(b, n, moss_k_cast(b, y->dtype, elem(b, a->t->dtype, a->t, 0)));
    else
      fill(b, n,
           moss_dtype_is_float(y->dtype) ? moss_k_flt(b, y->dtype, 0) : moss_k_int(b, y->dtype, 0));
    return b->st;
  case MOSS_OP_Range: return range(b, n);
  case MOSS_OP_EyeLike: return eyelike(b, n);
  case MOSS_OP_HannWindow:
  case MOSS_OP_HammingWindow:
  case MOSS_OP_BlackmanWindow: return window(b, n);
  default: return moss_kb_fail(b, MOSS_E_INTERNAL, "not a generator operator");
  }
}
