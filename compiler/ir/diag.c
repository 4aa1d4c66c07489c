/* diag.c - diagnostics about a node: moss_diag_fail_at() takes the
 * moss_node that compiler/base/diag.c cannot see and hands its name and
 * operator to the one formatter there. */
#include "ir.h"

moss_status moss_diag_vfail_at(moss_ctx *ctx, const char *src, int line, moss_status code,
                               const moss_node *node, const char *fmt, va_list ap) {
  const char *name = NULL, *op = NULL;
  if (node) {
    name = node->name ? node->name : "";
    op = node->op_type ? node->op_type : "?";
  }
  return moss_diag_vfail_about(ctx, src, line, code, name, op, fmt, ap);
}

moss_status moss_diag_fail_at(moss_ctx *ctx, const char *src, int line, moss_status code,
                              const moss_node *node, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  moss_diag_vfail_at(ctx, src, line, code, node, fmt, ap);
  va_end(ap);
  return code;
}
