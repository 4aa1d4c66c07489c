#!/usr/bin/python3
"""int8 Gemm by columns (docs/sparse.md, format `columns`): dense against
the kernel that gathers the input at the weight's nonzero columns and runs
the dense dot products over them, the figure MOSS_SPARSE_Q8COLS_GATHER in
compiler/ops/sparse.h comes from.

Each layer below is one Gemm (transB=1, batch 1, random weights), the R
share of its input columns with the lowest mean square zeroed (moss's
`--prune columns:R`), quantized by moss's PTQ (MossQGemm), compiled for a
target with MOSS_SPARSE=off (dense) and columns, and timed with `moss
bench --profile` (the Gemm step's median of N runs, one thread; the
steps that quantize its input and dequantize its output left out). The kernel pads the kept columns
to whole vectors of one register's bytes (64 on `host`, 32 on
`x86_64-avx2`, 16 on NEON; the "padded" column, read from
--dump-kernels). The cost rule prices columns at rows x padded + GATHER x
kept dense terms against dense's rows x all; for each point this prints
the GATHER that makes the rule's ratio the measured one, (rows x all x
t_columns / t_dense - rows x padded) / kept, and at the end the median
over the layers and ratios of each target. Targets: `host` (AVX-512) and
`x86_64-avx2` (integer vectors widened from bytes, the nearest stand-in
here for NEON's; no Arm core runs here). Nothing here is
a test; run it with Debian's interpreter (numpy, onnx):

  /usr/bin/python3 bench/bench_q8_columns.py --moss build/moss
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# out (rows), in (columns)
LAYERS = [(64, 64), (32, 64), (256, 256), (1024, 1024)]


def prune_columns(w, ratio):
    k = int(np.floor(w.shape[1] * ratio + 1e-9))
    ms = (w.astype(np.float64) ** 2).mean(axis=0)
    w = w.copy()
    w[:, np.argsort(ms, kind="stable")[:k]] = 0
    return w, w.shape[1] - k


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", default=os.path.join(os.path.dirname(__file__), "..", "build", "moss"))
    ap.add_argument("--targets", default="host,x86_64-avx2")
    ap.add_argument("--iterations", type=int, default=20000)
    ap.add_argument("--ratios", default="0.2,0.5,0.75")
    a = ap.parse_args()
    moss = os.path.abspath(a.moss)
    rng = np.random.default_rng(0)
    print("target        layer      ratio  kept  padded  dense us  columns us  columns/dense  GATHER")
    with tempfile.TemporaryDirectory() as work:
        for target in a.targets.split(","):
            gathers = []
            for n, k in LAYERS:
                w0 = (rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32)
                calib = os.path.join(work, "calib.npy")
                np.save(calib, rng.random((16, k)).astype(np.float32))
                for r in [float(s) for s in a.ratios.split(",")]:
                    w, kept = prune_columns(w0, r)
                    g = helper.make_graph(
                        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], "g",
                        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])],
                        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
                        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.zeros(n, np.float32), "b")])
                    model = os.path.join(work, "g.onnx")
                    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), model)
                    t = {}
                    for mode in ("off", "columns"):
                        art = os.path.join(work, "g_%s.moss" % mode)
                        env = dict(os.environ, MOSS_SPARSE=mode)
                        dump = subprocess.run([moss, "compile", model, "-q", "-o", art, "--target", target,
                                               "--quantize", "int8", "--calibration", calib, "--dump-kernels"],
                                              check=True, env=env, capture_output=True, text=True)
                        m = re.search(r"as columns, \d+ of \d+ columns kept, \d+ x (\d+)",
                                      dump.stdout + dump.stderr)
                        if mode == "columns":
                            if not m:
                                raise SystemExit("%s %dx%d at %s: not compiled by columns"
                                                 % (target, n, k, r))
                            padded = int(m.group(1))
                        out = subprocess.run([moss, "bench", art, "--iterations", str(a.iterations), "--threads",
                                              "1", "--profile"], check=True, capture_output=True, text=True)
                        prof = re.search(r"([0-9.]+) us\s+[0-9.]+ us\s+[0-9.]+x\s+\S+ \(MossQGemm\)",
                                         out.stdout + out.stderr)
                        t[mode] = float(prof.group(1))
                    ratio = t["columns"] / t["off"]
                    gather = n * (ratio * k - padded) / kept
                    gathers.append(gather)
                    print("%-13s %4dx%-5d %5.2f  %4d  %6d  %8.3f  %10.3f  %13.3f  %6.1f" %
                          (target, n, k, r, kept, padded, t["off"], t["columns"], ratio, gather))
                    sys.stdout.flush()
            print("%s: median GATHER %.1f dense terms a kept column" % (target, float(np.median(gathers))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
