#!/usr/bin/python3
"""The int8 Gemm figure of CPUs without SIMD (docs/sparse.md, rule
`int8-no-vector`): dense against CSR on the C backend's code for cortex-m7.

One MossQGemm, 1024 x 1024 with random weights, 75 % of them zeroed
(magnitude), quantized by moss's PTQ, compiled with `--target cortex-m7
--emit c` twice: MOSS_SPARSE=off (dense) and csr. Each is built for this
machine with a small timing harness, once with the vectorizers off
(`-O2 -fno-tree-vectorize -fno-tree-slp-vectorize`, a stand-in for a core
without SIMD; nothing here runs on an M7) and once with
`-O3 -march=native`, and timed: the median of 301 rounds of 20 calls.
Prints the medians and CSR's cost per nonzero in dense terms. Nothing here
is a test; run it with Debian's interpreter (numpy, onnx):

  /usr/bin/python3 bench/bench_q8_novec.py --moss build/moss
"""
import argparse
import os
import subprocess
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "g.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
int main(void) {
  static float x[G_IN0_NUMEL], y[G_OUT0_NUMEL];
  static double ts[301];
  void *arena = malloc(G_ARENA_BYTES + 64);
  int i, r, k;
  for (i = 0; i < (int)G_IN0_NUMEL; i++) x[i] = (float)(i % 17) / 17.0f;
  for (r = 0; r < 301; r++) {
    double t = now();
    for (k = 0; k < 20; k++) g_run(x, y, arena);
    ts[r] = (now() - t) / 20;
  }
  qsort(ts, 301, sizeof ts[0], cmp);
  printf("%.3f\n", ts[150] * 1e6);
  free(arena);
  return y[0] != y[0];
}
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--sparsity", type=float, default=0.75)
    a = ap.parse_args()
    k = n = a.size
    rng = np.random.default_rng(0)
    work = tempfile.mkdtemp(prefix="moss-bench-q8novec-")
    w = (rng.standard_normal((n, k)) * 0.05).astype(np.float32)
    g = helper.make_graph([helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.zeros(n, np.float32), "b")])
    model = os.path.join(work, "g.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), model)
    calib = os.path.join(work, "calib.npy")
    np.save(calib, rng.random((16, k)).astype(np.float32))
    with open(os.path.join(work, "h.c"), "w") as f:
        f.write(HARNESS)
    us = {}
    for mode in ("off", "csr"):
        out = os.path.join(work, "m7_" + mode)
        subprocess.run([a.moss, "compile", model, "--target", "cortex-m7", "--emit", "c", "--quantize", "int8",
                        "--calibration", calib, "--prune", "magnitude:%g" % a.sparsity, "-o", out, "-q"],
                       check=True, env=dict(os.environ, MOSS_SPARSE=mode))
        for tag, flags in (("scalar", ["-O2", "-fno-tree-vectorize", "-fno-tree-slp-vectorize"]),
                           ("native", ["-O3", "-march=native"])):
            exe = os.path.join(work, "h_%s_%s" % (mode, tag))
            subprocess.run(["cc"] + flags + ["-I", out, os.path.join(work, "h.c"), os.path.join(out, "g.c"),
                                             os.path.join(out, "g_weights.c"), "-o", exe, "-lm"], check=True)
            us[(mode, tag)] = float(subprocess.run([exe], check=True, capture_output=True,
                                                   text=True).stdout)
    nnz = round((1 - a.sparsity) * n * k)
    print("MossQGemm %dx%d, %.0f %% zeros, C backend code for cortex-m7, medians:" % (n, k, a.sparsity * 100))
    for tag in ("scalar", "native"):
        d, c = us[("off", tag)], us[("csr", tag)]
        print("  %-6s dense %8.1f us  csr %8.1f us  csr per nonzero %.2f dense terms"
              % (tag, d, c, (c / nnz) / (d / (n * k))))


if __name__ == "__main__":
    main()
