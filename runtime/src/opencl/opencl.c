/* opencl.c - OpenCL devices in libmossrt: the OpenCL executor
 * (mossrt_opencl_executor, an entry of core/executor.c's table), serving
 * devices whose backend is "opencl" and owning their BLOB sections
 * (moss_bundle.h, "OpenCL segment blob"; backends/opencl writes them).
 *
 * At open: the OpenCL library through the ICD loader, dlopen() of
 * libOpenCL.so.1 (or the file MOSS_OPENCL_LIBRARY names), its functions
 * looked up by name; nothing links against OpenCL. Each blob is checked
 * field by field against its size and its step. At session creation: the
 * device (the first whose name contains MOSS_DEVICE when that is set, else
 * the first GPU, else the first device of the first platform that has
 * one), a context and an in-order queue, and per blob its program, its
 * kernels, its buffers (the step's tensors, the segment's arena, the
 * weights uploaded once) and every kernel argument set; built programs are
 * cached on disk (see "The program cache" below). A blob carries its
 * program twice (moss_bundle.h): a device that takes SPIR-V (OpenCL 2.1's
 * CL_DEVICE_IL_VERSION, or cl_khr_il_program, naming SPIR-V) gets the
 * SPIR-V module (clCreateProgramWithIL, or clCreateProgramWithILKHR), the
 * others the OpenCL C source; MOSS_OPENCL_CODE=source or spirv forces one
 * form (spirv on a device that takes none, or a blob without it: an
 * error), auto (or unset) chooses so. A run
 * writes the step's inputs, enqueues the kernels in order, reads its
 * outputs and waits: no allocation, no host round trip between kernels.
 * Every failure names the OpenCL call and its error code. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/mossrt_internal.h"

/* The OpenCL 1.2 API as far as this file uses it (the types and values of
 * the Khronos headers, declared here so libmossrt builds without them). */
typedef int32_t cl_int;
typedef uint32_t cl_uint;
typedef uint64_t cl_ulong;
typedef cl_ulong cl_bitfield;
typedef struct _cl_platform_id *cl_platform_id;
typedef struct _cl_device_id *cl_device_id;
typedef struct _cl_context *cl_context;
typedef struct _cl_command_queue *cl_command_queue;
typedef struct _cl_mem *cl_mem;
typedef struct _cl_program *cl_program;
typedef struct _cl_kernel *cl_kernel;
typedef struct _cl_event *cl_event;
#define CL_SUCCESS 0
#define CL_DEVICE_TYPE_GPU ((cl_bitfield)1 << 2)
#define CL_DEVICE_TYPE_ALL ((cl_bitfield)0xFFFFFFFF)
#define CL_DEVICE_NAME 0x102B
#define CL_MEM_READ_WRITE ((cl_bitfield)1 << 0)
#define CL_MEM_READ_ONLY ((cl_bitfield)1 << 2)
#define CL_MEM_COPY_HOST_PTR ((cl_bitfield)1 << 5)
#define CL_PROGRAM_BUILD_LOG 0x1183
#define CL_PROGRAM_BINARY_SIZES 0x1165
#define CL_PROGRAM_BINARIES 0x1166
#define CL_DRIVER_VERSION 0x102D
#define CL_DEVICE_VERSION 0x102F
#define CL_DEVICE_SINGLE_FP_CONFIG 0x101B
#define CL_DEVICE_EXTENSIONS 0x1030
#define CL_DEVICE_PLATFORM 0x1031
#define CL_DEVICE_IL_VERSION 0x105B /* = CL_DEVICE_IL_VERSION_KHR */
#define CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT ((cl_bitfield)1 << 7)
#define CL_TRUE 1
#define CL_FALSE 0

#define OCL_FUNCTIONS(X)                                                                              \
  X(clGetPlatformIDs, cl_int, (cl_uint, cl_platform_id *, cl_uint *))                                \
  X(clGetDeviceIDs, cl_int, (cl_platform_id, cl_bitfield, cl_uint, cl_device_id *, cl_uint *))       \
  X(clGetDeviceInfo, cl_int, (cl_device_id, cl_uint, size_t, void *, size_t *))                      \
  X(clCreateContext, cl_context,                                                                     \
    (const intptr_t *, cl_uint, const cl_device_id *, void *, void *, cl_int *))                     \
  X(clCreateCommandQueue, cl_command_queue, (cl_context, cl_device_id, cl_bitfield, cl_int *))       \
  X(clCreateProgramWithSource, cl_program, (cl_context, cl_uint, const char **, const size_t *,     \
                                            cl_int *))                                               \
  X(clCreateProgramWithBinary, cl_program, (cl_context, cl_uint, const cl_device_id *, const size_t *,  \
                                            const unsigned char **, cl_int *, cl_int *))             \
  X(clGetProgramInfo, cl_int, (cl_program, cl_uint, size_t, void *, size_t *))                       \
  X(clBuildProgram, cl_int, (cl_program, cl_uint, const cl_device_id *, const char *, void *, void *)) \
  X(clGetProgramBuildInfo, cl_int, (cl_program, cl_device_id, cl_uint, size_t, void *, size_t *))   \
  X(clCreateKernel, cl_kernel, (cl_program, const char *, cl_int *))                                 \
  X(clSetKernelArg, cl_int, (cl_kernel, cl_uint, size_t, const void *))                             \
  X(clCreateBuffer, cl_mem, (cl_context, cl_bitfield, size_t, void *, cl_int *))                     \
  X(clEnqueueWriteBuffer, cl_int, (cl_command_queue, cl_mem, cl_uint, size_t, size_t, const void *, \
                                   cl_uint, const cl_event *, cl_event *))                           \
  X(clEnqueueReadBuffer, cl_int, (cl_command_queue, cl_mem, cl_uint, size_t, size_t, void *, cl_uint, \
                                  const cl_event *, cl_event *))                                     \
  X(clEnqueueNDRangeKernel, cl_int, (cl_command_queue, cl_kernel, cl_uint, const size_t *,           \
                                     const size_t *, const size_t *, cl_uint, const cl_event *,      \
                                     cl_event *))                                                    \
  X(clFinish, cl_int, (cl_command_queue))                                                            \
  X(clReleaseKernel, cl_int, (cl_kernel))                                                            \
  X(clReleaseProgram, cl_int, (cl_program))                                                          \
  X(clReleaseMemObject, cl_int, (cl_mem))                                                            \
  X(clReleaseCommandQueue, cl_int, (cl_command_queue))                                               \
  X(clReleaseContext, cl_int, (cl_context))

/* What an OpenCL 2.1 ICD loader has besides (NULL where it lacks them). */
typedef cl_program (*ocl_il_fn)(cl_context, const void *, size_t, cl_int *);
typedef void *(*ocl_ext_fn)(cl_platform_id, const char *);

typedef struct ocl_api {
  void *lib;
#define OCL_FIELD(name, ret, args) ret(*name) args;
  OCL_FUNCTIONS(OCL_FIELD)
#undef OCL_FIELD
  ocl_il_fn clCreateProgramWithIL;                     /* OpenCL 2.1 */
  ocl_ext_fn clGetExtensionFunctionAddressForPlatform; /* OpenCL 1.2 */
} ocl_api;

/* A session's objects for one blob. */
typedef struct ocl_prog {
  cl_program prog;
  cl_kernel *kernels;            /* nkernels */
  size_t *items;                 /* nkernels: work-items */
  size_t *group;                 /* nkernels: the work-group size a kernel needs (0: any) */
  cl_mem arena, weights;
  cl_mem *tensors;               /* ntensors */
  size_t *tbytes;                /* ntensors */
  uint32_t nkernels, ntensors;
} ocl_prog;

typedef struct ocl_session {
  cl_context ctx;
  cl_command_queue q;
  cl_device_id dev;
  ocl_prog *progs;               /* per blob; unused entries zero */
  uint32_t nprogs;
  const char *options;           /* clBuildProgram's: OpenCL C 1.2, and float division and square
                                  * root correctly rounded where the device can (OpenCL allows
                                  * 2.5 and 3 ulp by default, and NVIDIA's driver takes that:
                                  * DynamicQuantizeLinear's x / scale then rounds to other
                                  * integers than the CPU's) */
  const char *il_options;        /* the same for a program from SPIR-V (no language to name) */
  ocl_il_fn create_il;           /* how the device takes SPIR-V; NULL: it does not */
  int fp16;                      /* the device reports cl_khr_fp16 */
  int code;                      /* MOSS_OPENCL_CODE: CODE_AUTO, CODE_SOURCE or CODE_SPIRV */
} ocl_session;

enum { CODE_AUTO, CODE_SOURCE, CODE_SPIRV };

#define FAIL(st, fmt, ...) mossrt_fail(err, b->name, st, "opencl: " fmt, ##__VA_ARGS__)

static const mossrt_gpu_format format = {MOSS_OPENCL_BLOB_MAGIC, MOSS_OPENCL_BLOB_VERSION, "opencl",
                                         "an OpenCL segment blob"};

static int opencl_serves(const mossrt_device *d) { return strcmp(d->backend, "opencl") == 0; }

/* The two forms in the code of a blob (moss_bundle.h: u64 text_len, the
 * OpenCL C text, zeros to a multiple of 4 bytes, the SPIR-V words): 0 when
 * they do not fit its |source_len| bytes or the SPIR-V is no module. */
static int split_code(const mossrt_gpu_blob *ob, const char **text, size_t *tlen, const unsigned char **il,
                      size_t *ilen) {
  const unsigned char *c = (const unsigned char *)ob->source;
  uint64_t n = ob->h.source_len, tl, at, z;
  *text = NULL;
  *il = NULL;
  *tlen = *ilen = 0;
  if (n < 8) return 0;
  tl = mossrt_rd64(c);
  if (tl == 0 || tl > n - 8) return 0;
  at = 8 + tl + (4 - (8 + tl) % 4) % 4;
  if (at > n || (n - at) % 4) return 0;
  for (z = 8 + tl; z < at; z++)
    if (c[z]) return 0; /* the padding is zeros */
  *text = (const char *)c + 8;
  *tlen = (size_t)tl;
  *ilen = (size_t)(n - at);
  *il = *ilen ? c + at : NULL;
  /* A module: its magic number (little-endian) and a header of 5 words. */
  return !*ilen || (*ilen >= 20 && c[at] == 0x03 && c[at + 1] == 0x02 && c[at + 2] == 0x23 && c[at + 3] == 0x07);
}

/* The line a program that computes in float16 starts with (after the
 * compiler's note, if any): backends/opencl/opencl.c, half_prelude. */
static const char fp16_pragma[] = "#pragma OPENCL EXTENSION cl_khr_fp16 : enable\n";

/* Whether the |len| bytes at |text| hold |line| at the start of a line. */
static int has_line(const char *text, size_t len, const char *line) {
  size_t n = strlen(line), i;
  for (i = 0; i + n <= len; i++)
    if ((i == 0 || text[i - 1] == '\n') && !memcmp(text + i, line, n)) return 1;
  return 0;
}

/* Whether |dev|'s CL_DEVICE_EXTENSIONS list |name|. */
static int has_extension(const mossrt_bundle *b, const ocl_api *api, cl_device_id dev,
                         const char *name) {
  size_t n = 0, len = strlen(name);
  int has = 0;
  char *ext, *p;
  if (api->clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, 0, NULL, &n) != CL_SUCCESS || n == 0)
    return 0;
  if (!(ext = mossrt_mem_alloc(&b->alloc, n + 1))) return 0;
  if (api->clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, n, ext, NULL) == CL_SUCCESS) {
    ext[n] = 0;
    for (p = ext; (p = strstr(p, name)) != NULL; p += len) /* a whole word of the list */
      if ((p == ext || p[-1] == ' ') && (p[len] == 0 || p[len] == ' ')) has = 1;
  }
  mossrt_mem_free(&b->alloc, ext, n + 1);
  return has;
}

/* The step's tensors are the blob's, of the same sizes; its code holds
 * the source and, if any, a SPIR-V module. */
static mossrt_status opencl_check_step(mossrt_bundle *b, uint32_t i, mossrt_error *err) {
  mossrt_gpu_blob ob;
  const char *text;
  const unsigned char *il;
  size_t tlen, ilen;
  if (mossrt_gpu_check_step(b, i, &format, err) != MOSSRT_OK) return MOSSRT_E_FORMAT;
  if (mossrt_gpu_blob_read(b, b->steps[i].blob, &format, &ob, err) != MOSSRT_OK) return MOSSRT_E_FORMAT;
  if (!split_code(&ob, &text, &tlen, &il, &ilen))
    return FAIL(MOSSRT_E_FORMAT, "blob %u: its code (%llu bytes) is not a source of u64 length, zeros to 4 bytes "
                "and a SPIR-V module or nothing", b->steps[i].blob, (unsigned long long)ob.h.source_len);
  return MOSSRT_OK;
}

static void opencl_close(mossrt_bundle *b) {
  uint32_t i;
  for (i = 0; b->devices && i < b->ndevices; i++) {
    mossrt_device *d = &b->devices[i];
    ocl_api *api = d->xstate;
    if (d->exec != &mossrt_opencl_executor || !api) continue;
    /* The ICD loader stays loaded: it and the drivers it loads keep state
     * (and exit handlers) for the life of the process, and are not made to
     * be unloaded. */
    mossrt_mem_free(&b->alloc, api, sizeof *api);
    d->xstate = NULL;
  }
}

static mossrt_status opencl_open(mossrt_bundle *b, mossrt_error *err) {
  uint32_t i;
  for (i = 0; i < b->ndevices; i++) {
    mossrt_device *d = &b->devices[i];
    const char *path = getenv("MOSS_OPENCL_LIBRARY");
    ocl_api *api;
    if (d->exec != &mossrt_opencl_executor || !d->used) continue;
    if (!(api = mossrt_mem_alloc(&b->alloc, sizeof *api)))
      return FAIL(MOSSRT_E_NOMEM, "cannot allocate the OpenCL functions");
    memset(api, 0, sizeof *api);
    d->xstate = api;
    if (!path || !*path) path = "libOpenCL.so.1";
    if (!(api->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
      const char *why = dlerror();
      return FAIL(MOSSRT_E_DEVICE, "device '%s': cannot load the OpenCL ICD loader %s (%s)", d->id, path,
                  why ? why : "not found");
    }
#define OCL_LOAD(name, ret, args)                                                                     \
  if (!(*(void **)&api->name = dlsym(api->lib, #name)))                                               \
    return FAIL(MOSSRT_E_DEVICE, "device '%s': %s has no %s", d->id, path, #name);
    OCL_FUNCTIONS(OCL_LOAD)
#undef OCL_LOAD
    *(void **)&api->clCreateProgramWithIL = dlsym(api->lib, "clCreateProgramWithIL");
    *(void **)&api->clGetExtensionFunctionAddressForPlatform =
        dlsym(api->lib, "clGetExtensionFunctionAddressForPlatform");
  }
  return MOSSRT_OK;
}

/* The device MOSS_DEVICE names (a part of its name), else the first GPU,
 * else the first device there is. */
static mossrt_status pick_device(const mossrt_bundle *b, const ocl_api *api, cl_device_id *out,
                                 mossrt_error *err) {
  cl_platform_id plats[16];
  cl_device_id devs[64];
  cl_uint np = 0, nd, p, k;
  const char *want = getenv("MOSS_DEVICE");
  cl_int rc = api->clGetPlatformIDs(16, plats, &np);
  int pass;
  if (rc != CL_SUCCESS || np == 0)
    return FAIL(MOSSRT_E_DEVICE, "no OpenCL platform (clGetPlatformIDs: %d, %u platforms)", (int)rc, np);
  if (np > 16) np = 16;
  for (pass = 0; pass < 2; pass++)
    for (p = 0; p < np; p++) {
      nd = 0;
      if (api->clGetDeviceIDs(plats[p], pass == 0 && !want ? CL_DEVICE_TYPE_GPU : CL_DEVICE_TYPE_ALL, 64, devs,
                              &nd) != CL_SUCCESS)
        continue;
      if (nd > 64) nd = 64;
      for (k = 0; k < nd; k++) {
        char name[256];
        if (want && *want) {
          name[0] = 0;
          if (api->clGetDeviceInfo(devs[k], CL_DEVICE_NAME, sizeof name, name, NULL) != CL_SUCCESS) continue;
          name[sizeof name - 1] = 0;
          if (!strstr(name, want)) continue;
        }
        *out = devs[k];
        return MOSSRT_OK;
      }
    }
  if (want && *want) return FAIL(MOSSRT_E_DEVICE, "no OpenCL device whose name contains MOSS_DEVICE='%s'", want);
  return FAIL(MOSSRT_E_DEVICE, "no OpenCL device on %u platforms", np);
}

static void release_prog(const ocl_api *api, const mossrt_allocator *a, ocl_prog *p) {
  uint32_t k;
  for (k = 0; p->kernels && k < p->nkernels; k++)
    if (p->kernels[k]) api->clReleaseKernel(p->kernels[k]);
  for (k = 0; p->tensors && k < p->ntensors; k++)
    if (p->tensors[k]) api->clReleaseMemObject(p->tensors[k]);
  if (p->arena) api->clReleaseMemObject(p->arena);
  if (p->weights) api->clReleaseMemObject(p->weights);
  if (p->prog) api->clReleaseProgram(p->prog);
  if (p->kernels) mossrt_mem_free(a, p->kernels, p->nkernels * sizeof *p->kernels);
  if (p->items) mossrt_mem_free(a, p->items, p->nkernels * sizeof *p->items);
  if (p->group) mossrt_mem_free(a, p->group, p->nkernels * sizeof *p->group);
  if (p->tensors) mossrt_mem_free(a, p->tensors, (p->ntensors + 1) * sizeof *p->tensors);
  if (p->tbytes) mossrt_mem_free(a, p->tbytes, (p->ntensors + 1) * sizeof *p->tbytes);
  memset(p, 0, sizeof *p);
}

/* ---- The program cache ---------------------------------------------------
 * A built program is kept as the driver's binary in $MOSS_CACHE_DIR (else
 * $XDG_CACHE_HOME/moss, else $HOME/.cache/moss; none of them set, or
 * "off": no cache), in opencl-<form>-<16 hex digits>.bin, the form the one
 * it was built from ("source" or "spirv"), the digits a 64-bit FNV-1a hash
 * of the key: the form, the device's name, its driver's version, its
 * OpenCL version, the build options, and the length and FNV-1a hash of the
 * code (the OpenCL C source or the SPIR-V module: the kernels' hash). The
 * file holds the key in full, which must match, then the
 * binary's length and FNV-1a hash, then the binary: a file damaged since
 * it was written is never given to the driver (PoCL crashes on a damaged
 * binary). A file that does not match, or a binary the driver refuses, is
 * ignored
 * and the program built from source again and stored anew (written to a
 * temporary file, then renamed into place). */
#define CACHE_MAGIC "MOSSCLB2"

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  size_t i;
  for (i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

/* mkdir -p |dir| (modified in place and restored). */
static void mkdirs(char *dir) {
  char *p;
  for (p = dir + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        *p = '/';
        return;
      }
      *p = '/';
    }
  mkdir(dir, 0777);
}

/* The cache file's path and key for the code |src| of |form| built with
 * |options|, or 0 when there is no cache. */
static int cache_key(const ocl_api *api, cl_device_id dev, const char *form, const char *options, const void *src,
                     size_t len, char *path, size_t pcap, char *key, size_t kcap) {
  const char *dir = getenv("MOSS_CACHE_DIR"), *base = NULL, *sub = "";
  char name[256], drv[128], ver[128];
  int n;
  if (dir && !strcmp(dir, "off")) return 0;
  if (!dir || !*dir) {
    if ((base = getenv("XDG_CACHE_HOME")) && *base) sub = "/moss";
    else if ((base = getenv("HOME")) && *base) sub = "/.cache/moss";
    else return 0;
  }
  name[0] = drv[0] = ver[0] = 0;
  if (api->clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof name, name, NULL) != CL_SUCCESS ||
      api->clGetDeviceInfo(dev, CL_DRIVER_VERSION, sizeof drv, drv, NULL) != CL_SUCCESS ||
      api->clGetDeviceInfo(dev, CL_DEVICE_VERSION, sizeof ver, ver, NULL) != CL_SUCCESS)
    return 0;
  name[sizeof name - 1] = drv[sizeof drv - 1] = ver[sizeof ver - 1] = 0;
  n = snprintf(key, kcap, "%s\n%s\n%s\n%s\n%s\n%zu\n%016llx", form, name, drv, ver, options, len,
               (unsigned long long)fnv1a(0xcbf29ce484222325ULL, src, len));
  if (n < 0 || (size_t)n >= kcap) return 0;
  if (dir && *dir) n = snprintf(path, pcap, "%s/opencl-%s-%016llx.bin", dir, form,
                                (unsigned long long)fnv1a(0xcbf29ce484222325ULL, key, strlen(key)));
  else n = snprintf(path, pcap, "%s%s/opencl-%s-%016llx.bin", base, sub, form,
                    (unsigned long long)fnv1a(0xcbf29ce484222325ULL, key, strlen(key)));
  return n > 0 && (size_t)n < pcap;
}

/* The program from the cache file at |path| if it holds |key| and the
 * driver builds its binary with |options|; NULL otherwise. */
static cl_program cache_load(const mossrt_bundle *b, const ocl_api *api, const ocl_session *os, const char *path,
                             const char *key, const char *options) {
  FILE *f = fopen(path, "rb");
  char magic[8];
  uint32_t klen = 0;
  uint64_t blen = 0, sum = 0;
  char *k = NULL;
  unsigned char *bin = NULL;
  cl_program prog = NULL;
  cl_int rc = CL_SUCCESS, st = CL_SUCCESS;
  size_t bl;
  if (!f) return NULL;
  if (fread(magic, 1, 8, f) != 8 || memcmp(magic, CACHE_MAGIC, 8) || fread(&klen, 4, 1, f) != 1 ||
      klen != strlen(key) || !(k = mossrt_mem_alloc(&b->alloc, klen + 1)) || fread(k, 1, klen, f) != klen ||
      memcmp(k, key, klen) || fread(&blen, 8, 1, f) != 1 || fread(&sum, 8, 1, f) != 1 || blen == 0 ||
      blen > ((uint64_t)1 << 31) || !(bin = mossrt_mem_alloc(&b->alloc, (size_t)blen)) ||
      fread(bin, 1, (size_t)blen, f) != blen || fgetc(f) != EOF ||
      fnv1a(0xcbf29ce484222325ULL, bin, (size_t)blen) != sum)
    goto done;
  bl = (size_t)blen;
  prog = api->clCreateProgramWithBinary(os->ctx, 1, &os->dev, &bl, (const unsigned char **)&bin, &st, &rc);
  if (prog && (rc != CL_SUCCESS || st != CL_SUCCESS ||
               api->clBuildProgram(prog, 1, &os->dev, options, NULL, NULL) != CL_SUCCESS)) {
    api->clReleaseProgram(prog);
    prog = NULL;
  }
done:
  fclose(f);
  if (k) mossrt_mem_free(&b->alloc, k, klen + 1);
  if (bin) mossrt_mem_free(&b->alloc, bin, (size_t)blen);
  return prog;
}

/* Stores |prog|'s binary under |key| at |path| (the folder made if
 * missing); a failure only leaves the cache without it. */
static void cache_store(const mossrt_bundle *b, const ocl_api *api, cl_program prog, const char *path,
                        const char *key) {
  size_t blen = 0;
  unsigned char *bin;
  char tmp[4200], dir[4096];
  char *slash;
  FILE *f;
  uint32_t klen = (uint32_t)strlen(key);
  uint64_t b64;
  if (api->clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof blen, &blen, NULL) != CL_SUCCESS || !blen)
    return;
  if (!(bin = mossrt_mem_alloc(&b->alloc, blen))) return;
  if (api->clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) == CL_SUCCESS &&
      snprintf(dir, sizeof dir, "%s", path) < (int)sizeof dir && (slash = strrchr(dir, '/')) != NULL) {
    *slash = 0;
    mkdirs(dir);
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    if ((f = fopen(tmp, "wb")) != NULL) {
      uint64_t sum = fnv1a(0xcbf29ce484222325ULL, bin, blen);
      int ok;
      b64 = blen;
      ok = fwrite(CACHE_MAGIC, 1, 8, f) == 8 && fwrite(&klen, 4, 1, f) == 1 && fwrite(key, 1, klen, f) == klen &&
           fwrite(&b64, 8, 1, f) == 1 && fwrite(&sum, 8, 1, f) == 1 && fwrite(bin, 1, blen, f) == blen;
      ok = fclose(f) == 0 && ok;
      if (!ok || rename(tmp, path) != 0) remove(tmp);
    }
  }
  mossrt_mem_free(&b->alloc, bin, blen);
}

/* Builds blob |i|'s program, kernels and buffers for the session. */
static mossrt_status load_prog(mossrt_session *s, ocl_session *os, const ocl_api *api, uint32_t i,
                               mossrt_error *err) {
  const mossrt_bundle *b = s->b;
  ocl_prog *p = &os->progs[i];
  mossrt_gpu_blob ob;
  const char *src, *options;
  const unsigned char *il;
  size_t len, ilen;
  cl_int rc = CL_SUCCESS;
  uint32_t k, t;
  int cached, spirv;
  char path[4096], key[800];
  if (mossrt_gpu_blob_read(b, i, &format, &ob, err) != MOSSRT_OK) return MOSSRT_E_FORMAT;
  if (!split_code(&ob, &src, &len, &il, &ilen)) return FAIL(MOSSRT_E_FORMAT, "blob %u: its code is malformed", i);
  p->nkernels = ob.h.nkernels;
  p->ntensors = ob.h.ntensors;
  p->kernels = mossrt_mem_alloc(&b->alloc, p->nkernels * sizeof *p->kernels);
  p->items = mossrt_mem_alloc(&b->alloc, p->nkernels * sizeof *p->items);
  p->group = mossrt_mem_alloc(&b->alloc, p->nkernels * sizeof *p->group);
  p->tensors = mossrt_mem_alloc(&b->alloc, (p->ntensors + 1) * sizeof *p->tensors);
  p->tbytes = mossrt_mem_alloc(&b->alloc, (p->ntensors + 1) * sizeof *p->tbytes);
  /* Zeroed before any return: release_prog() releases what is not NULL. */
  if (p->kernels) memset(p->kernels, 0, p->nkernels * sizeof *p->kernels);
  if (p->tensors) memset(p->tensors, 0, (p->ntensors + 1) * sizeof *p->tensors);
  if (!p->kernels || !p->items || !p->group || !p->tensors || !p->tbytes)
    return FAIL(MOSSRT_E_NOMEM, "cannot allocate blob %u's objects", i);
  if (has_line(src, len, fp16_pragma) && !os->fp16) {
    char name[256];
    name[0] = 0;
    api->clGetDeviceInfo(os->dev, CL_DEVICE_NAME, sizeof name, name, NULL);
    name[sizeof name - 1] = 0;
    return FAIL(MOSSRT_E_DEVICE,
                "blob %u computes in float16 (its target lists cl_khr_fp16), and device '%s' does "
                "not report cl_khr_fp16: compile for a target without it, or pick a device with "
                "it (MOSS_DEVICE)", i, name);
  }
  /* The form: SPIR-V where the device takes it (and the blob has it), or
   * as MOSS_OPENCL_CODE says; else the source. */
  spirv = os->code == CODE_SPIRV || (os->code == CODE_AUTO && os->create_il && ilen);
  if (spirv && !ilen)
    return FAIL(MOSSRT_E_DEVICE, "MOSS_OPENCL_CODE=spirv: blob %u carries no SPIR-V (the compiler could not build "
                "it: the first line of its OpenCL C says why)", i);
  options = spirv ? os->il_options : os->options;
  cached = spirv ? cache_key(api, os->dev, "spirv", options, il, ilen, path, sizeof path, key, sizeof key)
                 : cache_key(api, os->dev, "source", options, src, len, path, sizeof path, key, sizeof key);
  if (cached && (p->prog = cache_load(b, api, os, path, key, options)) != NULL) goto built;
  if (spirv) {
    p->prog = os->create_il(os->ctx, il, ilen, &rc);
    if (!p->prog || rc != CL_SUCCESS) return FAIL(MOSSRT_E_DEVICE, "clCreateProgramWithIL of blob %u: %d", i, (int)rc);
  } else {
    p->prog = api->clCreateProgramWithSource(os->ctx, 1, &src, &len, &rc);
    if (!p->prog || rc != CL_SUCCESS) return FAIL(MOSSRT_E_DEVICE, "clCreateProgramWithSource: %d", (int)rc);
  }
  rc = api->clBuildProgram(p->prog, 1, &os->dev, options, NULL, NULL);
  if (rc != CL_SUCCESS) {
    /* The log's start (a driver writes nothing into a buffer the whole log does not fit) */
    size_t n = 0;
    char *log = NULL;
    mossrt_status st;
    if (api->clGetProgramBuildInfo(p->prog, os->dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) != CL_SUCCESS)
      n = 0;
    if (n > 0 && (log = mossrt_mem_alloc(&b->alloc, n + 1)) != NULL) {
      if (api->clGetProgramBuildInfo(p->prog, os->dev, CL_PROGRAM_BUILD_LOG, n, log, NULL) != CL_SUCCESS)
        log[0] = 0;
      log[n] = 0;
    }
    st = FAIL(MOSSRT_E_DEVICE, "clBuildProgram of blob %u (%s): %d: %.900s", i,
              spirv ? "SPIR-V" : "source", (int)rc, log ? log : "");
    if (log) mossrt_mem_free(&b->alloc, log, n + 1);
    return st;
  }
  if (cached) cache_store(b, api, p->prog, path, key);
built:
  p->arena = api->clCreateBuffer(os->ctx, CL_MEM_READ_WRITE, ob.h.arena_bytes ? (size_t)ob.h.arena_bytes : 1,
                                 NULL, &rc);
  if (!p->arena || rc != CL_SUCCESS) return FAIL(MOSSRT_E_DEVICE, "clCreateBuffer (arena): %d", (int)rc);
  if (ob.h.weights_bytes)
    p->weights = api->clCreateBuffer(os->ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, (size_t)ob.h.weights_bytes,
                                     (void *)(uintptr_t)ob.weights, &rc);
  else
    p->weights = api->clCreateBuffer(os->ctx, CL_MEM_READ_ONLY, 1, NULL, &rc);
  if (!p->weights || rc != CL_SUCCESS) return FAIL(MOSSRT_E_DEVICE, "clCreateBuffer (weights): %d", (int)rc);
  for (t = 0; t < p->ntensors; t++) {
    p->tbytes[t] = (size_t)mossrt_rd64(ob.bytes + 8 * t);
    p->tensors[t] = api->clCreateBuffer(os->ctx, CL_MEM_READ_WRITE, p->tbytes[t] ? p->tbytes[t] : 1, NULL, &rc);
    if (!p->tensors[t] || rc != CL_SUCCESS)
      return FAIL(MOSSRT_E_DEVICE, "clCreateBuffer (tensor %u, %zu bytes): %d", t, p->tbytes[t], (int)rc);
  }
  for (k = 0; k < p->nkernels; k++) {
    char name[32];
    snprintf(name, sizeof name, "moss_k%u", k);
    p->items[k] = (size_t)MOSS_GPU_LAUNCH_ITEMS(mossrt_rd64(ob.items + 8 * k));
    p->group[k] = (size_t)MOSS_GPU_LAUNCH_GROUP(mossrt_rd64(ob.items + 8 * k));
    p->kernels[k] = api->clCreateKernel(p->prog, name, &rc);
    if (!p->kernels[k] || rc != CL_SUCCESS) return FAIL(MOSSRT_E_DEVICE, "clCreateKernel %s: %d", name, (int)rc);
    rc = api->clSetKernelArg(p->kernels[k], 0, sizeof(cl_mem), &p->arena);
    if (rc == CL_SUCCESS) rc = api->clSetKernelArg(p->kernels[k], 1, sizeof(cl_mem), &p->weights);
    for (t = 0; t < p->ntensors && rc == CL_SUCCESS; t++)
      rc = api->clSetKernelArg(p->kernels[k], 2 + t, sizeof(cl_mem), &p->tensors[t]);
    if (rc != CL_SUCCESS) return FAIL(MOSSRT_E_DEVICE, "clSetKernelArg of %s: %d", name, (int)rc);
  }
  return MOSSRT_OK;
}

/* How |dev| takes a SPIR-V module: OpenCL 2.1's clCreateProgramWithIL on
 * a device of OpenCL 2.1 or later whose CL_DEVICE_IL_VERSION names SPIR-V
 * (any version: each takes the 1.0 modules moss writes), else
 * clCreateProgramWithILKHR from the device's platform where it has
 * cl_khr_il_program; NULL: neither. |ilv| gets the IL versions it
 * reports (for messages). */
static ocl_il_fn il_entry(const mossrt_bundle *b, const ocl_api *api, cl_device_id dev, char *ilv, size_t cap) {
  char ver[128];
  int major = 0, minor = 0;
  cl_platform_id plat = NULL;
  ilv[0] = ver[0] = 0;
  if (api->clGetDeviceInfo(dev, CL_DEVICE_IL_VERSION, cap, ilv, NULL) != CL_SUCCESS) ilv[0] = 0;
  ilv[cap - 1] = 0;
  if (!strstr(ilv, "SPIR-V")) return NULL;
  if (api->clGetDeviceInfo(dev, CL_DEVICE_VERSION, sizeof ver, ver, NULL) == CL_SUCCESS) {
    ver[sizeof ver - 1] = 0;
    if (sscanf(ver, "OpenCL %d.%d", &major, &minor) != 2) major = minor = 0;
  }
  if ((major > 2 || (major == 2 && minor >= 1)) && api->clCreateProgramWithIL) return api->clCreateProgramWithIL;
  if (has_extension(b, api, dev, "cl_khr_il_program") &&
      api->clGetExtensionFunctionAddressForPlatform &&
      api->clGetDeviceInfo(dev, CL_DEVICE_PLATFORM, sizeof plat, &plat, NULL) == CL_SUCCESS) {
    ocl_il_fn f;
    *(void **)&f = api->clGetExtensionFunctionAddressForPlatform(plat, "clCreateProgramWithILKHR");
    return f;
  }
  return NULL;
}

static const ocl_api *session_api(const mossrt_bundle *b) {
  uint32_t i;
  for (i = 0; i < b->ndevices; i++)
    if (b->devices[i].exec == &mossrt_opencl_executor && b->devices[i].xstate) return b->devices[i].xstate;
  return NULL;
}

static void opencl_session_close(mossrt_session *s) {
  const mossrt_bundle *b = s->b;
  ocl_session *os = s->ocl;
  const ocl_api *api = session_api(b);
  uint32_t i;
  if (!os) return;
  for (i = 0; api && os->progs && i < os->nprogs; i++) release_prog(api, &b->alloc, &os->progs[i]);
  if (os->progs) mossrt_mem_free(&b->alloc, os->progs, (os->nprogs + 1) * sizeof *os->progs);
  if (api && os->q) api->clReleaseCommandQueue(os->q);
  if (api && os->ctx) api->clReleaseContext(os->ctx);
  mossrt_mem_free(&b->alloc, os, sizeof *os);
  s->ocl = NULL;
}

static mossrt_status opencl_session_open(mossrt_session *s, mossrt_error *err) {
  const mossrt_bundle *b = s->b;
  const ocl_api *api = session_api(b);
  ocl_session *os;
  cl_int rc = CL_SUCCESS;
  uint32_t i;
  mossrt_status st;
  if (!api) return MOSSRT_OK; /* no OpenCL device runs a step */
  if (!(os = mossrt_mem_alloc(&b->alloc, sizeof *os))) return FAIL(MOSSRT_E_NOMEM, "cannot allocate a session");
  memset(os, 0, sizeof *os);
  s->ocl = os;
  os->nprogs = b->nblobs;
  if (!(os->progs = mossrt_mem_alloc(&b->alloc, (os->nprogs + 1) * sizeof *os->progs)))
    return FAIL(MOSSRT_E_NOMEM, "cannot allocate a session");
  memset(os->progs, 0, (os->nprogs + 1) * sizeof *os->progs);
  if ((st = pick_device(b, api, &os->dev, err)) != MOSSRT_OK) return st;
  {
    cl_bitfield fp = 0;
    int exact = api->clGetDeviceInfo(os->dev, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL) == CL_SUCCESS &&
                (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT);
    os->options = exact ? "-cl-std=CL1.2 -cl-fp32-correctly-rounded-divide-sqrt" : "-cl-std=CL1.2";
    os->il_options = exact ? "-cl-fp32-correctly-rounded-divide-sqrt" : "";
  }
  {
    const char *code = getenv("MOSS_OPENCL_CODE");
    char ilv[256], name[256];
    if (!code || !*code || !strcmp(code, "auto")) os->code = CODE_AUTO;
    else if (!strcmp(code, "source")) os->code = CODE_SOURCE;
    else if (!strcmp(code, "spirv")) os->code = CODE_SPIRV;
    else return FAIL(MOSSRT_E_DEVICE, "MOSS_OPENCL_CODE='%s': source, spirv or auto", code);
    os->create_il = il_entry(b, api, os->dev, ilv, sizeof ilv);
    os->fp16 = has_extension(b, api, os->dev, "cl_khr_fp16");
    if (os->code == CODE_SPIRV && !os->create_il) {
      name[0] = 0;
      api->clGetDeviceInfo(os->dev, CL_DEVICE_NAME, sizeof name, name, NULL);
      name[sizeof name - 1] = 0;
      return FAIL(MOSSRT_E_DEVICE, "MOSS_OPENCL_CODE=spirv: device '%s' takes no SPIR-V (CL_DEVICE_IL_VERSION '%s', "
                  "and no cl_khr_il_program); unset it, or set it to source", name, ilv);
    }
  }
  os->ctx = api->clCreateContext(NULL, 1, &os->dev, NULL, NULL, &rc);
  if (!os->ctx || rc != CL_SUCCESS) return FAIL(MOSSRT_E_DEVICE, "clCreateContext: %d", (int)rc);
  os->q = api->clCreateCommandQueue(os->ctx, os->dev, 0, &rc);
  if (!os->q || rc != CL_SUCCESS) return FAIL(MOSSRT_E_DEVICE, "clCreateCommandQueue: %d", (int)rc);
  for (i = 0; i < b->nblobs; i++)
    if (b->devices[b->blobs[i].device].exec == &mossrt_opencl_executor &&
        (st = load_prog(s, os, api, i, err)) != MOSSRT_OK)
      return st;
  return MOSSRT_OK;
}

static mossrt_status opencl_run(mossrt_session *s, uint32_t i, mossrt_error *err) {
  const mossrt_bundle *b = s->b;
  const mossrt_step *st = &b->steps[i];
  const ocl_api *api = session_api(b);
  ocl_session *os = s->ocl;
  ocl_prog *p = &os->progs[st->blob];
  cl_int rc = CL_SUCCESS;
  uint32_t k;
  for (k = 0; k < st->nin && rc == CL_SUCCESS; k++)
    rc = api->clEnqueueWriteBuffer(os->q, p->tensors[k], CL_FALSE, 0, p->tbytes[k], s->bufs[st->first + k], 0,
                                   NULL, NULL);
  if (rc != CL_SUCCESS) return FAIL(MOSSRT_E_DEVICE, "step %u: clEnqueueWriteBuffer: %d", i, (int)rc);
  for (k = 0; k < p->nkernels && rc == CL_SUCCESS; k++)
    rc = api->clEnqueueNDRangeKernel(os->q, p->kernels[k], 1, NULL, &p->items[k], p->group[k] ? &p->group[k] : NULL,
                                     0, NULL, NULL);
  if (rc != CL_SUCCESS) return FAIL(MOSSRT_E_DEVICE, "step %u: clEnqueueNDRangeKernel moss_k%u: %d", i, k - 1, (int)rc);
  for (k = st->nin; k < st->nin + st->nout && rc == CL_SUCCESS; k++)
    rc = api->clEnqueueReadBuffer(os->q, p->tensors[k], CL_FALSE, 0, p->tbytes[k], s->bufs[st->first + k], 0,
                                  NULL, NULL);
  if (rc != CL_SUCCESS) return FAIL(MOSSRT_E_DEVICE, "step %u: clEnqueueReadBuffer: %d", i, (int)rc);
  if ((rc = api->clFinish(os->q)) != CL_SUCCESS) return FAIL(MOSSRT_E_DEVICE, "step %u: clFinish: %d", i, (int)rc);
  return MOSSRT_OK;
}

const mossrt_executor mossrt_opencl_executor = {
    .name = "opencl",
    .serves = opencl_serves,
    .blobs = 1,
    .check_step = opencl_check_step,
    .open = opencl_open,
    .close = opencl_close,
    .session_open = opencl_session_open,
    .session_close = opencl_session_close,
    .run = opencl_run,
};
