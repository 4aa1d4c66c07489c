/* plan.h - the static memory plan: every intermediate value gets an offset
 * in one arena, reusing space whose value is dead (liveness over the
 * schedule), and view operators alias their input where legal; then the
 * plan is checked against the memories of the target's devices. */
#ifndef MOSS_PLAN_H
#define MOSS_PLAN_H

#include "../ir/ir.h"
#include "../target/target.h"

#define MOSS_PLAN_ALIGN 64

/* Sets value->offset / value->alias for every value; *out_arena_bytes is
 * the exact arena size the generated code needs. */
moss_status moss_plan_compute(moss_ctx *ctx, moss_graph *g, int64_t *out_arena_bytes);

/* Refuses a plan (|g| partitioned and planned, |arena_bytes| from
 * moss_plan_compute) that does not fit the memories |t| declares (fit.c):
 * every buffer a device reads or writes, graph inputs and outputs, the
 * arena and the weights, each against the outermost memory level of its
 * device that may hold it (not a read-only one for what is written), and
 * on the host device the arena, graph inputs and outputs (and weights in
 * the same level) together. Levels without a size are not checked. Each
 * figure that does not fit is reported (target), naming the buffer, its
 * size, the level, its size and the target file; a size that overflows
 * 64 bits is invalid-model. */
moss_status moss_plan_check_memory(moss_ctx *ctx, const moss_graph *g, const moss_target *t,
                                   int64_t arena_bytes);

#endif
