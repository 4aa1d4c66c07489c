/* profile.c - the plan's steps and how long each takes (mossrt.h
 * "Profiling"): mossrt_step_count() and mossrt_step_info() name the steps,
 * mossrt_run_profile() runs the plan as mossrt_run() does (the same two
 * halves of core/session.c) with CLOCK_MONOTONIC read around every step.
 * Apart from the core (scripts/mossrt_size.sh counts core/ and cpu/), like
 * the plugin executor. */
#include <time.h>

#include "../core/mossrt_internal.h"

uint32_t mossrt_step_count(const mossrt_bundle *b) { return b ? b->nsteps : 0; }

mossrt_status mossrt_step_info(const mossrt_bundle *b, uint32_t i, mossrt_step_desc *out) {
  const mossrt_step *st;
  if (!out) return MOSSRT_E_ARG;
  out->kind = NULL;
  out->device = out->from = out->entry = NULL;
  out->blob = -1;
  if (!b || i >= b->nsteps) return MOSSRT_E_ARG;
  st = &b->steps[i];
  out->device = b->devices[st->device].id;
  if (st->kind == MOSS_BUNDLE_STEP_KIND_TRANSFER) {
    out->kind = "transfer";
    out->from = b->devices[st->from].id;
  } else {
    out->kind = "exec";
    if (b->devices[st->device].exec == &mossrt_cpu_executor) out->entry = st->entry;
    else out->blob = (int32_t)st->blob;
  }
  return MOSSRT_OK;
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

mossrt_status mossrt_run_profile(mossrt_session *s, const void *const *inputs,
                                 void *const *outputs, uint64_t *step_ns, mossrt_error *err) {
  uint32_t i;
  uint64_t t0;
  mossrt_status st;
  mossrt_stream_args(s, &inputs, &outputs); /* the kept states in place, if any */
  st = mossrt_run_check(s, inputs, outputs, err);
  if (st == MOSSRT_OK && !step_ns)
    st = mossrt_fail(err, s->b->name, MOSSRT_E_ARG, "mossrt_run_profile: NULL step_ns");
  for (i = 0; st == MOSSRT_OK && i < s->b->nsteps; i++) {
    t0 = now_ns();
    st = mossrt_step_run(s, i, inputs, outputs, err);
    step_ns[i] = now_ns() - t0;
  }
  if (st == MOSSRT_OK) mossrt_stream_done(s, outputs);
  return st;
}
