/* ops.h - operator semantics, one family per file in compiler/ops/ (the
 * family column of ir/ops.def): shape and dtype inference, and evaluation
 * on constant inputs for constant folding. */
#ifndef MOSS_OPS_H
#define MOSS_OPS_H

#include "../ir/ir.h"

/* Sets the dtype and shape of every output of |n| from its inputs (and
 * from the data of constant inputs that decide shapes). Reports
 * invalid-model or unsupported against |n|. */
typedef moss_status (*moss_infer_fn)(moss_ctx *ctx, moss_graph *g, moss_node *n);
/* Computes the data of every output of |n|, whose inputs are all constant
 * and whose output shapes are known; each output's |data| is already
 * allocated (zeroed). Returns MOSS_E_UNSUPPORTED, without a diagnostic,
 * when the family cannot evaluate this node; the node then stays. */
typedef moss_status (*moss_eval_fn)(moss_ctx *ctx, moss_graph *g, moss_node *n);

#define MOSS_FAMILY(f)                                                      \
  moss_status moss_infer_##f(moss_ctx *ctx, moss_graph *g, moss_node *n);   \
  moss_status moss_eval_##f(moss_ctx *ctx, moss_graph *g, moss_node *n);
#include "families.def"
#undef MOSS_FAMILY

extern const moss_infer_fn moss_infer_table[MOSS_OP_COUNT_];
extern const moss_eval_fn moss_eval_table[MOSS_OP_COUNT_];

/* Helpers shared by the families (ops/common.c). */

/* Sets output |i| of |n| to |dt| with the given shape. */
void moss_set_output(moss_node *n, int i, moss_dtype dt, int rank, const int64_t *dims);
/* Numpy-style broadcast of the shapes of |a| and |b| into |out_dims|. */
moss_status moss_broadcast(moss_ctx *ctx, const moss_node *n, int ra, const int64_t *da, int rb,
                           const int64_t *db, int *out_rank, int64_t *out_dims);
/* Normalizes |axis| (may be negative) against |rank|; fails if out of range. */
moss_status moss_norm_axis(moss_ctx *ctx, const moss_node *n, int64_t axis, int rank,
                           int *out_axis);
/* Fails with a message naming input |i| when it is not a constant: used by
 * ops whose output shape depends on that input's value. */
moss_status moss_need_constant(moss_ctx *ctx, const moss_node *n, int i, const char *what);
/* The options that would fix at compile time the graph inputs |v| is
 * computed from ("--constant a=FILE --constant b=FILE", in |buf|), or NULL
 * when it comes from none (it is not a graph input's function). */
const char *moss_freeze_hint(const moss_value *v, char *buf, size_t cap);
/* Fails unless input |i| is present and has a known shape. */
moss_status moss_need_input(moss_ctx *ctx, const moss_node *n, int i);

/* Generic element access for evaluation: element |i| of a value as double
 * or int64, and a store of a double/int64 into element |i| of |dt|. */
double moss_load_f64(moss_dtype dt, const void *p, int64_t i);
int64_t moss_load_i64(moss_dtype dt, const void *p, int64_t i);
void moss_store_f64(moss_dtype dt, void *p, int64_t i, double v);
void moss_store_i64(moss_dtype dt, void *p, int64_t i, int64_t v);
/* Flat index into an input of shape |in_rank|/|in_dims| broadcast to the
 * output shape |rank|/|dims|, for the output's flat index |o|. */
int64_t moss_broadcast_index(int rank, const int64_t *dims, int in_rank, const int64_t *in_dims,
                             int64_t o);
/* Row-major strides of a shape (in elements). */
void moss_strides(int rank, const int64_t *dims, int64_t *out_strides);
/* Reads the ints attribute |name| of |want| values into |out_vals|, all
 * |def| when absent; fails when it holds another count. */
moss_status moss_spatial_ints(moss_ctx *ctx, const moss_node *n, const char *name, int want,
                              int64_t def, int64_t *out_vals);
/* 1 for the ten integer and float types the arithmetic families accept
 * (f32, f64, i8..i64, u8..u64); 0 for bool, f16, bf16 and the rest. */
int moss_arith_type(moss_dtype dt);

/* Fills |mask| (1 = reduced) from a Reduce node's axes (attribute or
 * constant input; none: all); *out_noop is set when the node is the
 * identity (empty axes with noop_with_empty_axes). ops/reduce.c. */
moss_status moss_reduce_mask(moss_ctx *ctx, const moss_node *n, int rank, int *mask, int *out_noop);

/* Sequences and optionals (ops/sequence.c, docs/sequences.md). Before
 * |n|'s own inference: resolves an operator on lists, or refuses a list
 * where a tensor is wanted; *handled: |n| is done with (dead, what it
 * became placed right after it); else inference goes on with |n|. */
moss_status moss_sequence_resolve(moss_ctx *ctx, moss_graph *g, moss_node *n, int *handled);
/* After inference: each graph output that is a list becomes its elements'
 * graph outputs (moss_graph.groups). */
moss_status moss_sequence_outputs(moss_ctx *ctx, moss_graph *g);

/* Bounded dynamic shapes (ops/bounded.c, docs/dynamic-shapes.md). */

/* Makes output |i| of |n| bounded along |axis| (its dims there are the
 * bound), its length the node's extra last output (made here the first
 * time, an INT64 [1] value after the operator's own outputs). */
moss_status moss_bound_output(moss_ctx *ctx, moss_graph *g, moss_node *n, int i, int axis);
/* The length output of a node that decides a bounded shape, or NULL. */
moss_value *moss_bound_length(const moss_node *n);
/* After |n|'s inference: passes its inputs' bounded axes on to its
 * outputs where the operator carries them, and refuses (unsupported,
 * naming the input) where it does not. */
moss_status moss_bound_carry(moss_ctx *ctx, moss_node *n);
/* Puts a MossCompact before each bounded graph output whose padded layout
 * is not already compact (nodes appended: sort the graph after). */
moss_status moss_bound_outputs(moss_ctx *ctx, moss_graph *g);

/* Shared with the backends: analyses a family computes for inference that
 * a backend needs again when it emits the node. */

/* Einsum (ops/einsum.c). Labels: 'A'..'Z' are 0..25, 'a'..'z' 26..51 (so
 * ascending ids are the implicit output's alphabetical order), and the
 * dimensions under "..." are 52..59, aligned to the right. */
#define MOSS_EINSUM_MAX_IN 8
#define MOSS_EINSUM_LABELS 60
typedef struct moss_einsum {
  int nin;
  int rank[MOSS_EINSUM_MAX_IN];
  int lab[MOSS_EINSUM_MAX_IN][MOSS_MAX_RANK];
  int orank;
  int olab[MOSS_MAX_RANK];
  int64_t size[MOSS_EINSUM_LABELS]; /* -1: unused */
  int in_out[MOSS_EINSUM_LABELS];   /* the label is an output label */
} moss_einsum;
/* Parses the equation |eq| for the |nin| inputs |ins| into |out_e|; 0 on
 * success, else -1 with a reason in |err| (|cap| bytes). */
int moss_einsum_compute(const char *eq, int nin, moss_value *const *ins, char *err, size_t cap,
                        moss_einsum *out_e);

/* Resize/Upsample (ops/resize.c): the per-axis output sizes and scales. */
typedef struct moss_resize {
  int rank;
  int64_t in[MOSS_MAX_RANK], out[MOSS_MAX_RANK];
  double scale[MOSS_MAX_RANK];
  double roi_s[MOSS_MAX_RANK], roi_e[MOSS_MAX_RANK]; /* tf_crop_and_resize */
} moss_resize;
/* Computes the sizes and scales of Resize/Upsample node |n| (model opset
 * |opset|) from its constant scales, sizes and roi. */
moss_status moss_resize_compute(moss_ctx *ctx, const moss_node *n, int64_t opset,
                                moss_resize *out_p);

/* Data movement (ops/movement.c): an affine copy,
 * y[ob + sum i_k*os_k] = x[ib + sum i_k*is_k] over the index space |dims|. */
#define MOSS_AFFINE_MAX (2 * MOSS_MAX_RANK)
typedef struct moss_affine {
  int rank;
  int64_t dims[MOSS_AFFINE_MAX], is[MOSS_AFFINE_MAX], os[MOSS_AFFINE_MAX];
  int64_t ib, ob;
} moss_affine;
/* Output 0 of Transpose, Slice, Expand, Tile, DepthToSpace or SpaceToDepth
 * |n| as an affine copy of input 0; MOSS_E_UNSUPPORTED (no diagnostic) for
 * other ops. */
moss_status moss_affine_compute(moss_ctx *ctx, const moss_node *n, moss_affine *out_a);
/* Concat (|into_whole|: |part| into |whole|) or Split (|part| from |whole|)
 * along |axis|, |part| starting at |off| there, as an affine copy. */
void moss_affine_compute_part(const moss_value *whole, const moss_value *part, int axis,
                              int64_t off, int into_whole, moss_affine *out_a);
/* Pad's begin and end pads per axis of a rank-|rank| input of node |n|. */
moss_status moss_pad_compute(moss_ctx *ctx, const moss_node *n, int rank, int64_t *out_begin,
                             int64_t *out_end);

/* Shape (ops/generator.c): the slice [start, end) of a rank-|rank| shape
 * that the opset 15 attributes select. */
void moss_shape_range(const moss_node *n, int rank, int *out_start, int *out_end);

/* DFT and STFT (ops/signal.c): the transform, checked. Output bin p (the
 * flat index over the output less its last dimension) is bin k = p /
 * inner % bins of a transform of length |n| whose terms t < taps are the
 * input elements term0 + t * stride (their real parts), o = p / (inner *
 * bins): for DFT term0 = (o * len * inner + i) * cplx, i = p % inner,
 * stride = inner * cplx; for STFT (inner 1; o = batch * frames + frame)
 * term0 = (batch * len + frame * step) * cplx, stride = cplx, each term
 * weighted by the window's element t where it has one. */
typedef struct moss_signal {
  int64_t outer, inner; /* DFT: before and after the axis (less the last dim); STFT: batch, 1 */
  int64_t len;          /* the input's length along the axis (DFT) or the signal's (STFT) */
  int64_t n;            /* the transform's length: dft_length, frame_length */
  int64_t bins;         /* n, or n / 2 + 1 when onesided */
  int64_t taps;         /* terms summed: min(len, n), and at most the window's length (STFT) */
  int64_t frames, step; /* STFT; frames is 0 for DFT */
  int cplx;             /* 1: a real input, 2: complex */
  int inverse;          /* DFT: exp(+2 pi j k t / n) and the sum divided by n; else exp(-...) */
  int onesided;
  int axis;             /* DFT */
  int window;           /* STFT: input 2 is the window */
} moss_signal;
moss_status moss_signal_compute(moss_ctx *ctx, const moss_node *n, moss_signal *out_s);
/* cos and sin of 2 pi m / n: the twiddle factors, alike at compile and run time. */
void moss_signal_twiddle(int64_t n, int64_t m, double *out_cos, double *out_sin);
/* MelWeightMatrix: the [dft_length / 2 + 1, num_mel_bins] matrix of |n|'s
 * constant inputs, as ONNX's reference computes it, stored as |dt| into
 * |out| (zeroed; NULL: only the inputs are checked). */
moss_status moss_mel_compute(moss_ctx *ctx, const moss_node *n, moss_dtype dt, void *out);

/* Quantized operators (ops/quant.c; docs/numerics-int8.md). */

/* The one requantization scheme: a real multiplier M > 0 as a Q31
 * mantissa |mult| in [2^30, 2^31) and a right |shift| (negative: a left
 * shift), M ~= mult * 2^-31 * 2^-shift. mult 0: M is 0 (or not usable). */
typedef struct moss_requant {
  int32_t mult;
  int shift;
} moss_requant;
/* Decomposes |m| at compile time. */
void moss_requant_compute(double m, moss_requant *out_q);
/* The run-time formula, in integers only: round(acc * M), the exact int64
 * product acc * mult rounded once by 2^(31 + shift), ties to even, then
 * saturated to int32. Backends emit the same arithmetic. */
int32_t moss_requant_apply(int32_t acc, moss_requant q);
/* The real multipliers an integer node requantizes by, in the order of
 * plugins/include/moss_plugin.h (moss_plugin_node.requant): QLinearConv and
 * MossQGemm one per weight scale, QLinearMatMul one per pair of A's and B's
 * scales (row-major), MossQAdd three (a, b, the sum), MossQMul one,
 * MossQAvgPool one per tap count 0 .. kernel size (global: one). Written to
 * |out| when it has room for them (|cap|); returns their count, 0 for a node
 * that does not requantize or whose scales are not float32 constants. The
 * kernels compute the same products in the same order. */
int64_t moss_requant_node(const moss_node *n, double *out, int64_t cap);
/* round(x / scale) (ties to even, in float32 like ONNX) + zp, saturated to
 * [lo, hi]; NaN gives zp. The float<->int boundary of QuantizeLinear. */
float moss_quant_round(float v);
int32_t moss_quantize_one(float x, float scale, int32_t zp, int32_t lo, int32_t hi);
/* QuantizeLinear/DequantizeLinear: the axis of per-axis parameters of
 * input |x|, or -1 for a single scale (and zero point |zp|, may be NULL). */
moss_status moss_quant_axis(moss_ctx *ctx, const moss_node *n, const moss_value *x,
                            const moss_value *scale, const moss_value *zp, int *out_axis);
/* MatMulInteger/QLinearMatMul: numpy matmul geometry; batch shapes of A
 * and B (adims/bdims, without the matrix dimensions) broadcast to dims. */
typedef struct moss_quant_matmul {
  int64_t M, K, N;
  int arank, brank, rank, yrank;
  int64_t adims[MOSS_MAX_RANK], bdims[MOSS_MAX_RANK], dims[MOSS_MAX_RANK];
  int64_t ydims[MOSS_MAX_RANK];
  int64_t nbatch;
} moss_quant_matmul;
moss_status moss_quant_matmul_compute(moss_ctx *ctx, const moss_node *n, const moss_value *a,
                                      const moss_value *b, moss_quant_matmul *out_p);
/* ConvInteger/QLinearConv: spatial geometry (p: begin pad, auto_pad
 * resolved) and the output shape. */
typedef struct moss_quant_conv {
  int nsp;
  int64_t group;
  int64_t in[MOSS_MAX_RANK], out[MOSS_MAX_RANK], k[MOSS_MAX_RANK];
  int64_t s[MOSS_MAX_RANK], d[MOSS_MAX_RANK], p[MOSS_MAX_RANK];
  int64_t ydims[MOSS_MAX_RANK];
} moss_quant_conv;
moss_status moss_quant_conv_compute(moss_ctx *ctx, const moss_node *n, const moss_value *x,
                                    const moss_value *w, moss_quant_conv *out_c);

/* RNN, GRU and LSTM (ops/recurrent.c): the node's sizes and attributes,
 * checked; passes/recurrent.c rewrites the node from them. */
typedef enum moss_rnn_kind { MOSS_RNN_KIND_RNN, MOSS_RNN_KIND_GRU, MOSS_RNN_KIND_LSTM } moss_rnn_kind;
typedef enum moss_rnn_act_kind {
  MOSS_RNN_RELU, MOSS_RNN_TANH, MOSS_RNN_SIGMOID, MOSS_RNN_AFFINE, MOSS_RNN_LEAKY_RELU,
  MOSS_RNN_THRESHOLDED_RELU, MOSS_RNN_SCALED_TANH, MOSS_RNN_HARD_SIGMOID, MOSS_RNN_ELU,
  MOSS_RNN_SOFTSIGN, MOSS_RNN_SOFTPLUS
} moss_rnn_act_kind;
typedef struct moss_rnn_act {
  moss_rnn_act_kind kind;
  float alpha, beta; /* the ones the activation takes; its defaults where the model gives none */
} moss_rnn_act;
typedef struct moss_rnn {
  moss_rnn_kind kind;
  int gates;                     /* 1, 3 (z, r, h) or 4 (i, o, f, c): rows of W per direction / H */
  int dirs, reverse;             /* 1 or 2 directions; a single one may run backwards */
  int layout;                    /* 0: X [T, B, I]; 1: X [B, T, I] (and the outputs alike) */
  int64_t T, B, I, H;
  int has_clip;
  float clip;                    /* gate inputs clipped to [-clip, clip] */
  int input_forget;              /* LSTM: f = 1 - i */
  int linear_before_reset;       /* GRU */
  int nact;                      /* activations per direction: 1, 2 (f, g) or 3 (f, g, h) */
  moss_rnn_act act[2][3];        /* [direction][f, g, h] */
} moss_rnn;
moss_status moss_rnn_read(moss_ctx *ctx, const moss_node *n, moss_rnn *out_r);
const char *moss_rnn_act_name(moss_rnn_act_kind k);

/* If, Loop and Scan (ops/control.c). moss_node_subgraph: the subgraph of
 * GRAPH attribute |name| ("then_branch", "else_branch", "body"), or NULL.
 * moss_control_read: the node checked, and for a Loop or Scan its
 * iterations and the parts of its inputs and outputs. */
const moss_subgraph *moss_node_subgraph(const moss_node *n, const char *name);
#define MOSS_CONTROL_MAX 64
/* The most nodes a Loop, Scan or recurrent layer is unrolled into: past
 * it the node is refused (compile time and code grow with the count). */
#define MOSS_UNROLL_MAX_NODES 20000
typedef struct moss_control {
  int64_t trips;        /* iterations (a Loop's trip count, a Scan's length) */
  int nstate;           /* carried values (Loop) or states (Scan) */
  int first_state;      /* the node's input holding the first: 2 (Loop), 0 (Scan), 1 (Scan-8) */
  int nscan_in;         /* Scan: the inputs cut into slices, after the states */
  int nscan_out;        /* outputs stacked from every iteration, after the states */
  int in_axis[MOSS_CONTROL_MAX], in_reverse[MOSS_CONTROL_MAX];   /* Scan */
  int out_axis[MOSS_CONTROL_MAX], out_reverse[MOSS_CONTROL_MAX]; /* Scan; a Loop's are 0 */
  int dynamic;          /* Loop: its end is known only at run time; |trips| is the bound */
  int64_t batch;        /* Scan-8: the rows B, each scanned |trips| times on its own; 0 otherwise */
} moss_control;
/* |bound|: the graph's max_trip_count (--max-trip-count; 0: none). */
moss_status moss_control_read(moss_ctx *ctx, const moss_node *n, int64_t bound, moss_control *out_c);

#endif
