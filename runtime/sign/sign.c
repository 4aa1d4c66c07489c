/* sign.c - libmossrt_sign (runtime/include/mossrt_sign.h): Ed25519
 * signatures over whole bundles, through libsodium. The compiler calls
 * mossrt_sign_bundle() as the last step of writing a bundle with
 * `moss compile --sign KEY` (compiler/bundle/bundle_write.c); libmossrt's
 * core calls mossrt_sign_verify() through mossrt_options.verify when the
 * application gives a public key (core/bundle.c), right after the header
 * is checked and before any section is read. It is built apart from the
 * core (runtime/CMakeLists.txt), so that libmossrt itself links no
 * cryptography and stays small.
 *
 * What is signed: the file's first file_size - 64 bytes, i.e. the header
 * (its flags say the bundle is signed, its checksum covers the table), the
 * table, every section and padding, and the first half of the trailer
 * (magic, algorithm, size, the signer's public key). The trailer's last 64
 * bytes are the signature. */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "moss_bundle.h"
#include "mossrt_sign.h"

static mossrt_status say(char *why, size_t cap, mossrt_status st, const char *fmt, ...) {
  va_list ap;
  if (!why || !cap) return st;
  va_start(ap, fmt);
  vsnprintf(why, cap, fmt, ap);
  va_end(ap);
  return st;
}

static int ready(void) { return sodium_init() >= 0; }

/* |err| filled as libmossrt fills it: "<who>: <category>: <reason>". */
static mossrt_status fail(mossrt_error *err, const char *who, mossrt_status st, const char *fmt,
                          ...) {
  va_list ap;
  int n;
  if (!err) return st;
  err->status = st;
  n = snprintf(err->text, sizeof err->text, "%s: %s: ", who ? who : "mossrt",
               st == MOSSRT_E_ARG      ? "internal"
               : st == MOSSRT_E_DEVICE ? "target"
                                       : "invalid-model");
  if (n < 0) n = 0;
  if ((size_t)n < sizeof err->text) {
    va_start(ap, fmt);
    vsnprintf(err->text + n, sizeof err->text - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return st;
}

/* The trailer of the bundle at |p| (|n| bytes), or NULL when the header
 * does not say it is signed or the trailer is not a moss Ed25519 one. */
static const char *trailer(const uint8_t *p, size_t n, moss_bundle_signature *out) {
  moss_bundle_header h;
  if (n < sizeof h + sizeof *out) return "is too short to carry a signature";
  memcpy(&h, p, sizeof h);
  if (memcmp(h.magic, MOSS_BUNDLE_MAGIC, 8) != 0 || h.version != MOSS_BUNDLE_VERSION ||
      h.file_size != n)
    return "has no valid header";
  if (!(h.flags & MOSS_BUNDLE_FLAG_SIGNED)) return "is not signed";
  memcpy(out, p + n - sizeof *out, sizeof *out);
  if (memcmp(out->magic, MOSS_BUNDLE_SIGNATURE_MAGIC, 8) != 0 ||
      out->algorithm != MOSS_BUNDLE_SIGNATURE_ED25519 || out->size != sizeof *out)
    return "says it is signed, but its last 128 bytes are no moss Ed25519 signature trailer";
  return NULL;
}

mossrt_status mossrt_sign_keygen(uint8_t public_key[32], uint8_t secret_key[64]) {
  if (!ready()) return MOSSRT_E_DEVICE;
  crypto_sign_keypair(public_key, secret_key);
  return MOSSRT_OK;
}

mossrt_status mossrt_sign_bundle(const uint8_t *secret_key, void *data, size_t nbytes, char *why,
                                 size_t whycap) {
  uint8_t *p = data, pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  moss_bundle_signature t;
  const char *bad;
  int same;
  if (!secret_key || !data) return say(why, whycap, MOSSRT_E_ARG, "NULL key or bundle");
  if (!ready()) return say(why, whycap, MOSSRT_E_DEVICE, "libsodium cannot be initialized");
  if ((bad = trailer(p, nbytes, &t)) != NULL)
    return say(why, whycap, MOSSRT_E_FORMAT, "the bundle to sign %s", bad);
  /* A secret key is the seed and the public key: they must agree. */
  crypto_sign_seed_keypair(pk, sk, secret_key);
  same = memcmp(pk, secret_key + 32, sizeof pk) == 0;
  sodium_memzero(sk, sizeof sk);
  if (!same)
    return say(why, whycap, MOSSRT_E_ARG,
               "the secret key is damaged: its last 32 bytes are not the public key of its seed");
  memcpy(t.public_key, pk, sizeof pk);
  memset(t.signature, 0, sizeof t.signature);
  memcpy(p + nbytes - sizeof t, &t, sizeof t);
  crypto_sign_detached(p + nbytes - sizeof t.signature, NULL, p, nbytes - sizeof t.signature,
                       secret_key);
  return MOSSRT_OK;
}

/* The first 4 bytes of a key in hex, to tell keys apart in a message. */
static void key_id(const uint8_t *k, char out[9]) {
  snprintf(out, 9, "%02x%02x%02x%02x", k[0], k[1], k[2], k[3]);
}

mossrt_status mossrt_sign_verify(const uint8_t *public_key, const void *data, size_t nbytes,
                                 const char *who, mossrt_error *err) {
  const uint8_t *p = data;
  moss_bundle_signature t;
  const char *bad;
  char a[9], b[9];
  if (!public_key || (!data && nbytes))
    return fail(err, who, MOSSRT_E_ARG, "mossrt_sign_verify: NULL public key or bundle");
  if (!ready()) return fail(err, who, MOSSRT_E_DEVICE, "libsodium cannot be initialized");
  if ((bad = trailer(p, nbytes, &t)) != NULL)
    return fail(err, who, MOSSRT_E_SIGNATURE,
                "signature: the bundle %s; with a public key given, only bundles signed with "
                "its secret key open (moss compile --sign KEY)", bad);
  if (sodium_memcmp(t.public_key, public_key, sizeof t.public_key) != 0) {
    key_id(t.public_key, a);
    key_id(public_key, b);
    return fail(err, who, MOSSRT_E_SIGNATURE,
                "signature: the bundle is signed with another key (public key %s..., the given "
                "one is %s...)", a, b);
  }
  if (crypto_sign_verify_detached(t.signature, p, nbytes - sizeof t.signature, public_key) != 0)
    return fail(err, who, MOSSRT_E_SIGNATURE,
                "signature: the Ed25519 signature does not match: the bundle was changed after "
                "it was signed");
  return MOSSRT_OK;
}
