/* onnx.h - ONNX (protobuf) to moss IR, and ONNX TensorProto files. */
#ifndef MOSS_ONNX_H
#define MOSS_ONNX_H

#include "../ir/ir.h"

/* Options that bind what the model leaves open. */
typedef struct moss_onnx_binding {
  const char *name;      /* graph input name */
  const char *shape;     /* "1x3x224x224" for --input-shape, or NULL */
  const char *file;      /* .npy / .pb for --constant, or NULL */
} moss_onnx_binding;

/* Parses |path| into a new graph. Inputs named in |bindings| get their
 * shapes fixed or are frozen into constants; an unbound symbolic dimension
 * is an error that names the input. Every problem found is reported. */
moss_status moss_onnx_import(moss_ctx *ctx, const char *path, const moss_onnx_binding *bindings,
                             int nbindings, moss_graph **out_graph);

/* The same, and with |batch| > 0 an input's open axis 0 that no binding
 * fixes (a dim_param or an unnamed dimension) is bound to |batch| and
 * g->batch is set to it: the model is compiled for that batch and run over
 * slices of axis 0 (passes/batch.c checks that this is sound). Every input
 * must then have such an axis; another open dimension is an error as in
 * moss_onnx_import. */
moss_status moss_onnx_import_batch(moss_ctx *ctx, const char *path,
                                   const moss_onnx_binding *bindings, int nbindings, int batch,
                                   moss_graph **out_graph);

/* The same from |size| bytes in memory; |path| names the model in messages
 * and locates external data (may be NULL: no external data). */
moss_status moss_onnx_import_memory(moss_ctx *ctx, const char *path, const uint8_t *data,
                                    size_t size, const moss_onnx_binding *bindings, int nbindings,
                                    moss_graph **out_graph);

/* Reads a tensor file (.npy, or an ONNX TensorProto .pb) into a constant
 * value of |g| (not added to the graph's inputs). */
moss_status moss_tensor_file_read(moss_ctx *ctx, moss_graph *g, const char *path,
                                  moss_value **out_value);

/* An ONNX SequenceProto (|optional| 0) or OptionalProto (1) .pb file as a
 * list value (docs/sequences.md) named after the file. */
moss_status moss_list_file_read(moss_ctx *ctx, moss_graph *g, const char *path, int optional,
                                moss_value **out_value);

/* One tensor of a sequence or optional that moss_list_file_write writes. */
typedef struct moss_list_item {
  moss_dtype dtype;
  int rank;
  const int64_t *dims;
  const void *data;
} moss_list_item;

/* Writes |count| tensors as an ONNX SequenceProto .pb (|optional| 0), or
 * an OptionalProto (1) of a tensor (|count| 1) or of a sequence
 * (|of_sequence|), empty when |absent|: a graph output that is a list
 * (docs/sequences.md). */
moss_status moss_list_file_write(moss_ctx *ctx, const char *path, int optional, int of_sequence, int absent,
                                 const moss_list_item *items, int count);

/* Writes |numel| elements at |data| as a .npy file. */
moss_status moss_npy_write(moss_ctx *ctx, const char *path, moss_dtype dt, int rank,
                           const int64_t *dims, const void *data);

#endif
