/* region.c - operators that gather from regions of their input that only
 * the run knows: RoiAlign (bilinear samples of boxes given at run time) and
 * TfIdfVectorizer (counts of n-grams, with skips, from a constant pool).
 * Shape inference and the checks of their attributes; no constant
 * evaluation (the lowering, compiler/kernel/lower_region.c, computes
 * them). */
#include <string.h>

#include "ops.h"
#include "region.h"

moss_status moss_roialign_compute(moss_ctx *ctx, const moss_node *n, moss_roialign *out_r) {
  /* Opset 10 knows only what opset 16 calls "output_half_pixel". */
  const char *ctm =
      moss_attr_string(n, "coordinate_transformation_mode",
                       n->opset > 0 && n->opset < 16 ? "output_half_pixel" : "half_pixel");
  const char *mode = moss_attr_string(n, "mode", "avg");
  memset(out_r, 0, sizeof *out_r);
  if (strcmp(mode, "avg") && strcmp(mode, "max"))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "mode '%s' (avg or max)", mode);
  if (strcmp(ctm, "half_pixel") && strcmp(ctm, "output_half_pixel"))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "coordinate_transformation_mode '%s' (half_pixel or output_half_pixel)", ctm);
  out_r->max_mode = !strcmp(mode, "max");
  out_r->half_pixel = !strcmp(ctm, "half_pixel");
  out_r->oh = moss_attr_int(n, "output_height", 1);
  out_r->ow = moss_attr_int(n, "output_width", 1);
  out_r->sampling = moss_attr_int(n, "sampling_ratio", 0);
  out_r->scale = moss_attr_float(n, "spatial_scale", 1.0f);
  if (out_r->oh < 1 || out_r->ow < 1 || out_r->oh > INT32_MAX || out_r->ow > INT32_MAX)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "output_height %lld, output_width %lld (each 1 to 2^31 - 1)",
                     (long long)out_r->oh, (long long)out_r->ow);
  if (out_r->sampling < 0 || out_r->sampling > INT32_MAX)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "sampling_ratio %lld (0 to 2^31 - 1)",
                     (long long)out_r->sampling);
  return MOSS_OK;
}

static moss_status infer_roialign(moss_ctx *ctx, moss_node *n) {
  moss_value *x = n->inputs[0], *rois, *bi;
  moss_roialign r;
  int64_t d[4];
  MOSS_TRY(moss_need_input(ctx, n, 1));
  MOSS_TRY(moss_need_input(ctx, n, 2));
  rois = n->inputs[1];
  bi = n->inputs[2];
  if (x->dtype != MOSS_DT_F32 && x->dtype != MOSS_DT_F64)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "X of type %s (a float type)",
                     moss_dtype_name(x->dtype));
  if (rois->dtype != x->dtype)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "rois of type %s, X of type %s",
                     moss_dtype_name(rois->dtype), moss_dtype_name(x->dtype));
  if (bi->dtype != MOSS_DT_I64)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "batch_indices of type %s (int64)",
                     moss_dtype_name(bi->dtype));
  if (x->rank != 4)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "X of rank %d ([N, C, H, W])", x->rank);
  if (rois->rank != 2 || rois->dims[1] != 4)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "rois must be [num_rois, 4]");
  if (bi->rank != 1 || bi->dims[0] != rois->dims[0])
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "batch_indices must be [num_rois], num_rois = %lld", (long long)rois->dims[0]);
  if (x->bounded || rois->bounded || bi->bounded)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "an input whose length only the run knows (docs/dynamic-shapes.md)");
  MOSS_TRY(moss_roialign_compute(ctx, n, &r));
  d[0] = rois->dims[0];
  d[1] = x->dims[1];
  d[2] = r.oh;
  d[3] = r.ow;
  moss_set_output(n, 0, x->dtype, 4, d);
  return MOSS_OK;
}

moss_status moss_tfidf_compute(moss_ctx *ctx, const moss_node *n, moss_tfidf *out_t) {
  const moss_attr *a;
  const char *mode;
  int64_t id = 0, i, size;
  int nw;
  memset(out_t, 0, sizeof *out_t);
  if (moss_node_find_attr(n, "pool_strings"))
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "a pool of strings (pool_strings): moss counts integer n-grams only "
                     "(pool_int64s)");
  a = moss_node_find_attr(n, "pool_int64s");
  if (!a) return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "pool_int64s is missing");
  out_t->pool = a->ints;
  out_t->npool = a->n;
  mode = moss_attr_string(n, "mode", "");
  out_t->mode = !strcmp(mode, "TF")      ? MOSS_TFIDF_TF
                : !strcmp(mode, "IDF")   ? MOSS_TFIDF_IDF
                : !strcmp(mode, "TFIDF") ? MOSS_TFIDF_TFIDF
                                         : 0;
  if (!out_t->mode)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "mode '%s' (TF, IDF or TFIDF)", mode);
  if (!moss_node_find_attr(n, "min_gram_length") || !moss_node_find_attr(n, "max_gram_length") ||
      !moss_node_find_attr(n, "max_skip_count"))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "min_gram_length, max_gram_length and max_skip_count are required");
  out_t->min_n = moss_attr_int(n, "min_gram_length", 1);
  out_t->max_n = moss_attr_int(n, "max_gram_length", 1);
  out_t->max_skip = moss_attr_int(n, "max_skip_count", 0);
  if (out_t->min_n < 1 || out_t->max_n < out_t->min_n || out_t->max_skip < 0)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                     "min_gram_length %lld, max_gram_length %lld, max_skip_count %lld (need "
                     "1 <= min <= max and a skip count >= 0)",
                     (long long)out_t->min_n, (long long)out_t->max_n, (long long)out_t->max_skip);
  out_t->ncounts = moss_attr_ints(n, "ngram_counts", &out_t->counts);
  out_t->nindexes = moss_attr_ints(n, "ngram_indexes", &out_t->indexes);
  if (out_t->nindexes == 0)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "ngram_indexes is missing or empty");
  for (i = 0; i < out_t->nindexes; i++) {
    int64_t v = out_t->indexes[i];
    if (v < 0 || v >= INT32_MAX)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "ngram_indexes[%lld] = %lld (0 to 2^31 - 2)",
                       (long long)i, (long long)v);
    if (v + 1 > out_t->out) out_t->out = v + 1;
  }
  for (i = 0; i < out_t->ncounts; i++) {
    int64_t lo = out_t->counts[i],
            hi = i + 1 < out_t->ncounts ? out_t->counts[i + 1] : out_t->npool;
    if (lo < 0 || hi < lo || hi > out_t->npool)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                       "ngram_counts puts the %lld-grams at items %lld to %lld of a pool of %d "
                       "(the starts must rise within the pool)",
                       (long long)(i + 1), (long long)lo, (long long)hi, out_t->npool);
    size = i + 1;
    /* Items past the last whole n-gram of a size are not read (the
     * reference does the same). */
    if (size >= out_t->min_n && size <= out_t->max_n && id + (hi - lo) / size > out_t->nindexes)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                       "the pool has more n-grams (%lld or more) than ngram_indexes has "
                       "entries (%d)",
                       (long long)(id + (hi - lo) / size), out_t->nindexes);
    id += (hi - lo) / size;
  }
  nw = moss_attr_floats(n, "weights", &out_t->weights);
  if (nw == 0) out_t->weights = NULL;
  if (out_t->weights && out_t->mode != MOSS_TFIDF_TF && nw < out_t->out)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "%d weights for %lld output columns", nw,
                     (long long)out_t->out);
  return MOSS_OK;
}

static moss_status infer_tfidf(moss_ctx *ctx, moss_node *n) {
  moss_value *x = n->inputs[0];
  moss_tfidf t;
  int64_t d[2];
  if (x->dtype == MOSS_DT_STRING)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "string input: moss counts integer n-grams only (int32 or int64)");
  if (x->dtype != MOSS_DT_I32 && x->dtype != MOSS_DT_I64)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input of type %s (int32, int64 or string)",
                     moss_dtype_name(x->dtype));
  if (x->rank > 2)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input of rank %d ([C] or [B, C])", x->rank);
  if (x->rank == 2 && x->dims[0] < 1)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "input [B, C] with B = %lld (B >= 1)",
                     (long long)x->dims[0]);
  if (x->bounded)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "an input whose length only the run knows (docs/dynamic-shapes.md)");
  MOSS_TRY(moss_tfidf_compute(ctx, n, &t));
  if (x->rank == 2) {
    d[0] = x->dims[0];
    d[1] = t.out;
    moss_set_output(n, 0, MOSS_DT_F32, 2, d);
  } else {
    d[0] = t.out;
    moss_set_output(n, 0, MOSS_DT_F32, 1, d);
  }
  return MOSS_OK;
}

moss_status moss_infer_region(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)g;
  MOSS_TRY(moss_need_input(ctx, n, 0));
  if (n->op == MOSS_OP_RoiAlign) return infer_roialign(ctx, n);
  return infer_tfidf(ctx, n);
}

moss_status moss_eval_region(moss_ctx *ctx, moss_graph *g, moss_node *n) {
  (void)ctx;
  (void)g;
  (void)n;
  return MOSS_E_UNSUPPORTED;
}
