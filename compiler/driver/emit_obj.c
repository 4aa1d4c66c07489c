/* emit_obj.c - `--emit obj`: the LLVM backend's object for the target's
 * CPU, with the same <name>.h as the C backend's and the manifest that
 * `moss run` reads, written into the output folder. No C compiler runs. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../../backends/c/cgen.h"
#include "../../backends/llvm/llvm.h"
#include "emit.h"

moss_status moss_emit_object(moss_ctx *ctx, moss_graph *g, const moss_target *t, int host,
                             const char *name, const char *dir, const char *source_hash, int verbose) {
  moss_llvm_target lt;
  moss_llvm_stats stats;
  uint8_t *obj = NULL;
  size_t nobj = 0;
  moss_buf hdr, man;
  char path[4096], p[256], extra[300];
  const char *src = ctx->file ? ctx->file : "?";
  moss_status st;
  lt.triple = moss_target_device_codegen(t, host, "triple");
  lt.cpu = moss_target_device_codegen(t, host, "cpu");
  lt.features = moss_target_device_codegen(t, host, "features");
  if (!lt.triple)
    return moss_fail(ctx, MOSS_E_TARGET, NULL,
                     "target '%s': device '%s' names no LLVM triple (<codegen triple=...>), so "
                     "there is no native code to emit", moss_target_name(t), moss_target_device_id(t, host));
  if (strrchr(src, '/')) src = strrchr(src, '/') + 1;
  moss_c_identifier(p, sizeof p, name);
  MOSS_TRY(moss_llvm_emit_object(ctx, g, &lt, p, NULL, 0, &obj, &nobj, &stats));
  if (verbose)
    fprintf(stderr, "moss: llvm: build %.3f s, optimize %.3f s, emit %.3f s (%s, cpu %s)\n", stats.build_s,
            stats.optimize_s, stats.emit_s, lt.triple, lt.cpu ? lt.cpu : "generic");
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
