/* moss_bundle.h - the .moss bundle file format, version 3 (DESIGN.md "Bundle").
 *
 * Shared by the compiler (compiler/bundle/bundle_write.c writes it) and the
 * runtime (runtime/src/core/bundle.c reads and checks it). Standalone: it
 * includes only <stddef.h> and <stdint.h>. Change it like a file-format
 * schema: any change to a layout or a meaning bumps MOSS_BUNDLE_VERSION.
 *
 * Encoding: every integer is little-endian; every struct below is laid out
 * with explicit widths and no implicit padding (the static asserts at the
 * end pin the sizes), so a struct is its bytes on disk. No pointers.
 *
 * File layout:
 *
 *   offset 0     moss_bundle_header (320 bytes)
 *   offset 320   section table: |section_count| moss_bundle_section entries
 *                (32 bytes each), zero-padded to a multiple of 64
 *   then         the sections' payloads, each at a 64-byte aligned offset,
 *                zero-padded to the next multiple of 64; they do not overlap
 *                each other, the header or the table, and end inside the file.
 *   last         signed bundles only (header flag MOSS_BUNDLE_FLAG_SIGNED):
 *                the moss_bundle_signature trailer (128 bytes), after the
 *                last section's padding; the header's file_size counts it.
 *
 * Version 2 (after version 1): one CODE section per device that has code,
 * in place of the single CPU_CODE section; the device record carries that
 * code's format, triple and features; an EXEC step on a CPU device lists the
 * tensors its entry receives (the graph inputs, then the graph outputs), so
 * an EXEC step means the same on every device: run this unit of the
 * device's code on these tensors. Version 1 bundles are refused (a clear
 * "format version 1" error): recompile them.
 *
 * Version 3 (after version 2): the CPU code states the figures it was
 * compiled for (moss_bundle_figures, the symbol MOSS_BUNDLE_FIGURES_SYMBOL:
 * the arena, every tensor and step as META and PLAN decode, its entry
 * points in the order the plan calls them), and the runtime refuses a
 * bundle whose META or PLAN says otherwise; a CPU EXEC step lists exactly
 * the graph's inputs, then its outputs. A bundle may be signed (header flag
 * MOSS_BUNDLE_FLAG_SIGNED and the moss_bundle_signature trailer: Ed25519
 * over the whole file but the signature). The layout of version 2 is
 * otherwise unchanged; version 2 bundles are refused ("format version 2"):
 * their code states no figures. Recompile them.
 *
 * Within version 3, the optional SHAPES section (kind 8) was added: the
 * outputs whose length along one axis the run decides, up to a bound. A
 * version 3 bundle without it means what it always meant; a runtime older
 * than the section refuses a bundle that has it ("unknown kind 8"), as it
 * must: such a runtime would read the bound as the output's shape. Later
 * within version 3, SHAPES also says which model outputs are sequences or
 * optionals (|ngroups| group records after the bounds, docs/sequences.md);
 * a runtime older than that refuses a bundle with groups ("reserved is
 * N", the field they took), as it must: it would number the outputs
 * otherwise than the model. Later within version 3, header flag
 * MOSS_BUNDLE_FLAG_BATCHED (2) was added: a batched bundle is, to a
 * runtime older than the flag, a batch-1 bundle that it could run as
 * such, but such a runtime refuses it ("header flags 0x2"), since readers
 * refuse flag bits they do not know; no field changes layout or meaning,
 * so the version stays 3 (as for SHAPES).
 *
 * Sections (one of each, except CODE: one per device with code, and BLOB:
 * one per plugin blob; CODE, BLOB, REPORT and SHAPES are optional):
 *
 *   STRINGS   the string table: every string in the other sections is a
 *             moss_bundle_str (offset, length) into it, and the byte at
 *             offset + length must be NUL.
 *   META      moss_bundle_meta, then |ntensors| moss_bundle_tensor_rec, then
 *             |ninputs| uint32 tensor indices (graph input i), then
 *             |noutputs| uint32 tensor indices (graph output i).
 *   DEVICES   moss_bundle_devices, then |count| moss_bundle_device_rec.
 *   PLAN      moss_bundle_plan, then |count| moss_bundle_step_rec, then |nrefs|
 *             uint32 tensor indices that the steps' in/out lists point into.
 *   CODE      the code of device |param| in its device record's format
 *             (moss_bundle_code_format): for a CPU, an ELF relocatable object
 *             from the LLVM backend (loaded by libmossrt's own loader) or an
 *             ELF shared object built from the C backend's code; later
 *             OpenCL C, SPIR-V, PTX.
 *   BLOB      a plugin blob, an OpenCL segment blob (below) on a device
 *             whose backend is "opencl", a PTX segment blob on one whose
 *             backend is "ptx", or a Vulkan segment blob on one whose
 *             backend is "vulkan"; the entry's |param| is the index of
 *             the device that loads it. Blob i is the i-th BLOB section in
 *             table order; an EXEC step on such a device names its blob.
 *   REPORT    the cost and energy report, JSON text followed by one NUL
 *             (the size counts the NUL).
 *   SHAPES    moss_bundle_shapes, then |count| moss_bundle_bound_rec: the
 *             graph outputs with a bounded dynamic axis, then |ngroups|
 *             moss_bundle_group_rec: the model outputs that are sequences
 *             or optionals (below; checked by runtime/src/shape/shape.c).
 *
 * Checksums: CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, initial
 * value and final xor 0xFFFFFFFF; the check value of "123456789" is
 * 0xCBF43926), computed by moss_bundle_crc32() below. The header's
 * |header_crc| covers the header with |header_crc| set to 0, followed by
 * the |section_count| table entries; each entry's |crc| covers its payload
 * (|size| bytes, without padding). Checksums catch accidents, not forgeries:
 * a bundle whose origin matters is signed (moss_bundle_signature). */
#ifndef MOSS_BUNDLE_H
#define MOSS_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MOSS_BUNDLE_MAGIC "MOSSBNDL" /* 8 bytes, no NUL */
#define MOSS_BUNDLE_VERSION 3u
#define MOSS_BUNDLE_ALIGN 64u        /* every section's offset and alignment */
#define MOSS_BUNDLE_MAX_RANK 8
#define MOSS_BUNDLE_MAX_SECTIONS 4096u /* readers reject larger tables */

/* The file header, at offset 0. The char arrays hold NUL-terminated text,
 * NUL-padded to their full length. */
typedef struct moss_bundle_header {
  char magic[8];                 /*   0: MOSS_BUNDLE_MAGIC */
  uint32_t version;              /*   8: MOSS_BUNDLE_VERSION */
  uint32_t header_size;          /*  12: sizeof(moss_bundle_header) = 320 */
  uint64_t file_size;            /*  16: the whole file, in bytes */
  uint64_t section_table_offset; /*  24: 64-aligned, >= header_size */
  uint32_t section_count;        /*  32: entries in the section table */
  uint32_t section_entry_size;   /*  36: sizeof(moss_bundle_section) = 32 */
  uint32_t header_crc;           /*  40: see "Checksums" above */
  uint32_t flags;                /*  44: MOSS_BUNDLE_FLAG_*; readers refuse other bits */
  char target[64];               /*  48: target name, e.g. "x86_64-avx2" */
  char triple[64];               /* 112: the triple of the code that runs on the host CPU
                                  *      device, e.g. "x86_64-pc-linux-gnu" ("" when there is
                                  *      none): a copy of that device record's, so a runtime
                                  *      can refuse another machine's bundle early */
  char features[128];            /* 176: that code's required CPU features, comma-separated,
                                  *      without or with a leading '+' ("avx2,fma"); "" none */
  uint8_t reserved[16];          /* 304: zero */
} moss_bundle_header;            /* 320 */

/* Header flags. SIGNED: the file ends with a moss_bundle_signature.
 * BATCHED (within version 3, below): the model's only open dimension was
 * its batch axis; it is planned for batch 1, and a batch of N is N runs,
 * run i reading slice i of axis 0 of every input and writing slice i of
 * every output (mossrt_run_batch; every input and output has axis 0 of
 * length 1 in META). */
#define MOSS_BUNDLE_FLAG_SIGNED 1u
#define MOSS_BUNDLE_FLAG_BATCHED 2u

typedef enum moss_bundle_section_kind {
  MOSS_BUNDLE_SEC_STRINGS = 1,
  MOSS_BUNDLE_SEC_META = 2,
  MOSS_BUNDLE_SEC_DEVICES = 3,
  MOSS_BUNDLE_SEC_PLAN = 4,
  MOSS_BUNDLE_SEC_CODE = 5,
  MOSS_BUNDLE_SEC_BLOB = 6,
  MOSS_BUNDLE_SEC_REPORT = 7,
  MOSS_BUNDLE_SEC_SHAPES = 8     /* within version 3 (above) */
} moss_bundle_section_kind;

/* One section table entry. */
typedef struct moss_bundle_section {
  uint32_t kind;                 /*  0: moss_bundle_section_kind */
  uint32_t param;                /*  4: CODE and BLOB: device index; otherwise 0 */
  uint64_t offset;               /*  8: from the start of the file, multiple of |align| */
  uint64_t size;                 /* 16: payload bytes, without padding */
  uint32_t align;                /* 24: MOSS_BUNDLE_ALIGN */
  uint32_t crc;                  /* 28: CRC-32 of the payload */
} moss_bundle_section;           /* 32 */

/* A string: |len| bytes at |offset| in the STRINGS section, then a NUL. */
typedef struct moss_bundle_str {
  uint32_t offset;
  uint32_t len;
} moss_bundle_str;

/* Where a tensor lives at run time. */
typedef enum moss_bundle_place_kind {
  MOSS_BUNDLE_PLACE_INPUT = 1,   /* the caller's input buffer number |index| */
  MOSS_BUNDLE_PLACE_OUTPUT = 2,  /* the caller's output buffer number |index| */
  MOSS_BUNDLE_PLACE_ARENA = 3    /* arena + |offset| */
} moss_bundle_place_kind;

/* META section header. */
typedef struct moss_bundle_meta {
  uint64_t arena_bytes;          /*  0: the arena a session needs */
  uint32_t ntensors;             /*  8 */
  uint32_t ninputs;              /* 12: graph inputs */
  uint32_t noutputs;             /* 16: graph outputs */
  uint32_t reserved;             /* 20: zero */
} moss_bundle_meta;              /* 24 */

/* A tensor. |nbytes| is the product of |dims| times the element size of
 * |dtype|. An INPUT tensor with |index| i is the tensor that graph input i
 * names (and likewise for OUTPUT); an ARENA tensor's [offset, offset+nbytes)
 * lies inside the arena and |offset| is 64-aligned. */
typedef struct moss_bundle_tensor_rec {
  moss_bundle_str name;          /*   0 */
  int32_t dtype;                 /*   8: ONNX TensorProto.DataType code */
  int32_t rank;                  /*  12: 0 .. MOSS_BUNDLE_MAX_RANK */
  int64_t dims[MOSS_BUNDLE_MAX_RANK]; /* 16: dims[rank..] are 0 */
  uint64_t nbytes;               /*  80 */
  uint32_t place;                /*  88: moss_bundle_place_kind */
  uint32_t index;                /*  92: INPUT / OUTPUT: position; ARENA: 0 */
  uint64_t offset;               /*  96: ARENA: byte offset in the arena; otherwise 0 */
} moss_bundle_tensor_rec;            /* 104 */

/* DEVICES section header. */
typedef struct moss_bundle_devices {
  uint32_t count;
  uint32_t reserved;
} moss_bundle_devices;           /* 8 */

/* The form of a device's code. */
typedef enum moss_bundle_code_format {
  MOSS_BUNDLE_CODE_NONE = 0,        /* no code (an unused device, or a plugin's blobs) */
  MOSS_BUNDLE_CODE_ELF_SHARED = 1,  /* ELF shared object (the C backend's code, compiled) */
  MOSS_BUNDLE_CODE_ELF_OBJECT = 2,  /* ELF relocatable object (the LLVM backend) */
  MOSS_BUNDLE_CODE_OPENCL_C = 3,    /* OpenCL C source */
  MOSS_BUNDLE_CODE_SPIRV = 4,       /* SPIR-V module */
  MOSS_BUNDLE_CODE_PTX = 5          /* PTX text */
} moss_bundle_code_format;

/* A device of the target. |backend| names the backend that emitted its
 * code ("c", "llvm", ...) or "plugin:NAME" for a plugin device, whose
 * library is |plugin_path| (length 0 for non-plugin devices): its file
 * name only, no folder (e.g. "libmoss-npu-systolic.so"), which the
 * runtime searches for (mossrt.h mossrt_options.plugin_dir); bundles
 * written before this rule hold the path the compiler opened, which is
 * read as before: its file name is searched, then the path. The rule
 * needs no version of its own: the layout is the same, and an older
 * runtime finds a bare file name through plugin_dir, MOSS_PLUGIN_PATH or
 * dlopen()'s own search. A device with |code_format| != NONE
 * has exactly one CODE section (param = its index), for |triple| with
 * |features| (lengths 0 where they do not apply). */
typedef struct moss_bundle_device_rec {
  moss_bundle_str id;            /*  0: e.g. "cpu", "npu" */
  moss_bundle_str kind;          /*  8: "cpu", "gpu", "npu" */
  moss_bundle_str backend;       /* 16 */
  moss_bundle_str plugin_path;   /* 24: a file name (above) */
  moss_bundle_str triple;        /* 32: e.g. "x86_64-pc-linux-gnu" */
  moss_bundle_str features;      /* 40: comma-separated, e.g. "avx2,fma" */
  uint32_t code_format;          /* 48: moss_bundle_code_format */
  uint32_t reserved;             /* 52: zero */
} moss_bundle_device_rec;            /* 56 */

/* PLAN section header. */
typedef struct moss_bundle_plan {
  uint32_t count;                /* steps */
  uint32_t nrefs;                /* uint32 tensor indices after the steps */
} moss_bundle_plan;              /* 8 */

typedef enum moss_bundle_step_rec_kind {
  MOSS_BUNDLE_STEP_KIND_EXEC = 1,     /* run code on |device| */
  MOSS_BUNDLE_STEP_KIND_TRANSFER = 2  /* tensor refs[first] moves from |from| to |device| */
} moss_bundle_step_rec_kind;

/* A step, run in order. EXEC runs one unit of |device|'s code with the
 * buffers of tensors refs[first .. first+nin) as inputs and
 * refs[first+nin .. first+nin+nout) as outputs, and the arena: on a CPU
 * device the unit is the function |entry| of its code, called as
 * int fn(const void *const *in, void *const *out, void *arena) (non-zero
 * means failure), and its tensors are the graph's inputs then the graph's
 * outputs, in order; on a plugin device it is blob |blob| (which must
 * belong to |device|). TRANSFER has nin = 1, nout = 0. */
typedef struct moss_bundle_step_rec {
  uint32_t kind;                 /*  0: moss_bundle_step_rec_kind */
  uint32_t device;               /*  4: device index */
  uint32_t from;                 /*  8: TRANSFER: source device index; otherwise 0 */
  uint32_t blob;                 /* 12: plugin EXEC: blob index; otherwise 0 */
  moss_bundle_str entry;         /* 16: CPU EXEC: symbol name; otherwise length 0 */
  uint32_t nin;                  /* 24 */
  uint32_t nout;                 /* 28 */
  uint32_t first;                /* 32: index of the step's first tensor in refs */
  uint32_t reserved;             /* 36: zero */
} moss_bundle_step_rec;              /* 40 */

/* SHAPES section header. Bounded dynamic shapes: some graph outputs
 * (NonZero, Unique, NonMaxSuppression, TopK with a run-time k) have one
 * axis whose length only the run knows. META describes such an output at
 * its upper bound (dims[axis] is the bound, nbytes the bound's size: the
 * caller's buffer is large enough); the code writes the output compact, as
 * a contiguous tensor of its actual shape, at the start of that buffer,
 * and the actual length of the axis as an int64 (0 .. the bound) into the
 * arena at |offset|. Each record names a different output. */
typedef struct moss_bundle_shapes {
  uint32_t count;                /*  0: moss_bundle_bound_rec that follow */
  uint32_t ngroups;              /*  4: moss_bundle_group_rec after those (below) */
} moss_bundle_shapes;            /* 8 */

typedef struct moss_bundle_bound_rec {
  uint32_t output;               /*  0: graph output index */
  uint32_t axis;                 /*  4: < that output's rank; META's dims[axis] is its bound */
  uint64_t offset;               /*  8: arena byte offset of the int64 length: a multiple of 8,
                                  *     offset + 8 <= META's arena_bytes */
} moss_bundle_bound_rec;         /* 16 */

/* SHAPES' groups: the model's outputs that are sequences or optionals (a
 * list of tensors known at compile time, docs/sequences.md). Model output
 * |position| is the |count| graph outputs from |first| on (META's), in
 * order; the model's other outputs are the remaining graph outputs, in
 * order. Records are sorted by |position|, their ranges do not overlap,
 * and every position is below the model's output count (graph outputs
 * - the groups' counts + the groups). */
typedef struct moss_bundle_group_rec {
  uint32_t position;             /*  0: the model's output number */
  uint32_t first;                /*  4: the graph output of element 0 */
  uint32_t count;                /*  8: elements (0: an empty sequence or optional) */
  uint32_t kind;                 /* 12: 1 a sequence, 2 an optional */
  uint32_t flags;                /* 16: MOSS_BUNDLE_GROUP_* */
  int32_t elem;                  /* 20: the elements' ONNX data type */
} moss_bundle_group_rec;         /* 24 */

#define MOSS_BUNDLE_GROUP_OF_SEQUENCE 1u /* an optional that holds a sequence */
#define MOSS_BUNDLE_GROUP_ABSENT 2u      /* an optional that holds nothing */

/* What the CPU code states it was compiled for (version 3). A device's CPU
 * code (an ELF object or shared object) defines the global constant
 * MOSS_BUNDLE_FIGURES_SYMBOL, 8-byte aligned: this struct; then the
 * bundle's tensors as META decodes them, |ntensors| moss_bundle_figure_tensor;
 * its steps as PLAN decodes them, |nsteps| moss_bundle_figure_step; PLAN's
 * |nrefs| uint32 tensor references; zero padding to a multiple of 8 bytes;
 * then |nentries| pointers to the code's entry functions, in the order the
 * plan's CPU EXEC steps call them. It lives in the code's memory, with the
 * code's pointer size, not in the file. At open, the runtime refuses the
 * bundle unless META's arena, every tensor, every step, every reference
 * and the entry each CPU step resolves to are the ones stated. So META and
 * PLAN forged with repaired checksums cannot send the code, or a plugin
 * fed by it, to memory the compiler did not plan (strings, the devices
 * and the code itself are vouched for only by a signature). */
#define MOSS_BUNDLE_FIGURES_SYMBOL "moss_figures"
#define MOSS_BUNDLE_FIGURES_MAGIC 0x3447494653534f4dull /* "MOSSFIG4", little-endian */

/* How the runtime calls a CPU step's entry (the figures' magic says which
 * convention the code was built for: MOSSFIG3 code took no |par|, and
 * this runtime refuses it):
 *   int entry(const void *const *in, void *const *out, void *arena,
 *             const moss_bundle_par *par);
 * |in| and |out| are the step's tensors' buffers in the plan's order, 0 is
 * success. |par| runs the parts of the code's parallel loops on threads:
 * par->run(par, part, ctx, nparts) calls part(ctx, p) once for each p in
 * [0, nparts), on any threads, and returns when all have returned; the
 * code's parts write disjoint memory, so any order gives the same result.
 * NULL |par|: the code runs the parts itself, in order. */
typedef void (*moss_bundle_part_fn)(void *ctx, uint32_t part);
typedef struct moss_bundle_par moss_bundle_par;
struct moss_bundle_par {
  void (*run)(const moss_bundle_par *par, moss_bundle_part_fn part, void *ctx, uint32_t nparts);
};

typedef struct moss_bundle_figures {
  uint64_t magic;                /*  0: MOSS_BUNDLE_FIGURES_MAGIC */
  uint64_t arena_bytes;          /*  8: META's arena_bytes, the plan's arena */
  uint32_t ntensors;             /* 16: META's tensors */
  uint32_t nsteps;               /* 20: PLAN's steps */
  uint32_t nrefs;                /* 24: PLAN's tensor references */
  uint32_t nentries;             /* 28: the entry points, one per CPU EXEC step */
} moss_bundle_figures;           /* 32 */

/* A tensor record without its name: the fields as the file has them (an
 * INPUT or OUTPUT tensor's offset is 0, an ARENA tensor's index is 0,
 * dims[rank..] are 0). */
typedef struct moss_bundle_figure_tensor {
  int32_t dtype;                 /*  0 */
  int32_t rank;                  /*  4 */
  int64_t dims[MOSS_BUNDLE_MAX_RANK]; /* 8 */
  uint64_t nbytes;               /* 72 */
  uint32_t place;                /* 80 */
  uint32_t index;                /* 84 */
  uint64_t offset;               /* 88 */
} moss_bundle_figure_tensor;     /* 96 */

/* A step record without its entry string, in the file's values (from and
 * blob 0 where they do not apply). */
typedef struct moss_bundle_figure_step {
  uint32_t kind, device, from, blob, nin, nout, first;
} moss_bundle_figure_step;       /* 28 */

/* The trailer of a signed bundle: the file's last 128 bytes. The signature
 * is Ed25519 (RFC 8032, the pure form) over the file's first file_size - 64
 * bytes: everything but |signature| itself, this trailer's other fields
 * included. |public_key| says which key signed; only the key the
 * application trusts decides (runtime/include/mossrt_sign.h). */
#define MOSS_BUNDLE_SIGNATURE_MAGIC "MOSSSIG1" /* 8 bytes, no NUL */
#define MOSS_BUNDLE_SIGNATURE_ED25519 1u

typedef struct moss_bundle_signature {
  char magic[8];                 /*   0: MOSS_BUNDLE_SIGNATURE_MAGIC */
  uint32_t algorithm;            /*   8: MOSS_BUNDLE_SIGNATURE_ED25519 */
  uint32_t size;                 /*  12: sizeof(moss_bundle_signature) = 128 */
  uint8_t public_key[32];        /*  16: the signer's Ed25519 public key */
  uint8_t reserved[16];          /*  48: zero */
  uint8_t signature[64];         /*  64: the Ed25519 signature */
} moss_bundle_signature;         /* 128 */

/* CRC-32 of |n| bytes at |data|, continuing from |crc| (start with 0). */
static inline uint32_t moss_bundle_crc32(uint32_t crc, const void *data, size_t n) {
  static const uint32_t nib[16] = {
      0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u,
      0x4db26158u, 0x5005713cu, 0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
      0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu};
  const unsigned char *p = (const unsigned char *)data;
  crc = ~crc;
  while (n--) {
    crc ^= *p++;
    crc = (crc >> 4) ^ nib[crc & 15u];
    crc = (crc >> 4) ^ nib[crc & 15u];
  }
  return ~crc;
}


/* OpenCL segment blob: the BLOB of one EXEC step on a device whose backend
 * is "opencl" (backends/opencl), run by libmossrt's OpenCL executor
 * (runtime/src/opencl). Little-endian; after the header, in order:
 *   u64 bytes[ntensors]     each tensor of the step (its inputs, then its
 *                           outputs), its own device buffer moss_t<k>
 *   u64 launch[nkernels]    the launch of kernel moss_k<k>: bits 0..31 its
 *                           work-items (1 .. 2^31), bits 32..47 the
 *                           work-group size it needs (version 3; 0: any
 *                           size, the executor picks; else the work-items
 *                           are a multiple of it, and work-item i is lane
 *                           i % size of work-group i / size: the kernel
 *                           shares memory within its work-groups and
 *                           meets at barriers), bits 48..63 zero
 *   u8 source[source_len]   the program, in two forms (version 2):
 *     u64 text_len          (>= 1)
 *     char text[text_len]   the OpenCL C 1.2 program: kernels moss_k0 ..
 *                           moss_k<nkernels-1>, each taking (__global uchar
 *                           *moss_a, __global const uchar *moss_w, __global
 *                           uchar *moss_t0, .. moss_t<ntensors-1>), run in
 *                           order, one work-item dimension each; one
 *                           that computes in float16 has the line
 *                           "#pragma OPENCL EXTENSION cl_khr_fp16 : enable"
 *                           (before any kernel), and runs only where the
 *                           device reports cl_khr_fp16
 *     u8 zero[]             0 to 3 zeros: to a multiple of 4 bytes from the
 *                           start of |source|
 *     u32 spirv[]           the rest of |source|: the same kernels as one
 *                           SPIR-V 1.0 module (little-endian words, Kernel
 *                           capability, OpenCL.std math; entry points
 *                           moss_k<k> taking the same buffers as CrossWorkgroup
 *                           pointers), for devices with cl_khr_il_program or
 *                           OpenCL 2.1's IL support; or nothing, when the
 *                           compiler could not build that form (the text then
 *                           starts with a comment saying why), and every
 *                           device builds the text
 *   u8 weights[weights_bytes] the constants the kernels read (buffer moss_w)
 * and moss_a: |arena_bytes| of device memory for the values that live inside
 * the segment, at their planned offsets. Version 1 had the text alone as
 * |source|; version 2 had no work-group sizes in |launch|. The blobs that
 * share this layout below have the same launch words, and keep their
 * |source| as they describe it. */
#define MOSS_OPENCL_BLOB_MAGIC "MOCL"
#define MOSS_OPENCL_BLOB_VERSION 3u
/* A kernel's launch word, and its two fields. */
#define MOSS_GPU_LAUNCH(items, group) ((uint64_t)(items) | ((uint64_t)(group) << 32))
#define MOSS_GPU_LAUNCH_ITEMS(l) ((uint64_t)(l) & 0xffffffffu)
#define MOSS_GPU_LAUNCH_GROUP(l) (((uint64_t)(l) >> 32) & 0xffffu)
typedef struct moss_opencl_blob_header {
  char magic[4];                 /*  0: MOSS_OPENCL_BLOB_MAGIC */
  uint32_t version;              /*  4: MOSS_OPENCL_BLOB_VERSION */
  uint32_t ntensors;             /*  8 */
  uint32_t nkernels;             /* 12 */
  uint64_t arena_bytes;          /* 16 */
  uint64_t weights_bytes;        /* 24 */
  uint64_t source_len;           /* 32 */
} moss_opencl_blob_header;       /* 40 */

/* PTX segment blob: the BLOB of one EXEC step on a device whose backend is
 * "ptx" (backends/ptx), run by libmossrt's CUDA executor (runtime/src/cuda).
 * The layout of the OpenCL segment blob above, header included (magic
 * MOSS_PTX_BLOB_MAGIC), with |source| the PTX text of one module (ASCII, no
 * NUL) whose entries moss_k0 .. moss_k<nkernels-1> each take (u64 moss_a,
 * u64 moss_w, u64 moss_t0, .. moss_t<ntensors-1>), the device addresses of
 * the arena, the weights and the step's tensors, and run in order; kernel k
 * runs the work-items of launch[k] as threads in one dimension, in blocks of
 * its work-group size (any size where that is 0: each thread with global
 * index at or past the work-items does nothing). Version 1 had no
 * work-group sizes. */
#define MOSS_PTX_BLOB_MAGIC "MPTX"
#define MOSS_PTX_BLOB_VERSION 2u

/* Vulkan segment blob: the BLOB of one EXEC step on a device whose backend
 * is "vulkan" (backends/vulkan), run by libmossrt's Vulkan executor
 * (runtime/src/vulkan). The layout of the OpenCL segment blob above, header
 * included (magic MOSS_VULKAN_BLOB_MAGIC), with |source| one SPIR-V 1.3
 * module (little-endian words, |source_len| a multiple of 4) for Vulkan 1.1
 * compute: GLCompute entry points moss_k0 .. moss_k<nkernels-1>, run in
 * order, each seeing
 *   descriptor set 0, storage buffers: binding 0 the arena moss_a, binding
 *     1 the weights moss_w (read only), binding 2 + k the step's tensor
 *     moss_t<k>; a module may declare one binding several times with
 *     different element types (aliases of the same buffer);
 *   a push-constant block of two u32 at offsets 0 and 4: |items| (the
 *     work-items of launch[k]) and |row|: the invocation whose
 *     GlobalInvocationId is (x, y, 0) runs work-item y * row + x, and none
 *     at or past |items|;
 *   its workgroup size in x as specialization constant 0 (y = z = 1).
 * The executor sets the workgroup size w to the launch's work-group size
 * where it has one, else picks it for the device, dispatches
 * (gx, gy, 1) workgroups with gx * w * gy >= items and passes row = gx * w,
 * with a compute-to-compute barrier between dispatches. The module's
 * OpCapability instructions (at its start) name the device features it
 * needs: Int8 (shaderInt8), Int16, Int64, Float64, StorageBuffer8BitAccess
 * (storageBuffer8BitAccess), StorageBuffer16BitAccess; a device without one
 * is refused at session creation. Buffers of 0 bytes are allocated with
 * at least 4. Version 1 had no work-group sizes. */
#define MOSS_VULKAN_BLOB_MAGIC "MVKS"
#define MOSS_VULKAN_BLOB_VERSION 2u

/* GPU code-forms blob: the BLOB of one EXEC step on a device whose backend
 * is "ptx+vulkan" (backends/gpu/forms.c: a GPU that runs either form, as a
 * Jetson's does). Little-endian: the header (magic MOSS_FORMS_BLOB_MAGIC,
 * u32 version, u32 nforms in 1..4, u32 shared: 0 or 1), then per form a
 * 32-byte entry {char backend[16], NUL-padded: "ptx" or "vulkan"; u64
 * offset; u64 size}, and with |shared| one more entry, named "weights",
 * then the forms' blobs (each that backend's segment blob above, at its
 * offset from the blob's start, 8-aligned, within the blob). With
 * |shared|, the forms' weights are the bytes of the "weights" entry, kept
 * once: each form's segment blob ends after its |source|, its header's
 * weights_bytes the entry's size. libmossrt runs the device with the first
 * form whose executor finds its driver and a device on this machine
 * (MOSS_DEVICE applies to each), in order. Version 1 had no |shared| (the
 * field was 0), and libmossrt still reads it. */
#define MOSS_FORMS_BLOB_MAGIC "MGFM"
#define MOSS_FORMS_BLOB_VERSION 2u
#define MOSS_FORMS_BLOB_HEADER_BYTES 16u
#define MOSS_FORMS_BLOB_ENTRY_BYTES 32u

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(moss_bundle_header) == 320, "moss_bundle_header layout");
_Static_assert(sizeof(moss_opencl_blob_header) == 40, "moss_opencl_blob_header layout");
_Static_assert(sizeof(moss_bundle_section) == 32, "moss_bundle_section layout");
_Static_assert(sizeof(moss_bundle_str) == 8, "moss_bundle_str layout");
_Static_assert(sizeof(moss_bundle_meta) == 24, "moss_bundle_meta layout");
_Static_assert(sizeof(moss_bundle_tensor_rec) == 104, "moss_bundle_tensor_rec layout");
_Static_assert(sizeof(moss_bundle_devices) == 8, "moss_bundle_devices layout");
_Static_assert(sizeof(moss_bundle_device_rec) == 56, "moss_bundle_device_rec layout");
_Static_assert(sizeof(moss_bundle_plan) == 8, "moss_bundle_plan layout");
_Static_assert(sizeof(moss_bundle_step_rec) == 40, "moss_bundle_step_rec layout");
_Static_assert(sizeof(moss_bundle_shapes) == 8, "moss_bundle_shapes layout");
_Static_assert(sizeof(moss_bundle_bound_rec) == 16, "moss_bundle_bound_rec layout");
_Static_assert(sizeof(moss_bundle_group_rec) == 24, "moss_bundle_group_rec layout");
_Static_assert(sizeof(moss_bundle_figures) == 32, "moss_bundle_figures layout");
_Static_assert(sizeof(moss_bundle_figure_tensor) == 96, "moss_bundle_figure_tensor layout");
_Static_assert(sizeof(moss_bundle_figure_step) == 28, "moss_bundle_figure_step layout");
_Static_assert(sizeof(moss_bundle_signature) == 128, "moss_bundle_signature layout");
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "moss_bundle.h: the structs are the file's bytes only on little-endian hosts"
#endif

#ifdef __cplusplus
}
#endif

#endif
