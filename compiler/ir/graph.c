/* graph.c - construction and bookkeeping of the IR graph: values, nodes,
 * attributes, topological order, use counts. The importer builds graphs
 * with these calls and every pass rewrites them. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ir.h"

const moss_op_info moss_op_infos[MOSS_OP_COUNT_] = {
    {"?", "?", 0, 0, 0, 0},
#define MOSS_OP(name, family, min_in, max_in, min_out, max_out) \
  {#name, #family, min_in, max_in, min_out, max_out},
#include "ops.def"
#undef MOSS_OP
};

moss_op moss_op_find(const char *op_type) {
  int i;
  for (i = 1; i < MOSS_OP_COUNT_; i++)
    if (strcmp(moss_op_infos[i].name, op_type) == 0) return (moss_op)i;
  return MOSS_OP_UNKNOWN_;
}

size_t moss_dtype_size(moss_dtype dt) {
  switch (dt) {
  case MOSS_DT_F32: case MOSS_DT_I32: case MOSS_DT_U32: return 4;
  case MOSS_DT_U8: case MOSS_DT_I8: case MOSS_DT_BOOL: return 1;
  case MOSS_DT_U16: case MOSS_DT_I16: case MOSS_DT_F16: case MOSS_DT_BF16: return 2;
  case MOSS_DT_I64: case MOSS_DT_F64: case MOSS_DT_U64: return 8;
  default: return 0;
  }
}

const char *moss_dtype_short(moss_dtype dt) {
  switch (dt) {
  case MOSS_DT_F32: return "f32";
  case MOSS_DT_F64: return "f64";
  case MOSS_DT_F16: return "f16";
  case MOSS_DT_BF16: return "bf16";
  case MOSS_DT_I8: return "i8";
  case MOSS_DT_U8: return "u8";
  case MOSS_DT_I16: return "i16";
  case MOSS_DT_U16: return "u16";
  case MOSS_DT_I32: return "i32";
  case MOSS_DT_U32: return "u32";
  case MOSS_DT_I64: return "i64";
  case MOSS_DT_U64: return "u64";
  case MOSS_DT_BOOL: return "bool";
  default: return "?";
  }
}

const char *moss_dtype_name(moss_dtype dt) {
  switch (dt) {
  case MOSS_DT_F32: return "float32";
  case MOSS_DT_U8: return "uint8";
  case MOSS_DT_I8: return "int8";
  case MOSS_DT_U16: return "uint16";
  case MOSS_DT_I16: return "int16";
  case MOSS_DT_I32: return "int32";
  case MOSS_DT_I64: return "int64";
  case MOSS_DT_STRING: return "string";
  case MOSS_DT_BOOL: return "bool";
  case MOSS_DT_F16: return "float16";
  case MOSS_DT_F64: return "float64";
  case MOSS_DT_U32: return "uint32";
  case MOSS_DT_U64: return "uint64";
  case MOSS_DT_BF16: return "bfloat16";
  default: return "?";
  }
}

const char *moss_dtype_ctype(moss_dtype dt) {
  switch (dt) {
  case MOSS_DT_F32: return "float";
  case MOSS_DT_U8: return "uint8_t";
  case MOSS_DT_I8: return "int8_t";
  case MOSS_DT_U16: return "uint16_t";
  case MOSS_DT_I16: return "int16_t";
  case MOSS_DT_I32: return "int32_t";
  case MOSS_DT_I64: return "int64_t";
  case MOSS_DT_BOOL: return "uint8_t";
  case MOSS_DT_F64: return "double";
  case MOSS_DT_U32: return "uint32_t";
  case MOSS_DT_U64: return "uint64_t";
  default: return NULL;
  }
}

int moss_dtype_is_half(moss_dtype dt) { return dt == MOSS_DT_F16 || dt == MOSS_DT_BF16; }

moss_dtype moss_dtype_storage(moss_dtype dt) { return moss_dtype_is_half(dt) ? MOSS_DT_U16 : dt; }

double moss_half_to_f64(moss_dtype dt, uint16_t h) {
  double s = h & 0x8000u ? -1.0 : 1.0;
  if (dt == MOSS_DT_BF16) { /* float32's top half */
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
  } else {
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) return s * ldexp(m, -24);
    if (e == 31) return m ? NAN : s * HUGE_VAL;
    return s * ldexp(1024 + m, e - 25);
  }
}

uint16_t moss_half_from_f64(moss_dtype dt, double v) {
  /* float16: 5 exponent bits (bias 15), 10 fraction bits; bfloat16: 8
   * (bias 127), 7. */
  int bf = dt == MOSS_DT_BF16, mbits = bf ? 7 : 10, bias = bf ? 127 : 15, emax = bf ? 255 : 31, e;
  uint16_t sign = signbit(v) ? 0x8000u : 0, inf = (uint16_t)(emax << mbits);
  double a = fabs(v), m;
  if (v != v) return (uint16_t)(sign | inf | (1u << (mbits - 1)));
  if (a == 0) return sign;
  frexp(a, &e); /* a in [2^(e-1), 2^e) */
  if (e - 1 + bias <= 0) /* subnormal: multiples of 2^(1 - bias - mbits) */
    return (uint16_t)(sign | (uint16_t)nearbyint(ldexp(a, bias - 1 + mbits)));
  m = nearbyint(ldexp(a, mbits + 1 - e)); /* in [2^mbits, 2^(mbits+1)] */
  if (m == ldexp(1, mbits + 1)) m /= 2, e++;
  if (e - 1 + bias >= emax) return (uint16_t)(sign | inf);
  return (uint16_t)(sign | (uint16_t)((e - 1 + bias) << mbits) | (uint16_t)(m - ldexp(1, mbits)));
}

int moss_dtype_is_float(moss_dtype dt) {
  return dt == MOSS_DT_F32 || dt == MOSS_DT_F64 || dt == MOSS_DT_F16 || dt == MOSS_DT_BF16;
}

int moss_dtype_is_signed(moss_dtype dt) {
  return dt == MOSS_DT_I8 || dt == MOSS_DT_I16 || dt == MOSS_DT_I32 || dt == MOSS_DT_I64;
}

int moss_dtype_int_range(moss_dtype dt, int64_t *lo, int64_t *hi) {
  switch (dt) {
  case MOSS_DT_I8: *lo = -128, *hi = 127; return 1;
  case MOSS_DT_U8: *lo = 0, *hi = 255; return 1;
  case MOSS_DT_I16: *lo = -32768, *hi = 32767; return 1;
  case MOSS_DT_U16: *lo = 0, *hi = 65535; return 1;
  case MOSS_DT_I32: *lo = INT32_MIN, *hi = INT32_MAX; return 1;
  case MOSS_DT_U32: *lo = 0, *hi = 4294967295; return 1;
  default: return 0;
  }
}

moss_status moss_graph_create(moss_ctx *ctx, moss_graph **out_graph) {
  moss_arena *ar;
  moss_graph *g;
  *out_graph = NULL;
  if (moss_arena_create(ctx->alloc, 1 << 16, &ar) != MOSS_OK)
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "graph arena");
  g = moss_arena_alloc(ar, sizeof *g, 16);
  if (!g) {
    moss_arena_destroy(ar);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "graph");
  }
  g->arena = ar;
  g->name = "model";
  *out_graph = g;
  return MOSS_OK;
}

void moss_graph_destroy(moss_ctx *ctx, moss_graph *g) {
  if (!g) return;
  moss_free(ctx, g->values, sizeof(*g->values) * (size_t)g->cap_values);
  moss_free(ctx, g->nodes, sizeof(*g->nodes) * (size_t)g->cap_nodes);
  moss_arena_destroy(g->arena);
}

void *moss_graph_alloc(moss_graph *g, size_t size) { return moss_arena_alloc(g->arena, size, 64); }

static int grow(moss_ctx *ctx, void **arr, int *cap, int n, size_t elem) {
  int ncap;
  void *p;
  if (n < *cap) return 1;
  ncap = *cap ? *cap * 2 : 64;
  p = moss_realloc(ctx, *arr, elem * (size_t)*cap, elem * (size_t)ncap);
  if (!p) return 0;
  *arr = p;
  *cap = ncap;
  return 1;
}

static uint32_t name_hash(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* Records |v| as the latest value of its name. */
static void index_put(moss_graph *g, const moss_value *v) {
  uint32_t h = name_hash(v->name), mask = (uint32_t)g->name_slots - 1, i;
  for (i = h & mask; g->name_index[i].id >= 0; i = (i + 1) & mask)
    if (g->name_index[i].hash == h && !strcmp(g->values[g->name_index[i].id]->name, v->name)) {
      g->name_index[i].id = v->id;
      return;
    }
  g->name_index[i].hash = h;
  g->name_index[i].id = v->id;
  g->name_count++;
}

/* Refills the index from the values, in id order (the latest name wins). */
static void index_rebuild(moss_graph *g) {
  int i;
  for (i = 0; i < g->name_slots; i++) g->name_index[i].id = -1;
  g->name_count = 0;
  for (i = 0; i < g->nvalues; i++) index_put(g, g->values[i]);
}

/* Room for one more name: the table doubles at half full (arena memory). */
static int index_reserve(moss_graph *g) {
  struct moss_name_slot *t;
  int n = g->name_slots ? g->name_slots * 2 : 256;
  if (g->name_slots && (g->name_count + 1) * 2 <= g->name_slots) return 1;
  t = moss_arena_alloc(g->arena, sizeof *t * (size_t)n, 16);
  if (!t) return 0;
  g->name_index = t;
  g->name_slots = n;
  index_rebuild(g);
  return 1;
}

moss_value *moss_graph_find_value(moss_graph *g, const char *name) {
  uint32_t h = name_hash(name), mask, i;
  int pass;
  if (!g->name_slots) return NULL;
  mask = (uint32_t)g->name_slots - 1;
  for (pass = 0; pass < 2; pass++) {
    int stale = 0;
    for (i = h & mask; g->name_index[i].id >= 0; i = (i + 1) & mask) {
      moss_value *v = g->values[g->name_index[i].id];
      if (g->name_index[i].hash != h) continue;
      if (!strcmp(v->name, name)) return v;
      if (name_hash(v->name) != h) stale = 1; /* renamed since it was indexed */
    }
    if (!stale) return NULL;
    index_rebuild(g);
  }
  return NULL;
}

moss_node *moss_graph_find_node(const moss_graph *g, const char *name, size_t len) {
  int i;
  for (i = 0; i < g->nnodes; i++)
    if (!g->nodes[i]->dead && strlen(g->nodes[i]->name) == len &&
        !strncmp(g->nodes[i]->name, name, len))
      return g->nodes[i];
  return NULL;
}

const char *moss_graph_rename_value(moss_graph *g, moss_value *v, const char *name) {
  const char *copy = moss_arena_strdup(g->arena, name);
  if (!copy) return NULL;
  v->name = copy;
  if (g->name_slots) index_rebuild(g); /* the old name may still point at |v| */
  return copy;
}

moss_value *moss_graph_add_value(moss_ctx *ctx, moss_graph *g, const char *name) {
  moss_value *v;
  char tmp[64];
  if (!grow(ctx, (void **)&g->values, &g->cap_values, g->nvalues, sizeof *g->values)) return NULL;
  v = moss_arena_alloc(g->arena, sizeof *v, 16);
  if (!v) return NULL;
  if (!name || !*name) {
    snprintf(tmp, sizeof tmp, "_v%d", g->nvalues);
    name = tmp;
  }
  v->name = moss_arena_strdup(g->arena, name);
  if (!v->name || !index_reserve(g)) return NULL;
  v->id = g->nvalues;
  v->rank = -1;
  v->input_index = -1;
  v->output_index = -1;
  v->offset = -1;
  g->values[g->nvalues++] = v;
  index_put(g, v);
  return v;
}

moss_node *moss_graph_add_node(moss_ctx *ctx, moss_graph *g, const char *op_type,
                               const char *name, int nin, int nout) {
  moss_node *n;
  char tmp[64];
  if (!grow(ctx, (void **)&g->nodes, &g->cap_nodes, g->nnodes, sizeof *g->nodes)) return NULL;
  n = moss_arena_alloc(g->arena, sizeof *n, 16);
  if (!n) return NULL;
  if (!name || !*name) {
    snprintf(tmp, sizeof tmp, "%s_%d", op_type, g->nnodes);
    name = tmp;
  }
  n->name = moss_arena_strdup(g->arena, name);
  n->op_type = moss_arena_strdup(g->arena, op_type);
  n->domain = "";
  n->op = moss_op_find(op_type);
  n->opset = g->opset;
  n->twin_device = -1;
  n->ninputs = nin;
  n->noutputs = nout;
  n->inputs = moss_arena_alloc(g->arena, sizeof(moss_value *) * (size_t)(nin + 1), 16);
  n->outputs = moss_arena_alloc(g->arena, sizeof(moss_value *) * (size_t)(nout + 1), 16);
  if (!n->name || !n->op_type || !n->inputs || !n->outputs) return NULL;
  n->id = g->nnodes;
  g->nodes[g->nnodes++] = n;
  return n;
}

moss_status moss_graph_insert_nodes(moss_ctx *ctx, moss_graph *g, int at, moss_node *const *nodes,
                                   int count) {
  int i;
  if (at < 0 || at > g->nnodes) return moss_fail(ctx, MOSS_E_INTERNAL, NULL, "node insertion at %d", at);
  while (g->nnodes + count > g->cap_nodes) /* grow() doubles once per call */
    if (!grow(ctx, (void **)&g->nodes, &g->cap_nodes, g->cap_nodes, sizeof *g->nodes))
      return moss_fail(ctx, MOSS_E_NOMEM, NULL, "nodes");
  memmove(g->nodes + at + count, g->nodes + at, sizeof *g->nodes * (size_t)(g->nnodes - at));
  memcpy(g->nodes + at, nodes, sizeof *g->nodes * (size_t)count);
  g->nnodes += count;
  for (i = at; i < g->nnodes; i++) g->nodes[i]->id = i;
  return MOSS_OK;
}

moss_status moss_graph_replace_by_made(moss_ctx *ctx, moss_graph *g, moss_node *n, int before) {
  int at = n->id, cnt = g->nnodes - before;
  size_t bytes = sizeof(moss_node *) * (size_t)(cnt + 1);
  moss_node **made;
  moss_status st;
  if (at < 0 || at >= before || g->nodes[at] != n)
    for (at = 0; at < before && g->nodes[at] != n; at++) {}
  if (at >= before || cnt < 0) return moss_fail(ctx, MOSS_E_INTERNAL, n, "the node is not in the list");
  if (!(made = moss_alloc(ctx, bytes))) return moss_fail(ctx, MOSS_E_NOMEM, n, "nodes");
  memcpy(made, g->nodes + before, sizeof *made * (size_t)cnt);
  g->nnodes = before;
  n->dead = 1;
  st = moss_graph_insert_nodes(ctx, g, at + 1, made, cnt);
  moss_free(ctx, made, bytes);
  return st;
}

moss_value *moss_graph_add_constant(moss_ctx *ctx, moss_graph *g, const char *name,
                                    moss_dtype dt, int rank, const int64_t *dims,
                                    const void *data) {
  moss_value *v = moss_graph_add_value(ctx, g, name);
  size_t nb;
  if (!v) return NULL;
  v->dtype = dt;
  v->rank = rank;
  if (rank > 0) memcpy(v->dims, dims, sizeof(int64_t) * (size_t)rank);
  nb = moss_value_nbytes(v);
  v->data = moss_graph_alloc(g, nb ? nb : 1);
  if (!v->data) return NULL;
  if (nb && data) memcpy(v->data, data, nb);
  return v;
}

int64_t moss_value_numel(const moss_value *v) {
  int64_t n = 1;
  int i;
  if (v->rank < 0) return -1;
  for (i = 0; i < v->rank; i++) {
    if (v->dims[i] < 0) return -1;
    if (v->dims[i] != 0 && n > INT64_MAX / v->dims[i]) return -1;
    n *= v->dims[i];
  }
  return n;
}

size_t moss_value_nbytes(const moss_value *v) {
  int64_t n = moss_value_numel(v);
  size_t out;
  if (n < 0 || !moss_size_mul((size_t)n, moss_dtype_size(v->dtype), &out)) return 0;
  return out;
}

int64_t moss_value_nbytes_checked(const moss_value *v) {
  int64_t bound, es = (int64_t)moss_dtype_size(v->dtype);
  int i;
  if (v->rank < 0) return -1;
  bound = es > 0 ? es : 1;
  for (i = 0; i < v->rank; i++) {
    if (v->dims[i] < 0) return -1;
    if (!moss_i64_mul(bound, v->dims[i] ? v->dims[i] : 1, &bound)) return -1;
  }
  return moss_value_numel(v) * es;
}

int moss_value_same_shape(const moss_value *a, const moss_value *b) {
  int k;
  if (a->rank != b->rank) return 0;
  for (k = 0; k < a->rank; k++)
    if (a->dims[k] != b->dims[k]) return 0;
  return 1;
}

int moss_value_shape_known(const moss_value *v) { return moss_value_numel(v) >= 0; }

int64_t moss_value_get_i64(const moss_value *v, int64_t i) {
  const void *p = v->data;
  switch (v->dtype) {
  case MOSS_DT_I64: return ((const int64_t *)p)[i];
  case MOSS_DT_I32: return ((const int32_t *)p)[i];
  case MOSS_DT_I16: return ((const int16_t *)p)[i];
  case MOSS_DT_I8: return ((const int8_t *)p)[i];
  case MOSS_DT_U8: case MOSS_DT_BOOL: return ((const uint8_t *)p)[i];
  case MOSS_DT_U16: return ((const uint16_t *)p)[i];
  case MOSS_DT_U32: return ((const uint32_t *)p)[i];
  case MOSS_DT_U64: return (int64_t)((const uint64_t *)p)[i];
  case MOSS_DT_F32: {
    float f = ((const float *)p)[i];
    return isfinite(f) && fabsf(f) < 9.2e18f ? (int64_t)f : 0;
  }
  case MOSS_DT_F64: {
    double d = ((const double *)p)[i];
    return isfinite(d) && fabs(d) < 9.2e18 ? (int64_t)d : 0;
  }
  default: return 0;
  }
}

double moss_value_get_f64(const moss_value *v, int64_t i) {
  switch (v->dtype) {
  case MOSS_DT_F32: return ((const float *)v->data)[i];
  case MOSS_DT_F64: return ((const double *)v->data)[i];
  case MOSS_DT_U64: return (double)((const uint64_t *)v->data)[i];
  case MOSS_DT_F16:
  case MOSS_DT_BF16: return moss_half_to_f64(v->dtype, ((const uint16_t *)v->data)[i]);
  default: return (double)moss_value_get_i64(v, i);
  }
}

const moss_attr *moss_node_find_attr(const moss_node *n, const char *name) {
  int i;
  for (i = 0; i < n->nattrs; i++)
    if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
  return NULL;
}

int64_t moss_attr_int(const moss_node *n, const char *name, int64_t def) {
  const moss_attr *a = moss_node_find_attr(n, name);
  return a && a->type == MOSS_ATTR_INT ? a->i : def;
}

float moss_attr_float(const moss_node *n, const char *name, float def) {
  const moss_attr *a = moss_node_find_attr(n, name);
  if (a && a->type == MOSS_ATTR_FLOAT) return a->f;
  if (a && a->type == MOSS_ATTR_INT) return (float)a->i;
  return def;
}

const char *moss_attr_string(const moss_node *n, const char *name, const char *def) {
  const moss_attr *a = moss_node_find_attr(n, name);
  return a && a->type == MOSS_ATTR_STRING ? a->s : def;
}

int moss_attr_ints(const moss_node *n, const char *name, const int64_t **out) {
  const moss_attr *a = moss_node_find_attr(n, name);
  *out = NULL;
  if (!a || a->type != MOSS_ATTR_INTS) return 0;
  *out = a->ints;
  return a->n;
}

int moss_attr_floats(const moss_node *n, const char *name, const float **out) {
  const moss_attr *a = moss_node_find_attr(n, name);
  *out = NULL;
  if (!a || a->type != MOSS_ATTR_FLOATS) return 0;
  *out = a->floats;
  return a->n;
}

moss_value *moss_node_input(const moss_node *n, int i) {
  if (i < 0 || i >= n->ninputs) return NULL;
  return n->inputs[i];
}

int moss_value_device(const moss_value *v, int host) {
  return v->producer ? v->producer->device : host;
}

void moss_graph_compute_uses(moss_graph *g) {
  int i, j;
  for (i = 0; i < g->nvalues; i++) g->values[i]->nuses = 0;
  for (i = 0; i < g->nnodes; i++) {
    moss_node *n = g->nodes[i];
    if (n->dead) continue;
    for (j = 0; j < n->ninputs; j++)
      if (n->inputs[j]) n->inputs[j]->nuses++;
  }
  for (i = 0; i < g->noutputs; i++) g->outputs[i]->nuses++;
}

void moss_graph_replace_uses(moss_graph *g, moss_value *from, moss_value *to) {
  int i, j;
  for (i = 0; i < g->nnodes; i++) {
    moss_node *n = g->nodes[i];
    for (j = 0; j < n->ninputs; j++)
      if (n->inputs[j] == from) n->inputs[j] = to;
  }
  for (i = 0; i < g->noutputs; i++)
    if (g->outputs[i] == from) g->outputs[i] = to;
}

void moss_graph_compact(moss_graph *g) {
  int i, k = 0;
  for (i = 0; i < g->nnodes; i++)
    if (!g->nodes[i]->dead) {
      g->nodes[k] = g->nodes[i];
      g->nodes[k]->id = k;
      k++;
    }
  g->nnodes = k;
}

/* Kahn's algorithm keyed on the original order, so the result is stable. */
moss_status moss_graph_sort(moss_ctx *ctx, moss_graph *g) {
  int n = g->nnodes, i, j, k, placed = 0;
  int *pending;
  unsigned char *ready; /* per value: available */
  moss_node **order;
  moss_status st = MOSS_OK;
  size_t sz = sizeof(int) * (size_t)n + (size_t)g->nvalues + sizeof(moss_node *) * (size_t)n + 1;
  char *mem = moss_alloc(ctx, sz);
  if (!mem) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "topological sort");
  order = (moss_node **)mem; /* pointers first, for alignment */
  pending = (int *)(mem + sizeof(moss_node *) * (size_t)n);
  ready = (unsigned char *)(mem + sizeof(int) * (size_t)n + sizeof(moss_node *) * (size_t)n);
  for (i = 0; i < g->nvalues; i++) {
    moss_value *v = g->values[i];
    ready[i] = v->producer == NULL;
  }
  for (i = 0; i < n; i++) pending[i] = 1;
  /* Repeated sweeps: graphs are small and mostly ordered already. */
  for (k = 1; k && placed < n;) {
    k = 0;
    for (i = 0; i < n; i++) {
      moss_node *nd = g->nodes[i];
      int ok = 1;
      if (!pending[i]) continue;
      for (j = 0; j < nd->ninputs && ok; j++)
        if (nd->inputs[j] && !ready[nd->inputs[j]->id]) ok = 0;
      if (!ok) continue;
      pending[i] = 0;
      order[placed++] = nd;
      for (j = 0; j < nd->noutputs; j++)
        if (nd->outputs[j]) ready[nd->outputs[j]->id] = 1;
      k = 1;
    }
  }
  if (placed < n) {
    for (i = 0; i < n; i++)
      if (pending[i]) break;
    st = moss_fail(ctx, MOSS_E_INVALID_MODEL, g->nodes[i],
                   "the graph has a cycle or uses a value no node produces");
  } else {
    for (i = 0; i < n; i++) {
      g->nodes[i] = order[i];
      order[i]->id = i;
    }
  }
  moss_free(ctx, mem, sz);
  return st;
}

const char *moss_value_type_str(const moss_value *v, char *buf, size_t cap) {
  size_t n;
  int i;
  snprintf(buf, cap, "%s[", moss_dtype_name(v->dtype));
  for (i = 0; i < v->rank; i++) {
    n = strlen(buf);
    if (v->dims[i] >= 0)
      snprintf(buf + n, cap - n, "%s%lld", i ? "," : "", (long long)v->dims[i]);
    else
      snprintf(buf + n, cap - n, "%s%s", i ? "," : "", v->dim_param[i] ? v->dim_param[i] : "?");
  }
  n = strlen(buf);
  snprintf(buf + n, cap - n, v->rank < 0 ? "?]" : "]");
  return buf;
}
