#!/usr/bin/python3
"""The installed moss as a product's build uses it (issue 17, README.md
"Compile at build time"):

1. `cmake --install` into a fresh prefix puts the CLI, libmossrt (static and
   shared), the headers, the target XMLs, the plugin and its XMLs, the CMake
   package and mossrt.pc where they belong; the installed moss finds its
   targets with no MOSS_TARGETS_DIR, and its plugin with no
   MOSS_PLUGIN_PATH; pkg-config answers for mossrt.
2. examples/digits, a CMake project with find_package(Moss) and one
   moss_add_model() line, builds a program that runs the digits CNN with
   torch's accuracy (tests/e2e/digits/accuracy.txt); with Unix Makefiles and
   with Ninja, the model is compiled again when, and only when, one of its
   inputs changes: the model, the target XML and the XML it inherits, the
   calibration data, the flags, the moss executable (each touched in turn,
   counting the compiles); touching an unrelated target XML or main.c
   compiles no model. A second build tree elsewhere gives byte-identical
   generated C.
3. The same project cross-built for AArch64 (examples/digits/aarch64.cmake,
   target rpi4) runs under qemu-aarch64 with the same accuracy.
4. examples/bundle loads a bundle (moss_add_model EMIT bundle) through
   libmossrt found with pkg-config, with the same accuracy.

  test_package.py --build BUILD_DIR --prefix PREFIX [--install-only]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DIGITS = os.path.join(HERE, "digits")
failures = []
HOST_FLAGS = []  # more -D arguments for the projects built for this machine


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)
    return ok


def run(cmd, env=None, cwd=None):
    p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if p.returncode != 0:
        sys.exit("FAIL: %s exited %d:\n%s" % (" ".join(cmd), p.returncode, p.stdout[-4000:]))
    return p.stdout


def clean_env(prefix):
    """The environment of a user's shell: no MOSS_TARGETS_DIR from ctest, no
    MOSS_PLUGIN_PATH (the installed moss finds its own plugins)."""
    env = dict(os.environ)
    env.pop("MOSS_TARGETS_DIR", None)
    env.pop("MOSS_PLUGIN_PATH", None)
    env["PKG_CONFIG_PATH"] = os.path.join(prefix, "lib", "pkgconfig")
    return env


def torch_accuracy(model):
    with open(os.path.join(DIGITS, "accuracy.txt")) as f:
        for line in f:
            name, acc = line.split()
            if name == model:
                return float(acc)
    raise KeyError(model)


def accuracy_of(out):
    m = re.search(r"accuracy ([0-9.]+)", out)
    return float(m.group(1)) if m else None


def install(build, prefix):
    shutil.rmtree(prefix, ignore_errors=True)
    run(["cmake", "--install", build, "--prefix", prefix])
    want = ["bin/moss", "lib/libmossrt.a", "lib/libmossrt.so", "lib/libmossrt.so.0",
            "lib/libmossrt_sign.so", "include/moss/mossrt.h", "include/moss/moss_bundle.h",
            "include/moss/mossrt_sign.h", "include/moss/moss_plugin.h",
            "share/moss/targets/moss-target.xsd", "share/moss/targets/host.xml",
            "share/moss/targets/cortex-m7.xml", "lib/cmake/Moss/MossConfig.cmake",
            "lib/cmake/Moss/MossConfigVersion.cmake", "lib/cmake/Moss/MossAddModel.cmake",
            "lib/pkgconfig/mossrt.pc",
            "lib/moss/plugins/npu-systolic/libmoss-npu-systolic.so",
            "lib/moss/plugins/npu-systolic/npu-systolic-32x32.xml"]
    missing = [w for w in want if not os.path.exists(os.path.join(prefix, w))]
    check(not missing, "cmake --install puts every file in place%s" %
          (": missing " + ", ".join(missing) if missing else ""))
    env = clean_env(prefix)
    out = run([os.path.join(prefix, "bin", "moss"), "targets", "show", "cortex-m7"], env=env)
    check(os.path.realpath(os.path.join(prefix, "share/moss/targets")) in out,
          "the installed moss reads its own share/moss/targets")
    flags = run(["pkg-config", "--cflags", "--libs", "mossrt"], env=env).split()
    inc = [f[2:] for f in flags if f.startswith("-I")]
    check("-lmossrt" in flags and inc and os.path.exists(os.path.join(inc[0], "mossrt.h")),
          "pkg-config --cflags --libs mossrt: %s" % " ".join(flags))
    # The plugin's XML, installed beside the plugin, compiles a model there;
    # the bundle names the library by file name, and the installed moss
    # finds it in PREFIX/lib/moss/plugins/npu-systolic.
    with tempfile.TemporaryDirectory() as d:
        run([os.path.join(prefix, "bin", "moss"), "compile",
             os.path.join(DIGITS, "cnn_qdq.onnx"), "--input-shape", "input=1x1x8x8", "-q",
             "--target", os.path.join(prefix, "lib/moss/plugins/npu-systolic/npu-systolic-8x8.xml"),
             "-o", os.path.join(d, "npu.moss")], env=env)
        data = open(os.path.join(d, "npu.moss"), "rb").read()
        check(b"libmoss-npu-systolic.so" in data and os.path.realpath(prefix).encode() not in data
              and prefix.encode() not in data,
              "the bundle names the plugin library by file name, not by the prefix's path")
        out = run([os.path.join(prefix, "bin", "moss"), "eval", os.path.join(d, "npu.moss"),
                   os.path.join(DIGITS, "x_test_cnn.npy"), os.path.join(DIGITS, "y_test.npy")],
                  env=env)
        check(accuracy_of(out) is not None and abs(accuracy_of(out) - torch_accuracy("cnn_qdq")) <= 0.005,
              "the installed npu-systolic plugin runs the int8 CNN (%s)" % out.strip())


def bump(path):
    """An edit's change of the file's time: now, a moment after the last
    build wrote its outputs (a time in the future would leave the outputs
    older than their input for good)."""
    time.sleep(1.0)
    os.utime(path, None)


def compiles(build_dir, env):
    """Builds; returns how many models moss compiled (their COMMENT lines)."""
    out = run(["cmake", "--build", build_dir], env=env)
    return len(re.findall(r"moss: compiling ", out)), out


def rebuilds(prefix, generator, work):
    env = clean_env(prefix)
    src = os.path.join(ROOT, "examples", "digits")
    # The inputs live in the test's folder, so touching them touches nothing
    # of the repository: the model, the calibration data, and a board XML
    # inheriting the installed x86_64-avx2.
    model = os.path.join(work, "cnn.onnx")
    calib = os.path.join(work, "calib.npy")
    board = os.path.join(work, "board.xml")
    shutil.copy(os.path.join(DIGITS, "cnn.onnx"), model)
    shutil.copy(os.path.join(DIGITS, "x_calib_cnn.npy"), calib)
    with open(board, "w") as f:
        f.write('<?xml version="1.0"?>\n<target name="test-board" vendor="test" '
                'inherit="x86_64-avx2">\n  <description>a board of the package test'
                '</description>\n</target>\n')
    bdir = os.path.join(work, "build")
    tag = "[%s] " % generator

    def configure(*extra):
        run(["cmake", "-S", src, "-B", bdir, "-G", generator, "-DCMAKE_PREFIX_PATH=" + prefix,
             "-DDIGITS_MODEL=" + model, "-DMOSS_TARGET=" + board] + HOST_FLAGS + list(extra),
            env=env)

    configure()
    n, _ = compiles(bdir, env)
    check(n == 1, tag + "first build compiles the model once (%d)" % n)
    prog = os.path.join(bdir, "digits")
    out = run([prog, os.path.join(DIGITS, "x_test_cnn.npy"), os.path.join(DIGITS, "y_test.npy")])
    check(accuracy_of(out) == torch_accuracy("cnn"),
          tag + "the program runs the digits CNN at torch's accuracy %.6f: %s"
          % (torch_accuracy("cnn"), out.strip()))
    n, _ = compiles(bdir, env)
    check(n == 0, tag + "a second build compiles nothing (%d)" % n)
    inherited = os.path.join(prefix, "share/moss/targets/x86_64-avx2.xml")
    for what, path, want in [("the model", model, 1), ("the target XML", board, 1),
                             ("the XML it inherits", inherited, 1),
                             ("the moss executable", os.path.join(prefix, "bin/moss"), 1),
                             ("an unrelated target XML",
                              os.path.join(prefix, "share/moss/targets/rpi4.xml"), 0),
                             ("main.c", os.path.join(src, "main.c"), 0)]:
        bump(path)
        n, _ = compiles(bdir, env)
        check(n == want, tag + "touching %s compiles the model %d time(s) (%d)" % (what, want, n))
    configure("-DDIGITS_PRUNE=magnitude:0.3")
    n, _ = compiles(bdir, env)
    check(n == 1, tag + "a new flag (PRUNE) compiles the model again (%d)" % n)
    configure("-DDIGITS_PRUNE=magnitude:0.3")
    n, _ = compiles(bdir, env)
    check(n == 0, tag + "configuring again with the same flags compiles nothing (%d)" % n)
    configure("-DDIGITS_PRUNE=", "-DDIGITS_CALIBRATION=" + calib)
    n, _ = compiles(bdir, env)
    check(n == 1, tag + "QUANTIZE with CALIBRATION compiles it again (%d)" % n)
    bump(calib)
    n, _ = compiles(bdir, env)
    check(n == 1, tag + "touching the calibration data compiles it again (%d)" % n)
    out = run([prog, os.path.join(DIGITS, "x_test_cnn.npy"), os.path.join(DIGITS, "y_test.npy")])
    acc = accuracy_of(out)
    check(acc is not None and abs(acc - torch_accuracy("cnn")) <= 0.02,
          tag + "the int8 program stays within 2 points of torch's float accuracy: %s" % out.strip())


def identical(prefix, work):
    """Two build trees in different folders, same flags: the same bytes."""
    env = clean_env(prefix)
    trees = [os.path.join(work, "one"), os.path.join(work, "elsewhere", "tree two")]
    for t in trees:
        run(["cmake", "-S", os.path.join(ROOT, "examples", "digits"), "-B", t,
             "-DCMAKE_PREFIX_PATH=" + prefix, "-DMOSS_TARGET=x86_64-avx2",
             "-DDIGITS_CALIBRATION=" + os.path.join(DIGITS, "x_calib_cnn.npy")] + HOST_FLAGS,
            env=env)
        compiles(t, env)
    same = []
    for f in ["model.c", "model.h", "model.manifest"]:
        with open(os.path.join(trees[0], "moss/digits_model", f), "rb") as a, \
             open(os.path.join(trees[1], "moss/digits_model", f), "rb") as b:
            same.append(a.read() == b.read())
    check(all(same), "two build trees in different folders generate byte-identical "
          "model.c/.h/.manifest")


def cross(prefix, work):
    if not shutil.which("aarch64-linux-gnu-gcc") or not shutil.which("qemu-aarch64"):
        check(False, "the AArch64 cross compiler and qemu-user are installed")
        return
    env = clean_env(prefix)
    bdir = os.path.join(work, "aarch64")
    run(["cmake", "-S", os.path.join(ROOT, "examples", "digits"), "-B", bdir,
         "-DCMAKE_TOOLCHAIN_FILE=" + os.path.join(ROOT, "examples", "digits", "aarch64.cmake"),
         "-DMoss_DIR=" + os.path.join(prefix, "lib/cmake/Moss"), "-DMOSS_TARGET=rpi4"], env=env)
    compiles(bdir, env)
    info = run(["file", os.path.join(bdir, "digits")])
    check("aarch64" in info, "the cross-built program is an AArch64 ELF")
    out = run(["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", os.path.join(bdir, "digits"),
               os.path.join(DIGITS, "x_test_cnn.npy"), os.path.join(DIGITS, "y_test.npy")])
    check(accuracy_of(out) == torch_accuracy("cnn"),
          "under qemu-aarch64 the rpi4 build has torch's accuracy: %s" % out.strip())


def bundle(prefix, work):
    env = clean_env(prefix)
    bdir = os.path.join(work, "bundle")
    run(["cmake", "-S", os.path.join(ROOT, "examples", "bundle"), "-B", bdir,
         "-DCMAKE_PREFIX_PATH=" + prefix, "-DMOSS_TARGET=host"] + HOST_FLAGS, env=env)
    compiles(bdir, env)
    out = run([os.path.join(bdir, "run_bundle"), os.path.join(DIGITS, "x_test_cnn.npy"),
               os.path.join(DIGITS, "y_test.npy")], env=env)
    check(accuracy_of(out) == torch_accuracy("cnn"),
          "a bundle loaded through libmossrt from pkg-config has torch's accuracy: %s" % out.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--install-only", action="store_true",
                    help="install and check the install (the ctest fixture)")
    ap.add_argument("--installed", action="store_true",
                    help="the prefix holds the install already: build the examples only")
    ap.add_argument("--sanitize", action="store_true",
                    help="moss is built with ASan+UBSan: so are the host examples")
    a = ap.parse_args()
    prefix = os.path.abspath(a.prefix)
    if a.sanitize:
        HOST_FLAGS.append("-DCMAKE_C_FLAGS=-fsanitize=address,undefined -fno-omit-frame-pointer")
    if not a.installed:
        install(a.build, prefix)
    if not a.install_only:
        with tempfile.TemporaryDirectory(prefix="moss-package-") as work:
            gens = ["Unix Makefiles"] + (["Ninja"] if shutil.which("ninja") else [])
            check(len(gens) == 2, "ninja is installed (ninja-build)")
            for g in gens:
                d = os.path.join(work, g.replace(" ", "-"))
                os.makedirs(d)
                rebuilds(prefix, g, d)
            identical(prefix, work)
            cross(prefix, work)
            bundle(prefix, work)
    if failures:
        sys.exit("%d failure(s)" % len(failures))
    print("all passed")


if __name__ == "__main__":
    main()
