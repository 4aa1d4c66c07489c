/* sim.c - the runtime side of the npu-systolic plugin: the device table
 * and the cycle-approximate simulator that runs a program blob.c loaded.
 * The two queues advance on their own clocks; the simulator always takes
 * the command that can start earliest (a WAIT starts when its token's
 * SIGNAL happened), computes its data with plain loops and advances its
 * queue by the command's modeled duration, worked out at load: no
 * per-cycle stepping. The data are those of moss's CPU kernels bit for
 * bit: int32 sums of (x - x_zp)(w - w_zp), requantization by moss's
 * multipliers with one rounding (docs/numerics-int8.md), the clamp. run()
 * allocates nothing. Also exports moss_plugin_abi_version(). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

typedef struct npu_device {
  unsigned loaded;
} npu_device;


/* ---- arithmetic, as moss_requant_apply ----------------------------------- */

static int32_t requant(int32_t acc, int32_t mult, int32_t shift) {
  int64_t p = (int64_t)acc * mult, fl, rem, half, s = 31 + (int64_t)shift;
  if (s <= 0) {
    fl = p;
  } else if (s >= 63) {
    return 0;
  } else {
    fl = p >= 0 ? p >> s : -((-p - 1) >> s) - 1;
    rem = p - fl * ((int64_t)1 << s);
    half = (int64_t)1 << (s - 1);
    if (rem > half || (rem == half && (fl & 1))) fl++;
  }
  if (fl > INT32_MAX) return INT32_MAX;
  if (fl < INT32_MIN) return INT32_MIN;
  return (int32_t)fl;
}

static inline int32_t wadd(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static inline int32_t rd8(const unsigned char *p, int s8) {
  return s8 ? (int32_t)(int8_t)*p : (int32_t)*p;
}
static inline unsigned char clampb(int32_t r, int32_t lo, int32_t hi) {
  return (unsigned char)(r < lo ? lo : r > hi ? hi : r);
}
static int32_t le32(const unsigned char *p) { return (int32_t)npu_get_u32(p); }

/* ---- the commands' data -------------------------------------------------- */

static void gemm(npu_prog *p, const uint32_t *w) {
  const unsigned char *A = p->sram[NPU_SRAM_ACT] + w[NPU_G_ACT];
  const unsigned char *Wt = p->sram[NPU_SRAM_W] + w[NPU_G_WADDR];
  const unsigned char *par = p->sram[NPU_SRAM_W] + w[NPU_G_PADDR];
  unsigned char *acc8 = p->sram[NPU_SRAM_ACC] + w[NPU_G_ACC];
  int32_t *acc = (int32_t *)(void *)acc8; /* 4-byte aligned: load() checked */
  uint32_t fl = w[NPU_G_FLAGS];
  int xs8 = (fl & NPU_FL_XS8) != 0, ws8 = (fl & NPU_FL_WS8) != 0, ys8 = (fl & NPU_FL_YS8) != 0;
  int accum = (fl & NPU_FL_ACCUM) != 0, anyzp = 0;
  int64_t kt = w[NPU_G_KT], nt = w[NPU_G_NT], kh = w[NPU_G_KH], kw = w[NPU_G_KW];
  int64_t sh = w[NPU_G_SH], sw = w[NPU_G_SW], dh = w[NPU_G_DH], dw = w[NPU_G_DW];
  int64_t pt = w[NPU_G_PT], pl = w[NPU_G_PL], iy0 = w[NPU_G_IY0], ht = w[NPU_G_HT];
  int64_t width = w[NPU_G_WIDTH], oy0 = w[NPU_G_OY0], noy = w[NPU_G_NOY], ow = w[NPU_G_OW];
  int64_t cs = w[NPU_G_CS], rs = w[NPU_G_RS], xs = w[NPU_G_XS], P = noy * ow;
  int32_t xzp = (int32_t)w[NPU_G_XZP];
  int32_t *wzp = p->wzp, *col = p->col;
  uint32_t *sum = p->sum;
  int64_t n, k, oy, ox, c, ky, kx, pix;
  for (n = 0; n < nt; n++) {
    wzp[n] = le32(par + NPU_PARAM_BYTES * n + 12);
    anyzp |= wzp[n] != 0;
  }
  if (fl & NPU_FL_DEPTHWISE) {
    int64_t taps = kh * kw;
    for (n = 0; n < nt; n++) {
      const unsigned char *An = A + n * cs;
      for (oy = oy0, pix = 0; oy < oy0 + noy; oy++)
        for (ox = 0; ox < ow; ox++, pix++) {
          uint32_t s = 0;
          for (ky = 0; ky < kh; ky++) {
            int64_t iy = oy * sh - pt + ky * dh;
            if (iy < iy0 || iy >= iy0 + ht) continue;
            for (kx = 0; kx < kw; kx++) {
              int64_t ix = ox * sw - pl + kx * dw;
              int32_t a, b;
              if (ix < 0 || ix >= width) continue;
              a = rd8(An + (iy - iy0) * rs + ix * xs, xs8) - xzp;
              b = rd8(Wt + (ky * kw + kx) * nt + n, ws8);
              s += (uint32_t)a * ((uint32_t)b - (uint32_t)wzp[n]); /* wraps as int32 */
            }
          }
          (void)taps;
          acc[n * P + pix] = accum ? wadd(acc[n * P + pix], (int32_t)s) : (int32_t)s;
        }
    }
  } else {
    int64_t K = kt * kh * kw;
    for (oy = oy0, pix = 0; oy < oy0 + noy; oy++)
      for (ox = 0; ox < ow; ox++, pix++) {
        /* the pixel's reduction vector, as the array's feeder streams it */
        for (c = 0, k = 0; c < kt; c++)
          for (ky = 0; ky < kh; ky++) {
            int64_t iy = oy * sh - pt + ky * dh;
            int rowin = iy >= iy0 && iy < iy0 + ht;
            for (kx = 0; kx < kw; kx++, k++) {
              int64_t ix = ox * sw - pl + kx * dw;
              col[k] = rowin && ix >= 0 && ix < width
                           ? rd8(A + c * cs + (iy - iy0) * rs + ix * xs, xs8) - xzp
                           : 0;
            }
          }
        memset(sum, 0, sizeof *sum * (size_t)nt);
        for (k = 0; k < K; k++) {
          int32_t a = col[k];
          const unsigned char *row = Wt + k * nt;
          if (!a) continue;
          if (anyzp) {
            for (n = 0; n < nt; n++)
              sum[n] += (uint32_t)a * ((uint32_t)rd8(row + n, ws8) - (uint32_t)wzp[n]);
          } else if (ws8) {
            const int8_t *r8 = (const int8_t *)row;
            for (n = 0; n < nt; n++)
              sum[n] += (uint32_t)(a * r8[n]);
          } else {
            for (n = 0; n < nt; n++)
              sum[n] += (uint32_t)(a * row[n]);
          }
        }
        if (accum)
          for (n = 0; n < nt; n++)
            acc[n * P + pix] = wadd(acc[n * P + pix], (int32_t)sum[n]);
        else
          for (n = 0; n < nt; n++)
            acc[n * P + pix] = (int32_t)sum[n];
      }
  }
  if (fl & NPU_FL_EPILOGUE) {
    unsigned char *out = p->sram[NPU_SRAM_ACT] + w[NPU_G_OUT];
    int64_t ocs = w[NPU_G_OCS], ops = w[NPU_G_OPS];
    int32_t yzp = (int32_t)w[NPU_G_YZP], lo = npu_lo(w[NPU_G_LOHI]), hi = npu_hi(w[NPU_G_LOHI]);
    (void)ys8; /* lo and hi lie within the output type: load() checked */
    for (n = 0; n < nt; n++) {
      int32_t bias = le32(par + NPU_PARAM_BYTES * n), mult = le32(par + NPU_PARAM_BYTES * n + 4);
      int32_t shift = le32(par + NPU_PARAM_BYTES * n + 8);
      for (pix = 0; pix < P; pix++) {
        int32_t r = requant(wadd(acc[n * P + pix], bias), mult, shift);
        out[n * ocs + pix * ops] = clampb(wadd(yzp, r), lo, hi);
      }
    }
  }
}

static void pool(npu_prog *p, const uint32_t *w) {
  const unsigned char *X = p->sram[NPU_SRAM_ACT] + w[NPU_P_X];
  const unsigned char *q = p->sram[NPU_SRAM_W] + w[NPU_P_PADDR];
  unsigned char *Y = p->sram[NPU_SRAM_ACT] + w[NPU_P_Y];
  uint32_t fl = w[NPU_P_FLAGS];
  int xs8 = (fl & NPU_FL_XS8) != 0, avg = (fl & NPU_FL_AVG) != 0, inc = (fl & NPU_FL_INCPAD) != 0;
  int oneq = (fl & NPU_FL_ONEQ) != 0;
  int64_t nch = w[NPU_P_NCH], cs = w[NPU_P_CS], rs = w[NPU_P_RS], iy0 = w[NPU_P_IY0];
  int64_t ht = w[NPU_P_HT], width = w[NPU_P_WIDTH], kh = w[NPU_P_KH], kw = w[NPU_P_KW];
  int64_t sh = w[NPU_P_SH], sw = w[NPU_P_SW], dh = w[NPU_P_DH], dw = w[NPU_P_DW];
  int64_t pt = w[NPU_P_PT], pl = w[NPU_P_PL], oy0 = w[NPU_P_OY0], noy = w[NPU_P_NOY];
  int64_t ow = w[NPU_P_OW], ycs = w[NPU_P_YCS], limh = w[NPU_P_LIMH], limw = w[NPU_P_LIMW];
  int64_t nq = w[NPU_P_NQ], ch, oy, ox, ky, kx;
  int32_t xzp = (int32_t)w[NPU_P_XZP], yzp = (int32_t)w[NPU_P_YZP];
  int32_t lo = npu_lo(w[NPU_P_LOHI]), hi = npu_hi(w[NPU_P_LOHI]);
  for (ch = 0; ch < nch; ch++) {
    const unsigned char *Xc = X + ch * cs;
    unsigned char *Yc = Y + ch * ycs;
    for (oy = oy0; oy < oy0 + noy; oy++)
      for (ox = 0; ox < ow; ox++) {
        int64_t sy = oy * sh - pt, sx = ox * sw - pl, cnt = 0;
        int32_t m = xs8 ? -128 : 0;
        uint32_t s = 0;
        for (ky = 0; ky < kh; ky++) {
          int64_t iy = sy + ky * dh;
          if (iy < iy0 || iy >= iy0 + ht) continue;
          for (kx = 0; kx < kw; kx++) {
            int64_t ix = sx + kx * dw;
            int32_t v;
            if (ix < 0 || ix >= width) continue;
            v = rd8(Xc + (iy - iy0) * rs + ix, xs8);
            if (avg) {
              s += (uint32_t)(v - xzp);
              cnt++;
            } else if (v > m) {
              m = v;
            }
          }
        }
        if (avg) {
          int64_t qi;
          int32_t r;
          if (inc) { /* taps inside the padded input, as moss counts them */
            int64_t cy = 0, cx = 0;
            for (ky = 0; ky < kh; ky++)
              cy += sy + ky * dh < limh;
            for (kx = 0; kx < kw; kx++)
              cx += sx + kx * dw < limw;
            cnt = cy * cx;
          }
          qi = oneq ? 0 : cnt < nq ? cnt : nq - 1;
          r = requant((int32_t)s, le32(q + NPU_POOLQ_BYTES * qi),
                      le32(q + NPU_POOLQ_BYTES * qi + 4));
          Yc[(oy - oy0) * ow + ox] = clampb(wadd(yzp, r), lo, hi);
        } else {
          Yc[(oy - oy0) * ow + ox] = (unsigned char)m;
        }
      }
  }
}

static void vadd(npu_prog *p, const uint32_t *w) {
  const unsigned char *A = p->sram[NPU_SRAM_ACT] + w[NPU_A_A],
                      *B = p->sram[NPU_SRAM_ACT] + w[NPU_A_B];
  unsigned char *Y = p->sram[NPU_SRAM_ACT] + w[NPU_A_Y];
  uint32_t fl = w[NPU_A_FLAGS], i, n = w[NPU_A_N];
  int as8 = (fl & NPU_FL_XS8) != 0, bs8 = (fl & NPU_FL_BS8) != 0;
  int32_t azp = (int32_t)w[NPU_A_AZP], bzp = (int32_t)w[NPU_A_BZP], yzp = (int32_t)w[NPU_A_YZP];
  int32_t m0 = (int32_t)w[NPU_A_M0], s0 = (int32_t)w[NPU_A_S0], m1 = (int32_t)w[NPU_A_M1];
  int32_t s1 = (int32_t)w[NPU_A_S1], m2 = (int32_t)w[NPU_A_M2], s2 = (int32_t)w[NPU_A_S2];
  int32_t lo = npu_lo(w[NPU_A_LOHI]), hi = npu_hi(w[NPU_A_LOHI]);
  if (fl & NPU_FL_MUL) {
    for (i = 0; i < n; i++) {
      int32_t a = rd8(A + i, as8) - azp, b = rd8(B + i, bs8) - bzp;
      Y[i] = clampb(wadd(yzp, requant(a * b, m2, s2)), lo, hi);
    }
    return;
  }
  for (i = 0; i < n; i++) {
    int32_t a = requant((rd8(A + i, as8) - azp) * 1048576, m0, s0);
    int32_t b = requant((rd8(B + i, bs8) - bzp) * 1048576, m1, s1);
    Y[i] = clampb(wadd(yzp, requant(wadd(a, b), m2, s2)), lo, hi);
  }
}

static void vlut(npu_prog *p, const uint32_t *w) {
  const unsigned char *X = p->sram[NPU_SRAM_ACT] + w[NPU_L_X],
                      *T = p->sram[NPU_SRAM_W] + w[NPU_L_T];
  unsigned char *Y = p->sram[NPU_SRAM_ACT] + w[NPU_L_Y];
  uint32_t nch = w[NPU_L_NCH], cnt = w[NPU_L_CNT], ch, i;
  unsigned flip = w[NPU_L_FLAGS] & NPU_FL_XS8 ? 128u : 0u;
  for (ch = 0; ch < nch; ch++) {
    const unsigned char *x = X + (uint64_t)ch * w[NPU_L_XCS], *t = T + (uint64_t)ch * w[NPU_L_TCS];
    unsigned char *y = Y + (uint64_t)ch * w[NPU_L_YCS];
    for (i = 0; i < cnt; i++)
      y[i] = t[(unsigned char)(x[i] ^ flip)];
  }
}

/* The DRAM region |r| for this run. */
static unsigned char *region(npu_prog *p, uint32_t r, const void *const *inputs,
                             void *const *outputs) {
  if (r == NPU_REGION_CONST) return (unsigned char *)(uintptr_t)p->consts;
  if (r == NPU_REGION_SCRATCH) return p->scratch;
  r -= NPU_REGION_IO;
  if (r < p->ninputs) return (unsigned char *)(uintptr_t)inputs[r];
  return outputs[r - p->ninputs];
}

static void dma(npu_prog *p, const uint32_t *w, const void *const *inputs, void *const *outputs) {
  unsigned char *d = region(p, w[NPU_D_REGION], inputs, outputs) + w[NPU_D_OFF];
  unsigned char *s = p->sram[w[NPU_D_SRAM]] + w[NPU_D_ADDR];
  uint64_t r, rows = w[NPU_D_ROWS], rb = w[NPU_D_RBYTES];
  for (r = 0; r < rows; r++) {
    if (w[0] == NPU_OP_LOAD)
      memcpy(s + r * w[NPU_D_SSTRIDE], d + r * w[NPU_D_DSTRIDE], (size_t)rb);
    else
      memcpy(d + r * w[NPU_D_DSTRIDE], s + r * w[NPU_D_SSTRIDE], (size_t)rb);
  }
}

/* ---- the device ------------------------------------------------------------ */

static int npu_open(void **dev, char *err, size_t errcap) {
  npu_device *d = calloc(1, sizeof *d);
  *dev = d;
  if (!d) return npu_fail(err, errcap, "out of memory opening the device");
  return 0;
}

static void npu_close(void *dev) { free(dev); }

static int npu_load(void *dev, const void *blob, uint64_t nbytes, void **prog, char *err,
                    size_t errcap) {
  npu_device *d = dev;
  npu_prog *p;
  *prog = NULL;
  if (!blob) return npu_fail(err, errcap, "no blob");
  if (npu_prog_load(blob, nbytes, &p, err, errcap) != 0) return 1;
  if (d) d->loaded++;
  *prog = p;
  return 0;
}

static void npu_unload(void *dev, void *prog) {
  npu_device *d = dev;
  if (d && prog) d->loaded--;
  npu_prog_free(prog);
}

static int npu_run(void *dev, void *prog, const void *const *inputs, void *const *outputs,
                   char *err, size_t errcap) {
  npu_prog *p = prog;
  uint64_t t[2] = {0, 0};
  uint32_t pos[2] = {0, 0}, head[NPU_MAX_SEMS], tail[NPU_MAX_SEMS], i;
  (void)dev;
  if (!p) return npu_fail(err, errcap, "no program");
  for (i = 0; i < p->ninputs; i++)
    if (!inputs || !inputs[i]) return npu_fail(err, errcap, "input %u is NULL", i);
  for (i = 0; i < p->noutputs; i++)
    if (!outputs || !outputs[i]) return npu_fail(err, errcap, "output %u is NULL", i);
  memset(head, 0, sizeof head);
  memset(tail, 0, sizeof tail);
  for (i = 0; i < NPU_NSRAMS; i++)
    memset(p->sram[i], 0, i == NPU_SRAM_W ? p->wsram : i == NPU_SRAM_ACT ? p->asram : p->accsram);
  memset(p->scratch, 0, (size_t)p->scratch_used);
  for (i = 0; i < p->nlayers; i++) {
    moss_plugin_counters *c = &p->ctr[i];
    c->cycles = c->dma_cycles = c->array_cycles = c->vector_cycles = c->stall_cycles = 0;
    c->macs = c->dram_read_bytes = c->dram_write_bytes = c->sram_read_bytes = c->sram_write_bytes =
        0;
    c->energy_pj = 0;
    p->first[i] = UINT64_MAX;
    p->last[i] = 0;
  }
  while (pos[0] < p->qn[0] || pos[1] < p->qn[1]) {
    int q, pick = -1;
    uint64_t best = 0;
    const npu_dcmd *d;
    moss_plugin_counters *c;
    for (q = 0; q < 2; q++) {
      uint64_t st;
      if (pos[q] >= p->qn[q]) continue;
      d = &p->cmds[p->qcmd[q][pos[q]]];
      st = t[q];
      if (d->w[0] == NPU_OP_WAIT) {
        uint32_t s = d->w[NPU_S_SEM];
        if (head[s] == tail[s]) continue;
        if (p->tok[s][head[s]] > st) st = p->tok[s][head[s]];
      }
      if (pick < 0 || st < best) pick = q, best = st;
    }
    if (pick < 0) return npu_fail(err, errcap, "the stream deadlocked"); /* load() rules it out */
    q = pick;
    d = &p->cmds[p->qcmd[q][pos[q]]];
    c = &p->ctr[d->layer];
    switch (d->w[0]) {
    case NPU_OP_WAIT:
      c->stall_cycles += best - t[q];
      t[q] = best;
      head[d->w[NPU_S_SEM]]++;
      break;
    case NPU_OP_SIGNAL: p->tok[d->w[NPU_S_SEM]][tail[d->w[NPU_S_SEM]]++] = t[q]; break;
    default:
      switch (d->w[0]) {
      case NPU_OP_LOAD:
      case NPU_OP_STORE: dma(p, d->w, inputs, outputs); break;
      case NPU_OP_GEMM: gemm(p, d->w); break;
      case NPU_OP_VPOOL: pool(p, d->w); break;
      case NPU_OP_VADD: vadd(p, d->w); break;
      case NPU_OP_VLUT: vlut(p, d->w); break;
      }
      if (t[q] < p->first[d->layer]) p->first[d->layer] = t[q];
      t[q] += d->cycles;
      if (t[q] > p->last[d->layer]) p->last[d->layer] = t[q];
      if (q == NPU_Q_DMA) c->dma_cycles += d->cycles;
      c->array_cycles += d->array;
      c->vector_cycles += d->vector;
      c->macs += d->macs;
      c->dram_read_bytes += d->dram_rd;
      c->dram_write_bytes += d->dram_wr;
      c->sram_read_bytes += d->sram_rd;
      c->sram_write_bytes += d->sram_wr;
    }
    pos[q]++;
  }
  p->total_cycles = t[0] > t[1] ? t[0] : t[1];
  for (i = 0; i < p->nlayers; i++) {
    moss_plugin_counters *c = &p->ctr[i];
    c->cycles = p->first[i] <= p->last[i] ? p->last[i] - p->first[i] : 0;
    if (p->pj_mac < 0 || p->pj_sram < 0 || p->pj_dram < 0 || p->idle_w < 0)
      c->energy_pj = -1;
    else
      c->energy_pj = (double)c->macs * p->pj_mac +
                     (double)(c->sram_read_bytes + c->sram_write_bytes) * p->pj_sram +
                     (double)(c->dram_read_bytes + c->dram_write_bytes) * p->pj_dram +
                     p->idle_w * (double)c->cycles / (p->clock_mhz * 1e6) * 1e12;
  }
  return 0;
}

static int npu_counters(void *dev, void *prog, const moss_plugin_counters **out, uint32_t *out_n,
                        char *err, size_t errcap) {
  npu_prog *p = prog;
  (void)dev;
  if (out) *out = NULL;
  if (out_n) *out_n = 0;
  if (!p || !out || !out_n) return npu_fail(err, errcap, "no program");
  *out = p->ctr;
  *out_n = p->nlayers;
  return 0;
}

static const moss_plugin_device device = {
    MOSS_PLUGIN_ABI_VERSION,
    sizeof(moss_plugin_device),
    "npu-systolic",
    npu_open,
    npu_load,
    npu_run,
    npu_unload,
    npu_close,
    npu_counters,
};

MOSS_PLUGIN_EXPORT uint32_t moss_plugin_abi_version(void) { return MOSS_PLUGIN_ABI_VERSION; }

MOSS_PLUGIN_EXPORT const moss_plugin_device *moss_plugin_device_get(void) { return &device; }
