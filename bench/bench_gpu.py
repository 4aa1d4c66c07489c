#!/usr/bin/python3
"""moss on an NVIDIA GPU beside its peers on the same machine, in the same
run: for each model of DIR/models.tsv (tag, name, input shape; DIR holds
<tag>.onnx and the bundles compiled elsewhere, since this machine need not
have moss's compiler) and each code path of DIR/forms.tsv (form, label: the
bundle is <tag>.<form>.moss; without forms.tsv one path, <tag>.moss):

- moss: the bundle through libmossrt (bench/gpu_run.c: the CUDA, OpenCL or
  Vulkan executor, as the bundle's device asks), the median of ITERATIONS
  runs (host copies of the input and output included), and the largest
  difference of its output from ONNX Runtime's;
- ONNX Runtime's CPU provider on all the machine's cores, the same input:
  its median (ONNX Runtime's CUDA provider is not in the image, and its
  wheel is larger than what a device call carries);
- PyTorch on the GPU, where torchvision has the architecture (MobileNetV2,
  ResNet-18; its own random weights: a timing peer, eager mode, batch 1,
  CUDA-synchronized, input on the device already);
- the board energy per moss run from NVML (bench/gpu_energy.py's counter).

A model whose <tag>.onnx is missing is made with bench/make_<tag>.py, whose
weights depend on its seed alone, so the ONNX file need not travel.

Needs a GPU, onnxruntime, numpy (and torch for its column): run it where
they are (the device tool).

  bench_gpu.py DIR GPU_RUN [--iterations N]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gpu_energy import energy_mj, nvml  # noqa: E402


def moss_run(runner, bundle, x, iters, work):
    xb = os.path.join(work, "x.bin")
    x.tofile(xb)
    p = subprocess.run([runner, bundle, work, str(iters), xb], capture_output=True, text=True)
    if p.returncode != 0:
        return None, None, p.stderr.strip()[:300]
    med = float([l.split()[1] for l in p.stdout.splitlines() if l.startswith("median_us")][0]) / 1e3
    return med, np.fromfile(os.path.join(work, "out0.bin"), dtype=np.float32), None


def ort_run(model, x, iters):
    import onnxruntime as ort
    s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    y = s.run(None, {name: x})[0]
    t = []
    for _ in range(iters):
        a = time.perf_counter()
        s.run(None, {name: x})
        t.append((time.perf_counter() - a) * 1e3)
    return statistics.median(t), y


def torch_run(tag, shape, iters):
    try:
        import torch
        import torchvision
    except ImportError:
        return None
    make = {"mobilenetv2": torchvision.models.mobilenet_v2, "resnet18": torchvision.models.resnet18}.get(tag)
    if not make or not torch.cuda.is_available():
        return None
    m = make().eval().cuda()
    x = torch.randn(*shape, device="cuda")
    with torch.no_grad():
        for _ in range(10):
            m(x)
        torch.cuda.synchronize()
        t = []
        for _ in range(iters):
            a = time.perf_counter()
            m(x)
            torch.cuda.synchronize()
            t.append((time.perf_counter() - a) * 1e3)
    return statistics.median(t)


def energy(runner, bundle, x, work, med_ms):
    lib, dev = nvml()
    xb = os.path.join(work, "x.bin")
    x.tofile(xb)
    iters = max(50, int(3000 / max(med_ms, 0.01)))
    e0, t0 = energy_mj(lib, dev), time.monotonic()
    subprocess.run([runner, bundle, work, str(iters), xb], check=True, capture_output=True)
    e1, t1 = energy_mj(lib, dev), time.monotonic()
    return (e1 - e0) / iters, (e1 - e0) / 1e3 / (t1 - t0)


def forms(d):
    """[(form, label)] from DIR/forms.tsv; [("", "moss")] without one."""
    path = os.path.join(d, "forms.tsv")
    if not os.path.exists(path):
        return [("", "moss")]
    return [tuple(l.rstrip("\n").split("\t")[:2]) for l in open(path) if l.strip()]


def model_file(d, tag):
    """DIR/<tag>.onnx, made by bench/make_<tag>.py (default seed) where missing."""
    path = os.path.join(d, tag + ".onnx")
    make = os.path.join(HERE, "make_%s.py" % tag)
    if not os.path.exists(path) and os.path.exists(make):
        subprocess.run([sys.executable, make, path], check=True, capture_output=True)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("gpu_run")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--no-energy", action="store_true", help="no NVML (a machine without an NVIDIA GPU)")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    work = tempfile.mkdtemp(prefix="moss-bench-gpu-")
    print("| model | moss path | moss (ms) | ORT CPU, %d threads (ms) | ORT / moss | torch CUDA (ms) "
          "| max abs diff vs ORT | board mJ per run (W) |" % os.cpu_count())
    print("|---|---|---|---|---|---|---|---|")
    for line in open(os.path.join(a.dir, "models.tsv")):
        tag, name, shape = line.rstrip("\n").split("\t")
        dims = [int(d) for d in shape.split("x")]
        x = rng.standard_normal(dims).astype(np.float32)
        ort_med, yo = ort_run(model_file(a.dir, tag), x, a.iterations)
        tt = torch_run(tag, dims, a.iterations)
        for form, label in forms(a.dir):
            bundle = os.path.join(a.dir, "%s.%s.moss" % (tag, form) if form else tag + ".moss")
            if not os.path.exists(bundle):
                continue
            med, y, why = moss_run(a.gpu_run, bundle, x, a.iterations, work)
            if med is None:
                print("| %s | %s | failed: %s | | | | | |" % (name, label, why))
                continue
            diff = float(np.abs(y.astype(np.float64) - yo.reshape(-1)).max())
            mj, watts = (0.0, 0.0) if a.no_energy else energy(a.gpu_run, bundle, x, work, med)
            print("| %s | %s | %.3f | %.3f | %.2f | %s | %.2g | %.2f (%.0f W) |" %
                  (name, label, med, ort_med, ort_med / med, "%.3f" % tt if tt else "-", diff, mj, watts))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
