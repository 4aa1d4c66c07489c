/* compare.c - `moss compare MODEL --targets a,b,c`: runs the compile
 * pipeline once per target, stopping after the cost model (no code is
 * emitted), and prints one table ranked by energy with time and memory
 * columns and the rank by each. A target that fails does not stop the others:
 * its row says why. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cost/cost.h"
#include "driver.h"

#define MAX_TARGETS 64
#define ERR_CAP 600

/* Keeps the first diagnostic of a target's compile for its row. */
typedef struct capture {
  char first[512];
  int n;
} capture;

static void capture_diag(void *user, moss_status code, const char *msg) {
  capture *c = user;
  (void)code;
  if (c->n++ == 0) snprintf(c->first, sizeof c->first, "%s", msg);
}

static int is_nm(const moss_cost_figure *f) { return !strcmp(f->label, "not-modeled"); }

/* "1.23 µJ": |v| with an SI prefix; "?" for a not-modeled figure. */
static void si(const moss_cost_figure *f, const char *unit, char *buf, size_t cap) {
  static const char *pre[] = {"p", "n", "\xc2\xb5", "m", "", "k", "M", "G"};
  double v = f->value, a = fabs(v);
  int e = 4;
  if (is_nm(f)) {
    snprintf(buf, cap, "? (not-modeled)");
    return;
  }
  if (v != 0) {
    while (a < 1 && e > 0) a *= 1000, v *= 1000, e--;
    while (a >= 1000 && e < 7) a /= 1000, v /= 1000, e++;
  }
  snprintf(buf, cap, "%.3g %s%s%s", v, v == 0 ? "" : pre[e], unit, f->partial ? " (partial)" : "");
}

/* |s| then spaces up to |width| columns (UTF-8 aware), then one space. */
static void cell(moss_buf *out, const char *s, int width) {
  int cols = 0;
  const char *p;
  for (p = s; *p; p++) cols += ((unsigned char)*p & 0xc0) != 0x80;
  moss_buf_printf(out, "%s%*s ", s, cols < width ? width - cols : 0, "");
}

/* A sort key: not-modeled sorts last. */
static double key(const moss_cost_figure *f) { return is_nm(f) ? HUGE_VAL : f->value; }

static double mem_of(const moss_cost_report *r) {
  return (double)r->total.arena_bytes + (double)r->total.weight_bytes;
}

/* rank[i] = 1 + how many costed targets have a smaller value (ties share). */
static void ranks(moss_cost_report *const *reps, int n, int which, int *rank) {
  int i, j;
  for (i = 0; i < n; i++) {
    double vi;
    rank[i] = 0;
    if (!reps[i]) continue;
    vi = which == 0 ? key(&reps[i]->total.energy_j)
                    : which == 1 ? key(&reps[i]->total.time_s) : mem_of(reps[i]);
    rank[i] = 1;
    for (j = 0; j < n; j++) {
      double vj;
      if (!reps[j] || j == i) continue;
      vj = which == 0 ? key(&reps[j]->total.energy_j)
                      : which == 1 ? key(&reps[j]->total.time_s) : mem_of(reps[j]);
      rank[i] += vj < vi;
    }
  }
}

void moss_compare_table(const char *const *targets, moss_cost_report *const *reps,
                        const char *const *errors, int n, moss_buf *out) {
  int re[MAX_TARGETS], rt[MAX_TARGETS], rm[MAX_TARGETS], order[MAX_TARGETS];
  int i, j, m = n < MAX_TARGETS ? n : MAX_TARGETS, w = 6, partial = 0;
  const moss_cost_report *any = NULL;
  for (i = 0; i < m; i++)
    if ((int)strlen(targets[i]) > w) w = (int)strlen(targets[i]);
  ranks(reps, m, 0, re);
  ranks(reps, m, 1, rt);
  ranks(reps, m, 2, rm);
  /* Costed targets by energy rank (then name), failed ones after, in the
   * order given. */
  for (i = 0; i < m; i++) order[i] = i;
  for (i = 1; i < m; i++) {
    int x = order[i];
    for (j = i; j > 0; j--) {
      int y = order[j - 1], before;
      if (!reps[y]) before = reps[x] != NULL;
      else if (!reps[x]) before = 0;
      else before = re[x] < re[y] || (re[x] == re[y] && strcmp(targets[x], targets[y]) < 0);
      if (!before) break;
      order[j] = y;
    }
    order[j] = x;
  }
  moss_buf_printf(out, "%-4s %-*s ", "rank", w, "target");
  cell(out, "energy (op-model)", 24);
  cell(out, "energy (platform-model)", 24);
  cell(out, "time", 18);
  cell(out, "memory (arena+weights)", 26);
  cell(out, "carbon per 1e6 inf.", 24);
  moss_buf_printf(out, "%5s %5s\n", "#time", "#mem");
  for (i = 0; i < m; i++) {
    int k = order[i];
    const moss_cost_report *r = reps[k];
    char e[64], p[64], t[64], mem[64], c[64];
    if (!r) {
      moss_buf_printf(out, "%-4s %-*s failed: %s\n", "-", w, targets[k],
                      errors && errors[k] ? errors[k] : "unknown error");
      continue;
    }
    si(&r->total.energy_j, "J", e, sizeof e);
    si(&r->total.platform_j, "J", p, sizeof p);
    si(&r->total.time_s, "s", t, sizeof t);
    snprintf(mem, sizeof mem, "%lld B (%lld+%lld)", (long long)mem_of(r),
             (long long)r->total.arena_bytes, (long long)r->total.weight_bytes);
    si(&r->total.carbon_g_per_million, "gCO2e", c, sizeof c);
    moss_buf_printf(out, "%-4d %-*s ", re[k], w, targets[k]);
    cell(out, e, 24);
    cell(out, p, 24);
    cell(out, t, 18);
    cell(out, mem, 26);
    cell(out, c, 24);
    moss_buf_printf(out, "%5d %5d\n", rt[k], rm[k]);
    any = r;
    partial |= r->total.energy_j.partial || r->total.time_s.partial;
  }
  if (partial)
    moss_buf_printf(out, "partial: the target lacks some figures (not-modeled); the value covers "
                         "the rest and is a lower bound (see --report)\n");
  if (any)
    moss_buf_printf(out, "grid intensity %g gCO2e/kWh%s\n", any->grid_g_per_kwh,
                    any->grid_fallback ? " (fallback: IEA 2019 world average; give "
                                         "--grid-intensity)"
                                       : "");
}

/* Copies of the NAME part of NAME=VALUE arguments, freed together. */
typedef struct args {
  moss_onnx_binding b[256];
  char *names[256];
  int nb;
  char *tlist;                  /* a copy of the --targets value, split in place */
  size_t tlen;
  const char *targets[MAX_TARGETS];
  int nt;
} args;

static moss_status add_binding(moss_ctx *ctx, args *a, const char *arg, int is_file) {
  const char *eq = strchr(arg, '=');
  char *name;
  if (!eq || eq == arg)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "moss compare: expected NAME=%s, got '%s'",
                     is_file ? "FILE" : "SHAPE", arg);
  if (a->nb == (int)(sizeof a->b / sizeof a->b[0]))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "moss compare: too many bindings");
  name = moss_alloc(ctx, (size_t)(eq - arg) + 1);
  if (!name) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "arguments");
  memcpy(name, arg, (size_t)(eq - arg));
  a->names[a->nb] = name;
  a->b[a->nb].name = name;
  a->b[a->nb].shape = is_file ? NULL : eq + 1;
  a->b[a->nb].file = is_file ? eq + 1 : NULL;
  a->nb++;
  return MOSS_OK;
}

static moss_status split_targets(moss_ctx *ctx, args *a, const char *list) {
  char *p;
  a->tlen = strlen(list) + 1;
  a->tlist = moss_alloc(ctx, a->tlen);
  if (!a->tlist) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "arguments");
  memcpy(a->tlist, list, a->tlen);
  for (p = strtok(a->tlist, ","); p; p = strtok(NULL, ",")) {
    if (a->nt == MAX_TARGETS)
      return moss_fail(ctx, MOSS_E_TARGET, NULL, "moss compare: more than %d targets",
                       MAX_TARGETS);
    a->targets[a->nt++] = p;
  }
  if (a->nt == 0) return moss_fail(ctx, MOSS_E_TARGET, NULL, "moss compare: --targets is empty");
  return MOSS_OK;
}

static moss_status parse(moss_ctx *ctx, int argc, char **argv, args *a, const char **model,
                         double *grid) {
  int i;
  for (i = 1; i < argc; i++) {
    const char *s = argv[i];
    int has = i + 1 < argc;
    if ((!strcmp(s, "--targets") || !strcmp(s, "--input-shape") || !strcmp(s, "--constant") ||
         !strcmp(s, "--grid-intensity")) && !has)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "moss compare: %s needs a value", s);
    if (!strcmp(s, "--targets")) {
      if (a->tlist)
        return moss_fail(ctx, MOSS_E_TARGET, NULL, "moss compare: --targets given twice");
      MOSS_TRY(split_targets(ctx, a, argv[++i]));
    } else if (!strcmp(s, "--input-shape")) MOSS_TRY(add_binding(ctx, a, argv[++i], 0));
    else if (!strcmp(s, "--constant")) MOSS_TRY(add_binding(ctx, a, argv[++i], 1));
    else if (!strcmp(s, "--grid-intensity")) {
      char *end;
      *grid = strtod(argv[++i], &end);
      if (*end || !(*grid > 0) || *grid > 1e5)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                         "moss compare: --grid-intensity wants gCO2e/kWh, a number above 0, got "
                         "'%s'", argv[i]);
    } else if (s[0] == '-')
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "moss compare: unknown option '%s'", s);
    else if (*model)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                       "moss compare: more than one model given ('%s', '%s')", *model, s);
    else *model = s;
  }
  if (!*model) return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "moss compare: no model given");
  if (!a->tlist)
    return moss_fail(ctx, MOSS_E_TARGET, NULL, "moss compare: no --targets a,b,c given");
  return MOSS_OK;
}

moss_status moss_compare_cli(moss_ctx *ctx, int argc, char **argv) {
  args *a = moss_alloc(ctx, sizeof *a);
  moss_cost_report *reps[MAX_TARGETS] = {0};
  char *errs[MAX_TARGETS] = {0};
  const char *model = NULL, *file = ctx->file;
  double grid = 0;
  moss_status st, first = MOSS_OK;
  int i, ok = 0;
  moss_buf out;

  if (!a) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "arguments");
  ctx->file = "moss compare";
  st = parse(ctx, argc, argv, a, &model, &grid);
  ctx->file = file;
  for (i = 0; st == MOSS_OK && i < a->nt; i++) {
    moss_compile_opts o;
    capture cap;
    moss_diag_fn sink = ctx->sink;
    void *user = ctx->sink_user;
    moss_status ts;
    memset(&o, 0, sizeof o);
    memset(&cap, 0, sizeof cap);
    o.model = model;
    o.target = a->targets[i];
    o.bindings = a->b;
    o.nbindings = a->nb;
    o.grid_intensity = grid;
    o.no_emit = 1;
    o.cost_out = &reps[i];
    ctx->sink = capture_diag;
    ctx->sink_user = &cap;
    ts = moss_compile(ctx, &o);
    ctx->sink = sink;
    ctx->sink_user = user;
    ctx->file = file;
    if (ts == MOSS_OK && !reps[i]) {
      ts = MOSS_E_INTERNAL;
      snprintf(cap.first, sizeof cap.first, "the pipeline returned no cost report");
    }
    if (ts != MOSS_OK) {
      if (reps[i]) moss_cost_destroy(ctx, reps[i]);
      reps[i] = NULL;
      errs[i] = moss_alloc(ctx, ERR_CAP);
      if (errs[i]) {
        if (cap.n > 1) snprintf(errs[i], ERR_CAP, "%s (+%d more)", cap.first, cap.n - 1);
        else snprintf(errs[i], ERR_CAP, "%s", cap.first[0] ? cap.first : "failed");
      }
      if (first == MOSS_OK) first = ts;
    } else ok++;
  }
  if (st == MOSS_OK) {
    moss_buf_init(&out, ctx);
    moss_compare_table(a->targets, reps, (const char *const *)errs, a->nt, &out);
    if (out.failed) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "compare table");
    else fputs(out.data ? out.data : "", stdout);
    moss_buf_deinit(&out);
    if (st == MOSS_OK && !ok) st = first;
  }
  for (i = 0; i < a->nt; i++) {
    moss_cost_destroy(ctx, reps[i]);
    if (errs[i]) moss_free(ctx, errs[i], ERR_CAP);
  }
  for (i = 0; i < a->nb; i++) moss_free(ctx, a->names[i], strlen(a->names[i]) + 1);
  if (a->tlist) moss_free(ctx, a->tlist, a->tlen);
  moss_free(ctx, a, sizeof *a);
  return st;
}
