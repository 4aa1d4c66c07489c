#!/usr/bin/python3
"""`moss compile --budget DROP --eval X Y` and `--plan FILE` (docs/budget.md)
on the digits MLP and CNN, for host, cortex-m7 and rpi4 (rpi4 and
cortex-m7 as standalone C, which `moss run` builds and runs here). Checks:
  - on cortex-m7 the CNN's answer (a sparse int8 Conv) costs less energy
    than uniform int8, and so does its answer for rpi4's bundle (an int8
    Conv pruned by words of four channels, on NEON's tile), and the MLP's
    for rpi4's bundle (an int8 Gemm's input columns pruned by columns-act,
    run by columns in NEON's vectors);
  - the chosen artifact's top-1 accuracy on X, recomputed here from
    `moss run`'s logits (numpy argmax against y_test.npy), is at most the
    budget below torch's fp32 accuracy (accuracy.txt), and equals the
    accuracy the report gives for it;
  - its energy, from its own cost report (`--plan ... --report`), is what
    the search reports, and no higher than fp32 dense's nor uniform int8's
    (compiled here with --quantize int8) where that meets the budget;
  - `met` is true exactly when a point cheaper than fp32 dense was within
    the budget; with no int8 to try (no --calibration) the CNN on
    cortex-m7 cannot meet 0.5%: met false, the artifact is fp32 dense and
    the closest point is reported with its drop;
  - --plan replays the plan to byte-identical files;
  - on npu-systolic-32x32 (the plugin's bundles, run here on its
    simulator; skipped when the plugin is not built) the same checks, with
    the accuracy measured on the target's own bundle;
  - rpi4's bundle (AArch64) does not run here: the search falls back to
    the host bundle and says so;
  - --budget rel-l2:0.02 without labels (CNN, cortex-m7): the chosen
    artifact's relative L2 error of output 0, recomputed from moss run's
    outputs of it and of the fp32 model, is within 0.02 and is the
    report's, at no more energy than uniform int8;
  - --budget-report FILE.html: the page parses (html.parser), draws one
    point per configuration measured, marks the chosen one, fp32 dense and
    uniform int8, and names every layer in its table;
  - --max-evals below every option's count: the screened search
    (docs/budget.md), with the same checks; with --mnv2, MobileNetV2
    (scripts/make_digits_mobilenetv2.py) on cortex-m7 in 40 evaluations,
    cheaper than uniform int8;
  - --plan with --depfile names the plan among the files read, and
    --cache-key follows the plan's bytes, not its path;
  - the per-layer --prune form zeroes floor(R * n) of the named layer only;
  - with --fp16, fp16 where the target computes in it (rpi5: Armv8.2 +fullfp16): with
    --budget rel-l2:0.005 on the MLP, which uniform int8 misses, the answer
    keeps int8 layers and computes one in float16, at less energy than fp32
    dense; its rpi5 bundle, run here under qemu-aarch64 through libmossrt
    built for AArch64, gives a relative L2 error against numpy's float64
    forward pass of the ONNX weights within the budget and equal to the
    report's (so the search measured the target's float16 arithmetic); the
    plan replays it byte for byte; with --max-evals 20 the screened search
    ends within them; rpi4 (no float16 arithmetic) gets no fp16 point;
  - bad flags (no --eval, no labels for a top-1 budget, bad syntax,
    --budget with --quantize or --float16, a plan naming an unknown layer,
    an int8 plan without --calibration, a sparse fp16 plan line, --float16
    naming a missing node or one that is not a layer)
    fail with a clear message.
  test_budget.py --moss build/moss
"""
import argparse
import concurrent.futures as cf
import filecmp
import glob
import html.parser
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "digits")
BUDGET = 0.005
failures = []


def check(cond, what):
    print("%s %s" % ("ok  " if cond else "FAIL", what))
    if not cond:
        failures.append(what)


def moss(a, *args):
    return subprocess.run([a.moss] + list(args), capture_output=True, text=True)


def torch_accuracy():
    acc = {}
    for name in ("accuracy.txt", "mnv2_accuracy.txt"):
        with open(os.path.join(DATA, name)) as f:
            for line in f:
                k, v = line.split()
                acc[k] = float(v)
    return acc


def xname(m):
    """The inputs' name: MobileNetV2 reads the CNN's 8x8 images."""
    return "cnn" if m == "mnv2" else m


def run_accuracy(a, artifact, m, work):
    """Top-1 accuracy of |artifact| on the test set, from moss run's logits."""
    out = os.path.join(work, "run-" + os.path.basename(artifact))
    os.makedirs(out, exist_ok=True)
    r = moss(a, "run", artifact, os.path.join(DATA, "x_test_%s.npy" % xname(m)), "-o", out)
    if r.returncode:
        print(r.stderr)
        return None
    logits = np.load(os.path.join(out, "output_0.npy"))
    y = np.load(os.path.join(DATA, "y_test.npy"))
    return float(np.mean(np.argmax(logits.reshape(len(y), -1), axis=1) == y))


def platform_j(path):
    with open(path) as f:
        return json.load(f)["total"]["platform_j"]["value"]


def same_files(p, q):
    if os.path.isdir(p):
        names = sorted(os.listdir(p))
        return names == sorted(os.listdir(q)) and all(
            filecmp.cmp(os.path.join(p, n), os.path.join(q, n), shallow=False) for n in names)
    return filecmp.cmp(p, q, shallow=False)


def search(a, m, target, work, label=None, bundle=False, extra=(), nlayers=3):
    """|label|: the target's name in messages (|target| may be a file);
    |bundle|: the target's artifact is a bundle that runs here; |extra|:
    more flags of the search; |nlayers|: the model's Conv/Gemm layers."""
    label = label or target
    x = os.path.join(DATA, "x_test_%s.npy" % xname(m))
    y = os.path.join(DATA, "y_test.npy")
    cal = os.path.join(DATA, "x_calib_%s.npy" % xname(m))
    emit = ["--emit", "c"] if target == "rpi4" else []  # runnable here
    out = os.path.join(work, "%s-%s%s" % (m, label, ".moss" if target == "host" or bundle else ".d"))
    r = moss(a, "compile", os.path.join(DATA, m + ".onnx"), "--target", target, *emit, "-o", out,
             "-q", "--budget", "0.5%", "--calibration", cal, "--eval", x, y, "--budget-report",
             out + ".html", *extra)
    check(r.returncode == 0, "%s %s: --budget 0.5%% compiles (%s)" % (m, label, r.stderr.strip()[-300:]))
    if r.returncode:
        return
    print(r.stdout, end="")
    rep = json.load(open(out + ".budget.json"))
    check_html(out + ".html", rep, "%s %s" % (m, label))
    # The artifact's own energy, and the plan replayed.
    again = out + ".again"
    r2 = moss(a, "compile", os.path.join(DATA, m + ".onnx"), "--target", target, *emit, "-o",
              again, "-q", "--plan", out + ".plan", "--calibration", cal, "--report",
              again + ".json")
    check(r2.returncode == 0 and same_files(out, again),
          "%s %s: --plan replays to byte-identical output (%s)" % (m, label, r2.stderr.strip()))
    if r2.returncode:
        return
    # moss run builds a C artifact in its folder: only after the comparison.
    fp32_acc = torch_accuracy()[m]
    acc = run_accuracy(a, out, m, work)
    check(acc is not None and acc >= fp32_acc - BUDGET - 1e-9,
          "%s %s: accuracy %s recomputed from moss run is within 0.5%% of torch's %.6f"
          % (m, label, acc, fp32_acc))
    check(acc is not None and abs(acc - rep["chosen"]["accuracy"]) < 1e-6,
          "%s %s: the report's accuracy %.6f is moss run's" % (m, label, rep["chosen"]["accuracy"]))
    check(abs(rep["fp32_dense"]["accuracy"] - fp32_acc) < 1e-6,
          "%s %s: the search's fp32 dense accuracy is torch's" % (m, label))
    e = platform_j(again + ".json")
    check(abs(e - rep["chosen"]["energy_j"]) <= 1e-6 * e,
          "%s %s: the artifact's energy %.4g J is the report's" % (m, label, e))
    check(e <= rep["fp32_dense"]["energy_j"] * (1 + 1e-6), "%s %s: energy no higher than fp32 dense"
          % (m, label))
    u = os.path.join(work, "%s-%s-int8%s" % (m, label, ".moss" if bundle else ""))
    r3 = moss(a, "compile", os.path.join(DATA, m + ".onnx"), "--target", target, *emit, "-o", u,
              "-q", "--quantize", "int8", "--calibration", cal, "--report", u + ".json")
    check(r3.returncode == 0, "%s %s: uniform int8 compiles" % (m, label))
    if r3.returncode == 0:
        ue, ua = platform_j(u + ".json"), run_accuracy(a, u, m, work)
        if ua is not None and ua >= fp32_acc - BUDGET - 1e-9:
            check(e <= ue * (1 + 1e-6), "%s %s: energy %.4g J no higher than uniform int8's %.4g J "
                  "(which meets the budget)" % (m, label, e, ue))
    with open(out + ".plan") as f:
        plan = [" ".join(l.split()[:2]) for l in f.read().splitlines()[2:]]
    check(plan == rep["chosen"]["config"], "%s %s: the plan is the chosen configuration %s"
          % (m, label, plan))
    cheaper = [p for p in rep["points"] if p["within_budget"] and p["energy_j"] is not None
               and p["energy_j"] < rep["fp32_dense"]["energy_j"]]
    check(rep["met"] == bool(cheaper), "%s %s: met is %s as the points say" % (m, label, rep["met"]))
    check(len(rep["layers"]) == nlayers and all("accuracy_cost_alone" in l for l in rep["layers"]),
          "%s %s: the report has the %d layers with their accuracy cost" % (m, label, nlayers))
    check(rep["evaluations"] == len(rep["points"]) <= rep["max_evals"],
          "%s %s: %d evaluations, one a point, at most --max-evals" % (m, label, rep["evaluations"]))
    ui = rep["uniform_int8"]
    base = "uniform int8" if ui and ui["within_budget"] and ui["energy_j"] < rep["fp32_dense"]["energy_j"] \
        else "fp32 dense"
    check(rep["base"] == base, "%s %s: the base is %s (%s)" % (m, label, base, rep["base"]))
    where = "host" if target == "host" else "target" if bundle else "host bundle"
    check(rep["accuracy_measured_on"] == where, "%s %s: accuracy measured on the %s (%s)"
          % (m, label, where, rep["accuracy_measured_on"]))
    return rep


class Circles(html.parser.HTMLParser):
    """The page's points: each <circle> with its class and data-point."""
    def __init__(self):
        super().__init__()
        self.points = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "circle" and "pt" in attrs.get("class", "").split():
            self.points.append((int(attrs["data-point"]), attrs["class"].split()))


def check_html(path, rep, what):
    """The --budget-report FILE.html page: it parses, has one point per
    configuration tried that was measured, the chosen one marked (and fp32
    dense, uniform int8), and the per-layer table names every layer."""
    try:
        text = open(path, encoding="utf-8").read()
        c = Circles()
        c.feed(text)
        c.close()
    except (OSError, ValueError) as e:
        check(False, "%s: the HTML report parses (%s)" % (what, e))
        return
    measured = [i for i, p in enumerate(rep["points"]) if p["energy_j"] is not None]
    check(sorted(i for i, _ in c.points) == measured,
          "%s: the HTML draws one point per configuration measured (%d)" % (what, len(measured)))
    chosen = [i for i, cls in c.points if "chosen" in cls]
    want = [i for i, p in enumerate(rep["points"])
            if p["what"] == rep["chosen"]["what"] and p["config"] == rep["chosen"]["config"]]
    check(len(chosen) == 1 and chosen[0] in want, "%s: the chosen point is marked (%s)"
          % (what, chosen))
    check([i for i, cls in c.points if "fp32" in cls] == [0] and
          (rep["uniform_int8"] is None or [i for i, cls in c.points if "int8" in cls] == [1]),
          "%s: fp32 dense and uniform int8 are marked" % what)
    check(all(l["node"] in text.replace("<wbr/>", "") for l in rep["layers"]),
          "%s: the HTML's layer table names every layer" % what)


def run_output(a, artifact, x, work):
    """Output 0 of |artifact| on |x|, from moss run."""
    out = os.path.join(work, "run-" + os.path.basename(artifact))
    os.makedirs(out, exist_ok=True)
    r = moss(a, "run", artifact, x, "-o", out)
    if r.returncode:
        print(r.stderr)
        return None
    return np.load(os.path.join(out, "output_0.npy")).astype(np.float64)


def rel_l2(a, work):
    """--budget rel-l2:0.02 on the CNN for cortex-m7 (C, run here), X only:
    the chosen artifact's relative L2 error of output 0, recomputed from
    moss run's outputs of it and of the fp32 model compiled for the same
    target, is within 0.02 and is the report's; its energy is no higher than
    uniform int8's, which is within the budget too."""
    x = os.path.join(DATA, "x_test_cnn.npy")
    cal = os.path.join(DATA, "x_calib_cnn.npy")
    cnn = os.path.join(DATA, "cnn.onnx")
    out = os.path.join(work, "rel.d")
    r = moss(a, "compile", cnn, "--target", "cortex-m7", "-o", out, "-q", "--budget", "rel-l2:0.02",
             "--calibration", cal, "--eval", x, "--budget-report", out + ".html")
    check(r.returncode == 0 and "rel-l2" in r.stdout, "rel-l2: the search runs without labels (%s)"
          % (r.stderr.strip()[-300:]))
    if r.returncode:
        return
    print(r.stdout, end="")
    rep = json.load(open(out + ".budget.json"))
    check(rep["metric"] == "rel-l2" and "rel_l2" in rep["chosen"] and "accuracy" not in rep["chosen"]
          and all("rel_l2_cost_alone" in l for l in rep["layers"]),
          "rel-l2: the report names the metric and gives each point's rel_l2")
    check_html(out + ".html", rep, "rel-l2")
    ref = os.path.join(work, "rel-fp32.d")
    r = moss(a, "compile", cnn, "--target", "cortex-m7", "-o", ref, "-q")
    y0, y = run_output(a, ref, x, work), run_output(a, out, x, work)
    if y0 is None or y is None:
        check(False, "rel-l2: moss run of the fp32 model and of the chosen one")
        return
    err = float(np.linalg.norm(y - y0) / np.linalg.norm(y0))
    check(err <= 0.02, "rel-l2: the chosen artifact's error %.6f from moss run is within 0.02" % err)
    check(abs(err - rep["chosen"]["rel_l2"]) <= 1e-4 + 1e-3 * err,
          "rel-l2: the report's %.6f is moss run's %.6f" % (rep["chosen"]["rel_l2"], err))
    check(any(l["precision"] == "int8" for l in rep["layers"]), "rel-l2: int8 layers chosen on cortex-m7")
    u = rep["uniform_int8"]
    check(u and u["within_budget"] and rep["chosen"]["energy_j"] <= u["energy_j"] * (1 + 1e-9),
          "rel-l2: energy %.4g J no higher than uniform int8's (within the budget)"
          % rep["chosen"]["energy_j"])


def plan_inputs(a, work):
    """--plan with --depfile and --cache-key: the plan is one of the files
    read; the key follows its bytes, not its path."""
    cnn, cal = os.path.join(DATA, "cnn.onnx"), os.path.join(DATA, "x_calib_cnn.npy")
    plan = os.path.join(work, "keyed.plan")
    with open(plan, "w") as f:
        f.write("moss-plan 1\nint8 dense /features/features.0/Conv\n"
                "int8 magnitude:0.3 /features/features.4/Conv\nint8 dense /fc/Gemm\n")
    out, dep = os.path.join(work, "keyed.d"), os.path.join(work, "keyed.dep")
    r = moss(a, "compile", cnn, "--target", "cortex-m7", "--plan", plan, "--calibration", cal, "-o", out,
             "-q", "--depfile", dep)
    text = open(dep).read() if r.returncode == 0 and os.path.exists(dep) else ""
    check(r.returncode == 0 and all(p in text for p in (plan, cnn, cal)),
          "--plan --depfile: the rule names the plan, the model and the calibration (%s)"
          % (r.stderr.strip() or text[:300]))

    def key(path):
        k = moss(a, "compile", cnn, "--target", "cortex-m7", "--plan", path, "--calibration", cal, "-o",
                 out, "--cache-key")
        return k.stdout.strip() if k.returncode == 0 else "failed: " + k.stderr.strip()
    copy = os.path.join(work, "copy.plan")
    shutil.copy(plan, copy)
    with open(os.path.join(work, "other.plan"), "w") as f:
        f.write(open(plan).read().replace("magnitude:0.3", "magnitude:0.5"))
    k1, k2, k3 = key(plan), key(copy), key(os.path.join(work, "other.plan"))
    check(len(k1) == 64 and k1 == k2 and k3 != k1 and len(k3) == 64,
          "--plan --cache-key: one key for the same plan bytes at another path, another for "
          "another plan (%s %s %s)" % (k1, k2, k3))


def aarch64_runner(work):
    """libmossrt and tests/e2e/native/bundle_runner.c built for AArch64."""
    root = os.path.dirname(os.path.dirname(HERE))
    runner = os.path.join(work, "runner-aarch64")
    rt = sorted(glob.glob(os.path.join(root, "runtime", "src", "*", "*.c")))
    r = subprocess.run(["aarch64-linux-gnu-gcc", "-O1", "-std=gnu11", "-I" + os.path.join(root, "runtime", "include"),
                        "-I" + os.path.join(root, "plugins", "include")] + rt +
                       [os.path.join(HERE, "native", "bundle_runner.c"), "-ldl", "-lm", "-o", runner],
                       capture_output=True, text=True)
    check(r.returncode == 0, "libmossrt builds for AArch64 (%s)" % r.stderr.strip()[-300:])
    return runner if r.returncode == 0 else None


def fp16_rpi5(a, work):
    """fp16 on rpi5: see the module's docstring."""
    import onnx
    from onnx import numpy_helper
    mlp, x = os.path.join(DATA, "mlp.onnx"), os.path.join(DATA, "x_test_mlp.npy")
    out, plan = os.path.join(work, "fp16-rpi5.moss"), os.path.join(work, "fp16-rpi5.plan")
    r = moss(a, "compile", mlp, "--target", "rpi5", "-o", out, "-q", "--budget", "rel-l2:0.005",
             "--calibration", os.path.join(DATA, "x_calib_mlp.npy"), "--eval", x, "--plan-out", plan)
    check(r.returncode == 0, "fp16 rpi5: the search runs (%s)" % r.stderr.strip()[-300:])
    if r.returncode:
        return
    print(r.stdout, end="")
    rep = json.load(open(out + ".budget.json"))
    precs = [l["precision"] for l in rep["layers"]]
    u, f32 = rep["uniform_int8"], rep["fp32_dense"]
    check(u and not u["within_budget"] and "fp16" in precs and "int8" in precs
          and rep["chosen"]["energy_j"] < f32["energy_j"],
          "fp16 rpi5: uniform int8 misses rel-l2 0.005; the answer mixes int8 and fp16 layers %s, "
          "at %.4g J below fp32 dense's %.4g J" % (precs, rep["chosen"]["energy_j"], f32["energy_j"]))
    runner = aarch64_runner(work)
    if runner is None:
        return
    # numpy's forward pass of the ONNX weights, in float64
    w = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in onnx.load(mlp).graph.initializer}
    xs = np.load(x).astype(np.float32)
    ref = xs.astype(np.float64)
    for i in (0, 2, 4):
        ref = ref @ w["net.%d.weight" % i].T + w["net.%d.bias" % i]
        ref = np.maximum(ref, 0) if i < 4 else ref

    def one(i):
        pin, pout = os.path.join(work, "q%d.in" % i), os.path.join(work, "q%d.out" % i)
        xs[i:i + 1].tofile(pin)
        p = subprocess.run(["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", runner, out, pin, "--", pout],
                           capture_output=True, text=True)
        return np.fromfile(pout, dtype=np.float32) if p.returncode == 0 else None
    with cf.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        ys = list(ex.map(one, range(len(xs))))
    if any(y is None for y in ys):
        check(False, "fp16 rpi5: the chosen bundle runs under qemu-aarch64")
        return
    err = float(np.linalg.norm(np.array(ys, np.float64) - ref) / np.linalg.norm(ref))
    check(err <= 0.005 and abs(err - rep["chosen"]["rel_l2"]) <= 1e-4 * err,
          "fp16 rpi5: the bundle's error under qemu-aarch64, %.7f, is within 0.005 and is the "
          "report's %.7f" % (err, rep["chosen"]["rel_l2"]))
    # Screened (too few evaluations for every option): 21 screen compiles
    # with fp16's; it ends when the evaluations run out at the end of a
    # round with layers' ladders left (it once looped there for ever).
    few = os.path.join(work, "fp16-rpi5-few.moss")
    try:
        r = subprocess.run([a.moss, "compile", mlp, "--target", "rpi5", "-o", few, "-q", "--budget",
                            "rel-l2:0.005", "--calibration", os.path.join(DATA, "x_calib_mlp.npy"), "--eval",
                            x, "--max-evals", "20"], capture_output=True, text=True, timeout=300)
        rep = json.load(open(few + ".budget.json")) if r.returncode == 0 else None
    except subprocess.TimeoutExpired:
        rep = None
    check(rep and rep["sensitivity"] == "screened" and rep["screen_compiles"] == 21
          and rep["evaluations"] <= 20 and rep["chosen"]["rel_l2"] <= 0.005,
          "fp16 rpi5 --max-evals 20: screened with 21 screen compiles, ends within 20 evaluations")
    again = os.path.join(work, "fp16-rpi5-plan.moss")
    r = moss(a, "compile", mlp, "--target", "rpi5", "-o", again, "-q", "--plan", plan, "--calibration",
             os.path.join(DATA, "x_calib_mlp.npy"))
    check(r.returncode == 0 and same_files(out, again), "fp16 rpi5: the plan replays the bundle byte for "
          "byte (%s)" % r.stderr.strip()[-200:])


def finish(work):
    shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("all passed")
    return 0


def mobilenet(a, work):
    """The screened search on MobileNetV2 (53 layers): cortex-m7 below
    uniform int8 within 0.5 %, in at most 40 evaluations."""
    rep = search(a, "mnv2", "cortex-m7", work, extra=["--max-evals", "40"], nlayers=53)
    check(rep and rep["sensitivity"] == "screened" and rep["screen_compiles"] == 20,
          "mnv2 cortex-m7: the sensitivity is screened, 20 energy-screen compiles (2 precisions x 10 sparsities)")
    check(rep and rep["uniform_int8"] and rep["uniform_int8"]["within_budget"]
          and rep["chosen"]["energy_j"] < rep["uniform_int8"]["energy_j"],
          "mnv2 cortex-m7: cheaper than uniform int8 (%s against %s J)"
          % (rep and rep["chosen"]["energy_j"], rep and rep["uniform_int8"] and rep["uniform_int8"]["energy_j"]))
    return finish(work)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    ap.add_argument("--mnv2", action="store_true", help="the MobileNetV2 search only")
    ap.add_argument("--fp16", action="store_true", help="fp16 on rpi5 only (its bundles run under qemu-aarch64)")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="moss-test-budget-")
    if a.mnv2:
        return mobilenet(a, work)
    if a.fp16:
        fp16_rpi5(a, work)
        return finish(work)
    chosen, chosen_reports = {}, {}
    for m in ("mlp", "cnn"):
        for t in ("host", "cortex-m7", "rpi4"):
            rep = search(a, m, t, work)
            if rep:
                chosen_reports[(m, t)] = rep
                chosen[(m, t)] = [(l["precision"], l["sparsity"]) for l in rep["layers"]]
    # The npu-systolic plugin's bundles run here, on its simulator: the
    # search measures them themselves.
    npu = os.path.join(os.path.dirname(os.path.abspath(a.moss)), "plugins", "npu-systolic",
                       "npu-systolic-32x32.xml")
    if os.path.exists(npu):
        for m in ("mlp", "cnn"):
            search(a, m, npu, work, label="npu-systolic-32x32", bundle=True)
    else:
        print("skip npu-systolic-32x32: %s not built" % npu)
    rel_l2(a, work)
    plan_inputs(a, work)
    # Too few evaluations for every option of the MLP's layers (2 + 19 x 3):
    # the screened search, within the budget all the same; one screen
    # compile per option (2 precisions x 10 sparsities).
    rep = search(a, "mlp", "cortex-m7", work, label="cortex-m7-screened", extra=["--max-evals", "16"])
    check(rep and rep["sensitivity"] == "screened" and rep["screen_compiles"] == 20
          and rep["evaluations"] <= 16, "mlp cortex-m7 --max-evals 16: screened, at most 16 evaluations")
    # rpi4's bundle is AArch64 code: the search tries it, falls back to the
    # host bundle, and says so; the failed try is not a point.
    out = os.path.join(work, "mlp-rpi4-bundle.moss")
    r = moss(a, "compile", os.path.join(DATA, "mlp.onnx"), "--target", "rpi4", "-o", out, "-q",
             "--budget", "0.5%", "--calibration", os.path.join(DATA, "x_calib_mlp.npy"), "--eval",
             os.path.join(DATA, "x_test_mlp.npy"), os.path.join(DATA, "y_test.npy"))
    rep = json.load(open(out + ".budget.json")) if r.returncode == 0 else None
    check(rep and rep["accuracy_measured_on"] == "host bundle" and "host bundle" in r.stdout
          and [p["what"] for p in rep["points"]].count("fp32 dense") == 1
          and rep["evaluations"] == len(rep["points"])
          and not any("fp16" in p["what"] for p in rep["points"]),
          "mlp rpi4 bundle: measured on the host bundle, fp32 dense once, no fp16 point (no float16 "
          "arithmetic) (%s)" % r.stderr.strip())
    # ... and below uniform int8: the first Gemm's input columns that the
    # calibration data shows (nearly) always 0 (the digits' border pixels) pruned
    # by columns-act, the layer run by columns (48 of 64 kept: three of
    # NEON's 16-byte vectors).
    check(rep and rep["uniform_int8"] and rep["chosen"]["within_budget"]
          and rep["chosen"]["energy_j"] < rep["uniform_int8"]["energy_j"]
          and any(l["sparsity"].startswith("columns-act:") and l["format"] == "columns"
                  for l in rep["layers"]),
          "mlp rpi4 bundle: an int8 Gemm by columns makes it cheaper than uniform int8 (%s)"
          % (rep and [(l["sparsity"], l["format"]) for l in rep["layers"]]))
    # On cortex-m7 the CNN's sparse int8 Conv pays: below uniform int8.
    rep = chosen_reports.get(("cnn", "cortex-m7"))
    check(rep and rep["uniform_int8"] and rep["chosen"]["energy_j"] < rep["uniform_int8"]["energy_j"]
          and any(l["sparsity"] != "dense" for l in rep["layers"]),
          "cnn cortex-m7: a sparse int8 layer makes it cheaper than uniform int8")
    # rpi4's bundle (the LLVM backend's NEON code: the int8 Conv on the
    # tile, rule int8-widened): the CNN's words of four channels pruned on
    # the tile pay, below uniform int8.
    out = os.path.join(work, "cnn-rpi4-bundle.moss")
    r = moss(a, "compile", os.path.join(DATA, "cnn.onnx"), "--target", "rpi4", "-o", out, "-q",
             "--budget", "0.5%", "--calibration", os.path.join(DATA, "x_calib_cnn.npy"), "--eval",
             os.path.join(DATA, "x_test_cnn.npy"), os.path.join(DATA, "y_test.npy"))
    rep = json.load(open(out + ".budget.json")) if r.returncode == 0 else None
    check(rep and rep["uniform_int8"] and rep["chosen"]["within_budget"]
          and rep["chosen"]["energy_j"] < rep["uniform_int8"]["energy_j"]
          and any(l["sparsity"].startswith("channels:") and l["format"] != "dense" for l in rep["layers"]),
          "cnn rpi4 bundle: an int8 Conv pruned by words makes it cheaper than uniform int8 (%s)"
          % (rep and [(l["sparsity"], l["format"]) for l in rep["layers"]]))
    # cortex-m7 prices int8 below fp32: the search must find it.
    for m in ("mlp", "cnn"):
        check(chosen.get((m, "cortex-m7")) and any(p == "int8" for p, _ in chosen[(m, "cortex-m7")]),
              "%s cortex-m7: int8 layers chosen" % m)

    # No int8 to try: nothing cheaper than fp32 dense meets 0.5% on the CNN.
    x = os.path.join(DATA, "x_test_cnn.npy")
    y = os.path.join(DATA, "y_test.npy")
    cnn = os.path.join(DATA, "cnn.onnx")
    out = os.path.join(work, "unmet")
    r = moss(a, "compile", cnn, "--target", "cortex-m7", "-o", out, "-q", "--budget", "0.5%",
             "--eval", x, y)
    check(r.returncode == 0 and "not met" in r.stdout, "unmet budget: says so (%s)" % r.stdout)
    if r.returncode == 0:
        rep = json.load(open(out + ".budget.json"))
        check(rep["met"] is False and rep["chosen"]["what"] == "fp32 dense",
              "unmet budget: met false, fp32 dense kept")
        c = rep["closest"]
        check(c is not None and c["drop"] > BUDGET and c["energy_j"] < rep["fp32_dense"]["energy_j"],
              "unmet budget: the closest cheaper point and its drop %s" % (c and c["drop"]))
        with open(out + ".plan") as f:
            check(all(l.startswith("fp32 dense ") for l in f.read().splitlines()[2:]),
                  "unmet budget: the plan is fp32 dense")

    # The per-layer prune form: floor(0.5 * 2048) zeros in net.2 only.
    mlp = os.path.join(DATA, "mlp.onnx")
    r = moss(a, "compile", mlp, "-o", os.path.join(work, "pl.moss"), "--prune",
             "layer=/net/net.2/Gemm:magnitude:0.5")
    lines = [l for l in r.stderr.splitlines() if l.startswith("prune /net/")]
    check(r.returncode == 0 and len(lines) == 3 and "2048 weights, 0 zero before, 1024 after" in lines[1]
          and " 0 after" in lines[0] and " 0 after" in lines[2],
          "--prune layer=NODE:magnitude:0.5 prunes that layer alone")

    # Bad input: clear messages.
    xm = os.path.join(DATA, "x_test_mlp.npy")
    cases = [
        (["--budget", "0.5%"], "needs --eval"),
        (["--budget", "5x", "--eval", xm, y], "--budget '5x': expected"),
        (["--budget", "150%", "--eval", xm, y], "expected the largest accepted drop"),
        (["--budget", "rel-l2:x", "--eval", xm], "expected rel-l2:R"),
        (["--budget", "rel-l2:-1", "--eval", xm], "expected rel-l2:R"),
        (["--budget", "0.5%", "--eval", xm], "needs the labels Y"),
        (["--eval", xm], "--eval needs two files"),
        (["--budget", "0.5%", "--eval", xm, y, "--quantize", "int8", "--calibration", xm],
         "drop --quantize"),
        (["--plan-out", "p"], "need --budget"),
        (["--budget", "0.5%", "--eval", xm, y, "--depfile", "d"], "do not cover --budget"),
        (["--prune", "layer=/nope:magnitude:0.5"], "no Conv, Gemm or MatMul node"),
        (["--budget", "0.5%", "--eval", xm, y, "--float16", "/net/net.0/Gemm"], "drop --quantize"),
        (["--float16", "/net/nope"], "--float16: the model has no node named '/net/nope'"),
    ]
    plan = os.path.join(work, "bad.plan")
    with open(plan, "w") as f:
        f.write("moss-plan 1\nint8 dense /net/net.9/Gemm\n")
    cases.append((["--plan", plan], "line 2: the model has no Conv, Gemm or MatMul layer named"))
    plan8 = os.path.join(work, "int8.plan")
    with open(plan8, "w") as f:
        f.write("moss-plan 1\nint8 dense /net/net.0/Gemm\n")
    cases.append((["--plan", plan8], "give --calibration"))
    plan16 = os.path.join(work, "fp16.plan")
    with open(plan16, "w") as f:
        f.write("moss-plan 1\nfp16 magnitude:0.5 /net/net.0/Gemm\n")
    cases.append((["--plan", plan16], "fp16 layers are dense"))
    for args, want in cases:
        r = moss(a, "compile", mlp, "-o", os.path.join(work, "bad.moss"), *args)
        check(r.returncode != 0 and want in r.stderr and "Traceback" not in r.stderr,
              "%s: fails with '%s' (%s)" % (" ".join(args)[:60], want, r.stderr.strip()[:200]))
    r = moss(a, "compile", os.path.join(DATA, "cnn.onnx"), "-o", os.path.join(work, "bad.moss"), "--float16",
             "/features/features.3/MaxPool")
    check(r.returncode != 0 and "only Conv, Gemm and MatMul layers compute in float16" in r.stderr,
          "--float16 on a MaxPool fails clearly (%s)" % r.stderr.strip()[:200])
    return finish(work)


if __name__ == "__main__":
    sys.exit(main())
