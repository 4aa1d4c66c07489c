/* check.c - the first pass: every node names an operator moss knows, in
 * the default ONNX domain (or one of the optimizers of
 * ai.onnx.preview.training), that the model's opset has, with a legal number
 * of inputs and outputs, and attributes of the types ONNX gives them with
 * values in range. All offending nodes are reported, so a user sees the
 * whole list at once. A wrong attribute is never read as its default. */
#include <stdint.h>
#include <string.h>

#include "passes.h"

/* The one domain besides the default one that moss compiles, for its
 * optimizers (ops/optimizer.c) only; the importer takes its version 1. */
#define MOSS_TRAINING_DOMAIN "ai.onnx.preview.training"

/* The opset each operator entered the default ONNX domain in (ONNX's
 * Operators.md); those not listed are in opset 1. */
static const struct { const char *op; int since; } op_since[] = {
    {"Acos", 7}, {"Acosh", 9}, {"Asin", 7}, {"Asinh", 9}, {"Atan", 7}, {"Atanh", 9},
    {"BitShift", 11}, {"BitwiseAnd", 18}, {"BitwiseNot", 18}, {"BitwiseOr", 18},
    {"BitwiseXor", 18}, {"BlackmanWindow", 17}, {"CastLike", 15}, {"Celu", 12},
    {"Compress", 9}, {"ConstantOfShape", 9}, {"ConvInteger", 10}, {"Cos", 7}, {"Cosh", 9},
    {"CumSum", 11}, {"DequantizeLinear", 10}, {"Det", 11}, {"DynamicQuantizeLinear", 11},
    {"Einsum", 12}, {"Erf", 9}, {"Expand", 8}, {"EyeLike", 9}, {"GatherElements", 11},
    {"GatherND", 11}, {"Gelu", 20}, {"GreaterOrEqual", 12}, {"GridSample", 16},
    {"GroupNormalization", 18}, {"HammingWindow", 17}, {"HannWindow", 17}, {"HardSwish", 14},
    {"IsInf", 10}, {"IsNaN", 9}, {"LayerNormalization", 17}, {"LessOrEqual", 12},
    {"MatMulInteger", 10}, {"MaxUnpool", 9}, {"MeanVarianceNormalization", 9}, {"Mish", 18},
    {"Mod", 10}, {"NegativeLogLikelihoodLoss", 12}, {"OneHot", 9}, {"QLinearConv", 10},
    {"QLinearMatMul", 10}, {"QuantizeLinear", 10}, {"Range", 11}, {"Resize", 10},
    {"ReverseSequence", 10}, {"Round", 11}, {"Scan", 8}, {"Scatter", 9}, {"ScatterElements", 11},
    {"ScatterND", 11}, {"Shrink", 9}, {"Sign", 9}, {"Sin", 7}, {"Sinh", 9},
    {"SoftmaxCrossEntropyLoss", 12}, {"Tan", 7}, {"ThresholdedRelu", 10}, {"Trilu", 14},
    {"Where", 9},
    {"DFT", 17}, {"STFT", 17}, {"MelWeightMatrix", 17}, /* signal.c */
    {"RoiAlign", 10}, {"TfIdfVectorizer", 9}, /* region.c */
    {"NonZero", 9}, {"Unique", 11}, {"NonMaxSuppression", 10}, /* bounded.c */
    {"SequenceEmpty", 11}, {"SequenceConstruct", 11}, {"SequenceInsert", 11}, {"SequenceErase", 11},
    {"SequenceAt", 11}, {"SequenceLength", 11}, {"ConcatFromSequence", 11}, {"SplitToSequence", 11},
    {"SequenceMap", 17}, {"Optional", 15}, {"OptionalHasElement", 15}, {"OptionalGetElement", 15},
};

/* ONNX's attribute types (AttributeProto.AttributeType); moss_attr_type
 * holds the first eight, the importer keeps the others' codes. */
enum {
  A_UNDEF, A_FLOAT, A_INT, A_STRING, A_TENSOR, A_GRAPH, A_FLOATS, A_INTS, A_STRINGS,
  A_TENSORS, A_GRAPHS, A_SPARSE_TENSOR, A_SPARSE_TENSORS, A_TYPE_PROTO, A_TYPE_PROTOS
};

static const char *const type_names[] = {
    "UNDEFINED (no value)", "FLOAT", "INT", "STRING", "TENSOR", "GRAPH", "FLOATS", "INTS",
    "STRINGS", "TENSORS", "GRAPHS", "SPARSE_TENSOR", "SPARSE_TENSORS", "TYPE_PROTO",
    "TYPE_PROTOS"};

static const char *type_name(int t) {
  return t >= 0 && t < (int)(sizeof type_names / sizeof type_names[0]) ? type_names[t] : "unknown";
}

/* The type of each attribute of the operators moss knows, by name: ONNX
 * gives a name one type across its operators, but for the three cases in
 * expected_type(). Every attribute name moss reads must be here (moss's own
 * operators' qmin, qmax and global never reach this pass). */
static const struct { const char *name; int type; } attr_types[] = {
    {"activation_alpha", A_FLOATS}, {"body", A_GRAPH}, {"else_branch", A_GRAPH},
    {"then_branch", A_GRAPH}, {"num_scan_inputs", A_INT}, {"scan_input_axes", A_INTS},
    {"scan_input_directions", A_INTS}, {"scan_output_axes", A_INTS},
    {"scan_output_directions", A_INTS}, {"directions", A_INTS}, {"activation_beta", A_FLOATS}, {"activations", A_STRINGS},
    {"clip", A_FLOAT}, {"hidden_size", A_INT}, {"input_forget", A_INT}, {"layout", A_INT},
    {"linear_before_reset", A_INT},
    {"align_corners", A_INT}, {"allowzero", A_INT}, {"alpha", A_FLOAT}, {"antialias", A_INT},
    {"approximate", A_STRING}, {"auto_pad", A_STRING}, {"axes", A_INTS}, {"axis", A_INT},
    {"batch_axis", A_INT}, {"batch_dims", A_INT}, {"beta", A_FLOAT}, {"bias", A_FLOAT},
    {"block_size", A_INT}, {"blocksize", A_INT}, {"broadcast", A_INT}, {"ceil_mode", A_INT},
    {"consumed_inputs", A_INTS}, {"coordinate_transformation_mode", A_STRING},
    {"count_include_pad", A_INT}, {"cubic_coeff_a", A_FLOAT}, {"detect_negative", A_INT},
    {"detect_positive", A_INT}, {"dilations", A_INTS}, {"direction", A_STRING}, {"dtype", A_INT},
    {"end", A_INT}, {"ends", A_INTS}, {"epsilon", A_FLOAT}, {"equation", A_STRING},
    {"exclude_outside", A_INT}, {"exclusive", A_INT}, {"extrapolation_value", A_FLOAT},
    {"fmod", A_INT}, {"gamma", A_FLOAT}, {"group", A_INT}, {"height_scale", A_FLOAT},
    {"ignore_index", A_INT}, {"is_test", A_INT}, {"k", A_INT}, {"keep_aspect_ratio_policy", A_STRING},
    {"keepdims", A_INT}, {"kernel_shape", A_INTS}, {"lambd", A_FLOAT}, {"largest", A_INT},
    {"max", A_FLOAT}, {"min", A_FLOAT}, {"mode", A_STRING}, {"momentum", A_FLOAT},
    {"nearest_mode", A_STRING}, {"noop_with_empty_axes", A_INT}, {"num_groups", A_INT},
    {"num_outputs", A_INT}, {"output_datatype", A_INT}, {"output_dtype", A_INT},
    {"output_padding", A_INTS}, {"output_shape", A_INTS}, {"p", A_INT}, {"padding_mode", A_STRING},
    {"paddings", A_INTS}, {"pads", A_INTS}, {"periodic", A_INT}, {"perm", A_INTS},
    {"ratio", A_FLOAT}, {"reduction", A_STRING}, {"reverse", A_INT}, {"saturate", A_INT},
    {"scales", A_FLOATS}, {"seed", A_INT}, {"select_last_index", A_INT}, {"shape", A_INTS},
    {"size", A_INT}, {"sorted", A_INT}, {"sparse_value", A_SPARSE_TENSOR}, {"spatial", A_INT},
    {"split", A_INTS}, {"stash_type", A_INT}, {"start", A_INT}, {"starts", A_INTS},
    {"storage_order", A_INT}, {"strides", A_INTS}, {"time_axis", A_INT}, {"to", A_INT},
    {"training_mode", A_INT}, {"transA", A_INT}, {"transB", A_INT}, {"upper", A_INT},
    {"value", A_TENSOR}, {"value_float", A_FLOAT}, {"value_floats", A_FLOATS},
    {"value_int", A_INT}, {"value_ints", A_INTS}, {"value_string", A_STRING},
    {"value_strings", A_STRINGS}, {"width_scale", A_FLOAT},
    {"decay_factor", A_FLOAT}, {"norm_coefficient", A_FLOAT},
    {"norm_coefficient_post", A_FLOAT}, /* Adagrad, Adam, Momentum */
    {"inverse", A_INT}, {"onesided", A_INT}, /* DFT, STFT */
    {"output_height", A_INT}, {"output_width", A_INT}, {"sampling_ratio", A_INT},
    {"spatial_scale", A_FLOAT}, /* RoiAlign */
    {"center_point_box", A_INT}, /* NonMaxSuppression */
    {"max_gram_length", A_INT}, {"max_skip_count", A_INT}, {"min_gram_length", A_INT},
    {"ngram_counts", A_INTS}, {"ngram_indexes", A_INTS}, {"pool_int64s", A_INTS},
    {"pool_strings", A_STRINGS}, {"weights", A_FLOATS}, /* TfIdfVectorizer */
};

/* Sizes of convolution and pooling windows: strides, dilations and kernel
 * sizes are at least 1, pads and group at least 0 and 1, a recurrent
 * layer's hidden_size at least 1; none is above
 * INT32_MAX, which keeps the window arithmetic of every backend in range.
 * Pad's own pads may be negative (they crop). */
static const struct { const char *name; int64_t lo; } attr_ranges[] = {
    {"dilations", 1}, {"group", 1}, {"hidden_size", 1}, {"kernel_shape", 1}, {"output_padding", 0},
    {"paddings", 0}, {"pads", 0}, {"strides", 1},
};

static int since(const char *op) {
  size_t i;
  for (i = 0; i < sizeof op_since / sizeof op_since[0]; i++)
    if (!strcmp(op_since[i].op, op)) return op_since[i].since;
  return 1;
}

/* The ONNX type of attribute |name| of |n| (A_UNDEF: not one moss knows);
 * |*out_legacy| is set when that is an old opset's form moss does not read. */
static int expected_type(const moss_node *n, const char *name, int *out_legacy) {
  size_t i;
  *out_legacy = 0;
  if (!strcmp(name, "p") && (n->op == MOSS_OP_LpPool || n->op == MOSS_OP_GlobalLpPool) &&
      n->opset == 1) {
    *out_legacy = 1; /* a float before opset 2 */
    return A_FLOAT;
  }
  if (!strcmp(name, "to") && n->op == MOSS_OP_Cast && n->opset > 0 && n->opset < 6) {
    *out_legacy = 1; /* a type name before opset 6 */
    return A_STRING;
  }
  if (!strcmp(name, "axis") && !strcmp(moss_op_infos[n->op].family, "binary") && n->opset > 0 &&
      n->opset < 7) {
    *out_legacy = 1; /* broadcasting from an axis before opset 7, not numpy's */
    return A_INT;
  }
  if (!strcmp(name, "value") && n->op == MOSS_OP_Pad) return A_FLOAT;
  for (i = 0; i < sizeof attr_types / sizeof attr_types[0]; i++)
    if (!strcmp(attr_types[i].name, name)) return attr_types[i].type;
  return A_UNDEF;
}

/* The attributes of |n|: each name once, each of its ONNX type (an INT
 * where a FLOAT is expected is read as that number), window sizes in range. */
static moss_status check_attrs(moss_ctx *ctx, const moss_node *n) {
  moss_status st = MOSS_OK;
  int i, j, k;
  for (i = 0; i < n->nattrs; i++) {
    const moss_attr *a = &n->attrs[i];
    int want, legacy, dup = 0;
    for (j = 0; j < i; j++) dup |= !strcmp(n->attrs[j].name, a->name);
    if (dup) {
      st = moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "attribute '%s' is given twice", a->name);
      continue;
    }
    want = expected_type(n, a->name, &legacy);
    if (want == A_UNDEF) continue; /* not one moss reads */
    if ((int)a->type != want && !(want == A_FLOAT && a->type == MOSS_ATTR_INT)) {
      st = moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "attribute '%s' is %s; %s expects %s", a->name,
                     type_name((int)a->type), n->op_type, type_name(want));
      continue;
    }
    if (legacy) {
      if (st == MOSS_OK) st = MOSS_E_UNSUPPORTED;
      moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                "attribute '%s' as %s (the opset %lld form of %s) is not supported", a->name,
                type_name(want), (long long)n->opset, n->op_type);
      continue;
    }
    for (j = 0; j < (int)(sizeof attr_ranges / sizeof attr_ranges[0]); j++) {
      int64_t lo = attr_ranges[j].lo, hi = INT32_MAX;
      int cnt = a->type == MOSS_ATTR_INTS ? a->n : 1;
      if (strcmp(attr_ranges[j].name, a->name)) continue;
      if (n->op == MOSS_OP_Pad) lo = -hi;
      for (k = 0; k < cnt; k++) {
        int64_t v = a->type == MOSS_ATTR_INTS ? a->ints[k] : a->i;
        if (v >= lo && v <= hi) continue;
        st = moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
                       "attribute '%s' holds %lld%s; %s takes %lld to %lld", a->name,
                       (long long)v, cnt > 1 ? " among its values" : "", n->op_type,
                       (long long)lo, (long long)hi);
        break;
      }
    }
  }
  return st;
}

/* The checks of one node, and of the nodes of its subgraphs (If's
 * branches), every offence reported; the first one's status. */
static moss_status check_node(moss_ctx *ctx, moss_node *n) {
  const moss_op_info *info = &moss_op_infos[n->op];
  int nin = n->ninputs, nout = n->noutputs, k, j;
  moss_status st, first = MOSS_OK;
  if (n->domain && !strcmp(n->domain, MOSS_TRAINING_DOMAIN)) {
    if (strcmp(info->family, "optimizer")) {
      moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                "operator '%s' of domain '%s' is not supported (moss compiles Adagrad, Adam and "
                "Momentum of that domain)",
                n->op_type, n->domain);
      return MOSS_E_UNSUPPORTED;
    }
  } else if (n->domain && *n->domain) {
    moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
              "operator domain '%s' is not supported (moss compiles the default ONNX domain, "
              "opsets %d to %d)",
              n->domain, MOSS_OPSET_MIN, MOSS_OPSET_MAX);
    return MOSS_E_UNSUPPORTED;
  } else if (!strcmp(info->family, "optimizer")) {
    moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
              "operator '%s' is not in the default ONNX domain; ONNX defines it in '%s'",
              n->op_type, MOSS_TRAINING_DOMAIN);
    return MOSS_E_INVALID_MODEL;
  }
  if (n->op == MOSS_OP_UNKNOWN_ || !strcmp(info->family, "qfold") ||
      !strcmp(info->family, "fused") || n->op == MOSS_OP_MossCompact) { /* moss's own, internal */
    moss_fail(ctx, MOSS_E_UNSUPPORTED, n, "operator '%s' is not supported", n->op_type);
    return MOSS_E_UNSUPPORTED;
  }
  if (n->opset > 0 && n->opset < since(info->name)) { /* opset 0: a graph built by hand */
    moss_fail(ctx, MOSS_E_INVALID_MODEL, n,
              "operator %s is in the default ONNX domain from opset %d; the model imports "
              "opset %lld",
              info->name, since(info->name), (long long)n->opset);
    return MOSS_E_INVALID_MODEL;
  }
  first = check_attrs(ctx, n);
  while (nin > 0 && !n->inputs[nin - 1]) nin--;
  while (nout > 0 && !n->outputs[nout - 1]) nout--;
  if (nin < info->min_in || (info->max_in >= 0 && nin > info->max_in)) {
    if (!first) first = MOSS_E_INVALID_MODEL;
    moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "has %d inputs; %s takes %d to %d", nin, info->name,
              info->min_in, info->max_in);
  } else if (nout < 1 || (info->max_out >= 0 && nout > info->max_out)) {
    if (!first) first = MOSS_E_INVALID_MODEL;
    moss_fail(ctx, MOSS_E_INVALID_MODEL, n, "has %d outputs; %s gives %d to %d", nout,
              info->name, info->min_out, info->max_out);
  }
  n->ninputs = nin;
  for (k = 0; k < n->nattrs; k++) {
    const moss_subgraph *sg = n->attrs[k].type == MOSS_ATTR_GRAPH ? n->attrs[k].graph : NULL;
    for (j = 0; sg && j < sg->nnodes; j++) {
      st = check_node(ctx, sg->nodes[j]);
      if (st != MOSS_OK && !first) first = st;
    }
  }
  return first;
}

moss_status moss_pass_check(moss_ctx *ctx, moss_graph *g) {
  int i;
  moss_status first = MOSS_OK;
  for (i = 0; i < g->nnodes; i++) {
    moss_status st = check_node(ctx, g->nodes[i]);
    if (st != MOSS_OK && !first) first = st;
  }
  return first;
}
