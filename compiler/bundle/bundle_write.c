/* bundle_write.c - the last stage of a bundle compile: lays the pipeline's
 * decisions (a moss_bundle_desc: tensors, devices, steps, the compiled CPU
 * code, plugin blobs, the report) out in the .moss format of
 * runtime/include/moss_bundle.h, which libmossrt reads back. The
 * description is checked first with the runtime's own rules, so a bad plan
 * fails here, at compile time, with the field named, instead of as a
 * corrupt-bundle error at run time. The file is written next to its final
 * name and renamed into place, so a reader never sees half a bundle. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bundle.h"
#include "moss_bundle.h"
#include "mossrt_sign.h"

#define BAD(...) moss_fail(ctx, MOSS_E_INTERNAL, NULL, "bundle: " __VA_ARGS__)


/* moss_bundle_crc32 (moss_bundle.h) a byte at a time: the header's version
 * takes a nibble at a time to keep libmossrt small; large sections (a long
 * graph's report, big weights) are checksummed here eight times faster. */
static uint32_t crc32_bytes(const void *data, size_t n) {
  static uint32_t table[256];
  const unsigned char *p = data;
  uint32_t crc = 0xffffffffu;
  if (!table[1]) { /* the reflected polynomial 0xedb88320, as moss_bundle.h's */
    uint32_t i, c;
    int k;
    for (i = 0; i < 256; i++) {
      for (c = i, k = 0; k < 8; k++) c = c & 1u ? (c >> 1) ^ 0xedb88320u : c >> 1;
      table[i] = c;
    }
  }
  while (n--) crc = (crc >> 8) ^ table[(crc ^ *p++) & 0xffu];
  return ~crc;
}

static uint64_t dtype_size(int32_t dt) {
  static const uint8_t sizes[17] = {0, 4, 1, 1, 2, 2, 4, 8, 0, 1, 2, 8, 4, 8, 0, 0, 2};
  return dt >= 0 && dt < 17 ? sizes[dt] : 0;
}

static int is_plugin(const moss_bundle_device *d) {
  return d->backend && strncmp(d->backend, "plugin:", 7) == 0 && d->backend[7];
}

/* The backends whose code runs on the CPU, in the runtime's process. */
static int is_cpu_backend(const moss_bundle_device *d) {
  return d->backend && (!strcmp(d->backend, "c") || !strcmp(d->backend, "llvm"));
}

/* The devices whose steps each run a blob: a plugin's, or a GPU
 * backend's segment (moss_bundle.h, "OpenCL segment blob" and the ones
 * after it). */
static int runs_blobs(const moss_bundle_device *d) { return is_plugin(d) || d->runs_blobs; }

static moss_status check_tensor(moss_ctx *ctx, const moss_bundle_desc *d, uint32_t i) {
  const moss_bundle_tensor *t = &d->tensors[i];
  const char *name = t->name ? t->name : "";
  uint64_t n = dtype_size(t->dtype);
  int32_t k;
  if (!n) return BAD("tensors[%u] ('%s'): dtype %d has no size", i, name, t->dtype);
  if (t->rank < 0 || t->rank > MOSS_BUNDLE_MAX_RANK)
    return BAD("tensors[%u] ('%s'): rank %d", i, name, t->rank);
  for (k = 0; k < t->rank; k++) {
    if (t->dims[k] < 0) return BAD("tensors[%u] ('%s'): dims[%d] = %lld", i, name, k,
                                   (long long)t->dims[k]);
    if (t->dims[k] && n > UINT64_MAX / (uint64_t)t->dims[k])
      return BAD("tensors[%u] ('%s'): size overflows", i, name);
    n *= (uint64_t)t->dims[k];
  }
  if (n != t->nbytes)
    return BAD("tensors[%u] ('%s'): nbytes %llu, dtype and dims give %llu", i, name,
               (unsigned long long)t->nbytes, (unsigned long long)n);
  switch (t->place) {
  case MOSS_BUNDLE_INPUT:
    if (t->index >= d->ninputs || d->inputs[t->index] != i)
      return BAD("tensors[%u] ('%s'): input index %u is not inputs[%u]", i, name, t->index,
                 t->index);
    break;
  case MOSS_BUNDLE_OUTPUT:
    if (t->index >= d->noutputs || d->outputs[t->index] != i)
      return BAD("tensors[%u] ('%s'): output index %u is not outputs[%u]", i, name, t->index,
                 t->index);
    break;
  case MOSS_BUNDLE_ARENA:
    if (t->offset % MOSS_BUNDLE_ALIGN || t->offset > d->arena_bytes ||
        t->nbytes > d->arena_bytes - t->offset)
      return BAD("tensors[%u] ('%s'): arena offset %llu + %llu bytes is unaligned or past "
                 "arena_bytes %llu", i, name, (unsigned long long)t->offset,
                 (unsigned long long)t->nbytes, (unsigned long long)d->arena_bytes);
    break;
  default: return BAD("tensors[%u] ('%s'): place %d", i, name, (int)t->place);
  }
  return MOSS_OK;
}

static moss_status check_step(moss_ctx *ctx, const moss_bundle_desc *d, uint32_t i) {
  const moss_bundle_step *s = &d->steps[i];
  uint32_t k;
  if (s->device >= d->ndevices) return BAD("steps[%u].device = %u", i, s->device);
  if ((s->nin && !s->in) || (s->nout && !s->out)) return BAD("steps[%u]: in/out is NULL", i);
  for (k = 0; k < s->nin; k++)
    if (s->in[k] >= d->ntensors) return BAD("steps[%u].in[%u] = %u", i, k, s->in[k]);
  for (k = 0; k < s->nout; k++)
    if (s->out[k] >= d->ntensors) return BAD("steps[%u].out[%u] = %u", i, k, s->out[k]);
  if (s->kind == MOSS_BUNDLE_STEP_TRANSFER) {
    if (s->from >= d->ndevices) return BAD("steps[%u].from = %u", i, s->from);
    if (s->nin != 1 || s->nout != 0) return BAD("steps[%u]: a transfer has nin 1, nout 0", i);
    return MOSS_OK;
  }
  if (s->kind != MOSS_BUNDLE_STEP_EXEC) return BAD("steps[%u].kind = %d", i, (int)s->kind);
  if (runs_blobs(&d->devices[s->device])) {
    if (is_plugin(&d->devices[s->device]) &&
        (!d->devices[s->device].plugin_path || !d->devices[s->device].plugin_path[0]))
      return BAD("steps[%u]: device %u ('%s') has no plugin_path", i, s->device,
                 d->devices[s->device].id);
    if (s->blob >= d->nblobs || d->blob_device[s->blob] != s->device)
      return BAD("steps[%u].blob = %u is not a blob of device %u", i, s->blob, s->device);
  } else if (is_cpu_backend(&d->devices[s->device])) {
    if (!s->entry || !s->entry[0]) return BAD("steps[%u]: a CPU step without entry", i);
    /* The CPU code takes in[] = the graph's inputs, out[] = its outputs, as
     * its figures state them (moss_bundle.h; the runtime checks it). */
    if (s->nin != d->ninputs || s->nout != d->noutputs)
      return BAD("steps[%u]: a CPU step takes the graph's %u inputs and %u outputs, not %u and %u",
                 i, d->ninputs, d->noutputs, s->nin, s->nout);
    for (k = 0; k < s->nin + s->nout; k++)
      if ((k < s->nin ? s->in[k] : s->out[k - s->nin]) !=
          (k < s->nin ? d->inputs[k] : d->outputs[k - s->nin]))
        return BAD("steps[%u]: a CPU step takes the graph's inputs, then its outputs", i);
    if (!d->cpu_code) return BAD("steps[%u]: entry '%s' but no cpu_code", i, s->entry);
    if (s->device != d->cpu_device)
      return BAD("steps[%u]: entry '%s' on device %u, the CPU code is device %u's", i, s->entry,
                 s->device, d->cpu_device);
  } /* other backends' code sections come with their executors */
  return MOSS_OK;
}

/* Bound |i|: its output exists, the axis is inside the output's rank, the
 * int64 length lies 8-aligned inside the arena, no other bound names the
 * output (the runtime checks the same at open). */
static moss_status check_bound(moss_ctx *ctx, const moss_bundle_desc *d, uint32_t i) {
  const moss_bundle_bound *r = &d->bounds[i];
  const moss_bundle_tensor *t;
  uint32_t k;
  if (r->output >= d->noutputs)
    return BAD("bounds[%u].output = %u, there are %u outputs", i, r->output, d->noutputs);
  t = &d->tensors[d->outputs[r->output]];
  if (t->rank < 0 || r->axis >= (uint32_t)t->rank)
    return BAD("bounds[%u].axis = %u, output %u ('%s') has rank %d", i, r->axis, r->output,
               t->name ? t->name : "", t->rank);
  if (r->offset % 8 || r->offset > d->arena_bytes || d->arena_bytes - r->offset < 8)
    return BAD("bounds[%u].offset = %llu is not 8-aligned or its 8 bytes are past arena_bytes %llu",
               i, (unsigned long long)r->offset, (unsigned long long)d->arena_bytes);
  for (k = 0; k < i; k++)
    if (d->bounds[k].output == r->output)
      return BAD("bounds[%u].output = %u is bounds[%u]'s too", i, r->output, k);
  return MOSS_OK;
}

/* SHAPES' groups as the runtime checks them (runtime/src/shape/shape.c). */
static moss_status check_groups(moss_ctx *ctx, const moss_bundle_desc *d) {
  uint32_t i;
  uint64_t taken = 0;
  for (i = 0; i < d->ngroups; i++) {
    const moss_bundle_group *r = &d->groups[i];
    if (r->kind < 1 || r->kind > 2 || r->flags > 3 || (r->kind == 1 && r->flags) ||
        ((r->flags & MOSS_BUNDLE_GROUP_ABSENT) && r->count) || (r->kind == 2 && !r->flags && r->count != 1))
      return BAD("groups[%u]: kind %u, flags %u, count %u", i, r->kind, r->flags, r->count);
    if (r->first > d->noutputs || r->count > d->noutputs - r->first ||
        (i && (r->position <= d->groups[i - 1].position || r->first < d->groups[i - 1].first + d->groups[i - 1].count)))
      return BAD("groups[%u]: position %u, outputs %u (+%u)", i, r->position, r->first, r->count);
    taken += r->count;
  }
  if (d->ngroups && d->groups[d->ngroups - 1].position >= d->noutputs - taken + d->ngroups)
    return BAD("groups[%u].position = %u", d->ngroups - 1, d->groups[d->ngroups - 1].position);
  return MOSS_OK;
}

static moss_status check_desc(moss_ctx *ctx, const moss_bundle_desc *d) {
  uint32_t i;
  if (!d->target || strlen(d->target) >= 64) return BAD("target is NULL or 64 bytes or longer");
  if (d->triple && strlen(d->triple) >= 64) return BAD("triple is 64 bytes or longer");
  if (d->features && strlen(d->features) >= 128) return BAD("features is 128 bytes or longer");
  if ((d->ntensors && !d->tensors) || (d->ninputs && !d->inputs) ||
      (d->noutputs && !d->outputs) || (d->ndevices && !d->devices) || (d->nsteps && !d->steps) ||
      (d->nblobs && (!d->blobs || !d->blob_bytes || !d->blob_device)) ||
      (d->cpu_code_bytes && !d->cpu_code) || (d->nbounds && !d->bounds) || (d->ngroups && !d->groups))
    return BAD("a count is non-zero but its array is NULL");
  if (d->nblobs > MOSS_BUNDLE_MAX_SECTIONS - 7) return BAD("nblobs = %u", d->nblobs);
  for (i = 0; i < d->ninputs; i++)
    if (d->inputs[i] >= d->ntensors) return BAD("inputs[%u] = %u", i, d->inputs[i]);
  for (i = 0; i < d->noutputs; i++)
    if (d->outputs[i] >= d->ntensors) return BAD("outputs[%u] = %u", i, d->outputs[i]);
  for (i = 0; i < d->ntensors; i++) MOSS_TRY(check_tensor(ctx, d, i));
  for (i = 0; i < d->ninputs; i++)
    if (d->tensors[d->inputs[i]].place != MOSS_BUNDLE_INPUT || d->tensors[d->inputs[i]].index != i)
      return BAD("inputs[%u]: tensor %u is not placed as input %u", i, d->inputs[i], i);
  for (i = 0; i < d->noutputs; i++)
    if (d->tensors[d->outputs[i]].place != MOSS_BUNDLE_OUTPUT ||
        d->tensors[d->outputs[i]].index != i)
      return BAD("outputs[%u]: tensor %u is not placed as output %u", i, d->outputs[i], i);
  for (i = 0; i < d->ndevices; i++) {
    const moss_bundle_device *v = &d->devices[i];
    if (!v->id || !v->kind || !v->backend) return BAD("devices[%u]: id, kind or backend is NULL", i);
  }
  for (i = 0; i < d->nblobs; i++)
    if (d->blob_device[i] >= d->ndevices || !runs_blobs(&d->devices[d->blob_device[i]]))
      return BAD("blob_device[%u] = %u is not a device that runs blobs", i, d->blob_device[i]);
  for (i = 0; i < d->nsteps; i++) MOSS_TRY(check_step(ctx, d, i));
  for (i = 0; i < d->nbounds; i++) MOSS_TRY(check_bound(ctx, d, i));
  MOSS_TRY(check_groups(ctx, d));
  if (d->cpu_code && d->cpu_code_bytes < 4) return BAD("cpu_code is %llu bytes",
                                                       (unsigned long long)d->cpu_code_bytes);
  if (d->cpu_code && (d->cpu_device >= d->ndevices || runs_blobs(&d->devices[d->cpu_device])))
    return BAD("cpu_device = %u is not a CPU device", d->cpu_device);
  if (d->cpu_code_format > MOSS_BUNDLE_CODE_ELF_OBJECT)
    return BAD("cpu_code_format = %u", d->cpu_code_format);
  return MOSS_OK;
}

/* EXEC on a device that runs no blobs: its entry is a symbol of the CPU code. */
static int is_cpu_step(const moss_bundle_desc *d, const moss_bundle_step *s) {
  return s->kind == MOSS_BUNDLE_STEP_EXEC && !runs_blobs(&d->devices[s->device]);
}

/* Tensor |i|'s record as the file holds it, name aside (zero). */
static void tensor_rec(const moss_bundle_desc *d, uint32_t i, moss_bundle_tensor_rec *r) {
  const moss_bundle_tensor *t = &d->tensors[i];
  memset(r, 0, sizeof *r);
  r->dtype = t->dtype;
  r->rank = t->rank;
  if (t->rank > 0 && t->rank <= MOSS_BUNDLE_MAX_RANK) /* else check_desc refuses it */
    memcpy(r->dims, t->dims, (size_t)t->rank * sizeof r->dims[0]);
  r->nbytes = t->nbytes;
  r->place = (uint32_t)t->place;
  r->index = t->place == MOSS_BUNDLE_ARENA ? 0 : t->index;
  r->offset = t->place == MOSS_BUNDLE_ARENA ? t->offset : 0;
}

/* Step |i|'s record, its tensors at refs[|first|..], entry aside (zero). */
static void step_rec(const moss_bundle_desc *d, uint32_t i, uint32_t first,
                     moss_bundle_step_rec *r) {
  const moss_bundle_step *s = &d->steps[i];
  memset(r, 0, sizeof *r);
  r->kind = (uint32_t)s->kind;
  r->device = s->device;
  r->from = s->kind == MOSS_BUNDLE_STEP_TRANSFER ? s->from : 0;
  r->blob = s->kind == MOSS_BUNDLE_STEP_EXEC && !is_cpu_step(d, s) ? s->blob : 0;
  r->nin = s->nin;
  r->nout = s->nout;
  r->first = first;
}

/* The string table: offset 0 is the empty string. */
static moss_bundle_str add_str(moss_buf *strs, const char *s) {
  moss_bundle_str r;
  size_t n = s ? strlen(s) : 0;
  r.offset = 0;
  r.len = 0;
  if (!n) return r;
  r.offset = (uint32_t)strs->len;
  r.len = (uint32_t)n;
  moss_buf_put(strs, s, n + 1);
  return r;
}

/* A section waiting to be laid out. */
typedef struct pending {
  uint32_t kind, param;
  const void *data;
  uint64_t size;
} pending;

static void put(moss_buf *b, const void *data, size_t n) {
  if (n) moss_buf_put(b, data, n); /* |data| may be NULL when |n| is 0 */
}

static void pad64(moss_buf *b) {
  static const char zeros[MOSS_BUNDLE_ALIGN];
  if (b->len % MOSS_BUNDLE_ALIGN) moss_buf_put(b, zeros, MOSS_BUNDLE_ALIGN - b->len % MOSS_BUNDLE_ALIGN);
}

/* The figures, in the order the file has them (bundle.h). */
moss_status moss_bundle_figures_emit(moss_ctx *ctx, const moss_bundle_desc *d, moss_buf *out) {
  static const char zeros[8];
  moss_bundle_figures f;
  uint32_t i, k;
  for (i = 0; i < d->nsteps; i++) /* check_desc runs when the bundle, code and all, is written */
    if (d->steps[i].device >= d->ndevices || (d->steps[i].nin && !d->steps[i].in) ||
        (d->steps[i].nout && !d->steps[i].out))
      return BAD("steps[%u]: bad device or tensor list", i);
  memset(&f, 0, sizeof f);
  f.magic = MOSS_BUNDLE_FIGURES_MAGIC;
  f.arena_bytes = d->arena_bytes;
  f.ntensors = d->ntensors;
  f.nsteps = d->nsteps;
  for (i = 0; i < d->nsteps; i++) {
    f.nrefs += d->steps[i].nin + d->steps[i].nout;
    f.nentries += d->steps[i].kind == MOSS_BUNDLE_STEP_EXEC && d->steps[i].device == d->cpu_device;
  }
  moss_buf_put(out, &f, sizeof f);
  for (i = 0; i < d->ntensors; i++) {
    moss_bundle_tensor_rec r;
    moss_bundle_figure_tensor ft;
    tensor_rec(d, i, &r);
    ft.dtype = r.dtype;
    ft.rank = r.rank;
    memcpy(ft.dims, r.dims, sizeof ft.dims);
    ft.nbytes = r.nbytes;
    ft.place = r.place;
    ft.index = r.index;
    ft.offset = r.offset;
    moss_buf_put(out, &ft, sizeof ft);
  }
  for (i = 0, k = 0; i < d->nsteps; i++) {
    moss_bundle_step_rec r;
    moss_bundle_figure_step fs;
    step_rec(d, i, k, &r);
    k += d->steps[i].nin + d->steps[i].nout;
    fs.kind = r.kind;
    fs.device = r.device;
    fs.from = r.from;
    fs.blob = r.blob;
    fs.nin = r.nin;
    fs.nout = r.nout;
    fs.first = r.first;
    moss_buf_put(out, &fs, sizeof fs);
  }
  for (i = 0; i < d->nsteps; i++) {
    put(out, d->steps[i].in, (size_t)d->steps[i].nin * 4);
    put(out, d->steps[i].out, (size_t)d->steps[i].nout * 4);
  }
  if (out->len % 8) moss_buf_put(out, zeros, 8 - out->len % 8);
  return out->failed ? moss_fail(ctx, MOSS_E_NOMEM, NULL, "bundle: figures") : MOSS_OK;
}

/* Through a temporary file renamed over |path|, never over an input or a
 * device (moss_file_write). */
static moss_status write_atomic(moss_ctx *ctx, const char *path, const void *data, size_t n) {
  return moss_file_write(ctx, path, data, n);
}

moss_status moss_bundle_write(moss_ctx *ctx, const moss_bundle_desc *d, const char *path) {
  moss_buf strs, meta, devs, plan, shapes, out;
  pending *sec;
  moss_bundle_header h;
  uint32_t nsec = 0, i, k, nrefs = 0;
  moss_status st = MOSS_OK;
  if (!d || !path) return BAD("NULL description or path");
  MOSS_TRY(check_desc(ctx, d));
  sec = moss_alloc(ctx, (size_t)(d->nblobs + 7) * sizeof *sec); /* + the 7 other kinds */
  if (!sec) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "bundle: out of memory");
  moss_buf_init(&strs, ctx);
  moss_buf_init(&meta, ctx);
  moss_buf_init(&devs, ctx);
  moss_buf_init(&plan, ctx);
  moss_buf_init(&shapes, ctx);
  moss_buf_init(&out, ctx);
  moss_buf_put(&strs, "", 1);

  { /* META */
    moss_bundle_meta m;
    memset(&m, 0, sizeof m);
    m.arena_bytes = d->arena_bytes;
    m.ntensors = d->ntensors;
    m.ninputs = d->ninputs;
    m.noutputs = d->noutputs;
    moss_buf_put(&meta, &m, sizeof m);
    for (i = 0; i < d->ntensors; i++) {
      moss_bundle_tensor_rec r;
      tensor_rec(d, i, &r);
      r.name = add_str(&strs, d->tensors[i].name);
      moss_buf_put(&meta, &r, sizeof r);
    }
    put(&meta, d->inputs, (size_t)d->ninputs * 4);
    put(&meta, d->outputs, (size_t)d->noutputs * 4);
  }
  { /* DEVICES */
    moss_bundle_devices hd = {d->ndevices, 0};
    moss_buf_put(&devs, &hd, sizeof hd);
    for (i = 0; i < d->ndevices; i++) {
      moss_bundle_device_rec r;
      int code = d->cpu_code && d->cpu_device == i;
      memset(&r, 0, sizeof r);
      r.id = add_str(&strs, d->devices[i].id);
      r.kind = add_str(&strs, d->devices[i].kind);
      r.backend = add_str(&strs, d->devices[i].backend);
      r.plugin_path = add_str(&strs, is_plugin(&d->devices[i]) ? d->devices[i].plugin_path : NULL);
      r.triple = add_str(&strs, code ? d->triple : NULL);
      r.features = add_str(&strs, code ? d->features : NULL);
      r.code_format = !code ? MOSS_BUNDLE_CODE_NONE
                      : d->cpu_code_format ? d->cpu_code_format : MOSS_BUNDLE_CODE_ELF_SHARED;
      moss_buf_put(&devs, &r, sizeof r);
    }
  }
  { /* PLAN */
    moss_bundle_plan hd;
    for (i = 0; i < d->nsteps; i++) nrefs += d->steps[i].nin + d->steps[i].nout;
    hd.count = d->nsteps;
    hd.nrefs = nrefs;
    moss_buf_put(&plan, &hd, sizeof hd);
    for (i = 0, k = 0; i < d->nsteps; i++) {
      const moss_bundle_step *s = &d->steps[i];
      moss_bundle_step_rec r;
      step_rec(d, i, k, &r);
      r.entry = add_str(&strs, is_cpu_step(d, s) ? s->entry : NULL);
      k += s->nin + s->nout;
      moss_buf_put(&plan, &r, sizeof r);
    }
    for (i = 0; i < d->nsteps; i++) {
      put(&plan, d->steps[i].in, (size_t)d->steps[i].nin * 4);
      put(&plan, d->steps[i].out, (size_t)d->steps[i].nout * 4);
    }
  }
  if (d->nbounds || d->ngroups) { /* SHAPES: the bounds, then the groups */
    moss_bundle_shapes hd = {d->nbounds, d->ngroups};
    moss_buf_put(&shapes, &hd, sizeof hd);
    for (i = 0; i < d->nbounds; i++) {
      moss_bundle_bound_rec r;
      memset(&r, 0, sizeof r);
      r.output = d->bounds[i].output;
      r.axis = d->bounds[i].axis;
      r.offset = d->bounds[i].offset;
      moss_buf_put(&shapes, &r, sizeof r);
    }
  }
  if (d->ngroups) {
    for (i = 0; i < d->ngroups; i++) {
      moss_bundle_group_rec r;
      memset(&r, 0, sizeof r);
      r.position = d->groups[i].position;
      r.first = d->groups[i].first;
      r.count = d->groups[i].count;
      r.kind = d->groups[i].kind;
      r.flags = d->groups[i].flags;
      r.elem = d->groups[i].elem;
      moss_buf_put(&shapes, &r, sizeof r);
    }
  }
  if (strs.failed || meta.failed || devs.failed || plan.failed || shapes.failed ||
      strs.len > UINT32_MAX) {
    st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "bundle: out of memory laying out '%s'", path);
    goto done;
  }

  /* The order the sections take in the file; "section 3 (plan)" in the
   * runtime's messages counts in this order. */
  sec[nsec++] = (pending){MOSS_BUNDLE_SEC_STRINGS, 0, strs.data, strs.len};
  sec[nsec++] = (pending){MOSS_BUNDLE_SEC_META, 0, meta.data, meta.len};
  sec[nsec++] = (pending){MOSS_BUNDLE_SEC_DEVICES, 0, devs.data, devs.len};
  sec[nsec++] = (pending){MOSS_BUNDLE_SEC_PLAN, 0, plan.data, plan.len};
  if (d->cpu_code)
    sec[nsec++] = (pending){MOSS_BUNDLE_SEC_CODE, d->cpu_device, d->cpu_code, d->cpu_code_bytes};
  for (i = 0; i < d->nblobs; i++)
    sec[nsec++] = (pending){MOSS_BUNDLE_SEC_BLOB, d->blob_device[i], d->blobs[i], d->blob_bytes[i]};
  if (d->report_json)
    sec[nsec++] = (pending){MOSS_BUNDLE_SEC_REPORT, 0, d->report_json, strlen(d->report_json) + 1};
  if (d->nbounds || d->ngroups) /* last: the other sections keep their numbers */
    sec[nsec++] = (pending){MOSS_BUNDLE_SEC_SHAPES, 0, shapes.data, shapes.len};

  memset(&h, 0, sizeof h);
  moss_buf_put(&out, &h, sizeof h);
  for (i = 0; i < nsec; i++) {
    moss_bundle_section e;
    memset(&e, 0, sizeof e);
    moss_buf_put(&out, &e, sizeof e);
  }
  pad64(&out);
  for (i = 0; i < nsec; i++) {
    moss_bundle_section e;
    e.kind = sec[i].kind;
    e.param = sec[i].param;
    e.offset = out.len;
    e.size = sec[i].size;
    e.align = MOSS_BUNDLE_ALIGN;
    e.crc = crc32_bytes(sec[i].data, (size_t)sec[i].size);
    put(&out, sec[i].data, (size_t)sec[i].size);
    pad64(&out);
    if (!out.failed) memcpy(out.data + sizeof h + (size_t)i * sizeof e, &e, sizeof e);
  }
  if (d->sign_key) { /* the signature trailer, filled below once the header is done */
    moss_bundle_signature t;
    memset(&t, 0, sizeof t);
    memcpy(t.magic, MOSS_BUNDLE_SIGNATURE_MAGIC, 8);
    t.algorithm = MOSS_BUNDLE_SIGNATURE_ED25519;
    t.size = sizeof t;
    moss_buf_put(&out, &t, sizeof t);
    h.flags = MOSS_BUNDLE_FLAG_SIGNED;
  }
  if (d->batched) h.flags |= MOSS_BUNDLE_FLAG_BATCHED;
  if (out.failed) {
    st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "bundle: out of memory laying out '%s'", path);
    goto done;
  }
  memcpy(h.magic, MOSS_BUNDLE_MAGIC, 8);
  h.version = MOSS_BUNDLE_VERSION;
  h.header_size = sizeof h;
  h.file_size = out.len;
  h.section_table_offset = sizeof h;
  h.section_count = nsec;
  h.section_entry_size = sizeof(moss_bundle_section);
  strcpy(h.target, d->target);
  strcpy(h.triple, d->cpu_code && d->triple ? d->triple : "");
  strcpy(h.features, d->cpu_code && d->features ? d->features : "");
  h.header_crc = moss_bundle_crc32(0, &h, sizeof h);
  h.header_crc = moss_bundle_crc32(h.header_crc, out.data + sizeof h,
                                   (size_t)nsec * sizeof(moss_bundle_section));
  memcpy(out.data, &h, sizeof h);
  if (d->sign_key) {
    char why[256];
    mossrt_status ss = mossrt_sign_bundle(d->sign_key, out.data, out.len, why, sizeof why);
    if (ss != MOSSRT_OK) {
      st = moss_fail(ctx, ss == MOSSRT_E_ARG ? MOSS_E_IO : MOSS_E_INTERNAL, NULL,
                     "bundle: cannot sign '%s': %s", path, why);
      goto done;
    }
  }
  st = write_atomic(ctx, path, out.data, out.len);
done:
  moss_buf_deinit(&strs);
  moss_buf_deinit(&meta);
  moss_buf_deinit(&devs);
  moss_buf_deinit(&plan);
  moss_buf_deinit(&shapes);
  moss_buf_deinit(&out);
  moss_free(ctx, sec, (size_t)(d->nblobs + 7) * sizeof *sec);
  return st;
}
