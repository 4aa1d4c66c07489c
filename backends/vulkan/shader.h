/* shader.h - moss's own SPIR-V emitter for Vulkan compute (shader.c): the
 * kernel descriptions of a segment's nodes as one Shader-capability SPIR-V
 * 1.3 module, one GLCompute entry point per launch, in the interface of the
 * Vulkan segment blob (runtime/include/moss_bundle.h).
 *
 * Why an emitter of moss's own, not GLSL through shaderc or glslang: the
 * kernel description is already a structured tree (loops, ifs, typed
 * expressions, loads and stores at element indices of named buffers),
 * which is what Shader SPIR-V wants (structured control flow, typed access
 * chains), so each description node maps to a few instructions; a GLSL
 * printer would be a third C-like dialect of the printer whose text a C++
 * front end (shaderc or glslang, each tens of MB) parses back into the same
 * tree. The emitter is a few hundred lines with no dependency beyond
 * SPIR-V's header (spirv-headers), and every module it makes is checked by
 * SPIRV-Tools before it goes into a bundle (backends/gpu/spirv.h). */
#ifndef MOSS_VULKAN_SHADER_H
#define MOSS_VULKAN_SHADER_H

#include <stddef.h>
#include <stdint.h>

#include "../backend.h"

/* Where the module finds a node's input or output |v|: the descriptor
 * binding (0 arena, 1 weights, 2 + k the step's tensor k) and the byte
 * offset in it; a kernel's constant table: its byte offset in the weights
 * (binding 1). */
typedef struct moss_shader_layout {
  void (*where)(void *user, const moss_value *v, int *binding, int64_t *offset);
  int64_t (*table)(void *user, const void *data, size_t bytes);
  void *user;
  moss_kernel_cpu facts; /* the GPU lowered for (moss_backend_device_kernel_cpu of its device) */
} moss_shader_layout;

/* 1 when the emitter has code for |n|'s kernel description (lowered for a
 * GPU: moss_kernel_cpu.gpu); 0 with the reason in |why|. */
int moss_shader_takes(moss_ctx *ctx, const moss_node *n, char *why, size_t cap);

/* The module of |nodes| (each taken by moss_shader_takes): appends each
 * launch's work-item count (int64) to |items| and the module's words to
 * |words| (little-endian, as the host's), already validated. */
moss_status moss_shader_emit(moss_ctx *ctx, const moss_graph *g, moss_node *const *nodes, int nnodes,
                             const moss_shader_layout *lay, moss_buf *items, moss_buf *words);

#endif
