#!/usr/bin/python3
"""Winograd F(4x4, 3x3) (compiler/kernel/lower_winograd.c, docs/kernel.md
"Winograd"), taken with `moss compile --winograd`, against a float64 numpy
convolution computed here, on shapes that reach every part of it: whole
and partial vectors of tiles along a row (the last vector recomputes a few
tiles), tiles rounded up to whole vectors (zero columns in V) or not, a
row block of fewer than 6 output channels, asymmetric and zero padding,
bias, a fused Relu, a batch of 2, outputs taller than wide.

Tolerance: Winograd's rounding error is about 1e-5 of the output's largest
magnitude on the benchmark models' layers (bench/winograd_error.py prints
it), several times the direct sum's and above DESIGN.md's element-wise
float tolerance, which is why it is not the default. A wrong index or
transform is off by the order of the outputs themselves; each output here
must be within 1e-4 of the largest |ref| of its case. Each case also runs
on 1 and 3 threads (the same bits), and without --winograd the compiler
must not take it.

  test_winograd.py --moss build/moss
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
from onnx import numpy_helper as NH

ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
A = ap.parse_args()
W = tempfile.mkdtemp(prefix="moss-winograd-")
rng = np.random.default_rng(7)
fails = 0


def fail(msg):
    global fails
    fails += 1
    print("FAIL:", msg)


def conv64(x, w, b, pads):
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
    y = np.einsum("ncijkl,mckl->nmij", win, w)
    return y + (b[None, :, None, None] if b is not None else 0)


def case(name, n, c, m, h, w_, pads, bias=True, relu=False):
    x = rng.standard_normal((n, c, h, w_)).astype(np.float32)
    w = (rng.standard_normal((m, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32) if bias else None
    oh, ow = h + pads[0] + pads[2] - 2, w_ + pads[1] + pads[3] - 2
    nodes = [H.make_node("Conv", ["x", "w"] + (["b"] if bias else []), ["c" if relu else "y"], pads=pads)]
    if relu:
        nodes.append(H.make_node("Relu", ["c"], ["y"]))
    inits = [NH.from_array(w, "w")] + ([NH.from_array(b, "b")] if bias else [])
    g = H.make_graph(nodes, name, [H.make_tensor_value_info("x", TP.FLOAT, [n, c, h, w_])],
                     [H.make_tensor_value_info("y", TP.FLOAT, [n, m, oh, ow])], inits)
    d = os.path.join(W, name)
    os.makedirs(d, exist_ok=True)
    onnx.save(H.make_model(g, opset_imports=[H.make_opsetid("", 13)]), d + "/model.onnx")
    np.save(d + "/x.npy", x)
    for flag in ([], ["--winograd"]):
        p = subprocess.run([A.moss, "compile", d + "/model.onnx", "-o", d + "/model.moss", "--dump-kernels"] + flag,
                           capture_output=True, text=True)
        if p.returncode != 0:
            fail("%s %s: compile: %s" % (name, flag, p.stderr))
            return
        if ("Winograd F(4x4, 3x3)" in p.stdout) != bool(flag):
            fail("%s: Winograd %s with flags %s" % (name, "not taken" if flag else "taken", flag))
    outs = []
    for t in ("1", "3"):
        p = subprocess.run([A.moss, "run", d + "/model.moss", d + "/x.npy", "-o", d + "/out" + t, "--threads", t],
                           capture_output=True, text=True)
        if p.returncode != 0:
            fail("%s: run: %s" % (name, p.stderr))
            return
        outs.append(open(d + "/out%s/output_0.npy" % t, "rb").read())
    if outs[0] != outs[1]:
        fail("%s: 3 threads differ from 1" % name)
    y = np.load(d + "/out1/output_0.npy").astype(np.float64)
    ref = conv64(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64) if bias else None, pads)
    if relu:
        ref = np.maximum(ref, 0)
    err = np.abs(y - ref).max() / np.abs(ref).max()
    if y.shape != ref.shape or not err <= 1e-4:
        fail("%s: error %g of the largest output" % (name, err))
    else:
        print("%s: error %.1e of the largest output" % (name, err))


case("row_of_5_tiles", 1, 8, 16, 20, 20, [1, 1, 1, 1])             # vectors of 4 tiles, a last one that overlaps
case("tall_13_channels", 1, 16, 13, 24, 16, [1, 1, 1, 1], relu=True)  # 13 = 2 row blocks of 6 + 1; Relu fused
case("no_padding", 1, 12, 8, 18, 18, [0, 0, 0, 0], bias=False)    # 16 x 16 outputs, 16 tiles: no zero columns
case("asymmetric_padding", 1, 8, 8, 12, 12, [2, 0, 0, 2])          # pad top 2, left 0
case("batch_of_2", 2, 9, 8, 8, 8, [1, 1, 1, 1])                    # 2 x 2 tiles, vectors of 2
case("wide_map", 1, 8, 24, 64, 64, [1, 1, 1, 1])                   # 16 x 16 tiles, whole vectors of 16

print("test_winograd: %d failure(s)" % fails)
sys.exit(1 if fails else 0)
