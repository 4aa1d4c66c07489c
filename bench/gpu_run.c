/* gpu_run.c - runs a moss bundle with libmossrt alone (no compiler), for a
 * machine that has a GPU and its driver but not moss: tests/e2e/check_gpu.py
 * drives it there on the bundles test_ptx.py and run_node_tests.py export.
 *   gpu_run BUNDLE OUT_DIR ITERATIONS IN0.bin [IN1.bin ...]
 * Each input file holds a graph input's raw bytes (exactly its size); one
 * run writes output i to OUT_DIR/out<i>.bin; then ITERATIONS more runs are
 * timed and "median_us <t>" printed (the median of one run's wall time,
 * host copies included). Any error prints libmossrt's message; exit 1. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mossrt.h"

static int die(const char *what, const mossrt_error *err) {
  fprintf(stderr, "gpu_run: %s: %s\n", what, err ? err->text : "");
  return 1;
}

/* Input |i| ('name', |want| bytes) from |path| into a 64-byte aligned
 * buffer; NULL (and a message) when it cannot be read or is another size. */
static void *read_input(const char *path, uint32_t i, const char *name, size_t want) {
  FILE *f = fopen(path, "rb");
  void *p = NULL;
  long n = -1;
  if (!f) {
    fprintf(stderr, "gpu_run: %s: cannot open input %u ('%s')\n", path, i, name);
    return NULL;
  }
  if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
  if (n < 0 || fseek(f, 0, SEEK_SET) != 0)
    fprintf(stderr, "gpu_run: %s: cannot read input %u ('%s')\n", path, i, name);
  else if ((size_t)n != want)
    fprintf(stderr, "gpu_run: %s: %ld bytes, input %u ('%s') is %zu bytes\n", path, n, i, name,
            want);
  else if (!(p = aligned_alloc(64, (want + 63) / 64 * 64 + 64)))
    fprintf(stderr, "gpu_run: out of memory\n");
  else if (fread(p, 1, want, f) != want) {
    fprintf(stderr, "gpu_run: %s: cannot read input %u ('%s')\n", path, i, name);
    free(p);
    p = NULL;
  }
  fclose(f);
  return p;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  mossrt_bundle *b = NULL;
  mossrt_session *s = NULL;
  mossrt_error err;
  void **in = NULL, **out = NULL;
  double *t = NULL;
  uint32_t ni, no, i;
  long iters;
  char *end;
  int rc = 1;
  if (argc < 4) {
    fprintf(stderr, "usage: gpu_run BUNDLE OUT_DIR ITERATIONS IN0.bin [IN1.bin ...]\n");
    return 2;
  }
  iters = strtol(argv[3], &end, 10);
  if (end == argv[3] || *end || iters < 0 || iters > 100000000) {
    fprintf(stderr, "gpu_run: ITERATIONS '%s' is not a count (0 .. 100000000)\n", argv[3]);
    return 2;
  }
  if (mossrt_open_file(argv[1], &b, &err) != MOSSRT_OK) return die("open", &err);
  ni = mossrt_input_count(b);
  no = mossrt_output_count(b);
  if ((uint32_t)(argc - 4) != ni) {
    fprintf(stderr, "gpu_run: the bundle has %u inputs, %d files given\n", ni, argc - 4);
    goto done;
  }
  in = calloc(ni + 1, sizeof *in);
  out = calloc(no + 1, sizeof *out);
  t = calloc((size_t)(iters > 0 ? iters : 1), sizeof *t);
  if (!in || !out || !t) {
    fprintf(stderr, "gpu_run: out of memory\n");
    goto done;
  }
  for (i = 0; i < ni; i++) {
    mossrt_tensor_info ti;
    if (mossrt_input_info(b, i, &ti) != MOSSRT_OK ||
        !(in[i] = read_input(argv[4 + i], i, ti.name, (size_t)ti.nbytes)))
      goto done;
  }
  for (i = 0; i < no; i++) {
    mossrt_tensor_info ti;
    if (mossrt_output_info(b, i, &ti) != MOSSRT_OK ||
        !(out[i] = aligned_alloc(64, (ti.nbytes + 63) / 64 * 64 + 64))) {
      fprintf(stderr, "gpu_run: out of memory\n");
      goto done;
    }
  }
  if (mossrt_session_create(b, NULL, 0, &s, &err) != MOSSRT_OK) {
    rc = die("session", &err);
    goto done;
  }
  if (mossrt_run(s, (const void *const *)in, out, &err) != MOSSRT_OK) {
    rc = die("run", &err);
    goto done;
  }
  for (i = 0; i < no; i++) {
    mossrt_tensor_info ti;
    char path[4096];
    FILE *f;
    mossrt_output_info(b, i, &ti);
    snprintf(path, sizeof path, "%s/out%u.bin", argv[2], i);
    if (!(f = fopen(path, "wb")) || fwrite(out[i], 1, (size_t)ti.nbytes, f) != ti.nbytes) {
      fprintf(stderr, "gpu_run: cannot write %s\n", path);
      if (f) fclose(f);
      goto done;
    }
    fclose(f);
  }
  for (i = 0; i < (uint64_t)iters; i++) {
    struct timespec a, z;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (mossrt_run(s, (const void *const *)in, out, &err) != MOSSRT_OK) {
      rc = die("run", &err);
      goto done;
    }
    clock_gettime(CLOCK_MONOTONIC, &z);
    t[i] = (double)(z.tv_sec - a.tv_sec) * 1e6 + (double)(z.tv_nsec - a.tv_nsec) * 1e-3;
  }
  if (iters > 0) {
    qsort(t, (size_t)iters, sizeof *t, cmp);
    printf("median_us %.2f\n", iters % 2 ? t[iters / 2] : (t[iters / 2 - 1] + t[iters / 2]) / 2);
  }
  rc = 0;
done:
  mossrt_session_destroy(s);
  for (i = 0; in && i < ni; i++) free(in[i]);
  for (i = 0; out && i < no; i++) free(out[i]);
  free(in);
  free(out);
  free(t);
  mossrt_close(b);
  return rc;
}
