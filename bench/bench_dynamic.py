#!/usr/bin/env python3
"""Outputs whose length the run decides (docs/dynamic-shapes.md) against
ONNX Runtime, one thread each: NonMaxSuppression as a detector's tail runs
it (random boxes and scores, the scores an input, the boxes a constant),
NonZero of a mask, Unique of small integers. Compiled for `host` (LLVM),
timed with `moss bench` on the same input file (median of N runs); ONNX
Runtime runs the same model. Prints the medians, ORT/moss (above 1: moss
faster), the output lengths and whether both give the same output.
Nothing here is a test.

  python3 -m pip install onnxruntime numpy onnx
  python3 bench/bench_dynamic.py --moss build/moss [--iterations 200]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as H
from onnx import numpy_helper as NH

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_mlp import ort_median  # noqa: E402


def nms_case(n, c, keep, power=1):
    """|power| > 1: most scores low, as a detector's class scores are (a
    few boxes per class above the 0.2 threshold)."""
    rng = np.random.default_rng(n + c)
    xy = rng.random((1, n, 2)).astype(np.float32) * 100
    wh = rng.random((1, n, 2)).astype(np.float32) * 20 + 2
    boxes = np.concatenate([xy, xy + wh], axis=2)
    scores = (rng.random((1, c, n)) ** power).astype(np.float32)
    nodes = [H.make_node("NonMaxSuppression", ["boxes", "scores", "maxb", "iou", "thr"], ["sel"])]
    inits = {"boxes": boxes, "maxb": np.array([keep], np.int64), "iou": np.array([0.5], np.float32),
             "thr": np.array([0.2], np.float32)}
    return nodes, ("scores", TP.FLOAT, [1, c, n]), ("sel", TP.INT64, ["k", 3]), inits, scores


def nonzero_case(h, w):
    x = (np.random.default_rng(h).random((h, w)) < 0.3).astype(np.float32)
    return [H.make_node("NonZero", ["x"], ["y"])], ("x", TP.FLOAT, [h, w]), ("y", TP.INT64, [2, "k"]), {}, x


def unique_case(n, hi):
    x = np.random.default_rng(n).integers(0, hi, n).astype(np.int64)
    return ([H.make_node("Unique", ["x"], ["y"], sorted=1)], ("x", TP.INT64, [n]), ("y", TP.INT64, ["k"]), {}, x)


CASES = [("nms-200x3-keep20", lambda: nms_case(200, 3, 20)), ("nms-1000x1-keep100", lambda: nms_case(1000, 1, 100)),
         ("nms-2000x20-sparse", lambda: nms_case(2000, 20, 50, power=16)),
         ("nonzero-64x64", lambda: nonzero_case(64, 64)), ("unique-1000-of-100", lambda: unique_case(1000, 100))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", default=os.path.join(HERE, "..", "build", "moss"))
    ap.add_argument("--iterations", type=int, default=200)
    a = ap.parse_args()
    moss = os.path.abspath(a.moss)
    work = tempfile.mkdtemp(prefix="moss-bench-dynamic-")
    import onnxruntime as ort
    print("%-20s %11s %11s %8s %7s %5s" % ("case", "moss us", "ORT us", "ORT/moss", "length", "same"))
    for name, make in CASES:
        nodes, xin, yout, inits, x = make()
        g = H.make_graph(nodes, name, [H.make_tensor_value_info(*xin)], [H.make_tensor_value_info(*yout)],
                         [NH.from_array(v, k) for k, v in inits.items()])
        m = H.make_model(g, opset_imports=[H.make_opsetid("", 13)])
        m.ir_version = 8
        path = os.path.join(work, name + ".onnx")
        onnx.save(m, path)
        np.save(os.path.join(work, name + ".npy"), x)
        art = os.path.join(work, name + ".moss")
        subprocess.run([moss, "compile", path, "--target", "host", "-o", art, "-q"], check=True)
        b = subprocess.run([moss, "bench", art, os.path.join(work, name + ".npy"), "--iterations",
                            str(a.iterations), "--threads", "1"], check=True, capture_output=True, text=True).stdout
        mt = float(re.search(r"median ([0-9.]+) us", b).group(1))
        ot = ort_median(path, x, a.iterations)
        subprocess.run([moss, "run", art, os.path.join(work, name + ".npy"), "-o", os.path.join(work, name)],
                       check=True)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        ref = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(None, {xin[0]: x})[0]
        got = np.load(os.path.join(work, name, "output_0.npy"))
        print("%-20s %11.1f %11.1f %8.2f %7d %5s" % (name, mt, ot, ot / mt, got.shape[-1] if got.ndim == 2 and
                                                      yout[2][0] == 2 else got.shape[0],
                                                      "yes" if got.shape == ref.shape and np.array_equal(got, ref)
                                                      else "NO"))


if __name__ == "__main__":
    main()
