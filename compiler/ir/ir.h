/* ir.h - the moss graph IR: values (tensors), nodes and attributes, all
 * living in one arena owned by the graph. Every pass reads and rewrites this;
 * every backend emits from it. Operators are listed once, in ops.def. */
#ifndef MOSS_IR_H
#define MOSS_IR_H

#include "../base/base.h"

#define MOSS_MAX_RANK 8

/* Element types; the numbers are ONNX's TensorProto.DataType codes. */
typedef enum moss_dtype {
  MOSS_DT_UNDEF = 0,
  MOSS_DT_F32 = 1,
  MOSS_DT_U8 = 2,
  MOSS_DT_I8 = 3,
  MOSS_DT_U16 = 4,
  MOSS_DT_I16 = 5,
  MOSS_DT_I32 = 6,
  MOSS_DT_I64 = 7,
  MOSS_DT_STRING = 8,
  MOSS_DT_BOOL = 9,
  MOSS_DT_F16 = 10,
  MOSS_DT_F64 = 11,
  MOSS_DT_U32 = 12,
  MOSS_DT_U64 = 13,
  MOSS_DT_BF16 = 16,
  MOSS_DT_COUNT_ = 17
} moss_dtype;

/* Size in bytes of one element; 0 for types moss cannot hold. */
size_t moss_dtype_size(moss_dtype dt);
/* Lower-case name ("float32", "int64", "bool", ...); "?" if unknown. */
const char *moss_dtype_name(moss_dtype dt);
/* Short name as in the target schema ("f32", "i8", "bool", ...); "?" if unknown. */
const char *moss_dtype_short(moss_dtype dt);
/* C type used by generated code ("float", "int64_t", "uint8_t" for bool...);
 * NULL when moss cannot compute on the type (string, float16, bfloat16). */
const char *moss_dtype_ctype(moss_dtype dt);
int moss_dtype_is_float(moss_dtype dt);   /* f32, f64 (and f16/bf16) */
/* float16 and bfloat16 are stored as their 16 bits: the type a buffer of
 * |dt| holds (U16 for those two, |dt| itself otherwise). Arithmetic on them
 * is float32's (passes/half.c); Cast converts (kernel/lower_cast.c). */
int moss_dtype_is_half(moss_dtype dt);     /* f16 or bf16 */
moss_dtype moss_dtype_storage(moss_dtype dt);
/* The value of float16 (|dt| F16) or bfloat16 (BF16) bits |h|, exactly. */
double moss_half_to_f64(moss_dtype dt, uint16_t h);
/* |v| as float16 or bfloat16 bits, rounded to nearest even in one step
 * (overflow: infinity; NaN: a quiet NaN). */
uint16_t moss_half_from_f64(moss_dtype dt, double v);
int moss_dtype_is_signed(moss_dtype dt);  /* signed integers */
/* The range of an integer type of at most 32 bits in |*lo|, |*hi|: 1; 0
 * for any other type (what a saturating conversion to it clamps to). */
int moss_dtype_int_range(moss_dtype dt, int64_t *lo, int64_t *hi);

/* Operators: one enumerator per line of ops.def. */
typedef enum moss_op {
  MOSS_OP_UNKNOWN_ = 0,
#define MOSS_OP(name, family, min_in, max_in, min_out, max_out) MOSS_OP_##name,
#include "ops.def"
#undef MOSS_OP
  MOSS_OP_COUNT_
} moss_op;

typedef struct moss_op_info {
  const char *name;   /* ONNX op_type */
  const char *family; /* the behaviour family implementing it */
  int min_in, max_in, min_out, max_out; /* max -1: variadic */
} moss_op_info;

extern const moss_op_info moss_op_infos[MOSS_OP_COUNT_];
moss_op moss_op_find(const char *op_type); /* MOSS_OP_UNKNOWN_ if not listed */

/* The opsets of the default ONNX domain moss reads (21: ONNX 1.16). An
 * operator means what its latest definition at or before the model's
 * opset says; the check pass refuses one that the opset does not have. */
#define MOSS_OPSET_MIN 1
#define MOSS_OPSET_MAX 21

typedef struct moss_node moss_node;
typedef struct moss_list moss_list;

/* A tensor-valued edge of the graph. |data| is non-NULL for constants
 * (initializers, Constant nodes, folded results). Shapes are static once
 * inference has run: rank >= 0 and every dim >= 0. */
typedef struct moss_value {
  const char *name;
  int id;                       /* index in graph->values */
  moss_dtype dtype;
  int rank;                     /* -1: unknown */
  int64_t dims[MOSS_MAX_RANK];  /* -1: unknown (symbolic) */
  const char *dim_param[MOSS_MAX_RANK]; /* symbolic names from ONNX, or NULL */
  void *data;                   /* constant payload (numel * dtype size bytes) */
  moss_node *producer;          /* NULL for inputs and constants */
  int input_index;              /* >= 0: position among graph inputs */
  int output_index;             /* >= 0: position among graph outputs */
  int nuses;                    /* consumers, counted by moss_graph_compute_uses */
  /* A bounded dynamic shape (docs/dynamic-shapes.md): 1 + the axis whose
   * length only the run knows (dims[] holds its upper bound, and the data
   * is laid out for the bound: the rows past the length are padding of no
   * meaning); 0: the shape is static. |length| is the INT64 [1] value that
   * holds that length at run time: the last output of the node that
   * decides it (ops/bounded.c). */
  int bounded;
  struct moss_value *length;
  /* A sequence or an optional (docs/sequences.md): the list of tensor
   * values it holds, known at compile time; NULL: a tensor. Such a value
   * has no storage: inference resolves every operator on it
   * (ops/sequence.c), and a graph output of it is returned as its
   * elements (moss_graph.groups). */
  moss_list *list;
  /* Set by the memory planner. */
  struct moss_value *alias;     /* storage is that of another value (in-place) */
  int64_t offset;               /* arena offset; -1: not in the arena */
} moss_value;

/* What a sequence or optional value holds. An optional holds 0 items
 * (absent) or 1 (a tensor, or a sequence: a value with a list itself). */
typedef enum moss_list_kind {
  MOSS_LIST_SEQUENCE = 1,
  MOSS_LIST_OPTIONAL = 2
} moss_list_kind;

struct moss_list {
  moss_list_kind kind;
  int n;
  struct moss_value **items;
  moss_dtype elem;   /* the elements' type (a sequence's; known when it is empty) */
  int elem_is_list;  /* an optional of a sequence */
};

typedef enum moss_attr_type {
  MOSS_ATTR_UNDEF = 0,
  MOSS_ATTR_FLOAT = 1,
  MOSS_ATTR_INT = 2,
  MOSS_ATTR_STRING = 3,
  MOSS_ATTR_TENSOR = 4,
  MOSS_ATTR_GRAPH = 5,
  MOSS_ATTR_FLOATS = 6,
  MOSS_ATTR_INTS = 7,
  MOSS_ATTR_STRINGS = 8
} moss_attr_type;

/* A GRAPH attribute's graph (If's then_branch and else_branch, Loop's and
 * Scan's body): its nodes,
 * in the order the model lists them, kept out of the graph's node list
 * until inference puts the branch that runs there (passes/control.c); its
 * values are the graph's, named "<node>/<attribute>/<name>" where the
 * subgraph makes them. Values it reads from outside are inputs of the
 * node that owns it, after the node's own (the importer adds them). */
typedef struct moss_subgraph {
  moss_value **inputs; /* a Loop's or Scan's body: its inputs, values no node makes */
  int ninputs;
  moss_node **nodes;
  int nnodes;
  moss_value **outputs;
  int noutputs;
} moss_subgraph;

typedef struct moss_attr {
  const char *name;
  moss_attr_type type;
  int64_t i;
  float f;
  const char *s;        /* NUL-terminated; |slen| bytes (may contain NUL) */
  size_t slen;
  int64_t *ints;
  float *floats;
  const char **strings;
  int n;                /* count of ints / floats / strings */
  moss_value *t;        /* tensor attribute, a constant value not in the graph */
  moss_subgraph *graph; /* GRAPH attribute */
} moss_attr;

/* Activation fused into a producing Conv/Gemm/MatMul by the fusion pass. */
typedef enum moss_act_kind {
  MOSS_ACT_NONE = 0,
  MOSS_ACT_RELU,
  MOSS_ACT_CLIP,       /* alpha = min, beta = max */
  MOSS_ACT_LEAKY_RELU, /* alpha */
  MOSS_ACT_SIGMOID,
  MOSS_ACT_TANH
} moss_act_kind;

typedef struct moss_act {
  moss_act_kind kind;
  float alpha, beta;
} moss_act;

struct moss_node {
  const char *name;
  const char *op_type;
  const char *domain;
  moss_op op;
  int id;                 /* position in graph->nodes after the last sort */
  int ninputs, noutputs;
  moss_value **inputs;    /* an absent optional input is NULL */
  moss_value **outputs;   /* an absent optional output is NULL */
  int nattrs;
  moss_attr *attrs;
  moss_act act;           /* fused activation (Conv, ConvTranspose, Gemm, MatMul) */
  int dead;               /* removed; swept by moss_graph_compact */
  /* Set by the partitioner (compiler/target/partition.c). */
  int device;             /* index of the target device that runs the node */
  int segment;            /* index of the run of consecutive nodes on one device */
  const char *placement;  /* why it went there, one line (graph arena) */
  int twin_device;        /* the device its fp32 dense twin goes to, the cost report's
                           * baseline (moss_cost_opts.twin_device); -1: |device| */
  int sparse;             /* weight format chosen by the sparse pass (MOSS_SPARSE_*); 0: dense */
  int sparse_rule;        /* the kernels the pass priced the formats for (MOSS_SPARSE_RULE_MAKE) */
  const char *qnote;      /* set by the qdq pass: why the node stays float in a quantized
                           * region, or which pattern it was folded from (graph arena) */
  int native_half;        /* passes/half.c: it reads and writes its float16 values as
                           * such and computes in float16, on a device that has the
                           * instructions (moss_kernel_cpu.half); 0: float16 only
                           * through Casts to float32 */
  int half_layer;         /* --float16 named it (passes/half.c): a Conv/Gemm/MatMul whose
                           * inputs and result are rounded to float16; it computes in
                           * float16 where its device can (native_half) */
  int64_t opset;          /* the default domain's opset of the model it came from (some
                           * operators, e.g. Softmax before 13, mean another thing) */
  int opaque;             /* its segment runs as one unit (a plugin's subgraph): the
                           * planner keeps what the segment touches live across all of it */
  /* Arena scratch its kernel uses while it runs (a padded copy of the
   * input, a product's grid): the bytes its lowering asks for on its
   * device (moss_kernel_scratch, set before planning) and the offset the
   * planner gave them (valid when scratch_bytes > 0). */
  int64_t scratch_bytes;
  int64_t scratch_offset;
  /* MossFused (made by the chains pass, compiler/passes/fuse.c): the
   * elementwise nodes it computes, in order, each dead and out of the node
   * list. Their inputs are this node's inputs or earlier body nodes'
   * outputs, and the last one's output is this node's. NULL otherwise. */
  moss_node **body;
  int nbody;
};

typedef struct moss_graph {
  moss_arena *arena;      /* owns every node, value, name and payload */
  const char *name;
  int64_t opset;          /* default-domain opset version (0: not from a model, or the
                           * model has no node of the default domain) */
  moss_value **values;
  int nvalues, cap_values;
  moss_node **nodes;      /* in topological order after moss_graph_sort */
  int nnodes, cap_nodes;
  moss_value **inputs;
  int ninputs;
  moss_value **outputs;
  int noutputs;
  /* The type the model declares for each graph output (the importer's;
   * NULL for a graph built otherwise): not values of the graph. dtype
   * UNDEF: none declared; rank -1: no shape; a dimension left open has a
   * dim_param. The infer pass holds the inferred types to them. */
  moss_value **output_decl;
  /* The graph outputs of the model that are sequences or optionals,
   * returned as their elements (ops/sequence.c, docs/sequences.md):
   * model output |position| is the |count| graph outputs from |first| on
   * (|kind| a moss_list_kind; |optional_of_sequence| for an optional
   * holding a sequence; |absent| for an optional that holds nothing). The
   * other model outputs are the remaining graph outputs, in order. */
  struct moss_group {
    int position, first, count;
    moss_list_kind kind;
    int optional_of_sequence, absent;
    moss_dtype elem;
    const char *name;
  } *groups;
  int ngroups;
  /* --max-trip-count: the iterations a Loop whose trip count or condition
   * is known only at run time is unrolled to (passes/control.c); 0: such
   * a Loop is refused. */
  int64_t max_trip_count;
  /* --max-length: the bound of an output whose length only the run knows
   * and that nothing else bounds (Range of run-time inputs,
   * docs/dynamic-shapes.md); 0: such a node is refused. */
  int64_t max_length;
  /* > 0: every graph input's axis 0 was open and is bound to this batch
   * (moss_onnx_import_batch); the artifact runs over slices of axis 0 of
   * every input and output (passes/batch.c). 0: shapes are as bound. */
  int64_t batch;
  /* The name index of moss_graph_find_value (graph.c): open addressing,
   * |name_slots| entries (a power of two, or 0) of a name's hash and the
   * value id, the latest value of each name. */
  struct moss_name_slot {
    uint32_t hash;
    int id; /* -1: empty */
  } *name_index;
  int name_slots, name_count;
} moss_graph;

moss_status moss_graph_create(moss_ctx *ctx, moss_graph **out_graph);
void moss_graph_destroy(moss_ctx *ctx, moss_graph *g);

/* New value with a unique name (|name| is copied; NULL makes one up). */
moss_value *moss_graph_add_value(moss_ctx *ctx, moss_graph *g, const char *name);
/* The latest value called |name|, or NULL; a hash lookup. Values are
 * renamed only through moss_graph_rename_value, which keeps the index. */
moss_value *moss_graph_find_value(moss_graph *g, const char *name);
/* The live node whose name is the |len| bytes at |name| (a name in a
 * comma-separated option, --keep-float or --float16), or NULL; a scan:
 * nodes have no index, and the options name few. */
moss_node *moss_graph_find_node(const moss_graph *g, const char *name, size_t len);
/* Gives |v| the name |name| (copied; NULL: out of memory). */
const char *moss_graph_rename_value(moss_graph *g, moss_value *v, const char *name);
/* New node with room for |nin| inputs and |nout| outputs (filled by caller). */
moss_node *moss_graph_add_node(moss_ctx *ctx, moss_graph *g, const char *op_type,
                               const char *name, int nin, int nout);
/* Puts the |count| nodes |nodes| (made by moss_graph_add_node and taken
 * out of the list, or a subgraph's) into the node list at position |at|,
 * the nodes from there on after them; renumbers the ids. */
moss_status moss_graph_insert_nodes(moss_ctx *ctx, moss_graph *g, int at, moss_node *const *nodes,
                                   int count);
/* The nodes made (moss_graph_add_node) since the list held |before|
 * nodes, at its end, move to right after |n|, which dies: what a node is
 * rewritten into takes its place, and inference visits it next. */
moss_status moss_graph_replace_by_made(moss_ctx *ctx, moss_graph *g, moss_node *n, int before);
/* A constant value holding a copy of |data| (numel * size bytes). */
moss_value *moss_graph_add_constant(moss_ctx *ctx, moss_graph *g, const char *name,
                                    moss_dtype dt, int rank, const int64_t *dims,
                                    const void *data);
void *moss_graph_alloc(moss_graph *g, size_t size); /* zeroed, 64-byte aligned */

/* Topological sort; fails with invalid-model on a cycle or on a value
 * used before any producer defines it. */
moss_status moss_graph_sort(moss_ctx *ctx, moss_graph *g);
/* Drops dead nodes from the node list. */
void moss_graph_compact(moss_graph *g);
void moss_graph_compute_uses(moss_graph *g);
/* Replaces every use of |from| (node inputs and graph outputs) by |to|. */
void moss_graph_replace_uses(moss_graph *g, moss_value *from, moss_value *to);

/* Element count of a value with a known shape; -1 if unknown/overflow. */
int64_t moss_value_numel(const moss_value *v);
size_t moss_value_nbytes(const moss_value *v);
/* Bytes of a value with a known shape, checked: -1 when the shape is
 * unknown or when the product of its dimensions (a 0 counted as 1, so that
 * every partial product, i.e. every stride, is bounded too) times its
 * element size exceeds INT64_MAX. Whatever passes this can be sized,
 * offset and indexed in int64_t without overflow; moss_value_nbytes()
 * gives 0 on overflow, which reads as an empty tensor. */
int64_t moss_value_nbytes_checked(const moss_value *v);
int moss_value_shape_known(const moss_value *v);
/* Whether |a| and |b| have the same rank and dimensions. */
int moss_value_same_shape(const moss_value *a, const moss_value *b);
/* Reads element |i| of a constant integer or float value as int64/double. */
int64_t moss_value_get_i64(const moss_value *v, int64_t i);
double moss_value_get_f64(const moss_value *v, int64_t i);

/* Attribute lookups; |def| when absent. */
const moss_attr *moss_node_find_attr(const moss_node *n, const char *name);
int64_t moss_attr_int(const moss_node *n, const char *name, int64_t def);
float moss_attr_float(const moss_node *n, const char *name, float def);
const char *moss_attr_string(const moss_node *n, const char *name, const char *def);
/* Returns the count (0 if absent) and points |*out| at the values. */
int moss_attr_ints(const moss_node *n, const char *name, const int64_t **out);
int moss_attr_floats(const moss_node *n, const char *name, const float **out);
/* Input |i| if present (non-NULL and non-empty name), else NULL. */
moss_value *moss_node_input(const moss_node *n, int i);

/* Checks structural invariants; reports internal errors. */
moss_status moss_ir_verify(moss_ctx *ctx, moss_graph *g);
/* Readable text dump of the whole graph. */
void moss_ir_print(moss_graph *g, moss_buf *out);
/* "f32[1,3,8,8]" style type text into |buf|. */
const char *moss_value_type_str(const moss_value *v, char *buf, size_t cap);

/* The device that holds |v| when it is made: its producer's (n->device, set
 * by the partitioner), |host| for graph inputs and constants. */
int moss_value_device(const moss_value *v, int host);

/* Records a diagnostic against |node| (may be NULL): its name and operator
 * go into the message (compiler/base/base.h's moss_diag_fail_about, which
 * sees no IR); returns |code| (diag.c). */
moss_status moss_diag_fail_at(moss_ctx *ctx, const char *src, int line, moss_status code,
                              const moss_node *node, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;
moss_status moss_diag_vfail_at(moss_ctx *ctx, const char *src, int line, moss_status code,
                               const moss_node *node, const char *fmt, va_list ap);

/* From here up, moss_fail names its node. */
#undef moss_fail
#define moss_fail(ctx, code, node, ...) \
  moss_diag_fail_at((ctx), __FILE__, __LINE__, (code), (node), __VA_ARGS__)

#endif
