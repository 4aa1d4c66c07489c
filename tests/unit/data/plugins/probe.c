/* probe.c - declines every node, writing into |why| what moss showed it:
 * the device's facts (moss_plugin_target) and the node's requantization
 * multipliers, so test_plugin.c can check the views of ABI 2. */
#include <string.h>

#include "broken.h"

MOSS_PLUGIN_EXPORT uint32_t moss_plugin_abi_version(void) { return MOSS_PLUGIN_ABI_VERSION; }

static int describe(const moss_plugin_target *t, const moss_plugin_node *node, char *why,
                    size_t whycap) {
  size_t n = 0;
  int k;
#define PUT(...)                                                                                   \
  do {                                                                                             \
    if (n < whycap) n += (size_t)snprintf(why + n, whycap - n, __VA_ARGS__);                       \
  } while (0)
  PUT("%s/%s clock %g units %d i8 %g/cycle %g pJ power %g %g;", t->target ? t->target : "-",
      t->device ? t->device : "-", t->clock_mhz, (int)t->units, t->macs_per_cycle_i8,
      t->pj_per_mac_i8, t->idle_w, t->active_w);
  for (k = 0; k < t->nlevels; k++)
    PUT(" level %s %llu %g %g %g;", t->levels[k].name, (unsigned long long)t->levels[k].size_bytes,
        t->levels[k].bandwidth_gbps, t->levels[k].latency_ns, t->levels[k].pj_per_byte);
  for (k = 0; k < t->nparams; k++) PUT(" %s=%s;", t->params[k].name, t->params[k].value);
  PUT(" requant %d:", (int)node->nrequant);
  for (k = 0; k < node->nrequant; k++)
    PUT(" %ld>>%d", (long)node->requant[k].mult, (int)node->requant[k].shift);
#undef PUT
  return 0;
}

/* An estimate from the node's size, so a test can check the numbers made
 * the trip: 100 cycles per output element, 1 byte per element at level 0,
 * 2 at level 1. */
static int estimate(const moss_plugin_target *t, const moss_plugin_node *node,
                    moss_plugin_estimate *out) {
  double n = 1;
  int k;
  if (!node->noutputs || !node->outputs[0]) return 0;
  for (k = 0; k < node->outputs[0]->rank; k++) n *= (double)node->outputs[0]->dims[k];
  out->cycles = 100 * n;
  for (k = 0; k < t->nlevels && k < 2; k++) out->level_bytes[k] = (k + 1) * n;
  return 1;
}

static const moss_plugin_compiler compiler = {MOSS_PLUGIN_ABI_VERSION,
                                              sizeof(moss_plugin_compiler), "probe", describe,
                                              lower_nothing, estimate};
MOSS_PLUGIN_EXPORT const moss_plugin_compiler *moss_plugin_compiler_get(void) { return &compiler; }
