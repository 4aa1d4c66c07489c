/* shader.c - kernel descriptions as Shader SPIR-V 1.3 (shader.h says why
 * moss writes SPIR-V itself).
 *
 * The mapping, one description node to a few instructions:
 * - Each launch (moss_kernel_launches) is a GLCompute entry point moss_k<i>.
 *   Its work-item is GlobalInvocationId.x + GlobalInvocationId.y * row (the
 *   push constants {items, row}); past |items| it does nothing. The
 *   work-item is cut into the iterations of the grid loops as the PTX
 *   backend does (moss_kernel_grid). The workgroup size is specialization
 *   constant 0, so the executor sizes it for the device, or sets it to T
 *   where the grid ends in a GROUP loop of T lanes (moss_kernel_group, in
 *   the launch word): that loop is then the last cut of the work-item, so
 *   lane g % T is the invocation's local index and the outer loops come
 *   from g / T, the work-group. The items are a multiple of T and the row
 *   a multiple of the workgroup size, so a work-group is wholly in or out
 *   of the `g < items` test and its barriers (OpControlBarrier, GLSL's
 *   barrier()) are reached by all its invocations.
 * - Buffers: a node's input or output is a typed view of its descriptor
 *   binding (set 0; the arena, the weights, a tensor of the step): one
 *   storage-buffer variable per binding and element type (aliases of one
 *   buffer, decorated Aliased), indexed from the value's offset in
 *   elements; kernel tables sit in the weights; local arrays are Function
 *   variables, a work-group's shared arrays Workgroup variables of the
 *   entry point. BOOL is a byte in memory.
 * - Control flow is structured: a loop is header (OpLoopMerge), test, body,
 *   continue; an IF a selection with its merge block. A variable with one
 *   LET and no SET, and a grid loop's variable, is the SSA value itself;
 *   the others are Function variables (the driver's compiler promotes them
 *   to registers).
 * - Index arithmetic (I64 in the description) is computed in 32 bits where
 *   a range analysis of the launch proves every value fits int32 ("index
 *   ranges" below), so a module whose indices fit needs no Int64.
 * - Math from GLSL.std.450, with C's special cases where GLSL leaves them
 *   undefined (pow) and what GLSL lacks built here: erf (Abramowitz and
 *   Stegun 7.1.26, absolute error under 1.5e-7), log1p, and exp, log and
 *   pow on float64 by range reduction around float32's. GLSL has its
 *   transcendental functions for float32 only: the others on float64 are
 *   computed in float32 (float32's accuracy, within the tolerance of
 *   DESIGN.md "Numerics"), but sinh and cosh, whose results float32 cannot
 *   hold: such a node stays on the CPU. */
#include <math.h>
#include <spirv/unified1/GLSL.std.450.h>
#include <spirv/unified1/spirv.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../../compiler/kernel/kernel.h"
#include "../gpu/check.h"
#include "../gpu/spirv.h"
#include "shader.h"

enum { CAP_INT8 = 1, CAP_INT16 = 2, CAP_INT64 = 4, CAP_FLOAT64 = 8, CAP_SB8 = 16, CAP_SB16 = 32, CAP_DOT = 64,
       CAP_FLOAT16 = 128 };

typedef struct uentry {
  uint32_t hash, id, nw;
  size_t at; /* in keys: op, then the operands but the result id */
} uentry;

typedef struct bview {
  int binding;
  moss_dtype mt;
  uint32_t var;
} bview;

/* A range of values [lo, hi] of an I64 expression or variable; lo > hi:
 * none (not reached yet). */
typedef struct rng {
  int64_t lo, hi;
} rng;

typedef struct vinfo {
  rng r;          /* I64 variables: every value the launch gives it */
  int lets, sets; /* LET statements; SET statements and loops */
  int ssa;        /* one LET, no SET: the value's id, no Function variable */
} vinfo;

typedef struct sg {
  moss_ctx *ctx;
  moss_status st;
  const moss_node *at;
  const moss_shader_layout *lay;
  moss_buf entries, modes, decos, globals, funcs, keys;
  uint32_t bound;
  uentry *ut;
  size_t utcap, utn;
  unsigned caps;
  uint32_t glsl, t_void, t_bool, t_u32, t_i32, t_fn, gid_var, pc_var, wgsize;
  bview *views;
  int nviews, cviews;
  /* the kernel being emitted */
  const moss_kernel *k;
  int group;       /* the launch's work-group size (moss_kernel_group; 0: none) */
  uint32_t *bvar;  /* per buffer: its variable */
  int64_t *bbase;  /* per buffer: its first element in the variable (storage buffers) */
  uint32_t *vvar;  /* per variable: its Function variable, or its value (vinfo.ssa) */
  vinfo *vi;       /* per variable */
  rng *br;         /* per buffer: the values of an I64 table (else all) */
  int n32;         /* the launch's ranges are known: I64 values that fit int32 are computed
                    * in 32 bits (nar) */
} sg;

/* ---- words ------------------------------------------------------------------------------ */

static void emit(moss_buf *b, uint32_t op, const uint32_t *w, int n) {
  uint32_t h = ((uint32_t)(n + 1) << 16) | op;
  moss_buf_put(b, &h, 4);
  if (n) moss_buf_put(b, w, (size_t)n * 4);
}
#define E(b, op, ...) \
  emit((b), (op), (const uint32_t[]){__VA_ARGS__}, (int)(sizeof((const uint32_t[]){__VA_ARGS__}) / 4))

/* A literal string as words (NUL-terminated, zero-padded); returns the count. */
static int str_words(const char *s, uint32_t *out, int max) {
  size_t n = strlen(s) + 1, i;
  int nw = (int)((n + 3) / 4);
  if (nw > max) return 0;
  memset(out, 0, (size_t)nw * 4);
  for (i = 0; i < n; i++) out[i / 4] |= (uint32_t)(unsigned char)s[i] << (8 * (i % 4));
  return nw;
}

static uint32_t fresh(sg *S) { return S->bound++; }

static void fail(sg *S, moss_status st, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  if (S->st != MOSS_OK) return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  S->st = moss_fail(S->ctx, st, S->at, "Vulkan backend: %s", msg);
}

/* The id of the type or constant instruction |op| with the operands
 * |w[0..n)| (its result id goes at operand |idpos|), made once. */
static uint32_t unique(sg *S, uint32_t op, int idpos, const uint32_t *w, int n, int *made) {
  uint32_t h = 2166136261u ^ op, ins[8];
  size_t i, slot;
  int j;
  for (j = 0; j < n; j++) h = (h ^ w[j]) * 16777619u;
  if (made) *made = 0;
  if (S->utn * 2 >= S->utcap) { /* grow and rehash */
    size_t nc = S->utcap ? S->utcap * 2 : 256, old = S->utcap;
    uentry *nt = moss_alloc(S->ctx, nc * sizeof *nt), *ot = S->ut;
    if (!nt) {
      fail(S, MOSS_E_NOMEM, "types");
      return 1;
    }
    memset(nt, 0, nc * sizeof *nt);
    for (i = 0; i < old; i++)
      if (ot[i].id) {
        for (slot = ot[i].hash & (nc - 1); nt[slot].id; slot = (slot + 1) & (nc - 1)) {
        }
        nt[slot] = ot[i];
      }
    moss_free(S->ctx, ot, old * sizeof *ot);
    S->ut = nt;
    S->utcap = nc;
  }
  for (slot = h & (S->utcap - 1); S->ut[slot].id; slot = (slot + 1) & (S->utcap - 1)) {
    const uentry *e = &S->ut[slot];
    const uint32_t *k = (const uint32_t *)(S->keys.data + e->at);
    if (e->hash == h && e->nw == (uint32_t)n + 1 && k[0] == op && (!n || !memcmp(k + 1, w, (size_t)n * 4))) return e->id;
  }
  S->ut[slot].hash = h;
  S->ut[slot].id = fresh(S);
  S->ut[slot].nw = (uint32_t)n + 1;
  S->ut[slot].at = S->keys.len;
  moss_buf_put(&S->keys, &op, 4);
  if (n) moss_buf_put(&S->keys, w, (size_t)n * 4);
  S->utn++;
  for (j = 0; j < idpos; j++) ins[j] = w[j];
  ins[idpos] = S->ut[slot].id;
  for (j = idpos; j < n; j++) ins[j + 1] = w[j];
  emit(&S->globals, op, ins, n + 1);
  if (made) *made = 1;
  return S->ut[slot].id;
}

/* ---- types and constants ---------------------------------------------------------------- */

static uint32_t t_int(sg *S, int bits, int sgn) {
  uint32_t w[2] = {(uint32_t)bits, (uint32_t)sgn};
  S->caps |= bits == 8 ? CAP_INT8 : bits == 16 ? CAP_INT16 : bits == 64 ? CAP_INT64 : 0;
  return unique(S, SpvOpTypeInt, 0, w, 2, NULL);
}

static uint32_t t_float(sg *S, int bits) {
  uint32_t w[1] = {(uint32_t)bits};
  if (bits == 64) S->caps |= CAP_FLOAT64;
  if (bits == 16) S->caps |= CAP_FLOAT16; /* a native float16 node's (moss_node.native_half) */
  return unique(S, SpvOpTypeFloat, 0, w, 1, NULL);
}

static int is_float(moss_dtype dt) { return moss_dtype_is_float(dt); }
static int is_signed(moss_dtype dt) { return moss_dtype_is_signed(dt); }

static uint32_t ty(sg *S, moss_dtype dt) {
  if (dt == MOSS_DT_BOOL) return S->t_bool;
  if (is_float(dt)) return t_float(S, (int)moss_dtype_size(dt) * 8);
  return t_int(S, (int)moss_dtype_size(dt) * 8, is_signed(dt));
}

/* The type of |dt| in memory (BOOL: a byte). */
static moss_dtype mem_dt(moss_dtype dt) { return dt == MOSS_DT_BOOL ? MOSS_DT_U8 : dt; }

static uint32_t t_ptr(sg *S, SpvStorageClass sc, uint32_t t) {
  uint32_t w[2] = {(uint32_t)sc, t};
  return unique(S, SpvOpTypePointer, 0, w, 2, NULL);
}

static uint32_t c_int(sg *S, moss_dtype dt, int64_t v) {
  uint32_t w[3];
  int bits = (int)moss_dtype_size(dt) * 8;
  w[0] = ty(S, dt);
  if (dt == MOSS_DT_BOOL) return unique(S, v ? SpvOpConstantTrue : SpvOpConstantFalse, 1, w, 1, NULL);
  if (bits == 64) {
    w[1] = (uint32_t)((uint64_t)v & 0xffffffffu);
    w[2] = (uint32_t)((uint64_t)v >> 32);
    return unique(S, SpvOpConstant, 1, w, 3, NULL);
  }
  if (bits < 32) { /* sign-extended for a signed type, zero-extended otherwise */
    uint32_t m = (1u << bits) - 1, u = (uint32_t)v & m;
    if (is_signed(dt) && (u >> (bits - 1))) u |= ~m;
    w[1] = u;
  } else {
    w[1] = (uint32_t)v;
  }
  return unique(S, SpvOpConstant, 1, w, 2, NULL);
}

static uint32_t c_float(sg *S, moss_dtype dt, double f) {
  uint32_t w[3];
  w[0] = ty(S, dt);
  if (dt == MOSS_DT_F64) {
    uint64_t b;
    memcpy(&b, &f, 8);
    w[1] = (uint32_t)(b & 0xffffffffu);
    w[2] = (uint32_t)(b >> 32);
    return unique(S, SpvOpConstant, 1, w, 3, NULL);
  } else if (dt == MOSS_DT_F16) { /* the low 16 bits of the word */
    w[1] = moss_half_from_f64(MOSS_DT_F16, f);
    return unique(S, SpvOpConstant, 1, w, 2, NULL);
  } else {
    float g = (float)f;
    memcpy(&w[1], &g, 4);
    return unique(S, SpvOpConstant, 1, w, 2, NULL);
  }
}

static uint32_t c_of(sg *S, moss_dtype dt, double v) {
  return is_float(dt) ? c_float(S, dt, v) : c_int(S, dt, (int64_t)v);
}

/* ---- index ranges ----------------------------------------------------------------------- */

/* Index arithmetic is I64 in the description; in SPIR-V 64-bit integers
 * need Int64, and lavapipe (and many GPUs) emulate their multiplies and
 * divisions. So each launch's I64 values get ranges, and an I64
 * expression whose value and operands provably fit int32 is computed in
 * 32 bits: the same values, as nothing leaves int32. A variable's range
 * holds every value the launch gives it (its loop's bounds and the value
 * after the last step, its LET and SETs), found by iterating to a fixed
 * point; a value the analysis does not follow (an int64 tensor's element,
 * a float cast) is "all", and what depends on it stays 64-bit. */

#define RNG_BIG ((int64_t)1 << 40) /* beyond this, arithmetic gives up: no overflow checks */

static const rng r_none = {1, 0}, r_all = {INT64_MIN, INT64_MAX};

static int r_empty(rng r) { return r.lo > r.hi; }
static int r_big(rng r) { return r.lo < -RNG_BIG || r.hi > RNG_BIG; }
static rng r_of(int64_t lo, int64_t hi) {
  rng r;
  r.lo = lo;
  r.hi = hi;
  return r;
}
static rng r_join(rng a, rng b) {
  if (r_empty(a)) return b;
  if (r_empty(b)) return a;
  return r_of(a.lo < b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi);
}
/* Whether every value of |r| fits int32 (none: trivially). */
static int r_fits(rng r) { return r_empty(r) || (r.lo >= INT32_MIN && r.hi <= INT32_MAX); }

/* The products of the corners, or all where one may leave 2^60. */
static rng r_mul(rng a, rng b) {
  int64_t c[4], lo, hi;
  int i;
  if (r_big(a) || r_big(b) ||
      fmax(fabs((double)a.lo), fabs((double)a.hi)) * fmax(fabs((double)b.lo), fabs((double)b.hi)) > 0x1p60)
    return r_all;
  c[0] = a.lo * b.lo;
  c[1] = a.lo * b.hi;
  c[2] = a.hi * b.lo;
  c[3] = a.hi * b.hi;
  for (lo = hi = c[0], i = 1; i < 4; i++) {
    lo = c[i] < lo ? c[i] : lo;
    hi = c[i] > hi ? c[i] : hi;
  }
  return r_of(lo, hi);
}

/* The values of an I64 table buffer (all for any other). */
static rng buf_range(sg *S, int buf) {
  const moss_kbuf *b = &S->k->bufs[buf];
  rng *r = &S->br[buf];
  if (r->lo == 0 && r->hi == -1) { /* not computed yet */
    *r = r_all;
    if (b->kind == MOSS_KB_TABLE && b->dt == MOSS_DT_I64 && b->data && b->numel > 0) {
      const int64_t *d = b->data;
      int64_t i;
      *r = r_of(d[0], d[0]);
      for (i = 1; i < b->numel; i++) *r = r_join(*r, r_of(d[i], d[i]));
    }
  }
  return *r;
}

/* The values of the I64 expression |x| (all for any other type). */
static rng xr(sg *S, const moss_kx *x) {
  rng a, b, c;
  int64_t lo, hi;
  if (x->dt != MOSS_DT_I64 || x->lanes != 1) return r_all;
  switch (x->op) {
  case MOSS_KX_CONST: return r_of(x->i, x->i);
  case MOSS_KX_VAR: return S->vi[x->var].r;
  case MOSS_KX_LOAD: return buf_range(S, x->buf);
  case MOSS_KX_LOAD_OR: return r_join(buf_range(S, x->buf), xr(S, x->a[2]));
  case MOSS_KX_CAST:
    if (x->a[0]->dt == MOSS_DT_BOOL) return r_of(0, 1);
    return moss_dtype_int_range(x->a[0]->dt, &lo, &hi) ? r_of(lo, hi) : r_all;
  case MOSS_KX_CALL:
    if (x->fn != MOSS_KFN_ABS) return r_all;
    a = xr(S, x->a[0]);
    if (r_empty(a)) return a;
    if (r_big(a)) return r_all;
    if (a.lo >= 0) return a;
    if (a.hi <= 0) return r_of(-a.hi, -a.lo);
    return r_of(0, -a.lo > a.hi ? -a.lo : a.hi);
  case MOSS_KX_SELECT: return r_join(xr(S, x->a[1]), xr(S, x->a[2]));
  case MOSS_KX_NEG: case MOSS_KX_BNOT:
    a = xr(S, x->a[0]);
    if (r_empty(a)) return a;
    if (r_big(a)) return r_all;
    return x->op == MOSS_KX_NEG ? r_of(-a.hi, -a.lo) : r_of(-a.hi - 1, -a.lo - 1);
  default: break;
  }
  if (x->nargs != 2) return r_all;
  a = xr(S, x->a[0]);
  b = xr(S, x->a[1]);
  if (r_empty(a) || r_empty(b)) return r_none;
  switch (x->op) {
  case MOSS_KX_ADD: return r_big(a) || r_big(b) ? r_all : r_of(a.lo + b.lo, a.hi + b.hi);
  case MOSS_KX_SUB: return r_big(a) || r_big(b) ? r_all : r_of(a.lo - b.hi, a.hi - b.lo);
  case MOSS_KX_MUL: return r_mul(a, b);
  case MOSS_KX_DIV: /* by a positive divisor: monotone in each operand */
    if (b.lo < 1) return r_all;
    lo = a.lo / b.lo < a.lo / b.hi ? a.lo / b.lo : a.lo / b.hi;
    hi = a.hi / b.lo > a.hi / b.hi ? a.hi / b.lo : a.hi / b.hi;
    return r_of(lo, hi);
  case MOSS_KX_REM: /* by a positive divisor: |a % b| < b, with a's sign */
    if (b.lo < 1) return r_all;
    c = r_of(a.lo < 0 ? (a.lo > 1 - b.hi ? a.lo : 1 - b.hi) : 0, a.hi > 0 ? (a.hi < b.hi - 1 ? a.hi : b.hi - 1) : 0);
    return c;
  case MOSS_KX_MIN: return r_of(a.lo < b.lo ? a.lo : b.lo, a.hi < b.hi ? a.hi : b.hi);
  case MOSS_KX_MAX: return r_of(a.lo > b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi);
  case MOSS_KX_BAND:
    if (a.lo >= 0 && b.lo >= 0) return r_of(0, a.hi < b.hi ? a.hi : b.hi);
    if (a.lo >= 0 || b.lo >= 0) return r_of(0, a.lo >= 0 ? a.hi : b.hi);
    return r_all;
  case MOSS_KX_BOR: case MOSS_KX_BXOR:
    if (a.lo < 0 || b.lo < 0 || r_big(a) || r_big(b)) return r_all;
    for (hi = 1; hi <= a.hi || hi <= b.hi; hi *= 2) {
    }
    return r_of(0, hi - 1);
  case MOSS_KX_SHL: case MOSS_KX_SHR: /* a >= 0 shifted by 0 .. 31 */
    if (a.lo < 0 || b.lo < 0 || b.hi > 31) return r_all;
    if (x->op == MOSS_KX_SHR) return r_of(a.lo >> b.hi, a.hi >> b.lo);
    return a.hi >= ((int64_t)1 << 31) ? r_all : r_of(a.lo << b.lo, a.hi << b.hi);
  default: return r_all;
  }
}

/* Whether the I64 expression |x| is computed in 32 bits: its value and
 * those of its I64 operands fit int32 (then 32-bit operations give the
 * same values). A load, a cast or a variable is converted where it fits. */
static int nar(sg *S, const moss_kx *x) {
  int i;
  if (!S->n32 || x->dt != MOSS_DT_I64 || x->lanes != 1 || !r_fits(xr(S, x))) return 0;
  switch (x->op) {
  case MOSS_KX_CONST: case MOSS_KX_VAR: case MOSS_KX_LOAD: case MOSS_KX_LOAD_OR: case MOSS_KX_CAST: return 1;
  case MOSS_KX_CALL: return x->fn == MOSS_KFN_ABS && r_fits(xr(S, x->a[0]));
  default:
    for (i = 0; i < x->nargs; i++)
      if (x->a[i]->dt == MOSS_DT_I64 && !r_fits(xr(S, x->a[i]))) return 0;
    return 1;
  }
}

/* The type |x| is computed in: I32 for an I64 expression in 32 bits. */
static moss_dtype cdt(sg *S, const moss_kx *x) { return nar(S, x) ? MOSS_DT_I32 : x->dt; }

/* The type variable |v| is held in. */
static moss_dtype vdt(sg *S, int v) {
  moss_dtype dt = S->k->vars[v].dt;
  return dt == MOSS_DT_I64 && S->n32 && r_fits(S->vi[v].r) ? MOSS_DT_I32 : dt;
}

/* Joins |r| into variable |v|'s range; from round 4 on a range that still
 * grows becomes all (so the rounds end). Returns whether it changed. */
static int var_join(sg *S, int v, rng r, int round) {
  rng o = S->vi[v].r, n = r_join(o, r);
  if (n.lo == o.lo && n.hi == o.hi) return 0;
  S->vi[v].r = round >= 4 ? r_all : n;
  return 1;
}

/* One round over the statements |s|: joins the values each statement gives
 * its variable (counting the LETs and SETs in round 0); returns whether a
 * range changed. */
static int walk(sg *S, const moss_kstmt *s, int round) {
  int ch = 0;
  for (; s; s = s->next) {
    switch (s->kind) {
    case MOSS_KS_LOOP: {
      rng lo = xr(S, s->lo), hi = xr(S, s->hi), r = r_none;
      if (round == 0) S->vi[s->var].sets++;
      if (S->k->vars[s->var].dt == MOSS_DT_I64 && !r_empty(lo)) {
        /* lo, then lo + k step below hi, and the first value past it: below hi + step */
        if (r_big(lo) || r_big(hi) || s->step < 1 || s->step > RNG_BIG) r = r_all;
        else if (r_empty(hi)) r = lo;
        else r = r_of(lo.lo, lo.hi > hi.hi - 1 + s->step ? lo.hi : hi.hi - 1 + s->step);
        ch |= var_join(S, s->var, r, round);
      }
      ch |= walk(S, s->body, round);
      break;
    }
    case MOSS_KS_LET: case MOSS_KS_SET:
      if (round == 0) {
        if (s->kind == MOSS_KS_LET) S->vi[s->var].lets++;
        else S->vi[s->var].sets++;
      }
      if (S->k->vars[s->var].dt == MOSS_DT_I64) ch |= var_join(S, s->var, xr(S, s->value), round);
      break;
    case MOSS_KS_IF:
      ch |= walk(S, s->body, round);
      ch |= walk(S, s->orelse, round);
      break;
    default: break;
    }
  }
  return ch;
}

/* The ranges of the launch |body|'s variables; S->n32 when they settle. */
static void ranges(sg *S, const moss_kstmt *body) {
  int round, i, rounds = S->k->nvars + 8; /* past round 4 a change makes a range all */
  for (i = 0; i < S->k->nvars; i++) {
    S->vi[i].r = r_none;
    S->vi[i].lets = S->vi[i].sets = S->vi[i].ssa = 0;
  }
  for (i = 0; i < S->k->nbufs; i++) S->br[i] = r_of(0, -1);
  S->n32 = 0;
  for (round = 0; round < rounds; round++)
    if (!walk(S, body, round)) {
      S->n32 = 1;
      break;
    }
}

/* ---- instructions in the function ------------------------------------------------------- */

static uint32_t op1(sg *S, uint32_t op, uint32_t t, uint32_t a) {
  uint32_t id = fresh(S);
  E(&S->funcs, op, t, id, a);
  return id;
}

static uint32_t op2(sg *S, uint32_t op, uint32_t t, uint32_t a, uint32_t b) {
  uint32_t id = fresh(S);
  E(&S->funcs, op, t, id, a, b);
  return id;
}

static uint32_t sel(sg *S, moss_dtype dt, uint32_t c, uint32_t a, uint32_t b) {
  uint32_t id = fresh(S);
  E(&S->funcs, SpvOpSelect, ty(S, dt), id, c, a, b);
  return id;
}

static uint32_t glsl1(sg *S, moss_dtype dt, uint32_t inst, uint32_t a) {
  uint32_t id = fresh(S);
  E(&S->funcs, SpvOpExtInst, ty(S, dt), id, S->glsl, inst, a);
  return id;
}

static uint32_t glsl2(sg *S, moss_dtype dt, uint32_t inst, uint32_t a, uint32_t b) {
  uint32_t id = fresh(S);
  E(&S->funcs, SpvOpExtInst, ty(S, dt), id, S->glsl, inst, a, b);
  return id;
}

static uint32_t label(sg *S, uint32_t id) {
  E(&S->funcs, SpvOpLabel, id);
  return id;
}

/* ---- memory ----------------------------------------------------------------------------- */

/* The storage-buffer variable viewing |binding| as elements of |mt|. */
static uint32_t view(sg *S, int binding, moss_dtype mt) {
  uint32_t et, rta, blk, var;
  int i, made;
  size_t es = moss_dtype_size(mt);
  for (i = 0; i < S->nviews; i++)
    if (S->views[i].binding == binding && S->views[i].mt == mt) return S->views[i].var;
  if (S->nviews == S->cviews) {
    int nc = S->cviews ? 2 * S->cviews : 16;
    bview *nv = moss_alloc(S->ctx, (size_t)nc * sizeof *nv);
    if (!nv) {
      fail(S, MOSS_E_NOMEM, "buffers");
      return 1;
    }
    if (S->nviews) memcpy(nv, S->views, (size_t)S->nviews * sizeof *nv);
    moss_free(S->ctx, S->views, (size_t)S->cviews * sizeof *nv);
    S->views = nv;
    S->cviews = nc;
  }
  et = ty(S, mt);
  if (es == 1) S->caps |= CAP_SB8;
  if (es == 2) S->caps |= CAP_SB16;
  rta = unique(S, SpvOpTypeRuntimeArray, 0, &et, 1, &made);
  if (made) E(&S->decos, SpvOpDecorate, rta, SpvDecorationArrayStride, (uint32_t)es);
  blk = unique(S, SpvOpTypeStruct, 0, &rta, 1, &made);
  if (made) {
    E(&S->decos, SpvOpDecorate, blk, SpvDecorationBlock);
    E(&S->decos, SpvOpMemberDecorate, blk, 0, SpvDecorationOffset, 0);
  }
  var = fresh(S);
  E(&S->globals, SpvOpVariable, t_ptr(S, SpvStorageClassStorageBuffer, blk), var, SpvStorageClassStorageBuffer);
  E(&S->decos, SpvOpDecorate, var, SpvDecorationDescriptorSet, 0);
  E(&S->decos, SpvOpDecorate, var, SpvDecorationBinding, (uint32_t)binding);
  E(&S->decos, SpvOpDecorate, var, SpvDecorationAliased);
  S->views[S->nviews].binding = binding;
  S->views[S->nviews].mt = mt;
  S->views[S->nviews++].var = var;
  return var;
}

/* A pointer to element |i32| (an I32 id: indices fit 31 bits) of buffer
 * |buf|. */
static uint32_t elem_ptr(sg *S, int buf, uint32_t i32) {
  const moss_kbuf *b = &S->k->bufs[buf];
  moss_dtype mt = mem_dt(b->dt);
  uint32_t id = fresh(S);
  if (b->kind == MOSS_KB_LOCAL || b->kind == MOSS_KB_SHARED) {
    SpvStorageClass sc = b->kind == MOSS_KB_LOCAL ? SpvStorageClassFunction : SpvStorageClassWorkgroup;
    E(&S->funcs, SpvOpAccessChain, t_ptr(S, sc, ty(S, mt)), id, S->bvar[buf], i32);
    return id;
  }
  if (S->bbase[buf]) i32 = op2(S, SpvOpIAdd, S->t_i32, i32, c_int(S, MOSS_DT_I32, S->bbase[buf]));
  E(&S->funcs, SpvOpAccessChain, t_ptr(S, SpvStorageClassStorageBuffer, ty(S, mt)), id, S->bvar[buf],
    c_int(S, MOSS_DT_U32, 0), i32);
  return id;
}

static uint32_t load(sg *S, int buf, uint32_t index) {
  moss_dtype dt = S->k->bufs[buf].dt, mt = mem_dt(dt);
  uint32_t v = op1(S, SpvOpLoad, ty(S, mt), elem_ptr(S, buf, index));
  if (dt == MOSS_DT_BOOL) v = op2(S, SpvOpINotEqual, S->t_bool, v, c_int(S, MOSS_DT_U8, 0));
  return v;
}

static void store(sg *S, int buf, uint32_t index, uint32_t v) {
  moss_dtype dt = S->k->bufs[buf].dt;
  uint32_t p = elem_ptr(S, buf, index);
  if (dt == MOSS_DT_BOOL) v = sel(S, MOSS_DT_U8, v, c_int(S, MOSS_DT_U8, 1), c_int(S, MOSS_DT_U8, 0));
  E(&S->funcs, SpvOpStore, p, v);
}

/* ---- expressions ------------------------------------------------------------------------ */

static uint32_t expr(sg *S, const moss_kx *x);

/* |x| as the type |want|: the type it is computed in (cdt), or for an I64
 * expression I32 (where its value fits, or as an index, which fits 31
 * bits) or I64. */
static uint32_t opnd(sg *S, const moss_kx *x, moss_dtype want) {
  moss_dtype have = cdt(S, x);
  uint32_t v = expr(S, x);
  return have == want ? v : op1(S, SpvOpSConvert, ty(S, want), v);
}

static uint32_t cast(sg *S, uint32_t v, moss_dtype from, moss_dtype to) {
  uint32_t t = ty(S, to);
  size_t wf = moss_dtype_size(from), wt = moss_dtype_size(to);
  if (from == to) return v;
  if (to == MOSS_DT_BOOL)
    return op2(S, is_float(from) ? SpvOpFUnordNotEqual : SpvOpINotEqual, S->t_bool, v, c_of(S, from, 0));
  if (from == MOSS_DT_BOOL) return sel(S, to, v, c_of(S, to, 1), c_of(S, to, 0));
  if (is_float(from) && is_float(to)) return op1(S, SpvOpFConvert, t, v);
  if (is_float(from)) return op1(S, is_signed(to) ? SpvOpConvertFToS : SpvOpConvertFToU, t, v);
  if (is_float(to)) return op1(S, is_signed(from) ? SpvOpConvertSToF : SpvOpConvertUToF, t, v);
  if (wf == wt) return op1(S, SpvOpBitcast, t, v);
  if (is_signed(from)) return op1(S, SpvOpSConvert, t, v);
  v = op1(S, SpvOpUConvert, t_int(S, (int)wt * 8, 0), v);
  return is_signed(to) ? op1(S, SpvOpBitcast, t, v) : v;
}

static uint32_t cmp(sg *S, moss_kx_op op, moss_dtype dt, uint32_t a, uint32_t b) {
  uint32_t o;
  if (dt == MOSS_DT_BOOL) {
    if (op == MOSS_KX_EQ || op == MOSS_KX_NE)
      return op2(S, op == MOSS_KX_EQ ? SpvOpLogicalEqual : SpvOpLogicalNotEqual, S->t_bool, a, b);
    a = cast(S, a, dt, MOSS_DT_U8);
    b = cast(S, b, dt, MOSS_DT_U8);
    dt = MOSS_DT_U8;
  }
  if (is_float(dt)) {
    switch (op) {
    case MOSS_KX_EQ: o = SpvOpFOrdEqual; break;
    case MOSS_KX_NE: o = SpvOpFUnordNotEqual; break;
    case MOSS_KX_LT: o = SpvOpFOrdLessThan; break;
    case MOSS_KX_LE: o = SpvOpFOrdLessThanEqual; break;
    case MOSS_KX_GT: o = SpvOpFOrdGreaterThan; break;
    default: o = SpvOpFOrdGreaterThanEqual; break;
    }
  } else {
    int s = is_signed(dt);
    switch (op) {
    case MOSS_KX_EQ: o = SpvOpIEqual; break;
    case MOSS_KX_NE: o = SpvOpINotEqual; break;
    case MOSS_KX_LT: o = s ? SpvOpSLessThan : SpvOpULessThan; break;
    case MOSS_KX_LE: o = s ? SpvOpSLessThanEqual : SpvOpULessThanEqual; break;
    case MOSS_KX_GT: o = s ? SpvOpSGreaterThan : SpvOpUGreaterThan; break;
    default: o = s ? SpvOpSGreaterThanEqual : SpvOpUGreaterThanEqual; break;
    }
  }
  return op2(S, o, S->t_bool, a, b);
}

/* a / b or a % b on integers, 0 where b is 0 (unless |nonzero|: b never is). */
static uint32_t int_div(sg *S, moss_kx_op op, moss_dtype dt, uint32_t a, uint32_t b, int nonzero) {
  uint32_t zero = c_int(S, dt, 0), isz = 0, q, safe = b, o;
  if (!nonzero) {
    isz = op2(S, SpvOpIEqual, S->t_bool, b, zero);
    safe = sel(S, dt, isz, c_int(S, dt, 1), b);
  }
  if (op == MOSS_KX_DIV) o = is_signed(dt) ? SpvOpSDiv : SpvOpUDiv;
  else o = is_signed(dt) ? SpvOpSRem : SpvOpUMod;
  q = op2(S, o, ty(S, dt), a, safe);
  return nonzero ? q : sel(S, dt, isz, zero, q);
}

static uint32_t binary(sg *S, const moss_kx *x) {
  moss_dtype dt = x->a[0]->dt;
  uint32_t a, b, t = ty(S, cdt(S, x));
  int f = is_float(dt), bl = dt == MOSS_DT_BOOL, nz;
  if (dt == MOSS_DT_I64) /* the result's width, or for a comparison 32 bits where both fit */
    dt = x->dt == MOSS_DT_I64                                          ? cdt(S, x)
         : S->n32 && r_fits(xr(S, x->a[0])) && r_fits(xr(S, x->a[1])) ? MOSS_DT_I32
                                                                        : MOSS_DT_I64;
  a = opnd(S, x->a[0], dt);
  b = opnd(S, x->a[1], dt);
  nz = (x->a[1]->op == MOSS_KX_CONST && x->a[1]->i != 0) || xr(S, x->a[1]).lo >= 1;
  switch (x->op) {
  case MOSS_KX_ADD: return op2(S, f ? SpvOpFAdd : SpvOpIAdd, t, a, b);
  case MOSS_KX_SUB: return op2(S, f ? SpvOpFSub : SpvOpISub, t, a, b);
  case MOSS_KX_MUL: return op2(S, f ? SpvOpFMul : SpvOpIMul, t, a, b);
  case MOSS_KX_DIV: return f ? op2(S, SpvOpFDiv, t, a, b) : int_div(S, x->op, dt, a, b, nz);
  case MOSS_KX_REM: return f ? op2(S, SpvOpFRem, t, a, b) : int_div(S, x->op, dt, a, b, nz);
  case MOSS_KX_MIN: return sel(S, dt, cmp(S, MOSS_KX_LT, dt, a, b), a, b);
  case MOSS_KX_MAX: return sel(S, dt, cmp(S, MOSS_KX_GT, dt, a, b), a, b);
  case MOSS_KX_BAND: return op2(S, bl ? SpvOpLogicalAnd : SpvOpBitwiseAnd, t, a, b);
  case MOSS_KX_BOR: return op2(S, bl ? SpvOpLogicalOr : SpvOpBitwiseOr, t, a, b);
  case MOSS_KX_BXOR: return op2(S, bl ? SpvOpLogicalNotEqual : SpvOpBitwiseXor, t, a, b);
  case MOSS_KX_SHL: return op2(S, SpvOpShiftLeftLogical, t, a, b);
  case MOSS_KX_SHR: return op2(S, is_signed(dt) ? SpvOpShiftRightArithmetic : SpvOpShiftRightLogical, t, a, b);
  case MOSS_KX_LAND: return op2(S, SpvOpLogicalAnd, S->t_bool, a, b);
  case MOSS_KX_LOR: return op2(S, SpvOpLogicalOr, S->t_bool, a, b);
  case MOSS_KX_EQ: case MOSS_KX_NE: case MOSS_KX_LT: case MOSS_KX_LE: case MOSS_KX_GT: case MOSS_KX_GE:
    return cmp(S, x->op, dt, a, b);
  default:
    fail(S, MOSS_E_INTERNAL, "expression operator %d", (int)x->op);
    return a;
  }
}

/* round(acc * M) of docs/numerics-int8.md, as the LLVM backend builds it
 * (requant_build): one arithmetic shift with ties to even, clamped to
 * int32. */
static uint32_t requant(sg *S, uint32_t acc, uint32_t mult, uint32_t shift) {
  uint32_t L = t_int(S, 64, 1), p, s, sh, fl, odd, half, r, lo, hi;
#define K(v) c_int(S, MOSS_DT_I64, (v))
#define LT(a, b) op2(S, SpvOpSLessThan, S->t_bool, (a), (b))
#define GT(a, b) op2(S, SpvOpSGreaterThan, S->t_bool, (a), (b))
  p = op2(S, SpvOpIMul, L, op1(S, SpvOpSConvert, L, acc), op1(S, SpvOpSConvert, L, mult));
  s = op2(S, SpvOpIAdd, L, op1(S, SpvOpSConvert, L, shift), K(31));
  sh = sel(S, MOSS_DT_I64, LT(s, K(1)), K(1), s);
  sh = sel(S, MOSS_DT_I64, GT(sh, K(62)), K(62), sh);
  fl = op2(S, SpvOpShiftRightArithmetic, L, p, sh);
  odd = op2(S, SpvOpBitwiseAnd, L, fl, K(1));
  half = op2(S, SpvOpShiftLeftLogical, L, K(1), op2(S, SpvOpISub, L, sh, K(1)));
  r = op2(S, SpvOpIAdd, L, op2(S, SpvOpIAdd, L, p, op2(S, SpvOpISub, L, half, K(1))), odd);
  r = op2(S, SpvOpShiftRightArithmetic, L, r, sh);
  r = sel(S, MOSS_DT_I64, op2(S, SpvOpSLessThanEqual, S->t_bool, s, K(0)), p, r);
  r = sel(S, MOSS_DT_I64, op2(S, SpvOpSGreaterThanEqual, S->t_bool, s, K(63)), K(0), r);
  lo = K(INT32_MIN);
  hi = K(INT32_MAX);
  r = sel(S, MOSS_DT_I64, LT(r, lo), lo, r);
  r = sel(S, MOSS_DT_I64, GT(r, hi), hi, r);
#undef K
#undef LT
#undef GT
  return op1(S, SpvOpSConvert, S->t_i32, r);
}

/* 2^k for an I64 id |k| with |k| <= 1022, as a double built from its bits. */
static uint32_t pow2_64(sg *S, uint32_t k) {
  uint32_t tl = t_int(S, 64, 1);
  uint32_t b = op2(S, SpvOpShiftLeftLogical, tl, op2(S, SpvOpIAdd, tl, k, c_int(S, MOSS_DT_I64, 1023)),
                   c_int(S, MOSS_DT_I64, 52));
  return op1(S, SpvOpBitcast, ty(S, MOSS_DT_F64), b);
}

/* exp of |dt|: GLSL's Exp on float32; on float64 (GLSL has none) e^r
 * 2^k with k = rint(x / ln 2) and r = x - k ln 2 in float32, as the PTX
 * backend does (float32's accuracy, float64's range). */
static uint32_t c_exp(sg *S, moss_dtype dt, uint32_t x) {
  const moss_dtype D = MOSS_DT_F64;
  uint32_t td, tl, k, r, e, ki, k1;
  if (dt != D) return glsl1(S, dt, GLSLstd450Exp, x);
  td = ty(S, D);
  tl = t_int(S, 64, 1);
  k = glsl1(S, D, GLSLstd450RoundEven, op2(S, SpvOpFMul, td, x, c_float(S, D, 1.4426950408889634)));
  k = glsl2(S, D, GLSLstd450NMin, k, c_float(S, D, 1100));
  k = glsl2(S, D, GLSLstd450NMax, k, c_float(S, D, -1100));
  r = op2(S, SpvOpFSub, td, x, op2(S, SpvOpFMul, td, k, c_float(S, D, 0.6931471805599453)));
  e = op1(S, SpvOpFConvert, td, glsl1(S, MOSS_DT_F32, GLSLstd450Exp, op1(S, SpvOpFConvert, ty(S, MOSS_DT_F32), r)));
  ki = op1(S, SpvOpConvertFToS, tl, k);
  k1 = op2(S, SpvOpShiftRightArithmetic, tl, ki, c_int(S, MOSS_DT_I64, 1));
  e = op2(S, SpvOpFMul, td, op2(S, SpvOpFMul, td, e, pow2_64(S, k1)), pow2_64(S, op2(S, SpvOpISub, tl, ki, k1)));
  return sel(S, D, op1(S, SpvOpIsNan, S->t_bool, x), x, e);
}

/* log of |dt|: GLSL's Log on float32; on float64, the exponent's multiple
 * of ln 2 plus the float32 log of the mantissa (zeros, subnormals,
 * negatives, infinities and NaN through float32's log). */
static uint32_t c_log(sg *S, moss_dtype dt, uint32_t x) {
  const moss_dtype D = MOSS_DT_F64, L = MOSS_DT_I64;
  uint32_t td, tf, tb = S->t_bool, tl, bits, eb, m, normal, rn, ro;
  if (dt != D) return glsl1(S, dt, GLSLstd450Log, x);
  td = ty(S, D);
  tf = ty(S, MOSS_DT_F32);
  tl = t_int(S, 64, 1);
  bits = op1(S, SpvOpBitcast, tl, x);
  eb = op2(S, SpvOpBitwiseAnd, tl, op2(S, SpvOpShiftRightLogical, tl, bits, c_int(S, L, 52)),
           c_int(S, L, 0x7ff));
  m = op2(S, SpvOpBitwiseOr, tl, op2(S, SpvOpBitwiseAnd, tl, bits, c_int(S, L, 0x000FFFFFFFFFFFFFLL)),
          c_int(S, L, 0x3FF0000000000000LL));
  m = op1(S, SpvOpBitcast, td, m);
  normal = op2(S, SpvOpLogicalAnd, tb, op2(S, SpvOpINotEqual, tb, eb, c_int(S, L, 0)),
               op2(S, SpvOpINotEqual, tb, eb, c_int(S, L, 0x7ff)));
  normal = op2(S, SpvOpLogicalAnd, tb, normal, op2(S, SpvOpFOrdGreaterThan, tb, x, c_float(S, D, 0)));
  rn = op1(S, SpvOpConvertSToF, td, op2(S, SpvOpISub, tl, eb, c_int(S, L, 1023)));
  rn = op2(S, SpvOpFAdd, td, op2(S, SpvOpFMul, td, rn, c_float(S, D, 0.6931471805599453)),
           op1(S, SpvOpFConvert, td, glsl1(S, MOSS_DT_F32, GLSLstd450Log, op1(S, SpvOpFConvert, tf, m))));
  ro = op1(S, SpvOpFConvert, td, glsl1(S, MOSS_DT_F32, GLSLstd450Log, op1(S, SpvOpFConvert, tf, x)));
  return sel(S, D, normal, rn, ro);
}

/* C's pow: on float32 from GLSL's Pow, which leaves x < 0, and x = 0 with
 * y <= 0, undefined; on float64 exp(y log |x|); C's special cases. */
static uint32_t c_pow(sg *S, moss_dtype F, uint32_t x, uint32_t y) {
  uint32_t tb = S->t_bool, tf = ty(S, F), zero = c_float(S, F, 0), one = c_float(S, F, 1);
  uint32_t ax = glsl1(S, F, GLSLstd450FAbs, x), r, yint, yodd, xz, neg;
  if (F == MOSS_DT_F64) r = c_exp(S, F, op2(S, SpvOpFMul, tf, y, c_log(S, F, ax)));
  else r = glsl2(S, F, GLSLstd450Pow, ax, y);
  yint = op2(S, SpvOpFOrdEqual, tb, glsl1(S, F, GLSLstd450Floor, y), y);
  yodd = op2(S, SpvOpLogicalAnd, tb, yint,
             op2(S, SpvOpFOrdEqual, tb, glsl1(S, F, GLSLstd450FAbs, op2(S, SpvOpFRem, tf, y, c_float(S, F, 2))), one));
  xz = op2(S, SpvOpFOrdEqual, tb, x, zero);
  neg = op2(S, SpvOpLogicalOr, tb, op2(S, SpvOpFOrdLessThan, tb, x, zero),
            op2(S, SpvOpLogicalAnd, tb, xz, op2(S, SpvOpFOrdLessThan, tb, op2(S, SpvOpFDiv, tf, one, x), zero)));
  r = sel(S, F, xz, sel(S, F, op2(S, SpvOpFOrdLessThan, tb, y, zero), c_float(S, F, INFINITY), zero), r);
  r = sel(S, F, op2(S, SpvOpLogicalAnd, tb, neg, yodd), op1(S, SpvOpFNegate, tf, r), r);
  r = sel(S, F, op2(S, SpvOpLogicalAnd, tb, op2(S, SpvOpFOrdLessThan, tb, x, zero), op1(S, SpvOpLogicalNot, tb, yint)),
          c_float(S, F, NAN), r);
  return sel(S, F,
             op2(S, SpvOpLogicalOr, tb, op2(S, SpvOpFOrdEqual, tb, y, zero), op2(S, SpvOpFOrdEqual, tb, x, one)), one,
             r);
}

/* rint (ties to even), exactly, from trunc: the fraction d = x - t is
 * exact, a whole step away from t beyond a half, at a half only to an even
 * neighbour (lavapipe's RoundEven on float64 was not). */
static uint32_t c_rint(sg *S, moss_dtype F, uint32_t x) {
  uint32_t tf = ty(S, F), tb = S->t_bool, t = glsl1(S, F, GLSLstd450Trunc, x), d = op2(S, SpvOpFSub, tf, x, t);
  uint32_t ad = glsl1(S, F, GLSLstd450FAbs, d), half = c_float(S, F, 0.5), step = glsl1(S, F, GLSLstd450FSign, d);
  uint32_t odd = op2(S, SpvOpFOrdNotEqual, tb, op2(S, SpvOpFRem, tf, t, c_float(S, F, 2)), c_float(S, F, 0));
  uint32_t away = op2(S, SpvOpLogicalOr, tb, op2(S, SpvOpFOrdGreaterThan, tb, ad, half),
                      op2(S, SpvOpLogicalAnd, tb, op2(S, SpvOpFOrdEqual, tb, ad, half), odd));
  return sel(S, F, away, op2(S, SpvOpFAdd, tf, t, step), t);
}

/* asin and acos from atan and sqrt (lavapipe's own are off by 2e-4):
 * asin x = atan(x / sqrt((1 - x)(1 + x))), acos x = 2 atan(sqrt((1 - x) /
 * (1 + x))); NaN outside [-1, 1]. */
static uint32_t c_asin_acos(sg *S, moss_dtype F, moss_kfn fn, uint32_t x) {
  uint32_t tf = ty(S, F), one = c_float(S, F, 1), a = op2(S, SpvOpFSub, tf, one, x), b = op2(S, SpvOpFAdd, tf, one, x);
  if (fn == MOSS_KFN_ASIN)
    return glsl1(S, F, GLSLstd450Atan, op2(S, SpvOpFDiv, tf, x, glsl1(S, F, GLSLstd450Sqrt, op2(S, SpvOpFMul, tf, a, b))));
  return op2(S, SpvOpFMul, tf, c_float(S, F, 2),
             glsl1(S, F, GLSLstd450Atan, glsl1(S, F, GLSLstd450Sqrt, op2(S, SpvOpFDiv, tf, a, b))));
}

/* erf: Abramowitz and Stegun 7.1.26. */
static uint32_t c_erf(sg *S, moss_dtype F, uint32_t x) {
  static const double a[5] = {0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429};
  uint32_t tf = ty(S, F), ax = glsl1(S, F, GLSLstd450FAbs, x), t, p, y;
  int i;
  t = op2(S, SpvOpFDiv, tf, c_float(S, F, 1),
          op2(S, SpvOpFAdd, tf, c_float(S, F, 1), op2(S, SpvOpFMul, tf, c_float(S, F, 0.3275911), ax)));
  p = c_float(S, F, a[4]);
  for (i = 3; i >= 0; i--) p = op2(S, SpvOpFAdd, tf, op2(S, SpvOpFMul, tf, p, t), c_float(S, F, a[i]));
  p = op2(S, SpvOpFMul, tf, p, t);
  y = op2(S, SpvOpFSub, tf, c_float(S, F, 1),
          op2(S, SpvOpFMul, tf, p, c_exp(S, F, op1(S, SpvOpFNegate, tf, op2(S, SpvOpFMul, tf, x, x)))));
  return sel(S, F, op2(S, SpvOpFOrdLessThan, S->t_bool, x, c_float(S, F, 0)), op1(S, SpvOpFNegate, tf, y), y);
}

/* log1p: log(u) * x / (u - 1) with u = 1 + x (exact where u rounds to
 * 1: x). */
static uint32_t c_log1p(sg *S, moss_dtype F, uint32_t x) {
  uint32_t tf = ty(S, F), tb = S->t_bool, one = c_float(S, F, 1), u = op2(S, SpvOpFAdd, tf, one, x), r;
  r = op2(S, SpvOpFDiv, tf, op2(S, SpvOpFMul, tf, c_log(S, F, u), x), op2(S, SpvOpFSub, tf, u, one));
  r = sel(S, F, op2(S, SpvOpFOrdEqual, tb, u, one), x, r);
  return sel(S, F, op2(S, SpvOpFOrdEqual, tb, x, c_float(S, F, INFINITY)), x, r);
}

/* The GLSL.std.450 instruction of a float32-only intrinsic; 0: none. */
static uint32_t glsl_f32(moss_kfn fn) {
  switch (fn) {
  case MOSS_KFN_TANH: return GLSLstd450Tanh;
  case MOSS_KFN_SIN: return GLSLstd450Sin;
  case MOSS_KFN_COS: return GLSLstd450Cos;
  case MOSS_KFN_TAN: return GLSLstd450Tan;
  case MOSS_KFN_ASIN: return GLSLstd450Asin;
  case MOSS_KFN_ACOS: return GLSLstd450Acos;
  case MOSS_KFN_ATAN: return GLSLstd450Atan;
  case MOSS_KFN_SINH: return GLSLstd450Sinh;
  case MOSS_KFN_COSH: return GLSLstd450Cosh;
  case MOSS_KFN_ASINH: return GLSLstd450Asinh;
  case MOSS_KFN_ACOSH: return GLSLstd450Acosh;
  case MOSS_KFN_ATANH: return GLSLstd450Atanh;
  default: return 0;
  }
}

/* The GLSL.std.450 instruction of an intrinsic on any float width; 0: none. */
static uint32_t glsl_any(moss_kfn fn) {
  switch (fn) {
  case MOSS_KFN_SQRT: return GLSLstd450Sqrt;
  case MOSS_KFN_FLOOR: return GLSLstd450Floor;
  case MOSS_KFN_CEIL: return GLSLstd450Ceil;
  case MOSS_KFN_TRUNC: return GLSLstd450Trunc;
  case MOSS_KFN_FABS: return GLSLstd450FAbs;
  case MOSS_KFN_FMIN: return GLSLstd450NMin;
  case MOSS_KFN_FMAX: return GLSLstd450NMax;
  default: return 0;
  }
}

static uint32_t call(sg *S, const moss_kx *x) {
  uint32_t a[3] = {0, 0, 0}, g;
  moss_dtype at = cdt(S, x->a[0]), rt = cdt(S, x);
  int i;
  if (x->fn == MOSS_KFN_BITS) at = x->a[0]->dt; /* the bits of the type */
  if (x->fn == MOSS_KFN_ABS) at = rt;
  for (i = 0; i < x->nargs; i++) a[i] = opnd(S, x->a[i], i ? cdt(S, x->a[i]) : at);
  if (x->fn == MOSS_KFN_ASIN || x->fn == MOSS_KFN_ACOS) {
    if (x->dt == MOSS_DT_F32) return c_asin_acos(S, x->dt, x->fn, a[0]);
    return op1(S, SpvOpFConvert, ty(S, x->dt),
               c_asin_acos(S, MOSS_DT_F32, x->fn, op1(S, SpvOpFConvert, ty(S, MOSS_DT_F32), a[0])));
  }
  if ((g = glsl_f32(x->fn)) != 0) {
    if (x->dt != MOSS_DT_F64) return glsl1(S, x->dt, g, a[0]);
    /* float64: in float32 (expr_has takes only functions whose results
     * float32 holds) */
    return op1(S, SpvOpFConvert, ty(S, x->dt),
               glsl1(S, MOSS_DT_F32, g, op1(S, SpvOpFConvert, ty(S, MOSS_DT_F32), a[0])));
  }
  if ((g = glsl_any(x->fn)) != 0)
    return x->nargs == 2 ? glsl2(S, x->dt, g, a[0], a[1]) : glsl1(S, x->dt, g, a[0]);
  switch (x->fn) {
  case MOSS_KFN_RINT: return c_rint(S, x->dt, a[0]);
  case MOSS_KFN_EXP: return c_exp(S, x->dt, a[0]);
  case MOSS_KFN_LOG: return c_log(S, x->dt, a[0]);
  case MOSS_KFN_ERF: return c_erf(S, x->dt, a[0]);
  case MOSS_KFN_LOG1P: return c_log1p(S, x->dt, a[0]);
  case MOSS_KFN_POW: return c_pow(S, x->dt, a[0], a[1]);
  case MOSS_KFN_FMOD: return op2(S, SpvOpFRem, ty(S, x->dt), a[0], a[1]);
  case MOSS_KFN_FMA: {
    uint32_t id = fresh(S);
    E(&S->funcs, SpvOpExtInst, ty(S, x->dt), id, S->glsl, GLSLstd450Fma, a[0], a[1], a[2]);
    return id;
  }
  case MOSS_KFN_ISNAN: return op1(S, SpvOpIsNan, S->t_bool, a[0]);
  case MOSS_KFN_ISINF: return op1(S, SpvOpIsInf, S->t_bool, a[0]);
  case MOSS_KFN_ABS:
    if (is_float(rt)) return glsl1(S, rt, GLSLstd450FAbs, a[0]);
    if (!is_signed(rt)) return a[0];
    return sel(S, rt, cmp(S, MOSS_KX_LT, rt, a[0], c_int(S, rt, 0)), op1(S, SpvOpSNegate, ty(S, rt), a[0]), a[0]);
  case MOSS_KFN_SAT: {
    int64_t lo, hi;
    uint32_t w;
    moss_dtype wt;
    if (!moss_dtype_int_range(x->dt, &lo, &hi)) return cast(S, a[0], at, x->dt);
    /* clamped in int32 where the value and the range fit it, else int64
     * (also: lavapipe of Mesa 22.3 got the int64 clamp of an int32 value
     * narrowed to 8 bits wrong: 252 for -4) */
    wt = moss_dtype_size(at) < 4 || at == MOSS_DT_I32 ? (x->dt == MOSS_DT_U32 ? MOSS_DT_I64 : MOSS_DT_I32) : MOSS_DT_I64;
    w = cast(S, a[0], at, wt);
    w = sel(S, wt, cmp(S, MOSS_KX_LT, wt, w, c_int(S, wt, lo)), c_int(S, wt, lo), w);
    w = sel(S, wt, cmp(S, MOSS_KX_GT, wt, w, c_int(S, wt, hi)), c_int(S, wt, hi), w);
    return cast(S, w, wt, x->dt);
  }
  case MOSS_KFN_REQUANT: return requant(S, a[0], a[1], a[2]);
  case MOSS_KFN_BITS: return op1(S, SpvOpBitcast, ty(S, x->dt), a[0]);
  case MOSS_KFN_DOT4:
  case MOSS_KFN_DOT4S: { /* acc + the packed byte dot product (SPV_KHR_integer_dot_product):
                          * OpSDot of two signed words, OpSUDot of the signed w and the unsigned a */
    uint32_t ti = ty(S, MOSS_DT_I32), id = fresh(S);
    S->caps |= CAP_DOT;
    if (x->fn == MOSS_KFN_DOT4S)
      E(&S->funcs, SpvOpSDotKHR, ti, id, a[1], a[2], SpvPackedVectorFormatPackedVectorFormat4x8BitKHR);
    else
      E(&S->funcs, SpvOpSUDotKHR, ti, id, a[2], a[1], SpvPackedVectorFormatPackedVectorFormat4x8BitKHR);
    return op2(S, SpvOpIAdd, ti, a[0], id);
  }
  default:
    fail(S, MOSS_E_INTERNAL, "intrinsic %s", moss_kfn_name(x->fn));
    return a[0];
  }
}

static uint32_t expr(sg *S, const moss_kx *x) {
  if (S->st != MOSS_OK) return 1;
  switch (x->op) {
  case MOSS_KX_CONST: return is_float(x->dt) ? c_float(S, x->dt, x->f) : c_int(S, cdt(S, x), x->i);
  case MOSS_KX_VAR:
    return S->vi[x->var].ssa ? S->vvar[x->var] : op1(S, SpvOpLoad, ty(S, vdt(S, x->var)), S->vvar[x->var]);
  case MOSS_KX_LOAD: {
    uint32_t v = load(S, x->buf, opnd(S, x->a[0], MOSS_DT_I32));
    return cdt(S, x) != x->dt ? op1(S, SpvOpSConvert, S->t_i32, v) : v; /* an int64 element that fits */
  }
  case MOSS_KX_LOAD_OR: {
    /* Never reads when the condition is false: the index becomes 0 there
     * (a valid element), and the default is selected. */
    moss_dtype t = cdt(S, x);
    uint32_t c = expr(S, x->a[1]), d = opnd(S, x->a[2], t), idx = opnd(S, x->a[0], MOSS_DT_I32), v;
    if (S->k->bufs[x->buf].numel <= 0) return d;
    idx = sel(S, MOSS_DT_I32, c, idx, c_int(S, MOSS_DT_I32, 0));
    v = load(S, x->buf, idx);
    if (t != x->dt) v = op1(S, SpvOpSConvert, S->t_i32, v);
    return sel(S, t, c, v, d);
  }
  case MOSS_KX_CAST: return cast(S, expr(S, x->a[0]), cdt(S, x->a[0]), cdt(S, x));
  case MOSS_KX_NEG: {
    moss_dtype t = cdt(S, x);
    return op1(S, is_float(t) ? SpvOpFNegate : SpvOpSNegate, ty(S, t), opnd(S, x->a[0], t));
  }
  case MOSS_KX_NOT: return op1(S, SpvOpLogicalNot, S->t_bool, expr(S, x->a[0]));
  case MOSS_KX_BNOT: {
    moss_dtype t = cdt(S, x);
    return op1(S, t == MOSS_DT_BOOL ? SpvOpLogicalNot : SpvOpNot, ty(S, t), opnd(S, x->a[0], t));
  }
  case MOSS_KX_SELECT: {
    moss_dtype t = cdt(S, x);
    uint32_t c = expr(S, x->a[0]), a = opnd(S, x->a[1], t), b = opnd(S, x->a[2], t);
    return sel(S, t, c, a, b);
  }
  case MOSS_KX_CALL: return call(S, x);
  default: return binary(S, x);
  }
}

/* ---- statements ------------------------------------------------------------------------- */

static void stmts_until(sg *S, const moss_kstmt *s, const moss_kstmt *stop);

static void loop(sg *S, const moss_kstmt *s) {
  uint32_t head, test, body, cont, merge, var = S->vvar[s->var], iv;
  moss_dtype vt = vdt(S, s->var), ct;
  if (s->role == MOSS_KL_GROUP) { /* the grid's innermost loop is never emitted as a loop */
    fail(S, MOSS_E_INTERNAL, "a work-group loop '%s' that is not the innermost loop of the grid",
         S->k->vars[s->var].name);
    return;
  }
  head = fresh(S);
  test = fresh(S);
  body = fresh(S);
  cont = fresh(S);
  merge = fresh(S);
  E(&S->funcs, SpvOpStore, var, opnd(S, s->lo, vt));
  /* the test in 32 bits where the variable and the bound fit */
  ct = vt == MOSS_DT_I32 && r_fits(xr(S, s->hi)) ? MOSS_DT_I32 : MOSS_DT_I64;
  E(&S->funcs, SpvOpBranch, head);
  label(S, head);
  E(&S->funcs, SpvOpLoopMerge, merge, cont, SpvLoopControlMaskNone);
  E(&S->funcs, SpvOpBranch, test);
  label(S, test);
  iv = op1(S, SpvOpLoad, ty(S, vt), var);
  if (ct != vt) iv = op1(S, SpvOpSConvert, ty(S, ct), iv);
  E(&S->funcs, SpvOpBranchConditional, op2(S, SpvOpSLessThan, S->t_bool, iv, opnd(S, s->hi, ct)), body, merge);
  label(S, body);
  stmts_until(S, s->body, NULL);
  E(&S->funcs, SpvOpBranch, cont);
  label(S, cont);
  iv = op1(S, SpvOpLoad, ty(S, vt), var);
  E(&S->funcs, SpvOpStore, var, op2(S, SpvOpIAdd, ty(S, vt), iv, c_int(S, vt, s->step)));
  E(&S->funcs, SpvOpBranch, head);
  label(S, merge);
}

static void stmts_until(sg *S, const moss_kstmt *s, const moss_kstmt *stop) {
  for (; s && s != stop && S->st == MOSS_OK; s = s->next) {
    switch (s->kind) {
    case MOSS_KS_LOOP: loop(S, s); break;
    case MOSS_KS_STORE: {
      uint32_t i = opnd(S, s->index, MOSS_DT_I32);
      store(S, s->buf, i, opnd(S, s->value, s->value->dt));
      break;
    }
    case MOSS_KS_LET: case MOSS_KS_SET: {
      uint32_t v = opnd(S, s->value, vdt(S, s->var));
      if (S->vi[s->var].ssa) S->vvar[s->var] = v; /* its only LET: the value itself */
      else E(&S->funcs, SpvOpStore, S->vvar[s->var], v);
      break;
    }
    case MOSS_KS_BARRIER: /* GLSL's barrier(): every lane of the work-group meets here (items is a
                           * multiple of the work-group size, so all of them take the same path) */
      if (!S->group) {
        fail(S, MOSS_E_INTERNAL, "a work-group barrier in a launch without a work-group loop");
        break;
      }
      {
        uint32_t wg = c_int(S, MOSS_DT_U32, SpvScopeWorkgroup);
        E(&S->funcs, SpvOpControlBarrier, wg, wg,
          c_int(S, MOSS_DT_U32, SpvMemorySemanticsAcquireReleaseMask | SpvMemorySemanticsWorkgroupMemoryMask));
      }
      break;
    case MOSS_KS_IF: {
      uint32_t c = expr(S, s->cond), then = fresh(S), els = s->orelse ? fresh(S) : 0, merge = fresh(S);
      E(&S->funcs, SpvOpSelectionMerge, merge, SpvSelectionControlMaskNone);
      E(&S->funcs, SpvOpBranchConditional, c, then, els ? els : merge);
      label(S, then);
      stmts_until(S, s->body, NULL);
      E(&S->funcs, SpvOpBranch, merge);
      if (els) {
        label(S, els);
        stmts_until(S, s->orelse, NULL);
        E(&S->funcs, SpvOpBranch, merge);
      }
      label(S, merge);
      break;
    }
    case MOSS_KS_COMMENT: break;
    }
  }
}

/* ---- kernels ---------------------------------------------------------------------------- */

/* One launch of |k| (|body|) as the entry point moss_k<idx>
 * (moss_gpu_launch_fn; |user| the emitter). */
static moss_status kernel(void *user, const moss_kernel *k, const moss_kstmt *body, int idx, int64_t *items) {
  sg *S = user;
  const moss_kstmt *loops[MOSS_GRID_MAX_LOOPS];
  int64_t ext[MOSS_GRID_MAX_LOOPS], total, inner;
  int n = moss_kernel_grid(body, loops, ext, &total), i, nw;
  size_t nb = (size_t)(k->nbufs + 1), nv = (size_t)(k->nvars + 1);
  uint32_t fn = fresh(S), name[16], w[20], v3, gx, gy, items_v, row, g, ok, run, end;
  char nm[32];
  S->k = k;
  S->at = k->node;
  S->bvar = moss_alloc(S->ctx, nb * sizeof *S->bvar);
  S->bbase = moss_alloc(S->ctx, nb * sizeof *S->bbase);
  S->vvar = moss_alloc(S->ctx, nv * sizeof *S->vvar);
  S->vi = moss_alloc(S->ctx, nv * sizeof *S->vi);
  S->br = moss_alloc(S->ctx, nb * sizeof *S->br);
  if (!S->bvar || !S->bbase || !S->vvar || !S->vi || !S->br) {
    fail(S, MOSS_E_NOMEM, "kernel");
    goto done;
  }
  memset(S->bvar, 0, nb * sizeof *S->bvar);
  memset(S->bbase, 0, nb * sizeof *S->bbase);
  memset(S->vvar, 0, nv * sizeof *S->vvar);
  /* the ranges of the index values; a variable with one LET and no SET is that LET's value, and
   * so is a grid loop's variable its iteration (assigned once, before the body) */
  ranges(S, body);
  for (i = 0; i < k->nvars; i++) S->vi[i].ssa = S->vi[i].lets == 1 && S->vi[i].sets == 0;
  for (i = 0; i < n; i++) S->vi[loops[i]->var].ssa = 1;
  /* the work-group: the grid's innermost loop when that is a GROUP loop, whose lane is then
   * g % T with the workgroup size (specialization constant 0) set to T by the executor */
  S->group = n && loops[n - 1]->role == MOSS_KL_GROUP ? (int)ext[n - 1] : 0;
  if (S->group && total <= 0) {
    fail(S, MOSS_E_INTERNAL, "an empty grid of work-groups");
    goto done;
  }
  /* the entry point */
  snprintf(nm, sizeof nm, "moss_k%d", idx);
  nw = str_words(nm, name, 16);
  w[0] = SpvExecutionModelGLCompute;
  w[1] = fn;
  memcpy(w + 2, name, (size_t)nw * 4);
  w[2 + nw] = S->gid_var;
  emit(&S->entries, SpvOpEntryPoint, w, 3 + nw);
  E(&S->modes, SpvOpExecutionMode, fn, SpvExecutionModeLocalSize, 64, 1, 1);
  /* the buffers */
  for (i = 0; i < k->nbufs; i++) {
    const moss_kbuf *b = &k->bufs[i];
    int binding = 1;
    int64_t off = 0, es = (int64_t)moss_dtype_size(mem_dt(b->dt));
    if (b->kind == MOSS_KB_INPUT || b->kind == MOSS_KB_OUTPUT) S->lay->where(S->lay->user, b->value, &binding, &off);
    else if (b->kind == MOSS_KB_TABLE) off = S->lay->table(S->lay->user, b->data, (size_t)b->numel * (size_t)es);
    else if (b->kind == MOSS_KB_LOCAL) continue;
    else if (b->kind == MOSS_KB_SHARED && S->group) { /* a Workgroup array (not in the interface: SPIR-V 1.3) */
      uint32_t at[2] = {ty(S, mem_dt(b->dt)), c_int(S, MOSS_DT_U32, b->numel)};
      uint32_t arr = unique(S, SpvOpTypeArray, 0, at, 2, NULL), pt = t_ptr(S, SpvStorageClassWorkgroup, arr);
      S->bvar[i] = fresh(S);
      E(&S->globals, SpvOpVariable, pt, S->bvar[i], SpvStorageClassWorkgroup);
      continue;
    } else if (b->kind == MOSS_KB_SHARED) {
      fail(S, MOSS_E_INTERNAL, "shared buffer '%s' in a launch without a work-group loop", b->name);
      goto done;
    } else {
      fail(S, MOSS_E_INTERNAL, "buffer '%s' of kind %d", b->name, (int)b->kind);
      goto done;
    }
    if (off % es) {
      fail(S, MOSS_E_INTERNAL, "buffer '%s' at byte %lld, not a multiple of its element", b->name, (long long)off);
      goto done;
    }
    S->bvar[i] = view(S, binding, mem_dt(b->dt));
    S->bbase[i] = off / es;
  }
  /* the function, its variables first */
  E(&S->funcs, SpvOpFunction, S->t_void, fn, SpvFunctionControlMaskNone, S->t_fn);
  label(S, fresh(S));
  for (i = 0; i < k->nbufs; i++)
    if (k->bufs[i].kind == MOSS_KB_LOCAL) {
      uint32_t at[2] = {ty(S, mem_dt(k->bufs[i].dt)), c_int(S, MOSS_DT_U32, k->bufs[i].numel > 0 ? k->bufs[i].numel : 1)};
      uint32_t arr = unique(S, SpvOpTypeArray, 0, at, 2, NULL);
      S->bvar[i] = fresh(S);
      E(&S->funcs, SpvOpVariable, t_ptr(S, SpvStorageClassFunction, arr), S->bvar[i], SpvStorageClassFunction);
    }
  for (i = 0; i < k->nvars; i++) {
    if (k->vars[i].lanes > 1) {
      fail(S, MOSS_E_INTERNAL, "vector variable '%s'", k->vars[i].name);
      goto done;
    }
    if (S->vi[i].ssa) continue;
    S->vvar[i] = fresh(S);
    E(&S->funcs, SpvOpVariable, t_ptr(S, SpvStorageClassFunction, ty(S, vdt(S, i))), S->vvar[i],
      SpvStorageClassFunction);
  }
  /* the work-item */
  v3 = op1(S, SpvOpLoad, unique(S, SpvOpTypeVector, 0, (const uint32_t[]){S->t_u32, 3}, 2, NULL), S->gid_var);
  gx = fresh(S);
  E(&S->funcs, SpvOpCompositeExtract, S->t_u32, gx, v3, 0);
  gy = fresh(S);
  E(&S->funcs, SpvOpCompositeExtract, S->t_u32, gy, v3, 1);
  {
    uint32_t pu = t_ptr(S, SpvStorageClassPushConstant, S->t_u32), p0 = fresh(S), p1 = fresh(S);
    E(&S->funcs, SpvOpAccessChain, pu, p0, S->pc_var, c_int(S, MOSS_DT_U32, 0));
    E(&S->funcs, SpvOpAccessChain, pu, p1, S->pc_var, c_int(S, MOSS_DT_U32, 1));
    items_v = op1(S, SpvOpLoad, S->t_u32, p0);
    row = op1(S, SpvOpLoad, S->t_u32, p1);
  }
  g = op2(S, SpvOpIAdd, S->t_u32, gx, op2(S, SpvOpIMul, S->t_u32, gy, row));
  ok = op2(S, SpvOpULessThan, S->t_bool, g, items_v);
  run = fresh(S);
  end = fresh(S);
  E(&S->funcs, SpvOpSelectionMerge, end, SpvSelectionControlMaskNone);
  E(&S->funcs, SpvOpBranchConditional, ok, run, end);
  label(S, run);
  /* loop j's iteration: g / inner_j % ext_j in 32 bits (g < items <= 2^31), the variable in
   * its type (the outermost needs no remainder: g / inner_0 < ext_0) */
  for (i = 0, inner = total; i < n; i++) {
    moss_dtype vt = vdt(S, loops[i]->var);
    uint32_t v;
    inner /= ext[i] ? ext[i] : 1;
    v = inner > 1 ? op2(S, SpvOpUDiv, S->t_u32, g, c_int(S, MOSS_DT_U32, inner)) : g;
    if (i) v = op2(S, SpvOpUMod, S->t_u32, v, c_int(S, MOSS_DT_U32, ext[i] ? ext[i] : 1));
    v = vt == MOSS_DT_I32 ? op1(S, SpvOpBitcast, S->t_i32, v)
                          : op1(S, SpvOpBitcast, ty(S, vt), op1(S, SpvOpUConvert, t_int(S, 64, 0), v));
    if (loops[i]->step != 1) v = op2(S, SpvOpIMul, ty(S, vt), v, c_int(S, vt, loops[i]->step));
    if (loops[i]->lo->i) v = op2(S, SpvOpIAdd, ty(S, vt), v, c_int(S, vt, loops[i]->lo->i));
    S->vvar[loops[i]->var] = v;
  }
  for (i = 0; i < n; i++) stmts_until(S, i ? loops[i - 1]->body : body, loops[i]); /* the LETs */
  stmts_until(S, n ? loops[n - 1]->body : body, NULL);
  E(&S->funcs, SpvOpBranch, end);
  label(S, end);
  emit(&S->funcs, SpvOpReturn, NULL, 0);
  emit(&S->funcs, SpvOpFunctionEnd, NULL, 0);
  *items = total > 0 ? total : 1;
done:
  moss_free(S->ctx, S->bvar, nb * sizeof *S->bvar);
  moss_free(S->ctx, S->bbase, nb * sizeof *S->bbase);
  moss_free(S->ctx, S->vvar, nv * sizeof *S->vvar);
  moss_free(S->ctx, S->vi, nv * sizeof *S->vi);
  moss_free(S->ctx, S->br, nb * sizeof *S->br);
  S->vi = NULL;
  S->br = NULL;
  S->bvar = NULL;
  S->bbase = NULL;
  S->vvar = NULL;
  return S->st;
}

/* The module's fixed parts: the basic types, the work-item's input, the
 * push constants, the workgroup size. */
static void module_init(sg *S) {
  int made;
  uint32_t v3, blk, one, sx, pcw[2];
  S->bound = 1;
  S->glsl = fresh(S);
  S->t_void = unique(S, SpvOpTypeVoid, 0, NULL, 0, NULL);
  S->t_bool = unique(S, SpvOpTypeBool, 0, NULL, 0, NULL);
  S->t_u32 = t_int(S, 32, 0);
  S->t_i32 = t_int(S, 32, 1);
  S->t_fn = unique(S, SpvOpTypeFunction, 0, &S->t_void, 1, NULL);
  v3 = unique(S, SpvOpTypeVector, 0, (const uint32_t[]){S->t_u32, 3}, 2, NULL);
  S->gid_var = fresh(S);
  E(&S->globals, SpvOpVariable, t_ptr(S, SpvStorageClassInput, v3), S->gid_var, SpvStorageClassInput);
  E(&S->decos, SpvOpDecorate, S->gid_var, SpvDecorationBuiltIn, SpvBuiltInGlobalInvocationId);
  pcw[0] = pcw[1] = S->t_u32;
  blk = unique(S, SpvOpTypeStruct, 0, pcw, 2, &made);
  E(&S->decos, SpvOpDecorate, blk, SpvDecorationBlock);
  E(&S->decos, SpvOpMemberDecorate, blk, 0, SpvDecorationOffset, 0);
  E(&S->decos, SpvOpMemberDecorate, blk, 1, SpvDecorationOffset, 4);
  S->pc_var = fresh(S);
  E(&S->globals, SpvOpVariable, t_ptr(S, SpvStorageClassPushConstant, blk), S->pc_var, SpvStorageClassPushConstant);
  one = c_int(S, MOSS_DT_U32, 1);
  sx = fresh(S);
  E(&S->globals, SpvOpSpecConstant, S->t_u32, sx, 64);
  E(&S->decos, SpvOpDecorate, sx, SpvDecorationSpecId, 0);
  S->wgsize = fresh(S);
  E(&S->globals, SpvOpSpecConstantComposite, v3, S->wgsize, sx, one, one);
  E(&S->decos, SpvOpDecorate, S->wgsize, SpvDecorationBuiltIn, SpvBuiltInWorkgroupSize);
}

/* The module's words into |out|: header, capabilities, extensions, the
 * GLSL.std.450 import, the memory model, then the sections. */
static void module_words(sg *S, moss_buf *out) {
  static const struct {
    unsigned bit;
    uint32_t cap;
  } caps[] = {{CAP_INT64, SpvCapabilityInt64},     {CAP_INT16, SpvCapabilityInt16},
              {CAP_INT8, SpvCapabilityInt8},       {CAP_FLOAT64, SpvCapabilityFloat64},
              {CAP_FLOAT16, SpvCapabilityFloat16},
              {CAP_SB8, SpvCapabilityStorageBuffer8BitAccess},
              {CAP_SB16, SpvCapabilityStorageBuffer16BitAccess},
              {CAP_DOT, SpvCapabilityDotProductInput4x8BitPackedKHR},
              {CAP_DOT, SpvCapabilityDotProductKHR}};
  uint32_t hdr[5] = {SpvMagicNumber, 0x00010300u, 0, S->bound, 0}, w[16];
  size_t i;
  int nw;
  moss_buf_put(out, hdr, sizeof hdr);
  E(out, SpvOpCapability, SpvCapabilityShader);
  for (i = 0; i < sizeof caps / sizeof caps[0]; i++)
    if (S->caps & caps[i].bit) E(out, SpvOpCapability, caps[i].cap);
  if (S->caps & CAP_SB8) {
    nw = str_words("SPV_KHR_8bit_storage", w, 16);
    emit(out, SpvOpExtension, w, nw);
  }
  if (S->caps & CAP_DOT) {
    nw = str_words("SPV_KHR_integer_dot_product", w, 16);
    emit(out, SpvOpExtension, w, nw);
  }
  w[0] = S->glsl;
  nw = str_words("GLSL.std.450", w + 1, 15);
  emit(out, SpvOpExtInstImport, w, nw + 1);
  E(out, SpvOpMemoryModel, SpvAddressingModelLogical, SpvMemoryModelGLSL450);
  moss_buf_put(out, S->entries.data, S->entries.len);
  moss_buf_put(out, S->modes.data, S->modes.len);
  moss_buf_put(out, S->decos.data, S->decos.len);
  moss_buf_put(out, S->globals.data, S->globals.len);
  moss_buf_put(out, S->funcs.data, S->funcs.len);
}

/* ---- what the emitter takes ------------------------------------------------------------- */

static int expr_has(const moss_kx *x, char *why, size_t cap) {
  moss_dtype at = x->nargs ? x->a[0]->dt : x->dt;
  if (x->lanes > 1) {
    snprintf(why, cap, "a vector expression (the Vulkan backend writes scalar code)");
    return 0;
  }
  /* float16 only in a native float16 node's kernel (passes/half.c: on a
   * device that lists Float16 and StorageBuffer16BitAccess; its
   * operators need nothing else) */
  if (x->dt == MOSS_DT_BF16 || x->dt == MOSS_DT_STRING || x->dt == MOSS_DT_UNDEF) {
    snprintf(why, cap, "an expression of type %s (the Vulkan backend computes 16-bit floats in float32)",
             moss_dtype_name(x->dt));
    return 0;
  }
  if (x->op == MOSS_KX_SPLAT || x->op == MOSS_KX_HSUM) {
    snprintf(why, cap, "a vector expression (the Vulkan backend writes scalar code)");
    return 0;
  }
  if (x->op != MOSS_KX_CALL) return 1;
  if (x->fn == MOSS_KFN_EXP || x->fn == MOSS_KFN_LOG || x->fn == MOSS_KFN_ERF || x->fn == MOSS_KFN_LOG1P ||
      x->fn == MOSS_KFN_POW) {
    if (at != MOSS_DT_F32 && at != MOSS_DT_F64) {
      snprintf(why, cap, "%s of %s on the Vulkan backend", moss_kfn_name(x->fn), moss_dtype_name(at));
      return 0;
    }
    return 1;
  }
  if (glsl_f32(x->fn)) {
    if (at != MOSS_DT_F32 && (at != MOSS_DT_F64 || x->fn == MOSS_KFN_SINH || x->fn == MOSS_KFN_COSH)) {
      snprintf(why, cap, "%s of %s (GLSL.std.450 has it for float32 only, whose range is too small)",
               moss_kfn_name(x->fn), moss_dtype_name(at));
      return 0;
    }
    return 1;
  }
  switch (x->fn) {
  case MOSS_KFN_SQRT: case MOSS_KFN_FLOOR: case MOSS_KFN_CEIL: case MOSS_KFN_RINT: case MOSS_KFN_TRUNC:
  case MOSS_KFN_FABS: case MOSS_KFN_FMIN: case MOSS_KFN_FMAX: case MOSS_KFN_FMA: case MOSS_KFN_FMOD:
  case MOSS_KFN_ISNAN: case MOSS_KFN_ISINF: case MOSS_KFN_ABS: case MOSS_KFN_SAT: case MOSS_KFN_REQUANT:
  case MOSS_KFN_BITS:
  case MOSS_KFN_DOT4: case MOSS_KFN_DOT4S: /* only where the target says the device has them (cpu.gpu_dot4) */
    return 1;
  default:
    snprintf(why, cap, "the Vulkan backend has no %s", moss_kfn_name(x->fn));
    return 0;
  }
}

int moss_shader_takes(moss_ctx *ctx, const moss_node *n, char *why, size_t cap) {
  return moss_gpu_kernel_check(ctx, n, expr_has, why, cap);
}

moss_status moss_shader_emit(moss_ctx *ctx, const moss_graph *g, moss_node *const *nodes, int nnodes,
                             const moss_shader_layout *lay, moss_buf *items, moss_buf *words) {
  sg S;
  (void)g;
  memset(&S, 0, sizeof S);
  S.ctx = ctx;
  S.lay = lay;
  moss_buf_init(&S.entries, ctx);
  moss_buf_init(&S.modes, ctx);
  moss_buf_init(&S.decos, ctx);
  moss_buf_init(&S.globals, ctx);
  moss_buf_init(&S.funcs, ctx);
  moss_buf_init(&S.keys, ctx);
  module_init(&S);
  if (S.st == MOSS_OK) S.st = moss_gpu_each_launch(ctx, &lay->facts, nodes, nnodes, expr_has, kernel, &S, items);
  S.at = nodes[0];
  if (S.st == MOSS_OK && (S.entries.failed || S.modes.failed || S.decos.failed || S.globals.failed ||
                          S.funcs.failed || S.keys.failed))
    S.st = moss_fail(ctx, MOSS_E_NOMEM, nodes[0], "Vulkan backend");
  if (S.st == MOSS_OK) {
    size_t start = words->len;
    module_words(&S, words);
    if (words->failed) S.st = moss_fail(ctx, MOSS_E_NOMEM, nodes[0], "Vulkan backend");
    else
      S.st = moss_spirv_validate(ctx, (const uint32_t *)(words->data + start), (words->len - start) / 4,
                                 MOSS_SPIRV_VULKAN_1_1, nodes[0], "Vulkan backend");
  }
  moss_free(ctx, S.ut, S.utcap * sizeof *S.ut);
  moss_free(ctx, S.views, (size_t)S.cviews * sizeof *S.views);
  moss_buf_deinit(&S.entries);
  moss_buf_deinit(&S.modes);
  moss_buf_deinit(&S.decos);
  moss_buf_deinit(&S.globals);
  moss_buf_deinit(&S.funcs);
  moss_buf_deinit(&S.keys);
  return S.st;
}
