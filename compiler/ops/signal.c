/* signal.c - the signal operators of opset 17: DFT, STFT and
 * MelWeightMatrix. DFT and STFT read a real ([..., 1]) or complex
 * ([..., 2]) signal and give complex bins ([..., 2], real then imaginary
 * part); the lengths that decide their shapes (dft_length, frame_step,
 * frame_length; DFT-20's axis) must be constants. Both are direct sums in
 * double of the terms in index order, here for constant folding and in
 * kernel/lower_signal.c for the run, with the same twiddle factors
 * (moss_signal_twiddle). MelWeightMatrix depends on nothing but its five
 * scalars, which must all be constants: the matrix is computed here
 * (moss_mel_compute), by folding or into its lowering's table. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops.h"

#define PI_ 3.14159265358979323846

/* The longest transform: the kernels step through the twiddle factors in
 * 64-bit integers well inside this, and a direct sum past it is useless. */
#define MAX_LEN ((int64_t)1 << 31)
/* The most elements of a MelWeightMatrix (computed at compile time). */
#define MAX_MEL ((int64_t)1 << 28)

void moss_signal_twiddle(int64_t n, int64_t m, double *out_cos, double *out_sin) {
  double a = 2.0 * PI_ * (double)m / (double)n;
  *out_cos = cos(a);
  *out_sin = sin(a);
}

/* The 0/1 attribute |name| (default |def|). */
static moss_status flag(moss_ctx *ctx, const moss_node *n, const char *name, int def, int *out) {
  int64_t v = moss_attr_int(n, name, def);
  *out = 0;
  if (v != 0 && v != 1)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "attribute '%s' is %lld; it takes 0 or 1", name,
                     (long long)v);
  *out = (int)v;
  return MOSS_OK;
}

/* The signal input |x|: float, rank |rank| (at least 2 when 0), its last
 * dimension 1 (real) or 2 (complex). */
static moss_status check_signal(moss_ctx *ctx, const moss_node *n, const moss_value *x, int rank) {
  if (x->dtype != MOSS_DT_F32 && x->dtype != MOSS_DT_F64)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the signal is %s; %s takes float tensors",
                     moss_dtype_name(x->dtype), n->op_type);
  if (rank ? x->rank != rank : x->rank < 2)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "the signal has rank %d; %s takes %s ending in a dimension of 1 (real) "
                     "or 2 (complex)",
                     x->rank, n->op_type, rank ? "[batch, length, 1 or 2]" : "a rank of 2 or more");
  if (x->dims[x->rank - 1] != 1 && x->dims[x->rank - 1] != 2)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "the signal's last dimension is %lld; it must be 1 (real) or 2 (complex)",
                     (long long)x->dims[x->rank - 1]);
  return MOSS_OK;
}

/* The integer scalar input |i| (|what|), which must be a constant: in
 * *|out|; *|out_bad| keeps the first failure, so that every run-time input
 * is named at once (one retry with --constant can then fix them all). */
static void int_scalar(moss_ctx *ctx, const moss_node *n, int i, const char *what, int64_t *out,
                       moss_status *out_bad) {
  const moss_value *v = moss_node_input(n, i);
  moss_status st = MOSS_OK;
  *out = 0;
  if (!v->data)
    st = moss_need_constant(ctx, n, i, what);
  else if ((v->dtype != MOSS_DT_I32 && v->dtype != MOSS_DT_I64) || moss_value_numel(v) != 1)
    st = moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%s must be one int32 or int64", what);
  else
    *out = moss_value_get_i64(v, 0);
  if (st != MOSS_OK && *out_bad == MOSS_OK) *out_bad = st;
}

static moss_status compute_dft(moss_ctx *ctx, const moss_node *n, moss_signal *s) {
  const moss_value *x = n->inputs[0];
  moss_status bad = MOSS_OK;
  int64_t axis = moss_attr_int(n, "axis", 1);
  int k;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  MOSS_TRY(check_signal(ctx, n, x, 0));
  if (n->opset >= 20) { /* DFT-20: the axis is an input, -2 by default */
    axis = -2;
    if (moss_node_input(n, 2)) int_scalar(ctx, n, 2, "axis", &axis, &bad);
  }
  if (moss_node_input(n, 1)) int_scalar(ctx, n, 1, "dft_length", &s->n, &bad);
  if (bad != MOSS_OK) return bad;
  if (axis < 0) axis += x->rank;
  if (axis < 0 || axis > x->rank - 2)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "axis %lld is not one of the signal's dimensions (0 to %d; the last one "
                     "holds the real and imaginary parts)",
                     (long long)(axis < 0 ? axis - x->rank : axis), x->rank - 2);
  s->axis = (int)axis;
  s->len = x->dims[axis];
  if (!moss_node_input(n, 1)) s->n = s->len;
  if (s->n <= 0)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "a DFT of length %lld", (long long)s->n);
  s->outer = s->inner = 1;
  for (k = 0; k < axis; k++) s->outer *= x->dims[k];
  for (k = (int)axis + 1; k < x->rank - 1; k++) s->inner *= x->dims[k];
  MOSS_TRY(flag(ctx, n, "inverse", 0, &s->inverse));
  MOSS_TRY(flag(ctx, n, "onesided", 0, &s->onesided));
  return MOSS_OK;
}

static moss_status compute_stft(moss_ctx *ctx, const moss_node *n, moss_signal *s) {
  const moss_value *x = n->inputs[0], *w = moss_node_input(n, 2);
  moss_status bad = MOSS_OK;
  int64_t frame = 0;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  MOSS_TRY(moss_need_input(ctx, n, 1));
  MOSS_TRY(check_signal(ctx, n, x, 3));
  int_scalar(ctx, n, 1, "frame_step", &s->step, &bad);
  if (moss_node_input(n, 3)) int_scalar(ctx, n, 3, "frame_length", &frame, &bad);
  if (bad != MOSS_OK) return bad;
  if (w) {
    MOSS_TRY(moss_need_input(ctx, n, 2));
    if (w->rank != 1 || w->dtype != x->dtype)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                       "the window must be a 1-D tensor of the signal's type (%s)",
                       moss_dtype_name(x->dtype));
    s->window = 1;
  }
  if (s->step <= 0)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "frame_step is %lld; it must be positive",
                     (long long)s->step);
  s->outer = x->dims[0];
  s->len = x->dims[1];
  s->inner = 1;
  /* The reference's defaults: the window's length, else the whole signal. */
  s->n = moss_node_input(n, 3) ? frame : w ? w->dims[0] : s->len;
  if (s->n <= 0)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "frame_length is %lld; it must be positive",
                     (long long)s->n);
  if (s->len < s->n)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "the signal's %lld samples do not fill one frame of %lld", (long long)s->len,
                     (long long)s->n);
  s->frames = 1 + (s->len - s->n) / s->step;
  MOSS_TRY(flag(ctx, n, "onesided", 1, &s->onesided));
  return MOSS_OK;
}

moss_status moss_signal_compute(moss_ctx *ctx, const moss_node *n, moss_signal *out_s) {
  moss_signal *s = out_s;
  memset(s, 0, sizeof *s);
  if (n->op == MOSS_OP_DFT)
    MOSS_TRY(compute_dft(ctx, n, s));
  else if (n->op == MOSS_OP_STFT)
    MOSS_TRY(compute_stft(ctx, n, s));
  else
    return moss_fail(ctx, MOSS_E_INTERNAL, n, "not a DFT or STFT");
  s->cplx = (int)n->inputs[0]->dims[n->inputs[0]->rank - 1];
  if (s->onesided && s->cplx == 2) /* the spec: no onesided output of a complex signal */
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "onesided is 1 but the signal is complex: onesided output is only for real "
                     "signals");
  if (s->n > MAX_LEN)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "a transform of length %lld (the most is 2^31)",
                     (long long)s->n);
  s->bins = s->onesided ? s->n / 2 + 1 : s->n;
  s->taps = s->len < s->n ? s->len : s->n;
  if (s->window && n->inputs[2]->dims[0] < s->taps) s->taps = n->inputs[2]->dims[0];
  return MOSS_OK;
}

/* Python's float floor division, as numpy's // computes it. */
static double floor_div(double a, double b) {
  double mod = fmod(a, b), div, fl;
  div = (a - mod) / b;
  if (mod != 0 && (b < 0) != (mod < 0)) div -= 1.0;
  if (div == 0) return copysign(0.0, a / b);
  fl = floor(div);
  if (div - fl > 0.5) fl += 1.0;
  return fl;
}

/* mel(hz) = 2595 log10(1 + hz / 700), in float32 for float32 edges as the
 * reference's numpy scalars compute it. */
static double mel_of(double hz, int f32) {
  float t;
  if (!f32) return 2595.0 * log10(1.0 + hz / 700.0);
  t = (float)hz / 700.0f;
  t = 1.0f + t;
  t = log10f(t);
  return (double)(2595.0f * t);
}

moss_status moss_mel_compute(moss_ctx *ctx, const moss_node *n, moss_dtype dt, void *out) {
  int64_t nmel, len, rate, nbins, b[3] = {0, 0, 0}, i, j;
  double lo, hi, step;
  int f32;
  nmel = moss_value_get_i64(n->inputs[0], 0);
  len = moss_value_get_i64(n->inputs[1], 0);
  rate = moss_value_get_i64(n->inputs[2], 0);
  f32 = n->inputs[3]->dtype == MOSS_DT_F32;
  lo = mel_of(moss_value_get_f64(n->inputs[3], 0), f32);
  hi = mel_of(moss_value_get_f64(n->inputs[4], 0), f32);
  if (f32)
    step = (double)(((float)hi - (float)lo) / (float)(nmel + 2));
  else
    step = (hi - lo) / (double)(nmel + 2);
  nbins = len / 2 + 1;
  /* Band i rises from edge i to edge i + 1 and falls to edge i + 2, the
   * edges being spectrogram bins: b[] holds the three of band i - 2. */
  for (i = 0; i < nmel + 2; i++) {
    double f = (double)i * step + lo, v;
    f = 700.0 * (pow(10.0, f / 2595.0) - 1.0);
    v = floor_div((double)(len + 1) * f, (double)rate);
    if (!(fabs(v) < 4e18))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                       "the mel band edge %lld is no spectrogram bin (%g): check the edges "
                       "in hertz",
                       (long long)i, v);
    b[0] = b[1];
    b[1] = b[2];
    b[2] = (int64_t)v;
    if (i < 2) continue;
    {
      int64_t left = b[0], center = b[1], right = b[2], col = i - 2;
      /* The rows the reference writes: the rise [left, center] (only the
       * center when they meet, none when it falls back), the fall
       * [center, right). */
      int64_t r0 = center == left ? center : left, r1 = center < left ? left - 1 : center;
      if ((r0 <= r1 && (r0 < 0 || r1 >= nbins)) ||
          (right > center && (center < 0 || right > nbins)))
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                         "mel band %lld spans spectrogram bins %lld to %lld, outside the %lld "
                         "bins of a DFT of %lld: the edges in hertz must lie within 0 and "
                         "sample_rate / 2",
                         (long long)col, (long long)left, (long long)right, (long long)nbins,
                         (long long)len);
      if (!out) continue;
      if (center == left) {
        moss_store_f64(dt, out, center * nmel + col, 1.0);
      } else {
        for (j = left; j <= center; j++)
          moss_store_f64(dt, out, j * nmel + col, (double)(j - left) / (double)(center - left));
      }
      for (j = center; j < right; j++)
        moss_store_f64(dt, out, j * nmel + col, (double)(right - j) / (double)(right - center));
    }
  }
  return MOSS_OK;
}

/* The value input |i| of a MelWeightMatrix, which must be a constant. */
static void mel_input(moss_ctx *ctx, const moss_node *n, int i, const char *what,
                      moss_status *out_bad) {
  const moss_value *v = moss_node_input(n, i);
  moss_status st = MOSS_OK;
  int want_int = i < 3;
  if (!v->data) {
    if (v->input_index >= 0)
      st = moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "input '%s' (%s) decides the matrix, which moss computes at compile time; "
                     "fix it with --constant %s=FILE",
                     v->name, what, v->name);
    else
      st = moss_need_constant(ctx, n, i, what);
  } else if (moss_value_numel(v) != 1 ||
             (want_int ? v->dtype != MOSS_DT_I32 && v->dtype != MOSS_DT_I64
                       : v->dtype != MOSS_DT_F32 && v->dtype != MOSS_DT_F64)) {
    st = moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%s must be one %s", what,
                   want_int ? "int32 or int64" : "float or double");
  }
  if (st != MOSS_OK && *out_bad == MOSS_OK) *out_bad = st;
}

static moss_status infer_mel(moss_ctx *ctx, moss_node *n) {
  static const char *const what[5] = {"num_mel_bins", "dft_length", "sample_rate",
                                      "lower_edge_hertz", "upper_edge_hertz"};
  moss_dtype dt = (moss_dtype)moss_attr_int(n, "output_datatype", MOSS_DT_F32);
  moss_status bad = MOSS_OK;
  int64_t nmel, len, rate, dims[2];
  int i;
  for (i = 0; i < 5; i++) MOSS_TRY(moss_need_input(ctx, n, i));
  for (i = 0; i < 5; i++) mel_input(ctx, n, i, what[i], &bad);
  if (bad != MOSS_OK) return bad;
  switch (dt) {
  case MOSS_DT_U8: case MOSS_DT_U16: case MOSS_DT_U32: case MOSS_DT_U64: case MOSS_DT_I8:
  case MOSS_DT_I16: case MOSS_DT_I32: case MOSS_DT_I64: case MOSS_DT_F16: case MOSS_DT_F32:
  case MOSS_DT_F64: case MOSS_DT_BF16: break;
  default:
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "output_datatype %d is not a numeric type",
                     (int)dt);
  }
  if (n->inputs[3]->dtype != n->inputs[4]->dtype)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "lower_edge_hertz and upper_edge_hertz differ in type");
  nmel = moss_value_get_i64(n->inputs[0], 0);
  len = moss_value_get_i64(n->inputs[1], 0);
  rate = moss_value_get_i64(n->inputs[2], 0);
  if (nmel <= 0 || len <= 0 || rate <= 0)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "num_mel_bins (%lld), dft_length (%lld) and sample_rate (%lld) must be "
                     "positive",
                     (long long)nmel, (long long)len, (long long)rate);
  dims[0] = len / 2 + 1;
  dims[1] = nmel;
  if (dims[0] > MAX_MEL / dims[1])
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "a MelWeightMatrix of %lld x %lld (moss computes at most 2^28 elements)",
                     (long long)dims[0], (long long)dims[1]);
  MOSS_TRY(moss_mel_compute(ctx, n, dt, NULL));
  moss_set_output(n, 0, dt, 2, dims);
  return MOSS_OK;
}

moss_status moss_infer_signal(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_signal s;
  const moss_value *x;
  int64_t dims[MOSS_MAX_RANK];
  int k;
  (void)g;
  if (n->op == MOSS_OP_MelWeightMatrix) return infer_mel(ctx, n);
  MOSS_TRY(moss_signal_compute(ctx, n, &s));
  x = n->inputs[0];
  if (n->op == MOSS_OP_DFT) {
    for (k = 0; k < x->rank; k++) dims[k] = x->dims[k];
    dims[s.axis] = s.bins;
    dims[x->rank - 1] = 2;
    moss_set_output(n, 0, x->dtype, x->rank, dims);
  } else {
    dims[0] = s.outer;
    dims[1] = s.frames;
    dims[2] = s.bins;
    dims[3] = 2;
    moss_set_output(n, 0, x->dtype, 4, dims);
  }
  if (moss_value_nbytes_checked(n->outputs[0]) < 0)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "the output is too large");
  return MOSS_OK;
}

/* Element (real part) of term 0 of output bin |p| (its flat index over
 * the bins), and *|out_k| its bin k. */
static int64_t term0(const moss_signal *s, int64_t p, int64_t *out_k) {
  int64_t i = p % s->inner, k = p / s->inner % s->bins, o = p / (s->inner * s->bins);
  *out_k = k;
  if (s->frames) /* STFT: o is batch * frames + frame */
    return (o / s->frames * s->len + o % s->frames * s->step) * s->cplx;
  return (o * s->len * s->inner + i) * s->cplx;
}

moss_status moss_eval_signal(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  const moss_value *x, *w;
  moss_value *y = n->outputs[0];
  moss_signal s;
  int64_t p, total, t;
  (void)g;
  if (!y || !y->data) return MOSS_E_UNSUPPORTED;
  if (n->op == MOSS_OP_MelWeightMatrix) return moss_mel_compute(ctx, n, y->dtype, y->data);
  MOSS_TRY(moss_signal_compute(ctx, n, &s));
  x = n->inputs[0];
  w = s.window ? n->inputs[2] : NULL;
  total = moss_value_numel(y) / 2;
  for (p = 0; p < total; p++) {
    int64_t k, at = term0(&s, p, &k), stride = s.frames ? s.cplx : s.inner * s.cplx, m = 0;
    double re = 0, im = 0;
    for (t = 0; t < s.taps; t++) {
      double xr = moss_load_f64(x->dtype, x->data, at + t * stride), xi = 0, c, sn;
      if (s.cplx == 2) xi = moss_load_f64(x->dtype, x->data, at + t * stride + 1);
      if (w) { /* weighted in the signal's type, as the kernel does */
        double wv = moss_load_f64(w->dtype, w->data, t);
        xr *= wv;
        xi *= wv;
        if (x->dtype == MOSS_DT_F32) xr = (float)xr, xi = (float)xi;
      }
      moss_signal_twiddle(s.n, m, &c, &sn);
      if (s.inverse) { /* (xr + j xi)(c + j sn) */
        re = re + (xr * c - xi * sn);
        im = im + (xi * c + xr * sn);
      } else { /* (xr + j xi)(c - j sn) */
        re = re + (xr * c + xi * sn);
        im = im + (xi * c - xr * sn);
      }
      m = (m + k) % s.n;
    }
    if (s.inverse) re /= (double)s.n, im /= (double)s.n;
    moss_store_f64(y->dtype, y->data, 2 * p, re);
    moss_store_f64(y->dtype, y->data, 2 * p + 1, im);
  }
  return MOSS_OK;
}
