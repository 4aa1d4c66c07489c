/* emit_gather.c - C for Gather, GatherElements, GatherND, ScatterElements/
 * Scatter, ScatterND and OneHot. Indices are read at run time, so every
 * one is normalized (negative counts from the end, as ONNX says) and
 * bounds-checked before use: a gather of a bad index yields zeros, a
 * scatter through one writes nothing, and no access leaves its array. */
#include <stdio.h>
#include <string.h>

#include "cgen.h"

static void strides(int rank, const int64_t *dims, int64_t *out) {
  int64_t s = 1;
  int k;
  for (k = rank - 1; k >= 0; k--) {
    out[k] = s;
    s *= dims[k];
  }
}

static int64_t prod(const int64_t *dims, int from, int to) {
  int64_t p = 1;
  int k;
  for (k = from; k < to; k++) p *= dims[k];
  return p;
}

/* "i0 * s0 + i1 * s1 ..." over the loop variables, leaving out |skip|. */
static const char *lin(char *buf, size_t cap, int rank, const int64_t *s, int skip) {
  size_t len = 0;
  int k;
  buf[0] = 0;
  for (k = 0; k < rank && len < cap; k++) {
    if (k == skip || !s[k]) continue;
    if (s[k] == 1)
      len += (size_t)snprintf(buf + len, cap - len, "%si%d", len ? " + " : "", k);
    else
      len += (size_t)snprintf(buf + len, cap - len, "%si%d * %lld", len ? " + " : "", k,
                              (long long)s[k]);
  }
  if (!buf[0]) snprintf(buf, cap, "0");
  return buf;
}

/* Declares `long long <var>` holding index element |src| of |iv| made
 * non-negative for an axis of |D|; it is in range iff 0 <= var < D. */
static void read_index(moss_cgen *cg, const moss_value *iv, const char *src, const char *var,
                       int64_t D) {
  if (moss_dtype_is_float(iv->dtype))
    moss_c_line(cg, "long long %s = %s > %lld.0 && %s < %lld.0 ? (long long)%s : %lld;", var, src,
                (long long)(-D - 1), src, (long long)D, src, (long long)D);
  else if (!moss_dtype_is_signed(iv->dtype))
    moss_c_line(cg, "long long %s = (unsigned long long)%s < %lluULL ? (long long)%s : %lld;", var,
                src, (unsigned long long)D, src, (long long)D);
  else
    moss_c_line(cg, "long long %s = (long long)%s;", var, src);
  moss_c_line(cg, "if (%s < 0) %s += %lld;", var, var, (long long)D);
}

static void open_loops(moss_cgen *cg, int rank, const int64_t *dims) {
  int k;
  for (k = 0; k < rank; k++)
    moss_c_open(cg, "for (long i%d = 0; i%d < %lld; i%d++)", k, k, (long long)dims[k], k);
}

static void close_loops(moss_cgen *cg, int rank) {
  int k;
  for (k = 0; k < rank; k++) moss_c_close(cg);
}

/* Statement combining |u| into the element |t| under Scatter's reduction. */
static void apply(moss_cgen *cg, const moss_node *n, moss_dtype dt, const char *t, const char *u) {
  const char *red = moss_attr_string(n, "reduction", "none"), *ct = moss_dtype_ctype(dt);
  int isf = moss_dtype_is_float(dt), isb = dt == MOSS_DT_BOOL;
  if (!strcmp(red, "add")) {
    if (isf)
      moss_c_line(cg, "%s += %s;", t, u);
    else if (isb)
      moss_c_line(cg, "%s = (uint8_t)(%s | %s);", t, t, u);
    else
      moss_c_line(cg, "%s = (%s)((uint64_t)%s + (uint64_t)%s);", t, ct, t, u);
  } else if (!strcmp(red, "mul")) {
    if (isf)
      moss_c_line(cg, "%s *= %s;", t, u);
    else if (isb)
      moss_c_line(cg, "%s = (uint8_t)(%s & %s);", t, t, u);
    else
      moss_c_line(cg, "%s = (%s)((uint64_t)%s * (uint64_t)%s);", t, ct, t, u);
  } else if (!strcmp(red, "max")) {
    moss_c_line(cg, "if (%s > %s) %s = %s;", u, t, t, u);
  } else if (!strcmp(red, "min")) {
    moss_c_line(cg, "if (%s < %s) %s = %s;", u, t, t, u);
  } else {
    moss_c_line(cg, "%s = %s;", t, u);
  }
}

static void emit_gather(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0], *ix = n->inputs[1];
  int64_t axis = moss_attr_int(n, "axis", 0);
  int64_t outer, inner, D, ni = prod(ix->dims, 0, ix->rank);
  size_t esz = moss_dtype_size(x->dtype);
  if (axis < 0) axis += x->rank;
  outer = prod(x->dims, 0, (int)axis);
  inner = prod(x->dims, (int)axis + 1, x->rank);
  D = x->dims[axis];
  if (outer * ni * inner == 0) return;
  moss_c_open(cg, "for (long o = 0; o < %lld; o++)", (long long)outer);
  moss_c_open(cg, "for (long j = 0; j < %lld; j++)", (long long)ni);
  read_index(cg, ix, "x1[j]", "v", D);
  if (inner == 1) {
    moss_c_line(cg, "y0[o * %lld + j] = v >= 0 && v < %lld ? x0[o * %lld + v] : 0;", (long long)ni,
                (long long)D, (long long)D);
  } else {
    moss_c_line(cg,
                "if (v >= 0 && v < %lld) memcpy(y0 + (o * %lld + j) * %lld, x0 + (o * %lld + v) * "
                "%lld, %lld);",
                (long long)D, (long long)ni, (long long)inner, (long long)D, (long long)inner,
                (long long)(inner * (int64_t)esz));
    moss_c_line(cg, "else memset(y0 + (o * %lld + j) * %lld, 0, %lld);", (long long)ni,
                (long long)inner, (long long)(inner * (int64_t)esz));
  }
  moss_c_close(cg);
  moss_c_close(cg);
}

/* GatherElements and ScatterElements/Scatter: one loop nest over the indices. */
static void emit_elements(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0], *ix = n->inputs[1];
  int64_t axis = moss_attr_int(n, "axis", 0), xs[MOSS_MAX_RANK], is[MOSS_MAX_RANK], D, nx;
  char flat[512], base[512], t[1200], u[600];
  int gather = n->op == MOSS_OP_GatherElements;
  if (axis < 0) axis += x->rank;
  D = x->dims[axis];
  nx = prod(x->dims, 0, x->rank);
  strides(x->rank, x->dims, xs);
  strides(ix->rank, ix->dims, is);
  if (!gather && nx > 0)
    moss_c_line(cg, "memcpy(y0, x0, %lld);", (long long)(nx * (int64_t)moss_dtype_size(x->dtype)));
  if (prod(ix->dims, 0, ix->rank) == 0) return;
  lin(flat, sizeof flat, ix->rank, is, -1);
  lin(base, sizeof base, x->rank, xs, (int)axis);
  open_loops(cg, ix->rank, ix->dims);
  snprintf(u, sizeof u, "x1[%s]", flat);
  read_index(cg, ix, u, "v", D);
  if (gather) {
    moss_c_line(cg, "y0[%s] = v >= 0 && v < %lld ? x0[%s + v * %lld] : 0;", flat, (long long)D,
                base, (long long)xs[axis]);
  } else {
    moss_c_open(cg, "if (v >= 0 && v < %lld)", (long long)D);
    snprintf(t, sizeof t, "y0[%s + v * %lld]", base, (long long)xs[axis]);
    snprintf(u, sizeof u, "x2[%s]", flat);
    apply(cg, n, x->dtype, t, u);
    moss_c_close(cg);
  }
  close_loops(cg, ix->rank);
}

/* Declares `long long off` and `int ok` for index tuple |t| of GatherND/
 * ScatterND over data dims [b, b + m). */
static void tuple_offset(moss_cgen *cg, const moss_value *x, const moss_value *ix, int b, int m,
                         const char *base) {
  int64_t xs[MOSS_MAX_RANK];
  int c;
  char src[64];
  strides(x->rank, x->dims, xs);
  moss_c_line(cg, "long long off = %s;", base);
  moss_c_line(cg, "int ok = 1;");
  for (c = 0; c < m; c++) {
    char var[16];
    snprintf(src, sizeof src, "x1[t * %d + %d]", m, c);
    snprintf(var, sizeof var, "v%d", c);
    read_index(cg, ix, src, var, x->dims[b + c]);
    moss_c_line(cg, "if (%s >= 0 && %s < %lld) off += %s * %lld;", var, var,
                (long long)x->dims[b + c], var, (long long)xs[b + c]);
    moss_c_line(cg, "else ok = 0;");
  }
}

static void emit_gather_nd(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0], *ix = n->inputs[1];
  int b = (int)moss_attr_int(n, "batch_dims", 0), m = (int)ix->dims[ix->rank - 1];
  int64_t B = prod(x->dims, 0, b), NT = prod(ix->dims, b, ix->rank - 1);
  int64_t inner = prod(x->dims, b + m, x->rank), DB = prod(x->dims, b, x->rank);
  size_t esz = moss_dtype_size(x->dtype);
  char base[64];
  if (B * NT * inner == 0) return;
  moss_c_open(cg, "for (long bb = 0; bb < %lld; bb++)", (long long)B);
  moss_c_open(cg, "for (long j = 0; j < %lld; j++)", (long long)NT);
  moss_c_line(cg, "const long t = bb * %lld + j;", (long long)NT);
  snprintf(base, sizeof base, "bb * %lld", (long long)DB);
  tuple_offset(cg, x, ix, b, m, base);
  if (inner == 1) {
    moss_c_line(cg, "y0[t] = ok ? x0[off] : 0;");
  } else {
    moss_c_line(cg, "if (ok) memcpy(y0 + t * %lld, x0 + off, %lld);", (long long)inner,
                (long long)(inner * (int64_t)esz));
    moss_c_line(cg, "else memset(y0 + t * %lld, 0, %lld);", (long long)inner,
                (long long)(inner * (int64_t)esz));
  }
  moss_c_close(cg);
  moss_c_close(cg);
}

static void emit_scatter_nd(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0], *ix = n->inputs[1];
  int m = (int)ix->dims[ix->rank - 1];
  int64_t NT = prod(ix->dims, 0, ix->rank - 1), inner = prod(x->dims, m, x->rank);
  int64_t nx = prod(x->dims, 0, x->rank);
  size_t esz = moss_dtype_size(x->dtype);
  char t[64], u[64];
  if (nx > 0) moss_c_line(cg, "memcpy(y0, x0, %lld);", (long long)(nx * (int64_t)esz));
  if (NT * inner == 0) return;
  moss_c_open(cg, "for (long t = 0; t < %lld; t++)", (long long)NT);
  tuple_offset(cg, x, ix, 0, m, "0");
  if (!strcmp(moss_attr_string(n, "reduction", "none"), "none")) {
    if (inner == 1)
      moss_c_line(cg, "if (ok) y0[off] = x2[t];");
    else
      moss_c_line(cg, "if (ok) memcpy(y0 + off, x2 + t * %lld, %lld);", (long long)inner,
                  (long long)(inner * (int64_t)esz));
  } else {
    moss_c_open(cg, "if (ok)");
    moss_c_open(cg, "for (long e = 0; e < %lld; e++)", (long long)inner);
    snprintf(t, sizeof t, "y0[off + e]");
    snprintf(u, sizeof u, "x2[t * %lld + e]", (long long)inner);
    apply(cg, n, x->dtype, t, u);
    moss_c_close(cg);
    moss_c_close(cg);
  }
  moss_c_close(cg);
}

static void emit_one_hot(moss_cgen *cg, const moss_node *n) {
  const moss_value *ix = n->inputs[0], *y = n->outputs[0];
  int64_t axis = moss_attr_int(n, "axis", -1), D, outer, inner, ny = prod(y->dims, 0, y->rank);
  if (axis < 0) axis += y->rank;
  D = y->dims[axis];
  outer = prod(ix->dims, 0, (int)axis);
  inner = prod(ix->dims, (int)axis, ix->rank);
  if (ny == 0) return;
  moss_c_line(cg, "for (long i = 0; i < %lld; i++) y0[i] = x2[0];", (long long)ny);
  moss_c_open(cg, "for (long o = 0; o < %lld; o++)", (long long)outer);
  moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)inner);
  {
    char src[64];
    snprintf(src, sizeof src, "x0[o * %lld + i]", (long long)inner);
    read_index(cg, ix, src, "v", D);
  }
  moss_c_line(cg, "if (v >= 0 && v < %lld) y0[(o * %lld + v) * %lld + i] = x2[1];", (long long)D,
              (long long)D, (long long)inner);
  moss_c_close(cg);
  moss_c_close(cg);
}

moss_status moss_c_emit_gather(moss_cgen *cg, const moss_node *n) {
  switch (n->op) {
  case MOSS_OP_Gather: emit_gather(cg, n); break;
  case MOSS_OP_GatherElements:
  case MOSS_OP_ScatterElements:
  case MOSS_OP_Scatter: emit_elements(cg, n); break;
  case MOSS_OP_GatherND: emit_gather_nd(cg, n); break;
  case MOSS_OP_ScatterND: emit_scatter_nd(cg, n); break;
  case MOSS_OP_OneHot: emit_one_hot(cg, n); break;
  default:
    return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "the C backend has no code for this operator");
  }
  return MOSS_OK;
}
