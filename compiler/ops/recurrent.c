/* recurrent.c - RNN, GRU and LSTM as ONNX defines them (opsets 1 to 21):
 * the shapes of X, W, R, B, sequence_lens, the initial states and LSTM's
 * peepholes, the attributes (direction, hidden_size, layout, clip,
 * activations with their alphas and betas, input_forget,
 * linear_before_reset), and the output shapes. A recurrent node is never
 * lowered as it stands: inference hands it to passes/recurrent.c, which
 * rewrites it into the matrix products and elementwise nodes of its time
 * steps (docs/recurrent.md), so every backend runs it with kernels it
 * already has. moss_rnn_read is shared with that pass. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ops.h"

/* Each activation ONNX lists for the recurrent operators, how many of the
 * activation_alpha and activation_beta values it takes, and their
 * defaults (those of the ONNX operator of the same name; Affine and
 * ScaledTanh have none there, so 1 and 0, and 1 and 1). */
static const struct {
  const char *name;
  moss_rnn_act_kind kind;
  int nalpha, nbeta;
  float alpha, beta;
} acts[] = {
    {"Relu", MOSS_RNN_RELU, 0, 0, 0, 0},
    {"Tanh", MOSS_RNN_TANH, 0, 0, 0, 0},
    {"Sigmoid", MOSS_RNN_SIGMOID, 0, 0, 0, 0},
    {"Affine", MOSS_RNN_AFFINE, 1, 1, 1.0f, 0.0f},
    {"LeakyRelu", MOSS_RNN_LEAKY_RELU, 1, 0, 0.01f, 0},
    {"ThresholdedRelu", MOSS_RNN_THRESHOLDED_RELU, 1, 0, 1.0f, 0},
    {"ScaledTanh", MOSS_RNN_SCALED_TANH, 1, 1, 1.0f, 1.0f},
    {"HardSigmoid", MOSS_RNN_HARD_SIGMOID, 1, 1, 0.2f, 0.5f},
    {"Elu", MOSS_RNN_ELU, 1, 0, 1.0f, 0},
    {"Softsign", MOSS_RNN_SOFTSIGN, 0, 0, 0, 0},
    {"Softplus", MOSS_RNN_SOFTPLUS, 0, 0, 0, 0},
};

const char *moss_rnn_act_name(moss_rnn_act_kind k) {
  size_t i;
  for (i = 0; i < sizeof acts / sizeof acts[0]; i++)
    if (acts[i].kind == k) return acts[i].name;
  return "?";
}

/* Fails unless optional input |i| is absent or a tensor of |rank| with the
 * dims |want| (-1: any). */
static moss_status need_shape(moss_ctx *ctx, const moss_node *n, int i, const char *what, int rank,
                              const int64_t *want) {
  const moss_value *v = moss_node_input(n, i);
  int k;
  if (!v) return MOSS_OK;
  if (!moss_value_shape_known(v))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "input '%s' (%s) has an unknown shape", v->name, what);
  if (v->rank != rank)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%s must have rank %d, not %d", what, rank, v->rank);
  for (k = 0; k < rank; k++)
    if (want[k] >= 0 && v->dims[k] != want[k]) {
      char got[96], exp[96];
      size_t o1 = 0, o2 = 0;
      int j;
      for (j = 0; j < rank; j++) {
        o1 += (size_t)snprintf(got + o1, sizeof got - o1, "%s%lld", j ? "x" : "", (long long)v->dims[j]);
        o2 += (size_t)(want[j] < 0 ? snprintf(exp + o2, sizeof exp - o2, "%s?", j ? "x" : "")
                                   : snprintf(exp + o2, sizeof exp - o2, "%s%lld", j ? "x" : "",
                                              (long long)want[j]));
      }
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%s has shape %s, expected %s", what, got, exp);
    }
  return MOSS_OK;
}

/* The activations: the attribute's list (|per| names for each direction),
 * else the operator's defaults; alphas and betas taken in list order by
 * the activations that use them. */
static moss_status read_acts(moss_ctx *ctx, const moss_node *n, moss_rnn *r) {
  static const moss_rnn_act_kind defaults[3][3] = {
      {MOSS_RNN_TANH}, {MOSS_RNN_SIGMOID, MOSS_RNN_TANH}, {MOSS_RNN_SIGMOID, MOSS_RNN_TANH, MOSS_RNN_TANH}};
  const moss_attr *names = moss_node_find_attr(n, "activations");
  const float *al = NULL, *be = NULL;
  int nal = moss_attr_floats(n, "activation_alpha", &al), nbe = moss_attr_floats(n, "activation_beta", &be);
  int per = r->kind == MOSS_RNN_KIND_RNN ? 1 : r->kind == MOSS_RNN_KIND_GRU ? 2 : 3;
  int d, k, ia = 0, ib = 0;
  size_t j;
  r->nact = per;
  if (!names) {
    for (d = 0; d < r->dirs; d++)
      for (k = 0; k < per; k++) {
        r->act[d][k].kind = defaults[per - 1][k];
        r->act[d][k].alpha = r->act[d][k].beta = 0;
      }
    return MOSS_OK;
  }
  if (names->n != per * r->dirs && !(names->n == per && r->dirs == 2))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%d activations for %d direction%s (%d each)", names->n,
                     r->dirs, r->dirs > 1 ? "s" : "", per);
  for (d = 0; d < r->dirs; d++)
    for (k = 0; k < per; k++) {
      int at = names->n == per ? k : d * per + k;
      if (names->n == per && d == 1 && k == 0) ia = ib = 0; /* one list for both directions */
      const char *s = names->strings[at];
      moss_rnn_act *a = &r->act[d][k];
      for (j = 0; j < sizeof acts / sizeof acts[0]; j++)
        if (!strcasecmp(acts[j].name, s)) break;
      if (j == sizeof acts / sizeof acts[0])
        return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "activation '%s' is not one ONNX defines", s);
      a->kind = acts[j].kind;
      a->alpha = acts[j].alpha;
      a->beta = acts[j].beta;
      if (acts[j].nalpha && al && ia < nal) a->alpha = al[ia++];
      if (acts[j].nbeta && be && ib < nbe) a->beta = be[ib++];
    }
  return MOSS_OK;
}

moss_status moss_rnn_read(moss_ctx *ctx, const moss_node *n, moss_rnn *r) {
  const moss_value *x, *w, *rr;
  const char *dir = moss_attr_string(n, "direction", "forward");
  int64_t want[3];
  int64_t hs = moss_attr_int(n, "hidden_size", -1);
  int i;
  memset(r, 0, sizeof *r);
  r->kind = n->op == MOSS_OP_LSTM ? MOSS_RNN_KIND_LSTM : n->op == MOSS_OP_GRU ? MOSS_RNN_KIND_GRU : MOSS_RNN_KIND_RNN;
  r->gates = r->kind == MOSS_RNN_KIND_LSTM ? 4 : r->kind == MOSS_RNN_KIND_GRU ? 3 : 1;
  for (i = 0; i < 3; i++) MOSS_TRY(moss_need_input(ctx, n, i));
  x = n->inputs[0];
  w = n->inputs[1];
  rr = n->inputs[2];
  if (x->dtype != MOSS_DT_F32 && x->dtype != MOSS_DT_F64)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "element type %s (floating point only)",
                     moss_dtype_name(x->dtype));
  for (i = 1; i < n->ninputs; i++) {
    const moss_value *v = moss_node_input(n, i);
    if (v && i != 4 && v->dtype != x->dtype)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input %d is %s, X is %s", i, moss_dtype_name(v->dtype),
                       moss_dtype_name(x->dtype));
  }
  if (!strcmp(dir, "forward")) r->dirs = 1;
  else if (!strcmp(dir, "reverse")) r->dirs = 1, r->reverse = 1;
  else if (!strcmp(dir, "bidirectional")) r->dirs = 2;
  else return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "direction '%s' (forward, reverse or bidirectional)", dir);
  r->layout = (int)moss_attr_int(n, "layout", 0);
  if (r->layout != 0 && r->layout != 1)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "layout %d (0 or 1)", r->layout);
  if (x->rank != 3) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "X must have rank 3, not %d", x->rank);
  r->T = x->dims[r->layout ? 1 : 0];
  r->B = x->dims[r->layout ? 0 : 1];
  r->I = x->dims[2];
  if (w->rank != 3) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "W must have rank 3, not %d", w->rank);
  r->H = hs >= 0 ? hs : w->dims[1] / r->gates;
  if (r->H <= 0 || (hs < 0 && w->dims[1] % r->gates))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "W's second dimension %lld is not %d x hidden_size",
                     (long long)w->dims[1], r->gates);
  if ((double)r->T * r->dirs * (4 * r->gates + 8) > MOSS_UNROLL_MAX_NODES)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "%lld time steps in %d direction%s: moss unrolls recurrent "
                     "layers, to %d nodes (about %d per step)", (long long)r->T, r->dirs, r->dirs > 1 ? "s" : "",
                     MOSS_UNROLL_MAX_NODES, 4 * r->gates + 8);
  if (r->T <= 0 || r->B <= 0 || r->I <= 0)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "an empty sequence, batch or input (X is %lldx%lldx%lld)", (long long)x->dims[0],
                     (long long)x->dims[1], (long long)x->dims[2]);
  want[0] = r->dirs, want[1] = r->gates * r->H, want[2] = r->I;
  MOSS_TRY(need_shape(ctx, n, 1, "W", 3, want));
  want[2] = r->H;
  MOSS_TRY(need_shape(ctx, n, 2, "R", 3, want));
  (void)rr;
  want[1] = 2 * r->gates * r->H;
  MOSS_TRY(need_shape(ctx, n, 3, "B", 2, want));
  want[0] = r->B;
  MOSS_TRY(need_shape(ctx, n, 4, "sequence_lens", 1, want));
  if (moss_node_input(n, 4)) {
    const moss_value *sl = n->inputs[4];
    int64_t b;
    if (sl->dtype != MOSS_DT_I32)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "sequence_lens is %s, not int32", moss_dtype_name(sl->dtype));
    if (sl->data)
      for (b = 0; b < r->B; b++) {
        int64_t len = moss_value_get_i64(sl, b);
        if (len < 0 || len > r->T)
          return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "sequence_lens[%lld] is %lld, outside [0, %lld]",
                           (long long)b, (long long)len, (long long)r->T);
      }
  }
  want[0] = r->layout ? r->B : r->dirs;
  want[1] = r->layout ? r->dirs : r->B;
  want[2] = r->H;
  MOSS_TRY(need_shape(ctx, n, 5, "initial_h", 3, want));
  if (r->kind == MOSS_RNN_KIND_LSTM) {
    MOSS_TRY(need_shape(ctx, n, 6, "initial_c", 3, want));
    want[0] = r->dirs;
    want[1] = 3 * r->H;
    MOSS_TRY(need_shape(ctx, n, 7, "P", 2, want));
    r->input_forget = (int)moss_attr_int(n, "input_forget", 0) != 0;
  }
  if (r->kind == MOSS_RNN_KIND_GRU) r->linear_before_reset = (int)moss_attr_int(n, "linear_before_reset", 0) != 0;
  if (moss_node_find_attr(n, "clip")) {
    r->has_clip = 1;
    r->clip = moss_attr_float(n, "clip", 0);
    if (!(r->clip > 0))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "clip %g (a positive threshold)", (double)r->clip);
  }
  return read_acts(ctx, n, r);
}

moss_status moss_infer_recurrent(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_rnn r;
  int64_t d[4];
  (void)g;
  MOSS_TRY(moss_rnn_read(ctx, n, &r));
  /* Y: [T, D, B, H], or [B, T, D, H] with layout 1 */
  d[0] = r.layout ? r.B : r.T;
  d[1] = r.layout ? r.T : r.dirs;
  d[2] = r.layout ? r.dirs : r.B;
  d[3] = r.H;
  moss_set_output(n, 0, n->inputs[0]->dtype, 4, d);
  /* Y_h and Y_c: [D, B, H], or [B, D, H] */
  d[0] = r.layout ? r.B : r.dirs;
  d[1] = r.layout ? r.dirs : r.B;
  d[2] = r.H;
  moss_set_output(n, 1, n->inputs[0]->dtype, 3, d);
  moss_set_output(n, 2, n->inputs[0]->dtype, 3, d);
  return MOSS_OK;
}

moss_status moss_eval_recurrent(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED; /* rewritten by passes/recurrent.c; its nodes fold */
}
