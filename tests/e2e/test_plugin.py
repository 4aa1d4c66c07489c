#!/usr/bin/python3
"""test_plugin.py - a model compiled for the elementwise example plugin's
target (build/plugins/elementwise/elementwise.xml) and run through the
runtime: the Add, Relu, Mul and Sigmoid nodes go to the plugin device "ew",
the Softmax in the middle to the fallback "cpu". Checks `moss compile
--explain` says so, and the outputs of `moss run` against numpy within the
DESIGN.md float tolerance (|a-b| <= 1e-5 + 1e-4 |b|).

  test_plugin.py --moss build/moss --target build/plugins/elementwise/elementwise.xml
                 [--work DIR]

Run by Debian's /usr/bin/python3 (numpy, onnx)."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ATOL, RTOL = 1e-5, 1e-4

# node name -> device it must land on
PLACEMENT = {
    "add": "ew", "relu": "ew", "softmax": "cpu", "mul": "ew", "scale": "ew", "sigmoid": "ew",
}


def make_model(path):
    """x, y [2, 8]: a = Add(x, y); r = Relu(a); s = Softmax(r, axis=-1);
    m = Mul(s, x); k = Mul(m, 3.0 constant, one element); z = Sigmoid(k);
    outputs z and r (r is also read by the Softmax on the other device)."""
    three = numpy_helper.from_array(np.array([3.0], dtype=np.float32), "three")
    nodes = [
        helper.make_node("Add", ["x", "y"], ["a"], name="add"),
        helper.make_node("Relu", ["a"], ["r"], name="relu"),
        helper.make_node("Softmax", ["r"], ["s"], name="softmax", axis=-1),
        helper.make_node("Mul", ["s", "x"], ["m"], name="mul"),
        helper.make_node("Mul", ["m", "three"], ["k"], name="scale"),
        helper.make_node("Sigmoid", ["k"], ["z"], name="sigmoid"),
    ]
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "plugin_mix",
        [helper.make_tensor_value_info("x", f32, [2, 8]),
         helper.make_tensor_value_info("y", f32, [2, 8])],
        [helper.make_tensor_value_info("z", f32, [2, 8]),
         helper.make_tensor_value_info("r", f32, [2, 8])],
        initializer=[three])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def reference(x, y):
    r = np.maximum(x + y, 0).astype(np.float32)
    e = np.exp(r - r.max(axis=-1, keepdims=True))
    s = e / e.sum(axis=-1, keepdims=True)
    k = s * x * np.float32(3.0)
    z = 1.0 / (1.0 + np.exp(-k))
    return [z.astype(np.float32), r]


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.stderr.write("FAIL: %s\nexit %d\nstdout:\n%s\nstderr:\n%s\n"
                         % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
        sys.exit(1)
    return p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--work")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="moss-plugin-")
    if os.path.isdir(work):
        shutil.rmtree(work)
    os.makedirs(work)
    model = os.path.join(work, "model.onnx")
    make_model(model)
    failures = 0

    # Placement: one line per node, "node N 'NAME' (OP) -> DEVICE [...]: why".
    out = run([args.moss, "compile", model, "--target", args.target, "--explain",
               "-o", os.path.join(work, "explain.moss")])
    for name, dev in PLACEMENT.items():
        m = re.search(r"^node \d+ '%s' \(\w+\) -> (\S+)" % re.escape(name), out, re.M)
        if not m:
            print("FAIL: --explain has no line for node '%s':\n%s" % (name, out))
            failures += 1
        elif m.group(1) != dev:
            print("FAIL: node '%s' placed on %s, expected %s" % (name, m.group(1), dev))
            failures += 1
    if "plugin:elementwise" not in out:
        print("FAIL: --explain does not name the plugin backend:\n%s" % out)
        failures += 1

    bundle = os.path.join(work, "out.moss")
    run([args.moss, "compile", model, "--target", args.target, "-o", bundle])
    rng = np.random.default_rng(7)
    for case in range(3):
        x = rng.standard_normal((2, 8)).astype(np.float32)
        y = rng.standard_normal((2, 8)).astype(np.float32)
        xp, yp = os.path.join(work, "x%d.npy" % case), os.path.join(work, "y%d.npy" % case)
        np.save(xp, x)
        np.save(yp, y)
        outdir = os.path.join(work, "out%d" % case)
        run([args.moss, "run", bundle, xp, yp, "-o", outdir])
        for i, want in enumerate(reference(x, y)):
            got = np.load(os.path.join(outdir, "output_%d.npy" % i))
            if got.shape != want.shape or got.dtype != np.float32:
                print("FAIL: case %d output %d is %s %s, expected float32 %s"
                      % (case, i, got.dtype, got.shape, want.shape))
                failures += 1
                continue
            bad = np.abs(got - want) > ATOL + RTOL * np.abs(want)
            if bad.any():
                print("FAIL: case %d output %d: %d elements off, max diff %g"
                      % (case, i, int(bad.sum()), float(np.abs(got - want).max())))
                failures += 1
    if failures:
        print("%d failure(s)" % failures)
        return 1
    print("ok: %d nodes placed as expected, 3 runs within tolerance" % len(PLACEMENT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
