/* mossrt_internal.h - what the runtime's parts share: the checked, decoded
 * form of a bundle (core/bundle.c fills it), the session (core/session.c),
 * and the entry points of the CPU executor (cpu/cpu.c) and the plugin
 * executor (plugin/plugin.c). Every pointer here points into memory the
 * bundle owns; every index has been checked against its table. */
#ifndef MOSSRT_INTERNAL_H
#define MOSSRT_INTERNAL_H

#include <stdarg.h>

#include "moss_bundle.h"
#include "moss_plugin.h"
#include "mossrt.h"

typedef int (*mossrt_cpu_fn)(const void *const *in, void *const *out, void *arena);

typedef struct mossrt_tensor {
  const char *name;
  int32_t dtype, rank;
  int64_t dims[MOSS_BUNDLE_MAX_RANK];
  uint64_t nbytes;
  uint32_t place, index;
  uint64_t offset;
} mossrt_tensor;

enum { MOSSRT_BACKEND_OTHER = 0, MOSSRT_BACKEND_CPU = 1, MOSSRT_BACKEND_PLUGIN = 2 };

typedef struct mossrt_device {
  const char *id, *kind, *backend, *plugin_path, *triple, *features;
  int backend_kind;                 /* MOSSRT_BACKEND_* */
  uint32_t code_format;             /* moss_bundle_code_format */
  const uint8_t *code;              /* its CODE section; NULL: none */
  uint64_t code_size;
  int used;                         /* an EXEC step runs on it */
  void *lib;                        /* plugin: dlopen handle */
  const moss_plugin_device *api;    /* plugin: its runtime side */
} mossrt_device;

typedef struct mossrt_step {
  uint32_t kind, device, from, blob, nin, nout, first;
  const char *entry;                /* CPU EXEC */
  mossrt_cpu_fn fn;                 /* CPU EXEC: resolved at open */
} mossrt_step;

typedef struct mossrt_blob {
  const uint8_t *data;
  uint64_t size;
  uint32_t device;
} mossrt_blob;

struct mossrt_bundle {
  mossrt_allocator alloc;
  uint32_t flags;                   /* MOSSRT_OPEN_* */
  char *name;                       /* the path, or "<memory>": first in every message */
  uint8_t *data;                    /* the bundle's bytes (our copy) */
  size_t size;
  char target[64], triple[64], features[128];
  uint64_t arena_bytes;
  uint32_t ntensors, ninputs, noutputs, ndevices, nsteps, nblobs, nrefs;
  mossrt_tensor *tensors;
  uint32_t *inputs, *outputs, *refs; /* tensor indices */
  mossrt_device *devices;
  mossrt_step *steps;
  mossrt_blob *blobs;
  const char *report;               /* NULL: none */
  size_t report_len;
  const uint8_t *cpu_code;          /* the CPU device's code; NULL: none */
  uint64_t cpu_code_size;
  uint32_t cpu_format;              /* MOSS_BUNDLE_CODE_ELF_SHARED or _ELF_OBJECT */
  void *cpu_lib;                    /* dlopen handle of the CPU code (ELF_SHARED) */
  void *cpu_image;                  /* the loaded object (ELF_OBJECT, cpu/elf.c) */
  int cpu_fd;                       /* memfd kept open while loaded; -1 none */
  char *cpu_tmp;                    /* fallback temporary file, removed at close */
  char *plugin_dir;                 /* mossrt_options.plugin_dir, copied */
};

struct mossrt_session {
  mossrt_bundle *b;
  uint8_t *arena;
  void *arena_mem;                  /* what the session allocated, or NULL */
  size_t arena_mem_size;
  struct mossrt_dev_state {
    void *handle;                   /* the plugin's open() handle (may be NULL) */
    int opened;
  } *devs;                          /* per device */
  void **progs;                     /* per blob: the plugin's load() handle */
  uint8_t *loaded;                  /* per blob: load() succeeded */
  void **bufs;                      /* per ref: the buffer of refs[k] (plugin steps) */
};

/* core/bundle.c: allocation through the bundle's allocator; never given 0. */
void *mossrt_mem_alloc(const mossrt_allocator *a, size_t n);
void mossrt_mem_free(const mossrt_allocator *a, void *p, size_t n);

/* Formats "<who>: <category>: <reason>" into |err| (may be NULL); returns |st|. */
mossrt_status mossrt_fail(mossrt_error *err, const char *who, mossrt_status st,
                          const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* cpu/cpu.c */
/* The header's triple and features against this runtime's CPU. */
mossrt_status mossrt_cpu_check_target(const mossrt_bundle *b, mossrt_error *err);
/* Loads the CPU code and resolves every CPU EXEC step's entry. */
mossrt_status mossrt_cpu_load(mossrt_bundle *b, mossrt_error *err);
void mossrt_cpu_unload(mossrt_bundle *b);

/* plugin/plugin.c */
/* Opens the library of every used plugin device and checks its ABI. */
mossrt_status mossrt_plugin_load(mossrt_bundle *b, mossrt_error *err);
void mossrt_plugin_unload(mossrt_bundle *b);
/* open() each used plugin device and load() each blob into |s|. */
mossrt_status mossrt_plugin_session_open(mossrt_session *s, mossrt_error *err);
void mossrt_plugin_session_close(mossrt_session *s);
/* Runs plugin EXEC step |i| with s->bufs already filled. */
mossrt_status mossrt_plugin_run_step(mossrt_session *s, uint32_t i, mossrt_error *err);

#endif
