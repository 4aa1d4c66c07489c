/* cuda.c - NVIDIA GPUs in libmossrt: the CUDA executor
 * (mossrt_cuda_executor, an entry of core/executor.c's table), serving
 * devices whose backend is "ptx" and owning their BLOB sections
 * (moss_bundle.h, "PTX segment blob"; backends/ptx writes them).
 *
 * At open: the CUDA driver, dlopen() of libcuda.so.1 (or the file
 * MOSS_CUDA_LIBRARY names), its functions looked up by name; nothing links
 * against CUDA and no CUDA header is needed. Each blob is checked field by
 * field against its size and its step (gpu/blob.c). At session creation:
 * cuInit, the device (the first whose name contains MOSS_DEVICE when that
 * is set, else device 0), its primary context, one stream, and per blob its
 * module (the driver JIT-compiles the PTX for the device it has), its
 * functions, its buffers (the step's tensors, the segment's arena, the
 * weights uploaded once) and the kernels' parameters. A run copies the
 * step's inputs in, launches the kernels in order on the stream, copies its
 * outputs back and waits once: no allocation, no host round trip between
 * kernels. The context is pushed for each call into the driver and popped
 * after, so the calling thread's own CUDA context is left as it was. Every
 * failure names the CUDA call and its error. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/mossrt_internal.h"

/* The CUDA driver API as far as this file uses it (cuda.h's types and
 * values, declared here so libmossrt builds without the toolkit). */
typedef int CUresult;
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef unsigned long long CUdeviceptr;
typedef int CUjit_option;
#define CUDA_SUCCESS 0
#define CU_JIT_ERROR_LOG_BUFFER 5
#define CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES 6
#define CU_STREAM_NON_BLOCKING 1u
#define THREADS_PER_BLOCK 256u

/* The entry points, each by the name the driver exports (cuda.h maps
 * cuMemAlloc to cuMemAlloc_v2 and so on). cuDevicePrimaryCtxRelease_v2 is
 * apart: a driver older than CUDA 11 has only cuDevicePrimaryCtxRelease. */
#define CU_FUNCTIONS(X)                                                                    \
  X(cuInit, (unsigned))                                                                    \
  X(cuDeviceGetCount, (int *))                                                             \
  X(cuDeviceGet, (CUdevice *, int))                                                        \
  X(cuDeviceGetName, (char *, int, CUdevice))                                              \
  X(cuDevicePrimaryCtxRetain, (CUcontext *, CUdevice))                                     \
  X(cuCtxPushCurrent_v2, (CUcontext))                                                      \
  X(cuCtxPopCurrent_v2, (CUcontext *))                                                     \
  X(cuModuleLoadDataEx, (CUmodule *, const void *, unsigned, CUjit_option *, void **))     \
  X(cuModuleGetFunction, (CUfunction *, CUmodule, const char *))                           \
  X(cuModuleUnload, (CUmodule))                                                            \
  X(cuMemAlloc_v2, (CUdeviceptr *, size_t))                                                \
  X(cuMemFree_v2, (CUdeviceptr))                                                           \
  X(cuMemcpyHtoDAsync_v2, (CUdeviceptr, const void *, size_t, CUstream))                   \
  X(cuMemcpyDtoHAsync_v2, (void *, CUdeviceptr, size_t, CUstream))                         \
  X(cuStreamCreate, (CUstream *, unsigned))                                                \
  X(cuStreamDestroy_v2, (CUstream))                                                        \
  X(cuStreamSynchronize, (CUstream))                                                       \
  X(cuLaunchKernel, (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,         \
                     unsigned, unsigned, CUstream, void **, void **))                      \
  X(cuGetErrorName, (CUresult, const char **))

typedef struct cu_api {
  void *lib;
#define CU_FIELD(name, args) CUresult(*name) args;
  CU_FUNCTIONS(CU_FIELD)
#undef CU_FIELD
  CUresult (*release)(CUdevice); /* cuDevicePrimaryCtxRelease_v2, else the first one */
} cu_api;

/* A session's objects for one blob. */
typedef struct cu_prog {
  CUmodule mod;
  CUfunction *fns;               /* nkernels */
  unsigned *blocks;              /* nkernels: blocks of threads[k] threads */
  unsigned *threads;             /* nkernels: the kernel's work-group size, else THREADS_PER_BLOCK */
  CUdeviceptr *ptrs;             /* 2 + ntensors: arena, weights, tensors (0: not made) */
  void **argv;                   /* 2 + ntensors: &ptrs[k], as cuLaunchKernel takes them */
  size_t *tbytes;                /* ntensors (+ 1, never 0 bytes) */
  uint32_t nkernels, ntensors;
} cu_prog;

typedef struct cu_session {
  CUdevice dev;
  CUcontext ctx;                 /* the device's primary context; NULL: not retained */
  CUstream stream;
  cu_prog *progs;                /* per blob (+ 1); other executors' entries stay zero */
  uint32_t nprogs;
} cu_session;

static const mossrt_gpu_format format = {MOSS_PTX_BLOB_MAGIC, MOSS_PTX_BLOB_VERSION, "cuda",
                                         "a PTX segment blob"};

#define FAIL(st, fmt, ...) mossrt_fail(err, b->name, st, "cuda: " fmt, ##__VA_ARGS__)

/* "CUDA_ERROR_NO_DEVICE (100)" for |rc|, into |buf|: the driver's name for
 * it, or where the driver gives none (the toolkit's stub library gives
 * none) the name cuda.h gives the likely ones. */
static const char *cu_error(const cu_api *api, CUresult rc, char *buf, size_t cap) {
  static const struct {
    int code;
    const char *name;
  } known[] = {{1, "CUDA_ERROR_INVALID_VALUE"},      {2, "CUDA_ERROR_OUT_OF_MEMORY"},
               {3, "CUDA_ERROR_NOT_INITIALIZED"},    {34, "CUDA_ERROR_STUB_LIBRARY"},
               {100, "CUDA_ERROR_NO_DEVICE"},        {101, "CUDA_ERROR_INVALID_DEVICE"},
               {209, "CUDA_ERROR_NO_BINARY_FOR_GPU"}, {218, "CUDA_ERROR_INVALID_PTX"},
               {222, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION"}, {500, "CUDA_ERROR_NOT_FOUND"},
               {700, "CUDA_ERROR_ILLEGAL_ADDRESS"},  {999, "CUDA_ERROR_UNKNOWN"}};
  const char *name = NULL;
  size_t k;
  if (api->cuGetErrorName(rc, &name) != CUDA_SUCCESS || !name)
    for (k = 0, name = "CUDA error"; k < sizeof known / sizeof known[0]; k++)
      if (known[k].code == rc) name = known[k].name;
  snprintf(buf, cap, "%s (%d)", name, rc);
  return buf;
}

/* "cuda: <call><what>: <error>", with |ebuf| a char[96] of the caller's. */
#define CU_FAIL(call, rc, fmt, ...)                                                        \
  FAIL(MOSSRT_E_DEVICE, "%s" fmt ": %s", call, ##__VA_ARGS__,                              \
       cu_error(api, rc, ebuf, sizeof ebuf))

static int cuda_serves(const mossrt_device *d) { return strcmp(d->backend, "ptx") == 0; }

/* The step's tensors are the blob's, of the same sizes. */
static mossrt_status cuda_check_step(mossrt_bundle *b, uint32_t i, mossrt_error *err) {
  return mossrt_gpu_check_step(b, i, &format, err);
}

static void cuda_close(mossrt_bundle *b) {
  uint32_t i;
  for (i = 0; b->devices && i < b->ndevices; i++) {
    mossrt_device *d = &b->devices[i];
    cu_api *api = d->xstate;
    if (d->exec != &mossrt_cuda_executor || !api) continue;
    /* The driver stays loaded: it keeps process-wide state (and threads)
     * and is not made to be unloaded. */
    mossrt_mem_free(&b->alloc, api, sizeof *api);
    d->xstate = NULL;
  }
}

/* The driver (MOSS_CUDA_LIBRARY, else libcuda.so.1) and its functions,
 * into |api|; |api->lib| is set once it is loaded, also on a failure. */
static mossrt_status load_driver(const mossrt_bundle *b, const mossrt_device *d, cu_api *api,
                                 mossrt_error *err) {
  const char *path = getenv("MOSS_CUDA_LIBRARY");
  if (!path || !*path) path = "libcuda.so.1";
  if (!(api->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
    const char *why = dlerror();
    return FAIL(MOSSRT_E_DEVICE, "device '%s': cannot load the CUDA driver %s (%s)", d->id, path,
                why ? why : "not found");
  }
#define CU_LOAD(name, args)                                                                \
  if (!(*(void **)&api->name = dlsym(api->lib, #name)))                                    \
    return FAIL(MOSSRT_E_DEVICE, "device '%s': %s has no %s", d->id, path, #name);
  CU_FUNCTIONS(CU_LOAD)
#undef CU_LOAD
  if (!(*(void **)&api->release = dlsym(api->lib, "cuDevicePrimaryCtxRelease_v2")) &&
      !(*(void **)&api->release = dlsym(api->lib, "cuDevicePrimaryCtxRelease")))
    return FAIL(MOSSRT_E_DEVICE, "device '%s': %s has no cuDevicePrimaryCtxRelease_v2", d->id,
                path);
  return MOSSRT_OK;
}

static mossrt_status cuda_open(mossrt_bundle *b, mossrt_error *err) {
  uint32_t i;
  mossrt_status st;
  for (i = 0; i < b->ndevices; i++) {
    mossrt_device *d = &b->devices[i];
    cu_api *api;
    if (d->exec != &mossrt_cuda_executor || !d->used) continue;
    if (!(api = mossrt_mem_alloc(&b->alloc, sizeof *api)))
      return FAIL(MOSSRT_E_NOMEM, "cannot allocate the CUDA functions");
    memset(api, 0, sizeof *api);
    d->xstate = api;
    if ((st = load_driver(b, d, api, err)) != MOSSRT_OK) return st;
  }
  return MOSSRT_OK;
}

static const cu_api *session_api(const mossrt_bundle *b) {
  uint32_t i;
  for (i = 0; i < b->ndevices; i++)
    if (b->devices[i].exec == &mossrt_cuda_executor && b->devices[i].xstate)
      return b->devices[i].xstate;
  return NULL;
}

/* The device MOSS_DEVICE names (a part of its name), else device 0. */
static mossrt_status pick_device(const mossrt_bundle *b, const cu_api *api, CUdevice *out,
                                 mossrt_error *err) {
  const char *want = getenv("MOSS_DEVICE");
  char ebuf[96];
  int n = 0, k;
  CUresult rc = api->cuDeviceGetCount(&n);
  if (rc != CUDA_SUCCESS) return CU_FAIL("cuDeviceGetCount", rc, "");
  if (n < 1) return FAIL(MOSSRT_E_DEVICE, "no CUDA device (cuDeviceGetCount: %d)", n);
  for (k = 0; k < n; k++) {
    char name[256];
    CUdevice dev;
    if ((rc = api->cuDeviceGet(&dev, k)) != CUDA_SUCCESS)
      return CU_FAIL("cuDeviceGet", rc, " %d", k);
    if (want && *want) {
      name[0] = 0;
      if (api->cuDeviceGetName(name, (int)sizeof name, dev) != CUDA_SUCCESS) continue;
      name[sizeof name - 1] = 0;
      if (!strstr(name, want)) continue;
    }
    *out = dev;
    return MOSSRT_OK;
  }
  return FAIL(MOSSRT_E_DEVICE, "no CUDA device whose name contains MOSS_DEVICE='%s' (%d devices)",
              want, n);
}

/* For a device with several code forms (gpu/forms.c): the driver loads,
 * cuInit succeeds and there is the device MOSS_DEVICE names. A driver
 * whose cuInit failed is closed again; one that initialised stays loaded,
 * as cuda_close leaves it (cuda_open loads it next). */
static mossrt_status cuda_available(const mossrt_bundle *b, const mossrt_device *d,
                                    mossrt_error *err) {
  cu_api apis, *api = &apis;
  CUdevice dev;
  char ebuf[96];
  CUresult rc;
  mossrt_status st;
  memset(api, 0, sizeof *api);
  st = load_driver(b, d, api, err);
  if (st == MOSSRT_OK && (rc = api->cuInit(0)) != CUDA_SUCCESS) st = CU_FAIL("cuInit", rc, "");
  if (st != MOSSRT_OK) {
    if (api->lib) dlclose(api->lib);
    return st;
  }
  return pick_device(b, api, &dev, err);
}

/* |n| bytes from |a|, zeroed (so that a partial session can be undone). */
static void *zalloc(const mossrt_allocator *a, size_t n) {
  void *p = mossrt_mem_alloc(a, n);
  if (p) memset(p, 0, n);
  return p;
}

/* Undoes load_prog(), also a partial one; the context is current. */
static void release_prog(const cu_api *api, const mossrt_allocator *a, cu_prog *p) {
  size_t np = 2 + (size_t)p->ntensors;
  uint32_t k;
  for (k = 0; p->ptrs && k < np; k++)
    if (p->ptrs[k]) api->cuMemFree_v2(p->ptrs[k]);
  if (p->mod) api->cuModuleUnload(p->mod);
  if (p->fns) mossrt_mem_free(a, p->fns, p->nkernels * sizeof *p->fns);
  if (p->blocks) mossrt_mem_free(a, p->blocks, p->nkernels * sizeof *p->blocks);
  if (p->threads) mossrt_mem_free(a, p->threads, p->nkernels * sizeof *p->threads);
  if (p->ptrs) mossrt_mem_free(a, p->ptrs, np * sizeof *p->ptrs);
  if (p->argv) mossrt_mem_free(a, p->argv, np * sizeof *p->argv);
  if (p->tbytes) mossrt_mem_free(a, p->tbytes, (p->ntensors + 1) * sizeof *p->tbytes);
  memset(p, 0, sizeof *p);
}

/* Blob |i|'s module, functions, buffers and parameters; the weights are
 * copied on the session's stream (cuda_session_open waits for them). */
static mossrt_status load_prog(mossrt_session *s, cu_session *cs, const cu_api *api, uint32_t i,
                               mossrt_error *err) {
  const mossrt_bundle *b = s->b;
  cu_prog *p = &cs->progs[i];
  mossrt_gpu_blob ob;
  char *ptx, log[2048], ebuf[96];
  CUjit_option opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void *vals[2];
  CUresult rc;
  uint32_t k;
  size_t np;
  if (mossrt_gpu_blob_read(b, i, &format, &ob, err) != MOSSRT_OK) return MOSSRT_E_FORMAT;
  p->nkernels = ob.h.nkernels;
  p->ntensors = ob.h.ntensors;
  np = 2 + (size_t)p->ntensors;
  p->fns = zalloc(&b->alloc, p->nkernels * sizeof *p->fns);
  p->blocks = zalloc(&b->alloc, p->nkernels * sizeof *p->blocks);
  p->threads = zalloc(&b->alloc, p->nkernels * sizeof *p->threads);
  p->ptrs = zalloc(&b->alloc, np * sizeof *p->ptrs);
  p->argv = zalloc(&b->alloc, np * sizeof *p->argv);
  p->tbytes = zalloc(&b->alloc, (p->ntensors + 1) * sizeof *p->tbytes);
  if (!p->fns || !p->blocks || !p->threads || !p->ptrs || !p->argv || !p->tbytes)
    return FAIL(MOSSRT_E_NOMEM, "cannot allocate blob %u's objects", i);
  /* The module: the driver wants the PTX NUL-terminated, and gives its
   * JIT compiler's complaints in |log|. */
  if (!(ptx = mossrt_mem_alloc(&b->alloc, (size_t)ob.h.source_len + 1)))
    return FAIL(MOSSRT_E_NOMEM, "cannot allocate blob %u's PTX", i);
  memcpy(ptx, ob.source, (size_t)ob.h.source_len);
  ptx[ob.h.source_len] = 0;
  log[0] = 0;
  vals[0] = log;
  vals[1] = (void *)(uintptr_t)sizeof log;
  rc = api->cuModuleLoadDataEx(&p->mod, ptx, 2, opts, vals);
  mossrt_mem_free(&b->alloc, ptx, (size_t)ob.h.source_len + 1);
  if (rc != CUDA_SUCCESS) {
    char *c;
    p->mod = NULL;
    log[sizeof log - 1] = 0;
    for (c = log; *c; c++) /* one line */
      if (*c == '\n' || *c == '\r' || *c == '\t') *c = ' ';
    /* The error before the log, which the message may cut. */
    return FAIL(MOSSRT_E_DEVICE, "cuModuleLoadDataEx of blob %u: %s: %s", i,
                cu_error(api, rc, ebuf, sizeof ebuf), log[0] ? log : "no log");
  }
  for (k = 0; k < p->nkernels; k++) {
    char name[32];
    uint64_t l = mossrt_rd64(ob.items + 8 * k), items = MOSS_GPU_LAUNCH_ITEMS(l); /* 1 .. 2^31: checked */
    unsigned group = (unsigned)MOSS_GPU_LAUNCH_GROUP(l);
    snprintf(name, sizeof name, "moss_k%u", k);
    if ((rc = api->cuModuleGetFunction(&p->fns[k], p->mod, name)) != CUDA_SUCCESS)
      return CU_FAIL("cuModuleGetFunction", rc, " %s of blob %u", name, i);
    p->threads[k] = group ? group : THREADS_PER_BLOCK; /* a work-group size divides the items */
    p->blocks[k] = (unsigned)((items + p->threads[k] - 1) / p->threads[k]);
  }
  if ((rc = api->cuMemAlloc_v2(&p->ptrs[0], ob.h.arena_bytes ? (size_t)ob.h.arena_bytes : 1)) !=
      CUDA_SUCCESS)
    return CU_FAIL("cuMemAlloc", rc, " (blob %u's arena, %llu bytes)", i,
                   (unsigned long long)ob.h.arena_bytes);
  if ((rc = api->cuMemAlloc_v2(&p->ptrs[1], ob.h.weights_bytes ? (size_t)ob.h.weights_bytes : 1)) !=
      CUDA_SUCCESS)
    return CU_FAIL("cuMemAlloc", rc, " (blob %u's weights, %llu bytes)", i,
                   (unsigned long long)ob.h.weights_bytes);
  /* The weights live in the bundle as long as the session: the copy may
   * finish after this returns. */
  if (ob.h.weights_bytes && (rc = api->cuMemcpyHtoDAsync_v2(p->ptrs[1], ob.weights,
                                                            (size_t)ob.h.weights_bytes,
                                                            cs->stream)) != CUDA_SUCCESS)
    return CU_FAIL("cuMemcpyHtoDAsync", rc, " (blob %u's weights)", i);
  for (k = 0; k < p->ntensors; k++) {
    p->tbytes[k] = (size_t)mossrt_rd64(ob.bytes + 8 * k);
    if ((rc = api->cuMemAlloc_v2(&p->ptrs[2 + k], p->tbytes[k] ? p->tbytes[k] : 1)) !=
        CUDA_SUCCESS)
      return CU_FAIL("cuMemAlloc", rc, " (blob %u's tensor %u, %zu bytes)", i, k, p->tbytes[k]);
  }
  for (k = 0; k < np; k++) p->argv[k] = &p->ptrs[k];
  return MOSSRT_OK;
}

static void cuda_session_close(mossrt_session *s) {
  const mossrt_bundle *b = s->b;
  cu_session *cs = s->cuda;
  const cu_api *api = session_api(b); /* not NULL where there is |cs| */
  CUcontext prev;
  uint32_t i;
  int pushed;
  if (!cs) return;
  /* Buffers, modules and the stream belong to the context: made current
   * while they go, then given back. (Without a context there are none.) */
  pushed = cs->ctx && api->cuCtxPushCurrent_v2(cs->ctx) == CUDA_SUCCESS;
  for (i = 0; cs->progs && i < cs->nprogs; i++) release_prog(api, &b->alloc, &cs->progs[i]);
  if (cs->stream) api->cuStreamDestroy_v2(cs->stream);
  if (pushed) api->cuCtxPopCurrent_v2(&prev);
  if (cs->ctx) api->release(cs->dev);
  if (cs->progs) mossrt_mem_free(&b->alloc, cs->progs, (cs->nprogs + 1) * sizeof *cs->progs);
  mossrt_mem_free(&b->alloc, cs, sizeof *cs);
  s->cuda = NULL;
}

/* The part of cuda_session_open() done in the session's context. */
static mossrt_status open_in_context(mossrt_session *s, cu_session *cs, const cu_api *api,
                                     mossrt_error *err) {
  const mossrt_bundle *b = s->b;
  char ebuf[96];
  CUresult rc;
  uint32_t i;
  mossrt_status st;
  if ((rc = api->cuStreamCreate(&cs->stream, CU_STREAM_NON_BLOCKING)) != CUDA_SUCCESS) {
    cs->stream = NULL;
    return CU_FAIL("cuStreamCreate", rc, "");
  }
  for (i = 0; i < b->nblobs; i++)
    if (b->devices[b->blobs[i].device].exec == &mossrt_cuda_executor &&
        (st = load_prog(s, cs, api, i, err)) != MOSSRT_OK)
      return st;
  /* The weights are on the device, and a bad launch configuration or a
   * JIT-compiled module that cannot run shows here rather than in a run. */
  if ((rc = api->cuStreamSynchronize(cs->stream)) != CUDA_SUCCESS)
    return CU_FAIL("cuStreamSynchronize", rc, " (weights)");
  return MOSSRT_OK;
}

static mossrt_status cuda_session_open(mossrt_session *s, mossrt_error *err) {
  const mossrt_bundle *b = s->b;
  const cu_api *api = session_api(b);
  cu_session *cs;
  CUcontext prev;
  char ebuf[96];
  CUresult rc;
  mossrt_status st;
  if (!api) return MOSSRT_OK; /* no CUDA device runs a step */
  if (!(cs = zalloc(&b->alloc, sizeof *cs)))
    return FAIL(MOSSRT_E_NOMEM, "cannot allocate a session");
  s->cuda = cs;
  cs->nprogs = b->nblobs;
  if (!(cs->progs = zalloc(&b->alloc, (cs->nprogs + 1) * sizeof *cs->progs)))
    return FAIL(MOSSRT_E_NOMEM, "cannot allocate a session");
  if ((rc = api->cuInit(0)) != CUDA_SUCCESS) return CU_FAIL("cuInit", rc, "");
  if ((st = pick_device(b, api, &cs->dev, err)) != MOSSRT_OK) return st;
  if ((rc = api->cuDevicePrimaryCtxRetain(&cs->ctx, cs->dev)) != CUDA_SUCCESS) {
    cs->ctx = NULL;
    return CU_FAIL("cuDevicePrimaryCtxRetain", rc, "");
  }
  if ((rc = api->cuCtxPushCurrent_v2(cs->ctx)) != CUDA_SUCCESS)
    return CU_FAIL("cuCtxPushCurrent", rc, "");
  st = open_in_context(s, cs, api, err);
  api->cuCtxPopCurrent_v2(&prev);
  return st;
}

/* The part of cuda_run() done in the session's context. */
static mossrt_status run_in_context(mossrt_session *s, uint32_t i, const cu_api *api,
                                    mossrt_error *err) {
  const mossrt_bundle *b = s->b;
  const mossrt_step *st = &b->steps[i];
  const cu_session *cs = s->cuda;
  const cu_prog *p = &cs->progs[st->blob];
  char ebuf[96];
  CUresult rc;
  uint32_t k;
  for (k = 0; k < st->nin; k++)
    if (p->tbytes[k] && (rc = api->cuMemcpyHtoDAsync_v2(p->ptrs[2 + k], s->bufs[st->first + k],
                                                         p->tbytes[k], cs->stream)) != CUDA_SUCCESS)
      return CU_FAIL("cuMemcpyHtoDAsync", rc, " (step %u, input %u)", i, k);
  for (k = 0; k < p->nkernels; k++)
    if ((rc = api->cuLaunchKernel(p->fns[k], p->blocks[k], 1, 1, p->threads[k], 1, 1, 0,
                                  cs->stream, p->argv, NULL)) != CUDA_SUCCESS)
      return CU_FAIL("cuLaunchKernel", rc, " moss_k%u (step %u)", k, i);
  for (k = st->nin; k < st->nin + st->nout; k++)
    if (p->tbytes[k] && (rc = api->cuMemcpyDtoHAsync_v2(s->bufs[st->first + k], p->ptrs[2 + k],
                                                         p->tbytes[k], cs->stream)) != CUDA_SUCCESS)
      return CU_FAIL("cuMemcpyDtoHAsync", rc, " (step %u, output %u)", i, k - st->nin);
  /* A kernel's fault shows here, named by its step. */
  if ((rc = api->cuStreamSynchronize(cs->stream)) != CUDA_SUCCESS)
    return CU_FAIL("cuStreamSynchronize", rc, " (step %u)", i);
  return MOSSRT_OK;
}

static mossrt_status cuda_run(mossrt_session *s, uint32_t i, mossrt_error *err) {
  const mossrt_bundle *b = s->b;
  const cu_api *api = session_api(b);
  const cu_session *cs = s->cuda;
  CUcontext prev;
  char ebuf[96];
  CUresult rc;
  mossrt_status st;
  /* The session may have been made on another thread, and this thread may
   * have a context of its own. */
  if ((rc = api->cuCtxPushCurrent_v2(cs->ctx)) != CUDA_SUCCESS)
    return CU_FAIL("cuCtxPushCurrent", rc, " (step %u)", i);
  st = run_in_context(s, i, api, err);
  api->cuCtxPopCurrent_v2(&prev);
  return st;
}

const mossrt_executor mossrt_cuda_executor = {
    .name = "cuda",
    .serves = cuda_serves,
    .blobs = 1,
    .available = cuda_available,
    .check_step = cuda_check_step,
    .open = cuda_open,
    .close = cuda_close,
    .session_open = cuda_session_open,
    .session_close = cuda_session_close,
    .run = cuda_run,
};
