/* emit_resize.c - C for Resize and Upsample. Every axis gets, at compile
 * time, a table of source offsets (premultiplied by the input stride) and,
 * for linear and cubic modes, of tap weights, both baked into static const
 * arrays; the generated loops walk the output in order and sum the taps,
 * so the run time does no coordinate arithmetic. Leading axes that are not
 * resized (usually N and C) become one outer loop over planes. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../compiler/ops/ops.h"
#include "cgen.h"

/* One axis's sampling table: |taps| source offsets and weights per output. */
typedef struct rs_axis {
  int taps;
  int64_t len;        /* output length */
  long *off;          /* len * taps, in elements of the input block */
  double *w;          /* len * taps */
  unsigned char *ext; /* len: 1 = outside the roi (tf_crop_and_resize) */
  int any_ext, identity;
} rs_axis;

static double coord(const char *ctm, double o, int64_t L, int64_t O, double s, double rs, double re) {
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

/* Fills |a| for axis |k| of |p|; |kind| 0 nearest, 1 linear, 2 cubic. */
static moss_status build_axis(moss_ctx *ctx, const moss_node *n, const moss_resize *p, int k,
                              int kind, const char *ctm, const char *nm, long stride,
                              rs_axis *a) {
  int64_t L = p->in[k], O = p->out[k], o;
  int T = kind == 0 ? 1 : kind == 1 ? 2 : 4, t;
  double A = moss_attr_float(n, "cubic_coeff_a", -0.75f);
  int excl = (int)moss_attr_int(n, "exclude_outside", 0);
  int crop = !strcmp(ctm, "tf_crop_and_resize");
  memset(a, 0, sizeof *a);
  a->taps = T;
  a->len = O;
  a->off = moss_alloc(ctx, sizeof(long) * (size_t)(O * T + 1));
  a->w = moss_alloc(ctx, sizeof(double) * (size_t)(O * T + 1));
  a->ext = moss_alloc(ctx, (size_t)O + 1);
  if (!a->off || !a->w || !a->ext) return moss_fail(ctx, MOSS_E_NOMEM, n, "resize tables");
  for (o = 0; o < O; o++) {
    double x = coord(ctm, (double)o, L, O, p->scale[k], p->roi_s[k], p->roi_e[k]), r, c[4];
    int64_t base;
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
        if (!strcmp(nm, "round_prefer_ceil")) up = r >= 0.5;
        else if (!strcmp(nm, "floor")) up = 0;
        else if (!strcmp(nm, "ceil")) up = 1;
        else up = r > 0.5;
      }
      a->off[o] = (long)clampi(base + up, L) * stride;
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
      a->off[o * T + t] = (long)clampi(base + t, L) * stride;
      a->w[o * T + t] = c[t];
    }
  }
  /* An axis that samples each input element exactly once, in order. */
  a->identity = O == L && !a->any_ext;
  for (o = 0; o < O && a->identity; o++) {
    double on = 0, off = 0;
    for (t = 0; t < T; t++) {
      if (a->off[o * T + t] == (long)o * stride) on += a->w[o * T + t];
      else off += fabs(a->w[o * T + t]);
    }
    if (on != 1 || off != 0) a->identity = 0;
  }
  if (a->identity) {
    a->taps = 1;
    for (o = 0; o < O; o++) a->off[o] = (long)o * stride, a->w[o] = 1;
  }
  return MOSS_OK;
}

static void free_axis(moss_ctx *ctx, rs_axis *a) {
  if (a->off) moss_free(ctx, a->off, sizeof(long) * (size_t)(a->len * (a->taps > 1 ? a->taps : 4) + 1));
  if (a->w) moss_free(ctx, a->w, sizeof(double) * (size_t)(a->len * (a->taps > 1 ? a->taps : 4) + 1));
  if (a->ext) moss_free(ctx, a->ext, (size_t)a->len + 1);
}

/* Writes a static const table at file scope. */
static void table_long(moss_cgen *cg, const char *name, const long *v, int64_t cnt) {
  int64_t i;
  moss_buf_printf(cg->decls, "static const long %s[%lld] = {", name, (long long)cnt);
  for (i = 0; i < cnt; i++)
    moss_buf_printf(cg->decls, "%s%ld%s", i % 16 ? " " : "\n  ", v[i], i + 1 < cnt ? "," : "");
  moss_buf_printf(cg->decls, "\n};\n");
}

static void table_f(moss_cgen *cg, const char *name, moss_dtype dt, const double *v, int64_t cnt) {
  int64_t i;
  char lit[64];
  moss_buf_printf(cg->decls, "static const %s %s[%lld] = {", moss_dtype_ctype(dt), name, (long long)cnt);
  for (i = 0; i < cnt; i++)
    moss_buf_printf(cg->decls, "%s%s%s", i % 6 ? " " : "\n  ", moss_c_lit_f64(dt, v[i], lit, sizeof lit),
                    i + 1 < cnt ? "," : "");
  moss_buf_printf(cg->decls, "\n};\n");
}

static void table_u8(moss_cgen *cg, const char *name, const unsigned char *v, int64_t cnt) {
  int64_t i;
  moss_buf_printf(cg->decls, "static const unsigned char %s[%lld] = {", name, (long long)cnt);
  for (i = 0; i < cnt; i++)
    moss_buf_printf(cg->decls, "%s%d%s", i % 32 ? " " : "\n  ", v[i], i + 1 < cnt ? "," : "");
  moss_buf_printf(cg->decls, "\n};\n");
}

/* GridSample, PyTorch's grid_sample semantics: the grid is read at run
 * time, so per-node helper functions (named with a unique id) unnormalize
 * and pad each coordinate; taps outside the input read weight 0. */
static moss_status emit_gridsample(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  const char *ct = moss_dtype_ctype(x->dtype);
  const char *mode = moss_attr_string(n, "mode", "bilinear");
  const char *pad = moss_attr_string(n, "padding_mode", "zeros");
  int align = (int)moss_attr_int(n, "align_corners", 0);
  int kind = !strcmp(mode, "nearest") ? 0 : (!strcmp(mode, "bicubic") || !strcmp(mode, "cubic")) ? 2 : 1;
  int padk = !strcmp(pad, "border") ? 1 : !strcmp(pad, "reflection") ? 2 : 0;
  int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
  int64_t HoWo = y->dims[2] * y->dims[3];
  int T = kind == 0 ? 1 : kind == 1 ? 4 : 16;
  char f[96];
  moss_buf *d = cg->decls;
  if (moss_value_numel(y) <= 0) return MOSS_OK;
  if (H <= 0 || W <= 0) return moss_fail(cg->ctx, MOSS_E_INVALID_MODEL, n, "empty input plane");
  snprintf(f, sizeof f, "%s_gs%d", cg->prefix, cg->uid++);
  /* Helpers at file scope. */
  moss_buf_printf(d, "static double %s_un(double g, double size) {\n", f);
  if (align) moss_buf_printf(d, "  double r = (g + 1) / 2 * (size - 1);\n");
  else moss_buf_printf(d, "  double r = ((g + 1) * size - 1) / 2;\n");
  moss_buf_printf(d, "  return r > -1e6 && r < 1e6 ? r : (r >= 1e6 ? 1e6 : -1e6);\n}\n");
  moss_buf_printf(d, "static double %s_pad(double v, double size) {\n", f);
  if (padk == 2) {
    moss_buf_printf(d, "  const double lo2 = %s, hi2 = %s;\n", align ? "0" : "-1",
                    align ? "2 * (size - 1)" : "2 * size - 1");
    moss_buf_printf(d, "  if (lo2 != hi2) {\n    const double mn = lo2 / 2, span = (hi2 - lo2) / 2;\n"
                       "    const double a = fabs(v - mn), ex = fmod(a, span), fl = floor(a / span);\n"
                       "    v = fmod(fl, 2.0) == 0 ? ex + mn : span - ex + mn;\n  } else {\n"
                       "    v = 0;\n  }\n");
  }
  if (padk) moss_buf_printf(d, "  return v < 0 ? 0 : (v > size - 1 ? size - 1 : v);\n}\n");
  else moss_buf_printf(d, "  (void)size;\n  return v;\n}\n");
  moss_buf_printf(d, "static void %s_tap(double xd, double yd, double w, long *off, double *wt) {\n"
                     "  if (xd >= 0 && xd < %lld && yd >= 0 && yd < %lld) {\n"
                     "    *off = (long)yd * %lld + (long)xd;\n    *wt = w;\n"
                     "  } else {\n    *off = 0;\n    *wt = 0;\n  }\n}\n",
                  f, (long long)W, (long long)H, (long long)W);
  if (kind == 2)
    moss_buf_printf(d, "static void %s_cub(double t, double *c) {\n  const double A = -0.75;\n"
                       "  c[0] = ((A * (t + 1) - 5 * A) * (t + 1) + 8 * A) * (t + 1) - 4 * A;\n"
                       "  c[1] = ((A + 2) * t - (A + 3)) * t * t + 1;\n"
                       "  c[2] = ((A + 2) * (1 - t) - (A + 3)) * (1 - t) * (1 - t) + 1;\n"
                       "  c[3] = ((A * (2 - t) - 5 * A) * (2 - t) + 8 * A) * (2 - t) - 4 * A;\n}\n", f);
  moss_buf_printf(d, "\n");
  moss_c_open(cg, "for (long nn = 0; nn < %lld; nn++)", (long long)N);
  moss_c_open(cg, "for (long p = 0; p < %lld; p++)", (long long)HoWo);
  moss_c_line(cg, "const %s *gp = x1 + (nn * %lld + p) * 2;", moss_dtype_ctype(n->inputs[1]->dtype),
              (long long)HoWo);
  moss_c_line(cg, "double ix = %s_un(gp[0], %lld.0), iy = %s_un(gp[1], %lld.0);", f, (long long)W, f,
              (long long)H);
  moss_c_line(cg, "long off[%d];", T);
  moss_c_line(cg, "double wt[%d];", T);
  if (kind == 0) {
    moss_c_line(cg, "ix = %s_pad(ix, %lld.0);", f, (long long)W);
    moss_c_line(cg, "iy = %s_pad(iy, %lld.0);", f, (long long)H);
    moss_c_line(cg, "%s_tap(nearbyint(ix), nearbyint(iy), 1.0, off, wt);", f);
  } else if (kind == 1) {
    moss_c_line(cg, "ix = %s_pad(ix, %lld.0);", f, (long long)W);
    moss_c_line(cg, "iy = %s_pad(iy, %lld.0);", f, (long long)H);
    moss_c_line(cg, "const double fx = floor(ix), fy = floor(iy), tx = ix - fx, ty = iy - fy;");
    moss_c_line(cg, "%s_tap(fx, fy, (1 - tx) * (1 - ty), off + 0, wt + 0);", f);
    moss_c_line(cg, "%s_tap(fx + 1, fy, tx * (1 - ty), off + 1, wt + 1);", f);
    moss_c_line(cg, "%s_tap(fx, fy + 1, (1 - tx) * ty, off + 2, wt + 2);", f);
    moss_c_line(cg, "%s_tap(fx + 1, fy + 1, tx * ty, off + 3, wt + 3);", f);
  } else {
    moss_c_line(cg, "const double fx = floor(ix), fy = floor(iy);");
    moss_c_line(cg, "double cx[4], cy[4];");
    moss_c_line(cg, "%s_cub(ix - fx, cx);", f);
    moss_c_line(cg, "%s_cub(iy - fy, cy);", f);
    moss_c_open(cg, "for (int j = 0; j < 4; j++)");
    moss_c_open(cg, "for (int i = 0; i < 4; i++)");
    moss_c_line(cg, "%s_tap(%s_pad(fx - 1 + i, %lld.0), %s_pad(fy - 1 + j, %lld.0), cx[i] * cy[j], "
                    "off + j * 4 + i, wt + j * 4 + i);", f, f, (long long)W, f, (long long)H);
    moss_c_close(cg);
    moss_c_close(cg);
  }
  moss_c_open(cg, "for (long c = 0; c < %lld; c++)", (long long)C);
  moss_c_line(cg, "const %s *xc = x0 + (nn * %lld + c) * %lld;", ct, (long long)C, (long long)(H * W));
  moss_c_line(cg, "double acc = 0;");
  moss_c_line(cg, "for (int t = 0; t < %d; t++) acc += wt[t] * xc[off[t]];", T);
  moss_c_line(cg, "y0[(nn * %lld + c) * %lld + p] = (%s)acc;", (long long)C, (long long)HoWo, ct);
  moss_c_close(cg);
  moss_c_close(cg);
  moss_c_close(cg);
  return MOSS_OK;
}

moss_status moss_c_emit_resize(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  moss_dtype dt = x->dtype;
  const char *ct = moss_dtype_ctype(dt);
  int old = n->op == MOSS_OP_Upsample || cg->g->opset < 11;
  const char *mode = moss_attr_string(n, "mode", "nearest");
  const char *ctm = old ? "asymmetric" : moss_attr_string(n, "coordinate_transformation_mode", "half_pixel");
  const char *nm = old ? "floor" : moss_attr_string(n, "nearest_mode", "round_prefer_floor");
  int kind = !strcmp(mode, "nearest") ? 0 : !strcmp(mode, "cubic") ? 2 : 1;
  moss_resize p;
  rs_axis ax[MOSS_MAX_RANK];
  long stride[MOSS_MAX_RANK];
  int64_t planes = 1, inblock = 1, outblock = 1;
  int k, lead, uid = cg->uid++, any_ext = 0, weighted = 0;
  char name[96], e[1024], lit[64];
  moss_status st = MOSS_OK;
  if (n->op == MOSS_OP_GridSample) return emit_gridsample(cg, n);
  if (!ct) return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "type %s", moss_dtype_name(dt));
  MOSS_TRY(moss_resize_compute(cg->ctx, n, cg->g->opset, &p));
  if (moss_value_numel(y) <= 0) return MOSS_OK;
  for (k = 0; k < p.rank; k++)
    if (p.in[k] <= 0)
      return moss_fail(cg->ctx, MOSS_E_INVALID_MODEL, n, "cannot resize an empty axis to %lld",
                       (long long)p.out[k]);
  memset(ax, 0, sizeof ax);
  for (k = p.rank - 1; k >= 0; k--) {
    stride[k] = (long)inblock;
    inblock *= p.in[k];
  }
  for (k = 0; k < p.rank && st == MOSS_OK; k++)
    st = build_axis(cg->ctx, n, &p, k, kind, ctm, nm, stride[k], &ax[k]);
  if (st != MOSS_OK) goto done;
  for (lead = 0; lead < p.rank && ax[lead].identity; lead++) planes *= p.in[lead];
  if (lead == p.rank) {
    moss_c_line(cg, "memcpy(y0, x0, %zu);", moss_value_nbytes(y));
    goto done;
  }
  inblock = outblock = 1;
  for (k = lead; k < p.rank; k++) {
    inblock *= p.in[k];
    outblock *= p.out[k];
    any_ext |= ax[k].any_ext;
    if (ax[k].taps > 1) weighted = 1;
  }
  /* Tables (offsets are relative to one plane). */
  for (k = lead; k < p.rank; k++) {
    snprintf(name, sizeof name, "%s_rs%d_i%d", cg->prefix, uid, k);
    table_long(cg, name, ax[k].off, ax[k].len * ax[k].taps);
    if (ax[k].taps > 1) {
      snprintf(name, sizeof name, "%s_rs%d_w%d", cg->prefix, uid, k);
      table_f(cg, name, dt, ax[k].w, ax[k].len * ax[k].taps);
    }
    if (ax[k].any_ext) {
      snprintf(name, sizeof name, "%s_rs%d_e%d", cg->prefix, uid, k);
      table_u8(cg, name, ax[k].ext, ax[k].len);
    }
  }
  moss_buf_printf(cg->decls, "\n");
  moss_c_line(cg, "%s *yp = y0;", ct);
  if (planes > 1) {
    moss_c_open(cg, "for (long b = 0; b < %lld; b++)", (long long)planes);
    moss_c_line(cg, "const %s *xb = x0 + b * %lld;", ct, (long long)inblock);
  } else {
    moss_c_line(cg, "const %s *xb = x0;", ct);
  }
  for (k = lead; k < p.rank; k++)
    moss_c_open(cg, "for (long i%d = 0; i%d < %lld; i%d++)", k, k, (long long)p.out[k], k);
  if (any_ext) {
    size_t len = 0;
    e[0] = 0;
    for (k = lead; k < p.rank; k++)
      if (ax[k].any_ext)
        len += (size_t)snprintf(e + len, sizeof e - len, "%s%s_rs%d_e%d[i%d]", len ? " | " : "",
                                cg->prefix, uid, k, k);
    moss_c_open(cg, "if (%s)", e);
    moss_c_line(cg, "*yp++ = %s;", moss_c_lit_f64(dt, moss_attr_float(n, "extrapolation_value", 0), lit, sizeof lit));
    moss_c_line(cg, "continue;");
    moss_c_close(cg);
  }
  {
    /* The offset of the one-tap axes, then nested loops over the others. */
    size_t len = 0;
    int depth = 0;
    char wexpr[512];
    size_t wl = 0;
    e[0] = 0;
    wexpr[0] = 0;
    for (k = lead; k < p.rank; k++)
      if (ax[k].taps == 1)
        len += (size_t)snprintf(e + len, sizeof e - len, "%s%s_rs%d_i%d[i%d]", len ? " + " : "",
                                cg->prefix, uid, k, k);
    if (!weighted) {
      moss_c_line(cg, "*yp++ = xb[%s];", len ? e : "0");
    } else {
      moss_c_line(cg, "const %s *xs = xb%s%s;", ct, len ? " + " : "", len ? e : "");
      moss_c_line(cg, "%s acc = 0;", ct);
      len = 0;
      e[0] = 0;
      for (k = lead; k < p.rank; k++) {
        if (ax[k].taps == 1) continue;
        moss_c_open(cg, "for (int t%d = 0; t%d < %d; t%d++)", k, k, ax[k].taps, k);
        depth++;
        len += (size_t)snprintf(e + len, sizeof e - len, " + %s_rs%d_i%d[i%d * %d + t%d]", cg->prefix,
                                uid, k, k, ax[k].taps, k);
        wl += (size_t)snprintf(wexpr + wl, sizeof wexpr - wl, "%s%s_rs%d_w%d[i%d * %d + t%d]",
                               wl ? " * " : "", cg->prefix, uid, k, k, ax[k].taps, k);
      }
      moss_c_line(cg, "acc += %s * xs[0%s];", wexpr, e);
      while (depth--) moss_c_close(cg);
      moss_c_line(cg, "*yp++ = acc;");
    }
  }
  for (k = lead; k < p.rank; k++) moss_c_close(cg);
  if (planes > 1) moss_c_close(cg);
  (void)outblock;
done:
  for (k = 0; k < p.rank; k++) free_axis(cg->ctx, &ax[k]);
  return st;
}
