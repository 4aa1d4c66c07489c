#!/usr/bin/python3
"""Prune and quantize the digits CNN for several targets; print accuracy and
energy per target.

The ML engineer's loop with the moss Python package (python/README.md): the
float CNN compiled for this machine gives the baseline accuracy; then, for
each target, the same model pruned (--prune magnitude:R) and quantized to
int8 (calibrated on 256 training images) is compiled for that target, and
its estimated time, energy per inference (platform-model: active and idle
power over the estimated time, what `moss compare` ranks by) and memory come
from the compiler's report. The accuracy on the test set (450 images) is
measured by running the target's own code through libmossrt where it runs on
this machine (a bundle for this CPU); elsewhere (ARM, RISC-V, bare metal)
the column shows '-' and the accuracy of the same pruned int8 model built
for this machine stands in (the first lines say it).

    PYTHONPATH=python MOSS_EXECUTABLE=build/moss \\
      python3 examples/python/digits_targets.py --targets host,rpi4,cortex-m7

Needs the moss executable and libmossrt (MOSS_EXECUTABLE, MOSS_LIBRARY, or
moss on PATH) and MOSS_TARGETS_DIR when moss is not installed.
"""
import argparse
import os
import sys

import numpy as np

import moss

HERE = os.path.dirname(os.path.abspath(__file__))
DIGITS = os.path.join(HERE, "..", "..", "tests", "e2e", "digits")
SHAPE = {"input": (1, 1, 8, 8)}


def si(v, unit):
    if v is None:
        return "n/m"
    for scale, prefix in ((1, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p")):
        if abs(v) >= scale:
            return "%.3g %s%s" % (v / scale, prefix, unit)
    return "%.3g %s" % (v, unit)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", default="host,rpi4,rpi5,riscv64-rvv,cortex-m7")
    ap.add_argument("--prune", default="magnitude:0.5")
    ap.add_argument("--digits", default=DIGITS, help="the folder of cnn.onnx and its data")
    a = ap.parse_args()
    d = a.digits
    model = os.path.join(d, "cnn.onnx")
    x, y = np.load(os.path.join(d, "x_test_cnn.npy")), np.load(os.path.join(d, "y_test.npy"))
    calib = np.load(os.path.join(d, "x_calib_cnn.npy"))
    opts = dict(input_shape=SHAPE, prune=a.prune, quantize="int8", calibration=calib)

    with moss.compile(model, input_shape=SHAPE) as f32, moss.compile(model, **opts) as q:
        base, here = f32.eval(x, y), q.eval(x, y)
    print("float CNN on this machine: accuracy %.4f" % base)
    print("pruned (%s) + int8 on this machine: accuracy %.4f (%+.2f points)"
          % (a.prune, here, 100 * (here - base)))
    print("%-14s %-10s %-12s %-12s %-10s %s" % ("target", "accuracy", "energy/inf", "time/inf",
                                                 "memory", "code"))
    for t in a.targets.split(","):
        try:
            art = moss.compile(model, target=t, **opts)
        except moss.MossError as e:
            print("%-14s failed: %s" % (t, e.diagnostics[0] if e.diagnostics else e))
            continue
        with art:
            tot = art.report["total"]
            acc = "-"
            if art.emit == "bundle":
                try:
                    acc = "%.4f" % art.eval(x, y)
                except moss.MossError:
                    pass  # built for another CPU: it does not run here
            e = tot["platform_j"]
            print("%-14s %-10s %-12s %-12s %-10s %s" % (
                t, acc, si(e["value"], "J") + (" (partial)" if e["partial"] else ""),
                si(tot["time_s"]["value"], "s"),
                "%d B" % (tot["arena_bytes"] + tot["weight_bytes"]), art.emit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
