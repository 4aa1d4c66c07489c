#!/usr/bin/python3
"""libmossrt's Vulkan executor (runtime/src/vulkan) on lavapipe, without the
compiler: SPIR-V written here as assembly, following the Vulkan segment blob
contract of runtime/include/moss_bundle.h (descriptor set 0: binding 0 the
arena, 1 the weights, 2 + k tensor k; push constants {items, row}; the
workgroup size as specialization constant 0), assembled with spirv-as
--target-env vulkan1.1 and checked with spirv-val, wrapped into blobs and a
bundle written here, then run through bench/gpu_run.c and compared with
numpy.

The bundle: graph inputs x, y (float32[N]) and q (int8[M]); outputs z
(float32[N]) and r (int8[M]). Step 0 runs the float module on x, y into h
(a tensor in the host arena), step 1 the same module on h, y into z: each
kernel moss_k0 puts t0 + t1 into the segment's arena, moss_k1 adds the
weights (w[i & 15]) into t2. N is past 65535 workgroups of 64, so the
dispatch has two rows. Step 2 runs the int8 module (Int8,
StorageBuffer8BitAccess; no weights, no arena: 4-byte buffers): r = clamp(3q
- 5, -128, 127). Then the errors: no loader (MOSS_VULKAN_LIBRARY), no such
device (MOSS_DEVICE), a corrupt SPIR-V magic number, a capability the
executor cannot enable.

  test_vulkan_runtime.py --gpu-run build/gpu_run"""
import glob
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np

N = 65535 * 64 + 1000
M = 1001

# ---- SPIR-V -------------------------------------------------------------------

FLOAT_ADD = """
               OpCapability Shader
               OpMemoryModel Logical GLSL450
               OpEntryPoint GLCompute %k0 "moss_k0" %gid
               OpEntryPoint GLCompute %k1 "moss_k1" %gid
               OpDecorate %rta ArrayStride 4
               OpMemberDecorate %sb 0 Offset 0
               OpDecorate %sb Block
               OpDecorate %a DescriptorSet 0
               OpDecorate %a Binding 0
               OpDecorate %w DescriptorSet 0
               OpDecorate %w Binding 1
               OpDecorate %w NonWritable
               OpDecorate %t0 DescriptorSet 0
               OpDecorate %t0 Binding 2
               OpDecorate %t1 DescriptorSet 0
               OpDecorate %t1 Binding 3
               OpDecorate %t2 DescriptorSet 0
               OpDecorate %t2 Binding 4
               OpMemberDecorate %pct 0 Offset 0
               OpMemberDecorate %pct 1 Offset 4
               OpDecorate %pct Block
               OpDecorate %gid BuiltIn GlobalInvocationId
               OpDecorate %wx SpecId 0
               OpDecorate %wgs BuiltIn WorkgroupSize
       %void = OpTypeVoid
         %fn = OpTypeFunction %void
       %uint = OpTypeInt 32 0
      %float = OpTypeFloat 32
       %bool = OpTypeBool
     %v3uint = OpTypeVector %uint 3
        %rta = OpTypeRuntimeArray %float
         %sb = OpTypeStruct %rta
       %p_sb = OpTypePointer StorageBuffer %sb
        %p_f = OpTypePointer StorageBuffer %float
        %pct = OpTypeStruct %uint %uint
       %p_pc = OpTypePointer PushConstant %pct
      %p_pcu = OpTypePointer PushConstant %uint
       %p_in = OpTypePointer Input %v3uint
         %u0 = OpConstant %uint 0
         %u1 = OpConstant %uint 1
        %u15 = OpConstant %uint 15
         %wx = OpSpecConstant %uint 64
        %wgs = OpSpecConstantComposite %v3uint %wx %u1 %u1
          %a = OpVariable %p_sb StorageBuffer
          %w = OpVariable %p_sb StorageBuffer
         %t0 = OpVariable %p_sb StorageBuffer
         %t1 = OpVariable %p_sb StorageBuffer
         %t2 = OpVariable %p_sb StorageBuffer
         %pc = OpVariable %p_pc PushConstant
        %gid = OpVariable %p_in Input
{k0}
{k1}
"""

# The work-item index and the guard; the body follows at %body_K, and
# branches to %end_K.
PROLOGUE = """
         %{k} = OpFunction %void None %fn
    %entry_{k} = OpLabel
        %g_{k} = OpLoad %v3uint %gid
       %gx_{k} = OpCompositeExtract %uint %g_{k} 0
       %gy_{k} = OpCompositeExtract %uint %g_{k} 1
     %rowp_{k} = OpAccessChain %p_pcu %pc %u1
      %row_{k} = OpLoad %uint %rowp_{k}
      %itp_{k} = OpAccessChain %p_pcu %pc %u0
    %items_{k} = OpLoad %uint %itp_{k}
        %m_{k} = OpIMul %uint %gy_{k} %row_{k}
        %i_{k} = OpIAdd %uint %m_{k} %gx_{k}
       %ok_{k} = OpULessThan %bool %i_{k} %items_{k}
                 OpSelectionMerge %end_{k} None
                 OpBranchConditional %ok_{k} %body_{k} %end_{k}
     %body_{k} = OpLabel
"""
EPILOGUE = """
                 OpBranch %end_{k}
      %end_{k} = OpLabel
                 OpReturn
                 OpFunctionEnd
"""

K0_ADD = """
       %px_k0 = OpAccessChain %p_f %t0 %u0 %i_k0
        %x_k0 = OpLoad %float %px_k0
       %py_k0 = OpAccessChain %p_f %t1 %u0 %i_k0
        %y_k0 = OpLoad %float %py_k0
        %s_k0 = OpFAdd %float %x_k0 %y_k0
       %pa_k0 = OpAccessChain %p_f %a %u0 %i_k0
                OpStore %pa_k0 %s_k0
"""
K1_ADD = """
       %pa_k1 = OpAccessChain %p_f %a %u0 %i_k1
        %a_k1 = OpLoad %float %pa_k1
       %wi_k1 = OpBitwiseAnd %uint %i_k1 %u15
       %pw_k1 = OpAccessChain %p_f %w %u0 %wi_k1
        %w_k1 = OpLoad %float %pw_k1
        %s_k1 = OpFAdd %float %a_k1 %w_k1
       %pz_k1 = OpAccessChain %p_f %t2 %u0 %i_k1
                OpStore %pz_k1 %s_k1
"""

INT8 = """
               OpCapability Shader
               OpCapability Int8
               OpCapability StorageBuffer8BitAccess
               OpExtension "SPV_KHR_8bit_storage"
        %glsl = OpExtInstImport "GLSL.std.450"
               OpMemoryModel Logical GLSL450
               OpEntryPoint GLCompute %k0 "moss_k0" %gid
               OpDecorate %rta ArrayStride 1
               OpMemberDecorate %sb 0 Offset 0
               OpDecorate %sb Block
               OpDecorate %a DescriptorSet 0
               OpDecorate %a Binding 0
               OpDecorate %w DescriptorSet 0
               OpDecorate %w Binding 1
               OpDecorate %t0 DescriptorSet 0
               OpDecorate %t0 Binding 2
               OpDecorate %t1 DescriptorSet 0
               OpDecorate %t1 Binding 3
               OpMemberDecorate %pct 0 Offset 0
               OpMemberDecorate %pct 1 Offset 4
               OpDecorate %pct Block
               OpDecorate %gid BuiltIn GlobalInvocationId
               OpDecorate %wx SpecId 0
               OpDecorate %wgs BuiltIn WorkgroupSize
       %void = OpTypeVoid
         %fn = OpTypeFunction %void
       %uint = OpTypeInt 32 0
        %int = OpTypeInt 32 1
       %char = OpTypeInt 8 1
       %bool = OpTypeBool
     %v3uint = OpTypeVector %uint 3
        %rta = OpTypeRuntimeArray %char
         %sb = OpTypeStruct %rta
       %p_sb = OpTypePointer StorageBuffer %sb
        %p_c = OpTypePointer StorageBuffer %char
        %pct = OpTypeStruct %uint %uint
       %p_pc = OpTypePointer PushConstant %pct
      %p_pcu = OpTypePointer PushConstant %uint
       %p_in = OpTypePointer Input %v3uint
         %u0 = OpConstant %uint 0
         %u1 = OpConstant %uint 1
         %i3 = OpConstant %int 3
         %i5 = OpConstant %int 5
       %imin = OpConstant %int -128
       %imax = OpConstant %int 127
         %wx = OpSpecConstant %uint 64
        %wgs = OpSpecConstantComposite %v3uint %wx %u1 %u1
          %a = OpVariable %p_sb StorageBuffer
          %w = OpVariable %p_sb StorageBuffer
         %t0 = OpVariable %p_sb StorageBuffer
         %t1 = OpVariable %p_sb StorageBuffer
         %pc = OpVariable %p_pc PushConstant
        %gid = OpVariable %p_in Input
{k0}
"""
K0_INT8 = """
       %pq_k0 = OpAccessChain %p_c %t0 %u0 %i_k0
        %q_k0 = OpLoad %char %pq_k0
       %qi_k0 = OpSConvert %int %q_k0
       %m3_k0 = OpIMul %int %qi_k0 %i3
        %s_k0 = OpISub %int %m3_k0 %i5
        %c_k0 = OpExtInst %int %glsl SClamp %s_k0 %imin %imax
       %c8_k0 = OpSConvert %char %c_k0
       %pr_k0 = OpAccessChain %p_c %t1 %u0 %i_k0
                OpStore %pr_k0 %c8_k0
"""


def kernel(k, body):
    return PROLOGUE.format(k=k) + body + EPILOGUE.format(k=k)


def assemble(d, name, text):
    src = os.path.join(d, name + ".spvasm")
    out = os.path.join(d, name + ".spv")
    with open(src, "w") as f:
        f.write(text)
    subprocess.run(["spirv-as", "--target-env", "vulkan1.1", src, "-o", out], check=True)
    subprocess.run(["spirv-val", "--target-env", "vulkan1.1", out], check=True)
    with open(out, "rb") as f:
        return f.read()


# ---- Blobs and the bundle (runtime/include/moss_bundle.h) ----------------------

def blob(spirv, tensors, items, arena_bytes, weights=b""):
    """A Vulkan segment blob: the OpenCL segment blob's layout, magic MVKS."""
    h = struct.pack("<4sIIIQQQ", b"MVKS", 2, len(tensors), len(items), arena_bytes, len(weights),
                    len(spirv))
    return (h + struct.pack("<%dQ" % len(tensors), *tensors) +
            struct.pack("<%dQ" % len(items), *items) + spirv + weights)


DT = {np.float32: 1, np.int8: 3}
INPUT, OUTPUT, ARENA = 1, 2, 3


def bundle(tensors, inputs, outputs, arena_bytes, steps, refs, blobs):
    """tensors: (name, dtype, dims, place, index, offset); steps: (blob, nin, nout, first)
    EXEC steps on device 0, a "vulkan" gpu. Returns the file's bytes."""
    strings = bytearray()

    def s(text):
        off = len(strings)
        strings.extend(text.encode() + b"\0")
        return struct.pack("<II", off, len(text))

    meta = struct.pack("<QIIII", arena_bytes, len(tensors), len(inputs), len(outputs), 0)
    for name, dt, dims, place, index, offset in tensors:
        nbytes = int(np.prod(dims)) * np.dtype(dt).itemsize
        d8 = list(dims) + [0] * (8 - len(dims))
        meta += s(name) + struct.pack("<ii8qQIIQ", DT[dt], len(dims), *d8, nbytes, place, index,
                                      offset)
    meta += struct.pack("<%dI" % len(inputs), *inputs) + struct.pack("<%dI" % len(outputs),
                                                                    *outputs)
    devices = struct.pack("<II", 1, 0) + s("gpu") + s("gpu") + s("vulkan") + s("") + s("") + \
        s("") + struct.pack("<II", 0, 0)
    plan = struct.pack("<II", len(steps), len(refs))
    for b, nin, nout, first in steps:
        plan += struct.pack("<IIII", 1, 0, 0, b) + s("") + struct.pack("<IIII", nin, nout, first, 0)
    plan += struct.pack("<%dI" % len(refs), *refs)
    secs = [(1, 0, bytes(strings)), (2, 0, meta), (3, 0, devices), (4, 0, plan)]
    secs += [(6, 0, b) for b in blobs]
    table_off = 320
    off = table_off + (32 * len(secs) + 63) // 64 * 64
    table, body = b"", b""
    for kind, param, data in secs:
        table += struct.pack("<IIQQII", kind, param, off + len(body), len(data), 64,
                             zlib.crc32(data))
        body += data + b"\0" * (-len(data) % 64)
    size = off + len(body)

    def header(crc):
        return struct.pack("<8sIIQQIIII64s64s128s16s", b"MOSSBNDL", 3, 320, size, table_off,
                           len(secs), 32, crc, 0, b"vulkan-test", b"", b"", b"")

    crc = zlib.crc32(table, zlib.crc32(header(0)))
    out = header(crc) + table
    return out + b"\0" * (off - len(out)) + body


# ---- Running ----------------------------------------------------------------------

def sanitizer_env(gpu_run):
    """For a gpu_run built with AddressSanitizer: lavapipe keeps the driver loaded.
    Lavapipe allocates process-wide state once (a pthread_once under
    vkEnumeratePhysicalDevices) and never frees it; the loader unloads lavapipe when
    the instance is destroyed, and LeakSanitizer then sees that block unreachable,
    with no module left to name in its stack (so no suppression can match it; the
    slow unwinder that would reach the loader's frames deadlocks in lavapipe's
    threads). Preloaded, lavapipe stays mapped and its state reachable, as the other
    GPU drivers stay loaded; everything libmossrt allocates is still checked."""
    with open(gpu_run, "rb") as f:
        if b"libasan.so" not in f.read():
            return {}
    libs = []
    for icd in glob.glob("/usr/share/vulkan/icd.d/lvp_icd*.json"):
        with open(icd) as f:
            lib = json.load(f).get("ICD", {}).get("library_path", "")
        if os.path.exists(lib):
            libs.append(lib)
    if not libs:
        return {}
    # The preloaded library comes before libasan in the list; ASan allows it.
    return {"LD_PRELOAD": ":".join(libs[:1]),
            "ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") +
                             ":verify_asan_link_order=0").lstrip(":")}


SANITIZER_ENV = {}


def run(gpu_run, path, outdir, ins, env_extra=None, iterations=2):
    files = []
    for k, a in enumerate(ins):
        f = os.path.join(outdir, "in%d.bin" % k)
        a.tofile(f)
        files.append(f)
    env = dict(os.environ)
    env.setdefault("XDG_RUNTIME_DIR", "/tmp")
    env.update(SANITIZER_ENV)
    env.update(env_extra or {})
    return subprocess.run([gpu_run, path, outdir, str(iterations)] + files, env=env,
                          capture_output=True, text=True, timeout=600)


def main():
    gpu_run = sys.argv[sys.argv.index("--gpu-run") + 1]
    SANITIZER_ENV.update(sanitizer_env(gpu_run))
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)

    with tempfile.TemporaryDirectory() as d:
        fadd = assemble(d, "fadd", FLOAT_ADD.format(k0=kernel("k0", K0_ADD),
                                                    k1=kernel("k1", K1_ADD)))
        int8 = assemble(d, "int8", INT8.format(k0=kernel("k0", K0_INT8)))
        rng = np.random.default_rng(7)
        x = rng.standard_normal(N).astype(np.float32)
        y = rng.standard_normal(N).astype(np.float32)
        q = rng.integers(-128, 128, M).astype(np.int8)
        w = rng.standard_normal(16).astype(np.float32)
        fb = 4 * N
        tensors = [("x", np.float32, [N], INPUT, 0, 0), ("y", np.float32, [N], INPUT, 1, 0),
                   ("q", np.int8, [M], INPUT, 2, 0), ("z", np.float32, [N], OUTPUT, 0, 0),
                   ("r", np.int8, [M], OUTPUT, 1, 0), ("h", np.float32, [N], ARENA, 0, 0)]
        refs = [0, 1, 5, 5, 1, 3, 2, 4]
        steps = [(0, 2, 1, 0), (1, 2, 1, 3), (2, 1, 1, 6)]

        def make(blobs, name):
            path = os.path.join(d, name)
            with open(path, "wb") as f:
                f.write(bundle(tensors, [0, 1, 2], [3, 4], fb, steps, refs, blobs))
            return path

        def blobs_with(float_spirv, int8_spirv):
            return [blob(float_spirv, [fb, fb, fb], [N, N], fb, w.tobytes()),
                    blob(float_spirv, [fb, fb, fb], [N, N], fb, w.tobytes()),
                    blob(int8_spirv, [M, M], [M], 0)]

        good = make(blobs_with(fadd, int8), "vk.moss")
        wi = w[np.arange(N) & 15]
        h = (x + y) + wi
        z_ref = (h + y) + wi
        r_ref = np.clip(q.astype(np.int32) * 3 - 5, -128, 127).astype(np.int8)

        def results(outdir):
            z = np.fromfile(os.path.join(outdir, "out0.bin"), dtype=np.float32)
            r = np.fromfile(os.path.join(outdir, "out1.bin"), dtype=np.int8)
            return z, r

        for label, env in (("default", {}), ("MOSS_VULKAN_STAGING=1", {"MOSS_VULKAN_STAGING": "1"}),
                           ("MOSS_DEVICE=0", {"MOSS_DEVICE": "0"}),
                           ("MOSS_DEVICE=llvmpipe", {"MOSS_DEVICE": "llvmpipe"})):
            out = os.path.join(d, "out-" + str(len(failures)) + label.replace("=", "-"))
            os.makedirs(out, exist_ok=True)
            p = run(gpu_run, good, out, [x, y, q], env)
            if p.returncode != 0:
                check(False, "%s: gpu_run exit %d: %s" % (label, p.returncode, p.stderr.strip()))
                continue
            z, r = results(out)
            check(z.shape == z_ref.shape and np.array_equal(z, z_ref),
                  "%s: float adds over %d items (2-row dispatch), weights, arenas (max diff %g)"
                  % (label, N, float(np.abs(z - z_ref).max()) if z.shape == z_ref.shape else -1))
            check(np.array_equal(r, r_ref), "%s: int8 kernel (Int8, StorageBuffer8BitAccess)" % label)

        def refused(label, path, env, want):
            out = os.path.join(d, "err")
            os.makedirs(out, exist_ok=True)
            p = run(gpu_run, path, out, [x, y, q], env, iterations=0)
            err = p.stderr.strip()
            ok = p.returncode == 1 and want in err and len(err.splitlines()) == 1
            check(ok, "%s: refused with '%s' (exit %d: %s)" % (label, want, p.returncode, err))

        refused("MOSS_VULKAN_LIBRARY=/nonexistent", good, {"MOSS_VULKAN_LIBRARY": "/nonexistent"},
                "vk.moss: target: vulkan: device 'gpu': cannot load the Vulkan loader /nonexistent")
        refused("MOSS_DEVICE=nosuchdevice", good, {"MOSS_DEVICE": "nosuchdevice"},
                "vulkan: no Vulkan device whose name contains MOSS_DEVICE='nosuchdevice'")
        refused("MOSS_DEVICE=99", good, {"MOSS_DEVICE": "99"},
                "vulkan: no Vulkan device of index MOSS_DEVICE=99")
        bad = bytearray(int8)
        bad[0] ^= 0xff
        refused("corrupt SPIR-V magic", make(blobs_with(fadd, bytes(bad)), "badmagic.moss"), {},
                "badmagic.moss: invalid-model: vulkan: blob 2: its module does not start with the "
                "SPIR-V magic number")
        # The Int8 capability (39) made Kernel (6): no Vulkan feature enables it.
        bad = bytearray(int8)
        at = bad.index(struct.pack("<II", (2 << 16) | 17, 39))
        struct.pack_into("<I", bad, at + 4, 6)
        refused("capability Kernel", make(blobs_with(fadd, bytes(bad)), "badcap.moss"), {},
                "vulkan: blob 2: its SPIR-V declares capability 6, which this executor cannot "
                "enable")
        # A module that is not whole words.
        refused("SPIR-V not whole words", make(blobs_with(fadd, int8 + b"\0\0"), "badlen.moss"), {},
                "vulkan: blob 2: its SPIR-V module is")
    if failures:
        print("%d failures" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
