#!/usr/bin/python3
"""Control flow (issue 16, item 2; passes/control.c, docs/control-flow.md):
If, Loop and Scan in models written here with onnx.helper, each with its
expected outputs derived by hand in numpy.

If:

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

Loop and Scan (unrolled):
- a Loop whose trip count comes from a shape (as torch exports
  `for i in range(x.size(0))`), with two carried values, a scan output, the
  iteration number and an outer value read in the body; one whose trip
  count is an input frozen with --constant; one whose condition is false;
- a Scan with two scan inputs (one along axis 1, one backwards), a state,
  and scan outputs along axis 1 and backwards;
- a Scan-8 (opset 8) of a batch of 2 rows, one scan input backwards,
  with sequence_lens a constant of T each and without it;
- with --max-trip-count, a trip count that is an input (run with 3, 8
  and 0) and a while loop (the body computes its condition);
- torch's exports of a scripted `for i in range(x.size(0))` and `while`
  loop (tests/e2e/control, scripts/make_control_models.py), against
  torch's outputs;
- a Loop whose body holds an If with a condition each iteration fixes
  and one known only at run time, and a Loop in a Loop: each iteration's
  copy has its own subgraphs;
- the errors: a while loop without the bound, and one with a scan
  output; no trip count; a trip count known only at run time (named for
  --constant); bodies out of order; a Scan-8 whose
  sequence_lens is shorter than its scan inputs; Ifs nested 40 deep.

Each compiled for the host (LLVM), as C, for OpenCL (PoCL) and Vulkan
(lavapipe) where it runs.

  test_control.py --moss build/moss
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
W, ENV, ENV_CL = work_env("moss-control-")
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
    before = fail.count
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
    if fail.count == before:
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

# 6. Loop: trip count from Shape(x)[0]; carried acc (acc * 0.5 + x[i] * k)
#    and count (count + i); scan output acc; k is an outer value.
def loop_body(extra_nodes=(), cond_out="cond_in"):
    nodes = [H.make_node("Identity", [cond_out], ["cond_out"], name="keep"),
             H.make_node("Gather", ["xs", "i"], ["row"], name="row", axis=0),
             H.make_node("Mul", ["acc_in", "half"], ["a1"], name="halve"),
             H.make_node("Mul", ["row", "k"], ["r1"], name="scale"),
             H.make_node("Add", ["a1", "r1"], ["acc_out"], name="acc"),
             H.make_node("Cast", ["i"], ["fi"], name="fi", to=TP.FLOAT),
             H.make_node("Add", ["count_in", "fi"], ["count_out"], name="count"),
             H.make_node("Identity", ["acc_out"], ["scan_out"], name="scan")] + list(extra_nodes)
    return H.make_graph(nodes, "body",
                        [H.make_tensor_value_info("i", TP.INT64, []), H.make_tensor_value_info("cond_in", TP.BOOL, []),
                         H.make_tensor_value_info("acc_in", TP.FLOAT, [4]),
                         H.make_tensor_value_info("count_in", TP.FLOAT, [])],
                        [H.make_tensor_value_info(o, TP.FLOAT if o != "cond_out" else TP.BOOL, None)
                         for o in ("cond_out", "acc_out", "count_out", "scan_out")],
                        [NH.from_array(np.float32(0.5), "half")])


def loop_want(xs, k, acc0, n):
    acc, count, rows = acc0.copy(), np.float32(0), []
    for i in range(n):
        acc = acc * np.float32(0.5) + xs[i] * k
        count += np.float32(i)
        rows.append(acc.copy())
    return acc, np.array(count, np.float32), np.stack(rows) if rows else None


xs = (np.arange(20, dtype=np.float32).reshape(5, 4) - 7) / 3
k = np.float32(1.5)
acc0 = np.ones(4, np.float32)
nodes = [H.make_node("Shape", ["xs"], ["sh"], name="shape"),
         H.make_node("Gather", ["sh", "zero_i"], ["n"], name="n", axis=0),
         H.make_node("Loop", ["n", "", "acc0", "count0"], ["acc", "count", "rows"], name="loop0", body=loop_body())]
d = model("loop_shape", nodes, {"xs": xs}, {"zero_i": np.array(0, np.int64), "k": k, "acc0": acc0,
                                            "count0": np.float32(0)}, ["acc", "count", "rows"])
run_case("loop_shape", d, {"xs": xs}, list(loop_want(xs, k, acc0, 5)))
rc, ir = dump_ir(d)
if rc != 0 or " Loop(" in ir or "loop0/body/acc#4" not in ir:
    fail("loop_shape: --dump-ir should show the body 5 times and no Loop (exit %d)" % rc)

# the trip count an input frozen with --constant; the condition given, true, then false
nodes = [H.make_node("Loop", ["m", "go", "acc0", "count0"], ["acc", "count", "rows"], name="loop1",
                     body=loop_body())]
d = model("loop_constant", nodes, {"xs": xs, "m": np.array(3, np.int64), "go": np.array(True)},
          {"k": k, "acc0": acc0, "count0": np.float32(0)}, ["acc", "count", "rows"])
np.save(os.path.join(d, "m3.npy"), np.array(3, np.int64))
np.save(os.path.join(d, "go.npy"), np.array(True))
run_case("loop_constant", d, {"xs": xs}, list(loop_want(xs, k, acc0, 3)),
         extra=("--constant", "m=%s/m3.npy" % d, "--constant", "go=%s/go.npy" % d))
d2 = model("loop_false", [H.make_node("Loop", ["m", "go", "acc0", "count0"], ["acc", "count"], name="loop2",
                                      body=loop_body())],
           {"xs": xs}, {"m": np.array(3, np.int64), "go": np.array(False), "k": k, "acc0": acc0,
                        "count0": np.float32(0)}, ["acc", "count"])
run_case("loop_false_condition", d2, {"xs": xs}, [acc0, np.array(0, np.float32)])

# Loops whose end only the run knows, unrolled to --max-trip-count: a
# trip count that is an input (run with 3 and with 8), and a while loop
# (the body computes its condition: go on while count < 7).
xs8 = (np.arange(32, dtype=np.float32).reshape(8, 4) - 9) / 4
nodes = [H.make_node("Loop", ["m", "", "acc0", "count0"], ["acc", "count"], name="loopr", body=loop_body())]
d = model("loop_runtime_bound", nodes, {"xs": xs8, "m": np.array(3, np.int64)},
          {"k": k, "acc0": acc0, "count0": np.float32(0)}, ["acc", "count"])
for trips in (3, 8, 0):
    want = loop_want(xs8, k, acc0, trips)
    run_case("loop_runtime_count_%d" % trips, d, {"xs": xs8, "m": np.array(trips, np.int64)}, [want[0], want[1]],
             extra=("--max-trip-count", "8"))
wbody = H.make_graph([H.make_node("Mul", ["acc_in", "half"], ["a1"], name="halve"),
                      H.make_node("Add", ["a1", "k"], ["acc_out"], name="acc"),
                      H.make_node("Cast", ["i"], ["fi"], name="fi", to=TP.FLOAT),
                      H.make_node("Add", ["count_in", "fi"], ["count_out"], name="count"),
                      H.make_node("Less", ["count_out", "seven"], ["more"], name="more")], "wbody",
                     [H.make_tensor_value_info("i", TP.INT64, []), H.make_tensor_value_info("cond_in", TP.BOOL, []),
                      H.make_tensor_value_info("acc_in", TP.FLOAT, [4]),
                      H.make_tensor_value_info("count_in", TP.FLOAT, [])],
                     [H.make_tensor_value_info(o, TP.BOOL if o == "more" else TP.FLOAT, None)
                      for o in ("more", "acc_out", "count_out")],
                     [NH.from_array(np.float32(0.5), "half"), NH.from_array(np.float32(7), "seven")])
d = model("loop_while_bounded", [H.make_node("Loop", ["", "", "acc0", "count0"], ["acc", "count"], name="lwb",
                                             body=wbody)],
          {"k": np.full(4, 2.0, np.float32)}, {"acc0": acc0, "count0": np.float32(0)}, ["acc", "count"])
acc_, count_, i_ = acc0.copy(), np.float32(0), 0
while True:  # ONNX: run iteration i while the condition holds; the body gives the next one
    acc_ = acc_ * np.float32(0.5) + np.float32(2)
    count_ += np.float32(i_)
    i_ += 1
    if not count_ < 7:
        break
run_case("loop_while_bounded_%d_iterations" % i_, d, {"k": np.full(4, 2.0, np.float32)},
         [acc_, np.array(count_, np.float32)], extra=("--max-trip-count", "10"))

# torch's own exports of scripted loops (scripts/make_control_models.py,
# tests/e2e/control): `for i in range(x.size(0))` (the trip count from a
# shape, the body's condition Identity of the graph's constant true) and a
# `while` (the body computes its condition; 32 iterations, bound 40).
CONTROL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "control")
for name, extra in (("loop_range", ("--input-shape", "x=6x4")), ("loop_while", ("--max-trip-count", "40"))):
    d = os.path.join(W, "torch_" + name)
    os.makedirs(d)
    os.symlink(os.path.join(CONTROL, name + ".onnx"), os.path.join(d, "model.onnx"))
    refs = sorted(f for f in os.listdir(CONTROL) if f.startswith(name + ".ref"))
    run_case("torch_" + name, d, {"x": np.load(os.path.join(CONTROL, name + ".x.npy"))},
             [np.load(os.path.join(CONTROL, f)) for f in refs], extra=extra)

# 7. Scan: states s (sum of a-row + b-row), inputs a along axis 0 and b
#    along axis 1 backwards; outputs s along axis 1 and -s backwards.
a = np.arange(12, dtype=np.float32).reshape(3, 4)
b = (np.arange(6, dtype=np.float32).reshape(2, 3) - 2) * 0.25
body = H.make_graph([H.make_node("Add", ["s_in", "ra"], ["t"], name="adda"),
                     H.make_node("ReduceSum", ["rb"], ["sb"], name="sumb", keepdims=0),
                     H.make_node("Add", ["t", "sb"], ["s_out"], name="addb"),
                     H.make_node("Identity", ["s_out"], ["o1"], name="o1"),
                     H.make_node("Neg", ["s_out"], ["o2"], name="o2")], "sbody",
                    [H.make_tensor_value_info(v, TP.FLOAT, None) for v in ("s_in", "ra", "rb")],
                    [H.make_tensor_value_info(v, TP.FLOAT, None) for v in ("s_out", "o1", "o2")])
nodes = [H.make_node("Scan", ["s0", "a", "b"], ["s", "y1", "y2"], name="scan0", body=body, num_scan_inputs=2,
                     scan_input_axes=[0, 1], scan_input_directions=[0, 1], scan_output_axes=[1, 0],
                     scan_output_directions=[0, 1])]
d = model("scan", nodes, {"a": a, "b": b}, {"s0": np.zeros(4, np.float32)}, ["s", "y1", "y2"], opset=16)
s_, outs = np.zeros(4, np.float32), []
for t in range(3):
    s_ = s_ + a[t] + b[:, 2 - t].sum()
    outs.append(s_.copy())
run_case("scan", d, {"a": a, "b": b}, [s_, np.stack(outs, 1), -np.stack(outs[::-1], 0)])

# 7b. Scan-8 (opset 8): a batch of 2 rows, each scanned on its own; state s
#     [2, 3], inputs a [2, 4, 3] forwards and b [2, 4] backwards
#     (directions), sequence_lens a constant of 4 each; outputs the last
#     states [2, 3] and each step's [2, 4, 3].
a8 = np.arange(24, dtype=np.float32).reshape(2, 4, 3) * 0.5
b8 = np.array([[1, 2, 3, 4], [-1, -2, -3, -4]], np.float32)
s8 = np.array([[1, 0, -1], [2, 2, 2]], np.float32)
body8 = H.make_graph([H.make_node("Add", ["s_in", "ra"], ["t"], name="adda"),
                      H.make_node("Mul", ["t", "rb"], ["s_out"], name="mulb"),
                      H.make_node("Identity", ["s_out"], ["o"], name="o")], "sbody8",
                     [H.make_tensor_value_info(v, TP.FLOAT, None) for v in ("s_in", "ra", "rb")],
                     [H.make_tensor_value_info(v, TP.FLOAT, None) for v in ("s_out", "o")])


def scan8(name, lens):
    nodes = [H.make_node("Scan", ["lens" if lens is not None else "", "s0", "a", "b"], ["s", "y"], name="scan8",
                         body=body8, num_scan_inputs=2, directions=[0, 1])]
    inits = {"s0": s8} if lens is None else {"s0": s8, "lens": np.array(lens, np.int64)}
    return model(name, nodes, {"a": a8, "b": b8}, inits, ["s", "y"], opset=8)


fin8, ys8 = [], []
for r in range(2):
    s_, outs = s8[r].copy(), []
    for t in range(4):
        s_ = (s_ + a8[r, t]) * b8[r, 3 - t]
        outs.append(s_.copy())
    fin8.append(s_)
    ys8.append(np.stack(outs))
run_case("scan8", scan8("scan8", [4, 4]), {"a": a8, "b": b8}, [np.stack(fin8), np.stack(ys8)])
run_case("scan8_no_lens", scan8("scan8_no_lens", None), {"a": a8, "b": b8}, [np.stack(fin8), np.stack(ys8)],
         targets=TARGETS[:1])


# 8. Loop and Scan errors.
def refused(name, d, want, extra=()):
    p = subprocess.run([A.moss, "compile", d + "/model.onnx", "-o", d + "/m.moss"] + list(extra),
                       capture_output=True, text=True, env=ENV)
    if p.returncode == 0 or want not in p.stderr:
        fail("%s: exit %d, %r (want %r)" % (name, p.returncode, p.stderr[-300:], want))
    else:
        print("%-28s refused: %s" % (name, p.stderr.strip().splitlines()[0]))


wbody = loop_body([H.make_node("ReduceSum", ["acc_out"], ["tot"], name="tot", keepdims=0),
                   H.make_node("Less", ["tot", "k"], ["more"], name="more")], cond_out="more")
d = model("loop_while", [H.make_node("Loop", ["m", "", "acc0", "count0"], ["acc", "count"], name="lw", body=wbody)],
          {"xs": xs}, {"m": np.array(3, np.int64), "k": k, "acc0": acc0, "count0": np.float32(0)}, ["acc", "count"])
refused("loop_while", d, "the body computes its condition")
refused("loop_while_scan_output", model("lws", [H.make_node("Loop", ["m", "", "acc0", "count0"],
                                                            ["acc", "count", "rows"], name="lws", body=wbody)],
                                        {"xs": xs}, {"m": np.array(3, np.int64), "k": k, "acc0": acc0,
                                                     "count0": np.float32(0)}, ["acc", "count", "rows"]),
        "its length only the run knows", extra=("--max-trip-count", "4"))
d = model("loop_no_count", [H.make_node("Loop", ["", "go", "acc0", "count0"], ["acc", "count"], name="ln",
                                        body=loop_body())],
          {"xs": xs}, {"go": np.array(True), "k": k, "acc0": acc0, "count0": np.float32(0)}, ["acc", "count"])
refused("loop_no_trip_count", d, "a Loop without a trip count")
d = model("loop_runtime_count", [H.make_node("Loop", ["m", "", "acc0", "count0"], ["acc", "count"], name="lr",
                                             body=loop_body())],
          {"xs": xs, "m": np.array(3, np.int64)}, {"k": k, "acc0": acc0, "count0": np.float32(0)}, ["acc", "count"])
refused("loop_runtime_trip_count", d, "--constant m=FILE, or bound the loop with --max-trip-count N")
# A body holding an If: each iteration's copy gets its own branches. The
# inner condition i < 1 is a constant in each copy (the first iteration
# negates, the others add that iteration's row, read inside the branch);
# a second If on a run-time input runs both branches each iteration.
one = NH.from_array(np.int64(1), "one")
inner = H.make_node("If", ["first"], ["iy"], name="inner",
                    then_branch=branch("t", [H.make_node("Neg", ["acc_in"], ["q"], name="q")], ["q"]),
                    else_branch=branch("e", [H.make_node("Gather", ["xs", "i"], ["row"], name="row", axis=0),
                                             H.make_node("Add", ["acc_in", "row"], ["r"], name="r")], ["r"]))
flip = H.make_node("If", ["f"], ["fy"], name="flip",
                   then_branch=branch("ft", [H.make_node("Abs", ["iy"], ["fa"], name="fa")], ["fa"]),
                   else_branch=branch("fe", [H.make_node("Identity", ["iy"], ["fb"], name="fb")], ["fb"]))
nested = H.make_graph([H.make_node("Identity", ["cond_in"], ["cond_out"], name="keep"),
                       H.make_node("Less", ["i", "one"], ["first"], name="lt"), inner, flip,
                       H.make_node("Mul", ["fy", "half"], ["acc_out"], name="halve"),
                       H.make_node("Identity", ["fy"], ["scan_out"], name="scan")], "body",
                      [H.make_tensor_value_info("i", TP.INT64, []), H.make_tensor_value_info("cond_in", TP.BOOL, []),
                       H.make_tensor_value_info("acc_in", TP.FLOAT, [4])],
                      [H.make_tensor_value_info("cond_out", TP.BOOL, []), H.make_tensor_value_info("acc_out", TP.FLOAT, None),
                       H.make_tensor_value_info("scan_out", TP.FLOAT, None)],
                      [NH.from_array(np.float32(0.5), "half"), one])
d = model("loop_nested_if", [H.make_node("Loop", ["m", "", "acc0"], ["acc", "rows"], name="lnest", body=nested)],
          {"xs": xs, "f": np.array(True)}, {"m": np.array(3, np.int64), "acc0": acc0}, ["acc", "rows"])
for fv in (True, False):
    acc_n, rows_n = acc0.copy(), []
    for i in range(3):
        iy = -acc_n if i < 1 else acc_n + xs[i]
        fy = np.abs(iy) if fv else iy
        rows_n.append(fy)
        acc_n = fy * np.float32(0.5)
    run_case("loop_nested_if_%s" % ("abs" if fv else "id"), d, {"xs": xs, "f": np.array(fv)},
             [acc_n, np.stack(rows_n)])
# A Loop in a Loop: the inner body adds the outer and inner iteration
# numbers to the carried value; each outer iteration's inner Loop is its
# own copy, body included.
ib = H.make_graph([H.make_node("Identity", ["c2"], ["c2o"], name="k2"),
                   H.make_node("Add", ["i", "j"], ["ij"], name="ij"),
                   H.make_node("Cast", ["ij"], ["fij"], name="fij", to=TP.FLOAT),
                   H.make_node("Add", ["a2", "fij"], ["a2o"], name="a2o")], "inner",
                  [H.make_tensor_value_info("j", TP.INT64, []), H.make_tensor_value_info("c2", TP.BOOL, []),
                   H.make_tensor_value_info("a2", TP.FLOAT, [4])],
                  [H.make_tensor_value_info("c2o", TP.BOOL, []), H.make_tensor_value_info("a2o", TP.FLOAT, None)])
ob = H.make_graph([H.make_node("Identity", ["c1"], ["c1o"], name="k1"),
                   H.make_node("Loop", ["three", "", "a1"], ["a1o"], name="innerloop", body=ib)], "outer",
                  [H.make_tensor_value_info("i", TP.INT64, []), H.make_tensor_value_info("c1", TP.BOOL, []),
                   H.make_tensor_value_info("a1", TP.FLOAT, [4])],
                  [H.make_tensor_value_info("c1o", TP.BOOL, []), H.make_tensor_value_info("a1o", TP.FLOAT, None)],
                  [NH.from_array(np.int64(3), "three")])
d = model("loop_in_loop", [H.make_node("Loop", ["two", "", "x0"], ["y"], name="outerloop", body=ob)],
          {"x0": acc0}, {"two": np.array(2, np.int64)}, ["y"])
run_case("loop_in_loop", d, {"x0": acc0}, [acc0 + np.float32(sum(i + j for i in range(2) for j in range(3)))])
rev = loop_body()
nodes_rev = list(rev.node)[::-1]
del rev.node[:]
rev.node.extend(nodes_rev)
d = model("loop_disorder", [H.make_node("Loop", ["m", "", "acc0", "count0"], ["acc", "count"], name="ld",
                                        body=rev)],
          {"xs": xs}, {"m": np.array(2, np.int64), "k": k, "acc0": acc0, "count0": np.float32(0)}, ["acc", "count"])
refused("loop_body_out_of_order", d, "not in topological order")
refused("scan8_short_sequence", scan8("scan8_short", [4, 2]), "gives row 1 2 steps, shorter than the scan inputs' 4")
# Ifs nested 40 deep: refused past 32, not a stack overflow.
g_ = branch("leaf", [H.make_node("Neg", ["x"], ["y0"], name="n")], ["y0"])
for depth in range(40):
    g_ = branch("b%d" % depth, [H.make_node("If", ["c"], ["y%d" % (depth + 1)], name="if%d" % depth, then_branch=g_,
                                            else_branch=branch("s", [H.make_node("Abs", ["x"], ["z"], name="z")],
                                                               ["z"]))], ["y%d" % (depth + 1)])
d = model("if_deep", list(g_.node), {"x": x, "c": np.array(True)}, {}, ["y40"])
refused("if_nested_40_deep", d, "subgraphs nested more than 32 deep")
print("control: %d failure(s)" % fail.count)
sys.exit(1 if fail.count else 0)
