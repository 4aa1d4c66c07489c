/* eval.c - `moss eval ARTIFACT X.npy Y.npy` and `moss compile ... --eval`:
 * runs a bundle through libmossrt on X in batches of its compiled input,
 * takes the argmax over the last axis of output 0 and counts the rows that
 * match the labels Y (for an output [B, ..., C], the first C scores of
 * each sample). A last partial batch is padded with zeros, and only its
 * real rows are counted. A batched bundle (compiled without --input-shape,
 * mossrt_bundle_batched) runs all of X in one mossrt_run_batch. */
#include <stdio.h>
#include <string.h>

#include "driver.h"
#include "mossrt.h"

/* A libmossrt error: its text reads "<bundle>: <category>: <reason>";
 * the diagnostic already names the file, so keep the reason. */
static moss_status rt_fail(moss_ctx *ctx, const mossrt_error *e) {
  const char *reason = e->text, *p = strstr(e->text, ": ");
  if (p && (p = strstr(p + 2, ": ")) != NULL) reason = p + 2;
  return moss_fail(ctx, e->status == MOSSRT_E_NOMEM ? MOSS_E_NOMEM : MOSS_E_IO, NULL, "%s", reason);
}

/* Runs |artifact| on X; with |ypath|, counts the right answers into |out|;
 * with |rows|, hands back output 0 of every sample (|*count| floats,
 * moss_alloc'd) for moss_eval_outputs. */
static moss_status eval_run(moss_ctx *ctx, const char *artifact, const char *xpath,
                            const char *ypath, moss_eval_result *out, float **rows,
                            int64_t *count) {
  mossrt_bundle *b = NULL;
  mossrt_session *s = NULL;
  mossrt_error err;
  mossrt_tensor_info in, o;
  moss_graph *scratch = NULL;
  moss_value *x = NULL, *y = NULL;
  void *inbuf = NULL, *outbuf = NULL;
  const void *ins[1];
  void *outs[64];
  moss_status st;
  int64_t batch, n, r, row = 1, classes, i, stride;
  uint32_t k, nout;
  int batched;
  char a[160];
  memset(out, 0, sizeof *out);
  ctx->file = artifact;
  if (mossrt_open_file(artifact, &b, &err) != MOSSRT_OK) return rt_fail(ctx, &err);
  batched = mossrt_bundle_batched(b) && mossrt_input_count(b) == 1;
  if (moss_file_note_input(ctx, artifact) != MOSS_OK) { /* no output may replace it */
    mossrt_close(b);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "the list of files read");
  }
  st = moss_graph_create(ctx, &scratch);
  if (st != MOSS_OK) goto done;
  if (mossrt_input_count(b) != 1 || mossrt_output_count(b) < 1 || mossrt_output_count(b) > 64) {
    st = moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                   "eval takes models with one input and at most 64 outputs (this one: %u, %u)",
                   mossrt_input_count(b), mossrt_output_count(b));
    goto done;
  }
  mossrt_input_info(b, 0, &in);
  mossrt_output_info(b, 0, &o);
  if (in.rank < 1 || o.rank < 1 || o.dims[0] != in.dims[0] || o.dtype != MOSS_DT_F32) {
    st = moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                   "eval wants output 0 as float32 scores [batch, ..., classes] over input 0's batch");
    goto done;
  }
  batch = in.dims[0];
  classes = o.dims[o.rank - 1];
  for (k = 1; k < (uint32_t)in.rank; k++) row *= in.dims[k];
  ctx->file = xpath; /* a bad file is reported under its own name */
  st = moss_tensor_file_read(ctx, scratch, xpath, &x);
  ctx->file = ypath;
  if (st == MOSS_OK && ypath) st = moss_tensor_file_read(ctx, scratch, ypath, &y);
  ctx->file = artifact;
  if (st != MOSS_OK) goto done;
  {
    int ok = x->dtype == (moss_dtype)in.dtype && x->rank == in.rank;
    for (k = 1; ok && k < (uint32_t)in.rank; k++) ok = x->dims[k] == in.dims[k];
    if (!ok) {
      ctx->file = xpath;
      st = moss_fail(ctx, MOSS_E_IO, NULL,
                     "inputs of type %s; the model input '%s' wants %s [N, ...] with the same "
                     "trailing dimensions as its compiled shape", moss_value_type_str(x, a, sizeof a),
                     in.name, moss_dtype_name((moss_dtype)in.dtype));
      goto done;
    }
  }
  n = x->dims[0];
  if (y && ((y->dtype != MOSS_DT_I64 && y->dtype != MOSS_DT_I32) || moss_value_numel(y) != n)) {
    ctx->file = ypath;
    st = moss_fail(ctx, MOSS_E_IO, NULL, "labels of type %s; expected int64 or int32 [%lld]",
                   moss_value_type_str(y, a, sizeof a), (long long)n);
    goto done;
  }
  stride = (int64_t)(o.nbytes / 4) / batch; /* scores per row */
  if (batched) batch = n > 0 ? n : 1;      /* every row in one run of the batch */
  if (rows) {
    *count = n * stride;
    if (!(*rows = moss_alloc(ctx, (size_t)*count * sizeof(float) + 1))) {
      st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "outputs");
      goto done;
    }
  }
  nout = mossrt_output_count(b);
  for (k = 0; k < nout; k++) {
    mossrt_tensor_info t;
    mossrt_output_info(b, k, &t);
    outs[k] = moss_graph_alloc(scratch, (size_t)t.nbytes * (size_t)(batched ? batch : 1) + 1);
    if (!outs[k]) {
      st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "outputs");
      goto done;
    }
  }
  outbuf = outs[0];
  inbuf = moss_graph_alloc(scratch, (size_t)in.nbytes + 1);
  if (!inbuf) {
    st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "input");
    goto done;
  }
  if (mossrt_session_create(b, NULL, 0, &s, &err) != MOSSRT_OK) {
    st = rt_fail(ctx, &err);
    goto done;
  }
  ins[0] = inbuf;
  for (r = 0; r < n; r += batch) {
    int64_t m = n - r < batch ? n - r : batch;
    size_t esz = moss_dtype_size(x->dtype);
    if (batched) {
      ins[0] = x->data;
      if (mossrt_run_batch(s, (uint64_t)n, ins, outs, &err) != MOSSRT_OK) {
        st = rt_fail(ctx, &err);
        goto done;
      }
    } else {
      memset(inbuf, 0, (size_t)in.nbytes);
      memcpy(inbuf, (const char *)x->data + (size_t)(r * row) * esz, (size_t)(m * row) * esz);
      if (mossrt_run(s, ins, outs, &err) != MOSSRT_OK) {
        st = rt_fail(ctx, &err);
        goto done;
      }
    }
    if (rows) memcpy(*rows + r * stride, outbuf, (size_t)(m * stride) * sizeof(float));
    for (i = 0; y && i < m; i++) {
      const float *sc = (const float *)outbuf + (size_t)(i * stride);
      int64_t best = 0, c;
      for (c = 1; c < classes; c++)
        if (sc[c] > sc[best]) best = c;
      out->right += best == moss_value_get_i64(y, r + i);
    }
  }
  out->n = n;
  out->accuracy = n ? (double)out->right / (double)n : 0;
done:
  if (s) mossrt_session_destroy(s);
  mossrt_close(b);
  if (scratch) moss_graph_destroy(ctx, scratch);
  if (st != MOSS_OK && rows && *rows) {
    moss_free(ctx, *rows, (size_t)*count * sizeof(float) + 1);
    *rows = NULL;
  }
  return st;
}

moss_status moss_eval_artifact(moss_ctx *ctx, const char *artifact, const char *xpath,
                               const char *ypath, moss_eval_result *out) {
  return eval_run(ctx, artifact, xpath, ypath, out, NULL, NULL);
}

moss_status moss_eval_outputs(moss_ctx *ctx, const char *artifact, const char *xpath,
                              float **out_rows, int64_t *out_count, int64_t *out_n) {
  moss_eval_result r;
  moss_status st;
  *out_rows = NULL;
  *out_count = 0;
  st = eval_run(ctx, artifact, xpath, NULL, &r, out_rows, out_count);
  *out_n = r.n;
  return st;
}
