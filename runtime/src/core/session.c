/* session.c - running a checked bundle. A session owns (or borrows) the
 * arena and the per-session state of the devices (each executor's
 * session_open(), e.g. the plugin devices'); everything a run needs is
 * prepared in mossrt_session_create(), so mossrt_run() walks the plan's
 * steps without allocating: each EXEC step's tensors' buffers are gathered
 * and the step goes to its device's executor (the CPU calls its entry
 * point, a plugin hands the buffers to the device); transfers cost nothing
 * (the devices we run on share host memory; their bounds were checked at
 * open). */
#include <string.h>

#include "mossrt_internal.h"

void mossrt_session_destroy(mossrt_session *s) {
  mossrt_allocator a;
  const mossrt_executor *const *e;
  if (!s) return;
  a = s->b->alloc;
  for (e = mossrt_executors; *e; e++)
    if ((*e)->session_close) (*e)->session_close(s);
  mossrt_mem_free(&a, s->bufs, (size_t)s->b->nrefs * sizeof *s->bufs);
  mossrt_stream_free(s);
  mossrt_mem_free(&a, s->arena_mem, s->arena_mem_size);
  mossrt_mem_free(&a, s, sizeof *s);
}

mossrt_status mossrt_session_create(mossrt_bundle *b, void *arena, size_t arena_bytes,
                                    mossrt_session **out, mossrt_error *err) {
  mossrt_session *s;
  mossrt_status st;
  const mossrt_executor *const *e;
  uint32_t k;
  if (out) *out = NULL;
  if (!b || !out) return mossrt_fail(err, b ? b->name : NULL, MOSSRT_E_ARG, "NULL argument");
  if (b->flags & MOSSRT_OPEN_VERIFY_ONLY)
    return mossrt_fail(err, b->name, MOSSRT_E_ARG, "bundle was opened with MOSSRT_OPEN_VERIFY_ONLY");
  if (arena && ((uintptr_t)arena % MOSS_BUNDLE_ALIGN || arena_bytes < b->arena_bytes))
    return mossrt_fail(err, b->name, MOSSRT_E_ARG,
                       "arena of %zu bytes at %p: needs %llu bytes, %u-byte aligned", arena_bytes,
                       arena, (unsigned long long)b->arena_bytes, MOSS_BUNDLE_ALIGN);
  s = mossrt_mem_alloc(&b->alloc, sizeof *s);
  if (!s) return mossrt_fail(err, b->name, MOSSRT_E_NOMEM, "cannot allocate a session");
  s->b = b;
  s->bufs = mossrt_mem_alloc(&b->alloc, (size_t)b->nrefs * sizeof *s->bufs);
  if (!arena && b->arena_bytes) {
    /* The allocator promises malloc alignment only: over-allocate to align. */
    s->arena_mem_size = (size_t)b->arena_bytes + MOSS_BUNDLE_ALIGN;
    s->arena_mem = b->alloc.fn(b->alloc.user, NULL, 0, s->arena_mem_size);
    arena = s->arena_mem ? (void *)(((uintptr_t)s->arena_mem + MOSS_BUNDLE_ALIGN - 1) &
                                    ~(uintptr_t)(MOSS_BUNDLE_ALIGN - 1))
                         : NULL;
    if (!s->arena_mem) s->arena_mem_size = 0;
  }
  if (!s->bufs || (!arena && b->arena_bytes)) {
    mossrt_session_destroy(s);
    return mossrt_fail(err, b->name, MOSSRT_E_NOMEM, "cannot allocate a session (arena %llu bytes)",
                       (unsigned long long)b->arena_bytes);
  }
  s->arena = arena;
  /* Arena tensors have fixed buffers: resolve them once. */
  for (k = 0; k < b->nrefs; k++) {
    const mossrt_tensor *t = &b->tensors[b->refs[k]];
    if (t->place == MOSS_BUNDLE_PLACE_ARENA) s->bufs[k] = s->arena + t->offset;
  }
  for (e = mossrt_executors; *e; e++)
    if ((*e)->session_open && (st = (*e)->session_open(s, err)) != MOSSRT_OK) {
      mossrt_session_destroy(s);
      return st;
    }
  *out = s;
  return MOSSRT_OK;
}

mossrt_status mossrt_run_check(const mossrt_session *s, const void *const *inputs,
                               void *const *outputs, mossrt_error *err) {
  const mossrt_bundle *b;
  uint32_t i;
  if (!s) return mossrt_fail(err, NULL, MOSSRT_E_ARG, "mossrt_run: NULL session");
  b = s->b;
  for (i = 0; i < b->ninputs; i++)
    if (!inputs || !inputs[i])
      return mossrt_fail(err, b->name, MOSSRT_E_ARG, "input %u ('%s') is NULL", i,
                         b->tensors[b->inputs[i]].name);
  for (i = 0; i < b->noutputs; i++)
    if (!outputs || !outputs[i])
      return mossrt_fail(err, b->name, MOSSRT_E_ARG, "output %u ('%s') is NULL", i,
                         b->tensors[b->outputs[i]].name);
  return MOSSRT_OK;
}

mossrt_status mossrt_step_run(mossrt_session *s, uint32_t i, const void *const *inputs,
                              void *const *outputs, mossrt_error *err) {
  const mossrt_bundle *b = s->b;
  const mossrt_step *st = &b->steps[i];
  uint32_t k;
  if (st->kind != MOSS_BUNDLE_STEP_KIND_EXEC) return MOSSRT_OK; /* TRANSFER: shared memory */
  /* An EXEC step runs on its tensors' buffers, on every device alike. */
  for (k = st->first; k < st->first + st->nin + st->nout; k++) {
    const mossrt_tensor *t = &b->tensors[b->refs[k]];
    if (t->place == MOSS_BUNDLE_PLACE_INPUT) s->bufs[k] = (void *)(uintptr_t)inputs[t->index];
    else if (t->place == MOSS_BUNDLE_PLACE_OUTPUT) s->bufs[k] = outputs[t->index];
  }
  return b->devices[st->device].exec->run(s, i, err);
}

mossrt_status mossrt_run(mossrt_session *s, const void *const *inputs, void *const *outputs,
                         mossrt_error *err) {
  uint32_t i;
  mossrt_status st;
  mossrt_stream_args(s, &inputs, &outputs); /* the kept states in place, if any */
  st = mossrt_run_check(s, inputs, outputs, err);
  for (i = 0; st == MOSSRT_OK && i < s->b->nsteps; i++)
    st = mossrt_step_run(s, i, inputs, outputs, err);
  if (st == MOSSRT_OK) mossrt_stream_done(s, outputs);
  return st;
}
