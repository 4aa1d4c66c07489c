/* spirv.h - what the SPIR-V backends share: the validation of every module
 * they make with SPIRV-Tools (Debian's spirv-tools), before it goes into a
 * bundle, so that a driver never sees a module the SPIR-V specification
 * and its client API's environment refuse. */
#ifndef MOSS_GPU_SPIRV_H
#define MOSS_GPU_SPIRV_H

#include <stddef.h>
#include <stdint.h>

#include "../backend.h"

/* The environment a module is checked against. */
typedef enum moss_spirv_env {
  MOSS_SPIRV_VULKAN_1_1 = 1, /* Shader capability, SPIR-V 1.3 (the Vulkan backend) */
  MOSS_SPIRV_OPENCL_1_2      /* Kernel capability, SPIR-V 1.0 (OpenCL's cl_khr_il_program) */
} moss_spirv_env;

/* Checks the |nwords| words of a module with spvValidateBinary; on
 * failure reports MOSS_E_INTERNAL at |at| (a module that fails is a bug of
 * the backend |what|), with the validator's message and the word it points
 * at. */
moss_status moss_spirv_validate(moss_ctx *ctx, const uint32_t *words, size_t nwords, moss_spirv_env env,
                                const moss_node *at, const char *what);

#endif
