/* lower.h - the lowerings: one function per operator family that describes
 * a node of that family as a kernel (kernel.h). lower.c holds the table. */
#ifndef MOSS_LOWER_H
#define MOSS_LOWER_H

#include "../ops/ops.h"
#include "kernel.h"

typedef moss_status (*moss_lower_fn)(moss_kb *b, const moss_node *n);

/* The families that have a lowering, one line each: X(family, takes),
 * where |takes| is NULL when the lowering describes every node of the
 * family, or a predicate naming the nodes it describes (the others, until
 * they move, are printed as C directly by backends/c/emit_<family>.c and
 * are not available to other backends). */
#define MOSS_LOWERED_FAMILIES(X) \
  X(unary, NULL)                 \
  X(binary, NULL)                \
  /* end */

#define MOSS_LOWER_DECL(f, takes) moss_status moss_lower_##f(moss_kb *b, const moss_node *n);
MOSS_LOWERED_FAMILIES(MOSS_LOWER_DECL)
#undef MOSS_LOWER_DECL

#endif
