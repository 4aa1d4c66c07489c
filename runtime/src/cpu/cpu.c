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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif

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
  /* CPUID, as libgcc's __builtin_cpu_supports reads it (test_bundle checks
   * every name against the builtin), from tables rather than code, which
   * keeps the core small. The k-th name's bit is bit (bit[k] & 31) of word
   * bit[k] >> 5: 0 cpuid(1).ecx, 1 cpuid(1).edx, 2 cpuid(7,0).ebx,
   * 3 cpuid(7,0).ecx, 4 cpuid(7,0).edx, 5 cpuid(7,1).eax, 6
   * cpuid(0x80000001).ecx; os[k] 1: the OS must also save the AVX
   * registers, 2: and the AVX-512 ones (XCR0 bits 1-2, 5-7). */
  static const char names[] =
      "sse\0sse2\0sse3\0ssse3\0sse4.1\0sse4.2\0sse4a\0popcnt\0avx\0avx2\0fma\0fma4\0xop\0bmi\0"
      "bmi2\0aes\0pclmul\0avx512f\0avx512bw\0avx512vl\0avx512dq\0avx512cd\0avx512vnni\0"
      "avx512bf16\0avx512vbmi\0avx512vbmi2\0avx512ifma\0avx512bitalg\0avx512vpopcntdq\0"
      "avx512vp2intersect\0";
  static const uint8_t bit[] = {
      1 << 5 | 25, 1 << 5 | 26, 0 << 5 | 0,  0 << 5 | 9,  0 << 5 | 19, 0 << 5 | 20, 6 << 5 | 6,
      0 << 5 | 23, 0 << 5 | 28, 2 << 5 | 5,  0 << 5 | 12, 6 << 5 | 16, 6 << 5 | 11, 2 << 5 | 3,
      2 << 5 | 8,  0 << 5 | 25, 0 << 5 | 1,  2 << 5 | 16, 2 << 5 | 30, 2 << 5 | 31, 2 << 5 | 17,
      2 << 5 | 28, 3 << 5 | 11, 5 << 5 | 5,  3 << 5 | 1,  3 << 5 | 6,  2 << 5 | 21, 3 << 5 | 12,
      3 << 5 | 14, 4 << 5 | 8};
  static const uint8_t os[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0,
                               0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
  unsigned w[7] = {0}, a, b, c, d, lo = 0, hi, k;
  const char *p;
  for (p = names, k = 0; *p; p += strlen(p) + 1, k++) {
    if (strcmp(p, f) != 0) continue;
    __cpuid(1, a, b, w[0], w[1]);
    if ((unsigned)__get_cpuid_max(0, 0) >= 7) {
      __cpuid_count(7, 0, a, w[2], w[3], w[4]);
      __cpuid_count(7, 1, w[5], b, c, d); /* zeros where sub-leaf 1 is not (Intel SDM) */
    }
    if ((unsigned)__get_cpuid_max(0x80000000u, 0) >= 0x80000001u)
      __cpuid(0x80000001u, a, b, w[6], d);
    if (w[0] >> 27 & 1) __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0)); /* OSXSAVE */
    (void)hi;
    if ((os[k] && (lo & 6) != 6) || (os[k] == 2 && (lo & 0xe0) != 0xe0)) return 0;
    return (int)(w[bit[k] >> 5] >> (bit[k] & 31) & 1);
  }
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

_Static_assert(sizeof(moss_bundle_figure_tensor) ==
                   sizeof(mossrt_tensor) - offsetof(mossrt_tensor, dtype),
               "mossrt_tensor ends with a moss_bundle_figure_tensor");
_Static_assert(sizeof(moss_bundle_figure_step) == offsetof(mossrt_step, first) + 4,
               "mossrt_step starts with a moss_bundle_figure_step");

/* The address of the symbol |name| of the loaded CPU code, or NULL. (One
 * copy for its two callers: the core's code size is counted.) */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void *find(const mossrt_bundle *b, const char *name) {
  return b->cpu_image ? mossrt_elf_find(b->cpu_image, name) : dlsym(b->cpu_lib, name);
}

/* 1 when the program headers of the ELF64 shared object |p| (|n| >= 64
 * bytes, checked at open) and the file bytes of each lie inside it. They
 * are 56 bytes each (the dynamic loader refuses another e_phentsize). */
static int so_fits(const uint8_t *p, uint64_t n) {
  uint64_t ph, off, sz;
  uint16_t num;
  memcpy(&ph, p + 32, 8);
  memcpy(&num, p + 56, 2);
  if (ph > n || (uint64_t)num * 56 > n - ph) return 0;
  for (p += ph; num--; p += 56) {
    memcpy(&off, p + 8, 8);
    memcpy(&sz, p + 32, 8);
    if (off > n || sz > n - off) return 0;
  }
  return 1;
}

/* Loads the code, resolves each CPU step's entry, and holds the bundle to
 * the figures the code states (moss_bundle.h, moss_bundle_figures): META's
 * arena and tensors, PLAN's steps and references, the entries in order. */
static mossrt_status cpu_open(mossrt_bundle *b, mossrt_error *err) {
  const moss_bundle_figures *f;
  const moss_bundle_figure_tensor *t;
  const moss_bundle_figure_step *fs;
  const uint32_t *refs;
  const mossrt_cpu_fn *entries;
  const char *bad = NULL;
  uint32_t i, k = 0, at = 0;
  if (!b->cpu_code) return MOSSRT_OK;
  if (b->cpu_format == MOSS_BUNDLE_CODE_ELF_OBJECT) {
    mossrt_status st = load_object(b, err);
    if (st != MOSSRT_OK) return st;
  } else if (!so_fits(b->cpu_code, b->cpu_code_size)) {
    /* The dynamic loader maps the segments the program headers name: past
     * the end of the code they would be pages past the end of the file. */
    return mossrt_fail(err, b->name, MOSSRT_E_FORMAT,
                       "the CPU code's program headers reach past its %llu bytes",
                       (unsigned long long)b->cpu_code_size);
  } else if (!load_memfd(b)) {
    mossrt_status st = load_tmpfile(b, err);
    if (st != MOSSRT_OK) return st;
  }
  f = find(b, MOSS_BUNDLE_FIGURES_SYMBOL);
  if (!f || f->magic != MOSS_BUNDLE_FIGURES_MAGIC)
    return mossrt_fail(err, b->name, MOSSRT_E_FORMAT, "the CPU code states no figures (symbol "
                       MOSS_BUNDLE_FIGURES_SYMBOL ")");
  t = (const void *)(f + 1);
  fs = (const void *)(t + f->ntensors);
  refs = (const void *)(fs + f->nsteps);
  entries = (const void *)(((uintptr_t)(refs + f->nrefs) + 7) & ~(uintptr_t)7);
  if (f->arena_bytes != b->arena_bytes || f->ntensors != b->ntensors || f->nsteps != b->nsteps ||
      f->nrefs != b->nrefs)
    return mossrt_fail(err, b->name, MOSSRT_E_FORMAT,
                       "the bundle's arena of %llu bytes or its count of tensors, steps or "
                       "tensor references is not what its CPU code was compiled for (an arena "
                       "of %llu bytes)", (unsigned long long)b->arena_bytes,
                       (unsigned long long)f->arena_bytes);
  for (i = 0; !bad && i < b->ntensors; i++)
    if (memcmp(&t[i], &b->tensors[i].dtype, sizeof *t)) bad = "tensor", at = i;
  for (i = 0; !bad && i < b->nsteps; i++)
    if (memcmp(&fs[i], &b->steps[i], sizeof *fs)) bad = "step", at = i;
  for (i = 0; !bad && i < b->nrefs; i++)
    if (refs[i] != b->refs[i]) bad = "tensor reference", at = i;
  for (i = 0; i < b->nsteps && !bad; i++) {
    mossrt_step *s = &b->steps[i];
    void *sym;
    if (s->kind != MOSS_BUNDLE_STEP_KIND_EXEC || b->devices[s->device].exec != &mossrt_cpu_executor)
      continue;
    sym = find(b, s->entry);
    if (!sym)
      return mossrt_fail(err, b->name, MOSSRT_E_DEVICE,
                         "step %u: entry '%s' not found in the CPU code", i, s->entry);
    s->fn = (mossrt_cpu_fn)sym;
    if (k >= f->nentries || s->fn != entries[k++]) bad = "the entry point of step", at = i;
  }
  if (!bad && k != f->nentries) bad = "the number of CPU steps,", at = k;
  if (bad)
    return mossrt_fail(err, b->name, MOSSRT_E_FORMAT,
                       "%s %u: not what the CPU code was compiled for (its figures, "
                       MOSS_BUNDLE_FIGURES_SYMBOL ", state it otherwise)", bad, at);
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
                  s->arena, s->par);
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
    .session_open = mossrt_pool_session_open,
    .session_close = mossrt_pool_session_close,
    .run = cpu_run,
};
