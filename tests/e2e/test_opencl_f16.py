#!/usr/bin/python3
"""float16 arithmetic on the OpenCL backend (backends/opencl, passes/half.c)
for a device whose target lists cl_khr_fp16
(tests/conformance/opencl-f16-only.xml):

- a Conv (3x3, pads 1, Relu) and a Gemm named by --float16, and a graph
  of float16 tensors (Add, Sub, Mul, Div, Sqrt, Max, Min, Neg, Abs, Relu),
  compute in float16 itself: the IR's nodes read float16, the OpenCL C
  enables cl_khr_fp16 and declares half, and the float16 kernels turn off
  contraction (no fused multiply-add, so the bits do not depend on the
  driver);
- the OpenCL C compiles with clang (Debian's clang-14, an OpenCL C
  compiler) for spir64 with cl_khr_fp16, and clang refuses it without;
- the SPIR-V form declares Float16 and passes spirv-val (SPIR-V's core
  rules: SPIRV-Tools' OpenCL environments do not know that cl_khr_fp16
  allows Float16; moss checks the rest against OpenCL 1.2's);
- the results, bit for bit, are numpy's float16 arithmetic in the GPU
  kernels' order (docs/kernel.md: the Conv from its bias, channel by
  channel, tap by tap, the taps outside the image skipped; the Gemm from 0
  along k, then its bias; Div and Sqrt in float32, rounded once). No
  device here reports cl_khr_fp16 (PoCL 3.1 does not), so each form runs
  on PoCL as SPIR 1.2 bitcode, whose half operations PoCL's LLVM rounds to
  float16: the OpenCL C compiled by clang-14 (outside libmossrt), and the
  SPIR-V through libmossrt behind --il-shim (tests/e2e/ocl_il_shim.c: PoCL
  behind a front end that takes SPIR-V, reads it back with llvm-spirv-15
  -r and, with MOSS_SHIM_FP16=1, reports cl_khr_fp16); forced to the
  source there, PoCL's OpenCL C compiler refuses half, and the error
  carries the driver's build log;
- libmossrt refuses the bundle on plain PoCL, naming cl_khr_fp16;
- the same model for opencl-only.xml (no cl_khr_fp16) runs through
  libmossrt on PoCL, in float32 between the float16 roundings: within one
  float16 rounding of that reference.

  test_opencl_f16.py --moss build/moss --il-shim build/tests/libmoss_ocl_il_shim.so
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gpu_blobs  # noqa: E402
import npref  # noqa: E402
CONF = os.path.join(HERE, "..", "conformance")
F16 = os.path.join(CONF, "opencl-f16-only.xml")
ONLY = os.path.join(CONF, "opencl-only.xml")
ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
ap.add_argument("--il-shim", required=True, help="tests/e2e/ocl_il_shim.c built: a driver that takes SPIR-V")
A = ap.parse_args()
W = tempfile.mkdtemp(prefix="moss-opencl-f16-")
ENV = dict(os.environ, POCL_CACHE_DIR=os.path.join(W, "pocl"), MOSS_CACHE_DIR="off")
h = np.float16
fails = 0


def fail(msg):
    global fails
    print("FAIL " + msg)
    fails += 1


def sh(cmd, env=None):
    return subprocess.run(cmd, capture_output=True, text=True, env=env or ENV)


def save(graph, name):
    import onnx
    from onnx import helper as H
    m = H.make_model(graph, opset_imports=[H.make_opsetid("", 13)])
    m.ir_version = 8
    path = os.path.join(W, name + ".onnx")
    onnx.save(m, path)
    return path


def layers_model():
    """npref's Conv 2->3 channels (3x3, pads 1, Relu) and Gemm to 4, and
    numpy's float16 result in the GPU kernels' order (tap by tap), and in
    float32 between the roundings."""
    path = os.path.join(W, "layers.onnx")
    x, p16 = npref.half_layers_model(path, 7, 2, 5, 3, 4)
    return path, [x], npref.half_layers_f16(p16, row_sums=False), npref.half_layers_f32(p16)


def arith_model():
    """float16 tensors in and out: Add, Sub, Mul, Div, Sqrt, Max, Min, Neg,
    Abs, Relu, and numpy's float16 ufuncs (each result rounded once)."""
    from onnx import TensorProto as TP, helper as H
    n = 2048
    rng = np.random.default_rng(11)
    a = (rng.standard_normal(n) * 20).astype(h)
    b = (rng.standard_normal(n) * 3).astype(h)
    b[b == 0] = h(0.25)
    nodes = [H.make_node("Mul", ["a", "b"], ["m"]), H.make_node("Div", ["m", "b2"], ["q"]),
             H.make_node("Add", ["q", "a"], ["s"]), H.make_node("Sub", ["s", "b"], ["t"]),
             H.make_node("Abs", ["t"], ["u"]), H.make_node("Sqrt", ["u"], ["r"]),
             H.make_node("Neg", ["r"], ["v"]), H.make_node("Max", ["v", "b"], ["w"]),
             H.make_node("Min", ["w", "a"], ["z"]), H.make_node("Relu", ["z"], ["y"]),
             H.make_node("Mul", ["b", "b"], ["b2"])]
    vi = lambda nm: H.make_tensor_value_info(nm, TP.FLOAT16, [n])  # noqa: E731
    g = H.make_graph(nodes, "arith_f16", [vi("a"), vi("b")], [vi("y")])
    with np.errstate(all="ignore"):
        b2 = b * b
        q = (a * b).astype(np.float32) / b2.astype(np.float32)
        t = (q.astype(h) + a) - b
        r = np.sqrt(np.abs(t).astype(np.float32)).astype(h)
        y = np.maximum(np.minimum(np.maximum(-r, b), a), h(0))
    return save(g, "arith"), [a, b], y


def compile_for(path, target, name, extra=()):
    out = os.path.join(W, name + ".moss")
    p = sh([A.moss, "compile", path, "--target", target, "-o", out, "-q", "--dump-ir"] + list(extra))
    if p.returncode != 0:
        fail("%s: compile: %s" % (name, p.stderr.strip()[-600:]))
        return None, ""
    return out, p.stdout


def clang_spir(text, name, fp16=True):
    """clang-14's SPIR 1.2 bitcode of the OpenCL C |text| (None, and its
    message, when clang refuses it)."""
    src, bc = os.path.join(W, name + ".cl"), os.path.join(W, name + ".bc")
    open(src, "wb").write(text)
    p = sh(["clang-14", "-x", "cl", "-cl-std=CL1.2", "-target", "spir64", "-Xclang", "-finclude-default-header",
            "-Xclang", "-cl-ext=%scl_khr_fp16" % ("+" if fp16 else "-"), "-O0", "-c", "-emit-llvm", "-o", bc, src])
    return (open(bc, "rb").read(), "") if p.returncode == 0 else (None, p.stderr)


def spirv_dis(spv, name):
    """The SPIR-V module |spv| checked by spirv-val (SPIR-V 1.0's core
    rules): (True, its disassembly) or (False, why)."""
    f = os.path.join(W, name + ".spv")
    open(f, "wb").write(spv)
    p = sh(["spirv-val", "--target-env", "spv1.0", f])
    if p.returncode != 0:
        return False, "spirv-val: " + (p.stdout + p.stderr).strip()[:600]
    return True, sh(["spirv-dis", f]).stdout


def bits_equal(got, want, dt):
    u = np.uint16 if dt == h else np.uint32
    return got.shape == want.shape and np.array_equal(got.astype(dt).view(u), want.astype(dt).view(u))


def via_shim(name, art, inputs, want, out_dtype):
    """|art| through libmossrt on PoCL behind ocl_il_shim, reporting
    cl_khr_fp16: the SPIR-V form, numpy's bits; the source form refused by
    PoCL's compiler, with its build log."""
    env = dict(ENV, MOSS_OPENCL_LIBRARY=A.il_shim, MOSS_SHIM_FP16="1")
    names = []
    for k, x in enumerate(inputs):
        names.append(os.path.join(W, "%s_in%d.npy" % (name, k)))
        np.save(names[-1], x)
    out = os.path.join(W, name + "_shim")
    p = sh([A.moss, "run", art] + names + ["-o", out], env=env)
    if p.returncode != 0:
        fail("%s through libmossrt (SPIR-V form, cl_khr_fp16 reported): %s" % (name, p.stderr.strip()[:600]))
    else:
        got = np.load(os.path.join(out, "output_0.npy"))
        if not bits_equal(got, want, out_dtype):
            fail("%s through libmossrt (SPIR-V form): %r, want numpy's float16 %r"
                 % (name, got.ravel()[:6], want.ravel()[:6]))
        else:
            print("%s through libmossrt (SPIR-V form, cl_khr_fp16 reported): numpy's float16 bits" % name)
    p = sh([A.moss, "run", art] + names + ["-o", out + "_src"], env=dict(env, MOSS_OPENCL_CODE="source"))
    if p.returncode == 0 or "clBuildProgram of blob 0 (source): -11:" not in p.stderr or "half" not in p.stderr:
        fail("%s, source form on PoCL's compiler: status %d, %r" % (name, p.returncode, p.stderr.strip()[:600]))


def check_native(name, art, ir, ops, inputs, want, out_dtype):
    """The float16 program of |art| (compiled for opencl-f16-only): in the
    IR, the OpenCL C and the SPIR-V, then run in both forms on PoCL."""
    for op in ops:
        if not re.search(r":float16\[[0-9,]*\][^=]*= %s[\[(]" % op, ir):
            fail("%s: %s does not compute in float16 in the IR" % (name, op))
    blobs = gpu_blobs.blobs(art)
    if len(blobs) != 1:
        fail("%s: %d GPU blobs, want 1" % (name, len(blobs)))
        return
    text, spv = gpu_blobs.opencl_forms(blobs[0])
    body = text.split(b"*/\n", 1)[1] if text.startswith(b"/* moss: no SPIR-V") else text
    if not body.startswith(b"#pragma OPENCL EXTENSION cl_khr_fp16 : enable\ntypedef half moss_f16;\n"):
        fail("%s: the OpenCL C does not start by enabling cl_khr_fp16: %r" % (name, text[:120]))
    if b"#pragma OPENCL FP_CONTRACT OFF" not in text or b"__global const moss_f16 *x0" not in text:
        fail("%s: no float16 kernel without contraction in the OpenCL C" % name)
    runs = []
    bc, why = clang_spir(text, name)
    if bc is None:
        fail("%s: clang-14 refuses the OpenCL C with cl_khr_fp16: %s" % (name, why.strip()[:600]))
    else:
        runs.append(("OpenCL C (clang-14)", bc))
    refused, why = clang_spir(text, name + "_nofp16", fp16=False)
    if refused is not None or "half" not in why:
        fail("%s: clang-14 takes the OpenCL C without cl_khr_fp16 (so it computes in no half)" % name)
    if not spv:
        fail("%s: no SPIR-V form: %r" % (name, text[:300]))
    else:  # it runs through libmossrt below (via_shim)
        ok, dis = spirv_dis(spv, name)
        if not ok:
            fail("%s: %s" % (name, dis))
        elif "OpCapability Float16\n" not in dis or not re.search(r"OpF(Mul|Add) %half", dis):
            fail("%s: the SPIR-V form computes in no float16 (Float16 capability, OpFMul/OpFAdd on half)"
                 % name)
    for form, bc in runs:
        try:
            got = gpu_blobs.run_spir(bc, blobs[0], inputs, [out_dtype])[0].reshape(want.shape)
        except RuntimeError as e:
            fail("%s, %s form on PoCL: %s" % (name, form, e))
            continue
        if not bits_equal(got, want, out_dtype):
            bad = np.flatnonzero(got.ravel() != want.ravel())
            fail("%s, %s form on PoCL: %d of %d differ from numpy's float16 (first %s: %r, want %r)"
                 % (name, form, len(bad), got.size, bad[:3], got.ravel()[bad[:3]], want.ravel()[bad[:3]]))
        else:
            print("%s: %s form, %d values: numpy's float16 bits" % (name, form, got.size))


# ---- the two layers named by --float16
path, xs, want16, want64 = layers_model()
np.save(os.path.join(W, "x.npy"), xs[0])
art, ir = compile_for(path, F16, "layers", ["--float16", "conv,fc"])
if art:
    check_native("layers", art, ir, ("Conv", "Gemm"), xs, want16, np.float32)
    via_shim("layers", art, xs, want16, np.float32)
    p = sh([A.moss, "run", art, os.path.join(W, "x.npy"), "-o", os.path.join(W, "r_f16")])
    if p.returncode == 0 or "does not report cl_khr_fp16" not in p.stderr or "blob 0 computes in float16" not in p.stderr:
        fail("libmossrt on a device without cl_khr_fp16: status %d, %r" % (p.returncode, p.stderr.strip()))
    else:
        print("libmossrt on PoCL: " + p.stderr.strip().split("opencl: ", 1)[-1])
art, ir = compile_for(path, ONLY, "layers32", ["--float16", "conv,fc"])
if art:
    if re.search(r":float16\[[0-9,]*\][^=]*= (Conv|Gemm)[\[(]", ir):
        fail("layers32: float16 computed as such for a target without cl_khr_fp16")
    p = sh([A.moss, "run", art, os.path.join(W, "x.npy"), "-o", os.path.join(W, "r32")])
    if p.returncode != 0:
        fail("layers32: moss run: %s" % p.stderr.strip())
    else:
        got = np.load(os.path.join(W, "r32", "output_0.npy"))
        if not np.all(np.abs(got - want64) <= np.abs(want64) * 2.0 ** -10 + 2.0 ** -24):
            fail("layers32: %s, want %s within one float16 rounding" % (got, want64))
        else:
            print("layers for opencl-only (libmossrt, PoCL): float32 between the roundings, within one "
                  "float16 rounding")

# ---- float16 tensors: elementwise arithmetic
path, xs, want = arith_model()
art, ir = compile_for(path, F16, "arith")
if art:
    check_native("arith", art, ir, ("Add", "Sub", "Mul", "Div", "Sqrt", "Max", "Min", "Neg", "Abs", "Relu"), xs,
                 want, h)
    via_shim("arith", art, xs, want, h)
    text = gpu_blobs.opencl_forms(gpu_blobs.blobs(art)[0])[0]
    if b"(moss_f16)((float)" not in text or b"(moss_f16)sqrtf((float)" not in text:
        fail("arith: Div and Sqrt not through float32 in the OpenCL C")

if fails:
    print("%d failure(s)" % fails)
    sys.exit(1)
print("OK")
