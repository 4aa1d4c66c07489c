/* lower_resize.c - Resize, Upsample and GridSample.
 *
 * Resize and Upsample: every axis gets, at compile time, a table of source
 * offsets (premultiplied by the input stride) and, for the linear and
 * cubic modes, of tap weights, both constant tables of the kernel; the
 * parallel loops walk the output and sum the taps, so the run time does no
 * coordinate arithmetic. Leading axes that are not resized (usually N and
 * C) become one loop over planes, and an axis that is not resized reads
 * its own index, without a table.
 *
 * GridSample (PyTorch's grid_sample): the grid is read at run time, so per
 * output position the kernel unnormalizes and pads the coordinates, puts
 * the taps' offsets and weights in private arrays (weight 0 outside the
 * input) and sums them for every channel, in double. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lower.h"

/* One axis's sampling table: |taps| source offsets and weights per output. */
typedef struct rs_axis {
  int taps;
  int64_t len;        /* output length */
  int64_t *off;       /* len * taps, in elements of the input block */
  double *w;          /* len * taps */
  unsigned char *ext; /* len: 1 = outside the roi (tf_crop_and_resize) */
  int any_ext, identity;
} rs_axis;

static double coord(const char *ctm, double o, int64_t L, int64_t O, double s, double rs,
                    double re) {
  double ow = s * (double)L;
  if (!strcmp(ctm, "asymmetric")) return o / s;
  if (!strcmp(ctm, "align_corners")) return ow == 1 ? 0 : o * (double)(L - 1) / (ow - 1);
  if (!strcmp(ctm, "pytorch_half_pixel")) return O > 1 ? (o + 0.5) / s - 0.5 : 0;
  if (!strcmp(ctm, "tf_half_pixel_for_nn")) return (o + 0.5) / s;
  if (!strcmp(ctm, "tf_crop_and_resize"))
    return O > 1 ? rs * (double)(L - 1) + o * (re - rs) * (double)(L - 1) / (double)(O - 1)
                 : 0.5 * (rs + re) * (double)(L - 1);
  if (!strcmp(ctm, "half_pixel_symmetric")) {
    double adj = (double)O / ow, center = (double)L / 2;
    return center * (1 - adj) + (o + 0.5) / s - 0.5;
  }
  return (o + 0.5) / s - 0.5; /* half_pixel */
}

static void cubic(double r, double A, double *c) {
  c[0] = ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A;
  c[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
  c[2] = ((A + 2) * (1 - r) - (A + 3)) * (1 - r) * (1 - r) + 1;
  c[3] = ((A * ((1 - r) + 1) - 5 * A) * ((1 - r) + 1) + 8 * A) * ((1 - r) + 1) - 4 * A;
}

static int64_t clampi(int64_t i, int64_t L) { return i < 0 ? 0 : i >= L ? L - 1 : i; }

/* Fills |a| for axis |k| of |p| (in the kernel's arena); |kind| 0 nearest,
 * 1 linear, 2 cubic. */
static moss_status build_axis(moss_kb *b, const moss_node *n, const moss_resize *p, int k, int kind,
                              const char *ctm, const char *nm, int64_t stride, rs_axis *a) {
  int64_t L = p->in[k], O = p->out[k], o;
  int T = kind == 0 ? 1 : kind == 1 ? 2 : 4, t;
  double A = moss_attr_float(n, "cubic_coeff_a", -0.75f);
  int excl = (int)moss_attr_int(n, "exclude_outside", 0);
  int crop = !strcmp(ctm, "tf_crop_and_resize");
  memset(a, 0, sizeof *a);
  a->taps = T;
  a->len = O;
  a->off = moss_arena_alloc(b->arena, sizeof *a->off * (size_t)(O * T + 1), 16);
  a->w = moss_arena_alloc(b->arena, sizeof *a->w * (size_t)(O * T + 1), 16);
  a->ext = moss_arena_alloc(b->arena, (size_t)O + 1, 16);
  if (!a->off || !a->w || !a->ext) return moss_kb_fail(b, MOSS_E_NOMEM, "resize tables");
  for (o = 0; o < O; o++) {
    double x = coord(ctm, (double)o, L, O, p->scale[k], p->roi_s[k], p->roi_e[k]), r, c[4];
    int64_t base;
    a->ext[o] = 0;
    if (crop && (x < 0 || x > (double)(L - 1))) {
      a->ext[o] = 1;
      a->any_ext = 1;
      x = 0;
    }
    if (!(fabs(x) < 1e15)) x = 0;
    base = (int64_t)floor(x);
    r = x - (double)base;
    if (kind == 0) {
      int up = 0;
      if (r > 0) {
        if (!strcmp(nm, "round_prefer_ceil"))
          up = r >= 0.5;
        else if (!strcmp(nm, "floor"))
          up = 0;
        else if (!strcmp(nm, "ceil"))
          up = 1;
        else
          up = r > 0.5;
      }
      a->off[o] = clampi(base + up, L) * stride;
      a->w[o] = 1;
      continue;
    }
    if (kind == 1) {
      c[0] = 1 - r;
      c[1] = r;
    } else {
      cubic(r, A, c);
      base -= 1;
    }
    if (excl) {
      double sum = 0;
      for (t = 0; t < T; t++) {
        if (base + t < 0 || base + t >= L) c[t] = 0;
        sum += c[t];
      }
      if (sum != 0)
        for (t = 0; t < T; t++) c[t] /= sum;
    }
    for (t = 0; t < T; t++) {
      a->off[o * T + t] = clampi(base + t, L) * stride;
      a->w[o * T + t] = c[t];
    }
  }
  /* An axis that samples each input element exactly once, in order. */
  a->identity = O == L && !a->any_ext;
  for (o = 0; o < O && a->identity; o++) {
    double on = 0, off = 0;
    for (t = 0; t < T; t++) {
      if (a->off[o * T + t] == o * stride)
        on += a->w[o * T + t];
      else
        off += fabs(a->w[o * T + t]);
    }
    if (on != 1 || off != 0) a->identity = 0;
  }
  if (a->identity) a->taps = 1;
  return MOSS_OK;
}

/* An offset table of |cnt| entries: int32 when every offset fits. */
static int off_table(moss_kb *b, const char *name, const int64_t *v, int64_t cnt, int64_t limit) {
  int32_t *narrow;
  int64_t i;
  if (limit > INT32_MAX) return moss_k_table(b, name, MOSS_DT_I64, cnt, v);
  narrow = moss_arena_alloc(b->arena, sizeof *narrow * (size_t)(cnt + 1), 16);
  if (!narrow) return moss_kb_fail(b, MOSS_E_NOMEM, "resize tables"), 0;
  for (i = 0; i < cnt; i++) narrow[i] = (int32_t)v[i];
  return moss_k_table(b, name, MOSS_DT_I32, cnt, narrow);
}

/* A weight table of |cnt| entries in the float type |dt|. */
static int weight_table(moss_kb *b, const char *name, moss_dtype dt, const double *v, int64_t cnt) {
  float *f;
  int64_t i;
  if (dt != MOSS_DT_F32) return moss_k_table(b, name, dt, cnt, v);
  f = moss_arena_alloc(b->arena, sizeof *f * (size_t)(cnt + 1), 16);
  if (!f) return moss_kb_fail(b, MOSS_E_NOMEM, "resize tables"), 0;
  for (i = 0; i < cnt; i++) f[i] = (float)v[i];
  return moss_k_table(b, name, dt, cnt, f);
}

static moss_kx *flt(moss_kb *b, double v) { return moss_k_flt(b, MOSS_DT_F64, v); }
static moss_kx *bin(moss_kb *b, moss_kx_op op, moss_kx *x, moss_kx *y) {
  return moss_k_bin(b, op, x, y);
}
static moss_kx *plus(moss_kb *b, moss_kx *x, moss_kx *y) { return bin(b, MOSS_KX_ADD, x, y); }
static moss_kx *minus(moss_kb *b, moss_kx *x, moss_kx *y) { return bin(b, MOSS_KX_SUB, x, y); }
static moss_kx *times(moss_kb *b, moss_kx *x, moss_kx *y) { return bin(b, MOSS_KX_MUL, x, y); }
static moss_kx *over(moss_kb *b, moss_kx *x, moss_kx *y) { return bin(b, MOSS_KX_DIV, x, y); }
static moss_kx *both(moss_kb *b, moss_kx *x, moss_kx *y) { return bin(b, MOSS_KX_LAND, x, y); }
static moss_kx *call1(moss_kb *b, moss_kfn fn, moss_kx *x) {
  return moss_k_call(b, fn, x, NULL, NULL);
}
static moss_kx *call2(moss_kb *b, moss_kfn fn, moss_kx *x, moss_kx *y) {
  return moss_k_call(b, fn, x, y, NULL);
}
/* lo <= v < hi */
static moss_kx *within(moss_kb *b, moss_kx *v, double lo, double hi) {
  return both(b, bin(b, MOSS_KX_GE, v, flt(b, lo)), bin(b, MOSS_KX_LT, v, flt(b, hi)));
}
/* |v| clamped to [lo, hi]: v < lo ? lo : (v > hi ? hi : v). */
static moss_kx *clamp(moss_kb *b, moss_kx *v, double lo, double hi) {
  moss_kx *l = flt(b, lo), *h = flt(b, hi);
  return moss_k_select(b, bin(b, MOSS_KX_LT, v, l), l,
                       moss_k_select(b, bin(b, MOSS_KX_GT, v, h), h, v));
}

/* GridSample's unnormalized coordinate of |g| on an axis of |size|,
 * kept within +-1e6 (NaN gives -1e6). */
static moss_kx *unnorm(moss_kb *b, int align, moss_kx *g, int64_t size, const char *name) {
  moss_kx *r, *big = flt(b, 1e6), *small = flt(b, -1e6), *g1 = plus(b, g, flt(b, 1));
  if (align) /* (g + 1) / 2 * (size - 1) */
    r = times(b, over(b, g1, flt(b, 2)), flt(b, (double)size - 1));
  else /* ((g + 1) * size - 1) / 2 */
    r = over(b, minus(b, times(b, g1, flt(b, (double)size)), flt(b, 1)), flt(b, 2));
  r = moss_k_let(b, name, r);
  return moss_k_select(b, both(b, bin(b, MOSS_KX_GT, r, small), bin(b, MOSS_KX_LT, r, big)), r,
                       moss_k_select(b, bin(b, MOSS_KX_GE, r, big), big, small));
}

/* GridSample's padding of the coordinate |v| (a variable) on an axis of
 * |size|: |padk| 0 zeros (unchanged), 1 border (clamped), 2 reflection
 * (reflected, then clamped). */
static moss_kx *pad(moss_kb *b, int padk, int align, moss_kx *v, int64_t size) {
  if (padk == 0) return v;
  if (padk == 2) {
    double lo2 = align ? 0 : -1, hi2 = align ? 2 * ((double)size - 1) : 2 * (double)size - 1;
    double mn = lo2 / 2, span = (hi2 - lo2) / 2;
    moss_kx *a, *ex, *fl, *even;
    if (lo2 == hi2) return flt(b, 0); /* one element with align_corners: clamped to 0 anyway */
    a = moss_k_let(b, "ra", call1(b, MOSS_KFN_FABS, minus(b, v, flt(b, mn))));
    ex = moss_k_let(b, "rx", call2(b, MOSS_KFN_FMOD, a, flt(b, span)));
    fl = call1(b, MOSS_KFN_FLOOR, over(b, a, flt(b, span)));
    even = bin(b, MOSS_KX_EQ, call2(b, MOSS_KFN_FMOD, fl, flt(b, 2)), flt(b, 0));
    v = moss_k_let(b, "rv",
                   moss_k_select(b, even, plus(b, ex, flt(b, mn)),
                                 plus(b, minus(b, flt(b, span), ex), flt(b, mn))));
  }
  return clamp(b, v, 0, (double)size - 1);
}

/* Tap |t| at input position (|xd|, |yd|) with weight |w|: its offset in
 * the plane and weight, or offset 0 and weight 0 outside the plane. */
static void tap(moss_kb *b, int offs, int wts, moss_kx *t, moss_kx *xd, moss_kx *yd, moss_kx *w,
                int64_t W, int64_t H) {
  if (xd->op != MOSS_KX_VAR) xd = moss_k_let(b, "xd", xd);
  if (yd->op != MOSS_KX_VAR) yd = moss_k_let(b, "yd", yd);
  moss_k_if(b, both(b, within(b, xd, 0, (double)W), within(b, yd, 0, (double)H)));
  moss_k_store(b, offs, t,
               moss_k_add(b, moss_k_mulc(b, moss_k_cast(b, MOSS_DT_I64, yd), W),
                          moss_k_cast(b, MOSS_DT_I64, xd)));
  moss_k_store(b, wts, t, w);
  moss_k_else(b);
  moss_k_store(b, offs, t, moss_k_idx(b, 0));
  moss_k_store(b, wts, t, flt(b, 0));
  moss_k_end(b);
}

/* The four cubic weights (A = -0.75) of the fraction |t| into |c|, in the
 * order of the old C helper's arithmetic. */
static void cubic_weights(moss_kb *b, int c, moss_kx *t, const char *name) {
  const double A = -0.75;
  moss_kx *u[4];
  int i;
  t = moss_k_let(b, name, t);
  u[0] = plus(b, t, flt(b, 1));
  u[1] = t;
  u[2] = minus(b, flt(b, 1), t);
  u[3] = minus(b, flt(b, 2), t);
  for (i = 0; i < 4; i++) {
    moss_kx *e;
    if (i == 0 || i == 3) { /* ((A u - 5A) u + 8A) u - 4A */
      e = minus(b, times(b, flt(b, A), u[i]), flt(b, 5 * A));
      e = plus(b, times(b, e, u[i]), flt(b, 8 * A));
      e = minus(b, times(b, e, u[i]), flt(b, 4 * A));
    } else { /* ((A + 2) u - (A + 3)) u u + 1 */
      e = minus(b, times(b, flt(b, A + 2), u[i]), flt(b, A + 3));
      e = plus(b, times(b, times(b, e, u[i]), u[i]), flt(b, 1));
    }
    moss_k_store(b, c, moss_k_idx(b, i), e);
  }
}

static moss_status gridsample(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  const char *mode = moss_attr_string(n, "mode", "bilinear");
  const char *padm = moss_attr_string(n, "padding_mode", "zeros");
  int align = (int)moss_attr_int(n, "align_corners", 0);
  int cubic = !strcmp(mode, "bicubic") || !strcmp(mode, "cubic");
  int kind = !strcmp(mode, "nearest") ? 0 : cubic ? 2 : 1;
  int padk = !strcmp(padm, "border") ? 1 : !strcmp(padm, "reflection") ? 2 : 0;
  int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
  int64_t HoWo = y->dims[2] * y->dims[3];
  int T = kind == 0 ? 1 : kind == 1 ? 4 : 16;
  int x0, x1, y0, offs, wts;
  moss_kx *nn, *p, *gb, *ix, *iy, *c, *t, *acc, *plane, *v;
  if (moss_value_numel(y) <= 0) return b->st;
  if (H <= 0 || W <= 0) return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "empty input plane");
  x0 = moss_k_input(b, 0);
  x1 = moss_k_input(b, 1);
  y0 = moss_k_output(b, 0);
  offs = moss_k_local(b, "off", MOSS_DT_I64, T); /* per tap: offset in the plane */
  wts = moss_k_local(b, "wt", MOSS_DT_F64, T);   /* and weight */
  nn = moss_k_range(b, "n", N, MOSS_KL_PARALLEL);
  p = moss_k_range(b, "p", HoWo, MOSS_KL_PARALLEL);
  gb = moss_k_let(b, "g", moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, nn, HoWo), p), 2));
  v = moss_k_cast(b, MOSS_DT_F64, moss_k_load(b, x1, gb));
  ix = moss_k_let(b, "ix", unnorm(b, align, v, W, "ux"));
  v = moss_k_cast(b, MOSS_DT_F64, moss_k_load(b, x1, moss_k_addc(b, gb, 1)));
  iy = moss_k_let(b, "iy", unnorm(b, align, v, H, "uy"));
  if (kind < 2 && padk) {
    moss_k_set(b, ix, pad(b, padk, align, ix, W));
    moss_k_set(b, iy, pad(b, padk, align, iy, H));
  }
  if (kind == 0) {
    tap(b, offs, wts, moss_k_idx(b, 0), call1(b, MOSS_KFN_RINT, ix), call1(b, MOSS_KFN_RINT, iy),
        flt(b, 1), W, H);
  } else if (kind == 1) {
    moss_kx *fx = moss_k_let(b, "fx", call1(b, MOSS_KFN_FLOOR, ix));
    moss_kx *fy = moss_k_let(b, "fy", call1(b, MOSS_KFN_FLOOR, iy));
    moss_kx *tx = moss_k_let(b, "tx", minus(b, ix, fx));
    moss_kx *ty = moss_k_let(b, "ty", minus(b, iy, fy));
    moss_kx *fx1 = moss_k_let(b, "fx1", plus(b, fx, flt(b, 1)));
    moss_kx *fy1 = moss_k_let(b, "fy1", plus(b, fy, flt(b, 1)));
    moss_kx *ux = minus(b, flt(b, 1), tx), *uy = minus(b, flt(b, 1), ty);
    tap(b, offs, wts, moss_k_idx(b, 0), fx, fy, times(b, ux, uy), W, H);
    tap(b, offs, wts, moss_k_idx(b, 1), fx1, fy, times(b, tx, uy), W, H);
    tap(b, offs, wts, moss_k_idx(b, 2), fx, fy1, times(b, ux, ty), W, H);
    tap(b, offs, wts, moss_k_idx(b, 3), fx1, fy1, times(b, tx, ty), W, H);
  } else { /* 4 x 4 taps from (fx - 1, fy - 1), each coordinate padded */
    int cx = moss_k_local(b, "cx", MOSS_DT_F64, 4), cy = moss_k_local(b, "cy", MOSS_DT_F64, 4);
    moss_kx *fx = moss_k_let(b, "fx", call1(b, MOSS_KFN_FLOOR, ix));
    moss_kx *fy = moss_k_let(b, "fy", call1(b, MOSS_KFN_FLOOR, iy));
    moss_kx *tj, *ti, *xd, *yd;
    cubic_weights(b, cx, minus(b, ix, fx), "tx");
    cubic_weights(b, cy, minus(b, iy, fy), "ty");
    tj = moss_k_range(b, "tj", 4, MOSS_KL_SERIAL);
    ti = moss_k_range(b, "ti", 4, MOSS_KL_SERIAL);
    xd = moss_k_let(b, "xd", plus(b, minus(b, fx, flt(b, 1)), moss_k_cast(b, MOSS_DT_F64, ti)));
    yd = moss_k_let(b, "yd", plus(b, minus(b, fy, flt(b, 1)), moss_k_cast(b, MOSS_DT_F64, tj)));
    if (padk) {
      moss_k_set(b, xd, pad(b, padk, align, xd, W));
      moss_k_set(b, yd, pad(b, padk, align, yd, H));
    }
    tap(b, offs, wts, moss_k_add(b, moss_k_mulc(b, tj, 4), ti), xd, yd,
        times(b, moss_k_load(b, cx, ti), moss_k_load(b, cy, tj)), W, H);
    moss_k_end(b);
    moss_k_end(b);
  }
  /* Every channel sums the same taps. */
  c = moss_k_range(b, "c", C, MOSS_KL_PARALLEL);
  plane = moss_k_let(b, "nc", moss_k_add(b, moss_k_mulc(b, nn, C), c));
  acc = moss_k_let(b, "acc", flt(b, 0));
  t = moss_k_range(b, "t", T, MOSS_KL_REDUCE);
  v = moss_k_load(b, x0, moss_k_add(b, moss_k_mulc(b, plane, H * W), moss_k_load(b, offs, t)));
  moss_k_set(b, acc,
             plus(b, acc, times(b, moss_k_load(b, wts, t), moss_k_cast(b, MOSS_DT_F64, v))));
  moss_k_end(b);
  moss_k_store(b, y0, moss_k_add(b, moss_k_mulc(b, plane, HoWo), p), moss_k_cast(b, y->dtype, acc));
  moss_k_end(b); /* c */
  moss_k_end(b); /* p */
  moss_k_end(b); /* n */
  return b->st;
}

/* Whether Resize |n| is the opset 10 form (X and scales only): the
 * description does not carry the model's opset, and from opset 11 on a
 * Resize needs its scales (input 2) or sizes (input 3). */
static int resize_v10(const moss_node *n) {
  return n->op == MOSS_OP_Resize && !moss_node_input(n, 2) && !moss_node_input(n, 3);
}

moss_status moss_lower_resize(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  moss_dtype dt = x->dtype;
  int old = n->op == MOSS_OP_Upsample || resize_v10(n);
  const char *mode = moss_attr_string(n, "mode", "nearest");
  const char *ctm =
      old ? "asymmetric" : moss_attr_string(n, "coordinate_transformation_mode", "half_pixel");
  const char *nm = old ? "floor" : moss_attr_string(n, "nearest_mode", "round_prefer_floor");
  int kind = !strcmp(mode, "nearest") ? 0 : !strcmp(mode, "cubic") ? 2 : 1;
  moss_resize p;
  rs_axis ax[MOSS_MAX_RANK];
  int offt[MOSS_MAX_RANK], wt[MOSS_MAX_RANK], ext[MOSS_MAX_RANK];
  int64_t stride[MOSS_MAX_RANK], planes = 1, inblock = 1, outblock = 1;
  int k, lead, any_ext = 0, weighted = 0, xb, yb, loops = 0;
  moss_kx *idx[MOSS_MAX_RANK], *tv[MOSS_MAX_RANK], *pl = NULL, *o, *src;
  char name[16];
  if (n->op == MOSS_OP_GridSample) return gridsample(b, n);
  if (!moss_kernel_dtype_ok(dt))
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "type %s", moss_dtype_name(dt));
  MOSS_TRY(moss_resize_compute(b->ctx, n, old ? 10 : 11, &p));
  if (moss_value_numel(y) <= 0) return b->st;
  for (k = 0; k < p.rank; k++)
    if (p.in[k] <= 0)
      return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "cannot resize an empty axis to %lld",
                          (long long)p.out[k]);
  for (k = p.rank - 1; k >= 0; k--) {
    stride[k] = inblock;
    inblock *= p.in[k];
  }
  for (k = 0; k < p.rank; k++) MOSS_TRY(build_axis(b, n, &p, k, kind, ctm, nm, stride[k], &ax[k]));
  xb = moss_k_input(b, 0);
  yb = moss_k_output(b, 0);
  for (lead = 0; lead < p.rank && ax[lead].identity; lead++) planes *= p.in[lead];
  if (lead == p.rank) { /* nothing is resized: a copy */
    moss_kx *i = moss_k_range(b, "i", moss_value_numel(y), MOSS_KL_PARALLEL);
    moss_k_store(b, yb, i, moss_k_load(b, xb, i));
    moss_k_end(b);
    return b->st;
  }
  inblock = 1;
  for (k = lead; k < p.rank; k++) {
    inblock *= p.in[k];
    outblock *= p.out[k];
    any_ext |= ax[k].any_ext;
    if (ax[k].taps > 1) weighted = 1;
  }
  /* The tables (offsets within one plane). */
  for (k = lead; k < p.rank; k++) {
    offt[k] = wt[k] = ext[k] = -1;
    if (!ax[k].identity && !(ax[k].len == 1 && ax[k].taps == 1)) {
      snprintf(name, sizeof name, "off%d", k);
      offt[k] = off_table(b, name, ax[k].off, ax[k].len * ax[k].taps, inblock);
    }
    if (ax[k].taps > 1) {
      snprintf(name, sizeof name, "w%d", k);
      wt[k] = weight_table(b, name, dt, ax[k].w, ax[k].len * ax[k].taps);
    }
    if (ax[k].any_ext) {
      snprintf(name, sizeof name, "ext%d", k);
      ext[k] = moss_k_table(b, name, MOSS_DT_BOOL, ax[k].len, ax[k].ext);
    }
  }
  if (planes > 1) pl = moss_k_range(b, "b", planes, MOSS_KL_PARALLEL), loops++;
  for (k = lead; k < p.rank; k++) {
    snprintf(name, sizeof name, "i%d", k);
    if (p.out[k] == 1) {
      idx[k] = moss_k_idx(b, 0);
      continue;
    }
    idx[k] = moss_k_range(b, name, p.out[k], MOSS_KL_PARALLEL);
    loops++;
  }
  o = moss_k_flat_index(b, p.rank - lead, p.out + lead, idx + lead);
  if (pl) o = moss_k_add(b, moss_k_mulc(b, pl, outblock), o);
  if (any_ext) {
    moss_kx *out = NULL;
    double ev = moss_attr_float(n, "extrapolation_value", 0);
    for (k = lead; k < p.rank; k++)
      if (ext[k] >= 0) {
        moss_kx *e = moss_k_load(b, ext[k], idx[k]);
        out = out ? bin(b, MOSS_KX_LOR, out, e) : e;
      }
    moss_k_if(b, out);
    moss_k_store(b, yb, o,
                 moss_dtype_is_float(dt) ? moss_k_flt(b, dt, ev)
                                         : moss_k_int(b, dt, isfinite(ev) ? (int64_t)ev : 0));
    moss_k_else(b);
  }
  /* The source offset of the one-tap axes, then taps over the others. */
  src = pl ? moss_k_mulc(b, pl, inblock) : moss_k_idx(b, 0);
  for (k = lead; k < p.rank; k++) {
    if (ax[k].taps != 1) continue;
    if (ax[k].identity)
      src = moss_k_add(b, src, moss_k_mulc(b, idx[k], stride[k]));
    else if (offt[k] < 0)
      src = moss_k_addc(b, src, ax[k].off[0]); /* one output: known */
    else
      src = moss_k_add(b, src, moss_k_cast(b, MOSS_DT_I64, moss_k_load(b, offt[k], idx[k])));
  }
  if (!weighted) {
    moss_k_store(b, yb, o, moss_k_load(b, xb, src));
  } else {
    moss_kx *acc, *w = NULL, *at;
    int depth = 0;
    if (src->op != MOSS_KX_CONST) src = moss_k_let(b, "xs", src);
    acc = moss_k_let(b, "acc", moss_k_flt(b, dt, 0));
    at = src;
    for (k = lead; k < p.rank; k++) {
      moss_kx *ti, *e;
      if (ax[k].taps == 1) continue;
      snprintf(name, sizeof name, "t%d", k);
      tv[k] = moss_k_range(b, name, ax[k].taps, MOSS_KL_REDUCE);
      depth++;
      ti = moss_k_add(b, moss_k_mulc(b, idx[k], ax[k].taps), tv[k]);
      at = moss_k_add(b, at, moss_k_cast(b, MOSS_DT_I64, moss_k_load(b, offt[k], ti)));
      e = moss_k_load(b, wt[k], ti);
      w = w ? times(b, w, e) : e;
    }
    moss_k_set(b, acc, plus(b, acc, times(b, w, moss_k_load(b, xb, at))));
    while (depth--) moss_k_end(b);
    moss_k_store(b, yb, o, acc);
  }
  if (any_ext) moss_k_end(b);
  while (loops--) moss_k_end(b);
  return b->st;
}
