/* executor.c - the executor table: every kind of device libmossrt runs,
 * one entry each. When a bundle's devices are read (core/bundle.c), each
 * device gets the first executor that serves it; from then on the core
 * reaches the device only through that entry (check a step, open, run,
 * close). A device no executor serves keeps a NULL executor, and a step on
 * it is refused at open. A new executor is a new folder under src/ and one
 * line here. */
#include "mossrt_internal.h"

const mossrt_executor *const mossrt_executors[] = {
    &mossrt_cpu_executor,    /* ELF code (cpu/cpu.c): before plugin, which takes any format */
    &mossrt_opencl_executor, /* "opencl" devices (opencl/opencl.c) */
    &mossrt_cuda_executor,   /* "ptx" devices (cuda/cuda.c) */
    &mossrt_vulkan_executor, /* "vulkan" devices (vulkan/vulkan.c) */
    &mossrt_plugin_executor, /* "plugin:NAME" devices (plugin/plugin.c) */
    NULL,
};

const mossrt_executor *mossrt_executor_find(const mossrt_device *d) {
  const mossrt_executor *const *e;
  for (e = mossrt_executors; *e; e++)
    if ((*e)->serves(d)) return *e;
  return NULL;
}
