/* run.c - `moss run` and `moss bench`. A bundle (a file) runs through
 * libmossrt. A folder made with --emit c is built with the system C
 * compiler into a shared object (once; rebuilt when the source is newer),
 * loaded with dlopen and called through <name>_run_v. Inputs are read from
 * .npy / .pb files and checked against the artifact's inputs. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"
#include "profile.h"
#include "mossrt.h"
#include "mossrt_sign.h"
#include "../../runtime/src/cpu/imports.h"

typedef struct io_desc {
  int index;
  moss_dtype dtype;
  int rank;
  int64_t dims[MOSS_MAX_RANK];
  char name[256];
  int bounded;          /* 1 + the axis whose length the run decides (dims: its bound); 0: none */
  int64_t len_offset;   /* C artifacts: the arena offset of that length (an int64) */
} io_desc;

typedef struct manifest {
  char name[128];
  char object[128]; /* --emit obj: the object file; "" for C sources */
  int64_t arena;
  int nin, nout;
  io_desc in[64], out[64];
  int ngroups;      /* model outputs that are sequences or optionals (docs/sequences.md) */
  mossrt_group_info groups[64];
  int batched;      /* planned for batch 1, run over slices of axis 0 (mossrt_run_batch) */
} manifest;

static moss_status read_manifest(moss_ctx *ctx, const char *dir, manifest *m) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[4096] = "", line[1024];
  FILE *f;
  memset(m, 0, sizeof *m);
  if (!d)
    return moss_fail(ctx, MOSS_E_IO, NULL, "'%s' is not an artifact folder made by moss compile",
                     dir);
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n > 9 && !strcmp(e->d_name + n - 9, ".manifest")) {
      if (path[0]) {
        closedir(d);
        return moss_fail(ctx, MOSS_E_IO, NULL, "'%s' holds more than one artifact", dir);
      }
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    }
  }
  closedir(d);
  if (!path[0]) return moss_fail(ctx, MOSS_E_IO, NULL, "'%s' holds no .manifest: not a moss artifact", dir);
  f = fopen(path, "r");
  if (!f) return moss_fail(ctx, MOSS_E_IO, NULL, "cannot open '%s'", path);
  if (moss_file_note_input(ctx, path) != MOSS_OK) { /* no output may replace it */
    fclose(f);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "the list of files read");
  }
  if (!fgets(line, sizeof line, f) || strncmp(line, "moss-c 1", 8) != 0) {
    fclose(f);
    return moss_fail(ctx, MOSS_E_IO, NULL, "'%s': unknown manifest version", path);
  }
  while (fgets(line, sizeof line, f)) {
    char kind[16];
    int pos = 0;
    io_desc io;
    long long v;
    line[strcspn(line, "\n")] = 0;
    if (sscanf(line, "name %127s", m->name) == 1) continue;
    if (sscanf(line, "object %127s", m->object) == 1) continue;
    if (sscanf(line, "arena %lld", &v) == 1) {
      m->arena = v;
      continue;
    }
    if (!strcmp(line, "batch 0")) {
      m->batched = 1;
      continue;
    }
    memset(&io, 0, sizeof io);
    {
      int gp, gk, gf, gc, gfl, ge;
      if (sscanf(line, "group %d %d %d %d %d %d", &gp, &gk, &gf, &gc, &gfl, &ge) == 6) {
        mossrt_group_info *r = &m->groups[m->ngroups];
        if (m->ngroups == 64 || gp < 0 || gk < 1 || gk > 2 || gf < 0 || gc < 0 || gf > m->nout ||
            gc > m->nout - gf || gfl < 0 || gfl > 3 ||
            (m->ngroups && (gp <= (int)r[-1].position || gf < (int)(r[-1].first + r[-1].count)))) {
          fclose(f);
          return moss_fail(ctx, MOSS_E_IO, NULL, "'%s': bad line '%s'", path, line);
        }
        r->position = (uint32_t)gp;
        r->kind = gk;
        r->first = (uint32_t)gf;
        r->count = (uint32_t)gc;
        r->optional_of_sequence = gfl & 1;
        r->absent = (gfl & 2) != 0;
        r->elem = ge;
        m->ngroups++;
        continue;
      }
    }
    {
      int o, ax;
      if (sscanf(line, "bound %d %d %lld", &o, &ax, &v) == 3) {
        if (o < 0 || o >= m->nout || ax < 0 || ax >= m->out[o].rank || v < 0 || v % 8 ||
            v + 8 > m->arena) {
          fclose(f);
          return moss_fail(ctx, MOSS_E_IO, NULL, "'%s': bad line '%s'", path, line);
        }
        m->out[o].bounded = ax + 1;
        m->out[o].len_offset = v;
        continue;
      }
    }
    if (sscanf(line, "%15s %d %d %d%n", kind, &io.index, (int *)&io.dtype, &io.rank, &pos) == 4 &&
        io.rank >= 0 && io.rank <= MOSS_MAX_RANK && io.index >= 0 && io.index < 64) {
      char *p = line + pos;
      int k;
      for (k = 0; k < io.rank; k++) io.dims[k] = strtoll(p, &p, 10);
      while (*p == ' ') p++;
      snprintf(io.name, sizeof io.name, "%s", p);
      if (!strcmp(kind, "input")) m->in[m->nin++] = io;
      else if (!strcmp(kind, "output")) m->out[m->nout++] = io;
    }
  }
  fclose(f);
  if (!m->name[0]) return moss_fail(ctx, MOSS_E_IO, NULL, "'%s': no name", path);
  return MOSS_OK;
}

/* Fills |m| from an opened bundle. */
static moss_status bundle_manifest(moss_ctx *ctx, const mossrt_bundle *b, manifest *m) {
  uint32_t i, n[2];
  memset(m, 0, sizeof *m);
  n[0] = mossrt_input_count(b);
  n[1] = mossrt_output_count(b);
  if (n[0] > 64 || n[1] > 64)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "moss run handles at most 64 inputs and outputs");
  snprintf(m->name, sizeof m->name, "%s", mossrt_target(b));
  m->arena = (int64_t)mossrt_arena_bytes(b);
  m->nin = (int)n[0];
  m->nout = (int)n[1];
  for (i = 0; i < n[0] + n[1]; i++) {
    mossrt_tensor_info info;
    io_desc *io = i < n[0] ? &m->in[i] : &m->out[i - n[0]];
    int k;
    if ((i < n[0] ? mossrt_input_info(b, i, &info) : mossrt_output_info(b, i - n[0], &info)) !=
            MOSSRT_OK ||
        info.rank < 0 || info.rank > MOSS_MAX_RANK)
      return moss_fail(ctx, MOSS_E_IO, NULL, "bundle tensor %u has no valid description", i);
    io->index = (int)(i < n[0] ? i : i - n[0]);
    io->dtype = (moss_dtype)info.dtype;
    io->rank = info.rank;
    for (k = 0; k < info.rank; k++) io->dims[k] = info.dims[k];
    snprintf(io->name, sizeof io->name, "%s", info.name ? info.name : "");
    if (i >= n[0]) io->bounded = mossrt_output_bound_axis(b, i - n[0]) + 1;
  }
  m->batched = mossrt_bundle_batched(b);
  m->ngroups = (int)mossrt_group_count(b);
  if (m->ngroups > 64) return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "moss run handles at most 64 groups");
  for (i = 0; i < (uint32_t)m->ngroups; i++)
    if (mossrt_group_get(b, i, &m->groups[i], NULL) != MOSSRT_OK)
      return moss_fail(ctx, MOSS_E_IO, NULL, "bundle group %u has no valid description", i);
  return MOSS_OK;
}

/* A libmossrt error as a moss diagnostic: its text already reads
 * "<bundle>: <category>: <reason>"; keep the reason and map the category. */
static moss_status runtime_fail(moss_ctx *ctx, const mossrt_error *e) {
  const char *reason = e->text, *p = strstr(e->text, ": ");
  moss_status code = MOSS_E_IO;
  if (p && (p = strstr(p + 2, ": ")) != NULL) reason = p + 2;
  switch (e->status) {
  case MOSSRT_E_FORMAT: case MOSSRT_E_SIGNATURE: code = MOSS_E_INVALID_MODEL; break;
  case MOSSRT_E_VERSION: code = MOSS_E_UNSUPPORTED; break;
  case MOSSRT_E_TARGET: case MOSSRT_E_DEVICE: code = MOSS_E_TARGET; break;
  case MOSSRT_E_NOMEM: code = MOSS_E_NOMEM; break;
  case MOSSRT_E_ARG: code = MOSS_E_INTERNAL; break;
  default: code = MOSS_E_IO; break;
  }
  return moss_fail(ctx, code, NULL, "%s", reason);
}

static time_t mtime(const char *path) {
  struct stat s;
  return stat(path, &s) == 0 ? s.st_mtime : 0;
}

/* Builds <dir>/<name>.so from <dir>/<name>.c (and <name>_weights.c) unless
 * it is newer than its sources. */
static moss_status build(moss_ctx *ctx, const char *dir, const char *name, char *so, size_t cap) {
  char src[4096], wsrc[4200];
  const char *srcs[2];
  int nsrc = 0;
  snprintf(src, sizeof src, "%s/%s.c", dir, name);
  snprintf(so, cap, "%s/%s.so", dir, name);
  snprintf(wsrc, sizeof wsrc, "%s/%s_weights.c", dir, name);
  if (mtime(so) && mtime(so) >= mtime(src) && mtime(so) >= mtime(wsrc)) return MOSS_OK;
  srcs[nsrc++] = src;
  if (mtime(wsrc)) srcs[nsrc++] = wsrc;
  return moss_cc_shared(ctx, NULL, NULL, 0, NULL, srcs, nsrc, so);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* "float32[1,3]" (as moss_value_type_str): what the model wants for |io|. */
static const char *io_type_str(const io_desc *io, char *buf, size_t cap) {
  size_t n = (size_t)snprintf(buf, cap, "%s[", moss_dtype_name(io->dtype));
  int k;
  for (k = 0; k < io->rank && n < cap; k++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%lld", k ? "," : "", (long long)io->dims[k]);
  if (n < cap) snprintf(buf + n, cap - n, "]");
  return buf;
}

/* Reads the tensor file |path| for the input |io|; its problems are
 * reported under its own name. |chunks| not NULL (--stream): the file
 * holds chunks of the input along a new first axis, counted in |*chunks|.
 * |batch| not NULL (a batched artifact): axis 0 may have any length, which
 * must be |*batch| when that is not -1, and is left there. */
static moss_status read_input(moss_ctx *ctx, moss_graph *scratch, const char *path,
                              const io_desc *io, const void **out, int64_t *chunks,
                              int64_t *batch) {
  const char *artifact = ctx->file;
  char a[160], b[160];
  moss_value *v;
  moss_status st;
  int lead = chunks ? 1 : 0;
  const io_desc *want = io; /* as the message shows it */
  io_desc any = *io;
  ctx->file = path;
  st = moss_tensor_file_read(ctx, scratch, path, &v);
  /* numpy has no bfloat16: a bfloat16 input's .npy holds its bits */
  if (st == MOSS_OK && io->dtype == MOSS_DT_BF16 && v->dtype == MOSS_DT_U16) v->dtype = MOSS_DT_BF16;
  if (st == MOSS_OK && batch && v->rank == io->rank && io->rank > 0 && v->dims[0] > 0) {
    any.dims[0] = v->dims[0]; /* the batch this file holds; the other axes must match */
    io = &any;
  }
  if (st == MOSS_OK && (v->dtype != io->dtype || v->rank != io->rank + lead ||
                        memcmp(v->dims + lead, io->dims, sizeof(int64_t) * (size_t)io->rank) ||
                        (lead && v->dims[0] < 1)))
    st = moss_fail(ctx, MOSS_E_IO, NULL, "holds %s; the input '%s' of '%s' is %s%s",
                   moss_value_type_str(v, a, sizeof a), io->name, artifact,
                   io_type_str(want, b, sizeof b),
                   lead ? ", and --stream reads one or more of it along a new first axis"
                   : batch ? " with any length N >= 1 of axis 0 (a batch of N)" : "");
  if (st == MOSS_OK && batch && *batch >= 0 && v->dims[0] != *batch)
    st = moss_fail(ctx, MOSS_E_IO, NULL, "holds a batch of %lld, and another input file one of "
                   "%lld: every input of a batch has the same length of axis 0",
                   (long long)v->dims[0], (long long)*batch);
  if (st == MOSS_OK && batch) *batch = v->dims[0];
  ctx->file = artifact;
  if (st == MOSS_OK) *out = v->data;
  if (st == MOSS_OK && chunks) *chunks = v->dims[0];
  return st;
}

/* --state IN=OUT: |state_out|[i] is the output that feeds input i, or -1. */
static moss_status parse_states(moss_ctx *ctx, const moss_run_opts *o, const manifest *m, int *state_out) {
  int i, k, j;
  for (i = 0; i < m->nin; i++) state_out[i] = -1;
  for (k = 0; k < o->nstates; k++) {
    const char *arg = o->states[k], *eq = strchr(arg, '=');
    int in = -1, out = -1;
    for (j = 0; eq && j < m->nin; j++)
      if (strlen(m->in[j].name) == (size_t)(eq - arg) && !strncmp(m->in[j].name, arg, (size_t)(eq - arg))) in = j;
    for (j = 0; eq && j < m->nout; j++)
      if (!strcmp(m->out[j].name, eq + 1)) out = j;
    if (in < 0 || out < 0)
      return moss_fail(ctx, MOSS_E_IO, NULL, "--state %s: the model has no %s named '%.*s'", arg,
                       in < 0 ? "input" : "output", in < 0 ? (int)(eq - arg) : (int)strlen(eq + 1),
                       in < 0 ? arg : eq + 1);
    if (state_out[in] >= 0)
      return moss_fail(ctx, MOSS_E_IO, NULL, "--state: input '%s' is given twice", m->in[in].name);
    state_out[in] = out;
  }
  return MOSS_OK;
}

static size_t io_bytes(const io_desc *io) {
  size_t n = moss_dtype_size(io->dtype);
  int k;
  for (k = 0; k < io->rank; k++) n *= (size_t)io->dims[k];
  return n;
}

moss_status moss_run_artifact(moss_ctx *ctx, const moss_run_opts *opts) {
  manifest *m;
  char so[4096];
  void *lib = NULL, *arena = NULL;
  mossrt_elf_image *image = NULL;
  int (*run)(const void *const *, void *const *, void *) = NULL;
  const void *ins[64];
  void *outs[64];
  moss_graph *scratch = NULL;
  mossrt_bundle *bundle = NULL;
  mossrt_session *session = NULL;
  mossrt_error rerr;
  moss_status st;
  struct stat sb;
  int i, k, iters = opts->iterations > 0 ? opts->iterations : 1;
  int state_out[64];
  int64_t len[64], chunks = -1, nbatch = -1;
  double *times = NULL;

  ctx->file = opts->artifact;
  m = moss_alloc(ctx, sizeof *m);
  if (!m) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "manifest");
  memset(outs, 0, sizeof outs);
  if (stat(opts->artifact, &sb) == 0 && S_ISREG(sb.st_mode)) {
    mossrt_options ro;
    uint8_t key[32];
    memset(&ro, 0, sizeof ro);
    if (opts->public_key) { /* --public-key: only a bundle signed with its secret key runs */
      st = moss_key_read(ctx, opts->public_key, 0, key);
      if (st != MOSS_OK) goto done;
      ro.public_key = key;
      ro.verify = mossrt_sign_verify;
    }
    if (mossrt_open_file_ex(opts->artifact, &ro, &bundle, &rerr) != MOSSRT_OK) {
      st = runtime_fail(ctx, &rerr);
      goto done;
    }
    st = moss_file_note_input(ctx, opts->artifact); /* no output may replace it */
    if (st != MOSS_OK) {
      st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "the list of files read");
      goto done;
    }
    st = bundle_manifest(ctx, bundle, m);
  } else if (opts->profile) {
    st = moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "--profile times the steps of a bundle's plan, "
                   "and this is a folder of --emit c or obj code, which runs as one function: "
                   "compile a bundle (the default --emit)");
  } else if (opts->public_key) {
    st = moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "--public-key checks the signature of a bundle, "
                   "and this is a folder of --emit c or obj code, which carries none");
  } else {
    st = read_manifest(ctx, opts->artifact, m);
  }
  if (st != MOSS_OK) goto done;
  st = moss_graph_create(ctx, &scratch);
  if (st != MOSS_OK) goto done;
  if (opts->ninputs > m->nin) {
    st = moss_fail(ctx, MOSS_E_IO, NULL, "the model takes %d input%s, %d files given", m->nin,
                   m->nin == 1 ? "" : "s", opts->ninputs);
    goto done;
  }
  for (i = 0; i < m->nin; i++) ins[i] = NULL;
  if (opts->stream && m->ngroups) {
    st = moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "--stream: the model has outputs that are sequences "
                   "or optionals (docs/sequences.md); run the chunks one by one");
    goto done;
  }
  for (i = 0; opts->stream && i < m->nout; i++)
    if (m->out[i].bounded) {
      st = moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "--stream: output '%s' has a length that each "
                     "run decides (docs/dynamic-shapes.md); run the chunks one by one", m->out[i].name);
      goto done;
    }
  st = parse_states(ctx, opts, m, state_out);
  if (st != MOSS_OK) goto done;
  if (m->batched && (opts->stream || opts->nstates)) {
    st = moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "%s: the artifact runs over slices of a batch "
                   "(compiled without --input-shape), not as a stream with states; compile it with "
                   "--input-shape", opts->stream ? "--stream" : "--state");
    goto done;
  }
  if (opts->stream && (!bundle || opts->profile)) {
    st = moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "--stream runs a bundle, whose session keeps the "
                   "state (libmossrt), %s", bundle ? "without --profile" : "and this is a folder of "
                   "--emit c or obj code: compile a bundle (the default --emit)");
    goto done;
  }
  for (i = 0; i < opts->ninputs; i++) {
    const char *arg = opts->inputs[i], *eq = strchr(arg, '=');
    int slot = i;
    if (eq) {
      slot = -1;
      for (k = 0; k < m->nin; k++)
        if (strlen(m->in[k].name) == (size_t)(eq - arg) && !strncmp(m->in[k].name, arg, (size_t)(eq - arg)))
          slot = k;
      if (slot < 0) {
        st = moss_fail(ctx, MOSS_E_IO, NULL, "the model has no input named '%.*s'", (int)(eq - arg), arg);
        goto done;
      }
      arg = eq + 1;
    }
    if (ins[slot]) {
      st = moss_fail(ctx, MOSS_E_IO, NULL, "input %d '%s' given twice", slot, m->in[slot].name);
      goto done;
    }
    st = read_input(ctx, scratch, arg, &m->in[slot], &ins[slot],
                    opts->stream && state_out[slot] < 0 ? &len[slot] : NULL,
                    m->batched ? &nbatch : NULL);
    if (st != MOSS_OK) goto done;
    if (opts->stream && state_out[slot] < 0) {
      if (chunks >= 0 && len[slot] != chunks) {
        st = moss_fail(ctx, MOSS_E_IO, NULL, "--stream: the input files hold %lld and %lld chunks",
                       (long long)chunks, (long long)len[slot]);
        goto done;
      }
      chunks = len[slot];
    }
  }
  if (opts->ninputs > 0 || !opts->zeros) { /* every input has its file: never made-up data */
    char missing[600];
    size_t n = 0;
    int nmissing = 0;
    for (i = 0; i < m->nin; i++)
      if (!ins[i] && state_out[i] < 0 && n < sizeof missing) {
        n += (size_t)snprintf(missing + n, sizeof missing - n, "%s%d '%s'", nmissing ? ", " : "",
                              i, m->in[i].name);
        nmissing++;
      }
    if (nmissing) {
      st = moss_fail(ctx, MOSS_E_IO, NULL,
                     "no file for input%s %s: give one tensor file per graph input (%d), in "
                     "order or as --input NAME=FILE", nmissing > 1 ? "s" : "", missing, m->nin);
      goto done;
    }
  }
  if (opts->stream && chunks < 0) {
    st = moss_fail(ctx, MOSS_E_IO, NULL, "--stream: every input is a state; give the chunks of one "
                   "that is not");
    goto done;
  }
  if (chunks < 0) chunks = 1;
  if (nbatch < 0) nbatch = 1; /* no files (moss bench): one slice */
  if (nbatch != 1 && opts->profile) {
    st = moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "--profile times one run of the plan: give it "
                   "a batch of 1, not %lld", (long long)nbatch);
    goto done;
  }
  for (i = 0; i < m->nin; i++) {
    if (!ins[i] && state_out[i] >= 0) continue; /* a state from zeros */
    if (!ins[i]) { /* moss bench without input files: zeros, only timed */
      ins[i] = moss_graph_alloc(scratch, io_bytes(&m->in[i]) + 1);
      if (!ins[i]) {
        st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "input");
        goto done;
      }
    }
  }
  for (i = 0; i < m->nout; i++) {
    outs[i] = moss_graph_alloc(scratch, io_bytes(&m->out[i]) * (size_t)chunks * (size_t)nbatch + 1);
    if (!outs[i]) {
      st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "outputs");
      goto done;
    }
  }
  if (bundle) {
    if (mossrt_session_create(bundle, NULL, 0, &session, &rerr) != MOSSRT_OK ||
        (opts->threads && mossrt_session_set_threads(session, (uint32_t)opts->threads, &rerr) != MOSSRT_OK)) {
      st = runtime_fail(ctx, &rerr);
      goto done;
    }
    for (i = 0; i < m->nin; i++)
      if (state_out[i] >= 0 &&
          (mossrt_session_keep_state(session, (uint32_t)i, (uint32_t)state_out[i], &rerr) != MOSSRT_OK ||
           (ins[i] && mossrt_session_set_state(session, (uint32_t)i, ins[i], &rerr) != MOSSRT_OK))) {
        st = runtime_fail(ctx, &rerr);
        goto done;
      }
    if (opts->stream) { /* chunk after chunk, the states kept by the session */
      const void *cin[64];
      void *cout[64];
      int64_t c;
      for (c = 0; c < chunks; c++) {
        for (i = 0; i < m->nin; i++)
          cin[i] = state_out[i] >= 0 ? NULL : (const char *)ins[i] + (size_t)c * io_bytes(&m->in[i]);
        for (i = 0; i < m->nout; i++) cout[i] = (char *)outs[i] + (size_t)c * io_bytes(&m->out[i]);
        if (mossrt_run(session, cin, cout, &rerr) != MOSSRT_OK) {
          st = runtime_fail(ctx, &rerr);
          goto done;
        }
      }
      goto write;
    }
    goto execute;
  }
  arena = moss_graph_alloc(scratch, (size_t)m->arena + 64);
  if (!arena) {
    st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "arena of %lld bytes", (long long)m->arena);
    goto done;
  }
  if (m->object[0]) { /* native code: through libmossrt's loader, no compiler */
    char path[4096], sym[160], err[256];
    size_t nimp;
    const mossrt_elf_import *imp = mossrt_cpu_imports(&nimp);
    uint8_t *bytes;
    size_t nbytes;
    mossrt_status rs;
    snprintf(path, sizeof path, "%s/%s", opts->artifact, m->object);
    st = moss_file_read(ctx, path, &bytes, &nbytes);
    if (st != MOSS_OK) goto done;
    rs = mossrt_elf_load(bytes, nbytes, imp, nimp, &image, err, sizeof err);
    moss_free(ctx, bytes, nbytes + 1);
    if (rs != MOSSRT_OK) {
      st = moss_fail(ctx, rs == MOSSRT_E_NOMEM ? MOSS_E_NOMEM : MOSS_E_IO, NULL, "cannot load '%s': %s",
                     path, err);
      goto done;
    }
    snprintf(sym, sizeof sym, "%s_run_v", m->name);
    *(void **)&run = mossrt_elf_find(image, sym);
    if (!run) {
      st = moss_fail(ctx, MOSS_E_IO, NULL, "'%s' has no symbol %s", path, sym);
      goto done;
    }
    goto execute;
  }
  st = build(ctx, opts->artifact, m->name, so, sizeof so);
  if (st != MOSS_OK) goto done;
  lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    st = moss_fail(ctx, MOSS_E_IO, NULL, "cannot load '%s': %s", so, dlerror());
    goto done;
  }
  {
    char sym[160];
    snprintf(sym, sizeof sym, "%s_run_v", m->name);
    *(void **)&run = dlsym(lib, sym);
    if (!run) {
      st = moss_fail(ctx, MOSS_E_IO, NULL, "'%s' has no symbol %s", so, sym);
      goto done;
    }
  }
execute:
  if (opts->profile) { /* each step timed through libmossrt, beside the estimate */
    moss_profile p;
    size_t len;
    const char *json = mossrt_report_json(bundle, &len);
    st = moss_profile_run(ctx, bundle, session, ins, outs, iters, &p);
    if (st != MOSS_OK) goto done;
    st = moss_profile_print(ctx, &p, opts->artifact, json, len, stdout, opts->profile_csv);
    moss_profile_deinit(ctx, &p);
    if (st == MOSS_OK) st = moss_profile_counters(ctx, bundle, session, json, len, stdout);
    if (st != MOSS_OK) goto done;
    goto write;
  }
  times = moss_alloc(ctx, sizeof(double) * (size_t)iters);
  if (!times) {
    st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "timings");
    goto done;
  }
  for (i = 0; i < iters; i++) {
    double t0 = now_s();
    if (session) {
      if ((m->batched ? mossrt_run_batch(session, (uint64_t)nbatch, ins, outs, &rerr)
                      : mossrt_run(session, ins, outs, &rerr)) != MOSSRT_OK) {
        st = runtime_fail(ctx, &rerr);
        goto done;
      }
    } else {
      const void *bin[64];
      void *bout[64];
      int64_t j;
      for (j = 0; j < nbatch; j++) { /* a batched C artifact: one call per slice */
        for (k = 0; k < m->nin; k++)
          bin[k] = (const char *)ins[k] + (size_t)j * io_bytes(&m->in[k]);
        for (k = 0; k < m->nout; k++) bout[k] = (char *)outs[k] + (size_t)j * io_bytes(&m->out[k]);
        if (run(bin, bout, arena) != 0) {
          st = moss_fail(ctx, MOSS_E_INTERNAL, NULL, "the generated code returned an error");
          goto done;
        }
      }
    }
    times[i] = now_s() - t0;
  }
  if (opts->print_time || iters > 1) {
    qsort(times, (size_t)iters, sizeof(double), cmp_double);
    printf("%s: %d run%s, median %.3f us, min %.3f us\n", opts->artifact, iters, iters > 1 ? "s" : "",
           times[iters / 2] * 1e6, times[0] * 1e6);
  }
write:
  if (opts->outdir) {
    int64_t (*dims)[MOSS_MAX_RANK] = moss_alloc(ctx, sizeof *dims * (size_t)(m->nout + 1));
    int p, next = 0, g = 0, models = m->nout;
    if (!dims) {
      st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "outputs");
      goto done;
    }
    mkdir(opts->outdir, 0777);
    for (i = 0; i < m->nout && st == MOSS_OK; i++) { /* each graph output's shape */
      memcpy(dims[i], m->out[i].dims, sizeof dims[i]);
      if (m->batched) dims[i][0] = nbatch;
      if (m->out[i].bounded && !opts->stream) { /* the shape this run gave (docs/dynamic-shapes.md) */
        int64_t len;
        int a = m->out[i].bounded - 1;
        if (session) {
          if (mossrt_output_dims(session, (uint32_t)i, dims[i], &rerr) != MOSSRT_OK) st = runtime_fail(ctx, &rerr);
        } else {
          memcpy(&len, (const char *)arena + m->out[i].len_offset, sizeof len);
          if (len < 0 || len > dims[i][a])
            st = moss_fail(ctx, MOSS_E_INTERNAL, NULL, "output '%s': the code gave length %lld for "
                           "an axis of at most %lld", m->out[i].name, (long long)len, (long long)dims[i][a]);
          dims[i][a] = len;
        }
      }
    }
    for (g = 0; g < m->ngroups; g++) models -= (int)m->groups[g].count - 1;
    /* the model's outputs: a tensor as output_<p>.npy, a sequence or an
     * optional as output_<p>.pb (docs/sequences.md) */
    for (p = 0, g = 0; p < models && st == MOSS_OK; p++) {
      char path[4096];
      if (g < m->ngroups && (int)m->groups[g].position == p) {
        const mossrt_group_info *r = &m->groups[g++];
        moss_list_item items[64];
        uint32_t k;
        for (k = 0; k < r->count; k++) {
          const io_desc *o = &m->out[r->first + k];
          items[k].dtype = o->dtype;
          items[k].rank = o->rank;
          items[k].dims = dims[r->first + k];
          items[k].data = outs[r->first + k];
        }
        snprintf(path, sizeof path, "%s/output_%d.pb", opts->outdir, p);
        st = moss_list_file_write(ctx, path, r->kind == 2, r->optional_of_sequence, r->absent, items, (int)r->count);
        continue;
      }
      for (; next < m->nout; next++) { /* the next graph output that no group holds */
        int in_group = 0, q;
        for (q = 0; q < m->ngroups; q++)
          if ((uint32_t)next >= m->groups[q].first && (uint32_t)next < m->groups[q].first + m->groups[q].count) in_group = 1;
        if (!in_group) break;
      }
      if (next >= m->nout) {
        st = moss_fail(ctx, MOSS_E_INTERNAL, NULL, "model output %d has no graph output", p);
        break;
      }
      i = next++;
      snprintf(path, sizeof path, "%s/output_%d.npy", opts->outdir, p);
      if (opts->stream) { /* the chunks' outputs along a new first axis */
        int64_t d[MOSS_MAX_RANK + 1];
        d[0] = chunks;
        memcpy(d + 1, m->out[i].dims, sizeof(int64_t) * (size_t)m->out[i].rank);
        st = moss_npy_write(ctx, path, m->out[i].dtype, m->out[i].rank + 1, d, outs[i]);
      } else {
        st = moss_npy_write(ctx, path, m->out[i].dtype, m->out[i].rank, dims[i], outs[i]);
      }
    }
    moss_free(ctx, dims, sizeof *dims * (size_t)(m->nout + 1));
  }
done:
  if (times) moss_free(ctx, times, sizeof(double) * (size_t)iters);
  if (lib) dlclose(lib);
  mossrt_elf_unload(image);
  if (session) mossrt_session_destroy(session);
  if (bundle) mossrt_close(bundle);
  if (scratch) moss_graph_destroy(ctx, scratch);
  moss_free(ctx, m, sizeof *m);
  return st;
}
