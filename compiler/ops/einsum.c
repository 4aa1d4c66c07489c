/* einsum.c - placeholder until this family is written: every node reports
 * itself unsupported. */
#include "ops.h"

moss_status moss_infer_einsum(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)g;
  return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "operator not implemented yet");
}

moss_status moss_eval_einsum(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED;
}
