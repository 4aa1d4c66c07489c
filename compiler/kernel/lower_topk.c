/* lower_topk.c - TopK: for each position around the axis (the parallel
 * loops), the elements along the axis are visited in index order and each
 * is inserted into the output lanes, which hold the best ones so far in
 * order, O(len * k). The insertion walks down from the last lane, moving
 * strictly worse elements up by one, so equal values keep the lower index
 * first, as the ONNX reference does. The output is sorted whatever
 * |sorted| says (allowed: the unsorted order is unspecified). A k that
 * only the run knows (ops/bounded.c) is read, clamped to [0, len], and
 * stored as the outputs' length; the lanes past it are zeros. */
#include "lower.h"

static moss_kx *dec(moss_kb *b, moss_kx *x) {
  return moss_k_bin(b, MOSS_KX_SUB, x, moss_k_idx(b, 1));
}

/* |x| named |nm|, unless it is a constant or a variable already. */
static moss_kx *name(moss_kb *b, const char *nm, moss_kx *x) {
  return x->op == MOSS_KX_CONST || x->op == MOSS_KX_VAR ? x : moss_k_let(b, nm, x);
}

/* A parallel loop over |extent|, or the index 0 when there is one iteration. */
static moss_kx *around(moss_kb *b, const char *name, int64_t extent, int *loops) {
  if (extent == 1) return moss_k_idx(b, 0);
  ++*loops;
  return moss_k_range(b, name, extent, MOSS_KL_PARALLEL);
}

moss_status moss_lower_topk(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  int largest = moss_attr_int(n, "largest", 1) != 0, axis, k;
  moss_kx_op worse = largest ? MOSS_KX_LT : MOSS_KX_GT;
  int64_t outer = 1, inner = 1, len, kk;
  int xb, vb, ib, loops = 0;
  moss_kx *o, *i, *j, *q, *xbase, *ybase, *cnt, *v, *p, *at, *from, *full, *last, *kx;
  if (!y || n->noutputs < 2 || !n->outputs[1])
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "TopK without both outputs");
  axis = (int)moss_attr_int(n, "axis", -1);
  if (axis < 0) axis += x->rank;
  if (axis < 0 || axis >= x->rank)
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "axis out of range");
  len = x->dims[axis];
  kk = y->dims[axis];
  for (k = 0; k < axis; k++) outer *= x->dims[k];
  for (k = axis + 1; k < x->rank; k++) inner *= x->dims[k];
  if (outer * inner * kk == 0) {
    moss_k_comment(b, "empty output");
    return b->st;
  }
  xb = moss_k_input(b, 0);
  vb = moss_k_output(b, 0);
  ib = moss_k_output(b, 1);
  o = around(b, "o", outer, &loops);
  i = around(b, "i", inner, &loops);
  xbase = name(b, "xb", moss_k_add(b, moss_k_mulc(b, o, len * inner), i));
  ybase = name(b, "yb", moss_k_add(b, moss_k_mulc(b, o, kk * inner), i));
  if (y->bounded) { /* k from the run, within [0, len]: the outputs' length */
    kx = moss_k_let(b, "k", moss_k_bin(b, MOSS_KX_MAX, moss_k_idx(b, 0),
                                       moss_k_bin(b, MOSS_KX_MIN, moss_k_load(b, moss_k_input(b, 1),
                                                                              moss_k_idx(b, 0)),
                                                  moss_k_idx(b, len))));
    moss_k_store(b, moss_k_output(b, 2), moss_k_idx(b, 0), kx);
  } else {
    kx = moss_k_idx(b, kk);
  }
  cnt = moss_k_let(b, "cnt", moss_k_idx(b, 0)); /* lanes filled so far */
  j = moss_k_range(b, "j", len, MOSS_KL_SERIAL);
  v = moss_k_let(b, "v", moss_k_load(b, xb, moss_k_add(b, xbase, moss_k_mulc(b, j, inner))));
  /* Take |v| unless the lanes are full and the last one is not worse
   * (the last lane is read only when they are full). */
  full = moss_k_bin(b, MOSS_KX_EQ, cnt, kx);
  if (y->bounded) { /* a k of 0 takes nothing: no lane to read or write */
    moss_kx *some = moss_k_bin(b, MOSS_KX_GT, kx, moss_k_idx(b, 0));
    last = moss_k_load_or(b, vb, moss_k_add(b, ybase, moss_k_mulc(b, dec(b, kx), inner)),
                          moss_k_bin(b, MOSS_KX_LAND, full, some), v);
    moss_k_if(b, moss_k_bin(b, MOSS_KX_LAND, some,
                            moss_k_bin(b, MOSS_KX_LOR, moss_k_un(b, MOSS_KX_NOT, full),
                                       moss_k_bin(b, worse, last, v))));
  } else {
    last = moss_k_load_or(b, vb, moss_k_add(b, ybase, moss_k_mulc(b, dec(b, kx), inner)), full, v);
    moss_k_if(b, moss_k_bin(b, MOSS_KX_LOR, moss_k_un(b, MOSS_KX_NOT, full),
                            moss_k_bin(b, worse, last, v)));
  }
  moss_k_set(b, cnt, moss_k_bin(b, MOSS_KX_MIN, moss_k_addc(b, cnt, 1), kx));
  p = moss_k_let(b, "p", dec(b, cnt)); /* where |v| goes */
  /* q = cnt - 1 down to 1, while the lane above is worse than |v|. */
  q = moss_k_for(b, "s", moss_k_idx(b, 0), dec(b, cnt), 1, MOSS_KL_SERIAL, 0);
  q = moss_k_let(b, "q", moss_k_bin(b, MOSS_KX_SUB, dec(b, cnt), q));
  at = moss_k_add(b, ybase, moss_k_mulc(b, q, inner));
  from = moss_k_add(b, ybase, moss_k_mulc(b, dec(b, q), inner));
  moss_k_if(b, moss_k_bin(b, MOSS_KX_LAND, moss_k_bin(b, MOSS_KX_EQ, p, q),
                          moss_k_bin(b, worse, moss_k_load(b, vb, from), v)));
  moss_k_store(b, vb, at, moss_k_load(b, vb, from));
  moss_k_store(b, ib, at, moss_k_load(b, ib, from));
  moss_k_set(b, p, dec(b, q));
  moss_k_end(b); /* if */
  moss_k_end(b); /* s */
  at = moss_k_add(b, ybase, moss_k_mulc(b, p, inner));
  moss_k_store(b, vb, at, v);
  moss_k_store(b, ib, at, moss_k_cast(b, n->outputs[1]->dtype, j));
  moss_k_end(b); /* if */
  moss_k_end(b); /* j */
  if (y->bounded) { /* zeros past the k lanes */
    q = moss_k_for(b, "z", kx, moss_k_idx(b, kk), 1, MOSS_KL_SERIAL, 0);
    at = moss_k_add(b, ybase, moss_k_mulc(b, q, inner));
    moss_k_store(b, vb, at, moss_k_zero(b, y->dtype));
    moss_k_store(b, ib, at, moss_k_int(b, n->outputs[1]->dtype, 0));
    moss_k_end(b);
  }
  while (loops--) moss_k_end(b);
  return b->st;
}
