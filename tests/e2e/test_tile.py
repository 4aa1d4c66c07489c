#!/usr/bin/python3
"""The register-tiled matrix product (compiler/kernel/lower_tile.c) against
float64 numpy products computed here: MatMul with a constant (packed) or a
run-time B, batched and broadcast; Gemm with every transA/transB, alpha,
beta and C shape, with a fused activation; the pointwise Conv with and
without bias; float64. Shapes are chosen to hit every part of the tile:
full column blocks, the narrower last block's whole vectors and single
columns, full and partial row blocks, K = 1, and the shapes that keep the
scalar loops (fewer columns than a vector, a strided Conv).

Each model is compiled for three machines: host (AVX-512 here: tiles of
6 x 64), x86_64-avx2 (6 x 16; runs on any AVX2 machine) and the portable
C backend (no tile), and each result must lie within the rigorous bound
of a float32 (float64) sum of K products: |y - ref| <= 2 K eps (|A| |B|),
elementwise.

  test_tile.py --moss build/moss
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
W = tempfile.mkdtemp(prefix="moss-tile-")
rng = np.random.default_rng(11)
NP2TP = {np.float32: TP.FLOAT, np.float64: TP.DOUBLE}
EMITS = [("host", "bundle"), ("x86_64-avx2", "bundle"), ("c99", "c")]
fails = 0
count = 0


def have_avx2():
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    return " avx2" in flags and " fma" in flags


def compile_run(name, nodes, inputs, inits, out_shape, dt, target, emit):
    g = H.make_graph(nodes, name,
                     [H.make_tensor_value_info(k, NP2TP[v.dtype.type], v.shape) for k, v in inputs.items()],
                     [H.make_tensor_value_info("y", NP2TP[dt], out_shape)],
                     [NH.from_array(v, k) for k, v in inits.items()])
    m = H.make_model(g, opset_imports=[H.make_opsetid("", 13)])
    d = os.path.join(W, name + "-" + target)
    os.makedirs(d, exist_ok=True)
    onnx.save(m, d + "/model.onnx")
    args = []
    for k, v in inputs.items():
        onnx.save_tensor(NH.from_array(v, k), "%s/%s.pb" % (d, k))
        args += ["--input", "%s=%s/%s.pb" % (k, d, k)]
    art = d + ("/model.moss" if emit == "bundle" else "/c")
    subprocess.run([A.moss, "compile", d + "/model.onnx", "--target", target, "--emit", emit, "-o", art, "-q"],
                   check=True)
    subprocess.run([A.moss, "run", art] + args + ["-o", d + "/out"], check=True)
    return np.load(d + "/out/output_0.npy")


def case(name, nodes, inputs, inits, ref, bound, dt=np.float32):
    """|bound| is sum_k |a||b| per element (same shape as |ref|)."""
    global fails, count
    eps = np.finfo(dt).eps
    for target, emit in EMITS:
        if target == "x86_64-avx2" and not have_avx2():
            continue
        count += 1
        y = compile_run(name, nodes, inputs, inits, list(ref.shape), dt, target, emit)
        if y.shape != ref.shape or y.dtype != dt:
            print("FAIL %s on %s: shape %s %s, want %s %s" % (name, target, y.shape, y.dtype, ref.shape, dt))
            fails += 1
            continue
        k = bound[1]
        err = np.abs(y.astype(np.float64) - ref)
        lim = 2 * k * eps * bound[0] + 4 * np.finfo(dt).tiny
        if not np.all(err <= lim):
            i = np.unravel_index(np.argmax(err - lim), err.shape)
            print("FAIL %s on %s: at %s got %r want %r (|err| %.3g > %.3g)" % (name, target, i, y[i], ref[i],
                                                                            err[i], lim[i]))
            fails += 1


def r(*shape, dt=np.float32):
    return rng.standard_normal(shape).astype(dt)


def mm_bound(a, b):
    return np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))


# MatMul with a constant B (packed): every part of the tile.
for (m, k, n) in [(1, 1, 16), (5, 7, 33), (13, 64, 50), (6, 16, 48), (37, 100, 97), (64, 64, 64), (7, 3, 130),
                  (12, 9, 71)]:
    a, b = r(m, k), r(k, n)
    case("matmul_const_%dx%dx%d" % (m, k, n), [H.make_node("MatMul", ["a", "b"], ["y"])], {"a": a}, {"b": b},
         a.astype(np.float64) @ b, (mm_bound(a, b), k))

# Batched A, one constant B.
a, b = r(2, 3, 7, 20), r(20, 70)
case("matmul_batch_const", [H.make_node("MatMul", ["a", "b"], ["y"])], {"a": a}, {"b": b},
     a.astype(np.float64) @ b, (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)), 20))

# Run-time B: not packed, read by rows.
for (sa, sb) in [((9, 31), (31, 67)), ((3, 5, 12), (3, 12, 40)), ((2, 1, 5, 8), (3, 8, 17))]:
    a, b = r(*sa), r(*sb)
    case("matmul_runtime_%s" % "x".join(map(str, sa + sb)), [H.make_node("MatMul", ["a", "b"], ["y"])],
         {"a": a, "b": b}, {}, a.astype(np.float64) @ b, (mm_bound(a, b), sa[-1]))

# Gemm: transA, transB, alpha, beta, every C shape; B constant or not.
M, K, N = 11, 23, 45
for ta in (0, 1):
    for tb in (0, 1):
        for cshape in [(N,), (M, 1), (M, N), (), None]:
            for const_b in (1, 0):
                if not const_b and (ta, cshape) != (0, (N,)):
                    continue  # run-time B: a few cases suffice
                a = r(K, M) if ta else r(M, K)
                b = r(N, K) if tb else r(K, N)
                A64 = (a.T if ta else a).astype(np.float64)
                B64 = (b.T if tb else b).astype(np.float64)
                alpha, beta = 0.5, 2.0
                ref = alpha * (A64 @ B64)
                bound = alpha * (np.abs(A64) @ np.abs(B64))
                ins = ["a", "b"]
                inits = {}
                inputs = {"a": a}
                if const_b:
                    inits["b"] = b
                else:
                    inputs["b"] = b
                if cshape is not None:
                    c = r(*cshape)
                    ref = ref + beta * c.astype(np.float64)
                    bound = bound + np.abs(beta * c.astype(np.float64)) / (2 * K)
                    ins.append("c")
                    inits["c"] = c
                name = "gemm_ta%d_tb%d_c%s_%s" % (ta, tb, "x".join(map(str, cshape)) if cshape is not None else "none",
                                                  "const" if const_b else "runtime")
                case(name, [H.make_node("Gemm", ins, ["y"], alpha=alpha, beta=beta, transA=ta, transB=tb)],
                     inputs, inits, ref, (np.broadcast_to(bound, ref.shape), K))

# Gemm with a fused activation (Relu, then Sigmoid after a bias).
a, b, c = r(20, 40), r(40, 70), r(70)
ref = a.astype(np.float64) @ b + c
case("gemm_relu", [H.make_node("Gemm", ["a", "b", "c"], ["t"]), H.make_node("Relu", ["t"], ["y"])],
     {"a": a}, {"b": b, "c": c}, np.maximum(ref, 0), (mm_bound(a, b) + np.abs(c) / 80, 40))
sig = 1 / (1 + np.exp(-ref))
case("gemm_sigmoid", [H.make_node("Gemm", ["a", "b", "c"], ["t"]), H.make_node("Sigmoid", ["t"], ["y"])],
     {"a": a}, {"b": b, "c": c}, sig, ((mm_bound(a, b) + np.abs(c) / 80 + 4) * sig, 40))


def conv1x1(x, w, bias=None):
    y = np.einsum("mc,nchw->nmhw", w[:, :, 0, 0].astype(np.float64), x.astype(np.float64))
    bd = np.einsum("mc,nchw->nmhw", np.abs(w[:, :, 0, 0].astype(np.float64)), np.abs(x.astype(np.float64)))
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
        bd = bd + np.abs(bias.reshape(1, -1, 1, 1)) / (2 * x.shape[1])
    return y, bd


# Pointwise Conv: bias and Relu, no bias, too narrow for a vector, strided.
x, w, bias = r(2, 24, 7, 7), r(37, 24, 1, 1), r(37)
y, bd = conv1x1(x, w, bias)
case("conv1x1_bias_relu", [H.make_node("Conv", ["x", "w", "bias"], ["t"]), H.make_node("Relu", ["t"], ["y"])],
     {"x": x}, {"w": w, "bias": bias}, np.maximum(y, 0), (bd, 24))
x, w = r(1, 5, 4, 8), r(9, 5, 1, 1)
y, bd = conv1x1(x, w)
case("conv1x1_plain", [H.make_node("Conv", ["x", "w"], ["y"])], {"x": x}, {"w": w}, y, (bd, 5))
x, w = r(1, 16, 1, 3), r(8, 16, 1, 1)
y, bd = conv1x1(x, w)
case("conv1x1_narrow", [H.make_node("Conv", ["x", "w"], ["y"])], {"x": x}, {"w": w}, y, (bd, 16))
x, w = r(1, 6, 9, 9), r(10, 6, 1, 1)
y, bd = conv1x1(x[:, :, ::2, ::2], w)
case("conv1x1_stride2", [H.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2])], {"x": x}, {"w": w}, y, (bd, 6))

# float64: 8 lanes on AVX-512, 4 on AVX2.
a, b = r(10, 33, dt=np.float64), r(33, 29, dt=np.float64)
case("matmul_f64", [H.make_node("MatMul", ["a", "b"], ["y"])], {"a": a}, {"b": b}, a @ b, (mm_bound(a, b), 33),
     dt=np.float64)

print("test_tile: %d runs, %d failures" % (count, fails))
sys.exit(1 if fails else 0)
