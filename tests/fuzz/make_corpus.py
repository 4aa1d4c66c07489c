#!/usr/bin/python3
"""Writes the fuzzers' seed corpora, tests/fuzz/corpus/<name>/ (committed;
run again only to change them): small real inputs of each kind.

  onnx    models of tests/ and ONNX node tests (libonnx-testdata) whose inputs
          but the first are made initializers from the test's own data, so
          that they compile all the way (a node test with its parameters as
          graph inputs would stop at the importer)
  tensor  .npy files of each dtype moss reads (numpy), .pb TensorProtos of
          the node tests, and their SequenceProtos and OptionalProtos
  target  targets/*.xml and the unit tests' target files
  bundle  bundles moss makes of small models, and the unit tests' bundles

Usage: /usr/bin/python3 tests/fuzz/make_corpus.py --moss build/moss
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE = "/usr/share/libonnx-testdata/data/node"
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")

NODE_TESTS = """conv_with_strides_padding conv_with_autopad_same convtranspose maxpool_2d_pads
averagepool_2d_pads globalaveragepool gemm_default_no_bias matmul_2d relu sigmoid clip add_bcast
batchnorm_epsilon softmax_axis_1 reshape_reordered_all_dims transpose_all_permutations_0
concat_2d_axis_0 slice gather_0 quantizelinear dequantizelinear qlinearconv
resize_upsample_scales_nearest reduce_mean_keepdims_example cast_FLOAT_to_FLOAT16
split_equal_parts_1d squeeze unsqueeze_axis_0 flatten_axis1 where_example expand_dim_changed tile
einsum_batch_matmul layer_normalization_2d_axis0 constantofshape_int_zeros
range_float_type_positive_delta argmax_default_axis_example lrn instancenorm_example
depthtospace_example convinteger_with_padding matmulinteger cumsum_1d lstm_with_peepholes gru_seq_length
simple_rnn_batchwise if loop11 scan9_sum nonzero_example unique_sorted_with_axis
nonmaxsuppression_two_classes top_k compress_0 if_seq""".split()

MODELS = ["tests/golden/small.onnx", "tests/golden/digits_cnn.onnx", "tests/e2e/digits/cnn_qdq.onnx",
          "tests/unit/data/cost/matmul_relu.onnx"] + [
    "tests/unit/data/models/" + m for m in
    ("good.onnx", "shape_input.onnx", "two_unsupported.onnx", "cycle.onnx", "external.onnx",
     "inconsistent_shapes.onnx", "missing_initializer.onnx", "unknown_dtype.onnx", "if_lstm.onnx",
     "loop_scan.onnx")] + ["tests/e2e/ort_quant/ops_qop_pt_u8.onnx", "examples/vad/vad.onnx",
                              "tests/e2e/dynamic/nms_tail.onnx", "tests/e2e/dynamic/masked.onnx"]

PB_TESTS = ["relu", "cast_FLOAT_to_FLOAT16", "gather_0", "quantizelinear", "where_example",
            "matmulinteger", "constantofshape_int_zeros"]


def fresh(name):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def node_model(test):
    """The node test's model with inputs 1.. frozen into initializers."""
    d = os.path.join(NODE, "test_" + test)
    m = onnx.load(os.path.join(d, "model.onnx"))
    data = os.path.join(d, "test_data_set_0")
    g = m.graph
    keep = list(g.input)[:1]
    for i, inp in enumerate(list(g.input)[1:], start=1):
        t = onnx.TensorProto()
        with open(os.path.join(data, "input_%d.pb" % i), "rb") as f:
            t.ParseFromString(f.read())
        t.name = inp.name
        g.initializer.append(t)
    del g.input[:]
    g.input.extend(keep)
    return m


def sequence_model():
    """Sequences of a run-time input (docs/sequences.md): split, taken,
    mapped, concatenated, and a sequence output."""
    from onnx import TensorProto as TP, helper as H
    seq = H.make_sequence_type_proto(H.make_tensor_type_proto(TP.FLOAT, None))
    body = H.make_graph([H.make_node("Relu", ["e"], ["y"])], "body",
                        [H.make_tensor_value_info("e", TP.FLOAT, None)], [H.make_tensor_value_info("y", TP.FLOAT, None)])
    nodes = [H.make_node("SplitToSequence", ["x", "sizes"], ["s"], axis=0),
             H.make_node("SequenceAt", ["s", "one"], ["a"]),
             H.make_node("SequenceInsert", ["s", "a", "one"], ["s2"]),
             H.make_node("SequenceMap", ["s2"], ["m"], body=body),
             H.make_node("ConcatFromSequence", ["m"], ["c"], axis=0, new_axis=0),
             H.make_node("SequenceLength", ["m"], ["n"])]
    g = H.make_graph(nodes, "seq", [H.make_tensor_value_info("x", TP.FLOAT, [6, 4])],
                     [H.make_tensor_value_info("c", TP.FLOAT, None), H.make_tensor_value_info("n", TP.INT64, []),
                      H.make_value_info("s2", seq)],
                     [numpy_helper.from_array(np.array([1, 2, 3], np.int64), "sizes"),
                      numpy_helper.from_array(np.array(1, np.int64), "one")])
    m = H.make_model(g, opset_imports=[H.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def onnx_corpus():
    d = fresh("onnx")
    for p in MODELS:
        shutil.copy(os.path.join(ROOT, p), os.path.join(d, os.path.basename(p)))
    for t in NODE_TESTS:
        onnx.save(node_model(t), os.path.join(d, "node_" + t + ".onnx"))
    onnx.save(sequence_model(), os.path.join(d, "sequences.onnx"))


def tensor_corpus():
    d = fresh("tensor")
    arrays = {
        "f32_2x3": np.arange(6, dtype="<f4").reshape(2, 3),
        "f64_scalar": np.array(1.5, dtype="<f8"),
        "i64_4": np.array([1, -2, 3, 1 << 40], dtype="<i8"),
        "i32_1x2x1": np.array([[[7], [-8]]], dtype="<i4"),
        "i16_3": np.array([1, 2, 3], dtype="<i2"),
        "i8_2x2": np.array([[-128, 127], [0, 1]], dtype="i1"),
        "u8_5": np.arange(5, dtype="u1"),
        "u16_2": np.array([1, 65535], dtype="<u2"),
        "u32_2": np.array([1, 1 << 31], dtype="<u4"),
        "u64_1": np.array([1 << 63], dtype="<u8"),
        "bool_3": np.array([True, False, True]),
        "f16_2x1": np.array([[0.5], [-2]], dtype="<f2"),
        "f32_empty": np.zeros((0, 3), dtype="<f4"),
        "f32_rank6": np.ones((1, 2, 1, 1, 2, 1), dtype="<f4"),
    }
    for name, a in arrays.items():
        np.save(os.path.join(d, name + ".npy"), a)
    with open(os.path.join(d, "f32_v2.npy"), "wb") as f:
        np.lib.format.write_array(f, np.ones((2, 2), dtype="<f4"), version=(2, 0))
    for t in PB_TESTS:
        data = os.path.join(NODE, "test_" + t, "test_data_set_0")
        for f in sorted(os.listdir(data)):
            if f.startswith("input_"):
                shutil.copy(os.path.join(data, f), os.path.join(d, t + "_" + f))
    t = numpy_helper.from_array(np.arange(4, dtype=np.float32).reshape(2, 2), "named")
    t.raw_data = b""
    t.float_data.extend([0, 1, 2, 3])
    with open(os.path.join(d, "float_data.pb"), "wb") as f:
        f.write(t.SerializeToString())
    # sequences and optionals (--constant of such an input, docs/sequences.md)
    for t in ("sequence_insert_at_back", "optional_get_element", "optional_get_element_sequence",
              "optional_has_element_empty", "loop16_seq_none"):
        data = os.path.join(NODE, "test_" + t, "test_data_set_0")
        for f in sorted(os.listdir(data)):
            if f.startswith("input_"):
                shutil.copy(os.path.join(data, f), os.path.join(d, "list_" + t + "_" + f))


def target_corpus():
    d = fresh("target")
    for folder in ("targets", "tests/unit/data/targets", "tests/unit/data/partition",
                   "tests/unit/data/cost", "tests/unit/data/backend"):
        for f in sorted(os.listdir(os.path.join(ROOT, folder))):
            if f.endswith(".xml"):
                prefix = "" if folder == "targets" else os.path.basename(folder) + "_"
                shutil.copy(os.path.join(ROOT, folder, f), os.path.join(d, prefix + f))


def bundle_corpus(moss):
    d = fresh("bundle")
    for f in sorted(os.listdir(os.path.join(ROOT, "tests/unit/data/bundle"))):
        shutil.copy(os.path.join(ROOT, "tests/unit/data/bundle", f), os.path.join(d, f))
    env = dict(os.environ, MOSS_TARGETS_DIR=os.path.join(ROOT, "targets"))
    with tempfile.TemporaryDirectory() as tmp:
        for p, target in (("tests/golden/small.onnx", "x86_64-avx2"),
                          ("tests/unit/data/models/good.onnx", "x86_64-avx2"),
                          ("tests/unit/data/cost/matmul_relu.onnx", "x86_64-avx2")):
            name = os.path.splitext(os.path.basename(p))[0]
            out = os.path.join(d, name + ".moss")
            subprocess.run([moss, "compile", os.path.join(ROOT, p), "--target", target, "-o", out],
                           check=True, env=env, cwd=tmp)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moss", required=True, help="the moss binary, for the bundles")
    a = ap.parse_args()
    onnx_corpus()
    tensor_corpus()
    target_corpus()
    bundle_corpus(os.path.abspath(a.moss))
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print("corpus: %d bytes" % total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
