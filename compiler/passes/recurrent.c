/* recurrent.c - RNN, GRU and LSTM become the nodes of their time steps
 * (docs/recurrent.md). Inference (passes/infer.c) calls in here when it
 * has checked a recurrent node (ops/recurrent.c): the node is replaced by
 *
 *   - one Gemm per direction for the input projection of every time step
 *     at once, X [T*B, I] x W^T plus the biases that do not depend on the
 *     state (the fast matrix kernels see one large product);
 *   - per time step, a Gemm of the state with R^T whose C is that step's
 *     rows of the projection, a Split into the gates, and the gates'
 *     elementwise arithmetic and activations as ONNX writes them (the
 *     chains pass later fuses runs of them into one loop);
 *   - where sequence_lens can cut a sequence short, a Where per state that
 *     keeps the old state past the end and writes zeros to Y there;
 *   - Concat, Reshape, Transpose and Unsqueeze that assemble Y, Y_h, Y_c
 *     into the node's own output values, which keep their names.
 *
 * The new nodes go to the end of the node list, in dependency order, and
 * inference visits them there: they are inferred, checked and (where all
 * their inputs are constant) folded like any other node, and lowered by
 * the families that already exist, so every backend runs recurrent layers
 * with no code of its own. Sequences are unrolled: T is static, as every
 * shape in moss is (a model exported with a dynamic time axis is compiled
 * with --input-shape). */
#include <stdio.h>
#include <string.h>

#include "../ops/ops.h"
#include "passes.h"

typedef struct rb {
  moss_ctx *ctx;
  moss_graph *g;
  moss_node *n; /* the recurrent node */
  const moss_rnn *r;
  moss_dtype dt;
  int count;    /* names made so far */
  int failed;   /* out of memory */
  moss_value *one, *zero;
} rb;

/* A name for something new: the recurrent node's name, |what| and a counter. */
static void name(rb *b, const char *what, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s%d", b->n->name ? b->n->name : "rnn", what, b->count++);
}

static moss_attr *attr(moss_node *m, const char *nm, moss_attr_type type) {
  moss_attr *a;
  if (!m) return NULL;
  a = &m->attrs[m->nattrs++];
  a->name = nm;
  a->type = type;
  return a;
}

/* A node |op| reading |in|, with |nout| outputs: |out0| as the first when
 * given (it becomes that value's producer), new values otherwise. Room
 * for four attributes. */
static moss_node *node(rb *b, const char *op, const char *what, int nin, moss_value *const *in, int nout,
                       moss_value *out0) {
  char nm[512], vn[560];
  moss_node *m;
  int k;
  if (b->failed) return NULL;
  for (k = 0; k < nin; k++)
    if (!in[k]) return NULL;
  name(b, what, nm, sizeof nm);
  m = moss_graph_add_node(b->ctx, b->g, op, nm, nin, nout);
  if (!m || !(m->attrs = moss_graph_alloc(b->g, 4 * sizeof *m->attrs))) {
    b->failed = 1;
    return NULL;
  }
  memset(m->attrs, 0, 4 * sizeof *m->attrs);
  m->opset = 17; /* the forms built here: Slice, Unsqueeze and Reshape with inputs */
  for (k = 0; k < nin; k++) m->inputs[k] = in[k];
  for (k = 0; k < nout; k++) {
    moss_value *v = k == 0 ? out0 : NULL;
    if (!v) {
      if (k) snprintf(vn, sizeof vn, "%s_%d", nm, k);
      else snprintf(vn, sizeof vn, "%s", nm);
      if (!(v = moss_graph_add_value(b->ctx, b->g, vn))) {
        b->failed = 1;
        return NULL;
      }
    }
    m->outputs[k] = v;
    v->producer = m;
  }
  return m;
}

static moss_value *out(moss_node *m) { return m ? m->outputs[0] : NULL; }

static moss_value *constant(rb *b, moss_dtype dt, int rank, const int64_t *dims, const void *data) {
  char nm[512];
  moss_value *v;
  if (b->failed) return NULL;
  name(b, "c", nm, sizeof nm);
  if (!(v = moss_graph_add_constant(b->ctx, b->g, nm, dt, rank, dims, data))) b->failed = 1;
  return v;
}

/* A scalar of the node's float type. */
static moss_value *scalar(rb *b, double x) {
  moss_value *v = constant(b, b->dt, 0, NULL, NULL);
  if (v) moss_store_f64(b->dt, v->data, 0, x);
  return v;
}

static moss_value *ints(rb *b, int cnt, const int64_t *vals) {
  int64_t d = cnt;
  return constant(b, MOSS_DT_I64, 1, &d, vals);
}

static moss_value *op1(rb *b, const char *op, moss_value *x) { return out(node(b, op, op, 1, &x, 1, NULL)); }

static moss_value *op2(rb *b, const char *op, moss_value *x, moss_value *y) {
  moss_value *in[2];
  in[0] = x;
  in[1] = y;
  return out(node(b, op, op, 2, in, 1, NULL));
}

/* Gemm(a, w^T [+ c]). */
static moss_value *gemm(rb *b, moss_value *a, moss_value *w, moss_value *c) {
  moss_value *in[3];
  moss_node *m;
  in[0] = a;
  in[1] = w;
  in[2] = c;
  m = node(b, "Gemm", "Gemm", c ? 3 : 2, in, 1, NULL);
  if (m) attr(m, "transB", MOSS_ATTR_INT)->i = 1;
  return out(m);
}

/* x[start:end] along |axis|. */
static moss_value *slice(rb *b, moss_value *x, int64_t axis, int64_t start, int64_t end) {
  moss_value *in[4];
  in[0] = x;
  in[1] = ints(b, 1, &start);
  in[2] = ints(b, 1, &end);
  in[3] = ints(b, 1, &axis);
  return out(node(b, "Slice", "Slice", 4, in, 1, NULL));
}

/* x[idx] along |axis| (the axis dropped). */
static moss_value *pick(rb *b, moss_value *x, int64_t axis, int64_t idx) {
  moss_value *in[2];
  moss_node *m;
  in[0] = x;
  in[1] = constant(b, MOSS_DT_I64, 0, NULL, &idx);
  m = node(b, "Gather", "Gather", 2, in, 1, NULL);
  if (m) attr(m, "axis", MOSS_ATTR_INT)->i = axis;
  return out(m);
}

static moss_value *unsqueeze(rb *b, moss_value *x, int64_t axis, moss_value *into) {
  moss_value *in[2];
  in[0] = x;
  in[1] = ints(b, 1, &axis);
  return out(node(b, "Unsqueeze", "Unsqueeze", 2, in, 1, into));
}

static moss_value *reshape(rb *b, moss_value *x, int rank, const int64_t *dims, moss_value *into) {
  moss_value *in[2];
  in[0] = x;
  in[1] = ints(b, rank, dims);
  return out(node(b, "Reshape", "Reshape", 2, in, 1, into));
}

static moss_value *transpose(rb *b, moss_value *x, int rank, const int64_t *perm, moss_value *into) {
  moss_node *m = node(b, "Transpose", "Transpose", 1, &x, 1, into);
  moss_attr *a = attr(m, "perm", MOSS_ATTR_INTS);
  if (a && !(a->ints = moss_graph_alloc(b->g, sizeof(int64_t) * (size_t)rank))) b->failed = 1;
  if (!a || b->failed) return NULL;
  memcpy(a->ints, perm, sizeof(int64_t) * (size_t)rank);
  a->n = rank;
  return out(m);
}

static moss_value *concat(rb *b, int nin, moss_value *const *in, int64_t axis, moss_value *into) {
  moss_node *m = node(b, "Concat", "Concat", nin, in, 1, into);
  if (m) attr(m, "axis", MOSS_ATTR_INT)->i = axis;
  return out(m);
}

/* Concat of any number of values, as a tree of Concats of at most
 * CONCAT_MAX inputs each (a backend's kernel takes a bounded number of
 * buffers: the LLVM backend 63). */
#define CONCAT_MAX 32
static moss_value *concat_many(rb *b, int nin, moss_value **in, int64_t axis, moss_value *into) {
  int k, m = 0;
  if (nin <= CONCAT_MAX) return concat(b, nin, in, axis, into);
  for (k = 0; k < nin; k += CONCAT_MAX) /* in place: in[m] is made from in[k..] with k >= m */
    in[m++] = concat(b, nin - k < CONCAT_MAX ? nin - k : CONCAT_MAX, in + k, axis, NULL);
  return concat_many(b, m, in, axis, into);
}

/* |x| cut along axis 1 into |cnt| parts of |sizes| columns, into |parts|. */
static void split(rb *b, moss_value *x, int cnt, const int64_t *sizes, moss_value **parts) {
  moss_value *in[2];
  moss_node *m;
  int k;
  in[0] = x;
  in[1] = ints(b, cnt, sizes);
  m = node(b, "Split", "Split", 2, in, cnt, NULL);
  if (m) attr(m, "axis", MOSS_ATTR_INT)->i = 1;
  for (k = 0; k < cnt; k++) parts[k] = m ? m->outputs[k] : NULL;
}

static moss_value *zeros(rb *b, int rank, const int64_t *dims) { return constant(b, b->dt, rank, dims, NULL); }

/* A gate's input clipped to [-clip, clip] when the node asks for it. */
static moss_value *clip(rb *b, moss_value *x) {
  moss_node *m;
  if (!b->r->has_clip) return x;
  m = node(b, "Clip", "Clip", 1, &x, 1, NULL);
  if (m) {
    attr(m, "min", MOSS_ATTR_FLOAT)->f = -b->r->clip;
    attr(m, "max", MOSS_ATTR_FLOAT)->f = b->r->clip;
  }
  return out(m);
}

/* Activation |a| of the clipped |x|, as the ONNX operators of its name. */
static moss_value *act(rb *b, const moss_rnn_act *a, moss_value *x) {
  static const char *const plain[] = {"Relu", "Tanh", "Sigmoid", NULL, "LeakyRelu", "ThresholdedRelu",
                                      NULL,   "HardSigmoid", "Elu", "Softsign", "Softplus"};
  moss_node *m;
  x = clip(b, x);
  switch (a->kind) {
  case MOSS_RNN_AFFINE: return op2(b, "Add", op2(b, "Mul", x, scalar(b, a->alpha)), scalar(b, a->beta));
  case MOSS_RNN_SCALED_TANH:
    return op2(b, "Mul", scalar(b, a->alpha), op1(b, "Tanh", op2(b, "Mul", x, scalar(b, a->beta))));
  default: break;
  }
  m = node(b, plain[a->kind], plain[a->kind], 1, &x, 1, NULL);
  switch (a->kind) {
  case MOSS_RNN_LEAKY_RELU:
  case MOSS_RNN_THRESHOLDED_RELU:
  case MOSS_RNN_ELU:
    if (m) attr(m, "alpha", MOSS_ATTR_FLOAT)->f = a->alpha;
    break;
  case MOSS_RNN_HARD_SIGMOID:
    if (m) {
      attr(m, "alpha", MOSS_ATTR_FLOAT)->f = a->alpha;
      attr(m, "beta", MOSS_ATTR_FLOAT)->f = a->beta;
    }
    break;
  default: break;
  }
  return out(m);
}

/* The state that depends on nothing but the direction |d|. */
typedef struct dir {
  moss_value *w, *r;   /* [G*H, I], [G*H, H] */
  moss_value *r_zr, *r_h; /* GRU: R's rows for z and r, and for h */
  moss_value *rb_h;    /* GRU with linear_before_reset: Rbh, or NULL */
  moss_value *p[3];    /* LSTM peepholes i, o, f, or NULL */
  moss_value *xp;      /* the input projection [T*B, G*H] */
  moss_value *h, *c;   /* the state */
} dir;

/* W, R, the biases and the peepholes of direction |d|, and the projection of |x2|. */
static void direction(rb *b, int d, moss_value *x2, dir *s) {
  const moss_rnn *r = b->r;
  moss_node *n = b->n;
  moss_value *bias = NULL, *bin = moss_node_input(n, 3), *p = n->ninputs > 7 ? moss_node_input(n, 7) : NULL;
  moss_value *ih = moss_node_input(n, 5), *ic = n->ninputs > 6 ? moss_node_input(n, 6) : NULL;
  int64_t H = r->H, GH = r->gates * H, bh[2];
  int k;
  memset(s, 0, sizeof *s);
  s->w = pick(b, n->inputs[1], 0, d);
  s->r = pick(b, n->inputs[2], 0, d);
  if (r->kind == MOSS_RNN_KIND_GRU) {
    s->r_zr = slice(b, s->r, 0, 0, 2 * H);
    s->r_h = slice(b, s->r, 0, 2 * H, GH);
  }
  if (bin) {
    moss_value *bd = pick(b, bin, 0, d);
    if (r->kind == MOSS_RNN_KIND_GRU) {
      moss_value *parts[2], *wbh = slice(b, bd, 0, 2 * H, GH), *rbh = slice(b, bd, 0, GH + 2 * H, 2 * GH);
      parts[0] = op2(b, "Add", slice(b, bd, 0, 0, 2 * H), slice(b, bd, 0, GH, GH + 2 * H));
      parts[1] = r->linear_before_reset ? wbh : op2(b, "Add", wbh, rbh);
      if (r->linear_before_reset) s->rb_h = rbh;
      bias = concat(b, 2, parts, 0, NULL);
    } else {
      bias = op2(b, "Add", slice(b, bd, 0, 0, GH), slice(b, bd, 0, GH, 2 * GH));
    }
  }
  if (p) {
    moss_value *pd = pick(b, p, 0, d);
    for (k = 0; k < 3; k++) s->p[k] = slice(b, pd, 0, k * H, (k + 1) * H);
  }
  s->xp = gemm(b, x2, s->w, bias);
  bh[0] = r->B;
  bh[1] = H;
  s->h = ih ? pick(b, ih, r->layout ? 1 : 0, d) : zeros(b, 2, bh);
  if (r->kind == MOSS_RNN_KIND_LSTM) s->c = ic ? pick(b, ic, r->layout ? 1 : 0, d) : zeros(b, 2, bh);
}

/* One time step of direction |d| from the projection rows |xt| [B, G*H]:
 * the new state in s->h (and s->c); returns what Y gets. */
static moss_value *step(rb *b, int d, dir *s, moss_value *xt, moss_value *mask) {
  const moss_rnn *r = b->r;
  const moss_rnn_act *a = r->act[d];
  moss_value *h = NULL, *c = NULL, *g[4];
  int64_t H = r->H, sz[4];
  int k;
  switch (r->kind) {
  case MOSS_RNN_KIND_RNN: h = act(b, &a[0], gemm(b, s->h, s->r, xt)); break;
  case MOSS_RNN_KIND_LSTM: {
    moss_value *i, *f, *o;
    for (k = 0; k < 4; k++) sz[k] = H;
    split(b, gemm(b, s->h, s->r, xt), 4, sz, g); /* i, o, f, c */
    if (s->p[0]) {
      g[0] = op2(b, "Add", g[0], op2(b, "Mul", s->p[0], s->c));
      g[2] = op2(b, "Add", g[2], op2(b, "Mul", s->p[2], s->c));
    }
    i = act(b, &a[0], g[0]);
    f = r->input_forget ? op2(b, "Sub", b->one, i) : act(b, &a[0], g[2]);
    c = op2(b, "Add", op2(b, "Mul", f, s->c), op2(b, "Mul", i, act(b, &a[1], g[3])));
    if (s->p[0]) g[1] = op2(b, "Add", g[1], op2(b, "Mul", s->p[1], c));
    o = act(b, &a[0], g[1]);
    h = op2(b, "Mul", o, act(b, &a[2], c));
    break;
  }
  case MOSS_RNN_KIND_GRU: {
    moss_value *x[2], *z, *rr, *hh;
    sz[0] = 2 * H;
    sz[1] = H;
    split(b, xt, 2, sz, x); /* z and r; h */
    sz[0] = H;
    split(b, gemm(b, s->h, s->r_zr, x[0]), 2, sz, g);
    z = act(b, &a[0], g[0]);
    rr = act(b, &a[0], g[1]);
    if (r->linear_before_reset)
      hh = act(b, &a[1], op2(b, "Add", x[1], op2(b, "Mul", rr, gemm(b, s->h, s->r_h, s->rb_h))));
    else
      hh = act(b, &a[1], gemm(b, op2(b, "Mul", rr, s->h), s->r_h, x[1]));
    h = op2(b, "Add", op2(b, "Mul", op2(b, "Sub", b->one, z), hh), op2(b, "Mul", z, s->h));
    break;
  }
  }
  if (mask) {
    moss_value *in[3];
    in[0] = mask;
    in[1] = h;
    in[2] = s->h;
    h = out(node(b, "Where", "keep_h", 3, in, 1, NULL));
    if (c) {
      in[1] = c;
      in[2] = s->c;
      c = out(node(b, "Where", "keep_c", 3, in, 1, NULL));
    }
    s->h = h;
    if (c) s->c = c;
    in[1] = h;
    in[2] = b->zero;
    return out(node(b, "Where", "y", 3, in, 1, NULL));
  }
  s->h = h;
  if (c) s->c = c;
  return h;
}

/* The directions' final states [B, H] stacked into |into| ([D, B, H], or
 * [B, D, H] with layout 1). */
static void stack(rb *b, moss_value *const *st, moss_value *into) {
  int64_t axis = b->r->layout ? 1 : 0;
  moss_value *u[2];
  if (b->r->dirs == 1) {
    unsqueeze(b, st[0], axis, into);
    return;
  }
  u[0] = unsqueeze(b, st[0], axis, NULL);
  u[1] = unsqueeze(b, st[1], axis, NULL);
  concat(b, 2, u, axis, into);
}

/* Whether sequence_lens may end a sequence before T: absent, or a
 * constant of T everywhere, it cannot. */
static int masked(const moss_rnn *r, const moss_value *sl) {
  int64_t i;
  if (!sl) return 0;
  if (!sl->data) return 1;
  for (i = 0; i < r->B; i++)
    if (moss_value_get_i64(sl, i) != r->T) return 1;
  return 0;
}

moss_status moss_recurrent_expand(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_rnn r;
  rb b;
  dir s[2];
  moss_value *x, *x2, *sl = moss_node_input(n, 4), **ys = NULL, **mask = NULL, *hs[2], *cs[2], *yd[2];
  int64_t T, B, H, dims[4], t;
  size_t cap;
  int d;
  MOSS_TRY(moss_rnn_read(ctx, n, &r));
  T = r.T;
  B = r.B;
  H = r.H;
  memset(&b, 0, sizeof b);
  b.ctx = ctx;
  b.g = g;
  b.n = n;
  b.r = &r;
  b.dt = n->inputs[0]->dtype;
  cap = sizeof(moss_value *) * (size_t)T;
  ys = moss_alloc(ctx, cap * 2);
  mask = moss_alloc(ctx, cap);
  if (!ys || !mask) {
    moss_free(ctx, ys, cap * 2);
    moss_free(ctx, mask, cap);
    return moss_fail(ctx, MOSS_E_NOMEM, n, "recurrent steps");
  }
  memset(mask, 0, cap);
  b.one = scalar(&b, 1.0);
  b.zero = scalar(&b, 0.0);
  /* X as [T*B, I], time-major */
  x = n->inputs[0];
  if (r.layout) {
    dims[0] = 1, dims[1] = 0, dims[2] = 2;
    x = transpose(&b, x, 3, dims, NULL);
  }
  dims[0] = T * B;
  dims[1] = r.I;
  x2 = reshape(&b, x, 2, dims, NULL);
  if (masked(&r, sl)) /* step t runs where t < sequence_lens: [B, 1] */
    for (t = 0; t < T; t++) {
      int32_t ti = (int32_t)t;
      mask[t] = unsqueeze(&b, op2(&b, "Less", constant(&b, MOSS_DT_I32, 0, NULL, &ti), sl), 1, NULL);
    }
  for (d = 0; d < r.dirs; d++) {
    int back = r.reverse || d == 1;
    direction(&b, d, x2, &s[d]);
    for (t = 0; t < T && !b.failed; t++) {
      int64_t at = back ? T - 1 - t : t;
      ys[d * T + at] = step(&b, d, &s[d], slice(&b, s[d].xp, 0, at * B, (at + 1) * B), mask[at]);
    }
    hs[d] = s[d].h;
    cs[d] = s[d].c;
  }
  if (n->noutputs > 0 && n->outputs[0]) { /* Y: [T, D, B, H], or [B, T, D, H] */
    moss_value *y = n->outputs[0], *all;
    for (d = 0; d < r.dirs; d++) {
      dims[0] = T, dims[1] = 1, dims[2] = B, dims[3] = H;
      yd[d] = reshape(&b, concat_many(&b, (int)T, ys + d * T, 0, NULL), 4, dims,
                      r.dirs == 1 && !r.layout ? y : NULL);
    }
    all = r.dirs == 1 ? yd[0] : concat(&b, 2, yd, 1, r.layout ? NULL : y);
    if (r.layout) {
      dims[0] = 2, dims[1] = 0, dims[2] = 1, dims[3] = 3;
      transpose(&b, all, 4, dims, y);
    }
  }
  if (n->noutputs > 1 && n->outputs[1]) stack(&b, hs, n->outputs[1]);
  if (n->noutputs > 2 && n->outputs[2]) stack(&b, cs, n->outputs[2]);
  moss_free(ctx, ys, cap * 2);
  moss_free(ctx, mask, cap);
  if (b.failed) return moss_fail(ctx, MOSS_E_NOMEM, n, "recurrent steps");
  n->dead = 1;
  return MOSS_OK;
}
