/* region.h - the "region" family's analyses that its lowering
 * (compiler/kernel/lower_region.c) needs again: RoiAlign's attributes and
 * TfIdfVectorizer's n-gram pool, both read and checked once here
 * (compiler/ops/region.c) for inference and for the lowering. */
#ifndef MOSS_OPS_REGION_H
#define MOSS_OPS_REGION_H

#include "../ir/ir.h"

/* RoiAlign (opsets 10 and 16): X [N, C, H, W], rois [R, 4], batch_indices
 * [R] (int64) give Y [R, C, oh, ow]. */
typedef struct moss_roialign {
  int max_mode;     /* mode "max" (else "avg") */
  int half_pixel;   /* coordinate_transformation_mode "half_pixel": the rois are shifted by
                     * -0.5 and not widened to 1 (opset 16's default; opset 10 has only
                     * "output_half_pixel") */
  int64_t oh, ow;   /* output_height, output_width (>= 1) */
  int64_t sampling; /* sampling_ratio: samples per bin and axis; 0: adaptive */
  float scale;      /* spatial_scale */
} moss_roialign;
/* Reads and checks |n|'s attributes into |out_r| (invalid-model on a bad
 * value, against |n|). */
moss_status moss_roialign_compute(moss_ctx *ctx, const moss_node *n, moss_roialign *out_r);

/* TfIdfVectorizer (opset 9) over an integer pool (pool_int64s; a string
 * pool is refused as unsupported). The pool holds the n-grams of size s
 * (s = 1, 2, ...) from ngram_counts[s - 1] on, s items each; they get the
 * ids 0, 1, ... in pool order, all sizes counted, and n-gram |id| adds to
 * output column ngram_indexes[id]. Only the sizes in [min_n, max_n] are
 * counted. */
enum { MOSS_TFIDF_TF = 1, MOSS_TFIDF_IDF, MOSS_TFIDF_TFIDF };
typedef struct moss_tfidf {
  int mode;             /* MOSS_TFIDF_* */
  int64_t min_n, max_n; /* min_gram_length, max_gram_length */
  int64_t max_skip;     /* max_skip_count */
  const int64_t *pool;  /* pool_int64s (the node's attribute) */
  int npool;
  const int64_t *counts; /* ngram_counts */
  int ncounts;
  const int64_t *indexes; /* ngram_indexes */
  int nindexes;
  const float *weights; /* weights, one per output column; NULL: all 1 */
  int64_t out;          /* output columns: the largest ngram_indexes + 1 */
} moss_tfidf;
/* Reads and checks |n|'s attributes into |out_t|: every n-gram of a
 * counted size must have an output column (invalid-model, against |n|). */
moss_status moss_tfidf_compute(moss_ctx *ctx, const moss_node *n, moss_tfidf *out_t);

#endif
