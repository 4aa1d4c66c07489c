/* emit_reduce.c - C for the reductions and the arg reductions. Adjacent
 * dimensions that are both kept or both reduced are merged (size-1 ones
 * dropped), then each output element gets a loop nest over the reduced
 * positions; reducing trailing axes thus reads contiguous memory. Float
 * sums accumulate in double, integer sums in wrapping uint64_t arithmetic
 * (the result is cast back to the element type, as the ONNX reference
 * does). LogSumExp subtracts the maximum first. */
#include <stdio.h>
#include <string.h>

#include "cgen.h"

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

/* Loops over the reduced groups, with the element `v` read at base + ...,
 * then |stmt|; closes them again. */
static void reduced_nest(moss_cgen *cg, const char *T, const group *rg, int nr, const char *stmt) {
  char idx[512];
  size_t l;
  int j;
  snprintf(idx, sizeof idx, "base");
  for (j = 0; j < nr; j++) {
    moss_c_open(cg, "for (long r%d = 0; r%d < %lld; r%d++)", j, j, (long long)rg[j].size, j);
    l = strlen(idx);
    if (rg[j].stride == 1)
      snprintf(idx + l, sizeof idx - l, " + r%d", j);
    else
      snprintf(idx + l, sizeof idx - l, " + r%d * %lld", j, (long long)rg[j].stride);
  }
  moss_c_line(cg, "const %s v = x0[%s];", T, idx);
  moss_c_line(cg, "%s", stmt);
  for (j = 0; j < nr; j++) moss_c_close(cg);
}

static moss_status emit_arg(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0];
  const char *T = moss_dtype_ctype(x->dtype);
  int axis = (int)moss_attr_int(n, "axis", 0), k, isf = moss_dtype_is_float(x->dtype);
  int last = moss_attr_int(n, "select_last_index", 0) != 0, mx = n->op == MOSS_OP_ArgMax;
  int64_t outer = 1, inner = 1, len;
  char cond[256];
  if (axis < 0) axis += x->rank;
  len = x->dims[axis];
  for (k = 0; k < axis; k++) outer *= x->dims[k];
  for (k = axis + 1; k < x->rank; k++) inner *= x->dims[k];
  if (outer * inner == 0) {
    moss_c_line(cg, "/* empty output */");
    return MOSS_OK;
  }
  if (isf) {
    if (last)
      snprintf(cond, sizeof cond, "isnan(v) || (!isnan(best) && v %s best)", mx ? ">=" : "<=");
    else
      snprintf(cond, sizeof cond, "!isnan(best) && (v %s best || isnan(v))", mx ? ">" : "<");
  } else {
    snprintf(cond, sizeof cond, "v %s%s best", mx ? ">" : "<", last ? "=" : "");
  }
  moss_c_open(cg, "for (long o = 0; o < %lld; o++)", (long long)outer);
  moss_c_open(cg, "for (long i = 0; i < %lld; i++)", (long long)inner);
  moss_c_line(cg, "const %s *p = x0 + o * %lld + i;", T, (long long)(len * inner));
  moss_c_line(cg, "%s best = p[0];", T);
  moss_c_line(cg, "int64_t bi = 0;");
  moss_c_open(cg, "for (long j = 1; j < %lld; j++)", (long long)len);
  moss_c_line(cg, "const %s v = p[j * %lld];", T, (long long)inner);
  moss_c_open(cg, "if (%s)", cond);
  moss_c_line(cg, "best = v;");
  moss_c_line(cg, "bi = j;");
  moss_c_close(cg);
  moss_c_close(cg);
  moss_c_line(cg, "y0[o * %lld + i] = bi;", (long long)inner);
  moss_c_close(cg);
  moss_c_close(cg);
  return MOSS_OK;
}

moss_status moss_c_emit_reduce(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  moss_dtype dt = x->dtype;
  const char *T = moss_dtype_ctype(dt);
  int mask[MOSS_MAX_RANK], k, nk = 0, nr = 0, isf = moss_dtype_is_float(dt),
                              f32 = dt == MOSS_DT_F32;
  int sgn = moss_dtype_is_signed(dt);
  int64_t strides[MOSS_MAX_RANK], cnt = 1;
  group kg[MOSS_MAX_RANK], rg[MOSS_MAX_RANK];
  char oexpr[512], bexpr[512], init[128], upd[256], fin[256], lit[64], vu[64];
  const char *acc = isf ? "double" : "uint64_t";
  int prev = -1;
  if (!T) return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "type %s", moss_dtype_name(dt));
  if (n->op == MOSS_OP_ArgMax || n->op == MOSS_OP_ArgMin) return emit_arg(cg, n);
  if (reduce_mask(n, x->rank, mask)) {
    moss_c_line(cg, "memcpy(y0, x0, %zu);", moss_value_nbytes(x));
    return MOSS_OK;
  }
  if (moss_value_numel(y) == 0) {
    moss_c_line(cg, "/* empty output */");
    return MOSS_OK;
  }
  {
    int64_t s = 1;
    for (k = x->rank - 1; k >= 0; k--) {
      strides[k] = s;
      s *= x->dims[k];
    }
  }
  for (k = 0; k < x->rank; k++) {
    if (mask[k]) cnt *= x->dims[k];
    if (x->dims[k] == 1) continue;
    if (prev == mask[k]) {
      group *gp = mask[k] ? &rg[nr - 1] : &kg[nk - 1];
      gp->size *= x->dims[k];
      gp->stride = strides[k];
    } else {
      group *gp = mask[k] ? &rg[nr++] : &kg[nk++];
      gp->size = x->dims[k];
      gp->stride = strides[k];
    }
    prev = mask[k];
  }
  /* The output index and the input base of the kept loops k0..k{nk-1}. */
  {
    int64_t ostride = 1;
    size_t lo = 0, lb = 0;
    oexpr[0] = bexpr[0] = 0;
    for (k = nk - 1; k >= 0; k--) {
      lo += (size_t)snprintf(oexpr + lo, sizeof oexpr - lo, "%sk%d * %lld", lo ? " + " : "", k,
                             (long long)ostride);
      lb += (size_t)snprintf(bexpr + lb, sizeof bexpr - lb, "%sk%d * %lld", lb ? " + " : "", k,
                             (long long)kg[k].stride);
      ostride *= kg[k].size;
    }
    if (!nk) snprintf(oexpr, sizeof oexpr, "0"), snprintf(bexpr, sizeof bexpr, "0");
  }
  snprintf(vu, sizeof vu, isf ? "v" : sgn ? "(uint64_t)(int64_t)v" : "(uint64_t)v");
  snprintf(init, sizeof init, "%s acc = 0;", acc);
  switch (n->op) {
  case MOSS_OP_ReduceSum:
  case MOSS_OP_ReduceMean:
  case MOSS_OP_ReduceLogSum: snprintf(upd, sizeof upd, "acc += %s;", vu); break;
  case MOSS_OP_ReduceProd:
    snprintf(init, sizeof init, "%s acc = 1;", acc);
    snprintf(upd, sizeof upd, "acc *= %s;", vu);
    break;
  case MOSS_OP_ReduceL1:
    if (isf)
      snprintf(upd, sizeof upd, "acc += fabs((double)v);");
    else if (sgn)
      snprintf(upd, sizeof upd, "acc += v < 0 ? 0u - (uint64_t)(int64_t)v : (uint64_t)v;");
    else
      snprintf(upd, sizeof upd, "acc += (uint64_t)v;");
    break;
  case MOSS_OP_ReduceL2:
  case MOSS_OP_ReduceSumSquare:
    if (isf)
      snprintf(upd, sizeof upd, "acc += (double)v * v;");
    else
      snprintf(upd, sizeof upd, "acc += %s * %s;", vu, vu);
    break;
  case MOSS_OP_ReduceMax:
  case MOSS_OP_ReduceMin: {
    int mx = n->op == MOSS_OP_ReduceMax;
    if (isf)
      snprintf(lit, sizeof lit, "%sINFINITY", mx ? "-" : "");
    else if (dt == MOSS_DT_BOOL)
      snprintf(lit, sizeof lit, "%d", mx ? 0 : 1);
    else if (sgn)
      moss_c_lit_i64(dt,
                     mx ? (dt == MOSS_DT_I64   ? INT64_MIN
                           : dt == MOSS_DT_I32 ? INT32_MIN
                           : dt == MOSS_DT_I16 ? INT16_MIN
                                               : INT8_MIN)
                        : (dt == MOSS_DT_I64   ? INT64_MAX
                           : dt == MOSS_DT_I32 ? INT32_MAX
                           : dt == MOSS_DT_I16 ? INT16_MAX
                                               : INT8_MAX),
                     lit, sizeof lit);
    else
      moss_c_lit_i64(dt,
                     mx ? 0
                        : (dt == MOSS_DT_U64   ? -1
                           : dt == MOSS_DT_U32 ? (int64_t)UINT32_MAX
                           : dt == MOSS_DT_U16 ? UINT16_MAX
                                               : UINT8_MAX),
                     lit, sizeof lit);
    snprintf(init, sizeof init, "%s acc = %s;", T, lit);
    if (isf)
      snprintf(upd, sizeof upd, "if (v %s acc || isnan(v)) acc = v;", mx ? ">" : "<");
    else
      snprintf(upd, sizeof upd, "if (v %s acc) acc = v;", mx ? ">" : "<");
    break;
  }
  case MOSS_OP_ReduceLogSumExp: break;
  default: return moss_fail(cg->ctx, MOSS_E_INTERNAL, n, "not a reduction");
  }
  /* The stored value. Integer results that go through double are
   * converted only when finite (no undefined conversion). */
  switch (n->op) {
  case MOSS_OP_ReduceMean:
    if (isf)
      snprintf(fin, sizeof fin, "(%s)(acc / %lld.0)", T, (long long)cnt);
    else if (cnt == 0)
      snprintf(fin, sizeof fin, "0");
    else if (sgn)
      snprintf(fin, sizeof fin, "(%s)((int64_t)acc / %lld)", T, (long long)cnt);
    else
      snprintf(fin, sizeof fin, "(%s)(acc / %lld)", T, (long long)cnt);
    break;
  case MOSS_OP_ReduceL2:
  case MOSS_OP_ReduceLogSum: {
    const char *fn = n->op == MOSS_OP_ReduceL2 ? "sqrt" : "log";
    if (isf)
      snprintf(fin, sizeof fin, "(%s)%s(acc)", T, fn);
    else
      snprintf(fin, sizeof fin,
               "(%s)(isfinite(%s((double)%sacc)) ? (int64_t)%s((double)%sacc) : 0)", T, fn,
               sgn ? "(int64_t)" : "", fn, sgn ? "(int64_t)" : "");
    break;
  }
  case MOSS_OP_ReduceMax:
  case MOSS_OP_ReduceMin: snprintf(fin, sizeof fin, "acc"); break;
  default: snprintf(fin, sizeof fin, "(%s)acc", T); break;
  }
  for (k = 0; k < nk; k++)
    moss_c_open(cg, "for (long k%d = 0; k%d < %lld; k%d++)", k, k, (long long)kg[k].size, k);
  moss_c_line(cg, "const long base = %s;", bexpr);
  if (n->op == MOSS_OP_ReduceLogSumExp) {
    /* m: the maximum (NaN wins), then the sum of exp(v - m). */
    const char *M = f32 ? "float" : "double";
    moss_c_line(cg, "%s m = -INFINITY;", M);
    moss_c_line(cg, "double acc = 0;");
    reduced_nest(cg, T, rg, nr,
                 isf ? "if (v > m || isnan(v)) m = v;" : "if ((double)v > m) m = (double)v;");
    moss_c_open(cg, "if (isinf(m) || isnan(m))");
    if (isf)
      moss_c_line(cg, "y0[%s] = m;", oexpr);
    else
      moss_c_line(cg, "y0[%s] = 0;", oexpr);
    moss_c_close(cg);
    moss_c_open(cg, "else");
    reduced_nest(cg, T, rg, nr, f32 ? "acc += expf(v - m);" : "acc += exp((double)v - m);");
    if (isf)
      moss_c_line(cg, "y0[%s] = (%s)((double)m + log(acc));", oexpr, T);
    else
      moss_c_line(cg, "y0[%s] = (%s)(isfinite(m + log(acc)) ? (int64_t)(m + log(acc)) : 0);", oexpr,
                  T);
    moss_c_close(cg);
  } else {
    moss_c_line(cg, "%s", init);
    reduced_nest(cg, T, rg, nr, upd);
    moss_c_line(cg, "y0[%s] = %s;", oexpr, fin);
  }
  for (k = 0; k < nk; k++) moss_c_close(cg);
  return MOSS_OK;
}
