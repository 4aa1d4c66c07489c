/* broken.h - shared pieces of the deliberately broken plugins that
 * test_plugin.c loads to check moss's error for each way a plugin can be
 * wrong. Each .c here is one library: it defines what it keeps and breaks
 * the rest. */
#ifndef BROKEN_PLUGIN_H
#define BROKEN_PLUGIN_H

#include <stdio.h>

#include "moss_plugin.h"

static inline int take_all(const moss_plugin_target *t, const moss_plugin_node *node, char *why,
                           size_t whycap) {
  (void)t;
  (void)node;
  (void)why;
  (void)whycap;
  return 1;
}

static inline int lower_nothing(const moss_plugin_target *t, const moss_plugin_subgraph *sg,
                                const moss_plugin_sink *sink, char *err, size_t errcap) {
  (void)t;
  (void)sg;
  (void)err;
  (void)errcap;
  return sink->write(sink->user, "blob", 4);
}

#endif
