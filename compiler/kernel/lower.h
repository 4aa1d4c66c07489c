/* lower.h - the lowerings: one function per operator family that describes
 * a node of that family as a kernel (kernel.h). lower.c holds the table. */
#ifndef MOSS_LOWER_H
#define MOSS_LOWER_H

#include "../ops/ops.h"
#include "kernel.h"

typedef moss_status (*moss_lower_fn)(moss_kb *b, const moss_node *n);

/* The families that have a lowering, one line each: X(family, takes),
 * where |takes| is NULL when the lowering describes every node of the
 * family, or a predicate naming the nodes it describes (nodes with a
 * sparse weight go to moss_lower_sparse first, lower_sparse.c). */
#define MOSS_LOWERED_FAMILIES(X) \
  X(unary, NULL)                 \
  X(binary, NULL)                \
  X(conv, moss_lower_takes_conv) \
  X(pool, NULL)                  \
  X(matmul, moss_lower_takes_matmul) \
  X(variadic, NULL)              \
  X(cast, NULL)                  \
  X(view, NULL)                  \
  X(movement, NULL)              \
  X(gather, NULL)                \
  X(generator, NULL)             \
  X(topk, NULL)                  \
  X(resize, NULL)                \
  X(loss, NULL)                  \
  X(quant, moss_lower_takes_quant) \
  X(qfold, moss_lower_takes_qfold) \
  X(einsum, NULL)                \
  X(softmax, NULL)               \
  X(reduce, NULL)                \
  X(norm, NULL)                  \
  X(fused, NULL)                 \
  X(bounded, NULL)               \
  X(optimizer, NULL)             \
  X(signal, NULL)                \
  X(region, NULL)                \
  /* end */

/* The window of a pooling node over its spatial dimensions: kernel_shape,
 * strides, dilations and pads (or auto_pad) with ONNX's defaults
 * (lower_pool.c; MossQAvgPool's lowering uses it too). */
typedef struct moss_pool_geom {
  int nsp;
  int64_t in[MOSS_MAX_RANK], out[MOSS_MAX_RANK], k[MOSS_MAX_RANK];
  int64_t s[MOSS_MAX_RANK], d[MOSS_MAX_RANK], p[MOSS_MAX_RANK], pe[MOSS_MAX_RANK];
} moss_pool_geom;
void moss_lower_pool_geom(const moss_node *n, moss_pool_geom *out_g);

/* A float matrix product Y = A B for a GPU as work-group tiles through
 * SHARED memory (lower_gputile.c's header): opens the grid's loop over
 * the blocks of Y and the work-group's GROUP loop (the caller may open one
 * parallel loop around it, and LETs), and closes them. Y is M x N, A is
 * M x K, B is K x N, each reached through the caller's functions: */
typedef struct moss_gtile {
  moss_dtype dt;
  int64_t M, N, K;
  int a_k_contig; /* A(m, k) and A(m, k + 1) are neighbours in memory (else A(m + 1, k)) */
  int b_n_contig; /* B(k, n) and B(k, n + 1) are neighbours (else B(k + 1, n)) */
  /* A(m, k), B(k, n): 0 outside the matrix (m >= M, k >= K, n >= N), read
   * only inside it (load_or) */
  moss_kx *(*load_a)(moss_kb *b, const void *arg, moss_kx *m, moss_kx *k);
  moss_kx *(*load_b)(moss_kb *b, const void *arg, moss_kx *k, moss_kx *n);
  /* int32 products only, on a GPU with cpu.gpu_dot4: 1 when every A(m, k)
   * + a_off and B(k, n) + b_off fits a signed byte (an 8-bit operand less
   * its zero point, plus the zero point less 128 for uint8: the raw byte,
   * shifted). The lanes then copy four k's of each operand, so shifted,
   * into one word, sum with DOT4S and take the shifts' terms off at the
   * end (moss_gtile_dot4_off gives an operand's shift). */
  int dot4;
  int64_t a_off, b_off;
  /* the initial value of row m's sums (NULL: 0); m may be >= M, where
   * nothing may be read */
  moss_kx *(*init)(moss_kb *b, const void *arg, moss_kx *m);
  /* stores the sum |v| of output (m, n), m < M and n < N: the epilogue */
  void (*store)(moss_kb *b, const void *arg, moss_kx *m, moss_kx *n, moss_kx *v);
  const void *arg;
} moss_gtile;
/* |t| for a product of |dt| with A's rows and B's columns contiguous in
 * k and in n, reached through |load_a|, |load_b|, |store| and |arg| (the
 * other fields zero). */
void moss_gtile_set(moss_gtile *t, moss_dtype dt, int64_t M, int64_t N, int64_t K,
                    moss_kx *(*load_a)(moss_kb *, const void *, moss_kx *, moss_kx *),
                    moss_kx *(*load_b)(moss_kb *, const void *, moss_kx *, moss_kx *),
                    void (*store)(moss_kb *, const void *, moss_kx *, moss_kx *, moss_kx *), const void *arg);
/* A convolution's implicit product, as the Conv lowerings give it to the
 * tiles: its input of C channels of spatial size in[], a window of k[]
 * taps with strides s[], dilations d[] and leading pads p[], over nsp
 * dimensions, giving out[] positions. */
typedef struct moss_gtile_conv {
  int nsp;
  int64_t C;
  int64_t in[MOSS_MAX_RANK], out[MOSS_MAX_RANK], k[MOSS_MAX_RANK];
  int64_t s[MOSS_MAX_RANK], d[MOSS_MAX_RANK], p[MOSS_MAX_RANK];
} moss_gtile_conv;
/* The flat input index that tap k (channel k / taps, tap k % taps) of
 * output position |pos| of image |img| reads, and in |*in| whether it is
 * inside the input and k and pos inside the product (K = C taps, P the
 * positions); a 1x1 window of stride 1 without padding reads x[c][pos]. */
moss_kx *moss_gtile_patch(moss_kb *b, const moss_gtile_conv *c, moss_kx *img, moss_kx *k, moss_kx *pos,
                          moss_kx **in);

/* Whether the product |t| takes the tiles on |cpu|: a GPU with work-group
 * limits, float32 (fma) or int32 (multiply and add: the int8 products),
 * and a product large enough to gain from them. */
int moss_gtile_takes(const moss_kernel_cpu *cpu, const moss_gtile *t);
/* The shift into a signed byte of |n|'s 8-bit input |raw| less its zero
 * point, input |zp| (absent: 0): the zero point less 128 for uint8, the
 * zero point for int8, in |*out_off|; 0 when it cannot be one shift (not 8-bit,
 * or a zero point that is not one constant value). */
int moss_gtile_dot4_off(const moss_node *n, int raw, int zp, int64_t *out_off);
void moss_gtile_product(moss_kb *b, const moss_gtile *t);
/* A one-group QLinearConv or ConvInteger (x's zero point per tensor) as
 * work-group tiles in int32 on a GPU (lower_quant.c), where they take it;
 * returns 0 (nothing appended) where not. The quant and sparse lowerings
 * (its dense twin) both try it first. */
int moss_lower_qconv_gpu_tiles(moss_kb *b, const moss_node *n);

/* A register-tiled matrix product Y = S V + epilogue (lower_tile.c), the
 * fast path of Gemm, MatMul and the pointwise Conv on a machine with SIMD
 * registers (b->cpu). Y is M x N, S is M x K, V is K x N. The product
 * runs in tiles of mr rows by nr columns (moss_tile_shape) whose sums stay
 * in registers for the whole k loop: per k, nr/lanes vectors of V's row
 * and mr broadcast elements of S's column feed mr * nr/lanes vector
 * multiply-adds (fused where the machine has FMA). Each output element
 * sums its products in k order. */
typedef struct moss_tile {
  moss_dtype dt;
  int64_t M, N, K;
  /* S(i, k): buffer |s| at s_at + i*s_row + k*s_k, or, with |s_packed|,
   * a table from moss_tile_pack(.., blk = mr) over x = i, or, with
   * |s_rows|, at s_at + pos[i] + rows[k], |s_pos| and |s_koff| being the
   * I64 tables |pos| and |rows| (a convolution's output positions read in
   * place, the product transposed). */
  int s, s_packed, s_rows, s_pos, s_koff;
  moss_kx *s_at;
  int64_t s_row, s_k;
  /* Or, with |s_sparse|, S is a pruned weight kept by its nonzero terms in
   * rows of |s_blk| (1, or 4 for 4x1 blocks; the tile's rows): the terms
   * of rows [i*s_blk, (i+1)*s_blk) are t in [rp[i], rp[i+1]) of the I32
   * table |s_rp|, term t reading V's row at the I32 offset s_voff[t] (as
   * with v_rows; K is not used) and S's values at s[t*s_blk + r]. */
  int s_sparse, s_blk, s_rp, s_voff;
  /* V(k, j): buffer |v| at v_at + k*v_k + j, or, with |v_packed|, a table
   * from moss_tile_pack(.., blk = nr) over x = j, or, with |v_rows|, at
   * v_at + rows[k] + j, |v_koff| being the I64 table |rows| (a convolution
   * read in place: each k a shifted window of one padded input). */
  int v, v_packed, v_rows, v_koff;
  moss_kx *v_at;
  int64_t v_k;
  /* Y(i, j): buffer |y| at y_at + i*y_row + j. */
  int y;
  moss_kx *y_at;
  int64_t y_row;
  /* The value stored for the sums |v| (a vector of Y(i, j .. j+lanes) or a
   * scalar) of output row |i|, from column |j|, at |at| in |y|; |r| tells
   * the tile row apart for local names. NULL: the sums themselves. */
  moss_kx *(*epilogue)(moss_kb *b, const void *arg, moss_kx *v, moss_kx *i, moss_kx *j, moss_kx *at, int r);
  const void *arg;
} moss_tile;

/* The tile for element type |dt| on b->cpu: mr rows, nr columns in
 * vectors of |lanes|. Returns 0 when there is none (no SIMD, or not
 * float32/float64): the caller writes its scalar loops. */
int moss_tile_shape(const moss_kb *b, moss_dtype dt, int *out_mr, int *out_nr, int *out_lanes);
/* The same for the byte dot-product tile (moss_tile.dt MOSS_DT_I32: four
 * bytes per int32 lane, int32 sums; lower_tile.c). */
int moss_tile_shape_bytes(const moss_kb *b, int *out_mr, int *out_nr, int *out_lanes);
/* A constant table holding the matrix P(k, x), k < K, x < X, element
 * (k, x) at |data| + (k*ks + x*xs) elements of |dt|, packed in blocks of
 * |blk| x's: the block starting at x0 holds P(k, x0 + t) at x0*K + k*w + t,
 * w = min(blk, X - x0), so a tile walks it contiguously. Returns the
 * table's buffer. */
int moss_tile_pack(moss_kb *b, const char *name, moss_dtype dt, const void *data, int64_t K,
                   int64_t X, int64_t ks, int64_t xs, int64_t blk);
/* Starts |t| (zeroed first) with S a pruned weight kept by its nonzero
 * terms (s_sparse): S(i, k) = |w|[i*is + k*ks] of type |dt| (F32, or I32:
 * words of four int8 channels for DOT4), i < M, k < K, in
 * rows of |blk| (M a multiple of it; a term is kept where any of the blk
 * weights is nonzero, 4x1 blocks for blk 4), the term of column k reading
 * V's row at rows[k]. The caller sets N, V, Y and the epilogue. */
void moss_tile_sparse_s(moss_kb *b, moss_tile *t, moss_dtype dt, const void *w, int64_t is,
                        int64_t ks, int64_t M, int64_t K, int blk, const int64_t *rows);
/* Appends the product |t| (whose shape came from moss_tile_shape). */
void moss_tile_product(moss_kb *b, const moss_tile *t);

/* Winograd F(m x m, 3x3) (lower_winograd.c) for a Conv of one group with
 * a constant fp32 3x3 weight, stride and dilation 1, an output of whole
 * m x m blocks; the Conv lowering checks those and passes the top and
 * left padding. Its geometry and arena scratch (byte offsets of the
 * phased input, V and M). */
#define WINO_MAX_N 6
typedef struct moss_wino {
  int m, n;              /* output block m x m (2 or 4), input tile n = m + 2 */
  int64_t N, C, M, H, W, OH, OW, pt, pl;
  int64_t TH, TW, T, Tp; /* tiles down, across, in all, rounded up to 16 */
  int64_t Hp, Up;        /* rows of a phase plane, columns of one phase */
  int64_t xoff, voff, moff, bytes;
} moss_wino;
/* The block with MOSS_WINOGRAD unset: 2, F(2x2, 3x3), whose error stays
 * within the float tolerance (docs/kernel.md "Winograd"); "on" takes
 * F(4x4, 3x3) (moss compile --winograd), "off" none. */
#define MOSS_WINOGRAD_DEFAULT 2
/* |n|'s plan on |cpu| in |p|: its scratch in bytes, 0 when it does not take it. */
int64_t moss_winograd_plan(const moss_node *n, const moss_kernel_cpu *cpu, int64_t pt, int64_t pl,
                           moss_wino *p);
void moss_lower_winograd(moss_kb *b, const moss_node *n, const moss_wino *p);

/* The element expressions of the elementwise families, for their own
 * lowerings and MossFused's (lower_fused.c; Where is its select there). A unary node |n| of the
 * element in[0] (in[1], in[2]: Clip's bounds, or NULL where it has none);
 * a binary node of the elements |x| and |y|. |*out| is in the element
 * type, before the cast to the output's. */
moss_status moss_lower_unary_expr(moss_kb *b, const moss_node *n, moss_kx *const *in, moss_kx **out);
moss_status moss_lower_binary_expr(moss_kb *b, const moss_node *n, moss_kx *x, moss_kx *y, moss_kx **out);
/* Cast (CastLike's type from its second input) of the element |v|, in the
 * output's type (lower_cast.c). */
moss_status moss_lower_cast_expr(moss_kb *b, const moss_node *n, moss_kx *v, moss_kx **out);

#define MOSS_LOWER_DECL(f, takes) moss_status moss_lower_##f(moss_kb *b, const moss_node *n);
MOSS_LOWERED_FAMILIES(MOSS_LOWER_DECL)
#undef MOSS_LOWER_DECL
/* Sparse-weight nodes (n->sparse) and the dense int8 Conv on their loops, before the families. */
moss_status moss_lower_sparse(moss_kb *b, const moss_node *n);
int moss_lower_takes_sparse(const moss_node *n);
/* Quantized ops with a sparse weight, and the dense int8 Conv that takes
 * the sparse kernels' dense twin, go to lower_sparse.c. */
int moss_lower_takes_quant(const moss_node *n);
/* MossQGemm with a sparse weight goes to lower_sparse.c. */
int moss_lower_takes_qfold(const moss_node *n);
/* Gemm and MatMul with a sparse weight go to lower_sparse.c. */
int moss_lower_takes_matmul(const moss_node *n);
/* Conv and ConvTranspose with a sparse weight go to lower_sparse.c. */
int moss_lower_takes_conv(const moss_node *n);
/* The arena scratch of the Conv lowering for |cpu| (moss_kernel_scratch):
 * Conv, ConvTranspose, and the dense QLinearConv that lower_sparse.c hands
 * to moss_lower_qconv_igemm. */
int64_t moss_lower_conv_scratch(const moss_node *n, const moss_kernel_cpu *cpu);
/* What a float Conv's kernel stores for its value |v| (a vector or a
 * scalar, the bias added) of the output element at |at|: plus the fused
 * residual (input 3, passes/fuse.c) where it has one, then its fused
 * activation, which reads the local |name|. */
moss_kx *moss_lower_conv_out(moss_kb *b, const moss_node *n, moss_kx *v, moss_kx *at, const char *name);
/* A pruned float Conv (n->sparse, one group) as the implicit product with
 * its nonzero terms as the tile's S, in rows of |blk| output channels (4:
 * 4x1 blocks, else 1) (lower_conv.c), where the machine has the tile and
 * the node's scratch was planned for it; returns 0 (nothing appended)
 * when it does not take |n|. */
int moss_lower_conv_sparse(moss_kb *b, const moss_node *n, int blk);
/* Whether the dense Conv |n| takes Winograd on |cpu|. */
int moss_lower_conv_takes_winograd(const moss_node *n, const moss_kernel_cpu *cpu);
/* Whether moss_lower_conv_sparse takes |n| (pruned) on |cpu|. */
int moss_lower_conv_sparse_takes(const moss_node *n, const moss_kernel_cpu *cpu);
/* The arena scratch of a pruned float Gemm or MatMul (n->sparse, or any
 * format asked of it) on the register tile for |cpu| (lower_sparse.c):
 * its input transposed and the transposed sums; 0 where it keeps the
 * gather loops (no tile; fewer input rows than a vector). */
int64_t moss_lower_linear_sparse_scratch(const moss_node *n, const moss_kernel_cpu *cpu);
/* The byte lanes of the vectors of the int8 Gemm/MatMul kernel by columns
 * (MOSS_SPARSE_COLUMNS) on |cpu|, which pads the kept columns to a multiple
 * of them; 1: scalar loops, no padding. */
int moss_lower_columns_lanes(const moss_kernel_cpu *cpu);
/* QLinearConv as an implicit product of DOT4s (lower_conv.c), where the
 * planner gave it the scratch, a pruned one (CSR, 4x1) by its words of four
 * channels that hold a nonzero: returns 1 when it appended the kernel, 0
 * when the node keeps lower_sparse.c's loops. */
int moss_lower_qconv_igemm(moss_kb *b, const moss_node *n);

#endif
