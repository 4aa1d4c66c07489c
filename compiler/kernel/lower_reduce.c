/* lower_reduce.c - the reductions (ReduceSum ... ReduceLogSumExp) and the
 * arg reductions (ArgMax, ArgMin). Adjacent dimensions that are both kept
 * or both reduced are merged (size-1 ones dropped); the kept groups are
 * parallel loops, and each output element gets a nest of reduction loops
 * over its reduced positions, so reducing trailing axes reads contiguous
 * memory. Float sums accumulate in double, integer sums in wrapping uint64
 * (the result converted back to the element type, as the ONNX reference
 * does). LogSumExp subtracts the maximum first. Max/Min let a NaN win. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lower.h"

/* The reduced axes of |n| (the same rules as ops/reduce.c, already
 * checked by shape inference); returns 1 for the identity. */
static int reduce_mask(const moss_node *n, int rank, int *mask) {
  const int64_t *ax = NULL;
  int64_t nax = 0, i;
  const moss_value *av = n->ninputs > 1 ? moss_node_input(n, 1) : NULL;
  memset(mask, 0, sizeof(int) * MOSS_MAX_RANK);
  if (moss_node_find_attr(n, "axes"))
    nax = moss_attr_ints(n, "axes", &ax);
  else if (av && av->data)
    nax = moss_value_numel(av);
  if (nax == 0) {
    if (moss_attr_int(n, "noop_with_empty_axes", 0)) return 1;
    for (i = 0; i < rank; i++) mask[i] = 1;
    return 0;
  }
  for (i = 0; i < nax; i++) {
    int64_t a = ax ? ax[i] : moss_value_get_i64(av, i);
    if (a < 0) a += rank;
    if (a >= 0 && a < rank) mask[a] = 1;
  }
  return 0;
}

typedef struct group {
  int64_t size, stride;
} group;

/* Opens the loops over the reduced groups from the input offset |base|
 * (role |role|) and returns the element they reach; moss_k_end closes
 * each of the |nr| loops. */
static moss_kx *reduced_nest(moss_kb *b, int xi, moss_kx *base, const group *rg, int nr,
                             moss_kloop_role role) {
  moss_kx *at = base;
  char name[16];
  int j;
  for (j = 0; j < nr; j++) {
    snprintf(name, sizeof name, "r%d", j);
    at = moss_k_add(b, at, moss_k_mulc(b, moss_k_range(b, name, rg[j].size, role), rg[j].stride));
  }
  return moss_k_let(b, "v", moss_k_load(b, xi, at));
}

static void close_nest(moss_kb *b, int nr) {
  while (nr--) moss_k_end(b);
}

/* The extreme value of |dt|: its maximum when |max|, else its minimum;
 * the infinities for floats. */
static moss_kx *extreme(moss_kb *b, moss_dtype dt, int max) {
  int64_t lo = 0, hi = 0;
  switch (dt) {
  case MOSS_DT_F32:
  case MOSS_DT_F64: return moss_k_flt(b, dt, max ? HUGE_VAL : -HUGE_VAL);
  case MOSS_DT_BOOL: hi = 1; break;
  case MOSS_DT_I8: lo = INT8_MIN, hi = INT8_MAX; break;
  case MOSS_DT_I16: lo = INT16_MIN, hi = INT16_MAX; break;
  case MOSS_DT_I32: lo = INT32_MIN, hi = INT32_MAX; break;
  case MOSS_DT_I64: lo = INT64_MIN, hi = INT64_MAX; break;
  case MOSS_DT_U8: hi = UINT8_MAX; break;
  case MOSS_DT_U16: hi = UINT16_MAX; break;
  case MOSS_DT_U32: hi = UINT32_MAX; break;
  case MOSS_DT_U64: hi = -1; break; /* all ones */
  default: break;
  }
  return moss_k_int(b, dt, max ? hi : lo);
}

/* Whether the float |v| is infinite or NaN. */
static moss_kx *nonfinite(moss_kb *b, moss_kx *v) {
  return moss_k_bin(b, MOSS_KX_LOR, moss_k_call(b, MOSS_KFN_ISINF, v, NULL, NULL),
                    moss_k_call(b, MOSS_KFN_ISNAN, v, NULL, NULL));
}

/* The double |v| converted to the integer type |dt| through int64 where it
 * is finite, else 0 (no undefined conversion). */
static moss_kx *int_of(moss_kb *b, moss_dtype dt, moss_kx *v) {
  return moss_k_cast(
      b, dt, moss_k_select(b, nonfinite(b, v), moss_k_idx(b, 0), moss_k_cast(b, MOSS_DT_I64, v)));
}

/* A parallel loop over [0, |extent|), or the index 0 when |extent| is 1 (no
 * loop to close); counts the loops opened in |*opened|. */
static moss_kx *loop(moss_kb *b, const char *name, int64_t extent, int *opened) {
  if (extent == 1) return moss_k_idx(b, 0);
  ++*opened;
  return moss_k_range(b, name, extent, MOSS_KL_PARALLEL);
}

static moss_status lower_arg(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  int axis = (int)moss_attr_int(n, "axis", 0), k, isf = moss_dtype_is_float(x->dtype);
  int last = moss_attr_int(n, "select_last_index", 0) != 0, mx = n->op == MOSS_OP_ArgMax;
  int xi, yi, opened = 0;
  int64_t outer = 1, inner = 1, len;
  moss_kx *o, *i, *base, *best, *bi, *j, *v, *cond;
  moss_kx_op better = mx ? (last ? MOSS_KX_GE : MOSS_KX_GT) : (last ? MOSS_KX_LE : MOSS_KX_LT);
  if (axis < 0) axis += x->rank;
  len = x->dims[axis];
  for (k = 0; k < axis; k++) outer *= x->dims[k];
  for (k = axis + 1; k < x->rank; k++) inner *= x->dims[k];
  if (outer * inner == 0) {
    moss_k_comment(b, "empty output");
    return b->st;
  }
  if (len == 0) return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "%s over an empty axis", n->op_type);
  xi = moss_k_input(b, 0);
  yi = moss_k_output(b, 0);
  o = loop(b, "o", outer, &opened);
  i = loop(b, "i", inner, &opened);
  base = moss_k_add(b, moss_k_mulc(b, o, len * inner), i);
  if (base->op != MOSS_KX_CONST && base->op != MOSS_KX_VAR) base = moss_k_let(b, "base", base);
  best = moss_k_let(b, "best", moss_k_load(b, xi, base));
  bi = moss_k_let(b, "bi", moss_k_idx(b, 0));
  j = moss_k_for(b, "j", moss_k_idx(b, 1), moss_k_idx(b, len), 1, MOSS_KL_REDUCE, 0);
  v = moss_k_let(b, "v", moss_k_load(b, xi, moss_k_add(b, base, moss_k_mulc(b, j, inner))));
  cond = moss_k_bin(b, better, v, best);
  if (isf) {
    /* The first NaN wins; with select_last_index the last one. */
    moss_kx *vnan = moss_k_call(b, MOSS_KFN_ISNAN, v, NULL, NULL);
    moss_kx *bnum = moss_k_un(b, MOSS_KX_NOT, moss_k_call(b, MOSS_KFN_ISNAN, best, NULL, NULL));
    if (last)
      cond = moss_k_bin(b, MOSS_KX_LOR, vnan, moss_k_bin(b, MOSS_KX_LAND, bnum, cond));
    else
      cond = moss_k_bin(b, MOSS_KX_LAND, bnum, moss_k_bin(b, MOSS_KX_LOR, cond, vnan));
  }
  moss_k_if(b, cond);
  moss_k_set(b, best, v);
  moss_k_set(b, bi, j);
  moss_k_end(b);
  moss_k_end(b);
  moss_k_store(b, yi, moss_k_add(b, moss_k_mulc(b, o, inner), i), moss_k_cast(b, y->dtype, bi));
  close_nest(b, opened);
  return b->st;
}

/* LogSumExp of the reduced positions from |base|, stored at |oat|: the
 * maximum m (a NaN wins), then log of the sum of exp(v - m), plus m. */
static void logsumexp(moss_kb *b, moss_dtype dt, int xi, int yi, moss_kx *base, moss_kx *oat,
                      const group *rg, int nr) {
  int isf = moss_dtype_is_float(dt), f32 = dt == MOSS_DT_F32;
  moss_dtype M = f32 ? MOSS_DT_F32 : MOSS_DT_F64, D = MOSS_DT_F64;
  moss_kx *m = moss_k_let(b, "m", moss_k_flt(b, M, -HUGE_VAL));
  moss_kx *acc = moss_k_let(b, "acc", moss_k_flt(b, D, 0.0)), *v, *t;
  v = reduced_nest(b, xi, base, rg, nr, MOSS_KL_REDUCE);
  if (isf)
    moss_k_set(b, m,
               moss_k_select(b,
                             moss_k_bin(b, MOSS_KX_LOR, moss_k_bin(b, MOSS_KX_GT, v, m),
                                        moss_k_call(b, MOSS_KFN_ISNAN, v, NULL, NULL)),
                             v, m));
  else
    moss_k_set(b, m, moss_k_bin(b, MOSS_KX_MAX, moss_k_cast(b, D, v), m));
  close_nest(b, nr);
  moss_k_if(b, nonfinite(b, m));
  moss_k_store(b, yi, oat, isf ? moss_k_cast(b, dt, m) : moss_k_int(b, dt, 0));
  moss_k_else(b);
  v = reduced_nest(b, xi, base, rg, nr, MOSS_KL_REDUCE);
  if (f32)
    t = moss_k_cast(b, D,
                    moss_k_call(b, MOSS_KFN_EXP, moss_k_bin(b, MOSS_KX_SUB, v, m), NULL, NULL));
  else
    t = moss_k_call(b, MOSS_KFN_EXP, moss_k_bin(b, MOSS_KX_SUB, moss_k_cast(b, D, v), m), NULL,
                    NULL);
  moss_k_set(b, acc, moss_k_bin(b, MOSS_KX_ADD, acc, t));
  close_nest(b, nr);
  t = moss_k_bin(b, MOSS_KX_ADD, moss_k_cast(b, D, m),
                 moss_k_call(b, MOSS_KFN_LOG, acc, NULL, NULL));
  if (isf) {
    moss_k_store(b, yi, oat, moss_k_cast(b, dt, t));
  } else {
    t = moss_k_let(b, "t", t);
    moss_k_store(b, yi, oat, int_of(b, dt, t));
  }
  moss_k_end(b);
}

/* What one float element |vu| (in the accumulator's type) adds to the sum
 * of ReduceSum/Mean/LogSum (itself), L1 (its magnitude) or L2/SumSquare
 * (its square). */
static moss_kx *sum_term(moss_kb *b, moss_op op, moss_kx *vu) {
  if (op == MOSS_OP_ReduceL1) return moss_k_call(b, MOSS_KFN_FABS, vu, NULL, NULL);
  if (op == MOSS_OP_ReduceL2 || op == MOSS_OP_ReduceSumSquare) return moss_k_bin(b, MOSS_KX_MUL, vu, vu);
  return vu;
}

moss_status moss_lower_reduce(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  moss_dtype dt = x->dtype, A;
  int mask[MOSS_MAX_RANK], k, nk = 0, nr = 0, isf = moss_dtype_is_float(dt), prev = -1;
  int sgn = moss_dtype_is_signed(dt), xi, yi;
  int64_t strides[MOSS_MAX_RANK], cnt = 1, s = 1;
  group kg[MOSS_MAX_RANK], rg[MOSS_MAX_RANK];
  moss_kx *kv[MOSS_MAX_RANK], *base, *oat, *acc, *v, *vu, *fin;
  if (!moss_kernel_dtype_ok(dt))
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "type %s", moss_dtype_name(dt));
  if (n->op == MOSS_OP_ArgMax || n->op == MOSS_OP_ArgMin) return lower_arg(b, n);
  xi = moss_k_input(b, 0);
  yi = moss_k_output(b, 0);
  if (reduce_mask(n, x->rank, mask)) { /* the identity */
    moss_kx *i = moss_k_range(b, "i", moss_value_numel(x), MOSS_KL_PARALLEL);
    moss_k_store(b, yi, i, moss_k_load(b, xi, i));
    moss_k_end(b);
    return b->st;
  }
  if (moss_value_numel(y) == 0) {
    moss_k_comment(b, "empty output");
    return b->st;
  }
  for (k = x->rank - 1; k >= 0; k--) {
    strides[k] = s;
    s *= x->dims[k];
  }
  for (k = 0; k < x->rank; k++) {
    group *gp;
    if (mask[k]) cnt *= x->dims[k];
    if (x->dims[k] == 1) continue;
    if (prev == mask[k]) {
      gp = mask[k] ? &rg[nr - 1] : &kg[nk - 1];
      gp->size *= x->dims[k];
    } else {
      gp = mask[k] ? &rg[nr++] : &kg[nk++];
      gp->size = x->dims[k];
    }
    gp->stride = strides[k];
    prev = mask[k];
  }
  /* The kept loops, the output index and the input offset they give. */
  base = oat = moss_k_idx(b, 0);
  for (k = 0; k < nk; k++) {
    char name[16];
    snprintf(name, sizeof name, "k%d", k);
    kv[k] = moss_k_range(b, name, kg[k].size, MOSS_KL_PARALLEL);
  }
  {
    int64_t ostride = 1;
    for (k = nk - 1; k >= 0; k--) {
      oat = moss_k_add(b, oat, moss_k_mulc(b, kv[k], ostride));
      base = moss_k_add(b, base, moss_k_mulc(b, kv[k], kg[k].stride));
      ostride *= kg[k].size;
    }
  }
  if (nk) base = moss_k_let(b, "base", base);
  if (n->op == MOSS_OP_ReduceLogSumExp) {
    logsumexp(b, dt, xi, yi, base, oat, rg, nr);
    close_nest(b, nk);
    return b->st;
  }
  /* The accumulator: double for floats, uint64 for integers; Max and Min
   * keep the element type. */
  A = isf ? MOSS_DT_F64 : MOSS_DT_U64;
  switch (n->op) {
  case MOSS_OP_ReduceMax:
  case MOSS_OP_ReduceMin:
    acc = moss_k_let(b, "acc", extreme(b, dt, n->op == MOSS_OP_ReduceMin));
    break;
  case MOSS_OP_ReduceProd: acc = moss_k_let(b, "acc", moss_k_cast(b, A, moss_k_idx(b, 1))); break;
  case MOSS_OP_ReduceSum:
  case MOSS_OP_ReduceMean:
  case MOSS_OP_ReduceLogSum:
  case MOSS_OP_ReduceL1:
  case MOSS_OP_ReduceL2:
  case MOSS_OP_ReduceSumSquare:
    acc = moss_k_let(b, "acc", moss_k_cast(b, A, moss_k_idx(b, 0)));
    break;
  default: return moss_kb_fail(b, MOSS_E_INTERNAL, "not a reduction");
  }
  if (isf && dt == MOSS_DT_F32 && nr == 1 && rg[0].stride == 1 && b->cpu.vector_bytes >= 16 &&
      rg[0].size >= 2 * (b->cpu.vector_bytes / 4) &&
      (n->op == MOSS_OP_ReduceSum || n->op == MOSS_OP_ReduceMean || n->op == MOSS_OP_ReduceLogSum ||
       n->op == MOSS_OP_ReduceL1 || n->op == MOSS_OP_ReduceL2 || n->op == MOSS_OP_ReduceSumSquare)) {
    /* One contiguous reduced run of at least two whole vectors: the sum in
     * |L| lanes of double partial sums, then its lanes in order, then the
     * run's last elements one by one. */
    int L = b->cpu.vector_bytes / 4;
    int64_t lv = rg[0].size / L * L;
    moss_kx *vs = moss_k_let(b, "vs", moss_k_splat(b, moss_k_flt(b, A, 0.0), L)), *j;
    j = moss_k_for(b, "r0", moss_k_idx(b, 0), moss_k_idx(b, lv), L, MOSS_KL_REDUCE, 0);
    moss_k_set(b, vs, moss_k_bin(b, MOSS_KX_ADD, vs,
                                  sum_term(b, n->op, moss_k_cast(b, A, moss_k_vload(b, xi, moss_k_add(b, base, j), L)))));
    moss_k_end(b);
    moss_k_set(b, acc, moss_k_hsum(b, vs));
    j = moss_k_for(b, "r0", moss_k_idx(b, lv), moss_k_idx(b, rg[0].size), 1, MOSS_KL_REDUCE, 0);
    moss_k_set(b, acc, moss_k_bin(b, MOSS_KX_ADD, acc,
                                   sum_term(b, n->op, moss_k_cast(b, A, moss_k_load(b, xi, moss_k_add(b, base, j))))));
    moss_k_end(b);
    goto stored;
  }
  v = reduced_nest(b, xi, base, rg, nr, MOSS_KL_REDUCE);
  vu = moss_k_cast(b, A, v);
  switch (n->op) {
  case MOSS_OP_ReduceMax:
  case MOSS_OP_ReduceMin: {
    moss_kx_op op = n->op == MOSS_OP_ReduceMax ? MOSS_KX_GT : MOSS_KX_LT;
    if (isf) /* a NaN wins */
      moss_k_set(b, acc,
                 moss_k_select(b,
                               moss_k_bin(b, MOSS_KX_LOR, moss_k_bin(b, op, v, acc),
                                          moss_k_call(b, MOSS_KFN_ISNAN, v, NULL, NULL)),
                               v, acc));
    else
      moss_k_set(b, acc, moss_k_bin(b, op == MOSS_KX_GT ? MOSS_KX_MAX : MOSS_KX_MIN, v, acc));
    break;
  }
  case MOSS_OP_ReduceProd: moss_k_set(b, acc, moss_k_bin(b, MOSS_KX_MUL, acc, vu)); break;
  case MOSS_OP_ReduceL1:
    if (isf)
      vu = moss_k_call(b, MOSS_KFN_FABS, vu, NULL, NULL);
    else if (sgn)
      vu = moss_k_select(b, moss_k_bin(b, MOSS_KX_LT, v, moss_k_int(b, dt, 0)),
                         moss_k_un(b, MOSS_KX_NEG, vu), vu);
    moss_k_set(b, acc, moss_k_bin(b, MOSS_KX_ADD, acc, vu));
    break;
  case MOSS_OP_ReduceL2:
  case MOSS_OP_ReduceSumSquare:
    moss_k_set(b, acc, moss_k_bin(b, MOSS_KX_ADD, acc, moss_k_bin(b, MOSS_KX_MUL, vu, vu)));
    break;
  default: moss_k_set(b, acc, moss_k_bin(b, MOSS_KX_ADD, acc, vu)); break;
  }
  close_nest(b, nr);
stored:
  /* The stored value. */
  switch (n->op) {
  case MOSS_OP_ReduceMean:
    if (isf)
      fin = moss_k_bin(b, MOSS_KX_DIV, acc, moss_k_flt(b, A, (double)cnt));
    else if (cnt == 0)
      fin = moss_k_idx(b, 0);
    else if (sgn)
      fin = moss_k_bin(b, MOSS_KX_DIV, moss_k_cast(b, MOSS_DT_I64, acc), moss_k_idx(b, cnt));
    else
      fin = moss_k_bin(b, MOSS_KX_DIV, acc, moss_k_int(b, A, cnt));
    fin = moss_k_cast(b, dt, fin);
    break;
  case MOSS_OP_ReduceL2:
  case MOSS_OP_ReduceLogSum: {
    moss_kfn fn = n->op == MOSS_OP_ReduceL2 ? MOSS_KFN_SQRT : MOSS_KFN_LOG;
    if (isf) {
      fin = moss_k_cast(b, dt, moss_k_call(b, fn, acc, NULL, NULL));
    } else {
      moss_kx *t = moss_k_cast(b, MOSS_DT_F64, sgn ? moss_k_cast(b, MOSS_DT_I64, acc) : acc);
      fin = int_of(b, dt, moss_k_let(b, "t", moss_k_call(b, fn, t, NULL, NULL)));
    }
    break;
  }
  default: fin = moss_k_cast(b, dt, acc); break;
  }
  moss_k_store(b, yi, oat, fin);
  close_nest(b, nk);
  return b->st;
}
