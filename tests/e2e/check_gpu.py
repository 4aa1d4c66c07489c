#!/usr/bin/python3
"""Runs bundles exported by test_ptx.py or run_node_tests.py (--export DIR) on
a machine with a GPU and its driver (CUDA, OpenCL) but no moss compiler,
through libmossrt's executors (bench/gpu_run.c, built with the runtime alone),
and compares each output with the expected one the export holds: float
outputs within DESIGN.md's tolerance |a-b| <= 1e-5 + 1e-4|b| unless the line
says "bits", other types equal.

  check_gpu.py DIR GPU_RUN [--iterations N] [-j N]

DIR/manifest.tsv: one line per run, tab-separated: name, how (float|bits),
the bundle, the inputs (raw bytes, comma-separated, may be empty), the
expected outputs (.npy, comma-separated), all relative to DIR. Prints one
line per run and a summary; exit status 1 if any run failed.
"""
import argparse
import concurrent.futures as cf
import os
import subprocess
import sys
import tempfile

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("gpu_run")
ap.add_argument("--iterations", type=int, default=0)
ap.add_argument("-j", type=int, default=1, help="runs at once")
A = ap.parse_args()
W = tempfile.mkdtemp(prefix="moss-gpu-")


def check(line):
    """One manifest line: (name, None) when it passes, else (name, why); the
    runner's timing line, if any."""
    name, how, bundle, ins, wants = line
    ins = [os.path.join(A.dir, i) for i in ins.split(",") if i]
    wants = [os.path.join(A.dir, w) for w in wants.split(",") if w]
    out = os.path.join(W, name.replace("/", "_"))
    os.makedirs(out, exist_ok=True)
    try:
        p = subprocess.run([A.gpu_run, os.path.join(A.dir, bundle), out, str(A.iterations)] + ins,
                           capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return name, "timed out", ""
    if p.returncode != 0:
        return name, (p.stderr + p.stdout).strip()[:300], ""
    for i, w in enumerate(wants):
        want = np.load(w)
        path = os.path.join(out, "out%d.bin" % i)
        raw = open(path, "rb").read() if os.path.exists(path) else None
        if raw is None or len(raw) != want.nbytes:
            return name, "output %d: %s bytes, expected %d" % (i, None if raw is None else len(raw), want.nbytes), ""
        got = np.frombuffer(raw, dtype=want.dtype).reshape(want.shape)
        if want.dtype.kind == "f" and how != "bits":
            g, e = got.astype(np.float64), want.astype(np.float64)
            ok = np.isclose(g, e, atol=1e-5, rtol=1e-4, equal_nan=True) | (g == e)
            if not ok.all():
                k = int(np.argmax(~ok.reshape(-1)))
                return name, "output %d: %r, expected %r at flat index %d" % (i, g.reshape(-1)[k], e.reshape(-1)[k],
                                                                             k), ""
        elif got.tobytes() != want.tobytes():
            return name, "output %d: values differ" % i, ""
    med = [l for l in p.stdout.splitlines() if l.startswith("median_us")]
    return name, None, (" " + med[0]) if med else ""


lines = [l.rstrip("\n").split("\t") for l in open(os.path.join(A.dir, "manifest.tsv"))]
lines = [l for l in lines if len(l) == 5]
npass = nfail = 0
with cf.ThreadPoolExecutor(max_workers=A.j) as ex:
    for name, why, timing in ex.map(check, lines):
        if why:
            print("FAIL %s: %s" % (name, why))
            nfail += 1
        else:
            print("pass %s%s" % (name, timing))
            npass += 1
print("check_gpu: %d passed, %d failed" % (npass, nfail))
sys.exit(1 if nfail else 0)
