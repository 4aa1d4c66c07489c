/* lower.c - from a node to its kernel description: the family table built
 * from ops.def and the families listed in lower.h. */
#include <string.h>

#include "../ops/sparse.h"
#include "lower.h"

#define MOSS_LOWER_FAMILY_ENTRY(f, takes) {#f, moss_lower_##f, takes},
static const struct {
  const char *family;
  moss_lower_fn fn;
  int (*takes)(const moss_node *n);
} families[] = {MOSS_LOWERED_FAMILIES(MOSS_LOWER_FAMILY_ENTRY){NULL, NULL, NULL}};
#undef MOSS_LOWER_FAMILY_ENTRY

static moss_lower_fn find(const moss_node *n) {
  size_t i;
  if (n->op <= MOSS_OP_UNKNOWN_ || n->op >= MOSS_OP_COUNT_) return NULL;
  if (moss_lower_takes_sparse(n)) return moss_lower_sparse; /* lower_sparse.c */
  for (i = 0; families[i].family; i++)
    if (!strcmp(families[i].family, moss_op_infos[n->op].family))
      return !families[i].takes || families[i].takes(n) ? families[i].fn : NULL;
  return NULL;
}

int moss_kernel_can_lower(const moss_node *n) { return find(n) != NULL; }

int64_t moss_kernel_scratch(const moss_node *n, const moss_kernel_cpu *cpu) {
  moss_lower_fn fn = find(n);
  if (fn == moss_lower_conv ||
      ((fn == moss_lower_sparse || fn == moss_lower_quant) && n->op == MOSS_OP_QLinearConv) ||
      (fn == moss_lower_sparse && n->op == MOSS_OP_Conv))
    return moss_lower_conv_scratch(n, cpu);
  if (fn == moss_lower_sparse && (n->op == MOSS_OP_Gemm || n->op == MOSS_OP_MatMul))
    return moss_lower_linear_sparse_scratch(n, cpu);
  return 0;
}

int moss_kernel_sparse_rule(const moss_node *n, const moss_kernel_cpu *cpu) {
  moss_sparse_view v;
  moss_node t;
  moss_kb probe;
  int mr, nr, lanes;
  if (!cpu || !moss_sparse_view_get(n, &v)) return MOSS_SPARSE_RULE_SCALAR;
  t = *n;
  if (n->op == MOSS_OP_QLinearConv) {
    t.sparse = MOSS_SPARSE_DENSE;
    if (moss_kernel_can_lower(&t) && moss_kernel_scratch(&t, cpu) > 0)
      return cpu->dot4 ? MOSS_SPARSE_RULE_Q8_DOT4 : MOSS_SPARSE_RULE_Q8_WIDE;
    return MOSS_SPARSE_RULE_SCALAR;
  }
  if (v.dtype != MOSS_DT_F32)
    return cpu->no_simd
               ? MOSS_SPARSE_RULE_Q8_NOVEC
               : MOSS_SPARSE_RULE_MAKE(MOSS_SPARSE_RULE_SCALAR, moss_lower_columns_lanes(cpu));
  if (n->op == MOSS_OP_Conv) {
    moss_node dense = *n;
    t.sparse = MOSS_SPARSE_CSR;
    dense.sparse = MOSS_SPARSE_DENSE;
    if (!moss_lower_conv_sparse_takes(&t, cpu)) return MOSS_SPARSE_RULE_SCALAR;
    return moss_lower_conv_scratch(&dense, cpu) > 0 && moss_lower_conv_takes_winograd(&dense, cpu)
               ? MOSS_SPARSE_RULE_TILE_WINO
               : MOSS_SPARSE_RULE_TILE_CONV;
  }
  memset(&probe, 0, sizeof probe);
  probe.cpu = *cpu;
  if (!moss_tile_shape(&probe, MOSS_DT_F32, &mr, &nr, &lanes)) return MOSS_SPARSE_RULE_SCALAR;
  return MOSS_SPARSE_RULE_MAKE(moss_lower_linear_sparse_scratch(n, cpu) > 0 ? MOSS_SPARSE_RULE_TILE_LIN
                                                                             : MOSS_SPARSE_RULE_TILE_DENSE,
                               lanes);
}

moss_status moss_kernel_lower(moss_ctx *ctx, moss_arena *arena, const moss_node *n,
                              const moss_kernel_cpu *cpu, moss_kernel **out_kernel) {
  moss_lower_fn fn = find(n);
  moss_kb b;
  moss_status st;
  *out_kernel = NULL;
  if (!fn)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "no kernel description for the %s family yet",
                     n->op > MOSS_OP_UNKNOWN_ && n->op < MOSS_OP_COUNT_ ? moss_op_infos[n->op].family
                                                                      : "unknown");
  MOSS_TRY(moss_kb_init(&b, ctx, arena, n, cpu));
  st = fn(&b, n);
  if (st != MOSS_OK && b.st == MOSS_OK) return st;
  MOSS_TRY(moss_kb_finish(&b, out_kernel));
  moss_kernel_plan_parts(*out_kernel, b.cpu.threads);
  return MOSS_OK;
}
