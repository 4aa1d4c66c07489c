/* forms.c - the backend "ptx+vulkan": both code forms of a segment in one
 * blob. The two backends lay the segment out the same way
 * (backends/gpu/segment.c), so the step's tensors are the same for both,
 * and so, as a rule, are the weights, which the blob then holds once; the
 * blob says which form is which by the backend's name. */
#include <string.h>

#include "../ptx/ptx.h"
#include "../vulkan/vulkan.h"
#include "forms.h"
#include "moss_bundle.h"

int moss_forms_takes(const moss_backend_device *d, const moss_node *n, char *why, size_t cap) {
  return moss_ptx_takes(d, n, why, cap) && moss_vulkan_takes(d, n, why, cap);
}

static void put32(moss_buf *b, uint32_t v) { moss_buf_put(b, &v, 4); }

/* The weights' bytes at the end of segment blobs |a| and |b| (their
 * headers' weights_bytes) when both have the same, byte for byte; else 0. */
static uint64_t shared_weights(const moss_buf *a, const moss_buf *b) {
  moss_opencl_blob_header ha, hb;
  if (a->len < sizeof ha || b->len < sizeof hb) return 0;
  memcpy(&ha, a->data, sizeof ha);
  memcpy(&hb, b->data, sizeof hb);
  if (ha.weights_bytes != hb.weights_bytes || ha.weights_bytes == 0 ||
      ha.weights_bytes > a->len - sizeof ha || hb.weights_bytes > b->len - sizeof hb)
    return 0;
  return memcmp(a->data + a->len - ha.weights_bytes, b->data + b->len - hb.weights_bytes,
                (size_t)ha.weights_bytes) == 0
             ? ha.weights_bytes
             : 0;
}
static void put64(moss_buf *b, uint64_t v) { moss_buf_put(b, &v, 8); }

moss_status moss_forms_emit_segment(const moss_backend_device *d, const moss_graph *g, moss_node *const *nodes,
                                    int nnodes, moss_buf *blob, int **out_in_ids, int *out_nin,
                                    int **out_out_ids, int *out_nout) {
  static const char *const names[2] = {"ptx", "vulkan"};
  moss_ctx *ctx = d->ctx;
  moss_buf parts[2];
  int *in[2] = {NULL, NULL}, *out[2] = {NULL, NULL}, nin[2] = {0, 0}, nout[2] = {0, 0}, k;
  moss_status st = MOSS_OK;
  *out_in_ids = *out_out_ids = NULL;
  *out_nin = *out_nout = 0;
  for (k = 0; k < 2; k++) moss_buf_init(&parts[k], ctx);
  st = moss_ptx_emit_segment(d, g, nodes, nnodes, &parts[0], &in[0], &nin[0], &out[0], &nout[0]);
  if (st == MOSS_OK)
    st = moss_vulkan_emit_segment(d, g, nodes, nnodes, &parts[1], &in[1], &nin[1], &out[1], &nout[1]);
  if (st == MOSS_OK && (nin[0] != nin[1] || nout[0] != nout[1] ||
                        (nin[0] && memcmp(in[0], in[1], (size_t)nin[0] * sizeof(int))) ||
                        (nout[0] && memcmp(out[0], out[1], (size_t)nout[0] * sizeof(int)))))
    st = moss_fail(ctx, MOSS_E_INTERNAL, nodes[0], "ptx+vulkan: the two forms' steps have different tensors");
  if (st == MOSS_OK) {
    /* The weights end each form's segment blob; when the two forms placed
     * the same bytes (they lay the segment out alike), the blob keeps them
     * once, after the forms, which then end after their |source|. */
    uint64_t w = shared_weights(&parts[0], &parts[1]), at;
    int shared = w > 0;
    at = MOSS_FORMS_BLOB_HEADER_BYTES + (uint64_t)(2 + shared) * MOSS_FORMS_BLOB_ENTRY_BYTES;
    moss_buf_put(blob, MOSS_FORMS_BLOB_MAGIC, 4);
    put32(blob, MOSS_FORMS_BLOB_VERSION);
    put32(blob, 2);
    put32(blob, (uint32_t)shared);
    for (k = 0; k < 2 + shared; k++) {
      char name[16] = {0};
      uint64_t len = k < 2 ? (uint64_t)parts[k].len - w : w;
      memcpy(name, k < 2 ? names[k] : "weights", strlen(k < 2 ? names[k] : "weights"));
      moss_buf_put(blob, name, sizeof name);
      put64(blob, at);
      put64(blob, len);
      at += (len + 7) / 8 * 8;
    }
    for (k = 0; k < 2 + shared; k++) {
      static const unsigned char zero[8];
      const char *data = k < 2 ? parts[k].data : parts[0].data + parts[0].len - w;
      size_t len = k < 2 ? parts[k].len - (size_t)w : (size_t)w;
      moss_buf_put(blob, data, len);
      moss_buf_put(blob, zero, (8 - len % 8) % 8);
    }
    if (blob->failed) st = moss_fail(ctx, MOSS_E_NOMEM, nodes[0], "ptx+vulkan blob");
  }
  if (st == MOSS_OK) {
    *out_in_ids = in[0];
    *out_nin = nin[0];
    *out_out_ids = out[0];
    *out_nout = nout[0];
    in[0] = out[0] = NULL;
  }
  for (k = 0; k < 2; k++) {
    if (in[k]) moss_free(ctx, in[k], (size_t)nin[k] * sizeof(int));
    if (out[k]) moss_free(ctx, out[k], (size_t)nout[k] * sizeof(int));
    moss_buf_deinit(&parts[k]);
  }
  return st;
}
