#!/usr/bin/python3
"""Signed bundles end to end (issue 11, part 3): `moss keygen`, `moss compile
--sign KEY` and `moss run --public-key KEY.pub`. The signature is checked
here with another Ed25519 implementation, python3-cryptography (OpenSSL),
against the format runtime/README.md defines: Ed25519 over the whole file
but its last 64 bytes, which hold the signature, the signer's public key
in the trailer. A signed bundle runs with its key and gives the unsigned
bundle's outputs; flipping any byte, giving another key, or giving a key
for an unsigned bundle is refused with one diagnostic and exit status 1.

  test_signed_bundle.py --moss build/moss"""
import os
import stat
import struct
import subprocess
import sys
import tempfile

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODEL = os.path.join(HERE, "digits", "mlp.onnx")
X = os.path.join(HERE, "digits", "x_test_mlp.npy")
GOLDEN = os.path.join(ROOT, "tests", "unit", "data", "bundle", "v3_plugin_signed.moss")


def raw_public(private_key):
    return private_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)


def check_signature(data, public_key):
    """Raises unless |data| is a signed bundle that |public_key| verifies."""
    flags, = struct.unpack_from("<I", data, 44)
    size, = struct.unpack_from("<Q", data, 16)
    assert flags & 1, "header flag SIGNED not set"
    assert size == len(data), "file_size %d, file %d" % (size, len(data))
    t = data[-128:]
    assert t[:8] == b"MOSSSIG1", t[:8]
    assert struct.unpack_from("<II", t, 8) == (1, 128)
    assert t[16:48] == public_key, "trailer names another key"
    assert t[48:64] == bytes(16)
    Ed25519PublicKey.from_public_bytes(public_key).verify(data[-64:], data[:-64])


def moss_run(moss, *args):
    p = subprocess.run([moss] + list(args), capture_output=True, text=True, timeout=120)
    return p.returncode, p.stderr.strip()


def main():
    moss = sys.argv[sys.argv.index("--moss") + 1]
    fails = []

    def expect_refused(what, rc, err, needle):
        if rc != 1 or len(err.splitlines()) != 1 or needle not in err:
            fails.append("%s: exit %d, %r (wanted 1 and %r)" % (what, rc, err, needle))

    # The committed golden: signed by the key whose seed is the bytes 0..31.
    golden = open(GOLDEN, "rb").read()
    check_signature(golden, raw_public(Ed25519PrivateKey.from_private_bytes(bytes(range(32)))))
    try:
        check_signature(golden[:-1] + bytes([golden[-1] ^ 1]),
                        raw_public(Ed25519PrivateKey.from_private_bytes(bytes(range(32)))))
        fails.append("python3-cryptography accepts a damaged signature")
    except InvalidSignature:
        pass

    with tempfile.TemporaryDirectory() as d:
        key, other = os.path.join(d, "key"), os.path.join(d, "other")
        rc, err = moss_run(moss, "keygen", key)
        if rc != 0:
            print("FAIL: keygen: %s" % err)
            return 1
        sk, pk = open(key, "rb").read(), open(key + ".pub", "rb").read()
        if len(sk) != 64 or len(pk) != 32 or stat.S_IMODE(os.stat(key).st_mode) != 0o600:
            fails.append("keygen wrote %d and %d bytes, mode %o" %
                         (len(sk), len(pk), stat.S_IMODE(os.stat(key).st_mode)))
        # libsodium's layout: the seed, then the public key it gives.
        if raw_public(Ed25519PrivateKey.from_private_bytes(sk[:32])) != pk or sk[32:] != pk:
            fails.append("the secret key's seed does not give its public key")
        rc, err = moss_run(moss, "keygen", key)
        expect_refused("keygen over an existing key", rc, err, "replaces no key")
        if open(key, "rb").read() != sk:
            fails.append("keygen changed an existing key")
        moss_run(moss, "keygen", other)

        x = os.path.join(d, "x.npy")
        np.save(x, np.load(X)[:1])
        plain, signed = os.path.join(d, "plain.moss"), os.path.join(d, "signed.moss")
        subprocess.run([moss, "compile", MODEL, "--input-shape", "input=1x64", "-o", plain, "-q"],
                       check=True)
        subprocess.run([moss, "compile", MODEL, "--input-shape", "input=1x64", "-o", signed,
                        "-q", "--sign", key], check=True)
        data = open(signed, "rb").read()
        check_signature(data, pk)
        if len(data) != len(open(plain, "rb").read()) + 128:
            fails.append("a signed bundle is not the unsigned one and 128 bytes")

        rc, err = moss_run(moss, "run", plain, x, "-o", os.path.join(d, "p"))
        rc2, err2 = moss_run(moss, "run", signed, x, "-o", os.path.join(d, "s"), "--public-key",
                             key + ".pub")
        if rc or rc2:
            fails.append("runs: %d %r, %d %r" % (rc, err, rc2, err2))
        elif not np.array_equal(np.load(os.path.join(d, "p", "output_0.npy")),
                                np.load(os.path.join(d, "s", "output_0.npy"))):
            fails.append("the signed bundle answers otherwise")
        rc, err = moss_run(moss, "bench", signed, x, "--iterations", "3", "--public-key",
                           key + ".pub")
        if rc:
            fails.append("bench --public-key: %r" % err)

        rc, err = moss_run(moss, "run", signed, x, "-o", d, "--public-key", other + ".pub")
        expect_refused("another key", rc, err, "invalid-model: signature: the bundle is signed "
                       "with another key")
        rc, err = moss_run(moss, "run", plain, x, "-o", d, "--public-key", key + ".pub")
        expect_refused("unsigned", rc, err, "invalid-model: signature: the bundle is not signed")
        rc, err = moss_run(moss, "run", signed, x, "-o", d, "--public-key", key)
        expect_refused("a secret key for --public-key", rc, err, "io: ")

        # One flipped byte, in a sample (test_bundle flips every byte through
        # the library): spread over the file, the header and table, the trailer.
        tab, = struct.unpack_from("<Q", data, 24)
        cnt, = struct.unpack_from("<I", data, 32)
        where = sorted(set(range(0, len(data), 509)) | set(range(0, tab + 32 * cnt, 11)) |
                       set(range(len(data) - 128, len(data), 8)))
        bad = os.path.join(d, "bad.moss")
        for i in where:
            b = bytearray(data)
            b[i] ^= 1 << (i % 8)
            open(bad, "wb").write(b)
            rc, err = moss_run(moss, "run", bad, x, "-o", d, "--public-key", key + ".pub")
            if rc != 1 or "invalid-model" not in err and "unsupported" not in err:
                fails.append("byte %d flipped: exit %d, %r" % (i, rc, err))
        print("%d single-byte changes of a %d-byte signed bundle, each refused" %
              (len(where), len(data)))

        rc, err = moss_run(moss, "compile", MODEL, "--input-shape", "input=1x64", "--emit", "c",
                           "-o", os.path.join(d, "c"), "-q", "--sign", key)
        expect_refused("--sign --emit c", rc, err, "unsupported: --sign signs bundles")
        rc, err = moss_run(moss, "compile", MODEL, "--input-shape", "input=1x64", "-o",
                           os.path.join(d, "k.moss"), "-q", "--sign", key + ".pub")
        expect_refused("--sign with a public key", rc, err, "io: ")
        if os.path.exists(os.path.join(d, "k.moss")):
            fails.append("--sign with a bad key wrote a bundle")
    for f in fails:
        print("FAIL: " + f)
    if not fails:
        print("signed bundles: keygen, sign, verify (libmossrt_sign and python3-cryptography), "
              "refusals: ok")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
