/* spirv.c - SPIR-V validation through SPIRV-Tools' C interface. */
#include <spirv-tools/libspirv.h>

#include "spirv.h"

moss_status moss_spirv_validate(moss_ctx *ctx, const uint32_t *words, size_t nwords, moss_spirv_env env,
                                const moss_node *at, const char *what) {
  spv_context c = spvContextCreate(env == MOSS_SPIRV_VULKAN_1_1 ? SPV_ENV_VULKAN_1_1 : SPV_ENV_OPENCL_1_2);
  spv_const_binary_t bin = {words, nwords};
  spv_diagnostic diag = NULL;
  spv_result_t r;
  moss_status st = MOSS_OK;
  if (!c) return moss_fail(ctx, MOSS_E_NOMEM, at, "%s: SPIR-V validator", what);
  r = spvValidate(c, &bin, &diag);
  if (r != SPV_SUCCESS)
    st = moss_fail(ctx, MOSS_E_INTERNAL, at, "%s: the SPIR-V module does not validate (word %zu): %.600s", what,
                   diag ? diag->position.index : (size_t)0, diag && diag->error ? diag->error : "no message");
  spvDiagnosticDestroy(diag);
  spvContextDestroy(c);
  return st;
}
