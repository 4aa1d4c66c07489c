/* emit_bundle.c - turns a partitioned, planned graph into a .moss bundle:
 * the segments of devices whose code runs in the runtime's process become
 * one CPU code section, one function per segment, built by the host
 * device's backend (emit_code: the C backend's shared object, the LLVM
 * backend's object); each segment of another device is lowered to a blob
 * by its backend (emit_segment: a plugin's blob); and the plan becomes a
 * list of steps (EXEC per segment, TRANSFER for every value that crosses
 * devices) over a table of tensors (graph inputs, graph outputs, arena
 * offsets). Every backend is reached through the table (backends/backend.h)
 * by the device bindings the pipeline passes. The CPU code states what it
 * was compiled for (moss_figures: the arena, every tensor, step and tensor
 * reference of the bundle, its entries in step order), which libmossrt
 * holds the metadata and plan to; with --sign the bundle is signed
 * (keys.c, compiler/bundle). */
#include <stdio.h>
#include <string.h>

#include "moss_bundle.h"
#include "../bundle/bundle.h"
#include "../passes/partition.h"
#include "emit.h"

/* Grows |*arr| (|*cap| elements of |size|) to hold |n| + 1. */
static int grow(moss_ctx *ctx, void **arr, uint32_t *cap, uint32_t n, size_t size) {
  uint32_t nc;
  void *p;
  if (n < *cap) return 1;
  nc = *cap ? *cap * 2 : 16;
  p = moss_alloc(ctx, nc * size);
  if (!p) return 0;
  if (*arr) {
    memcpy(p, *arr, *cap * size);
    moss_free(ctx, *arr, *cap * size);
  }
  *arr = p;
  *cap = nc;
  return 1;
}

typedef struct builder {
  moss_ctx *ctx;
  moss_graph *g;
  int *tensor_of;               /* per value id: tensor index, -1 none */
  moss_bundle_tensor *tensors;
  uint32_t ntensors, cap_tensors;
  moss_bundle_step *steps;
  uint32_t nsteps, cap_steps;
  uint32_t *ids;                /* tensor index lists of all steps, in one pool */
  uint32_t nids, cap_ids;
  unsigned char *present;       /* [value id * ndev + device]: value is on that device */
  int ndev;
} builder;

static const moss_value *root_of(const moss_value *v) {
  while (v->alias) v = v->alias;
  return v;
}

/* The tensor index of |v|, added on first use. */
static int tensor(builder *b, const moss_value *v) {
  const moss_value *r = root_of(v);
  moss_bundle_tensor *t;
  int k;
  if (b->tensor_of[v->id] >= 0) return b->tensor_of[v->id];
  if (!grow(b->ctx, (void **)&b->tensors, &b->cap_tensors, b->ntensors, sizeof *b->tensors))
    return -1;
  t = &b->tensors[b->ntensors];
  memset(t, 0, sizeof *t);
  t->name = v->name;
  t->dtype = (int32_t)v->dtype;
  t->rank = v->rank;
  for (k = 0; k < v->rank && k < 8; k++) t->dims[k] = v->dims[k];
  t->nbytes = moss_value_nbytes(v);
  if (r->input_index >= 0) {
    t->place = MOSS_BUNDLE_INPUT;
    t->index = (uint32_t)r->input_index;
  } else if (r->output_index >= 0) {
    t->place = MOSS_BUNDLE_OUTPUT;
    t->index = (uint32_t)r->output_index;
  } else {
    t->place = MOSS_BUNDLE_ARENA;
    t->offset = (uint64_t)(r->offset > 0 ? r->offset : 0);
  }
  b->tensor_of[v->id] = (int)b->ntensors;
  return (int)b->ntensors++;
}

static moss_bundle_step *new_step(builder *b) {
  moss_bundle_step *s;
  if (!grow(b->ctx, (void **)&b->steps, &b->cap_steps, b->nsteps, sizeof *b->steps)) return NULL;
  s = &b->steps[b->nsteps++];
  memset(s, 0, sizeof *s);
  return s;
}

static int add_id(builder *b, uint32_t id) {
  if (!grow(b->ctx, (void **)&b->ids, &b->cap_ids, b->nids, sizeof *b->ids)) return 0;
  b->ids[b->nids++] = id;
  return 1;
}

/* A TRANSFER of |v| to device |to| unless it is already there. */
static moss_status transfer(builder *b, const moss_value *v, int from, int to) {
  moss_bundle_step *s;
  int t;
  if (b->present[(size_t)v->id * (size_t)b->ndev + (size_t)to]) return MOSS_OK;
  b->present[(size_t)v->id * (size_t)b->ndev + (size_t)to] = 1;
  t = tensor(b, v);
  if (t < 0 || !add_id(b, (uint32_t)t) || !(s = new_step(b)))
    return moss_fail(b->ctx, MOSS_E_NOMEM, NULL, "bundle plan");
  s->kind = MOSS_BUNDLE_STEP_TRANSFER;
  s->device = (uint32_t)to;
  s->from = (uint32_t)from;
  s->nin = 1;
  s->in = (const uint32_t *)(uintptr_t)(b->nids - 1); /* fixed up once the pool stops moving */
  return MOSS_OK;
}

/* Whether device |d|'s code runs in the runtime's process (the C
 * backend's shared object, the LLVM backend's object): its segments go
 * into the CPU code section. */
static int in_process(const moss_emit_args *a, int d) {
  return a->devices[d].backend && a->devices[d].backend->in_process;
}

int moss_bundle_steps(moss_graph *g, const moss_backend_device *devs) {
  int i, k, n = 0, prev = -1, ncpu = 0, per = 1, in_step = 0;
  for (i = 0; i < g->nnodes; i++)
    ncpu += g->nodes[i]->segment >= 0 && devs[g->nodes[i]->device].backend &&
            devs[g->nodes[i]->device].backend->in_process;
  if (ncpu > MOSS_BUNDLE_MAX_LAYER_STEPS) /* ceil: at most that many CPU steps */
    per = (ncpu + MOSS_BUNDLE_MAX_LAYER_STEPS - 1) / MOSS_BUNDLE_MAX_LAYER_STEPS;
  for (i = 0; i < g->nnodes; i++) {
    moss_node *nd = g->nodes[i];
    const moss_backend *be = devs[nd->device].backend;
    if ((k = nd->segment) < 0) continue;
    if (n == 0 || k != prev || (be && be->in_process && in_step == per)) n++, in_step = 0;
    in_step++;
    prev = k;
    nd->segment = n - 1;
  }
  return n;
}

moss_status moss_emit_bundle(moss_ctx *ctx, const moss_emit_args *a) {
  moss_graph *g = a->g;
  const moss_target *t = a->target;
  builder b;
  moss_bundle_desc d;
  moss_bundle_device *devs = NULL;
  unsigned char *seg_is_c = NULL;
  moss_backend_code code;
  const moss_backend *host_be = a->devices[a->host].backend;
  moss_buf *blobs = NULL;
  const void **blob_ptr = NULL;
  uint64_t *blob_len = NULL;
  uint32_t *blob_dev = NULL, *ins = NULL, *outs = NULL, nblobs = 0;
  char *entries = NULL;         /* per step: its entry's name, |entry_cap| bytes each */
  size_t entry_cap = strlen(a->name) + 24;
  uint8_t sign_key[64];
  moss_buf figures;
  int nseg = a->nsegments, ndev = moss_target_device_count(t), i, k, at, any_c = 0;
  moss_status st = MOSS_OK;

  memset(&b, 0, sizeof b);
  memset(&d, 0, sizeof d);
  memset(&code, 0, sizeof code);
  moss_buf_init(&figures, ctx);
  b.ctx = ctx;
  b.g = g;
  b.ndev = ndev;
  entries = moss_alloc(ctx, entry_cap * ((size_t)nseg + 1));
  b.tensor_of = moss_alloc(ctx, sizeof(int) * ((size_t)g->nvalues + 1));
  b.present = moss_alloc(ctx, (size_t)g->nvalues * (size_t)ndev + 1);
  seg_is_c = moss_alloc(ctx, (size_t)nseg + 2);
  blobs = moss_alloc(ctx, sizeof *blobs * ((size_t)nseg + 1));
  blob_ptr = moss_alloc(ctx, sizeof *blob_ptr * ((size_t)nseg + 1));
  blob_len = moss_alloc(ctx, sizeof *blob_len * ((size_t)nseg + 1));
  blob_dev = moss_alloc(ctx, sizeof *blob_dev * ((size_t)nseg + 1));
  devs = moss_alloc(ctx, sizeof *devs * (size_t)ndev);
  ins = moss_alloc(ctx, sizeof *ins * ((size_t)g->ninputs + 1));
  outs = moss_alloc(ctx, sizeof *outs * ((size_t)g->noutputs + 1));
  if (!entries || !b.tensor_of || !b.present || !seg_is_c || !blobs || !blob_ptr || !blob_len ||
      !blob_dev || !devs || !ins || !outs) {
    st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "bundle");
    goto done;
  }
  for (i = 0; i < g->nvalues; i++) b.tensor_of[i] = -1;
  memset(b.present, 0, (size_t)g->nvalues * (size_t)ndev + 1);
  for (i = 0; i < nseg + 1; i++) moss_buf_init(&blobs[i], ctx);

  /* Graph inputs and constants start on the host. */
  for (i = 0; i < g->nvalues; i++)
    if (!g->values[i]->producer) b.present[(size_t)i * (size_t)ndev + (size_t)a->host] = 1;
  for (i = 0; i < g->ninputs && st == MOSS_OK; i++) {
    int ti = tensor(&b, g->inputs[i]);
    if (ti < 0) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "bundle");
    else ins[i] = (uint32_t)ti;
  }
  for (i = 0; i < g->noutputs && st == MOSS_OK; i++) {
    int ti = tensor(&b, g->outputs[i]);
    if (ti < 0) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "bundle");
    else outs[i] = (uint32_t)ti;
  }
  if (st != MOSS_OK) goto done;

  for (i = 0; i < g->nnodes; i++) { /* a segment's nodes share its device */
    k = g->nodes[i]->segment;
    if (k < 0 || k >= nseg) continue;
    seg_is_c[k] = (unsigned char)in_process(a, g->nodes[i]->device);
    any_c |= seg_is_c[k];
  }
  if (nseg == 0 && g->noutputs > 0 && in_process(a, a->host)) {
    /* No node at all: one C segment copies constants and inputs to the outputs. */
    seg_is_c[0] = 1;
    any_c = 1;
    nseg = 1;
  }
  /* Outputs no node writes (a constant, a graph input) are copied by the
   * CPU code; without any, nothing would write them. */
  for (i = 0; i < g->noutputs && !any_c && st == MOSS_OK; i++)
    if (!g->outputs[i]->producer)
      st = moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                     "output '%s' is a copy of a constant or an input, and no segment of target '%s' "
                     "runs CPU code to copy it", g->outputs[i]->name, moss_target_name(a->target));
  if (st != MOSS_OK) goto done;

  for (k = 0, at = 0; k < nseg && st == MOSS_OK; k++) {
    moss_node **nodes = NULL;
    int nn = 0, first = -1, dev;
    moss_bundle_step *s;
    size_t start;
    /* Segment k's nodes are the next ones numbered k: consecutive, in order. */
    while (at < g->nnodes && g->nodes[at]->segment < k) at++;
    if (at < g->nnodes && g->nodes[at]->segment == k) first = at;
    while (at < g->nnodes && g->nodes[at]->segment == k) at++, nn++;
    dev = first >= 0 ? g->nodes[first]->device : a->host;
    /* Values this segment reads from other devices move here first. */
    for (i = first; i >= 0 && i < first + nn && st == MOSS_OK; i++) {
      moss_node *n = g->nodes[i];
      int j;
      for (j = 0; j < n->ninputs && st == MOSS_OK; j++) {
        const moss_value *v = n->inputs[j];
        if (!v || v->data || (v->producer && v->producer->segment == k)) continue;
        st = transfer(&b, v, moss_value_device(v, a->host), dev);
      }
    }
    if (st != MOSS_OK) break;
    start = b.nids;
    if (seg_is_c[k]) {
      if (!(s = new_step(&b))) {
        st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "bundle plan");
        break;
      }
      s->kind = MOSS_BUNDLE_STEP_EXEC;
      s->device = (uint32_t)dev;
      s->entry = entries + entry_cap * (size_t)k;
      snprintf(entries + entry_cap * (size_t)k, entry_cap, "%s_seg%d", a->name, k);
      /* The CPU code's in[] and out[] are the graph's inputs and outputs. */
      for (i = 0; i < g->ninputs && st == MOSS_OK; i++)
        if (!add_id(&b, ins[i])) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "bundle plan");
      for (i = 0; i < g->noutputs && st == MOSS_OK; i++)
        if (!add_id(&b, outs[i])) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "bundle plan");
      if (st != MOSS_OK) break;
      s = &b.steps[b.nsteps - 1]; /* the pool may have moved the steps; the step is the last */
      s->nin = (uint32_t)g->ninputs;
      s->nout = (uint32_t)g->noutputs;
      s->in = (const uint32_t *)(uintptr_t)start;
      s->out = (const uint32_t *)(uintptr_t)(start + (size_t)g->ninputs);
    } else {
      int *in_ids = NULL, *out_ids = NULL, nin = 0, nout = 0, j;
      const moss_backend_device *bd = &a->devices[dev];
      if (!bd->backend || !bd->backend->emit_segment) {
        st = moss_fail(ctx, MOSS_E_INTERNAL, g->nodes[first],
                       "device %d's backend lowers no segments", dev);
        break;
      }
      nodes = g->nodes + first;
      st = bd->backend->emit_segment(bd, g, nodes, nn, &blobs[nblobs], &in_ids, &nin, &out_ids,
                                     &nout);
      if (st != MOSS_OK) break;
      for (j = 0; j < nin && st == MOSS_OK; j++) {
        int ti = tensor(&b, g->values[in_ids[j]]);
        if (ti < 0 || !add_id(&b, (uint32_t)ti)) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "bundle");
      }
      for (j = 0; j < nout && st == MOSS_OK; j++) {
        int ti = tensor(&b, g->values[out_ids[j]]);
        if (ti < 0 || !add_id(&b, (uint32_t)ti)) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "bundle");
      }
      if (in_ids) moss_free(ctx, in_ids, (size_t)nin * sizeof(int));
      if (out_ids) moss_free(ctx, out_ids, (size_t)nout * sizeof(int));
      if (st != MOSS_OK) break;
      if (blobs[nblobs].failed) {
        st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "plugin blob");
        break;
      }
      if (!(s = new_step(&b))) {
        st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "bundle plan");
        break;
      }
      s->kind = MOSS_BUNDLE_STEP_EXEC;
      s->device = (uint32_t)dev;
      s->blob = nblobs;
      s->nin = (uint32_t)nin;
      s->nout = (uint32_t)nout;
      s->in = (const uint32_t *)(uintptr_t)start;
      s->out = (const uint32_t *)(uintptr_t)(start + (size_t)nin);
      blob_ptr[nblobs] = blobs[nblobs].data ? (const void *)blobs[nblobs].data : (const void *)"";
      blob_len[nblobs] = blobs[nblobs].len;
      blob_dev[nblobs] = (uint32_t)dev;
      nblobs++;
    }
    /* What this segment makes now lives on its device. */
    for (i = first; i >= 0 && i < first + nn; i++) {
      int j;
      for (j = 0; j < g->nodes[i]->noutputs; j++)
        if (g->nodes[i]->outputs[j])
          b.present[(size_t)g->nodes[i]->outputs[j]->id * (size_t)ndev + (size_t)dev] = 1;
    }
  }
  /* Graph outputs end on the host. */
  for (i = 0; i < g->noutputs && st == MOSS_OK; i++)
    st = transfer(&b, g->outputs[i], moss_value_device(g->outputs[i], a->host), a->host);
  if (st != MOSS_OK) goto done;
  /* The id pool has stopped moving: turn the stored positions into pointers. */
  for (i = 0; i < (int)b.nsteps; i++) {
    moss_bundle_step *s = &b.steps[i];
    if (s->nin) s->in = b.ids + (uintptr_t)s->in;
    else s->in = NULL;
    if (s->nout) s->out = b.ids + (uintptr_t)s->out;
    else s->out = NULL;
  }

  for (i = 0; i < ndev; i++) {
    const moss_backend *be = a->devices[i].backend;
    devs[i].id = moss_target_device_id(t, i);
    devs[i].kind = moss_target_device_kind(t, i);
    devs[i].backend = moss_target_device_backend(t, i);
    devs[i].plugin_path = be && be->library ? be->library(&a->devices[i]) : NULL;
    /* Only the library's file name: no folder of this machine leaks into the
     * bundle (hermetic), and libmossrt finds it where it is deployed
     * (runtime/README.md "Plugin libraries"). */
    if (devs[i].plugin_path && strrchr(devs[i].plugin_path, '/'))
      devs[i].plugin_path = strrchr(devs[i].plugin_path, '/') + 1;
    devs[i].runs_blobs = be && !be->in_process && be->emit_segment;
  }
  d.target = moss_target_name(t);
  d.arena_bytes = (uint64_t)a->arena_bytes;
  d.ntensors = b.ntensors;
  d.tensors = b.tensors;
  d.ninputs = (uint32_t)g->ninputs;
  d.inputs = ins;
  d.noutputs = (uint32_t)g->noutputs;
  d.outputs = outs;
  d.ndevices = (uint32_t)ndev;
  d.devices = devs;
  d.nsteps = b.nsteps;
  d.steps = b.steps;
  d.cpu_device = (uint32_t)a->host;
  d.cpu_code_format = host_be && host_be->code == MOSS_CODE_ELF_OBJECT
                          ? MOSS_BUNDLE_CODE_ELF_OBJECT
                          : MOSS_BUNDLE_CODE_ELF_SHARED;
  d.nblobs = nblobs;
  d.blobs = blob_ptr;
  d.blob_bytes = blob_len;
  d.blob_device = blob_dev;
  d.report_json = a->report_json;
  { /* the bounded outputs: where their lengths lie (docs/dynamic-shapes.md) */
    moss_bundle_bound *bd = moss_graph_alloc(g, sizeof *bd * (size_t)(g->noutputs + 1));
    if (!bd) {
      st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "bundle");
      goto done;
    }
    for (i = 0; i < g->noutputs; i++)
      if (g->outputs[i]->bounded && g->outputs[i]->length) {
        bd[d.nbounds].output = (uint32_t)i;
        bd[d.nbounds].axis = (uint32_t)(g->outputs[i]->bounded - 1);
        bd[d.nbounds++].offset = (uint64_t)g->outputs[i]->length->offset;
      }
    d.bounds = bd;
  }
  if (g->ngroups) { /* the outputs that are sequences or optionals (docs/sequences.md) */
    moss_bundle_group *gr = moss_graph_alloc(g, sizeof *gr * (size_t)g->ngroups);
    if (!gr) {
      st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "bundle");
      goto done;
    }
    for (i = 0; i < g->ngroups; i++) {
      gr[i].position = (uint32_t)g->groups[i].position;
      gr[i].first = (uint32_t)g->groups[i].first;
      gr[i].count = (uint32_t)g->groups[i].count;
      gr[i].kind = (uint32_t)g->groups[i].kind;
      gr[i].flags = (g->groups[i].optional_of_sequence ? 1u : 0) |
                    (g->groups[i].absent ? 2u : 0);
      gr[i].elem = (int32_t)g->groups[i].elem;
    }
    d.ngroups = (uint32_t)g->ngroups;
    d.groups = gr;
  }
  if (any_c) {
    if (!host_be || !host_be->emit_code) {
      st = moss_fail(ctx, MOSS_E_TARGET, NULL,
                     "target '%s': device '%s' holds the graph's inputs and outputs, and its "
                     "backend '%s' builds no CPU code for the segments that run on the CPU",
                     moss_target_name(t), moss_target_device_id(t, a->host),
                     moss_target_device_backend(t, a->host));
      goto done;
    }
    /* What the code is compiled for, stated in it (moss_figures). */
    st = moss_bundle_figures_emit(ctx, &d, &figures);
    if (st != MOSS_OK) goto done;
    st = host_be->emit_code(&a->devices[a->host], g, a->name, a->source_hash, seg_is_c, nseg,
                            (const uint8_t *)figures.data, figures.len, a->verbose, &code);
    if (st != MOSS_OK) goto done;
  }
  d.triple = any_c ? code.triple : NULL;
  d.features = code.features;
  d.cpu_code = code.bytes;
  d.cpu_code_bytes = code.size;
  d.batched = g->batch > 0;
  if (a->sign_key) {
    st = moss_key_read(ctx, a->sign_key, 1, sign_key);
    if (st != MOSS_OK) goto done;
    d.sign_key = sign_key;
  }
  st = moss_bundle_write(ctx, &d, a->out);
done:
  memset(sign_key, 0, sizeof sign_key);
  moss_buf_deinit(&figures);
  moss_backend_code_deinit(ctx, &code);
  if (blobs)
    for (i = 0; i < a->nsegments + 1; i++) moss_buf_deinit(&blobs[i]);
  moss_free(ctx, blobs, sizeof *blobs * ((size_t)a->nsegments + 1));
  moss_free(ctx, blob_ptr, sizeof *blob_ptr * ((size_t)a->nsegments + 1));
  moss_free(ctx, blob_len, sizeof *blob_len * ((size_t)a->nsegments + 1));
  moss_free(ctx, blob_dev, sizeof *blob_dev * ((size_t)a->nsegments + 1));
  moss_free(ctx, seg_is_c, (size_t)a->nsegments + 2);
  moss_free(ctx, entries, entry_cap * ((size_t)a->nsegments + 1));
  moss_free(ctx, devs, sizeof *devs * (size_t)ndev);
  moss_free(ctx, ins, sizeof *ins * ((size_t)g->ninputs + 1));
  moss_free(ctx, outs, sizeof *outs * ((size_t)g->noutputs + 1));
  moss_free(ctx, b.tensor_of, sizeof(int) * ((size_t)g->nvalues + 1));
  moss_free(ctx, b.present, (size_t)g->nvalues * (size_t)ndev + 1);
  moss_free(ctx, b.tensors, sizeof *b.tensors * b.cap_tensors);
  moss_free(ctx, b.steps, sizeof *b.steps * b.cap_steps);
  moss_free(ctx, b.ids, sizeof *b.ids * b.cap_ids);
  return st;
}
