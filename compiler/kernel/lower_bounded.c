/* lower_bounded.c - the operators whose output length only the run knows
 * (ops/bounded.c, docs/dynamic-shapes.md): NonZero, Unique,
 * NonMaxSuppression, and MossCompact, which copies a bounded graph output
 * compact into the caller's buffer. Each producer walks its input in
 * order in one serial loop, writes the rows it keeps at the front of the
 * padded layout, zeros the rest (so what follows computes on defined
 * data), and stores the count in its length output. They are serial by
 * nature; their inputs are small in the models that use them (a
 * detector's candidate boxes, a mask). */
#include "lower.h"

/* The buffer of |n|'s length output. */
static int length_buf(moss_kb *b, const moss_node *n) {
  return moss_k_output(b, moss_op_infos[n->op].max_out);
}

static moss_kx *inc(moss_kb *b, moss_kx *x) { return moss_k_addc(b, x, 1); }

static moss_kx *cmp(moss_kb *b, moss_kx_op op, moss_kx *x, moss_kx *y) {
  return moss_k_bin(b, op, x, y);
}

/* NonZero: y[k][cnt] = the k-th coordinate of each nonzero element. */
static moss_status lower_nonzero(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  int64_t N = moss_value_numel(x), B = y->dims[1], st[MOSS_MAX_RANK];
  int xb = moss_k_input(b, 0), yb = moss_k_output(b, 0), k;
  moss_kx *cnt, *i, *j;
  moss_strides(x->rank, x->dims, st);
  cnt = moss_k_let(b, "cnt", moss_k_idx(b, 0));
  if (N > 0) {
    i = moss_k_range(b, "i", N, MOSS_KL_SERIAL);
    moss_k_if(b, cmp(b, MOSS_KX_NE, moss_k_load(b, xb, i), moss_k_zero(b, x->dtype)));
    for (k = 0; k < x->rank; k++) {
      moss_kx *c = x->dims[k] == 1 ? moss_k_idx(b, 0) : moss_k_bin(b, MOSS_KX_DIV, i, moss_k_idx(b, st[k]));
      if (k > 0 && x->dims[k] != 1) c = moss_k_bin(b, MOSS_KX_REM, c, moss_k_idx(b, x->dims[k]));
      moss_k_store(b, yb, moss_k_addc(b, cnt, k * B), c);
    }
    moss_k_set(b, cnt, inc(b, cnt));
    moss_k_end(b);
    moss_k_end(b);
  }
  if (!y->bounded) return b->st; /* a constant input: folded, but lowerable */
  j = moss_k_for(b, "z", cnt, moss_k_idx(b, B), 1, MOSS_KL_SERIAL, 0);
  for (k = 0; k < x->rank; k++) moss_k_store(b, yb, moss_k_addc(b, j, k * B), moss_k_idx(b, 0));
  moss_k_end(b);
  moss_k_store(b, length_buf(b, n), moss_k_idx(b, 0), cnt);
  return b->st;
}

/* Unique, along |axis| (or over the flattened input): slice j of x is the
 * outer x inner elements x[o][j][e]. The first pass keeps each new slice
 * in order of first occurrence; sorted=1 then sorts the kept slices
 * (insertion sort, lexicographic, as numpy's unique does) and a last pass
 * finds each input slice's place among them. */
typedef struct uq {
  int64_t outer, D, inner; /* x's */
  int xb, yb;
} uq;

/* Element s of slice |j| of x (|in|) or of slot |j| of Y, as an index. */
static moss_kx *elem(moss_kb *b, const uq *q, moss_kx *j, moss_kx *s) {
  moss_kx *o = q->inner == 1 ? s : moss_k_bin(b, MOSS_KX_DIV, s, moss_k_idx(b, q->inner));
  moss_kx *e = q->inner == 1 ? moss_k_idx(b, 0) : moss_k_bin(b, MOSS_KX_REM, s, moss_k_idx(b, q->inner));
  return moss_k_add(b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, o, q->D), j), q->inner), e);
}

/* A BOOL variable: slice |j| of |ab| equals slot |k| of |bb| element for element. */
static moss_kx *same(moss_kb *b, const uq *q, int ab, moss_kx *j, int bb, moss_kx *k) {
  moss_kx *eq = moss_k_let(b, "eq", moss_k_int(b, MOSS_DT_BOOL, 1)), *s;
  s = moss_k_range(b, "s", q->outer * q->inner, MOSS_KL_SERIAL);
  moss_k_if(b, cmp(b, MOSS_KX_NE, moss_k_load(b, ab, elem(b, q, j, s)),
                   moss_k_load(b, bb, elem(b, q, k, s))));
  moss_k_set(b, eq, moss_k_int(b, MOSS_DT_BOOL, 0));
  moss_k_end(b);
  moss_k_end(b);
  return eq;
}

static moss_status lower_unique(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0];
  const moss_attr *ax = moss_node_find_attr(n, "axis");
  int a = ax ? (int)(ax->i < 0 ? ax->i + x->rank : ax->i) : -1, k, ib = -1, vb = -1, cb = -1;
  int sorted = moss_attr_int(n, "sorted", 1) != 0;
  uq q;
  moss_kx *u, *j, *found, *p, *t, *moving, *c, *s, *lt, *at, *prev, *tmp, *z;
  q.outer = q.inner = 1;
  q.D = a >= 0 ? x->dims[a] : moss_value_numel(x);
  for (k = 0; a >= 0 && k < x->rank; k++) {
    if (k < a) q.outer *= x->dims[k];
    if (k > a) q.inner *= x->dims[k];
  }
  q.xb = moss_k_input(b, 0);
  q.yb = moss_k_output(b, 0);
  if (n->noutputs > 1 && n->outputs[1]) ib = moss_k_output(b, 1);
  if (n->noutputs > 2 && n->outputs[2]) vb = moss_k_output(b, 2);
  if (n->noutputs > 3 && n->outputs[3]) cb = moss_k_output(b, 3);
  if (cb < 0) cb = moss_k_local(b, "cnt", MOSS_DT_I64, q.D > 0 ? q.D : 1);
  u = moss_k_let(b, "u", moss_k_idx(b, 0));
  if (q.D > 0 && q.outer * q.inner > 0) {
    /* First occurrences, in order. */
    j = moss_k_range(b, "j", q.D, MOSS_KL_SERIAL);
    found = moss_k_let(b, "found", moss_k_idx(b, -1));
    p = moss_k_for(b, "p", moss_k_idx(b, 0), u, 1, MOSS_KL_SERIAL, 0);
    moss_k_if(b, cmp(b, MOSS_KX_LT, found, moss_k_idx(b, 0)));
    moss_k_if(b, same(b, &q, q.xb, j, q.yb, p));
    moss_k_set(b, found, p);
    moss_k_end(b);
    moss_k_end(b);
    moss_k_end(b); /* p */
    moss_k_if(b, cmp(b, MOSS_KX_LT, found, moss_k_idx(b, 0)));
    s = moss_k_range(b, "s", q.outer * q.inner, MOSS_KL_SERIAL);
    moss_k_store(b, q.yb, elem(b, &q, u, s), moss_k_load(b, q.xb, elem(b, &q, j, s)));
    moss_k_end(b);
    if (ib >= 0) moss_k_store(b, ib, u, j);
    moss_k_store(b, cb, u, moss_k_idx(b, 0));
    moss_k_set(b, found, u);
    moss_k_set(b, u, inc(b, u));
    moss_k_end(b);
    moss_k_store(b, cb, found, inc(b, moss_k_load(b, cb, found)));
    if (vb >= 0) moss_k_store(b, vb, j, found);
    moss_k_end(b); /* j */
    if (sorted) {
      /* Insertion sort of the slots [0, u): slot t moves down while it is
       * less than the one before it. */
      p = moss_k_for(b, "p", moss_k_idx(b, 1), u, 1, MOSS_KL_SERIAL, 0);
      moving = moss_k_let(b, "moving", moss_k_int(b, MOSS_DT_BOOL, 1));
      t = moss_k_for(b, "t", moss_k_idx(b, 0), p, 1, MOSS_KL_SERIAL, 0);
      moss_k_if(b, moving);
      at = moss_k_let(b, "at", moss_k_bin(b, MOSS_KX_SUB, p, t));
      prev = moss_k_let(b, "prev", moss_k_addc(b, at, -1));
      c = moss_k_let(b, "c", moss_k_idx(b, 0)); /* -1 less, 1 greater, 0 equal so far */
      s = moss_k_range(b, "s", q.outer * q.inner, MOSS_KL_SERIAL);
      moss_k_if(b, cmp(b, MOSS_KX_EQ, c, moss_k_idx(b, 0)));
      lt = moss_k_let(b, "ya", moss_k_load(b, q.yb, elem(b, &q, at, s)));
      z = moss_k_let(b, "yb", moss_k_load(b, q.yb, elem(b, &q, prev, s)));
      moss_k_set(b, c, moss_k_select(b, cmp(b, MOSS_KX_LT, lt, z), moss_k_idx(b, -1),
                                     moss_k_select(b, cmp(b, MOSS_KX_GT, lt, z), moss_k_idx(b, 1),
                                                   moss_k_idx(b, 0))));
      moss_k_end(b);
      moss_k_end(b); /* s */
      moss_k_if(b, cmp(b, MOSS_KX_LT, c, moss_k_idx(b, 0)));
      s = moss_k_range(b, "s", q.outer * q.inner, MOSS_KL_SERIAL);
      tmp = moss_k_let(b, "tmp", moss_k_load(b, q.yb, elem(b, &q, at, s)));
      moss_k_store(b, q.yb, elem(b, &q, at, s), moss_k_load(b, q.yb, elem(b, &q, prev, s)));
      moss_k_store(b, q.yb, elem(b, &q, prev, s), tmp);
      moss_k_end(b);
      if (ib >= 0) {
        tmp = moss_k_let(b, "ti", moss_k_load(b, ib, at));
        moss_k_store(b, ib, at, moss_k_load(b, ib, prev));
        moss_k_store(b, ib, prev, tmp);
      }
      tmp = moss_k_let(b, "tc", moss_k_load(b, cb, at));
      moss_k_store(b, cb, at, moss_k_load(b, cb, prev));
      moss_k_store(b, cb, prev, tmp);
      moss_k_else(b);
      moss_k_set(b, moving, moss_k_int(b, MOSS_DT_BOOL, 0));
      moss_k_end(b);
      moss_k_end(b); /* if moving */
      moss_k_end(b); /* t */
      moss_k_end(b); /* p */
      if (vb >= 0) { /* each input slice's slot, now that they moved */
        j = moss_k_range(b, "j", q.D, MOSS_KL_SERIAL);
        p = moss_k_for(b, "p", moss_k_idx(b, 0), u, 1, MOSS_KL_SERIAL, 0);
        moss_k_if(b, same(b, &q, q.xb, j, q.yb, p));
        moss_k_store(b, vb, j, p);
        moss_k_end(b);
        moss_k_end(b);
        moss_k_end(b);
      }
    }
  }
  /* Zero the padding: Y's slots, indices and counts from u on. */
  z = moss_k_for(b, "z", u, moss_k_idx(b, q.D), 1, MOSS_KL_SERIAL, 0);
  if (q.outer * q.inner > 0) {
    s = moss_k_range(b, "s", q.outer * q.inner, MOSS_KL_SERIAL);
    moss_k_store(b, q.yb, elem(b, &q, z, s), moss_k_zero(b, x->dtype));
    moss_k_end(b);
  }
  if (ib >= 0) moss_k_store(b, ib, z, moss_k_idx(b, 0));
  moss_k_store(b, cb, z, moss_k_idx(b, 0));
  moss_k_end(b);
  moss_k_store(b, length_buf(b, n), moss_k_idx(b, 0), u);
  return b->st;
}

/* NonMaxSuppression, class by class: the candidates in order of falling
 * score (equal scores: lower index first), each kept unless it overlaps a
 * box kept before in its class by more than the IoU threshold, up to
 * max_output_boxes_per_class. Up to NMS_LIST_MAX boxes, the class's boxes
 * above the score threshold are listed in a local array and heap-sorted
 * into that order once (O(n log n)), then walked until the class is full.
 * More boxes: the order is walked without a sort, each round taking the
 * best candidate after the previous one (O(n) a round), until the class is
 * full or no candidate is left. */
#define NMS_LIST_MAX 16384

typedef struct nms {
  int bb, sb, yb, center;
  int64_t N, C;
  moss_kx *bt, *cl, *cnt, *start, *limit, *thr;
} nms;

/* Box |i| of batch |bt| as ymin, xmin, ymax, xmax (LET variables). */
static void corners(moss_kb *b, const nms *m, moss_kx *bt, moss_kx *i, moss_kx **c) {
  moss_kx *base = moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bt, m->N), i), 4), *v[4];
  moss_kx *half = moss_k_flt(b, MOSS_DT_F32, 0.5);
  int k;
  for (k = 0; k < 4; k++) v[k] = moss_k_let(b, "bx", moss_k_load(b, m->bb, moss_k_addc(b, base, k)));
  if (m->center) { /* x_center, y_center, width, height */
    moss_kx *hw = moss_k_bin(b, MOSS_KX_MUL, v[2], half), *hh = moss_k_bin(b, MOSS_KX_MUL, v[3], half);
    c[0] = moss_k_let(b, "top", moss_k_bin(b, MOSS_KX_SUB, v[1], hh));
    c[1] = moss_k_let(b, "left", moss_k_bin(b, MOSS_KX_SUB, v[0], hw));
    c[2] = moss_k_let(b, "bottom", moss_k_bin(b, MOSS_KX_ADD, v[1], hh));
    c[3] = moss_k_let(b, "right", moss_k_bin(b, MOSS_KX_ADD, v[0], hw));
    return;
  }
  /* y1, x1, y2, x2: either corner pair, in any order */
  c[0] = moss_k_let(b, "top", moss_k_bin(b, MOSS_KX_MIN, v[0], v[2]));
  c[1] = moss_k_let(b, "left", moss_k_bin(b, MOSS_KX_MIN, v[1], v[3]));
  c[2] = moss_k_let(b, "bottom", moss_k_bin(b, MOSS_KX_MAX, v[0], v[2]));
  c[3] = moss_k_let(b, "right", moss_k_bin(b, MOSS_KX_MAX, v[1], v[3]));
}

/* The score of box |i| in the current batch and class. */
static moss_kx *score(moss_kb *b, const nms *m, moss_kx *i) {
  return moss_k_load(b, m->sb, moss_k_add(b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, m->bt, m->C), m->cl), m->N), i));
}

/* Candidate |best| of the class: kept (stored at row cnt, cnt + 1) unless
 * a box kept before in the class overlaps it by more than the threshold. */
static void consider(moss_kb *b, const nms *m, moss_kx *best) {
  moss_kx *a[4], *o[4], *aa, *keep, *r, *iw, *ih, *z, *inter, *ab, *uni;
  corners(b, m, m->bt, best, a);
  aa = moss_k_let(b, "area", moss_k_bin(b, MOSS_KX_MUL, moss_k_bin(b, MOSS_KX_SUB, a[2], a[0]),
                                        moss_k_bin(b, MOSS_KX_SUB, a[3], a[1])));
  keep = moss_k_let(b, "keep", moss_k_int(b, MOSS_DT_BOOL, 1));
  r = moss_k_for(b, "r", m->start, m->cnt, 1, MOSS_KL_SERIAL, 0);
  corners(b, m, m->bt, moss_k_load(b, m->yb, moss_k_addc(b, moss_k_mulc(b, r, 3), 2)), o);
  iw = moss_k_bin(b, MOSS_KX_SUB, moss_k_bin(b, MOSS_KX_MIN, a[3], o[3]), moss_k_bin(b, MOSS_KX_MAX, a[1], o[1]));
  ih = moss_k_bin(b, MOSS_KX_SUB, moss_k_bin(b, MOSS_KX_MIN, a[2], o[2]), moss_k_bin(b, MOSS_KX_MAX, a[0], o[0]));
  z = moss_k_flt(b, MOSS_DT_F32, 0);
  inter = moss_k_let(b, "inter", moss_k_bin(b, MOSS_KX_MUL, moss_k_bin(b, MOSS_KX_MAX, iw, z),
                                            moss_k_bin(b, MOSS_KX_MAX, ih, z)));
  ab = moss_k_let(b, "area2", moss_k_bin(b, MOSS_KX_MUL, moss_k_bin(b, MOSS_KX_SUB, o[2], o[0]),
                                         moss_k_bin(b, MOSS_KX_SUB, o[3], o[1])));
  uni = moss_k_bin(b, MOSS_KX_SUB, moss_k_bin(b, MOSS_KX_ADD, aa, ab), inter);
  /* suppressed: overlapping boxes of positive areas with IoU above the threshold */
  moss_k_if(b, moss_k_bin(b, MOSS_KX_LAND,
                          moss_k_bin(b, MOSS_KX_LAND, cmp(b, MOSS_KX_GT, inter, z),
                                     moss_k_bin(b, MOSS_KX_LAND, cmp(b, MOSS_KX_GT, aa, z), cmp(b, MOSS_KX_GT, ab, z))),
                          cmp(b, MOSS_KX_GT, moss_k_bin(b, MOSS_KX_DIV, inter, uni), m->thr)));
  moss_k_set(b, keep, moss_k_int(b, MOSS_DT_BOOL, 0));
  moss_k_end(b);
  moss_k_end(b); /* r */
  moss_k_if(b, keep);
  moss_k_store(b, m->yb, moss_k_mulc(b, m->cnt, 3), m->bt);
  moss_k_store(b, m->yb, moss_k_addc(b, moss_k_mulc(b, m->cnt, 3), 1), m->cl);
  moss_k_store(b, m->yb, moss_k_addc(b, moss_k_mulc(b, m->cnt, 3), 2), best);
  moss_k_set(b, m->cnt, inc(b, m->cnt));
  moss_k_end(b);
}

/* Whether box |x| comes after box |y| in the order (a lower score, or an
 * equal score and a higher index). */
static moss_kx *later(moss_kb *b, const nms *m, moss_kx *x, moss_kx *y) {
  moss_kx *sx = score(b, m, x), *sy = score(b, m, y);
  return moss_k_bin(b, MOSS_KX_LOR, cmp(b, MOSS_KX_LT, sx, sy),
                    moss_k_bin(b, MOSS_KX_LAND, cmp(b, MOSS_KX_EQ, sx, sy), cmp(b, MOSS_KX_GT, x, y)));
}

/* Sifts list[root] down the heap list[0, n) (the latest box at the top),
 * in at most |depth| steps. */
static void sift(moss_kb *b, const nms *m, int list, moss_kx *root, moss_kx *n, int depth) {
  moss_kx *r = moss_k_let(b, "root", root), *go = moss_k_let(b, "go", moss_k_int(b, MOSS_DT_BOOL, 1));
  moss_kx *c, *x, *y;
  moss_k_range(b, "q", depth, MOSS_KL_SERIAL);
  moss_k_if(b, go);
  c = moss_k_let(b, "child", moss_k_addc(b, moss_k_mulc(b, r, 2), 1));
  moss_k_if(b, cmp(b, MOSS_KX_LT, c, n));
  moss_k_if(b, cmp(b, MOSS_KX_LT, inc(b, c), n));
  moss_k_if(b, later(b, m, moss_k_load(b, list, inc(b, c)), moss_k_load(b, list, c)));
  moss_k_set(b, c, inc(b, c));
  moss_k_end(b);
  moss_k_end(b);
  x = moss_k_let(b, "at", moss_k_load(b, list, r));
  y = moss_k_let(b, "below", moss_k_load(b, list, c));
  moss_k_if(b, later(b, m, y, x));
  moss_k_store(b, list, r, y);
  moss_k_store(b, list, c, x);
  moss_k_set(b, r, c);
  moss_k_else(b);
  moss_k_set(b, go, moss_k_int(b, MOSS_DT_BOOL, 0));
  moss_k_end(b);
  moss_k_else(b);
  moss_k_set(b, go, moss_k_int(b, MOSS_DT_BOOL, 0));
  moss_k_end(b);
  moss_k_end(b); /* go */
  moss_k_end(b); /* q */
}

/* The class's boxes above the score threshold, listed, heap-sorted into
 * the order, then walked until the class is full. */
static void by_list(moss_kb *b, const nms *m, int list, moss_kx *sthr) {
  moss_kx *nc = moss_k_let(b, "nc", moss_k_idx(b, 0)), *i, *t, *e, *x;
  int depth = 1;
  while (((int64_t)1 << depth) <= m->N) depth++;
  i = moss_k_range(b, "i", m->N, MOSS_KL_SERIAL);
  if (sthr) moss_k_if(b, cmp(b, MOSS_KX_GT, score(b, m, i), sthr));
  moss_k_store(b, list, nc, i);
  moss_k_set(b, nc, inc(b, nc));
  if (sthr) moss_k_end(b);
  moss_k_end(b); /* i */
  /* a heap with the latest box at the top, then each top swapped to the end */
  t = moss_k_for(b, "h", moss_k_idx(b, 0), moss_k_bin(b, MOSS_KX_DIV, nc, moss_k_idx(b, 2)), 1, MOSS_KL_SERIAL, 0);
  sift(b, m, list, moss_k_bin(b, MOSS_KX_SUB, moss_k_addc(b, moss_k_bin(b, MOSS_KX_DIV, nc, moss_k_idx(b, 2)), -1), t),
       nc, depth);
  moss_k_end(b);
  t = moss_k_for(b, "h", moss_k_idx(b, 1), nc, 1, MOSS_KL_SERIAL, 0);
  e = moss_k_let(b, "last", moss_k_bin(b, MOSS_KX_SUB, nc, t));
  x = moss_k_let(b, "top", moss_k_load(b, list, moss_k_idx(b, 0)));
  moss_k_store(b, list, moss_k_idx(b, 0), moss_k_load(b, list, e));
  moss_k_store(b, list, e, x);
  sift(b, m, list, moss_k_idx(b, 0), e, depth);
  moss_k_end(b);
  t = moss_k_for(b, "k", moss_k_idx(b, 0), nc, 1, MOSS_KL_SERIAL, 0);
  moss_k_if(b, cmp(b, MOSS_KX_LT, moss_k_bin(b, MOSS_KX_SUB, m->cnt, m->start), m->limit));
  consider(b, m, moss_k_let(b, "best", moss_k_load(b, list, t)));
  moss_k_end(b);
  moss_k_end(b); /* k */
}

/* More boxes than a list holds: each round scans them all for the best
 * candidate after the previous one. */
static void by_rounds(moss_kb *b, const nms *m, moss_kx *sthr) {
  moss_kx *ps = moss_k_let(b, "ps", moss_k_flt(b, MOSS_DT_F32, 0));
  moss_kx *pi = moss_k_let(b, "pi", moss_k_idx(b, -1)); /* -1: no candidate taken yet */
  moss_kx *more = moss_k_let(b, "more", moss_k_int(b, MOSS_DT_BOOL, 1)); /* candidates are left */
  moss_kx *best, *bs, *i, *s, *ok;
  moss_k_range(b, "t", m->N, MOSS_KL_SERIAL);
  moss_k_if(b, moss_k_bin(b, MOSS_KX_LAND, more,
                          cmp(b, MOSS_KX_LT, moss_k_bin(b, MOSS_KX_SUB, m->cnt, m->start), m->limit)));
  best = moss_k_let(b, "best", moss_k_idx(b, -1));
  bs = moss_k_let(b, "bs", moss_k_flt(b, MOSS_DT_F32, 0));
  i = moss_k_range(b, "i", m->N, MOSS_KL_SERIAL);
  s = moss_k_let(b, "s", score(b, m, i));
  /* after the previous pick in the order (score falling, index rising) */
  ok = moss_k_bin(b, MOSS_KX_LOR, cmp(b, MOSS_KX_LT, pi, moss_k_idx(b, 0)),
                  moss_k_bin(b, MOSS_KX_LOR, cmp(b, MOSS_KX_LT, s, ps),
                             moss_k_bin(b, MOSS_KX_LAND, cmp(b, MOSS_KX_EQ, s, ps), cmp(b, MOSS_KX_GT, i, pi))));
  if (sthr) ok = moss_k_bin(b, MOSS_KX_LAND, ok, cmp(b, MOSS_KX_GT, s, sthr));
  ok = moss_k_bin(b, MOSS_KX_LAND, ok, moss_k_bin(b, MOSS_KX_LOR, cmp(b, MOSS_KX_LT, best, moss_k_idx(b, 0)),
                                                  cmp(b, MOSS_KX_GT, s, bs)));
  moss_k_if(b, ok);
  moss_k_set(b, best, i);
  moss_k_set(b, bs, s);
  moss_k_end(b);
  moss_k_end(b); /* i */
  moss_k_set(b, more, cmp(b, MOSS_KX_GE, best, moss_k_idx(b, 0)));
  moss_k_if(b, more);
  moss_k_set(b, ps, bs);
  moss_k_set(b, pi, best);
  consider(b, m, best);
  moss_k_end(b); /* if best */
  moss_k_end(b); /* if not full */
  moss_k_end(b); /* t */
}

static moss_status lower_nms(moss_kb *b, const moss_node *n) {
  const moss_value *bx = n->inputs[0], *sc = n->inputs[1], *y = n->outputs[0];
  const moss_value *mv = moss_node_input(n, 2), *iv = moss_node_input(n, 3), *tv = moss_node_input(n, 4);
  int64_t Bt = bx->dims[0], C = sc->dims[1], per = Bt * C > 0 ? y->dims[0] / (Bt * C) : 0;
  nms m;
  int k, list;
  moss_kx *sthr = NULL, *z;
  if (!y->bounded) {
    moss_k_comment(b, "no max_output_boxes_per_class: nothing selected");
    return b->st;
  }
  m.N = bx->dims[1];
  m.C = C;
  m.center = moss_attr_int(n, "center_point_box", 0) != 0;
  m.bb = moss_k_input(b, 0);
  m.sb = moss_k_input(b, 1);
  m.yb = moss_k_output(b, 0);
  list = m.N > 0 && m.N <= NMS_LIST_MAX ? moss_k_local(b, "cand", MOSS_DT_I64, m.N) : -1;
  m.cnt = moss_k_let(b, "cnt", moss_k_idx(b, 0));
  m.limit = moss_k_let(b, "limit", moss_k_idx(b, per));
  if (mv) /* max_output_boxes_per_class, clamped to the bound */
    moss_k_set(b, m.limit, moss_k_bin(b, MOSS_KX_MAX, moss_k_idx(b, 0),
                                      moss_k_bin(b, MOSS_KX_MIN, moss_k_load(b, moss_k_input(b, 2), moss_k_idx(b, 0)),
                                                 moss_k_idx(b, per))));
  m.thr = iv ? moss_k_let(b, "iou_max", moss_k_load(b, moss_k_input(b, 3), moss_k_idx(b, 0)))
             : moss_k_flt(b, MOSS_DT_F32, 0);
  if (tv) sthr = moss_k_let(b, "score_min", moss_k_load(b, moss_k_input(b, 4), moss_k_idx(b, 0)));
  m.bt = moss_k_range(b, "bt", Bt, MOSS_KL_SERIAL);
  m.cl = moss_k_range(b, "cl", C, MOSS_KL_SERIAL);
  m.start = moss_k_let(b, "start", m.cnt);
  if (list >= 0) by_list(b, &m, list, sthr);
  else by_rounds(b, &m, sthr);
  moss_k_end(b); /* cl */
  moss_k_end(b); /* bt */
  z = moss_k_for(b, "z", m.cnt, moss_k_idx(b, y->dims[0]), 1, MOSS_KL_SERIAL, 0);
  for (k = 0; k < 3; k++) moss_k_store(b, m.yb, moss_k_addc(b, moss_k_mulc(b, z, 3), k), moss_k_idx(b, 0));
  moss_k_end(b);
  moss_k_store(b, length_buf(b, n), moss_k_idx(b, 0), m.cnt);
  return b->st;
}

/* MossCompact: rows [0, length) of each outer block of the padded input,
 * packed one after the other. */
static moss_status lower_compact(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0];
  int a = x->bounded - 1, k, xb, yb, lb, loops = 0;
  int64_t outer = 1, inner = 1, B;
  moss_kx *o, *len, *j, *e, *yo, *xo;
  if (a < 0) return moss_kb_fail(b, MOSS_E_INTERNAL, "MossCompact of a static value");
  B = x->dims[a];
  for (k = 0; k < x->rank; k++) {
    if (k < a) outer *= x->dims[k];
    if (k > a) inner *= x->dims[k];
  }
  if (outer * inner * B == 0) {
    moss_k_comment(b, "empty");
    return b->st;
  }
  xb = moss_k_input(b, 0);
  lb = moss_k_input(b, 1);
  yb = moss_k_output(b, 0);
  o = outer == 1 ? moss_k_idx(b, 0) : (loops++, moss_k_range(b, "o", outer, MOSS_KL_PARALLEL));
  len = moss_k_let(b, "len", moss_k_bin(b, MOSS_KX_MAX, moss_k_idx(b, 0),
                                        moss_k_bin(b, MOSS_KX_MIN, moss_k_load(b, lb, moss_k_idx(b, 0)),
                                                   moss_k_idx(b, B))));
  j = moss_k_for(b, "j", moss_k_idx(b, 0), len, 1, MOSS_KL_SERIAL, 0);
  yo = moss_k_mulc(b, moss_k_add(b, moss_k_mul(b, o, len), j), inner);
  xo = moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, o, B), j), inner);
  if (inner > 1) {
    e = moss_k_range(b, "e", inner, MOSS_KL_SERIAL);
    moss_k_store(b, yb, moss_k_add(b, yo, e), moss_k_load(b, xb, moss_k_add(b, xo, e)));
    moss_k_end(b);
  } else {
    moss_k_store(b, yb, yo, moss_k_load(b, xb, xo));
  }
  moss_k_end(b); /* j */
  while (loops--) moss_k_end(b);
  return b->st;
}

moss_status moss_lower_bounded(moss_kb *b, const moss_node *n) {
  switch (n->op) {
  case MOSS_OP_NonZero: return lower_nonzero(b, n);
  case MOSS_OP_Unique: return lower_unique(b, n);
  case MOSS_OP_NonMaxSuppression: return lower_nms(b, n);
  case MOSS_OP_MossCompact: return lower_compact(b, n);
  default: return moss_kb_fail(b, MOSS_E_INTERNAL, "not a bounded operator");
  }
}
