#!/usr/bin/env python3
"""The rounding error of Winograd F(4x4, 3x3) (compiler/kernel/lower_winograd.c)
on the benchmark models' own layers, beside the direct product's.

Every Conv of the models that Winograd takes (3x3, stride and dilation 1,
one group, an output of whole 4x4 blocks) is cut out with its weights and
bias into a one-node model, compiled for `host` with F(2x2, 3x3) (the
default), F(4x4, 3x3) (MOSS_WINOGRAD=on, moss compile --winograd) and the
direct product (MOSS_WINOGRAD=off), and run on a standard normal input and on that input through a Relu
(what a layer after an activation sees). Each output is compared with a
float64 numpy convolution: the worst |moss - ref| / (1e-5 + 1e-4 |ref|)
(DESIGN.md's float tolerance: at most 1 is within it) and the worst error
relative to the output's largest magnitude.

  python3 bench/winograd_error.py --moss build/moss [--models resnet18,unet] [--work DIR]

Models come from bench/make_resnet18.py and make_unet.py (with the Debian
python, /usr/bin/python3, as bench_models.py makes them). Nothing here is a
test; the README and docs/kernel.md quote its output.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as H
from onnx import numpy_helper as NH
from onnx import shape_inference

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "e2e"))
from npref import conv_ref  # noqa: E402  (the tests' float64 convolution)


def layers(path):
    m = shape_inference.infer_shapes(onnx.load(path))
    inits = {i.name: NH.to_array(i) for i in m.graph.initializer}
    shapes = {}
    for vi in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output):
        shapes[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    for n in m.graph.node:
        if n.op_type != "Conv" or n.input[1] not in inits:
            continue
        a = {x.name: H.get_attribute_value(x) for x in n.attribute}
        w = inits[n.input[1]]
        if w.shape[2:] != (3, 3) or a.get("group", 1) != 1 or any(s != 1 for s in a.get("strides", [1, 1])) \
                or any(d != 1 for d in a.get("dilations", [1, 1])) or a.get("auto_pad", b"NOTSET") != b"NOTSET":
            continue
        xs = shapes.get(n.input[0])
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if not xs or len(xs) != 4:
            continue
        oh, ow = xs[2] + pads[0] + pads[2] - 2, xs[3] + pads[1] + pads[3] - 2
        if oh % 4 or ow % 4 or oh < 8 or ow < 8 or xs[1] < 8 or w.shape[0] < 8:
            continue
        b = inits.get(n.input[2]) if len(n.input) > 2 and n.input[2] else None
        yield n.name, xs, w, b, pads


def run(moss, w, b, pads, x, d, mode):
    nodes = [H.make_node("Conv", ["x", "w"] + (["b"] if b is not None else []), ["y"], pads=pads)]
    inits = [NH.from_array(w, "w")] + ([NH.from_array(b, "b")] if b is not None else [])
    oh, ow = x.shape[2] + pads[0] + pads[2] - 2, x.shape[3] + pads[1] + pads[3] - 2
    g = H.make_graph(nodes, "l", [H.make_tensor_value_info("x", TP.FLOAT, list(x.shape))],
                     [H.make_tensor_value_info("y", TP.FLOAT, [x.shape[0], w.shape[0], oh, ow])], inits)
    onnx.save(H.make_model(g, opset_imports=[H.make_opsetid("", 13)], ir_version=8), d + "/l.onnx")
    np.save(d + "/x.npy", x)
    env = dict(os.environ, MOSS_WINOGRAD=mode)  # "": the default
    p = subprocess.run([moss, "compile", d + "/l.onnx", "-o", d + "/l.moss", "-q", "--dump-kernels"],
                       env=env, check=True, capture_output=True, text=True)
    took = "Winograd" in p.stdout
    subprocess.run([moss, "run", d + "/l.moss", d + "/x.npy", "-o", d + "/out", "--threads", "1"], check=True,
                   capture_output=True)
    return np.load(d + "/out/output_0.npy").astype(np.float64), took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", default=os.path.join(os.path.dirname(HERE), "build", "moss"))
    ap.add_argument("--models", default="resnet18,unet")
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="moss-wino-")
    rng = np.random.default_rng(3)
    modes = [("", "F(2x2)"), ("on", "F(4x4)"), ("off", "direct")]
    worst = {m: 0.0 for m, _ in modes}
    print("| model | layer | input | " + " | ".join("%s err/tol" % t for _, t in modes) + " | " +
          " | ".join("%s err/max|y|" % t for _, t in modes) + " |")
    print("|---|---|---|" + "---|" * (2 * len(modes)))
    for tag in a.models.split(","):
        path = os.path.join(work, tag + ".onnx")
        if not os.path.exists(path):
            subprocess.run(["/usr/bin/python3", os.path.join(HERE, "make_%s.py" % tag), path], check=True,
                           capture_output=True)
        for name, xs, w, b, pads in layers(path):
            x0 = rng.standard_normal(xs).astype(np.float32)
            for kind, x in (("normal", x0), ("relu", np.maximum(x0, 0))):
                ref = conv_ref(x, w, b, pads=pads)[0]
                tol = 1e-5 + 1e-4 * np.abs(ref)
                row = []
                for mode, _ in modes:
                    d = os.path.join(work, "%s-%s-%s-%s" % (tag, name, kind, mode or "default"))
                    os.makedirs(d, exist_ok=True)
                    y, took = run(a.moss, w, b, pads, x, d, mode)
                    if took != (mode != "off"):
                        sys.exit("winograd_error: %s: MOSS_WINOGRAD=%s %s Winograd" %
                                 (name, mode, "took" if mode == "off" else "did not take"))
                    e = np.abs(y - ref)
                    r = float((e / tol).max())
                    worst[mode] = max(worst[mode], r)
                    row.append((r, float(e.max() / np.abs(ref).max())))
                print("| %s | %s | %s %s | %s | %s |" % (
                    tag, name, kind, "x".join(map(str, xs)), " | ".join("%.3f" % r[0] for r in row),
                    " | ".join("%.1e" % r[1] for r in row)))
    print()
    print("worst err/tol: " + ", ".join("%s %.3f" % (t, worst[m]) for m, t in modes) +
          " (<= 1: within DESIGN.md's float tolerance)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
