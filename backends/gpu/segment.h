/* segment.h - what the GPU backends (backends/opencl, backends/ptx) share
 * about one segment of nodes on a device of its own: which tensors the
 * step passes (moss_t<k>), where each value the kernels touch lives (the
 * step's tensors, the segment's arena mirror moss_a, the constants buffer
 * moss_w), and the blob that carries the code (runtime/include/
 * moss_bundle.h, "OpenCL segment blob"; the PTX one has its layout). */
#ifndef MOSS_GPU_SEGMENT_H
#define MOSS_GPU_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "../backend.h"

/* The buffer a value lives in. */
typedef enum moss_gpu_base {
  MOSS_GPU_ARENA = 0,   /* moss_a: a value that lives only inside the segment, at its planned offset */
  MOSS_GPU_WEIGHTS = 1, /* moss_w: a constant */
  MOSS_GPU_TENSOR = 2   /* moss_t<k>: a tensor of the step (k = its index) */
} moss_gpu_base;

typedef struct moss_gpu_seg {
  moss_ctx *ctx;
  const moss_graph *g;
  int *tensor;           /* per value id (roots): its step tensor index, -1: none */
  int64_t *woff;         /* per value id: offset of a constant in w, -1: not placed yet */
  moss_buf weights;      /* w's bytes */
  int64_t arena_end;     /* the bytes of a the segment touches */
  int *ins, *outs;       /* the step's tensors: value ids read from outside, then those
                          * produced for outside */
  int nin, nout;
  size_t nv;
  moss_buf placed;       /* (offset, bytes) int64_t pairs of what w holds: a table placed
                          * again (the same bytes) is found there */
} moss_gpu_seg;

/* The step's tensors of |nodes| (|nnodes| >= 1, consecutive, on one
 * device): the non-constant values read from outside, in order of first
 * use, then the values produced for outside (graph outputs, reads by other
 * nodes), in order of production. |what| names the backend in errors. */
moss_status moss_gpu_seg_init(moss_gpu_seg *s, moss_ctx *ctx, const moss_graph *g, moss_node *const *nodes,
                              int nnodes, const char *what);
void moss_gpu_seg_deinit(moss_gpu_seg *s);

/* Where |v| lives: its buffer, the tensor index k for MOSS_GPU_TENSOR, and
 * the byte offset in the buffer. A constant is placed in w (64-byte
 * aligned) on first use; an arena value extends arena_end. */
moss_gpu_base moss_gpu_seg_where(moss_gpu_seg *s, const moss_value *v, int *tensor, int64_t *offset);

/* Places |bytes| bytes of a kernel's constant table in w (64-byte
 * aligned); returns their offset there. Bytes already in w (a table of
 * another kernel, or of the segment's other code form: the OpenCL
 * backend builds each kernel twice) are placed once. */
int64_t moss_gpu_seg_table(moss_gpu_seg *s, const void *data, size_t bytes);

/* The two above in the shape the code generators call back (|user| the
 * segment: moss_llvm_gpu.where and .table, moss_shader_layout, moss_cgen's
 * table_at): where |v| lives as a kernel parameter or descriptor binding,
 * 0 the arena, 1 the weights, 2 + k the step's tensor k, and its offset;
 * a table's offset in the weights. */
void moss_gpu_seg_param(void *user, const moss_value *v, int *param, int64_t *offset);
int64_t moss_gpu_seg_table_at(void *user, const void *data, size_t bytes);

/* Appends the segment's blob to |blob|: the header (|magic|, |version|),
 * the tensors' sizes, |items|[0..nkernels), the code (the concatenation of
 * |nparts| parts of |lens| bytes, its |source_len|), the weights; and hands
 * the step's tensor ids to the caller as moss_backend.emit_segment does
 * (backend.h). */
moss_status moss_gpu_seg_blob(moss_gpu_seg *s, const char *magic, uint32_t version, const int64_t *items,
                              int nkernels, const char *const *parts, const size_t *lens, int nparts,
                              moss_buf *blob, const moss_node *at, int **out_in_ids, int *out_nin,
                              int **out_out_ids, int *out_nout);

#endif
