/* prune.h - moss's own weight pruning (`moss compile --prune SPEC`), run on
 * the graph right after the standard passes. It zeroes weights at compile
 * time, without retraining, so it costs accuracy: docs/pruning.md gives the
 * rules and the loss measured on the digits models.
 *
 * Specs (R is a plain decimal, 0 <= R < 1; the count zeroed is floor(R * n),
 * computed exactly from R's decimal digits):
 *   magnitude:R        unstructured, global: over all prunable weights
 *                      together, the R share of elements with the smallest |w|
 *   magnitude-layer:R  the same, per layer
 *   block:HxW:R        structured, per layer: the weight seen as a matrix
 *                      [out, in] is cut into H x W blocks (H along out); the
 *                      R share of blocks with the lowest mean square is zeroed
 *   channels:HxC:R     the same with blocks of H outputs x C consecutive input
 *                      channels at one kernel position (a Conv's [out, in] is
 *                      [out, channels x taps]; for Gemm and MatMul it is
 *                      block:HxC:R): the words of four channels an int8
 *                      Conv's byte dot products read (docs/sparse.md)
 *   columns:R          structured, per layer: the R share of the columns of
 *                      [out, in] (one `in` element for every output) with
 *                      the lowest mean square: the inputs an int8 Gemm or
 *                      MatMul then skips by columns (docs/sparse.md)
 *   columns-act:R      columns:R ranked by the column's weight mean square
 *                      times its input's mean square over the calibration
 *                      data (activation-aware: an input that is always 0,
 *                      such as a border pixel, goes first; a Conv's column
 *                      takes its input channel's): needs --calibration
 *   nm:N:M             N:M structured, per layer: in every group of M
 *                      consecutive `in` elements of each `out` row, all but
 *                      the N largest |w| are zeroed (nm:2:4: exactly half
 *                      when in % 4 == 0; a shorter last group keeps N too)
 *
 *   layer=NODE:SPEC,layer=NODE:SPEC,...
 *                      per layer (moss compile --budget and --plan write it,
 *                      docs/budget.md): the weight of node NODE (its name
 *                      after fusion, as --keep-float) is pruned by SPEC, one
 *                      of the forms above taken within that layer alone
 *                      (magnitude:R as magnitude-layer:R); other layers are
 *                      untouched. NODE may hold ':' but not ','; a NODE with
 *                      no prunable weight, or named twice, is an error.
 *
 * Prunable weights: float32 constants in the weight slot of Conv (input 1,
 * W), Gemm (input 1, B) and MatMul (input 1, a constant B of rank >= 2).
 * Biases and every other input are never touched. */
#ifndef MOSS_PRUNE_H
#define MOSS_PRUNE_H

#include "../ir/ir.h"

typedef enum moss_prune_kind {
  MOSS_PRUNE_MAGNITUDE = 1,   /* magnitude:R, global */
  MOSS_PRUNE_MAGNITUDE_LAYER, /* magnitude-layer:R */
  MOSS_PRUNE_BLOCK,           /* block:HxW:R */
  MOSS_PRUNE_CHANNELS,        /* channels:HxC:R */
  MOSS_PRUNE_COLUMNS,         /* columns:R */
  MOSS_PRUNE_COLUMNS_ACT,     /* columns-act:R */
  MOSS_PRUNE_NM,              /* nm:N:M */
  MOSS_PRUNE_PER_LAYER        /* layer=NODE:SPEC,... (each SPEC one of the above, per layer) */
} moss_prune_kind;

/* A parsed spec. |ratio| == ratio_num / ratio_den exactly (ratio_den is a
 * power of ten, at most 10^9; for nm:N:M the nominal share (M-N)/M, with
 * ratio_num M-N and ratio_den M). */
typedef struct moss_prune_spec {
  moss_prune_kind kind;
  double ratio;
  int64_t ratio_num, ratio_den;
  int block_h, block_w; /* block and channels only; 1..4096 each */
  int nm_n, nm_m;       /* nm only; 1 <= N < M <= 64 */
} moss_prune_spec;

/* One pruned weight, named after the first (topological order) node that
 * reads it as a weight; a weight shared by several nodes is pruned once and
 * listed once. Strings live in the graph arena. */
typedef struct moss_prune_layer {
  const char *node;    /* node name */
  const char *op_type; /* "Conv", "Gemm" or "MatMul" */
  const char *weight;  /* name of the weight value after pruning */
  int64_t elements;
  int64_t zeros_before, zeros_after; /* elements equal to 0 (either sign) */
} moss_prune_layer;

typedef struct moss_prune_result {
  moss_prune_spec spec;
  moss_prune_layer *layers; /* graph arena; NULL when no weight was prunable */
  int nlayers;
  int64_t elements, zeros_before, zeros_after; /* sums over |layers| */
} moss_prune_result;

/* Parses |spec| into |*out_spec| (zeroed on entry). A malformed spec
 * (unknown kind, missing or non-decimal ratio, ratio outside [0, 1), bad
 * block shape, anything trailing) fails with MOSS_E_INVALID_MODEL and one
 * diagnostic that quotes the spec and lists the accepted forms. No
 * allocation. */
moss_status moss_prune_parse(moss_ctx *ctx, const char *spec, moss_prune_spec *out_spec);

/* The mean square of a value's elements along its last axis (|last|,
 * |nlast| entries) and along axis 1 (|chan|, |nchan|; rank >= 3 only), over
 * the calibration data: what columns-act:R weighs a column by (a Gemm's or
 * MatMul's input features, a Conv's input channels). By value id. */
typedef struct moss_act_power {
  int64_t nlast, nchan;
  double *last, *chan; /* NULL: not measured */
  const char *name;    /* the value's name (a graph's other than the one pruned may hold the
                        * same id for another value: such an entry is not used); NULL: any */
} moss_act_power;

/* Whether |spec| names columns-act (then moss_prune_act needs the inputs'
 * mean squares). */
int moss_prune_needs_power(const char *spec);

/* Parses |spec| and prunes the prunable weights of |g| in place. A weight
 * constant that is also read elsewhere (as a non-weight input, or as a graph
 * output) is copied first, and only the weight slots are pointed at the
 * pruned copy (named "<name>.pruned"). |*out| is zeroed on entry, then
 * filled; it stays valid as long as |g|. Errors: those of moss_prune_parse,
 * MOSS_E_NOMEM. Scratch memory goes through |ctx|'s allocator and is freed
 * before returning. Not thread-safe (one ctx and graph per thread). */
moss_status moss_prune(moss_ctx *ctx, moss_graph *g, const char *spec, moss_prune_result *out);

/* moss_prune with the mean squares of |g|'s values (|npower| entries by
 * value id; NULL: none), which columns-act needs: a columns-act layer whose
 * input has none (no --calibration, or an input of another shape than the
 * weight reads) fails with MOSS_E_INVALID_MODEL. */
moss_status moss_prune_act(moss_ctx *ctx, moss_graph *g, const char *spec,
                           const moss_act_power *power, int npower, moss_prune_result *out);

/* One line per pruned layer, then a total, as plain text into |b|:
 * "prune <node> (<op>) <weight>: <n> weights, <z0> zero before, <z1> after (<pct>% sparse)". */
void moss_prune_emit_text(const moss_prune_result *r, moss_buf *b);

#endif
