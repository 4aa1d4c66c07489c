/* lower_winograd.c - Winograd F(m x m, 3x3) for the stride-1 3x3 Conv
 * (docs/kernel.md "Winograd"): each m x m block of outputs of a channel
 * pair comes from an n x n input tile d (n = m + 2) and the 3x3 kernel g as
 *
 *   y = A^T [ sum over c of (G g G^T) . (B^T d B) ] A
 *
 * (. elementwise): n^2 multiplies per m^2 outputs instead of 9 m^2, 16 per
 * 4 for F(2x2) (2.25x fewer), 36 per 16 for F(4x4) (4x fewer). The sum
 * over input channels is, for each of the n^2 positions of the tile, a
 * matrix product M[pos] = U[pos] V[pos] (M x C times C x tiles) on the
 * register tile, U = G g G^T transformed and packed at compile time. In
 * arena scratch: the input copied into m column phases (so a tile's n
 * columns of consecutive tiles are consecutive elements), V[c][pos][tile]
 * and M[m][pos][tile] (a channel's n^2 rows together: the transforms touch
 * one small block each, the products read rows n^2 apart). The steps are
 * parallel over channels, positions and output channels, the loops
 * threads take. F(2x2) is the default: its error is below the direct
 * sum's (fewer terms per sum). F(4x4)'s is several times it and exceeds
 * DESIGN.md's float tolerance (bench/winograd_error.py), so it is taken
 * only when asked for (moss compile --winograd, MOSS_WINOGRAD=on). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lower.h"

/* The transforms of F(m x m, 3x3), n = m + 2, by the Toom-Cook
 * construction (Lavin and Gray 2016) from n - 1 finite points and
 * infinity: with M(x) the product of (x - p) over the finite points and
 * M_j(x) = M(x) / (x - p_j), row j of B^T holds the coefficients of M_j
 * (the infinite point's row: of M), row j of G is p_j^k / M_j(p_j), and
 * column j of A^T is the powers p_j^i. F(2x2): 0, 1, -1. F(4x4): 0, 1,
 * -1, 1/2, -1/2, not the usual 0, +-1, +-2: points of magnitude at most 1
 * keep the coefficients small (B^T's largest is 5/4 against 5, A^T's 1
 * against 8), which more than halves the rounding error. */
typedef struct xforms {
  int m, n;
  double BT[WINO_MAX_N][WINO_MAX_N], G[WINO_MAX_N][3], AT[WINO_MAX_N][WINO_MAX_N];
} xforms;

static void transforms(int m, xforms *x) {
  static const double pts2[3] = {0, 1, -1}, pts4[5] = {0, 1, -1, 0.5, -0.5};
  const double *pts = m == 2 ? pts2 : pts4;
  double mx[WINO_MAX_N + 1] = {1}; /* M(x), lowest power first */
  int i, j, k, deg = 0, n = m + 2, nf = n - 1;
  memset(x, 0, sizeof *x);
  x->m = m, x->n = n;
  for (j = 0; j < nf; j++) /* M(x) *= (x - p_j) */
    for (k = ++deg; k >= 0; k--) mx[k] = (k ? mx[k - 1] : 0) - pts[j] * mx[k];
  for (j = 0; j < nf; j++) {
    double mj[WINO_MAX_N], f = 1, pw = 1;
    /* M_j = M / (x - p_j), by synthetic division from the top. */
    mj[nf - 1] = mx[nf];
    for (k = nf - 1; k >= 1; k--) mj[k - 1] = mx[k] + pts[j] * mj[k];
    for (k = 0; k < nf; k++) x->BT[j][k] = mj[k];
    for (k = 0; k < nf; k++)
      if (k != j) f *= pts[j] - pts[k];
    for (k = 0; k < 3; k++, pw *= pts[j]) x->G[j][k] = pw / f;
    for (i = 0, pw = 1; i < m; i++, pw *= pts[j]) x->AT[i][j] = pw;
  }
  for (k = 0; k < n; k++) x->BT[nf][k] = mx[k];
  x->G[nf][2] = 1;
  x->AT[m - 1][nf] = 1;
}

#define WINO_MAX_SCRATCH ((int64_t)1 << 28)

/* MOSS_WINOGRAD: "on" (or 1) takes F(4x4) wherever it applies (F(2x2)
 * where the output is not whole 4x4 blocks), "off" (or 0) no Winograd at
 * all; unset (the default): F(2x2), whose error stays within the float
 * tolerance. */
static int block(void) {
  const char *e = getenv("MOSS_WINOGRAD");
  if (e && (!strcmp(e, "on") || !strcmp(e, "1"))) return 4;
  if (e && (!strcmp(e, "off") || !strcmp(e, "0"))) return 0;
  return MOSS_WINOGRAD_DEFAULT;
}

int64_t moss_winograd_plan(const moss_node *n, const moss_kernel_cpu *cpu, int64_t pt, int64_t pl,
                           moss_wino *p) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1], *y = n->outputs[0];
  moss_kb probe;
  int mr, nr, lanes, m = block();
  int64_t xe, ve, me, np;
  memset(p, 0, sizeof *p);
  memset(&probe, 0, sizeof probe);
  if (cpu) probe.cpu = *cpu;
  if (!m || n->op != MOSS_OP_Conv || n->sparse || !w->data || x->rank != 4 || w->rank != 4 ||
      x->dtype != MOSS_DT_F32 || w->dtype != MOSS_DT_F32 || y->dtype != MOSS_DT_F32 ||
      w->dims[2] != 3 || w->dims[3] != 3 || w->dims[1] != x->dims[1] ||
      !moss_tile_shape(&probe, MOSS_DT_F32, &mr, &nr, &lanes))
    return 0;
  p->N = x->dims[0], p->C = x->dims[1], p->M = w->dims[0];
  p->H = x->dims[2], p->W = x->dims[3], p->OH = y->dims[2], p->OW = y->dims[3];
  if (m == 4 && (p->OH % 4 || p->OW % 4)) m = 2; /* F(4x4) asked for: F(2x2) where 4 does not divide */
  p->m = m, p->n = m + 2;
  np = (int64_t)p->n * p->n;
  p->pt = pt, p->pl = pl;
  /* Whole m x m blocks, and enough channels for the products to pay for
   * the transforms: the multiplies saved per output grow as C M, the
   * transforms' work and traffic as C + M. Measured on the UNet's layers
   * (README): C M / (C + M) = 16 (32 and 32 channels) gains 10 %, 10.7
   * (16 and 32) and 8 (16 and 16) lose 5 to 50 %. */
  if (p->OH % m || p->OW % m || p->OH < 8 || p->OW < 8 || p->N < 1 || p->C * p->M < 16 * (p->C + p->M))
    return 0;
  p->TH = p->OH / m, p->TW = p->OW / m, p->T = p->TH * p->TW;
  p->Tp = (p->T + 15) / 16 * 16;
  p->Hp = p->OH + 2, p->Up = p->TW + (p->n - 1) / m;
  xe = p->C * m * p->Hp * p->Up, ve = np * p->C * p->Tp, me = np * p->M * p->Tp;
  if (xe > WINO_MAX_SCRATCH / 4 || ve > WINO_MAX_SCRATCH / 4 || me > WINO_MAX_SCRATCH / 4) return 0;
  p->xoff = 0;
  p->voff = (xe * 4 + 63) / 64 * 64;
  p->moff = p->voff + (ve * 4 + 63) / 64 * 64;
  p->bytes = p->moff + (me * 4 + 63) / 64 * 64;
  return p->bytes <= WINO_MAX_SCRATCH ? p->bytes : 0;
}

/* sum over i of c[i] * t[i] (|n| terms, c[i] 0 skipped, +-1 without a
 * multiply), left to right. */
static moss_kx *lin(moss_kb *b, const double *c, moss_kx *const *t, int n) {
  moss_kx *acc = NULL;
  int i;
  for (i = 0; i < n; i++) {
    moss_kx *term;
    if (c[i] == 0) continue;
    if (c[i] == 1 || c[i] == -1) term = t[i];
    else term = moss_k_bin(b, MOSS_KX_MUL, moss_k_flt(b, MOSS_DT_F32, c[i] < 0 ? -c[i] : c[i]), t[i]);
    if (!acc) acc = c[i] < 0 ? moss_k_un(b, MOSS_KX_NEG, term) : term;
    else acc = moss_k_bin(b, c[i] < 0 ? MOSS_KX_SUB : MOSS_KX_ADD, acc, term);
  }
  return acc ? acc : moss_k_flt(b, MOSS_DT_F32, 0);
}

/* U[pos][m][c] = (G g G^T)[pos] for every kernel, in float, packed per
 * position as moss_tile_pack packs S in blocks of |mr| rows (m). */
static int pack_u(moss_kb *b, const moss_wino *p, const xforms *X, const float *w, int mr) {
  int n = X->n;
  int64_t np = (int64_t)n * n;
  float *u = moss_arena_alloc(b->arena, sizeof *u * (size_t)(np * p->M * p->C), 64);
  int64_t m, c, x0, bw;
  int i, j, k;
  if (!u) {
    moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
    return 0;
  }
  for (m = 0; m < p->M; m++) {
    x0 = m / mr * mr;
    bw = p->M - x0 < mr ? p->M - x0 : mr;
    for (c = 0; c < p->C; c++) {
      const float *g = w + (m * p->C + c) * 9;
      double t[WINO_MAX_N][3];
      for (i = 0; i < n; i++)
        for (j = 0; j < 3; j++) {
          t[i][j] = 0;
          for (k = 0; k < 3; k++) t[i][j] += X->G[i][k] * g[k * 3 + j];
        }
      for (i = 0; i < n; i++)
        for (j = 0; j < n; j++) {
          double s = 0;
          for (k = 0; k < 3; k++) s += t[i][k] * X->G[j][k];
          u[(i * n + j) * p->M * p->C + x0 * p->C + c * bw + (m - x0)] = (float)s;
        }
    }
  }
  return moss_k_table(b, "U = G g G^T, per position, packed in blocks of rows", MOSS_DT_F32, np * p->M * p->C, u);
}

/* V for |vl| tiles of row |th| of channel |c| from column tile |tw| on:
 * element k of a tile's row comes from phase k % m at tw + k / m. */
static void input_tiles(moss_kb *b, const moss_wino *p, const xforms *X, int xs, int vs, moss_kx *c, moss_kx *th,
                        moss_kx *tw, int vl) {
  moss_kx *d[WINO_MAX_N][WINO_MAX_N], *t[WINO_MAX_N][WINO_MAX_N], *col[WINO_MAX_N], *tt;
  char name[32];
  int i, j, k, m = X->m, n = X->n;
  for (i = 0; i < n; i++)
    for (k = 0; k < n; k++) {
      moss_kx *at = moss_k_add(
          b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, moss_k_addc(b, moss_k_mulc(b, c, m), k % m), p->Hp),
                                       moss_k_addc(b, moss_k_mulc(b, th, m), i)),
                         p->Up),
          moss_k_addc(b, tw, k / m));
      snprintf(name, sizeof name, "d%d%d", i, k);
      d[i][k] = moss_k_let(b, name, vl > 1 ? moss_k_vload(b, xs, at, vl) : moss_k_load(b, xs, at));
    }
  for (i = 0; i < n; i++)
    for (k = 0; k < n; k++) { /* t = B^T d */
      for (j = 0; j < n; j++) col[j] = d[j][k];
      snprintf(name, sizeof name, "t%d%d", i, k);
      t[i][k] = moss_k_let(b, name, lin(b, X->BT[i], col, n));
    }
  tt = moss_k_let(b, "t", moss_k_add(b, moss_k_mulc(b, th, p->TW), tw));
  for (i = 0; i < n; i++)
    for (j = 0; j < n; j++) /* (B^T d) B */
      moss_k_store(b, vs, moss_k_add(b, moss_k_mulc(b, moss_k_addc(b, moss_k_mulc(b, c, n * n), i * n + j), p->Tp), tt),
                   lin(b, X->BT[j], t[i], n));
}

void moss_lower_winograd(moss_kb *b, const moss_node *n, const moss_wino *p) {
  int xb = moss_k_input(b, 0), yb = moss_k_output(b, 0), xs, vs, ms, mr, nr, lanes, i, j, k, r;
  const moss_value *bias = moss_node_input(n, 2);
  moss_kx *bb, *c, *yy, *u, *th, *tw, *d[WINO_MAX_N][WINO_MAX_N], *t[WINO_MAX_N][WINO_MAX_N];
  moss_kx *col[WINO_MAX_N], *m, *pos, *bv, *tt;
  int vl, pass, bm, bn, np;
  xforms X;
  moss_tile tile;
  char name[32];
  transforms(p->m, &X);
  bm = X.m, bn = X.n, np = bn * bn;
  moss_tile_shape(b, MOSS_DT_F32, &mr, &nr, &lanes);
  xs = moss_k_arena_scratch(b, "xph", MOSS_DT_F32, p->C * bm * p->Hp * p->Up, p->xoff);
  vs = moss_k_arena_scratch(b, "V", MOSS_DT_F32, np * p->C * p->Tp, p->voff);
  ms = moss_k_arena_scratch(b, "M", MOSS_DT_F32, np * p->M * p->Tp, p->moff);
  moss_k_comment(b, "Winograd F(%dx%d, 3x3): %lld x %lld tiles of %dx%d outputs, %d products of %lld x %lld x %lld",
                 bm, bm, (long long)p->TH, (long long)p->TW, bm, bm, np, (long long)p->M, (long long)p->Tp,
                 (long long)p->C);
  bb = moss_k_range(b, "b", p->N, MOSS_KL_SERIAL);
  /* The input in m column phases: xph[c][r][y][u] = x[c][y - pt][m u + r - pl], 0 outside. */
  c = moss_k_range(b, "c", p->C, MOSS_KL_PARALLEL);
  for (r = 0; r < bm; r++) {
    moss_kx *iy, *rowok, *dst, *src, *ix;
    yy = moss_k_range(b, "y", p->Hp, MOSS_KL_PARALLEL);
    iy = moss_k_let(b, "iy", moss_k_addc(b, yy, -p->pt));
    rowok = moss_k_bin(b, MOSS_KX_LAND, moss_k_bin(b, MOSS_KX_GE, iy, moss_k_idx(b, 0)),
                       moss_k_bin(b, MOSS_KX_LT, iy, moss_k_idx(b, p->H)));
    dst = moss_k_let(b, "dst", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, moss_k_addc(b, moss_k_mulc(b, c, bm), r), p->Hp), yy), p->Up));
    src = moss_k_let(b, "src", moss_k_add(b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bb, p->C), c), p->H * p->W),
                                          moss_k_mulc(b, iy, p->W)));
    u = moss_k_range(b, "u", p->Up, MOSS_KL_PARALLEL);
    ix = moss_k_addc(b, moss_k_mulc(b, u, bm), r - p->pl);
    moss_k_store(b, xs, moss_k_add(b, dst, u),
                 moss_k_load_or(b, xb, moss_k_add(b, src, ix),
                                moss_k_bin(b, MOSS_KX_LAND, rowok,
                                           moss_k_bin(b, MOSS_KX_LAND, moss_k_bin(b, MOSS_KX_GE, ix, moss_k_idx(b, 0)),
                                                      moss_k_bin(b, MOSS_KX_LT, ix, moss_k_idx(b, p->W)))),
                                moss_k_flt(b, MOSS_DT_F32, 0)));
    moss_k_end(b); /* u */
    moss_k_end(b); /* y */
  }
  moss_k_end(b); /* c */
  /* V[c][pos][tile] = (B^T d B)[pos], d the tile's n x n input: |vl| tiles
   * of a row at a time, whose columns are consecutive elements of each
   * phase; a row that is not whole vectors ends with a vector that ends at
   * its end (it recomputes a few tiles, to the same values). */
  vl = 1;
  while (vl * 2 <= lanes && vl * 2 <= p->TW) vl *= 2;
  moss_k_comment(b, "input tiles: V = B^T d B, %d tiles at a time", vl);
  c = moss_k_range(b, "c", p->C, MOSS_KL_PARALLEL);
  th = moss_k_range(b, "th", p->TH, MOSS_KL_SERIAL);
  for (pass = 0; pass < 2; pass++) {
    int64_t full = p->TW / vl * vl;
    if (pass == 0) tw = moss_k_for(b, "tw", moss_k_idx(b, 0), moss_k_idx(b, full), vl, MOSS_KL_PARALLEL, 0);
    else if (full < p->TW) tw = moss_k_idx(b, p->TW - vl);
    else break;
    input_tiles(b, p, &X, xs, vs, c, th, tw, vl);
    if (pass == 0) moss_k_end(b); /* tw */
  }
  moss_k_end(b); /* th */
  moss_k_end(b); /* c */
  if (p->Tp > p->T) { /* the columns that round the tiles up to whole vectors: zeros */
    moss_kx *row = moss_k_range(b, "row", np * p->C, MOSS_KL_PARALLEL), *jj;
    jj = moss_k_for(b, "j", moss_k_idx(b, p->T), moss_k_idx(b, p->Tp), 1, MOSS_KL_PARALLEL, 0);
    moss_k_store(b, vs, moss_k_add(b, moss_k_mulc(b, row, p->Tp), jj), moss_k_flt(b, MOSS_DT_F32, 0));
    moss_k_end(b);
    moss_k_end(b);
  }
  /* M[pos] = U[pos] V[pos], each on the register tile. */
  memset(&tile, 0, sizeof tile);
  tile.dt = MOSS_DT_F32;
  tile.M = p->M;
  tile.N = p->Tp;
  tile.K = p->C;
  tile.s = pack_u(b, p, &X, (const float *)n->inputs[1]->data, mr);
  tile.s_packed = 1;
  pos = moss_k_range(b, "pos", np, MOSS_KL_PARALLEL);
  tile.s_at = moss_k_mulc(b, pos, p->M * p->C);
  tile.v = vs;
  tile.v_at = moss_k_mulc(b, pos, p->Tp);
  tile.v_k = np * p->Tp;
  tile.y = ms;
  tile.y_at = moss_k_mulc(b, pos, p->Tp);
  tile.y_row = np * p->Tp;
  moss_tile_product(b, &tile);
  moss_k_end(b); /* pos */
  /* y = A^T M A, then the bias and the activation. */
  moss_k_comment(b, "output tiles: y = A^T M A");
  m = moss_k_range(b, "m", p->M, MOSS_KL_PARALLEL);
  bv = bias ? moss_k_let(b, "bias", moss_k_load(b, moss_k_input(b, 2), m)) : NULL;
  th = moss_k_range(b, "th", p->TH, MOSS_KL_SERIAL);
  tw = moss_k_range(b, "tw", p->TW, MOSS_KL_PARALLEL);
  tt = moss_k_let(b, "t", moss_k_add(b, moss_k_mulc(b, th, p->TW), tw));
  for (i = 0; i < bn; i++)
    for (j = 0; j < bn; j++) {
      snprintf(name, sizeof name, "m%d%d", i, j);
      d[i][j] = moss_k_let(b, name, moss_k_load(b, ms, moss_k_add(b, moss_k_mulc(b, moss_k_addc(b, moss_k_mulc(b, m, np), i * bn + j), p->Tp), tt)));
    }
  for (i = 0; i < bm; i++)
    for (j = 0; j < bn; j++) { /* A^T M */
      for (k = 0; k < bn; k++) col[k] = d[k][j];
      snprintf(name, sizeof name, "a%d%d", i, j);
      t[i][j] = moss_k_let(b, name, lin(b, X.AT[i], col, bn));
    }
  for (i = 0; i < bm; i++) {
    moss_kx *row = moss_k_let(b, "yr", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bb, p->M), m), p->OH),
                                                                moss_k_addc(b, moss_k_mulc(b, th, bm), i)),
                                                  p->OW));
    for (j = 0; j < bm; j++) { /* (A^T M) A, the bias, the residual, the activation */
      moss_kx *v = lin(b, X.AT[j], t[i], bn), *at = moss_k_add(b, row, moss_k_addc(b, moss_k_mulc(b, tw, bm), j));
      if (bv) v = moss_k_bin(b, MOSS_KX_ADD, v, bv);
      snprintf(name, sizeof name, "o%d%d", i, j);
      moss_k_store(b, yb, at, moss_lower_conv_out(b, n, v, at, name));
    }
  }
  moss_k_end(b); /* tw */
  moss_k_end(b); /* th */
  moss_k_end(b); /* m */
  moss_k_end(b); /* b */
}
