/* npu.h - the compile side's internal interface, between compile.c (which
 * nodes the machine takes, the layer descriptions, the blob writer) and
 * tile.c (tiling, the cost model and the command-stream builder). Not
 * part of the plugin ABI; the runtime side does not include it. */
#ifndef NPU_H
#define NPU_H

#include <stddef.h>
#include <stdint.h>

#include "blob.h"
#include "moss_plugin.h"

/* The machine, from the target's facts (README.md "Parameters"). */
typedef struct npu_cfg {
  uint32_t rows, cols, wsram, asram, accsram, lanes, dma_latency;
  double clock_mhz, dram_bpc, pj_mac, pj_sram, pj_dram, idle_w;
} npu_cfg;

/* 1 and |cfg| filled, or 0 with the reason in |why|. */
int npu_cfg_parse(const moss_plugin_target *t, npu_cfg *cfg, char *why, size_t cap);

enum {
  NPU_L_CONV,    /* QLinearConv, group 1 */
  NPU_L_DW,      /* QLinearConv, depthwise */
  NPU_L_FC,      /* MossQGemm */
  NPU_L_MAXPOOL, /* MaxPool on 8-bit data */
  NPU_L_AVGPOOL, /* MossQAvgPool */
  NPU_L_ADD,     /* MossQAdd, MossQMul (mul = 1) */
  NPU_L_LUT,     /* MossQLookup */
  NPU_L_COPY,    /* Flatten, Reshape, Identity, Squeeze, Unsqueeze */
  NPU_L_CONCAT   /* Concat */
};

/* One node as the machine sees it. Convolutions and pools: x [B, C, H, W]
 * -> y [B, N, OH, OW] (pools: N = C); FC: x [M, K] -> y [M, N] with M in
 * |H| and K in |C|; ADD, LUT, COPY: |numel| elements; LUT per channel: B
 * rows of C channels of |plane| elements. */
typedef struct npu_layer {
  int kind;
  const moss_plugin_node *n;
  const moss_plugin_tensor *x, *x2, *y;
  int64_t B, C, H, W, N, OH, OW;
  int64_t kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
  int64_t numel, plane;
  int xs8, ws8, ys8, bs8, incpad, global, pertable, mul;
  int32_t xzp, bzp, yzp, lo, hi;
} npu_layer;

/* 1 and |l| filled when the machine runs |n|, else 0 with the reason. */
int npu_layer_analyze(const npu_cfg *cfg, const moss_plugin_node *n, npu_layer *l, char *why,
                      size_t cap);

/* Where a tensor lives in device DRAM. */
typedef struct npu_loc {
  uint32_t region;
  uint64_t off;
} npu_loc;

typedef struct npu_builder npu_builder;

/* The builder of one blob: commands with their synchronization, the
 * constants, the SRAM rings and the cache of what they hold. */
npu_builder *npu_builder_create(const npu_cfg *cfg);
void npu_builder_destroy(npu_builder *b);
/* Appends |n| bytes to the constant region; its offset in |*out|. 0 on success. */
int npu_const_add(npu_builder *b, const void *data, size_t n, uint64_t *out);
/* Lowers |l| (counted against layer |layer|) reading |x| (and |x2|, or the
 * |nin| inputs of a Concat in |xs|) and writing |y|. 0 on success, else
 * the reason in |err|. */
int npu_lower_layer(npu_builder *b, int layer, const npu_layer *l, const npu_loc *xs, int nin,
                    npu_loc y, char *err, size_t cap);
/* The cost model's figures for |l| run alone (its best tiling from empty
 * SRAMs): cycles, DRAM bytes, SRAM bytes. 1, or 0 when it cannot tell. */
int npu_layer_estimate(const npu_cfg *cfg, const npu_layer *l, double *cycles, double *dram,
                       double *sram);
/* 1 when some tiling of |l| fits the machine, else 0 with the reason. */
int npu_layer_fits(const npu_cfg *cfg, const npu_layer *l, char *why, size_t cap);
/* The finished stream (SIGNALs placed), the constants, and whether
 * memory ran out. */
int npu_builder_failed(const npu_builder *b);
size_t npu_builder_ncmds(const npu_builder *b);
/* Writes the stream's |ncmds| commands to |out| (NPU_CMD_BYTES each). */
void npu_builder_emit_cmds(const npu_builder *b, unsigned char *out);
const unsigned char *npu_builder_consts(const npu_builder *b, size_t *out_n);
uint32_t npu_builder_nsems(const npu_builder *b);

/* Attribute helpers (compile.c). */
const moss_plugin_attr *npu_attr(const moss_plugin_node *n, const char *name);
int64_t npu_attr_int(const moss_plugin_node *n, const char *name, int64_t def);

#endif
