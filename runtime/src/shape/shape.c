/* shape.c - bounded dynamic shapes (runtime/README.md "Bounded dynamic
 * shapes"): graph outputs with one axis whose length the run decides, up
 * to the bound META gives (moss_bundle.h, SHAPES). At open, core/bundle.c
 * calls mossrt_shape_check() once it has checked the rest of the bundle;
 * after a run, mossrt_output_dims() reads each such length from the
 * session's arena.
 * Outside the measured core (scripts/mossrt_size.sh counts core/ and
 * cpu/), like the streaming state and the profiler. */
#include <string.h>

#include "../core/mossrt_internal.h"

mossrt_status mossrt_shape_check(mossrt_bundle *b, mossrt_error *err) {
  moss_bundle_header h;
  moss_bundle_section s;
  moss_bundle_shapes hd;
  const moss_bundle_bound_rec *r;
  uint32_t index, i, k;
  /* The core checked the header and the table; it only accepts the kind
   * and keeps it to one section, to stay small. */
  memcpy(&h, b->data, sizeof h);
  for (index = 0; index < h.section_count; index++) {
    memcpy(&s, b->data + h.section_table_offset + (size_t)index * sizeof s, sizeof s);
    if (s.kind == MOSS_BUNDLE_SEC_SHAPES) break;
  }
  if (index == h.section_count) return MOSSRT_OK;
  if (s.size < sizeof hd || (memcpy(&hd, b->data + s.offset, sizeof hd),
                             s.size != sizeof hd + (uint64_t)hd.count * sizeof *r))
    return mossrt_fail(err, b->name, MOSSRT_E_FORMAT,
                       "section %u (shapes): %llu bytes does not match its bound count", index,
                       (unsigned long long)s.size);
  if (hd.reserved != 0)
    return mossrt_fail(err, b->name, MOSSRT_E_FORMAT, "section %u (shapes): reserved is %u", index,
                       hd.reserved);
  /* The payload is 64-aligned in our copy of the file: the records are
   * 8-aligned, and are read in place. */
  r = (const moss_bundle_bound_rec *)(const void *)(b->data + s.offset + sizeof hd);
  for (i = 0; i < hd.count; i++) {
    const mossrt_tensor *t;
    if (r[i].output >= b->noutputs)
      return mossrt_fail(err, b->name, MOSSRT_E_FORMAT,
                         "bound %u: graph output %u, there are %u outputs", i, r[i].output,
                         b->noutputs);
    t = &b->tensors[b->outputs[r[i].output]];
    if (r[i].axis >= (uint32_t)t->rank)
      return mossrt_fail(err, b->name, MOSSRT_E_FORMAT,
                         "bound %u: output %u ('%s'): axis %u, its rank is %d", i, r[i].output,
                         t->name, r[i].axis, t->rank);
    if (r[i].offset % 8 || r[i].offset > b->arena_bytes || b->arena_bytes - r[i].offset < 8)
      return mossrt_fail(err, b->name, MOSSRT_E_FORMAT,
                         "bound %u: output %u ('%s'): length at arena offset %llu is outside the"
                         " arena (%llu bytes) or not 8-byte aligned", i, r[i].output, t->name,
                         (unsigned long long)r[i].offset, (unsigned long long)b->arena_bytes);
    for (k = 0; k < i; k++)
      if (r[k].output == r[i].output)
        return mossrt_fail(err, b->name, MOSSRT_E_FORMAT,
                           "bound %u: output %u ('%s') is bound %u's too", i, r[i].output,
                           t->name, k);
  }
  b->bounds = r;
  b->nbounds = hd.count;
  return MOSSRT_OK;
}

/* The bound of graph output |i|, or NULL when its shape is static. */
static const moss_bundle_bound_rec *bound_of(const mossrt_bundle *b, uint32_t i) {
  uint32_t k;
  for (k = 0; b && k < b->nbounds; k++)
    if (b->bounds[k].output == i) return &b->bounds[k];
  return NULL;
}

int32_t mossrt_output_bound_axis(const mossrt_bundle *b, uint32_t i) {
  const moss_bundle_bound_rec *r = bound_of(b, i);
  return r ? (int32_t)r->axis : -1;
}

mossrt_status mossrt_output_dims(const mossrt_session *s, uint32_t i, int64_t *dims,
                                 mossrt_error *err) {
  const mossrt_bundle *b;
  const mossrt_tensor *t;
  const moss_bundle_bound_rec *r;
  int64_t len;
  if (!s || !dims)
    return mossrt_fail(err, s ? s->b->name : NULL, MOSSRT_E_ARG,
                       "mossrt_output_dims: NULL session or dims");
  b = s->b;
  if (i >= b->noutputs)
    return mossrt_fail(err, b->name, MOSSRT_E_ARG, "mossrt_output_dims: output %u, there are %u",
                       i, b->noutputs);
  t = &b->tensors[b->outputs[i]];
  memcpy(dims, t->dims, sizeof *dims * (size_t)t->rank);
  r = bound_of(b, i);
  if (!r) return MOSSRT_OK;
  memcpy(&len, s->arena + r->offset, sizeof len); /* checked at open: inside the arena */
  if (len < 0 || len > t->dims[r->axis])
    return mossrt_fail(err, b->name, MOSSRT_E_DEVICE,
                       "output %u ('%s'): the run left length %lld at axis %u, its bound is %lld",
                       i, t->name, (long long)len, r->axis, (long long)t->dims[r->axis]);
  dims[r->axis] = len;
  return MOSSRT_OK;
}
