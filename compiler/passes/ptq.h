/* ptq.h - the graph rewrites of moss's own post-training quantization
 * (--quantize int8 --calibration DATA; docs/quantization.md). Given the
 * range of every activation, which the driver's "calibrate" stage measures
 * (driver/calibrate.c), the "quantize" stage puts standard ONNX
 * QuantizeLinear/DequantizeLinear nodes around the Conv/Gemm/MatMul layers;
 * the qdq pass then folds them into integer-only ops. The calibration build
 * itself runs moss_ptq_observe in that place instead. */
#ifndef MOSS_PASSES_PTQ_H
#define MOSS_PASSES_PTQ_H

#include "../ir/ir.h"

/* The observed range of one value (indexed by value id); |seen| 0: the
 * calibration never saw it. */
typedef struct moss_ptq_range {
  float lo, hi;
  int seen;
} moss_ptq_range;

/* The calibration build's rewrite: every float value a node of |g|
 * produces becomes a graph output, so one run shows all activations.
 * Errors: out-of-memory. */
moss_status moss_ptq_observe(moss_ctx *ctx, moss_graph *g);

/* Per-tensor uint8 asymmetric parameters for [lo, hi]: the range is
 * widened to hold 0, scale = (hi - lo) / 255 (at least 1e-8), zero point
 * round(-lo / scale) clamped to [0, 255]. */
void moss_ptq_act_params(float lo, float hi, float *out_scale, uint8_t *out_zp);

/* Checks that every name of the comma-separated |keep_float| (may be
 * NULL) is a node of |g|; the error (invalid-model) names the first
 * unknown one. */
moss_status moss_ptq_check_keep_float(moss_ctx *ctx, const moss_graph *g, const char *keep_float);

/* The rewrite (run after 'fuse', before 'qdq'), given the ranges
 * (|nranges| entries, by value id of |g|; borrowed): per-channel symmetric
 * int8 weights, int32 biases, uint8 activations, as standard ONNX QDQ
 * nodes. Nodes named in the comma-separated |keep_float| (may be NULL)
 * stay float. |out_nquant| layers were quantized, |out_nkept| kept float by
 * request. Errors: out-of-memory. */
moss_status moss_ptq_insert(moss_ctx *ctx, moss_graph *g, const moss_ptq_range *ranges, int nranges,
                            const char *keep_float, int *out_nquant, int *out_nkept);

#endif
