/* check.h - what the GPU backends share when they decide whether they
 * take a node: its kernel description as a GPU lowers it
 * (moss_kernel_cpu.gpu), walked expression by expression through the
 * backend's own test of what its code can compute. */
#ifndef MOSS_GPU_CHECK_H
#define MOSS_GPU_CHECK_H

#include <stddef.h>

#include "../backend.h"

/* A backend's test of one expression (never NULL): 1 when it has code for
 * it (its operands are tested on their own), 0 with the reason in |why|. */
typedef int (*moss_gpu_expr_ok)(const moss_kx *x, char *why, size_t cap);

/* 1 when |n| has a kernel description for a GPU whose every expression
 * passes |ok| and which uses no arena scratch (work-items cannot share
 * it); 0 with the reason in |why|. Lowers the node quietly: a lowering
 * failure is a reason, not a diagnostic. */
int moss_gpu_kernel_check(moss_ctx *ctx, const moss_node *n, moss_gpu_expr_ok ok, char *why, size_t cap);

/* The launches of a segment's nodes, as every GPU code generator walks
 * them: each node lowered once for |gpu| (moss_backend_device_kernel_cpu
 * of the device: its work-group limits), its kernel checked with |ok| as
 * moss_gpu_kernel_check does (else the whole fails, unsupported, with the
 * reason), each of its launches (moss_kernel_launches) handed to |launch|
 * with its index among the segment's launches; the work-items |launch|
 * gives, with the launch's work-group size (moss_kernel_group), are
 * appended to |items| as launch words (MOSS_GPU_LAUNCH of moss_bundle.h,
 * int64 each). Stops at the first failure and returns it. */
typedef moss_status (*moss_gpu_launch_fn)(void *user, const moss_kernel *k, const moss_kstmt *body, int idx,
                                          int64_t *items);
moss_status moss_gpu_each_launch(moss_ctx *ctx, const moss_kernel_cpu *gpu, moss_node *const *nodes, int nnodes,
                                 moss_gpu_expr_ok ok, moss_gpu_launch_fn launch, void *user, moss_buf *items);

#endif
