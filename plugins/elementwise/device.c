/* device.c - the runtime side of the elementwise example plugin, a device
 * driver running on the host CPU: load() checks a blob of blob.h field by
 * field and allocates the temporaries and constants it needs, run() walks
 * the instruction list over the caller's buffers without allocating. Also
 * exports moss_plugin_abi_version(), which moss checks first. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "moss_plugin.h"

/* A device needs no state here; the struct stands for what a real driver
 * would keep (a file descriptor, a command queue). */
typedef struct ew_device {
  unsigned loaded;
} ew_device;

typedef struct ew_instr {
  uint32_t op, act, a, b, out;
  float alpha, beta;
  uint64_t count, ca, cb; /* elements of out, a and b */
} ew_instr;

typedef struct ew_prog {
  uint32_t ninputs, noutputs, nbufs, ninstrs;
  ew_instr *instrs;
  float **local;   /* per buffer: its storage (temporaries, constants) or NULL */
  float *storage;  /* one block for every local buffer */
} ew_prog;

/* Writes the message to |err| and returns 1 (failure). */
static int fail(char *err, size_t errcap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int fail(char *err, size_t errcap, const char *fmt, ...) {
  va_list ap;
  if (errcap) {
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
  }
  return 1;
}

typedef unsigned long long ull;

static int ew_open(void **dev, char *err, size_t errcap) {
  ew_device *d = calloc(1, sizeof *d);
  *dev = d;
  if (!d) return fail(err, errcap, "out of memory opening the device");
  return 0;
}

static void ew_close(void *dev) { free(dev); }

static void prog_free(ew_prog *p) {
  if (!p) return;
  free(p->instrs);
  free(p->local);
  free(p->storage);
  free(p);
}

static void ew_unload(void *dev, void *prog) {
  ew_device *d = dev;
  if (d && prog) d->loaded--;
  prog_free(prog);
}

/* Parses and checks |blob|; on success |*out| is a program ready to run. */
static int load(const unsigned char *blob, uint64_t size, ew_prog **out, char *err,
                size_t errcap) {
  ew_prog *p = NULL;
  uint64_t *count = NULL, total = 0, pos, left;
  uint32_t *kind = NULL, version, i;
  unsigned char *written = NULL;
  const unsigned char *cdata;
  int ret = 1;
  *out = NULL;
  if (size < EW_HEADER_BYTES)
    return fail(err, errcap, "blob of %llu bytes is truncated", (ull)size);
  if (memcmp(blob, EW_BLOB_MAGIC, 4) != 0)
    return fail(err, errcap, "not an elementwise blob (bad magic)");
  if ((version = ew_get_u32(blob + 4)) != EW_BLOB_VERSION)
    return fail(err, errcap, "blob version %u, this plugin reads %u", (unsigned)version,
                (unsigned)EW_BLOB_VERSION);
  if (!(p = calloc(1, sizeof *p))) goto nomem;
  p->ninputs = ew_get_u32(blob + 8);
  p->noutputs = ew_get_u32(blob + 12);
  p->nbufs = ew_get_u32(blob + 16);
  p->ninstrs = ew_get_u32(blob + 20);
  pos = EW_HEADER_BYTES;
  left = size - pos;
  if ((uint64_t)p->ninputs + p->noutputs > p->nbufs) {
    fail(err, errcap, "%u inputs and %u outputs but %u buffers", p->ninputs, p->noutputs,
         p->nbufs);
    goto done;
  }
  /* Bound the counts by what the blob can hold before allocating for them. */
  if (p->nbufs > left / EW_BUFFER_BYTES ||
      p->ninstrs > (left - p->nbufs * (uint64_t)EW_BUFFER_BYTES) / EW_INSTR_BYTES) {
    fail(err, errcap, "blob of %llu bytes is truncated for its %u buffers", (ull)size,
         p->nbufs);
    goto done;
  }
  count = calloc((size_t)p->nbufs + 1, sizeof *count);
  kind = calloc((size_t)p->nbufs + 1, sizeof *kind);
  written = calloc((size_t)p->nbufs + 1, 1);
  p->local = calloc((size_t)p->nbufs + 1, sizeof *p->local);
  p->instrs = calloc((size_t)p->ninstrs + 1, sizeof *p->instrs);
  if (!count || !kind || !written || !p->local || !p->instrs) goto nomem;

  /* Buffers: kinds in the documented order, sizes that fit, and where the
   * constants' values start. The values are copied in a second walk, once
   * the storage is allocated. */
  cdata = blob + pos;
  for (i = 0; i < p->nbufs; i++) {
    uint32_t want = i < p->ninputs ? EW_BUF_INPUT
                    : i < p->ninputs + p->noutputs ? EW_BUF_OUTPUT
                                                  : 0;
    if (size - pos < EW_BUFFER_BYTES) {
      fail(err, errcap, "blob truncated in buffer %u", i);
      goto done;
    }
    kind[i] = ew_get_u32(blob + pos);
    count[i] = ew_get_u64(blob + pos + 8);
    pos += EW_BUFFER_BYTES;
    if (want ? kind[i] != want : kind[i] != EW_BUF_TEMP && kind[i] != EW_BUF_CONST) {
      fail(err, errcap, "buffer %u has kind %u, not allowed there", i, kind[i]);
      goto done;
    }
    if (count[i] > ((uint64_t)1 << 40)) {
      fail(err, errcap, "buffer %u has %llu elements, too many", i, (ull)count[i]);
      goto done;
    }
    if (kind[i] == EW_BUF_CONST) {
      if (count[i] * 4 > size - pos) {
        fail(err, errcap, "blob truncated in the values of buffer %u", i);
        goto done;
      }
      pos += count[i] * 4;
      written[i] = 1;
    }
    if (kind[i] == EW_BUF_INPUT) written[i] = 1;
    if (kind[i] == EW_BUF_TEMP || kind[i] == EW_BUF_CONST)
      total += (count[i] + 15) & ~(uint64_t)15;
    if (total > ((uint64_t)1 << 40)) {
      fail(err, errcap, "blob asks for more than 2^40 elements of storage");
      goto done;
    }
  }
  if (size - pos != (uint64_t)p->ninstrs * EW_INSTR_BYTES) {
    fail(err, errcap, "blob has %llu bytes after the buffers, expected %llu", (ull)(size - pos),
         (ull)p->ninstrs * EW_INSTR_BYTES);
    goto done;
  }
  for (i = 0; i < p->ninstrs; i++) {
    const unsigned char *q = blob + pos + (uint64_t)i * EW_INSTR_BYTES;
    ew_instr *in = &p->instrs[i];
    int binary;
    in->op = ew_get_u32(q);
    in->act = ew_get_u32(q + 4);
    in->alpha = ew_get_f32(q + 8);
    in->beta = ew_get_f32(q + 12);
    in->a = ew_get_u32(q + 16);
    in->b = ew_get_u32(q + 20);
    in->out = ew_get_u32(q + 24);
    if (in->op < EW_OP_ADD || in->op >= EW_OP_END_) {
      fail(err, errcap, "instruction %u has unknown op %u", i, in->op);
      goto done;
    }
    if (in->act > MOSS_PLUGIN_ACT_TANH) {
      fail(err, errcap, "instruction %u has unknown activation %u", i, in->act);
      goto done;
    }
    binary = in->op < EW_OP_FIRST_UNARY;
    if (in->a >= p->nbufs || in->out >= p->nbufs ||
        (binary ? in->b >= p->nbufs : in->b != EW_NONE)) {
      fail(err, errcap, "instruction %u names a buffer out of range (%u buffers)", i,
           p->nbufs);
      goto done;
    }
    if (kind[in->out] != EW_BUF_OUTPUT && kind[in->out] != EW_BUF_TEMP) {
      fail(err, errcap, "instruction %u writes to read-only buffer %u", i, in->out);
      goto done;
    }
    if (!written[in->a] || (binary && !written[in->b])) {
      fail(err, errcap, "instruction %u reads buffer %u before it is written", i,
           !written[in->a] ? in->a : in->b);
      goto done;
    }
    in->count = count[in->out];
    in->ca = count[in->a];
    in->cb = binary ? count[in->b] : 0;
    if ((in->ca != in->count && in->ca != 1) ||
        (binary ? in->cb != in->count && in->cb != 1 : in->ca != in->count)) {
      fail(err, errcap, "instruction %u: operand sizes do not match its %llu elements", i,
           (ull)in->count);
      goto done;
    }
    written[in->out] = 1;
  }
  for (i = 0; i < p->noutputs; i++)
    if (!written[p->ninputs + i]) {
      fail(err, errcap, "output %u is never written", i);
      goto done;
    }

  /* Storage for temporaries and constants, 64-byte aligned slots. */
  if (total && !(p->storage = aligned_alloc(64, (size_t)total * sizeof(float)))) goto nomem;
  pos = 0;
  for (i = 0; i < p->nbufs; i++) {
    if (kind[i] == EW_BUF_CONST) {
      uint64_t e;
      p->local[i] = p->storage + pos;
      /* Skip to this buffer's values: entry, then values, in file order. */
      cdata += EW_BUFFER_BYTES;
      for (e = 0; e < count[i]; e++) p->local[i][e] = ew_get_f32(cdata + e * 4);
      cdata += count[i] * 4;
      pos += (count[i] + 15) & ~(uint64_t)15;
    } else {
      cdata += EW_BUFFER_BYTES;
      if (kind[i] == EW_BUF_TEMP) {
        p->local[i] = p->storage + pos;
        pos += (count[i] + 15) & ~(uint64_t)15;
      }
    }
  }
  *out = p;
  p = NULL;
  ret = 0;
  goto done;
nomem:
  fail(err, errcap, "out of memory loading the blob");
done:
  prog_free(p);
  free(count);
  free(kind);
  free(written);
  return ret;
}

static int ew_load(void *dev, const void *blob, uint64_t nbytes, void **prog, char *err,
                   size_t errcap) {
  ew_device *d = dev;
  ew_prog *p;
  *prog = NULL;
  if (!blob) return fail(err, errcap, "no blob");
  if (load(blob, nbytes, &p, err, errcap) != 0) return 1;
  d->loaded++;
  *prog = p;
  return 0;
}

static float activate(float y, const ew_instr *in) {
  switch (in->act) {
  case MOSS_PLUGIN_ACT_RELU: return y < 0 ? 0 : y;
  case MOSS_PLUGIN_ACT_CLIP: return y < in->alpha ? in->alpha : y > in->beta ? in->beta : y;
  case MOSS_PLUGIN_ACT_LEAKY_RELU: return y < 0 ? in->alpha * y : y;
  case MOSS_PLUGIN_ACT_SIGMOID: return 1.0f / (1.0f + expf(-y));
  case MOSS_PLUGIN_ACT_TANH: return tanhf(y);
  }
  return y;
}

/* NaN in either operand gives NaN, as numpy.maximum and ONNX Max do. */
static float max_f(float a, float b) { return (a != a || a > b) ? a : b; }
static float min_f(float a, float b) { return (a != a || a < b) ? a : b; }

static float apply(uint32_t op, float a, float b) {
  switch (op) {
  case EW_OP_ADD: return a + b;
  case EW_OP_SUB: return a - b;
  case EW_OP_MUL: return a * b;
  case EW_OP_DIV: return a / b;
  case EW_OP_MAX: return max_f(a, b);
  case EW_OP_MIN: return min_f(a, b);
  case EW_OP_RELU: return a < 0 ? 0 : a;
  case EW_OP_SIGMOID: return 1.0f / (1.0f + expf(-a));
  case EW_OP_TANH: return tanhf(a);
  case EW_OP_ABS: return fabsf(a);
  case EW_OP_NEG: return -a;
  case EW_OP_EXP: return expf(a);
  case EW_OP_SQRT: return sqrtf(a);
  }
  return a;
}

static const float *buffer(const ew_prog *p, uint32_t i, const void *const *inputs,
                           void *const *outputs) {
  if (i < p->ninputs) return inputs[i];
  if (i < p->ninputs + p->noutputs) return outputs[i - p->ninputs];
  return p->local[i];
}

static int ew_run(void *dev, void *prog, const void *const *inputs, void *const *outputs,
                  char *err, size_t errcap) {
  const ew_prog *p = prog;
  uint32_t i;
  (void)dev;
  if (!p) return fail(err, errcap, "no program");
  for (i = 0; i < p->ninputs; i++)
    if (!inputs || !inputs[i]) return fail(err, errcap, "input %u is NULL", i);
  for (i = 0; i < p->noutputs; i++)
    if (!outputs || !outputs[i]) return fail(err, errcap, "output %u is NULL", i);
  for (i = 0; i < p->ninstrs; i++) {
    const ew_instr *in = &p->instrs[i];
    const float *a = buffer(p, in->a, inputs, outputs);
    const float *b = in->b == EW_NONE ? a : buffer(p, in->b, inputs, outputs);
    /* load() checked that |out| is an output or a temporary: writable. */
    float *y = (float *)buffer(p, in->out, inputs, outputs);
    uint64_t sa = in->ca == 1 ? 0 : 1, sb = in->cb == 1 ? 0 : 1, e;
    for (e = 0; e < in->count; e++) y[e] = activate(apply(in->op, a[e * sa], b[e * sb]), in);
  }
  return 0;
}

static const moss_plugin_device device = {
    MOSS_PLUGIN_ABI_VERSION, sizeof(moss_plugin_device), "elementwise", ew_open, ew_load, ew_run,
    ew_unload, ew_close, NULL, /* counters: this device counts nothing */
};

MOSS_PLUGIN_EXPORT uint32_t moss_plugin_abi_version(void) { return MOSS_PLUGIN_ABI_VERSION; }

MOSS_PLUGIN_EXPORT const moss_plugin_device *moss_plugin_device_get(void) { return &device; }
