#!/usr/bin/python3
"""The Cortex-M7 firmware example, end to end (examples/firmware-m7/README.md):

1. configures and builds examples/firmware-m7 out of tree with Debian's
   gcc-arm-none-eabi (arm-none-eabi-m7.cmake): moss compiles the digits CNN
   for the cortex-m7 target (--emit c), float and int8, through
   moss_add_model() (moss's CMake package with --moss-dir, or the
   CMakeLists' stand-in calling --moss directly);
2. reads the linker map: each model's arena (its own section) must be the
   arena size moss states in the generated header, the .manifest and the
   report JSON; the model object's .rodata must hold at least the weight
   bytes of the report and at most what the generated C declares
   `static const`; the memory regions must be the target XML's flash and
   SRAM; prints the figures;
3. runs the image under qemu-system-arm on the mps2-an500 board (a
   Cortex-M7), which prints over semihosting each model's accuracy and
   predictions on the 450 test images, and exits with main's status;
4. checks those against moss on the host: the accuracy must be
   `moss eval`'s for the same model and flags (a host bundle), and the
   predictions those of main.c built for the host against the very C that
   moss generated for the Cortex-M7; the float accuracy is also printed
   next to torch's (tests/e2e/digits/accuracy.txt).

Without arm-none-eabi-gcc it exits 77 (skipped). Without qemu-system-arm or
its mps2-an500 board it says so and checks only the build and the sizes.

  check.py --moss build/moss [--moss-dir PREFIX/lib/cmake/Moss] [--keep]
"""
import argparse
import atexit
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "tests", "e2e", "digits")
# The two models main.c runs, as CMakeLists.txt builds them: name -> extra moss flags.
MODELS = {
    "digits_cnn": [],
    "digits_cnn_q": ["--quantize", "int8", "--calibration", os.path.join(DATA, "x_calib_cnn.npy")],
}
LABELS = {"digits_cnn": "float digits_cnn", "digits_cnn_q": "int8 digits_cnn_q"}

ap = argparse.ArgumentParser()
ap.add_argument("--moss", help="the moss executable (also used for the host reference)")
ap.add_argument("--moss-dir", help="moss's CMake package folder (<prefix>/lib/cmake/Moss)")
ap.add_argument("--qemu", default="qemu-system-arm")
ap.add_argument("--timeout", type=int, default=120, help="seconds qemu may run")
ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
A = ap.parse_args()
if not A.moss and not A.moss_dir:
    ap.error("give --moss or --moss-dir")
moss = A.moss or os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(A.moss_dir)))), "bin", "moss")
for tool in ("arm-none-eabi-gcc", "cmake"):
    if not shutil.which(tool):
        print("SKIP: %s not found (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)" % tool)
        sys.exit(77)

work = tempfile.mkdtemp(prefix="moss-fw-m7-")
if A.keep:
    print("keeping " + work)
else:
    atexit.register(shutil.rmtree, work, True)
build = os.path.join(work, "build")
fails = 0


def fail(msg):
    global fails
    print("FAIL " + msg)
    fails += 1


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise SystemExit("FAIL %s: exit %d\n%s%s" % (" ".join(cmd), p.returncode, p.stdout[-2000:],
                                                   p.stderr[-2000:]))
    return p.stdout


def find_one(pattern):
    """The one file under the build folder matching |pattern| (the CMake package and the
    stand-in may put moss's outputs in different folders)."""
    hits = sorted(glob.glob(os.path.join(build, "**", pattern), recursive=True))
    if len(hits) != 1:
        raise SystemExit("FAIL expected one %s in %s, found %s" % (pattern, build, hits))
    return hits[0]


# 1. Configure and build.
cfg = ["cmake", "-S", HERE, "-B", build,
       "-DCMAKE_TOOLCHAIN_FILE=" + os.path.join(HERE, "arm-none-eabi-m7.cmake")]
if A.moss_dir:  # moss's CMake package (with --moss too, that moss instead of the package's)
    cfg.append("-DMoss_DIR=" + os.path.abspath(A.moss_dir))
if A.moss:
    cfg.append("-DMOSS_EXECUTABLE=" + os.path.abspath(A.moss))
run(cfg)
run(["cmake", "--build", build, "-j2"])
elf = os.path.join(build, "firmware-m7.elf")
mapfile = os.path.join(build, "firmware-m7.map")


# 2. The linker map against moss's compile-time figures.
def parse_map(text):
    """Output sections {name: (addr, size)} and input sections [(output, name, addr, size, file)]
    of a GNU ld map file; a long name puts the address and size on the next line."""
    outs, ins, cur, pending = {}, [], None, None
    body = text[text.index("Linker script and memory map"):]
    num = r"\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)"
    for line in body.splitlines():
        if pending:
            kind, name = pending
            pending = None
            m = re.match(num + r"\s*(.*)$", line)
            if m:
                if kind == "out":
                    cur = name
                    outs[name] = (int(m.group(1), 16), int(m.group(2), 16))
                else:
                    ins.append((cur, name, int(m.group(1), 16), int(m.group(2), 16),
                                m.group(3).strip()))
                continue
        m = re.match(r"^(\.\S+)" + num, line)
        if m:
            cur = m.group(1)
            outs[cur] = (int(m.group(2), 16), int(m.group(3), 16))
            continue
        m = re.match(r"^ (\.\S+)" + num + r"\s*(.*)$", line)
        if m:
            ins.append((cur, m.group(1), int(m.group(2), 16), int(m.group(3), 16),
                        m.group(4).strip()))
            continue
        m = re.match(r"^( ?)(\.\S+)\s*$", line)
        if m:
            pending = ("in" if m.group(1) else "out", m.group(2))
    regions = {m.group(1): int(m.group(2), 16) for m in re.finditer(
        r"^(\w+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)", text[:text.index("Linker script")], re.M)}
    return outs, ins, regions


def declared_const_bytes(c_path):
    """Bytes of the `static const` arrays the generated C declares."""
    size = {"float": 4, "double": 8, "int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2,
            "int32_t": 4, "uint32_t": 4, "int64_t": 8, "uint64_t": 8}
    total = 0
    for t, n in re.findall(r"static const (\w+) \w+\[(\d+)\]", open(c_path).read()):
        if t not in size:
            raise SystemExit("FAIL %s: unknown element type %s" % (c_path, t))
        total += size[t] * int(n)
    return total


outs, ins, regions = parse_map(open(mapfile).read())
rows = []
for name in MODELS:
    header = open(find_one(name + ".h")).read()
    m = re.search(r"#define %s_ARENA_BYTES (\d+)u" % name.upper(), header)
    h_arena = int(m.group(1)) if m else None
    manifest = open(find_one(name + ".manifest")).read()
    m = re.search(r"^arena (\d+)$", manifest, re.M)
    mf_arena = int(m.group(1)) if m else None
    report = json.load(open(find_one(name + ".report.json")))
    r_arena, r_weights = report["total"]["arena_bytes"], report["total"]["weight_bytes"]
    if report.get("target") != "cortex-m7":
        fail("%s: report for target %s, not cortex-m7" % (name, report.get("target")))
    map_arena = [s for o, n, a, s, f in ins if n == ".moss_arena." + name]
    map_arena = map_arena[0] if len(map_arena) == 1 else None
    obj = re.compile(r"[(/]%s\.c\.o(bj)?\)?$" % re.escape(name))
    mine = [(a, s) for o, n, a, s, f in ins if o == ".rodata" and obj.search(f) and s]
    rodata = sum(s for a, s in mine)
    text = sum(s for o, n, a, s, f in ins if o == ".text" and obj.search(f))
    # The flash the model's constants span, the fill of their 64-byte alignment included
    # (when nothing else lies between them, as ld places one object's sections together).
    lo, hi = min(a for a, s in mine), max(a + s for a, s in mine)
    others = [n for o, n, a, s, f in ins if o == ".rodata" and s and lo <= a < hi
              and not obj.search(f)]
    span = "" if others else ", %d with alignment fill" % (hi - lo)
    declared = declared_const_bytes(find_one(name + ".c"))
    if not (h_arena == mf_arena == r_arena == map_arena) or h_arena is None:
        fail("%s arena: header %s, manifest %s, report %s, linker map %s bytes"
             % (name, h_arena, mf_arena, r_arena, map_arena))
    if not r_weights <= rodata <= declared:
        fail("%s weights: the report's %d bytes should be within the model object's .rodata "
             "(%d bytes in the map), itself at most the %d bytes the C declares const"
             % (name, r_weights, rodata, declared))
    rows += [("%s arena (RAM)" % name, "%d" % r_arena, "%s (.moss_arena.%s)" % (map_arena, name)),
             ("%s weights (flash)" % name, "%d" % r_weights,
              "%d .rodata of %s.c%s (%d declared const)" % (rodata, name, span, declared)),
             ("%s code (flash)" % name, "-", "%d .text of %s.c" % (text, name))]

# The regions are the target's flash and SRAM (targets/cortex-m7.xml).
tdir = os.environ.get("MOSS_TARGETS_DIR", os.path.join(ROOT, "targets"))
levels = {lv.get("name"): int(lv.get("size-bytes"))
          for lv in ET.parse(os.path.join(tdir, "cortex-m7.xml")).iter("level")}
if regions.get("FLASH") != levels.get("flash") or regions.get("RAM") != levels.get("sram"):
    fail("linker regions FLASH %s RAM %s, target flash %s sram %s" % (
        regions.get("FLASH"), regions.get("RAM"), levels.get("flash"), levels.get("sram")))
size = {k: outs.get(k, (0, 0))[1] for k in (".vectors", ".text", ".rodata", ".ARM.exidx", ".data",
                                             ".bss", ".moss_arena", ".stack")}
flash = size[".vectors"] + size[".text"] + size[".rodata"] + size[".ARM.exidx"] + size[".data"]
ram = size[".data"] + size[".bss"] + size[".moss_arena"] + size[".stack"]
rows += [("image flash (vectors+text+rodata+data)", "%d" % levels["flash"], "%d" % flash),
         ("image RAM (data+bss+arenas+stack)", "%d" % levels["sram"], "%d" % ram)]
print("%-40s %12s   %s" % ("figure", "moss/target", "linker map"))
for r in rows:
    print("%-40s %12s   %s" % r)
if flash > levels["flash"] or ram > levels["sram"]:
    fail("the image does not fit the target's memories")

# 3. Run on the board.
fw_out = None
machines = ""
if shutil.which(A.qemu):
    machines = subprocess.run([A.qemu, "-machine", "help"], capture_output=True, text=True).stdout
if "mps2-an500" not in machines:
    print("qemu-system-arm with the mps2-an500 board (Cortex-M7) not found: the image was "
          "built and measured, not run")
else:
    try:
        # Without a semihosting chardev QEMU writes the guest's text to its standard error.
        p = subprocess.run([A.qemu, "-machine", "mps2-an500", "-nographic", "-semihosting-config",
                            "enable=on,target=native", "-kernel", elf],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=A.timeout)
        fw_out = p.stdout
        print("qemu mps2-an500 (exit %d; lines cut at 100 columns here):" % p.returncode)
        print("\n".join(l[:100] for l in fw_out.splitlines()))
        if p.returncode != 0:
            fail("the firmware exited with status %d" % p.returncode)
    except subprocess.TimeoutExpired:
        fail("the firmware did not finish in %d s under qemu" % A.timeout)

# 4. moss on the host: the same model and flags as a host bundle (moss eval), and main.c
# built natively against the C generated for the Cortex-M7.
host = os.path.join(work, "host")
os.makedirs(host)
srcs = [os.path.join(HERE, "main.c"), os.path.join(HERE, "semihost_host.c"),
        find_one("digits_data.c")]
incs = [HERE, os.path.dirname(find_one("digits_data.h"))]
for name in MODELS:
    srcs.append(find_one(name + ".c"))
    incs.append(os.path.dirname(find_one(name + ".h")))
cc = os.environ.get("CC", "cc")
run([cc, "-O2", "-std=c99", "-o", os.path.join(host, "digits")] + srcs
    + ["-I" + d for d in incs] + ["-lm"])
host_out = run([os.path.join(host, "digits")])
torch = dict(l.split() for l in open(os.path.join(DATA, "accuracy.txt")))
x, y = os.path.join(DATA, "x_test_cnn.npy"), os.path.join(DATA, "y_test.npy")
n = len(np.load(y))


def result(out, label):
    """(accuracy text, correct, predictions) of |label| in the program's output."""
    a = re.search(r"^%s: accuracy ([0-9.]+) \((\d+)/(\d+)\)$" % re.escape(label), out or "", re.M)
    p = re.search(r"^%s: predictions (\d+)$" % re.escape(label), out or "", re.M)
    if not a or not p:
        return None
    return a.group(1), int(a.group(2)), p.group(1)


print("%-18s %10s %10s %10s %10s" % ("model", "firmware", "host C", "moss eval", "torch"))
for name, flags in MODELS.items():
    bundle = os.path.join(host, name + ".moss")
    run([moss, "compile", os.path.join(DATA, "cnn.onnx"), "--input-shape", "input=1x1x8x8", "-q",
         "-o", bundle] + flags)
    m = re.search(r"accuracy ([0-9.]+) \((\d+)/(\d+)\)", run([moss, "eval", bundle, x, y]))
    ev = (m.group(1), int(m.group(2))) if m and int(m.group(3)) == n else None
    hc = result(host_out, LABELS[name])
    fw = result(fw_out, LABELS[name]) if fw_out is not None else None
    ref = torch.get("cnn") if not flags else "-"
    print("%-18s %10s %10s %10s %10s" % (name, fw[0] if fw else "-", hc[0] if hc else "-",
                                         ev[0] if ev else "-", ref))
    if not ev or not hc:
        fail("%s: no accuracy from moss eval (%s) or the host build (%s)" % (name, ev, hc))
        continue
    if hc[1] != ev[1]:
        fail("%s: the generated C on the host gets %d/%d right, moss eval %d/%d"
             % (name, hc[1], n, ev[1], n))
    if fw_out is None:
        continue
    if not fw:
        fail("%s: the firmware printed no accuracy" % name)
    elif fw[1] != ev[1] or fw[0] != ev[0]:
        fail("%s: firmware accuracy %s (%d/%d), moss eval on the host %s (%d/%d)"
             % (name, fw[0], fw[1], n, ev[0], ev[1], n))
    elif fw[2] != hc[2]:
        diff = [i for i, (a, b) in enumerate(zip(fw[2], hc[2])) if a != b]
        fail("%s: firmware and host predictions differ on images %s" % (name, diff[:20]))

print("firmware-m7 example: %d failure(s)" % fails)
sys.exit(1 if fails else 0)
