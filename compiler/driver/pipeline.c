/* pipeline.c - the whole compiler on one screen: the ONNX model is
 * imported, rewritten by the passes in order (the IR verifier runs after
 * each in debug builds), placed on the target's devices, planned into one
 * arena, costed, and emitted as a bundle or as standalone C. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../../backends/c/cgen.h"
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
#include "ptq.h"

typedef struct pass_entry {
  const char *name;
  moss_pass_fn run; /* NULL: the post-training quantization step (needs the options) */
} pass_entry;

static const pass_entry passes[] = {
    {"check", moss_pass_check},     /* unknown ops, domains, arity: all reported */
    {"infer", moss_pass_infer},     /* shapes and dtypes, folding constants on the way */
    {"bn-fold", moss_pass_bn_fold}, /* BatchNormalization into Conv/Gemm weights */
    {"fuse", moss_pass_fuse},       /* bias Add and activation into Conv/Gemm/MatMul */
    {"quantize", NULL},             /* --quantize: calibrate, insert Quantize/Dequantize pairs */
    {"qdq", moss_pass_qdq},         /* Dequantize -> op -> Quantize into integer-only ops */
    {"fold", moss_pass_fold},       /* constants exposed by the rewrites */
    {"dce", moss_pass_dce},         /* nodes no output needs */
    {"sparse", moss_pass_sparse},   /* dense or sparse weight format per layer */
};

static void dump(moss_ctx *ctx, moss_graph *g, const char *title) {
  moss_buf b;
  moss_buf_init(&b, ctx);
  moss_ir_print(g, &b);
  printf("# IR after %s\n%s", title, b.data ? b.data : "");
  moss_buf_deinit(&b);
}

/* --dump-kernels: each node's kernel description, or why it has none. */
static moss_status dump_kernels(moss_ctx *ctx, const moss_graph *g) {
  moss_arena *arena;
  moss_buf b;
  moss_status st = MOSS_OK;
  int i;
  MOSS_TRY(moss_arena_create(ctx->alloc, 1 << 16, &arena));
  moss_buf_init(&b, ctx);
  for (i = 0; i < g->nnodes && st == MOSS_OK; i++) {
    const moss_node *n = g->nodes[i];
    moss_kernel *k;
    if (!moss_kernel_can_lower(n)) {
      printf("kernel node %d '%s' (%s): no description yet (printed as C directly)\n", n->id, n->name,
             n->op_type);
      continue;
    }
    moss_arena_reset(arena);
    st = moss_kernel_lower(ctx, arena, n, &k);
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
static void explain(const moss_graph *g, const moss_target *t, int host) {
  int i, j, d, ndev = moss_target_device_count(t);
  printf("# placement on target '%s':", moss_target_name(t));
  for (d = 0; d < ndev; d++)
    printf("%s %s (%s, %s)", d ? "," : "", moss_target_device_id(t, d), moss_target_device_kind(t, d),
           moss_target_device_backend(t, d));
  printf("; fallback %s\n", moss_target_fallback(t) >= 0
                                ? moss_target_device_id(t, moss_target_fallback(t)) : "none");
  for (i = 0; i < g->nnodes; i++) {
    const moss_node *n = g->nodes[i];
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

/* Opens the plugin of every backend="plugin:NAME" device that names its
 * library; a device without one stays NULL (placed for costing only). */
static moss_status open_plugins(moss_ctx *ctx, const moss_target *t, moss_plugin **plugins) {
  int d;
  for (d = 0; d < moss_target_device_count(t); d++) {
    const char *be = moss_target_device_backend(t, d), *path = moss_target_device_plugin(t, d);
    if (strncmp(be, "plugin:", 7) != 0 || !path) continue;
    MOSS_TRY(moss_plugin_open(ctx, path, be + 7, &plugins[d]));
  }
  return MOSS_OK;
}

/* Every device that got nodes must have an emitter in this build. */
static moss_status check_emitters(moss_ctx *ctx, const moss_graph *g, const moss_target *t,
                                  moss_plugin *const *plugins) {
  int d, i, bad = 0;
  for (d = 0; d < moss_target_device_count(t); d++) {
    const char *be = moss_target_device_backend(t, d);
    int count = 0;
    if (!strcmp(be, "c") || !strcmp(be, "llvm") || plugins[d]) continue;
    for (i = 0; i < g->nnodes; i++) count += g->nodes[i]->device == d;
    if (!count) continue;
    bad = 1;
    if (!strncmp(be, "plugin:", 7))
      moss_fail(ctx, MOSS_E_TARGET, NULL,
                "target '%s': device '%s' (backend %s) has no plugin library (no plugin= in %s), "
                "and %d node%s were placed on it; the cost report covers it, but there is no code "
                "to emit", moss_target_name(t), moss_target_device_id(t, d), be,
                moss_target_path(t), count, count == 1 ? "" : "s");
    else
      moss_fail(ctx, MOSS_E_TARGET, NULL,
                "target '%s': device '%s' wants backend '%s', which this build does not have yet; "
                "%d node%s were placed on it (the cost report covers it, but there is no code to "
                "emit)", moss_target_name(t), moss_target_device_id(t, d), be, count,
                count == 1 ? "" : "s");
  }
  return bad ? MOSS_E_TARGET : MOSS_OK;
}

/* --emit's default: a bundle, except for bare-metal targets (no libmossrt). */
static const char *default_emit(const moss_target *t) {
  const char *tr = moss_target_device_codegen(t, moss_host_device(t), "triple");
  return tr && strstr(tr, "-none") ? "c" : "bundle";
}

/* The "quantize" step: --prune zeroes float weights first (so calibration
 * and quantization see the pruned model, and the sparse pass at the end
 * measures the zeros), then the calibration run's observers or --quantize. */
static moss_status prune_and_quantize(moss_ctx *ctx, moss_graph *g, const moss_compile_opts *opts) {
  if (opts->prune) {
    moss_prune_result pr;
    MOSS_TRY(moss_prune(ctx, g, opts->prune, &pr));
    if (opts->verbose) {
      moss_buf pb;
      moss_buf_init(&pb, ctx);
      moss_prune_emit_text(&pr, &pb);
      if (pb.data) fprintf(stderr, "%s", pb.data);
      moss_buf_deinit(&pb);
    }
  }
  if (opts->observe) return moss_ptq_observe(ctx, g);
  if (opts->quantize) return moss_ptq_apply(ctx, g, opts);
  return MOSS_OK;
}

moss_status moss_compile(moss_ctx *ctx, const moss_compile_opts *opts) {
  moss_graph *g = NULL;
  moss_target *target = NULL;
  moss_plugin **plugins = NULL;
  moss_cost_report *cost = NULL;
  moss_cost_opts copts;
  moss_buf json;
  moss_status st;
  size_t i;
  int ndev = 0, nseg = 0, host;
  int64_t arena = 0;
  char name[256], ident[256], hash[65], outbuf[4096], line[512];
  uint8_t *bytes;
  size_t nbytes;
  const char *emit = opts->emit, *out = opts->out;

  moss_buf_init(&json, ctx);
  ctx->file = opts->model;
  if (opts->dump_after && strcmp(opts->dump_after, "import") && strcmp(opts->dump_after, "all")) {
    int known = 0;
    for (i = 0; i < sizeof passes / sizeof passes[0]; i++)
      known |= !strcmp(opts->dump_after, passes[i].name);
    if (!known)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                       "--dump-after=%s: no such pass (import, check, infer, bn-fold, fuse, quantize, "
                       "qdq, fold, dce, sparse, all)", opts->dump_after);
  }
  if (emit && strcmp(emit, "c") && strcmp(emit, "bundle") && strcmp(emit, "obj"))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "--emit %s: moss emits 'bundle', 'c' or 'obj'", emit);
  if (opts->prune) {
    moss_prune_spec ps;
    MOSS_TRY(moss_prune_parse(ctx, opts->prune, &ps)); /* a bad spec fails before any work */
  }
  MOSS_TRY(moss_target_load(ctx, opts->target, &target));
  ctx->file = opts->model;
  ndev = moss_target_device_count(target);
  host = moss_host_device(target);
  if (!emit) emit = default_emit(target);
  plugins = moss_alloc(ctx, sizeof *plugins * (size_t)ndev);
  if (!plugins) {
    st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "plugins");
    goto done;
  }
  st = open_plugins(ctx, target, plugins);
  ctx->file = opts->model;
  if (st != MOSS_OK) goto done;

  st = moss_file_read(ctx, opts->model, &bytes, &nbytes);
  if (st != MOSS_OK) goto done;
  moss_sha256_hex(bytes, nbytes, hash);
  moss_free(ctx, bytes, nbytes + 1);

  st = moss_onnx_import(ctx, opts->model, opts->bindings, opts->nbindings, &g);
  if (st != MOSS_OK) goto done;
  st = moss_graph_sort(ctx, g);
  if (st != MOSS_OK) goto done;
  if (opts->dump_after && !strcmp(opts->dump_after, "import")) dump(ctx, g, "import");
  for (i = 0; i < sizeof passes / sizeof passes[0]; i++) {
    if (passes[i].run) st = passes[i].run(ctx, g);
    else if (!opts->prune && !opts->observe && !opts->quantize) continue;
    else st = prune_and_quantize(ctx, g, opts);
    if (st == MOSS_OK && ctx->debug) st = moss_ir_verify(ctx, g);
    if (st != MOSS_OK) goto done;
    if (opts->dump_after && (!strcmp(opts->dump_after, passes[i].name) ||
                             !strcmp(opts->dump_after, "all")))
      dump(ctx, g, passes[i].name);
  }
  {
    moss_partition_opts po;
    po.target = target;
    po.plugins = plugins;
    st = moss_partition(ctx, g, &po, &nseg); /* every node onto a device */
    if (st != MOSS_OK) goto done;
    for (i = 0; i < (size_t)g->nnodes; i++) /* non-C segments run as one call */
      g->nodes[i]->opaque = strcmp(moss_target_device_backend(target, g->nodes[i]->device), "c") != 0 &&
                            strcmp(moss_target_device_backend(target, g->nodes[i]->device), "llvm") != 0;
  }
  st = moss_plan_compute(ctx, g, &arena); /* arena offsets by liveness */
  if (st != MOSS_OK) goto done;
  if (opts->dump_ir) dump(ctx, g, "plan");
  if (opts->dump_kernels) {
    st = dump_kernels(ctx, g);
    if (st != MOSS_OK) goto done;
  }
  if (opts->explain) {
    explain(g, target, host);
    explain_qdq(g);
  }
  if (opts->verbose) {
    int ni, nf;
    qdq_counts(g, &ni, &nf);
    if (nf) /* never silent: a float node in an int8 model is worth a line */
      fprintf(stderr, "moss: %s: %d nodes run in int8, %d stay float in quantized regions "
              "(--explain says why)\n", opts->model, ni, nf);
  }

  memset(&copts, 0, sizeof copts);
  copts.grid_g_per_kwh = opts->grid_intensity;
  st = moss_cost_compute(ctx, g, target, &copts, &cost); /* time, memory, energy */
  if (st != MOSS_OK) goto done;
  if (opts->name) snprintf(name, sizeof name, "%s", opts->name);
  else model_name(opts->model, name, sizeof name);
  st = moss_cost_set_model(ctx, cost, name);
  if (st != MOSS_OK) goto done;
  if (opts->verbose) {
    moss_cost_summary(cost, line, sizeof line);
    fprintf(stderr, "%s\n", line);
  }
  if (opts->report) {
    st = moss_report_write(ctx, cost, opts->report);
    if (st != MOSS_OK) goto done;
  }
  if (opts->no_emit) goto done;

  st = check_emitters(ctx, g, target, plugins);
  if (st != MOSS_OK) goto done;
  moss_c_identifier(ident, sizeof ident, name);
  if (!out) {
    snprintf(outbuf, sizeof outbuf, "%s%s", name, !strcmp(emit, "bundle") ? ".moss" : ".moss.d");
    out = outbuf;
  }
  if (strcmp(emit, "bundle")) {
    for (i = 0; i < (size_t)g->nnodes; i++)
      if (g->nodes[i]->device != host) {
        st = moss_fail(ctx, MOSS_E_TARGET, g->nodes[i],
                       "--emit %s writes CPU code only, and target '%s' puts this node on device "
                       "'%s'; emit a bundle instead (see --explain)", emit,
                       moss_target_name(target), moss_target_device_id(target, g->nodes[i]->device));
        goto done;
      }
    if (!strcmp(emit, "obj")) {
      st = moss_emit_object(ctx, g, target, host, name, out, hash, opts->verbose);
    } else {
      mkdir(out, 0777);
      st = moss_c_emit(ctx, g, name, out, hash, moss_target_name(target));
    }
  } else {
    moss_emit_args a;
    st = moss_report_json(ctx, cost, &json);
    if (st != MOSS_OK) goto done;
    memset(&a, 0, sizeof a);
    a.g = g;
    a.target = target;
    a.plugins = plugins;
    a.nsegments = nseg;
    a.host = host;
    a.arena_bytes = arena;
    a.name = ident;
    a.out = out;
    a.source_hash = hash;
    a.report_json = json.data;
    a.verbose = opts->verbose;
    st = moss_emit_bundle(ctx, &a);
  }
  if (st == MOSS_OK && opts->verbose)
    fprintf(stderr, "moss: %s: %d nodes, arena %lld bytes, target %s -> %s%s\n", opts->model,
            g->nnodes, (long long)arena, moss_target_name(target), out, strcmp(emit, "bundle") ? "/" : "");
done:
  if (cost) {
    if (opts->cost_out && st == MOSS_OK) *opts->cost_out = cost;
    else moss_cost_destroy(ctx, cost);
  }
  moss_buf_deinit(&json);
  if (g) moss_graph_destroy(ctx, g);
  if (plugins) {
    for (i = 0; i < (size_t)ndev; i++)
      if (plugins[i]) moss_plugin_close(ctx, plugins[i]);
    moss_free(ctx, plugins, sizeof *plugins * (size_t)ndev);
  }
  moss_target_destroy(ctx, target);
  return st;
}
