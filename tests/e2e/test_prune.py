#!/usr/bin/python3
"""Compile-time pruning on the digits models, checked against numpy.

prune_tool (tests/e2e/prune_tool.c) imports each model, runs moss's passes and
moss_prune, and prints every pruned weight's zero mask and values. This test
computes the same rules independently in numpy from the ONNX initializers
(docs/pruning.md: |w| ranking with ties by position, floor(R * n), H x W blocks
of the [out, in] view scored by mean square, nm:N:M keeping the N largest
|w| of every M consecutive elements of a row) and requires:
  - the same zero masks for every weight (numpy folds the CNN's BatchNorm
    into its first Conv the way moss does before pruning);
  - the surviving weights untouched, the counts floor(R * n);
  - magnitude:0 changes nothing and keeps the dense accuracy;
  - a pruned model compiles and runs, and its accuracy is printed next to the
    dense one (pruning without retraining loses accuracy; the table in
    docs/pruning.md comes from scripts/measure_prune.py).
  test_prune.py --moss build/moss --prune-tool build/tests/prune_tool
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
from fractions import Fraction

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
import measure_prune as mp  # noqa: E402

FAILED = []


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("FAIL " + what)


def onnx_weights(model):
    """[(node name, op, W as float32, [out, in] view, view is W's transpose)]
    for Conv/Gemm/MatMul: the out axis is W's first for Conv and Gemm with
    transB=1, its last for Gemm with transB=0 and MatMul. A Conv followed
    by BatchNormalization gets its weight folded as moss's bn-fold pass does
    (W * scale / sqrt(var + eps) per output channel, in double, rounded to
    float32), since moss prunes after that pass."""
    m = onnx.load(os.path.join(mp.DATA, model + ".onnx"))
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    out = []
    for n in m.graph.node:
        if n.op_type not in ("Conv", "Gemm", "MatMul") or n.input[1] not in inits:
            continue
        w = inits[n.input[1]].astype(np.float32)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        bn = [c for c in m.graph.node
              if c.op_type == "BatchNormalization" and c.input[0] == n.output[0]]
        if n.op_type == "Conv" and bn:
            eps = [a.f for a in bn[0].attribute if a.name == "epsilon"]
            eps = float(np.float32(eps[0] if eps else 1e-5))
            scale, var = (inits[bn[0].input[i]].astype(np.float64) for i in (1, 4))
            sc = scale / np.sqrt(var + eps)
            w = (w.astype(np.float64) * sc.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)
        transposed = not (n.op_type == "Conv" or (n.op_type == "Gemm" and attrs.get("transB", 0)))
        view = w.reshape(-1, w.shape[-1]).T if transposed else w.reshape(w.shape[0], -1)
        out.append((n.name, n.op_type, w, view, transposed))
    return out


def share(spec, n):
    r = Fraction(spec.rsplit(":", 1)[1])
    return int(r * n)  # floor for r >= 0


def mask_magnitude(flats, k):
    """Zero mask over the concatenation of |flats|: the k smallest |w|, ties
    to the earlier position (a stable sort)."""
    a = np.abs(np.concatenate(flats).astype(np.float64))
    order = np.argsort(a, kind="stable")
    m = np.zeros(a.size, bool)
    m[order[:k]] = True
    m |= a == 0
    return m


def mask_block(view, h, w, spec):
    """Zero mask in the [out, in] view: blocks by mean square, ties to the
    lower row-major block index."""
    rows, cols = view.shape
    br, bc = -(-rows // h), -(-cols // w)
    v = view.astype(np.float64)
    scores = np.array([np.mean(v[i * h:(i + 1) * h, j * w:(j + 1) * w] ** 2)
                       for i in range(br) for j in range(bc)])
    order = np.argsort(scores, kind="stable")
    m = view == 0
    for b in order[:share(spec, br * bc)]:
        i, j = divmod(int(b), bc)
        m[i * h:(i + 1) * h, j * w:(j + 1) * w] = True
    return m


def mask_nm(view, keep, m):
    """Zero mask in the [out, in] view for nm:N:M: in each group of m
    consecutive columns of a row (the last may be shorter) all but the
    |keep| largest |w|, ties to the earlier column (a stable sort)."""
    rows, cols = view.shape
    a = np.abs(view.astype(np.float64))
    mask = view == 0
    for i in range(rows):
        for g in range(0, cols, m):
            grp = a[i, g:g + m]
            if grp.size <= keep:
                continue
            order = np.argsort(grp, kind="stable")
            for j in order[:grp.size - keep]:
                mask[i, g + j] = True
    return mask


def view_to_flat(view_mask, transposed):
    """A mask in the [out, in] view back to the weight's own flat order."""
    if transposed:
        return view_mask.T.reshape(-1)
    return view_mask.reshape(-1)


def expected_masks(model, spec):
    """{node: flat mask} for the layers numpy can see as moss does."""
    ws = onnx_weights(model)
    kind = spec.split(":")[0]
    exp = {}
    if kind == "magnitude":
        flats = [w.reshape(-1) for _, _, w, _, _ in ws]
        m = mask_magnitude(flats, share(spec, sum(f.size for f in flats)))
        pos = 0
        for (name, _, w, _, _), f in zip(ws, flats):
            exp[name] = m[pos:pos + f.size]
            pos += f.size
    for name, op, w, view, transposed in ws:
        if kind == "magnitude-layer":
            exp[name] = mask_magnitude([w.reshape(-1)], share(spec, w.size))
        elif kind == "block":
            h, bw = (int(s) for s in spec.split(":")[1].split("x"))
            exp[name] = view_to_flat(mask_block(view, h, bw, spec), transposed)
        elif kind == "nm":
            keep, m = (int(s) for s in spec.split(":")[1:])
            exp[name] = view_to_flat(mask_nm(view, keep, m), transposed)
    return exp


def columns_act(moss, work):
    """--prune layer=/net/net.0/Gemm:columns-act:0.25 --calibration
    x_calib_mlp.npy (no quantization) against numpy: column c of the first
    Gemm's [out, in] scores mean_o(w[o, c]^2) x mean_n(x[n, c]^2) over the
    calibration rows; the floor(0.25 x 64) = 16 lowest (ties to the lower
    column) go. The MLP with numpy's columns zeroed in its ONNX weight,
    compiled without --prune, must give the same outputs as moss's pruned
    compile on random inputs (every pixel nonzero, so another set of
    columns would differ)."""
    name = "/net/net.0/Gemm"
    calib = os.path.join(mp.DATA, "x_calib_mlp.npy")
    x = np.load(calib).astype(np.float64).reshape(-1, 64)
    _, _, w, view, transposed = [l for l in onnx_weights("mlp") if l[0] == name][0]
    score = (view.astype(np.float64) ** 2).mean(axis=0) * (x ** 2).mean(axis=0)
    order = np.lexsort((np.arange(score.size), score))
    k = share("columns-act:0.25", score.size)
    # a clear margin at the cut: rounding cannot reorder it
    check(score[order[k]] > score[order[k - 1]] * (1 + 1e-9) + 1e-300,
          "columns-act: numpy's scores tie at the cut")
    mask = np.zeros(view.shape, bool)
    mask[:, order[:k]] = True
    layers = [dict(node=name, mask=view_to_flat(mask, transposed))]
    masked = os.path.join(work, "mlp_colsact.onnx")
    mp.apply_masks("mlp", layers, masked)
    # batches of 16: the 256 calibration rows all count, as in numpy's means
    xr = np.random.default_rng(5).uniform(0.5, 16, (16, 64)).astype(np.float32)
    np.save(os.path.join(work, "xr.npy"), xr)
    outs = []
    for model, extra in ((masked, []), (os.path.join(mp.DATA, "mlp.onnx"),
                                        ["--prune", "layer=%s:columns-act:0.25" % name,
                                         "--calibration", calib])):
        art = os.path.join(work, "colsact.moss")
        subprocess.run([moss, "compile", model, "--input-shape", "input=16x64", "-o", art, "-q"]
                       + extra, check=True)
        d = os.path.join(work, "colsact_out")
        subprocess.run([moss, "run", art, os.path.join(work, "xr.npy"), "-o", d], check=True)
        outs.append(np.load(os.path.join(d, "output_0.npy")))
    diff = float(np.abs(outs[0] - outs[1]).max())
    check(diff <= 1e-5 * (1 + float(np.abs(outs[0]).max())),
          "columns-act: outputs differ from numpy's columns zeroed by %g" % diff)
    zero_px = int((score[order[:k]] == 0).sum())
    print("mlp %s columns-act:0.25: the 16 columns numpy ranks lowest (%d of them inputs always 0 "
          "in the calibration data), outputs equal (max diff %g)" % (name, zero_px, diff))
    # without calibration data: a clear error, no artifact
    r = subprocess.run([moss, "compile", os.path.join(mp.DATA, "mlp.onnx"), "--prune",
                        "columns-act:0.25", "-o", os.path.join(work, "no.moss")],
                       capture_output=True, text=True)
    check(r.returncode != 0 and "columns-act" in r.stderr and "--calibration" in r.stderr
          and not os.path.exists(os.path.join(work, "no.moss")),
          "columns-act without --calibration: %d %s" % (r.returncode, r.stderr.strip()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    ap.add_argument("--prune-tool", required=True)
    a = ap.parse_args()
    specs = ["magnitude:0.8", "magnitude-layer:0.8", "magnitude:0.57", "block:4x1:0.8",
             "block:4x4:0.5", "block:3x5:0.3", "magnitude:0", "block:1x4:0.75", "nm:2:4",
             "nm:1:3"]
    for model in ("mlp", "cnn"):
        orig = {name: w for name, _, w, _, _ in onnx_weights(model)}
        for spec in specs:
            layers = mp.run_tool(a.prune_tool, model, spec)
            exp = expected_masks(model, spec)
            check(len(layers) == len(orig), "%s %s: %d layers pruned, expected %d"
                  % (model, spec, len(layers), len(orig)))
            total = sum(l["elements"] for l in layers)
            if spec.startswith("magnitude:"):
                got = sum(l["zeros_after"] for l in layers)
                want = max(share(spec, total), sum(l["zeros_before"] for l in layers))
                check(got == want, "%s %s: %d zeros, expected %d" % (model, spec, got, want))
            for l in layers:
                check(l["mask"].sum() == l["zeros_after"],
                      "%s %s %s: mask count" % (model, spec, l["node"]))
                if spec.startswith("magnitude-layer:"):
                    want = max(share(spec, l["elements"]), l["zeros_before"])
                    check(l["zeros_after"] == want, "%s %s %s: %d zeros, expected %d"
                          % (model, spec, l["node"], l["zeros_after"], want))
                if l["node"] in exp:
                    same = np.array_equal(l["mask"], exp[l["node"]])
                    check(same, "%s %s %s: zero mask differs from numpy's in %d places"
                          % (model, spec, l["node"], int((l["mask"] != exp[l["node"]]).sum())))
                    w0 = orig[l["node"]].reshape(-1)
                    kept = np.where(l["mask"], np.float32(0), w0)
                    check(np.array_equal(l["weights"], kept),
                          "%s %s %s: surviving weights changed" % (model, spec, l["node"]))
            print("%s %s: %d of %d weights zero; masks of %d layers match numpy"
                  % (model, spec, sum(l["zeros_after"] for l in layers), total, len(exp)))
    with tempfile.TemporaryDirectory() as work:
        for model, spec in (("mlp", "magnitude:0"), ("mlp", "magnitude-layer:0.5"),
                            ("cnn", "magnitude:0"), ("cnn", "block:4x1:0.5"),
                            ("mlp", "nm:2:4")):
            dense = mp.accuracy(a.moss, os.path.join(mp.DATA, model + ".onnx"), model, work)
            acc, z, n = mp.measure(a.moss, a.prune_tool, model, spec, work)
            print("%s %s: accuracy %.4f (dense %.4f), %d/%d weights zero"
                  % (model, spec, acc, dense, z, n))
            if spec.endswith(":0"):
                check(acc == dense, "%s %s: accuracy changed with nothing pruned" % (model, spec))
        columns_act(a.moss, work)
        # The structured specs give weights the matching sparse formats take
        # (docs/sparse.md): every layer of the MLP under auto.
        for spec, fmt in (("nm:2:4", "2:4"), ("block:1x4:0.9", "block1x4")):
            art = os.path.join(work, "fmt")
            subprocess.run([a.moss, "compile", os.path.join(mp.DATA, "mlp.onnx"),
                            "--input-shape", mp.input_shape("mlp"), "--prune", spec,
                            "--emit", "c", "-o", art, "-q"], check=True,
                           env=dict(os.environ, MOSS_SPARSE="auto"))
            code = "".join(open(os.path.join(art, f)).read()
                           for f in sorted(os.listdir(art)) if f.endswith(".c"))
            got = re.findall(r"/\* sparse (\S+): \d+ of", code)
            n = len(onnx_weights("mlp"))
            check(got == [fmt] * n, "mlp --prune %s: formats %s, expected %d x %s"
                  % (spec, got, n, fmt))
            print("mlp --prune %s: %s" % (spec, " ".join(got)))
    print("%d failure(s)" % len(FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
