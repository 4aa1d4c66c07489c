/* prune.c - compile-time weight pruning (`--prune SPEC`), run by the
 * driver right after the standard passes, before placement and planning,
 * so the cost model and the emitters see the zeros. It finds the prunable
 * weights (float32 constants in the weight slot of Conv, Gemm and MatMul),
 * ranks elements by |w| or blocks (H x W, or H outputs x C channels at
 * one kernel position) by their mean square (columns-act: times the mean
 * square of the input they read), and zeroes
 * the lowest-ranked share, or keeps the N largest of every M consecutive
 * elements of a row (nm:N:M). Every tie is broken by position, so the result
 * depends only on the model and the spec. The rules are in prune.h and
 * docs/pruning.md; nothing here retrains, so accuracy drops. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prune.h"

#define SPEC_FORMS                                                                          \
  "expected magnitude:R, magnitude-layer:R, block:HxW:R, channels:HxC:R, columns:R or "     \
  "columns-act:R with 0 <= R < 1, or nm:N:M with 1 <= N < M <= 64"
#define MAX_NM 64
#define MAX_BLOCK 4096
#define MAX_DECIMALS 9

static moss_status bad_spec(moss_ctx *ctx, const char *spec, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static moss_status bad_spec(moss_ctx *ctx, const char *spec, const char *fmt, ...) {
  char reason[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "--prune '%s': %s; " SPEC_FORMS, spec, reason);
}

/* A plain decimal "D", "D.", "D.D" or ".D": 0 ok, 1 not a decimal, 2 too
 * many decimals, 3 outside [0, 1). */
static int parse_ratio(const char *s, size_t len, moss_prune_spec *o) {
  size_t i = 0, digits = 0, decimals = 0;
  int64_t num = 0, den = 1;
  int whole = 0;
  for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) whole |= s[i] != '0';
  if (i < len && s[i] == '.') {
    for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++, decimals++) {
      if (decimals >= MAX_DECIMALS) return 2;
      num = num * 10 + (s[i] - '0');
      den *= 10;
    }
  }
  if (i != len || digits == 0) return 1;
  if (decimals > MAX_DECIMALS) return 2;
  if (whole) return 3;
  o->ratio_num = num;
  o->ratio_den = den;
  o->ratio = (double)num / (double)den;
  return 0;
}

/* A block side: digits only, 1..MAX_BLOCK. */
static int parse_side(const char *s, size_t len, int *out) {
  size_t i;
  long v = 0;
  if (len == 0) return 0;
  for (i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (s[i] - '0');
    if (v > MAX_BLOCK) return 0;
  }
  if (v < 1) return 0;
  *out = (int)v;
  return 1;
}

static moss_status parse_one(moss_ctx *ctx, const char *spec, moss_prune_spec *out_spec);

/* One item of a per-layer spec, "layer=NODE:SPEC" at |p|, up to ',' or the
 * end: NODE is cut before the last ':' that a kind and ':' follow (so NODE
 * may hold ':'). Sets |*name|, |*name_len|, parses SPEC into |*s| and
 * returns the end of the item; NULL after a diagnostic. */
static const char *layer_item(moss_ctx *ctx, const char *whole, const char *p, const char **name,
                              size_t *name_len, moss_prune_spec *s) {
  static const char *const kinds[] = {"magnitude:", "magnitude-layer:", "block:", "channels:",
                                      "columns:", "columns-act:", "nm:"};
  size_t len = strcspn(p, ","), k, cut = 0;
  char one[128];
  if (strncmp(p, "layer=", 6) || len < 6) {
    moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
              "--prune '%s': item '%.*s' is not layer=NODE:SPEC (a per-layer spec lists only "
              "layer= items, separated by ',')", whole, (int)len, p);
    return NULL;
  }
  for (k = 6; k < len; k++) {
    size_t j;
    if (p[k] != ':') continue;
    for (j = 0; j < sizeof kinds / sizeof kinds[0]; j++)
      if (len - k - 1 >= strlen(kinds[j]) && !strncmp(p + k + 1, kinds[j], strlen(kinds[j])))
        cut = k;
  }
  if (cut <= 6 || len - cut - 1 >= sizeof one) {
    moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
              "--prune '%s': item '%.*s' is not layer=NODE:SPEC with a node name and SPEC one of "
              "magnitude:R, magnitude-layer:R, block:HxW:R, channels:HxC:R, columns:R, "
              "columns-act:R or nm:N:M", whole, (int)len, p);
    return NULL;
  }
  memcpy(one, p + cut + 1, len - cut - 1);
  one[len - cut - 1] = 0;
  if (parse_one(ctx, one, s) != MOSS_OK) return NULL;
  *name = p + 6;
  *name_len = cut - 6;
  return p + len;
}

moss_status moss_prune_parse(moss_ctx *ctx, const char *spec, moss_prune_spec *out_spec) {
  memset(out_spec, 0, sizeof *out_spec);
  if (spec && !strncmp(spec, "layer=", 6)) { /* per layer: every item checked */
    const char *p = spec, *name;
    size_t nlen;
    moss_prune_spec one;
    for (;;) {
      if (!(p = layer_item(ctx, spec, p, &name, &nlen, &one))) return MOSS_E_INVALID_MODEL;
      if (!*p) break;
      p++;
    }
    out_spec->kind = MOSS_PRUNE_PER_LAYER;
    return MOSS_OK;
  }
  return parse_one(ctx, spec, out_spec);
}

static moss_status parse_one(moss_ctx *ctx, const char *spec, moss_prune_spec *out_spec) {
  const char *kind, *colon, *rest, *end;
  size_t klen;
  int rc;
  memset(out_spec, 0, sizeof *out_spec);
  if (!spec || !*spec) return bad_spec(ctx, spec ? spec : "", "empty spec");
  kind = spec;
  colon = strchr(spec, ':');
  klen = colon ? (size_t)(colon - spec) : strlen(spec);
  if (klen == 9 && !strncmp(kind, "magnitude", 9)) {
    out_spec->kind = MOSS_PRUNE_MAGNITUDE;
  } else if (klen == 15 && !strncmp(kind, "magnitude-layer", 15)) {
    out_spec->kind = MOSS_PRUNE_MAGNITUDE_LAYER;
  } else if (klen == 5 && !strncmp(kind, "block", 5)) {
    out_spec->kind = MOSS_PRUNE_BLOCK;
  } else if (klen == 8 && !strncmp(kind, "channels", 8)) {
    out_spec->kind = MOSS_PRUNE_CHANNELS;
  } else if (klen == 7 && !strncmp(kind, "columns", 7)) {
    out_spec->kind = MOSS_PRUNE_COLUMNS;
  } else if (klen == 11 && !strncmp(kind, "columns-act", 11)) {
    out_spec->kind = MOSS_PRUNE_COLUMNS_ACT;
  } else if (klen == 2 && !strncmp(kind, "nm", 2)) {
    out_spec->kind = MOSS_PRUNE_NM;
  } else {
    return bad_spec(ctx, spec, "unknown kind '%.*s'", (int)klen, kind);
  }
  if (!colon) {
    return bad_spec(ctx, spec, "missing %s",
                    out_spec->kind == MOSS_PRUNE_BLOCK      ? ":HxW:R"
                    : out_spec->kind == MOSS_PRUNE_CHANNELS ? ":HxC:R"
                    : out_spec->kind == MOSS_PRUNE_NM  ? ":N:M"
                                                       : ":R");
  }
  rest = colon + 1;
  if (out_spec->kind == MOSS_PRUNE_NM) {
    const char *c2 = strchr(rest, ':');
    int nn = 0, mm = 0;
    if (!c2 || strchr(c2 + 1, ':') || !parse_side(rest, (size_t)(c2 - rest), &nn) ||
        !parse_side(c2 + 1, strlen(c2 + 1), &mm) || nn >= mm || mm > MAX_NM)
      return bad_spec(ctx, spec, "'%s' is not N:M with whole numbers 1 <= N < M <= %d", rest,
                      MAX_NM);
    out_spec->nm_n = nn;
    out_spec->nm_m = mm;
    out_spec->ratio_num = mm - nn;
    out_spec->ratio_den = mm;
    out_spec->ratio = (double)(mm - nn) / (double)mm;
    return MOSS_OK;
  }
  if (out_spec->kind == MOSS_PRUNE_BLOCK || out_spec->kind == MOSS_PRUNE_CHANNELS) {
    const char *x, *shape_end = strchr(rest, ':');
    size_t slen = shape_end ? (size_t)(shape_end - rest) : strlen(rest);
    x = memchr(rest, 'x', slen);
    if (!shape_end) return bad_spec(ctx, spec, "missing ':R' after the block shape");
    if (!x || !parse_side(rest, (size_t)(x - rest), &out_spec->block_h) ||
        !parse_side(x + 1, (size_t)(rest + slen - x - 1), &out_spec->block_w))
      return bad_spec(ctx, spec, "block shape '%.*s' is not %s with whole numbers 1 <= H, %s <= %d",
                      (int)slen, rest, out_spec->kind == MOSS_PRUNE_BLOCK ? "HxW" : "HxC",
                      out_spec->kind == MOSS_PRUNE_BLOCK ? "W" : "C", MAX_BLOCK);
    rest = shape_end + 1;
  }
  end = strchr(rest, ':');
  if (end) return bad_spec(ctx, spec, "trailing '%s' after the ratio", end);
  rc = parse_ratio(rest, strlen(rest), out_spec);
  if (rc == 1) return bad_spec(ctx, spec, "ratio '%s' is not a plain decimal number", rest);
  if (rc == 2)
    return bad_spec(ctx, spec, "ratio '%s' has more than %d decimals", rest, MAX_DECIMALS);
  if (rc == 3) return bad_spec(ctx, spec, "ratio '%s' is outside [0, 1)", rest);
  return MOSS_OK;
}

/* ---- which weights ---- */

/* A weight as a matrix [out, in]: element (o, i) is data[o * in + i], or
 * data[i * out + o] when |out_last| (Gemm with transB=0, MatMul: the
 * output features are B's last axis). */
typedef struct layer {
  moss_value *v;
  moss_node *n;
  int64_t out, in, numel;
  int out_last;
  int64_t taps; /* Conv: the kernel positions (in = channels x taps); else 1 */
  const double *act; /* columns-act: the input's mean square per column (Conv: per channel,
                      * in / taps of them); NULL: not known */
} layer;

/* Is input |j| of |n| a prunable weight? Fills the matrix view. */
static int weight_slot(const moss_node *n, int j, layer *view) {
  const moss_value *v = j < n->ninputs ? n->inputs[j] : NULL;
  int64_t numel;
  if (n->dead || j != 1 || !v || !v->data || v->dtype != MOSS_DT_F32) return 0;
  if (n->op != MOSS_OP_Conv && n->op != MOSS_OP_Gemm && n->op != MOSS_OP_MatMul) return 0;
  numel = moss_value_numel(v);
  if (numel <= 0) return 0;
  view->numel = numel;
  view->taps = 1;
  if (n->op == MOSS_OP_Conv) {
    int k;
    if (v->rank < 3) return 0;
    view->out = v->dims[0];
    view->out_last = 0;
    for (k = 2; k < v->rank; k++) view->taps *= v->dims[k];
  } else if (n->op == MOSS_OP_Gemm) {
    if (v->rank != 2) return 0;
    view->out_last = moss_attr_int(n, "transB", 0) == 0;
    view->out = v->dims[view->out_last ? 1 : 0];
  } else {
    if (v->rank < 2) return 0;
    view->out = v->dims[v->rank - 1];
    view->out_last = 1;
  }
  view->in = numel / view->out;
  return 1;
}

/* Lists the distinct prunable weights in node order into |*out_layers|
 * (ctx memory, |*out_n| entries); a weight also read as something else, or
 * that is a graph output, is replaced in its weight slots by a copy. */
static moss_status collect(moss_ctx *ctx, moss_graph *g, layer **out_layers, int *out_n,
                           size_t *out_bytes) {
  int nv = g->nvalues, i, j, nl = 0, copied = 0;
  unsigned char *other = NULL, *seen = NULL;
  layer *ls = NULL;
  moss_status st = MOSS_OK;
  size_t count = 0, cap = 0;
  *out_layers = NULL;
  *out_n = 0;
  *out_bytes = 0;
  other = moss_alloc(ctx, (size_t)nv + 1);
  seen = moss_alloc(ctx, (size_t)nv + 1);
  for (i = 0; i < g->nnodes; i++) count += (size_t)(g->nodes[i]->op == MOSS_OP_Conv ||
                                                    g->nodes[i]->op == MOSS_OP_Gemm ||
                                                    g->nodes[i]->op == MOSS_OP_MatMul);
  /* one slot per candidate node; at least one so the list is never NULL */
  if (moss_size_mul(count + 1, sizeof *ls, &cap)) ls = moss_alloc(ctx, cap);
  if (!other || !seen || !ls) {
    st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "pruning: weight list");
    goto done;
  }
  for (i = 0; i < g->nnodes; i++) {
    const moss_node *n = g->nodes[i];
    layer view;
    if (n->dead) continue;
    for (j = 0; j < n->ninputs; j++) {
      const moss_value *v = n->inputs[j];
      if (v && v->id >= 0 && v->id < nv && !weight_slot(n, j, &view)) other[v->id] = 1;
    }
  }
  for (i = 0; i < g->noutputs; i++)
    if (g->outputs[i] && g->outputs[i]->id >= 0 && g->outputs[i]->id < nv)
      other[g->outputs[i]->id] = 1;
  for (i = 0; i < g->nnodes; i++) {
    moss_node *n = g->nodes[i];
    layer view;
    if (!weight_slot(n, 1, &view) || n->inputs[1]->id < 0 || n->inputs[1]->id >= nv ||
        seen[n->inputs[1]->id])
      continue;
    seen[n->inputs[1]->id] = 1;
    view.v = n->inputs[1];
    view.n = n;
    ls[nl++] = view;
  }
  for (i = 0; i < nl; i++) {
    moss_value *v = ls[i].v, *copy;
    size_t len = strlen(v->name);
    char *name;
    int k;
    if (!other[v->id]) continue;
    name = moss_graph_alloc(g, len + sizeof ".pruned");
    if (!name) {
      st = moss_fail(ctx, MOSS_E_NOMEM, ls[i].n, "pruning: copy of '%s'", v->name);
      goto done;
    }
    memcpy(name, v->name, len);
    memcpy(name + len, ".pruned", sizeof ".pruned");
    copy = moss_graph_add_constant(ctx, g, name, v->dtype, v->rank, v->dims, v->data);
    if (!copy) {
      st = moss_fail(ctx, MOSS_E_NOMEM, ls[i].n, "pruning: copy of '%s'", v->name);
      goto done;
    }
    for (k = 0; k < g->nnodes; k++) {
      layer view;
      if (weight_slot(g->nodes[k], 1, &view) && g->nodes[k]->inputs[1] == v)
        g->nodes[k]->inputs[1] = copy;
    }
    ls[i].v = copy;
    copied = 1;
  }
  if (copied) moss_graph_compute_uses(g);
done:
  moss_free(ctx, other, (size_t)nv + 1);
  moss_free(ctx, seen, (size_t)nv + 1);
  if (st != MOSS_OK) {
    moss_free(ctx, ls, cap);
    return st;
  }
  *out_layers = ls;
  *out_n = nl;
  *out_bytes = cap;
  return MOSS_OK;
}

/* ---- ranking ---- */

/* One element (magnitude) or block (mean square) to rank; ties go to the
 * lower (layer, index), so the earlier one is pruned first. */
typedef struct item {
  double key;
  int32_t layer;
  int64_t idx;
} item;

static int item_cmp(const void *pa, const void *pb) {
  const item *a = pa, *b = pb;
  if (a->key != b->key) return a->key < b->key ? -1 : 1;
  if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
  if (a->idx != b->idx) return a->idx < b->idx ? -1 : 1;
  return 0;
}

/* |w| with NaN ranked as +infinity (never before a number). */
static double mag(float w) { return isnan(w) ? INFINITY : fabs((double)w); }

/* floor(R * n), exactly: n = q * den + r. */
static int64_t share(const moss_prune_spec *s, int64_t n) {
  int64_t q = n / s->ratio_den, r = n % s->ratio_den;
  return q * s->ratio_num + r * s->ratio_num / s->ratio_den;
}

static int64_t count_zeros(const moss_value *v, int64_t numel) {
  const float *w = v->data;
  int64_t i, z = 0;
  for (i = 0; i < numel; i++) z += w[i] == 0.0f;
  return z;
}

/* The blocks of a layer: block:HxW cuts [out, in] into h x w blocks;
 * channels:HxC cuts it into h outputs x w input channels at one kernel
 * position (for a Conv, in = channels x taps, channel-major; elsewhere the
 * same as block:HxC). |cols| blocks per row of blocks, |step| the distance
 * in |in| of consecutive elements of a block, |cw| the extent they step
 * over (in, or the channels). */
typedef struct blocks {
  int h, w;
  int64_t cols, step, cw;
} blocks;

static blocks block_shape(const layer *l, const moss_prune_spec *s) {
  blocks b;
  int chan = s->kind == MOSS_PRUNE_CHANNELS && l->taps > 1;
  b.h = s->block_h, b.w = s->block_w;
  if (s->kind == MOSS_PRUNE_COLUMNS || s->kind == MOSS_PRUNE_COLUMNS_ACT)
    b.h = (int)l->out, b.w = 1; /* every output, one column */
  b.step = chan ? l->taps : 1;
  b.cw = chan ? l->in / l->taps : l->in;
  b.cols = (b.cw + b.w - 1) / b.w * (chan ? l->taps : 1);
  return b;
}

/* The element (o, q-th of block column |bc|) of |l| as an index of its
 * data, or -1 past the edge. */
static int64_t block_elem(const layer *l, const blocks *b, int64_t o, int64_t bc, int64_t q) {
  int64_t c = (bc / b->step) * b->w + q, i = c * b->step + bc % b->step;
  if (o >= l->out || c >= b->cw) return -1;
  return l->out_last ? i * l->out + o : o * l->in + i;
}

static void zero_block(const layer *l, const blocks *b, int64_t br, int64_t bc) {
  float *d = l->v->data;
  int64_t o, q, e;
  for (o = br * b->h; o < br * b->h + b->h; o++)
    for (q = 0; q < b->w; q++)
      if ((e = block_elem(l, b, o, bc, q)) >= 0) d[e] = 0.0f;
}

static double block_score(const layer *l, const blocks *b, int64_t br, int64_t bc) {
  const float *d = l->v->data;
  int64_t o, q, e, cnt = 0;
  double sum = 0.0;
  for (o = br * b->h; o < br * b->h + b->h; o++)
    for (q = 0; q < b->w; q++) {
      double x;
      if ((e = block_elem(l, b, o, bc, q)) < 0) continue;
      x = d[e];
      sum += isnan(x) ? INFINITY : x * x;
      cnt++;
    }
  return sum / (double)cnt;
}

/* N:M: in each group of M consecutive |in| elements of each |out| row
 * (the last group of a row may be shorter), zeroes all but the N largest
 * |w|; of equal |w| the earlier element goes first. */
static void prune_nm(const layer *l, int keep, int m) {
  float *d = l->v->data;
  int64_t o, g, a, b;
  for (o = 0; o < l->out; o++)
    for (g = 0; g < l->in; g += m) {
      int64_t w = l->in - g < m ? l->in - g : m;
      float *p[MAX_NM];
      int drop[MAX_NM];
      if (w <= keep) continue;
      for (a = 0; a < w; a++)
        p[a] = &d[l->out_last ? (g + a) * l->out + o : o * l->in + g + a];
      for (a = 0; a < w; a++) {
        int64_t below = 0; /* elements ranked before element a */
        for (b = 0; b < w; b++)
          if (mag(*p[b]) < mag(*p[a]) || (mag(*p[b]) == mag(*p[a]) && b < a)) below++;
        drop[a] = below < w - keep;
      }
      for (a = 0; a < w; a++)
        if (drop[a]) *p[a] = 0.0f;
    }
}

static moss_status prune_layers(moss_ctx *ctx, const moss_prune_spec *s, const layer *ls, int nl) {
  size_t nitems = 0, bytes;
  item *it;
  int i;
  int64_t k, j;
  if (s->kind == MOSS_PRUNE_NM) {
    for (i = 0; i < nl; i++) prune_nm(&ls[i], s->nm_n, s->nm_m);
    return MOSS_OK;
  }
  if (s->kind == MOSS_PRUNE_MAGNITUDE) {
    for (i = 0; i < nl; i++) nitems += (size_t)ls[i].numel;
  } else {
    for (i = 0; i < nl; i++) {
      size_t n = (size_t)ls[i].numel;
      if (s->kind == MOSS_PRUNE_BLOCK || s->kind == MOSS_PRUNE_CHANNELS ||
          s->kind == MOSS_PRUNE_COLUMNS || s->kind == MOSS_PRUNE_COLUMNS_ACT) {
        blocks bs = block_shape(&ls[i], s);
        n = (size_t)((ls[i].out + bs.h - 1) / bs.h) * (size_t)bs.cols;
      }
      if (n > nitems) nitems = n;
    }
  }
  if (nitems == 0) return MOSS_OK;
  if (!moss_size_mul(nitems, sizeof *it, &bytes) || !(it = moss_alloc(ctx, bytes)))
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "pruning: ranking %zu weights", nitems);
  if (s->kind == MOSS_PRUNE_MAGNITUDE) {
    size_t m = 0;
    for (i = 0; i < nl; i++) {
      const float *w = ls[i].v->data;
      for (j = 0; j < ls[i].numel; j++, m++) {
        it[m].key = mag(w[j]);
        it[m].layer = i;
        it[m].idx = j;
      }
    }
    qsort(it, nitems, sizeof *it, item_cmp);
    k = share(s, (int64_t)nitems);
    for (j = 0; j < k; j++) ((float *)ls[it[j].layer].v->data)[it[j].idx] = 0.0f;
  } else if (s->kind == MOSS_PRUNE_MAGNITUDE_LAYER) {
    for (i = 0; i < nl; i++) {
      const float *w = ls[i].v->data;
      for (j = 0; j < ls[i].numel; j++) {
        it[j].key = mag(w[j]);
        it[j].layer = i;
        it[j].idx = j;
      }
      qsort(it, (size_t)ls[i].numel, sizeof *it, item_cmp);
      k = share(s, ls[i].numel);
      for (j = 0; j < k; j++) ((float *)ls[i].v->data)[it[j].idx] = 0.0f;
    }
  } else {
    for (i = 0; i < nl; i++) {
      blocks bs = block_shape(&ls[i], s);
      int64_t bcols = bs.cols, nb = (ls[i].out + bs.h - 1) / bs.h * bcols;
      if (s->kind == MOSS_PRUNE_COLUMNS_ACT && !ls[i].act) {
        moss_free(ctx, it, bytes);
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, ls[i].n,
                         "--prune columns-act: no mean square of the input '%s' over "
                         "calibration data (columns-act needs --calibration DATA, and a "
                         "Gemm without transA, a MatMul or a Conv)",
                         ls[i].n->inputs[0] ? ls[i].n->inputs[0]->name : "?");
      }
      for (j = 0; j < nb; j++) {
        it[j].key = block_score(&ls[i], &bs, j / bcols, j % bcols);
        /* one column: times the mean square of the input it reads */
        if (s->kind == MOSS_PRUNE_COLUMNS_ACT && !isinf(it[j].key)) { /* a NaN stays last */
          double a = ls[i].act[(j % bcols) / ls[i].taps];
          it[j].key = isnan(a) ? INFINITY : it[j].key * a;
        }
        it[j].layer = i;
        it[j].idx = j;
      }
      qsort(it, (size_t)nb, sizeof *it, item_cmp);
      k = share(s, nb);
      for (j = 0; j < k; j++)
        zero_block(&ls[i], &bs, it[j].idx / bcols, it[j].idx % bcols);
    }
  }
  moss_free(ctx, it, bytes);
  return MOSS_OK;
}

/* layer=NODE:SPEC,...: each named layer alone by its SPEC (the spec was
 * checked by moss_prune_parse); a name that is no prunable layer, or one
 * named twice, is an error. */
static moss_status prune_per_layer(moss_ctx *ctx, const char *spec, const layer *ls, int nl) {
  const char *p = spec, *name;
  size_t nlen;
  moss_prune_spec one;
  unsigned char *done = moss_alloc(ctx, (size_t)nl + 1);
  moss_status st = MOSS_OK;
  if (!done) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "pruning: layer list");
  memset(done, 0, (size_t)nl + 1);
  while (st == MOSS_OK) {
    int i, found = -1;
    if (!(p = layer_item(ctx, spec, p, &name, &nlen, &one))) {
      st = MOSS_E_INVALID_MODEL;
      break;
    }
    for (i = 0; i < nl && found < 0; i++)
      if (strlen(ls[i].n->name) == nlen && !strncmp(ls[i].n->name, name, nlen)) found = i;
    if (found < 0 || done[found]) {
      st = moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                     found < 0 ? "--prune: layer=%.*s: the model has no Conv, Gemm or MatMul node "
                                 "of that name with a float32 constant weight (names after "
                                 "fusion; see --dump-after=fuse)"
                               : "--prune: layer=%.*s is named twice", (int)nlen, name);
      break;
    }
    done[found] = 1;
    if (one.kind == MOSS_PRUNE_MAGNITUDE) one.kind = MOSS_PRUNE_MAGNITUDE_LAYER; /* one layer */
    st = prune_layers(ctx, &one, &ls[found], 1);
    if (!*p) break;
    p++;
  }
  moss_free(ctx, done, (size_t)nl + 1);
  return st;
}

int moss_prune_needs_power(const char *spec) {
  return spec && (!strncmp(spec, "columns-act:", 12) || strstr(spec, ":columns-act:"));
}

/* The input mean squares a columns-act ranking weighs |l|'s columns by:
 * per column of a Gemm (no transA) or MatMul (the input's last axis), per
 * input channel of a Conv (axis 1); NULL where |power| has none of the
 * length the weight reads. */
static const double *layer_power(const layer *l, const moss_act_power *power, int npower) {
  const moss_value *x = l->n->ninputs > 0 ? l->n->inputs[0] : NULL;
  const moss_act_power *p;
  if (!power || !x || x->id < 0 || x->id >= npower) return NULL;
  p = &power[x->id];
  if (p->name && (!x->name || strcmp(p->name, x->name))) return NULL;
  if (l->n->op == MOSS_OP_Conv) return p->chan && p->nchan * l->taps == l->in ? p->chan : NULL;
  if (l->n->op == MOSS_OP_Gemm && moss_attr_int(l->n, "transA", 0)) return NULL;
  return p->last && p->nlast == l->in ? p->last : NULL;
}

moss_status moss_prune(moss_ctx *ctx, moss_graph *g, const char *spec, moss_prune_result *out) {
  return moss_prune_act(ctx, g, spec, NULL, 0, out);
}

moss_status moss_prune_act(moss_ctx *ctx, moss_graph *g, const char *spec,
                           const moss_act_power *power, int npower, moss_prune_result *out) {
  layer *ls = NULL;
  int nl = 0, i;
  moss_status st;
  size_t bytes, lbytes = 0;
  memset(out, 0, sizeof *out);
  MOSS_TRY(moss_prune_parse(ctx, spec, &out->spec));
  MOSS_TRY(collect(ctx, g, &ls, &nl, &lbytes));
  for (i = 0; i < nl; i++) ls[i].act = layer_power(&ls[i], power, npower);
  if (nl == 0) { /* a per-layer spec names layers that are not there */
    st = out->spec.kind == MOSS_PRUNE_PER_LAYER ? prune_per_layer(ctx, spec, ls, 0) : MOSS_OK;
    moss_free(ctx, ls, lbytes);
    return st;
  }
  if (!moss_size_mul((size_t)nl, sizeof *out->layers, &bytes) ||
      !(out->layers = moss_graph_alloc(g, bytes))) {
    moss_free(ctx, ls, lbytes);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "pruning: result");
  }
  for (i = 0; i < nl; i++) {
    moss_prune_layer *r = &out->layers[i];
    r->node = ls[i].n->name;
    r->op_type = ls[i].n->op_type;
    r->weight = ls[i].v->name;
    r->elements = ls[i].numel;
    r->zeros_before = count_zeros(ls[i].v, ls[i].numel);
  }
  out->nlayers = nl;
  if (out->spec.kind == MOSS_PRUNE_PER_LAYER) st = prune_per_layer(ctx, spec, ls, nl);
  else st = prune_layers(ctx, &out->spec, ls, nl);
  for (i = 0; i < nl; i++) {
    moss_prune_layer *r = &out->layers[i];
    r->zeros_after = count_zeros(ls[i].v, ls[i].numel);
    out->elements += r->elements;
    out->zeros_before += r->zeros_before;
    out->zeros_after += r->zeros_after;
  }
  moss_free(ctx, ls, lbytes);
  return st;
}

void moss_prune_emit_text(const moss_prune_result *r, moss_buf *b) {
  int i;
  for (i = 0; i < r->nlayers; i++) {
    const moss_prune_layer *l = &r->layers[i];
    moss_buf_printf(b,
                    "prune %s (%s) %s: %lld weights, %lld zero before, %lld after "
                    "(%.1f%% sparse)\n", l->node, l->op_type, l->weight, (long long)l->elements,
                    (long long)l->zeros_before, (long long)l->zeros_after,
                    100.0 * (double)l->zeros_after / (double)l->elements);
  }
  moss_buf_printf(b, "prune total: %lld weights in %d layer%s, %lld zero before, %lld after "
                  "(%.1f%% sparse)\n", (long long)r->elements, r->nlayers,
                  r->nlayers == 1 ? "" : "s",
                  (long long)r->zeros_before, (long long)r->zeros_after,
                  r->elements ? 100.0 * (double)r->zeros_after / (double)r->elements : 0.0);
}
