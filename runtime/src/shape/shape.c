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

/* SHAPES' groups, |n| records at |r|: sorted, inside the graph outputs,
 * not overlapping. */
static mossrt_status group_check(mossrt_bundle *b, const moss_bundle_group_rec *r, uint32_t n,
                                 mossrt_error *err) {
  uint32_t i;
  uint64_t taken = 0, models;
  for (i = 0; i < n; i++) {
    if (r[i].kind < 1 || r[i].kind > 2 || r[i].flags > 3 || (r[i].kind == 1 && r[i].flags) ||
        ((r[i].flags & MOSS_BUNDLE_GROUP_ABSENT) && r[i].count) ||
        (r[i].kind == 2 && !r[i].flags && r[i].count != 1))
      return mossrt_fail(err, b->name, MOSSRT_E_FORMAT, "group %u: kind %u, flags %u and %u elements disagree",
                         i, r[i].kind, r[i].flags, r[i].count);
    if (r[i].first > b->noutputs || r[i].count > b->noutputs - r[i].first ||
        (i && (r[i].position <= r[i - 1].position || r[i].first < r[i - 1].first + r[i - 1].count)))
      return mossrt_fail(err, b->name, MOSSRT_E_FORMAT,
                         "group %u: outputs %u (+%u) at position %u: out of order, overlapping or past the "
                         "%u graph outputs", i, r[i].first, r[i].count, r[i].position, b->noutputs);
    taken += r[i].count;
  }
  models = b->noutputs - taken + n;
  if (n && r[n - 1].position >= models)
    return mossrt_fail(err, b->name, MOSSRT_E_FORMAT, "group %u: position %u, the model has %llu outputs",
                       n - 1, r[n - 1].position, (unsigned long long)models);
  b->groups = n ? r : NULL;
  b->ngroups = n;
  return MOSSRT_OK;
}

uint32_t mossrt_group_count(const mossrt_bundle *b) { return b ? b->ngroups : 0; }

mossrt_status mossrt_group_get(const mossrt_bundle *b, uint32_t k, mossrt_group_info *out, mossrt_error *err) {
  const moss_bundle_group_rec *r;
  if (!b || !out || k >= b->ngroups)
    return mossrt_fail(err, b ? b->name : NULL, MOSSRT_E_ARG, "mossrt_group_get: no group %u", k);
  r = &b->groups[k];
  out->position = r->position;
  out->first = r->first;
  out->count = r->count;
  out->kind = (int32_t)r->kind;
  out->optional_of_sequence = (r->flags & MOSS_BUNDLE_GROUP_OF_SEQUENCE) != 0;
  out->absent = (r->flags & MOSS_BUNDLE_GROUP_ABSENT) != 0;
  out->elem = r->elem;
  return MOSSRT_OK;
}

mossrt_status mossrt_shape_check(mossrt_bundle *b, mossrt_error *err) {
  moss_bundle_header h;
  moss_bundle_section s;
  moss_bundle_shapes hd;
  const moss_bundle_bound_rec *r;
  uint32_t index, i, k;
  mossrt_status st;
  /* The core checked the header and the table; it only accepts the kind
   * and keeps it to one section, to stay small. */
  memcpy(&h, b->data, sizeof h);
  for (index = 0; index < h.section_count; index++) {
    memcpy(&s, b->data + h.section_table_offset + (size_t)index * sizeof s, sizeof s);
    if (s.kind == MOSS_BUNDLE_SEC_SHAPES) break;
  }
  if (index == h.section_count) return MOSSRT_OK;
  if (s.size < sizeof hd || (memcpy(&hd, b->data + s.offset, sizeof hd),
                             s.size != sizeof hd + (uint64_t)hd.count * sizeof *r +
                                           (uint64_t)hd.ngroups * sizeof(moss_bundle_group_rec)))
    return mossrt_fail(err, b->name, MOSSRT_E_FORMAT,
                       "section %u (shapes): %llu bytes does not match its bound and group counts", index,
                       (unsigned long long)s.size);
  /* The payload is 64-aligned in our copy of the file: the records are
   * 8-aligned, and are read in place. */
  r = (const moss_bundle_bound_rec *)(const void *)(b->data + s.offset + sizeof hd);
  st = group_check(b, (const moss_bundle_group_rec *)(const void *)(r + hd.count), hd.ngroups, err);
  if (st != MOSSRT_OK) return st;
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
