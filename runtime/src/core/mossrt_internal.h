/* mossrt_internal.h - what the runtime's parts share: the checked, decoded
 * form of a bundle (core/bundle.c fills it), the session (core/session.c),
 * and the executor table (core/executor.c) through which the core reaches
 * the CPU executor (cpu/cpu.c) and the plugin executor (plugin/plugin.c).
 * Every pointer here points into memory the bundle owns; every index has
 * been checked against its table. */
#ifndef MOSSRT_INTERNAL_H
#define MOSSRT_INTERNAL_H

#include <stdarg.h>

#include "moss_bundle.h"
#include "moss_plugin.h"
#include "mossrt.h"

/* A CPU step's entry (moss_bundle.h: MOSSFIG4's calling convention). */
typedef int (*mossrt_cpu_fn)(const void *const *in, void *const *out, void *arena,
                             const moss_bundle_par *par);

/* From |dtype| on, a tensor is a moss_bundle_figure_tensor, and a step up
 * to |first| a moss_bundle_figure_step: cpu/cpu.c compares them with the
 * figures the CPU code states (moss_bundle.h), so keep these fields so. */
typedef struct mossrt_tensor {
  const char *name;
  int32_t dtype, rank;
  int64_t dims[MOSS_BUNDLE_MAX_RANK];
  uint64_t nbytes;
  uint32_t place, index;
  uint64_t offset;
} mossrt_tensor;

typedef struct mossrt_executor mossrt_executor;

typedef struct mossrt_device {
  const char *id, *kind, *backend, *plugin_path, *triple, *features;
  const mossrt_executor *exec;      /* the executor that runs it; NULL: none here */
  uint32_t code_format;             /* moss_bundle_code_format */
  const uint8_t *code;              /* its CODE section; NULL: none */
  uint64_t code_size;
  int used;                         /* an EXEC step runs on it */
  uint32_t form;                    /* 0: one code form; k + 1: form k of a backend with several
                                     * ("ptx+vulkan", gpu/forms.c), the one |exec| runs */
  void *lib;                        /* plugin: dlopen handle */
  const moss_plugin_device *api;    /* plugin: its runtime side */
  void *xstate;                     /* opencl, ptx, vulkan: the driver's functions
                                     * (opencl/opencl.c, cuda/cuda.c, vulkan/vulkan.c) */
} mossrt_device;

typedef struct mossrt_step {
  uint32_t kind, device, from, blob, nin, nout, first;
  const char *entry;                /* EXEC: the entry string, NULL when invalid (CPU) */
  mossrt_cpu_fn fn;                 /* CPU EXEC: resolved at open */
} mossrt_step;

typedef struct mossrt_blob {
  const uint8_t *data;              /* a device with several forms: its form's blob (gpu/forms.c) */
  uint64_t size;
  uint32_t device;
  /* A form's blob whose weights the code-forms blob keeps once (its
   * "weights" entry): they are here, not at the end of |data|. */
  const uint8_t *weights;           /* NULL: none kept apart */
  uint64_t nweights;
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
  const moss_bundle_bound_rec *bounds; /* the SHAPES section's records, checked
                                        * (shape/shape.c); NULL: none */
  uint32_t nbounds;
  const moss_bundle_group_rec *groups; /* the GROUPS section's records, checked
                                        * (shape/shape.c); NULL: none */
  uint32_t ngroups;
  const uint8_t *cpu_code;          /* the code of the device with ELF code; NULL: none */
  uint64_t cpu_code_size;
  uint32_t cpu_format;              /* MOSS_BUNDLE_CODE_ELF_SHARED or _ELF_OBJECT */
  void *cpu_lib;                    /* dlopen handle of the CPU code (ELF_SHARED) */
  void *cpu_image;                  /* the loaded object (ELF_OBJECT, cpu/elf.c) */
  int cpu_fd;                       /* memfd kept open while loaded; -1 none */
  char *cpu_tmp;                    /* fallback temporary file, removed at close */
  char *plugin_dir;                 /* mossrt_options.plugin_dir, copied */
  const uint8_t *public_key;        /* mossrt_options': borrowed during the open call only */
  mossrt_verify_fn verify;
};

struct mossrt_session {
  mossrt_bundle *b;
  uint8_t *arena;
  void *arena_mem;                  /* what the session allocated, or NULL */
  size_t arena_mem_size;
  /* The plugin executor's: made by its session_open(), freed by its session_close(). */
  struct mossrt_dev_state {
    void *handle;                   /* the plugin's open() handle (may be NULL) */
    int opened;
  } *devs;                          /* per device */
  void **progs;                     /* per blob: the plugin's load() handle */
  uint8_t *loaded;                  /* per blob: load() succeeded */
  void **bufs;                      /* per ref: the buffer of refs[k] (EXEC steps) */
  /* The CPU executor's thread pool (pool/pool.c), made by its session_open():
   * |par| is what the CPU code gets, NULL to run its parts in order. */
  const moss_bundle_par *par;
  struct mossrt_pool *pool;
  /* The OpenCL executor's (opencl/opencl.c): context, queue, programs. */
  void *ocl;
  /* The CUDA executor's (cuda/cuda.c): context, stream, modules. */
  void *cuda;
  /* The Vulkan executor's (vulkan/vulkan.c): instance, device, pipelines. */
  void *vk;
  /* Streaming state (stream/stream.c): the kept inputs, and room for the
   * pointer lists a run hands the steps in their place. */
  struct mossrt_state {
    uint32_t in, out;
    size_t nbytes;
    void *cur;  /* what the next run reads as input |in| */
    void *next; /* output |out| when the caller gives no buffer for it */
  } *states;
  uint32_t nstates;
  const void **run_in;  /* per graph input */
  void **run_out;       /* per graph output */
};

/* core/session.c: the two halves of mossrt_run(), which
 * mossrt_run_profile() (profile/profile.c) also calls, a clock read around
 * each step: the checks of the arguments, and step |i| (nothing to do for
 * a TRANSFER on shared memory). Neither allocates. Both callers put a
 * session's kept states in place first (stream/stream.c). */
mossrt_status mossrt_run_check(const mossrt_session *s, const void *const *inputs,
                               void *const *outputs, mossrt_error *err);
/* stream/stream.c: where session |s| (NULL: nothing) keeps states,
 * |*inputs| and |*outputs| become the session's lists with the states in
 * place; after a run that succeeded, each state takes its output; and the
 * states freed when the session is. None allocates; each does nothing for
 * a session without states. */
void mossrt_stream_args(mossrt_session *s, const void *const **inputs, void *const **outputs);
void mossrt_stream_done(mossrt_session *s, void *const *outputs);
void mossrt_stream_free(mossrt_session *s);
mossrt_status mossrt_step_run(mossrt_session *s, uint32_t i, const void *const *inputs,
                              void *const *outputs, mossrt_error *err);
/* shape/shape.c: at open, once core/bundle.c has checked the rest (the
 * section table, at most one SHAPES section, META), the SHAPES section,
 * if any, checked whole and its records kept in b->bounds. Does not
 * allocate. */
mossrt_status mossrt_shape_check(mossrt_bundle *b, mossrt_error *err);

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

/* An executor runs the EXEC steps of the devices it serves. Each is one
 * const value in its own folder (cpu/, plugin/; the GPU executors next),
 * listed once in mossrt_executors[]; the core knows none by name. Hooks
 * marked "may be NULL" are skipped when NULL. Every hook sees only the
 * devices whose |exec| is this executor. */
struct mossrt_executor {
  /* "cpu", "plugin": the executor's name (not in any message). */
  const char *name;
  /* 1 when it runs device |d|, from d->backend and d->code_format (the
   * first executor in the table that says so gets the device). */
  int (*serves)(const mossrt_device *d);
  /* 1: BLOB sections may belong to its devices (plugin blobs). */
  int blobs;
  /* At open, before the devices are read: the header's triple and features
   * against this machine. May be NULL. */
  mossrt_status (*check_target)(const mossrt_bundle *b, mossrt_error *err);
  /* At open, for a device with several code forms (gpu/forms.c), unless
   * MOSSRT_OPEN_VERIFY_ONLY: MOSSRT_OK when this machine can run device
   * |d| (its driver loads and has a device MOSS_DEVICE names), else why
   * not, in |err| as open() or session_open() would say it. Releases all it
   * made; a driver it initialised may stay loaded, as open() leaves it.
   * May be NULL: always available. */
  mossrt_status (*available)(const mossrt_bundle *b, const mossrt_device *d, mossrt_error *err);
  /* At open, as the plan is read: EXEC step |i| (decoded into b->steps[i])
   * has what this executor needs (an entry, a plugin path, a blob). */
  mossrt_status (*check_step)(mossrt_bundle *b, uint32_t i, mossrt_error *err);
  /* After the checks, unless MOSSRT_OPEN_VERIFY_ONLY: loads what the steps
   * need (code, entry points, plugin libraries). */
  mossrt_status (*open)(mossrt_bundle *b, mossrt_error *err);
  /* Undoes open(), also a partial one or one never made. */
  void (*close)(mossrt_bundle *b);
  /* In mossrt_session_create(): opens the devices for |s| and loads their
   * blobs. May be NULL. */
  mossrt_status (*session_open)(mossrt_session *s, mossrt_error *err);
  /* Undoes session_open(), also a partial one or one never made. May be NULL. */
  void (*session_close)(mossrt_session *s);
  /* Runs EXEC step |i| with s->bufs already filled; allocates nothing. */
  mossrt_status (*run)(mossrt_session *s, uint32_t i, mossrt_error *err);
};

/* core/executor.c: every executor, in the order they are asked, NULL-ended;
 * opened, checked and closed in this order. */
extern const mossrt_executor *const mossrt_executors[];
/* The executor that serves |d|, or NULL when none does. */
const mossrt_executor *mossrt_executor_find(const mossrt_device *d);

/* gpu/forms.c: devices whose backend names several code forms joined by
 * '+' ("ptx+vulkan"), their blobs GPU code-forms blobs (moss_bundle.h), as
 * core/bundle.c reads them. Each passes other devices through unchanged.
 * mossrt_forms_device: device |i|'s executor (mossrt_executor_find, or
 * for several forms the first form this runtime has an executor for).
 * mossrt_forms_blob: blob |i| of such a device is a well-formed code-forms
 * blob holding exactly its forms, and becomes a view of its form's blob.
 * mossrt_forms_check_step: EXEC step |i| checked by its device's executor;
 * on such a device, every form's blob by that form's executor.
 * mossrt_forms_pick: after the plan, each such device that runs a step
 * runs the first form whose executor is available() here, or the one
 * MOSS_GPU_FORM names (MOSSRT_OPEN_VERIFY_ONLY: no driver is asked). */
mossrt_status mossrt_forms_device(mossrt_bundle *b, uint32_t i, mossrt_error *err);
mossrt_status mossrt_forms_blob(mossrt_bundle *b, uint32_t i, mossrt_error *err);
mossrt_status mossrt_forms_check_step(mossrt_bundle *b, uint32_t i, mossrt_error *err);
mossrt_status mossrt_forms_pick(mossrt_bundle *b, mossrt_error *err);

/* pool/pool.c: the CPU executor's session_open() and session_close(): the
 * session's threads (mossrt_session_set_threads), as many as the process
 * may use cores at first. */
mossrt_status mossrt_pool_session_open(mossrt_session *s, mossrt_error *err);
void mossrt_pool_session_close(mossrt_session *s);

/* gpu/blob.c: the GPU segment blobs (moss_bundle.h, "OpenCL segment blob",
 * whose layout the PTX and Vulkan ones share), as the GPU executors read them. */
typedef struct mossrt_gpu_format {
  const char *magic;    /* MOSS_OPENCL_BLOB_MAGIC, MOSS_PTX_BLOB_MAGIC, MOSS_VULKAN_BLOB_MAGIC */
  uint32_t version;
  const char *prefix;   /* the messages' first word: "opencl", "cuda", "vulkan" */
  const char *kind;     /* "an OpenCL segment blob" */
} mossrt_gpu_format;
typedef struct mossrt_gpu_blob {
  moss_opencl_blob_header h;
  const uint8_t *bytes;  /* u64[ntensors] */
  const uint8_t *items;  /* u64[nkernels] */
  const char *source;    /* source_len bytes, no NUL */
  const uint8_t *weights;
} mossrt_gpu_blob;
/* A little-endian u64. */
uint64_t mossrt_rd64(const uint8_t *p);
/* Reads and checks blob |i| of format |f| into |out|: every count and size
 * against the blob's bytes, each kernel's 1 .. 2^31 work-items. */
mossrt_status mossrt_gpu_blob_read(const mossrt_bundle *b, uint32_t i, const mossrt_gpu_format *f,
                                   mossrt_gpu_blob *out, mossrt_error *err);
/* An executor's check_step: step |i|'s blob is one of its device's, of
 * format |f|, with the step's tensors and their sizes. */
mossrt_status mossrt_gpu_check_step(mossrt_bundle *b, uint32_t i, const mossrt_gpu_format *f, mossrt_error *err);

/* The executors (cpu/cpu.c, plugin/plugin.c, opencl/opencl.c, cuda/cuda.c, vulkan/vulkan.c). */
extern const mossrt_executor mossrt_cpu_executor;
extern const mossrt_executor mossrt_plugin_executor;
extern const mossrt_executor mossrt_opencl_executor;
extern const mossrt_executor mossrt_cuda_executor;
extern const mossrt_executor mossrt_vulkan_executor;

#endif
