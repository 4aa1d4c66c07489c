/* main.c - loads the digits bundle with libmossrt and runs it on the
 * digits test set one image at a time, printing the accuracy: what a
 * program that ships a .moss file next to itself does.
 *   run_bundle X_TEST.npy Y_TEST.npy [BUNDLE.moss]
 * The bundle defaults to the one the build compiled (MOSS_BUNDLE_DIGITS). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mossrt.h>

#include "../common/npy.h"

#ifndef MOSS_BUNDLE_DIGITS
#define MOSS_BUNDLE_DIGITS "digits.moss"
#endif

int main(int argc, char **argv) {
  const char *path = argc > 3 ? argv[3] : MOSS_BUNDLE_DIGITS;
  mossrt_bundle *b = NULL;
  mossrt_session *s = NULL;
  mossrt_tensor_info in, out;
  mossrt_error err;
  float *x = NULL, *logits = NULL;
  long long *y = NULL;
  long nx, ny, i, numel_in, numel_out, k;
  int correct = 0, rc = 1;
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: %s X_TEST.npy Y_TEST.npy [BUNDLE.moss]\n", argv[0]);
    return 2;
  }
  if (mossrt_open_file(path, &b, &err) != MOSSRT_OK ||
      mossrt_session_create(b, NULL, 0, &s, &err) != MOSSRT_OK) {
    fprintf(stderr, "%s\n", err.text);
    goto done;
  }
  mossrt_input_info(b, 0, &in);
  mossrt_output_info(b, 0, &out);
  if (mossrt_input_count(b) != 1 || in.dtype != 1 || out.dtype != 1) {
    fprintf(stderr, "%s: expected one float input and a float output\n", path);
    goto done;
  }
  numel_in = (long)(in.nbytes / sizeof(float));
  numel_out = (long)(out.nbytes / sizeof(float));
  nx = read_npy(argv[1], sizeof(float), (void **)&x);
  ny = read_npy(argv[2], sizeof(long long), (void **)&y);
  if (nx < 0 || ny <= 0 || nx != ny * numel_in || !(logits = malloc(out.nbytes))) {
    fprintf(stderr, "%s, %s: not the digits test set for this model\n", argv[1], argv[2]);
    goto done;
  }
  for (i = 0; i < ny; i++) {
    const void *ins[1];
    void *outs[1];
    long best = 0;
    ins[0] = x + i * numel_in;
    outs[0] = logits;
    if (mossrt_run(s, ins, outs, &err) != MOSSRT_OK) {
      fprintf(stderr, "%s\n", err.text);
      goto done;
    }
    for (k = 1; k < numel_out; k++)
      if (logits[k] > logits[best]) best = k;
    correct += best == y[i];
  }
  printf("accuracy %.6f (%d/%ld), target %s, arena %llu bytes\n", (double)correct / (double)ny,
         correct, ny, mossrt_target(b), (unsigned long long)mossrt_arena_bytes(b));
  rc = 0;
done:
  mossrt_session_destroy(s);
  mossrt_close(b);
  free(x);
  free(y);
  free(logits);
  return rc;
}
