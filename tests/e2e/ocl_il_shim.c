/* ocl_il_shim.c - an OpenCL library for libmossrt's OpenCL executor
 * (MOSS_OPENCL_LIBRARY) that stands in for a driver which takes SPIR-V, on
 * a machine whose driver takes none (PoCL 3.1 here). It forwards every
 * call to the real ICD loader (libOpenCL.so.1, or the file
 * MOSS_SHIM_OPENCL names) and adds one front end: its devices report
 * cl_khr_il_program and CL_DEVICE_IL_VERSION "SPIR-V_1.0", and
 * clCreateProgramWithILKHR (from clGetExtensionFunctionAddressForPlatform)
 * reads the module back to SPIR 1.2 bitcode with Khronos' translator
 * (llvm-spirv-15 -r, or the file MOSS_LLVM_SPIRV names) and gives that to
 * the driver as a SPIR binary (cl_khr_spir), built with "-x spir". So
 * the executor's SPIR-V path (the form it picks, its build, its program
 * cache) runs for real, and the driver runs the code of the bundle's
 * SPIR-V module. With MOSS_SHIM_FP16=1 the devices also report
 * cl_khr_fp16: PoCL's LLVM computes a SPIR module's half arithmetic (each
 * operation rounded to float16), though its OpenCL C compiler, without
 * the extension, refuses half. Used by tests/e2e/test_opencl.py and
 * test_opencl_f16.py; not part of moss. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef int32_t cl_int;
typedef uint32_t cl_uint;
typedef uint64_t cl_bitfield;
typedef void *cl_handle;
#define CL_DEVICE_EXTENSIONS 0x1030
#define CL_DEVICE_IL_VERSION 0x105B
#define CL_CONTEXT_DEVICES 0x1081
#define CL_INVALID_VALUE (-30)
#define CL_OUT_OF_HOST_MEMORY (-6)
#define CL_INVALID_BINARY (-42)

extern char **environ;

static void *real;

typedef void (*any_fn)(void);

/* The real library's |name| (copied, as ISO C converts no object pointer
 * to a function pointer); the process ends when it has none (a test
 * helper: that is its clearest failure). */
static any_fn sym(const char *name) {
  void *p;
  any_fn f;
  if (!real) {
    const char *path = getenv("MOSS_SHIM_OPENCL");
    if (!(real = dlopen(path && *path ? path : "libOpenCL.so.1", RTLD_NOW | RTLD_LOCAL))) {
      fprintf(stderr, "ocl_il_shim: %s\n", dlerror());
      exit(70);
    }
  }
  if (!(p = dlsym(real, name))) {
    fprintf(stderr, "ocl_il_shim: no %s in the OpenCL library\n", name);
    exit(70);
  }
  memcpy(&f, &p, sizeof f);
  return f;
}

/* The real |name|, as a pointer of type |type|. */
#define REAL(name, type) ((type)sym(#name))

/* The programs made from SPIR-V, which clBuildProgram builds as SPIR. */
static cl_handle spir_progs[256];
static int nspir;

static int is_spir(cl_handle p) {
  int i;
  for (i = 0; i < nspir; i++)
    if (spir_progs[i] == p) return 1;
  return 0;
}

/* ---- the calls it forwards as they are ---- */

cl_int clGetPlatformIDs(cl_uint n, cl_handle *p, cl_uint *np) {
  return REAL(clGetPlatformIDs, cl_int (*)(cl_uint, cl_handle *, cl_uint *))(n, p, np);
}
cl_int clGetDeviceIDs(cl_handle p, cl_bitfield t, cl_uint n, cl_handle *d, cl_uint *nd) {
  return REAL(clGetDeviceIDs, cl_int (*)(cl_handle, cl_bitfield, cl_uint, cl_handle *, cl_uint *))(
      p, t, n, d, nd);
}
cl_handle clCreateContext(const intptr_t *pr, cl_uint n, const cl_handle *d, void *cb, void *u,
                          cl_int *e) {
  return REAL(clCreateContext, cl_handle (*)(const intptr_t *, cl_uint, const cl_handle *, void *,
                                             void *, cl_int *))(pr, n, d, cb, u, e);
}
cl_handle clCreateCommandQueue(cl_handle c, cl_handle d, cl_bitfield p, cl_int *e) {
  return REAL(clCreateCommandQueue, cl_handle (*)(cl_handle, cl_handle, cl_bitfield, cl_int *))(c, d,
                                                                                               p, e);
}
cl_handle clCreateProgramWithSource(cl_handle c, cl_uint n, const char **s, const size_t *l,
                                    cl_int *e) {
  return REAL(clCreateProgramWithSource,
              cl_handle (*)(cl_handle, cl_uint, const char **, const size_t *, cl_int *))(c, n, s, l,
                                                                                         e);
}
cl_handle clCreateProgramWithBinary(cl_handle c, cl_uint n, const cl_handle *d, const size_t *l,
                                    const unsigned char **b, cl_int *st, cl_int *e) {
  return REAL(clCreateProgramWithBinary,
              cl_handle (*)(cl_handle, cl_uint, const cl_handle *, const size_t *,
                            const unsigned char **, cl_int *, cl_int *))(c, n, d, l, b, st, e);
}
cl_int clGetProgramInfo(cl_handle p, cl_uint w, size_t n, void *v, size_t *r) {
  return REAL(clGetProgramInfo, cl_int (*)(cl_handle, cl_uint, size_t, void *, size_t *))(p, w, n, v,
                                                                                          r);
}
cl_int clGetProgramBuildInfo(cl_handle p, cl_handle d, cl_uint w, size_t n, void *v, size_t *r) {
  return REAL(clGetProgramBuildInfo,
              cl_int (*)(cl_handle, cl_handle, cl_uint, size_t, void *, size_t *))(p, d, w, n, v, r);
}
cl_handle clCreateKernel(cl_handle p, const char *name, cl_int *e) {
  return REAL(clCreateKernel, cl_handle (*)(cl_handle, const char *, cl_int *))(p, name, e);
}
cl_int clSetKernelArg(cl_handle k, cl_uint i, size_t n, const void *v) {
  return REAL(clSetKernelArg, cl_int (*)(cl_handle, cl_uint, size_t, const void *))(k, i, n, v);
}
cl_handle clCreateBuffer(cl_handle c, cl_bitfield f, size_t n, void *h, cl_int *e) {
  return REAL(clCreateBuffer, cl_handle (*)(cl_handle, cl_bitfield, size_t, void *, cl_int *))(c, f, n,
                                                                                               h, e);
}
cl_int clEnqueueWriteBuffer(cl_handle q, cl_handle m, cl_uint b, size_t o, size_t n, const void *h,
                            cl_uint ne, const cl_handle *w, cl_handle *ev) {
  return REAL(clEnqueueWriteBuffer, cl_int (*)(cl_handle, cl_handle, cl_uint, size_t, size_t,
                                               const void *, cl_uint, const cl_handle *,
                                               cl_handle *))(q, m, b, o, n, h, ne, w, ev);
}
cl_int clEnqueueReadBuffer(cl_handle q, cl_handle m, cl_uint b, size_t o, size_t n, void *h,
                           cl_uint ne, const cl_handle *w, cl_handle *ev) {
  return REAL(clEnqueueReadBuffer, cl_int (*)(cl_handle, cl_handle, cl_uint, size_t, size_t, void *,
                                              cl_uint, const cl_handle *, cl_handle *))(
      q, m, b, o, n, h, ne, w, ev);
}
cl_int clEnqueueNDRangeKernel(cl_handle q, cl_handle k, cl_uint d, const size_t *o, const size_t *g,
                              const size_t *l, cl_uint ne, const cl_handle *w, cl_handle *ev) {
  return REAL(clEnqueueNDRangeKernel,
              cl_int (*)(cl_handle, cl_handle, cl_uint, const size_t *, const size_t *,
                         const size_t *, cl_uint, const cl_handle *, cl_handle *))(q, k, d, o, g, l,
                                                                                   ne, w, ev);
}
cl_int clFinish(cl_handle q) { return REAL(clFinish, cl_int (*)(cl_handle))(q); }
cl_int clReleaseKernel(cl_handle k) { return REAL(clReleaseKernel, cl_int (*)(cl_handle))(k); }
cl_int clReleaseMemObject(cl_handle m) { return REAL(clReleaseMemObject, cl_int (*)(cl_handle))(m); }
cl_int clReleaseCommandQueue(cl_handle q) {
  return REAL(clReleaseCommandQueue, cl_int (*)(cl_handle))(q);
}
cl_int clReleaseContext(cl_handle c) { return REAL(clReleaseContext, cl_int (*)(cl_handle))(c); }

cl_int clReleaseProgram(cl_handle p) {
  int i;
  for (i = 0; i < nspir; i++)
    if (spir_progs[i] == p) spir_progs[i] = spir_progs[--nspir];
  return REAL(clReleaseProgram, cl_int (*)(cl_handle))(p);
}

/* ---- the front end ---- */

/* What |dev| reports, with cl_khr_il_program (and cl_khr_fp16 where
 * MOSS_SHIM_FP16=1) added to its extensions and SPIR-V as its IL. */
cl_int clGetDeviceInfo(cl_handle dev, cl_uint what, size_t n, void *v, size_t *ret) {
  cl_int (*info)(cl_handle, cl_uint, size_t, void *, size_t *) =
      REAL(clGetDeviceInfo, cl_int (*)(cl_handle, cl_uint, size_t, void *, size_t *));
  char text[4096];
  size_t len = 0;
  if (what == CL_DEVICE_IL_VERSION) {
    snprintf(text, sizeof text, "SPIR-V_1.0");
  } else if (what == CL_DEVICE_EXTENSIONS) {
    cl_int rc = info(dev, what, sizeof text - 64, text, &len);
    const char *fp16 = getenv("MOSS_SHIM_FP16");
    if (rc != 0) return rc;
    text[len < sizeof text - 64 ? len : 0] = 0;
    strcat(text, " cl_khr_il_program");
    if (fp16 && !strcmp(fp16, "1")) strcat(text, " cl_khr_fp16");
  } else {
    return info(dev, what, n, v, ret);
  }
  len = strlen(text) + 1;
  if (ret) *ret = len;
  if (v) {
    if (n < len) return CL_INVALID_VALUE;
    memcpy(v, text, len);
  }
  return 0;
}

/* The |len| bytes of SPIR-V at |il| as a SPIR binary of the context's
 * first device, through llvm-spirv -r on files in a temporary folder
 * (under TMPDIR, else /tmp), removed afterwards. */
static cl_handle create_with_il(cl_handle ctx, const void *il, size_t len, cl_int *err) {
  char dir[4096], in[4200] = "", out[4200] = "";
  const char *tool = getenv("MOSS_LLVM_SPIRV"), *tmp = getenv("TMPDIR");
  char *argv[6];
  pid_t pid;
  int status = -1;
  FILE *f;
  unsigned char *bc = NULL;
  long n = -1;
  cl_handle dev, prog = NULL;
  cl_int e = CL_INVALID_BINARY;
  /* a private folder: mkdtemp() puts six random characters for the Xs */
  snprintf(dir, sizeof dir, "%s/moss-il-shim-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) goto done;
  snprintf(in, sizeof in, "%s/m.spv", dir);
  snprintf(out, sizeof out, "%s/m.bc", dir);
  if (!(f = fopen(in, "wb")) || fwrite(il, 1, len, f) != len) {
    if (f) fclose(f);
    goto done;
  }
  fclose(f);
  argv[0] = (char *)(tool && *tool ? tool : "llvm-spirv-15");
  argv[1] = "-r";
  argv[2] = in;
  argv[3] = "-o";
  argv[4] = out;
  argv[5] = NULL;
  if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0 || waitpid(pid, &status, 0) < 0 ||
      !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "ocl_il_shim: %s -r failed\n", argv[0]);
    goto done;
  }
  if (!(f = fopen(out, "rb"))) goto done;
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (bc = malloc((size_t)n)) != NULL && fread(bc, 1, (size_t)n, f) != (size_t)n)
    n = -1;
  fclose(f);
  if (n <= 0 || !bc) goto done;
  if (REAL(clGetContextInfo, cl_int (*)(cl_handle, cl_uint, size_t, void *, size_t *))(
          ctx, CL_CONTEXT_DEVICES, sizeof dev, &dev, NULL) != 0)
    goto done;
  {
    size_t blen = (size_t)n;
    const unsigned char *b = bc;
    prog = clCreateProgramWithBinary(ctx, 1, &dev, &blen, &b, NULL, &e);
  }
  if (prog && e == 0 && nspir < (int)(sizeof spir_progs / sizeof *spir_progs))
    spir_progs[nspir++] = prog;
  else if (prog && e == 0) {
    clReleaseProgram(prog);
    prog = NULL;
    e = CL_OUT_OF_HOST_MEMORY;
  }
done:
  free(bc);
  if (in[0]) {
    unlink(in);
    unlink(out);
    rmdir(dir);
  }
  if (err) *err = prog ? 0 : e;
  return prog;
}

void *clGetExtensionFunctionAddressForPlatform(cl_handle plat, const char *name) {
  cl_handle (*f)(cl_handle, const void *, size_t, cl_int *) = create_with_il;
  void *p = NULL;
  (void)plat;
  if (!strcmp(name, "clCreateProgramWithILKHR")) memcpy(&p, &f, sizeof p);
  return p;
}

/* A program from SPIR-V builds as SPIR (PoCL: "-x spir -spir-std=1.2"). */
cl_int clBuildProgram(cl_handle p, cl_uint n, const cl_handle *d, const char *opts, void *cb, void *u) {
  char o[1024];
  cl_int (*build)(cl_handle, cl_uint, const cl_handle *, const char *, void *, void *) =
      REAL(clBuildProgram, cl_int (*)(cl_handle, cl_uint, const cl_handle *, const char *, void *,
                                      void *));
  if (!is_spir(p)) return build(p, n, d, opts, cb, u);
  snprintf(o, sizeof o, "-x spir -spir-std=1.2 %s", opts ? opts : "");
  return build(p, n, d, o, cb, u);
}
