#!/usr/bin/python3
"""The residual Add fused into the Conv before it (compiler/passes/fuse.c,
moss_pass_fuse_residual; docs/kernel.md "Fused epilogues"): y = act(conv(x)
+ bias + r) written once, on every path a float Conv takes. Each case is a
Conv, an Add of another tensor of the Conv's shape and, mostly, a Relu:

- compiled as it is, the graph after the "residual" pass must have no Add
  (and no Relu), and the Conv must read r;
- compiled with the Conv's output also a graph output (so nothing fuses:
  the Add and the Relu stay nodes of their own), the fused output must be
  the same bits: the fusion changes where the sum is written, not its value;
- both must match the convolution computed here in float64 numpy
  (npref.conv_ref) plus r, within the larger of DESIGN.md's float tolerance
  and the rigorous bound of a float32 sum of K products plus one addition.

Each runs on host (AVX-512 here), x86_64-avx2 and the portable C backend;
on host the kernel must show the path the case is for (--dump-kernels).
Then the shapes that must not fuse: an Add that broadcasts, a Conv whose
output has a second reader, a Conv with its own activation before the Add,
and a residual produced only after the Conv (in a ResNet block with a
shortcut Conv, the shortcut's Conv, which runs last, takes the Add).

  test_residual.py --moss build/moss
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto as TP
from onnx import helper as H

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_dir import save_model_dir  # noqa: E402
from npref import conv_ref  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
A = ap.parse_args()
W = tempfile.mkdtemp(prefix="moss-residual-")
rng = np.random.default_rng(5)
fails = 0
count = 0
HOST_SIMD = os.uname().machine in ("x86_64", "aarch64")


def have_avx2():
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    return " avx2" in flags and " fma" in flags


TARGETS = [("host", "bundle"), ("c99", "c")] + ([("x86_64-avx2", "bundle")] if have_avx2() else [])


def fail(msg):
    global fails
    print("FAIL " + msg)
    fails += 1


def save(name, nodes, inputs, inits, outputs):
    return save_model_dir(W, name, nodes, inputs, inits, [H.make_tensor_value_info(k, TP.FLOAT, s) for k, s in outputs],
                          fmt="pb")


def graph_after(d, target):
    """The IR after the residual pass, as --dump-after prints it."""
    return subprocess.run([A.moss, "compile", d + "/model.onnx", "--target", target, "-o", d + "/dump.moss",
                           "--dump-after=residual"], check=True, capture_output=True, text=True).stdout


def run(d, target, emit, inputs):
    art = "%s/%s.%s" % (d, target, "moss" if emit == "bundle" else "c")
    subprocess.run([A.moss, "compile", d + "/model.onnx", "--target", target, "--emit", emit, "-o", art, "-q"],
                   check=True)
    args = []
    for k in inputs:
        args += ["--input", "%s=%s/%s.pb" % (k, d, k)]
    out = "%s/out-%s" % (d, target)
    subprocess.run([A.moss, "run", art] + args + ["-o", out], check=True, capture_output=True)
    return np.load(out + "/output_0.npy")


def case(name, x, w, bias=None, r=None, relu=True, attrs=None, kernel=None):
    """Conv(x, w, bias) + r (r: a second graph input; None: x itself), then
    a Relu when |relu|. |kernel|: text the host kernel must show."""
    global count
    attrs = dict(attrs or {})
    pads = tuple(attrs.get("pads", (0, 0, 0, 0)))
    ref, bd = conv_ref(x, w, bias, attrs.get("strides", (1, 1)), attrs.get("dilations", (1, 1)), pads,
                       attrs.get("group", 1))
    rname = "r" if r is not None else "x"
    rv = r if r is not None else x
    ref = ref + rv
    if relu:
        ref = np.maximum(ref, 0)
    k = w.shape[1] * w.shape[2] * w.shape[3]
    eps = np.finfo(np.float32).eps
    lim = np.maximum(2 * (k + 1) * eps * (bd + np.abs(rv)), 1e-5 + 1e-4 * np.abs(ref))
    inits = {"w": w}
    if bias is not None:
        inits["bias"] = bias
    inputs = {"x": x}
    if r is not None:
        inputs["r"] = r
    conv = H.make_node("Conv", ["x", "w"] + (["bias"] if bias is not None else []), ["t"], **attrs)
    tail = [H.make_node("Add", ["t", rname], ["s" if relu else "y"])] + (
        [H.make_node("Relu", ["s"], ["y"])] if relu else [])
    shape = list(ref.shape)
    fused = save(name, [conv] + tail, inputs, inits, [("y", shape)])
    apart = save(name + "-apart", [conv] + tail, inputs, inits, [("y", shape), ("t", shape)])
    for target, emit in TARGETS:
        count += 1
        ir = graph_after(fused, target)
        if " = Add" in ir or " = Relu" in ir or ", %%%s)" % rname not in ir:
            fail("%s on %s: the Add was not fused:\n%s" % (name, target, ir))
        if " = Add" not in graph_after(apart, target):
            fail("%s on %s: fused an Add whose Conv output is a graph output" % (name, target))
        y = run(fused, target, emit, inputs)
        y0 = run(apart, target, emit, inputs)
        if y.shape != ref.shape:
            fail("%s on %s: shape %s, want %s" % (name, target, y.shape, ref.shape))
            continue
        if y.tobytes() != y0.tobytes():
            i = np.unravel_index(np.argmax(np.abs(y - y0)), y.shape)
            fail("%s on %s: fused %r, apart %r at %s" % (name, target, y[i], y0[i], i))
        err = np.abs(y.astype(np.float64) - ref)
        if not np.all(err <= lim):
            i = np.unravel_index(np.argmax(err - lim), err.shape)
            fail("%s on %s: at %s got %r want %r" % (name, target, i, y[i], ref[i]))
        if kernel and target == "host" and HOST_SIMD:
            dump = subprocess.run([A.moss, "compile", fused + "/model.onnx", "-o", fused + "/k.moss", "-q",
                                   "--dump-kernels"], check=True, capture_output=True, text=True).stdout
            if kernel not in dump:
                fail("%s on host: no '%s' in its kernels" % (name, kernel))


def rn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


P1 = dict(pads=[1, 1, 1, 1])
# The kernel paths of a float Conv (lower_conv.c, lower_winograd.c, lower_sparse.c).
case("pointwise", rn(2, 16, 14, 14), rn(16, 16, 1, 1), rn(16), kernel="packed in blocks")
case("pointwise_no_relu", rn(1, 24, 9, 9), rn(8, 24, 1, 1), r=rn(1, 8, 9, 9), relu=False,
     kernel="packed in blocks")
case("winograd", rn(1, 32, 20, 20), rn(32, 32, 3, 3), rn(32), attrs=P1, kernel="Winograd F(2x2")
case("implicit", rn(1, 8, 15, 15), rn(12, 8, 3, 3), r=rn(1, 12, 8, 8), attrs=dict(strides=[2, 2], **P1),
     kernel="implicit product: ")
case("implicit_chunked", rn(1, 3, 64, 64), rn(16, 3, 3, 3), rn(16), r=rn(1, 16, 64, 64), attrs=P1,
     kernel="for chunk in")
case("transposed", rn(2, 16, 14, 14), rn(37, 16, 3, 3), rn(37), r=rn(2, 37, 14, 14), attrs=P1,
     kernel="implicit product, transposed")
case("depthwise", rn(2, 12, 14, 14), rn(12, 1, 3, 3), rn(12), attrs=dict(group=12, **P1), kernel="depthwise:")
case("depthwise_wide", rn(1, 8, 40, 40), rn(8, 1, 3, 3), attrs=dict(group=8, **P1), kernel="depthwise:")
# A strided depthwise Conv whose output rows (8 wide here) hold whole vectors
# keeps the direct loops (lower_conv.c, ig_scratch): on AVX-512 (16 float
# lanes) it takes the depthwise kernel, on AVX2 (8) not.
with open("/proc/cpuinfo") as f:
    WIDE = " avx512f" in f.read()
case("depthwise_s2", rn(1, 7, 15, 16), rn(7, 1, 3, 3), r=rn(1, 7, 8, 8), attrs=dict(group=7, strides=[2, 2], **P1),
     kernel="depthwise:" if WIDE else None)
case("grouped_direct", rn(1, 8, 9, 9), rn(6, 4, 3, 3), rn(6), r=rn(1, 6, 9, 9), attrs=dict(group=2, **P1))
wz = rn(32, 32, 3, 3)
wz[rng.random(wz.shape) < 0.9] = 0
case("pruned", rn(1, 32, 16, 16), wz, rn(32), attrs=P1, kernel="sparse weight on the tile")


def ops_after(nodes, inputs, inits, outputs, name):
    d = save(name, nodes, inputs, inits, outputs)
    return d, graph_after(d, "host")


# Not fused: an Add that broadcasts r over the Conv's output.
x, w = rn(1, 4, 6, 6), rn(4, 4, 3, 3)
d, ir = ops_after([H.make_node("Conv", ["x", "w"], ["t"], **P1), H.make_node("Add", ["t", "r"], ["y"])],
                  {"x": x, "r": rn(1, 4, 1, 1)}, {"w": w}, [("y", [1, 4, 6, 6])], "broadcast")
count += 1
if " = Add" not in ir:
    fail("broadcast: an Add that broadcasts was fused:\n" + ir)
# Not fused: the Conv's output has a second reader; the Conv has its own Relu first.
d, ir = ops_after([H.make_node("Conv", ["x", "w"], ["t"], **P1), H.make_node("Add", ["t", "x"], ["s"]),
                   H.make_node("Mul", ["t", "s"], ["y"])], {"x": x}, {"w": w}, [("y", [1, 4, 6, 6])], "two_readers")
count += 1
if " = Add" not in ir:
    fail("two_readers: fused an Add whose Conv output has another reader:\n" + ir)
d, ir = ops_after([H.make_node("Conv", ["x", "w"], ["t"], **P1), H.make_node("Relu", ["t"], ["u"]),
                   H.make_node("Add", ["u", "x"], ["y"])], {"x": x}, {"w": w}, [("y", [1, 4, 6, 6])], "relu_first")
count += 1
if " = Add" not in ir:
    fail("relu_first: fused an Add after the Conv's own activation:\n" + ir)

# A ResNet downsampling block: the main path's last Conv runs before the
# shortcut Conv, so the shortcut's Conv must take the Add (its residual is
# the main path's output, ready by then), and the Relu after it.
x = rn(1, 8, 12, 12)
w1, w2, ws = rn(16, 8, 3, 3) * 0.3, rn(16, 16, 3, 3) * 0.2, rn(16, 8, 1, 1)
nodes = [H.make_node("Conv", ["x", "w1"], ["a"], strides=[2, 2], **P1), H.make_node("Relu", ["a"], ["b"]),
         H.make_node("Conv", ["b", "w2"], ["c"], **P1), H.make_node("Conv", ["x", "ws"], ["d"], strides=[2, 2]),
         H.make_node("Add", ["c", "d"], ["e"]), H.make_node("Relu", ["e"], ["y"])]
d, ir = ops_after(nodes, {"x": x}, {"w1": w1, "w2": w2, "ws": ws}, [("y", [1, 16, 6, 6])], "downsample")
count += 1
if " = Add" in ir or " = Relu" in ir or "](%x, %ws, _, %c)" not in ir:
    fail("downsample: the shortcut Conv did not take the Add and the Relu:\n" + ir)
a, _ = conv_ref(x, w1, None, (2, 2), (1, 1), (1, 1, 1, 1))
c, _ = conv_ref(np.maximum(a, 0).astype(np.float32), w2, None, (1, 1), (1, 1), (1, 1, 1, 1))
s, _ = conv_ref(x, ws, None, (2, 2))
ref = np.maximum(c + s, 0)
for target, emit in TARGETS:
    count += 1
    y = run(d, target, emit, {"x": x})
    if not np.allclose(y, ref, rtol=1e-4, atol=1e-4):
        fail("downsample on %s: max error %g" % (target, np.abs(y - ref).max()))

print("%d checks, %d failed" % (count, fails))
sys.exit(1 if fails else 0)
