/* profile.h - timing a bundle layer by layer on this machine (moss compile
 * --profile, moss run/bench --profile): every step of the plan timed by
 * libmossrt's mossrt_run_profile(), the medians matched to the layers of
 * the report, and an energy counter (meter.h) read over at least a second
 * of runs where the machine has one. */
#ifndef MOSS_PROFILE_H
#define MOSS_PROFILE_H

#include <stdio.h>

#include "../base/base.h"
#include "../cost/cost.h"
#include "mossrt.h"

typedef struct moss_profile {
  uint32_t nsteps;
  mossrt_step_desc *steps;      /* per step: what it runs (borrowed from the bundle) */
  double *step_s;               /* per step: median seconds */
  double total_s;               /* median of whole runs */
  int runs;
  /* Energy per run from a counter (measured:rapl|nvml), or not-modeled with
   * the reason; its strings live in |text|. */
  moss_cost_figure counter;
  char text[2][320];
} moss_profile;

/* Runs |s| (a session on |b|) |runs| times after one untimed run, each
 * step timed, and fills |p| (moss_profile_deinit frees it); then, where an
 * energy counter exists, runs it again for at least one second and reads
 * the counter around that window. MOSS_E_NOMEM; a failing run's error (as
 * MOSS_E_IO with libmossrt's message). */
moss_status moss_profile_run(moss_ctx *ctx, mossrt_bundle *b, mossrt_session *s,
                             const void *const *inputs, void *const *outputs, int runs,
                             moss_profile *p);
void moss_profile_deinit(moss_ctx *ctx, moss_profile *p);

/* Which step of the plan runs each of |nnodes| layers: layer i runs in
 * the |node_exec[i]|-th EXEC step (the report's "step", counting EXEC
 * steps only), on the device with id |node_device[i]|. |node_step[i]|
 * receives the index of that step in the plan. Returns 0 when the layers
 * and the plan do not match (a step missing, out of order, or on another
 * device: a report that is not the bundle's own), 1 otherwise. */
int moss_profile_map(const moss_profile *p, int nnodes, const int *node_exec,
                     const char *const *node_device, int *node_step);

/* moss compile --profile: opens the bundle at |path|, runs it on zeros
 * and puts the measurement into |r| (moss_cost_set_measured). A bundle for
 * another machine is refused with libmossrt's reason. */
moss_status moss_profile_bundle_file(moss_ctx *ctx, const char *path, int runs,
                                     moss_cost_report *r);

/* The per-layer table of `moss run/bench --profile` on |out|: each step's
 * median beside the layers it ran and their estimates from |report_json|
 * (the bundle's report; NULL or unreadable: steps only, and a line says
 * why). With |csv_path|, the same as CSV, one row per layer (a step
 * without layers: one row naming its entry): step, device, layer,
 * op_type, layers_in_step, step_measured_s, layer_estimated_s (empty when
 * not modeled). */
moss_status moss_profile_print(moss_ctx *ctx, const moss_profile *p, const char *artifact,
                               const char *report_json, size_t report_len, FILE *out,
                               const char *csv_path);

/* After a run of |s| (a session on |b|): for each step on a plugin device
 * that counts (moss_plugin_device.counters), a per-layer table in the
 * manner of Arm Vela's of what the device counted (cycles per unit,
 * utilization of the array, DRAM bytes, SRAM peak, energy: labelled
 * platform-model), beside each layer's estimate from |report_json| (the
 * bundle's report, matched by layer name and device) and their ratios.
 * Prints nothing when no step has counters. MOSS_E_IO (a failing
 * counters()), MOSS_E_NOMEM. */
moss_status moss_profile_counters(moss_ctx *ctx, mossrt_bundle *b, mossrt_session *s,
                                  const char *report_json, size_t report_len, FILE *out);

#endif
