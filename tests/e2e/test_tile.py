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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from npref import conv_ref  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
A = ap.parse_args()
W = tempfile.mkdtemp(prefix="moss-tile-")
rng = np.random.default_rng(11)
NP2TP = {np.float32: TP.FLOAT, np.float64: TP.DOUBLE, np.int32: TP.INT32, np.int64: TP.INT64}
EMITS = [("host", "bundle"), ("x86_64-avx2", "bundle"), ("c99", "c")]
fails = 0
count = 0


def host_simd():
    """Whether the host target has vectors (x86-64 or AArch64 here)."""
    return os.uname().machine in ("x86_64", "aarch64")


HOST_SIMD = host_simd()


def host_f32_lanes():
    """float32 lanes of the host's vectors: 16 with AVX-512F, 8 with AVX, 4 on AArch64."""
    if os.uname().machine == "aarch64":
        return 4
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    return 16 if " avx512f" in flags else 8 if " avx" in flags else 4


# A strided depthwise Conv whose output rows hold whole vectors keeps the
# direct loops (lower_conv.c, ig_scratch): the two s2 cases' rows are 8 wide.
DW_S2 = "depthwise:" if host_f32_lanes() > 8 else None


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


def case(name, nodes, inputs, inits, ref, bound, dt=np.float32, kernel=None):
    """|bound| is sum_k |a||b| per element (same shape as |ref|). |kernel|:
    text the host's --dump-kernels must show (the path the case tests)."""
    global fails, count
    eps = np.finfo(dt).eps
    for target, emit in EMITS:
        if target == "x86_64-avx2" and not have_avx2():
            continue
        count += 1
        y = compile_run(name, nodes, inputs, inits, list(ref.shape), dt, target, emit)
        if kernel and target == "host":
            d = os.path.join(W, name + "-" + target)
            dump = subprocess.run([A.moss, "compile", d + "/model.onnx", "--target", target, "-o",
                                   d + "/dump.moss", "-q", "--dump-kernels"],
                                  check=True, capture_output=True, text=True).stdout
            if kernel not in dump:
                print("FAIL %s on %s: no '%s' in its kernels" % (name, target, kernel))
                fails += 1
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



# The kernel each case must get on this machine's host target (--dump-kernels);
# the rest keep the direct loops (groups, grids too small for a tile).
KERNEL = {"conv3x3_s1_p1_bias_relu": "implicit product, transposed", "conv7x7_s2_p3": "transposed",
          "conv3x3_chunked": "for chunk in", "conv7x7_s2_chunked": "for chunk in",
          "conv3x3_tiny": None, "conv3x3_group2": None, "depthwise_multiplier2": None,
          "depthwise3x3_s2": DW_S2, "depthwise3x3_dil2_s2": DW_S2}


def conv_case(name, node, x, w, bias, relu, y, bd, k):
    """One Conv or ConvTranspose |node| (writing "t" when a Relu follows)."""
    nodes = [node]
    if relu:
        nodes.append(H.make_node("Relu", ["t"], ["y"]))
        y = np.maximum(y, 0)
    inits = {"w": w}
    if bias is not None:
        inits["bias"] = bias
    default = ("ConvTranspose as" if node.op_type == "ConvTranspose" else "depthwise:"
               if name.startswith("depthwise") else "implicit product")
    case(name, nodes, {"x": x}, inits, y, (bd, k), kernel=KERNEL.get(name, default) if HOST_SIMD else None)


# Convolutions as an implicit product (lower_conv.c): the input copied into
# stride phases, the tile reading shifted windows of it. Every geometry the
# phases and the grid's dropped columns must get right.
for (name, xs, ws, attrs, pads, with_bias, relu) in [
        ("conv3x3_s1_p1_bias_relu", (2, 16, 14, 14), (37, 16, 3, 3), dict(strides=[1, 1]), (1, 1, 1, 1), 1, 1),
        ("conv3x3_s2_p1", (1, 8, 15, 15), (12, 8, 3, 3), dict(strides=[2, 2]), (1, 1, 1, 1), 0, 0),
        ("conv7x7_s2_p3", (1, 3, 32, 32), (16, 3, 7, 7), dict(strides=[2, 2]), (3, 3, 3, 3), 1, 0),
        ("conv1x1_s2_direct_y", (1, 20, 14, 14), (13, 20, 1, 1), dict(strides=[2, 2]), (0, 0, 0, 0), 1, 0),
        ("conv1x1_p1", (1, 6, 5, 9), (7, 6, 1, 1), dict(), (1, 1, 1, 1), 0, 0),
        ("conv3x3_dil2", (1, 5, 12, 12), (7, 5, 3, 3), dict(dilations=[2, 2]), (2, 2, 2, 2), 0, 1),
        ("conv2x3_asym", (1, 4, 10, 11), (9, 4, 2, 3), dict(strides=[1, 2]), (0, 1, 2, 0), 1, 0),
        ("conv3x1", (1, 8, 9, 20), (8, 8, 3, 1), dict(), (1, 0, 1, 0), 0, 0),
        ("conv3x3_c1", (1, 1, 11, 17), (6, 1, 3, 3), dict(), (0, 0, 0, 0), 1, 0),
        ("conv3x3_small_grid", (1, 4, 4, 4), (5, 4, 3, 3), dict(), (0, 0, 0, 0), 0, 0),
        ("conv3x3_tiny", (1, 4, 3, 3), (5, 4, 3, 3), dict(), (0, 0, 0, 0), 0, 0),
        ("conv3x3_s3_dil2", (1, 3, 20, 20), (4, 3, 3, 3), dict(strides=[3, 3], dilations=[2, 2]), (2, 1, 0, 2), 0, 0),
        ("conv3x3_group2", (1, 8, 9, 9), (6, 4, 3, 3), dict(group=2), (1, 1, 1, 1), 1, 0),
        # grids of sums over 256 KiB go through the cache in chunks of rows: one full chunk and
        # the rest; two full chunks and the rest (a 7x7 stride-2 stem)
        ("conv3x3_chunked", (1, 3, 64, 64), (16, 3, 3, 3), dict(), (1, 1, 1, 1), 1, 1),
        ("conv7x7_s2_chunked", (1, 3, 96, 96), (64, 3, 7, 7), dict(strides=[2, 2]), (3, 3, 3, 3), 1, 0),
        ("depthwise3x3_bias_relu", (2, 12, 14, 14), (12, 1, 3, 3), dict(group=12), (1, 1, 1, 1), 1, 1),
        ("depthwise3x3_s2", (1, 7, 15, 16), (7, 1, 3, 3), dict(group=7, strides=[2, 2]), (1, 1, 1, 1), 0, 0),
        ("depthwise5x5_asym", (1, 5, 11, 9), (5, 1, 5, 5), dict(group=5), (2, 1, 2, 3), 1, 0),
        ("depthwise3x3_dil2_s2", (1, 3, 17, 17), (3, 1, 3, 3), dict(group=3, strides=[2, 2], dilations=[2, 2]),
         (2, 2, 2, 2), 0, 0),
        ("depthwise_multiplier2", (1, 4, 8, 8), (8, 1, 3, 3), dict(group=4), (1, 1, 1, 1), 0, 0)]:
    x, w = r(*xs), r(*ws)
    bias = r(ws[0]) if with_bias else None
    y, bd = conv_ref(x, w, bias, attrs.get("strides", (1, 1)), attrs.get("dilations", (1, 1)), pads,
                     attrs.get("group", 1))
    conv_case(name, H.make_node("Conv", ["x", "w"] + (["bias"] if with_bias else []), ["t" if relu else "y"],
                                kernel_shape=list(ws[2:]), pads=list(pads), **attrs),
              x, w, bias, relu, y, bd, ws[1] * ws[2] * ws[3])

# SAME_UPPER padding (4x4 kernel, stride 3) and a 1-D Conv.
x, w = r(1, 5, 13, 13), r(6, 5, 4, 4)
y, bd = conv_ref(x, w, None, (3, 3), (1, 1), (1, 1, 2, 2))  # total pad 3 per axis: 1 before, 2 after
case("conv4x4_same_upper", [H.make_node("Conv", ["x", "w"], ["y"], strides=[3, 3], auto_pad="SAME_UPPER")],
     {"x": x}, {"w": w}, y, (bd, 80))
x, w = r(2, 6, 50), r(10, 6, 5)
y, bd = conv_ref(x[:, :, None, :], w[:, :, None, :], None, (1, 1), (1, 1), (0, 2, 0, 2))
case("conv1d_k5_p2", [H.make_node("Conv", ["x", "w"], ["y"], pads=[2, 2])], {"x": x}, {"w": w}, y[:, :, 0, :],
     (bd[:, :, 0, :], 30))
x, w = r(1, 7, 10, 10, dt=np.float64), r(9, 7, 3, 3, dt=np.float64)
y, bd = conv_ref(x, w, None, (1, 1), (1, 1), (1, 1, 1, 1))
case("conv3x3_f64", [H.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], {"x": x}, {"w": w}, y,
     (bd, 63), dt=np.float64)



def convt_ref(x, w, bias, s, d, pads, opad):
    """ConvTranspose by its definition (2-D, one group): every input element
    times every tap added at i*s + k*d into the full output, then cropped by
    the pads (begin, begin, end, end); output_padding extends the end."""
    n, c, h, wd = x.shape
    _, m, kh, kw = w.shape
    fh = (h - 1) * s[0] + (kh - 1) * d[0] + 1 + opad[0]
    fw = (wd - 1) * s[1] + (kw - 1) * d[1] + 1 + opad[1]
    y = np.zeros((n, m, fh, fw))
    bd = np.zeros((n, m, fh, fw))
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    for i in range(kh):
        for j in range(kw):
            t = np.einsum("cm,nchw->nmhw", w64[:, :, i, j], x64)
            a = np.einsum("cm,nchw->nmhw", np.abs(w64[:, :, i, j]), np.abs(x64))
            y[:, :, i * d[0]:i * d[0] + (h - 1) * s[0] + 1:s[0], j * d[1]:j * d[1] + (wd - 1) * s[1] + 1:s[1]] += t
            bd[:, :, i * d[0]:i * d[0] + (h - 1) * s[0] + 1:s[0], j * d[1]:j * d[1] + (wd - 1) * s[1] + 1:s[1]] += a
    y = y[:, :, pads[0]:fh - pads[2], pads[1]:fw - pads[3]]
    bd = bd[:, :, pads[0]:fh - pads[2], pads[1]:fw - pads[3]]
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
        bd = bd + np.abs(bias.reshape(1, -1, 1, 1)) / (2 * c)
    return y, bd


# ConvTranspose as a product on the tile, then a scatter of the taps.
for (name, xs, ws, s_, d_, pads, opad, with_bias, relu) in [
        ("convt2x2_s2_bias_relu", (2, 16, 9, 10), (16, 24, 2, 2), (2, 2), (1, 1), (0, 0, 0, 0), (0, 0), 1, 1),
        ("convt3x3_s2_p1_op1", (1, 8, 7, 7), (8, 5, 3, 3), (2, 2), (1, 1), (1, 1, 1, 1), (1, 1), 0, 0),
        ("convt4x4_s2_p1", (1, 6, 6, 5), (6, 7, 4, 4), (2, 2), (1, 1), (1, 1, 1, 1), (0, 0), 1, 0),
        ("convt3x3_s1_dil2_asym", (1, 5, 8, 9), (5, 6, 3, 3), (1, 1), (2, 2), (1, 0, 2, 3), (0, 0), 0, 0),
        ("convt3x2_s3x1", (1, 4, 5, 12), (4, 9, 3, 2), (3, 1), (1, 1), (0, 0, 0, 0), (2, 0), 1, 0)]:
    x, w = r(*xs), r(*ws)
    bias = r(ws[1]) if with_bias else None
    y, bd = convt_ref(x, w, bias, s_, d_, pads, opad)
    conv_case(name, H.make_node("ConvTranspose", ["x", "w"] + (["bias"] if with_bias else []),
                                ["t" if relu else "y"], kernel_shape=list(ws[2:]), strides=list(s_),
                                dilations=list(d_), pads=list(pads), output_padding=list(opad)),
              x, w, bias, relu, y, bd, ws[0])
x, w = r(1, 6, 20), r(6, 4, 3)
y, bd = convt_ref(x[:, :, None, :], w[:, :, None, :], None, (1, 2), (1, 1), (0, 1, 0, 1), (0, 0))
case("convt1d_k3_s2_p1", [H.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2], pads=[1, 1])],
     {"x": x}, {"w": w}, y[:, :, 0, :], (bd[:, :, 0, :], 6))

# float64: 8 lanes on AVX-512, 4 on AVX2.
a, b = r(10, 33, dt=np.float64), r(33, 29, dt=np.float64)
case("matmul_f64", [H.make_node("MatMul", ["a", "b"], ["y"])], {"a": a}, {"b": b}, a @ b, (mm_bound(a, b), 33),
     dt=np.float64)

# Integer MatMul never takes the tile (its int32 lanes are byte dot
# products): exact, against numpy, on every target and emit.
for dt in (np.int32, np.int64):
    a = rng.integers(-50, 50, (40, 36)).astype(dt)
    b = rng.integers(-50, 50, (36, 48)).astype(dt)
    for name, inputs, inits in (("const", {"a": a}, {"b": b}), ("runtime", {"a": a, "b": b}, {})):
        for target, emit in EMITS:
            if target == "x86_64-avx2" and not have_avx2():
                continue
            count += 1
            y = compile_run("matmul_%s_%s" % (np.dtype(dt).name, name), [H.make_node("MatMul", ["a", "b"], ["y"])],
                            inputs, inits, [40, 48], dt, target, emit)
            if y.dtype != dt or not np.array_equal(y, a @ b):
                print("FAIL matmul_%s_%s on %s (%s): differs from numpy" % (np.dtype(dt).name, name, target, emit))
                fails += 1

print("test_tile: %d runs, %d failures" % (count, fails))
sys.exit(1 if fails else 0)
