/* vulkan.c - the Vulkan backend: each segment of nodes on a Vulkan device
 * becomes one blob (runtime/include/moss_bundle.h, "Vulkan segment blob")
 * holding one SPIR-V module for Vulkan 1.1 compute, made by moss's own
 * emitter (shader.c) from the nodes' kernel descriptions, the work-items of
 * each kernel and the constant weights. The segment's memory is laid out as
 * the other GPU backends' (backends/gpu/segment.h); a buffer of the layout
 * is a descriptor binding: 0 the arena mirror, 1 the weights, 2 + k the
 * step's tensor k. */
#include <stdio.h>
#include <string.h>

#include "../gpu/segment.h"
#include "moss_bundle.h"
#include "shader.h"
#include "vulkan.h"

int moss_vulkan_takes(const moss_backend_device *d, const moss_node *n, char *why, size_t cap) {
  int i;
  for (i = 0; i < n->ninputs + n->noutputs; i++) {
    const moss_value *v = i < n->ninputs ? n->inputs[i] : n->outputs[i - n->ninputs];
    if (v && ((moss_dtype_is_half(v->dtype) && !moss_kernel_half_ok(n)) || moss_dtype_size(v->dtype) == 0 ||
              v->dtype == MOSS_DT_STRING)) {
      snprintf(why, cap, "%s has type %s (the Vulkan backend computes float16 in float32, after a Cast, "
               "unless the device lists Float16 and StorageBuffer16BitAccess)",
               v->name, moss_dtype_name(v->dtype));
      return 0;
    }
  }
  return moss_shader_takes(d->ctx, n, why, cap);
}

moss_status moss_vulkan_emit_segment(const moss_backend_device *d, const moss_graph *g, moss_node *const *nodes,
                                     int nnodes, moss_buf *blob, int **out_in_ids, int *out_nin,
                                     int **out_out_ids, int *out_nout) {
  moss_ctx *ctx = d->ctx;
  moss_gpu_seg s;
  moss_shader_layout lay;
  moss_buf items, words;
  moss_status st;
  *out_in_ids = *out_out_ids = NULL;
  *out_nin = *out_nout = 0;
  MOSS_TRY(moss_gpu_seg_init(&s, ctx, g, nodes, nnodes, "Vulkan backend"));
  moss_buf_init(&items, ctx);
  moss_buf_init(&words, ctx);
  lay.where = moss_gpu_seg_param;
  lay.table = moss_gpu_seg_table_at;
  lay.user = &s;
  moss_backend_device_kernel_cpu(d, &lay.facts);
  st = moss_shader_emit(ctx, g, nodes, nnodes, &lay, &items, &words);
  if (st == MOSS_OK) {
    const char *parts[1] = {words.data};
    st = moss_gpu_seg_blob(&s, MOSS_VULKAN_BLOB_MAGIC, MOSS_VULKAN_BLOB_VERSION, (const int64_t *)items.data,
                           (int)(items.len / sizeof(int64_t)), parts, &words.len, 1, blob, nodes[0], out_in_ids,
                           out_nin, out_out_ids, out_nout);
  }
  moss_buf_deinit(&words);
  moss_buf_deinit(&items);
  moss_gpu_seg_deinit(&s);
  return st;
}
