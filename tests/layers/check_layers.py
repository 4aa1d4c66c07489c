#!/usr/bin/python3
"""Holds the compiler's libraries to the layers of tests/layers/layers.txt.

    check_layers.py includes SOURCE_DIR BUILD_DIR
        Every '#include "..."' of every file of every layer (the sources the
        build compiles, from BUILD_DIR/compile_commands.json, and the headers
        in the layers' folders) is resolved the way the compiler does
        (next to the file, then along the include path) and must land in a
        layer the file's layer may use, in an external folder it may use, or
        on a line of exceptions.txt. Relative includes ("../../backends/c/
        cgen.h") are judged like any other: the include path cannot stop
        them, this can. Each library's include path must also reach no layer
        that layers.txt does not allow it.

    check_layers.py probe SOURCE_DIR BUILD_DIR
        The build itself refuses: for every library and every layer's probe
        header, preprocesses '#include "<bare name>"' with that library's
        own compile command, and expects it to compile exactly when
        layers.txt lets the library's layer use that layer.

Exit status 0 when everything holds, 1 otherwise (each problem on a line).
"""
import json
import os
import re
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def read_rules(src, build):
    layers, external = {}, {}
    with open(os.path.join(HERE, "layers.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            head, _, uses = line.partition(":")
            words, uses = head.split(), uses.split()
            if words[0] == "external":
                folder = words[1]
                if folder.startswith("@build/"):
                    folder = os.path.join(build, folder[len("@build/"):])
                else:
                    folder = os.path.join(src, folder)
                external[os.path.realpath(folder)] = set(uses)
                continue
            name, lib, probe, places = words[0], words[1], words[2], words[3:]
            layers[name] = {"lib": None if lib == "-" else lib, "probe": probe, "places": places,
                            "uses": set(uses)}
    for name, l in layers.items():
        for u in l["uses"]:
            if u not in layers:
                sys.exit("layers.txt: layer %s uses unknown layer %s" % (name, u))
    for name in layers:  # what a layer may include: itself and all it uses, transitively
        seen, todo = {name}, [name]
        while todo:
            for u in layers[todo.pop()]["uses"]:
                if u not in seen:
                    seen.add(u)
                    todo.append(u)
        layers[name]["closure"] = seen
    return layers, external


def read_exceptions():
    exc = set()
    with open(os.path.join(HERE, "exceptions.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if len(line) == 2:
                exc.add(tuple(line))
    return exc


def layer_of(rel, layers):
    """The layer of a repository path: a file entry first, else its folder."""
    for name, l in layers.items():
        if rel in l["places"]:
            return name
    folder = os.path.dirname(rel)
    for name, l in layers.items():
        if folder in l["places"]:
            return name
    return None


def read_commands(src, build, layers):
    """Per library of layers.txt: its sources and its compile command."""
    libs = {l["lib"]: name for name, l in layers.items() if l["lib"]}
    with open(os.path.join(build, "compile_commands.json")) as f:
        entries = json.load(f)
    out = {}
    for e in entries:
        args = shlex.split(e["command"])
        obj = args[args.index("-o") + 1] if "-o" in args else ""
        m = re.match(r"CMakeFiles/([A-Za-z0-9_]+)\.dir/", obj)
        if not m or m.group(1) not in libs:
            continue
        lib = out.setdefault(m.group(1), {"layer": libs[m.group(1)], "files": [], "args": args,
                                          "dir": e["directory"], "incs": []})
        lib["files"].append(os.path.realpath(e["file"]))
        if not lib["incs"]:
            i = 0
            while i < len(args):
                a = args[i]
                if a in ("-I", "-isystem", "-iquote"):
                    lib["incs"].append(os.path.realpath(os.path.join(e["directory"], args[i + 1])))
                    i += 1
                elif a.startswith("-I"):
                    lib["incs"].append(os.path.realpath(os.path.join(e["directory"], a[2:])))
                elif a.startswith("-isystem"):
                    lib["incs"].append(os.path.realpath(os.path.join(e["directory"], a[8:])))
                i += 1
    return out


def check_includes(src, build):
    layers, external = read_rules(src, build)
    exc = read_exceptions()
    libs = read_commands(src, build, layers)
    problems, used = [], set()
    rel = lambda p: os.path.relpath(p, src)
    missing = [l["lib"] for l in layers.values() if l["lib"] and l["lib"] not in libs]
    for m in missing:
        problems.append("%s: no such library in compile_commands.json (layers.txt names it)" % m)

    # 1. Each library's include path reaches only layers its layer may use.
    folder_layer = {}
    for name, l in layers.items():
        for p in l["places"]:
            if os.path.isdir(os.path.join(src, p)):
                folder_layer[os.path.realpath(os.path.join(src, p))] = name
    for lib, info in sorted(libs.items()):
        for d in info["incs"]:
            other = folder_layer.get(d)
            if other and other not in layers[info["layer"]]["closure"]:
                problems.append("%s (layer %s) has %s on its include path; layers.txt does not let "
                                "%s use %s" % (lib, info["layer"], rel(d), info["layer"], other))

    # 2. Every include of every file lands where its layer may reach.
    files = {}  # path -> (layer, include path used to resolve bare names)
    all_incs = []
    for lib, info in libs.items():
        all_incs += [d for d in info["incs"] if d not in all_incs]
        for f in info["files"]:
            files[f] = (info["layer"], info["incs"])
    for name, l in layers.items():
        for p in l["places"]:
            d = os.path.join(src, p)
            if not os.path.isdir(d):
                continue
            for fn in sorted(os.listdir(d)):
                f = os.path.realpath(os.path.join(d, fn))
                if fn.endswith((".h", ".def", ".c")) and f not in files:  # main.c: no library
                    files[f] = (layer_of(rel(f), layers) or name, all_incs)
    for f, (layer, incs) in sorted(files.items()):
        if not f.startswith(src + os.sep) or not os.path.isfile(f):  # gone since configure
            continue
        with open(f, errors="replace") as fh:
            text = fh.read()
        for inc in INCLUDE.findall(text):
            cands = [os.path.join(os.path.dirname(f), inc)] + [os.path.join(d, inc) for d in incs]
            hit = next((os.path.realpath(c) for c in cands if os.path.isfile(c)), None)
            if not hit:
                problems.append('%s: #include "%s" does not resolve' % (rel(f), inc))
                continue
            key = (rel(f), rel(hit))
            target_layer = layer_of(rel(hit), layers) if hit.startswith(src + os.sep) else None
            if target_layer:
                ok = target_layer in layers[layer]["closure"]
                what = "layer %s may not use layer %s" % (layer, target_layer)
            else:
                ext = external.get(os.path.dirname(hit))
                ok = ext is not None and layer in ext
                where = rel(os.path.dirname(hit))
                what = ("layer %s may not use %s" % (layer, where) if ext is not None
                        else "%s is in no layer and no external folder of layers.txt" % where)
            if ok:
                continue
            if key in exc:
                used.add(key)
                continue
            problems.append('%s: #include "%s" (%s): %s' % (key[0], inc, key[1], what))
    for key in sorted(exc - used):
        print("note: exceptions.txt: %s no longer includes %s; delete the line" % key)
    for p in problems:
        print("LAYERS: " + p)
    nfiles = sum(1 for f in files if f.startswith(src + os.sep))
    print("layers: %d libraries, %d files checked, %d known exceptions, %d problems"
          % (len(libs), nfiles, len(used), len(problems)))
    return 1 if problems else 0


def probe(src, build):
    layers, _ = read_rules(src, build)
    libs = read_commands(src, build, layers)
    problems, runs = [], 0
    for lib, info in sorted(libs.items()):
        args = list(info["args"])
        # The library's own command, preprocessing a probe from stdin instead.
        i = args.index("-o")
        del args[i:i + 2]
        if "-c" in args:
            i = args.index("-c")
            del args[i:i + 2]
        args = [a for a in args if not a.startswith("-Werror")]
        for other, l in sorted(layers.items()):
            header = os.path.basename(l["probe"])
            want = other in layers[info["layer"]]["closure"]
            code = '#include "%s"\n' % header
            r = subprocess.run(args + ["-E", "-o", os.devnull, "-x", "c", "-"], input=code,
                               text=True, cwd=info["dir"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
            runs += 1
            if (r.returncode == 0) != want:
                problems.append('%s (layer %s): #include "%s" (layer %s) %s, but layers.txt says '
                                'it %s' % (lib, info["layer"], header, other,
                                           "compiles" if r.returncode == 0 else "does not compile",
                                           "may" if want else "may not"))
    for p in problems:
        print("LAYERS: " + p)
    print("layers probe: %d includes tried, %d problems" % (runs, len(problems)))
    return 1 if problems else 0


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("includes", "probe"):
        sys.exit(__doc__)
    src, build = os.path.realpath(sys.argv[2]), os.path.realpath(sys.argv[3])
    return check_includes(src, build) if sys.argv[1] == "includes" else probe(src, build)


if __name__ == "__main__":
    sys.exit(main())
