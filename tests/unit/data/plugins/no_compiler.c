/* no_compiler.c - a runtime-only plugin: no moss_plugin_compiler_get(). */
#include "broken.h"

MOSS_PLUGIN_EXPORT uint32_t moss_plugin_abi_version(void) { return MOSS_PLUGIN_ABI_VERSION; }
MOSS_PLUGIN_EXPORT const moss_plugin_device *moss_plugin_device_get(void) { return NULL; }
