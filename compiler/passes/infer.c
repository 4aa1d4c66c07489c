/* infer.c - shape and dtype inference, node by node in topological order,
 * folding constants as it goes (a Reshape's shape often comes out of
 * Shape -> Gather -> Concat). A node that cannot be compiled is reported
 * and inference continues past it, so every unsupported node is listed. */
#include <stdio.h>
#include <string.h>

#include "../ops/ops.h"
#include "passes.h"

/* A value whose shape is fixed (no negative dimension) but whose size in
 * bytes, or one of its strides, does not fit in int64_t: an invalid model
 * (a huge --input-shape, pads or a Reshape target), refused before anything
 * is sized or allocated from it. */
static int too_large(const moss_value *v) {
  int i;
  if (!v || v->rank < 0) return 0;
  for (i = 0; i < v->rank; i++)
    if (v->dims[i] < 0) return 0;
  return moss_value_nbytes_checked(v) < 0;
}

static moss_status fail_too_large(moss_ctx *ctx, const moss_node *n, const char *what,
                                  const moss_value *v) {
  char ty[256];
  return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%s '%s' is %s: its size in bytes overflows "
                   "64 bits", what, v->name ? v->name : "", moss_value_type_str(v, ty, sizeof ty));
}

/* "float32[1,n,4]": a declared type, its fixed dimensions as written (even
 * negative), its open ones by name. */
static const char *decl_str(const moss_value *d, char *buf, size_t cap) {
  size_t n;
  int i;
  snprintf(buf, cap, "%s[", d->dtype ? moss_dtype_name(d->dtype) : "");
  for (i = 0; i < d->rank; i++) {
    n = strlen(buf);
    if (d->dim_param[i]) snprintf(buf + n, cap - n, "%s%s", i ? "," : "", d->dim_param[i]);
    else snprintf(buf + n, cap - n, "%s%lld", i ? "," : "", (long long)d->dims[i]);
  }
  n = strlen(buf);
  snprintf(buf + n, cap - n, d->rank < 0 ? "?]" : "]");
  return buf;
}

/* Each graph output against the type the model declares for it: an element
 * type or a fixed dimension that inference contradicts is an invalid model
 * (open dimensions and missing shapes are not checked, nor a bounded axis
 * declared within its bound). All are reported. */
static moss_status check_declared(moss_ctx *ctx, const moss_graph *g) {
  moss_status st = MOSS_OK;
  int i, k;
  for (i = 0; g->output_decl && i < g->noutputs; i++) {
    const moss_value *d = g->output_decl[i], *v = g->outputs[i];
    int bad;
    char want[512], got[512];
    if (!d) continue;
    bad = d->dtype != MOSS_DT_UNDEF && d->dtype != v->dtype;
    if (d->rank >= 0) {
      bad |= d->rank != v->rank;
      for (k = 0; k < d->rank && k < v->rank; k++) /* a bounded axis: only the run knows */
        bad |= !d->dim_param[k] && d->dims[k] != v->dims[k] &&
               !(k == v->bounded - 1 && d->dims[k] >= 0 && d->dims[k] <= v->dims[k]);
    }
    if (bad)
      st = moss_fail(ctx, MOSS_E_INVALID_MODEL, v->producer,
                     "graph output '%s' is declared %s, but inference gives %s", d->name,
                     decl_str(d, want, sizeof want), moss_value_type_str(v, got, sizeof got));
  }
  return st;
}

moss_status moss_pass_infer(moss_ctx *ctx, moss_graph *g) {
  int i, j, failed = 0, nv = g->nvalues, grown = 0;
  moss_status first = MOSS_OK;
  unsigned char *poisoned; /* per value id: its producer failed; grows with the graph */
  size_t pcap = (size_t)nv + 1;
  moss_value **as_f32; /* passes/half.c: each 16-bit float value's Cast to float32 */
  for (i = 0; i < g->ninputs; i++)
    if (too_large(g->inputs[i])) first = fail_too_large(ctx, NULL, "graph input", g->inputs[i]);
  if (first != MOSS_OK) return first;
  poisoned = moss_alloc(ctx, pcap);
  as_f32 = moss_alloc(ctx, sizeof *as_f32 * pcap);
  if (!poisoned || !as_f32) {
    moss_free(ctx, poisoned, pcap);
    moss_free(ctx, as_f32, sizeof *as_f32 * pcap);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "inference");
  }
  /* The Casts passes/half.c adds and the time steps of passes/recurrent.c
   * go to the end of the list, and the nodes passes/control.c makes right
   * after their If, Loop or Scan; inference visits them there. */
  for (i = 0; i < g->nnodes; i++) {
    moss_node *n = g->nodes[i];
    int skip = 0, folded;
    moss_dtype half = MOSS_DT_UNDEF;
    moss_status st;
    if (n->dead) continue; /* folded on the way (a Cast of a constant, passes/half.c) */
    if ((size_t)g->nvalues + 1 > pcap) { /* values made on the way (a sequence's elements, a
                                           * control body's copies): room to poison them too,
                                           * and to give a float16 one its Cast */
      size_t ncap = (size_t)g->nvalues * 2 + 1;
      unsigned char *p = moss_realloc(ctx, poisoned, pcap, ncap);
      moss_value **a = p ? moss_realloc(ctx, as_f32, sizeof *as_f32 * pcap, sizeof *as_f32 * ncap) : NULL;
      if (!a) {
        moss_free(ctx, p ? p : poisoned, p ? ncap : pcap);
        moss_free(ctx, as_f32, sizeof *as_f32 * pcap);
        return moss_fail(ctx, MOSS_E_NOMEM, NULL, "inference");
      }
      memset(p + pcap, 0, ncap - pcap);
      memset(a + pcap, 0, sizeof *a * (ncap - pcap));
      poisoned = p;
      as_f32 = a;
      pcap = ncap;
    }
    for (j = 0; j < n->ninputs; j++)
      if (n->inputs[j] && n->inputs[j]->id >= 0 && (size_t)n->inputs[j]->id < pcap && poisoned[n->inputs[j]->id])
        skip = 1;
    if (!skip) {
      int handled = 0;
      st = moss_sequence_resolve(ctx, g, n, &handled); /* ops/sequence.c: lists */
      if (st == MOSS_OK && handled) {
        grown = 1;
        continue;
      }
      if (st == MOSS_OK) st = moss_half_inputs(ctx, g, n, as_f32, (int)pcap, &half);
      grown |= half != MOSS_DT_UNDEF;
      if (st == MOSS_OK) st = moss_infer_table[n->op](ctx, g, n);
      if (st == MOSS_OK) st = moss_bound_carry(ctx, n);
      if (st == MOSS_OK && half != MOSS_DT_UNDEF) st = moss_half_outputs(ctx, g, n, half);
      if (st == MOSS_OK && (n->op == MOSS_OP_If || n->op == MOSS_OP_Loop || n->op == MOSS_OP_Scan ||
                            n->op == MOSS_OP_SequenceMap)) {
        st = moss_control_expand(ctx, g, i); /* what runs comes next in the list */
        grown = 1;
        if (st == MOSS_OK) continue;
      }
      if (st == MOSS_OK && !strcmp(moss_op_infos[n->op].family, "recurrent")) {
        st = moss_recurrent_expand(ctx, g, n); /* its time steps go to the end of the list */
        grown = 1;
        if (st == MOSS_OK) continue;
      }
      if (st == MOSS_OK) {
        for (j = 0; j < n->noutputs && st == MOSS_OK; j++) {
          moss_value *v = n->outputs[j];
          if (too_large(v)) st = fail_too_large(ctx, n, "output", v);
          else if (v && (!moss_value_shape_known(v) || v->dtype == MOSS_DT_UNDEF))
            st = moss_fail(ctx, MOSS_E_INTERNAL, n, "inference left output '%s' untyped", v->name);
        }
      }
      /* DequantizeLinear of a constant stays: the qdq pass needs the 8-bit
       * weight; the fold pass after it folds what stays float. */
      if (st == MOSS_OK && n->op != MOSS_OP_DequantizeLinear) st = moss_fold_node(ctx, g, n, &folded);
      if (st == MOSS_OK) continue;
      if (st == MOSS_E_NOMEM || st == MOSS_E_INTERNAL) {
        moss_free(ctx, poisoned, pcap);
        moss_free(ctx, as_f32, sizeof *as_f32 * pcap);
        return st;
      }
      failed++;
      if (first == MOSS_OK) first = st;
    }
    for (j = 0; j < n->noutputs; j++)
      if (n->outputs[j] && n->outputs[j]->id >= 0 && (size_t)n->outputs[j]->id < pcap)
        poisoned[n->outputs[j]->id] = 1;
  }
  moss_free(ctx, poisoned, pcap);
  moss_free(ctx, as_f32, sizeof *as_f32 * pcap);
  if (failed) return first;
  MOSS_TRY(check_declared(ctx, g));
  MOSS_TRY(moss_sequence_outputs(ctx, g));
  j = g->nnodes;
  MOSS_TRY(moss_bound_outputs(ctx, g));
  grown |= g->nnodes != j;
  moss_graph_compact(g);
  if (grown) MOSS_TRY(moss_graph_sort(ctx, g));
  return MOSS_OK;
}
