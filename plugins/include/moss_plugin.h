/* moss_plugin.h - the moss backend plugin ABI, version 1.
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
 * function's meaning in this file bumps the version. */
#ifndef MOSS_PLUGIN_H
#define MOSS_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MOSS_PLUGIN_ABI_VERSION 1u

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
 * and outputs are NULL entries. */
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

/* The compile side. */
typedef struct moss_plugin_compiler {
  uint32_t abi_version;          /* MOSS_PLUGIN_ABI_VERSION */
  uint32_t struct_size;          /* sizeof(moss_plugin_compiler) */
  const char *name;              /* the NAME of backend="plugin:NAME" */
  /* 1: the plugin takes |node|. 0: it does not, and |why| says why in a few
   * words ("no Softmax", "rank 5 > 4"); moss shows it in --explain. */
  int (*supports)(const moss_plugin_node *node, char *why, size_t whycap);
  /* Lowers |sg| (only nodes supports() took) to a blob the runtime side
   * loads; 0 on success. */
  int (*lower)(const moss_plugin_subgraph *sg, const moss_plugin_sink *sink, char *err,
               size_t errcap);
} moss_plugin_compiler;

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
} moss_plugin_device;

/* The exported entry points, as function pointer types for dlsym(). */
typedef uint32_t (*moss_plugin_abi_version_fn)(void);
typedef const moss_plugin_compiler *(*moss_plugin_compiler_get_fn)(void);
typedef const moss_plugin_device *(*moss_plugin_device_get_fn)(void);

#ifdef __cplusplus
}
#endif

#endif
