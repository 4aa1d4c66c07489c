/* kprint.c - the C backend's printer of kernel descriptions
 * (compiler/kernel/kernel.h): a node's kernel becomes the body of its block
 * in <name>_run(). Inputs and outputs keep the framework's names x<i> and
 * y<i>; constant tables become file-scope static const arrays; private
 * arrays and variables are block locals. Expressions are printed with the
 * casts that make C's arithmetic the description's: narrow integer results
 * are wrapped back to their type, integer division by zero gives 0.
 * Vector values are printed lane by lane (C99 has no vector types): a
 * vector variable is an array, and each vector statement a loop over its
 * lanes, which gcc and clang vectorize again. */
#include <stdio.h>
#include <string.h>

#include "../../compiler/kernel/kernel.h"
#include "cgen.h"

typedef struct printer {
  moss_cgen *cg;
  const moss_kernel *k;
  char (*vname)[40]; /* per variable: its C name */
  char (*bname)[48]; /* per buffer: its C name */
  moss_buf *e;       /* the expression being printed */
  int lane;          /* printing a vector statement: lane index in `l_` */
  moss_status st;
} printer;

/* float16 appears in a description only where the node computes in it
 * (moss_node.native_half), which only the OpenCL dialect prints: its
 * prelude makes moss_f16 OpenCL C's half (backends/opencl/opencl.c). */
static const char *ctype(moss_dtype dt) {
  return dt == MOSS_DT_F16 ? "moss_f16" : moss_dtype_ctype(dt);
}

/* The requantization of docs/numerics-int8.md, the function REQUANT prints
 * as: the same integer formula as moss_requant_apply (compiler/ops/quant.c),
 * so the generated C and the compiler always agree. */
/* Its bit in cg->helpers: printed once per file. */
#define CH_REQUANT (1u << 20)

static void need_requant(moss_cgen *cg) {
  if (cg->helpers & CH_REQUANT) return;
  cg->helpers |= CH_REQUANT;
  moss_buf_printf(
      cg->decls,
      "/* round(acc * M), M = mult * 2^-31 * 2^-shift (docs/numerics-int8.md):\n"
      " * the exact int64 product rounded once, ties to even, saturated. */\n"
      "static int32_t moss_requant(int32_t acc, int32_t mult, int shift) {\n"
      "  const int64_t p = (int64_t)acc * mult;\n"
      "  const int s = 31 + shift;\n"
      "  int64_t fl, rem, half;\n"
      "  if (s >= 63) return 0;\n"
      "  if (s <= 0) {\n"
      "    fl = p;\n"
      "  } else {\n"
      "    fl = p >= 0 ? p >> s : -((-p - 1) >> s) - 1;\n"
      "    rem = p - fl * ((int64_t)1 << s);\n"
      "    half = (int64_t)1 << (s - 1);\n"
      "    if (rem > half || (rem == half && (fl & 1))) fl++;\n"
      "  }\n"
      "  return fl > INT32_MAX ? INT32_MAX : (fl < INT32_MIN ? INT32_MIN : (int32_t)fl);\n"
      "}\n\n");
}


static int narrow(moss_dtype dt) {
  return dt == MOSS_DT_I8 || dt == MOSS_DT_U8 || dt == MOSS_DT_I16 || dt == MOSS_DT_U16 ||
         dt == MOSS_DT_BOOL;
}

static void expr(printer *p, const moss_kx *x);

/* Whether |x| computes only on constants and variables (index arithmetic),
 * reading no memory and calling nothing. */
static int data_free(const moss_kx *x) {
  int i;
  if (x->op == MOSS_KX_LOAD || x->op == MOSS_KX_LOAD_OR || x->op == MOSS_KX_CALL || x->op == MOSS_KX_CAST)
    return 0;
  for (i = 0; i < x->nargs; i++)
    if (!data_free(x->a[i])) return 0;
  return 1;
}

/* |x| as an operand: in parentheses unless it is a primary expression
 * (or already printed in parentheses). */
static void sub(printer *p, const moss_kx *x) {
  int bare = x->op == MOSS_KX_VAR || x->op == MOSS_KX_LOAD || x->op == MOSS_KX_LOAD_OR ||
             x->op == MOSS_KX_HSUM || x->op == MOSS_KX_MIN || x->op == MOSS_KX_MAX ||
             x->op == MOSS_KX_SELECT || (x->op == MOSS_KX_CALL && x->fn != MOSS_KFN_SAT) ||
             (x->op == MOSS_KX_CONST && (moss_dtype_is_float(x->dt) ? x->f >= 0 : x->i >= 0));
  if (x->op == MOSS_KX_SPLAT) {
    sub(p, x->a[0]);
    return;
  }
  if (!bare) moss_buf_printf(p->e, "(");
  expr(p, x);
  if (!bare) moss_buf_printf(p->e, ")");
}

static void int_const(printer *p, moss_dtype dt, int64_t v) {
  char t[64];
  if (dt == MOSS_DT_I64 && v > -2147483647 && v < 2147483647) /* index arithmetic: plain */
    moss_buf_printf(p->e, "%lld", (long long)v);
  else if (narrow(dt))
    moss_buf_printf(p->e, "%lld", (long long)v);
  else
    moss_buf_printf(p->e, "%s", moss_c_lit_i64(dt, v, t, sizeof t));
}

static const char *infix(moss_kx_op op) {
  switch (op) {
  case MOSS_KX_ADD: return "+";
  case MOSS_KX_SUB: return "-";
  case MOSS_KX_MUL: return "*";
  case MOSS_KX_BAND: return "&";
  case MOSS_KX_BOR: return "|";
  case MOSS_KX_BXOR: return "^";
  case MOSS_KX_SHL: return "<<";
  case MOSS_KX_SHR: return ">>";
  case MOSS_KX_LAND: return "&&";
  case MOSS_KX_LOR: return "||";
  case MOSS_KX_EQ: return "==";
  case MOSS_KX_NE: return "!=";
  case MOSS_KX_LT: return "<";
  case MOSS_KX_LE: return "<=";
  case MOSS_KX_GT: return ">";
  case MOSS_KX_GE: return ">=";
  default: return NULL;
  }
}

static void call(printer *p, const moss_kx *x) {
  const char *suffix = x->dt == MOSS_DT_F32 ? "f" : "";
  int i;
  switch (x->fn) {
  case MOSS_KFN_ISNAN: case MOSS_KFN_ISINF: /* a float16 one as float32 (below) */
    moss_buf_printf(p->e, "%s(%s", moss_kfn_name(x->fn),
                    x->a[0]->dt == MOSS_DT_F16 ? "(float)" : "");
    if (x->a[0]->dt == MOSS_DT_F16) sub(p, x->a[0]);
    else expr(p, x->a[0]);
    moss_buf_printf(p->e, ")");
    return;
  case MOSS_KFN_ABS:
    if (moss_dtype_is_float(x->dt)) break; /* fabs */
    moss_buf_printf(p->e, "(%s)(", ctype(x->dt));
    sub(p, x->a[0]);
    moss_buf_printf(p->e, " < 0 ? -");
    sub(p, x->a[0]);
    moss_buf_printf(p->e, " : ");
    sub(p, x->a[0]);
    moss_buf_printf(p->e, ")");
    return;
  case MOSS_KFN_SAT: {
    int64_t lo = 0, hi = 0;
    switch (x->dt) {
    case MOSS_DT_I8: lo = -128, hi = 127; break;
    case MOSS_DT_U8: hi = 255; break;
    case MOSS_DT_I16: lo = -32768, hi = 32767; break;
    case MOSS_DT_U16: hi = 65535; break;
    case MOSS_DT_I32: lo = -2147483647 - 1, hi = 2147483647; break;
    case MOSS_DT_U32: hi = 4294967295; break;
    default: /* 64-bit targets: a conversion */
      moss_buf_printf(p->e, "(%s)", ctype(x->dt));
      sub(p, x->a[0]);
      return;
    }
    moss_buf_printf(p->e, "(%s)(", ctype(x->dt));
    sub(p, x->a[0]);
    moss_buf_printf(p->e, " < %lld ? %lld : ", (long long)lo, (long long)lo);
    sub(p, x->a[0]);
    moss_buf_printf(p->e, " > %lld ? %lld : ", (long long)hi, (long long)hi);
    sub(p, x->a[0]);
    moss_buf_printf(p->e, ")");
    return;
  }
  case MOSS_KFN_BITS: /* a C99 compound literal of a union reads the other member */
    moss_buf_printf(p->e, "((union { %s f; %s t; }){.f = ", ctype(x->a[0]->dt), ctype(x->dt));
    expr(p, x->a[0]);
    moss_buf_printf(p->e, "}).t");
    return;
  case MOSS_KFN_DOT4:
  case MOSS_KFN_DOT4S: { /* scalar lanes: the four byte products, in unsigned (wrapping) sums */
    int j;
    const char *a = x->fn == MOSS_KFN_DOT4S ? "(int8_t)" : "";
    moss_buf_printf(p->e, "(int32_t)((uint32_t)");
    sub(p, x->a[0]);
    for (j = 0; j < 4; j++) {
      moss_buf_printf(p->e, " + (uint32_t)((int32_t)%s(uint8_t)((uint32_t)", a);
      sub(p, x->a[1]);
      moss_buf_printf(p->e, " >> %d) * (int32_t)(int8_t)(uint8_t)((uint32_t)", 8 * j);
      sub(p, x->a[2]);
      moss_buf_printf(p->e, " >> %d))", 8 * j);
    }
    moss_buf_printf(p->e, ")");
    return;
  }
  case MOSS_KFN_TBL128: /* lane by lane: t0 and t1 are the arrays of two vector variables */
    moss_buf_printf(p->e, "((");
    sub(p, x->a[2]);
    moss_buf_printf(p->e, " & 127) < 64 ? %s[", p->vname[x->a[0]->var]);
    sub(p, x->a[2]);
    moss_buf_printf(p->e, " & 63] : %s[", p->vname[x->a[1]->var]);
    sub(p, x->a[2]);
    moss_buf_printf(p->e, " & 63])");
    return;
  case MOSS_KFN_REQUANT:
    need_requant(p->cg);
    moss_buf_printf(p->e, "moss_requant(");
    expr(p, x->a[0]);
    moss_buf_printf(p->e, ", ");
    expr(p, x->a[1]);
    moss_buf_printf(p->e, ", ");
    expr(p, x->a[2]);
    moss_buf_printf(p->e, ")");
    return;
  default: break;
  }
  if (x->dt == MOSS_DT_F16) {
    /* OpenCL's half functions need not round correctly (sqrt); float32's
     * result rounded once to float16 is the correctly rounded one, and
     * needs no half builtins from the driver's library */
    moss_buf_printf(p->e, "(moss_f16)%sf(", moss_kfn_name(x->fn));
    for (i = 0; i < x->nargs; i++) {
      moss_buf_printf(p->e, i ? ", (float)" : "(float)");
      sub(p, x->a[i]);
    }
    moss_buf_printf(p->e, ")");
    return;
  }
  moss_buf_printf(p->e, "%s%s(", moss_kfn_name(x->fn), suffix);
  for (i = 0; i < x->nargs; i++) {
    if (i) moss_buf_printf(p->e, ", ");
    expr(p, x->a[i]);
  }
  moss_buf_printf(p->e, ")");
}

static void expr(printer *p, const moss_kx *x) {
  const char *op = infix(x->op);
  char t[64];
  switch (x->op) {
  case MOSS_KX_CONST:
    if (x->dt == MOSS_DT_F16) /* a float16 value, so exact as float32 */
      moss_buf_printf(p->e, "((moss_f16)%s)", moss_c_lit_f64(MOSS_DT_F32, x->f, t, sizeof t));
    else if (moss_dtype_is_float(x->dt))
      moss_buf_printf(p->e, "%s", moss_c_lit_f64(x->dt, x->f, t, sizeof t));
    else int_const(p, x->dt, x->i);
    return;
  case MOSS_KX_VAR:
    moss_buf_printf(p->e, "%s", p->vname[x->var]);
    if (x->lanes > 1) moss_buf_printf(p->e, "[l_]");
    return;
  case MOSS_KX_LOAD:
    moss_buf_printf(p->e, "%s[", p->bname[x->buf]);
    expr(p, x->a[0]);
    moss_buf_printf(p->e, x->lanes > 1 ? " + l_]" : "]");
    return;
  case MOSS_KX_LOAD_OR:
    moss_buf_printf(p->e, "(");
    expr(p, x->a[1]);
    moss_buf_printf(p->e, " ? %s[", p->bname[x->buf]);
    expr(p, x->a[0]);
    moss_buf_printf(p->e, "] : ");
    expr(p, x->a[2]);
    moss_buf_printf(p->e, ")");
    return;
  case MOSS_KX_CAST:
    if (x->dt == MOSS_DT_BOOL) {
      moss_buf_printf(p->e, "(uint8_t)(");
      sub(p, x->a[0]);
      moss_buf_printf(p->e, " != 0)");
    } else {
      moss_buf_printf(p->e, "(%s)", x->dt == MOSS_DT_I64 ? "int64_t" : ctype(x->dt));
      sub(p, x->a[0]);
    }
    return;
  case MOSS_KX_SPLAT: expr(p, x->a[0]); return;
  case MOSS_KX_HSUM: {
    int l;
    if (x->a[0]->op != MOSS_KX_VAR) {
      if (p->st == MOSS_OK)
        p->st = moss_fail(p->cg->ctx, MOSS_E_INTERNAL, p->k->node,
                          "C backend: hsum of an expression that is not a vector variable");
      return;
    }
    moss_buf_printf(p->e, "(");
    for (l = 0; l < x->a[0]->lanes; l++)
      moss_buf_printf(p->e, "%s%s[%d]", l ? " + " : "", p->vname[x->a[0]->var], l);
    moss_buf_printf(p->e, ")");
    return;
  }
  case MOSS_KX_NEG: case MOSS_KX_BNOT:
    if (narrow(x->dt)) moss_buf_printf(p->e, "(%s)", ctype(x->dt));
    moss_buf_printf(p->e, "(%s", x->op == MOSS_KX_NEG ? "-" : "~");
    sub(p, x->a[0]);
    moss_buf_printf(p->e, ")");
    return;
  case MOSS_KX_NOT:
    moss_buf_printf(p->e, "!");
    sub(p, x->a[0]);
    return;
  case MOSS_KX_DIV: case MOSS_KX_REM:
    if (x->dt == MOSS_DT_F16) { /* as sqrt above: OpenCL's half division need not round correctly */
      moss_buf_printf(p->e, "(moss_f16)((float)");
      sub(p, x->a[0]);
      moss_buf_printf(p->e, " / (float)");
      sub(p, x->a[1]);
      moss_buf_printf(p->e, ")");
      return;
    }
    if (moss_dtype_is_float(x->dt)) {
      sub(p, x->a[0]);
      moss_buf_printf(p->e, " / ");
      sub(p, x->a[1]);
      return;
    }
    if (x->a[1]->op == MOSS_KX_CONST && x->a[1]->i != 0 && x->a[1]->i != -1) {
      /* A constant divisor needs no zero test (nor, not being -1, an overflow one). */
      if (narrow(x->dt)) moss_buf_printf(p->e, "(%s)(", ctype(x->dt));
      sub(p, x->a[0]);
      moss_buf_printf(p->e, " %s ", x->op == MOSS_KX_DIV ? "/" : "%");
      sub(p, x->a[1]);
      if (narrow(x->dt)) moss_buf_printf(p->e, ")");
      return;
    }
    moss_buf_printf(p->e, "(%s)(", ctype(x->dt));
    sub(p, x->a[1]);
    moss_buf_printf(p->e, " ? ");
    sub(p, x->a[0]);
    moss_buf_printf(p->e, " %s ", x->op == MOSS_KX_DIV ? "/" : "%");
    sub(p, x->a[1]);
    moss_buf_printf(p->e, " : 0)");
    return;
  case MOSS_KX_MIN: case MOSS_KX_MAX:
    moss_buf_printf(p->e, "(");
    sub(p, x->a[0]);
    moss_buf_printf(p->e, " %s ", x->op == MOSS_KX_MIN ? "<" : ">");
    sub(p, x->a[1]);
    moss_buf_printf(p->e, " ? ");
    sub(p, x->a[0]);
    moss_buf_printf(p->e, " : ");
    sub(p, x->a[1]);
    moss_buf_printf(p->e, ")");
    return;
  case MOSS_KX_SELECT:
    moss_buf_printf(p->e, "(");
    sub(p, x->a[0]);
    moss_buf_printf(p->e, " ? ");
    sub(p, x->a[1]);
    moss_buf_printf(p->e, " : ");
    sub(p, x->a[2]);
    moss_buf_printf(p->e, ")");
    return;
  case MOSS_KX_CALL: call(p, x); return;
  default: break;
  }
  if (!op) {
    if (p->st == MOSS_OK)
      p->st = moss_fail(p->cg->ctx, MOSS_E_INTERNAL, p->k->node, "C backend: kernel operator %s",
                        moss_kx_op_name(x->op));
    return;
  }
  /* Signed 32- and 64-bit arithmetic on data wraps in the description;
   * in C it would be undefined on overflow, so it goes through unsigned.
   * Pure index arithmetic (loop variables and constants) cannot overflow
   * and stays plain, to stay readable. */
  if ((x->dt == MOSS_DT_I32 || x->dt == MOSS_DT_I64) && !data_free(x) &&
      (x->op == MOSS_KX_ADD || x->op == MOSS_KX_SUB || x->op == MOSS_KX_MUL)) {
    const char *u = x->dt == MOSS_DT_I32 ? "uint32_t" : "uint64_t";
    moss_buf_printf(p->e, "(%s)((%s)", ctype(x->dt), u);
    sub(p, x->a[0]);
    moss_buf_printf(p->e, " %s (%s)", op, u);
    sub(p, x->a[1]);
    moss_buf_printf(p->e, ")");
    return;
  }
  /* Narrow integer arithmetic happens in int after C's promotions: wrap
   * the result back into the type, as the description defines it. */
  if (narrow(x->dt) && (x->op == MOSS_KX_ADD || x->op == MOSS_KX_SUB || x->op == MOSS_KX_MUL ||
                        x->op == MOSS_KX_SHL)) {
    moss_buf_printf(p->e, "(%s)(", ctype(x->dt));
    sub(p, x->a[0]);
    moss_buf_printf(p->e, " %s ", op);
    sub(p, x->a[1]);
    moss_buf_printf(p->e, ")");
    return;
  }
  /* A left-leaning chain of one associative operator reads without the
   * parentheses C does not need: i2 + i1 * 4 + i0 * 20. */
  if ((x->op == MOSS_KX_ADD || x->op == MOSS_KX_MUL) && x->a[0]->op == x->op && x->a[0]->dt == x->dt &&
      x->a[0]->lanes == x->lanes)
    expr(p, x->a[0]);
  else
    sub(p, x->a[0]);
  if (x->op == MOSS_KX_ADD && x->a[1]->op == MOSS_KX_CONST && x->dt == MOSS_DT_I64 &&
      x->a[1]->i < 0 && x->a[1]->i > INT64_MIN) { /* i + -1 reads as i - 1 */
    moss_buf_printf(p->e, " - ");
    int_const(p, x->dt, -x->a[1]->i);
    return;
  }
  moss_buf_printf(p->e, " %s ", op);
  if (x->op == MOSS_KX_ADD && x->a[1]->op == MOSS_KX_MUL && !narrow(x->a[1]->dt)) /* binds tighter */
    expr(p, x->a[1]);
  else
    sub(p, x->a[1]);
}

/* The text of |x| (a scratch buffer owned by the printer). */
static const char *text(printer *p, const moss_kx *x) {
  p->e->len = 0;
  if (p->e->data) p->e->data[0] = 0;
  expr(p, x);
  if (p->e->failed && p->st == MOSS_OK) p->st = moss_fail(p->cg->ctx, MOSS_E_NOMEM, NULL, "C backend");
  return p->e->data ? p->e->data : "";
}

static void stmts(printer *p, const moss_kstmt *s);

/* The statements from |s| up to |stop| (NULL: all). */
static void stmts_until(printer *p, const moss_kstmt *s, const moss_kstmt *stop) {
  const moss_kernel *k = p->k;
  for (; s && s != stop && p->st == MOSS_OK; s = s->next) {
    switch (s->kind) {
    case MOSS_KS_LOOP: {
      const char *v = p->vname[s->var];
      char lo[256], hi[256];
      if (s->role == MOSS_KL_GROUP) { /* only as the grid's innermost loop (gpu_body) */
        p->st = moss_fail(p->cg->ctx, MOSS_E_INTERNAL, k->node, "C backend: a work-group loop outside a GPU's grid");
        return;
      }
      snprintf(lo, sizeof lo, "%s", text(p, s->lo));
      snprintf(hi, sizeof hi, "%s", text(p, s->hi));
      if (s->step == 1)
        moss_c_open(p->cg, "for (long %s = %s; %s < %s; %s++)", v, lo, v, hi, v);
      else
        moss_c_open(p->cg, "for (long %s = %s; %s < %s; %s += %lld)", v, lo, v, hi, v, (long long)s->step);
      stmts(p, s->body);
      moss_c_close(p->cg);
      break;
    }
    case MOSS_KS_STORE: {
      char idx[512];
      snprintf(idx, sizeof idx, "%s", text(p, s->index));
      if (s->value->lanes > 1) {
        moss_c_open(p->cg, "for (int l_ = 0; l_ < %d; l_++)", s->value->lanes);
        moss_c_line(p->cg, "%s[%s + l_] = %s;", p->bname[s->buf], idx, text(p, s->value));
        moss_c_close(p->cg);
      } else {
        moss_c_line(p->cg, "%s[%s] = %s;", p->bname[s->buf], idx, text(p, s->value));
      }
      break;
    }
    case MOSS_KS_LET: case MOSS_KS_SET: {
      const moss_kvar *v = &k->vars[s->var];
      const char *ct = v->dt == MOSS_DT_I64 ? "int64_t" : ctype(v->dt);
      if (v->lanes > 1) {
        if (s->kind == MOSS_KS_LET) moss_c_line(p->cg, "%s %s[%d];", ct, p->vname[s->var], v->lanes);
        moss_c_open(p->cg, "for (int l_ = 0; l_ < %d; l_++)", v->lanes);
        moss_c_line(p->cg, "%s[l_] = %s;", p->vname[s->var], text(p, s->value));
        moss_c_close(p->cg);
      } else if (s->kind == MOSS_KS_LET) {
        moss_c_line(p->cg, "%s %s = %s;", ct, p->vname[s->var], text(p, s->value));
      } else {
        moss_c_line(p->cg, "%s = %s;", p->vname[s->var], text(p, s->value));
      }
      break;
    }
    case MOSS_KS_IF:
      moss_c_open(p->cg, "if (%s)", text(p, s->cond));
      stmts(p, s->body);
      if (s->orelse) {
        p->cg->indent--;
        moss_c_line(p->cg, "} else {");
        p->cg->indent++;
        stmts(p, s->orelse);
      }
      moss_c_close(p->cg);
      break;
    case MOSS_KS_COMMENT: moss_c_line(p->cg, "/* %s */", s->text); break;
    case MOSS_KS_BARRIER:
      if (!p->cg->opencl) {
        p->st = moss_fail(p->cg->ctx, MOSS_E_INTERNAL, k->node, "C backend: a work-group barrier on a CPU");
        return;
      }
      moss_c_line(p->cg, "barrier(CLK_LOCAL_MEM_FENCE);");
      break;
    }
  }
}

static void stmts(printer *p, const moss_kstmt *s) { stmts_until(p, s, NULL); }

/* Unique C names: the description's, with a suffix where one repeats or
 * where a variable would hide a buffer (a local called "y0"). */
static void names(printer *p) {
  const moss_kernel *k = p->k;
  int i, j;
  for (i = 0; i < k->nbufs; i++) {
    const moss_kbuf *bf = &k->bufs[i];
    if (bf->kind == MOSS_KB_INPUT || bf->kind == MOSS_KB_OUTPUT)
      snprintf(p->bname[i], sizeof p->bname[i], "%c%d", bf->kind == MOSS_KB_INPUT ? 'x' : 'y', bf->index);
    else if (bf->kind == MOSS_KB_TABLE)
      snprintf(p->bname[i], sizeof p->bname[i], "t%d_%d", k->node->id, i);
    else
      snprintf(p->bname[i], sizeof p->bname[i], "%s_%d", bf->name, i);
  }
  for (i = 0; i < k->nvars; i++) {
    int dup = 0;
    for (j = 0; j < i; j++) dup += !strcmp(k->vars[j].name, k->vars[i].name);
    for (j = 0; j < k->nbufs && !dup; j++) dup = !strcmp(p->bname[j], k->vars[i].name) ? 100 : 0;
    if (dup) snprintf(p->vname[i], sizeof p->vname[i], "%s_%d", k->vars[i].name, dup);
    else snprintf(p->vname[i], sizeof p->vname[i], "%s", k->vars[i].name);
  }
}

/* The file-scope arrays of the kernel's tables. */
static void tables(printer *p) {
  const moss_kernel *k = p->k;
  int i;
  int64_t j;
  char lit[64];
  for (i = 0; i < k->nbufs; i++) {
    const moss_kbuf *bf = &k->bufs[i];
    moss_value v;
    if (bf->kind != MOSS_KB_TABLE) continue;
    if (p->cg->opencl && p->cg->table_at) {
      int64_t at = p->cg->table_at(p->cg->table_user, bf->data, (size_t)bf->numel * moss_dtype_size(bf->dt));
      moss_c_line(p->cg, "__global const %s *%s = (__global const %s *)(moss_w + %lld); /* %s */", ctype(bf->dt),
                  p->bname[i], ctype(bf->dt), (long long)at, bf->name);
      continue;
    }
    memset(&v, 0, sizeof v);
    v.dtype = bf->dt;
    v.data = (void *)bf->data;
    moss_buf_printf(p->cg->decls, "/* node %d '%s': %s */\n%s %s %s[%lld] MOSS_ALIGNED = {",
                    k->node->id, k->node->name, bf->name, p->cg->opencl ? "__constant" : "static const",
                    ctype(bf->dt), p->bname[i],
                    (long long)(bf->numel > 0 ? bf->numel : 1));
    if (bf->numel <= 0) moss_buf_printf(p->cg->decls, "0");
    for (j = 0; j < bf->numel; j++) {
      if (j % 8 == 0) moss_buf_printf(p->cg->decls, "\n ");
      moss_buf_printf(p->cg->decls, " %s%s", moss_c_lit_elem(&v, j, lit, sizeof lit),
                      j + 1 < bf->numel ? "," : "");
    }
    moss_buf_printf(p->cg->decls, "\n};\n\n");
  }
}

/* The first statement of |s| on that is not a comment, or NULL. */
/* OpenCL (cg->opencl): the body as work-items, one flat index over the
 * loops of moss_kernel_grid; the rest of the body runs as is. */
static void gpu_body(printer *p, const moss_kstmt *body) {
  const moss_kstmt *loops[MOSS_GRID_MAX_LOOPS];
  int64_t ext[MOSS_GRID_MAX_LOOPS], total, inner;
  int n = moss_kernel_grid(body, loops, ext, &total), i;
  p->cg->work_items = n && total ? total : 1;
  p->cg->work_group = moss_kernel_group(body);
  if (!n) {
    stmts(p, body);
    return;
  }
  moss_c_line(p->cg, "const long gid_ = (long)get_global_id(0);");
  if (!p->cg->work_group) /* a launch of exactly the work-items: no work-item is past them, and a
                           * kernel with barriers has no early return (PoCL's work-group compiler
                           * then writes past its buffers) */
    moss_c_line(p->cg, "if (gid_ >= %lldL) return;", (long long)total);
  for (i = 0, inner = total; i < n; i++) {
    inner /= ext[i] ? ext[i] : 1;
    moss_c_line(p->cg, "const long %s = %lldL + (gid_ / %lldL %% %lldL) * %lldL;", p->vname[loops[i]->var],
                (long long)loops[i]->lo->i, (long long)inner, (long long)(ext[i] ? ext[i] : 1),
                (long long)loops[i]->step);
  }
  for (i = 0; i < n; i++) stmts_until(p, i ? loops[i - 1]->body : body, loops[i]); /* the LETs */
  stmts(p, loops[n - 1]->body);
}

moss_status moss_c_emit_kernel(moss_cgen *cg, const moss_node *n) {
  moss_kernel_cpu gpu;
  moss_kernel *k;
  printer p;
  moss_buf e;
  int i;
  size_t vbytes, bbytes;
  moss_arena_reset(cg->karena);
  /* Portable C: no machine facts, so the scalar loops any C compiler takes;
   * OpenCL: the GPU's shapes (moss_kernel_cpu.gpu). */
  gpu = cg->gpu;
  gpu.gpu = 1;
  MOSS_TRY(moss_kernel_lower(cg->ctx, cg->karena, n, cg->opencl ? &gpu : NULL, &k));
  memset(&p, 0, sizeof p);
  p.cg = cg;
  p.k = k;
  vbytes = sizeof *p.vname * (size_t)(k->nvars + 1);
  bbytes = sizeof *p.bname * (size_t)(k->nbufs + 1);
  p.vname = moss_arena_alloc(cg->karena, vbytes, 16);
  p.bname = moss_arena_alloc(cg->karena, bbytes, 16);
  if (!p.vname || !p.bname) return moss_fail(cg->ctx, MOSS_E_NOMEM, n, "C backend");
  names(&p);
  tables(&p);
  for (i = 0; i < k->nbufs; i++)
    if (k->bufs[i].kind == MOSS_KB_LOCAL)
      moss_c_line(cg, "%s %s[%lld];", ctype(k->bufs[i].dt), p.bname[i],
                  (long long)(k->bufs[i].numel > 0 ? k->bufs[i].numel : 1));
    else if (k->bufs[i].kind == MOSS_KB_SHARED && cg->opencl && cg->kscope) /* at the kernel's outermost scope */
      moss_buf_printf(cg->kscope, "  __local %s %s[%lld];\n", ctype(k->bufs[i].dt), p.bname[i],
                      (long long)k->bufs[i].numel);
    else if (k->bufs[i].kind == MOSS_KB_SHARED)
      return moss_fail(cg->ctx, MOSS_E_INTERNAL, n, "C backend: a work-group's shared buffer on a CPU");
    else if (k->bufs[i].kind == MOSS_KB_SCRATCH) /* |a|: the segment function's arena */
      moss_c_line(cg, "%s *%s = (%s *)(a + %lld);", ctype(k->bufs[i].dt), p.bname[i],
                  ctype(k->bufs[i].dt), (long long)(n->scratch_offset + k->bufs[i].offset));
  moss_buf_init(&e, cg->ctx);
  p.e = &e;
  if (cg->opencl) {
    const moss_kstmt *bodies[MOSS_KERNEL_MAX_LAUNCHES];
    cg->launches = moss_kernel_launches(cg->karena, k, bodies, MOSS_KERNEL_MAX_LAUNCHES);
    gpu_body(&p, bodies[cg->launch < cg->launches ? cg->launch : 0]);
  } else {
    stmts(&p, k->body);
  }
  moss_buf_deinit(&e);
  return p.st;
}
