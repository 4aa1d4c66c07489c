/* partition.h - placing nodes on the devices of a target (partition.c). */
#ifndef MOSS_PARTITION_H
#define MOSS_PARTITION_H

#include "../../backends/backend.h"
#include "../ir/ir.h"
#include "../target/target.h"

typedef struct moss_partition_opts {
  const moss_target *target;
  /* Per device of |target|: its backend binding (backends/backend.h), whose
   * takes() has the last word on a node the device's <ops> list accepts.
   * NULL, or a binding without a backend: the <ops> list alone decides
   * (the device is placed on for costing; the pipeline refuses to emit). */
  const moss_backend_device *devices;
  /* Placement by cost (the target's placement="cost"): node_s[i * D + d],
   * the estimated seconds of node i (g->nodes order) on device d of the D
   * devices (< 0: not modeled), and xfer_s(xfer_user, a, b, bytes) the
   * seconds to move |bytes| from device a to device b (< 0: not modeled). A
   * node then goes to the device that takes it at the least time, the
   * moves of its non-constant inputs from where they were made (graph
   * inputs: the host device) and of its graph outputs to the host
   * included; a node without an estimate on any device that takes it goes
   * to the first. NULL: the first device that takes it. */
  const double *node_s;
  double (*xfer_s)(void *xfer_user, int from, int to, double bytes);
  void *xfer_user;
  /* Non-NULL: every node on the target's host device only (or the fallback
   * where the host declines it), |host_only| saying why in each placement
   * note: `--emit c` or `obj` of a target placed by cost, whose standalone
   * form holds the host's code alone. */
  const char *host_only;
} moss_partition_opts;

/* Sets n->device, n->segment, n->placement and n->opaque (the backend's
 * opaque flag; 1 on a device without a backend) for every node; segments
 * number the runs of consecutive nodes on one device, 0 ..
 * *out_nsegments-1. Fails (unsupported, every such node reported) only when
 * a node has no device and the target has no fallback. */
/* Whether device |d| of |t| may run |n| as the target file says, before its
 * backend is asked: the device's <ops> list accepts it, and a MAC op finds
 * a MAC rate for its compute dtype where the device gives rates (a dtype
 * without one is a MAC unit it does not have). |dtype| non-NULL stands for
 * the node's compute dtype (the cost model's fp32 twin asks with "f32").
 * 1 yes; 0 no, |why| (|cap| bytes) saying why. */
int moss_partition_device_accepts(const moss_target *t, int d, const moss_node *n,
                                  const char *dtype, char *why, size_t cap);

moss_status moss_partition(moss_ctx *ctx, moss_graph *g, const moss_partition_opts *o,
                           int *out_nsegments);

#endif
