/* lower_winograd.c - Winograd F(4x4, 3x3) for the stride-1 3x3 Conv
 * (docs/kernel.md "Winograd"): each 4x4 block of outputs of a channel pair
 * comes from a 6x6 input tile d and the 3x3 kernel g as
 *
 *   y = A^T [ sum over c of (G g G^T) . (B^T d B) ] A
 *
 * (. elementwise), 36 multiplies per 16 outputs instead of 144. The sum
 * over input channels is, for each of the 36 positions of the 6x6 tile, a
 * matrix product M[pos] = U[pos] V[pos] (M x C times C x tiles) on the
 * register tile, U = G g G^T transformed and packed at compile time. In
 * arena scratch: the input copied into 4 column phases (so a tile's six
 * columns of consecutive tiles are consecutive elements), V[c][pos][tile]
 * and M[m][pos][tile] (a channel's 36 rows together: the transforms touch
 * one small block each, the products read rows 36 apart). The steps are
 * parallel over channels, positions and output channels, the loops
 * threads take. Its rounding error is several times the direct sum's and
 * exceeds DESIGN.md's float tolerance (bench/winograd_error.py), so it is
 * taken only when asked for (moss compile --winograd, MOSS_WINOGRAD=on). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lower.h"

/* The transforms for the points 0, 1, -1, 1/2, -1/2 and infinity, by the
 * Toom-Cook construction (Lavin and Gray 2016): with M(x) the product of
 * (x - p) over the finite points and M_j(x) = M(x) / (x - p_j), row j of
 * B^T holds the coefficients of M_j (the infinite point's row: of M), row
 * j of G is p_j^k / M_j(p_j), and column j of A^T is the powers p_j^i.
 * Points of magnitude at most 1 keep the transforms' coefficients small
 * (B^T's largest is 5/4 against 5 for the usual 0, +-1, +-2), which more
 * than halves the rounding error (docs/kernel.md "Winograd"). */
static double BT[6][6], G[6][3], AT[4][6];

static void transforms(void) {
  static const double pts[5] = {0, 1, -1, 0.5, -0.5};
  static int done;
  double mx[7] = {1, 0, 0, 0, 0, 0, 0}; /* M(x), lowest power first */
  int i, j, k, deg = 0;
  if (done) return;
  for (j = 0; j < 5; j++) { /* M(x) *= (x - p_j) */
    for (k = ++deg; k >= 0; k--) mx[k] = (k ? mx[k - 1] : 0) - pts[j] * mx[k];
  }
  for (j = 0; j < 5; j++) {
    double mj[5], f = 1;
    /* M_j = M / (x - p_j), by synthetic division from the top. */
    mj[4] = mx[5];
    for (k = 4; k >= 1; k--) mj[k - 1] = mx[k] + pts[j] * mj[k];
    for (k = 0; k < 6; k++) BT[j][k] = k < 5 ? mj[k] : 0;
    for (k = 0; k < 5; k++)
      if (k != j) f *= pts[j] - pts[k];
    for (k = 0; k < 3; k++) G[j][k] = (k == 0 ? 1 : k == 1 ? pts[j] : pts[j] * pts[j]) / f;
    for (i = 0; i < 4; i++) AT[i][j] = i == 0 ? 1 : i == 1 ? pts[j] : i == 2 ? pts[j] * pts[j] : pts[j] * pts[j] * pts[j];
  }
  for (k = 0; k < 6; k++) BT[5][k] = mx[k];
  for (k = 0; k < 3; k++) G[5][k] = k == 2;
  for (i = 0; i < 4; i++) AT[i][5] = i == 3;
  done = 1;
}

#define WINO_MAX_SCRATCH ((int64_t)1 << 28)

/* MOSS_WINOGRAD: "on" (or 1) takes it wherever it applies, "off" (or 0)
 * nowhere; unset: the default, moss_winograd_default. */
static int enabled(void) {
  const char *e = getenv("MOSS_WINOGRAD");
  if (e && (!strcmp(e, "on") || !strcmp(e, "1"))) return 1;
  if (e && (!strcmp(e, "off") || !strcmp(e, "0"))) return 0;
  return MOSS_WINOGRAD_DEFAULT;
}

int64_t moss_winograd_plan(const moss_node *n, const moss_kernel_cpu *cpu, int64_t pt, int64_t pl,
                           moss_wino *p) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1], *y = n->outputs[0];
  moss_kb probe;
  int mr, nr, lanes;
  int64_t xe, ve, me;
  memset(p, 0, sizeof *p);
  memset(&probe, 0, sizeof probe);
  if (cpu) probe.cpu = *cpu;
  if (!enabled() || n->op != MOSS_OP_Conv || n->sparse || !w->data || x->rank != 4 || w->rank != 4 ||
      x->dtype != MOSS_DT_F32 || w->dtype != MOSS_DT_F32 || y->dtype != MOSS_DT_F32 ||
      w->dims[2] != 3 || w->dims[3] != 3 || w->dims[1] != x->dims[1] ||
      !moss_tile_shape(&probe, MOSS_DT_F32, &mr, &nr, &lanes))
    return 0;
  p->N = x->dims[0], p->C = x->dims[1], p->M = w->dims[0];
  p->H = x->dims[2], p->W = x->dims[3], p->OH = y->dims[2], p->OW = y->dims[3];
  p->pt = pt, p->pl = pl;
  /* Whole 4x4 blocks, and enough of them and of channels for the
   * products to pay for the transforms. */
  if (p->OH % 4 || p->OW % 4 || p->OH < 8 || p->OW < 8 || p->C < 8 || p->M < 8 || p->N < 1) return 0;
  p->TH = p->OH / 4, p->TW = p->OW / 4, p->T = p->TH * p->TW;
  p->Tp = (p->T + 15) / 16 * 16;
  p->Hp = p->OH + 2, p->Up = p->TW + 1;
  xe = p->C * 4 * p->Hp * p->Up, ve = 36 * p->C * p->Tp, me = 36 * p->M * p->Tp;
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
static int pack_u(moss_kb *b, const moss_wino *p, const float *w, int mr) {
  float *u = moss_arena_alloc(b->arena, sizeof *u * (size_t)(36 * p->M * p->C), 64);
  int64_t m, c, x0;
  int i, j, k;
  if (!u) {
    moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
    return 0;
  }
  for (m = 0; m < p->M; m++) {
    x0 = m / mr * mr;
    int64_t bw = p->M - x0 < mr ? p->M - x0 : mr;
    for (c = 0; c < p->C; c++) {
      const float *g = w + (m * p->C + c) * 9;
      double t[6][3];
      for (i = 0; i < 6; i++)
        for (j = 0; j < 3; j++) {
          t[i][j] = 0;
          for (k = 0; k < 3; k++) t[i][j] += G[i][k] * g[k * 3 + j];
        }
      for (i = 0; i < 6; i++)
        for (j = 0; j < 6; j++) {
          double s = 0;
          for (k = 0; k < 3; k++) s += t[i][k] * G[j][k];
          u[(i * 6 + j) * p->M * p->C + x0 * p->C + c * bw + (m - x0)] = (float)s;
        }
    }
  }
  return moss_k_table(b, "U = G g G^T, per position, packed in blocks of rows", MOSS_DT_F32, 36 * p->M * p->C, u);
}

/* V for |vl| tiles of row |th| of channel |c| from column tile |tw| on. */
static void input_tiles(moss_kb *b, const moss_wino *p, int xs, int vs, moss_kx *c, moss_kx *th, moss_kx *tw, int vl) {
  moss_kx *d[6][6], *t[6][6], *col[6], *tt;
  char name[16];
  int i, j, k;
  for (i = 0; i < 6; i++)
    for (k = 0; k < 6; k++) {
      moss_kx *at = moss_k_add(
          b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, moss_k_addc(b, moss_k_mulc(b, c, 4), k % 4), p->Hp),
                                       moss_k_addc(b, moss_k_mulc(b, th, 4), i)),
                         p->Up),
          moss_k_addc(b, tw, k / 4));
      snprintf(name, sizeof name, "d%d%d", i, k);
      d[i][k] = moss_k_let(b, name, vl > 1 ? moss_k_vload(b, xs, at, vl) : moss_k_load(b, xs, at));
    }
  for (i = 0; i < 6; i++)
    for (k = 0; k < 6; k++) { /* t = B^T d */
      for (j = 0; j < 6; j++) col[j] = d[j][k];
      snprintf(name, sizeof name, "t%d%d", i, k);
      t[i][k] = moss_k_let(b, name, lin(b, BT[i], col, 6));
    }
  tt = moss_k_let(b, "t", moss_k_add(b, moss_k_mulc(b, th, p->TW), tw));
  for (i = 0; i < 6; i++)
    for (j = 0; j < 6; j++) /* (B^T d) B */
      moss_k_store(b, vs, moss_k_add(b, moss_k_mulc(b, moss_k_addc(b, moss_k_mulc(b, c, 36), i * 6 + j), p->Tp), tt),
                   lin(b, BT[j], t[i], 6));
}

void moss_lower_winograd(moss_kb *b, const moss_node *n, const moss_wino *p) {
  int xb = moss_k_input(b, 0), yb = moss_k_output(b, 0), xs, vs, ms, mr, nr, lanes, i, j, k, r;
  const moss_value *bias = moss_node_input(n, 2);
  moss_kx *bb, *c, *yy, *u, *th, *tw, *d[6][6], *t[6][6], *col[6], *m, *pos, *bv, *tt;
  int vl, pass;
  moss_tile tile;
  char name[16];
  transforms();
  moss_tile_shape(b, MOSS_DT_F32, &mr, &nr, &lanes);
  xs = moss_k_arena_scratch(b, "xph", MOSS_DT_F32, p->C * 4 * p->Hp * p->Up, p->xoff);
  vs = moss_k_arena_scratch(b, "V", MOSS_DT_F32, 36 * p->C * p->Tp, p->voff);
  ms = moss_k_arena_scratch(b, "M", MOSS_DT_F32, 36 * p->M * p->Tp, p->moff);
  moss_k_comment(b, "Winograd F(4x4, 3x3): %lld x %lld tiles of 4x4 outputs, 36 products of %lld x %lld x %lld",
                 (long long)p->TH, (long long)p->TW, (long long)p->M, (long long)p->Tp, (long long)p->C);
  bb = moss_k_range(b, "b", p->N, MOSS_KL_SERIAL);
  /* The input in 4 column phases: xph[c][r][y][u] = x[c][y - pt][4u + r - pl], 0 outside. */
  c = moss_k_range(b, "c", p->C, MOSS_KL_PARALLEL);
  for (r = 0; r < 4; r++) {
    moss_kx *iy, *rowok, *dst, *src, *ix;
    yy = moss_k_range(b, "y", p->Hp, MOSS_KL_PARALLEL);
    iy = moss_k_let(b, "iy", moss_k_addc(b, yy, -p->pt));
    rowok = moss_k_bin(b, MOSS_KX_LAND, moss_k_bin(b, MOSS_KX_GE, iy, moss_k_idx(b, 0)),
                       moss_k_bin(b, MOSS_KX_LT, iy, moss_k_idx(b, p->H)));
    dst = moss_k_let(b, "dst", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, moss_k_addc(b, moss_k_mulc(b, c, 4), r), p->Hp), yy), p->Up));
    src = moss_k_let(b, "src", moss_k_add(b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bb, p->C), c), p->H * p->W),
                                          moss_k_mulc(b, iy, p->W)));
    u = moss_k_range(b, "u", p->Up, MOSS_KL_PARALLEL);
    ix = moss_k_addc(b, moss_k_mulc(b, u, 4), r - p->pl);
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
  /* V[c][pos][tile] = (B^T d B)[pos], d the tile's 6x6 input: |vl| tiles
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
    input_tiles(b, p, xs, vs, c, th, tw, vl);
    if (pass == 0) moss_k_end(b); /* tw */
  }
  moss_k_end(b); /* th */
  moss_k_end(b); /* c */
  if (p->Tp > p->T) { /* the columns that round the tiles up to whole vectors: zeros */
    moss_kx *row = moss_k_range(b, "row", 36 * p->C, MOSS_KL_PARALLEL), *jj;
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
  tile.s = pack_u(b, p, (const float *)n->inputs[1]->data, mr);
  tile.s_packed = 1;
  pos = moss_k_range(b, "pos", 36, MOSS_KL_PARALLEL);
  tile.s_at = moss_k_mulc(b, pos, p->M * p->C);
  tile.v = vs;
  tile.v_at = moss_k_mulc(b, pos, p->Tp);
  tile.v_k = 36 * p->Tp;
  tile.y = ms;
  tile.y_at = moss_k_mulc(b, pos, p->Tp);
  tile.y_row = 36 * p->Tp;
  moss_tile_product(b, &tile);
  moss_k_end(b); /* pos */
  /* y = A^T M A, then the bias and the activation. */
  moss_k_comment(b, "output tiles: y = A^T M A");
  m = moss_k_range(b, "m", p->M, MOSS_KL_PARALLEL);
  bv = bias ? moss_k_let(b, "bias", moss_k_load(b, moss_k_input(b, 2), m)) : NULL;
  th = moss_k_range(b, "th", p->TH, MOSS_KL_SERIAL);
  tw = moss_k_range(b, "tw", p->TW, MOSS_KL_PARALLEL);
  tt = moss_k_let(b, "t", moss_k_add(b, moss_k_mulc(b, th, p->TW), tw));
  for (i = 0; i < 6; i++)
    for (j = 0; j < 6; j++) {
      snprintf(name, sizeof name, "m%d%d", i, j);
      d[i][j] = moss_k_let(b, name, moss_k_load(b, ms, moss_k_add(b, moss_k_mulc(b, moss_k_addc(b, moss_k_mulc(b, m, 36), i * 6 + j), p->Tp), tt)));
    }
  for (i = 0; i < 4; i++)
    for (j = 0; j < 6; j++) { /* A^T M */
      for (k = 0; k < 6; k++) col[k] = d[k][j];
      snprintf(name, sizeof name, "a%d%d", i, j);
      t[i][j] = moss_k_let(b, name, lin(b, AT[i], col, 6));
    }
  for (i = 0; i < 4; i++) {
    moss_kx *row = moss_k_let(b, "yr", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bb, p->M), m), p->OH),
                                                                moss_k_addc(b, moss_k_mulc(b, th, 4), i)),
                                                  p->OW));
    for (j = 0; j < 4; j++) { /* (A^T M) A */
      moss_kx *v = lin(b, AT[j], t[i], 6);
      if (bv) v = moss_k_bin(b, MOSS_KX_ADD, v, bv);
      if (n->act.kind) {
        snprintf(name, sizeof name, "o%d%d", i, j);
        v = moss_k_act(b, n, moss_k_let(b, name, v));
      }
      moss_k_store(b, yb, moss_k_add(b, row, moss_k_addc(b, moss_k_mulc(b, tw, 4), j)), v);
    }
  }
  moss_k_end(b); /* tw */
  moss_k_end(b); /* th */
  moss_k_end(b); /* m */
  moss_k_end(b); /* b */
}
