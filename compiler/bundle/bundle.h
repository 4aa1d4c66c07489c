/* bundle.h - writing a .moss bundle (DESIGN.md "Bundle"). The pipeline
 * fills a moss_bundle_desc with what it decided (tensors, devices, steps,
 * code, report) and moss_bundle_write() lays it out in the format of
 * runtime/include/moss_bundle.h, which libmossrt reads. Nothing here knows
 * about the IR: the description is plain data. */
#ifndef MOSS_BUNDLE_WRITE_H
#define MOSS_BUNDLE_WRITE_H

#include <stdint.h>

#include "../base/base.h"

/* Where a tensor lives at run time. */
typedef enum moss_bundle_place {
  MOSS_BUNDLE_INPUT = 1,   /* the caller's input buffer number |index| */
  MOSS_BUNDLE_OUTPUT = 2,  /* the caller's output buffer number |index| */
  MOSS_BUNDLE_ARENA = 3    /* arena + |offset| */
} moss_bundle_place;

typedef struct moss_bundle_tensor {
  const char *name;
  int32_t dtype;           /* ONNX TensorProto code */
  int32_t rank;            /* 0 .. 8 */
  int64_t dims[8];
  uint64_t nbytes;
  moss_bundle_place place;
  uint32_t index;          /* INPUT / OUTPUT: position among the graph's inputs / outputs */
  uint64_t offset;         /* ARENA: byte offset, 64-aligned */
} moss_bundle_tensor;

typedef struct moss_bundle_device {
  const char *id;          /* the target's device id, e.g. "cpu", "npu" */
  const char *kind;        /* "cpu", "gpu", "npu" */
  const char *backend;     /* "c", "plugin:NAME" ... */
  const char *plugin_path; /* plugins: the library's file name (moss_bundle.h); else NULL */
  int runs_blobs;          /* 1: each EXEC step on it runs a blob of its own (a plugin's, a GPU
                            * segment's); 0: its code is in the CPU code section (C, LLVM) or
                            * it has none. The driver fills it from the backend table. */
} moss_bundle_device;

typedef enum moss_bundle_step_kind {
  MOSS_BUNDLE_STEP_EXEC = 1,     /* run code on |device| */
  MOSS_BUNDLE_STEP_TRANSFER = 2  /* tensor in[0] moves from device |from| to |device| */
} moss_bundle_step_kind;

typedef struct moss_bundle_step {
  moss_bundle_step_kind kind;
  uint32_t device;         /* index into devices */
  uint32_t from;           /* TRANSFER: source device */
  /* EXEC runs a unit of the device's code on the buffers of tensors in[]
   * and out[], in this order, and the arena. On the CPU device (the one
   * with cpu_code) the unit is the symbol |entry| of the CPU code, called as
   * int fn(const void *const *in, void *const *out, void *arena); on a
   * plugin device |blob| indexes the blobs. */
  const char *entry;
  uint32_t blob;
  uint32_t nin, nout;
  const uint32_t *in;      /* tensor indices */
  const uint32_t *out;
} moss_bundle_step;

/* A graph output with a bounded dynamic axis (moss_bundle.h, SHAPES): its
 * tensor's dims[|axis|] is the upper bound the arena and the caller's
 * buffer are planned for; the code writes the output compact at the start
 * of its buffer and the axis's actual length, an int64, at arena +
 * |offset| (a multiple of 8, inside the arena). */
typedef struct moss_bundle_bound {
  uint32_t output;         /* graph output index */
  uint32_t axis;           /* < that output tensor's rank */
  uint64_t offset;         /* arena byte offset of the int64 length */
} moss_bundle_bound;

/* A model output that is a sequence or an optional (moss_bundle.h,
 * SHAPES' groups): its |count| elements are the graph outputs from |first| on. */
typedef struct moss_bundle_group {
  uint32_t position;       /* the model's output number */
  uint32_t first, count;
  uint32_t kind;           /* 1 a sequence, 2 an optional */
  uint32_t flags;          /* 1: an optional of a sequence; 2: an empty optional */
  int32_t elem;            /* the elements' ONNX data type */
} moss_bundle_group;

typedef struct moss_bundle_desc {
  const char *target;      /* target name */
  const char *triple;      /* the CPU code's triple, e.g. "x86_64-pc-linux-gnu"; NULL: none */
  const char *features;    /* required CPU features, comma-separated ("avx2,fma"); "" none */
  uint64_t arena_bytes;
  uint32_t ntensors, ninputs, noutputs, ndevices, nsteps, nblobs;
  const moss_bundle_tensor *tensors;
  const uint32_t *inputs;  /* tensor index of graph input i */
  const uint32_t *outputs; /* tensor index of graph output i */
  const moss_bundle_device *devices;
  const moss_bundle_step *steps;
  const void *cpu_code;    /* the code of device |cpu_device|, holding the cpu entries; NULL: none */
  uint64_t cpu_code_bytes;
  uint32_t cpu_device;     /* the device the CPU code runs on */
  uint32_t cpu_code_format; /* MOSS_BUNDLE_CODE_ELF_SHARED (0 means that too) or _ELF_OBJECT */
  const void *const *blobs;
  const uint64_t *blob_bytes;
  const uint32_t *blob_device; /* device index each blob is for */
  const char *report_json; /* the cost and energy report; NULL: none */
  /* The outputs with a bounded dynamic axis, each output at most once: the
   * SHAPES section. 0: none, and no section (the bundle is as before it). */
  uint32_t nbounds;
  const moss_bundle_bound *bounds;
  /* The model outputs that are sequences or optionals (docs/sequences.md),
   * sorted by position: SHAPES' groups. 0 (and no bounds): no section. */
  uint32_t ngroups;
  const moss_bundle_group *groups;
  /* An Ed25519 secret key (64 bytes, libsodium's layout: seed, then public
   * key; runtime/include/mossrt_sign.h): the bundle is signed with it
   * (header flag MOSS_BUNDLE_FLAG_SIGNED and the signature trailer). NULL:
   * unsigned. */
  const uint8_t *sign_key;
  /* Planned for batch 1 and run over slices of axis 0 of every input and
   * output (header flag MOSS_BUNDLE_FLAG_BATCHED; moss_graph.batch). */
  int batched;
} moss_bundle_desc;

/* Writes |d| to |path| (atomically: a temporary file renamed into place).
 * Checks the description (indices in range, offsets aligned and inside the
 * arena, a CPU step's tensors the graph's inputs then outputs, each bound's
 * output, axis and offset, no output bound twice) and fails with
 * MOSS_E_INTERNAL naming the bad field; MOSS_E_IO when |sign_key| is
 * damaged (its public half is not its seed's). */
moss_status moss_bundle_write(moss_ctx *ctx, const moss_bundle_desc *d, const char *path);

/* Appends to |out| the figures |d|'s CPU code must state (moss_bundle.h,
 * moss_bundle_figures): the header, every tensor and step as the writer
 * will lay META and PLAN out, the tensor references, zero padding to 8
 * bytes; what follows, the pointers to the code's entries (one per EXEC
 * step on |cpu_device|, in step order), is the code's to add. |d|
 * need not have its code yet. Errors: internal (a step's device or tensor
 * list is bad), out-of-memory. */
moss_status moss_bundle_figures_emit(moss_ctx *ctx, const moss_bundle_desc *d, moss_buf *out);

#endif
