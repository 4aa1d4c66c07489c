#!/usr/bin/python3
"""Measures what compile-time pruning costs in accuracy on the committed
digits models (tests/e2e/digits): for each spec, prune, compile, run the
450-image test set through moss and compare the accuracy with the dense
model's. Pruning here does not retrain, so accuracy drops; docs/pruning.md
quotes the table this prints.

Two ways to prune, the same rule either way:
  measure_prune.py --moss build/moss --prune-tool build/tests/prune_tool
      prune_tool (tests/e2e/prune_tool.c) runs moss's passes and moss_prune and
      prints the zero masks; they are applied to the ONNX initializers and the
      result is compiled by moss as a dense model.
  measure_prune.py --moss build/moss
      `moss compile --prune SPEC` (once the flag is wired into the CLI).
Options: --specs a,b,c   --models mlp,cnn
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "e2e", "digits")
SPECS = ["magnitude:0.5", "magnitude:0.7", "magnitude:0.8", "magnitude:0.9",
         "magnitude-layer:0.5", "magnitude-layer:0.7", "magnitude-layer:0.8",
         "magnitude-layer:0.9", "block:4x1:0.5", "block:4x1:0.8"]


def input_shape(model):
    x = np.load(os.path.join(DATA, "x_test_%s.npy" % model))
    return "input=" + "x".join(str(d) for d in x.shape)


def run_tool(tool, model, spec):
    """prune_tool's output as a list of dicts: node, op, weight, elements,
    zeros_before, zeros_after, shape, mask (bool array), weights (float32)."""
    out = subprocess.run([tool, os.path.join(DATA, model + ".onnx"), spec, input_shape(model)],
                         check=True, capture_output=True, text=True).stdout
    layers = []
    for line in out.splitlines():
        if line.startswith("layer "):
            f = line[6:].split("\t")
            layers.append(dict(node=f[0], op=f[1], weight=f[2], elements=int(f[3]),
                               zeros_before=int(f[4]), zeros_after=int(f[5]),
                               shape=tuple(int(d) for d in f[6].split("x"))))
        elif line.startswith("mask "):
            layers[-1]["mask"] = np.frombuffer(line[5:].encode(), np.uint8) == ord("1")
        elif line.startswith("weights"):
            layers[-1]["weights"] = np.array([float.fromhex(t) for t in line.split()[1:]],
                                             np.float32)
    return layers


def apply_masks(model, layers, path):
    """Writes MODEL with each pruned layer's mask applied to the ONNX weight
    of the node of that name. Zeroing W where moss zeroed its (possibly
    BatchNorm-folded) weight is the same model: folding scales each output
    channel by a non-zero factor, so the zeros are in the same places."""
    m = onnx.load(os.path.join(DATA, model + ".onnx"))
    inits = {t.name: t for t in m.graph.initializer}
    nodes = {n.name: n for n in m.graph.node}
    for l in layers:
        t = inits[nodes[l["node"]].input[1]]
        w = numpy_helper.to_array(t).copy()
        if w.size != l["mask"].size:
            raise SystemExit("%s: mask of %d for a weight of %d"
                             % (l["node"], l["mask"].size, w.size))
        w.reshape(-1)[l["mask"]] = 0
        t.CopyFrom(numpy_helper.from_array(w, t.name))
    onnx.save(m, path)


def accuracy(moss, onnx_path, model, work, extra=()):
    art = os.path.join(work, model + ".moss")
    x_path = os.path.join(DATA, "x_test_%s.npy" % model)
    subprocess.run([moss, "compile", onnx_path, "--input-shape", input_shape(model), "-o", art,
                    "-q"] + list(extra), check=True)
    subprocess.run([moss, "run", art, x_path, "-o", work], check=True)
    got = np.load(os.path.join(work, "output_0.npy"))
    y = np.load(os.path.join(DATA, "y_test.npy"))
    return float((got.argmax(1) == y).mean())


def measure(moss, tool, model, spec, work):
    """(accuracy, zeros after, prunable weights) for one spec."""
    if tool:
        layers = run_tool(tool, model, spec)
        path = os.path.join(work, "%s_pruned.onnx" % model)
        apply_masks(model, layers, path)
        acc = accuracy(moss, path, model, work)
        return acc, sum(l["zeros_after"] for l in layers), sum(l["elements"] for l in layers)
    acc = accuracy(moss, os.path.join(DATA, model + ".onnx"), model, work, ["--prune", spec])
    return acc, None, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    ap.add_argument("--prune-tool")
    ap.add_argument("--specs", default=",".join(SPECS))
    ap.add_argument("--models", default="mlp,cnn")
    a = ap.parse_args()
    print("| model | spec | weights zero | accuracy | dense | loss (points) |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for model in a.models.split(","):
            dense = accuracy(a.moss, os.path.join(DATA, model + ".onnx"), model, work)
            for spec in a.specs.split(","):
                acc, z, n = measure(a.moss, a.prune_tool, model, spec, work)
                zs = "%d/%d (%.1f%%)" % (z, n, 100.0 * z / n) if n else "-"
                print("| %s | `%s` | %s | %.4f | %.4f | %.2f |"
                      % (model, spec, zs, acc, dense, 100.0 * (dense - acc)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
