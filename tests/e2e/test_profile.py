#!/usr/bin/python3
"""test_profile.py - measured beside estimated (issue 12, part 2).

- `moss bench --profile` on the digits CNN compiled for host: one step per
  layer, named after the model's own nodes, in the model's order, each
  with a positive median; the whole-run line and the energy-counter line.
- `moss compile --profile --report`: every layer's measured time labelled
  measured:clock; the platform energy from measured time recomputed here
  from host.xml's own power figures (active W x busy + idle W x the rest);
  the CSV's total row carries the measured run time; without an energy
  counter the counter figure is null with the reason.
- `moss run --profile` writes the same outputs as `moss run`.
- A plugin target (the elementwise example): a blob that runs several
  layers is one step, and the table lists its layers under it.
- Clear errors: --profile with --emit c, on an --emit c folder, for a
  target this machine cannot run; a bundle whose report is forged (not
  JSON, or JSON of another shape) still profiles, by steps only.

  test_profile.py --moss build/moss --plugin-target build/plugins/elementwise/elementwise.xml

Run by Debian's /usr/bin/python3 (numpy, onnx)."""
import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from test_forged_bundle import fix_crcs, payload  # noqa: E402
from test_plugin import make_model  # noqa: E402

CNN = os.path.join(HERE, "digits", "cnn.onnx")
X = os.path.join(HERE, "digits", "x_test_cnn.npy")
DIAG = re.compile(r"^(\S.*?): (invalid-model|unsupported|target|io|internal): \S.*$", re.M)
ROW = re.compile(r"^\s+(\d+)\s+(\S+)\s+([0-9.]+) us\s+(?:([0-9.]+) us\s+|-\s+)?(?:[0-9.]+x\s+)?(.*)$")
problems = []


def check(cond, what):
    if not cond:
        problems.append(what)
        print("FAIL:", what)


def run(cmd, ok=True):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if ok and p.returncode != 0:
        print("FAIL: %s exited %d:\n%s" % (" ".join(cmd), p.returncode, p.stderr[-2000:]))
        sys.exit(1)
    return p


def table(out):
    """The per-step rows of the profile table: (step, device, measured us, layers)."""
    rows = []
    for line in out.splitlines():
        m = ROW.match(line)
        if m and not m.group(5).startswith("transfer from "):
            rows.append([int(m.group(1)), m.group(2), float(m.group(3)), [m.group(5)]])
        elif line.startswith("  \u2026 also ") and rows:
            rows[-1][3].append(line[len("  \u2026 also "):])
    return rows


def host_power():
    dev = ET.parse(os.path.join(ROOT, "targets", "host.xml")).getroot().find("device")
    p = dev.find("energy").find("power")
    return float(p.get("active-w")), float(p.get("idle-w"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    ap.add_argument("--plugin-target", required=True)
    a = ap.parse_args()
    w = tempfile.mkdtemp(prefix="moss-profile-")
    cnn = os.path.join(w, "cnn.moss")
    rep = os.path.join(w, "cnn.json")
    run([a.moss, "compile", CNN, "--input-shape", "input=1x1x8x8", "-q", "-o", cnn,
         "--profile", "--report", rep])
    run([a.moss, "compile", CNN, "--input-shape", "input=1x1x8x8", "-q", "-o", cnn + "2",
         "--profile", "--report", os.path.join(w, "cnn.csv")])

    # bench --profile: one step per layer, named after the model's nodes, in order.
    onnx_names = [n.name for n in onnx.load(CNN).graph.node]
    out = run([a.moss, "bench", cnn, "--profile", "--iterations", "300"]).stdout
    rows = table(out)
    names = [r[3][0].rsplit(" (", 1)[0] for r in rows]
    check(len(rows) >= 3, "bench --profile printed %d step rows:\n%s" % (len(rows), out))
    check(all(n in onnx_names for n in names), "layers %s are not the model's nodes" % names)
    check([onnx_names.index(n) for n in names if n in onnx_names] ==
          sorted(onnx_names.index(n) for n in names if n in onnx_names),
          "layers out of the model's order: %s" % names)
    check(all(r[2] > 0 for r in rows), "a step with no measured time: %s" % rows)
    check(all(len(r[3]) == 1 for r in rows), "a CPU step runs one layer: %s" % rows)
    check(re.search(r"whole run: median [0-9.]+ us", out) is not None, "no whole-run line")
    check(re.search(r"energy counter: ", out) is not None, "no energy-counter line")

    # --profile-csv: the same table, one row per layer.
    pcsv = os.path.join(w, "profile.csv")
    out = run([a.moss, "bench", cnn, "--profile-csv", pcsv, "--iterations", "50"]).stdout
    with open(pcsv) as f:
        prow = list(csv.DictReader(f))
    check([r["layer"] for r in prow] == [r[3][0].rsplit(" (", 1)[0] for r in table(out)] and
          all(float(r["step_measured_s"]) > 0 and r["layers_in_step"] == "1" and
              r["device"] == "cpu" for r in prow), "profile CSV %r" % prow)
    before = open(cnn, "rb").read()
    p = run([a.moss, "bench", cnn, "--profile-csv", cnn, "--iterations", "5"], ok=False)
    check(p.returncode == 1 and DIAG.search(p.stderr) and open(cnn, "rb").read() == before,
          "--profile-csv onto the bundle: exit %d, %r" % (p.returncode, p.stderr))

    # compile --profile: measured beside estimated, platform energy recomputed from host.xml.
    r = json.load(open(rep))
    meas = r["measured"]
    check(meas is not None and meas["runs"] == 100, "report's measured block: %r" % meas)
    busy = 0.0
    for n in r["nodes"]:
        f = n.get("measured_time_s")
        check(f is not None and f["label"] == "measured:clock" and (f["value"] or 0) > 0,
              "node %s measured_time_s %r" % (n["name"], f))
        busy += f["value"] or 0
    total = meas["time_s"]["value"]
    active, idle = host_power()
    want = active * busy + idle * max(total - busy, 0)
    got = meas["platform_j"]["value"]
    check(meas["platform_j"]["label"] == "measured:clock", "platform_j label %r" % meas["platform_j"])
    check(abs(got - want) <= 1e-9 * want, "platform energy from measured time %r, by hand %r" %
          (got, want))
    e = meas["energy_j"]
    if os.path.exists("/sys/class/powercap") or os.path.exists("/dev/nvidiactl"):
        check(e["label"] in ("measured:rapl", "measured:nvml", "not-modeled"), "energy_j %r" % e)
    else:
        check(e["value"] is None and e["label"] == "not-modeled" and "RAPL" in e["source"],
              "no counter here, yet energy_j is %r" % e)
    with open(os.path.join(w, "cnn.csv")) as f:
        rows_csv = list(csv.DictReader(f))
    tot = [x for x in rows_csv if x["row"] == "total"]
    check(len(tot) == 1 and float(tot[0]["measured_duration"]) > 0 and
          tot[0]["measured_label"] == "measured:clock", "CSV total row %r" % tot[:1])

    # run --profile writes what run writes.
    x1 = os.path.join(w, "x1.npy")
    np.save(x1, np.load(X)[:1])
    run([a.moss, "run", cnn, x1, "-o", os.path.join(w, "plain")])
    p = run([a.moss, "run", cnn, x1, "--profile", "-o", os.path.join(w, "prof")])
    check(table(p.stdout) != [], "run --profile printed no table")
    check(np.array_equal(np.load(os.path.join(w, "plain", "output_0.npy")),
                         np.load(os.path.join(w, "prof", "output_0.npy"))),
          "run --profile changed the output")

    # A plugin blob runs several layers in one step.
    model = os.path.join(w, "ew.onnx")
    make_model(model)
    ew = os.path.join(w, "ew.moss")
    run([a.moss, "compile", model, "--target", a.plugin_target, "-q", "-o", ew, "--profile",
         "--report", os.path.join(w, "ew.json")])
    xs = [os.path.join(w, n + ".npy") for n in ("x", "y")]
    for i, f in enumerate(xs):
        np.save(f, np.random.default_rng(i).standard_normal((2, 8)).astype(np.float32))
    out = run([a.moss, "run", ew] + xs + ["--profile", "-o", os.path.join(w, "ewout")]).stdout
    groups = [(d, [l.rsplit(" (", 1)[0] for l in layers]) for _, d, _, layers in table(out)]
    check(("ew", ["add", "relu"]) in groups and ("cpu", ["softmax"]) in groups and
          any(d == "ew" and set(l) >= {"mul", "sigmoid"} for d, l in groups),
          "plugin steps and their layers: %r\n%s" % (groups, out))
    er = json.load(open(os.path.join(w, "ew.json")))
    for n in er["nodes"]:
        f = n["measured_time_s"]
        check(f["label"] == "measured:clock" and (n["device"] == "cpu" or "split" in f["source"]),
              "plugin node %s: %r" % (n["name"], f))

    # Past 2,048 CPU layers, runs of consecutive layers share a step: every
    # layer is still listed once, in order, under the step that runs it.
    # Each elementwise node has a Softmax on either side, so that none of
    # them joins another in a MossFused chain (the chains pass).
    n = 3000
    ops = ["Relu", "Softmax", "Neg", "Softmax", "Abs", "Softmax"]
    nodes = [onnx.helper.make_node(ops[i % 6], ["x" if i == 0 else "t%d" % (i - 1)],
                                   ["t%d" % i if i < n - 1 else "y"], name="n%d" % i)
             for i in range(n)]
    vi = onnx.helper.make_tensor_value_info
    g = onnx.helper.make_graph(nodes, "chain", [vi("x", onnx.TensorProto.FLOAT, [1, 16])],
                               [vi("y", onnx.TensorProto.FLOAT, [1, 16])])
    chain = os.path.join(w, "chain.onnx")
    onnx.save(onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 13)]), chain)
    run([a.moss, "compile", chain, "-q", "-o", os.path.join(w, "chain.moss")])
    out = run([a.moss, "bench", os.path.join(w, "chain.moss"), "--profile", "--iterations",
               "3"]).stdout
    rows = table(out)
    listed = [l.rsplit(" (", 1)[0] for r in rows for l in r[3]]
    check(len(rows) <= 2048 and listed == ["n%d" % i for i in range(n)],
          "a %d-node chain: %d steps, %d layers listed (%s ...)" % (n, len(rows), len(listed),
                                                                 listed[:3]))

    # Clear errors.
    p = run([a.moss, "compile", CNN, "--input-shape", "input=1x1x8x8", "--emit", "c", "-o",
             os.path.join(w, "c.d"), "--profile"], ok=False)
    check(p.returncode == 1 and DIAG.search(p.stderr) and "--profile" in p.stderr,
          "--emit c --profile: exit %d, %r" % (p.returncode, p.stderr))
    run([a.moss, "compile", CNN, "--input-shape", "input=1x1x8x8", "--emit", "c", "-q", "-o",
         os.path.join(w, "c.d")])
    p = run([a.moss, "bench", os.path.join(w, "c.d"), "--profile"], ok=False)
    check(p.returncode == 1 and DIAG.search(p.stderr) and "bundle" in p.stderr,
          "bench --profile on a C folder: exit %d, %r" % (p.returncode, p.stderr))
    p = run([a.moss, "compile", CNN, "--input-shape", "input=1x1x8x8", "--target", "rpi4", "-o",
             os.path.join(w, "rpi4.moss"), "--profile"], ok=False)
    check(p.returncode == 1 and DIAG.search(p.stderr) and "this machine" in p.stderr,
          "--profile for rpi4: exit %d, %r" % (p.returncode, p.stderr))

    # A forged report: the plan is still profiled, by steps.
    for forged in (b"not json at all", b'{"nodes": 5}', b'{"nodes": [{"name": 1}]}'):
        b = bytearray(open(cnn, "rb").read())
        off, size = payload(b, 7)  # REPORT
        b[off:off + size] = forged + b" " * (size - 1 - len(forged)) + b"\0"
        fix_crcs(b)
        f = os.path.join(w, "forged.moss")
        open(f, "wb").write(b)
        p = run([a.moss, "bench", f, "--profile", "--iterations", "20"], ok=False)
        check(p.returncode == 0 and "steps only" in p.stdout and len(table(p.stdout)) >= 3,
              "forged report %r: exit %d\n%s%s" % (forged, p.returncode, p.stdout, p.stderr))

    if problems:
        print("%d problem(s)" % len(problems))
        return 1
    print("ok: profile tables, measured reports, plugin steps, errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
