/* lower_binary.c - elementwise operators of two inputs with numpy
 * broadcasting: the loops come from moss_k_bcast_open, the scalar
 * expression from the operator and the element type. */
#include <string.h>

#include "lower.h"

/* Whether |v| is a constant whose every element is |x|. */
static int all_const(const moss_value *v, double x) {
  int64_t i, cnt = moss_value_numel(v);
  if (!v->data || cnt < 1) return 0;
  for (i = 0; i < cnt; i++)
    if (moss_value_get_f64(v, i) != x) return 0;
  return 1;
}

moss_status moss_lower_binary_expr(moss_kb *b, const moss_node *n, moss_kx *x, moss_kx *y, moss_kx **out) {
  moss_dtype dt = n->inputs[0]->dtype;
  int isf = moss_dtype_is_float(dt);
  moss_kx_op op = 0;
  if (isf && (n->op == MOSS_OP_BitShift || n->op == MOSS_OP_BitwiseAnd || n->op == MOSS_OP_BitwiseOr ||
              n->op == MOSS_OP_BitwiseXor))
    return moss_kb_fail(b, MOSS_E_INVALID_MODEL, "bitwise operator on %s", moss_dtype_name(dt));
  switch (n->op) {
  case MOSS_OP_Add: op = MOSS_KX_ADD; break;
  case MOSS_OP_Sub: op = MOSS_KX_SUB; break;
  case MOSS_OP_Mul: op = MOSS_KX_MUL; break;
  case MOSS_OP_Div: op = MOSS_KX_DIV; break;
  case MOSS_OP_Equal: op = MOSS_KX_EQ; break;
  case MOSS_OP_Greater: op = MOSS_KX_GT; break;
  case MOSS_OP_Less: op = MOSS_KX_LT; break;
  case MOSS_OP_GreaterOrEqual: op = MOSS_KX_GE; break;
  case MOSS_OP_LessOrEqual: op = MOSS_KX_LE; break;
  case MOSS_OP_And: op = MOSS_KX_LAND; break;
  case MOSS_OP_Or: op = MOSS_KX_LOR; break;
  case MOSS_OP_Xor: op = MOSS_KX_NE; break; /* operands are 0 or 1 */
  case MOSS_OP_BitwiseAnd: op = MOSS_KX_BAND; break;
  case MOSS_OP_BitwiseOr: op = MOSS_KX_BOR; break;
  case MOSS_OP_BitwiseXor: op = MOSS_KX_BXOR; break;
  case MOSS_OP_BitShift:
    op = !strcmp(moss_attr_string(n, "direction", ""), "LEFT") ? MOSS_KX_SHL : MOSS_KX_SHR;
    break;
  case MOSS_OP_Pow:
    if (isf && all_const(n->inputs[1], 2.0)) {
      /* x * x: one correctly rounded product, as pow's correctly rounded
       * square, without a library call per element (LayerNorm's square). */
      *out = moss_k_bin(b, MOSS_KX_MUL, x, x);
    } else if (isf) {
      *out = moss_k_call(b, MOSS_KFN_POW, x, moss_k_cast(b, dt, y), NULL);
    } else { /* in double, like C's pow((double)a, (double)b) */
      *out = moss_k_call(b, MOSS_KFN_POW, moss_k_cast(b, MOSS_DT_F64, x), moss_k_cast(b, MOSS_DT_F64, y),
                         NULL);
    }
    return MOSS_OK;
  case MOSS_OP_Mod:
    if (isf) {
      *out = moss_k_call(b, MOSS_KFN_FMOD, x, y, NULL);
    } else if (moss_attr_int(n, "fmod", 0) || !moss_dtype_is_signed(dt)) {
      *out = moss_k_bin(b, MOSS_KX_REM, x, y);
    } else { /* Python's: the sign of the divisor */
      moss_kx *r = moss_k_let(b, "r", moss_k_bin(b, MOSS_KX_REM, x, y)), *zero = moss_k_int(b, dt, 0);
      moss_kx *fix = moss_k_bin(b, MOSS_KX_LAND, moss_k_bin(b, MOSS_KX_NE, r, zero),
                                moss_k_bin(b, MOSS_KX_NE, moss_k_bin(b, MOSS_KX_LT, r, zero),
                                           moss_k_bin(b, MOSS_KX_LT, y, zero)));
      *out = moss_k_select(b, fix, moss_k_bin(b, MOSS_KX_ADD, r, y), r);
    }
    return MOSS_OK;
  case MOSS_OP_PRelu:
    *out = moss_k_select(b, moss_k_bin(b, MOSS_KX_LT, x, isf ? moss_k_flt(b, dt, 0) : moss_k_int(b, dt, 0)),
                         moss_k_bin(b, MOSS_KX_MUL, x, y), x);
    return MOSS_OK;
  default:
    return moss_kb_fail(b, MOSS_E_UNSUPPORTED, "no kernel description for this operator");
  }
  *out = moss_k_bin(b, op, x, moss_k_cast(b, dt, y));
  return MOSS_OK;
}

moss_status moss_lower_binary(moss_kb *b, const moss_node *n) {
  const moss_value *a = n->inputs[0], *c = n->inputs[1], *y = n->outputs[0];
  int rk[2], xa = moss_k_input(b, 0), xc = moss_k_input(b, 1), yo = moss_k_output(b, 0), loops;
  int64_t dims[2][MOSS_MAX_RANK];
  moss_kx *o, *idx[2], *e = NULL;
  rk[0] = a->rank;
  rk[1] = c->rank;
  memcpy(dims[0], a->dims, sizeof dims[0]);
  memcpy(dims[1], c->dims, sizeof dims[1]);
  loops = moss_k_bcast_open(b, y->rank, y->dims, 2, rk, (const int64_t(*)[MOSS_MAX_RANK])dims, &o, idx);
  MOSS_TRY(moss_lower_binary_expr(b, n, moss_k_load(b, xa, idx[0]), moss_k_load(b, xc, idx[1]), &e));
  moss_k_store(b, yo, o, moss_k_cast(b, y->dtype, e));
  while (loops--) moss_k_end(b);
  return b->st;
}
