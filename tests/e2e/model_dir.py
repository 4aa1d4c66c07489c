"""A test case's folder, for the e2e tests: imported, not run.

compile_run(moss, d, target, emit, names, tag, env) compiles and runs a
case's folder, giving its output 0.

RUN_TARGETS: the four (tag, target, emit) an e2e test runs a model on;
Failures(): a callable that prints and counts failures.

work_env(prefix) makes a fresh work folder and the environments the moss
runs in: (WORK, ENV, ENV_CL), ENV with the Vulkan runtime folder, PoCL's
cache and moss's cache off, ENV_CL the same without LD_PRELOAD for the
OpenCL runs (below).

save_model_dir(work, name, nodes, inputs, inits, outputs, fmt) writes
WORK/NAME/model.onnx (opset 13, IR version 8) from ONNX |nodes|, the graph
inputs |inputs| ({name: numpy array}: their types and shapes are the
arrays'; ELEM maps numpy's types to ONNX's), the initializers |inits| ({name: array}) and the graph outputs
|outputs| ([value_info]), then each input beside it as NAME.npy (|fmt|
"npy") or as an ONNX TensorProto NAME.pb ("pb"); returns the folder.
"""
import os
import subprocess
import tempfile

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as H
from onnx import numpy_helper as NH

# The four ways an e2e test runs a model here, (tag, --target, --emit):
# native code for this machine, C, OpenCL on PoCL and Vulkan on lavapipe
# (devices with no CPU to fall back on, tests/conformance/*-only.xml).
CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance")
RUN_TARGETS = [("host", "host", "bundle"), ("c99", "c99", "c"),
               ("opencl", os.path.join(CONF, "opencl-only.xml"), "bundle"),
               ("vulkan", os.path.join(CONF, "vulkan-only.xml"), "bundle")]


class Failures:
    """Counts and prints the failures of a test script."""

    def __init__(self):
        self.count = 0

    def __call__(self, msg):
        print("FAIL " + msg)
        self.count += 1


ELEM = {np.dtype(np.float32): TP.FLOAT, np.dtype(np.float64): TP.DOUBLE, np.dtype(np.int32): TP.INT32,
        np.dtype(np.int64): TP.INT64, np.dtype(np.int8): TP.INT8, np.dtype(np.uint8): TP.UINT8,
        np.dtype(np.bool_): TP.BOOL}


def compile_run(moss, d, target, emit, names, tag, env, run_env=None, extra=()):
    """Compiles D/model.onnx for |target| (--emit |emit|, and the options
    |extra|) into D/TAG.moss (or .c) and runs it on the inputs D/NAME.npy
    for each of |names|, with |env| (|run_env| for the run when given).
    (output 0 as an array, None) or (None, what failed)."""
    art = "%s/%s.%s" % (d, tag, "c" if emit == "c" else "moss")
    p = subprocess.run([moss, "compile", d + "/model.onnx", "--target", target, "--emit", emit, "-o", art,
                        "-q"] + list(extra), capture_output=True, text=True, env=env)
    if p.returncode != 0:
        return None, "compile failed: " + p.stderr.strip()[-400:]
    args = []
    for k in names:
        args += ["--input", "%s=%s/%s.npy" % (k, d, k)]
    out = "%s/out-%s" % (d, tag)
    for attempt in range(2):
        p = subprocess.run([moss, "run", art] + args + ["-o", out], capture_output=True, text=True,
                           env=run_env or env)
        # Under AddressSanitizer, LeakSanitizer's own tracer thread has
        # crashed at exit beside PoCL's threads ("Tracer caught signal 11",
        # then "LeakSanitizer has encountered a fatal error"), before any
        # leak check ran: a failure of the tool, not of the run, so the run
        # goes once more. A leak LeakSanitizer finds reads "detected memory
        # leaks" and fails as any other error.
        if p.returncode == 0 or "Tracer caught signal" not in p.stderr:
            break
    if p.returncode != 0:
        return None, "run failed: " + p.stderr.strip()[-400:]
    return np.load(out + "/output_0.npy"), None


def work_env(prefix):
    w = tempfile.mkdtemp(prefix=prefix)
    env = dict(os.environ, XDG_RUNTIME_DIR=os.environ.get("XDG_RUNTIME_DIR", w), MOSS_CACHE_DIR="off",
               POCL_CACHE_DIR=os.environ.get("POCL_CACHE_DIR", os.path.join(w, "pocl")))
    # Under AddressSanitizer ctest preloads lavapipe (LD_PRELOAD, for the
    # Vulkan runs: tests/CMakeLists.txt says why). An OpenCL run needs no
    # Vulkan driver, and with lavapipe preloaded beside PoCL,
    # LeakSanitizer's own thread ("Tracer caught signal 11") crashed at exit
    # in two runs of test_chains.py, before it checked anything: so the
    # OpenCL runs go without it, leak checks and all.
    return w, env, {k: v for k, v in env.items() if k != "LD_PRELOAD"}


def save_model_dir(work, name, nodes, inputs, inits, outputs, fmt="npy"):
    vi = [H.make_tensor_value_info(k, ELEM[v.dtype], v.shape) for k, v in inputs.items()]
    g = H.make_graph(nodes, name, vi, outputs, [NH.from_array(v, k) for k, v in inits.items()])
    m = H.make_model(g, opset_imports=[H.make_opsetid("", 13)])
    m.ir_version = 8
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    onnx.save(m, d + "/model.onnx")
    for k, v in inputs.items():
        if fmt == "npy":
            np.save("%s/%s.npy" % (d, k), v)
        else:
            onnx.save_tensor(NH.from_array(v, k), "%s/%s.pb" % (d, k))
    return d
