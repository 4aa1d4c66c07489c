/* util.c - hashing (FNV-1a for tables, SHA-256 for the banner of generated
 * code) and whole-file input/output through the context's allocator. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base.h"

uint64_t moss_hash64(const void *data, size_t n, uint64_t seed) {
  const uint8_t *p = data;
  uint64_t h = 1469598103934665603ull ^ seed;
  size_t i;
  for (i = 0; i < n; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(uint32_t h[8], const uint8_t *p) {
  uint32_t w[64], a, b, c, d, e, f, g, hh, t1, t2;
  int i;
  for (i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
           p[4 * i + 3];
  for (i = 16; i < 64; i++) {
    uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (i = 0; i < 64; i++) {
    t1 = hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
    t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

void moss_sha256_hex(const void *data, size_t n, char out_hex[65]) {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  const uint8_t *p = data;
  uint8_t tail[128];
  size_t full = n / 64 * 64, rest = n - full, tl, i;
  uint64_t bits = (uint64_t)n * 8;
  for (i = 0; i < full; i += 64) sha_block(h, p + i);
  memset(tail, 0, sizeof tail);
  if (rest) memcpy(tail, p + full, rest);
  tail[rest] = 0x80;
  tl = rest + 1 + 8 <= 64 ? 64 : 128;
  for (i = 0; i < 8; i++) tail[tl - 1 - i] = (uint8_t)(bits >> (8 * i));
  sha_block(h, tail);
  if (tl == 128) sha_block(h, tail + 64);
  for (i = 0; i < 8; i++) snprintf(out_hex + 8 * i, 9, "%08x", (unsigned)h[i]);
}

moss_status moss_file_read(moss_ctx *ctx, const char *path, uint8_t **out_data, size_t *out_size) {
  FILE *f;
  long len;
  uint8_t *p;
  *out_data = NULL;
  *out_size = 0;
  f = fopen(path, "rb");
  if (!f) return moss_fail(ctx, MOSS_E_IO, NULL, "cannot open '%s': %s", path, strerror(errno));
  if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return moss_fail(ctx, MOSS_E_IO, NULL, "cannot read '%s' (not a regular file?)", path);
  }
  p = moss_alloc(ctx, (size_t)len + 1);
  if (!p) {
    fclose(f);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "%ld bytes for '%s'", len, path);
  }
  if (len && fread(p, 1, (size_t)len, f) != (size_t)len) {
    fclose(f);
    moss_free(ctx, p, (size_t)len + 1);
    return moss_fail(ctx, MOSS_E_IO, NULL, "short read on '%s'", path);
  }
  fclose(f);
  *out_data = p;
  *out_size = (size_t)len;
  return MOSS_OK;
}

moss_status moss_file_write(moss_ctx *ctx, const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f) return moss_fail(ctx, MOSS_E_IO, NULL, "cannot create '%s': %s", path, strerror(errno));
  if ((size && fwrite(data, 1, size, f) != size) | (fclose(f) != 0))
    return moss_fail(ctx, MOSS_E_IO, NULL, "cannot write '%s'", path);
  return MOSS_OK;
}

void moss_identifier_emit(char *dst, size_t cap, const char *src) {
  size_t n = 0;
  if (cap == 0) return;
  if (!isalpha((unsigned char)src[0]) && src[0] != '_' && n + 1 < cap) dst[n++] = 'm';
  for (; *src && n + 1 < cap; src++) dst[n++] = isalnum((unsigned char)*src) ? *src : '_';
  dst[n] = 0;
}
