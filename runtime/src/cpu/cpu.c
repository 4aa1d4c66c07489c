/* cpu.c - the CPU executor of libmossrt (mossrt_cpu_executor, an entry of
 * core/executor.c's table): it serves the device whose code is ELF. At open
 * time it checks that the bundle was built for this machine (the
 * architecture of its triple, and each required CPU feature) and that each
 * CPU EXEC step names an entry, then loads the CPU code the bundle carries
 * so that every CPU EXEC step has its entry point resolved before any run;
 * a run calls that entry point. An ELF relocatable object from the LLVM
 * backend goes through libmossrt's own loader (elf.c); an ELF shared object
 * compiled from the C backend's output is dlopen()ed. The shared object's
 * bytes go to an anonymous memfd and are dlopen()ed through /proc/self/fd;
 * where that fails, through a private temporary file. The fd (or file)
 * stays until the bundle is closed, so the name dlopen() knows the library
 * by is never reused while it is loaded (glibc would otherwise hand back
 * the old library). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/mossrt_internal.h"
#include "imports.h"

#if defined(__x86_64__) || defined(_M_X64)
#define MOSSRT_ARCH "x86_64"
#elif defined(__aarch64__)
#define MOSSRT_ARCH "aarch64"
#elif defined(__riscv) && __riscv_xlen == 64
#define MOSSRT_ARCH "riscv64"
#elif defined(__arm__)
#define MOSSRT_ARCH "arm"
#elif defined(__i386__)
#define MOSSRT_ARCH "i386"
#else
#define MOSSRT_ARCH "unknown"
#endif

/* The architecture word of a triple, with the usual aliases folded. */
static int arch_matches(const char *triple) {
  static const char *const same[][2] = {
      {"amd64", "x86_64"}, {"arm64", "aarch64"}, {"i686", "i386"}, {"i586", "i386"},
      {"armv7", "arm"},    {"armv7a", "arm"},    {"thumbv7", "arm"}};
  size_t n = strcspn(triple, "-"), i;
  if (strlen(MOSSRT_ARCH) == n && strncmp(triple, MOSSRT_ARCH, n) == 0) return 1;
  for (i = 0; i < sizeof same / sizeof same[0]; i++)
    if (strlen(same[i][0]) == n && strncmp(triple, same[i][0], n) == 0)
      return strcmp(same[i][1], MOSSRT_ARCH) == 0;
  return 0;
}

/* 1: this CPU has |f|; 0: it lacks it; -1: this runtime cannot tell. */
static int has_feature(const char *f) {
#if defined(__x86_64__) && defined(__GNUC__)
#define F(name) \
  if (strcmp(f, name) == 0) return __builtin_cpu_supports(name) ? 1 : 0;
  __builtin_cpu_init();
  F("sse") F("sse2") F("sse3") F("ssse3") F("sse4.1") F("sse4.2") F("sse4a") F("popcnt")
  F("avx") F("avx2") F("fma") F("fma4") F("xop") F("bmi") F("bmi2") F("aes") F("pclmul")
  F("avx512f") F("avx512bw") F("avx512vl") F("avx512dq") F("avx512cd") F("avx512vnni")
  F("avx512bf16") F("avx512vbmi") F("avx512vbmi2") F("avx512ifma") F("avx512bitalg")
  F("avx512vpopcntdq") F("avx512vp2intersect")
#undef F
#elif defined(__aarch64__)
  /* Advanced SIMD and floating point are part of every AArch64 Linux system;
   * the rest are bits of AT_HWCAP / AT_HWCAP2 (Linux's arm64 hwcaps). */
  if (strcmp(f, "neon") == 0 || strcmp(f, "fp-armv8") == 0 || strcmp(f, "asimd") == 0) return 1;
#if defined(__linux__)
  {
    static const struct {
      const char *name;
      int word;
      unsigned bit;
    } caps[] = {{"aes", 1, 3},      {"sha2", 1, 6},  {"crc", 1, 7},   {"lse", 1, 8},
                {"fullfp16", 1, 10}, {"rdm", 1, 12}, {"dotprod", 1, 20}, {"sve", 1, 22},
                {"i8mm", 2, 13},    {"bf16", 2, 14}, {"sve2", 2, 1}};
    size_t i;
    for (i = 0; i < sizeof caps / sizeof caps[0]; i++)
      if (strcmp(f, caps[i].name) == 0)
        return (int)((getauxval(caps[i].word == 1 ? AT_HWCAP : AT_HWCAP2) >> caps[i].bit) & 1u);
  }
#endif
#elif defined(__riscv) && __riscv_xlen == 64 && defined(__linux__)
  {
    /* The single-letter extensions are bits of AT_HWCAP; the vector length
     * (zvl<N>b) is the vlenb CSR (0xc22), readable once V is there. Other
     * multi-letter extensions need the riscv_hwprobe syscall: not asked. */
    unsigned long hw = getauxval(AT_HWCAP);
    unsigned long vlenb, want;
    char *end;
    if (f[0] && !f[1] && f[0] >= 'a' && f[0] <= 'z') return (int)((hw >> (f[0] - 'a')) & 1u);
    if (strncmp(f, "zvl", 3) == 0) {
      want = strtoul(f + 3, &end, 10);
      if (end == f + 3 || strcmp(end, "b") != 0) return -1;
      if (!((hw >> ('v' - 'a')) & 1u)) return 0;
      __asm__ volatile("csrr %0, 0xc22" : "=r"(vlenb));
      return vlenb * 8 >= want;
    }
  }
#endif
  (void)f;
  return -1;
}

static int cpu_serves(const mossrt_device *d) {
  return d->code_format == MOSS_BUNDLE_CODE_ELF_SHARED ||
         d->code_format == MOSS_BUNDLE_CODE_ELF_OBJECT;
}

static mossrt_status cpu_check_target(const mossrt_bundle *b, mossrt_error *err) {
  const char *p = b->features;
  if (b->triple[0] && !arch_matches(b->triple))
    return mossrt_fail(err, b->name, MOSSRT_E_TARGET,
                       "bundle is for %s, this runtime runs on %s", b->triple, MOSSRT_ARCH);
  while (*p) {
    char f[64];
    size_t n = strcspn(p, ",");
    int neg = *p == '-';
    if (*p == '+' || *p == '-') p++, n--;
    if (n >= sizeof f)
      return mossrt_fail(err, b->name, MOSSRT_E_TARGET, "CPU feature name too long in '%s'",
                         b->features);
    memcpy(f, p, n);
    f[n] = 0;
    p += n;
    if (*p == ',') p++;
    if (neg || !f[0]) continue; /* a feature the code must not use is no requirement */
    switch (has_feature(f)) {
    case 0:
      return mossrt_fail(err, b->name, MOSSRT_E_TARGET,
                         "needs CPU feature %s, which this CPU lacks", f);
    case -1:
      return mossrt_fail(err, b->name, MOSSRT_E_TARGET,
                         "needs CPU feature %s, which this runtime cannot check on %s", f,
                         MOSSRT_ARCH);
    default: break;
    }
  }
  return MOSSRT_OK;
}

static int write_all(int fd, const uint8_t *p, uint64_t n) {
  while (n) {
    ssize_t k = write(fd, p, n > (1u << 30) ? (1u << 30) : (size_t)n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return 0;
    p += k;
    n -= (uint64_t)k;
  }
  return 1;
}

/* Writes the code to a memfd and dlopen()s it; 0 when that is not possible. */
static int load_memfd(mossrt_bundle *b) {
#ifdef MFD_CLOEXEC
  char path[64];
  int fd = memfd_create("mossrt-cpu-code", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (!write_all(fd, b->cpu_code, b->cpu_code_size)) {
    close(fd);
    return 0;
  }
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  b->cpu_lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!b->cpu_lib) {
    close(fd);
    return 0;
  }
  b->cpu_fd = fd;
  return 1;
#else
  (void)b;
  return 0;
#endif
}

static mossrt_status load_tmpfile(mossrt_bundle *b, mossrt_error *err) {
  const char *dir = getenv("TMPDIR");
  char path[4096];
  int fd;
  if (!dir || !dir[0]) dir = "/tmp";
  if ((size_t)snprintf(path, sizeof path, "%s/mossrt-XXXXXX", dir) >= sizeof path)
    return mossrt_fail(err, b->name, MOSSRT_E_IO, "TMPDIR is too long");
  fd = mkstemp(path);
  if (fd < 0)
    return mossrt_fail(err, b->name, MOSSRT_E_IO, "cannot create a file in %s for the CPU code: %s",
                       dir, strerror(errno));
  if (fchmod(fd, 0700) != 0 || !write_all(fd, b->cpu_code, b->cpu_code_size)) {
    close(fd);
    unlink(path);
    return mossrt_fail(err, b->name, MOSSRT_E_IO, "cannot write the CPU code to %s", path);
  }
  close(fd);
  b->cpu_tmp = mossrt_mem_alloc(&b->alloc, strlen(path) + 1);
  if (!b->cpu_tmp) {
    unlink(path);
    return mossrt_fail(err, b->name, MOSSRT_E_NOMEM, "cannot allocate a path");
  }
  memcpy(b->cpu_tmp, path, strlen(path) + 1);
  b->cpu_lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!b->cpu_lib) {
    const char *why = dlerror();
    return mossrt_fail(err, b->name, MOSSRT_E_DEVICE, "cannot load the CPU code: %s",
                       why ? why : "dlopen failed");
  }
  return MOSSRT_OK;
}

/* An ELF relocatable object (the LLVM backend's): through elf.c, with the
 * math and memory functions of imports.c; no dlopen, no file. */
static mossrt_status load_object(mossrt_bundle *b, mossrt_error *err) {
  char why[256];
  size_t n;
  const mossrt_elf_import *imp = mossrt_cpu_imports(&n);
  mossrt_status st = mossrt_elf_load(b->cpu_code, (size_t)b->cpu_code_size, imp, n,
                                     (mossrt_elf_image **)&b->cpu_image, why, sizeof why);
  if (st != MOSSRT_OK) return mossrt_fail(err, b->name, st, "cannot load the CPU code: %s", why);
  return MOSSRT_OK;
}

static mossrt_status cpu_check_step(mossrt_bundle *b, uint32_t i, mossrt_error *err) {
  const mossrt_step *s = &b->steps[i];
  const mossrt_device *d = &b->devices[s->device];
  if (!s->entry || !s->entry[0])
    return mossrt_fail(err, b->name, MOSSRT_E_FORMAT,
                       "step %u: entry: bad or empty string reference", i);
  if (!d->code)
    return mossrt_fail(err, b->name, MOSSRT_E_FORMAT,
                       "step %u: runs '%s' on device '%s' but the bundle has no CPU code", i,
                       s->entry, d->id);
  return MOSSRT_OK;
}

static mossrt_status cpu_open(mossrt_bundle *b, mossrt_error *err) {
  uint32_t i;
  if (!b->cpu_code) return MOSSRT_OK;
  if (b->cpu_format == MOSS_BUNDLE_CODE_ELF_OBJECT) {
    mossrt_status st = load_object(b, err);
    if (st != MOSSRT_OK) return st;
  } else if (!load_memfd(b)) {
    mossrt_status st = load_tmpfile(b, err);
    if (st != MOSSRT_OK) return st;
  }
  for (i = 0; i < b->nsteps; i++) {
    mossrt_step *s = &b->steps[i];
    void *sym;
    if (s->kind != MOSS_BUNDLE_STEP_KIND_EXEC || b->devices[s->device].exec != &mossrt_cpu_executor)
      continue;
    sym = b->cpu_image ? mossrt_elf_find(b->cpu_image, s->entry) : dlsym(b->cpu_lib, s->entry);
    if (!sym)
      return mossrt_fail(err, b->name, MOSSRT_E_DEVICE,
                         "step %u: entry '%s' not found in the CPU code", i, s->entry);
    s->fn = (mossrt_cpu_fn)sym;
  }
  return MOSSRT_OK;
}

static void cpu_close(mossrt_bundle *b) {
  mossrt_elf_unload(b->cpu_image);
  b->cpu_image = NULL;
  if (b->cpu_lib) dlclose(b->cpu_lib);
  b->cpu_lib = NULL;
  if (b->cpu_fd >= 0) close(b->cpu_fd);
  b->cpu_fd = -1;
  if (b->cpu_tmp) {
    unlink(b->cpu_tmp);
    mossrt_mem_free(&b->alloc, b->cpu_tmp, strlen(b->cpu_tmp) + 1);
    b->cpu_tmp = NULL;
  }
}

static mossrt_status cpu_run(mossrt_session *s, uint32_t i, mossrt_error *err) {
  const mossrt_step *st = &s->b->steps[i];
  int rc = st->fn((const void *const *)(s->bufs + st->first), s->bufs + st->first + st->nin,
                  s->arena);
  if (rc != 0)
    return mossrt_fail(err, s->b->name, MOSSRT_E_DEVICE, "step %u: '%s' on device '%s' failed (%d)",
                       i, st->entry, s->b->devices[st->device].id, rc);
  return MOSSRT_OK;
}

const mossrt_executor mossrt_cpu_executor = {
    .name = "cpu",
    .serves = cpu_serves,
    .check_target = cpu_check_target,
    .check_step = cpu_check_step,
    .open = cpu_open,
    .close = cpu_close,
    .run = cpu_run,
};
