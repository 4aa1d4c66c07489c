#!/usr/bin/python3
"""Hermetic, cacheable compiles: `moss compile --cache-key` and --depfile.

Two build trees in different folders (different names and depths, one with
a space, '#' and '$' in its path, run from different working folders with
different relative paths and TMPDIRs) hold the same model, a
target XML that inherits another, and calibration data. For each form
(bundle float, --prune, --quantize int8, --emit c, --emit obj, and a plugin
target when the npu-systolic plugin is built: each tree holds its own copy
of the plugin library beside its XML, and the bundle names the library by
file name only) the test requires:
  - the two trees' cache keys equal, and their artifacts byte-identical
    (every file of the output: .moss, .c/.h/.o, .manifest, the --report JSON);
    the float and int8 bundles are built with MOSS_CFLAGS='-O2 -g', whose
    debug information would name the temporary and the working folder if
    nothing mapped them away;
  - -o and -q leave the key alone; changing one byte of the model, of the
    inherited XML, of one calibration file, or one flag changes it;
  - --cache-key writes nothing;
  - --depfile lists exactly the files read: the model (and its external
    data), both XMLs of the inherit chain, the schema, each calibration
    file, the plugin library and its XML, as absolute paths; OUTPUT is the
    main output as given; GNU make reads it (names with spaces, '#' and '$'),
    calls the output up to date, and out of date once the inherited XML is
    touched;
  - a model with external data: the data file is listed, and counts.
  test_hermetic.py --moss build/moss
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.normpath(os.path.join(HERE, "..", ".."))
DIGITS = os.path.join(HERE, "digits")
FAILED = []


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("FAIL:", what)


def moss(args, cwd, tmp, env_extra=None):
    env = dict(os.environ, TMPDIR=tmp)
    env.update(env_extra or {})
    r = subprocess.run([ARGS.moss, "compile"] + args, cwd=cwd, env=env, capture_output=True,
                       text=True)
    if r.returncode != 0:
        sys.exit("moss %s (in %s) failed: %s" % (" ".join(args), cwd, r.stderr))
    return r.stdout


def tree_files(root):
    """Every file under |root| (a file or folder): relative name -> bytes."""
    if os.path.isfile(root):
        return {"": open(root, "rb").read()}
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = open(p, "rb").read()
    return out


def make_tree(root, plugin_xml):
    """The inputs of one build tree under |root|."""
    os.makedirs(os.path.join(root, "cal"))
    os.makedirs(os.path.join(root, "tmp"))
    os.makedirs(os.path.join(root, "run"))
    shutil.copy(os.path.join(DIGITS, "mlp.onnx"), root)
    chip = open(os.path.join(SRC, "targets", "c99.xml")).read()
    chip = chip.replace('name="c99"', 'name="cchip"', 1)
    open(os.path.join(root, "cchip.xml"), "w").write(chip)
    open(os.path.join(root, "cboard.xml"), "w").write(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<target name="cboard" vendor="test" inherit="cchip">\n'
        '  <description>a board of the hermetic test</description>\n'
        '</target>\n')
    x = np.load(os.path.join(DIGITS, "x_test_mlp.npy")).astype(np.float32)
    np.save(os.path.join(root, "cal", "a.npy"), x[:16])
    np.save(os.path.join(root, "cal", "b.npy"), x[16:32])
    if plugin_xml:  # each tree its own copy of the plugin, beside its XML (plugin= relative)
        shutil.copy(plugin_xml, os.path.join(root, "npu.xml"))
        shutil.copy(os.path.join(os.path.dirname(plugin_xml), "libmoss-npu-systolic.so"), root)


def read_depfile(path):
    """OUTPUT and its prerequisites, unescaped as GNU make reads them."""
    text = open(path).read().replace("\\\n", " ")
    toks, cur, i = [], "", 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in " #":
            cur += text[i + 1]
            i += 2
            continue
        if c == "$" and text[i + 1:i + 2] == "$":
            cur += "$"
            i += 2
            continue
        if c in " \n":
            if cur:
                toks.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    if cur:
        toks.append(cur)
    check(toks and toks[0].endswith(":"), "depfile %s: starts with OUTPUT:" % path)
    return toks[0][:-1], toks[1:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    global ARGS
    ARGS = ap.parse_args()
    ARGS.moss = os.path.abspath(ARGS.moss)
    plugin_xml = os.path.join(os.path.dirname(ARGS.moss), "plugins", "npu-systolic",
                              "npu-systolic-8x8.xml")
    if not os.path.exists(plugin_xml):
        print("no npu-systolic plugin built: its form is skipped")
        plugin_xml = None
    base = tempfile.mkdtemp(prefix="moss-hermetic-")
    # Tree A: run in its root with relative paths. Tree B: deeper, with a
    # space, '#' and '$' in its name, run from a subfolder with ../ paths.
    a = os.path.join(base, "alpha")
    b = os.path.join(base, "somewhere else", "tree #2 $x")
    make_tree(a, plugin_xml)
    make_tree(b, plugin_xml)
    trees = [(a, a, ""), (b, os.path.join(b, "run"), "../")]
    forms = [
        ("float", ["--target", "{p}cboard.xml"], "bundle"),
        ("prune", ["--target", "{p}cboard.xml", "--prune", "magnitude:0.5"], "bundle"),
        ("int8", ["--target", "{p}cboard.xml", "--quantize", "int8", "--calibration", "{p}cal"],
         "bundle"),
        ("c", ["--target", "{p}cboard.xml", "--emit", "c"], "c"),
        ("c-int8", ["--target", "{p}cboard.xml", "--emit", "c", "--quantize", "int8",
                    "--calibration", "{p}cal"], "c"),
        ("obj", ["--target", "x86_64-avx2", "--emit", "obj"], "obj"),
    ]
    if plugin_xml:
        forms.append(("npu", ["--target", "{p}npu.xml", "--quantize", "int8", "--calibration",
                              "{p}cal"], "bundle"))

    def args_of(form, p):
        return ["{p}mlp.onnx".format(p=p), "--input-shape", "input=1x64"] + \
            [s.format(p=p) for s in form[1]]

    for form in forms:
        name, emit = form[0], form[2]
        keys, outs = [], []
        for root, cwd, p in trees:
            tmp = os.path.join(root, "tmp")
            out = p + ("out-%s.moss" % name if emit == "bundle" else "out-%s" % name)
            args = args_of(form, p)
            before = sorted(os.listdir(cwd))
            env = {"MOSS_CFLAGS": "-O2 -g"} if name in ("float", "int8") else None
            key = moss(args + ["-o", out, "--cache-key"], cwd, tmp, env).strip()
            check(re.fullmatch(r"[0-9a-f]{64}", key) is not None, "%s: key %r" % (name, key))
            check(sorted(os.listdir(cwd)) == before and not os.listdir(tmp),
                  "%s: --cache-key wrote something" % name)
            check(moss(args + ["-q", "--cache-key"], cwd, tmp, env).strip() == key,
                  "%s: -q or another -o changed the key" % name)
            dep = p + "dep-%s.d" % name
            extra = ["--report", p + "report-%s.json" % name] if emit == "bundle" else []
            moss(args + ["-q", "-o", out, "--depfile", dep] + extra, cwd, tmp, env)
            files = tree_files(os.path.join(cwd, out))
            if extra:
                files["report"] = open(os.path.join(cwd, extra[1]), "rb").read()
            keys.append(key)
            outs.append(files)
            check(not os.listdir(tmp), "%s: temporary files left in TMPDIR" % name)

            # The depfile: OUTPUT as given, every file read, absolute.
            target, deps = read_depfile(os.path.join(cwd, dep))
            main_out = out if emit == "bundle" else out + "/mlp." + ("o" if emit == "obj" else "c")
            check(target == main_out, "%s: depfile OUTPUT %r, want %r" % (name, target, main_out))
            check(all(os.path.isabs(d) and os.path.isfile(d) for d in deps),
                  "%s: depfile names a path that is not an absolute file: %s" % (name, deps))
            want = {os.path.join(root, "mlp.onnx")}
            if "cboard" in " ".join(args):
                want |= {os.path.join(root, "cboard.xml"), os.path.join(root, "cchip.xml")}
            if "--calibration" in args:
                want |= {os.path.join(root, "cal", "a.npy"), os.path.join(root, "cal", "b.npy"),
                         os.path.join(SRC, "targets", "host.xml")}
            if name == "obj":
                want.add(os.path.join(SRC, "targets", "x86_64-avx2.xml"))
            if name == "npu":
                want |= {os.path.join(root, "npu.xml"),
                         os.path.join(root, "libmoss-npu-systolic.so")}
            want.add(os.path.join(SRC, "targets", "moss-target.xsd"))
            got = {os.path.normpath(d) for d in deps}
            check(got == {os.path.normpath(w) for w in want},
                  "%s: depfile lists %s, want %s" % (name, sorted(got), sorted(want)))

            if name == "float":  # GNU make reads it, and sees what the inherit chain reached
                mk = os.path.join(cwd, "Makefile.dep")  # a recipe: else nothing is out of date
                open(mk, "w").write("include %s\n%%.moss:\n\t@true\n" % dep)
                r = subprocess.run(["make", "-q", "-f", mk], cwd=cwd, capture_output=True,
                                   text=True)
                check(r.returncode == 0, "make -q on the depfile: %d %s" % (r.returncode,
                                                                             r.stderr))
                st = os.stat(os.path.join(root, "cchip.xml"))
                os.utime(os.path.join(cwd, out), (st.st_atime - 10, st.st_mtime - 10))
                r = subprocess.run(["make", "-q", "-f", mk], cwd=cwd, capture_output=True,
                                   text=True)
                check(r.returncode == 1, "make -q after touching the inherited XML: %d %s"
                      % (r.returncode, r.stderr))
                os.remove(mk)
        check(keys[0] == keys[1], "%s: the two trees' keys differ" % name)
        check(outs[0].keys() == outs[1].keys(), "%s: different files %s / %s"
              % (name, sorted(outs[0]), sorted(outs[1])))
        for f in outs[0]:
            check(outs[0][f] == outs[1].get(f), "%s: %s differs between the trees" % (name, f))
        print("%-7s key %s, %d files identical" % (name, keys[0][:16], len(outs[0])))

    # One byte of each input, or one flag: a new key each time.
    root, cwd, p = trees[0][0], trees[0][1], ""
    tmp = os.path.join(root, "tmp")
    form = forms[2]  # int8: model, both XMLs and the calibration data all count
    key0 = moss(args_of(form, p) + ["--cache-key"], cwd, tmp).strip()

    def key_after(path, edit, args=None):
        data = open(path, "rb").read()
        open(path, "wb").write(edit(data))
        try:
            return moss(args or args_of(form, p) + ["--cache-key"], cwd, tmp).strip()
        finally:
            open(path, "wb").write(data)

    def model_edit(data):  # the last bit of the first weight
        raw = onnx.load_from_string(data).graph.initializer[0].raw_data
        check(len(raw) >= 4 and data.count(raw) == 1, "the model's first weight is raw data")
        i = data.index(raw)
        return data[:i] + bytes([data[i] ^ 1]) + data[i + 1:]

    def xml_edit(data):  # a figure of the inherited chip: 160 pJ per DRAM byte becomes 170
        i = data.index(b'energy-pj-per-byte="160"') + len(b'energy-pj-per-byte="1')
        return data[:i] + b"7" + data[i + 1:]

    def npy_edit(data):
        return data[:-4] + bytes([data[-4] ^ 1]) + data[-3:]

    changed = {
        "model": key_after(os.path.join(root, "mlp.onnx"), model_edit),
        "inherited XML": key_after(os.path.join(root, "cchip.xml"), xml_edit),
        "calibration file": key_after(os.path.join(root, "cal", "b.npy"), npy_edit),
        "--prune": moss(args_of(form, p) + ["--prune", "magnitude:0.25", "--cache-key"], cwd,
                        tmp).strip(),
        "--input-shape": moss([a.replace("1x64", "2x64") for a in args_of(form, p)] +
                              ["--cache-key"], cwd, tmp).strip(),
        "--name": moss(args_of(form, p) + ["--name", "other", "--cache-key"], cwd, tmp).strip(),
        "MOSS_CFLAGS": moss(args_of(form, p) + ["--cache-key"], cwd, tmp,
                            {"MOSS_CFLAGS": "-O1"}).strip(),
    }
    for what, key in changed.items():
        check(key != key0, "changing the %s left the key %s" % (what, key0))
    check(len(set(changed.values())) == len(changed), "two changes gave the same key")
    check(moss(args_of(form, p) + ["--cache-key"], cwd, tmp).strip() == key0,
          "the inputs restored, the key came back")

    # A model whose weights are external data: the data file is an input too.
    m = onnx.load(os.path.join(root, "mlp.onnx"))
    onnx.save(m, os.path.join(root, "ext.onnx"), save_as_external_data=True,
              all_tensors_to_one_file=True, location="ext.bin", size_threshold=0)
    ext_args = ["ext.onnx", "--input-shape", "input=1x64", "--target", "cboard.xml"]
    moss(ext_args + ["-q", "-o", "ext.moss", "--depfile", "ext.d"], cwd, tmp)
    _, deps = read_depfile(os.path.join(cwd, "ext.d"))
    check(os.path.join(root, "ext.bin") in deps, "the depfile lists the external data: %s" % deps)
    ext_key = moss(ext_args + ["--cache-key"], cwd, tmp).strip()
    check(key_after(os.path.join(root, "ext.bin"), npy_edit, ext_args + ["--cache-key"])
          != ext_key, "one byte of the external data changes the key")

    if FAILED:
        sys.exit("%d checks failed (files kept in %s)" % (len(FAILED), base))
    shutil.rmtree(base)
    print("ok: keys equal and artifacts byte-identical across trees; every input counts")


if __name__ == "__main__":
    main()
