/* backend.c - the backend table (backend.h): the only place that lists
 * moss's backends. Each entry adapts its backend's own functions to the
 * table's shape; the code itself stays in backends/c, backends/llvm,
 * backends/opencl, backends/ptx, backends/vulkan and the plugin adapter
 * (compiler/plugin/plugin.c). A backend name with no entry: moss_backend_find
 * says NULL, and the pipeline says so for a device that got nodes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../compiler/ops/sparse.h"
#include "../compiler/plugin/plugin.h"
#include "backend.h"
#include "c/cbuild.h"
#include "c/cgen.h"
#include "gpu/forms.h"
#include "llvm/llvm.h"
#include "opencl/opencl.h"
#include "ptx/ptx.h"
#include "vulkan/vulkan.h"

/* --- c: C99 for the host C compiler (backends/c) --- */

static int c_takes(const moss_backend_device *d, const moss_node *n, char *why, size_t cap) {
  (void)d;
  if (moss_c_can_emit(n)) return 1;
  snprintf(why, cap, "the C backend has no code for %s", n->op_type);
  return 0;
}

static moss_status c_emit_standalone(const moss_backend_device *d, moss_graph *g, const char *name,
                                     const char *dir, const char *source_hash, int timings) {
  (void)timings; /* the C compiler runs later, outside moss */
  mkdir(dir, 0777); /* an existing folder is fine; moss_c_emit reports what it cannot write */
  return moss_c_emit(d->ctx, g, name, dir, source_hash, moss_target_name(d->target));
}

/* --- llvm: native objects through the LLVM C API (backends/llvm) --- */

static int llvm_takes(const moss_backend_device *d, const moss_node *n, char *why, size_t cap) {
  (void)d;
  if (moss_llvm_can_emit(n)) return 1;
  snprintf(why, cap, "the LLVM backend has no code for %s (no kernel description%s)", n->op_type,
           n->sparse ? " of a sparse weight" : "");
  return 0;
}

/* --- plugin:NAME: a vendor plugin library (compiler/plugin) --- */

static moss_status plugin_open(moss_backend_device *d) {
  const char *be = moss_target_device_backend(d->target, d->device);
  const char *path = moss_target_device_plugin(d->target, d->device);
  moss_plugin *p = NULL;
  if (!path) return MOSS_OK; /* placed on for costing only; moss_backend_device_ready says no */
  MOSS_TRY(moss_plugin_open(d->ctx, path, be + strlen("plugin:"), &p));
  if (moss_plugin_bind(d->ctx, p, d->target, d->device) != MOSS_OK) {
    moss_plugin_close(d->ctx, p);
    return MOSS_E_NOMEM;
  }
  d->state = p;
  return MOSS_OK;
}

static void plugin_close(moss_backend_device *d) { moss_plugin_close(d->ctx, d->state); }

static int plugin_takes(const moss_backend_device *d, const moss_node *n, char *why, size_t cap) {
  if (!d->state) return 1; /* no library: the <ops> list decides, for costing */
  return moss_plugin_supports(d->ctx, d->state, n, why, cap);
}

static moss_status plugin_emit_segment(const moss_backend_device *d, const moss_graph *g,
                                       moss_node *const *nodes, int nnodes, moss_buf *blob,
                                       int **out_in_ids, int *out_nin, int **out_out_ids,
                                       int *out_nout) {
  *out_in_ids = *out_out_ids = NULL;
  *out_nin = *out_nout = 0;
  if (!d->state) /* the pipeline stops before: moss_backend_device_ready says no */
    return moss_fail(d->ctx, MOSS_E_INTERNAL, nnodes ? nodes[0] : NULL, "no plugin for device %d",
                     d->device);
  return moss_plugin_lower(d->ctx, d->state, g, nodes, nnodes, blob, out_in_ids, out_nin,
                           out_out_ids, out_nout);
}

static int plugin_estimate(const moss_backend_device *d, const moss_node *n, double *out_cycles,
                           double *out_level_bytes, int nlevels) {
  if (!d->state) return 0; /* no library: the roofline */
  return moss_plugin_estimate_node(d->ctx, d->state, n, out_cycles, out_level_bytes, nlevels);
}

static const char *plugin_library(const moss_backend_device *d) {
  return d->state ? moss_plugin_path(d->state) : NULL;
}

/* The GPU backends' machine facts: the GPU's kernel shapes, nothing else. */
static void gpu_facts(const char *triple, const char *cpu, const char *features, moss_kernel_cpu *out) {
  (void)triple, (void)cpu, (void)features;
  memset(out, 0, sizeof *out);
  out->gpu = 1;
}

static const moss_backend backends[] = {
    {.name = "c",
     .emit_flag = "c",
     .code = MOSS_CODE_C_SHARED_OBJECT,
     .sparse_formats = MOSS_SPARSE_ALL, /* compiler/kernel/lower_sparse.c describes every format */
     .in_process = 1,
     .kernels = 1,
     .takes = c_takes,
     .emit_standalone = c_emit_standalone,
     .emit_code = moss_c_emit_code}, /* backends/c/cbuild.c */
    {.name = "llvm",
     .emit_flag = "obj",
     .code = MOSS_CODE_ELF_OBJECT,
     .sparse_formats = MOSS_SPARSE_ALL, /* compiler/kernel/lower_sparse.c describes every format */
     .machine_facts = moss_llvm_kernel_cpu, /* backends/llvm/llvm.c */
     .in_process = 1,
     .kernels = 1,
     .native_half = 1, /* AArch64 +fullfp16 */
     .takes = llvm_takes,
     .emit_standalone = moss_llvm_emit_standalone, /* backends/llvm/native.c */
     .emit_code = moss_llvm_emit_code},
    {.name = "opencl",
     .kernels = 1,
     .native_half = 1, /* cl_khr_fp16 in the target's opencl-extensions */
     .code = MOSS_CODE_OPENCL_C,
     .machine_facts = gpu_facts,
     .opaque = 1, /* its segment's values live on the device until the segment ends */
     .takes = moss_opencl_takes,
     .emit_segment = moss_opencl_emit_segment}, /* backends/opencl/opencl.c */
    {.name = "ptx",
     .kernels = 1,
     .native_half = 1, /* sm_53 and up: LLVM NVPTX's f16 */
     .dot4_forms = MOSS_DOT4_PTX, /* DOT4S as dp4a */
     .code = MOSS_CODE_PTX,
     .machine_facts = gpu_facts,
     .opaque = 1,
     .takes = moss_ptx_takes,
     .emit_segment = moss_ptx_emit_segment}, /* backends/ptx/ptx.c */
    {.name = "vulkan",
     .kernels = 1,
     .native_half = 1, /* Float16 and StorageBuffer16BitAccess */
     .dot4_forms = MOSS_DOT4_SPIRV, /* DOT4S as OpSDot */
     .code = MOSS_CODE_SPIRV,
     .machine_facts = gpu_facts,
     .opaque = 1,
     .takes = moss_vulkan_takes,
     .emit_segment = moss_vulkan_emit_segment}, /* backends/vulkan/vulkan.c */
    {.name = "ptx+vulkan", /* a GPU with both code forms (a Jetson's) */
     .kernels = 1,
     .dot4_forms = MOSS_DOT4_PTX | MOSS_DOT4_SPIRV,
     .code = MOSS_CODE_PTX,
     .machine_facts = gpu_facts,
     .opaque = 1,
     .takes = moss_forms_takes,
     .emit_segment = moss_forms_emit_segment}, /* backends/gpu/forms.c */
    /* The plugin adapter stays last (plugin_adapter()). */
    {.name = "plugin:",
     .code = MOSS_CODE_PLUGIN_BLOB,
     .opaque = 1,
     .takes = plugin_takes,
     .open = plugin_open,
     .close = plugin_close,
     .emit_segment = plugin_emit_segment,
     .estimate = plugin_estimate,
     .library = plugin_library},
};
#define NBACKENDS (sizeof backends / sizeof backends[0])

static const moss_backend *plugin_adapter(void) { return &backends[NBACKENDS - 1]; }

const moss_backend *moss_backend_find(const char *name) {
  size_t i;
  if (!name) return NULL;
  if (!strncmp(name, "plugin:", 7)) return name[7] ? plugin_adapter() : NULL;
  for (i = 0; i < NBACKENDS; i++)
    if (!strcmp(backends[i].name, name)) return &backends[i];
  return NULL;
}

const moss_backend *moss_backend_find_for_emit(const char *flag) {
  size_t i;
  for (i = 0; flag && i < NBACKENDS; i++)
    if (backends[i].emit_flag && !strcmp(backends[i].emit_flag, flag)) return &backends[i];
  return NULL;
}

moss_status moss_backend_device_bind(moss_backend_device *d, const moss_backend *b) {
  if (d->backend && d->backend->close && d->state) d->backend->close(d);
  d->state = NULL;
  d->backend = b;
  d->name = b ? b->name : NULL;
  return b && b->open ? b->open(d) : MOSS_OK;
}

moss_status moss_backend_devices_create(moss_ctx *ctx, const moss_target *t,
                                        moss_backend_device **out_devices) {
  int n = moss_target_device_count(t), i;
  moss_backend_device *devs;
  moss_status st = MOSS_OK;
  *out_devices = NULL;
  devs = moss_alloc(ctx, sizeof *devs * (size_t)n);
  if (!devs) return moss_fail(ctx, MOSS_E_NOMEM, NULL, "backend bindings");
  for (i = 0; i < n; i++) {
    devs[i].ctx = ctx;
    devs[i].target = t;
    devs[i].device = i;
  }
  for (i = 0; i < n && st == MOSS_OK; i++) {
    const char *be = moss_target_device_backend(t, i);
    st = moss_backend_device_bind(&devs[i], moss_backend_find(be));
    devs[i].name = be;
  }
  if (st != MOSS_OK) {
    moss_backend_devices_destroy(ctx, t, devs);
    return st;
  }
  *out_devices = devs;
  return MOSS_OK;
}

void moss_backend_devices_destroy(moss_ctx *ctx, const moss_target *t,
                                  moss_backend_device *devices) {
  int n = moss_target_device_count(t), i;
  if (!devices) return;
  for (i = 0; i < n; i++)
    if (devices[i].backend && devices[i].backend->close && devices[i].state)
      devices[i].backend->close(&devices[i]);
  moss_free(ctx, devices, sizeof *devices * (size_t)n);
}

int moss_backend_device_estimate(const moss_backend_device *d, const moss_node *n,
                                 double *out_cycles, double *out_level_bytes, int nlevels) {
  int k;
  *out_cycles = 0;
  for (k = 0; k < nlevels; k++) out_level_bytes[k] = 0;
  if (!d->backend || !d->backend->estimate) return 0;
  return d->backend->estimate(d, n, out_cycles, out_level_bytes, nlevels);
}

int moss_backend_device_ready(const moss_backend_device *d, char *why, size_t cap) {
  if (!d->backend) {
    snprintf(why, cap, "which this build does not have yet");
    return 0;
  }
  if (d->backend == plugin_adapter() && !d->state) {
    snprintf(why, cap, "whose library the target does not name (no plugin= in %s)",
             moss_target_path(d->target));
    return 0;
  }
  if (cap) why[0] = 0;
  return 1;
}

void moss_backend_code_deinit(moss_ctx *ctx, moss_backend_code *c) {
  if (c->bytes) moss_free(ctx, c->bytes, c->alloc);
  memset(c, 0, sizeof *c);
}

struct moss_plugin *moss_backend_device_plugin(const moss_backend_device *d) {
  return d->backend == plugin_adapter() ? d->state : NULL;
}

/* Whether the space-separated list |list| holds |word|. */
static int has_word(const char *list, const char *word) {
  size_t n = strlen(word);
  while (list && *list) {
    size_t l;
    while (*list == ' ' || *list == '\t' || *list == '\n' || *list == '\r') list++;
    l = strcspn(list, " \t\n\r");
    if (l == n && !strncmp(list, word, n)) return 1;
    list += l;
  }
  return 0;
}

void moss_backend_device_kernel_cpu(const moss_backend_device *d, moss_kernel_cpu *out) {
  const char *triple, *cpu, *features;
  memset(out, 0, sizeof *out);
  if (!d) return;
  triple = moss_target_device_codegen(d->target, d->device, "triple");
  cpu = moss_target_device_codegen(d->target, d->device, "cpu");
  features = moss_target_device_codegen(d->target, d->device, "features");
  if (!d->backend) return;
  if (d->backend->machine_facts) d->backend->machine_facts(triple, cpu, features, out);
  /* What the machine has, whatever this backend writes (the C backend
   * writes plain loops, which a C compiler vectorizes where it can). */
  if (triple && !strcmp(moss_target_device_kind(d->target, d->device), "cpu")) {
    moss_kernel_cpu isa;
    moss_kernel_cpu_from_codegen(triple, cpu, features, &isa);
    out->no_simd = isa.no_simd;
  }
  out->threads = moss_target_device_units(d->target, d->device);
  if (out->gpu) { /* the work-group limits the GPU lowerings tile for */
    out->group_max = moss_target_device_max_workgroup_size(d->target, d->device);
    out->group_bytes = (int64_t)moss_target_device_local_memory_bytes(d->target, d->device);
    out->subgroup = moss_target_device_subgroup_size(d->target, d->device);
    /* DOT4S where every code form the backend writes has it. */
    if (d->backend->dot4_forms) {
      const char *caps = moss_target_device_codegen(d->target, d->device, "spirv-capabilities");
      const char *sm = moss_target_device_codegen(d->target, d->device, "cpu");
      unsigned has = (has_word(caps, "DotProductInput4x8BitPacked") ? MOSS_DOT4_SPIRV : 0) |
                     (sm && !strncmp(sm, "sm_", 3) && atoi(sm + 3) >= 61 ? MOSS_DOT4_PTX : 0);
      out->gpu_dot4 = (d->backend->dot4_forms & ~has) == 0;
    }
    { /* float16 arithmetic: SPIR-V's capabilities, sm_53 and up for PTX, cl_khr_fp16 for OpenCL */
      const char *caps = moss_target_device_codegen(d->target, d->device, "spirv-capabilities");
      const char *sm = moss_target_device_codegen(d->target, d->device, "cpu");
      const char *ext = moss_target_device_codegen(d->target, d->device, "opencl-extensions");
      if (d->backend->code == MOSS_CODE_OPENCL_C)
        out->half = has_word(ext, "cl_khr_fp16");
      else if (d->backend->code == MOSS_CODE_SPIRV)
        out->half = has_word(caps, "Float16") && has_word(caps, "StorageBuffer16BitAccess");
      else if (d->backend->code == MOSS_CODE_PTX)
        out->half = sm && !strncmp(sm, "sm_", 3) && atoi(sm + 3) >= 53;
    }
  }
}
