/* blob.c - the runtime side's loader: checks a blob of blob.h completely
 * (header, machine figures, counts against the blob's length, every
 * command's fields, SRAM ranges and DRAM regions in overflow-safe
 * arithmetic, the total work) and then the stream as a whole: it runs the
 * two queues' synchronization once, refusing a stream that would deadlock,
 * and checks that any two commands of different queues that touch the
 * same SRAM granule, one of them writing, are ordered by semaphores (so
 * every schedule the simulator may pick computes the same bytes). Then it
 * allocates everything run() uses: SRAMs, scratch DRAM, working vectors,
 * semaphore queues and counters. A blob is untrusted input: nothing here
 * may crash on any bytes. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

typedef unsigned long long ull;

int npu_fail(char *err, size_t errcap, const char *fmt, ...) {
  va_list ap;
  if (errcap) {
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
  }
  return 1;
}

void npu_prog_free(npu_prog *p) {
  int i;
  if (!p) return;
  free(p->iosize);
  free(p->names);
  free(p->cmds);
  free(p->qcmd[0]);
  free(p->qcmd[1]);
  for (i = 0; i < NPU_NSRAMS; i++)
    free(p->sram[i]);
  free(p->scratch);
  free(p->col);
  free(p->sum);
  free(p->bias);
  free(p->mult);
  free(p->shift);
  free(p->wzp);
  for (i = 0; i < (int)NPU_MAX_SEMS; i++)
    free(p->tok[i]);
  free(p->ctr);
  free(p->first);
  free(p->last);
  free(p);
}

static const char *const op_names[] = {"?",    "LOAD",  "STORE",  "GEMM", "VADD",
                                       "VLUT", "VPOOL", "SIGNAL", "WAIT"};

/* a * b when it is at most |lim|. */
static int mul_le(uint64_t a, uint64_t b, uint64_t lim, uint64_t *out) {
  if (a && b > lim / a) return 0;
  *out = a * b;
  return a * b <= lim;
}

/* An SRAM range a command touches, for the ordering check. */
typedef struct range {
  int sram, write;
  uint64_t lo, hi;
} range;

typedef struct checker {
  const npu_prog *p;
  uint64_t size[NPU_NSRAMS];
  char *err;
  size_t errcap;
  uint32_t i; /* the command being checked */
  uint64_t scratch_hi; /* the end of the scratch bytes the commands reach */
} checker;

#define CFAIL(c, ...) (npu_fail((c)->err, (c)->errcap, __VA_ARGS__), 0)

/* |w|[f] within [lo, hi]. */
static int field(checker *c, const uint32_t *w, int f, const char *name, uint64_t lo, uint64_t hi) {
  if (w[f] < lo || w[f] > hi)
    return CFAIL(c, "command %u (%s): %s = %u, expected %llu .. %llu", c->i, op_names[w[0]], name,
                 w[f], (ull)lo, (ull)hi);
  return 1;
}

/* [addr, addr + extent) inside SRAM |s|. */
static int inside(checker *c, const uint32_t *w, int s, uint64_t addr, uint64_t extent,
                  const char *what) {
  static const char *const sn[] = {"weight", "activation", "accumulator"};
  if (addr > c->size[s] || extent > c->size[s] - addr)
    return CFAIL(c, "command %u (%s): %s [%llu, +%llu) outside the %s SRAM of %llu bytes", c->i,
                 op_names[w[0]], what, (ull)addr, (ull)extent, sn[s], (ull)c->size[s]);
  return 1;
}

static void add_range(range *r, int *n, int sram, int write, uint64_t lo, uint64_t extent) {
  r[*n].sram = sram, r[*n].write = write, r[*n].lo = lo, r[*n].hi = lo + extent;
  (*n)++;
}

static int signed_zp(int32_t v) { return v >= -255 && v <= 255; }

/* The clamp |lohi| within the 8-bit type of |s8|. */
static int lohi_ok(uint32_t lohi, int s8) {
  int32_t lo = npu_lo(lohi), hi = npu_hi(lohi), tlo = s8 ? -128 : 0, thi = s8 ? 127 : 255;
  return lo >= tlo && hi <= thi && lo <= hi;
}

#define CAP24 (1u << 24)

/* Checks command |d| (fields, ranges), fills its costs and the ranges it
 * touches. */
static int check_cmd(checker *c, npu_dcmd *d, range *r, int *nr) {
  const npu_prog *p = c->p;
  const uint32_t *w = d->w;
  uint64_t t, P, K, ext;
  *nr = 0;
  d->layer = w[NPU_F_LAYER];
  if (w[0] == 0 || w[0] >= NPU_OP_END_)
    return CFAIL(c, "command %u: unknown opcode %u", c->i, w[0]);
  if (d->layer >= p->nlayers)
    return CFAIL(c, "command %u (%s): layer %u of %u", c->i, op_names[w[0]], d->layer, p->nlayers);
  switch (w[0]) {
  case NPU_OP_SIGNAL:
  case NPU_OP_WAIT:
    if (!p->nsems)
      return CFAIL(c, "command %u (%s): no semaphores in this stream", c->i, op_names[w[0]]);
    if (!field(c, w, NPU_S_QUEUE, "queue", 0, 1) ||
        !field(c, w, NPU_S_SEM, "semaphore", 0, p->nsems - 1))
      return 0;
    d->queue = w[NPU_S_QUEUE];
    return 1;
  case NPU_OP_LOAD:
  case NPU_OP_STORE: {
    uint64_t region, rows = w[NPU_D_ROWS], rb = w[NPU_D_RBYTES], dext, sext;
    d->queue = NPU_Q_DMA;
    if (!field(c, w, NPU_D_SRAM, "sram", 0, NPU_NSRAMS - 1) ||
        !field(c, w, NPU_D_REGION, "region", 0, NPU_REGION_IO + p->ninputs + p->noutputs - 1) ||
        !field(c, w, NPU_D_ROWS, "rows", 1, CAP24) ||
        !field(c, w, NPU_D_RBYTES, "row bytes", 1, NPU_MAX_SRAM))
      return 0;
    switch (w[NPU_D_REGION]) {
    case NPU_REGION_CONST: region = p->const_bytes; break;
    case NPU_REGION_SCRATCH: region = p->scratch_bytes; break;
    default: region = p->iosize[w[NPU_D_REGION] - NPU_REGION_IO];
    }
    if (w[0] == NPU_OP_STORE &&
        (w[NPU_D_REGION] == NPU_REGION_CONST ||
         (w[NPU_D_REGION] >= NPU_REGION_IO && w[NPU_D_REGION] < NPU_REGION_IO + p->ninputs)))
      return CFAIL(c, "command %u (STORE): region %u is read-only", c->i, w[NPU_D_REGION]);
    dext = (rows - 1) * w[NPU_D_DSTRIDE] + rb; /* < 2^24 * 2^32 + 2^26 */
    sext = (rows - 1) * w[NPU_D_SSTRIDE] + rb;
    if (w[NPU_D_OFF] > region || dext > region - w[NPU_D_OFF])
      return CFAIL(c, "command %u (%s): DRAM [%u, +%llu) outside region %u of %llu bytes", c->i,
                   op_names[w[0]], w[NPU_D_OFF], (ull)dext, w[NPU_D_REGION], (ull)region);
    if (w[NPU_D_REGION] == NPU_REGION_SCRATCH && w[NPU_D_OFF] + dext > c->scratch_hi)
      c->scratch_hi = w[NPU_D_OFF] + dext;
    if (!inside(c, w, (int)w[NPU_D_SRAM], w[NPU_D_ADDR], sext, "transfer")) return 0;
    if (w[NPU_D_SSTRIDE] < rb && rows > 1)
      return CFAIL(c, "command %u (%s): SRAM rows overlap", c->i, op_names[w[0]]);
    add_range(r, nr, (int)w[NPU_D_SRAM], w[0] == NPU_OP_LOAD, w[NPU_D_ADDR], sext);
    t = rows * rb;
    d->cycles = npu_dma_cycles(p->dma_latency, p->dram_bpc, t);
    if (w[0] == NPU_OP_LOAD)
      d->dram_rd = t;
    else
      d->dram_wr = t;
    return 1;
  }
  case NPU_OP_GEMM: {
    uint32_t fl = w[NPU_G_FLAGS];
    int dw = (fl & NPU_FL_DEPTHWISE) != 0;
    uint64_t kt = w[NPU_G_KT], nt = w[NPU_G_NT], khw;
    d->queue = NPU_Q_COMPUTE;
    if (!field(c, w, NPU_G_FLAGS, "flags", 0, NPU_FL_GEMM_ALL) ||
        !field(c, w, NPU_G_KT, "kt", 1, CAP24) || !field(c, w, NPU_G_NT, "nt", 1, CAP24) ||
        !field(c, w, NPU_G_HT, "ht", 1, CAP24) || !field(c, w, NPU_G_WIDTH, "width", 1, CAP24) ||
        !field(c, w, NPU_G_NOY, "noy", 1, CAP24) || !field(c, w, NPU_G_OW, "ow", 1, CAP24) ||
        !field(c, w, NPU_G_IY0, "iy0", 0, CAP24) || !field(c, w, NPU_G_OY0, "oy0", 0, CAP24) ||
        !field(c, w, NPU_G_KH, "kh", 1, 255) || !field(c, w, NPU_G_KW, "kw", 1, 255) ||
        !field(c, w, NPU_G_SH, "sh", 1, 255) || !field(c, w, NPU_G_SW, "sw", 1, 255) ||
        !field(c, w, NPU_G_DH, "dh", 1, 255) || !field(c, w, NPU_G_DW, "dw", 1, 255) ||
        !field(c, w, NPU_G_PT, "pt", 0, 255) || !field(c, w, NPU_G_PL, "pl", 0, 255) ||
        !field(c, w, NPU_G_CS, "cs", 0, NPU_MAX_SRAM) ||
        !field(c, w, NPU_G_RS, "rs", 0, NPU_MAX_SRAM) ||
        !field(c, w, NPU_G_XS, "xs", 0, NPU_MAX_SRAM) ||
        !field(c, w, NPU_G_OCS, "ocs", 0, NPU_MAX_SRAM) ||
        !field(c, w, NPU_G_OPS, "ops", 0, NPU_MAX_SRAM))
      return 0;
    if (dw && kt != nt)
      return CFAIL(c, "command %u (GEMM): depthwise with kt %llu != nt %llu", c->i, (ull)kt,
                   (ull)nt);
    if (!signed_zp((int32_t)w[NPU_G_XZP]) ||
        ((fl & NPU_FL_EPILOGUE) &&
         (!signed_zp((int32_t)w[NPU_G_YZP]) || !lohi_ok(w[NPU_G_LOHI], (fl & NPU_FL_YS8) != 0))))
      return CFAIL(c, "command %u (GEMM): zero point or clamp out of range", c->i);
    /* activation tile: the farthest byte any tap can read */
    ext = (kt - 1) * w[NPU_G_CS] + ((uint64_t)w[NPU_G_HT] - 1) * w[NPU_G_RS] +
          ((uint64_t)w[NPU_G_WIDTH] - 1) * w[NPU_G_XS] + 1;
    if (!inside(c, w, NPU_SRAM_ACT, w[NPU_G_ACT], ext, "activation tile")) return 0;
    add_range(r, nr, NPU_SRAM_ACT, 0, w[NPU_G_ACT], ext);
    khw = (uint64_t)w[NPU_G_KH] * w[NPU_G_KW];
    if (!mul_le(dw ? 1 : kt, khw, c->size[NPU_SRAM_W], &K) ||
        !mul_le(K, nt, c->size[NPU_SRAM_W], &t))
      return CFAIL(c, "command %u (GEMM): weight tile larger than the weight SRAM", c->i);
    if (!inside(c, w, NPU_SRAM_W, w[NPU_G_WADDR], t, "weight tile")) return 0;
    add_range(r, nr, NPU_SRAM_W, 0, w[NPU_G_WADDR], t);
    if (!mul_le(w[NPU_G_NOY], w[NPU_G_OW], c->size[NPU_SRAM_ACC], &P) ||
        !mul_le(4 * P, nt, c->size[NPU_SRAM_ACC], &t))
      return CFAIL(c, "command %u (GEMM): accumulators larger than the accumulator SRAM", c->i);
    if (w[NPU_G_ACC] % 4)
      return CFAIL(c, "command %u (GEMM): accumulators not 4-byte aligned", c->i);
    if (!inside(c, w, NPU_SRAM_ACC, w[NPU_G_ACC], t, "accumulators")) return 0;
    if (fl & NPU_FL_ACCUM) add_range(r, nr, NPU_SRAM_ACC, 0, w[NPU_G_ACC], t);
    add_range(r, nr, NPU_SRAM_ACC, 1, w[NPU_G_ACC], t);
    if (!inside(c, w, NPU_SRAM_W, w[NPU_G_PADDR], nt * NPU_PARAM_BYTES, "column parameters"))
      return 0;
    add_range(r, nr, NPU_SRAM_W, 0, w[NPU_G_PADDR], nt * NPU_PARAM_BYTES);
    if (fl & NPU_FL_EPILOGUE) {
      ext = (nt - 1) * w[NPU_G_OCS] + (P - 1) * w[NPU_G_OPS] + 1;
      if (!inside(c, w, NPU_SRAM_ACT, w[NPU_G_OUT], ext, "output tile")) return 0;
      add_range(r, nr, NPU_SRAM_ACT, 1, w[NPU_G_OUT], ext);
      d->vector = npu_vector_cycles(p->lanes, nt * P);
    }
    d->macs = P * K * nt; /* <= 2^24 * 2^26 */
    d->array = npu_gemm_cycles(p->rows, p->cols, K, nt, P);
    d->cycles = NPU_ISSUE_CYCLES + d->array + d->vector;
    return 1;
  }
  case NPU_OP_VPOOL: {
    uint32_t fl = w[NPU_P_FLAGS];
    uint64_t nch = w[NPU_P_NCH], taps;
    d->queue = NPU_Q_COMPUTE;
    if (!field(c, w, NPU_P_FLAGS, "flags", 0, NPU_FL_POOL_ALL) ||
        !field(c, w, NPU_P_NCH, "nch", 1, CAP24) || !field(c, w, NPU_P_HT, "ht", 1, CAP24) ||
        !field(c, w, NPU_P_WIDTH, "width", 1, CAP24) || !field(c, w, NPU_P_NOY, "noy", 1, CAP24) ||
        !field(c, w, NPU_P_OW, "ow", 1, CAP24) || !field(c, w, NPU_P_IY0, "iy0", 0, CAP24) ||
        !field(c, w, NPU_P_OY0, "oy0", 0, CAP24) || !field(c, w, NPU_P_KH, "kh", 1, 65535) ||
        !field(c, w, NPU_P_KW, "kw", 1, 65535) || !field(c, w, NPU_P_SH, "sh", 1, 255) ||
        !field(c, w, NPU_P_SW, "sw", 1, 255) || !field(c, w, NPU_P_DH, "dh", 1, 255) ||
        !field(c, w, NPU_P_DW, "dw", 1, 255) || !field(c, w, NPU_P_PT, "pt", 0, 255) ||
        !field(c, w, NPU_P_PL, "pl", 0, 255) || !field(c, w, NPU_P_CS, "cs", 0, NPU_MAX_SRAM) ||
        !field(c, w, NPU_P_RS, "rs", 0, NPU_MAX_SRAM) ||
        !field(c, w, NPU_P_YCS, "ycs", 0, NPU_MAX_SRAM) ||
        !field(c, w, NPU_P_LIMH, "limh", 0, 1u << 25) ||
        !field(c, w, NPU_P_LIMW, "limw", 0, 1u << 25))
      return 0;
    taps = (uint64_t)w[NPU_P_KH] * w[NPU_P_KW];
    if (taps > 65535) return CFAIL(c, "command %u (VPOOL): window of %llu taps", c->i, (ull)taps);
    if (!signed_zp((int32_t)w[NPU_P_XZP]) || !signed_zp((int32_t)w[NPU_P_YZP]) ||
        !lohi_ok(w[NPU_P_LOHI], (fl & NPU_FL_YS8) != 0))
      return CFAIL(c, "command %u (VPOOL): zero point or clamp out of range", c->i);
    ext = (nch - 1) * w[NPU_P_CS] + ((uint64_t)w[NPU_P_HT] - 1) * w[NPU_P_RS] + w[NPU_P_WIDTH];
    if (!inside(c, w, NPU_SRAM_ACT, w[NPU_P_X], ext, "input tile")) return 0;
    add_range(r, nr, NPU_SRAM_ACT, 0, w[NPU_P_X], ext);
    if (!mul_le(w[NPU_P_NOY], w[NPU_P_OW], c->size[NPU_SRAM_ACT], &P))
      return CFAIL(c, "command %u (VPOOL): output rows larger than the activation SRAM", c->i);
    ext = (nch - 1) * w[NPU_P_YCS] + P;
    if (!inside(c, w, NPU_SRAM_ACT, w[NPU_P_Y], ext, "output tile")) return 0;
    add_range(r, nr, NPU_SRAM_ACT, 1, w[NPU_P_Y], ext);
    if (fl & NPU_FL_AVG) {
      uint64_t nq = w[NPU_P_NQ];
      if (nq < 1 || nq > 65536 || (!(fl & NPU_FL_ONEQ) && nq != taps + 1))
        return CFAIL(c, "command %u (VPOOL): %llu multipliers for %llu taps", c->i, (ull)nq,
                     (ull)taps);
      if (!inside(c, w, NPU_SRAM_W, w[NPU_P_PADDR], nq * NPU_POOLQ_BYTES, "multipliers")) return 0;
      add_range(r, nr, NPU_SRAM_W, 0, w[NPU_P_PADDR], nq * NPU_POOLQ_BYTES);
    }
    if (!mul_le(nch, P, (uint64_t)1 << 50, &t) || !mul_le(t, taps, (uint64_t)1 << 50, &K))
      return CFAIL(c, "command %u (VPOOL): too large", c->i);
    d->vector =
        npu_vector_cycles(p->lanes, K) + (fl & NPU_FL_AVG ? npu_vector_cycles(p->lanes, t) : 0);
    d->macs = 0;
    d->cycles = NPU_ISSUE_CYCLES + d->vector;
    return 1;
  }
  case NPU_OP_VADD: {
    uint64_t n = w[NPU_A_N];
    d->queue = NPU_Q_COMPUTE;
    if (!field(c, w, NPU_A_FLAGS, "flags", 0, NPU_FL_ADD_ALL) ||
        !field(c, w, NPU_A_N, "n", 1, NPU_MAX_SRAM))
      return 0;
    if (!signed_zp((int32_t)w[NPU_A_AZP]) || !signed_zp((int32_t)w[NPU_A_BZP]) ||
        !signed_zp((int32_t)w[NPU_A_YZP]) ||
        !lohi_ok(w[NPU_A_LOHI], (w[NPU_A_FLAGS] & NPU_FL_YS8) != 0))
      return CFAIL(c, "command %u (VADD): zero point or clamp out of range", c->i);
    if (!inside(c, w, NPU_SRAM_ACT, w[NPU_A_A], n, "a") ||
        !inside(c, w, NPU_SRAM_ACT, w[NPU_A_B], n, "b") ||
        !inside(c, w, NPU_SRAM_ACT, w[NPU_A_Y], n, "y"))
      return 0;
    if (w[NPU_A_Y] != w[NPU_A_A] && w[NPU_A_Y] != w[NPU_A_B] &&
        ((w[NPU_A_Y] < w[NPU_A_A] + n && w[NPU_A_A] < w[NPU_A_Y] + n) ||
         (w[NPU_A_Y] < w[NPU_A_B] + n && w[NPU_A_B] < w[NPU_A_Y] + n)))
      return CFAIL(c, "command %u (VADD): y overlaps an operand partly", c->i);
    add_range(r, nr, NPU_SRAM_ACT, 0, w[NPU_A_A], n);
    add_range(r, nr, NPU_SRAM_ACT, 0, w[NPU_A_B], n);
    add_range(r, nr, NPU_SRAM_ACT, 1, w[NPU_A_Y], n);
    d->vector = npu_vector_cycles(p->lanes, w[NPU_A_FLAGS] & NPU_FL_MUL ? n : 3 * n);
    d->cycles = NPU_ISSUE_CYCLES + d->vector;
    return 1;
  }
  case NPU_OP_VLUT: {
    uint64_t nch = w[NPU_L_NCH], cnt = w[NPU_L_CNT];
    d->queue = NPU_Q_COMPUTE;
    if (!field(c, w, NPU_L_FLAGS, "flags", 0, NPU_FL_LUT_ALL) ||
        !field(c, w, NPU_L_NCH, "nch", 1, CAP24) || !field(c, w, NPU_L_CNT, "cnt", 1, CAP24) ||
        !field(c, w, NPU_L_XCS, "xcs", 0, NPU_MAX_SRAM) ||
        !field(c, w, NPU_L_YCS, "ycs", 0, NPU_MAX_SRAM) ||
        !field(c, w, NPU_L_TCS, "tcs", 0, NPU_MAX_SRAM))
      return 0;
    ext = (nch - 1) * w[NPU_L_XCS] + cnt;
    if (!inside(c, w, NPU_SRAM_ACT, w[NPU_L_X], ext, "x")) return 0;
    add_range(r, nr, NPU_SRAM_ACT, 0, w[NPU_L_X], ext);
    ext = (nch - 1) * w[NPU_L_YCS] + cnt;
    if (!inside(c, w, NPU_SRAM_ACT, w[NPU_L_Y], ext, "y")) return 0;
    add_range(r, nr, NPU_SRAM_ACT, 1, w[NPU_L_Y], ext);
    ext = (nch - 1) * w[NPU_L_TCS] + 256;
    if (!inside(c, w, NPU_SRAM_W, w[NPU_L_T], ext, "tables")) return 0;
    add_range(r, nr, NPU_SRAM_W, 0, w[NPU_L_T], ext);
    t = nch * cnt;
    d->vector = npu_vector_cycles(p->lanes, t);
    d->cycles = NPU_ISSUE_CYCLES + d->vector;
    return 1;
  }
  }
  return CFAIL(c, "command %u: unknown opcode %u", c->i, w[0]);
}

/* The ordering check's state of one SRAM granule: the last command (1-based
 * position in its queue) of each queue that wrote or read it. */
typedef struct gran {
  uint32_t w[2], r[2];
} gran;

/* Runs the queues' synchronization once (each queue as far as it can, in
 * turn): refuses a deadlock, and a pair of commands of different queues
 * touching the same granule (one writing) that no semaphore orders. Also
 * counts each semaphore's SIGNALs, and each layer's SRAM extent. */
static int check_stream(npu_prog *p, const range *ranges, const uint32_t *roff, uint64_t *peak,
                        char *err, size_t errcap) {
  gran *g[NPU_NSRAMS] = {NULL, NULL, NULL};
  uint32_t ng[NPU_NSRAMS], pos[2] = {0, 0}, seen[2] = {0, 0}, s;
  uint32_t *fifo[NPU_MAX_SEMS], head[NPU_MAX_SEMS], tail[NPU_MAX_SEMS];
  uint64_t visits = 0;
  int ret = 1, i, progress;
  uint64_t(*ext)[2] = NULL; /* per layer: the largest transfer, the largest compute working set */
  static const char *const sn[] = {"weight", "activation", "accumulator"};
  memset(fifo, 0, sizeof fifo);
  memset(head, 0, sizeof head);
  memset(tail, 0, sizeof tail);
  ng[NPU_SRAM_W] = (p->wsram + NPU_GRANULE - 1) / NPU_GRANULE;
  ng[NPU_SRAM_ACT] = (p->asram + NPU_GRANULE - 1) / NPU_GRANULE;
  ng[NPU_SRAM_ACC] = (p->accsram + NPU_GRANULE - 1) / NPU_GRANULE;
  for (i = 0; i < NPU_NSRAMS; i++)
    if (!(g[i] = calloc(ng[i], sizeof *g[i]))) goto nomem;
  for (s = 0; s < p->nsems; s++)
    if (!(fifo[s] = calloc((size_t)p->ntok[s] + 1, sizeof *fifo[s]))) goto nomem;
  if (!(ext = calloc((size_t)p->nlayers + 1, sizeof *ext))) goto nomem;
  do {
    int q;
    progress = 0;
    for (q = 0; q < 2; q++)
      while (pos[q] < p->qn[q]) {
        uint32_t ci = p->qcmd[q][pos[q]], k;
        const npu_dcmd *d = &p->cmds[ci];
        if (d->w[0] == NPU_OP_WAIT) {
          uint32_t sem = d->w[NPU_S_SEM], other;
          if (head[sem] == tail[sem]) break; /* blocked */
          other = fifo[sem][head[sem]] >> 31;
          if (other != (uint32_t)q && (fifo[sem][head[sem]] & 0x7FFFFFFFu) > seen[q])
            seen[q] = fifo[sem][head[sem]] & 0x7FFFFFFFu;
          head[sem]++;
        } else if (d->w[0] == NPU_OP_SIGNAL) {
          /* the token carries the signaling queue and how many of its commands precede it */
          fifo[d->w[NPU_S_SEM]][tail[d->w[NPU_S_SEM]]++] = (uint32_t)q << 31 | pos[q];
        } else {
          uint64_t held = 0;
          for (k = roff[ci]; k < roff[ci + 1]; k++) /* the accumulators count once */
            if (!(ranges[k].sram == NPU_SRAM_ACC && !ranges[k].write))
              held += ranges[k].hi - ranges[k].lo;
          if (held > ext[d->layer][q]) ext[d->layer][q] = held;
          for (k = roff[ci]; k < roff[ci + 1]; k++) {
            const range *r = &ranges[k];
            uint64_t a, lo = r->lo / NPU_GRANULE, hi = (r->hi - 1) / NPU_GRANULE;
            int o = 1 - q;
            if (r->hi <= r->lo) continue;
            visits += hi - lo + 1;
            if (visits > ((uint64_t)1 << 28)) {
              npu_fail(err, errcap, "stream too large to check (%llu SRAM granules touched)",
                   (ull)visits);
              goto done;
            }
            for (a = lo; a <= hi; a++) {
              gran *e = &g[r->sram][a];
              uint32_t other = e->w[o] > seen[q]               ? e->w[o]
                               : r->write && e->r[o] > seen[q] ? e->r[o]
                                                               : 0;
              if (other) {
                npu_fail(err, errcap,
                     "command %u (%s) and the %s queue's command %u touch %s SRAM byte %llu with "
                     "no semaphore between them",
                     ci, op_names[d->w[0]], o == NPU_Q_DMA ? "DMA" : "compute",
                     p->qcmd[o][other - 1], sn[r->sram], (ull)(a * NPU_GRANULE));
                goto done;
              }
              if (r->write)
                e->w[q] = pos[q] + 1;
              else
                e->r[q] = pos[q] + 1;
            }
          }
        }
        pos[q]++;
        progress = 1;
      }
  } while (progress);
  if (pos[0] < p->qn[0] || pos[1] < p->qn[1]) {
    uint32_t q = pos[0] < p->qn[0] ? 0 : 1;
    npu_fail(err, errcap, "the stream deadlocks: command %u (WAIT) on the %s queue never gets a token",
         p->qcmd[q][pos[q]], q == NPU_Q_DMA ? "DMA" : "compute");
    goto done;
  }
  /* What a layer holds at once: its largest compute command's operands
   * plus the largest transfer that may fill the other half beside it. */
  for (i = 0; i < (int)p->nlayers; i++)
    peak[i] = ext[i][0] + ext[i][1];
  ret = 0;
  goto done;
nomem:
  npu_fail(err, errcap, "out of memory checking the blob");
done:
  for (i = 0; i < NPU_NSRAMS; i++)
    free(g[i]);
  for (s = 0; s < NPU_MAX_SEMS; s++)
    free(fifo[s]);
  free(ext);
  return ret;
}

static int finite_in(double v, double lo, double hi) { return isfinite(v) && v >= lo && v <= hi; }

int npu_prog_load(const unsigned char *blob, uint64_t size, npu_prog **out, char *err,
                  size_t errcap) {
  npu_prog *p = NULL;
  uint64_t pos, work = 0, names_len = 0, *peak = NULL;
  uint32_t i, version, maxk = 1, maxn = 1, nranges = 0;
  range *ranges = NULL;
  uint32_t *roff = NULL;
  size_t np = 0;
  int ret = 1;
  checker c;
  *out = NULL;
  if (!blob || size < NPU_HEADER_BYTES)
    return npu_fail(err, errcap, "blob of %llu bytes is truncated (header is %u)", (ull)size,
                NPU_HEADER_BYTES);
  if (memcmp(blob, NPU_BLOB_MAGIC, 4) != 0)
    return npu_fail(err, errcap, "not an npu-systolic blob (bad magic)");
  if ((version = npu_get_u32(blob + 4)) != NPU_BLOB_VERSION)
    return npu_fail(err, errcap, "blob version %u, this plugin reads %u", version, NPU_BLOB_VERSION);
  if (!(p = calloc(1, sizeof *p))) return npu_fail(err, errcap, "out of memory loading the blob");
  p->rows = npu_get_u32(blob + 8), p->cols = npu_get_u32(blob + 12);
  p->wsram = npu_get_u32(blob + 16), p->asram = npu_get_u32(blob + 20);
  p->accsram = npu_get_u32(blob + 24), p->lanes = npu_get_u32(blob + 28);
  p->dma_latency = npu_get_u32(blob + 32), p->nsems = npu_get_u32(blob + 36);
  p->clock_mhz = npu_get_f64(blob + 40), p->dram_bpc = npu_get_f64(blob + 48);
  p->pj_mac = npu_get_f64(blob + 56), p->pj_sram = npu_get_f64(blob + 64);
  p->pj_dram = npu_get_f64(blob + 72), p->idle_w = npu_get_f64(blob + 80);
  p->ninputs = npu_get_u32(blob + 88), p->noutputs = npu_get_u32(blob + 92);
  p->nlayers = npu_get_u32(blob + 96), p->ncmds = npu_get_u32(blob + 100);
  p->scratch_bytes = npu_get_u64(blob + 104), p->const_bytes = npu_get_u64(blob + 112);
  if (p->rows < 1 || p->rows > 256 || p->cols < 1 || p->cols > 256 || p->lanes < 1 ||
      p->lanes > 4096 || p->wsram < NPU_MIN_SRAM || p->wsram > NPU_MAX_SRAM ||
      p->asram < NPU_MIN_SRAM || p->asram > NPU_MAX_SRAM || p->accsram < NPU_MIN_SRAM ||
      p->accsram > NPU_MAX_SRAM || p->dma_latency > (1u << 20) || p->nsems > NPU_MAX_SEMS) {
    npu_fail(err, errcap,
         "machine out of range: array %ux%u, SRAMs %u/%u/%u, %u lanes, latency %u, %u semaphores",
         p->rows, p->cols, p->wsram, p->asram, p->accsram, p->lanes, p->dma_latency, p->nsems);
    goto done;
  }
  if (!finite_in(p->clock_mhz, 1e-3, 1e6) || !finite_in(p->dram_bpc, 1e-3, 1e6) ||
      !finite_in(p->pj_mac, -1e9, 1e9) || !finite_in(p->pj_sram, -1e9, 1e9) ||
      !finite_in(p->pj_dram, -1e9, 1e9) || !finite_in(p->idle_w, -1e9, 1e9)) {
    npu_fail(err, errcap, "machine figures out of range (clock, bandwidth or energy)");
    goto done;
  }
  if (npu_get_u64(blob + 120) || npu_get_u64(blob + 128)) {
    npu_fail(err, errcap, "reserved header fields are not 0");
    goto done;
  }
  if (p->ninputs > 4096 || p->noutputs > 4096 || p->nlayers > (1u << 20) ||
      p->ncmds > NPU_MAX_CMDS || p->scratch_bytes > NPU_MAX_SCRATCH ||
      p->const_bytes > NPU_MAX_REGION) {
    npu_fail(err, errcap, "counts out of range: %u inputs, %u outputs, %u layers, %u commands",
         p->ninputs, p->noutputs, p->nlayers, p->ncmds);
    goto done;
  }
  pos = NPU_HEADER_BYTES;
  /* each count against what the rest of the blob can hold, before allocating for it */
  if ((uint64_t)(p->ninputs + p->noutputs) * 8 > size - pos) {
    npu_fail(err, errcap, "blob truncated in the buffer sizes");
    goto done;
  }
  if (!(p->iosize = calloc((size_t)p->ninputs + p->noutputs + 1, sizeof *p->iosize))) goto nomem;
  for (i = 0; i < p->ninputs + p->noutputs; i++, pos += 8) {
    p->iosize[i] = npu_get_u64(blob + pos);
    if (p->iosize[i] > NPU_MAX_REGION) {
      npu_fail(err, errcap, "buffer %u of %llu bytes (4 GiB at most)", i, (ull)p->iosize[i]);
      goto done;
    }
  }
  if ((uint64_t)p->nlayers * 8 > size - pos) {
    npu_fail(err, errcap, "blob truncated in the layer table");
    goto done;
  }
  {
    uint64_t at = pos;
    for (i = 0; i < p->nlayers; i++) {
      uint32_t a, b;
      if (size - at < 8) {
        npu_fail(err, errcap, "blob truncated in layer %u", i);
        goto done;
      }
      a = npu_get_u32(blob + at), b = npu_get_u32(blob + at + 4);
      if (a > 255 || b > 255 || a + b > size - at - 8) {
        npu_fail(err, errcap, "layer %u: names of %u and %u bytes (blob truncated or corrupt)", i, a,
             b);
        goto done;
      }
      names_len += a + b + 2;
      at += 8 + a + b;
    }
    if (!(p->names = malloc((size_t)names_len + 1))) goto nomem;
    if (!(p->ctr = calloc((size_t)p->nlayers + 1, sizeof *p->ctr))) goto nomem;
    for (i = 0; i < p->nlayers; i++) {
      uint32_t a = npu_get_u32(blob + pos), b = npu_get_u32(blob + pos + 4);
      memcpy(p->names + np, blob + pos + 8, a);
      p->names[np + a] = 0;
      memcpy(p->names + np + a + 1, blob + pos + 8 + a, b);
      p->names[np + a + 1 + b] = 0;
      np += a + b + 2;
      pos += 8 + a + b;
    }
    np = 0;
    for (i = 0; i < p->nlayers; i++) {
      p->ctr[i].layer = p->names + np;
      np += strlen(p->names + np) + 1;
      p->ctr[i].op_type = p->names + np;
      np += strlen(p->names + np) + 1;
    }
  }
  if ((uint64_t)p->ncmds * NPU_CMD_BYTES > size - pos ||
      size - pos - (uint64_t)p->ncmds * NPU_CMD_BYTES != p->const_bytes) {
    npu_fail(err, errcap,
         "blob of %llu bytes: %llu after the layer table, expected %u commands and %llu bytes of "
         "constants",
         (ull)size, (ull)(size - pos), p->ncmds, (ull)p->const_bytes);
    goto done;
  }
  p->consts = blob + pos + (uint64_t)p->ncmds * NPU_CMD_BYTES;
  if (!(p->cmds = calloc((size_t)p->ncmds + 1, sizeof *p->cmds)) ||
      !(ranges = calloc((size_t)p->ncmds * 8 + 1, sizeof *ranges)) ||
      !(roff = calloc((size_t)p->ncmds + 2, sizeof *roff)) ||
      !(p->qcmd[0] = calloc((size_t)p->ncmds + 1, sizeof *p->qcmd[0])) ||
      !(p->qcmd[1] = calloc((size_t)p->ncmds + 1, sizeof *p->qcmd[1])))
    goto nomem;
  memset(&c, 0, sizeof c);
  c.p = p;
  c.size[NPU_SRAM_W] = p->wsram, c.size[NPU_SRAM_ACT] = p->asram, c.size[NPU_SRAM_ACC] = p->accsram;
  c.err = err, c.errcap = errcap;
  for (i = 0; i < p->ncmds; i++) {
    npu_dcmd *d = &p->cmds[i];
    unsigned k;
    int nr;
    for (k = 0; k < NPU_CMD_WORDS; k++)
      d->w[k] = npu_get_u32(blob + pos + (uint64_t)i * NPU_CMD_BYTES + 4 * k);
    c.i = i;
    roff[i] = nranges;
    if (!check_cmd(&c, d, ranges + nranges, &nr)) goto done;
    npu_sram_traffic(p->cols, d->w, &d->sram_rd, &d->sram_wr);
    nranges += (uint32_t)nr;
    work += d->macs + (d->vector ? d->vector * p->lanes : 0) + d->dram_rd + d->dram_wr;
    if (work > NPU_MAX_WORK) {
      npu_fail(err, errcap, "command %u: the stream's work passes %llu operations", i,
           (ull)NPU_MAX_WORK);
      goto done;
    }
    if (d->w[0] == NPU_OP_SIGNAL) p->ntok[d->w[NPU_S_SEM]]++;
    if (d->w[0] == NPU_OP_GEMM) {
      uint32_t K = d->w[NPU_G_KH] * d->w[NPU_G_KW] *
                   (d->w[NPU_G_FLAGS] & NPU_FL_DEPTHWISE ? 1u : d->w[NPU_G_KT]);
      if (K > maxk) maxk = K;
      if (d->w[NPU_G_NT] > maxn) maxn = d->w[NPU_G_NT];
    }
    p->qcmd[d->queue][p->qn[d->queue]++] = i;
  }
  roff[p->ncmds] = nranges;
  if (!(peak = calloc((size_t)p->nlayers + 1, sizeof *peak))) goto nomem;
  if (check_stream(p, ranges, roff, peak, err, errcap) != 0) goto done;
  /* everything run() needs */
  for (i = 0; i < NPU_NSRAMS; i++) {
    uint32_t sz = i == NPU_SRAM_W ? p->wsram : i == NPU_SRAM_ACT ? p->asram : p->accsram;
    if (!(p->sram[i] = calloc(sz, 1))) goto nomem;
  }
  /* Only the scratch the commands reach is kept (and zeroed by each run):
   * a blob that declares more than it uses costs no memory for it. */
  p->scratch_used = c.scratch_hi;
  if (!(p->scratch = calloc((size_t)p->scratch_used + 1, 1))) goto nomem;
  p->maxk = maxk, p->maxn = maxn;
  if (!(p->col = calloc(maxk, sizeof *p->col)) || !(p->sum = calloc(maxn, sizeof *p->sum)) ||
      !(p->bias = calloc(maxn, sizeof *p->bias)) || !(p->mult = calloc(maxn, sizeof *p->mult)) ||
      !(p->shift = calloc(maxn, sizeof *p->shift)) || !(p->wzp = calloc(maxn, sizeof *p->wzp)))
    goto nomem;
  for (i = 0; i < p->nsems; i++)
    if (!(p->tok[i] = calloc((size_t)p->ntok[i] + 1, sizeof *p->tok[i]))) goto nomem;
  if (!(p->first = calloc((size_t)p->nlayers + 1, sizeof *p->first)) ||
      !(p->last = calloc((size_t)p->nlayers + 1, sizeof *p->last)))
    goto nomem;
  for (i = 0; i < p->nlayers; i++) {
    p->ctr[i].peak_macs_per_cycle = (uint64_t)p->rows * p->cols;
    p->ctr[i].clock_mhz = p->clock_mhz;
    p->ctr[i].sram_peak_bytes = peak[i];
    p->ctr[i].energy_pj = 0;
  }
  *out = p;
  p = NULL;
  ret = 0;
  goto done;
nomem:
  npu_fail(err, errcap, "out of memory loading the blob");
done:
  free(ranges);
  free(roff);
  free(peak);
  npu_prog_free(p);
  return ret;
}
