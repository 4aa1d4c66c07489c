/* diag.c - the single formatter for every message moss prints:
 * "<file>: node '<name>' (<OpType>): <category>: <reason> [<src>:<line>]".
 * The node part comes as two strings: this layer sees no IR (the wrapper
 * that takes a moss_node is compiler/ir/diag.c). */
#include <stdio.h>
#include <string.h>

#include "base.h"

const char *moss_status_category(moss_status st) {
  switch (st) {
  case MOSS_OK: return "ok";
  case MOSS_E_INVALID_MODEL: return "invalid-model";
  case MOSS_E_UNSUPPORTED: return "unsupported";
  case MOSS_E_TARGET: return "target";
  case MOSS_E_IO: return "io";
  case MOSS_E_NOMEM: return "out-of-memory";
  case MOSS_E_INTERNAL: return "internal";
  }
  return "internal";
}

void moss_ctx_init(moss_ctx *ctx, moss_allocator alloc) {
  memset(ctx, 0, sizeof *ctx);
  ctx->alloc = alloc;
#ifndef NDEBUG
  ctx->debug = 1;
#endif
}

void moss_progress(moss_ctx *ctx, const char *what, int64_t done, int64_t total) {
  if (ctx->progress) ctx->progress(ctx->progress_user, what, done, total);
}

moss_status moss_diag_vfail_about(moss_ctx *ctx, const char *src, int line, moss_status code,
                                  const char *node_name, const char *op_type, const char *fmt,
                                  va_list ap) {
  char *p = ctx->last;
  size_t cap = sizeof ctx->last, n = 0;
  const char *base = strrchr(src, '/');
  int k;
  base = base ? base + 1 : src;
  k = snprintf(p, cap, "%s: ", ctx->file ? ctx->file : "moss");
  if (k > 0) n += (size_t)k;
  if ((node_name || op_type) && n < cap) {
    k = snprintf(p + n, cap - n, "node '%s' (%s): ", node_name ? node_name : "",
                 op_type ? op_type : "?");
    if (k > 0) n += (size_t)k;
  }
  if (n < cap) {
    k = snprintf(p + n, cap - n, "%s: ", moss_status_category(code));
    if (k > 0) n += (size_t)k;
  }
  if (n < cap) {
    k = vsnprintf(p + n, cap - n, fmt, ap);
    if (k > 0) n += (size_t)k;
  }
  if (n < cap) snprintf(p + n, cap - n, " [%s:%d]", base, line);
  ctx->nerrors++;
  if (ctx->sink) ctx->sink(ctx->sink_user, code, ctx->last);
  return code;
}

moss_status moss_diag_fail_about(moss_ctx *ctx, const char *src, int line, moss_status code,
                                 const char *node_name, const char *op_type, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  moss_diag_vfail_about(ctx, src, line, code, node_name, op_type, fmt, ap);
  va_end(ap);
  return code;
}
