/* meter.c - the energy counters of `moss bench --profile` (meter.h). Not a
 * pipeline stage: bench reads a meter before and after its timed window of
 * repeated runs and reports the difference as measured energy, next to the
 * cost model's estimate. RAPL comes from the powercap sysfs (plain files,
 * reopened at every read so that nothing stays open); NVML is loaded with
 * dlopen, so moss builds and runs without the NVIDIA driver. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meter.h"

enum { KIND_NONE, KIND_RAPL, KIND_NVML };

#define NVML_LIB "libnvidia-ml.so.1"

/* The few NVML declarations used (nvml.h need not be installed):
 * nvmlReturn_t is an int-sized enum with 0 for NVML_SUCCESS, nvmlDevice_t a
 * pointer. */
typedef int (*nvml_init_fn)(void);
typedef int (*nvml_handle_fn)(unsigned int index, void **out_dev);
typedef int (*nvml_name_fn)(void *dev, char *name, unsigned int len);
typedef const char *(*nvml_error_fn)(int ret);

/* Writes the reason into |why| (when there is room) and returns 0. */
static int refuse(char *why, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int refuse(char *why, size_t cap, const char *fmt, ...) {
  va_list ap;
  if (!why || !cap) return 0;
  va_start(ap, fmt);
  vsnprintf(why, cap, fmt, ap);
  va_end(ap);
  return 0;
}

/* Reads the small file |path| into |buf| (NUL-terminated). Returns 1, or 0
 * with the reason in |why|; a file that fills |buf| is refused (no sysfs
 * attribute read here is that long). */
static int read_small(const char *path, char *buf, size_t size, char *why, size_t cap) {
  ssize_t n;
  int e, fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return refuse(why, cap, "%s", strerror(errno));
  do n = read(fd, buf, size);
  while (n < 0 && errno == EINTR);
  e = errno;
  close(fd);
  if (n < 0) return refuse(why, cap, "%s", strerror(e));
  if ((size_t)n >= size) return refuse(why, cap, "longer than %zu bytes", size - 1);
  buf[n] = 0;
  return 1;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Reads the file |path| holding one decimal number that fits 64 bits (white
 * space around it allowed). Returns 1 and sets |*out|; 0 with the reason. */
static int read_u64(const char *path, uint64_t *out, char *why, size_t cap) {
  char buf[32];
  const char *p = buf;
  uint64_t v = 0;
  int ndigits = 0;
  if (!read_small(path, buf, sizeof buf, why, cap)) return 0;
  while (is_space(*p)) p++;
  for (; *p >= '0' && *p <= '9'; p++, ndigits++) {
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10) return refuse(why, cap, "number out of range");
    v = v * 10 + d;
  }
  while (is_space(*p)) p++;
  if (!ndigits || *p) return refuse(why, cap, "not a decimal number");
  *out = v;
  return 1;
}

/* ------------------------------------------------------------------- RAPL */

/* The index N of a top-level domain's folder name "intel-rapl:N" (not
 * "intel-rapl:N:M", a subdomain counted within its package); -1 otherwise. */
static long domain_index(const char *name) {
  static const char prefix[] = "intel-rapl:";
  const char *p = name + sizeof prefix - 1;
  long n = 0;
  if (strncmp(name, prefix, sizeof prefix - 1) != 0 || !*p) return -1;
  for (; *p; p++) {
    if (*p < '0' || *p > '9' || n > 99999) return -1;
    n = n * 10 + (*p - '0');
  }
  return n;
}

/* Reads |file| of domain |dir|: 1 and |*out|, or 0 with "DIR/FILE: reason". */
static int domain_u64(const moss_meter *m, const char *dir, const char *file, uint64_t *out,
                      char *why, size_t cap) {
  char path[640], r[96];
  if (snprintf(path, sizeof path, "%s/%s/%s", m->root, dir, file) >= (int)sizeof path)
    return refuse(why, cap, "%s/%s: path too long", dir, file);
  if (!read_u64(path, out, r, sizeof r)) return refuse(why, cap, "%s/%s: %s", dir, file, r);
  return 1;
}

/* Whether domain |dir| is a CPU package: its name is "package-N" (a
 * top-level "psys", the whole platform, would count the packages twice). */
static int domain_is_package(const moss_meter *m, const char *dir, char *why, size_t cap) {
  char path[640], name[64], r[96];
  if (snprintf(path, sizeof path, "%s/%s/name", m->root, dir) >= (int)sizeof path)
    return refuse(why, cap, "%s/name: path too long", dir);
  if (!read_small(path, name, sizeof name, r, sizeof r))
    return refuse(why, cap, "%s/name: %s", dir, r);
  if (strncmp(name, "package", 7) != 0) {
    name[strcspn(name, "\n")] = 0;
    return refuse(why, cap, "%s is '%s', not a package", dir, name);
  }
  return 1;
}

static void sort_indices(long *idx, int n) {
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && idx[j - 1] > idx[j]; j--) {
      long t = idx[j];
      idx[j] = idx[j - 1], idx[j - 1] = t;
    }
}

static int rapl_open(moss_meter *m, char *why, size_t cap) {
  const char *root = getenv("MOSS_POWERCAP_DIR");
  long idx[2 * MOSS_METER_MAX_DOMAINS];
  int n = 0, ncand = 0;
  char first[192] = "";
  struct dirent *e;
  DIR *d;
  size_t len;
  if (!root || !*root) root = "/sys/class/powercap";
  if (strlen(root) >= sizeof m->root)
    return refuse(why, cap, "MOSS_POWERCAP_DIR is longer than %zu bytes", sizeof m->root - 1);
  strcpy(m->root, root);
  d = opendir(root);
  if (!d) return refuse(why, cap, "%s: %s", root, strerror(errno));
  while ((e = readdir(d)) != NULL) {
    long k = domain_index(e->d_name);
    if (k < 0) continue;
    if (ncand == (int)(sizeof idx / sizeof idx[0])) {
      closedir(d);
      return refuse(why, cap, "%s has more than %d intel-rapl domains", root, ncand);
    }
    idx[ncand++] = k;
  }
  closedir(d);
  if (!ncand) return refuse(why, cap, "%s has no intel-rapl:N domain", root);
  sort_indices(idx, ncand);
  for (int i = 0; i < ncand; i++) {
    char dir[24], r[192];
    uint64_t max, energy;
    snprintf(dir, sizeof dir, "intel-rapl:%ld", idx[i]);
    if (!domain_is_package(m, dir, r, sizeof r) ||
        !domain_u64(m, dir, "max_energy_range_uj", &max, r, sizeof r) ||
        !domain_u64(m, dir, "energy_uj", &energy, r, sizeof r)) {
      if (!first[0]) snprintf(first, sizeof first, "%s", r);
      continue;
    }
    if (max == 0 || energy > max) {
      if (!first[0])
        snprintf(first, sizeof first, "%s: energy_uj %llu, max_energy_range_uj %llu", dir,
                 (unsigned long long)energy, (unsigned long long)max);
      continue;
    }
    if (n == MOSS_METER_MAX_DOMAINS)
      return refuse(why, cap, "%s has more than %d RAPL packages", root, n);
    memcpy(m->dir[n], dir, sizeof dir);
    m->max_uj[n] = max;
    m->prev[n] = energy;
    n++;
  }
  if (!n)
    return refuse(why, cap, "%s has no readable intel-rapl package energy_uj: %s", root, first);
  m->kind = KIND_RAPL;
  m->ndomains = n;
  len = (size_t)snprintf(m->source, sizeof m->source, "RAPL package energy, %d domain%s (", n,
                         n == 1 ? "" : "s");
  for (int i = 0; i < n && len < sizeof m->source; i++)
    len += (size_t)snprintf(m->source + len, sizeof m->source - len, "%s%s", i ? ", " : "",
                            m->dir[i]);
  if (len < sizeof m->source) snprintf(m->source + len, sizeof m->source - len, ")");
  return 1;
}

/* Reads every domain first, so that a failed read changes nothing. */
static int rapl_read(moss_meter *m) {
  uint64_t raw[MOSS_METER_MAX_DOMAINS], sum = 0;
  for (int i = 0; i < m->ndomains; i++)
    if (!domain_u64(m, m->dir[i], "energy_uj", &raw[i], NULL, 0) || raw[i] > m->max_uj[i])
      return 0;
  for (int i = 0; i < m->ndomains; i++) {
    /* Below the previous reading: the counter wrapped at max_energy_range_uj
     * (at most once: bench reads far more often than a wrap period). */
    sum += raw[i] >= m->prev[i] ? raw[i] - m->prev[i] : m->max_uj[i] - m->prev[i] + raw[i];
    m->prev[i] = raw[i];
  }
  m->total += sum;
  return 1;
}

/* ------------------------------------------------------------------- NVML */

/* "FN: NVML's message (code)" into |why|; returns 0. */
static int nvml_refuse(void *lib, const char *fn, int ret, char *why, size_t cap) {
  nvml_error_fn err;
  const char *s;
  *(void **)&err = dlsym(lib, "nvmlErrorString");
  s = err ? err(ret) : NULL;
  return refuse(why, cap, "%s: %s (%d)", fn, s ? s : "error", ret);
}

static int nvml_open(moss_meter *m, char *why, size_t cap) {
  nvml_init_fn init;
  nvml_handle_fn handle;
  nvml_name_fn name_fn;
  unsigned long long mj = 0;
  char name[96] = "";
  int ret;
  void *lib = dlopen(NVML_LIB, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *e = dlerror();
    if (!e || strstr(e, "No such file")) return refuse(why, cap, NVML_LIB " not found");
    return refuse(why, cap, "%s", e);
  }
  *(void **)&init = dlsym(lib, "nvmlInit_v2");
  *(void **)&handle = dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
  *(void **)&m->energy_fn = dlsym(lib, "nvmlDeviceGetTotalEnergyConsumption");
  *(void **)&m->shutdown_fn = dlsym(lib, "nvmlShutdown");
  if (!init || !handle || !m->energy_fn || !m->shutdown_fn) {
    dlclose(lib);
    return refuse(why, cap, NVML_LIB " lacks nvmlInit_v2, nvmlDeviceGetHandleByIndex_v2, "
                  "nvmlDeviceGetTotalEnergyConsumption or nvmlShutdown");
  }
  if ((ret = init()) != 0) {
    nvml_refuse(lib, "nvmlInit_v2", ret, why, cap);
    dlclose(lib);
    return 0;
  }
  if ((ret = handle(0, &m->dev)) != 0)
    nvml_refuse(lib, "nvmlDeviceGetHandleByIndex_v2(0)", ret, why, cap);
  else if ((ret = m->energy_fn(m->dev, &mj)) != 0) /* before Volta: not supported */
    nvml_refuse(lib, "nvmlDeviceGetTotalEnergyConsumption", ret, why, cap);
  if (ret != 0) {
    m->shutdown_fn();
    dlclose(lib);
    return 0;
  }
  m->kind = KIND_NVML;
  m->lib = lib;
  m->ndomains = 1;
  m->prev[0] = mj;
  *(void **)&name_fn = dlsym(lib, "nvmlDeviceGetName");
  if (name_fn && name_fn(m->dev, name, sizeof name) == 0 && name[0]) {
    name[sizeof name - 1] = 0;
    snprintf(m->source, sizeof m->source, "NVML total energy, GPU 0 (%s)", name);
  } else {
    snprintf(m->source, sizeof m->source, "NVML total energy, GPU 0");
  }
  return 1;
}

static int nvml_read(moss_meter *m) {
  unsigned long long mj;
  if (m->energy_fn(m->dev, &mj) != 0 || mj < m->prev[0]) return 0;
  m->total += mj - m->prev[0];
  m->prev[0] = mj;
  return 1;
}

/* ---------------------------------------------------------------- the API */

int moss_meter_init(moss_meter *m, char *why, size_t cap) {
  const char *force = getenv("MOSS_METER");
  char rapl_why[256] = "", nvml_why[256] = "";
  int rapl = 1, nvml = 1;
  memset(m, 0, sizeof *m);
  if (why && cap) why[0] = 0;
  if (force && *force) {
    rapl = strcmp(force, "rapl") == 0;
    nvml = strcmp(force, "nvml") == 0;
    if (strcmp(force, "none") == 0) return refuse(why, cap, "MOSS_METER=none");
    if (!rapl && !nvml)
      return refuse(why, cap, "MOSS_METER=%s: not none, rapl or nvml", force);
  }
  if (rapl) {
    if (rapl_open(m, rapl_why, sizeof rapl_why)) return 1;
    memset(m, 0, sizeof *m);
  }
  if (nvml) {
    if (nvml_open(m, nvml_why, sizeof nvml_why)) return 1;
    memset(m, 0, sizeof *m);
  }
  if (rapl && nvml)
    return refuse(why, cap, "no RAPL (%s) and no NVML (%s)", rapl_why, nvml_why);
  if (rapl) return refuse(why, cap, "MOSS_METER=rapl: no RAPL (%s)", rapl_why);
  return refuse(why, cap, "MOSS_METER=nvml: no NVML (%s)", nvml_why);
}

int moss_meter_read(moss_meter *m, double *out_joules) {
  *out_joules = 0;
  if (m->kind == KIND_RAPL && rapl_read(m)) {
    *out_joules = (double)m->total * 1e-6;
    return 1;
  }
  if (m->kind == KIND_NVML && nvml_read(m)) {
    *out_joules = (double)m->total * 1e-3;
    return 1;
  }
  return 0;
}

const char *moss_meter_label(const moss_meter *m) {
  switch (m->kind) {
  case KIND_RAPL: return "measured:rapl";
  case KIND_NVML: return "measured:nvml";
  default: return "none";
  }
}

const char *moss_meter_source(const moss_meter *m) {
  return m->kind == KIND_NONE ? "none" : m->source;
}

void moss_meter_deinit(moss_meter *m) {
  if (m->kind == KIND_NVML) {
    m->shutdown_fn();
    dlclose(m->lib);
  }
  memset(m, 0, sizeof *m);
}
