/* vulkan.c - Vulkan devices in libmossrt: the Vulkan executor
 * (mossrt_vulkan_executor, an entry of core/executor.c's table), serving
 * devices whose backend is "vulkan" and owning their BLOB sections
 * (moss_bundle.h, "Vulkan segment blob"; backends/vulkan writes them).
 *
 * At open: the Vulkan loader, dlopen() of libvulkan.so.1 (or the file
 * MOSS_VULKAN_LIBRARY names), and its vkGetInstanceProcAddr, through which
 * every other function is reached; nothing links against Vulkan and
 * <vulkan/vulkan.h> gives only the types. Each blob is checked field by
 * field against its size and its step (gpu/blob.c), and its SPIR-V
 * module's header and OpCapability instructions here.
 *
 * At session creation: an instance (for the loader's Vulkan version, at
 * most 1.3; 1.1 at least), the physical device (below, "The device"), a
 * device with one compute queue and exactly the features the modules'
 * capabilities need (through the extensions that bring them where the
 * device is used at an older Vulkan than made them core), one command pool
 * and one fence; per blob its
 * shader module, one descriptor set (binding 0 the arena, 1 the weights,
 * 2 + k the step's tensor k), a pipeline layout with the 8-byte push
 * constants {items, row}, one compute pipeline per kernel (its workgroup
 * size as specialization constant 0), the buffers (the weights uploaded
 * once) and one command buffer recorded once with the whole step: copies
 * in where the tensors are staged, each kernel's dispatch with a
 * compute-to-compute barrier between them, copies out. A run copies the
 * step's inputs into mapped memory, submits that command buffer, waits on
 * the fence and copies the outputs out: no allocation, no recording.
 *
 * Memory: the arena in DEVICE_LOCAL memory; the weights and the step's
 * tensors, which the host writes or reads, in memory that is DEVICE_LOCAL,
 * HOST_VISIBLE and HOST_COHERENT where the device has it (lavapipe,
 * integrated GPUs, resizable BAR), mapped once for the session's life;
 * otherwise (or when that heap is full, or MOSS_VULKAN_STAGING=1 asks for
 * it) DEVICE_LOCAL memory with a HOST_VISIBLE, HOST_COHERENT staging buffer
 * beside it, copied in and out by the step's command buffer (the weights'
 * staging buffer is used once and freed). Every buffer is rounded up to a
 * multiple of 4 bytes (a buffer of 0 bytes gets 4).
 *
 * Workgroup size w, one per device: 64 invocations, or one subgroup where
 * the device's subgroups are wider; at most maxComputeWorkGroupSize[0] and
 * maxComputeWorkGroupInvocations; then rounded down to a multiple of the
 * subgroup size (VkPhysicalDeviceSubgroupProperties) when it is at least
 * one subgroup. A kernel of n items runs groups = ceil(n / w) workgroups as
 * (gx, gy, 1), gx = min(groups, maxComputeWorkGroupCount[0]), gy =
 * ceil(groups / gx), with row = gx * w.
 *
 * Every failure names the Vulkan call and its VkResult, by name and number. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include "../core/mossrt_internal.h"

/* The functions, by the level vkGetInstanceProcAddr gives them at. */
#define VK_INSTANCE_FUNCTIONS(X)                                                                   \
  X(vkDestroyInstance)                                                                             \
  X(vkEnumeratePhysicalDevices)                                                                    \
  X(vkGetPhysicalDeviceProperties)                                                                 \
  X(vkGetPhysicalDeviceProperties2)                                                                \
  X(vkGetPhysicalDeviceFeatures2)                                                                  \
  X(vkGetPhysicalDeviceQueueFamilyProperties)                                                      \
  X(vkGetPhysicalDeviceMemoryProperties)                                                           \
  X(vkEnumerateDeviceExtensionProperties)                                                          \
  X(vkCreateDevice)                                                                                \
  X(vkGetDeviceProcAddr)
#define VK_DEVICE_FUNCTIONS(X)                                                                     \
  X(vkDestroyDevice)                                                                               \
  X(vkGetDeviceQueue)                                                                              \
  X(vkDeviceWaitIdle)                                                                              \
  X(vkCreateBuffer)                                                                                \
  X(vkDestroyBuffer)                                                                               \
  X(vkGetBufferMemoryRequirements)                                                                 \
  X(vkAllocateMemory)                                                                              \
  X(vkFreeMemory)                                                                                  \
  X(vkBindBufferMemory)                                                                            \
  X(vkMapMemory)                                                                                   \
  X(vkCreateShaderModule)                                                                          \
  X(vkDestroyShaderModule)                                                                         \
  X(vkCreateDescriptorSetLayout)                                                                   \
  X(vkDestroyDescriptorSetLayout)                                                                  \
  X(vkCreatePipelineLayout)                                                                        \
  X(vkDestroyPipelineLayout)                                                                       \
  X(vkCreateComputePipelines)                                                                      \
  X(vkDestroyPipeline)                                                                             \
  X(vkCreateDescriptorPool)                                                                        \
  X(vkDestroyDescriptorPool)                                                                       \
  X(vkAllocateDescriptorSets)                                                                      \
  X(vkUpdateDescriptorSets)                                                                        \
  X(vkCreateCommandPool)                                                                           \
  X(vkDestroyCommandPool)                                                                          \
  X(vkAllocateCommandBuffers)                                                                      \
  X(vkFreeCommandBuffers)                                                                          \
  X(vkBeginCommandBuffer)                                                                          \
  X(vkEndCommandBuffer)                                                                            \
  X(vkCmdBindPipeline)                                                                             \
  X(vkCmdBindDescriptorSets)                                                                       \
  X(vkCmdPushConstants)                                                                            \
  X(vkCmdDispatch)                                                                                 \
  X(vkCmdPipelineBarrier)                                                                          \
  X(vkCmdCopyBuffer)                                                                               \
  X(vkCreateFence)                                                                                 \
  X(vkDestroyFence)                                                                                \
  X(vkResetFences)                                                                                 \
  X(vkWaitForFences)                                                                               \
  X(vkQueueSubmit)

/* The bundle's, per device served: the loader. */
typedef struct vk_api {
  void *lib;
  PFN_vkGetInstanceProcAddr gipa;
} vk_api;

/* A buffer; |map| is where the host reads and writes it: its own memory,
 * or |stage|'s when it has one. */
typedef struct vk_buf {
  VkBuffer buf, stage;
  VkDeviceMemory mem, stage_mem;
  uint8_t *map;      /* NULL: the host never touches it (the arena) */
  VkDeviceSize size; /* bytes allocated: the tensor's, rounded up to 4 (>= 4) */
  size_t bytes;      /* the tensor's */
} vk_buf;

typedef struct vk_kernel {
  VkPipeline pipe;
  uint32_t push[2]; /* items, row */
  uint32_t gx, gy;
  uint32_t wg;      /* its workgroup size (specialization constant 0) */
} vk_kernel;

/* A session's objects for one blob. */
typedef struct vk_prog {
  VkShaderModule module;
  VkDescriptorSetLayout dsl;
  VkPipelineLayout layout;
  VkDescriptorPool pool;
  VkDescriptorSet set; /* freed with |pool| */
  VkCommandBuffer cmd; /* freed with the session's command pool */
  vk_kernel *kernels;  /* nkernels */
  vk_buf *bufs;        /* 2 + ntensors: arena, weights, tensors */
  uint32_t nkernels, ntensors;
} vk_prog;

typedef struct vk_session {
  VkInstance inst;
  VkPhysicalDevice phys;
  VkDevice dev;
  VkQueue queue;
  VkCommandPool cpool;
  VkFence fence;
  uint32_t family;  /* the compute queue's family */
  uint32_t wg;      /* the workgroup size */
  uint32_t version; /* the instance's apiVersion: the loader's, at most 1.3 */
  uint32_t api;     /* the Vulkan the device is used at: min(|version|, its own) */
  int staging;      /* MOSS_VULKAN_STAGING=1: every host buffer staged */
  VkPhysicalDeviceProperties props;
  VkPhysicalDeviceMemoryProperties mem;
  vk_prog *progs; /* per blob (+ 1); other executors' entries stay zero */
  uint32_t nprogs;
#define VK_FIELD(name) PFN_##name name;
  VK_INSTANCE_FUNCTIONS(VK_FIELD)
  VK_DEVICE_FUNCTIONS(VK_FIELD)
#undef VK_FIELD
} vk_session;

static const mossrt_gpu_format format = {MOSS_VULKAN_BLOB_MAGIC, MOSS_VULKAN_BLOB_VERSION, "vulkan",
                                         "a Vulkan segment blob"};

#define FAIL(st, fmt, ...) mossrt_fail(err, b->name, st, "vulkan: " fmt, ##__VA_ARGS__)
/* "vulkan: <call><what>: VK_ERROR_... (<n>)". */
#define VK_FAIL(call, rc, fmt, ...)                                                                \
  FAIL(MOSSRT_E_DEVICE, "%s" fmt ": %s (%d)", call, ##__VA_ARGS__, vk_result_name(rc), (int)(rc))

static const char *vk_result_name(VkResult rc) {
  switch (rc) {
  case VK_SUCCESS: return "VK_SUCCESS";
  case VK_NOT_READY: return "VK_NOT_READY";
  case VK_TIMEOUT: return "VK_TIMEOUT";
  case VK_INCOMPLETE: return "VK_INCOMPLETE";
  case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
  case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
  case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
  case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
  case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
  case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
  case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
  case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
  case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
  case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
  case VK_ERROR_FORMAT_NOT_SUPPORTED: return "VK_ERROR_FORMAT_NOT_SUPPORTED";
  case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
  case VK_ERROR_UNKNOWN: return "VK_ERROR_UNKNOWN";
  case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
  case VK_ERROR_INVALID_EXTERNAL_HANDLE: return "VK_ERROR_INVALID_EXTERNAL_HANDLE";
  case VK_ERROR_FRAGMENTATION: return "VK_ERROR_FRAGMENTATION";
  case VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS: return "VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS";
  case VK_PIPELINE_COMPILE_REQUIRED: return "VK_PIPELINE_COMPILE_REQUIRED";
  case VK_ERROR_INVALID_SHADER_NV: return "VK_ERROR_INVALID_SHADER_NV";
  default: return "VkResult";
  }
}

/* ---- The SPIR-V module ----------------------------------------------------
 * Its header (magic, version) and the OpCapability instructions it starts
 * with (SPIR-V 2.4: all of them come first), each mapped to the device
 * features it needs. A capability not listed here is refused at open: the
 * executor would not know what to enable for it. */
#define SPV_MAGIC 0x07230203u
#define SPV_OP_CAPABILITY 17u

/* The features a module can need (bits of a mask). */
enum {
  F_INT8 = 1u << 0,
  F_INT16 = 1u << 1,
  F_INT64 = 1u << 2,
  F_FLOAT64 = 1u << 3,
  F_FLOAT16 = 1u << 4,
  F_SB8 = 1u << 5,
  F_USB8 = 1u << 6,
  F_PC8 = 1u << 7,
  F_SB16 = 1u << 8,
  F_USB16 = 1u << 9,
  F_PC16 = 1u << 10,
  F_DOT = 1u << 11,
  F_VARPTR_SB = 1u << 12,
  F_VARPTR = 1u << 13
};

static const struct {
  uint32_t bit;
  const char *name;
} features[] = {
    {F_INT8, "shaderInt8"},
    {F_INT16, "shaderInt16"},
    {F_INT64, "shaderInt64"},
    {F_FLOAT64, "shaderFloat64"},
    {F_FLOAT16, "shaderFloat16"},
    {F_SB8, "storageBuffer8BitAccess"},
    {F_USB8, "uniformAndStorageBuffer8BitAccess"},
    {F_PC8, "storagePushConstant8"},
    {F_SB16, "storageBuffer16BitAccess"},
    {F_USB16, "uniformAndStorageBuffer16BitAccess"},
    {F_PC16, "storagePushConstant16"},
    {F_DOT, "shaderIntegerDotProduct"},
    {F_VARPTR_SB, "variablePointersStorageBuffer"},
    {F_VARPTR, "variablePointers"},
};

/* SPIR-V capability -> the feature bit, or the subgroup operation (the
 * device's VkPhysicalDeviceSubgroupProperties must list it for compute). */
static const struct {
  uint32_t cap;
  const char *name;
  uint32_t feature;
  VkSubgroupFeatureFlags subgroup;
} capabilities[] = {
    {0, "Matrix", 0, 0},
    {1, "Shader", 0, 0},
    {9, "Float16", F_FLOAT16, 0},
    {10, "Float64", F_FLOAT64, 0},
    {11, "Int64", F_INT64, 0},
    {22, "Int16", F_INT16, 0},
    {39, "Int8", F_INT8, 0},
    {61, "GroupNonUniform", 0, VK_SUBGROUP_FEATURE_BASIC_BIT},
    {62, "GroupNonUniformVote", 0, VK_SUBGROUP_FEATURE_VOTE_BIT},
    {63, "GroupNonUniformArithmetic", 0, VK_SUBGROUP_FEATURE_ARITHMETIC_BIT},
    {64, "GroupNonUniformBallot", 0, VK_SUBGROUP_FEATURE_BALLOT_BIT},
    {65, "GroupNonUniformShuffle", 0, VK_SUBGROUP_FEATURE_SHUFFLE_BIT},
    {66, "GroupNonUniformShuffleRelative", 0, VK_SUBGROUP_FEATURE_SHUFFLE_RELATIVE_BIT},
    {67, "GroupNonUniformClustered", 0, VK_SUBGROUP_FEATURE_CLUSTERED_BIT},
    {68, "GroupNonUniformQuad", 0, VK_SUBGROUP_FEATURE_QUAD_BIT},
    {4433, "StorageBuffer16BitAccess", F_SB16, 0},
    {4434, "UniformAndStorageBuffer16BitAccess", F_USB16, 0},
    {4435, "StoragePushConstant16", F_PC16, 0},
    {4441, "VariablePointersStorageBuffer", F_VARPTR_SB, 0},
    {4442, "VariablePointers", F_VARPTR, 0},
    {4448, "StorageBuffer8BitAccess", F_SB8, 0},
    {4449, "UniformAndStorageBuffer8BitAccess", F_USB8, 0},
    {4450, "StoragePushConstant8", F_PC8, 0},
    {6016, "DotProductInputAll", F_DOT, 0},
    {6017, "DotProductInput4x8Bit", F_DOT, 0},
    {6018, "DotProductInput4x8BitPacked", F_DOT, 0},
    {6019, "DotProduct", F_DOT, 0},
};
#define NCAPS (sizeof capabilities / sizeof capabilities[0])

static uint32_t rd32(const char *p) {
  const uint8_t *u = (const uint8_t *)p;
  return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

/* What blob |i|'s module declares: its SPIR-V version word, the feature
 * bits and subgroup operations it needs, and per capability (indexed as
 * capabilities[]) whether it is declared. Refuses a module that is not
 * SPIR-V 1.0 .. 1.6 or declares a capability not in the table. */
typedef struct spv_needs {
  uint32_t version;
  uint32_t features;
  VkSubgroupFeatureFlags subgroup;
  uint8_t declared[NCAPS];
} spv_needs;

static mossrt_status spv_read(const mossrt_bundle *b, uint32_t i, const mossrt_gpu_blob *ob,
                              spv_needs *out, mossrt_error *err) {
  const char *w = ob->source;
  uint64_t n = ob->h.source_len / 4, k;
  uint32_t ver;
  memset(out, 0, sizeof *out);
  if (ob->h.source_len % 4 || n < 5)
    return FAIL(MOSSRT_E_FORMAT,
                "blob %u: its SPIR-V module is %llu bytes, not a header and whole words", i,
                (unsigned long long)ob->h.source_len);
  if (rd32(w) != SPV_MAGIC)
    return FAIL(MOSSRT_E_FORMAT,
                "blob %u: its module does not start with the SPIR-V magic number "
                "(0x%08x, expected 0x%08x)",
                i, rd32(w), SPV_MAGIC);
  ver = rd32(w + 4);
  if ((ver & 0xff0000ffu) || (ver >> 16 & 0xff) != 1 || (ver >> 8 & 0xff) > 6)
    return FAIL(MOSSRT_E_FORMAT, "blob %u: SPIR-V version word 0x%08x, expected 1.0 to 1.6", i,
                ver);
  out->version = ver;
  for (k = 5; k < n; k++) {
    uint32_t word = rd32(w + 4 * k), cap, c;
    if ((word & 0xffffu) != SPV_OP_CAPABILITY) break;
    if (word >> 16 != 2 || k + 1 >= n)
      return FAIL(MOSSRT_E_FORMAT, "blob %u: a malformed OpCapability at word %llu of its SPIR-V",
                  i, (unsigned long long)k);
    cap = rd32(w + 4 * ++k);
    for (c = 0; c < NCAPS && capabilities[c].cap != cap; c++) continue;
    if (c == NCAPS)
      return FAIL(MOSSRT_E_FORMAT,
                  "blob %u: its SPIR-V declares capability %u, which this executor "
                  "cannot enable",
                  i, cap);
    out->declared[c] = 1;
    out->features |= capabilities[c].feature;
    out->subgroup |= capabilities[c].subgroup;
  }
  return MOSSRT_OK;
}

static int vulkan_serves(const mossrt_device *d) { return strcmp(d->backend, "vulkan") == 0; }

/* The step's tensors are the blob's, of the same sizes; its module is
 * SPIR-V with capabilities the executor knows. */
static mossrt_status vulkan_check_step(mossrt_bundle *b, uint32_t i, mossrt_error *err) {
  mossrt_gpu_blob ob;
  spv_needs nd;
  if (mossrt_gpu_check_step(b, i, &format, err) != MOSSRT_OK) return MOSSRT_E_FORMAT;
  if (mossrt_gpu_blob_read(b, b->steps[i].blob, &format, &ob, err) != MOSSRT_OK)
    return MOSSRT_E_FORMAT;
  return spv_read(b, b->steps[i].blob, &ob, &nd, err);
}

static void vulkan_close(mossrt_bundle *b) {
  uint32_t i;
  for (i = 0; b->devices && i < b->ndevices; i++) {
    mossrt_device *d = &b->devices[i];
    vk_api *api = d->xstate;
    if (d->exec != &mossrt_vulkan_executor || !api) continue;
    /* The loader stays loaded, as the other executors' drivers do: the ICDs
     * it loads keep process-wide state and are not made to be unloaded. */
    mossrt_mem_free(&b->alloc, api, sizeof *api);
    d->xstate = NULL;
  }
}

/* The loader (MOSS_VULKAN_LIBRARY, else libvulkan.so.1) and its
 * vkGetInstanceProcAddr, into |api|; |api->lib| is set once it is loaded. */
static mossrt_status load_loader(const mossrt_bundle *b, const mossrt_device *d, vk_api *api,
                                 mossrt_error *err) {
  const char *path = getenv("MOSS_VULKAN_LIBRARY");
  if (!path || !*path) path = "libvulkan.so.1";
  if (!(api->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
    const char *why = dlerror();
    return FAIL(MOSSRT_E_DEVICE, "device '%s': cannot load the Vulkan loader %s (%s)", d->id, path,
                why ? why : "not found");
  }
  if (!(*(void **)&api->gipa = dlsym(api->lib, "vkGetInstanceProcAddr")))
    return FAIL(MOSSRT_E_DEVICE, "device '%s': %s has no vkGetInstanceProcAddr", d->id, path);
  return MOSSRT_OK;
}

static mossrt_status vulkan_open(mossrt_bundle *b, mossrt_error *err) {
  uint32_t i;
  mossrt_status st;
  for (i = 0; i < b->ndevices; i++) {
    mossrt_device *d = &b->devices[i];
    vk_api *api;
    if (d->exec != &mossrt_vulkan_executor || !d->used) continue;
    if (!(api = mossrt_mem_alloc(&b->alloc, sizeof *api)))
      return FAIL(MOSSRT_E_NOMEM, "cannot allocate the Vulkan functions");
    memset(api, 0, sizeof *api);
    d->xstate = api;
    if ((st = load_loader(b, d, api, err)) != MOSSRT_OK) return st;
  }
  return MOSSRT_OK;
}

static const vk_api *session_api(const mossrt_bundle *b) {
  uint32_t i;
  for (i = 0; i < b->ndevices; i++)
    if (b->devices[i].exec == &mossrt_vulkan_executor && b->devices[i].xstate)
      return b->devices[i].xstate;
  return NULL;
}

/* |n| bytes from |a|, zeroed (so that a partial session can be undone). */
static void *zalloc(const mossrt_allocator *a, size_t n) {
  void *p = mossrt_mem_alloc(a, n);
  if (p) memset(p, 0, n);
  return p;
}

/* ---- The device -----------------------------------------------------------
 * MOSS_DEVICE all digits: the physical device of that index (in the order
 * vkEnumeratePhysicalDevices gives them); otherwise the first whose
 * deviceName contains it. Unset: the first discrete or integrated GPU,
 * else the first device. The device must support Vulkan 1.1 and have a
 * queue family with compute. */
static mossrt_status pick_device(const mossrt_bundle *b, vk_session *vs, mossrt_error *err) {
  VkPhysicalDevice devs[64];
  VkPhysicalDeviceProperties pr;
  uint32_t n = 64, k, pick = UINT32_MAX;
  const char *want = getenv("MOSS_DEVICE");
  VkResult rc = vs->vkEnumeratePhysicalDevices(vs->inst, &n, devs);
  if (rc < 0) return VK_FAIL("vkEnumeratePhysicalDevices", rc, "");
  if (n == 0)
    return FAIL(MOSSRT_E_DEVICE, "no Vulkan device (vkEnumeratePhysicalDevices: 0 devices)");
  if (n > 64) n = 64;
  if (want && *want && strspn(want, "0123456789") == strlen(want)) {
    unsigned long idx = strtoul(want, NULL, 10);
    if (idx >= n)
      return FAIL(MOSSRT_E_DEVICE, "no Vulkan device of index MOSS_DEVICE=%s (%u devices)", want,
                  n);
    pick = (uint32_t)idx;
  } else if (want && *want) {
    char names[200];
    size_t used = 0;
    names[0] = 0;
    for (k = 0; k < n && pick == UINT32_MAX; k++) {
      vs->vkGetPhysicalDeviceProperties(devs[k], &pr);
      pr.deviceName[sizeof pr.deviceName - 1] = 0;
      if (strstr(pr.deviceName, want))
        pick = k;
      else if (used < sizeof names) {
        int m = snprintf(names + used, sizeof names - used, "%s'%s'", k ? ", " : "", pr.deviceName);
        if (m > 0) used += (size_t)m;
      }
    }
    if (pick == UINT32_MAX)
      return FAIL(MOSSRT_E_DEVICE,
                  "no Vulkan device whose name contains MOSS_DEVICE='%s' (%u devices: %s)", want, n,
                  names);
  } else {
    for (k = 0; k < n && pick == UINT32_MAX; k++) {
      vs->vkGetPhysicalDeviceProperties(devs[k], &pr);
      if (pr.deviceType == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU ||
          pr.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU)
        pick = k;
    }
    if (pick == UINT32_MAX) pick = 0;
  }
  vs->phys = devs[pick];
  vs->vkGetPhysicalDeviceProperties(vs->phys, &vs->props);
  vs->props.deviceName[sizeof vs->props.deviceName - 1] = 0;
  if (vs->props.apiVersion < VK_API_VERSION_1_1)
    return FAIL(MOSSRT_E_DEVICE, "device '%s' supports Vulkan %u.%u, moss needs 1.1",
                vs->props.deviceName, VK_API_VERSION_MAJOR(vs->props.apiVersion),
                VK_API_VERSION_MINOR(vs->props.apiVersion));
  vs->api = vs->props.apiVersion < vs->version ? vs->props.apiVersion : vs->version;
  {
    VkQueueFamilyProperties fam[32];
    uint32_t nf = 32;
    vs->vkGetPhysicalDeviceQueueFamilyProperties(vs->phys, &nf, fam);
    if (nf > 32) nf = 32;
    for (k = 0; k < nf; k++)
      if ((fam[k].queueFlags & VK_QUEUE_COMPUTE_BIT) && fam[k].queueCount > 0) break;
    if (k == nf)
      return FAIL(MOSSRT_E_DEVICE, "device '%s' has no compute queue", vs->props.deviceName);
    vs->family = k;
  }
  vs->vkGetPhysicalDeviceMemoryProperties(vs->phys, &vs->mem);
  return MOSSRT_OK;
}

/* 1 when the device offers extension |name| (|exts|: its |n| extensions). */
static int has_ext(const VkExtensionProperties *exts, uint32_t n, const char *name) {
  uint32_t k;
  for (k = 0; exts && k < n; k++)
    if (!strncmp(exts[k].extensionName, name, sizeof exts[k].extensionName)) return 1;
  return 0;
}

/* The device itself: the features every Vulkan blob's module needs, each
 * checked first (named when missing), the extensions that bring them to a
 * device older than the Vulkan version that made them core, one compute
 * queue; then the device's functions, its queue, a command pool and a
 * fence. Also the workgroup size. */
static mossrt_status create_device(const mossrt_bundle *b, vk_session *vs, mossrt_error *err) {
  uint32_t api = vs->api, need = 0, have = 0, next_ext = 0, nexts = 0, i, k;
  uint32_t max_spv = api >= VK_API_VERSION_1_3   ? 0x10600u
                     : api >= VK_API_VERSION_1_2 ? 0x10500u
                                                 : 0x10300u;
  VkPhysicalDeviceShaderFloat16Int8Features f16i8 = {0}, e_f16i8 = {0};
  VkPhysicalDevice8BitStorageFeatures s8 = {0}, e_s8 = {0};
  VkPhysicalDevice16BitStorageFeatures s16 = {0}, e_s16 = {0};
  VkPhysicalDeviceShaderIntegerDotProductFeatures dot = {0}, e_dot = {0};
  VkPhysicalDeviceVariablePointersFeatures vp = {0}, e_vp = {0};
  VkPhysicalDeviceFeatures2 f2 = {0}, e_f2 = {0};
  VkPhysicalDeviceSubgroupProperties sub = {0};
  VkPhysicalDeviceProperties2 p2 = {0};
  VkExtensionProperties *exts = NULL;
  const char *enable[3];
  int ext_f16i8, ext_s8, ext_dot; /* 1: the device has the extension and needs it enabled */
  int has_f16i8, has_s8, has_dot; /* 1: the device can be asked about those features */
  VkResult rc;
  void **tail;

  /* Which extensions there are: the list, only while it is read. */
  rc = vs->vkEnumerateDeviceExtensionProperties(vs->phys, NULL, &nexts, NULL);
  if (rc < 0) return VK_FAIL("vkEnumerateDeviceExtensionProperties", rc, "");
  if (nexts && !(exts = mossrt_mem_alloc(&b->alloc, nexts * sizeof *exts)))
    return FAIL(MOSSRT_E_NOMEM, "cannot allocate %u extension properties", nexts);
  if (exts && (rc = vs->vkEnumerateDeviceExtensionProperties(vs->phys, NULL, &nexts, exts)) < 0) {
    mossrt_mem_free(&b->alloc, exts, nexts * sizeof *exts);
    return VK_FAIL("vkEnumerateDeviceExtensionProperties", rc, "");
  }
  ext_f16i8 = api < VK_API_VERSION_1_2 && has_ext(exts, nexts, "VK_KHR_shader_float16_int8");
  ext_s8 = api < VK_API_VERSION_1_2 && has_ext(exts, nexts, "VK_KHR_8bit_storage");
  ext_dot = api < VK_API_VERSION_1_3 && has_ext(exts, nexts, "VK_KHR_shader_integer_dot_product");
  if (exts) mossrt_mem_free(&b->alloc, exts, nexts * sizeof *exts);
  has_f16i8 = api >= VK_API_VERSION_1_2 || ext_f16i8;
  has_s8 = api >= VK_API_VERSION_1_2 || ext_s8;
  has_dot = api >= VK_API_VERSION_1_3 || ext_dot;

  /* The device's features (a structure is asked about only where the
   * device knows it) and subgroups. */
  f2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
  tail = &f2.pNext;
  s16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES;
  *tail = &s16, tail = &s16.pNext;
  vp.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VARIABLE_POINTERS_FEATURES;
  *tail = &vp, tail = &vp.pNext;
  if (has_f16i8) {
    f16i8.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES;
    *tail = &f16i8, tail = &f16i8.pNext;
  }
  if (has_s8) {
    s8.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES;
    *tail = &s8, tail = &s8.pNext;
  }
  if (has_dot) {
    dot.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES;
    *tail = &dot, tail = &dot.pNext;
  }
  vs->vkGetPhysicalDeviceFeatures2(vs->phys, &f2);
  have |= f16i8.shaderInt8 ? F_INT8 : 0;
  have |= f16i8.shaderFloat16 ? F_FLOAT16 : 0;
  have |= f2.features.shaderInt16 ? F_INT16 : 0;
  have |= f2.features.shaderInt64 ? F_INT64 : 0;
  have |= f2.features.shaderFloat64 ? F_FLOAT64 : 0;
  have |= s8.storageBuffer8BitAccess ? F_SB8 : 0;
  have |= s8.uniformAndStorageBuffer8BitAccess ? F_USB8 : 0;
  have |= s8.storagePushConstant8 ? F_PC8 : 0;
  have |= s16.storageBuffer16BitAccess ? F_SB16 : 0;
  have |= s16.uniformAndStorageBuffer16BitAccess ? F_USB16 : 0;
  have |= s16.storagePushConstant16 ? F_PC16 : 0;
  have |= dot.shaderIntegerDotProduct ? F_DOT : 0;
  have |= vp.variablePointersStorageBuffer ? F_VARPTR_SB : 0;
  have |= vp.variablePointers ? F_VARPTR : 0;
  p2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2;
  sub.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES;
  p2.pNext = &sub;
  vs->vkGetPhysicalDeviceProperties2(vs->phys, &p2);

  /* What each blob needs, against what the device has. */
  for (i = 0; i < b->nblobs; i++) {
    mossrt_gpu_blob ob;
    spv_needs nd;
    if (b->devices[b->blobs[i].device].exec != &mossrt_vulkan_executor) continue;
    if (mossrt_gpu_blob_read(b, i, &format, &ob, err) != MOSSRT_OK ||
        spv_read(b, i, &ob, &nd, err) != MOSSRT_OK)
      return MOSSRT_E_FORMAT;
    if (nd.version > max_spv)
      return FAIL(
          MOSSRT_E_DEVICE, "blob %u is SPIR-V %u.%u, device '%s' (Vulkan %u.%u) takes up to %u.%u",
          i, nd.version >> 16 & 0xff, nd.version >> 8 & 0xff, vs->props.deviceName,
          VK_API_VERSION_MAJOR(api), VK_API_VERSION_MINOR(api), max_spv >> 16, max_spv >> 8 & 0xff);
    for (k = 0; k < NCAPS; k++) {
      uint32_t miss = capabilities[k].feature & ~have, f;
      if (!nd.declared[k]) continue;
      if (miss) {
        for (f = 0; features[f].bit != miss; f++) continue;
        return FAIL(MOSSRT_E_DEVICE,
                    "device '%s' lacks the feature %s, which blob %u's SPIR-V capability %s "
                    "needs",
                    vs->props.deviceName, features[f].name, i, capabilities[k].name);
      }
      if (capabilities[k].subgroup &&
          (!(sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) ||
           (sub.supportedOperations & capabilities[k].subgroup) != capabilities[k].subgroup))
        return FAIL(MOSSRT_E_DEVICE,
                    "device '%s' lacks the compute subgroup operations that blob %u's SPIR-V "
                    "capability %s needs",
                    vs->props.deviceName, i, capabilities[k].name);
    }
    need |= nd.features;
  }

  /* Exactly those features, in the structures that hold them, and the
   * extensions that bring them to an older device. */
  e_f2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
  e_f2.features.shaderInt16 = (need & F_INT16) != 0;
  e_f2.features.shaderInt64 = (need & F_INT64) != 0;
  e_f2.features.shaderFloat64 = (need & F_FLOAT64) != 0;
  tail = &e_f2.pNext;
  if (need & (F_INT8 | F_FLOAT16)) {
    e_f16i8.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES;
    e_f16i8.shaderInt8 = (need & F_INT8) != 0;
    e_f16i8.shaderFloat16 = (need & F_FLOAT16) != 0;
    *tail = &e_f16i8, tail = &e_f16i8.pNext;
    if (ext_f16i8) enable[next_ext++] = "VK_KHR_shader_float16_int8";
  }
  if (need & (F_SB8 | F_USB8 | F_PC8)) {
    e_s8.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES;
    e_s8.storageBuffer8BitAccess = (need & F_SB8) != 0;
    e_s8.uniformAndStorageBuffer8BitAccess = (need & F_USB8) != 0;
    e_s8.storagePushConstant8 = (need & F_PC8) != 0;
    *tail = &e_s8, tail = &e_s8.pNext;
    if (ext_s8) enable[next_ext++] = "VK_KHR_8bit_storage";
  }
  if (need & (F_SB16 | F_USB16 | F_PC16)) {
    e_s16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES;
    e_s16.storageBuffer16BitAccess = (need & F_SB16) != 0;
    e_s16.uniformAndStorageBuffer16BitAccess = (need & F_USB16) != 0;
    e_s16.storagePushConstant16 = (need & F_PC16) != 0;
    *tail = &e_s16, tail = &e_s16.pNext;
  }
  if (need & F_DOT) {
    e_dot.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES;
    e_dot.shaderIntegerDotProduct = VK_TRUE;
    *tail = &e_dot, tail = &e_dot.pNext;
    if (ext_dot) enable[next_ext++] = "VK_KHR_shader_integer_dot_product";
  }
  if (need & (F_VARPTR_SB | F_VARPTR)) {
    e_vp.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VARIABLE_POINTERS_FEATURES;
    e_vp.variablePointersStorageBuffer = (need & F_VARPTR_SB) != 0;
    e_vp.variablePointers = (need & F_VARPTR) != 0;
    *tail = &e_vp;
  }
  {
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {0};
    VkDeviceCreateInfo di = {0};
    qi.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO;
    qi.queueFamilyIndex = vs->family;
    qi.queueCount = 1;
    qi.pQueuePriorities = &prio;
    di.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO;
    di.pNext = &e_f2;
    di.queueCreateInfoCount = 1;
    di.pQueueCreateInfos = &qi;
    di.enabledExtensionCount = next_ext;
    di.ppEnabledExtensionNames = next_ext ? enable : NULL;
    if ((rc = vs->vkCreateDevice(vs->phys, &di, NULL, &vs->dev)) != VK_SUCCESS) {
      vs->dev = VK_NULL_HANDLE;
      return VK_FAIL("vkCreateDevice", rc, " ('%s')", vs->props.deviceName);
    }
  }
#define VK_LOAD_DEVICE(name)                                                                       \
  if (!(vs->name = (PFN_##name)vs->vkGetDeviceProcAddr(vs->dev, #name)))                           \
    return FAIL(MOSSRT_E_DEVICE, "vkGetDeviceProcAddr gives no %s", #name);
  VK_DEVICE_FUNCTIONS(VK_LOAD_DEVICE)
#undef VK_LOAD_DEVICE
  vs->vkGetDeviceQueue(vs->dev, vs->family, 0, &vs->queue);
  {
    VkCommandPoolCreateInfo ci = {0};
    VkFenceCreateInfo fi = {0};
    ci.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO;
    ci.queueFamilyIndex = vs->family;
    if ((rc = vs->vkCreateCommandPool(vs->dev, &ci, NULL, &vs->cpool)) != VK_SUCCESS) {
      vs->cpool = VK_NULL_HANDLE;
      return VK_FAIL("vkCreateCommandPool", rc, "");
    }
    fi.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
    if ((rc = vs->vkCreateFence(vs->dev, &fi, NULL, &vs->fence)) != VK_SUCCESS) {
      vs->fence = VK_NULL_HANDLE;
      return VK_FAIL("vkCreateFence", rc, "");
    }
  }
  /* The workgroup size (the file's opening comment gives the rule). */
  {
    const VkPhysicalDeviceLimits *l = &vs->props.limits;
    uint32_t w = 64, cap = l->maxComputeWorkGroupSize[0], sg = sub.subgroupSize;
    if (l->maxComputeWorkGroupInvocations < cap) cap = l->maxComputeWorkGroupInvocations;
    if (sg > w) w = sg;
    if (w > cap) w = cap;
    if (sg && w >= sg) w -= w % sg;
    vs->wg = w ? w : 1;
  }
  return MOSSRT_OK;
}

/* ---- Buffers --------------------------------------------------------------- */

/* The first memory type allowed by |bits| that has every flag in |want|; -1: none. */
static int mem_type(const vk_session *vs, uint32_t bits, VkMemoryPropertyFlags want) {
  uint32_t t;
  for (t = 0; t < vs->mem.memoryTypeCount; t++)
    if ((bits >> t & 1u) && (vs->mem.memoryTypes[t].propertyFlags & want) == want) return (int)t;
  return -1;
}

#define HOST_COHERENT (VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)

/* A buffer of |bytes| and its memory, bound: |host| 0 for one only the
 * device sees, else one the host reaches at bf->map (see "Memory" in the
 * opening comment); |what| names it in messages. */
static mossrt_status make_buf(const mossrt_bundle *b, vk_session *vs, vk_buf *bf, uint64_t bytes,
                              int host, const char *what, uint32_t blob, mossrt_error *err) {
  VkBufferCreateInfo bi = {0};
  VkMemoryAllocateInfo ai = {0};
  VkMemoryRequirements req;
  VkResult rc = VK_SUCCESS;
  int t = -1, direct = 0;
  bf->bytes = (size_t)bytes;
  bf->size = (bytes + 3) / 4 * 4;
  if (bf->size == 0) bf->size = 4;
  if (bf->size > vs->props.limits.maxStorageBufferRange)
    return FAIL(MOSSRT_E_DEVICE,
                "blob %u's %s is %llu bytes, more than device '%s' binds "
                "(maxStorageBufferRange %u)",
                blob, what, (unsigned long long)bytes, vs->props.deviceName,
                vs->props.limits.maxStorageBufferRange);
  bi.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
  bi.size = bf->size;
  bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
             VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  if ((rc = vs->vkCreateBuffer(vs->dev, &bi, NULL, &bf->buf)) != VK_SUCCESS) {
    bf->buf = VK_NULL_HANDLE;
    return VK_FAIL("vkCreateBuffer", rc, " (blob %u's %s, %llu bytes)", blob, what,
                   (unsigned long long)bf->size);
  }
  vs->vkGetBufferMemoryRequirements(vs->dev, bf->buf, &req);
  ai.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO;
  ai.allocationSize = req.size;
  if (host && !vs->staging &&
      (t = mem_type(vs, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | HOST_COHERENT)) >=
          0) {
    ai.memoryTypeIndex = (uint32_t)t;
    rc = vs->vkAllocateMemory(vs->dev, &ai, NULL, &bf->mem);
    if (rc == VK_SUCCESS)
      direct = 1;
    else
      bf->mem = VK_NULL_HANDLE;
    if (rc != VK_SUCCESS && rc != VK_ERROR_OUT_OF_DEVICE_MEMORY) /* that heap full: staged below */
      return VK_FAIL("vkAllocateMemory", rc, " (blob %u's %s, %llu bytes)", blob, what,
                     (unsigned long long)req.size);
  }
  if (!direct) {
    if ((t = mem_type(vs, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT)) < 0 &&
        (t = mem_type(vs, req.memoryTypeBits, 0)) < 0)
      return FAIL(MOSSRT_E_DEVICE, "no memory type for blob %u's %s", blob, what);
    ai.memoryTypeIndex = (uint32_t)t;
    if ((rc = vs->vkAllocateMemory(vs->dev, &ai, NULL, &bf->mem)) != VK_SUCCESS) {
      bf->mem = VK_NULL_HANDLE;
      return VK_FAIL("vkAllocateMemory", rc, " (blob %u's %s, %llu bytes)", blob, what,
                     (unsigned long long)req.size);
    }
    /* Not staged after all where this memory is the host's anyway. */
    direct = host && !vs->staging &&
             (vs->mem.memoryTypes[t].propertyFlags & HOST_COHERENT) == HOST_COHERENT;
  }
  if ((rc = vs->vkBindBufferMemory(vs->dev, bf->buf, bf->mem, 0)) != VK_SUCCESS)
    return VK_FAIL("vkBindBufferMemory", rc, " (blob %u's %s)", blob, what);
  if (!host) return MOSSRT_OK;
  if (direct) {
    void *m = NULL;
    if ((rc = vs->vkMapMemory(vs->dev, bf->mem, 0, VK_WHOLE_SIZE, 0, &m)) != VK_SUCCESS)
      return VK_FAIL("vkMapMemory", rc, " (blob %u's %s)", blob, what);
    bf->map = m;
    return MOSSRT_OK;
  }
  /* The staging buffer: only copied from and to. */
  bi.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  if ((rc = vs->vkCreateBuffer(vs->dev, &bi, NULL, &bf->stage)) != VK_SUCCESS) {
    bf->stage = VK_NULL_HANDLE;
    return VK_FAIL("vkCreateBuffer", rc, " (blob %u's %s, staging)", blob, what);
  }
  vs->vkGetBufferMemoryRequirements(vs->dev, bf->stage, &req);
  if ((t = mem_type(vs, req.memoryTypeBits, HOST_COHERENT | VK_MEMORY_PROPERTY_HOST_CACHED_BIT)) <
          0 &&
      (t = mem_type(vs, req.memoryTypeBits, HOST_COHERENT)) < 0)
    return FAIL(MOSSRT_E_DEVICE, "no host-visible, host-coherent memory type for blob %u's %s",
                blob, what);
  ai.allocationSize = req.size;
  ai.memoryTypeIndex = (uint32_t)t;
  if ((rc = vs->vkAllocateMemory(vs->dev, &ai, NULL, &bf->stage_mem)) != VK_SUCCESS) {
    bf->stage_mem = VK_NULL_HANDLE;
    return VK_FAIL("vkAllocateMemory", rc, " (blob %u's %s, staging, %llu bytes)", blob, what,
                   (unsigned long long)req.size);
  }
  if ((rc = vs->vkBindBufferMemory(vs->dev, bf->stage, bf->stage_mem, 0)) != VK_SUCCESS)
    return VK_FAIL("vkBindBufferMemory", rc, " (blob %u's %s, staging)", blob, what);
  {
    void *m = NULL;
    if ((rc = vs->vkMapMemory(vs->dev, bf->stage_mem, 0, VK_WHOLE_SIZE, 0, &m)) != VK_SUCCESS)
      return VK_FAIL("vkMapMemory", rc, " (blob %u's %s, staging)", blob, what);
    bf->map = m;
  }
  return MOSSRT_OK;
}

/* Frees what make_buf() made, also partly (freeing memory unmaps it). */
static void free_buf(const vk_session *vs, vk_buf *bf) {
  if (bf->stage) vs->vkDestroyBuffer(vs->dev, bf->stage, NULL);
  if (bf->stage_mem) vs->vkFreeMemory(vs->dev, bf->stage_mem, NULL);
  if (bf->buf) vs->vkDestroyBuffer(vs->dev, bf->buf, NULL);
  if (bf->mem) vs->vkFreeMemory(vs->dev, bf->mem, NULL);
  memset(bf, 0, sizeof *bf);
}

/* Runs |cmd| (recorded) on the queue and waits for it; a failing call's
 * name in |*out_call|. */
static VkResult submit_wait(vk_session *vs, VkCommandBuffer cmd, const char **out_call) {
  VkSubmitInfo si = {0};
  VkResult rc;
  si.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO;
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cmd;
  *out_call = "vkQueueSubmit";
  if ((rc = vs->vkQueueSubmit(vs->queue, 1, &si, vs->fence)) != VK_SUCCESS) return rc;
  *out_call = "vkWaitForFences";
  if ((rc = vs->vkWaitForFences(vs->dev, 1, &vs->fence, VK_TRUE, UINT64_MAX)) != VK_SUCCESS)
    return rc;
  *out_call = "vkResetFences";
  return vs->vkResetFences(vs->dev, 1, &vs->fence);
}

static void barrier(const vk_session *vs, VkCommandBuffer cmd, VkPipelineStageFlags src,
                    VkAccessFlags src_access, VkPipelineStageFlags dst, VkAccessFlags dst_access) {
  VkMemoryBarrier mb = {0};
  mb.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER;
  mb.srcAccessMask = src_access;
  mb.dstAccessMask = dst_access;
  vs->vkCmdPipelineBarrier(cmd, src, dst, 0, 1, &mb, 0, NULL, 0, NULL);
}

/* The weights into blob |i|'s weights buffer, once: straight into its
 * mapped memory, or through its staging buffer, which is then freed. */
static mossrt_status upload_weights(const mossrt_bundle *b, vk_session *vs, vk_buf *bf,
                                    const uint8_t *w, uint32_t i, mossrt_error *err) {
  VkCommandBufferAllocateInfo ai = {0};
  VkCommandBufferBeginInfo bi = {0};
  VkCommandBuffer cmd = VK_NULL_HANDLE;
  VkBufferCopy cp = {0, 0, 0};
  const char *call = "vkBeginCommandBuffer";
  VkResult rc;
  if (bf->bytes) memcpy(bf->map, w, bf->bytes);
  if (!bf->stage) return MOSSRT_OK;
  ai.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
  ai.commandPool = vs->cpool;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  if ((rc = vs->vkAllocateCommandBuffers(vs->dev, &ai, &cmd)) != VK_SUCCESS)
    return VK_FAIL("vkAllocateCommandBuffers", rc, " (blob %u's weights)", i);
  bi.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
  bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  cp.size = bf->size;
  if ((rc = vs->vkBeginCommandBuffer(cmd, &bi)) == VK_SUCCESS) {
    vs->vkCmdCopyBuffer(cmd, bf->stage, bf->buf, 1, &cp);
    call = "vkEndCommandBuffer";
    if ((rc = vs->vkEndCommandBuffer(cmd)) == VK_SUCCESS) rc = submit_wait(vs, cmd, &call);
  }
  vs->vkFreeCommandBuffers(vs->dev, vs->cpool, 1, &cmd);
  if (rc != VK_SUCCESS) return VK_FAIL(call, rc, " (blob %u's weights)", i);
  vs->vkDestroyBuffer(vs->dev, bf->stage, NULL);
  vs->vkFreeMemory(vs->dev, bf->stage_mem, NULL);
  bf->stage = VK_NULL_HANDLE;
  bf->stage_mem = VK_NULL_HANDLE;
  bf->map = NULL;
  return MOSSRT_OK;
}

/* Undoes load_prog(), also a partial one. */
static void release_prog(const vk_session *vs, const mossrt_allocator *a, vk_prog *p) {
  uint32_t k;
  for (k = 0; p->kernels && k < p->nkernels; k++)
    if (p->kernels[k].pipe) vs->vkDestroyPipeline(vs->dev, p->kernels[k].pipe, NULL);
  for (k = 0; p->bufs && k < 2 + p->ntensors; k++) free_buf(vs, &p->bufs[k]);
  if (p->pool) vs->vkDestroyDescriptorPool(vs->dev, p->pool, NULL);
  if (p->layout) vs->vkDestroyPipelineLayout(vs->dev, p->layout, NULL);
  if (p->dsl) vs->vkDestroyDescriptorSetLayout(vs->dev, p->dsl, NULL);
  if (p->module) vs->vkDestroyShaderModule(vs->dev, p->module, NULL);
  if (p->kernels) mossrt_mem_free(a, p->kernels, p->nkernels * sizeof *p->kernels);
  if (p->bufs) mossrt_mem_free(a, p->bufs, (2 + (size_t)p->ntensors) * sizeof *p->bufs);
  memset(p, 0, sizeof *p);
}

/* The step's command buffer: staged inputs copied in, the kernels
 * dispatched in order, staged outputs copied out; |nin| of the tensors are
 * inputs. */
static mossrt_status record(const mossrt_bundle *b, vk_session *vs, vk_prog *p, uint32_t i,
                            uint32_t nin, mossrt_error *err) {
  const VkPipelineStageFlags CT =
      VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
  const VkAccessFlags RW = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  VkCommandBufferAllocateInfo ai = {0};
  VkCommandBufferBeginInfo bi = {0};
  VkResult rc;
  uint32_t k;
  int staged_in = 0, staged_out = 0;
  ai.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
  ai.commandPool = vs->cpool;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  if ((rc = vs->vkAllocateCommandBuffers(vs->dev, &ai, &p->cmd)) != VK_SUCCESS) {
    p->cmd = VK_NULL_HANDLE;
    return VK_FAIL("vkAllocateCommandBuffers", rc, " (blob %u)", i);
  }
  bi.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
  if ((rc = vs->vkBeginCommandBuffer(p->cmd, &bi)) != VK_SUCCESS)
    return VK_FAIL("vkBeginCommandBuffer", rc, " (blob %u)", i);
  /* The previous run's writes (the arena) before this run's accesses. */
  barrier(vs, p->cmd, CT, VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT, CT, RW);
  for (k = 0; k < nin; k++) {
    vk_buf *bf = &p->bufs[2 + k];
    VkBufferCopy cp = {0, 0, 0};
    if (!bf->stage) continue;
    cp.size = bf->size;
    vs->vkCmdCopyBuffer(p->cmd, bf->stage, bf->buf, 1, &cp);
    staged_in = 1;
  }
  if (staged_in)
    barrier(vs, p->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_WRITE_BIT,
            VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
            VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
  vs->vkCmdBindDescriptorSets(p->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &p->set, 0,
                              NULL);
  for (k = 0; k < p->nkernels; k++) {
    const vk_kernel *kn = &p->kernels[k];
    if (k)
      barrier(vs, p->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
              VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
              VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
    vs->vkCmdBindPipeline(p->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, kn->pipe);
    vs->vkCmdPushConstants(p->cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof kn->push,
                           kn->push);
    vs->vkCmdDispatch(p->cmd, kn->gx, kn->gy, 1);
  }
  for (k = nin; k < p->ntensors; k++) staged_out |= p->bufs[2 + k].stage != VK_NULL_HANDLE;
  if (staged_out) {
    barrier(vs, p->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
            VK_PIPELINE_STAGE_TRANSFER_BIT, VK_ACCESS_TRANSFER_READ_BIT);
    for (k = nin; k < p->ntensors; k++) {
      vk_buf *bf = &p->bufs[2 + k];
      VkBufferCopy cp = {0, 0, 0};
      if (!bf->stage) continue;
      cp.size = bf->size;
      vs->vkCmdCopyBuffer(p->cmd, bf->buf, bf->stage, 1, &cp);
    }
  }
  /* The outputs, written by the kernels or the copies, for the host. */
  barrier(vs, p->cmd, CT, VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
          VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
  if ((rc = vs->vkEndCommandBuffer(p->cmd)) != VK_SUCCESS)
    return VK_FAIL("vkEndCommandBuffer", rc, " (blob %u)", i);
  return MOSSRT_OK;
}

/* Blob |i|'s module, pipelines, buffers, descriptor set and command
 * buffer, run by step |step| (whose first |nin| tensors are inputs). */
static mossrt_status load_prog(const mossrt_bundle *b, vk_session *vs, uint32_t i, uint32_t nin,
                               mossrt_error *err) {
  vk_prog *p = &vs->progs[i];
  mossrt_gpu_blob ob;
  const VkPhysicalDeviceLimits *l = &vs->props.limits;
  uint32_t nb, k;
  VkResult rc;
  mossrt_status st;
  VkDescriptorSetLayoutBinding *binds = NULL;
  VkDescriptorBufferInfo *infos = NULL;
  VkWriteDescriptorSet *writes = NULL;
  size_t tmp_size;
  uint8_t *tmp;
  if (mossrt_gpu_blob_read(b, i, &format, &ob, err) != MOSSRT_OK) return MOSSRT_E_FORMAT;
  p->nkernels = ob.h.nkernels;
  p->ntensors = ob.h.ntensors;
  nb = 2 + p->ntensors;
  p->kernels = zalloc(&b->alloc, p->nkernels * sizeof *p->kernels);
  p->bufs = zalloc(&b->alloc, (size_t)nb * sizeof *p->bufs);
  if (!p->kernels || !p->bufs) return FAIL(MOSSRT_E_NOMEM, "cannot allocate blob %u's objects", i);
  if (nb > l->maxPerStageDescriptorStorageBuffers || nb > l->maxDescriptorSetStorageBuffers)
    return FAIL(MOSSRT_E_DEVICE,
                "blob %u binds %u storage buffers (the arena, the weights and %u tensors), "
                "device '%s' takes %u",
                i, nb, p->ntensors, vs->props.deviceName,
                l->maxPerStageDescriptorStorageBuffers < l->maxDescriptorSetStorageBuffers
                    ? l->maxPerStageDescriptorStorageBuffers
                    : l->maxDescriptorSetStorageBuffers);

  /* Buffers; the weights uploaded now. */
  if ((st = make_buf(b, vs, &p->bufs[0], ob.h.arena_bytes, 0, "arena", i, err)) != MOSSRT_OK)
    return st;
  if ((st = make_buf(b, vs, &p->bufs[1], ob.h.weights_bytes, 1, "weights", i, err)) != MOSSRT_OK)
    return st;
  if ((st = upload_weights(b, vs, &p->bufs[1], ob.weights, i, err)) != MOSSRT_OK) return st;
  for (k = 0; k < p->ntensors; k++) {
    char what[32];
    snprintf(what, sizeof what, "tensor %u", k);
    if ((st = make_buf(b, vs, &p->bufs[2 + k], mossrt_rd64(ob.bytes + 8 * k), 1, what, i, err)) !=
        MOSSRT_OK)
      return st;
  }

  /* The module: the driver wants its words 4-byte aligned, which the
   * blob's bytes are (sections are 64-aligned, the source at a multiple of
   * 8 in the blob), else copied. */
  {
    VkShaderModuleCreateInfo mi = {0};
    uint32_t *copy = NULL;
    mi.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO;
    mi.codeSize = (size_t)ob.h.source_len;
    mi.pCode = (const uint32_t *)(const void *)ob.source;
    if ((uintptr_t)ob.source % 4) {
      if (!(copy = mossrt_mem_alloc(&b->alloc, mi.codeSize)))
        return FAIL(MOSSRT_E_NOMEM, "cannot allocate blob %u's SPIR-V", i);
      memcpy(copy, ob.source, mi.codeSize);
      mi.pCode = copy;
    }
    rc = vs->vkCreateShaderModule(vs->dev, &mi, NULL, &p->module);
    if (copy) mossrt_mem_free(&b->alloc, copy, mi.codeSize);
    if (rc != VK_SUCCESS) {
      p->module = VK_NULL_HANDLE;
      return VK_FAIL("vkCreateShaderModule", rc, " (blob %u)", i);
    }
  }

  /* Descriptor set layout, pool, set; pipeline layout. */
  tmp_size = (size_t)nb * (sizeof *binds + sizeof *infos + sizeof *writes);
  if (!(tmp = zalloc(&b->alloc, tmp_size)))
    return FAIL(MOSSRT_E_NOMEM, "cannot allocate blob %u's bindings", i);
  writes = (VkWriteDescriptorSet *)(void *)tmp;
  infos = (VkDescriptorBufferInfo *)(void *)(writes + nb);
  binds = (VkDescriptorSetLayoutBinding *)(void *)(infos + nb);
  st = MOSSRT_OK;
  for (k = 0; k < nb; k++) {
    binds[k].binding = k;
    binds[k].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    binds[k].descriptorCount = 1;
    binds[k].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
  }
  {
    VkDescriptorSetLayoutCreateInfo li = {0};
    VkPushConstantRange pc = {VK_SHADER_STAGE_COMPUTE_BIT, 0, 8};
    VkPipelineLayoutCreateInfo pi = {0};
    VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 0};
    VkDescriptorPoolCreateInfo dpi = {0};
    VkDescriptorSetAllocateInfo sai = {0};
    li.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO;
    li.bindingCount = nb;
    li.pBindings = binds;
    if ((rc = vs->vkCreateDescriptorSetLayout(vs->dev, &li, NULL, &p->dsl)) != VK_SUCCESS) {
      p->dsl = VK_NULL_HANDLE;
      st = VK_FAIL("vkCreateDescriptorSetLayout", rc, " (blob %u)", i);
      goto done;
    }
    pi.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO;
    pi.setLayoutCount = 1;
    pi.pSetLayouts = &p->dsl;
    pi.pushConstantRangeCount = 1;
    pi.pPushConstantRanges = &pc;
    if ((rc = vs->vkCreatePipelineLayout(vs->dev, &pi, NULL, &p->layout)) != VK_SUCCESS) {
      p->layout = VK_NULL_HANDLE;
      st = VK_FAIL("vkCreatePipelineLayout", rc, " (blob %u)", i);
      goto done;
    }
    ps.descriptorCount = nb;
    dpi.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO;
    dpi.maxSets = 1;
    dpi.poolSizeCount = 1;
    dpi.pPoolSizes = &ps;
    if ((rc = vs->vkCreateDescriptorPool(vs->dev, &dpi, NULL, &p->pool)) != VK_SUCCESS) {
      p->pool = VK_NULL_HANDLE;
      st = VK_FAIL("vkCreateDescriptorPool", rc, " (blob %u)", i);
      goto done;
    }
    sai.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO;
    sai.descriptorPool = p->pool;
    sai.descriptorSetCount = 1;
    sai.pSetLayouts = &p->dsl;
    if ((rc = vs->vkAllocateDescriptorSets(vs->dev, &sai, &p->set)) != VK_SUCCESS) {
      p->set = VK_NULL_HANDLE;
      st = VK_FAIL("vkAllocateDescriptorSets", rc, " (blob %u)", i);
      goto done;
    }
    for (k = 0; k < nb; k++) {
      infos[k].buffer = p->bufs[k].buf;
      infos[k].offset = 0;
      infos[k].range = p->bufs[k].size;
      writes[k].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
      writes[k].dstSet = p->set;
      writes[k].dstBinding = k;
      writes[k].descriptorCount = 1;
      writes[k].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
      writes[k].pBufferInfo = &infos[k];
    }
    vs->vkUpdateDescriptorSets(vs->dev, nb, writes, 0, NULL);
  }
done:
  mossrt_mem_free(&b->alloc, tmp, tmp_size);
  if (st != MOSSRT_OK) return st;

  /* One pipeline per kernel, and its dispatch. */
  for (k = 0; k < p->nkernels; k++) {
    vk_kernel *kn = &p->kernels[k];
    char name[32];
    uint64_t launch = mossrt_rd64(ob.items + 8 * k), items = MOSS_GPU_LAUNCH_ITEMS(launch);
    uint32_t wg = MOSS_GPU_LAUNCH_GROUP(launch) ? (uint32_t)MOSS_GPU_LAUNCH_GROUP(launch) : vs->wg; /* the kernel's, else ours */
    VkSpecializationMapEntry me = {0, 0, sizeof(uint32_t)};
    VkSpecializationInfo si = {1, &me, sizeof(uint32_t), NULL};
    VkComputePipelineCreateInfo ci = {0};
    uint64_t groups = (items + wg - 1) / wg; /* 1 .. 2^31 */
    uint64_t gx = groups < l->maxComputeWorkGroupCount[0] ? groups : l->maxComputeWorkGroupCount[0];
    uint64_t gy = (groups + gx - 1) / gx;
    snprintf(name, sizeof name, "moss_k%u", k);
    if (wg > l->maxComputeWorkGroupSize[0] || wg > l->maxComputeWorkGroupInvocations)
      return FAIL(MOSSRT_E_DEVICE, "%s of blob %u: workgroups of %u, more than device '%s' runs (%u)", name, i, wg,
                  vs->props.deviceName, l->maxComputeWorkGroupInvocations);
    if (gy > l->maxComputeWorkGroupCount[1])
      return FAIL(MOSSRT_E_DEVICE,
                  "%s of blob %u: %llu workgroups of %u, more than device '%s' dispatches "
                  "(%u x %u)",
                  name, i, (unsigned long long)groups, wg, vs->props.deviceName,
                  l->maxComputeWorkGroupCount[0], l->maxComputeWorkGroupCount[1]);
    kn->push[0] = (uint32_t)items;
    kn->push[1] = (uint32_t)(gx * wg);
    kn->wg = wg;
    si.pData = &kn->wg;
    kn->gx = (uint32_t)gx;
    kn->gy = (uint32_t)gy;
    ci.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO;
    ci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    ci.stage.module = p->module;
    ci.stage.pName = name;
    ci.stage.pSpecializationInfo = &si;
    ci.layout = p->layout;
    if ((rc = vs->vkCreateComputePipelines(vs->dev, VK_NULL_HANDLE, 1, &ci, NULL, &kn->pipe)) !=
        VK_SUCCESS) {
      kn->pipe = VK_NULL_HANDLE;
      return VK_FAIL("vkCreateComputePipelines", rc, " (%s of blob %u)", name, i);
    }
  }
  return record(b, vs, p, i, nin, err);
}

/* The instance (Vulkan 1.1 at least; a loader without
 * vkEnumerateInstanceVersion is 1.0) and its functions, into |vs|. */
static mossrt_status make_instance(const mossrt_bundle *b, const vk_api *api, vk_session *vs,
                                   mossrt_error *err) {
  PFN_vkEnumerateInstanceVersion version_fn;
  PFN_vkCreateInstance create_fn;
  uint32_t version = VK_API_VERSION_1_0;
  VkResult rc;
  version_fn =
      (PFN_vkEnumerateInstanceVersion)api->gipa(VK_NULL_HANDLE, "vkEnumerateInstanceVersion");
  create_fn = (PFN_vkCreateInstance)api->gipa(VK_NULL_HANDLE, "vkCreateInstance");
  if (!create_fn) return FAIL(MOSSRT_E_DEVICE, "the Vulkan loader gives no vkCreateInstance");
  if (version_fn && (rc = version_fn(&version)) != VK_SUCCESS)
    return VK_FAIL("vkEnumerateInstanceVersion", rc, "");
  if (version < VK_API_VERSION_1_1)
    return FAIL(MOSSRT_E_DEVICE, "the Vulkan loader supports Vulkan %u.%u, moss needs 1.1",
                VK_API_VERSION_MAJOR(version), VK_API_VERSION_MINOR(version));
  /* A device is used at the lower of this and its own version: a Vulkan
   * 1.2 device has 8-bit storage and shaderInt8 as core only when the
   * instance asks for 1.2 or later; asked for 1.1, they need the extensions. */
  vs->version = version > VK_API_VERSION_1_3
                    ? VK_API_VERSION_1_3
                    : VK_MAKE_API_VERSION(0, 1, VK_API_VERSION_MINOR(version), 0);
  {
    VkApplicationInfo app = {0};
    VkInstanceCreateInfo ii = {0};
    app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO;
    app.pApplicationName = "moss";
    app.pEngineName = "libmossrt";
    app.apiVersion = vs->version;
    ii.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO;
    ii.pApplicationInfo = &app;
    if ((rc = create_fn(&ii, NULL, &vs->inst)) != VK_SUCCESS) {
      vs->inst = VK_NULL_HANDLE;
      return VK_FAIL("vkCreateInstance", rc, "");
    }
  }
#define VK_LOAD_INSTANCE(name)                                                                     \
  if (!(vs->name = (PFN_##name)api->gipa(vs->inst, #name)))                                        \
    return FAIL(MOSSRT_E_DEVICE, "vkGetInstanceProcAddr gives no %s", #name);
  VK_INSTANCE_FUNCTIONS(VK_LOAD_INSTANCE)
#undef VK_LOAD_INSTANCE
  return MOSSRT_OK;
}

/* For a device with several code forms (gpu/forms.c): the loader loads,
 * an instance is made and has the physical device MOSS_DEVICE names (as
 * pick_device takes it: Vulkan 1.1, a compute queue). The instance is
 * destroyed and the loader closed again. */
static mossrt_status vulkan_available(const mossrt_bundle *b, const mossrt_device *d,
                                      mossrt_error *err) {
  vk_api api;
  vk_session vs;
  mossrt_status st;
  memset(&api, 0, sizeof api);
  memset(&vs, 0, sizeof vs);
  st = load_loader(b, d, &api, err);
  if (st == MOSSRT_OK) st = make_instance(b, &api, &vs, err);
  if (st == MOSSRT_OK) st = pick_device(b, &vs, err);
  if (vs.inst && vs.vkDestroyInstance) vs.vkDestroyInstance(vs.inst, NULL);
  if (api.lib) dlclose(api.lib);
  return st;
}

static void vulkan_session_close(mossrt_session *s) {
  const mossrt_bundle *b = s->b;
  vk_session *vs = s->vk;
  uint32_t i;
  if (!vs) return;
  /* (A device whose functions did not all load has no buffers yet.) */
  if (vs->dev && vs->vkDestroyDevice) {
    if (vs->vkDeviceWaitIdle) vs->vkDeviceWaitIdle(vs->dev);
    for (i = 0; vs->progs && i < vs->nprogs; i++) release_prog(vs, &b->alloc, &vs->progs[i]);
    if (vs->fence) vs->vkDestroyFence(vs->dev, vs->fence, NULL);
    if (vs->cpool) vs->vkDestroyCommandPool(vs->dev, vs->cpool, NULL); /* and its command buffers */
    vs->vkDestroyDevice(vs->dev, NULL);
  }
  if (vs->inst && vs->vkDestroyInstance) vs->vkDestroyInstance(vs->inst, NULL);
  if (vs->progs) mossrt_mem_free(&b->alloc, vs->progs, (vs->nprogs + 1) * sizeof *vs->progs);
  mossrt_mem_free(&b->alloc, vs, sizeof *vs);
  s->vk = NULL;
}

static mossrt_status vulkan_session_open(mossrt_session *s, mossrt_error *err) {
  const mossrt_bundle *b = s->b;
  const vk_api *api = session_api(b);
  const char *staging = getenv("MOSS_VULKAN_STAGING");
  uint32_t i;
  vk_session *vs;
  mossrt_status st;
  if (!api) return MOSSRT_OK; /* no Vulkan device runs a step */
  if (!(vs = zalloc(&b->alloc, sizeof *vs)))
    return FAIL(MOSSRT_E_NOMEM, "cannot allocate a session");
  s->vk = vs;
  vs->nprogs = b->nblobs;
  vs->staging = staging && !strcmp(staging, "1");
  if (!(vs->progs = zalloc(&b->alloc, (vs->nprogs + 1) * sizeof *vs->progs)))
    return FAIL(MOSSRT_E_NOMEM, "cannot allocate a session");
  if ((st = make_instance(b, api, vs, err)) != MOSSRT_OK) return st;
  if ((st = pick_device(b, vs, err)) != MOSSRT_OK) return st;
  if ((st = create_device(b, vs, err)) != MOSSRT_OK) return st;
  for (i = 0; i < b->nsteps; i++) {
    const mossrt_step *sp = &b->steps[i];
    if (sp->kind != MOSS_BUNDLE_STEP_KIND_EXEC ||
        b->devices[sp->device].exec != &mossrt_vulkan_executor || vs->progs[sp->blob].module)
      continue; /* another device's, or a blob an earlier step runs (then with its buffers) */
    if ((st = load_prog(b, vs, sp->blob, sp->nin, err)) != MOSSRT_OK) return st;
  }
  return MOSSRT_OK;
}

static mossrt_status vulkan_run(mossrt_session *s, uint32_t i, mossrt_error *err) {
  const mossrt_bundle *b = s->b;
  const mossrt_step *st = &b->steps[i];
  vk_session *vs = s->vk;
  const vk_prog *p = &vs->progs[st->blob];
  VkSubmitInfo si = {0};
  VkResult rc;
  uint32_t k;
  for (k = 0; k < st->nin; k++)
    if (p->bufs[2 + k].bytes)
      memcpy(p->bufs[2 + k].map, s->bufs[st->first + k], p->bufs[2 + k].bytes);
  si.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO;
  si.commandBufferCount = 1;
  si.pCommandBuffers = &p->cmd;
  if ((rc = vs->vkQueueSubmit(vs->queue, 1, &si, vs->fence)) != VK_SUCCESS)
    return VK_FAIL("vkQueueSubmit", rc, " (step %u)", i);
  /* A kernel's fault shows here, named by its step. */
  if ((rc = vs->vkWaitForFences(vs->dev, 1, &vs->fence, VK_TRUE, UINT64_MAX)) != VK_SUCCESS)
    return VK_FAIL("vkWaitForFences", rc, " (step %u)", i);
  if ((rc = vs->vkResetFences(vs->dev, 1, &vs->fence)) != VK_SUCCESS)
    return VK_FAIL("vkResetFences", rc, " (step %u)", i);
  for (k = st->nin; k < st->nin + st->nout; k++)
    if (p->bufs[2 + k].bytes)
      memcpy(s->bufs[st->first + k], p->bufs[2 + k].map, p->bufs[2 + k].bytes);
  return MOSSRT_OK;
}

const mossrt_executor mossrt_vulkan_executor = {
    .name = "vulkan",
    .serves = vulkan_serves,
    .blobs = 1,
    .available = vulkan_available,
    .check_step = vulkan_check_step,
    .open = vulkan_open,
    .close = vulkan_close,
    .session_open = vulkan_session_open,
    .session_close = vulkan_session_close,
    .run = vulkan_run,
};
