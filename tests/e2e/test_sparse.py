#!/usr/bin/python3
"""Sparse weight kernels against their dense twins and numpy.

One ONNX model per weight pattern (random zeros at 50/80/90/95%, zeros in
4x1 blocks at 90/95%, in 1x4 blocks at 80/95%, and 2:4 structured: 2 zeros
in every group of 4 reduction terms, alone or with 50% more random zeros),
each holding independent layers: Gemm (bias, relu), Gemm (transB, alpha,
beta), MatMul (3-D input; once with 48 rows, which the LLVM backend runs
on the register tile), Conv 1x1 (bias, relu) and Conv 3x3 (pads 1,
stride 2, bias, relu), Conv 3x3 with dilation 2 and uneven pads, and two
whose reduction length is not a multiple of 4 (Gemm K=30, Conv with 3
input channels: 27 terms), so 1x4 blocks are impossible and the last 2:4
group is short. Every model is compiled with --emit c under
MOSS_SPARSE=off, csr, block, block1x4, 2:4 and auto and run with
`moss run` on the same inputs, and again with --emit obj (the LLVM
backend, which builds the same kernel descriptions; on this machine it
prices them with the register tile's figures, "tile" for Conv,
"tile-linear" for Gemm and MatMul of a vector of rows or more and
"tile-dense" for the others). Checks, with DESIGN.md's float tolerance
|a-b| <= 1e-5 + 1e-4*|b|:
  - each sparse build's outputs equal the dense build's (the twin),
  - every build's outputs equal numpy's,
  - the generated C took the path the mode asks for (the "sparse <fmt>"
    comment of each layer), and under auto the format that docs/sparse.md's
    cost rule, recomputed here from the weights, picks;
  - the --report JSON gives each layer the format its C took and the rule's
    estimate for every format (docs/report.md), under --emit obj too,
    whose outputs equal numpy's and the dense twin's the same way.
Exits 77 (skip) when the sparse pass is not in the pipeline yet."""
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ATOL, RTOL = 1e-5, 1e-4

# The layers: name, input shape, weight shape, kind.
LAYERS = [
    ("gemm", (20, 64), (64, 48), "gemm"),
    ("gemmt", (17, 40), (40, 40), "gemmt"),
    ("matmul", (2, 5, 64), (64, 32), "matmul"),
    ("mmrows", (3, 16, 64), (64, 32), "matmul"),  # 48 rows (and gemm, gemmt): the LLVM backend's tile
    ("conv1", (1, 16, 8, 8), (32, 16, 1, 1), "conv1"),
    ("conv3", (2, 8, 9, 9), (16, 8, 3, 3), "conv3"),
    ("convd", (1, 4, 10, 11), (8, 4, 3, 3), "convd"),
    ("gemmk", (4, 30), (30, 12), "gemmk"),
    ("conv3c", (1, 3, 7, 7), (8, 3, 3, 3), "conv3c"),
    ("convw", (1, 32, 16, 16), (32, 32, 3, 3), "convw"),
]


def wt_shape(kind, wshape):
    """Shape of Wt [outputs, reduction] for a weight of |wshape|."""
    if kind in ("gemm", "matmul", "gemmk"):
        return (wshape[1], wshape[0])
    if kind == "gemmt":
        return (wshape[0], wshape[1])
    return (wshape[0], int(np.prod(wshape[1:])))


def from_wt(kind, wt, wshape):
    if kind in ("gemm", "matmul", "gemmk"):
        return np.ascontiguousarray(wt.T)
    return wt.reshape(wshape)


def make_weight(rng, kind, wshape, pattern):
    """A weight whose zeros follow |pattern|: ("random", s), ("block", s)
    (4x1 blocks), ("block1x4", s) or ("nm", s) (2 zeros in every group of 4
    reduction terms of a row, the short last group keeping at most 2
    nonzeros, then a share s of the rest zeroed at random)."""
    style, sparsity = pattern
    r, c = wt_shape(kind, wshape)
    wt = rng.uniform(0.1, 1.0, (r, c)).astype(np.float32) * rng.choice([-1, 1], (r, c))
    if style == "random":
        n = r * c
        zero = rng.permutation(n)[: int(round(sparsity * n))]
        flat = wt.reshape(-1)
        flat[zero] = 0
    elif style == "block1x4":
        if c % 4:  # no 1x4 blocks: random zeros instead
            flat = wt.reshape(-1)
            flat[rng.permutation(r * c)[: int(round(sparsity * r * c))]] = 0
        else:
            nb = r * (c // 4)
            for b in rng.permutation(nb)[: int(round(sparsity * nb))]:
                wt[b // (c // 4), (b % (c // 4)) * 4:(b % (c // 4)) * 4 + 4] = 0
    elif style == "nm":
        for i in range(r):
            for g in range(0, c, 4):
                width = min(4, c - g)
                keep = rng.permutation(width)[:2]
                for k in range(width):
                    if k not in keep:
                        wt[i, g + k] = 0
        flat = wt.reshape(-1)
        flat[rng.permutation(r * c)[: int(round(sparsity * r * c))]] = 0
    else:
        nb = (r // 4) * c
        zero = rng.permutation(nb)[: int(round(sparsity * nb))]
        for b in zero:
            wt[(b // c) * 4:(b // c) * 4 + 4, b % c] = 0
    return from_wt(kind, wt.astype(np.float32), wshape)


# The float32 lanes of this machine's widest vectors: the LLVM backend's
# register tile, whose figures (rule "tile-dense") scale with them.
with open("/proc/cpuinfo") as _f:
    _flags = _f.read()
LANES = 16 if " avx512f" in _flags else 8 if " avx" in _flags else 4


def cost_rule(kind, w, wshape, rule="scalar"):
    """docs/sparse.md's rule, on Wt: the cheapest of dense, csr, block4x1,
    block1x4 and 2:4, the earlier on ties; also the formats possible. The
    figures are those of |rule|: "scalar" (the C backend's loops), "tile"
    (the LLVM backend's Conv on the register tile; "tile-winograd" where its
    dense twin takes Winograd, 0.65 of the dense cost), "tile-dense" (its
    Gemm and MatMul of fewer rows than a vector: dense on the tile, the
    formats scalar) or "tile-linear" (Gemm and MatMul of more rows: the
    nonzero terms on the tile)."""
    r, c = wt_shape(kind, wshape)
    if kind in ("gemm", "matmul", "gemmk"):
        wt = w.T
    else:
        wt = w.reshape(r, c)
    nnz = int(np.count_nonzero(wt))
    f = LANES / 16.0
    wino = rule == "tile-winograd"
    if wino:
        rule = "tile"
    csr = {"scalar": 2.5 * nnz + r, "tile": 2.3 * nnz, "tile-linear": 3.3 * nnz,
           "tile-dense": f * 13.8 * nnz}[rule]
    costs = [("dense", float(r * c) * (0.65 if wino else 1.0)), ("csr", csr)]
    if r % 4 == 0:
        nblocks = int(np.count_nonzero(np.any(wt.reshape(r // 4, 4, c) != 0, axis=1)))
        costs.append(("block4x1", {"scalar": 5.0 * nblocks + r // 4, "tile": 4.4 * nblocks,
                                   "tile-linear": 6.1 * nblocks, "tile-dense": f * 24.3 * nblocks}[rule]))
    if c % 4 == 0:
        nblocks = int(np.count_nonzero(np.any(wt.reshape(r, c // 4, 4) != 0, axis=2)))
        costs.append(("block1x4", {"scalar": 5.0 * nblocks + r, "tile": csr, "tile-linear": csr,
                                   "tile-dense": f * 22.8 * nblocks}[rule]))
    groups = (c + 3) // 4
    padded = np.zeros((r, groups * 4), np.float32)
    padded[:, :c] = wt
    if np.all(np.count_nonzero(padded.reshape(r, groups, 4), axis=2) <= 2):
        costs.append(("2:4", {"scalar": 3.5 * r * groups, "tile": csr, "tile-linear": csr,
                              "tile-dense": f * 31.1 * r * groups}[rule]))
    best = costs[0]
    for name, cost in costs[1:]:
        if cost < best[1]:
            best = (name, cost)
    return best[0], [name for name, _ in costs], dict(costs)


def conv_ref(x, w, b, stride, pads, dil):
    """Direct convolution in numpy (NCHW, group 1); pads = (top, left, bottom, right)."""
    n, c, h, wd = x.shape
    m, _, kh, kw = w.shape
    xp = np.zeros((n, c, h + pads[0] + pads[2], wd + pads[1] + pads[3]), np.float64)
    xp[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + wd] = x
    oh = (xp.shape[2] - ((kh - 1) * dil + 1)) // stride + 1
    ow = (xp.shape[3] - ((kw - 1) * dil + 1)) // stride + 1
    y = np.zeros((n, m, oh, ow), np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i * dil:i * dil + (oh - 1) * stride + 1:stride,
                       j * dil:j * dil + (ow - 1) * stride + 1:stride]
            y += np.einsum("nchw,mc->nmhw", patch, w[:, :, i, j].astype(np.float64))
    if b is not None:
        y += b.reshape(1, m, 1, 1)
    return y


def tile_rows(name):
    """Whether the LLVM backend runs the sparse Gemm or MatMul |name| on the
    tile: an input of at least a vector of rows."""
    for n, xs, _, kind in LAYERS:
        if n == name:
            return not kind.startswith("conv") and int(np.prod(xs[:-1])) >= LANES
    raise KeyError(name)


def obj_rule(name, kind):
    """The figures the LLVM backend prices a layer with on this machine."""
    if kind == "convw":
        return "tile-winograd"
    if kind.startswith("conv"):
        return "tile"
    return "tile-linear" if tile_rows(name) else "tile-dense"


def build(rng, pattern):
    """The model, its inputs, numpy's outputs and the auto format of each
    layer under the C backend's figures and under the LLVM backend's."""
    nodes, inits, ins, outs, feeds, refs, autos, autos_obj = [], [], [], [], [], [], [], []
    relu = lambda v: np.maximum(v, 0)
    for name, xs, ws, kind in LAYERS:
        x = rng.randn(*xs).astype(np.float32)
        w = make_weight(rng, kind, ws, pattern)
        autos.append(cost_rule(kind, w, ws))
        autos_obj.append(cost_rule(kind, w, ws, obj_rule(name, kind)))
        xn, wn, yn = name + "_x", name + "_w", name + "_y"
        ins.append(helper.make_tensor_value_info(xn, TensorProto.FLOAT, list(xs)))
        inits.append(numpy_helper.from_array(w, wn))
        feeds.append(x)
        xd, wd = x.astype(np.float64), w.astype(np.float64)
        if kind == "gemm":
            b = rng.randn(ws[1]).astype(np.float32)
            inits.append(numpy_helper.from_array(b, name + "_b"))
            nodes.append(helper.make_node("Gemm", [xn, wn, name + "_b"], [name + "_g"], name=name))
            nodes.append(helper.make_node("Relu", [name + "_g"], [yn], name=name + "_relu"))
            ref = relu(xd @ wd + b)
        elif kind == "gemmt":
            c = rng.randn(xs[0], 1).astype(np.float32)
            inits.append(numpy_helper.from_array(c, name + "_c"))
            nodes.append(helper.make_node("Gemm", [xn, wn, name + "_c"], [yn], name=name,
                                          transB=1, alpha=0.5, beta=2.0))
            ref = 0.5 * (xd @ wd.T) + 2.0 * c
        elif kind == "gemmk":
            nodes.append(helper.make_node("Gemm", [xn, wn], [yn], name=name))
            ref = xd @ wd
        elif kind == "matmul":
            nodes.append(helper.make_node("MatMul", [xn, wn], [yn], name=name))
            ref = xd @ wd
        elif kind == "conv1":
            b = rng.randn(ws[0]).astype(np.float32)
            inits.append(numpy_helper.from_array(b, name + "_b"))
            nodes.append(helper.make_node("Conv", [xn, wn, name + "_b"], [name + "_c"], name=name))
            nodes.append(helper.make_node("Relu", [name + "_c"], [yn], name=name + "_relu"))
            ref = relu(conv_ref(xd, wd, b, 1, (0, 0, 0, 0), 1))
        elif kind == "conv3":
            b = rng.randn(ws[0]).astype(np.float32)
            inits.append(numpy_helper.from_array(b, name + "_b"))
            nodes.append(helper.make_node("Conv", [xn, wn, name + "_b"], [name + "_c"], name=name,
                                          pads=[1, 1, 1, 1], strides=[2, 2]))
            nodes.append(helper.make_node("Relu", [name + "_c"], [yn], name=name + "_relu"))
            ref = relu(conv_ref(xd, wd, b, 2, (1, 1, 1, 1), 1))
        elif kind == "convw":  # its dense twin takes Winograd on the LLVM backend
            b = rng.randn(ws[0]).astype(np.float32)
            inits.append(numpy_helper.from_array(b, name + "_b"))
            nodes.append(helper.make_node("Conv", [xn, wn, name + "_b"], [yn], name=name,
                                          pads=[1, 1, 1, 1]))
            ref = conv_ref(xd, wd, b, 1, (1, 1, 1, 1), 1)
        elif kind == "conv3c":
            b = rng.randn(ws[0]).astype(np.float32)
            inits.append(numpy_helper.from_array(b, name + "_b"))
            nodes.append(helper.make_node("Conv", [xn, wn, name + "_b"], [yn], name=name,
                                          pads=[1, 1, 1, 1]))
            ref = conv_ref(xd, wd, b, 1, (1, 1, 1, 1), 1)
        else:  # convd: dilation 2, uneven pads, no bias
            nodes.append(helper.make_node("Conv", [xn, wn], [yn], name=name,
                                          pads=[1, 0, 2, 1], dilations=[2, 2]))
            ref = conv_ref(xd, wd, None, 1, (1, 0, 2, 1), 2)
        outs.append(helper.make_tensor_value_info(yn, TensorProto.FLOAT, None))
        refs.append(ref)
    g = helper.make_graph(nodes, "sparse", ins, outs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    return m, feeds, refs, autos, autos_obj


def compile_run(moss, d, tag, mode, feeds, emit="c"):
    art = os.path.join(d, "art_%s_%s" % (emit, tag))
    out = os.path.join(d, "out_%s_%s" % (emit, tag))
    rep = os.path.join(d, "report_%s_%s.json" % (emit, tag))
    env = dict(os.environ, MOSS_SPARSE=mode)
    subprocess.run([moss, "compile", os.path.join(d, "m.onnx"), "--emit", emit, "-o", art, "-q",
                    "--report", rep], check=True, env=env)
    with open(rep) as f:
        report = json.load(f)
    code = ""
    for f in sorted(os.listdir(art)):
        if f.endswith(".c"):
            with open(os.path.join(art, f)) as fh:
                code += fh.read()
    args = [moss, "run", art]
    for i in range(len(feeds)):
        args.append(os.path.join(d, "x%d.npy" % i))
    subprocess.run(args + ["-o", out], check=True, env=env)
    ys = [np.load(os.path.join(out, "output_%d.npy" % i)) for i in range(len(feeds))]
    return code, ys, report


def formats(code):
    """The sparse format of each layer, from the comments the C backend writes."""
    return re.findall(r"/\* sparse (\S+): \d+ of", code)


def check_report(report, autos, got, tag, mode, rules=None):
    """The --report JSON: each layer's sparse_format is the format its C
    took (dense where the C has no sparse comment), and sparse_costs are
    the rule's estimates recomputed here ("-" for an impossible format),
    with the figures each layer's sparse_rule names (|rules|, by layer;
    None: "scalar" for all)."""
    fails = 0
    nodes = {n["name"]: n for n in report["nodes"]}
    for name, _, _, kind in LAYERS:
        want_rule = rules(name, kind) if rules else "scalar"
        if nodes[name]["sparse_rule"] != want_rule:
            print("FAIL %s MOSS_SPARSE=%s %s: sparse_rule %s, expected %s" %
                  (tag, mode, name, nodes[name]["sparse_rule"], want_rule))
            fails += 1
    formats = [nodes[name]["sparse_format"] for name, _, _, _ in LAYERS]
    if sorted(f for f in formats if f != "dense") != sorted(got):
        print("FAIL %s MOSS_SPARSE=%s: report formats %s, C %s" % (tag, mode, formats, got))
        fails += 1
    for (name, _, _, _), (_, _, costs) in zip(LAYERS, autos):
        # columns is an int8 Gemm/MatMul format: "-" for every float layer
        want = {f: costs.get(f, "-") for f in ("dense", "csr", "block4x1", "block1x4", "2:4", "columns")}
        have = nodes[name]["sparse_costs"]
        if have is None or set(have) != set(want) or any(
                (want[f] == "-") != (have[f] == "-") or
                (want[f] != "-" and abs(have[f] - want[f]) > 1e-9 * want[f]) for f in want):
            print("FAIL %s MOSS_SPARSE=%s %s: report costs %s, expected %s" %
                  (tag, mode, name, have, want))
            fails += 1
    return fails


def close(a, b):
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= ATOL + RTOL * np.abs(b)))


def main():
    moss = sys.argv[sys.argv.index("--moss") + 1]
    rng = np.random.RandomState(7)
    patterns = [("random", 0.5), ("random", 0.8), ("random", 0.9), ("random", 0.95),
                ("block", 0.9), ("block", 0.95), ("block1x4", 0.8), ("block1x4", 0.95),
                ("nm", 0.0), ("nm", 0.5)]
    modes = ("off", "csr", "block", "block1x4", "2:4", "auto")
    seen = set()
    fails = 0
    with tempfile.TemporaryDirectory() as d:
        for pi, pattern in enumerate(patterns):
            m, feeds, refs, autos, autos_obj = build(rng, pattern)
            onnx.save(m, os.path.join(d, "m.onnx"))
            for i, x in enumerate(feeds):
                np.save(os.path.join(d, "x%d.npy" % i), x)
            tag = "%s%d" % ({"random": "r", "block": "b", "block1x4": "x", "nm": "n"}[pattern[0]],
                            int(round(pattern[1] * 100)))
            results = {}
            for mode in modes:
                code, ys, report = compile_run(moss, d, "%d_%s" % (pi, mode.replace(":", "")),
                                               mode, feeds)
                got = formats(code)
                fails += check_report(report, autos, got, tag, mode)
                if mode == "csr" and pi == 0 and not got:
                    print("SKIP: MOSS_SPARSE=csr left every layer dense: the sparse pass is "
                          "not in the pipeline")
                    return 77
                forced = {"block": "block4x1", "block1x4": "block1x4", "2:4": "2:4"}
                if mode == "off":
                    want = []
                elif mode == "auto":
                    want = [a for a, _, _ in autos if a != "dense"]
                elif mode == "csr":
                    want = ["csr"] * len(LAYERS)
                else:
                    want = [forced[mode] if forced[mode] in ok else "csr" for _, ok, _ in autos]
                seen.update(got)
                if sorted(got) != sorted(want):
                    print("FAIL %s MOSS_SPARSE=%s: formats %s, expected %s" % (tag, mode, got, want))
                    fails += 1
                for k, (name, _, _, _) in enumerate(LAYERS):
                    if not close(ys[k], refs[k].astype(np.float32)):
                        err = np.max(np.abs(ys[k] - refs[k]))
                        print("FAIL %s MOSS_SPARSE=%s %s: differs from numpy (max %g)" %
                              (tag, mode, name, err))
                        fails += 1
                results[mode] = ys
                # The LLVM backend builds the same kernel descriptions
                # (compiler/kernel/lower_sparse.c): the same formats, the
                # same checks against numpy and the dense twin.
                _, ys, report = compile_run(moss, d, "%d_%s" % (pi, mode.replace(":", "")),
                                            mode, feeds, "obj")
                got_obj = [a for a, _, _ in autos_obj if a != "dense"] if mode == "auto" else got
                if mode == "csr":  # every Conv as the implicit product of its nonzeros, and
                    # every Gemm and MatMul of enough rows as the product of its nonzeros
                    dump = subprocess.run([moss, "compile", os.path.join(d, "m.onnx"), "--emit", "obj",
                                           "-o", os.path.join(d, "dump_%d" % pi), "-q", "--dump-kernels"],
                                          env=dict(os.environ, MOSS_SPARSE="csr"), capture_output=True,
                                          text=True, check=True).stdout
                    nconv = sum(1 for l in LAYERS if l[3].startswith("conv") or tile_rows(l[0]))
                    if dump.count("sparse weight on the tile") != nconv:
                        print("FAIL %s --emit obj: %d Convs on the tile, expected %d" %
                              (tag, dump.count("sparse weight on the tile"), nconv))
                        fails += 1
                fails += check_report(report, autos_obj, got_obj, tag, mode + " --emit obj", obj_rule)
                for k, (name, _, _, _) in enumerate(LAYERS):
                    if not close(ys[k], refs[k].astype(np.float32)):
                        print("FAIL %s MOSS_SPARSE=%s --emit obj %s: differs from numpy (max %g)"
                              % (tag, mode, name, np.max(np.abs(ys[k] - refs[k]))))
                        fails += 1
                results[mode + " obj"] = ys
            for mode in [m for m in modes[1:]] + [m + " obj" for m in modes]:
                for k, (name, _, _, _) in enumerate(LAYERS):
                    if not close(results[mode][k], results["off"][k]):
                        print("FAIL %s MOSS_SPARSE=%s %s: differs from the dense twin" %
                              (tag, mode, name))
                        fails += 1
            print("%-5s auto: %s" % (tag, " ".join("%s=%s" % (l[0], a[0])
                                                   for l, a in zip(LAYERS, autos))))
    for fmt in ("csr", "block4x1", "block1x4", "2:4"):
        if fmt not in seen:
            print("FAIL: no layer took format %s" % fmt)
            fails += 1
    if fails:
        print("%d failures" % fails)
        return 1
    print("sparse kernels equal their dense twins and numpy on %d models x %d modes; the "
          "report names each layer's format and the rule's estimates" % (len(patterns), len(modes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
