/* failing_lower.c - takes every node, then fails to lower with a message
 * after writing part of its blob: moss must report the message against the
 * first node and drop the partial blob. */
#include "broken.h"

MOSS_PLUGIN_EXPORT uint32_t moss_plugin_abi_version(void) { return MOSS_PLUGIN_ABI_VERSION; }

static int lower_fails(const moss_plugin_target *t, const moss_plugin_subgraph *sg,
                       const moss_plugin_sink *sink, char *err, size_t errcap) {
  (void)t;
  sink->write(sink->user, "partial", 7);
  snprintf(err, errcap, "%d nodes need 3 GiB of scratchpad, the device has 1 MiB",
           (int)sg->nnodes);
  return 1;
}

static const moss_plugin_compiler compiler = {MOSS_PLUGIN_ABI_VERSION,
                                              sizeof(moss_plugin_compiler), "failing", take_all,
                                              lower_fails, NULL};
MOSS_PLUGIN_EXPORT const moss_plugin_compiler *moss_plugin_compiler_get(void) { return &compiler; }
