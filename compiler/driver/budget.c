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
 * The search: fp32 dense and uniform int8 first, the cheaper of them
 * within the budget the base; then each layer alone in each of its options
 * on the base (the sensitivity: accuracy lost, energy saved), every option
 * where they fit in --max-evals, else those an energy screen (one compile
 * per option with every layer in it) says save, as ladders of rising
 * zeros; then, greedily, the options by energy saved per accuracy lost,
 * each tried on top of the moves kept so far and kept when the combined
 * model is measured within the budget at less energy. The answer is the
 * cheapest point measured within the budget, so never worse than fp32
 * dense or uniform int8 where those are within it. Every compile but the
 * screen's counts against --max-evals. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cost/cost.h"
#include "../target/target.h"
#include "../base/json.h"
#include "../passes/prune.h"
#include "driver.h"
#include "progress.h"

#define MAX_LAYERS 256
/* Low ratios too: without retraining a layer often keeps its accuracy only
 * at 0.2-0.3, and its sparse kernel already saves there on some targets. */
#define NRATIOS 9
/* Three families, each in rising zeros, so a layer's ladder (the screened
 * search) can stop a family at its first miss: elements by magnitude (2:4
 * among them, the pattern with a kernel format of its own); the words of
 * four input channels at one kernel position that an int8 Conv's byte dot
 * products skip on the tile (docs/sparse.md; for a Gemm or MatMul these
 * are 1x4 blocks); and whole input columns ranked with the calibration
 * data (columns-act: an input that is always 0 goes first), which an int8
 * Gemm or MatMul skips by columns; only with --calibration. */
static const char *const ratios[NRATIOS] = {"magnitude:0.2", "magnitude:0.3", "magnitude:0.5",
                                            "nm:2:4", "magnitude:0.75", "magnitude:0.9",
                                            "channels:1x4:0.3", "channels:1x4:0.5",
                                            "columns-act:0.25"};
static const unsigned char family[NRATIOS] = {0, 0, 0, 0, 0, 0, 1, 1, 2};
/* Option o: precision o / (NRATIOS + 1) (PREC_*), sparsity ratio o % (NRATIOS + 1); fp16 is
 * dense only (no sparse kernel reads float16 weights), the last option. */
#define NOPTS (2 * (NRATIOS + 1) + 1)
#define FP16_O (2 * (NRATIOS + 1))
enum { PREC_FP32, PREC_INT8, PREC_FP16 };
static const char *const prec_name[3] = {"fp32", "int8", "fp16"};

/* One layer's configuration: its precision (PREC_*), and its --prune spec (NULL: dense). */
typedef struct layer_cfg {
  int prec;
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

/* Whether option |o| can be compiled: int8 and columns-act need
 * --calibration (fp16 also needs a layer that computes in it: usable()). */
static int opt_usable(const moss_compile_opts *opts, int o) {
  if (o / (NRATIOS + 1) == PREC_INT8 && !opts->calibration) return 0;
  return opts->calibration || !moss_prune_needs_power(opt_sparsity(o));
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

/* The option strings of one configuration. */
typedef struct cfg_bufs {
  moss_buf kf, pr, h16; /* --keep-float, --prune, --float16 */
} cfg_bufs;

static void bufs_init(cfg_bufs *c, moss_ctx *ctx) {
  moss_buf_init(&c->kf, ctx);
  moss_buf_init(&c->pr, ctx);
  moss_buf_init(&c->h16, ctx);
}

static void bufs_deinit(cfg_bufs *c) {
  moss_buf_deinit(&c->kf);
  moss_buf_deinit(&c->pr);
  moss_buf_deinit(&c->h16);
}

static int bufs_failed(const cfg_bufs *c) { return c->kf.failed || c->pr.failed || c->h16.failed; }

/* The compile options of configuration |cfg|: --quantize int8,
 * --keep-float and --float16 for the precision, a per-layer --prune for
 * the sparsity (strings in |cb|). */
static void cfg_opts(const moss_compile_opts *base, const layers *ls, const layer_cfg *cfg,
                     cfg_bufs *cb, moss_compile_opts *o) {
  moss_buf *kf = &cb->kf, *pr = &cb->pr, *h16 = &cb->h16;
  int i, any8 = 0;
  *o = *base;
  kf->len = pr->len = h16->len = 0;
  moss_buf_put(kf, "", 1);
  moss_buf_put(pr, "", 1);
  moss_buf_put(h16, "", 1);
  kf->len = pr->len = h16->len = 0;
  for (i = 0; i < ls->n; i++) {
    any8 |= cfg[i].prec == PREC_INT8;
    if (cfg[i].prec != PREC_INT8) moss_buf_printf(kf, "%s%s", kf->len ? "," : "", ls->name[i]);
    if (cfg[i].prec == PREC_FP16) moss_buf_printf(h16, "%s%s", h16->len ? "," : "", ls->name[i]);
    if (cfg[i].sparsity)
      moss_buf_printf(pr, "%slayer=%s:%s", pr->len ? "," : "", ls->name[i], cfg[i].sparsity);
  }
  o->quantize = any8 ? "int8" : NULL;
  o->keep_float = any8 && kf->len ? kf->data : NULL;
  o->prune = pr->len ? pr->data : NULL;
  o->float16 = h16->len ? h16->data : NULL;
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
    moss_buf_printf(&b, "%s %s %s\n", prec_name[cfg[i].prec],
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
                     "NODE' (fp32|int8|fp16, dense|SPEC, a node name), got '%s'", lineno, p);
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
    else if (strcmp(prec, "fp32") && strcmp(prec, "int8") && strcmp(prec, "fp16"))
      st = moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "line %d: precision '%s': expected fp32, "
                     "int8 or fp16", lineno, prec);
    else if (!strcmp(prec, "fp16") && strcmp(sp, "dense"))
      st = moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "line %d: fp16 layer '%s' with sparsity "
                     "'%s': fp16 layers are dense (no sparse kernel reads float16 weights)",
                     lineno, name, sp);
    else if (strchr(sp, ',') || !*sp)
      st = moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "line %d: sparsity '%s': expected dense or "
                     "one --prune spec (magnitude:R, block:HxW:R, channels:HxC:R, nm:N:M)", lineno,
                     sp);
    else {
      seen[i] = 1;
      cfg[i].prec = !strcmp(prec, "int8")   ? PREC_INT8
                    : !strcmp(prec, "fp16") ? PREC_FP16
                                            : PREC_FP32;
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
  cfg_bufs cb;
  moss_compile_opts o;
  moss_status st;
  int i, any8 = 0, anyact = 0;
  for (i = 0; i < ls->n; i++) {
    any8 |= cfg[i].prec == PREC_INT8;
    anyact |= moss_prune_needs_power(cfg[i].sparsity);
  }
  if ((any8 || anyact) && !opts->calibration)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "the plan has %s layers: give "
                     "--calibration DATA (the data the search calibrated on)",
                     any8 ? "int8" : "columns-act");
  bufs_init(&cb, ctx);
  cfg_opts(opts, ls, cfg, &cb, &o);
  st = bufs_failed(&cb) ? moss_fail(ctx, MOSS_E_NOMEM, NULL, "plan") : moss_compile(ctx, &o);
  bufs_deinit(&cb);
  return st;
}

moss_status moss_plan_compile(moss_ctx *ctx, const moss_compile_opts *opts, const char *plan) {
  layers ls;
  layer_cfg cfg[MAX_LAYERS];
  uint8_t *text = NULL;
  size_t size = 0;
  moss_status st;
  moss_compile_opts po = *opts;
  /* What the layers' probe and the plan read is noted by the compile
   * itself (--cache-key, --depfile: cachekey.c), the plan as its input. */
  moss_file_set *files = ctx->files;
  ctx->files = NULL;
  st = find_layers(ctx, opts, &ls);
  if (st == MOSS_OK) {
    st = plan_read(ctx, plan, &ls, cfg, &text, &size);
    ctx->files = files;
    po.plan_file = plan;
    if (st == MOSS_OK) st = compile_cfg(ctx, &po, &ls, cfg);
  }
  ctx->files = files;
  if (text) moss_free(ctx, text, size + 1);
  layers_free(ctx, &ls);
  return st;
}

/* ---- the search ---- */

moss_status moss_budget_parse(moss_ctx *ctx, const char *s, double *out, int *rel_l2) {
  char *end;
  double v = strtod(s, &end);
  int pct = *end == '%';
  *rel_l2 = 0;
  if (!strncmp(s, "rel-l2:", 7)) {
    v = strtod(s + 7, &end);
    if (end == s + 7 || s[7] == '-' || s[7] == '+' || *end || !(v >= 0) || v > 1e6)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "--budget '%s': expected rel-l2:R, the "
                       "largest accepted relative L2 error of output 0 against the fp32 model "
                       "on X, a number such as 0.02 (0 <= R <= 1e6)", s);
    *out = v;
    *rel_l2 = 1;
    return MOSS_OK;
  }
  if (end == s || s[0] == '-' || s[0] == '+' || (pct ? end[1] != 0 : *end != 0) || !(v >= 0) ||
      (pct ? v >= 100 : v >= 1))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "--budget '%s': expected the largest "
                     "accepted drop in top-1 accuracy, a percentage such as 0.5%% or a share "
                     "such as 0.005 (0 <= drop < 1)", s);
  *out = pct ? v / 100 : v;
  return MOSS_OK;
}

/* Layer |name|'s node in cost report |r|, or NULL. */
static const moss_cost_node *report_node_of(const moss_cost_report *r, const char *name) {
  int k;
  for (k = 0; r && k < r->nnodes; k++)
    if (!strcmp(r->nodes[k].name, name)) return &r->nodes[k];
  return NULL;
}

/* One configuration measured. */
typedef struct point {
  char what[300];
  layer_cfg cfg[MAX_LAYERS];
  int64_t right;
  double acc, energy;
  double loss; /* what the budget bounds: the top-1 drop, or the relative L2 error */
  int ok;     /* compiled and measured */
  int within; /* the drop is within the budget */
} point;

typedef struct search {
  moss_ctx *ctx;
  const moss_compile_opts *opts;
  const layers *ls;
  char dir[4096];          /* temporary folder of the accuracy bundles */
  const char *x, *y;        /* y NULL: the relative L2 error against fp32 dense */
  float *ref;              /* rel-l2: fp32 dense's output 0 on X */
  int64_t nref;
  double ref_norm;
  int host_target;         /* the target is this machine: one compile measures both */
  int on_target;           /* accuracy measured on the target's own bundle (it runs here) */
  int platform;            /* 1: platform-model energy; 0: op-model (no power figures) */
  int evals, max_evals;
  int screens;             /* energy-only compiles of the screen (not evaluations) */
  int screened;            /* the sensitivity was screened (too many options to measure all) */
  const struct point *base; /* the configuration the moves start from */
  double budget;
  int64_t n, right0;       /* samples of X; right answers of fp32 dense */
  unsigned char fp16[MAX_LAYERS]; /* the layer computes in float16 on the target (fp16_probe) */
  double fp16_j[MAX_LAYERS];       /* its estimate there (node_j), the screen's fp16 column */
  int nfp16;
  point *pts;
  int npts;
} search;

/* Whether layer |i| can take option |o| (|i| < 0: some layer can). */
static int usable(const search *s, int i, int o) {
  if (!opt_usable(s->opts, o)) return 0;
  return o != FP16_O || (i < 0 ? s->nfp16 > 0 : s->fp16[i]);
}

/* Compiles |cfg| for its cost report only (|*r|; no artifact, no
 * accuracy), its diagnostics kept quiet; the compile's status. */
static moss_status cost_only(const search *s, const layer_cfg *cfg, cfg_bufs *cb,
                             moss_cost_report **r) {
  moss_ctx *ctx = s->ctx;
  moss_diag_capture cap;
  moss_diag_fn sink = ctx->sink;
  void *user = ctx->sink_user;
  int nerrors = ctx->nerrors;
  moss_compile_opts co;
  moss_status cs;
  cfg_opts(s->opts, s->ls, cfg, cb, &co);
  quiet(&co);
  co.no_emit = 1;
  co.cost_out = r;
  memset(&cap, 0, sizeof cap);
  ctx->sink = moss_diag_capture_sink;
  ctx->sink_user = &cap;
  cs = bufs_failed(cb) ? MOSS_E_NOMEM : moss_compile(ctx, &co);
  ctx->sink = sink;
  ctx->sink_user = user;
  ctx->nerrors = nerrors;
  return cs;
}

static double node_j(const search *s, const moss_cost_report *r, const moss_cost_node *n);

/* Which layers compute in float16 on the target when --float16 names them:
 * one compile with every layer so, no artifact; a layer whose cost-report
 * node computes in f16 (its device has the instructions and its backend
 * emits them: docs/kernel.md, "Half precision"). Elsewhere fp16 would
 * only round, at float32's rate, so it is not offered. Its per-layer
 * estimates are the energy screen's fp16 column (the same compile). */
static void fp16_probe(search *s) {
  layer_cfg cfg[MAX_LAYERS];
  cfg_bufs cb;
  moss_cost_report *r = NULL;
  moss_status cs;
  int i;
  for (i = 0; i < s->ls->n; i++) cfg[i].prec = PREC_FP16, cfg[i].sparsity = NULL;
  bufs_init(&cb, s->ctx);
  cs = cost_only(s, cfg, &cb, &r);
  for (i = 0; i < s->ls->n; i++) {
    const moss_cost_node *n = cs == MOSS_OK ? report_node_of(r, s->ls->name[i]) : NULL;
    s->fp16[i] = n && !strcmp(n->dtype, "f16");
    s->fp16_j[i] = s->fp16[i] ? node_j(s, r, n) : HUGE_VAL;
    s->nfp16 += s->fp16[i];
  }
  moss_cost_destroy(s->ctx, r);
  bufs_deinit(&cb);
}

static double energy_of(const search *s, const moss_cost_report *r) {
  return s->platform ? r->total.platform_j.value : r->total.energy_j.value;
}

/* Measures the artifact |art| into |p|: its top-1 answers on X and their
 * drop below fp32 dense's (the first point), or the relative L2 error of
 * its output 0 against fp32 dense's, ||y - y0|| / ||y0|| over all of X. */
static moss_status score(search *s, const char *art, point *p) {
  moss_ctx *ctx = s->ctx;
  moss_eval_result er;
  float *rows = NULL;
  int64_t count = 0, n = 0, i;
  double d = 0;
  moss_status st;
  if (s->y) {
    MOSS_TRY(moss_eval_artifact(ctx, art, s->x, s->y, &er));
    p->right = er.right;
    p->acc = er.accuracy;
    if (s->npts == 1) s->right0 = er.right, s->n = er.n;
    p->loss = s->n ? (double)(s->right0 - p->right) / (double)s->n : 0;
    /* within: in whole samples, so no rounding decides it */
    p->within = (double)(s->right0 - p->right) <= s->budget * (double)s->n + 1e-9;
    return MOSS_OK;
  }
  MOSS_TRY(moss_eval_outputs(ctx, art, s->x, &rows, &count, &n));
  if (!s->ref) { /* fp32 dense: the reference */
    s->ref = rows, s->nref = count, s->n = n;
    for (i = 0; i < count; i++) s->ref_norm += (double)rows[i] * rows[i];
    s->ref_norm = sqrt(s->ref_norm);
    p->loss = 0;
    p->within = 1;
    return MOSS_OK;
  }
  st = count == s->nref ? MOSS_OK : moss_fail(ctx, MOSS_E_INTERNAL, NULL, "output 0 has %lld "
                                              "values, fp32 dense's %lld", (long long)count,
                                              (long long)s->nref);
  for (i = 0; st == MOSS_OK && i < count; i++) {
    double e = (double)rows[i] - s->ref[i];
    d += e * e;
  }
  /* a zero reference: any difference is an infinite relative error */
  p->loss = s->ref_norm > 0 ? sqrt(d) / s->ref_norm : d > 0 ? HUGE_VAL : 0;
  p->within = p->loss <= s->budget;
  moss_free(ctx, rows, (size_t)count * sizeof(float) + 1);
  return st;
}

/* Compiles and measures |cfg| as point |what|; a configuration that fails
 * to compile is recorded (ok 0) with the first diagnostic. Returns the
 * point, or NULL when the evaluations are spent. */
static point *measure(search *s, const layer_cfg *cfg, const char *what) {
  moss_ctx *ctx = s->ctx;
  point *p;
  moss_compile_opts o;
  moss_cost_report *r = NULL;
  cfg_bufs cb;
  moss_diag_capture cap;
  moss_diag_fn sink = ctx->sink;
  void *user = ctx->sink_user;
  int nerrors = ctx->nerrors;
  char out[4200];
  moss_status st;
  if (s->evals >= s->max_evals) return NULL;
  p = &s->pts[s->npts++];
  memset(p, 0, sizeof *p);
  snprintf(p->what, sizeof p->what, "%s", what);
  memcpy(p->cfg, cfg, sizeof *cfg * (size_t)s->ls->n);
  s->evals++;
  moss_progress_item(what);
  bufs_init(&cb, ctx);
  memset(&cap, 0, sizeof cap);
  ctx->sink = moss_diag_capture_sink;
  ctx->sink_user = &cap;
  snprintf(out, sizeof out, "%s/e%d.moss", s->dir, s->evals); /* a new name: eval notes it read */
  cfg_opts(s->opts, s->ls, cfg, &cb, &o);
  quiet(&o);
  o.cost_out = &r;
  if (s->host_target || s->on_target) { /* the artifact itself runs here */
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
      o.host_half = 1; /* fp16 layers in float16 here too, as on the target */
      st = moss_compile(ctx, &o);
    }
  }
  if (st == MOSS_OK) st = score(s, out, p);
  remove(out);
  ctx->sink = sink;
  ctx->sink_user = user;
  ctx->nerrors = nerrors;
  bufs_deinit(&cb);
  if (st == MOSS_OK) {
    p->ok = 1;
    p->energy = energy_of(s, r);
  } else {
    snprintf(p->what + strlen(p->what), sizeof p->what - strlen(p->what), " (failed: %.200s)",
             cap.first);
  }
  moss_cost_destroy(ctx, r);
  moss_progress_step(s->evals);
  return p;
}

/* Layer node |n|'s own share of the energy figure the search minimizes:
 * its op-model energy, or for the platform model its time with its
 * device's supply active and every other supply idle (the nodes run one
 * after another). A screen's estimate: quantize and transfer steps a
 * change of precision adds or removes are not in it. */
static double node_j(const search *s, const moss_cost_report *r, const moss_cost_node *n) {
  double w = 0;
  int d, sup;
  if (!s->platform) return n->energy_j.value;
  sup = n->device >= 0 && n->device < r->ndevices ? r->devices[n->device].supply : -1;
  for (d = 0; d < r->ndevices; d++) /* each supply once: where it is carried */
    if (r->devices[d].has_power && r->devices[d].supply == d)
      w += d == sup ? r->devices[d].active_w : r->devices[d].idle_w;
  return n->time_s.value * w;
}

/* The energy screen of a model whose every option cannot be measured
 * within --max-evals: for each option, one compile with every layer in it,
 * no artifact and no accuracy, gives each layer's estimate in that option
 * (|est|[layer][option]; HUGE_VAL where it did not compile). These
 * compiles are not evaluations (s->screens counts them). */
static moss_status screen(search *s, int nopts, double (*est)[NOPTS]) {
  moss_ctx *ctx = s->ctx;
  layer_cfg cfg[MAX_LAYERS];
  cfg_bufs cb;
  int o, i;
  char what[120];
  moss_status st = MOSS_OK;
  bufs_init(&cb, ctx);
  for (o = 0; o < nopts && st == MOSS_OK; o++) {
    moss_cost_report *r = NULL;
    moss_status cs;
    if (!usable(s, -1, o)) {
      for (i = 0; i < s->ls->n; i++) est[i][o] = HUGE_VAL;
      continue;
    }
    if (o == FP16_O) { /* the probe compiled every layer in fp16 already: its estimates */
      for (i = 0; i < s->ls->n; i++) est[i][o] = s->fp16_j[i];
      s->screens++;
      continue;
    }
    for (i = 0; i < s->ls->n; i++)
      cfg[i].prec = o / (NRATIOS + 1), cfg[i].sparsity = opt_sparsity(o);
    snprintf(what, sizeof what, "energy screen: every layer %s %s", prec_name[cfg[0].prec],
             cfg[0].sparsity ? cfg[0].sparsity : "dense");
    moss_progress_item(what);
    cs = cost_only(s, cfg, &cb, &r);
    if (cs == MOSS_E_NOMEM) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "--budget: the energy screen");
    s->screens++;
    for (i = 0; i < s->ls->n; i++) {
      const moss_cost_node *n = cs == MOSS_OK ? report_node_of(r, s->ls->name[i]) : NULL;
      est[i][o] = n && usable(s, i, o) ? node_j(s, r, n) : HUGE_VAL;
    }
    moss_cost_destroy(ctx, r);
  }
  bufs_deinit(&cb);
  return st;
}

static void jpoint(moss_buf *b, const search *s, const point *p) {
  int i;
  moss_buf_printf(b, "{\"what\": ");
  moss_json_put_str(b, p->what);
  moss_buf_printf(b, ", \"config\": [");
  for (i = 0; i < s->ls->n; i++)
    moss_buf_printf(b, "%s\"%s %s\"", i ? ", " : "", prec_name[p->cfg[i].prec],
                    p->cfg[i].sparsity ? p->cfg[i].sparsity : "dense");
  moss_buf_put(b, "]", 1);
  if (p->ok && s->y)
    moss_buf_printf(b, ", \"accuracy\": %.6f, \"drop\": %.6f, \"energy_j\": %.9g, "
                    "\"within_budget\": %s}", p->acc, p->loss, p->energy,
                    p->within ? "true" : "false");
  else if (p->ok)
    moss_buf_printf(b, ", \"rel_l2\": %.9g, \"energy_j\": %.9g, \"within_budget\": %s}",
                    p->loss < 1e300 ? p->loss : 1e300, p->energy, p->within ? "true" : "false");
  else moss_buf_printf(b, ", \"%s\": null, \"energy_j\": null, \"within_budget\": false}",
                       s->y ? "accuracy" : "rel_l2");
}

/* Whether the artifact is a bundle: --emit, else the target's default. */
static int emits_bundle(moss_ctx *ctx, const moss_compile_opts *opts) {
  moss_target *t = (moss_target *)opts->loaded_target;
  int bundle;
  if (opts->emit) return !strcmp(opts->emit, "bundle");
  if (!t && moss_target_load(ctx, opts->target, &t) != MOSS_OK) return 0;
  bundle = !strcmp(moss_default_emit(t), "bundle");
  if (t != opts->loaded_target) moss_target_destroy(ctx, t);
  return bundle;
}


/* Where the points' accuracy was measured: the target's own bundle (it
 * runs here: the host, or a plugin device's simulator), or the same
 * configuration compiled for this machine. */
static const char *measured_on(const search *s) {
  return s->host_target ? "host" : s->on_target ? "target" : "host bundle";
}

/* The search's report (docs/budget.md). |final_r|: the cost report of the
 * artifact, for each layer's own figures. */
static void report_json(moss_buf *b, const search *s, const point *fp32, const point *int8,
                        const point *best, const point *closest, const double *layer_drop,
                        const moss_cost_report *final_r) {
  int i;
  moss_buf_printf(b, "{\n  \"model\": ");
  moss_json_put_str(b, s->opts->model);
  moss_buf_printf(b, ",\n  \"target\": ");
  moss_json_put_str(b, s->opts->target ? s->opts->target : "host");
  moss_buf_printf(b, ",\n  \"metric\": \"%s\",\n  \"budget\": %.6g,\n  \"samples\": %lld,\n  "
                  "\"energy_figure\": \"%s\",\n  \"accuracy_measured_on\": \"%s\",\n  "
                  "\"evaluations\": %d,\n  \"max_evals\": %d,\n  \"screen_compiles\": %d,\n  "
                  "\"sensitivity\": \"%s\",\n  \"base\": \"%s\",\n  \"met\": %s,\n",
                  s->y ? "top1-drop" : "rel-l2", s->budget, (long long)s->n,
                  s->platform ? "platform-model" : "op-model", measured_on(s), s->evals,
                  s->max_evals, s->screens, s->screened ? "screened" : "every option",
                  s->base == int8 && int8 ? "uniform int8" : "fp32 dense",
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
    const moss_cost_node *n = report_node_of(final_r, s->ls->name[i]);
    moss_buf_printf(b, "%s\n    {\"node\": ", i ? "," : "");
    moss_json_put_str(b, s->ls->name[i]);
    moss_buf_printf(b, ", \"precision\": \"%s\", \"sparsity\": \"%s\"",
                    prec_name[best->cfg[i].prec],
                    best->cfg[i].sparsity ? best->cfg[i].sparsity : "dense");
    if (n)
      moss_buf_printf(b, ", \"format\": \"%s\", \"dtype\": \"%s\", \"energy_j_op_model\": %.6g, "
                      "\"time_s\": %.6g", n->sparse_format ? n->sparse_format : "dense", n->dtype,
                      n->energy_j.value, n->time_s.value);
    moss_buf_printf(b, ", \"%s_cost_alone\": ", s->y ? "accuracy" : "rel_l2");
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

/* A point's measure as the summary prints it. */
static const char *quality(char *buf, size_t cap, const search *s, const point *p) {
  if (s->y) snprintf(buf, cap, "accuracy %.6f (drop %.6f)", p->acc, p->loss);
  else snprintf(buf, cap, "rel-l2 %.6g", p->loss);
  return buf;
}

/* ---- the HTML page of the search (docs/budget.md): the points tried,
 * measure against energy, in an inline SVG, then the chosen layers and
 * every point in tables. Self-contained and well-formed XML, with the cost
 * report's style (compiler/cost/report.c). */

static void hput(moss_buf *b, const char *s) { moss_buf_put(b, s, strlen(s)); }

static void hcfg(moss_buf *b, const search *s, const point *p) {
  int i;
  for (i = 0; i < s->ls->n; i++) {
    moss_buf_printf(b, "%s%s %s ", i ? "; " : "", prec_name[p->cfg[i].prec],
                    p->cfg[i].sparsity ? p->cfg[i].sparsity : "dense");
    moss_report_html_text(b, s->ls->name[i]);
  }
}

/* The measure of |p| as the page shows it: accuracy, or rel-l2. */
static double shown(const search *s, const point *p) {
  return s->y ? p->acc : p->loss < 1e300 ? p->loss : 1e300;
}

static void report_html(moss_buf *b, const search *s, const point *fp32, const point *int8,
                        const point *best, const point *closest, const double *layer_drop,
                        const moss_cost_report *final_r) {
  enum { W = 720, H = 380, L = 80, R = 20, T = 16, B = 44 };
  double emin = 0, emax = 0, vmin = 0, vmax = 0, line;
  int i, k, n = 0, le, int8_up;
  char t[64], u[64];
  const char *what = s->y ? "top-1 accuracy" : "relative L2 error of output 0";
  hput(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
          "<title>moss --budget: ");
  moss_report_html_text(b, s->opts->model);
  hput(b, "</title>\n<style>\n");
  hput(b, moss_report_html_style);
  hput(b, "</style>\n</head>\n<body>\n<h1>");
  moss_report_html_text(b, s->opts->model);
  hput(b, " on ");
  moss_report_html_text(b, s->opts->target ? s->opts->target : "host");
  hput(b, ": the least energy within the budget</h1>\n<p>");
  if (s->y) moss_buf_printf(b, "Budget: a top-1 accuracy drop of at most %.4g%% below fp32 dense "
                            "on %lld samples.", s->budget * 100, (long long)s->n);
  else moss_buf_printf(b, "Budget: a relative L2 error of output 0 against fp32 dense of at "
                       "most %.6g over %lld samples.", s->budget, (long long)s->n);
  moss_buf_printf(b, " Energy: %s, per inference. Accuracy measured on the %s. %d compiles "
                  "(at most %d). Moves from %s; %s",
                  s->platform ? "platform-model" : "op-model", measured_on(s), s->evals,
                  s->max_evals, s->base == int8 && int8 ? "uniform int8" : "fp32 dense",
                  s->screened ? "sensitivity screened by energy estimates" : "every option measured");
  if (s->screens) moss_buf_printf(b, " (%d more compiles)", s->screens);
  hput(b, ".</p>\n<p>");
  moss_report_html_si(t, sizeof t, best->energy, "J");
  if (best != fp32) {
    hput(b, "<b>Chosen</b>: ");
    moss_report_html_text(b, best->what);
    moss_buf_printf(b, ", %s %.6g, %s (%.1f%% of fp32 dense", s->y ? "accuracy" : "rel-l2",
                    shown(s, best), t, 100.0 * best->energy / fp32->energy);
    if (int8) moss_buf_printf(b, ", %.1f%% of uniform int8", 100.0 * best->energy / int8->energy);
    hput(b, ").");
  } else {
    hput(b, "<b>Not met</b>: no configuration tried that costs less than fp32 dense was within "
            "the budget; the artifact is fp32 dense.");
    if (closest) {
      hput(b, " The closest: ");
      moss_report_html_text(b, closest->what);
      moss_buf_printf(b, ", %s %.6g.", s->y ? "drop" : "rel-l2", closest->loss);
    }
  }
  hput(b, "</p>\n");

  /* The chart: energy across (log when it spans more than 10x), the
   * measure up, the budget's limit as a dashed line. */
  line = s->y ? fp32->acc - s->budget : s->budget;
  for (i = 0; i < s->npts; i++) {
    const point *p = &s->pts[i];
    if (!p->ok || !(p->energy > 0)) continue;
    if (n == 0 || p->energy < emin) emin = p->energy;
    if (n == 0 || p->energy > emax) emax = p->energy;
    if (n == 0 || shown(s, p) < vmin) vmin = shown(s, p);
    if (n == 0 || shown(s, p) > vmax) vmax = shown(s, p);
    n++;
  }
  if (line < vmin) vmin = line;
  if (line > vmax) vmax = line;
  /* The band that matters around the budget's limit: a point far beyond it
   * (a layer pruned to 90 %) is drawn on the axis' edge, its value in its title. */
  if (s->y && vmin < line - 4 * (vmax - line + s->budget))
    vmin = line - 4 * (vmax - line + s->budget);
  if (!s->y) vmin = 0;
  if (!s->y && s->budget > 0 && vmax > 5 * s->budget) vmax = 5 * s->budget;
  le = emax > 10 * emin;
#define AX(v, lo, hi, lg) ((lg) ? (log(v) - log(lo)) / (log(hi) - log(lo) + 1e-300) \
                                : ((hi) > (lo) ? ((v) - (lo)) / ((hi) - (lo)) : 0.5))
#define PX(e) (L + 12 + AX(e, emin, emax, le) * (W - L - R - 24))
#define PY(v) (H - B - 12 - AX(v, vmin, vmax, 0) * (H - B - T - 24))
  moss_buf_printf(b,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s against energy\" "
                  "font-family=\"sans-serif\" font-size=\"11\">\n"
                  "<title>%s against energy per inference, one point per configuration "
                  "tried</title>\n"
                  "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>\n"
                  "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>\n"
                  "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s energy per inference%s "
                  "(left: less)</text>\n"
                  "<text x=\"14\" y=\"%d\" transform=\"rotate(-90 14 %d)\" "
                  "text-anchor=\"middle\">%s (%s: better)</text>\n",
                  W, H, W, H, what, what, L, H - B, W - R, H - B, L, T, L, H - B,
                  (L + W - R) / 2, H - 8, s->platform ? "platform-model" : "op-model",
                  le ? ", log scale" : "", (T + H - B) / 2, (T + H - B) / 2, what,
                  s->y ? "up" : "down");
  if (n) {
    moss_report_html_si(t, sizeof t, emin, "J");
    moss_report_html_si(u, sizeof u, emax, "J");
    moss_buf_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n"
                    "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n"
                    "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n"
                    "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n",
                    PX(emin), H - B + 14, t, PX(emax), H - B + 14, u, L - 4, PY(vmin) + 4, vmin,
                    L - 4, PY(vmax) + 4, vmax);
    moss_buf_printf(b, "<line class=\"budget\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
                    "stroke=\"#e15759\" stroke-dasharray=\"5 3\"><title>the budget: %s %.6g"
                    "</title></line>\n", L, PY(line), W - R, PY(line),
                    s->y ? "accuracy at least" : "rel-l2 at most", line);
  }
#define YOF(p) PY(shown(s, p) < vmin ? vmin : shown(s, p) > vmax ? vmax : shown(s, p))
  /* the chosen point's label away from uniform int8's, which is often near */
  int8_up = int8 && int8 != best && YOF(int8) < YOF(best);
  for (k = 0; k < 2 * s->npts; k++) { /* the marked points last, on top */
    const point *p = &s->pts[k % s->npts];
    int marked = p == fp32 || p == int8 || p == best;
    double x, y;
    i = k % s->npts;
    if (!p->ok || !(p->energy > 0) || marked != (k >= s->npts)) continue;
    x = PX(p->energy);
    y = YOF(p);
    moss_report_html_si(t, sizeof t, p->energy, "J");
    /* one circle a point; the marked ones carry their role in the class */
    moss_buf_printf(b, "<circle class=\"pt%s%s%s\" data-point=\"%d\" cx=\"%.1f\" cy=\"%.1f\" "
                    "r=\"%d\" fill=\"%s\" stroke=\"%s\" stroke-width=\"%d\"><title>",
                    p == fp32 ? " fp32" : "", p == int8 ? " int8" : "", p == best ? " chosen" : "",
                    i, x, y, p == best ? 7 : 4,
                    p == fp32 ? "#222" : p == int8 ? "#f28e2b" : p->within ? "#4e79a7" : "#bbb",
                    p == best ? "#e15759" : "none", p == best ? 3 : 0);
    moss_report_html_text(b, p->what);
    moss_buf_printf(b, ": %s %.6g, %s%s; ", s->y ? "accuracy" : "rel-l2", shown(s, p), t,
                    p->within ? "" : " (over the budget)");
    hcfg(b, s, p);
    hput(b, "</title></circle>\n");
    if (p == fp32 || p == int8 || p == best)
      moss_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\"%s>%s</text>\n",
                      x > (L + W - R) / 2 ? x - 10 : x + 10,
                      y + (p == best ? (int8_up ? 20 : -12) : p == int8 ? (int8_up ? -8 : 18) : -8),
                      x > (L + W - R) / 2 ? " text-anchor=\"end\"" : "",
                      p == best ? "chosen" : p == fp32 ? "fp32 dense" : "uniform int8");
  }
#undef YOF
#undef PY
#undef PX
#undef AX
  hput(b, "</svg>\n<p class=\"legend\">black: fp32 dense &#160; orange: uniform int8 &#160; "
          "red ring: chosen &#160; blue: within the budget &#160; grey: over it &#160; dashed: "
          "the budget's limit &#160; a point beyond the axis' range is drawn on its edge &#160; "
          "hover a point for its configuration</p>\n");

  hput(b, "<h2>The chosen configuration, layer by layer</h2>\n<table>\n<tr><th class=\"l\">"
          "layer</th><th class=\"l\">precision</th><th class=\"l\">sparsity</th>"
          "<th class=\"l\">format</th><th class=\"l\">dtype</th>"
          "<th title=\"the layer's own op-model energy in the artifact's cost report\">energy "
          "(op-model)</th><th>time</th>");
  moss_buf_printf(b, "<th title=\"measured with this layer alone in its option, the rest as the "
                  "base\">%s alone</th></tr>\n", s->y ? "accuracy drop" : "rel-l2");
  for (i = 0; i < s->ls->n; i++) {
    const moss_cost_node *nd = report_node_of(final_r, s->ls->name[i]);
    hput(b, "<tr><td class=\"name\">");
    moss_report_html_name(b, s->ls->name[i]);
    moss_buf_printf(b, "</td><td class=\"l\">%s</td><td class=\"l\">%s</td>",
                    prec_name[best->cfg[i].prec],
                    best->cfg[i].sparsity ? best->cfg[i].sparsity : "dense");
    if (nd) {
      moss_report_html_si(t, sizeof t, nd->energy_j.value, "J");
      moss_report_html_si(u, sizeof u, nd->time_s.value, "s");
      moss_buf_printf(b, "<td class=\"l\">%s</td><td class=\"l\">%s</td><td>%s</td><td>%s</td>",
                      nd->sparse_format ? nd->sparse_format : "dense", nd->dtype, t, u);
    } else hput(b, "<td></td><td></td><td></td><td></td>");
    if (layer_drop[i] > -2) moss_buf_printf(b, "<td>%.6g</td></tr>\n", layer_drop[i]);
    else hput(b, "<td>-</td></tr>\n");
  }
  hput(b, "</table>\n<h2>Every configuration tried</h2>\n<table>\n<tr><th>#</th>"
          "<th class=\"l\">configuration</th>");
  moss_buf_printf(b, "<th>%s</th><th>energy</th><th>within</th></tr>\n",
                  s->y ? "accuracy" : "rel-l2");
  for (i = 0; i < s->npts; i++) {
    const point *p = &s->pts[i];
    moss_buf_printf(b, "<tr%s><td>%d</td><td class=\"note\">", p == best ? " class=\"p\"" : "", i);
    moss_report_html_text(b, p->what);
    if (p == best) hput(b, " <b>(chosen)</b>");
    if (p->ok) {
      moss_report_html_si(t, sizeof t, p->energy, "J");
      moss_buf_printf(b, "</td><td>%.6g</td><td>%s</td><td>%s</td></tr>\n", shown(s, p), t,
                      p->within ? "yes" : "no");
    } else hput(b, "</td><td>-</td><td>-</td><td>failed</td></tr>\n");
  }
  hput(b, "</table>\n<p>The plan replays the chosen configuration: <code>moss compile MODEL "
          "--plan FILE</code> (docs/budget.md). Generated by moss.</p>\n</body>\n</html>\n");
}

static void cfg_text(char *buf, size_t cap, const char *layer, int o) {
  snprintf(buf, cap, "%s %s %s", layer, prec_name[o / (NRATIOS + 1)],
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

/* Layers by the most the screen says one of their options saves. */
static int ladder_cmp(const void *pa, const void *pb) {
  const move *a = pa, *b = pb;
  if (a->saved != b->saved) return a->saved > b->saved ? -1 : 1;
  return a->l - b->l;
}

moss_status moss_budget_search(moss_ctx *ctx, const moss_compile_opts *opts,
                               const moss_budget_opts *bo) {
  search s;
  layers ls;
  layer_cfg cur[MAX_LAYERS], cfg[MAX_LAYERS];
  double saved_alone[MAX_LAYERS][NOPTS], layer_drop[MAX_LAYERS];
  int cur_opt[MAX_LAYERS];
  move *moves = NULL;
  int nmoves = 0, html, i, o, nopts = NOPTS, nusable;
  point *fp32, *int8 = NULL, *best, *closest = NULL, *p, *base;
  /* the screen's estimates, and the layers in the order their ladders run */
  double est[MAX_LAYERS][NOPTS];
  move ladder[MAX_LAYERS];
  int base_o, screened, nlad = 0, k, limit, spent = 0;
  moss_status st = MOSS_OK;
  const char *tmp = getenv("TMPDIR");
  char what[600], q[80], plan_path[4200], json_path[4200], out[4096];
  double cur_e, free_loss;
  size_t pts_bytes, moves_bytes;
  moss_cost_report *final_r = NULL;
  moss_compile_opts fo;
  moss_buf js;

  memset(&s, 0, sizeof s);
  s.ctx = ctx;
  s.opts = opts;
  s.ls = &ls;
  s.x = bo->eval_x;
  s.y = bo->rel_l2 ? NULL : bo->eval_y;
  s.budget = bo->budget;
  s.max_evals = bo->max_evals > 0 ? bo->max_evals : 80;
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
  if (st == MOSS_OK) fp16_probe(&s); /* like the figure above, not an evaluation */
  moss_progress_begin("budget search", s.max_evals, "compiles");
  memset(cur, 0, sizeof cur);
  memset(cur_opt, 0, sizeof cur_opt);
  for (i = 0; i < ls.n; i++) layer_drop[i] = -3; /* not measured */
  /* A bundle for the target that runs here (a plugin device's simulator)
   * is measured itself; else (another machine's code, or C) the same
   * configuration compiled for this machine is. */
  s.on_target = !s.host_target && emits_bundle(ctx, opts);
  fp32 = st == MOSS_OK ? measure(&s, cur, "fp32 dense") : NULL;
  if (fp32 && !fp32->ok && s.on_target) {
    s.on_target = 0;
    s.npts = 0;
    s.evals = 0;
    fp32 = measure(&s, cur, "fp32 dense");
  }
  if (st == MOSS_OK && (!fp32 || !fp32->ok)) {
    st = moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "--budget: the fp32 dense model does not "
                   "compile and evaluate: %s", fp32 ? fp32->what : "no evaluation allowed");
  }
  if (st == MOSS_OK && opts->calibration) {
    for (i = 0; i < ls.n; i++) cfg[i].prec = PREC_INT8, cfg[i].sparsity = NULL;
    int8 = measure(&s, cfg, "uniform int8");
    if (int8 && !int8->ok) int8 = NULL;
  }
  /* The base the moves start from: uniform int8 where it is within the
   * budget and cheaper than fp32 dense, else fp32 dense. */
  base = int8 && int8->within && fp32 && int8->energy < fp32->energy ? int8 : fp32;
  base_o = base == int8 ? NRATIOS + 1 : 0;
  if (base) memcpy(cur, base->cfg, sizeof *cur * (size_t)ls.n);
  for (i = 0; i < ls.n; i++) cur_opt[i] = base_o;
  memset(saved_alone, 0, sizeof saved_alone);
  /* What a move that loses nothing counts as losing, so free moves rank by
   * their saving: half a sample, or a hundredth of the rel-l2 budget. */
  free_loss = s.y ? 0.5 / (double)(s.n > 0 ? s.n : 1) : s.budget > 0 ? s.budget / 100 : 1e-9;
  /* Sensitivity: each layer alone in its options, the rest as the base.
   * Every option of every layer where that fits in half the evaluations;
   * else the screened ladder. */
  for (o = 0, nusable = 0; o < nopts; o++) nusable += usable(&s, -1, o);
  screened = 2 + (nusable - 1) * ls.n > s.max_evals;
  s.screened = screened;
  s.base = base;
  if (st == MOSS_OK && base && screened && s.evals < s.max_evals) {
    st = screen(&s, nopts, est);
    /* layers by the most their estimate says any option saves */
    for (i = 0; st == MOSS_OK && i < ls.n; i++) {
      double g = 0;
      for (o = 0; o < nopts; o++)
        if (est[i][base_o] - est[i][o] > g) g = est[i][base_o] - est[i][o];
      if (g > 0) ladder[nlad].l = i, ladder[nlad].o = 0, ladder[nlad].saved = g, nlad++;
    }
    qsort(ladder, (size_t)nlad, sizeof *ladder, ladder_cmp);
  }
  /* Rounds (one when every option is measured): ladders until half the
   * evaluations left are spent, then the greedy steps over their moves. */
  cur_e = base ? base->energy : 0;
  k = 0;
  while (st == MOSS_OK && base && !spent && k < (screened ? nlad : ls.n)) {
    int first = nmoves;
    if (s.evals >= s.max_evals) break; /* spent by the last greedy step: no ladder can start */
    limit = s.evals + (s.max_evals - s.evals + 1) / 2; /* the rest for the greedy steps */
    for (; !spent && k < (screened ? nlad : ls.n); k++) {
      int pass;
      i = screened ? ladder[k].l : k;
      if (screened && s.evals >= limit) break;
      /* the base's precision first, then the other of fp32 and int8, then
       * fp16 (dense only); each precision's sparsities in rising zeros */
      for (pass = 0; pass < 3 && !spent; pass++) {
        int base_prec = base_o / (NRATIOS + 1), r;
        int prec = pass == 2 ? PREC_FP16 : pass ? !base_prec : base_prec;
        unsigned stopped = 0; /* the families whose ladder missed */
        for (r = 0; r <= (prec == PREC_FP16 ? 0 : NRATIOS); r++) {
          o = prec * (NRATIOS + 1) + r;
          if (o == base_o || !usable(&s, i, o) ||
              (screened && !(est[i][base_o] - est[i][o] > 0)))
            continue;
          if (r > 0 && (stopped >> family[r - 1] & 1)) continue;
          memcpy(cfg, base->cfg, sizeof *cfg * (size_t)ls.n);
          cfg[i].prec = prec;
          cfg[i].sparsity = opt_sparsity(o);
          cfg_text(what, sizeof what, ls.name[i], o);
          if (!(p = measure(&s, cfg, what))) {
            spent = 1;
            break;
          }
          if (!p->ok) continue;
          saved_alone[i][o] = base->energy - p->energy;
          if (saved_alone[i][o] > 0 && p->within) {
            move *m = &moves[nmoves++];
            m->l = i;
            m->o = o;
            m->saved = saved_alone[i][o];
            m->lost = p->loss;
            m->score = m->saved / ((m->lost > 0 ? m->lost : 0) + free_loss);
          }
          /* the ladder: more zeros of this family in this precision would lose more */
          if (screened && !p->within && r > 0) stopped |= 1u << family[r - 1];
        }
      }
    }
    /* Greedy: the best ratio of energy saved to accuracy lost first, each
     * move kept when the combined model stays within the budget. */
    qsort(moves + first, (size_t)(nmoves - first), sizeof *moves, move_cmp);
    for (i = first; st == MOSS_OK && i < nmoves; i++) {
      const move *m = &moves[i];
      if (m->saved <= (cur_opt[m->l] != base_o ? saved_alone[m->l][cur_opt[m->l]] : 0)) continue;
      memcpy(cfg, cur, sizeof cfg);
      cfg[m->l].prec = m->o / (NRATIOS + 1);
      cfg[m->l].sparsity = opt_sparsity(m->o);
      cfg_text(what + 8, sizeof what - 8, ls.name[m->l], m->o);
      memcpy(what, "greedy: ", 8);
      if (!(p = measure(&s, cfg, what))) {
        spent = 1;
        break;
      }
      if (p->ok && p->within && p->energy < cur_e) {
        memcpy(cur, cfg, sizeof cur);
        cur_opt[m->l] = m->o;
        cur_e = p->energy;
      }
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
        (!closest || s.pts[i].loss < closest->loss))
      closest = &s.pts[i];
  /* each chosen layer's accuracy cost: its option alone on the base (the
   * base's own drop for a layer the base's option was chosen for) */
  for (i = 0; i < ls.n; i++) {
    layer_drop[i] = -3;
    for (k = 0; k < s.npts; k++) {
      const layer_cfg *want;
      int j, alone = 1;
      for (j = 0; j < ls.n && alone; j++) {
        want = j == i ? &best->cfg[i] : &base->cfg[j];
        alone = s.pts[k].cfg[j].prec == want->prec && s.pts[k].cfg[j].sparsity == want->sparsity;
      }
      if (alone && s.pts[k].ok && layer_drop[i] < -2)
        layer_drop[i] = s.pts[k].loss;
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
  /* --budget-report FILE.html: the page there, the JSON at its default place */
  html = bo->report && strlen(bo->report) > 5 &&
         !strcmp(bo->report + strlen(bo->report) - 5, ".html");
  if (bo->report && !html) snprintf(json_path, sizeof json_path, "%s", bo->report);
  else snprintf(json_path, sizeof json_path, "%s.budget.json", out);
  if (st == MOSS_OK) st = plan_write(ctx, plan_path, &ls, best->cfg);
  moss_buf_init(&js, ctx);
  if (st == MOSS_OK) {
    report_json(&js, &s, fp32, int8, best, closest, layer_drop, final_r);
    st = js.failed ? moss_fail(ctx, MOSS_E_NOMEM, NULL, "budget report")
                   : moss_file_write(ctx, json_path, js.data, js.len);
  }
  if (st == MOSS_OK && html) {
    js.len = 0;
    report_html(&js, &s, fp32, int8, best, closest, layer_drop, final_r);
    st = js.failed ? moss_fail(ctx, MOSS_E_NOMEM, NULL, "budget report")
                   : moss_file_write(ctx, bo->report, js.data, js.len);
  }
  moss_buf_deinit(&js);
  if (st == MOSS_OK) {
    moss_progress_clear();
    if (s.y) printf("budget %.4g%% top-1 drop", s.budget * 100);
    else printf("budget rel-l2 %.4g", s.budget);
    printf(" on %s, %s energy, accuracy measured on the %s, %d compiles", opts->target ? opts->target : "host",
           s.platform ? "platform-model" : "op-model",
           s.host_target ? "host" : s.on_target ? "target's own bundle" : "host bundle", s.evals);
    if (s.screens) printf(" (+%d for the energy screen)", s.screens);
    printf(": fp32 dense %s %.4g J", quality(q, sizeof q, &s, fp32), fp32->energy);
    if (int8) printf("; uniform int8 %s %.4g J%s", quality(q, sizeof q, &s, int8), int8->energy,
                     int8->within ? "" : " (over budget)");
    printf("\nchosen: %s%s%s, %s, energy %.4g J (%.1f%% of fp32 dense)\n",
           best == fp32 ? "fp32 dense (nothing cheaper met the budget)" : "point '",
           best == fp32 ? "" : best->what, best == fp32 ? "" : "'",
           quality(q, sizeof q, &s, best), best->energy, 100.0 * best->energy / fp32->energy);
    for (i = 0; i < ls.n; i++)
      printf("  %s %s %s\n", prec_name[best->cfg[i].prec],
             best->cfg[i].sparsity ? best->cfg[i].sparsity : "dense", ls.name[i]);
    if (best == fp32 && !closest)
      printf("not met: no configuration tried costs less energy than fp32 dense on this target\n");
    if (closest)
      printf("not met: the closest cheaper configuration, %s, has %s\n", closest->what,
             quality(q, sizeof q, &s, closest));
    printf("plan %s, report %s%s%s\n", plan_path, json_path, html ? ", " : "",
           html ? bo->report : "");
  }
done:
  moss_cost_destroy(ctx, final_r);
  if (s.ref) moss_free(ctx, s.ref, (size_t)s.nref * sizeof(float) + 1);
  rmdir(s.dir);
  moss_free(ctx, s.pts, pts_bytes);
  moss_free(ctx, moves, moves_bytes);
  layers_free(ctx, &ls);
  return st;
}
