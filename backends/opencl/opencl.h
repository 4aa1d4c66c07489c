/* opencl.h - the OpenCL backend (opencl.c): OpenCL C printed from the
 * kernel descriptions and the same kernels as SPIR-V (translate.c), one
 * blob per segment carrying both (runtime/include/moss_bundle.h, "OpenCL
 * segment blob"), run by libmossrt's OpenCL executor. */
#ifndef MOSS_OPENCL_H
#define MOSS_OPENCL_H

#include <stddef.h>
#include <stdint.h>

#include "../backend.h"

/* moss_backend.takes: a node with a kernel description whose tensors have
 * types OpenCL C 1.2 has without extensions (no float64, no float16). */
int moss_opencl_takes(const moss_backend_device *d, const moss_node *n, char *why, size_t cap);

/* moss_backend.emit_segment: the blob of |nodes| (backend.h has the contract). */
moss_status moss_opencl_emit_segment(const moss_backend_device *d, const moss_graph *g,
                                     moss_node *const *nodes, int nnodes, moss_buf *blob,
                                     int **out_in_ids, int *out_nin, int **out_out_ids, int *out_nout);

/* translate.c: the spir64 bitcode of a segment (|n| bytes, from
 * moss_llvm_emit_gpu) as a SPIR-V 1.0 module for OpenCL, by llvm-spirv-15
 * (or the program MOSS_LLVM_SPIRV names), validated for OpenCL 1.2:
 * |*out_words| (|*out_nwords| words, the caller's, freed with
 * moss_free(ctx, words, 4 * nwords)). Errors at |at|: unsupported (no
 * translator: "llvm-spirv-15 not found: install Debian's llvm-spirv-15"),
 * internal (the translator refused the module, or the module does not
 * validate: our bug), io, out-of-memory. */
moss_status moss_opencl_spirv(moss_ctx *ctx, const char *bitcode, size_t n, const moss_node *at,
                              uint32_t **out_words, size_t *out_nwords);

#endif
