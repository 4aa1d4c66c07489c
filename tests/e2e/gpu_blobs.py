"""Reads the GPU segment blobs of a moss bundle (runtime/include/moss_bundle.h:
the section table, then the "OpenCL segment blob" layout, which the PTX
segment blob shares) for the tests that check the code a GPU backend wrote.

  blobs(path) -> [dict(magic, tensors=[bytes...], items=[...], source=bytes,
                       arena_bytes, weights_bytes, weights=bytes)]
  find_ptxas() -> NVIDIA's assembler (PATH, else /usr/local/cuda), or None
  ptxas_refusals(ptxas, path, work, arch) -> [(k, ptxas's message)] for each
                    PTX module of the bundle |path| that ptxas refuses
  have_cuda(lib) -> whether a CUDA driver loads (|lib|, else MOSS_CUDA_LIBRARY
                    or libcuda.so.1)
  opencl_forms(blob) -> (OpenCL C text, SPIR-V bytes) of an OpenCL blob
  run_spir(bitcode, blob, inputs, out_dtypes) -> the outputs of an OpenCL
                    blob's kernels built from SPIR 1.2 |bitcode| by the
                    first OpenCL device found (cl_khr_spir: PoCL),
                    outside libmossrt
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
                        source=b[p:p + sl], arena_bytes=arena, weights_bytes=wb,
                        weights=b[p + sl:p + sl + wb]))
    return out


def opencl_forms(blob):
    code = blob["source"]
    (tl,) = struct.unpack_from("<Q", code, 0)
    at = 8 + tl + (-(8 + tl)) % 4
    return code[8:8 + tl], code[at:]


def run_spir(bitcode, blob, inputs, out_dtypes):
    """Runs an OpenCL blob's kernels moss_k0.. as libmossrt would (one
    in-order queue; arena, weights and the step's tensors as buffers; each
    launch's work-items and work-group size), built from |bitcode| (SPIR
    1.2: LLVM bitcode for spir64) instead of the blob's own code, through
    the ICD loader on the first device of the first platform with one. |inputs| are the
    step's inputs (numpy arrays, in order); returns its outputs as
    |out_dtypes|. Raises RuntimeError naming the failing OpenCL call."""
    import numpy as np
    cl = ctypes.CDLL("libOpenCL.so.1")
    vp = ctypes.c_void_p
    for f in ("clCreateContext", "clCreateProgramWithBinary", "clCreateBuffer", "clCreateCommandQueue",
              "clCreateKernel"):
        getattr(cl, f).restype = vp
    err = ctypes.c_int()

    def ok(rc, what):
        if rc != 0:
            raise RuntimeError("%s: %d" % (what, rc))
    plats, nplat, dev = (vp * 16)(), ctypes.c_uint(), vp()
    ok(cl.clGetPlatformIDs(16, plats, ctypes.byref(nplat)), "clGetPlatformIDs")
    for k in range(min(nplat.value, 16)):  # the first platform with a device
        if cl.clGetDeviceIDs(vp(plats[k]), ctypes.c_uint64(0xFFFFFFFF), 1, ctypes.byref(dev), None) == 0:
            break
    else:
        raise RuntimeError("clGetDeviceIDs: no OpenCL device")
    ctx = vp(cl.clCreateContext(None, 1, ctypes.byref(dev), None, None, ctypes.byref(err)))
    ok(err.value, "clCreateContext")
    n, code, status = ctypes.c_size_t(len(bitcode)), ctypes.c_char_p(bitcode), ctypes.c_int()
    prog = vp(cl.clCreateProgramWithBinary(ctx, 1, ctypes.byref(dev), ctypes.byref(n), ctypes.byref(code),
                                           ctypes.byref(status), ctypes.byref(err)))
    ok(err.value, "clCreateProgramWithBinary")
    if cl.clBuildProgram(prog, 1, ctypes.byref(dev), b"-x spir -spir-std=1.2", None, None) != 0:
        log = ctypes.create_string_buffer(8192)
        cl.clGetProgramBuildInfo(prog, dev, 0x1183, 8192, log, None)  # CL_PROGRAM_BUILD_LOG
        raise RuntimeError("clBuildProgram: " + log.value.decode(errors="replace"))

    def buf(nbytes, data=None):  # CL_MEM_READ_WRITE, | CL_MEM_COPY_HOST_PTR with data
        b = vp(cl.clCreateBuffer(ctx, ctypes.c_uint64(1 | (0x20 if data else 0)), ctypes.c_size_t(max(nbytes, 1)),
                                 ctypes.c_char_p(data) if data else None, ctypes.byref(err)))
        ok(err.value, "clCreateBuffer")
        return b
    ins = [np.ascontiguousarray(x).tobytes() for x in inputs]
    mems = [buf(blob["arena_bytes"]), buf(len(blob["weights"]), blob["weights"] or None)]
    mems += [buf(size, ins[k] if k < len(ins) else None) for k, size in enumerate(blob["tensors"])]
    q = vp(cl.clCreateCommandQueue(ctx, dev, ctypes.c_uint64(0), ctypes.byref(err)))
    ok(err.value, "clCreateCommandQueue")
    for k, launch in enumerate(blob["items"]):
        kern = vp(cl.clCreateKernel(prog, b"moss_k%d" % k, ctypes.byref(err)))
        ok(err.value, "clCreateKernel moss_k%d" % k)
        for i, m in enumerate(mems):
            ok(cl.clSetKernelArg(kern, i, ctypes.c_size_t(ctypes.sizeof(vp)), ctypes.byref(m)), "clSetKernelArg")
        items, group = ctypes.c_size_t(launch & 0xffffffff), ctypes.c_size_t((launch >> 32) & 0xffff)
        ok(cl.clEnqueueNDRangeKernel(q, kern, 1, None, ctypes.byref(items),
                                     ctypes.byref(group) if group.value else None, 0, None, None),
           "clEnqueueNDRangeKernel moss_k%d" % k)
    outs = []
    for k, dt in enumerate(out_dtypes):
        size = blob["tensors"][len(ins) + k]
        host = ctypes.create_string_buffer(size)
        ok(cl.clEnqueueReadBuffer(q, mems[2 + len(ins) + k], 1, ctypes.c_size_t(0), ctypes.c_size_t(size), host, 0,
                                  None, None), "clEnqueueReadBuffer")
        outs.append(np.frombuffer(host.raw, dtype=dt).copy())
    return outs
