#!/usr/bin/python3
"""Malformed models are refused, never compiled with a guess (issue 11).

Each case builds a small model with onnx's helpers, breaks one thing in it
(an opset, the IR version, an attribute's type or range, a declared shape,
an initializer's data) and runs `moss compile`. It must exit with a status
from 1 to 127, write no output, and print one line in the DESIGN.md shape,
`<file>: [node '<name>' (<Op>): ]<category>: <reason>`, with the expected
category and the named facts (node, attribute, the type found and the type
expected, both shapes, ...). The intact models, and legal variants that
look odd (opset 1, symbolic declared dimensions, an unused foreign domain),
must compile.

  test_malformed.py --moss build/moss
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

# What moss reads (compiler/import/onnx_import.c).
OPSETS = "opsets 1 to 21"
IR = "IR versions 1 to 10"
BIG = 1 << 40
I64_MAX = (1 << 63) - 1


def vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def attr(name, value, type_=None):
    """An attribute of exactly the given ONNX type (make_attribute guesses)."""
    a = AttributeProto()
    a.name = name
    if type_ is None:
        return helper.make_attribute(name, value)
    a.type = type_
    if type_ == AttributeProto.INT:
        a.i = value
    elif type_ == AttributeProto.FLOAT:
        a.f = value
    elif type_ == AttributeProto.STRING:
        a.s = value.encode()
    elif type_ == AttributeProto.INTS:
        a.ints.extend(value)
    elif type_ == AttributeProto.FLOATS:
        a.floats.extend(value)
    return a


def cnn(conv=None, pool=None, perm=None, softmax=None, y_shape=(1, 4, 4, 2),
        y_type=TensorProto.FLOAT, opset=13, ir=7, outputs=None):
    """x[1,1,8,8] -> Conv(3x3, pads 1) -> Relu -> MaxPool(2, stride 2) ->
    Transpose(0,2,3,1) -> Softmax(axis -1) -> y[1,4,4,2]. Each of conv, pool,
    perm, softmax replaces that node's attributes when given."""
    w = numpy_helper.from_array(
        np.random.RandomState(0).randn(2, 1, 3, 3).astype(np.float32), "w")
    c = helper.make_node("Conv", ["x", "w"], ["c"], name="conv0")
    c.attribute.extend(conv if conv is not None else
                       [attr("kernel_shape", [3, 3]), attr("pads", [1, 1, 1, 1])])
    p = helper.make_node("MaxPool", ["r"], ["p"], name="pool0")
    p.attribute.extend(pool if pool is not None else
                       [attr("kernel_shape", [2, 2]), attr("strides", [2, 2])])
    t = helper.make_node("Transpose", ["p"], ["t"], name="transpose0")
    t.attribute.extend(perm if perm is not None else [attr("perm", [0, 2, 3, 1])])
    s = helper.make_node("Softmax", ["t"], ["y"], name="softmax0")
    s.attribute.extend(softmax if softmax is not None else [attr("axis", -1)])
    nodes = [c, helper.make_node("Relu", ["c"], ["r"], name="relu0"), p, t, s]
    outs = outputs if outputs is not None else [vi("y", list(y_shape), y_type)]
    g = helper.make_graph(nodes, "cnn", [vi("x", [1, 1, 8, 8])], outs, [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir
    return m


def one(op, attrs=(), opset=13, domain="", imports=None, x_shape=(2, 3), ir=7,
        y_type=TensorProto.FLOAT):
    """x -> op -> y, y's shape left to inference."""
    n = helper.make_node(op, ["x"], ["y"], name="n0", domain=domain)
    n.attribute.extend(attrs)
    g = helper.make_graph([n], "one", [vi("x", list(x_shape))], [vi("y", None, y_type)])
    m = helper.make_model(g, opset_imports=imports if imports is not None
                          else [helper.make_opsetid("", opset)])
    m.ir_version = ir
    return m


TRAINING = "ai.onnx.preview.training"


def optimizer(op="Momentum", n_in=5, attrs=None, domain=TRAINING, version=1):
    """R, T, X, G, V... -> ONNX's training optimizer op (one tensor) -> X_new, V_new."""
    names = ["R", "T", "X", "G", "V", "H"][:n_in]
    types = {"T": TensorProto.INT64}
    n = helper.make_node(op, names, ["Xn", "Vn"], name="n0", domain=domain)
    n.attribute.extend(attrs if attrs is not None else
                       [attr("alpha", 0.9), attr("beta", 0.5), attr("mode", "standard"),
                        attr("norm_coefficient", 0.0)])
    ins = [vi(k, [] if k in "RT" else [2], types.get(k, TensorProto.FLOAT)) for k in names]
    g = helper.make_graph([n], "opt", ins, [vi("Xn", None), vi("Vn", None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid(domain or "", version)])
    m.ir_version = 7
    return m


def dropout_training(ratio):
    """Dropout-13 in training mode (a constant true) with a constant ratio."""
    n = helper.make_node("Dropout", ["x", "r", "t"], ["y"], name="n0")
    g = helper.make_graph([n], "drop", [vi("x", [2, 3])], [vi("y", None)],
                          [numpy_helper.from_array(np.array(ratio, np.float32), "r"),
                           numpy_helper.from_array(np.array(True), "t")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    return m


def with_opsets(m, imports):
    del m.opset_import[:]
    m.opset_import.extend(imports)
    return m


def no_data_initializer():
    """An initializer declaring 2^31 float32 elements with no data at all."""
    t = TensorProto()
    t.name = "w"
    t.data_type = TensorProto.FLOAT
    t.dims.extend([1 << 31])
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"], name="add0")], "g",
                          [vi("x", [1 << 31])], [vi("y", [1 << 31])], [t])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    return m


def input_dim(d):
    g = helper.make_graph([helper.make_node("Relu", ["input"], ["y"], name="relu0")], "g",
                          [vi("input", [d, 64])], [vi("y", None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    return m


def legacy_add(attrs, b_len, opset=6):
    """Add(x[3,3], b[b_len]) with the attributes of opsets 1 to 6 (with
    axis 0, b goes down the rows, where numpy's rule puts it along them)."""
    n = helper.make_node("Add", ["x", "b"], ["y"], name="n0")
    n.attribute.extend(attrs)
    g = helper.make_graph([n], "g", [vi("x", [3, 3])], [vi("y", None)],
                          [numpy_helper.from_array(np.arange(b_len, dtype=np.float32), "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 3
    return m


def quantize(attrs, scale_shape=(), zp=None):
    """QuantizeLinear(x[2,4], scale 0.5[, zp]) at opset 21."""
    inits = [numpy_helper.from_array(np.full(scale_shape, 0.5, np.float32), "s")]
    ins = ["x", "s"]
    if zp is not None:
        inits.append(numpy_helper.from_array(np.zeros(scale_shape, zp), "z"))
        ins.append("z")
    n = helper.make_node("QuantizeLinear", ins, ["y"], name="q0")
    n.attribute.extend(attrs)
    g = helper.make_graph([n], "g", [vi("x", [2, 4])], [vi("y", None, TensorProto.UNDEFINED)],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    return m


def dup_attr():
    m = cnn()
    m.graph.node[3].attribute.extend([attr("perm", [0, 1, 2, 3])])
    return m


S, I, F, IS = AttributeProto.STRING, AttributeProto.INT, AttributeProto.FLOAT, AttributeProto.INTS
KS, PADS = attr("kernel_shape", [3, 3]), attr("pads", [1, 1, 1, 1])

# (name, model, extra compile arguments, category, fragments of the message)
BAD = [
    # Opsets and the IR version.
    ("opset_99", cnn(opset=99), [], "unsupported",
     ["opset 99 of the default ONNX domain", OPSETS]),
    ("opset_2p40", cnn(opset=BIG), [], "unsupported", ["opset %d" % BIG, OPSETS]),
    ("opset_0", cnn(opset=0), [], "invalid-model", ["opset 0", OPSETS]),
    ("opset_none", with_opsets(cnn(), []), [], "invalid-model",
     ["imports no opset of the default ONNX domain", OPSETS]),
    ("opset_twice", with_opsets(cnn(), [helper.make_opsetid("", 13),
                                        helper.make_opsetid("ai.onnx", 17)]), [],
     "invalid-model", ["default ONNX domain twice", "13", "17"]),
    ("op_newer_than_opset", one("Gelu", opset=13), [], "invalid-model",
     ["node 'n0' (Gelu)", "from opset 20", "imports opset 13"]),
    ("hardswish_at_opset_1", one("HardSwish", opset=1), [], "invalid-model",
     ["node 'n0' (HardSwish)", "from opset 14", "imports opset 1"]),
    ("unknown_domain", one("Relu", domain="com.example",
                           imports=[helper.make_opsetid("", 13),
                                    helper.make_opsetid("com.example", 1)]), [],
     "unsupported", ["node 'n0' (Relu)", "domain 'com.example'", OPSETS]),
    ("domain_not_imported", one("Relu", domain="com.example"), [], "invalid-model",
     ["node 'n0' (Relu)", "domain 'com.example'", "opset_import"]),
    # ai.onnx.preview.training: its optimizers only, in version 1.
    ("training_gradient", one("Gradient", [attr("xs", ["x"]), attr("y", "y")], domain=TRAINING,
                              imports=[helper.make_opsetid(TRAINING, 1)]), [], "unsupported",
     ["node 'n0' (Gradient)", "domain '%s'" % TRAINING, "Adagrad, Adam and Momentum"]),
    ("training_op_in_default_domain", optimizer(domain="", version=13), [], "invalid-model",
     ["node 'n0' (Momentum)", "not in the default ONNX domain", TRAINING]),
    ("training_domain_version_2", optimizer(version=2), [], "unsupported",
     ["node 'n0' (Momentum)", "version 2", TRAINING]),
    ("momentum_mode", optimizer(attrs=[attr("alpha", 0.9), attr("beta", 0.5),
                                       attr("mode", "fast"), attr("norm_coefficient", 0.0)]),
     [], "invalid-model", ["node 'n0' (Momentum)", "mode 'fast'", "nesterov"]),
    ("momentum_without_beta", optimizer(attrs=[attr("alpha", 0.9), attr("mode", "standard"),
                                               attr("norm_coefficient", 0.0)]),
     [], "invalid-model", ["node 'n0' (Momentum)", "'beta'", "missing"]),
    ("adam_arity", optimizer("Adam", attrs=[]), [], "invalid-model",
     ["node 'n0' (Adam)", "has 5 inputs", "4 per optimized tensor"]),
    ("dropout_training_ratio", dropout_training(0.75), [], "unsupported",
     ["node 'n0' (Dropout)", "ratio 0.75", "random mask"]),
    ("ir_version_0", cnn(ir=0), [], "invalid-model", ["ir_version", IR]),
    ("ir_version_99", cnn(ir=99), [], "unsupported", ["IR version 99", IR]),
    # Attributes of the wrong type: node, attribute, type found, type expected.
    ("strides_str", cnn(conv=[KS, PADS, attr("strides", "str", S)]), [], "invalid-model",
     ["node 'conv0' (Conv)", "'strides'", "STRING", "INTS"]),
    ("group_ints", cnn(conv=[KS, PADS, attr("group", [1, 2, 3], IS)]), [], "invalid-model",
     ["node 'conv0' (Conv)", "'group'", "INTS", "expects INT"]),
    ("kernel_shape_float", cnn(conv=[PADS, attr("kernel_shape", 1.5, F)]), [],
     "invalid-model", ["node 'conv0' (Conv)", "'kernel_shape'", "FLOAT", "INTS"]),
    ("strides_int", cnn(conv=[KS, PADS, attr("strides", 2, I)]), [], "invalid-model",
     ["node 'conv0' (Conv)", "'strides'", "is INT", "INTS"]),
    ("perm_float", cnn(perm=[attr("perm", 1.5, F)]), [], "invalid-model",
     ["node 'transpose0' (Transpose)", "'perm'", "FLOAT", "INTS"]),
    ("softmax_axis_str", cnn(softmax=[attr("axis", "str", S)]), [], "invalid-model",
     ["node 'softmax0' (Softmax)", "'axis'", "STRING", "expects INT"]),
    ("relu_alpha_str", one("LeakyRelu", [attr("alpha", "x", S)]), [], "invalid-model",
     ["node 'n0' (LeakyRelu)", "'alpha'", "STRING", "FLOAT"]),
    ("duplicate_attribute", dup_attr(), [], "invalid-model",
     ["node 'transpose0' (Transpose)", "'perm'", "twice"]),
    # Values out of range.
    ("strides_0", cnn(conv=[KS, PADS, attr("strides", [0, 1])]), [], "invalid-model",
     ["node 'conv0' (Conv)", "'strides'", "0", "1 to 2147483647"]),
    ("pool_strides_0", cnn(pool=[attr("kernel_shape", [2, 2]), attr("strides", [0, 2])]),
     [], "invalid-model", ["node 'pool0' (MaxPool)", "'strides'", "1 to 2147483647"]),
    ("kernel_negative", cnn(conv=[PADS, attr("kernel_shape", [-3, -3])]), [],
     "invalid-model", ["node 'conv0' (Conv)", "'kernel_shape'", "-3"]),
    ("pool_kernel_negative", cnn(pool=[attr("kernel_shape", [-2, 2])]), [],
     "invalid-model", ["node 'pool0' (MaxPool)", "'kernel_shape'", "-2"]),
    ("conv_pads_2p40", cnn(conv=[KS, attr("pads", [BIG, 1, 1, 1])]), [], "invalid-model",
     ["node 'conv0' (Conv)", "'pads'", str(BIG), "0 to 2147483647"]),
    ("pool_pads_2p40", cnn(pool=[attr("kernel_shape", [2, 2]), attr("pads", [0, 0, BIG, 0])]),
     [], "invalid-model", ["node 'pool0' (MaxPool)", "'pads'", str(BIG)]),
    ("conv_pads_negative", cnn(conv=[KS, attr("pads", [1, -1, 1, 1])]), [], "invalid-model",
     ["node 'conv0' (Conv)", "'pads'", "-1"]),
    ("group_0", cnn(conv=[KS, PADS, attr("group", 0)]), [], "invalid-model",
     ["node 'conv0' (Conv)", "'group'", "0"]),
    # Old opsets' forms that moss does not read: refused, not read as a default.
    ("legacy_broadcast_axis", legacy_add([attr("broadcast", 1), attr("axis", 0)], 3), [],
     "unsupported", ["node 'n0' (Add)", "'axis'", "opset 6"]),
    ("cast_to_string_opset_1", one("Cast", [attr("to", "FLOAT", S)], opset=1), [],
     "unsupported", ["node 'n0' (Cast)", "'to'", "opset 1"]),
    ("cast_to_string_opset_13", one("Cast", [attr("to", "FLOAT", S)]), [], "invalid-model",
     ["node 'n0' (Cast)", "'to'", "STRING", "expects INT"]),
    ("lppool_float_p_opset_1", one("GlobalLpPool", [attr("p", 3.0, F)], opset=1,
                                   x_shape=(1, 2, 3, 3)), [],
     "unsupported", ["node 'n0' (GlobalLpPool)", "'p'", "opset 1"]),
    # Opset 21's blocked quantization and output_dtype.
    ("quantize_block_size", quantize([attr("axis", 1), attr("block_size", 2)], (2, 2)), [],
     "unsupported", ["node 'q0' (QuantizeLinear)", "block_size 2"]),
    ("quantize_output_dtype_vs_zero_point",
     quantize([attr("output_dtype", TensorProto.INT8)], zp=np.uint8), [], "invalid-model",
     ["node 'q0' (QuantizeLinear)", "output_dtype", "uint8"]),
    # Declared output shapes against inference: the output and both shapes.
    ("output_dim_0", cnn(y_shape=(1, 0, 4, 2)), [], "invalid-model",
     ["graph output 'y'", "[1,0,4,2]", "[1,4,4,2]"]),
    ("output_dim_minus_1", cnn(y_shape=(1, 4, -1, 2)), [], "invalid-model",
     ["graph output 'y'", "[1,4,-1,2]", "[1,4,4,2]"]),
    ("output_dim_2p40", cnn(y_shape=(1, 4, 4, BIG)), [], "invalid-model",
     ["graph output 'y'", "[1,4,4,%d]" % BIG, "[1,4,4,2]"]),
    ("output_rank", cnn(y_shape=(1, 32)), [], "invalid-model",
     ["graph output 'y'", "[1,32]", "[1,4,4,2]"]),
    ("output_type", cnn(y_type=TensorProto.INT64), [], "invalid-model",
     ["graph output 'y'", "int64", "float32"]),
    ("duplicate_output", cnn(outputs=[vi("y", [1, 4, 4, 2]), vi("y", [1, 4, 4, 2])]), [],
     "invalid-model", ["graph output 'y'", "twice"]),
    # Sizes of inputs and initializers.
    ("input_dim_int64_max", input_dim(I64_MAX), [], "invalid-model",
     ["graph input 'input'", str(I64_MAX)]),
    ("input_shape_flag_overflow", input_dim("batch"), ["--input-shape",
                                                       "input=18446744073709551617x64"],
     "invalid-model", ["18446744073709551617"]),
    ("initializer_without_data", no_data_initializer(), [], "invalid-model",
     ["'w'", "2147483648 elements", "no data"]),
]

GOOD = [
    ("intact", cnn(), []),
    ("opset_1", cnn(opset=1), []),
    ("opset_17", cnn(opset=17), []),
    ("opset_21", cnn(opset=21), []),
    ("ir_version_3", cnn(ir=3), []),
    ("ir_version_10", cnn(ir=10), []),
    ("default_domain_as_ai_onnx", with_opsets(cnn(), [helper.make_opsetid("ai.onnx", 13)]), []),
    ("unused_foreign_domain", with_opsets(cnn(), [helper.make_opsetid("", 13),
                                                  helper.make_opsetid("ai.onnx.ml", 3)]), []),
    ("output_symbolic_dims", cnn(outputs=[vi("y", ["n", 4, None, 2])]), []),
    ("output_without_shape", cnn(outputs=[vi("y", None)]), []),
    ("leaky_relu_int_alpha", one("LeakyRelu", [attr("alpha", 1, I)]), []),
    ("input_shape_flag", input_dim("batch"), ["--input-shape", "input=3x64"]),
    ("legacy_broadcast_without_axis", legacy_add([attr("broadcast", 1)], 3), []),
    ("cast_to_int_opset_6", one("Cast", [attr("to", TensorProto.DOUBLE)], opset=6,
                                                y_type=TensorProto.DOUBLE), []),
    ("lppool_int_p_opset_2", one("GlobalLpPool", [attr("p", 3)], opset=2,
                                 x_shape=(1, 2, 3, 3)), []),
    ("training_momentum", optimizer(), []),
    ("training_adam", optimizer("Adam", 6, attrs=[]), []),
    ("dropout_training_ratio_0", dropout_training(0.0), []),
]


def run_quantize_output_dtype(moss, d):
    """QuantizeLinear with output_dtype int8 and no zero point gives int8,
    saturated at -128 (numpy computes the reference)."""
    path, out, p = compile_(moss, d, "quantize_output_dtype",
                            quantize([attr("output_dtype", TensorProto.INT8)]), [])
    if p.returncode != 0:
        return "does not compile: %s" % p.stderr.strip()[:300]
    x = np.array([[-100.0, -1.0, 0.25, 1.0], [3.0, 20.0, 63.4, 70.0]], np.float32)
    np.save(os.path.join(d, "qx.npy"), x)
    r = subprocess.run([moss, "run", out, os.path.join(d, "qx.npy"), "-o", os.path.join(d, "qo")],
                       capture_output=True, text=True, errors="replace", timeout=300)
    if r.returncode != 0:
        return "does not run: %s" % r.stderr.strip()[:300]
    y = np.load(os.path.join(d, "qo", "output_0.npy"))
    want = np.clip(np.rint(x / np.float32(0.5)), -128, 127).astype(np.int8)
    if y.dtype != np.int8 or not np.array_equal(y, want):
        return "gives %s %s, want int8 %s" % (y.dtype, y.tolist(), want.tolist())
    return None


def compile_(moss, d, name, m, extra):
    path = os.path.join(d, name + ".onnx")
    onnx.save(m, path)
    out = os.path.join(d, name + ".moss")
    p = subprocess.run([moss, "compile", path, "-o", out, "-q"] + extra, capture_output=True,
                       text=True, errors="replace", timeout=300)
    return path, out, p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    failures = []
    with tempfile.TemporaryDirectory() as d:
        for name, m, extra, cat, frags in BAD:
            if a.only not in name:
                continue
            path, out, p = compile_(a.moss, d, name, m, extra)
            line = p.stderr.splitlines()[0] if p.stderr else ""
            why = None
            if not 1 <= p.returncode <= 127:
                why = "exit status %d" % p.returncode
            elif os.path.exists(out):
                why = "wrote %s" % out
            elif not re.match(r"^%s: (node '[^']*' \([^)]*\): )?%s: " % (re.escape(path), cat),
                              line):
                why = "not '<file>: ...%s: <reason>'" % cat
            else:
                missing = [f for f in frags if f not in line]
                if missing:
                    why = "missing %s" % missing
            print("%s %s: %s" % ("FAIL" if why else "ok  ", name, line or p.stdout[-200:]))
            if why:
                failures.append("%s: %s (status %d): %s" % (name, why, p.returncode,
                                                           p.stderr.strip()[:400]))
        for name, m, extra in GOOD:
            if a.only not in name:
                continue
            path, out, p = compile_(a.moss, d, name, m, extra)
            ok = p.returncode == 0 and os.path.exists(out)
            print("%s %s%s" % ("ok  " if ok else "FAIL", name,
                               "" if ok else ": " + p.stderr.strip()[:300]))
            if not ok:
                failures.append("%s must compile: status %d: %s" % (name, p.returncode,
                                                                   p.stderr.strip()[:300]))
        if a.only in "quantize_output_dtype":
            why = run_quantize_output_dtype(a.moss, d)
            print("%s quantize_output_dtype%s" % ("FAIL" if why else "ok  ", ": " + why if why else ""))
            if why:
                failures.append("quantize_output_dtype: " + why)
    for f in failures:
        print("FAIL", f)
    print("malformed models: %d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
