/* calibrate.c - the "calibrate" stage of post-training quantization
 * (ptq.h), a driver step between --prune and the "quantize" pass: the
 * float model, compiled with every activation as an output
 * (opts->observe) for the machine moss runs on, as a bundle in a temporary
 * folder (its CPU code comes from whatever backend the host target's CPU
 * names in the backend table), is loaded by libmossrt and runs on the
 * calibration batches; the observers record each activation's range:
 * minmax, or percentile (a second pass fills a histogram per value and
 * clips each tail). The ranges go to the "quantize" pass (passes/ptq.c). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mossrt.h"
#include "progress.h"
#include "ptq.h"

#define NBINS 2048
#define MAXFILES 4096

typedef struct calib_io {
  moss_dtype dtype;
  int rank;
  int64_t dims[MOSS_MAX_RANK];
  char name[256];
  int value;   /* id of the value of the graph being quantized, or -1 */
  void *buf;
} calib_io;

typedef struct calib {
  moss_ctx *ctx;
  moss_graph *scratch;  /* owns the buffers and the loaded data */
  char dir[4096];
  char name[128];
  mossrt_bundle *bundle;
  mossrt_session *session;
  calib_io in;
  calib_io *out;
  int nout;
  const void **ins;
  void **outs;
  moss_value *data[MAXFILES];
  char *paths[MAXFILES];
  int nfiles;
  int input_value;      /* value id of the graph input */
  int64_t batch;        /* B of the compiled input */
  uint64_t *hist;       /* percentile: NBINS per value, by value id */
} calib;

/* A libmossrt error: its text reads "<bundle>: <category>: <reason>"; the
 * bundle is ours, so the reason is what matters. */
static moss_status rt_fail(calib *c, const mossrt_error *e) {
  const char *reason = e->text, *p = strstr(e->text, ": ");
  if (p && (p = strstr(p + 2, ": ")) != NULL) reason = p + 2;
  return moss_fail(c->ctx, e->status == MOSSRT_E_NOMEM ? MOSS_E_NOMEM : MOSS_E_INTERNAL, NULL,
                   "the calibration bundle: %s", reason);
}

static void io_of(const mossrt_tensor_info *t, calib_io *io) {
  int k;
  memset(io, 0, sizeof *io);
  io->dtype = (moss_dtype)t->dtype;
  io->rank = t->rank;
  for (k = 0; k < t->rank && k < MOSS_MAX_RANK; k++) io->dims[k] = t->dims[k];
  snprintf(io->name, sizeof io->name, "%s", t->name ? t->name : "");
  io->value = -1;
}

/* Loads the calibration bundle |path| into a session, with a buffer per
 * output tied to the value of |g| it observes. */
static moss_status load(calib *c, const moss_graph *g, const char *path) {
  mossrt_error err;
  mossrt_tensor_info t;
  uint32_t i;
  if (mossrt_open_file(path, &c->bundle, &err) != MOSSRT_OK) return rt_fail(c, &err);
  if (mossrt_input_count(c->bundle) != 1)
    return moss_fail(c->ctx, MOSS_E_UNSUPPORTED, NULL,
                     "--calibration: the model has more than one input; calibration handles "
                     "single-input models only");
  if (mossrt_input_info(c->bundle, 0, &t) != MOSSRT_OK || t.rank < 1 || t.rank > MOSS_MAX_RANK)
    return moss_fail(c->ctx, MOSS_E_UNSUPPORTED, NULL,
                     "--calibration: the model needs one input with a batch dimension");
  io_of(&t, &c->in);
  c->nout = (int)mossrt_output_count(c->bundle);
  c->out = moss_graph_alloc(c->scratch, sizeof *c->out * (size_t)(c->nout + 1));
  c->ins = moss_graph_alloc(c->scratch, sizeof *c->ins);
  c->outs = moss_graph_alloc(c->scratch, sizeof *c->outs * (size_t)(c->nout + 1));
  if (!c->out || !c->ins || !c->outs) return moss_fail(c->ctx, MOSS_E_NOMEM, NULL, "calibration");
  for (i = 0; i < (uint32_t)c->nout; i++) {
    calib_io *o = &c->out[i];
    const moss_value *v;
    if (mossrt_output_info(c->bundle, i, &t) != MOSSRT_OK || t.rank > MOSS_MAX_RANK)
      return moss_fail(c->ctx, MOSS_E_INTERNAL, NULL, "calibration output %u", i);
    io_of(&t, o);
    o->buf = c->outs[i] = moss_graph_alloc(c->scratch, (size_t)t.nbytes + 1);
    if (!o->buf) return moss_fail(c->ctx, MOSS_E_NOMEM, NULL, "calibration outputs");
    v = moss_graph_find_value((moss_graph *)g, o->name);
    if (v && o->dtype == MOSS_DT_F32) o->value = v->id;
  }
  if (mossrt_session_create(c->bundle, NULL, 0, &c->session, &err) != MOSSRT_OK)
    return rt_fail(c, &err);
  c->batch = c->in.dims[0];
  return MOSS_OK;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The calibration files: DATA itself, or the .npy files of the folder
 * DATA sorted by name; each checked against the model input. */
static moss_status load_data(calib *c, const char *data, const moss_value *in) {
  struct stat sb;
  int i, k;
  if (stat(data, &sb) != 0)
    return moss_fail(c->ctx, MOSS_E_IO, NULL, "--calibration %s: no such file or folder", data);
  if (S_ISDIR(sb.st_mode)) {
    DIR *d = opendir(data);
    struct dirent *e;
    if (!d) return moss_fail(c->ctx, MOSS_E_IO, NULL, "--calibration %s: cannot read the folder", data);
    while ((e = readdir(d)) != NULL && c->nfiles < MAXFILES) {
      size_t n = strlen(e->d_name), len = strlen(data) + n + 2;
      if (n < 5 || strcmp(e->d_name + n - 4, ".npy")) continue;
      c->paths[c->nfiles] = moss_graph_alloc(c->scratch, len);
      if (!c->paths[c->nfiles]) break;
      snprintf(c->paths[c->nfiles++], len, "%s/%s", data, e->d_name);
    }
    closedir(d);
    if (!c->nfiles)
      return moss_fail(c->ctx, MOSS_E_IO, NULL, "--calibration %s: the folder holds no .npy file",
                       data);
    qsort(c->paths, (size_t)c->nfiles, sizeof *c->paths, cmp_str);
  } else {
    c->paths[c->nfiles++] = (char *)data;
  }
  for (i = 0; i < c->nfiles; i++) {
    moss_value *v;
    char a[160], b[160];
    int ok;
    MOSS_TRY(moss_tensor_file_read(c->ctx, c->scratch, c->paths[i], &v));
    ok = v->dtype == MOSS_DT_F32 && v->rank == in->rank && v->dims[0] > 0;
    for (k = 1; ok && k < v->rank; k++) ok = v->dims[k] == in->dims[k];
    if (!ok) {
      c->ctx->file = c->paths[i];
      return moss_fail(c->ctx, MOSS_E_IO, NULL,
                       "calibration data of type %s; the model input '%s' is %s, so the data "
                       "must be float32 [N, ...] with the same trailing dimensions",
                       moss_value_type_str(v, a, sizeof a), in->name,
                       moss_value_type_str(in, b, sizeof b));
    }
    { /* a NaN or an infinity would make every range it touches meaningless */
      const float *x = v->data;
      int64_t e, ne = moss_value_numel(v);
      for (e = 0; e < ne; e++)
        if (!isfinite(x[e])) {
          c->ctx->file = c->paths[i];
          return moss_fail(c->ctx, MOSS_E_INVALID_MODEL, NULL,
                           "calibration data: element %lld (sample %lld) is %s; calibration "
                           "data must be finite", (long long)e, (long long)(e / (ne / v->dims[0])),
                           isnan(x[e]) ? "NaN" : x[e] > 0 ? "+Inf" : "-Inf");
        }
    }
    c->data[i] = v;
  }
  return MOSS_OK;
}

static void range_update(moss_ptq_range *r, const float *x, int64_t n) {
  int64_t i;
  float lo = r->seen ? r->lo : INFINITY, hi = r->seen ? r->hi : -INFINITY;
  for (i = 0; i < n; i++) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
  }
  if (lo <= hi) { /* not all NaN */
    r->lo = lo;
    r->hi = hi;
    r->seen = 1;
  }
}

static void hist_update(uint64_t *h, const moss_ptq_range *r, const float *x, int64_t n) {
  int64_t i;
  double w = (double)r->hi - (double)r->lo;
  for (i = 0; i < n; i++) {
    double t = w > 0 ? ((double)x[i] - r->lo) / w * NBINS : 0;
    int b = t != t ? -1 : t < 0 ? 0 : t >= NBINS ? NBINS - 1 : (int)t;
    if (b >= 0) h[b]++;
  }
}

/* Each tail cut at the P-th percentile: [q(1 - P/100), q(P/100)], read off
 * the histogram at bin edges (outward, so the kept share is >= P). */
static void hist_clip(const uint64_t *h, moss_ptq_range *r, double p) {
  uint64_t total = 0, cum = 0;
  double w = ((double)r->hi - (double)r->lo) / NBINS, cut;
  int b, lo = 0, hi = NBINS - 1;
  for (b = 0; b < NBINS; b++) total += h[b];
  if (!total || !(w > 0)) return;
  cut = (double)total * (1.0 - p / 100.0);
  for (b = 0; b < NBINS; b++) {
    cum += h[b];
    if ((double)cum > cut) {
      lo = b;
      break;
    }
  }
  cum = 0;
  for (b = NBINS - 1; b >= 0; b--) {
    cum += h[b];
    if ((double)cum > cut) {
      hi = b;
      break;
    }
  }
  if (hi < lo) return;
  r->hi = (float)(r->lo + w * (hi + 1));
  r->lo = (float)(r->lo + w * lo);
}

/* Adds the squares of |x| (|rank|, |dims|) into |p|'s sums along the last
 * axis and axis 1, their counts into |cnt|[0] and |cnt|[1]; the arrays are
 * made on first sight, in |g|'s arena (0 on failure: out of memory). */
static int power_update(moss_graph *g, moss_act_power *p, int64_t *cnt, const float *x, int rank,
                        const int64_t *dims) {
  int64_t n = 1, L, C = 0, inner = 1, i;
  int k;
  if (rank < 1) return 1;
  for (k = 0; k < rank; k++) n *= dims[k];
  L = dims[rank - 1];
  if (rank >= 3) {
    C = dims[1];
    for (k = 2; k < rank; k++) inner *= dims[k];
  }
  if (L <= 0 || n <= 0) return 1;
  if (!p->last) {
    p->last = moss_graph_alloc(g, sizeof *p->last * (size_t)L);
    if (!p->last) return 0;
    memset(p->last, 0, sizeof *p->last * (size_t)L);
    p->nlast = L;
    if (C > 0) {
      p->chan = moss_graph_alloc(g, sizeof *p->chan * (size_t)C);
      if (!p->chan) return 0;
      memset(p->chan, 0, sizeof *p->chan * (size_t)C);
      p->nchan = C;
    }
  }
  if (p->nlast != L || (p->chan && p->nchan != C)) return 1; /* not one shape: left as it was */
  for (i = 0; i < n; i++) {
    double v = (double)x[i] * (double)x[i];
    p->last[i % L] += v;
    if (p->chan) p->chan[(i / inner) % C] += v;
  }
  cnt[0] += n / L;
  if (p->chan) cnt[1] += n / C;
  return 1;
}

/* One pass over every batch: ranges (pass 0), histograms (pass 1) or the
 * mean squares' sums (pass 2: |power| and |cnt|, two counts a value, made
 * in |pg|), the samples done on the progress line (the compile's
 * "calibrate" step). */
static moss_status sweep_power(calib *c, moss_ptq_range *ranges, int pass, moss_graph *pg,
                               moss_act_power *power, int64_t *cnt, int64_t *out_n) {
  int f, i;
  size_t row = moss_dtype_size(c->in.dtype);
  int64_t in_numel = 1, total = 0;
  int k;
  for (k = 1; k < c->in.rank; k++) row *= (size_t)c->in.dims[k];
  for (k = 0; k < c->in.rank; k++) in_numel *= c->in.dims[k];
  for (f = 0; f < c->nfiles; f++) total += c->data[f]->dims[0] / c->batch * c->batch;
  moss_progress_stage(pass == 1   ? "calibrating (histograms)"
                      : pass == 2 ? "calibrating (input mean squares)"
                                  : "calibrating",
                      0, total, "samples");
  *out_n = 0;
  for (f = 0; f < c->nfiles; f++) {
    const moss_value *d = c->data[f];
    int64_t n = d->dims[0], b;
    if (pass != 1 && n % c->batch) {
      moss_progress_clear();
      fprintf(stderr, "moss: %s: %s: the last %lld of %lld samples are dropped (the model "
              "runs batches of %lld)\n", pass == 2 ? "prune columns-act" : "quantize", c->paths[f],
              (long long)(n % c->batch), (long long)n, (long long)c->batch);
    }
    for (b = 0; b + c->batch <= n; b += c->batch) {
      mossrt_error err;
      c->ins[0] = (const char *)d->data + (size_t)b * row;
      if (mossrt_run(c->session, c->ins, c->outs, &err) != MOSSRT_OK) return rt_fail(c, &err);
      *out_n += c->batch;
      moss_progress_step(*out_n);
      for (i = -1; i < c->nout; i++) {
        const calib_io *o = i < 0 ? NULL : &c->out[i];
        int id = o ? o->value : c->input_value;
        const float *x = o ? o->buf : c->ins[0];
        int64_t ne = 1;
        if (id < 0) continue;
        if (o) for (k = 0; k < o->rank; k++) ne *= o->dims[k];
        else ne = in_numel;
        if (pass == 2) {
          if (!power_update(pg, &power[id], cnt + 2 * id, x, o ? o->rank : c->in.rank,
                            o ? o->dims : c->in.dims))
            return moss_fail(c->ctx, MOSS_E_NOMEM, NULL, "calibration mean squares");
        } else if (pass == 0) {
          range_update(&ranges[id], x, ne);
        } else if (ranges[id].seen) {
          hist_update(c->hist + (size_t)id * NBINS, &ranges[id], x, ne);
        }
      }
    }
  }
  return MOSS_OK;
}

static moss_status sweep(calib *c, moss_ptq_range *ranges, int pass, int64_t *out_n) {
  return sweep_power(c, ranges, pass, NULL, NULL, NULL, out_n);
}

/* Compiles |opts|'s model with observe set into a temporary folder, runs it
 * on opts->calibration and fills |ranges| (|nranges| entries, by value id
 * of |g|) with minmax or percentile-|p| ranges. |out_nsamples|: the
 * samples seen. */
static moss_status measure(moss_ctx *ctx, const moss_graph *g, const moss_compile_opts *opts,
                           double p, moss_ptq_range *ranges, int nranges, moss_graph *pg,
                           moss_act_power *power, int64_t *out_nsamples) {
  calib *c;
  moss_compile_opts co;
  const moss_value *in = NULL;
  const char *tmp = getenv("TMPDIR");
  moss_status st;
  int i, made = 0;
  char path[4400];
  *out_nsamples = 0;
  if (ranges) memset(ranges, 0, sizeof *ranges * (size_t)nranges);
  for (i = 0; i < g->ninputs; i++) {
    if (g->inputs[i]->data) continue;
    if (in)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                       "--calibration: the model has more than one input ('%s', '%s'); "
                       "calibration handles single-input models only", in->name,
                       g->inputs[i]->name);
    in = g->inputs[i];
  }
  if (!in || in->dtype != MOSS_DT_F32 || in->rank < 1)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                     "--calibration: the model needs one float32 input with a batch dimension");
  c = moss_alloc(ctx, sizeof *c);
  if (!c) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "calibration");
  c->ctx = ctx;
  c->input_value = in->id;
  st = moss_graph_create(ctx, &c->scratch);
  if (st != MOSS_OK) goto done;
  snprintf(c->name, sizeof c->name, "calib");
  st = load_data(c, opts->calibration, in);
  if (st != MOSS_OK) goto done;
  snprintf(c->dir, sizeof c->dir, "%s/moss-calib-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(c->dir)) {
    st = moss_fail(ctx, MOSS_E_IO, NULL, "cannot make a temporary folder '%s'", c->dir);
    goto done;
  }
  made = 1;
  co = *opts;
  co.observe = 1;
  co.inputs = NULL; /* the compile's own inputs were listed before this build */
  co.depfile = NULL;
  co.quantize = NULL;
  co.target = NULL; /* the machine moss runs on */
  co.loaded_target = NULL;
  co.emit = "bundle"; /* what libmossrt loads; the host CPU's backend writes its code */
  snprintf(path, sizeof path, "%s/%s.moss", c->dir, c->name);
  co.out = path;
  co.name = c->name;
  co.verbose = 0;
  co.report = NULL;
  co.explain = 0;
  co.cost_out = NULL;
  co.no_emit = 0;
  co.dump_ir = 0;
  co.dump_kernels = 0;
  co.dump_after = NULL;
  if (power) co.prune = NULL; /* the mean squares columns-act ranks by: the unpruned model's */
  if (power) co.act_power = NULL, co.act_npower = 0;
  st = moss_compile(ctx, &co);
  ctx->file = opts->model;
  if (st == MOSS_OK) st = load(c, g, path);
  if (st == MOSS_OK && c->in.dtype != MOSS_DT_F32)
    st = moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "--calibration: the model input is not float32");
  for (i = 1; st == MOSS_OK && i < c->in.rank; i++)
    if (c->in.dims[i] != in->dims[i])
      st = moss_fail(ctx, MOSS_E_INTERNAL, NULL, "the calibration model's input shape differs");
  if (st == MOSS_OK && power) {
    size_t cb = sizeof(int64_t) * 2 * (size_t)nranges + 1;
    int64_t *cnt = moss_alloc(ctx, cb);
    if (!cnt) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "calibration mean squares");
    if (st == MOSS_OK) {
      memset(cnt, 0, cb);
      st = sweep_power(c, NULL, 2, pg, power, cnt, out_nsamples);
    }
    for (i = 0; st == MOSS_OK && i < nranges; i++) {
      int64_t k;
      for (k = 0; power[i].last && k < power[i].nlast; k++)
        power[i].last[k] /= cnt[2 * i] > 0 ? (double)cnt[2 * i] : 1.0;
      for (k = 0; power[i].chan && k < power[i].nchan; k++)
        power[i].chan[k] /= cnt[2 * i + 1] > 0 ? (double)cnt[2 * i + 1] : 1.0;
    }
    if (cnt) moss_free(ctx, cnt, cb);
  } else if (st == MOSS_OK) {
    st = sweep(c, ranges, 0, out_nsamples);
  }
  if (st == MOSS_OK && !*out_nsamples) {
    ctx->file = opts->calibration;
    st = moss_fail(ctx, MOSS_E_IO, NULL,
                   "no calibration sample: every file holds fewer than the %lld rows of one batch",
                   (long long)c->batch);
  }
  if (st == MOSS_OK && p > 0 && !power) {
    int64_t n2;
    c->hist = moss_graph_alloc(c->scratch, sizeof *c->hist * NBINS * (size_t)nranges);
    if (!c->hist) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "calibration histograms");
    if (st == MOSS_OK) st = sweep(c, ranges, 1, &n2);
    for (i = 0; st == MOSS_OK && i < nranges; i++)
      if (ranges[i].seen) hist_clip(c->hist + (size_t)i * NBINS, &ranges[i], p);
  }
done:
  if (c->session) mossrt_session_destroy(c->session);
  mossrt_close(c->bundle);
  if (made) moss_remove_dir(c->dir);
  if (c->scratch) moss_graph_destroy(ctx, c->scratch);
  moss_free(ctx, c, sizeof *c);
  return st;
}

moss_status moss_ptq_parse_method(moss_ctx *ctx, const char *method, double *out_p) {
  *out_p = 0;
  if (!method || !strcmp(method, "minmax")) return MOSS_OK;
  if (!strcmp(method, "percentile")) {
    *out_p = 99.99;
    return MOSS_OK;
  }
  if (!strncmp(method, "percentile:", 11)) {
    char *end;
    double p = strtod(method + 11, &end);
    if (!*end && end != method + 11 && p > 0 && p <= 100) {
      *out_p = p;
      return MOSS_OK;
    }
  }
  return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                   "--calibration-method %s: expected minmax, percentile or percentile:P with "
                   "0 < P <= 100", method);
}

moss_status moss_ptq_calibrate(moss_ctx *ctx, moss_graph *g, const moss_compile_opts *opts,
                               moss_ptq_calibration *out_calib) {
  moss_ptq_calibration c;
  moss_status st;
  memset(out_calib, 0, sizeof *out_calib);
  memset(&c, 0, sizeof c);
  if (!opts->quantize || strcmp(opts->quantize, "int8"))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "--quantize %s: only int8 is supported",
                     opts->quantize ? opts->quantize : "(none)");
  if (!opts->calibration)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                     "--quantize int8 needs --calibration DATA (a .npy batch of typical inputs)");
  MOSS_TRY(moss_ptq_parse_method(ctx, opts->calib_method, &c.percentile));
  MOSS_TRY(moss_ptq_check_keep_float(ctx, g, opts->keep_float)); /* before the long part */
  c.nranges = g->nvalues;
  c.ranges = moss_graph_alloc(g, sizeof *c.ranges * (size_t)(c.nranges + 1));
  if (!c.ranges) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "calibration ranges");
  st = measure(ctx, g, opts, c.percentile, c.ranges, c.nranges, NULL, NULL, &c.nsamples);
  ctx->file = opts->model;
  if (st == MOSS_OK) *out_calib = c;
  return st;
}

moss_status moss_ptq_power(moss_ctx *ctx, moss_graph *g, const moss_compile_opts *opts,
                           moss_act_power **out_power, int *out_n) {
  moss_act_power *pw;
  int64_t n = 0;
  moss_status st;
  int i;
  *out_power = NULL;
  *out_n = 0;
  if (!opts->calibration)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                     "--prune columns-act:R needs --calibration DATA (a .npy batch of typical "
                     "inputs: the columns are ranked by the mean square of the input they read)");
  pw = moss_graph_alloc(g, sizeof *pw * (size_t)(g->nvalues + 1));
  if (!pw) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "calibration mean squares");
  memset(pw, 0, sizeof *pw * (size_t)(g->nvalues + 1));
  st = measure(ctx, g, opts, 0, NULL, g->nvalues, g, pw, &n);
  ctx->file = opts->model;
  if (st != MOSS_OK) return st;
  for (i = 0; i < g->nvalues; i++) pw[i].name = g->values[i] ? g->values[i]->name : NULL;
  *out_power = pw;
  *out_n = g->nvalues;
  return MOSS_OK;
}
