/* sparse.h - sparse weight formats: the codes of moss_node.sparse, the
 * view of a node's constant weight as a matrix (which input, which layout),
 * what the sparse pass measures on it and the cost rule that compares the
 * formats (docs/sparse.md). The pass that writes moss_node.sparse is
 * compiler/passes/sparse.c; the backends that encode a weight and the cost
 * model read the same view and rule from here. */
#ifndef MOSS_OPS_SPARSE_H
#define MOSS_OPS_SPARSE_H

#include "../ir/ir.h"

/* Values of moss_node.sparse. */
enum {
  MOSS_SPARSE_DENSE = 0,
  MOSS_SPARSE_CSR = 1,       /* compressed sparse rows, one value per nonzero */
  MOSS_SPARSE_BLOCK_4x1 = 2, /* CSR of 4x1 blocks: 4 consecutive output rows, one column */
  MOSS_SPARSE_BLOCK_1x4 = 3, /* CSR of 1x4 blocks: one output row, 4 consecutive columns */
  MOSS_SPARSE_NM_2_4 = 4,    /* 2:4: 2 values and 2 uint8 offsets per group of 4 columns */
  MOSS_SPARSE_COLUMNS = 5    /* the columns holding a nonzero, kept dense (int8 Gemm/MatMul):
                              * the input gathered at them, then dense dot products */
};
#define MOSS_SPARSE_NFORMATS 6
/* A set of formats, one bit per code: what a backend can emit
 * (backends/backend.h, moss_backend.sparse_formats). Dense is always
 * possible and needs no bit. */
#define MOSS_SPARSE_BIT(fmt) (1u << (fmt))
#define MOSS_SPARSE_ALL                                                                   \
  (MOSS_SPARSE_BIT(MOSS_SPARSE_CSR) | MOSS_SPARSE_BIT(MOSS_SPARSE_BLOCK_4x1) |            \
   MOSS_SPARSE_BIT(MOSS_SPARSE_BLOCK_1x4) | MOSS_SPARSE_BIT(MOSS_SPARSE_NM_2_4) |               \
   MOSS_SPARSE_BIT(MOSS_SPARSE_COLUMNS))

/* The cost rule's weights, in units of one dense multiply-add; a format's
 * estimated work is the sum over what it stores (docs/sparse.md). */
#define MOSS_SPARSE_COST_CSR_NZ 2.5    /* per nonzero: index load, gather, multiply-add */
#define MOSS_SPARSE_COST_CSR_ROW 1.0   /* per row: row bounds */
#define MOSS_SPARSE_COST_BLOCK 5.0     /* per 4x1 block: 4 multiply-adds, one index, one gather */
#define MOSS_SPARSE_COST_BLOCK_ROW 1.0 /* per block row */
#define MOSS_SPARSE_COST_B1x4 5.0      /* per 1x4 block: 4 multiply-adds, one index, one 4-wide load */
#define MOSS_SPARSE_COST_B1x4_ROW 1.0  /* per row: row bounds */
#define MOSS_SPARSE_COST_NM24 3.5      /* per group of 4 columns: 2 multiply-adds, 2 byte offsets,
                                        * loads from one 4-element window; no row pointers */

/* int8 Gemm and MatMul (MossQGemm, QLinearMatMul, MatMulInteger) take CSR
 * only, its estimate being the float rule's times this factor (the other
 * formats' estimates are -1). The dense int8 dot product handles 4 times
 * more elements per vector than the float one and its weights are 4 times
 * smaller: measured (bench/bench_mlp.py's models, this 2-core x86-64),
 * int8 CSR was still 1.35x slower than dense int8 at 95 % zeros on the
 * 256-4096-256 MLP and 1.4x slower at 90 % on digits. */
#define MOSS_SPARSE_INT8_CSR_FACTOR 8.0
/* Where the device has no SIMD (MOSS_SPARSE_RULE_Q8_NOVEC) nothing makes the
 * dense int8 dot product faster than the CSR one: per nonzero 1.5 dense
 * terms, plus the row bounds, measured by bench/bench_q8_novec.py on the C
 * backend's code for cortex-m7 (a 1024 x 1024 MossQGemm, 75 % zeros,
 * built here with gcc -O2 -fno-tree-vectorize -fno-tree-slp-vectorize:
 * dense 367 us, CSR 138 us, medians; built -O3 -march=native instead:
 * 50 us and 107-111 us, the factor above; 2026-12-06). */
#define MOSS_SPARSE_Q8LIN_NOVEC_NZ 1.5
/* int8 Gemm and MatMul by columns (MOSS_SPARSE_COLUMNS): per input row,
 * the dot products over the kept columns padded to whole vectors of the
 * kernel's byte lanes (moss_lower_columns_lanes: one SIMD register, the
 * rule's MOSS_SPARSE_RULE_LANES; 64 on AVX-512, 32 on AVX2, 16 on NEON),
 * at a dense term each, and GATHER dense terms a kept column (the gather
 * of the input, the sum across the vector at the end). Measured by
 * bench/bench_q8_columns.py (the Gemm step alone, moss bench --profile):
 * Gemm 64x64, 32x64, 256x256 and 1024x1024 at 25, 50 and 75 % of the
 * columns zeroed, the median of 12 points each: host (AVX-512) 8.7,
 * x86_64-avx2 -21.7 (from -620 to 510: the large layers by columns beat
 * the dense kernel's loop per term, and the small ones are mostly the
 * step's fixed 0.1-0.16 us, which dense pays too and the cost model
 * leaves out of every layer), this 2-core x86-64, 2026-12-06; the larger
 * median, rounded up. Before the kernel's explicit vectors (the loop
 * vectorizer unrolled a short loop of kept columns whole and vectorized
 * the rows by gathers) it was 59 and 61. */
#define MOSS_SPARSE_Q8COLS_GATHER 9.0
/* The most columns kept by columns: the gathered row is a private array. */
#define MOSS_SPARSE_COLUMNS_MAX 16384

/* int8 Conv (QLinearConv, ConvInteger) has estimates of its own. Its
 * kernels, dense and sparse alike, run a whole output row per weight term,
 * so an index costs next to nothing; measured (bench/bench_conv.py's 3x3
 * and 1x1 layers, this 2-core x86-64), relative to one dense term: CSR
 * 0.96-1.0 per nonzero, 4x1 3.1-3.8 per block (one input row, 4 outputs),
 * 1x4 and 2:4 about 1 per nonzero, their stored zero slots skipped. */
#define MOSS_SPARSE_Q8CONV_NZ 1.0    /* per nonzero: CSR, and 1x4 and 2:4 */
#define MOSS_SPARSE_Q8CONV_BLOCK 3.5 /* per 4x1 block */
#define MOSS_SPARSE_Q8CONV_SLOT 0.1  /* per stored zero of a 1x4 block or a 2:4 group */
/* The dense QLinearConv as an implicit product of DOT4s (AVX-512 VNNI,
 * compiler/kernel/lower_conv.c), relative to one term of the scalar dense
 * kernel: 64 -> 64 channels, 3x3, 56x56, 0.70 ms against 38.4 ms for the
 * scalar dense twin (x86_64-avx2, no VNNI) and 13.1 ms in 4x1 blocks, on
 * this 2-core x86-64; the sparse pass scales the dense cost by it where
 * the node's device lowers it that way (moss_kernel_scratch). */
#define MOSS_SPARSE_Q8CONV_DOT4 0.02
/* The same implicit product where the machine has no byte dot product and
 * the backend widens the bytes (pmaddwd on x86_64-avx2): 4.1 ms on that
 * layer against the same 38.4 ms (and 11.1 ms in 4x1 blocks), 2026-12-04. */
#define MOSS_SPARSE_Q8CONV_WIDE 0.11

/* Where the dense int8 Conv runs on the tile (rules int8-dot and
 * int8-widened), CSR and 4x1 blocks run there too, over the words of four
 * input channels at one kernel position that hold a nonzero byte (CSR: of
 * one output channel; 4x1: of four, lower_conv.c), and cost
 *   dense estimate x (FIXED + SLOPE x kept / all)
 * of words (CSR) or 4x1 blocks of words; FIXED is what the kernel pays
 * whatever its weights (the copy of the input into phases, the
 * requantization). Measured by bench/bench_q8_words.py (which prints
 * these medians): four layers (3x3 64 -> 64 on 28x28, 1x1 128 -> 128 on
 * 14x14, 3x3 32 -> 32 on 8x8, 3x3 8 -> 16 on 4x4) pruned by
 * channels:1x4:R and channels:4x4:R at R 0, 0.5, 0.75 and 0.9, the
 * least-squares line of t_sparse / t_dense against kept / all per layer,
 * the medians over the layers; this 2-core x86-64, targets host (AVX-512
 * VNNI, int8-dot) and x86_64-avx2 (int8-widened, the rule of rpi4's
 * NEON), 2026-12-06. At full density each costs more than dense (1.04 to
 * 1.92 of it). */
#define MOSS_SPARSE_Q8TILE_FIXED_CSR_DOT4 0.36
#define MOSS_SPARSE_Q8TILE_SLOPE_CSR_DOT4 1.56
#define MOSS_SPARSE_Q8TILE_FIXED_BLOCK_DOT4 0.41
#define MOSS_SPARSE_Q8TILE_SLOPE_BLOCK_DOT4 0.63
#define MOSS_SPARSE_Q8TILE_FIXED_CSR_WIDE 0.17
#define MOSS_SPARSE_Q8TILE_SLOPE_CSR_WIDE 1.03
#define MOSS_SPARSE_Q8TILE_FIXED_BLOCK_WIDE 0.15
#define MOSS_SPARSE_Q8TILE_SLOPE_BLOCK_WIDE 0.90

/* The float kernels of the LLVM backend where the machine has the register
 * tile (lower_tile.c), in its dense multiply-adds, which are 10-20 times
 * cheaper than the scalar loops' (bench/bench_sparse_rule.py, medians over
 * 12 layers of 4 shapes and 6 patterns, this 2-core x86-64, 2026-12-04).
 * A Conv takes the implicit product with its nonzero terms as the tile's
 * S (moss_lower_conv_sparse): per term 2.3 (1.95-2.55) whatever the format
 * (1x4 and 2:4 drop their stored zeros there), per 4x1 block 4.4 (4.0-6.8).
 * Gemm and MatMul keep the scalar sparse loops against the dense tile: per
 * stored unit CSR 13.8 (7.3-26.6; 7-11 on one row, 16-27 on 64), 4x1 24.3,
 * 1x4 22.8, 2:4 31.1 per group of 4 terms, with 16-lane vectors (AVX-512);
 * the dense tile's speed follows the lanes, the scalar loops' does not, so
 * these scale by lanes / 16 on narrower vectors (an assumption: only
 * AVX-512 was measured). */
#define MOSS_SPARSE_TILE_CONV_NZ 2.3
#define MOSS_SPARSE_TILE_CONV_BLOCK 4.4
#define MOSS_SPARSE_TILE_LIN_NZ 13.8
#define MOSS_SPARSE_TILE_LIN_BLOCK 24.3
#define MOSS_SPARSE_TILE_LIN_B1x4 22.8
#define MOSS_SPARSE_TILE_LIN_NM24 31.1
/* A Gemm or MatMul whose input has at least a vector of rows takes the
 * tile with the nonzero terms as S (lower_sparse.c: the input and the sums
 * transposed through the arena): per term 3.3 (2.5-5.9, the most at 95 %
 * zeros, where the transposes weigh most), per 4x1 block 6.1 (4.7-14.2);
 * 1x4 and 2:4 run as their nonzero terms (bench/bench_sparse_rule.py,
 * layers matmul and matmul2: 64 x 512 x 512 and 128 x 256 x 1024, this
 * 2-core x86-64 with AVX-512, 2026-12-04). */
#define MOSS_SPARSE_TILE_MM_NZ 3.3
#define MOSS_SPARSE_TILE_MM_BLOCK 6.1
/* A dense Conv that takes Winograd F(2x2, 3x3) (the default where it pays,
 * docs/kernel.md) against the implicit product the figures above count
 * in: 0.61-0.79 of its time on 3x3 layers of 32 to 128 channels, 14x14 to
 * 56x56 (moss bench, MOSS_WINOGRAD=off against the default, 2026-12-04). */
#define MOSS_SPARSE_TILE_WINO 0.65

/* The kernels a layer's formats run on, whose figures price them
 * (moss_node.sparse_rule, set by the sparse pass from the device). */
enum {
  MOSS_SPARSE_RULE_SCALAR = 0, /* the scalar loops, dense and sparse (C backend; no tile) */
  MOSS_SPARSE_RULE_Q8_DOT4,    /* int8 Conv, dense on a byte dot-product instruction */
  MOSS_SPARSE_RULE_Q8_WIDE,    /* int8 Conv, dense on widened bytes */
  MOSS_SPARSE_RULE_TILE_CONV,  /* float Conv, dense and sparse on the register tile */
  MOSS_SPARSE_RULE_TILE_DENSE, /* float Gemm/MatMul, dense on the tile, sparse scalar */
  MOSS_SPARSE_RULE_TILE_WINO,  /* TILE_CONV, the dense layer on Winograd */
  MOSS_SPARSE_RULE_TILE_LIN,   /* float Gemm/MatMul of a vector of rows or more, dense and sparse
                                * on the tile */
  MOSS_SPARSE_RULE_Q8_NOVEC    /* int8 Gemm/MatMul on a device without SIMD (cortex-m7): the
                                * dense dot product is a scalar loop too */
};
/* moss_node.sparse_rule: the rule, and the float32 lanes of the tile's
 * vectors (for MOSS_SPARSE_RULE_TILE_DENSE) or the byte lanes of the
 * columns kernel (int8 Gemm/MatMul, rule SCALAR; 0 or 1: no vectors). */
#define MOSS_SPARSE_RULE_MAKE(rule, lanes) ((rule) + 8 * (lanes))
#define MOSS_SPARSE_RULE_KIND(r) ((r) % 8)
#define MOSS_SPARSE_RULE_LANES(r) ((r) / 8)
/* "scalar", "int8-dot", "int8-widened", "tile", "tile-dense", "tile-winograd", "tile-linear" for a
 * rule (MOSS_SPARSE_RULE_KIND of moss_node.sparse_rule); "?" for others. */
const char *moss_sparse_rule_name(int rule);

/* Every node that can take a sparse weight sees it as a matrix Wt of
 * |rows| outputs by |cols| reduction terms: Gemm and MatMul, B transposed
 * ([N, K]); Conv, W as [Cout, Cin*kh*kw]. The output element r of one row
 * (or one output position) is the sum over c of Wt[r, c] * input term c. */
typedef struct moss_sparse_view {
  const void *w;      /* the constant weight's payload */
  moss_dtype dtype;   /* f32; i8 or u8 for the integer ops (then every w_zp is 0) */
  int winput;         /* index of the weight among the node's inputs */
  int64_t rows, cols;
  int64_t rs, cs;     /* strides of Wt's row and column index in |w| */
} moss_sparse_view;

/* Fills |out_view| and returns 1 when |n| can take a sparse weight: a Gemm
 * (transA 0, constant 2-D B), a MatMul (constant 2-D B, A of rank >= 2) or
 * a Conv (2-D, group 1, constant W), float32; or, int8 or uint8 with every
 * weight zero point 0, a MossQGemm (constant [N, K] w, input 3), a
 * QLinearConv or ConvInteger (2-D, group 1) or a QLinearMatMul or
 * MatMulInteger (constant 2-D B), with per-tensor input and output
 * quantization (MatMulInteger: or a zero point per row of A); shapes known
 * and element counts below 2^31. Returns 0 otherwise (|out_view| zeroed). */
int moss_sparse_view_get(const moss_node *n, moss_sparse_view *out_view);

/* Wt[r, c] of a view. */
static inline float moss_sparse_at(const moss_sparse_view *v, int64_t r, int64_t c) {
  int64_t i = r * v->rs + c * v->cs;
  if (v->dtype == MOSS_DT_I8) return (float)((const int8_t *)v->w)[i];
  if (v->dtype == MOSS_DT_U8) return (float)((const uint8_t *)v->w)[i];
  return ((const float *)v->w)[i];
}

/* What the pass measured on one weight. */
typedef struct moss_sparse_stats {
  moss_dtype dtype;    /* the weight's: f32, or i8/u8 (the integer ops) */
  int64_t rows, cols;
  int64_t nnz;         /* nonzero elements (0.0 and -0.0 are zeros) */
  int64_t nblocks4x1;  /* 4x1 blocks holding a nonzero; 0 when rows % 4 != 0 */
  int64_t nblocks1x4;  /* 1x4 blocks holding a nonzero; 0 when cols % 4 != 0 */
  int nm24;            /* 1: no group of 4 columns of a row (the tail group
                        * included) holds more than 2 nonzeros */
  /* An int8 Conv whose CSR and 4x1 run on the tile (rules int8-dot and
   * int8-widened): its words of four input channels at one kernel
   * position, all and those holding a nonzero; its 4x1 blocks of words
   * (rows % 4 == 0), all and those holding a nonzero. q8tile 0: none. */
  int q8tile;
  int64_t words, words_nz, wblocks, wblocks_nz;
  int64_t cols_nz;   /* int8 Gemm/MatMul: columns holding a nonzero; 0 for the rest */
  double cost_columns; /* negative when not possible (all but int8 Gemm/MatMul) */
  double cost_dense, cost_csr, cost_block4x1; /* block: negative when not possible */
  double cost_block1x4, cost_nm24;            /* negative when not possible */
} moss_sparse_stats;

/* The estimate of format |fmt| (MOSS_SPARSE_*) in |s|; negative when the
 * weight cannot take it or |fmt| is unknown. */
double moss_sparse_cost(const moss_sparse_stats *s, int fmt);

/* Bytes of the weight of |s| stored in format |fmt| the way the kernels
 * store it (compiler/kernel/lower_sparse.c): dense, the weight itself; CSR
 * and the block formats, int32 row pointers, uint16 column indices (int32
 * past 65536 columns) and the values in the weight's type (at least one
 * index and one value, so an all-zero weight still has arrays); 2:4, one
 * uint8 offset and one value per stored entry. The cost model prices a
 * sparse layer's weight reads with it. Negative when the weight cannot take
 * |fmt| or |fmt| is unknown. */
double moss_sparse_bytes(const moss_sparse_stats *s, int fmt);

/* Measures |n|'s weight and prices the formats with the figures of
 * n->sparse_rule; returns 0 (|out_stats| zeroed) when it has no view. */
int moss_sparse_stats_compute(const moss_node *n, moss_sparse_stats *out_stats);

/* The format the cost rule picks for |s|: the cheapest estimate; on ties
 * the lower code (dense first). */
int moss_sparse_choose(const moss_sparse_stats *s);
/* The same among dense and the formats in |formats| (MOSS_SPARSE_BIT set). */
int moss_sparse_choose_among(const moss_sparse_stats *s, unsigned formats);

/* "dense", "csr", "block4x1", "block1x4", "2:4", "columns"; "?" for an unknown code. */
const char *moss_sparse_format_name(int code);

/* Fraction of nonzero weight elements of |n|, in [0, 1]; -1 when |n| has
 * no weight the pass looks at. */
double moss_sparse_density(const moss_node *n);

#endif
