/* pipeline.c - the whole compiler on one screen: the ONNX model is
 * imported, rewritten by the passes in order (the IR verifier runs after
 * each in debug builds), placed on the target's devices, given sparse
 * weight formats its devices' backends can encode, planned into one arena,
 * costed, and emitted as a bundle or as one backend's standalone form. Each
 * device's backend comes from the backend table (backends/backend.h); this
 * file names none. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../backends/backend.h"
#include "../cost/cost.h"
#include "../kernel/kernel.h"
#include "../passes/partition.h"
#include "../passes/passes.h"
#include "../passes/prune.h"
#include "../passes/sparse.h"
#include "../plan/plan.h"
#include "../target/target.h"
#include "driver.h"
#include "emit.h"
#include "profile.h"
#include "progress.h"
#include "ptq.h"

/* What the steps that need more than the graph see. */
typedef struct stage {
  moss_ctx *ctx;
  moss_graph *g;
  const moss_compile_opts *opts;
  const moss_target *target;
  const moss_backend_device *devices; /* per device of |target|: its backend binding */
  int nsegments;                      /* set by "partition" */
  moss_ptq_calibration calib;         /* set by "calibrate" (--quantize) */
  const moss_act_power *act_power;    /* set by "prune" for columns-act: the inputs' mean
                                       * squares, which the calibration build reuses */
  int act_npower;
} stage;

typedef struct pass_entry {
  const char *name;
  moss_pass_fn run;              /* a pass over the graph alone; NULL: |step| */
  moss_status (*step)(stage *s); /* needs the options, the target or its backends */
} pass_entry;

static moss_status prune(stage *s);
static moss_status float16(stage *s);
static moss_status calibrate(stage *s);
static moss_status quantize(stage *s);
static moss_status partition(stage *s);
static moss_status residual(stage *s);
static moss_status half(stage *s);
static moss_status chains(stage *s);
static moss_status sparse(stage *s);
static moss_status batch(stage *s);

static const pass_entry passes[] = {
    {"contrib", moss_pass_contrib, NULL},   /* ONNX Runtime's QGemm, QLinearAdd... as Q/DQ */
    {"check", moss_pass_check, NULL},       /* unknown ops, domains, arity: all reported */
    {"infer", moss_pass_infer, NULL},       /* shapes and dtypes, folding constants on the way */
    {"batch", NULL, batch},                 /* an open batch axis: no node mixes its rows */
    {"bn-fold", moss_pass_bn_fold, NULL},   /* BatchNormalization into Conv/Gemm weights */
    {"fuse", moss_pass_fuse, NULL},         /* bias Add and activation into Conv/Gemm/MatMul */
    {"prune", NULL, prune},                 /* --prune: weights zeroed (docs/pruning.md) */
    {"float16", NULL, float16},             /* --float16: layers rounded to float16 */
    {"calibrate", NULL, calibrate},         /* --quantize: run the float model, measure ranges */
    {"quantize", NULL, quantize},           /* --quantize: Q/DQ pairs from those ranges */
    {"qdq", moss_pass_qdq, NULL},           /* Dequantize -> op -> Quantize into integer ops */
    {"fold", moss_pass_fold, NULL},         /* constants exposed by the rewrites */
    {"dce", moss_pass_dce, NULL},           /* nodes no output needs */
    {"partition", NULL, partition},         /* every node onto a device whose backend takes it */
    {"half", NULL, half},                   /* float16 arithmetic where the device has it */
    {"residual", NULL, residual},           /* residual Add and its activation into the Conv */
    {"chains", NULL, chains},               /* elementwise chains into one MossFused node */
    {"sparse", NULL, sparse},               /* dense or a format the device's backend encodes */
};
#define NPASSES (sizeof passes / sizeof passes[0])

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* -v: the time since |*t0| for stage |name|; restarts the clock. */
static void stage_done(const moss_compile_opts *opts, const char *name, double *t0) {
  double t = now_s();
  if (opts->timings) fprintf(stderr, "moss: time %-10s %8.3f s\n", name, t - *t0);
  *t0 = t;
}

static void dump(moss_ctx *ctx, moss_graph *g, const char *title) {
  moss_buf b;
  moss_progress_clear(); /* stdout may be the same terminal */
  moss_buf_init(&b, ctx);
  moss_ir_print(g, &b);
  printf("# IR after %s\n%s", title, b.data ? b.data : "");
  moss_buf_deinit(&b);
}

/* --dump-kernels: each node's kernel description, or why it has none. */
static moss_status dump_kernels(moss_ctx *ctx, const moss_graph *g, const moss_backend_device *devs) {
  moss_arena *arena;
  moss_buf b;
  moss_status st = MOSS_OK;
  int i;
  MOSS_TRY(moss_arena_create(ctx->alloc, 1 << 16, &arena));
  moss_buf_init(&b, ctx);
  for (i = 0; i < g->nnodes && st == MOSS_OK; i++) {
    const moss_node *n = g->nodes[i];
    moss_kernel *k;
    moss_kernel_cpu kc;
    if (!moss_kernel_can_lower(n)) {
      printf("kernel node %d '%s' (%s): no description yet (printed as C directly)\n", n->id, n->name,
             n->op_type);
      continue;
    }
    moss_arena_reset(arena);
    moss_backend_device_kernel_cpu(&devs[n->device], &kc);
    st = moss_kernel_lower(ctx, arena, n, &kc, &k);
    if (st != MOSS_OK) break;
    b.len = 0;
    moss_kernel_print(k, &b);
    if (b.failed) st = moss_fail(ctx, MOSS_E_NOMEM, n, "--dump-kernels");
    else fwrite(b.data, 1, b.len, stdout);
  }
  moss_buf_deinit(&b);
  moss_arena_destroy(arena);
  return st;
}

static void model_name(const char *path, char *out, size_t cap) {
  const char *base = strrchr(path, '/');
  size_t n;
  base = base ? base + 1 : path;
  n = strcspn(base, ".");
  if (n == 0) n = strlen(base);
  snprintf(out, cap, "%.*s", (int)n, base);
}

/* --explain: every node's device and why, then the transfers. */
static void explain(const moss_graph *g, const moss_target *t, const moss_backend_device *devs,
                    int host) {
  int i, j, d, ndev = moss_target_device_count(t);
  printf("# placement on target '%s':", moss_target_name(t));
  for (d = 0; d < ndev; d++)
    printf("%s %s (%s, %s)", d ? "," : "", moss_target_device_id(t, d), moss_target_device_kind(t, d),
           devs[d].name);
  printf("; fallback %s\n", moss_target_fallback(t) >= 0
                                ? moss_target_device_id(t, moss_target_fallback(t)) : "none");
  for (i = 0; i < g->nnodes; i++) {
    const moss_node *n = g->nodes[i];
    if (n->nbody) { /* a MossFused chain: its nodes' placements under it */
      printf("node %d '%s' (%s) -> %s [segment %d]: a chain of %d elementwise nodes in one kernel "
             "(the chains pass)\n", n->id, n->name, n->op_type, moss_target_device_id(t, n->device),
             n->segment, n->nbody);
      for (j = 0; j < n->nbody; j++)
        printf("  | '%s' (%s) -> %s: %s\n", n->body[j]->name, n->body[j]->op_type,
               moss_target_device_id(t, n->body[j]->device),
               n->body[j]->placement ? n->body[j]->placement : "");
      continue;
    }
    printf("node %d '%s' (%s) -> %s [segment %d]: %s\n", n->id, n->name, n->op_type,
           moss_target_device_id(t, n->device), n->segment, n->placement ? n->placement : "");
  }
  for (i = 0; i < g->nnodes; i++) {
    const moss_node *n = g->nodes[i];
    for (j = 0; j < n->ninputs; j++) {
      const moss_value *v = n->inputs[j];
      int from, k, seen = 0;
      if (!v || v->data) continue;
      from = moss_value_device(v, host);
      if (from == n->device) continue;
      for (k = 0; k < i && !seen; k++) { /* once per value and destination */
        int m;
        for (m = 0; m < g->nodes[k]->ninputs; m++)
          if (g->nodes[k]->inputs[m] == v && g->nodes[k]->device == n->device) seen = 1;
      }
      for (k = 0; k < j && !seen; k++) seen = n->inputs[k] == v;
      if (!seen)
        printf("transfer '%s' (%zu bytes): %s -> %s, before node %d '%s'\n", v->name,
               moss_value_nbytes(v), moss_target_device_id(t, from),
               moss_target_device_id(t, n->device), n->id, n->name);
    }
  }
  for (i = 0; i < g->noutputs; i++) {
    const moss_value *v = g->outputs[i];
    if (moss_value_device(v, host) != host)
      printf("transfer '%s' (%zu bytes): %s -> %s, graph output\n", v->name, moss_value_nbytes(v),
             moss_target_device_id(t, moss_value_device(v, host)), moss_target_device_id(t, host));
  }
}

/* Counts the nodes the qdq pass folded to integer ops and the float nodes
 * it left inside quantized regions (n->qnote). */
static void qdq_counts(const moss_graph *g, int *out_int, int *out_float) {
  int i;
  *out_int = *out_float = 0;
  for (i = 0; i < g->nnodes; i++) {
    const char *q = g->nodes[i]->qnote;
    if (!q) continue;
    if (!strncmp(q, "integer", 7)) ++*out_int;
    else ++*out_float;
  }
}

/* --explain, quantized models: which nodes run in integer arithmetic and
 * which stay float, and why. */
static void explain_qdq(const moss_graph *g) {
  int i, ni, nf;
  qdq_counts(g, &ni, &nf);
  if (!ni && !nf) return;
  printf("# quantized: %d nodes in integer arithmetic, %d float nodes in quantized regions\n", ni,
         nf);
  for (i = 0; i < g->nnodes; i++) {
    const moss_node *n = g->nodes[i];
    if (!n->qnote) continue;
    if (!strncmp(n->qnote, "integer", 7))
      printf("integer: node '%s' (%s): %s\n", n->name, n->op_type, n->qnote + 9);
    else
      printf("stays float: node '%s' (%s): %s\n", n->name, n->op_type, n->qnote + 7);
  }
}

/* Every device that got nodes must be able to emit them in this build. */
static moss_status check_emitters(moss_ctx *ctx, const moss_graph *g, const moss_target *t,
                                  const moss_backend_device *devs) {
  int d, i, bad = 0;
  char why[512];
  for (d = 0; d < moss_target_device_count(t); d++) {
    int count = 0;
    if (moss_backend_device_ready(&devs[d], why, sizeof why)) continue;
    for (i = 0; i < g->nnodes; i++) count += g->nodes[i]->device == d;
    if (!count) continue;
    bad = 1;
    moss_fail(ctx, MOSS_E_TARGET, NULL,
              "target '%s': device '%s' wants backend '%s', %s; %d node%s were placed on it (the "
              "cost report covers it, but there is no code to emit)", moss_target_name(t),
              moss_target_device_id(t, d), moss_target_device_backend(t, d), why, count,
              count == 1 ? "" : "s");
  }
  return bad ? MOSS_E_TARGET : MOSS_OK;
}

/* --emit's default: a bundle, except for bare-metal targets (no libmossrt). */
static const char *default_emit(const moss_target *t) {
  const char *tr = moss_target_device_codegen(t, moss_target_host_device(t), "triple");
  return tr && strstr(tr, "-none") ? "c" : "bundle";
}

const char *moss_default_emit(const struct moss_target *t) { return default_emit(t); }

/* "prune": --prune zeroes float weights, so that calibration and
 * quantization see the pruned model (the calibration build prunes the same
 * way) and the sparse pass at the end measures the zeros. */
static moss_status prune(stage *s) {
  moss_prune_result pr;
  moss_act_power *pw = NULL;
  int npw = 0;
  /* columns-act: the inputs' mean squares over --calibration, measured on
   * the unpruned model, once: a calibration build gets its parent's */
  if (s->opts->act_power) {
    s->act_power = s->opts->act_power;
    s->act_npower = s->opts->act_npower;
  } else if (moss_prune_needs_power(s->opts->prune)) {
    MOSS_TRY(moss_prune_parse(s->ctx, s->opts->prune, &pr.spec)); /* before the long part */
    MOSS_TRY(moss_ptq_power(s->ctx, s->g, s->opts, &pw, &npw));
    s->act_power = pw;
    s->act_npower = npw;
  }
  MOSS_TRY(moss_prune_act(s->ctx, s->g, s->opts->prune, s->act_power, s->act_npower, &pr));
  if (s->opts->verbose) {
    moss_buf pb;
    moss_buf_init(&pb, s->ctx);
    moss_prune_emit_text(&pr, &pb);
    moss_progress_clear();
    if (pb.data) fprintf(stderr, "%s", pb.data);
    moss_buf_deinit(&pb);
  }
  return MOSS_OK;
}

/* "float16": the --float16 layers read and give float16 (passes/half.c);
 * "half" makes them compute in it where the device can. */
static moss_status float16(stage *s) {
  return s->opts->float16 ? moss_pass_half_layers(s->ctx, s->g, s->opts->float16) : MOSS_OK;
}

/* "calibrate": --quantize's float runs on the calibration data, through
 * libmossrt, of the model compiled again with observers (calibrate.c);
 * the range of each value of the graph goes to "quantize". */
static moss_status calibrate(stage *s) {
  moss_compile_opts o = *s->opts;
  o.act_power = s->act_power; /* the calibration build prunes as this one did */
  o.act_npower = s->act_npower;
  return moss_ptq_calibrate(s->ctx, s->g, &o, &s->calib);
}

/* "quantize": Quantize/Dequantize pairs around the layers, from the ranges
 * "calibrate" measured (passes/ptq.c); in the calibration build
 * (opts->observe), every activation becomes a graph output instead. */
static moss_status quantize(stage *s) {
  const moss_ptq_calibration *c = &s->calib;
  char method[64];
  int nq, nk;
  if (s->opts->observe) return moss_ptq_observe(s->ctx, s->g);
  if (!c->ranges) return moss_fail(s->ctx, MOSS_E_INTERNAL, NULL, "quantize before calibrate");
  MOSS_TRY(moss_ptq_insert(s->ctx, s->g, c->ranges, c->nranges, s->opts->keep_float, &nq, &nk));
  if (c->percentile > 0) snprintf(method, sizeof method, "percentile %g", c->percentile);
  else snprintf(method, sizeof method, "minmax");
  if (s->opts->verbose) moss_progress_clear();
  if (s->opts->verbose)
    fprintf(stderr, "moss: quantize: %d layers int8 (per-channel weights), %d kept float, "
            "calibration %lld samples (%s)\n", nq, nk, (long long)c->nsamples, method);
  return MOSS_OK;
}

/* moss_cost_opts.estimate: a device's own cost model, through its backend. */
static int device_estimate(void *user, int d, const moss_node *n, double *out_cycles,
                           double *out_level_bytes, int nlevels) {
  const moss_backend_device *devs = user;
  return devs ? moss_backend_device_estimate(&devs[d], n, out_cycles, out_level_bytes, nlevels)
              : 0;
}

/* The table of placement by cost (moss_partition_opts.node_s): each
 * node's time on each device from the cost model, the graph costed once
 * per device with every node on it (a node the device cannot run is not
 * modeled there, and the partitioner never asks), before planning; a time
 * that leaves out a level without a bandwidth (partial) still counts. */
static moss_status cost_table(stage *s, double **out) {
  moss_graph *g = s->g;
  int nd = moss_target_device_count(s->target), d, i, k;
  size_t nn = (size_t)g->nnodes * (size_t)nd;
  double *node_s = moss_alloc(s->ctx, (nn + 1) * sizeof *node_s);
  moss_cost_opts co;
  moss_status st = MOSS_OK;
  *out = NULL;
  if (!node_s) return moss_fail(s->ctx, MOSS_E_NOMEM, NULL, "placement by cost");
  memset(&co, 0, sizeof co);
  co.estimate = device_estimate;
  co.estimate_user = (void *)s->devices;
  for (i = 0; i < (int)nn; i++) node_s[i] = -1;
  for (d = 0; d < nd && st == MOSS_OK; d++) {
    moss_cost_report *r = NULL;
    for (i = 0; i < g->nnodes; i++) {
      g->nodes[i]->device = d;
      g->nodes[i]->segment = 0;
    }
    st = moss_cost_compute(s->ctx, g, s->target, &co, &r);
    for (i = 0, k = 0; st == MOSS_OK && i < g->nnodes && k < r->nnodes; i++) {
      const moss_cost_figure *f;
      if (g->nodes[i]->dead) continue;
      f = &r->nodes[k++].time_s;
      if (f->label && strcmp(f->label, "not-modeled")) node_s[(size_t)i * (size_t)nd + (size_t)d] = f->value;
    }
    moss_cost_destroy(s->ctx, r);
  }
  for (i = 0; i < g->nnodes; i++) g->nodes[i]->device = -1;
  if (st != MOSS_OK) {
    moss_free(s->ctx, node_s, (nn + 1) * sizeof *node_s);
    return st;
  }
  *out = node_s;
  return MOSS_OK;
}

/* moss_partition_opts.xfer_s: the cost model's transfer time. */
static double xfer_s(void *user, int from, int to, double bytes) {
  return moss_cost_transfer_seconds(user, from, to, bytes);
}

/* Whether a target placed by cost has every node on its host device: a
 * standalone form (--emit c or obj) holds the host's code alone. */
static int host_only(const moss_target *t, const char *emit) {
  return moss_target_placement_cost(t) && moss_target_device_count(t) > 1 && emit &&
         strcmp(emit, "bundle");
}

/* moss_cost_opts.twin_accepts: the partitioner's rule for an f32 node. */
static int twin_accepts(void *user, int d, const moss_node *n) {
  char why[256];
  return moss_partition_device_accepts(user, d, n, "f32", why, sizeof why);
}

/* Where each node's fp32 dense twin goes (moss_node.twin_device), placed
 * now, on the graph the partitioner saw, as it would place the float
 * model: the cost report's baseline is costed there (docs/report.md). */
static moss_status place_twins(stage *s) {
  moss_graph *g = s->g;
  size_t nn = (size_t)g->nnodes + 1;
  int *tw = moss_alloc(s->ctx, nn * sizeof *tw), i;
  moss_cost_report *r = NULL;
  moss_cost_opts co;
  moss_status st;
  if (!tw) return moss_fail(s->ctx, MOSS_E_NOMEM, NULL, "placement of the fp32 twin");
  memset(&co, 0, sizeof co);
  co.twin_device = tw;
  co.host_only = host_only(s->target, s->opts->emit);
  co.twin_accepts = twin_accepts;
  co.twin_user = (void *)s->target;
  co.estimate = device_estimate;
  co.estimate_user = (void *)s->devices;
  st = moss_cost_compute(s->ctx, g, s->target, &co, &r);
  for (i = 0; st == MOSS_OK && i < g->nnodes; i++) g->nodes[i]->twin_device = tw[i];
  moss_cost_destroy(s->ctx, r);
  moss_free(s->ctx, tw, nn * sizeof *tw);
  return st;
}

/* "partition": each node onto the first device whose <ops> list and
 * backend take it, or with the target's placement="cost" the one of them
 * at the least estimated time (passes/partition.c); n->opaque from the
 * backend; then the fp32 twins (place_twins). */
static moss_status partition(stage *s) {
  moss_partition_opts po;
  int nd = moss_target_device_count(s->target), cost = moss_target_placement_cost(s->target) && nd > 1;
  size_t nn = (size_t)s->g->nnodes * (size_t)nd;
  const char *emit = s->opts->emit;
  double *node_s = NULL;
  char only[160];
  moss_status st;
  memset(&po, 0, sizeof po);
  po.target = s->target;
  po.devices = s->devices;
  if (host_only(s->target, emit)) {
    /* A standalone form holds the host's code alone: every node there. */
    snprintf(only, sizeof only, "--emit %s holds the host device's code alone", emit);
    po.host_only = only;
  } else if (cost) {
    MOSS_TRY(cost_table(s, &node_s));
    po.node_s = node_s;
    po.xfer_s = xfer_s;
    po.xfer_user = (void *)s->target;
  }
  st = moss_partition(s->ctx, s->g, &po, &s->nsegments);
  moss_free(s->ctx, node_s, (nn + 1) * sizeof *node_s);
  if (st == MOSS_OK && nd > 1) st = place_twins(s);
  return st;
}

/* The devices whose backends lower kernel descriptions (moss_backend.kernels),
 * one flag each, for the passes after partition; NULL on no memory. */
static unsigned char *kernel_devices(stage *s) {
  int nd = moss_target_device_count(s->target), d;
  unsigned char *kd = moss_alloc(s->ctx, (size_t)nd + 1);
  if (!kd) return NULL;
  for (d = 0; d < nd; d++) kd[d] = s->devices[d].backend && s->devices[d].backend->kernels;
  return kd;
}

/* "residual": a residual Add into the Conv before it (passes/fuse.c), on
 * the devices whose backends lower kernel descriptions, whose Conv takes
 * the residual as input 3. A plugin's device sees the nodes the model has. */
static moss_status residual(stage *s) {
  int nd = moss_target_device_count(s->target);
  unsigned char *kd = kernel_devices(s);
  moss_status st;
  if (!kd) return moss_fail(s->ctx, MOSS_E_NOMEM, NULL, "residual fusion");
  st = moss_pass_fuse_residual(s->ctx, s->g, kd);
  moss_free(s->ctx, kd, (size_t)nd + 1);
  return st;
}

/* "half": the exactly rounded elementwise float16 nodes compute in float16
 * on the devices whose CPU has the instructions (passes/half.c). */
static moss_status half(stage *s) {
  int nd = moss_target_device_count(s->target), d, any = 0;
  unsigned char *native = moss_alloc(s->ctx, (size_t)nd + 1);
  moss_status st;
  if (!native) return moss_fail(s->ctx, MOSS_E_NOMEM, NULL, "float16 pass");
  for (d = 0; d < nd; d++) {
    moss_kernel_cpu kc;
    moss_backend_device_kernel_cpu(&s->devices[d], &kc);
    native[d] = (unsigned char)((kc.half || (s->opts->host_half && !s->opts->target)) &&
                                s->devices[d].backend && s->devices[d].backend->native_half);
    any |= native[d];
  }
  st = any ? moss_pass_native_half(s->ctx, s->g, native) : MOSS_OK;
  moss_free(s->ctx, native, (size_t)nd + 1);
  return st;
}

/* The chains pass's question: whether the backend of |n|'s device takes it. */
static int chain_takes(void *user, const moss_node *n) {
  const moss_backend_device *d = &((stage *)user)->devices[n->device];
  char why[256];
  return d->backend && d->backend->takes(d, n, why, sizeof why);
}

/* "chains": elementwise chains into one MossFused node each (passes/fuse.c),
 * on the same devices as "residual". */
static moss_status chains(stage *s) {
  int nd = moss_target_device_count(s->target);
  unsigned char *kd = kernel_devices(s);
  moss_status st;
  if (!kd) return moss_fail(s->ctx, MOSS_E_NOMEM, NULL, "chain fusion");
  st = moss_pass_fuse_chains(s->ctx, s->g, kd, chain_takes, s);
  moss_free(s->ctx, kd, (size_t)nd + 1);
  return st;
}

/* "sparse": per weight, dense or the cheapest format the node's device's
 * backend can encode (passes/sparse.c). */
static moss_status sparse(stage *s) {
  moss_sparse_opts so;
  moss_graph *g = s->g;
  size_t bytes = ((size_t)g->nnodes + 1) * sizeof(int);
  int *rules = moss_alloc(s->ctx, bytes);
  moss_status st;
  int i;
  if (!rules) return moss_fail(s->ctx, MOSS_E_NOMEM, NULL, "sparse pass");
  /* The kernels each layer's formats would run on, on its device. */
  for (i = 0; i < g->nnodes; i++) {
    moss_kernel_cpu kc;
    moss_backend_device_kernel_cpu(&s->devices[g->nodes[i]->device], &kc);
    rules[i] = moss_kernel_sparse_rule(g->nodes[i], &kc);
  }
  so.devices = s->devices;
  so.rules = rules;
  st = moss_pass_sparse(s->ctx, g, &so);
  moss_free(s->ctx, rules, bytes);
  return st;
}

/* Keeps the first diagnostic of the batch-2 compile of moss_pass_batch's check. */
static void keep_first(void *user, moss_status code, const char *msg) {
  char *first = user;
  (void)code;
  if (!*first) snprintf(first, 512, "%s", msg);
}

/* The model was imported with its open batch axis bound to 1 (g->batch):
 * it is imported and inferred again at batch 2, and the two compared. */
static moss_status batch(stage *s) {
  moss_ctx *ctx = s->ctx;
  moss_graph *g2 = NULL;
  moss_diag_fn sink = ctx->sink;
  void *sink_user = ctx->sink_user;
  int nerrors = ctx->nerrors;
  char first[512] = "", hint[512];
  moss_status st;
  if (!s->g->batch) return MOSS_OK;
  moss_batch_hint(s->g, hint, sizeof hint);
  ctx->sink = keep_first; /* its messages would repeat the batch-1 compile's */
  ctx->sink_user = first;
  st = moss_onnx_import_batch(ctx, s->opts->model, s->opts->bindings, s->opts->nbindings, 2, &g2);
  if (st == MOSS_OK) st = moss_graph_sort(ctx, g2);
  if (st == MOSS_OK) {
    g2->max_trip_count = s->opts->max_trip_count;
    g2->max_length = s->opts->max_length;
    st = moss_pass_contrib(ctx, g2);
  }
  if (st == MOSS_OK) st = moss_pass_check(ctx, g2);
  if (st == MOSS_OK) st = moss_pass_infer(ctx, g2);
  ctx->sink = sink;
  ctx->sink_user = sink_user;
  ctx->nerrors = nerrors;
  if (st == MOSS_E_NOMEM) st = moss_fail(ctx, st, NULL, "%s", first);
  else if (st != MOSS_OK)
    st = moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                   "the model compiles at batch 1 but not at batch 2 (%s): it is not "
                   "batch-independent; %s", first, hint);
  else st = moss_pass_batch(ctx, s->g, g2);
  moss_graph_destroy(ctx, g2);
  return st;
}

/* A step for an option not given is not run, verified, timed or dumped:
 * "prune" without --prune, "calibrate" and "quantize" without --quantize;
 * the calibration build (opts->observe) runs "quantize" but no "calibrate". */
static int skipped(const pass_entry *p, const moss_compile_opts *o) {
  if (p->step == prune) return !o->prune;
  if (p->step == calibrate) return !o->quantize || o->observe;
  if (p->step == quantize) return !o->quantize && !o->observe;
  return 0;
}

moss_status moss_compile(moss_ctx *ctx, const moss_compile_opts *opts) {
  moss_graph *g = NULL;
  moss_target *target = NULL;
  moss_backend_device *devs = NULL;
  moss_cost_report *cost = NULL;
  double t0 = 0;
  stage sg;
  moss_cost_opts copts;
  moss_buf json;
  moss_status st;
  size_t i;
  int host, nsteps = 0;
  int64_t arena = 0;
  size_t nread0 = ctx->files ? ctx->files->n : 0; /* the files read before this compile */
  moss_compile_inputs inputs;
  char name[256], ident[256], hash[65], outbuf[4096], line[512];
  uint8_t *bytes;
  size_t nbytes;
  const char *emit = opts->emit, *out = opts->out;
  void (*saved_progress)(void *, const char *, int64_t, int64_t) = NULL;

  moss_buf_init(&json, ctx);
  ctx->file = opts->model;
  if (opts->dump_after && strcmp(opts->dump_after, "import") && strcmp(opts->dump_after, "all")) {
    int known = 0;
    size_t len = 0;
    char names[256];
    for (i = 0; i < NPASSES; i++) {
      known |= !strcmp(opts->dump_after, passes[i].name);
      if (len < sizeof names)
        len += (size_t)snprintf(names + len, sizeof names - len, "%s, ", passes[i].name);
    }
    if (!known)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                       "--dump-after=%s: no such pass (import, %sall)", opts->dump_after, names);
  }
  if (emit && strcmp(emit, "bundle") && !moss_backend_find_for_emit(emit))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "--emit %s: moss emits 'bundle', 'c' or 'obj'", emit);
  if (opts->prune) {
    moss_prune_spec ps;
    MOSS_TRY(moss_prune_parse(ctx, opts->prune, &ps)); /* a bad spec fails before any work */
  }
  if (opts->sign_key) MOSS_TRY(moss_key_read(ctx, opts->sign_key, 1, NULL)); /* --sign: early */
  if (opts->loaded_target) target = (moss_target *)opts->loaded_target;
  else MOSS_TRY(moss_target_load(ctx, opts->target, &target));
  /* From here on every exit goes through |done|, which ends the progress
   * level (progress.h: drawn only where main.c enabled it) and puts back
   * ctx->progress; the steps below the driver report through it. */
  moss_progress_begin("import", 0, NULL);
  saved_progress = ctx->progress;
  if (!saved_progress) ctx->progress = moss_progress_report;
  ctx->file = opts->model;
  host = moss_target_host_device(target);
  if (!emit) emit = default_emit(target);
  if (opts->profile && strcmp(emit, "bundle") != 0) {
    st = moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                   "--profile times the steps of a bundle through libmossrt; --emit %s makes "
                   "none (drop --emit, or run moss bench on the bundle)", emit);
    goto done;
  }
  if (opts->sign_key && strcmp(emit, "bundle")) {
    st = moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "--sign signs bundles, and this compile writes "
                   "--emit %s: standalone code carries no signature", emit);
    goto done;
  }
  st = moss_backend_devices_create(ctx, target, &devs); /* each device's backend, plugins opened */
  if (st == MOSS_OK && strcmp(emit, "bundle")) /* --emit c|obj: the host's code is that backend's */
    st = moss_backend_device_bind(&devs[host], moss_backend_find_for_emit(emit));
  ctx->file = opts->model;
  if (st != MOSS_OK) goto done;

  st = moss_file_read(ctx, opts->model, &bytes, &nbytes);
  if (st != MOSS_OK) goto done;
  moss_sha256_hex(bytes, nbytes, hash);
  moss_free(ctx, bytes, nbytes + 1);

  t0 = now_s();
  for (i = 0; i < (size_t)opts->nbindings && !opts->bindings[i].shape; i++) continue;
  /* No --input-shape: an open axis 0 of every input is bound to batch 1 (the "batch" pass). */
  st = moss_onnx_import_batch(ctx, opts->model, opts->bindings, opts->nbindings,
                              i == (size_t)opts->nbindings, &g);
  if (st != MOSS_OK) goto done;
  st = moss_graph_sort(ctx, g);
  if (st != MOSS_OK) goto done;
  g->max_trip_count = opts->max_trip_count;
  g->max_length = opts->max_length;
  memset(&inputs, 0, sizeof inputs);
  if (opts->inputs || opts->depfile) { /* every input read: the cache key, the depfile */
    if (opts->name) snprintf(name, sizeof name, "%s", opts->name);
    else model_name(opts->model, name, sizeof name);
    st = moss_compile_inputs_done(ctx, opts, target, emit, name, nread0,
                                  opts->inputs ? opts->inputs : &inputs);
    if (st != MOSS_OK || (opts->inputs && opts->inputs->only)) goto done;
  }
  stage_done(opts, "import", &t0);
  if (opts->dump_after && !strcmp(opts->dump_after, "import")) dump(ctx, g, "import");
  sg.ctx = ctx;
  sg.g = g;
  sg.opts = opts;
  sg.target = target;
  sg.devices = devs;
  sg.nsegments = 0;
  memset(&sg.calib, 0, sizeof sg.calib);
  sg.act_power = NULL;
  sg.act_npower = 0;
  for (i = 0; i < NPASSES; i++) {
    if (skipped(&passes[i], opts)) continue;
    moss_progress(ctx, passes[i].name, 0, 0);
    st = passes[i].run ? passes[i].run(ctx, g) : passes[i].step(&sg);
    if (st == MOSS_OK && ctx->debug) st = moss_ir_verify(ctx, g);
    if (st != MOSS_OK) goto done;
    if (opts->dump_after && (!strcmp(opts->dump_after, passes[i].name) ||
                             !strcmp(opts->dump_after, "all")))
      dump(ctx, g, passes[i].name);
    stage_done(opts, passes[i].name, &t0);
  }
  moss_progress(ctx, "plan", 0, 0);
  for (i = 0; i < (size_t)g->nnodes; i++) { /* the kernels' arena scratch, for the planner */
    moss_node *n = g->nodes[i];
    moss_kernel_cpu kc;
    moss_backend_device_kernel_cpu(&devs[n->device], &kc);
    n->scratch_bytes = moss_kernel_can_lower(n) ? moss_kernel_scratch(n, &kc) : 0;
  }
  st = moss_plan_compute(ctx, g, &arena); /* arena offsets by liveness */
  if (st == MOSS_OK) st = moss_plan_check_memory(ctx, g, target, arena); /* fits each device */
  if (st != MOSS_OK) goto done;
  stage_done(opts, "plan", &t0);
  if (opts->dump_ir) dump(ctx, g, "plan");
  if (opts->dump_kernels || opts->explain) moss_progress_clear(); /* stdout: the terminal too */
  if (opts->dump_kernels) {
    st = dump_kernels(ctx, g, devs);
    if (st != MOSS_OK) goto done;
  }
  if (opts->explain) {
    explain(g, target, devs, host);
    explain_qdq(g);
  }
  if (opts->verbose) {
    int ni, nf;
    qdq_counts(g, &ni, &nf);
    if (nf) moss_progress_clear();
    if (nf) /* never silent: a float node in an int8 model is worth a line */
      fprintf(stderr, "moss: %s: %d nodes run in int8, %d stay float in quantized regions "
              "(--explain says why)\n", opts->model, ni, nf);
  }

  if (!opts->no_emit && !strcmp(emit, "bundle")) /* a step per layer, before the report */
    nsteps = moss_bundle_steps(g, devs);
  memset(&copts, 0, sizeof copts);
  copts.grid_g_per_kwh = opts->grid_intensity;
  copts.steps = nsteps > 0;
  copts.estimate = device_estimate;
  copts.estimate_user = devs;
  moss_progress(ctx, "cost", 0, 0);
  st = moss_cost_compute(ctx, g, target, &copts, &cost); /* time, memory, energy */
  stage_done(opts, "cost", &t0);
  if (st != MOSS_OK) goto done;
  if (opts->name) snprintf(name, sizeof name, "%s", opts->name);
  else model_name(opts->model, name, sizeof name);
  st = moss_cost_set_model(ctx, cost, name);
  if (st != MOSS_OK) goto done;
  if (opts->verbose) {
    moss_progress_clear();
    moss_cost_summary(cost, line, sizeof line);
    fprintf(stderr, "%s\n", line);
  }
  if (opts->report && !(opts->profile && !opts->no_emit)) { /* with --profile: after the run */
    st = moss_report_write(ctx, cost, opts->report);
    if (st != MOSS_OK) goto done;
  }
  if (opts->no_emit) goto done;

  st = check_emitters(ctx, g, target, devs);
  if (st != MOSS_OK) goto done;
  moss_identifier_emit(ident, sizeof ident, name);
  if (!out) {
    snprintf(outbuf, sizeof outbuf, "%s%s", name, !strcmp(emit, "bundle") ? ".moss" : ".moss.d");
    out = outbuf;
  }
  moss_progress(ctx, "emit", 0, 0);
  if (strcmp(emit, "bundle")) {
    for (i = 0; i < (size_t)g->nnodes; i++)
      if (g->nodes[i]->device != host) {
        st = moss_fail(ctx, MOSS_E_TARGET, g->nodes[i],
                       "--emit %s writes CPU code only, and target '%s' puts this node on device "
                       "'%s'; emit a bundle instead (see --explain)", emit,
                       moss_target_name(target), moss_target_device_id(target, g->nodes[i]->device));
        goto done;
      }
    /* The backend --emit named (bound above): it has a standalone form. */
    st = devs[host].backend->emit_standalone(&devs[host], g, name, out, hash, opts->timings);
  } else {
    moss_emit_args a;
    st = moss_report_json(ctx, cost, &json);
    if (st != MOSS_OK) goto done;
    memset(&a, 0, sizeof a);
    a.g = g;
    a.target = target;
    a.devices = devs;
    a.nsegments = nsteps;
    a.host = host;
    a.arena_bytes = arena;
    a.name = ident;
    a.out = out;
    a.source_hash = hash;
    a.report_json = json.data;
    a.verbose = opts->timings;
    a.sign_key = opts->sign_key;
    st = moss_emit_bundle(ctx, &a);
  }
  if (st == MOSS_OK) stage_done(opts, "emit", &t0);
  if (st == MOSS_OK && opts->depfile)
    st = moss_depfile_write(ctx, opts->depfile, emit, out, ident,
                            opts->inputs ? opts->inputs : &inputs);
  if (st == MOSS_OK && opts->profile) { /* the bundle runs here: measured beside estimated */
    moss_progress(ctx, "profile", 0, 0);
    st = moss_profile_bundle_file(ctx, out, 100, cost);
    if (st == MOSS_OK) stage_done(opts, "profile", &t0);
    if (st == MOSS_OK && opts->verbose) {
      moss_progress_clear();
      fprintf(stderr, "moss: measured here: %.3f us per run (estimate %.3f us), platform "
              "energy from measured time %.4g J (measured:clock%s)\n",
              cost->measured_time_s.value * 1e6, cost->total.time_s.value * 1e6,
              cost->measured_platform_j.value, cost->measured_platform_j.partial ? ", partial" : "");
    }
    if (st == MOSS_OK && opts->report) st = moss_report_write(ctx, cost, opts->report);
  }
  if (st == MOSS_OK && opts->verbose) moss_progress_clear();
  if (st == MOSS_OK && opts->verbose)
    fprintf(stderr, "moss: %s: %d nodes, arena %lld bytes, target %s -> %s%s\n", opts->model,
            g->nnodes, (long long)arena, moss_target_name(target), out, strcmp(emit, "bundle") ? "/" : "");
done:
  if (target) { /* the level begun after the target loaded */
    moss_progress_end();
    ctx->progress = saved_progress;
  }
  if (cost) {
    if (opts->cost_out && st == MOSS_OK) *opts->cost_out = cost;
    else moss_cost_destroy(ctx, cost);
  }
  moss_buf_deinit(&json);
  if (g) moss_graph_destroy(ctx, g);
  if (target) moss_backend_devices_destroy(ctx, target, devs);
  if (target != opts->loaded_target) moss_target_destroy(ctx, target);
  return st;
}
