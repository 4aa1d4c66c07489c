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
#include <stdio.h>
#include <string.h>

#include "lower.h"

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
  const moss_value *x = n->inputs[0], *w = n->inputs[1], *y = n->outputs[0];
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

/* y[base + j] = act(y[base + j]) for j in [0, cnt), when |n| has a fused
 * activation. */
static void act_loop(moss_kb *b, const moss_node *n, moss_kx *base, int64_t cnt) {
  int yb = moss_k_output(b, 0);
  moss_kx *j, *at;
  if (!n->act.kind) return;
  j = moss_k_range(b, "j", cnt, MOSS_KL_PARALLEL);
  at = moss_k_add(b, base, j);
  moss_k_store(b, yb, at, moss_k_act(b, n, moss_k_let(b, "v", moss_k_load(b, yb, at))));
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

/* The pointwise Conv's epilogue on the register tile: bias and activation. */
static moss_kx *pw_epilogue(moss_kb *b, const void *arg, moss_kx *v, moss_kx *i, moss_kx *j, int r) {
  const moss_node *n = arg;
  char name[16];
  (void)j;
  if (moss_node_input(n, 2)) v = moss_k_bin(b, MOSS_KX_ADD, v, moss_k_load(b, moss_k_input(b, 2), i));
  if (!n->act.kind) return v;
  snprintf(name, sizeof name, "v%d", r); /* the activation reads its operand more than once */
  return moss_k_act(b, n, moss_k_let(b, name, v));
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
  memset(&t, 0, sizeof t);
  t.dt = x->dtype;
  t.M = M;
  t.N = P;
  t.K = C;
  snprintf(name, sizeof name, "'%s' packed in blocks of %d rows", w->name, mr);
  t.s = moss_tile_pack(b, name, w->dtype, w->data, C, M, 1, C, mr);
  t.s_packed = 1;
  t.s_at = moss_k_idx(b, 0);
  t.v = moss_k_input(b, 0);
  t.v_k = P;
  t.y = moss_k_output(b, 0);
  t.y_row = P;
  if (moss_node_input(n, 2) || n->act.kind) {
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

static moss_status lower_conv(moss_kb *b, const moss_node *n, const geom *g) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1];
  int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], Cg = w->dims[1];
  int64_t group = Cg ? C / Cg : 1, Mg = group ? M / group : M;
  int64_t XS = prod(g->in, 0, g->nsp), YS = prod(g->out, 0, g->nsp), KS = prod(g->k, 0, g->nsp), hi;
  int L = g->nsp - 1, k, loops, depth = 0;
  moss_kx *bb, *m, *gr, *mm, *xb, *wm, *ym, *yr, *c, *xc, *wc, *xr, *wr;
  moss_kx *o[MOSS_MAX_RANK] = {NULL}, *kk[MOSS_MAX_RANK] = {NULL}, *i[MOSS_MAX_RANK] = {NULL};
  char name[16];
  if (group < 1 || Mg * group != M)
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "group count does not divide the channels");
  if (group == 1 && pointwise_tiled(b, n, g)) return b->st;
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

static moss_status lower_convtranspose(moss_kb *b, const moss_node *n, const geom *g) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1];
  int64_t N = x->dims[0], C = x->dims[1], Mg = w->dims[1];
  int64_t group = moss_attr_int(n, "group", 1), Cg = group > 0 ? C / group : C, M = Mg * group;
  int64_t XS = prod(g->in, 0, g->nsp), YS = prod(g->out, 0, g->nsp), KS = prod(g->k, 0, g->nsp), hi;
  int L = g->nsp - 1, k, loops, depth = 0;
  moss_kx *bb, *m, *gr, *mm, *xb, *wm, *ym, *yr, *c, *xc, *wc, *xr, *wr;
  moss_kx *o[MOSS_MAX_RANK] = {NULL}, *kk[MOSS_MAX_RANK] = {NULL}, *i[MOSS_MAX_RANK] = {NULL};
  char name[16];
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
  if (dt != MOSS_DT_F32 && dt != MOSS_DT_F64)
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "type %s (float32 and float64 only)",
                        moss_dtype_name(dt));
  if (n->inputs[0]->rank < 3 || n->inputs[1]->rank != n->inputs[0]->rank)
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "input and weight ranks %d and %d",
                        n->inputs[0]->rank, n->inputs[1]->rank);
  get_geom(n, &g);
  if (n->op == MOSS_OP_ConvTranspose) return lower_convtranspose(b, n, &g);
  return lower_conv(b, n, &g);
}
