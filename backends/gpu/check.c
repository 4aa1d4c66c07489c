/* check.c - a node's GPU kernel description against a backend's test,
 * and the walk over a segment's launches. */
#include <stdio.h>

#include "check.h"
#include "moss_bundle.h"

static int expr_ok(const moss_kx *x, moss_gpu_expr_ok ok, char *why, size_t cap) {
  int i;
  if (!x) return 1;
  if (!ok(x, why, cap)) return 0;
  for (i = 0; i < 3; i++)
    if (!expr_ok(x->a[i], ok, why, cap)) return 0;
  return 1;
}

static int stmts_ok(const moss_kstmt *s, moss_gpu_expr_ok ok, char *why, size_t cap) {
  for (; s; s = s->next)
    if (!expr_ok(s->lo, ok, why, cap) || !expr_ok(s->hi, ok, why, cap) || !expr_ok(s->index, ok, why, cap) ||
        !expr_ok(s->value, ok, why, cap) || !expr_ok(s->cond, ok, why, cap) || !stmts_ok(s->body, ok, why, cap) ||
        !stmts_ok(s->orelse, ok, why, cap))
      return 0;
  return 1;
}

/* Whether the lowered |k| passes |ok| everywhere and uses no arena scratch. */
static int kernel_ok(const moss_kernel *k, moss_gpu_expr_ok ok, char *why, size_t cap) {
  int i;
  if (!stmts_ok(k->body, ok, why, cap)) return 0;
  for (i = 0; i < k->nbufs; i++)
    if (k->bufs[i].kind == MOSS_KB_SCRATCH) {
      snprintf(why, cap, "its kernel uses arena scratch, which GPU work-items cannot share");
      return 0;
    }
  return 1;
}

int moss_gpu_kernel_check(moss_ctx *ctx, const moss_node *n, moss_gpu_expr_ok ok, char *why, size_t cap) {
  moss_kernel_cpu gpu = {0};
  moss_ctx quiet;
  moss_arena *arena = NULL;
  moss_kernel *k;
  int good = 0;
  if (!moss_kernel_can_lower(n)) {
    snprintf(why, cap, "no kernel description for %s", n->op_type);
    return 0;
  }
  moss_ctx_init(&quiet, ctx->alloc);
  if (moss_arena_create(ctx->alloc, 1 << 16, &arena) != MOSS_OK) {
    snprintf(why, cap, "out of memory");
    return 0;
  }
  gpu.gpu = 1;
  if (moss_kernel_lower(&quiet, arena, n, &gpu, &k) != MOSS_OK) {
    snprintf(why, cap, "its kernel description failed: %s", quiet.last);
  } else {
    good = kernel_ok(k, ok, why, cap);
  }
  moss_arena_destroy(arena);
  return good;
}

moss_status moss_gpu_each_launch(moss_ctx *ctx, const moss_kernel_cpu *facts, moss_node *const *nodes, int nnodes,
                                 moss_gpu_expr_ok ok, moss_gpu_launch_fn launch, void *user, moss_buf *items) {
  moss_kernel_cpu gpu = *facts;
  moss_arena *karena = NULL;
  moss_status st = MOSS_OK;
  int i;
  gpu.gpu = 1;
  if (moss_arena_create(ctx->alloc, 1 << 16, &karena) != MOSS_OK)
    return moss_fail(ctx, MOSS_E_NOMEM, nnodes ? nodes[0] : NULL, "GPU kernels");
  for (i = 0; i < nnodes && st == MOSS_OK; i++) {
    moss_kernel *k;
    const moss_kstmt *bodies[MOSS_KERNEL_MAX_LAUNCHES];
    char why[200];
    int nb, j;
    if (!moss_kernel_can_lower(nodes[i])) {
      st = moss_fail(ctx, MOSS_E_UNSUPPORTED, nodes[i], "no kernel description for %s", nodes[i]->op_type);
      break;
    }
    moss_arena_reset(karena);
    if ((st = moss_kernel_lower(ctx, karena, nodes[i], &gpu, &k)) != MOSS_OK) break;
    if (!kernel_ok(k, ok, why, sizeof why)) { /* the kernel as it is emitted, tiles included */
      st = moss_fail(ctx, MOSS_E_UNSUPPORTED, nodes[i], "%s", why);
      break;
    }
    nb = moss_kernel_launches(karena, k, bodies, MOSS_KERNEL_MAX_LAUNCHES);
    for (j = 0; j < nb && st == MOSS_OK; j++) {
      int64_t n1 = 0;
      st = launch(user, k, bodies[j], (int)(items->len / sizeof n1), &n1);
      n1 = (int64_t)MOSS_GPU_LAUNCH(n1, moss_kernel_group(bodies[j]));
      moss_buf_put(items, &n1, sizeof n1);
    }
  }
  if (st == MOSS_OK && items->failed) st = moss_fail(ctx, MOSS_E_NOMEM, nodes[0], "GPU kernels");
  moss_arena_destroy(karena);
  return st;
}
