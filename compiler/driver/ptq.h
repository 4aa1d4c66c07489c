/* ptq.h - moss's own post-training quantization (--quantize int8
 * --calibration DATA): calibration runs of the float model, then
 * QuantizeLinear/DequantizeLinear pairs inserted around the layers, which
 * the qdq pass then folds into integer-only ops. docs/quantization.md. */
#ifndef MOSS_PTQ_H
#define MOSS_PTQ_H

#include "driver.h"

/* The calibration compile (opts->observe): every float value a node
 * produces becomes a graph output, so one run shows all activations. */
moss_status moss_ptq_observe(moss_ctx *ctx, moss_graph *g);

/* Calibrates on opts->calibration and inserts the Quantize/Dequantize
 * pairs into |g| (run after 'fuse', before 'qdq'). */
moss_status moss_ptq_apply(moss_ctx *ctx, moss_graph *g, const moss_compile_opts *opts);

/* The observed range of one value (indexed by value id); |seen| 0: the
 * calibration never saw it. */
typedef struct moss_ptq_range {
  float lo, hi;
  int seen;
} moss_ptq_range;

/* Per-tensor uint8 asymmetric parameters for [lo, hi]: the range is
 * widened to hold 0, scale = (hi - lo) / 255 (at least 1e-8), zero point
 * round(-lo / scale) clamped to [0, 255]. */
void moss_ptq_act_params(float lo, float hi, float *out_scale, uint8_t *out_zp);

/* "minmax" (NULL too) or "percentile[:P]" (0 < P <= 100, default 99.99):
 * sets |*out_p| to 0 for minmax, else P. Fails with a clear message. */
moss_status moss_ptq_parse_method(moss_ctx *ctx, const char *method, double *out_p);

/* Checks that every name of the comma-separated |keep_float| (may be
 * NULL) is a node of |g|; the error names the first unknown one. */
moss_status moss_ptq_check_keep_float(moss_ctx *ctx, const moss_graph *g, const char *keep_float);

/* The rewrite itself, given the ranges (|nranges| entries, by value id):
 * per-channel symmetric int8 weights, int32 biases, uint8 activations, as
 * standard ONNX QDQ nodes. Nodes named in |keep_float| stay float.
 * |out_nquant| layers were quantized, |out_nkept| kept float by request. */
moss_status moss_ptq_insert(moss_ctx *ctx, moss_graph *g, const moss_ptq_range *ranges, int nranges,
                            const char *keep_float, int *out_nquant, int *out_nkept);

/* Calibration (calibrate.c): compiles |opts|'s model with observe set into
 * a temporary folder, runs it on opts->calibration and fills |ranges|
 * (|nranges| entries, by value id of |g|) with minmax or percentile-|p|
 * ranges. |out_nsamples|: the samples seen. */
moss_status moss_ptq_calibrate(moss_ctx *ctx, const moss_graph *g, const moss_compile_opts *opts,
                               double p, moss_ptq_range *ranges, int nranges,
                               int64_t *out_nsamples);

#endif
