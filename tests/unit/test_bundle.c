/* test_bundle.c - the .moss format end to end: bundles written by
 * moss_bundle_write() (compiler/bundle) and run by libmossrt (runtime/).
 * The CPU code and a small plugin are compiled here at run time with the
 * system C compiler from the sources below, so every expected output is
 * derived by hand from them. Then every way a bundle can be damaged, each
 * with the message it must give: every truncation, bad magic, version,
 * checksums, section layout, tensors, steps, entries, target; thousands of
 * random mutations that must never crash (this suite also runs under
 * ASan/UBSan); allocation counting (mossrt_run allocates nothing) and
 * failure injection (every allocation of open and session creation). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "bundle/bundle.h"
#include "harness.h"
#include "moss_bundle.h"
#include "mossrt.h"
#include "mossrt_sign.h"

#define OUT MOSS_TEST_OUT_DIR

/* The CPU code. With a = {1,2,3,4} and b = {10,20,30,40}:
 * moss_add writes t = a + b = {11,22,33,44} at arena+64, moss_twice writes
 * y = 2t = {22,44,66,88}. moss_inc writes x + 1 at arena+0 (plugin bundle).
 * moss_nonzero (shapes bundle) is NonZero of the 4 floats x: the indices of
 * the non-zero ones, compact, as int64 into out[0] (shape [1, n], bound
 * [1, 4]), n as an int64 at arena+8, and x itself into out[1].
 * Each takes in[] = the graph's inputs, out[] = its outputs. Each bundle's
 * code is these functions and the figures of that bundle (code_for()). */
static const char cpu_src[] =
    "#include <stdint.h>\n"
    "int moss_add(const void *const *in, void *const *out, void *arena, const void *par) {\n"
    "  const float *a = in[0], *b = in[1];\n"
    "  float *t = (float *)((char *)arena + 64);\n"
    "  (void)out; (void)par;\n"
    "  for (int i = 0; i < 4; i++) t[i] = a[i] + b[i];\n"
    "  return 0;\n"
    "}\n"
    "int moss_twice(const void *const *in, void *const *out, void *arena, const void *par) {\n"
    "  const float *t = (const float *)((char *)arena + 64);\n"
    "  float *y = out[0];\n"
    "  (void)in; (void)par;\n"
    "  for (int i = 0; i < 4; i++) y[i] = 2 * t[i];\n"
    "  return 0;\n"
    "}\n"
    "int moss_fail(const void *const *in, void *const *out, void *arena, const void *par) {\n"
    "  (void)in; (void)out; (void)arena; (void)par;\n"
    "  return 7;\n"
    "}\n"
    "int moss_inc(const void *const *in, void *const *out, void *arena, const void *par) {\n"
    "  const float *x = in[0];\n"
    "  float *t = arena;\n"
    "  (void)out; (void)par;\n"
    "  for (int i = 0; i < 4; i++) t[i] = x[i] + 1;\n"
    "  return 0;\n"
    "}\n"
    "int moss_nonzero(const void *const *in, void *const *out, void *arena, const void *par) {\n"
    "  const float *x = in[0];\n"
    "  int64_t *idx = out[0], n = 0;\n"
    "  float *y = out[1];\n"
    "  (void)par;\n"
    "  for (int i = 0; i < 4; i++) {\n"
    "    y[i] = x[i];\n"
    "    if (x[i] != 0) idx[n++] = i;\n"
    "  }\n"
    "  *(int64_t *)((char *)arena + 8) = n;\n"
    "  return 0;\n"
    "}\n";

/* A plugin device "neg": y = -x over 4 floats. Its blob must be "NEG1";
 * open() fails when NEG_FAIL_OPEN is set, run() when x[0] > 500.
 * neg_live counts opened devices plus loaded blobs. -DABI=n and
 * -DNO_DEVICE_GET build the broken variants. */
static const char plugin_src[] =
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "#include \"moss_plugin.h\"\n"
    "#ifndef ABI\n"
    "#define ABI MOSS_PLUGIN_ABI_VERSION\n"
    "#endif\n"
    "int neg_live;\n"
    "static int state;\n"
    "static int d_open(void **dev, char *err, size_t cap) {\n"
    "  if (getenv(\"NEG_FAIL_OPEN\")) { snprintf(err, cap, \"no such device\"); return 1; }\n"
    "  *dev = &state; neg_live++; return 0;\n"
    "}\n"
    "static int d_load(void *dev, const void *blob, uint64_t n, void **prog, char *err,\n"
    "                  size_t cap) {\n"
    "  if (dev != &state || n != 4 || memcmp(blob, \"NEG1\", 4) != 0) {\n"
    "    snprintf(err, cap, \"bad blob\"); return 1;\n"
    "  }\n"
    "  *prog = (void *)blob; neg_live++; return 0;\n"
    "}\n"
    "static int d_run(void *dev, void *prog, const void *const *in, void *const *out,\n"
    "                 char *err, size_t cap) {\n"
    "  const float *x = in[0]; float *y = out[0];\n"
    "  (void)dev; (void)prog;\n"
    "  if (x[0] > 500) { snprintf(err, cap, \"overheated\"); return 1; }\n"
    "  for (int i = 0; i < 4; i++) y[i] = -x[i];\n"
    "  return 0;\n"
    "}\n"
    "static void d_unload(void *dev, void *prog) { (void)dev; (void)prog; neg_live--; }\n"
    "static void d_close(void *dev) { (void)dev; neg_live--; }\n"
    "static moss_plugin_counters counted = {\"neg_layer\", \"Neg\", 40, 12, 0, 30, 2, 0, 0,\n"
    "  16, 16, 0, 0, 32, 100.0, 3.5};\n"
    "static int d_counters(void *dev, void *prog, const moss_plugin_counters **out,\n"
    "                      uint32_t *n, char *err, size_t cap) {\n"
    "  (void)dev; (void)prog; (void)err; (void)cap; *out = &counted; *n = 1; return 0;\n"
    "}\n"
    "static const moss_plugin_device device = {ABI, sizeof(moss_plugin_device), \"neg\",\n"
    "  d_open, d_load, d_run, d_unload, d_close, d_counters};\n"
    "uint32_t moss_plugin_abi_version(void) { return ABI; }\n"
    "#ifndef NO_DEVICE_GET\n"
    "const moss_plugin_device *moss_plugin_device_get(void) { return &device; }\n"
    "#endif\n";


static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return 0;
  fputs(text, f);
  return fclose(f) == 0;
}

static uint8_t *read_all(const char *path, size_t *out_n) {
  FILE *f = fopen(path, "rb");
  uint8_t *p;
  long n;
  *out_n = 0;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  p = malloc(n > 0 ? (size_t)n : 1);
  if (p && fread(p, 1, (size_t)n, f) == (size_t)n) *out_n = (size_t)n;
  fclose(f);
  return p;
}

/* Compiles |src| into OUT/|name| with |flags|; 1 on success. */
static int compile_so(const char *src, const char *name, const char *flags) {
  char cmd[2048], c_path[1024];
  const char *cc = getenv("CC");
  snprintf(c_path, sizeof c_path, "%s/%s.c", OUT, name);
  if (!write_text(c_path, src)) return 0;
  snprintf(cmd, sizeof cmd, "%s -std=c99 -shared -fPIC -O1 %s -I%s -o %s/%s %s",
           cc && *cc ? cc : "cc", flags, MOSS_PLUGIN_INCLUDE, OUT, name, c_path);
  return system(cmd) == 0;
}

/* Built once: the plugin variants. */
static int setup(void) {
  static int done, ok;
  if (done) return ok;
  done = 1;
  mkdir(OUT, 0755);
  mkdir(OUT "/plug_good", 0755);
  mkdir(OUT "/plug_abi2", 0755);
  mkdir(OUT "/plug_nosym", 0755);
  mkdir(OUT "/corpus", 0755);
  ok = compile_so(plugin_src, "plug_good/libneg.so", "") &&
       compile_so(plugin_src, "plug_abi2/libneg.so", "-DABI=3") &&
       compile_so(plugin_src, "plug_nosym/libneg.so", "-DNO_DEVICE_GET");
  return ok;
}

/* The CPU code of |d| (cpu_src and d's figures, moss_bundle_figures, as the
 * compiler's backends state them: the words moss_bundle_figures_emit()
 * makes of |d|, then the functions its CPU steps name), built as
 * OUT/|name| once per name and kept; d->cpu_code points to its bytes. */
static int code_for(moss_bundle_desc *d, const char *name) {
  static struct {
    char name[32];
    uint8_t *bytes;
    size_t n;
  } cache[8];
  moss_ctx ctx;
  moss_buf fig, src;
  char path[1024];
  uint32_t i;
  int k, nent = 0, ok;
  for (k = 0; k < 8 && cache[k].bytes; k++)
    if (!strcmp(cache[k].name, name)) break;
  if (k == 8) return 0;
  if (!cache[k].bytes) {
    moss_ctx_init(&ctx, moss_allocator_libc());
    moss_buf_init(&fig, &ctx);
    moss_buf_init(&src, &ctx);
    d->cpu_code = NULL;
    ok = moss_bundle_figures_emit(&ctx, d, &fig) == MOSS_OK && fig.len % 8 == 0;
    moss_buf_put(&src, cpu_src, strlen(cpu_src));
    moss_buf_printf(&src, "const struct { uint64_t f[%zu]; int (*e[4])(const void *const *, "
                    "void *const *, void *, const void *); } moss_figures = {{", fig.len / 8);
    for (i = 0; ok && i < fig.len / 8; i++) {
      uint64_t w;
      memcpy(&w, fig.data + i * 8, 8);
      moss_buf_printf(&src, "%sUINT64_C(0x%llx)", i ? ", " : "", (unsigned long long)w);
    }
    moss_buf_printf(&src, "}, {");
    for (i = 0; i < d->nsteps; i++)
      if (d->steps[i].kind == MOSS_BUNDLE_STEP_EXEC && d->steps[i].device == d->cpu_device)
        moss_buf_printf(&src, "%s%s", nent++ ? ", " : "", d->steps[i].entry);
    moss_buf_printf(&src, "}};\n");
    moss_buf_put(&src, "", 1);
    ok = ok && !src.failed && compile_so(src.data, name, "");
    moss_buf_deinit(&fig);
    moss_buf_deinit(&src);
    snprintf(path, sizeof path, "%s/%s", OUT, name);
    if (!ok || !(cache[k].bytes = read_all(path, &cache[k].n))) return 0;
    snprintf(cache[k].name, sizeof cache[k].name, "%s", name);
  }
  d->cpu_code = cache[k].bytes;
  d->cpu_code_bytes = cache[k].n;
  return 1;
}

/* ---- bundle descriptions ---- */

static const uint32_t add_in[] = {0, 1}, add_out[] = {3};

/* The add bundle: y = 2 (a + b) through t at arena+64; both CPU steps take
 * the graph's inputs a, b and its output y. Sections: 0 strings, 1 meta, 2
 * devices, 3 plan, 4 code, 5 report. */
typedef struct add_desc {
  moss_bundle_tensor tensors[4];
  uint32_t inputs[2], outputs[1];
  moss_bundle_device devices[1];
  moss_bundle_step steps[2];
  moss_bundle_desc d;
} add_desc;

static void add_init(add_desc *a) {
  int i;
  memset(a, 0, sizeof *a);
  for (i = 0; i < 4; i++) {
    a->tensors[i].dtype = 1;
    a->tensors[i].rank = 1;
    a->tensors[i].dims[0] = 4;
    a->tensors[i].nbytes = 16;
  }
  a->tensors[0].name = "a";
  a->tensors[0].place = MOSS_BUNDLE_INPUT;
  a->tensors[0].index = 0;
  a->tensors[1].name = "b";
  a->tensors[1].place = MOSS_BUNDLE_INPUT;
  a->tensors[1].index = 1;
  a->tensors[2].name = "t";
  a->tensors[2].place = MOSS_BUNDLE_ARENA;
  a->tensors[2].offset = 64;
  a->tensors[3].name = "y";
  a->tensors[3].place = MOSS_BUNDLE_OUTPUT;
  a->tensors[3].index = 0;
  a->inputs[0] = 0;
  a->inputs[1] = 1;
  a->outputs[0] = 3;
  a->devices[0] = (moss_bundle_device){"cpu", "cpu", "c", NULL, 0};
  a->steps[0] = (moss_bundle_step){MOSS_BUNDLE_STEP_EXEC, 0, 0, "moss_add", 0, 2, 1, add_in,
                                   add_out};
  a->steps[1] = (moss_bundle_step){MOSS_BUNDLE_STEP_EXEC, 0, 0, "moss_twice", 0, 2, 1, add_in,
                                   add_out};
  a->d.target = "test-host";
  a->d.triple = "x86_64-pc-linux-gnu";
  a->d.features = "";
  a->d.arena_bytes = 128;
  a->d.ntensors = 4;
  a->d.ninputs = 2;
  a->d.noutputs = 1;
  a->d.ndevices = 1;
  a->d.nsteps = 2;
  a->d.tensors = a->tensors;
  a->d.inputs = a->inputs;
  a->d.outputs = a->outputs;
  a->d.devices = a->devices;
  a->d.steps = a->steps;
  a->d.report_json = "{\"energy_uj\": 1.5}";
  code_for(&a->d, "cpu_add.so");
}

static const uint32_t p_step0_in[] = {0}, p_step0_out[] = {2}, p_xfer_in[] = {1},
                      p_step2_in[] = {1}, p_step2_out[] = {2};

/* The plugin bundle: t = x + 1 on the CPU at arena+0 (the CPU step takes
 * the graph's input x and output y), moved to the npu, y = -t there.
 * x = {1,2,3,4} gives y = {-2,-3,-4,-5}. */
typedef struct plug_desc {
  moss_bundle_tensor tensors[3];
  uint32_t inputs[1], outputs[1];
  moss_bundle_device devices[2];
  moss_bundle_step steps[3];
  const void *blobs[1];
  uint64_t blob_bytes[1];
  uint32_t blob_device[1];
  moss_bundle_desc d;
} plug_desc;

static void plug_init(plug_desc *p, const char *blob) {
  int i;
  memset(p, 0, sizeof *p);
  for (i = 0; i < 3; i++) {
    p->tensors[i].dtype = 1;
    p->tensors[i].rank = 2;
    p->tensors[i].dims[0] = 1;
    p->tensors[i].dims[1] = 4;
    p->tensors[i].nbytes = 16;
  }
  p->tensors[0].name = "x";
  p->tensors[0].place = MOSS_BUNDLE_INPUT;
  p->tensors[1].name = "t";
  p->tensors[1].place = MOSS_BUNDLE_ARENA;
  p->tensors[2].name = "y";
  p->tensors[2].place = MOSS_BUNDLE_OUTPUT;
  p->inputs[0] = 0;
  p->outputs[0] = 2;
  p->devices[0] = (moss_bundle_device){"cpu", "cpu", "c", NULL, 0};
  p->devices[1] = (moss_bundle_device){"npu", "npu", "plugin:neg", "/nonexistent/libneg.so", 1};
  p->steps[0] = (moss_bundle_step){MOSS_BUNDLE_STEP_EXEC, 0, 0, "moss_inc", 0, 1, 1, p_step0_in,
                                   p_step0_out};
  p->steps[1] = (moss_bundle_step){MOSS_BUNDLE_STEP_TRANSFER, 1, 0, NULL, 0, 1, 0, p_xfer_in, NULL};
  p->steps[2] = (moss_bundle_step){MOSS_BUNDLE_STEP_EXEC, 1, 0, NULL, 0, 1, 1, p_step2_in,
                                   p_step2_out};
  p->blobs[0] = blob;
  p->blob_bytes[0] = strlen(blob);
  p->blob_device[0] = 1;
  p->d.target = "test-npu";
  p->d.triple = "x86_64-pc-linux-gnu";
  p->d.features = "";
  p->d.arena_bytes = 64;
  p->d.ntensors = 3;
  p->d.ninputs = 1;
  p->d.noutputs = 1;
  p->d.ndevices = 2;
  p->d.nsteps = 3;
  p->d.nblobs = 1;
  p->d.tensors = p->tensors;
  p->d.inputs = p->inputs;
  p->d.outputs = p->outputs;
  p->d.devices = p->devices;
  p->d.steps = p->steps;
  p->d.blobs = p->blobs;
  p->d.blob_bytes = p->blob_bytes;
  p->d.blob_device = p->blob_device;
  code_for(&p->d, "cpu_inc.so");
}

/* Writes |d| to OUT/|name| and reads it back into |*out| (malloc'd). */
static moss_status write_bundle(const moss_bundle_desc *d, const char *name, uint8_t **out,
                                size_t *out_n, char *path, size_t cap) {
  moss_ctx ctx;
  moss_status st;
  moss_ctx_init(&ctx, moss_allocator_libc());
  snprintf(path, cap, "%s/%s", OUT, name);
  st = moss_bundle_write(&ctx, d, path);
  if (st != MOSS_OK) {
    fprintf(stderr, "  %s\n", ctx.last);
    return st;
  }
  if (out) {
    *out = read_all(path, out_n);
    if (!*out) return MOSS_E_IO;
  }
  return MOSS_OK;
}

/* ---- byte surgery on a bundle in memory ---- */

static moss_bundle_header *hdr(uint8_t *b) { return (moss_bundle_header *)(void *)b; }

static moss_bundle_section *sect(uint8_t *b, uint32_t i) {
  return (moss_bundle_section *)(void *)(b + hdr(b)->section_table_offset) + i;
}

/* Recomputes every checksum that can be computed, in the right order:
 * the sections' payloads, then the header over the table. */
static void fix_crcs(uint8_t *b, size_t n) {
  moss_bundle_header h;
  uint32_t i, crc;
  uint64_t tab, count;
  if (n < sizeof h) return;
  memcpy(&h, b, sizeof h);
  tab = h.section_table_offset;
  count = h.section_count;
  if (tab > n || count > (n - tab) / sizeof(moss_bundle_section)) return;
  for (i = 0; i < count; i++) {
    moss_bundle_section s;
    memcpy(&s, b + tab + i * sizeof s, sizeof s);
    if (s.offset <= n && s.size <= n - s.offset) {
      s.crc = moss_bundle_crc32(0, b + s.offset, (size_t)s.size);
      memcpy(b + tab + i * sizeof s, &s, sizeof s);
    }
  }
  h.header_crc = 0;
  crc = moss_bundle_crc32(0, &h, sizeof h);
  h.header_crc = moss_bundle_crc32(crc, b + tab, (size_t)count * sizeof(moss_bundle_section));
  memcpy(b, &h, sizeof h);
}

static uint8_t *payload_of(uint8_t *b, uint32_t i) { return b + sect(b, i)->offset; }

/* Opens |n| bytes at |b| from memory; closes on success; the status. */
static mossrt_status try_open(const uint8_t *b, size_t n, uint32_t flags, mossrt_error *err) {
  mossrt_options o;
  mossrt_bundle *bd = NULL;
  mossrt_status st;
  memset(&o, 0, sizeof o);
  o.flags = flags;
  memset(err, 0, sizeof *err);
  st = mossrt_open_memory_ex(b, n, &o, &bd, err);
  if (st == MOSSRT_OK && !bd) return (mossrt_status)99;
  if (st != MOSSRT_OK && (bd || !err->text[0] || err->status != st)) return (mossrt_status)98;
  mossrt_close(bd);
  return st;
}

/* A copy of the add bundle to damage. */
static uint8_t *g_add;
static size_t g_add_n;

static int load_add(void) {
  add_desc a;
  char path[1024];
  if (g_add) return 1;
  if (!setup()) return 0;
  add_init(&a);
  return write_bundle(&a.d, "add.moss", &g_add, &g_add_n, path, sizeof path) == MOSS_OK;
}

static uint8_t *copy_add(void) {
  uint8_t *c = malloc(g_add_n);
  memcpy(c, g_add, g_add_n);
  return c;
}

#define EXPECT_OPEN(buf, n, want_st, want_text)                                                    \
  do {                                                                                             \
    mossrt_error e_;                                                                               \
    mossrt_status s_ = try_open((buf), (n), 0, &e_);                                               \
    if (s_ != (want_st)) FAIL_("status %d, expected %d (%s)", (int)s_, (int)(want_st), e_.text);  \
    ASSERT_STR_CONTAINS(e_.text, (want_text));                                                     \
  } while (0)

/* ---- tests ---- */

TEST(crc32_check_value) {
  /* The published check value of CRC-32/ISO-HDLC. */
  ASSERT_EQ(moss_bundle_crc32(0, "123456789", 9), 0xCBF43926u);
  ASSERT_EQ(moss_bundle_crc32(moss_bundle_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
  ASSERT_EQ(moss_bundle_crc32(0, "", 0), 0);
}

/* Header flag BATCHED (within version 3) opens; a bit no version defines
 * is refused. The add bundle's tensors have axis 0 of 4, not the batch of
 * 1 the flag promises: mossrt_bundle_batched says no, and mossrt_run_batch
 * refuses (the e2e test e2e_batch runs real batched bundles). */
TEST(batched_flag) {
  uint8_t *c;
  mossrt_error err;
  mossrt_bundle *b = NULL;
  mossrt_session *s = NULL;
  ASSERT_TRUE(load_add());
  c = copy_add();
  ASSERT_EQ(hdr(c)->flags, 0);
  hdr(c)->flags = MOSS_BUNDLE_FLAG_BATCHED;
  fix_crcs(c, g_add_n);
  ASSERT_EQ(mossrt_open_memory(c, g_add_n, &b, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_bundle_batched(b), 0);
  ASSERT_EQ(mossrt_bundle_batched(NULL), 0);
  ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_run_batch(s, 2, NULL, NULL, &err), MOSSRT_E_ARG);
  ASSERT_STR_CONTAINS(err.text, "not batched");
  ASSERT_EQ(mossrt_run_batch(NULL, 2, NULL, NULL, &err), MOSSRT_E_ARG);
  mossrt_session_destroy(s);
  mossrt_close(b);
  hdr(c)->flags = 4;
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "header flags 0x4, version 3 defines 0x3");
  free(c);
}

TEST(layout_written) {
  moss_bundle_header h;
  uint32_t i;
  ASSERT_TRUE(load_add());
  memcpy(&h, g_add, sizeof h);
  ASSERT_TRUE(memcmp(g_add, "MOSSBNDL", 8) == 0);
  ASSERT_EQ(g_add[8], 3);             /* version 3, little-endian */
  ASSERT_EQ(g_add[12] | g_add[13] << 8, 320);
  ASSERT_EQ(h.file_size, g_add_n);
  ASSERT_EQ(h.section_count, 6);
  ASSERT_EQ(g_add_n % 64, 0);
  ASSERT_TRUE(strcmp(h.target, "test-host") == 0);
  for (i = 0; i < h.section_count; i++) {
    moss_bundle_section s;
    memcpy(&s, g_add + h.section_table_offset + i * sizeof s, sizeof s);
    ASSERT_EQ(s.offset % 64, 0);
    ASSERT_EQ(s.align, 64);
  }
  /* The report is its JSON and a NUL. */
  ASSERT_EQ(sect(g_add, 5)->kind, MOSS_BUNDLE_SEC_REPORT);
  ASSERT_EQ(sect(g_add, 5)->size, strlen("{\"energy_uj\": 1.5}") + 1);
  ASSERT_TRUE(sect(g_add, 4)->size > 64);
}

/* Round trip from a file: info, report, outputs. */
TEST(run_from_file) {
  char path[1024];
  mossrt_bundle *b;
  mossrt_session *s;
  mossrt_error err;
  mossrt_tensor_info ti;
  const char *rep;
  size_t rlen;
  float a[4] = {1, 2, 3, 4}, bb[4] = {10, 20, 30, 40}, y[4] = {0};
  const void *in[2] = {a, bb};
  void *out[1] = {y};
  ASSERT_TRUE(load_add());
  snprintf(path, sizeof path, "%s/add.moss", OUT);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_OK);
  ASSERT_TRUE(strcmp(mossrt_target(b), "test-host") == 0);
  ASSERT_EQ(mossrt_input_count(b), 2);
  ASSERT_EQ(mossrt_output_count(b), 1);
  ASSERT_EQ(mossrt_arena_bytes(b), 128);
  ASSERT_EQ(mossrt_input_info(b, 1, &ti), MOSSRT_OK);
  ASSERT_TRUE(strcmp(ti.name, "b") == 0);
  ASSERT_EQ(ti.dtype, 1);
  ASSERT_EQ(ti.rank, 1);
  ASSERT_EQ(ti.dims[0], 4);
  ASSERT_EQ(ti.nbytes, 16);
  ASSERT_EQ(mossrt_output_info(b, 0, &ti), MOSSRT_OK);
  ASSERT_TRUE(strcmp(ti.name, "y") == 0);
  ASSERT_EQ(mossrt_input_info(b, 2, &ti), MOSSRT_E_ARG);
  ASSERT_TRUE(ti.name == NULL);
  rep = mossrt_report_json(b, &rlen);
  ASSERT_TRUE(rep && strcmp(rep, "{\"energy_uj\": 1.5}") == 0);
  ASSERT_EQ(rlen, 18);
  ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
  ASSERT_NEAR(y[0], 22, 0);
  ASSERT_NEAR(y[1], 44, 0);
  ASSERT_NEAR(y[2], 66, 0);
  ASSERT_NEAR(y[3], 88, 0);
  /* Again, with other inputs: a = {-1,0,0.5,1}, b = {1,1,1,1}: y = {0,2,3,4}. */
  a[0] = -1, a[1] = 0, a[2] = 0.5f, a[3] = 1;
  bb[0] = bb[1] = bb[2] = bb[3] = 1;
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
  ASSERT_NEAR(y[0], 0, 0);
  ASSERT_NEAR(y[1], 2, 0);
  ASSERT_NEAR(y[2], 3, 0);
  ASSERT_NEAR(y[3], 4, 0);
  /* Missing buffers are the caller's mistake. */
  in[1] = NULL;
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_E_ARG);
  ASSERT_STR_CONTAINS(err.text, "input 1 ('b') is NULL");
  mossrt_session_destroy(s);
  mossrt_close(b);
}

/* The session's threads (runtime/src/pool): by default the cores this
 * process may run on, as sched_getaffinity says; any count runs alike;
 * 1 stops the workers; too many is the caller's mistake and keeps the
 * pool it had. (The pool running real parts: tests/e2e/test_threads.py.) */
TEST(session_threads) {
  char path[1024];
  mossrt_bundle *b;
  mossrt_session *s;
  mossrt_error err;
  cpu_set_t set;
  uint32_t cores, t;
  float a[4] = {1, 2, 3, 4}, bb[4] = {10, 20, 30, 40}, y[4] = {0};
  const void *in[2] = {a, bb};
  void *out[1] = {y};
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  cores = (uint32_t)CPU_COUNT(&set);
  ASSERT_TRUE(load_add());
  snprintf(path, sizeof path, "%s/add.moss", OUT);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_session_threads(s), cores);
  for (t = 1; t <= 5; t++) {
    ASSERT_EQ(mossrt_session_set_threads(s, t, &err), MOSSRT_OK);
    ASSERT_EQ(mossrt_session_threads(s), t);
    y[2] = 0;
    ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
    ASSERT_NEAR(y[2], 66, 0);
  }
  ASSERT_EQ(mossrt_session_set_threads(s, 1025, &err), MOSSRT_E_ARG);
  ASSERT_STR_CONTAINS(err.text, "1025 threads: at most 1024");
  ASSERT_EQ(mossrt_session_threads(s), 5);
  ASSERT_EQ(mossrt_session_set_threads(s, 0, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_session_threads(s), cores);
  mossrt_session_destroy(s);
  mossrt_close(b);
  ASSERT_EQ(mossrt_session_set_threads(NULL, 2, &err), MOSSRT_E_ARG);
  ASSERT_EQ(mossrt_session_threads(NULL), 1);
  { /* no CPU code: nothing to run on threads */
    plug_desc p;
    uint8_t *bytes;
    size_t n;
    mossrt_options o;
    plug_init(&p, "NEG1");
    p.d.cpu_code = NULL;
    p.d.cpu_code_bytes = 0;
    p.d.nsteps = 2;
    p.steps[0] = p.steps[1];
    p.steps[1] = p.steps[2];
    ASSERT_EQ(write_bundle(&p.d, "plug_threads.moss", &bytes, &n, path, sizeof path), MOSS_OK);
    memset(&o, 0, sizeof o);
    o.plugin_dir = OUT "/plug_good";
    ASSERT_EQ(mossrt_open_memory_ex(bytes, n, &o, &b, &err), MOSSRT_OK);
    ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_OK);
    ASSERT_EQ(mossrt_session_set_threads(s, 4, &err), MOSSRT_OK);
    ASSERT_EQ(mossrt_session_threads(s), 1);
    mossrt_session_destroy(s);
    mossrt_close(b);
    free(bytes);
  }
}

/* From memory (the caller's copy freed at once), with the caller's arena;
 * two bundles open at once do not share their CPU code. */
TEST(run_from_memory_caller_arena) {
  mossrt_bundle *b, *b2;
  mossrt_session *s, *s2;
  mossrt_error err;
  _Alignas(64) uint8_t arena[192];
  float a[4] = {1, 2, 3, 4}, bb[4] = {10, 20, 30, 40}, y[4] = {0}, t[4];
  const void *in[2] = {a, bb};
  void *out[1] = {y};
  uint8_t *copy;
  ASSERT_TRUE(load_add());
  copy = copy_add();
  ASSERT_EQ(mossrt_open_memory(copy, g_add_n, &b, &err), MOSSRT_OK);
  memset(copy, 0, g_add_n);
  free(copy);
  ASSERT_EQ(mossrt_open_memory(g_add, g_add_n, &b2, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_session_create(b, arena + 1, 180, &s, &err), MOSSRT_E_ARG);
  ASSERT_STR_CONTAINS(err.text, "<memory>: internal: arena of 180 bytes");
  ASSERT_EQ(mossrt_session_create(b, arena, 127, &s, &err), MOSSRT_E_ARG);
  ASSERT_EQ(mossrt_session_create(b, arena, sizeof arena, &s, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_session_create(b2, NULL, 0, &s2, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
  ASSERT_NEAR(y[3], 88, 0);
  /* The scratch tensor t = a + b lies in the caller's arena at offset 64. */
  memcpy(t, arena + 64, sizeof t);
  ASSERT_NEAR(t[0], 11, 0);
  ASSERT_NEAR(t[3], 44, 0);
  memset(y, 0, sizeof y);
  ASSERT_EQ(mossrt_run(s2, in, out, &err), MOSSRT_OK);
  ASSERT_NEAR(y[0], 22, 0);
  mossrt_session_destroy(s);
  mossrt_session_destroy(s2);
  mossrt_close(b);
  mossrt_close(b2);
}

/* A counting allocator that can fail its |fail_at|-th allocation. */
typedef struct counter {
  long allocs, frees, live_bytes, fail_at;
} counter;

static void *count_realloc(void *user, void *ptr, size_t old_size, size_t new_size) {
  counter *c = user;
  if (new_size == 0) {
    c->frees++;
    c->live_bytes -= (long)old_size;
    free(ptr);
    return NULL;
  }
  c->allocs++;
  if (c->fail_at && c->allocs == c->fail_at) return NULL;
  ptr = realloc(ptr, new_size);
  if (ptr) c->live_bytes += (long)new_size - (long)old_size;
  return ptr;
}

/* The add bundle opened, and a session made on it, through the counting
 * allocator |c| (|o| keeps the options). */
static mossrt_status open_counted(counter *c, mossrt_options *o, mossrt_bundle **b, mossrt_session **s,
                                  mossrt_error *err) {
  mossrt_status st;
  if (!load_add()) return MOSSRT_E_IO;
  memset(o, 0, sizeof *o);
  o->alloc.fn = count_realloc;
  o->alloc.user = c;
  st = mossrt_open_memory_ex(g_add, g_add_n, o, b, err);
  return st == MOSSRT_OK ? mossrt_session_create(*b, NULL, 0, s, err) : st;
}

TEST(run_allocates_nothing) {
  counter c = {0, 0, 0, 0};
  mossrt_options o;
  mossrt_bundle *b;
  mossrt_session *s;
  mossrt_error err;
  float a[4] = {1, 2, 3, 4}, bb[4] = {10, 20, 30, 40}, y[4];
  const void *in[2] = {a, bb};
  void *out[1] = {y};
  long before;
  int i;
  ASSERT_EQ(open_counted(&c, &o, &b, &s, &err), MOSSRT_OK);
  ASSERT_TRUE(c.allocs > 0); /* open and session did go through the allocator */
  before = c.allocs + c.frees;
  for (i = 0; i < 100; i++) ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
  ASSERT_EQ(c.allocs + c.frees, before);
  ASSERT_NEAR(y[1], 44, 0);
  mossrt_session_destroy(s);
  mossrt_close(b);
  ASSERT_EQ(c.live_bytes, 0);
  ASSERT_EQ(c.allocs, c.frees);
}

/* Streaming state (mossrt_session_keep_state): the add bundle's y = 2 (a +
 * b) with b kept, fed by y: b starts as zeros, so y = 2a, then 2 (a + 2a);
 * set_state restarts; the errors; no allocation in run; and every
 * allocation of keep_state failed in turn leaks nothing. */
TEST(streaming_state) {
  counter c = {0, 0, 0, 0};
  mossrt_options o;
  mossrt_bundle *b;
  mossrt_session *s;
  mossrt_error err;
  float a[4] = {1, 2, 3, 4}, y[4], st[4], seven[4] = {7, 7, 7, 7};
  const void *in[2] = {a, NULL};
  void *out[1] = {y};
  long before, k;
  ASSERT_EQ(open_counted(&c, &o, &b, &s, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_session_set_state(s, 1, NULL, &err), MOSSRT_E_ARG);
  ASSERT_STR_CONTAINS(err.text, "input 1 is not kept");
  ASSERT_EQ(mossrt_session_keep_state(s, 2, 0, &err), MOSSRT_E_ARG);
  ASSERT_STR_CONTAINS(err.text, "out of range");
  ASSERT_EQ(mossrt_session_keep_state(s, 1, 1, &err), MOSSRT_E_ARG);
  ASSERT_EQ(mossrt_session_keep_state(s, 1, 0, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_session_keep_state(s, 1, 0, &err), MOSSRT_E_ARG);
  ASSERT_STR_CONTAINS(err.text, "input 1 ('b') is kept already");
  before = c.allocs + c.frees;
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
  ASSERT_NEAR(y[3], 8, 0);
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
  ASSERT_NEAR(y[0], 6, 0);
  ASSERT_NEAR(y[3], 24, 0);
  ASSERT_EQ(mossrt_session_get_state(s, 1, st, &err), MOSSRT_OK);
  ASSERT_NEAR(st[2], 18, 0);
  out[0] = NULL; /* the state alone */
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_session_get_state(s, 1, st, &err), MOSSRT_OK);
  ASSERT_NEAR(st[3], 2 * (4 + 24), 0);
  ASSERT_EQ(mossrt_session_set_state(s, 1, seven, &err), MOSSRT_OK);
  out[0] = y;
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
  ASSERT_NEAR(y[0], 16, 0);
  ASSERT_EQ(mossrt_session_set_state(s, 1, NULL, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
  ASSERT_NEAR(y[1], 4, 0);
  ASSERT_EQ(c.allocs + c.frees, before); /* runs and states allocate nothing */
  in[0] = NULL; /* only the kept input may be NULL */
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_E_ARG);
  ASSERT_STR_CONTAINS(err.text, "input 0 ('a') is NULL");
  mossrt_session_destroy(s);
  mossrt_close(b);
  ASSERT_EQ(c.live_bytes, 0);
  for (k = 1; k < 100; k++) {
    counter f = {0, 0, 0, 0};
    mossrt_status r;
    o.alloc.user = &f;
    ASSERT_EQ(mossrt_open_memory_ex(g_add, g_add_n, &o, &b, &err), MOSSRT_OK);
    ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_OK);
    f.fail_at = f.allocs + k;
    r = mossrt_session_keep_state(s, 1, 0, &err);
    f.fail_at = 0;
    if (r == MOSSRT_OK) ASSERT_EQ(mossrt_session_keep_state(s, 0, 0, &err), MOSSRT_OK);
    else ASSERT_EQ(r, MOSSRT_E_NOMEM);
    mossrt_session_destroy(s);
    mossrt_close(b);
    ASSERT_EQ(f.live_bytes, 0);
    if (r == MOSSRT_OK) break;
  }
  ASSERT_TRUE(k > 1 && k < 100);
}

/* Every allocation of open and session creation fails in turn: each gives
 * out-of-memory with a message and leaks nothing. */
static void alloc_failures(int *failed_, const uint8_t *bytes, size_t n, const char *plugin_dir) {
  long k;
  for (k = 1; k < 1000; k++) {
    counter c = {0, 0, 0, k};
    mossrt_options o;
    mossrt_bundle *b = NULL;
    mossrt_session *s = NULL;
    mossrt_error err;
    mossrt_status st;
    memset(&o, 0, sizeof o);
    o.alloc.fn = count_realloc;
    o.alloc.user = &c;
    o.plugin_dir = plugin_dir;
    st = mossrt_open_memory_ex(bytes, n, &o, &b, &err);
    if (st == MOSSRT_OK) st = mossrt_session_create(b, NULL, 0, &s, &err);
    mossrt_session_destroy(s);
    mossrt_close(b);
    if (c.live_bytes != 0) FAIL_("allocation %ld failing: %ld bytes leaked", k, c.live_bytes);
    if (st == MOSSRT_OK) {
      if (c.allocs >= k) FAIL_("allocation %ld failed but open and session succeeded", k);
      return; /* every allocation has been failed once */
    }
    if (st != MOSSRT_E_NOMEM) FAIL_("allocation %ld failing: status %d (%s)", k, st, err.text);
    ASSERT_STR_CONTAINS(err.text, "<memory>: out-of-memory: ");
  }
  FAIL_("still failing after 1000 allocations");
}

TEST(allocation_failures) {
  plug_desc p;
  uint8_t *bytes;
  size_t n;
  char path[1024];
  ASSERT_TRUE(load_add());
  alloc_failures(failed_, g_add, g_add_n, NULL);
  if (*failed_) return;
  plug_init(&p, "NEG1");
  ASSERT_EQ(write_bundle(&p.d, "plug_alloc.moss", &bytes, &n, path, sizeof path), MOSS_OK);
  alloc_failures(failed_, bytes, n, OUT "/plug_good");
  free(bytes);
}

TEST(io_errors) {
  mossrt_bundle *b = (mossrt_bundle *)1;
  mossrt_error err;
  ASSERT_EQ(mossrt_open_file(OUT "/no-such.moss", &b, &err), MOSSRT_E_IO);
  ASSERT_TRUE(b == NULL);
  ASSERT_STR_CONTAINS(err.text, OUT "/no-such.moss: io: cannot open: ");
  ASSERT_EQ(mossrt_open_file(OUT, &b, &err), MOSSRT_E_IO);
  ASSERT_EQ(mossrt_open_memory(NULL, 5, &b, &err), MOSSRT_E_ARG);
}

/* Every prefix of a good bundle fails cleanly and says "truncated". */
TEST(every_truncation) {
  size_t n;
  mossrt_error err;
  char want[1400];
  ASSERT_TRUE(load_add());
  for (n = 0; n < g_add_n; n++) {
    uint8_t *p = malloc(n ? n : 1);
    mossrt_status st;
    memcpy(p, g_add, n);
    st = try_open(p, n, 0, &err);
    free(p);
    if (st != MOSSRT_E_FORMAT || !strstr(err.text, "invalid-model: truncated: file is "))
      FAIL_("truncated to %zu bytes: status %d, '%s'", n, st, err.text);
  }
  /* The exact message, past the header and from a file. */
  snprintf(want, sizeof want, "<memory>: invalid-model: truncated: file is 900 bytes, header says %zu",
           g_add_n);
  EXPECT_OPEN(g_add, 900, MOSSRT_E_FORMAT, want);
  EXPECT_OPEN(g_add, 100, MOSSRT_E_FORMAT, "truncated: file is 100 bytes, a bundle header is 320");
  {
    FILE *f = fopen(OUT "/truncated.moss", "wb");
    mossrt_bundle *b;
    ASSERT_TRUE(f != NULL);
    fwrite(g_add, 1, 900, f);
    fclose(f);
    ASSERT_EQ(mossrt_open_file(OUT "/truncated.moss", &b, &err), MOSSRT_E_FORMAT);
    snprintf(want, sizeof want, "%s/truncated.moss: invalid-model: truncated: file is 900 bytes, "
             "header says %zu", OUT, g_add_n);
    ASSERT_TRUE(strcmp(err.text, want) == 0);
  }
  /* A longer file than the header says is refused too. */
  {
    uint8_t *p = malloc(g_add_n + 64);
    memcpy(p, g_add, g_add_n);
    memset(p + g_add_n, 0, 64);
    snprintf(want, sizeof want, "file is %zu bytes, header says %zu", g_add_n + 64, g_add_n);
    EXPECT_OPEN(p, g_add_n + 64, MOSSRT_E_FORMAT, want);
    free(p);
  }
}

TEST(header_errors) {
  uint8_t *c;
  ASSERT_TRUE(load_add());
  c = copy_add();
  c[3] = 'X';
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "<memory>: invalid-model: not a moss bundle (bad magic)");
  free(c);
  c = copy_add();
  hdr(c)->version = 7;
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_VERSION,
              "<memory>: unsupported: format version 7, this runtime reads 3");
  free(c);
  c = copy_add();
  hdr(c)->target[0] ^= 1;
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "invalid-model: header checksum mismatch");
  free(c);
  c = copy_add(); /* a table entry is covered by the header checksum */
  sect(c, 2)->param = 1;
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "header checksum mismatch");
  free(c);
  c = copy_add();
  hdr(c)->section_count = 5000;
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "section count 5000, expected 1 to 4096");
  free(c);
  c = copy_add();
  hdr(c)->section_table_offset = g_add_n - 64;
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "section table at offset");
  free(c);
  c = copy_add();
  memset(hdr(c)->target, 'x', sizeof hdr(c)->target);
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "not NUL-terminated");
  free(c);
}

TEST(section_checksums) {
  static const char *const names[] = {"strings", "meta", "devices", "plan", "code", "report"};
  char want[1400];
  uint32_t i;
  ASSERT_TRUE(load_add());
  for (i = 0; i < 6; i++) {
    uint8_t *c = copy_add();
    payload_of(c, i)[sect(c, i)->size / 2] ^= 0x40;
    snprintf(want, sizeof want, "<memory>: invalid-model: section %u (%s): checksum mismatch", i,
             names[i]);
    EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, want);
    free(c);
  }
}

TEST(section_layout_errors) {
  uint8_t *c;
  char want[160];
  ASSERT_TRUE(load_add());
  /* Offset past the end. */
  c = copy_add();
  sect(c, 3)->offset = g_add_n + 64;
  fix_crcs(c, g_add_n);
  snprintf(want, sizeof want, "section 3 (plan): offset %zu + size %llu is past the end of the "
           "file (%zu bytes)", g_add_n + 64, (unsigned long long)sect(c, 3)->size, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, want);
  free(c);
  /* Size past the end. */
  c = copy_add();
  sect(c, 4)->size = g_add_n;
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "section 4 (code): offset");
  free(c);
  /* Overlapping: devices moved onto meta (checksums fixed up). */
  c = copy_add();
  sect(c, 2)->offset = sect(c, 1)->offset;
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "section 2 (devices) overlaps section 1 (meta)");
  free(c);
  /* Over the section table. */
  c = copy_add();
  sect(c, 0)->offset = 0;
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT,
              "section 0 (strings): offset 0 overlaps the header or section table");
  free(c);
  /* Misaligned. */
  c = copy_add();
  sect(c, 3)->offset += 8;
  fix_crcs(c, g_add_n);
  snprintf(want, sizeof want, "section 3 (plan): offset %llu is not 64-byte aligned",
           (unsigned long long)sect(c, 3)->offset);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, want);
  free(c);
  c = copy_add();
  sect(c, 3)->align = 16;
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "section 3 (plan): alignment 16, expected 64");
  free(c);
  /* Unknown kind, duplicate kind, missing kind. */
  c = copy_add();
  sect(c, 5)->kind = 42;
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "section 5: unknown kind 42");
  free(c);
  c = copy_add();
  sect(c, 5)->kind = MOSS_BUNDLE_SEC_META;
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "section 5 (meta): a second meta section");
  free(c);
  c = copy_add();
  sect(c, 3)->kind = MOSS_BUNDLE_SEC_REPORT;
  sect(c, 5)->kind = MOSS_BUNDLE_SEC_BLOB;
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "no plan section");
  free(c);
}

/* Record surgery inside META and PLAN, checksums fixed up each time. */
static moss_bundle_tensor_rec *tensor_rec(uint8_t *c, uint32_t i) {
  return (moss_bundle_tensor_rec *)(void *)(payload_of(c, 1) + sizeof(moss_bundle_meta)) + i;
}
static moss_bundle_step_rec *step_rec(uint8_t *c, uint32_t i) {
  return (moss_bundle_step_rec *)(void *)(payload_of(c, 3) + sizeof(moss_bundle_plan)) + i;
}
static uint32_t *plan_refs(uint8_t *c) {
  moss_bundle_plan *p = (moss_bundle_plan *)(void *)payload_of(c, 3);
  return (uint32_t *)(void *)((uint8_t *)(p + 1) + p->count * sizeof(moss_bundle_step_rec));
}

TEST(content_errors) {
  uint8_t *c;
  ASSERT_TRUE(load_add());
  /* t (tensor 2, 16 bytes) moved to the end of the 128-byte arena. */
  c = copy_add();
  tensor_rec(c, 2)->offset = 128;
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT,
              "tensor 2 ('t'): arena offset 128 + 16 bytes is outside the arena (128 bytes)");
  free(c);
  c = copy_add();
  tensor_rec(c, 2)->offset = 32; /* inside, but not 64-aligned */
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "tensor 2 ('t'): arena offset 32");
  free(c);
  c = copy_add();
  tensor_rec(c, 2)->offset = UINT64_MAX - 7; /* would wrap around */
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "tensor 2 ('t'): arena offset");
  free(c);
  c = copy_add();
  tensor_rec(c, 0)->dims[0] = 5; /* 5 floats are 20 bytes, not 16 */
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "tensor 0 ('a'): nbytes 16, its dtype and dims give 20");
  free(c);
  c = copy_add();
  tensor_rec(c, 1)->name.len = 4000; /* past the string table */
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "tensor 1: name: bad string reference");
  free(c);
  c = copy_add();
  tensor_rec(c, 1)->name.len = 0; /* "b" is followed by a NUL only after 1 byte */
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "tensor 1: name: bad string reference");
  free(c);
  c = copy_add();
  tensor_rec(c, 1)->index = 0; /* claims to be input 0, which is tensor 0 */
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "tensor 1 ('b'): input index 0 is not graph input 0's");
  free(c);
  c = copy_add();
  ((moss_bundle_meta *)(void *)payload_of(c, 1))->arena_bytes = (uint64_t)1 << 50;
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "arena of 1125899906842624 bytes is beyond the limit");
  free(c);
  c = copy_add();
  ((moss_bundle_meta *)(void *)payload_of(c, 1))->ntensors = 5;
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "section 1 (meta): ");
  free(c);
  /* Steps: a bad tensor index, a bad device index, a bad ref range, kind. */
  c = copy_add();
  plan_refs(c)[0] = 99;
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "step 0: input 0: tensor index 99, there are 4 tensors");
  free(c);
  c = copy_add();
  step_rec(c, 1)->device = 5;
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "step 1: device index 5, there are 1 devices");
  free(c);
  c = copy_add();
  step_rec(c, 1)->first = UINT32_MAX;
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "step 1: tensors 4294967295..");
  free(c);
  c = copy_add();
  step_rec(c, 0)->kind = 9;
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "step 0: unknown kind 9");
  free(c);
  /* The CPU code is not an ELF file. */
  c = copy_add();
  payload_of(c, 4)[1] = 'X';
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "section 4 (code): device 0 ('cpu') has no ELF shared object");
  free(c);
  c = copy_add();
  payload_of(c, 5)[sect(c, 5)->size - 1] = '}';
  fix_crcs(c, g_add_n);
  EXPECT_OPEN(c, g_add_n, MOSSRT_E_FORMAT, "section 5 (report): not NUL-terminated");
  free(c);
}

TEST(entries_and_target) {
  add_desc a;
  uint8_t *bytes;
  size_t n;
  char path[1024], want[1400];
  static const char *const candidates[] = {"fma4", "xop", "sse4a", "avx512vp2intersect",
                                           "avx512vnni"};
  const char *missing = NULL;
  size_t i;
  ASSERT_TRUE(load_add());
  add_init(&a);
  a.steps[1].entry = "no_such_fn";
  ASSERT_EQ(write_bundle(&a.d, "noentry.moss", &bytes, &n, path, sizeof path), MOSS_OK);
  EXPECT_OPEN(bytes, n, MOSSRT_E_DEVICE,
              "<memory>: target: step 1: entry 'no_such_fn' not found in the CPU code");
  free(bytes);
  /* A failing entry fails the run. */
  add_init(&a);
  a.steps[1].entry = "moss_fail";
  ASSERT_TRUE(code_for(&a.d, "cpu_fail.so"));
  ASSERT_EQ(write_bundle(&a.d, "fail.moss", NULL, NULL, path, sizeof path), MOSS_OK);
  {
    mossrt_bundle *b;
    mossrt_session *s;
    mossrt_error err;
    float x[4] = {0}, y[4];
    const void *in[2] = {x, x};
    void *out[1] = {y};
    ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_OK);
    ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_OK);
    ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_E_DEVICE);
    snprintf(want, sizeof want, "%s: target: step 1: 'moss_fail' on device 'cpu' failed (7)", path);
    ASSERT_TRUE(strcmp(err.text, want) == 0);
    mossrt_session_destroy(s);
    mossrt_close(b);
  }
#if defined(__x86_64__)
  add_init(&a);
  a.d.triple = "aarch64-linux-gnu";
  ASSERT_EQ(write_bundle(&a.d, "arm.moss", &bytes, &n, path, sizeof path), MOSS_OK);
  EXPECT_OPEN(bytes, n, MOSSRT_E_TARGET,
              "<memory>: target: bundle is for aarch64-linux-gnu, this runtime runs on x86_64");
  free(bytes);
  add_init(&a);
  a.d.triple = "amd64-unknown-freebsd"; /* an alias of x86_64 */
  a.d.features = "+sse2,sse,-avx512f";  /* present, present, excluded */
  ASSERT_EQ(write_bundle(&a.d, "feat_ok.moss", &bytes, &n, path, sizeof path), MOSS_OK);
  EXPECT_OPEN(bytes, n, MOSSRT_OK, "");
  free(bytes);
  /* A feature this CPU lacks: asked of the compiler's builtin directly. */
  __builtin_cpu_init();
  for (i = 0; i < sizeof candidates / sizeof candidates[0] && !missing; i++) {
    int has = i == 0   ? __builtin_cpu_supports("fma4")
              : i == 1 ? __builtin_cpu_supports("xop")
              : i == 2 ? __builtin_cpu_supports("sse4a")
              : i == 3 ? __builtin_cpu_supports("avx512vp2intersect")
                       : __builtin_cpu_supports("avx512vnni");
    if (!has) missing = candidates[i];
  }
  if (missing) {
    char feats[64];
    add_init(&a);
    snprintf(feats, sizeof feats, "+sse2,+%s", missing);
    a.d.features = feats;
    ASSERT_EQ(write_bundle(&a.d, "feat_missing.moss", &bytes, &n, path, sizeof path), MOSS_OK);
    snprintf(want, sizeof want, "<memory>: target: needs CPU feature %s, which this CPU lacks",
             missing);
    EXPECT_OPEN(bytes, n, MOSSRT_E_TARGET, want);
    free(bytes);
  } else {
    printf("  (this CPU has every candidate feature: the missing-feature case is not run)\n");
  }
  add_init(&a);
  a.d.features = "avx2,warp-drive";
  ASSERT_EQ(write_bundle(&a.d, "feat_unknown.moss", &bytes, &n, path, sizeof path), MOSS_OK);
  EXPECT_OPEN(bytes, n, MOSSRT_E_TARGET, "needs CPU feature warp-drive, which this runtime cannot");
  free(bytes);
#endif
}

TEST(writer_rejects_bad_descriptions) {
  add_desc a;
  char path[1024];
  moss_ctx ctx;
  ASSERT_TRUE(setup());
  moss_ctx_init(&ctx, moss_allocator_libc());
  snprintf(path, sizeof path, "%s/never.moss", OUT);
  add_init(&a);
  a.tensors[2].offset = 120;
  ASSERT_EQ(moss_bundle_write(&ctx, &a.d, path), MOSS_E_INTERNAL);
  ASSERT_STR_CONTAINS(ctx.last, "internal: bundle: tensors[2] ('t'): arena offset 120");
  add_init(&a);
  a.steps[0].device = 3;
  ASSERT_EQ(moss_bundle_write(&ctx, &a.d, path), MOSS_E_INTERNAL);
  ASSERT_STR_CONTAINS(ctx.last, "steps[0].device = 3");
  add_init(&a);
  a.inputs[1] = 0;
  ASSERT_EQ(moss_bundle_write(&ctx, &a.d, path), MOSS_E_INTERNAL);
  add_init(&a);
  a.tensors[3].nbytes = 8;
  ASSERT_EQ(moss_bundle_write(&ctx, &a.d, path), MOSS_E_INTERNAL);
  ASSERT_STR_CONTAINS(ctx.last, "tensors[3] ('y'): nbytes 8, dtype and dims give 16");
  add_init(&a);
  a.d.cpu_code = NULL;
  a.d.cpu_code_bytes = 0;
  ASSERT_EQ(moss_bundle_write(&ctx, &a.d, path), MOSS_E_INTERNAL);
  ASSERT_STR_CONTAINS(ctx.last, "steps[0]: entry 'moss_add' but no cpu_code");
  {
    FILE *f = fopen(path, "rb");
    ASSERT_TRUE(f == NULL); /* nothing was written */
  }
}

TEST(plugin_device) {
  plug_desc p;
  char path[1024];
  mossrt_options o;
  mossrt_bundle *b;
  mossrt_session *s;
  mossrt_error err;
  _Alignas(64) float x[4] = {1, 2, 3, 4}, y[4] = {0};
  const void *in[1] = {x};
  void *out[1] = {y};
  void *h;
  int *live;
  ASSERT_TRUE(setup());
  plug_init(&p, "NEG1");
  ASSERT_EQ(write_bundle(&p.d, "plug.moss", NULL, NULL, path, sizeof path), MOSS_OK);
  /* The recorded path does not exist: a clear error naming it. */
  unsetenv("MOSS_PLUGIN_PATH");
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, ": target: plugin 'neg' (/nonexistent/libneg.so): ");
  /* Found through the caller's folder. */
  memset(&o, 0, sizeof o);
  o.plugin_dir = OUT "/plug_good";
  ASSERT_EQ(mossrt_open_file_ex(path, &o, &b, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_OK);
  h = dlopen(OUT "/plug_good/libneg.so", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_TRUE(h != NULL);
  live = dlsym(h, "neg_live");
  ASSERT_TRUE(live && *live == 2); /* one device open, one blob loaded */
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
  ASSERT_NEAR(y[0], -2, 0);
  ASSERT_NEAR(y[1], -3, 0);
  ASSERT_NEAR(y[2], -4, 0);
  ASSERT_NEAR(y[3], -5, 0);
  { /* the plugin's counters of its step (2), none for the CPU's steps */
    mossrt_counters c[2];
    uint32_t n = 9, k;
    for (k = 0; k < mossrt_step_count(b); k++) {
      ASSERT_EQ(mossrt_step_counters(s, k, c, 2, &n, &err), MOSSRT_OK);
      ASSERT_EQ(n, k == 2 ? 1u : 0u);
    }
    ASSERT_EQ(mossrt_step_counters(s, 2, c, 2, &n, &err), MOSSRT_OK);
    ASSERT_TRUE(!strcmp(c[0].layer, "neg_layer") && !strcmp(c[0].op_type, "Neg"));
    ASSERT_TRUE(c[0].cycles == 40 && c[0].dma_cycles == 12 && c[0].vector_cycles == 30 &&
                c[0].stall_cycles == 2 && c[0].dram_read_bytes == 16 &&
                c[0].dram_write_bytes == 16 && c[0].sram_peak_bytes == 32);
    ASSERT_NEAR(c[0].clock_mhz, 100.0, 0);
    ASSERT_NEAR(c[0].energy_pj, 3.5, 0);
    ASSERT_EQ(mossrt_step_counters(s, 2, NULL, 0, &n, &err), MOSSRT_OK); /* count only */
    ASSERT_EQ(n, 1u);
    ASSERT_EQ(mossrt_step_counters(s, mossrt_step_count(b), c, 2, &n, &err), MOSSRT_E_ARG);
    ASSERT_EQ(mossrt_step_counters(NULL, 0, c, 2, &n, &err), MOSSRT_E_ARG);
  }
  /* run() failing: x[0] + 1 > 500. */
  x[0] = 600;
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "target: plugin 'neg' (/nonexistent/libneg.so): step 2: run() "
                                "failed: overheated");
  mossrt_session_destroy(s);
  ASSERT_EQ(*live, 0); /* unloaded and closed */
  dlclose(h);
  /* open() failing. */
  setenv("NEG_FAIL_OPEN", "1", 1);
  ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "plugin 'neg' (/nonexistent/libneg.so): open() failed: no such "
                                "device");
  unsetenv("NEG_FAIL_OPEN");
  mossrt_close(b);
  /* Found through MOSS_PLUGIN_PATH. */
  setenv("MOSS_PLUGIN_PATH", "/nonexistent-dir:" OUT "/plug_good", 1);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_OK);
  mossrt_close(b);
  unsetenv("MOSS_PLUGIN_PATH");
  /* Wrong ABI version, missing symbol. */
  o.plugin_dir = OUT "/plug_abi2";
  ASSERT_EQ(mossrt_open_file_ex(path, &o, &b, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "plugin 'neg' (/nonexistent/libneg.so): plugin ABI version 3, "
                                "this runtime speaks 2");
  o.plugin_dir = OUT "/plug_nosym";
  ASSERT_EQ(mossrt_open_file_ex(path, &o, &b, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "plugin 'neg' (/nonexistent/libneg.so): missing symbol "
                                "moss_plugin_device_get");
  /* load() failing on a blob the device does not accept. */
  plug_init(&p, "NEG2");
  ASSERT_EQ(write_bundle(&p.d, "plug_badblob.moss", NULL, NULL, path, sizeof path), MOSS_OK);
  o.plugin_dir = OUT "/plug_good";
  ASSERT_EQ(mossrt_open_file_ex(path, &o, &b, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "plugin 'neg' (/nonexistent/libneg.so): load() of blob 0 failed: "
                                "bad blob");
  mossrt_close(b);
  /* An EXEC on a backend this runtime has no executor for. */
  plug_init(&p, "NEG1");
  p.devices[1].backend = "metal";
  p.devices[1].runs_blobs = 0;
  p.d.nblobs = 0;
  p.d.nsteps = 2;
  p.steps[1] = (moss_bundle_step){MOSS_BUNDLE_STEP_EXEC, 1, 0, NULL, 0, 1, 1, p_step2_in,
                                  p_step2_out};
  ASSERT_EQ(write_bundle(&p.d, "opencl.moss", NULL, NULL, path, sizeof path), MOSS_OK);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "step 1: device 1 ('npu') has backend 'metal', which this "
                                "runtime cannot run");
}

/* A GPU segment blob (moss_bundle.h, "OpenCL segment blob"; the PTX one
 * shares its layout) with |magic| and |version| for the plugin bundle's
 * step 2 (one input, one output, 16 bytes each) in |buf|: |nk| kernels of
 * |items| work-items, |src| as source (an OpenCL blob's code: its length
 * as a u64, |src|, zeros to 4 bytes, and no SPIR-V); its length. */
static size_t gpu_blob(uint8_t *buf, const char *magic, uint32_t version, uint32_t nk, uint64_t items,
                       uint64_t tbytes, const char *src) {
  moss_opencl_blob_header h;
  size_t n = 0;
  uint64_t v, tl = strlen(src);
  uint32_t k;
  if (!memcmp(magic, MOSS_OPENCL_BLOB_MAGIC, 4)) {
    size_t m = gpu_blob(buf, "TEMP", version, nk, items, tbytes, src), at = m - tl, pad = (4 - (8 + tl) % 4) % 4;
    memcpy(buf, magic, 4);
    memmove(buf + at + 8, buf + at, tl);
    memcpy(buf + at, &tl, 8);
    memset(buf + at + 8 + tl, 0, pad);
    tl += 8 + pad;
    memcpy(buf + offsetof(moss_opencl_blob_header, source_len), &tl, 8);
    return at + tl;
  }
  memcpy(h.magic, magic, 4);
  h.version = version;
  h.ntensors = 2;
  h.nkernels = nk;
  h.arena_bytes = 64;
  h.weights_bytes = 0;
  h.source_len = strlen(src);
  memcpy(buf, &h, sizeof h);
  n = sizeof h;
  for (k = 0; k < 2; k++, n += 8) memcpy(buf + n, &tbytes, 8);
  for (k = 0, v = items; k < nk; k++, n += 8) memcpy(buf + n, &v, 8);
  memcpy(buf + n, src, strlen(src));
  return n + strlen(src);
}

/* A GPU executor reads every field of its blobs before it loads anything,
 * and names what is wrong (each message starting "|prefix|: "); without
 * its driver (the file the variable |libenv| names) it says so: |nolib|. */
static void gpu_blob_checks(int *failed_, const char *backend, const char *magic, uint32_t version,
                            const char *prefix, const char *kind, const char *src, const char *libenv,
                            const char *nolib) {
  const struct {
    const char *what;
    uint32_t nk;
    uint64_t items, tbytes;
    int cut, magic;
  } cases[] = {
      {"shorter than its header", 1, 1, 16, 30, 0},
      {kind, 1, 1, 16, 0, 1},
      {"are not the rest of it", 1, 1, 16, 3, 0},
      {"kernel 0 has 0 work-items", 1, 0, 16, 0, 0},
      {"tensor 0 is 16 bytes, its blob says 8", 1, 1, 8, 0, 0},
      {"2 tensors and 0 kernels do not fit", 0, 1, 16, 0, 0},
  };
  plug_desc p;
  char path[1024];
  uint8_t buf[512];
  mossrt_bundle *b = NULL;
  mossrt_error err;
  size_t i, n;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    plug_init(&p, "");
    p.devices[1].backend = backend;
    p.devices[1].runs_blobs = 1;
    p.devices[1].plugin_path = NULL;
    n = gpu_blob(buf, magic, version, cases[i].nk, cases[i].items, cases[i].tbytes, src);
    if (cases[i].cut) n = cases[i].cut >= 10 ? (size_t)cases[i].cut : n - (size_t)cases[i].cut;
    if (cases[i].magic) buf[0] = 'X';
    p.blobs[0] = buf;
    p.blob_bytes[0] = n;
    ASSERT_EQ(write_bundle(&p.d, "gpu_bad.moss", NULL, NULL, path, sizeof path), MOSS_OK);
    ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_E_FORMAT);
    ASSERT_STR_CONTAINS(err.text, prefix);
    ASSERT_STR_CONTAINS(err.text, cases[i].what);
  }
  /* A well-formed blob, and no driver where |libenv| points. */
  plug_init(&p, "");
  p.devices[1].backend = backend;
  p.devices[1].runs_blobs = 1;
  p.devices[1].plugin_path = NULL;
  p.blobs[0] = buf;
  p.blob_bytes[0] = gpu_blob(buf, magic, version, 1, 4, 16, src);
  ASSERT_EQ(write_bundle(&p.d, "gpu_good.moss", NULL, NULL, path, sizeof path), MOSS_OK);
  setenv(libenv, "/nonexistent/libdriver.so.1", 1);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, nolib);
  ASSERT_STR_CONTAINS(err.text, "/nonexistent/libdriver.so.1");
  unsetenv(libenv);
}

/* A plugin library recorded by file name, as moss writes it, is looked for
 * in the caller's plugin_dir, then MOSS_PLUGIN_PATH, then the folder of a
 * bundle opened from its file (runtime/README.md "Plugin libraries"). The
 * copy beside the bundle is built for ABI 3, so its refusal tells which
 * copy was taken. Nowhere: the message lists where it looked and what to
 * set. A path recorded by an older moss: its file name first, then the
 * path itself. */
TEST(plugin_search_order) {
  plug_desc p;
  char path[1024];
  mossrt_options o;
  mossrt_bundle *b;
  mossrt_error err;
  uint8_t *bytes;
  size_t n;
  ASSERT_TRUE(setup());
  unsetenv("MOSS_PLUGIN_PATH");
  memset(&o, 0, sizeof o);
  mkdir(OUT "/side", 0755);
  remove(OUT "/side/libneg.so");
  plug_init(&p, "NEG1");
  p.devices[1].plugin_path = "libneg.so";
  ASSERT_EQ(write_bundle(&p.d, "side/plug.moss", &bytes, &n, path, sizeof path), MOSS_OK);
  /* Nowhere. */
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "side/plug.moss: target: plugin 'neg' (libneg.so): not found (set "
                                "MOSS_PLUGIN_PATH or mossrt_options.plugin_dir to its folder); "
                                "looked in the system's library path and in: " OUT "/side, ");
  ASSERT_TRUE(strstr(err.text, ", then ") == NULL); /* no recorded path to try */
  setenv("MOSS_PLUGIN_PATH", "/nonexistent-b:/nonexistent-c", 1);
  o.plugin_dir = "/nonexistent-a";
  ASSERT_EQ(mossrt_open_memory_ex(bytes, n, &o, &b, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "<memory>: target: plugin 'neg' (libneg.so): not found");
  ASSERT_STR_CONTAINS(err.text, "and in: /nonexistent-a, /nonexistent-b, /nonexistent-c, ");
  ASSERT_TRUE(strstr(err.text, OUT "/side") == NULL); /* from memory: no bundle folder */
  /* Beside the bundle (the ABI 3 copy, refused) ... */
  unsetenv("MOSS_PLUGIN_PATH");
  ASSERT_TRUE(compile_so(plugin_src, "side/libneg.so", "-DABI=3"));
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "plugin 'neg' (libneg.so): plugin ABI version 3");
  /* ... but the caller's folder and MOSS_PLUGIN_PATH come first. */
  o.plugin_dir = OUT "/plug_good";
  ASSERT_EQ(mossrt_open_file_ex(path, &o, &b, &err), MOSSRT_OK);
  mossrt_close(b);
  setenv("MOSS_PLUGIN_PATH", "/nonexistent-b:" OUT "/plug_good", 1);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_OK);
  mossrt_close(b);
  unsetenv("MOSS_PLUGIN_PATH");
  /* From memory the bundle has no folder: the copy there is not taken. */
  ASSERT_EQ(mossrt_open_memory(bytes, n, &b, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "(libneg.so): not found");
  free(bytes);
  /* An older bundle's path: its file name is searched first ... */
  plug_init(&p, "NEG1");
  p.devices[1].plugin_path = OUT "/plug_good/libneg.so";
  ASSERT_EQ(write_bundle(&p.d, "side/old.moss", NULL, NULL, path, sizeof path), MOSS_OK);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_E_DEVICE); /* side/libneg.so, ABI 3 */
  ASSERT_STR_CONTAINS(err.text, "plugin ABI version 3");
  /* ... then the path itself. */
  ASSERT_EQ(remove(OUT "/side/libneg.so"), 0);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_OK);
  mossrt_close(b);
  p.devices[1].plugin_path = "/nonexistent/libneg.so";
  ASSERT_EQ(write_bundle(&p.d, "side/old.moss", NULL, NULL, path, sizeof path), MOSS_OK);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "looked in the system's library path, then /nonexistent/libneg.so "
                                "and in: ");
}

/* The OpenCL executor (runtime/src/opencl). */
TEST(opencl_blob_checks) {
  static const char src[] = "__kernel void moss_k0(__global uchar *a) {}";
  plug_desc p;
  char path[1024];
  uint8_t buf[512];
  mossrt_bundle *b = NULL;
  mossrt_error err;
  size_t n, at;
  int c;
  gpu_blob_checks(failed_, "opencl", MOSS_OPENCL_BLOB_MAGIC, MOSS_OPENCL_BLOB_VERSION, "opencl: ",
                  "not an OpenCL segment blob", src, "MOSS_OPENCL_LIBRARY",
                  "device 'npu': cannot load the OpenCL ICD loader");
  if (*failed_) return;
  /* Its code, the source and the SPIR-V (moss_bundle.h): a source longer
   * than the code; a SPIR-V module of 4 bytes; one without the magic. */
  for (c = 0; c < 3; c++) {
    plug_init(&p, "");
    p.devices[1].backend = "opencl";
    p.devices[1].plugin_path = NULL;
    n = gpu_blob(buf, MOSS_OPENCL_BLOB_MAGIC, MOSS_OPENCL_BLOB_VERSION, 1, 4, 16, src);
    at = sizeof(moss_opencl_blob_header) + 3 * 8; /* the code: after 2 tensors and 1 kernel */
    if (c == 0) {
      buf[at] = 45;
    } else {
      uint64_t sl = n - at + (c == 1 ? 4 : 20);
      memset(buf + n, 0, 20);
      if (c == 1) buf[n] = 0x03, buf[n + 1] = 0x02, buf[n + 2] = 0x23, buf[n + 3] = 0x07;
      memcpy(buf + offsetof(moss_opencl_blob_header, source_len), &sl, 8);
      n += c == 1 ? 4 : 20;
    }
    p.blobs[0] = buf;
    p.blob_bytes[0] = n;
    ASSERT_EQ(write_bundle(&p.d, "gpu_code.moss", NULL, NULL, path, sizeof path), MOSS_OK);
    ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_E_FORMAT);
    ASSERT_STR_CONTAINS(err.text, "opencl: blob 0: its code");
  }
}

/* The CUDA executor (runtime/src/cuda), on a "ptx" device. */
TEST(ptx_blob_checks) {
  gpu_blob_checks(failed_, "ptx", MOSS_PTX_BLOB_MAGIC, MOSS_PTX_BLOB_VERSION, "cuda: ", "not a PTX segment blob",
                  ".version 7.8\n.target sm_90\n.address_size 64\n", "MOSS_CUDA_LIBRARY",
                  "device 'npu': cannot load the CUDA driver");
  if (*failed_) return;
  /* No MOSS_CUDA_LIBRARY: the driver's own name, libcuda.so.1, which this
   * test needs to be absent (a machine without NVIDIA's driver). */
  {
    void *cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    plug_desc p;
    char path[1024];
    uint8_t buf[512];
    mossrt_bundle *b = NULL;
    mossrt_error err;
    if (cuda) {
      dlclose(cuda);
      return;
    }
    plug_init(&p, "");
    p.devices[1].backend = "ptx";
    p.devices[1].runs_blobs = 1;
    p.devices[1].plugin_path = NULL;
    p.blobs[0] = buf;
    p.blob_bytes[0] =
        gpu_blob(buf, MOSS_PTX_BLOB_MAGIC, MOSS_PTX_BLOB_VERSION, 1, 4, 16, ".version 7.8\n");
    ASSERT_EQ(write_bundle(&p.d, "ptx_nodriver.moss", NULL, NULL, path, sizeof path), MOSS_OK);
    unsetenv("MOSS_CUDA_LIBRARY");
    ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_E_DEVICE);
    ASSERT_STR_CONTAINS(err.text, "ptx_nodriver.moss: target: cuda: device 'npu': cannot load the "
                                  "CUDA driver libcuda.so.1 (libcuda.so.1: cannot open shared "
                                  "object file");
    ASSERT_TRUE(b == NULL);
  }
}

/* A fake CUDA driver, for the CUDA executor without a GPU: the entry points
 * runtime/src/cuda/cuda.c looks up, "device memory" in host memory, two
 * devices ("Fake A100", "Fake H200"). moss_k0 computes y = w[0] * t over 4
 * floats (t, y: the step's tensors, w: the weights), other kernels do
 * nothing; a t[0] above 500 makes the next cuStreamSynchronize fail with
 * CUDA_ERROR_ILLEGAL_ADDRESS, as a kernel's fault does. The entry point
 * FAKE_CUDA_FAIL names returns FAKE_CUDA_CODE (default 700). fake_live
 * counts what is held (buffers, modules, streams, retained contexts),
 * fake_pushed the contexts pushed and not popped, fake_bad the calls made
 * without the context current. -DNO_V2 leaves out
 * cuDevicePrimaryCtxRelease_v2 (a driver older than CUDA 11),
 * -DNO_LAUNCH cuLaunchKernel. */
static const char fake_cuda_src[] =
    "#include <stdint.h>\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "typedef int CUresult;\n"
    "typedef unsigned long long dptr;\n"
    "int fake_live, fake_pushed, fake_bad, fake_old_release, fake_ctx_dev = -1;\n"
    "unsigned fake_grid[4], fake_block[4];\n"
    "static int ctx, stream, fault;\n"
    "static int fail(const char *name) {\n"
    "  const char *f = getenv(\"FAKE_CUDA_FAIL\");\n"
    "  return f && !strcmp(f, name);\n"
    "}\n"
    "static CUresult code(void) {\n"
    "  const char *c = getenv(\"FAKE_CUDA_CODE\");\n"
    "  return c ? atoi(c) : 700;\n"
    "}\n"
    "#define FAIL(name) if (fail(name)) return code()\n"
    "#define CTX if (fake_pushed < 1) return fake_bad++, 201\n"
    "CUresult cuInit(unsigned f) { FAIL(\"cuInit\"); return f ? 1 : 0; }\n"
    "CUresult cuDeviceGetCount(int *n) { FAIL(\"cuDeviceGetCount\"); *n = 2; return 0; }\n"
    "CUresult cuDeviceGet(int *d, int k) {\n"
    "  FAIL(\"cuDeviceGet\"); if (k < 0 || k > 1) return 101; *d = k; return 0;\n"
    "}\n"
    "CUresult cuDeviceGetName(char *s, int cap, int d) {\n"
    "  snprintf(s, (size_t)cap, d ? \"Fake H200\" : \"Fake A100\"); return 0;\n"
    "}\n"
    "CUresult cuDevicePrimaryCtxRetain(void **c, int d) {\n"
    "  FAIL(\"cuDevicePrimaryCtxRetain\"); *c = &ctx; fake_ctx_dev = d; fake_live++; return 0;\n"
    "}\n"
    "#ifndef NO_V2\n"
    "CUresult cuDevicePrimaryCtxRelease_v2(int d) {\n"
    "  if (d != fake_ctx_dev) return 101; fake_live--; return 0;\n"
    "}\n"
    "#endif\n"
    "CUresult cuDevicePrimaryCtxRelease(int d) {\n"
    "  if (d != fake_ctx_dev) return 101; fake_live--; fake_old_release++; return 0;\n"
    "}\n"
    "CUresult cuCtxPushCurrent_v2(void *c) {\n"
    "  FAIL(\"cuCtxPushCurrent_v2\"); if (c != &ctx) return 201; fake_pushed++; return 0;\n"
    "}\n"
    "CUresult cuCtxPopCurrent_v2(void **c) {\n"
    "  CTX; fake_pushed--; if (c) *c = &ctx; return 0;\n"
    "}\n"
    "CUresult cuModuleLoadDataEx(void **m, const void *ptx, unsigned n, int *o, void **v) {\n"
    "  CTX; FAIL(\"cuModuleLoadDataEx\");\n"
    "  if (n != 2 || o[0] != 5 || o[1] != 6 || !v[0] || (uintptr_t)v[1] < 100) return 1;\n"
    "  if (strstr(ptx, \"BADPTX\")) {\n"
    "    snprintf(v[0], (uintptr_t)v[1], \"ptxas application ptx input, line 4; error   : \"\n"
    "             \"Unknown symbol 'BADPTX'\\nptxas fatal   : Ptx assembly aborted\\n\");\n"
    "    return 218;\n"
    "  }\n"
    "  *m = malloc(1); fake_live++; return 0;\n"
    "}\n"
    "CUresult cuModuleGetFunction(void **f, void *m, const char *name) {\n"
    "  unsigned k; CTX; FAIL(\"cuModuleGetFunction\");\n"
    "  if (!m || sscanf(name, \"moss_k%u\", &k) != 1 || k > 3) return 500;\n"
    "  *f = (void *)(uintptr_t)(k + 1); return 0;\n"
    "}\n"
    "CUresult cuModuleUnload(void *m) { CTX; free(m); fake_live--; return 0; }\n"
    "CUresult cuMemAlloc_v2(dptr *p, size_t n) {\n"
    "  CTX; FAIL(\"cuMemAlloc_v2\"); if (!n) return 1;\n"
    "  *p = (uintptr_t)calloc(1, n); fake_live++; return 0;\n"
    "}\n"
    "CUresult cuMemFree_v2(dptr p) { CTX; free((void *)(uintptr_t)p); fake_live--; return 0; }\n"
    "CUresult cuMemcpyHtoDAsync_v2(dptr d, const void *h, size_t n, void *s) {\n"
    "  CTX; FAIL(\"cuMemcpyHtoDAsync_v2\"); if (s != &stream) return 400;\n"
    "  memcpy((void *)(uintptr_t)d, h, n); return 0;\n"
    "}\n"
    "CUresult cuMemcpyDtoHAsync_v2(void *h, dptr d, size_t n, void *s) {\n"
    "  CTX; FAIL(\"cuMemcpyDtoHAsync_v2\"); if (s != &stream) return 400;\n"
    "  memcpy(h, (void *)(uintptr_t)d, n); return 0;\n"
    "}\n"
    "CUresult cuStreamCreate(void **s, unsigned f) {\n"
    "  CTX; FAIL(\"cuStreamCreate\"); if (f != 1) return 1; *s = &stream; fake_live++; return 0;\n"
    "}\n"
    "CUresult cuStreamDestroy_v2(void *s) {\n"
    "  CTX; if (s != &stream) return 400; fake_live--; return 0;\n"
    "}\n"
    "CUresult cuStreamSynchronize(void *s) {\n"
    "  CTX; FAIL(\"cuStreamSynchronize\"); if (s != &stream) return 400;\n"
    "  if (fault) { fault = 0; return 700; }\n"
    "  return 0;\n"
    "}\n"
    "#ifndef NO_LAUNCH\n"
    "CUresult cuLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz,\n"
    "                        unsigned bx, unsigned by, unsigned bz, unsigned shm,\n"
    "                        void *s, void **p, void **x) {\n"
    "  unsigned k = (unsigned)(uintptr_t)f - 1;\n"
    "  CTX; FAIL(\"cuLaunchKernel\");\n"
    "  if (k > 3 || gy != 1 || gz != 1 || by != 1 || bz != 1 || shm || x) return 1;\n"
    "  if (s != &stream) return 400;\n"
    "  fake_grid[k] = gx; fake_block[k] = bx;\n"
    "  if (k == 0) {\n"
    "    const float *w = (const float *)(uintptr_t)*(dptr *)p[1];\n"
    "    const float *t = (const float *)(uintptr_t)*(dptr *)p[2];\n"
    "    float *y = (float *)(uintptr_t)*(dptr *)p[3];\n"
    "    int i;\n"
    "    if (!*(dptr *)p[0]) return 1;\n"
    "    for (i = 0; i < 4; i++) y[i] = w[0] * t[i];\n"
    "    if (t[0] > 500) fault = 1;\n"
    "  }\n"
    "  return 0;\n"
    "}\n"
    "#endif\n"
    "CUresult cuGetErrorName(CUresult rc, const char **name) {\n"
    "  if (rc == 700) *name = \"CUDA_ERROR_ILLEGAL_ADDRESS\";\n"
    "  else if (rc == 218) *name = \"CUDA_ERROR_INVALID_PTX\";\n"
    "  else return 1;\n"
    "  return 0;\n"
    "}\n";

/* The PTX blob of the plugin bundle's step 2 for the fake driver: kernel 0
 * of 4 threads, kernel 1 of 513 (3 blocks of 256), weights {-1.0f}. */
static size_t fake_ptx_blob(uint8_t *buf, const char *src) {
  size_t n = gpu_blob(buf, MOSS_PTX_BLOB_MAGIC, MOSS_PTX_BLOB_VERSION, 2, 4, 16, src);
  uint64_t items = 513, wbytes = 4;
  float w = -1;
  memcpy(buf + sizeof(moss_opencl_blob_header) + 3 * 8, &items, 8);
  memcpy(buf + offsetof(moss_opencl_blob_header, weights_bytes), &wbytes, 8);
  memcpy(buf + n, &w, 4);
  return n + 4;
}

/* The fake driver |variant| (a folder of OUT), built once; the handle the
 * runtime gets too (dlopen gives the one library for one path). */
static void *fake_cuda(const char *variant, const char *flags) {
  char dir[1024], so[1100];
  snprintf(dir, sizeof dir, "%s/%s", OUT, variant);
  snprintf(so, sizeof so, "%s/libfakecuda.so", variant);
  mkdir(OUT, 0755);
  mkdir(dir, 0755);
  if (!compile_so(fake_cuda_src, so, flags)) return NULL;
  snprintf(so, sizeof so, "%s/libfakecuda.so", dir);
  return dlopen(so, RTLD_NOW | RTLD_LOCAL);
}

/* The CUDA executor end to end on the fake driver: the session's objects,
 * a run and its result, the launch shapes, MOSS_DEVICE, each driver call
 * failing (named with its error, and nothing left held), the JIT log, the
 * driver without cuDevicePrimaryCtxRelease_v2 or without cuLaunchKernel,
 * no allocation in a run, and every allocation failing in turn. */
TEST(cuda_fake_driver) {
  static const struct {
    const char *call, *text;
    int at_run;
  } fails[] = {
      {"cuInit", "cuda: cuInit: CUDA_ERROR_ILLEGAL_ADDRESS (700)", 0},
      {"cuDeviceGetCount", "cuda: cuDeviceGetCount: CUDA_ERROR_ILLEGAL_ADDRESS (700)", 0},
      {"cuDeviceGet", "cuda: cuDeviceGet 0: CUDA_ERROR_ILLEGAL_ADDRESS (700)", 0},
      {"cuDevicePrimaryCtxRetain", "cuda: cuDevicePrimaryCtxRetain: CUDA_ERROR_ILLEGAL", 0},
      {"cuCtxPushCurrent_v2", "cuda: cuCtxPushCurrent: CUDA_ERROR_ILLEGAL_ADDRESS (700)", 0},
      {"cuStreamCreate", "cuda: cuStreamCreate: CUDA_ERROR_ILLEGAL_ADDRESS (700)", 0},
      {"cuModuleLoadDataEx", "cuda: cuModuleLoadDataEx of blob 0: CUDA_ERROR_ILLEGAL_ADDRESS (700)",
       0},
      {"cuModuleGetFunction", "cuda: cuModuleGetFunction moss_k0 of blob 0: CUDA_ERROR_ILLEGAL", 0},
      {"cuMemAlloc_v2", "cuda: cuMemAlloc (blob 0's arena, 64 bytes): CUDA_ERROR_ILLEGAL", 0},
      {"cuMemcpyHtoDAsync_v2", "cuda: cuMemcpyHtoDAsync (blob 0's weights): CUDA_ERROR_ILLEGAL", 0},
      {"cuStreamSynchronize", "cuda: cuStreamSynchronize (weights): CUDA_ERROR_ILLEGAL", 0},
      {"cuCtxPushCurrent_v2", "cuda: cuCtxPushCurrent (step 2): CUDA_ERROR_ILLEGAL_ADDRESS", 1},
      {"cuMemcpyHtoDAsync_v2", "cuda: cuMemcpyHtoDAsync (step 2, input 0): CUDA_ERROR_ILLEGAL", 1},
      {"cuLaunchKernel", "cuda: cuLaunchKernel moss_k0 (step 2): CUDA_ERROR_ILLEGAL_ADDRESS (700)",
       1},
      {"cuMemcpyDtoHAsync_v2", "cuda: cuMemcpyDtoHAsync (step 2, output 0): CUDA_ERROR_ILLEGAL", 1},
      {"cuStreamSynchronize", "cuda: cuStreamSynchronize (step 2): CUDA_ERROR_ILLEGAL_ADDRESS", 1},
  };
  plug_desc p;
  char path[1024];
  uint8_t blob[512], *bytes = NULL;
  size_t n = 0, i;
  counter c = {0, 0, 0, 0};
  mossrt_options o;
  mossrt_bundle *b;
  mossrt_session *s;
  mossrt_error err;
  mossrt_status st;
  _Alignas(64) float x[4] = {1, 2, 3, 4}, y[4] = {0};
  const void *in[1] = {x};
  void *out[1] = {y};
  void *h = fake_cuda("cuda_fake", ""), *h_old = fake_cuda("cuda_fake_nov2", "-DNO_V2"),
       *h_nolaunch = fake_cuda("cuda_fake_nolaunch", "-DNO_LAUNCH");
  int *live, *pushed, *bad, *ctx_dev, *old_release;
  unsigned *grid, *block;
  long before;
  ASSERT_TRUE(h && h_old && h_nolaunch);
  live = dlsym(h, "fake_live");
  pushed = dlsym(h, "fake_pushed");
  bad = dlsym(h, "fake_bad");
  ctx_dev = dlsym(h, "fake_ctx_dev");
  grid = dlsym(h, "fake_grid");
  block = dlsym(h, "fake_block");
  ASSERT_TRUE(live && pushed && bad && ctx_dev && grid && block);
  unsetenv("MOSS_DEVICE");
  unsetenv("FAKE_CUDA_FAIL");
  unsetenv("FAKE_CUDA_CODE");
  setenv("MOSS_CUDA_LIBRARY", OUT "/cuda_fake/libfakecuda.so", 1);
  plug_init(&p, "");
  p.devices[1].backend = "ptx";
  p.devices[1].runs_blobs = 1;
  p.devices[1].plugin_path = NULL;
  p.blobs[0] = blob;
  p.blob_bytes[0] = fake_ptx_blob(blob, ".version 7.8\n.target sm_90\n.address_size 64\n");
  ASSERT_EQ(write_bundle(&p.d, "cuda_fake.moss", &bytes, &n, path, sizeof path), MOSS_OK);
  /* A session: context, stream, module, arena, weights, two tensors. */
  memset(&o, 0, sizeof o);
  o.alloc.fn = count_realloc;
  o.alloc.user = &c;
  ASSERT_EQ(mossrt_open_file_ex(path, &o, &b, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_OK);
  ASSERT_EQ(*live, 7);
  ASSERT_EQ(*ctx_dev, 0);
  ASSERT_EQ(*pushed, 0); /* the caller's context left as it was */
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
  ASSERT_NEAR(y[0], -2, 0); /* t = x + 1 on the CPU, y = -t on the "GPU" */
  ASSERT_NEAR(y[3], -5, 0);
  ASSERT_EQ(grid[0], 1);
  ASSERT_EQ(block[0], 256);
  ASSERT_EQ(grid[1], 3);
  ASSERT_EQ(block[1], 256);
  before = c.allocs + c.frees;
  for (i = 0; i < 100; i++) ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
  ASSERT_EQ(c.allocs + c.frees, before);
  ASSERT_EQ(*pushed, 0);
  /* A kernel's fault shows when the stream is waited for. */
  x[0] = 600;
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "cuda_fake.moss: target: cuda: cuStreamSynchronize (step 2): "
                                "CUDA_ERROR_ILLEGAL_ADDRESS (700)");
  x[0] = 1;
  ASSERT_EQ(*pushed, 0);
  mossrt_session_destroy(s);
  ASSERT_EQ(*live, 0);
  mossrt_close(b);
  ASSERT_EQ(c.live_bytes, 0);
  ASSERT_EQ(*bad, 0);
  /* MOSS_DEVICE: a part of the name. */
  setenv("MOSS_DEVICE", "H200", 1);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_OK);
  ASSERT_EQ(*ctx_dev, 1);
  mossrt_session_destroy(s);
  setenv("MOSS_DEVICE", "V100", 1);
  ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "cuda: no CUDA device whose name contains MOSS_DEVICE='V100' (2 "
                                "devices)");
  unsetenv("MOSS_DEVICE");
  ASSERT_EQ(*live, 0);
  /* Each call failing: named with its error, and nothing left held. */
  for (i = 0; i < sizeof fails / sizeof fails[0]; i++) {
    if (!fails[i].at_run) setenv("FAKE_CUDA_FAIL", fails[i].call, 1);
    st = mossrt_session_create(b, NULL, 0, &s, &err);
    if (fails[i].at_run) {
      ASSERT_EQ(st, MOSSRT_OK);
      setenv("FAKE_CUDA_FAIL", fails[i].call, 1);
      st = mossrt_run(s, in, out, &err);
    }
    unsetenv("FAKE_CUDA_FAIL");
    if (st != MOSSRT_E_DEVICE) FAIL_("%s failing: status %d", fails[i].call, st);
    ASSERT_STR_CONTAINS(err.text, fails[i].text);
    mossrt_session_destroy(s);
    s = NULL;
    if (*live || *pushed || *bad) FAIL_("%s failing: %d held, %d pushed, %d calls outside the "
                                        "context", fails[i].call, *live, *pushed, *bad);
  }
  /* An error the driver has no name for: cuda.h's, else the number. */
  setenv("FAKE_CUDA_FAIL", "cuInit", 1);
  setenv("FAKE_CUDA_CODE", "34", 1);
  ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "cuda: cuInit: CUDA_ERROR_STUB_LIBRARY (34)");
  setenv("FAKE_CUDA_CODE", "12345", 1);
  ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "cuda: cuInit: CUDA error (12345)");
  unsetenv("FAKE_CUDA_FAIL");
  unsetenv("FAKE_CUDA_CODE");
  mossrt_close(b);
  /* Every allocation of open and session creation failing in turn. */
  alloc_failures(failed_, bytes, n, NULL);
  free(bytes);
  if (*failed_) return;
  ASSERT_EQ(*live, 0);
  ASSERT_EQ(*bad, 0);
  /* PTX the JIT compiler refuses: the error, then its log on one line. */
  p.blob_bytes[0] = fake_ptx_blob(blob, ".version 7.8\n.target sm_90\nBADPTX\n");
  ASSERT_EQ(write_bundle(&p.d, "cuda_badptx.moss", NULL, NULL, path, sizeof path), MOSS_OK);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "cuda: cuModuleLoadDataEx of blob 0: CUDA_ERROR_INVALID_PTX (218): "
                                "ptxas application ptx input, line 4; error   : Unknown symbol "
                                "'BADPTX' ptxas fatal");
  ASSERT_TRUE(strchr(err.text, '\n') == NULL);
  mossrt_close(b);
  ASSERT_EQ(*live, 0);
  /* A driver without cuDevicePrimaryCtxRelease_v2 releases with the first. */
  p.blob_bytes[0] = fake_ptx_blob(blob, ".version 7.8\n.target sm_90\n.address_size 64\n");
  ASSERT_EQ(write_bundle(&p.d, "cuda_fake.moss", NULL, NULL, path, sizeof path), MOSS_OK);
  setenv("MOSS_CUDA_LIBRARY", OUT "/cuda_fake_nov2/libfakecuda.so", 1);
  live = dlsym(h_old, "fake_live");
  old_release = dlsym(h_old, "fake_old_release");
  ASSERT_TRUE(live && old_release);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
  ASSERT_NEAR(y[1], -3, 0);
  mossrt_session_destroy(s);
  mossrt_close(b);
  ASSERT_EQ(*live, 0);
  ASSERT_EQ(*old_release, 1);
  /* A driver without an entry point this executor needs. */
  setenv("MOSS_CUDA_LIBRARY", OUT "/cuda_fake_nolaunch/libfakecuda.so", 1);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "cuda: device 'npu': " OUT "/cuda_fake_nolaunch/libfakecuda.so has "
                                "no cuLaunchKernel");
  unsetenv("MOSS_CUDA_LIBRARY");
}

/* A GPU code-forms blob (moss_bundle.h) with the forms |names| (n of them,
 * each |parts[k]| of |sizes[k]| bytes, 8-aligned one after the other) in
 * |buf|; its length. */
static size_t forms_blob(uint8_t *buf, uint32_t n, const char *const *names,
                         const uint8_t *const *parts, const size_t *sizes) {
  uint32_t v[4] = {0, MOSS_FORMS_BLOB_VERSION, n, 0}, k;
  uint64_t at = MOSS_FORMS_BLOB_HEADER_BYTES + (uint64_t)n * MOSS_FORMS_BLOB_ENTRY_BYTES;
  memcpy(v, MOSS_FORMS_BLOB_MAGIC, 4);
  memcpy(buf, v, sizeof v);
  for (k = 0; k < n; k++) {
    uint8_t *e = buf + MOSS_FORMS_BLOB_HEADER_BYTES + k * MOSS_FORMS_BLOB_ENTRY_BYTES;
    uint64_t size = sizes[k];
    memset(e, 0, 16);
    memcpy(e, names[k], strlen(names[k]));
    memcpy(e + 16, &at, 8);
    memcpy(e + 24, &size, 8);
    memcpy(buf + at, parts[k], sizes[k]);
    memset(buf + at + sizes[k], 0, (8 - sizes[k] % 8) % 8);
    at += (size + 7) / 8 * 8;
  }
  return (size_t)at;
}

/* A device with two code forms, "ptx+vulkan" (runtime/src/gpu/forms.c):
 * with a working CUDA driver (the fake one) the PTX form runs, whatever
 * Vulkan has; MOSS_GPU_FORM forces a form; no driver for either names
 * both reasons; a verify-only open asks no driver; the code-forms blob and
 * both forms' blobs are checked; every allocation failing in turn. */
TEST(gpu_forms) {
  static const uint32_t spv[5] = {0x07230203u, 0x00010300u, 0, 1, 0}; /* SPIR-V 1.3, no code */
  static const char *const names[2] = {"ptx", "vulkan"}, *const dup[2] = {"ptx", "ptx"};
  plug_desc p;
  char path[1024];
  uint8_t ptx[512], vk[512], blob[1200], *bytes = NULL;
  const uint8_t *parts[2] = {ptx, vk};
  size_t sizes[2], n = 0;
  mossrt_options o;
  mossrt_bundle *b = NULL;
  mossrt_session *s = NULL;
  mossrt_error err;
  _Alignas(64) float x[4] = {1, 2, 3, 4}, y[4] = {0};
  const void *in[1] = {x};
  void *out[1] = {y};
  void *h = fake_cuda("cuda_fake", "");
  int *live, *ctx_dev;
  ASSERT_TRUE(h != NULL);
  live = dlsym(h, "fake_live");
  ctx_dev = dlsym(h, "fake_ctx_dev");
  ASSERT_TRUE(live && ctx_dev);
  unsetenv("MOSS_DEVICE");
  unsetenv("MOSS_GPU_FORM");
  unsetenv("FAKE_CUDA_FAIL");
  setenv("MOSS_CUDA_LIBRARY", OUT "/cuda_fake/libfakecuda.so", 1);
  setenv("MOSS_VULKAN_LIBRARY", "/nonexistent/libvulkan.so.1", 1);
  sizes[0] = fake_ptx_blob(ptx, ".version 7.8\n.target sm_87\n.address_size 64\n");
  sizes[1] = gpu_blob(vk, MOSS_VULKAN_BLOB_MAGIC, MOSS_VULKAN_BLOB_VERSION, 1, 4, 16,
                      "01234567890123456789");
  memcpy(vk + sizes[1] - sizeof spv, spv, sizeof spv);
  plug_init(&p, "");
  p.devices[1].backend = "ptx+vulkan";
  p.devices[1].runs_blobs = 1;
  p.devices[1].plugin_path = NULL;
  p.blobs[0] = blob;
  p.blob_bytes[0] = forms_blob(blob, 2, names, parts, sizes);
  ASSERT_EQ(write_bundle(&p.d, "gpu_forms.moss", &bytes, &n, path, sizeof path), MOSS_OK);
  /* The CUDA driver works: the PTX form runs (Vulkan has no loader). */
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_OK);
  ASSERT_EQ(*live, 7);
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
  ASSERT_NEAR(y[0], -2, 0); /* y = -(x + 1): the fake kernel on the PTX form's weights */
  ASSERT_NEAR(y[3], -5, 0);
  mossrt_session_destroy(s);
  mossrt_close(b);
  ASSERT_EQ(*live, 0);
  /* MOSS_DEVICE applies to the probe: the second fake device. */
  setenv("MOSS_DEVICE", "H200", 1);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_OK);
  ASSERT_EQ(*ctx_dev, 1);
  mossrt_session_destroy(s);
  mossrt_close(b);
  /* No CUDA device of that name and no Vulkan loader: both reasons. */
  setenv("MOSS_DEVICE", "V100", 1);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "gpu_forms.moss: target: device 1 ('npu', ptx+vulkan): no driver "
                                "for any code form: ptx: no CUDA device whose name contains "
                                "MOSS_DEVICE='V100' (2 devices); vulkan: cannot load the Vulkan "
                                "loader /nonexistent/libvulkan.so.1 (");
  ASSERT_TRUE(b == NULL);
  unsetenv("MOSS_DEVICE");
  setenv("FAKE_CUDA_FAIL", "cuInit", 1);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "no driver for any code form: ptx: cuInit: "
                                "CUDA_ERROR_ILLEGAL_ADDRESS (700); vulkan: cannot load");
  /* A verify-only open asks no driver. */
  memset(&o, 0, sizeof o);
  o.flags = MOSSRT_OPEN_VERIFY_ONLY;
  ASSERT_EQ(mossrt_open_file_ex(path, &o, &b, &err), MOSSRT_OK);
  mossrt_close(b);
  unsetenv("FAKE_CUDA_FAIL");
  ASSERT_EQ(*live, 0);
  /* MOSS_GPU_FORM: a form without its driver, a form the device lacks. */
  setenv("MOSS_GPU_FORM", "vulkan", 1);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "device 1 ('npu', ptx+vulkan): no driver for the code form "
                                "MOSS_GPU_FORM names: vulkan: cannot load the Vulkan loader");
  setenv("MOSS_GPU_FORM", "opencl", 1);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "MOSS_GPU_FORM='opencl' is not one of its code forms");
  setenv("MOSS_GPU_FORM", "ptx", 1);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_OK);
  mossrt_close(b);
  unsetenv("MOSS_GPU_FORM");
  /* Every allocation of open and session creation failing in turn. */
  alloc_failures(failed_, bytes, n, NULL);
  free(bytes);
  if (*failed_) return;
  ASSERT_EQ(*live, 0);
  /* Malformed: a form missing, one twice, an entry inside the header, the
   * Vulkan form's blob damaged (checked though the PTX form runs), a
   * backend naming a form twice or an empty one. */
  {
    const struct {
      uint32_t nforms;
      const char *const *names;
      const char *backend;
      int poke;
      const char *what;
    } cases[] = {
        {1, names, "ptx+vulkan", 0, "blob 0 (device 1 'npu', ptx+vulkan): it has no 'vulkan' form"},
        {2, dup, "ptx+vulkan", 0, "form 1 ('ptx'): a second 'ptx' form"},
        {2, names, "ptx+vulkan", 1, "form 0 ('ptx'): offset 8 + size"},
        {2, names, "ptx+vulkan", 2, "vulkan: blob 0: its module does not start with the SPIR-V"},
        {2, names, "ptx+ptx", 0, "device 1 ('npu'): backend 'ptx+ptx' names code form 'ptx' twice"},
        {2, names, "ptx+", 0, "backend 'ptx+': code form 1 is empty"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      uint64_t eight = 8;
      p.devices[1].backend = cases[i].backend;
      p.blob_bytes[0] = forms_blob(blob, cases[i].nforms, cases[i].names, parts, sizes);
      if (cases[i].poke == 1) memcpy(blob + MOSS_FORMS_BLOB_HEADER_BYTES + 16, &eight, 8);
      if (cases[i].poke == 2) /* the SPIR-V magic: the last 20 bytes of the second form */
        blob[MOSS_FORMS_BLOB_HEADER_BYTES + 2 * MOSS_FORMS_BLOB_ENTRY_BYTES + (sizes[0] + 7) / 8 * 8 +
             sizes[1] - sizeof spv] ^= 1;
      ASSERT_EQ(write_bundle(&p.d, "gpu_forms_bad.moss", NULL, NULL, path, sizeof path), MOSS_OK);
      ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_E_FORMAT);
      ASSERT_STR_CONTAINS(err.text, "gpu_forms_bad.moss: invalid-model: ");
      ASSERT_STR_CONTAINS(err.text, cases[i].what);
    }
  }
  unsetenv("MOSS_CUDA_LIBRARY");
  unsetenv("MOSS_VULKAN_LIBRARY");
}

/* Profiling (runtime/src/profile): the steps as the plan has them, and a
 * profiled run that computes what mossrt_run computes, times every step
 * and allocates nothing. */
TEST(profile_steps) {
  plug_desc p;
  char path[1024];
  counter c = {0, 0, 0, 0};
  mossrt_options o;
  mossrt_bundle *b;
  mossrt_session *s;
  mossrt_error err;
  mossrt_step_desc d;
  _Alignas(64) float x[4] = {1, 2, 3, 4}, y[4] = {0};
  const void *in[1] = {x};
  void *out[1] = {y};
  uint64_t ns[4] = {0, 0, 0, 0};
  long before;
  int i;
  ASSERT_TRUE(setup());
  plug_init(&p, "NEG1");
  ASSERT_EQ(write_bundle(&p.d, "plug_prof.moss", NULL, NULL, path, sizeof path), MOSS_OK);
  memset(&o, 0, sizeof o);
  o.plugin_dir = OUT "/plug_good";
  o.alloc.fn = count_realloc;
  o.alloc.user = &c;
  ASSERT_EQ(mossrt_open_file_ex(path, &o, &b, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_step_count(b), 3);
  ASSERT_EQ(mossrt_step_count(NULL), 0);
  ASSERT_EQ(mossrt_step_info(b, 0, &d), MOSSRT_OK);
  ASSERT_TRUE(!strcmp(d.kind, "exec") && !strcmp(d.device, "cpu") && d.entry &&
              !strcmp(d.entry, "moss_inc") && d.blob == -1 && d.from == NULL);
  ASSERT_EQ(mossrt_step_info(b, 1, &d), MOSSRT_OK);
  ASSERT_TRUE(!strcmp(d.kind, "transfer") && !strcmp(d.device, "npu") && d.from &&
              !strcmp(d.from, "cpu") && d.entry == NULL && d.blob == -1);
  ASSERT_EQ(mossrt_step_info(b, 2, &d), MOSSRT_OK);
  ASSERT_TRUE(!strcmp(d.kind, "exec") && !strcmp(d.device, "npu") && d.entry == NULL &&
              d.blob == 0);
  ASSERT_EQ(mossrt_step_info(b, 3, &d), MOSSRT_E_ARG);
  ASSERT_TRUE(d.kind == NULL && d.device == NULL);
  ASSERT_EQ(mossrt_step_info(b, 0, NULL), MOSSRT_E_ARG);
  ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_OK);
  before = c.allocs + c.frees;
  for (i = 0; i < 10; i++) {
    ns[0] = ns[1] = ns[2] = 0;
    ns[3] = 12345; /* past the steps: left alone */
    ASSERT_EQ(mossrt_run_profile(s, in, out, ns, &err), MOSSRT_OK);
    ASSERT_TRUE(ns[0] > 0 && ns[2] > 0 && ns[3] == 12345);
  }
  ASSERT_EQ(c.allocs + c.frees, before);
  /* x + 1 on the CPU, then negated by the plugin: y = -(x + 1). */
  ASSERT_NEAR(y[0], -2, 0);
  ASSERT_NEAR(y[3], -5, 0);
  ASSERT_EQ(mossrt_run_profile(s, in, out, NULL, &err), MOSSRT_E_ARG);
  ASSERT_STR_CONTAINS(err.text, "NULL step_ns");
  in[0] = NULL;
  ASSERT_EQ(mossrt_run_profile(s, in, out, ns, &err), MOSSRT_E_ARG);
  ASSERT_STR_CONTAINS(err.text, "input 0 ('x') is NULL");
  in[0] = x;
  x[0] = 600; /* the plugin fails: the error of mossrt_run */
  ASSERT_EQ(mossrt_run_profile(s, in, out, ns, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "overheated");
  ASSERT_EQ(mossrt_run_profile(NULL, in, out, ns, &err), MOSSRT_E_ARG);
  mossrt_session_destroy(s);
  mossrt_close(b);
  ASSERT_EQ(c.live_bytes, 0);
}

TEST(verify_only) {
  mossrt_bundle *b;
  mossrt_session *s;
  mossrt_error err;
  mossrt_options o;
  ASSERT_TRUE(load_add());
  memset(&o, 0, sizeof o);
  o.flags = MOSSRT_OPEN_VERIFY_ONLY;
  ASSERT_EQ(mossrt_open_memory_ex(g_add, g_add_n, &o, &b, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_input_count(b), 2);
  ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_E_ARG);
  ASSERT_STR_CONTAINS(err.text, "MOSSRT_OPEN_VERIFY_ONLY");
  mossrt_close(b);
}

/* Seeded random damage: plain (the checksums catch it), and with the
 * checksums fixed up afterwards (the deeper checks must catch it; the CPU
 * code is then not loaded, since a corrupt ELF can crash the dynamic
 * loader itself). Never a crash, always a status with a message. */
TEST(random_mutations) {
  static const uint32_t magic_vals[] = {0, 1, 2, 3, 7, 63, 64, 65, 0x7fffffffu, 0xffffffffu};
  uint32_t seed = 2024;
  int round, nok = 0, nfixed_fail = 0;
  uint8_t *c;
  ASSERT_TRUE(load_add());
  c = malloc(g_add_n);
  for (round = 0; round < 6000; round++) {
    int k, fix = round % 2;
    mossrt_error err;
    mossrt_status st;
    /* The interesting part is the header, table and small sections: the
     * first 1 KiB (past it lies mostly CPU code) gets most mutations. */
    size_t span = round % 3 == 0 ? g_add_n : 1024;
    memcpy(c, g_add, g_add_n);
    for (k = 0; k < 1 + round % 4; k++) {
      size_t at;
      seed = seed * 1103515245u + 12345u;
      at = (seed >> 4) % span;
      if ((seed >> 28) & 1) {
        uint32_t v = magic_vals[(seed >> 20) % 10];
        at &= ~(size_t)3;
        if (at + 4 <= g_add_n) memcpy(c + at, &v, 4);
      } else {
        c[at] ^= (uint8_t)(1u << ((seed >> 24) & 7));
      }
    }
    if (fix) fix_crcs(c, g_add_n);
    st = try_open(c, g_add_n, fix ? MOSSRT_OPEN_VERIFY_ONLY : 0, &err);
    if ((int)st >= 98) FAIL_("round %d: open broke its contract (%d)", round, (int)st);
    nok += st == MOSSRT_OK;
    nfixed_fail += fix && st != MOSSRT_OK;
  }
  free(c);
  printf("  %d of 6000 mutated bundles opened, the rest were refused with a message (%d of "
         "them past the checksums)\n", nok, nfixed_fail);
  ASSERT_TRUE(nfixed_fail > 1000);
}

/* The plugin bundle without CPU code: one transfer, one plugin step. */
static void plug_only_init(plug_desc *p) {
  plug_init(p, "NEG1");
  p->d.cpu_code = NULL;
  p->d.cpu_code_bytes = 0;
  p->d.nsteps = 2;
  p->steps[0] = p->steps[1];
  p->steps[1] = p->steps[2];
  p->d.report_json = "{}";
}

/* data/bundle/v1_plugin.moss and v2_plugin.moss were written by the
 * version 1 and 2 writers from plug_only_init(); version 2 moved the CPU
 * code into per-device CODE sections and grew the device record, version 3
 * made the CPU code state its figures and added signatures, so this
 * runtime must refuse both as old versions, with a message that says so. */
TEST(format_v1_v2_refused) {
  mossrt_bundle *b;
  mossrt_error err;
  ASSERT_EQ(mossrt_open_file(MOSS_TEST_DATA_DIR "/bundle/v1_plugin.moss", &b, &err), MOSSRT_E_VERSION);
  ASSERT_STR_CONTAINS(err.text, "unsupported: format version 1, this runtime reads 3");
  ASSERT_EQ(mossrt_open_file(MOSS_TEST_DATA_DIR "/bundle/v2_plugin.moss", &b, &err),
            MOSSRT_E_VERSION);
  ASSERT_STR_CONTAINS(err.text, "unsupported: format version 2, this runtime reads 3");
}

/* data/bundle/v3_plugin.moss was written by this version of the writer from
 * plug_only_init(). It must keep opening, and the writer must keep writing
 * it byte for byte: a change here is a format change (bump the version).
 * Its layout is version 2's: only the version field, and so the header
 * checksum, differ from v2_plugin.moss.
 * The offsets and sizes below are worked out by hand from moss_bundle.h:
 * header 320, table 6 x 32 = 192 (ends at 512); strings "" x t y cpu cpu c
 * npu npu plugin:neg /nonexistent/libneg.so with their NULs = 59 bytes;
 * meta 24 + 3 x 104 + 4 + 4 = 344; devices 8 + 2 x 56 = 120; plan 8 +
 * 2 x 40 + 3 refs x 4 = 100; the blob "NEG1" = 4; the report "{}" = 3;
 * each section starts at the next multiple of 64. */
TEST(format_v3_golden) {
  static const uint64_t offsets[6] = {512, 576, 960, 1088, 1216, 1280};
  static const uint64_t sizes[6] = {59, 344, 120, 100, 4, 3};
  static const uint32_t kinds[6] = {1, 2, 3, 4, 6, 7};
  const char *golden = MOSS_TEST_DATA_DIR "/bundle/v3_plugin.moss";
  mossrt_options o;
  mossrt_bundle *b;
  mossrt_error err;
  mossrt_tensor_info ti;
  plug_desc p;
  uint8_t *want, *got;
  size_t nwant, ngot, len;
  char path[1024];
  uint32_t i;
  want = read_all(golden, &nwant);
  ASSERT_TRUE(want != NULL);
  ASSERT_EQ(nwant, 1344);
  ASSERT_EQ(hdr(want)->section_count, 6);
  for (i = 0; i < 6; i++) {
    ASSERT_EQ(sect(want, i)->kind, kinds[i]);
    ASSERT_EQ(sect(want, i)->offset, offsets[i]);
    ASSERT_EQ(sect(want, i)->size, sizes[i]);
  }
  ASSERT_EQ(sect(want, 4)->param, 1); /* the blob is the npu's */
  memset(&o, 0, sizeof o);
  o.flags = MOSSRT_OPEN_VERIFY_ONLY;
  ASSERT_EQ(mossrt_open_file_ex(golden, &o, &b, &err), MOSSRT_OK);
  ASSERT_TRUE(strcmp(mossrt_target(b), "test-npu") == 0);
  ASSERT_EQ(mossrt_input_info(b, 0, &ti), MOSSRT_OK);
  ASSERT_TRUE(strcmp(ti.name, "x") == 0);
  ASSERT_EQ(ti.rank, 2);
  ASSERT_EQ(ti.dims[0], 1);
  ASSERT_EQ(ti.dims[1], 4);
  ASSERT_EQ(mossrt_arena_bytes(b), 64);
  ASSERT_TRUE(strcmp(mossrt_report_json(b, &len), "{}") == 0);
  mossrt_close(b);
  plug_only_init(&p);
  ASSERT_EQ(write_bundle(&p.d, "v3_plugin.moss", &got, &ngot, path, sizeof path), MOSS_OK);
  ASSERT_EQ(ngot, nwant);
  ASSERT_TRUE(memcmp(got, want, nwant) == 0);
  free(got);
  { /* against version 2's file: the version and the header checksum */
    uint8_t *v2 = read_all(MOSS_TEST_DATA_DIR "/bundle/v2_plugin.moss", &ngot);
    size_t i, ndiff = 0;
    ASSERT_TRUE(v2 != NULL && ngot == nwant);
    for (i = 0; i < nwant; i++)
      if (v2[i] != want[i]) {
        ndiff++;
        if (i != 8 && (i < 40 || i >= 44)) FAIL_("byte %zu differs from version 2's", i);
      }
    ASSERT_TRUE(ndiff >= 2 && v2[8] == 2 && want[8] == 3);
    free(v2);
  }
  free(want);
}

/* ---- the figures the CPU code states (version 3) ---- */

/* Opens |n| bytes at |c| completely (code loaded, plugins from plug_good). */
static mossrt_status open_full(const uint8_t *c, size_t n, mossrt_error *err) {
  mossrt_options o;
  mossrt_bundle *b = NULL;
  mossrt_status st;
  memset(&o, 0, sizeof o);
  o.plugin_dir = OUT "/plug_good";
  memset(err, 0, sizeof *err);
  st = mossrt_open_memory_ex(c, n, &o, &b, err);
  if (st == MOSSRT_OK && !b) return (mossrt_status)99;
  if (st != MOSSRT_OK && (b || !err->text[0] || err->status != st)) return (mossrt_status)98;
  mossrt_close(b);
  return st;
}

/* Whether the 4-byte word at |off| of section |sec| holds only a string
 * reference or a reserved field, which the figures do not cover (names are
 * vouched for by a signature only; reserved fields are not read). A CPU
 * step's entry is covered: the function it names must be the code's entry
 * for that step (checked below by swapping two entries). */
static int unvouched(uint32_t sec, size_t off, uint32_t ntensors, uint32_t nsteps) {
  if (sec == 1) { /* META: reserved; each tensor's name */
    if (off == 20) return 1;
    return off >= 24 && off < 24 + (size_t)ntensors * 104 && (off - 24) % 104 < 8;
  }
  if (sec == 3) /* PLAN: each step's entry string (a CPU step's: TEST below) and reserved word */
    return off >= 8 && off < 8 + (size_t)nsteps * 40 &&
           ((off - 8) % 40 == 16 || (off - 8) % 40 == 20 || (off - 8) % 40 == 36);
  if (sec == 2) /* DEVICES: reserved; each device's six strings */
    return off == 4 || (off >= 8 && (off - 8) % 56 < 48);
  return 0;
}

/* Every 4-byte word of META, DEVICES and PLAN of the bundle |g| (|n|
 * bytes; section 1 meta, 2 devices, 3 plan) forged to five other values,
 * checksums repaired: each open is refused with a message (never a crash),
 * but for the words unvouched() names. Adds the forgeries to |*count|. */
static void forge_all(int *failed_, const uint8_t *g, size_t n, uint32_t ntensors,
                      uint32_t nsteps, int *count) {
  static const uint32_t secs[] = {1, 2, 3};
  uint8_t *c = malloc(n);
  size_t si;
  memcpy(c, g, n);
  for (si = 0; si < 3; si++) {
    uint32_t sec = secs[si];
    size_t size = sect(c, sec)->size, off;
    for (off = 0; off + 4 <= size; off += 4) {
      uint32_t orig, vals[5], v;
      int k;
      memcpy(&orig, payload_of(c, sec) + off, 4);
      vals[0] = orig + 1, vals[1] = orig - 1, vals[2] = orig ^ 0x80000000u, vals[3] = 0;
      vals[4] = 64;
      for (k = 0; k < 5; k++) {
        mossrt_error err;
        mossrt_status st;
        if ((v = vals[k]) == orig) continue;
        memcpy(payload_of(c, sec) + off, &v, 4);
        fix_crcs(c, n);
        st = open_full(c, n, &err);
        memcpy(payload_of(c, sec) + off, &orig, 4);
        fix_crcs(c, n);
        ++*count;
        if ((int)st >= 98 || (st == MOSSRT_OK && !unvouched(sec, off, ntensors, nsteps))) {
          free(c);
          FAIL_("section %u, byte %zu: 0x%x forged to 0x%x: status %d", sec, off, orig, v, st);
        }
      }
    }
  }
  free(c);
}

/* The forgery of the issue: META's arena_bytes set to 64, checksums
 * repaired, made libmossrt allocate 64 bytes and the CPU code write past
 * them. Now the code's figures refuse it, and every other field of META
 * and PLAN, in a CPU bundle and in a CPU + plugin bundle. */
TEST(figures_refuse_forged_fields) {
  plug_desc p;
  uint8_t *c, *pb;
  size_t pn;
  char path[1024];
  mossrt_error err;
  int n = 0;
  ASSERT_TRUE(load_add());
  c = copy_add();
  ((moss_bundle_meta *)(void *)payload_of(c, 1))->arena_bytes = 192; /* t still fits */
  fix_crcs(c, g_add_n);
  ASSERT_EQ(open_full(c, g_add_n, &err), MOSSRT_E_FORMAT);
  ASSERT_STR_CONTAINS(err.text, "<memory>: invalid-model: the bundle's arena of 192 bytes or its "
                                "count of tensors, steps or tensor references is not what its CPU "
                                "code was compiled for (an arena of 128 bytes)");
  free(c);
  c = copy_add(); /* same size, another dtype: float32 -> int32 */
  tensor_rec(c, 0)->dtype = 6;
  fix_crcs(c, g_add_n);
  ASSERT_EQ(open_full(c, g_add_n, &err), MOSSRT_E_FORMAT);
  ASSERT_STR_CONTAINS(err.text, "tensor 0: not what the CPU code was compiled for");
  free(c);
  c = copy_add(); /* same bytes, another shape: [4] -> [2, 2] */
  tensor_rec(c, 3)->rank = 2;
  tensor_rec(c, 3)->dims[0] = 2;
  tensor_rec(c, 3)->dims[1] = 2;
  fix_crcs(c, g_add_n);
  ASSERT_EQ(open_full(c, g_add_n, &err), MOSSRT_E_FORMAT);
  ASSERT_STR_CONTAINS(err.text, "tensor 3: not what the CPU code was compiled for");
  free(c);
  c = copy_add(); /* the steps' entries swapped */
  {
    moss_bundle_str e = step_rec(c, 0)->entry;
    step_rec(c, 0)->entry = step_rec(c, 1)->entry;
    step_rec(c, 1)->entry = e;
  }
  fix_crcs(c, g_add_n);
  ASSERT_EQ(open_full(c, g_add_n, &err), MOSSRT_E_FORMAT);
  ASSERT_STR_CONTAINS(err.text,
                      "the entry point of step 0: not what the CPU code was compiled for");
  free(c);
  c = copy_add(); /* step 1 reads y, which is a graph output, as its input b */
  plan_refs(c)[4] = 3;
  fix_crcs(c, g_add_n);
  ASSERT_EQ(open_full(c, g_add_n, &err), MOSSRT_E_FORMAT);
  ASSERT_STR_CONTAINS(err.text, "tensor reference 4: not what the CPU code was compiled for");
  free(c);
  /* Code without figures (a version 2 compiler's) is refused. */
  {
    add_desc a;
    uint8_t *bytes;
    size_t nb;
    add_init(&a);
    ASSERT_TRUE(compile_so(cpu_src, "cpu_nofig.so", ""));
    a.d.cpu_code = read_all(OUT "/cpu_nofig.so", &nb);
    a.d.cpu_code_bytes = nb;
    ASSERT_EQ(write_bundle(&a.d, "nofig.moss", &bytes, &pn, path, sizeof path), MOSS_OK);
    free((void *)a.d.cpu_code);
    ASSERT_EQ(open_full(bytes, pn, &err), MOSSRT_E_FORMAT);
    ASSERT_STR_CONTAINS(err.text, "the CPU code states no figures (symbol moss_figures)");
    free(bytes);
  }
  /* Every word. */
  forge_all(failed_, g_add, g_add_n, 4, 2, &n);
  if (*failed_) return;
  plug_init(&p, "NEG1");
  ASSERT_EQ(write_bundle(&p.d, "plug_forge.moss", &pb, &pn, path, sizeof path), MOSS_OK);
  ASSERT_EQ(open_full(pb, pn, &err), MOSSRT_OK);
  forge_all(failed_, pb, pn, 3, 3, &n);
  free(pb);
  printf("  %d forged words, each refused (but names and reserved words)\n", n);
}

/* The writer refuses a CPU step whose tensors are not the graph's inputs
 * then outputs (the code would be handed other buffers). */
TEST(writer_cpu_steps_take_graph_io) {
  add_desc a;
  moss_ctx ctx;
  static const uint32_t other_out[] = {2};
  ASSERT_TRUE(setup());
  moss_ctx_init(&ctx, moss_allocator_libc());
  add_init(&a);
  a.steps[0].out = other_out;
  ASSERT_EQ(moss_bundle_write(&ctx, &a.d, OUT "/never.moss"), MOSS_E_INTERNAL);
  ASSERT_STR_CONTAINS(ctx.last, "steps[0]: a CPU step takes the graph's inputs, then its outputs");
  add_init(&a);
  a.steps[1].nin = 1;
  ASSERT_EQ(moss_bundle_write(&ctx, &a.d, OUT "/never.moss"), MOSS_E_INTERNAL);
  ASSERT_STR_CONTAINS(ctx.last, "steps[1]: a CPU step takes the graph's 2 inputs and 1 outputs");
}

#if defined(__x86_64__)
/* libmossrt reads CPUID from tables: each feature name gives the answer of
 * the compiler's __builtin_cpu_supports on this machine. */
TEST(cpu_features_match_builtin) {
  static const char *const names[] = {
      "sse", "sse2", "sse3", "ssse3", "sse4.1", "sse4.2", "sse4a", "popcnt", "avx", "avx2",
      "fma", "fma4", "xop", "bmi", "bmi2", "aes", "pclmul", "avx512f", "avx512bw", "avx512vl",
      "avx512dq", "avx512cd", "avx512vnni", "avx512bf16", "avx512vbmi", "avx512vbmi2",
      "avx512ifma", "avx512bitalg", "avx512vpopcntdq", "avx512vp2intersect"};
  int have[30], i, nhave = 0;
  __builtin_cpu_init();
#define H(k, n) have[k] = __builtin_cpu_supports(n) != 0
  H(0, "sse"); H(1, "sse2"); H(2, "sse3"); H(3, "ssse3"); H(4, "sse4.1"); H(5, "sse4.2");
  H(6, "sse4a"); H(7, "popcnt"); H(8, "avx"); H(9, "avx2"); H(10, "fma"); H(11, "fma4");
  H(12, "xop"); H(13, "bmi"); H(14, "bmi2"); H(15, "aes"); H(16, "pclmul"); H(17, "avx512f");
  H(18, "avx512bw"); H(19, "avx512vl"); H(20, "avx512dq"); H(21, "avx512cd");
  H(22, "avx512vnni"); H(23, "avx512bf16"); H(24, "avx512vbmi"); H(25, "avx512vbmi2");
  H(26, "avx512ifma"); H(27, "avx512bitalg"); H(28, "avx512vpopcntdq");
  H(29, "avx512vp2intersect");
#undef H
  ASSERT_TRUE(setup());
  for (i = 0; i < 30; i++) {
    add_desc a;
    uint8_t *bytes;
    size_t n;
    char path[1024];
    mossrt_error err;
    mossrt_status st;
    add_init(&a);
    a.d.features = names[i];
    ASSERT_EQ(write_bundle(&a.d, "feat.moss", &bytes, &n, path, sizeof path), MOSS_OK);
    st = try_open(bytes, n, MOSSRT_OPEN_VERIFY_ONLY, &err);
    free(bytes);
    if (st != (have[i] ? MOSSRT_OK : MOSSRT_E_TARGET))
      FAIL_("feature %s: the builtin says %d, libmossrt %d (%s)", names[i], have[i], (int)st,
            err.text);
    nhave += have[i];
  }
  printf("  30 CPU features, %d present here, as the builtin says\n", nhave);
}
#endif

/* ---- signed bundles (libmossrt_sign) ---- */

static const uint8_t test_seed[32] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                      16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
                                      30, 31};

static mossrt_status open_key(const uint8_t *c, size_t n, const uint8_t *key, mossrt_error *err) {
  mossrt_options o;
  mossrt_bundle *b = NULL;
  mossrt_status st;
  memset(&o, 0, sizeof o);
  o.public_key = key;
  o.verify = mossrt_sign_verify;
  memset(err, 0, sizeof *err);
  st = mossrt_open_memory_ex(c, n, &o, &b, err);
  if (st == MOSSRT_OK && !b) return (mossrt_status)99;
  if (st != MOSSRT_OK && (b || !err->text[0] || err->status != st)) return (mossrt_status)98;
  mossrt_close(b);
  return st;
}

TEST(signed_bundles) {
  uint8_t pk[32], sk[64], pk2[32], sk2[64], *sb, *ub, *c;
  size_t sn, un, i;
  add_desc a;
  char path[1024];
  mossrt_error err;
  moss_bundle_header h;
  moss_bundle_signature t;
  int nformat = 0, nsig = 0;
  ASSERT_TRUE(setup());
  ASSERT_EQ(mossrt_sign_keygen(pk, sk), MOSSRT_OK);
  ASSERT_EQ(mossrt_sign_keygen(pk2, sk2), MOSSRT_OK);
  ASSERT_TRUE(memcmp(pk, pk2, 32) != 0);
  ASSERT_TRUE(memcmp(sk + 32, pk, 32) == 0); /* libsodium's layout: seed, public key */
  add_init(&a);
  ASSERT_EQ(write_bundle(&a.d, "unsigned.moss", &ub, &un, path, sizeof path), MOSS_OK);
  a.d.sign_key = sk;
  ASSERT_EQ(write_bundle(&a.d, "signed.moss", &sb, &sn, path, sizeof path), MOSS_OK);
  /* The layout: the unsigned bundle, flag 1, then the 128-byte trailer. */
  ASSERT_EQ(sn, un + 128);
  memcpy(&h, sb, sizeof h);
  ASSERT_EQ(h.flags, MOSS_BUNDLE_FLAG_SIGNED);
  ASSERT_EQ(h.file_size, sn);
  ASSERT_TRUE(memcmp(sb + sizeof h, ub + sizeof h, un - sizeof h) == 0);
  memcpy(&t, sb + sn - 128, sizeof t);
  ASSERT_TRUE(memcmp(t.magic, "MOSSSIG1", 8) == 0);
  ASSERT_EQ(t.algorithm, 1);
  ASSERT_EQ(t.size, 128);
  ASSERT_TRUE(memcmp(t.public_key, pk, 32) == 0);
  /* The signature is Ed25519 over all but its own 64 bytes (libsodium). */
  ASSERT_EQ(crypto_sign_verify_detached(t.signature, sb, sn - 64, pk), 0);
  /* Opens and runs with the right key, and with no key at all. */
  ASSERT_EQ(open_key(sb, sn, pk, &err), MOSSRT_OK);
  ASSERT_EQ(try_open(sb, sn, 0, &err), MOSSRT_OK);
  {
    mossrt_options o;
    mossrt_bundle *b;
    mossrt_session *s;
    float x[4] = {1, 2, 3, 4}, y2[4] = {10, 20, 30, 40}, y[4] = {0};
    const void *in[2] = {x, y2};
    void *out[1] = {y};
    memset(&o, 0, sizeof o);
    o.public_key = pk;
    o.verify = mossrt_sign_verify;
    ASSERT_EQ(mossrt_open_file_ex(path, &o, &b, &err), MOSSRT_OK);
    ASSERT_EQ(mossrt_session_create(b, NULL, 0, &s, &err), MOSSRT_OK);
    ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
    ASSERT_NEAR(y[3], 88, 0);
    mossrt_session_destroy(s);
    mossrt_close(b);
  }
  /* The wrong key, no signature, no verifier. */
  ASSERT_EQ(open_key(sb, sn, pk2, &err), MOSSRT_E_SIGNATURE);
  ASSERT_STR_CONTAINS(err.text, "<memory>: invalid-model: signature: the bundle is signed with "
                                "another key (public key ");
  ASSERT_EQ(open_key(ub, un, pk, &err), MOSSRT_E_SIGNATURE);
  ASSERT_STR_CONTAINS(err.text, "<memory>: invalid-model: signature: the bundle is not signed");
  {
    mossrt_options o;
    mossrt_bundle *b;
    memset(&o, 0, sizeof o);
    o.public_key = pk;
    ASSERT_EQ(mossrt_open_memory_ex(sb, sn, &o, &b, &err), MOSSRT_E_ARG);
    ASSERT_STR_CONTAINS(err.text, "public_key without verify");
  }
  /* The flag cleared (checksum repaired): an unsigned bundle then. */
  c = malloc(sn);
  memcpy(c, sb, sn);
  hdr(c)->flags = 0;
  fix_crcs(c, sn);
  ASSERT_EQ(open_key(c, sn, pk, &err), MOSSRT_E_SIGNATURE);
  ASSERT_STR_CONTAINS(err.text, "the bundle is not signed");
  /* One flipped bit anywhere: refused. In the header or the table the
   * header checksum says so first; past them, the signature. */
  for (i = 0; i < sn; i++) {
    mossrt_status st;
    memcpy(c, sb, sn);
    c[i] ^= (uint8_t)(1u << (i % 8));
    st = open_key(c, sn, pk, &err);
    if (i >= h.section_table_offset + h.section_count * sizeof(moss_bundle_section)) {
      if (st != MOSSRT_E_SIGNATURE) FAIL_("byte %zu flipped: status %d (%s)", i, st, err.text);
      nsig++;
    } else {
      if (st != MOSSRT_E_FORMAT && st != MOSSRT_E_VERSION && st != MOSSRT_E_SIGNATURE)
        FAIL_("byte %zu flipped: status %d (%s)", i, st, err.text);
      nformat++;
    }
    if (i % 5 == 0 && !(i >= 40 && i < 44) &&
        !(i >= h.section_table_offset && i < h.section_table_offset + h.section_count * 32u &&
          (i - h.section_table_offset) % 32 >= 28)) { /* the checksums repaired (not flipped) */
      memcpy(c, sb, sn);
      c[i] ^= (uint8_t)(1u << (i % 8));
      fix_crcs(c, sn);
      st = open_key(c, sn, pk, &err);
      if (st == MOSSRT_OK || (int)st >= 98)
        FAIL_("byte %zu flipped, checksums repaired: status %d", i, st);
    }
  }
  printf("  %zu bytes flipped one at a time: %d refused by the header checksum, %d by the "
         "signature\n", sn, nformat, nsig);
  /* Truncated by the signature, or extended. */
  ASSERT_TRUE(open_key(sb, sn - 64, pk, &err) != MOSSRT_OK);
  free(c);
  c = malloc(sn + 64);
  memcpy(c, sb, sn);
  memset(c + sn, 0, 64);
  ASSERT_TRUE(open_key(c, sn + 64, pk, &err) != MOSSRT_OK);
  free(c);
  /* A damaged secret key is refused by the writer. */
  {
    moss_ctx ctx;
    uint8_t bad[64];
    memcpy(bad, sk, 64);
    bad[40] ^= 1;
    a.d.sign_key = bad;
    moss_ctx_init(&ctx, moss_allocator_libc());
    ASSERT_EQ(moss_bundle_write(&ctx, &a.d, OUT "/never.moss"), MOSS_E_IO);
    ASSERT_STR_CONTAINS(ctx.last, "the secret key is damaged");
  }
  free(sb);
  free(ub);
}

/* data/bundle/v3_plugin_signed.moss: plug_only_init() signed with the key
 * whose seed is the bytes 0..31 (Ed25519 signatures are deterministic).
 * The writer must reproduce it byte for byte; tests/e2e/test_bundle_sign.py
 * checks its signature with another implementation (python3-cryptography). */
TEST(format_v3_signed_golden) {
  const char *golden = MOSS_TEST_DATA_DIR "/bundle/v3_plugin_signed.moss";
  uint8_t pk[32], sk[64], *want, *got;
  size_t nwant, ngot;
  plug_desc p;
  char path[1024];
  mossrt_error err;
  ASSERT_TRUE(sodium_init() >= 0);
  ASSERT_EQ(crypto_sign_seed_keypair(pk, sk, test_seed), 0);
  plug_only_init(&p);
  p.d.sign_key = sk;
  ASSERT_EQ(write_bundle(&p.d, "v3_plugin_signed.moss", &got, &ngot, path, sizeof path), MOSS_OK);
  want = read_all(golden, &nwant);
  ASSERT_TRUE(want != NULL);
  ASSERT_EQ(ngot, nwant);
  ASSERT_TRUE(memcmp(got, want, nwant) == 0);
  ASSERT_EQ(nwant, 1344 + 128);
  {
    mossrt_options o;
    mossrt_bundle *b;
    memset(&o, 0, sizeof o);
    o.public_key = pk;
    o.verify = mossrt_sign_verify;
    o.flags = MOSSRT_OPEN_VERIFY_ONLY;
    ASSERT_EQ(mossrt_open_memory_ex(want, nwant, &o, &b, &err), MOSSRT_OK);
    mossrt_close(b);
  }
  free(got);
  free(want);
}

/* ---- bounded dynamic shapes (the SHAPES section, runtime/src/shape) ---- */

static const uint32_t nz_in[] = {0}, nz_out[] = {1, 2};

/* The shapes bundle: NonZero of x (4 floats) as output 0 'idx', int64 of
 * shape [1, n] planned at its bound [1, 4], its length n at arena+8; and
 * output 1 'y' = x, static. One CPU step (moss_nonzero). |nbounds| 1: idx
 * is bounded; 2: y too (axis 0, length at arena+16; the code never writes
 * it). Sections: 0 strings, 1 meta, 2 devices, 3 plan, 4 code, 5 report,
 * 6 shapes. */
typedef struct shape_desc {
  moss_bundle_tensor tensors[3];
  uint32_t inputs[1], outputs[2];
  moss_bundle_device devices[1];
  moss_bundle_step steps[1];
  moss_bundle_bound bounds[2];
  moss_bundle_desc d;
} shape_desc;

static void shape_init(shape_desc *a, uint32_t nbounds) {
  memset(a, 0, sizeof *a);
  a->tensors[0] = (moss_bundle_tensor){"x", 1, 1, {4}, 16, MOSS_BUNDLE_INPUT, 0, 0};
  a->tensors[1] = (moss_bundle_tensor){"idx", 7, 2, {1, 4}, 32, MOSS_BUNDLE_OUTPUT, 0, 0};
  a->tensors[2] = (moss_bundle_tensor){"y", 1, 1, {4}, 16, MOSS_BUNDLE_OUTPUT, 1, 0};
  a->inputs[0] = 0;
  a->outputs[0] = 1;
  a->outputs[1] = 2;
  a->devices[0] = (moss_bundle_device){"cpu", "cpu", "c", NULL, 0};
  a->steps[0] = (moss_bundle_step){MOSS_BUNDLE_STEP_EXEC, 0, 0, "moss_nonzero", 0, 1, 2, nz_in,
                                   nz_out};
  a->bounds[0] = (moss_bundle_bound){0, 1, 8};
  a->bounds[1] = (moss_bundle_bound){1, 0, 16};
  a->d.target = "test-host";
  a->d.triple = "x86_64-pc-linux-gnu";
  a->d.features = "";
  a->d.arena_bytes = 64;
  a->d.ntensors = 3;
  a->d.ninputs = 1;
  a->d.noutputs = 2;
  a->d.ndevices = 1;
  a->d.nsteps = 1;
  a->d.tensors = a->tensors;
  a->d.inputs = a->inputs;
  a->d.outputs = a->outputs;
  a->d.devices = a->devices;
  a->d.steps = a->steps;
  a->d.report_json = "{}";
  a->d.nbounds = nbounds;
  a->d.bounds = a->bounds;
  code_for(&a->d, "cpu_nonzero.so"); /* the figures do not cover the bounds: one code */
}

/* What mossrt_output_dims() gives for output |i| of |s| (on |b|): its
 * dims as "d0,d1,..", or the status as "E<n>". */
static const char *dims_of(const mossrt_bundle *b, const mossrt_session *s, uint32_t i,
                           mossrt_error *err) {
  static char text[128];
  int64_t dims[MOSS_BUNDLE_MAX_RANK];
  mossrt_tensor_info ti;
  mossrt_status st;
  size_t n = 0;
  int32_t k;
  memset(dims, 0x5a, sizeof dims);
  st = mossrt_output_dims(s, i, dims, err);
  if (st != MOSSRT_OK || mossrt_output_info(b, i, &ti) != MOSSRT_OK) {
    snprintf(text, sizeof text, "E%d", (int)st);
    return text;
  }
  text[0] = 0;
  for (k = 0; k < ti.rank; k++)
    n += (size_t)snprintf(text + n, sizeof text - n, "%s%lld", k ? "," : "", (long long)dims[k]);
  return text;
}

/* A bounded output end to end: the writer's SHAPES section, the axis, the
 * lengths the code leaves in the arena after each run, and a length the
 * code had no right to leave. */
TEST(shapes_round_trip) {
  shape_desc a;
  char path[1024];
  uint8_t *bytes;
  size_t n;
  mossrt_bundle *b;
  mossrt_session *s;
  mossrt_error err;
  mossrt_tensor_info ti;
  _Alignas(64) uint8_t arena[64];
  float x[4] = {0, 3, 0, 5}, y[4];
  int64_t idx[4], len;
  const void *in[1] = {x};
  void *out[2] = {idx, y};
  const moss_bundle_bound_rec *r;
  ASSERT_TRUE(setup());
  shape_init(&a, 1);
  ASSERT_EQ(write_bundle(&a.d, "shapes.moss", &bytes, &n, path, sizeof path), MOSS_OK);
  /* The section, last, as moss_bundle.h lays it out. */
  ASSERT_EQ(hdr(bytes)->section_count, 7);
  ASSERT_EQ(sect(bytes, 6)->kind, MOSS_BUNDLE_SEC_SHAPES);
  ASSERT_EQ(sect(bytes, 6)->size, 8 + 16);
  ASSERT_EQ(((moss_bundle_shapes *)(void *)payload_of(bytes, 6))->count, 1);
  r = (const moss_bundle_bound_rec *)(const void *)(payload_of(bytes, 6) + 8);
  ASSERT_EQ(r->output, 0);
  ASSERT_EQ(r->axis, 1);
  ASSERT_EQ(r->offset, 8);
  free(bytes);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_output_bound_axis(b, 0), 1);
  ASSERT_EQ(mossrt_output_bound_axis(b, 1), -1);
  ASSERT_EQ(mossrt_output_bound_axis(b, 2), -1);
  ASSERT_EQ(mossrt_output_bound_axis(NULL, 0), -1);
  ASSERT_EQ(mossrt_output_info(b, 0, &ti), MOSSRT_OK); /* the bound's shape and size */
  ASSERT_EQ(ti.dims[1], 4);
  ASSERT_EQ(ti.nbytes, 32);
  ASSERT_EQ(mossrt_session_create(b, arena, sizeof arena, &s, &err), MOSSRT_OK);
  /* x = {0,3,0,5}: idx = [[1, 3]], compact at the start of its buffer. */
  memset(idx, 0xee, sizeof idx);
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
  ASSERT_STR_CONTAINS(dims_of(b, s, 0, &err), "1,2");
  ASSERT_TRUE(strcmp(dims_of(b, s, 0, &err), "1,2") == 0);
  ASSERT_EQ(idx[0], 1);
  ASSERT_EQ(idx[1], 3);
  ASSERT_TRUE(strcmp(dims_of(b, s, 1, &err), "4") == 0);
  ASSERT_NEAR(y[3], 5, 0);
  /* All non-zero: the bound; all zero: an empty axis. */
  x[0] = 1, x[2] = -2;
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
  ASSERT_TRUE(strcmp(dims_of(b, s, 0, &err), "1,4") == 0);
  ASSERT_EQ(idx[2], 2);
  memset(x, 0, sizeof x);
  ASSERT_EQ(mossrt_run(s, in, out, &err), MOSSRT_OK);
  ASSERT_TRUE(strcmp(dims_of(b, s, 0, &err), "1,0") == 0);
  /* The length is read from the session's arena at the planned offset. */
  len = 3;
  memcpy(arena + 8, &len, 8);
  ASSERT_TRUE(strcmp(dims_of(b, s, 0, &err), "1,3") == 0);
  len = 5; /* above the bound: the code broke its promise */
  memcpy(arena + 8, &len, 8);
  ASSERT_EQ(mossrt_output_dims(s, 0, idx, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "target: output 0 ('idx'): the run left length 5 at axis 1, its "
                      "bound is 4");
  len = -1;
  memcpy(arena + 8, &len, 8);
  ASSERT_EQ(mossrt_output_dims(s, 0, idx, &err), MOSSRT_E_DEVICE);
  ASSERT_STR_CONTAINS(err.text, "length -1 at axis 1");
  /* The caller's mistakes. */
  ASSERT_EQ(mossrt_output_dims(s, 2, idx, &err), MOSSRT_E_ARG);
  ASSERT_STR_CONTAINS(err.text, "output 2, there are 2");
  ASSERT_EQ(mossrt_output_dims(s, 0, NULL, &err), MOSSRT_E_ARG);
  ASSERT_EQ(mossrt_output_dims(NULL, 0, idx, &err), MOSSRT_E_ARG);
  mossrt_session_destroy(s);
  mossrt_close(b);
  /* Two bounds: each output its own axis. */
  shape_init(&a, 2);
  ASSERT_EQ(write_bundle(&a.d, "shapes2.moss", NULL, NULL, path, sizeof path), MOSS_OK);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_output_bound_axis(b, 0), 1);
  ASSERT_EQ(mossrt_output_bound_axis(b, 1), 0);
  mossrt_close(b);
}

TEST(writer_rejects_bad_bounds) {
  shape_desc a;
  char path[1024];
  moss_ctx ctx;
  ASSERT_TRUE(setup());
  moss_ctx_init(&ctx, moss_allocator_libc());
  snprintf(path, sizeof path, "%s/never_shapes.moss", OUT);
  shape_init(&a, 1);
  a.bounds[0].axis = 2; /* idx has rank 2 */
  ASSERT_EQ(moss_bundle_write(&ctx, &a.d, path), MOSS_E_INTERNAL);
  ASSERT_STR_CONTAINS(ctx.last,
                      "internal: bundle: bounds[0].axis = 2, output 0 ('idx') has rank 2");
  shape_init(&a, 1);
  a.bounds[0].offset = 12;
  ASSERT_EQ(moss_bundle_write(&ctx, &a.d, path), MOSS_E_INTERNAL);
  ASSERT_STR_CONTAINS(ctx.last, "bounds[0].offset = 12 is not 8-aligned");
  shape_init(&a, 1);
  a.bounds[0].offset = 64; /* the arena is 64 bytes */
  ASSERT_EQ(moss_bundle_write(&ctx, &a.d, path), MOSS_E_INTERNAL);
  ASSERT_STR_CONTAINS(ctx.last, "bounds[0].offset = 64 is not 8-aligned or its 8 bytes are past "
                      "arena_bytes 64");
  shape_init(&a, 1);
  a.bounds[0].offset = UINT64_MAX - 7; /* aligned, and would wrap around */
  ASSERT_EQ(moss_bundle_write(&ctx, &a.d, path), MOSS_E_INTERNAL);
  ASSERT_STR_CONTAINS(ctx.last, "bounds[0].offset = 18446744073709551608");
  shape_init(&a, 1);
  a.bounds[0].output = 2;
  ASSERT_EQ(moss_bundle_write(&ctx, &a.d, path), MOSS_E_INTERNAL);
  ASSERT_STR_CONTAINS(ctx.last, "bounds[0].output = 2, there are 2 outputs");
  shape_init(&a, 2);
  a.bounds[1].output = 0;
  ASSERT_EQ(moss_bundle_write(&ctx, &a.d, path), MOSS_E_INTERNAL);
  ASSERT_STR_CONTAINS(ctx.last, "bounds[1].output = 0 is bounds[0]'s too");
  shape_init(&a, 1);
  a.d.bounds = NULL;
  ASSERT_EQ(moss_bundle_write(&ctx, &a.d, path), MOSS_E_INTERNAL);
  ASSERT_STR_CONTAINS(ctx.last, "a count is non-zero but its array is NULL");
  {
    FILE *f = fopen(path, "rb");
    ASSERT_TRUE(f == NULL); /* nothing was written */
  }
}

/* SHAPES damaged inside a written bundle, checksums repaired each time so
 * that the section's own checks must catch it. */
TEST(shapes_corrupt) {
  shape_desc a;
  char path[1024];
  uint8_t *g, *c;
  size_t n;
  moss_bundle_shapes *hd;
  moss_bundle_bound_rec *r;
  ASSERT_TRUE(setup());
  shape_init(&a, 2);
  ASSERT_EQ(write_bundle(&a.d, "shapes2.moss", &g, &n, path, sizeof path), MOSS_OK);
  ASSERT_EQ(sect(g, 6)->kind, MOSS_BUNDLE_SEC_SHAPES);
  EXPECT_OPEN(g, n, MOSSRT_OK, "");
#define DAMAGED(stmt, want)                                                                        \
  do {                                                                                             \
    c = malloc(n);                                                                                 \
    memcpy(c, g, n);                                                                               \
    hd = (moss_bundle_shapes *)(void *)payload_of(c, 6);                                           \
    r = (moss_bundle_bound_rec *)(void *)(hd + 1);                                                 \
    (void)hd, (void)r;                                                                             \
    stmt;                                                                                          \
    fix_crcs(c, n);                                                                                \
    EXPECT_OPEN(c, n, MOSSRT_E_FORMAT, want);                                                      \
    free(c);                                                                                       \
  } while (0)
  DAMAGED(r[0].axis = 2,
          "<memory>: invalid-model: bound 0: output 0 ('idx'): axis 2, its rank is 2");
  DAMAGED(r[1].axis = 1, "bound 1: output 1 ('y'): axis 1, its rank is 1");
  DAMAGED(r[0].offset = 12, "bound 0: output 0 ('idx'): length at arena offset 12 is outside the "
                            "arena (64 bytes) or not 8-byte aligned");
  DAMAGED(r[0].offset = 64, "bound 0: output 0 ('idx'): length at arena offset 64 is outside");
  DAMAGED(r[1].offset = UINT64_MAX - 7, "bound 1: output 1 ('y'): length at arena offset "
                                        "18446744073709551608 is outside");
  DAMAGED(r[0].output = 2, "bound 0: graph output 2, there are 2 outputs");
  DAMAGED(r[1].output = 0, "bound 1: output 0 ('idx') is bound 0's too");
  DAMAGED(hd->count = 3, "section 6 (shapes): 40 bytes does not match its bound and group counts");
  DAMAGED(hd->count = 0x10000002u, "section 6 (shapes): 40 bytes does not match its bound and group counts");
  DAMAGED(hd->count = 1, "section 6 (shapes): 40 bytes does not match its bound and group counts");
  DAMAGED(sect(c, 6)->size = 4, "section 6 (shapes): 4 bytes does not match its bound and group counts");
  DAMAGED(hd->ngroups = 1, "section 6 (shapes): 40 bytes does not match its bound and group counts");
  /* The section twice (the report made a second one), and a kind past it. */
  DAMAGED(sect(c, 5)->kind = MOSS_BUNDLE_SEC_SHAPES,
          "section 6 (shapes): a second shapes section (the first is section 5)");
  DAMAGED(sect(c, 6)->kind = 9, "section 6: unknown kind 9");
#undef DAMAGED
  /* Without the repair, the checksum catches the damage first. */
  c = malloc(n);
  memcpy(c, g, n);
  ((moss_bundle_bound_rec *)(void *)(payload_of(c, 6) + 8))->axis = 2;
  EXPECT_OPEN(c, n, MOSSRT_E_FORMAT, "section 6 (shapes): checksum mismatch");
  free(c);
  free(g);
}

/* ---- sequences and optionals (SHAPES' groups, runtime/src/shape) ---- */

/* The shapes bundle with groups in SHAPES (section 6), after its bound:
 * |ngroups| 1: the model's only output is a sequence of both graph
 * outputs; 2: output 0 an optional of idx, output 1 a sequence of y. */
TEST(groups_round_trip) {
  shape_desc a;
  moss_bundle_group gr[2] = {{0, 0, 2, 1, 0, 1}, {1, 2, 0, 1, 0, 1}};
  char path[1024];
  uint8_t *bytes;
  size_t n;
  mossrt_bundle *b;
  mossrt_error err;
  mossrt_group_info gi;
  ASSERT_TRUE(setup());
  shape_init(&a, 1);
  a.d.ngroups = 1;
  a.d.groups = gr;
  ASSERT_EQ(write_bundle(&a.d, "groups.moss", &bytes, &n, path, sizeof path), MOSS_OK);
  ASSERT_EQ(sect(bytes, 6)->kind, MOSS_BUNDLE_SEC_SHAPES);
  ASSERT_EQ(sect(bytes, 6)->size, 8 + 16 + 24);
  ASSERT_EQ(((moss_bundle_shapes *)(void *)payload_of(bytes, 6))->ngroups, 1);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_group_count(b), 1);
  ASSERT_EQ(mossrt_group_get(b, 0, &gi, &err), MOSSRT_OK);
  ASSERT_EQ(gi.position, 0);
  ASSERT_EQ(gi.first, 0);
  ASSERT_EQ(gi.count, 2);
  ASSERT_EQ(gi.kind, 1);
  ASSERT_EQ(gi.optional_of_sequence, 0);
  ASSERT_EQ(gi.absent, 0);
  ASSERT_EQ(gi.elem, 1);
  ASSERT_EQ(mossrt_group_get(b, 1, &gi, &err), MOSSRT_E_ARG);
  ASSERT_EQ(mossrt_group_count(NULL), 0);
  mossrt_close(b);
  free(bytes);
  /* An optional of one element, then an empty sequence after it. */
  gr[0] = (moss_bundle_group){0, 0, 1, 2, 0, 7};
  gr[1] = (moss_bundle_group){1, 1, 0, 1, 0, 1};
  a.d.ngroups = 2;
  ASSERT_EQ(write_bundle(&a.d, "groups2.moss", NULL, NULL, path, sizeof path), MOSS_OK);
  ASSERT_EQ(mossrt_open_file(path, &b, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_group_count(b), 2);
  ASSERT_EQ(mossrt_group_get(b, 1, &gi, &err), MOSSRT_OK);
  ASSERT_EQ(gi.position, 1);
  ASSERT_EQ(gi.count, 0);
  mossrt_close(b);
}

TEST(writer_rejects_bad_groups) {
  static const struct {
    uint32_t ngroups;
    moss_bundle_group g[2];
    const char *want;
  } cases[] = {
      {1, {{0, 0, 3, 1, 0, 1}}, "groups[0]: position 0, outputs 0 (+3)"},
      {1, {{0, 0, 2, 3, 0, 1}}, "groups[0]: kind 3, flags 0, count 2"},
      {1, {{0, 0, 2, 1, 1, 1}}, "groups[0]: kind 1, flags 1, count 2"},
      {1, {{0, 0, 1, 2, 2, 1}}, "groups[0]: kind 2, flags 2, count 1"},
      {1, {{0, 0, 2, 2, 0, 1}}, "groups[0]: kind 2, flags 0, count 2"},
      {2, {{0, 0, 2, 1, 0, 1}, {0, 1, 1, 1, 0, 1}}, "groups[1]: position 0, outputs 1 (+1)"},
      {2, {{0, 0, 2, 1, 0, 1}, {1, 1, 1, 1, 0, 1}}, "groups[1]: position 1, outputs 1 (+1)"},
      {1, {{2, 0, 1, 1, 0, 1}}, "groups[0].position = 2"},
  };
  shape_desc a;
  char path[1024];
  moss_ctx ctx;
  size_t i;
  ASSERT_TRUE(setup());
  moss_ctx_init(&ctx, moss_allocator_libc());
  snprintf(path, sizeof path, "%s/never_groups.moss", OUT);
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    shape_init(&a, 1);
    a.d.ngroups = cases[i].ngroups;
    a.d.groups = cases[i].g;
    ASSERT_EQ(moss_bundle_write(&ctx, &a.d, path), MOSS_E_INTERNAL);
    ASSERT_STR_CONTAINS(ctx.last, cases[i].want);
  }
}

/* SHAPES' groups damaged inside a written bundle, checksums repaired. */
TEST(groups_corrupt) {
  shape_desc a;
  moss_bundle_group gr[2] = {{0, 0, 1, 2, 0, 7}, {1, 1, 1, 1, 0, 1}};
  char path[1024];
  uint8_t *g, *c;
  size_t n;
  moss_bundle_shapes *hd;
  moss_bundle_group_rec *r;
  ASSERT_TRUE(setup());
  shape_init(&a, 1);
  a.d.ngroups = 2;
  a.d.groups = gr;
  ASSERT_EQ(write_bundle(&a.d, "groups3.moss", &g, &n, path, sizeof path), MOSS_OK);
  ASSERT_EQ(sect(g, 6)->kind, MOSS_BUNDLE_SEC_SHAPES);
  EXPECT_OPEN(g, n, MOSSRT_OK, "");
#define DAMAGED(stmt, want)                                                                        \
  do {                                                                                             \
    c = malloc(n);                                                                                 \
    memcpy(c, g, n);                                                                               \
    hd = (moss_bundle_shapes *)(void *)payload_of(c, 6);                                           \
    r = (moss_bundle_group_rec *)(void *)((moss_bundle_bound_rec *)(void *)(hd + 1) + 1);          \
    (void)hd, (void)r;                                                                             \
    stmt;                                                                                          \
    fix_crcs(c, n);                                                                                \
    EXPECT_OPEN(c, n, MOSSRT_E_FORMAT, want);                                                      \
    free(c);                                                                                       \
  } while (0)
  DAMAGED(r[0].kind = 0, "group 0: kind 0, flags 0 and 1 elements disagree");
  DAMAGED(r[1].flags = 1, "group 1: kind 1, flags 1 and 1 elements disagree");
  DAMAGED(r[0].flags = 2, "group 0: kind 2, flags 2 and 1 elements disagree");
  DAMAGED(r[1].first = 0, "group 1: outputs 0 (+1) at position 1: out of order, overlapping");
  DAMAGED(r[1].position = 0, "group 1: outputs 1 (+1) at position 0: out of order");
  DAMAGED(r[1].count = 0xffffffffu, "group 1: outputs 1 (+4294967295) at position 1");
  DAMAGED(r[1].first = 3, "past the 2 graph outputs");
  DAMAGED(r[1].position = 2, "group 1: position 2, the model has 2 outputs");
  DAMAGED(hd->ngroups = 3, "section 6 (shapes): 72 bytes does not match its bound and group counts");
  DAMAGED(hd->ngroups = 1, "section 6 (shapes): 72 bytes does not match its bound and group counts");
  DAMAGED(hd->ngroups = 0x40000002u, "section 6 (shapes): 72 bytes does not match its bound and group counts");
#undef DAMAGED
  free(g);
}

/* data/bundle/v3_plugin_shapes.moss: plug_only_init() with output 0 bounded
 * along axis 1, its length at arena+16, written by this writer. A version 3
 * bundle with the SHAPES section (added within version 3): it must keep
 * opening, and the writer must keep writing it byte for byte. Its first
 * six sections are v3_plugin.moss's, 64 bytes later (the table, one entry
 * longer, ends at 544: padded to 576), then SHAPES: 8 + 16 = 24 bytes at
 * 1408. Also in the fuzzer's seed corpus (tests/fuzz/make_corpus.py
 * copies data/bundle). */
TEST(format_v3_shapes_golden) {
  static const moss_bundle_bound bound = {0, 1, 16};
  const char *golden = MOSS_TEST_DATA_DIR "/bundle/v3_plugin_shapes.moss";
  mossrt_options o;
  mossrt_bundle *b;
  mossrt_error err;
  plug_desc p;
  uint8_t *want, *got, *plain;
  size_t nwant, ngot, nplain;
  char path[1024];
  uint32_t i;
  ASSERT_TRUE(setup());
  plug_only_init(&p);
  p.d.nbounds = 1;
  p.d.bounds = &bound;
  ASSERT_EQ(write_bundle(&p.d, "v3_plugin_shapes.moss", &got, &ngot, path, sizeof path), MOSS_OK);
  want = read_all(golden, &nwant);
  ASSERT_TRUE(want != NULL);
  ASSERT_EQ(nwant, 1472);
  ASSERT_EQ(ngot, nwant);
  ASSERT_TRUE(memcmp(got, want, nwant) == 0);
  free(got);
  ASSERT_EQ(hdr(want)->section_count, 7);
  ASSERT_EQ(sect(want, 6)->kind, MOSS_BUNDLE_SEC_SHAPES);
  ASSERT_EQ(sect(want, 6)->offset, 1408);
  ASSERT_EQ(sect(want, 6)->size, 24);
  /* The sections before it are v3_plugin.moss's, byte for byte. */
  plain = read_all(MOSS_TEST_DATA_DIR "/bundle/v3_plugin.moss", &nplain);
  ASSERT_TRUE(plain != NULL && nplain == 1344);
  ASSERT_TRUE(memcmp(want + 576, plain + 512, 1344 - 512) == 0);
  for (i = 0; i < 6; i++) {
    moss_bundle_section ws = *sect(want, i), ps = *sect(plain, i);
    ASSERT_EQ(ws.offset, ps.offset + 64);
    ws.offset = ps.offset;
    ASSERT_TRUE(memcmp(&ws, &ps, sizeof ws) == 0);
  }
  free(plain);
  { /* SHAPES: count 1, reserved 0, then {output 0, axis 1, offset 16}. */
    static const uint8_t rec[24] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 16};
    ASSERT_TRUE(memcmp(want + 1408, rec, 24) == 0);
  }
  memset(&o, 0, sizeof o);
  o.flags = MOSSRT_OPEN_VERIFY_ONLY;
  ASSERT_EQ(mossrt_open_file_ex(golden, &o, &b, &err), MOSSRT_OK);
  ASSERT_EQ(mossrt_output_bound_axis(b, 0), 1);
  mossrt_close(b);
  free(want);
}

/* Leaves a few bundles for the fuzzer's seed corpus. */
TEST(seed_corpus) {
  char path[1024];
  FILE *f;
  plug_desc p;
  ASSERT_TRUE(load_add());
  snprintf(path, sizeof path, "%s/corpus/add.moss", OUT);
  f = fopen(path, "wb");
  ASSERT_TRUE(f != NULL);
  fwrite(g_add, 1, g_add_n, f);
  fclose(f);
  plug_only_init(&p);
  ASSERT_EQ(write_bundle(&p.d, "corpus/plug.moss", NULL, NULL, path, sizeof path), MOSS_OK);
  {
    shape_desc a;
    shape_init(&a, 2);
    ASSERT_EQ(write_bundle(&a.d, "corpus/shapes.moss", NULL, NULL, path, sizeof path), MOSS_OK);
  }
  {
    shape_desc a;
    static const moss_bundle_group gr[2] = {{0, 0, 1, 2, 0, 7}, {1, 1, 1, 1, 0, 1}};
    shape_init(&a, 1);
    a.d.ngroups = 2;
    a.d.groups = gr;
    ASSERT_EQ(write_bundle(&a.d, "corpus/groups.moss", NULL, NULL, path, sizeof path), MOSS_OK);
  }
}

TEST_MAIN()
