/* passes.h - graph-to-graph passes, one per file, one signature. The
 * driver runs them in the order of moss_passes[] (driver/pipeline.c). */
#ifndef MOSS_PASSES_H
#define MOSS_PASSES_H

#include "../ir/ir.h"

typedef moss_status (*moss_pass_fn)(moss_ctx *ctx, moss_graph *g);

/* ONNX Runtime's quantized com.microsoft operators (QGemm, QLinearAdd,
 * QLinearMul, QLinearSigmoid, QLinearLeakyRelu, QLinearAveragePool,
 * QLinearGlobalAveragePool, QLinearConcat: its quantizer's QOperator
 * format) rewritten as DequantizeLinear -> float op -> QuantizeLinear,
 * for the qdq pass to fold (passes/contrib.c). */
moss_status moss_pass_contrib(moss_ctx *ctx, moss_graph *g);
/* Rejects what cannot be compiled before any work: unknown operators,
 * foreign domains, wrong arity. Reports every such node, then fails. */
moss_status moss_pass_check(moss_ctx *ctx, moss_graph *g);
/* Shape and dtype inference in topological order; a node whose inputs are
 * all constant is evaluated on the spot (constant folding), so shapes that
 * depend on computed constants resolve. Reports every unsupported node. */
moss_status moss_pass_infer(moss_ctx *ctx, moss_graph *g);
/* float16 and bfloat16 computed in float32 (passes/half.c), as inference
 * meets each node: moss_half_inputs reads |n|'s 16-bit float inputs through
 * Casts to float32 (|as_f32|, |nv| entries by value id: the Cast of each
 * value, made once), setting |*out_half| to their type (MOSS_DT_UNDEF:
 * none, or |n| is a Cast or CastLike); after |n| is inferred,
 * moss_half_outputs rounds each float32 output back to |half| by a Cast. */
moss_status moss_half_inputs(moss_ctx *ctx, moss_graph *g, moss_node *n, moss_value **as_f32, int nv,
                             moss_dtype *out_half);
moss_status moss_half_outputs(moss_ctx *ctx, moss_graph *g, moss_node *n, moss_dtype half);
/* After partition: the exactly rounded elementwise nodes (Add, Sub, Mul,
 * Div, Max, Min, Relu, Neg, Abs, Sqrt) between the Casts that passes/half.c
 * put around them, on a device |native|[d] says computes in float16
 * (moss_kernel_cpu.half), read and write the float16 values themselves
 * (moss_node.native_half); the Casts nothing reads then go. The results
 * are the same bits. */
moss_status moss_pass_native_half(moss_ctx *ctx, moss_graph *g, const unsigned char *native);
/* --float16 NODE,NODE... (docs/kernel.md, "Half precision"): each named
 * float32 Conv, Gemm or MatMul (names after fusion) reads its inputs and
 * weights rounded to float16 (a Cast to float16 and back; constants
 * rounded in place of a copy) and its result is rounded to float16 the
 * same way (moss_node.half_layer). On a device that computes in float16,
 * moss_pass_native_half then makes it read and write float16 and
 * accumulate in it; elsewhere it computes in float32 between the
 * roundings. A name that is not such a node is an invalid-model error. */
moss_status moss_pass_half_layers(moss_ctx *ctx, moss_graph *g, const char *names);
/* Whether |name| is one of the comma-separated |list| (passes/ptq.c). */
int moss_name_listed(const char *list, const char *name);
/* RNN, GRU and LSTM node |n|, inferred, becomes the nodes of its time
 * steps (passes/recurrent.c), appended to the node list for inference to
 * visit; |n| is marked dead and its outputs keep their values. */
moss_status moss_recurrent_expand(moss_ctx *ctx, moss_graph *g, moss_node *n);
/* If, Loop or Scan node |at| of the list, inferred, becomes what runs
 * (passes/control.c): the branch an If's condition picks (or both and a
 * Where per output when the condition is known only at run time), a
 * Loop's or Scan's body once per iteration; their nodes go into the list
 * right after it, and it is marked dead. */
moss_status moss_control_expand(moss_ctx *ctx, moss_graph *g, int at);
/* Whether |g1|, imported with moss_onnx_import_batch at batch 1 and
 * inferred, may run over slices of axis 0: |g2| is the same model at batch
 * 2, inferred. Reports every node that mixes rows (passes/batch.c). */
moss_status moss_pass_batch(moss_ctx *ctx, const moss_graph *g1, const moss_graph *g2);
/* "bind the batch with --input-shape x=Nx64 ..." for every input of |g|
 * (N: the user's batch), NUL-terminated in |buf|. */
void moss_batch_hint(const moss_graph *g, char *buf, size_t cap);
/* Constant folding of any node whose inputs became constant later. */
moss_status moss_pass_fold(moss_ctx *ctx, moss_graph *g);
/* BatchNormalization after a Conv/Gemm with constant weights folds into
 * that Conv/Gemm's weights and bias. */
moss_status moss_pass_bn_fold(moss_ctx *ctx, moss_graph *g);
/* A bias Add and an activation after Conv/Gemm/MatMul move into it. */
moss_status moss_pass_fuse(moss_ctx *ctx, moss_graph *g);
/* After partitioning: a residual Add after a float Conv (the Conv's output
 * plus a tensor of the same shape, ready before the Conv runs) and the
 * activation after it move into the Conv, as its input 3 and its fused
 * activation: out = act(conv + bias + residual). Only where the Conv, the
 * Add and the activation share one segment of a device whose backend lowers
 * kernel descriptions (|devices|[d] set: the kernels take input 3). */
moss_status moss_pass_fuse_residual(moss_ctx *ctx, moss_graph *g, const unsigned char *devices);
/* After the residual pass: chains of elementwise nodes (the unary and
 * binary families) on one segment of a device whose backend lowers kernel
 * descriptions (|devices|[d] set) become one MossFused node, computed in
 * one loop (compiler/kernel/lower_fused.c) that writes only the chain's
 * end. A node joins the node that reads its output when that output has
 * no other reader, is not a graph output and has the reader's output
 * shape. |takes|(|user|, n) is the device's backend's answer for a
 * candidate (a chain it cannot lower stays apart). docs/kernel.md. */
moss_status moss_pass_fuse_chains(moss_ctx *ctx, moss_graph *g, const unsigned char *devices,
                                  int (*takes)(void *user, const moss_node *n), void *user);
/* Quantized regions: DequantizeLinear -> float op -> QuantizeLinear (the
 * QDQ form exporters write) becomes one integer-only op (QLinearConv,
 * MossQGemm, MossQAdd, MossQMul, MossQAvgPool, MossQLookup, or the op itself
 * on int8 data); no-op Casts go first. A node that stays float keeps the
 * reason in moss_node.qnote (--explain prints it). docs/qdq.md. */
moss_status moss_pass_qdq(moss_ctx *ctx, moss_graph *g);
/* Removes nodes no graph output depends on. */
moss_status moss_pass_dce(moss_ctx *ctx, moss_graph *g);

/* Evaluates |n| if all its present inputs are constant; *out_folded says
 * whether it did (the node is then dead and its outputs constant). */
moss_status moss_fold_node(moss_ctx *ctx, moss_graph *g, moss_node *n, int *out_folded);

#endif
