/* fuzz.h - what the compiler's libFuzzer targets share (tests/fuzz/README.md):
 * an allocator that checks the library's half of the moss_allocator contract
 * (every free and realloc names the size the block was allocated with,
 * nothing is left allocated when a context's objects are destroyed) and that
 * refuses any single block above FUZZ_ALLOC_CAP, so that an input asking for
 * gigabytes takes the code's out-of-memory path instead of the machine's
 * memory; a diagnostic sink that refuses the category 'internal' (our
 * bug); the check every failure must pass (reported, with an expected
 * status); a private temporary folder for inputs the code under test reads
 * from a path. A broken rule stops the fuzzer with __builtin_trap(), which
 * libFuzzer reports as a crash. */
#ifndef MOSS_FUZZ_H
#define MOSS_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

#define FUZZ_ALLOC_CAP ((size_t)64 << 20)

typedef struct fuzz_heap {
  size_t live_blocks, live_bytes;
} fuzz_heap;

/* Each block is preceded by 16 bytes holding its size. */
static void *fuzz_realloc(void *user, void *ptr, size_t old_size, size_t new_size) {
  fuzz_heap *h = (fuzz_heap *)user;
  unsigned char *p = ptr ? (unsigned char *)ptr - 16 : NULL;
  if (p) {
    size_t had;
    memcpy(&had, p, sizeof had);
    if (had != old_size) {
      fprintf(stderr, "fuzz: block of %zu bytes freed or resized as %zu bytes\n", had, old_size);
      __builtin_trap();
    }
  } else if (old_size != 0) {
    fprintf(stderr, "fuzz: NULL given with old size %zu\n", old_size);
    __builtin_trap();
  }
  if (new_size == 0) {
    if (p) {
      h->live_blocks--;
      h->live_bytes -= old_size;
      free(p);
    }
    return NULL;
  }
  if (new_size > FUZZ_ALLOC_CAP) return NULL;
  p = (unsigned char *)realloc(p, new_size + 16);
  if (!p) return NULL;
  memcpy(p, &new_size, sizeof new_size);
  if (!ptr) h->live_blocks++;
  h->live_bytes += new_size - old_size;
  return p + 16;
}

static moss_allocator fuzz_allocator(fuzz_heap *h) {
  moss_allocator a;
  memset(h, 0, sizeof *h);
  a.fn = fuzz_realloc;
  a.user = h;
  return a;
}

/* Traps unless everything allocated through |h| has been freed. */
static void fuzz_heap_check_empty(const fuzz_heap *h) {
  if (h->live_blocks || h->live_bytes) {
    fprintf(stderr, "fuzz: %zu blocks (%zu bytes) still allocated\n", h->live_blocks,
            h->live_bytes);
    __builtin_trap();
  }
}

/* Every diagnostic passes here: 'internal' means our bug, so it stops the
 * fuzzer where it is reported, with that stack. */
static void fuzz_sink(void *user, moss_status code, const char *msg) {
  (void)user;
  if (code == MOSS_E_INTERNAL || code == MOSS_OK) {
    fprintf(stderr, "fuzz: diagnostic of status %d: %s\n", (int)code, msg);
    __builtin_trap();
  }
}

/* A context whose allocations go through |h| and whose diagnostics through
 * fuzz_sink, with the IR verifier on after every pass. */
static void fuzz_ctx_init(moss_ctx *ctx, fuzz_heap *h) {
  moss_ctx_init(ctx, fuzz_allocator(h));
  ctx->sink = fuzz_sink;
  ctx->debug = 1;
}

/* A failure of status |st| must have been reported (the message has the
 * diagnostic shape by construction: compiler/base/diag.c), and |st| must be
 * one of |allowed| (terminated by MOSS_OK). */
static void fuzz_check_failure(const moss_ctx *ctx, moss_status st, const moss_status *allowed) {
  int ok = 0;
  if (st == MOSS_OK) return;
  for (; *allowed != MOSS_OK; allowed++) ok |= *allowed == st;
  if (!ok || ctx->nerrors == 0) {
    fprintf(stderr, "fuzz: status %d (%s), %d messages, last: %s\n", (int)st,
            moss_status_category(st), ctx->nerrors, ctx->last);
    __builtin_trap();
  }
}

/* A private folder under $TMPDIR (else /tmp), removed at exit, and the path
 * of |name| in it. */
static char fuzz_dir[512];
static void fuzz_dir_remove(void) {
  char cmd[600];
  if (!fuzz_dir[0]) return;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir);
  if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir);
}
static const char *fuzz_path(const char *name) {
  static char path[600];
  if (!fuzz_dir[0]) {
    const char *tmp = getenv("TMPDIR");
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/moss-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(fuzz_dir)) {
      perror("fuzz: mkdtemp");
      abort();
    }
    atexit(fuzz_dir_remove);
  }
  snprintf(path, sizeof path, "%s/%s", fuzz_dir, name);
  return path;
}

/* Writes |size| bytes to |path|; aborts if it cannot (not a finding). */
static void fuzz_write(const char *path, const uint8_t *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
    perror(path);
    abort();
  }
}

#endif
