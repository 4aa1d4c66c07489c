/* onnx_import.c - the first stage of the pipeline: an ONNX ModelProto
 * (parsed by protobuf-c from C generated at build time) becomes a moss
 * graph. Initializers, Constant nodes' tensors and external data become
 * constant values; graph inputs get their shapes bound here; graph
 * outputs keep the types the model declares, for the infer pass to check.
 * The IR version and the default domain's opset are checked first
 * (model_opset), and no room is made for tensor data a model does not
 * hold. Every error names the file and, where there is one, the node. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.h"
#include "onnx.pb-c.h"

/* protobuf-c allocates the parsed message through the context's allocator
 * too, so a failure there is out-of-memory, not a malformed model. It frees
 * without a size: each block keeps its size in front. */
typedef struct pb_alloc {
  ProtobufCAllocator a;
  moss_ctx *ctx;
  int failed;
} pb_alloc;

#define PB_HDR 16 /* keeps the alignment malloc would give */

static void *pb_alloc_fn(void *user, size_t size) {
  pb_alloc *pa = user;
  size_t total;
  unsigned char *b = NULL;
  if (moss_size_add(size, PB_HDR, &total)) b = moss_realloc(pa->ctx, NULL, 0, total);
  if (!b) {
    pa->failed = 1;
    return NULL;
  }
  memcpy(b, &total, sizeof total);
  return b + PB_HDR;
}

static void pb_free_fn(void *user, void *ptr) {
  pb_alloc *pa = user;
  size_t total;
  if (!ptr) return;
  memcpy(&total, (unsigned char *)ptr - PB_HDR, sizeof total);
  moss_free(pa->ctx, (unsigned char *)ptr - PB_HDR, total);
}

static void pb_alloc_init(pb_alloc *pa, moss_ctx *ctx) {
  pa->a.alloc = pb_alloc_fn;
  pa->a.free = pb_free_fn;
  pa->a.allocator_data = pa;
  pa->ctx = ctx;
  pa->failed = 0;
}

/* The subgraphs being imported, innermost first: each names its values
 * "<prefix><name>" (the owner node's name, the attribute, a slash). */
typedef struct scope {
  const struct scope *up;
  const char *prefix;
} scope;

typedef struct importer {
  moss_ctx *ctx;
  moss_graph *g;
  const char *path;
  const Onnx__ModelProto *m; /* for its opset imports */
  int errors;
  const scope *sc;           /* NULL: the main graph */
  int depth;                 /* subgraphs open: at most MAX_DEPTH */
  int batch;                 /* > 0: an open axis 0 of an input is bound to it (g->batch) */
} importer;

#define MAX_DEPTH 32

static moss_status import_subgraph(importer *im, moss_node *owner, const char *attr,
                                   const Onnx__GraphProto *gp, moss_subgraph **out);

/* The ONNX IR versions moss reads: up to ONNX 1.16's (IR 10), the release
 * of opset 21 (MOSS_OPSET_MAX). */
#define IR_VERSION_MAX 10

/* Copies the elements of a typed field into |dst|, converting to the
 * tensor's dtype. */
static int copy_typed(moss_dtype dt, void *dst, size_t n, const Onnx__TensorProto *t) {
  size_t i;
  switch (dt) {
  case MOSS_DT_F32:
    if (t->n_float_data != n) return 0;
    if (n) memcpy(dst, t->float_data, n * 4);
    return 1;
  case MOSS_DT_F64:
    if (t->n_double_data != n) return 0;
    if (n) memcpy(dst, t->double_data, n * 8);
    return 1;
  case MOSS_DT_I64:
    if (t->n_int64_data != n) return 0;
    if (n) memcpy(dst, t->int64_data, n * 8);
    return 1;
  case MOSS_DT_U32:
  case MOSS_DT_U64:
    if (t->n_uint64_data != n) return 0;
    for (i = 0; i < n; i++) {
      if (dt == MOSS_DT_U32) ((uint32_t *)dst)[i] = (uint32_t)t->uint64_data[i];
      else ((uint64_t *)dst)[i] = t->uint64_data[i];
    }
    return 1;
  case MOSS_DT_I32: case MOSS_DT_I16: case MOSS_DT_I8: case MOSS_DT_U16: case MOSS_DT_U8:
  case MOSS_DT_BOOL: case MOSS_DT_F16: case MOSS_DT_BF16:
    if (t->n_int32_data != n) return 0;
    for (i = 0; i < n; i++) {
      int32_t x = t->int32_data[i];
      switch (moss_dtype_size(dt)) {
      case 4: ((int32_t *)dst)[i] = x; break;
      case 2: ((uint16_t *)dst)[i] = (uint16_t)x; break;
      default: ((uint8_t *)dst)[i] = (uint8_t)x; break;
      }
    }
    return 1;
  default: return 0;
  }
}

/* Opens the external data of |t| at its offset, once its |nbytes| are
 * known to be there: nothing is allocated for data a file does not hold. */
static moss_status open_external(moss_ctx *ctx, const char *model_path, const Onnx__TensorProto *t,
                                 size_t nbytes, const char *what, FILE **out_f) {
  const char *loc = NULL;
  long long off = 0, len = -1;
  size_t i;
  char full[4096];
  const char *slash;
  FILE *f;
  long size;
  *out_f = NULL;
  for (i = 0; i < t->n_external_data; i++) {
    const Onnx__StringStringEntryProto *e = t->external_data[i];
    if (!e->key || !e->value) continue;
    if (!strcmp(e->key, "location")) loc = e->value;
    else if (!strcmp(e->key, "offset")) off = atoll(e->value);
    else if (!strcmp(e->key, "length")) len = atoll(e->value);
  }
  if (!loc || !*loc)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                     "tensor '%s' has external data without a location", what);
  if (loc[0] == '/' || strstr(loc, ".."))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                     "tensor '%s': external data location '%s' must be relative to the model's "
                     "folder", what, loc);
  if (!model_path)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                     "tensor '%s' has external data, but the model was not read from a file", what);
  slash = strrchr(model_path, '/');
  snprintf(full, sizeof full, "%.*s%s", slash ? (int)(slash - model_path + 1) : 0, model_path,
           loc);
  if (off < 0 || (len >= 0 && (size_t)len != nbytes))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                     "tensor '%s': external data length %lld does not match its shape (%zu bytes)",
                     what, len, nbytes);
  f = fopen(full, "rb");
  if (!f)
    return moss_fail(ctx, MOSS_E_IO, NULL, "tensor '%s': cannot open external data file '%s'",
                     what, full);
  if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || off > size ||
      nbytes > (size_t)(size - off) || fseek(f, (long)off, SEEK_SET) != 0) {
    fclose(f);
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                     "tensor '%s': external data file '%s' is shorter than offset %lld + %zu bytes",
                     what, full, off, nbytes);
  }
  if (moss_file_note_input(ctx, full) != MOSS_OK) { /* no output may replace it */
    fclose(f);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "the list of files read");
  }
  *out_f = f;
  return MOSS_OK;
}

/* How many elements of type |dt| the typed field of |t| holds. */
static size_t typed_count(moss_dtype dt, const Onnx__TensorProto *t) {
  switch (dt) {
  case MOSS_DT_F32: return t->n_float_data;
  case MOSS_DT_F64: return t->n_double_data;
  case MOSS_DT_I64: return t->n_int64_data;
  case MOSS_DT_U32: case MOSS_DT_U64: return t->n_uint64_data;
  default: return t->n_int32_data;
  }
}

/* TensorProto -> constant value. */
static moss_status tensor_to_value(moss_ctx *ctx, moss_graph *g, const char *model_path,
                                   const Onnx__TensorProto *t, const char *name,
                                   moss_value **out) {
  moss_dtype dt = (moss_dtype)t->data_type;
  int64_t dims[MOSS_MAX_RANK];
  size_t i, nbytes, numel = 1, bound = 1; /* bound: the product of the dimensions but zeros */
  moss_value *v;
  FILE *ext = NULL;
  const char *what = name && *name ? name : (t->name ? t->name : "");
  *out = NULL;
  if (t->n_dims > MOSS_MAX_RANK)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "tensor '%s' has rank %zu (max %d)", what,
                     t->n_dims, MOSS_MAX_RANK);
  if (!t->has_data_type || dt <= 0 || dt >= MOSS_DT_COUNT_ || moss_dtype_size(dt) == 0) {
    if (t->data_type == MOSS_DT_STRING)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "tensor '%s' holds strings", what);
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "tensor '%s' has unknown data type %d",
                     what, (int)t->data_type);
  }
  for (i = 0; i < t->n_dims; i++) {
    if (t->dims[i] < 0 || (t->dims[i] && bound > ((size_t)1 << 40) / (size_t)t->dims[i]))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "tensor '%s' has bad dimension %lld",
                       what, (long long)t->dims[i]);
    dims[i] = t->dims[i];
    numel *= (size_t)t->dims[i];
    if (t->dims[i]) bound *= (size_t)t->dims[i];
  }
  if (!moss_size_mul(numel, moss_dtype_size(dt), &nbytes))
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "tensor '%s' is too large", what);
  /* The data must be there before room is made for it. */
  if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
    MOSS_TRY(open_external(ctx, model_path, t, nbytes, what, &ext));
  } else if (t->has_raw_data) {
    if (t->raw_data.len != nbytes)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                       "tensor '%s': raw data has %zu bytes, its shape needs %zu", what,
                       t->raw_data.len, nbytes);
  } else if (typed_count(dt, t) != numel) {
    size_t have = typed_count(dt, t);
    if (have == 0)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                       "tensor '%s' declares %zu elements of %s but holds no data", what, numel,
                       moss_dtype_name(dt));
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                     "tensor '%s' declares %zu elements of %s but its data holds %zu", what, numel,
                     moss_dtype_name(dt), have);
  }
  v = moss_graph_add_constant(ctx, g, what, dt, (int)t->n_dims, dims, NULL);
  if (!v) {
    if (ext) fclose(ext);
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "tensor '%s' (%zu bytes)", what, nbytes);
  }
  if (ext) {
    size_t got = nbytes ? fread(v->data, 1, nbytes, ext) : 0;
    fclose(ext);
    if (got != nbytes)
      return moss_fail(ctx, MOSS_E_IO, NULL, "tensor '%s': cannot read its external data", what);
  } else if (t->has_raw_data) {
    if (nbytes) memcpy(v->data, t->raw_data.data, nbytes);
  } else if (!copy_typed(dt, v->data, numel, t)) {
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                     "tensor '%s': its data does not match its %s shape of %zu elements", what,
                     moss_dtype_name(dt), numel);
  }
  *out = v;
  return MOSS_OK;
}

static moss_status parse_shape(moss_ctx *ctx, const char *text, int *rank, int64_t *dims) {
  const char *p = text;
  *rank = 0;
  if (!*p) return MOSS_OK; /* scalar */
  for (;;) {
    char *end;
    long long d;
    errno = 0;
    d = strtoll(p, &end, 10);
    if (errno == ERANGE)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                       "bad shape '%s': dimension %d (%.*s) does not fit in 64 bits", text, *rank,
                       (int)(end - p), p);
    if (end == p || d < 0 || *rank >= MOSS_MAX_RANK)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                       "bad shape '%s' (expected e.g. 1x3x224x224)", text);
    dims[(*rank)++] = d;
    if (*end == 0) return MOSS_OK;
    if (*end != 'x' && *end != 'X' && *end != ',')
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                       "bad shape '%s' (expected e.g. 1x3x224x224)", text);
    p = end + 1;
  }
}

static moss_status copy_attr(importer *im, moss_node *n, moss_attr *a,
                             const Onnx__AttributeProto *p) {
  moss_graph *g = im->g;
  size_t i;
  a->name = moss_arena_strdup(g->arena, p->name ? p->name : "");
  if (!a->name) return MOSS_E_NOMEM;
  a->type = (moss_attr_type)p->type;
  switch (p->type) {
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: a->f = p->f; break;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: a->i = p->i; break;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
    a->s = moss_graph_alloc(g, p->s.len + 1);
    if (!a->s) return MOSS_E_NOMEM;
    if (p->s.len) memcpy((char *)a->s, p->s.data, p->s.len);
    a->slen = p->s.len;
    break;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
    a->n = (int)p->n_ints;
    a->ints = moss_graph_alloc(g, sizeof(int64_t) * (p->n_ints + 1));
    if (!a->ints) return MOSS_E_NOMEM;
    if (p->n_ints) memcpy(a->ints, p->ints, sizeof(int64_t) * p->n_ints);
    break;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
    a->n = (int)p->n_floats;
    a->floats = moss_graph_alloc(g, sizeof(float) * (p->n_floats + 1));
    if (!a->floats) return MOSS_E_NOMEM;
    if (p->n_floats) memcpy(a->floats, p->floats, sizeof(float) * p->n_floats);
    break;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS:
    a->n = (int)p->n_strings;
    a->strings = moss_graph_alloc(g, sizeof(char *) * (p->n_strings + 1));
    if (!a->strings) return MOSS_E_NOMEM;
    for (i = 0; i < p->n_strings; i++) {
      char *s = moss_graph_alloc(g, p->strings[i].len + 1);
      if (!s) return MOSS_E_NOMEM;
      if (p->strings[i].len) memcpy(s, p->strings[i].data, p->strings[i].len);
      a->strings[i] = s;
    }
    break;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
    if (!p->t)
      return moss_fail(im->ctx, MOSS_E_INVALID_MODEL, n, "tensor attribute '%s' is empty", a->name);
    return tensor_to_value(im->ctx, g, im->path, p->t, n->name, &a->t);
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH:
    /* If's branches are imported; the other owners' graphs (Loop, Scan)
     * stay markers, and the check pass names their operators. */
    if (n->op == MOSS_OP_If || n->op == MOSS_OP_Loop || n->op == MOSS_OP_Scan || n->op == MOSS_OP_SequenceMap)
      return import_subgraph(im, n, a->name, p->g, &a->graph);
    break;
  case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS:
    break;
  default:
    if (p->type == 0) {
      /* Old exporters leave type unset: infer it from the populated field. */
      if (p->n_ints) {
        a->type = MOSS_ATTR_INTS;
        a->n = (int)p->n_ints;
        a->ints = moss_graph_alloc(g, sizeof(int64_t) * p->n_ints);
        if (!a->ints) return MOSS_E_NOMEM;
        memcpy(a->ints, p->ints, sizeof(int64_t) * p->n_ints);
      } else if (p->n_floats) {
        a->type = MOSS_ATTR_FLOATS;
        a->n = (int)p->n_floats;
        a->floats = moss_graph_alloc(g, sizeof(float) * p->n_floats);
        if (!a->floats) return MOSS_E_NOMEM;
        memcpy(a->floats, p->floats, sizeof(float) * p->n_floats);
      } else if (p->has_i) {
        a->type = MOSS_ATTR_INT;
        a->i = p->i;
      } else if (p->has_f) {
        a->type = MOSS_ATTR_FLOAT;
        a->f = p->f;
      }
    } else if (p->type >= ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS &&
               p->type <= ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS) {
      /* A kind moss does not read (tensors, sparse tensors, types): its
       * ONNX code stays, so that the check pass can name it. */
      a->type = (moss_attr_type)p->type;
    } else {
      a->type = MOSS_ATTR_UNDEF;
    }
    break;
  }
  return MOSS_OK;
}

/* A value named |name| for use as a node input: the innermost subgraph's
 * that has it, else the main graph's, existing or a placeholder that a
 * later node must produce (the graph may be listed out of order). */
static moss_value *use_value(importer *im, const char *name) {
  const scope *s;
  moss_value *v;
  char buf[1024];
  for (s = im->sc; s; s = s->up) {
    snprintf(buf, sizeof buf, "%s%s", s->prefix, name);
    if ((v = moss_graph_find_value(im->g, buf))) return v;
  }
  v = moss_graph_find_value(im->g, name);
  if (!v) v = moss_graph_add_value(im->ctx, im->g, name);
  return v;
}

/* |name| as the current scope names what it makes. */
static const char *scoped(const importer *im, const char *name, char *buf, size_t cap) {
  if (!im->sc) return name;
  snprintf(buf, cap, "%s%s", im->sc->prefix, name);
  return buf;
}

static int is_default_domain(const char *d) { return !d || !*d || !strcmp(d, "ai.onnx"); }

static int domain_imported(const Onnx__ModelProto *m, const char *domain) {
  size_t i;
  for (i = 0; i < m->n_opset_import; i++) {
    const char *d = m->opset_import[i]->domain;
    if (is_default_domain(d) ? is_default_domain(domain) : !strcmp(d, domain)) return 1;
  }
  return 0;
}

/* The version of |domain| (not the default one) that the model imports. */
static int64_t domain_version(const Onnx__ModelProto *m, const char *domain) {
  size_t i;
  for (i = 0; i < m->n_opset_import; i++)
    if (m->opset_import[i]->domain && !strcmp(m->opset_import[i]->domain, domain))
      return m->opset_import[i]->version;
  return 0;
}

/* The type graph output |vi| declares, for the infer pass to check
 * (g->output_decl): rank -1 when it declares no shape, dtype UNDEF when no
 * element type; a dimension it leaves open has a dim_param ("?" when
 * unnamed), one it fixes has none, whatever its value. */
static moss_value *declared_type(moss_graph *g, const Onnx__ValueInfoProto *vi) {
  moss_value *d = moss_graph_alloc(g, sizeof *d);
  const Onnx__TypeProto__Tensor *tt;
  size_t j;
  if (!d || !(d->name = moss_arena_strdup(g->arena, vi->name ? vi->name : ""))) return NULL;
  d->rank = -1;
  d->input_index = d->output_index = -1;
  d->offset = -1;
  tt = vi->type && vi->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
           ? vi->type->tensor_type : NULL;
  if (!tt) return d;
  if (tt->has_elem_type) d->dtype = (moss_dtype)tt->elem_type;
  if (!tt->shape || tt->shape->n_dim > MOSS_MAX_RANK) return d; /* too deep: never inferred */
  d->rank = (int)tt->shape->n_dim;
  for (j = 0; j < tt->shape->n_dim; j++) {
    const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[j];
    d->dims[j] = -1;
    if (dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
      d->dims[j] = dim->dim_value;
    } else {
      int named = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                  dim->dim_param && *dim->dim_param;
      d->dim_param[j] = moss_arena_strdup(g->arena, named ? dim->dim_param : "?");
      if (!d->dim_param[j]) return NULL;
    }
  }
  return d;
}

static const moss_onnx_binding *find_binding(const moss_onnx_binding *b, int nb, const char *name,
                                             int want_file) {
  int i;
  for (i = 0; i < nb; i++)
    if (!strcmp(b[i].name, name) && (want_file ? b[i].file != NULL : b[i].shape != NULL))
      return &b[i];
  return NULL;
}

/* One node of the current scope, its inputs resolved through the scopes
 * (use_value), its name and outputs named by the scope. Errors in the
 * model are counted in im->errors; only out-of-memory returns. */
static moss_status import_node(importer *im, const Onnx__NodeProto *np) {
  moss_ctx *ctx = im->ctx;
  moss_graph *g = im->g;
  char buf[1024];
  size_t j;
  const char *op = np->op_type ? np->op_type : "", *name = NULL;
  moss_node *n;
  if (np->name && *np->name) {
    name = scoped(im, np->name, buf, sizeof buf);
  } else if (im->sc) { /* unnamed in a subgraph: named in its scope, unique with it */
    snprintf(buf, sizeof buf, "%s%s_%d", im->sc->prefix, op, g->nnodes);
    name = buf;
  }
  n = moss_graph_add_node(ctx, g, op, name, (int)np->n_input, (int)np->n_output);
  if (!n) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "node");
  if (np->domain && *np->domain && strcmp(np->domain, "ai.onnx")) {
    if (!(n->domain = moss_arena_strdup(g->arena, np->domain)))
      return moss_fail(ctx, MOSS_E_NOMEM, n, "domain");
    if (!domain_imported(im->m, np->domain)) {
      im->errors++;
      moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                "operator domain '%s' is not among the model's opset imports (opset_import)",
                np->domain);
    } else if (!strcmp(np->domain, "ai.onnx.preview.training") &&
               domain_version(im->m, np->domain) != 1) {
      im->errors++; /* the check pass takes this domain's optimizers: those of version 1 */
      moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                "the model imports version %lld of the operator domain '%s'; moss knows "
                "version 1",
                (long long)domain_version(im->m, np->domain), np->domain);
    }
  }
  for (j = 0; j < np->n_input; j++) {
    if (!np->input[j] || !*np->input[j]) continue;
    n->inputs[j] = use_value(im, np->input[j]);
    if (!n->inputs[j]) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "value");
  }
  for (j = 0; j < np->n_output; j++) {
    moss_value *v;
    const char *nm;
    if (!np->output[j] || !*np->output[j]) continue;
    nm = scoped(im, np->output[j], buf, sizeof buf);
    v = moss_graph_find_value(g, nm);
    if (v && (v->producer || v->data || v->input_index >= 0)) {
      im->errors++;
      moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "value '%s' is defined twice", np->output[j]);
      continue;
    }
    if (!v) v = moss_graph_add_value(ctx, g, nm);
    if (!v) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "value");
    v->producer = n;
    n->outputs[j] = v;
  }
  n->nattrs = (int)np->n_attribute;
  n->attrs = moss_graph_alloc(g, sizeof(moss_attr) * (np->n_attribute + 1));
  if (!n->attrs) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "attributes");
  for (j = 0; j < np->n_attribute; j++) {
    moss_status st = copy_attr(im, n, &n->attrs[j], np->attribute[j]);
    if (st == MOSS_E_NOMEM) return moss_fail(ctx, st, n, "attributes");
    if (st != MOSS_OK) im->errors++;
  }
  return MOSS_OK;
}

/* Whether |v| belongs to the scope named by |prefix| (or one inside it). */
static int in_scope(const moss_value *v, const char *prefix) {
  return v->name && !strncmp(v->name, prefix, strlen(prefix));
}

static int is_body_input(const moss_subgraph *sg, const moss_value *v) {
  int k;
  for (k = 0; k < sg->ninputs; k++)
    if (sg->inputs[k] == v) return 1;
  return 0;
}

/* Adds |v| to |owner|'s inputs unless it is there (the caller made room). */
static void add_outer_input(moss_node *owner, moss_value *v) {
  int k;
  for (k = 0; k < owner->ninputs; k++)
    if (owner->inputs[k] == v) return;
  owner->inputs[owner->ninputs++] = v;
}

/* GRAPH attribute |attr| of |owner| (an If's branch): its initializers
 * and nodes become the graph's, named in a scope of their own
 * ("<owner>/<attr>/"), its nodes are moved out of the node list into
 * |*out|, and each value it reads from outside becomes an input of
 * |owner|, so that sorting, liveness and dead-code removal see it. */
static moss_status import_subgraph(importer *im, moss_node *owner, const char *attr,
                                   const Onnx__GraphProto *gp, moss_subgraph **out) {
  moss_ctx *ctx = im->ctx;
  moss_graph *g = im->g;
  moss_subgraph *sg;
  scope sc;
  char buf[1024], *prefix;
  size_t i, j;
  int k, k0 = g->nnodes, nouter = 0, errors = im->errors;
  moss_value **in;
  if (!gp) return moss_fail(ctx, MOSS_E_INVALID_MODEL, owner, "attribute '%s' holds no graph", attr);
  if (im->depth >= MAX_DEPTH)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, owner, "subgraphs nested more than %d deep", MAX_DEPTH);
  if (gp->n_input && owner->op == MOSS_OP_If)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, owner, "%s's '%s' has %zu inputs; an If branch has none",
                     owner->op_type, attr, gp->n_input);
  snprintf(buf, sizeof buf, "%s/%s/", owner->name, attr);
  if (!(prefix = moss_arena_strdup(g->arena, buf)) || !(sg = moss_graph_alloc(g, sizeof *sg)))
    return moss_fail(ctx, MOSS_E_NOMEM, owner, "subgraph");
  memset(sg, 0, sizeof *sg);
  *out = sg;
  sc.up = im->sc;
  sc.prefix = prefix;
  im->sc = &sc;
  for (i = 0; i < gp->n_initializer; i++) {
    moss_value *v;
    const Onnx__TensorProto *t = gp->initializer[i];
    if (!t->name || !*t->name) {
      im->sc = sc.up;
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, owner, "an initializer of '%s' has no name", attr);
    }
    moss_status st = tensor_to_value(ctx, g, im->path, t, scoped(im, t->name, buf, sizeof buf), &v);
    if (st != MOSS_OK) {
      im->sc = sc.up;
      return st;
    }
  }
  /* A body's inputs (Loop's iteration number, condition and carried
   * values; Scan's states and slices): values of its scope that no node
   * makes, bound to each iteration's values when the loop is unrolled. */
  sg->inputs = moss_graph_alloc(g, sizeof(moss_value *) * (gp->n_input + 1));
  if (!sg->inputs) {
    im->sc = sc.up;
    return moss_fail(ctx, MOSS_E_NOMEM, owner, "subgraph");
  }
  for (i = 0; i < gp->n_input; i++) {
    const char *nm = gp->input[i]->name ? gp->input[i]->name : "";
    moss_value *v;
    if (moss_graph_find_value(g, scoped(im, nm, buf, sizeof buf))) {
      im->errors++;
      moss_fail(ctx, MOSS_E_INVALID_MODEL, owner, "input '%s' of '%s' is named twice", nm, attr);
      continue;
    }
    if (!(v = moss_graph_add_value(ctx, g, buf))) {
      im->sc = sc.up;
      return moss_fail(ctx, MOSS_E_NOMEM, owner, "subgraph");
    }
    sg->inputs[sg->ninputs++] = v;
  }
  /* Its values first, so that a name it makes hides an outer one from
   * every node of it, wherever the node stands. */
  for (i = 0; i < gp->n_node; i++)
    for (j = 0; j < gp->node[i]->n_output; j++) {
      const char *o = gp->node[i]->output[j];
      if (o && *o && !moss_graph_find_value(g, scoped(im, o, buf, sizeof buf)) &&
          !moss_graph_add_value(ctx, g, buf)) {
        im->sc = sc.up;
        return moss_fail(ctx, MOSS_E_NOMEM, owner, "subgraph");
      }
    }
  im->depth++;
  for (i = 0; i < gp->n_node; i++) {
    moss_status st = import_node(im, gp->node[i]);
    if (st != MOSS_OK) {
      im->sc = sc.up;
      im->depth--;
      return st;
    }
  }
  im->depth--;
  sg->nnodes = g->nnodes - k0;
  sg->nodes = moss_graph_alloc(g, sizeof(moss_node *) * ((size_t)sg->nnodes + 1));
  sg->outputs = moss_graph_alloc(g, sizeof(moss_value *) * (gp->n_output + 1));
  if (!sg->nodes || !sg->outputs) {
    im->sc = sc.up;
    return moss_fail(ctx, MOSS_E_NOMEM, owner, "subgraph");
  }
  memcpy(sg->nodes, g->nodes + k0, sizeof(moss_node *) * (size_t)sg->nnodes);
  g->nnodes = k0;
  for (i = 0; i < gp->n_output; i++) {
    const char *nm = gp->output[i]->name ? gp->output[i]->name : "";
    moss_value *v = use_value(im, nm);
    if (!v) {
      im->sc = sc.up;
      return moss_fail(ctx, MOSS_E_NOMEM, owner, "subgraph");
    }
    if (in_scope(v, prefix) && !v->producer && !v->data && !v->list && !is_body_input(sg, v)) {
      im->errors++;
      moss_fail(ctx, MOSS_E_INVALID_MODEL, owner, "output '%s' of '%s' is never produced", nm, attr);
    }
    sg->outputs[sg->noutputs++] = v;
  }
  im->sc = sc.up;
  /* What it reads from outside: inputs of |owner| after its own. */
  for (k = 0; k < sg->nnodes; k++) nouter += sg->nodes[k]->ninputs;
  nouter += sg->noutputs;
  in = moss_graph_alloc(g, sizeof(moss_value *) * ((size_t)(owner->ninputs + nouter) + 1));
  if (!in) return moss_fail(ctx, MOSS_E_NOMEM, owner, "subgraph");
  memcpy(in, owner->inputs, sizeof(moss_value *) * (size_t)owner->ninputs);
  owner->inputs = in;
  for (k = 0; k < sg->nnodes; k++)
    for (j = 0; j < (size_t)sg->nodes[k]->ninputs; j++) {
      moss_value *v = sg->nodes[k]->inputs[j];
      if (v && !in_scope(v, prefix)) add_outer_input(owner, v);
    }
  for (k = 0; k < sg->noutputs; k++)
    if (!in_scope(sg->outputs[k], prefix)) add_outer_input(owner, sg->outputs[k]);
  return im->errors > errors ? MOSS_E_INVALID_MODEL : MOSS_OK;
}

static moss_status import_graph(importer *im, const Onnx__GraphProto *gp,
                                const moss_onnx_binding *bindings, int nbindings) {
  moss_ctx *ctx = im->ctx;
  moss_graph *g = im->g;
  size_t i, j;
  int k;
  unsigned char *placeholder;
  int nbefore, nbatched = 0;
  const char *fixed = NULL;      /* the first input with no open axis 0 */
  const moss_value *batched0 = NULL; /* the first with one */

  if (gp->name && *gp->name && !(g->name = moss_arena_strdup(g->arena, gp->name)))
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "graph name");
  for (i = 0; i < gp->n_initializer; i++) {
    moss_value *v;
    const Onnx__TensorProto *t = gp->initializer[i];
    if (!t->name || !*t->name)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "initializer %zu has no name", i);
    MOSS_TRY(tensor_to_value(ctx, g, im->path, t, t->name, &v));
  }
  for (i = 0; i < gp->n_sparse_initializer; i++)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "sparse initializers are not supported");

  g->inputs = moss_graph_alloc(g, sizeof(moss_value *) * (gp->n_input + 1));
  if (!g->inputs) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "inputs");
  for (i = 0; i < gp->n_input; i++) {
    const Onnx__ValueInfoProto *vi = gp->input[i];
    const Onnx__TypeProto__Tensor *tt;
    const moss_onnx_binding *b;
    moss_value *v;
    const char *nm = vi->name ? vi->name : "";
    if (moss_graph_find_value(g, nm)) continue; /* has an initializer: a constant */
    b = find_binding(bindings, nbindings, nm, 1);
    if (vi->type && (vi->type->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE ||
                     vi->type->value_case == ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE)) {
      /* a list known at compile time (docs/sequences.md): its data too */
      moss_value *c;
      int opt = vi->type->value_case == ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE;
      if (!b)
        return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                         "graph input '%s' is %s: moss compiles sequences and optionals as lists "
                         "known at compile time; fix it with --constant %s=FILE (an ONNX %s .pb)",
                         nm, opt ? "an optional" : "a sequence", nm, opt ? "OptionalProto" : "SequenceProto");
      MOSS_TRY(moss_list_file_read(ctx, g, b->file, opt, &c));
      if (!moss_graph_rename_value(g, c, nm)) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "input");
      continue;
    }
    if (b) {
      moss_value *c;
      MOSS_TRY(moss_tensor_file_read(ctx, g, b->file, &c));
      if (!moss_graph_rename_value(g, c, nm)) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "input");
      tt = vi->type && vi->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
               ? vi->type->tensor_type : NULL;
      if (tt && tt->has_elem_type && tt->elem_type != (int)c->dtype)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                         "--constant %s=%s: the file holds %s, the input is %s", nm, b->file,
                         moss_dtype_name(c->dtype), moss_dtype_name((moss_dtype)tt->elem_type));
      continue;
    }
    v = moss_graph_add_value(ctx, g, nm);
    if (!v) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "input");
    /* tensor_type shares a union with the sequence/map/optional types. */
    tt = vi->type && vi->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
             ? vi->type->tensor_type : NULL;
    if (!tt)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                       "graph input '%s' is not a tensor (sequences and maps are not supported)",
                       nm);
    v->dtype = tt->has_elem_type ? (moss_dtype)tt->elem_type : MOSS_DT_UNDEF;
    if (v->dtype == MOSS_DT_STRING)
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "graph input '%s' holds strings", nm);
    if (v->dtype <= 0 || v->dtype >= MOSS_DT_COUNT_ || !moss_dtype_size(v->dtype))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "graph input '%s' has unknown type %d",
                       nm, (int)v->dtype);
    if (tt->shape) {
      if (tt->shape->n_dim > MOSS_MAX_RANK)
        return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "graph input '%s' has rank %zu", nm,
                         tt->shape->n_dim);
      v->rank = (int)tt->shape->n_dim;
      for (j = 0; j < tt->shape->n_dim; j++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[j];
        v->dims[j] = -1;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
            d->dim_value < 0)
          return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                           "graph input '%s' has dimension %zu of %lld (dimensions are at least 0)",
                           nm, j, (long long)d->dim_value);
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
          v->dims[j] = d->dim_value;
        else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                 !(v->dim_param[j] = moss_arena_strdup(g->arena, d->dim_param)))
          return moss_fail(ctx, MOSS_E_NOMEM, NULL, "input");
      }
    }
    b = find_binding(bindings, nbindings, nm, 0);
    if (b) {
      int rank;
      int64_t dims[MOSS_MAX_RANK];
      MOSS_TRY(parse_shape(ctx, b->shape, &rank, dims));
      if (v->rank >= 0 && rank != v->rank)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                         "--input-shape %s=%s has rank %d, the input has rank %d", nm, b->shape,
                         rank, v->rank);
      for (k = 0; k < rank; k++) {
        if (v->rank >= 0 && v->dims[k] >= 0 && v->dims[k] != dims[k])
          return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                           "--input-shape %s=%s: dimension %d is fixed to %lld by the model", nm,
                           b->shape, k, (long long)v->dims[k]);
        v->dims[k] = dims[k];
      }
      v->rank = rank;
    }
    if (im->batch > 0 && !b && v->rank >= 1 && v->dims[0] < 0) {
      v->dims[0] = im->batch; /* the batch axis: planned at |batch|, run over slices */
      g->batch = im->batch;
      if (!nbatched++) batched0 = v;
    } else if (!fixed) {
      fixed = nm;
    }
    if (v->rank < 0)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                       "graph input '%s' has no shape; give one with --input-shape %s=DxDx...",
                       nm, nm);
    for (k = 0; k < v->rank; k++)
      if (v->dims[k] < 0)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                         "graph input '%s' has symbolic dimension %d ('%s'); bind it with "
                         "--input-shape %s=DxDx...",
                         nm, k, v->dim_param[k] ? v->dim_param[k] : "?", nm);
    v->input_index = g->ninputs;
    g->inputs[g->ninputs++] = v;
  }
  /* The run slices every input and output along axis 0, so all inputs carry it. */
  if (nbatched && nbatched < g->ninputs)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                     "graph input '%s' has symbolic dimension 0 ('%s'); bind it with "
                     "--input-shape %s=DxDx... (moss runs a model over slices of its batch "
                     "only when every input has an open axis 0, and '%s' has none)",
                     batched0->name, batched0->dim_param[0] ? batched0->dim_param[0] : "?",
                     batched0->name, fixed ? fixed : "?");
  for (k = 0; k < nbindings; k++) {
    moss_value *v = moss_graph_find_value(g, bindings[k].name);
    if (!v || (v->data == NULL && !v->list && v->input_index < 0) ||
        (bindings[k].shape && v->input_index < 0))
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "%s names '%s', which is not a graph input",
                       bindings[k].file ? "--constant" : "--input-shape", bindings[k].name);
  }

  nbefore = g->nvalues;
  for (i = 0; i < gp->n_node; i++) MOSS_TRY(import_node(im, gp->node[i]));
  /* Every value a node reads must be an input, a constant or produced. */
  placeholder = NULL;
  (void)placeholder;
  (void)nbefore;
  for (i = 0; i < (size_t)g->nnodes; i++) {
    moss_node *n = g->nodes[i];
    for (k = 0; k < n->ninputs; k++) {
      moss_value *v = n->inputs[k];
      if (v && !v->producer && !v->data && !v->list && v->input_index < 0) {
        im->errors++;
        moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                  "input '%s' is neither a graph input, an initializer nor any node's output",
                  v->name);
        v->input_index = -2; /* report once */
      }
    }
  }
  g->outputs = moss_graph_alloc(g, sizeof(moss_value *) * (gp->n_output + 1));
  g->output_decl = moss_graph_alloc(g, sizeof(moss_value *) * (gp->n_output + 1));
  if (!g->outputs || !g->output_decl) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "outputs");
  for (i = 0; i < gp->n_output; i++) {
    const char *nm = gp->output[i]->name ? gp->output[i]->name : "";
    moss_value *v = moss_graph_find_value(g, nm);
    if (!v || (!v->producer && !v->data && !v->list && v->input_index < 0)) {
      im->errors++;
      moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "graph output '%s' is never produced", nm);
      continue;
    }
    if (v->output_index >= 0) {
      /* Outputs are told apart by name (moss run, the generated header). */
      im->errors++;
      moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                "graph output '%s' is listed twice (outputs %d and %zu)", nm, v->output_index, i);
      continue;
    }
    g->output_decl[g->noutputs] = declared_type(g, gp->output[i]);
    if (!g->output_decl[g->noutputs]) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "outputs");
    v->output_index = g->noutputs;
    g->outputs[g->noutputs++] = v;
  }
  if (g->noutputs == 0 && !im->errors)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "the graph has no outputs");
  return im->errors ? MOSS_E_INVALID_MODEL : MOSS_OK;
}

/* The IR version, and the default domain's opset into |*out_opset|: an
 * opset or IR version from after what moss knows is unsupported (it may be
 * a valid model of a later ONNX), one that cannot exist is invalid. */
static moss_status model_opset(moss_ctx *ctx, const Onnx__ModelProto *m, int64_t *out_opset) {
  int64_t ir = m->has_ir_version ? m->ir_version : 0, opset = 0;
  size_t i;
  int found = 0, used = 0;
  *out_opset = 0;
  if (ir <= 0)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                     "the model's ir_version is %lld: an ONNX model states the IR version it is "
                     "written in (moss reads IR versions 1 to %d)",
                     (long long)ir, IR_VERSION_MAX);
  if (ir > IR_VERSION_MAX)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                     "the model is written in IR version %lld; moss reads IR versions 1 to %d "
                     "(ONNX 1.16)",
                     (long long)ir, IR_VERSION_MAX);
  for (i = 0; i < m->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *o = m->opset_import[i];
    if (!is_default_domain(o->domain)) continue;
    if (!o->has_version)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                       "the model imports the default ONNX domain without an opset version "
                       "(moss supports opsets %d to %d)",
                       MOSS_OPSET_MIN, MOSS_OPSET_MAX);
    if (found && o->version != opset)
      return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                       "the model imports the default ONNX domain twice (opsets %lld and %lld)",
                       (long long)opset, (long long)o->version);
    opset = o->version;
    found = 1;
  }
  for (i = 0; i < m->graph->n_node; i++) used |= is_default_domain(m->graph->node[i]->domain);
  if (!found && ir < 3) {
    opset = 1; /* before IR version 3 there were no opset imports: opset 1 */
  } else if (!found) {
    if (!used) return MOSS_OK; /* no operator of the default domain */
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                     "the model imports no opset of the default ONNX domain, which its nodes "
                     "use (opset_import; moss supports opsets %d to %d)",
                     MOSS_OPSET_MIN, MOSS_OPSET_MAX);
  }
  if (opset < MOSS_OPSET_MIN)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                     "the model imports opset %lld of the default ONNX domain, which does not "
                     "exist (moss supports opsets %d to %d)",
                     (long long)opset, MOSS_OPSET_MIN, MOSS_OPSET_MAX);
  if (opset > MOSS_OPSET_MAX)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL,
                     "the model imports opset %lld of the default ONNX domain; moss supports "
                     "opsets %d to %d",
                     (long long)opset, MOSS_OPSET_MIN, MOSS_OPSET_MAX);
  *out_opset = opset;
  return MOSS_OK;
}

static moss_status import_memory(moss_ctx *ctx, const char *path, const uint8_t *data, size_t size,
                                 const moss_onnx_binding *bindings, int nbindings, int batch,
                                 moss_graph **out_graph);

moss_status moss_onnx_import_batch(moss_ctx *ctx, const char *path,
                                   const moss_onnx_binding *bindings, int nbindings, int batch,
                                   moss_graph **out_graph) {
  uint8_t *data;
  size_t size;
  moss_status st;
  *out_graph = NULL;
  MOSS_TRY(moss_file_read(ctx, path, &data, &size));
  st = import_memory(ctx, path, data, size, bindings, nbindings, batch, out_graph);
  moss_free(ctx, data, size + 1);
  return st;
}

moss_status moss_onnx_import(moss_ctx *ctx, const char *path, const moss_onnx_binding *bindings,
                             int nbindings, moss_graph **out_graph) {
  return moss_onnx_import_batch(ctx, path, bindings, nbindings, 0, out_graph);
}

moss_status moss_onnx_import_memory(moss_ctx *ctx, const char *path, const uint8_t *data,
                                    size_t size, const moss_onnx_binding *bindings, int nbindings,
                                    moss_graph **out_graph) {
  return import_memory(ctx, path, data, size, bindings, nbindings, 0, out_graph);
}

static moss_status import_memory(moss_ctx *ctx, const char *path, const uint8_t *data, size_t size,
                                 const moss_onnx_binding *bindings, int nbindings, int batch,
                                 moss_graph **out_graph) {
  Onnx__ModelProto *m;
  moss_graph *g;
  importer im;
  moss_status st;
  pb_alloc pa;
  int64_t opset;
  *out_graph = NULL;
  pb_alloc_init(&pa, ctx);
  m = onnx__model_proto__unpack(&pa.a, size, data);
  if (!m && pa.failed)
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "parsing the model (%zu bytes)", size);
  if (!m)
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL,
                     "not an ONNX model: the protobuf is truncated or malformed");
  if (!m->graph) {
    onnx__model_proto__free_unpacked(m, &pa.a);
    return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "not an ONNX model: it has no graph");
  }
  st = model_opset(ctx, m, &opset);
  if (st == MOSS_OK) st = moss_graph_create(ctx, &g);
  if (st != MOSS_OK) {
    onnx__model_proto__free_unpacked(m, &pa.a);
    return st;
  }
  g->opset = opset;
  im.ctx = ctx;
  im.g = g;
  im.path = path;
  im.m = m;
  im.errors = 0;
  im.sc = NULL;
  im.depth = 0;
  im.batch = batch;
  st = import_graph(&im, m->graph, bindings, nbindings);
  onnx__model_proto__free_unpacked(m, &pa.a);
  if (st != MOSS_OK) {
    moss_graph_destroy(ctx, g);
    return st;
  }
  *out_graph = g;
  return MOSS_OK;
}

/* .pb: one serialized TensorProto. */
static moss_status read_pb(moss_ctx *ctx, moss_graph *g, const char *path, const uint8_t *data,
                           size_t size, moss_value **out) {
  pb_alloc pa;
  Onnx__TensorProto *t;
  moss_status st;
  const char *saved = ctx->file;
  pb_alloc_init(&pa, ctx);
  t = onnx__tensor_proto__unpack(&pa.a, size, data);
  if (!t && pa.failed)
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "parsing '%s' (%zu bytes)", path, size);
  if (!t)
    return moss_fail(ctx, MOSS_E_IO, NULL, "'%s' is not a TensorProto (.pb) file", path);
  ctx->file = path;
  st = tensor_to_value(ctx, g, path, t, t->name && *t->name ? t->name : path, out);
  ctx->file = saved;
  onnx__tensor_proto__free_unpacked(t, &pa.a);
  return st;
}

/* Protobuf wire format, for the two messages onnx.proto does not hold
 * (onnx-data.proto's SequenceProto and OptionalProto): a varint at |*p|. */
static int pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t x = 0;
  int shift;
  for (shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    x |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = x;
      return 1;
    }
  }
  return 0;
}

/* A SequenceProto (|opt| 0: name 1, elem_type 2, tensor_values 3) or an
 * OptionalProto (|opt| 1: name 1, elem_type 2, tensor_value 3,
 * sequence_value 5) of |size| bytes at |data| as a list value in |*out|;
 * only tensors (and an optional's sequence of tensors). */
static moss_status read_list(moss_ctx *ctx, moss_graph *g, const char *path, const uint8_t *data,
                             size_t size, int opt, int depth, moss_value **out) {
  const uint8_t *p = data, *end = data + size;
  moss_value *items[4096], *v;
  moss_list *l;
  int n = 0, elem_is_list = 0;
  int64_t elem_type = 0;
  while (p < end) {
    uint64_t key, len;
    if (!pb_varint(&p, end, &key)) goto bad;
    if ((key & 7) == 0) {
      uint64_t x;
      if (!pb_varint(&p, end, &x)) goto bad;
      if (key >> 3 == 2) elem_type = (int64_t)x;
      continue;
    }
    if ((key & 7) != 2 || !pb_varint(&p, end, &len) || len > (uint64_t)(end - p)) goto bad;
    if (key >> 3 == 3 || (opt && key >> 3 == 5)) {
      moss_value *x;
      if (n == (int)(sizeof items / sizeof items[0]) || (opt && n == 1))
        return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "'%s': too many elements", path);
      if (key >> 3 == 3) MOSS_TRY(read_pb(ctx, g, path, p, (size_t)len, &x));
      else if (depth == 0) MOSS_TRY(read_list(ctx, g, path, p, (size_t)len, 0, 1, &x));
      else goto bad;
      elem_is_list = key >> 3 == 5;
      items[n++] = x;
    } else if (key >> 3 != 1) {
      return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "'%s': the %s holds field %d: moss reads %s of tensors", path,
                       opt ? "OptionalProto" : "SequenceProto", (int)(key >> 3),
                       opt ? "optionals of tensors or sequences" : "sequences");
    }
    p += len;
  }
  v = moss_graph_add_value(ctx, g, NULL);
  l = moss_graph_alloc(g, sizeof *l);
  if (!v || !l || !(l->items = moss_graph_alloc(g, sizeof *l->items * (size_t)(n + 1))))
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "'%s'", path);
  l->kind = opt ? MOSS_LIST_OPTIONAL : MOSS_LIST_SEQUENCE;
  l->n = n;
  l->elem_is_list = elem_is_list || (opt && elem_type == 3);
  memcpy(l->items, items, sizeof *items * (size_t)n);
  l->elem = n ? (elem_is_list ? items[0]->list->elem : items[0]->dtype) : MOSS_DT_F32;
  if (!opt && n) {
    int k;
    for (k = 1; k < n; k++)
      if (items[k]->dtype != items[0]->dtype)
        return moss_fail(ctx, MOSS_E_INVALID_MODEL, NULL, "'%s': element %d is %s, element 0 %s", path, k,
                         moss_dtype_name(items[k]->dtype), moss_dtype_name(items[0]->dtype));
  }
  v->list = l;
  v->rank = 0;
  v->dtype = l->elem;
  *out = v;
  return MOSS_OK;
bad:
  return moss_fail(ctx, MOSS_E_IO, NULL, "'%s' is not an ONNX %s (.pb) file", path,
                   opt ? "OptionalProto" : "SequenceProto");
}

moss_status moss_list_file_read(moss_ctx *ctx, moss_graph *g, const char *path, int optional,
                                moss_value **out_value) {
  uint8_t *data;
  size_t size;
  moss_status st;
  *out_value = NULL;
  MOSS_TRY(moss_file_read(ctx, path, &data, &size));
  st = read_list(ctx, g, path, data, size, optional, 0, out_value);
  moss_free(ctx, data, size + 1);
  return st;
}

/* .npy: NumPy format 1.0/2.0/3.0, little-endian, C order, numeric types. */
static moss_status read_npy(moss_ctx *ctx, moss_graph *g, const char *path, const uint8_t *data,
                            size_t size, moss_value **out) {
  size_t hlen, hoff, i;
  char hdr[4096], *p, *q;
  moss_dtype dt = MOSS_DT_UNDEF;
  int rank = 0;
  int64_t dims[MOSS_MAX_RANK];
  size_t nbytes;
  moss_value *v;
  if (size < 10 || memcmp(data, "\x93NUMPY", 6) != 0)
    return moss_fail(ctx, MOSS_E_IO, NULL, "'%s' is not a .npy file", path);
  if (data[6] == 1) {
    hlen = data[8] | (size_t)data[9] << 8;
    hoff = 10;
  } else {
    if (size < 12) return moss_fail(ctx, MOSS_E_IO, NULL, "'%s': truncated .npy header", path);
    hlen = data[8] | (size_t)data[9] << 8 | (size_t)data[10] << 16 | (size_t)data[11] << 24;
    hoff = 12;
  }
  if (hlen >= sizeof hdr || hoff + hlen > size)
    return moss_fail(ctx, MOSS_E_IO, NULL, "'%s': truncated or oversized .npy header", path);
  memcpy(hdr, data + hoff, hlen);
  hdr[hlen] = 0;
  p = strstr(hdr, "'descr':");
  if (!p) return moss_fail(ctx, MOSS_E_IO, NULL, "'%s': .npy header has no descr", path);
  p = strchr(p + 8, '\'');
  if (!p) return moss_fail(ctx, MOSS_E_IO, NULL, "'%s': bad .npy descr", path);
  p++;
  {
    static const struct { const char *d; moss_dtype t; } map[] = {
        {"<f4", MOSS_DT_F32}, {"<f8", MOSS_DT_F64}, {"<i8", MOSS_DT_I64}, {"<i4", MOSS_DT_I32},
        {"<i2", MOSS_DT_I16}, {"|i1", MOSS_DT_I8},  {"|u1", MOSS_DT_U8},  {"<u2", MOSS_DT_U16},
        {"<u4", MOSS_DT_U32}, {"<u8", MOSS_DT_U64}, {"|b1", MOSS_DT_BOOL}, {"<f2", MOSS_DT_F16}};
    for (i = 0; i < sizeof map / sizeof map[0]; i++)
      if (!strncmp(p, map[i].d, 3) && p[3] == '\'') dt = map[i].t;
  }
  if (dt == MOSS_DT_UNDEF)
    return moss_fail(ctx, MOSS_E_IO, NULL, "'%s': unsupported .npy dtype '%.8s'", path, p);
  if (strstr(hdr, "'fortran_order': True"))
    return moss_fail(ctx, MOSS_E_IO, NULL, "'%s': Fortran-order .npy is not supported", path);
  p = strstr(hdr, "'shape':");
  if (!p || !(p = strchr(p, '(')) || !(q = strchr(p, ')')))
    return moss_fail(ctx, MOSS_E_IO, NULL, "'%s': .npy header has no shape", path);
  p++;
  while (p < q) {
    char *end;
    long long d;
    while (p < q && (*p == ' ' || *p == ',')) p++;
    if (p >= q) break;
    d = strtoll(p, &end, 10);
    if (end == p || d < 0 || rank >= MOSS_MAX_RANK)
      return moss_fail(ctx, MOSS_E_IO, NULL, "'%s': bad .npy shape", path);
    dims[rank++] = d;
    p = end;
  }
  v = moss_graph_add_constant(ctx, g, path, dt, rank, dims, NULL);
  if (!v) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "'%s'", path);
  if (moss_value_nbytes_checked(v) < 0) /* else the size below wraps, and matches short data */
    return moss_fail(ctx, MOSS_E_IO, NULL, "'%s': .npy shape too large: its size in bytes "
                     "overflows 64 bits", path);
  nbytes = moss_value_nbytes(v);
  if (moss_value_numel(v) < 0 || size - hoff - hlen != nbytes)
    return moss_fail(ctx, MOSS_E_IO, NULL, "'%s': .npy holds %zu data bytes, its shape needs %zu",
                     path, size - hoff - hlen, nbytes);
  if (nbytes) memcpy(v->data, data + hoff + hlen, nbytes);
  *out = v;
  return MOSS_OK;
}

moss_status moss_tensor_file_read(moss_ctx *ctx, moss_graph *g, const char *path,
                                  moss_value **out_value) {
  uint8_t *data;
  size_t size;
  moss_status st;
  *out_value = NULL;
  MOSS_TRY(moss_file_read(ctx, path, &data, &size));
  if (size >= 6 && memcmp(data, "\x93NUMPY", 6) == 0)
    st = read_npy(ctx, g, path, data, size, out_value);
  else
    st = read_pb(ctx, g, path, data, size, out_value);
  moss_free(ctx, data, size + 1);
  return st;
}

moss_status moss_npy_write(moss_ctx *ctx, const char *path, moss_dtype dt, int rank,
                           const int64_t *dims, const void *data) {
  static const struct { moss_dtype t; const char *d; } map[] = {
      {MOSS_DT_F32, "<f4"}, {MOSS_DT_F64, "<f8"}, {MOSS_DT_I64, "<i8"}, {MOSS_DT_I32, "<i4"},
      {MOSS_DT_I16, "<i2"}, {MOSS_DT_I8, "|i1"},  {MOSS_DT_U8, "|u1"},  {MOSS_DT_U16, "<u2"},
      {MOSS_DT_U32, "<u4"}, {MOSS_DT_U64, "<u8"}, {MOSS_DT_BOOL, "|b1"}, {MOSS_DT_F16, "<f2"},
      {MOSS_DT_BF16, "<u2"}}; /* numpy has no bfloat16: its bits, as onnx's numpy_helper gives them */
  const char *descr = NULL;
  char hdr[512];
  size_t n, i, nbytes = moss_dtype_size(dt);
  int k;
  for (i = 0; i < sizeof map / sizeof map[0]; i++)
    if (map[i].t == dt) descr = map[i].d;
  if (!descr)
    return moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "cannot write %s to .npy", moss_dtype_name(dt));
  n = (size_t)snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (k = 0; k < rank; k++) {
    n += (size_t)snprintf(hdr + n, sizeof hdr - n, "%lld,%s", (long long)dims[k],
                          k + 1 < rank ? " " : "");
    nbytes *= (size_t)dims[k];
  }
  if (rank > 1) n--; /* "(2, 3)" not "(2, 3,)" */
  n += (size_t)snprintf(hdr + n, sizeof hdr - n, "), }");
  while ((10 + n + 1) % 64) hdr[n++] = ' ';
  hdr[n++] = '\n';
  {
    unsigned char magic[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    const void *parts[3];
    size_t sizes[3];
    magic[8] = (unsigned char)(n & 0xff);
    magic[9] = (unsigned char)(n >> 8);
    parts[0] = magic, sizes[0] = sizeof magic;
    parts[1] = hdr, sizes[1] = n;
    parts[2] = data, sizes[2] = nbytes;
    return moss_file_writev(ctx, path, parts, sizes, 3); /* never over an input or a device */
  }
}

/* Protobuf encoding for moss_list_file_write: a varint, a field's key. */
static void pb_put_varint(moss_buf *b, uint64_t x) {
  uint8_t c[10];
  size_t n = 0;
  do {
    c[n] = (uint8_t)(x & 0x7f);
    x >>= 7;
    if (x) c[n] |= 0x80;
    n++;
  } while (x);
  moss_buf_put(b, c, n);
}

static void pb_put_bytes(moss_buf *b, int field, const void *data, size_t n) {
  pb_put_varint(b, (uint64_t)field << 3 | 2);
  pb_put_varint(b, n);
  moss_buf_put(b, data, n);
}

/* A TensorProto: dims (1), data_type (2), raw_data (9). */
static void pb_put_tensor(moss_buf *b, int field, const moss_list_item *t) {
  moss_buf m;
  int64_t numel = 1;
  int k;
  moss_buf_init(&m, b->ctx);
  for (k = 0; k < t->rank; k++) {
    pb_put_varint(&m, 1 << 3);
    pb_put_varint(&m, (uint64_t)t->dims[k]);
    numel *= t->dims[k];
  }
  pb_put_varint(&m, 2 << 3);
  pb_put_varint(&m, (uint64_t)t->dtype);
  pb_put_bytes(&m, 9, t->data, (size_t)numel * moss_dtype_size(t->dtype));
  pb_put_bytes(b, field, m.data, m.len);
  moss_buf_deinit(&m);
}

moss_status moss_list_file_write(moss_ctx *ctx, const char *path, int optional, int of_sequence, int absent,
                                 const moss_list_item *items, int count) {
  moss_buf b, seq;
  moss_status st;
  int k;
  moss_buf_init(&b, ctx);
  moss_buf_init(&seq, ctx);
  /* the sequence: elem_type TENSOR (1), tensor_values (3) */
  pb_put_varint(&seq, 2 << 3);
  pb_put_varint(&seq, 1);
  for (k = 0; k < count && (!optional || of_sequence); k++) pb_put_tensor(&seq, 3, &items[k]);
  if (!optional) {
    moss_buf_put(&b, seq.data, seq.len);
  } else { /* elem_type TENSOR (1) or SEQUENCE (3); tensor_value (3) or sequence_value (5) */
    pb_put_varint(&b, 2 << 3);
    pb_put_varint(&b, of_sequence ? 3 : 1);
    if (!absent && of_sequence) pb_put_bytes(&b, 5, seq.data, seq.len);
    else if (!absent && count == 1) pb_put_tensor(&b, 3, &items[0]);
  }
  st = b.failed || seq.failed ? moss_fail(ctx, MOSS_E_NOMEM, NULL, "'%s'", path)
                              : moss_file_write(ctx, path, b.data, b.len);
  moss_buf_deinit(&b);
  moss_buf_deinit(&seq);
  return st;
}
