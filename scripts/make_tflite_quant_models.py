#!/usr/bin/env python3
"""Trains three small Keras models on sklearn's digits, quantizes them with the
TensorFlow Lite converter (full-integer post-training quantization with a
representative dataset), converts each .tflite to ONNX with tf2onnx, and
writes the fixtures of tests/e2e/test_tflite_quant.py to
tests/e2e/tflite_quant/ (issue 16: int8 from TensorFlow Lite through
tf2onnx):

  <m>_<io>_o<opset>.onnx  the model: <m> cnn (Conv2D, DepthwiseConv2D, ReLU,
                         ReLU6, a residual Add, MaxPool, AveragePool,
                         GlobalAveragePooling2D, Concatenate, Dense,
                         Softmax; NHWC input [N,8,8,1]), ops (ops() below)
                         or mlp (Dense ReLU Dense ReLU Dense; input
                         [N,64]); <io> i8 or u8 (int8 or uint8 input and
                         output: inference_input_type and
                         inference_output_type), or f32 (float input and
                         output, int8 inside); <opset> 13 or 17; the batch
                         dimension is symbolic
  <m>_<io>_o<opset>_tfl.npy  [450, 10]: the TFLite interpreter's outputs
                         on the test split (int8 or float32 as the model's
                         output)
  <m>_<io>_o<opset>_ort.npy  the same from ONNX Runtime on the .onnx, its
                         graph optimizations off (each node as the ONNX
                         spec defines it): the reference
  x_test_<io>.npy        [450, 64] int8 (i8) or uint8 (u8) inputs: the test
                         split quantized with the TFLite models' input scale
                         and zero point (the same in every model), reshaped
                         to [N,8,8,1] for the CNNs (the f32 models read
                         ../digits/x_test_mlp.npy, the same split)
  <m>_<io>_o<opset>_logits_{tfl,ort}.npy  int8 [450, 10]: for a model with
                         a Softmax, the tensor its DequantizeLinear reads
                         (the quantized logits), from TFLite and ONNX Runtime
  qparams.txt            per model: input and output scale and zero point
  accuracy.txt           per model: the float Keras model's and the TFLite
                         model's accuracy on the test split (N = 450)
  versions.txt           tensorflow, tf2onnx, onnxruntime, onnx, numpy

The data is the split of scripts/make_digits_models.py (pixels / 16, 25 %
stratified test split, random_state=0): the script checks that its test
rows are ../digits/x_test_mlp.npy.

Run with a venv that has tensorflow-cpu 2.16.1, tf_keras, tf2onnx,
onnxruntime and scikit-learn (never needed by the tests; onnx 1.16, since
newer ones need an ml_dtypes newer than TF 2.16 allows):

  python3 -m venv /root/tfenv
  /root/tfenv/bin/pip install tensorflow-cpu==2.16.1 tf_keras==2.16.0 tf2onnx \\
      onnxruntime scikit-learn "numpy<2" "onnx==1.16.2"
  /root/tfenv/bin/python scripts/make_tflite_quant_models.py [OUT_DIR]

(tf_keras 2.16.0 pulls the tensorflow 2.16.2 package in beside
tensorflow-cpu 2.16.1; versions.txt records what ran.) Training is seeded
and made deterministic (one thread, deterministic ops), so reruns with the
same versions write the same weights and outputs; only the names tf2onnx
gives its shared scale and zero-point constants may change.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
# Keras 2 (tf_keras): TF 2.16's converter fails on Keras 3 models ("missing
# attribute 'value'" in a ReadVariableOp)
os.environ["TF_USE_LEGACY_KERAS"] = "1"

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "tests", "e2e", "digits")
SEED = 0
# (model, I/O type, opset)
VARIANTS = (("cnn", "i8", 13), ("cnn", "f32", 13), ("cnn", "u8", 13), ("mlp", "i8", 13),
            ("mlp", "f32", 13), ("cnn", "i8", 17), ("ops", "i8", 13))
IO_TYPE = {"i8": tf.int8, "u8": tf.uint8, "f32": None}


def load_data():
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


def cnn():
    L = tf.keras.layers
    x = L.Input((8, 8, 1), name="image")
    a = L.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(x)
    b = L.DepthwiseConv2D(3, padding="same", name="dw")(a)
    b = L.ReLU(max_value=6.0, name="relu6")(b)
    b = L.Add(name="residual")([a, b])
    b = L.MaxPooling2D(2, name="maxpool")(b)  # 4x4
    c = L.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(b)
    g = L.GlobalAveragePooling2D(name="gap")(c)  # TFLite's Mean
    c = L.AveragePooling2D(2, name="avgpool")(c)  # 2x2
    c = L.Flatten(name="flatten")(c)
    c = L.Concatenate(name="concat")([c, g])
    c = L.Dense(10, name="dense")(c)
    y = L.Softmax(name="softmax")(c)
    return tf.keras.Model(x, y)


def ops():
    """More of what tf2onnx writes: a stride-2 SAME convolution (asymmetric
    pads), a BatchNormalization the converter folds, LeakyReLU, a
    sigmoid gate (Logistic, Mul), tanh, a Concatenate of two branches, a
    Reshape and a Dense without activation."""
    L = tf.keras.layers
    x = L.Input((8, 8, 1), name="image")
    h = L.Conv2D(12, 3, strides=2, padding="same", use_bias=False, name="conv_s2")(x)  # 4x4
    h = L.BatchNormalization(name="bn")(h)
    h = L.LeakyReLU(0.1, name="leaky")(h)
    g = L.Conv2D(12, 1, activation="sigmoid", name="gate")(h)
    a = L.Multiply(name="gated")([h, g])
    b = L.Conv2D(6, 3, padding="valid", activation="tanh", name="conv_tanh")(h)  # 2x2
    b = L.UpSampling2D(2, name="up")(b)  # 4x4, nearest
    c = L.Concatenate(name="concat")([a, b])  # 4x4x18
    c = L.Reshape((16 * 18,), name="reshape")(c)
    y = L.Dense(10, name="dense")(c)
    return tf.keras.Model(x, y)


def mlp():
    L = tf.keras.layers
    x = L.Input((64,), name="pixels")
    h = L.Dense(64, activation="relu", name="fc1")(x)
    h = L.Dense(32, activation="relu", name="fc2")(h)
    y = L.Dense(10, name="fc3")(h)
    return tf.keras.Model(x, y)


def shaped(kind, x):
    return x if kind == "mlp" else x.reshape(-1, 8, 8, 1)


def train(kind, x_train, y_train, x_test, y_test):
    tf.keras.utils.set_random_seed(SEED)
    m = {"cnn": cnn, "ops": ops, "mlp": mlp}[kind]()
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=(kind != "cnn"))
    m.compile(optimizer=tf.keras.optimizers.Adam(0.003), loss=loss, metrics=["accuracy"])
    m.fit(shaped(kind, x_train), y_train, epochs=40, batch_size=64, verbose=0, shuffle=True)
    acc = float(np.mean(np.argmax(m.predict(shaped(kind, x_test), verbose=0), 1) == y_test))
    return m, acc


def to_tflite(model, kind, x_calib, io):
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]

    def rep():
        for i in range(len(x_calib)):
            yield [shaped(kind, x_calib[i:i + 1])]

    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if IO_TYPE[io] is not None:
        conv.inference_input_type = IO_TYPE[io]
        conv.inference_output_type = IO_TYPE[io]
    return conv.convert()


def interpreter(blob):
    # TFLite's reference kernels (not XNNPACK's nor the optimized ones):
    # the arithmetic the TFLite spec means; every tensor kept, for the logits
    return tf.lite.Interpreter(model_content=blob, num_threads=1, experimental_preserve_all_tensors=True,
                               experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)


def io_details(blob):
    it = interpreter(blob)
    return it.get_input_details()[0], it.get_output_details()[0]


def tflite_run(blob, x, extra=None):
    """The output on |x|, and the tensor named |extra| (or None)."""
    it = interpreter(blob)
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    it.resize_tensor_input(i["index"], list(x.shape))
    it.allocate_tensors()
    it.set_tensor(i["index"], x)
    it.invoke()
    t = [d["index"] for d in it.get_tensor_details() if d["name"] == extra]
    return it.get_tensor(o["index"]).copy(), (it.get_tensor(t[0]).copy() if t else None)


def logits_name(path):
    """The int8 tensor a Softmax reads (through its DequantizeLinear), or
    None: where the TFLite and ONNX outputs are compared before the
    Softmax, which amplifies one step of its input into several of its
    output."""
    g = onnx.load(path).graph
    made = {o: n for n in g.node for o in n.output}
    sm = [n for n in g.node if n.op_type == "Softmax"]
    if not sm:
        return None
    dq = made[sm[0].input[0]]
    assert dq.op_type == "DequantizeLinear"
    return dq.input[0]


def ort_run(path, x, extra=None):
    """ONNX Runtime's output on |x|, optimizations off, and the tensor
    |extra| (or None), made a graph output of a copy of the model."""
    m = onnx.load(path)
    if extra:
        m.graph.output.append(onnx.helper.make_tensor_value_info(extra, onnx.TensorProto.INT8, None))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    ys = s.run(None, {s.get_inputs()[0].name: x})
    return ys[0], (ys[1] if extra else None)


def quantize_input(x, detail):
    s, zp = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / s) + zp, info.min, info.max).astype(detail["dtype"])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "e2e", "tflite_quant")
    os.makedirs(out, exist_ok=True)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    x_train, x_test, y_train, y_test = load_data()
    if not np.array_equal(x_test, np.load(os.path.join(DIGITS, "x_test_mlp.npy"))):
        raise SystemExit("the test split differs from tests/e2e/digits/x_test_mlp.npy")
    x_calib = x_train[:256]
    models, accs, qp, saved = {}, [], [], {}
    for kind in ("cnn", "ops", "mlp"):
        models[kind], acc = train(kind, x_train, y_train, x_test, y_test)
        accs.append("%s_keras %.6f" % (kind, acc))
    for kind, io, opset in VARIANTS:
        stem = "%s_%s_o%d" % (kind, io, opset)
        blob = to_tflite(models[kind], kind, x_calib, io)
        x = shaped(kind, x_test)
        idet, odet = io_details(blob)
        if io != "f32":
            # one file per input type: every model's input has the range of
            # the pixels, so the same scale and zero point (checked)
            x = quantize_input(x, idet)
            xpath = os.path.join(out, "x_test_%s.npy" % io)
            if io in saved and not np.array_equal(saved[io], x.reshape(len(x), -1)):
                raise SystemExit("%s: its %s inputs differ from another model's" % (stem, io))
            saved[io] = x.reshape(len(x), -1)
            np.save(xpath, saved[io])
        tfl_path = os.path.join(out, stem + ".tflite")
        with open(tfl_path, "wb") as f:
            f.write(blob)
        path = os.path.join(out, stem + ".onnx")
        tf2onnx.convert.from_tflite(tfl_path, opset=opset, output_path=path)
        os.remove(tfl_path)
        logits = logits_name(path)
        y_tfl, l_tfl = tflite_run(blob, x, logits)
        y_ort, l_ort = ort_run(path, x, logits)
        np.save(os.path.join(out, stem + "_tfl.npy"), y_tfl)
        np.save(os.path.join(out, stem + "_ort.npy"), y_ort)
        if logits:
            np.save(os.path.join(out, stem + "_logits_tfl.npy"), l_tfl)
            np.save(os.path.join(out, stem + "_logits_ort.npy"), l_ort)
        acc = float(np.mean(np.argmax(y_tfl, 1) == y_test))
        accs.append("%s_tflite %.6f" % (stem, acc))
        qp.append("%s input %r %d output %r %d" % (stem, float(idet["quantization"][0]),
                                                  idet["quantization"][1], float(odet["quantization"][0]),
                                                  odet["quantization"][1]))
        diff = np.abs(y_tfl.astype(np.float64) - y_ort.astype(np.float64)).max()
        msg = "%s: %s %s, tflite accuracy %.4f, |tflite - ort| max %g" % (stem, y_tfl.dtype, y_tfl.shape,
                                                                        acc, diff)
        if logits:
            msg += ", logits %g" % np.abs(l_tfl.astype(np.int32) - l_ort).max()
        print(msg)
    with open(os.path.join(out, "accuracy.txt"), "w") as f:
        f.write("\n".join(accs) + "\n")
    with open(os.path.join(out, "qparams.txt"), "w") as f:
        f.write("\n".join(qp) + "\n")
    with open(os.path.join(out, "versions.txt"), "w") as f:
        f.write("tensorflow %s\ntf2onnx %s\nonnxruntime %s\nonnx %s\nnumpy %s\n" % (
            tf.__version__, tf2onnx.__version__, ort.__version__, onnx.__version__, np.__version__))


if __name__ == "__main__":
    main()
