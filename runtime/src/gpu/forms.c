/* forms.c - devices with several code forms: a GPU whose backend is
 * "ptx+vulkan" (backends/gpu/forms.c) has, for each step, one BLOB that
 * holds both the PTX and the Vulkan segment blob (moss_bundle.h, "GPU
 * code-forms blob"). The bundle carries every form; libmossrt runs the one
 * this machine has a driver for. core/bundle.c calls in here as it reads
 * the devices, the blobs and the plan; every other device passes through.
 *
 * As the devices are read, such a device gets, for now, the first of its
 * forms this runtime has an executor for (forms without one are never
 * run; a device with none has no executor, and a step on it is refused).
 * Each of its blobs must be a well-formed code-forms blob holding exactly
 * the device's forms, each within the blob and 8-aligned, and becomes a
 * view of its form's blob, so that the executors see the blob they know.
 * Each EXEC step is checked by every form's executor on that form's blob,
 * so a bundle is accepted or refused whatever the machine. Once the plan
 * is read, each such device that runs a step gets its form for good: the
 * first, in the backend's order, whose executor's available() finds the
 * driver and a device (MOSS_DEVICE) here, or the one MOSS_GPU_FORM names;
 * with MOSSRT_OPEN_VERIFY_ONLY no driver is asked and the first stays.
 * Nothing here allocates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/mossrt_internal.h"

#define MAX_FORMS 4u
#define NAME_BYTES 16u /* an entry's backend field, NUL-padded */

#define FAIL(st, ...) mossrt_fail(err, b->name, (st), __VA_ARGS__)

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* 1 when |d|'s backend names several forms ("plugin:NAME" is one form). */
static int several(const mossrt_device *d) {
  return strncmp(d->backend, "plugin:", 7) != 0 && strchr(d->backend, '+') != NULL;
}

static uint32_t count(const char *forms) {
  uint32_t n = 1;
  for (; *forms; forms++) n += *forms == '+';
  return n;
}

/* Form |k| of |forms| ("ptx+vulkan"), NUL-terminated, into |out|; 0 when
 * there is no such form or it is empty or too long for an entry. */
static int form_name(const char *forms, uint32_t k, char out[NAME_BYTES]) {
  const char *p = forms, *e;
  size_t n;
  for (;;) {
    e = strchr(p, '+');
    n = e ? (size_t)(e - p) : strlen(p);
    if (k == 0) break;
    if (!e) return 0;
    k--;
    p = e + 1;
  }
  if (n == 0 || n >= NAME_BYTES) return 0;
  memcpy(out, p, n);
  out[n] = 0;
  return 1;
}

/* The executor that runs form |name| of |d|, if it has blobs; else NULL. */
static const mossrt_executor *form_exec(const mossrt_device *d, const char *name) {
  mossrt_device t = *d;
  const mossrt_executor *e;
  t.backend = name;
  t.form = 0;
  e = mossrt_executor_find(&t);
  return e && e->blobs ? e : NULL;
}

/* Blob |i|'s whole BLOB section: the |i|-th in the (checked) section table. */
static const uint8_t *whole(const mossrt_bundle *b, uint32_t i, uint64_t *out_size) {
  moss_bundle_header h;
  moss_bundle_section s;
  uint32_t k;
  memcpy(&h, b->data, sizeof h);
  for (k = 0; k < h.section_count; k++) {
    memcpy(&s, b->data + h.section_table_offset + (uint64_t)k * sizeof s, sizeof s);
    if (s.kind == MOSS_BUNDLE_SEC_BLOB && i-- == 0) {
      *out_size = s.size;
      return b->data + s.offset;
    }
  }
  *out_size = 0;
  return NULL;
}

/* Points blob |bl| at form |name| of the checked code-forms blob |p|, and
 * at the weights it keeps apart where it does; 0 when it has no such form. */
static int view(mossrt_blob *bl, const uint8_t *p, const char *name) {
  uint32_t k, nf = rd32(p + 8), shared = rd32(p + 12);
  const uint8_t *w = p + MOSS_FORMS_BLOB_HEADER_BYTES + (size_t)nf * MOSS_FORMS_BLOB_ENTRY_BYTES;
  for (k = 0; k < nf; k++) {
    const uint8_t *e = p + MOSS_FORMS_BLOB_HEADER_BYTES + (size_t)k * MOSS_FORMS_BLOB_ENTRY_BYTES;
    if (strcmp((const char *)e, name) == 0) {
      bl->data = p + mossrt_rd64(e + NAME_BYTES);
      bl->size = mossrt_rd64(e + NAME_BYTES + 8);
      bl->weights = shared ? p + mossrt_rd64(w + NAME_BYTES) : NULL;
      bl->nweights = shared ? mossrt_rd64(w + NAME_BYTES + 8) : 0;
      return 1;
    }
  }
  return 0;
}

mossrt_status mossrt_forms_device(mossrt_bundle *b, uint32_t i, mossrt_error *err) {
  mossrt_device *d = &b->devices[i];
  char name[NAME_BYTES], other[NAME_BYTES];
  uint32_t k, j, n;
  d->form = 0;
  if (!several(d)) {
    d->exec = mossrt_executor_find(d);
    return MOSSRT_OK;
  }
  d->exec = NULL;
  if ((n = count(d->backend)) > MAX_FORMS)
    return FAIL(MOSSRT_E_FORMAT, "device %u ('%s'): backend '%s' names %u code forms, at most %u",
                i, d->id, d->backend, n, MAX_FORMS);
  for (k = 0; k < n; k++) {
    if (!form_name(d->backend, k, name))
      return FAIL(MOSSRT_E_FORMAT,
                  "device %u ('%s'): backend '%s': code form %u is empty or longer than %u bytes",
                  i, d->id, d->backend, k, NAME_BYTES - 1);
    for (j = 0; j < k; j++)
      if (form_name(d->backend, j, other) && strcmp(name, other) == 0)
        return FAIL(MOSSRT_E_FORMAT, "device %u ('%s'): backend '%s' names code form '%s' twice",
                    i, d->id, d->backend, name);
    if (!d->exec && (d->exec = form_exec(d, name)) != NULL) d->form = k + 1;
  }
  return MOSSRT_OK;
}

#define BAD(fmt, ...)                                                                              \
  FAIL(MOSSRT_E_FORMAT, "blob %u (device %u '%s', %s): " fmt, i, bl->device, d->id, d->backend,    \
       __VA_ARGS__)

mossrt_status mossrt_forms_blob(mossrt_bundle *b, uint32_t i, mossrt_error *err) {
  mossrt_blob *bl = &b->blobs[i];
  const mossrt_device *d = &b->devices[bl->device]; /* the caller checked the index */
  const uint8_t *p = bl->data;
  uint64_t n = bl->size, head;
  uint32_t nf, k, j, ver, shared;
  char name[NAME_BYTES];
  if (!d->form) return MOSSRT_OK;
  if (n < MOSS_FORMS_BLOB_HEADER_BYTES)
    return BAD("%llu bytes, shorter than a GPU code-forms blob's header (%u)",
               (unsigned long long)n, MOSS_FORMS_BLOB_HEADER_BYTES);
  if (memcmp(p, MOSS_FORMS_BLOB_MAGIC, 4) != 0)
    return BAD("not a GPU code-forms blob (magic %02x %02x %02x %02x, expected '%s')", p[0], p[1],
               p[2], p[3], MOSS_FORMS_BLOB_MAGIC);
  if ((ver = rd32(p + 4)) != MOSS_FORMS_BLOB_VERSION && ver != 1)
    return BAD("GPU code-forms blob version %u, this runtime reads 1 and %u", ver,
               MOSS_FORMS_BLOB_VERSION);
  nf = rd32(p + 8);
  if (nf < 1 || nf > MAX_FORMS) return BAD("%u code forms, expected 1 to %u", nf, MAX_FORMS);
  if ((shared = rd32(p + 12)) > (ver == 1 ? 0u : 1u))
    return BAD("its %s field is %u, expected 0%s", ver == 1 ? "reserved" : "shared-weights",
               shared, ver == 1 ? "" : " or 1");
  head = MOSS_FORMS_BLOB_HEADER_BYTES + (uint64_t)(nf + shared) * MOSS_FORMS_BLOB_ENTRY_BYTES;
  if (n < head)
    return BAD("%u entries do not fit in its %llu bytes", nf + shared, (unsigned long long)n);
  for (k = 0; k < nf + shared; k++) {
    const uint8_t *e = p + MOSS_FORMS_BLOB_HEADER_BYTES + (size_t)k * MOSS_FORMS_BLOB_ENTRY_BYTES;
    const char *nm = (const char *)e, *z = memchr(e, 0, NAME_BYTES);
    uint64_t off = mossrt_rd64(e + NAME_BYTES), size = mossrt_rd64(e + NAME_BYTES + 8);
    if (k == nf) { /* the weights the forms share */
      if (strncmp(nm, "weights", NAME_BYTES) != 0 || memcmp(e + 7, "\0\0\0\0\0\0\0\0\0", 9) != 0)
        return BAD("entry %u: named '%.16s', expected 'weights' (NUL-padded)", k,
                   z ? nm : "(not NUL-terminated)");
      if (off % 8 || off < head || off > n || size > n - off)
        return BAD("its weights: offset %llu + size %llu is not 8-aligned within the blob's data "
                   "(bytes %llu to %llu)", (unsigned long long)off, (unsigned long long)size,
                   (unsigned long long)head, (unsigned long long)n);
      continue;
    }
    if (!z || z == nm) return BAD("form %u: its name is %s", k, z ? "empty" : "not NUL-terminated");
    for (; z < nm + NAME_BYTES; z++)
      if (*z) return BAD("form %u ('%s'): its name is not NUL-padded", k, nm);
    if (off % 8)
      return BAD("form %u ('%s'): offset %llu is not 8-byte aligned", k, nm,
                 (unsigned long long)off);
    if (off < head || off > n || size > n - off)
      return BAD("form %u ('%s'): offset %llu + size %llu is outside the blob's data (bytes %llu "
                 "to %llu)", k, nm, (unsigned long long)off, (unsigned long long)size,
                 (unsigned long long)head, (unsigned long long)n);
    for (j = 0; j < k; j++)
      if (strcmp(nm, (const char *)(p + MOSS_FORMS_BLOB_HEADER_BYTES +
                                    (size_t)j * MOSS_FORMS_BLOB_ENTRY_BYTES)) == 0)
        return BAD("form %u ('%s'): a second '%s' form", k, nm, nm);
    for (j = 0; form_name(d->backend, j, name) && strcmp(name, nm) != 0; j++) continue;
    if (!form_name(d->backend, j, name))
      return BAD("form %u ('%s') is not one of the device's code forms", k, nm);
  }
  for (j = 0; form_name(d->backend, j, name); j++)
    if (!view(bl, p, name)) return BAD("it has no '%s' form", name);
  form_name(d->backend, d->form - 1, name);
  view(bl, p, name);
  return MOSSRT_OK;
}

mossrt_status mossrt_forms_check_step(mossrt_bundle *b, uint32_t i, mossrt_error *err) {
  const mossrt_step *s = &b->steps[i];
  mossrt_device *d = &b->devices[s->device];
  const mossrt_executor *keep = d->exec, *e;
  const uint8_t *data, *p, *w;
  uint64_t size, n, nw;
  uint32_t form = d->form, k;
  mossrt_blob *bl;
  mossrt_status st = MOSSRT_OK;
  char name[NAME_BYTES];
  /* (A step naming another device's blob: its executor says so.) */
  if (!form || s->blob >= b->nblobs || b->blobs[s->blob].device != s->device)
    return d->exec->check_step(b, i, err);
  bl = &b->blobs[s->blob];
  data = bl->data;
  size = bl->size;
  w = bl->weights;
  nw = bl->nweights;
  p = whole(b, s->blob, &n);
  for (k = 0; st == MOSSRT_OK && form_name(d->backend, k, name); k++) {
    if (!(e = form_exec(d, name))) continue;
    view(bl, p, name);
    d->exec = e;
    d->form = k + 1;
    st = e->check_step(b, i, err);
  }
  d->exec = keep;
  d->form = form;
  bl->data = data;
  bl->size = size;
  bl->weights = w;
  bl->nweights = nw;
  return st;
}

/* |t| past |prefix| and ": " when it starts so. */
static const char *skip(const char *t, const char *prefix, size_t n) {
  return strncmp(t, prefix, n) == 0 && t[n] == ':' && t[n + 1] == ' ' ? t + n + 2 : t;
}

/* The reason in |r|, an error about |b| and device |d| from executor |e|:
 * its text without "<bundle>: <category>: ", the executor's "<name>: " and
 * "device '<id>': ", which the message around it says. */
static const char *reason(const mossrt_bundle *b, const mossrt_device *d, const mossrt_executor *e,
                          const mossrt_error *r) {
  const char *t = r->text, *c;
  char dev[80];
  size_t n = strlen(b->name);
  if (strncmp(t, b->name, n) == 0 && t[n] == ':' && (c = strstr(t + n + 1, ": ")) != NULL)
    t = c + 2;
  t = skip(t, e->name, strlen(e->name));
  n = (size_t)snprintf(dev, sizeof dev, "device '%s'", d->id);
  return n < sizeof dev ? skip(t, dev, n) : t;
}

mossrt_status mossrt_forms_pick(mossrt_bundle *b, mossrt_error *err) {
  const char *force = getenv("MOSS_GPU_FORM");
  char name[NAME_BYTES], why[sizeof err->text];
  uint32_t i, k, j;
  if (force && (!*force || strcmp(force, "auto") == 0)) force = NULL;
  for (i = 0; i < b->ndevices; i++) {
    mossrt_device *d = &b->devices[i];
    const mossrt_executor *e = NULL;
    size_t used = 0;
    uint32_t pick = 0;
    if (!d->form || !d->used) continue;
    why[0] = 0;
    for (k = 0; !pick && form_name(d->backend, k, name); k++) {
      mossrt_device t;
      mossrt_error r;
      mossrt_status st = MOSSRT_OK;
      int m;
      if (force && strcmp(force, name) != 0) continue;
      e = form_exec(d, name);
      memset(&r, 0, sizeof r);
      if (e && e->available && !(b->flags & MOSSRT_OPEN_VERIFY_ONLY)) {
        t = *d;
        t.exec = e;
        t.form = k + 1;
        if ((st = e->available(b, &t, &r)) == MOSSRT_E_NOMEM) {
          if (err) *err = r;
          return st;
        }
      }
      if (e && st == MOSSRT_OK) {
        pick = k + 1;
        break;
      }
      m = snprintf(why + used, sizeof why - used, "%s%s: %s", used ? "; " : "", name,
                   e ? reason(b, d, e, &r) : "this runtime has no executor for it");
      if (m > 0) used = used + (size_t)m < sizeof why ? used + (size_t)m : sizeof why - 1;
    }
    if (!pick && force && !used)
      return FAIL(MOSSRT_E_DEVICE, "device %u ('%s', %s): MOSS_GPU_FORM='%s' is not one of its "
                  "code forms", i, d->id, d->backend, force);
    if (!pick)
      return FAIL(MOSSRT_E_DEVICE, "device %u ('%s', %s): no driver for %s: %s", i, d->id,
                  d->backend, force ? "the code form MOSS_GPU_FORM names" : "any code form", why);
    d->exec = e;
    d->form = pick;
    for (j = 0; j < b->nblobs; j++) {
      uint64_t n;
      if (b->blobs[j].device == i) view(&b->blobs[j], whole(b, j, &n), name);
    }
  }
  return MOSSRT_OK;
}
