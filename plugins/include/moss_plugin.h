/* moss_plugin.h - the moss backend plugin ABI, version 2.
 *
 * A plugin is a shared library that adds a device to moss without
 * rebuilding it. A target XML names it on a device:
 *
 *   <device id="npu" kind="npu" backend="plugin:NAME" plugin="libNAME.so">
 *
 * (plugin= is a path relative to the XML file, or absolute). moss opens it
 * with dlopen() at compile time and libmossrt opens it again at run time.
 * The library exports three functions with C linkage:
 *
 *   uint32_t moss_plugin_abi_version(void);
 *       returns MOSS_PLUGIN_ABI_VERSION as the plugin was built with; moss
 *       refuses any other version before touching anything else.
 *   const moss_plugin_compiler *moss_plugin_compiler_get(void);
 *       the compile side (may return NULL for a runtime-only build).
 *   const moss_plugin_device *moss_plugin_device_get(void);
 *       the runtime side (may return NULL for a compile-only build).
 *
 * Rules both sides keep:
 * - Everything moss passes in is read-only and lives only for the call.
 *   Plugins never see moss's internal structures, only the views below.
 * - Functions return 0 on success and non-zero on failure, with a
 *   NUL-terminated message of at most |errcap| bytes written to |err|
 *   ("what failed and why"; moss adds the node and plugin names).
 * - A plugin must not call exit() or abort(), must not write to stdout,
 *   and must not keep pointers to views after the call returns.
 * - run() must not allocate: allocate in load().
 * - Threads: moss calls the compile side from one thread at a time. The
 *   runtime calls open/load/unload/close from one thread at a time, and may
 *   call run() on different devices or programs concurrently, never on the
 *   same program twice at once.
 *
 * Compatibility: a plugin built against ABI version N works with every moss
 * whose MOSS_PLUGIN_ABI_VERSION is N. Any change to a struct layout or a
 * function's meaning in this file bumps the version.
 *
 * Version 2 (from 1) added what a real accelerator needs: the device's
 * facts from the target XML (moss_plugin_target: clock, MAC rate, memory
 * levels, energy figures and the device's free-form <params>), passed to
 * supports() and lower(); moss's int8 requantization multipliers on each
 * integer node (moss_plugin_node.requant), so a device can be bit-exact
 * with moss's CPU code; and the per-layer counters of the last run
 * (moss_plugin_device.counters, optional). */
#ifndef MOSS_PLUGIN_H
#define MOSS_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MOSS_PLUGIN_ABI_VERSION 2u

/* Put this before the three exported functions so that they stay visible
 * when the plugin is built with -fvisibility=hidden (recommended). */
#if defined(__GNUC__)
#define MOSS_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define MOSS_PLUGIN_EXPORT
#endif

/* Element types: the ONNX TensorProto.DataType codes. */
enum {
  MOSS_PLUGIN_FLOAT = 1,
  MOSS_PLUGIN_UINT8 = 2,
  MOSS_PLUGIN_INT8 = 3,
  MOSS_PLUGIN_INT32 = 6,
  MOSS_PLUGIN_INT64 = 7,
  MOSS_PLUGIN_BOOL = 9,
  MOSS_PLUGIN_DOUBLE = 11
};

#define MOSS_PLUGIN_MAX_RANK 8

/* A tensor: its static shape, and its contents when it is a constant
 * (a weight); |data| is NULL for tensors computed at run time. Within one
 * call, each tensor has exactly one view: the same tensor read by two nodes,
 * or listed in a subgraph's inputs or outputs, is the same pointer, so a
 * plugin may compare pointers to follow the edges of a subgraph. |data|
 * holds the elements in row-major order, in the host's byte order. */
typedef struct moss_plugin_tensor {
  const char *name;
  int32_t dtype;                 /* MOSS_PLUGIN_FLOAT ... */
  int32_t rank;                  /* 0 .. MOSS_PLUGIN_MAX_RANK */
  int64_t dims[MOSS_PLUGIN_MAX_RANK];
  uint64_t nbytes;               /* product of dims x element size */
  const void *data;              /* constant contents, or NULL */
} moss_plugin_tensor;

enum {
  MOSS_PLUGIN_ATTR_FLOAT = 1,
  MOSS_PLUGIN_ATTR_INT = 2,
  MOSS_PLUGIN_ATTR_STRING = 3,
  MOSS_PLUGIN_ATTR_TENSOR = 4,    /* present, contents not exposed in ABI 1 */
  MOSS_PLUGIN_ATTR_GRAPH = 5,     /* present, contents not exposed in ABI 1 */
  MOSS_PLUGIN_ATTR_FLOATS = 6,
  MOSS_PLUGIN_ATTR_INTS = 7,
  MOSS_PLUGIN_ATTR_STRINGS = 8    /* present, contents not exposed in ABI 1 */
};

/* A node attribute; only the fields of its |kind| are meaningful (the ONNX
 * AttributeProto type codes). A plugin declines a node whose attribute it
 * cannot read rather than guessing. */
typedef struct moss_plugin_attr {
  const char *name;
  int32_t kind;                  /* MOSS_PLUGIN_ATTR_* */
  int32_t count;                 /* elements of ints / floats */
  int64_t i;
  double f;
  const char *s;
  const int64_t *ints;
  const float *floats;
} moss_plugin_attr;

/* One memory level of the device, innermost first, as the target XML gives
 * it; a figure the XML does not give is 0 (sizes, bandwidth, latency) or
 * negative (pj_per_byte: "not-modeled"). */
typedef struct moss_plugin_level {
  const char *name;
  uint64_t size_bytes;
  double bandwidth_gbps;         /* GB/s the whole device draws */
  double latency_ns;
  double pj_per_byte;
} moss_plugin_level;

/* A free-form fact of the device for its plugin: <param name=".." value=".."/>
 * in the device's <params> in the target XML (array sizes, buffer splits...).
 * The plugin documents its own names and checks their values. */
typedef struct moss_plugin_param {
  const char *name, *value;
} moss_plugin_param;

/* The device a plugin compiles for, from the target XML (after inherit=).
 * A figure the XML does not give is 0, or negative for the energy figures. */
typedef struct moss_plugin_target {
  const char *target;            /* the target's name */
  const char *device;            /* the device's id */
  double clock_mhz;
  int32_t units;
  double macs_per_cycle_i8;      /* per unit */
  double pj_per_mac_i8;
  double idle_w, active_w;
  int32_t nlevels, nparams;
  const moss_plugin_level *levels;
  const moss_plugin_param *params;
} moss_plugin_target;

/* One requantization multiplier, as moss computes it (docs/numerics-int8.md):
 * the real multiplier M = mult * 2^-31 * 2^-shift, applied to an int32 |acc|
 * as round(acc * mult / 2^(31 + shift)), ties to even, in exact int64
 * arithmetic (s = 31 + shift >= 63 gives 0), saturated to int32. */
typedef struct moss_plugin_requant {
  int32_t mult;
  int32_t shift;
} moss_plugin_requant;

/* Fused activations moss may have folded into a node (after its op). */
enum {
  MOSS_PLUGIN_ACT_NONE = 0,
  MOSS_PLUGIN_ACT_RELU = 1,
  MOSS_PLUGIN_ACT_CLIP = 2,        /* act_alpha = min, act_beta = max */
  MOSS_PLUGIN_ACT_LEAKY_RELU = 3,  /* act_alpha */
  MOSS_PLUGIN_ACT_SIGMOID = 4,
  MOSS_PLUGIN_ACT_TANH = 5
};

/* A node: an ONNX operator after moss's rewrites. Absent optional inputs
 * and outputs are NULL entries.
 *
 * Integer nodes (moss's int8 path, docs/qdq.md) carry moss's requantization
 * multipliers in |requant| (|nrequant| entries; 0 and NULL for other
 * nodes). acc is the exact int32 sum, y_zp the output zero point, and the
 * int attributes qmin/qmax (when present) narrow the output's range:
 *   QLinearConv, MossQGemm: one per output channel (or one for all):
 *       y = clamp(y_zp + R[o](bias[o] + sum (x - x_zp)(w - w_zp[o])), qmin, qmax)
 *   QLinearMatMul (scalar scales only): one, as above without bias.
 *   MossQAdd: three: a' = R[0]((a - a_zp) * 2^20), b' = R[1]((b - b_zp) * 2^20),
 *       y = clamp(y_zp + R[2](a' + b'), qmin, qmax)
 *   MossQMul: one: y = clamp(y_zp + R[0]((a - a_zp) * (b - b_zp)), qmin, qmax)
 *   MossQAvgPool: one per tap count c = 0 .. kernel size (global: one entry
 *       for the whole plane): y = clamp(y_zp + R[c](sum over the c taps
 *       inside the window of (x - x_zp)), qmin, qmax)
 * where R(v) is the rounding of moss_plugin_requant, saturated to int32,
 * and the final result saturates to the output type's range. */
typedef struct moss_plugin_node {
  const char *name;
  const char *op_type;           /* ONNX op_type, e.g. "Add" */
  const char *domain;            /* "" for the default ONNX domain */
  int32_t ninputs, noutputs, nattrs;
  int32_t act;                   /* MOSS_PLUGIN_ACT_* */
  float act_alpha, act_beta;
  const moss_plugin_tensor *const *inputs;
  const moss_plugin_tensor *const *outputs;
  const moss_plugin_attr *attrs;
  int32_t nrequant;
  const moss_plugin_requant *requant;
} moss_plugin_node;

/* A subgraph given to the plugin: its nodes in a valid execution order,
 * the tensors it reads that are computed outside it (in the order run()
 * receives them) and the tensors it produces for others (in the order run()
 * fills them). Constants are not among |inputs|: they are reachable through
 * the nodes, and the plugin copies what it needs into its blob. */
typedef struct moss_plugin_subgraph {
  int32_t nnodes, ninputs, noutputs;
  const moss_plugin_node *const *nodes;
  const moss_plugin_tensor *const *inputs;
  const moss_plugin_tensor *const *outputs;
} moss_plugin_subgraph;

/* Where lower() writes its blob; may be called any number of times, the
 * pieces are concatenated. Returns 0, or non-zero when out of memory (the
 * plugin then fails too). */
typedef struct moss_plugin_sink {
  void *user;
  int (*write)(void *user, const void *data, uint64_t nbytes);
} moss_plugin_sink;

/* A device's own compile-time estimate of one node run alone (its cost
 * model): cycles of its clock, and the bytes the node moves at each memory
 * level of moss_plugin_target.levels (same index). moss prices the bytes
 * and the MACs with the target's figures, as for any device. */
typedef struct moss_plugin_estimate {
  double cycles;
  double level_bytes[MOSS_PLUGIN_MAX_RANK];  /* levels 0 .. min(nlevels, 8) - 1 */
} moss_plugin_estimate;

/* The compile side. */
typedef struct moss_plugin_compiler {
  uint32_t abi_version;          /* MOSS_PLUGIN_ABI_VERSION */
  uint32_t struct_size;          /* sizeof(moss_plugin_compiler) */
  const char *name;              /* the NAME of backend="plugin:NAME" */
  /* 1: the plugin takes |node| on device |t|. 0: it does not, and |why|
   * says why in a few words ("no Softmax", "rank 5 > 4"); moss shows it in
   * --explain. A device whose <params> the plugin cannot use declines every
   * node, saying what is wrong with them. */
  int (*supports)(const moss_plugin_target *t, const moss_plugin_node *node, char *why,
                  size_t whycap);
  /* Lowers |sg| (only nodes supports() took) for device |t| to a blob the
   * runtime side loads; 0 on success. The blob must carry whatever of |t|
   * the runtime side needs: the runtime does not read the target XML. */
  int (*lower)(const moss_plugin_target *t, const moss_plugin_subgraph *sg,
               const moss_plugin_sink *sink, char *err, size_t errcap);
  /* Optional (NULL: moss's roofline estimates the device): 1 and |*out|
   * (zeroed by moss first) for a node supports() takes, when the plugin
   * can estimate it; 0 otherwise. moss's cost report, `--report`, `moss
   * compare` and placement by cost then use these cycles and bytes. */
  int (*estimate)(const moss_plugin_target *t, const moss_plugin_node *node,
                  moss_plugin_estimate *out);
} moss_plugin_compiler;

/* What one layer (one node of the subgraph a blob was lowered from) cost in
 * the device's last run(), as the device counts it: a simulator's counters,
 * or a real device's performance counters. Cycles are of the device's
 * clock; a unit's busy cycles may overlap the others' (DMA beside compute).
 * Figures a device does not count are 0. */
typedef struct moss_plugin_counters {
  const char *layer;             /* the node's name, as lower() saw it */
  const char *op_type;
  uint64_t cycles;               /* from the layer's first command to its last */
  uint64_t dma_cycles, array_cycles, vector_cycles; /* busy cycles per unit */
  uint64_t stall_cycles;         /* compute waiting on DMA or DMA on compute */
  uint64_t macs;                 /* multiply-accumulates done */
  uint64_t peak_macs_per_cycle;  /* the array's: utilization = macs / (cycles x this) */
  uint64_t dram_read_bytes, dram_write_bytes;
  uint64_t sram_read_bytes, sram_write_bytes;
  uint64_t sram_peak_bytes;      /* the most on-chip memory the layer held at once */
  double clock_mhz;
  double energy_pj;              /* from the figures the blob carries; < 0: not modeled */
} moss_plugin_counters;

/* The runtime side: a device driver. Buffers are host pointers in the
 * caller's memory, 64-byte aligned, each as large as its tensor's nbytes;
 * the buffers of one run() never overlap. A device with memory of its own
 * copies (DMA) inside run(). A blob has no particular alignment: read its
 * multi-byte fields with memcpy(). */
typedef struct moss_plugin_device {
  uint32_t abi_version;          /* MOSS_PLUGIN_ABI_VERSION */
  uint32_t struct_size;          /* sizeof(moss_plugin_device) */
  const char *name;
  int (*open)(void **dev, char *err, size_t errcap);
  /* Checks and loads a blob made by lower(); |blob| stays valid until
   * unload(). A blob is input like any file: load() checks every field and
   * fails with a message on a truncated or corrupt one, never crashes. */
  int (*load)(void *dev, const void *blob, uint64_t nbytes, void **prog, char *err,
              size_t errcap);
  /* Runs one loaded blob: |inputs| and |outputs| in the subgraph's order. */
  int (*run)(void *dev, void *prog, const void *const *inputs, void *const *outputs, char *err,
             size_t errcap);
  void (*unload)(void *dev, void *prog);
  void (*close)(void *dev);
  /* Optional (NULL: the device counts nothing): the counters of |prog|'s
   * last run(), one per layer in the subgraph's node order, in an array
   * that |prog| owns (allocated in load()) and that stays valid until the
   * next run() or unload(); 0 on success. Before any run the counts are 0. */
  int (*counters)(void *dev, void *prog, const moss_plugin_counters **out, uint32_t *out_n,
                  char *err, size_t errcap);
} moss_plugin_device;

/* The exported entry points, as function pointer types for dlsym(). */
typedef uint32_t (*moss_plugin_abi_version_fn)(void);
typedef const moss_plugin_compiler *(*moss_plugin_compiler_get_fn)(void);
typedef const moss_plugin_device *(*moss_plugin_device_get_fn)(void);

#ifdef __cplusplus
}
#endif

#endif
