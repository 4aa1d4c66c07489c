/* blob.c - what the GPU executors (opencl/opencl.c, cuda/cuda.c) share: the
 * reading and checking of a GPU segment blob (moss_bundle.h, "OpenCL
 * segment blob"; the PTX segment blob has its layout). */
#include <string.h>

#include "../core/mossrt_internal.h"

#define FAIL(st, fmt, ...) mossrt_fail(err, b->name, st, "%s: " fmt, f->prefix, ##__VA_ARGS__)

uint64_t mossrt_rd64(const uint8_t *p) {
  uint64_t v = 0;
  int i;
  for (i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

mossrt_status mossrt_gpu_blob_read(const mossrt_bundle *b, uint32_t i, const mossrt_gpu_format *f,
                                   mossrt_gpu_blob *out, mossrt_error *err) {
  const mossrt_blob *bl = &b->blobs[i];
  uint64_t need, left, k;
  memset(out, 0, sizeof *out);
  if (bl->size < sizeof out->h) return FAIL(MOSSRT_E_FORMAT, "blob %u: %llu bytes, shorter than its header", i,
                                           (unsigned long long)bl->size);
  memcpy(&out->h, bl->data, sizeof out->h);
  if (memcmp(out->h.magic, f->magic, 4) || out->h.version != f->version)
    return FAIL(MOSSRT_E_FORMAT, "blob %u: not %s of version %u", i, f->kind, f->version);
  left = bl->size - sizeof out->h;
  if (out->h.ntensors > left / 8 || out->h.nkernels > left / 8 ||
      (uint64_t)out->h.ntensors + out->h.nkernels > left / 8 || out->h.nkernels == 0)
    return FAIL(MOSSRT_E_FORMAT, "blob %u: %u tensors and %u kernels do not fit its %llu bytes", i,
                out->h.ntensors, out->h.nkernels, (unsigned long long)bl->size);
  need = 8 * ((uint64_t)out->h.ntensors + out->h.nkernels);
  left -= need;
  if (bl->weights) { /* its code-forms blob keeps the weights apart (gpu/forms.c) */
    if (out->h.source_len != left || out->h.source_len == 0 || out->h.weights_bytes != bl->nweights)
      return FAIL(MOSSRT_E_FORMAT, "blob %u: its source (%llu bytes) is not the rest of it, or its "
                  "weights (%llu bytes) are not the %llu its code-forms blob keeps", i,
                  (unsigned long long)out->h.source_len, (unsigned long long)out->h.weights_bytes,
                  (unsigned long long)bl->nweights);
  } else if (out->h.source_len > left || out->h.weights_bytes > left - out->h.source_len ||
             out->h.source_len + out->h.weights_bytes != left || out->h.source_len == 0)
    return FAIL(MOSSRT_E_FORMAT, "blob %u: its source (%llu bytes) and weights (%llu) are not the rest of it",
                i, (unsigned long long)out->h.source_len, (unsigned long long)out->h.weights_bytes);
  out->bytes = bl->data + sizeof out->h;
  out->items = out->bytes + 8 * (uint64_t)out->h.ntensors;
  out->source = (const char *)(out->items + 8 * (uint64_t)out->h.nkernels);
  out->weights = bl->weights ? bl->weights : (const uint8_t *)out->source + out->h.source_len;
  for (k = 0; k < out->h.nkernels; k++) {
    uint64_t l = mossrt_rd64(out->items + 8 * k), n = MOSS_GPU_LAUNCH_ITEMS(l), g = MOSS_GPU_LAUNCH_GROUP(l);
    if (n == 0 || n > ((uint64_t)1 << 31) || (l >> 48) || (g && n % g))
      return FAIL(MOSSRT_E_FORMAT, "blob %u: kernel %llu has %llu work-items in work-groups of %llu", i,
                  (unsigned long long)k, (unsigned long long)n, (unsigned long long)g);
  }
  if (out->h.arena_bytes > ((uint64_t)1 << 40))
    return FAIL(MOSSRT_E_FORMAT, "blob %u: an arena of %llu bytes", i, (unsigned long long)out->h.arena_bytes);
  return MOSSRT_OK;
}

mossrt_status mossrt_gpu_check_step(mossrt_bundle *b, uint32_t i, const mossrt_gpu_format *f, mossrt_error *err) {
  const mossrt_step *s = &b->steps[i];
  mossrt_gpu_blob ob;
  uint32_t k;
  if (s->blob >= b->nblobs || b->blobs[s->blob].device != s->device)
    return FAIL(MOSSRT_E_FORMAT, "step %u: blob index %u is not a blob of device %u", i, s->blob, s->device);
  if (mossrt_gpu_blob_read(b, s->blob, f, &ob, err) != MOSSRT_OK) return MOSSRT_E_FORMAT;
  if (ob.h.ntensors != s->nin + s->nout)
    return FAIL(MOSSRT_E_FORMAT, "step %u: %u tensors, its blob %u has %u", i, s->nin + s->nout, s->blob,
                ob.h.ntensors);
  for (k = 0; k < ob.h.ntensors; k++)
    if (mossrt_rd64(ob.bytes + 8 * k) != b->tensors[b->refs[s->first + k]].nbytes)
      return FAIL(MOSSRT_E_FORMAT, "step %u: tensor %u is %llu bytes, its blob says %llu", i, k,
                  (unsigned long long)b->tensors[b->refs[s->first + k]].nbytes,
                  (unsigned long long)mossrt_rd64(ob.bytes + 8 * k));
  return MOSSRT_OK;
}
