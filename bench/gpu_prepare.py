#!/usr/bin/python3
"""Compiles the GPU benchmark's bundles here, for bench_gpu.py to run on a
machine with an NVIDIA GPU and no moss compiler (the device tool): each
model of MODELS (made by bench/make_<tag>.py) for each code path:

  ptx            targets/nvidia-h200.xml (CUDA driver, PTX)
  ptx-naive      the same without local-memory-bytes: no work-group tiles
                 (one work-item per output of Gemm, MatMul and Conv)
  opencl         targets/opencl-gpu.xml (the OpenCL driver)
  opencl-naive   the same without local-memory-bytes
  vulkan         targets/vulkan-gpu.xml (the Vulkan driver)
  vulkan-naive   the same without local-memory-bytes

Writes OUT/<tag>.<form>.moss, OUT/models.tsv and OUT/forms.tsv; the ONNX
files stay here (bench_gpu.py makes them again there from the same seeds).
With --digits T1,T2 (target files) it also writes OUT/digits-<T>/ for
tests/e2e/check_gpu.py: the six digits models of tests/e2e/digits compiled
for each target, their 450 test images, and what each must give: torch's
logits (float models, within DESIGN.md's tolerance) or the bits of the
int8 model compiled for this machine's CPU.

  gpu_prepare.py OUT [--moss build/moss] [--models mobilenetv2,transformer,unet]
                 [--forms ptx,ptx-naive,...] [--digits TARGET.xml,...]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = {"mobilenetv2": ("MobileNetV2 224", "1x3x224x224"), "resnet18": ("ResNet-18 224", "1x3x224x224"),
          "transformer": ("transformer encoder", "1x128x128"), "unet": ("UNet 128", "1x3x128x128")}
FORMS = {"ptx": ("nvidia-h200", "PTX, tiles"), "ptx-naive": ("nvidia-h200", "PTX, no tiles"),
         "opencl": ("opencl-gpu", "OpenCL C, tiles"), "opencl-naive": ("opencl-gpu", "OpenCL C, no tiles"),
         "vulkan": ("vulkan-gpu", "Vulkan, tiles"), "vulkan-naive": ("vulkan-gpu", "Vulkan, no tiles")}


def target(form, work):
    """The target file of |form|: the shipped one, or a copy without
    local-memory-bytes (no work-group tiles) for a -naive form."""
    name = FORMS[form][0]
    path = os.path.join(ROOT, "targets", name + ".xml")
    if not form.endswith("-naive"):
        return path
    text = re.sub(r'\s*local-memory-bytes="\d+"', "", open(path).read())
    out = os.path.join(work, name + "-naive.xml")
    with open(out, "w") as f:
        f.write(text)
    return out


def digits(out, moss, target, work):
    """OUT/digits-<target's name>/: bundles, inputs and expected outputs."""
    import numpy as np
    dig = os.path.join(ROOT, "tests", "e2e", "digits")
    d = os.path.join(out, "digits-" + os.path.splitext(os.path.basename(target))[0])
    os.makedirs(d, exist_ok=True)
    lines = []
    for m in ("mlp", "cnn", "mlp_pruned90", "mlp_qdq", "cnn_qdq", "cnn_qdq_pc"):
        x = np.load(os.path.join(dig, "x_test_%s.npy" % m.split("_")[0]))
        shape = "input=" + "x".join(str(v) for v in x.shape)
        model = os.path.join(dig, m + ".onnx")
        subprocess.run([moss, "compile", model, "--input-shape", shape, "--target", target, "-o",
                        os.path.join(d, m + ".moss"), "-q"], check=True)
        x.astype(np.float32).tofile(os.path.join(d, m + "_x.bin"))
        if "qdq" in m:
            host, xp = os.path.join(work, m + "_host.moss"), os.path.join(work, m + "_x.npy")
            np.save(xp, x)
            subprocess.run([moss, "compile", model, "--input-shape", shape, "-o", host, "-q"], check=True)
            subprocess.run([moss, "run", host, xp, "-o", os.path.join(work, m + "_out")], check=True,
                           capture_output=True)
            want, how = np.load(os.path.join(work, m + "_out", "output_0.npy")), "bits"
        else:
            want, how = np.load(os.path.join(dig, m + "_ref.npy")).astype(np.float32), "float"
        np.save(os.path.join(d, m + "_want.npy"), want)
        lines.append("%s\t%s\t%s.moss\t%s_x.bin\t%s_want.npy\n" % (m, how, m, m, m))
    with open(os.path.join(d, "manifest.tsv"), "w") as f:
        f.writelines(lines)
    print("digits for %s: %s" % (target, d))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--moss", default=os.path.join(ROOT, "build", "moss"))
    ap.add_argument("--models", default="mobilenetv2,transformer,unet")
    ap.add_argument("--forms", default=",".join(FORMS))
    ap.add_argument("--digits", default="")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="moss-gpu-prepare-")
    models = [m for m in a.models.split(",") if m]
    forms = [f for f in a.forms.split(",") if f]
    for m in models:
        onnx = os.path.join(work, m + ".onnx")
        subprocess.run([sys.executable, os.path.join(HERE, "make_%s.py" % m), onnx], check=True)
        for f in forms:
            art = os.path.join(a.out, "%s.%s.moss" % (m, f))
            p = subprocess.run([a.moss, "compile", onnx, "--target", target(f, work), "-o", art],
                               capture_output=True, text=True)
            print("%s %s: %s" % (m, f, (p.stderr.strip().splitlines() or ["?"])[-1]))
            if p.returncode != 0:
                raise SystemExit("gpu_prepare: %s for %s failed" % (m, f))
    for t in [t for t in a.digits.split(",") if t]:
        digits(a.out, a.moss, t, work)
    with open(os.path.join(a.out, "models.tsv"), "w") as fo:
        for m in models:
            fo.write("%s\t%s\t%s\n" % (m, MODELS[m][0], MODELS[m][1]))
    with open(os.path.join(a.out, "forms.tsv"), "w") as fo:
        for f in forms:
            fo.write("%s\t%s\n" % (f, FORMS[f][1]))


if __name__ == "__main__":
    main()
