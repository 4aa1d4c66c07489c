/* test_backend.c - the backend table (backends/backend.h): lookup by the
 * names a target gives, the bindings of a target's devices, and the two
 * passes that ask it: the partitioner (takes, opaque) and the sparse pass
 * (sparse_formats). The fixture data/backend/jit_cpu.xml puts an LLVM cpu
 * first, a C cpu second (the fallback), a metal npu third (a backend moss lacks) and a plugin
 * npu without a library fourth. The partitioner runs with allocation N
 * failing, N = 1, 2, ... (oom.h). */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "graph_build.h"
#include "harness.h"
#include "oom.h"
#include "backends/backend.h"
#include "passes/partition.h"
#include "passes/sparse.h"

/* A [8, 8] float weight with two nonzeros in one column: the cost rule
 * prefers a 4x1 block (test_sparse.c works the numbers out). */
static moss_value *sparse_weight(moss_ctx *ctx, moss_graph *g) {
  int64_t d[2] = {8, 8};
  moss_value *w = val(ctx, g, "w", 2, d);
  float *p = moss_graph_alloc(g, 64 * sizeof(float));
  p[0] = 1.0f;
  p[1] = 2.0f;
  w->data = p;
  return w;
}

TEST(find_by_the_names_a_target_gives) {
  const moss_backend *c = moss_backend_find("c"), *llvm = moss_backend_find("llvm");
  const moss_backend *pl = moss_backend_find("plugin:npu-systolic");
  ASSERT_TRUE(c && llvm && pl);
  ASSERT_TRUE(strcmp(c->name, "c") == 0);
  ASSERT_EQ(c->code, MOSS_CODE_C_SHARED_OBJECT);
  ASSERT_EQ(c->sparse_formats, MOSS_SPARSE_ALL);
  ASSERT_EQ(c->opaque, 0);
  ASSERT_EQ(llvm->code, MOSS_CODE_ELF_OBJECT);
  ASSERT_EQ(llvm->sparse_formats, MOSS_SPARSE_ALL); /* compiler/kernel/lower_sparse.c */
  ASSERT_EQ(llvm->opaque, 0);
  ASSERT_EQ(pl->code, MOSS_CODE_PLUGIN_BLOB);
  ASSERT_EQ(pl->opaque, 1);
  ASSERT_TRUE(moss_backend_find("plugin:other") == pl); /* one adapter for every plugin */
  ASSERT_TRUE(moss_backend_find("plugin:") == NULL);
  ASSERT_TRUE(moss_backend_find("metal") == NULL);
  {
    const moss_backend *cl = moss_backend_find("opencl");
    ASSERT_TRUE(cl != NULL);
    ASSERT_EQ(cl->code, MOSS_CODE_OPENCL_C);
    ASSERT_EQ(cl->in_process, 0);
    ASSERT_EQ(cl->opaque, 1);
    ASSERT_TRUE(cl->emit_segment != NULL && cl->emit_standalone == NULL && cl->emit_code == NULL);
  }
  {
    const moss_backend *vk = moss_backend_find("vulkan");
    ASSERT_TRUE(vk != NULL);
    ASSERT_EQ(vk->code, MOSS_CODE_SPIRV);
    ASSERT_EQ(vk->in_process, 0);
    ASSERT_EQ(vk->opaque, 1);
    ASSERT_TRUE(vk->emit_segment != NULL && vk->emit_standalone == NULL && vk->emit_code == NULL);
  }
  ASSERT_TRUE(moss_backend_find("C") == NULL);
  ASSERT_TRUE(moss_backend_find(NULL) == NULL);
  ASSERT_TRUE(moss_backend_find_for_emit("c") == c);
  ASSERT_TRUE(moss_backend_find_for_emit("obj") == llvm);
  ASSERT_TRUE(moss_backend_find_for_emit("bundle") == NULL);
}

TEST(devices_bound_and_ready) {
  moss_ctx ctx;
  moss_target *t;
  moss_backend_device *devs;
  char why[256];
  moss_ctx_init(&ctx, moss_allocator_libc());
  ASSERT_EQ(moss_target_load(&ctx, MOSS_TEST_DATA_DIR "/backend/jit_cpu.xml", &t), MOSS_OK);
  ASSERT_EQ(moss_backend_devices_create(&ctx, t, &devs), MOSS_OK);
  ASSERT_TRUE(devs[0].backend == moss_backend_find("llvm"));
  ASSERT_TRUE(devs[1].backend == moss_backend_find("c"));
  ASSERT_TRUE(devs[2].backend == NULL);
  ASSERT_EQ(devs[2].device, 2);
  ASSERT_TRUE(devs[2].target == t);
  ASSERT_EQ(moss_backend_device_ready(&devs[0], why, sizeof why), 1);
  ASSERT_EQ(moss_backend_device_ready(&devs[2], why, sizeof why), 0);
  ASSERT_STR_CONTAINS(why, "does not have");
  ASSERT_TRUE(moss_backend_device_plugin(&devs[1]) == NULL);
  /* --emit c asks for the C backend's code on the jit device. */
  ASSERT_EQ(moss_backend_device_bind(&devs[0], moss_backend_find_for_emit("c")), MOSS_OK);
  ASSERT_TRUE(devs[0].backend == moss_backend_find("c"));
  moss_backend_devices_destroy(&ctx, t, devs);
  moss_target_destroy(&ctx, t);
}

/* A plugin device whose target names no library: bound to the adapter,
 * placed on for costing, not ready to emit. */
TEST(plugin_device_without_a_library) {
  moss_ctx ctx;
  moss_target *t;
  moss_backend_device *devs;
  char why[512];
  moss_ctx_init(&ctx, moss_allocator_libc());
  ASSERT_EQ(moss_target_load(&ctx, MOSS_TEST_DATA_DIR "/backend/jit_cpu.xml", &t), MOSS_OK);
  ASSERT_EQ(moss_backend_devices_create(&ctx, t, &devs), MOSS_OK);
  ASSERT_TRUE(devs[3].backend == moss_backend_find("plugin:absent"));
  ASSERT_TRUE(devs[3].state == NULL);
  ASSERT_TRUE(moss_backend_device_plugin(&devs[3]) == NULL);
  ASSERT_EQ(moss_backend_device_ready(&devs[3], why, sizeof why), 0);
  ASSERT_STR_CONTAINS(why, "no plugin= in");
  ASSERT_STR_CONTAINS(why, "jit_cpu.xml");
  moss_backend_devices_destroy(&ctx, t, devs);
  moss_target_destroy(&ctx, t);
}

/* The partitioner asks each device's backend: the LLVM cpu takes the Relu
 * and a dense MatMul, declines the MatMul with a sparse weight (no kernel
 * description), which goes to the C cpu; opaque comes from the backend. */
TEST(partition_asks_the_backend) {
  OOM_LOOP {
    moss_ctx ctx;
    moss_graph *g;
    moss_target *t;
    moss_backend_device *devs;
    moss_partition_opts o;
    int nseg = -1;
    int64_t d[2] = {2, 8};
    moss_value *x, *a, *b, *y;
    moss_node *relu, *mm, *mms;
    oom_ctx_init(&ctx);
    ASSERT_EQ(moss_target_load(&ctx, MOSS_TEST_DATA_DIR "/backend/jit_cpu.xml", &t), MOSS_OK);
    ASSERT_EQ(moss_backend_devices_create(&ctx, t, &devs), MOSS_OK);
    ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
    x = val(&ctx, g, "x", 2, d);
    a = val(&ctx, g, "a", 2, d);
    b = val(&ctx, g, "b", 2, d);
    y = val(&ctx, g, "y", 2, d);
    relu = node2(&ctx, g, "Relu", "relu", x, NULL, a);
    mm = node2(&ctx, g, "MatMul", "mm", a, sparse_weight(&ctx, g), b);
    mms = node2(&ctx, g, "MatMul", "mms", b, sparse_weight(&ctx, g), y);
    mms->sparse = MOSS_SPARSE_CSR;
    memset(&o, 0, sizeof o);
    o.target = t;
    o.devices = devs;
    OOM_CHECK(&ctx, moss_partition(&ctx, g, &o, &nseg), MOSS_OK, done);
    /* Every node has a kernel description now, sparse weights included, so
     * the LLVM device takes all three. */
    ASSERT_EQ(relu->device, 0);
    ASSERT_EQ(mm->device, 0);
    ASSERT_EQ(mms->device, 0);
    ASSERT_EQ(nseg, 1);
    ASSERT_EQ(relu->opaque, 0);
    ASSERT_EQ(mms->opaque, 0);
    /* Without bindings the <ops> lists alone decide, as for a backend this
     * build lacks: everything lands on the first device, opaque. */
    o.devices = NULL;
    OOM_CHECK(&ctx, moss_partition(&ctx, g, &o, &nseg), MOSS_OK, done);
    ASSERT_EQ(mms->device, 0);
    ASSERT_EQ(mms->opaque, 1);
  done:
    moss_graph_destroy(&ctx, g);
    moss_backend_devices_destroy(&ctx, t, devs);
    moss_target_destroy(&ctx, t);
  }
}

/* The sparse pass offers a node only the formats its device's backend
 * encodes: on the C cpu the cost rule's pick (a 4x1 block), on the LLVM
 * cpu and on the metal npu (no backend) dense; a backend with CSR alone gets
 * CSR; MOSS_SPARSE=block falls back to CSR, then dense. */
TEST(sparse_formats_of_the_device_backend) {
  moss_ctx ctx;
  moss_graph *g;
  moss_target *t;
  moss_backend_device *devs;
  moss_sparse_opts so;
  moss_backend csr_only;
  int64_t d[2] = {2, 8};
  moss_node *n;
  moss_ctx_init(&ctx, moss_allocator_libc());
  unsetenv("MOSS_SPARSE");
  ASSERT_EQ(moss_target_load(&ctx, MOSS_TEST_DATA_DIR "/backend/jit_cpu.xml", &t), MOSS_OK);
  ASSERT_EQ(moss_backend_devices_create(&ctx, t, &devs), MOSS_OK);
  ASSERT_EQ(moss_graph_create(&ctx, &g), MOSS_OK);
  n = node2(&ctx, g, "Gemm", "gemm", val(&ctx, g, "a", 2, d), sparse_weight(&ctx, g),
            val(&ctx, g, "y", 2, d));
  so.devices = devs;
  so.rules = NULL;
  n->device = 1;
  ASSERT_EQ(moss_pass_sparse(&ctx, g, &so), MOSS_OK);
  ASSERT_EQ(n->sparse, MOSS_SPARSE_BLOCK_4x1);
  n->device = 0; /* LLVM encodes every format too */
  ASSERT_EQ(moss_pass_sparse(&ctx, g, &so), MOSS_OK);
  ASSERT_EQ(n->sparse, MOSS_SPARSE_BLOCK_4x1);
  n->device = 2;
  ASSERT_EQ(moss_pass_sparse(&ctx, g, &so), MOSS_OK);
  ASSERT_EQ(n->sparse, MOSS_SPARSE_DENSE);
  csr_only = *moss_backend_find("c");
  csr_only.sparse_formats = MOSS_SPARSE_BIT(MOSS_SPARSE_CSR);
  devs[2].backend = &csr_only;
  ASSERT_EQ(moss_pass_sparse(&ctx, g, &so), MOSS_OK);
  ASSERT_EQ(n->sparse, MOSS_SPARSE_CSR);
  setenv("MOSS_SPARSE", "block", 1);
  ASSERT_EQ(moss_pass_sparse(&ctx, g, &so), MOSS_OK);
  ASSERT_EQ(n->sparse, MOSS_SPARSE_CSR);
  n->device = 0; /* forced "block" on a backend that encodes it */
  ASSERT_EQ(moss_pass_sparse(&ctx, g, &so), MOSS_OK);
  ASSERT_EQ(n->sparse, MOSS_SPARSE_BLOCK_4x1);
  unsetenv("MOSS_SPARSE");
  devs[2].backend = NULL;
  moss_graph_destroy(&ctx, g);
  moss_backend_devices_destroy(&ctx, t, devs);
  moss_target_destroy(&ctx, t);
}

TEST_MAIN()
