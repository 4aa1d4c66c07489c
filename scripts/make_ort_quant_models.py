#!/usr/bin/env python3
"""Quantizes the digits models with ONNX Runtime's own quantizer, as users
make int8 ONNX, and writes the fixtures of tests/e2e/test_ort_quant.py to
tests/e2e/ort_quant/:

  <m>_qdq_<w>_<a>.onnx   tests/e2e/digits/<m>.onnx (m: mlp, cnn) through
                         onnxruntime.quantization.quantize_static, QDQ
                         format, calibrated (minmax) on x_calib_<m>.npy;
                         <w>: pt (per-tensor weights) or pc (per-channel),
                         <a>: u8 (QUInt8 activations) or s8 (QInt8);
                         weights QInt8
  <m>_qdq_<w>_<a>_ref.npy  float32 [100, 10]: ONNX Runtime's outputs on the
                         first 100 rows of x_test_<m>.npy with its graph
                         optimizations off, so each node runs as the ONNX
                         spec defines it (DequantizeLinear, the float op,
                         QuantizeLinear): the reference
  <m>_qdq_<w>_<a>_ort.npy  the same with ONNX Runtime's default
                         optimizations (its fused int8 kernels), for the
                         record
  versions.txt           the onnxruntime, onnx and numpy versions used

Run with an interpreter that has onnxruntime from pip (the benchmark
peer; the `python3` first on PATH here), not Debian's:

  python3 scripts/make_ort_quant_models.py [OUT_DIR]

The quantizer and the runs are deterministic, so reruns write the same
files with the same onnxruntime.
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "tests", "e2e", "digits")
ROWS = 100


class Rows(CalibrationDataReader):
    """One calibration row at a time, as the quantizer reads them."""

    def __init__(self, x, name):
        self.it = iter([{name: x[i:i + 1]} for i in range(len(x))])

    def get_next(self):
        return next(self.it, None)


def run(path, x, optimize):
    so = ort.SessionOptions()
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0].astype(np.float32)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "e2e", "ort_quant")
    os.makedirs(out, exist_ok=True)
    for m in ("mlp", "cnn"):
        src = os.path.join(DIGITS, m + ".onnx")
        name = onnx.load(src).graph.input[0].name
        calib = np.load(os.path.join(DIGITS, "x_calib_%s.npy" % m)).astype(np.float32)
        x = np.load(os.path.join(DIGITS, "x_test_%s.npy" % m)).astype(np.float32)[:ROWS]
        for w, per_channel in (("pt", False), ("pc", True)):
            for a, act in (("u8", QuantType.QUInt8), ("s8", QuantType.QInt8)):
                stem = os.path.join(out, "%s_qdq_%s_%s" % (m, w, a))
                quantize_static(src, stem + ".onnx", Rows(calib, name), quant_format=QuantFormat.QDQ,
                                per_channel=per_channel, activation_type=act, weight_type=QuantType.QInt8)
                np.save(stem + "_ref.npy", run(stem + ".onnx", x, False))
                np.save(stem + "_ort.npy", run(stem + ".onnx", x, True))
                print("wrote", stem + ".onnx")
    with open(os.path.join(out, "versions.txt"), "w") as f:
        f.write("onnxruntime %s\nonnx %s\nnumpy %s\n" % (ort.__version__, onnx.__version__, np.__version__))


if __name__ == "__main__":
    main()
