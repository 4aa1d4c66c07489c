"""Reads the GPU segment blobs of a moss bundle (runtime/include/moss_bundle.h:
the section table, then the "OpenCL segment blob" layout, which the PTX
segment blob shares) for the tests that check the code a GPU backend wrote.

  blobs(path) -> [dict(magic, tensors=[bytes...], items=[...], source=bytes,
                       arena_bytes, weights_bytes)]
  find_ptxas() -> NVIDIA's assembler (PATH, else /usr/local/cuda), or None
  ptxas_refusals(ptxas, path, work, arch) -> [(k, ptxas's message)] for each
                    PTX module of the bundle |path| that ptxas refuses
  have_cuda(lib) -> whether a CUDA driver loads (|lib|, else MOSS_CUDA_LIBRARY
                    or libcuda.so.1)
"""
import ctypes
import os
import shutil
import struct
import subprocess


def find_ptxas():
    p = shutil.which("ptxas")
    if p:
        return p
    p = "/usr/local/cuda/bin/ptxas"
    return p if os.path.exists(p) else None


def ptxas_refusals(ptxas, path, work, arch="sm_90"):
    out = []
    for k, bl in enumerate(blobs(path)):
        src = os.path.join(work, "ptx%d.ptx" % k)
        with open(src, "wb") as f:
            f.write(bl["source"])
        q = subprocess.run([ptxas, "-arch", arch, src, "-o", src + ".cubin"], capture_output=True, text=True)
        if q.returncode != 0:
            out.append((k, q.stderr.strip()))
    return out


def have_cuda(lib=None):
    try:
        ctypes.CDLL(lib or os.environ.get("MOSS_CUDA_LIBRARY") or "libcuda.so.1")
        return True
    except OSError:
        return False


def blobs(path):
    b = open(path, "rb").read()
    if b[:8] != b"MOSSBNDL":
        raise ValueError("%s: not a moss bundle" % path)
    table, count, esize = struct.unpack_from("<QII", b, 24)
    out = []
    for k in range(count):
        kind, param, off, size, align, crc = struct.unpack_from("<IIQQII", b, table + k * esize)
        if kind != 6:  # MOSS_BUNDLE_SEC_BLOB
            continue
        magic, ver, nt, nk, arena, wb, sl = struct.unpack_from("<4sIIIQQQ", b, off)
        p = off + 40
        tensors = list(struct.unpack_from("<%dQ" % nt, b, p))
        p += 8 * nt
        items = list(struct.unpack_from("<%dQ" % nk, b, p))
        p += 8 * nk
        out.append(dict(magic=magic, version=ver, device=param, tensors=tensors, items=items,
                        source=b[p:p + sl], arena_bytes=arena, weights_bytes=wb))
    return out
