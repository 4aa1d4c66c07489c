/* lower_gather.c - Gather, GatherElements, GatherND, ScatterElements/
 * Scatter, ScatterND and OneHot. Indices are read at run time, so every
 * one is normalized (a negative one counts from the end, as ONNX says) and
 * bounds-checked before use: a gather through a bad index yields zeros
 * (a guarded load), a scatter through one writes nothing, and no access
 * leaves its buffer. Gathers are parallel over their output; a scatter
 * first copies its data input, then applies the updates in order (two
 * updates may hit the same element, so that loop is serial). */
#include <stdio.h>
#include <string.h>

#include "lower.h"

static moss_kx *idx(moss_kb *b, int64_t v) { return moss_k_idx(b, v); }

static int64_t prod(const int64_t *dims, int from, int to) {
  int64_t p = 1;
  int k;
  for (k = from; k < to; k++) p *= dims[k];
  return p;
}

/* A loop over [0, extent), or the constant 0 and no loop when |extent|
 * is 1; counts the loops opened in |*opened|. */
static moss_kx *loop_as(moss_kb *b, const char *name, int64_t extent, moss_kloop_role role,
                        int *opened) {
  if (extent == 1) return idx(b, 0);
  ++*opened;
  return moss_k_range(b, name, extent, role);
}

static moss_kx *loop(moss_kb *b, const char *name, int64_t extent, int *opened) {
  return loop_as(b, name, extent, MOSS_KL_PARALLEL, opened);
}

/* Loops over |dims| named i<k>, into |out|; returns how many it opened. */
static int open_loops(moss_kb *b, int rank, const int64_t *dims, moss_kloop_role role,
                      moss_kx **out) {
  char name[16];
  int k, opened = 0;
  for (k = 0; k < rank; k++) {
    snprintf(name, sizeof name, "i%d", k);
    out[k] = loop_as(b, name, dims[k], role, &opened);
  }
  return opened;
}

/* sum over k != |skip| of i[k] * s[k]. */
static moss_kx *lin(moss_kb *b, int rank, moss_kx *const *i, const int64_t *s, int skip) {
  moss_kx *e = idx(b, 0);
  int k;
  for (k = rank - 1; k >= 0; k--)
    if (k != skip && s[k]) e = moss_k_add(b, e, moss_k_mulc(b, i[k], s[k]));
  return e;
}

/* A local |name| holding the index element |v| (of the index input's type)
 * as an I64 made non-negative for an axis of |D|: it is in range iff
 * 0 <= it < D. A float index outside (-D - 1, D) and an unsigned one past
 * D become D (out of range) before they are converted. */
static moss_kx *read_index(moss_kb *b, moss_kx *v, const char *name, int64_t D) {
  moss_kx *r;
  if (moss_dtype_is_float(v->dt)) {
    moss_kx *d = moss_k_let(b, "f", moss_k_cast(b, MOSS_DT_F64, v));
    moss_kx *ok = moss_k_bin(
        b, MOSS_KX_LAND, moss_k_bin(b, MOSS_KX_GT, d, moss_k_flt(b, MOSS_DT_F64, (double)(-D - 1))),
        moss_k_bin(b, MOSS_KX_LT, d, moss_k_flt(b, MOSS_DT_F64, (double)D)));
    r = moss_k_let(b, name, moss_k_select(b, ok, moss_k_cast(b, MOSS_DT_I64, d), idx(b, D)));
  } else if (!moss_dtype_is_signed(v->dt)) {
    moss_kx *u = moss_k_cast(b, MOSS_DT_U64, v);
    return moss_k_let(b, name,
                      moss_k_select(b, moss_k_bin(b, MOSS_KX_LT, u, moss_k_int(b, MOSS_DT_U64, D)),
                                    moss_k_cast(b, MOSS_DT_I64, u), idx(b, D)));
  } else {
    r = moss_k_let(b, name, moss_k_cast(b, MOSS_DT_I64, v));
  }
  moss_k_set(b, r,
             moss_k_select(b, moss_k_bin(b, MOSS_KX_LT, r, idx(b, 0)), moss_k_addc(b, r, D), r));
  return r;
}

/* 0 <= v < D */
static moss_kx *in_range(moss_kb *b, moss_kx *v, int64_t D) {
  return moss_k_bin(b, MOSS_KX_LAND, moss_k_bin(b, MOSS_KX_GE, v, idx(b, 0)),
                    moss_k_bin(b, MOSS_KX_LT, v, idx(b, D)));
}

/* |t| combined with the update |u| under the node's reduction. */
static moss_status combine(moss_kb *b, const moss_node *n, moss_kx *t, moss_kx *u, moss_kx **out) {
  const char *red = moss_attr_string(n, "reduction", "none");
  int isb = t->dt == MOSS_DT_BOOL;
  if (!strcmp(red, "add")) *out = moss_k_bin(b, isb ? MOSS_KX_BOR : MOSS_KX_ADD, t, u);
  else if (!strcmp(red, "mul")) *out = moss_k_bin(b, isb ? MOSS_KX_BAND : MOSS_KX_MUL, t, u);
  else if (!strcmp(red, "max")) *out = moss_k_bin(b, MOSS_KX_MAX, u, t); /* u > t ? u : t */
  else if (!strcmp(red, "min")) *out = moss_k_bin(b, MOSS_KX_MIN, u, t);
  else if (!strcmp(red, "none")) *out = u;
  else return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "unknown reduction '%s'", red);
  return b->st;
}

/* y = x, the starting point of a scatter. */
static void copy_all(moss_kb *b, int yb, int xb, int64_t ne) {
  moss_kx *i;
  if (ne <= 0) return;
  i = moss_k_range(b, "i", ne, MOSS_KL_PARALLEL);
  moss_k_store(b, yb, i, moss_k_load(b, xb, i));
  moss_k_end(b);
}

static moss_status lower_gather(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *ix = n->inputs[1];
  int64_t axis = moss_attr_int(n, "axis", 0), outer, inner, D, ni = prod(ix->dims, 0, ix->rank);
  int xb, ib, yb, loops = 0;
  moss_kx *o, *j, *v, *ok, *yo, *xo;
  if (axis < 0) axis += x->rank;
  outer = prod(x->dims, 0, (int)axis);
  inner = prod(x->dims, (int)axis + 1, x->rank);
  D = x->dims[axis];
  if (outer * ni * inner == 0) return b->st;
  xb = moss_k_input(b, 0);
  ib = moss_k_input(b, 1);
  yb = moss_k_output(b, 0);
  o = loop(b, "o", outer, &loops);
  j = loop(b, "j", ni, &loops);
  v = read_index(b, moss_k_load(b, ib, j), "v", D);
  ok = in_range(b, v, D);
  yo = moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, o, ni), j), inner);
  xo = moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, o, D), v), inner);
  if (inner > 1) {
    moss_kx *e;
    ok = moss_k_let(b, "ok", ok);
    e = loop(b, "e", inner, &loops);
    yo = moss_k_add(b, yo, e);
    xo = moss_k_add(b, xo, e);
  }
  moss_k_store(b, yb, yo, moss_k_load_or(b, xb, xo, ok, moss_k_zero(b, x->dtype)));
  while (loops--) moss_k_end(b);
  return b->st;
}

/* GatherElements and ScatterElements/Scatter: one loop nest over the
 * indices; the element read or written is the index's position with the
 * axis coordinate replaced by the index. */
static moss_status lower_elements(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *ix = n->inputs[1];
  int64_t axis = moss_attr_int(n, "axis", 0), xs[MOSS_MAX_RANK], is[MOSS_MAX_RANK], D;
  int gather = n->op == MOSS_OP_GatherElements, xb, ib, yb, loops;
  moss_kx *i[MOSS_MAX_RANK], *flat, *v, *at;
  if (axis < 0) axis += x->rank;
  D = x->dims[axis];
  moss_strides(x->rank, x->dims, xs);
  moss_strides(ix->rank, ix->dims, is);
  xb = moss_k_input(b, 0);
  ib = moss_k_input(b, 1);
  yb = moss_k_output(b, 0);
  if (!gather) copy_all(b, yb, xb, prod(x->dims, 0, x->rank));
  if (prod(ix->dims, 0, ix->rank) == 0) return b->st;
  loops = open_loops(b, ix->rank, ix->dims, gather ? MOSS_KL_PARALLEL : MOSS_KL_SERIAL, i);
  flat = lin(b, ix->rank, i, is, -1);
  v = read_index(b, moss_k_load(b, ib, flat), "v", D);
  at = moss_k_add(b, lin(b, x->rank, i, xs, (int)axis), moss_k_mulc(b, v, xs[axis]));
  if (gather) {
    moss_k_store(b, yb, flat, moss_k_load_or(b, xb, at, in_range(b, v, D), moss_k_zero(b, x->dtype)));
  } else {
    moss_kx *u = moss_k_load(b, moss_k_input(b, 2), flat), *e = NULL;
    moss_k_if(b, in_range(b, v, D));
    MOSS_TRY(combine(b, n, moss_k_load(b, yb, at), u, &e));
    moss_k_store(b, yb, at, e);
    moss_k_end(b);
  }
  while (loops--) moss_k_end(b);
  return b->st;
}

/* Locals `off` (the flat offset into the data) and `ok` (every component
 * in range) of the index tuple |t| of GatherND/ScatterND, over the data
 * dimensions [bd, bd + m), from the offset |base|. */
static void tuple_offset(moss_kb *b, const moss_value *x, int ib, moss_kx *t, int bd, int m,
                         moss_kx *base, moss_kx **out_off, moss_kx **out_ok) {
  int64_t xs[MOSS_MAX_RANK];
  moss_kx *off = base, *ok = NULL;
  int c;
  moss_strides(x->rank, x->dims, xs);
  for (c = 0; c < m; c++) {
    char var[16];
    int64_t D = x->dims[bd + c];
    moss_kx *v, *in;
    snprintf(var, sizeof var, "v%d", c);
    v = read_index(b, moss_k_load(b, ib, moss_k_addc(b, moss_k_mulc(b, t, m), c)), var, D);
    in = in_range(b, v, D);
    ok = ok ? moss_k_bin(b, MOSS_KX_LAND, ok, in) : in;
    off = moss_k_add(b, off, moss_k_mulc(b, v, xs[bd + c]));
  }
  *out_ok = ok ? moss_k_let(b, "ok", ok) : moss_k_int(b, MOSS_DT_BOOL, 1);
  *out_off = moss_k_let(b, "off", off);
}

static moss_status lower_gather_nd(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *ix = n->inputs[1];
  int bd = (int)moss_attr_int(n, "batch_dims", 0), m = (int)ix->dims[ix->rank - 1], xb, ib, yb,
      loops = 0;
  int64_t B = prod(x->dims, 0, bd), NT = prod(ix->dims, bd, ix->rank - 1);
  int64_t inner = prod(x->dims, bd + m, x->rank), DB = prod(x->dims, bd, x->rank);
  moss_kx *bb, *j, *t, *off, *ok, *e;
  if (B * NT * inner == 0) return b->st;
  xb = moss_k_input(b, 0);
  ib = moss_k_input(b, 1);
  yb = moss_k_output(b, 0);
  bb = loop(b, "bb", B, &loops);
  j = loop(b, "j", NT, &loops);
  t = moss_k_add(b, moss_k_mulc(b, bb, NT), j);
  if (t->op != MOSS_KX_VAR && t->op != MOSS_KX_CONST) t = moss_k_let(b, "t", t);
  tuple_offset(b, x, ib, t, bd, m, moss_k_mulc(b, bb, DB), &off, &ok);
  e = loop(b, "e", inner, &loops);
  moss_k_store(b, yb, moss_k_add(b, moss_k_mulc(b, t, inner), e),
               moss_k_load_or(b, xb, moss_k_add(b, off, e), ok, moss_k_zero(b, x->dtype)));
  while (loops--) moss_k_end(b);
  return b->st;
}

static moss_status lower_scatter_nd(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *ix = n->inputs[1];
  int m = (int)ix->dims[ix->rank - 1], xb, ib, ub, yb, loops = 0;
  int64_t NT = prod(ix->dims, 0, ix->rank - 1), inner = prod(x->dims, m, x->rank);
  moss_kx *t, *off, *ok, *e, *u, *r = NULL;
  xb = moss_k_input(b, 0);
  ib = moss_k_input(b, 1);
  ub = moss_k_input(b, 2);
  yb = moss_k_output(b, 0);
  copy_all(b, yb, xb, prod(x->dims, 0, x->rank));
  if (NT * inner == 0) return b->st;
  t = loop_as(b, "t", NT, MOSS_KL_SERIAL, &loops);
  tuple_offset(b, x, ib, t, 0, m, idx(b, 0), &off, &ok);
  moss_k_if(b, ok);
  loops++;
  e = loop(b, "e", inner, &loops);
  u = moss_k_load(b, ub, moss_k_add(b, moss_k_mulc(b, t, inner), e));
  MOSS_TRY(combine(b, n, moss_k_load(b, yb, moss_k_add(b, off, e)), u, &r));
  moss_k_store(b, yb, moss_k_add(b, off, e), r);
  while (loops--) moss_k_end(b); /* the loops and the if */
  return b->st;
}

/* OneHot(indices, depth, values): everything off = values[0], then on =
 * values[1] at each valid index along the new axis. */
static moss_status lower_one_hot(moss_kb *b, const moss_node *n) {
  const moss_value *ix = n->inputs[0], *y = n->outputs[0];
  int64_t axis = moss_attr_int(n, "axis", -1), D, outer, inner, ny = prod(y->dims, 0, y->rank);
  int ib, vb, yb, loops = 0;
  moss_kx *i, *o, *j, *v;
  if (axis < 0) axis += y->rank;
  D = y->dims[axis];
  outer = prod(ix->dims, 0, (int)axis);
  inner = prod(ix->dims, (int)axis, ix->rank);
  if (ny == 0) return b->st;
  ib = moss_k_input(b, 0);
  vb = moss_k_input(b, 2);
  yb = moss_k_output(b, 0);
  i = moss_k_range(b, "i", ny, MOSS_KL_PARALLEL);
  moss_k_store(b, yb, i, moss_k_load(b, vb, idx(b, 0)));
  moss_k_end(b);
  /* Each (o, j) writes its own element: independent. */
  o = loop(b, "o", outer, &loops);
  j = loop(b, "j", inner, &loops);
  v = read_index(b, moss_k_load(b, ib, moss_k_add(b, moss_k_mulc(b, o, inner), j)), "v", D);
  moss_k_if(b, in_range(b, v, D));
  moss_k_store(b, yb,
               moss_k_add(b, moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, o, D), v), inner), j),
               moss_k_load(b, vb, idx(b, 1)));
  moss_k_end(b);
  while (loops--) moss_k_end(b);
  return b->st;
}

moss_status moss_lower_gather(moss_kb *b, const moss_node *n) {
  switch (n->op) {
  case MOSS_OP_Gather: return lower_gather(b, n);
  case MOSS_OP_GatherElements:
  case MOSS_OP_ScatterElements:
  case MOSS_OP_Scatter: return lower_elements(b, n);
  case MOSS_OP_GatherND: return lower_gather_nd(b, n);
  case MOSS_OP_ScatterND: return lower_scatter_nd(b, n);
  case MOSS_OP_OneHot: return lower_one_hot(b, n);
  default: return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "no kernel description for this operator");
  }
}
