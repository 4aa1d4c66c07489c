#!/usr/bin/python3
"""float16 and bfloat16 (compiler/passes/half.c, compiler/kernel/lower_cast.c;
docs/kernel.md "Half precision"): stored in 16 bits, computed in float32,
converted by Cast with one rounding to nearest even.

Each case is a small ONNX graph; what it must give comes from numpy, not
from moss:

  - Cast float32 -> float16 and float64 -> float16 on values chosen to hit
    every branch (ties to even in the normal and the subnormal range, the
    overflow threshold 65520, the smallest subnormal's half, infinities,
    NaN, float32 subnormals, random magnitudes from 1e-10 to 1e6): numpy's
    astype(float16), bit for bit (a NaN: any NaN);
  - Cast float16 -> float32 and -> float64 on all 65,536 float16 bit
    patterns: numpy's astype, exactly;
  - Cast float32 -> bfloat16: round to nearest even on float32's bits, the
    rule worked out here in integer numpy ((u + 0x7fff + bit 16 of u) >> 16;
    a NaN stays a NaN); bfloat16 -> float32 on all 65,536 patterns: the
    bits shifted up 16;
  - int32 -> float16: numpy's astype;
  - float16 arithmetic (Add, Mul, Div, Sqrt, Relu, Max, Where): numpy's
    float16 ufuncs, which round each result to float16 once, as moss does,
    so bit for bit;
  - a float16 MatMul (K = 48): within one float16 unit in the last place
    of the float64 product rounded to float16 (moss accumulates in float32
    and rounds once; a sum near a rounding tie may land on the other side).

  - the same arithmetic on a Vulkan device that lists Float16 and
    StorageBuffer16BitAccess (vulkan-f16-only.xml): computed in float16
    itself (the IR's Mul reads the float16 inputs, the SPIR-V declares
    16-bit floats and the Float16 capability), the same bits; without
    them (vulkan-only.xml) through float32; for an NVIDIA GPU of sm_53 and
    up, f16 instructions in the PTX, which ptxas takes.

Every case runs on host (LLVM), c99 (--emit c), OpenCL (PoCL), Vulkan
and Vulkan with Float16 (lavapipe) through libmossrt, but the float64 ones on OpenCL, whose backend
has no float64 (OpenCL C 1.2 here); the PTX of the casts passes ptxas. bfloat16
files are uint16 .npy of the bits (numpy has no bfloat16).

  test_half.py --moss build/moss
"""
import argparse
import os
import re
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as H

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_blobs import blobs, find_ptxas, ptxas_refusals  # noqa: E402
from model_dir import compile_run, work_env  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CONF = os.path.join(HERE, "..", "conformance")
ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
A = ap.parse_args()
W, ENV, ENV_CL = work_env("moss-half-")
TARGETS = [("host", "host", "bundle"), ("c99", "c99", "c"),
           ("opencl", os.path.join(CONF, "opencl-only.xml"), "bundle"),
           ("vulkan", os.path.join(CONF, "vulkan-only.xml"), "bundle"),
           ("vulkan-f16", os.path.join(CONF, "vulkan-f16-only.xml"), "bundle")]
PTX = os.path.join(CONF, "ptx-only.xml")
PTXAS = find_ptxas()
rng = np.random.default_rng(16)
np.seterr(all="ignore")  # numpy's float16 overflow warnings: infinities are wanted here
fails = 0


def fail(msg):
    global fails
    print("FAIL " + msg)
    fails += 1


ONNX_TYPE = {"f32": TP.FLOAT, "f64": TP.DOUBLE, "f16": TP.FLOAT16, "bf16": TP.BFLOAT16, "i32": TP.INT32}
NP = {"f32": np.float32, "f64": np.float64, "f16": np.float16, "bf16": np.uint16, "i32": np.int32}


def model(name, nodes, ins, outs):
    """|ins| and |outs|: [(name, type key, shape)]."""
    g = H.make_graph(nodes, name, [H.make_tensor_value_info(n, ONNX_TYPE[t], s) for n, t, s in ins],
                     [H.make_tensor_value_info(n, ONNX_TYPE[t], s) for n, t, s in outs])
    m = H.make_model(g, opset_imports=[H.make_opsetid("", 13)])
    m.ir_version = 8
    d = os.path.join(W, name)
    os.makedirs(d, exist_ok=True)
    onnx.save(m, d + "/model.onnx")
    return d


def run(d, xs, tag, target, emit):
    for k, v in xs.items():
        np.save("%s/%s.npy" % (d, k), v)
    y, why = compile_run(A.moss, d, target, emit, list(xs), tag, ENV, ENV_CL if tag == "opencl" else ENV)
    if why:
        fail("%s on %s: %s" % (os.path.basename(d), tag, why))
    return y


def bits_equal(name, tag, y, want):
    """Bit for bit, any NaN matching any NaN (floats); |want|'s dtype is the
    file's: float16, or uint16 for bfloat16 bits."""
    if y.dtype != want.dtype or y.shape != want.shape:
        fail("%s on %s: %s %s, want %s %s" % (name, tag, y.dtype, y.shape, want.dtype, want.shape))
        return
    if want.dtype == np.uint16:  # bfloat16: a NaN is exponent 0xff with a fraction
        nan_w = ((want & 0x7f80) == 0x7f80) & ((want & 0x7f) != 0)
        nan_y = ((y & 0x7f80) == 0x7f80) & ((y & 0x7f) != 0)
        same = (y == want) | (nan_w & nan_y)
    elif want.dtype.kind == "f":
        same = (y.view("u%d" % want.dtype.itemsize) == want.view("u%d" % want.dtype.itemsize)) | \
               (np.isnan(y) & np.isnan(want))
    else:
        same = y == want
    if not same.all():
        i = int(np.argmin(same.ravel()))
        fail("%s on %s: %d of %d differ; first at %d: got %r, want %r" % (
            name, tag, int((~same).sum()), same.size, i, y.ravel()[i], want.ravel()[i]))


def case(name, nodes, ins, out, xs, want, check=bits_equal, ptx=False):
    d = model(name, nodes, ins, [out])
    f64 = any(t == "f64" for _, t, _ in ins + [out])
    for tag, target, emit in TARGETS:
        if f64 and tag == "opencl":  # the OpenCL backend has no float64 (docs/opencl.md)
            continue
        y = run(d, xs, tag, target, emit)
        if y is not None:
            check(name, tag, y, want)
    if ptx and PTXAS:
        art = d + "/ptx.moss"
        p = subprocess.run([A.moss, "compile", d + "/model.onnx", "--target", PTX, "-o", art, "-q"],
                           capture_output=True, text=True, env=ENV)
        if p.returncode != 0:
            fail("%s for PTX: compile failed: %s" % (name, p.stderr.strip()[-300:]))
        else:
            for k, why in ptxas_refusals(PTXAS, art, d):
                fail("%s: ptxas refuses module %d: %s" % (name, k, why[:300]))
    print("%s: checked on %s%s" % (name, ", ".join(t for t, _, _ in TARGETS if not (f64 and t == "opencl")),
                                   " and ptxas" if ptx and PTXAS else ""))


def cast_node(to):
    return [H.make_node("Cast", ["x"], ["y"], to=ONNX_TYPE[to])]


if not PTXAS:
    fail("no ptxas (the CUDA toolkit in /usr/local/cuda)")


# ---- the values that hit every branch of the conversion to float16
def edge_values():
    one = 1.0
    ulp1 = 2.0 ** -10
    sub = 2.0 ** -24  # the smallest float16 subnormal
    v = [0.0, -0.0, np.inf, -np.inf, np.nan, 65504.0, 65519.99, 65520.0, -65520.0, 65535.0, 1e6,
         one + ulp1 / 2, one + 3 * ulp1 / 2, -(one + ulp1 / 2), 2.0 ** -14, 2.0 ** -14 * (1 - 2.0 ** -11),
         sub / 2, 3 * sub / 2, 5 * sub / 2, sub / 2 * 1.0000001, sub * 1023.5, sub * 1022.5, 2.0 ** -30, 1e-45,
         -sub / 2, 6.1e-5, 0.1, 1 / 3.0, 2048.5, 2049.0, 4097.0, 65503.0]
    r = rng.uniform(-10, 6, 3000)
    m = 10.0 ** r * rng.choice([-1.0, 1.0], r.size)
    return np.concatenate([np.array(v), m])


x32 = edge_values().astype(np.float32)
# float32 values exactly halfway between two float16 values, in every binade
k = rng.integers(0, 1024, 400)
e = rng.integers(-14, 16, 400)
ties = ((1024 + k + 0.5) * 2.0 ** (e - 10)).astype(np.float32)
x32 = np.concatenate([x32, ties, -ties])
case("cast_f32_f16", cast_node("f16"), [("x", "f32", [x32.size])], ("y", "f16", [x32.size]),
     {"x": x32}, x32.astype(np.float16), ptx=True)

x64 = np.concatenate([edge_values(), ties.astype(np.float64) * (1 + 2.0 ** -40),
                      ties.astype(np.float64) * (1 - 2.0 ** -40)])
case("cast_f64_f16", cast_node("f16"), [("x", "f64", [x64.size])], ("y", "f16", [x64.size]),
     {"x": x64}, x64.astype(np.float16))

allh = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
case("cast_f16_f32", cast_node("f32"), [("x", "f16", [65536])], ("y", "f32", [65536]),
     {"x": allh}, allh.astype(np.float32), ptx=True)
case("cast_f16_f64", cast_node("f64"), [("x", "f16", [65536])], ("y", "f64", [65536]),
     {"x": allh}, allh.astype(np.float64))

u = x32.view(np.uint32).astype(np.uint64)
bf = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
bf = np.where(np.isnan(x32), ((u >> 16) | 0x40).astype(np.uint16), bf)
case("cast_f32_bf16", cast_node("bf16"), [("x", "f32", [x32.size])], ("y", "bf16", [x32.size]),
     {"x": x32}, bf, ptx=True)
allb = np.arange(65536, dtype=np.uint32).astype(np.uint16)
case("cast_bf16_f32", cast_node("f32"), [("x", "bf16", [65536])], ("y", "f32", [65536]),
     {"x": allb}, (allb.astype(np.uint32) << 16).view(np.float32))

xi = np.concatenate([np.arange(-3000, 3000, 7), [65504, 65519, 65520, 70000, -70000, 2 ** 31 - 1, -2 ** 31,
                                                  2049, 2051, 4097, 4099]]).astype(np.int32)
case("cast_i32_f16", cast_node("f16"), [("x", "i32", [xi.size])], ("y", "f16", [xi.size]),
     {"x": xi}, xi.astype(np.float16))

# ---- arithmetic in float16
n = 4096
a = (rng.standard_normal(n) * 30).astype(np.float16)
b = (rng.standard_normal(n) * 3).astype(np.float16)
b[b == 0] = np.float16(0.5)
ops = [H.make_node("Mul", ["a", "b"], ["m"]), H.make_node("Add", ["m", "a"], ["s"]),
       H.make_node("Div", ["s", "b"], ["q"]), H.make_node("Abs", ["q"], ["aq"]),
       H.make_node("Sqrt", ["aq"], ["r"]), H.make_node("Sub", ["r", "b"], ["t"]),
       H.make_node("Relu", ["t"], ["u"]), H.make_node("Max", ["u", "b"], ["v"]),
       H.make_node("Less", ["a", "b"], ["c"]), H.make_node("Where", ["c", "v", "a"], ["y"])]
with np.errstate(all="ignore"):
    m_ = a * b
    s_ = m_ + a
    q_ = s_ / b
    r_ = np.sqrt(np.abs(q_))
    t_ = r_ - b
    v_ = np.maximum(np.maximum(t_, np.float16(0)), b)
    want = np.where(a < b, v_, a)
case("arith_f16", ops, [("a", "f16", [n]), ("b", "f16", [n])], ("y", "f16", [n]), {"a": a, "b": b}, want)

# ---- the same computed in float16 itself, on a Vulkan device that lists
# Float16 and StorageBuffer16BitAccess (passes/half.c, moss_node.native_half):
# the IR's Mul reads the float16 inputs, the SPIR-V declares 16-bit floats,
# and the bits are numpy's (checked above, target vulkan-f16); on
# vulkan-only the Casts to float32 stay
d = os.path.join(W, "arith_f16")
for tag, xml, native in (("vulkan-f16", "vulkan-f16-only.xml", True), ("vulkan", "vulkan-only.xml", False)):
    art = os.path.join(d, "native-%s.moss" % tag)
    p = subprocess.run([A.moss, "compile", d + "/model.onnx", "--target", os.path.join(CONF, xml), "-o", art,
                        "--dump-ir"], capture_output=True, text=True, env=ENV)
    if p.returncode != 0:
        fail("arith_f16 native on %s: %s" % (tag, p.stderr.strip()[-300:]))
        continue
    in_ir = "m:float16[4096]" in p.stdout and "= Mul(%a, %b)" in p.stdout
    spv = b"".join(b["source"] for b in blobs(art))
    words = np.frombuffer(spv[:len(spv) // 4 * 4], dtype="<u4")
    # OpTypeFloat (opcode 22, 3 words) of width 16, and OpCapability Float16 (17, 2 words: 9)
    f16_type = bool(np.any((words[:-2] == (3 << 16 | 22)) & (words[2:] == 16)))
    f16_cap = bool(np.any((words[:-1] == (2 << 16 | 17)) & (words[1:] == 9)))
    if (in_ir, f16_type, f16_cap) != (native, native, native):
        fail("arith_f16 on %s: float16 computed as such %s (IR %s, OpTypeFloat 16 %s, Float16 capability %s)"
             % (tag, "wanted" if native else "not wanted", in_ir, f16_type, f16_cap))
    else:
        print("arith_f16: %s float16 on %s" % ("computed in" if native else "through float32, not", tag))
# and for an NVIDIA GPU of sm_53 and up (ptx-only.xml: sm_90): f16 instructions
# in the PTX, which ptxas takes (nothing runs CUDA here)
if PTXAS:
    art = os.path.join(d, "native-ptx.moss")
    p = subprocess.run([A.moss, "compile", d + "/model.onnx", "--target", PTX, "-o", art, "--dump-ir"],
                       capture_output=True, text=True, env=ENV)
    if p.returncode != 0:
        fail("arith_f16 native for PTX: %s" % p.stderr.strip()[-300:])
    else:
        ptx = b"".join(b["source"] for b in blobs(art)).decode("latin-1")
        ops16 = sorted(set(re.findall(r"\b(add|sub|mul|max|min)(?:\.rn)?\.f16\b", ptx)))
        if "m:float16[4096]" not in p.stdout or "= Mul(%a, %b)" not in p.stdout or "mul" not in ops16:
            fail("arith_f16 for PTX: not computed in float16 (IR %s, f16 instructions %s)"
                 % ("m:float16[4096]" in p.stdout, ops16))
        for k, why in ptxas_refusals(PTXAS, art, d):
            fail("arith_f16 for PTX: ptxas refuses module %d: %s" % (k, why[:300]))
        print("arith_f16: computed in float16 for PTX (%s.f16), ptxas takes it" % "/".join(ops16))


# ---- a float16 MatMul: within one unit in the last place of float16
def within_ulp(name, tag, y, want):
    if y.dtype != np.float16 or y.shape != want.shape:
        fail("%s on %s: %s %s" % (name, tag, y.dtype, y.shape))
        return
    err = np.abs(y.astype(np.float64) - want.astype(np.float64))
    lim = np.spacing(np.abs(want)).astype(np.float64)
    if not np.all(err <= lim):
        i = int(np.argmax(err - lim))
        fail("%s on %s: at %d got %r, want %r (one ulp %r)" % (name, tag, i, y.ravel()[i], want.ravel()[i],
                                                              lim.ravel()[i]))


xa = rng.standard_normal((8, 48)).astype(np.float16)
xb = rng.standard_normal((48, 16)).astype(np.float16)
case("matmul_f16", [H.make_node("MatMul", ["a", "b"], ["y"])], [("a", "f16", [8, 48]), ("b", "f16", [48, 16])],
     ("y", "f16", [8, 16]), {"a": xa, "b": xb},
     (xa.astype(np.float64) @ xb.astype(np.float64)).astype(np.float16), check=within_ulp)

print("test_half: %s" % ("FAILED (%d)" % fails if fails else "ok"))
sys.exit(1 if fails else 0)
