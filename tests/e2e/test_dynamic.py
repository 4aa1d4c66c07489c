#!/usr/bin/python3
"""Bounded dynamic shapes (issue 16, item 4; ops/bounded.c,
docs/dynamic-shapes.md): outputs whose length only the run knows.

The models and references are tests/e2e/dynamic/, made by
scripts/make_dynamic_models.py: ONNX Runtime's outputs (torch's for the
torch export), on input sets that give different lengths, zero among them:

- nonzero_t: NonZero, transposed as torch.nonzero exports it, and cast;
- compress_rt: Compress along axis 1 with a condition computed from the
  input, then Relu;
- topk_rt: TopK with k an input (3, all 7, and 0);
- range_rt: Range of three run-time scalars, compiled with --max-length 64;
- unique_rows: Unique along axis 0, sorted, all four outputs;
- nms_tail: NonMaxSuppression over three classes, then the kept boxes
  gathered through Slice, Squeeze and Gather of the selected rows;
- masked: torch's export of x[x > t] * 2 (NonZero, Transpose, GatherND);
- reduce_carry: NonZero's [2, n] through ReduceSum, Softmax and ArgMax
  along axis 0 (the bounded axis carried).

Each compiled once per target (host LLVM, C, OpenCL on PoCL, Vulkan on
lavapipe) and run on every set: each output's shape (what `moss run`
writes, from the run's length) and values must match. Then the C header's
NonMaxSuppression's two paths (3000 boxes: candidates listed and
heap-sorted; 20000: a scan per round), scores with many ties, against a
reference written here by hand from the spec, on host and C. Then the
C header's
contract, in a program of its own: <name>_OUT<k>_BOUNDED_AXIS and the
length at arena + <name>_OUT<k>_LENGTH_OFFSET after <name>_run(). And the
errors: a bounded axis into an operator that cannot carry it (ReduceSum
over it), Range of run-time inputs without --max-length, --stream of a
model with a bounded output.

  test_dynamic.py --moss build/moss
"""
import argparse
import os
import subprocess
import sys

import numpy as np
from onnx import TensorProto as TP
from onnx import helper as H

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_dir import Failures, RUN_TARGETS, work_env  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "dynamic")
ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
A = ap.parse_args()
W, ENV, ENV_CL = work_env("moss-dynamic-")
fail = Failures()

# name: (number of inputs, number of sets, extra compile options)
MODELS = {"nonzero_t": (1, 3, []), "compress_rt": (2, 3, []), "topk_rt": (2, 3, []),
          "range_rt": (3, 4, ["--max-length", "64"]), "unique_rows": (1, 3, []), "nms_tail": (3, 3, []),
          "masked": (2, 3, []), "reduce_carry": (1, 3, [])}


def close(got, want):
    if got.shape != want.shape or got.dtype != want.dtype:
        return "shape %s %s, expected %s %s" % (got.shape, got.dtype, want.shape, want.dtype)
    if want.dtype.kind == "f":
        bad = np.abs(got - want) > 1e-5 + 1e-4 * np.abs(want)
        if bad.any():
            return "values differ at %s: %s, expected %s" % (np.argwhere(bad)[0], got[bad][0], want[bad][0])
    elif not np.array_equal(got, want):
        return "values differ: %s, expected %s" % (got.ravel()[:12], want.ravel()[:12])
    return None


checked = 0
for name, (nin, nsets, extra) in MODELS.items():
    for tag, target, emit in RUN_TARGETS:
        art = os.path.join(W, "%s-%s.%s" % (name, tag, "c" if emit == "c" else "moss"))
        env = ENV_CL if tag == "opencl" else ENV
        p = subprocess.run([A.moss, "compile", os.path.join(DATA, name + ".onnx"), "--target", target, "--emit",
                            emit, "-o", art, "-q"] + extra, capture_output=True, text=True, env=env)
        if p.returncode != 0:
            fail("%s on %s: compile failed: %s" % (name, tag, p.stderr.strip()[-400:]))
            continue
        for s in range(nsets):
            out = os.path.join(W, "out-%s-%s-%d" % (name, tag, s))
            ins = [os.path.join(DATA, "%s_in%d_%d.npy" % (name, i, s)) for i in range(nin)]
            p = subprocess.run([A.moss, "run", art] + ins + ["-o", out], capture_output=True, text=True, env=env)
            if p.returncode != 0:
                fail("%s on %s, set %d: run failed: %s" % (name, tag, s, p.stderr.strip()[-400:]))
                continue
            k = 0
            while os.path.exists(os.path.join(DATA, "%s_out%d_%d.npy" % (name, k, s))):
                want = np.load(os.path.join(DATA, "%s_out%d_%d.npy" % (name, k, s)))
                why = close(np.load(os.path.join(out, "output_%d.npy" % k)), want)
                if why:
                    fail("%s on %s, set %d, output %d: %s" % (name, tag, s, k, why))
                checked += 1
                k += 1



def nms_reference(boxes, scores, keep, iou, thr):
    """The spec's NonMaxSuppression, by hand (corner boxes): per class, the
    boxes above |thr| by falling score (equal: lower index first), each
    kept unless its IoU with one kept before exceeds |iou|."""
    rows = []
    for c in range(scores.shape[1]):
        s = scores[0, c]
        order = sorted((i for i in range(len(s)) if s[i] > thr), key=lambda i: (-s[i], i))
        kept = []
        for i in order:
            if len(kept) == keep:
                break
            y1, x1, y2, x2 = boxes[0, i]
            a = (y2 - y1) * (x2 - x1)
            ok = True
            for j in kept:
                v1, u1, v2, u2 = boxes[0, j]
                inter = max(min(y2, v2) - max(y1, v1), 0) * max(min(x2, u2) - max(x1, u1), 0)
                b = (v2 - v1) * (u2 - u1)
                if inter > 0 and a > 0 and b > 0 and inter / (a + b - inter) > iou:
                    ok = False
                    break
            if ok:
                kept.append(i)
        rows += [[0, c, i] for i in kept]
    return np.array(rows, np.int64).reshape(-1, 3)


# NonMaxSuppression's two paths (kernel/lower_bounded.c): up to 16384
# boxes, the candidates listed and heap-sorted once; more, a scan per
# round. Scores rounded to 1/64 so that ties are many (the order breaks
# them by index); against the hand-written reference above.
import onnx  # noqa: E402
from onnx import numpy_helper as NH  # noqa: E402
for n, thr in ((3000, 0.5), (20000, 0.997)):
    rng = np.random.default_rng(n)
    xy = rng.random((1, n, 2)).astype(np.float32) * 100
    boxes = np.concatenate([xy, xy + rng.random((1, n, 2)).astype(np.float32) * 20 + 1], axis=2)
    scores = (np.round(rng.random((1, 2, n)) * 64) / 64).astype(np.float32)
    scores[0, 1, ::7] = 1.0  # a run of equal top scores
    keep, iou = 40, 0.3
    g = H.make_graph([H.make_node("NonMaxSuppression", ["boxes", "scores", "m", "iou", "thr"], ["sel"])], "nms",
                     [H.make_tensor_value_info("scores", TP.FLOAT, [1, 2, n])],
                     [H.make_tensor_value_info("sel", TP.INT64, None)],
                     [NH.from_array(boxes, "boxes"), NH.from_array(np.array([keep], np.int64), "m"),
                      NH.from_array(np.array([iou], np.float32), "iou"),
                      NH.from_array(np.array([thr], np.float32), "thr")])
    m = H.make_model(g, opset_imports=[H.make_opsetid("", 13)])
    m.ir_version = 8
    d = os.path.join(W, "nms_%d" % n)
    os.makedirs(d, exist_ok=True)
    onnx.save(m, os.path.join(d, "model.onnx"))
    np.save(os.path.join(d, "scores.npy"), scores)
    want = nms_reference(boxes, scores, keep, iou, thr)
    before = fail.count
    for tag, target, emit in RUN_TARGETS[:2]:
        art = os.path.join(d, "%s.%s" % (tag, "c" if emit == "c" else "moss"))
        p = subprocess.run([A.moss, "compile", os.path.join(d, "model.onnx"), "--target", target, "--emit", emit,
                            "-o", art, "-q"], capture_output=True, text=True, env=ENV)
        if p.returncode == 0:
            p = subprocess.run([A.moss, "run", art, os.path.join(d, "scores.npy"), "-o", os.path.join(d, "o-" + tag)],
                               capture_output=True, text=True, env=ENV)
        if p.returncode != 0:
            fail("nms %d boxes on %s: %s" % (n, tag, p.stderr.strip()[-300:]))
            continue
        why = close(np.load(os.path.join(d, "o-" + tag, "output_0.npy")), want)
        if why:
            fail("nms %d boxes on %s: %s" % (n, tag, why))
        checked += 1
    if fail.count == before:
        print("nms of %d boxes: %d kept, as the reference, on host and C" % (n, len(want)))

# The C header's contract, as a program that embeds the model uses it.
cdir = os.path.join(W, "nonzero_c")
p = subprocess.run([A.moss, "compile", os.path.join(DATA, "nonzero_t.onnx"), "--target", "c99", "--emit", "c",
                    "-o", cdir, "-q"], capture_output=True, text=True, env=ENV)
if p.returncode != 0:
    fail("nonzero_t as C: " + p.stderr.strip()[-300:])
else:
    hdr = open(os.path.join(cdir, "nonzero_t.h")).read()
    for want in ("#define NONZERO_T_OUT0_BOUNDED_AXIS 0", "#define NONZERO_T_OUT1_BOUNDED_AXIS 1",
                 "NONZERO_T_OUT0_LENGTH_OFFSET", "NONZERO_T_OUT1_DIMS 2, 12"):
        if want not in hdr:
            fail("nonzero_t.h lacks '%s'" % want)
    x = np.load(os.path.join(DATA, "nonzero_t_in0_0.npy"))
    prog = os.path.join(cdir, "main.c")
    with open(prog, "w") as f:
        f.write('#include <stdio.h>\n#include <string.h>\n#include "nonzero_t.h"\n'
                "static unsigned char arena[NONZERO_T_ARENA_BYTES + 64] __attribute__((aligned(64)));\n"
                "int main(void) {\n"
                "  static const float x[12] = {%s};\n"
                "  int64_t y[NONZERO_T_OUT0_NUMEL]; float z[NONZERO_T_OUT1_NUMEL]; int64_t n0, n1, i;\n"
                "  if (nonzero_t_run(x, y, z, arena)) return 1;\n"
                "  memcpy(&n0, arena + NONZERO_T_OUT0_LENGTH_OFFSET, 8);\n"
                "  memcpy(&n1, arena + NONZERO_T_OUT1_LENGTH_OFFSET, 8);\n"
                "  printf(\"%%lld %%lld\", (long long)n0, (long long)n1);\n"
                "  for (i = 0; i < n0 * 2; i++) printf(\" %%lld\", (long long)y[i]);\n"
                "  for (i = 0; i < n1 * 2; i++) printf(\" %%g\", z[i]);\n"
                "  printf(\"\\n\");\n  return 0;\n}\n" % ", ".join("%r" % float(v) for v in x.ravel()))
    exe = os.path.join(cdir, "main")
    p = subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-O1", "-o", exe, prog,
                        os.path.join(cdir, "nonzero_t.c"), "-I", cdir, "-lm"], capture_output=True, text=True)
    if p.returncode != 0:
        fail("the program using nonzero_t.h does not build: " + p.stderr.strip()[-400:])
    else:
        got = subprocess.run([exe], capture_output=True, text=True, env=ENV_CL).stdout.split()
        y = np.load(os.path.join(DATA, "nonzero_t_out0_0.npy"))
        z = np.load(os.path.join(DATA, "nonzero_t_out1_0.npy"))
        want = [str(len(y)), str(z.shape[1])] + [str(v) for v in y.ravel()] + ["%g" % v for v in z.ravel()]
        if got != want:
            fail("nonzero_t.h program printed %s, expected %s" % (" ".join(got), " ".join(want)))
        checked += 1


def expect_error(what, cmd, needles):
    p = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    if p.returncode == 0:
        fail("%s: accepted" % what)
        return
    for n in needles:
        if n not in p.stderr:
            fail("%s: message lacks '%s': %s" % (what, n, p.stderr.strip()[-300:]))


# A bounded axis into an operator that cannot carry it.
g = H.make_graph([H.make_node("NonZero", ["x"], ["nz"], name="nz"),
                  H.make_node("ReduceSum", ["nz"], ["y"], name="sum", keepdims=0, axes=[1])], "rs",
                 [H.make_tensor_value_info("x", TP.FLOAT, [3, 4])], [H.make_tensor_value_info("y", TP.INT64, None)])
m = H.make_model(g, opset_imports=[H.make_opsetid("", 11)])
m.ir_version = 8
rs = os.path.join(W, "reduce_bounded.onnx")
open(rs, "wb").write(m.SerializeToString())
expect_error("ReduceSum over a bounded axis", [A.moss, "compile", rs, "-o", os.path.join(W, "rs.moss")],
             ["node 'sum' (ReduceSum): unsupported:", "axis 1 that only the run knows", "at most 12",
              "decided by node 'nz'"])
expect_error("Range without --max-length", [A.moss, "compile", os.path.join(DATA, "range_rt.onnx"), "-o",
                                            os.path.join(W, "r.moss")],
             ["(Range): unsupported:", "--max-length N", "--constant s=FILE"])
art = os.path.join(W, "nonzero_t-host.moss")
expect_error("--stream with a bounded output",
             [A.moss, "run", art, "--stream", os.path.join(DATA, "nonzero_t_in0_0.npy"), "-o",
              os.path.join(W, "st")], ["--stream", "'y'", "each run decides"])

print("test_dynamic: %d outputs checked, %d failures" % (checked, fail.count))
sys.exit(1 if fail.count else 0)
