#!/usr/bin/python3
"""Rows on the vector path: Softmax (compiler/kernel/lower_softmax.c) and
the float sums of ReduceSum, ReduceMean, ReduceSumSquare, ReduceL1,
ReduceL2 and ReduceLogSum (compiler/kernel/lower_reduce.c) over a
contiguous run of at least two whole vectors take their maximum and sums
in lanes of partial results.

Softmax: Checked against numpy in float64 (DESIGN.md's float
tolerance, 1e-5 + 1e-4 |ref|) on row lengths 7 (the scalar path), 32, 37,
100 and 128, over the last axis and over a middle one (scalar), with rows
holding -inf (exp gives 0), a NaN and a +inf (ONNX: the row is NaN), and
one large value (the maximum must be the row's: exp would overflow); the
bundle (LLVM backend) and --emit c must both match, and the bundle must
have taken the vector path (--dump-kernels shows the lanes' maximum).
Reductions: the same lengths over the last axis and over the last two
(one contiguous run), and a middle axis (strided: the scalar path), against
numpy in float64, bundle and C; the bundle must have taken the vector sum
where the run is long enough (--dump-kernels shows the lanes' sum).

  test_rows.py --moss build/moss
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnx.numpy_helper
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


def check(moss, work, name, node, x, oshape, want, marker, want_vector, inits=()):
    """Builds the one-node model, runs it as a bundle and as C on |x|, and
    compares with |want|; the bundle's --dump-kernels must show |marker|
    exactly when |want_vector|. Returns the number of bad builds."""
    g = H.make_graph([node], name, [H.make_tensor_value_info("x", TP.FLOAT, list(x.shape))],
                     [H.make_tensor_value_info("y", TP.FLOAT, list(oshape))], list(inits))
    m = H.make_model(g, opset_imports=[H.make_opsetid("", 13)])
    m.ir_version = 8
    path = os.path.join(work, name + ".onnx")
    onnx.save(m, path)
    xin = os.path.join(work, name + "_x.npy")
    np.save(xin, x)
    bad = 0
    for emit in ("bundle", "c"):
        art = os.path.join(work, name + "." + emit)
        cmd = [moss, "compile", path, "--emit", emit, "-o", art, "-q"] + (["--dump-kernels"] if emit == "bundle" else [])
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode:
            sys.exit("FAIL: %s: %s" % (" ".join(cmd), p.stderr))
        vector = marker in p.stdout
        out = os.path.join(work, name + "_out_" + emit)
        subprocess.run([moss, "run", art, xin, "-o", out], check=True, capture_output=True)
        ok = same(np.load(os.path.join(out, "output_0.npy")), want)
        if emit == "bundle" and vector != want_vector:
            ok = False
        print("%-30s %-6s %s%s" % (name, emit, "ok " if ok else "BAD", " (vector path)" if vector else ""))
        bad += not ok
    return bad


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
            bad += check(moss, work, "softmax_" + "x".join(map(str, shape)),
                         H.make_node("Softmax", ["x"], ["y"], axis=axis), x, shape, ref(x, axis), "vm = max(",
                         axis == -1 and shape[-1] >= 32)
        refs = {"ReduceSum": lambda x, ax: x.sum(axis=ax, keepdims=True),
                "ReduceMean": lambda x, ax: x.mean(axis=ax, keepdims=True),
                "ReduceSumSquare": lambda x, ax: (x * x).sum(axis=ax, keepdims=True),
                "ReduceL1": lambda x, ax: np.abs(x).sum(axis=ax, keepdims=True),
                "ReduceL2": lambda x, ax: np.sqrt((x * x).sum(axis=ax, keepdims=True)),
                "ReduceLogSum": lambda x, ax: np.log(x.sum(axis=ax, keepdims=True))}
        for op, f in refs.items():
            for shape, axes in (((5, 37), [1]), ((3, 128), [1]), ((2, 3, 20), [1, 2]), ((4, 40, 3), [1]),
                                ((6, 7), [1])):
                x = rng.standard_normal(shape).astype(np.float32)
                if op == "ReduceLogSum":
                    x = np.abs(x)
                # opset 13: axes an input of ReduceSum, an attribute of the others
                inits = [onnx.numpy_helper.from_array(np.array(axes, np.int64), "axes")] if op == "ReduceSum" else []
                node = H.make_node(op, ["x", "axes"] if inits else ["x"], ["y"], **({} if inits else {"axes": axes}))
                run = int(np.prod([shape[k] for k in axes]))
                contiguous = axes == list(range(axes[0], len(shape)))
                bad += check(moss, work, "%s_%s_%s" % (op, "x".join(map(str, shape)), "".join(map(str, axes))),
                             node, x, [1 if k in axes else d for k, d in enumerate(shape)],
                             f(x.astype(np.float64), tuple(axes)), "acc = hsum(vs)", contiguous and run >= 32, inits)
    if bad:
        sys.exit("FAIL: %d builds" % bad)
    print("rows: every build matches numpy")


if __name__ == "__main__":
    main()
