/* backend.h - the backend table: one moss_backend value per kind of code
 * moss can produce, looked up by the name a target XML gives a device
 * (backend="c", backend="llvm", backend="plugin:NAME"). This header is the
 * only way the rest of the compiler reaches a backend: the partitioner asks
 * it which nodes a device takes, the sparse pass which weight formats it can
 * encode, the pipeline whether a device has code at all and whether its
 * segments run as one unit, and the artifact writers (compiler/driver:
 * the bundle, --emit c|obj) get each device's code from it. Nothing outside
 * backends/ names a backend or includes a backend's own header (the build
 * checks it: tests/layers).
 *
 * The table (backend.c) is the only list of backends. Each entry's code
 * stays in its folder: backends/c, backends/llvm, and the plugin adapter
 * (compiler/plugin/plugin.c), which turns one vendor plugin library into
 * the entry "plugin:NAME".
 *
 * Entries are immutable and live for the whole process; a per-compile,
 * per-device binding (moss_backend_device) carries what one compile opened
 * for a device (the plugin adapter: the loaded library). Not thread-safe
 * beyond that: one binding array belongs to one compile session. */
#ifndef MOSS_BACKEND_H
#define MOSS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "../compiler/ir/ir.h"
#include "../compiler/kernel/kernel.h"
#include "../compiler/target/target.h"

/* The code section a backend produces (DESIGN.md "Bundle"). */
typedef enum moss_code_format {
  MOSS_CODE_C_SHARED_OBJECT = 1, /* C99 source, built by the system C compiler into an ELF
                                  * shared object for the device's CPU */
  MOSS_CODE_ELF_OBJECT,          /* an ELF relocatable object, loaded by libmossrt's own loader */
  MOSS_CODE_OPENCL_C,            /* OpenCL C source */
  MOSS_CODE_SPIRV,               /* SPIR-V (OpenCL Kernel or Vulkan Shader flavour) */
  MOSS_CODE_PTX,                 /* NVIDIA PTX */
  MOSS_CODE_PLUGIN_BLOB          /* a vendor plugin's blob, run by its runtime driver */
} moss_code_format;

/* The CPU code section a backend built for a bundle (moss_backend.emit_code). */
typedef struct moss_backend_code {
  uint8_t *bytes;     /* |size| bytes, owned: release with moss_backend_code_deinit() */
  size_t size;
  size_t alloc;       /* the size |bytes| was allocated with (what deinit frees) */
  char triple[128];   /* the CPU it runs on: the device's <codegen triple>, or where it names
                       * none (the C backend) "<this machine's arch>-unknown-linux-gnu" */
  char features[512]; /* the ISA features the runtime must find, comma-separated without
                       * '+' ("avx2,fma"); "": none beyond the triple's */
} moss_backend_code;

typedef struct moss_backend moss_backend;
struct moss_plugin;

/* One device of one target bound to its backend for one compile. */
typedef struct moss_backend_device {
  const moss_backend *backend; /* NULL: this build has no backend by the device's backend= */
  const char *name;            /* the backend it is bound by: backend= ("plugin:npu"), or the
                                * name of the one --emit chose (moss_backend_device_bind) */
  moss_ctx *ctx;               /* the compile session (allocations, diagnostics) */
  const moss_target *target;
  int device;                  /* index in |target| */
  void *state;                 /* the backend's own, from its open(); NULL when it has none
                                * (the plugin adapter: the loaded plugin; NULL when the target
                                * names no library, the device then placed for costing only) */
} moss_backend_device;

/* The code forms of moss_backend.dot4_forms. */
enum { MOSS_DOT4_SPIRV = 1, MOSS_DOT4_PTX = 2 };

struct moss_backend {
  /* As a device's backend= names it; "plugin:" is the plugin adapter, which
   * serves every "plugin:NAME". */
  const char *name;
  /* The --emit value whose CPU code this backend writes ("c": C sources,
   * "obj": a native object); NULL: only inside bundles. */
  const char *emit_flag;
  moss_code_format code;
  /* The sparse weight formats it can encode, one MOSS_SPARSE_BIT per code
   * of compiler/ops/sparse.h (dense needs no bit; 0: dense only). */
  unsigned sparse_formats;
  /* Set: it lowers kernels for the device's CPU as the target's <codegen>
   * describes it (vector width, FMA: moss_backend_device_kernel_cpu), so
   * its code uses the register-tiled fast paths, and this gives those
   * facts from the <codegen> triple, cpu and features exactly as the
   * backend reads them (cpu="native": the machine moss runs on); the GPU
   * backends (opencl, ptx) give only moss_kernel_cpu.gpu, for the GPU's
   * kernel shapes; NULL: it lowers portable loops (the C backend, whose
   * code any C compiler builds). */
  void (*machine_facts)(const char *triple, const char *cpu, const char *features,
                        moss_kernel_cpu *out);
  /* 1: a segment on its device runs as one opaque unit (the planner keeps
   * what the segment touches live across all of it, moss_node.opaque);
   * 0: node by node, in the plan's steps. */
  int opaque;
  /* 1: its code runs inside the runtime's own process, on the CPU: in a
   * bundle, the segments of every such device become one CPU code section,
   * built by the host device's emit_code, and each is an EXEC step calling
   * <name>_seg<k>. 0: it runs on a device of its own, one blob per segment
   * (emit_segment). */
  int in_process;
  /* 1: it lowers every node through the kernel descriptions
   * (compiler/kernel), so it takes moss's own forms of nodes that passes
   * after partition make on its devices: a Conv's residual input and the
   * MossFused chains (compiler/passes/fuse.c). 0: a plugin's, which sees
   * the nodes the model has. */
  int kernels;
  /* The code forms whose byte dot product DOT4S needs (MOSS_DOT4_*, or'ed):
   * SPIRV, Vulkan's OpSDot, where the target's spirv-capabilities list
   * DotProductInput4x8BitPacked; PTX, dp4a, from sm_61. The GPU has DOT4S
   * (moss_kernel_cpu.gpu_dot4) when every form the backend writes has it;
   * 0: none. */
  unsigned dot4_forms;
  /* 1: it computes float16 as such where the device has it
   * (moss_kernel_cpu.half: an AArch64 <codegen> with +fullfp16; a SPIR-V
   * device whose spirv-capabilities list Float16 and
   * StorageBuffer16BitAccess; PTX from sm_53; an OpenCL device whose
   * opencl-extensions list cl_khr_fp16), the "half" pass's nodes (passes/half.c,
   * moss_node.native_half); 0: float16 only through Casts to float32. */
  int native_half;
  /* 1 when it has code for |n| on device d->device; 0 when not, with the
   * reason in |why| (NUL-terminated, at most |cap| bytes). A binding whose
   * state its backend needs but lacks (a plugin device without a library)
   * takes every node: the device's <ops> list decides, for costing. */
  int (*takes)(const moss_backend_device *d, const moss_node *n, char *why, size_t cap);
  /* Opens d->state for one compile; NULL when the backend keeps none.
   * Reports through d->ctx on failure (d->state stays NULL). */
  moss_status (*open)(moss_backend_device *d);
  /* Releases d->state (never called with NULL state). */
  void (*close)(moss_backend_device *d);
  /* Writes the standalone form of |g| (every node on d->device, planned)
   * into the folder |dir|, made if missing: <name>.h, the code (C sources;
   * a native object) and <name>.manifest, what `moss run` loads, removing
   * what another backend's form left there. |timings|: print the backend's
   * own stage times to stderr (-v). Present exactly when emit_flag is. Errors:
   * io, target (the LLVM backend: a device without <codegen triple>), and
   * those of code generation. */
  moss_status (*emit_standalone)(const moss_backend_device *d, moss_graph *g, const char *name,
                                 const char *dir, const char *source_hash, int timings);
  /* Builds a bundle's CPU code section for |g| (partitioned, planned) on
   * the host device |d|: one function per segment k < |nseg| whose
   * |segs|[k] is set, int <name>_seg<k>(const void *const *in, void *const
   * *out, void *arena), running that segment's nodes; in[] and out[] are
   * the graph's inputs and outputs. The code also defines the constant
   * MOSS_BUNDLE_FIGURES_SYMBOL (runtime/include/moss_bundle.h,
   * moss_bundle_figures), 8-byte aligned: the |nfigures| bytes at
   * |figures| (the bundle's arena, tensors, steps and references, from
   * compiler/bundle; a multiple of 8), then pointers to the segment
   * functions in segment order; libmossrt holds the bundle to them before
   * it runs anything. Its format is |code|; |source_hash| goes into its banner; |timings| as
   * for emit_standalone. |*out_code| is zeroed on entry and the caller's
   * on success. Errors: target (a bare-metal triple or a missing cross
   * compiler for the C backend, no triple for the LLVM backend), io (the C
   * compiler failed), and those of code generation. NULL: none (backends
   * that are not in_process). */
  moss_status (*emit_code)(const moss_backend_device *d, moss_graph *g, const char *name,
                           const char *source_hash, const unsigned char *segs, int nseg,
                           const uint8_t *figures, size_t nfigures, int timings,
                           moss_backend_code *out_code);
  /* Lowers one segment of a device that is not in_process: |nodes|
   * (|nnodes| >= 1, consecutive in |g|, in execution order, all on
   * d->device) to a blob appended to |blob|. The value ids the blob reads
   * and writes, in the order its runtime driver gets the buffers, go to
   * |*out_in_ids| (|*out_nin|) and |*out_out_ids| (|*out_nout|), arrays the
   * caller frees with moss_free(ctx, ids, count * sizeof(int)), NULL when
   * the count is 0 (compiler/plugin/plugin.h, moss_plugin_lower, has the
   * whole contract). NULL: none (in_process backends). */
  moss_status (*emit_segment)(const moss_backend_device *d, const moss_graph *g,
                              moss_node *const *nodes, int nnodes, moss_buf *blob,
                              int **out_in_ids, int *out_nin, int **out_out_ids, int *out_nout);
  /* The device's own estimate of |n| (the plugin adapter: the plugin's
   * estimate()): 1 with |*out_cycles| and |out_level_bytes| (|nlevels|
   * entries, the device's memory levels) set; 0 when it has none. NULL
   * hook: the cost model's roofline alone. */
  int (*estimate)(const moss_backend_device *d, const moss_node *n, double *out_cycles,
                  double *out_level_bytes, int nlevels);
  /* The shared library the runtime loads to run d's code, recorded in the
   * bundle (the plugin adapter: plugin=, as opened); NULL: none. NULL hook:
   * never one. */
  const char *(*library)(const moss_backend_device *d);
};

/* Frees what emit_code put in |c| and zeroes it; a zeroed |c| is a no-op. */
void moss_backend_code_deinit(moss_ctx *ctx, moss_backend_code *c);

/* The backend a device's backend= names: "c", "llvm", or "plugin:NAME"
 * (NAME not empty) for the plugin adapter; NULL when this build has none
 * ("vulkan" today). The result lives for the process. */
const moss_backend *moss_backend_find(const char *name);

/* The backend whose standalone form `--emit |flag|` asks for ("c", "obj");
 * NULL when none ("bundle" is not a backend's). */
const moss_backend *moss_backend_find_for_emit(const char *flag);

/* Binds every device of |t| to moss_backend_find() of its backend= and
 * opens each binding (the plugin adapter loads the library plugin= names).
 * |*out_devices| gets moss_target_device_count(t) bindings that the caller
 * releases with moss_backend_devices_destroy(). On failure |*out_devices|
 * is NULL, whatever was opened is closed, and the backend has reported why
 * (MOSS_E_TARGET for a plugin library that cannot be loaded, MOSS_E_NOMEM). */
moss_status moss_backend_devices_create(moss_ctx *ctx, const moss_target *t,
                                        moss_backend_device **out_devices);
/* Closes every binding of |devices| (|t|'s) and frees the array; NULL is a
 * no-op. */
void moss_backend_devices_destroy(moss_ctx *ctx, const moss_target *t,
                                  moss_backend_device *devices);

/* Rebinds |d| to |b| (NULL: none, name NULL), closing what the old backend
 * opened and opening the new one's state; d->name becomes b->name. Used
 * when --emit names the code the host device gets ("--emit obj": the LLVM
 * backend's, whatever backend= says). */
moss_status moss_backend_device_bind(moss_backend_device *d, const moss_backend *b);
/* The bound backend's estimate of |n| on its device (moss_backend.estimate);
 * 0 when it has none. */
int moss_backend_device_estimate(const moss_backend_device *d, const moss_node *n,
                                 double *out_cycles, double *out_level_bytes, int nlevels);

/* 1 when |d| can emit code: it has a backend, and the state its backend
 * opens (the plugin adapter: a library). 0 otherwise, with the reason in
 * |why|, a clause to follow "device 'gpu' wants backend 'opencl', ": "which
 * this build does not have yet", "whose library the target does not name
 * (no plugin= in FILE)". */
int moss_backend_device_ready(const moss_backend_device *d, char *why, size_t cap);

/* The machine facts kernels lowered for |d| see (compiler/kernel/kernel.h):
 * from the device's <codegen> triple, cpu and features when its backend
 * takes machine_facts, else all zero. */
void moss_backend_device_kernel_cpu(const moss_backend_device *d, moss_kernel_cpu *out);
/* The loaded plugin of a plugin device, else NULL (the plugin adapter's
 * state: the hooks above are how the writers use it). */
struct moss_plugin *moss_backend_device_plugin(const moss_backend_device *d);

#endif
