#!/usr/bin/python3
"""End to end on real models: the digits MLP and CNN (trained with torch on
sklearn's digits by scripts/make_digits_models.py) are compiled by moss for
the whole test set as one batch, run with `moss run`, and compared with
torch's logits (DESIGN.md float tolerance |a-b| <= 1e-5 + 1e-4|b|) and with
torch's test-set accuracy (must be equal).
  test_digits.py --moss build/moss
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "digits")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    a = ap.parse_args()
    acc_ref = dict(l.split() for l in open(os.path.join(DATA, "accuracy.txt")))
    y = np.load(os.path.join(DATA, "y_test.npy"))
    failed = 0
    for m in ("mlp", "cnn"):
        x_path = os.path.join(DATA, "x_test_%s.npy" % m)
        x = np.load(x_path)
        ref = np.load(os.path.join(DATA, "%s_ref.npy" % m))
        shape = "x".join(str(d) for d in x.shape)
        with tempfile.TemporaryDirectory() as work:
            art = os.path.join(work, m)
            subprocess.run([a.moss, "compile", os.path.join(DATA, m + ".onnx"), "--input-shape",
                            "input=" + shape, "-o", art, "-q"], check=True)
            subprocess.run([a.moss, "run", art, x_path, "-o", work], check=True)
            got = np.load(os.path.join(work, "output_0.npy"))
        if got.shape != ref.shape:
            print("FAIL %s: output shape %s, expected %s" % (m, got.shape, ref.shape))
            failed += 1
            continue
        err = np.abs(got.astype(np.float64) - ref)
        ok = err <= 1e-5 + 1e-4 * np.abs(ref)
        acc = float((got.argmax(1) == y).mean())
        want = float(acc_ref[m])
        print("%s: max |moss - torch| = %.3g, %d/%d elements within tolerance, accuracy %.6f "
              "(torch %.6f)" % (m, err.max(), ok.sum(), ok.size, acc, want))
        if not ok.all():
            print("FAIL %s: logits differ from torch beyond the DESIGN.md tolerance" % m)
            failed += 1
        if abs(acc - want) > 1e-6:
            print("FAIL %s: accuracy differs from torch's" % m)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
