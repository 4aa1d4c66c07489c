#!/usr/bin/python3
"""The cost model on the digits models (tests/e2e/digits, made by
scripts/make_digits_models.py), against what numpy and the other models say
(issue 12, docs/report.md):

  - the fp32 dense baseline of a quantized (QDQ) model is the cost of the
    float model it was quantized from: `baseline_fp32_dense` of mlp_qdq.onnx,
    cnn_qdq.onnx and cnn_qdq_pc.onnx equals `total` of mlp.onnx / cnn.onnx
    compiled dense (MOSS_SPARSE=off), energy, platform energy, time and weight
    bytes alike, on rpi4, jetson-orin-nano and cortex-m7 (it used to keep the
    Quantize/Dequantize nodes and the requantizing lookups: 1 to 3 % high);
    and on the targets placed by cost at batch 256, where the twin must be
    placed as the float model is, not where the int8 layers went:
    jetson-orin-nano (float layers on its GPU) and tests/e2e/data/int8-gpu.xml
    (a GPU with int8 MACs only: the int8 layers go there, the float ones
    cannot; the baseline used to cost the float layers on the GPU);
  - the 90 %-pruned MLP (mlp_pruned90.onnx) is costed in the format each
    layer is compiled with, CSR: each Gemm's weight bytes are its CSR arrays
    plus its bias, counted here with numpy from the ONNX weights (row_ptr
    (N + 1) x int32, col_idx nnz x uint16, values nnz x float32, bias N x
    float32; 4,736 bytes in all, against 26,280 dense); its multiply-adds are
    its nonzeros; its compute cycles on rpi4 are the CSR rule's work on the
    LLVM backend's register tile (13.8 x 4 / 16 x nnz dense multiply-adds
    on NEON's 4 lanes, docs/sparse.md, "sparse_rule" "tile-dense") plus its ops over 4 f32 MACs per cycle on
    one core; so the op-model energy saving against fp32 dense is large
    (the report said 0.8 % when it costed the dense bytes and MACs);
  - on cortex-m7 the weights are read from flash, the read-only level.
  test_cost_digits.py --moss build/moss
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnx.numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "digits")
CASES = (("rpi4", 1), ("jetson-orin-nano", 1), ("cortex-m7", 1), ("jetson-orin-nano", 256),
         (os.path.join(HERE, "data", "int8-gpu.xml"), 256))
SHAPES = {"mlp": "input=1x64", "cnn": "input=1x1x8x8"}
PAIRS = (("mlp", "mlp_qdq"), ("cnn", "cnn_qdq"), ("cnn", "cnn_qdq_pc"))
REL = 1e-9


def report(moss, work, model, target, dense=False, sparse=None, batch=1):
    """The JSON report of `moss compile MODEL --target TARGET` (MOSS_SPARSE=off
    with |dense|, else MOSS_SPARSE=|sparse| when given), the input's first
    dimension |batch|."""
    stem = os.path.splitext(os.path.basename(model))[0]
    shape = SHAPES["cnn" if stem.startswith("cnn") else "mlp"].replace("=1x", "=%dx" % batch)
    out = os.path.join(work, "%s-%s-%d" % (stem, os.path.basename(target), batch))
    rep = out + ".json"
    env = dict(os.environ)
    if dense:
        env["MOSS_SPARSE"] = "off"
    elif sparse:
        env["MOSS_SPARSE"] = sparse
    subprocess.run([moss, "compile", model, "--input-shape", shape, "--target", target,
                    "-o", out, "--report", rep, "-q"], check=True, env=env)
    with open(rep) as f:
        return json.load(f)


def same(a, b):
    """Equal to within rounding; a figure not modeled (None) equals only
    another one not modeled."""
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= REL * max(abs(a), abs(b))


def value(fig):
    """A figure's value (a bare number in reports older than issue 12)."""
    return fig["value"] if isinstance(fig, dict) else fig


def csr_bytes(wt):
    """Bytes of a Gemm weight seen as Wt [N outputs, K] (B^T, or B itself
    with transB = 1) in CSR, as docs/sparse.md stores it, and its nonzero
    count."""
    nnz = int(np.count_nonzero(wt))
    rows, cols = wt.shape
    idx = 4 if cols > 65536 else 2
    return (rows + 1) * 4 + max(nnz, 1) * idx + max(nnz, 1) * 4, nnz


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    a = ap.parse_args()
    fails = 0
    with tempfile.TemporaryDirectory() as work:
        # 1. The baseline of a quantized model is its float model's cost,
        # placed as the float model is: on the targets placed by cost, at a
        # batch where the GPU wins, the float models run partly there
        # (jetson-orin-nano), or the int8 layers run where the float ones
        # cannot (int8-gpu.xml, whose GPU has no f32 MAC rate).
        for target, batch in CASES:
            for fp32, q in PAIRS:
                f = report(a.moss, work, os.path.join(DATA, fp32 + ".onnx"), target, dense=True,
                           batch=batch)
                r = report(a.moss, work, os.path.join(DATA, q + ".onnx"), target, batch=batch)
                fdev = {n["device"] for n in f["nodes"] if n["mac_op"]}
                qdev = {n["device"] for n in r["nodes"] if n["mac_op"]}
                print("%s batch %d: %s.onnx's MAC layers on %s, %s.onnx's on %s" % (
                    os.path.basename(target), batch, fp32, sorted(fdev), q, sorted(qdev)))
                if target.endswith("int8-gpu.xml") and (fdev != {"cpu"} or "gpu" not in qdev):
                    print("FAIL int8-gpu: the float layers must stay on the cpu and the int8 "
                          "ones reach the gpu")
                    fails += 1
                if target == "jetson-orin-nano" and batch > 1 and "gpu" not in fdev:
                    print("FAIL jetson-orin-nano batch %d: no float layer on the gpu" % batch)
                    fails += 1
                base, want = r["baseline_fp32_dense"], f["total"]
                # At batch 256 the twin's arena, which is estimated (the
                # quantized arena x 4, docs/report.md) and not planned, may
                # fall in another memory level than the float model's
                # planned one, and so may the bytes' energy: there the
                # figures that do not depend on the level are compared,
                # the times and the MAC and static energies, which differ
                # from device to device.
                keys = ("energy_j", "platform_j", "time_s") if batch == 1 else \
                    ("compute_j", "static_j", "platform_j", "time_s")
                for key in keys:
                    b, w = value(base[key]), value(want[key])
                    ok = same(b, w)
                    print("%s %s batch %d: baseline %s %s, %s.onnx dense %s%s" % (
                        os.path.basename(target), q, batch, key, b, fp32, w, "" if ok else "  FAIL"))
                    fails += not ok
                for key in ("weight_bytes", "macs_dense", "ops"):
                    if base[key] != want[key]:
                        print("FAIL %s %s: baseline %s %s, %s.onnx %s" % (
                            target, q, key, base[key], fp32, want[key]))
                        fails += 1

        # 2. The pruned MLP as its CSR kernels store and run it.
        model = os.path.join(DATA, "mlp_pruned90.onnx")
        m = onnx.load(model)
        inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
        gemms = []
        for n in m.graph.node:
            if n.op_type != "Gemm":
                continue
            tb = [x.i for x in n.attribute if x.name == "transB"]
            w = inits[n.input[1]]
            gemms.append((w if tb and tb[0] else w.T, inits[n.input[2]]))
        for target in ("rpi4", "cortex-m7"):
            r = report(a.moss, work, model, target)
            nodes = [n for n in r["nodes"] if n["op_type"] == "Gemm"]
            if len(nodes) != len(gemms):
                print("FAIL %s: %d Gemm nodes, the model has %d" % (target, len(nodes), len(gemms)))
                return 1
            total = 0
            for (w, b), n in zip(gemms, nodes):
                wb, nnz = csr_bytes(w)
                want = wb + b.size * 4
                total += want
                got_cycles = value(n["compute_cycles"])
                want_cycles = (13.8 * 4 / 16 * nnz + n["ops"]) / 4
                if target == "rpi4" and n["sparse_rule"] != "tile-dense":
                    print("FAIL rpi4 %s: sparse_rule %s, not tile-dense" % (n["name"], n["sparse_rule"]))
                    fails += 1
                print("%s %s: %s, weight bytes %d (numpy: CSR %d + bias %d = %d), MACs %d "
                      "(nonzeros %d)%s" % (target, n["name"], n["sparse_format"],
                                           n["weight_bytes"], wb, b.size * 4, want,
                                           n["macs_effective"], nnz,
                                           ", compute cycles %g (rule: %g)" % (
                                               got_cycles, want_cycles)
                                           if target == "rpi4" else ""))
                if n["sparse_format"] != "csr" or n["weight_bytes"] != want or \
                   n["macs_effective"] != nnz:
                    print("FAIL %s %s: not costed as its CSR kernel" % (target, n["name"]))
                    fails += 1
                if target == "rpi4" and not same(got_cycles, want_cycles):
                    print("FAIL rpi4 %s: compute cycles %g, the CSR rule gives %g" % (
                        n["name"], got_cycles, want_cycles))
                    fails += 1
                if target == "cortex-m7" and n["weight_level"] != "flash":
                    print("FAIL cortex-m7 %s: weights read from %s, not flash" % (
                        n["name"], n["weight_level"]))
                    fails += 1
            if r["total"]["weight_bytes"] != total or total != 4736:
                print("FAIL %s: weight bytes %d, numpy %d (4,736 expected)" % (
                    target, r["total"]["weight_bytes"], total))
                fails += 1
            e, be = value(r["total"]["energy_j"]), value(r["baseline_fp32_dense"]["energy_j"])
            saving = 1 - e / be
            print("%s: op-model energy %.4g J against %.4g J fp32 dense: %.1f %% saved" % (
                target, e, be, 100 * saving))
            # A floor against the old bug (0.8 %: dense bytes and MACs costed);
            # the exact figures are checked above. With the LLVM backend's
            # figures (CSR at 3.45 dense MACs per nonzero on rpi4's NEON) rpi4
            # saves 66 %, cortex-m7's scalar C kernels more.
            if saving < 0.6:
                print("FAIL %s: the pruned MLP saves %.1f %%, expected at least 60 %%" % (
                    target, 100 * saving))
                fails += 1
    print("FAIL" if fails else "ok")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
