#!/usr/bin/python3
"""A model with more than 1 MiB of weights: moss puts them in
<name>_weights.c, `moss run` links both files, and the result matches numpy.
The model is built here with onnx's helpers (too large to commit)."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    moss = sys.argv[sys.argv.index("--moss") + 1]
    n = 300000
    w = (np.arange(n, dtype=np.float32) * np.float32(1e-3)).reshape(1, n)
    x = np.random.RandomState(0).randn(1, n).astype(np.float32)
    g = helper.make_graph([helper.make_node("Mul", ["x", "big"], ["y"], name="mul0")], "big",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
                          [numpy_helper.from_array(w, "big")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    with tempfile.TemporaryDirectory() as d:
        onnx.save(m, os.path.join(d, "big.onnx"))
        np.save(os.path.join(d, "x.npy"), x)
        art = os.path.join(d, "art")
        subprocess.run([moss, "compile", os.path.join(d, "big.onnx"), "--emit", "c", "-o", art, "-q"], check=True)
        files = sorted(os.listdir(art))
        if "big_weights.c" not in files:
            print("FAIL: no weights file among %s" % files)
            return 1
        subprocess.run([moss, "run", art, os.path.join(d, "x.npy"), "-o", d], check=True)
        y = np.load(os.path.join(d, "output_0.npy"))
    if not np.array_equal(y, x * w):
        print("FAIL: outputs differ from numpy")
        return 1
    print("weights file: %s, outputs equal numpy's x * w" % ", ".join(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
