/* bad_table.c - a compiler table whose struct_size is not this ABI's. */
#include "broken.h"

MOSS_PLUGIN_EXPORT uint32_t moss_plugin_abi_version(void) { return MOSS_PLUGIN_ABI_VERSION; }

static const moss_plugin_compiler compiler = {MOSS_PLUGIN_ABI_VERSION, 8, "bad_table", take_all,
                                              lower_nothing, NULL};
MOSS_PLUGIN_EXPORT const moss_plugin_compiler *moss_plugin_compiler_get(void) { return &compiler; }
