/* keys.c - the key files of signed bundles (runtime/README.md "Signed
 * bundles"): `moss keygen OUT` makes an Ed25519 key pair through
 * libmossrt_sign (runtime/include/mossrt_sign.h); `moss compile --sign KEY`
 * reads the secret key (the bundle writer signs with it) and `moss run
 * --public-key FILE` the public one. A key file holds the key's raw bytes
 * and nothing else: 64 for a secret key (libsodium's layout: the 32-byte
 * seed, then the public key), 32 for a public key. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "mossrt_sign.h"

moss_status moss_key_read(moss_ctx *ctx, const char *path, int secret, uint8_t *out) {
  size_t want = secret ? MOSSRT_SIGN_SECRET_KEY_BYTES : MOSSRT_SIGN_PUBLIC_KEY_BYTES, n = 0;
  uint8_t *data = NULL;
  moss_status st = moss_file_read(ctx, path, &data, &n);
  if (st != MOSS_OK) return st;
  if (n != want)
    st = moss_fail(ctx, MOSS_E_IO, NULL,
                   "'%s' is %zu bytes; a %s key file holds the key's %zu raw bytes (moss keygen "
                   "writes them: KEY for --sign, KEY.pub for --public-key)",
                   path, n, secret ? "secret" : "public", want);
  else if (out)
    memcpy(out, data, want);
  memset(data, 0, n);
  moss_free(ctx, data, n + 1);
  return st;
}

/* Writes |n| bytes to |path|, a new file with mode |mode|; never over an
 * existing one. */
static moss_status write_new(moss_ctx *ctx, const char *path, const uint8_t *p, size_t n,
                             int mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  size_t done = 0;
  if (fd < 0)
    return moss_fail(ctx, MOSS_E_IO, NULL, "cannot create '%s': %s%s", path, strerror(errno),
                     errno == EEXIST ? " (moss keygen replaces no key: remove it first)" : "");
  while (done < n) {
    ssize_t k = write(fd, p + done, n - done);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    done += (size_t)k;
  }
  if (close(fd) != 0 || done != n) {
    unlink(path);
    return moss_fail(ctx, MOSS_E_IO, NULL, "cannot write '%s'", path);
  }
  return MOSS_OK;
}

moss_status moss_keygen(moss_ctx *ctx, const char *out) {
  uint8_t pk[MOSSRT_SIGN_PUBLIC_KEY_BYTES], sk[MOSSRT_SIGN_SECRET_KEY_BYTES];
  char pub[4200];
  moss_status st;
  if ((size_t)snprintf(pub, sizeof pub, "%s.pub", out) >= sizeof pub)
    return moss_fail(ctx, MOSS_E_IO, NULL, "'%s': path too long", out);
  if (mossrt_sign_keygen(pk, sk) != MOSSRT_OK)
    return moss_fail(ctx, MOSS_E_INTERNAL, NULL, "keygen: libsodium cannot be initialized");
  st = write_new(ctx, out, sk, sizeof sk, 0600);
  memset(sk, 0, sizeof sk);
  if (st != MOSS_OK) return st;
  st = write_new(ctx, pub, pk, sizeof pk, 0644);
  if (st != MOSS_OK) {
    unlink(out);
    return st;
  }
  fprintf(stderr,
          "moss: wrote the secret key to %s (keep it private; moss compile --sign %s) and the "
          "public key to %s (moss run --public-key %s; mossrt_options.public_key)\n",
          out, out, pub, pub);
  return MOSS_OK;
}
