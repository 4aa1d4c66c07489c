/* fuzz_npu_blob.c - libFuzzer target for the npu-systolic plugin's runtime
 * side (plugins/npu-systolic: blob.c checks a blob, sim.c simulates its
 * command stream). The plugin's sources are linked into the fuzzer, built
 * with the same instrumentation, and reached through the exported table,
 * moss_plugin_device_get(), as libmossrt reaches them: the input is a blob
 * as the runtime would find it in a bundle's BLOB section. load() must
 * accept it or refuse it with a message, never crash; an accepted blob
 * runs on zeroed input and output buffers of the sizes its header states
 * (blob.h), and must end, with success or a message, within the fuzzer's
 * -timeout; a second run on the same buffers must write the same outputs
 * (a run reads no state the last one left); the counters must name one
 * entry per layer. ASan, UBSan and LeakSanitizer watch the rest.
 * Seeds: tests/fuzz/corpus/npu_blob, blobs of real models
 * (tests/fuzz/make_npu_corpus.py). Build and run: tests/fuzz/README.md. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "moss_plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const moss_plugin_device *moss_plugin_device_get(void);

#define ERRCAP 256
/* Buffers larger than this are not allocated: such a blob is loaded and
 * unloaded but not run (its header may state up to 4 GiB per buffer). */
#define RUN_CAP ((uint64_t)64 << 20)

static void stop(const char *what, const char *err) {
  fprintf(stderr, "fuzz_npu_blob: %s%s%s\n", what, err ? ": " : "", err ? err : "");
  __builtin_trap();
}

/* An error message must be a NUL-terminated, non-empty string within ERRCAP. */
static void check_msg(const char *what, const char *err) {
  if (memchr(err, 0, ERRCAP) == NULL) stop(what, "message not NUL-terminated within errcap");
  if (err[0] == 0) stop(what, "failed without a message");
}

/* The host buffer sizes of an accepted blob, from its header. 0 when they
 * are too large to run here. */
static int io_sizes(const uint8_t *b, size_t n, uint32_t *ni, uint32_t *no, uint64_t *sizes,
                    uint32_t cap) {
  uint32_t i;
  uint64_t total = 0;
  if (n < NPU_HEADER_BYTES) stop("load() accepted a blob shorter than the header", NULL);
  *ni = npu_get_u32(b + 88);
  *no = npu_get_u32(b + 92);
  if ((uint64_t)*ni + *no > cap || n < NPU_HEADER_BYTES + 8 * ((uint64_t)*ni + *no)) return 0;
  for (i = 0; i < *ni + *no; i++) {
    sizes[i] = npu_get_u64(b + NPU_HEADER_BYTES + 8 * i);
    total += sizes[i];
    if (sizes[i] > RUN_CAP || total > RUN_CAP) return 0;
  }
  return 1;
}

#define MAX_IO 64

/* More MACs than |c|'s cycles on the whole array could do. */
static int over_peak(const moss_plugin_counters *c) {
  return c->peak_macs_per_cycle && c->macs / c->peak_macs_per_cycle > c->cycles;
}

static void one(const uint8_t *data, size_t size) {
  const moss_plugin_device *d = moss_plugin_device_get();
  void *dev = NULL, *prog = NULL;
  char err[ERRCAP];
  uint8_t *blob;
  uint64_t sizes[MAX_IO];
  uint32_t ni = 0, no = 0, i, nlayers;
  const moss_plugin_counters *cs = NULL;
  uint32_t nc = 0;

  if (!d || d->abi_version != MOSS_PLUGIN_ABI_VERSION || d->struct_size != sizeof *d || !d->open ||
      !d->load || !d->run || !d->unload || !d->close)
    stop("bad device table", NULL);
  /* The blob in a buffer of its own size, so that ASan sees any read past it. */
  blob = (uint8_t *)malloc(size ? size : 1);
  if (!blob) abort();
  if (size) memcpy(blob, data, size);

  memset(err, 0x55, sizeof err);
  if (d->open(&dev, err, ERRCAP) != 0) stop("open() failed", err);
  memset(err, 0x55, sizeof err);
  if (d->load(dev, blob, size, &prog, err, ERRCAP) != 0) {
    check_msg("load()", err);
    d->close(dev);
    free(blob);
    return;
  }
  nlayers = npu_get_u32(blob + 96);
  if (d->counters) { /* before any run: one entry per layer, all zero */
    memset(err, 0x55, sizeof err);
    if (d->counters(dev, prog, &cs, &nc, err, ERRCAP) != 0) check_msg("counters()", err);
    else if (nc != nlayers) stop("counters() before a run: not one entry per layer", NULL);
    else
      for (i = 0; i < nc; i++)
        if (!cs[i].layer || !cs[i].op_type || cs[i].cycles || cs[i].macs)
          stop("counters() before a run: a layer without a name, or not zero", NULL);
  }
  if (io_sizes(blob, size, &ni, &no, sizes, MAX_IO)) {
    void *bufs[MAX_IO];
    uint8_t *first = NULL;
    uint64_t outbytes = 0;
    int rc, k;
    for (i = 0; i < ni + no; i++) {
      /* 64-byte aligned, as the runtime's */
      bufs[i] = aligned_alloc(64, (size_t)((sizes[i] + 63) / 64 * 64 + 64));
      if (!bufs[i]) abort();
      memset(bufs[i], 0, (size_t)sizes[i]);
      if (i >= ni) outbytes += sizes[i];
    }
    first = (uint8_t *)malloc((size_t)outbytes + 1);
    if (!first) abort();
    for (k = 0; k < 2; k++) {
      uint64_t at = 0;
      for (i = ni; i < ni + no; i++) memset(bufs[i], 0, (size_t)sizes[i]);
      memset(err, 0x55, sizeof err);
      rc = d->run(dev, prog, (const void *const *)bufs, bufs + ni, err, ERRCAP);
      if (rc != 0) {
        check_msg("run()", err);
        break;
      }
      for (i = ni; i < ni + no; i++) {
        if (k == 0) memcpy(first + at, bufs[i], (size_t)sizes[i]);
        else if (memcmp(first + at, bufs[i], (size_t)sizes[i]) != 0)
          stop("two runs on the same inputs wrote different outputs", NULL);
        at += sizes[i];
      }
      if (d->counters) {
        memset(err, 0x55, sizeof err);
        if (d->counters(dev, prog, &cs, &nc, err, ERRCAP) != 0) check_msg("counters()", err);
        else if (nc != nlayers) stop("counters() after a run: not one entry per layer", NULL);
        else
          for (i = 0; i < nc; i++)
            if (!cs[i].layer || !cs[i].op_type || strlen(cs[i].layer) > 255 || over_peak(&cs[i]))
              stop("counters() after a run: no name, or more MACs than the array can do", NULL);
      }
    }
    free(first);
    for (i = 0; i < ni + no; i++) free(bufs[i]);
  }
  d->unload(dev, prog);
  d->close(dev);
  free(blob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  one(data, size);
  return 0;
}
