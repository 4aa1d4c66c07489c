#!/usr/bin/python3
"""The int8 Conv's pruned words on the register tile (docs/sparse.md, rules
`int8-dot` and `int8-widened`): dense against CSR of words and 4x1 blocks
of words, the figures MOSS_SPARSE_Q8TILE_WORD and _BLOCK in
compiler/ops/sparse.h come from.

An int8 Conv on the tile sums byte dot products over words of four input
channels at one kernel position. A word whose four weights are zero adds
nothing, so the pruned kernel runs over the words that hold a nonzero (CSR,
one output channel a row) or over 4x1 blocks of them (four output channels
a row). Each layer below (batch 1, random weights, QDQ as an int8 exporter
writes it, moss folds it to a QLinearConv) is pruned by channels:1x4:R or
channels:4x4:R (`--prune`, the words or the blocks with the lowest mean
square), compiled for a target with MOSS_SPARSE=off (dense), csr and block
and timed with `moss bench` (median of N runs, one thread). For each it
prints the medians, the words (or blocks) kept, and the cost per kept word
(block) in dense scalar terms. Then, per layer and format, the line
t_sparse / t_dense = FIXED + SLOPE x kept / all that fits best (least
squares over the ratios, 0 included: the pruned kernel at full density),
and the medians of FIXED and SLOPE over the layers for each rule and
format: the figures of sparse.h. Run it on this x86-64 for `host` (AVX-512 VNNI: int8-dot)
and `x86_64-avx2` (no byte dot product: int8-widened, the rule of rpi4's
NEON); nothing here is a test:

  /usr/bin/python3 bench/bench_q8_words.py --moss build/moss [--targets host,x86_64-avx2]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_conv import conv_model  # noqa: E402

# name, cin, cout, kernel, side
LAYERS = [("conv3x3", 64, 64, 3, 28), ("conv1x1", 128, 128, 1, 14), ("mid3x3", 32, 32, 3, 8),
          ("digits4", 8, 16, 3, 4)]
FACTOR = {"int8-dot": 0.02, "int8-widened": 0.11}


def prune_words(w, h, ratio):
    """channels:hx4:ratio: zeroes the |ratio| share of blocks of h output
    channels x 4 input channels at one kernel position with the lowest mean
    square (ties to the earlier block), as moss's --prune does."""
    cout, cin, kh, kw = w.shape
    cg = (cin + 3) // 4
    wp = np.zeros((cout, cg * 4, kh, kw), np.float32)
    wp[:, :cin] = w
    blk = wp.reshape(cout // h, h, cg, 4, kh, kw)
    score = (blk.astype(np.float64) ** 2).mean(axis=(1, 3))  # [cout/h, cg, kh, kw]
    k = int(np.floor(score.size * ratio + 1e-9))
    idx = np.argsort(score, axis=None, kind="stable")[:k]
    mask = np.ones(score.size, bool)
    mask[idx] = False
    mask = mask.reshape(score.shape)[:, None, :, None]
    return (blk * mask).reshape(cout, cg * 4, kh, kw)[:, :cin].copy(), int(mask.sum()), score.size


def bench(moss, path, target, mode, iters, work):
    env = dict(os.environ, MOSS_SPARSE=mode)
    art = os.path.join(work, "m_%s_%s.moss" % (target, mode))
    subprocess.run([moss, "compile", path, "-q", "-o", art, "--target", target], check=True, env=env)
    out = subprocess.run([moss, "bench", art, "--iterations", str(iters), "--threads", "1"], check=True,
                         capture_output=True, text=True, env=env).stdout
    return float(re.search(r"median ([0-9.]+) us", out).group(1))


def rule_of(moss, path, target, work):
    rep = os.path.join(work, "r.json")
    subprocess.run([moss, "compile", path, "-q", "-o", os.path.join(work, "r.moss"), "--target", target,
                    "--report", rep], check=True)
    import json
    for n in json.load(open(rep))["nodes"]:
        if n.get("sparse_rule"):
            return n["sparse_rule"]
    return "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", default=os.path.join(os.path.dirname(__file__), "..", "build", "moss"))
    ap.add_argument("--targets", default="host,x86_64-avx2")
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--ratios", default="0,0.5,0.75,0.9")
    a = ap.parse_args()
    moss = os.path.abspath(a.moss)
    print("target       rule          layer     h  ratio  kept/all   dense us  sparse us  sparse/dense"
          "  per kept (dense scalar terms)")
    fits = {}
    with tempfile.TemporaryDirectory() as work:
        for target in a.targets.split(","):
            for name, cin, cout, k, hw in LAYERS:
                rng = np.random.default_rng(0)
                w0 = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
                b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
                x = np.maximum(rng.standard_normal((1, cin, hw, hw)), 0).astype(np.float32)
                path = os.path.join(work, "dense.onnx")
                onnx.save(conv_model(cin, cout, k, hw, w0, b, x), path)
                rule = rule_of(moss, path, target, work)
                f = FACTOR.get(rule)
                t_dense = bench(moss, path, target, "off", a.iterations, work)
                for h, mode in ((1, "csr"), (4, "block")):
                    pts = []
                    for r in [float(s) for s in a.ratios.split(",")]:
                        w, kept, total = prune_words(w0, h, r)
                        path = os.path.join(work, "p.onnx")
                        onnx.save(conv_model(cin, cout, k, hw, w, b, x), path)
                        t = bench(moss, path, target, mode, a.iterations, work)
                        per = f * 4 * h * (t / t_dense) * (total / kept) if f and kept else float("nan")
                        print("%-12s %-13s %-9s %d  %5.2f  %4d/%-4d  %9.2f  %9.2f  %12.3f  %8.3f" %
                              (target, rule, name, h, r, kept, total, t_dense, t, t / t_dense, per))
                        sys.stdout.flush()
                        pts.append((kept / total, t / t_dense))
                    slope, fixed = np.polyfit([p[0] for p in pts], [p[1] for p in pts], 1)
                    fits.setdefault((rule, mode), []).append((fixed, slope))
                    print("%-12s %-13s %-9s %-5s FIXED %.3f SLOPE %.3f" % (target, rule, name, mode, fixed, slope))
    print("rule          format  FIXED, SLOPE per layer                        median FIXED  SLOPE")
    for (rule, mode), v in sorted(fits.items()):
        print("%-13s %-6s  %-44s  %.2f  %.2f" % (rule, mode, " ".join("%.2f,%.2f" % x for x in v),
                                                  float(np.median([x[0] for x in v])),
                                                  float(np.median([x[1] for x in v]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
