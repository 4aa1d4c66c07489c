/* plan.h - the static memory plan: every intermediate value gets an offset
 * in one arena, reusing space whose value is dead (liveness over the
 * schedule), and view operators alias their input where legal. */
#ifndef MOSS_PLAN_H
#define MOSS_PLAN_H

#include "../ir/ir.h"

#define MOSS_PLAN_ALIGN 64

/* Sets value->offset / value->alias for every value; *out_arena_bytes is
 * the exact arena size the generated code needs. */
moss_status moss_plan_compute(moss_ctx *ctx, moss_graph *g, int64_t *out_arena_bytes);

#endif
