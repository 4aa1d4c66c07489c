/* budget.c - `moss compile MODEL --budget ACC --eval X Y` and `--plan FILE`
 * (docs/budget.md): the least estimated energy per inference on the target
 * whose measured top-1 accuracy on X stays within ACC of the fp32 dense
 * model's, searched per Conv/Gemm/MatMul layer over precision (fp32, int8
 * per-channel) and magnitude sparsity, and the plan file that replays the
 * choice.
 *
 * A configuration is one compile: its layers' precision becomes --quantize
 * int8 with --keep-float naming the fp32 layers, its sparsity a per-layer
 * --prune spec (passes/prune.h). Energy is the target's cost report (the
 * platform model, or the op model where the target has no power figures);
 * accuracy is a bundle of the same configuration compiled for this machine
 * and run on X (the integer kernels compute the same on every target; float
 * ones differ by rounding only).
 *
 * The search: fp32 dense and uniform int8 first; then each layer alone in
 * each of its options (the sensitivity: accuracy lost, energy saved); then,
 * greedily, the options by energy saved per accuracy lost, each tried on top
 * of the moves kept so far and kept when the combined model is measured
 * within the budget at less energy. The answer is the cheapest point
 * measured within the budget, so never worse than fp32 dense or uniform
 * int8 where those are within it. Every compile counts against --max-evals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cost/cost.h"
#include "driver.h"
#include "progress.h"

#define MAX_LAYERS 256
/* Low ratios too: without retraining a layer often keeps its accuracy only
 * at 0.2-0.3, and its sparse kernel already saves there on some targets. */
#define NRATIOS 5
static const char *const ratios[NRATIOS] = {"magnitude:0.2", "magnitude:0.3", "magnitude:0.5",
                                            "magnitude:0.75", "magnitude:0.9"};
#define NOPTS (2 * (NRATIOS + 1)) /* option o: int8 = o / (NRATIOS + 1), ratio o % (NRATIOS + 1) */

/* One layer's configuration: int8 or fp32, and its --prune spec (NULL: dense). */
typedef struct layer_cfg {
  int int8;
  const char *sparsity;
} layer_cfg;

/* The model's layers (names after fusion, in graph order). */
typedef struct layers {
  int n;
  char *name[MAX_LAYERS];
} layers;

static void layers_free(moss_ctx *ctx, layers *ls) {
  int i;
  for (i = 0; i < ls->n; i++) moss_free(ctx, ls->name[i], strlen(ls->name[i]) + 1);
  ls->n = 0;
}

static const char *opt_sparsity(int o) {
  return o % (NRATIOS + 1) ? ratios[o % (NRATIOS + 1) - 1] : NULL;
}

/* Keeps the first diagnostic of a compile the search tries. */
typedef struct capture {
  char first[512];
  int n;
} capture;

static void capture_diag(void *user, moss_status code, const char *msg) {
  capture *c = user;
  (void)code;
  if (c->n++ == 0) snprintf(c->first, sizeof c->first, "%s", msg);
}

/* |o| made quiet: no summary, report, dump or side file. */
static void quiet(moss_compile_opts *o) {
  o->verbose = 0;
  o->report = NULL;
  o->explain = 0;
  o->dump_ir = 0;
  o->dump_kernels = 0;
  o->dump_after = NULL;
  o->depfile = NULL;
  o->inputs = NULL;
  o->profile = 0;
  o->sign_key = NULL;
  o->cost_out = NULL;
  o->timings = 0;
}

/* The model's Conv/Gemm/MatMul layers, from the fp32 dense compile's cost
 * report on the target (names after fusion, as --keep-float and --prune
 * take them). */
static moss_status find_layers(moss_ctx *ctx, const moss_compile_opts *opts, layers *ls) {
  moss_compile_opts o = *opts;
  moss_cost_report *r = NULL;
  moss_status st;
  int i;
  quiet(&o);
  o.quantize = NULL;
  o.keep_float = NULL;
  o.prune = NULL;
  o.no_emit = 1;
  o.cost_out = &r;
  memset(ls, 0, sizeof *ls);
  MOSS_TRY(moss_compile(ctx, &o));
  st = MOSS_OK;
  for (i = 0; i < r->nnodes && st == MOSS_OK; i++) {
    const moss_cost_node *n = &r->nodes[i];
    if (strcmp(n->op_type, "Conv") && strcmp(n->op_type, "Gemm") && strcmp(n->op_type, "MatMul"))
      continue;
    if (ls->n == MAX_LAYERS)
      st = moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "--budget/--plan: more than %d Conv, Gemm and "
                     "MatMul layers", MAX_LAYERS);
    else if (!(ls->name[ls->n] = moss_alloc(ctx, strlen(n->name) + 1)))
      st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "layer names");
    else memcpy(ls->name[ls->n++], n->name, strlen(n->name) + 1);
  }
  moss_cost_destroy(ctx, r);
  if (st == MOSS_OK && ls->n == 0)
    st = moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                   "--budget/--plan: the model has no Conv, Gemm or MatMul layer to configure");
  if (st != MOSS_OK) layers_free(ctx, ls);
  return st;
}

/* The compile options of configuration |cfg|: --quantize int8 and
 * --keep-float for the precision, a per-layer --prune for the sparsity
 * (strings in |kf| and |pr|). */
static void cfg_opts(const moss_compile_opts *base, const layers *ls, const layer_cfg *cfg,
                     moss_buf *kf, moss_buf *pr, moss_compile_opts *o) {
  int i, any8 = 0;
  *o = *base;
  kf->len = pr->len = 0;
  moss_buf_put(kf, "", 1);
  moss_buf_put(pr, "", 1);
  kf->len = pr->len = 0;
  for (i = 0; i < ls->n; i++) {
    any8 |= cfg[i].int8;
    if (!cfg[i].int8) moss_buf_printf(kf, "%s%s", kf->len ? "," : "", ls->name[i]);
    if (cfg[i].sparsity)
      moss_buf_printf(pr, "%slayer=%s:%s", pr->len ? "," : "", ls->name[i], cfg[i].sparsity);
  }
  o->quantize = any8 ? "int8" : NULL;
  o->keep_float = any8 && kf->len ? kf->data : NULL;
  o->prune = pr->len ? pr->data : NULL;
}

/* ---- the plan file ---- */

static moss_status plan_write(moss_ctx *ctx, const char *path, const layers *ls, const layer_cfg *cfg) {
  moss_buf b;
  moss_status st;
  int i;
  moss_buf_init(&b, ctx);
  moss_buf_printf(&b, "# moss plan: per layer, precision, sparsity, node (docs/budget.md)\n"
                      "moss-plan 1\n");
  for (i = 0; i < ls->n; i++)
    moss_buf_printf(&b, "%s %s %s\n", cfg[i].int8 ? "int8" : "fp32",
                    cfg[i].sparsity ? cfg[i].sparsity : "dense",
                    ls->name[i]);
  st = b.failed ? moss_fail(ctx, MOSS_E_NOMEM, NULL, "plan") : moss_file_write(ctx, path, b.data, b.len);
  moss_buf_deinit(&b);
  return st;
}

/* Reads |path| into |cfg| (sparsity strings point into |*text|, which the
 * caller frees: |*text_size| + 1 bytes). Every node the plan names must be
 * one of |ls|, once; a layer it does not name stays fp32 dense. */
static moss_status plan_read(moss_ctx *ctx, const char *path, const layers *ls, layer_cfg *cfg,
                             uint8_t **text, size_t *text_size) {
  const char *saved = ctx->file;
  char *p, *line;
  int lineno = 0, header = 0, i;
  unsigned char seen[MAX_LAYERS];
  moss_status st = MOSS_OK;
  memset(seen, 0, sizeof seen);
  memset(cfg, 0, sizeof *cfg * (size_t)ls->n);
  ctx->file = path;
  MOSS_TRY(moss_file_read(ctx, path, text, text_size));
  for (p = (char *)*text; st == MOSS_OK && *p; p = line) {
    char *nl = strchr(p, '\n'), *prec, *sp, *name;
    line = nl ? nl + 1 : p + strlen(p);
    if (nl) *nl = 0;
    lineno++;
    if (nl && nl > p && nl[-1] == '\r') nl[-1] = 0;
    if (!*p || *p == '#') continue;
    if (!header) {
      if (strcmp(p, "moss-plan 1"))
        st = moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "line %d: expected 'moss-plan 1' first, "
                       "got '%s'", lineno, p);
      header = 1;
      continue;
    }
    prec = p;
    sp = strchr(prec, ' ');
    name = sp ? strchr(sp + 1, ' ') : NULL;
    if (!name || !name[1]) {
      st = moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "line %d: expected 'PRECISION SPARSITY "
                     "NODE' (fp32|int8, dense|SPEC, a node name), got '%s'", lineno, p);
      break;
    }
    *sp++ = 0;
    *name++ = 0;
    for (i = 0; i < ls->n && strcmp(ls->name[i], name); i++) continue;
    if (i == ls->n)
      st = moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "line %d: the model has no Conv, Gemm or "
                     "MatMul layer named '%s' (names after fusion: see --dump-after=fuse)",
                     lineno, name);
    else if (seen[i])
      st = moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "line %d: layer '%s' is named twice", lineno,
                     name);
    else if (strcmp(prec, "fp32") && strcmp(prec, "int8"))
      st = moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "line %d: precision '%s': expected fp32 or "
                     "int8", lineno, prec);
    else if (strchr(sp, ',') || !*sp)
      st = moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "line %d: sparsity '%s': expected dense or "
                     "one --prune spec (magnitude:R, block:HxW:R, nm:N:M)", lineno, sp);
    else {
      seen[i] = 1;
      cfg[i].int8 = !strcmp(prec, "int8");
      cfg[i].sparsity = strcmp(sp, "dense") ? sp : NULL;
    }
  }
  if (st == MOSS_OK && !header)
    st = moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "not a plan: no 'moss-plan 1' line");
  ctx->file = saved;
  return st;
}

/* The compile of |cfg| as the artifact, with the caller's output options
 * (the plan replayed, or the search's answer). */
static moss_status compile_cfg(moss_ctx *ctx, const moss_compile_opts *opts, const layers *ls,
                               const layer_cfg *cfg) {
  moss_buf kf, pr;
  moss_compile_opts o;
  moss_status st;
  int i, any8 = 0;
  for (i = 0; i < ls->n; i++) any8 |= cfg[i].int8;
  if (any8 && !opts->calibration)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "the plan has int8 layers: give "
                     "--calibration DATA (the data the search calibrated on)");
  moss_buf_init(&kf, ctx);
  moss_buf_init(&pr, ctx);
  cfg_opts(opts, ls, cfg, &kf, &pr, &o);
  st = kf.failed || pr.failed ? moss_fail(ctx, MOSS_E_NOMEM, NULL, "plan") : moss_compile(ctx, &o);
  moss_buf_deinit(&kf);
  moss_buf_deinit(&pr);
  return st;
}

moss_status moss_plan_compile(moss_ctx *ctx, const moss_compile_opts *opts, const char *plan) {
  layers ls;
  layer_cfg cfg[MAX_LAYERS];
  uint8_t *text = NULL;
  size_t size = 0;
  moss_status st;
  MOSS_TRY(find_layers(ctx, opts, &ls));
  st = plan_read(ctx, plan, &ls, cfg, &text, &size);
  if (st == MOSS_OK) st = compile_cfg(ctx, opts, &ls, cfg);
  if (text) moss_free(ctx, text, size + 1);
  layers_free(ctx, &ls);
  return st;
}

/* ---- the search ---- */

moss_status moss_budget_parse(moss_ctx *ctx, const char *s, double *out) {
  char *end;
  double v = strtod(s, &end);
  int pct = *end == '%';
  if (!strncmp(s, "rel-l2:", 7))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "--budget %s: the relative output error "
                     "budget is not implemented yet; give a top-1 accuracy drop (0.5%% or 0.005) "
                     "with --eval X.npy Y.npy", s);
  if (end == s || s[0] == '-' || s[0] == '+' || (pct ? end[1] != 0 : *end != 0) || !(v >= 0) ||
      (pct ? v >= 100 : v >= 1))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "--budget '%s': expected the largest "
                     "accepted drop in top-1 accuracy, a percentage such as 0.5%% or a share "
                     "such as 0.005 (0 <= drop < 1)", s);
  *out = pct ? v / 100 : v;
  return MOSS_OK;
}

/* One configuration measured. */
typedef struct point {
  char what[300];
  layer_cfg cfg[MAX_LAYERS];
  int64_t right;
  double acc, energy;
  int ok;     /* compiled and measured */
  int within; /* the drop is within the budget */
} point;

typedef struct search {
  moss_ctx *ctx;
  const moss_compile_opts *opts;
  const layers *ls;
  char dir[4096];          /* temporary folder of the accuracy bundles */
  const char *x, *y;
  int host_target;         /* the target is this machine: one compile measures both */
  int platform;            /* 1: platform-model energy; 0: op-model (no power figures) */
  int evals, max_evals;
  double budget;
  int64_t n, right0;       /* samples of X; right answers of fp32 dense */
  point *pts;
  int npts;
} search;

static double energy_of(const search *s, const moss_cost_report *r) {
  return s->platform ? r->total.platform_j.value : r->total.energy_j.value;
}

/* Compiles and measures |cfg| as point |what|; a configuration that fails
 * to compile is recorded (ok 0) with the first diagnostic. Returns the
 * point, or NULL when the evaluations are spent. */
static point *measure(search *s, const layer_cfg *cfg, const char *what) {
  moss_ctx *ctx = s->ctx;
  point *p;
  moss_compile_opts o;
  moss_cost_report *r = NULL;
  moss_buf kf, pr;
  capture cap;
  moss_diag_fn sink = ctx->sink;
  void *user = ctx->sink_user;
  int nerrors = ctx->nerrors;
  char out[4200];
  moss_eval_result er;
  moss_status st;
  if (s->evals >= s->max_evals) return NULL;
  p = &s->pts[s->npts++];
  memset(p, 0, sizeof *p);
  snprintf(p->what, sizeof p->what, "%s", what);
  memcpy(p->cfg, cfg, sizeof *cfg * (size_t)s->ls->n);
  s->evals++;
  moss_progress_item(what);
  moss_buf_init(&kf, ctx);
  moss_buf_init(&pr, ctx);
  memset(&cap, 0, sizeof cap);
  ctx->sink = capture_diag;
  ctx->sink_user = &cap;
  snprintf(out, sizeof out, "%s/e%d.moss", s->dir, s->evals); /* a new name: eval notes it read */
  cfg_opts(s->opts, s->ls, cfg, &kf, &pr, &o);
  quiet(&o);
  o.cost_out = &r;
  if (s->host_target) {
    o.emit = "bundle";
    o.out = out;
    st = moss_compile(ctx, &o);
  } else {
    o.no_emit = 1;
    st = moss_compile(ctx, &o);
    if (st == MOSS_OK) { /* the accuracy: the same configuration on this machine */
      o.no_emit = 0;
      o.cost_out = NULL;
      o.target = NULL;
      o.loaded_target = NULL;
      o.emit = "bundle";
      o.out = out;
      st = moss_compile(ctx, &o);
    }
  }
  if (st == MOSS_OK) st = moss_eval_artifact(ctx, out, s->x, s->y, &er);
  remove(out);
  ctx->sink = sink;
  ctx->sink_user = user;
  ctx->nerrors = nerrors;
  moss_buf_deinit(&kf);
  moss_buf_deinit(&pr);
  if (st == MOSS_OK) {
    p->ok = 1;
    p->right = er.right;
    p->acc = er.accuracy;
    p->energy = energy_of(s, r);
    if (s->npts == 1) s->right0 = er.right, s->n = er.n;
    /* within: in whole samples, so no rounding decides it */
    p->within = (double)(s->right0 - p->right) <= s->budget * (double)s->n + 1e-9;
  } else {
    snprintf(p->what + strlen(p->what), sizeof p->what - strlen(p->what), " (failed: %.200s)",
             cap.first);
  }
  moss_cost_destroy(ctx, r);
  moss_progress_step(s->evals);
  return p;
}

/* A JSON string. */
static void jstr(moss_buf *b, const char *s) {
  moss_buf_put(b, "\"", 1);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') moss_buf_printf(b, "\\%c", *s);
    else if ((unsigned char)*s < 0x20) moss_buf_printf(b, "\\u%04x", (unsigned char)*s);
    else moss_buf_put(b, s, 1);
  }
  moss_buf_put(b, "\"", 1);
}

static void jpoint(moss_buf *b, const search *s, const point *p) {
  int i;
  moss_buf_printf(b, "{\"what\": ");
  jstr(b, p->what);
  moss_buf_printf(b, ", \"config\": [");
  for (i = 0; i < s->ls->n; i++)
    moss_buf_printf(b, "%s\"%s %s\"", i ? ", " : "", p->cfg[i].int8 ? "int8" : "fp32",
                    p->cfg[i].sparsity ? p->cfg[i].sparsity : "dense");
  moss_buf_put(b, "]", 1);
  if (p->ok)
    moss_buf_printf(b, ", \"accuracy\": %.6f, \"drop\": %.6f, \"energy_j\": %.9g, "
                    "\"within_budget\": %s}", p->acc, (double)(s->right0 - p->right) / (double)s->n,
                    p->energy, p->within ? "true" : "false");
  else moss_buf_printf(b, ", \"accuracy\": null, \"energy_j\": null, \"within_budget\": false}");
}

/* The search's report (docs/budget.md). |final_r|: the cost report of the
 * artifact, for each layer's own figures. */
static void report_json(moss_buf *b, const search *s, const point *fp32, const point *int8,
                        const point *best, const point *closest, const double *layer_drop,
                        const moss_cost_report *final_r) {
  int i, k;
  moss_buf_printf(b, "{\n  \"model\": ");
  jstr(b, s->opts->model);
  moss_buf_printf(b, ",\n  \"target\": ");
  jstr(b, s->opts->target ? s->opts->target : "host");
  moss_buf_printf(b, ",\n  \"budget\": %.6g,\n  \"samples\": %lld,\n  \"energy_figure\": \"%s\","
                  "\n  \"accuracy_measured_on\": \"host\",\n  \"evaluations\": %d,\n  "
                  "\"max_evals\": %d,\n  \"met\": %s,\n", s->budget, (long long)s->n,
                  s->platform ? "platform-model" : "op-model", s->evals, s->max_evals,
                  best != fp32 ? "true" : "false");
  moss_buf_printf(b, "  \"chosen\": ");
  jpoint(b, s, best);
  moss_buf_printf(b, ",\n  \"fp32_dense\": ");
  jpoint(b, s, fp32);
  moss_buf_printf(b, ",\n  \"uniform_int8\": ");
  if (int8) jpoint(b, s, int8);
  else moss_buf_printf(b, "null");
  moss_buf_printf(b, ",\n  \"closest\": ");
  if (closest) jpoint(b, s, closest);
  else moss_buf_printf(b, "null");
  moss_buf_printf(b, ",\n  \"layers\": [");
  for (i = 0; i < s->ls->n; i++) {
    const moss_cost_node *n = NULL;
    for (k = 0; final_r && k < final_r->nnodes && !n; k++)
      if (!strcmp(final_r->nodes[k].name, s->ls->name[i])) n = &final_r->nodes[k];
    moss_buf_printf(b, "%s\n    {\"node\": ", i ? "," : "");
    jstr(b, s->ls->name[i]);
    moss_buf_printf(b, ", \"precision\": \"%s\", \"sparsity\": \"%s\"",
                    best->cfg[i].int8 ? "int8" : "fp32",
                    best->cfg[i].sparsity ? best->cfg[i].sparsity : "dense");
    if (n)
      moss_buf_printf(b, ", \"format\": \"%s\", \"dtype\": \"%s\", \"energy_j_op_model\": %.6g, "
                      "\"time_s\": %.6g", n->sparse_format ? n->sparse_format : "dense", n->dtype,
                      n->energy_j.value, n->time_s.value);
    moss_buf_printf(b, ", \"accuracy_cost_alone\": ");
    if (layer_drop[i] > -2) moss_buf_printf(b, "%.6f}", layer_drop[i]);
    else moss_buf_printf(b, "null}");
  }
  moss_buf_printf(b, "\n  ],\n  \"points\": [");
  for (i = 0; i < s->npts; i++) {
    moss_buf_printf(b, "%s\n    ", i ? "," : "");
    jpoint(b, s, &s->pts[i]);
  }
  moss_buf_printf(b, "\n  ]\n}\n");
}

static void cfg_text(char *buf, size_t cap, const char *layer, int o) {
  snprintf(buf, cap, "%s %s %s", layer, o / (NRATIOS + 1) ? "int8" : "fp32",
           opt_sparsity(o) ? opt_sparsity(o) : "dense");
}

/* A candidate move: layer |l| to option |o|, measured alone. */
typedef struct move {
  int l, o;
  double saved, lost, score;
} move;

static int move_cmp(const void *pa, const void *pb) {
  const move *a = pa, *b = pb;
  if (a->score != b->score) return a->score > b->score ? -1 : 1;
  if (a->saved != b->saved) return a->saved > b->saved ? -1 : 1;
  if (a->l != b->l) return a->l - b->l;
  return a->o - b->o;
}

moss_status moss_budget_search(moss_ctx *ctx, const moss_compile_opts *opts,
                               const moss_budget_opts *bo) {
  search s;
  layers ls;
  layer_cfg cur[MAX_LAYERS], cfg[MAX_LAYERS];
  double saved_alone[MAX_LAYERS][NOPTS], layer_drop[MAX_LAYERS];
  int cur_opt[MAX_LAYERS];
  move *moves = NULL;
  int nmoves = 0, i, o, nopts = opts->calibration ? NOPTS : NRATIOS + 1;
  point *fp32, *int8 = NULL, *best, *closest = NULL, *p;
  moss_status st = MOSS_OK;
  const char *tmp = getenv("TMPDIR");
  char what[600], plan_path[4200], json_path[4200], out[4096];
  double cur_e;
  size_t pts_bytes, moves_bytes;
  moss_cost_report *final_r = NULL;
  moss_compile_opts fo;
  moss_buf js;

  memset(&s, 0, sizeof s);
  s.ctx = ctx;
  s.opts = opts;
  s.ls = &ls;
  s.x = bo->eval_x;
  s.y = bo->eval_y;
  s.budget = bo->budget;
  s.max_evals = bo->max_evals > 0 ? bo->max_evals : 60;
  /* The target is this machine and the artifact a bundle: one compile measures both. */
  s.host_target = (!opts->target || !strcmp(opts->target, "host")) &&
                  (!opts->emit || !strcmp(opts->emit, "bundle"));
  MOSS_TRY(find_layers(ctx, opts, &ls));
  /* at most max_evals points (<= 10000, main.c) and NOPTS moves a layer: the sizes fit */
  pts_bytes = ((size_t)s.max_evals + 1) * sizeof *s.pts;
  moves_bytes = ((size_t)ls.n * NOPTS + 1) * sizeof *moves;
  s.pts = moss_alloc(ctx, pts_bytes);
  moves = moss_alloc(ctx, moves_bytes);
  snprintf(s.dir, sizeof s.dir, "%s/moss-budget-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!s.pts || !moves) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "--budget: the search's points");
  else if (!mkdtemp(s.dir)) st = moss_fail(ctx, MOSS_E_IO, NULL, "--budget: cannot make a temporary folder");
  if (st != MOSS_OK) {
    moss_free(ctx, s.pts, pts_bytes);
    moss_free(ctx, moves, moves_bytes);
    layers_free(ctx, &ls);
    return st;
  }
  { /* the energy figure: the platform model unless the target has no power figures */
    moss_compile_opts q = *opts;
    moss_cost_report *r = NULL;
    quiet(&q);
    q.quantize = NULL, q.prune = NULL, q.keep_float = NULL, q.no_emit = 1, q.cost_out = &r;
    st = moss_compile(ctx, &q);
    if (st == MOSS_OK) s.platform = strcmp(r->total.platform_j.label, "not-modeled") != 0;
    moss_cost_destroy(ctx, r);
  }
  moss_progress_begin("budget search", s.max_evals, "compiles");
  memset(cur, 0, sizeof cur);
  memset(cur_opt, 0, sizeof cur_opt);
  for (i = 0; i < ls.n; i++) layer_drop[i] = -3; /* not measured */
  fp32 = st == MOSS_OK ? measure(&s, cur, "fp32 dense") : NULL;
  if (st == MOSS_OK && (!fp32 || !fp32->ok)) {
    st = moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "--budget: the fp32 dense model does not "
                   "compile and evaluate: %s", fp32 ? fp32->what : "no evaluation allowed");
  }
  if (st == MOSS_OK && opts->calibration) {
    for (i = 0; i < ls.n; i++) cfg[i].int8 = 1, cfg[i].sparsity = NULL;
    int8 = measure(&s, cfg, "uniform int8");
    if (int8 && !int8->ok) int8 = NULL;
  }
  /* Sensitivity: each layer alone in each option. */
  for (i = 0; st == MOSS_OK && i < ls.n; i++)
    for (o = 1; o < nopts; o++) {
      memcpy(cfg, cur, sizeof cfg);
      cfg[i].int8 = o / (NRATIOS + 1);
      cfg[i].sparsity = opt_sparsity(o);
      cfg_text(what, sizeof what, ls.name[i], o);
      saved_alone[i][o] = 0;
      if (!(p = measure(&s, cfg, what))) break;
      if (!p->ok) continue;
      saved_alone[i][o] = fp32->energy - p->energy;
      if (saved_alone[i][o] > 0 && p->within) {
        move *m = &moves[nmoves++];
        m->l = i;
        m->o = o;
        m->saved = saved_alone[i][o];
        m->lost = (double)(fp32->right - p->right) / (double)s.n;
        m->score = m->saved / ((m->lost > 0 ? m->lost : 0) + 0.5 / (double)s.n);
      }
    }
  /* Greedy: the best ratio of energy saved to accuracy lost first, each
   * move kept when the combined model stays within the budget. */
  qsort(moves, (size_t)nmoves, sizeof *moves, move_cmp);
  cur_e = fp32 ? fp32->energy : 0;
  for (i = 0; st == MOSS_OK && i < nmoves; i++) {
    const move *m = &moves[i];
    if (m->saved <= (cur_opt[m->l] ? saved_alone[m->l][cur_opt[m->l]] : 0)) continue;
    memcpy(cfg, cur, sizeof cfg);
    cfg[m->l].int8 = m->o / (NRATIOS + 1);
    cfg[m->l].sparsity = opt_sparsity(m->o);
    cfg_text(what + 8, sizeof what - 8, ls.name[m->l], m->o);
    memcpy(what, "greedy: ", 8);
    if (!(p = measure(&s, cfg, what))) break;
    if (p->ok && p->within && p->energy < cur_e) {
      memcpy(cur, cfg, sizeof cur);
      cur_opt[m->l] = m->o;
      cur_e = p->energy;
    }
  }
  moss_progress_end();
  if (st != MOSS_OK) goto done;
  /* The cheapest point within the budget (fp32 dense is one); the first of equals. */
  best = fp32;
  for (i = 0; i < s.npts; i++)
    if (s.pts[i].ok && s.pts[i].within && s.pts[i].energy < best->energy) best = &s.pts[i];
  for (i = 0; i < s.npts; i++) /* the nearest miss, for a budget nothing cheaper met */
    if (best == fp32 && s.pts[i].ok && s.pts[i].energy < fp32->energy &&
        (!closest || s.pts[i].right > closest->right))
      closest = &s.pts[i];
  for (i = 0; i < ls.n; i++) { /* each chosen layer's accuracy cost, measured alone */
    int k;
    layer_drop[i] = best->cfg[i].int8 || best->cfg[i].sparsity ? -3 : 0;
    for (k = 0; k < s.npts; k++) {
      int j, alone = 1;
      for (j = 0; j < ls.n && alone; j++)
        alone = j == i ? s.pts[k].cfg[j].int8 == best->cfg[i].int8 &&
                             s.pts[k].cfg[j].sparsity == best->cfg[i].sparsity
                       : !s.pts[k].cfg[j].int8 && !s.pts[k].cfg[j].sparsity;
      if (alone && s.pts[k].ok && layer_drop[i] < -2)
        layer_drop[i] = (double)(fp32->right - s.pts[k].right) / (double)s.n;
    }
  }
  /* The artifact: the chosen configuration compiled as --plan replays it. */
  fo = *opts;
  fo.cost_out = &final_r;
  st = compile_cfg(ctx, &fo, &ls, best->cfg);
  if (opts->out) snprintf(out, sizeof out, "%s", opts->out);
  else { /* beside the artifact's default name: the model's */
    const char *base = strrchr(opts->model, '/');
    base = base ? base + 1 : opts->model;
    if (opts->name) snprintf(out, sizeof out, "%s", opts->name);
    else snprintf(out, sizeof out, "%.*s", (int)(strcspn(base, ".") ? strcspn(base, ".") : strlen(base)), base);
  }
  snprintf(plan_path, sizeof plan_path, "%s", bo->plan_out ? bo->plan_out : "");
  if (!bo->plan_out) snprintf(plan_path, sizeof plan_path, "%s.plan", out);
  if (bo->report) snprintf(json_path, sizeof json_path, "%s", bo->report);
  else snprintf(json_path, sizeof json_path, "%s.budget.json", out);
  if (st == MOSS_OK) st = plan_write(ctx, plan_path, &ls, best->cfg);
  moss_buf_init(&js, ctx);
  if (st == MOSS_OK) {
    report_json(&js, &s, fp32, int8, best, closest, layer_drop, final_r);
    st = js.failed ? moss_fail(ctx, MOSS_E_NOMEM, NULL, "budget report")
                   : moss_file_write(ctx, json_path, js.data, js.len);
  }
  moss_buf_deinit(&js);
  if (st == MOSS_OK) {
    moss_progress_clear();
    printf("budget %.4g%% on %s, %s energy, %d compiles: fp32 dense %.6f %.4g J", s.budget * 100,
           opts->target ? opts->target : "host", s.platform ? "platform-model" : "op-model",
           s.evals, fp32->acc, fp32->energy);
    if (int8) printf("; uniform int8 %.6f %.4g J%s", int8->acc, int8->energy,
                     int8->within ? "" : " (over budget)");
    printf("\nchosen: %s%s%s, accuracy %.6f (drop %.6f), energy %.4g J (%.1f%% of fp32 dense)\n",
           best == fp32 ? "fp32 dense (nothing cheaper met the budget)" : "point '",
           best == fp32 ? "" : best->what, best == fp32 ? "" : "'", best->acc,
           (double)(fp32->right - best->right) / (double)s.n, best->energy,
           100.0 * best->energy / fp32->energy);
    for (i = 0; i < ls.n; i++)
      printf("  %s %s %s\n", best->cfg[i].int8 ? "int8" : "fp32",
             best->cfg[i].sparsity ? best->cfg[i].sparsity : "dense", ls.name[i]);
    if (best == fp32 && !closest)
      printf("not met: no configuration tried costs less energy than fp32 dense on this target\n");
    if (closest)
      printf("not met: the closest cheaper configuration, %s, has accuracy %.6f (drop %.6f)\n",
             closest->what, closest->acc, (double)(fp32->right - closest->right) / (double)s.n);
    printf("plan %s, report %s\n", plan_path, json_path);
  }
done:
  moss_cost_destroy(ctx, final_r);
  rmdir(s.dir);
  moss_free(ctx, s.pts, pts_bytes);
  moss_free(ctx, moves, moves_bytes);
  layers_free(ctx, &ls);
  return st;
}
