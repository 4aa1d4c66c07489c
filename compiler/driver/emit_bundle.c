/* emit_bundle.c - turns a partitioned, planned graph into a .moss bundle:
 * the C backend writes one function per CPU segment, the system C compiler
 * builds them into one shared object for the target's CPU, each plugin
 * segment is lowered to a blob by its plugin, and the plan becomes a list
 * of steps (EXEC per segment, TRANSFER for every value that crosses
 * devices) over a table of tensors (graph inputs, graph outputs, arena
 * offsets). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "../../backends/c/cgen.h"
#include "../../backends/llvm/llvm.h"
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

/* Devices whose code runs in the runtime's process: the C backend's (a
 * shared object built with $CC) or the LLVM backend's (an object). */
static int is_c_device(const moss_target *t, int d) {
  return !strcmp(moss_target_device_backend(t, d), "c") || !strcmp(moss_target_device_backend(t, d), "llvm");
}

static int is_llvm_device(const moss_target *t, int d) {
  return !strcmp(moss_target_device_backend(t, d), "llvm");
}

/* The LLVM backend's object for the CPU segments: no C compiler runs. */
static moss_status build_native_code(moss_ctx *ctx, const moss_emit_args *a, const unsigned char *seg_is_c,
                                     int nseg, char *triple, size_t tcap, char *features, size_t fcap,
                                     uint8_t **code, size_t *ncode) {
  moss_llvm_target lt;
  moss_llvm_stats stats;
  const char *feat;
  size_t n = 0;
  lt.triple = moss_target_device_codegen(a->target, a->host, "triple");
  lt.cpu = moss_target_device_codegen(a->target, a->host, "cpu");
  lt.features = feat = moss_target_device_codegen(a->target, a->host, "features");
  if (!lt.triple)
    return moss_fail(ctx, MOSS_E_TARGET, NULL, "target '%s': device '%s' (backend llvm) names no triple",
                     moss_target_name(a->target), moss_target_device_id(a->target, a->host));
  snprintf(triple, tcap, "%s", lt.triple);
  features[0] = 0;
  if (lt.cpu && !strcmp(lt.cpu, "native")) {
    /* Code for this machine: the runtime checks the architecture; the
     * features are the host's own. */
    feat = NULL;
  }
  while (feat && *feat) { /* "+avx2,+fma" -> "avx2,fma"; "-x" stays (no requirement) */
    size_t l;
    while (*feat == ',' || *feat == ' ') feat++;
    l = strcspn(feat, ", ");
    if (l && *feat == '+') feat++, l--;
    if (l && n + l + 2 < fcap) n += (size_t)snprintf(features + n, fcap - n, "%s%.*s", n ? "," : "", (int)l, feat);
    feat += l;
  }
  MOSS_TRY(moss_llvm_emit_object(ctx, a->g, &lt, a->name, seg_is_c, nseg, code, ncode, &stats));
  if (a->verbose)
    fprintf(stderr, "moss: llvm: build %.3f s, optimize %.3f s, emit %.3f s (%s, cpu %s)\n", stats.build_s,
            stats.optimize_s, stats.emit_s, lt.triple, lt.cpu ? lt.cpu : "generic");
  return MOSS_OK;
}

/* The C compiler and flags for the target's CPU code; fails for targets a
 * bundle cannot serve here. */
static moss_status cpu_toolchain(moss_ctx *ctx, const moss_target *t, int d, char *cc, size_t cccap,
                                 char flags[2][128], int *nflags, char *triple, size_t tcap,
                                 char *features, size_t fcap) {
  const char *tr = moss_target_device_codegen(t, d, "triple");
  const char *cpu = moss_target_device_codegen(t, d, "cpu");
  const char *feat = moss_target_device_codegen(t, d, "features");
  struct utsname u;
  size_t n = 0, alen;
  const char *p;
  char arch[72] = "";
  *nflags = 0;
  cc[0] = 0;
  if (uname(&u) == 0) snprintf(arch, sizeof arch, "%s", u.machine);
  if (!tr) {
    snprintf(triple, tcap, "%s-unknown-linux-gnu", arch);
    tr = triple;
  } else {
    snprintf(triple, tcap, "%s", tr);
  }
  if (strstr(tr, "-none"))
    return moss_fail(ctx, MOSS_E_TARGET, NULL,
                     "target '%s' is bare metal (%s): libmossrt does not run there, so it gets no "
                     "bundle; use --emit c and link the generated C into the firmware",
                     moss_target_name(t), tr);
  alen = strcspn(tr, "-");
  if (strlen(arch) != alen || strncmp(tr, arch, alen) != 0) {
    /* Cross: <arch>-linux-gnu-gcc, as Debian's cross compilers are named. */
    char cross[128], path[4200];
    const char *envp = getenv("PATH");
    int found = 0;
    snprintf(cross, sizeof cross, "%.*s-linux-gnu-gcc", (int)alen, tr);
    while (envp && *envp && !found) {
      size_t l = strcspn(envp, ":");
      snprintf(path, sizeof path, "%.*s/%s", (int)l, envp, cross);
      found = access(path, X_OK) == 0;
      envp += l + (envp[l] == ':');
    }
    if (!found)
      return moss_fail(ctx, MOSS_E_TARGET, NULL,
                       "target '%s': the CPU code is for %s and needs the cross compiler %s "
                       "(Debian: apt-get install gcc-%.*s-linux-gnu); or use --emit c",
                       moss_target_name(t), tr, cross, (int)alen, tr);
    snprintf(cc, cccap, "%s", cross);
  }
  if (cpu && !strcmp(cpu, "native")) {
    snprintf(flags[(*nflags)++], 128, "-march=native");
  } else if (cpu && (!strncmp(tr, "x86_64", 6) || !strncmp(tr, "i686", 4))) {
    snprintf(flags[(*nflags)++], 128, "-march=%s", cpu);
  } else if (cpu) {
    snprintf(flags[(*nflags)++], 128, "-mcpu=%s", cpu);
  }
  features[0] = 0;
  for (p = feat; p && *p;) {
    size_t l;
    while (*p == ',' || *p == ' ' || *p == '+') p++;
    l = strcspn(p, ", ");
    if (l && n + l + 2 < fcap) {
      n += (size_t)snprintf(features + n, fcap - n, "%s%.*s", n ? "," : "", (int)l, p);
    }
    p += l;
  }
  return MOSS_OK;
}

static void remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[4400];
  if (d) {
    while ((e = readdir(d)) != NULL) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(dir);
}

/* Emits the C of the CPU segments into a temporary folder and builds it. */
static moss_status build_cpu_code(moss_ctx *ctx, const moss_emit_args *a, const unsigned char *seg_is_c,
                                  int nseg, char *triple, size_t tcap, char *features, size_t fcap,
                                  uint8_t **code, size_t *ncode) {
  char dir[4096], src[4200], wsrc[4200], so[4200], cc[160], flags[2][128];
  const char *extra[2], *srcs[2];
  const char *tmp = getenv("TMPDIR");
  int nflags = 0, nsrc = 0;
  moss_status st;
  st = cpu_toolchain(ctx, a->target, a->host, cc, sizeof cc, flags, &nflags, triple, tcap,
                     features, fcap);
  if (st != MOSS_OK) return st;
  snprintf(dir, sizeof dir, "%s/moss-bundle-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) return moss_fail(ctx, MOSS_E_IO, NULL, "cannot make a temporary folder in %s", dir);
  st = moss_c_emit_segments(ctx, a->g, a->name, dir, a->source_hash, moss_target_name(a->target),
                            seg_is_c, nseg);
  if (st == MOSS_OK) {
    snprintf(src, sizeof src, "%s/%s.c", dir, a->name);
    snprintf(wsrc, sizeof wsrc, "%s/%s_weights.c", dir, a->name);
    snprintf(so, sizeof so, "%s/%s.so", dir, a->name);
    srcs[nsrc++] = src;
    if (access(wsrc, R_OK) == 0) srcs[nsrc++] = wsrc;
    extra[0] = flags[0];
    extra[1] = flags[1];
    st = moss_cc_shared(ctx, cc[0] ? cc : NULL, extra, nflags, srcs, nsrc, so);
  }
  if (st == MOSS_OK) st = moss_file_read(ctx, so, code, ncode);
  if (!getenv("MOSS_KEEP_TEMPS")) remove_tree(dir);
  else fprintf(stderr, "moss: kept the bundle's C in %s\n", dir);
  return st;
}

moss_status moss_emit_bundle(moss_ctx *ctx, const moss_emit_args *a) {
  moss_graph *g = a->g;
  const moss_target *t = a->target;
  builder b;
  moss_bundle_desc d;
  moss_bundle_device *devs = NULL;
  unsigned char *seg_is_c = NULL;
  uint8_t *code = NULL;
  size_t ncode = 0;
  moss_buf *blobs = NULL;
  const void **blob_ptr = NULL;
  uint64_t *blob_len = NULL;
  uint32_t *blob_dev = NULL, *ins = NULL, *outs = NULL, nblobs = 0;
  char triple[128] = "", features[512] = "", entry_pool[64][96];
  int nseg = a->nsegments, ndev = moss_target_device_count(t), i, k, any_c = 0;
  moss_status st = MOSS_OK;

  memset(&b, 0, sizeof b);
  memset(&d, 0, sizeof d);
  b.ctx = ctx;
  b.g = g;
  b.ndev = ndev;
  if (nseg > 64)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                     "the partition has %d segments; bundles hold at most 64 (the devices take "
                     "turns too often: check --explain)", nseg);
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
  if (!b.tensor_of || !b.present || !seg_is_c || !blobs || !blob_ptr || !blob_len || !blob_dev ||
      !devs || !ins || !outs) {
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

  for (k = 0; k < nseg; k++) {
    for (i = 0; i < g->nnodes; i++)
      if (g->nodes[i]->segment == k) break;
    seg_is_c[k] = i < g->nnodes && is_c_device(t, g->nodes[i]->device);
    any_c |= seg_is_c[k];
  }
  if (nseg == 0 && g->noutputs > 0 && is_c_device(t, a->host)) {
    /* No node at all: one C segment copies constants and inputs to the outputs. */
    seg_is_c[0] = 1;
    any_c = 1;
    nseg = 1;
  }

  for (k = 0; k < nseg && st == MOSS_OK; k++) {
    moss_node **nodes = NULL;
    int nn = 0, first = -1, dev;
    moss_bundle_step *s;
    size_t start;
    for (i = 0; i < g->nnodes; i++)
      if (g->nodes[i]->segment == k) {
        if (first < 0) first = i;
        nn++;
      }
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
      snprintf(entry_pool[k], sizeof entry_pool[k], "%s_seg%d", a->name, k);
      s->entry = entry_pool[k];
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
      moss_plugin *pl = a->plugins ? a->plugins[dev] : NULL;
      if (!pl) {
        st = moss_fail(ctx, MOSS_E_INTERNAL, g->nodes[first], "no plugin for device %d", dev);
        break;
      }
      nodes = g->nodes + first;
      st = moss_plugin_lower(ctx, pl, g, nodes, nn, &blobs[nblobs], &in_ids, &nin, &out_ids, &nout);
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

  if (any_c) {
    if (is_llvm_device(t, a->host))
      st = build_native_code(ctx, a, seg_is_c, nseg, triple, sizeof triple, features, sizeof features,
                             &code, &ncode);
    else
      st = build_cpu_code(ctx, a, seg_is_c, nseg, triple, sizeof triple, features, sizeof features,
                          &code, &ncode);
    if (st != MOSS_OK) goto done;
  }
  for (i = 0; i < ndev; i++) {
    devs[i].id = moss_target_device_id(t, i);
    devs[i].kind = moss_target_device_kind(t, i);
    devs[i].backend = moss_target_device_backend(t, i);
    devs[i].plugin_path = a->plugins && a->plugins[i] ? moss_plugin_path(a->plugins[i]) : NULL;
  }
  d.target = moss_target_name(t);
  d.triple = any_c ? triple : NULL;
  d.features = features;
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
  d.cpu_code = code;
  d.cpu_code_bytes = ncode;
  d.cpu_device = (uint32_t)a->host;
  d.cpu_code_format = is_llvm_device(t, a->host) ? MOSS_BUNDLE_CODE_ELF_OBJECT : MOSS_BUNDLE_CODE_ELF_SHARED;
  d.nblobs = nblobs;
  d.blobs = blob_ptr;
  d.blob_bytes = blob_len;
  d.blob_device = blob_dev;
  d.report_json = a->report_json;
  st = moss_bundle_write(ctx, &d, a->out);
done:
  if (code) moss_free(ctx, code, is_llvm_device(t, a->host) ? ncode : ncode + 1);
  if (blobs)
    for (i = 0; i < a->nsegments + 1; i++) moss_buf_deinit(&blobs[i]);
  moss_free(ctx, blobs, sizeof *blobs * ((size_t)a->nsegments + 1));
  moss_free(ctx, blob_ptr, sizeof *blob_ptr * ((size_t)a->nsegments + 1));
  moss_free(ctx, blob_len, sizeof *blob_len * ((size_t)a->nsegments + 1));
  moss_free(ctx, blob_dev, sizeof *blob_dev * ((size_t)a->nsegments + 1));
  moss_free(ctx, seg_is_c, (size_t)a->nsegments + 2);
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
