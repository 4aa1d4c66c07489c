/* plugin.c - plugin devices in libmossrt (plugins/include/moss_plugin.h):
 * the plugin executor (mossrt_plugin_executor, an entry of core/executor.c's
 * table), serving devices whose backend is "plugin:NAME" and owning the
 * BLOB sections. While the plan is checked: each step's device has a
 * library name and the step's blob is one of that device's.
 * At open: dlopen() the library the compiler recorded for each plugin
 * device that runs a step (found by file name: open_library), refuse any
 * ABI version but ours, and take its runtime side. At session creation:
 * open() the device and load() each of its blobs. In a run: run() a blob
 * with its tensors' buffers. At the end: unload(), close(), dlclose().
 * Every failure names the plugin, the library and what went wrong. */
#define _GNU_SOURCE /* dladdr1, realpath */
#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/mossrt_internal.h"

#define DEVFAIL(d, fmt, ...)                                                                       \
  mossrt_fail(err, b->name, MOSSRT_E_DEVICE, "plugin '%s' (%s): " fmt, (d)->backend + 7,          \
              (d)->plugin_path, ##__VA_ARGS__)

/* One search for a plugin library: its file name, the folders looked in so
 * far (for the message when none holds it), and why a file that was there
 * did not load. */
typedef struct lookup {
  const char *base;
  char looked[400];
  size_t n;
  char why[224];
} lookup;

/* Tries folder |dir| (|dirlen| bytes) followed by |sub|; the handle, or NULL. */
static void *try_dir(lookup *L, const char *dir, size_t dirlen, const char *sub) {
  char path[PATH_MAX];
  size_t n = dirlen + strlen(sub);
  void *h;
  if (dirlen == 0 || n + strlen(L->base) + 2 > sizeof path) return NULL;
  memcpy(path, dir, dirlen);
  strcpy(path + dirlen, sub);
  if (L->n < sizeof L->looked)
    L->n += (size_t)snprintf(L->looked + L->n, sizeof L->looked - L->n, "%s, ", path);
  path[n] = '/';
  strcpy(path + n + 1, L->base);
  if (access(path, F_OK) != 0) return NULL;
  h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h && !L->why[0]) snprintf(L->why, sizeof L->why, "%s", dlerror());
  return h;
}

/* The folder of the object holding libmossrt's code into |out| (PATH_MAX
 * bytes): libmossrt.so, or the executable libmossrt.a is linked into (the
 * one object whose link map has no name). 0 when it cannot be told. */
static int self_dir(char *out) {
  Dl_info info;
  struct link_map *lm = NULL;
  char *slash;
  if (!dladdr1((void *)mossrt_open_file, &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm) return 0;
  if (lm->l_name && lm->l_name[0]) {
    if (!realpath(lm->l_name, out)) return 0;
  } else {
    ssize_t n = readlink("/proc/self/exe", out, PATH_MAX - 1);
    if (n <= 0) return 0;
    out[n] = '\0';
  }
  slash = strrchr(out, '/');
  if (!slash) return 0;
  *slash = '\0';
  return 1;
}

/* dlopen()s plugin |d|'s library, recorded as a file name (an older
 * bundle: a path, whose file name is searched first). The order
 * (runtime/README.md "Plugin libraries"): the caller's plugin_dir; each
 * folder of MOSS_PLUGIN_PATH; the bundle's own folder (opened from a file:
 * an application shipped with its model and plugin side by side); the
 * plugin folders of moss's build tree and install, relative to libmossrt
 * itself; the system's search (LD_LIBRARY_PATH, ld.so.cache). */
static mossrt_status open_library(mossrt_bundle *b, mossrt_device *d, mossrt_error *err) {
  const char *recorded = d->plugin_path, *plugin = d->backend + 7;
  const char *env = getenv("MOSS_PLUGIN_PATH");
  const char *slash = strrchr(recorded, '/');
  char self[PATH_MAX], sub[PATH_MAX];
  lookup L;
  void *h = NULL;
  memset(&L, 0, sizeof L);
  L.base = slash ? slash + 1 : recorded;
  if (b->plugin_dir) h = try_dir(&L, b->plugin_dir, strlen(b->plugin_dir), "");
  while (!h && env && *env) {
    size_t n = strcspn(env, ":");
    h = try_dir(&L, env, n, "");
    env += n;
    if (*env == ':') env++;
  }
  /* mossrt_open_memory names its bundles "<memory>": no folder. */
  if (!h && strcmp(b->name, "<memory>") != 0) {
    const char *s = strrchr(b->name, '/');
    h = s ? try_dir(&L, b->name, s == b->name ? 1 : (size_t)(s - b->name), "")
          : try_dir(&L, ".", 1, "");
  }
  if (!h && plugin[0] != '.' && !strchr(plugin, '/') && strlen(plugin) < 256 && self_dir(self)) {
    /* (NAME a folder name, never "..": a bundle cannot steer this elsewhere)
     * build/moss, build/runtime/libmossrt.so: build/plugins/NAME;
     * PREFIX/bin/moss, PREFIX/lib/libmossrt.so: PREFIX/lib/moss/plugins/NAME
     * (from PREFIX/lib both of the last two name it: looked in once). */
    char *up = strrchr(self, '/');
    size_t parent = up ? (size_t)(up - self) : 0;
    snprintf(sub, sizeof sub, "/plugins/%s", plugin);
    h = try_dir(&L, self, strlen(self), sub);
    if (!h) h = try_dir(&L, self, parent, sub);
    snprintf(sub, sizeof sub, "/lib/moss/plugins/%s", plugin);
    if (!h && strcmp(self + parent, "/lib") != 0) h = try_dir(&L, self, parent, sub);
    snprintf(sub, sizeof sub, "/moss/plugins/%s", plugin);
    if (!h) h = try_dir(&L, self, strlen(self), sub);
  }
  if (!h && L.base[0]) h = dlopen(L.base, RTLD_NOW | RTLD_LOCAL);
  if (!h && slash) h = dlopen(recorded, RTLD_NOW | RTLD_LOCAL);
  d->lib = h;
  if (h) return MOSSRT_OK;
  if (L.why[0]) return DEVFAIL(d, "%s", L.why); /* there, but did not load */
  /* The folders last: a long list is what mossrt_error's 512 bytes cut. */
  if (L.n >= 2 && L.n <= sizeof L.looked) L.looked[L.n - 2] = '\0'; /* the last ", " */
  return DEVFAIL(d, "not found (set MOSS_PLUGIN_PATH or mossrt_options.plugin_dir to its "
                    "folder); looked in the system's library path%s%s%s%s",
                 slash ? ", then " : "", slash ? recorded : "", L.looked[0] ? " and in: " : "",
                 L.looked);
}

static int plugin_serves(const mossrt_device *d) {
  return strncmp(d->backend, "plugin:", 7) == 0 && d->backend[7];
}

static mossrt_status plugin_check_step(mossrt_bundle *b, uint32_t i, mossrt_error *err) {
  const mossrt_step *s = &b->steps[i];
  const mossrt_device *d = &b->devices[s->device];
  if (!d->plugin_path[0])
    return mossrt_fail(err, b->name, MOSSRT_E_FORMAT,
                       "step %u: device %u ('%s', backend '%s') has no plugin path", i, s->device,
                       d->id, d->backend);
  if (s->blob >= b->nblobs || b->blobs[s->blob].device != s->device)
    return mossrt_fail(err, b->name, MOSSRT_E_FORMAT,
                       "step %u: blob index %u is not a blob of device %u ('%s')", i, s->blob,
                       s->device, d->id);
  return MOSSRT_OK;
}

static mossrt_status plugin_open(mossrt_bundle *b, mossrt_error *err) {
  uint32_t i;
  for (i = 0; i < b->ndevices; i++) {
    mossrt_device *d = &b->devices[i];
    moss_plugin_abi_version_fn version;
    moss_plugin_device_get_fn get;
    const moss_plugin_device *api;
    uint32_t v;
    if (d->exec != &mossrt_plugin_executor || !d->used) continue;
    if (open_library(b, d, err) != MOSSRT_OK) return MOSSRT_E_DEVICE;
    version = (moss_plugin_abi_version_fn)dlsym(d->lib, "moss_plugin_abi_version");
    get = (moss_plugin_device_get_fn)dlsym(d->lib, "moss_plugin_device_get");
    if (!version || !get)
      return DEVFAIL(d, "missing symbol %s",
                     !version ? "moss_plugin_abi_version" : "moss_plugin_device_get");
    v = version();
    if (v != MOSS_PLUGIN_ABI_VERSION)
      return DEVFAIL(d, "plugin ABI version %u, this runtime speaks %u", v,
                     MOSS_PLUGIN_ABI_VERSION);
    api = get();
    if (!api)
      return DEVFAIL(d, "moss_plugin_device_get() returned NULL (no runtime side)");
    if (api->abi_version != MOSS_PLUGIN_ABI_VERSION || api->struct_size < sizeof *api ||
        !api->open || !api->load || !api->run || !api->unload || !api->close)
      return DEVFAIL(d, "moss_plugin_device has a wrong version or size or a NULL function");
    d->api = api;
  }
  return MOSSRT_OK;
}

static void plugin_close(mossrt_bundle *b) {
  uint32_t i;
  for (i = 0; b->devices && i < b->ndevices; i++) {
    if (b->devices[i].lib) dlclose(b->devices[i].lib);
    b->devices[i].lib = NULL;
    b->devices[i].api = NULL;
  }
}

static mossrt_status plugin_session_open(mossrt_session *s, mossrt_error *err) {
  const mossrt_bundle *b = s->b;
  char msg[256];
  uint32_t i;
  s->devs = mossrt_mem_alloc(&b->alloc, (size_t)b->ndevices * sizeof *s->devs);
  s->progs = mossrt_mem_alloc(&b->alloc, (size_t)b->nblobs * sizeof *s->progs);
  s->loaded = mossrt_mem_alloc(&b->alloc, b->nblobs);
  if (!s->devs || !s->progs || !s->loaded)
    return mossrt_fail(err, b->name, MOSSRT_E_NOMEM, "cannot allocate a session (arena %llu bytes)",
                       (unsigned long long)b->arena_bytes);
  for (i = 0; i < b->ndevices; i++) {
    const mossrt_device *d = &b->devices[i];
    if (!d->api) continue;
    msg[0] = 0;
    if (d->api->open(&s->devs[i].handle, msg, sizeof msg) != 0) {
      msg[sizeof msg - 1] = 0;
      return DEVFAIL(d, "open() failed: %s", msg);
    }
    s->devs[i].opened = 1;
  }
  for (i = 0; i < b->nblobs; i++) {
    const mossrt_blob *bl = &b->blobs[i];
    const mossrt_device *d = &b->devices[bl->device];
    if (!d->api) continue;
    msg[0] = 0;
    if (d->api->load(s->devs[bl->device].handle, bl->data, bl->size, &s->progs[i], msg,
                     sizeof msg) != 0) {
      s->progs[i] = NULL;
      msg[sizeof msg - 1] = 0;
      return DEVFAIL(d, "load() of blob %u failed: %s", i, msg);
    }
    s->loaded[i] = 1;
  }
  return MOSSRT_OK;
}

static void plugin_session_close(mossrt_session *s) {
  const mossrt_bundle *b = s->b;
  uint32_t i;
  for (i = 0; s->progs && s->loaded && i < b->nblobs; i++) {
    uint32_t dev = b->blobs[i].device;
    if (s->loaded[i]) b->devices[dev].api->unload(s->devs[dev].handle, s->progs[i]);
  }
  for (i = 0; s->devs && i < b->ndevices; i++)
    if (s->devs[i].opened) b->devices[i].api->close(s->devs[i].handle);
  mossrt_mem_free(&b->alloc, s->devs, (size_t)b->ndevices * sizeof *s->devs);
  mossrt_mem_free(&b->alloc, s->progs, (size_t)b->nblobs * sizeof *s->progs);
  mossrt_mem_free(&b->alloc, s->loaded, b->nblobs);
  s->devs = NULL;
  s->progs = NULL;
  s->loaded = NULL;
}

static mossrt_status plugin_run(mossrt_session *s, uint32_t i, mossrt_error *err) {
  const mossrt_bundle *b = s->b;
  const mossrt_step *st = &b->steps[i];
  const mossrt_device *d = &b->devices[st->device];
  char msg[256];
  msg[0] = 0;
  if (d->api->run(s->devs[st->device].handle, s->progs[st->blob],
                  (const void *const *)(s->bufs + st->first), s->bufs + st->first + st->nin, msg,
                  sizeof msg) != 0) {
    msg[sizeof msg - 1] = 0;
    return DEVFAIL(d, "step %u: run() failed: %s", i, msg);
  }
  return MOSSRT_OK;
}

const mossrt_executor mossrt_plugin_executor = {
    .name = "plugin",
    .serves = plugin_serves,
    .blobs = 1,
    .check_step = plugin_check_step,
    .open = plugin_open,
    .close = plugin_close,
    .session_open = plugin_session_open,
    .session_close = plugin_session_close,
    .run = plugin_run,
};

mossrt_status mossrt_step_counters(mossrt_session *s, uint32_t i, mossrt_counters *out,
                                   uint32_t cap, uint32_t *out_n, mossrt_error *err) {
  const mossrt_bundle *b;
  const mossrt_step *st;
  const mossrt_device *d;
  const moss_plugin_counters *c = NULL;
  uint32_t n = 0, k;
  char msg[256];
  if (out_n) *out_n = 0;
  if (!s || !out_n || (cap && !out))
    return mossrt_fail(err, NULL, MOSSRT_E_ARG, "mossrt_step_counters: NULL argument");
  b = s->b;
  if (i >= b->nsteps)
    return mossrt_fail(err, b->name, MOSSRT_E_ARG, "step %u of %u", i, b->nsteps);
  st = &b->steps[i];
  d = &b->devices[st->device];
  if (st->kind != MOSS_BUNDLE_STEP_KIND_EXEC || d->exec != &mossrt_plugin_executor || !d->api ||
      !d->api->counters || !s->progs || !s->loaded || !s->loaded[st->blob])
    return MOSSRT_OK;
  msg[0] = 0;
  if (d->api->counters(s->devs[st->device].handle, s->progs[st->blob], &c, &n, msg, sizeof msg) !=
      0) {
    msg[sizeof msg - 1] = 0;
    return DEVFAIL(d, "step %u: counters() failed: %s", i, msg);
  }
  if (!c) n = 0;
  for (k = 0; k < n && k < cap; k++) {
    mossrt_counters *o = &out[k];
    o->layer = c[k].layer ? c[k].layer : "";
    o->op_type = c[k].op_type ? c[k].op_type : "";
    o->cycles = c[k].cycles;
    o->dma_cycles = c[k].dma_cycles;
    o->array_cycles = c[k].array_cycles;
    o->vector_cycles = c[k].vector_cycles;
    o->stall_cycles = c[k].stall_cycles;
    o->macs = c[k].macs;
    o->peak_macs_per_cycle = c[k].peak_macs_per_cycle;
    o->dram_read_bytes = c[k].dram_read_bytes;
    o->dram_write_bytes = c[k].dram_write_bytes;
    o->sram_read_bytes = c[k].sram_read_bytes;
    o->sram_write_bytes = c[k].sram_write_bytes;
    o->sram_peak_bytes = c[k].sram_peak_bytes;
    o->clock_mhz = c[k].clock_mhz;
    o->energy_pj = c[k].energy_pj;
  }
  *out_n = n;
  return MOSSRT_OK;
}
