#!/usr/bin/python3
"""Writes the seed corpus of fuzz_npu_blob, tests/fuzz/corpus/npu_blob/
(committed; run again only to change it, e.g. when the npu-systolic blob
format changes): the npu-systolic plugin's blobs (the BLOB sections of
bundles, runtime/include/moss_bundle.h, whose payload starts with the
plugin's magic "MNPU", plugins/npu-systolic/blob.h) of small int8 models
compiled for each of the plugin's target files: the digits CNN and MLP
(batch 1) and ONNX Runtime's per-channel int8 CNN; and for the 8x8 array,
the per-operator QDQ models of tests/e2e/test_qdq_ops.py (conv, gemm,
pools, concat, tables...). Blobs over 64 KiB are left out to keep the
corpus small.

Usage: /usr/bin/python3 tests/fuzz/make_npu_corpus.py --moss build/moss \\
           --plugin-dir build/plugins/npu-systolic
"""
import argparse
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus", "npu_blob")
VARIANTS = ["npu-systolic-32x32", "npu-systolic-32x32-lowsram", "npu-systolic-8x8"]
MAX_BLOB = 64 << 10
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))


def blobs(path):
    b = open(path, "rb").read()
    tab, cnt = struct.unpack_from("<QI", b, 24)
    for i in range(cnt):
        kind, _, off, size, _, _ = struct.unpack_from("<IIQQII", b, tab + 32 * i)
        if kind == 6 and b[off:off + 4] == b"MNPU":
            yield b[off:off + size]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moss", required=True)
    ap.add_argument("--plugin-dir", required=True)
    a = ap.parse_args()
    import test_qdq_ops
    env = dict(os.environ, MOSS_CACHE_DIR="off", MOSS_TARGETS_DIR=os.path.join(ROOT, "targets"))
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        models = [("digits_cnn_qdq", "tests/e2e/digits/cnn_qdq.onnx", "input=1x1x8x8"),
                  ("digits_cnn_qdq_pc", "tests/e2e/digits/cnn_qdq_pc.onnx", "input=1x1x8x8"),
                  ("digits_mlp_qdq", "tests/e2e/digits/mlp_qdq.onnx", "input=1x64"),
                  ("ort_cnn_qdq_pc_s8", "tests/e2e/ort_quant/cnn_qdq_pc_s8.onnx", "input=1x1x8x8")]
        models = [(n, os.path.join(ROOT, p), s) for n, p, s in models]
        for m in test_qdq_ops.models():
            p = os.path.join(tmp, m.name + ".onnx")
            m.save(p)
            models.append(("qdq_" + m.name, p, None))
        for name, path, shape in models:
            # the per-operator models on the 8x8 array alone (the most tiles)
            for v in VARIANTS if shape else VARIANTS[2:]:
                art = os.path.join(tmp, "%s_%s.moss" % (name, v))
                cmd = [os.path.abspath(a.moss), "compile", path, "--target",
                       os.path.join(a.plugin_dir, v + ".xml"), "-q", "-o", art]
                if shape:
                    cmd += ["--input-shape", shape]
                p = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if p.returncode != 0:
                    sys.exit("%s for %s: %s" % (name, v, p.stderr))
                for k, data in enumerate(blobs(art)):
                    if len(data) > MAX_BLOB:
                        continue
                    short = v.replace("npu-systolic-", "")
                    f = os.path.join(OUT, "%s_%s_%d" % (name, short, k))
                    with open(f, "wb") as fh:
                        fh.write(data)
                    total += len(data)
    # Identical blobs (the same stream for two variants) are kept once.
    seen = {}
    for f in sorted(os.listdir(OUT)):
        h = hashlib.sha1(open(os.path.join(OUT, f), "rb").read()).hexdigest()
        if h in seen:
            total -= os.path.getsize(os.path.join(OUT, f))
            os.remove(os.path.join(OUT, f))
        else:
            seen[h] = f
    print("corpus/npu_blob: %d blobs, %d bytes" % (len(seen), total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
