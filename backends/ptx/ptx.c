/* ptx.c - the PTX backend: each segment of nodes on an NVIDIA GPU becomes
 * one blob (runtime/include/moss_bundle.h, "PTX segment blob") holding the
 * PTX module that LLVM's NVPTX target builds from the nodes' kernel
 * descriptions (backends/llvm, moss_llvm_emit_gpu), the launch size of each
 * kernel and the constant weights. The segment's memory is laid out as the
 * OpenCL backend's (backends/gpu/segment.h): kernels take the device
 * addresses of the arena mirror, the weights and the step's tensors. The
 * PTX text is JIT-compiled by the CUDA driver when libmossrt loads it, so
 * one bundle runs on any GPU at least as new as the device's <codegen cpu>
 * (PTX is forward compatible). */
#include <stdio.h>
#include <string.h>

#include "../gpu/segment.h"
#include "../llvm/llvm.h"
#include "moss_bundle.h"
#include "ptx.h"

int moss_ptx_takes(const moss_backend_device *d, const moss_node *n, char *why, size_t cap) {
  int i;
  for (i = 0; i < n->ninputs + n->noutputs; i++) {
    const moss_value *v = i < n->ninputs ? n->inputs[i] : n->outputs[i - n->ninputs];
    if (v && ((moss_dtype_is_half(v->dtype) && !moss_kernel_half_ok(n)) || moss_dtype_size(v->dtype) == 0 ||
              v->dtype == MOSS_DT_STRING)) {
      snprintf(why, cap, "%s has type %s (the PTX backend computes float16 in float32, after a Cast)",
               v->name, moss_dtype_name(v->dtype));
      return 0;
    }
  }
  return moss_llvm_nvptx_takes(d->ctx, n, why, cap);
}

moss_status moss_ptx_emit_segment(const moss_backend_device *d, const moss_graph *g, moss_node *const *nodes,
                                  int nnodes, moss_buf *blob, int **out_in_ids, int *out_nin,
                                  int **out_out_ids, int *out_nout) {
  moss_ctx *ctx = d->ctx;
  moss_gpu_seg s;
  moss_llvm_gpu lg;
  moss_buf items;
  char *text = NULL;
  size_t len = 0;
  moss_status st;
  *out_in_ids = *out_out_ids = NULL;
  *out_nin = *out_nout = 0;
  memset(&lg, 0, sizeof lg);
  lg.triple = moss_target_device_codegen(d->target, d->device, "triple");
  lg.cpu = moss_target_device_codegen(d->target, d->device, "cpu");
  lg.features = moss_target_device_codegen(d->target, d->device, "features");
  if (!lg.triple || strncmp(lg.triple, "nvptx", 5))
    return moss_fail(ctx, MOSS_E_TARGET, nodes[0],
                     "target '%s': device '%s' wants backend 'ptx' but names no NVPTX triple "
                     "(<codegen triple=\"nvptx64-nvidia-cuda\" cpu=\"sm_NN\">)",
                     moss_target_name(d->target), moss_target_device_id(d->target, d->device));
  MOSS_TRY(moss_gpu_seg_init(&s, ctx, g, nodes, nnodes, "PTX backend"));
  moss_buf_init(&items, ctx);
  lg.nparams = 2 + s.nin + s.nout;
  lg.where = moss_gpu_seg_param;
  lg.table = moss_gpu_seg_table_at;
  lg.user = &s;
  moss_backend_device_kernel_cpu(d, &lg.facts);
  st = moss_llvm_emit_gpu(ctx, g, nodes, nnodes, &lg, &items, &text, &len);
  if (st == MOSS_OK) {
    const char *parts[1] = {text};
    st = moss_gpu_seg_blob(&s, MOSS_PTX_BLOB_MAGIC, MOSS_PTX_BLOB_VERSION, (const int64_t *)items.data,
                           (int)(items.len / sizeof(int64_t)), parts, &len, 1, blob, nodes[0], out_in_ids, out_nin,
                           out_out_ids, out_nout);
  }
  if (text) moss_free(ctx, text, len + 1);
  moss_buf_deinit(&items);
  moss_gpu_seg_deinit(&s);
  return st;
}
