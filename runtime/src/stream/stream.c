/* stream.c - streaming state (runtime/README.md "Streaming"): inputs the
 * session keeps, each fed by an output of the run before, so that a
 * recurrent model runs chunk after chunk. Outside the measured core, as
 * the pool and the profiler are: the core only calls mossrt_stream_args()
 * and mossrt_stream_done() around a run of a session that keeps states,
 * and mossrt_stream_free() when it is destroyed. */
#include <string.h>

#include "../core/mossrt_internal.h"

static struct mossrt_state *kept(const mossrt_session *s, uint32_t in) {
  uint32_t k;
  for (k = 0; s && k < s->nstates; k++)
    if (s->states[k].in == in) return &s->states[k];
  return NULL;
}

mossrt_status mossrt_session_keep_state(mossrt_session *s, uint32_t in, uint32_t out, mossrt_error *err) {
  const mossrt_bundle *b;
  mossrt_tensor_info ti, to;
  struct mossrt_state *st, *grown;
  if (!s) return mossrt_fail(err, NULL, MOSSRT_E_ARG, "mossrt_session_keep_state: NULL session");
  b = s->b;
  if (mossrt_input_info(b, in, &ti) != MOSSRT_OK || mossrt_output_info(b, out, &to) != MOSSRT_OK)
    return mossrt_fail(err, b->name, MOSSRT_E_ARG, "state: input %u or output %u out of range (%u inputs, %u outputs)",
                       in, out, b->ninputs, b->noutputs);
  if (ti.dtype != to.dtype || ti.rank != to.rank || ti.nbytes != to.nbytes ||
      (ti.rank > 0 && memcmp(ti.dims, to.dims, sizeof(int64_t) * (size_t)ti.rank)))
    return mossrt_fail(err, b->name, MOSSRT_E_ARG,
                       "state: input %u ('%s') and output %u ('%s') differ in type or shape", in, ti.name, out,
                       to.name);
  if (kept(s, in)) return mossrt_fail(err, b->name, MOSSRT_E_ARG, "state: input %u ('%s') is kept already", in, ti.name);
  if (!s->run_in) {
    s->run_in = mossrt_mem_alloc(&b->alloc, sizeof *s->run_in * ((size_t)b->ninputs + 1));
    s->run_out = mossrt_mem_alloc(&b->alloc, sizeof *s->run_out * ((size_t)b->noutputs + 1));
    if (!s->run_in || !s->run_out) {
      mossrt_mem_free(&b->alloc, s->run_in, sizeof *s->run_in * ((size_t)b->ninputs + 1));
      mossrt_mem_free(&b->alloc, s->run_out, sizeof *s->run_out * ((size_t)b->noutputs + 1));
      s->run_in = NULL;
      s->run_out = NULL;
      return mossrt_fail(err, b->name, MOSSRT_E_NOMEM, "state");
    }
  }
  grown = mossrt_mem_alloc(&b->alloc, sizeof *grown * ((size_t)s->nstates + 1));
  if (!grown) return mossrt_fail(err, b->name, MOSSRT_E_NOMEM, "state");
  if (s->nstates) memcpy(grown, s->states, sizeof *grown * s->nstates);
  st = &grown[s->nstates];
  st->in = in;
  st->out = out;
  st->nbytes = (size_t)ti.nbytes;
  st->cur = mossrt_mem_alloc(&b->alloc, st->nbytes + 1);
  st->next = mossrt_mem_alloc(&b->alloc, st->nbytes + 1);
  if (!st->cur || !st->next) {
    mossrt_mem_free(&b->alloc, st->cur, st->nbytes + 1);
    mossrt_mem_free(&b->alloc, st->next, st->nbytes + 1);
    mossrt_mem_free(&b->alloc, grown, sizeof *grown * ((size_t)s->nstates + 1));
    return mossrt_fail(err, b->name, MOSSRT_E_NOMEM, "state of %zu bytes", (size_t)ti.nbytes);
  }
  memset(st->cur, 0, st->nbytes + 1);
  mossrt_mem_free(&b->alloc, s->states, sizeof *s->states * s->nstates);
  s->states = grown;
  s->nstates++;
  return MOSSRT_OK;
}

mossrt_status mossrt_session_set_state(mossrt_session *s, uint32_t in, const void *data, mossrt_error *err) {
  struct mossrt_state *st = kept(s, in);
  if (!st) return mossrt_fail(err, s ? s->b->name : NULL, MOSSRT_E_ARG, "state: input %u is not kept", in);
  if (data) memcpy(st->cur, data, st->nbytes);
  else memset(st->cur, 0, st->nbytes);
  return MOSSRT_OK;
}

mossrt_status mossrt_session_get_state(const mossrt_session *s, uint32_t in, void *data, mossrt_error *err) {
  const struct mossrt_state *st = kept(s, in);
  if (!st || !data)
    return mossrt_fail(err, s ? s->b->name : NULL, MOSSRT_E_ARG, "state: input %u is not kept, or NULL data", in);
  memcpy(data, st->cur, st->nbytes);
  return MOSSRT_OK;
}

void mossrt_stream_done(mossrt_session *s, void *const *outputs) {
  uint32_t k;
  for (k = 0; k < s->nstates; k++) memcpy(s->states[k].cur, outputs[s->states[k].out], s->states[k].nbytes);
}

void mossrt_stream_args(mossrt_session *s, const void *const **inputs, void *const **outputs) {
  const mossrt_bundle *b;
  uint32_t i;
  if (!s || !s->nstates) return;
  b = s->b;
  for (i = 0; i < b->ninputs; i++) s->run_in[i] = *inputs ? (*inputs)[i] : NULL;
  for (i = 0; i < b->noutputs; i++) s->run_out[i] = *outputs ? (*outputs)[i] : NULL;
  for (i = 0; i < s->nstates; i++) {
    s->run_in[s->states[i].in] = s->states[i].cur;
    if (!s->run_out[s->states[i].out]) s->run_out[s->states[i].out] = s->states[i].next;
  }
  *inputs = s->run_in;
  *outputs = s->run_out;
}

void mossrt_stream_free(mossrt_session *s) {
  const mossrt_allocator *a = &s->b->alloc;
  uint32_t k;
  for (k = 0; k < s->nstates; k++) {
    mossrt_mem_free(a, s->states[k].cur, s->states[k].nbytes + 1);
    mossrt_mem_free(a, s->states[k].next, s->states[k].nbytes + 1);
  }
  mossrt_mem_free(a, s->states, sizeof *s->states * s->nstates);
  mossrt_mem_free(a, s->run_in, sizeof *s->run_in * ((size_t)s->b->ninputs + 1));
  mossrt_mem_free(a, s->run_out, sizeof *s->run_out * ((size_t)s->b->noutputs + 1));
}
