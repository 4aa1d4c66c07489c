/* emit.h - what the pipeline hands to the bundle writer. The standalone
 * forms (--emit c|obj) are the host backend's emit_standalone
 * (backends/backend.h). */
#ifndef MOSS_EMIT_H
#define MOSS_EMIT_H

#include "../../backends/backend.h"
#include "../ir/ir.h"
#include "../target/target.h"
#include "driver.h"

typedef struct moss_emit_args {
  moss_graph *g;              /* planned, n->segment numbered by moss_bundle_steps */
  int nsegments;              /* what moss_bundle_steps returned */
  const moss_target *target;
  const moss_backend_device *devices; /* per device of |target|: its backend binding */
  int host;                   /* the device holding graph inputs and outputs */
  int64_t arena_bytes;
  const char *name;           /* sanitized symbol prefix */
  const char *out;            /* the bundle's path */
  const char *source_hash;
  const char *report_json;    /* NULL: none */
  int verbose;                /* print the backends' stage times (-v) */
  const char *sign_key;       /* --sign: the secret key file to sign with; NULL: unsigned */
} moss_emit_args;

/* A bundle's plan runs segments as its EXEC steps. This renumbers the
 * partition's segments (n->segment, consecutive nodes on one device) into
 * those steps, in order, and returns their count: each node on an
 * in_process device becomes a step of its own (one entry function of the
 * CPU code), so that a profile times every layer (mossrt_run_profile);
 * past MOSS_BUNDLE_MAX_LAYER_STEPS such nodes, runs of consecutive ones
 * share a step, at most that many steps in all (each CPU entry point is
 * a function to build and a symbol to resolve at open); the nodes of
 * another device's segment stay one step (one blob). Run before costing,
 * so that the report says which step runs each layer. */
#define MOSS_BUNDLE_MAX_LAYER_STEPS 2048
int moss_bundle_steps(moss_graph *g, const moss_backend_device *devs);

/* Writes the .moss bundle (emit_bundle.c): the host backend's emit_code
 * builds the CPU code section of the segments on in_process devices, each
 * other device's emit_segment lowers its segments to blobs. */
moss_status moss_emit_bundle(moss_ctx *ctx, const moss_emit_args *a);

#endif
