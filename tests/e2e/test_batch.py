#!/usr/bin/python3
"""Batches (issue 17 item 4, passes/batch.c, runtime/src/batch): a model whose
only open dimension is its batch axis compiles without --input-shape, planned
for batch 1, and `moss run`, `moss eval` and libmossrt's mossrt_run_batch run
any batch N over the slices of axis 0.
  - the digits MLP and CNN (symbolic batch, tests/e2e/digits): N = 1, 5 and
    the whole test set (450) give torch's logits (mlp_ref.npy / cnn_ref.npy,
    DESIGN.md float tolerance) as bundles and as --emit c; moss eval gives
    torch's accuracy (accuracy.txt);
  - a C program on libmossrt: mossrt_bundle_batched and mossrt_run_batch over
    N = 7 rows against torch's logits, and mossrt_run_batch refused on a
    bundle compiled with --input-shape;
  - models built here that mix the batch (Softmax over axis 0, ReduceMean
    over axis 0, Reshape to [-1], Transpose, BatchNormalization in training
    mode, CumSum over axis 0, a Shape read as data, a Reshape to a fixed
    [1, 4]) are refused naming the node and asking for --input-shape, and
    compile with it;
  - two batched inputs work (against numpy); a symbolic dimension other than
    axis 0 is refused as before; a wrong non-leading shape is a clear error.
  test_batch.py --moss build/moss --mossrt build/runtime/libmossrt.a
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "digits")
SRC = os.path.dirname(os.path.dirname(HERE))
FAILED = []


def check(cond, what):
    print("%s %s" % ("ok  " if cond else "FAIL", what))
    if not cond:
        FAILED.append(what)


def close(got, ref):
    return got.shape == ref.shape and bool(
        np.all(np.abs(got.astype(np.float64) - ref) <= 1e-5 + 1e-4 * np.abs(ref)))


def moss(a, *args, ok=True):
    p = subprocess.run([a.moss] + list(args), capture_output=True, text=True)
    if ok and p.returncode != 0:
        print(p.stderr)
        raise SystemExit("FAIL: moss %s" % " ".join(args))
    return p


def run(a, art, work, *inputs):
    out = os.path.join(work, "out")
    p = moss(a, "run", art, *inputs, "-o", out, ok=False)
    if p.returncode != 0:
        return None, p.stderr
    return np.load(os.path.join(out, "output_0.npy")), p.stderr


def digits(a, work):
    acc_ref = dict(l.split() for l in open(os.path.join(DATA, "accuracy.txt")))
    for m in ("mlp", "cnn"):
        x = np.load(os.path.join(DATA, "x_test_%s.npy" % m))
        ref = np.load(os.path.join(DATA, "%s_ref.npy" % m))
        model = os.path.join(DATA, m + ".onnx")
        bundle = os.path.join(work, m + ".moss")
        cdir = os.path.join(work, m + "_c")
        moss(a, "compile", model, "-o", bundle, "-q")  # no --input-shape
        moss(a, "compile", model, "--emit", "c", "-o", cdir, "-q")
        hdr = open(os.path.join(cdir, m + ".h")).read()
        check("#define %s_BATCH_AXIS 0" % m.upper() in hdr and "%s_IN0_DIMS 1," % m.upper() in hdr,
              "%s: --emit c header says %s_BATCH_AXIS 0, planned for batch 1" % (m, m.upper()))
        for n in (1, 5, len(x)):
            xp = os.path.join(work, "x_%s_%d.npy" % (m, n))
            np.save(xp, x[:n])
            for art, kind in ((bundle, "bundle"), (cdir, "--emit c")):
                got, err = run(a, art, work, xp)
                check(got is not None and close(got, ref[:n]),
                      "%s %s: moss run on N=%d gives torch's logits %s" % (m, kind, n,
                      "" if got is not None else err.strip()))
        p = moss(a, "eval", bundle, os.path.join(DATA, "x_test_%s.npy" % m),
                 os.path.join(DATA, "y_test.npy"))
        acc = float(p.stdout.split()[1])
        check(abs(acc - float(acc_ref[m])) < 1e-6,
              "%s: moss eval accuracy %.6f, torch %s" % (m, acc, acc_ref[m]))
        # a wrong non-leading shape: the error names the input and the shape it wants
        bad = os.path.join(work, "bad.npy")
        np.save(bad, np.zeros((3,) + tuple(d + 1 for d in x.shape[1:]), np.float32))
        got, err = run(a, bundle, work, bad)
        check(got is None and "holds float32[3," in err and "any length N >= 1 of axis 0" in err,
              "%s: a wrong non-leading shape is refused: %s" % (m, err.strip()))


C_PROG = r"""
#include <stdio.h>
#include <stdlib.h>
#include "mossrt.h"
/* argv: bundle, x.f32 (N rows), N, out.f32. Frees everything on every
 * path (the sanitizers' leak check runs it too). */
int main(int argc, char **argv) {
  mossrt_bundle *b = NULL; mossrt_session *s = NULL; mossrt_error e;
  mossrt_tensor_info ti, to;
  long n = argc > 3 ? atol(argv[3]) : 0;
  float *x = NULL, *y = NULL; FILE *f;
  int rc = 0;
  if (argc != 5 || mossrt_open_file(argv[1], &b, &e) != MOSSRT_OK) { puts(argc == 5 ? e.text : "usage"); return 2; }
  mossrt_input_info(b, 0, &ti); mossrt_output_info(b, 0, &to);
  printf("batched %d in0 dim0 %lld\n", mossrt_bundle_batched(b), (long long)ti.dims[0]);
  if (mossrt_session_create(b, NULL, 0, &s, &e) != MOSSRT_OK) { puts(e.text); rc = 2; goto done; }
  x = malloc(ti.nbytes * n); y = malloc(to.nbytes * n);
  f = fopen(argv[2], "rb");
  if (!f || !x || !y || fread(x, ti.nbytes, n, f) != (size_t)n) { if (f) fclose(f); rc = 3; goto done; }
  fclose(f);
  {
    const void *in[1]; void *out[1];
    in[0] = x; out[0] = y;
    if (mossrt_run_batch(s, (uint64_t)n, in, out, &e) != MOSSRT_OK) { printf("run_batch: %s\n", e.text); rc = 1; goto done; }
  }
  f = fopen(argv[4], "wb");
  if (!f) { rc = 3; goto done; }
  fwrite(y, to.nbytes, n, f);
  fclose(f);
done:
  mossrt_session_destroy(s); mossrt_close(b); free(x); free(y);
  return rc;
}
"""


def c_program(a, work):
    src = os.path.join(work, "batch.c")
    exe = os.path.join(work, "batch")
    open(src, "w").write(C_PROG)
    # A libmossrt built with the sanitizers (the ASan+UBSan suite) links
    # only into a program built with them: take them from MOSS_CFLAGS.
    san = [f for f in os.environ.get("MOSS_CFLAGS", "").split() if f.startswith("-fsanitize")]
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-I", os.path.join(SRC, "runtime", "include")]
                   + san + [src, a.mossrt, "-o", exe, "-ldl", "-lm", "-lpthread"], check=True)
    x = np.load(os.path.join(DATA, "x_test_cnn.npy"))[:7]
    ref = np.load(os.path.join(DATA, "cnn_ref.npy"))[:7]
    xf = os.path.join(work, "x7.f32")
    yf = os.path.join(work, "y7.f32")
    x.tofile(xf)
    bundle = os.path.join(work, "cnn.moss")
    p = subprocess.run([exe, bundle, xf, "7", yf], capture_output=True, text=True)
    got = np.fromfile(yf, np.float32).reshape(7, 10) if p.returncode == 0 else None
    check("batched 1 in0 dim0 1" in p.stdout and got is not None and close(got, ref),
          "C program: mossrt_run_batch over 7 rows gives torch's logits (%s)" % p.stdout.strip())
    # signed and batched: both header flags, the signature over both
    key = os.path.join(work, "key")
    moss(a, "keygen", key)
    signed = os.path.join(work, "cnn_signed.moss")
    moss(a, "compile", os.path.join(DATA, "cnn.onnx"), "--sign", key, "-o", signed, "-q")
    np.save(os.path.join(work, "x7.npy"), x)
    got, err = run(a, signed, work, os.path.join(work, "x7.npy"), "--public-key", key + ".pub")
    check(got is not None and close(got, ref), "a signed batched bundle runs N=7 with --public-key " + err.strip())
    fixed = os.path.join(work, "cnn_fixed.moss")
    moss(a, "compile", os.path.join(DATA, "cnn.onnx"), "--input-shape", "input=1x1x8x8", "-o", fixed, "-q")
    p = subprocess.run([exe, fixed, xf, "7", yf], capture_output=True, text=True)
    check(p.returncode == 1 and "batched 0" in p.stdout and "not batched" in p.stdout,
          "C program: a bundle compiled with --input-shape is not batched (%s)" % p.stdout.strip())


def save(work, name, nodes, inits=(), ins=None, opset=17):
    ins = ins or [h.make_tensor_value_info("x", T.FLOAT, ["N", 4])]
    outs = [h.make_tensor_value_info("y", T.FLOAT, None)]
    g = h.make_graph(nodes, name, ins, outs, initializer=list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)])
    path = os.path.join(work, name + ".onnx")
    onnx.save(m, path)
    return path


def mixing(a, work):
    ones = lambda n: h.make_tensor(n, T.FLOAT, [4], [1, 1, 1, 1])
    zeros = lambda n: h.make_tensor(n, T.FLOAT, [4], [0, 0, 0, 0])
    cases = [
        ("softmax0", "sm", "Softmax", [h.make_node("Softmax", ["x"], ["y"], name="sm", axis=0)], [], 17),
        ("softmax0_opset11", "sm", "Softmax", [h.make_node("Softmax", ["x"], ["y"], name="sm", axis=0)], [], 11),
        ("reducemean0", "rm", "ReduceMean",
         [h.make_node("ReduceMean", ["x"], ["m"], name="rm", axes=[0], keepdims=1),
          h.make_node("Sub", ["x", "m"], ["y"], name="sub")], [], 17),
        ("reshape_flat", "rs", "Reshape", [h.make_node("Reshape", ["x", "s"], ["y"], name="rs")],
         [h.make_tensor("s", T.INT64, [1], [-1])], 17),
        ("transpose", "tr", "Transpose", [h.make_node("Transpose", ["x"], ["y"], name="tr", perm=[1, 0])], [], 17),
        ("bn_training", "bn", "BatchNormalization",
         [h.make_node("BatchNormalization", ["x", "sc", "b", "mu", "var"], ["y"], name="bn", training_mode=1)],
         [ones("sc"), zeros("b"), zeros("mu"), ones("var")], 15),
        ("cumsum0", "cs", "CumSum", [h.make_node("CumSum", ["x", "ax"], ["y"], name="cs")],
         [h.make_tensor("ax", T.INT64, [], [0])], 17),
        ("shape_as_data", "div", "Div",
         [h.make_node("Shape", ["x"], ["s"], name="shp"),
          h.make_node("Cast", ["s"], ["sf"], name="c", to=T.FLOAT),
          h.make_node("Gather", ["sf", "i0"], ["n"], name="g", axis=0),
          h.make_node("Div", ["x", "n"], ["y"], name="div")],
         [h.make_tensor("i0", T.INT64, [], [0])], 17),
        # fine at batch 1, an error at batch 2: the message quotes it
        ("reshape_fixed", "rs", "Reshape", [h.make_node("Reshape", ["x", "s"], ["y"], name="rs")],
         [h.make_tensor("s", T.INT64, [2], [1, 4])], 17),
    ]
    for name, node, op, nodes, inits, opset in cases:
        path = save(work, name, nodes, inits, opset=opset)
        p = moss(a, "compile", path, "-o", os.path.join(work, name + ".moss"), "-q", ok=False)
        err = p.stderr
        check(p.returncode != 0 and "node '%s' (%s): invalid-model:" % (node, op) in err and
              "not batch-independent" in err and "--input-shape x=Nx4" in err,
              "%s refused, naming node '%s' and asking for --input-shape: %s" %
              (name, node, err.strip().splitlines()[0] if err.strip() else "(no message)"))
        bind = "x=1x4" if name == "reshape_fixed" else "x=3x4"
        p = moss(a, "compile", path, "--input-shape", bind, "-o", os.path.join(work, name + ".moss"),
                 "-q", ok=False)
        check(p.returncode == 0, "%s compiles with --input-shape %s %s" % (name, bind, p.stderr.strip()))

    # Batch-independent: Softmax over axis 1, and a Reshape to [N, -1] from the input's Shape.
    x = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    xp = os.path.join(work, "x6.npy")
    np.save(xp, x)
    path = save(work, "softmax1", [h.make_node("Softmax", ["x"], ["y"], name="sm", axis=1)])
    moss(a, "compile", path, "-o", os.path.join(work, "softmax1.moss"), "-q")
    got, err = run(a, os.path.join(work, "softmax1.moss"), work, xp)
    e = np.exp(x - x.max(1, keepdims=True))
    check(got is not None and close(got, e / e.sum(1, keepdims=True)), "Softmax axis 1 runs over N=6 " + err.strip())
    path = save(work, "reshape_rows",
                [h.make_node("Shape", ["x"], ["s"], name="shp"),
                 h.make_node("Gather", ["s", "i0"], ["n"], name="g", axis=0),
                 h.make_node("Concat", ["n", "m1"], ["ns"], name="cat", axis=0),
                 h.make_node("Reshape", ["x", "ns"], ["y"], name="rs")],
                [h.make_tensor("i0", T.INT64, [1], [0]), h.make_tensor("m1", T.INT64, [1], [-1])],
                ins=[h.make_tensor_value_info("x", T.FLOAT, ["N", 2, 2])])
    moss(a, "compile", path, "-o", os.path.join(work, "reshape_rows.moss"), "-q")
    xp3 = os.path.join(work, "x6_22.npy")
    np.save(xp3, x.reshape(6, 2, 2))
    got, err = run(a, os.path.join(work, "reshape_rows.moss"), work, xp3)
    check(got is not None and close(got, x), "Reshape(x, [Shape(x)[0], -1]) runs over N=6 " + err.strip())


def two_inputs(a, work):
    path = save(work, "two_in",
                [h.make_node("Mul", ["x", "z"], ["t"], name="mul"),
                 h.make_node("Add", ["t", "w"], ["y"], name="add")],
                [h.make_tensor("w", T.FLOAT, [4], [1, 2, 3, 4])],
                ins=[h.make_tensor_value_info("x", T.FLOAT, ["N", 4]),
                     h.make_tensor_value_info("z", T.FLOAT, ["B", 4])])
    rng = np.random.default_rng(2)
    x = rng.standard_normal((9, 4)).astype(np.float32)
    z = rng.standard_normal((9, 4)).astype(np.float32)
    np.save(os.path.join(work, "x9.npy"), x)
    np.save(os.path.join(work, "z9.npy"), z)
    np.save(os.path.join(work, "z8.npy"), z[:8])
    want = x * z + np.array([1, 2, 3, 4], np.float32)
    for emit in ("bundle", "c"):
        art = os.path.join(work, "two_in_" + emit)
        moss(a, "compile", path, "--emit", emit, "-o", art, "-q")
        got, err = run(a, art, work, "--input", "z=" + os.path.join(work, "z9.npy"),
                       "--input", "x=" + os.path.join(work, "x9.npy"))
        check(got is not None and close(got, want), "two batched inputs (%s) over N=9 %s" % (emit, err.strip()))
        got, err = run(a, art, work, os.path.join(work, "x9.npy"), os.path.join(work, "z8.npy"))
        check(got is None and "batch of 8" in err and "one of 9" in err,
              "two inputs of different batches refused (%s): %s" % (emit, err.strip()))


def not_axis0(a, work):
    path = save(work, "axis1", [h.make_node("Relu", ["x"], ["y"], name="r")],
                ins=[h.make_tensor_value_info("x", T.FLOAT, [1, "T"])])
    p = moss(a, "compile", path, "-o", os.path.join(work, "axis1.moss"), "-q", ok=False)
    check(p.returncode != 0 and "symbolic dimension 1 ('T'); bind it with --input-shape x=" in p.stderr,
          "a symbolic axis 1 is refused as before: %s" % p.stderr.strip())
    path = save(work, "mixed", [h.make_node("Add", ["x", "z"], ["y"], name="add")],
                ins=[h.make_tensor_value_info("x", T.FLOAT, ["N", 4]),
                     h.make_tensor_value_info("z", T.FLOAT, [1, 4])])
    p = moss(a, "compile", path, "-o", os.path.join(work, "mixed.moss"), "-q", ok=False)
    check(p.returncode != 0 and "symbolic dimension 0 ('N'); bind it with --input-shape x=" in p.stderr
          and "'z' has none" in p.stderr,
          "an input without an open axis 0 beside one with: refused as before: %s" % p.stderr.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moss", required=True)
    ap.add_argument("--mossrt", required=True, help="libmossrt.a")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        digits(a, work)
        c_program(a, work)
        mixing(a, work)
        two_inputs(a, work)
        not_axis0(a, work)
    if FAILED:
        print("%d FAILED" % len(FAILED))
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
