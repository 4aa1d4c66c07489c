/* fuzz_target.c - libFuzzer target for the target XML loader
 * (compiler/target/target.c): each input is a target XML file, loaded by
 * path from a private folder (so inherit= finds the targets of targets/
 * next to it only through the targets folder), checked against
 * targets/moss-target.xsd. It must load, or fail with a 'target' (or
 * out-of-memory) diagnostic; a loaded target is read through every getter,
 * and then a small CNN (tests/golden/digits_cnn.onnx) is compiled for it up
 * to the cost model (moss_compile with no_emit), so that the partitioner,
 * the planner and the cost model meet its figures too. Targets with a
 * plugin device are not compiled for: that would open whatever shared
 * library the input names. Build and run: tests/fuzz/README.md. */
#include "driver/driver.h"
#include "fuzz.h"
#include "target/target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink; /* keeps the reads below from being optimized away */

static void touch(const char *s) {
  if (s) sink += strlen(s);
}

/* Reads every fact of |t|; 1 when a device of |t| is a plugin's. */
static int walk(const moss_target *t) {
  static const char *const keys[] = {"triple", "cpu", "features", "opencl-version",
                                     "spirv-version", "opencl-extensions",
                                     "spirv-capabilities", "max-workgroup-size",
                                     "subgroup-size", "local-memory-bytes"};
  static const char *const dtypes[] = {"f32", "f16", "i8", "i32", "u8", NULL};
  static const char *const ops[] = {"Conv", "MatMul", "Relu", "Softmax", "MaxPool"};
  int i, k, n = moss_target_device_count(t), plugin = 0;
  size_t j;
  touch(moss_target_name(t));
  touch(moss_target_vendor(t));
  touch(moss_target_description(t));
  touch(moss_target_path(t));
  touch(moss_target_inherit(t));
  if (n < 1) __builtin_trap();
  i = moss_target_fallback(t);
  if (i < -1 || i >= n) __builtin_trap();
  i = moss_target_host_device(t);
  if (i < 0 || i >= n) __builtin_trap();
  for (i = 0; i < n; i++) {
    const char *src;
    double a, b;
    moss_target_node_facts f;
    char why[256];
    touch(moss_target_device_id(t, i));
    touch(moss_target_device_kind(t, i));
    touch(moss_target_device_backend(t, i));
    if (moss_target_device_find(t, moss_target_device_id(t, i)) < 0) __builtin_trap();
    plugin |= !strncmp(moss_target_device_backend(t, i), "plugin", 6);
    for (j = 0; j < sizeof keys / sizeof keys[0]; j++)
      touch(moss_target_device_codegen(t, i, keys[j]));
    sink += (size_t)moss_target_device_max_workgroup_size(t, i);
    sink += (size_t)moss_target_device_subgroup_size(t, i);
    sink += (size_t)moss_target_device_local_memory_bytes(t, i);
    touch(moss_target_device_plugin(t, i));
    sink += (size_t)moss_target_device_clock_mhz(t, i);
    sink += (size_t)moss_target_device_units(t, i);
    for (j = 0; dtypes[j]; j++) {
      sink += (size_t)moss_target_device_macs_per_cycle(t, i, dtypes[j]);
      if (moss_target_device_mac_pj(t, i, dtypes[j], &a, &src)) touch(src);
    }
    if (moss_target_device_power(t, i, &a, &b, &src)) touch(src);
    for (k = 0; k < moss_target_device_level_count(t, i); k++) {
      moss_target_level l;
      moss_target_device_level(t, i, k, &l);
      touch(l.name);
      touch(l.source);
      touch(l.perf_source);
    }
    for (j = 0; j < sizeof ops / sizeof ops[0]; j++) {
      sink += (size_t)moss_target_device_supports(t, i, ops[j], "f32");
      memset(&f, 0, sizeof f);
      f.op_type = ops[j];
      f.dtype = dtypes[j % 5];
      f.rank = 4;
      f.kernel[0] = f.kernel[1] = 3;
      f.stride[0] = f.stride[1] = 2;
      f.in_channels = 16;
      f.out_channels = 1 << 20;
      if (moss_target_device_accepts(t, i, &f, why, sizeof why) == 0 && !why[0]) __builtin_trap();
      if (moss_target_device_accepts(t, i, &f, why, 8) == 0 && strlen(why) > 7) __builtin_trap();
    }
  }
  return plugin;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const moss_status load_allowed[] = {MOSS_E_TARGET, MOSS_E_NOMEM, MOSS_OK};
  static const moss_status compile_allowed[] = {MOSS_E_INVALID_MODEL, MOSS_E_UNSUPPORTED,
                                                MOSS_E_TARGET, MOSS_E_NOMEM, MOSS_OK};
  const char *path = fuzz_path("fuzz.xml");
  moss_ctx ctx;
  fuzz_heap heap;
  moss_target *t = NULL;
  moss_status st;
  fuzz_write(path, data, size);
  fuzz_ctx_init(&ctx, &heap);
  st = moss_target_load(&ctx, path, &t);
  fuzz_check_failure(&ctx, st, load_allowed);
  if (st == MOSS_OK) {
    if (!walk(t)) {
      moss_compile_opts o;
      moss_ctx cc;
      memset(&o, 0, sizeof o);
      o.model = MOSS_FUZZ_MODEL;
      o.loaded_target = t;
      o.name = "fuzz";
      o.no_emit = 1;
      cc = ctx;
      cc.nerrors = 0;
      st = moss_compile(&cc, &o);
      fuzz_check_failure(&cc, st, compile_allowed);
    }
    moss_target_destroy(&ctx, t);
  } else if (t) {
    __builtin_trap();
  }
  fuzz_heap_check_empty(&heap);
  return 0;
}
