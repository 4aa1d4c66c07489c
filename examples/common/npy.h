/* npy.h - reads the data of a .npy file, for the examples' programs (a
 * header of static functions so that each example stays one file to build).
 * Needs <stdio.h>, <stdlib.h> and <string.h>. */
#ifndef MOSS_EXAMPLES_NPY_H
#define MOSS_EXAMPLES_NPY_H

/* Reads a little-endian .npy file's data; returns its element count of
 * |elem| bytes each, or -1. */
static long read_npy(const char *path, size_t elem, void **out) {
  FILE *f = fopen(path, "rb");
  unsigned char pre[10];
  long size, hlen, n;
  if (!f) return -1;
  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] != 1) {
    fclose(f);
    return -1;
  }
  hlen = pre[8] | (long)pre[9] << 8;
  fseek(f, 0, SEEK_END);
  size = ftell(f) - 10 - hlen;
  fseek(f, 10 + hlen, SEEK_SET);
  n = size / (long)elem;
  *out = malloc((size_t)size + 1);
  if (!*out || fread(*out, 1, (size_t)size, f) != (size_t)size) n = -1;
  fclose(f);
  return n;
}

#endif
