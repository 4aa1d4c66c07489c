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

The int8 table takes the same models (dense and 90 % sparse) to the QDQ
form an int8 exporter writes (per-channel symmetric int8 weights, int32
bias, uint8 activations with ranges from a float run on calibration inputs)
and times that model in moss (the qdq pass folds it to integer-only
kernels) and in ONNX Runtime (which runs QDQ graphs with its int8 kernels),
next to the float model.

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


def layers_of(m):
    """(W [N, K], b) of each Gemm (transB=1) in order."""
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    out = []
    for n in m.graph.node:
        if n.op_type == "Gemm":
            assert n.attribute and any(a.name == "transB" and a.i == 1 for a in n.attribute)
            out.append((init[n.input[1]].astype(np.float32), init[n.input[2]].astype(np.float32)))
    return out


def uint8_params(lo, hi):
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    s = max((hi - lo) / 255.0, 1e-8)
    return np.float32(s), np.uint8(np.clip(round(-lo / s), 0, 255))


def qdq_mlp(m, x_cal):
    """The float Gemm/Relu stack |m| in QDQ form (see the module docstring)."""
    layers = layers_of(m)
    acts = [x_cal]
    for i, (w, b) in enumerate(layers):
        h = acts[-1] @ w.T + b
        acts.append(np.maximum(h, 0) if i < len(layers) - 1 else h)
    nodes, inits = [], []

    def const(name, a):
        inits.append(numpy_helper.from_array(np.asarray(a), name))
        return name

    def qdq(x, i):
        s, z = uint8_params(acts[i].min(), acts[i].max())
        sc, zc = const("s%d" % i, s), const("z%d" % i, z)
        nodes.append(helper.make_node("QuantizeLinear", [x, sc, zc], ["q%d" % i]))
        nodes.append(helper.make_node("DequantizeLinear", ["q%d" % i, sc, zc], ["dq%d" % i]))
        return "dq%d" % i, s

    x, sx = qdq("input", 0)
    for i, (w, b) in enumerate(layers):
        sw = (np.abs(w).max(axis=1) / 127).astype(np.float32)
        sw[sw == 0] = 1
        wq = np.clip(np.rint(w / sw[:, None]), -127, 127).astype(np.int8)
        bs = (sx * sw).astype(np.float32)
        bq = np.rint(b / bs).astype(np.int32)
        nodes.append(helper.make_node("DequantizeLinear", [const("wq%d" % i, wq), const("ws%d" % i, sw),
                                                          const("wz%d" % i, np.zeros(len(sw), np.int8))],
                                      ["w%d" % i], axis=0))
        nodes.append(helper.make_node("DequantizeLinear", [const("bq%d" % i, bq), const("bs%d" % i, bs),
                                                          const("bz%d" % i, np.zeros(len(bs), np.int32))],
                                      ["b%d" % i], axis=0))
        y = "h%d" % i
        nodes.append(helper.make_node("Gemm", [x, "w%d" % i, "b%d" % i], [y], transB=1))
        if i < len(layers) - 1:
            nodes.append(helper.make_node("Relu", [y], [y + "r"]))
            y += "r"
        x, sx = qdq(y, i + 1)
    k, n = layers[0][0].shape[1], layers[-1][0].shape[0]
    g = helper.make_graph(nodes, "mlp_qdq", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, k])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, n])], inits)
    q = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    q.ir_version = 8
    return q


def moss_median(moss, path, shape, sparse, iters, work):
    env = dict(os.environ, MOSS_SPARSE=sparse)
    art = os.path.join(work, "m_%s.moss" % sparse)
    subprocess.run([moss, "compile", path, "-q", "-o", art, "--input-shape", "input=" + shape],
                   check=True, env=env)
    out = subprocess.run([moss, "bench", art, "--iterations", str(iters), "--threads", "1"], check=True,
                         capture_output=True, text=True, env=env).stdout
    return float(re.search(r"median ([0-9.]+) us", out).group(1))


def ort_median(path, x, iters, threads=1):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
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
        print()
        print("model        sparsity  moss fp32 (us)  moss int8 (us)  ORT fp32 (us)  ORT int8 (us)"
              "  moss fp32/int8  ORT-int8/moss-int8")
        for name, make, width in (("digits-mlp", digits, 64), ("mlp-256-4096", None, 256)):
            for s in (0.0, 0.9):
                m = make(s) if make else mlp([256, 4096, 256], np.random.default_rng(0), s)
                cal = np.random.default_rng(2).standard_normal((256, width)).astype(np.float32)
                if make:
                    cal = np.load(os.path.join(os.path.dirname(DIGITS), "x_calib_mlp.npy"))
                fpath = os.path.join(work, "%s_%g_f.onnx" % (name, s))
                qpath = os.path.join(work, "%s_%g_q.onnx" % (name, s))
                onnx.save(m, fpath)
                onnx.save(qdq_mlp(m, cal), qpath)
                x = cal[:1].copy()
                iters = a.iterations if width < 256 else max(200, a.iterations // 10)
                f32 = moss_median(moss, fpath, "1x%d" % width, "auto", iters, work)
                i8 = moss_median(moss, qpath, "1x%d" % width, "auto", iters, work)
                of = ort_median(fpath, x, iters)
                oq = ort_median(qpath, x, iters)
                print("%-12s %7.0f%%  %14.2f  %14.2f  %13.2f  %13.2f  %14.2fx  %18.2fx" %
                      (name, s * 100, f32, i8, of, oq, f32 / i8, oq / i8))
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
