#!/usr/bin/python3
"""Sequences and optionals (issue 16, item 7; ops/sequence.c,
docs/sequences.md): lists of tensors known at compile time, in models
written here with onnx.helper, each with its expected outputs derived by
hand in numpy.

- SplitToSequence (split sizes, a scalar split, no split with keepdims 0),
  SequenceAt (a negative position), SequenceErase, SequenceInsert,
  SequenceLength and ConcatFromSequence (with and without new_axis) over a
  run-time input: the lists resolve at compile time, the data runs;
- graph outputs that are a sequence, an optional of a tensor and an empty
  optional, between tensor outputs: `moss run` writes output_<i>.pb
  (SequenceProto, OptionalProto) at the model's positions and .npy for
  the tensors; the C header names the groups;
- SequenceMap with a tensor read whole by every iteration;
- If with a run-time condition choosing between two sequences (a Where per
  element), for true and false;
- a Loop carrying a sequence that grows each iteration;
- a sequence graph input frozen with --constant (a SequenceProto file);
- the errors: a sequence input without --constant, a run-time position, a
  tensor operator given a sequence, concatenating an empty sequence,
  branches of different lengths under a run-time condition, a Loop
  carrying a sequence unrolled to --max-trip-count, a position out of
  range, a TensorProto file where a SequenceProto is expected.

Each compiled for the host (LLVM), as C, for OpenCL (PoCL) and Vulkan
(lavapipe).

  test_sequences.py --moss build/moss
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as H
from onnx import numpy_helper as NH

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_dir import ELEM, Failures, RUN_TARGETS, work_env  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
A = ap.parse_args()
W, ENV, ENV_CL = work_env("moss-seq-")
fail = Failures()


def tensor_vi(name, a=None, dt=TP.FLOAT):
    return H.make_tensor_value_info(name, ELEM[a.dtype] if a is not None else dt,
                                    a.shape if a is not None else None)


def seq_vi(name, dt=TP.FLOAT):
    return H.make_value_info(name, H.make_sequence_type_proto(H.make_tensor_type_proto(dt, None)))


def opt_vi(name, dt=TP.FLOAT):
    return H.make_value_info(name, H.make_optional_type_proto(H.make_tensor_type_proto(dt, None)))


def model(name, nodes, inputs, outputs, inits=None, opset=17):
    """inputs and outputs: value infos."""
    g = H.make_graph(nodes, name, inputs, outputs, [NH.from_array(v, k) for k, v in (inits or {}).items()])
    m = H.make_model(g, opset_imports=[H.make_opsetid("", opset)])
    m.ir_version = 8
    d = os.path.join(W, name)
    os.makedirs(d, exist_ok=True)
    onnx.save(m, d + "/model.onnx")
    return d


def same(got, want):
    return got.shape == want.shape and got.dtype == want.dtype and \
        np.all(np.abs(got.astype(np.float64) - want) <= 1e-5 + 1e-4 * np.abs(want.astype(np.float64)))


def check_outputs(name, tag, out, kinds, want):
    """kinds[k]: "tensor", "sequence" or "optional"; want[k]: an array, a
    list of arrays, or None (an empty optional)."""
    for k, (kind, w) in enumerate(zip(kinds, want)):
        path = os.path.join(out, "output_%d.%s" % (k, "npy" if kind == "tensor" else "pb"))
        if not os.path.exists(path):
            fail("%s on %s: %s missing" % (name, tag, os.path.basename(path)))
            continue
        data = open(path, "rb").read() if kind != "tensor" else None
        if kind == "tensor":
            got = np.load(path)
            if not same(got, w):
                fail("%s on %s: output %d is %s %s, want %s %s" % (name, tag, k, got.dtype, got.ravel()[:6],
                                                                    w.dtype, w.ravel()[:6]))
        elif kind == "sequence":
            got = [NH.to_array(t) for t in onnx.SequenceProto.FromString(data).tensor_values]
            if len(got) != len(w) or not all(same(a, b) for a, b in zip(got, w)):
                fail("%s on %s: output %d is a sequence of %d (%s), want %d" % (
                    name, tag, k, len(got), [a.shape for a in got], len(w)))
        else:
            q = onnx.OptionalProto.FromString(data)
            if w is None:
                if q.HasField("tensor_value") or q.HasField("sequence_value"):
                    fail("%s on %s: output %d holds a value, want an empty optional" % (name, tag, k))
            elif not q.HasField("tensor_value") or not same(NH.to_array(q.tensor_value), w):
                fail("%s on %s: output %d is not the optional of %s" % (name, tag, k, w.ravel()[:6]))


def run_case(name, d, feeds, kinds, want, extra=(), targets=RUN_TARGETS):
    for k, v in feeds.items():
        np.save(os.path.join(d, k + ".npy"), v)
    before = fail.count
    for tag, target, emit in targets:
        tag2 = "%s-%d" % (tag, abs(hash(tuple(sorted((k, v.tobytes()) for k, v in feeds.items())))) % 10000)
        art = "%s/%s.%s" % (d, tag2, "c" if emit == "c" else "moss")
        p = subprocess.run([A.moss, "compile", d + "/model.onnx", "--target", target, "--emit", emit, "-o", art,
                            "-q"] + list(extra), capture_output=True, text=True, env=ENV)
        if p.returncode != 0:
            fail("%s on %s: compile failed: %s" % (name, tag, p.stderr.strip()[-400:]))
            continue
        args = []
        for k in feeds:
            args += ["--input", "%s=%s/%s.npy" % (k, d, k)]
        out = "%s/out-%s" % (d, tag2)
        p = subprocess.run([A.moss, "run", art] + args + ["-o", out], capture_output=True, text=True,
                           env=ENV_CL if tag == "opencl" else ENV)
        if p.returncode != 0:
            fail("%s on %s: run failed: %s" % (name, tag, p.stderr.strip()[-400:]))
            continue
        check_outputs(name, tag, out, kinds, want)
    if fail.count == before:
        print("%-28s ok on %s" % (name, ", ".join(t[0] for t in targets)))
    return fail.count == before


def expect_error(name, d, want, extra=()):
    p = subprocess.run([A.moss, "compile", d + "/model.onnx", "-o", d + "/never.moss", "-q"] + list(extra),
                       capture_output=True, text=True, env=ENV)
    if p.returncode in (0,) or p.returncode < 0 or p.returncode > 2 or want not in p.stderr:
        fail("%s: exit %d, stderr %r; want %r" % (name, p.returncode, p.stderr.strip()[-300:], want))
    else:
        print("%-28s refused: %s" % (name, want))


def i64(*v):
    return np.array(v, np.int64)


x = (np.arange(24, dtype=np.float32).reshape(6, 4) - 9) / 4
relu = np.maximum(x, 0)

# 1. Splits and concatenations of a run-time input.
nodes = [
    H.make_node("SplitToSequence", ["x", "sizes"], ["s"], axis=0),           # x[0:1], x[1:3], x[3:6]
    H.make_node("SequenceAt", ["s", "minus1"], ["last"]),                    # x[3:6]
    H.make_node("SequenceErase", ["s", "zero"], ["s2"]),                     # x[1:3], x[3:6]
    H.make_node("Relu", ["x"], ["r"]),
    H.make_node("SplitToSequence", ["r", "two"], ["rs"], axis=1),            # r[:, 0:2], r[:, 2:4]
    H.make_node("SequenceAt", ["rs", "one"], ["r1"]),
    H.make_node("SequenceInsert", ["s2", "r1", "one"], ["s3"]),              # x[1:3], r[:, 2:4], x[3:6]
    H.make_node("ConcatFromSequence", ["s"], ["c1"], axis=0),                # x
    H.make_node("SplitToSequence", ["x"], ["cols"], axis=1, keepdims=0),     # x[:, j], 4 of [6]
    H.make_node("ConcatFromSequence", ["cols"], ["c2"], axis=0, new_axis=1),  # x.T
    H.make_node("SequenceLength", ["s"], ["n"]),
]
d = model("split_concat", nodes, [tensor_vi("x", x)],
          [tensor_vi("c1"), tensor_vi("c2"), tensor_vi("n", dt=TP.INT64), tensor_vi("last"), seq_vi("s3")],
          {"sizes": i64(1, 2, 3), "minus1": i64(-1), "zero": i64(0), "two": np.array(2, np.int64), "one": i64(1)})
run_case("split_concat", d, {"x": x}, ["tensor"] * 4 + ["sequence"],
         [x, x.T.copy(), np.array(3, np.int64), x[3:6], [x[1:3], relu[:, 2:4], x[3:6]]])

# 2. A sequence, a tensor, an optional and an empty optional as outputs,
#    and what the C header says of them.
nodes = [
    H.make_node("Mul", ["x", "two"], ["x2"]),
    H.make_node("Add", ["x", "two"], ["xp"]),
    H.make_node("SequenceConstruct", ["x2", "xp", "x2"], ["s"]),
    H.make_node("Sub", ["x", "two"], ["xm"]),
    H.make_node("Optional", ["xm"], ["o"]),
    H.make_node("Optional", [], ["none"], type=H.make_tensor_type_proto(TP.FLOAT, None)),
]
d = model("outputs", nodes, [tensor_vi("x", x)],
          [seq_vi("s"), tensor_vi("xm"), opt_vi("o"), opt_vi("none")], {"two": np.float32(2)}, opset=16)
run_case("outputs", d, {"x": x}, ["sequence", "tensor", "optional", "optional"],
         [[x * 2, x + 2, x * 2], x - 2, x - 2, None])
p = subprocess.run([A.moss, "compile", d + "/model.onnx", "--emit", "c", "-o", d + "/hdr", "--name", "seqm", "-q"],
                   capture_output=True, text=True, env=ENV)
hdr = open(d + "/hdr/seqm.h").read() if p.returncode == 0 else p.stderr
for want in ("#define SEQM_GROUP0_POSITION 0", "#define SEQM_GROUP0_FIRST 0", "#define SEQM_GROUP0_COUNT 3",
             "#define SEQM_GROUP1_POSITION 2", "#define SEQM_GROUP1_FIRST 4", "#define SEQM_GROUP2_POSITION 3",
             "#define SEQM_GROUP2_COUNT 0", "is an empty optional"):
    if want not in hdr:
        fail("outputs: the C header lacks %r" % want)

# 3. SequenceMap: each row of x through the body, w read whole.
w = np.array([1, -2, 3, -4], np.float32)
body = H.make_graph([H.make_node("Mul", ["e", "wb"], ["m"]), H.make_node("Relu", ["m"], ["y"])], "body",
                    [tensor_vi("e"), tensor_vi("wb")], [tensor_vi("y")])
nodes = [H.make_node("SplitToSequence", ["x"], ["rows"], axis=0),
         H.make_node("SequenceMap", ["rows", "w"], ["ys"], body=body),
         H.make_node("ConcatFromSequence", ["ys"], ["y"], axis=0)]
d = model("sequence_map", nodes, [tensor_vi("x", x), tensor_vi("w", w)], [tensor_vi("y"), seq_vi("ys")])
run_case("sequence_map", d, {"x": x, "w": w}, ["tensor", "sequence"],
         [np.maximum(x * w, 0), [np.maximum(x[i:i + 1] * w, 0) for i in range(6)]])

# 4. If with a run-time condition between two sequences of two.
then_b = H.make_graph([H.make_node("Neg", ["x"], ["nx"]), H.make_node("SequenceConstruct", ["x", "nx"], ["ts"])],
                      "then", [], [seq_vi("ts")])
else_b = H.make_graph([H.make_node("Abs", ["x"], ["ax"]), H.make_node("SequenceConstruct", ["ax", "ax"], ["es"])],
                      "else", [], [seq_vi("es")])
nodes = [H.make_node("If", ["c"], ["s"], then_branch=then_b, else_branch=else_b),
         H.make_node("ConcatFromSequence", ["s"], ["y"], axis=0, new_axis=1)]
d = model("if_runtime", nodes, [tensor_vi("x", x), tensor_vi("c", np.array(True))], [tensor_vi("y")])
run_case("if_runtime_true", d, {"x": x, "c": np.array(True)}, ["tensor"], [np.stack([x, -x])])
run_case("if_runtime_false", d, {"x": x, "c": np.array(False)}, ["tensor"], [np.stack([abs(x), abs(x)])])

# 5. A Loop that appends x * i to a sequence, three times.
body = H.make_graph([H.make_node("Identity", ["cin"], ["cout"]),
                     H.make_node("Cast", ["i"], ["fi"], to=TP.FLOAT),
                     H.make_node("Mul", ["x", "fi"], ["xi"]),
                     H.make_node("SequenceInsert", ["sin", "xi"], ["sout"])], "body",
                    [tensor_vi("i", dt=TP.INT64), tensor_vi("cin", dt=TP.BOOL), seq_vi("sin")],
                    [tensor_vi("cout", dt=TP.BOOL), seq_vi("sout")])
nodes = [H.make_node("SequenceEmpty", [], ["e"], dtype=TP.FLOAT),
         H.make_node("Loop", ["three", "", "e"], ["s"], body=body),
         H.make_node("ConcatFromSequence", ["s"], ["y"], axis=1)]
d = model("loop_grows", nodes, [tensor_vi("x", x)], [tensor_vi("y"), seq_vi("s")], {"three": i64(3)})
run_case("loop_grows", d, {"x": x}, ["tensor", "sequence"], [np.concatenate([x * 0, x, x * 2], 1), [x * 0, x, x * 2]])

# 6. A sequence graph input, frozen with --constant from a SequenceProto file.
parts = [x[0:2], x[2:3]]
nodes = [H.make_node("SequenceInsert", ["s", "x"], ["s2"]),
         H.make_node("ConcatFromSequence", ["s2"], ["y"], axis=0)]
d = model("frozen_input", nodes, [seq_vi("s"), tensor_vi("x", x)], [tensor_vi("y"), seq_vi("s2")])
with open(d + "/s.pb", "wb") as f:
    f.write(onnx.SequenceProto(elem_type=onnx.SequenceProto.TENSOR,
                               tensor_values=[NH.from_array(p) for p in parts]).SerializeToString())
run_case("frozen_input", d, {"x": x}, ["tensor", "sequence"], [np.concatenate([x[0:2], x[2:3], x]), parts + [x]],
         extra=("--constant", "s=%s/s.pb" % d))

# 7. The errors.
expect_error("input_not_frozen", d, "graph input 's' is a sequence: moss compiles sequences and optionals as lists "
             "known at compile time; fix it with --constant s=FILE")
with open(d + "/t.pb", "wb") as f:
    f.write(NH.from_array(x).SerializeToString())
expect_error("tensor_file_for_sequence", d, "the SequenceProto holds field 9", extra=("--constant", "s=%s/t.pb" % d))
with open(d + "/cut.pb", "wb") as f:
    f.write(open(d + "/s.pb", "rb").read()[:-5])
expect_error("truncated_sequence_file", d, "is not an ONNX SequenceProto (.pb) file",
             extra=("--constant", "s=%s/cut.pb" % d))

nodes = [H.make_node("SplitToSequence", ["x"], ["s"], axis=0), H.make_node("SequenceAt", ["s", "p"], ["y"])]
d = model("runtime_position", nodes, [tensor_vi("x", x), tensor_vi("p", np.array(0, np.int64))], [tensor_vi("y")])
expect_error("runtime_position", d, "fix it at compile time with --constant p=FILE")

nodes = [H.make_node("SplitToSequence", ["x"], ["s"], axis=0), H.make_node("Relu", ["s"], ["y"])]
d = model("tensor_op_on_sequence", nodes, [tensor_vi("x", x)], [tensor_vi("y")])
expect_error("tensor_op_on_sequence", d, "(Relu): unsupported: input 's' is a sequence; Relu takes tensors")

nodes = [H.make_node("SequenceEmpty", [], ["s"]), H.make_node("ConcatFromSequence", ["s"], ["y"], axis=0)]
d = model("concat_empty", nodes, [tensor_vi("x", x)], [tensor_vi("y")])
expect_error("concat_empty", d, "the sequence is empty: there is nothing to concatenate")

then_b = H.make_graph([H.make_node("SequenceConstruct", ["x"], ["ts"])], "then", [], [seq_vi("ts")])
else_b = H.make_graph([H.make_node("SequenceConstruct", ["x", "x"], ["es"])], "else", [], [seq_vi("es")])
d = model("if_lengths_differ", [H.make_node("If", ["c"], ["s"], then_branch=then_b, else_branch=else_b)],
          [tensor_vi("x", x), tensor_vi("c", np.array(True))], [seq_vi("s")])
expect_error("if_lengths_differ", d, "the branches give a sequence of 1 and a sequence of 2: a sequence or optional "
             "is known at compile time, so the condition must be too: fix it with --constant c=FILE")
np.save(d + "/c.npy", np.array(False))
run_case("if_lengths_frozen", d, {"x": x}, ["sequence"], [[x, x]], extra=("--constant", "c=%s/c.npy" % d),
         targets=RUN_TARGETS[:2])

body = H.make_graph([H.make_node("Identity", ["cin"], ["cout"]), H.make_node("SequenceInsert", ["sin", "x"], ["sout"])],
                    "body", [tensor_vi("i", dt=TP.INT64), tensor_vi("cin", dt=TP.BOOL), seq_vi("sin")],
                    [tensor_vi("cout", dt=TP.BOOL), seq_vi("sout")])
d = model("loop_runtime_count", [H.make_node("SequenceEmpty", [], ["e"]), H.make_node("Loop", ["n", "", "e"], ["s"],
                                                                                     body=body)],
          [tensor_vi("x", x), tensor_vi("n", np.array(3, np.int64))], [seq_vi("s")])
expect_error("loop_runtime_count", d, "ends at run time: a sequence's length is known at compile time, so its trip "
             "count and condition must be too: fix them with --constant n=FILE", extra=("--max-trip-count", "4"))

nodes = [H.make_node("SequenceConstruct", ["x", "x"], ["s"]), H.make_node("SequenceInsert", ["s", "x", "five"], ["t"])]
d = model("position_out_of_range", nodes, [tensor_vi("x", x)], [seq_vi("t")], {"five": i64(5)})
expect_error("position_out_of_range", d, "position 5 is outside a sequence of 2")

print("sequences: %d failure(s)" % fail.count)
sys.exit(1 if fail.count else 0)
