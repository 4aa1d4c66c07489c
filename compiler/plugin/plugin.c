/* plugin.c - the compile side of vendor plugins. The partitioner opens the
 * plugin a target device names, asks it node by node whether it takes each
 * one (moss_plugin_supports) and hands it each run of consecutive plugin
 * nodes to lower to a blob (moss_plugin_lower), which the bundle carries to
 * the runtime. The plugin sees only the read-only views of
 * plugins/include/moss_plugin.h; they are built here in a scratch arena for
 * one call and dropped when it returns, so a plugin that keeps a pointer is
 * caught by ASan rather than left reading moss's IR. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../ops/ops.h"
#include "moss_plugin.h"
#include "plugin.h"

struct moss_plugin {
  void *dl;
  const moss_plugin_compiler *c;
  char *path, *name;
  size_t path_size, name_size;
  /* The device the plugin compiles for (moss_plugin_bind), in |tarena|:
   * its strings are copies, so the view outlives nothing it points at. */
  moss_plugin_target target;
  moss_arena *tarena;
};

static char *dup_str(moss_ctx *ctx, const char *s, size_t *out_size) {
  size_t n = strlen(s) + 1;
  char *d = moss_alloc(ctx, n);
  if (d) memcpy(d, s, n);
  *out_size = d ? n : 0;
  return d;
}

void moss_plugin_close(moss_ctx *ctx, moss_plugin *p) {
  if (!p) return;
  if (p->tarena) moss_arena_destroy(p->tarena);
  if (p->dl) dlclose(p->dl);
  moss_free(ctx, p->path, p->path_size);
  moss_free(ctx, p->name, p->name_size);
  moss_free(ctx, p, sizeof *p);
}

/* Closes |dl| and reports one target error about |path|. */
static moss_status refuse(moss_ctx *ctx, void *dl, const char *path, const char *what,
                          const char *detail) {
  if (dl) dlclose(dl);
  return moss_fail(ctx, MOSS_E_TARGET, NULL, "plugin '%s': %s%s", path, what, detail);
}

moss_status moss_plugin_open(moss_ctx *ctx, const char *path, const char *name, moss_plugin **out) {
  void *dl, *sym;
  moss_plugin_abi_version_fn abi_fn;
  moss_plugin_compiler_get_fn get_fn;
  const moss_plugin_compiler *c;
  moss_plugin *p;
  uint32_t abi;
  char detail[256];
  *out = NULL;
  if (!path || !*path)
    return moss_fail(ctx, MOSS_E_TARGET, NULL, "plugin%s%s%s: no library path given",
                     name ? " '" : "", name ? name : "", name ? "'" : "");
  dlerror();
  dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    const char *e = dlerror();
    return refuse(ctx, NULL, path, "cannot load: ", e ? e : "dlopen failed");
  }
  /* ABI version first: nothing else in a library of another version can
   * be trusted, not even the layout of its tables. */
  if (!(sym = dlsym(dl, "moss_plugin_abi_version")))
    return refuse(ctx, dl, path, "does not export moss_plugin_abi_version", "");
  abi_fn = (moss_plugin_abi_version_fn)sym;
  abi = abi_fn();
  if (abi != MOSS_PLUGIN_ABI_VERSION) {
    snprintf(detail, sizeof detail, "built for plugin ABI %u, this moss speaks %u", (unsigned)abi,
             (unsigned)MOSS_PLUGIN_ABI_VERSION);
    return refuse(ctx, dl, path, detail, "");
  }
  if (!(sym = dlsym(dl, "moss_plugin_compiler_get")))
    return refuse(ctx, dl, path, "does not export moss_plugin_compiler_get", "");
  get_fn = (moss_plugin_compiler_get_fn)sym;
  if (!(c = get_fn()))
    return refuse(ctx, dl, path,
                  "has no compile side (moss_plugin_compiler_get() returned NULL)", "");
  if (c->abi_version != MOSS_PLUGIN_ABI_VERSION) {
    snprintf(detail, sizeof detail,
             "its compiler table says plugin ABI %u, this moss speaks %u",
             (unsigned)c->abi_version, (unsigned)MOSS_PLUGIN_ABI_VERSION);
    return refuse(ctx, dl, path, detail, "");
  }
  if (c->struct_size != sizeof(moss_plugin_compiler)) {
    snprintf(detail, sizeof detail, "its compiler table is %u bytes, this moss expects %u",
             (unsigned)c->struct_size, (unsigned)sizeof(moss_plugin_compiler));
    return refuse(ctx, dl, path, detail, "");
  }
  if (!c->name || !*c->name)
    return refuse(ctx, dl, path, "its compiler table has no name", "");
  if (name && strcmp(c->name, name) != 0) {
    snprintf(detail, sizeof detail, "is named '%.60s', but the target asks for plugin:%.60s",
             c->name, name);
    return refuse(ctx, dl, path, detail, "");
  }
  if (!c->supports || !c->lower)
    return refuse(ctx, dl, path, "its compiler table has no ",
                  !c->supports ? "supports() function" : "lower() function");
  if (!(p = moss_alloc(ctx, sizeof *p))) {
    dlclose(dl);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "plugin '%s': out of memory", path);
  }
  memset(p, 0, sizeof *p);
  p->dl = dl;
  p->c = c;
  p->path = dup_str(ctx, path, &p->path_size);
  p->name = dup_str(ctx, c->name, &p->name_size);
  if (!p->path || !p->name) {
    moss_plugin_close(ctx, p);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "plugin '%s': out of memory", path);
  }
  if (moss_file_note_input(ctx, path) != MOSS_OK) { /* a compile input: cache key, depfile */
    moss_plugin_close(ctx, p);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "plugin '%s': out of memory", path);
  }
  *out = p;
  return MOSS_OK;
}

/* A copy of |s| in |a|; "" for NULL; NULL when out of memory. */
static const char *arena_str(moss_arena *a, const char *s) {
  size_t n = s ? strlen(s) + 1 : 1;
  char *d = moss_arena_alloc(a, n, 1);
  if (d) memcpy(d, s ? s : "", n);
  return d;
}

moss_status moss_plugin_bind(moss_ctx *ctx, moss_plugin *p, const moss_target *t, int device) {
  moss_plugin_target *v = &p->target;
  moss_plugin_level *lv;
  moss_plugin_param *pr;
  int k, nl = moss_target_device_level_count(t, device);
  int np = moss_target_device_param_count(t, device), ok = 1;
  double pj;
  const char *src;
  if (p->tarena) moss_arena_destroy(p->tarena);
  p->tarena = NULL;
  memset(v, 0, sizeof *v);
  if (moss_arena_create(ctx->alloc, 1024, &p->tarena) != MOSS_OK)
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "plugin '%s': out of memory", p->path);
  lv = moss_arena_alloc(p->tarena, sizeof *lv * (size_t)(nl + 1), 8);
  pr = moss_arena_alloc(p->tarena, sizeof *pr * (size_t)(np + 1), 8);
  v->target = arena_str(p->tarena, moss_target_name(t));
  v->device = arena_str(p->tarena, moss_target_device_id(t, device));
  ok = lv && pr && v->target && v->device;
  for (k = 0; ok && k < nl; k++) {
    moss_target_level l;
    moss_target_device_level(t, device, k, &l);
    lv[k].name = arena_str(p->tarena, l.name);
    lv[k].size_bytes = l.size_bytes;
    lv[k].bandwidth_gbps = l.bandwidth_gbps;
    lv[k].latency_ns = l.latency_ns;
    lv[k].pj_per_byte = l.has_energy ? l.pj_per_byte : -1.0;
    ok = lv[k].name != NULL;
  }
  for (k = 0; ok && k < np; k++) {
    const char *name, *value;
    moss_target_device_param(t, device, k, &name, &value);
    pr[k].name = arena_str(p->tarena, name);
    pr[k].value = arena_str(p->tarena, value);
    ok = pr[k].name && pr[k].value;
  }
  if (!ok) {
    moss_arena_destroy(p->tarena);
    p->tarena = NULL;
    memset(v, 0, sizeof *v);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "plugin '%s': out of memory", p->path);
  }
  v->clock_mhz = moss_target_device_clock_mhz(t, device);
  v->units = moss_target_device_units(t, device);
  v->macs_per_cycle_i8 = moss_target_device_macs_per_cycle(t, device, "i8");
  v->pj_per_mac_i8 = moss_target_device_mac_pj(t, device, "i8", &pj, &src) ? pj : -1.0;
  if (!moss_target_device_power(t, device, &v->idle_w, &v->active_w, &src))
    v->idle_w = v->active_w = -1.0;
  v->nlevels = nl;
  v->nparams = np;
  v->levels = lv;
  v->params = pr;
  return MOSS_OK;
}

const char *moss_plugin_name(const moss_plugin *p) { return p->name; }
const char *moss_plugin_path(const moss_plugin *p) { return p->path; }

/* ---- views ---------------------------------------------------------------- */

/* The views of one call: one moss_plugin_tensor per value (so a plugin can
 * follow edges by pointer), all in |arena|. */
typedef struct views {
  moss_arena *arena;
  const moss_value **vals;
  moss_plugin_tensor **tensors;
  int n, cap;
} views;

/* Why |v| cannot be shown to a plugin; NULL when it can. */
static const char *unviewable(const moss_value *v) {
  int i;
  if (v->rank < 0) return "has an unknown rank";
  if (v->rank > MOSS_PLUGIN_MAX_RANK) return "has a rank above 8";
  for (i = 0; i < v->rank; i++)
    if (v->dims[i] < 0) return "has a symbolic dimension";
  return NULL;
}

static moss_plugin_tensor *tensor_view(views *w, const moss_value *v) {
  moss_plugin_tensor *t;
  int i;
  for (i = 0; i < w->n; i++)
    if (w->vals[i] == v) return w->tensors[i];
  if (w->n == w->cap || unviewable(v)) return NULL;
  if (!(t = moss_arena_alloc(w->arena, sizeof *t, 8))) return NULL;
  t->name = v->name ? v->name : "";
  t->dtype = (int32_t)v->dtype;
  t->rank = v->rank;
  for (i = 0; i < v->rank; i++) t->dims[i] = v->dims[i];
  t->nbytes = (uint64_t)moss_value_nbytes(v);
  t->data = v->data;
  w->vals[w->n] = v;
  w->tensors[w->n++] = t;
  return t;
}

static int32_t act_view(moss_act_kind k) {
  switch (k) {
  case MOSS_ACT_NONE: return MOSS_PLUGIN_ACT_NONE;
  case MOSS_ACT_RELU: return MOSS_PLUGIN_ACT_RELU;
  case MOSS_ACT_CLIP: return MOSS_PLUGIN_ACT_CLIP;
  case MOSS_ACT_LEAKY_RELU: return MOSS_PLUGIN_ACT_LEAKY_RELU;
  case MOSS_ACT_SIGMOID: return MOSS_PLUGIN_ACT_SIGMOID;
  case MOSS_ACT_TANH: return MOSS_PLUGIN_ACT_TANH;
  }
  return -1;
}

/* Output |i| of |n| if present (non-NULL, non-empty name), else NULL. */
static const moss_value *node_output(const moss_node *n, int i) {
  const moss_value *v = n->outputs[i];
  return v && v->name && *v->name ? v : NULL;
}

/* Builds the view of |n|; NULL when out of memory or a tensor cannot be
 * viewed (the callers check unviewable() first, so that means memory). */
static moss_plugin_node *node_view(views *w, const moss_node *n) {
  moss_plugin_node *nv = moss_arena_alloc(w->arena, sizeof *nv, 8);
  const moss_plugin_tensor **ins, **outs;
  moss_plugin_attr *attrs;
  int i;
  if (!nv) return NULL;
  ins = moss_arena_alloc(w->arena, sizeof *ins * (size_t)(n->ninputs + 1), 8);
  outs = moss_arena_alloc(w->arena, sizeof *outs * (size_t)(n->noutputs + 1), 8);
  attrs = moss_arena_alloc(w->arena, sizeof *attrs * (size_t)(n->nattrs + 1), 8);
  if (!ins || !outs || !attrs) return NULL;
  for (i = 0; i < n->ninputs; i++) {
    const moss_value *v = moss_node_input(n, i);
    if (v && !(ins[i] = tensor_view(w, v))) return NULL;
  }
  for (i = 0; i < n->noutputs; i++) {
    const moss_value *v = node_output(n, i);
    if (v && !(outs[i] = tensor_view(w, v))) return NULL;
  }
  for (i = 0; i < n->nattrs; i++) {
    const moss_attr *a = &n->attrs[i];
    moss_plugin_attr *d = &attrs[i];
    d->name = a->name ? a->name : "";
    d->kind = (int32_t)a->type;
    switch (a->type) {
    case MOSS_ATTR_FLOAT: d->f = a->f; break;
    case MOSS_ATTR_INT: d->i = a->i; break;
    case MOSS_ATTR_STRING: d->s = a->s ? a->s : ""; break;
    case MOSS_ATTR_FLOATS: d->count = a->n; d->floats = a->floats; break;
    case MOSS_ATTR_INTS: d->count = a->n; d->ints = a->ints; break;
    default: d->count = a->n; break; /* present, contents not exposed in ABI 1 */
    }
  }
  nv->name = n->name ? n->name : "";
  nv->op_type = n->op_type ? n->op_type : "";
  nv->domain = n->domain ? n->domain : "";
  nv->ninputs = n->ninputs;
  nv->noutputs = n->noutputs;
  nv->nattrs = n->nattrs;
  nv->act = act_view(n->act.kind);
  nv->act_alpha = n->act.alpha;
  nv->act_beta = n->act.beta;
  nv->inputs = ins;
  nv->outputs = outs;
  nv->attrs = attrs;
  nv->nrequant = 0;
  nv->requant = NULL;
  {
    int64_t cnt = moss_requant_node(n, NULL, 0), k;
    double *ms;
    moss_plugin_requant *rq;
    if (cnt > 0 && cnt <= INT32_MAX) {
      ms = moss_arena_alloc(w->arena, sizeof *ms * (size_t)cnt, 8);
      rq = moss_arena_alloc(w->arena, sizeof *rq * (size_t)cnt, 8);
      if (!ms || !rq) return NULL;
      moss_requant_node(n, ms, cnt);
      for (k = 0; k < cnt; k++) {
        moss_requant r;
        moss_requant_compute(ms[k], &r);
        rq[k].mult = r.mult;
        rq[k].shift = r.shift;
      }
      nv->nrequant = (int32_t)cnt;
      nv->requant = rq;
    }
  }
  return nv;
}

/* Sets up |w| for up to |nvalues| tensors. */
static moss_status views_init(moss_ctx *ctx, views *w, size_t nvalues) {
  memset(w, 0, sizeof *w);
  if (nvalues > (size_t)INT32_MAX / 2) return MOSS_E_NOMEM;
  if (moss_arena_create(ctx->alloc, 4096, &w->arena) != MOSS_OK) return MOSS_E_NOMEM;
  w->vals = moss_arena_alloc(w->arena, sizeof *w->vals * (nvalues + 1), 8);
  w->tensors = moss_arena_alloc(w->arena, sizeof *w->tensors * (nvalues + 1), 8);
  if (!w->vals || !w->tensors) {
    moss_arena_destroy(w->arena);
    w->arena = NULL;
    return MOSS_E_NOMEM;
  }
  w->cap = (int)nvalues;
  return MOSS_OK;
}

/* Why a tensor of |n| cannot be viewed, written into |why|; 0 when all can. */
static int node_unviewable(const moss_node *n, char *why, size_t whycap) {
  int i;
  for (i = 0; i < n->ninputs + n->noutputs; i++) {
    const moss_value *v = i < n->ninputs ? moss_node_input(n, i) : node_output(n, i - n->ninputs);
    const char *bad = v ? unviewable(v) : NULL;
    if (bad) {
      if (whycap) snprintf(why, whycap, "tensor '%s' %s", v->name ? v->name : "", bad);
      return 1;
    }
  }
  return 0;
}

int moss_plugin_supports(moss_ctx *ctx, moss_plugin *p, const moss_node *n, char *why,
                         size_t whycap) {
  views w;
  moss_plugin_node *nv;
  char buf[256];
  int yes;
  if (whycap) why[0] = 0;
  if (node_unviewable(n, why, whycap)) return 0;
  if (views_init(ctx, &w, (size_t)n->ninputs + (size_t)n->noutputs) != MOSS_OK ||
      !(nv = node_view(&w, n))) {
    if (w.arena) moss_arena_destroy(w.arena);
    if (whycap) snprintf(why, whycap, "out of memory while asking plugin '%s'", p->name);
    moss_fail(ctx, MOSS_E_NOMEM, n, "out of memory while asking plugin '%s'", p->name);
    return 0;
  }
  buf[0] = 0;
  yes = p->c->supports(&p->target, nv, buf, sizeof buf) ? 1 : 0;
  buf[sizeof buf - 1] = 0;
  moss_arena_destroy(w.arena);
  if (!yes && whycap) {
    if (buf[0])
      snprintf(why, whycap, "%s", buf);
    else
      snprintf(why, whycap, "plugin '%s' declines it", p->name);
  }
  return yes;
}

int moss_plugin_estimate_node(moss_ctx *ctx, moss_plugin *p, const moss_node *n, double *out_cycles,
                         double *out_level_bytes, int nlevels) {
  views w;
  moss_plugin_node *nv;
  moss_plugin_estimate e;
  char why[160];
  int k, yes;
  *out_cycles = 0;
  for (k = 0; k < nlevels; k++) out_level_bytes[k] = 0;
  if (!p->c->estimate || nlevels > MOSS_PLUGIN_MAX_RANK || node_unviewable(n, why, sizeof why))
    return 0;
  if (views_init(ctx, &w, (size_t)n->ninputs + (size_t)n->noutputs) != MOSS_OK ||
      !(nv = node_view(&w, n))) {
    if (w.arena) moss_arena_destroy(w.arena);
    moss_fail(ctx, MOSS_E_NOMEM, n, "out of memory while asking plugin '%s'", p->name);
    return 0;
  }
  memset(&e, 0, sizeof e);
  yes = p->c->estimate(&p->target, nv, &e) ? 1 : 0;
  moss_arena_destroy(w.arena);
  if (!yes || !(e.cycles >= 0) || e.cycles > 1e18) return 0;
  for (k = 0; k < nlevels; k++)
    if (!(e.level_bytes[k] >= 0) || e.level_bytes[k] > 1e18) return 0;
  *out_cycles = e.cycles;
  for (k = 0; k < nlevels; k++) out_level_bytes[k] = e.level_bytes[k];
  return 1;
}

/* ---- lowering ------------------------------------------------------------- */

static int sink_write(void *user, const void *data, uint64_t nbytes) {
  moss_buf *b = user;
  if (nbytes == 0) return 0;
  if (!data || nbytes > (uint64_t)SIZE_MAX) return 1;
  moss_buf_put(b, data, (size_t)nbytes);
  return b->failed ? 1 : 0;
}

static int in_list(moss_node *const *nodes, int nnodes, const moss_node *n) {
  int i;
  for (i = 0; i < nnodes; i++)
    if (nodes[i] == n) return 1;
  return 0;
}

/* Checks that |v| is value |v->id| of |g|, so it can index per-value marks. */
static int known(const moss_graph *g, const moss_value *v) {
  return v->id >= 0 && v->id < g->nvalues && g->values[v->id] == v;
}

/* Copies |n| ints into a new array of |ctx|; NULL for 0. */
static moss_status copy_ids(moss_ctx *ctx, const int *src, int n, int **out) {
  *out = NULL;
  if (n == 0) return MOSS_OK;
  if (!(*out = moss_alloc(ctx, sizeof(int) * (size_t)n))) return MOSS_E_NOMEM;
  memcpy(*out, src, sizeof(int) * (size_t)n);
  return MOSS_OK;
}

/* The body of moss_plugin_lower() once |w| is set up; every scratch array
 * lives in |w.arena|. */
static moss_status lower(moss_ctx *ctx, moss_plugin *p, const moss_graph *g,
                         moss_node *const *nodes, int nnodes, views *w, moss_buf *blob,
                         int **in_ids, int *nin, int **out_ids, int *nout) {
  char *produced, *needed, *listed;
  const moss_plugin_tensor **sg_in, **sg_out;
  const moss_plugin_node **sg_nodes;
  int *ins, *outs, ni = 0, no = 0, i, k, ret;
  moss_plugin_subgraph sg;
  moss_plugin_sink sink;
  char err[512], why[160];
  size_t nv = (size_t)g->nvalues + 1, old_len = blob->len;

  produced = moss_arena_alloc(w->arena, nv, 1);
  needed = moss_arena_alloc(w->arena, nv, 1);
  listed = moss_arena_alloc(w->arena, nv, 1);
  ins = moss_arena_alloc(w->arena, sizeof(int) * (size_t)w->cap + 1, 8);
  outs = moss_arena_alloc(w->arena, sizeof(int) * (size_t)w->cap + 1, 8);
  sg_in = moss_arena_alloc(w->arena, sizeof *sg_in * (size_t)w->cap + 1, 8);
  sg_out = moss_arena_alloc(w->arena, sizeof *sg_out * (size_t)w->cap + 1, 8);
  sg_nodes = moss_arena_alloc(w->arena, sizeof *sg_nodes * (size_t)nnodes, 8);
  if (!produced || !needed || !listed || !ins || !outs || !sg_in || !sg_out || !sg_nodes)
    return moss_fail(ctx, MOSS_E_NOMEM, nodes[0], "out of memory lowering for plugin '%s'",
                     p->name);

  /* What the list produces, checking every value belongs to |g|. */
  for (k = 0; k < nnodes; k++) {
    const moss_node *n = nodes[k];
    if (node_unviewable(n, why, sizeof why))
      return moss_fail(ctx, MOSS_E_INTERNAL, n, "lowering for plugin '%s': %s", p->name, why);
    for (i = 0; i < n->ninputs + n->noutputs; i++) {
      const moss_value *v =
          i < n->ninputs ? moss_node_input(n, i) : node_output(n, i - n->ninputs);
      if (v && !known(g, v))
        return moss_fail(ctx, MOSS_E_INTERNAL, n, "value '%s' is not in the graph",
                         v->name ? v->name : "");
      if (v && i >= n->ninputs) produced[v->id] = 1;
    }
  }
  /* What is needed outside: graph outputs and reads by other live nodes. */
  for (i = 0; i < g->noutputs; i++) {
    if (g->outputs[i] && known(g, g->outputs[i])) needed[g->outputs[i]->id] = 1;
    /* a bounded output's length, read on the host after the run (docs/dynamic-shapes.md) */
    if (g->outputs[i] && g->outputs[i]->bounded && g->outputs[i]->length && known(g, g->outputs[i]->length))
      needed[g->outputs[i]->length->id] = 1;
  }
  for (k = 0; k < g->nnodes; k++) {
    const moss_node *n = g->nodes[k];
    if (n->dead || in_list(nodes, nnodes, n)) continue;
    for (i = 0; i < n->ninputs; i++) {
      const moss_value *v = moss_node_input(n, i);
      if (v && known(g, v)) needed[v->id] = 1;
    }
  }

  for (k = 0; k < nnodes; k++) {
    const moss_node *n = nodes[k];
    for (i = 0; i < n->ninputs; i++) {
      const moss_value *v = moss_node_input(n, i);
      if (!v || v->data || produced[v->id] || listed[v->id]) continue;
      listed[v->id] = 1;
      ins[ni] = v->id;
      if (!(sg_in[ni++] = tensor_view(w, v))) goto nomem;
    }
  }
  for (k = 0; k < nnodes; k++) {
    const moss_node *n = nodes[k];
    for (i = 0; i < n->noutputs; i++) {
      const moss_value *v = node_output(n, i);
      if (!v || !needed[v->id] || listed[v->id]) continue;
      listed[v->id] = 1;
      outs[no] = v->id;
      if (!(sg_out[no++] = tensor_view(w, v))) goto nomem;
    }
  }
  for (k = 0; k < nnodes; k++)
    if (!(sg_nodes[k] = node_view(w, nodes[k]))) goto nomem;

  sg.nnodes = nnodes;
  sg.ninputs = ni;
  sg.noutputs = no;
  sg.nodes = sg_nodes;
  sg.inputs = sg_in;
  sg.outputs = sg_out;
  sink.user = blob;
  sink.write = sink_write;
  err[0] = 0;
  ret = p->c->lower(&p->target, &sg, &sink, err, sizeof err);
  err[sizeof err - 1] = 0;
  if (blob->failed) goto nomem;
  if (ret != 0) {
    blob->len = old_len;
    if (blob->data) blob->data[old_len] = 0;
    return moss_fail(ctx, MOSS_E_TARGET, nodes[0], "plugin '%s': %s", p->name,
                     err[0] ? err : "lower() failed without a message");
  }
  if (copy_ids(ctx, ins, ni, in_ids) != MOSS_OK) goto nomem;
  if (copy_ids(ctx, outs, no, out_ids) != MOSS_OK) {
    moss_free(ctx, *in_ids, sizeof(int) * (size_t)ni);
    *in_ids = NULL;
    goto nomem;
  }
  *nin = ni;
  *nout = no;
  return MOSS_OK;

nomem:
  blob->len = old_len;
  if (blob->data) blob->data[old_len] = 0;
  return moss_fail(ctx, MOSS_E_NOMEM, nodes[0], "out of memory lowering for plugin '%s'",
                   p->name);
}

moss_status moss_plugin_lower(moss_ctx *ctx, moss_plugin *p, const moss_graph *g,
                              moss_node *const *nodes, int nnodes, moss_buf *blob, int **in_ids,
                              int *nin, int **out_ids, int *nout) {
  views w;
  size_t nvals = 0;
  moss_status st;
  int k;
  *in_ids = *out_ids = NULL;
  *nin = *nout = 0;
  if (!nodes || nnodes <= 0)
    return moss_fail(ctx, MOSS_E_INTERNAL, NULL, "lowering an empty subgraph for plugin '%s'",
                     p->name);
  for (k = 0; k < nnodes; k++) {
    if (!nodes[k])
      return moss_fail(ctx, MOSS_E_INTERNAL, NULL, "lowering a NULL node for plugin '%s'",
                       p->name);
    nvals += (size_t)nodes[k]->ninputs + (size_t)nodes[k]->noutputs;
  }
  if (views_init(ctx, &w, nvals) != MOSS_OK)
    return moss_fail(ctx, MOSS_E_NOMEM, nodes[0], "out of memory lowering for plugin '%s'",
                     p->name);
  st = lower(ctx, p, g, nodes, nnodes, &w, blob, in_ids, nin, out_ids, nout);
  moss_arena_destroy(w.arena);
  return st;
}
