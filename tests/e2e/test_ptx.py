#!/usr/bin/python3
"""The PTX backend (backends/ptx) and libmossrt's CUDA executor
(runtime/src/cuda), on the digits models:

- every model compiled for tests/conformance/ptx-only.xml (the H200 of
  targets/nvidia-h200.xml with no CPU to fall back on, so every node is a
  PTX kernel) with the 450 test digits as one batch: each segment's blob
  holds a PTX module for sm_90 that NVIDIA's assembler, ptxas (CUDA
  toolkit), accepts, with one entry per node and no external calls;
- the CNN on targets/nvidia-h200.xml (the GPU and the host CPU): the plan's
  transfers; an operator the PTX backend has no code for (Sin: no C library
  on the GPU) goes to the CPU, --explain saying why, and on ptx-only.xml the
  compile fails naming it;
- running: on a machine with a CUDA driver the float models match torch's
  logits within DESIGN.md's float tolerance and the int8 ones give the CPU's
  bits (host, LLVM backend); on one without (this one), `moss run` fails with
  a clear error naming libcuda.so.1, or the file MOSS_CUDA_LIBRARY names, and
  with the toolkit's stub driver the first call's error (cuInit:
  CUDA_ERROR_STUB_LIBRARY).

  test_ptx.py --moss build/moss [--export DIR]

--export DIR also writes what a machine with a GPU but no moss compiler
needs to check the runs (tests/e2e/check_gpu.py, DIR/manifest.tsv): each
bundle, its input as raw bytes, the expected output and how to compare it.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gpu_blobs  # noqa: E402

DIG = os.path.join(HERE, "digits")
ONLY = os.path.join(HERE, "..", "conformance", "ptx-only.xml")
ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
ap.add_argument("--export", default=None)
A = ap.parse_args()
W = tempfile.mkdtemp(prefix="moss-ptx-")
fails = 0


def fail(msg):
    global fails
    print("FAIL " + msg)
    fails += 1


def compile_model(model, target, shape, tag, extra=()):
    art = os.path.join(W, tag + ".moss")
    p = subprocess.run([A.moss, "compile", model, "--input-shape", "input=" + shape, "--target", target, "-o", art,
                        "--explain"] + list(extra), capture_output=True, text=True)
    return art, p


PTXAS = gpu_blobs.find_ptxas()
if not PTXAS:
    fail("no ptxas on PATH or in /usr/local/cuda/bin: the CUDA toolkit is needed to check the PTX")
CUDA = gpu_blobs.have_cuda()
y_test = np.load(os.path.join(DIG, "y_test.npy"))
xs = {"mlp": np.load(os.path.join(DIG, "x_test_mlp.npy")), "cnn": np.load(os.path.join(DIG, "x_test_cnn.npy"))}
export = []

for m in ("mlp", "cnn", "mlp_pruned90", "mlp_qdq", "cnn_qdq", "cnn_qdq_pc"):
    x = xs[m.split("_")[0]]
    shape = "x".join(str(d) for d in x.shape)
    art, p = compile_model(os.path.join(DIG, m + ".onnx"), ONLY, shape, m)
    if p.returncode != 0:
        fail("%s: compile for ptx-only failed: %s" % (m, p.stderr.strip()[:400]))
        continue
    nodes = [l for l in p.stdout.splitlines() if l.startswith("node ")]
    if not nodes or any("-> gpu" not in l for l in nodes):
        fail("%s: not every node on the gpu:\n%s" % (m, p.stdout))
    bl = gpu_blobs.blobs(art)
    if not bl or any(b["magic"] != b"MPTX" or b["version"] != 2 for b in bl):
        fail("%s: %d blobs, not all PTX segment blobs of version 1" % (m, len(bl)))
        continue
    for k, b in enumerate(bl):
        src = b["source"].decode("ascii")
        entries = src.count(".entry moss_k")
        if entries != len(b["items"]) or ".target sm_90" not in src or ".extern .func" in src:
            fail("%s blob %d: %d entries for %d kernels, or not sm_90, or an external call" %
                 (m, k, entries, len(b["items"])))
        if PTXAS:
            ptx = os.path.join(W, "%s_%d.ptx" % (m, k))
            open(ptx, "w").write(src)
            q = subprocess.run([PTXAS, "-arch", "sm_90", ptx, "-o", ptx + ".cubin"], capture_output=True, text=True)
            if q.returncode != 0:
                fail("%s blob %d: ptxas refuses the PTX: %s" % (m, k, q.stderr.strip()[:600]))
    print("%s: %d nodes on the gpu, %d PTX module(s), ptxas %s" %
          (m, len(nodes), len(bl), "accepts them" if PTXAS else "missing"))
    # The expected output: torch's logits (float, within tolerance), or the
    # CPU's int8 bits (the LLVM backend on this machine).
    xp = os.path.join(W, m + "_x.npy")
    np.save(xp, x)
    if "qdq" in m:
        host = os.path.join(W, m + "_host.moss")
        subprocess.run([A.moss, "compile", os.path.join(DIG, m + ".onnx"), "--input-shape", "input=" + shape,
                        "-o", host, "-q"], check=True)
        subprocess.run([A.moss, "run", host, xp, "-o", os.path.join(W, m + "_host")], check=True,
                       capture_output=True)
        want, how = np.load(os.path.join(W, m + "_host", "output_0.npy")), "bits"
    else:
        want, how = np.load(os.path.join(DIG, m + "_ref.npy")).astype(np.float32), "float"
    export.append((m, art, x, want, how))
    out = os.path.join(W, m + "_out")
    r = subprocess.run([A.moss, "run", art, xp, "-o", out], capture_output=True, text=True)
    if not CUDA:
        if r.returncode == 0 or "libcuda.so.1" not in r.stderr:
            fail("%s: with no CUDA driver, moss run: status %d, %r" % (m, r.returncode, r.stderr[:300]))
        continue
    if r.returncode != 0:
        fail("%s: moss run failed: %s" % (m, r.stderr.strip()[:400]))
        continue
    y = np.load(os.path.join(out, "output_0.npy"))
    if how == "bits" and y.tobytes() != want.tobytes():
        fail("%s: the GPU's int8 logits differ from the CPU's" % m)
    if how == "float":
        err = np.abs(y.astype(np.float64) - want)
        if not np.all(err <= 1e-5 + 1e-4 * np.abs(want)):
            fail("%s: logits differ from torch's by up to %g" % (m, err.max()))
    print("%s on CUDA: matches (%s)" % (m, how))

if not CUDA:
    x = xs["mlp"][:2]
    art, p = compile_model(os.path.join(DIG, "mlp.onnx"), ONLY, "2x64", "nolib")
    xp = os.path.join(W, "nolib_x.npy")
    np.save(xp, x)
    bad = os.path.join(W, "no-such-libcuda.so")
    r = subprocess.run([A.moss, "run", art, xp, "-o", os.path.join(W, "nolib")], capture_output=True, text=True,
                       env=dict(os.environ, MOSS_CUDA_LIBRARY=bad))
    if r.returncode == 0 or bad not in r.stderr:
        fail("MOSS_CUDA_LIBRARY naming no file: status %d, %r" % (r.returncode, r.stderr[:300]))
    else:
        print("no CUDA driver here: moss run says %r" % r.stderr.strip().splitlines()[-1][:200])
    # The toolkit's stub driver loads, and every call fails: a failing driver
    # call is named with its error.
    stub = os.path.join(os.path.dirname(os.path.dirname(PTXAS or "/")), "lib64", "stubs", "libcuda.so")
    if os.path.exists(stub):
        r = subprocess.run([A.moss, "run", art, xp, "-o", os.path.join(W, "stub")], capture_output=True, text=True,
                           env=dict(os.environ, MOSS_CUDA_LIBRARY=stub))
        if r.returncode == 0 or "cuInit: CUDA_ERROR_STUB_LIBRARY (34)" not in r.stderr:
            fail("the stub driver: status %d, %r" % (r.returncode, r.stderr[:300]))
        else:
            print("the toolkit's stub driver: %r" % r.stderr.strip()[:200])
    else:
        print("no stub driver at %s: the failing-call check needs the CUDA toolkit's" % stub)

# The GPU beside the host CPU: the transfers in the plan.
art, p = compile_model(os.path.join(DIG, "cnn.onnx"), "nvidia-h200", "7x1x8x8", "cnn_mixed")
if p.returncode != 0 or "-> gpu" not in p.stdout or "transfer 'input'" not in p.stdout:
    fail("nvidia-h200: --explain shows no node on the gpu or no transfer:\n" + p.stdout + p.stderr)

# An operator the PTX backend lacks: Sin (no C library on the GPU; erf and
# tanh it computes itself, backends/llvm/llvm.c).
import onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

g = helper.make_graph([helper.make_node("Relu", ["input"], ["r"]), helper.make_node("Sin", ["r"], ["y"])], "sin",
                      [helper.make_tensor_value_info("input", TensorProto.FLOAT, [4, 8])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])])
sin = os.path.join(W, "sin.onnx")
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), sin)
art, p = compile_model(sin, "nvidia-h200", "4x8", "sin_mixed")
lines = [l for l in p.stdout.splitlines() if "(Sin)" in l]
if p.returncode != 0 or not lines or "-> cpu" not in lines[0] or "no sin" not in p.stdout:
    fail("Sin on nvidia-h200: not on the cpu with the reason:\n" + p.stdout + p.stderr)
art, p = compile_model(sin, ONLY, "4x8", "sin_only")
if p.returncode == 0 or "Sin" not in p.stderr or "no sin" not in p.stderr:
    fail("Sin on ptx-only: status %d, %r" % (p.returncode, p.stderr[:400]))

# erf and tanh, which the PTX backend computes itself (erf32 and tanh32 in
# backends/llvm/llvm.c), cannot run here (no CUDA driver): their formulas,
# evaluated step by step in float32 as the PTX does (fma through float64,
# exp as float32's), must be within DESIGN.md's float tolerance of
# Python's math.erf and math.tanh on a grid over [-12, 12] and near 0.
import math  # noqa: E402

import numpy as np  # noqa: E402

f32 = np.float32


def horner(x, c):
    p = f32(c[-1])
    for k in c[-2::-1]:
        p = f32(np.float64(p) * np.float64(x) + np.float64(f32(k)))
    return p


def erf32(x):
    ax, x2 = f32(abs(x)), f32(x * x)
    if ax < 0.5:
        return f32(f32(x * horner(x2, [1, -1 / 3, 1 / 10, -1 / 42, 1 / 216, -1 / 1320])) * f32(1.1283791670955126))
    t = f32(f32(1) / f32(np.float64(ax) * np.float64(f32(0.3275911)) + 1))
    y = f32(1) - f32(horner(t, [0, 0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429]) *
                     f32(np.exp(-x2, dtype=np.float32)))
    return f32(math.copysign(y, x))


def tanh32(x):
    ax, x2 = f32(abs(x)), f32(x * x)
    if ax < 0.0625:
        return f32(np.float64(f32(x * x2)) * np.float64(horner(x2, [-1 / 3, 2 / 15, -17 / 315, 62 / 2835])) + x)
    e = f32(np.exp(f32(-2 * ax), dtype=np.float32))
    return f32(math.copysign(f32(f32(1 - e) / f32(1 + e)), x))


grid = [f32(v) for v in np.concatenate([np.linspace(-12, 12, 24001), np.geomspace(1e-30, 1, 300),
                                        -np.geomspace(1e-30, 1, 300), [0.0, 0.5, -0.5, 0.0625, -0.0625]])]
for name, fn, ref in (("erf", erf32, math.erf), ("tanh", tanh32, math.tanh)):
    worst = max((abs(float(fn(v)) - ref(float(v))) - (1e-5 + 1e-4 * abs(ref(float(v)))), float(v)) for v in grid)
    if worst[0] > 0:
        fail("%s32: beyond the float tolerance at x = %r" % (name, worst[1]))
    rel = max(abs(float(fn(v)) - ref(float(v))) / max(abs(ref(float(v))), 1e-30) for v in grid if v != 0)
    print("%s32 (PTX): within the float tolerance on %d points; largest relative error %.2g" % (name, len(grid), rel))
    if not (math.isnan(fn(f32("nan"))) and fn(f32("inf")) == 1 and fn(f32("-inf")) == -1):
        fail("%s32: NaN or infinity mishandled" % name)

if A.export:
    os.makedirs(A.export, exist_ok=True)
    with open(os.path.join(A.export, "manifest.tsv"), "w") as f:
        for m, art, x, want, how in export:
            shutil.copy(art, os.path.join(A.export, m + ".moss"))
            x.astype(np.float32).tofile(os.path.join(A.export, m + "_x.bin"))
            np.save(os.path.join(A.export, m + "_want.npy"), want)
            f.write("%s\t%s\t%s.moss\t%s_x.bin\t%s_want.npy\n" % (m, how, m, m, m))
    print("exported %d models to %s" % (len(export), A.export))

shutil.rmtree(W, ignore_errors=True)
print("test_ptx: %s" % ("FAILED (%d)" % fails if fails else "ok"))
sys.exit(1 if fails else 0)
