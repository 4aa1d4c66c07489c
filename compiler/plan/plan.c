/* plan.c - the memory planner, run after the passes and before emission.
 * 1. Aliasing: the output of Reshape/Flatten/Squeeze/Unsqueeze/Identity/
 *    Dropout shares its input's storage unless it is a graph output (which
 *    lives in the caller's buffer).
 * 2. Liveness: a value lives from the node that defines it to the last
 *    node that reads it or any of its aliases (the length of a bounded
 *    graph output, to the end: the caller reads it after the run). An opaque segment (a
 *    plugin's subgraph, run as one call) counts as one step: what it reads
 *    or writes lives from its first node to its last, so no two of its
 *    buffers overlap.
 * 3. Offsets: values are placed in definition order at the lowest
 *    64-byte-aligned offset that overlaps no value live at the same time
 *    (first fit over the live set sorted by offset). A node's kernel
 *    scratch (n->scratch_bytes) is placed the same way, live while the
 *    node runs, before the node's outputs. */
#include "plan.h"

static int is_view(const moss_node *n) {
  switch (n->op) {
  case MOSS_OP_Reshape: case MOSS_OP_Flatten: case MOSS_OP_Squeeze: case MOSS_OP_Unsqueeze:
  case MOSS_OP_Identity: case MOSS_OP_Dropout: return 1;
  default: return 0;
  }
}

static moss_value *root(moss_value *v) {
  while (v->alias) v = v->alias;
  return v;
}

typedef struct interval {
  moss_value *v;     /* NULL: the scratch of node |n| */
  moss_node *n;
  int start, end;
  int64_t size, offset;
} interval;

moss_status moss_plan_compute(moss_ctx *ctx, moss_graph *g, int64_t *out_arena_bytes) {
  int i, j, nv = g->nvalues, nlive = 0;
  int *start, *end;
  interval *iv;
  int *order; /* values placed so far, kept sorted by offset */
  int64_t arena = 0;
  size_t niv = (size_t)nv + (size_t)g->nnodes;
  size_t bytes = sizeof(int) * (size_t)nv * 2 + sizeof(int) * niv + sizeof(interval) * niv + 1;
  char *mem = moss_alloc(ctx, bytes);
  *out_arena_bytes = 0;
  if (!mem) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "memory plan");
  iv = (interval *)mem; /* first: it needs the strictest alignment */
  start = (int *)(iv + niv);
  end = start + nv;
  order = end + nv;

  for (i = 0; i < nv; i++) {
    g->values[i]->alias = NULL;
    g->values[i]->offset = -1;
    start[i] = -1;
    end[i] = -1;
  }
  for (i = 0; i < g->nnodes; i++) {
    moss_node *n = g->nodes[i];
    moss_value *x = n->inputs[0], *y = n->outputs[0];
    if (is_view(n) && x && y && y->output_index < 0 && x->dtype == y->dtype) y->alias = x;
  }
  /* Liveness on alias roots. */
  for (i = 0; i < g->nnodes; i++) {
    moss_node *n = g->nodes[i];
    int lo = i, hi = i;
    while (n->opaque && lo > 0 && g->nodes[lo - 1]->opaque &&
           g->nodes[lo - 1]->segment == n->segment)
      lo--;
    while (n->opaque && hi + 1 < g->nnodes && g->nodes[hi + 1]->opaque &&
           g->nodes[hi + 1]->segment == n->segment)
      hi++;
    for (j = 0; j < n->noutputs; j++) {
      moss_value *r;
      if (!n->outputs[j]) continue;
      r = root(n->outputs[j]);
      if (start[r->id] < 0 || start[r->id] > lo) start[r->id] = lo;
      if (end[r->id] < hi) end[r->id] = hi;
    }
    for (j = 0; j < n->ninputs; j++) {
      moss_value *r;
      if (!n->inputs[j]) continue;
      r = root(n->inputs[j]);
      if (end[r->id] < hi) end[r->id] = hi;
    }
  }
  /* The length of a bounded graph output is read after the run
   * (docs/dynamic-shapes.md): it lives to the end. */
  for (i = 0; i < g->noutputs; i++)
    if (g->outputs[i]->bounded && g->outputs[i]->length && g->nnodes > 0)
      end[root(g->outputs[i]->length)->id] = g->nnodes - 1;
  /* Intervals of arena-resident roots, in definition order. */
  {
    int ni = 0;
    for (i = 0; i < g->nnodes; i++) {
      moss_node *n = g->nodes[i];
      n->scratch_offset = -1;
      if (n->scratch_bytes > 0) {
        int64_t sz;
        if (!moss_i64_add(n->scratch_bytes, MOSS_PLAN_ALIGN - 1, &sz)) {
          moss_free(ctx, mem, bytes);
          return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "the kernel's scratch has no size in "
                           "bytes that fits in 64 bits");
        }
        iv[ni].v = NULL;
        iv[ni].n = n;
        iv[ni].start = iv[ni].end = i;
        iv[ni].size = sz / MOSS_PLAN_ALIGN * MOSS_PLAN_ALIGN;
        ni++;
      }
      for (j = 0; j < n->noutputs; j++) {
        moss_value *v = n->outputs[j];
        int64_t sz;
        if (!v || v->alias || v->output_index >= 0 || v->data) continue;
        sz = moss_value_nbytes_checked(v);
        if (sz < 0 || !moss_i64_add(sz, MOSS_PLAN_ALIGN - 1, &sz)) {
          moss_free(ctx, mem, bytes);
          return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "output '%s' has no size in bytes that "
                           "fits in 64 bits", v->name ? v->name : "");
        }
        iv[ni].v = v;
        iv[ni].n = n;
        iv[ni].start = start[v->id];
        iv[ni].end = end[v->id];
        iv[ni].size = sz / MOSS_PLAN_ALIGN * MOSS_PLAN_ALIGN;
        if (iv[ni].size == 0) iv[ni].size = MOSS_PLAN_ALIGN;
        ni++;
      }
    }
    for (i = 0; i < ni; i++) {
      int64_t off = 0, top;
      int k, m;
      /* Drop from the live set what ended before this value starts. */
      for (k = 0, m = 0; k < nlive; k++)
        if (iv[order[k]].end >= iv[i].start) order[m++] = order[k];
      nlive = m;
      /* Every offset + size placed so far fits in int64_t: it was |top|. */
      for (k = 0; k < nlive; k++) {
        interval *o = &iv[order[k]];
        if (iv[i].size <= o->offset - off) break;
        if (o->offset + o->size > off) off = o->offset + o->size;
      }
      if (!moss_i64_add(off, iv[i].size, &top)) {
        moss_status st = moss_fail(ctx, MOSS_E_INVALID_MODEL, iv[i].n,
                                   "the arena overflows 64 bits when %s%s%s (%lld bytes) is placed "
                                   "at offset %lld", iv[i].v ? "'" : "",
                                   iv[i].v ? (iv[i].v->name ? iv[i].v->name : "") : "the kernel's scratch",
                                   iv[i].v ? "'" : "", (long long)iv[i].size, (long long)off);
        moss_free(ctx, mem, bytes); /* |iv| lives in it: after the message */
        return st;
      }
      iv[i].offset = off;
      if (iv[i].v) iv[i].v->offset = off;
      else iv[i].n->scratch_offset = off;
      if (top > arena) arena = top;
      /* Insert keeping the live set sorted by offset. */
      for (m = nlive; m > 0 && iv[order[m - 1]].offset > off; m--) order[m] = order[m - 1];
      order[m] = i;
      nlive++;
    }
  }
  moss_free(ctx, mem, bytes);
  *out_arena_bytes = arena;
  return MOSS_OK;
}
