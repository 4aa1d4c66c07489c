/* ptq.h - the driver's side of moss's own post-training quantization
 * (--quantize int8 --calibration DATA; docs/quantization.md): the
 * "calibrate" stage (calibrate.c) runs the float model through libmossrt on
 * the calibration data and measures every activation's range; the
 * "quantize" stage then inserts the Quantize/Dequantize pairs from those
 * ranges (passes/ptq.h), which the qdq pass folds into integer-only ops. */
#ifndef MOSS_DRIVER_PTQ_H
#define MOSS_DRIVER_PTQ_H

#include "../passes/prune.h"
#include "../passes/ptq.h"
#include "driver.h"

/* What the "calibrate" stage measured, for the "quantize" stage. */
typedef struct moss_ptq_calibration {
  moss_ptq_range *ranges; /* |nranges| entries, by value id of the graph calibrated; its arena */
  int nranges;
  int64_t nsamples;  /* the samples the model ran on */
  double percentile; /* the observer: 0 minmax, else percentile P */
} moss_ptq_calibration;

/* "minmax" (NULL too) or "percentile[:P]" (0 < P <= 100, default 99.99):
 * sets |*out_p| to 0 for minmax, else P. Fails with a clear message. */
moss_status moss_ptq_parse_method(moss_ctx *ctx, const char *method, double *out_p);

/* The "calibrate" stage, on |g| after 'fuse' and --prune: checks
 * opts->quantize (int8 only), opts->calibration, opts->calib_method and
 * opts->keep_float (names of nodes of |g|), then compiles opts->model again
 * with opts->observe set (same passes up to there, so the same value names)
 * as a bundle for the machine moss runs on, in a temporary folder, runs it
 * through libmossrt on every batch of opts->calibration and fills |out_calib|
 * with minmax or percentile ranges of |g|'s values (in |g|'s arena). Errors:
 * those of the options, of the data (io), of the calibration build. */
moss_status moss_ptq_calibrate(moss_ctx *ctx, moss_graph *g, const moss_compile_opts *opts,
                               moss_ptq_calibration *out_calib);

/* The mean squares --prune columns-act ranks by (passes/prune.h): like
 * moss_ptq_calibrate, opts->model compiled again with observers, but
 * without --prune, and run on opts->calibration; |*out_power| gets
 * |*out_n| = g->nvalues entries by value id of |g| (in |g|'s arena).
 * Errors: no opts->calibration (invalid-model), those of the data (io) and
 * of the build. */
moss_status moss_ptq_power(moss_ctx *ctx, moss_graph *g, const moss_compile_opts *opts,
                           moss_act_power **out_power, int *out_n);

#endif
