#!/usr/bin/python3
"""int8 sparse kernels against their dense twins and numpy.

One ONNX model per weight pattern (random zeros at 50 and 90 %, 4x1 blocks
at 90 %, 1x4 blocks at 80 %, 2:4: 2 zeros in every group of 4 reduction
terms, and half the reduction terms zero for every output: columns), each holding independent integer layers whose weight is a
constant with zero points 0:
  - QLinearConv 3x3, pads 1, stride 2, uint8 input with zero point 121,
    per-channel weight scales, int32 bias, batch 2;
  - QLinearConv 1x1 on a 24x24 plane (one 576-long row: more than one tile
    of the int8 kernel), int8 input with zero point -3, one weight scale,
    no bias, int8 output;
  - QLinearConv 3x3 with dilation 2, stride (1, 2), uneven pads, 3 input
    channels (27 reduction terms: no 1x4 blocks);
  - ConvInteger 3x3, pads 1, input zero point 100 (int32 output);
  - QLinearMatMul of a 3-D uint8 A by a constant B with per-column scales;
  - MatMulInteger with a zero point per row of A (int32 output).
Every model is compiled with --emit c under MOSS_SPARSE=off, csr, block,
block1x4, 2:4, columns and auto and run with `moss run` on the same inputs, and
again with --emit obj (the LLVM backend, which builds the same kernel
descriptions: the same formats, outputs equal to the dense C build's bit
for bit). Checks:
  - every sparse build's outputs equal the dense build's bit for bit (the
    twin: integer sums are exact, so nothing may differ);
  - the int32 outputs equal numpy's exactly and the 8-bit ones are within
    1 LSB of numpy's float requantization of the exact integer sums;
  - the C took the format the mode asks for (the "sparse <fmt>" comment):
    forced formats where the weight allows them for Conv, CSR and columns
    for MatMul (the rest become CSR),
    and under auto the cheapest by docs/sparse.md's int8 estimates,
    recomputed here from the weights;
  - the --report JSON names the same format for each layer, and the same
    estimates."""
import os
import re
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_sparse import compile_run  # noqa: E402  (compile with --emit c and --report, run)

TP = {np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int8): TensorProto.INT8,
      np.dtype(np.int32): TensorProto.INT32}

# name, op, x shape, x dtype, x zero point, weight shape, attrs, per-channel
# scales, bias, output dtype (None: int32, no requantization)
with open("/proc/cpuinfo") as _f:
    _flags = _f.read()
    VNNI = " avx512_vnni" in _flags
    # the byte lanes of one vector register of the host target's LLVM code
    # (compiler/kernel/kernel.c): the columns kernel's padding
    HOST_LANES = 64 if " avx512f" in _flags else 32 if " avx" in _flags else 16

LAYERS = [
    ("qconv3", "QLinearConv", (2, 8, 9, 9), np.uint8, 121, (16, 8, 3, 3),
     dict(pads=[1, 1, 1, 1], strides=[2, 2]), True, True, np.uint8),
    ("qconv1", "QLinearConv", (1, 16, 24, 24), np.int8, -3, (32, 16, 1, 1), {}, False, False,
     np.int8),
    ("qconvd", "QLinearConv", (1, 3, 10, 11), np.uint8, 7, (8, 3, 3, 3),
     dict(pads=[1, 0, 2, 1], strides=[1, 2], dilations=[2, 2]), True, True, np.uint8),
    ("convint", "ConvInteger", (1, 4, 7, 7), np.uint8, 100, (8, 4, 3, 3), dict(pads=[1, 1, 1, 1]),
     False, False, None),
    ("qmatmul", "QLinearMatMul", (2, 5, 64), np.uint8, 128, (64, 32), {}, True, False, np.uint8),
    ("matmulint", "MatMulInteger", (6, 40), np.uint8, None, (40, 24), {}, False, False, None),
]


def is_conv(op):
    return op in ("QLinearConv", "ConvInteger")


def wt_shape(op, wshape):
    """Wt [outputs, reduction terms] of a weight of |wshape|."""
    if is_conv(op):
        return (wshape[0], int(np.prod(wshape[1:])))
    return (wshape[1], wshape[0])


def make_weight(rng, op, wshape, pattern):
    style, sparsity = pattern
    r, c = wt_shape(op, wshape)
    wt = rng.randint(1, 128, (r, c)) * rng.choice([-1, 1], (r, c))
    if style == "random":
        flat = wt.reshape(-1)
        flat[rng.permutation(r * c)[: int(round(sparsity * r * c))]] = 0
    elif style == "block1x4" and c % 4 == 0:
        blocks = wt.reshape(r, c // 4, 4)
        nb = r * (c // 4)
        for i in rng.permutation(nb)[: int(round(sparsity * nb))]:
            blocks[i // (c // 4), i % (c // 4), :] = 0
    elif style == "block":
        blocks = wt.reshape(r // 4, 4, c)
        nb = (r // 4) * c
        for i in rng.permutation(nb)[: int(round(sparsity * nb))]:
            blocks[i // c, :, i % c] = 0
    elif style == "columns":  # whole columns of Wt: one reduction term of every output
        wt[:, rng.permutation(c)[: int(round(sparsity * c))]] = 0
    elif style == "nm":
        for i in range(r):
            for g in range(0, c, 4):
                n = min(4, c - g)
                keep = rng.permutation(n)[: min(2, n)]
                drop = [k for k in range(n) if k not in keep]
                wt[i, [g + k for k in drop]] = 0
    else:  # 1x4 blocks impossible: random zeros
        flat = wt.reshape(-1)
        flat[rng.permutation(r * c)[: int(round(sparsity * r * c))]] = 0
    wt = wt.astype(np.int8)
    w = wt.reshape(wshape) if is_conv(op) else np.ascontiguousarray(wt.T)
    return w, wt


def possible(wt):
    """Formats other than CSR that the weight Wt can take."""
    r, c = wt.shape
    ok = set()
    if r % 4 == 0:
        ok.add("block4x1")
    if c % 4 == 0:
        ok.add("block1x4")
    nz = wt != 0
    if all(nz[:, g:g + 4].sum(axis=1).max() <= 2 for g in range(0, c, 4)):
        ok.add("2:4")
    return ok


def q8_costs(op, wt, lanes=1):
    """docs/sparse.md's int8 estimates of each format for Wt: Conv per
    nonzero 1, per 4x1 block 3.5, per stored zero slot (1x4, 2:4) 0.1;
    Gemm/MatMul CSR, the float rule's (2.5 per nonzero, 1 per row) times
    8, and columns, rows x padded + 9 x kept (kept: the columns holding a
    nonzero; padded: kept rounded up to a multiple of the kernel's byte
    lanes, 1 in the C backend's code). "-" where the weight cannot take the
    format."""
    r, c = wt.shape
    nz = wt != 0
    nnz = float(nz.sum())
    costs = {"dense": float(r * c)}
    if not is_conv(op):
        costs["csr"] = (2.5 * nnz + r) * 8.0
        kept = float(nz.any(axis=0).sum())
        padded = -(-kept // lanes) * lanes
        costs["columns"] = r * padded + 9.0 * kept
        return costs
    costs["csr"] = nnz
    ok = possible(wt)
    if "block4x1" in ok:
        costs["block4x1"] = 3.5 * float(nz.reshape(r // 4, 4, c).any(axis=1).sum())
    if "block1x4" in ok:
        costs["block1x4"] = nnz + 0.1 * (4.0 * nz.reshape(r, c // 4, 4).any(axis=2).sum() - nnz)
    if "2:4" in ok:
        costs["2:4"] = nnz + 0.1 * (2.0 * r * ((c + 3) // 4) - nnz)
    return costs


def q8_tile_costs(wt, cin, dense, dot):
    """docs/sparse.md's estimates of CSR and 4x1 for an int8 Conv whose
    dense kernel is on the register tile (rules int8-dot, int8-widened):
    dense x (FIXED + SLOPE x kept / all) of its words of four input channels
    at one kernel position (CSR) or 4x1 blocks of them, from
    bench/bench_q8_words.py's medians."""
    m, c = wt.shape
    taps = c // cin
    cg = (cin + 3) // 4
    w = np.zeros((m, cg * 4, taps), bool)
    w[:, :cin] = (wt != 0).reshape(m, cin, taps)
    words = w.reshape(m, cg, 4, taps).any(axis=2)
    fc, sc, fb, sb = (0.36, 1.56, 0.41, 0.63) if dot else (0.17, 1.03, 0.15, 0.90)
    out = {"csr": dense * (fc + sc * words.sum() / words.size)}
    if m % 4 == 0:
        blocks = words.reshape(m // 4, 4, cg, taps).any(axis=1)
        out["block4x1"] = dense * (fb + sb * blocks.sum() / blocks.size)
    return out


def conv_acc(x, xz, w, attrs):
    """Exact int64 sums of (x - x_zp) * w; the padding holds x_zp."""
    pads = attrs.get("pads", [0, 0, 0, 0])
    s = attrs.get("strides", [1, 1])
    dl = attrs.get("dilations", [1, 1])
    N, C, H, W = x.shape
    M, _, KH, KW = w.shape
    xp = np.full((N, C, H + pads[0] + pads[2], W + pads[1] + pads[3]), xz, np.int64)
    xp[:, :, pads[0]:pads[0] + H, pads[1]:pads[1] + W] = x
    xp -= xz
    OH = (xp.shape[2] - ((KH - 1) * dl[0] + 1)) // s[0] + 1
    OW = (xp.shape[3] - ((KW - 1) * dl[1] + 1)) // s[1] + 1
    y = np.zeros((N, M, OH, OW), np.int64)
    for i in range(OH):
        for j in range(OW):
            patch = xp[:, :, i * s[0]:i * s[0] + (KH - 1) * dl[0] + 1:dl[0],
                       j * s[1]:j * s[1] + (KW - 1) * dl[1] + 1:dl[1]]
            y[:, :, i, j] = np.tensordot(patch, w.astype(np.int64), axes=([1, 2, 3], [1, 2, 3]))
    return y


def build(rng, pattern):
    """The model, its feeds, per layer (reference, Wt) and the references' kind."""
    nodes, inits, ins, outs, feeds, refs = [], [], [], [], [], []
    for name, op, xshape, xdt, xz, wshape, attrs, perch, has_bias, ydt in LAYERS:
        info = np.iinfo(xdt)
        x = rng.randint(info.min, info.max + 1, xshape).astype(xdt)
        w, wt = make_weight(rng, op, wshape, pattern)
        nout = wt.shape[0]
        xn, wn, yn = name + "_x", name + "_w", name + "_y"
        ins.append(helper.make_tensor_value_info(xn, TP[np.dtype(xdt)], list(xshape)))
        feeds.append(x)
        inits.append(numpy_helper.from_array(w, wn))
        if op == "MatMulInteger":  # a zero point per row of A
            az = rng.randint(0, 256, xshape[-2]).astype(np.uint8)
            inits += [numpy_helper.from_array(az, name + "_az"),
                      numpy_helper.from_array(np.zeros(nout, np.int8), name + "_bz")]
            nodes.append(helper.make_node(op, [xn, wn, name + "_az", name + "_bz"], [yn], name=name))
            acc = (x.astype(np.int64) - az.astype(np.int64)[:, None]) @ w.astype(np.int64)
            outs.append(helper.make_tensor_value_info(yn, TensorProto.INT32, None))
            refs.append((acc.astype(np.int32), wt))
            continue
        if op == "ConvInteger":
            inits += [numpy_helper.from_array(np.array(xz, xdt), name + "_xz"),
                      numpy_helper.from_array(np.zeros(nout, np.int8), name + "_wz")]
            nodes.append(helper.make_node(op, [xn, wn, name + "_xz", name + "_wz"], [yn], name=name,
                                          **attrs))
            outs.append(helper.make_tensor_value_info(yn, TensorProto.INT32, None))
            refs.append((conv_acc(x, xz, w, attrs).astype(np.int32), wt))
            continue
        # QLinearConv / QLinearMatMul: scales chosen so that the outputs spread.
        xs = np.float32(0.02)
        ws = (rng.uniform(0.002, 0.01, nout) if perch else np.full(1, 0.005)).astype(np.float32)
        if is_conv(op):
            acc = conv_acc(x, xz, w, attrs)
            ch = ws.reshape(1, -1, 1, 1) if perch else ws[0]
        else:
            acc = (x.astype(np.int64) - xz) @ w.astype(np.int64)
            ch = ws if perch else ws[0]
        bias = None
        if has_bias:
            bias = rng.randint(-2000, 2000, nout).astype(np.int32)
            acc = acc + bias.reshape(1, -1, 1, 1)
        real = acc * (np.float64(xs) * ch.astype(np.float64))
        ys = np.float32(max(np.percentile(np.abs(real), 99), 1e-3) / 100.0)
        yinfo = np.iinfo(ydt)
        yz = 3 if ydt == np.uint8 else 0
        ref = np.clip(np.rint(real / np.float64(ys)) + yz, yinfo.min, yinfo.max).astype(ydt)
        names = [xn, name + "_xs", name + "_xz", wn, name + "_ws", name + "_wz", name + "_ys",
                 name + "_yz"]
        inits += [numpy_helper.from_array(np.array(xs, np.float32), name + "_xs"),
                  numpy_helper.from_array(np.array(xz, xdt), name + "_xz"),
                  numpy_helper.from_array(ws if perch else np.array(ws[0], np.float32),
                                          name + "_ws"),
                  numpy_helper.from_array(np.zeros(nout, np.int8) if perch else np.array(0, np.int8),
                                          name + "_wz"),
                  numpy_helper.from_array(np.array(ys, np.float32), name + "_ys"),
                  numpy_helper.from_array(np.array(yz, ydt), name + "_yz")]
        if bias is not None:
            inits.append(numpy_helper.from_array(bias, name + "_b"))
            names.append(name + "_b")
        nodes.append(helper.make_node(op, names, [yn], name=name, **attrs))
        outs.append(helper.make_tensor_value_info(yn, TP[np.dtype(ydt)], None))
        refs.append((ref, wt))
    g = helper.make_graph(nodes, "sparse_int8", ins, outs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    return m, feeds, refs


def main():
    moss = sys.argv[sys.argv.index("--moss") + 1]
    rng = np.random.RandomState(11)
    patterns = [("random", 0.5), ("random", 0.9), ("block", 0.9), ("block1x4", 0.8), ("nm", 0.0),
                ("columns", 0.5)]
    modes = ("off", "csr", "block", "block1x4", "2:4", "columns", "auto")
    forced = {"csr": "csr", "block": "block4x1", "block1x4": "block1x4", "2:4": "2:4", "columns": "columns"}
    seen = set()
    fails = 0
    with tempfile.TemporaryDirectory() as d:
        for pi, pattern in enumerate(patterns):
            m, feeds, refs = build(rng, pattern)
            onnx.save(m, os.path.join(d, "m.onnx"))
            for i, x in enumerate(feeds):
                np.save(os.path.join(d, "x%d.npy" % i), x)
            tag = "%s%d" % (pattern[0], int(round(pattern[1] * 100)))
            results = {}
            for mode in modes:
                code, ys, report = compile_run(moss, d, "%d_%s" % (pi, mode.replace(":", "")),
                                               mode, feeds)
                got = re.findall(r"/\* node '([^']+)' \([^)]*\): weight '[^']*' as (\S+),", code)
                got = dict(got)
                seen.update(got.values())
                if mode == "off":
                    want = {}
                elif mode == "auto":
                    want = None
                else:
                    want = {}
                    for (name, op, *_), (_, wt) in zip(LAYERS, refs):
                        f = forced[mode]
                        want[name] = f if f == "csr" or (is_conv(op) and f in possible(wt)) or \
                            (not is_conv(op) and f == "columns") else "csr"
                if mode == "auto":  # the cheapest estimate; dense first on ties
                    want = {}
                    for (name, op, *_), (_, wt) in zip(LAYERS, refs):
                        costs = q8_costs(op, wt)
                        order = ["dense", "csr", "block4x1", "block1x4", "2:4", "columns"]
                        best = min((costs[f], order.index(f), f) for f in costs)[2]
                        if best != "dense":
                            want[name] = best
                if got != want:
                    print("FAIL %s MOSS_SPARSE=%s: formats %s, expected %s" % (tag, mode, got, want))
                    fails += 1
                nodes = {n["name"]: n for n in report["nodes"]}
                for (name, op, *_), (_, wt) in zip(LAYERS, refs):
                    costs = q8_costs(op, wt)
                    have = nodes[name].get("sparse_costs") or {}
                    for f in ("dense", "csr", "block4x1", "block1x4", "2:4", "columns"):
                        w_ = costs.get(f, "-")
                        h_ = have.get(f)
                        if (w_ == "-") != (h_ == "-") or (w_ != "-" and abs(h_ - w_) > 1e-9 * w_):
                            print("FAIL %s MOSS_SPARSE=%s %s: report's %s estimate %s, expected %s"
                                  % (tag, mode, name, f, h_, w_))
                            fails += 1
                    rf = nodes[name].get("sparse_format")
                    if rf != got.get(name, "dense"):
                        print("FAIL %s MOSS_SPARSE=%s %s: report says %s, the C %s" %
                              (tag, mode, name, rf, got.get(name, "dense")))
                        fails += 1
                for k, (name, *_) in enumerate(LAYERS):
                    ref = refs[k][0]
                    y = ys[k]
                    diff = np.abs(y.astype(np.int64) - ref.astype(np.int64)) if \
                        y.shape == ref.shape else None
                    lsb = 0 if ref.dtype == np.int32 else 1
                    if y.dtype != ref.dtype or diff is None or diff.max() > lsb:
                        print("FAIL %s MOSS_SPARSE=%s %s: differs from numpy (%s)" %
                              (tag, mode, name, "shape or type" if diff is None or
                               y.dtype != ref.dtype else "max %d" % diff.max()))
                        fails += 1
                results[mode] = ys
                # The LLVM backend builds the same kernel descriptions
                # (compiler/kernel/lower_sparse.c): the same formats, and
                # outputs equal to the dense twin's bit for bit.
                # Under auto, the LLVM backend runs a dense QLinearConv on
                # byte dot products, its dense estimate scaled by 0.02 on a
                # machine with AVX-512 VNNI (MOSS_SPARSE_Q8CONV_DOT4,
                # docs/sparse.md), else by 0.11 (widened bytes,
                # MOSS_SPARSE_Q8CONV_WIDE), and its CSR and 4x1 run there
                # by words: the cheapest format can differ.
                want_obj = dict(got)
                if mode == "auto":
                    want_obj = {}
                    for (name, op, _, _, _, wshape, *_), (_, wt) in zip(LAYERS, refs):
                        costs = q8_costs(op, wt, HOST_LANES)
                        if op == "QLinearConv":
                            costs["dense"] *= 0.02 if VNNI else 0.11
                            # CSR and 4x1 on the tile too, by their words
                            costs.update(q8_tile_costs(wt, wshape[1], costs["dense"], VNNI))
                        order = ["dense", "csr", "block4x1", "block1x4", "2:4", "columns"]
                        best = min((costs[f], order.index(f), f) for f in costs)[2]
                        if best != "dense":
                            want_obj[name] = best
                _, ys, report = compile_run(moss, d, "%d_%s" % (pi, mode.replace(":", "")),
                                            mode, feeds, "obj")
                for n in report["nodes"]:
                    if n["name"] in dict((l[0], 1) for l in LAYERS) and \
                            n.get("sparse_format") != want_obj.get(n["name"], "dense"):
                        print("FAIL %s MOSS_SPARSE=%s --emit obj %s: report says %s, expected %s" %
                              (tag, mode, n["name"], n.get("sparse_format"),
                               want_obj.get(n["name"], "dense")))
                        fails += 1
                results[mode + " obj"] = ys
            for mode in [m for m in modes[1:]] + [m + " obj" for m in modes]:
                for k, (name, *_) in enumerate(LAYERS):
                    if not np.array_equal(results[mode][k], results["off"][k]):
                        print("FAIL %s MOSS_SPARSE=%s %s: differs from the dense twin" %
                              (tag, mode, name))
                        fails += 1
            print("%-9s auto: %s" % (tag, " ".join(
                "%s=%s" % (name, dict(got).get(name, "dense")) for name, *_ in LAYERS)))
    for fmt in ("csr", "block4x1", "block1x4", "2:4", "columns"):
        if fmt not in seen:
            print("FAIL: no layer took format %s" % fmt)
            fails += 1
    if fails:
        print("%d failures" % fails)
        return 1
    print("int8 sparse kernels equal their dense twins bit for bit and numpy on %d models x %d "
          "modes" % (len(patterns), len(modes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
