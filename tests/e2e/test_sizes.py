#!/usr/bin/python3
"""Sizes against the target (issue 11): `moss compile` refuses a model whose
buffers, arena or weights do not fit the memory the target declares, names
the buffer, its size, the memory level and its size and the target file,
counts graph outputs, and refuses a size that overflows 64 bits as an
invalid model. The models are made here with onnx.helper; moss runs under
a 4 GiB address-space limit, so a refusal that came after allocating the
40 GB output could not pass. Expected figures: shapes x 4 bytes (float32);
memory sizes from targets/*.xml (x86_64-avx2 dram 17179869184, cortex-m7
sram 1048576 and flash 2097152, read-only)."""
import os
import resource
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FAILS = []


def save(path, nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, os.path.basename(path)[:-5], inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.save(m, path)


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def under_asan(moss):
    """AddressSanitizer reserves terabytes of shadow address space at start,
    so an address-space limit stops it before main(); its own allocator then
    still refuses absurd sizes, so a refusal must come from moss all the same."""
    r = subprocess.run(["ldd", moss], capture_output=True, text=True)
    return "libasan" in r.stdout


def compile_(moss, args):
    p = subprocess.run([moss, "compile"] + args, capture_output=True, text=True,
                       preexec_fn=None if under_asan(moss) else limit_memory, timeout=300)
    return p.returncode, p.stderr


def expect_refused(name, moss, args, category, *needles):
    out = args[args.index("-o") + 1]
    rc, err = compile_(moss, args)
    lines = [l for l in err.splitlines() if l and not l.startswith("moss: ")]
    problems = []
    if not 0 < rc < 128:
        problems.append("exit status %d" % rc)
    if os.path.exists(out):
        problems.append("%s was written" % out)
    if not any((": %s: " % category) in l for l in lines):
        problems.append("no '%s' error" % category)
    for n in needles:
        if not any(n in l for l in lines):
            problems.append("no line contains %r" % n)
    for l in lines:  # every message in the DESIGN.md shape, nothing internal
        if ": internal: " in l or not l.startswith(args[0] + ": "):
            problems.append("bad line %r" % l)
    if problems:
        FAILS.append(name)
        print("FAIL %s: %s\n%s" % (name, "; ".join(problems), err))
    else:
        print("ok   %s: %s" % (name, lines[0]))


def expect_ok(name, moss, args):
    rc, err = compile_(moss, args)
    if rc != 0:
        FAILS.append(name)
        print("FAIL %s: exit status %d\n%s" % (name, rc, err))
    else:
        print("ok   %s" % name)


def main():
    moss = sys.argv[sys.argv.index("--moss") + 1]
    with tempfile.TemporaryDirectory() as d:
        relu = os.path.join(d, "relu.onnx")
        # A Softmax after the Relu, not a second Relu: two elementwise nodes
        # would be one MossFused node (the chains pass), with no buffer 'y'.
        save(relu, [helper.make_node("Relu", ["input"], ["y"], name="relu0"),
                    helper.make_node("Softmax", ["y"], ["z"], name="soft1")],
             [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 64])],
             [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 64])])
        relu2 = os.path.join(d, "relu2.onnx")
        save(relu2, [helper.make_node("Relu", ["input"], ["z"], name="relu0")],
             [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", "M"])],
             [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", "M"])])
        mm = os.path.join(d, "mm.onnx")
        save(mm, [helper.make_node("MatMul", ["a", "b"], ["c"], name="mm")],
             [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 1]),
              helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, "N"])],
             [helper.make_tensor_value_info("c", TensorProto.FLOAT, ["N", "N"])])
        out = os.path.join(d, "out.moss")
        outc = os.path.join(d, "out.d")

        # 99999999999 x 64 float32 = 25599999999744 bytes (23.3 TiB): more
        # than any machine's DRAM, so the host (its DRAM measured) refuses it.
        expect_refused("huge --input-shape, host", moss,
                       [relu, "--input-shape", "input=99999999999x64", "-o", out], "target",
                       "target: graph input 'input': 25599999999744 bytes (23.3 TiB) do not fit "
                       "in memory level 'dram' of device 'cpu', which holds ",
                       "target 'host', ", "host.xml)",
                       "node 'relu0' (Relu): target: buffer 'y': 25599999999744 bytes",
                       "node 'soft1' (Softmax): target: graph output 'z': 25599999999744 bytes",
                       "target: the arena: 25599999999744 bytes")

        # MatMul [100000,1] x [1,100000]: the 100000 x 100000 float32 output
        # is 40000000000 bytes; the arena is empty (the output is the
        # caller's), which is why it used to pass.
        expect_refused("100000x100000 MatMul output, x86_64-avx2", moss,
                       [mm, "--input-shape", "a=100000x1", "--input-shape", "b=1x100000",
                        "--target", "x86_64-avx2", "-o", out], "target",
                       "node 'mm' (MatMul): target: graph output 'c': 40000000000 bytes (37.3 GiB) "
                       "do not fit in memory level 'dram' of device 'cpu', which holds "
                       "17179869184 bytes (16 GiB, estimate; target 'x86_64-avx2', ",
                       "x86_64-avx2.xml)")
        # 10^6 x 10^6 float32 = 4 TB: refused by the host's own DRAM.
        expect_refused("1000000x1000000 MatMul output, host", moss,
                       [mm, "--input-shape", "a=1000000x1", "--input-shape", "b=1x1000000",
                        "-o", out], "target",
                       "node 'mm' (MatMul): target: graph output 'c': 4000000000000 bytes",
                       "'dram' of device 'cpu'", "host.xml)")

        # 8192 x 64 float32 = 2097152 bytes: fine on the host, more than the
        # 1048576 bytes of cortex-m7's sram (its flash is read-only).
        expect_ok("2 MiB activations, host", moss,
                  [relu, "--input-shape", "input=8192x64", "-o", out])
        os.remove(out)
        expect_refused("2 MiB activations, cortex-m7", moss,
                       [relu, "--input-shape", "input=8192x64", "--target", "cortex-m7",
                        "--emit", "c", "-o", outc], "target",
                       "target: graph input 'input': 2097152 bytes (2 MiB) do not fit in memory "
                       "level 'sram' of device 'cpu', which holds 1048576 bytes (1 MiB, "
                       "datasheet; target 'cortex-m7', ", "cortex-m7.xml)",
                       "node 'relu0' (Relu): target: buffer 'y': 2097152 bytes")
        # Weights: x[1,1024] @ W[1024,300] is 1228800 bytes of weights: more
        # than sram, but they live in flash (2097152): it compiles. With
        # W[1024,600] (2457600 bytes) they fit nowhere.
        for cols, fits in ((300, True), (600, False)):
            w = np.zeros((1024, cols), np.float32)
            path = os.path.join(d, "fc%d.onnx" % cols)
            save(path, [helper.make_node("MatMul", ["x", "W"], ["y"], name="fc")],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1024])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cols])],
                 [numpy_helper.from_array(w, "W")])
            args = [path, "--target", "cortex-m7", "--emit", "c", "-o", outc + str(cols)]
            if fits:
                expect_ok("1.2 MB of weights in flash, cortex-m7", moss, args)
            else:
                expect_refused("2.4 MB of weights, cortex-m7", moss, args, "target",
                               "node 'fc' (MatMul): target: weight 'W': 2457600 bytes (2.34 MiB) "
                               "do not fit in memory level 'flash' of device 'cpu', which holds "
                               "2097152 bytes", "target: the weights: 2457600 bytes")

        # Sizes that overflow 64 bits: an invalid model, not a wrapped size.
        # 2^32 x 2^32 elements overflow int64; 2^61 x 1 float32 is 2^63 bytes.
        expect_refused("dimension product overflows", moss,
                       [relu2, "--input-shape", "input=4294967296x4294967296", "-o", out],
                       "invalid-model",
                       "invalid-model: graph input 'input' is float32[4294967296,4294967296]: "
                       "its size in bytes overflows 64 bits")
        expect_refused("byte size overflows", moss,
                       [relu2, "--input-shape", "input=2305843009213693952x1", "-o", out],
                       "invalid-model",
                       "invalid-model: graph input 'input' is float32[2305843009213693952,1]: "
                       "its size in bytes overflows 64 bits")
        # Inside the graph: Expand of x[1] to the constant shape [2^32, 2^32].
        ex = os.path.join(d, "expand.onnx")
        save(ex, [helper.make_node("Expand", ["x", "shape"], ["y"], name="ex")],
             [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
             [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
             [numpy_helper.from_array(np.array([1 << 32, 1 << 32], np.int64), "shape")])
        expect_refused("Expand output overflows", moss, [ex, "-o", out], "invalid-model",
                       "node 'ex' (Expand): invalid-model: output 'y' is "
                       "float32[4294967296,4294967296]: its size in bytes overflows 64 bits")
    if FAILS:
        print("%d failed: %s" % (len(FAILS), ", ".join(FAILS)))
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
