/* native.c - the LLVM backend's two artifacts, as the backend table calls
 * them (backend.c): the standalone native object of `--emit obj` (the
 * object, the C backend's header and the manifest `moss run` reads) and a
 * bundle's CPU code section. Both read the device's <codegen> facts and
 * hand the graph to moss_llvm_emit_object (llvm.c); no C compiler runs. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../c/cgen.h"
#include "llvm.h"

/* The device's triple, cpu and features (triple NULL when it names none). */
static void codegen(const moss_backend_device *d, moss_llvm_target *lt) {
  lt->triple = moss_target_device_codegen(d->target, d->device, "triple");
  lt->cpu = moss_target_device_codegen(d->target, d->device, "cpu");
  lt->features = moss_target_device_codegen(d->target, d->device, "features");
}

static void print_stats(const moss_llvm_target *lt, const moss_llvm_stats *stats) {
  fprintf(stderr, "moss: llvm: build %.3f s, optimize %.3f s, emit %.3f s (%s, cpu %s)\n",
          stats->build_s, stats->optimize_s, stats->emit_s, lt->triple,
          lt->cpu ? lt->cpu : "generic");
}

moss_status moss_llvm_emit_standalone(const moss_backend_device *d, moss_graph *g, const char *name,
                                      const char *dir, const char *source_hash, int timings) {
  moss_ctx *ctx = d->ctx;
  const moss_target *t = d->target;
  moss_llvm_target lt;
  moss_llvm_stats stats;
  uint8_t *obj = NULL;
  size_t nobj = 0;
  moss_buf hdr, man;
  char path[4096], p[256], extra[300];
  const char *src = ctx->file ? ctx->file : "?";
  moss_status st;
  codegen(d, &lt);
  if (!lt.triple)
    return moss_fail(ctx, MOSS_E_TARGET, NULL,
                     "target '%s': device '%s' names no LLVM triple (<codegen triple=...>), so "
                     "there is no native code to emit",
                     moss_target_name(t), moss_target_device_id(t, d->device));
  if (strrchr(src, '/')) src = strrchr(src, '/') + 1;
  moss_c_identifier(p, sizeof p, name);
  MOSS_TRY(moss_llvm_emit_object(ctx, g, &lt, p, NULL, 0, &obj, &nobj, &stats));
  if (timings) print_stats(&lt, &stats);
  mkdir(dir, 0777);
  moss_buf_init(&hdr, ctx);
  moss_buf_init(&man, ctx);
  moss_c_header_emit(g, p, src, source_hash, moss_target_name(t), &hdr);
  snprintf(extra, sizeof extra, "object %s.o %s", p, lt.triple);
  moss_c_manifest_emit(g, p, extra, &man);
  if (hdr.failed || man.failed) {
    st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "--emit obj");
  } else {
    snprintf(path, sizeof path, "%s/%s.o", dir, p);
    st = moss_file_write(ctx, path, obj, nobj);
    snprintf(path, sizeof path, "%s/%s.h", dir, p);
    if (st == MOSS_OK) st = moss_file_write(ctx, path, hdr.data, hdr.len);
    snprintf(path, sizeof path, "%s/%s.manifest", dir, p);
    if (st == MOSS_OK) st = moss_file_write(ctx, path, man.data, man.len);
    /* C sources or a library from an earlier --emit c into this folder are stale. */
    snprintf(path, sizeof path, "%s/%s.c", dir, p);
    remove(path);
    snprintf(path, sizeof path, "%s/%s.so", dir, p);
    remove(path);
    snprintf(path, sizeof path, "%s/%s_weights.c", dir, p);
    remove(path);
  }
  moss_buf_deinit(&hdr);
  moss_buf_deinit(&man);
  moss_free(ctx, obj, nobj);
  return st;
}

moss_status moss_llvm_emit_code(const moss_backend_device *d, moss_graph *g, const char *name,
                                const char *source_hash, const unsigned char *segs, int nseg,
                                int timings, moss_backend_code *out_code) {
  moss_ctx *ctx = d->ctx;
  moss_llvm_target lt;
  moss_llvm_stats stats;
  const char *feat;
  char *features = out_code->features;
  size_t n = 0, fcap = sizeof out_code->features;
  (void)source_hash; /* an object has no banner */
  memset(out_code, 0, sizeof *out_code);
  codegen(d, &lt);
  feat = lt.features;
  if (!lt.triple)
    return moss_fail(ctx, MOSS_E_TARGET, NULL,
                     "target '%s': device '%s' (backend llvm) names no triple",
                     moss_target_name(d->target), moss_target_device_id(d->target, d->device));
  snprintf(out_code->triple, sizeof out_code->triple, "%s", lt.triple);
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
    if (l && n + l + 2 < fcap)
      n += (size_t)snprintf(features + n, fcap - n, "%s%.*s", n ? "," : "", (int)l, feat);
    feat += l;
  }
  MOSS_TRY(moss_llvm_emit_object(ctx, g, &lt, name, segs, nseg, &out_code->bytes, &out_code->size,
                                 &stats));
  out_code->alloc = out_code->size;
  if (timings) print_stats(&lt, &stats);
  return MOSS_OK;
}
