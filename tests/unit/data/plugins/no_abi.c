/* no_abi.c - a plugin that forgot moss_plugin_abi_version(). */
#include "broken.h"

static const moss_plugin_compiler compiler = {MOSS_PLUGIN_ABI_VERSION,
                                              sizeof(moss_plugin_compiler), "no_abi", take_all,
                                              lower_nothing, NULL};
MOSS_PLUGIN_EXPORT const moss_plugin_compiler *moss_plugin_compiler_get(void) { return &compiler; }
