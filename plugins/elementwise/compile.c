/* compile.c - the compile side of the elementwise example plugin: which
 * nodes it takes (float32 Add, Sub, Mul, Div, Max, Min with equal shapes or
 * a one-element operand; Relu, Sigmoid, Tanh, Abs, Neg, Exp, Sqrt; any of
 * them with a fused activation) and the lowering of a subgraph of them to
 * the instruction list of blob.h. It sees only the views of moss_plugin.h;
 * it allocates with malloc because it runs inside the compiler, not on the
 * device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "moss_plugin.h"

static const struct {
  const char *name;
  uint32_t op;
} ops[] = {
    {"Add", EW_OP_ADD},         {"Sub", EW_OP_SUB},   {"Mul", EW_OP_MUL},
    {"Div", EW_OP_DIV},         {"Max", EW_OP_MAX},   {"Min", EW_OP_MIN},
    {"Relu", EW_OP_RELU},       {"Sigmoid", EW_OP_SIGMOID}, {"Tanh", EW_OP_TANH},
    {"Abs", EW_OP_ABS},         {"Neg", EW_OP_NEG},   {"Exp", EW_OP_EXP},
    {"Sqrt", EW_OP_SQRT},
};

/* ONNX operators that are elementwise but that this example leaves out, so
 * that the reason it gives is accurate. */
static const char *const other_elementwise[] = {
    "Pow", "Mod", "Log", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Erf", "Sin",
    "Cos", "Tan", "Clip", "LeakyRelu", "Elu", "Selu", "Celu", "HardSigmoid", "HardSwish",
    "Softplus", "Softsign", "PRelu", "Mish", "Gelu", "Not", "And", "Or", "Xor", "Equal",
    "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Where", "Cast", "IsNaN", "IsInf"};

static uint32_t find_op(const char *op_type) {
  size_t i;
  for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (strcmp(ops[i].name, op_type) == 0) return ops[i].op;
  return 0;
}

static uint64_t numel(const moss_plugin_tensor *t) {
  uint64_t n = 1;
  int i;
  for (i = 0; i < t->rank; i++) n *= (uint64_t)t->dims[i];
  return n;
}

static int same_shape(const moss_plugin_tensor *a, const moss_plugin_tensor *b) {
  int i;
  if (a->rank != b->rank) return 0;
  for (i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return 0;
  return 1;
}

/* "[3,1]" into |buf|. */
static const char *shape_str(const moss_plugin_tensor *t, char *buf, size_t cap) {
  size_t n = 0;
  int i;
  n += (size_t)snprintf(buf, cap, "[");
  for (i = 0; i < t->rank && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "," : "", (long long)t->dims[i]);
  if (n < cap) snprintf(buf + n, cap - n, "]");
  return buf;
}

static const char *dtype_str(int32_t dt) {
  switch (dt) {
  case MOSS_PLUGIN_FLOAT: return "float32";
  case MOSS_PLUGIN_UINT8: return "uint8";
  case MOSS_PLUGIN_INT8: return "int8";
  case MOSS_PLUGIN_INT32: return "int32";
  case MOSS_PLUGIN_INT64: return "int64";
  case MOSS_PLUGIN_BOOL: return "bool";
  case MOSS_PLUGIN_DOUBLE: return "float64";
  }
  return "a type other than float32";
}

/* 1 when the plugin can run |n|, else 0 with the reason in |why|. */
static int check(const moss_plugin_node *n, char *why, size_t cap) {
  uint32_t op = find_op(n->op_type);
  int arity, i;
  const moss_plugin_tensor *out;
  uint64_t count = 0;
  char s0[96], s1[96];
  if (n->domain[0] != 0) {
    snprintf(why, cap, "%s: domain '%s' not supported", n->op_type, n->domain);
    return 0;
  }
  if (!op) {
    size_t k;
    for (k = 0; k < sizeof other_elementwise / sizeof other_elementwise[0]; k++)
      if (strcmp(other_elementwise[k], n->op_type) == 0) {
        snprintf(why, cap, "%s: not implemented by this plugin", n->op_type);
        return 0;
      }
    snprintf(why, cap, "%s: not elementwise", n->op_type);
    return 0;
  }
  arity = op < EW_OP_FIRST_UNARY ? 2 : 1;
  if (n->ninputs != arity) {
    snprintf(why, cap, "%s: %d inputs, takes %d", n->op_type, (int)n->ninputs, arity);
    return 0;
  }
  if (n->noutputs != 1 || !n->outputs[0]) {
    snprintf(why, cap, "%s: takes exactly one output", n->op_type);
    return 0;
  }
  if (n->nattrs > 0) {
    snprintf(why, cap, "%s: attribute '%s' not supported", n->op_type, n->attrs[0].name);
    return 0;
  }
  if (n->act < MOSS_PLUGIN_ACT_NONE || n->act > MOSS_PLUGIN_ACT_TANH) {
    snprintf(why, cap, "%s: fused activation %d not supported", n->op_type, (int)n->act);
    return 0;
  }
  out = n->outputs[0];
  for (i = 0; i <= arity; i++) {
    const moss_plugin_tensor *t = i < arity ? n->inputs[i] : out;
    if (!t) {
      snprintf(why, cap, "%s: input %d is absent", n->op_type, i);
      return 0;
    }
    if (t->dtype != MOSS_PLUGIN_FLOAT) {
      snprintf(why, cap, "%s: float32 only, '%s' is %s", n->op_type, t->name,
               dtype_str(t->dtype));
      return 0;
    }
    if (i < arity && numel(t) > count) count = numel(t);
  }
  if (arity == 2 && !same_shape(n->inputs[0], n->inputs[1]) && numel(n->inputs[0]) != 1 &&
      numel(n->inputs[1]) != 1) {
    snprintf(why, cap, "%s: broadcast of %s and %s not supported", n->op_type,
             shape_str(n->inputs[0], s0, sizeof s0), shape_str(n->inputs[1], s1, sizeof s1));
    return 0;
  }
  if (numel(out) != count) {
    snprintf(why, cap, "%s: output %s has %llu elements, expected %llu", n->op_type,
             shape_str(out, s0, sizeof s0), (unsigned long long)numel(out),
             (unsigned long long)count);
    return 0;
  }
  return 1;
}

static int ew_supports(const moss_plugin_target *t, const moss_plugin_node *node, char *why,
                       size_t whycap) {
  (void)t; /* one elementwise unit: no device facts it needs */
  char buf[256];
  int ok = check(node, buf, sizeof buf);
  if (!ok && whycap) snprintf(why, whycap, "%s", buf);
  return ok;
}

/* ---- lowering ------------------------------------------------------------- */

/* The buffers of the blob being built: the tensor each one holds. */
typedef struct lowering {
  const moss_plugin_tensor **t;
  uint32_t *kind;
  uint32_t n, cap;
} lowering;

static long find_buf(const lowering *L, const moss_plugin_tensor *t) {
  uint32_t i;
  for (i = 0; i < L->n; i++)
    if (L->t[i] == t) return (long)i;
  return -1;
}

static long add_buf(lowering *L, const moss_plugin_tensor *t, uint32_t kind) {
  if (L->n == L->cap) return -1;
  L->t[L->n] = t;
  L->kind[L->n] = kind;
  return (long)L->n++;
}

static int put(const moss_plugin_sink *sink, const unsigned char *p, size_t n) {
  return sink->write(sink->user, p, n) == 0;
}

static int write_blob(const moss_plugin_subgraph *sg, const lowering *L,
                      const moss_plugin_sink *sink, char *err, size_t errcap) {
  unsigned char h[EW_HEADER_BYTES], b[EW_BUFFER_BYTES], in[EW_INSTR_BYTES], f[4];
  uint32_t i;
  int k;
  memcpy(h, EW_BLOB_MAGIC, 4);
  ew_put_u32(h + 4, EW_BLOB_VERSION);
  ew_put_u32(h + 8, (uint32_t)sg->ninputs);
  ew_put_u32(h + 12, (uint32_t)sg->noutputs);
  ew_put_u32(h + 16, L->n);
  ew_put_u32(h + 20, (uint32_t)sg->nnodes);
  if (!put(sink, h, sizeof h)) goto sink_failed;
  for (i = 0; i < L->n; i++) {
    uint64_t count = numel(L->t[i]), e;
    ew_put_u32(b, L->kind[i]);
    ew_put_u32(b + 4, 0);
    ew_put_u64(b + 8, count);
    if (!put(sink, b, sizeof b)) goto sink_failed;
    if (L->kind[i] != EW_BUF_CONST) continue;
    if (L->t[i]->nbytes != count * 4) {
      snprintf(err, errcap, "constant '%s' holds %llu bytes, expected %llu", L->t[i]->name,
               (unsigned long long)L->t[i]->nbytes, (unsigned long long)(count * 4));
      return 1;
    }
    for (e = 0; e < count; e++) {
      float v;
      memcpy(&v, (const unsigned char *)L->t[i]->data + e * 4, sizeof v);
      ew_put_f32(f, v);
      if (!put(sink, f, sizeof f)) goto sink_failed;
    }
  }
  for (k = 0; k < sg->nnodes; k++) {
    const moss_plugin_node *n = sg->nodes[k];
    uint32_t op = find_op(n->op_type);
    ew_put_u32(in, op);
    ew_put_u32(in + 4, (uint32_t)n->act);
    ew_put_f32(in + 8, n->act_alpha);
    ew_put_f32(in + 12, n->act_beta);
    ew_put_u32(in + 16, (uint32_t)find_buf(L, n->inputs[0]));
    ew_put_u32(in + 20, op < EW_OP_FIRST_UNARY ? (uint32_t)find_buf(L, n->inputs[1]) : EW_NONE);
    ew_put_u32(in + 24, (uint32_t)find_buf(L, n->outputs[0]));
    ew_put_u32(in + 28, 0);
    if (!put(sink, in, sizeof in)) goto sink_failed;
  }
  return 0;
sink_failed:
  snprintf(err, errcap, "could not write the blob (out of memory)");
  return 1;
}

static int ew_lower(const moss_plugin_target *t, const moss_plugin_subgraph *sg,
                    const moss_plugin_sink *sink, char *err, size_t errcap) {
  lowering L;
  uint32_t cap;
  int i, k, ret = 1;
  char why[256];
  (void)t; /* one elementwise unit: no device facts it needs */
  memset(&L, 0, sizeof L);
  if (sg->nnodes <= 0 || sg->ninputs < 0 || sg->noutputs < 0) {
    snprintf(err, errcap, "empty subgraph");
    return 1;
  }
  /* Every buffer is a subgraph input or a node's input or output. */
  cap = (uint32_t)sg->ninputs + 3u * (uint32_t)sg->nnodes;
  L.cap = cap;
  L.t = malloc(sizeof *L.t * cap);
  L.kind = malloc(sizeof *L.kind * cap);
  if (!L.t || !L.kind) {
    snprintf(err, errcap, "out of memory");
    goto done;
  }
  for (i = 0; i < sg->ninputs; i++) add_buf(&L, sg->inputs[i], EW_BUF_INPUT);
  for (i = 0; i < sg->noutputs; i++) {
    if (find_buf(&L, sg->outputs[i]) >= 0) {
      snprintf(err, errcap, "tensor '%s' is both an input and an output", sg->outputs[i]->name);
      goto done;
    }
    add_buf(&L, sg->outputs[i], EW_BUF_OUTPUT);
  }
  for (k = 0; k < sg->nnodes; k++) {
    const moss_plugin_node *n = sg->nodes[k];
    if (!check(n, why, sizeof why)) {
      snprintf(err, errcap, "node '%s': %s", n->name, why);
      goto done;
    }
    for (i = 0; i < n->ninputs; i++) {
      const moss_plugin_tensor *t = n->inputs[i];
      if (find_buf(&L, t) >= 0) continue;
      if (!t->data) {
        snprintf(err, errcap, "node '%s' reads '%s', which nothing before it computes", n->name,
                 t->name);
        goto done;
      }
      add_buf(&L, t, EW_BUF_CONST);
    }
    if (find_buf(&L, n->outputs[0]) < 0) add_buf(&L, n->outputs[0], EW_BUF_TEMP);
  }
  ret = write_blob(sg, &L, sink, err, errcap);
done:
  free(L.t);
  free(L.kind);
  return ret;
}

static const moss_plugin_compiler compiler = {
    MOSS_PLUGIN_ABI_VERSION, sizeof(moss_plugin_compiler), "elementwise", ew_supports, ew_lower,
    NULL, /* estimate: moss's roofline prices this device */
};

MOSS_PLUGIN_EXPORT const moss_plugin_compiler *moss_plugin_compiler_get(void) {
  return &compiler;
}
