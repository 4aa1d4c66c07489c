/* blob.h - the blob format of the elementwise example plugin, shared by its
 * compile side (compile.c writes it) and its runtime side (device.c checks
 * and runs it). It is the plugin's own format: moss only carries the bytes.
 *
 * Version 1, every field little-endian, no padding, no alignment assumed:
 *
 *   header, 24 bytes
 *     char magic[4]      "MEWB"
 *     u32  version       EW_BLOB_VERSION
 *     u32  ninputs       buffers 0 .. ninputs-1 are the subgraph's inputs
 *     u32  noutputs      the next noutputs buffers are its outputs
 *     u32  nbuffers      >= ninputs + noutputs; the rest are temporaries
 *                        and constants
 *     u32  ninstrs
 *   nbuffers buffer entries, each
 *     u32  kind          EW_BUF_*; the first ninputs are INPUT, the next
 *                        noutputs OUTPUT, the others TEMP or CONST
 *     u32  reserved      0
 *     u64  count         float32 elements
 *     (CONST only) count float32 values follow immediately
 *   ninstrs instructions, 32 bytes each, run in order
 *     u32  op            EW_OP_*
 *     u32  act           fused activation, MOSS_PLUGIN_ACT_* (0: none)
 *     f32  alpha, beta   its parameters (Clip: min, max; LeakyRelu: alpha)
 *     u32  a             first operand buffer
 *     u32  b             second operand buffer; EW_NONE for unary ops
 *     u32  out           result buffer (OUTPUT or TEMP), count elements
 *     u32  reserved      0
 *   and nothing after the last instruction.
 *
 * Operands have the result's element count, or one element (broadcast).
 * A buffer is read only after it has been written (inputs and constants
 * count as written), and every output is written. */
#ifndef EW_BLOB_H
#define EW_BLOB_H

#include <stdint.h>
#include <string.h>

#define EW_BLOB_MAGIC "MEWB"
#define EW_BLOB_VERSION 1u
#define EW_HEADER_BYTES 24u
#define EW_BUFFER_BYTES 16u
#define EW_INSTR_BYTES 32u
#define EW_NONE 0xFFFFFFFFu

enum { EW_BUF_INPUT = 1, EW_BUF_OUTPUT = 2, EW_BUF_TEMP = 3, EW_BUF_CONST = 4 };

/* Binary ops first: an op is binary iff it is below EW_OP_FIRST_UNARY. */
enum {
  EW_OP_ADD = 1,
  EW_OP_SUB,
  EW_OP_MUL,
  EW_OP_DIV,
  EW_OP_MAX,
  EW_OP_MIN,
  EW_OP_FIRST_UNARY,
  EW_OP_RELU = EW_OP_FIRST_UNARY,
  EW_OP_SIGMOID,
  EW_OP_TANH,
  EW_OP_ABS,
  EW_OP_NEG,
  EW_OP_EXP,
  EW_OP_SQRT,
  EW_OP_END_
};

static inline uint32_t ew_get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t ew_get_u64(const unsigned char *p) {
  return (uint64_t)ew_get_u32(p) | (uint64_t)ew_get_u32(p + 4) << 32;
}
static inline float ew_get_f32(const unsigned char *p) {
  uint32_t u = ew_get_u32(p);
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
static inline void ew_put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}
static inline void ew_put_u64(unsigned char *p, uint64_t v) {
  ew_put_u32(p, (uint32_t)v);
  ew_put_u32(p + 4, (uint32_t)(v >> 32));
}
static inline void ew_put_f32(unsigned char *p, float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  ew_put_u32(p, u);
}

#endif
