#!/usr/bin/python3
"""Softmax rows on the vector path (compiler/kernel/lower_softmax.c): rows
of at least two whole vectors take their maximum and their sum in lanes of
partial results. Checked against numpy in float64 (DESIGN.md's float
tolerance, 1e-5 + 1e-4 |ref|) on row lengths 7 (the scalar path), 32, 37,
100 and 128, over the last axis and over a middle one (scalar), with rows
holding -inf (exp gives 0), a NaN and a +inf (ONNX: the row is NaN), and
one large value (the maximum must be the row's: exp would overflow); the
bundle (LLVM backend) and --emit c must both match, and the bundle must
have taken the vector path (--dump-kernels shows the lanes' maximum).

  test_softmax.py --moss build/moss
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


def ref(x, axis):
    x = x.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        m = x.max(axis=axis, keepdims=True)
        e = np.exp(x - m)
        return e / e.sum(axis=axis, keepdims=True)


def same(got, want):
    nan = np.isnan(want)
    return got.shape == want.shape and np.array_equal(np.isnan(got), nan) and \
        bool(np.all(np.abs(got[~nan] - want[~nan]) <= 1e-5 + 1e-4 * np.abs(want[~nan])))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    moss = ap.parse_args().moss
    rng = np.random.default_rng(5)
    bad = 0
    with tempfile.TemporaryDirectory() as work:
        for shape, axis in (((3, 7), -1), ((4, 32), -1), ((5, 37), -1), ((2, 3, 100), -1), ((6, 128), -1),
                            ((2, 40, 3), 1)):
            x = (rng.standard_normal(shape) * 4).astype(np.float32)
            flat = x.reshape(-1, shape[-1]) if axis == -1 else None
            if flat is not None and flat.shape[0] >= 4:
                flat[1, -1] = -np.inf
                flat[2, 0] = np.nan
                flat[3, flat.shape[1] // 2] = np.inf
                flat[0, flat.shape[1] * 2 // 3] = 300.0  # exp overflows unless it is the maximum
            name = "softmax_" + "x".join(map(str, shape))
            g = H.make_graph([H.make_node("Softmax", ["x"], ["y"], axis=axis)], name,
                             [H.make_tensor_value_info("x", TP.FLOAT, list(shape))],
                             [H.make_tensor_value_info("y", TP.FLOAT, list(shape))])
            m = H.make_model(g, opset_imports=[H.make_opsetid("", 13)])
            m.ir_version = 8
            path = os.path.join(work, name + ".onnx")
            onnx.save(m, path)
            xin = os.path.join(work, name + "_x.npy")
            np.save(xin, x)
            want = ref(x, axis)
            for emit in ("bundle", "c"):
                art = os.path.join(work, name + "." + emit)
                cmd = [moss, "compile", path, "--emit", emit, "-o", art, "-q"]
                if emit == "bundle":
                    cmd.append("--dump-kernels")
                p = subprocess.run(cmd, capture_output=True, text=True)
                if p.returncode:
                    sys.exit("FAIL: %s: %s" % (" ".join(cmd), p.stderr))
                vector = "vm = max(" in p.stdout
                out = os.path.join(work, name + "_out_" + emit)
                subprocess.run([moss, "run", art, xin, "-o", out], check=True, capture_output=True)
                got = np.load(os.path.join(out, "output_0.npy"))
                ok = same(got, want)
                want_vector = emit == "bundle" and axis == -1 and shape[-1] >= 32
                if emit == "bundle" and vector != want_vector:
                    ok = False
                print("%-22s %-6s %s%s" % (name, emit, "ok " if ok else "BAD",
                                          " (vector path)" if vector else ""))
                bad += not ok
    if bad:
        sys.exit("FAIL: %d softmax builds" % bad)
    print("softmax: every build matches numpy")


if __name__ == "__main__":
    main()
