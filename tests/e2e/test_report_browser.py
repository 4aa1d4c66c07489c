#!/usr/bin/python3
"""The HTML cost report and the `moss compare` page, read in a real browser:
headless Chromium (Debian's `chromium`) lays each page out in a window 1200
pixels wide, and the test checks that everything fits and nothing is
clipped:

  - the page does not scroll sideways (document scrollWidth <= the window);
  - no element reaches past the window's right edge, and no box scrolls or
    clips its content (scrollWidth > clientWidth with overflow not visible);
  - number cells of the node table are one line, the format cell at most
    three (a node name wraps as far as it needs);
  - every label of the bar charts lies inside its SVG (a long node name
    wraps to more lines instead of running off the left edge);
  - in the screenshot of the whole page, the 10 pixels at the right edge
    are background only (no table border or text reaches there).

The layout figures come from a copy of the page with a short script added
(the page itself has none); Chromium runs it after layout and --dump-dom
prints its verdict. The screenshots (1200 pixels wide, the whole page) and
the pages are kept in --out as the test's artifacts.

Pages: the digits CNN for rpi4 (complete), cortex-m7 (partial figures),
npu-systolic (not-modeled time and platform energy), the 90 %-pruned MLP
(sparse formats in the format column), a model with 90-character node
names, the CNN, the pruned MLP and the long-names model measured on this
machine (`moss compile --profile`: the node table gains a measured time
column, the totals the measured rows), and `moss compare` over five targets
and one that fails.

  test_report_browser.py --moss build/moss --out DIR

Exit 77 (skipped) when Chromium is not installed, except under CI, where
scripts/install-deps.sh installs it and its absence is a failure.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DIGITS = os.path.join(HERE, "digits")
WIDTH = 1200

# Runs in a copy of the page after layout; writes its findings as JSON
# into <pre id="moss-layout">. Kept short and dependency-free.
CHECK = r"""
<script>
(function () {
  var out = {errors: [], inner: window.innerWidth};
  var de = document.documentElement, vw = de.clientWidth;
  function name(e) {
    var s = e.tagName.toLowerCase();
    if (e.id) s += "#" + e.id;
    if (e.className && typeof e.className === "string") s += "." + e.className;
    var t = (e.textContent || "").replace(/\s+/g, " ").trim().slice(0, 50);
    return s + " '" + t + "'";
  }
  out.scrollWidth = de.scrollWidth;
  out.height = de.scrollHeight;
  if (de.scrollWidth > vw) out.errors.push("page scrolls sideways: " + de.scrollWidth + " > " + vw);
  var all = document.body.getElementsByTagName("*");
  for (var i = 0; i < all.length; i++) {
    var e = all[i], r = e.getBoundingClientRect(), cs = getComputedStyle(e);
    if (r.width > 0 && r.right > vw + 0.5)
      out.errors.push("past the right edge (" + r.right.toFixed(1) + " > " + vw + "): " + name(e));
    if (cs.overflowX !== "visible" && e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0)
      out.errors.push("box scrolls or clips (" + e.scrollWidth + " > " + e.clientWidth + "): " +
                      name(e));
  }
  var cells = document.querySelectorAll("table.nodes td");
  out.cells = cells.length;
  for (var i = 0; i < cells.length; i++) {
    var c = cells[i], cs = getComputedStyle(c);
    var lh = parseFloat(cs.lineHeight) || 1.2 * parseFloat(cs.fontSize);
    var pad = parseFloat(cs.paddingTop) + parseFloat(cs.paddingBottom);
    var rng = document.createRange();
    rng.selectNodeContents(c);
    var lines = Math.round(rng.getBoundingClientRect().height / lh);
    if (c.className === "name") continue; /* a long name wraps as far as it needs */
    if (lines > (c.className === "fmt" ? 3 : 1))
      out.errors.push("cell wraps to " + lines + " lines: " + name(c));
  }
  var svgs = document.getElementsByTagName("svg");
  out.labels = 0;
  for (var s = 0; s < svgs.length; s++) {
    var box = svgs[s].getBoundingClientRect();
    var texts = svgs[s].getElementsByTagName("text");
    for (var i = 0; i < texts.length; i++) {
      var r = texts[i].getBoundingClientRect();
      out.labels++;
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5)
        out.errors.push("chart text outside its SVG (" + r.left.toFixed(1) + ".." +
                        r.right.toFixed(1) + " not in " + box.left.toFixed(1) + ".." +
                        box.right.toFixed(1) + "): " + name(texts[i]));
    }
  }
  var pre = document.createElement("pre");
  pre.id = "moss-layout";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""


def fail(msg):
    raise SystemExit("FAIL: " + msg)


def run(cmd, ok=True, timeout=300):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if ok and p.returncode != 0:
        fail("%s exited %d: %s" % (" ".join(cmd), p.returncode, p.stderr[-2000:]))
    return p


def chromium_path():
    for n in ("chromium", "chromium-browser"):
        p = shutil.which(n)
        if p:
            return p
    return None


def browser(chrome, profile, args, page):
    # --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
    cmd = [chrome, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--user-data-dir=" + profile, "--force-device-scale-factor=1"] + args + \
          ["file://" + os.path.abspath(page)]
    return run(cmd, timeout=120)


def png_rgb_rows(path):
    """Decodes an 8-bit, non-interlaced RGB/RGBA PNG (what Chromium writes):
    returns (width, height, channels, rows as bytearrays)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("%s is not a PNG" % path)
    pos, idat, w = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                fail("%s: PNG kind %d/%d/%d not decoded here" % (path, depth, ctype, interlace))
            ch = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    raw = zlib.decompress(b"".join(idat))
    stride = w * ch
    rows, prev = [], bytearray(stride)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        cur = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if ft == 1:
            for i in range(ch, stride):
                cur[i] = (cur[i] + cur[i - ch]) & 255
        elif ft == 2:
            cur = bytearray((a + b) & 255 for a, b in zip(cur, prev))
        elif ft == 3:
            for i in range(stride):
                left = cur[i - ch] if i >= ch else 0
                cur[i] = (cur[i] + ((left + prev[i]) >> 1)) & 255
        elif ft == 4:
            for i in range(stride):
                a = cur[i - ch] if i >= ch else 0
                b = prev[i]
                c = prev[i - ch] if i >= ch else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (cur[i] + pr) & 255
        rows.append(cur)
        prev = cur
    return w, h, ch, rows


def right_edge_is_background(path, strip=10):
    w, h, ch, rows = png_rgb_rows(path)
    if w != WIDTH:
        fail("%s is %d pixels wide, not %d" % (path, w, WIDTH))
    bg = tuple(rows[0][0:3])
    for y, row in enumerate(rows):
        for x in range(w - strip, w):
            px = tuple(row[x * ch:x * ch + 3])
            if max(abs(px[k] - bg[k]) for k in range(3)) > 8:
                return "pixel (%d, %d) is %s, not the background %s" % (x, y, px, bg)
    return None


def check_page(chrome, page, out, stem, profile):
    """Lays |page| out at 1200 pixels; returns the layout findings."""
    with open(page, encoding="utf-8") as f:
        html = f.read()
    if "<script" in html:
        fail("%s: the page has a script" % stem)
    probe = os.path.join(out, stem + ".probe.html")
    with open(probe, "w", encoding="utf-8") as f:
        f.write(html.replace("</body>", CHECK + "</body>"))
    p = browser(chrome, profile, ["--window-size=%d,900" % WIDTH,
                                  "--run-all-compositor-stages-before-draw",
                                  "--virtual-time-budget=2000", "--dump-dom"], probe)
    os.remove(probe)
    start = p.stdout.find('<pre id="moss-layout">')
    if start < 0:
        fail("%s: the layout check did not run (no result in the DOM dump)" % stem)
    text = p.stdout[start + len('<pre id="moss-layout">'):p.stdout.index("</pre>", start)]
    res = json.loads(text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
                     .replace("&amp;", "&"))
    if res["inner"] != WIDTH:
        fail("%s: the window is %d pixels wide, not %d" % (stem, res["inner"], WIDTH))
    # The whole page in one screenshot (the test's artifact), without
    # scrollbars: its right edge must be background.
    full = os.path.join(out, stem + ".png")
    height = min(max(res["height"] + 20, 900), 6000)
    browser(chrome, profile, ["--window-size=%d,%d" % (WIDTH, height), "--hide-scrollbars",
                              "--screenshot=" + full], page)
    if not os.path.exists(full):
        fail("%s: Chromium wrote no screenshot" % stem)
    edge = right_edge_is_background(full)
    if edge:
        res["errors"].append("screenshot %s: content at the right edge: %s" % (full, edge))
    return res


def long_names_model(path):
    """Three MatMuls in a chain (nothing fuses) with long node and value
    names: two 90-character paths, and one 110-character name with no
    separator at all."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    long = "/encoder/layers.11/attention/output/dense_projection_with_a_very_long_name/"
    names = [long + "MatMul", long + "MatMul_1", "UnbrokenNodeName" + "x" * 94]
    ws = [numpy_helper.from_array(np.arange(64, dtype=np.float32).reshape(8, 8) / (64 + k),
                                  "W%d" % k) for k in range(3)]
    vals = ["X", long + "mm_out", long + "mm1_out", "Y"]
    g = helper.make_graph(
        [helper.make_node("MatMul", [vals[k], "W%d" % k], [vals[k + 1]], name=names[k])
         for k in range(3)],
        "long_names", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 8])], ws)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    ap.add_argument("--out", required=True, help="folder for the screenshots (kept)")
    a = ap.parse_args()
    moss = os.path.abspath(a.moss)
    chrome = chromium_path()
    if not chrome:
        if os.environ.get("CI"):
            fail("chromium is not installed (scripts/install-deps.sh installs it)")
        print("skip: chromium is not installed (apt-get install chromium)")
        return 77
    os.makedirs(a.out, exist_ok=True)
    cnn = os.path.join(DIGITS, "cnn.onnx")
    mlp = os.path.join(DIGITS, "mlp_pruned90.onnx")
    problems = []
    with tempfile.TemporaryDirectory() as w:
        profile = os.path.join(w, "profile")
        pages = []
        for model, target, shape in ((cnn, "rpi4", "input=1x1x8x8"),
                                     (cnn, "cortex-m7", "input=1x1x8x8"),
                                     (cnn, "npu-systolic", "input=1x1x8x8"),
                                     (mlp, "rpi4", "input=1x64")):
            stem = "%s-%s" % (os.path.splitext(os.path.basename(model))[0], target)
            page = os.path.join(w, stem + ".html")
            run([moss, "compile", model, "--target", target, "--emit", "c", "-q", "-o",
                 os.path.join(w, stem), "--report", page, "--input-shape", shape])
            pages.append((stem, page))
        ln = os.path.join(w, "long_names.onnx")
        names = long_names_model(ln)
        page = os.path.join(w, "long_names-host.html")
        run([moss, "compile", ln, "--emit", "c", "-q", "-o", os.path.join(w, "ln"),
             "--report", page])
        with open(page, encoding="utf-8") as f:
            text = f.read()
        for n in names:  # the full name is on the page (the chart's tooltip, the table)
            if "<title>%s (" % n not in text:
                problems.append("long_names: the chart has no tooltip with the full name %s" % n)
        pages.append(("long_names-host", page))
        # Measured beside estimated: the bundle compiled for this machine
        # runs here (moss compile --profile), one more column in the node
        # table and the measured rows in the totals.
        for model, stem, extra in ((cnn, "cnn-host-measured", ["--input-shape", "input=1x1x8x8"]),
                                   (mlp, "mlp_pruned90-host-measured",
                                    ["--input-shape", "input=1x64"]),
                                   (ln, "long_names-host-measured", [])):
            page = os.path.join(w, stem + ".html")
            run([moss, "compile", model, "-q", "-o", os.path.join(w, stem), "--report", page,
                 "--profile"] + extra)
            with open(page, encoding="utf-8") as f:
                text = f.read()
            for want in (">time est.</abbr></th>", ">time meas.</abbr></th>",
                         "<th class=\"l\">measured time</th>",
                         "<th class=\"l\">platform energy (measured time)</th>",
                         "<th class=\"l\">energy counter</th>", "<p class=\"how\">Measured: "):
                if want not in text:
                    problems.append("%s: the page has no %s" % (stem, want))
            pages.append((stem, page))
        page = os.path.join(w, "compare.html")
        run([moss, "compare", cnn, "--input-shape", "input=1x1x8x8", "--targets",
             "host,rpi4,jetson-orin-nano,cortex-m7,npu-systolic,no-such-target",
             "--report", page])
        pages.append(("compare", page))

        for stem, page in pages:
            shutil.copy(page, os.path.join(a.out, stem + ".html"))
            res = check_page(chrome, page, a.out, stem, profile)
            for e in res["errors"]:
                problems.append("%s: %s" % (stem, e))
            if stem != "compare" and res["cells"] == 0:
                problems.append("%s: no node table found" % stem)
            print("%-26s %d x-pixels, %d node cells, %d chart labels, %d problems" %
                  (stem, res["scrollWidth"], res.get("cells", 0), res["labels"],
                   len(res["errors"])))
    if problems:
        fail("%d layout problems at %d pixels (screenshots in %s):\n  %s" %
             (len(problems), WIDTH, a.out, "\n  ".join(problems[:40])))
    print("ok: %d pages fit a %d-pixel window; screenshots in %s" % (len(pages), WIDTH, a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
