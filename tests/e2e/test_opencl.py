#!/usr/bin/python3
"""The OpenCL backend (backends/opencl) and libmossrt's OpenCL executor
(runtime/src/opencl) on the machine's OpenCL driver through the ICD loader
(PoCL here: OpenCL on the CPU), on the digits models:

- every model compiled for tests/conformance/opencl-only.xml (an OpenCL
  device and no CPU to fall back on, so every node runs as an OpenCL
  kernel), on the 450 test digits in one batch:
  - the float models (MLP, CNN, the 90 %-pruned MLP) match torch's logits
    within DESIGN.md's float tolerance, and reach torch's accuracy;
  - the int8 QDQ models (per-tensor and per-channel) give the same bits
    as the CPU's int8 kernels, both the LLVM backend's (host) and the C
    backend's (c99) (DESIGN.md "Numerics"), and torch's integers within
    one step, as the CPU backends do;
- the CNN compiled for targets/opencl-gpu.xml (the OpenCL device and the
  host CPU through the C backend): the same logits, the plan's transfers;
- the SPIR-V form each of those blobs carries beside the OpenCL C (blob
  version 2, runtime/include/moss_bundle.h), checked apart from moss:
  `spirv-val --target-env opencl1.2` takes it and `spirv-dis` shows one
  OpenCL kernel entry point per kernel (moss_k0 ..); PoCL takes no SPIR-V,
  so every run here builds the source (the same bits with
  MOSS_OPENCL_CODE=source), and MOSS_OPENCL_CODE=spirv says the device
  takes none; no translator (MOSS_LLVM_SPIRV naming none): a clear error;
- with --il-shim (tests/e2e/ocl_il_shim.c: PoCL behind a front end that
  takes SPIR-V, reading it back to SPIR bitcode with llvm-spirv-15 -r),
  libmossrt picks the SPIR-V form by itself and runs every digits bundle
  from it: torch's logits, the CPU's int8 bits, and its programs cached
  under the SPIR-V form and reloaded;
- clear errors: no device by MOSS_DEVICE's name, no ICD loader, a graph
  output no node writes on a target with no CPU code to copy it (a bundle
  whose blob is malformed: tests/unit/test_bundle.c);
- the program cache (MOSS_CACHE_DIR): stored under the form it was built
  from (opencl-source-*.bin), loaded, a damaged file rebuilt, the same
  results; a run forced to SPIR-V does not take the source's program;
- valgrind's memcheck finds nothing on a run of that path.

  test_opencl.py --moss build/moss [--il-shim build/tests/libmoss_ocl_il_shim.so]
"""
import argparse
import os
import re
import struct
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gpu_blobs  # noqa: E402
DIG = os.path.join(HERE, "digits")
ONLY = os.path.join(HERE, "..", "conformance", "opencl-only.xml")
ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
ap.add_argument("--il-shim", help="tests/e2e/ocl_il_shim.c built: a driver that takes SPIR-V")
A = ap.parse_args()
W = tempfile.mkdtemp(prefix="moss-opencl-")
ENV = dict(os.environ, POCL_CACHE_DIR=os.path.join(W, "pocl"), MOSS_CACHE_DIR="off")
fails = 0


def fail(msg):
    global fails
    print("FAIL " + msg)
    fails += 1


def compile_run(model, target, x, tag, env=None, ok=True):
    art = os.path.join(W, tag + ".moss")
    shape = "input=" + "x".join(str(d) for d in x.shape)
    subprocess.run([A.moss, "compile", os.path.join(DIG, model + ".onnx"), "--input-shape", shape, "--target",
                    target, "-o", art, "-q"], check=True, env=ENV)
    xp = os.path.join(W, tag + "_x.npy")
    np.save(xp, x)
    out = os.path.join(W, tag + "_out")
    p = subprocess.run([A.moss, "run", art, xp, "-o", out], capture_output=True, text=True, env=env or ENV)
    if not ok:
        return p
    if p.returncode != 0:
        fail("%s: moss run failed: %s" % (tag, p.stderr.strip()[:400]))
        return None
    return np.load(os.path.join(out, "output_0.npy"))


y_test = np.load(os.path.join(DIG, "y_test.npy"))
acc_torch = dict(l.split() for l in open(os.path.join(DIG, "accuracy.txt")) if l.strip())
xs = {"mlp": np.load(os.path.join(DIG, "x_test_mlp.npy")), "cnn": np.load(os.path.join(DIG, "x_test_cnn.npy"))}

for m in ("mlp", "cnn", "mlp_pruned90"):
    x = xs[m.split("_")[0]]
    y = compile_run(m, ONLY, x, m)
    if y is None:
        continue
    ref = np.load(os.path.join(DIG, m + "_ref.npy"))
    err = np.abs(y.astype(np.float64) - ref)
    if not np.all(err <= 1e-5 + 1e-4 * np.abs(ref)):
        fail("%s: logits differ from torch's by up to %g" % (m, err.max()))
    acc = float(np.mean(np.argmax(y, axis=1) == y_test))
    if m in acc_torch and abs(acc - float(acc_torch[m])) > 1e-6:
        fail("%s: accuracy %.6f, torch %.6f" % (m, acc, float(acc_torch[m])))
    print("%s on OpenCL: max |moss - torch| %.3g, accuracy %.6f" % (m, err.max(), acc))

for m in ("mlp_qdq", "cnn_qdq", "cnn_qdq_pc"):
    x = xs[m.split("_")[0]]
    y = compile_run(m, ONLY, x, m)
    if y is None:
        continue
    for cpu in ("host", "c99"):
        yc = compile_run(m, cpu, x, m + "_" + cpu)
        if yc is not None and y.tobytes() != yc.tobytes():
            fail("%s: OpenCL and %s differ (max %g)" % (m, cpu, np.abs(y - yc).max()))
    scale, zp = [float(l.split()[1]) for l in open(os.path.join(DIG, m + "_qparams.txt"))]
    q = np.round(y / scale + zp)
    dq = np.abs(q - np.load(os.path.join(DIG, m + "_ref_q.npy")).astype(np.float64))
    if dq.max() > 1:
        fail("%s: %d logits more than one integer step from torch's" % (m, int((dq > 1).sum())))
    print("%s on OpenCL: the same bits as host and c99; max %d steps from torch" % (m, int(dq.max())))

# The SPIR-V form of every blob of those bundles, checked by SPIRV-Tools'
# own command-line tools: each blob's code is u64 text length, the OpenCL C,
# zeros to 4 bytes, then the SPIR-V module's words.
nspv = 0
for m in ("mlp", "cnn", "mlp_pruned90", "mlp_qdq", "cnn_qdq", "cnn_qdq_pc"):
    art = os.path.join(W, m + ".moss")
    if not os.path.exists(art):
        continue
    for k, b in enumerate(gpu_blobs.blobs(art)):
        if b["magic"] != b"MOCL" or b["version"] != 3:
            fail("%s: blob %d is %r version %d, not an OpenCL blob of version 2" % (m, k, b["magic"], b["version"]))
            continue
        text, spv = gpu_blobs.opencl_forms(b)
        if not text.startswith(b"/* moss: OpenCL C 1.2 program */") or b"__kernel void moss_k0(" not in text:
            fail("%s: blob %d: its text is no OpenCL C program: %r" % (m, k, text[:80]))
        if len(spv) < 20 or struct.unpack_from("<I", spv, 0)[0] != 0x07230203:
            fail("%s: blob %d carries no SPIR-V module (%d bytes)" % (m, k, len(spv)))
            continue
        f = os.path.join(W, "%s_%d.spv" % (m, k))
        open(f, "wb").write(spv)
        p = subprocess.run(["spirv-val", "--target-env", "opencl1.2", f], capture_output=True, text=True)
        if p.returncode != 0:
            fail("%s: blob %d: spirv-val: %s" % (m, k, (p.stdout + p.stderr).strip()[:600]))
        dis = subprocess.run(["spirv-dis", f], capture_output=True, text=True).stdout
        names = re.findall(r'OpEntryPoint Kernel %\w+ "(moss_k\d+)"', dis)
        want = ["moss_k%d" % i for i in range(len(b["items"]))]
        if sorted(names) != sorted(want):
            fail("%s: blob %d: kernel entry points %s, the blob has %d kernels" % (m, k, names, len(b["items"])))
        if "OpMemoryModel Physical64 OpenCL" not in dis or "; Version: 1.0" not in dis:
            fail("%s: blob %d: not a SPIR-V 1.0 module for OpenCL (Physical64)" % (m, k))
        nspv += 1
print("SPIR-V: %d modules pass spirv-val --target-env opencl1.2, each with its kernels' entry points" % nspv)

# PoCL takes no SPIR-V: the source is built (the same bits when forced),
# and a run forced to SPIR-V says why it cannot.
x = xs["mlp"][:5]
ya = compile_run("mlp", ONLY, x, "form_auto")
ys = compile_run("mlp", ONLY, x, "form_source", env=dict(ENV, MOSS_OPENCL_CODE="source"))
if ya is None or ys is None or ya.tobytes() != ys.tobytes():
    fail("MOSS_OPENCL_CODE=source: other results than the default's")
p = compile_run("mlp", ONLY, x, "form_spirv", env=dict(ENV, MOSS_OPENCL_CODE="spirv"), ok=False)
if p.returncode == 0 or "MOSS_OPENCL_CODE=spirv: device" not in p.stderr or "takes no SPIR-V" not in p.stderr:
    fail("MOSS_OPENCL_CODE=spirv on a device without IL: status %d, %r" % (p.returncode, p.stderr))
p = compile_run("mlp", ONLY, x, "form_bad", env=dict(ENV, MOSS_OPENCL_CODE="ptx"), ok=False)
if p.returncode == 0 or "MOSS_OPENCL_CODE='ptx': source, spirv or auto" not in p.stderr:
    fail("MOSS_OPENCL_CODE=ptx: status %d, %r" % (p.returncode, p.stderr))
# No translator: the compile names the package.
p = subprocess.run([A.moss, "compile", os.path.join(DIG, "mlp.onnx"), "--input-shape", "input=2x64", "--target", ONLY,
                    "-o", os.path.join(W, "notool.moss")], capture_output=True, text=True,
                   env=dict(ENV, MOSS_LLVM_SPIRV=os.path.join(W, "llvm-spirv-15")))
if p.returncode == 0 or "llvm-spirv-15 not found: install Debian's llvm-spirv-15" not in p.stderr:
    fail("no llvm-spirv-15: status %d, %r" % (p.returncode, p.stderr))

# The GPU with the host CPU beside it: placement, transfers, the same logits.
x = xs["cnn"][:7]
y = compile_run("cnn", "opencl-gpu", x, "cnn_mixed")
y1 = compile_run("cnn", ONLY, x, "cnn_only7")
if y is not None and y1 is not None and not np.allclose(y, y1, rtol=1e-4, atol=1e-5):
    fail("cnn on opencl-gpu differs from opencl-only")
ex = subprocess.run([A.moss, "compile", os.path.join(DIG, "cnn.onnx"), "--input-shape", "input=7x1x8x8", "--target",
                     "opencl-gpu", "-o", os.path.join(W, "ex.moss"), "--explain"], capture_output=True, text=True,
                    check=True, env=ENV).stdout
if "-> gpu" not in ex or "transfer 'input'" not in ex:
    fail("opencl-gpu: --explain shows no node on the gpu or no transfer:\n" + ex)

# Errors, each with its cause named.
p = compile_run("mlp", ONLY, xs["mlp"][:2], "nodev", env=dict(ENV, MOSS_DEVICE="no-such-device-xyz"), ok=False)
if p.returncode == 0 or "no OpenCL device whose name contains MOSS_DEVICE='no-such-device-xyz'" not in p.stderr:
    fail("MOSS_DEVICE naming no device: status %d, %r" % (p.returncode, p.stderr))
p = compile_run("mlp", ONLY, xs["mlp"][:2], "nolib", env=dict(ENV, MOSS_OPENCL_LIBRARY=os.path.join(W, "none.so")),
                ok=False)
if p.returncode == 0 or "cannot load the OpenCL ICD loader" not in p.stderr:
    fail("no ICD loader: status %d, %r" % (p.returncode, p.stderr))

# The program cache: a run stores the built program under MOSS_CACHE_DIR; the
# next one loads it (a load that fails stores the file again, so an
# untouched file means it was used); a damaged file is not given to the
# driver but rebuilt and stored again, with the same results.
cache = os.path.join(W, "cache")
cenv = dict(ENV, MOSS_CACHE_DIR=cache)
x = xs["mlp"][:5]
y0 = compile_run("mlp", ONLY, x, "cache0", env=dict(ENV))
y1 = compile_run("mlp", ONLY, x, "cache1", env=cenv)
files = sorted(os.listdir(cache)) if os.path.isdir(cache) else []
if len(files) != 1 or not files[0].startswith("opencl-source-") or not files[0].endswith(".bin"):
    fail("program cache: files %s after one run" % files)
else:
    f = os.path.join(cache, files[0])
    st1, good = os.stat(f).st_mtime_ns, open(f, "rb").read()
    y2 = compile_run("mlp", ONLY, x, "cache2", env=cenv)
    if os.stat(f).st_mtime_ns != st1 or open(f, "rb").read() != good:
        fail("program cache: the second run did not use the stored program")
    bad = bytearray(good)
    for i in range(len(bad) // 2, len(bad), 5):
        bad[i] ^= 0x5A
    open(f, "wb").write(bytes(bad))
    y3 = compile_run("mlp", ONLY, x, "cache3", env=cenv)
    if open(f, "rb").read() != good:
        fail("program cache: a damaged file was not rebuilt and stored again")
    for name, y in (("cached", y1), ("loaded", y2), ("rebuilt", y3)):
        if y is None or y0 is None or y.tobytes() != y0.tobytes():
            fail("program cache: the %s program's results differ" % name)
    # The key has the form: a run forced to SPIR-V finds no program of its
    # own (it fails on PoCL, which takes none) and leaves the source's.
    p = compile_run("mlp", ONLY, x, "cache4", env=dict(cenv, MOSS_OPENCL_CODE="spirv"), ok=False)
    if p.returncode == 0 or sorted(os.listdir(cache)) != files or open(f, "rb").read() != good:
        fail("program cache: a run forced to SPIR-V used or changed the source's program (status %d, files %s)"
             % (p.returncode, sorted(os.listdir(cache))))
    print("program cache: stored by form, loaded, a damaged file rebuilt; the same bits each time")

# The SPIR-V form through libmossrt, on a device that takes SPIR-V: PoCL
# behind ocl_il_shim (cl_khr_il_program; the module read back to SPIR
# bitcode by llvm-spirv-15 -r). The executor picks the SPIR-V by itself;
# the float models give torch's logits, the int8 ones the CPU's bits, and
# the program cache stores and reloads the SPIR-V's program.
if A.il_shim:
    cache = os.path.join(W, "il_cache")
    il_env = dict(ENV, MOSS_OPENCL_LIBRARY=A.il_shim, MOSS_CACHE_DIR=cache)
    for m in ("mlp", "cnn", "mlp_pruned90", "mlp_qdq", "cnn_qdq", "cnn_qdq_pc"):
        art, xp = os.path.join(W, m + ".moss"), os.path.join(W, m + "_x.npy")
        if not os.path.exists(art):
            continue
        ys = []
        for k in range(2):  # built from the SPIR-V, then from the cache
            out = os.path.join(W, "%s_il%d" % (m, k))
            p = subprocess.run([A.moss, "run", art, xp, "-o", out], capture_output=True, text=True, env=il_env)
            if p.returncode != 0:
                fail("%s, SPIR-V form (run %d): %s" % (m, k, p.stderr.strip()[:600]))
                break
            ys.append(np.load(os.path.join(out, "output_0.npy")))
        if len(ys) < 2:
            continue
        if ys[0].tobytes() != ys[1].tobytes():
            fail("%s, SPIR-V form: the cached program gives other results" % m)
        if "qdq" in m:
            yc = np.load(os.path.join(W, m + "_host_out", "output_0.npy"))
            if ys[0].tobytes() != yc.tobytes():
                fail("%s, SPIR-V form: other bits than host's (max %g)" % (m, np.abs(ys[0] - yc).max()))
        else:
            ref = np.load(os.path.join(DIG, m + "_ref.npy"))
            err = np.abs(ys[0].astype(np.float64) - ref)
            if not np.all(err <= 1e-5 + 1e-4 * np.abs(ref)):
                fail("%s, SPIR-V form: logits differ from torch's by up to %g" % (m, err.max()))
    files = sorted(os.listdir(cache)) if os.path.isdir(cache) else []
    if not files or not all(f.startswith("opencl-spirv-") for f in files):
        fail("SPIR-V form: the program cache holds %s, not SPIR-V programs" % files)
    print("SPIR-V form through libmossrt (PoCL behind a SPIR-V front end): torch's logits, the CPU's int8 "
          "bits, %d programs cached and reloaded" % len(files))

# A graph output that no node writes (here a Constant's), on a target with
# no CPU code to copy it: refused, not left unwritten.
const = "/usr/share/libonnx-testdata/data/node/test_constant/model.onnx"
if os.path.exists(const):
    p = subprocess.run([A.moss, "compile", const, "--target", ONLY, "-o", os.path.join(W, "c.moss")],
                       capture_output=True, text=True, env=ENV)
    if p.returncode == 0 or "output 'values' is a copy of a constant or an input, and no segment" not in p.stderr:
        fail("a constant output with no CPU code: status %d, %r" % (p.returncode, p.stderr))

# valgrind's memcheck on a run of the OpenCL path (moss, libmossrt, the ICD
# loader and PoCL): no invalid read, write or use of uninitialized memory.
# A sanitized moss is checked by its sanitizers instead (valgrind cannot
# run it).
sanitized = b"__asan_init" in open(A.moss, "rb").read()
if not sanitized:
    art = os.path.join(W, "mlp.moss")
    p = subprocess.run(["valgrind", "--error-exitcode=9", "-q", A.moss, "run", art, os.path.join(W, "mlp_x.npy"), "-o",
                        os.path.join(W, "vg_out")], capture_output=True, text=True, env=ENV)
    if p.returncode != 0:
        fail("valgrind on the OpenCL path: status %d\n%s" % (p.returncode, p.stderr[-3000:]))
    else:
        print("valgrind: a run on the OpenCL path is clean")

print("opencl: %d failures" % fails)
sys.exit(1 if fails else 0)
