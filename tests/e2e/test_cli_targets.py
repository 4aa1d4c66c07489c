#!/usr/bin/python3
"""The compile -> bundle -> run path through the CLI, for several targets:
the digits CNN compiled for host runs through libmossrt and matches torch's
logits; for rpi4 the bundle carries AArch64 code (built with Debian's cross
compiler), which this x86-64 runtime must refuse as the wrong target; for a
target whose accelerator has no backend yet the compile fails naming the
device, after --explain has shown the placement and the transfers; a
truncated bundle is refused with a message; cortex-m7 gets standalone C by
default; --report writes JSON, CSV and HTML; moss compare ranks targets.

  test_cli_targets.py --moss build/moss
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "digits")
FIXTURES = os.path.join(HERE, "..", "unit", "data", "partition")


def run(cmd, ok=True):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if ok and p.returncode != 0:
        raise SystemExit("FAIL: %s exited %d: %s" % (" ".join(cmd), p.returncode, p.stderr))
    if not ok and p.returncode == 0:
        raise SystemExit("FAIL: %s succeeded, expected an error" % " ".join(cmd))
    if p.returncode < 0 or p.returncode > 2:
        raise SystemExit("FAIL: %s crashed (status %d): %s" % (" ".join(cmd), p.returncode, p.stderr))
    return p


def expect(text, needle, what):
    if needle not in text:
        raise SystemExit("FAIL %s: %r not in:\n%s" % (what, needle, text))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    a = ap.parse_args()
    moss = os.path.abspath(a.moss)
    model = os.path.join(DATA, "cnn.onnx")
    x = np.load(os.path.join(DATA, "x_test_cnn.npy"))[:1].astype(np.float32)
    ref = np.load(os.path.join(DATA, "cnn_ref.npy"))[:1]
    with tempfile.TemporaryDirectory() as w:
        xp = os.path.join(w, "x.npy")
        np.save(xp, x)
        shape = ["--input-shape", "input=1x1x8x8"]

        # host: a bundle by default, run through libmossrt, against torch.
        b = os.path.join(w, "host.moss")
        p = run([moss, "compile", model] + shape + ["-o", b])
        expect(p.stderr, "moss: cost on host:", "cost line")
        with open(b, "rb") as f:
            head = f.read(8)
        if head != b"MOSSBNDL":
            raise SystemExit("FAIL: %s does not start with the bundle magic: %r" % (b, head))
        run([moss, "run", b, xp, "-o", w])
        got = np.load(os.path.join(w, "output_0.npy")).reshape(ref.shape)
        err = np.abs(got - ref) - (1e-5 + 1e-4 * np.abs(ref))
        if (err > 0).any():
            raise SystemExit("FAIL host bundle: max diff %g" % np.abs(got - ref).max())

        # A truncated bundle: a clear error, no crash.
        t = os.path.join(w, "trunc.moss")
        with open(b, "rb") as f, open(t, "wb") as g:
            g.write(f.read()[:1000])
        p = run([moss, "run", t, xp, "-o", w], ok=False)
        expect(p.stderr, "trunc.moss", "truncated bundle message names the file")
        expect(p.stderr, "truncated", "truncated bundle message")

        # rpi4: AArch64 code inside; this x86-64 runtime refuses it.
        r = os.path.join(w, "rpi4.moss")
        run([moss, "compile", model] + shape + ["--target", "rpi4", "-o", r, "-q"])
        p = run([moss, "run", r, xp, "-o", w], ok=False)
        expect(p.stderr, "target:", "wrong-target category")
        expect(p.stderr, "aarch64", "wrong-target message names the bundle's architecture")

        # A device without a backend: placed and costed, then refused by name.
        p = run([moss, "compile", model] + shape +
                ["--target", os.path.join(FIXTURES, "accel.xml"), "--explain", "-o",
                 os.path.join(w, "acc.moss")], ok=False)
        expect(p.stdout, "-> acc [segment 0]: first device that takes Conv f32", "explain")
        expect(p.stdout, "acc declined: no MaxPool for f32", "explain reason")
        expect(p.stdout, "transfer 'input' (256 bytes): cpu -> acc", "explain transfer")
        expect(p.stderr, "device 'acc' wants backend 'metal'", "missing backend message")

        # cortex-m7: bare metal, so standalone C by default.
        m7 = os.path.join(w, "m7")
        run([moss, "compile", model] + shape + ["--target", "cortex-m7", "-o", m7, "-q"])
        if sorted(os.listdir(m7)) != ["cnn.c", "cnn.h", "cnn.manifest"]:
            raise SystemExit("FAIL cortex-m7: %s" % sorted(os.listdir(m7)))

        # Reports.
        for ext in ("json", "csv", "html"):
            run([moss, "compile", model] + shape + ["-q", "--emit", "c", "-o", os.path.join(w, "c"),
                                                     "--report", os.path.join(w, "r." + ext),
                                                     "--grid-intensity", "100"])
        with open(os.path.join(w, "r.json")) as f:
            rep = json.load(f)
        if [n["op_type"] for n in rep["nodes"]] != ["Conv", "MaxPool", "Conv", "Flatten", "Gemm"]:
            raise SystemExit("FAIL report nodes: %s" % [n["op_type"] for n in rep["nodes"]])
        if rep["grid"]["g_per_kwh"] != 100 or rep["grid"]["fallback"]:
            raise SystemExit("FAIL report grid: %s" % rep["grid"])
        with open(os.path.join(w, "r.csv")) as f:
            expect(f.readline(), "energy_consumed", "CSV header")
        with open(os.path.join(w, "r.html")) as f:
            expect(f.read(), "<svg", "HTML chart")

        # compare: every target gets a row.
        p = run([moss, "compare", model] + shape + ["--targets", "host,rpi4,cortex-m7"])
        for tname in ("host", "rpi4", "cortex-m7"):
            expect(p.stdout, tname, "compare row")
    print("ok: host bundle matches torch; truncated and wrong-target bundles refused; "
          "missing backend named; cortex-m7 gets C; reports and compare written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
