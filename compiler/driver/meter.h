/* meter.h - the hardware energy counters `moss bench --profile` reads
 * around its timed window (meter.c): RAPL package energy through the Linux
 * powercap sysfs, else the GPU's total energy through NVML. A reading is
 * cumulative joules since moss_meter_init(); the energy of a window is the
 * difference of two readings, labelled moss_meter_label().
 *
 * Environment:
 *   MOSS_POWERCAP_DIR  the powercap sysfs root searched for RAPL domains
 *                      (default /sys/class/powercap); tests point it at a fake tree.
 *   MOSS_METER         none | rapl | nvml: force a choice (none: no meter at all);
 *                      unset or empty: RAPL first, then NVML.
 *
 * Not thread-safe: a meter is used by one thread at a time. Separate meters are
 * independent (NVML counts its own initializations). */
#ifndef MOSS_DRIVER_METER_H
#define MOSS_DRIVER_METER_H

#include <stddef.h>
#include <stdint.h>

#define MOSS_METER_MAX_DOMAINS 32

/* Caller-provided storage; the fields are meter.c's. No heap allocation, no
 * file descriptor held open (RAPL files are opened at every read). */
typedef struct moss_meter {
  int kind;                 /* 0 none, 1 RAPL, 2 NVML */
  int ndomains;             /* RAPL: package domains counted */
  char root[512];           /* RAPL: the powercap root */
  char dir[MOSS_METER_MAX_DOMAINS][24];   /* RAPL: "intel-rapl:N", by N */
  uint64_t max_uj[MOSS_METER_MAX_DOMAINS]; /* RAPL: max_energy_range_uj (the wrap) */
  uint64_t prev[MOSS_METER_MAX_DOMAINS];   /* previous raw reading (uJ; NVML: mJ in [0]) */
  uint64_t total;           /* accumulated since init: uJ (RAPL) or mJ (NVML) */
  void *lib;                /* NVML: the dlopen handle */
  void *dev;                /* NVML: the nvmlDevice_t of GPU 0 */
  int (*energy_fn)(void *dev, unsigned long long *mj); /* nvmlDeviceGetTotalEnergyConsumption */
  int (*shutdown_fn)(void); /* NVML: nvmlShutdown */
  char source[512];         /* moss_meter_source() */
} moss_meter;

/* Finds an energy counter on this machine: RAPL first (the top-level
 * "package" domains intel-rapl:N of MOSS_POWERCAP_DIR, never the subdomains
 * intel-rapl:N:M nor a top-level "psys", so nothing is counted twice), then
 * NVML (libnvidia-ml.so.1, GPU 0, Volta and later). A RAPL domain whose
 * energy_uj or max_energy_range_uj cannot be read, or holds anything but a
 * decimal number (energy_uj <= max_energy_range_uj), is skipped; since Linux
 * 5.10 energy_uj is root-only. Returns 1 and fills |m| (takes the first
 * reading, the origin) when a counter is readable; 0 otherwise, with a
 * one-line reason in |why| (truncated to |cap| bytes; |why| may be NULL), e.g.
 * "no RAPL (/sys/class/powercap: No such file or directory) and no NVML
 * (libnvidia-ml.so.1 not found)". After 0, |m| needs no moss_meter_deinit
 * (calling it is harmless). */
int moss_meter_init(moss_meter *m, char *why, size_t cap);

/* Sets |*out_joules| to the energy in joules since moss_meter_init(), summed
 * over the domains (all CPU packages, or GPU 0), counting a RAPL counter's
 * wrap-around between consecutive reads (at max_energy_range_uj; read at
 * least once per wrap period, minutes at full power). Returns 1 on success; 0
 * on a failed read (a file gone or garbled, an NVML error, a counter gone
 * backwards), leaving |m| as it was and |*out_joules| 0. */
int moss_meter_read(moss_meter *m, double *out_joules);

/* "measured:rapl" or "measured:nvml"; "none" for a meter that is not open.
 * Static storage. */
const char *moss_meter_label(const moss_meter *m);

/* What is measured, e.g. "RAPL package energy, 2 domains (intel-rapl:0,
 * intel-rapl:1)" or "NVML total energy, GPU 0 (NVIDIA H200)"; "none" for a
 * meter that is not open. Borrowed from |m|. */
const char *moss_meter_source(const moss_meter *m);

/* Releases NVML (nvmlShutdown, dlclose) and clears |m|; nothing for RAPL. */
void moss_meter_deinit(moss_meter *m);

#endif
