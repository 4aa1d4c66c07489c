/* fuse.c - epilogue fusion: a constant bias Add after Conv/Gemm/MatMul
 * becomes that node's bias (a 2-D MatMul becomes a Gemm), and a following
 * Relu/Clip/LeakyRelu/Sigmoid/Tanh becomes its fused activation, so the
 * backend writes each output once. Only float32, and only when the
 * intermediate value has no other reader and is not a graph output.
 *
 * After partitioning, moss_pass_fuse_residual moves a residual Add (a
 * Conv's output plus another tensor of its shape, a ResNet block's end)
 * and the activation after it into the Conv: its input 3; then
 * moss_pass_fuse_chains makes each chain of elementwise nodes one
 * MossFused node. */
#include <math.h>
#include <string.h>

#include "passes.h"

static moss_node *sole_producer(moss_value *v) {
  moss_node *p = v ? v->producer : NULL;
  if (!p || p->dead || v->nuses != 1 || v->output_index >= 0 || v->dtype != MOSS_DT_F32) return NULL;
  if (p->noutputs != 1) return NULL;
  return p;
}

/* Moves |n|'s output onto |p| and kills |n|. */
static void absorb(moss_node *p, moss_node *n) {
  p->outputs[0] = n->outputs[0];
  n->outputs[0]->producer = p;
  n->dead = 1;
}

static moss_status fuse_bias(moss_ctx *ctx, moss_graph *g, moss_node *add) {
  int side;
  for (side = 0; side < 2; side++) {
    moss_value *x = add->inputs[side], *b = add->inputs[1 - side];
    moss_node *p = sole_producer(x);
    int64_t c, ne;
    if (!p || p->act.kind || !b->data || b->dtype != MOSS_DT_F32) continue;
    ne = moss_value_numel(b);
    if (p->op == MOSS_OP_Conv && !moss_node_input(p, 2) && x->rank >= 3) {
      int k, ok = 1;
      c = x->dims[1];
      /* The bias must vary only along the channel axis. */
      if (ne != c || b->rank > x->rank) continue;
      for (k = 0; k < b->rank; k++) {
        int xk = x->rank - b->rank + k;
        if (b->dims[k] != 1 && xk != 1) ok = 0;
      }
      if (!ok) continue;
    } else if ((p->op == MOSS_OP_Gemm || p->op == MOSS_OP_MatMul) && !moss_node_input(p, 2) &&
               x->rank == 2 && p->inputs[0]->rank == 2 && p->inputs[1]->rank == 2) {
      c = x->dims[1];
      if (!(b->rank == 1 && b->dims[0] == c) && !(b->rank == 2 && b->dims[0] == 1 && b->dims[1] == c))
        continue;
      if (p->op == MOSS_OP_Gemm && moss_attr_float(p, "beta", 1.0f) != 1.0f) continue;
    } else {
      continue;
    }
    {
      int64_t d[1];
      moss_value *nb;
      d[0] = c;
      nb = moss_graph_add_constant(ctx, g, b->name, MOSS_DT_F32, 1, d, b->data);
      if (!nb) return moss_fail(ctx, MOSS_E_NOMEM, add, "fusion");
      if (p->op == MOSS_OP_MatMul) {
        p->op = MOSS_OP_Gemm;
        p->op_type = "Gemm";
      }
      p->inputs[2] = nb;
      p->ninputs = 3;
      absorb(p, add);
      return MOSS_OK;
    }
  }
  return MOSS_OK;
}

static moss_status fuse_act(moss_ctx *ctx, moss_node *n) {
  moss_node *p = sole_producer(n->inputs[0]);
  moss_act act;
  (void)ctx;
  if (!p || p->act.kind) return MOSS_OK;
  if (p->op != MOSS_OP_Conv && p->op != MOSS_OP_ConvTranspose && p->op != MOSS_OP_Gemm &&
      p->op != MOSS_OP_MatMul)
    return MOSS_OK;
  act.alpha = act.beta = 0;
  switch (n->op) {
  case MOSS_OP_Relu: act.kind = MOSS_ACT_RELU; break;
  case MOSS_OP_Sigmoid: act.kind = MOSS_ACT_SIGMOID; break;
  case MOSS_OP_Tanh: act.kind = MOSS_ACT_TANH; break;
  case MOSS_OP_LeakyRelu:
    act.kind = MOSS_ACT_LEAKY_RELU;
    act.alpha = moss_attr_float(n, "alpha", 0.01f);
    break;
  case MOSS_OP_Clip: {
    moss_value *lo = moss_node_input(n, 1), *hi = moss_node_input(n, 2);
    act.kind = MOSS_ACT_CLIP;
    act.alpha = moss_attr_float(n, "min", -INFINITY);
    act.beta = moss_attr_float(n, "max", INFINITY);
    if ((lo && !lo->data) || (hi && !hi->data)) return MOSS_OK;
    if (lo) act.alpha = ((const float *)lo->data)[0];
    if (hi) act.beta = ((const float *)hi->data)[0];
    break;
  }
  default: return MOSS_OK;
  }
  p->act = act;
  absorb(p, n);
  return MOSS_OK;
}


/* z = Add(y, r) with y a float Conv's only use: the Conv takes r as input 3
 * and writes z. r must be ready before the Conv runs (a graph input, a
 * constant, or the output of an earlier node) and everything must run on
 * one device of kernel lowerings, in one segment. In a ResNet block whose
 * shortcut is a Conv that runs after the block's last Conv, the shortcut's
 * Conv is the one that takes the Add. */
static moss_status fuse_residual(moss_ctx *ctx, moss_graph *g, moss_node *add, const unsigned char *devices) {
  int side;
  if (add->outputs[0]->dtype != MOSS_DT_F32 || !devices[add->device]) return MOSS_OK;
  for (side = 0; side < 2; side++) {
    moss_value *y = add->inputs[side], *r = add->inputs[1 - side], **in;
    moss_node *p = sole_producer(y);
    int k;
    if (!p || p->op != MOSS_OP_Conv || p->act.kind || p->ninputs > 3 || p->device != add->device ||
        p->segment != add->segment || r == y || r->dtype != MOSS_DT_F32 || !moss_value_same_shape(r, y) ||
        (r->producer && r->producer->id >= p->id))
      continue;
    in = moss_arena_alloc(g->arena, sizeof *in * 4, 16);
    if (!in) return moss_fail(ctx, MOSS_E_NOMEM, add, "fusion");
    for (k = 0; k < 3; k++) in[k] = moss_node_input(p, k);
    in[3] = r;
    p->inputs = in;
    p->ninputs = 4;
    absorb(p, add);
    return MOSS_OK;
  }
  return MOSS_OK;
}

moss_status moss_pass_fuse_residual(moss_ctx *ctx, moss_graph *g, const unsigned char *devices) {
  int i;
  moss_graph_compute_uses(g);
  for (i = 0; i < g->nnodes; i++) {
    moss_node *n = g->nodes[i], *p;
    if (n->dead) continue;
    if (n->op == MOSS_OP_Add) {
      MOSS_TRY(fuse_residual(ctx, g, n, devices));
      continue;
    }
    /* The activation after a residual Add just fused, on the same terms. */
    p = sole_producer(n->inputs[0]);
    if (p && p->op == MOSS_OP_Conv && p->ninputs == 4 && devices[n->device] && p->device == n->device &&
        p->segment == n->segment)
      MOSS_TRY(fuse_act(ctx, n));
  }
  moss_graph_compact(g);
  return MOSS_OK;
}

moss_status moss_pass_fuse(moss_ctx *ctx, moss_graph *g) {
  int i;
  moss_graph_compute_uses(g);
  for (i = 0; i < g->nnodes; i++) {
    moss_node *n = g->nodes[i];
    if (n->dead) continue;
    if (n->op == MOSS_OP_Add) MOSS_TRY(fuse_bias(ctx, g, n));
    else MOSS_TRY(fuse_act(ctx, n));
  }
  moss_graph_compact(g);
  return MOSS_OK;
}

/* ---- elementwise chains ------------------------------------------------------------- */

/* A chain's bounds: its inputs are kernel arguments (a GPU's bindings),
 * and its body one expression each in one loop. */
#define CHAIN_MAX_IN 8
#define CHAIN_MAX_BODY 16

/* The nodes a chain may hold: the unary and binary families, Cast and
 * Where (elementwise, one output element from one element of each input). */
static int chain_family(const moss_node *n) {
  const char *f = moss_op_infos[n->op].family;
  return !strcmp(f, "unary") || !strcmp(f, "binary") || n->op == MOSS_OP_Cast || n->op == MOSS_OP_Where;
}

/* Whether |n| (a live node, or a MossFused) may be a chain's link. */
static int chainable(const moss_node *n) {
  return (n->op == MOSS_OP_MossFused || chain_family(n)) && n->noutputs == 1 && n->outputs[0] &&
         !n->act.kind && !n->sparse && !n->native_half && moss_value_shape_known(n->outputs[0]);
}

/* The producer of |c|'s input |v| that may join |c|'s chain, or NULL. */
static moss_node *link_of(const moss_node *c, const moss_value *v, const unsigned char *devices) {
  moss_node *p = v ? v->producer : NULL;
  if (!p || p->dead || !chainable(p) || v->nuses != 1 || v->output_index >= 0 || p->outputs[0] != v ||
      p->device != c->device || p->segment != c->segment || !devices[p->device] ||
      !moss_value_same_shape(v, c->outputs[0]))
    return NULL;
  return p;
}

/* Appends |v| to |in| (|*nin| so far) unless it is there. */
static int add_input(moss_value **in, int *nin, moss_value *v) {
  int k;
  for (k = 0; k < *nin; k++)
    if (in[k] == v) return 1;
  if (*nin == CHAIN_MAX_IN) return 0;
  in[(*nin)++] = v;
  return 1;
}

/* |c| with the producers of its inputs that may join it, as one MossFused
 * node in |c|'s place, if the chain stays within bounds and the device's
 * backend takes it. */
static moss_status fuse_chain(moss_ctx *ctx, moss_graph *g, moss_node *c, const unsigned char *devices,
                              int (*takes)(void *user, const moss_node *n), void *user) {
  moss_node *links[3], *body[CHAIN_MAX_BODY], cand, *copy;
  moss_value *in[CHAIN_MAX_IN];
  int nlinks = 0, nbody = 0, nin = 0, a, k, fits = 1;
  if (!chain_family(c) || !chainable(c) || !devices[c->device]) return MOSS_OK;
  for (a = 0; a < c->ninputs && a < 3; a++) {
    moss_node *p = link_of(c, c->inputs[a], devices);
    links[a] = p;
    nlinks += p != NULL;
  }
  if (!nlinks || c->ninputs > 3) return MOSS_OK;
  /* The body: each link's nodes, in the order of c's inputs, then c; the
   * inputs: each link's, then c's own, each once. */
  for (a = 0; a < c->ninputs && fits; a++) {
    moss_node *p = links[a];
    if (!p) {
      if (c->inputs[a]) fits = add_input(in, &nin, c->inputs[a]);
      continue;
    }
    for (k = 0; k < p->ninputs && fits; k++)
      if (p->inputs[k]) fits = add_input(in, &nin, p->inputs[k]);
    if (nbody + (p->nbody ? p->nbody : 1) >= CHAIN_MAX_BODY) fits = 0;
    else if (p->nbody) {
      memcpy(body + nbody, p->body, sizeof *body * (size_t)p->nbody);
      nbody += p->nbody;
    } else {
      body[nbody++] = p;
    }
  }
  if (!fits) return MOSS_OK;
  copy = moss_graph_alloc(g, sizeof *copy);
  if (!copy) return moss_fail(ctx, MOSS_E_NOMEM, c, "chain fusion");
  *copy = *c;
  copy->dead = 1;
  body[nbody++] = copy;
  cand = *c;
  cand.op = MOSS_OP_MossFused;
  cand.op_type = "MossFused";
  cand.domain = "";
  cand.nattrs = 0;
  cand.attrs = NULL;
  cand.inputs = in;
  cand.ninputs = nin;
  cand.body = body;
  cand.nbody = nbody;
  if (!takes(user, &cand)) return MOSS_OK;
  cand.inputs = moss_graph_alloc(g, sizeof *in * (size_t)nin);
  cand.body = moss_graph_alloc(g, sizeof *body * (size_t)nbody);
  if (!cand.inputs || !cand.body) return moss_fail(ctx, MOSS_E_NOMEM, c, "chain fusion");
  memcpy(cand.inputs, in, sizeof *in * (size_t)nin);
  memcpy(cand.body, body, sizeof *body * (size_t)nbody);
  for (a = 0; a < c->ninputs; a++)
    if (links[a]) links[a]->dead = 1;
  *c = cand;
  return MOSS_OK;
}

moss_status moss_pass_fuse_chains(moss_ctx *ctx, moss_graph *g, const unsigned char *devices,
                                  int (*takes)(void *user, const moss_node *n), void *user) {
  int i;
  moss_graph_compute_uses(g);
  for (i = 0; i < g->nnodes; i++)
    if (!g->nodes[i]->dead) MOSS_TRY(fuse_chain(ctx, g, g->nodes[i], devices, takes, user));
  moss_graph_compact(g);
  return MOSS_OK;
}
