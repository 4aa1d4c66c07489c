#!/usr/bin/python3
"""The riscv64-rvv target (targets/riscv64-rvv.xml: Banana Pi BPI-F3, SpacemiT
K1, eight X60 cores with RVV 1.0 and VLEN 256): the file validates; `moss
targets show` prints its vector facts; llc-19 takes its codegen cpu and
features without a warning; the digits MLP and CNN compiled for it as C
(--emit c), built with Debian's riscv64 cross compiler (-march=rv64gcv) and a
small main, and run under qemu-riscv64 with the vector extension at VLEN 256,
match torch's logits (DESIGN.md float tolerance |a-b| <= 1e-5 + 1e-4|b|) and
torch's test-set accuracy. Where clang, opt-19 and llc-19 are present, the
same C also goes through LLVM 19 with the target's cpu and features (the
path the LLVM backend will take): that object must hold RVV instructions and
give the same answers under qemu.

Exits 77 (skipped) only when the cross compiler, its C library or
qemu-riscv64 is missing (Debian: gcc-riscv64-linux-gnu
libc6-dev-riscv64-cross qemu-user).

  test_target_riscv.py --moss build/moss
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "digits")
TARGET = "riscv64-rvv"
CROSS_CC = "riscv64-linux-gnu-gcc"
QEMU = "qemu-riscv64"
SYSROOT = "/usr/riscv64-linux-gnu"
# The vector unit of the emulated CPU: RVV 1.0, VLEN 256, as on the X60.
QEMU_CPU = "rv64,v=true,vlen=256,vext_spec=v1.0"

MAIN_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include "@name@.h"
/* Reads the input as raw little-endian float32, runs once, writes the output. */
int main(int argc, char **argv) {
  static float in[@NAME@_IN0_NUMEL], out[@NAME@_OUT0_NUMEL];
  void *arena = aligned_alloc(64, (@NAME@_ARENA_BYTES + 63u) / 64u * 64u);
  FILE *f;
  if (argc != 3 || !arena) return 2;
  f = fopen(argv[1], "rb");
  if (!f || fread(in, sizeof(float), @NAME@_IN0_NUMEL, f) != @NAME@_IN0_NUMEL) return 3;
  fclose(f);
  if (@name@_run(in, out, arena) != 0) return 4;
  f = fopen(argv[2], "wb");
  if (!f || fwrite(out, sizeof(float), @NAME@_OUT0_NUMEL, f) != @NAME@_OUT0_NUMEL) return 5;
  free(arena);
  return fclose(f) ? 6 : 0;
}
"""

# A loop LLVM vectorizes; llc-19 compiles it with the target's cpu and features.
PROBE_LL = """
define void @axpy(ptr noalias %y, ptr noalias %x, float %a, i64 %n) {
entry:
  %nz = icmp sgt i64 %n, 0
  br i1 %nz, label %loop, label %exit
loop:
  %i = phi i64 [0, %entry], [%i1, %loop]
  %px = getelementptr float, ptr %x, i64 %i
  %py = getelementptr float, ptr %y, i64 %i
  %vx = load float, ptr %px
  %vy = load float, ptr %py
  %m = fmul float %vx, %a
  %s = fadd float %m, %vy
  store float %s, ptr %py
  %i1 = add i64 %i, 1
  %c = icmp slt i64 %i1, %n
  br i1 %c, label %loop, label %exit
exit:
  ret void
}
"""


def run(cmd, what, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    if p.returncode != 0:
        raise SystemExit("FAIL %s: %s exited %d:\n%s%s" % (what, " ".join(cmd), p.returncode,
                                                         p.stdout, p.stderr))
    return p


def expect(text, needle, what):
    if needle not in text:
        raise SystemExit("FAIL %s: %r not in:\n%s" % (what, needle, text))


def targets_dir():
    d = os.environ.get("MOSS_TARGETS_DIR")
    return d if d else os.path.normpath(os.path.join(HERE, "..", "..", "targets"))


def check_description(moss):
    """validate and show; returns the codegen cpu and features."""
    xml = os.path.join(targets_dir(), TARGET + ".xml")
    p = run([moss, "targets", "validate", xml], "validate")
    expect(p.stdout + p.stderr, "valid", "validate")
    p = run([moss, "targets", "show", TARGET], "show")
    out = p.stdout
    expect(out, "target " + TARGET, "show")
    expect(out, "RVV 1.0", "show: the vector extension in the description")
    expect(out, "VLEN 256", "show: the vector length in the description")
    expect(out, "device cpu: kind cpu, backend llvm", "show: one CPU on the LLVM backend")
    expect(out, "codegen: triple riscv64-linux-gnu, cpu spacemit-x60, features ", "show: codegen")
    m = re.search(r"codegen: triple \S+, cpu (\S+), features (\S+)", out)
    cpu, features = m.group(1), m.group(2)
    for f in ("+v", "+zvl256b", "+zvfh"):
        if f not in features.split(","):
            raise SystemExit("FAIL show: vector feature %s not in %s" % (f, features))
    expect(out, "compute: 8 units at 1600 MHz", "show: compute")
    expect(out, "MACs/cycle/unit: f32 8, f16 16, i32 4, i8 8", "show: vector MAC rates")
    # Every figure says where it comes from: compute, 3 levels x 2, 4 MACs, power.
    nsrc = len(re.findall(r"^\s+(?:source|energy source|size/speed source): \S", out, re.M))
    if nsrc != 1 + 3 * 2 + 4 + 1:
        raise SystemExit("FAIL show: %d source lines, expected 12:\n%s" % (nsrc, out))
    return cpu, features


def check_llc(cpu, features, work):
    """llc-19 takes the cpu and features without a warning and emits RVV code."""
    llc = shutil.which("llc-19")
    if not llc:
        print("note: llc-19 not found; the codegen cpu and features were not checked with LLVM")
        return
    ll = os.path.join(work, "probe.ll")
    with open(ll, "w") as f:
        f.write(PROBE_LL)
    opt = shutil.which("opt-19")
    src = ll
    if opt:
        src = os.path.join(work, "probe.opt.ll")
        run([opt, "-mtriple=riscv64-linux-gnu", "-mcpu=" + cpu, "-mattr=" + features,
             "-passes=default<O3>", "-S", ll, "-o", src], "opt-19")
    p = run([llc, "-mtriple=riscv64-linux-gnu", "-mcpu=" + cpu, "-mattr=" + features, src,
             "-o", "-"], "llc-19")
    if p.stderr.strip():
        raise SystemExit("FAIL llc-19 -mcpu=%s -mattr=%s warned:\n%s" % (cpu, features, p.stderr))
    expect(p.stdout, "_v1p0", "llc-19: the arch attribute names V 1.0")
    expect(p.stdout, "zvl256b", "llc-19: the arch attribute names Zvl256b")
    if opt:
        expect(p.stdout, "vsetvli", "opt-19 + llc-19: the probe loop vectorized")
    print("llc-19 takes -mcpu=%s -mattr=%s" % (cpu, features))


def llvm_object(csrc, cpu, features, work, name):
    """The generated C through clang (to IR) and LLVM 19 with the target's cpu and
    features; None when those tools are missing."""
    clang = shutil.which("clang-14") or shutil.which("clang")
    opt, llc = shutil.which("opt-19"), shutil.which("llc-19")
    if not (clang and opt and llc):
        return None
    ll = os.path.join(work, name + ".ll")
    run([clang, "--target=riscv64-linux-gnu", "--sysroot=" + SYSROOT, "-march=rv64gc", "-O2",
         "-Xclang", "-disable-llvm-optzns", "-S", "-emit-llvm", csrc, "-o", ll], "clang to IR")
    with open(ll) as f:
        text = f.read()
    # The cpu and features come from the target, not from clang's defaults.
    text = re.sub(r'"target-(?:cpu|features)"="[^"]*"', "", text)
    with open(ll, "w") as f:
        f.write(text)
    bc = os.path.join(work, name + ".bc")
    run([opt, "-mtriple=riscv64-linux-gnu", "-mcpu=" + cpu, "-mattr=" + features,
         "-passes=default<O3>", ll, "-o", bc], "opt-19")
    s = os.path.join(work, name + ".s")
    obj = os.path.join(work, name + ".o")
    for ft, out in (("asm", s), ("obj", obj)):
        run([llc, "-mtriple=riscv64-linux-gnu", "-mcpu=" + cpu, "-mattr=" + features,
             "-relocation-model=pic", "-filetype=" + ft, bc, "-o", out], "llc-19")
    with open(s) as f:
        nvec = len(re.findall(r"^\s+v[a-z0-9]+\.[a-z.]+\s", f.read(), re.M))
    if nvec == 0:
        raise SystemExit("FAIL %s: LLVM 19 for %s emitted no vector instructions" % (name, cpu))
    return obj, nvec


def compare(name, build, got, ref, y, acc_ref):
    err = np.abs(got.astype(np.float64) - ref)
    ok = err <= 1e-5 + 1e-4 * np.abs(ref)
    acc = float((got.argmax(1) == y).mean())
    print("%s (%s): max |moss - torch| = %.3g, %d/%d within tolerance, accuracy %.6f (torch %.6f)"
          % (name, build, err.max(), ok.sum(), ok.size, acc, acc_ref))
    if not ok.all():
        raise SystemExit("FAIL %s (%s): logits differ from torch beyond the DESIGN.md tolerance"
                         % (name, build))
    if abs(acc - acc_ref) > 1e-6:
        raise SystemExit("FAIL %s (%s): accuracy differs from torch's" % (name, build))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    a = ap.parse_args()
    moss = os.path.abspath(a.moss)
    os.environ.setdefault("MOSS_TARGETS_DIR", targets_dir())

    cpu, features = check_description(moss)
    with tempfile.TemporaryDirectory() as work:
        check_llc(cpu, features, work)

        missing = [t for t in (CROSS_CC, QEMU) if not shutil.which(t)]
        if not os.path.exists(os.path.join(SYSROOT, "lib", "ld-linux-riscv64-lp64d.so.1")):
            missing.append("the riscv64 C library in " + SYSROOT)
        if missing:
            print("SKIP: missing %s (Debian: gcc-riscv64-linux-gnu libc6-dev-riscv64-cross "
                  "qemu-user)" % ", ".join(missing))
            return 77
        qemu = [QEMU, "-L", SYSROOT]
        if subprocess.run([QEMU, "-cpu", QEMU_CPU, "--version"], capture_output=True).returncode == 0:
            qemu = [QEMU, "-cpu", QEMU_CPU, "-L", SYSROOT]

        acc_ref = dict(l.split() for l in open(os.path.join(DATA, "accuracy.txt")))
        y = np.load(os.path.join(DATA, "y_test.npy"))
        llvm_done = []
        for m in ("mlp", "cnn"):
            x = np.load(os.path.join(DATA, "x_test_%s.npy" % m)).astype("<f4")
            ref = np.load(os.path.join(DATA, "%s_ref.npy" % m))
            shape = "x".join(str(d) for d in x.shape)
            out = os.path.join(work, m)
            run([moss, "compile", os.path.join(DATA, m + ".onnx"), "--input-shape",
                 "input=" + shape, "--target", TARGET, "--emit", "c", "-o", out, "-q"],
                "compile %s for %s" % (m, TARGET))
            csrc = os.path.join(out, m + ".c")
            srcs = [csrc]
            if os.path.exists(os.path.join(out, m + "_weights.c")):
                srcs.append(os.path.join(out, m + "_weights.c"))
            with open(os.path.join(out, "main.c"), "w") as f:
                f.write(MAIN_C.replace("@name@", m).replace("@NAME@", m.upper()))
            xin = os.path.join(work, m + "_x.bin")
            x.tofile(xin)

            builds = [("gcc -march=rv64gcv", [os.path.join(out, "main.c")] + srcs)]
            lo = llvm_object(csrc, cpu, features, work, m + "_llvm") if len(srcs) == 1 else None
            if lo:
                builds.append(("LLVM 19 -mcpu=%s, %d vector instructions" % (cpu, lo[1]),
                               [os.path.join(out, "main.c"), lo[0]]))
                llvm_done.append(m)
            for i, (label, inputs) in enumerate(builds):
                exe = os.path.join(work, "%s_%d" % (m, i))
                run([CROSS_CC, "-O2", "-march=rv64gcv", "-mabi=lp64d", "-std=c11",
                     "-I", out] + inputs + ["-lm", "-o", exe], "cross build of %s" % m)
                yout = os.path.join(work, "%s_%d_y.bin" % (m, i))
                run(qemu + [exe, xin, yout], "%s under %s" % (m, " ".join(qemu)))
                got = np.fromfile(yout, dtype="<f4")
                if got.size != ref.size:
                    raise SystemExit("FAIL %s (%s): %d outputs, expected %d"
                                     % (m, label, got.size, ref.size))
                compare(m, label, got.reshape(ref.shape), ref, y, float(acc_ref[m]))
        if not llvm_done:
            print("note: clang, opt-19 or llc-19 missing: the LLVM 19 build was not run")
    print("ok: %s validates and shows its vector facts; digits MLP and CNN as C for it match "
          "torch under %s" % (TARGET, " ".join(qemu)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
