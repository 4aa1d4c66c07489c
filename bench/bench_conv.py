#!/usr/bin/env python3
"""Latency of moss's convolution kernels, dense against sparse, fp32 and
int8, next to ONNX Runtime.

Layers (batch 1, random weights, the smallest |w| of each layer zeroed to
0/50/75/90/95 %):
  conv3x3   64 -> 64 channels, 3x3, pads 1, on 28x28
  conv1x1  128 -> 128 channels, 1x1, on 14x14
Each layer exists as a float model and as the QDQ model an int8 exporter
writes (per-channel symmetric int8 weights, int32 bias, uint8 activations
whose ranges come from a float run on the input), which moss folds to a
QLinearConv. moss compiles each with the sparse pass off (MOSS_SPARSE=off:
the dense kernel), forced to CSR (csr) and as the cost rule picks (auto),
and times it with `moss bench` (median of N runs); ONNX Runtime runs the
same files (one thread, all graph optimizations; its int8 kernels for the
QDQ model). Prints medians and ratios; nothing here is a test.

  python3 -m pip install onnxruntime numpy onnx
  python3 bench/bench_conv.py --moss build/moss [--iterations 300]
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_mlp import moss_median, ort_median, prune, uint8_params  # noqa: E402

LAYERS = [("conv3x3", 64, 64, 3, 28), ("conv1x1", 128, 128, 1, 14)]


def conv_model(cin, cout, k, hw, w, b, qdq_x=None):
    """A float Conv (qdq_x None) or its QDQ form with activation ranges from
    a float run on |qdq_x|."""
    pad = k // 2
    inits = []

    def const(name, a):
        inits.append(numpy_helper.from_array(np.asarray(a), name))
        return name

    attrs = dict(pads=[pad] * 4, kernel_shape=[k, k])
    nodes = []
    if qdq_x is None:
        nodes.append(helper.make_node("Conv", ["input", const("w", w), const("b", b)], ["y"], **attrs))
        out = "y"
    else:
        y = conv_ref(qdq_x, w, b, pad)
        sx, zx = uint8_params(qdq_x.min(), qdq_x.max())
        sy, zy = uint8_params(y.min(), y.max())
        sw = (np.abs(w).reshape(cout, -1).max(axis=1) / 127).astype(np.float32)
        sw[sw == 0] = 1
        wq = np.clip(np.rint(w / sw[:, None, None, None]), -127, 127).astype(np.int8)
        bs = (sx * sw).astype(np.float32)
        bq = np.rint(b / bs).astype(np.int32)
        nodes += [
            helper.make_node("QuantizeLinear", ["input", const("sx", sx), const("zx", zx)], ["qx"]),
            helper.make_node("DequantizeLinear", ["qx", "sx", "zx"], ["dx"]),
            helper.make_node("DequantizeLinear", [const("wq", wq), const("sw", sw),
                                                  const("zw", np.zeros(cout, np.int8))], ["dw"], axis=0),
            helper.make_node("DequantizeLinear", [const("bq", bq), const("sb", bs),
                                                  const("zb", np.zeros(cout, np.int32))], ["db"], axis=0),
            helper.make_node("Conv", ["dx", "dw", "db"], ["y"], **attrs),
            helper.make_node("QuantizeLinear", ["y", const("sy", sy), const("zy", zy)], ["qy"]),
            helper.make_node("DequantizeLinear", ["qy", "sy", "zy"], ["out"]),
        ]
        out = "out"
    g = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                        [1, cin, hw, hw])],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def conv_ref(x, w, b, pad):
    """Float convolution (stride 1, square pads) for the activation ranges."""
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    y = np.zeros((n, o, h + 2 * pad - k + 1, wd + 2 * pad - k + 1), np.float32)
    for i in range(k):
        for j in range(k):
            patch = xp[:, :, i:i + y.shape[2], j:j + y.shape[3]]
            y += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return y + b.reshape(1, -1, 1, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", default=os.path.join(os.path.dirname(__file__), "..", "build", "moss"))
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--sparsity", default="0,0.5,0.75,0.9,0.95")
    a = ap.parse_args()
    moss = os.path.abspath(a.moss)
    levels = [float(s) for s in a.sparsity.split(",")]
    print("layer     type  sparsity  moss dense (us)  moss csr (us)  moss auto (us)  ORT (us)"
          "  dense/csr  dense/auto  ORT/moss-auto")
    with tempfile.TemporaryDirectory() as work:
        for name, cin, cout, k, hw in LAYERS:
            rng = np.random.default_rng(0)
            w0 = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
            b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
            x = np.maximum(rng.standard_normal((1, cin, hw, hw)), 0).astype(np.float32)
            shape = "1x%dx%dx%d" % (cin, hw, hw)
            for s in levels:
                w = prune(w0, s)
                for kind in ("fp32", "int8"):
                    m = conv_model(cin, cout, k, hw, w, b, x if kind == "int8" else None)
                    path = os.path.join(work, "%s_%s_%g.onnx" % (name, kind, s))
                    onnx.save(m, path)
                    t = {mode: moss_median(moss, path, shape, mode, a.iterations, work)
                         for mode in ("off", "csr", "auto")}
                    ortt = ort_median(path, x, a.iterations)
                    print("%-9s %-4s %7.0f%%  %15.1f  %13.1f  %14.1f  %8.1f  %8.2fx  %9.2fx  %12.2fx" %
                          (name, kind, s * 100, t["off"], t["csr"], t["auto"], ortt,
                           t["off"] / t["csr"], t["off"] / t["auto"], ortt / t["auto"]))
                    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
