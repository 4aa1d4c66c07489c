/* cgen.h - the portable C backend: turns a planned graph into <name>.h and
 * <name>.c (DESIGN.md "Generated C"). Each operator family writes the body
 * of a node's block in backends/c/emit_<family>.c. */
#ifndef MOSS_CGEN_H
#define MOSS_CGEN_H

#include "../../compiler/ops/ops.h"

typedef struct moss_cgen {
  moss_ctx *ctx;
  moss_graph *g;
  const char *prefix;   /* sanitized model name: symbol prefix */
  moss_buf *out;        /* the current node's block; families write here */
  moss_buf *decls;      /* file-scope definitions (weights, shared helpers) */
  int indent;           /* in levels of two spaces, for moss_c_line */
  unsigned helpers;     /* shared helper functions already emitted (bit per MOSS_CH_*) */
  int uid;              /* counter for unique local names */
  unsigned char *emitted; /* per value id: weight array already defined */
  moss_buf *wfile;      /* large models: the weights go to <name>_weights.c */
  moss_arena *karena;   /* the current node's kernel description (reset per node) */
} moss_cgen;

/* Above this many bytes of weights, they go to their own <name>_weights.c
 * (external linkage, prefixed names) so the code file stays small. */
#define MOSS_C_WEIGHTS_FILE_BYTES ((size_t)1 << 20)

/* A family's emitter. Inside the node's block, input i is available as
 * `x<i>` (const T *, absent optional inputs are not declared) and output i
 * as `y<i>` (T *), T being moss_dtype_ctype(value->dtype); the framework
 * declares only the names the emitted text uses, and defines the weight
 * arrays of the constant inputs that are used. Constant inputs can also be
 * read at compile time through n->inputs[i]->data. */
typedef moss_status (*moss_c_emit_fn)(moss_cgen *cg, const moss_node *n);

/* The families (one line each) whose nodes, or some of them, are still
 * printed as C directly, until they move to a lowering
 * (compiler/kernel/lower.h): their emitters, emit_<family>.c. A node its
 * family's lowering takes is printed from its kernel description. */
#define MOSS_C_DIRECT_FAMILIES(X) \
  X(variadic)                     \
  X(cast)                         \
  X(conv)                         \
  X(matmul)                       \
  X(einsum)                       \
  X(pool)                         \
  X(norm)                         \
  X(reduce)                       \
  X(softmax)                      \
  X(topk)                         \
  X(view)                         \
  X(movement)                     \
  X(gather)                       \
  X(generator)                    \
  X(resize)                       \
  X(loss)                         \
  X(quant)                        \
  X(qfold)                        \
  /* end */
#define MOSS_C_EMIT_DECL(f) moss_status moss_c_emit_##f(moss_cgen *cg, const moss_node *n);
MOSS_C_DIRECT_FAMILIES(MOSS_C_EMIT_DECL)
#undef MOSS_C_EMIT_DECL

/* Prints |n|'s kernel description (kprint.c) as the body of its block. */
moss_status moss_c_emit_kernel(moss_cgen *cg, const moss_node *n);

/* Writes one line of code into the node's block at the current indent. */
void moss_c_line(moss_cgen *cg, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Opens / closes a brace level: moss_c_open(cg, "for (i = 0; i < %d; i++)", n). */
void moss_c_open(moss_cgen *cg, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void moss_c_close(moss_cgen *cg);

/* Literal text of a value of type |dt| that round-trips: hex floats with
 * an f suffix for float32, INFINITY/NAN where needed, INT64_C(...) for
 * 64-bit integers. Writes into |buf| and returns it. */
const char *moss_c_lit_f64(moss_dtype dt, double v, char *buf, size_t cap);
const char *moss_c_lit_i64(moss_dtype dt, int64_t v, char *buf, size_t cap);
/* Literal of element |i| of the constant value |v|. */
const char *moss_c_lit_elem(const moss_value *v, int64_t i, char *buf, size_t cap);

/* The C expression applying |n|'s fused activation (n->act, set by the
 * fusion pass) to the float32 expression |v|; |v| itself when none. */
const char *moss_c_act(const moss_node *n, const char *v, char *buf, size_t cap);

/* The float value a Gemm-like node stores for accumulated |v|: alpha * v,
 * plus beta * x2[cidx] when |cidx| (the bias C's index expression) is
 * non-NULL, then the fused activation. */
void moss_c_gemm_epilogue(const moss_node *n, moss_dtype dt, double alpha, double beta,
                          const char *cidx, const char *v, char *out, size_t cap);

/* Shared helper functions emitted once per file at file scope, on demand.
 * Each returns the helper's name. */
enum { MOSS_CH_ERF = 1u << 0, MOSS_CH_ROUND_EVEN = 1u << 1 };
void moss_c_need_helper(moss_cgen *cg, unsigned helper);

/* Flat index, into an input of shape |in_rank|/|in_dims| broadcast to
 * |rank|/|dims|, as a C expression of loop variables <var>0..<var>{rank-1}
 * ("i2 + i1 * 4"); "0" when the input is a single element. */
void moss_c_index_expr(char *buf, size_t cap, char var, int rank, const int64_t *dims,
                       int in_rank, const int64_t *in_dims);

/* Emits a loop nest over the shape |out| (rank |rank|, dims |dims|) that
 * computes an index expression for each of |nin| broadcast inputs (shapes
 * given by in_rank/in_dims) and then writes |stmt| with the index names
 * substituted: "%o" is the output's flat index, "%0".."%9" the flat index
 * into input k. Handles the equal-shape case with one flat loop. */
void moss_c_broadcast_loop(moss_cgen *cg, int rank, const int64_t *dims, int nin,
                           const int *in_rank, const int64_t (*in_dims)[MOSS_MAX_RANK],
                           const char *stmt);

/* Quantized outputs (emit_quant.c): the file-scope helper moss_requant of
 * docs/numerics-int8.md, emitted once per file; the clamp range of an
 * 8-bit output (the type's range narrowed by the int attributes qmin/qmax
 * that the qdq pass sets from a fused Relu/Clip); and the store
 * "y0[at] = clamp(v)". */
void moss_c_need_requant(moss_cgen *cg);
void moss_c_qbounds(const moss_node *n, moss_dtype dt, int *out_lo, int *out_hi);
void moss_c_store_clamped(moss_cgen *cg, const moss_node *n, moss_dtype dt, const char *at,
                          const char *v);
/* MossQAvgPool (emit_pool.c). */
moss_status moss_c_emit_qavgpool(moss_cgen *cg, const moss_node *n);

/* The C backend entry: writes <dir>/<prefix>.h, <dir>/<prefix>.c and
 * <dir>/<prefix>.manifest (what `moss run` needs to call the code). */
moss_status moss_c_emit(moss_ctx *ctx, moss_graph *g, const char *prefix, const char *dir,
                        const char *source_hash, const char *target_name);

/* The generated header <prefix>.h of the standalone form and the
 * manifest `moss run` reads (|extra|: one more line, may be NULL), for
 * backends that write the same interface (the LLVM backend's --emit obj). */
void moss_c_header_emit(const moss_graph *g, const char *prefix, const char *src_name,
                        const char *source_hash, const char *target_name, moss_buf *out);
void moss_c_manifest_emit(const moss_graph *g, const char *prefix, const char *extra, moss_buf *out);

/* |src| as a C identifier: other characters become '_', and an 'm' goes
 * first when it does not start with a letter or '_'. */
void moss_c_identifier(char *dst, size_t cap, const char *src);

/* Whether the C backend has code for |n|'s operator. */
int moss_c_can_emit(const moss_node *n);

/* The segmented form, for bundles whose target has other devices: only the
 * nodes whose segment |k| has seg_is_c[k] set are emitted, one function
 * per segment, int <prefix>_seg<k>(const void *const *in, void *const *out,
 * void *arena), in place of <prefix>_run_v and <prefix>_run. |seg_is_c|
 * NULL: the standalone form (moss_c_emit). */
moss_status moss_c_emit_segments(moss_ctx *ctx, moss_graph *g, const char *prefix,
                                 const char *dir, const char *source_hash,
                                 const char *target_name, const unsigned char *seg_is_c,
                                 int nseg);

#endif
