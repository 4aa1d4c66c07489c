/* mossrt_sign.h - libmossrt_sign, the optional part of libmossrt that signs
 * bundles and checks their signatures (runtime/README.md "Signed bundles").
 * It is a library of its own, linked with libsodium (Debian's
 * libsodium-dev), so that libmossrt's core keeps no cryptography and no
 * dependency: an application that wants only bundles signed by its own key
 * links libmossrt_sign next to libmossrt and opens bundles with
 *
 *   mossrt_options opt = {0};
 *   opt.public_key = key;              32 bytes, from `moss keygen`'s KEY.pub
 *   opt.verify = mossrt_sign_verify;
 *   mossrt_open_file_ex("model.moss", &opt, &b, &err);
 *
 * which refuses, with MOSSRT_E_SIGNATURE, a bundle that is not signed, is
 * signed with another key, or was changed after it was signed (one byte
 * anywhere). The signature is Ed25519 (RFC 8032) over the whole file but
 * its last 64 bytes, which hold it (moss_bundle.h, moss_bundle_signature).
 *
 * Keys: a public key is 32 bytes; a secret key is 64 bytes, libsodium's
 * layout (the 32-byte seed, then the 32-byte public key). `moss keygen OUT`
 * writes them raw to OUT (secret, mode 0600) and OUT.pub (public).
 *
 * Errors: as mossrt.h's. mossrt_sign_verify() fills a mossrt_error like
 * every libmossrt call; mossrt_sign_bundle() writes the reason alone (one
 * NUL-terminated line) into |why| (|whycap| bytes, may be 0).
 * Thread-safe: they touch no state of their own (libsodium is initialized
 * once, thread-safely, by sodium_init()). */
#ifndef MOSSRT_SIGN_H
#define MOSSRT_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "mossrt.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MOSSRT_SIGN_PUBLIC_KEY_BYTES 32u
#define MOSSRT_SIGN_SECRET_KEY_BYTES 64u

/* Makes a new key pair from the system's random source. Errors:
 * MOSSRT_E_DEVICE (libsodium cannot be initialized). */
MOSSRT_API mossrt_status mossrt_sign_keygen(uint8_t public_key[32], uint8_t secret_key[64]);

/* Signs the bundle at |data| (|nbytes|), which moss_bundle_write() laid out
 * for signing: header flag MOSS_BUNDLE_FLAG_SIGNED, checksums done, and a
 * zeroed moss_bundle_signature at its end. Fills the trailer's public key
 * and signature in place. Errors: MOSSRT_E_FORMAT (no such trailer),
 * MOSSRT_E_ARG (|secret_key| is damaged: its public half is not the one
 * its seed gives), MOSSRT_E_DEVICE (libsodium cannot be initialized). */
MOSSRT_API mossrt_status mossrt_sign_bundle(const uint8_t *secret_key, void *data, size_t nbytes,
                                            char *why, size_t whycap);

/* The check of mossrt_options.verify (a mossrt_verify_fn): MOSSRT_OK when
 * |data| (|nbytes|, a whole bundle) carries a valid Ed25519 signature by
 * |public_key| (32 bytes) over all of it but the signature itself.
 * MOSSRT_E_SIGNATURE otherwise: not signed, signed with another key (the
 * message shows the start of both keys), or altered since it was signed.
 * MOSSRT_E_DEVICE: libsodium cannot be initialized. |err| (may be NULL)
 * gets "<who>: invalid-model: signature: <reason>". */
MOSSRT_API mossrt_status mossrt_sign_verify(const uint8_t *public_key, const void *data,
                                            size_t nbytes, const char *who, mossrt_error *err);

#ifdef __cplusplus
}
#endif

#endif
