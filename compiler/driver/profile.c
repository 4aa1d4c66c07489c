/* profile.c - timing a bundle layer by layer (profile.h). The times come
 * from libmossrt (mossrt_run_profile: CLOCK_MONOTONIC around each step), so
 * what is measured is the plan as an application runs it; the medians are
 * the figures (a shared machine is noisy: a median ignores the outliers). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/json.h"
#include "meter.h"
#include "profile.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static moss_status rt_fail(moss_ctx *ctx, const mossrt_error *e) {
  return moss_fail(ctx, e->status == MOSSRT_E_NOMEM ? MOSS_E_NOMEM : MOSS_E_IO, NULL, "%s",
                   e->text);
}

/* Energy per run over a window of at least a second of runs, where a
 * counter exists; otherwise not-modeled with the reason. */
static moss_status metered(moss_ctx *ctx, mossrt_session *s, const void *const *inputs,
                           void *const *outputs, moss_profile *p) {
  moss_meter m;
  mossrt_error e;
  double j0, j1, t0;
  long n = 0;
  char why[256];
  if (!moss_meter_init(&m, why, sizeof why)) {
    snprintf(p->text[0], sizeof p->text[0], "no energy counter on this machine: %s", why);
    p->counter.value = 0;
    p->counter.label = "not-modeled";
    p->counter.source = p->text[0];
    return MOSS_OK;
  }
  t0 = now_s();
  if (!moss_meter_read(&m, &j0)) j0 = -1;
  while (j0 >= 0 && now_s() - t0 < 1.0) {
    if (mossrt_run(s, inputs, outputs, &e) != MOSSRT_OK) {
      moss_meter_deinit(&m);
      return rt_fail(ctx, &e);
    }
    n++;
  }
  if (j0 < 0 || !moss_meter_read(&m, &j1) || n == 0) {
    snprintf(p->text[0], sizeof p->text[0], "%s could not be read", moss_meter_source(&m));
    p->counter.label = "not-modeled";
  } else {
    snprintf(p->text[0], sizeof p->text[0],
             "%s over %.2f s of %ld runs, divided by the runs (the whole %s, not only this model)",
             moss_meter_source(&m), now_s() - t0, n,
             !strcmp(moss_meter_label(&m), "measured:nvml") ? "GPU" : "CPU package");
    snprintf(p->text[1], sizeof p->text[1], "%s", moss_meter_label(&m));
    p->counter.value = (j1 - j0) / (double)n;
    p->counter.label = p->text[1];
  }
  p->counter.source = p->text[0];
  moss_meter_deinit(&m);
  return MOSS_OK;
}

moss_status moss_profile_run(moss_ctx *ctx, mossrt_bundle *b, mossrt_session *s,
                             const void *const *inputs, void *const *outputs, int runs,
                             moss_profile *p) {
  uint32_t n = mossrt_step_count(b), i;
  uint64_t *ns = NULL, *whole = NULL, *row = NULL;
  mossrt_error e;
  moss_status st = MOSS_OK;
  size_t cells;
  int r;
  memset(p, 0, sizeof *p);
  if (runs < 1) runs = 1;
  if (!moss_size_mul((size_t)n, (size_t)runs, &cells) || cells > ((size_t)1 << 24))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                     "--profile keeps every step's time of every run: %u steps x %d runs is too "
                     "many; give fewer --iterations", n, runs);
  p->nsteps = n;
  p->runs = runs;
  p->steps = moss_alloc(ctx, sizeof *p->steps * ((size_t)n + 1));
  p->step_s = moss_alloc(ctx, sizeof *p->step_s * ((size_t)n + 1));
  ns = moss_alloc(ctx, sizeof *ns * (cells + 1));
  whole = moss_alloc(ctx, sizeof *whole * (size_t)runs);
  row = moss_alloc(ctx, sizeof *row * ((size_t)n + 1));
  if (!p->steps || !p->step_s || !ns || !whole || !row) {
    st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "profile of %u steps x %d runs", n, runs);
    goto done;
  }
  for (i = 0; i < n; i++) mossrt_step_info(b, i, &p->steps[i]);
  /* One untimed run: the first touches the code and the arena. */
  if (mossrt_run(s, inputs, outputs, &e) != MOSSRT_OK) {
    st = rt_fail(ctx, &e);
    goto done;
  }
  for (r = 0; r < runs; r++) { /* whole runs first, with no clock read inside */
    double t0 = now_s();
    if (mossrt_run(s, inputs, outputs, &e) != MOSSRT_OK) {
      st = rt_fail(ctx, &e);
      goto done;
    }
    whole[r] = (uint64_t)((now_s() - t0) * 1e9);
  }
  for (r = 0; r < runs; r++) { /* ns[i * runs + r]: step i of run r */
    if (mossrt_run_profile(s, inputs, outputs, row, &e) != MOSSRT_OK) {
      st = rt_fail(ctx, &e);
      goto done;
    }
    for (i = 0; i < n; i++) ns[(size_t)i * (size_t)runs + (size_t)r] = row[i];
  }
  for (i = 0; i < n; i++) {
    uint64_t *col = ns + (size_t)i * (size_t)runs;
    qsort(col, (size_t)runs, sizeof *col, cmp_u64);
    p->step_s[i] = (double)col[runs / 2] * 1e-9;
  }
  qsort(whole, (size_t)runs, sizeof *whole, cmp_u64);
  p->total_s = (double)whole[runs / 2] * 1e-9;
  st = metered(ctx, s, inputs, outputs, p);
done:
  moss_free(ctx, ns, ns ? sizeof *ns * (cells + 1) : 0);
  moss_free(ctx, whole, whole ? sizeof *whole * (size_t)runs : 0);
  moss_free(ctx, row, row ? sizeof *row * ((size_t)n + 1) : 0);
  if (st != MOSS_OK) moss_profile_deinit(ctx, p);
  return st;
}

void moss_profile_deinit(moss_ctx *ctx, moss_profile *p) {
  moss_free(ctx, p->steps, p->steps ? sizeof *p->steps * ((size_t)p->nsteps + 1) : 0);
  moss_free(ctx, p->step_s, p->step_s ? sizeof *p->step_s * ((size_t)p->nsteps + 1) : 0);
  p->steps = NULL;
  p->step_s = NULL;
}

int moss_profile_map(const moss_profile *p, int nnodes, const int *node_exec,
                     const char *const *node_device, int *node_step) {
  int i, k = -1;    /* the EXEC step reached so far, counting EXEC steps only */
  uint32_t s = 0, at = 0; /* the next step to look at; the plan index of EXEC step k */
  for (i = 0; i < nnodes; i++) node_step[i] = -1;
  for (i = 0; i < nnodes; i++) {
    if (node_exec[i] < k || node_exec[i] < 0) return 0; /* layers run in the steps' order */
    while (k < node_exec[i]) { /* on to the next EXEC step */
      while (s < p->nsteps && strcmp(p->steps[s].kind, "exec") != 0) s++;
      if (s >= p->nsteps) return 0;
      at = s++;
      k++;
    }
    if (!node_device[i] || strcmp(node_device[i], p->steps[at].device) != 0) return 0;
    node_step[i] = (int)at;
  }
  return 1;
}

moss_status moss_profile_bundle_file(moss_ctx *ctx, const char *path, int runs,
                                     moss_cost_report *r) {
  mossrt_bundle *b = NULL;
  mossrt_session *s = NULL;
  mossrt_error e;
  moss_profile p;
  const void **ins = NULL;
  void **outs = NULL;
  const char **dev = NULL;
  int *node_step = NULL, *exec = NULL;
  uint32_t ni = 0, no = 0, i;
  moss_status st = MOSS_OK;
  char how[256];
  memset(&p, 0, sizeof p);
  /* One thread: the estimates it is set beside assume one (docs/report.md). */
  if (mossrt_open_file(path, &b, &e) != MOSSRT_OK || mossrt_session_create(b, NULL, 0, &s, &e) ||
      mossrt_session_set_threads(s, 1, &e)) {
    st = moss_fail(ctx, e.status == MOSSRT_E_NOMEM ? MOSS_E_NOMEM : MOSS_E_TARGET, NULL,
                   "--profile runs the bundle on this machine, and libmossrt cannot: %s", e.text);
    goto done;
  }
  ni = mossrt_input_count(b);
  no = mossrt_output_count(b);
  ins = moss_alloc(ctx, sizeof *ins * ((size_t)ni + 1));
  outs = moss_alloc(ctx, sizeof *outs * ((size_t)no + 1));
  dev = moss_alloc(ctx, sizeof *dev * ((size_t)r->nnodes + 1));
  node_step = moss_alloc(ctx, sizeof *node_step * ((size_t)r->nnodes + 1));
  exec = moss_alloc(ctx, sizeof *exec * ((size_t)r->nnodes + 1));
  if (!ins || !outs || !dev || !node_step || !exec) {
    st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "profile");
    goto done;
  }
  for (i = 0; i < ni + no; i++) { /* zeros in: the kernels take the same time on any data */
    mossrt_tensor_info t;
    void *buf;
    if (i < ni) mossrt_input_info(b, i, &t);
    else mossrt_output_info(b, i - ni, &t);
    buf = moss_alloc(ctx, (size_t)t.nbytes + 64);
    if (!buf) {
      st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "profile inputs");
      goto done;
    }
    if (i < ni) ins[i] = buf;
    else outs[i - ni] = buf;
  }
  st = moss_profile_run(ctx, b, s, ins, outs, runs, &p);
  if (st != MOSS_OK) goto done;
  for (i = 0; i < (uint32_t)r->nnodes; i++) {
    dev[i] = r->devices[r->nodes[i].device].id;
    exec[i] = r->nodes[i].step;
  }
  if (!moss_profile_map(&p, r->nnodes, exec, dev, node_step)) {
    st = moss_fail(ctx, MOSS_E_INTERNAL, NULL, "the plan of '%s' does not run the report's layers",
                   path);
    goto done;
  }
  snprintf(how, sizeof how, "%d runs of '%s' on this machine through libmossrt, on zeros; "
           "each step timed with CLOCK_MONOTONIC (moss compile --profile)", p.runs, path);
  st = moss_cost_set_measured(ctx, r, node_step, p.step_s, (int)p.nsteps, p.total_s, p.runs, how,
                              &p.counter);
done:
  if (ins)
    for (i = 0; i < ni; i++)
      if (ins[i]) {
        mossrt_tensor_info t;
        mossrt_input_info(b, i, &t);
        moss_free(ctx, (void *)(uintptr_t)ins[i], (size_t)t.nbytes + 64);
      }
  if (outs)
    for (i = 0; i < no; i++)
      if (outs[i]) {
        mossrt_tensor_info t;
        mossrt_output_info(b, i, &t);
        moss_free(ctx, outs[i], (size_t)t.nbytes + 64);
      }
  moss_free(ctx, ins, ins ? sizeof *ins * ((size_t)ni + 1) : 0);
  moss_free(ctx, outs, outs ? sizeof *outs * ((size_t)no + 1) : 0);
  moss_free(ctx, dev, dev ? sizeof *dev * ((size_t)r->nnodes + 1) : 0);
  moss_free(ctx, node_step, node_step ? sizeof *node_step * ((size_t)r->nnodes + 1) : 0);
  moss_free(ctx, exec, exec ? sizeof *exec * ((size_t)r->nnodes + 1) : 0);
  moss_profile_deinit(ctx, &p);
  mossrt_session_destroy(s);
  mossrt_close(b);
  return st;
}

/* |s| seconds as "12.345 us" in a field of 11. */
static void us(FILE *out, double s) { fprintf(out, "%11.3f us", s * 1e6); }

/* The estimated time of layer |j| of the report's |nodes|: 1 and |*out|,
 * or 0 when it is not-modeled (null) or missing. */
static int node_est(const moss_json *nodes, int j, double *out) {
  const moss_json *n = moss_json_at(nodes, (size_t)j);
  return moss_json_num(moss_json_find(moss_json_find(n, "time_s"), "value"), out);
}

/* A CSV cell: |s| quoted, its quotes doubled; "" for NULL. */
static void csv_str(moss_buf *b, const char *s) {
  moss_buf_put(b, "\"", 1);
  for (; s && *s; s++) {
    if (*s == '"') moss_buf_put(b, "\"", 1);
    moss_buf_put(b, s, 1);
  }
  moss_buf_put(b, "\"", 1);
}

#define CSV_HEADER "step,device,layer,op_type,layers_in_step,step_measured_s,layer_estimated_s\n"

moss_status moss_profile_print(moss_ctx *ctx, const moss_profile *p, const char *artifact,
                               const char *report_json, size_t report_len, FILE *out,
                               const char *csv_path) {
  moss_arena *arena = NULL;
  moss_buf csvbuf, *csv = NULL;
  const moss_json *root = NULL, *nodes = NULL;
  const char **dev = NULL;
  int *node_step = NULL, *exec = NULL, nn = 0, i, j0, matched = 0;
  double sum = 0, est_total = 0;
  uint32_t k;
  moss_status st;
  char why[200] = "";
  if (csv_path) {
    moss_buf_init(&csvbuf, ctx);
    csv = &csvbuf;
  }
  if (!report_json) snprintf(why, sizeof why, "the bundle carries no report");
  else if (moss_arena_create(ctx->alloc, 1 << 16, &arena) != MOSS_OK) {
    st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "profile");
    goto done;
  }
  if (arena) {
    moss_diag_fn sink = ctx->sink; /* an unreadable report is said once, below */
    ctx->sink = NULL;
    st = moss_json_parse(ctx, arena, report_json, report_len, &root);
    ctx->sink = sink;
    if (st == MOSS_E_NOMEM) {
      st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "profile");
      goto done;
    }
    nodes = st == MOSS_OK ? moss_json_find(root, "nodes") : NULL;
    if (moss_json_type(nodes) != MOSS_JSON_ARRAY) {
      nodes = NULL;
      snprintf(why, sizeof why, "its report has no list of layers");
    }
  }
  if (nodes) {
    nn = (int)moss_json_len(nodes);
    dev = moss_alloc(ctx, sizeof *dev * ((size_t)nn + 1));
    node_step = moss_alloc(ctx, sizeof *node_step * ((size_t)nn + 1));
    exec = moss_alloc(ctx, sizeof *exec * ((size_t)nn + 1));
    if (!dev || !node_step || !exec) {
      st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "profile");
      goto done;
    }
    for (i = 0, matched = 1; i < nn; i++) {
      const moss_json *n = moss_json_at(nodes, (size_t)i);
      double v;
      dev[i] = moss_json_str(moss_json_find(n, "device"));
      if (!moss_json_num(moss_json_find(n, "step"), &v) || v < 0 || v > 1e9 || v != (int)v)
        matched = 0; /* no step: the report is not a bundle's */
      else
        exec[i] = (int)v;
    }
    matched = matched && moss_profile_map(p, nn, exec, dev, node_step);
    if (!matched) snprintf(why, sizeof why, "its report's layers do not match its plan");
  }
  fprintf(out, "%s: profile of %d runs through libmossrt, median per step (CLOCK_MONOTONIC)\n",
          artifact, p->runs);
  if (!matched) fprintf(out, "  (steps only: %s)\n", why);
  fprintf(out, "  step  %-8s %14s %14s  %8s  %s\n", "device", "measured", "estimated", "meas/est",
          "layer (op)");
  if (csv) moss_buf_put(csv, CSV_HEADER, sizeof CSV_HEADER - 1);
  for (k = 0, j0 = 0; k < p->nsteps; k++) {
    const mossrt_step_desc *d = &p->steps[k];
    int first = 1, j, j1;
    double est = 0;
    int est_ok = matched;
    sum += p->step_s[k];
    /* The layers of step k: node_step is in step order (moss_profile_map). */
    while (matched && j0 < nn && node_step[j0] < (int)k) j0++;
    for (j1 = j0; matched && j1 < nn && node_step[j1] == (int)k; j1++) {
      double v;
      if (node_est(nodes, j1, &v)) est += v;
      else est_ok = 0; /* not-modeled: null */
    }
    fprintf(out, "  %4u  %-8.8s", k, d->device ? d->device : "?");
    us(out, p->step_s[k]);
    if (est_ok && est > 0) {
      us(out, est);
      fprintf(out, "  %7.2fx", p->step_s[k] / est);
      est_total += est;
    } else if (est_ok && nn > 0 && !strcmp(d->kind, "exec")) {
      us(out, est);
      fprintf(out, "  %8s", "");
    } else {
      fprintf(out, " %14s  %8s", strcmp(d->kind, "exec") ? "" : "-", "");
    }
    if (strcmp(d->kind, "exec") != 0) fprintf(out, "  transfer from %s\n", d->from ? d->from : "?");
    for (j = j0; j < j1; j++) {
      const moss_json *n = moss_json_at(nodes, (size_t)j);
      const char *name = moss_json_str(moss_json_find(n, "name"));
      const char *op = moss_json_str(moss_json_find(n, "op_type"));
      double v;
      fprintf(out, "%s%s (%s)\n", first ? "  " : "  \u2026 also ", name ? name : "?", op ? op : "?");
      first = 0;
      if (csv) {
        moss_buf_printf(csv, "%u,", k);
        csv_str(csv, d->device);
        moss_buf_put(csv, ",", 1);
        csv_str(csv, name);
        moss_buf_put(csv, ",", 1);
        csv_str(csv, op);
        moss_buf_printf(csv, ",%d,%.9g,", j1 - j0, p->step_s[k]);
        if (node_est(nodes, j, &v)) moss_buf_printf(csv, "%.9g", v);
        moss_buf_put(csv, "\n", 1);
      }
    }
    if (first && !strcmp(d->kind, "exec")) {
      fprintf(out, "  %s\n", d->entry ? d->entry : "plugin blob");
      if (csv) {
        moss_buf_printf(csv, "%u,", k);
        csv_str(csv, d->device);
        moss_buf_put(csv, ",", 1);
        csv_str(csv, d->entry ? d->entry : "plugin blob");
        moss_buf_printf(csv, ",,0,%.9g,\n", p->step_s[k]);
      }
    }
  }
  fprintf(out, "  whole run: median %.3f us (the steps' medians sum to %.3f us)", p->total_s * 1e6,
          sum * 1e6);
  if (est_total > 0) fprintf(out, "; estimated %.3f us", est_total * 1e6);
  fprintf(out, "\n  energy counter: ");
  if (p->counter.label && strcmp(p->counter.label, "not-modeled") != 0)
    fprintf(out, "%.6g J per run (%s: %s)\n", p->counter.value, p->counter.label,
            p->counter.source);
  else
    fprintf(out, "not-modeled (%s)\n", p->counter.source ? p->counter.source : "not read");
  st = MOSS_OK;
  if (csv && csv->failed) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "profile table");
  else if (csv) st = moss_file_write(ctx, csv_path, csv->data, csv->len);
done:
  if (csv) moss_buf_deinit(csv);
  moss_free(ctx, dev, dev ? sizeof *dev * ((size_t)nn + 1) : 0);
  moss_free(ctx, node_step, node_step ? sizeof *node_step * ((size_t)nn + 1) : 0);
  moss_free(ctx, exec, exec ? sizeof *exec * ((size_t)nn + 1) : 0);
  if (arena) moss_arena_destroy(arena);
  return st;
}

/* ---- a plugin device's own counters ---------------------------------------- */

/* The report's layer called |name| on device |device|; NULL when none. */
static const moss_json *report_node(const moss_json *nodes, const char *name, const char *device) {
  size_t j, n = moss_json_len(nodes);
  for (j = 0; j < n; j++) {
    const moss_json *v = moss_json_at(nodes, j);
    const char *nm = moss_json_str(moss_json_find(v, "name"));
    const char *dv = moss_json_str(moss_json_find(v, "device"));
    if (nm && dv && !strcmp(nm, name) && !strcmp(dv, device)) return v;
  }
  return NULL;
}

static int figure(const moss_json *node, const char *key, double *out) {
  return moss_json_num(moss_json_find(moss_json_find(node, key), "value"), out);
}

/* |v| bytes with a binary prefix, in 9 columns. */
static void bytes9(FILE *out, uint64_t v) {
  if (v < 10000) fprintf(out, " %8llu", (unsigned long long)v);
  else if (v < 10000ull * 1024) fprintf(out, " %7.1fK", (double)v / 1024);
  else fprintf(out, " %7.1fM", (double)v / (1024.0 * 1024));
}

moss_status moss_profile_counters(moss_ctx *ctx, mossrt_bundle *b, mossrt_session *s,
                                  const char *report_json, size_t report_len, FILE *out) {
  moss_arena *arena = NULL;
  const moss_json *root = NULL, *nodes = NULL;
  mossrt_counters *c = NULL;
  uint32_t i, n, k, cap = 0, nsteps = mossrt_step_count(b);
  mossrt_error e;
  moss_status st = MOSS_OK;
  int any = 0;
  if (report_json && moss_arena_create(ctx->alloc, 1 << 16, &arena) == MOSS_OK) {
    moss_diag_fn sink = ctx->sink;
    ctx->sink = NULL;
    if (moss_json_parse(ctx, arena, report_json, report_len, &root) == MOSS_OK)
      nodes = moss_json_find(root, "nodes");
    ctx->sink = sink;
    if (moss_json_type(nodes) != MOSS_JSON_ARRAY) nodes = NULL;
  }
  for (i = 0; i < nsteps && st == MOSS_OK; i++) {
    mossrt_step_desc d;
    double tc = 0, te = 0, ec = 0, ee = 0;
    uint64_t cyc = 0, macs = 0, dram = 0, peak = 0;
    int est_ok = 1, e_ok = 1;
    if (mossrt_step_counters(s, i, NULL, 0, &n, &e) != MOSSRT_OK) {
      st = moss_fail(ctx, MOSS_E_IO, NULL, "%s", e.text);
      break;
    }
    if (n == 0) continue;
    if (n > cap) {
      moss_free(ctx, c, sizeof *c * cap);
      cap = 0;
      if (!(c = moss_alloc(ctx, sizeof *c * n))) {
        st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "device counters");
        break;
      }
      cap = n;
    }
    if (mossrt_step_counters(s, i, c, cap, &n, &e) != MOSSRT_OK) {
      st = moss_fail(ctx, MOSS_E_IO, NULL, "%s", e.text);
      break;
    }
    mossrt_step_info(b, i, &d);
    if (!any)
      fprintf(out, "device counters of the last run (platform-model: each plugin device's own "
                   "count), beside the compile-time estimate (report)\n");
    any = 1;
    fprintf(out, "  step %u on %s, %u layers at %.0f MHz:\n", i, d.device ? d.device : "?", n,
            c[0].clock_mhz);
    fprintf(out, "  %-32s %-13s %10s %10s %10s %10s %12s %5s %9s %9s %9s %10s %10s %7s %7s\n",
            "layer", "op", "cycles", "dma", "array", "vector", "MACs", "util", "dram rd", "dram wr",
            "sram pk", "energy", "est energy", "cyc/est", "E/est");
    for (k = 0; k < n; k++) {
      const mossrt_counters *q = &c[k];
      const moss_json *rn = nodes ? report_node(nodes, q->layer, d.device ? d.device : "") : NULL;
      double t = q->clock_mhz > 0 ? (double)q->cycles / (q->clock_mhz * 1e6) : 0, et = 0, ej = 0;
      int has_t = rn && figure(rn, "time_s", &et), has_e = rn && figure(rn, "energy_j", &ej);
      double util = q->peak_macs_per_cycle && q->cycles
                        ? 100.0 * (double)q->macs / ((double)q->cycles * (double)q->peak_macs_per_cycle)
                        : 0;
      fprintf(out, "  %-32.32s %-13.13s %10llu %10llu %10llu %10llu %12llu %4.0f%%", q->layer,
              q->op_type, (unsigned long long)q->cycles, (unsigned long long)q->dma_cycles,
              (unsigned long long)q->array_cycles, (unsigned long long)q->vector_cycles,
              (unsigned long long)q->macs, util);
      bytes9(out, q->dram_read_bytes);
      bytes9(out, q->dram_write_bytes);
      bytes9(out, q->sram_peak_bytes);
      if (q->energy_pj >= 0) fprintf(out, " %7.2f uJ", q->energy_pj * 1e-6);
      else fprintf(out, " %10s", "-");
      if (has_e) fprintf(out, " %7.2f uJ", ej * 1e6);
      else fprintf(out, " %10s", "-");
      if (has_t && et > 0 && t > 0) fprintf(out, " %6.2fx", t / et);
      else fprintf(out, " %7s", "-");
      if (has_e && ej > 0 && q->energy_pj >= 0) fprintf(out, " %6.2fx\n", q->energy_pj * 1e-12 / ej);
      else fprintf(out, " %7s\n", "-");
      cyc += q->cycles;
      macs += q->macs;
      dram += q->dram_read_bytes + q->dram_write_bytes;
      if (q->sram_peak_bytes > peak) peak = q->sram_peak_bytes;
      tc += t;
      if (has_t) te += et;
      else est_ok = 0;
      if (q->energy_pj >= 0 && has_e) {
        ec += q->energy_pj * 1e-12;
        ee += ej;
      } else {
        e_ok = 0;
      }
    }
    fprintf(out, "  step %u total: %llu cycles (%.3f us), %llu MACs (%.1f%% of the array's peak), "
                 "%llu DRAM bytes, SRAM peak %llu bytes\n",
            i, (unsigned long long)cyc, tc * 1e6, (unsigned long long)macs,
            cyc && c[0].peak_macs_per_cycle
                ? 100.0 * (double)macs / ((double)cyc * (double)c[0].peak_macs_per_cycle)
                : 0.0,
            (unsigned long long)dram, (unsigned long long)peak);
    if (est_ok && te > 0)
      fprintf(out, "  step %u vs estimate: time %.3f us counted / %.3f us estimated = %.2fx", i,
              tc * 1e6, te * 1e6, tc / te);
    else
      fprintf(out, "  step %u vs estimate: time not in the report", i);
    if (e_ok && ee > 0)
      fprintf(out, "; energy %.3f uJ counted / %.3f uJ estimated = %.2fx\n", ec * 1e6, ee * 1e6,
              ec / ee);
    else
      fprintf(out, "; energy not comparable (a figure is not modeled)\n");
  }
  moss_free(ctx, c, sizeof *c * cap);
  if (arena) moss_arena_destroy(arena);
  return st;
}
