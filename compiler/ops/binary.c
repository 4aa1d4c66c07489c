/* binary.c - elementwise operators of two inputs with numpy broadcasting
 * (PRelu broadcasts its slope to the input). Comparisons and logic give
 * bool. Evaluation handles the integer and float arithmetic that shape
 * computations in exported models use. */
#include <math.h>

#include "ops.h"

static int is_compare(moss_op op) {
  return op == MOSS_OP_Equal || op == MOSS_OP_Greater || op == MOSS_OP_Less ||
         op == MOSS_OP_GreaterOrEqual || op == MOSS_OP_LessOrEqual;
}

moss_status moss_infer_binary(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *a = n->inputs[0], *b = n->inputs[1];
  int rank;
  int64_t dims[MOSS_MAX_RANK];
  moss_dtype dt;
  (void)g;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  MOSS_TRY(moss_need_input(ctx, n, 1));
  if (n->op != MOSS_OP_Pow && a->dtype != b->dtype)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input types differ: %s and %s",
                     moss_dtype_name(a->dtype), moss_dtype_name(b->dtype));
  MOSS_TRY(moss_broadcast(ctx, n, a->rank, a->dims, b->rank, b->dims, &rank, dims));
  dt = a->dtype;
  if (is_compare(n->op)) dt = MOSS_DT_BOOL;
  if ((n->op == MOSS_OP_And || n->op == MOSS_OP_Or || n->op == MOSS_OP_Xor) &&
      a->dtype != MOSS_DT_BOOL)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "logical operators take bool inputs");
  if (n->op == MOSS_OP_PRelu && rank != a->rank)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "slope does not broadcast to the input");
  if (n->op == MOSS_OP_Mod && moss_dtype_is_float(dt) && !moss_attr_int(n, "fmod", 0))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "Mod of floats needs fmod=1");
  moss_set_output(n, 0, dt, rank, dims);
  return MOSS_OK;
}

moss_status moss_eval_binary(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  moss_value *a = n->inputs[0], *b = n->inputs[1], *y = n->outputs[0];
  int64_t o, ne = moss_value_numel(y);
  int isf = moss_dtype_is_float(a->dtype);
  (void)ctx;
  (void)g;
  if (!moss_dtype_ctype(a->dtype) || !moss_dtype_ctype(b->dtype)) return MOSS_E_UNSUPPORTED;
  for (o = 0; o < ne; o++) {
    int64_t ia = moss_broadcast_index(y->rank, y->dims, a->rank, a->dims, o);
    int64_t ib = moss_broadcast_index(y->rank, y->dims, b->rank, b->dims, o);
    double fa = moss_load_f64(a->dtype, a->data, ia), fb = moss_load_f64(b->dtype, b->data, ib);
    int64_t la = moss_load_i64(a->dtype, a->data, ia), lb = moss_load_i64(b->dtype, b->data, ib);
    switch (n->op) {
    case MOSS_OP_Add: isf ? moss_store_f64(y->dtype, y->data, o, fa + fb) : moss_store_i64(y->dtype, y->data, o, (int64_t)((uint64_t)la + (uint64_t)lb)); break;
    case MOSS_OP_Sub: isf ? moss_store_f64(y->dtype, y->data, o, fa - fb) : moss_store_i64(y->dtype, y->data, o, (int64_t)((uint64_t)la - (uint64_t)lb)); break;
    case MOSS_OP_Mul: isf ? moss_store_f64(y->dtype, y->data, o, fa * fb) : moss_store_i64(y->dtype, y->data, o, (int64_t)((uint64_t)la * (uint64_t)lb)); break;
    case MOSS_OP_Div:
      if (isf) moss_store_f64(y->dtype, y->data, o, fa / fb);
      else if (lb == 0 || (la == INT64_MIN && lb == -1)) return MOSS_E_UNSUPPORTED;
      else moss_store_i64(y->dtype, y->data, o, la / lb);
      break;
    case MOSS_OP_Equal: moss_store_i64(y->dtype, y->data, o, isf ? fa == fb : la == lb); break;
    case MOSS_OP_Greater: moss_store_i64(y->dtype, y->data, o, isf ? fa > fb : la > lb); break;
    case MOSS_OP_Less: moss_store_i64(y->dtype, y->data, o, isf ? fa < fb : la < lb); break;
    case MOSS_OP_GreaterOrEqual: moss_store_i64(y->dtype, y->data, o, isf ? fa >= fb : la >= lb); break;
    case MOSS_OP_LessOrEqual: moss_store_i64(y->dtype, y->data, o, isf ? fa <= fb : la <= lb); break;
    case MOSS_OP_And: moss_store_i64(y->dtype, y->data, o, la && lb); break;
    case MOSS_OP_Or: moss_store_i64(y->dtype, y->data, o, la || lb); break;
    default: return MOSS_E_UNSUPPORTED;
    }
  }
  return MOSS_OK;
}
