/* cost.h - the cost and energy model (DESIGN.md "Energy"): what one inference
 * of a planned graph costs on a target, per node and in total: MACs (dense and
 * effective), bytes moved per memory level, a roofline estimate of cycles and
 * time, energy by the formula
 *
 *   E = sum effective MACs x pJ/MAC(dtype) + sum bytes x pJ/byte(level) + static power x time
 *
 * next to the platform-model figure (active power x time), carbon per
 * inference and per million inferences, the arena and weight sizes, and the
 * same graph costed as fp32 and dense (the baseline that shows what pruning
 * and int8 save). Every figure carries the label of where it came from; a
 * missing figure is "not-modeled", never a silent 0. The rules (which op
 * counts MACs, which level a tensor is read from, ...) are in docs/report.md.
 *
 * report.c writes a report as JSON, CSV (CodeCarbon's column names where the
 * meaning matches) or one self-contained HTML file. Nothing here is
 * thread-safe; a finished report is read-only and may be shared. */
#ifndef MOSS_COST_H
#define MOSS_COST_H

#include "../ir/ir.h"
#include "../target/target.h"

/* Memory levels costed per device; a device with more is refused (target). */
#define MOSS_COST_MAX_LEVELS 8
/* The grid intensity used when the user gives none: IEA 2019 world average,
 * CodeCarbon's fallback, in gCO2e/kWh. */
#define MOSS_COST_GRID_FALLBACK 475.0

typedef struct moss_cost_opts {
  double grid_g_per_kwh;  /* <= 0: 475, flagged as the world-average fallback */
  int steps;              /* 1: n->segment numbers the EXEC steps of the bundle to be written
                           * (moss_bundle_steps), which moss_cost_node.step records */
  /* Non-NULL (the partition stage, right after placing): where the fp32
   * twin of each node goes (docs/report.md, "The baseline"), by g->nodes
   * index, for moss_node.twin_device; the partitioner's rule on the twins'
   * own times, with: */
  int *twin_device;
  int host_only;          /* 1: every node was placed on the host alone
                           * (moss_partition_opts.host_only): so is every twin */
  /* whether device |d| may run the twin of |n| (the partitioner's rule for
   * a node computing in f32); NULL: every device */
  int (*twin_accepts)(void *user, int d, const moss_node *n);
  void *twin_user;
  /* A device's own estimate of |n| (a plugin's cost model,
   * moss_backend_device_estimate): 1 with the cycles and the bytes at each
   * of the device's |nlevels| memory levels, which then replace the
   * roofline's (the bytes still priced by the target's figures); 0: the
   * roofline. NULL: the roofline everywhere. Not asked for the baseline. */
  int (*estimate)(void *user, int d, const moss_node *n, double *out_cycles,
                  double *out_level_bytes, int nlevels);
  void *estimate_user;
} moss_cost_opts;

/* A number and where it came from. |label| is one of "op-model",
 * "platform-model", "datasheet", "estimate", "measured:<how>" (the first word
 * of the XML source attribute) or "not-modeled"; |source| is the full text
 * behind it (the XML source attribute, or how moss derived the number). A
 * not-modeled figure has |value| 0 and must not be read as a zero: writers
 * print it as JSON null, an empty CSV cell, "not-modeled" in HTML. Figures
 * summed from parts of different labels carry the label of the parts when
 * they agree, else "op-model" with |partial| set when a part is missing. */
typedef struct moss_cost_figure {
  double value;
  const char *label;
  const char *source;
  int partial;            /* a sum with at least one not-modeled part: a lower bound */
} moss_cost_figure;

/* Sparse weight formats the report lists, in the order of their codes
 * (MOSS_SPARSE_* of compiler/ops/sparse.h): dense, csr, block4x1,
 * block1x4, 2:4. */
#define MOSS_COST_SPARSE_FORMATS 6

/* One node, in execution order. Energies in joules, times in seconds. */
typedef struct moss_cost_node {
  const char *name, *op_type;
  int device;                   /* index in the target */
  /* The EXEC step of the bundle's plan that runs it, counting EXEC steps
   * only (0, 1, ...: compiler/driver/emit.h moss_bundle_steps); -1 when
   * there is none (no bundle is written: moss_cost_opts.steps 0). */
  int step;
  const char *dtype;            /* compute dtype: "f32", "i8", ... */
  int mac_op;                   /* 1: counts MACs; 0: counts ops (elementwise, pooling...) */
  double macs_dense;
  /* The multiply-adds the emitted kernel performs, priced at mac_pj: the
   * dense MACs for a dense kernel; for a sparse format, those of the values
   * it stores (docs/report.md). Equals macs_dense in the baseline. */
  double macs_effective;
  /* The work the compute time is costed on, in dense multiply-adds: the
   * dense MACs, or the sparse format's estimate (docs/sparse.md) times the
   * output rows or positions. */
  double macs_timed;
  double weight_density;        /* share of non-zero weight elements; 1 with no constant weight */
  /* The weight format (docs/sparse.md) of a node the sparse pass looks at
   * (|sparse_layer| 1; 0 for every other node and in the baseline): the
   * format the pass chose (n->sparse) and the cost rule's estimate of each
   * format, in dense multiply-adds per output row or position, indexed by
   * format code; negative where the weight cannot take the format. */
  int sparse_layer;
  const char *sparse_format;    /* "dense", "csr", "block4x1", "block1x4", "2:4", "columns" */
  const char *sparse_rule;      /* the kernels the estimates are for (moss_sparse_rule_name) */
  double sparse_cost[MOSS_COST_SPARSE_FORMATS];
  double ops;                   /* non-MAC element operations; their energy is not-modeled */
  double act_bytes;             /* activations read + written */
  double weight_bytes;          /* constant inputs read, as emitted (sparse arrays, int8
                                 * tables; scalar scales and zero points are immediates) */
  int act_level, weight_level;  /* level index of the node's device */
  double bytes[MOSS_COST_MAX_LEVELS];   /* per level of the node's device */
  /* (macs_timed + ops) / (MACs per cycle for the dtype x the device's
   * threads); not-modeled when the device has no rate for the dtype and there
   * is work; exactly 0 with no work. */
  moss_cost_figure compute_cycles;
  /* bytes / bandwidth x clock per level; not-modeled for a level with bytes
   * and no bandwidth (or a device without a clock); exactly 0 with no bytes. */
  moss_cost_figure mem_cycles[MOSS_COST_MAX_LEVELS];
  double cycles;                /* max(compute, each level), over the modeled ones */
  moss_cost_figure time_s;
  moss_cost_figure mac_pj;      /* pJ per MAC of |dtype| used */
  moss_cost_figure compute_j;   /* macs_effective x mac_pj */
  moss_cost_figure mem_j[MOSS_COST_MAX_LEVELS];
  moss_cost_figure static_j;    /* idle power x time */
  moss_cost_figure energy_j;    /* op-model sum of the above */
  /* With a measurement (moss_cost_report.measured): the node's time on this
   * machine, labelled "measured:clock" (the median over the profiled runs of
   * the clock read around its step), or, for a node that shares its step
   * with others (a plugin's blob), "measured:clock" with |partial| 0 and a
   * source saying it is the step's time split by the estimates. Not-modeled
   * when its step took no measurable time apart (never a silent 0). */
  moss_cost_figure measured_s;
} moss_cost_node;

/* A value produced on one device and read on another. */
typedef struct moss_cost_transfer {
  const char *value;
  int from, to;                 /* device indices */
  double bytes;
  moss_cost_figure time_s;      /* bytes / the slower side's bandwidth */
  moss_cost_figure energy_j;    /* bytes x (pJ/B at the source level + at the destination level) */
} moss_cost_transfer;

/* One device of the target and what it spends. */
typedef struct moss_cost_device {
  const char *id, *kind, *model; /* |model|: codegen cpu, else the target description */
  /* What compute time divides by: 1 for a cpu (the generated code runs one
   * thread), the device's units for a gpu or npu (1 when not given). */
  int threads;
  const char *power_shared;      /* <power shared="NAME">: the supply, counted once; or NULL */
  int nlevels;
  const char *level_name[MOSS_COST_MAX_LEVELS];
  double bytes[MOSS_COST_MAX_LEVELS];
  moss_cost_figure mem_j[MOSS_COST_MAX_LEVELS];
  moss_cost_figure compute_j, static_j;
  moss_cost_figure energy_j;     /* op-model: its nodes' energy */
  /* Sum of its nodes' time (estimate); partial when some node's time is,
   * not-modeled when none is modeled (no clock); exactly 0 with no node. */
  moss_cost_figure busy_s;
  /* Active W x busy + idle W x (total time - busy). Devices drawing one
   * shared supply count it once: the first of them carries the supply's
   * figure (busy = their summed busy time), the others exactly 0, their
   * source naming the device that carries it. */
  moss_cost_figure platform_j;
  /* The power figures the platform model used (has_power 0: none), and the
   * device that carries its supply (itself unless <power shared=...>). */
  int has_power;
  double idle_w, active_w;
  const char *power_source;
  int supply;
  /* With a measurement: busy_s and platform_j again from the measured
   * times of its nodes ("measured:clock"). */
  moss_cost_figure measured_busy_s, measured_platform_j;
} moss_cost_device;

/* Totals of one costing (the graph as planned, or its fp32-dense baseline). */
typedef struct moss_cost_totals {
  double macs_dense, macs_effective, ops;
  double act_bytes, weight_read_bytes; /* moved by the nodes, summed */
  double cycles;                 /* sum over nodes */
  moss_cost_figure time_s;       /* nodes and transfers, one after the other */
  moss_cost_figure compute_j, mem_j, static_j, transfer_j;
  moss_cost_figure energy_j;     /* op-model: the DESIGN formula, nodes + transfers */
  moss_cost_figure platform_j;   /* platform-model: sum over devices */
  double kwh;                    /* energy_j in kWh */
  moss_cost_figure carbon_g;     /* gCO2e per inference, from energy_j */
  moss_cost_figure carbon_g_per_million; /* gCO2e per 10^6 inferences */
  moss_cost_figure platform_carbon_g;    /* from platform_j */
  int64_t arena_bytes, weight_bytes;
} moss_cost_totals;

typedef struct moss_cost_report {
  moss_arena *arena;             /* owns every string and array below */
  const char *model, *target, *target_description;
  const char *run_id;            /* 16 hex digits: a hash of model, target and totals */
  char run_id_buf[17];
  double grid_g_per_kwh;
  int grid_fallback;             /* 1: the 475 world-average fallback was used */
  int nomem;                     /* a string could not be kept: the costing fails */
  int nnodes;
  moss_cost_node *nodes;
  int ndevices;
  moss_cost_device *devices;
  int ntransfers;
  moss_cost_transfer *transfers;
  moss_cost_totals total;        /* the graph as planned */
  /* The model's fp32 dense twin: every MAC at the f32 figures, weights
   * dense, 4-byte elements, without the Quantize/Dequantize nodes and the
   * integer ops' quantization parameters (docs/report.md). */
  moss_cost_totals baseline;
  /* A measurement of the compiled artifact on this machine (moss compile
   * --profile; moss_cost_set_measured), 0: none, and the figures below are
   * unset. */
  int measured;
  int measured_runs;             /* runs the medians are taken over */
  const char *measured_how;      /* one line: the runs, the clock, the machine */
  moss_cost_figure measured_time_s;      /* median time of a whole run, "measured:clock" */
  /* active W x measured busy + idle W x the rest, per device and summed:
   * the platform model fed with measured time, labelled "measured:clock". */
  moss_cost_figure measured_platform_j;
  moss_cost_figure measured_platform_carbon_g;
  /* An energy counter read over a window of at least 1 s of runs, per run:
   * "measured:rapl" or "measured:nvml" (what it covers in the source: a
   * whole CPU package or GPU, not only this model); not-modeled with the
   * reason when the machine has none. */
  moss_cost_figure measured_energy_j;
} moss_cost_report;

/* Costs |g| (sorted, shapes inferred, planned, n->device set) on |t|. On
 * success |*out| is a new report the caller frees with moss_cost_destroy. On
 * failure it is NULL; errors: MOSS_E_NOMEM; MOSS_E_INTERNAL for a node whose
 * device index is not one of |t|'s; MOSS_E_TARGET for a device with more than
 * MOSS_COST_MAX_LEVELS memory levels; MOSS_E_INVALID_MODEL for a value whose
 * shape is unknown. Figures missing in |t| are not errors: they are labelled
 * not-modeled. */
moss_status moss_cost_compute(moss_ctx *ctx, const moss_graph *g, const moss_target *t,
                              const moss_cost_opts *opts, moss_cost_report **out);
/* Seconds to move |bytes| from device |from| to device |to| of |t|, for
 * placement by cost before planning (compiler/driver/pipeline.c): the
 * larger latency of the two devices' outermost writable levels, where data
 * that crosses devices lives, plus bytes / the slower of their bandwidths
 * (the one given where only one is: a lower bound); < 0 when neither
 * level gives a bandwidth or a latency. */
double moss_cost_transfer_seconds(const moss_target *t, int from, int to, double bytes);
/* Names the model in the reports (project_name; by default the graph's
 * name): the pipeline passes the model file's stem. Copies |name| and
 * recomputes run_id. MOSS_E_NOMEM leaves the report as it was. */
moss_status moss_cost_set_model(moss_ctx *ctx, moss_cost_report *r, const char *name);
/* What a profile of the artifact measured (compiler/driver/profile.c):
 * node i (r->nodes order) ran in step |node_step[i]| of the plan (< 0: in
 * none), whose median time over |runs| runs was |step_s[step]| seconds
 * (|nsteps| entries); nodes that share a step (a plugin's blob) split its
 * time in proportion to their estimates. |total_s|: the median of whole
 * runs. |how|: one line saying how it was measured (copied). |counter|
 * (may be NULL): an energy counter's joules per run, measured:rapl|nvml,
 * or not-modeled with the reason. Fills the measured_* figures and sets
 * r->measured. MOSS_E_NOMEM leaves r->measured 0. */
moss_status moss_cost_set_measured(moss_ctx *ctx, moss_cost_report *r, const int *node_step,
                                   const double *step_s, int nsteps, double total_s, int runs,
                                   const char *how, const moss_cost_figure *counter);
/* Frees |r|; NULL is a no-op. */
void moss_cost_destroy(moss_ctx *ctx, moss_cost_report *r);

/* |num| / |den| as a figure: not-modeled when either is, or |den| is 0;
 * otherwise labelled "op-model" and |partial| when either side is partial
 * (a lower bound), so the ratio is neither exact nor a bound and must be
 * shown as such; its source says which side is partial. The source text is
 * static or |num|'s / |den|'s own. */
moss_cost_figure moss_cost_ratio(const moss_cost_figure *num, const moss_cost_figure *den);

/* One line for the terminal, without a newline:
 * "moss: cost on <target>: 1.23 µs, 4.5 µJ (op-model), 9 µJ (platform-model),
 *  0.0006 mgCO2e (grid 475, fallback), arena N B, weights M B". Truncated to |cap|. */
void moss_cost_summary(const moss_cost_report *r, char *buf, size_t cap);

/* Writes the report to |path| in the format its extension names (.json .csv
 * .html); any other extension, or a write failure, is MOSS_E_IO. */
moss_status moss_report_write(moss_ctx *ctx, const moss_cost_report *r, const char *path);
/* The JSON text (the bundle carries it), appended to |out| (NUL-terminated).
 * MOSS_E_NOMEM when |out| failed to grow. */
moss_status moss_report_json(moss_ctx *ctx, const moss_cost_report *r, moss_buf *out);
moss_status moss_report_csv(moss_ctx *ctx, const moss_cost_report *r, moss_buf *out);
moss_status moss_report_html(moss_ctx *ctx, const moss_cost_report *r, moss_buf *out);

/* The HTML pieces of the cost report, for the other pages moss writes
 * (`--budget`'s, compiler/driver/budget.c): |s| escaped for text and
 * attributes; a node name with break opportunities after its separators;
 * |v| in three digits with an SI prefix ("1.08 µJ"; "?" when not finite);
 * the report's style sheet (the rules inside <style>). */
void moss_report_html_text(moss_buf *b, const char *s);
void moss_report_html_name(moss_buf *b, const char *s);
void moss_report_html_si(char *buf, size_t cap, double v, const char *unit);
extern const char moss_report_html_style[];

/* The table printed by `moss compare` (compiler/driver/compare.c, whose
 * moss_compare_cli is declared in driver.h), for |n| targets into |out|; |reports[i]| NULL
 * means target |i| failed for the reason |errors[i]|. */
void moss_compare_table(const char *const *targets, moss_cost_report *const *reports,
                        const char *const *errors, int n, moss_buf *out);

#endif
