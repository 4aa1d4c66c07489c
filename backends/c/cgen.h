/* cgen.h - the portable C backend: turns a planned graph into <name>.h and
 * <name>.c (DESIGN.md "Generated C"). The body of each node's block is its
 * kernel description (compiler/kernel), printed by kprint.c. */
#ifndef MOSS_CGEN_H
#define MOSS_CGEN_H

#include "../../compiler/kernel/kernel.h"
#include "../../compiler/ops/ops.h"

typedef struct moss_cgen {
  moss_ctx *ctx;
  moss_graph *g;
  const char *prefix;   /* sanitized model name: symbol prefix */
  moss_buf *out;        /* the current node's block; families write here */
  moss_buf *decls;      /* file-scope definitions (weights, shared helpers) */
  int indent;           /* in levels of two spaces, for moss_c_line */
  unsigned helpers;     /* file-scope helper functions already emitted (kprint.c's bits) */
  int uid;              /* counter for unique local names */
  unsigned char *emitted; /* per value id: weight array already defined */
  moss_buf *wfile;      /* large models: the weights go to <name>_weights.c */
  moss_arena *karena;   /* the current node's kernel description (reset per node) */
  /* OpenCL C (backends/opencl): tables are __constant arrays, and the
   * kernel's outermost perfectly nested parallel loops of constant bounds
   * (up to 3) become work-items; moss_c_emit_kernel sets |work_items| to
   * their count (1: one work-item runs the whole body). */
  int opencl;
  int64_t work_items;
  int work_group;          /* OpenCL: the work-group size the kernel needs (moss_kernel_group; 0: any) */
  moss_buf *kscope;        /* OpenCL: the kernel function's outermost scope, where moss_c_emit_kernel
                            * declares the work-group's __local (SHARED) buffers */
  moss_kernel_cpu gpu;     /* OpenCL: the GPU lowered for (its work-group limits; .gpu is set whatever
                            * it holds) */
  /* OpenCL: where a kernel's constant table goes in the constants buffer
   * moss_w (its byte offset there); the kernel reads it through a __global
   * pointer, since a GPU's __constant memory is small (64 KiB on NVIDIA's). */
  int64_t (*table_at)(void *user, const void *data, size_t bytes);
  void *table_user;
  /* OpenCL: which launch of the node moss_c_emit_kernel prints
   * (moss_kernel_launches), and their number, which it sets. */
  int launch, launches;
} moss_cgen;

/* Above this many bytes of weights, they go to their own <name>_weights.c
 * (external linkage, prefixed names) so the code file stays small. */
#define MOSS_C_WEIGHTS_FILE_BYTES ((size_t)1 << 20)

/* Prints |n|'s kernel description (kprint.c) as the body of its block:
 * inside it, input i is `x<i>` (const T *) and output i `y<i>` (T *), T
 * being moss_dtype_ctype(value->dtype); the framework declares only the
 * names the text uses and defines the weight arrays of constant inputs. */
moss_status moss_c_emit_kernel(moss_cgen *cg, const moss_node *n);

/* Writes one line of code into the node's block at the current indent. */
void moss_c_line(moss_cgen *cg, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Opens / closes a brace level: moss_c_open(cg, "for (i = 0; i < %d; i++)", n). */
void moss_c_open(moss_cgen *cg, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void moss_c_close(moss_cgen *cg);

/* Literal text of a value of type |dt| that round-trips: hex floats with
 * an f suffix for float32, INFINITY/NAN where needed, INT64_C(...) for
 * 64-bit integers. Writes into |buf| and returns it. */
const char *moss_c_lit_f64(moss_dtype dt, double v, char *buf, size_t cap);
const char *moss_c_lit_i64(moss_dtype dt, int64_t v, char *buf, size_t cap);
/* Literal of element |i| of the constant value |v|. */
const char *moss_c_lit_elem(const moss_value *v, int64_t i, char *buf, size_t cap);

/* The C backend entry: writes <dir>/<prefix>.h, <dir>/<prefix>.c and
 * <dir>/<prefix>.manifest (what `moss run` needs to call the code). */
moss_status moss_c_emit(moss_ctx *ctx, moss_graph *g, const char *prefix, const char *dir,
                        const char *source_hash, const char *target_name);

/* The generated header <prefix>.h of the standalone form and the
 * manifest `moss run` reads (|extra|: one more line, may be NULL), for
 * backends that write the same interface (the LLVM backend's --emit obj). */
void moss_c_header_emit(const moss_graph *g, const char *prefix, const char *src_name,
                        const char *source_hash, const char *target_name, moss_buf *out);
void moss_c_manifest_emit(const moss_graph *g, const char *prefix, const char *extra, moss_buf *out);

/* |src| as a C identifier: other characters become '_', and an 'm' goes
 * first when it does not start with a letter or '_'. */
void moss_c_identifier(char *dst, size_t cap, const char *src);

/* Whether the C backend has code for |n|'s operator. */
int moss_c_can_emit(const moss_node *n);

/* The segmented form, for bundles whose target has other devices: only the
 * nodes whose segment |k| has seg_is_c[k] set are emitted, one function
 * per segment, int <prefix>_seg<k>(const void *const *in, void *const *out,
 * void *arena), in place of <prefix>_run_v and <prefix>_run, and the
 * constant moss_figures (runtime/include/moss_bundle.h): the |nfigures|
 * bytes at |figures| (a multiple of 8), then the segment functions in
 * order. |seg_is_c| NULL: the standalone form (moss_c_emit; |figures|
 * unused). */
moss_status moss_c_emit_segments(moss_ctx *ctx, moss_graph *g, const char *prefix,
                                 const char *dir, const char *source_hash,
                                 const char *target_name, const unsigned char *seg_is_c,
                                 int nseg, const uint8_t *figures, size_t nfigures);

#endif
