/* lower_matmul.c - Gemm, MatMul and Det, specialized to the node's shapes.
 * The product runs in i-k-j order, four output rows at a time: the output
 * rows are cleared, then for each k the four A(i+r, k) are read once and
 * the innermost loop walks a row of B and the four output rows, all
 * contiguous, adding a(r) * B(k, j); each output element thus sums its
 * products in k order. A Gemm with transB=1 and a constant B gets B
 * transposed here into a constant table, so it takes the same path; with
 * a run-time B^T each element is a dot product over two contiguous rows.
 * alpha, beta, C and the fused activation (n->act) are applied once per
 * output row after the accumulation. Integer products wrap in the element
 * type (kernel.h). MatMul's batch dimensions broadcast (numpy rules).
 * Det is an LU decomposition with partial pivoting, in double, on a
 * private copy of each matrix. Nodes whose weight the sparse pass stored
 * in a sparse format are not described here (lower.h). */
#include <stdio.h>
#include <string.h>

#include "lower.h"

int moss_lower_takes_matmul(const moss_node *n) { return !n->sparse; }

/* One matrix product Y[M, N] = A[M, K] B[K, N] (B[N, K] when |dot|). */
typedef struct mm {
  moss_dtype dt;
  int64_t M, K, N;
  int ta;  /* A is stored [K, M] */
  int dot; /* B is stored [N, K]: dot products */
  double alpha, beta;
  int c;             /* Gemm's C is input 2 */
  int64_t cm, cn;    /* C's dims padded to rank 2 */
  int xa, xb, xc, y; /* buffers */
  int b_packed;      /* xb is B packed for the register tile (moss_tile_pack) */
  int outer;         /* parallel loops around the product (the GPU's tiles take at most one) */
} mm;

static int needs_epilogue(const moss_node *n, const mm *p) {
  if (!moss_dtype_is_float(p->dt)) return p->c;
  return p->alpha != 1.0 || (p->c && p->beta != 0.0) || n->act.kind != MOSS_ACT_NONE;
}

/* The value stored for the accumulated |v| of output (|row|, |j|): alpha * v
 * + beta * C(row, j), then the activation; integers only add C. Where
 * there is an activation, its operand is a local named v<r>. A vector |v|
 * holds the outputs (row, j .. j + lanes). */
static moss_kx *epilogue(moss_kb *b, const moss_node *n, const mm *p, moss_kx *v, moss_kx *row,
                         moss_kx *j, int r) {
  moss_kx *cv = NULL;
  char name[16];
  if (p->c) {
    moss_kx *at = moss_k_idx(b, 0);
    if (p->cm != 1) at = moss_k_mulc(b, row, p->cn);
    if (p->cn != 1) at = moss_k_add(b, at, j);
    /* A vector of sums takes C's row as a vector, or one C value for all. */
    cv = moss_k_cast(b, p->dt, v->lanes > 1 && p->cn != 1 ? moss_k_vload(b, p->xc, at, v->lanes)
                                                          : moss_k_load(b, p->xc, at));
  }
  if (!moss_dtype_is_float(p->dt)) return cv ? moss_k_bin(b, MOSS_KX_ADD, v, cv) : v;
  if (p->alpha != 1.0) v = moss_k_bin(b, MOSS_KX_MUL, moss_k_flt(b, p->dt, p->alpha), v);
  if (cv && p->beta != 0.0) {
    if (p->beta != 1.0) cv = moss_k_bin(b, MOSS_KX_MUL, moss_k_flt(b, p->dt, p->beta), cv);
    v = moss_k_bin(b, MOSS_KX_ADD, v, cv);
  }
  if (n->act.kind == MOSS_ACT_NONE) return v;
  /* The activation reads its operand more than once. */
  snprintf(name, sizeof name, "v%d", r);
  return moss_k_act(b, n, moss_k_let(b, name, v));
}

/* Rows [from, to) of Y = A B in groups of |rows|, i-k-j order; A, B and Y
 * start at the offsets |ao|, |bo| and |yo|. */
static void rows_kernel(moss_kb *b, const moss_node *n, const mm *p, moss_kx *ao, moss_kx *bo,
                        moss_kx *yo, int64_t from, int64_t to, int rows) {
  moss_kx *i, *j, *k, *yr[4], *av[4], *ai = NULL, *bk, *bv;
  char name[16];
  int r;
  if (to <= from) return;
  i = moss_k_for(b, "i", moss_k_idx(b, from), moss_k_idx(b, to), rows, MOSS_KL_PARALLEL, 0);
  for (r = 0; r < rows; r++) {
    snprintf(name, sizeof name, "yr%d", r);
    yr[r] = moss_k_let(b, name, moss_k_add(b, yo, moss_k_mulc(b, moss_k_addc(b, i, r), p->N)));
  }
  j = moss_k_range(b, "j", p->N, MOSS_KL_PARALLEL);
  for (r = 0; r < rows; r++) moss_k_store(b, p->y, moss_k_add(b, yr[r], j), moss_k_zero(b, p->dt));
  moss_k_end(b);
  if (!p->ta) ai = moss_k_let(b, "ai", moss_k_add(b, ao, moss_k_mulc(b, i, p->K)));
  k = moss_k_range(b, "k", p->K, MOSS_KL_REDUCE);
  if (p->ta) ai = moss_k_let(b, "ak", moss_k_add(b, moss_k_add(b, ao, moss_k_mulc(b, k, p->M)), i));
  for (r = 0; r < rows; r++) {
    moss_kx *at = p->ta ? moss_k_addc(b, ai, r) : moss_k_add(b, moss_k_addc(b, ai, r * p->K), k);
    snprintf(name, sizeof name, "a%d", r);
    av[r] = moss_k_let(b, name, moss_k_load(b, p->xa, at));
  }
  bk = moss_k_let(b, "bk", moss_k_add(b, bo, moss_k_mulc(b, k, p->N)));
  j = moss_k_range(b, "j", p->N, MOSS_KL_PARALLEL);
  bv = moss_k_let(b, "bv", moss_k_load(b, p->xb, moss_k_add(b, bk, j)));
  for (r = 0; r < rows; r++) {
    moss_kx *at = moss_k_add(b, yr[r], j);
    moss_k_store(b, p->y, at,
                 moss_k_bin(b, MOSS_KX_ADD, moss_k_load(b, p->y, at),
                            moss_k_bin(b, MOSS_KX_MUL, av[r], bv)));
  }
  moss_k_end(b);
  moss_k_end(b);
  if (needs_epilogue(n, p)) {
    j = moss_k_range(b, "j", p->N, MOSS_KL_PARALLEL);
    for (r = 0; r < rows; r++) {
      moss_kx *at = moss_k_add(b, yr[r], j);
      moss_k_store(b, p->y, at,
                   epilogue(b, n, p, moss_k_load(b, p->y, at), moss_k_addc(b, i, r), j, r));
    }
    moss_k_end(b);
  }
  moss_k_end(b);
}

/* The register tile's epilogue (lower_tile.c): the node and its product. */
typedef struct tile_arg {
  const moss_node *n;
  const mm *p;
} tile_arg;

static moss_kx *tile_epilogue(moss_kb *b, const void *arg, moss_kx *v, moss_kx *i, moss_kx *j, moss_kx *at,
                              int r) {
  const tile_arg *t = arg;
  (void)at;
  return epilogue(b, t->n, t->p, v, i, j, r);
}

/* Whether |p| goes through the register tile: a float product on a machine
 * with SIMD registers, at least one vector wide, B read by rows (packed
 * when constant). */
static int tile_fits(moss_kb *b, const mm *p) {
  int mr, nr, lanes;
  return moss_tile_shape(b, p->dt, &mr, &nr, &lanes) && p->N >= lanes && p->K > 0;
}

static int use_tile(moss_kb *b, const mm *p) { return !p->dot && tile_fits(b, p); }

/* B packed into the tile's column blocks, from the constant |w| (stored
 * [K, N], or [N, K] when p->dot). */
static void pack_b(moss_kb *b, mm *p, const moss_value *w) {
  char name[160];
  int mr, nr, lanes;
  moss_tile_shape(b, p->dt, &mr, &nr, &lanes);
  snprintf(name, sizeof name, "'%s' packed in blocks of %d columns", w->name, nr);
  p->xb = moss_tile_pack(b, name, w->dtype, w->data, p->K, p->N, p->dot ? 1 : p->N,
                         p->dot ? p->K : 1, nr);
  p->dot = 0;
  p->b_packed = 1;
}

/* The product through the register tile; |bo| is B's offset unless B was
 * packed (p->b_packed), whose tile layout starts at 0. */
static void tiled(moss_kb *b, const moss_node *n, const mm *p, moss_kx *ao, moss_kx *bo,
                  moss_kx *yo) {
  moss_tile t;
  tile_arg arg;
  memset(&t, 0, sizeof t);
  arg.n = n;
  arg.p = p;
  t.dt = p->dt;
  t.M = p->M;
  t.N = p->N;
  t.K = p->K;
  t.s = p->xa;
  t.s_at = ao;
  t.s_row = p->ta ? 1 : p->K;
  t.s_k = p->ta ? p->M : 1;
  t.v = p->xb;
  t.v_packed = p->b_packed;
  t.v_at = bo;
  t.v_k = p->N;
  t.y = p->y;
  t.y_at = yo;
  t.y_row = p->N;
  if (needs_epilogue(n, p)) {
    t.epilogue = tile_epilogue;
    t.arg = &arg;
  }
  moss_tile_product(b, &t);
}

/* The GPU's work-group tiles (lower_gputile.c): the product and where its
 * operands are. */
typedef struct gpu_arg {
  const moss_node *n;
  const mm *p;
  moss_kx *ao, *bo, *yo;
} gpu_arg;

static moss_kx *in_range(moss_kb *b, moss_kx *i, int64_t ni, moss_kx *j, int64_t nj) {
  return moss_k_bin(b, MOSS_KX_LAND, moss_k_bin(b, MOSS_KX_LT, i, moss_k_idx(b, ni)),
                    moss_k_bin(b, MOSS_KX_LT, j, moss_k_idx(b, nj)));
}

static moss_kx *gpu_a(moss_kb *b, const void *arg, moss_kx *m, moss_kx *k) {
  const gpu_arg *g = arg;
  const mm *p = g->p;
  moss_kx *at = p->ta ? moss_k_add(b, moss_k_mulc(b, k, p->M), m) : moss_k_add(b, moss_k_mulc(b, m, p->K), k);
  return moss_k_load_or(b, p->xa, moss_k_add(b, g->ao, at), in_range(b, m, p->M, k, p->K), moss_k_zero(b, p->dt));
}

static moss_kx *gpu_b(moss_kb *b, const void *arg, moss_kx *k, moss_kx *j) {
  const gpu_arg *g = arg;
  const mm *p = g->p;
  moss_kx *at = p->dot ? moss_k_add(b, moss_k_mulc(b, j, p->K), k) : moss_k_add(b, moss_k_mulc(b, k, p->N), j);
  return moss_k_load_or(b, p->xb, moss_k_add(b, g->bo, at), in_range(b, k, p->K, j, p->N), moss_k_zero(b, p->dt));
}

static void gpu_store(moss_kb *b, const void *arg, moss_kx *i, moss_kx *j, moss_kx *v) {
  const gpu_arg *g = arg;
  moss_k_store(b, g->p->y, moss_k_add(b, g->yo, moss_k_add(b, moss_k_mulc(b, i, g->p->N), j)),
               epilogue(b, g->n, g->p, v, i, j, 0));
}

/* The product as work-group tiles, where the GPU's limits and its size
 * take them; returns 0 (nothing appended) where they do not. */
static int gpu_tiled(moss_kb *b, const moss_node *n, const mm *p, moss_kx *ao, moss_kx *bo, moss_kx *yo) {
  moss_gtile t;
  gpu_arg g;
  g.n = n;
  g.p = p;
  g.ao = ao;
  g.bo = bo;
  g.yo = yo;
  moss_gtile_set(&t, p->dt, p->M, p->N, p->K, gpu_a, gpu_b, gpu_store, &g);
  t.a_k_contig = !p->ta;
  t.b_n_contig = !p->dot;
  if (p->outer > 1 || p->b_packed || !moss_gtile_takes(&b->cpu, &t)) return 0;
  moss_gtile_product(b, &t);
  return 1;
}

/* One matrix product at the offsets |ao|, |bo|, |yo|. */
static void product(moss_kb *b, const moss_node *n, const mm *p, moss_kx *ao, moss_kx *bo,
                    moss_kx *yo) {
  moss_kx *i, *j, *k, *bj, *s, *at;
  int64_t m4 = p->M / 4 * 4;
  if (b->cpu.gpu && gpu_tiled(b, n, p, ao, bo, yo)) return;
  if (use_tile(b, p)) {
    tiled(b, n, p, ao, bo, yo);
    return;
  }
  if (!p->dot && !b->cpu.gpu) {
    rows_kernel(b, n, p, ao, bo, yo, 0, m4, 4);
    rows_kernel(b, n, p, ao, bo, yo, m4, p->M, 1);
    return;
  }
  /* Dot products, one per output element (B stored [N, K], or on a GPU
   * [K, N]): each sums in k order, as rows_kernel does. */
  i = moss_k_range(b, "i", p->M, MOSS_KL_PARALLEL);
  j = moss_k_range(b, "j", p->N, MOSS_KL_PARALLEL);
  bj = p->dot ? moss_k_let(b, "bj", moss_k_add(b, bo, moss_k_mulc(b, j, p->K))) : moss_k_let(b, "bj", moss_k_add(b, bo, j));
  s = moss_k_let(b, "s", moss_k_zero(b, p->dt));
  k = moss_k_range(b, "k", p->K, MOSS_KL_REDUCE);
  at = p->ta ? moss_k_add(b, moss_k_add(b, ao, moss_k_mulc(b, k, p->M)), i)
             : moss_k_add(b, moss_k_add(b, ao, moss_k_mulc(b, i, p->K)), k);
  moss_k_set(b, s,
             moss_k_bin(b, MOSS_KX_ADD, s,
                        moss_k_bin(b, MOSS_KX_MUL, moss_k_load(b, p->xa, at),
                                   moss_k_load(b, p->xb, p->dot ? moss_k_add(b, bj, k)
                                                                : moss_k_add(b, bj, moss_k_mulc(b, k, p->N))))));
  moss_k_end(b);
  moss_k_store(b, p->y, moss_k_add(b, yo, moss_k_add(b, moss_k_mulc(b, i, p->N), j)),
               epilogue(b, n, p, s, i, j, 0));
  moss_k_end(b);
  moss_k_end(b);
}

static moss_status check_type(moss_kb *b, moss_dtype dt) {
  if (!moss_kb_dtype_ok(b, dt) || dt == MOSS_DT_BOOL)
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "type %s", moss_dtype_name(dt));
  return MOSS_OK;
}

static moss_status lower_gemm(moss_kb *b, const moss_node *n) {
  const moss_value *a = n->inputs[0], *w = n->inputs[1], *y = n->outputs[0], *c;
  moss_kx *zero_off;
  mm p;
  memset(&p, 0, sizeof p);
  p.dt = y->dtype;
  MOSS_TRY(check_type(b, p.dt));
  p.ta = moss_attr_int(n, "transA", 0) != 0;
  p.dot = moss_attr_int(n, "transB", 0) != 0;
  p.M = y->dims[0];
  p.N = y->dims[1];
  p.K = p.ta ? a->dims[0] : a->dims[1];
  p.alpha = moss_attr_float(n, "alpha", 1.0f);
  p.beta = moss_attr_float(n, "beta", 1.0f);
  c = moss_node_input(n, 2);
  if (c) {
    p.c = 1;
    p.cm = c->rank == 2 ? c->dims[0] : 1;
    p.cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
    p.xc = moss_k_input(b, 2);
  }
  if (p.M * p.N == 0) {
    moss_k_comment(b, "empty output");
    return b->st;
  }
  p.xa = moss_k_input(b, 0);
  p.y = moss_k_output(b, 0);
  if (w->data && w->dtype == p.dt && tile_fits(b, &p)) {
    pack_b(b, &p, w);
  } else if (p.dot && w->data) {
    /* A constant B^T becomes B, [K, N], so the rows kernel reads it row by row. */
    size_t es = moss_dtype_size(w->dtype), bytes;
    int64_t k, j;
    unsigned char *t;
    char name[160];
    if (!moss_size_mul((size_t)(p.K * p.N), es, &bytes))
      return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "weight '%s' too large", w->name);
    t = moss_arena_alloc(b->arena, bytes ? bytes : 1, 16);
    if (!t) return moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
    for (k = 0; k < p.K; k++)
      for (j = 0; j < p.N; j++)
        memcpy(t + (size_t)(k * p.N + j) * es,
               (const unsigned char *)w->data + (size_t)(j * p.K + k) * es, es);
    snprintf(name, sizeof name, "'%s' transposed to [%lld, %lld]", w->name, (long long)p.K,
             (long long)p.N);
    p.xb = moss_k_table(b, name, w->dtype, p.K * p.N, t);
    p.dot = 0;
  } else {
    p.xb = moss_k_input(b, 1);
  }
  zero_off = moss_k_idx(b, 0);
  product(b, n, &p, zero_off, zero_off, zero_off);
  return b->st;
}

static moss_status lower_matmul(moss_kb *b, const moss_node *n) {
  const moss_value *a = n->inputs[0], *w = n->inputs[1], *y = n->outputs[0];
  mm p;
  int r, k, ra, rb, loops = 0;
  int64_t nb = 1, na = 1, nbb = 1, bd[MOSS_MAX_RANK];
  moss_kx *ao, *bo, *yo;
  memset(&p, 0, sizeof p);
  p.dt = y->dtype;
  MOSS_TRY(check_type(b, p.dt));
  p.M = a->rank >= 2 ? a->dims[a->rank - 2] : 1;
  p.K = a->dims[a->rank - 1];
  p.N = w->rank >= 2 ? w->dims[w->rank - 1] : 1;
  p.alpha = 1.0;
  r = y->rank - (a->rank >= 2) - (w->rank >= 2);
  ra = a->rank > 2 ? a->rank - 2 : 0;
  rb = w->rank > 2 ? w->rank - 2 : 0;
  for (k = 0; k < r; k++) nb *= (bd[k] = y->dims[k]);
  for (k = 0; k < ra; k++) na *= a->dims[k];
  for (k = 0; k < rb; k++) nbb *= w->dims[k];
  if (nb * p.M * p.N == 0) {
    moss_k_comment(b, "empty output");
    return b->st;
  }
  p.xa = moss_k_input(b, 0);
  p.y = moss_k_output(b, 0);
  if (w->data && nbb == 1 && w->dtype == p.dt && tile_fits(b, &p)) pack_b(b, &p, w);
  else p.xb = moss_k_input(b, 1);
  if (nb == 1) {
    ao = bo = yo = moss_k_idx(b, 0);
  } else if ((na == nb || na == 1) && (nbb == nb || nbb == 1)) {
    /* Each operand is either one matrix or one per batch: one flat loop. */
    moss_kx *bt = moss_k_range(b, "bt", nb, MOSS_KL_PARALLEL);
    loops = 1;
    p.outer = 1;
    ao = na == 1 ? moss_k_idx(b, 0) : moss_k_let(b, "ao", moss_k_mulc(b, bt, p.M * p.K));
    bo = nbb == 1 ? moss_k_idx(b, 0) : moss_k_let(b, "bo", moss_k_mulc(b, bt, p.K * p.N));
    yo = moss_k_let(b, "yo", moss_k_mulc(b, bt, p.M * p.N));
  } else {
    moss_kx *idx[MOSS_MAX_RANK];
    for (k = 0; k < r; k++) {
      char name[16];
      snprintf(name, sizeof name, "b%d", k);
      idx[k] = moss_k_range(b, name, bd[k], MOSS_KL_PARALLEL);
    }
    loops = r;
    p.outer = r;
    ao = moss_k_let(b, "ao",
                    moss_k_mulc(b, moss_k_bcast_index(b, r, bd, idx, ra, a->dims), p.M * p.K));
    bo = moss_k_let(b, "bo",
                    moss_k_mulc(b, moss_k_bcast_index(b, r, bd, idx, rb, w->dims), p.K * p.N));
    yo = moss_k_let(b, "yo", moss_k_mulc(b, moss_k_flat_index(b, r, bd, idx), p.M * p.N));
  }
  product(b, n, &p, ao, bo, yo);
  while (loops--) moss_k_end(b);
  return b->st;
}

/* Determinant by LU decomposition with partial pivoting, in double, on a
 * private copy of each matrix. A zero pivot column makes the determinant 0
 * and ends the elimination of that matrix. */
static moss_status lower_det(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  int64_t m = x->dims[x->rank - 1], nb = moss_value_numel(y), mm2 = m * m;
  const moss_dtype D = MOSS_DT_F64;
  int xi, yi, lu;
  moss_kx *bt, *det, *live, *t, *c, *piv, *best, *r, *v, *kk, *cc, *f, *rc;
  if (!moss_dtype_is_float(x->dtype) || !moss_dtype_is_float(y->dtype))
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "type %s", moss_dtype_name(x->dtype));
  if (nb == 0) {
    moss_k_comment(b, "empty output");
    return b->st;
  }
  xi = moss_k_input(b, 0);
  yi = moss_k_output(b, 0);
  lu = moss_k_local(b, "m", D, mm2 > 0 ? mm2 : 1);
  bt = moss_k_range(b, "bt", nb, MOSS_KL_PARALLEL);
  det = moss_k_let(b, "det", moss_k_flt(b, D, 1.0));
  live = moss_k_let(b, "live", moss_k_int(b, MOSS_DT_BOOL, 1)); /* no zero pivot yet */
  t = moss_k_range(b, "t", mm2, MOSS_KL_PARALLEL);
  moss_k_store(b, lu, t,
               moss_k_cast(b, D, moss_k_load(b, xi, moss_k_add(b, moss_k_mulc(b, bt, mm2), t))));
  moss_k_end(b);
  c = moss_k_range(b, "c", m, MOSS_KL_SERIAL);
  moss_k_if(b, live);
  cc = moss_k_let(b, "cc", moss_k_mulc(b, c, m + 1)); /* the diagonal element (c, c) */
  piv = moss_k_let(b, "piv", c);
  best = moss_k_let(b, "best", moss_k_call(b, MOSS_KFN_FABS, moss_k_load(b, lu, cc), NULL, NULL));
  r = moss_k_for(b, "r", moss_k_addc(b, c, 1), moss_k_idx(b, m), 1, MOSS_KL_REDUCE, 0);
  v = moss_k_let(
      b, "v",
      moss_k_call(b, MOSS_KFN_FABS, moss_k_load(b, lu, moss_k_add(b, moss_k_mulc(b, r, m), c)),
                  NULL, NULL));
  moss_k_if(b, moss_k_bin(b, MOSS_KX_GT, v, best));
  moss_k_set(b, best, v);
  moss_k_set(b, piv, r);
  moss_k_end(b);
  moss_k_end(b);
  moss_k_if(b, moss_k_bin(b, MOSS_KX_EQ, best, moss_k_flt(b, D, 0.0)));
  moss_k_set(b, det, moss_k_flt(b, D, 0.0));
  moss_k_set(b, live, moss_k_int(b, MOSS_DT_BOOL, 0));
  moss_k_else(b);
  moss_k_if(b, moss_k_bin(b, MOSS_KX_NE, piv, c));
  {
    moss_kx *ck, *pk, *tmp;
    kk = moss_k_range(b, "k", m, MOSS_KL_PARALLEL);
    ck = moss_k_add(b, moss_k_mulc(b, c, m), kk);
    pk = moss_k_add(b, moss_k_mulc(b, piv, m), kk);
    tmp = moss_k_let(b, "tmp", moss_k_load(b, lu, ck));
    moss_k_store(b, lu, ck, moss_k_load(b, lu, pk));
    moss_k_store(b, lu, pk, tmp);
    moss_k_end(b);
  }
  moss_k_set(b, det, moss_k_un(b, MOSS_KX_NEG, det));
  moss_k_end(b);
  moss_k_set(b, det, moss_k_bin(b, MOSS_KX_MUL, det, moss_k_load(b, lu, cc)));
  r = moss_k_for(b, "r", moss_k_addc(b, c, 1), moss_k_idx(b, m), 1, MOSS_KL_PARALLEL, 0);
  rc = moss_k_let(b, "rc", moss_k_add(b, moss_k_mulc(b, r, m), c));
  f = moss_k_let(b, "f",
                 moss_k_bin(b, MOSS_KX_DIV, moss_k_load(b, lu, rc), moss_k_load(b, lu, cc)));
  kk = moss_k_for(b, "k", moss_k_addc(b, c, 1), moss_k_idx(b, m), 1, MOSS_KL_PARALLEL, 0);
  {
    moss_kx *rk = moss_k_add(b, moss_k_mulc(b, r, m), kk);
    moss_kx *ck = moss_k_add(b, moss_k_mulc(b, c, m), kk);
    moss_k_store(b, lu, rk,
                 moss_k_bin(b, MOSS_KX_SUB, moss_k_load(b, lu, rk),
                            moss_k_bin(b, MOSS_KX_MUL, f, moss_k_load(b, lu, ck))));
  }
  moss_k_end(b); /* k */
  moss_k_end(b); /* r */
  moss_k_end(b); /* else */
  moss_k_end(b); /* if live */
  moss_k_end(b); /* c */
  moss_k_store(b, yi, bt, moss_k_cast(b, y->dtype, det));
  moss_k_end(b); /* bt */
  return b->st;
}

moss_status moss_lower_matmul(moss_kb *b, const moss_node *n) {
  switch (n->op) {
  case MOSS_OP_Gemm: return lower_gemm(b, n);
  case MOSS_OP_MatMul: return lower_matmul(b, n);
  case MOSS_OP_Det: return lower_det(b, n);
  default: return moss_kb_fail(b, MOSS_E_INTERNAL, "not a matmul-family operator");
  }
}
