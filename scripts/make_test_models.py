#!/usr/bin/python3
"""Writes the small hand-made ONNX models the unit and golden tests use:
malformed models for the importer's error paths (tests/unit/data/models/)
and tiny graphs for the golden C files (tests/golden/). Run with Debian's
/usr/bin/python3 (python3-onnx); the outputs are committed."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BAD = os.path.join(ROOT, "tests", "unit", "data", "models")
GOLD = os.path.join(ROOT, "tests", "golden")


def model(nodes, inputs, outputs, inits=(), opset=13, name="g"):
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    return m


def save(m, path):
    with open(path, "wb") as f:
        f.write(m.SerializeToString())


def vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def main():
    os.makedirs(BAD, exist_ok=True)
    os.makedirs(GOLD, exist_ok=True)
    rng = np.random.RandomState(0)

    # A valid small model; the truncated variant is cut from it.
    w = numpy_helper.from_array(rng.randn(4).astype(np.float32), "w")
    good = model([helper.make_node("Add", ["x", "w"], ["s"], name="add0"),
                  helper.make_node("Relu", ["s"], ["y"], name="relu0")],
                 [vi("x", [2, 4])], [vi("y", [2, 4])], [w])
    save(good, os.path.join(BAD, "good.onnx"))
    data = good.SerializeToString()
    with open(os.path.join(BAD, "truncated.onnx"), "wb") as f:
        f.write(data[: len(data) * 2 // 3])
    with open(os.path.join(BAD, "not_protobuf.onnx"), "wb") as f:
        f.write(b"this is a text file, not an ONNX model\n" * 4)

    # An initializer the graph uses but never defines.
    save(model([helper.make_node("Add", ["x", "missing_w"], ["y"], name="add0")],
               [vi("x", [2, 4])], [vi("y", [2, 4])]),
         os.path.join(BAD, "missing_initializer.onnx"))

    # Shapes that do not broadcast: [2,4] + [3].
    w3 = numpy_helper.from_array(np.ones(3, np.float32), "w3")
    save(model([helper.make_node("Add", ["x", "w3"], ["y"], name="add_bad")],
               [vi("x", [2, 4])], [vi("y", [2, 4])], [w3]),
         os.path.join(BAD, "inconsistent_shapes.onnx"))

    # An input of an unknown element type (99).
    save(model([helper.make_node("Relu", ["x"], ["y"], name="relu0")],
               [helper.make_tensor_value_info("x", 99, [2])], [vi("y", [2])]),
         os.path.join(BAD, "unknown_dtype.onnx"))

    # a -> b -> a: a cycle.
    save(model([helper.make_node("Relu", ["x2"], ["x1"], name="first"),
                helper.make_node("Relu", ["x1"], ["x2"], name="second"),
                helper.make_node("Add", ["x", "x2"], ["y"], name="add0")],
               [vi("x", [2])], [vi("y", [2])]),
         os.path.join(BAD, "cycle.onnx"))

    # Two unsupported nodes: both must be reported.
    save(model([helper.make_node("FrobnicateA", ["x"], ["t"], name="frob_a"),
                helper.make_node("Relu", ["t"], ["u"], name="relu0"),
                helper.make_node("FrobnicateB", ["u"], ["y"], name="frob_b")],
               [vi("x", [2])], [vi("y", [2])]),
         os.path.join(BAD, "two_unsupported.onnx"))

    # An operator of a domain of its own, imported at version 1.
    m = model([helper.make_node("Frob", ["x"], ["y"], name="frob0", domain="com.example")],
              [vi("x", [2, 4])], [vi("y", [2, 4])])
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    save(m, os.path.join(BAD, "custom_domain.onnx"))

    # A shape-deciding graph input (Reshape's shape) and a symbolic batch.
    save(model([helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape0")],
               [vi("x", ["batch", 6]), vi("shape", [2], TensorProto.INT64)], [vi("y", None)]),
         os.path.join(BAD, "shape_input.onnx"))
    np.save(os.path.join(BAD, "shape_3x4.npy"), np.array([3, 4], np.int64))

    # An If with a constant condition whose chosen branch holds an LSTM (the
    # other a Relu): the importer's subgraphs, passes/control.c and
    # passes/recurrent.c under the failing allocator.
    r = np.random.RandomState(1)
    lstm = helper.make_node("LSTM", ["x", "lw", "lr", "lb"], ["ly"], name="lstm0", hidden_size=3,
                            direction="bidirectional")
    then_b = helper.make_graph([lstm, helper.make_node("Reshape", ["ly", "lshape"], ["t"], name="flat")], "then",
                               [], [vi("t", None)],
                               [numpy_helper.from_array(np.array([2, 6], np.int64), "lshape")])
    else_b = helper.make_graph([helper.make_node("Relu", ["x2"], ["e"], name="relu")], "else", [], [vi("e", None)])
    save(model([helper.make_node("Reshape", ["x", "xshape"], ["x2"], name="x2"),
                helper.make_node("If", ["cond"], ["y"], name="if0", then_branch=then_b, else_branch=else_b)],
               [vi("x", [2, 1, 4])], [vi("y", None)],
               [numpy_helper.from_array(np.array(True), "cond"),
                numpy_helper.from_array(np.array([2, 4], np.int64), "xshape"),
                numpy_helper.from_array(r.randn(2, 12, 4).astype(np.float32), "lw"),
                numpy_helper.from_array(r.randn(2, 12, 3).astype(np.float32), "lr"),
                numpy_helper.from_array(r.randn(2, 24).astype(np.float32), "lb")], opset=14),
         os.path.join(BAD, "if_lstm.onnx"))

    # A Loop of 3 iterations (a carried value, a scan output, an outer value)
    # feeding a Scan: passes/control.c's unrolling under the failing allocator.
    body = helper.make_graph([helper.make_node("Identity", ["c"], ["c2"], name="keep"),
                              helper.make_node("Add", ["v", "w"], ["v2"], name="add"),
                              helper.make_node("Identity", ["v2"], ["out"], name="out")], "body",
                             [vi("i", [], TensorProto.INT64), vi("c", [], TensorProto.BOOL), vi("v", [4])],
                             [vi("c2", [], TensorProto.BOOL), vi("v2", [4]), vi("out", [4])])
    sbody = helper.make_graph([helper.make_node("Mul", ["s", "row"], ["s2"], name="mul"),
                               helper.make_node("Relu", ["s2"], ["o"], name="relu")], "sbody",
                              [vi("s", [4]), vi("row", [4])], [vi("s2", [4]), vi("o", [4])])
    save(model([helper.make_node("Loop", ["m", "", "x"], ["last", "rows"], name="loop0", body=body),
                helper.make_node("Scan", ["last", "rows"], ["y", "ys"], name="scan0", body=sbody, num_scan_inputs=1)],
               [vi("x", [4])], [vi("y", None), vi("ys", None)],
               [numpy_helper.from_array(np.array(3, np.int64), "m"),
                numpy_helper.from_array(r.randn(4).astype(np.float32), "w")], opset=16),
         os.path.join(BAD, "loop_scan.onnx"))

    # External data: the weights in a file beside the model.
    wext = numpy_helper.from_array(np.arange(4, dtype=np.float32), "wext")
    ext = model([helper.make_node("Add", ["x", "wext"], ["y"], name="add0")],
                [vi("x", [4])], [vi("y", [4])], [wext])
    onnx.external_data_helper.convert_model_to_external_data(
        ext, all_tensors_to_one_file=True, location="external.bin", size_threshold=0)
    onnx.save_model(ext, os.path.join(BAD, "external.onnx"))

    # Golden: a small graph touching folding, fusion-free elementwise ops,
    # broadcasting, an in-place Reshape and a Constant.
    c = numpy_helper.from_array(rng.randn(1, 3).astype(np.float32), "c")
    gold = model([
        helper.make_node("Mul", ["x", "c"], ["m"], name="scale"),
        helper.make_node("Sigmoid", ["m"], ["s"], name="gate"),
        helper.make_node("Reshape", ["s", "shp"], ["r"], name="flat"),
        helper.make_node("Add", ["r", "r"], ["y"], name="double"),
    ], [vi("x", [2, 3])], [vi("y", [6])],
        [c, numpy_helper.from_array(np.array([6], np.int64), "shp")], name="small")
    save(gold, os.path.join(GOLD, "small.onnx"))


if __name__ == "__main__":
    sys.exit(main())
