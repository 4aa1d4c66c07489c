#!/usr/bin/env python3
"""A 512x512x512 fp32 GEMM (MatMul of a 512x512 input by a constant 512x512
weight, the weight packed at compile time) through moss and ONNX Runtime,
next to the FMA peak of one core of this machine, measured in the same run
(bench/peak_fma.c, built here with the system C compiler; these machines
differ: 57 and 143 fp32 GMAC/s per core have both been seen). moss compiles
for --target (default host) and is timed with `moss bench` (median of N
runs, one thread); ONNX Runtime runs the same file on one thread. Prints
GMAC/s, the share of the peak and the ratio; nothing here is a test.

  python3 -m pip install onnxruntime numpy onnx
  python3 bench/bench_gemm.py --moss build/moss [--target host] [--iterations 30] [--size 512]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_mlp import ort_median  # noqa: E402


def peak(work):
    exe = os.path.join(work, "peak_fma")
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-march=native", "-ffp-contract=fast",
                    os.path.join(HERE, "peak_fma.c"), "-o", exe], check=True)
    out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
    return float(re.search(r"([0-9.]+) GMAC/s", out).group(1)), out.strip()


def gemm_model(n, path):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((n, n)).astype(np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["input", "w"], ["y"])], "gemm",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [n, n])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])],
                          [numpy_helper.from_array(w, "w")])
    # IR 8: what moss and ONNX Runtime both read, whatever the onnx package's default.
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return w


def measure(moss, target, n, iterations, work):
    """The n x n x n product on moss beside the FMA peak measured now:
    (peak GMAC/s, peak line, moss seconds, moss GMAC/s, max relative error,
    the model's path, its input)."""
    pk, line = peak(work)
    path = os.path.join(work, "gemm.onnx")
    w = gemm_model(n, path)
    art = os.path.join(work, "gemm.moss")
    subprocess.run([moss, "compile", path, "--target", target, "-q", "-o", art], check=True)
    # Correctness first: moss's output against numpy's product.
    x = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    np.save(os.path.join(work, "x.npy"), x)
    subprocess.run([moss, "run", art, os.path.join(work, "x.npy"), "-o", os.path.join(work, "out")], check=True)
    y = np.load(os.path.join(work, "out", "output_0.npy"))
    ref = x.astype(np.float64) @ w.astype(np.float64)
    err = np.abs(y - ref).max() / np.abs(ref).max()
    out = subprocess.run([moss, "bench", art, "--iterations", str(iterations)], check=True,
                         capture_output=True, text=True).stdout
    t_moss = float(re.search(r"median ([0-9.]+) us", out).group(1)) * 1e-6
    return pk, line, t_moss, float(n) ** 3 / t_moss * 1e-9, err, path, x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", default=os.path.join(HERE, "..", "build", "moss"))
    ap.add_argument("--target", default="host")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--size", type=int, default=512)
    a = ap.parse_args()
    n = a.size
    pk, line, t_moss, g_moss, err, path, x = measure(a.moss, a.target, n, a.iterations,
                                                     tempfile.mkdtemp(prefix="moss-gemm-"))
    print(line)
    macs = float(n) ** 3
    print("%dx%dx%d fp32 GEMM, target %s: moss %.0f us, %.1f GMAC/s = %.0f %% of the measured peak "
          "(max relative error vs float64 %.1e)" % (n, n, n, a.target, t_moss * 1e6, g_moss, 100 * g_moss / pk, err))
    try:
        t_ort = ort_median(path, x, a.iterations) * 1e-6
    except ImportError:
        print("ONNX Runtime: not installed (python3 -m pip install onnxruntime)")
        return 0
    g_ort = macs / t_ort * 1e-9
    print("ONNX Runtime (1 thread): %.0f us, %.1f GMAC/s = %.0f %% of peak; ORT time / moss time = %.2f"
          % (t_ort * 1e6, g_ort, 100 * g_ort / pk, t_ort / t_moss))
    return 0


if __name__ == "__main__":
    sys.exit(main())
