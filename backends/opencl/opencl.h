/* opencl.h - the OpenCL backend (opencl.c): OpenCL C printed from the
 * kernel descriptions, one blob per segment (runtime/include/moss_bundle.h,
 * "OpenCL segment blob"), run by libmossrt's OpenCL executor. */
#ifndef MOSS_OPENCL_H
#define MOSS_OPENCL_H

#include "../backend.h"

/* moss_backend.takes: a node with a kernel description whose tensors have
 * types OpenCL C 1.2 has without extensions (no float64, no float16). */
int moss_opencl_takes(const moss_backend_device *d, const moss_node *n, char *why, size_t cap);

/* moss_backend.emit_segment: the blob of |nodes| (backend.h has the contract). */
moss_status moss_opencl_emit_segment(const moss_backend_device *d, const moss_graph *g,
                                     moss_node *const *nodes, int nnodes, moss_buf *blob,
                                     int **out_in_ids, int *out_nin, int **out_out_ids, int *out_nout);

#endif
