/* harness.c - a small program that links an object from `moss compile
 * --emit obj --name model` and runs it once: the native-code tests build it
 * with a cross compiler and run it under qemu-user, so the object runs with
 * no moss, no libmossrt and no loader of ours around it.
 *
 *   harness ARENA_BYTES IN0.bin ... -- OUT0.bin:NBYTES ...
 *
 * Inputs are raw little-endian tensors; each output is written raw. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int model_run_v(const void *const *in, void *const *out, void *arena);

static void *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  long n;
  void *p;
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  p = malloc((size_t)n + 64);
  if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
    free(p);
    p = NULL;
  }
  fclose(f);
  return p;
}

int main(int argc, char **argv) {
  const void *in[64];
  void *out[64], *arena;
  const char *opath[64];
  size_t osize[64];
  int i = 2, nin = 0, nout = 0;
  if (argc < 2) return 2;
  arena = aligned_alloc(64, ((size_t)strtoull(argv[1], NULL, 10) + 127) / 64 * 64);
  for (; i < argc && strcmp(argv[i], "--") && nin < 64; i++)
    if (!(in[nin++] = read_all(argv[i]))) return fprintf(stderr, "cannot read %s\n", argv[i]), 2;
  for (i++; i < argc && nout < 64; i++) {
    char *colon = strrchr(argv[i], ':');
    if (!colon) return 2;
    *colon = 0;
    opath[nout] = argv[i];
    osize[nout] = (size_t)strtoull(colon + 1, NULL, 10);
    out[nout] = calloc(1, osize[nout] + 64);
    nout++;
  }
  if (model_run_v(in, out, arena) != 0) return 3;
  for (i = 0; i < nout; i++) {
    FILE *f = fopen(opath[i], "wb");
    if (!f || fwrite(out[i], 1, osize[i], f) != osize[i]) return 4;
    fclose(f);
  }
  return 0;
}
