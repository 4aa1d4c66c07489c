#!/usr/bin/python3
"""Bad command lines and dangerous outputs through the moss binary (issue 11):

  - no output replaces an input or a device: `-o` naming the model, a link
    to it or the target XML, `--report` and `-o` naming one file, `-o
    /dev/null` and `-o /dev/full`, a folder, `moss run`'s output being a
    link to an input file; a write that fails (file size limit) leaves the
    old file as it was and no temporary file; a user's file in an --emit c
    folder that moss did not generate survives;
  - `moss run` needs a file for every graph input (bundle, --emit c and
    --emit obj folders alike) and writes nothing otherwise; a bad input file
    is reported under its own name;
  - `moss run --stream --state IN=OUT` keeps a state between chunks (running
    sums through z = x + y), and refuses chunk counts that differ, an input
    not in chunks, unknown names, every input a state, a C folder;
  - NaN or Inf in --calibration data is refused naming the file and index;
  - command-line mistakes: `compare --targets a,,b`, every compare target
    failing, `bench --iterations abc` / 20 digits / 0, --input-shape or
    --constant given twice, unknown options, missing values, unknown commands.

Each case checks the exit status (1 for a failure, 2 for a command-line
mistake, never a crash), the diagnostic's shape and category and a fragment
of its wording, and that every file involved is byte for byte and inode for
inode what it was.

  test_bad_cli.py --moss build/moss
"""
import argparse
import os
import re
import resource
import signal
import stat
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
FAILS = []
# "<file>: <category>: <reason> [src.c:line]", no node part in these cases.
SHAPE = re.compile(r"^(?P<file>.+?): (?P<cat>invalid-model|unsupported|target|io|out-of-memory|"
                   r"internal): (?P<reason>.+) \[[a-z_]+\.c:\d+\]$")


def check(cond, what, detail=""):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)
        if detail:
            print("     " + detail.replace("\n", "\n     "))


def moss(a, *args, limit_fsize=None):
    def pre():
        if limit_fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_fsize, limit_fsize))
    return subprocess.run([a.moss] + list(args), capture_output=True, text=True, timeout=600,
                          preexec_fn=pre)


def snap(path):
    """What must not change: the bytes, the inode and the kind of |path|."""
    st = os.lstat(path)
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            data = f.read()
    else:
        data = None
    return (st.st_dev, st.st_ino, stat.S_IFMT(st.st_mode), st.st_rdev, data)


def expect_fail(what, p, status, file, cat, fragment, files=(), before=None):
    """|p| failed with |status|; its first line is a diagnostic about |file|
    of category |cat| containing |fragment|; |files| are unchanged."""
    lines = p.stderr.strip().splitlines()
    m = SHAPE.match(lines[0]) if lines else None
    check(p.returncode == status, "%s: exit status %d" % (what, status),
          "got %d: %s" % (p.returncode, p.stderr))
    check(m is not None and m.group("file") == file and m.group("cat") == cat,
          "%s: '%s: %s: ...'" % (what, file, cat), p.stderr)
    check(fragment in p.stderr, "%s: says %r" % (what, fragment), p.stderr)
    if before is not None:
        for f, s in zip(files, before):
            check(snap(f) == s, "%s: %s unchanged (bytes and inode)" % (what, f))


def leftovers(d):
    return sorted(n for n in os.listdir(d) if n.endswith(".tmp") or ".tmp" in n)


def add_model(path):
    """z = x + y, two float32 [2, 3] inputs."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 3])
    g = helper.make_graph([helper.make_node("Add", ["x", "y"], ["z"], name="add")], "add",
                          [x, y], [z])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)


def gemm_model(path):
    """y = x @ W + b, x float32 [1, 4]: one input with a batch dimension."""
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "B")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    g = helper.make_graph([helper.make_node("Gemm", ["x", "W", "B"], ["y"], name="fc")], "fc",
                          [x], [y], [w, b])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)


def outputs(a, w, add, addm, x, y):
    j = lambda *p: os.path.join(w, *p)
    xml = j("mytarget.xml")
    targets = os.environ.get("MOSS_TARGETS_DIR") or os.path.join(HERE, "..", "..", "targets")
    with open(os.path.join(targets, "c99.xml")) as f:
        open(xml, "w").write(f.read())

    files = [add, addm]
    b = [snap(f) for f in files]

    def restore():  # so that one failure does not hide the next
        if snap(add) != b[0]:
            add_model(add)
            b[0] = snap(add)
    expect_fail("-o MODEL", moss(a, "compile", "-q", add, "-o", add), 1, add, "io",
                "will not replace '%s': it is an input" % add, files, b)
    restore()
    link = j("link.onnx")
    os.symlink(add, link)
    expect_fail("-o a link to the model", moss(a, "compile", "-q", add, "-o", link), 1, add, "io",
                "will not replace '%s': it is an input" % link, files, b)
    restore()
    files2 = [add, xml]
    b2 = [snap(f) for f in files2]
    expect_fail("-o the --target XML", moss(a, "compile", "-q", add, "--target", xml, "-o", xml),
                1, add, "io", "will not replace '%s': it is an input" % xml, files2, b2)
    rj = j("r.json")
    p = moss(a, "compile", "-q", add, "--report", rj, "-o", rj)
    expect_fail("--report and -o one file", p, 1, add, "io",
                "will not replace '%s': it is already written by this command" % rj)
    check(os.path.exists(rj) and open(rj, "rb").read().lstrip().startswith(b"{"),
          "--report and -o one file: the report stays")
    for dev in ("/dev/null", "/dev/full"):
        if not os.path.exists(dev):
            continue
        b3 = [snap(dev)]
        expect_fail("-o " + dev, moss(a, "compile", "-q", add, "-o", dev), 1, add, "io",
                    "will not replace '%s': it is a character device, not a regular file" % dev,
                    [dev], b3)
    d = j("folder")
    os.mkdir(d)
    expect_fail("-o a folder", moss(a, "compile", "-q", add, "-o", d), 1, add, "io",
                "it is a folder, not a regular file", [d], [snap(d)])
    for emit in ("c", "obj"):
        expect_fail("--emit %s -o MODEL" % emit,
                    moss(a, "compile", "-q", add, "--emit", emit, "-o", add), 1, add, "io",
                    "Not a directory", files, b)
        restore()

    # A write that fails part-way (file size limit: EFBIG) keeps the old file.
    big = j("big.moss")
    p = moss(a, "compile", "-q", add, "-o", big)
    check(p.returncode == 0, "compile a bundle", p.stderr)
    bb = [snap(big)]
    p = moss(a, "compile", "-q", add, "--name", "other", "-o", big, limit_fsize=4096)
    expect_fail("a failed write", p, 1, add, "io", "cannot write '%s'" % big, [big], bb)
    check(leftovers(w) == [], "a failed write leaves no temporary file", str(leftovers(w)))
    p = moss(a, "compile", "-q", add, "--report", j("big.html"), limit_fsize=4096)
    check(p.returncode == 1 and not os.path.exists(j("big.html")) and leftovers(w) == [],
          "a failed --report write leaves nothing", p.stderr + str(leftovers(w)))

    # An --emit c folder: a file moss did not generate is not removed.
    cdir = j("addc")
    os.mkdir(cdir)
    mine = os.path.join(cdir, "add_weights.c")
    with open(mine, "w") as f:
        f.write("/* my own file */\n")
    bm = [snap(mine)]
    p = moss(a, "compile", "-q", add, "--emit", "c", "-o", cdir)
    check(p.returncode == 0 and os.path.exists(mine) and snap(mine) == bm[0],
          "--emit c keeps a file moss did not generate", p.stderr)
    if os.path.exists(mine):
        os.remove(mine)

    # moss run: an output that is a link to an input is not written through.
    xa, ya = j("x.npy"), j("y.npy")
    od = j("out")
    os.mkdir(od)
    os.symlink(xa, os.path.join(od, "output_0.npy"))
    bx = [snap(xa), snap(ya)]
    p = moss(a, "run", addm, xa, ya, "-o", od)
    expect_fail("run: output_0.npy links to an input", p, 1, addm, "io",
                "will not replace '%s': it is an input" % os.path.join(od, "output_0.npy"),
                [xa, ya], bx)


def run_inputs(a, w, add, addm, x, y):
    j = lambda *p: os.path.join(w, *p)
    xa, ya = j("x.npy"), j("y.npy")
    arts = {"bundle": addm}
    for emit in ("c", "obj"):
        d = j("add_" + emit)
        p = moss(a, "compile", "-q", add, "--emit", emit, "-o", d)
        check(p.returncode == 0, "compile --emit " + emit, p.stderr)
        arts[emit] = d
    for kind, art in arts.items():
        od = j("o_" + kind)
        os.mkdir(od)
        p = moss(a, "run", art, "-o", od)
        expect_fail("run %s with no input file" % kind, p, 1, art, "io",
                    "no file for inputs 0 'x', 1 'y'")
        p = moss(a, "run", art, xa, "-o", od)
        expect_fail("run %s with one of two" % kind, p, 1, art, "io", "no file for input 1 'y'")
        p = moss(a, "run", art, "--input", "y=" + ya, "-o", od)
        expect_fail("run %s with --input y only" % kind, p, 1, art, "io",
                    "no file for input 0 'x'")
        check(os.listdir(od) == [], "run %s: nothing written without every input" % kind,
              str(os.listdir(od)))
        p = moss(a, "run", art, xa, ya, "-o", od)
        ok = p.returncode == 0 and np.array_equal(np.load(os.path.join(od, "output_0.npy")), x + y)
        check(ok, "run %s with both inputs: x + y" % kind, p.stderr)
    p = moss(a, "bench", addm, "--iterations", "3")
    check(p.returncode == 0, "bench with no input file still times zeros", p.stderr)

    # A bad input file is reported under its own name.
    bad = {}
    bad["garbage.npy"] = b"not a tensor"
    raw = open(xa, "rb").read()
    bad["truncated.npy"] = raw[:len(raw) - 5]
    bad["short.npy"] = raw[:40]
    pb = numpy_helper.from_array(x, "x").SerializeToString()
    bad["truncated.pb"] = pb[:len(pb) // 2]
    for name, data in bad.items():
        with open(j(name), "wb") as f:
            f.write(data)
    np.save(j("int.npy"), x.astype(np.int32))
    np.save(j("shape.npy"), x.reshape(3, 2))
    for name, frag in (("garbage.npy", ""), ("truncated.npy", ""), ("short.npy", ""),
                       ("truncated.pb", ""), ("int.npy", "holds int32[2,3]; the input 'x'"),
                       ("shape.npy", "holds float32[3,2]; the input 'x'"),
                       ("missing.npy", "cannot open")):
        for kind in ("bundle", "c"):
            p = moss(a, "run", arts[kind], j(name), ya, "-o", j("o_" + kind))
            lines = p.stderr.strip().splitlines()
            m = SHAPE.match(lines[0]) if lines else None
            check(p.returncode == 1 and m is not None and m.group("file") == j(name) and
                  m.group("cat") in ("io", "invalid-model") and frag in p.stderr,
                  "run %s on %s: reported under the input's name" % (kind, name), p.stderr)


def streaming(a, w, add, addm, x, y):
    """moss run --stream on z = x + y: with --state y=z the bundle's session
    keeps y, fed by z, so z after chunk k is x_0 + ... + x_k (plus y's file,
    the first state); and the mistakes."""
    j = lambda *p: os.path.join(w, *p)
    xs = np.stack([x * (k + 1) for k in range(4)])
    np.save(j("xs.npy"), xs)
    np.save(j("ys3.npy"), np.stack([y] * 3))
    for init, base in ((None, 0), (j("y.npy"), y)):
        od = j("o_stream_%s" % ("zeros" if init is None else "y"))
        args = ["run", addm, "--stream", "--state", "y=z", "--input", "x=" + j("xs.npy"), "-o", od]
        if init:
            args += ["--input", "y=" + init]
        p = moss(a, *args)
        ok = p.returncode == 0 and np.allclose(np.load(os.path.join(od, "output_0.npy")),
                                               np.cumsum(xs, 0) + base, rtol=0, atol=0)
        check(ok, "run --stream --state y=z (first state %s): running sums" % ("zeros" if init is None else "y.npy"),
              p.stderr)
    p = moss(a, "run", addm, "--stream", "--input", "x=" + j("xs.npy"), "--input", "y=" + j("ys3.npy"), "-o", j("o"))
    expect_fail("--stream with 4 and 3 chunks", p, 1, addm, "io", "hold 4 and 3 chunks")
    p = moss(a, "run", addm, "--stream", "--state", "y=z", "--input", "x=" + j("x.npy"), "-o", j("o"))
    expect_fail("--stream with an input that is not chunked", p, 1, j("x.npy"), "io",
                "--stream reads one or more of it along a new first axis")
    p = moss(a, "run", addm, "--state", "y=nope", "--input", "x=" + j("xs.npy"), "-o", j("o"))
    expect_fail("--state naming no output", p, 1, addm, "io", "no output named 'nope'")
    p = moss(a, "run", addm, "--state", "x=z", "--state", "y=z", "-o", j("o"))
    expect_fail("--stream with every input a state", p, 1, addm, "io", "every input is a state")
    d = j("add_c_stream")
    check(moss(a, "compile", "-q", add, "--emit", "c", "-o", d).returncode == 0, "compile --emit c")
    p = moss(a, "run", d, "--stream", "--input", "x=" + j("xs.npy"), "--input", "y=" + j("ys3.npy"), "-o", j("o"))
    expect_fail("--stream on an --emit c folder", p, 1, d, "unsupported", "--stream runs a bundle")
    usage("--state without '='", moss(a, "run", addm, "--state", "y", "-o", j("o")), "--state takes INPUT=OUTPUT")
    usage("bench --stream", moss(a, "bench", addm, "--stream"), "unknown option '--stream'")


def calibration(a, w):
    j = lambda *p: os.path.join(w, *p)
    model = j("fc.onnx")
    gemm_model(model)
    data = np.random.default_rng(2).standard_normal((8, 4)).astype(np.float32)
    np.save(j("cal.npy"), data)
    p = moss(a, "compile", "-q", model, "--quantize", "int8", "--calibration", j("cal.npy"),
             "-o", j("q.moss"))
    check(p.returncode == 0, "calibration on finite data works", p.stderr)
    for bad, val, idx, word in (("nan.npy", np.nan, (2, 1), "NaN"),
                                ("inf.npy", np.inf, (5, 3), "+Inf"),
                                ("ninf.npy", -np.inf, (0, 0), "-Inf")):
        d = data.copy()
        d[idx] = val
        np.save(j(bad), d)
        flat = idx[0] * 4 + idx[1]
        out = j("q_" + bad + ".moss")
        p = moss(a, "compile", "-q", model, "--quantize", "int8", "--calibration", j(bad),
                 "-o", out)
        expect_fail("calibration with %s" % word, p, 1, j(bad), "invalid-model",
                    "element %d (sample %d) is %s" % (flat, idx[0], word))
        check(not os.path.exists(out), "calibration with %s: no bundle written" % word)
    cd = j("calfolder")
    os.mkdir(cd)
    np.save(os.path.join(cd, "a.npy"), data)
    np.save(os.path.join(cd, "b.npy"), np.where(np.arange(32).reshape(8, 4) == 9, np.nan, data)
            .astype(np.float32))
    p = moss(a, "compile", "-q", model, "--quantize", "int8", "--calibration", cd,
             "-o", j("f.moss"))
    expect_fail("calibration folder with a NaN", p, 1, os.path.join(cd, "b.npy"), "invalid-model",
                "element 9 (sample 2) is NaN")


def usage(what, p, fragment, status=2):
    lines = p.stderr.strip().splitlines()
    m = SHAPE.match(lines[0]) if lines else None
    check(p.returncode == status, "%s: exit status %d" % (what, status),
          "got %d: %s" % (p.returncode, p.stderr))
    check(m is not None and m.group("file") == "moss" and m.group("cat") == "invalid-model",
          "%s: 'moss: invalid-model: ...'" % what, p.stderr)
    check(fragment in p.stderr, "%s: says %r" % (what, fragment), p.stderr)
    check(len(lines) > 1 and lines[1] == "usage:", "%s: then the usage" % what, p.stderr)


def command_line(a, w, add, addm):
    j = lambda *p: os.path.join(w, *p)
    p = moss(a, "compare", add, "--targets", "c99,,host")
    lines = p.stderr.strip().splitlines()
    check(p.returncode != 0 and lines and SHAPE.match(lines[0]) and
          "--targets 'c99,,host': an empty target name at character 5" in p.stderr,
          "compare --targets a,,b: says the name is empty", p.stderr)
    p = moss(a, "compare", add, "--targets", "host,")
    check(p.returncode != 0 and "an empty target name" in p.stderr, "compare --targets a,",
          p.stderr)
    p = moss(a, "compare", add, "--targets", "no-such-a,no-such-b")
    check(p.returncode == 1 and "unknown target 'no-such-a'" in p.stderr and
          "unknown target 'no-such-b'" in p.stderr and "every target failed (2 of 2)" in p.stderr,
          "compare with every target failing: says why on stderr", p.stderr)
    usage("bench --iterations abc", moss(a, "bench", addm, "--iterations", "abc"),
          "--iterations 'abc': not a whole number")
    usage("bench --iterations 1x", moss(a, "bench", addm, "--iterations", "1x"),
          "not a whole number")
    usage("bench --iterations (20 digits)",
          moss(a, "bench", addm, "--iterations", "12345678901234567890"),
          "--iterations 12345678901234567890: too large (at most 10000000)")
    usage("bench --iterations 10000001", moss(a, "bench", addm, "--iterations", "10000001"),
          "too large")
    usage("bench --iterations 0", moss(a, "bench", addm, "--iterations", "0"),
          "--iterations 0: must be at least 1")
    usage("bench --iterations -5", moss(a, "bench", addm, "--iterations", "-5"),
          "not a whole number")
    usage("run --threads abc", moss(a, "run", addm, "--threads", "abc"), "not a whole number")
    out = j("twice.moss")
    usage("--input-shape twice",
          moss(a, "compile", add, "--input-shape", "x=2x3", "--input-shape", "x=2x3", "-o", out),
          "--input-shape x=2x3: input 'x' is already bound by --input-shape x=2x3")
    np.save(j("c.npy"), np.ones((2, 3), np.float32))
    usage("--constant twice",
          moss(a, "compile", add, "--constant", "y=" + j("c.npy"), "--constant",
               "y=" + j("c.npy"), "-o", out), "input 'y' is already bound by --constant")
    usage("--input-shape and --constant for one input",
          moss(a, "compile", add, "--input-shape", "y=2x3", "--constant", "y=" + j("c.npy"),
               "-o", out), "input 'y' is already bound by --input-shape y=2x3")
    check(not os.path.exists(out), "no output after a command-line mistake")
    p = moss(a, "compare", add, "--targets", "host", "--input-shape", "x=2x3", "--input-shape",
             "x=2x3")
    check(p.returncode != 0 and "already bound" in p.stderr, "compare: --input-shape twice",
          p.stderr)
    usage("unknown option", moss(a, "compile", add, "--frobnicate"),
          "compile: unknown option '--frobnicate'")
    usage("missing value", moss(a, "compile", add, "-o"), "-o needs a value")
    p = moss(a, "compile", add, "-o")
    check(p.stderr.count("invalid-model") == 1, "missing value: one message, not two", p.stderr)
    usage("run: unknown option", moss(a, "run", addm, "--bogus"), "run: unknown option '--bogus'")
    usage("run: no artifact", moss(a, "run"), "run: no artifact given")
    usage("unknown command", moss(a, "frobnicate"), "unknown command 'frobnicate'")
    usage("no command", moss(a), "no command given")
    usage("eval arguments", moss(a, "eval", addm), "eval: expected ARTIFACT X.npy Y.npy")
    usage("--grid-intensity", moss(a, "compile", add, "--grid-intensity", "x"),
          "--grid-intensity wants gCO2e/kWh")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    a = ap.parse_args()
    a.moss = os.path.abspath(a.moss)
    with tempfile.TemporaryDirectory() as w:
        add = os.path.join(w, "add.onnx")
        addm = os.path.join(w, "add.moss")
        add_model(add)
        x = np.arange(6, dtype=np.float32).reshape(2, 3)
        y = np.full((2, 3), 0.5, np.float32)
        np.save(os.path.join(w, "x.npy"), x)
        np.save(os.path.join(w, "y.npy"), y)
        p = moss(a, "compile", "-q", add, "-o", addm)
        if p.returncode != 0:
            raise SystemExit("FAIL: cannot compile the test model: " + p.stderr)
        outputs(a, w, add, addm, x, y)
        run_inputs(a, w, add, addm, x, y)
        streaming(a, w, add, addm, x, y)
        calibration(a, w)
        command_line(a, w, add, addm)
    if FAILS:
        print("%d checks failed" % len(FAILS))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
