/* lower_region.c - RoiAlign and TfIdfVectorizer as kernel descriptions.
 *
 * RoiAlign: one work-item per output element (roi, channel, bin). Each
 * reads its roi and batch index at run time, computes the bin and its
 * grid of samples as ONNX's reference does (op_roi_align.py, ONNX Runtime's
 * kernel), in X's type, and sums (avg) or takes the largest (max) of the
 * bilinear samples. Run-time rois may lie anywhere, or be NaN, so every
 * load stays in bounds by construction: a sample outside [-1, H] x [-1, W]
 * (NaN included: the comparisons are false) adds nothing and reads nothing,
 * one inside reads its four corners clamped into the image as the spec
 * clamps them, and a batch index outside [0, N) gives zeros. An adaptive
 * grid (sampling_ratio 0: ceil(bin size) samples per axis) is cut at
 * 4 (max(H, W) + 2) per axis (NaN gives 0), so the float-to-integer
 * conversion is defined and a run's time bounded; rois up to four times
 * the image's size are sampled exactly as the spec says.
 *
 * Max mode is ONNX's reference (and ONNX Runtime's CPU kernel): each
 * sample's value is the largest of its four weighted corners w_i x_i (not
 * the interpolated value), and the bin's the largest over its samples; a
 * sample outside the image counts as 0, and a bin without samples is 0.
 * Other implementations (torchvision, ONNX Runtime's CUDA kernel) take the
 * largest interpolated value; ONNX's node tests cover avg only.
 *
 * TfIdfVectorizer: the pool's n-grams of the counted sizes are put in
 * constant tables at compile time, grouped by output column (a repeated
 * n-gram counts once, for its last id, as in the reference's trie). One
 * work-item per (row, column) counts, for each of its n-grams, every start
 * and skip distance (1 .. max_skip_count + 1; unigrams once) at which the
 * row holds it, comparing item by item; the count then becomes TF, IDF
 * (the column's weight where it is > 0) or TF-IDF (weight * count). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ops/region.h"
#include "lower.h"

static moss_kx *bin(moss_kb *b, moss_kx_op op, moss_kx *x, moss_kx *y) {
  return moss_k_bin(b, op, x, y);
}
static moss_kx *both(moss_kb *b, moss_kx *x, moss_kx *y) { return bin(b, MOSS_KX_LAND, x, y); }

/* The bin's start and size on one axis and its grid of samples, from the
 * roi's first and last coordinates |a| and |z|. */
typedef struct ra_axis {
  moss_kx *start, *bin, *grid;
} ra_axis;

static void ra_axis_compute(moss_kb *b, const moss_roialign *r, moss_dtype dt, moss_kx *a,
                            moss_kx *z, int64_t out, int64_t cap, const char *nm, ra_axis *ax) {
  moss_kx *scale = moss_k_flt(b, dt, (double)r->scale), *len, *q, *zero = moss_k_zero(b, dt);
  char name[16];
  moss_kx *s = a, *e = z;
  if (r->scale != 1.0f) { /* x * 1 is x: the multiply is left out */
    s = bin(b, MOSS_KX_MUL, s, scale);
    e = bin(b, MOSS_KX_MUL, e, scale);
  }
  if (r->half_pixel) {
    s = bin(b, MOSS_KX_SUB, s, moss_k_flt(b, dt, 0.5));
    e = bin(b, MOSS_KX_SUB, e, moss_k_flt(b, dt, 0.5));
  }
  snprintf(name, sizeof name, "s%s", nm);
  ax->start = moss_k_let(b, name, s);
  len = bin(b, MOSS_KX_SUB, e, ax->start);
  if (!r->half_pixel) /* malformed rois are 1 x 1 */
    len = bin(b, MOSS_KX_MAX, len, moss_k_flt(b, dt, 1.0));
  snprintf(name, sizeof name, "b%s", nm);
  ax->bin = moss_k_let(b, name, bin(b, MOSS_KX_DIV, len, moss_k_flt(b, dt, (double)out)));
  if (r->sampling > 0) {
    ax->grid = moss_k_idx(b, r->sampling);
    return;
  }
  /* ceil(bin) within [0, cap]; the comparisons are false for NaN. */
  q = moss_k_call(b, MOSS_KFN_CEIL, ax->bin, NULL, NULL);
  q = moss_k_select(b, bin(b, MOSS_KX_GT, q, zero), q, zero);
  q = moss_k_select(b, bin(b, MOSS_KX_LT, q, moss_k_flt(b, dt, (double)cap)), q,
                    moss_k_flt(b, dt, (double)cap));
  snprintf(name, sizeof name, "g%s", nm);
  ax->grid = moss_k_let(b, name, moss_k_cast(b, MOSS_DT_I64, q));
}

/* The sample coordinate start + p * bin + (i + 0.5) * bin / grid. */
static moss_kx *ra_coord(moss_kb *b, moss_dtype dt, const ra_axis *ax, moss_kx *p, moss_kx *i) {
  moss_kx *off = bin(b, MOSS_KX_MUL, moss_k_cast(b, dt, p), ax->bin);
  moss_kx *in = bin(b, MOSS_KX_ADD, moss_k_cast(b, dt, i), moss_k_flt(b, dt, 0.5));
  in = bin(b, MOSS_KX_DIV, bin(b, MOSS_KX_MUL, in, ax->bin), moss_k_cast(b, dt, ax->grid));
  return bin(b, MOSS_KX_ADD, bin(b, MOSS_KX_ADD, ax->start, off), in);
}

/* The low and high corner and the weight of the high one for the
 * coordinate |v| in [-1, L] on an axis of |L| > 0 elements, as the spec
 * clamps it: v < 0 reads 0, v past L - 1 reads L - 1 with weight 0. */
static void ra_corner(moss_kb *b, moss_dtype dt, moss_kx *v, int64_t L, const char *nm,
                      moss_kx **out_lo, moss_kx **out_hi, moss_kx **out_w) {
  moss_kx *zero = moss_k_zero(b, dt), *c, *lo, *last = moss_k_idx(b, L - 1), *edge;
  char name[16];
  c = moss_k_select(b, bin(b, MOSS_KX_LT, v, zero), zero, v);
  snprintf(name, sizeof name, "%sc", nm);
  c = moss_k_let(b, name, c);
  snprintf(name, sizeof name, "%si", nm);
  lo = moss_k_let(b, name, moss_k_cast(b, MOSS_DT_I64, c));
  edge = bin(b, MOSS_KX_GE, lo, last);
  snprintf(name, sizeof name, "%sl", nm);
  *out_lo = moss_k_let(b, name, moss_k_select(b, edge, last, lo));
  *out_hi = moss_k_select(b, edge, last, moss_k_addc(b, lo, 1));
  snprintf(name, sizeof name, "%sw", nm);
  *out_w =
      moss_k_let(b, name,
                 bin(b, MOSS_KX_SUB, moss_k_select(b, edge, moss_k_flt(b, dt, (double)(L - 1)), c),
                     moss_k_cast(b, dt, *out_lo)));
}

static moss_status lower_roialign(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *rois = n->inputs[1], *y = n->outputs[0];
  moss_dtype dt = x->dtype;
  int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3], R = rois->dims[0];
  int64_t cap = 4 * ((H > W ? H : W) + 2);
  moss_roialign r;
  int xb, rb, ib, yb;
  moss_kx *ri, *ci, *pi, *ph, *pw, *bi, *ok, *base, *acc, *seen = NULL, *iy, *ix, *yy, *xx;
  moss_kx *inside, *yl, *yh, *ly, *xl, *xh, *lx, *hy, *hx, *v[4], *w[4], *val, *cnt, *one, *at;
  ra_axis ay, ax;
  int k;
  if (moss_roialign_compute(b->ctx, n, &r) != MOSS_OK)
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "RoiAlign attributes");
  if (moss_value_numel(y) == 0) {
    moss_k_comment(b, "empty output");
    return b->st;
  }
  yb = moss_k_output(b, 0);
  ri = moss_k_range(b, "r", R, MOSS_KL_PARALLEL);
  ci = moss_k_range(b, "c", C, MOSS_KL_PARALLEL);
  pi = moss_k_range(b, "p", r.oh * r.ow, MOSS_KL_PARALLEL);
  at = moss_k_add(b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, ri, C), ci), r.oh * r.ow), pi);
  if (N * H * W == 0) { /* no image to sample: every bin is 0 */
    moss_k_store(b, yb, at, moss_k_zero(b, dt));
    for (k = 0; k < 3; k++) moss_k_end(b);
    return b->st;
  }
  xb = moss_k_input(b, 0);
  rb = moss_k_input(b, 1);
  ib = moss_k_input(b, 2);
  ph = moss_k_let(b, "ph", bin(b, MOSS_KX_DIV, pi, moss_k_idx(b, r.ow)));
  pw = moss_k_let(b, "pw", bin(b, MOSS_KX_REM, pi, moss_k_idx(b, r.ow)));
  bi = moss_k_let(b, "bi", moss_k_load(b, ib, ri));
  ra_axis_compute(b, &r, dt, moss_k_load(b, rb, moss_k_addc(b, moss_k_mulc(b, ri, 4), 1)),
                  moss_k_load(b, rb, moss_k_addc(b, moss_k_mulc(b, ri, 4), 3)), r.oh, cap, "h",
                  &ay);
  ra_axis_compute(b, &r, dt, moss_k_load(b, rb, moss_k_mulc(b, ri, 4)),
                  moss_k_load(b, rb, moss_k_addc(b, moss_k_mulc(b, ri, 4), 2)), r.ow, cap, "w",
                  &ax);
  acc = moss_k_let(b, "acc", moss_k_zero(b, dt));
  if (r.max_mode) seen = moss_k_let(b, "seen", moss_k_idx(b, 0));
  ok = both(b, bin(b, MOSS_KX_GE, bi, moss_k_idx(b, 0)), bin(b, MOSS_KX_LT, bi, moss_k_idx(b, N)));
  moss_k_if(b, ok);
  base = moss_k_let(b, "base", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bi, C), ci), H * W));
  iy = moss_k_for(b, "iy", moss_k_idx(b, 0), ay.grid, 1, MOSS_KL_SERIAL, 0);
  yy = moss_k_let(b, "yy", ra_coord(b, dt, &ay, ph, iy));
  ix = moss_k_for(b, "ix", moss_k_idx(b, 0), ax.grid, 1, MOSS_KL_SERIAL, 0);
  xx = moss_k_let(b, "xx", ra_coord(b, dt, &ax, pw, ix));
  inside = both(b,
                both(b, bin(b, MOSS_KX_GE, yy, moss_k_flt(b, dt, -1.0)),
                     bin(b, MOSS_KX_LE, yy, moss_k_flt(b, dt, (double)H))),
                both(b, bin(b, MOSS_KX_GE, xx, moss_k_flt(b, dt, -1.0)),
                     bin(b, MOSS_KX_LE, xx, moss_k_flt(b, dt, (double)W))));
  val = r.max_mode ? moss_k_let(b, "val", moss_k_zero(b, dt)) : NULL;
  moss_k_if(b, inside);
  one = moss_k_flt(b, dt, 1.0);
  ra_corner(b, dt, yy, H, "y", &yl, &yh, &ly);
  ra_corner(b, dt, xx, W, "x", &xl, &xh, &lx);
  hy = bin(b, MOSS_KX_SUB, one, ly);
  hx = bin(b, MOSS_KX_SUB, one, lx);
  w[0] = bin(b, MOSS_KX_MUL, hy, hx);
  w[1] = bin(b, MOSS_KX_MUL, hy, lx);
  w[2] = bin(b, MOSS_KX_MUL, ly, hx);
  w[3] = bin(b, MOSS_KX_MUL, ly, lx);
  yl = moss_k_add(b, base, moss_k_mulc(b, yl, W));
  yh = moss_k_let(b, "yh", moss_k_add(b, base, moss_k_mulc(b, yh, W)));
  xh = moss_k_let(b, "xh", xh);
  v[0] = moss_k_load(b, xb, moss_k_add(b, yl, xl));
  v[1] = moss_k_load(b, xb, moss_k_add(b, yl, xh));
  v[2] = moss_k_load(b, xb, moss_k_add(b, yh, xl));
  v[3] = moss_k_load(b, xb, moss_k_add(b, yh, xh));
  if (r.max_mode) { /* the largest weighted corner, the first of equals */
    moss_kx *m = bin(b, MOSS_KX_MUL, w[0], v[0]);
    for (k = 1; k < 4; k++) m = bin(b, MOSS_KX_MAX, bin(b, MOSS_KX_MUL, w[k], v[k]), m);
    moss_k_set(b, val, m);
  } else {
    moss_kx *s = bin(b, MOSS_KX_MUL, w[0], v[0]);
    for (k = 1; k < 4; k++) s = bin(b, MOSS_KX_ADD, s, bin(b, MOSS_KX_MUL, w[k], v[k]));
    moss_k_set(b, acc, bin(b, MOSS_KX_ADD, acc, s));
  }
  moss_k_end(b); /* if inside */
  if (r.max_mode) {
    moss_k_set(b, acc,
               moss_k_select(b, bin(b, MOSS_KX_NE, seen, moss_k_idx(b, 0)),
                             bin(b, MOSS_KX_MAX, val, acc), val));
    moss_k_set(b, seen, moss_k_idx(b, 1));
  }
  moss_k_end(b); /* ix */
  moss_k_end(b); /* iy */
  moss_k_end(b); /* if ok */
  if (r.max_mode) {
    moss_k_store(b, yb, at, acc);
  } else { /* the mean over max(grid_h * grid_w, 1) samples */
    cnt = r.sampling > 0 ? moss_k_idx(b, r.sampling * r.sampling)
                         : bin(b, MOSS_KX_MAX, moss_k_mul(b, ay.grid, ax.grid), moss_k_idx(b, 1));
    moss_k_store(b, yb, at, bin(b, MOSS_KX_DIV, acc, moss_k_cast(b, dt, cnt)));
  }
  for (k = 0; k < 3; k++) moss_k_end(b);
  return b->st;
}

/* One n-gram of the pool that is counted: its |size| items from |items|,
 * its id (its position among all the pool's n-grams) and output column. */
typedef struct tf_gram {
  const int64_t *items;
  int64_t size, id, col;
} tf_gram;

/* By items (size first), then id: equal n-grams end up together, the last
 * id last. */
static int by_items(const void *pa, const void *pb) {
  const tf_gram *a = pa, *c = pb;
  int64_t k;
  if (a->size != c->size) return a->size < c->size ? -1 : 1;
  for (k = 0; k < a->size; k++)
    if (a->items[k] != c->items[k]) return a->items[k] < c->items[k] ? -1 : 1;
  return a->id < c->id ? -1 : a->id > c->id;
}

static int by_col(const void *pa, const void *pb) {
  const tf_gram *a = pa, *c = pb;
  if (a->col != c->col) return a->col < c->col ? -1 : 1;
  return a->id < c->id ? -1 : a->id > c->id;
}

static int same_items(const tf_gram *a, const tf_gram *c) {
  return a->size == c->size && !memcmp(a->items, c->items, sizeof *a->items * (size_t)a->size);
}

static moss_status lower_tfidf(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  int64_t B = x->rank == 2 ? x->dims[0] : 1, L = x->rank == 0 ? 1 : x->dims[x->rank - 1];
  int64_t G = 0, K = 0, id = 0, i, j, s, *start, *len, *off, *skips, *items;
  moss_tfidf t;
  tf_gram *g;
  int xb, yb, tb_start, tb_len, tb_off, tb_skip, tb_items, tb_w = -1;
  moss_kx *row, *col, *cnt, *tv, *gl, *go, *d, *st, *m, *k, *c, *out;
  if (moss_tfidf_compute(b->ctx, n, &t) != MOSS_OK)
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "TfIdfVectorizer attributes");
  if (moss_value_numel(y) == 0) {
    moss_k_comment(b, "empty output");
    return b->st;
  }
  /* The counted n-grams, in pool order. */
  for (i = 0; i < t.ncounts; i++) {
    int64_t lo = t.counts[i], hi = i + 1 < t.ncounts ? t.counts[i + 1] : t.npool;
    if (i + 1 >= t.min_n && i + 1 <= t.max_n) G += (hi - lo) / (i + 1);
  }
  g = moss_arena_alloc(b->arena, sizeof *g * (size_t)(G + 1), 16);
  if (!g) return moss_kb_fail(b, MOSS_E_NOMEM, "n-gram tables");
  G = 0;
  for (i = 0; i < t.ncounts; i++) {
    int64_t lo = t.counts[i], hi = i + 1 < t.ncounts ? t.counts[i + 1] : t.npool, size = i + 1;
    for (j = lo; j + size <= hi; j += size, id++) {
      if (size < t.min_n || size > t.max_n) continue;
      g[G].items = t.pool + j;
      g[G].size = size;
      g[G].id = id;
      g[G].col = t.indexes[id];
      G++;
    }
  }
  /* A repeated n-gram counts once, for its last id. */
  qsort(g, (size_t)G, sizeof *g, by_items);
  for (i = j = 0; i < G; i++)
    if (i + 1 == G || !same_items(&g[i], &g[i + 1])) g[j++] = g[i];
  G = j;
  qsort(g, (size_t)G, sizeof *g, by_col);
  for (i = 0; i < G; i++) K += g[i].size;
  start = moss_arena_alloc(b->arena, sizeof *start * (size_t)(t.out + 1), 16);
  len = moss_arena_alloc(b->arena, sizeof *len * (size_t)(G + 1), 16);
  off = moss_arena_alloc(b->arena, sizeof *off * (size_t)(G + 1), 16);
  skips = moss_arena_alloc(b->arena, sizeof *skips * (size_t)(G + 1), 16);
  items = moss_arena_alloc(b->arena, sizeof *items * (size_t)(K + 1), 16);
  if (!start || !len || !off || !skips || !items)
    return moss_kb_fail(b, MOSS_E_NOMEM, "n-gram tables");
  for (i = j = s = 0; i <= t.out; i++) { /* start[c]: the first n-gram of column c */
    while (j < G && g[j].col < i) j++;
    start[i] = j;
  }
  for (i = 0; i < G; i++) {
    len[i] = g[i].size;
    off[i] = s;
    memcpy(items + s, g[i].items, sizeof *items * (size_t)g[i].size);
    s += g[i].size;
    /* Skip distances 1 .. max_skip + 1 while the n-gram fits in a row;
     * a unigram once. */
    if (g[i].size == 1) {
      skips[i] = 1;
    } else {
      int64_t fit = L > 0 ? (L - 1) / (g[i].size - 1) : 0;
      skips[i] = t.max_skip < fit ? t.max_skip + 1 : fit;
    }
  }
  yb = moss_k_output(b, 0);
  if (t.mode != MOSS_TFIDF_TF && t.weights)
    tb_w = moss_k_table(b, "weights", MOSS_DT_F32, t.out, t.weights);
  moss_k_comment(b, "%lld n-grams of sizes %lld to %lld, skips up to %lld, mode %s", (long long)G,
                 (long long)t.min_n, (long long)t.max_n, (long long)t.max_skip,
                 t.mode == MOSS_TFIDF_TF    ? "TF"
                 : t.mode == MOSS_TFIDF_IDF ? "IDF"
                                            : "TFIDF");
  row = moss_k_range(b, "b", B, MOSS_KL_PARALLEL);
  col = moss_k_range(b, "c", t.out, MOSS_KL_PARALLEL);
  cnt = moss_k_let(b, "cnt", moss_k_idx(b, 0));
  if (G > 0 && L > 0) {
    xb = moss_k_input(b, 0);
    tb_start = moss_k_table(b, "col_first", MOSS_DT_I64, t.out + 1, start);
    tb_len = moss_k_table(b, "gram_size", MOSS_DT_I64, G, len);
    tb_off = moss_k_table(b, "gram_at", MOSS_DT_I64, G, off);
    tb_skip = moss_k_table(b, "gram_skips", MOSS_DT_I64, G, skips);
    tb_items = moss_k_table(b, "grams", MOSS_DT_I64, K, items);
    tv = moss_k_for(b, "t", moss_k_load(b, tb_start, col),
                    moss_k_load(b, tb_start, moss_k_addc(b, col, 1)), 1, MOSS_KL_SERIAL, 0);
    gl = moss_k_let(b, "n", moss_k_load(b, tb_len, tv));
    go = moss_k_let(b, "at", moss_k_load(b, tb_off, tv));
    d = moss_k_for(b, "d", moss_k_idx(b, 1), moss_k_addc(b, moss_k_load(b, tb_skip, tv), 1), 1,
                   MOSS_KL_SERIAL, 0);
    /* starts s with s + (n - 1) d < L: every item read is in the row */
    st = moss_k_for(b, "s", moss_k_idx(b, 0),
                    bin(b, MOSS_KX_SUB, moss_k_idx(b, L), moss_k_mul(b, moss_k_addc(b, gl, -1), d)),
                    1, MOSS_KL_SERIAL, 0);
    m = moss_k_let(b, "m", moss_k_idx(b, 1));
    k = moss_k_for(b, "k", moss_k_idx(b, 0), gl, 1, MOSS_KL_SERIAL, 0);
    c = moss_k_load(b, xb,
                    moss_k_add(b, moss_k_mulc(b, row, L), moss_k_add(b, st, moss_k_mul(b, k, d))));
    c = bin(b, MOSS_KX_EQ, moss_k_cast(b, MOSS_DT_I64, c),
            moss_k_load(b, tb_items, moss_k_add(b, go, k)));
    moss_k_set(b, m, bin(b, MOSS_KX_BAND, m, moss_k_cast(b, MOSS_DT_I64, c)));
    moss_k_end(b); /* k */
    moss_k_set(b, cnt, moss_k_add(b, cnt, m));
    moss_k_end(b); /* s */
    moss_k_end(b); /* d */
    moss_k_end(b); /* t */
  }
  out = moss_k_cast(b, MOSS_DT_F32, cnt);
  if (t.mode == MOSS_TFIDF_IDF)
    out = moss_k_select(b, bin(b, MOSS_KX_GT, cnt, moss_k_idx(b, 0)),
                        tb_w >= 0 ? moss_k_load(b, tb_w, col) : moss_k_flt(b, MOSS_DT_F32, 1.0),
                        moss_k_zero(b, MOSS_DT_F32));
  else if (t.mode == MOSS_TFIDF_TFIDF && tb_w >= 0)
    out = bin(b, MOSS_KX_MUL, moss_k_load(b, tb_w, col), out);
  moss_k_store(b, yb, moss_k_add(b, moss_k_mulc(b, row, t.out), col), out);
  moss_k_end(b); /* c */
  moss_k_end(b); /* b */
  return b->st;
}

moss_status moss_lower_region(moss_kb *b, const moss_node *n) {
  if (n->op == MOSS_OP_RoiAlign) return lower_roialign(b, n);
  return lower_tfidf(b, n);
}
