#!/usr/bin/python3
"""The npu-systolic plugin's three machines on int8 MobileNetV2 (224x224):
the compile-time estimate against the cycle-level simulator's count.

Model: float MobileNetV2 from bench/make_mobilenetv2.py (made on demand in
the work folder), quantized by moss's own PTQ (`moss compile --quantize
int8`, calibrated on --calib seeded random images); and, when the
`python3` first on PATH imports onnxruntime, the same model quantized by
ONNX Runtime's quantize_static (QDQ, per-channel int8 weights, uint8
activations, 8 random inputs: as bench/bench_models.py makes it).

For each model and each target file (npu-systolic-32x32,
npu-systolic-32x32-lowsram, npu-systolic-8x8, next to the plugin's
library):
  1. `moss compile --target FILE.xml --report R.json` (with --quantize for
     moss's PTQ): the compile time, the nodes on the NPU, the estimate's
     NPU busy time and energy (the report's device figures) and the whole
     model's op-model and platform-model energy;
  2. `moss compare MODEL --targets A,B,C --report OUT.html`, the ranking by
     energy with time and memory (only for a model that is quantized in
     its ONNX file: compare has no --quantize, so the PTQ model's trade-off
     is the table of step 1);
  3. `moss run --profile`: the outputs, compared bit for bit with the
     same model compiled for c99 (the C backend's int8 kernels); the
     simulator's counters, totalled over the NPU
     steps: cycles, latency at the device clock, energy and DRAM bytes,
     each beside the compile-time estimate with their ratio (counted /
     estimated);
  4. `moss bench --iterations N`: the median wall time of one inference
     here (the simulator's speed, not the NPU's).
Nothing here is a test: it prints tables.

  /usr/bin/python3 bench/bench_npu.py --moss build/moss \\
      [--plugin-dir build/plugins/npu-systolic] [--work DIR] [--size 224] \\
      [--calib 8] [--iterations 5] [--no-ort]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VARIANTS = ["npu-systolic-32x32", "npu-systolic-32x32-lowsram", "npu-systolic-8x8"]

ORT_QUANTIZE = r"""
import sys
import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
src, out, size = sys.argv[1], sys.argv[2], int(sys.argv[3])

class Reader(CalibrationDataReader):
    def __init__(self):
        name = onnx.load(src, load_external_data=False).graph.input[0].name
        rng = np.random.default_rng(2)
        self.items = iter([{name: rng.standard_normal((1, 3, size, size)).astype(np.float32)}
                           for _ in range(8)])

    def get_next(self):
        return next(self.items, None)

quantize_static(src, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
"""

TOTAL = re.compile(r"^  step (\d+) total: (\d+) cycles \(([0-9.]+) us\), (\d+) MACs "
                   r"\(([0-9.]+)% of the array's peak\), (\d+) DRAM bytes", re.M)
VS = re.compile(r"^  step (\d+) vs estimate: time ([0-9.]+) us counted / ([0-9.]+) us estimated = [0-9.]+x"
                r"(?:; energy ([0-9.]+) uJ counted / ([0-9.]+) uJ estimated)?", re.M)
HEAD = re.compile(r"^  step (\d+) on (\S+), (\d+) layers at ([0-9.]+) MHz:$", re.M)


def run(cmd, env, what):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit("%s failed (exit %d): %s\n%s%s" % (what, p.returncode, " ".join(cmd), p.stdout[-2000:],
                                                    p.stderr[-2000:]))
    return p.stdout + p.stderr


def fig(f):
    """A report figure's value, or None when not modeled."""
    return f.get("value") if isinstance(f, dict) else f


def si(v, unit):
    if v is None:
        return "?"
    for scale, pre in ((1e-9, "n"), (1e-6, "u"), (1e-3, "m"), (1, "")):
        if abs(v) < scale * 1000:
            return "%.3g %s%s" % (v / scale, pre, unit)
    return "%.3g %s" % (v, unit)


def ratio(a, b):
    return "%.2fx" % (a / b) if a is not None and b else "-"


def make_models(a, work, env):
    """[(tag, onnx path, extra compile options)]"""
    flt = os.path.join(work, "mobilenetv2_%d.onnx" % a.size)
    if not os.path.exists(flt):
        full = os.path.join(work, "mobilenetv2_224.onnx")
        if not os.path.exists(full):
            run(["/usr/bin/python3", os.path.join(HERE, "make_mobilenetv2.py"), full], env, "make_mobilenetv2.py")
        m = onnx.load(full)
        dims = m.graph.input[0].type.tensor_type.shape.dim
        dims[2].dim_value = dims[3].dim_value = a.size
        onnx.save(m, flt)
    rng = np.random.default_rng(3)
    calib = os.path.join(work, "calib_%d_%d.npy" % (a.size, a.calib))
    np.save(calib, rng.standard_normal((a.calib, 3, a.size, a.size)).astype(np.float32))
    models = [("moss-ptq", flt, ["--quantize", "int8", "--calibration", calib])]
    py = shutil.which("python3")
    if not a.no_ort and py:
        ok = subprocess.run([py, "-c", "import onnxruntime"], capture_output=True).returncode == 0
        if ok:
            q = os.path.join(work, "mobilenetv2_%d_ort_int8.onnx" % a.size)
            if not os.path.exists(q):
                run([py, "-c", ORT_QUANTIZE, flt, q, str(a.size)], env, "onnxruntime quantize_static")
            models.append(("ort-qdq", q, []))
        else:
            print("note: %s has no onnxruntime: the ONNX Runtime-quantized model is left out" % py)
    return models


def npu_estimate(report):
    """(NPU busy s, NPU energy J, whole-model op-model J, platform J, NPU MACs, all MACs)."""
    npu = [d for d in report["devices"] if d["id"] == "npu"]
    nodes = report["nodes"]
    macs_npu = sum(n.get("macs_dense", 0) for n in nodes if n.get("device") == "npu")
    macs = sum(n.get("macs_dense", 0) for n in nodes)
    t = report["total"]
    return (fig(npu[0]["busy_s"]) if npu else None, fig(npu[0]["energy_j"]) if npu else None,
            fig(t["energy_j"]), fig(t["platform_j"]), macs_npu, macs)


def counted(text):
    """Totals of the device counters over the NPU steps."""
    heads = {int(s): (dev, float(mhz)) for s, dev, _, mhz in HEAD.findall(text)}
    out = dict(cycles=0, us=0.0, macs=0, dram=0, est_us=0.0, uj=0.0, est_uj=0.0, energy=True, steps=0, peak=0.0)
    for s, cyc, us, macs, pct, dram in TOTAL.findall(text):
        if heads.get(int(s), ("", 0))[0] != "npu":
            continue
        out["steps"] += 1
        if float(pct) > 0:  # the array's capacity over the step: cycles x its peak MACs per cycle
            out["peak"] += int(macs) / (float(pct) / 100)
        out["cycles"] += int(cyc)
        out["us"] += float(us)
        out["macs"] += int(macs)
        out["dram"] += int(dram)
    for s, us, est_us, uj, est_uj in VS.findall(text):
        if heads.get(int(s), ("", 0))[0] != "npu":
            continue
        out["est_us"] += float(est_us)
        if uj:
            out["uj"] += float(uj)
            out["est_uj"] += float(est_uj)
        else:
            out["energy"] = False
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moss", default=os.path.join(ROOT, "build", "moss"))
    ap.add_argument("--plugin-dir", default=None, help="default: plugins/npu-systolic beside the moss binary")
    ap.add_argument("--work", default=None, help="folder for the models (kept between runs)")
    ap.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    ap.add_argument("--calib", type=int, default=8, help="calibration images for moss's PTQ")
    ap.add_argument("--iterations", type=int, default=5, help="moss bench runs per variant (median)")
    ap.add_argument("--no-ort", action="store_true", help="leave out the ONNX Runtime-quantized model")
    a = ap.parse_args()
    a.moss = os.path.abspath(a.moss)
    pdir = os.path.abspath(a.plugin_dir or os.path.join(os.path.dirname(a.moss), "plugins", "npu-systolic"))
    targets = [os.path.join(pdir, v + ".xml") for v in VARIANTS]
    for t in targets:
        if not os.path.exists(t):
            sys.exit("no target file %s (build the npu-systolic plugin, or give --plugin-dir)" % t)
    work = a.work or tempfile.mkdtemp(prefix="moss-bench-npu-")
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, MOSS_CACHE_DIR="off")
    env.setdefault("MOSS_TARGETS_DIR", os.path.join(ROOT, "targets"))
    # Bundles name the plugin library by file name: moss finds it in its own
    # build tree; a --plugin-dir elsewhere is found through MOSS_PLUGIN_PATH.
    env["MOSS_PLUGIN_PATH"] = pdir + (":" + env["MOSS_PLUGIN_PATH"] if env.get("MOSS_PLUGIN_PATH") else "")
    x = os.path.join(work, "x_%d.npy" % a.size)
    np.save(x, np.random.default_rng(4).standard_normal((1, 3, a.size, a.size)).astype(np.float32))
    print("MobileNetV2 %dx%d int8 on the npu-systolic plugin's machines (work folder %s)\n" % (a.size, a.size, work))

    for tag, model, extra in make_models(a, work, env):
        print("== %s: %s\n" % (tag, os.path.basename(model)))
        rows = []
        # the reference: the same model on the C backend's int8 kernels
        ref_art = os.path.join(work, "%s_c99.moss" % tag)
        run([a.moss, "compile", model, "--target", "c99", "-q", "-o", ref_art] + extra, env, "compile for c99")
        run([a.moss, "run", ref_art, x, "-o", os.path.join(work, "out_%s_c99" % tag)], env, "run on c99")
        ref = np.load(os.path.join(work, "out_%s_c99" % tag, "output_0.npy"))
        for v, t in zip(VARIANTS, targets):
            art = os.path.join(work, "%s_%s.moss" % (tag, v))
            rep = os.path.join(work, "%s_%s.json" % (tag, v))
            t0 = time.time()
            text = run([a.moss, "compile", model, "--target", t, "--explain", "--report", rep, "-o", art] + extra,
                       env, "compile for " + v)
            csec = time.time() - t0
            nodes = re.findall(r"^node \d+ '.*' \(\w+\) -> (\S+) ", text, re.M)
            est = npu_estimate(json.load(open(rep)))
            prof = run([a.moss, "run", art, x, "--profile", "-o", os.path.join(work, "out_" + tag + v)], env,
                       "run --profile on " + v)
            c = counted(prof)
            got = np.load(os.path.join(work, "out_" + tag + v, "output_0.npy"))
            c["same"] = got.shape == ref.shape and bool(np.array_equal(got, ref))
            b = run([a.moss, "bench", art, x, "--iterations", str(a.iterations)], env, "bench on " + v)
            m = re.search(r"median ([0-9.]+) us", b)
            rows.append(dict(v=v, csec=csec, npu=nodes.count("npu"), nodes=len(nodes), est=est, c=c,
                             wall_us=float(m.group(1)) if m else None))

        print("compile-time estimate (moss compile --report; NPU = the npu device's busy time and energy):")
        print("| variant | nodes on npu | NPU MACs | est NPU latency | est NPU energy | model energy (op) | "
              "model energy (platform) | compile s (1 run) |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            busy, ej, tot, plat, mn, mt = r["est"]
            print("| %s | %d/%d | %.1f%% of %.3g M | %s | %s | %s | %s | %.1f |" % (
                r["v"], r["npu"], r["nodes"], 100.0 * mn / mt if mt else 0, mt / 1e6, si(busy, "s"), si(ej, "J"),
                si(tot, "J"), si(plat, "J"), r["csec"]))
        print()
        if not extra:
            p = subprocess.run([a.moss, "compare", model, "--targets", ",".join(targets), "--report",
                                os.path.join(work, "compare_%s.html" % tag)], capture_output=True, text=True, env=env)
            print("moss compare (%s):" % os.path.join(work, "compare_%s.html" % tag))
            print(p.stdout.rstrip() or p.stderr.rstrip())
            print()
        else:
            print("(moss compare has no --quantize: the table above is this model's energy/latency trade-off)\n")

        print("simulator (moss run --profile: device counters, totals over the NPU steps) against the estimate:")
        print("| variant | = c99 | cycles | latency | est latency | lat/est | energy | est energy | E/est | "
              "DRAM bytes | MACs | array util | sim wall (median of %d) |" % a.iterations)
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            c = r["c"]
            util = 100.0 * c["macs"] / c["peak"] if c["peak"] else 0
            print("| %s | %s | %d | %.1f us | %.1f us | %s | %s | %s | %s | %.2f M | %.1f M | %.1f%% | %s |" % (
                r["v"], "bit-exact" if c["same"] else "DIFFERS", c["cycles"], c["us"], c["est_us"], ratio(c["us"], c["est_us"]),
                "%.1f uJ" % c["uj"] if c["energy"] else "?", "%.1f uJ" % c["est_uj"] if c["energy"] else "?",
                ratio(c["uj"], c["est_uj"]) if c["energy"] else "-", c["dram"] / 1e6, c["macs"] / 1e6, util,
                "%.1f ms" % (r["wall_us"] / 1e3) if r["wall_us"] else "?"))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
