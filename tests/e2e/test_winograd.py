#!/usr/bin/python3
"""Winograd (compiler/kernel/lower_winograd.c, docs/kernel.md "Winograd"):
F(2x2, 3x3), the default, and F(4x4, 3x3), taken with `moss compile
--winograd`, against a float64 numpy convolution computed here, on shapes
that reach every part of them: whole and partial vectors of tiles along a
row (the last vector recomputes a few tiles), tiles rounded up to whole
vectors (zero columns in V) or not, a row block of fewer than 6 output
channels, asymmetric and zero padding, bias, a fused Relu, a batch of 2,
outputs taller than wide; then the layers it must leave to the direct
product (too few channels; 4x4 blocks asked for on an output of whole 2x2
blocks only, which takes F(2x2)).

Tolerances: F(2x2) is held to DESIGN.md's float tolerance, 1e-5 + 1e-4 |ref|
per element (bench/winograd_error.py measures it at 0.19 of that at worst
on the benchmark models' layers, below the direct product's 0.28). F(4x4)'s
rounding error is about 1e-5 of the output's largest magnitude there, 3
times that tolerance at worst, which is why it is not the default; a wrong
index or transform is off by the order of the outputs themselves, and each
F(4x4) output here must be within 1e-4 of the largest |ref| of its case.
Each case also runs on 1 and 3 threads (the same bits), and with
MOSS_WINOGRAD=off the compiler must not take it.

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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from npref import conv_ref  # noqa: E402

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


def case(name, n, c, m, h, w_, pads, bias=True, relu=False, want=("2x2", "4x4")):
    """|want|: the blocks the default and --winograd take (None: the direct product)."""
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
    ref = conv_ref(x, w, b, pads=pads)[0]
    if relu:
        ref = np.maximum(ref, 0)
    for mode, flag, blk in (("default", [], want[0]), ("--winograd", ["--winograd"], want[1]),
                            ("off", [], None)):
        env = dict(os.environ)
        env.pop("MOSS_WINOGRAD", None)
        if mode == "off":
            env["MOSS_WINOGRAD"] = "off"
        p = subprocess.run([A.moss, "compile", d + "/model.onnx", "-o", d + "/model.moss", "--dump-kernels"] + flag,
                           capture_output=True, text=True, env=env)
        if p.returncode != 0:
            fail("%s %s: compile: %s" % (name, mode, p.stderr))
            continue
        took = [k for k in ("2x2", "4x4") if "Winograd F(%s, 3x3)" % k in p.stdout]
        if took != ([blk] if blk else []):
            fail("%s %s: took %s, expected %s" % (name, mode, took or "the direct product", blk))
        outs = []
        for t in ("1", "3"):
            r = subprocess.run([A.moss, "run", d + "/model.moss", d + "/x.npy", "-o", d + "/out" + t, "--threads", t],
                               capture_output=True, text=True)
            if r.returncode != 0:
                fail("%s %s: run: %s" % (name, mode, r.stderr))
                break
            outs.append(open(d + "/out%s/output_0.npy" % t, "rb").read())
        if len(outs) < 2:
            continue
        if outs[0] != outs[1]:
            fail("%s %s: 3 threads differ from 1" % (name, mode))
        y = np.load(d + "/out1/output_0.npy").astype(np.float64)
        if y.shape != ref.shape:
            fail("%s %s: shape %s" % (name, mode, y.shape))
            continue
        err = np.abs(y - ref)
        if blk == "4x4":
            worst = err.max() / np.abs(ref).max()
            if not worst <= 1e-4:
                fail("%s %s: error %g of the largest output" % (name, mode, worst))
            print("%s %s (F(4x4)): error %.1e of the largest output" % (name, mode, worst))
        else:
            worst = (err / (1e-5 + 1e-4 * np.abs(ref))).max()
            if not worst <= 1:
                fail("%s %s: %d elements outside the float tolerance (worst %.2f of it)" %
                     (name, mode, (err > 1e-5 + 1e-4 * np.abs(ref)).sum(), worst))
            print("%s %s (%s): worst error %.2f of the float tolerance" % (name, mode, blk and "F(%s)" % blk or "direct", worst))


case("row_of_tiles", 1, 32, 32, 20, 20, [1, 1, 1, 1])             # 10 (5) tiles a row: vectors of 8 (4) and one that overlaps
case("tall_26_channels", 1, 48, 26, 24, 16, [1, 1, 1, 1], relu=True)  # 26 = 4 row blocks of 6 + 2; Relu fused
case("no_padding", 1, 32, 32, 18, 18, [0, 0, 0, 0], bias=False)   # 16 x 16 outputs: 64 (16) tiles, no zero columns
case("asymmetric_padding", 1, 32, 32, 12, 12, [2, 0, 0, 2])        # pad top 2, left 0
case("batch_of_2", 2, 32, 40, 8, 8, [1, 1, 1, 1])                  # 4 x 4 (2 x 2) tiles
case("wide_map", 1, 32, 32, 64, 64, [1, 1, 1, 1])                  # 32 x 32 (16 x 16) tiles
case("few_channels", 1, 16, 16, 16, 16, [1, 1, 1, 1], want=(None, None))  # C M / (C + M) = 8 < 16
case("blocks_of_2_only", 1, 32, 32, 10, 10, [1, 1, 1, 1], want=("2x2", "2x2"))  # 10 x 10: F(2x2) for --winograd too

print("test_winograd: %d failure(s)" % fails)
sys.exit(1 if fails else 0)
