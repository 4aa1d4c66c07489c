/* movement.c - operators that move elements without computing on them:
 * Transpose, Concat, Split, Slice, Pad, Expand, Tile, DepthToSpace,
 * SpaceToDepth, Trilu, ReverseSequence and Compress. Shape inference reads
 * the shape-deciding inputs (Slice's starts, Pad's pads, Expand's shape...),
 * which must be constant; Concat, Slice, Transpose, Split, Expand and Tile
 * also fold at compile time, since exported models compute Reshape shapes
 * with Shape -> Slice/Gather -> Concat chains. Most of them are one affine
 * copy: an index space with one stride per dimension on each side
 * (moss_affine, which backends/c/emit_movement.c writes out as loops). */
#include <string.h>

#include "ops.h"

static void copy_affine(void *y, const void *x, size_t esz, const moss_affine *a) {
  int64_t idx[MOSS_AFFINE_MAX], total = 1, t;
  int k;
  for (k = 0; k < a->rank; k++) {
    total *= a->dims[k];
    idx[k] = 0;
  }
  for (t = 0; t < total; t++) {
    int64_t io = a->ob, ii = a->ib;
    for (k = 0; k < a->rank; k++) {
      io += idx[k] * a->os[k];
      ii += idx[k] * a->is[k];
    }
    memcpy((char *)y + (size_t)io * esz, (const char *)x + (size_t)ii * esz, esz);
    for (k = a->rank - 1; k >= 0; k--) {
      if (++idx[k] < a->dims[k]) break;
      idx[k] = 0;
    }
  }
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Per axis of |x|: first element, step and count of Slice's selection.
 * Starts/ends/axes/steps are inputs from opset 10, attributes before. */
static moss_status slice_params(moss_ctx *ctx, const moss_node *n, const moss_value *x,
                                int64_t *start, int64_t *step, int64_t *count) {
  int64_t st[MOSS_MAX_RANK], en[MOSS_MAX_RANK], ax[MOSS_MAX_RANK], sp[MOSS_MAX_RANK];
  unsigned seen = 0;
  int m, i, k;
  for (k = 0; k < x->rank; k++) {
    start[k] = 0;
    step[k] = 1;
    count[k] = x->dims[k];
  }
  if (moss_node_input(n, 1)) {
    moss_value *vs = moss_node_input(n, 1), *ve = moss_node_input(n, 2);
    moss_value *va = moss_node_input(n, 3), *vp = moss_node_input(n, 4);
    static const char *const what[5] = {"", "starts", "ends", "axes", "steps"};
    moss_status sc = MOSS_OK;
    if (!ve) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "Slice needs an 'ends' input");
    /* Name every input that must be frozen, not only the first. */
    for (i = 1; i <= 4; i++) {
      moss_status s1 = moss_node_input(n, i) ? moss_need_constant(ctx, n, i, what[i]) : MOSS_OK;
      if (sc == MOSS_OK) sc = s1;
    }
    if (sc != MOSS_OK) return sc;
    m = (int)moss_value_numel(vs);
    if (m > x->rank)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%d starts for rank %d", m, x->rank);
    if (moss_value_numel(ve) != m || (va && moss_value_numel(va) != m) ||
        (vp && moss_value_numel(vp) != m))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                       "starts, ends, axes and steps must have the same length");
    for (i = 0; i < m; i++) {
      st[i] = moss_value_get_i64(vs, i);
      en[i] = moss_value_get_i64(ve, i);
      ax[i] = va ? moss_value_get_i64(va, i) : i;
      sp[i] = vp ? moss_value_get_i64(vp, i) : 1;
    }
  } else {
    const int64_t *as, *ae, *aa;
    int ma;
    m = moss_attr_ints(n, "starts", &as);
    if (!as || moss_attr_ints(n, "ends", &ae) != m || !ae)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                       "Slice needs 'starts' and 'ends' of one length");
    ma = moss_attr_ints(n, "axes", &aa);
    if (aa && ma != m)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "'axes' and 'starts' differ in length");
    if (m > x->rank)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%d starts for rank %d", m, x->rank);
    for (i = 0; i < m; i++) {
      st[i] = as[i];
      en[i] = ae[i];
      ax[i] = aa ? aa[i] : i;
      sp[i] = 1;
    }
  }
  for (i = 0; i < m; i++) {
    int a;
    int64_t d, s = st[i], e = en[i], p = sp[i];
    MOSS_TRY(moss_norm_axis(ctx, n, ax[i], x->rank, &a));
    if (seen & (1u << a)) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "axis %d repeated", a);
    seen |= 1u << a;
    if (p == 0) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "step 0 on axis %d", a);
    d = x->dims[a];
    if (s < 0) s += d;
    if (e < 0) e += d;
    if (p > 0) {
      s = clamp64(s, 0, d);
      e = clamp64(e, 0, d);
      count[a] = e > s ? (e - s - 1) / p + 1 : 0;
    } else {
      int64_t q = p == INT64_MIN ? INT64_MAX : -p;
      s = clamp64(s, 0, d - 1);
      e = clamp64(e, -1, d - 1);
      count[a] = d > 0 && s > e ? (s - e - 1) / q + 1 : 0;
    }
    start[a] = count[a] ? s : 0;
    step[a] = p;
  }
  return MOSS_OK;
}

/* Split sizes along |axis| for every output. */
static moss_status split_sizes(moss_ctx *ctx, moss_graph *g, moss_node *n, int64_t dim,
                               int64_t *sizes) {
  int nout = n->noutputs, i;
  int64_t sum = 0;
  const int64_t *a = NULL;
  int cnt = 0;
  moss_value *v = moss_node_input(n, 1);
  if (v) {
    MOSS_TRY(moss_need_constant(ctx, n, 1, "split"));
    cnt = (int)moss_value_numel(v);
    if (cnt != nout)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%d split sizes for %d outputs", cnt, nout);
    for (i = 0; i < nout; i++) sizes[i] = moss_value_get_i64(v, i);
  } else if ((cnt = moss_attr_ints(n, "split", &a)) > 0 && a) {
    if (cnt != nout)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%d split sizes for %d outputs", cnt, nout);
    for (i = 0; i < nout; i++) sizes[i] = a[i];
  } else {
    int64_t no = moss_attr_int(n, "num_outputs", 0), chunk;
    if (no && no != nout)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                       "num_outputs is %lld but the node has %d outputs", (long long)no, nout);
    if (no && g->opset >= 18) {
      chunk = (dim + nout - 1) / nout;
      if (chunk * (nout - 1) > dim)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "cannot split %lld into %d chunks",
                         (long long)dim, nout);
      for (i = 0; i < nout; i++) sizes[i] = i + 1 < nout ? chunk : dim - chunk * (nout - 1);
    } else {
      if (dim % nout)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                         "dimension %lld does not split into %d equal parts", (long long)dim, nout);
      for (i = 0; i < nout; i++) sizes[i] = dim / nout;
    }
  }
  for (i = 0; i < nout; i++) {
    if (sizes[i] < 0) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "negative split size");
    if (!moss_i64_add(sum, sizes[i], &sum))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "split sizes overflow 64 bits");
  }
  if (sum != dim)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "split sizes add up to %lld, not %lld",
                     (long long)sum, (long long)dim);
  return MOSS_OK;
}

/* Pad's begin/end pads per axis: the 'pads' (or opset 1 'paddings')
 * attribute before opset 11, the pads input after, with axes from 18. */
moss_status moss_pad_compute(moss_ctx *ctx, const moss_node *n, int rank, int64_t *out_begin,
                             int64_t *out_end) {
  int64_t *pb = out_begin, *pe = out_end;
  int64_t pads[2 * MOSS_MAX_RANK], axes[MOSS_MAX_RANK];
  int np, na, i;
  moss_value *vp = moss_node_input(n, 1), *va = moss_node_input(n, 3);
  unsigned seen = 0;
  for (i = 0; i < rank; i++) pb[i] = pe[i] = 0;
  if (vp) {
    moss_status s1 = moss_need_constant(ctx, n, 1, "pads");
    moss_status s3 = va ? moss_need_constant(ctx, n, 3, "axes") : MOSS_OK;
    if (s1 != MOSS_OK || s3 != MOSS_OK) return s1 != MOSS_OK ? s1 : s3;
    if (moss_value_numel(vp) > 2 * MOSS_MAX_RANK)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "too many pads");
    np = (int)moss_value_numel(vp);
    for (i = 0; i < np; i++) pads[i] = moss_value_get_i64(vp, i);
  } else {
    const int64_t *a;
    np = moss_attr_ints(n, "pads", &a);
    if (!a) np = moss_attr_ints(n, "paddings", &a);
    if (!a) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "Pad has no pads");
    if (np > 2 * MOSS_MAX_RANK) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "too many pads");
    for (i = 0; i < np; i++) pads[i] = a[i];
  }
  if (va) {
    MOSS_TRY(moss_need_constant(ctx, n, 3, "axes"));
    na = (int)moss_value_numel(va);
    if (na > rank) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%d axes for rank %d", na, rank);
    for (i = 0; i < na; i++) {
      int a;
      MOSS_TRY(moss_norm_axis(ctx, n, moss_value_get_i64(va, i), rank, &a));
      if (seen & (1u << a)) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "axis %d repeated", a);
      seen |= 1u << a;
      axes[i] = a;
    }
  } else {
    na = rank;
    for (i = 0; i < na; i++) axes[i] = i;
  }
  if (np != 2 * na) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%d pads for %d axes", np, na);
  for (i = 0; i < na; i++) {
    pb[axes[i]] = pads[i];
    pe[axes[i]] = pads[na + i];
  }
  return MOSS_OK;
}

static moss_status infer_pad(moss_ctx *ctx, moss_node *n, const moss_value *x) {
  int64_t pb[MOSS_MAX_RANK], pe[MOSS_MAX_RANK], dims[MOSS_MAX_RANK];
  const char *mode = moss_attr_string(n, "mode", "constant");
  moss_value *cv = moss_node_input(n, 2);
  int k;
  MOSS_TRY(moss_pad_compute(ctx, n, x->rank, pb, pe));
  if (strcmp(mode, "constant") && strcmp(mode, "reflect") && strcmp(mode, "edge") &&
      strcmp(mode, "wrap"))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "unknown Pad mode '%s'", mode);
  if (cv && cv->dtype != x->dtype)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "constant_value has type %s, data %s",
                     moss_dtype_name(cv->dtype), moss_dtype_name(x->dtype));
  if (cv && moss_value_numel(cv) > 1)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "constant_value must hold one element");
  for (k = 0; k < x->rank; k++) {
    if (pb[k] < -x->dims[k] || pe[k] < -x->dims[k])
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "pads crop more than axis %d holds", k);
    if (pb[k] > INT64_MAX - x->dims[k] || pe[k] > INT64_MAX - (x->dims[k] + pb[k]))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "pads make axis %d overflow 64 bits", k);
    if ((dims[k] = x->dims[k] + pb[k] + pe[k]) < 0)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "pads crop more than axis %d holds", k);
    if (strcmp(mode, "constant") && x->dims[k] == 0 && dims[k] > 0)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "cannot %s-pad the empty axis %d", mode, k);
  }
  moss_set_output(n, 0, x->dtype, x->rank, dims);
  return MOSS_OK;
}

static moss_status infer_compress(moss_ctx *ctx, moss_graph *g, moss_node *n,
                                  const moss_value *x) {
  moss_value *c = n->inputs[1];
  int64_t dims[MOSS_MAX_RANK], len, lim, cnt = 0, i;
  const moss_attr *ax = moss_node_find_attr(n, "axis");
  int a = -1, k;
  MOSS_TRY(moss_need_input(ctx, n, 1));
  if (c->rank != 1) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "condition must be 1-D");
  if (ax) MOSS_TRY(moss_norm_axis(ctx, n, ax->i, x->rank, &a));
  len = c->dims[0];
  lim = a >= 0 ? x->dims[a] : moss_value_numel(x);
  if (len > lim) len = lim;
  if (!c->data) cnt = len; /* only the run knows: bounded (ops/bounded.c) */
  for (i = 0; c->data && i < len; i++) cnt += moss_value_get_i64(c, i) != 0;
  if (a < 0) {
    moss_set_output(n, 0, x->dtype, 1, &cnt);
    return c->data ? MOSS_OK : moss_bound_output(ctx, g, n, 0, 0);
  }
  for (k = 0; k < x->rank; k++) dims[k] = k == a ? cnt : x->dims[k];
  moss_set_output(n, 0, x->dtype, x->rank, dims);
  return c->data ? MOSS_OK : moss_bound_output(ctx, g, n, 0, a);
}

static moss_status get_perm(moss_ctx *ctx, const moss_node *n, int rank, int *perm) {
  const int64_t *p;
  int cnt = moss_attr_ints(n, "perm", &p), k;
  unsigned seen = 0;
  if (!p) {
    for (k = 0; k < rank; k++) perm[k] = rank - 1 - k;
    return MOSS_OK;
  }
  if (cnt != rank)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "perm has %d entries for rank %d", cnt, rank);
  for (k = 0; k < rank; k++) {
    if (p[k] < 0 || p[k] >= rank || (seen & (1u << p[k])))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "perm is not a permutation");
    seen |= 1u << p[k];
    perm[k] = (int)p[k];
  }
  return MOSS_OK;
}

moss_status moss_infer_movement(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = n->inputs[0];
  int64_t dims[MOSS_MAX_RANK];
  int k, rank;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  if (!moss_dtype_ctype(x->dtype))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "%s data is not supported",
                     moss_dtype_name(x->dtype));
  rank = x->rank;
  switch (n->op) {
  case MOSS_OP_Transpose: {
    int perm[MOSS_MAX_RANK];
    MOSS_TRY(get_perm(ctx, n, rank, perm));
    for (k = 0; k < rank; k++) dims[k] = x->dims[perm[k]];
    break;
  }
  case MOSS_OP_Concat: {
    int a, i;
    if (!moss_node_find_attr(n, "axis") && g->opset >= 4)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "Concat needs an 'axis' attribute");
    MOSS_TRY(moss_norm_axis(ctx, n, moss_attr_int(n, "axis", 1), rank, &a));
    if (rank == 0) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "cannot concatenate scalars");
    memcpy(dims, x->dims, sizeof dims);
    for (i = 1; i < n->ninputs; i++) {
      moss_value *v = n->inputs[i];
      MOSS_TRY(moss_need_input(ctx, n, i));
      if (v->dtype != x->dtype || v->rank != rank)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input %d has another type or rank", i);
      for (k = 0; k < rank; k++)
        if (k != a && v->dims[k] != x->dims[k])
          return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input %d differs in dimension %d", i, k);
      if (!moss_i64_add(dims[a], v->dims[a], &dims[a]))
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "axis %d overflows 64 bits", a);
    }
    break;
  }
  case MOSS_OP_Split: {
    int a, i;
    int64_t sizes[256];
    if (n->noutputs > 256) return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "more than 256 outputs");
    MOSS_TRY(moss_norm_axis(ctx, n, moss_attr_int(n, "axis", 0), rank, &a));
    if (rank == 0) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "cannot split a scalar");
    MOSS_TRY(split_sizes(ctx, g, n, x->dims[a], sizes));
    memcpy(dims, x->dims, sizeof dims);
    for (i = 0; i < n->noutputs; i++) {
      if (!n->outputs[i])
        return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "Split output %d is unnamed", i);
      dims[a] = sizes[i];
      moss_set_output(n, i, x->dtype, rank, dims);
    }
    return MOSS_OK;
  }
  case MOSS_OP_Slice: {
    int64_t start[MOSS_MAX_RANK], step[MOSS_MAX_RANK];
    MOSS_TRY(slice_params(ctx, n, x, start, step, dims));
    break;
  }
  case MOSS_OP_Pad: return infer_pad(ctx, n, x);
  case MOSS_OP_Expand: {
    moss_value *s = n->inputs[1];
    int64_t sd[MOSS_MAX_RANK];
    int sr;
    MOSS_TRY(moss_need_input(ctx, n, 1));
    MOSS_TRY(moss_need_constant(ctx, n, 1, "shape"));
    sr = (int)moss_value_numel(s);
    if (s->rank > 1 || sr > MOSS_MAX_RANK)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "shape must be 1-D with at most %d entries",
                       MOSS_MAX_RANK);
    for (k = 0; k < sr; k++)
      if ((sd[k] = moss_value_get_i64(s, k)) < 0)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "negative dimension in shape");
    MOSS_TRY(moss_broadcast(ctx, n, rank, x->dims, sr, sd, &rank, dims));
    break;
  }
  case MOSS_OP_Tile: {
    moss_value *r = n->inputs[1];
    MOSS_TRY(moss_need_input(ctx, n, 1));
    MOSS_TRY(moss_need_constant(ctx, n, 1, "repeats"));
    if (moss_value_numel(r) != rank)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "repeats must have one entry per axis");
    for (k = 0; k < rank; k++) {
      int64_t rep = moss_value_get_i64(r, k);
      if (rep < 0) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "negative repeat");
      if (!moss_i64_mul(x->dims[k], rep, &dims[k]))
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                         "axis %d: %lld repeats of %lld overflow 64 bits", k, (long long)rep,
                         (long long)x->dims[k]);
    }
    break;
  }
  case MOSS_OP_DepthToSpace:
  case MOSS_OP_SpaceToDepth: {
    int64_t b = moss_attr_int(n, "blocksize", 0);
    const char *mode = moss_attr_string(n, "mode", "DCR");
    if (rank != 4) return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "only 4-D input is supported");
    if (b <= 0 || b > 4096)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "blocksize must be positive");
    dims[0] = x->dims[0];
    if (n->op == MOSS_OP_DepthToSpace) {
      if (strcmp(mode, "DCR") && strcmp(mode, "CRD"))
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "unknown mode '%s'", mode);
      if (x->dims[1] % (b * b))
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "channels not divisible by blocksize^2");
      dims[1] = x->dims[1] / (b * b);
      if (!moss_i64_mul(x->dims[2], b, &dims[2]) || !moss_i64_mul(x->dims[3], b, &dims[3]))
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "output size overflows 64 bits");
    } else {
      if (x->dims[2] % b || x->dims[3] % b)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                         "height or width not divisible by blocksize");
      if (!moss_i64_mul(x->dims[1], b * b, &dims[1]))
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "output size overflows 64 bits");
      dims[2] = x->dims[2] / b;
      dims[3] = x->dims[3] / b;
    }
    break;
  }
  case MOSS_OP_Trilu: {
    moss_value *kv = moss_node_input(n, 1);
    if (rank < 2) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "Trilu needs rank >= 2");
    if (kv && (moss_value_numel(kv) != 1 || kv->dtype != MOSS_DT_I64))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "k must be one int64");
    memcpy(dims, x->dims, sizeof dims);
    break;
  }
  case MOSS_OP_ReverseSequence: {
    moss_value *s = n->inputs[1];
    int64_t ba = moss_attr_int(n, "batch_axis", 0), ta = moss_attr_int(n, "time_axis", 1);
    MOSS_TRY(moss_need_input(ctx, n, 1));
    if (rank < 2) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "ReverseSequence needs rank >= 2");
    if (!((ba == 0 && ta == 1) || (ba == 1 && ta == 0)))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "batch_axis and time_axis must be 0 and 1");
    if (s->rank != 1 || s->dims[0] != x->dims[ba])
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "sequence_lens must have one entry per batch");
    if (s->dtype != MOSS_DT_I64 && s->dtype != MOSS_DT_I32)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "sequence_lens must be int64");
    memcpy(dims, x->dims, sizeof dims);
    break;
  }
  case MOSS_OP_Compress: return infer_compress(ctx, g, n, x);
  default: return moss_fail(ctx, MOSS_E_INTERNAL, n, "not a movement operator");
  }
  moss_set_output(n, 0, x->dtype, rank, dims);
  return MOSS_OK;
}

void moss_affine_compute_part(const moss_value *whole, const moss_value *part, int axis,
                              int64_t off, int into_whole, moss_affine *out_a) {
  moss_affine *a = out_a;
  int64_t ws[MOSS_MAX_RANK], ps[MOSS_MAX_RANK];
  int k;
  moss_strides(whole->rank, whole->dims, ws);
  moss_strides(part->rank, part->dims, ps);
  a->rank = part->rank;
  a->ib = a->ob = 0;
  for (k = 0; k < part->rank; k++) {
    a->dims[k] = part->dims[k];
    a->is[k] = into_whole ? ps[k] : ws[k];
    a->os[k] = into_whole ? ws[k] : ps[k];
  }
  if (into_whole)
    a->ob = off * ws[axis];
  else
    a->ib = off * ws[axis];
}

moss_status moss_affine_compute(moss_ctx *ctx, const moss_node *n, moss_affine *out_a) {
  moss_affine *a = out_a;
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  int64_t xs[MOSS_MAX_RANK], ys[MOSS_MAX_RANK];
  int k, r = y->rank;
  moss_strides(x->rank, x->dims, xs);
  moss_strides(y->rank, y->dims, ys);
  a->ib = a->ob = 0;
  a->rank = r;
  for (k = 0; k < r; k++) {
    a->dims[k] = y->dims[k];
    a->os[k] = ys[k];
  }
  switch (n->op) {
  case MOSS_OP_Transpose: {
    int perm[MOSS_MAX_RANK];
    MOSS_TRY(get_perm(ctx, n, x->rank, perm));
    for (k = 0; k < r; k++) a->is[k] = xs[perm[k]];
    return MOSS_OK;
  }
  case MOSS_OP_Slice: {
    int64_t start[MOSS_MAX_RANK], step[MOSS_MAX_RANK], cnt[MOSS_MAX_RANK];
    MOSS_TRY(slice_params(ctx, n, x, start, step, cnt));
    for (k = 0; k < r; k++) {
      a->is[k] = xs[k] * step[k];
      a->ib += start[k] * xs[k];
    }
    return MOSS_OK;
  }
  case MOSS_OP_Expand:
    for (k = 0; k < r; k++) {
      int xk = k - (r - x->rank);
      a->is[k] = xk < 0 || x->dims[xk] == 1 ? 0 : xs[xk];
    }
    return MOSS_OK;
  case MOSS_OP_Tile:
    /* Two loops per axis: the repeat (input stride 0) and the element. */
    a->rank = 2 * r;
    for (k = 0; k < r; k++) {
      a->dims[2 * k] = x->dims[k] ? y->dims[k] / x->dims[k] : 0;
      a->dims[2 * k + 1] = x->dims[k];
      a->is[2 * k] = 0;
      a->is[2 * k + 1] = xs[k];
      a->os[2 * k] = ys[k] * x->dims[k];
      a->os[2 * k + 1] = ys[k];
    }
    return MOSS_OK;
  case MOSS_OP_DepthToSpace:
  case MOSS_OP_SpaceToDepth: {
    int64_t b = moss_attr_int(n, "blocksize", 1), N = x->dims[0], C = x->dims[1], H = x->dims[2],
            W = x->dims[3];
    int64_t d6[6], is6[6], os6[6];
    (void)N;
    a->rank = 6;
    if (n->op == MOSS_OP_DepthToSpace) {
      /* Output viewed as [N, C', H, b1, W, b2]. */
      int64_t Co = C / (b * b), HW = H * W;
      int crd = !strcmp(moss_attr_string(n, "mode", "DCR"), "CRD");
      int64_t d[6] = {y->dims[0], Co, H, b, W, b};
      int64_t s[6] = {C * HW, crd ? b * b * HW : HW, W, crd ? b * HW : b * Co * HW,
                      1,      crd ? HW : Co * HW};
      memcpy(d6, d, sizeof d6);
      memcpy(is6, s, sizeof is6);
    } else {
      /* Output viewed as [N, b1, b2, C, H', W']. */
      int64_t d[6] = {N, b, b, C, H / b, W / b};
      int64_t s[6] = {C * H * W, W, 1, H * W, b * W, b};
      memcpy(d6, d, sizeof d6);
      memcpy(is6, s, sizeof is6);
    }
    moss_strides(6, d6, os6);
    for (k = 0; k < 6; k++) {
      a->dims[k] = d6[k];
      a->is[k] = is6[k];
      a->os[k] = os6[k];
    }
    return MOSS_OK;
  }
  default: return MOSS_E_UNSUPPORTED;
  }
}

moss_status moss_eval_movement(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  const moss_value *x = n->inputs[0];
  size_t esz = moss_dtype_size(x->dtype);
  moss_affine a;
  int i, ax;
  int64_t off = 0;
  (void)g;
  if (!esz) return MOSS_E_UNSUPPORTED;
  switch (n->op) {
  case MOSS_OP_Concat:
    ax = (int)moss_attr_int(n, "axis", 1);
    if (ax < 0) ax += n->outputs[0]->rank;
    for (i = 0; i < n->ninputs; i++) {
      moss_affine_compute_part(n->outputs[0], n->inputs[i], ax, off, 1, &a);
      copy_affine(n->outputs[0]->data, n->inputs[i]->data, esz, &a);
      off += n->inputs[i]->dims[ax];
    }
    return MOSS_OK;
  case MOSS_OP_Split:
    ax = (int)moss_attr_int(n, "axis", 0);
    if (ax < 0) ax += x->rank;
    for (i = 0; i < n->noutputs; i++) {
      if (!n->outputs[i]) return MOSS_E_UNSUPPORTED;
      moss_affine_compute_part(x, n->outputs[i], ax, off, 0, &a);
      copy_affine(n->outputs[i]->data, x->data, esz, &a);
      off += n->outputs[i]->dims[ax];
    }
    return MOSS_OK;
  case MOSS_OP_Transpose:
  case MOSS_OP_Slice:
  case MOSS_OP_Expand:
  case MOSS_OP_Tile:
  case MOSS_OP_DepthToSpace:
  case MOSS_OP_SpaceToDepth:
    if (moss_affine_compute(ctx, n, &a) != MOSS_OK) return MOSS_E_UNSUPPORTED;
    copy_affine(n->outputs[0]->data, x->data, esz, &a);
    return MOSS_OK;
  default: return MOSS_E_UNSUPPORTED;
  }
}
