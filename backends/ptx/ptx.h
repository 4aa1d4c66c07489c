/* ptx.h - the PTX backend (ptx.c): each segment on an NVIDIA GPU becomes
 * one PTX module built from the kernel descriptions through LLVM's NVPTX
 * target (backends/llvm, moss_llvm_emit_gpu), in a blob
 * (runtime/include/moss_bundle.h, "PTX segment blob") that libmossrt's
 * CUDA executor runs. */
#ifndef MOSS_PTX_H
#define MOSS_PTX_H

#include "../backend.h"

/* moss_backend.takes: a node whose kernel description NVPTX code has
 * (moss_llvm_nvptx_takes) on types of 8 to 64 bits (no float16 yet). */
int moss_ptx_takes(const moss_backend_device *d, const moss_node *n, char *why, size_t cap);

/* moss_backend.emit_segment: the blob of |nodes| (backend.h has the
 * contract), for the device's <codegen triple cpu features>
 * ("nvptx64-nvidia-cuda", "sm_90"). Errors: target (no triple, or one
 * that is not NVPTX), those of moss_llvm_emit_gpu. */
moss_status moss_ptx_emit_segment(const moss_backend_device *d, const moss_graph *g, moss_node *const *nodes,
                                  int nnodes, moss_buf *blob, int **out_in_ids, int *out_nin,
                                  int **out_out_ids, int *out_nout);

#endif
