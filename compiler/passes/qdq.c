/* qdq.c - folding of quantized regions (passes.h). */
#include "passes.h"

moss_status moss_pass_qdq(moss_ctx *ctx, moss_graph *g) {
  (void)ctx;
  (void)g;
  return MOSS_OK;
}
