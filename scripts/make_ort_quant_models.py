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
  <m>_qop_<w>_<a>.onnx   the same in QOperator format: QLinearConv, and
                         com.microsoft's QGemm for Gemm
  <m>_qop_<w>_<a>_ref.npy  the reference: ONNX Runtime (optimizations off)
                         on the model with each QGemm and QLinearConv
                         written out as what it means, DequantizeLinear of
                         its inputs, the float op, QuantizeLinear (done
                         here with onnx.helper: spelled_out())
  <m>_qop_<w>_<a>_ort.npy  ONNX Runtime on the QOperator model itself (its
                         int8 kernels, which round on their own way), for
                         the record
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
from onnx import helper
from onnx import numpy_helper as NH
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


# com.microsoft's quantized elementwise, pooling and concatenation
# operators: the float op, the input of the first (x, scale, zero point)
# triple, and the number of triples (0: all the rest)
LIFTED = {"QLinearAdd": ("Add", 0, 2), "QLinearMul": ("Mul", 0, 2), "QLinearSigmoid": ("Sigmoid", 0, 1),
          "QLinearLeakyRelu": ("LeakyRelu", 0, 1), "QLinearAveragePool": ("AveragePool", 0, 1),
          "QLinearGlobalAveragePool": ("GlobalAveragePool", 0, 1), "QLinearConcat": ("Concat", 2, 0)}


def ops_model(path):
    """A small float CNN with the operators the QOperator format turns into
    com.microsoft ones: LeakyRelu, Sigmoid, Mul (x * sigmoid(x)), Add (a
    residual), AveragePool, Concat, GlobalAveragePool; weights seeded."""
    rng = np.random.default_rng(5)
    w = lambda *s: NH.from_array((rng.standard_normal(s) * 0.3).astype(np.float32))  # noqa: E731
    inits = []
    for name, t in (("w1", w(8, 3, 3, 3)), ("b1", w(8)), ("w2", w(8, 8, 3, 3)), ("b2", w(8)), ("fw", w(4, 16)),
                    ("fb", w(4))):
        t.name = name
        inits.append(t)
    N = helper.make_node
    nodes = [N("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             N("LeakyRelu", ["c1"], ["l1"], alpha=0.1),
             N("Sigmoid", ["l1"], ["s1"]),
             N("Mul", ["l1", "s1"], ["m1"]),
             N("Conv", ["m1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
             N("Add", ["c2", "l1"], ["r"]),
             N("AveragePool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             N("GlobalAveragePool", ["p"], ["g1"]),
             N("GlobalAveragePool", ["m1"], ["g2"]),
             N("Concat", ["g1", "g2"], ["cat"], axis=1),
             N("Flatten", ["cat"], ["f"]),
             N("Gemm", ["f", "fw", "fb"], ["y"], transB=1)]
    g = helper.make_graph(nodes, "ops", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 3, 8, 8])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n", 4])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)


def spelled_out(path, out):
    """The QOperator model at |path| with QGemm and QLinearConv replaced by
    DequantizeLinear of their inputs, the float Gemm or Conv, and
    QuantizeLinear of the output, written to |out|: the operators'
    definitions, for ONNX Runtime to run node by node."""
    m = onnx.load(path)
    inits = {t.name: NH.to_array(t) for t in m.graph.initializer}
    nodes, extra = [], []

    def dq(x, sc, zp, name, axis=None):
        kw = {"axis": axis} if axis is not None else {}
        nodes.append(helper.make_node("DequantizeLinear", [x, sc, zp], [name], **kw))
        return name

    for i, n in enumerate(m.graph.node):
        if not n.name:  # the names below derive from it
            n.name = "node%d" % i
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "QGemm":
            a, a_s, a_z, b, b_s, b_z = n.input[:6]
            pc = inits[b_s].size > 1
            tb = attrs.get("transB", 0)
            ins = [dq(a, a_s, a_z, n.name + "_a"), dq(b, b_s, b_z, n.name + "_b", (0 if tb else 1) if pc else None)]
            if len(n.input) > 6 and n.input[6]:
                cs = (inits[a_s] * inits[b_s] * attrs.get("alpha", 1.0)).astype(np.float32)
                extra += [NH.from_array(cs, n.name + "_cs"), NH.from_array(np.zeros(cs.shape, np.int32), n.name + "_cz")]
                ins.append(dq(n.input[6], n.name + "_cs", n.name + "_cz", n.name + "_c", 0 if pc else None))
            nodes.append(helper.make_node("Gemm", ins, [n.name + "_y"], alpha=attrs.get("alpha", 1.0),
                                          transA=attrs.get("transA", 0), transB=tb))
            nodes.append(helper.make_node("QuantizeLinear", [n.name + "_y", n.input[7], n.input[8]], [n.output[0]]))
        elif n.op_type == "QLinearConv":
            x, x_s, x_z, w, w_s, w_z, y_s, y_z = n.input[:8]
            pc = inits[w_s].size > 1
            ins = [dq(x, x_s, x_z, n.name + "_x"), dq(w, w_s, w_z, n.name + "_w", 0 if pc else None)]
            if len(n.input) > 8 and n.input[8]:
                cs = (inits[x_s] * inits[w_s]).astype(np.float32)
                extra += [NH.from_array(cs, n.name + "_cs"), NH.from_array(np.zeros(cs.shape, np.int32), n.name + "_cz")]
                ins.append(dq(n.input[8], n.name + "_cs", n.name + "_cz", n.name + "_bias", 0 if pc else None))
            nodes.append(helper.make_node("Conv", ins, [n.name + "_y"], **attrs))
            nodes.append(helper.make_node("QuantizeLinear", [n.name + "_y", y_s, y_z], [n.output[0]]))
        elif n.op_type in LIFTED:
            op, first, count = LIFTED[n.op_type]
            count = count if count > 0 else (len(n.input) - first) // 3
            ins = [dq(n.input[first + 3 * k], n.input[first + 3 * k + 1], n.input[first + 3 * k + 2],
                      "%s_in%d" % (n.name, k)) for k in range(count)]
            ys = 0 if n.op_type == "QLinearConcat" else first + 3 * count
            kw = {k: v for k, v in attrs.items() if k != "channels_last"}
            nodes.append(helper.make_node(op, ins, [n.name + "_y"], **kw))
            nodes.append(helper.make_node("QuantizeLinear", [n.name + "_y", n.input[ys], n.input[ys + 1]],
                                          [n.output[0]]))
        else:
            nodes.append(n)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    m.graph.initializer.extend(extra)
    keep = [o for o in m.opset_import if o.domain != "com.microsoft"]
    del m.opset_import[:]
    m.opset_import.extend(keep)
    onnx.save(m, out)


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
                stem = os.path.join(out, "%s_qop_%s_%s" % (m, w, a))
                quantize_static(src, stem + ".onnx", Rows(calib, name), quant_format=QuantFormat.QOperator,
                                per_channel=per_channel, activation_type=act, weight_type=QuantType.QInt8)
                spelled_out(stem + ".onnx", stem + "_spelled.onnx")
                np.save(stem + "_ref.npy", run(stem + "_spelled.onnx", x, False))
                os.remove(stem + "_spelled.onnx")
                np.save(stem + "_ort.npy", run(stem + ".onnx", x, True))
                print("wrote", stem + ".onnx")
    # the com.microsoft elementwise, pooling and concatenation operators
    src = os.path.join(out, "ops_float.onnx")
    ops_model(src)
    rng = np.random.default_rng(6)
    calib = rng.uniform(-1, 1, (32, 3, 8, 8)).astype(np.float32)
    x = rng.uniform(-1, 1, (ROWS, 3, 8, 8)).astype(np.float32)
    np.save(os.path.join(out, "ops_x.npy"), x)
    stem = os.path.join(out, "ops_qop_pt_u8")
    quantize_static(src, stem + ".onnx", Rows(calib, "x"), quant_format=QuantFormat.QOperator,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    os.remove(src)
    spelled_out(stem + ".onnx", stem + "_spelled.onnx")
    np.save(stem + "_ref.npy", run(stem + "_spelled.onnx", x, False))
    os.remove(stem + "_spelled.onnx")
    np.save(stem + "_ort.npy", run(stem + ".onnx", x, True))
    print("wrote", stem + ".onnx", sorted({n.op_type for n in onnx.load(stem + ".onnx").graph.node}))
    with open(os.path.join(out, "versions.txt"), "w") as f:
        f.write("onnxruntime %s\nonnx %s\nnumpy %s\n" % (ort.__version__, onnx.__version__, np.__version__))


if __name__ == "__main__":
    main()
