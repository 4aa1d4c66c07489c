/* compile.c - the compile side of the npu-systolic plugin: the machine's
 * parameters from the target (npu_cfg_parse), which nodes of moss's int8
 * path it takes and why not (npu_layer_analyze, supports()), and lower():
 * places each tensor of the subgraph in device DRAM (host buffers for the
 * subgraph's inputs and outputs, the scratch region for the others, the
 * constant region for constants), lowers each node through tile.c, and
 * writes the blob of blob.h. It sees only the views of moss_plugin.h and
 * allocates with malloc because it runs inside the compiler, not on the
 * device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npu.h"

/* ---- the machine ---------------------------------------------------------- */

static const moss_plugin_param *param(const moss_plugin_target *t, const char *name) {
  int i;
  for (i = 0; i < t->nparams; i++)
    if (t->params[i].name && strcmp(t->params[i].name, name) == 0) return &t->params[i];
  return NULL;
}

static const moss_plugin_level *level(const moss_plugin_target *t, const char *name) {
  int i;
  for (i = 0; i < t->nlevels; i++)
    if (t->levels[i].name && strcmp(t->levels[i].name, name) == 0) return &t->levels[i];
  return NULL;
}

/* The integer param |name| in [lo, hi]. */
static int param_u32(const moss_plugin_target *t, const char *name, uint32_t lo, uint32_t hi,
                     uint32_t *out, char *why, size_t cap) {
  const moss_plugin_param *p = param(t, name);
  char *end;
  unsigned long long v;
  if (!p || !p->value) {
    snprintf(why, cap, "device '%s': param '%s' missing", t->device ? t->device : "?", name);
    return 0;
  }
  v = strtoull(p->value, &end, 10);
  if (end == p->value || *end || p->value[0] == '-' || v < lo || v > hi) {
    snprintf(why, cap, "device '%s': param '%s' = '%s', expected %u .. %u",
             t->device ? t->device : "?", name, p->value, (unsigned)lo, (unsigned)hi);
    return 0;
  }
  *out = (uint32_t)v;
  return 1;
}

int npu_cfg_parse(const moss_plugin_target *t, npu_cfg *cfg, char *why, size_t cap) {
  const moss_plugin_level *sram, *dram;
  double ghz, lat;
  memset(cfg, 0, sizeof *cfg);
  if (!t) {
    snprintf(why, cap, "no device facts");
    return 0;
  }
  if (!param_u32(t, "array-rows", 1, 256, &cfg->rows, why, cap) ||
      !param_u32(t, "array-cols", 1, 256, &cfg->cols, why, cap) ||
      !param_u32(t, "weight-sram-bytes", NPU_MIN_SRAM, NPU_MAX_SRAM, &cfg->wsram, why, cap) ||
      !param_u32(t, "act-sram-bytes", NPU_MIN_SRAM, NPU_MAX_SRAM, &cfg->asram, why, cap) ||
      !param_u32(t, "acc-sram-bytes", NPU_MIN_SRAM, NPU_MAX_SRAM, &cfg->accsram, why, cap) ||
      !param_u32(t, "vector-lanes", 1, 4096, &cfg->lanes, why, cap))
    return 0;
  if (!(t->clock_mhz > 0) || !isfinite(t->clock_mhz)) {
    snprintf(why, cap, "device '%s': no clock", t->device ? t->device : "?");
    return 0;
  }
  dram = level(t, "dram");
  if (!dram || !(dram->bandwidth_gbps > 0) || !isfinite(dram->bandwidth_gbps)) {
    snprintf(why, cap, "device '%s': no memory level 'dram' with a bandwidth",
             t->device ? t->device : "?");
    return 0;
  }
  sram = level(t, "sram");
  ghz = t->clock_mhz / 1000.0;
  cfg->clock_mhz = t->clock_mhz;
  cfg->dram_bpc = dram->bandwidth_gbps / ghz;
  lat = dram->latency_ns > 0 && isfinite(dram->latency_ns) ? ceil(dram->latency_ns * ghz) : 0;
  cfg->dma_latency = lat > (double)(1u << 20) ? 1u << 20 : (uint32_t)lat;
  cfg->pj_mac = t->pj_per_mac_i8 >= 0 && isfinite(t->pj_per_mac_i8) ? t->pj_per_mac_i8 : -1;
  cfg->pj_sram =
      sram && sram->pj_per_byte >= 0 && isfinite(sram->pj_per_byte) ? sram->pj_per_byte : -1;
  cfg->pj_dram = dram->pj_per_byte >= 0 && isfinite(dram->pj_per_byte) ? dram->pj_per_byte : -1;
  cfg->idle_w = t->idle_w >= 0 && isfinite(t->idle_w) ? t->idle_w : -1;
  return 1;
}

/* ---- nodes ---------------------------------------------------------------- */

const moss_plugin_attr *npu_attr(const moss_plugin_node *n, const char *name) {
  int i;
  for (i = 0; i < n->nattrs; i++)
    if (n->attrs[i].name && strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
  return NULL;
}

int64_t npu_attr_int(const moss_plugin_node *n, const char *name, int64_t def) {
  const moss_plugin_attr *a = npu_attr(n, name);
  return a && a->kind == MOSS_PLUGIN_ATTR_INT ? a->i : def;
}

static int is8(const moss_plugin_tensor *t) {
  return t && (t->dtype == MOSS_PLUGIN_INT8 || t->dtype == MOSS_PLUGIN_UINT8);
}

static const moss_plugin_tensor *in_at(const moss_plugin_node *n, int i) {
  return i < n->ninputs ? n->inputs[i] : NULL;
}

static int64_t numel(const moss_plugin_tensor *t) {
  int64_t e = 1;
  int i;
  for (i = 0; i < t->rank; i++)
    e *= t->dims[i];
  return e;
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
  return "an unsupported type";
}

/* The constant 8-bit zero point at input |i| (one value): 1 and |*out|. */
static int zp_at(const moss_plugin_node *n, int i, int32_t *out) {
  const moss_plugin_tensor *t = in_at(n, i);
  if (!t) {
    *out = 0;
    return 1;
  }
  if (!t->data || !is8(t) || numel(t) != 1) return 0;
  *out = t->dtype == MOSS_PLUGIN_INT8 ? (int32_t) * (const int8_t *)t->data
                                      : (int32_t) * (const uint8_t *)t->data;
  return 1;
}

/* Only attributes from |names| (NULL-terminated). */
static int attrs_known(const moss_plugin_node *n, const char *const *names, char *why, size_t cap) {
  int i, k;
  for (i = 0; i < n->nattrs; i++) {
    for (k = 0; names[k]; k++)
      if (n->attrs[i].name && strcmp(n->attrs[i].name, names[k]) == 0) break;
    if (!names[k]) {
      snprintf(why, cap, "%s: attribute '%s' not supported", n->op_type, n->attrs[i].name);
      return 0;
    }
  }
  return 1;
}

/* |cnt| ints of attribute |name| into |out| (|def| each when absent). */
static int ints_attr(const moss_plugin_node *n, const char *name, int cnt, int64_t def,
                     int64_t *out) {
  const moss_plugin_attr *a = npu_attr(n, name);
  int k;
  for (k = 0; k < cnt; k++)
    out[k] = def;
  if (!a) return 1;
  if (a->kind != MOSS_PLUGIN_ATTR_INTS || a->count != cnt) return 0;
  for (k = 0; k < cnt; k++)
    out[k] = a->ints[k];
  return 1;
}

/* The clamp of the 8-bit output: the type's range narrowed by qmin/qmax. */
static void out_range(const moss_plugin_node *n, int s8, int32_t *lo, int32_t *hi) {
  int64_t tlo = s8 ? -128 : 0, thi = s8 ? 127 : 255;
  int64_t a = npu_attr_int(n, "qmin", tlo), b = npu_attr_int(n, "qmax", thi);
  if (a < tlo) a = tlo;
  if (b > thi) b = thi;
  if (a > thi) a = thi;
  if (b < a) b = a; /* an empty range: every output is max(qmin) then min(qmax) */
  *lo = (int32_t)a;
  *hi = (int32_t)b;
}

/* The signedness of a product layer's operands, its output range and its
 * tensors; returns 1. */
static int operands(const moss_plugin_node *n, npu_layer *l, const moss_plugin_tensor *x,
                    const moss_plugin_tensor *w, const moss_plugin_tensor *y) {
  l->xs8 = x->dtype == MOSS_PLUGIN_INT8;
  l->ws8 = w->dtype == MOSS_PLUGIN_INT8;
  l->ys8 = y->dtype == MOSS_PLUGIN_INT8;
  out_range(n, l->ys8, &l->lo, &l->hi);
  l->x = x, l->y = y;
  return 1;
}

/* Window geometry (kernel, strides, dilations, pads) of a conv or pool
 * node over x [B, C, H, W] -> y [.., OH, OW]; checks that the output dims
 * follow from it. */
static int window(const moss_plugin_node *n, npu_layer *l, const int64_t *k, char *why,
                  size_t cap) {
  const moss_plugin_attr *ap = npu_attr(n, "auto_pad");
  const char *mode = ap && ap->kind == MOSS_PLUGIN_ATTR_STRING && ap->s ? ap->s : "NOTSET";
  int64_t s[2], d[2], p[4], in[2], out[2], kk[2];
  int ceil_mode = (int)npu_attr_int(n, "ceil_mode", 0), i;
  if (!ints_attr(n, "strides", 2, 1, s) || !ints_attr(n, "dilations", 2, 1, d) ||
      !ints_attr(n, "pads", 4, 0, p)) {
    snprintf(why, cap, "%s: strides, dilations or pads are not 2-D", n->op_type);
    return 0;
  }
  in[0] = l->H, in[1] = l->W, out[0] = l->OH, out[1] = l->OW, kk[0] = k[0], kk[1] = k[1];
  for (i = 0; i < 2; i++) {
    int64_t ek = (kk[i] - 1) * d[i] + 1, total, want;
    if (kk[i] < 1 || s[i] < 1 || d[i] < 1 || p[i] < 0 || p[i + 2] < 0) {
      snprintf(why, cap, "%s: invalid window", n->op_type);
      return 0;
    }
    if (kk[i] > 7 || s[i] > 7 || d[i] > 7) {
      snprintf(why, cap, "%s: %s %lld > 7", n->op_type,
               kk[i] > 7  ? "kernel"
               : s[i] > 7 ? "stride"
                          : "dilation",
               (long long)(kk[i] > 7  ? kk[i]
                           : s[i] > 7 ? s[i]
                                      : d[i]));
      return 0;
    }
    if (!strcmp(mode, "SAME_UPPER") || !strcmp(mode, "SAME_LOWER")) {
      total = (out[i] - 1) * s[i] + ek - in[i];
      if (total < 0) total = 0;
      p[i] = !strcmp(mode, "SAME_UPPER") ? total / 2 : total - total / 2;
      p[i + 2] = total - p[i];
      want = (in[i] + s[i] - 1) / s[i];
    } else if (!strcmp(mode, "VALID") || !strcmp(mode, "NOTSET")) {
      int64_t span;
      if (!strcmp(mode, "VALID")) p[i] = p[i + 2] = 0;
      span = in[i] + p[i] + p[i + 2] - ek;
      if (span < 0) {
        snprintf(why, cap, "%s: window larger than its input", n->op_type);
        return 0;
      }
      want = (ceil_mode ? (span + s[i] - 1) / s[i] : span / s[i]) + 1;
      /* ONNX: a ceil_mode window that would start in the end padding is dropped */
      if (ceil_mode && (want - 1) * s[i] >= in[i] + p[i]) want--;
    } else {
      snprintf(why, cap, "%s: auto_pad '%s' not supported", n->op_type, mode);
      return 0;
    }
    if (want != out[i]) {
      snprintf(why, cap, "%s: output size %lld, the window gives %lld", n->op_type,
               (long long)out[i], (long long)want);
      return 0;
    }
    if (p[i] > 255 || p[i + 2] > 255) {
      snprintf(why, cap, "%s: padding %lld > 255", n->op_type,
               (long long)(p[i] > p[i + 2] ? p[i] : p[i + 2]));
      return 0;
    }
  }
  l->kh = k[0], l->kw = k[1], l->sh = s[0], l->sw = s[1], l->dh = d[0], l->dw = d[1];
  l->pt = p[0], l->pl = p[1], l->pb = p[2], l->pr = p[3];
  return 1;
}

static int nchw(const moss_plugin_tensor *t, npu_layer *l, int out) {
  if (!t || t->rank != 4) return 0;
  if (out) {
    l->OH = t->dims[2], l->OW = t->dims[3];
  } else {
    l->B = t->dims[0], l->C = t->dims[1], l->H = t->dims[2], l->W = t->dims[3];
  }
  return 1;
}

#define FAIL(...)                                                                                  \
  do {                                                                                             \
    snprintf(why, cap, __VA_ARGS__);                                                               \
    return 0;                                                                                      \
  } while (0)

/* The per-output-column constants of a product layer of |l->N| columns:
 * weight zero points of |w|'s type (one or one per column), an int32 bias
 * (or none) and moss's multipliers (one or one per column). 1 when they
 * are usable, else 0 with the reason. */
static int per_column(const moss_plugin_node *n, const npu_layer *l, const moss_plugin_tensor *w,
                      const moss_plugin_tensor *wz, const moss_plugin_tensor *bias, char *why,
                      size_t cap) {
  if (!wz || !wz->data || !is8(wz) || wz->dtype != w->dtype ||
      (numel(wz) != 1 && numel(wz) != l->N))
    FAIL("%s: weight zero points", n->op_type);
  if (bias && (bias->dtype != MOSS_PLUGIN_INT32 || !bias->data || numel(bias) != l->N))
    FAIL("%s: bias is not an int32 constant of %lld", n->op_type, (long long)l->N);
  if (!n->requant || (n->nrequant != 1 && n->nrequant != l->N))
    FAIL("%s: no requantization multipliers from moss", n->op_type);
  return 1;
}

static int conv(const moss_plugin_node *n, npu_layer *l, char *why, size_t cap) {
  static const char *const known[] = {
      "auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", "qmin", "qmax", NULL};
  const moss_plugin_tensor *x = in_at(n, 0), *w = in_at(n, 3), *wz = in_at(n, 5),
                           *bias = in_at(n, 8), *y = n->noutputs > 0 ? n->outputs[0] : NULL;
  int64_t group = npu_attr_int(n, "group", 1), ks[2];
  if (!attrs_known(n, known, why, cap)) return 0;
  if (n->ninputs < 8 || !x || !w || !y) FAIL("QLinearConv: malformed");
  if (x->rank != 4) FAIL("QLinearConv: %d-D (2-D only)", x->rank - 2);
  if (!is8(x) || !is8(y) || !is8(w))
    FAIL("QLinearConv: 8-bit only, '%s' is %s",
         !is8(x)   ? x->name
         : !is8(y) ? y->name
                   : w->name,
         dtype_str(!is8(x)   ? x->dtype
                   : !is8(y) ? y->dtype
                             : w->dtype));
  if (!w->data || w->rank != 4) FAIL("QLinearConv: weights are not a constant");
  if (!zp_at(n, 2, &l->xzp) || !zp_at(n, 7, &l->yzp))
    FAIL("QLinearConv: zero points are not constants");
  nchw(x, l, 0);
  if (!nchw(y, l, 1) || y->dims[0] != l->B || y->dims[1] != w->dims[0])
    FAIL("QLinearConv: output shape");
  l->N = w->dims[0];
  if (!per_column(n, l, w, wz, bias, why, cap)) return 0;
  if (group == 1 && w->dims[1] == l->C)
    l->kind = NPU_L_CONV;
  else if (group == l->C && l->N == l->C && w->dims[1] == 1)
    l->kind = NPU_L_DW;
  else
    FAIL("QLinearConv: group %lld (1 and depthwise only)", (long long)group);
  ks[0] = w->dims[2], ks[1] = w->dims[3];
  if (!window(n, l, ks, why, cap)) return 0;
  return operands(n, l, x, w, y);
}

static int gemm(const moss_plugin_node *n, npu_layer *l, char *why, size_t cap) {
  static const char *const known[] = {"qmin", "qmax", NULL};
  const moss_plugin_tensor *x = in_at(n, 0), *w = in_at(n, 3), *wz = in_at(n, 5),
                           *bias = in_at(n, 8), *y = n->noutputs > 0 ? n->outputs[0] : NULL;
  if (!attrs_known(n, known, why, cap)) return 0;
  if (n->ninputs < 8 || !x || !w || !y) FAIL("MossQGemm: malformed");
  if (x->rank < 2) FAIL("MossQGemm: input of rank %d", x->rank);
  if (!is8(x) || !is8(y) || !is8(w) || !w->data || w->rank != 2)
    FAIL("MossQGemm: 8-bit constant weights and 8-bit data only");
  if (!zp_at(n, 2, &l->xzp) || !zp_at(n, 7, &l->yzp))
    FAIL("MossQGemm: zero points are not constants");
  /* x [..., K] row-major is x [M, K]: the leading dimensions are rows */
  l->C = x->dims[x->rank - 1], l->N = w->dims[0];
  l->H = l->C ? numel(x) / l->C : 0;
  if (w->dims[1] != l->C || y->rank != x->rank || y->dims[y->rank - 1] != l->N ||
      numel(y) != l->H * l->N || l->H < 1 || l->C < 1)
    FAIL("MossQGemm: shapes");
  if (!per_column(n, l, w, wz, bias, why, cap)) return 0;
  l->kind = NPU_L_FC;
  l->B = 1, l->W = l->H, l->OH = 1, l->OW = l->H;
  l->kh = l->kw = l->sh = l->sw = l->dh = l->dw = 1;
  return operands(n, l, x, w, y);
}

static int pool(const moss_plugin_node *n, npu_layer *l, char *why, size_t cap) {
  static const char *const kmax[] = {"auto_pad", "ceil_mode", "dilations",     "kernel_shape",
                                     "pads",     "strides",   "storage_order", NULL};
  static const char *const kavg[] = {"auto_pad",
                                     "ceil_mode",
                                     "count_include_pad",
                                     "dilations",
                                     "kernel_shape",
                                     "pads",
                                     "strides",
                                     "global",
                                     "qmin",
                                     "qmax",
                                     NULL};
  int avg = !strcmp(n->op_type, "MossQAvgPool");
  const moss_plugin_tensor *x = in_at(n, 0), *y = n->noutputs > 0 ? n->outputs[0] : NULL;
  int64_t ks[2];
  if (!attrs_known(n, avg ? kavg : kmax, why, cap)) return 0;
  if (!x || !y) FAIL("%s: malformed", n->op_type);
  if (!is8(x) || !is8(y)) FAIL("%s: %s data", n->op_type, dtype_str(!is8(x) ? x->dtype : y->dtype));
  if (x->rank != 4 || y->rank != 4) FAIL("%s: %d-D (2-D only)", n->op_type, x->rank - 2);
  if (!avg && (n->noutputs > 1 && n->outputs[1])) FAIL("MaxPool: Indices output");
  if (!avg && x->dtype != y->dtype) FAIL("MaxPool: output type differs");
  nchw(x, l, 0);
  nchw(y, l, 1);
  l->N = l->C;
  if (y->dims[0] != l->B || y->dims[1] != l->C) FAIL("%s: output shape", n->op_type);
  if (avg) {
    if (n->ninputs < 5 || !zp_at(n, 2, &l->xzp) || !zp_at(n, 4, &l->yzp))
      FAIL("MossQAvgPool: zero points are not constants");
    l->global = npu_attr_int(n, "global", 0) != 0;
    l->incpad = npu_attr_int(n, "count_include_pad", 0) != 0;
  }
  if (avg && l->global) {
    if (l->OH != 1 || l->OW != 1) FAIL("MossQAvgPool: global output shape");
    l->kh = l->H, l->kw = l->W, l->sh = l->sw = l->dh = l->dw = 1;
    l->pt = l->pl = l->pb = l->pr = 0;
    if (l->H * l->W > 65535)
      FAIL("MossQAvgPool: global window of %lld > 65535", (long long)(l->H * l->W));
  } else {
    const moss_plugin_attr *k = npu_attr(n, "kernel_shape");
    if (!k || k->kind != MOSS_PLUGIN_ATTR_INTS || k->count != 2)
      FAIL("%s: kernel_shape", n->op_type);
    ks[0] = k->ints[0], ks[1] = k->ints[1];
    if (!window(n, l, ks, why, cap)) return 0;
  }
  l->xs8 = x->dtype == MOSS_PLUGIN_INT8;
  l->ys8 = y->dtype == MOSS_PLUGIN_INT8;
  if (avg) {
    int64_t nq = l->global ? 1 : l->kh * l->kw + 1;
    if (!n->requant || n->nrequant != nq)
      FAIL("MossQAvgPool: %d multipliers from moss, expected %lld", (int)n->nrequant,
           (long long)nq);
    out_range(n, l->ys8, &l->lo, &l->hi);
    l->kind = NPU_L_AVGPOOL;
  } else {
    l->lo = l->ys8 ? -128 : 0, l->hi = l->ys8 ? 127 : 255;
    l->kind = NPU_L_MAXPOOL;
  }
  l->x = x, l->y = y;
  return 1;
}

static int same_shape(const moss_plugin_tensor *a, const moss_plugin_tensor *b) {
  int i;
  if (a->rank != b->rank) return 0;
  for (i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return 0;
  return 1;
}

/* MossQAdd and MossQMul. */
static int add(const moss_plugin_node *n, npu_layer *l, char *why, size_t cap) {
  static const char *const known[] = {"qmin", "qmax", NULL};
  const moss_plugin_tensor *a = in_at(n, 0), *b = in_at(n, 3),
                           *y = n->noutputs > 0 ? n->outputs[0] : NULL;
  int mul = !strcmp(n->op_type, "MossQMul");
  if (!attrs_known(n, known, why, cap)) return 0;
  if (n->ninputs < 8 || !a || !b || !y) FAIL("%s: malformed", n->op_type);
  if (!is8(a) || !is8(b) || !is8(y)) FAIL("%s: 8-bit data only", n->op_type);
  if (!same_shape(a, b) || !same_shape(a, y)) FAIL("%s: broadcast not supported", n->op_type);
  if (!zp_at(n, 2, &l->xzp) || !zp_at(n, 5, &l->bzp) || !zp_at(n, 7, &l->yzp))
    FAIL("%s: zero points are not constants", n->op_type);
  if (!n->requant || n->nrequant != (mul ? 1 : 3))
    FAIL("%s: no requantization multipliers from moss", n->op_type);
  l->kind = NPU_L_ADD;
  l->mul = mul;
  l->numel = numel(y);
  l->xs8 = a->dtype == MOSS_PLUGIN_INT8;
  l->bs8 = b->dtype == MOSS_PLUGIN_INT8;
  l->ys8 = y->dtype == MOSS_PLUGIN_INT8;
  out_range(n, l->ys8, &l->lo, &l->hi);
  l->x = a, l->x2 = b, l->y = y;
  return 1;
}

static int lookup(const moss_plugin_node *n, npu_layer *l, char *why, size_t cap) {
  const moss_plugin_tensor *x = in_at(n, 0), *t = in_at(n, 1),
                           *y = n->noutputs > 0 ? n->outputs[0] : NULL;
  int64_t nt;
  int d;
  if (n->nattrs > 0) FAIL("MossQLookup: attribute '%s' not supported", n->attrs[0].name);
  if (!x || !t || !y || !t->data) FAIL("MossQLookup: malformed");
  if (!is8(x) || !is8(y) || t->dtype != y->dtype) FAIL("MossQLookup: 8-bit data only");
  if (!same_shape(x, y)) FAIL("MossQLookup: output shape");
  nt = numel(t);
  l->kind = NPU_L_LUT;
  l->numel = numel(x);
  l->xs8 = x->dtype == MOSS_PLUGIN_INT8;
  if (nt == 256) {
    l->B = 1, l->C = 1, l->plane = l->numel;
  } else {
    if (x->rank < 2 || nt != 256 * x->dims[1])
      FAIL("MossQLookup: table of %lld entries", (long long)nt);
    l->pertable = 1;
    l->B = x->dims[0], l->C = x->dims[1], l->plane = 1;
    for (d = 2; d < x->rank; d++)
      l->plane *= x->dims[d];
  }
  l->x = x, l->x2 = t, l->y = y;
  return 1;
}

static int layout(const moss_plugin_node *n, npu_layer *l, char *why, size_t cap) {
  const moss_plugin_tensor *x = in_at(n, 0), *y = n->noutputs > 0 ? n->outputs[0] : NULL;
  if (!x || !y) FAIL("%s: malformed", n->op_type);
  if (!is8(x) || x->dtype != y->dtype)
    FAIL("%s: %s data (8-bit only)", n->op_type, dtype_str(x->dtype));
  if (x->nbytes != y->nbytes) FAIL("%s: sizes differ", n->op_type);
  l->kind = NPU_L_COPY;
  l->numel = numel(x);
  l->x = x, l->y = y;
  return 1;
}

static int concat(const moss_plugin_node *n, npu_layer *l, char *why, size_t cap) {
  const moss_plugin_tensor *y = n->noutputs > 0 ? n->outputs[0] : NULL;
  const moss_plugin_attr *a = npu_attr(n, "axis");
  int64_t axis, sum = 0;
  int i, d;
  if (!y || n->ninputs < 1 || !a || a->kind != MOSS_PLUGIN_ATTR_INT || n->nattrs != 1)
    FAIL("Concat: malformed");
  if (!is8(y)) FAIL("Concat: %s data (8-bit only)", dtype_str(y->dtype));
  axis = a->i < 0 ? a->i + y->rank : a->i;
  if (axis < 0 || axis >= y->rank) FAIL("Concat: axis %lld", (long long)a->i);
  for (i = 0; i < n->ninputs; i++) {
    const moss_plugin_tensor *x = n->inputs[i];
    if (!x || x->dtype != y->dtype || x->rank != y->rank) FAIL("Concat: input %d", i);
    for (d = 0; d < y->rank; d++)
      if (d != axis && x->dims[d] != y->dims[d]) FAIL("Concat: input %d shape", i);
    sum += x->dims[axis];
  }
  if (sum != y->dims[axis]) FAIL("Concat: output shape");
  l->kind = NPU_L_CONCAT;
  l->B = 1;
  for (d = 0; d < axis; d++)
    l->B *= y->dims[d];
  l->plane = 1;
  for (d = (int)axis + 1; d < y->rank; d++)
    l->plane *= y->dims[d];
  l->C = axis; /* the axis, for the lowering */
  l->y = y;
  return 1;
}

int npu_layer_analyze(const npu_cfg *cfg, const moss_plugin_node *n, npu_layer *l, char *why,
                      size_t cap) {
  const char *op = n->op_type ? n->op_type : "";
  int i, ok;
  memset(l, 0, sizeof *l);
  l->n = n;
  if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0 && strncmp(op, "Moss", 4) != 0)
    FAIL("%s: domain '%s' not supported", op, n->domain);
  if (!strcmp(op, "QuantizeLinear") || !strcmp(op, "DequantizeLinear") ||
      !strcmp(op, "DynamicQuantizeLinear"))
    FAIL("%s: float boundary", op);
  if (n->noutputs < 1 || !n->outputs[0]) FAIL("%s: no output", op);
  for (i = 0; i < n->noutputs; i++)
    if (n->outputs[i] &&
        (n->outputs[i]->dtype == MOSS_PLUGIN_FLOAT || n->outputs[i]->dtype == MOSS_PLUGIN_DOUBLE))
      FAIL("%s: float", op);
  if (n->act != MOSS_PLUGIN_ACT_NONE) FAIL("%s: fused activation %d", op, (int)n->act);
  if (!strcmp(op, "QLinearConv"))
    ok = conv(n, l, why, cap);
  else if (!strcmp(op, "MossQGemm"))
    ok = gemm(n, l, why, cap);
  else if (!strcmp(op, "MaxPool") || !strcmp(op, "MossQAvgPool"))
    ok = pool(n, l, why, cap);
  else if (!strcmp(op, "MossQAdd") || !strcmp(op, "MossQMul"))
    ok = add(n, l, why, cap);
  else if (!strcmp(op, "MossQLookup"))
    ok = lookup(n, l, why, cap);
  else if (!strcmp(op, "Flatten") || !strcmp(op, "Reshape") || !strcmp(op, "Identity") ||
           !strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze"))
    ok = layout(n, l, why, cap);
  else if (!strcmp(op, "Concat"))
    ok = concat(n, l, why, cap);
  else
    FAIL("%s: not supported by npu-systolic", op);
  if (!ok) return 0;
  /* Every tensor must be addressable by the 32-bit DRAM offsets. */
  for (i = 0; i < n->ninputs + n->noutputs; i++) {
    const moss_plugin_tensor *t = i < n->ninputs ? n->inputs[i] : n->outputs[i - n->ninputs];
    if (t && t->nbytes >= NPU_MAX_REGION) FAIL("%s: tensor '%s' of 4 GiB or more", op, t->name);
  }
  return npu_layer_fits(cfg, l, why, cap);
}

static int npu_supports(const moss_plugin_target *t, const moss_plugin_node *node, char *why,
                        size_t whycap) {
  char buf[256];
  npu_cfg cfg;
  npu_layer l;
  int ok;
  buf[0] = 0;
  ok =
      npu_cfg_parse(t, &cfg, buf, sizeof buf) && npu_layer_analyze(&cfg, node, &l, buf, sizeof buf);
  if (!ok && whycap) snprintf(why, whycap, "%s", buf);
  return ok;
}

/* ---- lowering ------------------------------------------------------------- */

typedef struct placed {
  const moss_plugin_tensor *t;
  npu_loc loc;
} placed;

typedef struct lowering {
  placed *p;
  int n, cap;
  uint64_t scratch;
} lowering;

static const npu_loc *find_loc(const lowering *L, const moss_plugin_tensor *t) {
  int i;
  for (i = 0; i < L->n; i++)
    if (L->p[i].t == t) return &L->p[i].loc;
  return NULL;
}

static int place(lowering *L, const moss_plugin_tensor *t, uint32_t region, uint64_t off) {
  if (L->n == L->cap) return 0;
  L->p[L->n].t = t;
  L->p[L->n].loc.region = region;
  L->p[L->n].loc.off = off;
  L->n++;
  return 1;
}

/* The location of a tensor a node reads: placed already, or a constant
 * copied into the constant region now. */
static int read_loc(lowering *L, npu_builder *b, const moss_plugin_tensor *t, npu_loc *out) {
  const npu_loc *at = find_loc(L, t);
  uint64_t off;
  if (at) {
    *out = *at;
    return 1;
  }
  if (!t->data || npu_const_add(b, t->data, (size_t)t->nbytes, &off) != 0) return 0;
  if (!place(L, t, NPU_REGION_CONST, off)) return 0;
  *out = *find_loc(L, t);
  return 1;
}

/* The location a node writes: a subgraph output's host buffer (placed at
 * the start), or new scratch memory. */
static int write_loc(lowering *L, const moss_plugin_tensor *t, npu_loc *out) {
  const npu_loc *at = find_loc(L, t);
  if (at) {
    *out = *at;
    return at->region != NPU_REGION_CONST;
  }
  L->scratch = (L->scratch + 63) & ~(uint64_t)63;
  if (!place(L, t, NPU_REGION_SCRATCH, L->scratch)) return 0;
  L->scratch += t->nbytes;
  *out = *find_loc(L, t);
  return L->scratch <= NPU_MAX_SCRATCH;
}

typedef struct wbuf {
  unsigned char *p;
  size_t n, cap;
  int failed;
} wbuf;

static void put(wbuf *w, const void *data, size_t n) {
  if (w->failed || !n) return;
  if (w->n + n > w->cap) {
    size_t cap = w->cap ? w->cap : 4096;
    unsigned char *q;
    while (cap < w->n + n)
      cap *= 2;
    if (!(q = realloc(w->p, cap))) {
      w->failed = 1;
      return;
    }
    w->p = q;
    w->cap = cap;
  }
  memcpy(w->p + w->n, data, n);
  w->n += n;
}

static void put32(wbuf *w, uint32_t v) {
  unsigned char b[4];
  npu_put_u32(b, v);
  put(w, b, 4);
}
static void put64(wbuf *w, uint64_t v) {
  unsigned char b[8];
  npu_put_u64(b, v);
  put(w, b, 8);
}
static void putf(wbuf *w, double v) {
  unsigned char b[8];
  npu_put_f64(b, v);
  put(w, b, 8);
}

static void put_name(wbuf *w, const char *s, const char *s2) {
  size_t a = s ? strlen(s) : 0, c = s2 ? strlen(s2) : 0;
  if (a > 255) a = 255;
  if (c > 255) c = 255;
  put32(w, (uint32_t)a);
  put32(w, (uint32_t)c);
  if (a) put(w, s, a);
  if (c) put(w, s2, c);
}

static int npu_lower(const moss_plugin_target *t, const moss_plugin_subgraph *sg,
                     const moss_plugin_sink *sink, char *err, size_t errcap) {
  npu_cfg cfg;
  npu_builder *b = NULL;
  lowering L;
  wbuf w;
  char why[256];
  int i, k, ret = 1, cap;
  size_t nconst = 0, ncmds;
  const unsigned char *consts;
  memset(&L, 0, sizeof L);
  memset(&w, 0, sizeof w);
  if (!npu_cfg_parse(t, &cfg, why, sizeof why)) {
    snprintf(err, errcap, "%s", why);
    return 1;
  }
  if (sg->nnodes <= 0 || sg->ninputs < 0 || sg->noutputs < 0) {
    snprintf(err, errcap, "empty subgraph");
    return 1;
  }
  cap = sg->ninputs + sg->noutputs + 2;
  for (k = 0; k < sg->nnodes; k++)
    cap += sg->nodes[k]->ninputs + sg->nodes[k]->noutputs;
  L.cap = cap;
  L.p = calloc((size_t)cap, sizeof *L.p);
  b = npu_builder_create(&cfg);
  if (!L.p || !b) goto nomem;
  for (i = 0; i < sg->ninputs; i++)
    place(&L, sg->inputs[i], NPU_REGION_IO + (uint32_t)i, 0);
  for (i = 0; i < sg->noutputs; i++) {
    if (find_loc(&L, sg->outputs[i])) {
      snprintf(err, errcap, "tensor '%s' is both an input and an output", sg->outputs[i]->name);
      goto done;
    }
    place(&L, sg->outputs[i], NPU_REGION_IO + (uint32_t)(sg->ninputs + i), 0);
  }
  for (k = 0; k < sg->nnodes; k++) {
    const moss_plugin_node *n = sg->nodes[k];
    npu_layer l;
    npu_loc xs[64], y;
    int nin = 1;
    if (!npu_layer_analyze(&cfg, n, &l, why, sizeof why)) {
      snprintf(err, errcap, "node '%s': %s", n->name, why);
      goto done;
    }
    if (l.kind == NPU_L_CONCAT) {
      nin = n->ninputs;
      if (nin > 64) {
        snprintf(err, errcap, "node '%s': Concat of %d inputs > 64", n->name, nin);
        goto done;
      }
      for (i = 0; i < nin; i++)
        if (!read_loc(&L, b, n->inputs[i], &xs[i])) goto unplaced;
    } else {
      if (!read_loc(&L, b, l.x, &xs[0])) goto unplaced;
      if (l.kind == NPU_L_ADD) {
        nin = 2;
        if (!read_loc(&L, b, l.x2, &xs[1])) goto unplaced;
      }
    }
    if (!write_loc(&L, l.y, &y)) {
      snprintf(err, errcap,
               "node '%s': cannot place its output '%s' (the intermediates of one NPU segment "
               "take at most %llu MiB of device DRAM)",
               n->name, l.y->name, (unsigned long long)(NPU_MAX_SCRATCH >> 20));
      goto done;
    }
    if (npu_lower_layer(b, k, &l, xs, nin, y, why, sizeof why) != 0) {
      snprintf(err, errcap, "node '%s': %s", n->name, why);
      goto done;
    }
    continue;
  unplaced:
    if (npu_builder_failed(b)) goto nomem;
    snprintf(err, errcap, "node '%s' reads a tensor that nothing before it computes", n->name);
    goto done;
  }
  if (npu_builder_failed(b)) goto nomem;
  consts = npu_builder_consts(b, &nconst);
  ncmds = npu_builder_ncmds(b);
  if (ncmds > NPU_MAX_CMDS || nconst >= NPU_MAX_REGION) {
    snprintf(err, errcap, "subgraph too large for one stream (%zu commands)", ncmds);
    goto done;
  }
  /* header */
  put(&w, NPU_BLOB_MAGIC, 4);
  put32(&w, NPU_BLOB_VERSION);
  put32(&w, cfg.rows);
  put32(&w, cfg.cols);
  put32(&w, cfg.wsram);
  put32(&w, cfg.asram);
  put32(&w, cfg.accsram);
  put32(&w, cfg.lanes);
  put32(&w, cfg.dma_latency);
  put32(&w, npu_builder_nsems(b));
  putf(&w, cfg.clock_mhz);
  putf(&w, cfg.dram_bpc);
  putf(&w, cfg.pj_mac);
  putf(&w, cfg.pj_sram);
  putf(&w, cfg.pj_dram);
  putf(&w, cfg.idle_w);
  put32(&w, (uint32_t)sg->ninputs);
  put32(&w, (uint32_t)sg->noutputs);
  put32(&w, (uint32_t)sg->nnodes);
  put32(&w, (uint32_t)ncmds);
  put64(&w, L.scratch);
  put64(&w, nconst);
  put64(&w, 0);
  put64(&w, 0);
  for (i = 0; i < sg->ninputs; i++)
    put64(&w, sg->inputs[i]->nbytes);
  for (i = 0; i < sg->noutputs; i++)
    put64(&w, sg->outputs[i]->nbytes);
  for (k = 0; k < sg->nnodes; k++)
    put_name(&w, sg->nodes[k]->name, sg->nodes[k]->op_type);
  if (!w.failed && ncmds) {
    size_t at = w.n;
    if (w.n + ncmds * NPU_CMD_BYTES > w.cap) {
      /* grow once, then let the builder write in place */
      size_t need = w.n + ncmds * NPU_CMD_BYTES;
      unsigned char *q = realloc(w.p, need);
      if (!q) goto nomem;
      w.p = q;
      w.cap = need;
    }
    npu_builder_emit_cmds(b, w.p + at);
    w.n = at + ncmds * NPU_CMD_BYTES;
  }
  if (nconst) put(&w, consts, nconst);
  if (w.failed) goto nomem;
  if (sink->write(sink->user, w.p, w.n) != 0) goto nomem;
  ret = 0;
  goto done;
nomem:
  snprintf(err, errcap, "out of memory");
done:
  free(w.p);
  free(L.p);
  npu_builder_destroy(b);
  return ret;
}

/* The cost model of tile.c for one node: its cycles, and its bytes at the
 * levels named "sram" and "dram". */
static int npu_estimate(const moss_plugin_target *t, const moss_plugin_node *node,
                        moss_plugin_estimate *out) {
  char why[256];
  npu_cfg cfg;
  npu_layer l;
  double cycles, dram, sram;
  int i;
  if (!npu_cfg_parse(t, &cfg, why, sizeof why) ||
      !npu_layer_analyze(&cfg, node, &l, why, sizeof why))
    return 0;
  if (!npu_layer_estimate(&cfg, &l, &cycles, &dram, &sram)) return 0;
  out->cycles = cycles;
  for (i = 0; i < t->nlevels && i < MOSS_PLUGIN_MAX_RANK; i++) {
    if (t->levels[i].name && !strcmp(t->levels[i].name, "dram")) out->level_bytes[i] = dram;
    if (t->levels[i].name && !strcmp(t->levels[i].name, "sram")) out->level_bytes[i] = sram;
  }
  return 1;
}

static const moss_plugin_compiler compiler = {
    MOSS_PLUGIN_ABI_VERSION, sizeof(moss_plugin_compiler), "npu-systolic", npu_supports,
    npu_lower, npu_estimate,
};

MOSS_PLUGIN_EXPORT const moss_plugin_compiler *moss_plugin_compiler_get(void) { return &compiler; }
