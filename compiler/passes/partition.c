/* partition.c - places every node on a device of the target (DESIGN.md
 * "Targets and plugins"). A node goes to the first device, in the order of
 * the target file, that takes it: the device's <ops> list must accept the
 * op, its compute dtype and the list's constraints, and the device's
 * backend must have code for it (its takes() in the backend table,
 * backends/backend.h; a plugin's supports() behind the plugin adapter);
 * with placement by cost (moss_partition_opts.node_s), to the device that
 * takes it at the least estimated time, transfers included. A node no
 * device takes goes to the fallback device. Devices whose backend
 * this build does not have are still placed on by their <ops> list, so
 * the target can be costed; the pipeline then refuses to emit for them,
 * naming the device. Consecutive nodes on one device form a segment; a
 * value made on one device and read on another is a transfer. */
#include <stdio.h>
#include <string.h>

#include "partition.h"

/* The type a node computes in: its first non-constant input's, else its
 * first output's (Shape-like and generator ops). */
static moss_dtype compute_dtype(const moss_node *n) {
  int i;
  for (i = 0; i < n->ninputs; i++)
    if (n->inputs[i] && !n->inputs[i]->data) return n->inputs[i]->dtype;
  return n->noutputs && n->outputs[0] ? n->outputs[0]->dtype : MOSS_DT_F32;
}

static void node_facts(const moss_node *n, moss_target_node_facts *f) {
  const moss_value *x = moss_node_input(n, 0), *w = moss_node_input(n, 1);
  const int64_t *v;
  int k;
  memset(f, 0, sizeof *f);
  f->op_type = n->op_type;
  f->dtype = moss_dtype_short(compute_dtype(n));
  f->rank = n->noutputs && n->outputs[0] && n->outputs[0]->rank > 0 ? n->outputs[0]->rank : 0;
  if (!strcmp(n->op_type, "Conv") || !strcmp(n->op_type, "ConvTranspose") ||
      !strcmp(n->op_type, "ConvInteger") || !strcmp(n->op_type, "QLinearConv")) {
    int wi = !strcmp(n->op_type, "QLinearConv") ? 3 : 1;
    w = moss_node_input(n, wi);
    if (w && w->rank >= 3) {
      f->kernel[0] = (int)w->dims[2];
      f->kernel[1] = w->rank >= 4 ? (int)w->dims[3] : 1;
      f->out_channels = !strcmp(n->op_type, "ConvTranspose")
                            ? w->dims[1] * moss_attr_int(n, "group", 1)
                            : w->dims[0];
    }
    if (x && x->rank >= 2) f->in_channels = x->dims[1];
  } else if (strstr(n->op_type, "Pool") && !strstr(n->op_type, "Global")) {
    k = moss_attr_ints(n, "kernel_shape", &v);
    if (k >= 1) f->kernel[0] = (int)v[0];
    if (k >= 2) f->kernel[1] = (int)v[1];
    if (x && x->rank >= 2) f->in_channels = f->out_channels = x->dims[1];
  } else if (!strcmp(n->op_type, "Gemm") || !strcmp(n->op_type, "MatMul")) {
    if (x && x->rank >= 1) f->in_channels = x->dims[x->rank - 1];
    if (n->noutputs && n->outputs[0] && n->outputs[0]->rank >= 1)
      f->out_channels = n->outputs[0]->dims[n->outputs[0]->rank - 1];
  }
  if (f->kernel[0]) {
    k = moss_attr_ints(n, "strides", &v);
    f->stride[0] = k >= 1 ? (int)v[0] : 1;
    f->stride[1] = k >= 2 ? (int)v[1] : 1;
  }
}

static int is_mac_op(const moss_node *n) {
  static const char *const ops[] = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum",
                                    "ConvInteger", "MatMulInteger", "QLinearConv",
                                    "QLinearMatMul", "MossQGemm"};
  size_t i;
  for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (!strcmp(n->op_type, ops[i])) return 1;
  return 0;
}

/* Whether device |d| gives MAC rates at all (then a dtype without one is
 * a MAC unit it does not have). */
static int has_mac_rates(const moss_target *t, int d) {
  static const char *const dts[] = {"f64", "f32", "f16", "bf16", "i32", "i16", "i8", "u8", "i4"};
  size_t i;
  for (i = 0; i < sizeof dts / sizeof dts[0]; i++)
    if (moss_target_device_macs_per_cycle(t, d, dts[i]) > 0) return 1;
  return 0;
}

int moss_partition_device_accepts(const moss_target *t, int d, const moss_node *n,
                                  const char *dtype, char *why, size_t cap) {
  moss_target_node_facts f;
  const char *as;
  node_facts(n, &f);
  if (dtype) f.dtype = dtype;
  why[0] = 0;
  if (moss_target_device_accepts(t, d, &f, why, cap) == 0) return 0;
  if (is_mac_op(n) && has_mac_rates(t, d) && moss_target_device_mac_rate(t, d, f.dtype, &as) <= 0) {
    /* The cost model has no rate for it: the device has no such MAC unit. */
    snprintf(why, cap, "no %s MAC rate in its <compute>", f.dtype);
    return 0;
  }
  return 1;
}

/* Whether device |d| takes |n|: 1 yes, 0 no with |why|. */
static int device_takes(const moss_partition_opts *o, int d, const moss_node *n, char *why,
                        size_t cap) {
  const moss_backend_device *bd = o->devices ? &o->devices[d] : NULL;
  if (!moss_partition_device_accepts(o->target, d, n, NULL, why, cap)) return 0;
  /* No backend in this build: the <ops> list decides, for costing. */
  if (!bd || !bd->backend) return 1;
  return bd->backend->takes(bd, n, why, cap);
}

/* Keeps |text| as |n|'s placement note (for --explain). */
static moss_status keep(moss_ctx *ctx, moss_graph *g, moss_node *n, const char *text) {
  n->placement = moss_arena_strdup(g->arena, text);
  return n->placement ? MOSS_OK : moss_fail(ctx, MOSS_E_NOMEM, n, "placement note");
}

/* The estimated seconds of node |i| on device |d|: its own (< 0: not
 * modeled, then the whole is) plus the moves of its non-constant inputs
 * from the devices that made them (|made_on|, by value id; graph inputs:
 * |host|) and of its graph outputs to |host|. */
static double placed_s(const moss_partition_opts *o, const moss_graph *g, int i, int d, const int *made_on,
                       int host) {
  int nd = moss_target_device_count(o->target), k;
  const moss_node *n = g->nodes[i];
  double s = o->node_s[(size_t)i * (size_t)nd + (size_t)d], x;
  if (s < 0) return -1;
  for (k = 0; k < n->ninputs + n->noutputs; k++) {
    const moss_value *v = k < n->ninputs ? n->inputs[k] : n->outputs[k - n->ninputs];
    int from = host, to = d;
    if (!v || v->data) continue;
    if (k < n->ninputs) {
      if (v->id >= 0 && v->id < g->nvalues && made_on[v->id] >= 0) from = made_on[v->id];
    } else {
      if (v->output_index < 0) continue;
      from = d, to = host;
    }
    if (from == to) continue;
    x = o->xfer_s(o->xfer_user, from, to, (double)moss_value_nbytes(v));
    if (x > 0) s += x;
  }
  return s;
}

moss_status moss_partition(moss_ctx *ctx, moss_graph *g, const moss_partition_opts *o,
                           int *out_nsegments) {
  int ndev = moss_target_device_count(o->target);
  int fb = moss_target_fallback(o->target), host = moss_target_host_device(o->target);
  int i, d, k, seg = -1, prev = -1;
  int *made_on = NULL;
  size_t nv = (size_t)g->nvalues + 1;
  moss_status st = MOSS_OK;
  char why[256], text[1024], costs[512];

  if (o->node_s) {
    if (!(made_on = moss_alloc(ctx, nv * sizeof *made_on))) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "partition");
    for (i = 0; i < (int)nv; i++) made_on[i] = -1;
  }
  for (i = 0; i < g->nnodes; i++) {
    moss_node *n = g->nodes[i];
    size_t len = 0, clen = 0;
    int placed = -1, first = -1;
    double best = -1;
    text[0] = costs[0] = 0;
    for (d = 0; d < ndev && (o->node_s || placed < 0); d++) {
      if (o->host_only && d != host) continue;
      if (device_takes(o, d, n, why, sizeof why)) {
        double c;
        if (first < 0) first = d;
        if (!o->node_s) {
          placed = d;
          continue;
        }
        c = placed_s(o, g, i, d, made_on, host);
        if (clen < sizeof costs && c < 0)
          clen += (size_t)snprintf(costs + clen, sizeof costs - clen, "%s%s not modeled", clen ? ", " : "",
                                   moss_target_device_id(o->target, d));
        else if (clen < sizeof costs)
          clen += (size_t)snprintf(costs + clen, sizeof costs - clen, "%s%s %.3g s", clen ? ", " : "",
                                   moss_target_device_id(o->target, d), c);
        if (c >= 0 && (best < 0 || c < best)) {
          best = c;
          placed = d;
        }
      } else if (len < sizeof text) {
        len += (size_t)snprintf(text + len, sizeof text - len, "%s%s declined: %s",
                                len ? "; " : "", moss_target_device_id(o->target, d),
                                why[0] ? why : "not supported");
      }
    }
    if (o->node_s && placed < 0) placed = first;
    if (placed >= 0) {
      char head[800];
      if (o->node_s && first >= 0 && strchr(costs, ','))
        snprintf(head, sizeof head, "least time of the devices that take %s %s (%s; transfers included)",
                 n->op_type, moss_dtype_short(compute_dtype(n)), costs);
      else if (o->host_only)
        snprintf(head, sizeof head, "%s; it takes %s %s", o->host_only, n->op_type,
                 moss_dtype_short(compute_dtype(n)));
      else
        snprintf(head, sizeof head, "first device that takes %s %s",
                 n->op_type, moss_dtype_short(compute_dtype(n)));
      if (len) {
        char full[1900];
        snprintf(full, sizeof full, "%s (%s)", head, text);
        st = keep(ctx, g, n, full);
      } else {
        st = keep(ctx, g, n, head);
      }
      if (st != MOSS_OK) break;
    } else if (fb >= 0) {
      char full[1400];
      placed = fb;
      snprintf(full, sizeof full, "fallback: %s", text);
      if ((st = keep(ctx, g, n, full)) != MOSS_OK) break;
    } else {
      st = moss_fail(ctx, MOSS_E_UNSUPPORTED, n,
                     "no device of target '%s' takes it and the target names no fallback: %s",
                     moss_target_name(o->target), text);
      continue;
    }
    n->device = placed;
    n->opaque = o->devices && o->devices[placed].backend ? o->devices[placed].backend->opaque : 1;
    if (placed != prev) seg++;
    prev = placed;
    n->segment = seg;
    if (made_on)
      for (k = 0; k < n->noutputs; k++)
        if (n->outputs[k] && n->outputs[k]->id >= 0 && n->outputs[k]->id < g->nvalues)
          made_on[n->outputs[k]->id] = placed;
  }
  if (made_on) moss_free(ctx, made_on, nv * sizeof *made_on);
  *out_nsegments = seg + 1;
  return st;
}
