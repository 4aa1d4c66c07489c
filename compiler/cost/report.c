/* report.c - writes a cost report (cost.c) as JSON, CSV or one
 * self-contained HTML page. The JSON is what the bundle carries and what
 * tools read: its keys come in a fixed order, documented in docs/report.md.
 * The CSV has one row per node, per transfer, a total row and a baseline row,
 * with CodeCarbon's column names where the meaning is the same. The HTML
 * needs no network and no JavaScript: tables and an inline SVG bar chart of
 * the energy per layer; it is also well-formed XML, so tests can parse it.
 * A report with a measurement (moss_cost_set_measured) shows it beside the
 * estimate in all three; without one, the JSON's "measured" is null and
 * the CSV's measured cells are empty. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ops/sparse.h"
#include "../base/json.h"
#include "cost.h"

#define NM "not-modeled"

static int is_nm(const moss_cost_figure *f) { return !f->label || !strcmp(f->label, NM); }

static void put(moss_buf *b, const char *s) { moss_buf_put(b, s, strlen(s)); }

/* 15 significant digits: more than any figure is worth, and short. */
static void num(char *buf, size_t cap, double v) { snprintf(buf, cap, "%.15g", v); }

/* ---------------------------------------------------------------- JSON */


static void jnum(moss_buf *b, double v) {
  char t[40];
  if (!isfinite(v)) {
    moss_buf_put(b, "null", 4);
    return;
  }
  num(t, sizeof t, v);
  moss_buf_printf(b, "%s", t);
}

static void jkey(moss_buf *b, const char *k, int *first) {
  if (!*first) moss_buf_put(b, ", ", 2);
  *first = 0;
  moss_json_put_str(b, k);
  moss_buf_put(b, ": ", 2);
}

static void jkv_num(moss_buf *b, const char *k, double v, int *first) {
  jkey(b, k, first);
  jnum(b, v);
}

static void jkv_str(moss_buf *b, const char *k, const char *v, int *first) {
  jkey(b, k, first);
  moss_json_put_str(b, v);
}

/* "sparse_format": "csr", "sparse_costs": {"dense": 64, "csr": 13, ...,
 * "2:4": "-"} ("-": the weight cannot take the format), "sparse_rule":
 * "tile" (whose figures priced them); all null for a node without a
 * weight the sparse pass looks at (docs/sparse.md). */
static void jsparse(moss_buf *b, const moss_cost_node *n, int *first) {
  int f, h = 1;
  if (!n->sparse_layer) {
    jkey(b, "sparse_format", first);
    moss_buf_put(b, "null", 4);
    jkey(b, "sparse_costs", first);
    moss_buf_put(b, "null", 4);
    jkey(b, "sparse_rule", first);
    moss_buf_put(b, "null", 4);
    return;
  }
  jkv_str(b, "sparse_format", n->sparse_format, first);
  jkey(b, "sparse_costs", first);
  moss_buf_put(b, "{", 1);
  for (f = 0; f < MOSS_COST_SPARSE_FORMATS; f++) {
    if (n->sparse_cost[f] < 0) jkv_str(b, moss_sparse_format_name(f), "-", &h);
    else jkv_num(b, moss_sparse_format_name(f), n->sparse_cost[f], &h);
  }
  moss_buf_put(b, "}", 1);
  jkv_str(b, "sparse_rule", n->sparse_rule ? n->sparse_rule : "scalar", first);
}

/* {"value": 1.5e-06, "label": "op-model", "partial": false, "source": "..."};
 * value is null when not-modeled. */
static void jfig(moss_buf *b, const char *k, const moss_cost_figure *f, int *first) {
  jkey(b, k, first);
  moss_buf_put(b, "{\"value\": ", 10);
  if (is_nm(f)) moss_buf_put(b, "null", 4);
  else jnum(b, f->value);
  moss_buf_put(b, ", \"label\": ", 11);
  moss_json_put_str(b, f->label);
  moss_buf_printf(b, ", \"partial\": %s, \"source\": ", f->partial ? "true" : "false");
  moss_json_put_str(b, f->source);
  moss_buf_put(b, "}", 1);
}

static void jtotals(moss_buf *b, const char *k, const moss_cost_totals *t, int *outer) {
  int f = 1;
  jkey(b, k, outer);
  moss_buf_put(b, "{", 1);
  jkv_num(b, "macs_dense", t->macs_dense, &f);
  jkv_num(b, "macs_effective", t->macs_effective, &f);
  jkv_num(b, "ops", t->ops, &f);
  jkv_num(b, "activation_bytes", t->act_bytes, &f);
  jkv_num(b, "weight_read_bytes", t->weight_read_bytes, &f);
  jkv_num(b, "arena_bytes", (double)t->arena_bytes, &f);
  jkv_num(b, "weight_bytes", (double)t->weight_bytes, &f);
  jkv_num(b, "cycles", t->cycles, &f);
  jfig(b, "time_s", &t->time_s, &f);
  jfig(b, "compute_j", &t->compute_j, &f);
  jfig(b, "memory_j", &t->mem_j, &f);
  jfig(b, "static_j", &t->static_j, &f);
  jfig(b, "transfer_j", &t->transfer_j, &f);
  jfig(b, "energy_j", &t->energy_j, &f);
  jfig(b, "platform_j", &t->platform_j, &f);
  jkey(b, "energy_kwh", &f);
  if (is_nm(&t->energy_j)) moss_buf_put(b, "null", 4);
  else jnum(b, t->kwh);
  jfig(b, "carbon_g", &t->carbon_g, &f);
  jfig(b, "carbon_g_per_million", &t->carbon_g_per_million, &f);
  jfig(b, "platform_carbon_g", &t->platform_carbon_g, &f);
  moss_buf_put(b, "}", 1);
}

/* "measured": what a profile of the artifact on this machine measured
 * (moss compile --profile), beside the estimates; null without one, so a
 * reader never takes an unset figure for a measurement. */
static void jmeasured(moss_buf *b, const moss_cost_report *r, int *outer) {
  int f = 1;
  jkey(b, "measured", outer);
  if (!r->measured) {
    moss_buf_put(b, "null", 4);
    return;
  }
  moss_buf_put(b, "{", 1);
  jkv_num(b, "runs", r->measured_runs, &f);
  jkv_str(b, "how", r->measured_how, &f);
  jfig(b, "time_s", &r->measured_time_s, &f);
  jfig(b, "platform_j", &r->measured_platform_j, &f);
  jfig(b, "platform_carbon_g", &r->measured_platform_carbon_g, &f);
  jfig(b, "energy_j", &r->measured_energy_j, &f);
  moss_buf_put(b, "}", 1);
}

static const char *level_name(const moss_cost_report *r, int dev, int k) {
  if (k < 0 || k >= r->devices[dev].nlevels) return "";
  return r->devices[dev].level_name[k];
}

moss_status moss_report_json(moss_ctx *ctx, const moss_cost_report *r, moss_buf *b) {
  int f = 1, i, k;
  moss_buf_put(b, "{", 1);
  jkv_str(b, "format", "moss-cost-report", &f);
  jkv_num(b, "version", 1, &f);
  jkv_str(b, "model", r->model, &f);
  jkv_str(b, "target", r->target, &f);
  jkv_str(b, "target_description", r->target_description, &f);
  jkv_str(b, "run_id", r->run_id, &f);
  jkey(b, "grid", &f);
  moss_buf_put(b, "{\"g_per_kwh\": ", 14);
  jnum(b, r->grid_g_per_kwh);
  moss_buf_printf(b, ", \"fallback\": %s, \"source\": ", r->grid_fallback ? "true" : "false");
  moss_json_put_str(b, r->grid_fallback ? "IEA 2019 world average (CodeCarbon's fallback); give "
                             "--grid-intensity"
                           : "--grid-intensity");
  moss_buf_put(b, "}", 1);

  jkey(b, "devices", &f);
  moss_buf_put(b, "[", 1);
  for (i = 0; i < r->ndevices; i++) {
    const moss_cost_device *d = &r->devices[i];
    int g = 1;
    moss_buf_put(b, i ? ",\n  {" : "\n  {", i ? 5 : 4);
    jkv_num(b, "index", i, &g);
    jkv_str(b, "id", d->id, &g);
    jkv_str(b, "kind", d->kind, &g);
    jkv_str(b, "model", d->model, &g);
    jkv_num(b, "threads", d->threads, &g);
    jkey(b, "power_shared", &g);
    if (d->power_shared) moss_json_put_str(b, d->power_shared);
    else moss_buf_put(b, "null", 4);
    jkey(b, "levels", &g);
    moss_buf_put(b, "[", 1);
    for (k = 0; k < d->nlevels; k++) {
      int h = 1;
      moss_buf_put(b, k ? ", {" : "{", k ? 3 : 1);
      jkv_str(b, "name", d->level_name[k], &h);
      jkv_num(b, "bytes", d->bytes[k], &h);
      jfig(b, "energy_j", &d->mem_j[k], &h);
      moss_buf_put(b, "}", 1);
    }
    moss_buf_put(b, "]", 1);
    jfig(b, "compute_j", &d->compute_j, &g);
    jfig(b, "static_j", &d->static_j, &g);
    jfig(b, "energy_j", &d->energy_j, &g);
    jfig(b, "busy_s", &d->busy_s, &g);
    jfig(b, "platform_j", &d->platform_j, &g);
    if (r->measured) {
      jfig(b, "measured_busy_s", &d->measured_busy_s, &g);
      jfig(b, "measured_platform_j", &d->measured_platform_j, &g);
    }
    moss_buf_put(b, "}", 1);
  }
  moss_buf_put(b, "]", 1);

  jkey(b, "nodes", &f);
  moss_buf_put(b, "[", 1);
  for (i = 0; i < r->nnodes; i++) {
    const moss_cost_node *n = &r->nodes[i];
    const moss_cost_device *d = &r->devices[n->device];
    int g = 1;
    moss_buf_put(b, i ? ",\n  {" : "\n  {", i ? 5 : 4);
    jkv_str(b, "name", n->name, &g);
    jkv_str(b, "op_type", n->op_type, &g);
    jkv_str(b, "device", d->id, &g);
    jkey(b, "step", &g); /* a bundle's EXEC step (0, 1, ...) that runs it; null: none */
    if (n->step >= 0) moss_buf_printf(b, "%d", n->step);
    else put(b, "null");
    jkv_str(b, "dtype", n->dtype, &g);
    jkey(b, "mac_op", &g);
    moss_buf_printf(b, "%s", n->mac_op ? "true" : "false");
    jkv_num(b, "macs_dense", n->macs_dense, &g);
    jkv_num(b, "macs_effective", n->macs_effective, &g);
    jkv_num(b, "macs_timed", n->macs_timed, &g);
    jkv_num(b, "weight_density", n->weight_density, &g);
    jsparse(b, n, &g);
    jkv_num(b, "ops", n->ops, &g);
    jkv_num(b, "activation_bytes", n->act_bytes, &g);
    jkv_num(b, "weight_bytes", n->weight_bytes, &g);
    jkv_str(b, "activation_level", level_name(r, n->device, n->act_level), &g);
    jkv_str(b, "weight_level", level_name(r, n->device, n->weight_level), &g);
    jkey(b, "levels", &g);
    moss_buf_put(b, "[", 1);
    for (k = 0; k < d->nlevels; k++) {
      int h = 1;
      moss_buf_put(b, k ? ", {" : "{", k ? 3 : 1);
      jkv_str(b, "name", d->level_name[k], &h);
      jkv_num(b, "bytes", n->bytes[k], &h);
      jfig(b, "cycles", &n->mem_cycles[k], &h);
      jfig(b, "energy_j", &n->mem_j[k], &h);
      moss_buf_put(b, "}", 1);
    }
    moss_buf_put(b, "]", 1);
    jfig(b, "compute_cycles", &n->compute_cycles, &g);
    jkv_num(b, "cycles", n->cycles, &g);
    jfig(b, "time_s", &n->time_s, &g);
    jfig(b, "mac_pj", &n->mac_pj, &g);
    jfig(b, "compute_j", &n->compute_j, &g);
    jfig(b, "static_j", &n->static_j, &g);
    jfig(b, "energy_j", &n->energy_j, &g);
    if (r->measured) jfig(b, "measured_time_s", &n->measured_s, &g);
    moss_buf_put(b, "}", 1);
  }
  moss_buf_put(b, "]", 1);

  jkey(b, "transfers", &f);
  moss_buf_put(b, "[", 1);
  for (i = 0; i < r->ntransfers; i++) {
    const moss_cost_transfer *t = &r->transfers[i];
    int g = 1;
    moss_buf_put(b, i ? ",\n  {" : "\n  {", i ? 5 : 4);
    jkv_str(b, "value", t->value, &g);
    jkv_str(b, "from", r->devices[t->from].id, &g);
    jkv_str(b, "to", r->devices[t->to].id, &g);
    jkv_num(b, "bytes", t->bytes, &g);
    jfig(b, "time_s", &t->time_s, &g);
    jfig(b, "energy_j", &t->energy_j, &g);
    moss_buf_put(b, "}", 1);
  }
  moss_buf_put(b, "],\n", 3);
  f = 1; /* the separator is already written */
  jtotals(b, "total", &r->total, &f);
  moss_buf_put(b, ",\n", 2);
  f = 1;
  jtotals(b, "baseline_fp32_dense", &r->baseline, &f);
  moss_buf_put(b, ",\n", 2);
  f = 1;
  jmeasured(b, r, &f);
  moss_buf_put(b, "}\n", 2);
  if (b->failed) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "JSON report");
  return MOSS_OK;
}

/* ----------------------------------------------------------------- CSV */

/* The columns, in order. CodeCarbon's names (emissions.csv) where the
 * meaning is the same; the rest are moss's own (docs/report.md). */
static const char *const csv_columns[] = {
    "project_name", "run_id", "row", "name", "op_type", "device", "device_kind", "dtype",
    "macs_dense", "macs_effective", "weight_density", "ops", "activation_bytes", "weight_bytes",
    "activation_level", "weight_level", "arena_bytes", "weight_total_bytes", "cycles", "duration",
    "duration_lower_bound", "time_label", "compute_energy_j", "memory_energy_j",
    "static_energy_j", "energy_j", "compute_label", "memory_label", "static_label",
    "energy_label", "energy_consumed", "energy_consumed_lower_bound", "emissions",
    "emissions_lower_bound", "emissions_rate", "cpu_energy", "gpu_energy", "npu_energy",
    "platform_energy_j", "platform_label", "cpu_model", "gpu_model", "grid_intensity",
    "grid_fallback", "sparse_format", "sparse_cost_dense", "sparse_cost_csr",
    "sparse_cost_block4x1", "sparse_cost_block1x4", "sparse_cost_2_4", "sparse_cost_columns",
    "measured_duration", "measured_energy_consumed", "measured_label"};
#define NCOLS (sizeof csv_columns / sizeof csv_columns[0])

static void cstr(moss_buf *b, const char *s) {
  if (!s) s = "";
  if (strpbrk(s, ",\"\n\r")) {
    moss_buf_put(b, "\"", 1);
    for (; *s; s++) {
      if (*s == '"') moss_buf_put(b, "\"", 1);
      moss_buf_put(b, s, 1);
    }
    moss_buf_put(b, "\"", 1);
  } else moss_buf_printf(b, "%s", s);
}

static void cnum(moss_buf *b, double v) {
  char t[40];
  if (!isfinite(v)) return;
  num(t, sizeof t, v);
  moss_buf_printf(b, "%s", t);
}

static void cfig(moss_buf *b, const moss_cost_figure *f) {
  if (!is_nm(f)) cnum(b, f->value);
}

static const char *flabel(const moss_cost_figure *f, char *buf, size_t cap) {
  snprintf(buf, cap, "%s%s", f->label ? f->label : NM, f->partial ? " (partial)" : "");
  return buf;
}

/* A figure with every part modeled: the only kind CodeCarbon's columns
 * (duration, energy_consumed, emissions, emissions_rate, cpu/gpu_energy)
 * carry, since a tool that reads them takes them as the whole. */
static int complete(const moss_cost_figure *f) { return f && !is_nm(f) && !f->partial; }
/* A lower bound: some parts modeled, some not. */
static int lower_bound(const moss_cost_figure *f) { return f && !is_nm(f) && f->partial; }

/* One CSV row; fields not known for the row are empty. */
typedef struct csv_row {
  const char *row, *name, *op_type, *device, *kind, *dtype, *act_level, *weight_level;
  double macs_dense, macs_effective, density, ops, act_bytes, weight_bytes, cycles;
  double arena, weights;      /* total rows only; < 0: empty */
  int have_counts;
  const moss_cost_figure *time, *compute, *memory, *stat, *energy, *platform;
  moss_cost_figure memory_sum;
  double cpu_j, gpu_j, npu_j; /* complete energy by device kind; < 0: empty (not known) */
  const moss_cost_node *node; /* node rows: the sparse format columns */
  /* With a measurement: the measured time (node and total rows) and the
   * platform energy from measured time (total row); NULL: empty cells. */
  const moss_cost_figure *measured_time, *measured_energy;
} csv_row;

static void csv_put(moss_buf *b, const moss_cost_report *r, const csv_row *w) {
  char l[96];
  int modeled = w->energy && !is_nm(w->energy), whole = complete(w->energy);
  double kwh = modeled ? w->energy->value / 3.6e6 : 0, kg = kwh * r->grid_g_per_kwh / 1000;
  const char *cpu_model = "", *gpu_model = "";
  int i;
  for (i = r->ndevices - 1; i >= 0; i--) {
    if (!strcmp(r->devices[i].kind, "cpu")) cpu_model = r->devices[i].model;
    if (!strcmp(r->devices[i].kind, "gpu")) gpu_model = r->devices[i].model;
  }
  cstr(b, r->model), moss_buf_put(b, ",", 1);
  cstr(b, r->run_id), moss_buf_put(b, ",", 1);
  cstr(b, w->row), moss_buf_put(b, ",", 1);
  cstr(b, w->name), moss_buf_put(b, ",", 1);
  cstr(b, w->op_type), moss_buf_put(b, ",", 1);
  cstr(b, w->device), moss_buf_put(b, ",", 1);
  cstr(b, w->kind), moss_buf_put(b, ",", 1);
  cstr(b, w->dtype), moss_buf_put(b, ",", 1);
  if (w->have_counts) {
    cnum(b, w->macs_dense), moss_buf_put(b, ",", 1);
    cnum(b, w->macs_effective), moss_buf_put(b, ",", 1);
    if (w->density >= 0) cnum(b, w->density);
    moss_buf_put(b, ",", 1);
    cnum(b, w->ops), moss_buf_put(b, ",", 1);
    cnum(b, w->act_bytes), moss_buf_put(b, ",", 1);
    cnum(b, w->weight_bytes), moss_buf_put(b, ",", 1);
  } else {
    moss_buf_put(b, ",,,,", 4);
    if (w->act_bytes >= 0) cnum(b, w->act_bytes); /* a transfer's bytes */
    moss_buf_put(b, ",,", 2);
  }
  cstr(b, w->act_level), moss_buf_put(b, ",", 1);
  cstr(b, w->weight_level), moss_buf_put(b, ",", 1);
  if (w->arena >= 0) cnum(b, w->arena);
  moss_buf_put(b, ",", 1);
  if (w->weights >= 0) cnum(b, w->weights);
  moss_buf_put(b, ",", 1);
  /* Cycles come with the time: none without a clock (not-modeled), a lower
   * bound where the time is one (time_label says partial). */
  if (w->have_counts && w->time && !is_nm(w->time)) cnum(b, w->cycles);
  moss_buf_put(b, ",", 1);
  if (complete(w->time)) cfig(b, w->time);
  moss_buf_put(b, ",", 1);
  if (lower_bound(w->time)) cfig(b, w->time);
  moss_buf_put(b, ",", 1);
  if (w->time) cstr(b, flabel(w->time, l, sizeof l));
  moss_buf_put(b, ",", 1);
  if (w->compute) cfig(b, w->compute);
  moss_buf_put(b, ",", 1);
  if (w->memory) cfig(b, w->memory);
  moss_buf_put(b, ",", 1);
  if (w->stat) cfig(b, w->stat);
  moss_buf_put(b, ",", 1);
  if (w->energy) cfig(b, w->energy);
  moss_buf_put(b, ",", 1);
  if (w->compute) cstr(b, flabel(w->compute, l, sizeof l));
  moss_buf_put(b, ",", 1);
  if (w->memory) cstr(b, flabel(w->memory, l, sizeof l));
  moss_buf_put(b, ",", 1);
  if (w->stat) cstr(b, flabel(w->stat, l, sizeof l));
  moss_buf_put(b, ",", 1);
  if (w->energy) cstr(b, flabel(w->energy, l, sizeof l));
  moss_buf_put(b, ",", 1);
  /* energy_consumed / emissions: complete figures only; a partial one goes
   * to the _lower_bound column beside it, so no column mixes the two. */
  if (whole) cnum(b, kwh);
  moss_buf_put(b, ",", 1);
  if (modeled && !whole) cnum(b, kwh);
  moss_buf_put(b, ",", 1);
  if (whole) cnum(b, kg);
  moss_buf_put(b, ",", 1);
  if (modeled && !whole) cnum(b, kg);
  moss_buf_put(b, ",", 1);
  if (whole && complete(w->time) && w->time->value > 0) cnum(b, kg / w->time->value);
  moss_buf_put(b, ",", 1);
  if (w->cpu_j >= 0) cnum(b, w->cpu_j / 3.6e6);
  moss_buf_put(b, ",", 1);
  if (w->gpu_j >= 0) cnum(b, w->gpu_j / 3.6e6);
  moss_buf_put(b, ",", 1);
  if (w->npu_j >= 0) cnum(b, w->npu_j / 3.6e6);
  moss_buf_put(b, ",", 1);
  if (w->platform) cfig(b, w->platform);
  moss_buf_put(b, ",", 1);
  if (w->platform) cstr(b, flabel(w->platform, l, sizeof l));
  moss_buf_put(b, ",", 1);
  cstr(b, cpu_model), moss_buf_put(b, ",", 1);
  cstr(b, gpu_model), moss_buf_put(b, ",", 1);
  cnum(b, r->grid_g_per_kwh), moss_buf_put(b, ",", 1);
  moss_buf_printf(b, "%d", r->grid_fallback);
  /* The weight format and the cost rule's estimates: empty off the
   * layers the sparse pass looks at, "-" where a format is impossible. */
  if (w->node && w->node->sparse_layer) {
    moss_buf_put(b, ",", 1);
    cstr(b, w->node->sparse_format);
    for (i = 0; i < MOSS_COST_SPARSE_FORMATS; i++) {
      moss_buf_put(b, ",", 1);
      if (w->node->sparse_cost[i] < 0) moss_buf_put(b, "-", 1);
      else cnum(b, w->node->sparse_cost[i]);
    }
  } else {
    for (i = 0; i <= MOSS_COST_SPARSE_FORMATS; i++) moss_buf_put(b, ",", 1);
  }
  /* The measurement beside the estimate: seconds, and kWh like
   * energy_consumed, complete figures only (a partial measured platform
   * energy, some device without power figures, stays in the JSON). */
  moss_buf_put(b, ",", 1);
  if (w->measured_time) cfig(b, w->measured_time);
  moss_buf_put(b, ",", 1);
  if (complete(w->measured_energy)) cnum(b, w->measured_energy->value / 3.6e6);
  moss_buf_put(b, ",", 1);
  if (w->measured_time) cstr(b, flabel(w->measured_time, l, sizeof l));
  moss_buf_put(b, "\n", 1);
}

/* The op-model sum of a node's memory levels. */
static moss_cost_figure mem_sum(const moss_cost_figure *lv, int n) {
  moss_cost_figure s;
  int k, modeled = 0, missing = 0;
  memset(&s, 0, sizeof s);
  s.label = NM;
  s.source = "bytes x pJ/byte per level";
  for (k = 0; k < n; k++) {
    if (is_nm(&lv[k])) missing = 1;
    else s.value += lv[k].value, modeled = 1;
    if (lv[k].partial) missing = 1;
  }
  if (modeled || n == 0) s.label = "op-model";
  s.partial = modeled && missing;
  return s;
}

/* A node's energy in its kind's column (-1, an empty cell, unless it is
 * complete); the other kinds spent exactly 0 on it. */
static void by_kind(const char *kind, const moss_cost_figure *e, csv_row *w) {
  double j = complete(e) ? e->value : -1;
  w->cpu_j = !strcmp(kind, "cpu") ? j : 0;
  w->gpu_j = !strcmp(kind, "gpu") ? j : 0;
  w->npu_j = !strcmp(kind, "npu") ? j : 0;
}

/* Adds device energy |e| into a kind's column; one device whose energy is
 * not complete leaves the column empty. */
static void add_kind(double *col, const moss_cost_figure *e) {
  if (*col < 0) return;
  *col = complete(e) ? *col + e->value : -1;
}

static void total_row(const moss_cost_report *r, const moss_cost_totals *t, const char *row,
                      csv_row *w, int baseline) {
  int i;
  memset(w, 0, sizeof *w);
  w->row = row;
  w->name = row;
  w->have_counts = 1;
  w->macs_dense = t->macs_dense;
  w->macs_effective = t->macs_effective;
  w->density = t->macs_dense > 0 ? t->macs_effective / t->macs_dense : -1;
  w->ops = t->ops;
  w->act_bytes = t->act_bytes;
  w->weight_bytes = t->weight_read_bytes;
  w->arena = (double)t->arena_bytes;
  w->weights = (double)t->weight_bytes;
  w->cycles = t->cycles;
  w->time = &t->time_s;
  w->compute = &t->compute_j;
  w->memory = &t->mem_j;
  w->stat = &t->static_j;
  w->energy = &t->energy_j;
  w->platform = &t->platform_j;
  w->cpu_j = w->gpu_j = w->npu_j = baseline ? -1 : 0;
  for (i = 0; i < r->ndevices && !baseline; i++) {
    const moss_cost_device *d = &r->devices[i];
    if (!strcmp(d->kind, "cpu")) add_kind(&w->cpu_j, &d->energy_j);
    if (!strcmp(d->kind, "gpu")) add_kind(&w->gpu_j, &d->energy_j);
    if (!strcmp(d->kind, "npu")) add_kind(&w->npu_j, &d->energy_j);
  }
}

moss_status moss_report_csv(moss_ctx *ctx, const moss_cost_report *r, moss_buf *b) {
  size_t c;
  int i;
  csv_row w;
  for (c = 0; c < NCOLS; c++) moss_buf_printf(b, "%s%s", c ? "," : "", csv_columns[c]);
  moss_buf_put(b, "\n", 1);
  for (i = 0; i < r->nnodes; i++) {
    const moss_cost_node *n = &r->nodes[i];
    const moss_cost_device *d = &r->devices[n->device];
    memset(&w, 0, sizeof w);
    w.arena = w.weights = -1;
    w.row = "node";
    w.name = n->name;
    w.op_type = n->op_type;
    w.device = d->id;
    w.kind = d->kind;
    w.dtype = n->dtype;
    w.act_level = level_name(r, n->device, n->act_level);
    w.weight_level = level_name(r, n->device, n->weight_level);
    w.have_counts = 1;
    w.macs_dense = n->macs_dense;
    w.macs_effective = n->macs_effective;
    w.density = n->weight_density;
    w.ops = n->ops;
    w.act_bytes = n->act_bytes;
    w.weight_bytes = n->weight_bytes;
    w.cycles = n->cycles;
    w.time = &n->time_s;
    w.compute = &n->compute_j;
    w.memory_sum = mem_sum(n->mem_j, d->nlevels);
    w.memory = &w.memory_sum;
    w.stat = &n->static_j;
    w.energy = &n->energy_j;
    w.node = n;
    if (r->measured) w.measured_time = &n->measured_s;
    by_kind(d->kind, &n->energy_j, &w);
    csv_put(b, r, &w);
  }
  for (i = 0; i < r->ntransfers; i++) {
    const moss_cost_transfer *t = &r->transfers[i];
    char dev[160];
    snprintf(dev, sizeof dev, "%s->%s", r->devices[t->from].id, r->devices[t->to].id);
    memset(&w, 0, sizeof w);
    w.arena = w.weights = -1;
    w.row = "transfer";
    w.name = t->value;
    w.device = dev;
    w.act_bytes = t->bytes;
    w.time = &t->time_s;
    w.memory = &t->energy_j;
    w.energy = &t->energy_j;
    w.cpu_j = w.gpu_j = w.npu_j = -1;
    csv_put(b, r, &w);
  }
  total_row(r, &r->total, "total", &w, 0);
  if (r->measured) {
    w.measured_time = &r->measured_time_s;
    w.measured_energy = &r->measured_platform_j;
  }
  csv_put(b, r, &w);
  total_row(r, &r->baseline, "baseline_fp32_dense", &w, 1);
  csv_put(b, r, &w);
  if (b->failed) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "CSV report");
  return MOSS_OK;
}

/* ---------------------------------------------------------------- HTML */

/* The page fits a 1200-pixel window (tests/e2e/test_report_browser.py
 * renders it in Chromium and checks): numbers in three digits with the exact
 * value in the cell's title, long node names wrap at their separators,
 * headers are abbreviations with a title, and each figure's label and source
 * sit in its title rather than in the cell. A partial figure (a lower bound)
 * reads "≥" on an amber cell, a not-modeled one "n/m" on a red cell; the
 * legend above the tables says so. Below 1000 pixels the node table scrolls
 * inside its own box instead of widening the page. */

#define GE "\xe2\x89\xa5"   /* ≥ */
#define MUL "\xc3\x97"      /* × */
#define MICRO "\xc2\xb5"    /* µ */

static void hstr(moss_buf *b, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '&': moss_buf_put(b, "&amp;", 5); break;
    case '<': moss_buf_put(b, "&lt;", 4); break;
    case '>': moss_buf_put(b, "&gt;", 4); break;
    case '"': moss_buf_put(b, "&quot;", 6); break;
    case '\'': moss_buf_put(b, "&#39;", 5); break;
    default: moss_buf_put(b, s, 1);
    }
  }
}

/* A node name with a break opportunity after each separator, so a long
 * name wraps inside its cell instead of widening the table. */
static void hname(moss_buf *b, const char *s) {
  for (; s && *s; s++) {
    char c[2] = {*s, 0};
    hstr(b, c);
    if (strchr("/._:-", *s) && s[1]) put(b, "<wbr/>");
  }
}

/* |v| in three significant digits with an SI prefix: "1.08 µs", "134 nJ";
 * |up_only| (counts, bytes) never goes below the unit: "512", "4.61 k". */
static void si3(char *buf, size_t cap, double v, const char *unit, int up_only) {
  static const char *pre[] = {"p", "n", MICRO, "m", "", "k", "M", "G", "T"};
  int e = 4;
  double a = fabs(v);
  char num3[40];
  if (!isfinite(v)) {
    snprintf(buf, cap, "?");
    return;
  }
  if (v != 0 && !up_only)
    while (a < 1 && e > 0) a *= 1000, v *= 1000, e--;
  while (a >= 1000 && e < 8) a /= 1000, v /= 1000, e++;
  snprintf(num3, sizeof num3, "%.3g", v);
  if (fabs(atof(num3)) >= 1000 && e < 8) v /= 1000, e++; /* 999.7 rounds up to 1.00 k */
  snprintf(num3, sizeof num3, fabs(v) >= 1000 ? "%.0f" : "%.3g", v);
  snprintf(buf, cap, "%s%s%s%s", num3, *unit || e != 4 ? " " : "", e != 4 ? pre[e] : "", unit);
}

/* A count cell: three digits, the exact number in the title. */
static void hcount(moss_buf *b, double v, const char *unit) {
  char t[48];
  si3(t, sizeof t, v, unit, 1);
  moss_buf_printf(b, "<td title=\"%.15g%s%s\">%s</td>", v, *unit ? " " : "", unit, t);
}

/* A bytes cell: "2.3 kB dtcm", the level it was costed at in small type
 * (none for 0 bytes), the exact count in the title. */
static void hbytes(moss_buf *b, double v, const char *level) {
  char t[48];
  si3(t, sizeof t, v, "B", 1);
  moss_buf_printf(b, "<td title=\"%.15g B\">%s", v, t);
  if (v > 0 && level && *level) {
    put(b, " <span class=\"lv\">");
    hstr(b, level);
    put(b, "</span>");
  }
  put(b, "</td>");
}

/* The title of a figure: its label, whether it is partial, its source. */
static void htitle(moss_buf *b, const moss_cost_figure *f) {
  moss_buf_put(b, " title=\"", 8);
  if (is_nm(f)) put(b, "not-modeled");
  else {
    char t[48];
    hstr(b, f->label);
    if (f->partial) put(b, ", partial (a lower bound: some parts are not-modeled)");
    num(t, sizeof t, f->value);
    moss_buf_printf(b, "; %s", t);
  }
  if (f->source && *f->source) {
    put(b, ": ");
    hstr(b, f->source);
  }
  moss_buf_put(b, "\"", 1);
}

/* A figure's cell: "134 nJ"; "≥134 nJ" (class p) when partial; "n/m"
 * (class nm) when not-modeled. |label| 1 adds the label in small type. */
static void hfig(moss_buf *b, const moss_cost_figure *f, const char *unit, int label) {
  char t[48];
  moss_buf_put(b, "<td", 3);
  if (is_nm(f)) put(b, " class=\"nm\"");
  else if (f->partial) put(b, " class=\"p\"");
  htitle(b, f);
  moss_buf_put(b, ">", 1);
  if (is_nm(f)) put(b, label ? "not-modeled" : "n/m");
  else {
    si3(t, sizeof t, f->value, unit, 0);
    moss_buf_printf(b, "%s%s", f->partial ? GE : "", t);
    if (label) {
      put(b, " <span class=\"lb\">");
      hstr(b, f->label);
      if (f->partial) put(b, ", partial");
      put(b, "</span>");
    }
  }
  moss_buf_put(b, "</td>", 5);
}

static double fval(const moss_cost_figure *f) { return is_nm(f) ? 0 : f->value; }

/* The comparison cell of a totals row, |x| = fp32 dense / this build
 * (moss_cost_ratio): how many times less (or more) this build spends,
 * "3.2× less"; "~" on an amber cell when either side is a lower bound, so
 * the ratio is neither exact nor (always) a bound, its source saying which. */
static void hratio(moss_buf *b, const moss_cost_figure *x) {
  if (is_nm(x)) {
    put(b, "<td class=\"nm\"");
    htitle(b, x);
    put(b, ">n/m</td>");
    return;
  }
  moss_buf_printf(b, "<td%s title=\"fp32 dense / this build = %.4g",
                  x->partial ? " class=\"p\"" : "", x->value);
  if (x->partial) {
    put(b, "; ");
    hstr(b, x->source);
  }
  put(b, x->partial ? "\">~" : "\">");
  if (x->value >= 1.005) moss_buf_printf(b, "%.3g" MUL " less", x->value);
  else if (x->value > 0 && x->value <= 1 / 1.005)
    moss_buf_printf(b, "%.3g" MUL " more", 1 / x->value);
  else put(b, x->value == 1 ? "same" : "about the same");
  put(b, "</td>");
}

static void html_totals_row(moss_buf *b, const char *what, const moss_cost_figure *a,
                            const moss_cost_figure *base, const char *unit) {
  moss_buf_printf(b, "<tr><th class=\"l\">%s</th>", what);
  hfig(b, a, unit, 1);
  hfig(b, base, unit, 1);
  if (!is_nm(a) && !is_nm(base) && a->value == 0 && base->value == 0 && !a->partial &&
      !base->partial)
    put(b, "<td>same</td>"); /* 0 J against 0 J */
  else {
    moss_cost_figure x = moss_cost_ratio(base, a);
    hratio(b, &x);
  }
  put(b, "</tr>\n");
}

static void html_count_row(moss_buf *b, const char *what, double a, double base,
                           const char *unit) {
  moss_buf_printf(b, "<tr><th class=\"l\">%s</th>", what);
  hcount(b, a, unit);
  hcount(b, base, unit);
  if (a == 0 && base == 0) put(b, "<td>same</td>");
  else if (a == 0) put(b, "<td title=\"this build: 0\">none left</td>");
  else {
    moss_cost_figure fa = {a, "op-model", "", 0}, fb = {base, "op-model", "", 0};
    moss_cost_figure x = moss_cost_ratio(&fb, &fa);
    hratio(b, &x);
  }
  put(b, "</tr>\n");
}

/* The measured cell beside an estimate in the totals table, spanning the
 * baseline and ratio columns (the fp32 dense twin is not run): measured /
 * estimated, "~" on an amber cell when the estimate is a lower bound. */
static void html_vs_estimate(moss_buf *b, const moss_cost_figure *meas,
                             const moss_cost_figure *est) {
  moss_cost_figure x = moss_cost_ratio(meas, est);
  if (is_nm(&x)) {
    put(b, "<td class=\"note\" colspan=\"2\">no estimate to compare with</td>");
    return;
  }
  moss_buf_printf(b, "<td class=\"note%s\" colspan=\"2\" title=\"measured / estimated = %.4g",
                  x.partial ? " p" : "", x.value);
  if (x.partial) {
    put(b, "; ");
    hstr(b, x.source);
  }
  moss_buf_printf(b, "\">%s%.3g" MUL " the estimate</td>", x.partial ? "~" : "", x.value);
}

/* The measurement's rows of the totals table (moss compile --profile): the
 * measured time, the platform model fed with it, and the energy counter
 * (its source says what it covers; without one, the reason). */
static void html_measured_rows(moss_buf *b, const moss_cost_report *r) {
  const moss_cost_figure *e = &r->measured_energy_j;
  put(b, "<tr><th class=\"l\">measured time</th>");
  hfig(b, &r->measured_time_s, "s", 1);
  html_vs_estimate(b, &r->measured_time_s, &r->total.time_s);
  put(b, "</tr>\n<tr><th class=\"l\">platform energy (measured time)</th>");
  hfig(b, &r->measured_platform_j, "J", 1);
  html_vs_estimate(b, &r->measured_platform_j, &r->total.platform_j);
  put(b, "</tr>\n<tr><th class=\"l\">energy counter</th>");
  if (is_nm(e)) {
    put(b, "<td class=\"note nm\" colspan=\"3\">not-modeled: ");
    hstr(b, e->source && *e->source ? e->source : "no energy counter was read");
    put(b, "</td>");
  } else {
    hfig(b, e, "J", 1);
    put(b, "<td class=\"note\" colspan=\"2\">");
    hstr(b, e->source);
    put(b, "</td>");
  }
  put(b, "</tr>\n");
}

/* Chart geometry: labels left of the bars, wrapped at CHART_CHARS
 * characters (at 12 px a character is at most about CHART_PX wide), so a
 * long name takes more lines instead of running off the left edge. */
#define CHART_CHARS 40
#define CHART_PX 7.5
#define CHART_BARS 440
#define CHART_VALUE 190

/* Splits |s| into lines of at most CHART_CHARS bytes, breaking after a
 * separator where one is near the end; returns the number of lines and
 * their starts and lengths (at most |cap|; the last line takes the rest,
 * shortened with "..." in the caller if need be). */
static int wrap(const char *s, int *start, int *len, int cap) {
  int n = 0, at = 0, total = (int)strlen(s);
  while (at < total && n < cap) {
    int l = total - at, k;
    if (l > CHART_CHARS) {
      l = CHART_CHARS;
      for (k = CHART_CHARS; k > CHART_CHARS / 2; k--)
        if (strchr("/._:- (", s[at + k - 1])) {
          l = k;
          break;
        }
      while (l > 1 && ((unsigned char)s[at + l] & 0xc0) == 0x80) l--; /* whole UTF-8 chars */
    }
    start[n] = at;
    len[n] = l;
    n++;
    at += l;
  }
  if (at < total && n) len[n - 1] = total - start[n - 1];
  return n ? n : 1;
}

static void html_chart(moss_buf *b, const moss_cost_report *r) {
  enum { LINES = 4 };
  int i, k, widest = 8, h = 30, y, left;
  double most = 0;
  static const char *colour[3] = {"#4e79a7", "#f28e2b", "#76b7b2"};
  static const char *part[3] = {"compute", "memory", "static"};
  char lab[1024];
  for (i = 0; i < r->nnodes; i++) {
    const moss_cost_node *n = &r->nodes[i];
    int st[LINES], ln[LINES], nl;
    double s = fval(&n->compute_j) + fval(&n->static_j);
    for (k = 0; k < r->devices[n->device].nlevels; k++) s += fval(&n->mem_j[k]);
    if (s > most) most = s;
    snprintf(lab, sizeof lab, "%s (%s)", n->name, n->op_type);
    nl = wrap(lab, st, ln, LINES);
    for (k = 0; k < nl; k++)
      if (ln[k] > widest) widest = ln[k] > CHART_CHARS ? CHART_CHARS : ln[k];
    h += 16 * nl + 8;
  }
  left = (int)(widest * CHART_PX) + 16;
  h += 10;
  moss_buf_printf(b,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"energy per layer\" "
                  "font-family=\"sans-serif\" font-size=\"12\">\n"
                  "<title>Energy per layer (op-model)</title>\n",
                  left + CHART_BARS + CHART_VALUE, h, left + CHART_BARS + CHART_VALUE, h);
  for (k = 0; k < 3; k++)
    moss_buf_printf(b,
                    "<rect x=\"%d\" y=\"6\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                    "<text x=\"%d\" y=\"16\">%s</text>\n",
                    left + k * 100, colour[k], left + k * 100 + 16, part[k]);
  y = 30;
  for (i = 0; i < r->nnodes; i++) {
    const moss_cost_node *n = &r->nodes[i];
    int st[LINES], ln[LINES], nl, rowh;
    double seg[3], x = left;
    char t[48];
    snprintf(lab, sizeof lab, "%s (%s)", n->name, n->op_type);
    nl = wrap(lab, st, ln, LINES);
    rowh = 16 * nl + 8;
    seg[0] = fval(&n->compute_j);
    seg[1] = 0;
    for (k = 0; k < r->devices[n->device].nlevels; k++) seg[1] += fval(&n->mem_j[k]);
    seg[2] = fval(&n->static_j);
    moss_buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\"><title>", left - 8,
                    y + 14);
    hstr(b, lab);
    put(b, "</title>");
    for (k = 0; k < nl; k++) {
      char line[CHART_CHARS * 4 + 8];
      int l = ln[k];
      if (l > CHART_CHARS) { /* the last of LINES lines: the rest, shortened */
        l = CHART_CHARS - 3;
        while (l > 1 && ((unsigned char)lab[st[k] + l] & 0xc0) == 0x80) l--;
        snprintf(line, sizeof line, "%.*s...", l, lab + st[k]);
      } else snprintf(line, sizeof line, "%.*s", l, lab + st[k]);
      moss_buf_printf(b, "<tspan x=\"%d\" dy=\"%d\">", left - 8, k ? 16 : 0);
      hstr(b, line);
      put(b, "</tspan>");
    }
    put(b, "</text>\n");
    for (k = 0; k < 3; k++) {
      double wd = most > 0 ? seg[k] / most * CHART_BARS : 0;
      if (wd <= 0) continue;
      si3(t, sizeof t, seg[k], "J", 0);
      moss_buf_printf(b, "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"14\" fill=\"%s\">"
                      "<title>%s: %s</title></rect>\n", x, y + 3, wd, colour[k], part[k], t);
      x += wd;
    }
    if (is_nm(&n->energy_j))
      moss_buf_printf(b, "<text x=\"%.2f\" y=\"%d\" fill=\"#b00\">n/m (not-modeled)</text>\n",
                      x + 6, y + 14);
    else {
      si3(t, sizeof t, n->energy_j.value, "J", 0);
      moss_buf_printf(b, "<text x=\"%.2f\" y=\"%d\"%s>%s%s%s</text>\n", x + 6, y + 14,
                      n->energy_j.partial ? " fill=\"#8a5a00\"" : "",
                      n->energy_j.partial ? GE : "", t,
                      n->energy_j.partial ? " (partial)" : "");
    }
    y += rowh;
  }
  put(b, "</svg>\n");
}

const char moss_report_html_style[] =
    "body{font-family:sans-serif;margin:16px;color:#222}\n"
    "h1{font-size:1.6em;margin:0.3em 0}\n"
    "h2{font-size:1.25em;margin:1.2em 0 0.4em}\n"
    "code.sum{white-space:normal;overflow-wrap:anywhere;font-size:12px}\n"
    "table{border-collapse:collapse;margin:0.4em 0 1em}\n"
    "th,td{border:1px solid #ccc;padding:2px 5px;text-align:right;font-size:12px;"
    "white-space:nowrap;vertical-align:top}\n"
    "th{background:#f3f3f3;font-weight:600}\n"
    "td.l,th.l{text-align:left}\n"
    "td.name{text-align:left;white-space:normal;overflow-wrap:anywhere;min-width:7em;"
    "max-width:17em}\n"
    "td.fmt{text-align:left;white-space:normal;max-width:17em}\n"
    "td.fmt span{white-space:nowrap}\n"
    "td.note{text-align:left;white-space:normal;overflow-wrap:anywhere;max-width:30em}\n"
    "p.how{overflow-wrap:anywhere}\n"
    ".lb,.lv{color:#666;font-size:11px}\n"
    ".p{background:#fff0c2}\n"
    ".nm{color:#b00;background:#fde4e4;font-style:italic}\n"
    "abbr{text-decoration:none;border-bottom:1px dotted #888;cursor:help}\n"
    ".legend{font-size:13px}\n"
    ".legend span{padding:0 4px;border:1px solid #ccc}\n"
    ".wide{max-width:100%;overflow-x:auto}\n"
    "svg{max-width:100%;height:auto}\n";

void moss_report_html_text(moss_buf *b, const char *s) { hstr(b, s); }
void moss_report_html_name(moss_buf *b, const char *s) { hname(b, s); }
void moss_report_html_si(char *buf, size_t cap, double v, const char *unit) { si3(buf, cap, v, unit, 0); }

static void html_legend(moss_buf *b) {
  put(b, "<p class=\"legend\"><span class=\"p\">" GE "1.2 " MICRO "J</span> partial: a lower "
         "bound, some of its parts are not-modeled &#160; <span class=\"nm\">n/m</span> "
         "not-modeled: the target gives no figure (not a zero) &#160; hover a cell for its "
         "exact value, label and source</p>\n");
}

moss_status moss_report_html(moss_ctx *ctx, const moss_cost_report *r, moss_buf *b) {
  int i;
  char line[512];
  put(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>");
  put(b, "moss cost report: ");
  hstr(b, r->model);
  put(b, " on ");
  hstr(b, r->target);
  put(b, "</title>\n<style>\n");
  put(b, moss_report_html_style);
  put(b, "</style>\n</head>\n<body>\n<h1>");
  hstr(b, r->model);
  put(b, " on ");
  hstr(b, r->target);
  put(b, "</h1>\n<p>");
  hstr(b, r->target_description);
  put(b, "</p>\n<p><code class=\"sum\">");
  moss_cost_summary(r, line, sizeof line);
  hstr(b, line);
  put(b, "</code></p>\n");
  html_legend(b);

  put(b, "<h2>Per inference</h2>\n<table>\n<tr><th class=\"l\"></th><th>this build</th>"
         "<th>fp32 dense</th><th title=\"fp32 dense / this build: how many times less this "
         "build spends than the same model in fp32, dense\">this build vs fp32 dense</th>"
         "</tr>\n");
  html_count_row(b, "MACs (effective)", r->total.macs_effective, r->baseline.macs_effective, "");
  html_count_row(b, "MACs (dense)", r->total.macs_dense, r->baseline.macs_dense, "");
  html_count_row(b, "arena", (double)r->total.arena_bytes, (double)r->baseline.arena_bytes, "B");
  html_count_row(b, "weights", (double)r->total.weight_bytes, (double)r->baseline.weight_bytes,
                 "B");
  html_totals_row(b, "time", &r->total.time_s, &r->baseline.time_s, "s");
  html_totals_row(b, "energy (op-model)", &r->total.energy_j, &r->baseline.energy_j, "J");
  html_totals_row(b, "&#160; compute", &r->total.compute_j, &r->baseline.compute_j, "J");
  html_totals_row(b, "&#160; memory", &r->total.mem_j, &r->baseline.mem_j, "J");
  html_totals_row(b, "&#160; static", &r->total.static_j, &r->baseline.static_j, "J");
  html_totals_row(b, "&#160; transfers", &r->total.transfer_j, &r->baseline.transfer_j, "J");
  html_totals_row(b, "energy (platform-model)", &r->total.platform_j, &r->baseline.platform_j,
                  "J");
  html_totals_row(b, "carbon per inference", &r->total.carbon_g, &r->baseline.carbon_g,
                  "gCO2e");
  html_totals_row(b, "carbon per million", &r->total.carbon_g_per_million,
                  &r->baseline.carbon_g_per_million, "gCO2e");
  if (r->measured) html_measured_rows(b, r);
  moss_buf_printf(b, "</table>\n<p>Grid intensity %g gCO2e/kWh%s.</p>\n", r->grid_g_per_kwh,
                  r->grid_fallback ? " (fallback: IEA 2019 world average; give "
                                     "--grid-intensity)"
                                   : " (--grid-intensity)");
  if (r->measured) {
    put(b, "<p class=\"how\">Measured: ");
    hstr(b, r->measured_how);
    put(b, "</p>\n");
  }

  put(b, "<h2>Energy per layer</h2>\n");
  html_chart(b, r);

  put(b, "<h2>Nodes</h2>\n");
  html_legend(b);
  put(b, "<div class=\"wide\">\n<table class=\"nodes\">\n<tr><th class=\"l\">node</th>"
         "<th class=\"l\">op</th><th class=\"l\"><abbr title=\"device\">dev</abbr></th>"
         "<th class=\"l\">dtype</th>"
         "<th><abbr title=\"multiply-adds, dense\">MACs</abbr></th>"
         "<th><abbr title=\"effective MACs: dense x the share of non-zero weights\">eff."
         "</abbr></th>"
         "<th><abbr title=\"element operations (not MACs); their compute energy is not "
         "priced\">ops</abbr></th>"
         "<th><abbr title=\"activation bytes read and written, and the memory level they "
         "are costed at\">act. B</abbr></th>"
         "<th><abbr title=\"weight bytes read, and the memory level they are costed at\">"
         "wt. B</abbr></th>"
         "<th><abbr title=\"roofline cycles: max(compute, each memory level)\">cycles</abbr>"
         "</th>");
  if (r->measured)
    put(b, "<th><abbr title=\"estimated time\">time est.</abbr></th>"
           "<th><abbr title=\"measured time on this machine (median of the profiled runs; a "
           "node sharing its step with others: the step's time split by the estimates)\">"
           "time meas.</abbr></th>");
  else put(b, "<th><abbr title=\"estimated time\">time</abbr></th>");
  put(b, "<th><abbr title=\"compute energy: effective MACs x pJ/MAC\">comp.</abbr></th>"
         "<th><abbr title=\"memory energy: bytes x pJ/byte, summed over the levels\">mem."
         "</abbr></th>"
         "<th><abbr title=\"static energy: idle power x time\">static</abbr></th>"
         "<th><abbr title=\"op-model energy: compute + memory + static\">energy</abbr></th>"
         "<th class=\"l\"><abbr title=\"weight format the sparse pass chose (bold) and the "
         "cost rule's estimate of each format in dense multiply-adds per output "
         "(-: impossible); 4x1 = block4x1, 1x4 = block1x4\">format</abbr></th></tr>\n");
  for (i = 0; i < r->nnodes; i++) {
    const moss_cost_node *n = &r->nodes[i];
    const moss_cost_device *d = &r->devices[n->device];
    char t[48];
    put(b, "<tr><td class=\"name\">");
    hname(b, n->name);
    put(b, "</td><td class=\"l\">");
    hstr(b, n->op_type);
    put(b, "</td><td class=\"l\">");
    hstr(b, d->id);
    put(b, "</td><td class=\"l\">");
    hstr(b, n->dtype);
    put(b, "</td>");
    hcount(b, n->macs_dense, "");
    hcount(b, n->macs_effective, "");
    hcount(b, n->ops, "");
    hbytes(b, n->act_bytes, level_name(r, n->device, n->act_level));
    hbytes(b, n->weight_bytes, level_name(r, n->device, n->weight_level));
    /* Cycles share the time's fate: none without a clock, a lower bound
     * where the time is one. */
    {
      moss_cost_figure cy = n->time_s;
      cy.value = n->cycles;
      if (!is_nm(&cy)) cy.source = "roofline cycles of the device clock";
      hfig(b, &cy, "", 0);
    }
    hfig(b, &n->time_s, "s", 0);
    if (r->measured) hfig(b, &n->measured_s, "s", 0);
    hfig(b, &n->compute_j, "J", 0);
    {
      moss_cost_figure m = mem_sum(n->mem_j, d->nlevels);
      hfig(b, &m, "J", 0);
    }
    hfig(b, &n->static_j, "J", 0);
    hfig(b, &n->energy_j, "J", 0);
    put(b, "<td class=\"fmt\">");
    if (n->sparse_layer) {
      int f;
      for (f = 0; f < MOSS_COST_SPARSE_FORMATS; f++) {
        const char *name = moss_sparse_format_name(f);
        int chosen = !strcmp(n->sparse_format, name);
        put(b, f ? ", <span>" : "<span>");
        if (chosen) put(b, "<b>");
        if (!strncmp(name, "block", 5) || f == MOSS_SPARSE_COLUMNS) { /* 4x1, 1x4, cols */
          put(b, "<abbr title=\"");
          hstr(b, name);
          put(b, "\">");
          hstr(b, f == MOSS_SPARSE_COLUMNS ? "cols" : name + 5);
          put(b, "</abbr>");
        } else hstr(b, name);
        if (n->sparse_cost[f] < 0) put(b, " -");
        else {
          si3(t, sizeof t, n->sparse_cost[f], "", 1);
          moss_buf_printf(b, " %s", t);
        }
        if (chosen) put(b, "</b>");
        put(b, "</span>");
      }
    }
    put(b, "</td></tr>\n");
  }
  put(b, "</table>\n</div>\n");

  if (r->ntransfers) {
    put(b, "<h2>Transfers between devices</h2>\n<table>\n<tr><th class=\"l\">value</th>"
           "<th class=\"l\">from</th><th class=\"l\">to</th><th>bytes</th><th>time</th>"
           "<th>energy</th></tr>\n");
    for (i = 0; i < r->ntransfers; i++) {
      const moss_cost_transfer *t = &r->transfers[i];
      put(b, "<tr><td class=\"name\">");
      hname(b, t->value);
      put(b, "</td><td class=\"l\">");
      hstr(b, r->devices[t->from].id);
      put(b, "</td><td class=\"l\">");
      hstr(b, r->devices[t->to].id);
      put(b, "</td>");
      hcount(b, t->bytes, "B");
      hfig(b, &t->time_s, "s", 0);
      hfig(b, &t->energy_j, "J", 0);
      put(b, "</tr>\n");
    }
    put(b, "</table>\n");
  }
  put(b, "<p>Labels: <b>op-model</b> = MACs " MUL " pJ/MAC + bytes " MUL " pJ/byte + idle "
         "power " MUL " time; <b>platform-model</b> = active power " MUL " busy time + idle "
         "power for the rest; datasheet / estimate / measured: as the target XML states; "
         "<b>not-modeled</b> = no figure, not a zero; <b>partial</b> = a sum with some parts "
         "not-modeled, a lower bound.");
  if (r->measured)
    put(b, " <b>measured:clock</b> = timed on this machine by moss compile --profile; "
           "<b>measured:rapl</b> / <b>measured:nvml</b> = read from the CPU package's or the "
           "GPU's energy counter (the whole chip, not only this model).");
  put(b, " Generated by moss.</p>\n</body>\n</html>\n");
  if (b->failed) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "HTML report");
  return MOSS_OK;
}

/* ---------------------------------------------------------------- file */

moss_status moss_report_write(moss_ctx *ctx, const moss_cost_report *r, const char *path) {
  const char *dot = path ? strrchr(path, '.') : NULL;
  moss_buf b;
  moss_status st;
  if (!dot || (strcmp(dot, ".json") && strcmp(dot, ".csv") && strcmp(dot, ".html")))
    return moss_fail(ctx, MOSS_E_IO, NULL,
                     "--report %s: the file name must end in .json, .csv or .html",
                     path ? path : "(null)");
  moss_buf_init(&b, ctx);
  if (!strcmp(dot, ".json")) st = moss_report_json(ctx, r, &b);
  else if (!strcmp(dot, ".csv")) st = moss_report_csv(ctx, r, &b);
  else st = moss_report_html(ctx, r, &b);
  if (st == MOSS_OK) st = moss_file_write(ctx, path, b.data ? b.data : "", b.len);
  moss_buf_deinit(&b);
  return st;
}
