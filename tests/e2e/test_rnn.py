#!/usr/bin/python3
"""Recurrent layers (issue 16, item 1) against torch: the models of
tests/e2e/rnn (scripts/make_rnn_models.py), exported by torch.onnx.export
from torch.nn.LSTM, GRU and RNN (several layers, bidirectional,
batch_first, initial states, a CRNN text recognizer) and written with
onnx.helper from torch weights for what torch does not export
(sequence_lens as a graph input or a constant, layout 1, a reverse-only
direction), whose references are torch's outputs on packed sequences.

Each model is compiled for the host (LLVM), as C (--emit c), for OpenCL
(PoCL) and for Vulkan (lavapipe), with --input-shape for the axes the
export left symbolic, and every output must be within DESIGN.md's float
tolerance of torch's, |a-b| <= 1e-5 + 1e-4*|b|.

Then the errors a user meets: a W whose shape does not match
hidden_size, an unknown activation, and sequence_lens beyond the
sequence, each named against the node.

  test_rnn.py --moss build/moss
"""
import argparse
import glob
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as H

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_dir import Failures, RUN_TARGETS, compile_run, save_model_dir, work_env  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "rnn")
TARGETS = RUN_TARGETS
EXPECT = 10  # models scripts/make_rnn_models.py makes
ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
A = ap.parse_args()
W, ENV, ENV_CL = work_env("moss-rnn-")
fail = Failures()


def graph_inputs(m):
    inits = {t.name for t in m.graph.initializer}
    return [i.name for i in m.graph.input if i.name not in inits]


models = sorted(glob.glob(os.path.join(DATA, "*.onnx")))
if len(models) != EXPECT:
    fail("%d models in %s, expected %d (scripts/make_rnn_models.py)" % (len(models), DATA, EXPECT))
for path in models:
    stem = os.path.splitext(os.path.basename(path))[0]
    m = onnx.load(path)
    names = graph_inputs(m)
    refs = [np.load(os.path.join(DATA, "%s.out%d.npy" % (stem, k))) for k in range(len(m.graph.output))]
    ops = sorted({n.op_type for n in m.graph.node if n.op_type in ("LSTM", "GRU", "RNN")})
    d = os.path.join(W, stem)
    os.makedirs(d)
    os.symlink(path, os.path.join(d, "model.onnx"))
    for k, nm in enumerate(names):
        np.save(os.path.join(d, nm + ".npy"), np.load(os.path.join(DATA, "%s.in%d.npy" % (stem, k))))
    extra = []
    for s in open(os.path.join(DATA, stem + ".shapes")).read().split():
        extra += ["--input-shape", s]
    for tag, target, emit in TARGETS:
        y0, why = compile_run(A.moss, d, target, emit, names, tag, ENV, ENV_CL if tag == "opencl" else ENV,
                              extra=extra)
        if why:
            fail("%s on %s: %s" % (stem, tag, why))
            continue
        worst = 0.0
        for k, ref in enumerate(refs):
            y = np.load(os.path.join(d, "out-%s" % tag, "output_%d.npy" % k))
            if y.shape != ref.shape:
                fail("%s on %s: output %d has shape %s, torch's %s" % (stem, tag, k, y.shape, ref.shape))
                continue
            err = np.abs(y - ref) - (1e-5 + 1e-4 * np.abs(ref))
            worst = max(worst, float(np.max(np.abs(y - ref))))
            if np.any(err > 0):
                fail("%s on %s: output %d off by up to %.3g" % (stem, tag, k, float(np.max(np.abs(y - ref)))))
        print("%-24s %-8s %-10s outputs %d, max |moss - torch| %.2g" % (stem, tag, "/".join(ops), len(refs), worst))

# Errors, each named against the node, never a crash.
X = np.zeros((3, 1, 4), np.float32)


def bad(name, node, inits, want):
    d = save_model_dir(W, name, [node], {"X": X}, inits,
                       [H.make_tensor_value_info("Y", TP.FLOAT, None)])
    p = subprocess.run([A.moss, "compile", d + "/model.onnx", "--emit", "c", "-o", d + "/m.c"],
                       capture_output=True, text=True, env=ENV)
    if p.returncode == 0 or want not in p.stderr or "node 'r0' (" not in p.stderr:
        fail("%s: exit %d, stderr %r (want %r)" % (name, p.returncode, p.stderr.strip()[-300:], want))
    else:
        print("%-24s refused: %s" % (name, p.stderr.strip().splitlines()[0]))


w = np.zeros((1, 20, 4), np.float32)
r = np.zeros((1, 20, 5), np.float32)
bad("bad_hidden_size", H.make_node("LSTM", ["X", "W", "R"], ["Y"], name="r0", hidden_size=6),
    {"W": w, "R": r}, "W has shape 1x20x4, expected 1x24x4")
bad("bad_activation", H.make_node("RNN", ["X", "W", "R"], ["Y"], name="r0", hidden_size=5, activations=["Gelu"]),
    {"W": np.zeros((1, 5, 4), np.float32), "R": np.zeros((1, 5, 5), np.float32)},
    "activation 'Gelu' is not one ONNX defines")
bad("bad_sequence_lens", H.make_node("GRU", ["X", "W", "R", "", "L"], ["Y"], name="r0", hidden_size=2),
    {"W": np.zeros((1, 6, 4), np.float32), "R": np.zeros((1, 6, 2), np.float32), "L": np.array([4], np.int32)},
    "sequence_lens[0] is 4, outside [0, 3]")
print("rnn: %d failure(s)" % fail.count)
sys.exit(1 if fail.count else 0)
