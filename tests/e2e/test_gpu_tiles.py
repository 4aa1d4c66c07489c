#!/usr/bin/python3
"""The GPU's work-group tiles (compiler/kernel/lower_gputile.c): Gemm, MatMul
and Conv lowered as blocks of outputs per work-group, their operands copied
through shared memory between barriers, on every GPU backend:

- OpenCL C on PoCL (tests/conformance/opencl-only.xml) and Vulkan SPIR-V on
  lavapipe (vulkan-only.xml), through libmossrt: each model's kernel
  description has the work-group loop and the barriers (--dump-kernels),
  and its outputs are numpy's exactly. The operands are multiples of 1/4
  and 1/8 small enough that every product and every partial sum is exact
  in float32, so any order of summation gives the same bits and a wrong
  index cannot hide in a tolerance;
- PTX (ptx-only.xml): every module through NVIDIA's ptxas, with the
  shared-memory arrays and the barrier instruction in it, and dp4a in the
  int8 tiles whose operands each have one zero point (no CUDA driver
  here; --export writes the bundles for tests/e2e/check_gpu.py on a GPU);
- int8: a QLinearConv (per-channel weight scales, zero points, bias,
  padding, a stride), a QDQ MatMul (folded into moss's int8 Gemm) and a
  batched QLinearMatMul (B broadcast over a batch dimension), tiled in
  int32, give the CPU's bits; a MatMulInteger with zero points per row of
  A and per column of B gives numpy's exact int32 product;
- the rule that reads the target: without local-memory-bytes (or with a
  work-group limit under 64) the same nodes take one work-item per output,
  with the same bits; a product too small for tiles takes that too;
- on a Vulkan target that lists the packed 8-bit dot product
  (DotProductInput4x8BitPacked), the int8 tiles sum four byte products an
  instruction (OpSDot) where each operand has one zero point, with the
  same bits.

The shapes are not multiples of the blocks (the edges are guarded), the
Gemm transposes both operands and scales them, the Convs have a bias, a
fused ReLU, a fused residual Add, strides, dilations, asymmetric pads,
and a batch of two images; a MatMul has a batch of three matrix pairs.

  test_gpu_tiles.py --moss build/moss [--export DIR]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as H
from onnx import numpy_helper as NH

from gpu_blobs import blobs, find_ptxas

HERE = os.path.dirname(os.path.abspath(__file__))
CONF = os.path.join(HERE, "..", "conformance")
ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
ap.add_argument("--export", default=None, help="write the PTX bundles and their inputs for check_gpu.py here")
A = ap.parse_args()
W = tempfile.mkdtemp(prefix="moss-tiles-")
ENV = dict(os.environ, XDG_RUNTIME_DIR=os.environ.get("XDG_RUNTIME_DIR", W), MOSS_CACHE_DIR="off",
           POCL_CACHE_DIR=os.environ.get("POCL_CACHE_DIR", os.path.join(W, "pocl")))
rng = np.random.default_rng(7)
fails = 0


def fail(msg):
    global fails
    print("FAIL " + msg)
    fails += 1


def q(shape, step=0.25, lim=2):
    """Multiples of |step| in [-lim, lim]: exact in float32, as are their
    products and the sums of a few hundred of them."""
    return (rng.integers(-int(lim / step), int(lim / step) + 1, size=shape) * step).astype(np.float32)


def save(name, nodes, inputs, outputs, inits, types=None):
    """|types|: the element type of an input or output other than float."""
    types = types or {}
    g = H.make_graph(nodes, name, [H.make_tensor_value_info(n, types.get(n, TP.FLOAT), s) for n, s in inputs],
                     [H.make_tensor_value_info(n, types.get(n, TP.FLOAT), s) for n, s in outputs],
                     [NH.from_array(v, k) for k, v in inits.items()])
    path = os.path.join(W, name + ".onnx")
    onnx.save(H.make_model(g, opset_imports=[H.make_opsetid("", 13)]), path)
    return path


def conv_ref(x, w, stride, dil, pads):
    """Conv of NCHW |x| by |w| (float64: exact here), pads (top, left, bottom, right)."""
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    n, c, hh, ww = x.shape
    m, _, kh, kw = w.shape
    oh = (hh - (kh - 1) * dil[0] - 1) // stride[0] + 1
    ow = (ww - (kw - 1) * dil[1] - 1) // stride[1] + 1
    y = np.zeros((n, m, oh, ow))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i * dil[0]:i * dil[0] + stride[0] * (oh - 1) + 1:stride[0],
                      j * dil[1]:j * dil[1] + stride[1] * (ow - 1) + 1:stride[1]]
            y += np.einsum("nchw,mc->nmhw", patch, w[:, :, i, j].astype(np.float64))
    return y


CASES = []  # (name, model path, {input: array}, expected output)

b = q((300, 150))
x = q((1, 200, 300))
CASES.append(("matmul", save("matmul", [H.make_node("MatMul", ["x", "b"], ["y"])], [("x", [1, 200, 300])],
                             [("y", [1, 200, 150])], {"b": b}), {"x": x}, x.astype(np.float64) @ b))
a, b = q((3, 70, 130)), q((3, 130, 90))
CASES.append(("matmul_batch", save("matmul_batch", [H.make_node("MatMul", ["a", "b"], ["y"])],
                                   [("a", [3, 70, 130]), ("b", [3, 130, 90])], [("y", [3, 70, 90])], {}),
              {"a": a, "b": b}, a.astype(np.float64) @ b))
a, b, c = q((100, 90)), q((110, 100)), q((110,))
CASES.append(("gemm_t", save("gemm_t", [H.make_node("Gemm", ["a", "b", "c"], ["y"], transA=1, transB=1, alpha=0.5,
                                                     beta=2.0)],
                             [("a", [100, 90]), ("b", [110, 100])], [("y", [90, 110])], {"c": c}),
              {"a": a, "b": b}, 0.5 * (a.T.astype(np.float64) @ b.T) + 2.0 * c))
x, w, bias = q((2, 20, 30, 30)), q((48, 20, 3, 3), 0.125, 1), q((48,))
CASES.append(("conv_relu", save("conv_relu", [H.make_node("Conv", ["x", "w", "bias"], ["c"], pads=[1, 1, 1, 1]),
                                              H.make_node("Relu", ["c"], ["y"])],
                                [("x", [2, 20, 30, 30])], [("y", [2, 48, 30, 30])], {"w": w, "bias": bias}),
              {"x": x}, np.maximum(conv_ref(x, w, (1, 1), (1, 1), (1, 1, 1, 1)) + bias[None, :, None, None], 0)))
x, w = q((1, 24, 33, 29)), q((64, 24, 3, 3), 0.125, 1)
CASES.append(("conv_strided", save("conv_strided", [H.make_node("Conv", ["x", "w"], ["y"], pads=[0, 1, 1, 0],
                                                                strides=[2, 2], dilations=[1, 2])],
                                   [("x", [1, 24, 33, 29])], [("y", [1, 64, 16, 13])], {"w": w}),
              {"x": x}, conv_ref(x, w, (2, 2), (1, 2), (0, 1, 1, 0))))
x, w, r = q((1, 64, 28, 28)), q((96, 64, 1, 1), 0.125, 1), q((1, 96, 28, 28))
CASES.append(("conv_pointwise_residual",
              save("conv_pointwise_residual", [H.make_node("Conv", ["x", "w"], ["c"]),
                                               H.make_node("Add", ["c", "r"], ["s"]), H.make_node("Relu", ["s"], ["y"])],
                   [("x", [1, 64, 28, 28]), ("r", [1, 96, 28, 28])], [("y", [1, 96, 28, 28])], {"w": w}),
              {"x": x, "r": r}, np.maximum(conv_ref(x, w, (1, 1), (1, 1), (0, 0, 0, 0)) + r, 0)))
# int8: QLinearConv (uint8 input with its zero point, int8 weights with
# per-channel scales, an int32 bias, padding): the expected output is the
# CPU's bits (moss's host target: DESIGN.md's int8 numerics are bit-exact
# across backends), made in INT8_WANT below.
x8 = rng.integers(0, 256, size=(2, 24, 21, 19)).astype(np.uint8)
w8 = rng.integers(-127, 128, size=(40, 24, 3, 3)).astype(np.int8)
b32 = rng.integers(-2000, 2000, size=(40,)).astype(np.int32)
qinits = {"xs": np.array(0.02, np.float32), "xz": np.array(117, np.uint8),
          "ws": (rng.random(40) * 0.01 + 0.002).astype(np.float32), "wz": np.zeros(40, np.int8),
          "ys": np.array(0.5, np.float32), "yz": np.array(121, np.uint8), "bias": b32, "w8": w8}
qg = H.make_graph([H.make_node("QLinearConv", ["x", "xs", "xz", "w8", "ws", "wz", "ys", "yz", "bias"], ["y"],
                               pads=[1, 2, 1, 0], strides=[1, 2])], "qconv",
                  [H.make_tensor_value_info("x", TP.UINT8, [2, 24, 21, 19])],
                  [H.make_tensor_value_info("y", TP.UINT8, [2, 40, 21, 10])],
                  [NH.from_array(v, k) for k, v in qinits.items()])
QCONV = os.path.join(W, "qconv.onnx")
onnx.save(H.make_model(qg, opset_imports=[H.make_opsetid("", 13)]), QCONV)
# int8: a QDQ MatMul (ONNX Runtime's quantizer's format), which moss folds
# into its int8 Gemm (MossQGemm): float in and out, the int8 product inside.
wq = rng.integers(-127, 128, size=(128, 72)).astype(np.int8)
qd = H.make_graph([H.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
                   H.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
                   H.make_node("DequantizeLinear", ["wq", "ws2"], ["wd"]),
                   H.make_node("MatMul", ["xd", "wd"], ["m"]),
                   H.make_node("QuantizeLinear", ["m", "ys2", "yz2"], ["mq"]),
                   H.make_node("DequantizeLinear", ["mq", "ys2", "yz2"], ["y"])], "qdq_gemm",
                  [H.make_tensor_value_info("x", TP.FLOAT, [260, 128])],
                  [H.make_tensor_value_info("y", TP.FLOAT, [260, 72])],
                  [NH.from_array(np.array(0.05, np.float32), "s"), NH.from_array(np.array(128, np.uint8), "z"),
                   NH.from_array(wq, "wq"), NH.from_array(np.array(0.004, np.float32), "ws2"),
                   NH.from_array(np.array(0.25, np.float32), "ys2"), NH.from_array(np.array(120, np.uint8), "yz2")])
QGEMM = os.path.join(W, "qdq_gemm.onnx")
onnx.save(H.make_model(qd, opset_imports=[H.make_opsetid("", 13)]), QGEMM)
# int8: ONNX's own QLinearMatMul, a batch of [2, 3] products with B
# (a graph input) broadcast over the first batch dimension, per-tensor
# zero points; its expected output is the CPU's bits too.
qm = H.make_graph([H.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])], "qmatmul",
                  [H.make_tensor_value_info("a", TP.UINT8, [2, 3, 40, 64]),
                   H.make_tensor_value_info("b", TP.INT8, [3, 64, 120])],
                  [H.make_tensor_value_info("y", TP.UINT8, [2, 3, 40, 120])],
                  [NH.from_array(np.array(0.03, np.float32), "as"), NH.from_array(np.array(131, np.uint8), "az"),
                   NH.from_array(np.array(0.011, np.float32), "bs"), NH.from_array(np.array(3, np.int8), "bz"),
                   NH.from_array(np.array(0.6, np.float32), "ys"), NH.from_array(np.array(125, np.uint8), "yz")])
QMATMUL = os.path.join(W, "qmatmul.onnx")
onnx.save(H.make_model(qm, opset_imports=[H.make_opsetid("", 13)]), QMATMUL)
INT8 = [("qlinearconv", QCONV, {"x": x8}, None),
        ("qdq_gemm", QGEMM, {"x": rng.standard_normal((260, 128)).astype(np.float32) * 2}, None),
        ("qlinearmatmul", QMATMUL, {"a": rng.integers(0, 256, (2, 3, 40, 64)).astype(np.uint8),
                                    "b": rng.integers(-128, 128, (3, 64, 120)).astype(np.int8)}, None)]
# MatMulInteger with a zero point per row of A and one per column of B
# (a graph input): int32 out, numpy's exact product.
a8 = rng.integers(0, 256, (150, 130)).astype(np.uint8)
b8 = rng.integers(-128, 128, (130, 90)).astype(np.int8)
az8 = rng.integers(100, 156, (150,)).astype(np.uint8)
bz8 = rng.integers(-5, 6, (90,)).astype(np.int8)
CASES.append(("matmulinteger", save("matmulinteger", [H.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])],
                                    [("a", [150, 130]), ("b", [130, 90])], [("y", [150, 90])], {"az": az8, "bz": bz8},
                                    types={"a": TP.UINT8, "b": TP.INT8, "y": TP.INT32}),
              {"a": a8, "b": b8},
              (a8.astype(np.int64) - az8[:, None]) @ (b8.astype(np.int64) - bz8[None, :].astype(np.int64))))
CASES[-1] = CASES[-1][:3] + (CASES[-1][3].astype(np.int32),)

a, b = q((4, 8)), q((8, 6))
SMALL = ("matmul_small", save("matmul_small", [H.make_node("MatMul", ["a", "b"], ["y"])], [("a", [4, 8])],
                              [("y", [4, 6])], {"b": b}), {"a": a}, a.astype(np.float64) @ b)


def variant(src, name, drop_local=False, group_max=None, caps=None):
    """A copy of target |src| without local-memory-bytes, or with another
    max-workgroup-size, or other spirv-capabilities."""
    text = open(src).read()
    if caps is not None:
        text = re.sub(r'spirv-capabilities="[^"]*"', 'spirv-capabilities="%s"' % caps, text)
    if drop_local:
        text = re.sub(r'\s*local-memory-bytes="\d+"', "", text)
    if group_max is not None:
        text = re.sub(r'max-workgroup-size="\d+"', 'max-workgroup-size="%d"' % group_max, text)
    path = os.path.join(W, name + ".xml")
    with open(path, "w") as f:
        f.write(text)
    return path


def compile_model(path, target, art):
    p = subprocess.run([A.moss, "compile", path, "--target", target, "-o", art], capture_output=True, text=True,
                       env=ENV)
    if p.returncode != 0:
        fail("%s for %s: compile failed: %s" % (os.path.basename(path), target, p.stderr.strip()[-400:]))
        return False
    return True


def tiled(path, target):
    """Whether |path|'s kernels for |target| have work-group tiles."""
    p = subprocess.run([A.moss, "compile", path, "--target", target, "--dump-kernels", "-o",
                        os.path.join(W, "dump.moss")], capture_output=True, text=True, env=ENV)
    return " group:" in p.stdout and "barrier" in p.stdout and ": shared " in p.stdout


def run_case(case, target, tag, want_tiles):
    name, path, feeds, want = case
    art = os.path.join(W, "%s.%s.moss" % (name, tag))
    if tiled(path, target) != want_tiles:
        fail("%s on %s: work-group tiles %s, expected %s" % (name, tag, not want_tiles, want_tiles))
    if not compile_model(path, target, art):
        return
    args = []
    for k, v in feeds.items():
        np.save(os.path.join(W, "%s_%s.npy" % (name, k)), v)
        args += ["--input", "%s=%s" % (k, os.path.join(W, "%s_%s.npy" % (name, k)))]
    out = os.path.join(W, "out_%s_%s" % (name, tag))
    p = subprocess.run([A.moss, "run", art] + args + ["-o", out], capture_output=True, text=True, env=ENV)
    if p.returncode != 0:
        fail("%s on %s: run failed: %s" % (name, tag, p.stderr.strip()[-400:]))
        return
    y = np.load(os.path.join(out, "output_0.npy"))
    if want.dtype != np.float64:  # int8: the CPU's bits
        if y.dtype != want.dtype or not np.array_equal(y, want):
            fail("%s on %s: not the expected bits (%d of %d differ)" % (name, tag, int(np.sum(y != want)), want.size))
        else:
            print("ok %s on %s%s: the expected bits" % (name, tag, " (tiles)" if want_tiles else ""))
        return
    if y.shape != want.shape or not np.array_equal(y.astype(np.float64), want):
        err = np.abs(y.astype(np.float64) - want).max() if y.shape == want.shape else "shape %s" % (y.shape,)
        fail("%s on %s: not numpy's exact result (largest difference %s)" % (name, tag, err))
    else:
        print("ok %s on %s%s: numpy's exact result" % (name, tag, " (tiles)" if want_tiles else ""))


def cpu_bits(case):
    """|case| with its expected output: the model's output on the host CPU."""
    name, path, feeds, _ = case
    art = os.path.join(W, name + ".host.moss")
    if not compile_model(path, "host", art):
        return None
    args = []
    for k, v in feeds.items():
        np.save(os.path.join(W, "%s_%s.npy" % (name, k)), v)
        args += ["--input", "%s=%s" % (k, os.path.join(W, "%s_%s.npy" % (name, k)))]
    subprocess.run([A.moss, "run", art] + args + ["-o", os.path.join(W, name + "_host")], check=True,
                   capture_output=True, env=ENV)
    want = np.load(os.path.join(W, name + "_host", "output_0.npy"))
    if len(np.unique(want)) < 50:
        fail("%s: the CPU's output has %d distinct values: the test's scales leave too little to compare"
             % (name, len(np.unique(want))))
    return name, path, feeds, want


INT8 = [c for c in map(cpu_bits, INT8) if c]
CASES += INT8

for tag, target in (("opencl", os.path.join(CONF, "opencl-only.xml")), ("vulkan", os.path.join(CONF, "vulkan-only.xml"))):
    naive = variant(target, tag + "-naive", drop_local=True)
    narrow = variant(target, tag + "-narrow", group_max=32)
    for case in CASES:
        run_case(case, target, tag, True)
    for case in CASES[:2] + CASES[3:4]:
        run_case(case, naive, tag + "-naive", False)
    run_case(CASES[0], narrow, tag + "-narrow", False)
    run_case(SMALL, target, tag, False)

# Vulkan with the packed 8-bit dot product (the target lists
# DotProductInput4x8BitPacked; lavapipe has VK_KHR_shader_integer_dot_product):
# the int8 tiles whose operands shift into signed bytes (one zero point per
# operand) sum four products an instruction (DOT4S: OpSDot) and give the
# same bits; the MatMulInteger, whose A has a zero point per row, keeps
# int32 products.
DOT = variant(os.path.join(CONF, "vulkan-only.xml"), "vulkan-dot", caps="Shader DotProductInput4x8BitPacked")
for case in [c for c in CASES if c[3].dtype != np.float64]:
    p = subprocess.run([A.moss, "compile", case[1], "--target", DOT, "--dump-kernels", "-o",
                        os.path.join(W, "dump.moss")], capture_output=True, text=True, env=ENV)
    want_dot = case[0] != "matmulinteger"
    if ("dot4s(" in p.stdout) != want_dot:
        fail("%s on vulkan-dot: DOT4S %s, expected %s" % (case[0], not want_dot, want_dot))
    run_case(case, DOT, "vulkan-dot", True)

# PTX: every module through ptxas, with shared memory and barriers.
ptxas = find_ptxas()
PTX_ONLY = os.path.join(CONF, "ptx-only.xml")
if not ptxas:
    fail("no ptxas (the CUDA toolkit in /usr/local/cuda)")
else:
    for name, path, feeds, want in CASES:
        art = os.path.join(W, "%s.ptx.moss" % name)
        if not tiled(path, PTX_ONLY):
            fail("%s on ptx: no work-group tiles" % name)
        if not compile_model(path, PTX_ONLY, art):
            continue
        for k, bl in enumerate(blobs(art)):
            src = os.path.join(W, "%s.%d.ptx" % (name, k))
            with open(src, "wb") as f:
                f.write(bl["source"])
            text = bl["source"].decode()
            if ".shared" not in text or "bar.sync" not in text and "barrier.sync" not in text:
                fail("%s: PTX module %d has no shared memory or no barrier" % (name, k))
            groups = set(it >> 32 for it in bl["items"])  # 0: any size (an Add, say)
            if 256 not in groups or groups - {0, 256}:
                fail("%s: PTX launches in work-groups of %s, expected 256 for the product (ptx-only.xml: 1024 "
                     "lanes, 48 KiB)" % (name, sorted(groups)))
            # sm_90 has dp4a: the int8 tiles whose operands each have one zero
            # point sum four byte products an instruction (DOT4S).
            want_dp4a = want.dtype != np.float64 and name != "matmulinteger" and k == 0
            if want_dp4a and "dp4a.s32.s32" not in text:
                fail("%s: PTX module %d has no dp4a" % (name, k))
            p = subprocess.run([ptxas, "-arch", "sm_90", src, "-o", src + ".cubin"], capture_output=True, text=True)
            if p.returncode != 0:
                fail("%s: ptxas refuses module %d: %s" % (name, k, p.stderr.strip()[:300]))
        if A.export:
            d = os.path.join(A.export, name)
            os.makedirs(d, exist_ok=True)
            shutil.copy(art, os.path.join(d, "model.moss"))
            ins = []
            for i, (k, v) in enumerate(feeds.items()):
                v.tofile(os.path.join(d, "in%d.bin" % i))
                ins.append(os.path.join(name, "in%d.bin" % i))
            np.save(os.path.join(d, "want.npy"), want.astype(np.float32) if want.dtype == np.float64 else want)
            with open(os.path.join(A.export, "manifest.tsv"), "a") as f:
                f.write("%s\t%s\t%s\t%s\t%s\n" % (name, "float" if want.dtype == np.float64 else "bits",
                                                   os.path.join(name, "model.moss"), ",".join(ins),
                                                   os.path.join(name, "want.npy")))
    print("ptx: %d models through ptxas" % len(CASES))

shutil.rmtree(W, ignore_errors=True)
print("test_gpu_tiles: %s" % ("FAIL (%d)" % fails if fails else "ok"))
sys.exit(1 if fails else 0)
