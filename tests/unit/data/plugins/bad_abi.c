/* bad_abi.c - a plugin built for the next ABI version: moss must refuse it
 * before reading anything else. */
#include "broken.h"

MOSS_PLUGIN_EXPORT uint32_t moss_plugin_abi_version(void) { return MOSS_PLUGIN_ABI_VERSION + 1; }

static const moss_plugin_compiler compiler = {MOSS_PLUGIN_ABI_VERSION + 1,
                                              sizeof(moss_plugin_compiler), "bad_abi", take_all,
                                              lower_nothing, NULL};
MOSS_PLUGIN_EXPORT const moss_plugin_compiler *moss_plugin_compiler_get(void) { return &compiler; }
