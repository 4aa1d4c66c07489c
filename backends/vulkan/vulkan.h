/* vulkan.h - the Vulkan backend (vulkan.c): each segment on a Vulkan
 * device becomes one Shader-capability SPIR-V module written by moss's own
 * emitter (shader.c) from the kernel descriptions, in a blob
 * (runtime/include/moss_bundle.h, "Vulkan segment blob") that libmossrt's
 * Vulkan executor runs. */
#ifndef MOSS_VULKAN_H
#define MOSS_VULKAN_H

#include "../backend.h"

/* moss_backend.takes: a node whose values have 8 to 64-bit types (no
 * float16 yet) and whose GPU kernel description the emitter has code for
 * (moss_shader_takes). */
int moss_vulkan_takes(const moss_backend_device *d, const moss_node *n, char *why, size_t cap);

/* moss_backend.emit_segment: the blob of |nodes| (backend.h has the
 * contract). Errors: those of the emitter (internal: a module SPIRV-Tools
 * refuses). */
moss_status moss_vulkan_emit_segment(const moss_backend_device *d, const moss_graph *g, moss_node *const *nodes,
                                     int nnodes, moss_buf *blob, int **out_in_ids, int *out_nin,
                                     int **out_out_ids, int *out_nout);

#endif
