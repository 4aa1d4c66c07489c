/* resize.c - Resize (opsets 10 to 19) and the deprecated Upsample: nearest,
 * N-d linear and cubic interpolation with every coordinate transformation
 * mode. The output shape comes from constant scales or sizes; tf_crop_and_
 * resize also needs a constant roi. The lowering bakes the per-axis source
 * indices and weights into tables (kernel/lower_resize.c), from the sizes
 * and scales moss_resize_compute() gives both. Not evaluated at compile
 * time: resizing never feeds shape computations. GridSample (4-D) lives
 * here too: it samples at positions read from its grid input at run time. */
#include <math.h>
#include <string.h>

#include "ops.h"

/* An output size computed in floating point, as an int64_t: 0 when it is
 * not a number or too large (2^62 or more; converting it would be
 * undefined behaviour). */
static int size_from_double(double d, int64_t *out) {
  if (!(d >= 0 && d < 4611686018427387904.0)) return 0;
  *out = (int64_t)d;
  return 1;
}

/* Input |i| as a constant with data, or NULL when absent or empty. */
static const moss_value *const_input(const moss_node *n, int i) {
  const moss_value *v = moss_node_input(n, i);
  return v && moss_value_numel(v) > 0 ? v : NULL;
}

moss_status moss_resize_compute(moss_ctx *ctx, const moss_node *n, int64_t opset,
                                moss_resize *out_p) {
  moss_resize *p = out_p;
  const moss_value *x = n->inputs[0], *sc = NULL, *sz = NULL, *roi = NULL;
  const int64_t *axp = NULL;
  int axes[MOSS_MAX_RANK], naxes, k;
  const char *ctm = moss_attr_string(n, "coordinate_transformation_mode", "half_pixel");
  p->rank = x->rank;
  for (k = 0; k < x->rank; k++) {
    p->in[k] = p->out[k] = x->dims[k];
    p->scale[k] = 1.0;
    p->roi_s[k] = 0.0;
    p->roi_e[k] = 1.0;
  }
  naxes = n->op == MOSS_OP_Resize ? moss_attr_ints(n, "axes", &axp) : 0;
  if (naxes > x->rank) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "too many axes");
  if (!axp) naxes = x->rank;
  for (k = 0; k < naxes; k++) {
    int a = k;
    if (axp) MOSS_TRY(moss_norm_axis(ctx, n, axp[k], x->rank, &a));
    axes[k] = a;
  }
  if (n->op == MOSS_OP_Upsample) {
    if (moss_node_input(n, 1)) {
      MOSS_TRY(moss_need_constant(ctx, n, 1, "scales"));
      sc = n->inputs[1];
    } else {
      const float *f;
      int cnt = moss_attr_floats(n, "scales", &f);
      if (cnt != x->rank)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "Upsample needs %d scales", x->rank);
      for (k = 0; k < cnt; k++) {
        if (!(f[k] > 0)) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "scale must be positive");
        p->scale[k] = f[k];
        if (!size_from_double(floor((double)f[k] * (double)p->in[k]), &p->out[k]))
          return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "scale %g makes axis %d too large",
                           (double)f[k], k);
      }
      return MOSS_OK;
    }
  } else if (opset < 11) {
    MOSS_TRY(moss_need_constant(ctx, n, 1, "scales"));
    sc = const_input(n, 1);
  } else {
    if (moss_node_input(n, 2) && !moss_node_input(n, 2)->data && moss_value_numel(moss_node_input(n, 2)))
      MOSS_TRY(moss_need_constant(ctx, n, 2, "scales"));
    sc = const_input(n, 2);
    if (!sc && moss_node_input(n, 3)) {
      MOSS_TRY(moss_need_constant(ctx, n, 3, "sizes"));
      sz = const_input(n, 3);
    }
    if (!strcmp(ctm, "tf_crop_and_resize") && moss_node_input(n, 1)) {
      const moss_value *r = moss_node_input(n, 1);
      if (!r->data) {
        if (r->input_index >= 0)
          return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                           "input '%s' (roi) decides the sampling positions; fix it at compile "
                           "time with --constant %s=FILE", r->name, r->name);
        return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "roi is computed at run time");
      }
      roi = r;
    }
  }
  if (sc) {
    if (moss_value_numel(sc) != naxes || !moss_dtype_is_float(sc->dtype))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "scales must hold %d floats", naxes);
    for (k = 0; k < naxes; k++) {
      double s = moss_value_get_f64(sc, k);
      if (!(s > 0) || !isfinite(s)) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "scale must be positive");
      p->scale[axes[k]] = s;
      if (!size_from_double(floor(s * (double)p->in[axes[k]]), &p->out[axes[k]]))
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "scale %g makes axis %d too large", s,
                         axes[k]);
    }
  } else if (sz) {
    const char *pol = moss_attr_string(n, "keep_aspect_ratio_policy", "stretch");
    double common = 0;
    if (moss_value_numel(sz) != naxes || sz->dtype != MOSS_DT_I64)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "sizes must hold %d int64", naxes);
    for (k = 0; k < naxes; k++) {
      int64_t o = moss_value_get_i64(sz, k);
      double s;
      if (o < 0 || p->in[axes[k]] <= 0) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "bad size");
      s = (double)o / (double)p->in[axes[k]];
      if (k == 0 || (!strcmp(pol, "not_larger") && s < common) || (!strcmp(pol, "not_smaller") && s > common))
        common = s;
      p->out[axes[k]] = o;
      p->scale[axes[k]] = s;
    }
    if (strcmp(pol, "stretch")) {
      if (strcmp(pol, "not_larger") && strcmp(pol, "not_smaller"))
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "keep_aspect_ratio_policy '%s'", pol);
      for (k = 0; k < naxes; k++) {
        p->scale[axes[k]] = common;
        if (!size_from_double(nearbyint(common * (double)p->in[axes[k]]), &p->out[axes[k]]))
          return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "sizes make axis %d too large",
                           axes[k]);
      }
    }
  } else {
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "Resize needs scales or sizes");
  }
  for (k = 0; k < x->rank; k++)
    if (!(p->scale[k] > 0)) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "scale must be positive");
  if (roi) {
    int full = moss_value_numel(roi) == 2 * x->rank;
    if (!moss_dtype_is_float(roi->dtype) || (moss_value_numel(roi) != 2 * naxes && !full))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "roi must hold %d floats", 2 * naxes);
    for (k = 0; k < (full ? x->rank : naxes); k++) {
      int a = full ? k : axes[k], cnt = full ? x->rank : naxes;
      p->roi_s[a] = moss_value_get_f64(roi, k);
      p->roi_e[a] = moss_value_get_f64(roi, k + cnt);
    }
  }
  return MOSS_OK;
}

/* GridSample (opset 16 form, 4-D): X [N,C,H,W], grid [N,Ho,Wo,2]. */
static moss_status infer_gridsample(moss_ctx *ctx, moss_node *n) {
  moss_value *x = n->inputs[0], *gr = n->inputs[1];
  const char *mode = moss_attr_string(n, "mode", "bilinear");
  const char *pad = moss_attr_string(n, "padding_mode", "zeros");
  int64_t d[4];
  MOSS_TRY(moss_need_input(ctx, n, 1));
  if (x->dtype != MOSS_DT_F32 && x->dtype != MOSS_DT_F64)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "input type %s (float types only)", moss_dtype_name(x->dtype));
  if (gr->dtype != MOSS_DT_F32 && gr->dtype != MOSS_DT_F64)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "grid type %s", moss_dtype_name(gr->dtype));
  if (x->rank != 4)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "GridSample of rank %d (4-D only)", x->rank);
  if (gr->rank != 4 || gr->dims[0] != x->dims[0] || gr->dims[3] != 2)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "grid must be [N, H_out, W_out, 2]");
  if (strcmp(mode, "bilinear") && strcmp(mode, "linear") && strcmp(mode, "nearest") &&
      strcmp(mode, "bicubic") && strcmp(mode, "cubic"))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "unknown mode '%s'", mode);
  if (strcmp(pad, "zeros") && strcmp(pad, "border") && strcmp(pad, "reflection"))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "unknown padding_mode '%s'", pad);
  d[0] = x->dims[0];
  d[1] = x->dims[1];
  d[2] = gr->dims[1];
  d[3] = gr->dims[2];
  moss_set_output(n, 0, x->dtype, 4, d);
  return MOSS_OK;
}

moss_status moss_infer_resize(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *x = n->inputs[0];
  const char *mode = moss_attr_string(n, "mode", "nearest");
  const char *ctm = moss_attr_string(n, "coordinate_transformation_mode", "half_pixel");
  const char *nm = moss_attr_string(n, "nearest_mode", "round_prefer_floor");
  moss_resize p;
  int lin;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  if (n->op == MOSS_OP_GridSample) return infer_gridsample(ctx, n);
  if (!moss_dtype_ctype(x->dtype))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "input type %s", moss_dtype_name(x->dtype));
  lin = !strcmp(mode, "linear") || !strcmp(mode, "bilinear") || !strcmp(mode, "trilinear");
  if (!lin && strcmp(mode, "nearest") && !(n->op == MOSS_OP_Resize && !strcmp(mode, "cubic")))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "unknown mode '%s'", mode);
  if (strcmp(mode, "nearest") && !moss_dtype_is_float(x->dtype))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "%s interpolation of %s (float types only)", mode,
                     moss_dtype_name(x->dtype));
  if (n->op == MOSS_OP_Resize && g->opset >= 11) {
    static const char *const ctms[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                                       "align_corners", "asymmetric", "tf_half_pixel_for_nn",
                                       "tf_crop_and_resize"};
    static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    size_t i;
    int ok = 0;
    for (i = 0; i < sizeof ctms / sizeof ctms[0]; i++) ok |= !strcmp(ctm, ctms[i]);
    if (!ok) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "unknown coordinate_transformation_mode '%s'", ctm);
    ok = 0;
    for (i = 0; i < sizeof nms / sizeof nms[0]; i++) ok |= !strcmp(nm, nms[i]);
    if (!ok) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "unknown nearest_mode '%s'", nm);
    if (moss_attr_int(n, "antialias", 0) && strcmp(mode, "nearest"))
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "antialiased resizing is not supported");
  }
  MOSS_TRY(moss_resize_compute(ctx, n, g->opset, &p));
  moss_set_output(n, 0, x->dtype, p.rank, p.out);
  if (moss_value_numel(n->outputs[0]) < 0)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "output too large");
  return MOSS_OK;
}

moss_status moss_eval_resize(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED;
}
