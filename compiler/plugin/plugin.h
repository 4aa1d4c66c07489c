/* plugin.h - the compile side of a vendor plugin (plugins/include/moss_plugin.h):
 * loading the library a target names on a device (backend="plugin:NAME",
 * plugin="PATH"), asking it which nodes it takes, and lowering runs of
 * consecutive plugin nodes to blobs. The partitioner calls this; the plugin
 * never sees a moss_node or a moss_value, only read-only views built here
 * for the duration of one call and freed before it returns.
 *
 * Not thread-safe: one moss_plugin is used by one compile session at a
 * time. Every allocation goes through |ctx|'s allocator, and |ctx| must use
 * the allocator the plugin was opened with. */
#ifndef MOSS_PLUGIN_LOADER_H
#define MOSS_PLUGIN_LOADER_H

#include <stddef.h>

#include "../base/base.h"
#include "../ir/ir.h"
#include "../target/target.h"

typedef struct moss_plugin moss_plugin; /* a loaded plugin library */

/* dlopen()s |path| and checks, in this order, that it exports
 * moss_plugin_abi_version() returning MOSS_PLUGIN_ABI_VERSION, that it
 * exports moss_plugin_compiler_get(), that this returns a table whose
 * abi_version and struct_size match this moss, whose name equals |name|
 * (the NAME of backend="plugin:NAME"; NULL accepts any name) and whose
 * functions are non-NULL.
 * |path| is used as given (the target resolves it against the XML file);
 * a path without '/' is searched for like any dlopen() name.
 * On success |*out| is a new plugin the caller closes. On failure |*out| is
 * NULL, the library is closed again, and one diagnostic has been reported:
 * MOSS_E_TARGET with the path and what is wrong ("plugin 'P': built for
 * plugin ABI 2, this moss speaks 1", "... does not export
 * moss_plugin_compiler_get", dlerror()'s text for a file that cannot be
 * loaded), or MOSS_E_NOMEM. */
moss_status moss_plugin_open(moss_ctx *ctx, const char *path, const char *name, moss_plugin **out);
/* Tells |p| the device it compiles for: device |device| of |t|, whose
 * facts (clock, MACs, memory levels, energy, <params>) supports() and
 * lower() receive as a moss_plugin_target; copied, so |t| may go first.
 * Before a bind the plugin sees an empty target. MOSS_E_NOMEM. */
moss_status moss_plugin_bind(moss_ctx *ctx, moss_plugin *p, const moss_target *t, int device);
/* dlclose()s and frees |p|; NULL is a no-op. */
void moss_plugin_close(moss_ctx *ctx, moss_plugin *p);

/* 1 when the plugin takes |n|, 0 when it does not, with the reason in
 * |why| (NUL-terminated, at most |whycap| bytes; may be NULL when |whycap| is
 * 0). The node's view carries its inputs, outputs, attributes and fused
 * activation. A node with a tensor of unknown shape or rank above
 * MOSS_PLUGIN_MAX_RANK is declined without asking the plugin. Running out of
 * memory while building the view declines the node and reports
 * MOSS_E_NOMEM through |ctx| (ctx->nerrors grows). */
int moss_plugin_supports(moss_ctx *ctx, moss_plugin *p, const moss_node *n, char *why,
                         size_t whycap);

/* Lowers |nodes| (|nnodes| >= 1, in execution order, all of them taken by
 * supports()) to a blob appended to |blob|. The subgraph's inputs are the
 * non-constant values the nodes read that no node of the list produces, in
 * order of first use; its outputs are the values the nodes produce that are
 * graph outputs of |g| or read by a live node of |g| outside the list, in
 * order of production. Their value ids are returned in |*in_ids| (|*nin|
 * entries) and |*out_ids| (|*nout| entries), arrays the caller frees with
 * moss_free(ctx, ids, count * sizeof(int)); NULL when the count is 0. The
 * runtime passes the buffers to the plugin's run() in these orders.
 * On failure the outputs are NULL / 0, |blob| keeps its old length, and one
 * diagnostic has been reported: MOSS_E_TARGET against the first node,
 * "plugin 'NAME': <the plugin's message>", when the plugin fails;
 * MOSS_E_NOMEM; MOSS_E_INTERNAL for an empty list or a value missing from
 * |g|. */
moss_status moss_plugin_lower(moss_ctx *ctx, moss_plugin *p, const moss_graph *g,
                              moss_node *const *nodes, int nnodes, moss_buf *blob, int **in_ids,
                              int *nin, int **out_ids, int *nout);

/* The plugin's own estimate of |n| on the bound device (its compiler
 * table's estimate(), optional): 1 with |*out_cycles| and |out_level_bytes|
 * (|nlevels| entries, the bound device's memory levels; at most 8) set; 0
 * when the plugin has no estimate() or none for |n| (the outputs are then
 * 0), or a tensor of |n| cannot be viewed. Out of memory reports
 * MOSS_E_NOMEM through |ctx| and returns 0. */
int moss_plugin_estimate_node(moss_ctx *ctx, moss_plugin *p, const moss_node *n, double *out_cycles,
                         double *out_level_bytes, int nlevels);

/* The plugin's name (as asked for and as the table says) and the path it
 * was opened from; borrowed, valid until moss_plugin_close(). */
const char *moss_plugin_name(const moss_plugin *p);
const char *moss_plugin_path(const moss_plugin *p);

#endif
