#!/usr/bin/python3
"""The progress line (compiler/driver/progress.c, README "Progress"): on a
terminal (a pseudo-terminal here) calibration, the compile pipeline and
moss compare show one line on standard error, redrawn with \\r and cleared
with \\r\\033[K, naming the stage, done/total and the seconds so far; what
is left on the screen is exactly what the same command prints into a pipe
(the progress line never mixes with diagnostics or summaries); into a pipe
or a file, with -q or -v, or before the start delay, no progress byte at
all. MOSS_PROGRESS_DELAY=0 draws every update at once, so that these short
runs show every step; MOSS_PROGRESS_DELAY=1000 checks that nothing is
drawn before the delay.

  test_progress.py --moss build/moss
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

from ptyrun import run_on_pty  # noqa: E402  (beside this file)

ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
a = ap.parse_args()
HERE = os.path.dirname(os.path.abspath(__file__))
D = os.path.join(HERE, "digits")
W = tempfile.mkdtemp(prefix="moss-progress-")
CNN = os.path.join(D, "cnn.onnx")
CALIB = os.path.join(D, "x_calib_cnn.npy")
TARGETS = ["host", "x86_64-avx2", "rpi4", "cortex-m7", "c99"]
fails = 0


def fail(msg):
    global fails
    print("FAIL: " + msg)
    fails += 1


def env_with(delay):
    e = dict(os.environ)
    e.pop("MOSS_PROGRESS_DELAY", None)
    if delay is not None:
        e["MOSS_PROGRESS_DELAY"] = delay
    return e


def on_pty(args, delay="0", cols=0):
    """Runs moss with stdout and stderr on a pseudo-terminal (|cols| wide;
    0: no width known): (exit, text)."""
    return run_on_pty([a.moss] + args, env_with(delay), cols)


def screen(text):
    """The lines a terminal shows after |text|: \\r goes to column 0,
    \\033[K erases to the end of the line, \\n starts a new line."""
    lines, cur, col, i = [], [], 0, 0
    while i < len(text):
        if text.startswith("\x1b[K", i):
            del cur[col:]
            i += 3
            continue
        ch = text[i]
        i += 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append("".join(cur))
            cur, col = [], 0
        else:
            if col < len(cur):
                cur[col] = ch
            else:
                cur.append(ch)
            col += 1
    if cur:
        lines.append("".join(cur))
    return lines


def piped(args, delay="0"):
    r = subprocess.run([a.moss] + args, capture_output=True, text=True, env=env_with(delay))
    return r.returncode, r.stdout, r.stderr


def no_progress(what, text, crlf):
    """No progress byte: no \\033 and no \\r but the terminal's \\r\\n."""
    if crlf:
        text = text.replace("\r\n", "\n")
    if "\r" in text or "\x1b" in text:
        fail("%s: progress bytes in %r" % (what, text[-600:]))


def samples_drawn(text):
    return [(int(m.group(1)), int(m.group(2)))
            for m in re.finditer(r"moss: calibrating (\d+)/(\d+) samples  \d+\.\d s", text)]


# 1. Compile with --quantize int8 --calibration on a terminal.
n_samples = np.load(CALIB).shape[0]  # the model runs batches of 1 (input=1x1x8x8)
q_tty, q_pipe = os.path.join(W, "tty.moss"), os.path.join(W, "pipe.moss")
quant = [CNN, "--input-shape", "input=1x1x8x8", "--quantize", "int8", "--calibration", CALIB]
rc, text = on_pty(["compile"] + quant + ["-o", q_tty])
rp, out_p, err_p = piped(["compile"] + quant + ["-o", q_pipe])
want = (out_p + err_p).replace(q_pipe, q_tty).splitlines()  # the summary names the output
if rc != 0 or rp != 0:
    fail("quantized compile: exit %d on a terminal, %d into a pipe:\n%s%s"
         % (rc, rp, text[-1500:], err_p))
else:
    drawn = samples_drawn(text)
    if not drawn or drawn[-1] != (n_samples, n_samples) or any(t != n_samples for _, t in drawn):
        fail("calibration progress: want up to %d/%d samples, drew %r"
             % (n_samples, n_samples, drawn[-3:]))
    if [d for d, _ in drawn] != sorted(d for d, _ in drawn):
        fail("calibration progress goes backwards: %r" % drawn)
    # the calibration build is a compile inside the "calibrate" step
    for stage in ("moss: import  ", "moss: partition  ", "moss: calibrate: infer  ",
                  "moss: plan  "):
        if stage not in text:
            fail("no %r on the terminal:\n%r" % (stage, text[-1500:]))
    if not re.search(r"moss: (calibrate: )?(kernels|C code) \d+/\d+  \d+\.\d s", text):
        fail("no per-node emit progress (kernels N/M or C code N/M) in %r" % text[-1500:])
    if not text.replace("\r\n", "\n").endswith("\n") or "\r\x1b[K" not in text:
        fail("the progress line is not cleared: %r" % text[-300:])
    got = screen(text)
    if got != want or not any("nodes, arena" in l for l in got):
        fail("the terminal shows %r, the pipe %r" % (got, want))
    no_progress("quantized compile into a pipe", err_p + out_p, False)
    with open(q_tty, "rb") as f1, open(q_pipe, "rb") as f2:
        if f1.read() != f2.read():
            fail("the bundle compiled on a terminal differs from the one compiled into a pipe")

# Standard error to a file, not a terminal: nothing but the summaries.
with open(os.path.join(W, "err.txt"), "w+") as ef:
    r = subprocess.run([a.moss, "compile"] + quant + ["-o", q_pipe], stdout=subprocess.DEVNULL,
                       stderr=ef, env=env_with("0"))
    ef.seek(0)
    err_f = ef.read()
if r.returncode != 0 or err_f != err_p:
    fail("compile with stderr to a file: exit %d, %r (a pipe: %r)" % (r.returncode, err_f, err_p))
no_progress("compile with stderr to a file", err_f, False)

# -q and -v on a terminal, and the start delay: no progress line.
rc, text = on_pty(["compile"] + quant + ["-o", q_tty, "-q"])
if rc != 0 or text.strip():
    fail("compile -q on a terminal: exit %d, printed %r" % (rc, text[-600:]))
no_progress("compile -q on a terminal", text, True)
rc, text = on_pty(["compile"] + quant + ["-o", q_tty, "-v"])
if rc != 0 or "moss: time" not in text:
    fail("compile -v on a terminal: exit %d, %r" % (rc, text[-600:]))
no_progress("compile -v on a terminal", text, True)
rc, text = on_pty(["compile"] + quant + ["-o", q_tty], delay="1000")
if rc != 0 or screen(text) != want:
    fail("compile before the delay: exit %d, %r" % (rc, text[-600:]))
no_progress("compile before the 1000 s delay", text, True)

# A diagnostic while the line shows: it clears the line (the calibration
# data is the MLP's [N, 64], not the CNN's [N, 1, 8, 8]).
bad = [CNN, "--input-shape", "input=1x1x8x8", "--quantize", "int8", "--calibration",
       os.path.join(D, "x_calib_mlp.npy"), "-o", q_tty]
rc, text = on_pty(["compile"] + bad)
rp, out_p, err_p = piped(["compile"] + bad)
if rc != 1 or rp != 1 or "moss: calibrate" not in text:
    fail("bad calibration data: exit %d / %d, %r" % (rc, rp, text[-600:]))
elif screen(text) != (out_p + err_p).splitlines() or "calibration data of type" not in err_p:
    fail("a diagnostic after the progress line: the terminal shows %r, the pipe %r"
         % (screen(text), (out_p + err_p).splitlines()))

# 2. moss compare over several targets.
cmp_args = ["compare", CNN, "--input-shape", "input=1x1x8x8", "--targets", ",".join(TARGETS)]
rc, text = on_pty(cmp_args)
rp, out_p, err_p = piped(cmp_args)
if rc != 0 or rp != 0:
    fail("compare: exit %d on a terminal, %d into a pipe:\n%s%s" % (rc, rp, text[-1500:], err_p))
else:
    for i, t in enumerate(TARGETS):
        if not re.search(r"moss: comparing %d/%d targets, %s: partition  \d+\.\d s"
                         % (i, len(TARGETS), re.escape(t)), text):
            fail("compare: no progress for target %d (%s) in %r" % (i, t, text[-800:]))
    if "moss: comparing %d/%d targets" % (len(TARGETS), len(TARGETS)) not in text:
        fail("compare: the last target is not counted done: %r" % text[-800:])
    got, want = screen(text), (out_p + err_p).splitlines()
    if got != want or not any(l.split()[1:2] == ["cortex-m7"] for l in got[1:]):
        fail("compare: the terminal shows %r, the pipe %r" % (got, want))
    no_progress("compare into a pipe", out_p + err_p, False)
    # A terminal 40 columns wide: the line is cut to 39, so that it never wraps.
    rc, text = on_pty(cmp_args, cols=40)
    drawn = re.findall(r"\r(moss: [^\r]*?)\x1b\[K", text)
    if rc != 0 or not drawn or max(len(d) for d in drawn) != 39:
        fail("compare on 40 columns: exit %d, lines of %r" % (rc, sorted(set(map(len, drawn)))))
    rc, text = on_pty(cmp_args + ["-q"])
    if rc != 0 or screen(text) != want:
        fail("compare -q on a terminal: exit %d, %r" % (rc, text[-600:]))
    no_progress("compare -q on a terminal", text, True)

print("test_progress: %d failures" % fails)
sys.exit(1 if fails else 0)
