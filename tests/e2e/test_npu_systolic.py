#!/usr/bin/python3
"""test_npu_systolic.py - int8 models on the npu-systolic plugin
(plugins/npu-systolic: a TPU-like int8 NPU whose runtime side is a
cycle-level simulator), for each of its three target files
(npu-systolic-32x32.xml, npu-systolic-32x32-lowsram.xml,
npu-systolic-8x8.xml, configured next to the library).

The reference is moss's CPU int8 path: the same model compiled for the
c99 target (the C backend's integer kernels, docs/numerics-int8.md). The
plugin receives moss's requantization multipliers (moss_plugin.h, ABI 2)
precisely so that it can be bit-exact with that path, so every output must
be identical (np.array_equal), not merely close. Models:

- tests/e2e/digits/cnn_qdq.onnx, cnn_qdq_pc.onnx, mlp_qdq.onnx (batch
  bound to 16 with --input-shape; rows of x_test_cnn.npy / x_test_mlp.npy,
  two batches each) and tests/e2e/ort_quant/cnn_qdq_pc_s8.onnx;
- the per-operator QDQ models of tests/e2e/test_qdq_ops.py (its models(),
  imported: conv, gemm, matmul, add, mul, pools, concat, tables...);
- an int8 MobileNetV2: bench/make_mobilenetv2.py writes the float model
  (about 14 MB, into the work folder, never committed), whose input is
  set here to SxS (--mnv2-size, default 96; the network ends in a global
  average pool, so every layer is kept, only the planes shrink), quantized
  by moss's own PTQ (--quantize int8, calibrated on 4 seeded random
  images). 96x96 rather than 224x224 keeps the test well under 4 minutes
  on 2 cores in a sanitizer build, where the simulator runs several times
  slower (about 55 M MACs per image instead of 300 M; the same layers,
  kernels and strides; bench/bench_npu.py runs 224x224).

Also checked:
- the ONNX node tests of the quantized operators (libonnx-testdata:
  test_qlinearconv, whose QLinearConv the NPU runs, and seven whose nodes
  it declines), every input but the first frozen with --constant: integer
  outputs equal to the test's expected ones and to the c99 build's;
- placement, from `moss compile --explain`: every QLinearConv and
  MossQGemm of the digits models and of MobileNetV2 (and the conv and gemm
  of the per-operator models) runs on device `npu`, and every node left on
  the CPU says why the plugin declined it ("npu declined: <reason>"), the
  float CNN's Conv and a QuantizeLinear among them;
- `moss run --profile` prints the device counters table with one row per
  layer the NPU ran, each with cycles > 0 (but layout ops, which alias
  their input inside a blob and run no command), and a step total whose MACs
  equal the hand count of the model's convolutions and matrix products
  (Cout*Hout*Wout*Cin/groups*kh*kw, M*K*N, from the ONNX shapes);
- through the plugin's own runtime side (ctypes on the library, in a
  child process; with the sanitizers' runtime preloaded when the library
  was built with them): each blob of the digits CNN loads and runs, its
  counters have one entry per layer, each convolution's and Gemm's MACs
  equal to the hand count; cut at every length and with its fields
  forged, a blob is refused by load() with a message or, where the
  forgery is still a valid stream, runs to an end; never a crash;
- a bundle whose NPU blob is corrupt (magic, section cut short; checksums
  repaired as a forger would) is refused by `moss run` with a message
  naming the plugin.

  test_npu_systolic.py --moss build/moss --plugin-dir build/plugins/npu-systolic
                       [--work DIR] [--mnv2-size 96]

Run by Debian's /usr/bin/python3 (numpy, onnx)."""
import argparse
import ctypes
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

from sanitize import sanitizer_preload
import time

import numpy as np
import onnx
from onnx import shape_inference

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DIGITS = os.path.join(HERE, "digits")
sys.path.insert(0, HERE)

VARIANTS = ["npu-systolic-32x32", "npu-systolic-32x32-lowsram", "npu-systolic-8x8"]
BATCH = 16
MAC_OPS = ("QLinearConv", "MossQGemm")
# A layout op inside a blob reuses its input's memory and runs no command:
# its counters may be all zero.
LAYOUT_OPS = ("Flatten", "Reshape", "Identity", "Squeeze", "Unsqueeze")
NODE_LINE = re.compile(r"^node (\d+) '(.*)' \((\w+)\) -> (\S+) \[[^\]]*\]: (.*)$", re.M)
BLOB_SECTION = 6  # MOSS_BUNDLE_SEC_BLOB, runtime/include/moss_bundle.h

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL " + msg, flush=True)


def run(cmd, env, ok=True):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if ok and p.returncode != 0:
        print("FAIL: %s\nexit %d\nstdout:\n%s\nstderr:\n%s" % (" ".join(cmd), p.returncode, p.stdout[-3000:],
                                                             p.stderr[-3000:]))
        sys.exit(1)
    return p


# ---- the models --------------------------------------------------------------------------------


class Case:
    """A model with its input bindings and its input batches.

    |feeds| is a list of runs, each a list of (input name, array)."""

    def __init__(self, name, path, feeds, shapes=(), extra=(), main_ops=MAC_OPS, need_main=True):
        self.name, self.path, self.feeds = name, path, feeds
        self.shapes = list(shapes)       # --input-shape NAME=DIMS
        self.extra = list(extra)         # more compile options (--quantize ...)
        self.main_ops = main_ops         # op types that must be on the npu
        self.need_main = need_main       # whether at least one node of main_ops must exist


def digits_cases():
    x_cnn = np.load(os.path.join(DIGITS, "x_test_cnn.npy")).astype(np.float32)
    x_mlp = np.load(os.path.join(DIGITS, "x_test_mlp.npy")).astype(np.float32)
    out = []
    for name, path in (("cnn_qdq", os.path.join(DIGITS, "cnn_qdq.onnx")),
                       ("cnn_qdq_pc", os.path.join(DIGITS, "cnn_qdq_pc.onnx")),
                       ("mlp_qdq", os.path.join(DIGITS, "mlp_qdq.onnx")),
                       ("ort_cnn_qdq_pc_s8", os.path.join(HERE, "ort_quant", "cnn_qdq_pc_s8.onnx"))):
        g = onnx.load(path).graph
        inp = g.input[0]
        dims = [d.dim_value if d.HasField("dim_value") else BATCH for d in inp.type.tensor_type.shape.dim]
        x = x_cnn if len(dims) == 4 else x_mlp
        if list(x.shape[1:]) != dims[1:]:
            raise SystemExit("FAIL %s: input %s is %s, the test data %s" % (path, inp.name, dims, x.shape))
        feeds = [[(inp.name, x[k * BATCH:(k + 1) * BATCH])] for k in range(2)]
        out.append(Case(name, path, feeds, shapes=["%s=%s" % (inp.name, "x".join(map(str, dims)))]))
    return out


def qdq_op_cases(work):
    """The per-operator models of test_qdq_ops.py, saved here. Only the conv
    and the gemm must be on the NPU; the placement of the others is printed."""
    import test_qdq_ops
    out = []
    for m in test_qdq_ops.models():
        path = os.path.join(work, "qdq_" + m.name + ".onnx")
        m.save(path)
        need = m.name in ("conv_relu_per_channel", "gemm_transb0_per_column")
        out.append(Case("qdq_" + m.name, path, [list(m.feeds.items())], need_main=need,
                        main_ops=MAC_OPS if need else ()))
    return out


NODE_DATA = "/usr/share/libonnx-testdata/data/node"
# The ONNX node tests of the quantized operators; every input but the first
# frozen with --constant (a weight must be a constant for the NPU), as a
# user would freeze a model's parameters. Only test_qlinearconv has a node
# the NPU takes (QLinearMatMul of two tensors, ConvInteger and MatMulInteger
# with their int32 outputs, and the float boundary are declined, each with
# its reason, which check_placement requires).
NODE_TESTS = ["test_qlinearconv", "test_qlinearmatmul_2D", "test_qlinearmatmul_3D",
              "test_basic_convinteger", "test_convinteger_with_padding", "test_matmulinteger",
              "test_quantizelinear", "test_dequantizelinear"]


def node_test_cases(work):
    """The quantized ONNX node tests, with their expected outputs in |c.expect|."""
    from onnx import numpy_helper
    out = []
    if not os.path.isdir(NODE_DATA):
        raise SystemExit("FAIL: no ONNX node tests in %s (libonnx-testdata)" % NODE_DATA)
    for t in NODE_TESTS:
        d = os.path.join(NODE_DATA, t)
        m = onnx.load(os.path.join(d, "model.onnx"))
        init = {i.name for i in m.graph.initializer}
        names = [i.name for i in m.graph.input if i.name not in init]
        ds = os.path.join(d, "test_data_set_0")
        arrays = []
        for k in range(len(names)):
            tp = onnx.TensorProto()
            with open(os.path.join(ds, "input_%d.pb" % k), "rb") as f:
                tp.ParseFromString(f.read())
            arrays.append(numpy_helper.to_array(tp))
        extra = []
        for k in range(1, len(names)):
            extra += ["--constant", "%s=%s" % (names[k], os.path.join(ds, "input_%d.pb" % k))]
        c = Case(t, os.path.join(d, "model.onnx"), [[(names[0], arrays[0])]], extra=extra,
                 main_ops=("QLinearConv",) if t == "test_qlinearconv" else (),
                 need_main=t == "test_qlinearconv")
        c.expect = []
        k = 0
        while os.path.exists(os.path.join(ds, "output_%d.pb" % k)):
            tp = onnx.TensorProto()
            with open(os.path.join(ds, "output_%d.pb" % k), "rb") as f:
                tp.ParseFromString(f.read())
            c.expect.append(numpy_helper.to_array(tp))
            k += 1
        out.append(c)
    return out


def mobilenet_case(work, size):
    """Float MobileNetV2 from bench/make_mobilenetv2.py at SxS, quantized by moss's PTQ."""
    full = os.path.join(work, "mobilenetv2_224.onnx")
    subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "make_mobilenetv2.py"), full], check=True,
                   capture_output=True)
    m = onnx.load(full)
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value = dims[3].dim_value = size
    path = os.path.join(work, "mobilenetv2_%d.onnx" % size)
    onnx.save(m, path)
    os.remove(full)
    rng = np.random.default_rng(11)
    calib = os.path.join(work, "mnv2_calib.npy")
    np.save(calib, rng.uniform(-2, 2, (4, 3, size, size)).astype(np.float32))
    x = rng.uniform(-2, 2, (1, 3, size, size)).astype(np.float32)
    return Case("mobilenetv2_%d" % size, path, [[("input", x)]],
                extra=["--quantize", "int8", "--calibration", calib])


# ---- hand counts -------------------------------------------------------------------------------


def hand_macs(path, shapes):
    """{node name: MACs} of every Conv, Gemm and MatMul of the ONNX model at
    |path| with the symbolic dimensions bound as in |shapes|, from ONNX's
    shape inference: Cout*Hout*Wout*Cin/groups*kh*kw (times the batch), and
    M*K*N."""
    m = onnx.load(path)
    for b in shapes:
        name, dims = b.split("=")
        for i in m.graph.input:
            if i.name == name:
                for d, v in zip(i.type.tensor_type.shape.dim, dims.split("x")):
                    d.Clear()
                    d.dim_value = int(v)
    m = shape_inference.infer_shapes(m)
    g = m.graph
    shape = {}
    for v in list(g.input) + list(g.value_info) + list(g.output):
        shape[v.name] = [d.dim_value for d in v.type.tensor_type.shape.dim]
    for t in g.initializer:
        shape[t.name] = list(t.dims)
    for n in g.node:  # Constant nodes: their value's shape
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    shape[n.output[0]] = list(a.t.dims)
    macs = {}
    for n in g.node:
        if n.op_type == "Conv":
            w, y = shape.get(n.input[1]), shape.get(n.output[0])
            if not w or not y or 0 in y:
                raise SystemExit("FAIL %s: no shape for Conv '%s'" % (path, n.name))
            # w = [Cout, Cin/groups, kh, kw], y = [B, Cout, Hout, Wout]
            macs[n.name] = int(np.prod(y)) * int(np.prod(w[1:]))
        elif n.op_type in ("Gemm", "MatMul"):
            a, y = shape.get(n.input[0]), shape.get(n.output[0])
            trans_a = any(at.name == "transA" and at.i for at in n.attribute)
            k = a[-2] if trans_a else a[-1]
            macs[n.name] = int(np.prod(y)) * k
    return macs


# ---- compile, run, compare ---------------------------------------------------------------------


def placement(text):
    """[(index, name, op, device, why)] from --explain."""
    return [(int(i), nm, op, dev, why) for i, nm, op, dev, why in NODE_LINE.findall(text)]


def compile_case(a, env, c, target, art, explain=False):
    cmd = [a.moss, "compile", c.path, "--target", target, "-o", art, "-q"] + c.extra
    for s in c.shapes:
        cmd += ["--input-shape", s]
    if explain:
        cmd.append("--explain")
    p = run(cmd, env)
    return p.stdout + p.stderr


def run_case(a, env, art, feed, work, tag, profile=False):
    """Outputs of one run (list of arrays), and the stdout of the run."""
    cmd = [a.moss, "run", art]
    for name, arr in feed:
        f = os.path.join(work, "%s_%s.npy" % (tag, re.sub(r"\W", "_", name)))
        np.save(f, arr)
        cmd += ["--input", "%s=%s" % (name, f)]
    od = os.path.join(work, tag + "_out")
    if profile:
        cmd.append("--profile")
    p = run(cmd + ["-o", od], env)
    outs, k = [], 0
    while os.path.exists(os.path.join(od, "output_%d.npy" % k)):
        outs.append(np.load(os.path.join(od, "output_%d.npy" % k)))
        k += 1
    return outs, p.stdout


def check_placement(c, variant, text):
    nodes = placement(text)
    if not nodes:
        fail("%s on %s: --explain lists no nodes:\n%s" % (c.name, variant, text))
        return 0, 0
    on_npu = [n for n in nodes if n[3] == "npu"]
    main = [n for n in nodes if n[2] in c.main_ops]
    if c.need_main and not main:
        fail("%s on %s: no %s node in --explain" % (c.name, variant, "/".join(c.main_ops)))
    for _, nm, op, dev, why in main:
        if dev != "npu":
            fail("%s on %s: %s '%s' placed on %s: %s" % (c.name, variant, op, nm, dev, why))
    for _, nm, op, dev, why in nodes:
        if dev != "npu" and not re.search(r"\(npu declined: [^)]*\S[^)]*\)", why):
            fail("%s on %s: node '%s' (%s) on %s without the plugin's reason: %s"
                 % (c.name, variant, nm, op, dev, why))
    return len(on_npu), len(nodes)


def check_outputs(c, variant, run_k, got, want):
    if len(got) != len(want) or not want:
        fail("%s on %s run %d: %d outputs, the c99 build gives %d" % (c.name, variant, run_k, len(got), len(want)))
        return
    for i, (g, w) in enumerate(zip(got, want)):
        if g.dtype != w.dtype or g.shape != w.shape or not np.array_equal(g, w):
            diff = "shape/dtype %s %s vs %s %s" % (g.dtype, g.shape, w.dtype, w.shape)
            if g.shape == w.shape:
                d = g.astype(np.float64) != w.astype(np.float64)
                diff = "%d of %d elements differ, max |diff| %g" % (
                    int(d.sum()), d.size, float(np.abs(g.astype(np.float64) - w.astype(np.float64)).max()))
            fail("%s on %s run %d output %d: not bit-identical to the c99 build: %s"
                 % (c.name, variant, run_k, i, diff))


# ---- the device counters of `moss run --profile` -----------------------------------------------

STEP_HEAD = re.compile(r"^  step (\d+) on (\S+), (\d+) layers at ([0-9.]+) MHz:$")
STEP_TOTAL = re.compile(r"^  step (\d+) total: (\d+) cycles \(([0-9.]+) us\), (\d+) MACs")
COUNTER_ROW = re.compile(r"^  (\S+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)%")


def parse_counters(text):
    """[dict(step, device, layers=[(layer, op, cycles, macs)], cycles, macs)] of the table."""
    if "device counters of the last run" not in text:
        return None
    steps, cur = [], None
    for line in text.splitlines():
        m = STEP_HEAD.match(line)
        if m:
            cur = dict(step=int(m.group(1)), device=m.group(2), n=int(m.group(3)), layers=[])
            steps.append(cur)
            continue
        m = STEP_TOTAL.match(line)
        if m and cur:
            cur["cycles"], cur["macs"] = int(m.group(2)), int(m.group(4))
            cur = None
            continue
        m = COUNTER_ROW.match(line)
        if m and cur and m.group(1) != "layer":
            cur["layers"].append((m.group(1), m.group(2), int(m.group(3)), int(m.group(7))))
    return steps


def check_profile(c, variant, text, npu_nodes, macs):
    """The table has one row per layer the NPU runs, with cycles; the MACs of
    the steps add up to the hand count of the layers on the NPU."""
    steps = parse_counters(text)
    if steps is None:
        fail("%s on %s: moss run --profile printed no device counters:\n%s" % (c.name, variant, text[-3000:]))
        return
    rows = [r for s in steps for r in s["layers"]]
    names = [r[0] for r in rows]
    want = [nm[:32] for _, nm, _, dev, _ in npu_nodes if dev == "npu"]
    if sorted(names) != sorted(want):
        fail("%s on %s: counter rows %s, the NPU's nodes %s" % (c.name, variant, names, want))
    for s in steps:
        if s["device"] != "npu" or len(s["layers"]) != s["n"] or "macs" not in s:
            fail("%s on %s: step %d of the counters: device %s, %d rows for %d layers, total %s"
                 % (c.name, variant, s["step"], s["device"], len(s["layers"]), s["n"], "macs" in s))
    checked = 0
    for layer, op, cyc, lmacs in rows:
        if cyc <= 0 and op not in LAYOUT_OPS:
            fail("%s on %s: layer %s (%s) ran %d cycles" % (c.name, variant, layer, op, cyc))
        # each layer's MACs column against its hand count (names cut to 32 columns)
        full = [nm for _, nm, _, dev, _ in npu_nodes if dev == "npu" and nm[:32] == layer]
        if len(full) == 1 and full[0] in macs:
            checked += 1
            if lmacs != macs[full[0]]:
                fail("%s on %s: layer %s counted %d MACs, hand count %d"
                     % (c.name, variant, layer, lmacs, macs[full[0]]))
    if any(nm in macs for _, nm, _, dev, _ in npu_nodes if dev == "npu") and checked == 0:
        fail("%s on %s: no layer's MACs could be matched to its hand count" % (c.name, variant))
    hand = sum(macs[nm] for _, nm, op, dev, _ in npu_nodes if dev == "npu" and nm in macs)
    got = sum(s.get("macs", 0) for s in steps)
    if hand == 0 or got != hand:
        fail("%s on %s: the counters' MACs %d, hand count of the NPU's convolutions and products %d"
             % (c.name, variant, got, hand))
    return got, sum(s.get("cycles", 0) for s in steps)


# ---- the bundle's blobs ------------------------------------------------------------------------


def npu_blobs(path):
    """[(section index, payload offset, payload bytes)] of the bundle's NPU blobs."""
    b = open(path, "rb").read()
    tab, cnt = struct.unpack_from("<QI", b, 24)
    out = []
    for i in range(cnt):
        kind, param, off, size, align, crc = struct.unpack_from("<IIQQII", b, tab + 32 * i)
        if kind == BLOB_SECTION and b[off:off + 4] == b"MNPU":
            out.append((i, off, b[off:off + size]))
    return out


def corrupt_bundle_checks(a, env, work, art, feed, variant):
    """A corrupt NPU blob in a bundle (checksums repaired) is refused by
    `moss run`, naming the plugin."""
    from test_forged_bundle import fix_crcs
    blobs = npu_blobs(art)
    if not blobs:
        fail("%s: the digits CNN's bundle has no NPU blob" % variant)
        return
    sec, off, data = blobs[0]
    orig = open(art, "rb").read()
    forgeries = []
    b = bytearray(orig)
    b[off] ^= 0xFF  # the blob's magic
    forgeries.append(("magic", b))
    b = bytearray(orig)
    tab = struct.unpack_from("<Q", b, 24)[0]
    struct.pack_into("<Q", b, tab + 32 * sec + 16, len(data) - 1)  # the section one byte short
    forgeries.append(("cut short", b))
    b = bytearray(orig)
    struct.pack_into("<I", b, off + 100, 0x7FFFFFFF)  # ncmds
    forgeries.append(("command count", b))
    for what, b in forgeries:
        fix_crcs(b)
        bad = os.path.join(work, "%s_forged.moss" % variant)
        with open(bad, "wb") as f:
            f.write(b)
        cmd = [a.moss, "run", bad]
        for name, arr in feed:
            f = os.path.join(work, "forged_in.npy")
            np.save(f, arr)
            cmd += ["--input", "%s=%s" % (name, f)]
        p = run(cmd + ["-o", os.path.join(work, "forged_out")], env, ok=False)
        if p.returncode != 1 or "plugin 'npu-systolic'" not in p.stderr or "load()" not in p.stderr:
            fail("%s: a bundle with its NPU blob's %s forged: exit %d, expected 1 and a load() refusal "
                 "naming plugin 'npu-systolic':\n%s" % (variant, what, p.returncode, p.stderr[-1500:]))
        else:
            msg = p.stderr.strip().splitlines()[-1]
            print("   %-26s forged blob (%s) refused: ...%s" % (variant, what, msg[msg.find("load()"):][:110]))


# ---- the plugin's runtime side, through ctypes (in a child process) ----------------------------


class Counters(ctypes.Structure):
    _fields_ = [("layer", ctypes.c_char_p), ("op_type", ctypes.c_char_p)] + [
        (n, ctypes.c_uint64) for n in ("cycles", "dma_cycles", "array_cycles", "vector_cycles", "stall_cycles",
                                       "macs", "peak_macs_per_cycle", "dram_read_bytes", "dram_write_bytes",
                                       "sram_read_bytes", "sram_write_bytes", "sram_peak_bytes")] + [
        ("clock_mhz", ctypes.c_double), ("energy_pj", ctypes.c_double)]


ERRCAP = 512
OPEN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_size_t)
LOAD = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64,
                        ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_size_t)
RUN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                       ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_size_t)
UNLOAD = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
CLOSE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
COUNTERS = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.POINTER(ctypes.POINTER(Counters)), ctypes.POINTER(ctypes.c_uint32),
                            ctypes.c_char_p, ctypes.c_size_t)


class Device(ctypes.Structure):
    _fields_ = [("abi_version", ctypes.c_uint32), ("struct_size", ctypes.c_uint32), ("name", ctypes.c_char_p),
                ("open", OPEN), ("load", LOAD), ("run", RUN), ("unload", UNLOAD), ("close", CLOSE),
                ("counters", COUNTERS)]


def blob_io_sizes(blob):
    """The host buffer sizes the blob's header states (plugins/npu-systolic/blob.h)."""
    ni, no = struct.unpack_from("<II", blob, 88)
    sizes = struct.unpack_from("<%dQ" % (ni + no), blob, 136)
    return list(sizes[:ni]), list(sizes[ni:])


class Plugin:
    def __init__(self, lib):
        self.lib = ctypes.CDLL(lib)
        get = self.lib.moss_plugin_device_get
        get.restype = ctypes.POINTER(Device)
        self.d = get().contents
        if self.d.abi_version != 2 or self.d.struct_size != ctypes.sizeof(Device) or not self.d.counters:
            raise SystemExit("FAIL: %s: device table abi %d, %d bytes, counters %s" % (
                lib, self.d.abi_version, self.d.struct_size, bool(self.d.counters)))
        self.dev = ctypes.c_void_p()
        err = ctypes.create_string_buffer(ERRCAP)
        if self.d.open(ctypes.byref(self.dev), err, ERRCAP) != 0:
            raise SystemExit("FAIL: %s: open(): %s" % (lib, err.value.decode()))

    def load(self, blob):
        """(program or None, message)"""
        buf = ctypes.create_string_buffer(bytes(blob), max(len(blob), 1))
        prog, err = ctypes.c_void_p(), ctypes.create_string_buffer(ERRCAP)
        rc = self.d.load(self.dev, ctypes.cast(buf, ctypes.c_void_p), len(blob), ctypes.byref(prog), err, ERRCAP)
        if rc != 0:
            return None, err.value.decode(errors="replace"), None
        return prog, "", buf  # the blob stays valid until unload()

    def run(self, prog, ins, outs):
        err = ctypes.create_string_buffer(ERRCAP)
        ia = (ctypes.c_void_p * max(len(ins), 1))(*[ctypes.cast(b, ctypes.c_void_p) for b in ins])
        oa = (ctypes.c_void_p * max(len(outs), 1))(*[ctypes.cast(b, ctypes.c_void_p) for b in outs])
        rc = self.d.run(self.dev, prog, ia, oa, err, ERRCAP)
        return rc, err.value.decode(errors="replace")

    def counters(self, prog):
        p, n, err = ctypes.POINTER(Counters)(), ctypes.c_uint32(), ctypes.create_string_buffer(ERRCAP)
        if self.d.counters(self.dev, prog, ctypes.byref(p), ctypes.byref(n), err, ERRCAP) != 0:
            return None, err.value.decode()
        return [p[i] for i in range(n.value)], ""

    def unload(self, prog):
        self.d.unload(self.dev, prog)

    def close(self):
        self.d.close(self.dev)


RUN_CAP = 16 << 20


def buffers(sizes, fill=0):
    return [ctypes.create_string_buffer(bytes([fill]) * s, max(s, 1)) for s in sizes]


def try_blob(pl, blob):
    """Loads |blob|; when accepted, runs it on zeroed buffers. Returns
    (accepted, problem or None)."""
    prog, msg, keep = pl.load(blob)
    if prog is None:
        return False, None if msg.strip() else "load() failed without a message"
    problem = None
    try:
        ins, outs = blob_io_sizes(blob)
    except struct.error:
        pl.unload(prog)
        return True, "load() accepted a blob too short for its own header"
    if sum(ins) + sum(outs) > RUN_CAP:  # a forged size: loaded, not run
        pl.unload(prog)
        return True, None
    rc, msg = pl.run(prog, buffers(ins), buffers(outs))
    if rc != 0 and not msg.strip():
        problem = "run() failed without a message"
    pl.unload(prog)
    del keep
    return True, problem


def child_device_checks(lib, spec_path):
    """Runs in a child process: the checks of the plugin's runtime side on
    the blobs listed in |spec_path| (JSON: [{path, layers: {name: MACs}}]).
    Prints one line per finding, 'FAIL ...', and a summary."""
    spec = json.load(open(spec_path))
    pl = Plugin(lib)
    bad = 0
    rng = np.random.default_rng(5)
    for item in spec:
        blob = open(item["path"], "rb").read()
        tag = os.path.basename(item["path"])
        prog, msg, keep = pl.load(blob)
        if prog is None:
            print("FAIL %s: load() refused a blob moss wrote: %s" % (tag, msg))
            bad += 1
            continue
        ins, outs = blob_io_sizes(blob)
        rc, msg = pl.run(prog, buffers(ins, 3), buffers(outs))
        cs, cmsg = pl.counters(prog)
        if rc != 0 or cs is None:
            print("FAIL %s: run(): %d %s; counters(): %s" % (tag, rc, msg, cmsg))
            bad += 1
        else:
            nlayers = struct.unpack_from("<I", blob, 96)[0]
            if len(cs) != nlayers:
                print("FAIL %s: %d counters for %d layers" % (tag, len(cs), nlayers))
                bad += 1
            for c in cs:
                name = c.layer.decode() if c.layer else None
                if name in item["layers"] and c.macs != item["layers"][name]:
                    print("FAIL %s: layer %s (%s) counted %d MACs, hand count %d"
                          % (tag, name, c.op_type.decode(), c.macs, item["layers"][name]))
                    bad += 1
                op = c.op_type.decode() if c.op_type else None
                if (c.cycles == 0 and op not in LAYOUT_OPS) or c.clock_mhz <= 0 or \
                        (name in item["layers"] and c.array_cycles == 0):
                    print("FAIL %s: layer %s: %d cycles, %d array cycles at %g MHz"
                          % (tag, name, c.cycles, c.array_cycles, c.clock_mhz))
                    bad += 1
                if c.peak_macs_per_cycle and c.macs > c.cycles * c.peak_macs_per_cycle:
                    print("FAIL %s: layer %s: %d MACs in %d cycles, over the peak of %d per cycle"
                          % (tag, name, c.macs, c.cycles, c.peak_macs_per_cycle))
                    bad += 1
            missing = set(item["layers"]) - set(c.layer.decode() for c in cs if c.layer)
            if missing:
                print("FAIL %s: no counters for %s" % (tag, sorted(missing)))
                bad += 1
        pl.unload(prog)
        del keep

        # Cut at every length: each refused with a message.
        tried = 0
        for n in list(range(0, min(len(blob), 512))) + list(range(512, len(blob), 97)) + [len(blob) - 1]:
            if n >= len(blob):
                continue
            acc, prob = try_blob(pl, blob[:n])
            tried += 1
            if acc or prob:
                print("FAIL %s: cut to %d of %d bytes: %s" % (tag, n, len(blob), prob or "load() accepted it"))
                bad += 1
                break
        acc, prob = try_blob(pl, blob + b"\0")
        if acc or prob:
            print("FAIL %s: a byte appended: %s" % (tag, prob or "load() accepted it"))
            bad += 1
        # Each header word and each word of the first commands forged; then
        # random bytes anywhere: refused with a message, or a stream that runs.
        ni, no = struct.unpack_from("<II", blob, 88)
        nl = struct.unpack_from("<I", blob, 96)[0]
        pos = 136 + 8 * (ni + no)
        for _ in range(nl):
            a_, b_ = struct.unpack_from("<II", blob, pos)
            pos += 8 + a_ + b_
        # (Not scratch_bytes, at 104: up to 4 GiB is valid, and each run
        # zeroes all of it, seconds per run: fuzz_npu_blob's -rss_limit_mb
        # watches that.)
        words = [k for k in range(0, 136, 4) if k not in (104, 108)]
        words += list(range(136, 136 + 8 * (ni + no), 4))
        words += [pos + 4 * k for k in range(min(32 * 16, (len(blob) - pos) // 4))]
        accepted = 0
        for off in words:
            for v in (0, 0xFFFFFFFF, 0x80000000, struct.unpack_from("<I", blob, off)[0] + 1):
                b = bytearray(blob)
                struct.pack_into("<I", b, off, v & 0xFFFFFFFF)
                acc, prob = try_blob(pl, bytes(b))
                accepted += acc
                tried += 1
                if prob:
                    print("FAIL %s: word at %d set to %#x: %s" % (tag, off, v, prob))
                    bad += 1
        for _ in range(200):
            b = bytearray(blob)
            for k in rng.integers(0, len(b), rng.integers(1, 5)):
                b[k] = int(rng.integers(0, 256))
            acc, prob = try_blob(pl, bytes(b))
            accepted += acc
            tried += 1
            if prob:
                print("FAIL %s: random bytes: %s" % (tag, prob))
                bad += 1
        print("   %s: %d forged or cut blobs, %d accepted and run, none crashed" % (tag, tried, accepted))
    pl.close()
    print("device checks: %d failure(s)" % bad)
    return 1 if bad else 0


def device_checks(a, work, env, items):
    spec = os.path.join(work, "device_spec.json")
    with open(spec, "w") as f:
        json.dump(items, f)
    lib = os.path.join(a.plugin_dir, "libmoss-npu-systolic.so")
    pre = sanitizer_preload(lib)
    cenv = dict(env)
    if pre is None:
        fail("%s is built with AddressSanitizer and no libasan.so was found to preload for ctypes" % lib)
        return
    if pre:
        cenv["LD_PRELOAD"] = pre
        cenv["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--device-child", lib, spec],
                       capture_output=True, text=True, env=cenv)
    sys.stdout.write(p.stdout)
    if p.returncode != 0:
        fail("the plugin's runtime side through ctypes: exit %d\n%s" % (p.returncode, p.stderr[-3000:]))


# ---- main --------------------------------------------------------------------------------------


def compare_variants(a, env, work, targets):
    """`moss compare` over the three machines on an int8 model (ONNX
    Runtime's quantized digits CNN, batch 16): every variant costed with
    complete figures from the plugin's own estimate; the 8x8 array (64 MACs
    per cycle at 800 MHz against 1024 at 1 GHz) slower than the 32x32; the
    page's trade-off chart one point per variant."""
    page = os.path.join(work, "compare.html")
    model = os.path.join(HERE, "ort_quant", "cnn_qdq_pc_s8.onnx")
    p = run([a.moss, "compare", model, "--input-shape", "input=%dx1x8x8" % BATCH, "--targets",
             ",".join(targets[v] for v in VARIANTS), "--report", page], env)
    rows = {}
    for line in p.stdout.splitlines():
        for v in VARIANTS:
            if re.match(r"^\S+\s+%s\s" % re.escape(targets[v]), line):
                rows[v] = line
    if sorted(rows) != sorted(VARIANTS) or any("?" in r.split()[0] or "failed" in r for r in rows.values()):
        fail("moss compare over the variants: rows %s\n%s" % (sorted(rows), p.stdout))
        return
    times = {}
    for v in VARIANTS:
        js = os.path.join(work, "cmp_%s.json" % v)
        run([a.moss, "compile", model, "--input-shape", "input=%dx1x8x8" % BATCH, "--target", targets[v],
             "-q", "-o", os.path.join(work, "cmp_%s.moss" % v), "--report", js], env)
        with open(js) as f:
            rep = json.load(f)
        times[v] = rep["total"]["time_s"]["value"]
        npu = [n for n in rep["nodes"] if n["device"] == "npu"]
        if not npu or any("own cost model" not in n["compute_cycles"]["source"] for n in npu):
            fail("%s: the report's NPU layers are not costed by the plugin's estimate" % v)
    if not times["npu-systolic-8x8"] > times["npu-systolic-32x32"]:
        fail("the 8x8 array is not slower than the 32x32 one: %s" % times)
    with open(page, encoding="utf-8") as f:
        text = f.read()
    points = re.findall(r"<circle [^>]*><title>([^<:]*):", text)
    if sorted(points) != sorted(targets[v] for v in VARIANTS):
        fail("the compare page's trade-off chart has points %s" % points)
    print("compare over the variants: %s" % ", ".join("%s %.3g us" % (v, times[v] * 1e6) for v in VARIANTS))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--device-child":
        return child_device_checks(sys.argv[2], sys.argv[3])
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    ap.add_argument("--plugin-dir", required=True, help="the folder of libmoss-npu-systolic.so and its targets")
    ap.add_argument("--work")
    ap.add_argument("--mnv2-size", type=int, default=96, help="MobileNetV2's input size (224: the real one)")
    a = ap.parse_args()
    a.moss = os.path.abspath(a.moss)
    a.plugin_dir = os.path.abspath(a.plugin_dir)
    work = a.work or tempfile.mkdtemp(prefix="moss-npu-")
    if os.path.isdir(work):
        shutil.rmtree(work)
    os.makedirs(work)
    env = dict(os.environ, MOSS_CACHE_DIR="off")
    env.setdefault("MOSS_TARGETS_DIR", os.path.join(ROOT, "targets"))
    targets = {v: os.path.join(a.plugin_dir, v + ".xml") for v in VARIANTS}
    for v, t in targets.items():
        if not os.path.exists(t):
            raise SystemExit("FAIL: no target file %s" % t)
    t0 = time.time()

    cases = (digits_cases() + node_test_cases(work) + qdq_op_cases(work) +
             [mobilenet_case(work, a.mnv2_size)])
    device_items = []
    for c in cases:
        ref_art = os.path.join(work, c.name + "_c99.moss")
        compile_case(a, env, c, "c99", ref_art)
        refs = [run_case(a, env, ref_art, feed, work, "%s_c99_%d" % (c.name, k))[0]
                for k, feed in enumerate(c.feeds)]
        summary = []
        for v in VARIANTS:
            art = os.path.join(work, "%s_%s.moss" % (c.name, v))
            text = compile_case(a, env, c, targets[v], art, explain=True)
            npu, total = check_placement(c, v, text)
            for k, feed in enumerate(c.feeds):
                got, _ = run_case(a, env, art, feed, work, "%s_%s_%d" % (c.name, v, k))
                check_outputs(c, v, k, got, refs[k])
                # a node test's integer outputs are the ONNX reference's, exactly
                for i, (g, e) in enumerate(zip(got, getattr(c, "expect", []))):
                    if e.dtype.kind in "iu" and (g.shape != e.shape or not np.array_equal(g, e)):
                        fail("%s on %s output %d: not the ONNX test's expected output" % (c.name, v, i))
            summary.append("%d/%d" % (npu, total))
            if c.name in ("cnn_qdq_pc", "mlp_qdq", "ort_cnn_qdq_pc_s8") or c.name.startswith("mobilenetv2"):
                macs = hand_macs(c.path, c.shapes)
                _, prof = run_case(a, env, art, c.feeds[0], work, "%s_%s_prof" % (c.name, v), profile=True)
                r = check_profile(c, v, prof, placement(text), macs)
                if r:
                    summary[-1] += " (%d MACs, %d cycles)" % r
            if c.name == "cnn_qdq_pc":
                for i, (_, _, data) in enumerate(npu_blobs(art)):
                    bp = os.path.join(work, "%s_%s_blob%d.bin" % (c.name, v, i))
                    with open(bp, "wb") as f:
                        f.write(data)
                    device_items.append(dict(path=bp, layers=hand_macs(c.path, c.shapes)))
                corrupt_bundle_checks(a, env, work, art, c.feeds[0], v)
        print("%-40s bit-exact with c99 on %s; nodes on the npu: %s" % (c.name, ", ".join(VARIANTS),
                                                                       ", ".join(summary)), flush=True)

    # A node the plugin declines says why: the float digits CNN's Conv (the
    # NPU is int8 only) and a quantized model's QuantizeLinear (float in).
    # (check_placement() above asks the same of every node left on the CPU.)
    for model, op in ((os.path.join(DIGITS, "cnn.onnx"), "Conv"),
                      (os.path.join(DIGITS, "cnn_qdq.onnx"), "QuantizeLinear")):
        c = Case("declined", model, [], shapes=["input=1x1x8x8"])
        text = compile_case(a, env, c, targets[VARIANTS[0]], os.path.join(work, "declined.moss"), explain=True)
        lines = [n for n in placement(text) if n[2] == op]
        if not lines or any(n[3] == "npu" or not re.search(r"npu declined: \S", n[4]) for n in lines):
            fail("%s: %s nodes must stay off the npu with the plugin's reason in --explain:\n%s"
                 % (model, op, text))
        else:
            print("declined with a reason: %s" % re.search(r"\(npu declined: [^)]*\)", lines[0][4]).group(0))

    compare_variants(a, env, work, targets)
    device_checks(a, work, env, device_items)
    print("%.1f s" % (time.time() - t0))
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("ok: %d models bit-exact with the c99 build on %d NPU variants" % (len(cases), len(VARIANTS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
