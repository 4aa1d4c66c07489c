/* partition.h - placing nodes on the devices of a target (partition.c). */
#ifndef MOSS_PARTITION_H
#define MOSS_PARTITION_H

#include "../ir/ir.h"
#include "../plugin/plugin.h"
#include "../target/target.h"

typedef struct moss_partition_opts {
  const moss_target *target;
  /* Per device: the loaded plugin of a backend="plugin:NAME" device, or
   * NULL (not a plugin, or its library is not available). */
  moss_plugin *const *plugins;
} moss_partition_opts;

/* Sets n->device, n->segment and n->placement for every node; segments
 * number the runs of consecutive nodes on one device, 0 .. *out_nsegments-1.
 * Fails (unsupported, every such node reported) only when a node has no
 * device and the target has no fallback. */
moss_status moss_partition(moss_ctx *ctx, moss_graph *g, const moss_partition_opts *o,
                           int *out_nsegments);

/* The device graph inputs and outputs live on: the fallback device, else
 * the first cpu, else device 0. */
int moss_host_device(const moss_target *t);
/* The device that holds |v| when it is made (its producer's; |host| for
 * graph inputs and constants). */
int moss_value_device(const moss_value *v, int host);

#endif
