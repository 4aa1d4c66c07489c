/* ptq.c - post-training quantization (ptq.h). Placeholder until the
 * calibration runner lands: both entry points refuse clearly. */
#include "ptq.h"

moss_status moss_ptq_observe(moss_ctx *ctx, moss_graph *g) {
  (void)g;
  return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "calibration runs are not built yet");
}

moss_status moss_ptq_apply(moss_ctx *ctx, moss_graph *g, const moss_compile_opts *opts) {
  (void)g;
  (void)opts;
  return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "--quantize is not built yet");
}
