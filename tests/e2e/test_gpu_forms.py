#!/usr/bin/python3
"""A GPU with two code forms (backend "ptx+vulkan", backends/gpu/forms.c):
the bundle carries both, libmossrt runs the one this machine has a driver
for (runtime/src/gpu/forms.c). On the digits models compiled for
tests/e2e/data/forms-only.xml (the Jetson Orin's GPU with no CPU to fall
back on):

- each blob is a GPU code-forms blob (moss_bundle.h) holding a PTX and a
  Vulkan segment blob for the same tensors and, once, the weights both
  read; the PTX passes NVIDIA's
  assembler for sm_87 (ptxas, CUDA toolkit), the SPIR-V SPIRV-Tools'
  validator for Vulkan 1.1;
- run with `moss run`: where there is no CUDA driver (this machine;
  lavapipe gives Vulkan on the CPU) the Vulkan form runs, also when
  MOSS_CUDA_LIBRARY names the toolkit's stub driver (it loads, cuInit
  fails): float models within DESIGN.md's tolerance of torch's logits, the
  int8 QDQ MLP the same bits as --target host; MOSS_GPU_FORM=vulkan gives
  the same bits; where there is a CUDA driver the PTX form runs, with the
  same checks;
- the jetson-orin-nano target itself, placed by cost: the float CNN at
  the test set's batch (450) has every node on the GPU, so the bundle
  holds no AArch64 code and runs here, with torch's logits;
- clear errors: no driver for either form (the stub CUDA driver and no
  Vulkan loader) names both reasons; MOSS_GPU_FORM=ptx without a CUDA
  driver, or naming a form the device lacks; a damaged code-forms blob
  (magic, version, form count, the shared-weights field and entry, an
  entry's offset or size) is refused when
  the bundle is opened, as a malformed bundle (category invalid-model),
  before any driver is asked.

  test_gpu_forms.py --moss build/moss
"""
import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gpu_blobs import find_ptxas, have_cuda  # noqa: E402
from gpu_digits import DIG, Digits  # noqa: E402

XML = os.path.join(HERE, "data", "forms-only.xml")
ap = argparse.ArgumentParser()
ap.add_argument("--moss", required=True)
A = ap.parse_args()
W = tempfile.mkdtemp(prefix="moss-forms-")
ENV = dict(os.environ, XDG_RUNTIME_DIR=os.environ.get("XDG_RUNTIME_DIR", W))
for k in ("MOSS_GPU_FORM", "MOSS_CUDA_LIBRARY", "MOSS_VULKAN_LIBRARY", "MOSS_DEVICE"):
    ENV.pop(k, None)
fails = 0


def fail(msg):
    global fails
    print("FAIL " + msg)
    fails += 1


# ---- the bundle's bytes (runtime/include/moss_bundle.h) ----

def blob_sections(data):
    """(offset, size) of each BLOB section, in table order."""
    table, count, esize = struct.unpack_from("<QII", data, 24)
    out = []
    for k in range(count):
        kind, _param, off, size, _align, _crc = struct.unpack_from("<IIQQII", data, table + k * esize)
        if kind == 6:  # MOSS_BUNDLE_SEC_BLOB
            out.append((off, size))
    return out


def forms_of(blob):
    """A GPU code-forms blob's form entries [(name, offset, size)] and its
    shared "weights" entry (offset, size) or None; None when not one."""
    if len(blob) < 16 or blob[:4] != b"MGFM":
        return None
    _magic, ver, n, shared = struct.unpack_from("<4sIII", blob, 0)
    if ver != 2 or shared not in (0, 1) or not 1 <= n <= 4:
        return None
    out = []
    for k in range(n + shared):
        name, off, size = struct.unpack_from("<16sQQ", blob, 16 + 32 * k)
        out.append((name.rstrip(b"\0").decode(), off, size))
    if shared and out[-1][0] != "weights":
        return None
    return out[:n], (out[n][1:] if shared else None)


def segment(b, shared=False):
    """A PTX or Vulkan segment blob (the OpenCL segment blob's layout); with
    |shared| its weights are kept apart, in the code-forms blob."""
    magic, ver, nt, nk, arena, wb, sl = struct.unpack_from("<4sIIIQQQ", b, 0)
    p = 40
    tensors = list(struct.unpack_from("<%dQ" % nt, b, p))
    p += 8 * nt
    items = list(struct.unpack_from("<%dQ" % nk, b, p))
    p += 8 * nk
    return dict(magic=magic, version=ver, tensors=tensors, items=items, source=b[p:p + sl], size=len(b),
                end=p + sl + (0 if shared else wb), weights=wb)


def fix_crcs(data):
    """Every section's checksum, then the header's (over the header with
    header_crc 0 and the section table)."""
    table, count, esize = struct.unpack_from("<QII", data, 24)
    for k in range(count):
        at = table + k * esize
        _kind, _param, off, size, _align, _crc = struct.unpack_from("<IIQQII", data, at)
        struct.pack_into("<I", data, at + 28, zlib.crc32(bytes(data[off:off + size])))
    struct.pack_into("<I", data, 40, 0)
    crc = zlib.crc32(bytes(data[:320]))
    crc = zlib.crc32(bytes(data[table:table + count * esize]), crc)
    struct.pack_into("<I", data, 40, crc)


PTXAS = find_ptxas()
CUDA = have_cuda("libcuda.so.1")
STUB = "/usr/local/cuda/lib64/stubs/libcuda.so"
if PTXAS:
    STUB = os.path.join(os.path.dirname(os.path.dirname(PTXAS)), "lib64", "stubs", "libcuda.so")
if not PTXAS:
    fail("no ptxas on PATH or in /usr/local/cuda/bin: the CUDA toolkit is needed to check the PTX")
if not shutil.which("spirv-val"):
    fail("no spirv-val (SPIRV-Tools) on PATH")
form = "ptx" if CUDA else "vulkan"
print("this machine: %s; the form libmossrt should run: %s" % ("a CUDA driver" if CUDA else "no CUDA driver", form))

D = Digits(A.moss, W, ENV, fail, "ptx+vulkan")


def check_blobs(tag, art):
    """Each blob: a code-forms blob with a PTX and a Vulkan segment blob
    for the same tensors, the PTX through ptxas, the SPIR-V through spirv-val."""
    data = open(art, "rb").read()
    secs = blob_sections(data)
    if not secs:
        fail("%s: no blobs" % tag)
    for k, (off, size) in enumerate(secs):
        blob = data[off:off + size]
        got = forms_of(blob)
        fs, shared = got if got else (None, None)
        if fs is None or [f[0] for f in fs] != ["ptx", "vulkan"]:
            fail("%s: blob %d is not a GPU code-forms blob with forms ptx and vulkan: %r" % (tag, k, got))
            continue
        seg = {}
        for name, o, n in fs + ([("weights",) + shared] if shared else []):
            if o % 8 or o + n > size:
                fail("%s: blob %d: form %s at %d + %d is outside its %d bytes or not 8-aligned" % (tag, k, name, o, n,
                                                                                                 size))
                continue
            if name != "weights":
                seg[name] = segment(blob[o:o + n], shared is not None)
        if len(seg) != 2:
            continue
        # The two forms lay the segment out alike, so their weights are the
        # same bytes, which the blob keeps once.
        if shared is None and seg["ptx"]["weights"]:
            fail("%s: blob %d: the forms' %d bytes of weights are kept twice" % (tag, k, seg["ptx"]["weights"]))
        elif shared is not None and not seg["ptx"]["weights"] == seg["vulkan"]["weights"] == shared[1]:
            fail("%s: blob %d: the forms' weights (%d, %d bytes) are not the %d the blob keeps" %
                 (tag, k, seg["ptx"]["weights"], seg["vulkan"]["weights"], shared[1]))
        if len(seg) != 2:
            continue
        if seg["ptx"]["magic"] != b"MPTX" or seg["vulkan"]["magic"] != b"MVKS":
            fail("%s: blob %d: forms are %r and %r" % (tag, k, seg["ptx"]["magic"], seg["vulkan"]["magic"]))
            continue
        for name in ("ptx", "vulkan"):
            if seg[name]["end"] != seg[name]["size"]:
                fail("%s: blob %d: the %s segment blob is %d bytes, its fields end at %d" %
                     (tag, k, name, seg[name]["size"], seg[name]["end"]))
        if seg["ptx"]["tensors"] != seg["vulkan"]["tensors"]:
            fail("%s: blob %d: the forms' tensors differ: %r, %r" % (tag, k, seg["ptx"]["tensors"],
                                                                    seg["vulkan"]["tensors"]))
        ptx = os.path.join(W, "%s.%d.ptx" % (tag, k))
        open(ptx, "wb").write(seg["ptx"]["source"])
        if b".target sm_87" not in seg["ptx"]["source"]:
            fail("%s: blob %d: the PTX is not for sm_87" % (tag, k))
        if PTXAS:
            q = subprocess.run([PTXAS, "-arch", "sm_87", ptx, "-o", ptx + ".cubin"], capture_output=True, text=True)
            if q.returncode != 0:
                fail("%s: blob %d: ptxas refuses the PTX: %s" % (tag, k, q.stderr.strip()[:600]))
        spv = os.path.join(W, "%s.%d.spv" % (tag, k))
        open(spv, "wb").write(seg["vulkan"]["source"])
        q = subprocess.run(["spirv-val", "--target-env", "vulkan1.1", spv], capture_output=True, text=True)
        if q.returncode != 0:
            fail("%s: blob %d: spirv-val refuses the SPIR-V: %s" % (tag, k, q.stderr.strip()[:400]))
    print("%s: %d code-forms blobs, each PTX (ptxas sm_87) and SPIR-V (spirv-val vulkan1.1)" % (tag, len(secs)))


def same(a, b):
    return a is not None and b is not None and a.tobytes() == b.tobytes()


# The float models against torch's logits; the stub driver and a forced
# form give the same bits.
stub_env = dict(ENV, MOSS_CUDA_LIBRARY=STUB)
for m in ("mlp", "cnn"):
    x = D.x_of(m)
    art = D.compile(m, XML, x, m)
    check_blobs(m, art)
    y = D.run(art, x, m)
    if y is None:
        continue
    ref = np.load(os.path.join(DIG, m + "_ref.npy"))
    err = np.abs(y.astype(np.float64) - ref)
    if not np.all(err <= 1e-5 + 1e-4 * np.abs(ref)):
        fail("%s: logits differ from torch's by up to %g" % (m, err.max()))
    print("%s on ptx+vulkan (%s): max |moss - torch| %.3g" % (m, form, err.max()))
    if not CUDA and os.path.exists(STUB) and not same(D.run(art, x, m + "_stub", env=stub_env), y):
        fail("%s: with MOSS_CUDA_LIBRARY=%s (cuInit fails) not the Vulkan form's bits" % (m, STUB))
    if not same(D.run(art, x, m + "_forced", env=dict(ENV, MOSS_GPU_FORM=form)), y):
        fail("%s: MOSS_GPU_FORM=%s does not give the same bits" % (m, form))

# The Jetson target itself, placed by cost: at the test set's batch (450)
# every node of the float CNN goes to its GPU, so the bundle, whose CPU code
# would be AArch64, has none and runs here, on lavapipe, with torch's logits.
x = D.x_of("cnn")
art = os.path.join(W, "jetson.moss")
ex = subprocess.run([A.moss, "compile", os.path.join(DIG, "cnn.onnx"), "--input-shape",
                     "input=" + "x".join(str(d) for d in x.shape), "--target", "jetson-orin-nano",
                     "-o", art, "--explain", "-q"], capture_output=True, text=True, env=ENV)
placed = [ln for ln in ex.stdout.splitlines() if ln.startswith("node ")]
if ex.returncode != 0 or not placed or any(" -> gpu " not in ln for ln in placed):
    fail("cnn on jetson-orin-nano at batch %d: not every node on the gpu: %s" % (
        x.shape[0], (ex.stderr.strip() or "\n".join(placed))[:600]))
else:
    y = D.run(art, x, "jetson")
    ref = np.load(os.path.join(DIG, "cnn_ref.npy"))
    if y is not None:
        err = np.abs(y.astype(np.float64) - ref)
        if not np.all(err <= 1e-5 + 1e-4 * np.abs(ref)):
            fail("cnn on jetson-orin-nano: logits differ from torch's by up to %g" % err.max())
        print("cnn on jetson-orin-nano (%d nodes, all on the gpu; %s): max |moss - torch| %.3g" % (
            len(placed), form, err.max()))

# The int8 QDQ MLP: the host CPU's bits.
m = "mlp_qdq"
x = D.x_of(m)
art = D.compile(m, XML, x, m)
check_blobs(m, art)
y = D.run(art, x, m)
yh = D.compile_run(m, "host", x, m + "_host")
if not same(y, yh):
    fail("%s: ptx+vulkan (%s) and host differ" % (m, form))
else:
    print("%s on ptx+vulkan (%s): the same bits as host" % (m, form))

# Errors.
x = D.xs["mlp"][:2]
art = D.compile("mlp", XML, x, "err")


def refused(tag, env, *want, path=None):
    p = D.run(path or art, x, tag, env=env, ok=False)
    if p.returncode == 0 or any(w not in p.stderr for w in want):
        fail("%s: status %d, %r lacks %r" % (tag, p.returncode, p.stderr.strip()[:600], want))
    else:
        print("%s: %s" % (tag, p.stderr.strip()[:400]))


if os.path.exists(STUB):
    refused("no driver", dict(ENV, MOSS_CUDA_LIBRARY=STUB, MOSS_VULKAN_LIBRARY=os.path.join(W, "none.so")),
            "target: device 0 ('gpu', ptx+vulkan): no driver for any code form: ",
            "ptx: cuInit: CUDA_ERROR_STUB_LIBRARY (34); ",
            "vulkan: cannot load the Vulkan loader " + os.path.join(W, "none.so"))
else:
    fail("no stub CUDA driver at %s (CUDA toolkit)" % STUB)
if not CUDA:
    refused("forced ptx", dict(ENV, MOSS_GPU_FORM="ptx"),
            "no driver for the code form MOSS_GPU_FORM names: ptx: cannot load the CUDA driver libcuda.so.1")
refused("forced metal", dict(ENV, MOSS_GPU_FORM="metal"), "MOSS_GPU_FORM='metal' is not one of its code forms")

# Damaged code-forms blobs: refused as malformed when the bundle is opened,
# whatever the drivers (none here: the format is checked first).
good = bytearray(open(art, "rb").read())
off, size = blob_sections(good)[0]
ptx_entry = off + 16
vk_entry = off + 16 + 32


def damaged(tag, patch, want):
    d = bytearray(good)
    patch(d)
    fix_crcs(d)
    path = os.path.join(W, tag.replace(" ", "_") + ".moss")
    open(path, "wb").write(d)
    refused(tag, dict(ENV, MOSS_VULKAN_LIBRARY=os.path.join(W, "none.so")), "invalid-model: ", want, path=path)


def poke(fmt, at, v):
    return lambda d: struct.pack_into(fmt, d, at, v)


def add64(at, v):
    return lambda d: struct.pack_into("<Q", d, at, struct.unpack_from("<Q", d, at)[0] + v)


chk = bytearray(good)
fix_crcs(chk)
if chk != good:
    fail("fix_crcs does not reproduce the bundle's own checksums")
damaged("magic flipped", lambda d: d.__setitem__(off, d[off] ^ 0x20),
        "blob 0 (device 0 'gpu', ptx+vulkan): not a GPU code-forms blob")
damaged("version 3", poke("<I", off + 4, 3), "GPU code-forms blob version 3, this runtime reads 1 and 2")
w_entry = off + 16 + 64
if forms_of(good[off:off + size])[1] is None:
    fail("the MLP's blob keeps no shared weights: the damaged-weights cases cannot run")
damaged("shared 2", poke("<I", off + 12, 2), "its shared-weights field is 2, expected 0 or 1")
damaged("weights renamed", lambda d: d.__setitem__(slice(w_entry, w_entry + 7), b"weighty"),
        "entry 2: named 'weighty', expected 'weights'")
damaged("weights past the end", add64(w_entry + 24, 1 << 20), "its weights: offset")
damaged("weights cut", add64(w_entry + 24, -8),
        "cuda: blob 0: its source")
damaged("version 1 with shared", poke("<I", off + 4, 1), "its reserved field is 1, expected 0")
damaged("no forms", poke("<I", off + 8, 0), "0 code forms")
damaged("five forms", poke("<I", off + 8, 5), "5 code forms")
damaged("name unterminated", lambda d: d.__setitem__(slice(ptx_entry, ptx_entry + 16), b"p" * 16),
        "form 0: its name is not NUL-terminated")
damaged("offset unaligned", add64(vk_entry + 16, 4), "form 1 ('vulkan'): offset")
damaged("size past the end", add64(vk_entry + 24, 1 << 20), "form 1 ('vulkan'): offset")
damaged("ptx cut", add64(ptx_entry + 24, -8), "cuda: blob 0: its source")
damaged("vulkan cut", add64(vk_entry + 24, -8), "vulkan: blob 0: its source")
damaged("other form", lambda d: d.__setitem__(slice(vk_entry, vk_entry + 6), b"metal\0"),
        "form 1 ('metal') is not one of the device's code forms")

shutil.rmtree(W, ignore_errors=True)
print("test_gpu_forms: %s" % ("FAILED (%d)" % fails if fails else "ok"))
sys.exit(1 if fails else 0)
