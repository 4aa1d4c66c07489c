/* emit_conv.c - C for Conv and ConvTranspose: direct convolution,
 * specialized to the node's shapes. Conv walks each output row (the last
 * spatial dimension) and, per input channel and kernel tap, adds one
 * weight times a contiguous (or strided) input row into it: the innermost
 * loop runs over the output row with bounds computed at compile time, so it
 * has no per-element check and vectorizes. ConvTranspose scatters each
 * input row into the output the same way. The fused activation (n->act) is
 * applied to each finished row. */
#include <stdio.h>
#include <string.h>

#include "../../compiler/passes/sparse.h"
#include "cgen.h"

/* The geometry of one node, spatial dimensions only. */
typedef struct geom {
  int nsp;
  int64_t in[MOSS_MAX_RANK], out[MOSS_MAX_RANK], k[MOSS_MAX_RANK];
  int64_t s[MOSS_MAX_RANK], d[MOSS_MAX_RANK], p[MOSS_MAX_RANK]; /* p: begin pad */
} geom;

static int64_t floordiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int64_t ceildiv(int64_t a, int64_t b) { return -floordiv(-a, b); }

static void ints(const moss_node *n, const char *name, int cnt, int64_t def, int64_t *out) {
  const int64_t *a;
  int c = moss_attr_ints(n, name, &a), k;
  for (k = 0; k < cnt; k++) out[k] = a && c == cnt ? a[k] : def;
}

/* Fills |g| from the node's attributes and its already inferred shapes. */
static void get_geom(const moss_node *n, geom *g) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1], *y = n->outputs[0];
  const char *ap = moss_attr_string(n, "auto_pad", "NOTSET");
  int64_t pads[2 * MOSS_MAX_RANK], op[MOSS_MAX_RANK];
  int k, same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
  int upper = !strcmp(ap, "SAME_UPPER");
  g->nsp = x->rank - 2;
  ints(n, "strides", g->nsp, 1, g->s);
  ints(n, "dilations", g->nsp, 1, g->d);
  ints(n, "pads", 2 * g->nsp, 0, pads);
  ints(n, "output_padding", g->nsp, 0, op);
  for (k = 0; k < g->nsp; k++) {
    int64_t ek, total;
    g->in[k] = x->dims[k + 2];
    g->out[k] = y->dims[k + 2];
    g->k[k] = w->dims[k + 2];
    ek = (g->k[k] - 1) * g->d[k] + 1;
    g->p[k] = !strcmp(ap, "NOTSET") ? pads[k] : 0;
    if (n->op == MOSS_OP_Conv) {
      if (same) {
        total = (g->out[k] - 1) * g->s[k] + ek - g->in[k];
        if (total < 0) total = 0;
        g->p[k] = upper ? total / 2 : total - total / 2;
      }
    } else if (same || moss_node_find_attr(n, "output_shape")) {
      total = g->s[k] * (g->in[k] - 1) + op[k] + ek - g->out[k];
      /* A larger output than the full one is extra room at the end. */
      if (total < 0) g->p[k] = 0;
      else g->p[k] = upper ? total / 2 : total - total / 2;
    }
  }
  /* A pointwise convolution over the whole plane is one long row. */
  {
    int pw = 1;
    int64_t in = 1, out = 1;
    for (k = 0; k < g->nsp; k++) {
      if (g->k[k] != 1 || g->s[k] != 1 || g->p[k] != 0 || g->in[k] != g->out[k]) pw = 0;
      in *= g->in[k];
      out *= g->out[k];
    }
    if (pw && g->nsp > 1) {
      g->nsp = 1;
      g->in[0] = in;
      g->out[0] = out;
      g->k[0] = g->s[0] = g->d[0] = 1;
      g->p[0] = 0;
    }
  }
}

static int64_t prod(const int64_t *d, int from, int to) {
  int64_t p = 1;
  int k;
  for (k = from; k < to; k++) p *= d[k];
  return p;
}

/* Range [lo, hi) of positions |j| in [0, nj) with 0 <= j*s + off < lim. */
static void range(int64_t nj, int64_t s, int64_t off, int64_t lim, int64_t *lo, int64_t *hi) {
  *lo = ceildiv(-off, s);
  *hi = floordiv(lim - 1 - off, s) + 1;
  if (*lo < 0) *lo = 0;
  if (*hi > nj) *hi = nj;
  if (*hi < *lo) *hi = *lo;
}

/* "a*S + off" as C text, simplified. */
static const char *term(char *buf, size_t cap, const char *a, int64_t s, int64_t off) {
  size_t len;
  if (s == 1) len = (size_t)snprintf(buf, cap, "%s", a);
  else len = (size_t)snprintf(buf, cap, "%s * %lld", a, (long long)s);
  if (off > 0 && len < cap) snprintf(buf + len, cap - len, " + %lld", (long long)off);
  if (off < 0 && len < cap) snprintf(buf + len, cap - len, " - %lld", (long long)-off);
  return buf;
}

/* Emits the per-tap update of the last spatial dimension: for each tap kl
 * of the kernel row, dst[j*ds + doff] += wr[kl] * src[j*ss + soff] over the
 * valid j. |conv| picks the direction: Conv iterates output positions j
 * (src is the input row), ConvTranspose input positions (dst the output). */
static void emit_row_taps(moss_cgen *cg, const geom *g, int conv, const char *T) {
  int L = g->nsp - 1;
  int64_t K = g->k[L], S = g->s[L], D = g->d[L], P = g->p[L];
  int64_t nj = conv ? g->out[L] : g->in[L], lim = conv ? g->in[L] : g->out[L];
  int64_t kl, lo, hi;
  char a[96];
  if (K <= 16 && conv) {
    /* Where every tap of the kernel row is inside the input (the interior
     * [jl, jh)), one loop adds all taps: one load and store of the output
     * per K multiply-adds. The border positions get per-tap loops. */
    int64_t jl = 0, jh = nj, tl[16], th[16];
    for (kl = 0; kl < K; kl++) {
      range(nj, S, kl * D - P, lim, &tl[kl], &th[kl]);
      if (tl[kl] > jl) jl = tl[kl];
      if (th[kl] < jh) jh = th[kl];
    }
    if (jh <= jl) jl = jh = nj; /* no interior: per-tap loops only */
    if (jh > jl) {
      size_t len = 0;
      char sum[1024];
      sum[0] = 0;
      for (kl = 0; kl < K && len < sizeof sum; kl++)
        len += (size_t)snprintf(sum + len, sizeof sum - len, "%sw%lld * xr[%s]", kl ? " + " : "",
                                (long long)kl, term(a, sizeof a, "j", S, kl * D - P));
      moss_c_line(cg, "{");
      cg->indent++;
      for (kl = 0; kl < K; kl++) moss_c_line(cg, "const %s w%lld = wr[%lld];", T, (long long)kl, (long long)kl);
      for (kl = 0; kl < K; kl++) {
        if (th[kl] <= tl[kl]) continue;
        if (tl[kl] < jl)
          moss_c_line(cg, "for (long j = %lld; j < %lld; j++) yr[j] += w%lld * xr[%s];",
                      (long long)tl[kl], (long long)jl, (long long)kl,
                      term(a, sizeof a, "j", S, kl * D - P));
        if (th[kl] > jh)
          moss_c_line(cg, "for (long j = %lld; j < %lld; j++) yr[j] += w%lld * xr[%s];",
                      (long long)jh, (long long)th[kl], (long long)kl,
                      term(a, sizeof a, "j", S, kl * D - P));
      }
      moss_c_line(cg, "for (long j = %lld; j < %lld; j++) yr[j] += %s;", (long long)jl,
                  (long long)jh, sum);
      moss_c_close(cg);
      return;
    }
  }
  if (K <= 16) {
    for (kl = 0; kl < K; kl++) {
      int64_t off = kl * D - P;
      range(nj, S, off, lim, &lo, &hi);
      if (hi <= lo) continue;
      /* The weight goes into a scalar first: a load inside the loop could
       * alias the row being written and block vectorization. */
      if (conv)
        moss_c_line(cg, "{ const %s w = wr[%lld]; for (long j = %lld; j < %lld; j++) yr[j] += w * xr[%s]; }",
                    T, (long long)kl, (long long)lo, (long long)hi, term(a, sizeof a, "j", S, off));
      else
        moss_c_line(cg, "{ const %s w = wr[%lld]; for (long j = %lld; j < %lld; j++) yr[%s] += w * xr[j]; }",
                    T, (long long)kl, (long long)lo, (long long)hi, term(a, sizeof a, "j", S, off));
    }
    return;
  }
  /* Long kernel rows: the bounds come from small tables. */
  moss_buf_printf(cg->out, "%*sstatic const long lo[%lld] = {", 2 * (cg->indent + 2), "",
                  (long long)K);
  for (kl = 0; kl < K; kl++) {
    range(nj, S, kl * D - P, lim, &lo, &hi);
    moss_buf_printf(cg->out, "%s%lld", kl ? ", " : "", (long long)lo);
  }
  moss_buf_printf(cg->out, "};\n%*sstatic const long hi[%lld] = {", 2 * (cg->indent + 2), "",
                  (long long)K);
  for (kl = 0; kl < K; kl++) {
    range(nj, S, kl * D - P, lim, &lo, &hi);
    moss_buf_printf(cg->out, "%s%lld", kl ? ", " : "", (long long)hi);
  }
  moss_buf_printf(cg->out, "};\n");
  moss_c_open(cg, "for (long kl = 0; kl < %lld; kl++)", (long long)K);
  moss_c_line(cg, "const %s w = wr[kl];", T);
  moss_c_line(cg, "const long off = kl * %lld - %lld;", (long long)D, (long long)P);
  if (conv)
    moss_c_line(cg, "for (long j = lo[kl]; j < hi[kl]; j++) yr[j] += w * xr[%s + off];",
                term(a, sizeof a, "j", S, 0));
  else
    moss_c_line(cg, "for (long j = lo[kl]; j < hi[kl]; j++) yr[%s + off] += w * xr[j];",
                term(a, sizeof a, "j", S, 0));
  moss_c_close(cg);
}

/* "<v>k * S + kk * D - P" for spatial dim |k|: the position a kernel tap
 * reaches from position <v>k. */
static const char *pos(char *buf, size_t cap, const char *v, int k, int64_t s, int64_t d,
                       int64_t p) {
  char a[32], t[64];
  snprintf(a, sizeof a, "%s%d", v, k);
  term(t, sizeof t, a, s, -p);
  if (d == 1) snprintf(buf, cap, "%s + k%d", t, k);
  else snprintf(buf, cap, "%s + k%d * %lld", t, k, (long long)d);
  return buf;
}

/* Offset text "i0 * 35 + i1 * 7 + ..." of the outer spatial positions
 * named |pfx|0.. over dims |d| (the last dim excluded), scaled by the row. */
static void outer_offset(char *buf, size_t cap, const char *pfx, const int64_t *d, int nsp) {
  size_t len = 0;
  int k;
  buf[0] = 0;
  for (k = 0; k < nsp - 1 && len < cap; k++)
    len += (size_t)snprintf(buf + len, cap - len, "%s%s%d * %lld", k ? " + " : "", pfx, k,
                            (long long)prod(d, k + 1, nsp));
  if (!buf[0]) snprintf(buf, cap, "0");
}

static void emit_act_loop(moss_cgen *cg, const moss_node *n, const char *p, int64_t cnt) {
  char v[64], e[512];
  if (!n->act.kind) return;
  snprintf(v, sizeof v, "%s[j]", p);
  moss_c_line(cg, "for (long j = 0; j < %lld; j++) %s = %s;", (long long)cnt, v,
              moss_c_act(n, v, e, sizeof e));
}

static moss_status emit_conv(moss_cgen *cg, const moss_node *n, const geom *g, const char *T) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1];
  int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], Cg = w->dims[1];
  int64_t group = C / Cg, Mg = M / group;
  int64_t XS = prod(g->in, 0, g->nsp), YS = prod(g->out, 0, g->nsp), KS = prod(g->k, 0, g->nsp);
  int L = g->nsp - 1, k, depth = 0;
  char off[512], a[128];
  moss_c_open(cg, "for (long b = 0; b < %lld; b++)", (long long)N);
  moss_c_open(cg, "for (long m = 0; m < %lld; m++)", (long long)M);
  if (group == 1) moss_c_line(cg, "const %s *xb = x0 + b * %lld;", T, (long long)(C * XS));
  else
    moss_c_line(cg, "const %s *xb = x0 + b * %lld + m / %lld * %lld;", T, (long long)(C * XS),
                (long long)Mg, (long long)(Cg * XS));
  moss_c_line(cg, "const %s *wm = x1 + m * %lld;", T, (long long)(Cg * KS));
  moss_c_line(cg, "%s *ym = y0 + (b * %lld + m) * %lld;", T, (long long)M, (long long)YS);
  for (k = 0; k < L; k++)
    moss_c_open(cg, "for (long o%d = 0; o%d < %lld; o%d++)", k, k, (long long)g->out[k], k);
  outer_offset(off, sizeof off, "o", g->out, g->nsp);
  moss_c_line(cg, "%s *restrict yr = ym + %s;", T, off);
  moss_c_line(cg, "for (long j = 0; j < %lld; j++) yr[j] = %s;", (long long)g->out[L],
              moss_node_input(n, 2) ? "x2[m]" : "0");
  moss_c_open(cg, "for (long c = 0; c < %lld; c++)", (long long)Cg);
  moss_c_line(cg, "const %s *xc = xb + c * %lld;", T, (long long)XS);
  moss_c_line(cg, "const %s *wc = wm + c * %lld;", T, (long long)KS);
  for (k = 0; k < L; k++) {
    moss_c_open(cg, "for (long k%d = 0; k%d < %lld; k%d++)", k, k, (long long)g->k[k], k);
    depth++;
    moss_c_line(cg, "const long i%d = %s;", k, pos(a, sizeof a, "o", k, g->s[k], g->d[k], g->p[k]));
    moss_c_line(cg, "if (i%d < 0 || i%d >= %lld) continue;", k, k, (long long)g->in[k]);
  }
  outer_offset(off, sizeof off, "i", g->in, g->nsp);
  moss_c_line(cg, "const %s *restrict xr = xc + %s;", T, off);
  outer_offset(off, sizeof off, "k", g->k, g->nsp);
  moss_c_line(cg, "const %s *wr = wc + %s;", T, off);
  emit_row_taps(cg, g, 1, T);
  while (depth--) moss_c_close(cg);
  moss_c_close(cg); /* c */
  emit_act_loop(cg, n, "yr", g->out[L]);
  for (k = 0; k < L; k++) moss_c_close(cg);
  moss_c_close(cg);
  moss_c_close(cg);
  return MOSS_OK;
}

static moss_status emit_convtranspose(moss_cgen *cg, const moss_node *n, const geom *g,
                                      const char *T) {
  const moss_value *x = n->inputs[0], *w = n->inputs[1];
  int64_t N = x->dims[0], C = x->dims[1], Mg = w->dims[1];
  int64_t group = moss_attr_int(n, "group", 1), Cg = C / group, M = Mg * group;
  int64_t XS = prod(g->in, 0, g->nsp), YS = prod(g->out, 0, g->nsp), KS = prod(g->k, 0, g->nsp);
  int L = g->nsp - 1, k;
  char off[512], a[128];
  moss_c_open(cg, "for (long b = 0; b < %lld; b++)", (long long)N);
  moss_c_open(cg, "for (long m = 0; m < %lld; m++)", (long long)M);
  moss_c_line(cg, "%s *ym = y0 + (b * %lld + m) * %lld;", T, (long long)M, (long long)YS);
  moss_c_line(cg, "for (long j = 0; j < %lld; j++) ym[j] = %s;", (long long)YS,
              moss_node_input(n, 2) ? "x2[m]" : "0");
  if (group == 1) {
    moss_c_line(cg, "const %s *xb = x0 + b * %lld;", T, (long long)(C * XS));
    moss_c_line(cg, "const %s *wm = x1 + m * %lld;", T, (long long)KS);
  } else {
    moss_c_line(cg, "const %s *xb = x0 + b * %lld + m / %lld * %lld;", T, (long long)(C * XS),
                (long long)Mg, (long long)(Cg * XS));
    moss_c_line(cg, "const %s *wm = x1 + (m / %lld * %lld + m %% %lld) * %lld;", T, (long long)Mg,
                (long long)(Cg * Mg), (long long)Mg, (long long)KS);
  }
  moss_c_open(cg, "for (long c = 0; c < %lld; c++)", (long long)Cg);
  moss_c_line(cg, "const %s *xc = xb + c * %lld;", T, (long long)XS);
  moss_c_line(cg, "const %s *wc = wm + c * %lld;", T, (long long)(Mg * KS));
  for (k = 0; k < L; k++)
    moss_c_open(cg, "for (long i%d = 0; i%d < %lld; i%d++)", k, k, (long long)g->in[k], k);
  for (k = 0; k < L; k++) {
    moss_c_open(cg, "for (long k%d = 0; k%d < %lld; k%d++)", k, k, (long long)g->k[k], k);
    moss_c_line(cg, "const long o%d = %s;", k, pos(a, sizeof a, "i", k, g->s[k], g->d[k], g->p[k]));
    moss_c_line(cg, "if (o%d < 0 || o%d >= %lld) continue;", k, k, (long long)g->out[k]);
  }
  outer_offset(off, sizeof off, "o", g->out, g->nsp);
  moss_c_line(cg, "%s *restrict yr = ym + %s;", T, off);
  outer_offset(off, sizeof off, "i", g->in, g->nsp);
  moss_c_line(cg, "const %s *restrict xr = xc + %s;", T, off);
  outer_offset(off, sizeof off, "k", g->k, g->nsp);
  moss_c_line(cg, "const %s *wr = wc + %s;", T, off);
  emit_row_taps(cg, g, 0, T);
  for (k = 0; k < 2 * L; k++) moss_c_close(cg);
  moss_c_close(cg); /* c */
  emit_act_loop(cg, n, "ym", YS);
  moss_c_close(cg);
  moss_c_close(cg);
  return MOSS_OK;
}

moss_status moss_c_emit_conv(moss_cgen *cg, const moss_node *n) {
  geom g;
  const char *T = moss_dtype_ctype(n->outputs[0]->dtype);
  if (n->sparse) return moss_c_emit_sparse(cg, n); /* backends/c/emit_sparse.c */
  if (n->outputs[0]->dtype != MOSS_DT_F32 && n->outputs[0]->dtype != MOSS_DT_F64)
    return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "type %s (float32 and float64 only)",
                     moss_dtype_name(n->outputs[0]->dtype));
  get_geom(n, &g);
  if (n->op == MOSS_OP_ConvTranspose) return emit_convtranspose(cg, n, &g, T);
  return emit_conv(cg, n, &g, T);
}
