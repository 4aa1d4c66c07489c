/* lower_fused.c - MossFused, an elementwise chain (compiler/passes/fuse.c):
 * one loop over the output, its inputs broadcast to it as a binary node's
 * are, and in its body each chained node's element expression in order
 * (moss_lower_unary_expr, moss_lower_binary_expr, moss_lower_cast_expr,
 * Where's select), each result cast to that
 * node's output type and held in a local, so a value is computed once and
 * rounded as the node apart would round it. Every body node's output has
 * the chain's shape (the pass's rule), so a body value needs no index of
 * its own; only the chain's output is stored. */
#include <string.h>

#include "lower.h"

moss_status moss_lower_fused(moss_kb *b, const moss_node *n) {
  const moss_value *y = n->outputs[0];
  int nin = n->ninputs, nval = n->ninputs + n->nbody, loops, j, k;
  int *rk = moss_arena_alloc(b->arena, sizeof *rk * (size_t)nin, 16);
  int64_t(*dims)[MOSS_MAX_RANK] = moss_arena_alloc(b->arena, sizeof *dims * (size_t)nin, 16);
  moss_kx **idx = moss_arena_alloc(b->arena, sizeof *idx * (size_t)nin, 16), *o, *e = NULL;
  const moss_value **vals = moss_arena_alloc(b->arena, sizeof *vals * (size_t)nval, 16);
  moss_kx **xs = moss_arena_alloc(b->arena, sizeof *xs * (size_t)nval, 16);
  if (!rk || !dims || !idx || !vals || !xs) return moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
  if (n->nbody < 1) return moss_kb_fail(b, MOSS_E_INTERNAL, "MossFused without a body");
  for (j = 0; j < nin; j++) {
    rk[j] = n->inputs[j]->rank;
    memcpy(dims[j], n->inputs[j]->dims, sizeof dims[j]);
  }
  loops = moss_k_bcast_open(b, y->rank, y->dims, nin, rk, (const int64_t(*)[MOSS_MAX_RANK])dims, &o, idx);
  for (j = 0; j < nin; j++) {
    vals[j] = n->inputs[j];
    xs[j] = moss_k_load(b, moss_k_input(b, j), idx[j]);
  }
  for (k = 0; k < n->nbody && b->st == MOSS_OK; k++) {
    const moss_node *m = n->body[k];
    moss_kx *in[3] = {NULL, NULL, NULL};
    int a, v;
    for (a = 0; a < m->ninputs && a < 3; a++) {
      if (!m->inputs[a]) continue;
      for (v = 0; v < nin + k && vals[v] != m->inputs[a]; v++) {}
      if (v == nin + k) return moss_kb_fail(b, MOSS_E_INTERNAL, "MossFused: an operand of '%s' is unbound", m->name);
      in[a] = xs[v];
    }
    if (m->op == MOSS_OP_Cast && in[0])
      MOSS_TRY(moss_lower_cast_expr(b, m, in[0], &e));
    else if (m->op == MOSS_OP_Where && in[0] && in[1] && in[2])
      e = moss_k_select(b, in[0], in[1], in[2]);
    else if (!strcmp(moss_op_infos[m->op].family, "unary"))
      MOSS_TRY(moss_lower_unary_expr(b, m, in, &e));
    else if (!strcmp(moss_op_infos[m->op].family, "binary") && in[0] && in[1])
      MOSS_TRY(moss_lower_binary_expr(b, m, in[0], in[1], &e));
    else
      return moss_kb_fail(b, MOSS_E_INTERNAL, "MossFused: '%s' (%s) is not elementwise", m->name, m->op_type);
    vals[nin + k] = m->outputs[0];
    xs[nin + k] = k + 1 < n->nbody ? moss_k_let(b, "t", moss_k_cast(b, moss_dtype_storage(m->outputs[0]->dtype), e)) : e;
  }
  moss_k_store(b, moss_k_output(b, 0), o, moss_k_cast(b, moss_dtype_storage(y->dtype), e));
  while (loops--) moss_k_end(b);
  return b->st;
}
