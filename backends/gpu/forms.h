/* forms.h - a GPU with two code forms (forms.c): the backend
 * "ptx+vulkan" of a device that runs either NVIDIA's PTX through the CUDA
 * driver or SPIR-V through Vulkan (a Jetson's GPU), so that one bundle runs
 * on whichever driver the machine has. Each segment becomes one blob
 * holding both the PTX backend's and the Vulkan backend's blob for it
 * (runtime/include/moss_bundle.h, "GPU code-forms blob"); libmossrt picks
 * the first form whose driver it finds. */
#ifndef MOSS_GPU_FORMS_H
#define MOSS_GPU_FORMS_H

#include "../backend.h"

/* moss_backend.takes: a node both backends have code for (the PTX
 * backend's reason first). */
int moss_forms_takes(const moss_backend_device *d, const moss_node *n, char *why, size_t cap);

/* moss_backend.emit_segment: the code-forms blob of |nodes|, the PTX form
 * first. Errors: those of either backend. */
moss_status moss_forms_emit_segment(const moss_backend_device *d, const moss_graph *g, moss_node *const *nodes,
                                    int nnodes, moss_buf *blob, int **out_in_ids, int *out_nin,
                                    int **out_out_ids, int *out_nout);

#endif
