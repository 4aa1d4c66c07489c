#!/usr/bin/python3
"""Threads (docs/kernel.md "Threads", runtime/README.md "Threads"): the
parallel loops the compiler cut into parts run on the session's threads,
and the outputs are the same bits for any number of threads.

Each model is compiled for a copy of the host target that says 4 cores (so
the split does not depend on this machine's count), its --dump-kernels must
show cut loops of each kind the model is meant to test, and `moss run` with
--threads 1, 2, 3 and 8 and with no flag (the cores moss may use) must give
byte-identical outputs, which must match a numpy reference computed here:
float32 within DESIGN.md's 1e-5 + 1e-4 |ref| (the convolutions' and
products' sums are short enough), int8 within 1 LSB of the real-valued
QLinearConv (DESIGN.md's int8 rule). Also the CLI's refusals of a bad
--threads.

  test_threads.py --moss build/moss
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as H
from onnx import numpy_helper as NH

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from npref import conv_ref  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
A = ap.parse_args()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
W = tempfile.mkdtemp(prefix="moss-threads-")
rng = np.random.default_rng(5)
fails = 0
NP2TP = {np.float32: TP.FLOAT, np.uint8: TP.UINT8}


def fail(msg):
    global fails
    fails += 1
    print("FAIL:", msg)


# The host target with 4 cores: loaded from a file, its figures are not
# replaced by the machine's (compiler/target), so the parts are planned for 4.
TARGET = os.path.join(W, "host4.xml")
with open(os.path.join(ROOT, "targets", "host.xml")) as f:
    xml = f.read()
assert 'units="2"' in xml
with open(TARGET, "w") as f:
    f.write(xml.replace('units="2"', 'units="4"').replace('<target name="host"', '<target name="host4"'))


def conv(x, w, b=None, stride=1, pad=0, group=1):
    """NCHW convolution in float64 (exact sums for int8 data)."""
    return conv_ref(x, w, b, (stride, stride), (1, 1), (pad,) * 4, group)[0]


def run_model(name, nodes, inputs, inits, outputs, kernels, opset=13):
    """Compiles, checks the dump for |kernels|, runs at every thread count;
    returns the outputs of the 1-thread run (None on a failure)."""
    g = H.make_graph(nodes, name,
                     [H.make_tensor_value_info(k, NP2TP[v.dtype.type], v.shape) for k, v in inputs.items()],
                     [H.make_tensor_value_info(k, t, s) for k, t, s in outputs],
                     [NH.from_array(v, k) for k, v in inits.items()])
    m = H.make_model(g, opset_imports=[H.make_opsetid("", opset)])
    d = os.path.join(W, name)
    os.makedirs(d, exist_ok=True)
    onnx.save(m, d + "/model.onnx")
    args = []
    for k, v in inputs.items():
        np.save("%s/%s.npy" % (d, k), v)
        args += ["--input", "%s=%s/%s.npy" % (k, d, k)]
    r = subprocess.run([A.moss, "compile", d + "/model.onnx", "--target", TARGET, "-o", d + "/model.moss",
                        "--dump-kernels"], capture_output=True, text=True)
    if r.returncode != 0:
        fail("%s: compile: %s" % (name, r.stderr))
        return None
    for want in kernels:
        if want not in r.stdout:
            fail("%s: --dump-kernels shows no '%s'" % (name, want))
    got = {}
    for t in ["1", "2", "3", "8", None]:
        o = "%s/out%s" % (d, t or "default")
        cmd = [A.moss, "run", d + "/model.moss"] + args + ["-o", o] + (["--threads", t] if t else [])
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            fail("%s: run --threads %s: %s" % (name, t, r.stderr))
            return None
        got[t] = [open("%s/output_%d.npy" % (o, i), "rb").read() for i in range(len(outputs))]
    for t, outs in got.items():
        for i, (a, b) in enumerate(zip(got["1"], outs)):
            if a != b:
                fail("%s: output %d with --threads %s differs from 1 thread" % (name, i, t or "(default)"))
    print("%s: %d thread counts, identical outputs" % (name, len(got)))
    return [np.load("%s/out1/output_%d.npy" % (d, i)) for i in range(len(outputs))]


def check_float(name, got, ref):
    err = np.abs(got.astype(np.float64) - ref)
    bad = err > 1e-5 + 1e-4 * np.abs(ref)
    if bad.any():
        fail("%s: %d of %d elements off the reference (worst %g)" % (name, bad.sum(), bad.size, err.max()))


def f32(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# A CNN: a dense 3x3 Conv and Relu (implicit product: the copy into phases
# over channels, the tile over column blocks), a depthwise Conv (channel
# groups with planes of their own), a pointwise Conv, a residual Add, a
# strided Conv, global pooling and a Gemm.
x = f32(1, 8, 40, 40)
w1, b1 = f32(16, 8, 3, 3, scale=0.3), f32(16)
wd, bd = f32(16, 1, 3, 3, scale=0.5), f32(16)
wp = f32(16, 16, 1, 1, scale=0.3)
w2 = f32(32, 16, 3, 3, scale=0.2)
wg, bg = f32(10, 32, scale=0.3), f32(10)
nodes = [
    H.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
    H.make_node("Relu", ["c1"], ["r1"]),
    H.make_node("Conv", ["r1", "wd", "bd"], ["d"], pads=[1, 1, 1, 1], group=16),
    H.make_node("Conv", ["d", "wp"], ["p"]),
    H.make_node("Add", ["p", "r1"], ["a"]),
    H.make_node("Conv", ["a", "w2"], ["s2"], pads=[1, 1, 1, 1], strides=[2, 2]),
    H.make_node("GlobalAveragePool", ["s2"], ["gp"]),
    H.make_node("Flatten", ["gp"], ["fl"]),
    H.make_node("Gemm", ["fl", "wg", "bg"], ["y"], transB=1),
]
out = run_model("cnn", nodes, {"x": x},
                {"w1": w1, "b1": b1, "wd": wd, "bd": bd, "wp": wp, "w2": w2, "wg": wg, "bg": bg},
                [("a", TP.FLOAT, [1, 16, 40, 40]), ("y", TP.FLOAT, [1, 10])],
                ["for c in [0, 8) parallel in", "for jb in", "for g in [0, 8) parallel in 8 parts",
                 "groups of 2 channels"])
if out:
    X = x.astype(np.float64)
    r1 = np.maximum(conv(X, w1.astype(np.float64), b1, pad=1), 0)
    d = conv(r1, wd.astype(np.float64), bd, pad=1, group=16)
    a = conv(d, wp.astype(np.float64)) + r1
    s2 = conv(a, w2.astype(np.float64), stride=2, pad=1)
    y = s2.mean(axis=(2, 3)) @ wg.astype(np.float64).T + bg
    check_float("cnn a", out[0], a)
    check_float("cnn y", out[1], y)

# Attention-like products: MatMul with a constant B, Softmax over rows,
# MatMul with a run-time B (row blocks of the register tile).
q = f32(128, 64)
wk = f32(64, 128, scale=0.1)
v = f32(128, 64)
nodes = [
    H.make_node("MatMul", ["q", "wk"], ["s"]),
    H.make_node("Softmax", ["s"], ["p"], axis=-1),
    H.make_node("MatMul", ["p", "v"], ["y"]),
]
out = run_model("attention", nodes, {"q": q, "v": v}, {"wk": wk}, [("y", TP.FLOAT, [128, 64])],
                [" parallel in "])
if out:
    s = q.astype(np.float64) @ wk.astype(np.float64)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    check_float("attention y", out[0], p @ v.astype(np.float64))

# int8: a dense QLinearConv (byte dot products) and a depthwise one (int32
# planes), per-tensor scales, uint8 activations.
xq = rng.integers(0, 256, (1, 16, 30, 30), dtype=np.uint8)
wq1 = rng.integers(-127, 128, (32, 16, 3, 3), dtype=np.int8)
bq1 = rng.integers(-2000, 2000, 32).astype(np.int32)
wq2 = rng.integers(-127, 128, (32, 1, 3, 3), dtype=np.int8)
sc = {"xs": 0.02, "w1s": 0.01, "ys": 0.5, "w2s": 0.02, "zs": 0.3}
zp = {"xz": 120, "yz": 128, "zz": 100}
inits = {k: np.array(v, np.float32) for k, v in sc.items()}
inits.update({k: np.array(v, np.uint8) for k, v in zp.items()})
inits.update({"w1": wq1, "b1": bq1, "w2": wq2, "wz": np.array(0, np.int8)})
nodes = [
    H.make_node("QLinearConv", ["x", "xs", "xz", "w1", "w1s", "wz", "ys", "yz", "b1"], ["y"], pads=[1, 1, 1, 1]),
    H.make_node("QLinearConv", ["y", "ys", "yz", "w2", "w2s", "wz", "zs", "zz"], ["z"], pads=[1, 1, 1, 1],
                group=32),
]
out = run_model("int8", nodes, {"x": xq}, inits, [("y", TP.UINT8, [1, 32, 30, 30]), ("z", TP.UINT8, [1, 32, 30, 30])],
                [" parallel in ", "for g in [0, 8) parallel in 8 parts"])
if out:
    acc = conv(xq.astype(np.int64) - zp["xz"], wq1.astype(np.int64), bq1.astype(np.int64), pad=1)
    yr = np.clip(np.round(acc * (sc["xs"] * sc["w1s"] / sc["ys"])) + zp["yz"], 0, 255)
    # The second layer's reference takes moss's first output, so each layer
    # is held to 1 LSB on its own input.
    acc2 = conv(out[0].astype(np.int64) - zp["yz"], wq2.astype(np.int64), pad=1, group=32)
    zr = np.clip(np.round(acc2 * (sc["ys"] * sc["w2s"] / sc["zs"])) + zp["zz"], 0, 255)
    for nm, got, ref in [("int8 y", out[0], yr), ("int8 z", out[1], zr)]:
        err = np.abs(got.astype(np.int64) - ref)
        if err.max() > 1:
            fail("%s: %d elements more than 1 LSB off (worst %d)" % (nm, (err > 1).sum(), err.max()))

# A bad --threads is refused before anything runs.
art = os.path.join(W, "cnn", "model.moss")
for bad, text in [("0", "must be at least 1"), ("1025", "too large (at most 1024)"), ("two", "not a whole number")]:
    r = subprocess.run([A.moss, "bench", art, "--iterations", "1", "--threads", bad], capture_output=True, text=True)
    if r.returncode == 0 or text not in r.stderr:
        fail("--threads %s: exit %d, stderr %r" % (bad, r.returncode, r.stderr))

print("test_threads: %d failure(s)" % fails)
sys.exit(1 if fails else 0)
