/* util.c - hashing (FNV-1a for tables, SHA-256 for the banner of generated
 * code) and whole-file input/output through the context's allocator.
 * Outputs never destroy data: each goes to a temporary file beside its
 * target, renamed over it only when the target is missing or a regular
 * file that the command neither reads nor wrote (device and inode). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

struct moss_file_id {
  uint64_t dev, ino;
  char *path;  /* as it was named; strlen + 1 bytes */
  int written; /* an output of this command, not an input */
};

void moss_file_set_deinit(moss_ctx *ctx, moss_file_set *set) {
  size_t i;
  if (!set) return;
  for (i = 0; i < set->n; i++) moss_free(ctx, set->ids[i].path, strlen(set->ids[i].path) + 1);
  moss_free(ctx, set->ids, set->cap * sizeof *set->ids);
  memset(set, 0, sizeof *set);
}

const char *moss_file_set_read_path(const moss_file_set *set, size_t i) {
  return set->ids[i].written ? NULL : set->ids[i].path;
}

static moss_status note(moss_ctx *ctx, const char *path, int written) {
  moss_file_set *s = ctx->files;
  struct stat sb;
  struct moss_file_id *id;
  size_t i, len;
  if (!s || stat(path, &sb) != 0) return MOSS_OK;
  for (i = 0; i < s->n; i++)
    if (s->ids[i].dev == (uint64_t)sb.st_dev && s->ids[i].ino == (uint64_t)sb.st_ino &&
        !strcmp(s->ids[i].path, path))
      return MOSS_OK;
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 16;
    void *p = moss_realloc(ctx, s->ids, s->cap * sizeof *s->ids, cap * sizeof *s->ids);
    if (!p) return MOSS_E_NOMEM;
    s->ids = p;
    s->cap = cap;
  }
  len = strlen(path) + 1;
  id = &s->ids[s->n];
  if (!(id->path = moss_alloc(ctx, len))) return MOSS_E_NOMEM;
  memcpy(id->path, path, len);
  id->dev = (uint64_t)sb.st_dev;
  id->ino = (uint64_t)sb.st_ino;
  id->written = written;
  s->n++;
  return MOSS_OK;
}

moss_status moss_file_note_input(moss_ctx *ctx, const char *path) { return note(ctx, path, 0); }

/* The entry of ctx->files that is the file |sb|, NULL when none. An entry
 * whose path no longer leads to that file is stale (the file was removed
 * and its inode number given to another), so it does not count. */
static const struct moss_file_id *noted(const moss_ctx *ctx, const struct stat *sb) {
  const moss_file_set *s = ctx->files;
  size_t i;
  for (i = 0; s && i < s->n; i++) {
    struct stat now;
    if (s->ids[i].dev != (uint64_t)sb->st_dev || s->ids[i].ino != (uint64_t)sb->st_ino) continue;
    if (stat(s->ids[i].path, &now) == 0 && now.st_dev == sb->st_dev && now.st_ino == sb->st_ino)
      return &s->ids[i];
  }
  return NULL;
}

static const char *file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a folder";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a pipe";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

moss_status moss_file_check_output(moss_ctx *ctx, const char *path) {
  struct stat sb;
  const struct moss_file_id *id;
  if (lstat(path, &sb) != 0) return MOSS_OK; /* nothing there (or the write will say why) */
  if (S_ISLNK(sb.st_mode) && stat(path, &sb) != 0)
    return moss_fail(ctx, MOSS_E_IO, NULL,
                     "will not write '%s': it is a symbolic link that leads nowhere", path);
  if (!S_ISREG(sb.st_mode))
    return moss_fail(ctx, MOSS_E_IO, NULL,
                     "will not replace '%s': it is %s, not a regular file; name a file", path,
                     file_kind(sb.st_mode));
  if ((id = noted(ctx, &sb)) != NULL)
    return moss_fail(ctx, MOSS_E_IO, NULL,
                     "will not replace '%s': it is %s this command; name another output file",
                     path, id->written ? "already written by" : "an input of");
  return MOSS_OK;
}

static int write_all(int fd, const void *data, size_t n) {
  const char *p = data;
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      if (k == 0) errno = EIO;
      return 0;
    }
    p += k;
    n -= (size_t)k;
  }
  return 1;
}

moss_status moss_file_writev(moss_ctx *ctx, const char *path, const void *const *parts,
                             const size_t *sizes, int n) {
  char real[PATH_MAX], tmp[PATH_MAX + 300];
  const char *dst = path, *base;
  struct stat sb;
  int fd = -1, k, e = 0;
  size_t dirlen;
  MOSS_TRY(moss_file_check_output(ctx, path));
  /* A symbolic link keeps leading to the file: the temporary file goes
   * beside the file it leads to, and replaces that. */
  if (lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode)) {
    if (!realpath(path, real))
      return moss_fail(ctx, MOSS_E_IO, NULL, "cannot write '%s': %s", path, strerror(errno));
    dst = real;
  }
  base = strrchr(dst, '/');
  dirlen = base ? (size_t)(base - dst + 1) : 0;
  base = base ? base + 1 : dst;
  if (dirlen >= PATH_MAX || !*base)
    return moss_fail(ctx, MOSS_E_IO, NULL, "cannot write '%s': not a file name", path);
  for (k = 0; k < 100 && fd < 0; k++) {
    snprintf(tmp, sizeof tmp, "%.*s.%.200s.%ld-%d.tmp", (int)dirlen, dst, base, (long)getpid(), k);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0)
    return moss_fail(ctx, MOSS_E_IO, NULL, "cannot create '%s': %s", path, strerror(errno));
  if (stat(dst, &sb) == 0 && S_ISREG(sb.st_mode)) /* a file replaced keeps its permissions */
    (void)fchmod(fd, sb.st_mode & 07777);
  for (k = 0; k < n && !e; k++)
    if (sizes[k] && !write_all(fd, parts[k], sizes[k])) e = errno;
  if (close(fd) != 0 && !e) e = errno;
  if (e) {
    unlink(tmp);
    return moss_fail(ctx, MOSS_E_IO, NULL, "cannot write '%s': %s; the file is unchanged", path,
                     strerror(e));
  }
  if (moss_file_check_output(ctx, path) != MOSS_OK) { /* it changed while we wrote */
    unlink(tmp);
    return MOSS_E_IO;
  }
  if (rename(tmp, dst) != 0) {
    e = errno;
    unlink(tmp);
    return moss_fail(ctx, MOSS_E_IO, NULL, "cannot write '%s': %s", path, strerror(e));
  }
  if (note(ctx, path, 1) != MOSS_OK)
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "the list of files written");
  return MOSS_OK;
}

moss_status moss_file_write(moss_ctx *ctx, const char *path, const void *data, size_t size) {
  return moss_file_writev(ctx, path, &data, &size, 1);
}

void moss_file_remove_stale(moss_ctx *ctx, const char *path, const char *banner) {
  struct stat sb;
  if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || noted(ctx, &sb)) return;
  if (banner) {
    char head[513];
    size_t n = 0, i, bl = strlen(banner);
    FILE *f = fopen(path, "rb");
    int found = 0;
    if (!f) return;
    n = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    for (i = 0; i + bl <= n && !found; i++) found = !memcmp(head + i, banner, bl);
    if (!found) return;
  }
  unlink(path);
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
  if (note(ctx, path, 0) != MOSS_OK) {
    moss_free(ctx, p, (size_t)len + 1);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "the list of files read");
  }
  *out_data = p;
  *out_size = (size_t)len;
  return MOSS_OK;
}

void moss_identifier_emit(char *dst, size_t cap, const char *src) {
  size_t n = 0;
  if (cap == 0) return;
  if (!isalpha((unsigned char)src[0]) && src[0] != '_' && n + 1 < cap) dst[n++] = 'm';
  for (; *src && n + 1 < cap; src++) dst[n++] = isalnum((unsigned char)*src) ? *src : '_';
  dst[n] = 0;
}
