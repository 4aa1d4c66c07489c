/* lower_view.c - Reshape, Flatten, Squeeze, Unsqueeze, Identity and
 * Dropout: the output holds the input's elements in the same order. When
 * the memory planner made the output an alias of the input (plan.c), the
 * kernel has nothing to do and names no buffer (so a view of a type no
 * kernel computes on still compiles); otherwise it is one parallel copy.
 * Dropout at inference copies its input and its mask output is all true. */
#include "lower.h"

moss_status moss_lower_view(moss_kb *b, const moss_node *n) {
  const moss_value *x = n->inputs[0], *y = n->outputs[0],
                   *mask = n->noutputs > 1 ? n->outputs[1] : NULL;
  int64_t ne = moss_value_numel(y);
  moss_kx *i;
  if (y->alias == x) {
    moss_k_comment(b, "in place: the output aliases the input");
  } else if (ne > 0) {
    int xb = moss_k_input(b, 0), yb = moss_k_output(b, 0);
    i = moss_k_range(b, "i", ne, MOSS_KL_PARALLEL);
    moss_k_store(b, yb, i, moss_k_load(b, xb, i));
    moss_k_end(b);
  }
  if (mask && moss_value_numel(mask) > 0) {
    int mb = moss_k_output(b, 1);
    i = moss_k_range(b, "i", moss_value_numel(mask), MOSS_KL_PARALLEL);
    moss_k_store(b, mb, i, moss_k_int(b, mask->dtype, 1));
    moss_k_end(b);
  }
  return b->st;
}
