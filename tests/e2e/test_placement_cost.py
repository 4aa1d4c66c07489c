#!/usr/bin/python3
"""Placement by cost (a target's placement="cost", compiler/passes/
partition.c): each node goes to the device that takes it at the least
estimated time, the transfers of its inputs and graph outputs included, on
tests/e2e/data/gpu-cost.xml (the host CPU listed first, a Vulkan GPU run on
lavapipe; round figures made for this test).

The decisions, worked out by hand from the target's figures:
- the digits CNN at batch 1: its first Conv has 4608 MACs and 512 other
  ops, 320 CPU cycles at 16 per cycle, 0.16 us at 2 GHz; on the GPU the
  input's move alone costs the GPU memory's 10 us latency. Every node
  stays on the CPU and the plan has no transfer.
- at batch 450 the same Conv is 450 times the work: about 72 us on the CPU
  against 4.5 us of compute on the GPU (512 MACs per cycle at 1 GHz) plus
  the 115200-byte input's move (10 us + 115200 B / 20 GB/s, 5.8 us): both
  Convs go to the GPU, with the input's transfer before the first.
- a float64 chain Mul -> Sinh -> Add on 15 elements, whose Sinh the Vulkan
  backend does not take (docs/vulkan.md): with placement by cost, Mul and
  Add stay beside Sinh on the CPU (a few ns each there, 10 us to move to
  the GPU), no transfer; with the first device that takes each node
  (targets/vulkan-gpu.xml, the GPU first) Mul and Add go to the GPU and the
  values cross twice.
- --emit c and --emit obj of the batch-450 CNN: a standalone form holds the
  host's code alone, so every node goes to the CPU, --explain saying so.
The results are torch's logits and numpy's values in every case.

  test_placement_cost.py --moss build/moss
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
DIG = os.path.join(HERE, "digits")
TARGET = os.path.join(HERE, "data", "gpu-cost.xml")
ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
A = ap.parse_args()
W = tempfile.mkdtemp(prefix="moss-placement-")
ENV = dict(os.environ, XDG_RUNTIME_DIR=os.environ.get("XDG_RUNTIME_DIR", W))
fails = 0


def fail(msg):
    global fails
    print("FAIL " + msg)
    fails += 1


def compile_explain(model, target, tag, shape=None):
    art = os.path.join(W, tag + ".moss")
    cmd = [A.moss, "compile", model, "--target", target, "-o", art, "--explain"]
    if shape:
        cmd += ["--input-shape", shape]
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    if p.returncode != 0:
        fail("%s: compile failed: %s" % (tag, p.stderr.strip()[:300]))
        return None, {}, ""
    # A MossFused chain (the chains pass, after placement) lists its nodes
    # under it, each "  | 'name' (Op) -> device: why".
    places = dict(re.findall(r"^(?:node \d+|  \|) '([^']*)' \(\w+\) -> (\w+)", p.stdout, re.M))
    return art, places, p.stdout


def transfers(text):
    return re.findall(r"^transfer '([^']*)'", text, re.M)


def run(art, inputs, tag):
    args = []
    for name, x in inputs.items():
        xp = os.path.join(W, "%s_%s.npy" % (tag, name))
        np.save(xp, x)
        args += ["--input", "%s=%s" % (name, xp)]
    out = os.path.join(W, tag + "_out")
    p = subprocess.run([A.moss, "run", art] + args + ["-o", out], capture_output=True, text=True, env=ENV)
    if p.returncode != 0:
        fail("%s: run failed: %s" % (tag, p.stderr.strip()[:300]))
        return None
    return np.load(os.path.join(out, "output_0.npy"))


x_all = np.load(os.path.join(DIG, "x_test_cnn.npy"))
ref_all = np.load(os.path.join(DIG, "cnn_ref.npy"))
for batch in (1, 450):
    tag = "cnn%d" % batch
    art, places, text = compile_explain(os.path.join(DIG, "cnn.onnx"), TARGET, tag, "input=%dx1x8x8" % batch)
    if art is None:
        continue
    convs = [places[k] for k in places if k.endswith("Conv")]
    if batch == 1 and (set(places.values()) != {"cpu"} or transfers(text)):
        fail("batch 1: every node on the cpu and no transfer expected:\n" + text)
    if batch == 450 and (convs != ["gpu", "gpu"] or "input" not in transfers(text)):
        fail("batch 450: both Convs on the gpu, the input's transfer before them expected:\n" + text)
    if "least time of the devices that take Conv f32 (cpu " not in text:
        fail("%s: --explain gives no estimates:\n%s" % (tag, text))
    y = run(art, {"input": x_all[:batch]}, tag)
    ref = ref_all[:batch]
    if y is not None and not np.all(np.abs(y - ref) <= 1e-5 + 1e-4 * np.abs(ref)):
        fail("%s: logits differ from torch's by up to %g" % (tag, np.abs(y - ref).max()))
    print("batch %d: %s; torch's logits" % (batch, ", ".join("%s -> %s" % kv for kv in places.items())))

# A standalone form (--emit c, --emit obj) holds the host's code alone: on a
# target placed by cost, the batch-450 CNN whose Convs a bundle puts on the
# GPU then has every node on the CPU, --explain saying why, and it runs.
for emit in ("c", "obj"):
    tag = "cnn450_%s" % emit
    out = os.path.join(W, tag + ".d")
    p = subprocess.run([A.moss, "compile", os.path.join(DIG, "cnn.onnx"), "--target", TARGET, "--emit", emit,
                        "-o", out, "--input-shape", "input=450x1x8x8", "--explain"], capture_output=True, text=True,
                       env=ENV)
    places = dict(re.findall(r"^(?:node \d+|  \|) '([^']*)' \(\w+\) -> (\w+)", p.stdout, re.M))
    if p.returncode != 0 or set(places.values()) != {"cpu"} or transfers(p.stdout) or \
            "--emit %s holds the host device's code alone" % emit not in p.stdout:
        fail("%s: every node on the cpu expected, with the reason: exit %d\n%s%s" % (tag, p.returncode, p.stdout,
                                                                                    p.stderr[-300:]))
        continue
    y = run(out, {"input": x_all}, tag)
    if y is not None and not np.all(np.abs(y - ref_all) <= 1e-5 + 1e-4 * np.abs(ref_all)):
        fail("%s: logits differ from torch's by up to %g" % (tag, np.abs(y - ref_all).max()))
    print("%s: every node on the cpu; torch's logits" % tag)

g = helper.make_graph(
    [helper.make_node("Mul", ["x", "x"], ["a"], name="mul"), helper.make_node("Sinh", ["a"], ["b"], name="sinh"),
     helper.make_node("Add", ["b", "x"], ["y"], name="add")], "sinh64",
    [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [3, 5])],
    [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [3, 5])])
mp = os.path.join(W, "sinh64.onnx")
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), mp)
xv = np.linspace(-2, 2, 15).reshape(3, 5)
want = np.sinh(xv * xv) + xv
for target, expect, crosses in ((TARGET, {"mul": "cpu", "sinh": "cpu", "add": "cpu"}, False),
                                ("vulkan-gpu", {"mul": "gpu", "sinh": "cpu", "add": "gpu"}, True)):
    tag = "sinh64_" + os.path.basename(target).split(".")[0]
    art, places, text = compile_explain(mp, target, tag)
    if art is None:
        continue
    if places != expect or bool(transfers(text)) != crosses:
        fail("%s: placed %s (expected %s), transfers %s:\n%s" % (tag, places, expect, transfers(text), text))
    y = run(art, {"x": xv}, tag)
    if y is not None and not np.allclose(y, want, rtol=1e-6, atol=1e-9):
        fail("%s: results differ from numpy's by up to %g" % (tag, np.abs(y - want).max()))
    print("%s: %s, %s; numpy's values" % (tag, places, "transfers" if crosses else "no transfer"))

p = subprocess.run([A.moss, "targets", "show", TARGET], capture_output=True, text=True, env=ENV)
if "placement: cost" not in p.stdout:
    fail("targets show does not say the placement:\n" + p.stdout[:500])

print("placement by cost: %d failures" % fails)
sys.exit(1 if fails else 0)
