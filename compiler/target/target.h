/* target.h - the target model: a target XML file (targets/NAME.xml, checked
 * against targets/moss-target.xsd) turned into an immutable moss_target that
 * the partitioner, the planner, the cost and energy model and the backends
 * read. Only target.c sees libxml2; nothing here exposes it.
 *
 * A target has one or more devices (index 0 .. moss_target_device_count()-1,
 * in file order, a parent's devices first). Every string returned below is
 * borrowed from the target and lives until moss_target_destroy(). Loading is
 * not thread-safe (it installs libxml2 error handlers for the calling
 * thread); a loaded target is read-only and may be shared between threads. */
#ifndef MOSS_TARGET_H
#define MOSS_TARGET_H

#include <stddef.h>
#include <stdint.h>

#include "../base/base.h"

typedef struct moss_target moss_target; /* immutable once loaded */

/* Loads a target. |name_or_path| is a file path when it contains '/' or ends
 * in ".xml"; otherwise it is a target name, looked up as <dir>/<name>.xml
 * where <dir> is $MOSS_TARGETS_DIR if set, else the compiled-in
 * MOSS_TARGETS_DIR; the file's name attribute must then equal that name.
 * NULL means "host"; for "host" (by name, not by path) the figures the running
 * machine can report replace host.xml's estimates, each relabelled
 * measured:<how>: the online CPUs (sysconf), the clock (/proc/cpuinfo "cpu
 * MHz"), the cache sizes (sysconf, else /sys/devices/system/cpu/cpu0/cache;
 * an l3 level is added when the machine has one), the DRAM size (sysconf),
 * the x86 codegen features (cpuid, through __builtin_cpu_supports) and the
 * CPU's model name in the description; what cannot be read keeps host.xml's
 * figure. The file is validated against <dir>/moss-target.xsd,
 * then inherit= is resolved (the parent is looked up next to the file, then
 * in <dir>; devices with the same id are merged field by field, the child's
 * fields winning; cycles are detected).
 * On success |*out_target| is a new target the caller destroys. On failure it
 * is NULL and every problem has been reported through moss_fail() as
 * "<file>:<line>: <what>" with category target: a missing file, malformed XML
 * (the first parse error), each schema violation, an unknown or cyclic
 * inherit=, a device without kind or backend, an unknown fallback device.
 * Returns MOSS_OK, MOSS_E_TARGET, or MOSS_E_NOMEM. */
moss_status moss_target_load(moss_ctx *ctx, const char *name_or_path, moss_target **out_target);
/* Appends every fact of |t| as `moss targets show` prints them, without the
 * paths of its files (a plugin library by its file name): the resolved
 * description the cache key hashes (for "host", what this machine said). */
void moss_target_describe(const moss_target *t, moss_buf *out);
/* Frees |t| and everything borrowed from it; NULL is a no-op. |ctx| must use
 * the allocator |t| was loaded with. */
void moss_target_destroy(moss_ctx *ctx, moss_target *t);

const char *moss_target_name(const moss_target *t);
const char *moss_target_vendor(const moss_target *t);
const char *moss_target_description(const moss_target *t);
/* The file |t| was loaded from (the child's, when it inherits). */
const char *moss_target_path(const moss_target *t);
/* The parent target's name; NULL when |t| inherits nothing. */
const char *moss_target_inherit(const moss_target *t);
/* Index of the device that takes what no other device supports; -1: none. */
int moss_target_fallback(const moss_target *t);
/* 1 when the target's placement="cost": each node goes to the device that
 * takes it at the least estimated time, transfers included
 * (passes/partition.c); 0 ("first", the default): to the first device, in
 * file order, that takes it. */
int moss_target_placement_cost(const moss_target *t);
/* The device graph inputs and outputs live on (the host of the other
 * devices): the fallback device, else the first cpu, else device 0. */
int moss_target_host_device(const moss_target *t);

int moss_target_device_count(const moss_target *t);
/* |i| must be a valid device index for all moss_target_device_* below. */
const char *moss_target_device_id(const moss_target *t, int i);
const char *moss_target_device_kind(const moss_target *t, int i);    /* "cpu", "gpu", "npu" */
const char *moss_target_device_backend(const moss_target *t, int i); /* "c", "plugin:x"... */
/* Index of the device called |id|; -1 when there is none. */
int moss_target_device_find(const moss_target *t, const char *id);
/* A <codegen> attribute by its XML name ("triple", "cpu", "features",
 * "opencl-version", "spirv-version", "opencl-extensions", "spirv-capabilities",
 * "max-workgroup-size", "subgroup-size", "local-memory-bytes"); NULL when not
 * given. Space-separated lists come back with one space between items. */
const char *moss_target_device_codegen(const moss_target *t, int i, const char *key);
/* The same numeric codegen facts, typed; 0 when not given. */
int moss_target_device_max_workgroup_size(const moss_target *t, int i);
int moss_target_device_subgroup_size(const moss_target *t, int i);
uint64_t moss_target_device_local_memory_bytes(const moss_target *t, int i);
/* The shared library of a backend="plugin:NAME" device: plugin= resolved
 * against the folder of the file that wrote it (through inherit=, the file
 * that set it, not the child's), or as given when absolute; NULL when no file
 * gives plugin=. The file need not exist: the plugin loader says so. */
const char *moss_target_device_plugin(const moss_target *t, int i);

/* The device's <params>: free-form name/value pairs for its plugin
 * (plugins/include/moss_plugin.h moss_plugin_param), a child file's value
 * replacing its parent's of the same name; |k| in [0, count). */
int moss_target_device_param_count(const moss_target *t, int i);
void moss_target_device_param(const moss_target *t, int i, int k, const char **out_name,
                              const char **out_value);

/* Compute: clock in MHz and number of compute units; 0 when not given. */
double moss_target_device_clock_mhz(const moss_target *t, int i);
int moss_target_device_units(const moss_target *t, int i);
/* Peak MACs per cycle per unit for |dtype| ("f32", "i8", ...); 0: not given. */
double moss_target_device_macs_per_cycle(const moss_target *t, int i, const char *dtype);
/* The rate the cost model and the partitioner use for |dtype|: its own
 * figure, or, for an unsigned type without one, its signed twin's (same
 * width, same lanes: "u8" takes "i8"'s), the type whose figure it is in
 * |*out_as|. 0: no rate. */
double moss_target_device_mac_rate(const moss_target *t, int i, const char *dtype,
                                   const char **out_as);
/* The share of that peak the generated code achieves on a kernel class
 * (<achieved kernel="gemm|conv|conv-strided|other" share=...>: "gemm" the
 * register-tiled products of Gemm, MatMul and pointwise Conv, "conv" other
 * convolutions of stride 1, "conv-strided" those with a stride above 1,
 * "other" every op counted in element operations), with its source in
 * |*out_source|; 1 and NULL when the target does not say. */
double moss_target_device_achieved(const moss_target *t, int i, const char *kernel,
                                   const char **out_source);
/* The time each step of the plan adds (<compute step-ns=...>: the call and
 * the loop set-up), in nanoseconds; 0 when not given. */
double moss_target_device_step_ns(const moss_target *t, int i);

/* Energy of one MAC of |dtype| in pJ. Returns 1 and sets |*out_pj| and
 * |*out_source| (the figure's source label) when the device gives one;
 * else returns 0 with them set to 0 and NULL. */
int moss_target_device_mac_pj(const moss_target *t, int i, const char *dtype, double *out_pj,
                              const char **out_source);
/* Idle and active power in W. Returns 1 and sets the outputs when given;
 * else 0 with them set to 0 and NULL. */
int moss_target_device_power(const moss_target *t, int i, double *out_idle_w,
                             double *out_active_w, const char **out_source);
/* The supply device |i|'s power figures belong to when several devices draw
 * one supply (<power shared="NAME">, e.g. a module's power shared by its CPU
 * and GPU): NAME, the same for every device of that supply, whose figures
 * the loader has checked are equal, so they are counted once; NULL when the
 * device's power is its own or not given. */
const char *moss_target_device_power_shared(const moss_target *t, int i);

/* One memory level, a read-only copy of its figures. */
typedef struct moss_target_level {
  const char *name;
  uint64_t size_bytes;        /* 0: not given */
  int read_only;              /* 1: read-only="true" (flash, ROM): weights only */
  double bandwidth_gbps;      /* 0: not given */
  double latency_ns;          /* 0: not given */
  int has_energy;             /* 0: source is "not-modeled" */
  double pj_per_byte;
  const char *source;         /* of pj_per_byte; never NULL */
  const char *perf_source;    /* of size, bandwidth, latency; NULL: not given */
} moss_target_level;

/* Memory levels of device |i|, innermost first; |k| in [0, count). */
int moss_target_device_level_count(const moss_target *t, int i);
void moss_target_device_level(const moss_target *t, int i, int k, moss_target_level *out_level);

/* Whether device |i| lists |op_type| (an ONNX op_type) for |dtype|: 1 yes,
 * 0 no, -1 the device has no <ops> list (its backend decides). */
int moss_target_device_supports(const moss_target *t, int i, const char *op_type,
                                const char *dtype);

/* What moss_target_device_accepts() needs to know of one node. */
typedef struct moss_target_node_facts {
  const char *op_type;        /* ONNX op_type */
  const char *dtype;          /* the node's compute type: "f32", "i8", ... */
  int rank;                   /* rank of the first output; 0: unknown */
  int kernel[2];              /* kernel h, w of Conv/ConvTranspose/pool ops; 0: none */
  int stride[2];              /* 0: none */
  int64_t in_channels, out_channels; /* 0: not applicable */
} moss_target_node_facts;
/* Whether device |i| takes a node with these facts: 1 yes; 0 no, with |why|
 * naming the failing constraint and where it is written, e.g.
 * "Conv kernel 11 > max-kernel 7 (npu-systolic.xml:41)" or "no Softmax
 * for i8 in its <ops> (npu-systolic.xml:33)"; -1 the device has no <ops>
 * list (its backend decides). A NULL |dtype| or a zero field is not checked.
 * |why| (|whycap| bytes, may be NULL or 0) is set to "" unless the answer is
 * 0; the message is truncated to fit. Never allocates. */
int moss_target_device_accepts(const moss_target *t, int i, const moss_target_node_facts *f,
                               char *why, size_t whycap);

/* Implements `moss targets [list | show NAME | validate FILE.xml]`; |argv[0]| is
 * "targets" and no subcommand means list. Prints results to stdout and
 * reports errors through |ctx|. list prints one line per target of the
 * targets folder, sorted by name; show prints every parsed field; validate
 * prints "FILE: valid". Returns MOSS_OK, or the first failure's status
 * (MOSS_E_TARGET for bad usage) after trying every target for list. */
moss_status moss_targets_cli(moss_ctx *ctx, int argc, char **argv);

#endif
