#!/usr/bin/python3
"""The Vulkan backend (backends/vulkan: moss's own SPIR-V emitter) and
libmossrt's Vulkan executor (runtime/src/vulkan) on the machine's Vulkan
driver through the loader (lavapipe here: Vulkan on the CPU), on the digits
models:

- every model compiled for tests/conformance/vulkan-only.xml (a Vulkan
  device and no CPU to fall back on, so every node runs as a compute
  shader), on the 450 test digits in one batch: the float models (MLP, CNN,
  the 90 %-pruned MLP) match torch's logits within DESIGN.md's float
  tolerance and reach torch's accuracy; the int8 QDQ models give the same
  bits as the CPU's int8 kernels (host and c99) and torch's integers within
  one step (gpu_digits.py);
- every module in those bundles is checked again, independently of the
  compiler's own validation, with SPIRV-Tools' command-line validator for
  Vulkan 1.1, and its disassembly shows a GLCompute entry point per kernel,
  the specialization constant of the workgroup size and the push constants;
- the CNN compiled for targets/vulkan-gpu.xml (the Vulkan device and the
  host CPU through the C backend): the same logits, the plan's transfers; a
  node the emitter has no code for (sinh of float64) stays on the CPU with
  --explain saying why, and the results are numpy's;
- clear errors: no device by MOSS_DEVICE's name, no Vulkan loader.

  test_vulkan.py --moss build/moss
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper

from gpu_blobs import blobs
from gpu_digits import Digits

HERE = os.path.dirname(os.path.abspath(__file__))
ONLY = os.path.join(HERE, "..", "conformance", "vulkan-only.xml")
ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
A = ap.parse_args()
W = tempfile.mkdtemp(prefix="moss-vulkan-")
ENV = dict(os.environ, XDG_RUNTIME_DIR=os.environ.get("XDG_RUNTIME_DIR", W))
fails = 0


def fail(msg):
    global fails
    print("FAIL " + msg)
    fails += 1


D = Digits(A.moss, W, ENV, fail, "Vulkan")
D.check_float(ONLY)
D.check_int8(ONLY)

# Each module again, through SPIRV-Tools' own validator and disassembler.
nmod = 0
for tag in ("mlp", "cnn", "mlp_pruned90", "mlp_qdq", "cnn_qdq", "cnn_qdq_pc"):
    for k, b in enumerate(blobs(os.path.join(W, tag + ".moss"))):
        if b["magic"] != b"MVKS":
            fail("%s: blob %d is not a Vulkan segment blob" % (tag, k))
            continue
        spv = os.path.join(W, "%s.%d.spv" % (tag, k))
        open(spv, "wb").write(b["source"])
        p = subprocess.run(["spirv-val", "--target-env", "vulkan1.1", spv], capture_output=True, text=True)
        if p.returncode != 0:
            fail("%s: spirv-val refuses module %d: %s" % (tag, k, p.stderr.strip()[:300]))
        dis = subprocess.run(["spirv-dis", spv], capture_output=True, text=True, check=True).stdout
        entries = dis.count("OpEntryPoint GLCompute")
        if entries != len(b["items"]):
            fail("%s: module %d has %d GLCompute entry points for %d kernels" % (tag, k, entries, len(b["items"])))
        for want in ("OpCapability Shader", "SpecId 0", "BuiltIn WorkgroupSize", "PushConstant", "DescriptorSet 0"):
            if want not in dis:
                fail("%s: module %d lacks %r" % (tag, k, want))
        # the float models' indices fit int32: no 64-bit integers (shaderInt64 not needed)
        if tag in ("mlp", "cnn", "mlp_pruned90") and ("OpCapability Int64" in dis or "OpTypeInt 64" in dis):
            fail("%s: module %d declares 64-bit integers, though its indices fit int32" % (tag, k))
        nmod += 1
print("spirv-val (vulkan1.1) accepts all %d modules; one GLCompute entry point per kernel; the float ones "
      "without Int64" % nmod)

# The GPU with the host CPU beside it: placement, transfers, the same logits.
x = D.xs["cnn"][:7]
y = D.compile_run("cnn", "vulkan-gpu", x, "cnn_mixed")
y1 = D.compile_run("cnn", ONLY, x, "cnn_only7")
if y is not None and y1 is not None and not np.allclose(y, y1, rtol=1e-4, atol=1e-5):
    fail("cnn on vulkan-gpu differs from vulkan-only")
ex = subprocess.run([A.moss, "compile", os.path.join(HERE, "digits", "cnn.onnx"), "--input-shape", "input=7x1x8x8",
                     "--target", "vulkan-gpu", "-o", os.path.join(W, "ex.moss"), "--explain"], capture_output=True,
                    text=True, check=True, env=ENV).stdout
if "-> gpu" not in ex or "transfer 'input'" not in ex:
    fail("vulkan-gpu: --explain shows no node on the gpu or no transfer:\n" + ex)

# A node the emitter has no code for (sinh of float64: GLSL has sinh for
# float32 only, whose range is too small) between two it has: on the CPU,
# the transfers around it, numpy's results.
g = helper.make_graph(
    [helper.make_node("Mul", ["x", "x"], ["a"]), helper.make_node("Sinh", ["a"], ["b"]),
     helper.make_node("Add", ["b", "x"], ["y"])], "sinh64",
    [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [3, 5])],
    [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [3, 5])])
mp = os.path.join(W, "sinh64.onnx")
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), mp)
art = os.path.join(W, "sinh64.moss")
p = subprocess.run([A.moss, "compile", mp, "--target", "vulkan-gpu", "-o", art, "--explain"], capture_output=True,
                   text=True, env=ENV)
if p.returncode != 0 or "gpu declined: sinh of float64" not in p.stdout or "-> cpu" not in p.stdout:
    fail("sinh of float64 on vulkan-gpu: status %d, --explain:\n%s%s" % (p.returncode, p.stdout, p.stderr))
else:
    xv = np.linspace(-2, 2, 15).reshape(3, 5)
    yv = D.run(art, xv, "sinh64")
    want = np.sinh(xv * xv) + xv
    if yv is not None and not np.allclose(yv, want, rtol=1e-4, atol=1e-5):
        fail("sinh64: results differ from numpy's by up to %g" % np.abs(yv - want).max())
    elif yv is not None:
        print("sinh of float64 stays on the CPU (--explain says why); Mul and Add on the GPU; numpy's results")

# Errors, each with its cause named.
x = D.xs["mlp"][:2]
art = D.compile("mlp", ONLY, x, "err")
p = D.run(art, x, "nodev", env=dict(ENV, MOSS_DEVICE="no-such-device-xyz"), ok=False)
if p.returncode == 0 or "MOSS_DEVICE" not in p.stderr or "no-such-device-xyz" not in p.stderr:
    fail("MOSS_DEVICE naming no device: status %d, %r" % (p.returncode, p.stderr))
p = D.run(art, x, "nolib", env=dict(ENV, MOSS_VULKAN_LIBRARY=os.path.join(W, "none.so")), ok=False)
if p.returncode == 0 or "none.so" not in p.stderr:
    fail("no Vulkan loader: status %d, %r" % (p.returncode, p.stderr))

print("vulkan: %d failures" % fails)
sys.exit(1 if fails else 0)
