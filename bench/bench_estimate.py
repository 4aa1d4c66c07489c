#!/usr/bin/env python3
"""The cost model's time estimate for `host` against the time measured on
this machine, per model and per kind of layer: the models of
bench_backends.py (the digits MLP and CNN, the wide MLP, a 3x3 and a 1x1
convolution layer, ResNet-18), each compiled with `moss compile --target
host --profile`, which runs the bundle here (100 runs, each step timed
through libmossrt) and writes the measurement beside the estimate in the
JSON report. Prints the README's table: estimate, measurement (median of
the runs), estimate / measurement, and whether it is within 30 %; then the
same ratio per op type over all models. Nothing here is a test: timings
are noisy on a shared machine.

  /usr/bin/python3 bench/bench_estimate.py --moss build/moss
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_backends import conv_model, wide_mlp  # noqa: E402


def profile(moss, model, shape, work, tag):
    rep = os.path.join(work, tag + ".json")
    cmd = [moss, "compile", model, "--target", "host", "-q", "--profile", "--report", rep,
           "-o", os.path.join(work, tag + ".moss")]
    if shape:
        cmd += ["--input-shape", "input=" + shape]
    subprocess.run(cmd, check=True)
    with open(rep) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", default=os.path.join(ROOT, "build", "moss"))
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="moss-estimate-")
    d = os.path.join(ROOT, "tests", "e2e", "digits")
    models = [("digits MLP", os.path.join(d, "mlp.onnx"), "1x64"),
              ("digits CNN", os.path.join(d, "cnn.onnx"), "1x1x8x8")]
    p = os.path.join(work, "wide.onnx")
    wide_mlp(p)
    models.append(("MLP 256-4096-256", p, None))
    for name, cin, cout, k, hw in (("conv 3x3 64->64 28x28", 64, 64, 3, 28),
                                   ("conv 1x1 128->128 14x14", 128, 128, 1, 14)):
        p = os.path.join(work, name.split()[1] + ".onnx")
        conv_model(p, cin, cout, k, hw)
        models.append((name, p, None))
    p = os.path.join(work, "resnet18.onnx")
    subprocess.run([sys.executable, os.path.join(HERE, "make_resnet18.py"), p], check=True,
                   capture_output=True)
    models.append(("ResNet-18", p, None))
    per_op = collections.defaultdict(lambda: [0.0, 0.0])
    print("| model | estimated | measured | estimated / measured | within 30 % |")
    print("|---|---|---|---|---|")
    worst = 0.0
    for i, (name, path, shape) in enumerate(models):
        r = profile(a.moss, path, shape, work, "m%d" % i)
        est = r["total"]["time_s"]["value"]
        meas = r["measured"]["time_s"]["value"]
        q = est / meas
        worst = max(worst, abs(q - 1))
        print("| %s | %.2f us | %.2f us | %.2f | %s |" % (name, est * 1e6, meas * 1e6, q,
                                                         "yes" if abs(q - 1) <= 0.3 else "no"))
        for n in r["nodes"]:
            e, m = n["time_s"]["value"], n["measured_time_s"]["value"]
            if e is not None and m is not None:
                per_op[n["op_type"]][0] += e
                per_op[n["op_type"]][1] += m
    print()
    print("| op type | estimated | measured | estimated / measured |")
    print("|---|---|---|---|")
    for op, (e, m) in sorted(per_op.items(), key=lambda kv: -kv[1][1]):
        print("| %s | %.2f us | %.2f us | %.2f |" % (op, e * 1e6, m * 1e6, e / m if m else float("nan")))
    print("\nworst |estimate / measurement - 1|: %.0f %%" % (worst * 100))
    return 0


if __name__ == "__main__":
    sys.exit(main())
