/* parts.c - the compile-time split of a kernel's parallel loops into parts
 * for threads (moss_kernel_plan_parts, kernel.h).
 *
 * A backend that runs parts on threads (the LLVM backend, through the
 * runtime's pool) makes each cut loop a function of its part number that
 * runs iterations [lo + trip * p / P, lo + trip * (p + 1) / P) of the loop,
 * and waits for all P parts before the statement that follows: the loop's
 * place in the kernel keeps its meaning (an implicit barrier, as OpenMP's
 * parallel for). A backend that does not (the C backend) runs the loop as
 * it stands. */
#include "kernel.h"

/* Operations an expression costs: one per node. */
static double expr_work(const moss_kx *x) {
  double w = 1;
  int i;
  if (!x) return 0;
  for (i = 0; i < x->nargs; i++) w += expr_work(x->a[i]);
  return w;
}

/* A loop's trip count; one whose bounds are not constants counts 16. */
static double trips(const moss_kstmt *s) {
  int64_t n;
  if (s->lo->op != MOSS_KX_CONST || s->hi->op != MOSS_KX_CONST) return 16;
  n = (s->hi->i - s->lo->i + s->step - 1) / s->step;
  return n > 0 ? (double)n : 0;
}

/* The operations a statement list runs: each statement's expressions, a
 * loop's body times its trips, a branch's longer side. */
static double work(const moss_kstmt *s) {
  double w = 0;
  for (; s; s = s->next) switch (s->kind) {
    case MOSS_KS_LOOP: w += trips(s) * (1 + work(s->body)); break;
    case MOSS_KS_STORE: w += 1 + expr_work(s->index) + expr_work(s->value); break;
    case MOSS_KS_LET: case MOSS_KS_SET: w += 1 + expr_work(s->value); break;
    case MOSS_KS_IF: {
      double a = work(s->body), b = work(s->orelse);
      w += expr_work(s->cond) + (a > b ? a : b);
      break;
    }
    case MOSS_KS_COMMENT: case MOSS_KS_BARRIER: break;
    }
  return w;
}

/* Adds to |refs|[buf] each use of a buffer in |x|. */
static void expr_bufs(const moss_kx *x, int *refs) {
  int i;
  if (!x) return;
  if (x->op == MOSS_KX_LOAD || x->op == MOSS_KX_LOAD_OR) refs[x->buf]++;
  for (i = 0; i < x->nargs; i++) expr_bufs(x->a[i], refs);
}

/* Counts the uses of each buffer in |s| (|all|: the whole list, else the
 * one statement) into |refs|, and marks in |decl| the variables declared
 * there (loop variables, lets); returns whether a variable is set there
 * that is not marked in |decl| when the set is met (declared outside). */
static int scan(const moss_kstmt *s, int all, int *refs, unsigned char *decl) {
  int outer_set = 0;
  for (; s; s = all ? s->next : NULL) {
    switch (s->kind) {
    case MOSS_KS_LOOP:
      decl[s->var] = 1;
      expr_bufs(s->lo, refs);
      expr_bufs(s->hi, refs);
      outer_set |= scan(s->body, 1, refs, decl);
      break;
    case MOSS_KS_STORE:
      refs[s->buf]++;
      expr_bufs(s->index, refs);
      expr_bufs(s->value, refs);
      break;
    case MOSS_KS_LET: decl[s->var] = 1; expr_bufs(s->value, refs); break;
    case MOSS_KS_SET: outer_set |= !decl[s->var]; expr_bufs(s->value, refs); break;
    case MOSS_KS_IF:
      expr_bufs(s->cond, refs);
      outer_set |= scan(s->body, 1, refs, decl);
      outer_set |= scan(s->orelse, 1, refs, decl);
      break;
    case MOSS_KS_COMMENT: case MOSS_KS_BARRIER: break;
    }
  }
  return outer_set;
}

typedef struct planner {
  moss_kernel *k;
  int threads;
  int *all_refs, *in_refs; /* per buffer: uses in the kernel, in the loop at hand */
  unsigned char *decl;     /* per variable */
} planner;

/* Whether loop |s|'s parts can run on their own (parts.c's header). */
static int can_cut(planner *P, const moss_kstmt *s) {
  int i, outer_set;
  for (i = 0; i < P->k->nbufs; i++) P->in_refs[i] = 0;
  for (i = 0; i < P->k->nvars; i++) P->decl[i] = 0;
  outer_set = scan(s, 0, P->in_refs, P->decl);
  if (outer_set) return 0;
  for (i = 0; i < P->k->nbufs; i++)
    if (P->k->bufs[i].kind == MOSS_KB_LOCAL && P->in_refs[i] && P->in_refs[i] != P->all_refs[i]) return 0;
  return 1;
}

static void plan(planner *P, moss_kstmt *s) {
  for (; s; s = s->next) {
    if (s->kind == MOSS_KS_IF) {
      plan(P, s->body);
      plan(P, s->orelse);
    } else if (s->kind == MOSS_KS_LOOP && s->role == MOSS_KL_SERIAL) {
      plan(P, s->body);
    } else if (s->kind == MOSS_KS_LOOP && s->role == MOSS_KL_PARALLEL) {
      double n = trips(s), w = n * (1 + work(s->body)), parts = 4.0 * P->threads;
      if (w / MOSS_PART_WORK < parts) parts = (double)(int64_t)(w / MOSS_PART_WORK);
      if (n < parts) parts = n;
      if (parts >= 2 && can_cut(P, s)) s->parts = (int)parts;
      else if (n < 2) plan(P, s->body); /* one iteration (a batch of 1): cut what is inside */
    }
  }
}

/* Kernels are small: their buffers and variables are counted on the stack
 * (a kernel with more is not cut and runs on one thread). */
#define MAX_BUFS 256
#define MAX_VARS 4096

void moss_kernel_plan_parts(moss_kernel *k, int threads) {
  planner P;
  int all[MAX_BUFS], in[MAX_BUFS], i;
  unsigned char decl[MAX_VARS];
  if (threads < 2 || !k->body || k->nbufs > MAX_BUFS || k->nvars > MAX_VARS) return;
  P.k = k;
  P.threads = threads;
  P.all_refs = all;
  P.in_refs = in;
  P.decl = decl;
  for (i = 0; i < k->nbufs; i++) all[i] = 0;
  for (i = 0; i < k->nvars; i++) decl[i] = 0;
  scan(k->body, 1, all, decl);
  plan(&P, k->body);
}

/* The loop that |s| is, after LET statements and comments, when nothing
 * but comments follows it; else NULL. */
static const moss_kstmt *sole_loop(const moss_kstmt *s) {
  while (s && (s->kind == MOSS_KS_LET || s->kind == MOSS_KS_COMMENT)) s = s->next;
  if (!s || s->kind != MOSS_KS_LOOP) return NULL;
  for (const moss_kstmt *t = s->next; t; t = t->next)
    if (t->kind != MOSS_KS_COMMENT) return NULL;
  return s;
}

int moss_kernel_grid(const moss_kstmt *body, const moss_kstmt **loops, int64_t *ext, int64_t *total) {
  const moss_kstmt *s = body;
  int n = 0;
  *total = 1;
  while (n < MOSS_GRID_MAX_LOOPS) {
    const moss_kstmt *t = sole_loop(s);
    int64_t e;
    if (!t || (t->role != MOSS_KL_PARALLEL && t->role != MOSS_KL_GROUP) || t->lo->op != MOSS_KX_CONST ||
        t->hi->op != MOSS_KX_CONST || t->step < 1)
      break;
    e = t->hi->i > t->lo->i ? (t->hi->i - t->lo->i + t->step - 1) / t->step : 0;
    if (e > 0 && *total > ((int64_t)1 << 31) / e) break;
    loops[n] = t;
    ext[n++] = e;
    *total *= e;
    if (t->role == MOSS_KL_GROUP) break; /* the work-group's lanes: innermost */
    s = t->body;
  }
  return n;
}

int moss_kernel_group(const moss_kstmt *body) {
  const moss_kstmt *loops[MOSS_GRID_MAX_LOOPS];
  int64_t ext[MOSS_GRID_MAX_LOOPS], total;
  int n = moss_kernel_grid(body, loops, ext, &total);
  return n && loops[n - 1]->role == MOSS_KL_GROUP ? (int)ext[n - 1] : 0;
}

int moss_kernel_launches(moss_arena *arena, const moss_kernel *k, const moss_kstmt **bodies, int max) {
  const moss_kstmt *s;
  int n = 0, i;
  bodies[0] = k->body;
  for (i = 0; i < k->nbufs; i++)
    if (k->bufs[i].kind == MOSS_KB_LOCAL || k->bufs[i].kind == MOSS_KB_SHARED) return 1;
  for (s = k->body; s; s = s->next) {
    if (s->kind == MOSS_KS_LOOP) {
      if (s->role != MOSS_KL_PARALLEL) return 1;
      n++;
    } else if (s->kind != MOSS_KS_LET && s->kind != MOSS_KS_COMMENT) {
      return 1;
    }
  }
  if (n < 2 || n > max) return 1;
  for (i = 0, s = k->body; s; s = s->next) {
    const moss_kstmt *t;
    moss_kstmt *head = NULL, **tail = &head, *c;
    if (s->kind != MOSS_KS_LOOP) continue;
    for (t = k->body; t != s; t = t->next) /* the LETs before it */
      if (t->kind == MOSS_KS_LET) {
        if (!(c = moss_arena_alloc(arena, sizeof *c, 16))) return bodies[0] = k->body, 1;
        *c = *t;
        c->next = NULL;
        *tail = c;
        tail = &c->next;
      }
    if (!(c = moss_arena_alloc(arena, sizeof *c, 16))) return bodies[0] = k->body, 1;
    *c = *s;
    c->next = NULL;
    *tail = c;
    bodies[i++] = head;
  }
  return n;
}
