/* emit_qfold.c - C for moss's own integer ops (compiler/ops/qfold.c). */
#include "cgen.h"

moss_status moss_c_emit_qfold(moss_cgen *cg, const moss_node *n) {
  return moss_fail(cg->ctx, MOSS_E_INTERNAL, n, "not built yet");
}
