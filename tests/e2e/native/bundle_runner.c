/* bundle_runner.c - runs a bundle once through libmossrt, for the
 * native-code tests: built with each architecture's cross compiler together
 * with libmossrt's sources and run under qemu-user, so bundles carrying
 * AArch64 or RISC-V objects go through the runtime's own ELF loader there.
 *
 *   bundle_runner BUNDLE.moss IN0.bin ... -- OUT0.bin ...
 *
 * Inputs are raw tensors of the sizes the bundle states; outputs are
 * written raw, a bounded one (docs/dynamic-shapes.md) in the shape the run
 * gave. Exit 0 on success; the runtime's message on failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mossrt.h"

int main(int argc, char **argv) {
  mossrt_bundle *b;
  mossrt_session *s;
  mossrt_error err;
  const void *in[64];
  void *out[64];
  uint32_t i, nin, nout;
  int a = 2;
  if (argc < 2) return 2;
  if (mossrt_open_file(argv[1], &b, &err) != MOSSRT_OK) return fprintf(stderr, "%s\n", err.text), 1;
  nin = mossrt_input_count(b);
  nout = mossrt_output_count(b);
  if (nin > 64 || nout > 64) return 2;
  for (i = 0; i < nin; i++, a++) {
    mossrt_tensor_info ti;
    FILE *f;
    void *p;
    if (a >= argc || mossrt_input_info(b, i, &ti) != MOSSRT_OK) return 2;
    p = calloc(1, ti.nbytes + 64);
    f = fopen(argv[a], "rb");
    if (!p || !f || fread(p, 1, ti.nbytes, f) != ti.nbytes) return fprintf(stderr, "bad input %s\n", argv[a]), 2;
    fclose(f);
    in[i] = p;
  }
  if (a >= argc || strcmp(argv[a], "--") != 0) return 2;
  for (i = 0; i < nout; i++) {
    mossrt_tensor_info ti;
    if (mossrt_output_info(b, i, &ti) != MOSSRT_OK) return 2;
    out[i] = calloc(1, ti.nbytes + 64);
  }
  if (mossrt_session_create(b, NULL, 0, &s, &err) != MOSSRT_OK ||
      mossrt_run(s, in, out, &err) != MOSSRT_OK)
    return fprintf(stderr, "%s\n", err.text), 1;
  for (i = 0, a++; i < nout && a < argc; i++, a++) {
    mossrt_tensor_info ti;
    int64_t dims[8], bound = 1, run = 1;
    size_t nbytes;
    int32_t k;
    FILE *f = fopen(argv[a], "wb");
    /* a bounded output: the bytes of the shape this run gave (compact) */
    if (mossrt_output_info(b, i, &ti) != MOSSRT_OK || ti.rank > 8 ||
        mossrt_output_dims(s, i, dims, &err) != MOSSRT_OK)
      return 3;
    for (k = 0; k < ti.rank; k++) bound *= ti.dims[k], run *= dims[k];
    nbytes = bound ? (size_t)(ti.nbytes / (uint64_t)bound * (uint64_t)run) : 0;
    if (!f || fwrite(out[i], 1, nbytes, f) != nbytes) return 3;
    fclose(f);
  }
  mossrt_session_destroy(s);
  mossrt_close(b);
  return 0;
}
