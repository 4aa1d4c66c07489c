#!/usr/bin/python3
"""End to end on torch's own int8 models: the digits CNN and MLP quantized by
torch (eager-mode post-training static quantization, qnnpack) and exported as
QDQ graphs by scripts/make_digits_models.py (cnn_qdq, mlp_qdq and, when the
script could make it, the per-channel cnn_qdq_pc).

For each model, compiled for the whole test set as one batch, once as a
bundle and once with --emit c, and run with `moss run`:
  - the two builds' outputs are identical (DESIGN.md: int8 results are
    bit-identical across backends);
  - moss's output integers, recovered as round(out / scale) + zero_point with
    the scale and zero point of torch's quantized output (<model>_qparams.txt),
    are within 1 of torch's integers (<model>_ref_q.npy) on at least 99 % of
    the elements (DESIGN.md: within 1 LSB of the reference; torch's qnnpack
    requantization rounds differently from ONNX's float QuantizeLinear, so a
    few elements may be 1 off);
  - moss's test accuracy is at least the float model's (accuracy.txt) - 0.01;
  - `moss compile --explain` reports the model as integer-only: the qdq pass
    prints `# quantized: K nodes in integer arithmetic, F float nodes in
    quantized regions` and a `stays float: ` line per float node; K > 0 and
    F == 0 are required.
  test_qdq_digits.py --moss build/moss
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "digits")

# model, its float twin (accuracy.txt), its test inputs
MODELS = (("cnn_qdq", "cnn", "x_test_cnn.npy"),
          ("mlp_qdq", "mlp", "x_test_mlp.npy"),
          ("cnn_qdq_pc", "cnn", "x_test_cnn.npy"))

QUANT_LINE = re.compile(r"^# quantized: (\d+) nodes in integer arithmetic, "
                        r"(\d+) float nodes in quantized regions$")


def read_qparams(name):
    kv = dict(l.split() for l in open(os.path.join(DATA, name + "_qparams.txt")))
    return float(kv["scale"]), int(kv["zero_point"])


def compile_run(moss, model, shape, x_path, work, tag, emit):
    art = os.path.join(work, tag)
    out = os.path.join(work, "out_" + tag)
    args = [moss, "compile", model, "--input-shape", "input=" + shape, "-o", art, "-q"]
    if emit:
        args[5:5] = ["--emit", emit]
    subprocess.run(args, check=True)
    subprocess.run([moss, "run", art, x_path, "-o", out], check=True)
    return np.load(os.path.join(out, "output_0.npy"))


def check_numbers(name, tag, got, ref_q, scale, zp, y, want_acc):
    """The numeric checks of one build; returns the number of failures."""
    fails = 0
    if got.shape != ref_q.shape or got.dtype != np.float32:
        print("FAIL %s (%s): output %s %s, expected float32 %s"
              % (name, tag, got.dtype, got.shape, ref_q.shape))
        return 1
    got_q = np.clip(np.rint(got.astype(np.float64) / scale) + zp, 0, 255)
    diff = np.abs(got_q - ref_q.astype(np.float64))
    share = float((diff <= 1).mean())
    exact = float((diff == 0).mean())
    acc = float((got.argmax(1) == y).mean())
    print("%s (%s): |moss_q - torch_q| <= 1 on %.4f of %d elements (exact %.4f), "
          "max diff %d; accuracy %.6f (float %.6f)"
          % (name, tag, share, diff.size, exact, int(diff.max()), acc, want_acc))
    if share < 0.99:
        print("FAIL %s (%s): fewer than 99%% of the output integers within 1 of torch's"
              % (name, tag))
        fails += 1
    if acc < want_acc - 0.01:
        print("FAIL %s (%s): accuracy more than 0.01 below the float model's" % (name, tag))
        fails += 1
    return fails


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    a = ap.parse_args()
    acc_ref = dict(l.split() for l in open(os.path.join(DATA, "accuracy.txt")))
    y = np.load(os.path.join(DATA, "y_test.npy"))
    fails = 0
    missing_summary = []
    for name, twin, x_file in MODELS:
        model = os.path.join(DATA, name + ".onnx")
        if not os.path.exists(model):
            # The generator skips the per-channel model where torch cannot
            # make it (tests/e2e/digits/README.md says whether it did).
            print("%s: not generated, skipped" % name)
            continue
        x_path = os.path.join(DATA, x_file)
        x = np.load(x_path)
        shape = "x".join(str(d) for d in x.shape)
        ref_q = np.load(os.path.join(DATA, name + "_ref_q.npy"))
        scale, zp = read_qparams(name)
        want_acc = float(acc_ref[twin])
        with tempfile.TemporaryDirectory() as work:
            bundle = compile_run(a.moss, model, shape, x_path, work, "bundle", None)
            c = compile_run(a.moss, model, shape, x_path, work, "c", "c")
            fails += check_numbers(name, "bundle", bundle, ref_q, scale, zp, y, want_acc)
            fails += check_numbers(name, "emit c", c, ref_q, scale, zp, y, want_acc)
            if bundle.shape != c.shape or not np.array_equal(bundle, c):
                print("FAIL %s: the bundle and --emit c outputs differ" % name)
                fails += 1

            r = subprocess.run([a.moss, "compile", model, "--input-shape", "input=" + shape,
                                "-o", os.path.join(work, "explain"), "--explain"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True)
        if r.returncode != 0:
            print("FAIL %s: moss compile --explain exited %d: %s"
                  % (name, r.returncode, r.stderr.strip()))
            fails += 1
            continue
        lines = r.stdout.splitlines()
        summary = [QUANT_LINE.match(l) for l in lines]
        summary = [m for m in summary if m]
        stays = [l for l in lines if l.startswith("stays float: ")]
        if not summary:
            print("%s: --explain has no '# quantized:' line" % name)
            missing_summary.append(name)
            continue
        if len(summary) != 1:
            print("FAIL %s: %d '# quantized:' lines, expected one" % (name, len(summary)))
            fails += 1
        k, f = int(summary[0].group(1)), int(summary[0].group(2))
        print("%s: %d nodes in integer arithmetic, %d float nodes in quantized regions"
              % (name, k, f))
        if k <= 0 or f != 0 or stays:
            print("FAIL %s: not integer-only (K = %d, F = %d, %d 'stays float' lines)"
                  % (name, k, f, len(stays)))
            for l in stays:
                print("  " + l)
            fails += 1
    if fails:
        return 1
    if missing_summary:
        print("FAIL: --explain printed no '# quantized:' summary for %s" %
              ", ".join(missing_summary))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
