#!/usr/bin/python3
"""Runs bundles exported by test_ptx.py or run_node_tests.py (--export DIR) on
a machine with a GPU and its driver (CUDA, OpenCL) but no moss compiler,
through libmossrt's executors (bench/gpu_run.c, built with the runtime alone),
and compares each output with the expected one the export holds: float
outputs within DESIGN.md's tolerance |a-b| <= 1e-5 + 1e-4|b| unless the line
says "bits", other types equal.

  check_gpu.py DIR GPU_RUN [--iterations N]

DIR/manifest.tsv: one line per run, tab-separated: name, how (float|bits),
the bundle, the inputs (raw bytes, comma-separated, may be empty), the
expected outputs (.npy, comma-separated), all relative to DIR. Prints one
line per run and a summary; exit status 1 if any run failed.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("gpu_run")
ap.add_argument("--iterations", type=int, default=0)
A = ap.parse_args()
W = tempfile.mkdtemp(prefix="moss-gpu-")
npass = nfail = 0
for line in open(os.path.join(A.dir, "manifest.tsv")):
    f = line.rstrip("\n").split("\t")
    if len(f) != 5:
        continue
    name, how, bundle, ins, wants = f
    ins = [os.path.join(A.dir, i) for i in ins.split(",") if i]
    wants = [os.path.join(A.dir, w) for w in wants.split(",") if w]
    out = os.path.join(W, name.replace("/", "_"))
    os.makedirs(out, exist_ok=True)
    try:
        p = subprocess.run([A.gpu_run, os.path.join(A.dir, bundle), out, str(A.iterations)] + ins,
                           capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        print("FAIL %s: timed out" % name)
        nfail += 1
        continue
    if p.returncode != 0:
        print("FAIL %s: %s" % (name, (p.stderr + p.stdout).strip()[:300]))
        nfail += 1
        continue
    why = None
    for i, w in enumerate(wants):
        want = np.load(w)
        path = os.path.join(out, "out%d.bin" % i)
        raw = open(path, "rb").read() if os.path.exists(path) else None
        if raw is None or len(raw) != want.nbytes:
            why = "output %d: %s bytes, expected %d" % (i, None if raw is None else len(raw), want.nbytes)
            break
        got = np.frombuffer(raw, dtype=want.dtype).reshape(want.shape)
        if want.dtype.kind == "f" and how != "bits":
            g, e = got.astype(np.float64), want.astype(np.float64)
            ok = np.isclose(g, e, atol=1e-5, rtol=1e-4, equal_nan=True) | (g == e)
            if not ok.all():
                k = int(np.argmax(~ok.reshape(-1)))
                why = "output %d: %r, expected %r at flat index %d" % (i, g.reshape(-1)[k], e.reshape(-1)[k], k)
                break
        elif got.tobytes() != want.tobytes():
            why = "output %d: values differ" % i
            break
    if why:
        print("FAIL %s: %s" % (name, why))
        nfail += 1
    else:
        med = [l for l in p.stdout.splitlines() if l.startswith("median_us")]
        print("pass %s%s" % (name, (" " + med[0]) if med else ""))
        npass += 1
print("check_gpu: %d passed, %d failed" % (npass, nfail))
sys.exit(1 if nfail else 0)
