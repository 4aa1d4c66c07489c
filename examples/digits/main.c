/* main.c - the digits example as a product engineer would embed it: the
 * model is compiled ahead of time by moss into model.h / model.c (built
 * into this program, no runtime library, no malloc in the model), and run
 * on sklearn's digits test set one image at a time. Prints the accuracy and
 * the median latency of one inference.
 *   digits X_TEST.npy Y_TEST.npy */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/npy.h"
#include "model.h"

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  static unsigned char arena[MODEL_ARENA_BYTES + 64] __attribute__((aligned(64)));
  float *x, logits[MODEL_OUT0_NUMEL];
  long long *y;
  double *times;
  long nx, ny, i;
  int correct = 0, k;
  if (argc != 3) {
    fprintf(stderr, "usage: %s X_TEST.npy Y_TEST.npy\n", argv[0]);
    return 2;
  }
  nx = read_npy(argv[1], sizeof(float), (void **)&x);
  ny = read_npy(argv[2], sizeof(long long), (void **)&y);
  if (nx < 0 || ny <= 0 || nx != ny * (long)MODEL_IN0_NUMEL) {
    fprintf(stderr, "%s, %s: not the digits test set for this model\n", argv[1], argv[2]);
    return 1;
  }
  times = malloc(sizeof(double) * (size_t)ny);
  for (i = 0; i < ny; i++) {
    struct timespec t0, t1;
    int best = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    model_run(x + i * (long)MODEL_IN0_NUMEL, logits, arena);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    times[i] = (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-3;
    for (k = 1; k < (int)MODEL_OUT0_NUMEL; k++)
      if (logits[k] > logits[best]) best = k;
    correct += best == y[i];
  }
  qsort(times, (size_t)ny, sizeof(double), cmp);
  printf("accuracy %.6f (%d/%ld), latency median %.2f us per image, arena %u bytes\n",
         (double)correct / (double)ny, correct, ny, times[ny / 2], (unsigned)MODEL_ARENA_BYTES);
  free(x);
  free(y);
  free(times);
  return 0;
}
