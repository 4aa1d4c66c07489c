#!/usr/bin/python3
"""moss's own post-training quantization on the digits MLP and CNN
(docs/quantization.md): `moss compile --quantize int8 --calibration` with
256 training inputs, evaluated on the 450 test inputs. Checks:
  - the int8 accuracy is at least torch's float accuracy (accuracy.txt)
    minus 0.015, and the float accuracy --eval reports equals torch's;
  - --eval's count equals numpy's argmax over `moss run`'s logits of the
    same artifact, batch by batch;
  - `moss eval` on the artifact agrees;
  - --keep-float leaves a layer float; the error cases (missing
    --calibration, calibration data of the wrong shape, an unknown
    --keep-float name) fail with a clear message;
  - --explain's summary from the qdq pass: every node of the quantized
    regions runs in integer arithmetic (K > 0, F == 0). Until that pass
    prints the line, this test FAILS.
  test_ptq_digits.py --moss build/moss
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
BATCH = 16
failures = []


def check(cond, what):
    print("%s %s" % ("ok  " if cond else "FAIL", what))
    if not cond:
        failures.append(what)


def calib_file(m):
    """The 256 calibration inputs: the committed fixture
    (scripts/make_digits_models.py writes it with sklearn, which the test
    suite does not install)."""
    return os.path.join(DATA, "x_calib_%s.npy" % m)


def moss(a, *args):
    return subprocess.run([a.moss] + list(args), capture_output=True, text=True)


def shape_of(x, batch):
    return "input=" + "x".join(str(d) for d in (batch,) + x.shape[1:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    a = ap.parse_args()
    acc_ref = dict(l.split() for l in open(os.path.join(DATA, "accuracy.txt")))
    y_path = os.path.join(DATA, "y_test.npy")
    y = np.load(y_path)
    with tempfile.TemporaryDirectory() as work:
        for m in ("mlp", "cnn"):
            model = os.path.join(DATA, m + ".onnx")
            x_path = os.path.join(DATA, "x_test_%s.npy" % m)
            x = np.load(x_path)
            calib = calib_file(m)
            want = float(acc_ref[m])
            art = os.path.join(work, m + "_int8.moss")
            r = moss(a, "compile", model, "--input-shape", shape_of(x, BATCH), "--quantize", "int8",
                     "--calibration", calib, "-o", art, "--eval", x_path, y_path)
            print(r.stderr, end="")
            print(r.stdout, end="")
            check(r.returncode == 0, "%s: compile --quantize int8 --eval" % m)
            if r.returncode:
                continue
            check("moss: quantize: 3 layers int8 (per-channel weights), 0 kept float, "
                  "calibration 256 samples (minmax)" in r.stderr, "%s: the summary line" % m)
            mo = re.search(r"accuracy float ([0-9.]+) \((\d+)/(\d+)\), int8 ([0-9.]+) \((\d+)/(\d+)\), "
                           r"change ([-+0-9.]+)", r.stdout)
            check(mo is not None, "%s: --eval prints float and int8 accuracy" % m)
            if not mo:
                continue
            acc_f, acc_q, q_right = float(mo.group(1)), float(mo.group(4)), int(mo.group(5))
            check(abs(acc_f - want) < 1e-6, "%s: float accuracy %.6f equals torch's %.6f"
                  % (m, acc_f, want))
            check(acc_q >= want - 0.015, "%s: int8 accuracy %.6f >= float %.6f - 0.015"
                  % (m, acc_q, want))
            check(int(mo.group(6)) == len(y), "%s: all %d test rows counted" % (m, len(y)))

            # A batch larger than the calibration set gives no whole batch:
            # a clear error.
            r = moss(a, "compile", model, "--input-shape", shape_of(x, len(x)), "--quantize", "int8",
                     "--calibration", calib, "-o", os.path.join(work, "big.moss"), "-q")
            check(r.returncode == 1 and "fewer than the 450 rows" in r.stderr,
                  "%s: calibration smaller than one batch is refused" % m)
            # Independent count: `moss run` per batch, numpy's argmax.
            right = 0
            for s in range(0, len(x), BATCH):
                chunk = np.zeros((BATCH,) + x.shape[1:], np.float32)
                n = min(BATCH, len(x) - s)
                chunk[:n] = x[s:s + n]
                cp = os.path.join(work, "chunk.npy")
                np.save(cp, chunk)
                rr = moss(a, "run", art, cp, "-o", work)
                if rr.returncode:
                    print(rr.stderr)
                    break
                logits = np.load(os.path.join(work, "output_0.npy"))
                right += int((logits[:n].argmax(1) == y[s:s + n]).sum())
            check(right == q_right, "%s: numpy's count over `moss run` (%d) equals --eval's (%d)"
                  % (m, right, q_right))
            r = moss(a, "eval", art, x_path, y_path)
            check(r.returncode == 0 and ("(%d/%d)" % (q_right, len(y))) in r.stdout,
                  "%s: moss eval agrees: %s" % (m, r.stdout.strip()))

            r = moss(a, "compile", model, "--input-shape", shape_of(x, BATCH), "--quantize", "int8",
                     "--calibration", calib, "-o", art, "--explain")
            mo = re.search(r"# quantized: (\d+) nodes in integer arithmetic, (\d+) float nodes in "
                           r"quantized regions", r.stdout)
            check(r.returncode == 0 and mo is not None,
                  "%s: --explain prints the qdq summary (absent until the qdq pass lands)" % m)
            if mo:
                check(int(mo.group(1)) > 0 and int(mo.group(2)) == 0,
                      "%s: %s nodes integer, %s float in quantized regions" % (m, mo.group(1), mo.group(2)))

        cnn = os.path.join(DATA, "cnn.onnx")
        shp = "input=%dx1x8x8" % BATCH
        calib = calib_file("cnn")
        art = os.path.join(work, "keep.moss")
        r = moss(a, "compile", cnn, "--input-shape", shp, "--quantize", "int8", "--calibration", calib,
                 "--keep-float", "/fc/Gemm", "-o", art)
        check(r.returncode == 0 and "2 layers int8 (per-channel weights), 1 kept float" in r.stderr,
              "--keep-float /fc/Gemm leaves one layer float")
        r = moss(a, "compile", cnn, "--input-shape", shp, "--quantize", "int8", "-o", art)
        check(r.returncode == 2 and "--calibration" in r.stderr, "--quantize without --calibration")
        r = moss(a, "compile", cnn, "--input-shape", shp, "--quantize", "int4", "--calibration", calib,
                 "-o", art)
        check(r.returncode == 2 and "int8" in r.stderr, "--quantize int4 is refused")
        r = moss(a, "compile", cnn, "--input-shape", shp, "--quantize", "int8", "--calibration",
                 calib_file("mlp"), "-o", art)
        check(r.returncode == 1 and "calibration data" in r.stderr and "float32[256,64]" in r.stderr,
              "calibration data of the wrong shape: %s" % r.stderr.strip())
        r = moss(a, "compile", cnn, "--input-shape", shp, "--quantize", "int8", "--calibration", calib,
                 "--keep-float", "/fc/Gemm,nope", "-o", art)
        check(r.returncode == 1 and "'nope'" in r.stderr,
              "unknown --keep-float name: %s" % r.stderr.strip())
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
