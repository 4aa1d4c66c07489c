/* blob.h - the command-stream format of the npu-systolic plugin, shared by
 * its compile side (compile.c and tile.c write it) and its runtime side
 * (blob.c checks it, sim.c runs it). moss only carries the bytes. README.md
 * documents the machine; this header is the format's reference.
 *
 * Version 1, every field little-endian, no padding, no alignment assumed:
 *
 *   header, NPU_HEADER_BYTES (136) bytes
 *      0 char magic[4]        "MNPU"
 *      4 u32  version         NPU_BLOB_VERSION
 *      8 u32  rows, cols      the systolic array (1 .. 256 each)
 *     16 u32  wsram, asram, accsram   SRAM bytes (4 KiB .. 64 MiB each)
 *     28 u32  lanes           vector lanes (1 .. 4096)
 *     32 u32  dma_latency     DMA set-up cycles per transfer (<= 2^20)
 *     36 u32  nsems           semaphores the stream uses (<= NPU_MAX_SEMS)
 *     40 f64  clock_mhz       > 0
 *     48 f64  dram_bpc        DRAM bytes per cycle, > 0
 *     56 f64  pj_mac, pj_sram, pj_dram, idle_w   energy figures (< 0: not modeled)
 *     88 u32  ninputs, noutputs, nlayers, ncmds
 *    104 u64  scratch_bytes   device DRAM for intermediates (< 2^32)
 *    112 u64  const_bytes     the constant region (< 2^32)
 *    120 u64  work_limit      reserved, 0
 *    128 u64  reserved        0
 *   ninputs + noutputs u64   bytes of each host buffer (< 2^32)
 *   nlayers layer entries: u32 name_len, u32 op_len (each <= 255), the
 *       name's bytes, the op type's bytes (no NUL)
 *   ncmds commands of NPU_CMD_WORDS (32) u32 words each
 *   const_bytes of constants (weights in the array's layout, epilogue
 *       parameters, lookup tables)
 *   and nothing after them.
 *
 * DRAM is a set of regions a DMA names by number: NPU_REGION_CONST (the
 * constants above, read-only), NPU_REGION_SCRATCH (scratch_bytes, zeroed
 * at the start of each run), then the run()'s input buffers (read-only)
 * and its output buffers, in the subgraph's order.
 *
 * Every command starts with w[0] = opcode, w[1] = the layer (an index below
 * nlayers) it is counted against. The DMA queue runs LOAD and STORE, the
 * compute queue GEMM and the vector ops; SIGNAL and WAIT run on the queue
 * named in w[2]. Each queue runs its commands in stream order; the two
 * queues are ordered only by semaphores: SIGNAL s adds a token to
 * semaphore s once every earlier command of its queue has finished, WAIT s
 * blocks its queue until s holds a token and takes it. There are no jumps:
 * a stream of ncmds commands runs each command once. */
#ifndef NPU_BLOB_H
#define NPU_BLOB_H

#include <stdint.h>
#include <string.h>

#define NPU_BLOB_MAGIC "MNPU"
#define NPU_BLOB_VERSION 1u
#define NPU_HEADER_BYTES 136u
#define NPU_CMD_WORDS 32u
#define NPU_CMD_BYTES (4u * NPU_CMD_WORDS)
#define NPU_MAX_SEMS 8u
#define NPU_MAX_CMDS (1u << 22)
#define NPU_MAX_SRAM (1u << 26)
#define NPU_MIN_SRAM 4096u
#define NPU_MAX_REGION 0xFFFFFFFFull
/* The device DRAM a blob may use for intermediates: 1 GiB (MobileNetV2 at
 * 224 x 224 needs 7 MB; the loader allocates only what commands reach). */
#define NPU_MAX_SCRATCH (1ull << 30)
/* Bytes per synchronization granule of an SRAM: load() checks that two
 * commands of different queues touching the same granule, one of them
 * writing, are ordered by semaphores. The compiler aligns its buffers to it. */
#define NPU_GRANULE 256u
/* Upper bound of a stream's work (MACs, vector elements and DMA bytes),
 * checked at load so that a run always ends quickly. */
#define NPU_MAX_WORK ((uint64_t)1 << 36)

enum { NPU_REGION_CONST = 0, NPU_REGION_SCRATCH = 1, NPU_REGION_IO = 2 };
enum { NPU_SRAM_W = 0, NPU_SRAM_ACT = 1, NPU_SRAM_ACC = 2, NPU_NSRAMS = 3 };
enum { NPU_Q_DMA = 0, NPU_Q_COMPUTE = 1 };

enum {
  NPU_OP_LOAD = 1,   /* DMA: DRAM region -> SRAM, 2-D strided */
  NPU_OP_STORE = 2,  /* DMA: SRAM -> DRAM region, 2-D strided */
  NPU_OP_GEMM = 3,   /* array: convolution / matrix product tile, optional epilogue */
  NPU_OP_VADD = 4,   /* vector: MossQAdd */
  NPU_OP_VLUT = 5,   /* vector: 256-entry table lookup, per channel or one table */
  NPU_OP_VPOOL = 6,  /* vector: max or average pooling window */
  NPU_OP_SIGNAL = 7, /* sync: add a token to a semaphore */
  NPU_OP_WAIT = 8,   /* sync: take a token, blocking */
  NPU_OP_END_
};

/* Word indices. Common: */
enum { NPU_F_OP = 0, NPU_F_LAYER = 1 };
/* LOAD / STORE: rows x rbytes bytes; DRAM row r at off + r * dstride, SRAM
 * row r at addr + r * sstride. */
enum {
  NPU_D_SRAM = 2,
  NPU_D_ADDR,
  NPU_D_REGION,
  NPU_D_OFF,
  NPU_D_ROWS,
  NPU_D_RBYTES,
  NPU_D_DSTRIDE,
  NPU_D_SSTRIDE
};
/* SIGNAL / WAIT */
enum { NPU_S_QUEUE = 2, NPU_S_SEM };
/* GEMM (README.md "GEMM"): output pixel p = (oy - oy0) * ow + ox of rows
 * oy0 .. oy0 + noy, output column n < nt:
 *   acc[n][p] (+)= sum_k (a(k, p) - xzp) * (w[k][n] - wzp[n])
 * k runs over (channel c < kt, ky < kh, kx < kw) (depthwise: channel n,
 * taps only); a(k, p) is the activation byte at act + c * cs + (iy - iy0) *
 * rs + ix * xs for iy = oy * sh - pt + ky * dh, ix = ox * sw - pl + kx * dw
 * inside the tile (iy0 <= iy < iy0 + ht, 0 <= ix < width), else the zero
 * point (padding contributes 0). The weights are the kt*kh*kw (depthwise:
 * kh*kw) x nt bytes at waddr, row k, column n; the column parameters are
 * NPU_PARAM_BYTES per column at paddr (bias, mult, shift, wzp), read by
 * every GEMM. The accumulators are nt x P int32 at acc (4-byte aligned).
 * With the epilogue, out[n * ocs + p * ops] = clamp(yzp + R[n](acc[n][p] +
 * bias[n]), lo, hi), R[n] the rounding of moss_plugin_requant by mult and
 * shift. */
enum {
  NPU_G_ACT = 2,
  NPU_G_CS,
  NPU_G_RS,
  NPU_G_XS,
  NPU_G_IY0,
  NPU_G_HT,
  NPU_G_WIDTH,
  NPU_G_KH,
  NPU_G_KW,
  NPU_G_SH,
  NPU_G_SW,
  NPU_G_DH,
  NPU_G_DW,
  NPU_G_PT,
  NPU_G_PL,
  NPU_G_OY0,
  NPU_G_NOY,
  NPU_G_OW,
  NPU_G_KT,
  NPU_G_NT,
  NPU_G_FLAGS,
  NPU_G_WADDR,
  NPU_G_PADDR,
  NPU_G_ACC,
  NPU_G_XZP,
  NPU_G_OUT,
  NPU_G_OCS,
  NPU_G_OPS,
  NPU_G_YZP,
  NPU_G_LOHI
};
/* VPOOL: channels ch < nch of a tile addressed like GEMM's (channel stride
 * cs, row stride rs, pixel stride 1); output y + ch * ycs + p. */
enum {
  NPU_P_X = 2,
  NPU_P_CS,
  NPU_P_RS,
  NPU_P_IY0,
  NPU_P_HT,
  NPU_P_WIDTH,
  NPU_P_KH,
  NPU_P_KW,
  NPU_P_SH,
  NPU_P_SW,
  NPU_P_DH,
  NPU_P_DW,
  NPU_P_PT,
  NPU_P_PL,
  NPU_P_OY0,
  NPU_P_NOY,
  NPU_P_OW,
  NPU_P_NCH,
  NPU_P_Y,
  NPU_P_YCS,
  NPU_P_FLAGS,
  NPU_P_PADDR,
  NPU_P_NQ,
  NPU_P_XZP,
  NPU_P_YZP,
  NPU_P_LOHI,
  NPU_P_LIMH,
  NPU_P_LIMW
};
/* VADD: n elements, y may be a or b (in place); MossQAdd, or MossQMul with NPU_FL_MUL. */
enum {
  NPU_A_A = 2,
  NPU_A_B,
  NPU_A_Y,
  NPU_A_N,
  NPU_A_AZP,
  NPU_A_BZP,
  NPU_A_YZP,
  NPU_A_M0,
  NPU_A_S0,
  NPU_A_M1,
  NPU_A_S1,
  NPU_A_M2,
  NPU_A_S2,
  NPU_A_LOHI,
  NPU_A_FLAGS
};
/* VLUT: for ch < nch, i < cnt: y[ch * ycs + i] = t[ch * tcs + x[ch * xcs + i] (+128)]. */
enum {
  NPU_L_X = 2,
  NPU_L_Y,
  NPU_L_NCH,
  NPU_L_CNT,
  NPU_L_XCS,
  NPU_L_YCS,
  NPU_L_T,
  NPU_L_TCS,
  NPU_L_FLAGS
};

/* Flags */
#define NPU_FL_ACCUM 0x1u     /* GEMM: add to the accumulators (else overwrite) */
#define NPU_FL_EPILOGUE 0x2u  /* GEMM: requantize into the output tile */
#define NPU_FL_DEPTHWISE 0x4u /* GEMM: column n reads channel n only */
#define NPU_FL_XS8 0x8u       /* x (a) is int8, else uint8 */
#define NPU_FL_WS8 0x10u      /* weights are int8, else uint8 */
#define NPU_FL_YS8 0x20u      /* y is int8, else uint8 */
#define NPU_FL_AVG 0x40u      /* VPOOL: average (else max) */
#define NPU_FL_INCPAD 0x80u   /* VPOOL average: count_include_pad */
#define NPU_FL_ONEQ 0x100u    /* VPOOL average: one multiplier for every count */
#define NPU_FL_BS8 0x200u     /* VADD: b is int8 */
#define NPU_FL_MUL 0x400u     /* VADD: MossQMul's product (one multiplier, M2/S2) */
#define NPU_FL_GEMM_ALL 0x3Fu
#define NPU_FL_POOL_ALL 0x1E8u
#define NPU_FL_ADD_ALL 0x628u
#define NPU_FL_LUT_ALL 0x8u

/* Bytes per output column of a GEMM's epilogue parameters in the weight
 * SRAM: int32 bias, mult, shift, weight zero point. VPOOL's multipliers:
 * 8 bytes (mult, shift) per entry. */
#define NPU_PARAM_BYTES 16u
#define NPU_POOLQ_BYTES 8u

/* Issue cost of a compute command, cycles. */
#define NPU_ISSUE_CYCLES 4u

static inline uint32_t npu_get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t npu_get_u64(const unsigned char *p) {
  return (uint64_t)npu_get_u32(p) | (uint64_t)npu_get_u32(p + 4) << 32;
}
static inline double npu_get_f64(const unsigned char *p) {
  uint64_t u = npu_get_u64(p);
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}
static inline void npu_put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}
static inline void npu_put_u64(unsigned char *p, uint64_t v) {
  npu_put_u32(p, (uint32_t)v);
  npu_put_u32(p + 4, (uint32_t)(v >> 32));
}
static inline void npu_put_f64(unsigned char *p, double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  npu_put_u64(p, u);
}

/* lo and hi of an epilogue's clamp, two int16 in one word. */
static inline uint32_t npu_lohi(int32_t lo, int32_t hi) {
  return (uint32_t)(uint16_t)(int16_t)lo | (uint32_t)(uint16_t)(int16_t)hi << 16;
}
static inline int32_t npu_lo(uint32_t w) { return (int16_t)(uint16_t)(w & 0xFFFFu); }
static inline int32_t npu_hi(uint32_t w) { return (int16_t)(uint16_t)(w >> 16); }

/* ---- the timing model, shared by the simulator and the tiler ---------- */

static inline uint64_t npu_ceil_div(uint64_t a, uint64_t b) { return b ? (a + b - 1) / b : 0; }

/* A DMA transfer of |bytes|: the set-up latency, then the bytes at the
 * DRAM's bandwidth. */
static inline uint64_t npu_dma_cycles(uint32_t latency, double bpc, uint64_t bytes) {
  double c = (double)bytes / bpc;
  uint64_t ci = (uint64_t)c;
  if ((double)ci < c) ci++;
  return (uint64_t)latency + ci;
}

/* A GEMM of |taps| reduction rows (kt * kh * kw, or kh * kw depthwise) by
 * |nt| columns over |pixels| outputs on an rows x cols array: each pass
 * loads a rows x cols block of weights (rows cycles), streams the pixels
 * through (pixels cycles) and fills and drains the array (rows + cols). */
static inline uint64_t npu_gemm_cycles(uint32_t rows, uint32_t cols, uint64_t taps, uint64_t nt,
                                       uint64_t pixels) {
  uint64_t passes = npu_ceil_div(taps, rows) * npu_ceil_div(nt, cols);
  return passes * (2u * (uint64_t)rows + cols + pixels);
}

/* |elems| operations on the vector unit, one per lane per cycle. */
static inline uint64_t npu_vector_cycles(uint32_t lanes, uint64_t elems) {
  return npu_ceil_div(elems, lanes);
}

/* The on-chip bytes command |w| reads (|*rd|) and writes (|*wr|) on an
 * array of |cols| columns: the simulator's count (blob.c) and the cost
 * model's (tile.c) are this one formula. LOAD writes and STORE reads its
 * bytes; GEMM reads each pass's weights and every pixel's reduction vector
 * once per pass, its columns' parameters, the accumulators when it adds to
 * them, and writes them; its epilogue reads the accumulators and writes
 * the 8-bit outputs; VPOOL reads each tap (and its multipliers), writes
 * each output; VADD reads two operands per output; VLUT reads the input and
 * the table entry. The fields must have been checked (blob.c) or made by
 * the compiler (tile.c): the products stay far below 2^64. */
static inline void npu_sram_traffic(uint32_t cols, const uint32_t *w, uint64_t *rd, uint64_t *wr) {
  uint64_t P, K, nt, t;
  *rd = *wr = 0;
  switch (w[0]) {
  case NPU_OP_LOAD: *wr = (uint64_t)w[NPU_D_ROWS] * w[NPU_D_RBYTES]; break;
  case NPU_OP_STORE: *rd = (uint64_t)w[NPU_D_ROWS] * w[NPU_D_RBYTES]; break;
  case NPU_OP_GEMM:
    P = (uint64_t)w[NPU_G_NOY] * w[NPU_G_OW];
    nt = w[NPU_G_NT];
    K = (uint64_t)w[NPU_G_KH] * w[NPU_G_KW] *
        (w[NPU_G_FLAGS] & NPU_FL_DEPTHWISE ? 1u : (uint64_t)w[NPU_G_KT]);
    t = 4 * P * nt;
    *wr = t;
    *rd = (w[NPU_G_FLAGS] & NPU_FL_ACCUM ? t : 0) + nt * NPU_PARAM_BYTES + K * nt +
          P * K * npu_ceil_div(nt, cols);
    if (w[NPU_G_FLAGS] & NPU_FL_EPILOGUE) *rd += 4 * nt * P, *wr += nt * P;
    break;
  case NPU_OP_VPOOL:
    t = (uint64_t)w[NPU_P_NOY] * w[NPU_P_OW] * w[NPU_P_NCH];
    *rd = t * w[NPU_P_KH] * w[NPU_P_KW] +
          (w[NPU_P_FLAGS] & NPU_FL_AVG ? (uint64_t)w[NPU_P_NQ] * NPU_POOLQ_BYTES : 0);
    *wr = t;
    break;
  case NPU_OP_VADD: *rd = 2 * (uint64_t)w[NPU_A_N], *wr = w[NPU_A_N]; break;
  case NPU_OP_VLUT:
    t = (uint64_t)w[NPU_L_NCH] * w[NPU_L_CNT];
    *rd = 2 * t, *wr = t;
    break;
  }
}

#endif
