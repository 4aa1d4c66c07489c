/* memory.c - context allocation helpers, checked size arithmetic, the bump
 * arena that holds IR, and the growable buffer the emitters write into. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

void *moss_alloc(moss_ctx *ctx, size_t size) {
  void *p;
  if (size == 0) size = 1;
  p = ctx->alloc.fn(ctx->alloc.user, NULL, 0, size);
  if (p) memset(p, 0, size);
  return p;
}

void *moss_realloc(moss_ctx *ctx, void *ptr, size_t old_size, size_t new_size) {
  if (new_size == 0) new_size = 1;
  return ctx->alloc.fn(ctx->alloc.user, ptr, old_size, new_size);
}

void moss_free(moss_ctx *ctx, void *ptr, size_t size) {
  if (ptr) ctx->alloc.fn(ctx->alloc.user, ptr, size, 0);
}

int moss_size_mul(size_t a, size_t b, size_t *out) {
  if (a != 0 && b > (size_t)-1 / a) return 0;
  *out = a * b;
  return 1;
}

int moss_size_add(size_t a, size_t b, size_t *out) {
  if (b > (size_t)-1 - a) return 0;
  *out = a + b;
  return 1;
}

int moss_i64_add(int64_t a, int64_t b, int64_t *out) {
  if (a < 0 || b < 0 || b > INT64_MAX - a) return 0;
  *out = a + b;
  return 1;
}

int moss_i64_mul(int64_t a, int64_t b, int64_t *out) {
  if (a < 0 || b < 0 || (a != 0 && b > INT64_MAX / a)) return 0;
  *out = a * b;
  return 1;
}

typedef struct block {
  struct block *next;
  size_t size, used;
} block;

struct moss_arena {
  moss_allocator a;
  size_t block_size;
  block *head;
};

moss_status moss_arena_create(moss_allocator a, size_t block_size, moss_arena **out_arena) {
  moss_arena *ar;
  const char *env;
  *out_arena = NULL;
  ar = a.fn(a.user, NULL, 0, sizeof *ar);
  if (!ar) return MOSS_E_NOMEM;
  ar->a = a;
  ar->block_size = block_size < 1024 ? 1024 : block_size;
  /* The unit tests' allocation-failure runs set MOSS_ARENA_BLOCK=1, so that
   * every arena allocation is a call of the allocator that can fail. */
  if ((env = getenv("MOSS_ARENA_BLOCK")) != NULL) ar->block_size = strtoul(env, NULL, 10);
  ar->head = NULL;
  *out_arena = ar;
  return MOSS_OK;
}

void *moss_arena_alloc(moss_arena *ar, size_t size, size_t align) {
  block *b = ar->head;
  uintptr_t base, p;
  size_t need;
  if (align < 16) align = 16;
  if (b && ar->block_size > 1) { /* 1 (MOSS_ARENA_BLOCK=1): a block per allocation */
    base = (uintptr_t)(b + 1);
    p = (base + b->used + align - 1) & ~(uintptr_t)(align - 1);
    if (p - base <= b->size && size <= b->size - (p - base)) {
      b->used = p - base + size;
      memset((void *)p, 0, size);
      return (void *)p;
    }
  }
  if (!moss_size_add(size, align + sizeof(block), &need)) return NULL;
  if (need < ar->block_size) need = ar->block_size;
  b = ar->a.fn(ar->a.user, NULL, 0, need);
  if (!b) return NULL;
  b->size = need - sizeof(block);
  b->next = ar->head;
  ar->head = b;
  base = (uintptr_t)(b + 1);
  p = (base + align - 1) & ~(uintptr_t)(align - 1);
  b->used = p - base + size;
  memset((void *)p, 0, size);
  return (void *)p;
}

char *moss_arena_strdup(moss_arena *ar, const char *s) {
  size_t n = strlen(s ? s : "");
  char *p = moss_arena_alloc(ar, n + 1, 1);
  if (p && n) memcpy(p, s, n);
  return p;
}

void moss_arena_reset(moss_arena *ar) {
  block *b = ar->head;
  while (b && b->next) {
    block *next = b->next;
    ar->a.fn(ar->a.user, b, b->size + sizeof(block), 0);
    b = next;
  }
  ar->head = b;
  if (b) b->used = 0;
}

void moss_arena_destroy(moss_arena *ar) {
  block *b;
  if (!ar) return;
  b = ar->head;
  while (b) {
    block *next = b->next;
    ar->a.fn(ar->a.user, b, b->size + sizeof(block), 0);
    b = next;
  }
  ar->a.fn(ar->a.user, ar, sizeof *ar, 0);
}

void moss_buf_init(moss_buf *b, moss_ctx *ctx) {
  memset(b, 0, sizeof *b);
  b->ctx = ctx;
}

void moss_buf_deinit(moss_buf *b) {
  moss_free(b->ctx, b->data, b->cap);
  memset(b, 0, sizeof *b);
}

static int reserve(moss_buf *b, size_t extra) {
  size_t need, cap;
  char *p;
  if (b->failed) return 0;
  if (!moss_size_add(b->len, extra + 1, &need)) return b->failed = 1, 0;
  if (need <= b->cap) return 1;
  cap = b->cap ? b->cap : 256;
  while (cap < need) cap *= 2;
  p = moss_realloc(b->ctx, b->data, b->cap, cap);
  if (!p) return b->failed = 1, 0;
  b->data = p;
  b->cap = cap;
  return 1;
}

void moss_buf_put(moss_buf *b, const void *data, size_t n) {
  if (!reserve(b, n)) return;
  memcpy(b->data + b->len, data, n);
  b->len += n;
  b->data[b->len] = 0;
}

void moss_buf_printf(moss_buf *b, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !reserve(b, (size_t)n)) return;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}
