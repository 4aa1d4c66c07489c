/* fit.c - the plan against the memories the target declares, so that a
 * model that cannot run there is refused at compile time, not at load time
 * or as a firmware that does not link (docs/plan.md, "Sizes against the target").
 *
 * Each device keeps its writable data (the arena, graph inputs and outputs,
 * every buffer its nodes read or write) in its outermost memory level that
 * is not read-only, and its weights in its outermost level: the DRAM, or
 * the flash of a microcontroller. A level that declares no size is not
 * checked (c99.xml's "dram": nothing is known). The host device (the one
 * graph inputs and outputs live on, which runs libmossrt or the generated
 * C) holds the arena and every weight; another device holds what its own
 * nodes read and write and the weights they read. Checked, each on its own:
 * every buffer, the arena, the weights; then, on the host, the arena, graph
 * inputs and outputs (and the weights, when they share that level) together.
 * Sizes are summed with overflow checks: a sum that overflows is an invalid
 * model. */
#include <stdio.h>
#include <string.h>

#include "plan.h"

typedef struct fit {
  moss_ctx *ctx;
  const moss_target *t;
  int host;
  int nvalues;             /* of the graph: |seen| has a row per value */
  int failed;              /* the first failure's status, MOSS_OK while none */
} fit;

/* The level device |d| keeps writable data in (|writable|), or weights in:
 * its index, or -1 when that level declares no size (or the device has no
 * levels), which is not checked. */
static int level_of(const moss_target *t, int d, int writable, moss_target_level *out) {
  int k;
  for (k = moss_target_device_level_count(t, d) - 1; k >= 0; k--) {
    moss_target_device_level(t, d, k, out);
    if (writable && out->read_only) continue;
    return out->size_bytes > 0 ? k : -1;
  }
  return -1;
}

/* "37.3 GiB" */
static void human(double b, char *buf, size_t cap) {
  static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (b >= 1024 && u < 6) b /= 1024, u++;
  if (u == 0) snprintf(buf, cap, "%.0f B", b);
  else snprintf(buf, cap, "%.3g %s", b, unit[u]);
}

/* Refuses |bytes| of |what| (a buffer's description, or "the arena") on
 * device |d| when the level it lives in is smaller. */
static void check(fit *f, const moss_node *n, int d, int writable, const char *what,
                  int64_t bytes) {
  moss_target_level lv;
  char need[32], have[32], label[64] = "";
  if (level_of(f->t, d, writable, &lv) < 0 || (uint64_t)bytes <= lv.size_bytes) return;
  human((double)bytes, need, sizeof need);
  human((double)lv.size_bytes, have, sizeof have);
  if (lv.perf_source) /* the figure's label: "datasheet", "measured:sysconf", ... */
    snprintf(label, sizeof label, ", %.*s", (int)strcspn(lv.perf_source, " ("), lv.perf_source);
  moss_fail(f->ctx, MOSS_E_TARGET, n,
            "%s: %lld bytes (%s) do not fit in memory level '%s' of device '%s', which holds "
            "%llu bytes (%s%s; target '%s', %s)", what, (long long)bytes, need, lv.name,
            moss_target_device_id(f->t, d), (unsigned long long)lv.size_bytes, have, label,
            moss_target_name(f->t), moss_target_path(f->t));
  if (!f->failed) f->failed = MOSS_E_TARGET;
}

static moss_status overflow(fit *f, const moss_node *n, const char *what) {
  return moss_fail(f->ctx, MOSS_E_INVALID_MODEL, n, "%s: the size in bytes overflows 64 bits",
                   what);
}

/* Checks one value on device |d|; |seen| (a byte per value and device)
 * makes it once. *|sum| (may be NULL) adds its bytes. */
static moss_status value(fit *f, const moss_value *v, const moss_node *n, int d,
                         unsigned char *seen, int64_t *sum) {
  int nd = moss_target_device_count(f->t);
  int64_t bytes;
  char what[320];
  const char *name;
  while (v->alias) v = v->alias; /* a view is its root's storage */
  bytes = moss_value_nbytes_checked(v);
  name = v->name ? v->name : "";
  if (v->id < 0 || v->id >= f->nvalues)
    return moss_fail(f->ctx, MOSS_E_INTERNAL, n, "value '%s' is not in the graph", name);
  if (seen[(size_t)v->id * (size_t)nd + (size_t)d]) return MOSS_OK;
  seen[(size_t)v->id * (size_t)nd + (size_t)d] = 1;
  if (v->data) snprintf(what, sizeof what, "weight '%s'", name);
  else if (v->input_index >= 0) snprintf(what, sizeof what, "graph input '%s'", name);
  else if (v->output_index >= 0) snprintf(what, sizeof what, "graph output '%s'", name);
  else snprintf(what, sizeof what, "buffer '%s'", name);
  if (bytes < 0) return overflow(f, n, what);
  if (sum && !moss_i64_add(*sum, bytes, sum))
    return overflow(f, n, v->data ? "the weights" : "the graph inputs and outputs");
  check(f, v->producer ? v->producer : n, d, !v->data, what, bytes);
  return MOSS_OK;
}

moss_status moss_plan_check_memory(moss_ctx *ctx, const moss_graph *g, const moss_target *t,
                                   int64_t arena_bytes) {
  fit f;
  int i, j, d, nd = moss_target_device_count(t);
  size_t nseen;
  unsigned char *seen;
  int64_t *weights, io = 0, all;
  moss_status st = MOSS_OK;
  moss_target_level wl, al;

  f.ctx = ctx;
  f.t = t;
  f.host = moss_target_host_device(t);
  f.nvalues = g->nvalues;
  f.failed = MOSS_OK;
  if (!moss_size_mul((size_t)g->nvalues, (size_t)nd, &nseen))
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "memory check");
  seen = moss_alloc(ctx, nseen + 1);
  weights = moss_alloc(ctx, sizeof *weights * (size_t)(nd + 1));
  if (!seen || !weights) {
    moss_free(ctx, seen, nseen + 1);
    moss_free(ctx, weights, sizeof *weights * (size_t)(nd + 1));
    return moss_fail(ctx, MOSS_E_NOMEM, NULL, "memory check");
  }

  /* Graph inputs and outputs, on the host. */
  for (i = 0; i < g->ninputs && st == MOSS_OK; i++)
    st = value(&f, g->inputs[i], NULL, f.host, seen, &io);
  for (i = 0; i < g->noutputs && st == MOSS_OK; i++)
    st = value(&f, g->outputs[i], g->outputs[i]->producer, f.host, seen, &io);
  /* What each node reads and writes, on its device; the weights once per
   * device, and all of them on the host too. */
  for (i = 0; i < g->nnodes && st == MOSS_OK; i++) {
    const moss_node *n = g->nodes[i];
    if (n->dead) continue;
    d = n->device >= 0 && n->device < nd ? n->device : f.host;
    for (j = 0; j < n->noutputs && st == MOSS_OK; j++)
      if (n->outputs[j]) st = value(&f, n->outputs[j], n, d, seen, NULL);
    for (j = 0; j < n->ninputs && st == MOSS_OK; j++) {
      const moss_value *v = moss_node_input(n, j);
      if (!v) continue;
      st = value(&f, v, n, d, seen, v->data ? &weights[d] : NULL);
      if (st == MOSS_OK && v->data && d != f.host) st = value(&f, v, n, f.host, seen, &weights[f.host]);
    }
  }
  if (st != MOSS_OK) goto done;

  for (d = 0; d < nd; d++) {
    char what[128];
    if (!weights[d]) continue;
    snprintf(what, sizeof what, d == f.host ? "the weights" : "the weights device '%s' reads",
             moss_target_device_id(t, d));
    check(&f, NULL, d, 0, what, weights[d]);
  }
  check(&f, NULL, f.host, 1, "the arena", arena_bytes);
  /* Together, when each part fits: the weights count where they share the
   * writable level (no read-only level holds them). */
  if (f.failed == MOSS_OK) {
    int w = level_of(t, f.host, 1, &wl), a = level_of(t, f.host, 0, &al);
    int with_weights = weights[f.host] > 0 && w >= 0 && w == a;
    if (!moss_i64_add(arena_bytes, io, &all) ||
        (with_weights && !moss_i64_add(all, weights[f.host], &all))) {
      st = overflow(&f, NULL, "the arena with the graph inputs and outputs");
      goto done;
    }
    check(&f, NULL, f.host, 1, with_weights ? "the arena with the graph inputs and outputs and "
          "the weights" : "the arena with the graph inputs and outputs", all);
  }
  st = (moss_status)f.failed;
done:
  moss_free(ctx, seen, nseen + 1);
  moss_free(ctx, weights, sizeof *weights * (size_t)(nd + 1));
  return st;
}
