/* segment.c - the layout of a GPU segment (segment.h). */
#include <string.h>

#include "segment.h"

static const moss_value *root_of(const moss_value *v) {
  while (v->alias) v = v->alias;
  return v;
}

static int in_list(moss_node *const *nodes, int nnodes, const moss_node *n) {
  int k;
  for (k = 0; k < nnodes; k++)
    if (nodes[k] == n) return 1;
  return 0;
}

void moss_gpu_seg_deinit(moss_gpu_seg *s) {
  moss_free(s->ctx, s->tensor, sizeof(int) * s->nv);
  moss_free(s->ctx, s->woff, sizeof(int64_t) * s->nv);
  moss_free(s->ctx, s->ins, sizeof(int) * s->nv);
  moss_free(s->ctx, s->outs, sizeof(int) * s->nv);
  moss_buf_deinit(&s->weights);
  moss_buf_deinit(&s->placed);
  memset(s, 0, sizeof *s);
}

moss_status moss_gpu_seg_init(moss_gpu_seg *s, moss_ctx *ctx, const moss_graph *g, moss_node *const *nodes,
                              int nnodes, const char *what) {
  size_t nv = (size_t)g->nvalues + 1;
  char *produced, *needed;
  int i, k;
  memset(s, 0, sizeof *s);
  s->ctx = ctx;
  s->g = g;
  s->nv = nv;
  moss_buf_init(&s->weights, ctx);
  moss_buf_init(&s->placed, ctx);
  produced = moss_alloc(ctx, nv);
  needed = moss_alloc(ctx, nv);
  s->tensor = moss_alloc(ctx, sizeof(int) * nv);
  s->woff = moss_alloc(ctx, sizeof(int64_t) * nv);
  s->ins = moss_alloc(ctx, sizeof(int) * nv);
  s->outs = moss_alloc(ctx, sizeof(int) * nv);
  if (!produced || !needed || !s->tensor || !s->woff || !s->ins || !s->outs) {
    moss_free(ctx, produced, nv);
    moss_free(ctx, needed, nv);
    moss_gpu_seg_deinit(s);
    return moss_fail(ctx, MOSS_E_NOMEM, nodes[0], "%s", what);
  }
  memset(produced, 0, nv);
  memset(needed, 0, nv);
  for (i = 0; i < (int)nv; i++) s->tensor[i] = -1, s->woff[i] = -1;
  for (k = 0; k < nnodes; k++)
    for (i = 0; i < nodes[k]->noutputs; i++)
      if (nodes[k]->outputs[i]) produced[nodes[k]->outputs[i]->id] = 1;
  for (i = 0; i < g->noutputs; i++) {
    needed[g->outputs[i]->id] = 1;
    /* the run's length of a bounded output: read on the host after the run */
    if (g->outputs[i]->bounded && g->outputs[i]->length) needed[g->outputs[i]->length->id] = 1;
  }
  for (k = 0; k < g->nnodes; k++) {
    const moss_node *n = g->nodes[k];
    if (n->dead || in_list(nodes, nnodes, n)) continue;
    for (i = 0; i < n->ninputs; i++)
      if (n->inputs[i]) needed[n->inputs[i]->id] = 1;
  }
  for (k = 0; k < nnodes; k++)
    for (i = 0; i < nodes[k]->ninputs; i++) {
      const moss_value *v = nodes[k]->inputs[i];
      if (!v || v->data || produced[v->id] || s->tensor[root_of(v)->id] >= 0) continue;
      s->tensor[root_of(v)->id] = s->nin;
      s->ins[s->nin++] = v->id;
    }
  for (k = 0; k < nnodes; k++)
    for (i = 0; i < nodes[k]->noutputs; i++) {
      const moss_value *v = nodes[k]->outputs[i];
      if (!v || !needed[v->id] || s->tensor[root_of(v)->id] >= 0) continue;
      s->tensor[root_of(v)->id] = s->nin + s->nout;
      s->outs[s->nout++] = v->id;
    }
  moss_free(ctx, produced, nv);
  moss_free(ctx, needed, nv);
  return MOSS_OK;
}

moss_gpu_base moss_gpu_seg_where(moss_gpu_seg *s, const moss_value *v, int *tensor, int64_t *offset) {
  const moss_value *r = root_of(v);
  *tensor = -1;
  *offset = 0;
  if (s->tensor[r->id] >= 0) {
    *tensor = s->tensor[r->id];
    return MOSS_GPU_TENSOR;
  }
  if (r->data) {
    if (s->woff[r->id] < 0) s->woff[r->id] = moss_gpu_seg_table(s, r->data, moss_value_nbytes(r));
    *offset = s->woff[r->id];
    return MOSS_GPU_WEIGHTS;
  }
  if (r->offset + (int64_t)moss_value_nbytes(r) > s->arena_end)
    s->arena_end = r->offset + (int64_t)moss_value_nbytes(r);
  *offset = r->offset;
  return MOSS_GPU_ARENA;
}

int64_t moss_gpu_seg_table(moss_gpu_seg *s, const void *data, size_t bytes) {
  static const unsigned char zero[64];
  int64_t at, pair[2];
  size_t i;
  if (!s->weights.failed && !s->placed.failed)
    for (i = 0; i + 2 * sizeof(int64_t) <= s->placed.len; i += 2 * sizeof(int64_t)) {
      memcpy(pair, (const char *)s->placed.data + i, sizeof pair);
      if ((size_t)pair[1] == bytes && (!bytes || !memcmp((const char *)s->weights.data + pair[0], data, bytes)))
        return pair[0];
    }
  moss_buf_put(&s->weights, zero, (64 - s->weights.len % 64) % 64);
  at = (int64_t)s->weights.len;
  if (bytes) moss_buf_put(&s->weights, data, bytes);
  pair[0] = at;
  pair[1] = (int64_t)bytes;
  moss_buf_put(&s->placed, pair, sizeof pair);
  return at;
}

static void put_u32(moss_buf *b, uint32_t v) {
  unsigned char c[4];
  int i;
  for (i = 0; i < 4; i++) c[i] = (unsigned char)(v >> (8 * i));
  moss_buf_put(b, c, 4);
}

static void put_u64(moss_buf *b, uint64_t v) {
  put_u32(b, (uint32_t)v);
  put_u32(b, (uint32_t)(v >> 32));
}

moss_status moss_gpu_seg_blob(moss_gpu_seg *s, const char *magic, uint32_t version, const int64_t *items,
                              int nkernels, const char *const *parts, const size_t *lens, int nparts,
                              moss_buf *blob, const moss_node *at, int **out_in_ids, int *out_nin,
                              int **out_out_ids, int *out_nout) {
  moss_ctx *ctx = s->ctx;
  size_t code = 0;
  int i, ni = s->nin, no = s->nout;
  *out_in_ids = *out_out_ids = NULL;
  *out_nin = *out_nout = 0;
  for (i = 0; i < nparts; i++) code += lens[i];
  if (s->weights.failed || s->placed.failed) return moss_fail(ctx, MOSS_E_NOMEM, at, "GPU segment weights");
  moss_buf_put(blob, magic, 4);
  put_u32(blob, version);
  put_u32(blob, (uint32_t)(ni + no));
  put_u32(blob, (uint32_t)nkernels);
  put_u64(blob, (uint64_t)s->arena_end);
  put_u64(blob, (uint64_t)s->weights.len);
  put_u64(blob, (uint64_t)code);
  for (i = 0; i < ni + no; i++)
    put_u64(blob, moss_value_nbytes(s->g->values[i < ni ? s->ins[i] : s->outs[i - ni]]));
  for (i = 0; i < nkernels; i++) put_u64(blob, (uint64_t)items[i]);
  for (i = 0; i < nparts; i++)
    if (lens[i]) moss_buf_put(blob, parts[i], lens[i]);
  if (s->weights.len) moss_buf_put(blob, s->weights.data, s->weights.len);
  if (blob->failed) return moss_fail(ctx, MOSS_E_NOMEM, at, "GPU segment blob");
  if ((ni && !(*out_in_ids = moss_alloc(ctx, sizeof(int) * (size_t)ni))) ||
      (no && !(*out_out_ids = moss_alloc(ctx, sizeof(int) * (size_t)no)))) {
    moss_free(ctx, *out_in_ids, sizeof(int) * (size_t)ni);
    *out_in_ids = NULL;
    return moss_fail(ctx, MOSS_E_NOMEM, at, "GPU segment blob");
  }
  if (ni) memcpy(*out_in_ids, s->ins, sizeof(int) * (size_t)ni);
  if (no) memcpy(*out_out_ids, s->outs, sizeof(int) * (size_t)no);
  *out_nin = ni;
  *out_nout = no;
  return MOSS_OK;
}

void moss_gpu_seg_param(void *user, const moss_value *v, int *param, int64_t *offset) {
  int t;
  switch (moss_gpu_seg_where(user, v, &t, offset)) {
  case MOSS_GPU_ARENA: *param = 0; break;
  case MOSS_GPU_WEIGHTS: *param = 1; break;
  case MOSS_GPU_TENSOR: *param = 2 + t; break;
  }
}

int64_t moss_gpu_seg_table_at(void *user, const void *data, size_t bytes) {
  return moss_gpu_seg_table(user, data, bytes);
}
