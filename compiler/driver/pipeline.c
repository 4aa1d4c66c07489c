/* pipeline.c - the whole compiler on one screen: the ONNX model is
 * imported, rewritten by the passes in order (the IR verifier runs after
 * each in debug builds), planned into one arena, and emitted for the
 * target. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../../backends/c/cgen.h"
#include "../passes/passes.h"
#include "../plan/plan.h"
#include "../target/target.h"
#include "driver.h"

typedef struct pass_entry {
  const char *name;
  moss_pass_fn run;
} pass_entry;

static const pass_entry passes[] = {
    {"check", moss_pass_check},     /* unknown ops, domains, arity: all reported */
    {"infer", moss_pass_infer},     /* shapes and dtypes, folding constants on the way */
    {"bn-fold", moss_pass_bn_fold}, /* BatchNormalization into Conv/Gemm weights */
    {"fuse", moss_pass_fuse},       /* bias Add and activation into Conv/Gemm/MatMul */
    {"fold", moss_pass_fold},       /* constants exposed by the rewrites */
    {"dce", moss_pass_dce},         /* nodes no output needs */
};

static void dump(moss_ctx *ctx, moss_graph *g, const char *title) {
  moss_buf b;
  moss_buf_init(&b, ctx);
  moss_ir_print(g, &b);
  printf("# IR after %s\n%s", title, b.data ? b.data : "");
  moss_buf_deinit(&b);
}

static void model_name(const char *path, char *out, size_t cap) {
  const char *base = strrchr(path, '/');
  size_t n;
  base = base ? base + 1 : path;
  n = strcspn(base, ".");
  if (n == 0) n = strlen(base);
  snprintf(out, cap, "%.*s", (int)n, base);
}

moss_status moss_compile(moss_ctx *ctx, const moss_compile_opts *opts) {
  moss_graph *g = NULL;
  moss_target *target = NULL;
  moss_status st;
  size_t i;
  int64_t arena = 0;
  char name[256], hash[65];
  uint8_t *bytes;
  size_t nbytes;
  const char *emit = opts->emit ? opts->emit : "c";

  ctx->file = opts->model;
  if (opts->dump_after && strcmp(opts->dump_after, "import") && strcmp(opts->dump_after, "all")) {
    int known = 0;
    for (i = 0; i < sizeof passes / sizeof passes[0]; i++)
      known |= !strcmp(opts->dump_after, passes[i].name);
    if (!known)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                       "--dump-after=%s: no such pass (import, check, infer, bn-fold, fuse, fold, "
                       "dce, all)", opts->dump_after);
  }
  if (strcmp(emit, "c") != 0)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                     "--emit %s: this build emits only 'c' (bundle and obj come later)", emit);
  if (!opts->out) return moss_fail(ctx, MOSS_E_IO, NULL, "no output folder (-o DIR)");
  MOSS_TRY(moss_target_load(ctx, opts->target, &target));
  for (i = 0; i < (size_t)moss_target_device_count(target); i++) {
    const char *be = moss_target_device_backend(target, (int)i);
    if (be && strcmp(be, "c") != 0) {
      st = moss_fail(ctx, MOSS_E_TARGET, NULL,
                     "target '%s': device %zu wants backend '%s', which this build does not have "
                     "yet",
                     moss_target_name(target), i, be);
      moss_target_destroy(ctx, target);
      return st;
    }
  }
  ctx->file = opts->model;
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
    st = passes[i].run(ctx, g);
    if (st == MOSS_OK && ctx->debug) st = moss_ir_verify(ctx, g);
    if (st != MOSS_OK) goto done;
    if (opts->dump_after && (!strcmp(opts->dump_after, passes[i].name) ||
                             !strcmp(opts->dump_after, "all")))
      dump(ctx, g, passes[i].name);
  }
  st = moss_plan_compute(ctx, g, &arena);
  if (st != MOSS_OK) goto done;
  if (opts->dump_ir) dump(ctx, g, "plan");

  mkdir(opts->out, 0777);
  if (opts->name) snprintf(name, sizeof name, "%s", opts->name);
  else model_name(opts->model, name, sizeof name);
  st = moss_c_emit(ctx, g, name, opts->out, hash, moss_target_name(target));
  if (st == MOSS_OK && opts->verbose)
    fprintf(stderr, "moss: %s: %d nodes, arena %lld bytes, target %s -> %s/\n", opts->model,
            g->nnodes, (long long)arena, moss_target_name(target), opts->out);
done:
  if (g) moss_graph_destroy(ctx, g);
  moss_target_destroy(ctx, target);
  return st;
}
