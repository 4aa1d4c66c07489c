/* report.c - writes a cost report (cost.c) as JSON, CSV or one
 * self-contained HTML page. The JSON is what the bundle carries and what
 * tools read: its keys come in a fixed order, documented in docs/report.md.
 * The CSV has one row per node, per transfer, a total row and a baseline row,
 * with CodeCarbon's column names where the meaning is the same. The HTML
 * needs no network and no JavaScript: tables and an inline SVG bar chart of
 * the energy per layer; it is also well-formed XML, so tests can parse it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ops/sparse.h"
#include "cost.h"

#define NM "not-modeled"

static int is_nm(const moss_cost_figure *f) { return !f->label || !strcmp(f->label, NM); }

static void put(moss_buf *b, const char *s) { moss_buf_put(b, s, strlen(s)); }

/* 15 significant digits: more than any figure is worth, and short. */
static void num(char *buf, size_t cap, double v) { snprintf(buf, cap, "%.15g", v); }

/* ---------------------------------------------------------------- JSON */

static void jstr(moss_buf *b, const char *s) {
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  moss_buf_put(b, "\"", 1);
  for (; *p; p++) {
    if (*p == '"' || *p == '\\') moss_buf_printf(b, "\\%c", *p);
    else if (*p == '\n') moss_buf_put(b, "\\n", 2);
    else if (*p < 0x20) moss_buf_printf(b, "\\u%04x", *p);
    else moss_buf_put(b, p, 1);
  }
  moss_buf_put(b, "\"", 1);
}

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
  jstr(b, k);
  moss_buf_put(b, ": ", 2);
}

static void jkv_num(moss_buf *b, const char *k, double v, int *first) {
  jkey(b, k, first);
  jnum(b, v);
}

static void jkv_str(moss_buf *b, const char *k, const char *v, int *first) {
  jkey(b, k, first);
  jstr(b, v);
}

/* "sparse_format": "csr", "sparse_costs": {"dense": 64, "csr": 13, ...,
 * "2:4": "-"} ("-": the weight cannot take the format); both null for a
 * node without a weight the sparse pass looks at (docs/sparse.md). */
static void jsparse(moss_buf *b, const moss_cost_node *n, int *first) {
  int f, h = 1;
  if (!n->sparse_layer) {
    jkey(b, "sparse_format", first);
    moss_buf_put(b, "null", 4);
    jkey(b, "sparse_costs", first);
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
}

/* {"value": 1.5e-06, "label": "op-model", "partial": false, "source": "..."};
 * value is null when not-modeled. */
static void jfig(moss_buf *b, const char *k, const moss_cost_figure *f, int *first) {
  jkey(b, k, first);
  moss_buf_put(b, "{\"value\": ", 10);
  if (is_nm(f)) moss_buf_put(b, "null", 4);
  else jnum(b, f->value);
  moss_buf_put(b, ", \"label\": ", 11);
  jstr(b, f->label);
  moss_buf_printf(b, ", \"partial\": %s, \"source\": ", f->partial ? "true" : "false");
  jstr(b, f->source);
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
  jstr(b, r->grid_fallback ? "IEA 2019 world average (CodeCarbon's fallback); give "
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
    jkv_num(b, "busy_s", d->busy_s, &g);
    jfig(b, "platform_j", &d->platform_j, &g);
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
    jkv_str(b, "dtype", n->dtype, &g);
    jkey(b, "mac_op", &g);
    moss_buf_printf(b, "%s", n->mac_op ? "true" : "false");
    jkv_num(b, "macs_dense", n->macs_dense, &g);
    jkv_num(b, "macs_effective", n->macs_effective, &g);
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
      jkv_num(b, "cycles", n->mem_cycles[k], &h);
      jfig(b, "energy_j", &n->mem_j[k], &h);
      moss_buf_put(b, "}", 1);
    }
    moss_buf_put(b, "]", 1);
    jkv_num(b, "compute_cycles", n->compute_cycles, &g);
    jkv_num(b, "cycles", n->cycles, &g);
    jfig(b, "time_s", &n->time_s, &g);
    jfig(b, "mac_pj", &n->mac_pj, &g);
    jfig(b, "compute_j", &n->compute_j, &g);
    jfig(b, "static_j", &n->static_j, &g);
    jfig(b, "energy_j", &n->energy_j, &g);
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
    "compute_energy_j", "memory_energy_j", "static_energy_j", "energy_j", "compute_label",
    "memory_label", "static_label", "energy_label", "energy_consumed", "emissions",
    "emissions_rate", "cpu_energy", "gpu_energy", "npu_energy", "platform_energy_j", "cpu_model",
    "gpu_model", "grid_intensity", "grid_fallback", "sparse_format", "sparse_cost_dense",
    "sparse_cost_csr", "sparse_cost_block4x1", "sparse_cost_block1x4", "sparse_cost_2_4"};
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
  snprintf(buf, cap, "%s%s", f->label, f->partial ? " (partial)" : "");
  return buf;
}

/* One CSV row; fields not known for the row are empty. */
typedef struct csv_row {
  const char *row, *name, *op_type, *device, *kind, *dtype, *act_level, *weight_level;
  double macs_dense, macs_effective, density, ops, act_bytes, weight_bytes, cycles;
  double arena, weights;      /* total rows only; < 0: empty */
  int have_counts;
  const moss_cost_figure *time, *compute, *memory, *stat, *energy, *platform;
  moss_cost_figure memory_sum;
  double cpu_j, gpu_j, npu_j; /* energy by device kind; -1: not known */
  const moss_cost_node *node; /* node rows: the sparse format columns */
} csv_row;

static void csv_put(moss_buf *b, const moss_cost_report *r, const csv_row *w) {
  char l[96];
  int ok = w->energy && !is_nm(w->energy);
  double kwh = ok ? w->energy->value / 3.6e6 : 0, kg = kwh * r->grid_g_per_kwh / 1000;
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
  } else moss_buf_put(b, ",,,,,,", 6);
  cstr(b, w->act_level), moss_buf_put(b, ",", 1);
  cstr(b, w->weight_level), moss_buf_put(b, ",", 1);
  if (w->arena >= 0) cnum(b, w->arena);
  moss_buf_put(b, ",", 1);
  if (w->weights >= 0) cnum(b, w->weights);
  moss_buf_put(b, ",", 1);
  if (w->have_counts) cnum(b, w->cycles);
  moss_buf_put(b, ",", 1);
  if (w->time) cfig(b, w->time);
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
  if (ok) cnum(b, kwh);
  moss_buf_put(b, ",", 1);
  if (ok) cnum(b, kg);
  moss_buf_put(b, ",", 1);
  if (ok && w->time && !is_nm(w->time) && w->time->value > 0) cnum(b, kg / w->time->value);
  moss_buf_put(b, ",", 1);
  if (w->cpu_j >= 0) cnum(b, w->cpu_j / 3.6e6);
  moss_buf_put(b, ",", 1);
  if (w->gpu_j >= 0) cnum(b, w->gpu_j / 3.6e6);
  moss_buf_put(b, ",", 1);
  if (w->npu_j >= 0) cnum(b, w->npu_j / 3.6e6);
  moss_buf_put(b, ",", 1);
  if (w->platform) cfig(b, w->platform);
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

static void by_kind(const char *kind, double j, csv_row *w) {
  w->cpu_j = !strcmp(kind, "cpu") ? j : 0;
  w->gpu_j = !strcmp(kind, "gpu") ? j : 0;
  w->npu_j = !strcmp(kind, "npu") ? j : 0;
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
    double j = is_nm(&d->energy_j) ? 0 : d->energy_j.value;
    if (!strcmp(d->kind, "cpu")) w->cpu_j += j;
    if (!strcmp(d->kind, "gpu")) w->gpu_j += j;
    if (!strcmp(d->kind, "npu")) w->npu_j += j;
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
    by_kind(d->kind, is_nm(&n->energy_j) ? 0 : n->energy_j.value, &w);
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
    w.time = &t->time_s;
    w.memory = &t->energy_j;
    w.energy = &t->energy_j;
    w.cpu_j = w.gpu_j = w.npu_j = -1;
    csv_put(b, r, &w);
  }
  total_row(r, &r->total, "total", &w, 0);
  csv_put(b, r, &w);
  total_row(r, &r->baseline, "baseline_fp32_dense", &w, 1);
  csv_put(b, r, &w);
  if (b->failed) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "CSV report");
  return MOSS_OK;
}

/* ---------------------------------------------------------------- HTML */

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

/* "1.23 µJ" with an SI prefix; "not-modeled" for a missing figure. */
static void hsi(moss_buf *b, const moss_cost_figure *f, const char *unit) {
  static const char *pre[] = {"p", "n", "\xc2\xb5", "m", "", "k", "M", "G"};
  double v, a;
  int e = 4;
  if (is_nm(f)) {
    moss_buf_printf(b, "<span class=\"nm\">not-modeled</span>");
    return;
  }
  v = f->value;
  a = fabs(v);
  if (v != 0) {
    while (a < 1 && e > 0) a *= 1000, v *= 1000, e--;
    while (a >= 1000 && e < 7) a /= 1000, v /= 1000, e++;
  }
  moss_buf_printf(b, "%.4g %s%s", v, v == 0 ? "" : pre[e], unit);
}

static void hfig(moss_buf *b, const moss_cost_figure *f, const char *unit) {
  moss_buf_put(b, "<td title=\"", 11);
  hstr(b, f->source);
  moss_buf_put(b, "\">", 2);
  hsi(b, f, unit);
  if (!is_nm(f)) {
    moss_buf_put(b, " <span class=\"lb\">", 18);
    hstr(b, f->label);
    if (f->partial) moss_buf_put(b, ", partial", 9);
    moss_buf_put(b, "</span>", 7);
  }
  moss_buf_put(b, "</td>", 5);
}

static double fval(const moss_cost_figure *f) { return is_nm(f) ? 0 : f->value; }

static void html_totals_row(moss_buf *b, const char *what, const moss_cost_figure *a,
                            const moss_cost_figure *base, const char *unit) {
  moss_buf_printf(b, "<tr><th>%s</th>", what);
  hfig(b, a, unit);
  hfig(b, base, unit);
  if (!is_nm(a) && !is_nm(base) && a->value > 0)
    moss_buf_printf(b, "<td>%.3g\xc3\x97</td></tr>\n", base->value / a->value);
  else moss_buf_put(b, "<td></td></tr>\n", 15);
}

static void html_chart(moss_buf *b, const moss_cost_report *r) {
  const int left = 260, width = 420, row = 22, top = 30;
  int i, k, h = top + row * (r->nnodes ? r->nnodes : 1) + 40;
  double most = 0;
  static const char *colour[3] = {"#4e79a7", "#f28e2b", "#76b7b2"};
  static const char *part[3] = {"compute", "memory", "static"};
  for (i = 0; i < r->nnodes; i++) {
    const moss_cost_node *n = &r->nodes[i];
    double s = fval(&n->compute_j) + fval(&n->static_j);
    for (k = 0; k < r->devices[n->device].nlevels; k++) s += fval(&n->mem_j[k]);
    if (s > most) most = s;
  }
  moss_buf_printf(b,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"energy per layer\">\n"
                  "<title>Energy per layer (op-model)</title>\n",
                  left + width + 200, h, left + width + 200, h);
  for (k = 0; k < 3; k++)
    moss_buf_printf(b,
                    "<rect x=\"%d\" y=\"6\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                    "<text x=\"%d\" y=\"16\" font-size=\"12\">%s</text>\n",
                    left + k * 110, colour[k], left + k * 110 + 16, part[k]);
  for (i = 0; i < r->nnodes; i++) {
    const moss_cost_node *n = &r->nodes[i];
    double seg[3], x = left;
    int y = top + i * row;
    seg[0] = fval(&n->compute_j);
    seg[1] = 0;
    for (k = 0; k < r->devices[n->device].nlevels; k++) seg[1] += fval(&n->mem_j[k]);
    seg[2] = fval(&n->static_j);
    moss_buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">",
                    left - 6, y + 14);
    hstr(b, n->name);
    moss_buf_put(b, " (", 2);
    hstr(b, n->op_type);
    moss_buf_put(b, ")</text>\n", 9);
    for (k = 0; k < 3; k++) {
      double wd = most > 0 ? seg[k] / most * width : 0;
      if (wd <= 0) continue;
      moss_buf_printf(b, "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"%s\">"
                      "<title>%s: ", x, y + 2, wd, row - 6, colour[k], part[k]);
      {
        moss_cost_figure f = {seg[k], "op-model", "", 0};
        hsi(b, &f, "J");
      }
      moss_buf_put(b, "</title></rect>\n", 16);
      x += wd;
    }
    moss_buf_printf(b, "<text x=\"%.2f\" y=\"%d\" font-size=\"12\">", x + 6, y + 14);
    hsi(b, &n->energy_j, "J");
    if (n->energy_j.partial) moss_buf_put(b, " (partial)", 10);
    moss_buf_put(b, "</text>\n", 8);
  }
  moss_buf_put(b, "</svg>\n", 7);
}

moss_status moss_report_html(moss_ctx *ctx, const moss_cost_report *r, moss_buf *b) {
  int i;
  char line[512];
  put(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>");
  moss_buf_put(b, "moss cost report: ", 18);
  hstr(b, r->model);
  moss_buf_put(b, " on ", 4);
  hstr(b, r->target);
  moss_buf_printf(b, "</title>\n<style>\n"
                     "body{font-family:sans-serif;margin:1.5em;color:#222}\n"
                     "table{border-collapse:collapse;margin:0.5em 0 1.5em}\n"
                     "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;"
                     "font-size:13px}\n"
                     "th{background:#f3f3f3}\n"
                     "td.l,th.l{text-align:left}\n"
                     ".lb{color:#777;font-size:11px}\n"
                     ".nm{color:#b00}\n"
                     "</style>\n</head>\n<body>\n<h1>");
  hstr(b, r->model);
  moss_buf_put(b, " on ", 4);
  hstr(b, r->target);
  moss_buf_put(b, "</h1>\n<p>", 9);
  hstr(b, r->target_description);
  moss_buf_put(b, "</p>\n<p><code>", 14);
  moss_cost_summary(r, line, sizeof line);
  hstr(b, line);
  moss_buf_put(b, "</code></p>\n", 12);

  put(b, "<h2>Per inference</h2>\n<table>\n<tr><th class=\"l\"></th><th>this build</th>"
                  "<th>fp32 dense</th><th>ratio</th></tr>\n");
  moss_buf_printf(b, "<tr><th>MACs (dense / effective)</th><td>%.0f / %.0f</td><td>%.0f</td>"
                     "<td></td></tr>\n",
                  r->total.macs_dense, r->total.macs_effective, r->baseline.macs_dense);
  moss_buf_printf(b, "<tr><th>arena, weights</th><td>%lld B, %lld B</td><td>%lld B, %lld B</td>"
                     "<td></td></tr>\n",
                  (long long)r->total.arena_bytes, (long long)r->total.weight_bytes,
                  (long long)r->baseline.arena_bytes, (long long)r->baseline.weight_bytes);
  html_totals_row(b, "time", &r->total.time_s, &r->baseline.time_s, "s");
  html_totals_row(b, "energy (op-model)", &r->total.energy_j, &r->baseline.energy_j, "J");
  html_totals_row(b, "compute", &r->total.compute_j, &r->baseline.compute_j, "J");
  html_totals_row(b, "memory", &r->total.mem_j, &r->baseline.mem_j, "J");
  html_totals_row(b, "static", &r->total.static_j, &r->baseline.static_j, "J");
  html_totals_row(b, "transfers", &r->total.transfer_j, &r->baseline.transfer_j, "J");
  html_totals_row(b, "energy (platform-model)", &r->total.platform_j, &r->baseline.platform_j,
                  "J");
  html_totals_row(b, "carbon per inference", &r->total.carbon_g, &r->baseline.carbon_g,
                  "gCO2e");
  html_totals_row(b, "carbon per million", &r->total.carbon_g_per_million,
                  &r->baseline.carbon_g_per_million, "gCO2e");
  moss_buf_printf(b, "</table>\n<p>Grid intensity %g gCO2e/kWh%s.</p>\n", r->grid_g_per_kwh,
                  r->grid_fallback ? " (fallback: IEA 2019 world average; give "
                                     "--grid-intensity)"
                                   : " (--grid-intensity)");

  moss_buf_put(b, "<h2>Energy per layer</h2>\n", 26);
  html_chart(b, r);

  put(b, "<h2>Nodes</h2>\n<table>\n<tr><th class=\"l\">node</th><th class=\"l\">op</th>"
                  "<th class=\"l\">device</th><th class=\"l\">dtype</th><th>MACs dense</th>"
                  "<th>MACs effective</th><th>ops</th><th>activation bytes</th>"
                  "<th>weight bytes</th><th>cycles</th><th>time</th><th>compute</th>"
                  "<th>memory</th><th>static</th><th>energy</th>"
                  "<th class=\"l\">weight format (cost rule: dense MACs per output)</th>"
                  "</tr>\n");
  for (i = 0; i < r->nnodes; i++) {
    const moss_cost_node *n = &r->nodes[i];
    const moss_cost_device *d = &r->devices[n->device];
    moss_buf_put(b, "<tr><td class=\"l\">", 18);
    hstr(b, n->name);
    moss_buf_put(b, "</td><td class=\"l\">", 19);
    hstr(b, n->op_type);
    moss_buf_put(b, "</td><td class=\"l\">", 19);
    hstr(b, d->id);
    moss_buf_put(b, "</td><td class=\"l\">", 19);
    hstr(b, n->dtype);
    moss_buf_printf(b, "</td><td>%.0f</td><td>%.0f</td><td>%.0f</td><td>%.0f (",
                    n->macs_dense, n->macs_effective, n->ops, n->act_bytes);
    hstr(b, level_name(r, n->device, n->act_level));
    moss_buf_printf(b, ")</td><td>%.0f (", n->weight_bytes);
    hstr(b, level_name(r, n->device, n->weight_level));
    moss_buf_printf(b, ")</td><td>%.4g</td>", n->cycles);
    hfig(b, &n->time_s, "s");
    hfig(b, &n->compute_j, "J");
    {
      moss_cost_figure m = mem_sum(n->mem_j, d->nlevels);
      hfig(b, &m, "J");
    }
    hfig(b, &n->static_j, "J");
    hfig(b, &n->energy_j, "J");
    moss_buf_printf(b, "<td class=\"l\">");
    if (n->sparse_layer) {
      int f;
      hstr(b, n->sparse_format);
      moss_buf_put(b, " (", 2);
      for (f = 0; f < MOSS_COST_SPARSE_FORMATS; f++) {
        int chosen = !strcmp(n->sparse_format, moss_sparse_format_name(f));
        moss_buf_printf(b, "%s%s", f ? ", " : "", chosen ? "<b>" : "");
        hstr(b, moss_sparse_format_name(f));
        if (n->sparse_cost[f] < 0) moss_buf_printf(b, " -");
        else moss_buf_printf(b, " %.4g", n->sparse_cost[f]);
        if (chosen) moss_buf_put(b, "</b>", 4);
      }
      moss_buf_put(b, ")", 1);
    }
    moss_buf_printf(b, "</td></tr>\n");
  }
  moss_buf_put(b, "</table>\n", 9);

  if (r->ntransfers) {
    put(b, "<h2>Transfers between devices</h2>\n<table>\n<tr><th class=\"l\">value</th>"
                    "<th class=\"l\">from</th><th class=\"l\">to</th><th>bytes</th><th>time</th>"
                    "<th>energy</th></tr>\n");
    for (i = 0; i < r->ntransfers; i++) {
      const moss_cost_transfer *t = &r->transfers[i];
      moss_buf_put(b, "<tr><td class=\"l\">", 18);
      hstr(b, t->value);
      moss_buf_put(b, "</td><td class=\"l\">", 19);
      hstr(b, r->devices[t->from].id);
      moss_buf_put(b, "</td><td class=\"l\">", 19);
      hstr(b, r->devices[t->to].id);
      moss_buf_printf(b, "</td><td>%.0f</td>", t->bytes);
      hfig(b, &t->time_s, "s");
      hfig(b, &t->energy_j, "J");
      moss_buf_put(b, "</tr>\n", 6);
    }
    moss_buf_put(b, "</table>\n", 9);
  }
  put(b, "<p>Labels: <b>op-model</b> = MACs \xc3\x97 pJ/MAC + bytes \xc3\x97 pJ/byte + "
                  "idle power \xc3\x97 time; <b>platform-model</b> = active power \xc3\x97 busy "
                  "time + idle power for the rest; datasheet / estimate / measured: as the "
                  "target XML states; <b>not-modeled</b> = no figure, not a zero. Hover a cell "
                  "for its source. Generated by moss.</p>\n</body>\n</html>\n");
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
