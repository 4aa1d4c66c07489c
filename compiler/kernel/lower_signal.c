/* lower_signal.c - DFT, STFT and MelWeightMatrix (ops/signal.c).
 *
 * DFT and STFT are one parallel loop over the output bins (a GPU's
 * work-items), each a direct sum in double over its terms in index order:
 * O(n) per bin, O(n^2) per transform, which is what a compiler without an
 * FFT library in the generated code can give every backend alike. The
 * twiddle factor of term t of bin k is that of m = k t mod n, stepped by
 * adding k (mod n) and read from two constant tables of cos and sin of
 * 2 pi m / n (ops/signal.c's values, so folding and the run agree); past TABLE_MAX, the product of two factors from tables of
 * about sqrt(n) entries each, so that no backend needs cos or sin. STFT
 * weights each term by the window in the signal's type, as ONNX's
 * reference does. MelWeightMatrix is computed at compile time; when it
 * was not folded (a graph output) the kernel copies its table. */
#include <string.h>

#include "lower.h"

/* The longest transform whose twiddle factors go in tables (2 x 8 bytes each). */
#define TABLE_MAX ((int64_t)1 << 16)

/* The quotient |x| / |d| of an |x| in [0, |range|): 0 when that is all
 * it can be. */
static moss_kx *quot(moss_kb *b, const char *name, moss_kx *x, int64_t d, int64_t range) {
  if (range <= d) return moss_k_idx(b, 0);
  if (d == 1) return x;
  return moss_k_let(b, name, moss_k_bin(b, MOSS_KX_DIV, x, moss_k_idx(b, d)));
}

/* |x| % |d| (0 when |d| is 1). */
static moss_kx *rem(moss_kb *b, const char *name, moss_kx *x, int64_t d) {
  if (d == 1) return moss_k_idx(b, 0);
  return moss_k_let(b, name, moss_k_bin(b, MOSS_KX_REM, x, moss_k_idx(b, d)));
}

/* The twiddle factors of a transform of length |n|: tw[0], tw[1] the
 * tables of cos and sin of 2 pi m / n; past TABLE_MAX, of m = q * |*out_blk|
 * (tw[0], tw[1]: q < n / blk + 1) and of m = r (tw[2], tw[3]: r < blk),
 * whose products give m = q blk + r: no cos or sin at run time, which
 * not every backend has. */
static void tables(moss_kb *b, int64_t n, int *tw, int64_t *out_blk) {
  static const char *const names[4] = {"cos", "sin", "cos_r", "sin_r"};
  int64_t blk = 0, len[4], m;
  double *t[4];
  int j, nt = 2;
  len[0] = len[1] = n;
  if (n > TABLE_MAX) {
    for (blk = 1; blk * blk < n; blk++) continue;
    len[0] = len[1] = (n - 1) / blk + 1;
    len[2] = len[3] = blk;
    nt = 4;
  }
  *out_blk = blk;
  for (j = 0; j < nt; j++) {
    t[j] = moss_arena_alloc(b->arena, (size_t)len[j] * sizeof(double), 64);
    if (!t[j]) {
      moss_kb_fail(b, MOSS_E_NOMEM, "twiddle tables");
      return;
    }
  }
  for (m = 0; m < len[0]; m++) moss_signal_twiddle(n, blk ? m * blk : m, &t[0][m], &t[1][m]);
  for (m = 0; nt == 4 && m < blk; m++) moss_signal_twiddle(n, m, &t[2][m], &t[3][m]);
  for (j = 0; j < nt; j++) tw[j] = moss_k_table(b, names[j], MOSS_DT_F64, len[j], t[j]);
}

/* Term |at| of the signal (input 0) in double, weighted by element |t| of
 * the window (input 2) in the signal's type when the STFT has one. */
static moss_kx *term(moss_kb *b, const moss_signal *s, moss_kx *at, moss_kx *t) {
  moss_kx *v = moss_k_load(b, moss_k_input(b, 0), at);
  if (s->window) v = moss_k_bin(b, MOSS_KX_MUL, v, moss_k_load(b, moss_k_input(b, 2), t));
  return moss_k_cast(b, MOSS_DT_F64, v);
}

/* Bin |k| of the transform whose terms start at element |at0|: stores its
 * real and imaginary parts at |p| * 2 and |p| * 2 + 1 of output 0. */
static void bin(moss_kb *b, const moss_signal *s, moss_dtype dt, const int *tw, int64_t blk,
                moss_kx *p, moss_kx *k, moss_kx *at0, int64_t stride) {
  const moss_dtype D = MOSS_DT_F64;
  int y = moss_k_output(b, 0);
  moss_kx *re, *im, *m, *t, *at, *xr, *xi = NULL, *c, *sn;
  re = moss_k_let(b, "re", moss_k_flt(b, D, 0));
  im = moss_k_let(b, "im", moss_k_flt(b, D, 0));
  m = moss_k_let(b, "m", moss_k_idx(b, 0)); /* k t mod n */
  t = moss_k_range(b, "t", s->taps, MOSS_KL_SERIAL);
  at = moss_k_let(b, "at", moss_k_add(b, at0, moss_k_mulc(b, t, stride)));
  xr = moss_k_let(b, "xr", term(b, s, at, t));
  if (s->cplx == 2) xi = moss_k_let(b, "xi", term(b, s, moss_k_addc(b, at, 1), t));
  if (!blk) {
    c = moss_k_let(b, "c", moss_k_load(b, tw[0], m));
    sn = moss_k_let(b, "s", moss_k_load(b, tw[1], m));
  } else { /* m = q blk + r: exp(j a_q) exp(j a_r) */
    moss_kx *q, *r, *cq, *sq, *cr, *sr;
    q = moss_k_let(b, "q", moss_k_bin(b, MOSS_KX_DIV, m, moss_k_idx(b, blk)));
    r = moss_k_let(b, "r", moss_k_bin(b, MOSS_KX_SUB, m, moss_k_mulc(b, q, blk)));
    cq = moss_k_let(b, "cq", moss_k_load(b, tw[0], q));
    sq = moss_k_let(b, "sq", moss_k_load(b, tw[1], q));
    cr = moss_k_let(b, "cr", moss_k_load(b, tw[2], r));
    sr = moss_k_let(b, "sr", moss_k_load(b, tw[3], r));
    c = moss_k_let(b, "c", moss_k_bin(b, MOSS_KX_SUB, moss_k_bin(b, MOSS_KX_MUL, cq, cr),
                                      moss_k_bin(b, MOSS_KX_MUL, sq, sr)));
    sn = moss_k_let(b, "s", moss_k_bin(b, MOSS_KX_ADD, moss_k_bin(b, MOSS_KX_MUL, sq, cr),
                                       moss_k_bin(b, MOSS_KX_MUL, cq, sr)));
  }
  /* (xr + j xi)(c -+ j s): the forward transform's factor is exp(-j a) */
  if (xi) {
    moss_k_set(b, re, moss_k_bin(b, MOSS_KX_ADD, re,
                                 moss_k_bin(b, s->inverse ? MOSS_KX_SUB : MOSS_KX_ADD,
                                            moss_k_bin(b, MOSS_KX_MUL, xr, c),
                                            moss_k_bin(b, MOSS_KX_MUL, xi, sn))));
    moss_k_set(b, im, moss_k_bin(b, MOSS_KX_ADD, im,
                                 moss_k_bin(b, s->inverse ? MOSS_KX_ADD : MOSS_KX_SUB,
                                            moss_k_bin(b, MOSS_KX_MUL, xi, c),
                                            moss_k_bin(b, MOSS_KX_MUL, xr, sn))));
  } else {
    moss_k_set(b, re, moss_k_bin(b, MOSS_KX_ADD, re, moss_k_bin(b, MOSS_KX_MUL, xr, c)));
    moss_k_set(b, im, moss_k_bin(b, s->inverse ? MOSS_KX_ADD : MOSS_KX_SUB, im,
                                 moss_k_bin(b, MOSS_KX_MUL, xr, sn)));
  }
  /* a remainder, not a conditional subtraction: it keeps m's range known
   * (Vulkan's shaders then hold it in 32 bits; an int64 variable carried
   * through the loop came out wrong on lavapipe) */
  moss_k_set(b, m, moss_k_bin(b, MOSS_KX_REM, moss_k_add(b, m, k), moss_k_idx(b, s->n)));
  moss_k_end(b); /* t */
  if (s->inverse) {
    moss_k_set(b, re, moss_k_bin(b, MOSS_KX_DIV, re, moss_k_flt(b, D, (double)s->n)));
    moss_k_set(b, im, moss_k_bin(b, MOSS_KX_DIV, im, moss_k_flt(b, D, (double)s->n)));
  }
  moss_k_store(b, y, moss_k_mulc(b, p, 2), moss_k_cast(b, dt, re));
  moss_k_store(b, y, moss_k_addc(b, moss_k_mulc(b, p, 2), 1), moss_k_cast(b, dt, im));
}

static moss_status transform(moss_kb *b, const moss_node *n) {
  moss_dtype dt = n->outputs[0]->dtype;
  moss_signal s;
  int64_t total, blk;
  int tw[4] = {-1, -1, -1, -1};
  moss_kx *p, *k, *at0;
  if (moss_signal_compute(b->ctx, n, &s) != MOSS_OK)
    return moss_kb_fail(b, MOSS_E_INTERNAL, "the transform's inputs changed since inference");
  if (dt != MOSS_DT_F32 && dt != MOSS_DT_F64)
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "output type %s", moss_dtype_name(dt));
  total = moss_value_numel(n->outputs[0]) / 2;
  if (total <= 0) {
    moss_k_comment(b, "empty output");
    return b->st;
  }
  moss_k_comment(b, "%s of length %lld, %lld bins of %lld terms each%s", n->op_type,
                 (long long)s.n, (long long)s.bins, (long long)s.taps,
                 s.inverse ? ", inverse" : "");
  tables(b, s.n, tw, &blk);
  p = moss_k_range(b, "p", total, MOSS_KL_PARALLEL);
  k = rem(b, "k", quot(b, "pk", p, s.inner, total), s.bins);
  if (s.frames) { /* STFT: p = (batch * frames + frame) * bins + k */
    moss_kx *o = quot(b, "o", p, s.bins, total), *bt, *f;
    bt = quot(b, "batch", o, s.frames, s.outer * s.frames);
    f = rem(b, "frame", o, s.frames);
    at0 = moss_k_add(b, moss_k_mulc(b, bt, s.len), moss_k_mulc(b, f, s.step));
    at0 = moss_k_mulc(b, at0, s.cplx);
    bin(b, &s, dt, tw, blk, p, k, at0, s.cplx);
  } else { /* DFT: p = (o * bins + k) * inner + i */
    moss_kx *o = quot(b, "o", p, s.bins * s.inner, total), *i = rem(b, "i", p, s.inner);
    at0 = moss_k_mulc(b, moss_k_add(b, moss_k_mulc(b, o, s.len * s.inner), i), s.cplx);
    bin(b, &s, dt, tw, blk, p, k, at0, s.inner * s.cplx);
  }
  moss_k_end(b); /* p */
  return b->st;
}

/* The matrix of the constant inputs, as a table copied out. */
static moss_status mel(moss_kb *b, const moss_node *n) {
  const moss_value *y = n->outputs[0];
  moss_dtype dt = y->dtype, st = moss_dtype_storage(dt);
  int64_t ne = moss_value_numel(y), i;
  size_t nb = moss_value_nbytes(y);
  void *data;
  int t;
  moss_kx *j;
  for (i = 0; i < 5; i++)
    if (!n->inputs[i]->data)
      return moss_kb_fail(b, MOSS_E_INTERNAL, "MelWeightMatrix input %d is not constant", (int)i);
  if (ne <= 0) {
    moss_k_comment(b, "empty output");
    return b->st;
  }
  data = moss_arena_alloc(b->arena, nb, 64);
  if (!data) return moss_kb_fail(b, MOSS_E_NOMEM, "MelWeightMatrix table");
  memset(data, 0, nb);
  if (moss_mel_compute(b->ctx, n, dt, data) != MOSS_OK)
    return moss_kb_fail(b, MOSS_E_INTERNAL, "MelWeightMatrix inputs changed since inference");
  t = moss_k_table(b, "mel", st, ne, data); /* float16 and bfloat16 as their bits */
  j = moss_k_range(b, "i", ne, MOSS_KL_PARALLEL);
  moss_k_store(b, moss_k_output(b, 0), j, moss_k_load(b, t, j));
  moss_k_end(b);
  return b->st;
}

moss_status moss_lower_signal(moss_kb *b, const moss_node *n) {
  const moss_value *y = n->outputs[0];
  /* a float16 or bfloat16 matrix is a table of its bits */
  if (!y || !(moss_kernel_dtype_ok(y->dtype) ||
              (n->op == MOSS_OP_MelWeightMatrix && moss_dtype_is_half(y->dtype))))
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "output type %s",
                        y ? moss_dtype_name(y->dtype) : "(none)");
  switch (n->op) {
  case MOSS_OP_DFT:
  case MOSS_OP_STFT: return transform(b, n);
  case MOSS_OP_MelWeightMatrix: return mel(b, n);
  default: return moss_kb_fail(b, MOSS_E_INTERNAL, "not a signal operator");
  }
}
