#!/usr/bin/python3
"""Forged bundles through `moss run` (issue 11, part 3). A bundle moss
compiled from the digits CNN, for the host (native code from the LLVM
backend, loaded by libmossrt's ELF loader) and for c99 (the C backend's
shared object), has each field of its META, PLAN and DEVICES sections and
the size of its CODE section forged, with every checksum repaired as a
forger would. Each forgery must end with a clean refusal: exit status 1 and
one diagnostic in the DESIGN.md shape with a category other than internal;
never a signal, never a run. (Before: META's arena_bytes = 64 made libmossrt
allocate 64 bytes and the code write 2560: a segfault, or malloc(): invalid
size.) Not forged: strings (tensor names, device names; only a signature
vouches for them) and reserved words, which no reader reads.

  test_forged_bundle.py --moss build/moss"""
import os
import re
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "digits", "cnn.onnx")
X = os.path.join(HERE, "digits", "x_test_cnn.npy")
SHAPE = re.compile(r"^(\S.*?): (invalid-model|unsupported|target|io): \S.*$")


def sections(b):
    tab, cnt = struct.unpack_from("<QI", b, 24)
    return tab, [struct.unpack_from("<IIQQII", b, tab + 32 * i) for i in range(cnt)]


def fix_crcs(b):
    """The section checksums, then the header's over the header and table."""
    tab, secs = sections(b)
    for i, (_, _, off, size, _, _) in enumerate(secs):
        struct.pack_into("<I", b, tab + 32 * i + 28, zlib.crc32(bytes(b[off:off + size])))
    struct.pack_into("<I", b, 40, 0)
    crc = zlib.crc32(bytes(b[0:320]))
    crc = zlib.crc32(bytes(b[tab:tab + 32 * len(secs)]), crc)
    struct.pack_into("<I", b, 40, crc)


def payload(b, kind):
    for k, _, off, size, _, _ in sections(b)[1]:
        if k == kind:
            return off, size
    raise KeyError(kind)


def fields(b):
    """(name, absolute offset, struct format) of every field to forge."""
    out = []
    moff, _ = payload(b, 2)  # META
    arena, nt, ni, no, _ = struct.unpack_from("<QIIII", b, moff)
    out += [("meta.arena_bytes", moff, "<Q"), ("meta.ntensors", moff + 8, "<I"),
            ("meta.ninputs", moff + 12, "<I"), ("meta.noutputs", moff + 16, "<I")]
    for t in range(nt):
        o = moff + 24 + 104 * t
        out += [("tensor%d.dtype" % t, o + 8, "<i"), ("tensor%d.rank" % t, o + 12, "<i")]
        out += [("tensor%d.dims[%d]" % (t, k), o + 16 + 8 * k, "<q") for k in range(8)]
        out += [("tensor%d.nbytes" % t, o + 80, "<Q"), ("tensor%d.place" % t, o + 88, "<I"),
                ("tensor%d.index" % t, o + 92, "<I"), ("tensor%d.offset" % t, o + 96, "<Q")]
    lists = moff + 24 + 104 * nt
    out += [("meta.inputs[%d]" % i, lists + 4 * i, "<I") for i in range(ni)]
    out += [("meta.outputs[%d]" % i, lists + 4 * (ni + i), "<I") for i in range(no)]
    doff, _ = payload(b, 3)  # DEVICES
    (nd,) = struct.unpack_from("<I", b, doff)
    out += [("devices.count", doff, "<I")]
    out += [("device%d.code_format" % d, doff + 8 + 56 * d + 48, "<I") for d in range(nd)]
    poff, _ = payload(b, 4)  # PLAN
    ns, nr = struct.unpack_from("<II", b, poff)
    out += [("plan.count", poff, "<I"), ("plan.nrefs", poff + 4, "<I")]
    for s in range(ns):
        o = poff + 8 + 40 * s
        for name, at in (("kind", 0), ("device", 4), ("from", 8), ("blob", 12),
                         ("entry.offset", 16), ("entry.len", 20), ("nin", 24), ("nout", 28),
                         ("first", 32)):
            out.append(("step%d.%s" % (s, name), o + at, "<I"))
    out += [("plan.refs[%d]" % r, poff + 8 + 40 * ns + 4 * r, "<I") for r in range(nr)]
    return out


def values(fmt, v):
    if fmt in ("<Q", "<q"):
        cand = [v + 64, v // 2, v + (1 << 40), -1 if fmt == "<q" else (1 << 64) - 1]
    else:
        cand = [v + 1, v ^ 0x80000000, 0, 6]
    lo, hi = (-(1 << 63), (1 << 63) - 1) if fmt == "<q" else \
             (-(1 << 31), (1 << 31) - 1) if fmt == "<i" else \
             (0, (1 << 64) - 1) if fmt == "<Q" else (0, (1 << 32) - 1)
    return sorted({c for c in cand if lo <= c <= hi and c != v})


def run(moss, bundle, x, out):
    p = subprocess.run([moss, "run", bundle, x, "-o", out], capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stderr.strip()


def refused(what, rc, err, bundle, problems):
    if rc == 0:
        problems.append("%s: accepted (exit 0)" % what)
    elif rc < 0 or rc >= 128:
        problems.append("%s: killed or crashed (exit %d): %s" % (what, rc, err[-300:]))
    elif rc != 1:
        problems.append("%s: exit %d" % (what, rc))
    else:
        lines = err.splitlines()
        if len(lines) != 1 or not SHAPE.match(lines[0]) or not lines[0].startswith(bundle):
            problems.append("%s: message not one diagnostic line of the bundle: %r" % (what, err))


def main():
    moss = sys.argv[sys.argv.index("--moss") + 1]
    problems, total = [], 0
    with tempfile.TemporaryDirectory() as d:
        x = os.path.join(d, "x.npy")
        np.save(x, np.load(X)[:1])
        for target in ("host", "c99"):
            good = os.path.join(d, target + ".moss")
            subprocess.run([moss, "compile", MODEL, "--input-shape", "input=1x1x8x8", "--target",
                            target, "-o", good, "-q"], check=True)
            ref_dir = os.path.join(d, target + ".ref")
            rc, err = run(moss, good, x, ref_dir)
            if rc != 0:
                print("FAIL: the unforged %s bundle does not run: %s" % (target, err))
                return 1
            ref = np.load(os.path.join(ref_dir, "output_0.npy"))
            orig = bytearray(open(good, "rb").read())
            forged = os.path.join(d, target + ".forged.moss")
            # The finding itself first.
            b = bytearray(orig)
            struct.pack_into("<Q", b, payload(b, 2)[0], 64)
            fix_crcs(b)
            open(forged, "wb").write(b)
            rc, err = run(moss, forged, x, os.path.join(d, "out"))
            refused("%s meta.arena_bytes = 64" % target, rc, err, forged, problems)
            if "arena of 64 bytes" not in err or "compiled for (an arena of" not in err:
                problems.append("%s arena_bytes = 64: %r" % (target, err))
            n = 0
            for name, off, fmt in fields(orig):
                (v,) = struct.unpack_from(fmt, orig, off)
                for nv in values(fmt, v):
                    b = bytearray(orig)
                    struct.pack_into(fmt, b, off, nv)
                    fix_crcs(b)
                    open(forged, "wb").write(b)
                    rc, err = run(moss, forged, x, os.path.join(d, "out"))
                    refused("%s %s = %d (was %d)" % (target, name, nv, v), rc, err, forged,
                            problems)
                    n += 1
            # The CODE section's size: shorter cuts into the code.
            tab, secs = sections(orig)
            for i, (k, _, off, size, _, _) in enumerate(secs):
                if k != 5:
                    continue
                for cut in (64, 4096, size // 2, size - 64):
                    b = bytearray(orig)
                    struct.pack_into("<Q", b, tab + 32 * i + 16, size - cut)
                    fix_crcs(b)
                    open(forged, "wb").write(b)
                    out = os.path.join(d, "cut")
                    rc, err = run(moss, forged, x, out)
                    n += 1
                    if rc == 0 and target == "c99" and size - cut >= loaded_end(orig[off:off + size]):
                        # What lies past the shared object's last loadable
                        # segment (section headers, symbol tables, debug
                        # information: how much depends on the C flags) is
                        # never mapped: the same code runs and must give the
                        # same answer. A cut into a segment must be refused.
                        if not np.array_equal(np.load(os.path.join(out, "output_0.npy")), ref):
                            problems.append("c99 code cut by %d bytes ran and answered otherwise" % cut)
                        continue
                    refused("%s code size %d (was %d)" % (target, size - cut, size), rc, err,
                            forged, problems)
            print("%s: %d forgeries, each refused cleanly" % (target, n)
                  if not problems else "%s: %d forgeries" % (target, n))
            total += n
    for p in problems[:40]:
        print("FAIL: " + p)
    if problems:
        print("%d of %d forgeries not refused cleanly" % (len(problems), total))
        return 1
    return 0


def loaded_end(elf):
    """The end of the last PT_LOAD segment's file bytes of an ELF64 file."""
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    end = 0
    for i in range(phnum):
        p_type, = struct.unpack_from("<I", elf, phoff + i * phentsize)
        p_offset, = struct.unpack_from("<Q", elf, phoff + i * phentsize + 8)
        p_filesz, = struct.unpack_from("<Q", elf, phoff + i * phentsize + 32)
        if p_type == 1:
            end = max(end, p_offset + p_filesz)
    return end


if __name__ == "__main__":
    sys.exit(main())
