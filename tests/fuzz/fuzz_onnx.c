/* fuzz_onnx.c - libFuzzer target for the ONNX importer and everything
 * `moss compile` does after it up to code emission: moss_compile() with
 * no_emit, i.e. import, every pass (check, infer, bn-fold, fuse, qdq, fold,
 * dce, partition, sparse), the planner and the cost model, with the IR
 * verifier after each pass (ctx->debug). Each input is an ONNX model file,
 * compiled for two targets loaded once: targets/host.xml (one CPU, by path,
 * so not measured: the same on every machine) and targets/opencl-gpu.xml (a
 * GPU and a CPU: partition across devices, transfers). The input must give
 * MOSS_OK or a diagnostic of any category but 'internal', and free all it
 * allocated (fuzz.h). Build and run: tests/fuzz/README.md. */
#include "driver/driver.h"
#include "fuzz.h"
#include "target/target.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const target_files[] = {"host.xml", "opencl-gpu.xml"};
#define NTARGETS (sizeof target_files / sizeof target_files[0])
static moss_target *targets[NTARGETS];
static moss_ctx target_ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  size_t i;
  (void)argc;
  (void)argv;
  moss_ctx_init(&target_ctx, moss_allocator_libc());
  for (i = 0; i < NTARGETS; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", MOSS_TARGETS_DIR, target_files[i]);
    if (moss_target_load(&target_ctx, path, &targets[i]) != MOSS_OK) {
      fprintf(stderr, "fuzz_onnx: %s\n", target_ctx.last);
      abort();
    }
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const moss_status allowed[] = {MOSS_E_INVALID_MODEL, MOSS_E_UNSUPPORTED, MOSS_E_TARGET,
                                        MOSS_E_IO, MOSS_E_NOMEM, MOSS_OK};
  const char *path = fuzz_path("model.onnx");
  size_t i;
  fuzz_write(path, data, size);
  for (i = 0; i < NTARGETS; i++) {
    moss_ctx ctx;
    fuzz_heap heap;
    moss_compile_opts o;
    moss_status st;
    fuzz_ctx_init(&ctx, &heap);
    memset(&o, 0, sizeof o);
    o.model = path;
    o.loaded_target = targets[i];
    o.name = "fuzz";
    o.no_emit = 1;
    st = moss_compile(&ctx, &o);
    fuzz_check_failure(&ctx, st, allowed);
    fuzz_heap_check_empty(&heap);
  }
  return 0;
}
