/* lower_conv.c - Conv and ConvTranspose as direct convolution,
 * specialized to the node's shapes. Conv walks each output row (the last
 * spatial dimension) and, per input channel and kernel tap, adds one
 * weight times a contiguous (or strided) input row into it: the innermost
 * loop runs over the output row with bounds computed here, so it has no
 * per-element check and vectorizes. Where every tap of a short kernel row
 * lies inside the input, one loop adds all the taps at once. ConvTranspose
 * scatters each input row into the output the same way. The fused
 * activation (n->act) is applied to each finished row. A pointwise Conv
 * with a constant weight is a matrix product per image and takes the
 * register tile (lower_tile.c) where the machine has one. A Conv whose weight
 * the sparse pass encoded (n->sparse) is not described here:
 * moss_lower_takes_conv leaves it to lower_sparse.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lower.h"
#include "lower_quant.h"
#include "../ops/sparse.h"

/* The geometry of one node, spatial dimensions only. */
typedef struct geom {
  int nsp;
  int64_t in[MOSS_MAX_RANK], out[MOSS_MAX_RANK], k[MOSS_MAX_RANK];
  int64_t s[MOSS_MAX_RANK], d[MOSS_MAX_RANK], p[MOSS_MAX_RANK]; /* p: begin pad */
} geom;

int moss_lower_takes_conv(const moss_node *n) { return !n->sparse; }

static int64_t floordiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int64_t ceildiv(int64_t a, int64_t b) { return -floordiv(-a, b); }

static void ints(const moss_node *n, const char *name, int cnt, int64_t def, int64_t *out) {
  const int64_t *a;
  int c = moss_attr_ints(n, name, &a), k;
  for (k = 0; k < cnt; k++) out[k] = a && c == cnt ? a[k] : def;
}

/* Fills |g| from the node's attributes and its already inferred shapes. */
static void get_geom(const moss_node *n, geom *g) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  const moss_value *w = n->inputs[n->op == MOSS_OP_QLinearConv ? 3 : 1];
  const char *ap = moss_attr_string(n, "auto_pad", "NOTSET");
  int64_t pads[2 * MOSS_MAX_RANK], op[MOSS_MAX_RANK];
  int k, same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
  int upper = !strcmp(ap, "SAME_UPPER");
  g->nsp = x->rank - 2;
  ints(n, "strides", g->nsp, 1, g->s);
  ints(n, "dilations", g->nsp, 1, g->d);
  ints(n, "pads", 2 * g->nsp, 0, pads);
  ints(n, "output_padding", g->nsp, 0, op);
  for (k = 0; k < g->nsp; k++) {
    int64_t ek, total;
    g->in[k] = x->dims[k + 2];
    g->out[k] = y->dims[k + 2];
    g->k[k] = w->dims[k + 2];
    ek = (g->k[k] - 1) * g->d[k] + 1;
    g->p[k] = !strcmp(ap, "NOTSET") ? pads[k] : 0;
    if (n->op == MOSS_OP_Conv) {
      if (same) {
        total = (g->out[k] - 1) * g->s[k] + ek - g->in[k];
        if (total < 0) total = 0;
        g->p[k] = upper ? total / 2 : total - total / 2;
      }
    } else if (same || moss_node_find_attr(n, "output_shape")) {
      total = g->s[k] * (g->in[k] - 1) + op[k] + ek - g->out[k];
      /* A larger output than the full one is extra room at the end. */
      if (total < 0) g->p[k] = 0;
      else g->p[k] = upper ? total / 2 : total - total / 2;
    }
  }
  /* A pointwise convolution over the whole plane is one long row. */
  {
    int pw = 1;
    int64_t in = 1, out = 1;
    for (k = 0; k < g->nsp; k++) {
      if (g->k[k] != 1 || g->s[k] != 1 || g->p[k] != 0 || g->in[k] != g->out[k]) pw = 0;
      in *= g->in[k];
      out *= g->out[k];
    }
    if (pw && g->nsp > 1) {
      g->nsp = 1;
      g->in[0] = in;
      g->out[0] = out;
      g->k[0] = g->s[0] = g->d[0] = 1;
      g->p[0] = 0;
    }
  }
}

static int64_t prod(const int64_t *d, int from, int to) {
  int64_t p = 1;
  int k;
  for (k = from; k < to; k++) p *= d[k];
  return p;
}

/* Range [lo, hi) of positions |j| in [0, nj) with 0 <= j*s + off < lim. */
static void range(int64_t nj, int64_t s, int64_t off, int64_t lim, int64_t *lo, int64_t *hi) {
  *lo = ceildiv(-off, s);
  *hi = floordiv(lim - 1 - off, s) + 1;
  if (*lo < 0) *lo = 0;
  if (*hi > nj) *hi = nj;
  if (*hi < *lo) *hi = *lo;
}

/* The row offset of the outer spatial positions |v|[0..nsp-1) in a
 * tensor of spatial dims |d| (the last dim excluded): v0 * d1*d2.. + ... */
static moss_kx *outer_offset(moss_kb *b, moss_kx *const *v, const int64_t *d, int nsp) {
  moss_kx *e = moss_k_idx(b, 0);
  int k;
  for (k = 0; k < nsp - 1; k++) e = moss_k_add(b, e, moss_k_mulc(b, v[k], prod(d, k + 1, nsp)));
  return e;
}

/* |e| as a local named |name|, unless it is a variable or constant already. */
static moss_kx *named(moss_kb *b, const char *name, moss_kx *e) {
  return e->op == MOSS_KX_VAR || e->op == MOSS_KX_CONST ? e : moss_k_let(b, name, e);
}

/* x + c, written x - |c| for a negative c. */
static moss_kx *offset(moss_kb *b, moss_kx *x, int64_t c) {
  return c < 0 ? moss_k_bin(b, MOSS_KX_SUB, x, moss_k_idx(b, -c)) : moss_k_addc(b, x, c);
}

/* The position a kernel tap |kk| reaches from position |o| in one spatial
 * dimension: o * s + kk * d - p. */
static moss_kx *tap_pos(moss_kb *b, moss_kx *o, moss_kx *kk, int64_t s, int64_t d, int64_t p) {
  return offset(b, moss_k_add(b, moss_k_mulc(b, o, s), moss_k_mulc(b, kk, d)), -p);
}

/* Opens `if (0 <= pos < lim)`, where |pos| ranges over [lo, hi] (both
 * ends reached): returns 1, or 0 when every position is inside. */
static int open_inside(moss_kb *b, moss_kx *pos, int64_t lo, int64_t hi, int64_t lim) {
  moss_kx *ge = moss_k_bin(b, MOSS_KX_GE, pos, moss_k_idx(b, 0));
  moss_kx *lt = moss_k_bin(b, MOSS_KX_LT, pos, moss_k_idx(b, lim));
  if (lo >= 0 && hi < lim) return 0;
  moss_k_if(b, lo >= 0 ? lt : hi < lim ? ge : moss_k_bin(b, MOSS_KX_LAND, ge, lt));
  return 1;
}

/* buf[at] += v */
static void accumulate(moss_kb *b, int buf, moss_kx *at, moss_kx *v) {
  moss_k_store(b, buf, at, moss_k_bin(b, MOSS_KX_ADD, moss_k_load(b, buf, at), v));
}

/* One tap of the kernel row, weight |w|, over positions j in [lo, hi):
 * y[yr + j] += w * x[xr + j*S + off] for Conv, y[yr + j*S + off] +=
 * w * x[xr + j] for ConvTranspose. */
static void tap_loop(moss_kb *b, int conv, int64_t lo, int64_t hi, int64_t S, int64_t off,
                     moss_kx *w, moss_kx *yr, moss_kx *xr) {
  moss_kx *j = moss_k_for(b, "j", moss_k_idx(b, lo), moss_k_idx(b, hi), 1, MOSS_KL_PARALLEL, 0);
  moss_kx *far = offset(b, moss_k_mulc(b, j, S), off);
  moss_kx *xv = moss_k_load(b, moss_k_input(b, 0), moss_k_add(b, xr, conv ? far : j));
  accumulate(b, moss_k_output(b, 0), moss_k_add(b, yr, conv ? j : far),
             moss_k_bin(b, MOSS_KX_MUL, w, xv));
  moss_k_end(b);
}

/* The per-tap update of the last spatial dimension: for each tap kl of
 * the kernel row, y[yr + dst(j)] += w[wr + kl] * x[xr + src(j)] over the
 * valid j, with dst(j) = j and src(j) = j*S + kl*D - P for Conv (j runs
 * over output positions) and the other way round for ConvTranspose (j
 * runs over input positions). */
static void row_taps(moss_kb *b, const geom *g, int conv, moss_kx *yr, moss_kx *xr, moss_kx *wr) {
  int L = g->nsp - 1, xb = moss_k_input(b, 0), wb = moss_k_input(b, 1), yb = moss_k_output(b, 0);
  int64_t K = g->k[L], S = g->s[L], D = g->d[L], P = g->p[L];
  int64_t nj = conv ? g->out[L] : g->in[L], lim = conv ? g->in[L] : g->out[L];
  int64_t kl, lo, hi;
  moss_kx *j, *w[16];
  char name[16];
  if (K <= 16 && conv) {
    /* Where every tap of the kernel row is inside the input (the interior
     * [jl, jh)), one loop adds all taps: one load and store of the output
     * per K multiply-adds. The border positions get per-tap loops. */
    int64_t jl = 0, jh = nj, tl[16], th[16];
    for (kl = 0; kl < K; kl++) {
      range(nj, S, kl * D - P, lim, &tl[kl], &th[kl]);
      if (tl[kl] > jl) jl = tl[kl];
      if (th[kl] < jh) jh = th[kl];
    }
    if (jh > jl) {
      moss_kx *sum = NULL;
      /* The weights go into scalars first: a load inside the loop could
       * alias the row being written and block vectorization. */
      for (kl = 0; kl < K; kl++) {
        snprintf(name, sizeof name, "w%d", (int)kl);
        w[kl] = moss_k_let(b, name, moss_k_load(b, wb, moss_k_addc(b, wr, kl)));
      }
      for (kl = 0; kl < K; kl++) {
        if (th[kl] <= tl[kl]) continue;
        if (tl[kl] < jl) tap_loop(b, 1, tl[kl], jl, S, kl * D - P, w[kl], yr, xr);
        if (th[kl] > jh) tap_loop(b, 1, jh, th[kl], S, kl * D - P, w[kl], yr, xr);
      }
      j = moss_k_for(b, "j", moss_k_idx(b, jl), moss_k_idx(b, jh), 1, MOSS_KL_PARALLEL, 0);
      for (kl = 0; kl < K; kl++) {
        moss_kx *at = moss_k_add(b, xr, offset(b, moss_k_mulc(b, j, S), kl * D - P));
        moss_kx *t = moss_k_bin(b, MOSS_KX_MUL, w[kl], moss_k_load(b, xb, at));
        sum = sum ? moss_k_bin(b, MOSS_KX_ADD, sum, t) : t;
      }
      accumulate(b, yb, moss_k_add(b, yr, j), sum);
      moss_k_end(b);
      return;
    }
  }
  if (K <= 16) {
    for (kl = 0; kl < K; kl++) {
      range(nj, S, kl * D - P, lim, &lo, &hi);
      if (hi <= lo) continue;
      snprintf(name, sizeof name, "w%d", (int)kl);
      w[kl] = moss_k_let(b, name, moss_k_load(b, wb, moss_k_addc(b, wr, kl)));
      tap_loop(b, conv, lo, hi, S, kl * D - P, w[kl], yr, xr);
    }
    return;
  }
  {
    /* Long kernel rows: the bounds come from small tables. */
    int64_t *tlo = moss_arena_alloc(b->arena, sizeof *tlo * (size_t)K, 8);
    int64_t *thi = moss_arena_alloc(b->arena, sizeof *thi * (size_t)K, 8);
    int blo, bhi;
    moss_kx *k, *wk, *off, *s;
    if (!tlo || !thi) {
      moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
      return;
    }
    for (kl = 0; kl < K; kl++) range(nj, S, kl * D - P, lim, &tlo[kl], &thi[kl]);
    blo = moss_k_table(b, "lo", MOSS_DT_I64, K, tlo);
    bhi = moss_k_table(b, "hi", MOSS_DT_I64, K, thi);
    k = moss_k_range(b, "kl", K, MOSS_KL_REDUCE);
    wk = moss_k_let(b, "w", moss_k_load(b, wb, moss_k_add(b, wr, k)));
    off = moss_k_let(b, "off", offset(b, moss_k_mulc(b, k, D), -P));
    j = moss_k_for(b, "j", moss_k_load(b, blo, k), moss_k_load(b, bhi, k), 1, MOSS_KL_PARALLEL, 0);
    s = moss_k_add(b, moss_k_mulc(b, j, S), off);
    accumulate(b, yb, moss_k_add(b, yr, conv ? j : s),
               moss_k_bin(b, MOSS_KX_MUL, wk, moss_k_load(b, xb, moss_k_add(b, xr, conv ? s : j))));
    moss_k_end(b);
    moss_k_end(b);
  }
}

/* The fused residual of a float Conv (passes/fuse.c: input 3, the
 * output's shape), or NULL. */
static const moss_value *residual(const moss_node *n) {
  return n->op == MOSS_OP_Conv ? moss_node_input(n, 3) : NULL;
}

moss_kx *moss_lower_conv_out(moss_kb *b, const moss_node *n, moss_kx *v, moss_kx *at, const char *name) {
  if (residual(n)) {
    int rb = moss_k_input(b, 3);
    v = moss_k_bin(b, MOSS_KX_ADD, v, v->lanes > 1 ? moss_k_vload(b, rb, at, v->lanes) : moss_k_load(b, rb, at));
  }
  if (!n->act.kind) return v;
  return moss_k_act(b, n, moss_k_let(b, name, v));
}

/* y[base + j] = act(y[base + j] + residual) for j in [0, cnt), when |n|
 * has a fused residual or activation. */
static void act_loop(moss_kb *b, const moss_node *n, moss_kx *base, int64_t cnt) {
  int yb = moss_k_output(b, 0);
  moss_kx *j, *at;
  if (!n->act.kind && !residual(n)) return;
  j = moss_k_range(b, "j", cnt, MOSS_KL_PARALLEL);
  at = moss_k_add(b, base, j);
  moss_k_store(b, yb, at, moss_lower_conv_out(b, n, moss_k_load(b, yb, at), at, "v"));
  moss_k_end(b);
}

/* y[base + j] = bias[m] (or 0) for j in [0, cnt). */
static void init_loop(moss_kb *b, const moss_node *n, moss_kx *m, moss_kx *base, int64_t cnt) {
  moss_dtype dt = n->outputs[0]->dtype;
  moss_kx *bias, *j;
  if (moss_node_input(n, 2)) bias = moss_k_load(b, moss_k_input(b, 2), m);
  else bias = moss_k_flt(b, dt, 0);
  j = moss_k_range(b, "j", cnt, MOSS_KL_PARALLEL);
  moss_k_store(b, moss_k_output(b, 0), moss_k_add(b, base, j), bias);
  moss_k_end(b);
}

/* Opens the loops over the output channels m: one loop, or one per group
 * and channel in the group. Sets |out_g| to the group (NULL: one group)
 * and |out_mm| to the channel within the group; returns the loops opened. */
static int open_channels(moss_kb *b, int64_t group, int64_t Mg, moss_kx **out_m, moss_kx **out_g,
                         moss_kx **out_mm) {
  if (group == 1) {
    *out_m = *out_mm = moss_k_range(b, "m", Mg, MOSS_KL_PARALLEL);
    *out_g = NULL;
    return 1;
  }
  *out_g = moss_k_range(b, "g", group, MOSS_KL_PARALLEL);
  *out_mm = moss_k_range(b, "mg", Mg, MOSS_KL_PARALLEL);
  *out_m = moss_k_let(b, "m", moss_k_add(b, moss_k_mulc(b, *out_g, Mg), *out_mm));
  return 2;
}

/* The Conv's epilogue on the register tile writing its output: bias,
 * residual and activation. */
static moss_kx *pw_epilogue(moss_kb *b, const void *arg, moss_kx *v, moss_kx *i, moss_kx *j, moss_kx *at,
                            int r) {
  const moss_node *n = arg;
  char name[16];
  (void)j;
  if (moss_node_input(n, 2)) v = moss_k_bin(b, MOSS_KX_ADD, v, moss_k_load(b, moss_k_input(b, 2), i));
  snprintf(name, sizeof name, "v%d", r); /* the activation reads its operand more than once */
  return moss_lower_conv_out(b, n, v, at, name);
}

/* The same into a grid of sums that a copy finishes (ig_copy_out): the
 * bias, and the activation unless a residual must come first (the copy
 * adds both). */
static moss_kx *grid_epilogue(moss_kb *b, const void *arg, moss_kx *v, moss_kx *i, moss_kx *j, moss_kx *at,
                              int r) {
  const moss_node *n = arg;
  if (!residual(n)) return pw_epilogue(b, arg, v, i, j, at, r);
  if (moss_node_input(n, 2)) v = moss_k_bin(b, MOSS_KX_ADD, v, moss_k_load(b, moss_k_input(b, 2), i));
  return v;
}

/* Starts |t|, the product Y[M, N] = S V of |K| terms in |dt|, S being the
 * constant |data| (S(i, k) at k*ks + i*xs) packed in blocks of the tile's
 * rows under the name "|what|, packed ..."; the caller sets V, Y and the
 * epilogue. */
static void packed_s_tile(moss_kb *b, moss_tile *t, moss_dtype dt, int64_t M, int64_t N, int64_t K,
                          const char *what, const void *data, int64_t ks, int64_t xs) {
  int mr, nr, lanes;
  char name[200];
  if (dt == MOSS_DT_I32) moss_tile_shape_bytes(b, &mr, &nr, &lanes);
  else moss_tile_shape(b, dt, &mr, &nr, &lanes);
  memset(t, 0, sizeof *t);
  t->dt = dt;
  t->M = M;
  t->N = N;
  t->K = K;
  snprintf(name, sizeof name, "%s, packed in blocks of %d rows", what, mr);
  t->s = moss_tile_pack(b, name, dt, data, K, M, ks, xs, mr);
  t->s_packed = 1;
  t->s_at = moss_k_idx(b, 0);
}

/* A pointwise Conv (1 x 1 kernel, stride 1, no padding: get_geom made it
 * one row) with one group and a constant weight is, per image, the
 * product Y[M, P] = W[M, C] X[C, P]: the register tile (lower_tile.c),
 * with W packed in blocks of the tile's rows. Returns 0 when the node is
 * not such a Conv or the machine has no tile. */
static int pointwise_tiled(moss_kb *b, const moss_node *n, const geom *g) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1];
  int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], P = g->out[0];
  int mr, nr, lanes;
  moss_tile t;
  moss_kx *bb;
  char name[160];
  if (g->nsp != 1 || g->k[0] != 1 || g->s[0] != 1 || g->p[0] != 0 || g->in[0] != P ||
      w->dims[1] != C || !w->data || w->dtype != x->dtype || C < 1 ||
      !moss_tile_shape(b, x->dtype, &mr, &nr, &lanes) || P < lanes)
    return 0;
  snprintf(name, sizeof name, "'%s'", w->name);
  packed_s_tile(b, &t, x->dtype, M, P, C, name, w->data, 1, C);
  t.v = moss_k_input(b, 0);
  t.v_k = P;
  t.y = moss_k_output(b, 0);
  t.y_row = P;
  if (moss_node_input(n, 2) || n->act.kind || residual(n)) {
    t.epilogue = pw_epilogue;
    t.arg = n;
  }
  bb = moss_k_range(b, "b", N, MOSS_KL_PARALLEL);
  t.v_at = moss_k_let(b, "xb", moss_k_mulc(b, bb, C * P));
  t.y_at = moss_k_let(b, "yb", moss_k_mulc(b, bb, M * P));
  moss_tile_product(b, &t);
  moss_k_end(b);
  return 1;
}

/* ---- The implicit matrix product (1-D and 2-D Conv, one group) ----------------------
 *
 * Y[m, o] = sum over k = (c, kh, kw) of W[m, k] X[c, oh*s + kh*d - p, ...]
 * is the product of the weight as stored (M x C*KH*KW) with a matrix whose
 * column o reads the input around output position o. That matrix is never
 * built: the input is copied once into a zero-padded scratch, split by the
 * stride into phases (phase (rh, rw) holds padded rows rh, rh+s, .. and
 * columns rw, rw+s, ..), so that along an output row the taps read
 * consecutive elements. On a grid of OH rows of Q = OW + (KW-1)*d/s
 * columns, column o = oh*Q + ow of tap k then sits at rows[k] + o in the
 * scratch: the register tile (lower_tile.c) reads it in place through the
 * table |rows|. The grid's last Q - OW columns of each row are computed and
 * dropped, and so are the columns that round the grid up to a multiple of
 * 16 (whole vectors for every tile width: a ragged end would take scalar
 * columns): the sums land in a second scratch grid, then the valid columns
 * are copied out (bias and activation are applied on the tile). When Q ==
 * OW (a 1 x 1 kernel, or taps that all fall in one phase column) and the
 * outputs are a multiple of 16, the tile writes the output directly. */
#define IG_MAX_PHASES 16
#define IG_MAX_SCRATCH ((int64_t)1 << 30)
#define IG_CHUNK_BYTES ((int64_t)256 << 10)

typedef struct igemm {
  int depthwise;                 /* one group per channel, one output each */
  int int8;                      /* QLinearConv: the copy holds bytes, four channels per
                                  * int32 element, and the tile sums DOT4s; depthwise:
                                  * float planes of x - x_zp */
  int64_t xzero;                 /* int8 depthwise: x_zp */
  int64_t C, M, K, OH, OW, H, W;
  int64_t k[2], s[2], d[2], p[2];
  int nph[2];                    /* phases used per dimension (rows, columns) */
  int64_t res[2][IG_MAX_PHASES]; /* the stride residue of each phase */
  int64_t q[2];                  /* rows and columns of one phase plane */
  int64_t grid;                  /* the grid's columns: OH * q[1] rounded up to 16 */
  int64_t chunk_rows;            /* output rows per chunk of the grid of sums (all: OH) */
  int transposed;                /* the product as Y^T = V^T W^T over the exact output
                                  * positions (a grid that would waste over 10 %) */
  int64_t xelems, xbytes;        /* the phased input (bytes rounded to 64) */
  int64_t yelems;                /* the grid of sums; 0: the tile writes Y */
  /* Depthwise: the channels in |groups| groups of |cpg|, each with planes
   * (and a grid) of its own, |gstride| bytes apart (dw_groups). */
  int64_t groups, cpg, gstride;
} igemm;

/* The phase of tap |kk| in dimension |t| and its offset in the plane. */
static int ig_phase(const igemm *ig, int t, int64_t kk, int64_t *off) {
  int64_t pos = kk * ig->d[t];
  int ph;
  *off = pos / ig->s[t];
  for (ph = 0; ph < ig->nph[t]; ph++)
    if (ig->res[t][ph] == pos % ig->s[t]) break;
  return ph;
}

/* A 1-D geometry as 2-D: one more dimension of extent 1 in front. */
static void to_2d(geom *g) {
  if (g->nsp != 1) return;
  g->nsp = 2;
  g->in[1] = g->in[0], g->out[1] = g->out[0], g->k[1] = g->k[0];
  g->s[1] = g->s[0], g->d[1] = g->d[0], g->p[1] = g->p[0];
  g->in[0] = g->out[0] = g->k[0] = g->s[0] = g->d[0] = 1;
  g->p[0] = 0;
}

/* Fills |ig| for |n| when it takes the implicit product on a machine with
 * the register tile: returns its scratch in bytes, or 0 when it does not. */
static int64_t ig_plan(const moss_node *n, const geom *g0, igemm *ig) {
  int q8 = n->op == MOSS_OP_QLinearConv;
  const moss_value *x = n->inputs[0], *w = n->inputs[q8 ? 3 : 1], *y = n->outputs[0];
  /* es: bytes of an element of the copy (int8: of four channels), ey: of the grid of sums */
  int64_t es = q8 ? 4 : (int64_t)moss_dtype_size(x->dtype), ey = q8 ? 1 : es;
  int64_t grid, xs, ys, tot, maxoff[2];
  geom g = *g0;
  int t, kk;
  memset(ig, 0, sizeof *ig);
  if (q8 ? (n->sparse && n->sparse != MOSS_SPARSE_CSR && n->sparse != MOSS_SPARSE_BLOCK_4x1) ||
               !w->data || w->dtype != MOSS_DT_I8 ||
               (x->dtype != MOSS_DT_U8 && x->dtype != MOSS_DT_I8) ||
               (y->dtype != MOSS_DT_U8 && y->dtype != MOSS_DT_I8)
         : n->op != MOSS_OP_Conv || !w->data || w->dtype != x->dtype || y->dtype != x->dtype ||
               (x->dtype != MOSS_DT_F32 && x->dtype != MOSS_DT_F64))
    return 0;
  if (x->rank < 3 || x->rank > 4 || x->dims[0] < 1) return 0;
  ig->int8 = q8;
  ig->depthwise = moss_attr_int(n, "group", 1) != 1;
  /* A pruned int8 weight: its nonzero words on the tile (one group). */
  if (q8 && n->sparse && (ig->depthwise || (n->sparse == MOSS_SPARSE_BLOCK_4x1 && w->dims[0] % 4)))
    return 0;
  if (ig->depthwise ? w->dims[1] != 1 || w->dims[0] != x->dims[1] ||
                          moss_attr_int(n, "group", 1) != x->dims[1]
                    : w->dims[1] != x->dims[1])
    return 0;
  to_2d(&g);
  ig->C = x->dims[1];
  ig->M = w->dims[0];
  ig->H = g.in[0], ig->W = g.in[1], ig->OH = g.out[0], ig->OW = g.out[1];
  if (ig->C < 1 || ig->M < 1 || ig->OH < 1 || ig->OW < 1) return 0;
  for (t = 0; t < 2; t++) {
    ig->k[t] = g.k[t], ig->s[t] = g.s[t], ig->d[t] = g.d[t], ig->p[t] = g.p[t];
    if (ig->k[t] < 1 || ig->s[t] < 1 || ig->d[t] < 1 || ig->p[t] < 0 || ig->k[t] > 64) return 0;
    maxoff[t] = 0;
    for (kk = 0; kk < ig->k[t]; kk++) {
      int64_t pos = kk * ig->d[t], r = pos % ig->s[t], ph;
      for (ph = 0; ph < ig->nph[t] && ig->res[t][ph] != r; ph++) {}
      if (ph == ig->nph[t]) {
        if (ig->nph[t] == IG_MAX_PHASES) return 0;
        ig->res[t][ig->nph[t]++] = r;
      }
      if (pos / ig->s[t] > maxoff[t]) maxoff[t] = pos / ig->s[t];
    }
  }
  ig->K = (ig->depthwise ? 1 : q8 ? (ig->C + 3) / 4 : ig->C) * ig->k[0] * ig->k[1];
  ig->q[0] = ig->OH + maxoff[0];
  ig->q[1] = ig->OW + maxoff[1];
  grid = ig->OH * ig->q[1];
  if (grid < 8 || grid > IG_MAX_SCRATCH) return 0; /* too small a product for the tile to pay */
  ig->grid = (grid + 15) / 16 * 16;
  /* The last grid column of the last plane reads maxoff[1] past it, and
   * the rounding columns beyond. */
  xs = (q8 ? (ig->C + 3) / 4 : ig->C) * ig->nph[0] * ig->nph[1];
  if (xs > IG_MAX_SCRATCH || ig->q[0] * ig->q[1] > IG_MAX_SCRATCH) return 0;
  ig->xelems = xs * ig->q[0] * ig->q[1] + maxoff[1] + (ig->grid - grid);
  ig->yelems = ig->q[1] == ig->OW && ig->grid == grid ? 0 : ig->M * ig->grid;
  /* The grid of sums goes through the cache in chunks of output rows of
   * about IG_CHUNK_BYTES, each copied out while it is still there; the
   * last chunk's rounding reads at most 16 more columns. */
  ig->chunk_rows = ig->OH;
  if (ig->M > IG_MAX_SCRATCH / ig->grid) return 0;
  if (ig->yelems && ig->yelems * ey > IG_CHUNK_BYTES) {
    int64_t r = IG_CHUNK_BYTES / ey / (ig->M * ig->q[1]);
    ig->chunk_rows = r < 1 ? 1 : r;
    ig->yelems = ig->M * ((ig->chunk_rows * ig->q[1] + 15) / 16 * 16 + 16);
    ig->xelems += 16;
  }
  /* Short rows (a wide kernel on a small map: 7x7 and 14x14 layers) waste
   * a grid's extra columns; there the positions become the tile's rows,
   * read in place through a table of their offsets, and the output
   * channels its vectors: only the last row block is partly empty. */
  if (!ig->depthwise && !q8 && !n->sparse && ig->grid * 10 > ig->OH * ig->OW * 11 && ig->M >= 16 &&
      ig->OH * ig->OW >= 6 &&
      ig->OH * ig->OW <= IG_CHUNK_BYTES * 16 / es / ig->M) {
    ig->transposed = 1;
    ig->xelems = xs * ig->q[0] * ig->q[1];
    ig->yelems = ig->OH * ig->OW * ig->M;
  }
  if (ig->depthwise) { /* one channel at a time, and its grid when rows are short */
    ig->xelems = ig->nph[0] * ig->nph[1] * ig->q[0] * ig->q[1] + maxoff[1] + (ig->grid - grid);
    ig->yelems = ig->grid;
  }
  if (ig->xelems > IG_MAX_SCRATCH / es || ig->yelems > IG_MAX_SCRATCH / es) return 0;
  ig->xbytes = (ig->xelems * es + 63) / 64 * 64;
  ys = ig->yelems * ey;
  tot = ig->xbytes + ys;
  return tot <= IG_MAX_SCRATCH ? tot : 0;
}

/* What the int8 copy adds to x so that its bytes are the byte dot
 * product's activation operand: unsigned for DOT4 (int8 x + 128), signed
 * for DOT4S (uint8 x - 128). x - x_zp is unchanged. */
static int q8_shift(const moss_value *x, const moss_kernel_cpu *cpu) {
  if (cpu && cpu->dot4_signed) return x->dtype == MOSS_DT_U8 ? -128 : 0;
  return x->dtype == MOSS_DT_I8 ? 128 : 0;
}

/* The constants of a QLinearConv on the int8 implicit product: a per
 * tensor or per channel weight scale, zero weight zero points, constant
 * activation zero points, an int32 bias; the correction bias - (x_zp +
 * |shift|) * sum(w) of every output channel must fit int32 (the copy
 * holds x + |shift|, q8_shift). Fills |corr| (M values) when not NULL.
 * Returns 0 when the node does not qualify. */
static int q8_constants(const moss_node *n, int shift, int32_t *corr) {
  const moss_value *w = n->inputs[3], *xz = moss_node_input(n, 2);
  const moss_value *wz = moss_node_input(n, 5), *bias = moss_node_input(n, 8);
  const moss_value *sc[3] = {n->inputs[1], n->inputs[4], n->inputs[6]}, *yz = moss_node_input(n, 7);
  int64_t M, per, m, k, zxu, i;
  int j;
  if (n->ninputs < 8 || !w || !w->data || w->dtype != MOSS_DT_I8 || w->rank < 3) return 0;
  for (j = 0; j < 3; j++)
    if (!sc[j] || !sc[j]->data || sc[j]->dtype != MOSS_DT_F32) return 0;
  if ((xz && (!xz->data || moss_value_numel(xz) != 1)) || (yz && (!yz->data || moss_value_numel(yz) != 1)))
    return 0;
  if (wz) {
    if (!wz->data) return 0;
    for (i = 0; i < moss_value_numel(wz); i++)
      if (moss_value_get_i64(wz, i) != 0) return 0;
  }
  M = w->dims[0];
  per = moss_value_numel(w) / (M > 0 ? M : 1);
  if (M < 1 || (moss_value_numel(sc[1]) != 1 && moss_value_numel(sc[1]) != M)) return 0;
  if (bias && (!bias->data || bias->dtype != MOSS_DT_I32 || moss_value_numel(bias) != M)) return 0;
  zxu = (xz ? moss_value_get_i64(xz, 0) : 0) + shift;
  for (m = 0; m < M; m++) {
    int64_t sw = 0, c;
    for (k = 0; k < per; k++) sw += ((const int8_t *)w->data)[m * per + k];
    c = (bias ? ((const int32_t *)bias->data)[m] : 0) - zxu * sw;
    if (c < INT32_MIN || c > INT32_MAX) return 0;
    if (corr) corr[m] = (int32_t)c;
  }
  return 1;
}

/* The depthwise Conv's channels go in groups, 2 per thread the code may
 * run on, each with its own planes: the groups are the parallel loop that
 * the parts of a threaded run take (moss_kernel_plan_parts), and no two
 * parts share a plane. One thread: one group, one plane. Returns the
 * scratch of all groups, from |need|, one group's. */
static int64_t dw_groups(igemm *ig, const moss_kernel_cpu *cpu, int64_t need) {
  int64_t G = cpu && cpu->threads > 1 ? 2 * (int64_t)cpu->threads : 1;
  if (need <= 0) return need;
  if (G > ig->C) G = ig->C;
  ig->cpg = (ig->C + G - 1) / G;
  ig->groups = (ig->C + ig->cpg - 1) / ig->cpg;
  ig->gstride = (need + 63) / 64 * 64;
  return ig->groups * ig->gstride;
}

/* Whether |n| takes the implicit product on |cpu|, its geometry in |ig|
 * and scratch in bytes as the result (0: it does not). */
static int64_t ig_scratch(const moss_node *n, const moss_kernel_cpu *cpu, igemm *ig) {
  moss_kb probe;
  int mr, nr, lanes;
  int64_t need;
  geom g;
  memset(&probe, 0, sizeof probe);
  if (cpu) probe.cpu = *cpu;
  if (n->op == MOSS_OP_QLinearConv) {
    int dw = moss_attr_int(n, "group", 1) != 1;
    /* One group: byte dot products (DOT4); depthwise: float vectors, exact. */
    if (!q8_constants(n, q8_shift(n->inputs[0], cpu), NULL) || n->inputs[0]->rank < 3 || n->inputs[3]->rank != n->inputs[0]->rank ||
        !(dw ? moss_tile_shape(&probe, MOSS_DT_F32, &mr, &nr, &lanes) : moss_tile_shape_bytes(&probe, &mr, &nr, &lanes)))
      return 0;
    get_geom(n, &g);
    need = ig_plan(n, &g, ig);
    if (need > 0 && ig->depthwise) {
      const moss_value *xz = moss_node_input(n, 2);
      ig->xzero = xz ? moss_value_get_i64(xz, 0) : 0;
      need = dw_groups(ig, cpu, need);
    }
    return need;
  }
  /* A pruned Conv (n->sparse, lower_sparse.c) takes the product with its
   * nonzeros as S (moss_lower_conv_sparse): float, one group. */
  if (n->op != MOSS_OP_Conv || n->inputs[0]->rank < 3 || n->inputs[1]->rank != n->inputs[0]->rank ||
      (n->sparse && (n->inputs[0]->dtype != MOSS_DT_F32 || moss_attr_int(n, "group", 1) != 1)) ||
      !moss_tile_shape(&probe, n->inputs[0]->dtype, &mr, &nr, &lanes))
    return 0;
  get_geom(n, &g);
  /* A dense pointwise Conv takes the plain product (pointwise_tiled). */
  if (!n->sparse && g.nsp == 1 && g.k[0] == 1 && g.s[0] == 1 && g.p[0] == 0 && g.in[0] == g.out[0] &&
      g.out[0] >= lanes)
    return 0;
  need = ig_plan(n, &g, ig);
  /* A strided depthwise Conv over rows of whole vectors keeps the direct
   * loops: its copy into phases costs as much as its few taps save. */
  if (ig->depthwise && ig->s[1] > 1 && ig->OW >= lanes) return 0;
  return ig->depthwise ? dw_groups(ig, cpu, need) : need;
}

static int64_t ct_scratch(const moss_node *n, const moss_kernel_cpu *cpu, geom *g);

/* Winograd's plan for |n| (0: it does not take it): one group, a 3x3
 * kernel of stride and dilation 1. */
static int64_t wino_scratch(const moss_node *n, const moss_kernel_cpu *cpu, moss_wino *p) {
  geom g;
  if (n->op != MOSS_OP_Conv || moss_attr_int(n, "group", 1) != 1 || n->inputs[0]->rank != 4) return 0;
  get_geom(n, &g);
  if (g.k[0] != 3 || g.k[1] != 3 || g.s[0] != 1 || g.s[1] != 1 || g.d[0] != 1 || g.d[1] != 1) return 0;
  return moss_winograd_plan(n, cpu, g.p[0], g.p[1], p);
}

int64_t moss_lower_conv_scratch(const moss_node *n, const moss_kernel_cpu *cpu) {
  igemm ig;
  geom g;
  moss_wino w;
  int64_t need;
  if (n->op == MOSS_OP_ConvTranspose) return ct_scratch(n, cpu, &g);
  if ((need = wino_scratch(n, cpu, &w)) > 0) return need;
  return ig_scratch(n, cpu, &ig);
}

/* An input element as the planes hold it: itself, or for int8, x - x_zp
 * as a float (exact; the padding's zeros are the zero point). */
static moss_kx *ig_xval(moss_kb *b, const igemm *ig, moss_kx *v) {
  if (!ig->int8) return v;
  return moss_k_cast(b, MOSS_DT_F32,
                     moss_k_bin(b, MOSS_KX_SUB, moss_k_cast(b, MOSS_DT_I32, v), moss_k_int(b, MOSS_DT_I32, ig->xzero)));
}

/* xs[row + j] = value(j) over j in [lo, hi): the input at src + j*s + r - p,
 * or zero when |src| is NULL. */
static void ig_fill(moss_kb *b, const igemm *ig, int xs, moss_kx *row, moss_kx *src, int64_t r,
                    int64_t lo, int64_t hi) {
  moss_kx *j, *v;
  if (hi <= lo) return;
  j = moss_k_for(b, "j", moss_k_idx(b, lo), moss_k_idx(b, hi), 1, MOSS_KL_PARALLEL, 0);
  if (src) {
    v = moss_k_load(b, moss_k_input(b, 0),
                    moss_k_add(b, src, offset(b, moss_k_mulc(b, j, ig->s[1]), r - ig->p[1])));
    v = ig_xval(b, ig, v);
  } else {
    moss_dtype dt = b->k->bufs[xs].dt;
    v = moss_dtype_is_float(dt) ? moss_k_flt(b, dt, 0) : moss_k_int(b, dt, 0);
  }
  moss_k_store(b, xs, moss_k_add(b, row, j), v);
  moss_k_end(b);
}

/* Copies the input channel at |xc| into its phases in |xs| from |at| on.
 * Per input row, one loop writes every column phase where all of them
 * come from the input, so the strided loads form one interleaved group
 * (wide loads and shuffles) rather than a gather per phase. */
static void ig_copy_channel(moss_kb *b, const igemm *ig, int xs, moss_kx *xc, moss_kx *at) {
  int a, c2, np = ig->nph[1];
  int64_t plane = ig->q[0] * ig->q[1], Q = ig->q[1], jlo[IG_MAX_PHASES], jhi[IG_MAX_PHASES], clo = 0,
          chi = Q;
  moss_kx *row[IG_MAX_PHASES];
  char name[16];
  for (c2 = 0; c2 < np; c2++) {
    range(Q, ig->s[1], ig->res[1][c2] - ig->p[1], ig->W, &jlo[c2], &jhi[c2]);
    if (jlo[c2] > clo) clo = jlo[c2];
    if (jhi[c2] < chi) chi = jhi[c2];
  }
  for (a = 0; a < ig->nph[0]; a++) {
    int64_t rh = ig->res[0][a], ilo, ihi;
    moss_kx *i, *src, *j;
    /* Plane row i is input row i*s + rh - p; column j input column j*s + rw - p. */
    range(ig->q[0], ig->s[0], rh - ig->p[0], ig->H, &ilo, &ihi);
    moss_k_comment(b, "row phase %lld: plane rows [%lld, %lld) come from the input, columns "
                   "[%lld, %lld) in every column phase", (long long)rh, (long long)ilo, (long long)ihi,
                   (long long)clo, (long long)chi);
    i = moss_k_range(b, "i", ig->q[0], MOSS_KL_PARALLEL);
    for (c2 = 0; c2 < np; c2++) {
      snprintf(name, sizeof name, "pr%d", c2);
      row[c2] = moss_k_let(b, name, moss_k_add(b, moss_k_addc(b, at, (a * np + c2) * plane), moss_k_mulc(b, i, Q)));
    }
    moss_k_if(b, moss_k_bin(b, MOSS_KX_LAND, moss_k_bin(b, MOSS_KX_GE, i, moss_k_idx(b, ilo)),
                            moss_k_bin(b, MOSS_KX_LT, i, moss_k_idx(b, ihi))));
    src = moss_k_let(b, "xr", moss_k_add(b, xc, moss_k_mulc(b, offset(b, moss_k_mulc(b, i, ig->s[0]),
                                                                      rh - ig->p[0]), ig->W)));
    for (c2 = 0; c2 < np; c2++) {
      ig_fill(b, ig, xs, row[c2], NULL, 0, 0, jlo[c2]);
      if (chi > clo) { /* [clo, chi) in the loop of every phase below */
        ig_fill(b, ig, xs, row[c2], src, ig->res[1][c2], jlo[c2], clo);
        ig_fill(b, ig, xs, row[c2], src, ig->res[1][c2], chi, jhi[c2]);
      } else {
        ig_fill(b, ig, xs, row[c2], src, ig->res[1][c2], jlo[c2], jhi[c2]);
      }
      ig_fill(b, ig, xs, row[c2], NULL, 0, jhi[c2], Q);
    }
    if (chi > clo) {
      j = moss_k_for(b, "j", moss_k_idx(b, clo), moss_k_idx(b, chi), 1, MOSS_KL_PARALLEL, 0);
      for (c2 = 0; c2 < np; c2++) {
        moss_kx *v = moss_k_load(b, moss_k_input(b, 0),
                                 moss_k_add(b, src, offset(b, moss_k_mulc(b, j, ig->s[1]),
                                                           ig->res[1][c2] - ig->p[1])));
        moss_k_store(b, xs, moss_k_add(b, row[c2], j), ig_xval(b, ig, v));
      }
      moss_k_end(b);
    }
    moss_k_else(b);
    for (c2 = 0; c2 < np; c2++) ig_fill(b, ig, xs, row[c2], NULL, 0, 0, Q);
    moss_k_end(b); /* if */
    moss_k_end(b); /* i */
  }
}

/* Copies image |xb| of the input into the phased, zero-padded scratch |xs|. */
static void ig_copy_in(moss_kb *b, const igemm *ig, int xs, moss_kx *xb) {
  int64_t plane = ig->q[0] * ig->q[1];
  moss_dtype dt = b->k->bufs[xs].dt;
  moss_kx *c = moss_k_range(b, "c", ig->C, MOSS_KL_PARALLEL);
  ig_copy_channel(b, ig, xs, moss_k_let(b, "xc", moss_k_add(b, xb, moss_k_mulc(b, c, ig->H * ig->W))),
                  moss_k_mulc(b, c, ig->nph[0] * ig->nph[1] * plane));
  moss_k_end(b); /* c */
  if (ig->xelems > ig->C * ig->nph[0] * ig->nph[1] * plane) {
    /* What the last grid columns read past the planes: zeros, not garbage. */
    int64_t from = ig->C * ig->nph[0] * ig->nph[1] * plane;
    moss_kx *j = moss_k_for(b, "j", moss_k_idx(b, from), moss_k_idx(b, ig->xelems), 1,
                            MOSS_KL_PARALLEL, 0);
    moss_k_store(b, xs, j, moss_k_flt(b, dt, 0));
    moss_k_end(b);
  }
}

/* Copies the valid columns of |nrows| grid rows of sums in |ys| (|width|
 * columns per output channel) into output rows |oh0| on of image |bb|,
 * adding the residual of |n| (then its activation) where it has one. */
static void ig_copy_out(moss_kb *b, const moss_node *n, const igemm *ig, int ys, moss_kx *bb, moss_kx *oh0,
                        int64_t nrows, int64_t width) {
  moss_kx *m, *r, *ow, *yr, *gr, *at, *v;
  moss_k_comment(b, "the valid columns of the grid");
  m = moss_k_range(b, "m", ig->M, MOSS_KL_PARALLEL);
  r = moss_k_range(b, "r", nrows, MOSS_KL_PARALLEL);
  yr = moss_k_let(b, "yr", moss_k_add(b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bb, ig->M), m),
                                                     ig->OH * ig->OW),
                                      moss_k_mulc(b, moss_k_add(b, oh0, r), ig->OW)));
  gr = moss_k_let(b, "gr", moss_k_add(b, moss_k_mulc(b, m, width), moss_k_mulc(b, r, ig->q[1])));
  ow = moss_k_range(b, "ow", ig->OW, MOSS_KL_PARALLEL);
  at = moss_k_add(b, yr, ow);
  v = moss_k_load(b, ys, moss_k_add(b, gr, ow));
  if (residual(n)) v = moss_lower_conv_out(b, n, v, at, "v");
  moss_k_store(b, moss_k_output(b, 0), at, v);
  moss_k_end(b);
  moss_k_end(b);
  moss_k_end(b);
}

/* The transposed product's epilogue: bias (per column: output channel)
 * and activation, unless a residual must come first (the copy out by
 * channel adds both). */
static moss_kx *t_epilogue(moss_kb *b, const void *arg, moss_kx *v, moss_kx *i, moss_kx *j, moss_kx *at,
                           int r) {
  const moss_node *n = arg;
  char name[16];
  (void)i;
  (void)at;
  if (moss_node_input(n, 2)) {
    int bias = moss_k_input(b, 2);
    v = moss_k_bin(b, MOSS_KX_ADD, v, v->lanes > 1 ? moss_k_vload(b, bias, j, v->lanes) : moss_k_load(b, bias, j));
  }
  if (!n->act.kind || residual(n)) return v;
  snprintf(name, sizeof name, "v%d", r);
  return moss_k_act(b, n, moss_k_let(b, name, v));
}

/* The implicit product transposed (ig->transposed): Y^T[P, M] = V^T W^T,
 * each position p's taps at pos[p] + rows[k] in the phased copy |xs|, the
 * weight packed in blocks of the tile's columns, the sums into |ys| by
 * position, then out by channel. */
static void lower_igemm_t(moss_kb *b, const moss_node *n, const igemm *ig, int xs, int ys,
                          const int64_t *rows) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1];
  int64_t P = ig->OH * ig->OW, *pos, oh, ow;
  int mr, nr, lanes;
  moss_tile t;
  moss_kx *bb, *m, *p, *ym, *at, *v;
  char name[160];
  moss_tile_shape(b, x->dtype, &mr, &nr, &lanes);
  pos = moss_arena_alloc(b->arena, sizeof *pos * (size_t)P, 8);
  if (!pos) {
    moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
    return;
  }
  for (oh = 0; oh < ig->OH; oh++)
    for (ow = 0; ow < ig->OW; ow++) pos[oh * ig->OW + ow] = oh * ig->q[1] + ow;
  memset(&t, 0, sizeof t);
  t.dt = x->dtype;
  t.M = P;
  t.N = ig->M;
  t.K = ig->K;
  t.s = xs;
  t.s_rows = 1;
  t.s_pos = moss_k_table(b, "pos", MOSS_DT_I64, P, pos);
  t.s_koff = moss_k_table(b, "rows", MOSS_DT_I64, ig->K, rows);
  t.s_at = moss_k_idx(b, 0);
  snprintf(name, sizeof name, "'%s' transposed, packed in blocks of %d columns", w->name, nr);
  t.v = moss_tile_pack(b, name, w->dtype, w->data, ig->K, ig->M, 1, ig->K, nr);
  t.v_packed = 1;
  t.v_at = moss_k_idx(b, 0);
  t.y = ys;
  t.y_at = moss_k_idx(b, 0);
  t.y_row = ig->M;
  if (moss_node_input(n, 2) || n->act.kind || residual(n)) {
    t.epilogue = t_epilogue;
    t.arg = n;
  }
  moss_k_comment(b, "implicit product, transposed: %lld positions x %lld channels x %lld (%d x %d "
                 "phases of %lld x %lld)", (long long)P, (long long)ig->M, (long long)ig->K, ig->nph[0],
                 ig->nph[1], (long long)ig->q[0], (long long)ig->q[1]);
  bb = moss_k_range(b, "b", x->dims[0], MOSS_KL_SERIAL);
  ig_copy_in(b, ig, xs, moss_k_let(b, "xb", moss_k_mulc(b, bb, ig->C * ig->H * ig->W)));
  moss_tile_product(b, &t);
  moss_k_comment(b, "the sums out, by channel");
  m = moss_k_range(b, "m", ig->M, MOSS_KL_PARALLEL);
  ym = moss_k_let(b, "ym", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bb, ig->M), m), P));
  p = moss_k_range(b, "p", P, MOSS_KL_PARALLEL);
  at = moss_k_add(b, ym, p);
  v = moss_k_load(b, ys, moss_k_add(b, moss_k_mulc(b, p, ig->M), m));
  if (residual(n)) v = moss_lower_conv_out(b, n, v, at, "v");
  moss_k_store(b, moss_k_output(b, 0), at, v);
  moss_k_end(b);
  moss_k_end(b);
  moss_k_end(b); /* b */
}

/* The implicit product's tile of element type |dt|: S the weight |data|
 * (M x K, row-major) packed in blocks of the tile's rows under |name|, V
 * the phased copy |xs| read through the table |rows|; Y and the epilogue
 * are the caller's. */
static void ig_tile(moss_kb *b, const igemm *ig, moss_tile *t, moss_dtype dt, const char *name,
                    const void *data, int xs, const int64_t *rows) {
  packed_s_tile(b, t, dt, ig->M, ig->grid, ig->K, name, data, 1, ig->K);
  t->v = xs;
  t->v_rows = 1;
  t->v_koff = moss_k_table(b, "rows", MOSS_DT_I64, ig->K, rows);
  t->v_at = moss_k_idx(b, 0);
}

/* The chunked product |t| of |n| (its N, y_row and v_at set here) into
 * the grid of sums |ys|, each chunk's valid columns copied out to image
 * |bb|. */
static void ig_chunks(moss_kb *b, const moss_node *n, const igemm *ig, moss_tile *t, int ys, moss_kx *bb) {
  int64_t R = ig->chunk_rows, nfull = ig->OH / R, rest = ig->OH - nfull * R;
  moss_kx *ch;
  t->y = ys;
  t->y_at = moss_k_idx(b, 0);
  if (nfull > 0) {
    t->N = t->y_row = (R * ig->q[1] + 15) / 16 * 16;
    ch = moss_k_range(b, "chunk", nfull, MOSS_KL_SERIAL);
    t->v_at = moss_k_let(b, "g0", moss_k_mulc(b, ch, R * ig->q[1]));
    moss_tile_product(b, t);
    ig_copy_out(b, n, ig, ys, bb, moss_k_mulc(b, ch, R), R, t->N);
    moss_k_end(b);
  }
  if (rest > 0) {
    t->N = t->y_row = (rest * ig->q[1] + 15) / 16 * 16;
    t->v_at = moss_k_idx(b, nfull * R * ig->q[1]);
    moss_tile_product(b, t);
    ig_copy_out(b, n, ig, ys, bb, moss_k_idx(b, nfull * R), rest, t->N);
  }
}

/* The int8 epilogue: the int32 sums plus the channel's correction,
 * requantized (docs/numerics-int8.md), plus y_zp, clamped to the 8-bit output. */
typedef struct q8ep {
  const moss_node *n;
  int corr, yzp;
  moss_kreq rq;
  /* With |f64|: REQUANT as one float64 multiply by mult 2^-(31 + shift)
   * (table |md|, or |md1| for one multiplier) and a rounding to even, the
   * same integer wherever |sum| * mult < 2^53 (q8_f64_plan). */
  int f64, md;
  double md1;
} q8ep;

/* Whether every channel's requantization can take float64 (q8ep.f64):
 * with |sum| at most |w| 255 + |bias| over channel m's |per| weights (|x -
 * x_zp| <= 255), the product sum * mult is exact below 2^53, and so are
 * its scaling by a power of two and the rounding (ties to even, as
 * REQUANT; a product under 2^62 scaled by 2^-63 or less rounds to 0, as
 * REQUANT's shift past 62 gives). Fills |q|'s multipliers when it can.
 * Only with 512-bit vectors (AVX-512, where it was measured: int8
 * MobileNetV2 5.85 -> 5.41 ms): 16 int32 lanes take two registers of
 * doubles there, and eight on 128-bit vectors. */
static void q8_f64_plan(moss_kb *b, q8ep *q, const int8_t *w, int64_t M, int64_t per, const moss_value *bias) {
  double *md;
  int64_t m, k;
  if (b->cpu.vector_bytes < 64) return;
  md = moss_k_scratch(b, M, sizeof *md);
  if (!md) return;
  for (m = 0; m < M; m++) {
    int32_t mult = q->rq.cnt > 1 ? ((const int32_t *)b->k->bufs[q->rq.qm].data)[m] : q->rq.mult;
    int shift = q->rq.cnt > 1 ? ((const int32_t *)b->k->bufs[q->rq.qs].data)[m] : q->rq.shift;
    double bound = bias ? fabs((double)((const int32_t *)bias->data)[m]) : 0.0;
    for (k = 0; k < per; k++) bound += 255.0 * abs(w[m * per + k]);
    if (bound * fabs((double)mult) >= 9007199254740992.0 || 31 + shift > 1000 || 31 + shift < -1000) return;
    md[m] = ldexp((double)mult, -(31 + shift));
  }
  q->f64 = 1;
  if (q->rq.cnt > 1) q->md = moss_k_table(b, "qmd", MOSS_DT_F64, M, md);
  else q->md1 = md[0];
}

static moss_kx *q8_epilogue(moss_kb *b, const void *arg, moss_kx *v, moss_kx *i, moss_kx *j, moss_kx *at,
                            int r) {
  const q8ep *q = arg;
  int L = v->lanes;
  moss_kx *mult, *shift, *acc;
  (void)j;
  (void)at;
  (void)r;
  acc = moss_k_bin(b, MOSS_KX_ADD, v, moss_k_splat(b, moss_k_load(b, q->corr, i), L));
  if (q->f64) {
    moss_kx *d = moss_k_cast(b, MOSS_DT_F64, acc);
    moss_kx *k = q->rq.cnt > 1 ? moss_k_load(b, q->md, i) : moss_k_flt(b, MOSS_DT_F64, q->md1);
    d = moss_k_call(b, MOSS_KFN_RINT, moss_k_bin(b, MOSS_KX_MUL, d, moss_k_splat(b, k, L)), NULL, NULL);
    d = moss_k_call(b, MOSS_KFN_FMIN, moss_k_call(b, MOSS_KFN_FMAX, d, moss_k_splat(b, moss_k_flt(b, MOSS_DT_F64, -2147483648.0), L), NULL),
                    moss_k_splat(b, moss_k_flt(b, MOSS_DT_F64, 2147483647.0), L), NULL);
    acc = moss_k_cast(b, MOSS_DT_I32, d);
  } else {
    mult = q->rq.cnt > 1 ? moss_k_load(b, q->rq.qm, i) : moss_k_int(b, MOSS_DT_I32, q->rq.mult);
    shift = q->rq.cnt > 1 ? moss_k_load(b, q->rq.qs, i) : moss_k_int(b, MOSS_DT_I32, q->rq.shift);
    acc = moss_k_call(b, MOSS_KFN_REQUANT, acc, moss_k_splat(b, mult, L), moss_k_splat(b, shift, L));
  }
  if (q->yzp >= 0)
    acc = moss_k_bin(b, MOSS_KX_ADD, acc,
                     moss_k_splat(b, moss_k_cast(b, MOSS_DT_I32, moss_k_load(b, q->yzp, moss_k_idx(b, 0))), L));
  return moss_k_qclamp(b, q->n, q->n->outputs[0]->dtype, acc);
}

/* The copy of one phase (a, c2) of channel group |cg| (channel base
 * |xc| in the input): opens the loop over its rows |i| and gives the
 * row's start in the copy (|prow|, in int32 words), in the input (|src|)
 * and its columns [jlo, jhi); returns 0 (nothing opened) when the phase
 * takes no input. */
static int q8_row(moss_kb *b, const igemm *ig, int a, int c2, moss_kx *cg, moss_kx *xc, moss_kx **i,
                  moss_kx **prow, moss_kx **src, int64_t *jlo, int64_t *jhi) {
  int64_t rh = ig->res[0][a], rw = ig->res[1][c2], ilo, ihi, plane = ig->q[0] * ig->q[1];
  range(ig->q[0], ig->s[0], rh - ig->p[0], ig->H, &ilo, &ihi);
  range(ig->q[1], ig->s[1], rw - ig->p[1], ig->W, jlo, jhi);
  if (ihi <= ilo || *jhi <= *jlo) return 0;
  *i = moss_k_for(b, "i", moss_k_idx(b, ilo), moss_k_idx(b, ihi), 1, MOSS_KL_PARALLEL, 0);
  *prow = moss_k_let(b, "pr", moss_k_add(b, moss_k_mulc(b, moss_k_addc(b, moss_k_mulc(b, cg, ig->nph[0] * ig->nph[1]),
                                                                       a * ig->nph[1] + c2), plane),
                                         moss_k_mulc(b, *i, ig->q[1])));
  *src = moss_k_let(b, "xr", moss_k_add(b, xc, moss_k_mulc(b, offset(b, moss_k_mulc(b, *i, ig->s[0]), rh - ig->p[0]),
                                                           ig->W)));
  return 1;
}

/* The byte the copy holds for input column |jj| of the row at |src|
 * (phase residue |rw|): x + |shift| (q8_shift, 0 or +-128: an exclusive
 * or of the top bit), as U8. */
static moss_kx *q8_byte(moss_kb *b, const igemm *ig, int xin, moss_dtype xdt, int shift, moss_kx *src, moss_kx *jj,
                        int64_t rw) {
  moss_kx *v = moss_k_load(b, xin, moss_k_add(b, src, offset(b, moss_k_mulc(b, jj, ig->s[1]), rw - ig->p[1])));
  if (xdt == MOSS_DT_I8) v = moss_k_cast(b, MOSS_DT_U8, v);
  return shift ? moss_k_bin(b, MOSS_KX_BXOR, v, moss_k_int(b, MOSS_DT_U8, 128)) : v;
}

/* The copy of every whole group of 4 channels, for unit column stride:
 * per row, vectors of |L| columns of the 4 channels become |L| int32
 * words (byte q from channel q: x zero-extended, shifted left 8q, or'ed;
 * a shift of +-128 is an exclusive or of each byte's top bit), then the
 * row's last columns byte by byte. */
static void q8_copy_groups(moss_kb *b, const igemm *ig, int xin, int x8, int x32, moss_kx *bb, int shift) {
  int L = b->cpu.vector_bytes / 4, a, c2, q;
  moss_dtype xdt = b->k->bufs[xin].dt;
  moss_kx *g = moss_k_range(b, "g", ig->C / 4, MOSS_KL_PARALLEL);
  moss_kx *xc = moss_k_let(b, "xc", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bb, ig->C), moss_k_mulc(b, g, 4)),
                                                ig->H * ig->W));
  for (a = 0; a < ig->nph[0]; a++)
    for (c2 = 0; c2 < ig->nph[1]; c2++) {
      moss_kx *i, *prow, *src, *jj, *w = NULL;
      int64_t jlo, jhi, jv;
      if (!q8_row(b, ig, a, c2, g, xc, &i, &prow, &src, &jlo, &jhi)) continue;
      jv = jlo + (jhi - jlo) / L * L;
      if (jv > jlo) {
        moss_kx *at;
        jj = moss_k_for(b, "j", moss_k_idx(b, jlo), moss_k_idx(b, jv), L, MOSS_KL_PARALLEL, 0);
        at = moss_k_let(b, "xj", moss_k_add(b, src, offset(b, jj, ig->res[1][c2] - ig->p[1])));
        for (q = 0; q < 4; q++) {
          moss_kx *v = moss_k_vload(b, xin, moss_k_addc(b, at, q * ig->H * ig->W), L);
          if (xdt == MOSS_DT_I8) v = moss_k_cast(b, MOSS_DT_U8, v);
          v = moss_k_cast(b, MOSS_DT_I32, v);
          if (q) v = moss_k_bin(b, MOSS_KX_SHL, v, moss_k_splat(b, moss_k_int(b, MOSS_DT_I32, 8 * q), L));
          w = w ? moss_k_bin(b, MOSS_KX_BOR, w, v) : v;
        }
        if (shift) w = moss_k_bin(b, MOSS_KX_BXOR, w, moss_k_splat(b, moss_k_int(b, MOSS_DT_I32, (int32_t)0x80808080u), L));
        moss_k_store(b, x32, moss_k_add(b, prow, jj), w);
        moss_k_end(b);
      }
      if (jhi > jv) {
        jj = moss_k_for(b, "j", moss_k_idx(b, jv), moss_k_idx(b, jhi), 1, MOSS_KL_PARALLEL, 0);
        for (q = 0; q < 4; q++)
          moss_k_store(b, x8, moss_k_addc(b, moss_k_mulc(b, moss_k_add(b, prow, jj), 4), q),
                       q8_byte(b, ig, xin, xdt, shift, moss_k_addc(b, src, q * ig->H * ig->W), jj, ig->res[1][c2]));
        moss_k_end(b);
      }
      moss_k_end(b); /* i */
    }
  moss_k_end(b); /* g */
}

/* QLinearConv as the implicit product of byte dot products (DOT4 or
 * DOT4S): the image is copied into the phased scratch as bytes, four
 * channels per int32 element (x + q8_shift, so that the bytes are the
 * instruction's: unsigned or signed; padding and missing channels hold the
 * zero point), the weight packed as four channels per int32, and each
 * output's sum is the exact integer sum of w * x, corrected at compile time
 * by bias - x_zp * sum(w): the same integers the scalar kernel sums,
 * requantized the same way. */
static void lower_qigemm(moss_kb *b, const moss_node *n, const igemm *ig, int blk) {
  const moss_value *x = n->inputs[0], *w = n->inputs[3], *xzv = moss_node_input(n, 2);
  int64_t N = x->dims[0], Cg = (ig->C + 3) / 4, KK = ig->k[0] * ig->k[1], *rows, m, c, kh, kw;
  int shift = q8_shift(x, &b->cpu);
  int64_t zxu = (xzv ? moss_value_get_i64(xzv, 0) : 0) + shift;
  int32_t *w4, *corr;
  double *ms;
  int mr, nr, lanes, x8, x32, ys = -1, a, c2, xin = moss_k_input(b, 0);
  int64_t c0;
  int64_t plane = ig->q[0] * ig->q[1], nw = moss_value_numel(n->inputs[4]);
  moss_tile t;
  q8ep ep;
  moss_kx *bb, *cc, *cg, *cm, *xc, *j;
  char name[160];
  moss_tile_shape_bytes(b, &mr, &nr, &lanes);
  rows = moss_arena_alloc(b->arena, sizeof *rows * (size_t)ig->K, 8);
  w4 = moss_arena_alloc(b->arena, sizeof *w4 * (size_t)(ig->K * ig->M), 8);
  corr = moss_arena_alloc(b->arena, sizeof *corr * (size_t)ig->M, 8);
  ms = moss_arena_alloc(b->arena, sizeof *ms * (size_t)nw, 8);
  if (!rows || !w4 || !corr || !ms || !q8_constants(n, shift, corr)) {
    moss_kb_fail(b, rows && w4 && corr && ms ? MOSS_E_INTERNAL : MOSS_E_NOMEM, "int8 implicit product");
    return;
  }
  /* k = (channel group, kh, kw); the weight row m as int32s of four channels. */
  for (c = 0; c < Cg; c++)
    for (kh = 0; kh < ig->k[0]; kh++)
      for (kw = 0; kw < ig->k[1]; kw++) {
        int64_t offh, offw, kg = (c * ig->k[0] + kh) * ig->k[1] + kw;
        int ph = ig_phase(ig, 0, kh, &offh), pw = ig_phase(ig, 1, kw, &offw), q;
        rows[kg] = ((c * ig->nph[0] + ph) * ig->nph[1] + pw) * plane + offh * ig->q[1] + offw;
        for (m = 0; m < ig->M; m++) {
          uint32_t word = 0;
          for (q = 0; q < 4; q++) {
            int64_t ch = 4 * c + q;
            int8_t wv = ch < ig->C ? ((const int8_t *)w->data)[(m * ig->C + ch) * KK + kh * ig->k[1] + kw] : 0;
            word |= (uint32_t)(uint8_t)wv << (8 * q);
          }
          w4[m * ig->K + kg] = (int32_t)word;
        }
      }
  for (m = 0; m < nw; m++)
    ms[m] = (double)((const float *)n->inputs[1]->data)[0] * ((const float *)n->inputs[4]->data)[m] /
            (double)((const float *)n->inputs[6]->data)[0];
  memset(&ep, 0, sizeof ep);
  ep.n = n;
  moss_k_requant_init(b, &ep.rq, ms, nw);
  q8_f64_plan(b, &ep, w->data, ig->M, ig->C * KK, moss_node_input(n, 8));
  ep.corr = moss_k_table(b, "correction", MOSS_DT_I32, ig->M, corr);
  ep.yzp = moss_node_input(n, 7) ? moss_k_input(b, 7) : -1;
  x8 = moss_k_arena_scratch(b, "xq", MOSS_DT_U8, ig->xelems * 4, 0);
  x32 = moss_k_arena_scratch(b, "xq4", MOSS_DT_I32, ig->xelems, 0);
  if (ig->yelems) ys = moss_k_arena_scratch(b, "grid", n->outputs[0]->dtype, ig->yelems, ig->xbytes);
  snprintf(name, sizeof name, "'%s' as int32s of four channels", w->name);
  if (blk > 0) { /* pruned: the words holding a nonzero byte, in rows of |blk| channels */
    moss_tile_sparse_s(b, &t, MOSS_DT_I32, w4, ig->K, 1, ig->M, ig->K, blk, rows);
    t.N = ig->grid;
    t.v = x32;
    t.v_at = moss_k_idx(b, 0);
  } else {
    ig_tile(b, ig, &t, MOSS_DT_I32, name, w4, x32, rows);
  }
  t.epilogue = q8_epilogue;
  t.arg = &ep;
  moss_k_comment(b, "int8 implicit product: %lld x %lld x %lld int32s of four bytes (%s) on a grid "
                 "of %lld x %lld (%d x %d phases of %lld x %lld)", (long long)ig->M, (long long)ig->grid,
                 (long long)ig->K, b->cpu.dot4_signed ? "DOT4S" : "DOT4", (long long)ig->OH, (long long)ig->q[1], ig->nph[0], ig->nph[1],
                 (long long)ig->q[0], (long long)ig->q[1]);
  bb = moss_k_range(b, "b", N, MOSS_KL_SERIAL);
  /* The copy: the zero point everywhere, then the image's bytes. */
  j = moss_k_range(b, "j", ig->xelems * 4, MOSS_KL_PARALLEL);
  moss_k_store(b, x8, j, moss_k_int(b, MOSS_DT_U8, zxu & 255));
  moss_k_end(b);
  /* Whole groups of 4 channels with unit column stride: 4 rows of bytes
   * at once into int32 words, in vectors (q8_copy_groups); the rest one
   * byte at a time. */
  c0 = 0;
  if (ig->s[1] == 1 && b->cpu.vector_bytes >= 16 && ig->C >= 4) {
    q8_copy_groups(b, ig, xin, x8, x32, bb, shift);
    c0 = ig->C / 4 * 4;
  }
  if (c0 < ig->C) {
    cc = moss_k_for(b, "c", moss_k_idx(b, c0), moss_k_idx(b, ig->C), 1, MOSS_KL_PARALLEL, 0);
    cg = moss_k_let(b, "cg", moss_k_bin(b, MOSS_KX_DIV, cc, moss_k_idx(b, 4)));
    cm = moss_k_let(b, "cm", moss_k_bin(b, MOSS_KX_REM, cc, moss_k_idx(b, 4)));
    xc = moss_k_let(b, "xc", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bb, ig->C), cc), ig->H * ig->W));
    for (a = 0; a < ig->nph[0]; a++)
      for (c2 = 0; c2 < ig->nph[1]; c2++) {
        moss_kx *i, *prow, *src, *jj;
        int64_t jlo, jhi;
        if (!q8_row(b, ig, a, c2, cg, xc, &i, &prow, &src, &jlo, &jhi)) continue;
        jj = moss_k_for(b, "j", moss_k_idx(b, jlo), moss_k_idx(b, jhi), 1, MOSS_KL_PARALLEL, 0);
        moss_k_store(b, x8, moss_k_add(b, moss_k_mulc(b, moss_k_add(b, prow, jj), 4), cm),
                     q8_byte(b, ig, xin, x->dtype, shift, src, jj, ig->res[1][c2]));
        moss_k_end(b);
        moss_k_end(b);
      }
    moss_k_end(b); /* c */
  }
  if (ys < 0) {
    t.y = moss_k_output(b, 0);
    t.y_at = moss_k_let(b, "yb", moss_k_mulc(b, bb, ig->M * ig->grid));
    t.y_row = ig->grid;
    moss_tile_product(b, &t);
  } else {
    ig_chunks(b, n, ig, &t, ys, bb);
  }
  moss_k_end(b); /* b */
}

static void lower_depthwise(moss_kb *b, const moss_node *n, const igemm *ig);

static void lower_igemm(moss_kb *b, const moss_node *n, const igemm *ig, int blk);

int moss_lower_conv_takes_winograd(const moss_node *n, const moss_kernel_cpu *cpu) {
  moss_wino p;
  return wino_scratch(n, cpu, &p) > 0;
}

int moss_lower_conv_sparse_takes(const moss_node *n, const moss_kernel_cpu *cpu) {
  igemm ig;
  return n->op == MOSS_OP_Conv && n->sparse && ig_scratch(n, cpu, &ig) > 0 && !ig.depthwise && !ig.transposed;
}

int moss_lower_conv_sparse(moss_kb *b, const moss_node *n, int blk) {
  igemm ig;
  int64_t need;
  if (n->op != MOSS_OP_Conv || !n->sparse || n->scratch_bytes <= 0 || blk < 1) return 0;
  need = ig_scratch(n, &b->cpu, &ig);
  if (need <= 0 || need > n->scratch_bytes || ig.depthwise || ig.transposed || ig.M % blk) return 0;
  lower_igemm(b, n, &ig, blk);
  return b->st == MOSS_OK;
}

int moss_lower_qconv_igemm(moss_kb *b, const moss_node *n) {
  igemm ig;
  int64_t need;
  int blk = n->sparse == MOSS_SPARSE_CSR ? 1 : n->sparse == MOSS_SPARSE_BLOCK_4x1 ? 4 : 0;
  if (n->op != MOSS_OP_QLinearConv || n->scratch_bytes <= 0 || (n->sparse && !blk)) return 0;
  need = ig_scratch(n, &b->cpu, &ig);
  if (need <= 0 || need > n->scratch_bytes || !ig.int8 || (blk && ig.depthwise)) return 0;
  if (ig.depthwise) lower_depthwise(b, n, &ig);
  else lower_qigemm(b, n, &ig, blk);
  return 1;
}

/* The implicit product of |n| (ig_scratch said it takes it); with |blk|
 * > 0, of its pruned weight (moss_tile_sparse_s). */
static void lower_igemm(moss_kb *b, const moss_node *n, const igemm *ig, int blk) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1];
  int64_t N = x->dims[0], grid = ig->grid, *rows, c, kh, kw, offh, offw;
  int mr, nr, lanes, xs, ys = -1, ph, pw;
  moss_tile t;
  moss_kx *bb;
  char name[160];
  moss_tile_shape(b, x->dtype, &mr, &nr, &lanes);
  rows = moss_arena_alloc(b->arena, sizeof *rows * (size_t)ig->K, 8);
  if (!rows) {
    moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
    return;
  }
  for (c = 0; c < ig->C; c++)
    for (kh = 0; kh < ig->k[0]; kh++)
      for (kw = 0; kw < ig->k[1]; kw++) {
        ph = ig_phase(ig, 0, kh, &offh);
        pw = ig_phase(ig, 1, kw, &offw);
        rows[(c * ig->k[0] + kh) * ig->k[1] + kw] =
            ((c * ig->nph[0] + ph) * ig->nph[1] + pw) * ig->q[0] * ig->q[1] + offh * ig->q[1] + offw;
      }
  xs = moss_k_arena_scratch(b, "xpad", x->dtype, ig->xelems, 0);
  if (ig->yelems) ys = moss_k_arena_scratch(b, "grid", x->dtype, ig->yelems, ig->xbytes);
  if (ig->transposed) {
    lower_igemm_t(b, n, ig, xs, ys, rows);
    return;
  }
  snprintf(name, sizeof name, "'%s'", w->name);
  if (blk > 0) {
    moss_tile_sparse_s(b, &t, MOSS_DT_F32, w->data, ig->K, 1, ig->M, ig->K, blk, rows);
    t.N = grid;
    t.v = xs;
    t.v_at = moss_k_idx(b, 0);
  } else {
    ig_tile(b, ig, &t, x->dtype, name, w->data, xs, rows);
  }
  if (moss_node_input(n, 2) || n->act.kind || residual(n)) {
    t.epilogue = ys < 0 ? pw_epilogue : grid_epilogue;
    t.arg = n;
  }
  moss_k_comment(b, "implicit product: %lld x %lld x %lld on a grid of %lld x %lld (%d x %d phases "
                 "of %lld x %lld)", (long long)ig->M, (long long)grid, (long long)ig->K,
                 (long long)ig->OH, (long long)ig->q[1], ig->nph[0], ig->nph[1], (long long)ig->q[0],
                 (long long)ig->q[1]);
  bb = moss_k_range(b, "b", N, MOSS_KL_SERIAL);
  ig_copy_in(b, ig, xs, moss_k_let(b, "xb", moss_k_mulc(b, bb, ig->C * ig->H * ig->W)));
  if (ys < 0) {
    t.y = moss_k_output(b, 0);
    t.y_at = moss_k_let(b, "yb", moss_k_mulc(b, bb, ig->M * grid));
    t.y_row = grid;
    moss_tile_product(b, &t);
  } else {
    ig_chunks(b, n, ig, &t, ys, bb); /* chunks of output rows: full ones in a loop, then the rest */
  }
  moss_k_end(b); /* b */
}

/* One output vector (or scalar, |lanes| 1) of the depthwise Conv, from
 * the phased channel in |xs| at |row| + ow, for the output at |yat|;
 * |yat| NULL: for a grid of sums that a copy finishes (which adds a
 * residual, then the activation, where the Conv has one). */
static moss_kx *dw_sum(moss_kb *b, const moss_node *n, int xs, moss_kx *const *wk, const int64_t *off,
                       int64_t taps, moss_kx *init, moss_kx *row, moss_kx *ow, int lanes, const q8ep *q8,
                       moss_kx *ch, moss_kx *yat) {
  moss_kx *acc = init;
  int64_t k;
  for (k = 0; k < taps; k++) {
    moss_kx *at = moss_k_add(b, row, moss_k_addc(b, ow, off[k]));
    moss_kx *xv = lanes > 1 ? moss_k_vload(b, xs, at, lanes) : moss_k_load(b, xs, at);
    moss_kx *w = lanes > 1 ? moss_k_splat(b, wk[k], lanes) : wk[k];
    acc = b->cpu.fma ? moss_k_call(b, MOSS_KFN_FMA, w, xv, acc)
                     : moss_k_bin(b, MOSS_KX_ADD, acc, moss_k_bin(b, MOSS_KX_MUL, w, xv));
  }
  if (q8) return q8_epilogue(b, q8, moss_k_let(b, "s", moss_k_cast(b, MOSS_DT_I32, acc)), ch, NULL, NULL, 0);
  if (!yat && residual(n)) return acc;
  return moss_lower_conv_out(b, n, acc, yat, "s");
}

/* The depthwise Conv (ig_scratch said it takes it): each channel is copied
 * into its phases (a plane that stays in cache), then each output row is
 * computed in vectors that sum every tap in registers, four vectors at a
 * time (independent chains of multiply-adds), then one, then a last
 * vector ending at the row's end (it recomputes a few outputs of the one
 * before, to the same values): the output is written once, in place. */
static void lower_depthwise(moss_kb *b, const moss_node *n, const igemm *ig) {
  const moss_value *x = n->inputs[0];
  int64_t N = x->dims[0], plane = ig->q[0] * ig->q[1], taps = ig->K, k, off[64], kh, kw, offh, offw;
  int64_t OW = ig->OW, v4, v1;
  int mr, nr, lanes, xs, ys = -1, u, flat, wb = moss_k_input(b, ig->int8 ? 3 : 1), yb = moss_k_output(b, 0);
  moss_kx *bb, *c, *wk[64], *init, *vinit, *oh, *row, *yr, *ow, *gx, *gy, *gg = NULL;
  /* int8: float planes of x - x_zp and float sums, exact (|x - x_zp| <= 255,
   * |w| <= 128: at most 64 taps sum to under 2^22, and float holds every
   * integer below 2^24), so multiply-adds are fused; the sum converted to
   * int32, then the int8 epilogue per channel */
  moss_dtype dt = ig->int8 ? MOSS_DT_F32 : x->dtype, ydt = n->outputs[0]->dtype;
  q8ep qe, *q8 = NULL;
  char name[16];
  moss_tile_shape(b, ig->int8 ? MOSS_DT_F32 : dt, &mr, &nr, &lanes);
  if (ig->int8) {
    const moss_value *bias = moss_node_input(n, 8);
    int64_t nw = moss_value_numel(n->inputs[4]), m;
    double *ms = moss_arena_alloc(b->arena, sizeof *ms * (size_t)(nw + 1), 8);
    int32_t *bz = moss_arena_alloc(b->arena, sizeof *bz * (size_t)(ig->M + 1), 8);
    if (!ms || !bz) {
      moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
      return;
    }
    for (m = 0; m < nw; m++)
      ms[m] = (double)((const float *)n->inputs[1]->data)[0] * ((const float *)n->inputs[4]->data)[m] /
              (double)((const float *)n->inputs[6]->data)[0];
    for (m = 0; m < ig->M; m++) bz[m] = bias ? ((const int32_t *)bias->data)[m] : 0;
    memset(&qe, 0, sizeof qe);
    qe.n = n;
    moss_k_requant_init(b, &qe.rq, ms, nw);
    q8_f64_plan(b, &qe, n->inputs[3]->data, ig->M, taps, bias);
    qe.corr = moss_k_table(b, "bias", MOSS_DT_I32, ig->M, bz); /* x_zp is out of the planes already */
    qe.yzp = moss_node_input(n, 7) ? moss_k_input(b, 7) : -1;
    q8 = &qe;
  }
  if (taps > 64) {
    moss_kb_fail(b, MOSS_E_INTERNAL, "depthwise kernel of %lld taps", (long long)taps);
    return;
  }
  for (kh = 0; kh < ig->k[0]; kh++)
    for (kw = 0; kw < ig->k[1]; kw++) {
      int ph = ig_phase(ig, 0, kh, &offh), pw = ig_phase(ig, 1, kw, &offw);
      off[kh * ig->k[1] + kw] = ((int64_t)ph * ig->nph[1] + pw) * plane + offh * ig->q[1] + offw;
    }
  /* Group g's planes from element g * xg of xs on, its grid from g * yg of ys. */
  int64_t xg = ig->gstride / (int64_t)moss_dtype_size(dt), yg = ig->gstride / (int64_t)moss_dtype_size(ig->int8 ? ydt : dt);
  xs = moss_k_arena_scratch(b, "xpad", dt, (ig->groups - 1) * xg + ig->xelems, 0);
  flat = lanes > 1 && OW < lanes;
  if (flat) ys = moss_k_arena_scratch(b, "grid", ig->int8 ? ydt : dt, (ig->groups - 1) * yg + ig->yelems, ig->xbytes);
  moss_k_comment(b, "depthwise: %lld channels of %lld taps, each copied into %d x %d phases of "
                 "%lld x %lld%s", (long long)ig->C, (long long)taps, ig->nph[0], ig->nph[1],
                 (long long)ig->q[0], (long long)ig->q[1],
                 flat ? ", summed over its whole grid (rows shorter than a vector)" : "");
  bb = moss_k_range(b, "b", N, MOSS_KL_SERIAL);
  if (ig->groups > 1) {
    moss_k_comment(b, "%lld groups of %lld channels, each with planes of its own (the parts of a "
                   "threaded run)", (long long)ig->groups, (long long)ig->cpg);
    gg = moss_k_range(b, "g", ig->groups, MOSS_KL_PARALLEL);
    gx = moss_k_let(b, "gx", moss_k_mulc(b, gg, xg));
    gy = moss_k_let(b, "gy", moss_k_mulc(b, gg, yg));
  } else {
    gx = gy = moss_k_idx(b, 0);
  }
  if (flat) { /* what the grid's last vectors read past the planes */
    int64_t from = ig->nph[0] * ig->nph[1] * plane;
    ig_fill(b, ig, xs, moss_k_addc(b, gx, from), NULL, 0, 0, ig->xelems - from);
  }
  if (gg)
    c = moss_k_for(b, "c", moss_k_mulc(b, gg, ig->cpg),
                   moss_k_bin(b, MOSS_KX_MIN, moss_k_mulc(b, moss_k_addc(b, gg, 1), ig->cpg), moss_k_idx(b, ig->C)),
                   1, MOSS_KL_SERIAL, 0); /* the group's plane, channel after channel */
  else
    c = moss_k_range(b, "c", ig->C, MOSS_KL_SERIAL); /* one scratch plane */
  ig_copy_channel(b, ig, xs,
                  moss_k_let(b, "xc", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bb, ig->C), c), ig->H * ig->W)),
                  gx);
  for (k = 0; k < taps; k++) {
    snprintf(name, sizeof name, "w%d", (int)k);
    wk[k] = moss_k_let(b, name, moss_k_cast(b, dt, moss_k_load(b, wb, moss_k_addc(b, moss_k_mulc(b, c, taps), k))));
  }
  if (ig->int8)
    init = moss_k_flt(b, dt, 0); /* the bias comes in the epilogue */
  else
    init = moss_k_let(b, "b0", moss_node_input(n, 2) ? moss_k_load(b, moss_k_input(b, 2), c) : moss_k_flt(b, dt, 0));
  vinit = lanes > 1 ? moss_k_let(b, "bv", moss_k_splat(b, init, lanes)) : NULL;
  if (flat) {
    /* The grid in vectors (it is a multiple of 16 elements), four at a
     * time, then its valid columns out. */
    int64_t g4 = ig->grid / (4 * lanes) * 4 * lanes;
    for (u = 4; u >= 1; u -= 3) {
      int64_t lo = u == 4 ? 0 : g4, hi = u == 4 ? g4 : ig->grid, q;
      moss_kx *sum[4], *pp;
      if (hi <= lo) continue;
      pp = moss_k_for(b, "p", moss_k_idx(b, lo), moss_k_idx(b, hi), (int64_t)u * lanes, MOSS_KL_PARALLEL, 0);
      for (q = 0; q < u; q++) {
        snprintf(name, sizeof name, "o%d", (int)q);
        sum[q] = moss_k_let(b, name, dw_sum(b, n, xs, wk, off, taps, vinit, gx,
                                            moss_k_addc(b, pp, q * lanes), lanes, q8, c, NULL));
      }
      for (q = 0; q < u; q++) moss_k_store(b, ys, moss_k_add(b, gy, moss_k_addc(b, pp, q * lanes)), sum[q]);
      moss_k_end(b);
    }
    oh = moss_k_range(b, "oh", ig->OH, MOSS_KL_PARALLEL);
    yr = moss_k_let(b, "yr", moss_k_add(b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bb, ig->C), c),
                                                       ig->OH * OW),
                                        moss_k_mulc(b, oh, OW)));
    row = moss_k_let(b, "gr", moss_k_add(b, gy, moss_k_mulc(b, oh, ig->q[1])));
    ow = moss_k_range(b, "ow", OW, MOSS_KL_PARALLEL);
    {
      moss_kx *at = moss_k_add(b, yr, ow), *v = moss_k_load(b, ys, moss_k_add(b, row, ow));
      moss_k_store(b, yb, at, residual(n) ? moss_lower_conv_out(b, n, v, at, "v") : v);
    }
    moss_k_end(b);
    moss_k_end(b);
    moss_k_end(b); /* c */
    if (gg) moss_k_end(b);
    moss_k_end(b); /* b */
    return;
  }
  oh = moss_k_range(b, "oh", ig->OH, MOSS_KL_PARALLEL);
  row = moss_k_let(b, "pr", moss_k_add(b, gx, moss_k_mulc(b, oh, ig->q[1])));
  yr = moss_k_let(b, "yr", moss_k_add(b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bb, ig->C), c),
                                                     ig->OH * OW),
                                      moss_k_mulc(b, oh, OW)));
  if (!vinit || OW < lanes) {
    ow = moss_k_range(b, "ow", OW, MOSS_KL_PARALLEL);
    moss_k_store(b, yb, moss_k_add(b, yr, ow),
                 dw_sum(b, n, xs, wk, off, taps, init, row, ow, 1, q8, c, moss_k_add(b, yr, ow)));
    moss_k_end(b);
  } else {
    v4 = OW / (4 * lanes) * 4 * lanes;
    v1 = OW / lanes * lanes;
    if (v4 > 0) {
      moss_kx *sum[4];
      ow = moss_k_for(b, "ow", moss_k_idx(b, 0), moss_k_idx(b, v4), 4 * lanes, MOSS_KL_PARALLEL, 0);
      for (u = 0; u < 4; u++) {
        snprintf(name, sizeof name, "o%d", u);
        sum[u] = moss_k_let(b, name, dw_sum(b, n, xs, wk, off, taps, vinit, row,
                                            moss_k_addc(b, ow, (int64_t)u * lanes), lanes, q8, c,
                                            moss_k_add(b, yr, moss_k_addc(b, ow, (int64_t)u * lanes))));
      }
      for (u = 0; u < 4; u++)
        moss_k_store(b, yb, moss_k_add(b, yr, moss_k_addc(b, ow, (int64_t)u * lanes)), sum[u]);
      moss_k_end(b);
    }
    if (v1 > v4) {
      ow = moss_k_for(b, "ow", moss_k_idx(b, v4), moss_k_idx(b, v1), lanes, MOSS_KL_PARALLEL, 0);
      moss_k_store(b, yb, moss_k_add(b, yr, ow),
                   dw_sum(b, n, xs, wk, off, taps, vinit, row, ow, lanes, q8, c, moss_k_add(b, yr, ow)));
      moss_k_end(b);
    }
    if (OW > v1) {
      ow = moss_k_idx(b, OW - lanes);
      moss_k_store(b, yb, moss_k_add(b, yr, ow),
                   dw_sum(b, n, xs, wk, off, taps, vinit, row, ow, lanes, q8, c, moss_k_add(b, yr, ow)));
    }
  }
  moss_k_end(b); /* oh */
  moss_k_end(b); /* c */
  if (gg) moss_k_end(b);
  moss_k_end(b); /* b */
}

/* The GPU shapes' loops (moss_kernel_cpu.gpu): bm over images x output
 * channels and p over output positions, both parallel, with b = bm / M,
 * m = bm % M and the position's coordinates o[0..nsp). */
static void gpu_open(moss_kb *b, const geom *g, int64_t N, int64_t M, moss_kx **bm, moss_kx **bb, moss_kx **m,
                     moss_kx **pos, moss_kx **o) {
  int k;
  char name[16];
  *bm = moss_k_range(b, "bm", N * M, MOSS_KL_PARALLEL);
  *bb = moss_k_let(b, "b", moss_k_bin(b, MOSS_KX_DIV, *bm, moss_k_idx(b, M)));
  *m = moss_k_let(b, "m", moss_k_bin(b, MOSS_KX_REM, *bm, moss_k_idx(b, M)));
  *pos = moss_k_range(b, "p", prod(g->out, 0, g->nsp), MOSS_KL_PARALLEL);
  for (k = 0; k < g->nsp; k++) {
    snprintf(name, sizeof name, "o%d", k);
    o[k] = moss_k_let(b, name, moss_k_bin(b, MOSS_KX_REM, moss_k_bin(b, MOSS_KX_DIV, *pos, moss_k_idx(b, prod(g->out, k + 1, g->nsp))),
                                          moss_k_idx(b, g->out[k])));
  }
}

/* acc += x[xo] * w[wo]; closes |depth| inner loops and branches and the
 * channel loop; stores the output element (bias in acc, the residual and
 * activation added here) and closes gpu_open's loops. */
static void gpu_close(moss_kb *b, const moss_node *n, const geom *g, moss_kx *acc, moss_kx *xo, moss_kx *wo,
                      int depth, moss_kx *bm, moss_kx *pos) {
  moss_kx *at;
  moss_k_set(b, acc, moss_k_bin(b, MOSS_KX_ADD, acc,
                                moss_k_bin(b, MOSS_KX_MUL, moss_k_load(b, moss_k_input(b, 1), wo),
                                           moss_k_load(b, moss_k_input(b, 0), xo))));
  while (depth--) moss_k_end(b);
  moss_k_end(b); /* c */
  at = moss_k_let(b, "at", moss_k_add(b, moss_k_mulc(b, bm, prod(g->out, 0, g->nsp)), pos));
  moss_k_store(b, moss_k_output(b, 0), at, moss_lower_conv_out(b, n, acc, at, "v"));
  moss_k_end(b); /* p */
  moss_k_end(b); /* bm */
}

/* The GPU's Conv as work-group tiles (lower_gputile.c) of the implicit
 * product Y[m, p] = sum_k W[m, k] X(k, p) per image, k = (c, taps) and
 * X(k, p) the input element tap k of position p reads (0 in the padding). */
typedef struct conv_tile {
  const moss_node *n;
  moss_gtile_conv cv;
  int64_t M, K, P;
  moss_kx *img; /* the image's loop variable */
} conv_tile;

static moss_kx *tile_w(moss_kb *b, const void *arg, moss_kx *m, moss_kx *k) {
  const conv_tile *c = arg;
  moss_kx *in = moss_k_bin(b, MOSS_KX_LAND, moss_k_bin(b, MOSS_KX_LT, m, moss_k_idx(b, c->M)),
                           moss_k_bin(b, MOSS_KX_LT, k, moss_k_idx(b, c->K)));
  return moss_k_load_or(b, moss_k_input(b, 1), moss_k_add(b, moss_k_mulc(b, m, c->K), k), in,
                        moss_k_flt(b, c->n->outputs[0]->dtype, 0.0));
}

static moss_kx *tile_x(moss_kb *b, const void *arg, moss_kx *k, moss_kx *pos) {
  const conv_tile *c = arg;
  moss_kx *in, *at = moss_gtile_patch(b, &c->cv, c->img, k, pos, &in);
  return moss_k_load_or(b, moss_k_input(b, 0), at, in, moss_k_flt(b, c->n->outputs[0]->dtype, 0.0));
}

static moss_kx *tile_bias(moss_kb *b, const void *arg, moss_kx *m) {
  const conv_tile *c = arg;
  return moss_k_load_or(b, moss_k_input(b, 2), m, moss_k_bin(b, MOSS_KX_LT, m, moss_k_idx(b, c->M)),
                        moss_k_flt(b, c->n->outputs[0]->dtype, 0.0));
}

static void tile_store(moss_kb *b, const void *arg, moss_kx *m, moss_kx *pos, moss_kx *v) {
  const conv_tile *c = arg;
  moss_kx *at = moss_k_let(b, "at", moss_k_add(b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, c->img, c->M), m), c->P), pos));
  moss_k_store(b, moss_k_output(b, 0), at, moss_lower_conv_out(b, c->n, v, at, "v"));
}

/* The Conv |n| as work-group tiles, where it has one group and the GPU's
 * limits and its size take them; returns 0 (nothing appended) otherwise. */
static int conv_gpu_tiled(moss_kb *b, const moss_node *n, const geom *g) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1];
  conv_tile c;
  moss_gtile t;
  memset(&c, 0, sizeof c);
  c.n = n;
  c.cv.nsp = g->nsp;
  c.cv.C = x->dims[1];
  memcpy(c.cv.in, g->in, sizeof g->in);
  memcpy(c.cv.out, g->out, sizeof g->out);
  memcpy(c.cv.k, g->k, sizeof g->k);
  memcpy(c.cv.s, g->s, sizeof g->s);
  memcpy(c.cv.d, g->d, sizeof g->d);
  memcpy(c.cv.p, g->p, sizeof g->p);
  c.M = w->dims[0];
  c.K = w->dims[1] * prod(g->k, 0, g->nsp);
  c.P = prod(g->out, 0, g->nsp);
  moss_gtile_set(&t, n->outputs[0]->dtype, c.M, c.P, c.K, tile_w, tile_x, tile_store, &c);
  t.init = moss_node_input(n, 2) ? tile_bias : NULL;
  if (w->dims[1] != c.cv.C || !moss_gtile_takes(&b->cpu, &t)) return 0;
  c.img = moss_k_range(b, "img", x->dims[0], MOSS_KL_PARALLEL);
  moss_gtile_product(b, &t);
  moss_k_end(b);
  return 1;
}

/* The GPU's Conv (moss_kernel_cpu.gpu): one work-item per output element,
 * over two parallel loops (image and channel; position), each summing its
 * bias and products in the CPU loops' order: input channel, then the taps
 * of each dimension, those outside the input skipped. */
static moss_status lower_conv_gpu(moss_kb *b, const moss_node *n, const geom *g) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1];
  moss_dtype dt = n->outputs[0]->dtype;
  int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], Cg = w->dims[1];
  int64_t group = Cg ? C / Cg : 1, Mg = group ? M / group : M;
  int64_t XS = prod(g->in, 0, g->nsp), KS = prod(g->k, 0, g->nsp);
  int k, depth = 0;
  moss_kx *bm, *bb, *m, *pos, *acc, *c, *xo, *wo, *o[MOSS_MAX_RANK], *kk;
  char name[16];
  if (group < 1 || Mg * group != M)
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "group count does not divide the channels");
  if (conv_gpu_tiled(b, n, g)) return b->st;
  gpu_open(b, g, N, M, &bm, &bb, &m, &pos, o);
  acc = moss_k_let(b, "acc", moss_node_input(n, 2) ? moss_k_load(b, moss_k_input(b, 2), m) : moss_k_flt(b, dt, 0));
  c = moss_k_range(b, "c", Cg, MOSS_KL_REDUCE);
  /* input channel (m / Mg) Cg + c of image b */
  xo = moss_k_let(b, "xc", moss_k_mulc(b, moss_k_add(b, moss_k_add(b, moss_k_mulc(b, bb, C),
                                                                     moss_k_mulc(b, moss_k_bin(b, MOSS_KX_DIV, m, moss_k_idx(b, Mg)), Cg)),
                                                      c), XS));
  wo = moss_k_let(b, "wc", moss_k_add(b, moss_k_mulc(b, m, Cg * KS), moss_k_mulc(b, c, KS)));
  for (k = 0; k < g->nsp; k++) {
    moss_kx *i;
    int64_t hi = (g->out[k] - 1) * g->s[k] + (g->k[k] - 1) * g->d[k] - g->p[k];
    snprintf(name, sizeof name, "k%d", k);
    kk = moss_k_range(b, name, g->k[k], MOSS_KL_REDUCE);
    snprintf(name, sizeof name, "i%d", k);
    i = moss_k_let(b, name, tap_pos(b, o[k], kk, g->s[k], g->d[k], g->p[k]));
    depth += 1 + open_inside(b, i, -g->p[k], hi, g->in[k]);
    xo = moss_k_add(b, xo, moss_k_mulc(b, i, prod(g->in, k + 1, g->nsp)));
    wo = moss_k_add(b, wo, moss_k_mulc(b, kk, prod(g->k, k + 1, g->nsp)));
  }
  gpu_close(b, n, g, acc, xo, wo, depth, bm, pos);
  return b->st;
}

static moss_status lower_conv(moss_kb *b, const moss_node *n, const geom *g) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1];
  int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], Cg = w->dims[1];
  int64_t group = Cg ? C / Cg : 1, Mg = group ? M / group : M;
  int64_t XS = prod(g->in, 0, g->nsp), YS = prod(g->out, 0, g->nsp), KS = prod(g->k, 0, g->nsp), hi;
  int L = g->nsp - 1, k, loops, depth = 0;
  moss_kx *bb, *m, *gr, *mm, *xb, *wm, *ym, *yr, *c, *xc, *wc, *xr, *wr;
  moss_kx *o[MOSS_MAX_RANK] = {NULL}, *kk[MOSS_MAX_RANK] = {NULL}, *i[MOSS_MAX_RANK] = {NULL};
  char name[16];
  if (b->cpu.gpu) return lower_conv_gpu(b, n, g);
  if (group < 1 || Mg * group != M)
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "group count does not divide the channels");
  if (group == 1 && pointwise_tiled(b, n, g)) return b->st;
  if (n->scratch_bytes > 0) {
    igemm ig;
    moss_wino wp;
    int64_t need = wino_scratch(n, &b->cpu, &wp);
    if (need > 0 && need <= n->scratch_bytes) {
      moss_lower_winograd(b, n, &wp);
      return b->st;
    }
    need = ig_scratch(n, &b->cpu, &ig);
    /* The planner reserved the scratch for the same machine facts; where
     * it did not (a node lowered for other facts), the direct loops. */
    if (need > 0 && need <= n->scratch_bytes) {
      if (ig.depthwise) lower_depthwise(b, n, &ig);
      else lower_igemm(b, n, &ig, 0);
      return b->st;
    }
  }
  bb = moss_k_range(b, "b", N, MOSS_KL_PARALLEL);
  loops = open_channels(b, group, Mg, &m, &gr, &mm);
  xb = moss_k_mulc(b, bb, C * XS);
  if (gr) xb = moss_k_add(b, xb, moss_k_mulc(b, gr, Cg * XS));
  xb = moss_k_let(b, "xb", xb);
  wm = moss_k_let(b, "wm", moss_k_mulc(b, m, Cg * KS));
  ym = moss_k_let(b, "ym", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bb, M), m), YS));
  for (k = 0; k < L; k++) {
    snprintf(name, sizeof name, "o%d", k);
    o[k] = moss_k_range(b, name, g->out[k], MOSS_KL_PARALLEL);
  }
  yr = named(b, "yr", moss_k_add(b, ym, outer_offset(b, o, g->out, g->nsp)));
  init_loop(b, n, m, yr, g->out[L]);
  c = moss_k_range(b, "c", Cg, MOSS_KL_REDUCE);
  xc = moss_k_let(b, "xc", moss_k_add(b, xb, moss_k_mulc(b, c, XS)));
  wc = moss_k_let(b, "wc", moss_k_add(b, wm, moss_k_mulc(b, c, KS)));
  for (k = 0; k < L; k++) {
    snprintf(name, sizeof name, "k%d", k);
    kk[k] = moss_k_range(b, name, g->k[k], MOSS_KL_REDUCE);
    snprintf(name, sizeof name, "i%d", k);
    i[k] = moss_k_let(b, name, tap_pos(b, o[k], kk[k], g->s[k], g->d[k], g->p[k]));
    hi = (g->out[k] - 1) * g->s[k] + (g->k[k] - 1) * g->d[k] - g->p[k];
    depth += 1 + open_inside(b, i[k], -g->p[k], hi, g->in[k]);
  }
  xr = named(b, "xr", moss_k_add(b, xc, outer_offset(b, i, g->in, g->nsp)));
  wr = named(b, "wr", moss_k_add(b, wc, outer_offset(b, kk, g->k, g->nsp)));
  row_taps(b, g, 1, yr, xr, wr);
  while (depth--) moss_k_end(b);
  moss_k_end(b); /* c */
  act_loop(b, n, yr, g->out[L]);
  for (k = 0; k < L; k++) moss_k_end(b);
  while (loops--) moss_k_end(b);
  moss_k_end(b); /* b */
  return b->st;
}

/* ---- ConvTranspose as a product, then a scatter ---------------------------------------
 *
 * With one group and a constant weight W[C, M, KH, KW], every input
 * position j contributes Z[(m, kh, kw), j] = sum over c of W[c, m, kh, kw]
 * X[c, j] to output (m, i*s + kh*d - p, ...): Z = W^T X is one product on
 * the register tile (M*KH*KW rows, K = C, the image's positions as
 * columns), into arena scratch; then each output plane starts from the
 * bias and adds the taps' rows of Z at their strided places (bounds from
 * the geometry, no checks inside), then the activation. The scatter's adds
 * are M*KH*KW per position, against C times as many in the product. */
#define CT_MAX_TAPS 64

/* The scratch of |n|'s product (0: it keeps the direct loops), its
 * geometry in |g| (2-D). */
static int64_t ct_scratch(const moss_node *n, const moss_kernel_cpu *cpu, geom *g) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1], *y = n->outputs[0];
  moss_kb probe;
  int mr, nr, lanes, t;
  int64_t es, HW, KM, z;
  memset(&probe, 0, sizeof probe);
  if (cpu) probe.cpu = *cpu;
  if (n->op != MOSS_OP_ConvTranspose || n->sparse || !w->data || w->dtype != x->dtype ||
      y->dtype != x->dtype || x->rank < 3 || x->rank > 4 || w->rank != x->rank ||
      moss_attr_int(n, "group", 1) != 1 || w->dims[0] != x->dims[1] || x->dims[0] < 1 ||
      !moss_tile_shape(&probe, x->dtype, &mr, &nr, &lanes))
    return 0;
  get_geom(n, g);
  to_2d(g);
  for (t = 0; t < 2; t++)
    if (g->s[t] < 1 || g->d[t] < 1 || g->k[t] < 1 || g->p[t] < 0) return 0;
  es = (int64_t)moss_dtype_size(x->dtype);
  HW = g->in[0] * g->in[1];
  KM = w->dims[1] * g->k[0] * g->k[1];
  if (g->k[0] * g->k[1] > CT_MAX_TAPS || HW < 8 || KM < 1 || x->dims[1] < 1) return 0;
  if (!moss_i64_mul(KM, HW, &z) || !moss_i64_mul(z, es, &z) || z > IG_MAX_SCRATCH) return 0;
  return z;
}

static void lower_ct_gemm(moss_kb *b, const moss_node *n, const geom *g) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1];
  int64_t N = x->dims[0], C = x->dims[1], M = w->dims[1], HW = g->in[0] * g->in[1];
  int64_t KK = g->k[0] * g->k[1], KM = M * KK, OHW = g->out[0] * g->out[1], kh, kw;
  int mr, nr, lanes, zs, yb = moss_k_output(b, 0);
  moss_tile t;
  moss_kx *bb, *m, *ym, *j;
  char name[160];
  moss_tile_shape(b, x->dtype, &mr, &nr, &lanes);
  zs = moss_k_arena_scratch(b, "z", x->dtype, KM * HW, 0);
  snprintf(name, sizeof name, "'%s' transposed", w->name);
  packed_s_tile(b, &t, x->dtype, KM, HW, C, name, w->data, KM, 1);
  t.v = moss_k_input(b, 0);
  t.v_k = HW;
  t.y = zs;
  t.y_at = moss_k_idx(b, 0);
  t.y_row = HW;
  moss_k_comment(b, "ConvTranspose as Z = W^T X (%lld x %lld x %lld), then each tap's row of Z "
                 "added at its strided place", (long long)KM, (long long)HW, (long long)C);
  bb = moss_k_range(b, "b", N, MOSS_KL_SERIAL);
  t.v_at = moss_k_let(b, "xb", moss_k_mulc(b, bb, C * HW));
  moss_tile_product(b, &t);
  m = moss_k_range(b, "m", M, MOSS_KL_PARALLEL);
  ym = moss_k_let(b, "ym", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bb, M), m), OHW));
  j = moss_k_range(b, "j", OHW, MOSS_KL_PARALLEL);
  moss_k_store(b, yb, moss_k_add(b, ym, j),
               moss_node_input(n, 2) ? moss_k_load(b, moss_k_input(b, 2), m) : moss_k_flt(b, x->dtype, 0));
  moss_k_end(b);
  for (kh = 0; kh < g->k[0]; kh++)
    for (kw = 0; kw < g->k[1]; kw++) {
      int64_t ilo, ihi, jlo, jhi, oh0 = kh * g->d[0] - g->p[0], ow0 = kw * g->d[1] - g->p[1];
      moss_kx *i, *zr, *yr, *jj;
      range(g->in[0], g->s[0], oh0, g->out[0], &ilo, &ihi);
      range(g->in[1], g->s[1], ow0, g->out[1], &jlo, &jhi);
      if (ihi <= ilo || jhi <= jlo) continue;
      i = moss_k_for(b, "i", moss_k_idx(b, ilo), moss_k_idx(b, ihi), 1, MOSS_KL_SERIAL, 0);
      zr = moss_k_let(b, "zr", moss_k_add(b, moss_k_mulc(b, m, KK * HW),
                                          moss_k_addc(b, moss_k_mulc(b, i, g->in[1]), (kh * g->k[1] + kw) * HW)));
      yr = moss_k_let(b, "yr", moss_k_add(b, ym, moss_k_mulc(b, offset(b, moss_k_mulc(b, i, g->s[0]), oh0),
                                                            g->out[1])));
      jj = moss_k_for(b, "j", moss_k_idx(b, jlo), moss_k_idx(b, jhi), 1, MOSS_KL_PARALLEL, 0);
      accumulate(b, yb, moss_k_add(b, yr, offset(b, moss_k_mulc(b, jj, g->s[1]), ow0)),
                 moss_k_load(b, zs, moss_k_add(b, zr, jj)));
      moss_k_end(b);
      moss_k_end(b);
    }
  act_loop(b, n, ym, OHW);
  moss_k_end(b); /* m */
  moss_k_end(b); /* b */
}

/* The GPU's ConvTranspose (moss_kernel_cpu.gpu): one work-item per output
 * element, gathering instead of scattering: output position o takes tap kk
 * of input position i where i s + kk d - p = o, in input channel order,
 * then tap order. */
static moss_status lower_convtranspose_gpu(moss_kb *b, const moss_node *n, const geom *g) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1];
  moss_dtype dt = n->outputs[0]->dtype;
  int64_t N = x->dims[0], C = x->dims[1], Mg = w->dims[1];
  int64_t group = moss_attr_int(n, "group", 1), Cg = group > 0 ? C / group : C, M = Mg * group;
  int64_t XS = prod(g->in, 0, g->nsp), KS = prod(g->k, 0, g->nsp);
  int k, depth = 0;
  moss_kx *bm, *bb, *m, *gr, *pos, *acc, *c, *xo, *wo, *o[MOSS_MAX_RANK];
  char name[16];
  if (group < 1 || Cg * group != C)
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "group count does not divide the channels");
  gpu_open(b, g, N, M, &bm, &bb, &m, &pos, o);
  gr = moss_k_let(b, "gr", moss_k_bin(b, MOSS_KX_DIV, m, moss_k_idx(b, Mg)));
  acc = moss_k_let(b, "acc", moss_node_input(n, 2) ? moss_k_load(b, moss_k_input(b, 2), m) : moss_k_flt(b, dt, 0));
  c = moss_k_range(b, "c", Cg, MOSS_KL_REDUCE);
  /* input channel gr Cg + c of image b; weight row gr Cg + c of [C, M/group, k...], column m % Mg */
  xo = moss_k_let(b, "xc", moss_k_mulc(b, moss_k_add(b, moss_k_add(b, moss_k_mulc(b, bb, C), moss_k_mulc(b, gr, Cg)), c), XS));
  wo = moss_k_let(b, "wc", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, gr, Cg), c), Mg),
                                                      moss_k_bin(b, MOSS_KX_REM, m, moss_k_idx(b, Mg))), KS));
  for (k = 0; k < g->nsp; k++) {
    moss_kx *kk, *t, *ok;
    snprintf(name, sizeof name, "k%d", k);
    kk = moss_k_range(b, name, g->k[k], MOSS_KL_REDUCE);
    snprintf(name, sizeof name, "t%d", k);
    t = moss_k_let(b, name, moss_k_bin(b, MOSS_KX_SUB, moss_k_addc(b, o[k], g->p[k]), moss_k_mulc(b, kk, g->d[k])));
    ok = moss_k_bin(b, MOSS_KX_LAND, moss_k_bin(b, MOSS_KX_GE, t, moss_k_idx(b, 0)),
                    moss_k_bin(b, MOSS_KX_LT, t, moss_k_idx(b, g->in[k] * g->s[k])));
    if (g->s[k] > 1)
      ok = moss_k_bin(b, MOSS_KX_LAND, ok, moss_k_bin(b, MOSS_KX_EQ, moss_k_bin(b, MOSS_KX_REM, t, moss_k_idx(b, g->s[k])),
                                                        moss_k_idx(b, 0)));
    moss_k_if(b, ok);
    depth += 2;
    xo = moss_k_add(b, xo, moss_k_mulc(b, moss_k_bin(b, MOSS_KX_DIV, t, moss_k_idx(b, g->s[k])), prod(g->in, k + 1, g->nsp)));
    wo = moss_k_add(b, wo, moss_k_mulc(b, kk, prod(g->k, k + 1, g->nsp)));
  }
  gpu_close(b, n, g, acc, xo, wo, depth, bm, pos);
  return b->st;
}

static moss_status lower_convtranspose(moss_kb *b, const moss_node *n, const geom *g) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1];
  int64_t N = x->dims[0], C = x->dims[1], Mg = w->dims[1];
  int64_t group = moss_attr_int(n, "group", 1), Cg = group > 0 ? C / group : C, M = Mg * group;
  int64_t XS = prod(g->in, 0, g->nsp), YS = prod(g->out, 0, g->nsp), KS = prod(g->k, 0, g->nsp), hi;
  int L = g->nsp - 1, k, loops, depth = 0;
  moss_kx *bb, *m, *gr, *mm, *xb, *wm, *ym, *yr, *c, *xc, *wc, *xr, *wr;
  moss_kx *o[MOSS_MAX_RANK] = {NULL}, *kk[MOSS_MAX_RANK] = {NULL}, *i[MOSS_MAX_RANK] = {NULL};
  char name[16];
  if (b->cpu.gpu) return lower_convtranspose_gpu(b, n, g);
  if (group < 1 || Cg * group != C)
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "group count does not divide the channels");
  bb = moss_k_range(b, "b", N, MOSS_KL_PARALLEL);
  loops = open_channels(b, group, Mg, &m, &gr, &mm);
  ym = moss_k_let(b, "ym", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bb, M), m), YS));
  init_loop(b, n, m, ym, YS);
  xb = moss_k_mulc(b, bb, C * XS);
  if (gr) xb = moss_k_add(b, xb, moss_k_mulc(b, gr, Cg * XS));
  xb = moss_k_let(b, "xb", xb);
  /* Weight layout [C, M/group, k...]: input channel c of group g is row
   * g*Cg + c, output channel mm within the group is column mm. */
  wm = moss_k_mulc(b, mm, KS);
  if (gr) wm = moss_k_add(b, moss_k_mulc(b, gr, Cg * Mg * KS), wm);
  wm = moss_k_let(b, "wm", wm);
  c = moss_k_range(b, "c", Cg, MOSS_KL_REDUCE);
  xc = moss_k_let(b, "xc", moss_k_add(b, xb, moss_k_mulc(b, c, XS)));
  wc = moss_k_let(b, "wc", moss_k_add(b, wm, moss_k_mulc(b, c, Mg * KS)));
  for (k = 0; k < L; k++) {
    snprintf(name, sizeof name, "i%d", k);
    i[k] = moss_k_range(b, name, g->in[k], MOSS_KL_REDUCE);
  }
  for (k = 0; k < L; k++) {
    snprintf(name, sizeof name, "k%d", k);
    kk[k] = moss_k_range(b, name, g->k[k], MOSS_KL_REDUCE);
    snprintf(name, sizeof name, "o%d", k);
    o[k] = moss_k_let(b, name, tap_pos(b, i[k], kk[k], g->s[k], g->d[k], g->p[k]));
    hi = (g->in[k] - 1) * g->s[k] + (g->k[k] - 1) * g->d[k] - g->p[k];
    depth += 1 + open_inside(b, o[k], -g->p[k], hi, g->out[k]);
  }
  yr = named(b, "yr", moss_k_add(b, ym, outer_offset(b, o, g->out, g->nsp)));
  xr = named(b, "xr", moss_k_add(b, xc, outer_offset(b, i, g->in, g->nsp)));
  wr = named(b, "wr", moss_k_add(b, wc, outer_offset(b, kk, g->k, g->nsp)));
  row_taps(b, g, 0, yr, xr, wr);
  while (depth--) moss_k_end(b); /* k, if */
  for (k = 0; k < L; k++) moss_k_end(b); /* i */
  moss_k_end(b); /* c */
  act_loop(b, n, ym, YS);
  while (loops--) moss_k_end(b);
  moss_k_end(b); /* b */
  return b->st;
}

moss_status moss_lower_conv(moss_kb *b, const moss_node *n) {
  geom g;
  moss_dtype dt = n->outputs[0]->dtype;
  if (n->sparse)
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "no kernel description for a sparse weight yet");
  if (dt != MOSS_DT_F32 && dt != MOSS_DT_F64 && !(dt == MOSS_DT_F16 && moss_kb_dtype_ok(b, dt)))
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "type %s (float32 and float64 only)",
                        moss_dtype_name(dt));
  if (n->inputs[0]->rank < 3 || n->inputs[1]->rank != n->inputs[0]->rank)
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "input and weight ranks %d and %d",
                        n->inputs[0]->rank, n->inputs[1]->rank);
  if (n->op == MOSS_OP_ConvTranspose && n->scratch_bytes > 0) {
    int64_t need = ct_scratch(n, &b->cpu, &g);
    if (need > 0 && need <= n->scratch_bytes) { /* else: lowered for other facts than planned */
      lower_ct_gemm(b, n, &g);
      return b->st;
    }
  }
  get_geom(n, &g);
  if (n->op == MOSS_OP_ConvTranspose) return lower_convtranspose(b, n, &g);
  return lower_conv(b, n, &g);
}
