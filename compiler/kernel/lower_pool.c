/* lower_pool.c - pooling, specialized to the node's shapes: one parallel
 * loop over the N*C planes, a loop nest over output positions, and for
 * each position the kernel taps inside the input (their range is computed
 * once per output position and dimension, or is a constant where no window
 * crosses the border), so no tap is bounds-checked. Global pools reduce
 * each contiguous plane; MaxUnpool zeroes the output and scatters.
 * (MossQAvgPool, the integer average pool, is the qfold family's:
 * lower_qfold.c.) */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lower.h"

typedef moss_pool_geom geom;

static void ints(const moss_node *n, const char *name, int cnt, int64_t def, int64_t *out) {
  const int64_t *a;
  int c = moss_attr_ints(n, name, &a), k;
  for (k = 0; k < cnt; k++) out[k] = a && c == cnt ? a[k] : def;
}

void moss_lower_pool_geom(const moss_node *n, moss_pool_geom *g) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  const char *ap = moss_attr_string(n, "auto_pad", "NOTSET");
  int64_t pads[2 * MOSS_MAX_RANK];
  int k;
  g->nsp = x->rank - 2;
  ints(n, "kernel_shape", g->nsp, 1, g->k);
  ints(n, "strides", g->nsp, 1, g->s);
  ints(n, "dilations", g->nsp, 1, g->d);
  ints(n, "pads", 2 * g->nsp, 0, pads);
  for (k = 0; k < g->nsp; k++) {
    int64_t ek = (g->k[k] - 1) * g->d[k] + 1, total;
    g->in[k] = x->dims[k + 2];
    g->out[k] = y->dims[k + 2];
    if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
      total = (g->out[k] - 1) * g->s[k] + ek - g->in[k];
      if (total < 0) total = 0;
      g->p[k] = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
      g->pe[k] = total - g->p[k];
    } else if (!strcmp(ap, "VALID")) {
      g->p[k] = g->pe[k] = 0;
    } else {
      g->p[k] = pads[k];
      g->pe[k] = pads[k + g->nsp];
    }
  }
}

static int64_t prod(const int64_t *d, int from, int to) {
  int64_t p = 1;
  int k;
  for (k = from; k < to; k++) p *= d[k];
  return p;
}

static moss_kx *bin(moss_kb *b, moss_kx_op op, moss_kx *x, moss_kx *y) {
  return moss_k_bin(b, op, x, y);
}

/* The lowest value of |dt|, the start of a max. */
static moss_kx *lowest(moss_kb *b, moss_dtype dt) {
  switch (dt) {
  case MOSS_DT_F32: case MOSS_DT_F64: return moss_k_flt(b, dt, -HUGE_VAL);
  case MOSS_DT_I8: return moss_k_int(b, dt, INT8_MIN);
  case MOSS_DT_I16: return moss_k_int(b, dt, INT16_MIN);
  case MOSS_DT_I32: return moss_k_int(b, dt, INT32_MIN);
  case MOSS_DT_I64: return moss_k_int(b, dt, INT64_MIN);
  default: return moss_k_int(b, dt, 0);
  }
}

/* The flat index of positions |v|[0..nsp) in |d|, row-major or (for
 * MaxPool's storage_order 1) column-major. */
static moss_kx *flat(moss_kb *b, moss_kx *const *v, const int64_t *d, int nsp, int colmajor) {
  moss_kx *e = moss_k_idx(b, 0);
  int k;
  for (k = 0; k < nsp; k++)
    e = moss_k_add(b, e, moss_k_mulc(b, v[k], colmajor ? prod(d, 0, k) : prod(d, k + 1, nsp)));
  return e;
}

static moss_status lower_window(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0];
  moss_dtype dt = x->dtype, ydt = n->outputs[0]->dtype;
  moss_dtype A = dt == MOSS_DT_F64 ? MOSS_DT_F64 : MOSS_DT_F32; /* accumulator of Average/Lp */
  int isinc = (int)moss_attr_int(n, "count_include_pad", 0);
  int withidx = n->op == MOSS_OP_MaxPool && n->noutputs > 1 && n->outputs[1];
  int colmajor = (int)moss_attr_int(n, "storage_order", 0) == 1;
  int64_t NC = x->dims[0] * x->dims[1], XS, YS, p = moss_attr_int(n, "p", 2);
  int xb = moss_k_input(b, 0), yb = moss_k_output(b, 0), k, nsp;
  moss_kx *bc, *xp, *yp, *s[MOSS_MAX_RANK], *a[MOSS_MAX_RANK], *e[MOSS_MAX_RANK];
  moss_kx *o[MOSS_MAX_RANK], *i[MOSS_MAX_RANK], *acc, *mi = NULL, *v, *at;
  char name[16];
  geom g;
  moss_lower_pool_geom(n, &g);
  nsp = g.nsp;
  XS = prod(g.in, 0, nsp);
  YS = prod(g.out, 0, nsp);
  if (n->op == MOSS_OP_LpPool && p < 1)
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "p must be at least 1");
  bc = moss_k_range(b, "bc", NC, MOSS_KL_PARALLEL);
  xp = moss_k_let(b, "xp", moss_k_mulc(b, bc, XS));
  yp = moss_k_let(b, "yp", moss_k_mulc(b, bc, YS));
  for (k = 0; k < nsp; k++) {
    int64_t ek = (g.k[k] - 1) * g.d[k] + 1, D = g.d[k];
    snprintf(name, sizeof name, "o%d", k);
    o[k] = moss_k_range(b, name, g.out[k], MOSS_KL_PARALLEL);
    snprintf(name, sizeof name, "s%d", k);
    s[k] = moss_k_mulc(b, o[k], g.s[k]);
    if (g.p[k]) s[k] = bin(b, MOSS_KX_SUB, s[k], moss_k_idx(b, g.p[k]));
    if (s[k] != o[k]) s[k] = moss_k_let(b, name, s[k]);
    if (g.p[k] == 0 && (g.out[k] - 1) * g.s[k] + ek <= g.in[k]) {
      a[k] = moss_k_idx(b, 0);
      e[k] = moss_k_idx(b, g.k[k]);
    } else {
      /* The first tap at or after position 0 and the end of the taps
       * before the input's end (an empty range may come out reversed). */
      moss_kx *first, *last = bin(b, MOSS_KX_SUB, moss_k_idx(b, g.in[k] + D - 1), s[k]);
      if (D == 1) first = moss_k_un(b, MOSS_KX_NEG, s[k]);
      else first = bin(b, MOSS_KX_SUB, moss_k_idx(b, D - 1), s[k]);
      if (D != 1) {
        first = bin(b, MOSS_KX_DIV, first, moss_k_idx(b, D));
        last = bin(b, MOSS_KX_DIV, last, moss_k_idx(b, D));
      }
      snprintf(name, sizeof name, "a%d", k);
      a[k] = moss_k_let(b, name, first);
      moss_k_set(b, a[k], bin(b, MOSS_KX_MAX, a[k], moss_k_idx(b, 0)));
      snprintf(name, sizeof name, "e%d", k);
      e[k] = moss_k_let(b, name, last);
      moss_k_set(b, e[k], bin(b, MOSS_KX_MIN, e[k], moss_k_idx(b, g.k[k])));
    }
  }
  if (n->op == MOSS_OP_MaxPool) acc = moss_k_let(b, "m", lowest(b, dt));
  else acc = moss_k_let(b, "acc", moss_k_flt(b, A, 0));
  if (withidx) mi = moss_k_let(b, "mi", moss_k_idx(b, 0));
  for (k = 0; k < nsp; k++) {
    moss_kx *kk;
    snprintf(name, sizeof name, "k%d", k);
    kk = moss_k_for(b, name, a[k], e[k], 1, MOSS_KL_REDUCE, 0);
    snprintf(name, sizeof name, "i%d", k);
    i[k] = moss_k_let(b, name, moss_k_add(b, s[k], moss_k_mulc(b, kk, g.d[k])));
  }
  v = moss_k_let(b, "v", moss_k_load(b, xb, moss_k_add(b, xp, flat(b, i, g.in, nsp, 0))));
  switch (n->op) {
  case MOSS_OP_MaxPool:
    if (withidx) {
      moss_k_if(b, bin(b, MOSS_KX_GT, v, acc));
      moss_k_set(b, acc, v);
      moss_k_set(b, mi, flat(b, i, g.in, nsp, colmajor));
      moss_k_end(b);
    } else {
      moss_k_set(b, acc, bin(b, MOSS_KX_MAX, v, acc));
    }
    break;
  case MOSS_OP_AveragePool:
    moss_k_set(b, acc, bin(b, MOSS_KX_ADD, acc, moss_k_cast(b, A, v)));
    break;
  default: {
    moss_kx *t;
    if (p == 2) t = bin(b, MOSS_KX_MUL, v, v);
    else t = moss_k_call(b, MOSS_KFN_FABS, v, NULL, NULL);
    if (p != 1 && p != 2) t = moss_k_call(b, MOSS_KFN_POW, t, moss_k_flt(b, dt, (double)p), NULL);
    moss_k_set(b, acc, bin(b, MOSS_KX_ADD, acc, moss_k_cast(b, A, t)));
    break;
  }
  }
  for (k = 0; k < nsp; k++) moss_k_end(b);
  at = moss_k_add(b, yp, flat(b, o, g.out, nsp, 0));
  switch (n->op) {
  case MOSS_OP_MaxPool:
    moss_k_store(b, yb, at, acc);
    if (withidx) moss_k_store(b, moss_k_output(b, 1), at, moss_k_add(b, xp, mi));
    break;
  case MOSS_OP_AveragePool: {
    moss_kx *cnt = NULL, *den;
    for (k = 0; k < nsp; k++) {
      moss_kx *ck;
      if (isinc) {
        /* Taps inside the padded input (a ceil_mode window may pass it). */
        int64_t lim = g.in[k] + g.pe[k];
        ck = moss_k_bin(b, MOSS_KX_SUB, moss_k_idx(b, lim + g.d[k] - 1), s[k]);
        if (g.d[k] != 1) ck = bin(b, MOSS_KX_DIV, ck, moss_k_idx(b, g.d[k]));
        ck = bin(b, MOSS_KX_MIN, ck, moss_k_idx(b, g.k[k]));
      } else if (a[k]->op == MOSS_KX_CONST && e[k]->op == MOSS_KX_CONST) {
        ck = moss_k_idx(b, e[k]->i > a[k]->i ? e[k]->i - a[k]->i : 0);
      } else {
        ck = bin(b, MOSS_KX_MAX, bin(b, MOSS_KX_SUB, e[k], a[k]), moss_k_idx(b, 0));
      }
      cnt = cnt ? moss_k_mul(b, cnt, ck) : ck;
    }
    if (!cnt) cnt = moss_k_idx(b, 1);
    /* No tap at all leaves acc at 0: 0 / 1. */
    if (cnt->op == MOSS_KX_CONST) den = moss_k_flt(b, A, (double)(cnt->i > 1 ? cnt->i : 1));
    else den = moss_k_cast(b, A, bin(b, MOSS_KX_MAX, moss_k_let(b, "cnt", cnt), moss_k_idx(b, 1)));
    moss_k_store(b, yb, at, moss_k_cast(b, ydt, bin(b, MOSS_KX_DIV, acc, den)));
    break;
  }
  default:
    if (p == 1) v = acc;
    else if (p == 2) v = moss_k_call(b, MOSS_KFN_SQRT, acc, NULL, NULL);
    else
      v = moss_k_call(b, MOSS_KFN_POW, acc,
                      bin(b, MOSS_KX_DIV, moss_k_flt(b, A, 1), moss_k_flt(b, A, (double)p)), NULL);
    moss_k_store(b, yb, at, moss_k_cast(b, ydt, v));
    break;
  }
  for (k = 0; k < nsp; k++) moss_k_end(b);
  moss_k_end(b); /* bc */
  return b->st;
}

static moss_status lower_global(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0];
  moss_dtype dt = x->dtype, A = dt == MOSS_DT_F64 ? MOSS_DT_F64 : MOSS_DT_F32;
  int64_t NC = x->dims[0] * x->dims[1], XS = moss_value_numel(x) / (NC ? NC : 1);
  int64_t p = moss_attr_int(n, "p", 2);
  int xb = moss_k_input(b, 0), yb = moss_k_output(b, 0);
  moss_kx *bc, *xp, *acc, *i, *v, *t;
  if (n->op == MOSS_OP_GlobalLpPool && p < 1)
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "p must be at least 1");
  bc = moss_k_range(b, "bc", NC, MOSS_KL_PARALLEL);
  xp = moss_k_let(b, "xp", moss_k_mulc(b, bc, XS));
  acc = moss_k_let(b, n->op == MOSS_OP_GlobalMaxPool ? "m" : "acc",
                   n->op == MOSS_OP_GlobalMaxPool ? lowest(b, dt) : moss_k_flt(b, A, 0));
  i = moss_k_range(b, "i", XS, MOSS_KL_REDUCE);
  v = moss_k_load(b, xb, moss_k_add(b, xp, i));
  switch (n->op) {
  case MOSS_OP_GlobalMaxPool: t = bin(b, MOSS_KX_MAX, v, acc); break;
  case MOSS_OP_GlobalAveragePool: t = bin(b, MOSS_KX_ADD, acc, moss_k_cast(b, A, v)); break;
  default:
    if (p == 1) t = moss_k_call(b, MOSS_KFN_FABS, v, NULL, NULL);
    else if (p == 2) t = bin(b, MOSS_KX_MUL, v, v);
    else
      t = moss_k_call(b, MOSS_KFN_POW, moss_k_call(b, MOSS_KFN_FABS, v, NULL, NULL),
                      moss_k_flt(b, dt, (double)p), NULL);
    t = bin(b, MOSS_KX_ADD, acc, moss_k_cast(b, A, t));
    break;
  }
  moss_k_set(b, acc, t);
  moss_k_end(b);
  switch (n->op) {
  case MOSS_OP_GlobalMaxPool: v = acc; break;
  case MOSS_OP_GlobalAveragePool: v = bin(b, MOSS_KX_DIV, acc, moss_k_flt(b, A, (double)XS)); break;
  default:
    if (p == 1) v = acc;
    else if (p == 2) v = moss_k_call(b, MOSS_KFN_SQRT, acc, NULL, NULL);
    else
      v = moss_k_call(b, MOSS_KFN_POW, acc,
                      bin(b, MOSS_KX_DIV, moss_k_flt(b, A, 1), moss_k_flt(b, A, (double)p)), NULL);
    break;
  }
  moss_k_store(b, yb, bc, moss_k_cast(b, n->outputs[0]->dtype, v));
  moss_k_end(b);
  return b->st;
}

static moss_status lower_unpool(moss_kb *b, const moss_node *n) {
  int64_t nx = moss_value_numel(n->inputs[0]), ny = moss_value_numel(n->outputs[0]);
  int yb = moss_k_output(b, 0);
  moss_kx *i, *j;
  i = moss_k_range(b, "i", ny, MOSS_KL_PARALLEL);
  moss_k_store(b, yb, i, moss_k_cast(b, n->outputs[0]->dtype, moss_k_int(b, MOSS_DT_I64, 0)));
  moss_k_end(b);
  /* Serial: two equal indices mean the later element wins. Indices
   * outside the output are ignored rather than written. */
  i = moss_k_range(b, "i", nx, MOSS_KL_SERIAL);
  j = moss_k_let(b, "j", moss_k_load(b, moss_k_input(b, 1), i));
  moss_k_if(b, bin(b, MOSS_KX_LAND, bin(b, MOSS_KX_GE, j, moss_k_idx(b, 0)),
                   bin(b, MOSS_KX_LT, j, moss_k_idx(b, ny))));
  moss_k_store(b, yb, j, moss_k_load(b, moss_k_input(b, 0), i));
  moss_k_end(b);
  moss_k_end(b);
  return b->st;
}

moss_status moss_lower_pool(moss_kb *b, const moss_node *n) {
  switch (n->op) {
  case MOSS_OP_MaxPool: case MOSS_OP_AveragePool: case MOSS_OP_LpPool: return lower_window(b, n);
  case MOSS_OP_GlobalAveragePool: case MOSS_OP_GlobalMaxPool: case MOSS_OP_GlobalLpPool:
    return lower_global(b, n);
  case MOSS_OP_MaxUnpool: return lower_unpool(b, n);
  default: return moss_kb_fail(b, MOSS_E_INTERNAL, "not a pooling operator");
  }
}
