/* tile.c - from layers to the command stream (README.md "Lowering"): each
 * layer is cut into tiles that fit the SRAMs, the tiling chosen by a cost
 * model that runs the tile loop dry and counts DRAM bytes (then cycles);
 * tiles stream through rings of buffers in each SRAM, one half filling
 * while the other computes, and what a ring still holds is reused (a
 * weight tile kept for every band, an input band for every block of output
 * channels). Every command records which SRAM granules it touches; before
 * a command that touches a granule the other queue touched, the builder
 * puts a SIGNAL after that command and a WAIT before this one, so the DMA
 * queue runs ahead of the compute queue exactly as far as the buffers
 * allow. compile.c writes what this builds into the blob. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npu.h"

#define G NPU_GRANULE
#define NCACHE 128

enum { R_W, R_P, R_IN, R_OUT, NRINGS };
enum { K_ACT, K_WT, K_PAR, K_TAB, K_X };

typedef struct key {
  int32_t layer, kind, a, b, c;
} key;

typedef struct cached {
  key k;
  int ring;
  uint32_t addr, len;
} cached;

/* A ring: two halves, each filled from its start; a buffer that does not
 * fit in the current half starts the other one, which then forgets what it
 * held. */
typedef struct ring {
  int sram;
  uint32_t base, half, head;
  int cur;
} ring;

typedef struct state {
  ring r[NRINGS];
  cached c[NCACHE];
  int nc;
} state;

typedef struct stats {
  uint64_t dram, sram, dma, comp, cmds, ccmds; /* ccmds: commands on the compute queue */
} stats;

/* The cycles of a dry run's two queues run side by side: with n compute
 * commands double-buffered against their transfers, the longer queue's
 * total plus one stage of the shorter one, the pipeline's fill and drain
 * (n equal stages of d and c cycles take n max(d, c) + min(d, c)). One
 * compute command: nothing overlaps, d + c. */
static double pipelined(const stats *s) {
  double d = (double)s->dma, c = (double)s->comp, n = s->ccmds ? (double)s->ccmds : 1.0;
  return (d > c ? d : c) + (d < c ? d : c) / n;
}

struct npu_builder {
  npu_cfg cfg;
  state st;
  int dry;
  stats s;
  uint32_t (*cmd)[NPU_CMD_WORDS];
  unsigned char *sig;
  size_t n, cap;
  int64_t *last[NPU_NSRAMS][2];
  uint32_t ngran[NPU_NSRAMS];
  int64_t synced[2];
  unsigned char *consts;
  size_t nconst, ccap;
  int failed;
  int layer;
  /* STOREs held back until the next tile's LOADs are queued (npu_flush) */
  uint32_t pend[4][NPU_CMD_WORDS];
  int npend;
};

typedef struct access {
  int sram;
  uint64_t lo, hi;
} access;

static uint32_t align_dn(uint32_t v, uint32_t a) { return v / a * a; }
static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

static void rings_init(const npu_cfg *c, ring *r) {
  uint32_t pw = align_dn(c->wsram / 8, 2 * G), ww = align_dn(c->wsram - pw, 2 * G);
  uint32_t ah = align_dn(c->asram / 2, 2 * G);
  memset(r, 0, sizeof *r * NRINGS);
  r[R_W].sram = NPU_SRAM_W, r[R_W].base = 0, r[R_W].half = ww / 2;
  r[R_P].sram = NPU_SRAM_W, r[R_P].base = ww, r[R_P].half = pw / 2;
  r[R_IN].sram = NPU_SRAM_ACT, r[R_IN].base = 0, r[R_IN].half = ah / 2;
  r[R_OUT].sram = NPU_SRAM_ACT, r[R_OUT].base = ah, r[R_OUT].half = ah / 2;
}

/* The largest buffer of each ring: half of it. */
static uint64_t cap_of(const npu_cfg *c, int ring_id) {
  ring r[NRINGS];
  rings_init(c, r);
  return r[ring_id].half;
}

npu_builder *npu_builder_create(const npu_cfg *cfg) {
  npu_builder *b = calloc(1, sizeof *b);
  uint32_t sizes[NPU_NSRAMS];
  int s, q;
  if (!b) return NULL;
  b->cfg = *cfg;
  rings_init(cfg, b->st.r);
  sizes[NPU_SRAM_W] = cfg->wsram, sizes[NPU_SRAM_ACT] = cfg->asram;
  sizes[NPU_SRAM_ACC] = cfg->accsram;
  for (s = 0; s < NPU_NSRAMS; s++) {
    b->ngran[s] = (uint32_t)align_up(sizes[s], G) / G;
    for (q = 0; q < 2; q++) {
      uint32_t g;
      if (!(b->last[s][q] = malloc(sizeof(int64_t) * b->ngran[s]))) {
        npu_builder_destroy(b);
        return NULL;
      }
      for (g = 0; g < b->ngran[s]; g++)
        b->last[s][q][g] = -1;
    }
  }
  b->synced[0] = b->synced[1] = -1;
  return b;
}

void npu_builder_destroy(npu_builder *b) {
  int s, q;
  if (!b) return;
  for (s = 0; s < NPU_NSRAMS; s++)
    for (q = 0; q < 2; q++)
      free(b->last[s][q]);
  free(b->cmd);
  free(b->sig);
  free(b->consts);
  free(b);
}

int npu_builder_failed(const npu_builder *b) { return b->failed; }

int npu_const_add(npu_builder *b, const void *data, size_t n, uint64_t *out) {
  size_t at = align_up(b->nconst, 16);
  *out = 0;
  if (b->failed) return 1;
  if (at + n > b->ccap) {
    size_t cap = b->ccap ? b->ccap : 65536;
    unsigned char *p;
    while (cap < at + n)
      cap *= 2;
    if (!(p = realloc(b->consts, cap))) {
      b->failed = 1;
      return 1;
    }
    b->consts = p;
    b->ccap = cap;
  }
  memset(b->consts + b->nconst, 0, at - b->nconst);
  if (n) memcpy(b->consts + at, data, n);
  b->nconst = at + n;
  *out = at;
  return 0;
}

const unsigned char *npu_builder_consts(const npu_builder *b, size_t *out_n) {
  *out_n = b->nconst;
  return b->consts;
}

static int queue_of(const uint32_t *w) {
  if (w[0] == NPU_OP_SIGNAL || w[0] == NPU_OP_WAIT) return (int)w[NPU_S_QUEUE];
  return w[0] == NPU_OP_LOAD || w[0] == NPU_OP_STORE ? NPU_Q_DMA : NPU_Q_COMPUTE;
}

size_t npu_builder_ncmds(const npu_builder *b) {
  size_t i, n = b->n;
  for (i = 0; i < b->n; i++)
    n += b->sig[i];
  return n;
}

/* Semaphore 0 carries the DMA queue's tokens to the compute queue,
 * semaphore 1 the compute queue's to the DMA queue. */
uint32_t npu_builder_nsems(const npu_builder *b) {
  (void)b;
  return 2;
}

void npu_builder_emit_cmds(const npu_builder *b, unsigned char *out) {
  size_t i;
  unsigned k;
  for (i = 0; i < b->n; i++) {
    for (k = 0; k < NPU_CMD_WORDS; k++)
      npu_put_u32(out + 4 * k, b->cmd[i][k]);
    out += NPU_CMD_BYTES;
    if (b->sig[i]) {
      uint32_t s[NPU_CMD_WORDS];
      int q = queue_of(b->cmd[i]);
      memset(s, 0, sizeof s);
      s[NPU_F_OP] = NPU_OP_SIGNAL;
      s[NPU_F_LAYER] = b->cmd[i][NPU_F_LAYER];
      s[NPU_S_QUEUE] = (uint32_t)q;
      s[NPU_S_SEM] = q == NPU_Q_DMA ? 0u : 1u;
      for (k = 0; k < NPU_CMD_WORDS; k++)
        npu_put_u32(out + 4 * k, s[k]);
      out += NPU_CMD_BYTES;
    }
  }
}

/* The modeled cycles of a command, as the simulator counts them. */
static uint64_t cost(const npu_cfg *c, const uint32_t *w) {
  uint64_t P, taps;
  switch (w[0]) {
  case NPU_OP_LOAD:
  case NPU_OP_STORE:
    return npu_dma_cycles(c->dma_latency, c->dram_bpc, (uint64_t)w[NPU_D_ROWS] * w[NPU_D_RBYTES]);
  case NPU_OP_GEMM:
    P = (uint64_t)w[NPU_G_NOY] * w[NPU_G_OW];
    taps = (uint64_t)w[NPU_G_KH] * w[NPU_G_KW] *
           (w[NPU_G_FLAGS] & NPU_FL_DEPTHWISE ? 1u : w[NPU_G_KT]);
    return NPU_ISSUE_CYCLES + npu_gemm_cycles(c->rows, c->cols, taps, w[NPU_G_NT], P) +
           (w[NPU_G_FLAGS] & NPU_FL_EPILOGUE ? npu_vector_cycles(c->lanes, w[NPU_G_NT] * P) : 0);
  case NPU_OP_VPOOL:
    P = (uint64_t)w[NPU_P_NOY] * w[NPU_P_OW] * w[NPU_P_NCH];
    return NPU_ISSUE_CYCLES + npu_vector_cycles(c->lanes, P * w[NPU_P_KH] * w[NPU_P_KW]) +
           (w[NPU_P_FLAGS] & NPU_FL_AVG ? npu_vector_cycles(c->lanes, P) : 0);
  case NPU_OP_VADD:
    return NPU_ISSUE_CYCLES +
           npu_vector_cycles(c->lanes, (w[NPU_A_FLAGS] & NPU_FL_MUL ? 1ull : 3ull) * w[NPU_A_N]);
  case NPU_OP_VLUT:
    return NPU_ISSUE_CYCLES + npu_vector_cycles(c->lanes, (uint64_t)w[NPU_L_NCH] * w[NPU_L_CNT]);
  }
  return 0;
}

static int grow(npu_builder *b) {
  size_t cap = b->cap ? 2 * b->cap : 1024;
  uint32_t(*c)[NPU_CMD_WORDS];
  unsigned char *s;
  if (!(c = realloc(b->cmd, cap * sizeof *c))) return 0;
  b->cmd = c;
  if (!(s = realloc(b->sig, cap))) return 0;
  b->sig = s;
  b->cap = cap;
  return 1;
}

static size_t append(npu_builder *b, const uint32_t *w) {
  if (b->n == b->cap && !grow(b)) {
    b->failed = 1;
    return (size_t)-1;
  }
  memcpy(b->cmd[b->n], w, sizeof b->cmd[0]);
  b->sig[b->n] = 0;
  return b->n++;
}

/* Appends command |w| touching |a| (|na| ranges), after a WAIT for the
 * last command of the other queue that touched the same granules. */
static void push(npu_builder *b, uint32_t *w, const access *a, int na) {
  int q = queue_of(w), o = 1 - q, i;
  int64_t need = -1;
  size_t at;
  w[NPU_F_LAYER] = (uint32_t)b->layer;
  if (b->dry) {
    uint64_t c = cost(&b->cfg, w);
    b->s.cmds++;
    if (q == NPU_Q_DMA) {
      b->s.dma += c;
      b->s.dram += (uint64_t)w[NPU_D_ROWS] * w[NPU_D_RBYTES];
    } else {
      b->s.comp += c;
      b->s.ccmds++;
    }
    {
      uint64_t rd, wr;
      npu_sram_traffic(b->cfg.cols, w, &rd, &wr);
      b->s.sram += rd + wr;
    }
    return;
  }
  if (b->failed) return;
  for (i = 0; i < na; i++) {
    uint64_t g;
    if (a[i].hi <= a[i].lo) continue;
    for (g = a[i].lo / G; g <= (a[i].hi - 1) / G && g < b->ngran[a[i].sram]; g++)
      if (b->last[a[i].sram][o][g] > need) need = b->last[a[i].sram][o][g];
  }
  if (need > b->synced[q]) {
    uint32_t wt[NPU_CMD_WORDS];
    memset(wt, 0, sizeof wt);
    wt[NPU_F_OP] = NPU_OP_WAIT;
    wt[NPU_F_LAYER] = (uint32_t)b->layer;
    wt[NPU_S_QUEUE] = (uint32_t)q;
    wt[NPU_S_SEM] = o == NPU_Q_DMA ? 0u : 1u;
    b->sig[need] = 1;
    if (append(b, wt) == (size_t)-1) return;
    b->synced[q] = need;
  }
  if ((at = append(b, w)) == (size_t)-1) return;
  for (i = 0; i < na; i++) {
    uint64_t g;
    if (a[i].hi <= a[i].lo) continue;
    for (g = a[i].lo / G; g <= (a[i].hi - 1) / G && g < b->ngran[a[i].sram]; g++)
      b->last[a[i].sram][q][g] = (int64_t)at;
  }
}

/* ---- rings and what they hold --------------------------------------------- */

static int key_eq(key a, key b) {
  return a.layer == b.layer && a.kind == b.kind && a.a == b.a && a.b == b.b && a.c == b.c;
}

static key mk(int layer, int kind, int64_t a, int64_t bb, int64_t c) {
  key k;
  k.layer = layer, k.kind = kind, k.a = (int32_t)a, k.b = (int32_t)bb, k.c = (int32_t)c;
  return k;
}

static void evict(state *st, int rid, uint32_t lo, uint32_t hi) {
  int i, j = 0;
  for (i = 0; i < st->nc; i++) {
    const cached *c = &st->c[i];
    if (c->ring == rid && c->addr < hi && lo < c->addr + c->len) continue;
    st->c[j++] = *c;
  }
  st->nc = j;
}

/* A new buffer of |len| bytes in ring |rid| (len <= the ring's half). */
static uint32_t alloc(npu_builder *b, int rid, uint64_t len) {
  ring *r = &b->st.r[rid];
  uint32_t addr, l = (uint32_t)align_up(len ? len : 1, G);
  if (len > r->half) {
    b->failed = 1; /* the tiler keeps buffers within a half */
    return r->base;
  }
  if (r->head + l > r->half) {
    r->cur ^= 1;
    r->head = 0;
    evict(&b->st, rid, r->base + (uint32_t)r->cur * r->half,
          r->base + ((uint32_t)r->cur + 1) * r->half);
  }
  addr = r->base + (uint32_t)r->cur * r->half + r->head;
  r->head += l;
  evict(&b->st, rid, addr, addr + l);
  return addr;
}

static void remember(npu_builder *b, key k, int rid, uint32_t addr, uint64_t len) {
  state *st = &b->st;
  if (st->nc == NCACHE) {
    memmove(st->c, st->c + 1, sizeof st->c[0] * (NCACHE - 1));
    st->nc--;
  }
  st->c[st->nc].k = k;
  st->c[st->nc].ring = rid;
  st->c[st->nc].addr = addr;
  st->c[st->nc].len = (uint32_t)len;
  st->nc++;
}

static access dma_range(const uint32_t *w) {
  access a;
  a.sram = (int)w[NPU_D_SRAM];
  a.lo = w[NPU_D_ADDR];
  a.hi = a.lo + ((uint64_t)w[NPU_D_ROWS] - 1) * w[NPU_D_SSTRIDE] + w[NPU_D_RBYTES];
  return a;
}

static void push_dma(npu_builder *b, uint32_t *w) {
  access a = dma_range(w);
  push(b, w, &a, 1);
}

/* Queues the STOREs held back. A tile's STORE waits for its compute, and
 * the DMA queue runs in order, so issuing it at once would hold the next
 * tile's LOADs behind that compute; it goes after them instead. Every
 * layer ends with a flush, so its STOREs precede the next layer's LOADs. */
static void flush(npu_builder *b) {
  int i;
  for (i = 0; i < b->npend; i++)
    push_dma(b, b->pend[i]);
  b->npend = 0;
}

static void dma(npu_builder *b, uint32_t op, int sram, uint32_t addr, npu_loc at, uint64_t rows,
                uint64_t rbytes, uint64_t dstride, uint64_t sstride) {
  uint32_t w[NPU_CMD_WORDS];
  memset(w, 0, sizeof w);
  w[NPU_F_OP] = op;
  w[NPU_D_SRAM] = (uint32_t)sram;
  w[NPU_D_ADDR] = addr;
  w[NPU_D_REGION] = at.region;
  w[NPU_D_OFF] = (uint32_t)at.off;
  w[NPU_D_ROWS] = (uint32_t)rows;
  w[NPU_D_RBYTES] = (uint32_t)rbytes;
  w[NPU_D_DSTRIDE] = (uint32_t)dstride;
  w[NPU_D_SSTRIDE] = (uint32_t)sstride;
  if (op == NPU_OP_STORE) {
    if (b->npend == 4) flush(b);
    memcpy(b->pend[b->npend++], w, sizeof w);
    return;
  }
  { /* a LOAD never overtakes the STORE of the bytes it overwrites */
    access a = dma_range(w);
    int i;
    for (i = 0; i < b->npend; i++) {
      access s = dma_range(b->pend[i]);
      if (s.sram == a.sram && s.lo < a.hi && a.lo < s.hi) {
        flush(b);
        break;
      }
    }
  }
  push_dma(b, w);
}

/* A compute command: first the STOREs of the tiles before it. */
static void push_compute(npu_builder *b, uint32_t *w, const access *a, int na) {
  push(b, w, a, na);
  flush(b);
}

static npu_loc loc_at(npu_loc l, uint64_t off) {
  l.off += off;
  return l;
}

/* The buffer |k| in ring |rid|, loaded from |src| (rows x rbytes, DRAM
 * stride |dstride|, packed in SRAM) unless the ring still holds it. */
static uint32_t need(npu_builder *b, int rid, key k, npu_loc src, uint64_t rows, uint64_t rbytes,
                     uint64_t dstride) {
  uint32_t addr;
  int i;
  for (i = b->st.nc - 1; i >= 0; i--)
    if (b->st.c[i].ring == rid && key_eq(b->st.c[i].k, k)) return b->st.c[i].addr;
  addr = alloc(b, rid, rows * rbytes);
  dma(b, NPU_OP_LOAD, b->st.r[rid].sram, addr, src, rows, rbytes, dstride, rbytes);
  remember(b, k, rid, addr, rows * rbytes);
  return addr;
}

/* ---- the layers' tile loops ------------------------------------------------ */

typedef struct tiling {
  int order;           /* 0: output-channel blocks outside bands, 1: bands outside */
  int64_t nt, ct, noy; /* output channels, input channels, output rows (FC: x rows) */
} tiling;

/* Input rows [*r0, *r1) that output rows [oy0, oy0 + noy) read. */
static void band_rows(const npu_layer *l, int64_t oy0, int64_t noy, int64_t *r0, int64_t *r1) {
  int64_t a = oy0 * l->sh - l->pt, e = (oy0 + noy - 1) * l->sh - l->pt + (l->kh - 1) * l->dh + 1;
  if (a < 0) a = 0;
  if (e > l->H) e = l->H;
  if (e <= a) { /* the band reads only padding: any one row stands for it */
    a = a < l->H ? a : l->H - 1;
    e = a + 1;
  }
  *r0 = a, *r1 = e;
}

static int64_t max_rows(const npu_layer *l, int64_t noy) {
  int64_t h = (noy - 1) * l->sh + (l->kh - 1) * l->dh + 1;
  return h < l->H ? h : l->H;
}

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

static uint32_t u(int64_t v) { return (uint32_t)v; }

static void gemm_geom(uint32_t *w, const npu_layer *l) {
  w[NPU_G_KH] = u(l->kh), w[NPU_G_KW] = u(l->kw), w[NPU_G_SH] = u(l->sh), w[NPU_G_SW] = u(l->sw);
  w[NPU_G_DH] = u(l->dh), w[NPU_G_DW] = u(l->dw), w[NPU_G_PT] = u(l->pt), w[NPU_G_PL] = u(l->pl);
}

static uint32_t dflags(const npu_layer *l) {
  return (l->xs8 ? NPU_FL_XS8 : 0) | (l->ws8 ? NPU_FL_WS8 : 0) | (l->ys8 ? NPU_FL_YS8 : 0);
}

/* The constant offsets of a GEMM layer's tiles: weights [ncb][nnb], params [nnb]. */
typedef struct wtiles {
  uint64_t *w, *p;
} wtiles;

/* One GEMM command and its accesses. */
static void gemm_cmd(npu_builder *b, uint32_t *w, uint64_t actlen, uint64_t wlen, int last) {
  access a[5];
  uint64_t P = (uint64_t)w[NPU_G_NOY] * w[NPU_G_OW], nt = w[NPU_G_NT];
  int na = 4;
  w[NPU_F_OP] = NPU_OP_GEMM;
  a[0].sram = NPU_SRAM_ACT, a[0].lo = w[NPU_G_ACT], a[0].hi = w[NPU_G_ACT] + actlen;
  a[1].sram = NPU_SRAM_W, a[1].lo = w[NPU_G_WADDR], a[1].hi = w[NPU_G_WADDR] + wlen;
  a[2].sram = NPU_SRAM_ACC, a[2].lo = w[NPU_G_ACC], a[2].hi = w[NPU_G_ACC] + 4 * nt * P;
  a[3].sram = NPU_SRAM_W, a[3].lo = w[NPU_G_PADDR], a[3].hi = w[NPU_G_PADDR] + NPU_PARAM_BYTES * nt;
  if (last) {
    a[4].sram = NPU_SRAM_ACT, a[4].lo = w[NPU_G_OUT],
    a[4].hi = w[NPU_G_OUT] + ((nt - 1) * w[NPU_G_OCS] + (P - 1) * w[NPU_G_OPS] + 1);
    na = 5;
  }
  push_compute(b, w, a, na);
}

/* The weight tile (|cb|, |nb|) of |wbytes| bytes and the |nt| columns'
 * parameters of block |nb|, each brought into the weight SRAM unless it
 * still holds them: the parameters' address, the weights' in |*out_wa|. */
static uint32_t fetch_weights(npu_builder *b, int L, const wtiles *wt, int64_t cb, int64_t nb,
                              int64_t nnb, uint64_t wbytes, uint64_t nt, uint32_t *out_wa) {
  *out_wa = need(b, R_W, mk(L, K_WT, cb, nb, 0),
                 loc_at((npu_loc){NPU_REGION_CONST, 0}, wt ? wt->w[cb * nnb + nb] : 0), 1, wbytes,
                 0);
  return need(b, R_P, mk(L, K_PAR, nb, 0, 0),
              loc_at((npu_loc){NPU_REGION_CONST, 0}, wt ? wt->p[nb] : 0), 1,
              nt * NPU_PARAM_BYTES, 0);
}

/* Convolutions (dense and depthwise). */
static void conv_run(npu_builder *b, const npu_layer *l, const tiling *t, npu_loc x, npu_loc y,
                     const wtiles *wt) {
  int dw = l->kind == NPU_L_DW;
  int64_t nnb = cdiv(l->N, t->nt), ncb = dw ? 1 : cdiv(l->C, t->ct), nband = cdiv(l->OH, t->noy);
  int64_t khw = l->kh * l->kw, img, i, j, cb;
  int L = b->layer;
  for (img = 0; img < l->B; img++)
    for (i = 0; i < (t->order ? nband : nnb); i++)
      for (j = 0; j < (t->order ? nnb : nband); j++) {
        int64_t nb = t->order ? j : i, band = t->order ? i : j;
        int64_t oy0 = band * t->noy, noy = l->OH - oy0 < t->noy ? l->OH - oy0 : t->noy;
        int64_t n0 = nb * t->nt, nt = l->N - n0 < t->nt ? l->N - n0 : t->nt, r0, r1,
                P = noy * l->OW;
        uint32_t out = 0, par = 0;
        band_rows(l, oy0, noy, &r0, &r1);
        for (cb = 0; cb < ncb; cb++) {
          int64_t c0 = dw ? n0 : cb * t->ct, ct = dw ? nt : (l->C - c0 < t->ct ? l->C - c0 : t->ct);
          int64_t K = (dw ? 1 : ct) * khw, ht = r1 - r0;
          int last = cb == ncb - 1;
          uint32_t w[NPU_CMD_WORDS], act, wa;
          act = need(b, R_IN, mk(L, K_ACT, img, dw ? nb : cb, band),
                     loc_at(x, (uint64_t)(((img * l->C + c0) * l->H + r0) * l->W)), (uint64_t)ct,
                     (uint64_t)(ht * l->W), (uint64_t)(l->H * l->W));
          par = fetch_weights(b, L, wt, cb, nb, nnb, (uint64_t)(K * nt), (uint64_t)nt, &wa);
          if (last) out = alloc(b, R_OUT, (uint64_t)(nt * P));
          memset(w, 0, sizeof w);
          w[NPU_G_ACT] = act, w[NPU_G_CS] = u(ht * l->W), w[NPU_G_RS] = u(l->W), w[NPU_G_XS] = 1;
          w[NPU_G_IY0] = u(r0), w[NPU_G_HT] = u(ht), w[NPU_G_WIDTH] = u(l->W);
          gemm_geom(w, l);
          w[NPU_G_OY0] = u(oy0), w[NPU_G_NOY] = u(noy), w[NPU_G_OW] = u(l->OW);
          w[NPU_G_KT] = u(ct), w[NPU_G_NT] = u(nt);
          w[NPU_G_FLAGS] = dflags(l) | (cb ? NPU_FL_ACCUM : 0) | (last ? NPU_FL_EPILOGUE : 0) |
                           (dw ? NPU_FL_DEPTHWISE : 0);
          w[NPU_G_WADDR] = wa, w[NPU_G_PADDR] = par, w[NPU_G_ACC] = 0,
          w[NPU_G_XZP] = (uint32_t)l->xzp;
          w[NPU_G_OUT] = out, w[NPU_G_OCS] = u(P), w[NPU_G_OPS] = 1;
          w[NPU_G_YZP] = (uint32_t)l->yzp, w[NPU_G_LOHI] = npu_lohi(l->lo, l->hi);
          gemm_cmd(b, w, (uint64_t)(ct * ht * l->W), (uint64_t)(K * nt), last);
        }
        dma(b, NPU_OP_STORE, NPU_SRAM_ACT, out,
            loc_at(y, (uint64_t)(((img * l->N + n0) * l->OH + oy0) * l->OW)), (uint64_t)nt,
            (uint64_t)P, (uint64_t)(l->OH * l->OW), (uint64_t)P);
      }
}

/* MossQGemm: x [M, K] in bands of t->noy rows, K in blocks of t->ct. */
static void fc_run(npu_builder *b, const npu_layer *l, const tiling *t, npu_loc x, npu_loc y,
                   const wtiles *wt) {
  int64_t M = l->H, K = l->C, nnb = cdiv(l->N, t->nt), ncb = cdiv(K, t->ct),
          nband = cdiv(M, t->noy);
  int64_t i, j, cb;
  int L = b->layer;
  for (i = 0; i < (t->order ? nband : nnb); i++)
    for (j = 0; j < (t->order ? nnb : nband); j++) {
      int64_t nb = t->order ? j : i, band = t->order ? i : j;
      int64_t m0 = band * t->noy, mt = M - m0 < t->noy ? M - m0 : t->noy;
      int64_t n0 = nb * t->nt, nt = l->N - n0 < t->nt ? l->N - n0 : t->nt;
      uint32_t out = 0, par = 0;
      for (cb = 0; cb < ncb; cb++) {
        int64_t k0 = cb * t->ct, ct = K - k0 < t->ct ? K - k0 : t->ct;
        int last = cb == ncb - 1;
        uint32_t w[NPU_CMD_WORDS], act, wa;
        act = need(b, R_IN, mk(L, K_ACT, 0, cb, band), loc_at(x, (uint64_t)(m0 * K + k0)),
                   (uint64_t)mt, (uint64_t)ct, (uint64_t)K);
        par = fetch_weights(b, L, wt, cb, nb, nnb, (uint64_t)(ct * nt), (uint64_t)nt, &wa);
        if (last) out = alloc(b, R_OUT, (uint64_t)(nt * mt));
        memset(w, 0, sizeof w);
        w[NPU_G_ACT] = act, w[NPU_G_CS] = 1, w[NPU_G_RS] = 0, w[NPU_G_XS] = u(ct);
        w[NPU_G_IY0] = 0, w[NPU_G_HT] = 1, w[NPU_G_WIDTH] = u(mt);
        gemm_geom(w, l);
        w[NPU_G_OY0] = 0, w[NPU_G_NOY] = 1, w[NPU_G_OW] = u(mt);
        w[NPU_G_KT] = u(ct), w[NPU_G_NT] = u(nt);
        w[NPU_G_FLAGS] = dflags(l) | (cb ? NPU_FL_ACCUM : 0) | (last ? NPU_FL_EPILOGUE : 0);
        w[NPU_G_WADDR] = wa, w[NPU_G_PADDR] = par, w[NPU_G_ACC] = 0,
        w[NPU_G_XZP] = (uint32_t)l->xzp;
        w[NPU_G_OUT] = out, w[NPU_G_OCS] = 1, w[NPU_G_OPS] = u(nt);
        w[NPU_G_YZP] = (uint32_t)l->yzp, w[NPU_G_LOHI] = npu_lohi(l->lo, l->hi);
        gemm_cmd(b, w, (uint64_t)(mt * ct), (uint64_t)(ct * nt), last);
      }
      dma(b, NPU_OP_STORE, NPU_SRAM_ACT, out, loc_at(y, (uint64_t)(m0 * l->N + n0)), (uint64_t)mt,
          (uint64_t)nt, (uint64_t)l->N, (uint64_t)nt);
    }
}

/* Pools: t->ct channels by bands of t->noy output rows. */
static void pool_run(npu_builder *b, const npu_layer *l, const tiling *t, npu_loc x, npu_loc y,
                     uint64_t qoff) {
  int64_t ncb = cdiv(l->C, t->ct), nband = cdiv(l->OH, t->noy), img, cb, band;
  int avg = l->kind == NPU_L_AVGPOOL, L = b->layer;
  int64_t nq = l->global ? 1 : l->kh * l->kw + 1;
  for (img = 0; img < l->B; img++)
    for (cb = 0; cb < ncb; cb++)
      for (band = 0; band < nband; band++) {
        int64_t c0 = cb * t->ct, ct = l->C - c0 < t->ct ? l->C - c0 : t->ct;
        int64_t oy0 = band * t->noy, noy = l->OH - oy0 < t->noy ? l->OH - oy0 : t->noy;
        int64_t r0, r1, ht, P = noy * l->OW;
        uint32_t w[NPU_CMD_WORDS], xa, out, par = 0;
        access a[3];
        band_rows(l, oy0, noy, &r0, &r1);
        ht = r1 - r0;
        xa = need(b, R_IN, mk(L, K_ACT, img, cb, band),
                  loc_at(x, (uint64_t)(((img * l->C + c0) * l->H + r0) * l->W)), (uint64_t)ct,
                  (uint64_t)(ht * l->W), (uint64_t)(l->H * l->W));
        if (avg)
          par = need(b, R_P, mk(L, K_PAR, 0, 0, 0), loc_at((npu_loc){NPU_REGION_CONST, 0}, qoff), 1,
                     (uint64_t)nq * NPU_POOLQ_BYTES, 0);
        out = alloc(b, R_OUT, (uint64_t)(ct * P));
        memset(w, 0, sizeof w);
        w[NPU_F_OP] = NPU_OP_VPOOL;
        w[NPU_P_X] = xa, w[NPU_P_CS] = u(ht * l->W), w[NPU_P_RS] = u(l->W), w[NPU_P_IY0] = u(r0);
        w[NPU_P_HT] = u(ht), w[NPU_P_WIDTH] = u(l->W), w[NPU_P_KH] = u(l->kh),
        w[NPU_P_KW] = u(l->kw);
        w[NPU_P_SH] = u(l->sh), w[NPU_P_SW] = u(l->sw), w[NPU_P_DH] = u(l->dh),
        w[NPU_P_DW] = u(l->dw);
        w[NPU_P_PT] = u(l->pt), w[NPU_P_PL] = u(l->pl), w[NPU_P_OY0] = u(oy0),
        w[NPU_P_NOY] = u(noy);
        w[NPU_P_OW] = u(l->OW), w[NPU_P_NCH] = u(ct), w[NPU_P_Y] = out, w[NPU_P_YCS] = u(P);
        w[NPU_P_FLAGS] = (l->xs8 ? NPU_FL_XS8 : 0) | (l->ys8 ? NPU_FL_YS8 : 0) |
                         (avg ? NPU_FL_AVG : 0) | (l->incpad ? NPU_FL_INCPAD : 0) |
                         (l->global ? NPU_FL_ONEQ : 0);
        w[NPU_P_PADDR] = par, w[NPU_P_NQ] = u(avg ? nq : 0);
        w[NPU_P_XZP] = (uint32_t)l->xzp, w[NPU_P_YZP] = (uint32_t)l->yzp;
        w[NPU_P_LOHI] = npu_lohi(l->lo, l->hi);
        w[NPU_P_LIMH] = u(l->H + l->pb), w[NPU_P_LIMW] = u(l->W + l->pr);
        a[0].sram = NPU_SRAM_ACT, a[0].lo = xa, a[0].hi = xa + (uint64_t)(ct * ht * l->W);
        a[1].sram = NPU_SRAM_ACT, a[1].lo = out, a[1].hi = out + (uint64_t)(ct * P);
        a[2].sram = NPU_SRAM_W, a[2].lo = par,
        a[2].hi = par + (avg ? (uint64_t)nq * NPU_POOLQ_BYTES : 0);
        push_compute(b, w, a, 3);
        dma(b, NPU_OP_STORE, NPU_SRAM_ACT, out,
            loc_at(y, (uint64_t)(((img * l->C + c0) * l->OH + oy0) * l->OW)), (uint64_t)ct,
            (uint64_t)P, (uint64_t)(l->OH * l->OW), (uint64_t)P);
      }
}

static uint64_t min_u(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* MossQAdd, MossQMul: chunks of both operands; a in the input ring, b in the output
 * ring, where the sum overwrites it. */
static void add_run(npu_builder *b, const npu_layer *l, npu_loc xa, npu_loc xb, npu_loc y) {
  uint64_t chunk = min_u(cap_of(&b->cfg, R_IN), cap_of(&b->cfg, R_OUT)), e, n = (uint64_t)l->numel;
  /* at least four chunks of 4 KiB or more, so that transfers overlap the vector unit */
  chunk = min_u(chunk, align_up(n / 4 > 4096 ? n / 4 : 4096, G));
  const moss_plugin_requant *q = l->n->requant;
  for (e = 0; e < n; e += chunk) {
    uint64_t c = n - e < chunk ? n - e : chunk;
    uint32_t w[NPU_CMD_WORDS], aa, bb;
    access a[2];
    aa = need(b, R_IN, mk(b->layer, K_X, (int64_t)(e / chunk), 0, 0), loc_at(xa, e), 1, c, 0);
    bb = alloc(b, R_OUT, c);
    dma(b, NPU_OP_LOAD, NPU_SRAM_ACT, bb, loc_at(xb, e), 1, c, 0, c);
    memset(w, 0, sizeof w);
    w[NPU_F_OP] = NPU_OP_VADD;
    w[NPU_A_A] = aa, w[NPU_A_B] = bb, w[NPU_A_Y] = bb, w[NPU_A_N] = (uint32_t)c;
    w[NPU_A_AZP] = (uint32_t)l->xzp, w[NPU_A_BZP] = (uint32_t)l->bzp,
    w[NPU_A_YZP] = (uint32_t)l->yzp;
    if (l->mul) { /* MossQMul: one multiplier, in the third slot */
      w[NPU_A_M2] = (uint32_t)q[0].mult, w[NPU_A_S2] = (uint32_t)q[0].shift;
    } else {
      w[NPU_A_M0] = (uint32_t)q[0].mult, w[NPU_A_S0] = (uint32_t)q[0].shift;
      w[NPU_A_M1] = (uint32_t)q[1].mult, w[NPU_A_S1] = (uint32_t)q[1].shift;
      w[NPU_A_M2] = (uint32_t)q[2].mult, w[NPU_A_S2] = (uint32_t)q[2].shift;
    }
    w[NPU_A_LOHI] = npu_lohi(l->lo, l->hi);
    w[NPU_A_FLAGS] = (l->xs8 ? NPU_FL_XS8 : 0) | (l->bs8 ? NPU_FL_BS8 : 0) |
                     (l->ys8 ? NPU_FL_YS8 : 0) | (l->mul ? NPU_FL_MUL : 0);
    a[0].sram = NPU_SRAM_ACT, a[0].lo = aa, a[0].hi = aa + c;
    a[1].sram = NPU_SRAM_ACT, a[1].lo = bb, a[1].hi = bb + c;
    push_compute(b, w, a, 2);
    dma(b, NPU_OP_STORE, NPU_SRAM_ACT, bb, loc_at(y, e), 1, c, 0, c);
  }
}

/* MossQLookup: [B, C, plane] in tiles of ct channels by pc elements; the
 * tables of the tile's channels in the weight ring. */
static void lut_run(npu_builder *b, const npu_layer *l, npu_loc x, npu_loc y, uint64_t toff) {
  uint64_t cap = min_u(cap_of(&b->cfg, R_IN), cap_of(&b->cfg, R_OUT));
  uint64_t plane = (uint64_t)l->plane, C = (uint64_t)l->C, pc, ct, img, c0, p0;
  if (l->numel / 4 > 4096) cap = min_u(cap, align_up((uint64_t)l->numel / 4, G)); /* overlap */
  pc = plane < cap ? plane : cap;
  ct = cap / pc;
  if (ct > C) ct = C;
  if (l->pertable && ct * 256 > cap_of(&b->cfg, R_W)) ct = cap_of(&b->cfg, R_W) / 256;
  if (ct < 1) ct = 1;
  for (img = 0; img < (uint64_t)l->B; img++)
    for (c0 = 0; c0 < C; c0 += ct)
      for (p0 = 0; p0 < plane; p0 += pc) {
        uint64_t cn = C - c0 < ct ? C - c0 : ct, pn = plane - p0 < pc ? plane - p0 : pc;
        uint32_t w[NPU_CMD_WORDS], xa, ta, out;
        access a[3];
        xa = need(b, R_IN, mk(b->layer, K_ACT, (int64_t)img, (int64_t)c0, (int64_t)p0),
                  loc_at(x, (img * C + c0) * plane + p0), cn, pn, plane);
        ta = need(b, R_W, mk(b->layer, K_TAB, (int64_t)c0, 0, 0),
                  loc_at((npu_loc){NPU_REGION_CONST, 0}, toff + (l->pertable ? c0 * 256 : 0)), 1,
                  l->pertable ? cn * 256 : 256, 0);
        out = alloc(b, R_OUT, cn * pn);
        memset(w, 0, sizeof w);
        w[NPU_F_OP] = NPU_OP_VLUT;
        w[NPU_L_X] = xa, w[NPU_L_Y] = out, w[NPU_L_NCH] = (uint32_t)cn, w[NPU_L_CNT] = (uint32_t)pn;
        w[NPU_L_XCS] = (uint32_t)pn, w[NPU_L_YCS] = (uint32_t)pn, w[NPU_L_T] = ta;
        w[NPU_L_TCS] = l->pertable ? 256u : 0u, w[NPU_L_FLAGS] = l->xs8 ? NPU_FL_XS8 : 0;
        a[0].sram = NPU_SRAM_ACT, a[0].lo = xa, a[0].hi = xa + cn * pn;
        a[1].sram = NPU_SRAM_ACT, a[1].lo = out, a[1].hi = out + cn * pn;
        a[2].sram = NPU_SRAM_W, a[2].lo = ta, a[2].hi = ta + (l->pertable ? cn * 256 : 256);
        push_compute(b, w, a, 3);
        dma(b, NPU_OP_STORE, NPU_SRAM_ACT, out, loc_at(y, (img * C + c0) * plane + p0), cn, pn,
            plane, pn);
      }
}

/* A 2-D copy DRAM -> DRAM through the input ring: rows x rbytes. */
static void copy_run(npu_builder *b, npu_loc src, uint64_t sstride, npu_loc dst, uint64_t dstride,
                     uint64_t rows, uint64_t rbytes) {
  uint64_t cap = cap_of(&b->cfg, R_IN), r, c;
  if (!rows || !rbytes) return;
  if (rbytes <= cap) {
    uint64_t per = cap / rbytes;
    for (r = 0; r < rows; r += per) {
      uint64_t n = rows - r < per ? rows - r : per;
      uint32_t at = alloc(b, R_IN, n * rbytes);
      dma(b, NPU_OP_LOAD, NPU_SRAM_ACT, at, loc_at(src, r * sstride), n, rbytes, sstride, rbytes);
      dma(b, NPU_OP_STORE, NPU_SRAM_ACT, at, loc_at(dst, r * dstride), n, rbytes, dstride, rbytes);
      flush(b);
    }
    return;
  }
  for (r = 0; r < rows; r++)
    for (c = 0; c < rbytes; c += cap) {
      uint64_t n = rbytes - c < cap ? rbytes - c : cap;
      uint32_t at = alloc(b, R_IN, n);
      dma(b, NPU_OP_LOAD, NPU_SRAM_ACT, at, loc_at(src, r * sstride + c), 1, n, 0, n);
      dma(b, NPU_OP_STORE, NPU_SRAM_ACT, at, loc_at(dst, r * dstride + c), 1, n, 0, n);
      flush(b);
    }
}

/* ---- the tiling and its cost model ----------------------------------------- */

/* Whether tiling |t| of a GEMM or pool layer fits the rings. */
static int fits(const npu_cfg *c, const npu_layer *l, const tiling *t) {
  uint64_t nt = (uint64_t)t->nt, ct = (uint64_t)t->ct, P, in, khw = (uint64_t)(l->kh * l->kw);
  switch (l->kind) {
  case NPU_L_CONV:
  case NPU_L_DW:
    if (l->kind == NPU_L_DW) ct = nt;
    P = (uint64_t)(t->noy * l->OW);
    in = ct * (uint64_t)max_rows(l, t->noy) * (uint64_t)l->W;
    return (l->kind == NPU_L_DW ? khw : ct * khw) * nt <= cap_of(c, R_W) &&
           nt * NPU_PARAM_BYTES <= cap_of(c, R_P) && in <= cap_of(c, R_IN) &&
           nt * P <= cap_of(c, R_OUT) && 4 * nt * P <= c->accsram;
  case NPU_L_FC:
    P = (uint64_t)t->noy;
    return ct * nt <= cap_of(c, R_W) && nt * NPU_PARAM_BYTES <= cap_of(c, R_P) &&
           P * ct <= cap_of(c, R_IN) && nt * P <= cap_of(c, R_OUT) && 4 * nt * P <= c->accsram;
  case NPU_L_MAXPOOL:
  case NPU_L_AVGPOOL:
    P = (uint64_t)(t->noy * l->OW);
    in = ct * (uint64_t)max_rows(l, t->noy) * (uint64_t)l->W;
    return in <= cap_of(c, R_IN) && ct * P <= cap_of(c, R_OUT) &&
           (l->kind == NPU_L_MAXPOOL ||
            (uint64_t)(l->global ? 1 : khw + 1) * NPU_POOLQ_BYTES <= cap_of(c, R_P));
  }
  return 1;
}

/* Candidate block sizes for a dimension of |n|: n and the multiples e,
 * 2e, 4e ... of the array's edge |e| below it (coarse), or also n/2,
 * n/4 ... 1 (fine, when no coarse tiling fits). */
static int cands(int64_t n, int64_t e, int fine, int64_t *out, int cap) {
  int k = 0, i;
  int64_t v;
  out[k++] = n;
  for (v = e; v < n && k < cap; v *= 2)
    out[k++] = v;
  if (fine)
    for (v = cdiv(n, 2); v >= 1 && k<cap; v = v> 1 ? cdiv(v, 2) : 0) {
      for (i = 0; i < k && out[i] != v; i++) {
      }
      if (i == k) out[k++] = v;
      if (v == 1) break;
    }
  return k;
}

static void run_tiling(npu_builder *b, const npu_layer *l, const tiling *t, const npu_loc *xs,
                       npu_loc y, const wtiles *wt, uint64_t qoff) {
  switch (l->kind) {
  case NPU_L_CONV:
  case NPU_L_DW: conv_run(b, l, t, xs[0], y, wt); break;
  case NPU_L_FC: fc_run(b, l, t, xs[0], y, wt); break;
  default: pool_run(b, l, t, xs[0], y, qoff); break;
  }
}

/* The tiling of a GEMM or pool layer with the least DRAM traffic, then
 * the fewest estimated cycles (the larger of the DMA and compute queues'
 * sums: they overlap), found by running each candidate's tile loop dry
 * from the builder's current ring state. 0 when none fits. */
static int choose(npu_builder *b, const npu_layer *l, tiling *best, stats *best_s) {
  int64_t ntc[64], ctc[64], rows_total = l->kind == NPU_L_FC ? l->H : l->OH;
  int nn, nc, i, j, order, found = 0, fine;
  int pool = l->kind == NPU_L_MAXPOOL || l->kind == NPU_L_AVGPOOL, dw = l->kind == NPU_L_DW;
  state saved = b->st;
  int64_t N = pool ? 1 : l->N,
          ce = l->kind == NPU_L_CONV ? cdiv(b->cfg.rows, l->kh * l->kw) : b->cfg.rows;
  for (fine = 0; fine < 2 && !found; fine++) {
    nn = cands(N, b->cfg.cols, fine, ntc, 64);
    nc = dw ? 1 : cands(l->C, ce, fine, ctc, 64);
    for (i = 0; i < nn; i++)
      for (j = 0; j < nc; j++)
        for (order = 0; order < (pool ? 1 : 2); order++) {
          tiling t;
          int64_t lo = 1, hi = rows_total, nbands;
          t.order = order, t.nt = ntc[i], t.ct = dw ? ntc[i] : ctc[j], t.noy = 1;
          if (!fits(&b->cfg, l, &t)) continue;
          while (lo < hi) { /* the most rows that fit */
            int64_t mid = (lo + hi + 1) / 2;
            t.noy = mid;
            if (fits(&b->cfg, l, &t))
              lo = mid;
            else
              hi = mid - 1;
          }
          nbands = cdiv(rows_total, lo);
          t.noy = cdiv(rows_total, nbands);                           /* balanced bands */
          if (order && (nbands == 1 || cdiv(N, t.nt) == 1)) continue; /* the same loop as order 0 */
          b->dry = 1;
          memset(&b->s, 0, sizeof b->s);
          run_tiling(b, l, &t, (const npu_loc[]){{NPU_REGION_SCRATCH, 0}},
                     (npu_loc){NPU_REGION_SCRATCH, 0}, NULL, 0);
          flush(b);
          b->dry = 0;
          b->st = saved;
          if (!found || b->s.dram < best_s->dram ||
              (b->s.dram == best_s->dram && pipelined(&b->s) < pipelined(best_s))) {
            *best = t;
            *best_s = b->s;
            found = 1;
          }
        }
  }
  return found;
}

int npu_layer_fits(const npu_cfg *cfg, const npu_layer *l, char *why, size_t cap) {
  tiling t;
  memset(&t, 0, sizeof t);
  t.nt = t.ct = t.noy = 1;
  switch (l->kind) {
  case NPU_L_CONV:
  case NPU_L_DW:
  case NPU_L_FC:
  case NPU_L_MAXPOOL:
  case NPU_L_AVGPOOL:
    if (!fits(cfg, l, &t)) {
      snprintf(why, cap, "%s: one row of %lld does not fit the SRAMs", l->n->op_type,
               (long long)(l->kind == NPU_L_FC ? l->C : l->W));
      return 0;
    }
    return 1;
  }
  return 1;
}

/* ---- constants in the array's layout ----------------------------------------- */

static int32_t i8at(const moss_plugin_tensor *t, int64_t i) {
  return t->dtype == MOSS_PLUGIN_INT8 ? ((const int8_t *)t->data)[i]
                                      : ((const uint8_t *)t->data)[i];
}

/* Weight tiles [K][nt] for tiling |t| and per-block epilogue parameters. */
static int weights(npu_builder *b, const npu_layer *l, const tiling *t, wtiles *wt) {
  const moss_plugin_node *n = l->n;
  const moss_plugin_tensor *w = n->inputs[3], *wz = n->inputs[5];
  const moss_plugin_tensor *bias = n->ninputs > 8 ? n->inputs[8] : NULL;
  int dw = l->kind == NPU_L_DW, fc = l->kind == NPU_L_FC;
  int64_t khw = l->kh * l->kw, nnb = cdiv(l->N, t->nt), ncb = dw ? 1 : cdiv(l->C, t->ct);
  int64_t nb, cb, k, j, wsz = fc ? l->C : dw ? khw : l->C * khw;
  unsigned char *tile =
      malloc((size_t)((dw ? khw : t->ct * khw) * t->nt + NPU_PARAM_BYTES * t->nt));
  wt->w = calloc((size_t)(ncb * nnb), sizeof *wt->w);
  wt->p = calloc((size_t)nnb, sizeof *wt->p);
  if (!tile || !wt->w || !wt->p) {
    free(tile);
    b->failed = 1;
    return 0;
  }
  for (nb = 0; nb < nnb; nb++) {
    int64_t n0 = nb * t->nt, nt = l->N - n0 < t->nt ? l->N - n0 : t->nt;
    for (cb = 0; cb < ncb; cb++) {
      int64_t c0 = dw ? 0 : cb * t->ct, ct = dw ? 1 : (l->C - c0 < t->ct ? l->C - c0 : t->ct);
      int64_t K = fc ? ct : ct * khw;
      for (k = 0; k < K; k++)
        for (j = 0; j < nt; j++) /* fc: w[n][k0 + k]; conv: w[n][c0 * khw + k] */
          tile[k * nt + j] = (unsigned char)i8at(w, (n0 + j) * wsz + (fc ? c0 : c0 * khw) + k);
      if (npu_const_add(b, tile, (size_t)(K * nt), &wt->w[cb * nnb + nb]) != 0) goto fail;
    }
    for (j = 0; j < nt; j++) {
      int64_t o = n0 + j;
      const moss_plugin_requant *q = &n->requant[n->nrequant > 1 ? o : 0];
      int32_t bv = bias ? ((const int32_t *)bias->data)[o] : 0;
      int32_t zv = i8at(wz, wz->nbytes > 1 ? o : 0);
      npu_put_u32(tile + 16 * j, (uint32_t)bv);
      npu_put_u32(tile + 16 * j + 4, (uint32_t)q->mult);
      npu_put_u32(tile + 16 * j + 8, (uint32_t)q->shift);
      npu_put_u32(tile + 16 * j + 12, (uint32_t)zv);
    }
    if (npu_const_add(b, tile, (size_t)(NPU_PARAM_BYTES * nt), &wt->p[nb]) != 0) goto fail;
  }
  free(tile);
  return 1;
fail:
  free(tile);
  return 0;
}

int npu_lower_layer(npu_builder *b, int layer, const npu_layer *l, const npu_loc *xs, int nin,
                    npu_loc y, char *err, size_t cap) {
  tiling t;
  stats s;
  wtiles wt = {NULL, NULL};
  uint64_t off = 0;
  int i;
  b->layer = layer;
  switch (l->kind) {
  case NPU_L_CONV:
  case NPU_L_DW:
  case NPU_L_FC:
  case NPU_L_MAXPOOL:
  case NPU_L_AVGPOOL:
    if (!choose(b, l, &t, &s)) {
      snprintf(err, cap, "no tiling fits the SRAMs");
      return 1;
    }
    if (l->kind == NPU_L_AVGPOOL) {
      int64_t nq = l->global ? 1 : l->kh * l->kw + 1, q;
      unsigned char *tab = malloc((size_t)nq * NPU_POOLQ_BYTES);
      if (!tab) {
        b->failed = 1;
        break;
      }
      for (q = 0; q < nq; q++) {
        npu_put_u32(tab + 8 * q, (uint32_t)l->n->requant[q].mult);
        npu_put_u32(tab + 8 * q + 4, (uint32_t)l->n->requant[q].shift);
      }
      npu_const_add(b, tab, (size_t)nq * NPU_POOLQ_BYTES, &off);
      free(tab);
    } else if (l->kind != NPU_L_MAXPOOL && !weights(b, l, &t, &wt)) {
      break;
    }
    run_tiling(b, l, &t, xs, y, &wt, off);
    break;
  case NPU_L_ADD: add_run(b, l, xs[0], xs[1], y); break;
  case NPU_L_LUT:
    if (npu_const_add(b, l->x2->data, (size_t)l->x2->nbytes, &off) == 0)
      lut_run(b, l, xs[0], y, off);
    break;
  case NPU_L_COPY: copy_run(b, xs[0], 0, y, 0, 1, (uint64_t)l->numel); break;
  case NPU_L_CONCAT: {
    int64_t axis = l->C, at = 0, ya = l->y->dims[axis];
    for (i = 0; i < nin; i++) {
      int64_t xa = l->n->inputs[i]->dims[axis];
      copy_run(b, xs[i], (uint64_t)(xa * l->plane), loc_at(y, (uint64_t)(at * l->plane)),
               (uint64_t)(ya * l->plane), (uint64_t)l->B, (uint64_t)(xa * l->plane));
      at += xa;
    }
    break;
  }
  }
  flush(b);
  free(wt.w);
  free(wt.p);
  if (b->failed) {
    snprintf(err, cap, "out of memory");
    return 1;
  }
  return 0;
}

int npu_layer_estimate(const npu_cfg *cfg, const npu_layer *l, double *cycles, double *dram,
                       double *sram) {
  npu_builder *b = npu_builder_create(cfg);
  npu_loc xs[64];
  tiling tl;
  stats s;
  int i, ok = 1;
  if (!b) return 0;
  for (i = 0; i < 64; i++) xs[i].region = NPU_REGION_SCRATCH, xs[i].off = 0;
  memset(&s, 0, sizeof s);
  switch (l->kind) {
  case NPU_L_CONV:
  case NPU_L_DW:
  case NPU_L_FC:
  case NPU_L_MAXPOOL:
  case NPU_L_AVGPOOL: ok = choose(b, l, &tl, &s); break;
  default:
    if (l->kind == NPU_L_CONCAT && l->n->ninputs > 64) {
      ok = 0;
      break;
    }
    b->dry = 1;
    switch (l->kind) {
    case NPU_L_ADD: add_run(b, l, xs[0], xs[1], xs[0]); break;
    case NPU_L_LUT: lut_run(b, l, xs[0], xs[0], 0); break;
    case NPU_L_COPY: copy_run(b, xs[0], 0, xs[0], 0, 1, (uint64_t)l->numel); break;
    default: npu_lower_layer(b, 0, l, xs, l->n->ninputs, xs[0], NULL, 0); break;
    }
    flush(b);
    s = b->s;
  }
  ok = ok && !b->failed;
  npu_builder_destroy(b);
  if (!ok) return 0;
  /* the queues overlap but for the pipeline's fill and drain, and the first
   * transfer's latency */
  *cycles = pipelined(&s) + cfg->dma_latency;
  *dram = (double)s.dram;
  *sram = (double)s.sram;
  return 1;
}
