#!/usr/bin/python3
"""If (issue 16, item 2; passes/control.c, docs/control-flow.md): models
written here with onnx.helper, each with its expected outputs derived by
hand in numpy:

- a condition known at compile time: a constant; computed from an input
  frozen with --constant (a voice detector's sample-rate check,
  Equal(sr, 16000)); computed from a shape (Shape, Gather, Greater) bound
  with --input-shape. The chosen branch replaces the node: the other one
  may hold nodes that could not even be inferred with these shapes, and
  --dump-ir shows no If and no node of the other branch;
- a condition known only at run time: both branches run and a Where picks
  each output, for true and for false inputs;
- branches that read outer values, hold initializers of their own, give
  an outer value as their output, and nest an If;
- the errors: branches whose outputs differ in shape under a run-time
  condition, and an unsupported node inside a branch (named with its
  scope, with the main graph's unsupported node in the same run).

Each compiled for the host (LLVM), as C, for OpenCL (PoCL) and Vulkan
(lavapipe) where it runs.

  test_if.py --moss build/moss
"""
import argparse
import os
import subprocess
import sys

import numpy as np
from onnx import TensorProto as TP
from onnx import helper as H
from onnx import numpy_helper as NH

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_dir import ELEM, Failures, RUN_TARGETS, compile_run, work_env  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = RUN_TARGETS
ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
A = ap.parse_args()
W, ENV, ENV_CL = work_env("moss-if-")
fail = Failures()


def vi(name, a=None, dt=TP.FLOAT):
    return H.make_tensor_value_info(name, ELEM[a.dtype] if a is not None else dt, a.shape if a is not None else None)


def branch(name, nodes, outs, inits=()):
    return H.make_graph(nodes, name, [], [H.make_tensor_value_info(o, TP.FLOAT, None) for o in outs],
                        [NH.from_array(v, k) for k, v in inits])


def model(name, nodes, inputs, inits, outputs, opset=16):
    g = H.make_graph(nodes, name, [vi(k, v) for k, v in inputs.items()], [vi(o) for o in outputs],
                     [NH.from_array(v, k) for k, v in inits.items()])
    m = H.make_model(g, opset_imports=[H.make_opsetid("", opset)])
    m.ir_version = 8
    d = os.path.join(W, name)
    os.makedirs(d, exist_ok=True)
    import onnx
    onnx.save(m, d + "/model.onnx")
    return d


def run_case(name, d, feeds, want, extra=(), targets=TARGETS):
    """Compiles D/model.onnx with |extra| and runs it on |feeds| ({name: array},
    saved beside it); output k must be |want|[k] (float tolerance of DESIGN.md)."""
    for k, v in feeds.items():
        np.save(os.path.join(d, k + ".npy"), v)
    for tag, target, emit in targets:
        tag2 = "%s-%d" % (tag, abs(hash(tuple(sorted((k, v.tobytes()) for k, v in feeds.items())))) % 10000)
        y, why = compile_run(A.moss, d, target, emit, list(feeds), tag2, ENV, ENV_CL if tag == "opencl" else ENV,
                             extra=extra)
        if why:
            fail("%s on %s: %s" % (name, tag, why))
            continue
        for k, w in enumerate(want):
            got = np.load(os.path.join(d, "out-%s" % tag2, "output_%d.npy" % k))
            if got.shape != w.shape or np.any(np.abs(got - w) > 1e-5 + 1e-4 * np.abs(w)):
                fail("%s on %s: output %d is %s, want %s" % (name, tag, k, got.ravel()[:6], w.ravel()[:6]))
    print("%-28s ok on %s" % (name, ", ".join(t[0] for t in targets)))


def dump_ir(d, extra=()):
    p = subprocess.run([A.moss, "compile", d + "/model.onnx", "--emit", "c", "-o", d + "/ir.c", "--dump-ir"]
                       + list(extra), capture_output=True, text=True, env=ENV)
    return p.returncode, p.stdout + p.stderr


x = np.arange(12, dtype=np.float32).reshape(3, 4) - 5

# 1. A constant condition. The else branch reshapes x to 5x5, which no
#    inference could do: it must be dropped before it is inferred.
then_b = branch("then", [H.make_node("Mul", ["x", "two"], ["t"], name="dbl")], ["t"], [("two", np.float32(2))])
else_b = branch("else", [H.make_node("Reshape", ["x", "bad"], ["e"], name="bad")], ["e"],
                [("bad", np.array([5, 5], np.int64))])
d = model("if_const", [H.make_node("If", ["c"], ["y"], name="if0", then_branch=then_b, else_branch=else_b)],
          {"x": x}, {"c": np.array(True)}, ["y"])
run_case("if_const", d, {"x": x}, [x * 2])
rc, ir = dump_ir(d)
if rc != 0 or "if0/else_branch/" in ir or " If(" in ir or "if0/then_branch/dbl" not in ir:
    fail("if_const: --dump-ir still shows the If or the other branch (exit %d)" % rc)

# 2. The sample-rate check of a voice detector: Equal(sr, 16000), sr frozen with --constant.
sr_then = branch("sr16k", [H.make_node("Identity", ["x"], ["a"], name="keep")], ["a"])
sr_else = branch("sr8k", [H.make_node("Neg", ["x"], ["b"], name="neg")], ["b"])
nodes = [H.make_node("Equal", ["sr", "k16"], ["is16"], name="eq"),
         H.make_node("If", ["is16"], ["y"], name="rate", then_branch=sr_then, else_branch=sr_else)]
d = model("if_sample_rate", nodes, {"x": x, "sr": np.array(16000, np.int64)}, {"k16": np.array(16000, np.int64)},
          ["y"])
for sr, want in ((16000, x), (8000, -x)):
    np.save(os.path.join(d, "sr_%d.npy" % sr), np.array(sr, np.int64))
    run_case("if_sample_rate_%d" % sr, d, {"x": x}, [want], extra=("--constant", "sr=%s/sr_%d.npy" % (d, sr)))

# 3. A condition from a shape: Gather(Shape(x), 1) > 3, with --input-shape.
nodes = [H.make_node("Shape", ["x"], ["s"], name="shape"),
         H.make_node("Gather", ["s", "one"], ["w"], name="width"),
         H.make_node("Greater", ["w", "three"], ["wide"], name="gt"),
         H.make_node("If", ["wide"], ["y"], name="ifw",
                     then_branch=branch("wide", [H.make_node("ReduceSum", ["x"], ["r"], name="sum", axes=[1],
                                                             keepdims=1)], ["r"]),
                     else_branch=branch("narrow", [H.make_node("ReduceMax", ["x"], ["r2"], name="max", axes=[1],
                                                               keepdims=1)], ["r2"]))]
gi = H.make_graph(nodes, "ifw", [H.make_tensor_value_info("x", TP.FLOAT, [3, "width"])], [vi("y")],
                  [NH.from_array(np.array(1, np.int64), "one"), NH.from_array(np.array(3, np.int64), "three")])
import onnx  # noqa: E402
mi = H.make_model(gi, opset_imports=[H.make_opsetid("", 11)])
mi.ir_version = 8
d = os.path.join(W, "if_shape")
os.makedirs(d)
onnx.save(mi, d + "/model.onnx")
run_case("if_shape_wide", d, {"x": x}, [x.sum(1, keepdims=True)], extra=("--input-shape", "x=3x4"))
x2 = x[:, :2].copy()
run_case("if_shape_narrow", d, {"x": x2}, [x2.max(1, keepdims=True)], extra=("--input-shape", "x=3x2"))

# 4. A run-time condition, outer values, initializers in a branch, a
#    branch output that is an outer value, and an If nested in a branch.
inner = H.make_node("If", ["c2"], ["n"], name="inner",
                    then_branch=branch("it", [H.make_node("Add", ["x", "z"], ["ia"], name="ia")], ["ia"]),
                    else_branch=branch("ie", [H.make_node("Sub", ["x", "z"], ["ie_"], name="ie")], ["ie_"]))
then_b = branch("t", [H.make_node("Mul", ["x", "w"], ["z"], name="mulw"), inner,
                      H.make_node("Add", ["n", "bias"], ["o1"], name="addb")], ["o1", "x"],
                [("w", np.float32(3)), ("bias", np.full((4,), 0.5, np.float32))])
else_b = branch("e", [H.make_node("Relu", ["x"], ["o2"], name="relu")], ["o2", "u"])
nodes = [H.make_node("Neg", ["x"], ["u"], name="negx"),
         H.make_node("ReduceSum", ["flag"], ["fs"], name="fsum", keepdims=0),
         H.make_node("Greater", ["fs", "zero"], ["c"], name="gt0"),
         H.make_node("Greater", ["fs", "ten"], ["c2"], name="gt10"),
         H.make_node("If", ["c"], ["y", "y2"], name="outer", then_branch=then_b, else_branch=else_b)]
d = model("if_runtime", nodes, {"x": x, "flag": np.zeros(1, np.float32)},
          {"zero": np.float32(0), "ten": np.float32(10)}, ["y", "y2"], opset=11)
for f in (-1.0, 1.0, 20.0):
    if f <= 0:
        want = [np.maximum(x, 0), -x]
    elif f <= 10:
        want = [x - 3 * x + 0.5, x]
    else:
        want = [x + 3 * x + 0.5, x]
    run_case("if_runtime_flag_%g" % f, d, {"x": x, "flag": np.array([f], np.float32)}, want)

# 5. Errors.
then_b = branch("t", [H.make_node("ReduceSum", ["x"], ["s1"], name="sum", keepdims=0)], ["s1"])
else_b = branch("e", [H.make_node("Relu", ["x"], ["s2"], name="relu")], ["s2"])
d = model("if_shapes_differ", [H.make_node("If", ["c"], ["y"], name="ifd", then_branch=then_b, else_branch=else_b)],
          {"x": x, "c": np.array(True)}, {}, ["y"])
p = subprocess.run([A.moss, "compile", d + "/model.onnx", "-o", d + "/m.moss"], capture_output=True, text=True,
                   env=ENV)
if p.returncode == 0 or "node 'ifd/select0' (Where)" not in p.stderr or "both branches must give one" not in p.stderr:
    fail("if_shapes_differ: exit %d, %r" % (p.returncode, p.stderr[-300:]))
else:
    print("%-28s refused: %s" % ("if_shapes_differ", p.stderr.strip().splitlines()[0]))
then_b = branch("t", [H.make_node("FooBar", ["x"], ["f"], name="foo")], ["f"])
d = model("if_unsupported", [H.make_node("If", ["c"], ["y"], name="ifu", then_branch=then_b, else_branch=else_b),
                             H.make_node("BazQux", ["y"], ["z"], name="baz")],
          {"x": x, "c": np.array(True)}, {}, ["z"])
p = subprocess.run([A.moss, "compile", d + "/model.onnx", "-o", d + "/m.moss"], capture_output=True, text=True,
                   env=ENV)
if (p.returncode == 0 or "node 'ifu/then_branch/foo' (FooBar): unsupported" not in p.stderr
        or "node 'baz' (BazQux): unsupported" not in p.stderr):
    fail("if_unsupported: exit %d, %r" % (p.returncode, p.stderr[-400:]))
else:
    print("%-28s refused: %s" % ("if_unsupported", " | ".join(p.stderr.strip().splitlines()[:2])))
print("if: %d failure(s)" % fail.count)
sys.exit(1 if fail.count else 0)
