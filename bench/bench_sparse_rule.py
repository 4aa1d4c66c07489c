#!/usr/bin/env python3
"""What each sparse weight format costs on one backend, in dense
multiply-adds: the figures behind the sparse pass's cost rule
(docs/sparse.md, compiler/ops/sparse.h), measured.

Layers (float32, batch 1, random weights):
  conv3x3   64 -> 64 channels, 3x3, pads 1, on 28x28
  conv1x1  128 -> 128 channels, 1x1, on 28x28
  gemv     Gemm 1024 -> 1024 on one row (a pruned MLP's layer)
  matmul   MatMul of 64 rows by a 512 x 512 weight
  matmul2  MatMul of 128 rows by a 256 x 1024 weight (a transformer's feed-forward)
each pruned five ways: random zeros at 75, 90 and 95 %, zeros in 4x1
blocks at 90 %, in 1x4 blocks at 90 %, and 2:4 (two zeros in every group
of four reduction terms). Every model is compiled for --target (default:
this machine, whose bundles take the LLVM backend; bench/host-c.xml for the
C backend) under MOSS_SPARSE=off (the dense twin) and under each format the
weight can take, and timed with `moss bench --threads 1` (median of N).

A format's cost is its time over the dense twin's, times the weight's
rows x cols: dense multiply-adds. Per stored unit (CSR: nonzero; 4x1 and
1x4: block; 2:4: group of four terms) it is that over the units; it
includes the per-row work and the layer's fixed costs (the input copy of
the implicit product), so it comes out a little high at high sparsity.
Prints the figures per layer and pattern, then their medians per layer
kind beside the rule's constants. Nothing here is a test.

  python3 bench/bench_sparse_rule.py --moss build/moss [--target bench/host-c.xml] [--iterations 200]
      [--layers gemv,matmul]
"""
import argparse
import os
import re
import subprocess
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
LAYERS = [("conv3x3", "conv", (64, 64, 3, 28)), ("conv1x1", "conv", (128, 128, 1, 28)),
          ("gemv", "linear", (1, 1024, 1024)), ("matmul", "matmul", (64, 512, 512)),
          ("matmul2", "matmul", (128, 256, 1024))]
PATTERNS = ["random75", "random90", "random95", "block4x1_90", "block1x4_90", "2:4"]
# The rule's figures (compiler/ops/sparse.h), per stored unit: the scalar
# kernels' (the C backend's, and any machine without the register tile),
# and the LLVM backend's where it has the tile.
UNIT = {"csr": "nonzero", "block": "4x1 block", "block1x4": "1x4 block", "2:4": "group of 4"}


def prune(w, pattern, rng):
    """|w| as [rows = outputs, cols = reduction terms], zeroed by |pattern|."""
    w = w.copy()
    r, c = w.shape
    if pattern.startswith("random"):
        w[rng.random(w.shape) < int(pattern[6:]) / 100.0] = 0
    elif pattern.startswith("block4x1"):
        keep = rng.random((r // 4, c)) >= 0.9
        w *= np.repeat(keep, 4, axis=0)
    elif pattern.startswith("block1x4"):
        keep = rng.random((r, c // 4)) >= 0.9
        w *= np.repeat(keep, 4, axis=1)
    else:  # 2:4: keep the two largest of every group of four
        g = np.abs(w).reshape(r, c // 4, 4)
        drop = np.argsort(g, axis=2)[:, :, :2]
        m = np.ones_like(g)
        np.put_along_axis(m, drop, 0, axis=2)
        w *= m.reshape(r, c)
    return w


def units(w, fmt):
    r, c = w.shape
    nz = w != 0
    if fmt == "csr":
        return int(nz.sum())
    if fmt == "block":
        return int(nz.reshape(r // 4, 4, c).any(axis=1).sum())
    if fmt == "block1x4":
        return int(nz.reshape(r, c // 4, 4).any(axis=2).sum())
    return r * ((c + 3) // 4)


def model(kind, shape, wt, path):
    inits = [numpy_helper.from_array(np.zeros(wt.shape[0], np.float32), "b")]
    if kind == "conv":
        cin, cout, k, hw = shape
        inits.append(numpy_helper.from_array(wt.reshape(cout, cin, k, k), "w"))
        node = helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[k // 2] * 4, kernel_shape=[k, k])
        xs = [1, cin, hw, hw]
    else:
        m, kk, n = shape
        inits.append(numpy_helper.from_array(np.ascontiguousarray(wt.T), "w"))
        node = helper.make_node("Gemm", ["x", "w", "b"], ["y"]) if m == 1 else \
            helper.make_node("MatMul", ["x", "w"], ["y"])
        if m != 1:
            inits.pop(0)
        xs = [m, kk]
    g = helper.make_graph([node], "layer", [helper.make_tensor_value_info("x", TensorProto.FLOAT, xs)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    mo = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    mo.ir_version = 8
    onnx.save(mo, path)


def median_us(moss, path, target, fmt, iters, work):
    env = dict(os.environ, MOSS_SPARSE=fmt, MOSS_WINOGRAD="off")
    art = os.path.join(work, "m.moss")
    cmd = [moss, "compile", path, "-q", "-o", art]
    if target:
        cmd += ["--target", target]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit("moss compile failed: " + p.stderr)
    out = subprocess.run([moss, "bench", art, "--iterations", str(iters), "--threads", "1"], check=True,
                         capture_output=True, text=True).stdout
    return float(re.search(r"median ([0-9.]+) us", out).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", default=os.path.join(HERE, "..", "build", "moss"))
    ap.add_argument("--target", default="")
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--layers", default="", help="comma-separated layer names (default: all)")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="moss-sparse-rule-")
    rng = np.random.default_rng(3)
    per = {}
    print("%-8s %-12s %10s %-9s %9s %12s %10s" % ("layer", "pattern", "dense us", "format", "us",
                                                 "dense MACs", "per unit"))
    for name, kind, shape in LAYERS:
        if a.layers and name not in a.layers.split(","):
            continue
        rows = shape[1] if kind == "conv" else shape[2]
        cols = shape[0] * shape[2] * shape[2] if kind == "conv" else shape[1]
        w0 = (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)
        for pat in PATTERNS:
            w = prune(w0, pat, rng)
            path = os.path.join(work, "%s_%s.onnx" % (name, pat.replace(":", "")))
            model(kind, shape, w, path)
            td = median_us(a.moss, path, a.target, "off", a.iterations, work)
            fmts = ["csr", "block"] + (["block1x4"] if pat.startswith("block1x4") or pat == "2:4" else [])
            fmts += ["2:4"] if pat == "2:4" else []
            for fmt in fmts:
                t = median_us(a.moss, path, a.target, fmt, a.iterations, work)
                cost = t / td * rows * cols
                u = units(w, fmt)
                per.setdefault((kind, fmt), []).append(cost / u)
                print("%-8s %-12s %10.1f %-9s %9.1f %12.0f %10.2f" % (name, pat, td, fmt, t, cost, cost / u))
    print("\nmedian cost per stored unit, in dense multiply-adds (%s):" % (a.target or "this machine"))
    for (kind, fmt), v in sorted(per.items()):
        print("  %-6s %-9s per %-11s %6.2f  (%d layers: %s)" % (kind, fmt, UNIT[fmt], float(np.median(v)), len(v),
                                                               " ".join("%.2f" % x for x in v)))


if __name__ == "__main__":
    main()
