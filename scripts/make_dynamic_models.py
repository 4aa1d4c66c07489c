#!/usr/bin/env python3
"""Writes the fixtures of tests/e2e/test_dynamic.py to tests/e2e/dynamic/:
models whose outputs have a length only the run knows (bounded dynamic
shapes, docs/dynamic-shapes.md), each with input sets that give different
lengths (zero among them), and ONNX Runtime's outputs on them as the
references.

  <m>.onnx              written here with onnx.helper (opset 13, IR 8)
  <m>_in<i>_<s>.npy     input i of set s
  <m>_out<k>_<s>.npy    ONNX Runtime's output k on set s (the reference)
  reduce_carry.onnx     NonZero's output through ReduceSum, Softmax and ArgMax
                        along the axis that is not bounded
  masked.onnx           torch's export of x[x > t] * 2 (NonZero,
                        Transpose, GatherND), with torch's outputs as
                        masked_out0_<s>.npy: made by rerunning this script
                        under Debian's /usr/bin/python3 (torch) with --torch
  versions.txt          the onnxruntime, onnx and numpy versions used

Run with an interpreter that has onnxruntime from pip (the benchmark peer;
the `python3` first on PATH here), not Debian's; it runs /usr/bin/python3
itself for the torch model:

  python3 scripts/make_dynamic_models.py [OUT_DIR]
"""
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "e2e", "dynamic")


def torch_model(out):
    import torch

    class Masked(torch.nn.Module):
        def forward(self, x, t):
            return x[x > t] * 2.0

    m = Masked()
    rng = np.random.default_rng(7)
    x0 = rng.standard_normal((3, 5)).astype(np.float32)
    t0 = np.array(0.5, dtype=np.float32)
    torch.onnx.export(m, (torch.from_numpy(x0), torch.from_numpy(t0)), os.path.join(out, "masked.onnx"),
                      input_names=["x", "t"], output_names=["y"], opset_version=13,
                      dynamic_axes={"y": {0: "n"}})
    for s, t in enumerate([0.5, -10.0, 10.0]):
        x = rng.standard_normal((3, 5)).astype(np.float32)
        tt = np.array(t, dtype=np.float32)
        np.save(os.path.join(out, "masked_in0_%d.npy" % s), x)
        np.save(os.path.join(out, "masked_in1_%d.npy" % s), tt)
        np.save(os.path.join(out, "masked_out0_%d.npy" % s),
                m(torch.from_numpy(x), torch.from_numpy(tt)).numpy())


def helper_models(out):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto as TP
    from onnx import helper as H
    from onnx import numpy_helper as NH

    F, I64 = TP.FLOAT, TP.INT64

    def save(name, nodes, ins, outs, inits, sets):
        g = H.make_graph(nodes, name, [H.make_tensor_value_info(k, t, s) for k, t, s in ins],
                         [H.make_tensor_value_info(k, t, s) for k, t, s in outs],
                         [NH.from_array(v, k) for k, v in inits.items()])
        m = H.make_model(g, opset_imports=[H.make_opsetid("", 13)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        path = os.path.join(out, name + ".onnx")
        onnx.save(m, path)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        for s, arrays in enumerate(sets):
            for i, a in enumerate(arrays):
                np.save(os.path.join(out, "%s_in%d_%d.npy" % (name, i, s)), a)
            res = sess.run(None, {ins[i][0]: a for i, a in enumerate(arrays)})
            for k, r in enumerate(res):
                np.save(os.path.join(out, "%s_out%d_%d.npy" % (name, k, s)), r)

    rng = np.random.default_rng(16)

    # NonZero as torch.nonzero exports it: [rank, n] transposed to [n, rank];
    # and the count of each row's nonzeros through a Cast and a Mul.
    def nz_set(p):
        return [(rng.random((3, 4)) < p).astype(np.float32) * rng.integers(1, 9, (3, 4)).astype(np.float32)]
    save("nonzero_t",
         [H.make_node("NonZero", ["x"], ["nz"]), H.make_node("Transpose", ["nz"], ["y"], perm=[1, 0]),
          H.make_node("Cast", ["nz"], ["nzf"], to=F), H.make_node("Mul", ["nzf", "two"], ["z"])],
         [("x", F, [3, 4])], [("y", I64, ["n", 2]), ("z", F, [2, "n"])], {"two": np.array([[2.0]], np.float32)},
         [nz_set(0.5), nz_set(0.0), nz_set(1.0)])

    # Compress with a run-time condition along axis 1, then Relu.
    def cp_set(t):
        return [rng.standard_normal((2, 6)).astype(np.float32), np.array(t, np.float32)]
    save("compress_rt",
         [H.make_node("Slice", ["x", "s0", "s1", "s_ax"], ["row"]), H.make_node("Reshape", ["row", "flat"], ["r1"]),
          H.make_node("Greater", ["r1", "t"], ["c"]), H.make_node("Compress", ["x", "c"], ["k"], axis=1),
          H.make_node("Relu", ["k"], ["y"])],
         [("x", F, [2, 6]), ("t", F, [])], [("y", F, [2, "n"])],
         {"s0": np.array([0], np.int64), "s1": np.array([1], np.int64), "s_ax": np.array([0], np.int64),
          "flat": np.array([-1], np.int64)},
         [cp_set(0.0), cp_set(5.0), cp_set(-5.0)])

    # TopK with k from an input; values through Neg, indices as they are.
    def tk_set(k):
        return [rng.standard_normal((2, 7)).astype(np.float32), np.array([k], np.int64)]
    save("topk_rt",
         [H.make_node("TopK", ["x", "k"], ["v", "i"], axis=1), H.make_node("Neg", ["v"], ["y"])],
         [("x", F, [2, 7]), ("k", I64, [1])], [("y", F, [2, "k"]), ("i", I64, [2, "k"])], {},
         [tk_set(3), tk_set(7), tk_set(0)])

    # Range of run-time inputs (compiled with --max-length 64), scaled.
    save("range_rt",
         [H.make_node("Range", ["s", "l", "d"], ["r"]), H.make_node("Mul", ["r", "half"], ["y"])],
         [("s", F, []), ("l", F, []), ("d", F, [])], [("y", F, ["n"])], {"half": np.array(0.5, np.float32)},
         [[np.array(a, np.float32) for a in v] for v in [(1, 10.5, 2), (3, 1, 1), (-4, 4, 0.25), (5, -5, -3)]])

    # Unique rows (axis 0), sorted, with all four outputs.
    def uq_set(hi):
        return [rng.integers(0, hi, (8, 2)).astype(np.int64)]
    save("unique_rows",
         [H.make_node("Unique", ["x"], ["y", "idx", "inv", "cnt"], axis=0, sorted=1)],
         [("x", I64, [8, 2])], [("y", I64, ["u", 2]), ("idx", I64, ["u"]), ("inv", I64, [8]), ("cnt", I64, ["u"])],
         {}, [uq_set(2), uq_set(1), uq_set(100)])

    # A detector's tail: NonMaxSuppression over 3 classes, then the kept
    # boxes gathered by the selected rows' box column (Slice, Squeeze,
    # Gather: the bounded axis carried through each).
    def nms_set(thr):
        c = rng.random((1, 20, 2)).astype(np.float32) * 10
        wh = rng.random((1, 20, 2)).astype(np.float32) * 4 + 0.5
        boxes = np.concatenate([c, c + wh], axis=2)  # y1, x1, y2, x2
        scores = rng.random((1, 3, 20)).astype(np.float32)
        return [boxes, scores, np.array([thr], np.float32)]
    save("nms_tail",
         [H.make_node("NonMaxSuppression", ["boxes", "scores", "maxb", "iou", "thr"], ["sel"]),
          H.make_node("Slice", ["sel", "c2", "c3", "c1"], ["bcol"]),
          H.make_node("Squeeze", ["bcol", "c1"], ["bi"]),
          H.make_node("Squeeze", ["boxes", "c0"], ["b2"]),
          H.make_node("Gather", ["b2", "bi"], ["kept"], axis=0)],
         [("boxes", F, [1, 20, 4]), ("scores", F, [1, 3, 20]), ("thr", F, [1])],
         [("sel", I64, ["n", 3]), ("kept", F, ["n", 4])],
         {"maxb": np.array([4], np.int64), "iou": np.array([0.3], np.float32),
          "c0": np.array([0], np.int64), "c1": np.array([1], np.int64), "c2": np.array([2], np.int64),
          "c3": np.array([3], np.int64)},
         [nms_set(0.2), nms_set(0.9), nms_set(1.5)])

    # Reductions and a softmax along the other axis of NonZero's [2, n]
    # (the bounded axis carried); ArgMax keeps the reduced axis.
    save("reduce_carry",
         [H.make_node("NonZero", ["x"], ["nz"]), H.make_node("Cast", ["nz"], ["f"], to=F),
          H.make_node("ReduceSum", ["f", "ax0"], ["s"], keepdims=0),
          H.make_node("Softmax", ["f"], ["sm"], axis=0),
          H.make_node("ArgMax", ["f"], ["am"], axis=0, keepdims=1)],
         [("x", F, [3, 4])], [("s", F, ["n"]), ("sm", F, [2, "n"]), ("am", I64, [1, "n"])],
         {"ax0": np.array([0], np.int64)}, [nz_set(0.5), nz_set(0.0), nz_set(1.0)])

    with open(os.path.join(out, "versions.txt"), "w") as f:
        f.write("onnxruntime %s\nonnx %s\nnumpy %s\n" % (ort.__version__, onnx.__version__, np.__version__))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--torch":
        torch_model(sys.argv[2])
        sys.exit(0)
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else OUT)
    os.makedirs(out, exist_ok=True)
    helper_models(out)
    subprocess.run(["/usr/bin/python3", os.path.abspath(__file__), "--torch", out], check=True)
