#!/usr/bin/python3
"""The sparse-format choice asks the backend of each layer's device.

One MatMul whose constant weight is almost all zeros, so the cost rule
(docs/sparse.md) picks a sparse format. The C and LLVM backends both take
every format (backends/backend.c: both build compiler/kernel/lower_sparse.c's
kernel descriptions), but price them with the figures of their kernels
("sparse_rule" in the report). So:
  - --emit c (the C backend's code): the scalar loops' figures pick
    block4x1 (5 blocks x 5 + 16 rows = 41 against CSR's 8 x 2.5 + 64 = 84),
  - --emit obj (the LLVM backend's code, on this machine's register tile,
    rule "tile-dense"): CSR (8 x 13.8 = 110.4 against 1x4's 5 x 22.8 = 114,
    4x1's 5 x 24.3 = 121.5 and dense 4096),
  - both give numpy's result within DESIGN.md's float tolerance,
  - and the --report JSON says which format each build took.

    test_sparse_backends.py --moss build/moss
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ATOL, RTOL = 1e-5, 1e-4


def build(d):
    rng = np.random.default_rng(7)
    w = np.zeros((64, 64), np.float32)
    w[0, :4] = rng.standard_normal(4)
    w[4:8, 9] = rng.standard_normal(4)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 64])],
        [numpy_helper.from_array(w, "w")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]),
              os.path.join(d, "m.onnx"))
    x = rng.standard_normal((4, 64)).astype(np.float32)
    np.save(os.path.join(d, "x.npy"), x)
    return x @ w


def compile_run(moss, d, emit):
    art, out, rep = (os.path.join(d, s + emit) for s in ("art_", "out_", "report_"))
    subprocess.run([moss, "compile", os.path.join(d, "m.onnx"), "--emit", emit, "-o", art, "-q",
                    "--report", rep + ".json"], check=True)
    subprocess.run([moss, "run", art, os.path.join(d, "x.npy"), "-o", out], check=True)
    with open(rep + ".json") as f:
        nodes = [n for n in json.load(f)["nodes"] if n.get("sparse_format")]
    return ([n["sparse_format"] for n in nodes], np.load(os.path.join(out, "output_0.npy")),
            [n["sparse_rule"] for n in nodes])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    a = ap.parse_args()
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        want = build(d)
        for emit, expect, rule in (("c", "block4x1", "scalar"), ("obj", "csr", "tile-dense")):
            fmt, y, rules = compile_run(a.moss, d, emit)
            if rules != [rule]:
                print("FAIL --emit %s: sparse_rule %s, expected [%r]" % (emit, rules, rule))
                bad += 1
            err = np.abs(y - want) - (ATOL + RTOL * np.abs(want))
            if fmt != [expect]:
                print("FAIL --emit %s: sparse_format %s, expected [%r]" % (emit, fmt, expect))
                bad += 1
            if err.max() > 0:
                print("FAIL --emit %s: output differs from numpy by %g" % (emit, np.abs(y - want).max()))
                bad += 1
            print("--emit %s: %s, max |diff| %g" % (emit, fmt, float(np.abs(y - want).max())))
    print("sparse_backends: %d problems" % bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
