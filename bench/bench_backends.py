#!/usr/bin/env python3
"""The LLVM backend against the C backend (the same kernel descriptions
printed as C and built by the system compiler with -march=native), on the
models of the other benchmarks, with ONNX Runtime beside them: the digits
MLP and CNN, the wide 256-4096-256 MLP, the two convolution layers of
bench_conv.py and ResNet-18 (bench/make_resnet18.py). Each is compiled for
`host` (LLVM) and bench/host-c.xml (C) and timed with `moss bench` (median
of N runs, one thread); ONNX Runtime runs the same file on one thread.
Prints medians, C/LLVM (above 1: LLVM faster) and ORT/LLVM; nothing here
is a test.

  python3 -m pip install onnxruntime numpy onnx
  python3 bench/bench_backends.py --moss build/moss [--iterations 200]
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
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_mlp import ort_median  # noqa: E402


def moss_time(moss, model, target, shape, iters, work, tag):
    art = os.path.join(work, tag + ".moss")
    cmd = [moss, "compile", model, "--target", target, "-q", "-o", art]
    if shape:
        cmd += ["--input-shape", "input=" + shape]
    subprocess.run(cmd, check=True)
    out = subprocess.run([moss, "bench", art, "--iterations", str(iters)], check=True,
                         capture_output=True, text=True).stdout
    return float(re.search(r"median ([0-9.]+) us", out).group(1))


def conv_model(path, cin, cout, k, hw):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((cout, cin, k, k)).astype(np.float32) * 0.1
    b = rng.standard_normal(cout).astype(np.float32)
    g = helper.make_graph([helper.make_node("Conv", ["input", "w", "b"], ["y"], pads=[k // 2] * 4,
                                            kernel_shape=[k, k])], "conv",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, cin, hw, hw])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, hw, hw])],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)


def wide_mlp(path):
    rng = np.random.default_rng(0)
    dims = [256, 4096, 256]
    nodes, inits, x = [], [], "input"
    for i in range(2):
        w = (rng.standard_normal((dims[i], dims[i + 1])) / np.sqrt(dims[i])).astype(np.float32)
        inits.append(numpy_helper.from_array(w, "w%d" % i))
        y = "h%d" % i if i == 0 else "y"
        nodes.append(helper.make_node("MatMul", [x, "w%d" % i], [y + "_mm"]))
        nodes.append(helper.make_node("Relu" if i == 0 else "Identity", [y + "_mm"], [y]))
        x = y
    g = helper.make_graph(nodes, "wide", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 256])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", default=os.path.join(ROOT, "build", "moss"))
    ap.add_argument("--iterations", type=int, default=200)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="moss-backends-")
    hostc = os.path.join(HERE, "host-c.xml")
    d = os.path.join(ROOT, "tests", "e2e", "digits")
    models = [("digits MLP", os.path.join(d, "mlp.onnx"), "1x64", (1, 64), a.iterations * 10),
              ("digits CNN", os.path.join(d, "cnn.onnx"), "1x1x8x8", (1, 1, 8, 8), a.iterations * 10)]
    p = os.path.join(work, "wide.onnx")
    wide_mlp(p)
    models.append(("MLP 256-4096-256", p, None, (1, 256), a.iterations))
    for name, cin, cout, k, hw in (("conv 3x3 64->64 28x28", 64, 64, 3, 28), ("conv 1x1 128->128 14x14", 128, 128, 1, 14)):
        p = os.path.join(work, name.split()[1] + ".onnx")
        conv_model(p, cin, cout, k, hw)
        models.append((name, p, None, (1, cin, hw, hw), a.iterations))
    p = os.path.join(work, "resnet18.onnx")
    subprocess.run([sys.executable, os.path.join(HERE, "make_resnet18.py"), p], check=True, capture_output=True)
    models.append(("ResNet-18", p, None, (1, 3, 224, 224), max(5, a.iterations // 20)))
    print("| model | moss LLVM | moss C (gcc) | ONNX Runtime | C/LLVM | ORT/LLVM |")
    print("|---|---|---|---|---|---|")
    for name, path, shape, xs, iters in models:
        tl = moss_time(a.moss, path, "host", shape, iters, work, "llvm")
        tc = moss_time(a.moss, path, hostc, shape, iters, work, "c")
        x = np.random.default_rng(1).standard_normal(xs).astype(np.float32)
        try:
            to = ort_median(path, x, iters)
        except ImportError:
            to = float("nan")
        print("| %s | %.2f us | %.2f us | %.2f us | %.2fx | %.2fx |" % (name, tl, tc, to, tc / tl, to / tl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
