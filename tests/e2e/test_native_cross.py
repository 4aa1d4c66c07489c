#!/usr/bin/python3
"""Native code from the LLVM backend, for three architectures, run where it
belongs: `moss compile --emit obj` for x86_64-avx2 (run here), rpi5
(AArch64, run under qemu-aarch64) and riscv64-rvv (RISC-V 64 with the
vector extension, run under qemu-riscv64 at VLEN 256). Each object is linked
with tests/e2e/native/harness.c by the architecture's cross compiler (no
moss, no libmossrt, no loader of ours at run time); and each model is also
compiled to a bundle for the same CPU on the LLVM backend (with no C
compiler reachable) and run through libmossrt built for that architecture
from its sources (tests/e2e/native/bundle_runner.c), so libmossrt's own ELF
loader links the AArch64 and RISC-V objects under qemu. Both run on ONNX node
tests: an evenly spread subset of those the LLVM backend passes
(expected-llvm.txt) whose inputs and outputs are tensors, at least 100,
and the outputs are compared with the
stored references as the conformance runner does (float: |a-b| <= 1e-5 +
1e-4|b|; others exact). Also the digits models, against torch's logits, and
int8 convolutions (AArch64: on sdot) bit for bit against the C backend.

  test_native_cross.py --moss build/moss [--count N] [--arch aarch64,riscv64,x86_64]

Exit 77 only when a cross compiler or qemu-user is missing (CI installs
them: gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-riscv64-linux-gnu
libc6-dev-riscv64-cross qemu-user).
"""
import argparse
import concurrent.futures as cf
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
spec = importlib.util.spec_from_file_location("conf", os.path.join(ROOT, "tests", "conformance", "run_node_tests.py"))
conf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conf)
sys.path.insert(0, HERE)
import npref  # noqa: E402

NATIVE = os.path.join(HERE, "native")
# arch: (target for --emit obj, cross compiler, how to run, target whose CPU is on the LLVM backend
# for bundles)
ARCHES = {
    "x86_64": ("x86_64-avx2", "cc", [], os.path.join(NATIVE, "x86_64-avx2-llvm.xml")),
    "aarch64": ("rpi5", "aarch64-linux-gnu-gcc", ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"],
                os.path.join(NATIVE, "rpi5-llvm.xml")),
    "riscv64": (os.path.join(NATIVE, "riscv64-rvv-qemu.xml"), "riscv64-linux-gnu-gcc",
                ["qemu-riscv64", "-cpu", "rv64,v=true,vlen=256,vext_spec=v1.0", "-L", "/usr/riscv64-linux-gnu"],
                os.path.join(NATIVE, "riscv64-rvv-qemu.xml")),
}
# Bundles are compiled with no C compiler reachable: the LLVM backend must not need one.
NO_CC = dict(os.environ, CC="/nonexistent/cc", PATH="/usr/bin/nonexistent-only")


def sh(cmd, timeout=300, env=None):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def compile_obj(moss, model, target, out, constants=()):
    cmd = [moss, "compile", model, "--target", target, "--emit", "obj", "--name", "model", "-o", out, "-q"]
    for name, path in constants:
        cmd += ["--constant", "%s=%s" % (name, path)]
    return sh(cmd)


def arena_of(out):
    for line in open(os.path.join(out, "model.manifest")):
        if line.startswith("arena "):
            return int(line.split()[1])
    raise SystemExit("FAIL: no arena in %s" % out)


def output_elems(out):
    """The element count of each output as the manifest states it: for an
    output whose length the run decides, its bound (docs/dynamic-shapes.md),
    which is what its buffer must hold."""
    n = {}
    for line in open(os.path.join(out, "model.manifest")):
        f = line.split()
        if f and f[0] == "output":
            n[int(f[1])] = int(np.prod([int(d) for d in f[4:4 + int(f[3])]], dtype=np.int64))
    return n


def run_bundle(arch, runner, bundle, out, inputs, outputs):
    """Runs |bundle| through libmossrt built for |arch| (|runner|); returns the outputs."""
    qemu = ARCHES[arch][2]
    args = []
    for i, a in enumerate(inputs):
        path = os.path.join(out, "bin%d.bin" % i)
        np.ascontiguousarray(a).tofile(path)
        args.append(path)
    args.append("--")
    args += [os.path.join(out, "bout%d.bin" % i) for i in range(len(outputs))]
    p = sh(qemu + [runner, bundle] + args)
    if p.returncode != 0:
        return None, "bundle run failed (status %d): %s" % (p.returncode, conf.first_line(p.stderr))
    return [np.fromfile(os.path.join(out, "bout%d.bin" % i), dtype=dt).reshape(shape)
            for i, (dt, shape) in enumerate(outputs)], ""


def run_native(arch, harness, out, inputs, outputs):
    """Links harness + model.o for |arch| and runs it; returns the outputs as arrays
    (|outputs|: list of (dtype, shape))."""
    _, cc, qemu, _ = ARCHES[arch]
    prog = os.path.join(out, "prog")
    p = sh([cc, harness, os.path.join(out, "model.o"), "-lm", "-o", prog])
    if p.returncode != 0:
        return None, "link failed: " + conf.first_line(p.stderr)
    args = [str(arena_of(out))]
    for i, a in enumerate(inputs):
        path = os.path.join(out, "in%d.bin" % i)
        np.ascontiguousarray(a).tofile(path)
        args.append(path)
    args.append("--")
    elems = output_elems(out)
    for i, (dt, shape) in enumerate(outputs):
        n = max(elems.get(i, 0), int(np.prod(shape, dtype=np.int64)))
        args.append("%s:%d" % (os.path.join(out, "out%d.bin" % i), n * np.dtype(dt).itemsize))
    p = sh(qemu + [prog] + args)
    if p.returncode != 0:
        return None, "run failed (status %d): %s" % (p.returncode, conf.first_line(p.stderr))
    res = []
    for i, (dt, shape) in enumerate(outputs):  # a bounded output: compact, at the front
        a = np.fromfile(os.path.join(out, "out%d.bin" % i), dtype=dt)
        res.append(a[:int(np.prod(shape, dtype=np.int64))].reshape(shape))
    return res, ""


def tensor_io(test):
    """Whether every graph input and output of node test |test| is a
    tensor: the harness and the runner pass tensors (a test of sequences
    or optionals is left to the conformance runner, docs/sequences.md)."""
    import onnx
    g = onnx.load(os.path.join(conf.DATA, test, "model.onnx"), load_external_data=False).graph
    return all(v.type.WhichOneof("value") == "tensor_type" for v in list(g.input) + list(g.output))


def node_test(moss, arch, harness, runner, test, work):
    import onnx
    d = os.path.join(conf.DATA, test)
    model = os.path.join(d, "model.onnx")
    sets = sorted(glob.glob(os.path.join(d, "test_data_set_*")))
    m = onnx.load(model)
    inits = {i.name for i in m.graph.initializer}
    in_names = [i.name for i in m.graph.input if i.name not in inits]
    out = os.path.join(work, arch + "_" + test)
    frozen = []
    for _ in range(len(in_names) + 1):
        consts = [(n, os.path.join(sets[0], "input_%d.pb" % in_names.index(n))) for n in frozen]
        p = compile_obj(moss, model, ARCHES[arch][0], out, consts)
        if p.returncode == 0:
            break
        want = [n for n in re.findall(r"--constant (\S+)=FILE", p.stderr) if n in in_names and n not in frozen]
        if not want:
            return "compile failed: " + conf.first_line(p.stderr)
        frozen += want
    s = sets[0]
    inputs = [conf.load_pb(os.path.join(s, "input_%d.pb" % i)) for i, n in enumerate(in_names) if n not in frozen]
    refs = [conf.load_pb(o) for o in sorted(glob.glob(os.path.join(s, "output_*.pb")),
                                           key=lambda x: int(re.findall(r"(\d+)\.pb$", x)[0]))]
    got, why = run_native(arch, harness, out, inputs, [(r.dtype, r.shape) for r in refs])
    if got is None:
        return why
    for i, (g, r) in enumerate(zip(got, refs)):
        w = conf.compare(g, r)
        if w:
            return "output %d: %s" % (i, w)
    # The same as a bundle, through libmossrt and its ELF loader on |arch|.
    bundle = os.path.join(out, "model.moss")
    cmd = [moss, "compile", model, "--target", ARCHES[arch][3], "-o", bundle, "-q"]
    for n in frozen:
        cmd += ["--constant", "%s=%s" % (n, os.path.join(sets[0], "input_%d.pb" % in_names.index(n)))]
    p = sh(cmd, env=NO_CC)
    if p.returncode != 0:
        return "bundle compile failed: " + conf.first_line(p.stderr)
    got, why = run_bundle(arch, runner, bundle, out, inputs, [(r.dtype, r.shape) for r in refs])
    if got is None:
        return why
    for i, (g, r) in enumerate(zip(got, refs)):
        w = conf.compare(g, r)
        if w:
            return "bundle output %d: %s" % (i, w)
    shutil.rmtree(out, ignore_errors=True)
    return ""


def half_model(work):
    """float16 Add, Mul, Relu, Div and Sqrt, then Exp, and the inputs: the
    special values (infinities, the largest, subnormals, signed zeros),
    sums that overflow, and random values."""
    import onnx
    from onnx import TensorProto as TP, helper as H, numpy_helper as NH
    rng = np.random.default_rng(16)
    special = np.array([np.inf, -np.inf, 65504, -65504, 6e-8, -6e-8, 0.0, -0.0, 1e-5, 3.0e4, 4.0e4, -2.5e4],
                       np.float16)
    a = np.concatenate([special, (rng.standard_normal(116) * 50).astype(np.float16)])
    b = np.concatenate([special[::-1], (rng.standard_normal(116) * 3).astype(np.float16)])
    b[b == 0] = np.float16(0.5)
    c = (rng.standard_normal(128) * 4).astype(np.float16)
    nodes = [H.make_node("Add", ["a", "b"], ["s"]), H.make_node("Mul", ["s", "c"], ["m"]),
             H.make_node("Relu", ["m"], ["r"]), H.make_node("Div", ["r", "b"], ["d"]),
             H.make_node("Sqrt", ["r"], ["q"]), H.make_node("Sub", ["d", "q"], ["t"]),
             H.make_node("Exp", ["q"], ["e"])]
    g = H.make_graph(nodes, "half", [H.make_tensor_value_info("a", TP.FLOAT16, [128]),
                                     H.make_tensor_value_info("b", TP.FLOAT16, [128])],
                     [H.make_tensor_value_info(o, TP.FLOAT16, [128]) for o in ("t", "e")],
                     [NH.from_array(c, "c")])
    m = H.make_model(g, opset_imports=[H.make_opsetid("", 17)])
    m.ir_version = 8
    path = os.path.join(work, "half.onnx")
    onnx.save(m, path)
    with np.errstate(all="ignore"):  # numpy's float16 arithmetic: each operation rounded once
        s = a + b
        r = np.maximum(s * c, np.float16(0))
        q = np.sqrt(r)
        want = [(r / b) - q, np.exp(q.astype(np.float32)).astype(np.float16)]
    return path, [a, b], want


def half_native(moss, arch, harness, runner, work, model):
    """On a CPU with float16 instructions (the AArch64 targets list
    +fullfp16), the exactly rounded operators compute in float16 (passes/half.c):
    the code holds half-precision vector instructions and gives numpy's
    float16 results, as an object and as a bundle."""
    path, inputs, want = model
    out = os.path.join(work, arch + "_half")
    p = sh([moss, "compile", path, "--target", ARCHES[arch][0], "--emit", "obj", "--name", "model", "-o", out,
            "-q", "--dump-ir"])
    if p.returncode != 0:
        return ["compile: " + conf.first_line(p.stderr)]
    fails = []
    native = re.search(r"%s:float16\[128\][^=]*= Add\(%a, %b\)", p.stdout) is not None
    if arch == "aarch64":
        if not native:
            fails.append("Add does not read the float16 inputs itself: " + p.stdout[-400:])
        dis = sh(["llvm-objdump-19", "-d", os.path.join(out, "model.o")])
        for ins in ("fadd", "fmul", "fdiv", "fsqrt", "fsub"):
            if not re.search(r"\b%s\s+(v\d+\.[48]h|h\d+)" % ins, dis.stdout):
                fails.append("no float16 %s in the object" % ins)
    elif native:
        fails.append("float16 computed as such on a CPU without the instructions")
    got, why = run_native(arch, harness, out, inputs, [(w.dtype, w.shape) for w in want])
    if got is None:
        return fails + [why]
    fails += ["output %d: %s" % (i, w) for i, w in enumerate(conf.compare(g, r) for g, r in zip(got, want)) if w]
    bundle = os.path.join(out, "model.moss")
    p = sh([moss, "compile", path, "--target", ARCHES[arch][3], "-o", bundle, "-q"], env=NO_CC)
    if p.returncode != 0:
        return fails + ["bundle compile: " + conf.first_line(p.stderr)]
    got, why = run_bundle(arch, runner, bundle, out, inputs, [(w.dtype, w.shape) for w in want])
    if got is None:
        return fails + [why]
    fails += ["bundle output %d: %s" % (i, w) for i, w in enumerate(conf.compare(g, r) for g, r in zip(got, want))
              if w]
    return fails


def half_layers_model(work):
    """npref's Conv (3x3, pads 1, Relu) and Gemm (transB, bias) for
    --float16, and what each gives: computed in float16 (AArch64
    +fullfp16), numpy's float16 in the kernels' order (docs/kernel.md,
    "Half precision": the direct loops sum a row whose taps are all inside
    the image first); elsewhere in float32 between the roundings."""
    path = os.path.join(work, "half_layers.onnx")
    x, p16 = npref.half_layers_model(path, 61, 3, 6, 4, 5)
    return path, [x], npref.half_layers_f16(p16, row_sums=True), npref.half_layers_f32(p16)


def half_layers(moss, arch, harness, runner, work, model):
    """--float16 conv,fc: on AArch64 +fullfp16 the two layers read float16
    and compute in it, bit for bit the float16 order above, as an object
    and as a bundle; on x86-64 and RISC-V they compute in float32 between
    the roundings, within one float16 rounding of that reference."""
    path, inputs, want16, want32 = model
    out = os.path.join(work, arch + "_half_layers")
    p = sh([moss, "compile", path, "--target", ARCHES[arch][0], "--emit", "obj", "--name", "model", "-o", out,
            "-q", "--dump-ir", "--float16", "conv,fc"])
    if p.returncode != 0:
        return ["compile: " + conf.first_line(p.stderr)]
    fails = []
    native = [re.search(r":float16\[[0-9,]*\][^=]*= %s\[[^\n]*# '%s'" % (op, name), p.stdout) is not None
              for op, name in (("Conv", "conv"), ("Gemm", "fc"))]
    if arch == "aarch64":
        if not all(native):
            fails.append("Conv and Gemm do not compute in float16: " + p.stdout[-600:])
        dis = sh(["llvm-objdump-19", "-d", os.path.join(out, "model.o")])
        for ins in ("fadd", "fmul"):
            if not re.search(r"\b%s\s+(v\d+\.[48]h|h\d+)" % ins, dis.stdout):
                fails.append("no float16 %s in the object" % ins)
    elif any(native):
        fails.append("float16 layers computed as such on a CPU without the instructions")

    def check(got, what):
        if arch == "aarch64":
            if not np.array_equal(got, want16):
                fails.append("%s: %s, want numpy's float16 order %s" % (what, got.ravel(), want16.ravel()))
        elif not np.all(np.abs(got - want32) <= np.abs(want32) * 2.0 ** -10 + 2.0 ** -24):
            fails.append("%s: %s, want %s within one float16 rounding" % (what, got.ravel(), want32.ravel()))
    got, why = run_native(arch, harness, out, inputs, [(np.float32, (1, 5))])
    if got is None:
        return fails + [why]
    check(got[0], "object")
    bundle = os.path.join(out, "model.moss")
    p = sh([moss, "compile", path, "--target", ARCHES[arch][3], "-o", bundle, "-q", "--float16", "conv,fc"],
           env=NO_CC)
    if p.returncode != 0:
        return fails + ["bundle compile: " + conf.first_line(p.stderr)]
    got, why = run_bundle(arch, runner, bundle, out, inputs, [(np.float32, (1, 5))])
    if got is None:
        return fails + [why]
    check(got[0], "bundle")
    return fails


def c_reference(moss, model, shape, x, work):
    """moss's C backend on the host, image by image: the int8 reference the native
    code must equal bit for bit (DESIGN.md "Numerics": int8 identical across backends)."""
    out = os.path.join(work, "cref_" + os.path.basename(model))
    p = sh([moss, "compile", model, "--input-shape", shape, "--emit", "c", "--name", "model", "-o", out, "-q"])
    if p.returncode != 0:
        raise SystemExit("FAIL: %s does not compile to C: %s" % (model, p.stderr))
    refs = []
    for i in range(len(x)):
        np.save(os.path.join(out, "x.npy"), x[i:i + 1])
        p = sh([moss, "run", out, os.path.join(out, "x.npy"), "-o", os.path.join(out, "r")])
        if p.returncode != 0:
            raise SystemExit("FAIL: moss run %s: %s" % (out, p.stderr))
        refs.append(np.load(os.path.join(out, "r", "output_0.npy")))
    return np.concatenate(refs)


def digits(moss, arch, harness, work, cref):
    """The digits models, 20 test images each: the float ones against torch's
    logits, the QDQ (int8) ones bit for bit against the C backend."""
    dd = os.path.join(HERE, "digits")
    cases = [("mlp.onnx", "x_test_mlp.npy", "input=1x64"), ("cnn.onnx", "x_test_cnn.npy", "input=1x1x8x8"),
             ("mlp_qdq.onnx", "x_test_mlp.npy", "input=1x64"), ("cnn_qdq.onnx", "x_test_cnn.npy", "input=1x1x8x8"),
             ("cnn_qdq_pc.onnx", "x_test_cnn.npy", "input=1x1x8x8")]
    fails = []
    for model, xs, shape in cases:
        x = np.load(os.path.join(dd, xs)).astype(np.float32)[:20]
        if "qdq" in model:
            ref = cref[model]
        else:
            ref = np.load(os.path.join(dd, model.replace(".onnx", "_ref.npy")))[:20].astype(np.float32)
        out = os.path.join(work, arch + "_" + model)
        p = sh([moss, "compile", os.path.join(dd, model), "--input-shape", shape, "--target", ARCHES[arch][0],
                "--emit", "obj", "--name", "model", "-o", out, "-q"])
        if p.returncode != 0:
            fails.append("%s: %s" % (model, conf.first_line(p.stderr)))
            continue
        for i in range(len(x)):
            got, why = run_native(arch, harness, out, [x[i:i + 1]], [(ref.dtype, (1,) + ref.shape[1:])])
            if got is None:
                fails.append("%s image %d: %s" % (model, i, why))
                break
            w = conf.compare(got[0], ref[i:i + 1]) if "qdq" not in model else \
                ("" if np.array_equal(got[0], ref[i:i + 1]) else "differs from the C backend: %s vs %s" % (got[0], ref[i:i + 1]))
            if w:
                fails.append("%s image %d: %s" % (model, i, w))
                break
    return fails


# int8 convolutions on the implicit product of byte dot products: AArch64's
# sdot (DOT4S, rpi5 lists +dotprod); x86_64-avx2 has no VNNI, so there the
# byte products are widening multiplies (pmaddwd).
# uint8 and int8 inputs (the copy shifts uint8 by -128 for sdot, int8 by
# +128 for vpdpbusd), channels not a multiple of 4, stride, padding,
# dilation, a grid chunked through the cache; bit for bit against the C
# backend on this machine (tests/e2e/test_quant_ops.py checks that one
# against numpy).
Q8_CASES = [("u8_3x3", np.uint8, (1, 13, 20, 18), (24, 13, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), np.uint8),
            ("i8_3x3_s2", np.int8, (1, 5, 15, 13), (7, 5, 3, 3), (2, 2), (1, 0, 1, 2), (1, 1), np.int8),
            ("u8_1x1", np.uint8, (1, 32, 8, 8), (20, 32, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), np.int8),
            ("i8_dil2", np.int8, (1, 8, 11, 11), (9, 8, 3, 3), (1, 1), (2, 2, 2, 2), (2, 2), np.uint8),
            ("u8_chunked", np.uint8, (1, 8, 64, 64), (72, 8, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), np.uint8)]


def q8_model(work, case):
    import onnx
    from onnx import helper as H, numpy_helper as NH, TensorProto as TP
    name, xdt, xshape, wshape, s, p, dl, ydt = case
    rng = np.random.default_rng(len(name))
    info = np.iinfo(xdt)
    tp = {np.uint8: TP.UINT8, np.int8: TP.INT8}
    m = wshape[0]
    inits = [NH.from_array(np.array(np.float32(0.03)), "xs"), NH.from_array(np.array(xdt(info.min + 37)), "xz"),
             NH.from_array(rng.integers(-127, 128, wshape, dtype=np.int8), "w"),
             NH.from_array(rng.uniform(0.002, 0.01, m).astype(np.float32), "ws"),
             NH.from_array(np.zeros(m, np.int8), "wz"),
             NH.from_array(np.array(np.float32(0.03 * 0.006 * 600 * np.sqrt(np.prod(wshape[1:])))), "ys"),
             NH.from_array(np.array(ydt(5)), "yz"), NH.from_array(rng.integers(-3000, 3000, m, dtype=np.int32), "b")]
    node = H.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"], strides=list(s),
                       pads=list(p), dilations=list(dl), kernel_shape=list(wshape[2:]))
    oh = (xshape[2] + p[0] + p[2] - (wshape[2] - 1) * dl[0] - 1) // s[0] + 1
    ow = (xshape[3] + p[1] + p[3] - (wshape[3] - 1) * dl[1] - 1) // s[1] + 1
    yshape = (xshape[0], m, oh, ow)
    g = H.make_graph([node], name, [H.make_tensor_value_info("x", tp[xdt], xshape)],
                     [H.make_tensor_value_info("y", tp[ydt], yshape)], inits)
    model = H.make_model(g, opset_imports=[H.make_opsetid("", 10)])
    model.ir_version = 8
    d = os.path.join(work, "q8_" + name)
    os.makedirs(d, exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    x = rng.integers(info.min, info.max + 1, xshape, dtype=xdt)
    np.save(os.path.join(d, "x.npy"), x)
    return d, x, yshape, ydt


def int8_convs(moss, arch, harness, runner, work, cases):
    """Each case of |cases| (q8_model) on |arch| as an object and as a bundle,
    against the C backend's output on this machine."""
    fails = []
    for d, x, yshape, ydt in cases:
        model, name = os.path.join(d, "model.onnx"), os.path.basename(d)
        ref = os.path.join(d, "c")
        if not os.path.exists(os.path.join(d, "r", "output_0.npy")):
            p = sh([moss, "compile", model, "--emit", "c", "-o", ref, "-q"])
            p = p if p.returncode else sh([moss, "run", ref, os.path.join(d, "x.npy"), "-o", os.path.join(d, "r")])
            if p.returncode != 0:
                raise SystemExit("FAIL: %s on the C backend: %s" % (name, p.stderr))
        want = np.load(os.path.join(d, "r", "output_0.npy"))
        out = os.path.join(work, arch + "_" + name)
        p = compile_obj(moss, model, ARCHES[arch][0], out)
        if p.returncode != 0:
            fails.append("%s: %s" % (name, conf.first_line(p.stderr)))
            continue
        got, why = run_native(arch, harness, out, [x], [(ydt, yshape)])
        if got is not None and not np.array_equal(got[0], want):
            why = "object differs from the C backend in %d of %d" % (np.sum(got[0] != want), want.size)
        bundle = os.path.join(out, "model.moss")
        p = sh([moss, "compile", model, "--target", ARCHES[arch][3], "-o", bundle, "-q", "--dump-kernels"], env=NO_CC)
        if not why and p.returncode != 0:
            why = "bundle compile failed: " + conf.first_line(p.stderr)
        if not why and "int8 implicit product" not in p.stdout:
            why = "the bundle's kernel is not the implicit product of byte dot products"
        if not why and arch == "aarch64" and "dot4s(" not in p.stdout:
            why = "the bundle's kernel does not use sdot (dot4s)"
        if not why:
            got, why = run_bundle(arch, runner, bundle, out, [x], [(ydt, yshape)])
            if got is not None and not np.array_equal(got[0], want):
                why = "bundle differs from the C backend in %d of %d" % (np.sum(got[0] != want), want.size)
        if why:
            fails.append("%s: %s" % (name, why))
    return fails


# int8 MatMul by columns (MOSS_SPARSE=columns): the input gathered at the
# weight's kept columns, dot products in explicit vectors of one register's
# bytes (32 on x86_64-avx2, 16 on AArch64 and on RISC-V V here), the kept
# columns padded to whole vectors; 45 of 70 kept, so every architecture
# pads. Bit for bit against the dense C backend on this machine (which
# tests/e2e/test_sparse_int8.py checks against numpy).
def q8_columns_model(work):
    import onnx
    from onnx import helper as H, numpy_helper as NH, TensorProto as TP
    rng = np.random.default_rng(70)
    k, n = 70, 40
    w = rng.integers(-127, 128, (k, n), dtype=np.int8)
    w[rng.permutation(k)[:25]] = 0  # rows of B: columns of Wt = [N, K]
    inits = [NH.from_array(np.array(np.float32(0.02)), "xs"), NH.from_array(np.array(np.uint8(121)), "xz"),
             NH.from_array(w, "w"), NH.from_array(np.array(np.float32(0.004)), "ws"),
             NH.from_array(np.array(np.int8(0)), "wz"), NH.from_array(np.array(np.float32(0.5)), "ys"),
             NH.from_array(np.array(np.uint8(128)), "yz")]
    node = H.make_node("QLinearMatMul", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"])
    g = H.make_graph([node], "q8_columns", [H.make_tensor_value_info("x", TP.UINT8, (3, k))],
                     [H.make_tensor_value_info("y", TP.UINT8, (3, n))], inits)
    model = H.make_model(g, opset_imports=[H.make_opsetid("", 10)])
    model.ir_version = 8
    d = os.path.join(work, "q8_columns")
    os.makedirs(d, exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    x = rng.integers(0, 256, (3, k), dtype=np.uint8)
    np.save(os.path.join(d, "x.npy"), x)
    return d, x, (3, n)


def q8_columns(moss, arch, harness, runner, work, case):
    """|case| (q8_columns_model) on |arch| by columns, as an object and as a
    bundle, against the dense C backend's output on this machine."""
    d, x, yshape = case
    model = os.path.join(d, "model.onnx")
    cols = dict(os.environ, MOSS_SPARSE="columns")
    if not os.path.exists(os.path.join(d, "r", "output_0.npy")):
        p = sh([moss, "compile", model, "--emit", "c", "-o", os.path.join(d, "c"), "-q"],
               env=dict(os.environ, MOSS_SPARSE="off"))
        p = p if p.returncode else sh([moss, "run", os.path.join(d, "c"), os.path.join(d, "x.npy"), "-o",
                                       os.path.join(d, "r")])
        if p.returncode != 0:
            raise SystemExit("FAIL: q8_columns on the C backend: %s" % p.stderr)
    want = np.load(os.path.join(d, "r", "output_0.npy"))
    out = os.path.join(work, arch + "_q8_columns")
    p = sh([moss, "compile", model, "--target", ARCHES[arch][0], "--emit", "obj", "--name", "model", "-o", out,
            "-q"], env=cols)
    if p.returncode != 0:
        return ["object compile failed: " + conf.first_line(p.stderr)]
    got, why = run_native(arch, harness, out, [x], [(np.uint8, yshape)])
    if got is not None and not np.array_equal(got[0], want):
        why = "object differs from the C backend in %d of %d" % (np.sum(got[0] != want), want.size)
    bundle = os.path.join(out, "model.moss")
    env = dict(NO_CC, MOSS_SPARSE="columns")
    p = sh([moss, "compile", model, "--target", ARCHES[arch][3], "-o", bundle, "-q", "--dump-kernels"], env=env)
    if not why and p.returncode != 0:
        why = "bundle compile failed: " + conf.first_line(p.stderr)
    m = re.search(r"as columns, 45 of 70 columns kept, 40 x (\d+)", p.stdout)
    if not why and (not m or int(m.group(1)) % 16 or "hsum(" not in p.stdout):
        why = "the bundle's kernel is not the columns kernel in vectors, padded"
    if not why:
        got, why = run_bundle(arch, runner, bundle, out, [x], [(np.uint8, yshape)])
        if got is not None and not np.array_equal(got[0], want):
            why = "bundle differs from the C backend in %d of %d" % (np.sum(got[0] != want), want.size)
    return [why] if why else []


# Node tests a given qemu-user cannot run, with the reason; they run on the
# other architectures. Debian 12's qemu-riscv64 (7.2) aborts translating
# the RVV code of this one ("decode_save_opc: Assertion `ctx->insn_start !=
# NULL' failed", before any of it runs: QEMU's issue 1441 on vector
# instructions, fixed in QEMU 8.1).
QEMU_CANNOT = {("riscv64", "test_gridsample_reflection_padding"): "qemu-riscv64 7.2 aborts translating "
                                                                  "its RVV code (QEMU issue 1441)"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    ap.add_argument("--count", type=int, default=120)
    ap.add_argument("--arch", default="x86_64,aarch64,riscv64")
    ap.add_argument("--no-digits", action="store_true")
    a = ap.parse_args()
    moss = os.path.abspath(a.moss)
    arches = a.arch.split(",")
    for arch in arches:
        _, cc, qemu, _ = ARCHES[arch]
        for tool in [cc] + qemu[:1]:
            if not shutil.which(tool):
                print("SKIP: %s not installed" % tool)
                return 77
    conf.EXPECTED = conf.EXPECTED_LLVM
    passing = sorted(t for t, (st, _) in conf.read_expected().items() if st == "pass" and tensor_io(t))
    if len(passing) < a.count:
        print("FAIL: only %d node tests pass on the LLVM backend; want %d" % (len(passing), a.count))
        return 1
    step = len(passing) / a.count
    chosen = [passing[int(i * step)] for i in range(a.count)]
    work = tempfile.mkdtemp(prefix="moss-native-")
    failures = []
    cref = {}
    if not a.no_digits:
        dd = os.path.join(HERE, "digits")
        for model, xs, shape in (("mlp_qdq.onnx", "x_test_mlp.npy", "input=1x64"),
                                 ("cnn_qdq.onnx", "x_test_cnn.npy", "input=1x1x8x8"),
                                 ("cnn_qdq_pc.onnx", "x_test_cnn.npy", "input=1x1x8x8")):
            x = np.load(os.path.join(dd, xs)).astype(np.float32)[:20]
            cref[model] = c_reference(moss, os.path.join(dd, model), shape, x, work)
    q8 = [q8_model(work, c) for c in Q8_CASES]
    qc = q8_columns_model(work)
    hm = half_model(work)
    hl = half_layers_model(work)
    for arch in arches:
        _, cc, _, _ = ARCHES[arch]
        hobj = os.path.join(work, "harness_%s.o" % arch)
        p = sh([cc, "-O1", "-std=c11", "-c", os.path.join(NATIVE, "harness.c"), "-o", hobj])
        if p.returncode != 0:
            raise SystemExit("FAIL: harness does not build for %s: %s" % (arch, p.stderr))
        # libmossrt for |arch|, from its sources, with a small runner.
        runner = os.path.join(work, "runner_%s" % arch)
        rt = sorted(glob.glob(os.path.join(ROOT, "runtime", "src", "*", "*.c")))
        p = sh([cc, "-O1", "-std=gnu11", "-I" + os.path.join(ROOT, "runtime", "include"),
                "-I" + os.path.join(ROOT, "plugins", "include")] + rt +
               [os.path.join(NATIVE, "bundle_runner.c"), "-ldl", "-lm", "-o", runner])
        if p.returncode != 0:
            raise SystemExit("FAIL: libmossrt does not build for %s: %s" % (arch, p.stderr))
        for t in chosen:
            if (arch, t) in QEMU_CANNOT:
                print("%s %s: not run: %s" % (arch, t, QEMU_CANNOT[(arch, t)]))
        with cf.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
            futs = {ex.submit(node_test, moss, arch, hobj, runner, t, work): t for t in chosen
                    if (arch, t) not in QEMU_CANNOT}
            for f in cf.as_completed(futs):
                why = f.result()
                if why:
                    failures.append("%s %s: %s" % (arch, futs[f], why))
        if not a.no_digits:
            failures += ["%s digits %s" % (arch, w) for w in digits(moss, arch, hobj, work, cref)]
        failures += ["%s int8 conv %s" % (arch, w) for w in int8_convs(moss, arch, hobj, runner, work, q8)]
        failures += ["%s float16 %s" % (arch, w) for w in half_native(moss, arch, hobj, runner, work, hm)]
        failures += ["%s float16 layers %s" % (arch, w) for w in half_layers(moss, arch, hobj, runner, work, hl)]
        failures += ["%s int8 columns: %s" % (arch, w) for w in q8_columns(moss, arch, hobj, runner, work, qc)]
        print("%s: %d node tests%s, %d int8 convolutions, an int8 MatMul by columns, float16 arithmetic and float16 layers run as "
              "native code (objects and bundles)" % (arch, len(chosen), "" if a.no_digits else ", the digits models", len(q8)))
    shutil.rmtree(work, ignore_errors=True)
    for f in sorted(failures):
        print("FAIL", f)
    n = len(chosen) * len(arches) - len([1 for arch in arches for t in chosen if (arch, t) in QEMU_CANNOT])
    print("%d passed, %d failed" % (n - len([f for f in failures if "digits" not in f and "int8 conv" not in f
                                             and "int8 columns" not in f and "float16" not in f]),
                                    len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
