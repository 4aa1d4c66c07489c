/* spirv.c - SPIR-V validation through SPIRV-Tools' C interface. */
#include <spirv-tools/libspirv.h>

#include "spirv.h"

/* The first word of OpCapability (opcode 17, two words); Float16 is capability 9. */
#define CAPABILITY ((2u << 16) | 17u)

/* One check of the module in the environment |e|. */
static moss_status validate_in(moss_ctx *ctx, const uint32_t *words, size_t nwords,
                               spv_target_env e, const moss_node *at, const char *what) {
  spv_context c = spvContextCreate(e);
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

moss_status moss_spirv_validate(moss_ctx *ctx, const uint32_t *words, size_t nwords,
                                moss_spirv_env env, const moss_node *at, const char *what) {
  size_t i = 5, k;
  uint32_t *rest;
  moss_status st;
  if (env == MOSS_SPIRV_VULKAN_1_1)
    return validate_in(ctx, words, nwords, SPV_ENV_VULKAN_1_1, at, what);
  /* Float16 arithmetic (cl_khr_fp16): the OpenCL environment specification
   * allows the Float16 capability where the device has the extension, but
   * SPIRV-Tools' OpenCL environments (Debian 12's 2023.1) refuse it. Such
   * a module is checked against SPIR-V's core rules as it is, and against
   * OpenCL 1.2's without that one capability. */
  while (i + 1 < nwords && words[i] == CAPABILITY && words[i + 1] != 9u) /* Float16 */
    i += 2; /* the OpCapability instructions come first */
  if (i + 1 >= nwords || words[i] != CAPABILITY)
    return validate_in(ctx, words, nwords, SPV_ENV_OPENCL_1_2, at, what);
  MOSS_TRY(validate_in(ctx, words, nwords, SPV_ENV_UNIVERSAL_1_0, at, what));
  if (!(rest = moss_alloc(ctx, sizeof *rest * nwords)))
    return moss_fail(ctx, MOSS_E_NOMEM, at, "%s", what);
  for (k = 0; k < i; k++) rest[k] = words[k];
  for (k = i + 2; k < nwords; k++) rest[k - 2] = words[k];
  st = validate_in(ctx, rest, nwords - 2, SPV_ENV_OPENCL_1_2, at, what);
  moss_free(ctx, rest, sizeof *rest * nwords);
  return st;
}
