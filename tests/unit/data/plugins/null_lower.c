/* null_lower.c - a compiler table whose lower() is NULL. */
#include "broken.h"

MOSS_PLUGIN_EXPORT uint32_t moss_plugin_abi_version(void) { return MOSS_PLUGIN_ABI_VERSION; }

static const moss_plugin_compiler compiler = {MOSS_PLUGIN_ABI_VERSION,
                                              sizeof(moss_plugin_compiler), "null_lower", take_all,
                                              NULL, NULL};
MOSS_PLUGIN_EXPORT const moss_plugin_compiler *moss_plugin_compiler_get(void) { return &compiler; }
