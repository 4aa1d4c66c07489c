#!/usr/bin/python3
"""`moss compare` ranks targets by a complete figure and draws the ranking.

The digits CNN over host, rpi4, jetson-orin-nano, cortex-m7, npu-systolic and
a target that does not exist. The expected order comes from each target's
own JSON report (`moss compile --report`), not from compare's output: rows
ranked by the platform-model energy (total.platform_j), complete figures
first by value, then partial ones (a lower bound) by value, then
not-modeled ones, then the failed target; a partial row's rank carries `*`,
a not-modeled one `?` (docs/report.md). The op-model energy, which leaves
out what a target does not price, must not decide the order.

`--report FILE.html` writes the ranking as a page (a bar chart of the
ranking, then a chart of energy against time, one point per target):
well-formed XML, no
script, nothing external, the rows in the same order, one bar per ranked
target whose length is proportional to its figure, partial bars marked.
`--report FILE.json` writes the same ranking as rows for programs: the
same order, each row's energy_j, time_s and memory equal to its target's own
JSON report, the failed target last with its diagnostic. Any other
extension is an io error, before anything is costed.

  test_compare_rank.py --moss build/moss
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
CNN = os.path.join(HERE, "digits", "cnn.onnx")
SHAPE = ["--input-shape", "input=1x1x8x8"]
TARGETS = ["host", "rpi4", "jetson-orin-nano", "cortex-m7", "npu-systolic"]
SVG = "{http://www.w3.org/2000/svg}"


def fail(msg):
    raise SystemExit("FAIL: " + msg)


def run(cmd, ok=True):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if p.returncode < 0 or p.returncode >= 128:
        fail("%s crashed (status %d): %s" % (" ".join(cmd), p.returncode, p.stderr))
    if ok and p.returncode != 0:
        fail("%s exited %d: %s" % (" ".join(cmd), p.returncode, p.stderr))
    if not ok and p.returncode == 0:
        fail("%s succeeded, expected an error" % " ".join(cmd))
    return p


def tier(f):
    return 2 if f["value"] is None else 1 if f["partial"] else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    moss = os.path.abspath(ap.parse_args().moss)
    with tempfile.TemporaryDirectory() as w:
        fig = {}
        for t in TARGETS:
            js = os.path.join(w, t + ".json")
            # The default emit, as compare costs each target: the backend
            # decides the kernels (the LLVM backend's implicit product of a
            # 3x3 Conv is estimated apart from the C backend's loops).
            run([moss, "compile", CNN] + SHAPE + ["--target", t, "-q", "-o",
                                                  os.path.join(w, t + ".moss"), "--report", js])
            with open(js) as f:
                rep = json.load(f)
            fig[t] = (rep["total"]["platform_j"], rep["total"]["energy_j"])
        expect = sorted(TARGETS, key=lambda t: (tier(fig[t][0]), fig[t][0]["value"] or 0, t))
        marks = {t: ["", "*", "?"][tier(fig[t][0])] for t in TARGETS}

        page = os.path.join(w, "rank.html")
        p = run([moss, "compare", CNN] + SHAPE +
                ["--targets", ",".join(TARGETS + ["no-such-target"]), "--report", page])
        rows = [l.split() for l in p.stdout.splitlines()[1:] if l[:1].isdigit() or l[:1] == "-"]
        got = [r[1] for r in rows]
        if got != expect + ["no-such-target"]:
            fail("compare order %s, expected %s (by platform energy, complete first):\n%s" %
                 (got, expect, p.stdout))
        for i, r in enumerate(rows[:-1]):
            want = "%d%s" % (i + 1, marks[r[1]])
            if r[0] != want:
                fail("%s ranked '%s', expected '%s':\n%s" % (r[1], r[0], want, p.stdout))
        if rows[-1][0] != "-" or "failed:" not in " ".join(rows[-1]):
            fail("the failed target's row: %s" % rows[-1])
        expect_note = "ranked by platform-model energy"
        if expect_note not in p.stdout:
            fail("the table does not say what it ranks by:\n%s" % p.stdout)
        if any(m == "*" for m in marks.values()) and "\n*: ranked on a partial" not in p.stdout:
            fail("partial rows without the note:\n%s" % p.stdout)
        if any(m == "?" for m in marks.values()) and "\n?: no figure to rank by" not in p.stdout:
            fail("not-modeled rows without the note:\n%s" % p.stdout)
        # The op-model figure alone would order them otherwise (the finding:
        # cortex-m7 first by a partial op-model figure); say so if it still would.
        by_op = sorted(TARGETS, key=lambda t: (fig[t][1]["value"] is None,
                                               fig[t][1]["value"] or 0))
        print("platform order %s; op-model order %s" % (expect, by_op))

        with open(page, encoding="utf-8") as f:
            text = f.read()
        if not text.startswith("<!DOCTYPE html>") or "<script" in text:
            fail("the page is not a script-free HTML page")
        if "http://" in text.replace("http://www.w3.org/2000/svg", "") or "https://" in text:
            fail("the page refers to something outside it")
        root = ET.fromstring(text[text.index("<html"):])
        svg = root.findall(".//" + SVG + "svg")
        if len(svg) != 2:
            fail("%d SVG charts on the page, expected 2 (the ranking, the trade-off)" % len(svg))
        bars = {}
        labels = [t for t in svg[0].iter(SVG + "text") if t.get("text-anchor") == "end"]
        order = []
        for lab in labels:
            title = lab.find(SVG + "title")
            order.append(title.text)
        if order != expect + ["no-such-target"]:
            fail("the chart's order %s, expected %s" % (order, expect))
        rects = svg[0].findall(SVG + "rect")
        for t, r in zip([t for t in expect if fig[t][0]["value"] is not None], rects):
            bars[t] = float(r.get("width"))
        ranked = [t for t in expect if fig[t][0]["value"] is not None]
        if len(rects) != len(ranked):
            fail("%d bars for %d targets with a figure" % (len(rects), len(ranked)))
        top = max(fig[t][0]["value"] for t in ranked)
        for t in ranked:
            want = fig[t][0]["value"] / top * bars[max(ranked, key=lambda u: fig[u][0]["value"])]
            if abs(bars[t] - want) > 0.01 * want + 0.02:
                fail("%s's bar is %.2f wide, expected %.2f" % (t, bars[t], want))
        for t, r in zip(ranked, rects):
            partial = r.get("stroke-dasharray") is not None
            if partial != fig[t][0]["partial"]:
                fail("%s's bar is %s marked partial" % (t, "" if partial else "not"))
        # The trade-off: one point per target with an energy and a time, in
        # the order of the figures: less time further left, less energy lower.
        times = {}
        for t in TARGETS:
            with open(os.path.join(w, t + ".json")) as f:
                times[t] = json.load(f)["total"]["time_s"]["value"]
        both = [t for t in TARGETS if fig[t][0]["value"] and times[t]]
        pts = {}
        for c in svg[1].findall(SVG + "circle"):
            name = c.find(SVG + "title").text.split(":")[0]
            pts[name] = (float(c.get("cx")), float(c.get("cy")))
        if sorted(pts) != sorted(both):
            fail("the trade-off chart has points for %s, expected %s" % (sorted(pts), sorted(both)))
        for a in both:
            for b in both:
                if times[a] < times[b] and not pts[a][0] < pts[b][0]:
                    fail("%s is faster than %s but not left of it" % (a, b))
                if fig[a][0]["value"] < fig[b][0]["value"] and not pts[a][1] > pts[b][1]:
                    fail("%s takes less energy than %s but is not below it" % (a, b))
        table = [tr for tr in root.iter("tr")][1:]
        trows = [tr.findall("td")[1].text for tr in table]
        if trows != expect + ["no-such-target"]:
            fail("the page's table order %s" % trows)

        rj = os.path.join(w, "rank.json")
        run([moss, "compare", CNN] + SHAPE +
            ["--targets", ",".join(TARGETS + ["no-such-target"]), "--report", rj])
        with open(rj) as f:
            doc = json.load(f)
        jrows = doc["rows"]
        if [r["target"] for r in jrows] != expect + ["no-such-target"]:
            fail("the JSON rows' order %s, expected %s" % ([r["target"] for r in jrows], expect))
        for i, r in enumerate(jrows[:-1]):
            t = r["target"]
            with open(os.path.join(w, t + ".json")) as f:
                own = json.load(f)["total"]
            if r["rank"] != i + 1 or r["rank_text"] != "%d%s" % (i + 1, marks[t]):
                fail("%s's JSON rank %r %r, expected %d%s" % (t, r["rank"], r["rank_text"],
                                                             i + 1, marks[t]))
            for key, f in (("energy_j", own["platform_j"]), ("time_s", own["time_s"])):
                if (r[key] is None) != (f["value"] is None) or r[key + "_partial"] != f["partial"]:
                    fail("%s's JSON %s %r, its report %r" % (t, key, r[key], f))
                if f["value"] is not None and abs(r[key] - f["value"]) > 1e-9 * abs(f["value"]):
                    fail("%s's JSON %s %r, its report %r" % (t, key, r[key], f["value"]))
            if r["memory_bytes"] != own["arena_bytes"] + own["weight_bytes"]:
                fail("%s's JSON memory %r" % (t, r["memory_bytes"]))
        last = jrows[-1]
        if last["rank"] is not None or "unknown target" not in (last["error"] or ""):
            fail("the failed target's JSON row: %r" % last)

        p = run([moss, "compare", CNN] + SHAPE + ["--targets", "host", "--report",
                                                  os.path.join(w, "rank.csv")], ok=False)
        if "io:" not in p.stderr or "must end in .html" not in p.stderr:
            fail("--report rank.csv: %r" % p.stderr)
        if p.stdout:
            fail("--report rank.csv printed a table before refusing: %r" % p.stdout)
    print("ok: compare ranks %s by platform energy, complete first; the page draws it" %
          ",".join(expect))
    return 0


if __name__ == "__main__":
    sys.exit(main())
