#!/usr/bin/python3
"""int8 models from TensorFlow Lite converted by tf2onnx (issue 16): Keras
models trained on the digits, quantized by the TFLite converter
(full-integer post-training quantization with a representative dataset)
and converted with tf2onnx (tests/e2e/tflite_quant/, made by
scripts/make_tflite_quant_models.py; its README says what each holds).
tf2onnx writes TFLite's int8 ops as QDQ graphs: per-axis weight
DequantizeLinear, int32 biases, Conv in NCHW behind a Reshape of the NHWC
input, asymmetric pads for a stride-2 SAME Conv, MatMul + Add for Dense,
Clip for ReLU6, LeakyRelu, Sigmoid, Tanh and Mul between Dequantize and
Quantize, Transpose, Reshape and Concat on the int8 data itself,
GlobalAveragePool for Mean, Resize (nearest, tf_half_pixel_for_nn) for
UpSampling2D, and a bare DequantizeLinear -> QuantizeLinear
requantization for TFLite's QUANTIZE (uint8 <-> int8 at the ends of the
u8 model, a rescale after the Tanh).

For each model, on host (LLVM), c99 (--emit c), OpenCL (PoCL) and Vulkan
(lavapipe):
  - the output is within one step of ONNX Runtime's (its graph
    optimizations off: each node as the ONNX spec defines it; the
    reference, <model>_ort.npy), the step being the scale of the
    output's QuantizeLinear / DequantizeLinear (DESIGN.md "Numerics":
    int8 within 1 LSB of the ONNX reference). A model ending in Softmax
    is checked before it: its int8 logits (the tensor the Softmax's
    DequantizeLinear reads, made a second graph output) within one step
    of ONNX Runtime's (<model>_logits_ort.npy); after it, within
    1 + s_logits / (2 s_out) steps (below: softmax_steps);
  - int8 results are bit-identical across the four backends;
  - moss's argmax equals ONNX Runtime's on every row whose top two
    reference values are more than two steps apart (one step each way
    cannot reorder them), and moss's accuracy on the 450 test digits is
    at least TFLite's minus the rows where that argument does not hold
    (a near tie in the reference, or ONNX Runtime and TFLite disagreeing);
  - `moss compile --explain` reports integer-only quantized regions: every
    node folds to an integer kernel except Softmax, which has no integer
    form in moss (one 'stays float' line per Softmax, nothing else).
How far moss and ONNX Runtime are from TFLite's own outputs
(<model>_tfl.npy; its fixed-point requantization rounds its own way, and
its int8 Softmax is a table) is printed, for the record.

  test_tflite_quant.py --moss build/moss
"""
import argparse
import glob
import os
import re
import subprocess
import sys

import numpy as np
import onnx
from onnx import helper as H
from onnx import numpy_helper as NH

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_dir import Failures, RUN_TARGETS, compile_run, work_env  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "tflite_quant")
DIGITS = os.path.join(HERE, "digits")
MODELS = 7  # scripts/make_tflite_quant_models.py's VARIANTS
QUANT_LINE = re.compile(r"^# quantized: (\d+) nodes in integer arithmetic, (\d+) float nodes in "
                        r"quantized regions$")
SOFTMAX_FLOAT = re.compile(r"^stays float: node '.*' \(Softmax\): Softmax has no integer form in moss$")
ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
A = ap.parse_args()
W, ENV, ENV_CL = work_env("moss-tflq-")
fail = Failures()


def scale_of(inits, node):
    s = inits[node.input[1]]
    if s.size != 1:
        raise SystemExit("FAIL %s: per-axis scale where one was expected" % node.name)
    return float(s.reshape(-1)[0])


def study(m):
    """(output step, logits tensor name or None, logits step or None):
    the scale of the model's last QuantizeLinear/DequantizeLinear, and for
    a model with a Softmax the int8 tensor its DequantizeLinear reads."""
    inits = {t.name: NH.to_array(t) for t in m.graph.initializer}
    made = {o: n for n in m.graph.node for o in n.output}
    last = made[m.graph.output[0].name]
    if last.op_type not in ("QuantizeLinear", "DequantizeLinear"):
        raise SystemExit("FAIL: the model does not end with a QuantizeLinear or DequantizeLinear")
    sm = [n for n in m.graph.node if n.op_type == "Softmax"]
    if not sm:
        return scale_of(inits, last), None, None
    dq = made[sm[0].input[0]]
    return scale_of(inits, last), dq.input[0], scale_of(inits, dq)


def softmax_steps(s_logits, s_out):
    """How many output steps apart two Softmax outputs can be when their
    logits are each within one step s_logits of each other: softmax's
    Jacobian row i sums, in absolute value, to 2 p_i (1 - p_i) <= 1/2, so
    |dp_i| <= s_logits / 2 (mean value theorem, max norm); both outputs
    are then quantized by the same QuantizeLinear, which adds at most one
    step."""
    return 1 + s_logits / (2 * s_out)


def near_ties(ref, step):
    """Rows whose two largest reference values are at most two steps apart."""
    top = np.sort(ref.astype(np.float64), axis=1)[:, -2:]
    return (top[:, 1] - top[:, 0]) <= 2 * step + 1e-9


def explain(path, name, shape):
    """--explain's quantized summary, (K, F, stays-float lines) or None."""
    p = subprocess.run([A.moss, "compile", path, "--input-shape", "%s=%s" % (name, shape), "-o",
                        os.path.join(W, "explain.moss"), "--explain"], capture_output=True, text=True,
                       env=ENV)
    if p.returncode != 0:
        fail("%s: moss compile --explain exited %d: %s" % (path, p.returncode, p.stderr.strip()[-400:]))
        return None
    lines = p.stdout.splitlines()
    summary = [mo for mo in map(QUANT_LINE.match, lines) if mo]
    if len(summary) != 1:
        fail("%s: %d '# quantized:' lines in --explain, expected one" % (path, len(summary)))
        return None
    return (int(summary[0].group(1)), int(summary[0].group(2)),
            [l for l in lines if l.startswith("stays float: ")])


y_test = np.load(os.path.join(DIGITS, "y_test.npy"))
x_float = np.load(os.path.join(DIGITS, "x_test_mlp.npy"))
accuracy = dict(l.split() for l in open(os.path.join(DATA, "accuracy.txt")))
models = sorted(glob.glob(os.path.join(DATA, "*_o*.onnx")))
if len(models) != MODELS:
    fail("%d models in %s, expected %d (scripts/make_tflite_quant_models.py)" % (len(models), DATA, MODELS))
for path in models:
    stem = os.path.splitext(os.path.basename(path))[0]
    kind, io = stem.split("_")[:2]
    m = onnx.load(path)
    name = m.graph.input[0].name
    step, logits, s_logits = study(m)
    ref = np.load(os.path.join(DATA, stem + "_ort.npy"))
    tfl = np.load(os.path.join(DATA, stem + "_tfl.npy"))
    x = x_float if io == "f32" else np.load(os.path.join(DATA, "x_test_%s.npy" % io))
    x = x if kind == "mlp" else x.reshape(-1, 8, 8, 1)
    d = os.path.join(W, stem)
    os.makedirs(d)
    if logits:  # the int8 logits as a second output, to check them before the Softmax
        m.graph.output.append(H.make_tensor_value_info(logits, onnx.TensorProto.INT8, None))
        ref_l = np.load(os.path.join(DATA, stem + "_logits_ort.npy"))
        tfl_l = np.load(os.path.join(DATA, stem + "_logits_tfl.npy"))
    onnx.save(m, os.path.join(d, "model.onnx"))
    np.save(os.path.join(d, name + ".npy"), x)
    shape = "x".join(str(k) for k in x.shape)  # the batch dimension is symbolic

    q = explain(path, name, shape)
    if q:
        k, f, stays = q
        n_softmax = sum(1 for n in m.graph.node if n.op_type == "Softmax")
        other = [l for l in stays if not SOFTMAX_FLOAT.match(l)]
        print("%s: %d nodes in integer arithmetic, %d float in quantized regions" % (stem, k, f))
        if k <= 0 or f != n_softmax or other or len(stays) != n_softmax:
            fail("%s: not integer-only but for its Softmax (K = %d, F = %d, %d Softmax)%s" % (
                stem, k, f, n_softmax, "".join("\n  " + l for l in other)))

    tol = softmax_steps(s_logits, step) if logits else 1.0
    first = None
    for tag, target, emit in RUN_TARGETS:
        y, why = compile_run(A.moss, d, target, emit, [name], tag, ENV, ENV_CL if tag == "opencl" else ENV,
                             extra=("--input-shape", "%s=%s" % (name, shape)))
        if why:
            fail("%s on %s: %s" % (stem, tag, why))
            continue
        if y.shape != ref.shape or y.dtype != ref.dtype:
            fail("%s on %s: %s %s, expected %s %s" % (stem, tag, y.dtype, y.shape, ref.dtype, ref.shape))
            continue
        # int8/uint8 outputs count steps directly; float ones in units of the step
        unit = 1.0 if io != "f32" else step
        steps = np.abs(y.astype(np.float64) - ref) / unit
        if steps.max() > tol + 1e-6:
            i = np.unravel_index(np.argmax(steps), steps.shape)
            fail("%s on %s: %.2f steps from ONNX Runtime at %s (got %r, want %r; at most %.2f)" % (
                stem, tag, steps.max(), i, y[i], ref[i], tol))
        yl = None
        if logits:
            yl = np.load(os.path.join(d, "out-%s" % tag, "output_1.npy"))
            if yl.shape != ref_l.shape or yl.dtype != ref_l.dtype:
                fail("%s on %s: logits %s %s, expected %s %s" % (stem, tag, yl.dtype, yl.shape, ref_l.dtype,
                                                                ref_l.shape))
                continue
            dl = np.abs(yl.astype(np.int32) - ref_l)
            if dl.max() > 1:
                i = np.unravel_index(np.argmax(dl), dl.shape)
                fail("%s on %s: logits %d steps from ONNX Runtime at %s" % (stem, tag, dl.max(), i))
        if first is not None:
            if y.tobytes() != first[0].tobytes() or (yl is not None and yl.tobytes() != first[1].tobytes()):
                fail("%s: %s and %s differ (int8 must be bit-identical across backends)" % (
                    stem, RUN_TARGETS[0][0], tag))
            continue
        first = (y, yl)
        # Accuracy: compared where the argmax is determined (logits for a Softmax model).
        r_dec, y_dec, t_dec = (ref_l, yl, tfl_l) if logits else (ref, y, tfl)
        dec_step = 1.0 if (logits or io != "f32") else step
        ties = near_ties(r_dec, dec_step)
        pm, pr, pt = y_dec.argmax(1), r_dec.argmax(1), t_dec.argmax(1)
        if np.any((pm != pr) & ~ties):
            fail("%s: argmax differs from ONNX Runtime's on %d rows with no near tie" % (
                stem, int(np.sum((pm != pr) & ~ties))))
        acc_m, acc_t = float(np.mean(pm == y_test)), float(accuracy[stem + "_tflite"])
        acc_tfl_out = float(np.mean(pt == y_test))
        if abs(acc_t - acc_tfl_out) > 1e-6:
            fail("%s: accuracy.txt says %.6f for TFLite, its outputs %.6f" % (stem, acc_t, acc_tfl_out))
        loose = int(np.sum(ties | (pr != pt)))
        if acc_m < acc_t - loose / len(y_test) - 1e-9:
            fail("%s: accuracy %.4f, TFLite's %.4f (%d rows may differ)" % (stem, acc_m, acc_t, loose))
        print("%s: %d of %d outputs equal to ONNX Runtime's (at most %.0f steps off, %.2f allowed)%s; "
              "accuracy %.4f (TFLite %.4f, Keras float %s); from TFLite's outputs: moss up to %.0f steps, "
              "ONNX Runtime up to %.0f" % (
                  stem, int(np.sum(steps < 0.5)), steps.size, steps.max(), tol,
                  "; logits %d of %d equal, at most %d off" % (int(np.sum(yl == ref_l)), yl.size,
                                                              np.abs(yl.astype(np.int32) - ref_l).max())
                  if logits else "", acc_m, acc_t, accuracy.get(kind + "_keras", "?"),
                  np.abs(y.astype(np.float64) - tfl).max() / unit,
                  np.abs(ref.astype(np.float64) - tfl).max() / unit))

print("test_tflite_quant: %s" % ("FAILED (%d)" % fail.count if fail.count else "ok"))
sys.exit(1 if fail.count else 0)
