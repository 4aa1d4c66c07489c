/* bn_fold.c - BatchNormalization (inference) right after a Conv or Gemm
 * whose weights are constant becomes new weights and bias for that node:
 * s = scale / sqrt(var + eps), W' = W * s per output channel,
 * B' = (B - mean) * s + beta. The original weights are left untouched
 * (they may be shared); new constants are made. */
#include <math.h>

#include "passes.h"

static int const_f32(const moss_value *v) { return v && v->data && v->dtype == MOSS_DT_F32; }

static moss_status fold_one(moss_ctx *ctx, moss_graph *g, moss_node *bn, int *out_done) {
  moss_value *x = bn->inputs[0], *wv, *bv;
  moss_node *p = x->producer;
  const float *scale, *beta, *mean, *var, *w, *b;
  float *nw, *nb;
  double eps = moss_attr_float(bn, "epsilon", 1e-5f);
  int64_t c, oc, per, i, nwel;
  int transb = 0, k;
  *out_done = 0;
  if (!p || p->dead || x->nuses != 1 || x->output_index >= 0 || p->act.kind) return MOSS_OK;
  if (bn->noutputs > 1)
    for (k = 1; k < bn->noutputs; k++)
      if (bn->outputs[k]) return MOSS_OK;
  for (k = 1; k < 5; k++)
    if (!const_f32(bn->inputs[k])) return MOSS_OK;
  if (x->dtype != MOSS_DT_F32 || x->rank < 2) return MOSS_OK;
  wv = p->inputs[1];
  bv = moss_node_input(p, 2);
  if (!const_f32(wv) || (bv && !const_f32(bv))) return MOSS_OK;
  c = x->dims[1];
  if (p->op == MOSS_OP_Conv) {
    if (wv->dims[0] != c) return MOSS_OK;
  } else if (p->op == MOSS_OP_Gemm) {
    if (moss_attr_float(p, "alpha", 1.0f) != 1.0f || moss_attr_float(p, "beta", 1.0f) != 1.0f)
      return MOSS_OK;
    if (x->rank != 2 || wv->rank != 2 || (bv && !(bv->rank == 1 && bv->dims[0] == c)))
      return MOSS_OK;
    transb = (int)moss_attr_int(p, "transB", 0);
    if ((transb ? wv->dims[0] : wv->dims[1]) != c) return MOSS_OK;
  } else {
    return MOSS_OK;
  }
  scale = bn->inputs[1]->data;
  beta = bn->inputs[2]->data;
  mean = bn->inputs[3]->data;
  var = bn->inputs[4]->data;
  for (k = 1; k < 5; k++)
    if (moss_value_numel(bn->inputs[k]) != c) return MOSS_OK;
  w = wv->data;
  b = bv ? bv->data : NULL;
  nwel = moss_value_numel(wv);
  {
    moss_value *w2 = moss_graph_add_constant(ctx, g, NULL, MOSS_DT_F32, wv->rank, wv->dims, w);
    int64_t bd[1];
    moss_value *b2;
    bd[0] = c;
    b2 = moss_graph_add_constant(ctx, g, NULL, MOSS_DT_F32, 1, bd, NULL);
    if (!w2 || !b2) return moss_fail(ctx, MOSS_E_NOMEM, bn, "folding");
    nw = w2->data;
    nb = b2->data;
    per = nwel / c;
    for (oc = 0; oc < c; oc++) {
      double s = scale[oc] / sqrt((double)var[oc] + eps);
      nb[oc] = (float)(((b ? b[oc] : 0.0) - mean[oc]) * s + beta[oc]);
      for (i = 0; i < per; i++) {
        int64_t idx = p->op == MOSS_OP_Conv || transb ? oc * per + i : i * c + oc;
        nw[idx] = (float)(w[idx] * s);
      }
    }
    p->inputs[1] = w2;
    p->inputs[2] = b2;
    if (p->ninputs < 3) p->ninputs = 3;
  }
  p->outputs[0] = bn->outputs[0];
  bn->outputs[0]->producer = p;
  bn->dead = 1;
  *out_done = 1;
  return MOSS_OK;
}

moss_status moss_pass_bn_fold(moss_ctx *ctx, moss_graph *g) {
  int i, done;
  moss_graph_compute_uses(g);
  for (i = 0; i < g->nnodes; i++)
    if (g->nodes[i]->op == MOSS_OP_BatchNormalization && !g->nodes[i]->dead)
      MOSS_TRY(fold_one(ctx, g, g->nodes[i], &done));
  moss_graph_compact(g);
  return MOSS_OK;
}
