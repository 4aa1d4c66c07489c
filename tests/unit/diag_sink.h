/* diag_sink.h - unit tests capture moss diagnostics here, one per line,
 * to assert their text. */
#ifndef MOSS_TEST_DIAG_SINK_H
#define MOSS_TEST_DIAG_SINK_H

#include <stdio.h>
#include <string.h>

#include "base/base.h"

typedef struct sink_buf {
  char text[16384];
  size_t len;
  int count;
} sink_buf;

static void sink(void *user, moss_status code, const char *msg) {
  sink_buf *b = user;
  int k;
  (void)code;
  b->count++;
  if (b->len >= sizeof b->text) return;
  k = snprintf(b->text + b->len, sizeof b->text - b->len, "%s\n", msg);
  if (k > 0) b->len += (size_t)k;
  if (b->len > sizeof b->text) b->len = sizeof b->text;
}

/* A libc-backed context whose diagnostics go to |b| (emptied). */
static void ctx_with_sink(moss_ctx *ctx, sink_buf *b) {
  memset(b, 0, sizeof *b);
  moss_ctx_init(ctx, moss_allocator_libc());
  ctx->sink = sink;
  ctx->sink_user = b;
}

#endif
