/* emit_matmul.c - placeholder until this family is written. */
#include "cgen.h"

moss_status moss_c_emit_matmul(moss_cgen *cg, const moss_node *n) {
  return moss_fail(cg->ctx, MOSS_E_UNSUPPORTED, n, "the C backend has no code for this operator");
}
