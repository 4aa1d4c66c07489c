/* batch.c - running a batched bundle (header flag MOSS_BUNDLE_FLAG_BATCHED,
 * runtime/README.md "Batches"): the plan was made for batch 1, and a batch
 * of N is N runs of it, run j on slice j of axis 0 of every input and
 * output. Outside the measured core, as the stream, the pool and the
 * profiler are: it walks the steps as mossrt_run() does, pointing each
 * step's input and output tensors at the slice, so it needs no pointer
 * lists and never allocates. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../core/mossrt_internal.h"

int mossrt_bundle_batched(const mossrt_bundle *b) {
  uint32_t flags, i;
  if (!b) return 0;
  /* The header, checked at open. */
  memcpy(&flags, b->data + offsetof(moss_bundle_header, flags), sizeof flags);
  if (!(flags & MOSS_BUNDLE_FLAG_BATCHED)) return 0;
  /* What the flag promises, held to the tensors: axis 0 of every one is the batch of 1. */
  for (i = 0; i < b->ninputs + b->noutputs; i++) {
    uint32_t ti = i < b->ninputs ? b->inputs[i] : b->outputs[i - b->ninputs];
    const mossrt_tensor *t = &b->tensors[ti];
    if (t->rank < 1 || t->dims[0] != 1) return 0;
  }
  return 1;
}

mossrt_status mossrt_run_batch(mossrt_session *s, uint64_t n, const void *const *inputs,
                               void *const *outputs, mossrt_error *err) {
  const mossrt_bundle *b;
  mossrt_status st;
  uint64_t j;
  uint32_t i, k;
  if (!s) return mossrt_fail(err, NULL, MOSSRT_E_ARG, "mossrt_run_batch: NULL session");
  b = s->b;
  if (!mossrt_bundle_batched(b))
    return mossrt_fail(err, b->name, MOSSRT_E_ARG,
                       "the bundle is not batched: it was compiled for fixed shapes (mossrt_run)");
  if (s->nstates)
    return mossrt_fail(err, b->name, MOSSRT_E_ARG,
                       "the session keeps states: a batch runs without");
  for (k = 0; k < b->ntensors; k++) /* n slices must be addressable */
    if (b->tensors[k].place != MOSS_BUNDLE_PLACE_ARENA && b->tensors[k].nbytes &&
        n > SIZE_MAX / b->tensors[k].nbytes)
      return mossrt_fail(err, b->name, MOSSRT_E_ARG, "a batch of %llu is too large",
                         (unsigned long long)n);
  st = mossrt_run_check(s, inputs, outputs, err);
  for (j = 0; st == MOSSRT_OK && j < n; j++)
    for (i = 0; st == MOSSRT_OK && i < b->nsteps; i++) {
      const mossrt_step *sp = &b->steps[i];
      if (sp->kind != MOSS_BUNDLE_STEP_KIND_EXEC) continue; /* TRANSFER: shared memory */
      for (k = sp->first; k < sp->first + sp->nin + sp->nout; k++) {
        const mossrt_tensor *t = &b->tensors[b->refs[k]];
        size_t at = (size_t)(j * t->nbytes);
        if (t->place == MOSS_BUNDLE_PLACE_INPUT)
          s->bufs[k] = (uint8_t *)(uintptr_t)inputs[t->index] + at;
        else if (t->place == MOSS_BUNDLE_PLACE_OUTPUT)
          s->bufs[k] = (uint8_t *)outputs[t->index] + at;
      }
      st = b->devices[sp->device].exec->run(s, i, err);
    }
  return st;
}
