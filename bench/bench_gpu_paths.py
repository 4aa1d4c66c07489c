#!/usr/bin/env python3
"""Issue 14's functional benchmark: the benchmark models of bench_models.py
(the digits CNN, MobileNetV2 and ResNet-18 at 224x224, the transformer
encoder) through moss's GPU paths on the drivers this machine has, beside
its CPU path and ONNX Runtime, in one run:

- host: the LLVM backend on this CPU, one thread (`moss bench --threads 1`);
- opencl: every node on the OpenCL backend (tests/conformance/
  opencl-only.xml), run through libmossrt's OpenCL executor on the OpenCL
  driver (PoCL here: OpenCL on the CPU's cores);
- vulkan: every node on the Vulkan backend (vulkan-only.xml), through the
  Vulkan executor on the Vulkan driver (lavapipe here: Vulkan on the CPU);
- ONNX Runtime's CPU provider at one thread.

With --naive also the OpenCL and Vulkan paths without work-group tiles
(the targets without local-memory-bytes: one work-item per output element
of every Gemm, MatMul and Conv), to compare the two kernel shapes.

Each column is the median of N runs of `moss bench` (the whole bundle:
uploads, kernels, downloads); the last column is the largest difference of
each GPU path's output from ONNX Runtime's on the same input. On this
machine the "GPUs" are CPU emulations: the figures say the paths run whole
models and what they cost there, not what a GPU would do (bench_gpu.py
runs the PTX path on a real NVIDIA GPU). Nothing here is a test.

  python3 -m pip install onnxruntime numpy onnx    # the python3 first on PATH
  python3 bench/bench_gpu_paths.py --moss build/moss [--iterations 10] [--only cnn,mobilenetv2] [--naive]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_mlp import ort_median  # noqa: E402
from bench_models import make  # noqa: E402

CONF = os.path.join(ROOT, "tests", "conformance")
PATHS = [("host", "host", "host CPU"), ("opencl", os.path.join(CONF, "opencl-only.xml"), "OpenCL on PoCL"),
         ("vulkan", os.path.join(CONF, "vulkan-only.xml"), "Vulkan on lavapipe")]


def naive_paths(work):
    """The OpenCL and Vulkan paths without work-group tiles: their targets
    without local-memory-bytes."""
    out = []
    for path, target, label in PATHS[1:]:
        t = os.path.join(work, path + "-naive.xml")
        with open(t, "w") as f:
            f.write(re.sub(r'\s*local-memory-bytes="\d+"', "", open(target).read()))
        out.append((path + "-naive", t, label + ", no tiles"))
    return out


def moss_path(moss, model, shape, target, x, iters, work, tag, env):
    """Compiles |model| for |target|; returns (median us, output) or
    (None, the reason)."""
    art = os.path.join(work, tag + ".moss")
    cmd = [moss, "compile", model, "-q", "-o", art, "--target", target]
    inp = onnx.load(model, load_external_data=False).graph.input[0]
    if any(d.dim_param for d in inp.type.tensor_type.shape.dim):
        cmd += ["--input-shape", "%s=%s" % (inp.name, shape)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        return None, p.stderr.strip().splitlines()[-1][:120]
    xp = os.path.join(work, tag + "_x.npy")
    np.save(xp, x)
    out = os.path.join(work, tag + "_out")
    p = subprocess.run([moss, "run", art, xp, "-o", out], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        return None, p.stderr.strip()[:120]
    y = np.load(os.path.join(out, "output_0.npy"))
    p = subprocess.run([moss, "bench", art, xp, "--iterations", str(iters), "--threads", "1"], capture_output=True,
                       text=True, env=env)
    if p.returncode != 0:
        return None, p.stderr.strip()[:120]
    return float(re.search(r"median ([0-9.]+) us", p.stdout).group(1)), y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", default=os.path.join(ROOT, "build", "moss"))
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--only", default="")
    ap.add_argument("--naive", action="store_true", help="also the GPU paths without work-group tiles")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="moss-bench-gpu-")
    paths = PATHS + (naive_paths(work) if a.naive else [])
    env = dict(os.environ, POCL_CACHE_DIR=os.path.join(work, "pocl"), XDG_RUNTIME_DIR=os.environ.get(
        "XDG_RUNTIME_DIR", work))
    models = [("cnn", "digits CNN", os.path.join(ROOT, "tests", "e2e", "digits", "cnn.onnx"), "1x1x8x8"),
              ("mobilenetv2", "MobileNetV2 224", make("make_mobilenetv2.py", os.path.join(work, "mnv2.onnx")),
               "1x3x224x224"),
              ("resnet18", "ResNet-18 224", make("make_resnet18.py", os.path.join(work, "r18.onnx")), "1x3x224x224"),
              ("transformer", "transformer encoder", make("make_transformer.py", os.path.join(work, "tf.onnx")),
               "1x128x128")]
    if a.only:
        models = [m for m in models if m[0] in a.only.split(",")]
    print("| model | %s | ONNX Runtime 1 thread (ms) | max diff from ONNX Runtime (%s) |" %
          (" | ".join(label + " (ms)" for _, _, label in paths), ", ".join(p for p, _, _ in paths[1:])))
    print("|---|%s---|---|" % ("---|" * len(paths)))
    for tag, name, model, shape in models:
        x = np.random.default_rng(1).standard_normal([int(d) for d in shape.split("x")]).astype(np.float32)
        import onnxruntime as ort
        s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        yref = s.run(None, {s.get_inputs()[0].name: x})[0]
        ort_ms = ort_median(model, x, max(a.iterations, 20)) / 1e3
        cells, diffs = [], []
        for path, target, _ in paths:
            t, y = moss_path(a.moss, model, shape, target, x, a.iterations, work, "%s_%s" % (tag, path), env)
            if t is None:
                cells.append("fails: %s" % y)
                if path != "host":
                    diffs.append("-")
                continue
            cells.append("%.3g" % (t / 1e3))
            if path != "host":
                diffs.append("%.2g" % float(np.abs(y.reshape(yref.shape) - yref).max()))
        print("| %s | %s | %.3g | %s |" % (name, " | ".join(cells), ort_ms, ", ".join(diffs)))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
