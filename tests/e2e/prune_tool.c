/* prune_tool.c - test driver for compile-time pruning until `moss compile
 * --prune` is wired into the pipeline: imports an ONNX model, runs the
 * standard passes in the pipeline's order, prunes with SPEC, and prints for
 * each pruned weight one header line and its zero mask, so a script can
 * compare the mask with its own and apply it to the ONNX initializers.
 *
 *   prune_tool MODEL.onnx SPEC [INPUT=SHAPE]
 *   layer <node>\t<op>\t<weight>\t<elements>\t<zeros before>\t<zeros after>\t<d0>x<d1>...
 *   mask <one '1' per element zero after pruning, '0' otherwise, flat order>
 *   weights <the pruned float32 values, %a, space-separated>
 * then the lines of moss_prune_emit_text ("prune ...").
 * Exit status 0 on success; diagnostics on standard error. */
#include <stdio.h>
#include <string.h>

#include "import/onnx.h"
#include "passes/passes.h"
#include "passes/prune.h"

static void print_diag(void *user, moss_status code, const char *msg) {
  (void)user;
  (void)code;
  fprintf(stderr, "%s\n", msg);
}

int main(int argc, char **argv) {
  static moss_pass_fn const passes[] = {moss_pass_check, moss_pass_infer, moss_pass_bn_fold,
                                        moss_pass_fuse,  moss_pass_fold,  moss_pass_dce};
  moss_ctx ctx;
  moss_graph *g = NULL;
  moss_onnx_binding b;
  moss_prune_result r;
  moss_status st;
  char name[256];
  size_t i;
  int k;
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: prune_tool MODEL.onnx SPEC [INPUT=SHAPE]\n");
    return 2;
  }
  moss_ctx_init(&ctx, moss_allocator_libc());
  ctx.sink = print_diag;
  ctx.file = argv[1];
  memset(&b, 0, sizeof b);
  if (argc == 4) {
    const char *eq = strchr(argv[3], '=');
    if (!eq || (size_t)(eq - argv[3]) >= sizeof name) {
      fprintf(stderr, "prune_tool: expected INPUT=SHAPE, got '%s'\n", argv[3]);
      return 2;
    }
    snprintf(name, sizeof name, "%.*s", (int)(eq - argv[3]), argv[3]);
    b.name = name;
    b.shape = eq + 1;
  }
  st = moss_onnx_import(&ctx, argv[1], &b, argc == 4, &g);
  if (st == MOSS_OK) st = moss_graph_sort(&ctx, g);
  for (i = 0; st == MOSS_OK && i < sizeof passes / sizeof passes[0]; i++) st = passes[i](&ctx, g);
  if (st == MOSS_OK) st = moss_prune(&ctx, g, argv[2], &r);
  if (st != MOSS_OK) {
    moss_graph_destroy(&ctx, g);
    return 1;
  }
  for (k = 0; k < r.nlayers; k++) {
    const moss_prune_layer *l = &r.layers[k];
    const moss_value *v = moss_graph_find_value(g, l->weight);
    const float *w;
    int64_t j;
    int d;
    if (!v || !v->data) {
      fprintf(stderr, "prune_tool: weight '%s' not found\n", l->weight);
      moss_graph_destroy(&ctx, g);
      return 1;
    }
    w = v->data;
    printf("layer %s\t%s\t%s\t%lld\t%lld\t%lld\t", l->node, l->op_type, l->weight,
           (long long)l->elements, (long long)l->zeros_before, (long long)l->zeros_after);
    for (d = 0; d < v->rank; d++) printf("%s%lld", d ? "x" : "", (long long)v->dims[d]);
    printf("\nmask ");
    for (j = 0; j < l->elements; j++) putchar(w[j] == 0.0f ? '1' : '0');
    printf("\nweights");
    for (j = 0; j < l->elements; j++) printf(" %a", (double)w[j]);
    printf("\n");
  }
  {
    moss_buf text;
    moss_buf_init(&text, &ctx);
    moss_prune_emit_text(&r, &text);
    if (text.data) fputs(text.data, stdout);
    moss_buf_deinit(&text);
  }
  moss_graph_destroy(&ctx, g);
  return 0;
}
