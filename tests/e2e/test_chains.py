#!/usr/bin/python3
"""Elementwise chains fused into one kernel (compiler/passes/fuse.c,
moss_pass_fuse_chains; compiler/kernel/lower_fused.c; docs/kernel.md
"Elementwise chains"): a run of unary and binary nodes, Casts and Wheres,
becomes one MossFused node whose kernel reads the chain's inputs once and writes only its end.

Each case is a small graph with its float64 (or exact integer) numpy result
computed here, independently of moss:

- after the "chains" pass the graph must have the MossFused nodes the case
  names, with the body sizes it names (--dump-after=chains);
- on the CPU (host, through LLVM; c99, the portable C) and on the GPU
  backends (OpenCL C on PoCL, Vulkan SPIR-V on lavapipe, through libmossrt)
  the outputs must match numpy within DESIGN.md's float tolerance, and the
  integer and boolean chains exactly;
- on the CPU, the chains of correctly rounded operations (+ - * / and Relu)
  must give the same bits as the same graph with every link a graph output
  (so nothing fuses): fusion moves no rounding;
- the PTX of each case must pass NVIDIA's ptxas.

Then the rule's edges: a value with a second reader, a graph output, a
value broadcast into a larger shape, a chain over 16 nodes and one over 8
inputs (split into several MossFused nodes), all with numpy's results.

  test_chains.py --moss build/moss
"""
import argparse
import os
import subprocess
import sys

import numpy as np
from onnx import TensorProto as TP
from onnx import helper as H

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_blobs import find_ptxas, ptxas_refusals  # noqa: E402
from model_dir import ELEM, compile_run, save_model_dir, work_env  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CONF = os.path.join(HERE, "..", "conformance")
ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
A = ap.parse_args()
W, ENV, ENV_CL = work_env("moss-chains-")
rng = np.random.default_rng(11)
fails = 0
count = 0

CPU = [("host", "bundle"), ("c99", "c")]
GPU = [("opencl", os.path.join(CONF, "opencl-only.xml")), ("vulkan", os.path.join(CONF, "vulkan-only.xml"))]
PTX = os.path.join(CONF, "ptx-only.xml")


def fail(msg):
    global fails
    print("FAIL " + msg)
    fails += 1


def save(name, nodes, inputs, inits, outputs):
    """|outputs|: [(name, numpy array of the expected value's dtype and shape)]."""
    return save_model_dir(W, name, nodes, inputs, inits,
                          [H.make_tensor_value_info(k, ELEM[v.dtype], v.shape) for k, v in outputs])


def chains_after(d, target="host"):
    """The body sizes of the MossFused nodes after the chains pass, in order."""
    out = subprocess.run([A.moss, "compile", d + "/model.onnx", "--target", target, "-o", d + "/dump.moss",
                          "--dump-after=chains"], capture_output=True, text=True, env=ENV)
    if out.returncode != 0:
        fail("%s: compile failed: %s" % (d, out.stderr.strip()[-300:]))
        return None
    sizes = []
    for line in out.stdout.splitlines():
        if " = MossFused(" in line:
            sizes.append(0)
        elif line.startswith("    | ") and sizes:
            sizes[-1] += 1
    return sizes


def run(d, target, emit, inputs, tag):
    y, why = compile_run(A.moss, d, target, emit, inputs, tag, ENV, ENV_CL if tag == "opencl" else ENV)
    if why:
        fail("%s on %s: %s" % (os.path.basename(d), tag, why))
    return y


def close(name, tag, y, ref):
    if y is None:
        return
    if y.shape != ref.shape or y.dtype != ref.dtype:
        fail("%s on %s: %s %s, want %s %s" % (name, tag, y.dtype, y.shape, ref.dtype, ref.shape))
        return
    if ref.dtype != np.float32:
        if not np.array_equal(y, ref):
            fail("%s on %s: %d of %d elements differ from numpy's" % (name, tag, int(np.sum(y != ref)), y.size))
        return
    want = REF64[name]
    err = np.abs(y.astype(np.float64) - want)
    lim = 1e-5 + 1e-4 * np.abs(want)
    if not np.all(err <= lim):
        i = np.unravel_index(np.argmax(err - lim), err.shape)
        fail("%s on %s: at %s got %r want %r" % (name, tag, i, y[i], want[i]))


REF64 = {}


def case(name, nodes, inputs, inits, ref, fused, exact=False, links=None, link_types=None):
    """|ref|: the float64 (or integer) result; |fused|: the MossFused body
    sizes expected; |exact|: correctly rounded ops only, so the fused output
    must be the apart graph's bits on the CPU; |links|: the values made graph
    outputs in the apart graph (|link_types|: those not of the output's type)."""
    global count
    before = fails
    out = nodes[-1].output[0]
    want = ref.astype(np.float32) if ref.dtype == np.float64 else ref
    REF64[name] = ref
    d = save(name, nodes, inputs, inits, [(out, want)])
    sizes = chains_after(d)
    count += 1
    if sizes != fused:
        fail("%s: MossFused bodies %s after the chains pass, expected %s" % (name, sizes, fused))
    ys = {}
    for target, emit in CPU:
        ys[target] = run(d, target, emit, inputs, target)
        close(name, target, ys[target], want)
    for tag, target in GPU:
        close(name, tag, run(d, target, "bundle", inputs, tag), want)
    if exact:
        vals = links or [n.output[0] for n in nodes[:-1]]
        apart = save(name + "-apart", nodes, inputs, inits,
                     [(out, want)] + [(v, np.zeros(want.shape, (link_types or {}).get(v, want.dtype))) for v in vals])
        if chains_after(apart) != []:
            fail("%s: fused a chain whose links are graph outputs" % name)
        for target, emit in CPU:
            y0 = run(apart, target, emit, inputs, target)
            if y0 is not None and ys[target] is not None and y0.tobytes() != ys[target].tobytes():
                fail("%s on %s: the fused chain's bits differ from the nodes' apart" % (name, target))
    # PTX: each module through ptxas.
    if PTXAS:
        art = d + "/ptx.moss"
        p = subprocess.run([A.moss, "compile", d + "/model.onnx", "--target", PTX, "-o", art, "-q"],
                           capture_output=True, text=True, env=ENV)
        if p.returncode != 0:
            fail("%s on ptx: compile failed: %s" % (name, p.stderr.strip()[-300:]))
        else:
            for k, why in ptxas_refusals(PTXAS, art, d):
                fail("%s: ptxas refuses module %d: %s" % (name, k, why[:300]))
    if fails == before:
        print("ok   %s" % name)


def rn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def f64(*arrs):
    return [a.astype(np.float64) for a in arrs]


PTXAS = find_ptxas()
if not PTXAS:
    fail("no ptxas (the CUDA toolkit in /usr/local/cuda)")
N = H.make_node

# Swish, then a normalisation's tail: x * sigmoid(x) / d * g + b, with d
# broadcast along the last axis and g, b (constants) along the others.
x, dd = rn(2, 3, 8, 9), rng.uniform(0.5, 2.0, (2, 3, 8, 1)).astype(np.float32)
g, b = rn(9), rn(9)
X, D, G, B = f64(x, dd, g, b)
case("swish_norm", [N("Sigmoid", ["x"], ["s"]), N("Mul", ["x", "s"], ["m"]), N("Div", ["m", "d"], ["q"]),
                    N("Mul", ["q", "g"], ["r"]), N("Add", ["r", "b"], ["y"])],
     {"x": x, "d": dd}, {"g": g, "b": b}, X / (1 + np.exp(-X)) / D * G + B, [5])

# GELU as exporters write it: 0.5 * x * (1 + erf(x / sqrt(2))).
x = rn(4, 100)
X, = f64(x)
erf = np.vectorize(__import__("math").erf)
case("gelu_erf", [N("Div", ["x", "sq2"], ["a"]), N("Erf", ["a"], ["e"]), N("Add", ["e", "one"], ["p"]),
                  N("Mul", ["x", "p"], ["m"]), N("Mul", ["m", "half"], ["y"])],
     {"x": x}, {"sq2": np.array(np.sqrt(2.0), np.float32), "one": np.array(1.0, np.float32),
                "half": np.array(0.5, np.float32)},
     0.5 * X * (1 + erf(X / np.float64(np.float32(np.sqrt(2.0))))), [5])

# Correctly rounded operations only: relu(((x + a) * c - e) / f), with a
# and c graph inputs broadcast over rows and columns.
x, a, c, e, f = rn(3, 5, 7), rn(5, 1), rn(1, 7), rn(3, 5, 7), rng.uniform(1, 3, (7,)).astype(np.float32)
X, Aa, C, E, F = f64(x, a, c, e, f)
r32 = np.maximum(((x + a) * c - e) / f, 0).astype(np.float32)  # float32 at each step, as ONNX's nodes do
case("exact", [N("Add", ["x", "a"], ["t1"]), N("Mul", ["t1", "c"], ["t2"]), N("Sub", ["t2", "e"], ["t3"]),
               N("Div", ["t3", "f"], ["t4"]), N("Relu", ["t4"], ["y"])],
     {"x": x, "a": a, "c": c, "e": e}, {"f": f}, r32.astype(np.float64), [5], exact=True)

# Clip whose bounds are graph inputs, after a Neg and a Mul.
x, s = rn(6, 6), rn(6)
lo, hi = np.array(-0.5, np.float32), np.array(0.75, np.float32)
X, S = f64(x, s)
case("clip_inputs", [N("Neg", ["x"], ["n"]), N("Mul", ["n", "s"], ["m"]), N("Clip", ["m", "lo", "hi"], ["y"])],
     {"x": x, "s": s, "lo": lo, "hi": hi}, {}, np.clip(-X * S, -0.5, 0.75), [3], exact=True)

# int32: Python's modulo (the divisor's sign), then abs and a difference.
xi = rng.integers(-1000, 1000, (4, 33)).astype(np.int32)
mi = rng.choice([-7, -3, 5, 11], (33,)).astype(np.int32)
ref = np.abs(np.mod(xi * 3 + 1, mi)) - xi
case("int32", [N("Mul", ["x", "three"], ["a"]), N("Add", ["a", "one"], ["b"]), N("Mod", ["b", "m"], ["c"]),
               N("Abs", ["c"], ["d"]), N("Sub", ["d", "x"], ["y"])],
     {"x": xi, "m": mi}, {"three": np.array(3, np.int32), "one": np.array(1, np.int32)}, ref.astype(np.int32), [5])

# Booleans: (x > 0) and not (x > t).
x, t = rn(5, 40), rn(40)
case("bool", [N("Greater", ["x", "zero"], ["p"]), N("Greater", ["x", "t"], ["q"]), N("Not", ["q"], ["nq"]),
              N("And", ["p", "nq"], ["y"])],
     {"x": x, "t": t}, {"zero": np.array(0, np.float32)}, (x > 0) & ~(x > t), [4])

# Cast and Where join chains too: -where(x > 0, 2x, float(k)), k int32.
x = rn(4, 30)
k = rng.integers(-50, 50, (4, 30)).astype(np.int32)
case("cast_where", [N("Greater", ["x", "zero"], ["g"]), N("Mul", ["x", "two"], ["s"]),
                    N("Cast", ["k"], ["kf"], to=TP.FLOAT), N("Where", ["g", "s", "kf"], ["w"]), N("Neg", ["w"], ["y"])],
     {"x": x, "k": k}, {"zero": np.array(0, np.float32), "two": np.array(2, np.float32)},
     -np.where(x > 0, x.astype(np.float64) * 2, k.astype(np.float64)), [5], exact=True,
     link_types={"g": np.bool_})

# The rule's edges.
# A link with a second reader stays apart: n = -x feeds the Abs and the Mul,
# which join the Exp.
x = rn(8, 8)
X, = f64(x)
case("second_reader", [N("Neg", ["x"], ["n"]), N("Abs", ["n"], ["a"]), N("Mul", ["n", "a"], ["m"]),
                       N("Exp", ["m"], ["y"])],
     {"x": x}, {}, np.exp(-X * np.abs(X)), [3])
# A value broadcast into a larger shape stays its own node: sqrt(v + eps)
# per row, then x / it (x's shape) and a Relu.
x, v = rn(6, 32), rng.uniform(0.1, 2, (6, 1)).astype(np.float32)
X, V = f64(x, v)
case("broadcast_link", [N("Add", ["v", "eps"], ["ve"]), N("Sqrt", ["ve"], ["s"]), N("Div", ["x", "s"], ["q"]),
                        N("Relu", ["q"], ["y"])],
     {"x": x, "v": v}, {"eps": np.array(1e-5, np.float32)},
     np.maximum(X / np.sqrt(V + np.float64(np.float32(1e-5))), 0), [2, 2])
# A chain of 40 nodes: bodies of at most 16.
x = rn(3, 17)
nodes, cur, ref = [], "x", x.astype(np.float64)
for i in range(40):
    op = ["Neg", "Abs", "Relu", "Neg"][i % 4]
    nxt = "y" if i == 39 else "t%d" % i
    nodes.append(N(op, [cur], [nxt]))
    ref = {"Neg": np.negative, "Abs": np.abs, "Relu": lambda z: np.maximum(z, 0)}[op](ref)
    cur = nxt
case("long", nodes, {"x": x}, {}, ref, [16, 16, 8], exact=True)
# Twelve inputs added one by one: at most 8 inputs a chain.
x = rn(2, 9)
ins = {"x": x}
nodes, cur, ref = [], "x", x.astype(np.float64)
r32 = x.copy()
for i in range(11):
    ins["a%d" % i] = rn(2, 9)
    nxt = "y" if i == 10 else "s%d" % i
    nodes.append(N("Add", [cur, "a%d" % i], [nxt]))
    r32 = (r32 + ins["a%d" % i]).astype(np.float32)
    cur = nxt
case("many_inputs", nodes, ins, {}, r32.astype(np.float64), [7, 4], exact=True)

print("%d cases, %d failures" % (count, fails))
sys.exit(1 if fails else 0)
