#!/usr/bin/env python3
"""Issue 13's benchmark: moss against ONNX Runtime on whole models, at 1
and 2 threads, with latency, peak memory and artifact size.

Models (made on demand, not committed, except the digits ones):
  digits MLP, digits CNN, the 90 %-pruned digits MLP (tests/e2e/digits),
  ResNet-18 and MobileNetV2 at 224x224 (bench/make_resnet18.py,
  make_mobilenetv2.py), a 2-layer transformer encoder (d 128, sequence 128;
  make_transformer.py), a UNet-style encoder-decoder at 128x128
  (make_unet.py), and int8 QDQ versions of the CNN, MobileNetV2 and
  ResNet-18 made by ONNX Runtime's quantizer (quantize_static: QDQ format,
  per-channel int8 weights, uint8 activations, calibrated on 8 random
  inputs). ResNet-18 and the UNet are also compiled with --winograd (the
  opt-in F(4x4, 3x3), outside the float tolerance: docs/kernel.md), shown
  beside ONNX Runtime's times for the same file but left out of the goals.
Each is compiled once for `host` (the LLVM backend, this machine's CPU and
cores: its parallel loops cut into parts for them) and timed with `moss
bench --threads 1` and `--threads 2` (median of N runs each); ONNX Runtime
runs the same file with all graph optimizations at intra_op 1 and 2, each
in its own process (median of N runs after a warm-up). Peak RSS is the
process's maximum resident set (moss: /usr/bin/time around `moss bench`,
the compiler's command line, which maps libLLVM as well: an application
linking libmossrt alone is smaller; ONNX Runtime: getrusage at the end of
its Python process); size is the .moss bundle against the .onnx file ONNX
Runtime loads.

Prints one Markdown table (moss / ONNX Runtime below 1: moss faster), the
geometric means of the ratios, each int8 model's speed-up over its fp32
twin on moss, ResNet-18's and the 512x512x512 fp32 GEMM's share of the
FMA peak of one core measured in the same run (bench/bench_gemm.py,
bench/peak_fma.c), and the issue's goals met or missed. With --readme FILE
it also writes all of that into FILE between the lines
`<!-- bench_models: begin -->` and `<!-- bench_models: end -->`. Nothing
here is a test.

  python3 -m pip install onnxruntime numpy onnx    # the python3 first on PATH
  python3 bench/bench_models.py --moss build/moss [--iterations 50] [--only resnet18,...] [--readme README.md]
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_gemm  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DIGITS = os.path.join(ROOT, "tests", "e2e", "digits")

ORT_SCRIPT = r"""
import resource, sys
import numpy as np
sys.path.insert(0, sys.argv[5])
from bench_mlp import ort_median
path, shape, threads, iters = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
x = np.random.default_rng(1).standard_normal([int(d) for d in shape.split("x")]).astype(np.float32)
med = ort_median(path, x, iters, threads)
print("%.3f %d" % (med, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""


def moss_run(moss, model, shape, iters, work, tag, env=None):
    """Compiles once (with |env| added to the environment); returns the
    medians at 1 and 2 threads, the peak RSS of the 1-thread run, the
    bundle's size and the model's MACs."""
    art = os.path.join(work, tag + ".moss")
    rep = os.path.join(work, tag + ".json")
    cmd = [moss, "compile", model, "-q", "-o", art, "--report", rep]
    inp = onnx.load(model, load_external_data=False).graph.input[0]
    if any(d.dim_param for d in inp.type.tensor_type.shape.dim):
        cmd += ["--input-shape", "%s=%s" % (inp.name, shape)]
    subprocess.run(cmd, check=True, env=dict(os.environ, **(env or {})))
    med, rss = [], 0
    for threads in (1, 2):
        p = subprocess.run(["/usr/bin/time", "-f", "RSS %M", moss, "bench", art, "--iterations",
                            str(iters), "--threads", str(threads)], check=True, capture_output=True, text=True)
        med.append(float(re.search(r"median ([0-9.]+) us", p.stdout).group(1)))
        if threads == 1:
            rss = int(re.search(r"RSS (\d+)", p.stderr).group(1))
    macs = json.load(open(rep))["total"]["macs_dense"]
    return med[0], med[1], rss, os.path.getsize(art), macs


def ort_run(model, shape, threads, iters):
    p = subprocess.run([sys.executable, "-c", ORT_SCRIPT, model, shape, str(threads), str(iters),
                        HERE],
                       check=True, capture_output=True, text=True)
    med, rss = p.stdout.split()
    return float(med), int(rss)


def quantize(model, shape, out):
    """ONNX Runtime's static quantizer, QDQ format, calibrated on random inputs."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            name = onnx.load(model, load_external_data=False).graph.input[0].name
            rng = np.random.default_rng(2)
            dims = [int(d) for d in shape.split("x")]
            self.items = iter([{name: rng.standard_normal(dims).astype(np.float32)}
                               for _ in range(8)])

        def get_next(self):
            return next(self.items, None)

    quantize_static(model, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


def make(script, out):
    if not os.path.exists(out):
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, script), out], check=True,
                       capture_output=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", default=os.path.join(ROOT, "build", "moss"))
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--only", default="", help="comma-separated tags to run")
    ap.add_argument("--work", default=None, help="folder for the models (kept between runs)")
    ap.add_argument("--readme", default=None, help="write the results into this file between the markers")
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="moss-models-")
    os.makedirs(work, exist_ok=True)
    models = [("mlp", "digits MLP", os.path.join(DIGITS, "mlp.onnx"), "1x64", 20),
              ("cnn", "digits CNN", os.path.join(DIGITS, "cnn.onnx"), "1x1x8x8", 20),
              ("mlp90", "digits MLP, 90 % pruned", os.path.join(DIGITS, "mlp_pruned90.onnx"),
               "1x64", 20)]
    gen = [("resnet18", "ResNet-18 224", "make_resnet18.py", "1x3x224x224", 1),
           ("mobilenetv2", "MobileNetV2 224", "make_mobilenetv2.py", "1x3x224x224", 1),
           ("transformer", "transformer encoder", "make_transformer.py", "1x128x128", 1),
           ("unet", "UNet 128", "make_unet.py", "1x3x128x128", 1)]
    for tag, name, script, shape, scale in gen:
        if os.path.exists(os.path.join(HERE, script)):
            models.append((tag, name, make(script, os.path.join(work, tag + ".onnx")), shape, scale))
    for tag in ("cnn", "mobilenetv2", "resnet18"):
        src = [m for m in models if m[0] == tag]
        if src:
            out = os.path.join(work, tag + "_int8.onnx")
            if not os.path.exists(out):
                quantize(src[0][2], src[0][3], out)
            models.append((tag + "_int8", src[0][1] + " int8", out, src[0][3], src[0][4]))
    # The opt-in F(4x4, 3x3) Winograd (moss compile --winograd), beside the
    # defaults; not one of the models, so not in the goals.
    extra = {}
    for tag in ("resnet18", "unet"):
        src = [m for m in models if m[0] == tag]
        if src:
            models.append((tag + "_w4", src[0][1] + ", --winograd") + src[0][2:])
            extra[tag + "_w4"] = {"MOSS_WINOGRAD": "on"}
    only = set(t for t in a.only.split(",") if t)
    lines = []

    def out(text=""):
        print(text, flush=True)
        lines.append(text)

    out("| model | MACs | moss 1 thread | ORT 1 thread | moss/ORT | moss 2 threads | ORT 2 threads | moss/ORT | "
        "moss peak RSS | ORT peak RSS | .moss | .onnx |")
    out("|---|---|---|---|---|---|---|---|---|---|---|---|")
    r1, r2, times, macs_of, macs_by_name, failed, ort_times = [], [], {}, {}, {}, [], {}
    for tag, name, path, shape, scale in models:
        if only and tag not in only:
            continue
        iters = max(5, a.iterations * scale)
        try:
            tm, tm2, rm, size, macs = moss_run(a.moss, path, shape, iters, work, tag, extra.get(tag))
        except subprocess.CalledProcessError as e:
            out("| %s | moss failed: %s |" % (name, (e.stderr or "").strip()[-200:].replace("\n", " ")))
            failed.append(name)
            continue
        if path not in ort_times:
            ort_times[path] = ort_run(path, shape, 1, iters) + ort_run(path, shape, 2, iters)[:1]
        t1, rss1, t2 = ort_times[path]
        if tag not in extra:
            r1.append((name, tm / t1))
            r2.append((name, tm2 / t2))
        times[tag] = tm
        macs_of[tag] = macs
        macs_by_name[name] = macs
        out("| %s | %.3g | %.1f us | %.1f us | %.2f | %.1f us | %.1f us | %.2f | %.0f MB | %.0f MB | "
            "%.2f MB | %.2f MB |" % (name, macs, tm, t1, tm / t1, tm2, t2, tm2 / t2, rm / 1024,
                                     rss1 / 1024, size / 1e6, os.path.getsize(path) / 1e6))
    out()
    geo = lambda rs: math.exp(sum(math.log(r) for _, r in rs) / len(rs))  # noqa: E731
    goals = []
    if r1:
        g1, g2 = geo(r1), geo(r2)
        out("Geometric mean of moss / ONNX Runtime: %.2f at 1 thread, %.2f at 2 threads (goal <= 0.7)." % (g1, g2))
        goals.append(("geometric mean <= 0.7 at 1 and 2 threads", g1 <= 0.7 and g2 <= 0.7))
        slow = ["%s (%.2f at 1 thread, %.2f at 2)" % (n1, x1, x2) for (n1, x1), (_, x2) in zip(r1, r2)
                if x1 > 1 or x2 > 1]
        goals.append(("moss at least as fast as ONNX Runtime on every model" +
                      (": slower on " + ", ".join(slow) if slow else ""), not slow))
        small = [(n1, x1, x2) for (n1, x1), (_, x2) in zip(r1, r2) if macs_by_name[n1] < 1e6]
        if small:
            bad = ["%s (%.2f, %.2f)" % t for t in small if t[1] > 0.2 or t[2] > 0.2]
            goals.append(("models under 1 M MACs at least 5x faster at 1 and 2 threads" +
                          (": not on " + ", ".join(bad) if bad else ""), not bad))
        for (n1, x1), (_, x2) in zip(r1, r2):
            if n1 == "digits MLP, 90 % pruned":
                goals.append(("the 90 %%-pruned MLP at least 3x faster than ONNX Runtime (%.2f, %.2f)" % (x1, x2),
                              x1 <= 1 / 3 and x2 <= 1 / 3))
    for tag in ("cnn", "mobilenetv2", "resnet18"):
        if tag in times and tag + "_int8" in times:
            sp = times[tag] / times[tag + "_int8"]
            out("int8 against fp32 on moss, %s: %.2fx faster (goal >= 2)." % (tag, sp))
            goals.append(("int8 %s at least 2x faster than fp32" % tag, sp >= 2))
    gw = os.path.join(work, "gemm")
    os.makedirs(gw, exist_ok=True)
    pk, line, t_g, g_g, err, _, _ = bench_gemm.measure(a.moss, "host", 512, max(10, a.iterations), gw)
    out("FMA peak of one core, measured in this run: %s." % line)
    out("512x512x512 fp32 GEMM: %.1f GMAC/s, %.0f %% of that peak (goal >= 85 %%; max relative error %.1e)."
        % (g_g, 100 * g_g / pk, err))
    goals.append(("fp32 GEMM >= 85 % of the FMA peak", g_g >= 0.85 * pk))
    if "resnet18" in times:
        gr = macs_of["resnet18"] / (times["resnet18"] * 1e-6) * 1e-9
        out("ResNet-18 fp32: %.1f GMAC/s, %.0f %% of that peak (goal >= 75 %%)." % (gr, 100 * gr / pk))
        goals.append(("ResNet-18 fp32 >= 75 % of the FMA peak", gr >= 0.75 * pk))
    out()
    for text, ok in goals:
        out("- %s: %s" % ("met" if ok else "missed", text))
    if failed:
        out("- moss failed on: " + ", ".join(failed))
    if a.readme:
        write_readme(a.readme, lines)
    return 0


def write_readme(path, lines):
    """Replaces what lies between the markers in |path| (written atomically)."""
    begin, end = "<!-- bench_models: begin -->", "<!-- bench_models: end -->"
    with open(path) as f:
        text = f.read()
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        sys.exit("bench_models: %s has no %s ... %s block" % (path, begin, end))
    text = text[:i + len(begin)] + "\n" + "\n".join(lines) + "\n" + text[j:]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
