#!/usr/bin/python3
"""A long graph compiles and runs: a chain of 100,000 nodes (Relu, Neg and
Abs in turn, each followed by a Softmax over the last axis, so that no two
elementwise nodes meet and the chains pass fuses none: every node stays a
kernel of its own) is imported, planned and built to a bundle, and its
output matches numpy's. On a
terminal (a pseudo-terminal here) `moss compile` shows its progress on one
line that it clears at the end; with -q, or when standard error is not a
terminal, it prints no progress. Compile time is not asserted (timings do
not go in tests); ctest's TIMEOUT for this test stops a compile that no
longer grows linearly (issue 11: 100,000 nodes took minutes before).

  test_long_graph.py --moss build/moss [--nodes 100000]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as H

from ptyrun import run_on_pty  # noqa: E402  (beside this file)

ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
ap.add_argument("--nodes", type=int, default=100000)
a = ap.parse_args()
W = tempfile.mkdtemp(prefix="moss-long-")
n = a.nodes
ops = ["Relu", "Softmax", "Neg", "Softmax", "Abs", "Softmax"]
nodes = [H.make_node(ops[i % 6], ["x" if i == 0 else "t%d" % (i - 1)], ["t%d" % i if i < n - 1 else "y"])
         for i in range(n)]
g = H.make_graph(nodes, "chain", [H.make_tensor_value_info("x", TP.FLOAT, [1, 16])],
                 [H.make_tensor_value_info("y", TP.FLOAT, [1, 16])])
model = os.path.join(W, "chain.onnx")
onnx.save(H.make_model(g, opset_imports=[H.make_opsetid("", 13)]), model)

x = np.random.default_rng(5).standard_normal((1, 16)).astype(np.float32)
ref = x.copy()
ref = ref.astype(np.float64)
for i in range(n):
    if i % 2:  # Softmax
        e = np.exp(ref - ref.max(axis=-1, keepdims=True))
        ref = e / e.sum(axis=-1, keepdims=True)
    else:
        ref = np.maximum(ref, 0) if i % 6 == 0 else -ref if i % 6 == 2 else np.abs(ref)
np.save(os.path.join(W, "x.npy"), x)
fails = 0

# Compile on a pseudo-terminal: the progress line appears and is cleared.
out = os.path.join(W, "chain.moss")
rc, text = run_on_pty([a.moss, "compile", model, "-o", out])
if rc != 0:
    print("FAIL: compile on a terminal exited %d:\n%s" % (rc, text[-2000:]))
    sys.exit(1)
if "moss: kernels" not in text or "\r\x1b[K" not in text:
    print("FAIL: no progress line (or not cleared) on a terminal:\n%r" % text[-2000:])
    fails += 1

# Not a terminal: no progress, and -q prints nothing at all.
r = subprocess.run([a.moss, "compile", model, "-q", "-o", out], capture_output=True, text=True)
if r.returncode != 0 or r.stderr or r.stdout:
    print("FAIL: -q compile: exit %d, stderr %r" % (r.returncode, r.stderr[-500:]))
    fails += 1
r = subprocess.run([a.moss, "compile", model, "-o", out], capture_output=True, text=True)
if r.returncode != 0 or "\r" in r.stderr or "kernels" in r.stderr:
    print("FAIL: compile to a pipe: exit %d, progress in %r" % (r.returncode, r.stderr[-500:]))
    fails += 1

subprocess.run([a.moss, "run", out, os.path.join(W, "x.npy"), "-o", os.path.join(W, "out")], check=True)
y = np.load(os.path.join(W, "out", "output_0.npy"))
if y.shape != ref.shape or not np.all(np.abs(y - ref) <= 1e-5 + 1e-4 * np.abs(ref)):  # DESIGN.md's float tolerance
    print("FAIL: output %r, want %r" % (y, ref))
    fails += 1
print("test_long_graph: %d nodes, %d failures" % (n, fails))
sys.exit(1 if fails else 0)
