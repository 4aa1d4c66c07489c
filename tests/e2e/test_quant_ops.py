#!/usr/bin/python3
"""Moss's quantized operators against numpy references computed here, on
cases the ONNX node tests do not reach: grouped, strided, padded, dilated
ConvInteger/QLinearConv with batch 2 and per-channel int8 weights, batch
broadcast MatMulInteger with per-row/per-column zero points, QLinearMatMul
with a per-column scale, per-axis Quantize/Dequantize with exact ties.
Integer results must be exact.

  test_quant_ops.py MOSS [bundle|c]
"""
import os, subprocess, sys, tempfile, numpy as np, onnx
from onnx import helper as H, numpy_helper as NH, TensorProto as TP
MOSS = sys.argv[1]; EMIT = sys.argv[2] if len(sys.argv) > 2 else "bundle"
rng = np.random.default_rng(7)
W = tempfile.mkdtemp(prefix="moss-quant-")
NP2TP = {np.uint8: TP.UINT8, np.int8: TP.INT8, np.float32: TP.FLOAT, np.int32: TP.INT32}

def run(name, node, inputs, inits, out_dtype, out_shape, opset=13, emit=None):
    emit = emit or EMIT
    g = H.make_graph([node], name,
        [H.make_tensor_value_info(k, NP2TP[v.dtype.type], v.shape) for k, v in inputs.items()],
        [H.make_tensor_value_info("y", NP2TP[out_dtype], out_shape)],
        [NH.from_array(v, k) for k, v in inits.items()])
    m = H.make_model(g, opset_imports=[H.make_opsetid("", opset)])
    d = os.path.join(W, name); os.makedirs(d, exist_ok=True)
    onnx.save(m, d + "/model.onnx")
    args = []
    for k, v in inputs.items():
        onnx.save_tensor(NH.from_array(v, k), "%s/%s.pb" % (d, k))
        args += ["--input", "%s=%s/%s.pb" % (k, d, k)]
    art = d + "/model-%s.moss" % emit if emit == "bundle" else d + "/c"
    subprocess.run([MOSS, "compile", d + "/model.onnx", "--emit", emit, "-o", art, "-q"], check=True)
    subprocess.run([MOSS, "run", art] + args + ["-o", d + "/out-" + emit], check=True)
    return np.load(d + "/out-%s/output_0.npy" % emit)

def conv_ref(x, w, zx, zw, group, s, p, dl):
    N, C, H_, W_ = x.shape; O, CG, KH, KW = w.shape
    xp = np.full((N, C, H_ + p[0] + p[2], W_ + p[1] + p[3]), zx, np.int64)
    xp[:, :, p[0]:p[0] + H_, p[1]:p[1] + W_] = x
    xp = xp - zx
    wz = w.astype(np.int64) - np.asarray(zw, np.int64).reshape(-1, 1, 1, 1)
    OH = (xp.shape[2] - ((KH - 1) * dl[0] + 1)) // s[0] + 1
    OW = (xp.shape[3] - ((KW - 1) * dl[1] + 1)) // s[1] + 1
    y = np.zeros((N, O, OH, OW), np.int64)
    opg = O // group
    for o in range(O):
        g = o // opg
        for i in range(OH):
            for j in range(OW):
                patch = xp[:, g * CG:(g + 1) * CG, i * s[0]:i * s[0] + (KH - 1) * dl[0] + 1:dl[0],
                           j * s[1]:j * s[1] + (KW - 1) * dl[1] + 1:dl[1]]
                y[:, o, i, j] = (patch * wz[o]).sum(axis=(1, 2, 3))
    return y

def requant(acc, mult, yz, dt):
    info = np.iinfo(dt)
    return np.clip(np.rint(acc * mult) + yz, info.min, info.max).astype(dt)

fails = 0
def check(name, got, want, lsb):
    global fails
    d = np.abs(got.astype(np.int64) - want.astype(np.int64)) if want.dtype.kind in "iu" else np.abs(got - want)
    ok = got.shape == want.shape and d.max() <= lsb
    print("%-28s %s  max diff %s, %d of %d differ" % (name, "ok " if ok else "BAD", d.max(), (d > 0).sum(), d.size))
    fails += not ok

# ConvInteger / QLinearConv: groups, strides, pads, dilations, batch 2, per-channel w zp.
x = rng.integers(0, 256, (2, 4, 9, 8), dtype=np.uint8)
w = rng.integers(-128, 128, (6, 2, 3, 2), dtype=np.int8)
zx = np.uint8(121); zw = rng.integers(-5, 5, 6, dtype=np.int8)
attrs = dict(group=2, strides=[2, 1], pads=[1, 0, 2, 1], dilations=[1, 2])
acc = conv_ref(x, w, int(zx), zw.astype(np.int64), 2, [2, 1], [1, 0, 2, 1], [1, 2])
got = run("convinteger", H.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], **attrs),
          {"x": x}, {"w": w, "xz": np.array(zx), "wz": zw}, np.int32, acc.shape, opset=10)
check("ConvInteger", got, acc.astype(np.int32), 0)
xs = np.float32(0.02); ws = rng.uniform(0.001, 0.01, 6).astype(np.float32); ys = np.float32(0.35)
b = rng.integers(-2000, 2000, 6, dtype=np.int32); yz = np.int8(-3)
mult = (xs.astype(np.float64) * ws.astype(np.float64) / ys).reshape(1, -1, 1, 1)
want = requant((acc + b.reshape(1, -1, 1, 1)).astype(np.float64), mult, int(yz), np.int8)
got = run("qlinearconv", H.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"], **attrs),
          {"x": x}, {"xs": np.array(xs), "xz": np.array(zx), "w": w, "ws": ws, "wz": zw, "ys": np.array(ys),
                     "yz": np.array(yz), "b": b}, np.int8, want.shape, opset=10)
check("QLinearConv per-channel", got, want, 1)

# QLinearConv with one group and zero weight zero points: on a machine with
# DOT4 (AVX-512 VNNI here) the bundle runs it as an implicit product of byte
# dot products (compiler/kernel/lower_conv.c); its output must equal the C
# backend's (the scalar loops) exactly, and numpy's within 1 LSB. uint8 and
# int8 inputs, channels not a multiple of 4, strides, padding, dilation,
# per-tensor and per-channel scales, a grid chunked through the cache; and
# depthwise ones, on int32 planes of x - x_zp (any machine with vectors).
with open("/proc/cpuinfo") as f:
    VNNI = " avx512_vnni" in f.read()


def conv_ref_taps(x, w, zx, s, p, dl):
    N, C, H_, W_ = x.shape; O, _, KH, KW = w.shape
    xp = np.full((N, C, H_ + p[0] + p[2], W_ + p[1] + p[3]), zx, np.int64)
    xp[:, :, p[0]:p[0] + H_, p[1]:p[1] + W_] = x
    xp -= zx
    OH = (xp.shape[2] - ((KH - 1) * dl[0] + 1)) // s[0] + 1
    OW = (xp.shape[3] - ((KW - 1) * dl[1] + 1)) // s[1] + 1
    y = np.zeros((N, O, OH, OW), np.int64)
    for i in range(KH):
        for j in range(KW):
            win = xp[:, :, i * dl[0]:i * dl[0] + (OH - 1) * s[0] + 1:s[0], j * dl[1]:j * dl[1] + (OW - 1) * s[1] + 1:s[1]]
            if w.shape[1] == 1 and O == C and C > 1:  # depthwise: one channel per group
                y += w[:, 0, i, j].astype(np.int64).reshape(1, -1, 1, 1) * win
            else:
                y += np.einsum("oc,nchw->nohw", w[:, :, i, j].astype(np.int64), win)
    return y

for (name, xdt, xshape, wshape, s_, p_, dl, per_ch, ydt, with_b) in [
        ("q8_3x3_u8", np.uint8, (2, 16, 10, 12), (24, 16, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, np.uint8, 1),
        ("q8_3x3_s2_i8_c5", np.int8, (1, 5, 15, 13), (7, 5, 3, 3), (2, 2), (1, 0, 1, 2), (1, 1), 0, np.int8, 1),
        ("q8_7x7_s2_stem", np.uint8, (1, 3, 40, 40), (16, 3, 7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1, np.uint8, 1),
        ("q8_1x1", np.int8, (1, 32, 8, 8), (20, 32, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, np.uint8, 0),
        ("q8_3x3_dil2", np.uint8, (1, 8, 11, 11), (9, 8, 3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 1, np.int8, 1),
        ("q8_3x3_chunked", np.uint8, (1, 8, 64, 64), (72, 8, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, np.uint8, 1),
        # depthwise (group = channels): int32 planes of x - x_zp, rows of vectors or the whole grid
        ("q8_dw3x3_u8", np.uint8, (2, 6, 20, 37), (6, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, np.uint8, 1),
        ("q8_dw3x3_s2_i8", np.int8, (1, 5, 33, 35), (5, 1, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 0, np.int8, 1),
        ("q8_dw5x5_small", np.uint8, (1, 7, 9, 9), (7, 1, 5, 5), (1, 1), (2, 1, 2, 3), (1, 1), 1, np.uint8, 0)]:
    info = np.iinfo(xdt)
    xq = rng.integers(info.min, info.max + 1, xshape, dtype=xdt)
    wq = rng.integers(-127, 128, wshape, dtype=np.int8)
    zxq = xdt(info.min + 37)
    xsc = np.float32(0.03)
    wsc = (rng.uniform(0.002, 0.01, wshape[0]) if per_ch else rng.uniform(0.002, 0.01, 1)).astype(np.float32)
    K = wshape[1] * wshape[2] * wshape[3]
    ysc = np.float32(0.03 * 0.006 * np.sqrt(K) * 600)
    yzq = np.iinfo(ydt).min + 100 if ydt == np.uint8 else ydt(5)
    bq = rng.integers(-3000, 3000, wshape[0], dtype=np.int32)
    acc = conv_ref_taps(xq, wq, int(zxq), s_, p_, dl)
    if with_b:
        acc = acc + bq.reshape(1, -1, 1, 1)
    mult = (xsc.astype(np.float64) * wsc.astype(np.float64) / ysc).reshape(1, -1, 1, 1)
    want = requant(acc.astype(np.float64), mult, int(yzq), ydt)
    ins = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"] + (["b"] if with_b else [])
    inits = {"xs": np.array(xsc), "xz": np.array(zxq), "w": wq,
             "ws": wsc if per_ch else np.array(wsc[0]),
             "wz": np.zeros(wshape[0] if per_ch else (), np.int8), "ys": np.array(ysc), "yz": np.array(ydt(yzq))}
    if with_b:
        inits["b"] = bq
    node = H.make_node("QLinearConv", ins, ["y"], strides=list(s_), pads=list(p_), dilations=list(dl),
                       kernel_shape=list(wshape[2:]), group=xshape[1] if wshape[1] == 1 and xshape[1] > 1 else 1)
    got = run(name, node, {"x": xq}, inits, ydt, want.shape, opset=10)
    check("QLinearConv " + name, got, want, 1)
    if EMIT == "bundle":
        other = run(name, node, {"x": xq}, inits, ydt, want.shape, opset=10, emit="c")
        check("QLinearConv " + name + " bundle == C", got, other, 0)
        if VNNI:  # the kernel compared is the DOT4 one
            dump = subprocess.run([MOSS, "compile", os.path.join(W, name, "model.onnx"), "-o",
                                   os.path.join(W, name, "dump.moss"), "-q", "--dump-kernels"],
                                  capture_output=True, text=True, check=True).stdout
            if "int8 implicit product" not in dump and "depthwise:" not in dump:
                print("QLinearConv %s: BAD, the bundle did not take the DOT4 kernel" % name)
                fails += 1

# Exact ties: multipliers that are powers of two (x_scale * w_scale / y_scale
# = 2, 1, 0.5, 0.25, 0.125 and 2^-10 by channel) put many sums exactly half
# way between two outputs, which docs/numerics-int8.md rounds to even, as
# numpy's rint does: exact on every backend (the vector epilogue of the
# implicit product too), bit for bit the C backend's.
xq = rng.integers(0, 256, (1, 8, 9, 16), dtype=np.uint8)
wq = rng.integers(-20, 21, (12, 8, 1, 1), dtype=np.int8)
pw2 = np.array([2, 1, 0.5, 0.25, 0.125, 2.0 ** -10] * 2, np.float32)
acc = conv_ref_taps(xq, wq, 128, (1, 1), (0, 0, 0, 0), (1, 1))
want = requant(acc.astype(np.float64), pw2.astype(np.float64).reshape(1, -1, 1, 1), 0, np.int8)
node = H.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"], kernel_shape=[1, 1])
inits = {"xs": np.array(np.float32(1.0)), "xz": np.array(np.uint8(128)), "w": wq, "ws": pw2,
         "wz": np.zeros(12, np.int8), "ys": np.array(np.float32(1.0)), "yz": np.array(np.int8(0))}
got = run("q8_ties", node, {"x": xq}, inits, np.int8, want.shape, opset=10)
check("QLinearConv ties to even", got, want, 0)
if EMIT == "bundle":
    check("QLinearConv ties bundle == C", got, run("q8_ties", node, {"x": xq}, inits, np.int8, want.shape,
                                                   opset=10, emit="c"), 0)

# MatMulInteger / QLinearMatMul: batch broadcast, per-row a zp, per-column b zp and scale.
a = rng.integers(-128, 128, (2, 1, 3, 5), dtype=np.int8)
bm = rng.integers(0, 256, (4, 5, 6), dtype=np.uint8)
za = rng.integers(-3, 3, 3, dtype=np.int8); zb = rng.integers(100, 140, 6, dtype=np.uint8)
acc = np.matmul(a.astype(np.int64) - za.reshape(3, 1), bm.astype(np.int64) - zb.reshape(1, 6))
got = run("matmulinteger", H.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["y"]),
          {"a": a, "b": bm}, {"za": za, "zb": zb}, np.int32, acc.shape, opset=10)
check("MatMulInteger", got, acc.astype(np.int32), 0)
as_ = np.float32(0.05); bs = rng.uniform(0.002, 0.02, 6).astype(np.float32); ys = np.float32(0.9); yz = np.uint8(130)
za1 = np.int8(2); zb1 = np.uint8(128)
acc = np.matmul(a.astype(np.int64) - int(za1), bm.astype(np.int64) - int(zb1))
want = requant(acc.astype(np.float64), as_.astype(np.float64) * bs.astype(np.float64) / ys, int(yz), np.uint8)
got = run("qlinearmatmul", H.make_node("QLinearMatMul", ["a", "as", "za", "b", "bs", "zb", "ys", "yz"], ["y"]),
          {"a": a, "b": bm}, {"as": np.array(as_), "za": np.array(za1), "bs": bs, "zb": np.array(zb1),
                              "ys": np.array(ys), "yz": np.array(yz)}, np.uint8, want.shape, opset=10)
check("QLinearMatMul per-column", got, want, 1)

# QuantizeLinear int8 per-axis with ties, and DequantizeLinear int8 per-axis.
sc = np.array([0.5, 0.25, 2.0], np.float32); zq = np.array([-1, 0, 3], np.int8)
xq = (rng.integers(-600, 600, (2, 3, 4)).astype(np.float32) * np.float32(0.125))
xq[0, 0, :4] = [0.25, 0.75, -0.25, -1.25]  # ties at scale 0.5
wantq = np.clip(np.rint(xq / sc.reshape(1, 3, 1)) + zq.reshape(1, 3, 1), -128, 127).astype(np.int8)
got = run("quantize_i8", H.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1),
          {"x": xq}, {"s": sc, "z": zq}, np.int8, xq.shape)
check("QuantizeLinear int8 axis", got, wantq, 0)
xd = rng.integers(-128, 128, (3, 2, 2), dtype=np.int8)
wantd = (xd.astype(np.float32) - zq.reshape(3, 1, 1).astype(np.float32)) * sc.reshape(3, 1, 1)
got = run("dequantize_i8", H.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], axis=0),
          {"x": xd}, {"s": sc, "z": zq}, np.float32, xd.shape)
check("DequantizeLinear int8 axis", got, wantd, 0)
xq2 = np.array([-3.0, -1.5, 0.5, 1.5, 2.5, 300.0], np.float32)
got = run("quantize_nozp", H.make_node("QuantizeLinear", ["x", "s"], ["y"]),
          {"x": xq2}, {"s": np.array(np.float32(1.0))}, np.uint8, xq2.shape, opset=10)
check("QuantizeLinear no zp (uint8)", got, np.clip(np.rint(xq2), 0, 255).astype(np.uint8), 0)
# ONNX Runtime's quantizer writes an int32 bias with a [1] scale and a
# scalar zero point: one value each, per tensor.
xb = rng.integers(-100000, 100000, (7,), dtype=np.int32)
got = run("dequantize_i32_scale1_zpscalar", H.make_node("DequantizeLinear", ["x", "s", "z"], ["y"]),
          {"x": xb}, {"s": np.array([0.0625], np.float32), "z": np.array(0, np.int32)}, np.float32, xb.shape)
check("DequantizeLinear int32 [1] scale, scalar zero point", got, xb.astype(np.float32) * np.float32(0.0625), 0)
import shutil
shutil.rmtree(W, ignore_errors=True)
sys.exit(1 if fails else 0)
