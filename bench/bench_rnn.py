#!/usr/bin/env python3
"""Recurrent layers (docs/recurrent.md) against ONNX Runtime, one thread
each: single LSTM and GRU nodes of the sizes always-on models use (a text
recognizer's bidirectional LSTM, a keyword spotter's GRU, a batched LSTM),
random weights, compiled for `host` (LLVM) and timed with `moss bench`
(median of N runs); ONNX Runtime runs the same file. Prints the compile
time, the node count after unrolling, the medians and ORT/moss (above 1:
moss faster), and the largest difference between the two outputs. Nothing
here is a test.

  python3 -m pip install onnxruntime numpy onnx
  python3 bench/bench_rnn.py --moss build/moss [--iterations 200]
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
sys.path.insert(0, HERE)
from bench_mlp import ort_median  # noqa: E402

# name, op, T, B, I, H, direction
CASES = [("lstm-bidir-T100-H128", "LSTM", 100, 1, 64, 128, "bidirectional"),
         ("gru-T50-H64", "GRU", 50, 1, 40, 64, "forward"),
         ("lstm-T32-B8-H256", "LSTM", 32, 8, 128, 256, "forward")]


def model(path, op, T, B, I, Hs, direction):
    rng = np.random.default_rng(0)
    D = 2 if direction == "bidirectional" else 1
    G = 4 if op == "LSTM" else 3
    s = 1 / np.sqrt(Hs)
    w = (rng.uniform(-s, s, (D, G * Hs, I))).astype(np.float32)
    r = (rng.uniform(-s, s, (D, G * Hs, Hs))).astype(np.float32)
    b = (rng.uniform(-s, s, (D, 2 * G * Hs))).astype(np.float32)
    attrs = dict(hidden_size=Hs, direction=direction)
    if op == "GRU":
        attrs["linear_before_reset"] = 1
    n = helper.make_node(op, ["input", "W", "R", "B"], ["Y"], **attrs)
    g = helper.make_graph([n], op, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [T, B, I])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [T, D, B, Hs])],
                          [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R"),
                           numpy_helper.from_array(b, "B")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
    m.ir_version = 8  # what moss reads (IR 1 to 10); this onnx may write a newer one
    onnx.save(m, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", default=os.path.join(HERE, "..", "build", "moss"))
    ap.add_argument("--iterations", type=int, default=200)
    a = ap.parse_args()
    moss = os.path.abspath(a.moss)
    work = tempfile.mkdtemp(prefix="moss-bench-rnn-")
    import onnxruntime as ort
    print("%-22s %8s %6s %11s %11s %8s %9s" % ("case", "compile", "nodes", "moss us", "ORT us", "ORT/moss",
                                                "max diff"))
    for name, op, T, B, I, Hs, direction in CASES:
        path = os.path.join(work, name + ".onnx")
        model(path, op, T, B, I, Hs, direction)
        x = np.random.default_rng(1).uniform(-1, 1, (T, B, I)).astype(np.float32)
        np.save(os.path.join(work, name + ".npy"), x)
        art = os.path.join(work, name + ".moss")
        t0 = time.perf_counter()
        out = subprocess.run([moss, "compile", path, "--target", "host", "-o", art], check=True,
                             capture_output=True, text=True).stderr
        ct = time.perf_counter() - t0
        nodes = re.search(r"(\d+) nodes", out)
        b = subprocess.run([moss, "bench", art, "--iterations", str(a.iterations), "--threads", "1"], check=True,
                           capture_output=True, text=True).stdout
        mt = float(re.search(r"median ([0-9.]+) us", b).group(1))
        ot = ort_median(path, x, a.iterations)
        subprocess.run([moss, "run", art, os.path.join(work, name + ".npy"), "-o", os.path.join(work, name)],
                       check=True)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        ref = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
        diff = float(np.max(np.abs(np.load(os.path.join(work, name, "output_0.npy")) - ref)))
        print("%-22s %7.2fs %6s %11.1f %11.1f %8.2f %9.2g" % (name, ct, nodes.group(1) if nodes else "?", mt, ot,
                                                          ot / mt, diff))


if __name__ == "__main__":
    main()
