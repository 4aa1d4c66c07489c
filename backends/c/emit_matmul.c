/* emit_matmul.c - C for Gemm, MatMul and Det. The product kernel runs the
 * i-k-j order four output rows at a time: the innermost loop walks a row of
 * B and rows of the output, both contiguous, so the C compiler vectorizes
 * it. A Gemm with transB=1 and a constant B gets B transposed at compile
 * time into its own static array; with a run-time B it uses dot products
 * over contiguous rows. alpha, beta, C and the fused activation are applied
 * once per output row after the accumulation. Integer products wrap
 * (computed in unsigned arithmetic, no undefined overflow). */
#include <stdio.h>
#include <string.h>

#include "../../compiler/passes/sparse.h"
#include "cgen.h"

typedef struct mm {
  moss_dtype dt;
  const char *T; /* element C type */
  const char *U; /* unsigned accumulation type for integers; NULL for floats */
  int64_t M, K, N;
  int ta;  /* A is stored [K, M] */
  int dot; /* B is stored [N, K]: dot products */
  double alpha, beta;
  const moss_value *c; /* Gemm's C or NULL */
  int64_t cm, cn;      /* C's dims padded to rank 2 */
} mm;

static const char *acc_type(moss_dtype dt) {
  switch (dt) {
  case MOSS_DT_I64:
  case MOSS_DT_U64: return "uint64_t";
  case MOSS_DT_F32:
  case MOSS_DT_F64: return NULL;
  default: return "uint32_t";
  }
}

/* The value stored to the output for accumulated value |v| in row |row|. */
static void epilogue(const moss_node *n, const mm *p, const char *v, const char *row, char *out,
                     size_t cap) {
  char cidx[256];
  cidx[0] = 0;
  if (p->c) {
    if (p->cm != 1 && p->cn != 1)
      snprintf(cidx, sizeof cidx, "(%s) * %lld + j", row, (long long)p->cn);
    else if (p->cm != 1)
      snprintf(cidx, sizeof cidx, "%s", row);
    else if (p->cn != 1)
      snprintf(cidx, sizeof cidx, "j");
    else
      snprintf(cidx, sizeof cidx, "0");
  }
  if (p->U) {
    if (p->c)
      snprintf(out, cap, "(%s)((%s)%s + (%s)x2[%s])", p->T, p->U, v, p->U, cidx);
    else
      snprintf(out, cap, "(%s)%s", p->T, v);
    return;
  }
  moss_c_gemm_epilogue(n, p->dt, p->alpha, p->beta, p->c ? cidx : NULL, v, out, cap);
}

static int needs_epilogue(const moss_node *n, const mm *p) {
  return p->alpha != 1.0 || (p->c && (p->U || p->beta != 0.0)) || n->act.kind != MOSS_ACT_NONE;
}

/* A(i, k) for row expression |i| and column expression |k|. */
static void a_elem(const mm *p, const char *i, const char *k, char *out, size_t cap) {
  if (p->ta)
    snprintf(out, cap, "A[%s * %lld + (%s)]", k, (long long)p->M, i);
  else
    snprintf(out, cap, "A[(%s) * %lld + %s]", i, (long long)p->K, k);
}

/* Rows [from, to) of Y = A B in groups of |rows|, i-k-j order. */
static void rows_kernel(moss_cgen *cg, const moss_node *n, const mm *p, int64_t from, int64_t to,
                        int rows) {
  char e[1024], row[64], v[32], ae[256];
  int r;
  if (to <= from) return;
  if (rows == 1 && to - from == 1)
    moss_c_open(cg, "for (long i = %lld; i < %lld; i++)", (long long)from, (long long)to);
  else
    moss_c_open(cg, "for (long i = %lld; i < %lld; i += %d)", (long long)from, (long long)to, rows);
  for (r = 0; r < rows; r++)
    moss_c_line(cg, "%s *restrict r%d = Y + (i + %d) * %lld;", p->T, r, r, (long long)p->N);
  moss_c_open(cg, "for (long j = 0; j < %lld; j++)", (long long)p->N);
  for (r = 0; r < rows; r++) moss_c_line(cg, "r%d[j] = 0;", r);
  moss_c_close(cg);
  moss_c_open(cg, "for (long k = 0; k < %lld; k++)", (long long)p->K);
  for (r = 0; r < rows; r++) {
    snprintf(row, sizeof row, "i + %d", r);
    a_elem(p, row, "k", ae, sizeof ae);
    moss_c_line(cg, "const %s a%d = %s;", p->T, r, ae);
  }
  moss_c_line(cg, "const %s *restrict br = B + k * %lld;", p->T, (long long)p->N);
  moss_c_open(cg, "for (long j = 0; j < %lld; j++)", (long long)p->N);
  moss_c_line(cg, "const %s bv = br[j];", p->T);
  for (r = 0; r < rows; r++) {
    if (p->U)
      moss_c_line(cg, "r%d[j] = (%s)((%s)r%d[j] + (%s)a%d * (%s)bv);", r, p->T, p->U, r, p->U, r,
                  p->U);
    else
      moss_c_line(cg, "r%d[j] += a%d * bv;", r, r);
  }
  moss_c_close(cg);
  moss_c_close(cg);
  if (needs_epilogue(n, p)) {
    moss_c_open(cg, "for (long j = 0; j < %lld; j++)", (long long)p->N);
    for (r = 0; r < rows; r++) {
      snprintf(row, sizeof row, "i + %d", r);
      snprintf(v, sizeof v, "r%d[j]", r);
      epilogue(n, p, v, row, e, sizeof e);
      moss_c_line(cg, "r%d[j] = %s;", r, e);
    }
    moss_c_close(cg);
  }
  moss_c_close(cg);
}

/* One matrix product on the pointers A, B, Y already declared. */
static void kernel(moss_cgen *cg, const moss_node *n, const mm *p) {
  char e[1024], ae[256];
  if (p->dot) {
    moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)p->M);
    moss_c_open(cg, "for (long j = 0; j < %lld; j++)", (long long)p->N);
    moss_c_line(cg, "const %s *br = B + j * %lld;", p->T, (long long)p->K);
    moss_c_line(cg, "%s s = 0;", p->U ? p->U : p->T);
    moss_c_open(cg, "for (long k = 0; k < %lld; k++)", (long long)p->K);
    a_elem(p, "i", "k", ae, sizeof ae);
    if (p->U)
      moss_c_line(cg, "s += (%s)%s * (%s)br[k];", p->U, ae, p->U);
    else
      moss_c_line(cg, "s += %s * br[k];", ae);
    moss_c_close(cg);
    epilogue(n, p, "s", "i", e, sizeof e);
    moss_c_line(cg, "Y[i * %lld + j] = %s;", (long long)p->N, e);
    moss_c_close(cg);
    moss_c_close(cg);
    return;
  }
  {
    int64_t m4 = p->M / 4 * 4;
    rows_kernel(cg, n, p, 0, m4, 4);
    rows_kernel(cg, n, p, m4, p->M, 1);
  }
}

/* Defines B^T ([K, N]) of the constant B ([N, K]) at file scope; returns its name. */
static void transposed_weight(moss_cgen *cg, const moss_value *b, const mm *p, char *name,
                              size_t cap) {
  char lit[64];
  int64_t k, j, cnt = 0, total = p->K * p->N;
  snprintf(name, cap, "wt%d_gemm", cg->uid++);
  moss_buf_printf(
      cg->decls, "/* '%s' transposed to [%lld, %lld] */\nstatic const %s %s[%lld] MOSS_ALIGNED = {",
      b->name, (long long)p->K, (long long)p->N, p->T, name, (long long)(total > 0 ? total : 1));
  if (total <= 0) moss_buf_printf(cg->decls, "0");
  for (k = 0; k < p->K; k++)
    for (j = 0; j < p->N; j++, cnt++) {
      if (cnt % 8 == 0) moss_buf_printf(cg->decls, "\n ");
      moss_buf_printf(cg->decls, " %s%s", moss_c_lit_elem(b, j * p->K + k, lit, sizeof lit),
                      cnt + 1 < total ? "," : "");
    }
  moss_buf_printf(cg->decls, "\n};\n\n");
}

static moss_status emit_gemm(moss_cgen *cg, const moss_node *n) {
  const moss_value *a = n->inputs[0], *b = n->inputs[1], *y = n->outputs[0];
  mm p;
  char bt[64];
  memset(&p, 0, sizeof p);
  p.dt = y->dtype;
  p.T = moss_dtype_ctype(p.dt);
  p.U = acc_type(p.dt);
  p.ta = moss_attr_int(n, "transA", 0) != 0;
  p.dot = moss_attr_int(n, "transB", 0) != 0;
  p.M = y->dims[0];
  p.N = y->dims[1];
  p.K = p.ta ? a->dims[0] : a->dims[1];
  p.alpha = moss_attr_float(n, "alpha", 1.0f);
  p.beta = moss_attr_float(n, "beta", 1.0f);
  p.c = moss_node_input(n, 2);
  if (!p.T) return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "type %s", moss_dtype_name(p.dt));
  if (p.c) {
    p.cm = p.c->rank == 2 ? p.c->dims[0] : 1;
    p.cn = p.c->rank >= 1 ? p.c->dims[p.c->rank - 1] : 1;
  }
  if (p.M * p.N == 0) {
    moss_c_line(cg, "/* empty output */");
    return MOSS_OK;
  }
  moss_c_line(cg, "const %s *A = x0;", p.T);
  if (p.dot && b->data) {
    transposed_weight(cg, b, &p, bt, sizeof bt);
    p.dot = 0;
    moss_c_line(cg, "const %s *B = %s;", p.T, bt);
  } else {
    /* A run-time B^T: dot products over contiguous rows. */
    moss_c_line(cg, "const %s *B = x1;", p.T);
  }
  moss_c_line(cg, "%s *Y = y0;", p.T);
  kernel(cg, n, &p);
  return MOSS_OK;
}

static moss_status emit_matmul(moss_cgen *cg, const moss_node *n) {
  const moss_value *a = n->inputs[0], *b = n->inputs[1], *y = n->outputs[0];
  mm p;
  int r, k, ra, rb, flat = 1;
  int64_t nb = 1, na = 1, nbb = 1;
  int64_t bd[MOSS_MAX_RANK];
  char ea[512], eb[512], ey[512];
  memset(&p, 0, sizeof p);
  p.dt = y->dtype;
  p.T = moss_dtype_ctype(p.dt);
  p.U = acc_type(p.dt);
  if (!p.T) return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "type %s", moss_dtype_name(p.dt));
  p.M = a->rank >= 2 ? a->dims[a->rank - 2] : 1;
  p.K = a->dims[a->rank - 1];
  p.N = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
  p.alpha = 1.0;
  r = y->rank - (a->rank >= 2) - (b->rank >= 2);
  ra = a->rank > 2 ? a->rank - 2 : 0;
  rb = b->rank > 2 ? b->rank - 2 : 0;
  for (k = 0; k < r; k++) nb *= (bd[k] = y->dims[k]);
  for (k = 0; k < ra; k++) na *= a->dims[k];
  for (k = 0; k < rb; k++) nbb *= b->dims[k];
  if (nb * p.M * p.N == 0) {
    moss_c_line(cg, "/* empty output */");
    return MOSS_OK;
  }
  if (nb == 1) {
    moss_c_line(cg, "const %s *A = x0;", p.T);
    moss_c_line(cg, "const %s *B = x1;", p.T);
    moss_c_line(cg, "%s *Y = y0;", p.T);
    kernel(cg, n, &p);
    return MOSS_OK;
  }
  if (!(na == nb || na == 1) || !(nbb == nb || nbb == 1)) flat = 0;
  if (flat) {
    moss_c_open(cg, "for (long b = 0; b < %lld; b++)", (long long)nb);
    snprintf(ea, sizeof ea, na == 1 ? "0" : "b");
    snprintf(eb, sizeof eb, nbb == 1 ? "0" : "b");
    snprintf(ey, sizeof ey, "b");
  } else {
    for (k = 0; k < r; k++)
      moss_c_open(cg, "for (long b%d = 0; b%d < %lld; b%d++)", k, k, (long long)bd[k], k);
    moss_c_index_expr(ea, sizeof ea, 'b', r, bd, ra, a->dims);
    moss_c_index_expr(eb, sizeof eb, 'b', r, bd, rb, b->dims);
    moss_c_index_expr(ey, sizeof ey, 'b', r, bd, r, bd);
  }
  moss_c_line(cg, "const %s *A = x0 + (%s) * %lld;", p.T, ea, (long long)(p.M * p.K));
  moss_c_line(cg, "const %s *B = x1 + (%s) * %lld;", p.T, eb, (long long)(p.K * p.N));
  moss_c_line(cg, "%s *Y = y0 + (%s) * %lld;", p.T, ey, (long long)(p.M * p.N));
  kernel(cg, n, &p);
  for (k = 0; k < (flat ? 1 : r); k++) moss_c_close(cg);
  return MOSS_OK;
}

/* Determinant by LU decomposition with partial pivoting, in double, on a
 * copy of each matrix. */
static moss_status emit_det(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  int64_t m = x->dims[x->rank - 1], nb = moss_value_numel(y), mm2 = m * m;
  const char *T = moss_dtype_ctype(y->dtype);
  if (nb == 0) {
    moss_c_line(cg, "/* empty output */");
    return MOSS_OK;
  }
  moss_c_open(cg, "for (long b = 0; b < %lld; b++)", (long long)nb);
  moss_c_line(cg, "double m[%lld];", (long long)(mm2 > 0 ? mm2 : 1));
  moss_c_line(cg, "double det = 1.0;");
  moss_c_line(cg, "for (long i = 0; i < %lld; i++) m[i] = (double)x0[b * %lld + i];",
              (long long)mm2, (long long)mm2);
  moss_c_open(cg, "for (long c = 0; c < %lld; c++)", (long long)m);
  moss_c_line(cg, "long piv = c;");
  moss_c_line(cg, "double best = fabs(m[c * %lld + c]);", (long long)m);
  moss_c_open(cg, "for (long r = c + 1; r < %lld; r++)", (long long)m);
  moss_c_open(cg, "if (fabs(m[r * %lld + c]) > best)", (long long)m);
  moss_c_line(cg, "best = fabs(m[r * %lld + c]);", (long long)m);
  moss_c_line(cg, "piv = r;");
  moss_c_close(cg);
  moss_c_close(cg);
  moss_c_open(cg, "if (best == 0.0)");
  moss_c_line(cg, "det = 0.0;");
  moss_c_line(cg, "break;");
  moss_c_close(cg);
  moss_c_open(cg, "if (piv != c)");
  moss_c_open(cg, "for (long k = 0; k < %lld; k++)", (long long)m);
  moss_c_line(cg, "double t = m[c * %lld + k];", (long long)m);
  moss_c_line(cg, "m[c * %lld + k] = m[piv * %lld + k];", (long long)m, (long long)m);
  moss_c_line(cg, "m[piv * %lld + k] = t;", (long long)m);
  moss_c_close(cg);
  moss_c_line(cg, "det = -det;");
  moss_c_close(cg);
  moss_c_line(cg, "det *= m[c * %lld + c];", (long long)m);
  moss_c_open(cg, "for (long r = c + 1; r < %lld; r++)", (long long)m);
  moss_c_line(cg, "const double f = m[r * %lld + c] / m[c * %lld + c];", (long long)m,
              (long long)m);
  moss_c_line(cg, "for (long k = c + 1; k < %lld; k++) m[r * %lld + k] -= f * m[c * %lld + k];",
              (long long)m, (long long)m, (long long)m);
  moss_c_close(cg);
  moss_c_close(cg);
  moss_c_line(cg, "y0[b] = (%s)det;", T);
  moss_c_close(cg);
  return MOSS_OK;
}

moss_status moss_c_emit_matmul(moss_cgen *cg, const moss_node *n) {
  if (n->sparse) return moss_c_emit_sparse(cg, n); /* backends/c/emit_sparse.c */
  switch (n->op) {
  case MOSS_OP_Gemm: return emit_gemm(cg, n);
  case MOSS_OP_MatMul: return emit_matmul(cg, n);
  case MOSS_OP_Det: return emit_det(cg, n);
  default: return moss_fail(cg->ctx, MOSS_E_INTERNAL, n, "not a matmul-family operator");
  }
}
