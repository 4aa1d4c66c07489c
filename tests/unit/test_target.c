/* test_target.c - unit tests of the target model (compiler/target): the
 * shipped targets load and say what they should, inherit= merges, every
 * broken fixture under data/targets/ gives one message naming the file, the
 * line and the field, the loader leaks nothing when an allocation fails (its
 * own, through the context, with oom.h; libxml2's, as out-of-memory), and
 * `moss targets` prints what it promises. Needs MOSS_TARGETS_DIR (set by
 * CTest) or is run from the source root. */
#define _POSIX_C_SOURCE 200809L /* dup, dup2, fileno, mkdtemp, setenv, sysconf */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h> /* the libxml2 allocation-failure test only */
#include <libxml/xmlmemory.h>

#include "diag_sink.h"
#include "harness.h"
#include "oom.h"
#include "target/target.h"

#ifndef MOSS_TEST_DATA_DIR
#define MOSS_TEST_DATA_DIR "tests/unit/data"
#endif
#define FIXTURE(name) MOSS_TEST_DATA_DIR "/targets/" name
#ifndef MOSS_TARGETS_DIR_FOR_TEST
#define MOSS_TARGETS_DIR_FOR_TEST "targets"
#endif


/* Loads |path| expecting failure; leaves the messages in |b|. */
static moss_status load_fails(const char *path, sink_buf *b) {
  moss_ctx ctx;
  moss_target *t = (moss_target *)&t;
  moss_status st;
  ctx_with_sink(&ctx, b);
  st = moss_target_load(&ctx, path, &t);
  if (t) { /* must not happen; do not leak it either */
    moss_target_destroy(&ctx, t);
    return MOSS_OK;
  }
  return st;
}

TEST(load_c99) {
  moss_ctx ctx;
  sink_buf b;
  moss_target *t;
  double pj;
  const char *src;
  moss_target_level lv;
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(moss_target_load(&ctx, "c99", &t), MOSS_OK);
  ASSERT_EQ(b.count, 0);
  ASSERT_TRUE(strcmp(moss_target_name(t), "c99") == 0);
  ASSERT_TRUE(strcmp(moss_target_vendor(t), "moss") == 0);
  ASSERT_STR_CONTAINS(moss_target_description(t), "C99");
  ASSERT_STR_CONTAINS(moss_target_path(t), "c99.xml");
  ASSERT_TRUE(moss_target_inherit(t) == NULL);
  ASSERT_EQ(moss_target_device_count(t), 1);
  ASSERT_EQ(moss_target_fallback(t), 0);
  ASSERT_TRUE(strcmp(moss_target_device_id(t, 0), "cpu") == 0);
  ASSERT_TRUE(strcmp(moss_target_device_kind(t, 0), "cpu") == 0);
  ASSERT_TRUE(strcmp(moss_target_device_backend(t, 0), "c") == 0);
  ASSERT_TRUE(moss_target_device_codegen(t, 0, "triple") == NULL);
  ASSERT_EQ(moss_target_device_mac_pj(t, 0, "f32", &pj, &src), 1);
  ASSERT_NEAR(pj, 4.6, 1e-12);
  ASSERT_STR_CONTAINS(src, "op-model (Horowitz 2014, 45 nm");
  ASSERT_EQ(moss_target_device_mac_pj(t, 0, "i8", &pj, &src), 1);
  ASSERT_NEAR(pj, 0.3, 1e-12);
  ASSERT_EQ(moss_target_device_mac_pj(t, 0, "bf16", &pj, &src), 0);
  ASSERT_TRUE(src == NULL);
  ASSERT_EQ(moss_target_device_power(t, 0, &pj, &pj, &src), 0);
  ASSERT_EQ(moss_target_device_level_count(t, 0), 2);
  moss_target_device_level(t, 0, 1, &lv);
  ASSERT_TRUE(strcmp(lv.name, "dram") == 0);
  ASSERT_EQ(lv.has_energy, 1);
  ASSERT_NEAR(lv.pj_per_byte, 160, 1e-12);
  ASSERT_STR_CONTAINS(lv.source, "Horowitz 2014, 45 nm");
  ASSERT_EQ(moss_target_device_supports(t, 0, "Conv", "f32"), -1);
  moss_target_destroy(&ctx, t);
}

TEST(load_host) {
  moss_ctx ctx;
  sink_buf b;
  moss_target *t;
  double idle, active;
  const char *src;
  moss_target_level lv;
  int i;
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(moss_target_load(&ctx, NULL, &t), MOSS_OK); /* NULL is "host" */
  ASSERT_TRUE(strcmp(moss_target_name(t), "host") == 0);
  ASSERT_EQ(moss_target_device_count(t), 1);
  ASSERT_TRUE(strcmp(moss_target_device_backend(t, 0), "llvm") == 0);
  ASSERT_TRUE(strcmp(moss_target_device_codegen(t, 0, "triple"), "x86_64-pc-linux-gnu") == 0);
  ASSERT_TRUE(strcmp(moss_target_device_codegen(t, 0, "cpu"), "native") == 0);
  ASSERT_TRUE(moss_target_device_codegen(t, 0, "no-such-key") == NULL);
  ASSERT_TRUE(moss_target_device_clock_mhz(t, 0) > 0);
  ASSERT_TRUE(moss_target_device_macs_per_cycle(t, 0, "f32") > 0);
  ASSERT_EQ(moss_target_device_power(t, 0, &idle, &active, &src), 1);
  ASSERT_TRUE(active > idle);
  ASSERT_STR_CONTAINS(src, "estimate");
  /* Every figure says where it comes from. */
  for (i = 0; i < moss_target_device_level_count(t, 0); i++) {
    moss_target_device_level(t, 0, i, &lv);
    ASSERT_TRUE(lv.source != NULL && lv.perf_source != NULL);
    ASSERT_TRUE(lv.size_bytes > 0);
  }
  ASSERT_EQ(b.count, 0);
  moss_target_destroy(&ctx, t);
}

TEST(inherit_merges) {
  moss_ctx ctx;
  sink_buf b;
  moss_target *t;
  double pj, idle, active;
  const char *src;
  moss_target_level lv;
  int cpu, npu;
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(moss_target_load(&ctx, FIXTURE("board.xml"), &t), MOSS_OK);
  ASSERT_EQ(b.count, 0);
  ASSERT_TRUE(strcmp(moss_target_inherit(t), "c99") == 0);
  ASSERT_EQ(moss_target_device_count(t), 2);
  cpu = moss_target_device_find(t, "cpu");
  npu = moss_target_device_find(t, "npu0");
  ASSERT_EQ(cpu, 0); /* the parent's devices come first */
  ASSERT_EQ(npu, 1);
  ASSERT_EQ(moss_target_device_find(t, "gpu"), -1);
  ASSERT_EQ(moss_target_fallback(t), cpu);
  /* kind and backend come from c99; codegen and clock from the board. */
  ASSERT_TRUE(strcmp(moss_target_device_kind(t, cpu), "cpu") == 0);
  ASSERT_TRUE(strcmp(moss_target_device_backend(t, cpu), "c") == 0);
  ASSERT_TRUE(strcmp(moss_target_device_codegen(t, cpu, "cpu"), "cortex-a53") == 0);
  ASSERT_NEAR(moss_target_device_clock_mhz(t, cpu), 1200, 1e-9);
  ASSERT_EQ(moss_target_device_units(t, cpu), 1);                      /* c99 */
  ASSERT_NEAR(moss_target_device_macs_per_cycle(t, cpu, "i8"), 1, 0); /* c99 */
  /* f32 replaced, i8 kept. */
  ASSERT_EQ(moss_target_device_mac_pj(t, cpu, "f32", &pj, &src), 1);
  ASSERT_NEAR(pj, 2.5, 1e-12);
  ASSERT_STR_CONTAINS(src, "estimate (scaled");
  ASSERT_EQ(moss_target_device_mac_pj(t, cpu, "i8", &pj, &src), 1);
  ASSERT_NEAR(pj, 0.3, 1e-12);
  ASSERT_STR_CONTAINS(src, "Horowitz");
  ASSERT_EQ(moss_target_device_power(t, cpu, &idle, &active, &src), 1);
  ASSERT_NEAR(active, 2.5, 1e-12);
  /* Levels merged by name: cache from c99, dram replaced, flash added. */
  ASSERT_EQ(moss_target_device_level_count(t, cpu), 3);
  moss_target_device_level(t, cpu, 0, &lv);
  ASSERT_TRUE(strcmp(lv.name, "cache") == 0);
  moss_target_device_level(t, cpu, 1, &lv);
  ASSERT_TRUE(strcmp(lv.name, "dram") == 0);
  ASSERT_EQ(lv.size_bytes, 536870912);
  ASSERT_NEAR(lv.pj_per_byte, 120, 1e-12);
  moss_target_device_level(t, cpu, 2, &lv);
  ASSERT_TRUE(strcmp(lv.name, "flash") == 0);
  ASSERT_EQ(lv.has_energy, 0);
  ASSERT_TRUE(strcmp(lv.source, "not-modeled") == 0);
  /* The npu and its op list. */
  ASSERT_TRUE(strcmp(moss_target_device_backend(t, npu), "plugin:npu-systolic") == 0);
  ASSERT_EQ(moss_target_device_supports(t, npu, "Conv", "i8"), 1);
  ASSERT_EQ(moss_target_device_supports(t, npu, "Conv", "f32"), 0);
  ASSERT_EQ(moss_target_device_supports(t, npu, "MatMul", "i32"), 1);
  ASSERT_EQ(moss_target_device_supports(t, npu, "MatMul", "i3"), 0);
  ASSERT_EQ(moss_target_device_supports(t, npu, "Relu", "i8"), 0);
  ASSERT_NEAR(moss_target_device_macs_per_cycle(t, npu, "i8"), 256, 0);
  moss_target_destroy(&ctx, t);
}

/* Each broken fixture: one message, with the file, the line and the field. */
TEST(malformed_xml) {
  sink_buf b;
  ASSERT_EQ(load_fails(FIXTURE("malformed.xml"), &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1);
  ASSERT_STR_CONTAINS(b.text, "target: ");
  ASSERT_STR_CONTAINS(b.text, "malformed.xml:7: malformed XML");
  ASSERT_STR_CONTAINS(b.text, "compute");
}

TEST(energy_without_source) {
  sink_buf b;
  ASSERT_EQ(load_fails(FIXTURE("no-source.xml"), &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1);
  ASSERT_STR_CONTAINS(b.text, "no-source.xml:8: ");
  ASSERT_STR_CONTAINS(b.text, "'mac'");
  ASSERT_STR_CONTAINS(b.text, "'source' is required");
}

TEST(source_without_label) {
  sink_buf b;
  ASSERT_EQ(load_fails(FIXTURE("bad-source.xml"), &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1);
  ASSERT_STR_CONTAINS(b.text, "bad-source.xml:7: ");
  ASSERT_STR_CONTAINS(b.text, "attribute 'source'");
  ASSERT_STR_CONTAINS(b.text, "'my guess'");
  ASSERT_STR_CONTAINS(b.text, "must start with op-model");
}

TEST(unknown_element) {
  sink_buf b;
  ASSERT_EQ(load_fails(FIXTURE("unknown-element.xml"), &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1);
  ASSERT_STR_CONTAINS(b.text, "unknown-element.xml:7: ");
  ASSERT_STR_CONTAINS(b.text, "'frobnicate'");
  ASSERT_STR_CONTAINS(b.text, "inside <device>: This element is not expected");
}

TEST(inherit_cycle) {
  sink_buf b;
  ASSERT_EQ(load_fails(FIXTURE("cycle-a.xml"), &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1);
  ASSERT_STR_CONTAINS(b.text, "cycle-b.xml:5: inherit cycle: cycle-a -> cycle-b -> cycle-a");
}

TEST(unknown_inherit) {
  sink_buf b;
  ASSERT_EQ(load_fails(FIXTURE("unknown-inherit.xml"), &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1);
  ASSERT_STR_CONTAINS(b.text, "unknown-inherit.xml:3: inherit: unknown target 'no-such-chip'");
}

TEST(inherit_name_mismatch) {
  sink_buf b;
  ASSERT_EQ(load_fails(FIXTURE("inherit-wrong-name.xml"), &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1);
  ASSERT_STR_CONTAINS(b.text, "wrong-name.xml:3: target name 'something-else' does not match");
}

TEST(device_without_kind) {
  sink_buf b;
  ASSERT_EQ(load_fails(FIXTURE("no-kind.xml"), &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1);
  ASSERT_STR_CONTAINS(b.text, "no-kind.xml:5: device 'cpu' has no kind");
}

TEST(unknown_fallback) {
  sink_buf b;
  ASSERT_EQ(load_fails(FIXTURE("bad-fallback.xml"), &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1);
  ASSERT_STR_CONTAINS(b.text, "bad-fallback.xml:3: fallback device 'npu0'");
}

TEST(level_without_energy) {
  sink_buf b;
  ASSERT_EQ(load_fails(FIXTURE("level-no-energy.xml"), &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1); /* flash says not-modeled: fine */
  ASSERT_STR_CONTAINS(b.text, "level-no-energy.xml:8: memory level 'sram'");
  ASSERT_STR_CONTAINS(b.text, "energy-pj-per-byte is missing");
}

TEST(missing_file) {
  sink_buf b;
  ASSERT_EQ(load_fails(FIXTURE("no-such-file.xml"), &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1);
  ASSERT_STR_CONTAINS(b.text, "no-such-file.xml: cannot read target file");
  ASSERT_EQ(load_fails("no-such-target", &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1);
  ASSERT_STR_CONTAINS(b.text, "no-such-target.xml: unknown target 'no-such-target'");
}

/* Loads |path| (NULL: host) with allocation N failing, N = 1, 2, ... until it
 * loads (oom.h); every failure must say out-of-memory and leak nothing. */
static void load_under_failures(int *failed_, const char *path) {
  long runs = g_oom.total_runs;
  OOM_LOOP {
    moss_ctx ctx;
    sink_buf b;
    moss_target *t = NULL;
    moss_status st;
    ctx_with_sink(&ctx, &b);
    ctx.alloc = oom_allocator();
    st = OOM_CALL(&ctx, moss_target_load(&ctx, path, &t));
    if (OOM_STOPPED()) {
      ASSERT_TRUE(t == NULL);
      continue;
    }
    ASSERT_EQ(st, MOSS_OK);
    moss_target_destroy(&ctx, t);
  }
  ASSERT_TRUE(g_oom.total_runs - runs > 1);
}

/* libxml2 allocates through its own allocator, process-wide (xmlMemSetup),
 * not the context's. When it fails, the loader says out-of-memory, not that
 * the XML is malformed: here every libxml2 allocation after the parser's
 * start-up fails, so the first, for the schema, does. */
static int g_xml_fail;
static void *xml_malloc(size_t n) { return g_xml_fail ? NULL : malloc(n); }
static void *xml_realloc(void *p, size_t n) { return g_xml_fail ? NULL : realloc(p, n); }
static char *xml_strdup(const char *s) { return g_xml_fail ? NULL : strdup(s); }

TEST(libxml2_allocation_failure_is_out_of_memory) {
  xmlFreeFunc f;
  xmlMallocFunc m;
  xmlReallocFunc r;
  xmlStrdupFunc d;
  moss_ctx ctx;
  sink_buf b;
  moss_target *t = NULL;
  moss_status st;
  xmlInitParser();
  xmlMemGet(&f, &m, &r, &d);
  xmlMemSetup(free, xml_malloc, xml_realloc, xml_strdup);
  ctx_with_sink(&ctx, &b);
  g_xml_fail = 1;
  st = moss_target_load(&ctx, FIXTURE("board.xml"), &t);
  g_xml_fail = 0;
  xmlMemSetup(f, m, r, d);
  ASSERT_EQ(st, MOSS_E_NOMEM);
  ASSERT_TRUE(t == NULL);
  ASSERT_EQ(b.count, 1);
  ASSERT_STR_CONTAINS(b.text, "moss-target.xsd: no memory (libxml2) [target.c:");
  ASSERT_STR_CONTAINS(b.text, ": out-of-memory: ");
}

TEST(allocation_failures_do_not_leak) {
  load_under_failures(failed_, FIXTURE("board.xml"));
  if (*failed_) return;
  load_under_failures(failed_, FIXTURE("ops-limits.xml"));
  if (*failed_) return;
  load_under_failures(failed_, NULL); /* host, with detection */
}

/* Runs `moss targets ARGS...` and returns what it printed in |out|. */
static moss_status run_cli(moss_ctx *ctx, int argc, char **argv, char *out, size_t cap) {
  FILE *tmp = tmpfile();
  int saved;
  size_t n;
  moss_status st;
  out[0] = 0;
  if (!tmp) return MOSS_E_IO;
  fflush(stdout);
  saved = dup(fileno(stdout));
  dup2(fileno(tmp), fileno(stdout));
  st = moss_targets_cli(ctx, argc, argv);
  fflush(stdout);
  dup2(saved, fileno(stdout));
  close(saved);
  rewind(tmp);
  n = fread(out, 1, cap - 1, tmp);
  out[n] = 0;
  fclose(tmp);
  return st;
}

TEST(cli_list_show_validate) {
  moss_ctx ctx;
  sink_buf b;
  char out[16384];
  char *list[] = {"targets", "list"};
  char *none[] = {"targets"};
  char *show[] = {"targets", "show", "host"};
  char *good[] = {"targets", "validate", FIXTURE("board.xml")};
  char *bad[] = {"targets", "validate", FIXTURE("no-source.xml")};
  char *usage[] = {"targets", "frob"};
  const char *c99, *host;
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(run_cli(&ctx, 2, list, out, sizeof out), MOSS_OK);
  c99 = strstr(out, "c99 ");
  host = strstr(out, "host ");
  ASSERT_TRUE(c99 && host && c99 < host); /* sorted by name */
  ASSERT_STR_CONTAINS(out, "moss");
  ASSERT_STR_CONTAINS(out, "Portable C99");
  ASSERT_EQ(run_cli(&ctx, 1, none, out, sizeof out), MOSS_OK);
  ASSERT_STR_CONTAINS(out, "c99 ");
  ASSERT_EQ(run_cli(&ctx, 3, show, out, sizeof out), MOSS_OK);
  ASSERT_STR_CONTAINS(out, "target host");
  ASSERT_STR_CONTAINS(out, "device cpu: kind cpu, backend llvm");
  ASSERT_STR_CONTAINS(out, "triple x86_64-pc-linux-gnu");
  ASSERT_STR_CONTAINS(out, "memory l1:");
  ASSERT_STR_CONTAINS(out, "energy per f32 MAC: 4.6 pJ");
  ASSERT_STR_CONTAINS(out, "source: op-model (Horowitz 2014, 45 nm");
  ASSERT_EQ(b.count, 0);
  ASSERT_EQ(run_cli(&ctx, 3, good, out, sizeof out), MOSS_OK);
  ASSERT_STR_CONTAINS(out, "board.xml: valid");
  ASSERT_EQ(run_cli(&ctx, 3, bad, out, sizeof out), MOSS_E_TARGET);
  ASSERT_TRUE(strstr(out, "valid") == NULL);
  ASSERT_STR_CONTAINS(b.text, "no-source.xml:8:");
  ASSERT_EQ(run_cli(&ctx, 2, usage, out, sizeof out), MOSS_E_TARGET);
  ASSERT_STR_CONTAINS(b.text, "usage: moss targets");
}

/* ---- codegen facts, op limits, plugin paths, host detection ---- */

TEST(codegen_facts) {
  moss_ctx ctx;
  sink_buf b;
  moss_target *t;
  int gpu, cl, cpu;
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(moss_target_load(&ctx, FIXTURE("ops-limits.xml"), &t), MOSS_OK);
  ASSERT_EQ(b.count, 0);
  gpu = moss_target_device_find(t, "gpu");
  cl = moss_target_device_find(t, "cl");
  cpu = moss_target_device_find(t, "cpu");
  /* Lists come back with their white space folded. */
  ASSERT_TRUE(strcmp(moss_target_device_codegen(t, gpu, "spirv-capabilities"),
                     "Shader Int8 Float16") == 0);
  ASSERT_TRUE(strcmp(moss_target_device_codegen(t, cl, "opencl-extensions"),
                     "cl_khr_fp16 cl_khr_int64_base_atomics") == 0);
  ASSERT_TRUE(strcmp(moss_target_device_codegen(t, gpu, "subgroup-size"), "32") == 0);
  ASSERT_EQ(moss_target_device_max_workgroup_size(t, gpu), 1024);
  ASSERT_EQ(moss_target_device_subgroup_size(t, gpu), 32);
  ASSERT_EQ(moss_target_device_local_memory_bytes(t, gpu), 49152);
  ASSERT_EQ(moss_target_device_max_workgroup_size(t, cl), 0);
  ASSERT_EQ(moss_target_device_local_memory_bytes(t, cpu), 0);
  ASSERT_TRUE(moss_target_device_codegen(t, cpu, "spirv-capabilities") == NULL);
  moss_target_destroy(&ctx, t);
}

/* Asks device |dev| of |t| about |f|; expects |want| and, for 0, a reason
 * containing |needle|. */
static void expect_accepts(int *failed_, const moss_target *t, const char *dev,
                           moss_target_node_facts f, int want, const char *needle) {
  char why[256];
  int i = moss_target_device_find(t, dev);
  ASSERT_TRUE(i >= 0);
  strcpy(why, "stale");
  ASSERT_EQ(moss_target_device_accepts(t, i, &f, why, sizeof why), want);
  if (want == 0)
    ASSERT_STR_CONTAINS(why, needle);
  else
    ASSERT_TRUE(why[0] == 0);
}

TEST(device_accepts) {
  moss_ctx ctx;
  sink_buf b;
  moss_target *t;
  char tiny[8];
  moss_target_node_facts conv = {"Conv", "i8", 4, {3, 3}, {1, 1}, 64, 128};
  moss_target_node_facts f;
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(moss_target_load(&ctx, FIXTURE("ops-limits.xml"), &t), MOSS_OK);
  expect_accepts(failed_, t, "npu", conv, 1, "");
  if (*failed_) goto out;
  /* Kernel too big: 11 > 7 (ops-limits.xml line 7). */
  f = conv;
  f.kernel[0] = 11;
  expect_accepts(failed_, t, "npu", f, 0, "Conv kernel 11 > max-kernel 7 (ops-limits.xml:7)");
  if (*failed_) goto out;
  f = conv; /* a non-square kernel: the wide side fails */
  f.kernel[1] = 9;
  expect_accepts(failed_, t, "npu", f, 0, "Conv kernel 9 > max-kernel 7 (ops-limits.xml:7)");
  if (*failed_) goto out;
  f = conv; /* exactly the limit is fine */
  f.kernel[0] = f.kernel[1] = 7;
  expect_accepts(failed_, t, "npu", f, 1, "");
  if (*failed_) goto out;
  /* Stride not allowed: 3 is not in "1 2". */
  f = conv;
  f.stride[1] = 3;
  expect_accepts(failed_, t, "npu", f, 0, "Conv stride 3 not in strides 1 2 (ops-limits.xml:7)");
  if (*failed_) goto out;
  /* Too many channels: 257 > 256, in or out. */
  f = conv;
  f.in_channels = 257;
  expect_accepts(failed_, t, "npu", f, 0,
                 "Conv in_channels 257 > max-channels 256 (ops-limits.xml:7)");
  if (*failed_) goto out;
  f = conv;
  f.out_channels = 512;
  expect_accepts(failed_, t, "npu", f, 0,
                 "Conv out_channels 512 > max-channels 256 (ops-limits.xml:7)");
  if (*failed_) goto out;
  f = conv;
  f.in_channels = f.out_channels = 256;
  expect_accepts(failed_, t, "npu", f, 1, "");
  if (*failed_) goto out;
  /* Dtype not listed for the op. */
  f = conv;
  f.dtype = "f32";
  expect_accepts(failed_, t, "npu", f, 0,
                 "no Conv for f32 in its <ops>, only i8 (ops-limits.xml:7)");
  if (*failed_) goto out;
  /* Op not listed: the <ops> element is on line 6. */
  f = conv;
  f.op_type = "Softmax";
  expect_accepts(failed_, t, "npu", f, 0, "no Softmax for i8 in its <ops> (ops-limits.xml:6)");
  if (*failed_) goto out;
  /* The kernels list: 2 and 3 only (written "2  3", line 8). */
  f = conv;
  f.op_type = "MaxPool";
  f.kernel[0] = f.kernel[1] = 3;
  f.stride[0] = f.stride[1] = 2;
  expect_accepts(failed_, t, "npu", f, 1, "");
  if (*failed_) goto out;
  f.kernel[0] = 5;
  expect_accepts(failed_, t, "npu", f, 0, "MaxPool kernel 5 not in kernels 2 3 (ops-limits.xml:8)");
  if (*failed_) goto out;
  f.kernel[0] = 3;
  f.stride[0] = 1;
  expect_accepts(failed_, t, "npu", f, 0, "MaxPool stride 1 not in strides 2 (ops-limits.xml:8)");
  if (*failed_) goto out;
  /* max-rank: 4 passes, 5 fails; rank 0 (unknown) is not checked. */
  memset(&f, 0, sizeof f);
  f.op_type = "Add";
  f.dtype = "i32";
  f.rank = 4;
  expect_accepts(failed_, t, "npu", f, 1, "");
  if (*failed_) goto out;
  f.rank = 5;
  expect_accepts(failed_, t, "npu", f, 0, "Add rank 5 > max-rank 4 (ops-limits.xml:9)");
  if (*failed_) goto out;
  f.rank = 0;
  expect_accepts(failed_, t, "npu", f, 1, "");
  if (*failed_) goto out;
  /* No <ops> list: the backend decides. */
  expect_accepts(failed_, t, "cpu", conv, -1, "");
  if (*failed_) goto out;
  /* A short buffer is truncated, not overrun; a NULL one is fine. */
  f = conv;
  f.kernel[0] = 11;
  ASSERT_EQ(moss_target_device_accepts(t, 0, &f, tiny, sizeof tiny), 0);
  ASSERT_TRUE(strlen(tiny) == sizeof tiny - 1);
  ASSERT_EQ(moss_target_device_accepts(t, 0, &f, NULL, 0), 0);
out:
  moss_target_destroy(&ctx, t);
}

TEST(bad_max_kernel) {
  sink_buf b;
  ASSERT_EQ(load_fails(FIXTURE("bad-max-kernel.xml"), &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1);
  ASSERT_STR_CONTAINS(b.text, "bad-max-kernel.xml:7: ");
  ASSERT_STR_CONTAINS(b.text, "attribute 'max-kernel'");
  ASSERT_STR_CONTAINS(b.text, "'0'");
}

/* In these three fixtures the bad attribute is on the last line of a start
 * tag that spans two lines; libxml2 numbers an element by the line its start
 * tag ends on, so the message names the line that holds the field. */
TEST(non_numeric_subgroup_size) {
  sink_buf b;
  ASSERT_EQ(load_fails(FIXTURE("bad-subgroup.xml"), &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1);
  ASSERT_STR_CONTAINS(b.text, "bad-subgroup.xml:6: ");
  ASSERT_STR_CONTAINS(b.text, "attribute 'subgroup-size'");
  ASSERT_STR_CONTAINS(b.text, "'thirty-two'");
}

TEST(unknown_attribute) {
  sink_buf b;
  ASSERT_EQ(load_fails(FIXTURE("unknown-attribute.xml"), &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1);
  ASSERT_STR_CONTAINS(b.text, "unknown-attribute.xml:7: ");
  ASSERT_STR_CONTAINS(b.text, "'max-kernal'");
  ASSERT_STR_CONTAINS(b.text, "not allowed");
}

TEST(plugin_on_builtin_backend) {
  sink_buf b;
  ASSERT_EQ(load_fails(FIXTURE("plugin-wrong-backend.xml"), &b), MOSS_E_TARGET);
  ASSERT_EQ(b.count, 1);
  ASSERT_STR_CONTAINS(b.text, "plugin-wrong-backend.xml:5: device 'cpu': plugin= is given but "
                              "its backend is 'c'");
}

TEST(plugin_path) {
  moss_ctx ctx;
  sink_buf b;
  moss_target *t;
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(moss_target_load(&ctx, FIXTURE("ops-limits.xml"), &t), MOSS_OK);
  ASSERT_TRUE(strcmp(moss_target_device_plugin(t, moss_target_device_find(t, "npu")),
                     MOSS_TEST_DATA_DIR "/targets/plugins/libtest-npu.so") == 0);
  ASSERT_TRUE(moss_target_device_plugin(t, moss_target_device_find(t, "cpu")) == NULL);
  moss_target_destroy(&ctx, t);
}

/* Writes |text| to |path|; 0 on success. */
static int write_file(const char *path, const char *text, size_t n) {
  FILE *f = fopen(path, "wb");
  int ok;
  if (!f) return -1;
  ok = fwrite(text, 1, n, f) == n;
  return fclose(f) == 0 && ok ? 0 : -1;
}

/* The parent lives in a temporary targets folder (with a copy of the
 * schema), the child in data/targets: each plugin= is resolved against the
 * folder of the file that wrote it. */
TEST(plugin_path_through_inherit) {
  static const char parent[] =
      "<?xml version=\"1.0\"?>\n"
      "<target name=\"plugin-parent\" vendor=\"test\">\n"
      "  <description>parent with plugins</description>\n"
      "  <device id=\"npu\" kind=\"npu\" backend=\"plugin:p\" plugin=\"lib/libp.so\">\n"
      "    <params><param name=\"rows\" value=\"8\"/><param name=\"cols\" value=\"8\"/></params>\n"
      "  </device>\n"
      "  <device id=\"npu2\" kind=\"npu\" backend=\"plugin:q\" plugin=\"lib/libq.so\"/>\n"
      "  <device id=\"npu3\" kind=\"npu\" backend=\"plugin:r\" plugin=\"/opt/r/libr.so\"/>\n"
      "</target>\n";
  const char *dir = getenv("MOSS_TARGETS_DIR");
  char tmp[] = "/tmp/moss-targets-XXXXXX", xsd[512], copy[512], par[512], want[600];
  char *saved = dir ? strdup(dir) : NULL, *schema = NULL;
  moss_ctx ctx;
  sink_buf b;
  moss_target *t = NULL;
  moss_status st;
  long n = 0;
  FILE *f;
  snprintf(xsd, sizeof xsd, "%s/moss-target.xsd", dir && *dir ? dir : "targets");
  ASSERT_TRUE((f = fopen(xsd, "rb")) != NULL);
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (schema = malloc((size_t)n)) != NULL && fread(schema, 1, (size_t)n, f) != (size_t)n) {
    free(schema);
    schema = NULL;
  }
  fclose(f);
  ASSERT_TRUE(schema != NULL);
  ASSERT_TRUE(mkdtemp(tmp) != NULL);
  snprintf(copy, sizeof copy, "%s/moss-target.xsd", tmp);
  snprintf(par, sizeof par, "%s/plugin-parent.xml", tmp);
  ASSERT_EQ(write_file(copy, schema, (size_t)n), 0);
  ASSERT_EQ(write_file(par, parent, sizeof parent - 1), 0);
  free(schema);
  setenv("MOSS_TARGETS_DIR", tmp, 1);
  ctx_with_sink(&ctx, &b);
  st = moss_target_load(&ctx, FIXTURE("plugin-child.xml"), &t);
  if (saved) setenv("MOSS_TARGETS_DIR", saved, 1);
  else unsetenv("MOSS_TARGETS_DIR");
  free(saved);
  unlink(copy);
  unlink(par);
  rmdir(tmp);
  if (st != MOSS_OK) FAIL_("%s", b.text);
  snprintf(want, sizeof want, "%s/lib/libp.so", tmp);
  ASSERT_TRUE(strcmp(moss_target_device_plugin(t, moss_target_device_find(t, "npu")), want) == 0);
  ASSERT_NEAR(moss_target_device_clock_mhz(t, moss_target_device_find(t, "npu")), 500, 0);
  { /* <params>: the child's rows replaces the parent's, cols kept, lanes added */
    int d = moss_target_device_find(t, "npu"), k;
    const char *name, *value, *want_vals[3] = {"32", "8", "16"}, *want_names[3] = {"rows", "cols",
                                                                                  "lanes"};
    ASSERT_EQ(moss_target_device_param_count(t, d), 3);
    for (k = 0; k < 3; k++) {
      moss_target_device_param(t, d, k, &name, &value);
      ASSERT_TRUE(strcmp(name, want_names[k]) == 0 && strcmp(value, want_vals[k]) == 0);
    }
    ASSERT_EQ(moss_target_device_param_count(t, moss_target_device_find(t, "npu2")), 0);
  }
  ASSERT_TRUE(strcmp(moss_target_device_plugin(t, moss_target_device_find(t, "npu2")),
                     MOSS_TEST_DATA_DIR "/targets/child-lib/libq.so") == 0);
  ASSERT_TRUE(strcmp(moss_target_device_plugin(t, moss_target_device_find(t, "npu3")),
                     "/opt/r/libr.so") == 0);
  moss_target_destroy(&ctx, t);
}

TEST(host_detection) {
  moss_ctx ctx;
  sink_buf b;
  moss_target *t;
  moss_target_level lv;
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  char out[16384];
  char *show[] = {"targets", "show", "host"};
  const char *feats;
  int cpu, k, dram = -1;
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(moss_target_load(&ctx, "host", &t), MOSS_OK);
  ASSERT_EQ(b.count, 0);
  cpu = moss_target_device_find(t, "cpu");
  ASSERT_TRUE(cpu >= 0);
  if (online > 0) ASSERT_EQ(moss_target_device_units(t, cpu), online);
  feats = moss_target_device_codegen(t, cpu, "features");
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
  ASSERT_TRUE(feats != NULL);
  ASSERT_EQ(strstr(feats, "avx2") != NULL, __builtin_cpu_supports("avx2") != 0);
  ASSERT_EQ(strstr(feats, "+fma") != NULL, __builtin_cpu_supports("fma") != 0);
#else
  (void)feats;
#endif
  for (k = 0; k < moss_target_device_level_count(t, cpu); k++) {
    moss_target_device_level(t, cpu, k, &lv);
    if (strcmp(lv.name, "dram") == 0) dram = k;
  }
  ASSERT_TRUE(dram >= 0);
  moss_target_device_level(t, cpu, dram, &lv);
  if (pages > 0 && page > 0) {
    ASSERT_EQ(lv.size_bytes, (unsigned long long)pages * (unsigned long long)page);
    ASSERT_STR_CONTAINS(lv.perf_source, "measured:sysconf (_SC_PHYS_PAGES");
  }
  moss_target_destroy(&ctx, t);
  /* Loaded by path, host.xml is only a file: its estimates stay. */
  ASSERT_EQ(moss_target_load(&ctx, MOSS_TARGETS_DIR_FOR_TEST "/host.xml", &t), MOSS_OK);
  ASSERT_EQ(moss_target_device_units(t, 0), 2);
  moss_target_destroy(&ctx, t);
  /* `moss targets show host` prints what was detected and how. */
  ASSERT_EQ(run_cli(&ctx, 3, show, out, sizeof out), MOSS_OK);
  if (online > 0) {
    char want[96];
    snprintf(want, sizeof want, "measured:sysconf (_SC_NPROCESSORS_ONLN = %ld)", online);
    ASSERT_STR_CONTAINS(out, want);
  }
  ASSERT_EQ(b.count, 0);
}

TEST(cli_show_new_fields) {
  moss_ctx ctx;
  sink_buf b;
  char out[16384];
  char *show[] = {"targets", "show", FIXTURE("ops-limits.xml")};
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(run_cli(&ctx, 3, show, out, sizeof out), MOSS_OK);
  ASSERT_STR_CONTAINS(out, "plugin: " MOSS_TEST_DATA_DIR "/targets/plugins/libtest-npu.so");
  ASSERT_STR_CONTAINS(out, "Conv: i8; max-kernel 7; strides 1 2; max-channels 256");
  ASSERT_STR_CONTAINS(out, "MaxPool: i8; kernels 2 3; strides 2");
  ASSERT_STR_CONTAINS(out, "Add: i8 i32; max-rank 4");
  ASSERT_STR_CONTAINS(out, "spirv-capabilities Shader Int8 Float16, max-workgroup-size 1024, "
                           "subgroup-size 32, local-memory-bytes 49152");
  ASSERT_STR_CONTAINS(out, "opencl-extensions cl_khr_fp16 cl_khr_int64_base_atomics");
  ASSERT_EQ(b.count, 0);
}

/* The facts the shipped GPU and NPU targets now carry (values from the files,
 * which cite where each comes from). */
TEST(shipped_codegen_facts) {
  moss_ctx ctx;
  sink_buf b;
  moss_target *t;
  char why[128];
  moss_target_node_facts conv = {"Conv", "i8", 4, {11, 11}, {1, 1}, 16, 16};
  moss_target_node_facts soft = {"Softmax", "i8", 2, {0, 0}, {0, 0}, 0, 0};
  int i;
  ctx_with_sink(&ctx, &b);
  ASSERT_EQ(moss_target_load(&ctx, "opencl-gpu", &t), MOSS_OK);
  i = moss_target_device_find(t, "gpu");
  ASSERT_EQ(moss_target_device_local_memory_bytes(t, i), 32768);
  ASSERT_STR_CONTAINS(moss_target_device_codegen(t, i, "opencl-extensions"),
                      "cl_khr_byte_addressable_store cl_khr_global_int32_base_atomics");
  moss_target_destroy(&ctx, t);
  ASSERT_EQ(moss_target_load(&ctx, "vulkan-gpu", &t), MOSS_OK);
  i = moss_target_device_find(t, "gpu");
  ASSERT_EQ(moss_target_device_max_workgroup_size(t, i), 128);
  ASSERT_EQ(moss_target_device_local_memory_bytes(t, i), 16384);
  ASSERT_TRUE(strcmp(moss_target_device_codegen(t, i, "spirv-capabilities"), "Shader") == 0);
  moss_target_destroy(&ctx, t);
  /* The AGX Orin inherits the Nano's GPU codegen limits. */
  ASSERT_EQ(moss_target_load(&ctx, "jetson-agx-orin", &t), MOSS_OK);
  i = moss_target_device_find(t, "gpu");
  ASSERT_EQ(moss_target_device_subgroup_size(t, i), 32);
  ASSERT_EQ(moss_target_device_max_workgroup_size(t, i), 1024);
  ASSERT_STR_CONTAINS(moss_target_device_codegen(t, i, "spirv-capabilities"), "Shader Int8");
  moss_target_destroy(&ctx, t);
  /* No plugin library exists for the systolic NPU, so none is named; its
   * op limits answer for themselves. */
  ASSERT_EQ(moss_target_load(&ctx, "npu-systolic", &t), MOSS_OK);
  i = moss_target_device_find(t, "npu");
  ASSERT_TRUE(moss_target_device_plugin(t, i) == NULL);
  ASSERT_EQ(moss_target_device_accepts(t, i, &conv, why, sizeof why), 0);
  ASSERT_STR_CONTAINS(why, "Conv kernel 11 > max-kernel 7 (npu-systolic.xml:45)");
  ASSERT_EQ(moss_target_device_accepts(t, i, &soft, why, sizeof why), 0);
  ASSERT_STR_CONTAINS(why, "no Softmax for i8 in its <ops> (npu-systolic.xml:44)");
  ASSERT_EQ(moss_target_device_accepts(t, moss_target_device_find(t, "cpu"), &soft, why,
                                       sizeof why), -1);
  moss_target_destroy(&ctx, t);
  ASSERT_EQ(b.count, 0);
}

/* Every shipped target (each XML file in targets/) loads by name with no message and has
 * at least one device; the list below names them all, and the folder holds no
 * target missing from it. */
TEST(shipped_targets_load) {
  static const char *const names[] = {
      "c99",          "host",       "x86_64-avx2",      "x86_64-avx512",
      "rpi4",         "rpi5",       "riscv64-rvv", "jetson-orin-nano", "jetson-agx-orin",
      "opencl-gpu",   "nvidia-h200", "vulkan-gpu", "npu-systolic",   "cortex-m7"};
  const int count = (int)(sizeof names / sizeof names[0]);
  const char *dir = getenv("MOSS_TARGETS_DIR");
  DIR *d;
  struct dirent *e;
  int i, files = 0;
  for (i = 0; i < count; i++) {
    moss_ctx ctx;
    sink_buf b;
    moss_target *t = NULL;
    ctx_with_sink(&ctx, &b);
    if (moss_target_load(&ctx, names[i], &t) != MOSS_OK || !t) FAIL_("%s: %s", names[i], b.text);
    ASSERT_EQ(b.count, 0);
    ASSERT_TRUE(strcmp(moss_target_name(t), names[i]) == 0);
    ASSERT_TRUE(moss_target_device_count(t) >= 1);
    moss_target_destroy(&ctx, t);
  }
  d = opendir(dir && *dir ? dir : "targets");
  ASSERT_TRUE(d != NULL);
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    int listed = 0;
    if (n <= 4 || strcmp(e->d_name + n - 4, ".xml") != 0) continue;
    files++;
    for (i = 0; i < count; i++)
      if (strlen(names[i]) == n - 4 && strncmp(names[i], e->d_name, n - 4) == 0) listed = 1;
    if (!listed) {
      closedir(d);
      FAIL_("targets/%s is not in the list of shipped targets", e->d_name);
    }
  }
  closedir(d);
  ASSERT_EQ(files, count);
}

TEST_MAIN()
