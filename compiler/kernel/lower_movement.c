/* lower_movement.c - the data-movement operators (compiler/ops/movement.c).
 * Most are one affine copy, y[ob + sum i_k*os_k] = x[ib + sum i_k*is_k]:
 * the index space is simplified (unit dimensions dropped, dimensions
 * contiguous on both sides merged) into a nest of parallel loops whose
 * innermost one walks contiguous elements on both sides where it can (a
 * row copy the compiler turns into memcpy); a transposing copy walks its
 * two fast axes in square tiles. Concat and Split are one affine copy per
 * part, constant Pad a fill and an affine copy, the other Pad modes read
 * through per-axis index tables, Compress through a table of the kept
 * indices. Every index is fixed at compile time except Trilu's k and
 * ReverseSequence's lengths, which are read at run time and clamped. */
#include <stdio.h>
#include <string.h>

#include "lower.h"

#define TILE 16 /* side of the tiles a transposing copy walks */

static int64_t numel(const moss_value *v) {
  int64_t n = 1;
  int k;
  for (k = 0; k < v->rank; k++) n *= v->dims[k];
  return n;
}

static moss_kx *idx(moss_kb *b, int64_t v) { return moss_k_idx(b, v); }

/* A local |name| = |v| limited to [lo, hi]; |need| says which bounds it
 * can cross (bit 0: lo, bit 1: hi), the others are not checked. */
static moss_kx *clamped(moss_kb *b, const char *name, moss_kx *v, int64_t lo, int64_t hi,
                        int need) {
  moss_kx *x = moss_k_let(b, name, v);
  if (need & 1) moss_k_set(b, x, moss_k_bin(b, MOSS_KX_MAX, x, idx(b, lo)));
  if (need & 2) moss_k_set(b, x, moss_k_bin(b, MOSS_KX_MIN, x, idx(b, hi)));
  return x;
}

/* A parallel loop over [0, extent), or the constant 0 and no loop when
 * |extent| is 1; counts the loops opened in |*opened|. */
static moss_kx *loop(moss_kb *b, const char *name, int64_t extent, int *opened) {
  if (extent == 1) return idx(b, 0);
  ++*opened;
  return moss_k_range(b, name, extent, MOSS_KL_PARALLEL);
}

/* base + sum over k of i[k] * s[k]. */
static moss_kx *affine_index(moss_kb *b, int64_t base, int r, moss_kx *const *i, const int64_t *s) {
  moss_kx *e = idx(b, 0);
  int k;
  for (k = r - 1; k >= 0; k--)
    if (s[k]) e = moss_k_add(b, e, moss_k_mulc(b, i[k], s[k]));
  return moss_k_addc(b, e, base);
}

/* The element |at| of the constant |cv| as a constant of type |dt|. */
static moss_kx *const_of(moss_kb *b, moss_dtype dt, const moss_value *cv, int64_t at) {
  if (moss_dtype_is_float(dt)) return moss_k_flt(b, dt, moss_value_get_f64(cv, at));
  return moss_k_int(b, dt, moss_value_get_i64(cv, at));
}

/* Buffer |yb| at the affine output index gets buffer |xb| at the input index,
 * over |in|'s index space. */
static void affine_copy(moss_kb *b, int yb, int xb, const moss_affine *in) {
  moss_affine a;
  moss_kx *i[MOSS_AFFINE_MAX] = {NULL};
  int k, r = 0, loops = 0, p = -1;
  char name[16];
  a.ib = in->ib;
  a.ob = in->ob;
  for (k = 0; k < in->rank; k++) {
    if (in->dims[k] == 0) return;
    if (in->dims[k] == 1) continue;
    if (r > 0 && a.os[r - 1] == in->os[k] * in->dims[k] && a.is[r - 1] == in->is[k] * in->dims[k]) {
      a.dims[r - 1] *= in->dims[k];
      a.os[r - 1] = in->os[k];
      a.is[r - 1] = in->is[k];
      continue;
    }
    a.dims[r] = in->dims[k];
    a.os[r] = in->os[k];
    a.is[r] = in->is[k];
    r++;
  }
  a.rank = r;
  /* A transposing copy (the input's contiguous axis is not the output's):
   * move that axis next to the innermost and walk both in square tiles,
   * so reads and writes each stay within a few cache lines. */
  if (!(r > 0 && a.os[r - 1] == 1 && a.is[r - 1] == 1))
    for (k = 0; r >= 2 && a.dims[r - 1] >= 2 * TILE && k < r - 1; k++)
      if (a.is[k] == 1 && a.os[r - 1] == 1 && a.dims[k] >= 2 * TILE) p = k;
  if (p >= 0) {
    int q = r - 2;
    moss_kx *t[MOSS_AFFINE_MAX];
    int64_t s;
    s = a.dims[p], a.dims[p] = a.dims[q], a.dims[q] = s;
    s = a.is[p], a.is[p] = a.is[q], a.is[q] = s;
    s = a.os[p], a.os[p] = a.os[q], a.os[q] = s;
    for (k = 0; k < q; k++) {
      snprintf(name, sizeof name, "i%d", k);
      i[k] = moss_k_range(b, name, a.dims[k], MOSS_KL_PARALLEL);
    }
    for (k = q; k < r; k++) {
      snprintf(name, sizeof name, "t%d", k);
      t[k] = moss_k_for(b, name, idx(b, 0), idx(b, a.dims[k]), TILE, MOSS_KL_PARALLEL, 0);
    }
    for (k = q; k < r; k++) {
      moss_kx *hi = moss_k_addc(b, t[k], TILE);
      if (a.dims[k] % TILE) hi = moss_k_bin(b, MOSS_KX_MIN, hi, idx(b, a.dims[k]));
      snprintf(name, sizeof name, "i%d", k);
      i[k] = moss_k_for(b, name, t[k], hi, 1, MOSS_KL_PARALLEL, 0);
    }
    loops = r + 2;
  } else {
    for (k = 0; k < r; k++) {
      snprintf(name, sizeof name, "i%d", k);
      i[k] = moss_k_range(b, name, a.dims[k], MOSS_KL_PARALLEL);
    }
    loops = r;
  }
  moss_k_store(b, yb, affine_index(b, a.ob, r, i, a.os),
               moss_k_load(b, xb, affine_index(b, a.ib, r, i, a.is)));
  while (loops--) moss_k_end(b);
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

static int64_t pad_map(const char *mode, int64_t i, int64_t d) {
  if (!strcmp(mode, "edge")) return clamp64(i, 0, d - 1);
  if (!strcmp(mode, "wrap")) return ((i % d) + d) % d;
  if (d == 1) return 0;
  {
    int64_t p = 2 * (d - 1), m = ((i % p) + p) % p;
    return m >= d ? p - m : m;
  }
}

static moss_status lower_pad(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  const char *mode = moss_attr_string(n, "mode", "constant");
  int64_t pb[MOSS_MAX_RANK], pe[MOSS_MAX_RANK], xs[MOSS_MAX_RANK], ys[MOSS_MAX_RANK];
  int64_t ny = numel(y);
  moss_dtype dt = x->dtype;
  int k, r = x->rank, xb, yb, loops = 0;
  moss_kx *i[MOSS_MAX_RANK], *e;
  MOSS_TRY(moss_pad_compute(b->ctx, n, r, pb, pe));
  moss_strides(r, x->dims, xs);
  moss_strides(r, y->dims, ys);
  if (ny == 0) return b->st;
  if (strcmp(mode, "constant") && strcmp(mode, "edge") && strcmp(mode, "reflect") &&
      strcmp(mode, "wrap"))
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "unknown Pad mode '%s'", mode);
  xb = moss_k_input(b, 0);
  yb = moss_k_output(b, 0);
  if (!strcmp(mode, "constant")) {
    moss_affine a;
    int grows = 0;
    moss_value *cv = moss_node_input(n, 2);
    moss_kx *val;
    for (k = 0; k < r; k++)
      if (pb[k] > 0 || y->dims[k] - pb[k] > x->dims[k]) grows = 1;
    if (cv && cv->data && moss_value_numel(cv) > 0) {
      val = const_of(b, dt, cv, 0);
    } else if (cv && !cv->data && moss_value_numel(cv) > 0) {
      val = moss_k_cast(b, dt, moss_k_load(b, moss_k_input(b, 2), idx(b, 0)));
    } else if (!cv && !moss_node_input(n, 1)) { /* before opset 11: an attribute */
      double v = moss_attr_float(n, "value", 0.0f);
      if (moss_dtype_is_float(dt)) val = moss_k_flt(b, dt, v);
      else val = moss_k_int(b, dt, v == v && v > -9.3e18 && v < 9.3e18 ? (int64_t)v : 0);
    } else {
      val = moss_dtype_is_float(dt) ? moss_k_flt(b, dt, 0) : moss_k_int(b, dt, 0);
    }
    if (grows) { /* the border: everything, then the input over it */
      e = moss_k_range(b, "i", ny, MOSS_KL_PARALLEL);
      moss_k_store(b, yb, e, val);
      moss_k_end(b);
    }
    /* The part of the input that lands in the output. */
    a.rank = r;
    a.ib = a.ob = 0;
    for (k = 0; k < r; k++) {
      int64_t lo = pb[k] < 0 ? -pb[k] : 0, hi = x->dims[k];
      if (y->dims[k] - pb[k] < hi) hi = y->dims[k] - pb[k];
      a.dims[k] = hi > lo ? hi - lo : 0;
      a.is[k] = xs[k];
      a.os[k] = ys[k];
      a.ib += lo * xs[k];
      a.ob += (lo + pb[k]) * ys[k];
    }
    affine_copy(b, yb, xb, &a);
    return b->st;
  }
  /* edge / reflect / wrap: an index table per padded axis, mapping an
   * output coordinate to the input offset it reads. */
  e = idx(b, 0);
  for (k = 0; k < r; k++) {
    char name[16];
    snprintf(name, sizeof name, "i%d", k);
    i[k] = loop(b, name, y->dims[k], &loops);
  }
  for (k = r - 1; k >= 0; k--) {
    if (pb[k] != 0 || y->dims[k] != x->dims[k]) {
      int64_t *map = moss_arena_alloc(b->arena, sizeof *map * (size_t)y->dims[k], 16), o;
      char name[16];
      if (!map) return moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
      if (x->dims[k] == 0)
        return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "Pad mode '%s' of an empty axis", mode);
      for (o = 0; o < y->dims[k]; o++) map[o] = pad_map(mode, o - pb[k], x->dims[k]) * xs[k];
      snprintf(name, sizeof name, "map%d", k);
      e = moss_k_add(b, e,
                     moss_k_load(b, moss_k_table(b, name, MOSS_DT_I64, y->dims[k], map), i[k]));
    } else if (x->dims[k] > 1) {
      e = moss_k_add(b, e, moss_k_mulc(b, i[k], xs[k]));
    }
  }
  moss_k_store(b, yb, moss_k_flat_index(b, r, y->dims, i), moss_k_load(b, xb, e));
  while (loops--) moss_k_end(b);
  return b->st;
}

static void lower_concat_split(moss_kb *b, const moss_node *n) {
  int split = n->op == MOSS_OP_Split, nparts = split ? n->noutputs : n->ninputs, i;
  const moss_value *whole = split ? n->inputs[0] : n->outputs[0];
  int64_t off = 0, axis = moss_attr_int(n, "axis", split ? 0 : 1);
  int wb = split ? moss_k_input(b, 0) : moss_k_output(b, 0);
  if (axis < 0) axis += whole->rank;
  for (i = 0; i < nparts; i++) {
    const moss_value *part = split ? n->outputs[i] : n->inputs[i];
    moss_affine a;
    if (!part) continue;
    moss_affine_compute_part(whole, part, (int)axis, off, !split, &a);
    if (split) affine_copy(b, moss_k_output(b, i), wb, &a);
    else affine_copy(b, wb, moss_k_input(b, i), &a);
    off += part->dims[axis];
  }
}

/* Row i of each matrix keeps columns [i + k, C) (upper) or [0, i + k + 1)
 * (lower) and zeroes the others. */
static void lower_trilu(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *kv = moss_node_input(n, 1);
  int r = x->rank, upper = moss_attr_int(n, "upper", 1) != 0, xb, yb, loops = 0, need = 3;
  int64_t R = x->dims[r - 2], C = x->dims[r - 1], B = R * C > 0 ? numel(x) / (R * C) : 0;
  int64_t lim = R + C + 1;
  moss_kx *kk, *bi, *i, *o, *t, *j, *zero;
  if (numel(x) == 0) return;
  xb = moss_k_input(b, 0);
  yb = moss_k_output(b, 0);
  zero = moss_dtype_is_float(x->dtype) ? moss_k_flt(b, x->dtype, 0) : moss_k_zero(b, x->dtype);
  if (kv && !kv->data) { /* read at run time; clamped so the sums below cannot overflow */
    kk = clamped(b, "k", moss_k_cast(b, MOSS_DT_I64, moss_k_load(b, moss_k_input(b, 1), idx(b, 0))),
                 -lim, lim, 3);
    kk = moss_k_addc(b, kk, upper ? 0 : 1);
  } else {
    int64_t k = clamp64(kv ? moss_value_get_i64(kv, 0) : 0, -lim, lim) + (upper ? 0 : 1);
    kk = idx(b, k);
    /* i + k lies in [k, R - 1 + k]: check only the bounds it can cross. */
    need = (k < 0 ? 1 : 0) | (R - 1 + k > C ? 2 : 0);
  }
  bi = loop(b, "b", B, &loops);
  i = loop(b, "i", R, &loops);
  o = moss_k_let(b, "o", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, bi, R), i), C));
  t = clamped(b, "t", moss_k_add(b, i, kk), 0, C, need);
  j = moss_k_for(b, "j", idx(b, 0), t, 1, MOSS_KL_PARALLEL, 0);
  moss_k_store(b, yb, moss_k_add(b, o, j), upper ? zero : moss_k_load(b, xb, moss_k_add(b, o, j)));
  moss_k_end(b);
  j = moss_k_for(b, "j", t, idx(b, C), 1, MOSS_KL_PARALLEL, 0);
  moss_k_store(b, yb, moss_k_add(b, o, j), upper ? moss_k_load(b, xb, moss_k_add(b, o, j)) : zero);
  moss_k_end(b);
  while (loops--) moss_k_end(b);
}

/* Batch b reverses its first len = clamp(lengths[b], 0, T) time steps. */
static void lower_reverse_sequence(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0];
  int ba = (int)moss_attr_int(n, "batch_axis", 0), ta = (int)moss_attr_int(n, "time_axis", 1), xb,
      yb, loops = 0;
  int64_t xs[MOSS_MAX_RANK], inner, B = x->dims[ba], T = x->dims[ta];
  moss_kx *bi, *len, *t, *s, *yo, *xo;
  moss_strides(x->rank, x->dims, xs);
  inner = xs[1];
  if (numel(x) == 0) return;
  xb = moss_k_input(b, 0);
  yb = moss_k_output(b, 0);
  bi = loop(b, "b", B, &loops);
  len = clamped(b, "len", moss_k_cast(b, MOSS_DT_I64, moss_k_load(b, moss_k_input(b, 1), bi)), 0, T,
                3);
  t = moss_k_range(b, "t", T, MOSS_KL_PARALLEL);
  s = moss_k_let(b, "s",
                 moss_k_select(b, moss_k_bin(b, MOSS_KX_LT, t, len),
                               moss_k_bin(b, MOSS_KX_SUB, len, moss_k_addc(b, t, 1)), t));
  yo = moss_k_add(b, moss_k_mulc(b, bi, xs[ba]), moss_k_mulc(b, t, xs[ta]));
  xo = moss_k_add(b, moss_k_mulc(b, bi, xs[ba]), moss_k_mulc(b, s, xs[ta]));
  if (inner > 1) {
    moss_kx *e = moss_k_range(b, "e", inner, MOSS_KL_PARALLEL);
    moss_k_store(b, yb, moss_k_add(b, yo, e), moss_k_load(b, xb, moss_k_add(b, xo, e)));
    moss_k_end(b);
  } else {
    moss_k_store(b, yb, yo, moss_k_load(b, xb, xo));
  }
  moss_k_end(b);
  while (loops--) moss_k_end(b);
}

/* A condition that only the run knows (ops/bounded.c): the kept slices
 * in order at the front of the padded output, zeros after them, and their
 * count in the length output (output 1). */
static moss_status lower_compress_run(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *c = n->inputs[1], *y = n->outputs[0];
  const moss_attr *ax = moss_node_find_attr(n, "axis");
  int a = ax ? (int)(ax->i < 0 ? ax->i + x->rank : ax->i) : -1, k, xb, cb, yb;
  int64_t outer = 1, inner = 1, D = a >= 0 ? x->dims[a] : numel(x), B = a >= 0 ? y->dims[a] : y->dims[0];
  int64_t len = c->dims[0] < D ? c->dims[0] : D;
  moss_kx *kept, *j, *s, *yo, *z;
  for (k = 0; a >= 0 && k < x->rank; k++) {
    if (k < a) outer *= x->dims[k];
    if (k > a) inner *= x->dims[k];
  }
  xb = moss_k_input(b, 0);
  cb = moss_k_input(b, 1);
  yb = moss_k_output(b, 0);
  kept = moss_k_let(b, "kept", moss_k_idx(b, 0));
  if (len > 0 && outer * inner > 0) {
    j = moss_k_range(b, "j", len, MOSS_KL_SERIAL);
    moss_k_if(b, moss_k_bin(b, MOSS_KX_NE, moss_k_load(b, cb, j), moss_k_int(b, c->dtype, 0)));
    s = moss_k_range(b, "s", outer * inner, MOSS_KL_SERIAL);
    {
      moss_kx *o = moss_k_bin(b, MOSS_KX_DIV, s, moss_k_idx(b, inner));
      moss_kx *e = moss_k_bin(b, MOSS_KX_REM, s, moss_k_idx(b, inner));
      yo = moss_k_add(b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, o, B), kept), inner), e);
      moss_k_store(b, yb, yo, moss_k_load(b, xb, moss_k_add(b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, o, D), j), inner), e)));
    }
    moss_k_end(b);
    moss_k_set(b, kept, moss_k_addc(b, kept, 1));
    moss_k_end(b);
    moss_k_end(b);
  }
  if (outer * inner > 0) {
    z = moss_k_for(b, "z", kept, moss_k_idx(b, B), 1, MOSS_KL_SERIAL, 0);
    s = moss_k_range(b, "s", outer * inner, MOSS_KL_SERIAL);
    yo = moss_k_add(b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, moss_k_bin(b, MOSS_KX_DIV, s, moss_k_idx(b, inner)), B), z), inner),
                    moss_k_bin(b, MOSS_KX_REM, s, moss_k_idx(b, inner)));
    moss_k_store(b, yb, yo, moss_k_zero(b, x->dtype));
    moss_k_end(b);
    moss_k_end(b);
  }
  moss_k_store(b, moss_k_output(b, 1), moss_k_idx(b, 0), kept);
  return b->st;
}

/* The kept indices along the axis (the condition is a constant) in a
 * table; the output gathers them. */
static moss_status lower_compress(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *c = n->inputs[1], *y = n->outputs[0];
  const moss_attr *ax = moss_node_find_attr(n, "axis");
  int a = ax ? (int)(ax->i < 0 ? ax->i + x->rank : ax->i) : -1, k, xb, yb, loops = 0;
  int64_t outer = 1, inner = 1, D = a >= 0 ? x->dims[a] : numel(x), len = c->dims[0], i, cnt = 0;
  int64_t nsel = a >= 0 ? y->dims[a] : y->dims[0], *sel;
  moss_kx *o, *j, *s, *yo, *xo;
  if (!c->data) return lower_compress_run(b, n);
  if (numel(y) == 0) return b->st;
  for (k = 0; a >= 0 && k < x->rank; k++) {
    if (k < a) outer *= x->dims[k];
    if (k > a) inner *= x->dims[k];
  }
  if (len > D) len = D;
  sel = moss_arena_alloc(b->arena, sizeof *sel * (size_t)nsel, 16);
  if (!sel) return moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
  for (i = 0; i < len; i++)
    if (moss_value_get_i64(c, i)) {
      if (cnt == nsel)
        return moss_kb_fail(b, MOSS_E_INTERNAL, "Compress keeps more than %lld", (long long)nsel);
      sel[cnt++] = i;
    }
  if (cnt != nsel)
    return moss_kb_fail(b, MOSS_E_INTERNAL, "Compress keeps %lld, not %lld", (long long)cnt,
                        (long long)nsel);
  xb = moss_k_input(b, 0);
  yb = moss_k_output(b, 0);
  o = loop(b, "o", outer, &loops);
  j = moss_k_range(b, "j", nsel, MOSS_KL_PARALLEL);
  s = moss_k_load(b, moss_k_table(b, "kept", MOSS_DT_I64, nsel, sel), j);
  yo = moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, o, nsel), j), inner);
  xo = moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, o, D), s), inner);
  if (inner > 1) {
    moss_kx *e = moss_k_range(b, "e", inner, MOSS_KL_PARALLEL);
    moss_k_store(b, yb, moss_k_add(b, yo, e), moss_k_load(b, xb, moss_k_add(b, xo, e)));
    moss_k_end(b);
  } else {
    moss_k_store(b, yb, yo, moss_k_load(b, xb, xo));
  }
  moss_k_end(b);
  while (loops--) moss_k_end(b);
  return b->st;
}

moss_status moss_lower_movement(moss_kb *b, const moss_node *n) {
  moss_affine a;
  switch (n->op) {
  case MOSS_OP_Concat:
  case MOSS_OP_Split: lower_concat_split(b, n); return b->st;
  case MOSS_OP_Pad: return lower_pad(b, n);
  case MOSS_OP_Trilu: lower_trilu(b, n); return b->st;
  case MOSS_OP_ReverseSequence: lower_reverse_sequence(b, n); return b->st;
  case MOSS_OP_Compress: return lower_compress(b, n);
  case MOSS_OP_Transpose: case MOSS_OP_Slice: case MOSS_OP_Expand: case MOSS_OP_Tile:
  case MOSS_OP_DepthToSpace: case MOSS_OP_SpaceToDepth:
    MOSS_TRY(moss_affine_compute(b->ctx, n, &a));
    affine_copy(b, moss_k_output(b, 0), moss_k_input(b, 0), &a);
    return b->st;
  default: return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "no kernel description for this operator");
  }
}
