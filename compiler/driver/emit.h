/* emit.h - what the pipeline hands to the artifact writers. */
#ifndef MOSS_EMIT_H
#define MOSS_EMIT_H

#include "../ir/ir.h"
#include "../plugin/plugin.h"
#include "../target/target.h"
#include "driver.h"

typedef struct moss_emit_args {
  moss_graph *g;              /* partitioned and planned */
  const moss_target *target;
  moss_plugin *const *plugins; /* per device, NULL where none */
  int nsegments;
  int host;                   /* the device holding graph inputs and outputs */
  int64_t arena_bytes;
  const char *name;           /* sanitized symbol prefix */
  const char *out;            /* the bundle's path */
  const char *source_hash;
  const char *report_json;    /* NULL: none */
  int verbose;                /* print the native backend's stage times */
} moss_emit_args;

/* Writes the .moss bundle (emit_bundle.c). */
moss_status moss_emit_bundle(moss_ctx *ctx, const moss_emit_args *a);

/* Writes <dir>/<name>.o (the LLVM backend's native code for device |host|),
 * <name>.h and <name>.manifest (emit_obj.c). */
moss_status moss_emit_object(moss_ctx *ctx, moss_graph *g, const moss_target *t, int host,
                             const char *name, const char *dir, const char *source_hash, int verbose);

#endif
