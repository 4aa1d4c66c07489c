/* qfold.c - moss's own integer ops (made by the qdq pass). */
#include "ops.h"

moss_status moss_infer_qfold(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)g;
  return moss_fail(ctx, MOSS_E_INTERNAL, n, "not built yet");
}

moss_status moss_eval_qfold(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED;
}
