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

#endif
