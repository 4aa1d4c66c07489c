/* fuzz_tensor.c - libFuzzer target for the tensor file readers
 * (moss_tensor_file_read in compiler/import/onnx_import.c: .npy, and ONNX
 * TensorProto .pb for anything else), which read `moss run` inputs,
 * --constant files and calibration data. Each input is one file. It must
 * read, or fail with a diagnostic (never 'internal'); what it reads must
 * have a sane shape and as many data bytes as that shape needs, and, where
 * moss_npy_write can write its type, read back from .npy as the same tensor
 * (a round trip through the writer; a bfloat16 one comes back as the uint16
 * of its bits, as .npy holds it). The same bytes are also read as an ONNX
 * SequenceProto and OptionalProto (moss_list_file_read, --constant of a
 * sequence or optional input): read or refused the same way, and what it
 * reads written back with moss_list_file_write and read again as the same
 * list. Build and run: tests/fuzz/README.md. */
#include "fuzz.h"
#include "import/onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink;

static void same_or_trap(const moss_value *a, const moss_value *b) {
  int k;
  /* numpy has no bfloat16: the writer gives its bits, which read back as uint16 */
  if ((a->dtype != b->dtype && !(a->dtype == MOSS_DT_BF16 && b->dtype == MOSS_DT_U16)) || a->rank != b->rank)
    __builtin_trap();
  for (k = 0; k < a->rank; k++)
    if (a->dims[k] != b->dims[k]) __builtin_trap();
  if (moss_value_nbytes(a) != moss_value_nbytes(b)) __builtin_trap();
  if (moss_value_nbytes(a) && memcmp(a->data, b->data, moss_value_nbytes(a))) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const moss_status allowed[] = {MOSS_E_IO, MOSS_E_INVALID_MODEL, MOSS_E_UNSUPPORTED,
                                        MOSS_E_NOMEM, MOSS_OK};
  const char *in = fuzz_path("tensor.bin");
  moss_ctx ctx;
  fuzz_heap heap;
  moss_graph *g;
  moss_value *v = NULL;
  moss_status st;
  int kind;
  fuzz_write(in, data, size);
  fuzz_ctx_init(&ctx, &heap);
  if (moss_graph_create(&ctx, &g) != MOSS_OK) return 0;
  st = moss_tensor_file_read(&ctx, g, in, &v);
  fuzz_check_failure(&ctx, st, allowed);
  if (st == MOSS_OK) {
    size_t i, n;
    int k;
    char out[700];
    moss_value *back = NULL;
    if (!v || v->rank < 0 || v->rank > MOSS_MAX_RANK) __builtin_trap();
    for (k = 0; k < v->rank; k++)
      if (v->dims[k] < 0) __builtin_trap();
    n = moss_value_nbytes(v);
    if (n && !v->data) __builtin_trap();
    for (i = 0; i < n; i++) sink += ((const unsigned char *)v->data)[i];
    snprintf(out, sizeof out, "%s", fuzz_path("tensor.npy"));
    st = moss_npy_write(&ctx, out, v->dtype, v->rank, v->dims, v->data);
    if (st == MOSS_OK) {
      st = moss_tensor_file_read(&ctx, g, out, &back);
      if (st != MOSS_OK) {
        fprintf(stderr, "fuzz_tensor: the .npy written does not read back: %s\n", ctx.last);
        __builtin_trap();
      }
      same_or_trap(v, back);
    } else if (st != MOSS_E_UNSUPPORTED && st != MOSS_E_NOMEM) {
      fprintf(stderr, "fuzz_tensor: %s\n", ctx.last);
      __builtin_trap();
    }
  } else if (v) {
    __builtin_trap();
  }
  for (kind = 0; kind < 2; kind++) { /* a sequence, an optional */
    moss_value *l = NULL, *back = NULL;
    moss_list_item items[64];
    const moss_list *src;
    int i, n;
    char out[700];
    st = moss_list_file_read(&ctx, g, in, kind, &l);
    fuzz_check_failure(&ctx, st, allowed);
    if (st != MOSS_OK) {
      if (l) __builtin_trap();
      continue;
    }
    if (!l || !l->list || l->list->n < 0 || (kind && l->list->n > 1)) __builtin_trap();
    src = l->list->elem_is_list && l->list->n ? l->list->items[0]->list : l->list;
    n = src->n;
    if (n > 64) continue;
    for (i = 0; i < n; i++) {
      const moss_value *t = src->items[i];
      if (!t || t->list || t->rank < 0 || t->rank > MOSS_MAX_RANK || (moss_value_nbytes(t) && !t->data))
        __builtin_trap();
      items[i].dtype = t->dtype;
      items[i].rank = t->rank;
      items[i].dims = t->dims;
      items[i].data = t->data;
    }
    snprintf(out, sizeof out, "%s", fuzz_path("list.pb"));
    st = moss_list_file_write(&ctx, out, kind, l->list->elem_is_list, kind && l->list->n == 0, items, n);
    if (st == MOSS_E_NOMEM) continue;
    if (st != MOSS_OK || moss_list_file_read(&ctx, g, out, kind, &back) != MOSS_OK) {
      fprintf(stderr, "fuzz_tensor: the list written does not read back: %s\n", ctx.last);
      __builtin_trap();
    }
    {
      const moss_list *b = back->list->elem_is_list && back->list->n ? back->list->items[0]->list : back->list;
      if (b->n != n || back->list->n != l->list->n) __builtin_trap();
      for (i = 0; i < n; i++) same_or_trap(src->items[i], b->items[i]);
    }
  }
  moss_graph_destroy(&ctx, g);
  fuzz_heap_check_empty(&heap);
  return 0;
}
