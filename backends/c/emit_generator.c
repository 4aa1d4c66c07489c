/* emit_generator.c - C for Constant, Shape, Size, ConstantOfShape, Range,
 * EyeLike and the window operators. Constant folding usually removes these
 * nodes; they reach the backend when their result is a graph output (which
 * folding leaves computed) or too big to fold. Everything they produce is
 * known at compile time (Shape and Size read only the static shape), so
 * the code writes literals or runs a short loop over compile-time values. */
#include <stdio.h>
#include <string.h>

#include "cgen.h"

#define PI_LIT "3.14159265358979323846"

/* Fills y0 with |ne| copies of the literal |lit| (memset when all zero). */
static void fill(moss_cgen *cg, const moss_value *y, int zero, const char *lit) {
  int64_t ne = moss_value_numel(y);
  if (ne <= 0) return;
  if (zero) {
    moss_c_line(cg, "memset(y0, 0, %zu);", moss_value_nbytes(y));
    return;
  }
  if (ne == 1) {
    moss_c_line(cg, "y0[0] = %s;", lit);
    return;
  }
  moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)ne);
  moss_c_line(cg, "y0[i] = %s;", lit);
  moss_c_close(cg);
}

/* The Constant's tensor as a static const array at file scope, copied out. */
static void emit_tensor(moss_cgen *cg, const moss_value *t, const moss_value *y) {
  char name[96], lit[64];
  int64_t i, ne = moss_value_numel(t);
  if (ne <= 0) return;
  snprintf(name, sizeof name, "%s_k%d", cg->prefix, cg->uid++);
  moss_buf_printf(cg->decls, "static const %s %s[%lld] = {", moss_dtype_ctype(t->dtype), name,
                  (long long)ne);
  for (i = 0; i < ne; i++) {
    if (i % 8 == 0) moss_buf_printf(cg->decls, "\n ");
    moss_buf_printf(cg->decls, " %s%s", moss_c_lit_elem(t, i, lit, sizeof lit), i + 1 < ne ? "," : "");
  }
  moss_buf_printf(cg->decls, "\n};\n\n");
  moss_c_line(cg, "memcpy(y0, %s, %zu);", name, moss_value_nbytes(y));
}

moss_status moss_c_emit_generator(moss_cgen *cg, const moss_node *n) {
  const moss_value *y = n->outputs[0];
  const char *ct = moss_dtype_ctype(y->dtype);
  int64_t ne = moss_value_numel(y);
  char lit[64], lit2[64];
  const moss_attr *a;
  if (!ct) return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "output type %s", moss_dtype_name(y->dtype));
  switch (n->op) {
  case MOSS_OP_Constant:
    if ((a = moss_node_find_attr(n, "value")) != NULL && a->t && a->t->data) {
      emit_tensor(cg, a->t, y);
    } else if ((a = moss_node_find_attr(n, "value_float")) != NULL) {
      moss_c_line(cg, "y0[0] = %s;", moss_c_lit_f64(MOSS_DT_F32, a->f, lit, sizeof lit));
    } else if ((a = moss_node_find_attr(n, "value_int")) != NULL) {
      moss_c_line(cg, "y0[0] = %s;", moss_c_lit_i64(MOSS_DT_I64, a->i, lit, sizeof lit));
    } else if ((a = moss_node_find_attr(n, "value_floats")) != NULL) {
      int k;
      for (k = 0; k < a->n; k++)
        moss_c_line(cg, "y0[%d] = %s;", k, moss_c_lit_f64(MOSS_DT_F32, a->floats[k], lit, sizeof lit));
    } else if ((a = moss_node_find_attr(n, "value_ints")) != NULL) {
      int k;
      for (k = 0; k < a->n; k++)
        moss_c_line(cg, "y0[%d] = %s;", k, moss_c_lit_i64(MOSS_DT_I64, a->ints[k], lit, sizeof lit));
    } else {
      return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "this Constant has no value C can hold");
    }
    return MOSS_OK;
  case MOSS_OP_Shape: {
    int s, e, k;
    moss_shape_range(n, n->inputs[0]->rank, &s, &e);
    for (k = s; k < e; k++)
      moss_c_line(cg, "y0[%d] = %s;", k - s,
                  moss_c_lit_i64(MOSS_DT_I64, n->inputs[0]->dims[k], lit, sizeof lit));
    return MOSS_OK;
  }
  case MOSS_OP_Size:
    moss_c_line(cg, "y0[0] = %s;",
                moss_c_lit_i64(MOSS_DT_I64, moss_value_numel(n->inputs[0]), lit, sizeof lit));
    return MOSS_OK;
  case MOSS_OP_ConstantOfShape: {
    int zero = 1;
    size_t k, es = moss_dtype_size(y->dtype);
    a = moss_node_find_attr(n, "value");
    if (a && a->t && a->t->data) {
      for (k = 0; k < es; k++)
        if (((const unsigned char *)a->t->data)[k]) zero = 0;
      moss_c_lit_elem(a->t, 0, lit, sizeof lit);
    } else {
      snprintf(lit, sizeof lit, "0");
    }
    fill(cg, y, zero, lit);
    return MOSS_OK;
  }
  case MOSS_OP_Range: {
    const moss_value *st = n->inputs[0], *de = n->inputs[2];
    if (ne <= 0) return MOSS_OK;
    if (!st->data || !de->data)
      return moss_fail(cg->ctx, MOSS_E_INTERNAL, n, "Range inputs are not constant");
    moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)ne);
    if (moss_dtype_is_float(y->dtype))
      moss_c_line(cg, "y0[i] = (%s)(%s + (double)i * %s);", ct,
                  moss_c_lit_f64(MOSS_DT_F64, moss_value_get_f64(st, 0), lit, sizeof lit),
                  moss_c_lit_f64(MOSS_DT_F64, moss_value_get_f64(de, 0), lit2, sizeof lit2));
    else
      moss_c_line(cg, "y0[i] = (%s)(%s + (int64_t)i * %s);", ct,
                  moss_c_lit_i64(MOSS_DT_I64, moss_value_get_i64(st, 0), lit, sizeof lit),
                  moss_c_lit_i64(MOSS_DT_I64, moss_value_get_i64(de, 0), lit2, sizeof lit2));
    moss_c_close(cg);
    return MOSS_OK;
  }
  case MOSS_OP_EyeLike: {
    int64_t r = y->dims[0], c = y->dims[1], k = moss_attr_int(n, "k", 0);
    int64_t lo = k < 0 ? -k : 0, hi = r < c - k ? r : c - k; /* rows i with 0 <= i + k < c */
    if (ne <= 0) return MOSS_OK;
    moss_c_line(cg, "memset(y0, 0, %zu);", moss_value_nbytes(y));
    if (hi > lo) {
      moss_c_open(cg, "for (long i = %lld; i < %lld; i++)", (long long)lo, (long long)hi);
      moss_c_line(cg, "y0[i * %lld + i + %lld] = %s;", (long long)c, (long long)k,
                  moss_c_lit_i64(y->dtype, 1, lit, sizeof lit));
      moss_c_close(cg);
    }
    return MOSS_OK;
  }
  case MOSS_OP_HannWindow: case MOSS_OP_HammingWindow: case MOSS_OP_BlackmanWindow: {
    int64_t den = moss_attr_int(n, "periodic", 1) ? ne : ne - 1;
    const char *a0, *a1, *a2 = NULL;
    if (ne <= 0) return MOSS_OK;
    if (n->op == MOSS_OP_HannWindow) a0 = "0.5", a1 = "0.5";
    else if (n->op == MOSS_OP_HammingWindow) a0 = "(25.0 / 46.0)", a1 = "(21.0 / 46.0)";
    else a0 = "0.42", a1 = "0.5", a2 = "0.08";
    if (den <= 0) {
      fill(cg, y, n->op == MOSS_OP_HannWindow, n->op == MOSS_OP_HammingWindow ? "(4.0 / 46.0)" : "0");
      return MOSS_OK;
    }
    moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)ne);
    moss_c_line(cg, "const double t = 2.0 * " PI_LIT " * (double)i / %lld.0;", (long long)den);
    if (a2)
      moss_c_line(cg, "y0[i] = (%s)(%s - %s * cos(t) + %s * cos(2.0 * t));", ct, a0, a1, a2);
    else
      moss_c_line(cg, "y0[i] = (%s)(%s - %s * cos(t));", ct, a0, a1);
    moss_c_close(cg);
    return MOSS_OK;
  }
  default:
    return moss_fail(cg->ctx, MOSS_E_INTERNAL, n, "not a generator operator");
  }
}
