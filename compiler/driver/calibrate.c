/* calibrate.c - the calibration runs of post-training quantization
 * (ptq.h): the float model, compiled with every activation as an output
 * (opts->observe) as C into a temporary folder, built with the system C
 * compiler and loaded with dlopen (the compiler library does not link
 * libmossrt), runs on the calibration batches; the observers record each
 * activation's range: minmax, or percentile (a second pass fills a
 * histogram per value and clips each tail). */
#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
  int64_t arena_bytes;
  void *arena, *lib;
  int (*run)(const void *const *, void *const *, void *);
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

static moss_status read_manifest(calib *c) {
  char path[4400], line[1024];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s.manifest", c->dir, c->name);
  f = fopen(path, "r");
  if (!f) return moss_fail(c->ctx, MOSS_E_IO, NULL, "calibration build: cannot open '%s'", path);
  c->out = moss_graph_alloc(c->scratch, sizeof *c->out * 4096);
  if (!c->out) {
    fclose(f);
    return moss_fail(c->ctx, MOSS_E_NOMEM, NULL, "calibration outputs");
  }
  c->in.rank = -1;
  while (fgets(line, sizeof line, f)) {
    char kind[16];
    int pos = 0, index, dt, rank, k;
    long long v;
    line[strcspn(line, "\n")] = 0;
    if (sscanf(line, "arena %lld", &v) == 1) c->arena_bytes = v;
    else if (sscanf(line, "%15s %d %d %d%n", kind, &index, &dt, &rank, &pos) == 4 && rank >= 0 &&
             rank <= MOSS_MAX_RANK) {
      calib_io io;
      char *p = line + pos;
      memset(&io, 0, sizeof io);
      io.dtype = (moss_dtype)dt;
      io.rank = rank;
      for (k = 0; k < rank; k++) io.dims[k] = strtoll(p, &p, 10);
      while (*p == ' ') p++;
      snprintf(io.name, sizeof io.name, "%s", p);
      io.value = -1;
      if (!strcmp(kind, "input")) {
        if (index != 0) {
          fclose(f);
          return moss_fail(c->ctx, MOSS_E_UNSUPPORTED, NULL,
                           "--calibration: the model has more than one input; calibration "
                           "handles single-input models only");
        }
        c->in = io;
      } else if (!strcmp(kind, "output") && c->nout < 4096) {
        c->out[c->nout++] = io;
      }
    }
  }
  fclose(f);
  if (c->in.rank < 1)
    return moss_fail(c->ctx, MOSS_E_UNSUPPORTED, NULL,
                     "--calibration: the model needs one input with a batch dimension");
  return MOSS_OK;
}

/* Builds and loads the calibration code. */
static moss_status load(calib *c, const moss_graph *g) {
  char src[4400], wsrc[4400], so[4400], sym[200];
  const char *srcs[2];
  int nsrc = 0, i;
  struct stat sb;
  MOSS_TRY(read_manifest(c));
  snprintf(src, sizeof src, "%s/%s.c", c->dir, c->name);
  snprintf(wsrc, sizeof wsrc, "%s/%s_weights.c", c->dir, c->name);
  snprintf(so, sizeof so, "%s/%s.so", c->dir, c->name);
  srcs[nsrc++] = src;
  if (stat(wsrc, &sb) == 0) srcs[nsrc++] = wsrc;
  MOSS_TRY(moss_cc_shared(c->ctx, NULL, NULL, 0, srcs, nsrc, so));
  c->lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  if (!c->lib) return moss_fail(c->ctx, MOSS_E_IO, NULL, "cannot load '%s': %s", so, dlerror());
  snprintf(sym, sizeof sym, "%s_run_v", c->name);
  *(void **)&c->run = dlsym(c->lib, sym);
  if (!c->run) return moss_fail(c->ctx, MOSS_E_IO, NULL, "'%s' has no symbol %s", so, sym);
  c->arena = moss_graph_alloc(c->scratch, (size_t)c->arena_bytes + 64);
  c->ins = moss_graph_alloc(c->scratch, sizeof *c->ins);
  c->outs = moss_graph_alloc(c->scratch, sizeof *c->outs * (size_t)(c->nout + 1));
  if (!c->arena || !c->ins || !c->outs) return moss_fail(c->ctx, MOSS_E_NOMEM, NULL, "calibration");
  for (i = 0; i < c->nout; i++) {
    calib_io *o = &c->out[i];
    size_t nb = moss_dtype_size(o->dtype);
    int k;
    const moss_value *v = moss_graph_find_value((moss_graph *)g, o->name);
    for (k = 0; k < o->rank; k++) nb *= (size_t)o->dims[k];
    o->buf = c->outs[i] = moss_graph_alloc(c->scratch, nb + 1);
    if (!o->buf) return moss_fail(c->ctx, MOSS_E_NOMEM, NULL, "calibration outputs");
    if (v && o->dtype == MOSS_DT_F32) o->value = v->id;
  }
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

/* One pass over every batch: ranges (pass 0) or histograms (pass 1). */
static moss_status sweep(calib *c, moss_ptq_range *ranges, int pass, int64_t *out_n) {
  int f, i;
  size_t row = moss_dtype_size(c->in.dtype);
  int64_t in_numel = 1;
  int k;
  for (k = 1; k < c->in.rank; k++) row *= (size_t)c->in.dims[k];
  for (k = 0; k < c->in.rank; k++) in_numel *= c->in.dims[k];
  *out_n = 0;
  for (f = 0; f < c->nfiles; f++) {
    const moss_value *d = c->data[f];
    int64_t n = d->dims[0], b;
    if (pass == 0 && n % c->batch)
      fprintf(stderr, "moss: quantize: %s: the last %lld of %lld samples are dropped (the model "
              "runs batches of %lld)\n", c->paths[f], (long long)(n % c->batch), (long long)n,
              (long long)c->batch);
    for (b = 0; b + c->batch <= n; b += c->batch) {
      c->ins[0] = (const char *)d->data + (size_t)b * row;
      if (c->run(c->ins, c->outs, c->arena) != 0)
        return moss_fail(c->ctx, MOSS_E_INTERNAL, NULL, "the calibration code returned an error");
      *out_n += c->batch;
      for (i = -1; i < c->nout; i++) {
        const calib_io *o = i < 0 ? NULL : &c->out[i];
        int id = o ? o->value : c->input_value;
        const float *x = o ? o->buf : c->ins[0];
        int64_t ne = 1;
        if (id < 0) continue;
        if (o) for (k = 0; k < o->rank; k++) ne *= o->dims[k];
        else ne = in_numel;
        if (pass == 0) range_update(&ranges[id], x, ne);
        else if (ranges[id].seen) hist_update(c->hist + (size_t)id * NBINS, &ranges[id], x, ne);
      }
    }
  }
  return MOSS_OK;
}

static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[4400];
  if (!d) return;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

moss_status moss_ptq_calibrate(moss_ctx *ctx, const moss_graph *g, const moss_compile_opts *opts,
                               double p, moss_ptq_range *ranges, int nranges,
                               int64_t *out_nsamples) {
  calib *c;
  moss_compile_opts co;
  const moss_value *in = NULL;
  const char *tmp = getenv("TMPDIR");
  moss_status st;
  int i, made = 0;
  *out_nsamples = 0;
  memset(ranges, 0, sizeof *ranges * (size_t)nranges);
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
  co.quantize = NULL;
  co.target = NULL;
  co.emit = "c";
  co.out = c->dir;
  co.name = c->name;
  co.verbose = 0;
  co.report = NULL;
  co.explain = 0;
  co.cost_out = NULL;
  co.no_emit = 0;
  co.dump_ir = 0;
  co.dump_kernels = 0;
  co.dump_after = NULL;
  st = moss_compile(ctx, &co);
  ctx->file = opts->model;
  if (st == MOSS_OK) st = load(c, g);
  if (st == MOSS_OK && c->in.dtype != MOSS_DT_F32)
    st = moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "--calibration: the model input is not float32");
  for (i = 1; st == MOSS_OK && i < c->in.rank; i++)
    if (c->in.dims[i] != in->dims[i])
      st = moss_fail(ctx, MOSS_E_INTERNAL, NULL, "the calibration model's input shape differs");
  if (st == MOSS_OK) st = sweep(c, ranges, 0, out_nsamples);
  if (st == MOSS_OK && !*out_nsamples) {
    ctx->file = opts->calibration;
    st = moss_fail(ctx, MOSS_E_IO, NULL,
                   "no calibration sample: every file holds fewer than the %lld rows of one batch",
                   (long long)c->batch);
  }
  if (st == MOSS_OK && p > 0) {
    int64_t n2;
    c->hist = moss_graph_alloc(c->scratch, sizeof *c->hist * NBINS * (size_t)nranges);
    if (!c->hist) st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "calibration histograms");
    if (st == MOSS_OK) st = sweep(c, ranges, 1, &n2);
    for (i = 0; st == MOSS_OK && i < nranges; i++)
      if (ranges[i].seen) hist_clip(c->hist + (size_t)i * NBINS, &ranges[i], p);
  }
done:
  if (c->lib) dlclose(c->lib);
  if (made) remove_dir(c->dir);
  if (c->scratch) moss_graph_destroy(ctx, c->scratch);
  moss_free(ctx, c, sizeof *c);
  return st;
}
