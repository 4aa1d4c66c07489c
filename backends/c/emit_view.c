/* emit_view.c - C for Reshape/Flatten/Squeeze/Unsqueeze/Identity/Dropout:
 * nothing when the planner aliased the output onto the input, else one
 * memcpy; Dropout's mask (inference) is all true. */
#include "cgen.h"

moss_status moss_c_emit_view(moss_cgen *cg, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0];
  if (y->alias == x) moss_c_line(cg, "/* in place: the output aliases the input */");
  else moss_c_line(cg, "memcpy(y0, x0, %zu);", moss_value_nbytes(x));
  if (n->noutputs > 1 && n->outputs[1]) moss_c_line(cg, "memset(y1, 1, %zu);", moss_value_nbytes(n->outputs[1]));
  return MOSS_OK;
}
