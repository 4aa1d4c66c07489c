/* llvm.h - the native backend: kernel descriptions (compiler/kernel) built
 * into one LLVM module per CPU code section through the LLVM C API,
 * verified, optimized with the new pass manager for the target's triple,
 * CPU and features, and emitted as an ELF relocatable object in memory. No
 * C compiler runs. The object defines the same entry points as the C
 * backend's code: <prefix>_run_v(in, out, arena) and <prefix>_run(in0...,
 * out0..., arena), so one generated header serves both. */
#ifndef MOSS_LLVM_H
#define MOSS_LLVM_H

#include "../../compiler/ir/ir.h"
#include "../backend.h"

typedef struct moss_llvm_target {
  const char *triple;   /* "x86_64-pc-linux-gnu" */
  const char *cpu;      /* "x86-64-v4", "native" (the machine moss runs on), NULL: generic */
  const char *features; /* "+avx2,+fma", NULL: none beyond the CPU's */
  int threads;          /* the most threads the code may run on: parallel loops are cut into
                         * parts (moss_kernel_plan_parts) that the runtime's pool runs; 0 or
                         * 1: none (the standalone object, whose entries have no pool) */
} moss_llvm_target;

typedef struct moss_llvm_stats {
  double build_s, optimize_s, emit_s; /* seconds per stage */
} moss_llvm_stats;

/* The machine facts kernels are lowered for on |triple|, |cpu| and
 * |features| as this backend builds them: cpu "native" (or NULL features
 * with it) is the CPU moss runs on, with its features
 * (moss_backend.machine_facts). */
void moss_llvm_kernel_cpu(const char *triple, const char *cpu, const char *features,
                          moss_kernel_cpu *out);

/* Whether the LLVM backend has code for |n| (its family has a lowering). */
int moss_llvm_can_emit(const moss_node *n);

/* Builds the object for every node of |g| (planned), entry points named
 * after |prefix|. With |segs| (|nseg| flags, one per segment of the
 * partition) the object holds instead one function per flagged segment,
 * int <prefix>_seg<k>(const void *const *in, void *const *out, void *arena),
 * running that segment's nodes (the segmented form a bundle's plan calls,
 * the same as the C backend's), and the constant moss_figures
 * (moss_bundle.h): the |nfigures| bytes at |figures| (a multiple of 8),
 * then those functions in order. |*out_obj| (|*out_size| bytes) is the caller's, freed with
 * moss_free(ctx, obj, size). |out_stats| may be NULL. Errors: unsupported
 * (a node without a kernel description, a triple this LLVM lacks), target
 * (a CPU or feature LLVM does not know), internal (the module failed
 * verification: our bug), out-of-memory. */
moss_status moss_llvm_emit_object(moss_ctx *ctx, moss_graph *g, const moss_llvm_target *t,
                                  const char *prefix, const unsigned char *segs, int nseg,
                                  const uint8_t *figures, size_t nfigures, uint8_t **out_obj,
                                  size_t *out_size, moss_llvm_stats *out_stats);

/* The LLVM backend's entries in the backend table (native.c), over
 * moss_llvm_emit_object with the device's <codegen> triple, cpu and
 * features; |timings| prints the stage times (moss_llvm_stats) to stderr.
 * moss_backend.emit_standalone: <dir>/<name>.o, the C backend's <name>.h
 * and a manifest naming the object (`moss run`); what --emit c left in
 * |dir| is removed. moss_backend.emit_code: the object of a bundle's CPU
 * segments, its features without '+' (none for cpu="native": the runtime
 * checks the architecture only). Both fail with MOSS_E_TARGET when the
 * device names no triple (backend.h has the rest of the contracts). */
moss_status moss_llvm_emit_standalone(const moss_backend_device *d, moss_graph *g, const char *name,
                                      const char *dir, const char *source_hash, int timings);
moss_status moss_llvm_emit_code(const moss_backend_device *d, moss_graph *g, const char *name,
                                const char *source_hash, const unsigned char *segs, int nseg,
                                const uint8_t *figures, size_t nfigures, int timings,
                                moss_backend_code *out_code);

/* A segment of a GPU device as one module of kernels, for NVPTX (the PTX
 * backend) or for spir64 (the OpenCL backend's SPIR-V form): kernel
 * moss_k<j> runs nodes[j], taking |nparams| pointers (backends/gpu/
 * segment.h: moss_a, moss_w, moss_t0, ...) and finding each of its inputs
 * and outputs at |where|'s parameter and byte offset; the loops of
 * moss_kernel_grid become work-items. The triple says which:
 * - "nvptx64-nvidia-cuda": PTX kernels (calling convention PTX_Kernel),
 *   the thread index from the special registers, exp and log from the
 *   special-function unit, the module emitted by LLVM's NVPTX target;
 * - "spir64-unknown-unknown": SPIR kernels (calling convention
 *   SPIR_KERNEL) on addrspace(1) (global) pointers with the kernel_arg_*
 *   metadata of OpenCL C 1.2, the work-item index from get_global_id(0),
 *   math through the OpenCL C builtins by their mangled names (_Z3expf);
 *   LLVM 19 has no target for it: the module gets a spir64 data layout,
 *   is optimized without a target machine, and written as bitcode that
 *   LLVM 15's reader takes (what llvm-spirv-15 reads). */
typedef struct moss_llvm_gpu {
  const char *triple;   /* "nvptx64-nvidia-cuda", "spir64-unknown-unknown" */
  const char *cpu;      /* "sm_90"; NULL for spir64 */
  const char *features; /* "+ptx78", NULL: the CPU's default PTX version */
  int nparams;
  void (*where)(void *user, const moss_value *v, int *param, int64_t *offset);
  /* a kernel's constant table: its bytes placed in the constants
   * (parameter 1), at the offset returned */
  int64_t (*table)(void *user, const void *data, size_t bytes);
  void *user;
  /* the GPU the kernels are lowered for (moss_backend_device_kernel_cpu of
   * its device: the work-group limits); .gpu is set whatever it holds */
  moss_kernel_cpu facts;
} moss_llvm_gpu;

/* Whether the NVPTX code has |n|: a kernel description using only
 * functions PTX has (exp and log of f32 from the special-function unit;
 * none of the C library's) and no arena scratch; else the reason in |why|.
 * Reports nothing through |ctx| (its allocator is used). */
int moss_llvm_nvptx_takes(moss_ctx *ctx, const moss_node *n, char *why, size_t cap);

/* The same for spir64: the math of OpenCL C's builtins on float32 and
 * float64 (exp, log, pow, tanh, erf, fmod, ...), no DOT4, DOT4S or TBL128
 * (CPU instructions), no arena scratch. */
int moss_llvm_spir_takes(moss_ctx *ctx, const moss_node *n, char *why, size_t cap);

/* Builds the module of |nodes| (|nnodes| >= 1), optimized: for NVPTX the
 * PTX text (NUL-terminated), for spir64 the bitcode; |*out_code|
 * (|*out_len| bytes, the caller's, freed with moss_free(ctx, code, len +
 * 1)). Each node is one kernel or several (moss_kernel_launches), numbered
 * in order; |items| gets each kernel's work-item count, an int64_t each.
 * Errors: unsupported (a node moss_llvm_nvptx_takes or
 * moss_llvm_spir_takes refuses), target (a cpu or feature LLVM does not
 * know), internal, out-of-memory. */
moss_status moss_llvm_emit_gpu(moss_ctx *ctx, const moss_graph *g, moss_node *const *nodes, int nnodes,
                               const moss_llvm_gpu *t, moss_buf *items, char **out_code, size_t *out_len);

#endif
