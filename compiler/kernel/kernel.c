/* kernel.c - the kernel description's builder and its text form. The
 * lowerings (lower_<family>.c) call the moss_k_* constructors; each checks
 * the types of what it is given, so a backend can trust every expression
 * it reads (an ill-typed expression is a lowering's bug: internal). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kernel.h"

static const char *const kx_names[MOSS_KX_COUNT_] = {
    "?",   "const", "var", "load", "load_or", "cast", "splat", "hsum", "neg", "not", "bnot",
    "add", "sub",   "mul", "div",  "rem",     "min",  "max",   "band", "bor", "bxor", "shl",
    "shr", "land",  "lor", "eq",   "ne",      "lt",   "le",    "gt",   "ge",  "select", "call"};

static const struct {
  const char *name;
  int nargs;
} kfn_info[MOSS_KFN_COUNT_] = {
#define MOSS_KFN_INFO(name, text, nargs) {text, nargs},
    MOSS_KERNEL_INTRINSICS(MOSS_KFN_INFO)
#undef MOSS_KFN_INFO
};

const char *moss_kx_op_name(moss_kx_op op) {
  return op > 0 && op < MOSS_KX_COUNT_ ? kx_names[op] : "?";
}
const char *moss_kfn_name(moss_kfn fn) {
  return (unsigned)fn < MOSS_KFN_COUNT_ ? kfn_info[fn].name : "?";
}
int moss_kfn_nargs(moss_kfn fn) { return (unsigned)fn < MOSS_KFN_COUNT_ ? kfn_info[fn].nargs : 0; }

int moss_kernel_dtype_ok(moss_dtype dt) {
  switch (dt) {
  case MOSS_DT_F32: case MOSS_DT_F64: case MOSS_DT_U8: case MOSS_DT_I8: case MOSS_DT_U16:
  case MOSS_DT_I16: case MOSS_DT_I32: case MOSS_DT_I64: case MOSS_DT_U32: case MOSS_DT_U64:
  case MOSS_DT_BOOL:
    return 1;
  default:
    return 0;
  }
}

int moss_kernel_half_ok(const moss_node *n) {
  return n->op == MOSS_OP_Cast || n->op == MOSS_OP_CastLike || n->native_half;
}

/* |dt| in a kernel of the node being lowered: float16 itself too where
 * the node computes in float16 (moss_node.native_half). */
int moss_kb_dtype_ok(const moss_kb *b, moss_dtype dt) {
  return moss_kernel_dtype_ok(dt) || (dt == MOSS_DT_F16 && b->k && b->k->node && b->k->node->native_half);
}

static int is_int(moss_dtype dt) { return moss_kernel_dtype_ok(dt) && !moss_dtype_is_float(dt) && dt != MOSS_DT_BOOL; }

moss_status moss_kb_fail(moss_kb *b, moss_status st, const char *fmt, ...) {
  va_list ap;
  if (b->st != MOSS_OK) return b->st;
  va_start(ap, fmt);
  b->st = moss_diag_vfail_at(b->ctx, __FILE__, __LINE__, st, b->k ? b->k->node : NULL, fmt, ap);
  va_end(ap);
  return b->st;
}

/* The placeholder returned after a failure: a well-formed I64 zero. */
static moss_kx poison = {MOSS_KX_CONST, MOSS_DT_I64, 1, 0, {NULL, NULL, NULL}, 0, 0, 0, 0, MOSS_KFN_EXP};

static void *alloc(moss_kb *b, size_t size) {
  void *p;
  if (b->st != MOSS_OK) return NULL;
  p = moss_arena_alloc(b->arena, size, 16);
  if (!p) moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
  return p;
}

moss_status moss_kb_init(moss_kb *b, moss_ctx *ctx, moss_arena *arena, const moss_node *n,
                         const moss_kernel_cpu *cpu) {
  memset(b, 0, sizeof *b);
  b->ctx = ctx;
  if (cpu) b->cpu = *cpu;
  b->arena = arena;
  b->k = moss_arena_alloc(arena, sizeof *b->k, 16);
  if (!b->k) return b->st = moss_fail(ctx, MOSS_E_NOMEM, n, "kernel description");
  memset(b->k, 0, sizeof *b->k);
  b->k->node = n;
  b->tail[0] = &b->k->body;
  return MOSS_OK;
}

moss_status moss_kb_finish(moss_kb *b, moss_kernel **out_kernel) {
  *out_kernel = NULL;
  if (b->st == MOSS_OK && b->depth != 0)
    moss_kb_fail(b, MOSS_E_INTERNAL, "kernel description: %d loop(s) or branch(es) left open",
                 b->depth);
  if (b->st != MOSS_OK) return b->st;
  *out_kernel = b->k;
  return MOSS_OK;
}

/* ---- machine facts ------------------------------------------------------------------- */

/* Whether the comma-separated |list| holds |item| exactly ("+avx2"). */
static int has_item(const char *list, const char *item) {
  size_t n = strlen(item);
  const char *p = list;
  if (!list) return 0;
  while ((p = strstr(p, item)) != NULL) {
    if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return 1;
    p += n;
  }
  return 0;
}

static int starts(const char *s, const char *prefix) {
  return s && !strncmp(s, prefix, strlen(prefix));
}

void moss_kernel_cpu_from_codegen(const char *triple, const char *cpu, const char *features,
                                  moss_kernel_cpu *out) {
  memset(out, 0, sizeof *out);
  if (starts(triple, "x86_64")) {
    int v3 = cpu && !strcmp(cpu, "x86-64-v3"), v4 = cpu && !strcmp(cpu, "x86-64-v4");
    int avx512 = has_item(features, "+avx512f") || (v4 && !has_item(features, "-avx512f"));
    int avx = avx512 || has_item(features, "+avx") || has_item(features, "+avx2") || v3 || v4;
    out->vector_bytes = avx512 ? 64 : avx ? 32 : 16;
    out->vector_regs = avx512 ? 32 : 16;
    out->fma = !has_item(features, "-fma") && (has_item(features, "+fma") || avx512 || v3 || v4);
    out->dot4 = avx512 && has_item(features, "+avx512vnni") ? 16 : has_item(features, "+avxvnni") ? 8 : 0;
    out->tbl128 = avx512 && has_item(features, "+avx512vbmi") ? 64 : 0;
  } else if (starts(triple, "aarch64") || starts(triple, "arm64")) {
    out->vector_bytes = 16;
    out->vector_regs = 32;
    out->fma = 1;
    if (has_item(features, "+dotprod") && !has_item(features, "-neon")) out->dot4 = 4, out->dot4_signed = 1;
    out->half = has_item(features, "+fullfp16");
  } else if (starts(triple, "riscv64")) {
    out->vector_bytes = has_item(features, "+v") ? 16 : 0;
    out->vector_regs = 32;
    out->fma = 1;
  }
  /* No SIMD registers at all: M-profile Arm without MVE, RISC-V without V. */
  out->no_simd = ((starts(triple, "thumbv6m") || starts(triple, "thumbv7m") || starts(triple, "thumbv7em") ||
                   starts(triple, "thumbv8m")) &&
                  !has_item(features, "+mve") && !has_item(features, "+mve.fp")) ||
                 (starts(triple, "riscv") && !has_item(features, "+v"));
}

/* ---- buffers and variables ---------------------------------------------------------- */

static int add_buf(moss_kb *b, moss_kbuf_kind kind, const char *name, moss_dtype dt, int64_t numel) {
  moss_kernel *k = b->k;
  moss_kbuf *nb;
  if (b->st != MOSS_OK) return 0;
  if (!moss_kb_dtype_ok(b, dt)) {
    moss_kb_fail(b, MOSS_E_UNSUPPORTED, "kernel buffer '%s' has type %s", name,
                 moss_dtype_name(dt));
    return 0;
  }
  if (k->nbufs == b->cap_bufs) {
    int nc = b->cap_bufs ? b->cap_bufs * 2 : 8;
    moss_kbuf *p = alloc(b, sizeof *p * (size_t)nc);
    if (!p) return 0;
    if (k->nbufs) memcpy(p, k->bufs, sizeof *p * (size_t)k->nbufs);
    k->bufs = p;
    b->cap_bufs = nc;
  }
  nb = &k->bufs[k->nbufs];
  memset(nb, 0, sizeof *nb);
  nb->kind = kind;
  nb->dt = dt;
  nb->numel = numel;
  nb->name = moss_arena_strdup(b->arena, name);
  if (!nb->name) {
    moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
    return 0;
  }
  return k->nbufs++;
}

static int io_buf(moss_kb *b, int i, int output) {
  const moss_node *n = b->k->node;
  const moss_value *v = NULL;
  char name[16];
  int j, id;
  if (b->st != MOSS_OK) return 0;
  if (output ? i < n->noutputs : i < n->ninputs) v = output ? n->outputs[i] : n->inputs[i];
  if (!v) {
    moss_kb_fail(b, MOSS_E_INTERNAL, "kernel description: no %s %d", output ? "output" : "input", i);
    return 0;
  }
  for (j = 0; j < b->k->nbufs; j++) /* one buffer per input or output */
    if (b->k->bufs[j].kind == (output ? MOSS_KB_OUTPUT : MOSS_KB_INPUT) && b->k->bufs[j].index == i)
      return j;
  snprintf(name, sizeof name, "%c%d", output ? 'y' : 'x', i);
  id = add_buf(b, output ? MOSS_KB_OUTPUT : MOSS_KB_INPUT, name, n->native_half ? v->dtype : moss_dtype_storage(v->dtype),
               moss_value_numel(v));
  if (b->st != MOSS_OK) return 0;
  b->k->bufs[id].index = i;
  b->k->bufs[id].value = v;
  return id;
}

int moss_k_input(moss_kb *b, int i) { return io_buf(b, i, 0); }
int moss_k_output(moss_kb *b, int i) { return io_buf(b, i, 1); }

int moss_k_table(moss_kb *b, const char *name, moss_dtype dt, int64_t numel, const void *data) {
  int id = add_buf(b, MOSS_KB_TABLE, name, dt, numel);
  size_t bytes;
  void *copy;
  if (b->st != MOSS_OK) return 0;
  if (numel < 0 || !moss_size_mul((size_t)numel, moss_dtype_size(dt), &bytes)) {
    moss_kb_fail(b, MOSS_E_INVALID_MODEL, "kernel table '%s' too large", name);
    return 0;
  }
  copy = alloc(b, bytes ? bytes : 1);
  if (!copy) return 0;
  if (bytes) memcpy(copy, data, bytes);
  b->k->bufs[id].data = copy;
  return id;
}

int moss_k_local(moss_kb *b, const char *name, moss_dtype dt, int64_t numel) {
  return add_buf(b, MOSS_KB_LOCAL, name, dt, numel);
}

int moss_k_shared(moss_kb *b, const char *name, moss_dtype dt, int64_t numel) {
  if (b->st == MOSS_OK && (b->cpu.group_max <= 0 || numel < 1 || numel * (int64_t)moss_dtype_size(dt) > b->cpu.group_bytes)) {
    moss_kb_fail(b, MOSS_E_INTERNAL, "shared buffer '%s' of %lld elements: not within the GPU's %lld bytes", name,
                 (long long)numel, (long long)b->cpu.group_bytes);
    return 0;
  }
  return add_buf(b, MOSS_KB_SHARED, name, dt, numel);
}

int moss_k_arena_scratch(moss_kb *b, const char *name, moss_dtype dt, int64_t numel, int64_t offset) {
  const moss_node *n = b->k->node;
  int64_t bytes, end;
  int id;
  if (b->st != MOSS_OK) return 0;
  if (numel < 0 || offset < 0 || offset % 64 ||
      !moss_i64_mul(numel, (int64_t)moss_dtype_size(dt), &bytes) ||
      !moss_i64_add(offset, bytes, &end) || end > n->scratch_bytes) {
    moss_kb_fail(b, MOSS_E_INTERNAL, "kernel scratch '%s' (%lld elements at byte %lld) is not within "
                 "the %lld bytes planned for it", name, (long long)numel, (long long)offset,
                 (long long)n->scratch_bytes);
    return 0;
  }
  id = add_buf(b, MOSS_KB_SCRATCH, name, dt, numel);
  if (b->st != MOSS_OK) return 0;
  b->k->bufs[id].offset = offset;
  return id;
}

static int add_var(moss_kb *b, const char *name, moss_dtype dt, int lanes, int is_loop) {
  moss_kernel *k = b->k;
  moss_kvar *v;
  if (b->st != MOSS_OK) return 0;
  if (k->nvars == b->cap_vars) {
    int nc = b->cap_vars ? b->cap_vars * 2 : 16;
    moss_kvar *p = alloc(b, sizeof *p * (size_t)nc);
    if (!p) return 0;
    if (k->nvars) memcpy(p, k->vars, sizeof *p * (size_t)k->nvars);
    k->vars = p;
    b->cap_vars = nc;
  }
  v = &k->vars[k->nvars];
  v->name = moss_arena_strdup(b->arena, name);
  v->dt = dt;
  v->lanes = lanes;
  v->is_loop = is_loop;
  if (!v->name) {
    moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
    return 0;
  }
  return k->nvars++;
}

/* ---- expressions --------------------------------------------------------------------- */

static moss_kx *node(moss_kb *b, moss_kx_op op, moss_dtype dt, int lanes) {
  moss_kx *x = alloc(b, sizeof *x);
  if (!x) return &poison;
  memset(x, 0, sizeof *x);
  x->op = op;
  x->dt = dt;
  x->lanes = lanes;
  return x;
}

static int bad(moss_kb *b, const moss_kx *x) { return b->st != MOSS_OK || !x || x == &poison; }

static moss_kx *ill(moss_kb *b, const char *what, const moss_kx *x, const moss_kx *y) {
  moss_kb_fail(b, MOSS_E_INTERNAL, "kernel description: %s of %s%s%d and %s%s%d", what,
               x ? moss_dtype_short(x->dt) : "-", "x", x ? x->lanes : 0,
               y ? moss_dtype_short(y->dt) : "-", "x", y ? y->lanes : 0);
  return &poison;
}

moss_kx *moss_k_zero(moss_kb *b, moss_dtype dt) {
  return moss_dtype_is_float(dt) ? moss_k_flt(b, dt, 0) : moss_k_int(b, dt, 0);
}

moss_kx *moss_k_int(moss_kb *b, moss_dtype dt, int64_t v) {
  moss_kx *x;
  if (!moss_kernel_dtype_ok(dt) || moss_dtype_is_float(dt))
    return ill(b, "integer constant", NULL, NULL);
  x = node(b, MOSS_KX_CONST, dt, 1);
  if (bad(b, x)) return &poison;
  /* Constants hold the value the type can represent (wrapped). */
  switch (dt) {
  case MOSS_DT_BOOL: v = v != 0; break;
  case MOSS_DT_I8: v = (int8_t)v; break;
  case MOSS_DT_U8: v = (uint8_t)v; break;
  case MOSS_DT_I16: v = (int16_t)v; break;
  case MOSS_DT_U16: v = (uint16_t)v; break;
  case MOSS_DT_I32: v = (int32_t)v; break;
  case MOSS_DT_U32: v = (uint32_t)v; break;
  default: break;
  }
  x->i = v;
  return x;
}

moss_kx *moss_k_idx(moss_kb *b, int64_t v) { return moss_k_int(b, MOSS_DT_I64, v); }

moss_kx *moss_k_flt(moss_kb *b, moss_dtype dt, double v) {
  moss_kx *x;
  if (!moss_dtype_is_float(dt) || !moss_kb_dtype_ok(b, dt))
    return ill(b, "float constant", NULL, NULL);
  x = node(b, MOSS_KX_CONST, dt, 1);
  if (bad(b, x)) return &poison;
  x->f = dt == MOSS_DT_F32 ? (double)(float)v : v;
  return x;
}

moss_kx *moss_k_var(moss_kb *b, int var) {
  moss_kx *x;
  if (b->st != MOSS_OK) return &poison;
  if (var < 0 || var >= b->k->nvars) return ill(b, "variable", NULL, NULL);
  x = node(b, MOSS_KX_VAR, b->k->vars[var].dt, b->k->vars[var].lanes);
  if (bad(b, x)) return &poison;
  x->var = var;
  return x;
}

static int check_buf(moss_kb *b, int buf) {
  if (b->st != MOSS_OK) return 0;
  if (buf < 0 || buf >= b->k->nbufs) {
    moss_kb_fail(b, MOSS_E_INTERNAL, "kernel description: buffer %d", buf);
    return 0;
  }
  return 1;
}

static int is_index(const moss_kx *x) { return x->dt == MOSS_DT_I64 && x->lanes == 1; }

moss_kx *moss_k_vload(moss_kb *b, int buf, moss_kx *index, int lanes) {
  moss_kx *x;
  if (!check_buf(b, buf) || bad(b, index)) return &poison;
  if (!is_index(index) || lanes < 1) return ill(b, "load index", index, NULL);
  x = node(b, MOSS_KX_LOAD, b->k->bufs[buf].dt, lanes);
  if (bad(b, x)) return &poison;
  x->buf = buf;
  x->nargs = 1;
  x->a[0] = index;
  return x;
}

moss_kx *moss_k_load(moss_kb *b, int buf, moss_kx *index) { return moss_k_vload(b, buf, index, 1); }

moss_kx *moss_k_load_or(moss_kb *b, int buf, moss_kx *index, moss_kx *cond, moss_kx *dflt) {
  moss_kx *x;
  if (!check_buf(b, buf) || bad(b, index) || bad(b, cond) || bad(b, dflt)) return &poison;
  if (!is_index(index)) return ill(b, "load index", index, NULL);
  if (cond->dt != MOSS_DT_BOOL || cond->lanes != 1) return ill(b, "load condition", cond, NULL);
  if (dflt->dt != b->k->bufs[buf].dt || dflt->lanes != 1) return ill(b, "load default", dflt, NULL);
  x = node(b, MOSS_KX_LOAD_OR, dflt->dt, 1);
  if (bad(b, x)) return &poison;
  x->buf = buf;
  x->nargs = 3;
  x->a[0] = index;
  x->a[1] = cond;
  x->a[2] = dflt;
  return x;
}

moss_kx *moss_k_cast(moss_kb *b, moss_dtype dt, moss_kx *a) {
  moss_kx *x;
  if (bad(b, a)) return &poison;
  if (!moss_kb_dtype_ok(b, dt)) return ill(b, "cast", a, NULL);
  if (a->dt == dt) return a;
  if (a->op == MOSS_KX_CONST && a->lanes == 1) { /* fold */
    if (moss_dtype_is_float(dt))
      return moss_k_flt(b, dt, moss_dtype_is_float(a->dt) ? a->f : (double)a->i);
    if (!moss_dtype_is_float(a->dt)) return moss_k_int(b, dt, a->i);
  }
  x = node(b, MOSS_KX_CAST, dt, a->lanes);
  if (bad(b, x)) return &poison;
  x->nargs = 1;
  x->a[0] = a;
  return x;
}

moss_kx *moss_k_splat(moss_kb *b, moss_kx *a, int lanes) {
  moss_kx *x;
  if (bad(b, a)) return &poison;
  if (a->lanes != 1 || lanes < 1) return ill(b, "splat", a, NULL);
  if (lanes == 1) return a;
  x = node(b, MOSS_KX_SPLAT, a->dt, lanes);
  if (bad(b, x)) return &poison;
  x->nargs = 1;
  x->a[0] = a;
  return x;
}

moss_kx *moss_k_hsum(moss_kb *b, moss_kx *a) {
  moss_kx *x;
  if (bad(b, a)) return &poison;
  if (a->lanes == 1) return a;
  x = node(b, MOSS_KX_HSUM, a->dt, 1);
  if (bad(b, x)) return &poison;
  x->nargs = 1;
  x->a[0] = a;
  return x;
}

moss_kx *moss_k_un(moss_kb *b, moss_kx_op op, moss_kx *a) {
  moss_kx *x;
  if (bad(b, a)) return &poison;
  if ((op == MOSS_KX_NOT && a->dt != MOSS_DT_BOOL) || (op == MOSS_KX_BNOT && !is_int(a->dt)) ||
      (op != MOSS_KX_NOT && op != MOSS_KX_BNOT && op != MOSS_KX_NEG))
    return ill(b, moss_kx_op_name(op), a, NULL);
  if (op == MOSS_KX_NEG && a->op == MOSS_KX_CONST && a->lanes == 1)
    return moss_dtype_is_float(a->dt) ? moss_k_flt(b, a->dt, -a->f) : moss_k_int(b, a->dt, -a->i);
  x = node(b, op, a->dt, a->lanes);
  if (bad(b, x)) return &poison;
  x->nargs = 1;
  x->a[0] = a;
  return x;
}

static int is_cmp(moss_kx_op op) { return op >= MOSS_KX_EQ && op <= MOSS_KX_GE; }

/* Makes the lane counts of |*x| and |*y| agree by splatting a scalar. */
static int match_lanes(moss_kb *b, moss_kx **x, moss_kx **y) {
  if ((*x)->lanes == (*y)->lanes) return 1;
  if ((*x)->lanes == 1) *x = moss_k_splat(b, *x, (*y)->lanes);
  else if ((*y)->lanes == 1) *y = moss_k_splat(b, *y, (*x)->lanes);
  else return 0;
  return b->st == MOSS_OK;
}

moss_kx *moss_k_bin(moss_kb *b, moss_kx_op op, moss_kx *x, moss_kx *y) {
  moss_kx *r;
  moss_dtype dt;
  if (bad(b, x) || bad(b, y)) return &poison;
  if (op < MOSS_KX_ADD || op > MOSS_KX_GE || x->dt != y->dt || !match_lanes(b, &x, &y))
    return ill(b, moss_kx_op_name(op), x, y);
  dt = x->dt;
  if ((op >= MOSS_KX_BAND && op <= MOSS_KX_SHR && !is_int(dt)) ||
      ((op == MOSS_KX_LAND || op == MOSS_KX_LOR) && dt != MOSS_DT_BOOL) ||
      (dt == MOSS_DT_BOOL && op <= MOSS_KX_SHR && op != MOSS_KX_BAND && op != MOSS_KX_BOR &&
       op != MOSS_KX_BXOR && op != MOSS_KX_MIN && op != MOSS_KX_MAX))
    return ill(b, moss_kx_op_name(op), x, y);
  r = node(b, op, is_cmp(op) ? MOSS_DT_BOOL : dt, x->lanes);
  if (bad(b, r)) return &poison;
  r->nargs = 2;
  r->a[0] = x;
  r->a[1] = y;
  return r;
}

moss_kx *moss_k_select(moss_kb *b, moss_kx *c, moss_kx *x, moss_kx *y) {
  moss_kx *r;
  if (bad(b, c) || bad(b, x) || bad(b, y)) return &poison;
  if (c->dt != MOSS_DT_BOOL || x->dt != y->dt || !match_lanes(b, &x, &y) ||
      (c->lanes != 1 && c->lanes != x->lanes))
    return ill(b, "select", x, y);
  if (c->op == MOSS_KX_CONST) return c->i ? x : y;
  r = node(b, MOSS_KX_SELECT, x->dt, x->lanes);
  if (bad(b, r)) return &poison;
  r->nargs = 3;
  r->a[0] = c;
  r->a[1] = x;
  r->a[2] = y;
  return r;
}

moss_kx *moss_k_call(moss_kb *b, moss_kfn fn, moss_kx *x, moss_kx *y, moss_kx *z) {
  moss_kx *args[3] = {x, y, z}, *r;
  int n = moss_kfn_nargs(fn), i;
  moss_dtype dt;
  if ((unsigned)fn >= MOSS_KFN_COUNT_ || fn == MOSS_KFN_SAT || fn == MOSS_KFN_BITS) return ill(b, "call", x, y);
  for (i = 0; i < n; i++)
    if (bad(b, args[i])) return &poison;
  dt = x->dt;
  if (fn == MOSS_KFN_TBL128) {
    if (x->op != MOSS_KX_VAR || y->op != MOSS_KX_VAR || moss_dtype_size(x->dt) != 1 || y->dt != x->dt ||
        z->dt != MOSS_DT_U8 || x->lanes != 64 || y->lanes != 64 || z->lanes != 64)
      return ill(b, "tbl128", x, z);
  } else if (fn == MOSS_KFN_REQUANT || fn == MOSS_KFN_DOT4 || fn == MOSS_KFN_DOT4S) {
    for (i = 0; i < 3; i++)
      if (args[i]->dt != MOSS_DT_I32 || args[i]->lanes != x->lanes)
        return ill(b, moss_kfn_name(fn), x, args[i]);
  } else if (fn == MOSS_KFN_ABS) {
    if (!is_int(dt) && !moss_dtype_is_float(dt)) return ill(b, "abs", x, NULL);
  } else {
    if (!moss_dtype_is_float(dt)) return ill(b, moss_kfn_name(fn), x, NULL);
    for (i = 1; i < n; i++) {
      if (args[i]->dt != dt) return ill(b, moss_kfn_name(fn), x, args[i]);
      if (args[i]->lanes != x->lanes && !match_lanes(b, &args[0], &args[i]))
        return ill(b, moss_kfn_name(fn), x, args[i]);
    }
  }
  r = node(b, MOSS_KX_CALL, fn == MOSS_KFN_ISNAN || fn == MOSS_KFN_ISINF ? MOSS_DT_BOOL : dt,
           args[0]->lanes);
  if (bad(b, r)) return &poison;
  r->fn = fn;
  r->nargs = n;
  for (i = 0; i < n; i++) r->a[i] = args[i];
  return r;
}

/* A one-operand intrinsic |fn| of |a| giving |dt| (its checks done). */
static moss_kx *unary_call(moss_kb *b, moss_kfn fn, moss_dtype dt, moss_kx *a) {
  moss_kx *r = node(b, MOSS_KX_CALL, dt, a->lanes);
  if (bad(b, r)) return &poison;
  r->fn = fn;
  r->nargs = 1;
  r->a[0] = a;
  return r;
}

moss_kx *moss_k_sat(moss_kb *b, moss_dtype dt, moss_kx *a) {
  if (bad(b, a)) return &poison;
  if (!is_int(dt) || !is_int(a->dt)) return ill(b, "sat", a, NULL);
  return unary_call(b, MOSS_KFN_SAT, dt, a);
}

moss_kx *moss_k_bits(moss_kb *b, moss_dtype dt, moss_kx *a) {
  if (bad(b, a)) return &poison;
  if (!moss_kernel_dtype_ok(dt) || moss_dtype_size(dt) != moss_dtype_size(a->dt) || dt == MOSS_DT_BOOL ||
      a->dt == MOSS_DT_BOOL)
    return ill(b, "bits", a, NULL);
  return unary_call(b, MOSS_KFN_BITS, dt, a);
}

static int is_c(const moss_kx *x, int64_t v) {
  return x->op == MOSS_KX_CONST && x->lanes == 1 && !moss_dtype_is_float(x->dt) && x->i == v;
}

moss_kx *moss_k_add(moss_kb *b, moss_kx *x, moss_kx *y) {
  if (bad(b, x) || bad(b, y)) return &poison;
  if (x->dt == MOSS_DT_I64 && y->dt == MOSS_DT_I64 && x->lanes == 1 && y->lanes == 1) {
    if (x->op == MOSS_KX_CONST && y->op == MOSS_KX_CONST)
      return moss_k_idx(b, (int64_t)((uint64_t)x->i + (uint64_t)y->i));
    if (is_c(x, 0)) return y;
    if (is_c(y, 0)) return x;
    /* (e + c1) + c2 -> e + (c1 + c2): index expressions stay short. */
    if (y->op == MOSS_KX_CONST && x->op == MOSS_KX_ADD && x->a[1]->op == MOSS_KX_CONST)
      return moss_k_add(b, x->a[0], moss_k_idx(b, x->a[1]->i + y->i));
    if (x->op == MOSS_KX_CONST) return moss_k_add(b, y, x); /* constants go right */
  }
  return moss_k_bin(b, MOSS_KX_ADD, x, y);
}

moss_kx *moss_k_mul(moss_kb *b, moss_kx *x, moss_kx *y) {
  if (bad(b, x) || bad(b, y)) return &poison;
  if (x->dt == MOSS_DT_I64 && y->dt == MOSS_DT_I64 && x->lanes == 1 && y->lanes == 1) {
    if (x->op == MOSS_KX_CONST && y->op == MOSS_KX_CONST)
      return moss_k_idx(b, (int64_t)((uint64_t)x->i * (uint64_t)y->i));
    if (is_c(x, 1)) return y;
    if (is_c(y, 1)) return x;
    if (is_c(x, 0) || is_c(y, 0)) return moss_k_idx(b, 0);
    if (x->op == MOSS_KX_CONST) return moss_k_mul(b, y, x);
  }
  return moss_k_bin(b, MOSS_KX_MUL, x, y);
}

moss_kx *moss_k_addc(moss_kb *b, moss_kx *x, int64_t c) { return moss_k_add(b, x, moss_k_idx(b, c)); }
moss_kx *moss_k_mulc(moss_kb *b, moss_kx *x, int64_t c) { return moss_k_mul(b, x, moss_k_idx(b, c)); }

/* ---- statements ---------------------------------------------------------------------- */

static moss_kstmt *stmt(moss_kb *b, moss_ks_kind kind) {
  moss_kstmt *s = alloc(b, sizeof *s);
  if (!s) return NULL;
  memset(s, 0, sizeof *s);
  s->kind = kind;
  *b->tail[b->depth] = s;
  b->tail[b->depth] = &s->next;
  return s;
}

/* Whether a GROUP loop is open. */
static int in_group(const moss_kb *b) {
  int d;
  for (d = 1; d <= b->depth; d++)
    if (b->open[d]->kind == MOSS_KS_LOOP && b->open[d]->role == MOSS_KL_GROUP) return 1;
  return 0;
}

static void push(moss_kb *b, moss_kstmt *s, moss_kstmt **inner) {
  if (b->depth + 1 >= (int)(sizeof b->tail / sizeof b->tail[0])) {
    moss_kb_fail(b, MOSS_E_INTERNAL, "kernel description: loops nested too deep");
    return;
  }
  b->depth++;
  b->open[b->depth] = s;
  b->tail[b->depth] = inner;
}

moss_kx *moss_k_for(moss_kb *b, const char *name, moss_kx *lo, moss_kx *hi, int64_t step,
                    moss_kloop_role role, int width) {
  moss_kstmt *s;
  int var;
  if (bad(b, lo) || bad(b, hi)) return &poison;
  if (!is_index(lo) || !is_index(hi) || step < 1) return ill(b, "loop bounds", lo, hi);
  if (role == MOSS_KL_GROUP &&
      (lo->op != MOSS_KX_CONST || lo->i != 0 || hi->op != MOSS_KX_CONST || hi->i < 1 || step != 1 ||
       hi->i > (b->cpu.group_max > 0 ? b->cpu.group_max : 0) || in_group(b)))
    return ill(b, "work-group loop (constant [0, T), T within the GPU's work-group limit, not nested)", lo, hi);
  var = add_var(b, name, MOSS_DT_I64, 1, 1);
  s = stmt(b, MOSS_KS_LOOP);
  if (!s) return &poison;
  s->var = var;
  s->lo = lo;
  s->hi = hi;
  s->step = step;
  s->role = role;
  s->width = width;
  push(b, s, &s->body);
  return moss_k_var(b, var);
}

moss_kx *moss_k_range(moss_kb *b, const char *name, int64_t extent, moss_kloop_role role) {
  return moss_k_for(b, name, moss_k_idx(b, 0), moss_k_idx(b, extent), 1, role, 0);
}

void moss_k_if(moss_kb *b, moss_kx *cond) {
  moss_kstmt *s;
  if (bad(b, cond)) return;
  if (cond->dt != MOSS_DT_BOOL || cond->lanes != 1) {
    ill(b, "if condition", cond, NULL);
    return;
  }
  s = stmt(b, MOSS_KS_IF);
  if (!s) return;
  s->cond = cond;
  push(b, s, &s->body);
}

void moss_k_else(moss_kb *b) {
  if (b->st != MOSS_OK) return;
  if (b->depth < 1 || b->open[b->depth]->kind != MOSS_KS_IF) {
    moss_kb_fail(b, MOSS_E_INTERNAL, "kernel description: else without if");
    return;
  }
  b->tail[b->depth] = &b->open[b->depth]->orelse;
}

void moss_k_end(moss_kb *b) {
  if (b->st != MOSS_OK) return;
  if (b->depth < 1) {
    moss_kb_fail(b, MOSS_E_INTERNAL, "kernel description: end without loop or if");
    return;
  }
  b->depth--;
}

void moss_k_store(moss_kb *b, int buf, moss_kx *index, moss_kx *value) {
  moss_kstmt *s;
  if (!check_buf(b, buf) || bad(b, index) || bad(b, value)) return;
  if (!is_index(index) || value->dt != b->k->bufs[buf].dt ||
      b->k->bufs[buf].kind == MOSS_KB_INPUT || b->k->bufs[buf].kind == MOSS_KB_TABLE) {
    ill(b, "store", index, value);
    return;
  }
  s = stmt(b, MOSS_KS_STORE);
  if (!s) return;
  s->buf = buf;
  s->index = index;
  s->value = value;
}

moss_kx *moss_k_let(moss_kb *b, const char *name, moss_kx *init) {
  moss_kstmt *s;
  int var;
  if (bad(b, init)) return &poison;
  var = add_var(b, name, init->dt, init->lanes, 0);
  s = stmt(b, MOSS_KS_LET);
  if (!s) return &poison;
  s->var = var;
  s->value = init;
  return moss_k_var(b, var);
}

void moss_k_set(moss_kb *b, moss_kx *var, moss_kx *value) {
  moss_kstmt *s;
  if (bad(b, var) || bad(b, value)) return;
  if (var->op != MOSS_KX_VAR || b->k->vars[var->var].is_loop) {
    ill(b, "assignment to a non-variable", var, value);
    return;
  }
  if (value->lanes == 1 && var->lanes > 1) value = moss_k_splat(b, value, var->lanes);
  if (value->dt != var->dt || value->lanes != var->lanes) {
    ill(b, "assignment", var, value);
    return;
  }
  s = stmt(b, MOSS_KS_SET);
  if (!s) return;
  s->var = var->var;
  s->value = value;
}

void moss_k_comment(moss_kb *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  moss_kstmt *s;
  if (b->st != MOSS_OK) return;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  s = stmt(b, MOSS_KS_COMMENT);
  if (!s) return;
  s->text = moss_arena_strdup(b->arena, tmp);
  if (!s->text) moss_kb_fail(b, MOSS_E_NOMEM, "kernel description");
}

void moss_k_barrier(moss_kb *b) {
  if (b->st != MOSS_OK) return;
  if (!in_group(b)) {
    moss_kb_fail(b, MOSS_E_INTERNAL, "kernel description: barrier outside a work-group loop");
    return;
  }
  stmt(b, MOSS_KS_BARRIER);
}

/* ---- helpers for the lowerings --------------------------------------------------------- */

moss_kx *moss_k_act(moss_kb *b, const moss_node *n, moss_kx *v) {
  moss_dtype dt = v->dt;
  moss_kx *zero = moss_k_flt(b, dt, 0.0);
  switch (n->act.kind) {
  case MOSS_ACT_RELU: return moss_k_bin(b, MOSS_KX_MAX, v, zero);
  case MOSS_ACT_CLIP: {
    moss_kx *lo = moss_k_flt(b, dt, n->act.alpha), *hi = moss_k_flt(b, dt, n->act.beta);
    return moss_k_select(b, moss_k_bin(b, MOSS_KX_LT, v, lo), lo,
                         moss_k_select(b, moss_k_bin(b, MOSS_KX_GT, v, hi), hi, v));
  }
  case MOSS_ACT_LEAKY_RELU:
    return moss_k_select(b, moss_k_bin(b, MOSS_KX_GE, v, zero), v,
                         moss_k_bin(b, MOSS_KX_MUL, v, moss_k_flt(b, dt, n->act.alpha)));
  case MOSS_ACT_SIGMOID: {
    moss_kx *one = moss_k_flt(b, dt, 1.0);
    return moss_k_bin(b, MOSS_KX_DIV, one,
                      moss_k_bin(b, MOSS_KX_ADD, one,
                                 moss_k_call(b, MOSS_KFN_EXP, moss_k_un(b, MOSS_KX_NEG, v), NULL, NULL)));
  }
  case MOSS_ACT_TANH: return moss_k_call(b, MOSS_KFN_TANH, v, NULL, NULL);
  default: return v;
  }
}

moss_kx *moss_k_bcast_index(moss_kb *b, int rank, const int64_t *dims, moss_kx *const *idx,
                            int in_rank, const int64_t *in_dims) {
  moss_kx *e = moss_k_idx(b, 0);
  int64_t stride = 1;
  int k, off = rank - in_rank;
  for (k = rank - 1; k >= 0; k--) {
    int ik = k - off;
    if (ik < 0) break;
    if (in_dims[ik] != 1 && dims[k] != 1) e = moss_k_add(b, e, moss_k_mulc(b, idx[k], stride));
    stride *= in_dims[ik];
  }
  return e;
}

moss_kx *moss_k_flat_index(moss_kb *b, int rank, const int64_t *dims, moss_kx *const *idx) {
  return moss_k_bcast_index(b, rank, dims, idx, rank, dims);
}

int moss_k_bcast_open(moss_kb *b, int rank, const int64_t *dims, int nin, const int *in_rank,
                      const int64_t (*in_dims)[MOSS_MAX_RANK], moss_kx **out_o, moss_kx **out_idx) {
  moss_kx *idx[MOSS_MAX_RANK];
  int64_t numel = 1;
  int k, j, flat = 1;
  for (k = 0; k < rank; k++) numel *= dims[k];
  for (j = 0; j < nin; j++) {
    int64_t ne = 1;
    /* Equal element counts under broadcasting mean equal shapes up to
     * leading ones: the flat index is the same. */
    for (k = 0; k < in_rank[j]; k++) ne *= in_dims[j][k];
    if (!(ne == numel || ne == 1)) flat = 0;
  }
  if (flat) {
    moss_kx *i = moss_k_range(b, "i", numel, MOSS_KL_PARALLEL);
    for (j = 0; j < nin; j++) {
      int64_t ne = 1;
      for (k = 0; k < in_rank[j]; k++) ne *= in_dims[j][k];
      out_idx[j] = ne == 1 && numel != 1 ? moss_k_idx(b, 0) : i;
    }
    *out_o = i;
    return 1;
  }
  for (k = 0; k < rank; k++) {
    char name[16];
    snprintf(name, sizeof name, "i%d", k);
    idx[k] = moss_k_range(b, name, dims[k], MOSS_KL_PARALLEL);
  }
  for (j = 0; j < nin; j++)
    out_idx[j] = moss_k_bcast_index(b, rank, dims, idx, in_rank[j], in_dims[j]);
  *out_o = moss_k_flat_index(b, rank, dims, idx);
  return rank;
}

/* ---- text form ----------------------------------------------------------------------- */

static void type_text(moss_buf *o, moss_dtype dt, int lanes) {
  if (lanes > 1) moss_buf_printf(o, "%sx%d", moss_dtype_short(dt), lanes);
  else moss_buf_printf(o, "%s", moss_dtype_short(dt));
}

static void expr_text(const moss_kernel *k, const moss_kx *x, moss_buf *o) {
  int i;
  switch (x->op) {
  case MOSS_KX_CONST:
    if (moss_dtype_is_float(x->dt)) moss_buf_printf(o, "%.9g", x->f);
    else moss_buf_printf(o, "%lld", (long long)x->i);
    if (x->dt != MOSS_DT_I64) {
      moss_buf_printf(o, ":");
      type_text(o, x->dt, 1);
    }
    return;
  case MOSS_KX_VAR: moss_buf_printf(o, "%s", k->vars[x->var].name); return;
  case MOSS_KX_LOAD:
    moss_buf_printf(o, "%s[", k->bufs[x->buf].name);
    expr_text(k, x->a[0], o);
    if (x->lanes > 1) moss_buf_printf(o, " +: %d", x->lanes);
    moss_buf_printf(o, "]");
    return;
  case MOSS_KX_LOAD_OR:
    moss_buf_printf(o, "load_or(%s[", k->bufs[x->buf].name);
    expr_text(k, x->a[0], o);
    moss_buf_printf(o, "], ");
    expr_text(k, x->a[1], o);
    moss_buf_printf(o, ", ");
    expr_text(k, x->a[2], o);
    moss_buf_printf(o, ")");
    return;
  case MOSS_KX_CAST: case MOSS_KX_SPLAT:
    moss_buf_printf(o, "%s<", moss_kx_op_name(x->op));
    type_text(o, x->dt, x->lanes);
    moss_buf_printf(o, ">(");
    expr_text(k, x->a[0], o);
    moss_buf_printf(o, ")");
    return;
  case MOSS_KX_CALL:
    moss_buf_printf(o, "%s", moss_kfn_name(x->fn));
    if (x->fn == MOSS_KFN_SAT) {
      moss_buf_printf(o, "<");
      type_text(o, x->dt, x->lanes);
      moss_buf_printf(o, ">");
    }
    break;
  default: {
    static const char *const infix[] = {"+", "-", "*", "/", "%", NULL, NULL, "&", "|", "^",
                                        "<<", ">>", "&&", "||", "==", "!=", "<", "<=", ">", ">="};
    if (x->nargs == 2 && x->op >= MOSS_KX_ADD && infix[x->op - MOSS_KX_ADD]) {
      moss_buf_printf(o, "(");
      expr_text(k, x->a[0], o);
      moss_buf_printf(o, " %s ", infix[x->op - MOSS_KX_ADD]);
      expr_text(k, x->a[1], o);
      moss_buf_printf(o, ")");
      return;
    }
    moss_buf_printf(o, "%s", moss_kx_op_name(x->op));
    break;
  }
  }
  moss_buf_printf(o, "(");
  for (i = 0; i < x->nargs; i++) {
    if (i) moss_buf_printf(o, ", ");
    expr_text(k, x->a[i], o);
  }
  moss_buf_printf(o, ")");
}

static const char *const role_names[] = {"serial", "parallel", "reduce", "vector", "unroll", "group"};

static void stmts_text(const moss_kernel *k, const moss_kstmt *s, int depth, moss_buf *o) {
  for (; s; s = s->next) {
    moss_buf_printf(o, "%*s", 2 * depth + 2, "");
    switch (s->kind) {
    case MOSS_KS_LOOP:
      moss_buf_printf(o, "for %s in [", k->vars[s->var].name);
      expr_text(k, s->lo, o);
      moss_buf_printf(o, ", ");
      expr_text(k, s->hi, o);
      moss_buf_printf(o, ")");
      if (s->step != 1) moss_buf_printf(o, " step %lld", (long long)s->step);
      moss_buf_printf(o, " %s", role_names[s->role]);
      if (s->width) moss_buf_printf(o, "(%d)", s->width);
      if (s->parts) moss_buf_printf(o, " in %d parts", s->parts);
      moss_buf_printf(o, ":\n");
      stmts_text(k, s->body, depth + 1, o);
      break;
    case MOSS_KS_STORE:
      moss_buf_printf(o, "%s[", k->bufs[s->buf].name);
      expr_text(k, s->index, o);
      if (s->value->lanes > 1) moss_buf_printf(o, " +: %d", s->value->lanes);
      moss_buf_printf(o, "] = ");
      expr_text(k, s->value, o);
      moss_buf_printf(o, "\n");
      break;
    case MOSS_KS_LET: case MOSS_KS_SET:
      moss_buf_printf(o, "%s%s", s->kind == MOSS_KS_LET ? "let " : "", k->vars[s->var].name);
      if (s->kind == MOSS_KS_LET) {
        moss_buf_printf(o, ": ");
        type_text(o, k->vars[s->var].dt, k->vars[s->var].lanes);
      }
      moss_buf_printf(o, " = ");
      expr_text(k, s->value, o);
      moss_buf_printf(o, "\n");
      break;
    case MOSS_KS_IF:
      moss_buf_printf(o, "if ");
      expr_text(k, s->cond, o);
      moss_buf_printf(o, ":\n");
      stmts_text(k, s->body, depth + 1, o);
      if (s->orelse) {
        moss_buf_printf(o, "%*selse:\n", 2 * depth + 2, "");
        stmts_text(k, s->orelse, depth + 1, o);
      }
      break;
    case MOSS_KS_COMMENT: moss_buf_printf(o, "# %s\n", s->text); break;
    case MOSS_KS_BARRIER: moss_buf_printf(o, "barrier\n"); break;
    }
  }
}

void moss_kernel_print(const moss_kernel *k, moss_buf *out) {
  static const char *const kinds[] = {"?", "input", "output", "table", "local", "scratch", "shared"};
  int i;
  moss_buf_printf(out, "kernel node %d '%s' (%s)\n", k->node->id, k->node->name, k->node->op_type);
  for (i = 0; i < k->nbufs; i++) {
    const moss_kbuf *bf = &k->bufs[i];
    moss_buf_printf(out, "  buffer %s: %s %s[%lld]", bf->name, kinds[bf->kind],
                    moss_dtype_short(bf->dt), (long long)bf->numel);
    if (bf->value) moss_buf_printf(out, " '%s'", bf->value->name);
    if (bf->kind == MOSS_KB_SCRATCH)
      moss_buf_printf(out, " at arena byte %lld", (long long)(k->node->scratch_offset + bf->offset));
    moss_buf_printf(out, "\n");
  }
  stmts_text(k, k->body, 0, out);
}
