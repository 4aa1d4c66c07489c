/* sim.h - the runtime side's internal interface, between blob.c (which
 * checks a blob and builds a program, allocating everything a run needs)
 * and sim.c (the device table and the simulator that runs a program
 * without allocating). Not part of the plugin ABI. */
#ifndef NPU_SIM_H
#define NPU_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "blob.h"
#include "moss_plugin.h"

/* A checked command with what it costs, worked out once at load. */
typedef struct npu_dcmd {
  uint32_t w[NPU_CMD_WORDS];
  uint32_t queue, layer;
  uint64_t cycles;        /* duration on its queue */
  uint64_t array, vector; /* busy cycles of the array and the vector unit */
  uint64_t macs, dram_rd, dram_wr, sram_rd, sram_wr;
} npu_dcmd;

typedef struct npu_prog {
  /* the machine */
  uint32_t rows, cols, wsram, asram, accsram, lanes, dma_latency, nsems;
  double clock_mhz, dram_bpc, pj_mac, pj_sram, pj_dram, idle_w;
  /* the stream */
  uint32_t ninputs, noutputs, nlayers, ncmds;
  uint64_t *iosize; /* ninputs + noutputs */
  uint64_t scratch_bytes, const_bytes;
  uint64_t scratch_used; /* the scratch bytes the commands reach (<= scratch_bytes): allocated */
  const unsigned char *consts; /* inside the blob, valid until unload */
  char *names;                 /* the layers' names and op types, NUL-terminated */
  npu_dcmd *cmds;
  uint32_t *qcmd[2], qn[2]; /* each queue's commands, in order */
  /* the machine's memories and the simulator's working storage */
  unsigned char *sram[NPU_NSRAMS];
  unsigned char *scratch;
  int32_t *col;                       /* one pixel's reduction vector (max taps) */
  uint32_t *sum;                      /* one pixel's sums (max columns) */
  int32_t *bias, *mult, *shift, *wzp; /* one GEMM's epilogue parameters */
  uint32_t maxk, maxn;
  uint64_t *tok[NPU_MAX_SEMS]; /* SIGNAL times per semaphore */
  uint32_t ntok[NPU_MAX_SEMS];
  /* counters */
  moss_plugin_counters *ctr;
  uint64_t *first, *last; /* per layer: first start, last end */
  uint64_t total_cycles;
} npu_prog;

/* Checks |blob| and builds |*out| (every allocation a run needs); 0, or 1
 * with the reason in |err|. */
int npu_prog_load(const unsigned char *blob, uint64_t size, npu_prog **out, char *err,
                  size_t errcap);
void npu_prog_free(npu_prog *p);

/* Writes the message into |err| (at most |errcap| bytes, NUL-terminated)
 * and returns 1: the runtime side's one way to fail (blob.c). */
int npu_fail(char *err, size_t errcap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
