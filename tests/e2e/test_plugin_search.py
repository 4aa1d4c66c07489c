#!/usr/bin/python3
"""Where libmossrt finds a plugin library (runtime/README.md "Plugin
libraries"). The digits MLP, quantized, compiled for the npu-systolic
plugin's 8x8 target (its XML in the build tree, next to the library):

  - the bundle's device record names the library by file name only, and no
    folder of the build (the build tree, the plugin's folder, the source
    tree, the work folder) appears anywhere in its bytes;
  - the build tree's moss runs it with no MOSS_PLUGIN_PATH (moss's own
    build layout: build/moss -> build/plugins/npu-systolic);
  - through build/runtime/libmossrt.so (ctypes, a fresh process each time,
    no MOSS_PLUGIN_PATH): a copy of the bundle next to a copy of the
    library in a temporary folder loads that copy (the bundle's folder
    comes before moss's layouts) and computes what `moss run` computed; a
    copy alone in a folder loads build/plugins/npu-systolic's (the layout of
    build/runtime/libmossrt.so);
  - through a copy of libmossrt.so in PREFIX/lib, far from any build: with
    the library nowhere, opening fails with MOSSRT_E_DEVICE and a message
    that names the bundle's folder, the layout folders and "the system's
    library path" and says to set MOSS_PLUGIN_PATH or
    mossrt_options.plugin_dir; a bundle opened from memory has no folder to
    look in; MOSS_PLUGIN_PATH finds it; so does the installed layout,
    PREFIX/lib/moss/plugins/npu-systolic.
The predictions of the runs match y_test.npy as often as torch's accuracy
says (tests/e2e/digits/accuracy.txt, mlp_qdq: 0.973; at least 0.9 of the
first 64 here).

  test_plugin_search.py --moss build/moss --plugin-dir build/plugins/npu-systolic
                        --runtime build/runtime/libmossrt.so --work DIR
"""
import argparse
import ctypes
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

from sanitize import sanitized_env

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
DIGITS = os.path.join(HERE, "digits")
LIB = "libmoss-npu-systolic.so"
FAILED = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        FAILED.append(what)


def plugin_records(data):
    """(backend, plugin record) of each device of the bundle |data|."""
    tab, cnt = struct.unpack_from("<QI", data, 24)
    secs = {}
    for i in range(cnt):
        kind, _, off, size, _, _ = struct.unpack_from("<IIQQII", data, tab + 32 * i)
        secs.setdefault(kind, (off, size))
    soff = secs[1][0]  # STRINGS
    doff = secs[3][0]  # DEVICES

    def string(at):
        o, n = struct.unpack_from("<II", data, at)
        return data[soff + o:soff + o + n].decode()

    (nd,) = struct.unpack_from("<I", data, doff)
    return [(string(doff + 8 + 56 * d + 16), string(doff + 8 + 56 * d + 24)) for d in range(nd)]


def child(runtime, bundle, memory):
    """Opens |bundle| through |runtime| (from memory if asked) and runs it
    on x_test_mlp.npy[:64]; prints JSON: status, message, the plugin
    library this process mapped, the outputs."""
    lib = ctypes.CDLL(runtime)

    class Err(ctypes.Structure):
        _fields_ = [("status", ctypes.c_int), ("text", ctypes.c_char * 512)]

    class Info(ctypes.Structure):
        _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int32),
                    ("rank", ctypes.c_int32), ("dims", ctypes.POINTER(ctypes.c_int64)),
                    ("nbytes", ctypes.c_uint64)]

    P, PP = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
    lib.mossrt_open_file.argtypes = [ctypes.c_char_p, PP, ctypes.POINTER(Err)]
    lib.mossrt_open_memory.argtypes = [ctypes.c_char_p, ctypes.c_size_t, PP,
                                       ctypes.POINTER(Err)]
    lib.mossrt_session_create.argtypes = [P, P, ctypes.c_size_t, PP, ctypes.POINTER(Err)]
    lib.mossrt_output_info.argtypes = [P, ctypes.c_uint32, ctypes.POINTER(Info)]
    lib.mossrt_run.argtypes = [P, PP, PP, ctypes.POINTER(Err)]
    lib.mossrt_session_destroy.argtypes = [P]
    lib.mossrt_close.argtypes = [P]
    b, s, err = P(), P(), Err()
    if memory:
        data = open(bundle, "rb").read()
        st = lib.mossrt_open_memory(data, len(data), ctypes.byref(b), ctypes.byref(err))
    else:
        st = lib.mossrt_open_file(bundle.encode(), ctypes.byref(b), ctypes.byref(err))
    mapped = sorted({line.split()[-1] for line in open("/proc/self/maps")
                     if line.rstrip().endswith("/" + LIB)})
    res = {"status": st, "text": err.text.decode(), "mapped": mapped, "y": []}
    if st == 0:
        info = Info()
        assert lib.mossrt_output_info(b, 0, ctypes.byref(info)) == 0
        assert lib.mossrt_session_create(b, None, 0, ctypes.byref(s), ctypes.byref(err)) == 0, \
            err.text
        x = np.load(os.path.join(DIGITS, "x_test_mlp.npy")).astype(np.float32)[:64]
        for row in x:
            xin = np.ascontiguousarray(row.reshape(1, -1))
            y = np.zeros(info.nbytes // 4, np.float32)
            ins = (ctypes.c_void_p * 1)(xin.ctypes.data)
            outs = (ctypes.c_void_p * 1)(y.ctypes.data)
            assert lib.mossrt_run(s, ins, outs, ctypes.byref(err)) == 0, err.text
            res["y"].append(y.tolist())
        lib.mossrt_session_destroy(s)
        lib.mossrt_close(b)
    print(json.dumps(res))


def open_in_child(runtime, bundle, memory=False, env_extra=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MOSS_PLUGIN_PATH", "LD_LIBRARY_PATH")}
    env.update(env_extra or {})
    env = sanitized_env(runtime, env)
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", runtime, bundle] +
                       (["--memory"] if memory else []), env=env, capture_output=True,
                       text=True, cwd=tempfile.gettempdir())
    if r.returncode != 0:
        sys.exit("the child process failed: %s" % r.stderr)
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss")
    ap.add_argument("--plugin-dir")
    ap.add_argument("--runtime")
    ap.add_argument("--work")
    ap.add_argument("--child", nargs=2)
    ap.add_argument("--memory", action="store_true")
    a = ap.parse_args()
    if a.child:
        return child(a.child[0], a.child[1], a.memory)
    moss, pdir = os.path.abspath(a.moss), os.path.abspath(a.plugin_dir)
    runtime = os.path.abspath(a.runtime)
    build = os.path.dirname(moss)
    work = os.path.abspath(a.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    env = {k: v for k, v in os.environ.items()
           if k not in ("MOSS_PLUGIN_PATH", "LD_LIBRARY_PATH")}
    env.setdefault("MOSS_TARGETS_DIR", os.path.join(SRC, "targets"))

    bundle = os.path.join(work, "mlp_npu.moss")
    subprocess.run([moss, "compile", os.path.join(DIGITS, "mlp.onnx"), "--input-shape",
                    "input=1x64", "--target", os.path.join(pdir, "npu-systolic-8x8.xml"),
                    "--quantize", "int8", "--calibration",
                    os.path.join(DIGITS, "x_test_mlp.npy"), "-q", "-o", bundle],
                   env=env, check=True)
    data = open(bundle, "rb").read()
    recs = [r for r in plugin_records(data) if r[0].startswith("plugin:")]
    check(recs == [("plugin:npu-systolic", LIB)],
          "the plugin device records the library's file name only: %s" % recs)
    for what, path in (("build tree", build), ("plugin folder", pdir), ("source tree", SRC),
                       ("work folder", work)):
        check(path.encode() not in data, "the bundle holds no path of the %s (%s)" % (what, path))

    # The build tree's moss, no MOSS_PLUGIN_PATH: build/plugins/npu-systolic.
    x = np.load(os.path.join(DIGITS, "x_test_mlp.npy")).astype(np.float32)
    y_test = np.load(os.path.join(DIGITS, "y_test.npy"))
    np.save(os.path.join(work, "x0.npy"), x[:1])
    r = subprocess.run([moss, "run", bundle, os.path.join(work, "x0.npy"), "-o",
                        os.path.join(work, "out")], env=env, cwd=work, capture_output=True,
                       text=True)
    check(r.returncode == 0, "build/moss runs it with no MOSS_PLUGIN_PATH: %s" % r.stderr.strip())
    y0 = np.load(os.path.join(work, "out", "output_0.npy")) if r.returncode == 0 else None

    def good_run(res, where, what):
        ok = res["status"] == 0 and res["mapped"] == [os.path.join(where, LIB)]
        check(ok, "%s: loads %s (status %d, mapped %s) %s"
              % (what, os.path.join(where, LIB), res["status"], res["mapped"], res["text"]))
        if ok:
            ys = np.array(res["y"])
            acc = float(np.mean(ys.argmax(axis=1) == y_test[:64]))
            check(acc >= 0.9, "%s: accuracy %.3f on the first 64 digits (torch: 0.973)"
                  % (what, acc))
            check(y0 is not None and np.array_equal(ys[0], y0.reshape(-1)),
                  "%s: the same output as `moss run`" % what)

    # Side by side: the product's folder holds the app's model and the plugin.
    side = tempfile.mkdtemp(prefix="side-", dir=work)
    shutil.copy(bundle, os.path.join(side, "model.moss"))
    shutil.copy(os.path.join(pdir, LIB), side)
    good_run(open_in_child(runtime, os.path.join(side, "model.moss")), side,
             "build/runtime/libmossrt.so, the library beside the bundle")
    alone = tempfile.mkdtemp(prefix="alone-", dir=work)
    shutil.copy(bundle, os.path.join(alone, "model.moss"))
    good_run(open_in_child(runtime, os.path.join(alone, "model.moss")), pdir,
             "build/runtime/libmossrt.so, the bundle alone: the build tree's plugin folder")

    # A libmossrt.so far from any build: PREFIX/lib/libmossrt.so.
    # (a short path: the message must fit mossrt_error's 512 bytes)
    prefix = tempfile.mkdtemp(prefix="moss-ps-")
    os.makedirs(os.path.join(prefix, "lib"))
    os.makedirs(os.path.join(prefix, "app"))
    rt = os.path.join(prefix, "lib", "libmossrt.so")
    shutil.copy(os.path.realpath(runtime), rt)
    app_bundle = os.path.join(prefix, "app", "model.moss")
    shutil.copy(bundle, app_bundle)
    res = open_in_child(rt, app_bundle)
    text = res["text"]
    check(res["status"] == 7 and not res["mapped"],
          "nowhere to be found: MOSSRT_E_DEVICE (status %d)" % res["status"])
    check(text.startswith(app_bundle + ": target: plugin 'npu-systolic' (%s): not found" % LIB),
          "the message names the bundle, the plugin and its library: %s" % text)
    for want in ("(set MOSS_PLUGIN_PATH or mossrt_options.plugin_dir to its folder)",
                 "looked in the system's library path and in: "):
        check(want in text, "the message says %r" % want)
    folders = text.split(" and in: ", 1)[-1].split(", ")
    for want in (os.path.join(prefix, "app"),
                 os.path.join(prefix, "lib", "moss", "plugins", "npu-systolic"),
                 os.path.join(prefix, "plugins", "npu-systolic")):
        check(want in folders, "the message names the folder %s" % want)
    res = open_in_child(rt, app_bundle, memory=True)
    check(res["status"] == 7 and os.path.join(prefix, "app") + "," not in res["text"] and
          res["text"].startswith("<memory>: target: "),
          "from memory: no bundle folder to look in: %s" % res["text"])
    good_run(open_in_child(rt, app_bundle, env_extra={"MOSS_PLUGIN_PATH": "/nonexistent:" + side}),
             side, "PREFIX/lib/libmossrt.so, MOSS_PLUGIN_PATH")
    inst = os.path.join(prefix, "lib", "moss", "plugins", "npu-systolic")
    os.makedirs(inst)
    shutil.copy(os.path.join(pdir, LIB), inst)
    good_run(open_in_child(rt, app_bundle), inst,
             "PREFIX/lib/libmossrt.so, the installed layout PREFIX/lib/moss/plugins/npu-systolic")

    if FAILED:
        sys.exit("%d checks failed (files kept in %s and %s)" % (len(FAILED), work, prefix))
    shutil.rmtree(prefix)
    print("ok: the plugin library recorded by file name and found in each place")


if __name__ == "__main__":
    main()
