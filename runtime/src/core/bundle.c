/* bundle.c - opening a .moss bundle: the first thing libmossrt does with a
 * file the compiler wrote (compiler/bundle/bundle_write.c). It reads the
 * bytes into memory it owns, then checks the header, the section table and
 * every section before anything is used: offsets, sizes, counts and indices
 * in range and free of overflow, sections aligned, inside the file and not
 * overlapping, checksums, strings terminated, tensors inside the arena,
 * steps naming valid tensors, devices and blobs. Each device gets its
 * executor from the table (core/executor.c), which checks the steps that
 * run on it; only then does each executor load what it needs (the CPU code
 * in cpu/cpu.c, plugin libraries in plugin/plugin.c). Every failure is one
 * message naming the field; nothing here trusts the input. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mossrt_internal.h"

#define MOSSRT_MAX_ARENA ((uint64_t)1 << 40) /* 1 TiB: larger is corruption, not a model */

static void *libc_realloc(void *user, void *ptr, size_t old_size, size_t new_size) {
  (void)user;
  (void)old_size;
  if (new_size == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, new_size);
}

void *mossrt_mem_alloc(const mossrt_allocator *a, size_t n) {
  void *p = a->fn(a->user, NULL, 0, n ? n : 1);
  if (p) memset(p, 0, n ? n : 1);
  return p;
}

void mossrt_mem_free(const mossrt_allocator *a, void *p, size_t n) {
  if (p) a->fn(a->user, p, n ? n : 1, 0);
}

static const char *category(mossrt_status st) {
  switch (st) {
  case MOSSRT_E_IO: return "io";
  case MOSSRT_E_FORMAT:
  case MOSSRT_E_SIGNATURE: return "invalid-model";
  case MOSSRT_E_VERSION: return "unsupported";
  case MOSSRT_E_TARGET:
  case MOSSRT_E_DEVICE: return "target";
  case MOSSRT_E_NOMEM: return "out-of-memory";
  default: return "internal";
  }
}

mossrt_status mossrt_fail(mossrt_error *err, const char *who, mossrt_status st,
                          const char *fmt, ...) {
  va_list ap;
  int n;
  if (!err) return st;
  err->status = st;
  n = snprintf(err->text, sizeof err->text, "%s: %s: ", who ? who : "mossrt", category(st));
  if (n < 0) n = 0;
  if ((size_t)n < sizeof err->text) {
    va_start(ap, fmt);
    vsnprintf(err->text + n, sizeof err->text - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return st;
}

static const char *const kind_names[] = {"?",    "strings", "meta", "devices", "plan",
                                         "code", "blob",    "report", "shapes"};

static const char *kind_name(uint32_t kind) {
  return kind < sizeof kind_names / sizeof kind_names[0] ? kind_names[kind] : "?";
}

/* Bytes per element of ONNX TensorProto dtype |dt|; 0: not a dtype we run. */
static uint32_t dtype_size(int32_t dt) {
  static const uint8_t sizes[17] = {0, 4, 1, 1, 2, 2, 4, 8, 0, 1, 2, 8, 4, 8, 0, 0, 2};
  return dt >= 0 && dt < 17 ? sizes[dt] : 0;
}

/* The string |s| of the STRINGS section, or NULL when it does not lie inside
 * the section or is not terminated right after its |len| bytes. */
static const char *str_at(const uint8_t *strings, uint64_t nstrings, moss_bundle_str s) {
  uint64_t end = (uint64_t)s.offset + s.len; /* no overflow: two uint32 */
  const char *p;
  if (!strings || end >= nstrings || strings[end] != 0) return NULL;
  p = (const char *)strings + s.offset;
  return memchr(p, 0, s.len) ? NULL : p;
}

/* The parts of the file the sections' parsers need. */
typedef struct layout {
  const moss_bundle_section *table;  /* the section table */
  uint32_t nsections;
  const moss_bundle_section *sec[9]; /* the one section of each kind (BLOB, CODE: unused) */
  uint32_t sec_index[9];
  const uint8_t *strings;
  uint64_t nstrings;
} layout;

#define FAIL(st, ...) return mossrt_fail(err, b->name, (st), __VA_ARGS__)
#define TRY(x)                                                                                     \
  do {                                                                                             \
    mossrt_status st_ = (x);                                                                       \
    if (st_ != MOSSRT_OK) return st_;                                                              \
  } while (0)

/* Allocates |count| elements of |elem| bytes into |*out| (products cannot
 * overflow: counts come from sections that fit in memory). */
static mossrt_status alloc_array(mossrt_bundle *b, void **out, uint64_t count, size_t elem,
                                 mossrt_error *err) {
  if (count > SIZE_MAX / elem) FAIL(MOSSRT_E_NOMEM, "%llu entries do not fit in memory",
                                    (unsigned long long)count);
  *out = mossrt_mem_alloc(&b->alloc, (size_t)count * elem);
  if (!*out) FAIL(MOSSRT_E_NOMEM, "cannot allocate %llu bytes",
                  (unsigned long long)(count * elem));
  return MOSSRT_OK;
}

static int text_field_ok(const char *f, size_t cap) { return memchr(f, 0, cap) != NULL; }

/* The header and the section table: everything that locates the sections. */
static mossrt_status check_header(mossrt_bundle *b, moss_bundle_header *h, mossrt_error *err) {
  uint32_t version, crc;
  uint64_t table_end;
  moss_bundle_header tmp;
  if (b->size >= 16) { /* magic and version first, whatever the rest */
    if (memcmp(b->data, MOSS_BUNDLE_MAGIC, 8) != 0)
      FAIL(MOSSRT_E_FORMAT, "not a moss bundle (bad magic)");
    memcpy(&version, b->data + 8, 4);
    if (version != MOSS_BUNDLE_VERSION)
      FAIL(MOSSRT_E_VERSION, "format version %u, this runtime reads %u", version,
           MOSS_BUNDLE_VERSION);
  }
  if (b->size < sizeof *h)
    FAIL(MOSSRT_E_FORMAT, "truncated: file is %zu bytes, a bundle header is %u", b->size,
         (unsigned)sizeof *h);
  memcpy(h, b->data, sizeof *h);
  if (h->file_size > b->size)
    FAIL(MOSSRT_E_FORMAT, "truncated: file is %zu bytes, header says %llu", b->size,
         (unsigned long long)h->file_size);
  if (h->file_size < b->size)
    FAIL(MOSSRT_E_FORMAT, "file is %zu bytes, header says %llu", b->size,
         (unsigned long long)h->file_size);
  if (h->header_size != sizeof *h)
    FAIL(MOSSRT_E_FORMAT, "header size %u, format version 3 has %u", h->header_size,
         (unsigned)sizeof *h);
  if (h->section_entry_size != sizeof(moss_bundle_section))
    FAIL(MOSSRT_E_FORMAT, "section entry size %u, format version 3 has %u",
         h->section_entry_size, (unsigned)sizeof(moss_bundle_section));
  if (h->section_count == 0 || h->section_count > MOSS_BUNDLE_MAX_SECTIONS)
    FAIL(MOSSRT_E_FORMAT, "section count %u, expected 1 to %u", h->section_count,
         MOSS_BUNDLE_MAX_SECTIONS);
  if (h->section_table_offset % MOSS_BUNDLE_ALIGN || h->section_table_offset < sizeof *h ||
      h->section_table_offset > b->size ||
      b->size - h->section_table_offset < (uint64_t)h->section_count * sizeof(moss_bundle_section))
    FAIL(MOSSRT_E_FORMAT, "section table at offset %llu with %u entries does not fit in %zu bytes",
         (unsigned long long)h->section_table_offset, h->section_count, b->size);
  table_end = h->section_table_offset + (uint64_t)h->section_count * sizeof(moss_bundle_section);
  tmp = *h;
  tmp.header_crc = 0;
  crc = moss_bundle_crc32(0, &tmp, sizeof tmp);
  crc = moss_bundle_crc32(crc, b->data + h->section_table_offset,
                          (size_t)(table_end - h->section_table_offset));
  if (crc != h->header_crc)
    FAIL(MOSSRT_E_FORMAT, "header checksum mismatch (stored 0x%08x, computed 0x%08x)",
         h->header_crc, crc);
  if (h->flags & ~(MOSS_BUNDLE_FLAG_SIGNED | MOSS_BUNDLE_FLAG_BATCHED))
    FAIL(MOSSRT_E_FORMAT, "header flags 0x%x, version 3 defines 0x3", h->flags);
  if (!text_field_ok(h->target, sizeof h->target) || !text_field_ok(h->triple, sizeof h->triple) ||
      !text_field_ok(h->features, sizeof h->features))
    FAIL(MOSSRT_E_FORMAT, "header: target, triple or features is not NUL-terminated");
  memcpy(b->target, h->target, sizeof b->target);
  memcpy(b->triple, h->triple, sizeof b->triple);
  memcpy(b->features, h->features, sizeof b->features);
  return MOSSRT_OK;
}

/* Each section: known kind, aligned, inside the file, after the table, not
 * overlapping another, checksum right; at most one of each kind but BLOB
 * and CODE. */
static mossrt_status check_sections(mossrt_bundle *b, const moss_bundle_header *h, layout *L,
                                    mossrt_error *err) {
  const moss_bundle_section *tab =
      (const moss_bundle_section *)(const void *)(b->data + h->section_table_offset);
  uint64_t table_end = h->section_table_offset + (uint64_t)h->section_count * sizeof *tab;
  uint32_t i, j, nblobs = 0;
  static const uint32_t required[] = {MOSS_BUNDLE_SEC_STRINGS, MOSS_BUNDLE_SEC_META,
                                      MOSS_BUNDLE_SEC_DEVICES, MOSS_BUNDLE_SEC_PLAN};
  L->table = tab;
  L->nsections = h->section_count;
  for (i = 0; i < h->section_count; i++) {
    moss_bundle_section s;
    memcpy(&s, &tab[i], sizeof s);
    if (s.kind < MOSS_BUNDLE_SEC_STRINGS || s.kind > MOSS_BUNDLE_SEC_SHAPES)
      FAIL(MOSSRT_E_FORMAT, "section %u: unknown kind %u", i, s.kind);
    if (s.align != MOSS_BUNDLE_ALIGN)
      FAIL(MOSSRT_E_FORMAT, "section %u (%s): alignment %u, expected %u", i, kind_name(s.kind),
           s.align, MOSS_BUNDLE_ALIGN);
    if (s.offset % MOSS_BUNDLE_ALIGN)
      FAIL(MOSSRT_E_FORMAT, "section %u (%s): offset %llu is not %u-byte aligned", i,
           kind_name(s.kind), (unsigned long long)s.offset, MOSS_BUNDLE_ALIGN);
    if (s.offset > b->size || s.size > b->size - s.offset)
      FAIL(MOSSRT_E_FORMAT, "section %u (%s): offset %llu + size %llu is past the end of the file"
           " (%zu bytes)", i, kind_name(s.kind), (unsigned long long)s.offset,
           (unsigned long long)s.size, b->size);
    if (s.offset < table_end && s.size)
      FAIL(MOSSRT_E_FORMAT, "section %u (%s): offset %llu overlaps the header or section table",
           i, kind_name(s.kind), (unsigned long long)s.offset);
    for (j = 0; j < i; j++) {
      moss_bundle_section o;
      memcpy(&o, &tab[j], sizeof o);
      if (s.size && o.size && s.offset < o.offset + o.size && o.offset < s.offset + s.size)
        FAIL(MOSSRT_E_FORMAT, "section %u (%s) overlaps section %u (%s)", i, kind_name(s.kind), j,
             kind_name(o.kind));
    }
    if (moss_bundle_crc32(0, b->data + s.offset, (size_t)s.size) != s.crc)
      FAIL(MOSSRT_E_FORMAT, "section %u (%s): checksum mismatch", i, kind_name(s.kind));
    if (s.kind == MOSS_BUNDLE_SEC_BLOB) {
      nblobs++;
    } else if (s.kind == MOSS_BUNDLE_SEC_CODE) {
      /* One per device: matched to the device records later. */
    } else {
      if (L->sec[s.kind])
        FAIL(MOSSRT_E_FORMAT, "section %u (%s): a second %s section (the first is section %u)",
             i, kind_name(s.kind), kind_name(s.kind), L->sec_index[s.kind]);
      L->sec[s.kind] = &tab[i];
      L->sec_index[s.kind] = i;
    }
  }
  for (i = 0; i < sizeof required / sizeof required[0]; i++)
    if (!L->sec[required[i]]) FAIL(MOSSRT_E_FORMAT, "no %s section", kind_name(required[i]));
  /* The blobs, in table order. */
  b->nblobs = nblobs;
  TRY(alloc_array(b, (void **)&b->blobs, nblobs, sizeof *b->blobs, err));
  for (i = 0, j = 0; i < h->section_count; i++) {
    moss_bundle_section s;
    memcpy(&s, &tab[i], sizeof s);
    if (s.kind != MOSS_BUNDLE_SEC_BLOB) continue;
    b->blobs[j].data = b->data + s.offset;
    b->blobs[j].size = s.size;
    b->blobs[j].device = s.param; /* checked against the devices later */
    b->blobs[j].weights = NULL;
    b->blobs[j].nweights = 0;
    j++;
  }
  return MOSSRT_OK;
}

/* The payload of the one section of |kind| and its size. */
static const uint8_t *payload(const mossrt_bundle *b, const layout *L, uint32_t kind,
                              uint64_t *out_size) {
  moss_bundle_section s;
  if (!L->sec[kind]) {
    *out_size = 0;
    return NULL;
  }
  memcpy(&s, L->sec[kind], sizeof s);
  *out_size = s.size;
  return b->data + s.offset;
}

static mossrt_status check_tensor(mossrt_bundle *b, const layout *L, uint32_t i,
                                  const moss_bundle_tensor_rec *r, mossrt_error *err) {
  mossrt_tensor *t = &b->tensors[i];
  uint64_t n;
  int32_t k;
  t->name = str_at(L->strings, L->nstrings, r->name);
  if (!t->name)
    FAIL(MOSSRT_E_FORMAT, "tensor %u: name: bad string reference (offset %u, length %u)", i,
         r->name.offset, r->name.len);
  n = dtype_size(r->dtype);
  if (!n) FAIL(MOSSRT_E_FORMAT, "tensor %u ('%s'): unknown dtype %d", i, t->name, r->dtype);
  if (r->rank < 0 || r->rank > MOSS_BUNDLE_MAX_RANK)
    FAIL(MOSSRT_E_FORMAT, "tensor %u ('%s'): rank %d, expected 0 to %d", i, t->name, r->rank,
         MOSS_BUNDLE_MAX_RANK);
  for (k = 0; k < r->rank; k++) {
    uint64_t d = (uint64_t)r->dims[k];
    if (r->dims[k] < 0)
      FAIL(MOSSRT_E_FORMAT, "tensor %u ('%s'): dimension %d is %lld", i, t->name, k,
           (long long)r->dims[k]);
    if (d && n > UINT64_MAX / d)
      FAIL(MOSSRT_E_FORMAT, "tensor %u ('%s'): size overflows", i, t->name);
    n *= d;
  }
  if (n != r->nbytes)
    FAIL(MOSSRT_E_FORMAT, "tensor %u ('%s'): nbytes %llu, its dtype and dims give %llu", i,
         t->name, (unsigned long long)r->nbytes, (unsigned long long)n);
  t->dtype = r->dtype;
  t->rank = r->rank;
  memcpy(t->dims, r->dims, sizeof t->dims);
  t->nbytes = r->nbytes;
  t->place = r->place;
  t->index = r->index;
  t->offset = r->offset;
  switch (r->place) {
  case MOSS_BUNDLE_PLACE_INPUT:
  case MOSS_BUNDLE_PLACE_OUTPUT: {
    int in = r->place == MOSS_BUNDLE_PLACE_INPUT;
    uint32_t count = in ? b->ninputs : b->noutputs;
    const uint32_t *list = in ? b->inputs : b->outputs;
    if (r->index >= count || list[r->index] != i)
      FAIL(MOSSRT_E_FORMAT, "tensor %u ('%s'): %s index %u is not graph %s %u's tensor", i,
           t->name, in ? "input" : "output", r->index, in ? "input" : "output", r->index);
    break;
  }
  case MOSS_BUNDLE_PLACE_ARENA:
    if (r->offset % MOSS_BUNDLE_ALIGN || r->offset > b->arena_bytes ||
        r->nbytes > b->arena_bytes - r->offset)
      FAIL(MOSSRT_E_FORMAT, "tensor %u ('%s'): arena offset %llu + %llu bytes is outside the arena"
           " (%llu bytes) or not %u-byte aligned", i, t->name, (unsigned long long)r->offset,
           (unsigned long long)r->nbytes, (unsigned long long)b->arena_bytes, MOSS_BUNDLE_ALIGN);
    break;
  default:
    FAIL(MOSSRT_E_FORMAT, "tensor %u ('%s'): unknown place %u", i, t->name, r->place);
  }
  return MOSSRT_OK;
}

static mossrt_status check_meta(mossrt_bundle *b, const layout *L, mossrt_error *err) {
  uint64_t size, want;
  const uint8_t *p = payload(b, L, MOSS_BUNDLE_SEC_META, &size);
  moss_bundle_meta m;
  uint32_t i;
  if (size < sizeof m)
    FAIL(MOSSRT_E_FORMAT, "section %u (meta): %llu bytes, shorter than its header",
         L->sec_index[MOSS_BUNDLE_SEC_META], (unsigned long long)size);
  memcpy(&m, p, sizeof m);
  want = sizeof m + (uint64_t)m.ntensors * sizeof(moss_bundle_tensor_rec) +
         ((uint64_t)m.ninputs + m.noutputs) * 4;
  if (want != size)
    FAIL(MOSSRT_E_FORMAT, "section %u (meta): %llu bytes, but %u tensors, %u inputs and %u outputs"
         " take %llu", L->sec_index[MOSS_BUNDLE_SEC_META], (unsigned long long)size, m.ntensors,
         m.ninputs, m.noutputs, (unsigned long long)want);
  if (m.arena_bytes > MOSSRT_MAX_ARENA || m.arena_bytes > SIZE_MAX - MOSS_BUNDLE_ALIGN)
    FAIL(MOSSRT_E_FORMAT, "arena of %llu bytes is beyond the limit of %llu",
         (unsigned long long)m.arena_bytes, (unsigned long long)MOSSRT_MAX_ARENA);
  b->arena_bytes = m.arena_bytes;
  b->ntensors = m.ntensors;
  b->ninputs = m.ninputs;
  b->noutputs = m.noutputs;
  TRY(alloc_array(b, (void **)&b->tensors, m.ntensors, sizeof *b->tensors, err));
  TRY(alloc_array(b, (void **)&b->inputs, m.ninputs, 4, err));
  TRY(alloc_array(b, (void **)&b->outputs, m.noutputs, 4, err));
  p += sizeof m;
  memcpy(b->inputs, p + (size_t)m.ntensors * sizeof(moss_bundle_tensor_rec), (size_t)m.ninputs * 4);
  memcpy(b->outputs, p + (size_t)m.ntensors * sizeof(moss_bundle_tensor_rec) + (size_t)m.ninputs * 4,
         (size_t)m.noutputs * 4);
  for (i = 0; i < m.ninputs; i++)
    if (b->inputs[i] >= m.ntensors)
      FAIL(MOSSRT_E_FORMAT, "graph input %u: tensor index %u, there are %u tensors", i,
           b->inputs[i], m.ntensors);
  for (i = 0; i < m.noutputs; i++)
    if (b->outputs[i] >= m.ntensors)
      FAIL(MOSSRT_E_FORMAT, "graph output %u: tensor index %u, there are %u tensors", i,
           b->outputs[i], m.ntensors);
  for (i = 0; i < m.ntensors; i++) {
    moss_bundle_tensor_rec r;
    memcpy(&r, p + (size_t)i * sizeof r, sizeof r);
    TRY(check_tensor(b, L, i, &r, err));
  }
  /* Each graph input's tensor says it is that input (checked above from
   * the tensor's side; this closes the loop from the list's side). */
  for (i = 0; i < m.ninputs; i++) {
    const mossrt_tensor *t = &b->tensors[b->inputs[i]];
    if (t->place != MOSS_BUNDLE_PLACE_INPUT || t->index != i)
      FAIL(MOSSRT_E_FORMAT, "graph input %u: tensor %u ('%s') is not placed as input %u", i,
           b->inputs[i], t->name, i);
  }
  for (i = 0; i < m.noutputs; i++) {
    const mossrt_tensor *t = &b->tensors[b->outputs[i]];
    if (t->place != MOSS_BUNDLE_PLACE_OUTPUT || t->index != i)
      FAIL(MOSSRT_E_FORMAT, "graph output %u: tensor %u ('%s') is not placed as output %u", i,
           b->outputs[i], t->name, i);
  }
  return MOSSRT_OK;
}

/* The CODE sections: each belongs to a device with a code format, one per
 * device, and every such device has one. */
static mossrt_status check_code(mossrt_bundle *b, const layout *L, mossrt_error *err) {
  const moss_bundle_section *tab = L->table;
  uint32_t i;
  for (i = 0; i < L->nsections; i++) {
    moss_bundle_section s;
    mossrt_device *d;
    memcpy(&s, &tab[i], sizeof s);
    if (s.kind != MOSS_BUNDLE_SEC_CODE) continue;
    if (s.param >= b->ndevices || b->devices[s.param].code_format == MOSS_BUNDLE_CODE_NONE)
      FAIL(MOSSRT_E_FORMAT, "section %u (code): device %u has no code format", i, s.param);
    d = &b->devices[s.param];
    if (d->code) FAIL(MOSSRT_E_FORMAT, "section %u (code): a second code section of device %u ('%s')",
                      i, s.param, d->id);
    d->code = b->data + s.offset;
    d->code_size = s.size;
    if ((d->code_format == MOSS_BUNDLE_CODE_ELF_SHARED || d->code_format == MOSS_BUNDLE_CODE_ELF_OBJECT) &&
        (s.size < 64 || memcmp(d->code, "\177ELF", 4) != 0))
      FAIL(MOSSRT_E_FORMAT, "section %u (code): device %u ('%s') has no ELF %s", i, s.param, d->id,
           d->code_format == MOSS_BUNDLE_CODE_ELF_SHARED ? "shared object" : "object");
    if (d->code_format == b->cpu_format) { /* the one device with ELF code */
      b->cpu_code = d->code;
      b->cpu_code_size = d->code_size;
    }
  }
  for (i = 0; i < b->ndevices; i++)
    if (b->devices[i].code_format != MOSS_BUNDLE_CODE_NONE && !b->devices[i].code)
      FAIL(MOSSRT_E_FORMAT, "device %u ('%s'): code format %u but no code section", i,
           b->devices[i].id, b->devices[i].code_format);
  return MOSSRT_OK;
}

static mossrt_status check_devices(mossrt_bundle *b, const layout *L, mossrt_error *err) {
  uint64_t size;
  const uint8_t *p = payload(b, L, MOSS_BUNDLE_SEC_DEVICES, &size);
  moss_bundle_devices hd;
  uint32_t i;
  if (size < sizeof hd ||
      (memcpy(&hd, p, sizeof hd), size != sizeof hd + (uint64_t)hd.count * sizeof(moss_bundle_device_rec)))
    FAIL(MOSSRT_E_FORMAT, "section %u (devices): %llu bytes does not match its device count",
         L->sec_index[MOSS_BUNDLE_SEC_DEVICES], (unsigned long long)size);
  b->ndevices = hd.count;
  TRY(alloc_array(b, (void **)&b->devices, hd.count, sizeof *b->devices, err));
  for (i = 0; i < hd.count; i++) {
    moss_bundle_device_rec r;
    mossrt_device *d = &b->devices[i];
    memcpy(&r, p + sizeof hd + (size_t)i * sizeof r, sizeof r);
    d->id = str_at(L->strings, L->nstrings, r.id);
    d->kind = str_at(L->strings, L->nstrings, r.kind);
    d->backend = str_at(L->strings, L->nstrings, r.backend);
    d->plugin_path = str_at(L->strings, L->nstrings, r.plugin_path);
    d->triple = str_at(L->strings, L->nstrings, r.triple);
    d->features = str_at(L->strings, L->nstrings, r.features);
    if (!d->id || !d->kind || !d->backend || !d->plugin_path || !d->triple || !d->features)
      FAIL(MOSSRT_E_FORMAT, "device %u: bad string reference in id, kind, backend, plugin path, "
           "triple or features", i);
    if (r.code_format > MOSS_BUNDLE_CODE_PTX || r.reserved != 0)
      FAIL(MOSSRT_E_FORMAT, "device %u ('%s'): code format %u (reserved %u)", i, d->id,
           r.code_format, r.reserved);
    d->code_format = r.code_format;
    if (r.code_format == MOSS_BUNDLE_CODE_ELF_SHARED || r.code_format == MOSS_BUNDLE_CODE_ELF_OBJECT) {
      if (b->cpu_format)
        FAIL(MOSSRT_E_FORMAT, "device %u ('%s'): a second device with CPU code", i, d->id);
      if (strcmp(d->triple, b->triple) != 0 || strcmp(d->features, b->features) != 0)
        FAIL(MOSSRT_E_FORMAT, "device %u ('%s'): triple '%s' and features '%s' differ from the "
             "header's '%s' and '%s'", i, d->id, d->triple, d->features, b->triple, b->features);
      b->cpu_format = r.code_format;
    }
    TRY(mossrt_forms_device(b, i, err)); /* its executor; what else it needs is checked where a
                                          * step uses it */
  }
  TRY(check_code(b, L, err));
  for (i = 0; i < b->nblobs; i++) {
    uint32_t dev = b->blobs[i].device;
    if (dev >= b->ndevices || !b->devices[dev].exec || !b->devices[dev].exec->blobs)
      FAIL(MOSSRT_E_FORMAT, "blob %u: device %u is not a plugin device of the %u devices", i, dev,
           b->ndevices);
    TRY(mossrt_forms_blob(b, i, err));
  }
  return MOSSRT_OK;
}

static mossrt_status check_step(mossrt_bundle *b, const layout *L, uint32_t i,
                                const moss_bundle_step_rec *r, mossrt_error *err) {
  mossrt_step *s = &b->steps[i];
  mossrt_device *d;
  uint32_t k;
  if (r->device >= b->ndevices)
    FAIL(MOSSRT_E_FORMAT, "step %u: device index %u, there are %u devices", i, r->device,
         b->ndevices);
  if ((uint64_t)r->first + r->nin + r->nout > b->nrefs)
    FAIL(MOSSRT_E_FORMAT, "step %u: tensors %u..%u+%u+%u are past the %u tensor references", i,
         r->first, r->first, r->nin, r->nout, b->nrefs);
  for (k = 0; k < r->nin + r->nout; k++)
    if (b->refs[r->first + k] >= b->ntensors)
      FAIL(MOSSRT_E_FORMAT, "step %u: %s %u: tensor index %u, there are %u tensors", i,
           k < r->nin ? "input" : "output", k < r->nin ? k : k - r->nin, b->refs[r->first + k],
           b->ntensors);
  d = &b->devices[r->device];
  s->kind = r->kind;
  s->device = r->device;
  s->from = r->from;
  s->blob = r->blob;
  s->nin = r->nin;
  s->nout = r->nout;
  s->first = r->first;
  if (r->kind == MOSS_BUNDLE_STEP_KIND_TRANSFER) {
    if (r->from >= b->ndevices)
      FAIL(MOSSRT_E_FORMAT, "step %u: transfer from device index %u, there are %u devices", i,
           r->from, b->ndevices);
    if (r->nin != 1 || r->nout != 0)
      FAIL(MOSSRT_E_FORMAT, "step %u: a transfer moves 1 tensor, this one lists %u and %u", i,
           r->nin, r->nout);
    return MOSSRT_OK;
  }
  if (r->kind != MOSS_BUNDLE_STEP_KIND_EXEC)
    FAIL(MOSSRT_E_FORMAT, "step %u: unknown kind %u", i, r->kind);
  d->used = 1;
  s->entry = str_at(L->strings, L->nstrings, r->entry); /* NULL: invalid; the executor decides */
  if (!d->exec)
    FAIL(MOSSRT_E_DEVICE, "step %u: device %u ('%s') has backend '%s', which this runtime cannot run",
         i, r->device, d->id, d->backend);
  return mossrt_forms_check_step(b, i, err);
}

static mossrt_status check_plan(mossrt_bundle *b, const layout *L, mossrt_error *err) {
  uint64_t size;
  const uint8_t *p = payload(b, L, MOSS_BUNDLE_SEC_PLAN, &size);
  moss_bundle_plan hd;
  uint32_t i;
  if (size < sizeof hd || (memcpy(&hd, p, sizeof hd),
                           size != sizeof hd + (uint64_t)hd.count * sizeof(moss_bundle_step_rec) +
                                       (uint64_t)hd.nrefs * 4))
    FAIL(MOSSRT_E_FORMAT, "section %u (plan): %llu bytes does not match its step and tensor counts",
         L->sec_index[MOSS_BUNDLE_SEC_PLAN], (unsigned long long)size);
  b->nsteps = hd.count;
  b->nrefs = hd.nrefs;
  TRY(alloc_array(b, (void **)&b->steps, hd.count, sizeof *b->steps, err));
  TRY(alloc_array(b, (void **)&b->refs, hd.nrefs, 4, err));
  memcpy(b->refs, p + sizeof hd + (size_t)hd.count * sizeof(moss_bundle_step_rec),
         (size_t)hd.nrefs * 4);
  for (i = 0; i < hd.count; i++) {
    moss_bundle_step_rec r;
    memcpy(&r, p + sizeof hd + (size_t)i * sizeof r, sizeof r);
    TRY(check_step(b, L, i, &r, err));
  }
  return MOSSRT_OK;
}

/* Everything after the file is in b->data. */
static mossrt_status verify(mossrt_bundle *b, mossrt_error *err) {
  moss_bundle_header h;
  layout L;
  uint64_t n;
  const uint8_t *p;
  const mossrt_executor *const *e;
  memset(&L, 0, sizeof L);
  TRY(check_header(b, &h, err));
  if (b->public_key) /* the signature, before any section is read */
    TRY(b->verify ? b->verify(b->public_key, b->data, b->size, b->name, err)
                  : mossrt_fail(err, b->name, MOSSRT_E_ARG, "public_key without verify"));
  TRY(check_sections(b, &h, &L, err));
  for (e = mossrt_executors; *e; e++)
    if ((*e)->check_target) TRY((*e)->check_target(b, err));
  L.strings = payload(b, &L, MOSS_BUNDLE_SEC_STRINGS, &L.nstrings);
  p = payload(b, &L, MOSS_BUNDLE_SEC_REPORT, &n);
  if (p) {
    if (n == 0 || p[n - 1] != 0)
      FAIL(MOSSRT_E_FORMAT, "section %u (report): not NUL-terminated",
           L.sec_index[MOSS_BUNDLE_SEC_REPORT]);
    b->report = (const char *)p;
    b->report_len = strlen(b->report);
  }
  TRY(check_meta(b, &L, err));
  TRY(check_devices(b, &L, err));
  TRY(check_plan(b, &L, err));
  return mossrt_forms_pick(b, err); /* the code form of each device with several */
}

void mossrt_close(mossrt_bundle *b) {
  mossrt_allocator a;
  const mossrt_executor *const *e;
  if (!b) return;
  a = b->alloc;
  for (e = mossrt_executors; *e; e++) (*e)->close(b);
  mossrt_mem_free(&a, b->tensors, (size_t)b->ntensors * sizeof *b->tensors);
  mossrt_mem_free(&a, b->inputs, (size_t)b->ninputs * 4);
  mossrt_mem_free(&a, b->outputs, (size_t)b->noutputs * 4);
  mossrt_mem_free(&a, b->refs, (size_t)b->nrefs * 4);
  mossrt_mem_free(&a, b->devices, (size_t)b->ndevices * sizeof *b->devices);
  mossrt_mem_free(&a, b->steps, (size_t)b->nsteps * sizeof *b->steps);
  mossrt_mem_free(&a, b->blobs, (size_t)b->nblobs * sizeof *b->blobs);
  mossrt_mem_free(&a, b->data, b->size);
  if (b->name) mossrt_mem_free(&a, b->name, strlen(b->name) + 1);
  if (b->plugin_dir) mossrt_mem_free(&a, b->plugin_dir, strlen(b->plugin_dir) + 1);
  mossrt_mem_free(&a, b, sizeof *b);
}

static char *dup_str(const mossrt_allocator *a, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = mossrt_mem_alloc(a, n);
  if (p) memcpy(p, s, n);
  return p;
}

/* A new, empty bundle named |name|. */
static mossrt_status begin(const char *name, const mossrt_options *opt, mossrt_bundle **out,
                           mossrt_error *err) {
  mossrt_allocator a = {libc_realloc, NULL};
  mossrt_bundle *b;
  if (opt && opt->alloc.fn) a = opt->alloc;
  b = mossrt_mem_alloc(&a, sizeof *b);
  if (!b) return mossrt_fail(err, name, MOSSRT_E_NOMEM, "cannot allocate the bundle");
  b->alloc = a;
  b->cpu_fd = -1;
  b->flags = opt ? opt->flags : 0;
  if (opt) b->public_key = opt->public_key, b->verify = opt->verify;
  b->name = dup_str(&a, name);
  if (opt && opt->plugin_dir) b->plugin_dir = dup_str(&a, opt->plugin_dir);
  if (!b->name || (opt && opt->plugin_dir && !b->plugin_dir)) {
    mossrt_close(b);
    return mossrt_fail(err, name, MOSSRT_E_NOMEM, "cannot allocate the bundle");
  }
  *out = b;
  return MOSSRT_OK;
}

/* Checks and loads |b| (its bytes already in place); closes it on failure. */
static mossrt_status finish(mossrt_bundle *b, mossrt_bundle **out, mossrt_error *err) {
  mossrt_status st = verify(b, err);
  const mossrt_executor *const *e;
  if (st == MOSSRT_OK) st = mossrt_shape_check(b, err); /* SHAPES, outside the core */
  for (e = mossrt_executors; *e && st == MOSSRT_OK && !(b->flags & MOSSRT_OPEN_VERIFY_ONLY); e++)
    st = (*e)->open(b, err);
  if (st != MOSSRT_OK) {
    mossrt_close(b);
    return st;
  }
  *out = b;
  return MOSSRT_OK;
}

mossrt_status mossrt_open_memory_ex(const void *data, size_t nbytes, const mossrt_options *opt,
                                    mossrt_bundle **out, mossrt_error *err) {
  mossrt_bundle *b;
  if (out) *out = NULL;
  if (!out || (!data && nbytes))
    return mossrt_fail(err, "<memory>", MOSSRT_E_ARG, "mossrt_open_memory: NULL argument");
  TRY(begin("<memory>", opt, &b, err));
  b->data = mossrt_mem_alloc(&b->alloc, nbytes);
  if (!b->data) {
    mossrt_close(b);
    return mossrt_fail(err, "<memory>", MOSSRT_E_NOMEM, "cannot allocate %zu bytes", nbytes);
  }
  b->size = nbytes;
  if (nbytes) memcpy(b->data, data, nbytes);
  return finish(b, out, err);
}

mossrt_status mossrt_open_file_ex(const char *path, const mossrt_options *opt, mossrt_bundle **out,
                                  mossrt_error *err) {
  mossrt_bundle *b;
  struct stat st;
  int fd;
  size_t got = 0;
  if (out) *out = NULL;
  if (!out || !path)
    return mossrt_fail(err, path ? path : "mossrt", MOSSRT_E_ARG, "mossrt_open_file: NULL argument");
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return mossrt_fail(err, path, MOSSRT_E_IO, "cannot open: %s", strerror(errno));
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > SIZE_MAX / 2) {
    close(fd);
    return mossrt_fail(err, path, MOSSRT_E_IO, "not a regular file of a readable size");
  }
  if (begin(path, opt, &b, err) != MOSSRT_OK) {
    close(fd);
    return MOSSRT_E_NOMEM;
  }
  b->size = (size_t)st.st_size;
  b->data = mossrt_mem_alloc(&b->alloc, b->size);
  if (!b->data) {
    close(fd);
    mossrt_close(b);
    return mossrt_fail(err, path, MOSSRT_E_NOMEM, "cannot allocate %zu bytes",
                       (size_t)st.st_size);
  }
  while (got < b->size) {
    ssize_t n = read(fd, b->data + got, b->size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd);
  if (got != b->size) {
    mossrt_close(b);
    return mossrt_fail(err, path, MOSSRT_E_IO, "read %zu of %zu bytes", got, (size_t)st.st_size);
  }
  return finish(b, out, err);
}

mossrt_status mossrt_open_file(const char *path, mossrt_bundle **out, mossrt_error *err) {
  return mossrt_open_file_ex(path, NULL, out, err);
}

mossrt_status mossrt_open_memory(const void *data, size_t nbytes, mossrt_bundle **out,
                                 mossrt_error *err) {
  return mossrt_open_memory_ex(data, nbytes, NULL, out, err);
}

const char *mossrt_target(const mossrt_bundle *b) { return b ? b->target : ""; }
uint32_t mossrt_input_count(const mossrt_bundle *b) { return b ? b->ninputs : 0; }
uint32_t mossrt_output_count(const mossrt_bundle *b) { return b ? b->noutputs : 0; }
uint64_t mossrt_arena_bytes(const mossrt_bundle *b) { return b ? b->arena_bytes : 0; }

const char *mossrt_report_json(const mossrt_bundle *b, size_t *len) {
  if (len) *len = b && b->report ? b->report_len : 0;
  return b ? b->report : NULL;
}

/* Graph input (|in| 1) or output |i|. Not inlined into its two callers:
 * that keeps the core 100 bytes smaller (scripts/mossrt_size.sh). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static mossrt_status info(const mossrt_bundle *b, uint32_t i, int in, mossrt_tensor_info *out) {
  const mossrt_tensor *t;
  if (!out) return MOSSRT_E_ARG;
  memset(out, 0, sizeof *out);
  if (!b || i >= (in ? b->ninputs : b->noutputs)) return MOSSRT_E_ARG;
  t = &b->tensors[in ? b->inputs[i] : b->outputs[i]];
  out->name = t->name;
  out->dtype = t->dtype;
  out->rank = t->rank;
  out->dims = t->dims;
  out->nbytes = t->nbytes;
  return MOSSRT_OK;
}

mossrt_status mossrt_input_info(const mossrt_bundle *b, uint32_t i, mossrt_tensor_info *out) {
  return info(b, i, 1, out);
}

mossrt_status mossrt_output_info(const mossrt_bundle *b, uint32_t i, mossrt_tensor_info *out) {
  return info(b, i, 0, out);
}
