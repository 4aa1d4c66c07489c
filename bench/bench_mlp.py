#!/usr/bin/env python3
"""Latency of moss against ONNX Runtime on MLPs, dense and sparse.

Models: the digits MLP (tests/e2e/digits/mlp.onnx, 64-64-32-10) and a wide
MLP stack 256-4096-256 with random weights, each at 0/50/75/90/95 % weight
sparsity (the smallest |w| zeroed per layer). Each is compiled by moss twice,
with the sparse pass off (MOSS_SPARSE=off: dense kernels) and on
(MOSS_SPARSE=auto: the pass picks the format per layer), timed with
`moss bench` (median of N runs, batch 1), and run by ONNX Runtime in the same
process run (one thread, all graph optimizations, median of N runs). Prints
medians and ratios; nothing here is a test.

Needs onnxruntime, numpy and onnx in the interpreter that runs it (pip; this
is the one place moss uses a PyPI package):
  python3 -m pip install onnxruntime numpy onnx
  python3 bench/bench_mlp.py --moss build/moss [--iterations 2000]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
DIGITS = os.path.join(HERE, "..", "tests", "e2e", "digits", "mlp.onnx")


def prune(w, sparsity):
    if sparsity <= 0:
        return w
    k = int(round(w.size * sparsity))
    idx = np.argsort(np.abs(w), axis=None, kind="stable")[:k]
    w = w.copy()
    w.flat[idx] = 0
    return w


def mlp(widths, rng, sparsity):
    """Gemm+Relu layers (the last without Relu), transB=1 like torch exports."""
    nodes, inits = [], []
    x = "input"
    for i in range(len(widths) - 1):
        w = (rng.standard_normal((widths[i + 1], widths[i])) / np.sqrt(widths[i])).astype(np.float32)
        b = (rng.standard_normal(widths[i + 1]) * 0.01).astype(np.float32)
        inits += [numpy_helper.from_array(prune(w, sparsity), "w%d" % i),
                  numpy_helper.from_array(b, "b%d" % i)]
        y = "h%d" % i
        nodes.append(helper.make_node("Gemm", [x, "w%d" % i, "b%d" % i], [y], transB=1))
        if i < len(widths) - 2:
            nodes.append(helper.make_node("Relu", [y], [y + "r"]))
            y += "r"
        x = y
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, widths[0]])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, widths[-1]])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def digits(sparsity):
    m = onnx.load(DIGITS)
    for t in m.graph.initializer:
        a = numpy_helper.to_array(t)
        if a.ndim == 2:
            t.CopyFrom(numpy_helper.from_array(prune(a, sparsity), t.name))
    return m


def moss_median(moss, path, shape, sparse, iters, work):
    env = dict(os.environ, MOSS_SPARSE=sparse)
    art = os.path.join(work, "m_%s.moss" % sparse)
    subprocess.run([moss, "compile", path, "-q", "-o", art, "--input-shape", "input=" + shape],
                   check=True, env=env)
    out = subprocess.run([moss, "bench", art, "--iterations", str(iters)], check=True,
                         capture_output=True, text=True, env=env).stdout
    return float(re.search(r"median ([0-9.]+) us", out).group(1))


def ort_median(path, x, iters):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    for _ in range(min(200, iters)):
        s.run(None, {name: x})
    t = []
    for _ in range(iters):
        t0 = time.perf_counter()
        s.run(None, {name: x})
        t.append(time.perf_counter() - t0)
    return float(np.median(t)) * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", default=os.path.join(HERE, "..", "build", "moss"))
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--sparsity", default="0,0.5,0.75,0.9,0.95")
    a = ap.parse_args()
    moss = os.path.abspath(a.moss)
    rng = np.random.default_rng(0)
    levels = [float(s) for s in a.sparsity.split(",")]
    print("model        sparsity  moss dense (us)  moss sparse (us)  ORT (us)  sparse/dense  ORT/moss-best")
    with tempfile.TemporaryDirectory() as work:
        for name, make, width in (("digits-mlp", digits, 64), ("mlp-256-4096", None, 256)):
            for s in levels:
                m = make(s) if make else mlp([256, 4096, 256], rng, s)
                path = os.path.join(work, "%s_%g.onnx" % (name, s))
                onnx.save(m, path)
                x = np.random.default_rng(1).standard_normal((1, width)).astype(np.float32)
                iters = a.iterations if width < 256 else max(200, a.iterations // 10)
                dense = moss_median(moss, path, "1x%d" % width, "off", iters, work)
                sparse = moss_median(moss, path, "1x%d" % width, "auto", iters, work)
                ortt = ort_median(path, x, iters)
                print("%-12s %7.0f%%  %15.2f  %16.2f  %8.2f  %12.2fx  %12.2fx" %
                      (name, s * 100, dense, sparse, ortt, dense / sparse, ortt / min(dense, sparse)))
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
