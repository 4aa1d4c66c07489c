#!/usr/bin/python3
"""int8 models made by ONNX Runtime's own quantizer (issue 16, item 6): the
digits MLP and CNN through onnxruntime.quantization.quantize_static in QDQ
and QOperator formats (QLinearConv, com.microsoft's QGemm: rewritten by
passes/contrib.c), per-tensor and per-channel weights, uint8 and int8
activations, and a small CNN whose QOperator form holds every
com.microsoft operator passes/contrib.c rewrites (QLinearAdd, QLinearMul,
QLinearSigmoid, QLinearLeakyRelu, QLinearAveragePool,
QLinearGlobalAveragePool, QLinearConcat, QGemm) (tests/e2e/ort_quant/, made
by scripts/make_ort_quant_models.py). A QOperator model's reference is ONNX Runtime on the same model with each
QGemm and QLinearConv written out as its definition (DequantizeLinear,
the float op, QuantizeLinear), since its own int8 kernels round their own
way (up to several steps off after three layers: printed).

Against ONNX Runtime's outputs with its graph optimizations off, where
each node runs as the ONNX spec defines it (the reference; committed as
<model>_ref.npy, 100 test rows), moss must be within one step of the
output's quantization (DESIGN.md "Numerics": int8 within 1 LSB of the ONNX
reference; the step is the scale of the model's last DequantizeLinear),
and give the same bits on host (LLVM), c99 (--emit c), OpenCL (PoCL) and
Vulkan (lavapipe). The count of outputs equal to the reference is printed,
and beside it how far ONNX Runtime's own optimized int8 kernels
(<model>_ort.npy) are from the same reference.

  test_ort_quant.py --moss build/moss
"""
import argparse
import glob
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper as NH

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_dir import Failures, RUN_TARGETS, compile_run, work_env  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "ort_quant")
DIGITS = os.path.join(HERE, "digits")
TARGETS = RUN_TARGETS
ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
A = ap.parse_args()
W, ENV, ENV_CL = work_env("moss-ortq-")
fail = Failures()


def output_step(path):
    """The scale of the last DequantizeLinear: one step of the output."""
    m = onnx.load(path)
    inits = {t.name: NH.to_array(t) for t in m.graph.initializer}
    last = [n for n in m.graph.node if n.op_type == "DequantizeLinear"][-1]
    if m.graph.node[-1] is not last and m.graph.node[-1].op_type != "DequantizeLinear":
        raise SystemExit("FAIL %s: the model does not end with a DequantizeLinear" % path)
    return float(inits[last.input[1]])


models = sorted(glob.glob(os.path.join(DATA, "*_qdq_*.onnx")) + glob.glob(os.path.join(DATA, "*_qop_*.onnx")))
if len(models) != 17:
    fail("%d models in %s, expected 17 (scripts/make_ort_quant_models.py)" % (len(models), DATA))
for path in models:
    stem = os.path.splitext(os.path.basename(path))[0]
    kind = stem.split("_")[0]
    ref = np.load(os.path.join(DATA, stem + "_ref.npy"))
    ort_opt = np.load(os.path.join(DATA, stem + "_ort.npy"))
    if kind == "ops":  # the com.microsoft operators' model: random inputs the script saved
        x = np.load(os.path.join(DATA, "ops_x.npy"))
    else:
        x = np.load(os.path.join(DIGITS, "x_test_%s.npy" % kind)).astype(np.float32)[:ref.shape[0]]
    d = os.path.join(W, stem)
    os.makedirs(d)
    os.symlink(path, os.path.join(d, "model.onnx"))
    name = onnx.load(path).graph.input[0].name
    np.save(os.path.join(d, name + ".npy"), x)
    step = output_step(path)
    first = None
    for tag, target, emit in TARGETS:
        shape = "%s=%s" % (name, "x".join(str(k) for k in x.shape))  # the models' batch is symbolic
        y, why = compile_run(A.moss, d, target, emit, [name], tag, ENV, ENV_CL if tag == "opencl" else ENV,
                             extra=("--input-shape", shape))
        if why:
            fail("%s on %s: %s" % (stem, tag, why))
            continue
        if y.shape != ref.shape or y.dtype != np.float32:
            fail("%s on %s: %s %s, expected float32 %s" % (stem, tag, y.dtype, y.shape, ref.shape))
            continue
        steps = np.abs(y.astype(np.float64) - ref) / step
        if steps.max() > 1 + 1e-6:
            i = np.unravel_index(np.argmax(steps), steps.shape)
            fail("%s on %s: %.2f steps from the reference at %s (got %r, want %r)" % (
                stem, tag, steps.max(), i, y[i], ref[i]))
        if first is None:
            first = y
            print("%s: %d of %d outputs equal to the reference, none off by more than %.0f step; ONNX "
                  "Runtime's optimized kernels: up to %.0f steps off" % (
                      stem, int(np.sum(steps < 0.5)), steps.size, steps.max(),
                      np.abs(ort_opt.astype(np.float64) - ref).max() / step))
        elif y.tobytes() != first.tobytes():
            fail("%s: %s and %s differ (int8 must be bit-identical across backends)" % (stem, TARGETS[0][0], tag))

print("test_ort_quant: %s" % ("FAILED (%d)" % fail.count if fail.count else "ok"))
sys.exit(1 if fail.count else 0)
