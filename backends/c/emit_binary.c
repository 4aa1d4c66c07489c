/* emit_binary.c - C for elementwise operators of two inputs with numpy
 * broadcasting; the loop nest comes from moss_c_broadcast_loop, the scalar
 * expression from the operator and the element type. */
#include <stdio.h>
#include <string.h>

#include "cgen.h"

static moss_status expr(moss_cgen *cg, const moss_node *n, char *e, size_t cap) {
  moss_dtype dt = n->inputs[0]->dtype;
  int isf = moss_dtype_is_float(dt), f32 = dt == MOSS_DT_F32;
  const char *F = f32 ? "f" : "";
  switch (n->op) {
  case MOSS_OP_Add: snprintf(e, cap, "a + b"); break;
  case MOSS_OP_Sub: snprintf(e, cap, "a - b"); break;
  case MOSS_OP_Mul: snprintf(e, cap, "a * b"); break;
  case MOSS_OP_Div: snprintf(e, cap, isf ? "a / b" : "b ? a / b : 0"); break;
  case MOSS_OP_Pow:
    if (isf) snprintf(e, cap, "pow%s(a, b)", F);
    else snprintf(e, cap, "pow((double)a, (double)b)");
    break;
  case MOSS_OP_Mod:
    if (isf) snprintf(e, cap, "fmod%s(a, b)", F);
    else if (moss_attr_int(n, "fmod", 0) || !moss_dtype_is_signed(dt)) snprintf(e, cap, "b ? a %% b : 0");
    else snprintf(e, cap, "b ? ((a %% b) != 0 && ((a %% b) < 0) != (b < 0) ? a %% b + b : a %% b) : 0");
    break;
  case MOSS_OP_PRelu: snprintf(e, cap, "a < 0 ? a * b : a"); break;
  case MOSS_OP_Equal: snprintf(e, cap, "a == b"); break;
  case MOSS_OP_Greater: snprintf(e, cap, "a > b"); break;
  case MOSS_OP_Less: snprintf(e, cap, "a < b"); break;
  case MOSS_OP_GreaterOrEqual: snprintf(e, cap, "a >= b"); break;
  case MOSS_OP_LessOrEqual: snprintf(e, cap, "a <= b"); break;
  case MOSS_OP_And: snprintf(e, cap, "a && b"); break;
  case MOSS_OP_Or: snprintf(e, cap, "a || b"); break;
  case MOSS_OP_Xor: snprintf(e, cap, "!a != !b"); break;
  case MOSS_OP_BitShift:
    if (!strcmp(moss_attr_string(n, "direction", ""), "LEFT")) snprintf(e, cap, "a << b");
    else snprintf(e, cap, "a >> b");
    break;
  case MOSS_OP_BitwiseAnd: snprintf(e, cap, "a & b"); break;
  case MOSS_OP_BitwiseOr: snprintf(e, cap, "a | b"); break;
  case MOSS_OP_BitwiseXor: snprintf(e, cap, "a ^ b"); break;
  default: return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "no C expression for this operator");
  }
  if (isf && (n->op == MOSS_OP_BitShift || n->op >= MOSS_OP_BitwiseAnd))
    return moss_fail(cg->ctx, MOSS_E_INVALID_MODEL, n, "bitwise operator on %s", moss_dtype_name(dt));
  return MOSS_OK;
}

moss_status moss_c_emit_binary(moss_cgen *cg, const moss_node *n) {
  char e[512], stmt[1024];
  const moss_value *a = n->inputs[0], *b = n->inputs[1], *y = n->outputs[0];
  int rk[2];
  int64_t dims[2][MOSS_MAX_RANK];
  MOSS_TRY(expr(cg, n, e, sizeof e));
  rk[0] = a->rank;
  rk[1] = b->rank;
  memcpy(dims[0], a->dims, sizeof dims[0]);
  memcpy(dims[1], b->dims, sizeof dims[1]);
  snprintf(stmt, sizeof stmt, "const %s a = x0[%%0], b = x1[%%1]; y0[%%o] = (%s)(%s);",
           moss_dtype_ctype(a->dtype), moss_dtype_ctype(y->dtype), e);
  if (a->dtype != b->dtype)
    snprintf(stmt, sizeof stmt, "const %s a = x0[%%0]; const %s b = x1[%%1]; y0[%%o] = (%s)(%s);",
             moss_dtype_ctype(a->dtype), moss_dtype_ctype(b->dtype), moss_dtype_ctype(y->dtype), e);
  moss_c_broadcast_loop(cg, y->rank, y->dims, 2, rk, (const int64_t(*)[MOSS_MAX_RANK])dims, stmt);
  return MOSS_OK;
}
