/* base.h - status codes, diagnostics, allocators and arenas shared by every
 * stage of the moss compiler. Everything else in compiler/ includes this. */
#ifndef MOSS_BASE_H
#define MOSS_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef enum moss_status {
  MOSS_OK = 0,
  MOSS_E_INVALID_MODEL, /* input violates ONNX or our documented subset */
  MOSS_E_UNSUPPORTED,   /* valid input that this build cannot compile */
  MOSS_E_TARGET,        /* target XML invalid or target lacks a capability */
  MOSS_E_IO,
  MOSS_E_NOMEM,
  MOSS_E_INTERNAL       /* broken invariant: our bug */
} moss_status;

/* Category word of |st| as it appears in diagnostics ("invalid-model", ...). */
const char *moss_status_category(moss_status st);

/* old_size == 0: allocate; new_size == 0: free. */
typedef void *(*moss_realloc_fn)(void *user, void *ptr, size_t old_size, size_t new_size);
typedef struct moss_allocator {
  moss_realloc_fn fn;
  void *user;
} moss_allocator;

/* The allocator over libc; the only code in the library that calls malloc. */
moss_allocator moss_allocator_libc(void);

/* Receives every diagnostic, already formatted, without a trailing newline. */
typedef void (*moss_diag_fn)(void *user, moss_status code, const char *msg);

/* A compile session: allocator, diagnostic sink and the name of the file
 * the diagnostics refer to. Not thread-safe; one per thread. */
typedef struct moss_ctx {
  moss_allocator alloc;
  const char *file;       /* shown first in every message; "moss" if NULL */
  moss_diag_fn sink;      /* NULL: messages are only kept in |last| */
  void *sink_user;
  int nerrors;            /* diagnostics reported so far */
  int debug;              /* run the IR verifier after every pass */
  char last[1024];        /* the most recent message */
  /* Progress of a long compile (NULL: none; the driver sets it when
   * standard error is a terminal): |done| of |total| items of the step
   * |what| ("kernels"), or a step starting when |total| is 0. */
  void (*progress)(void *user, const char *what, int64_t done, int64_t total);
  void *progress_user;
  /* The files this command read and wrote (NULL: none kept; the moss
   * command keeps them, library users need not), so that no output
   * replaces an input (moss_file_write). Freed by moss_file_set_deinit. */
  struct moss_file_set *files;
} moss_ctx;

/* Reports progress through ctx->progress, if set. */
void moss_progress(moss_ctx *ctx, const char *what, int64_t done, int64_t total);

void moss_ctx_init(moss_ctx *ctx, moss_allocator alloc);

/* Records a diagnostic about the node called |node_name| with operator
 * |op_type| (both NULL: about no node); returns |code|. Shape:
 * "<file>: node '<name>' (<OpType>): <category>: <reason> [<src>:<line>]".
 * This layer knows no IR: compiler/ir/ir.h adds moss_diag_fail_at(), which
 * takes a moss_node and passes its name and op type here. */
moss_status moss_diag_fail_about(moss_ctx *ctx, const char *src, int line, moss_status code,
                                 const char *node_name, const char *op_type, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 7, 8)))
#endif
    ;
moss_status moss_diag_vfail_about(moss_ctx *ctx, const char *src, int line, moss_status code,
                                  const char *node_name, const char *op_type, const char *fmt,
                                  va_list ap);

/* Below the IR there are no nodes, so |node| is NULL here (it is not
 * evaluated). compiler/ir/ir.h redefines moss_fail to take a moss_node, so
 * code that sees the IR names the node in its messages. */
#define moss_fail(ctx, code, node, ...) \
  moss_diag_fail_about((ctx), __FILE__, __LINE__, (code), NULL, NULL, __VA_ARGS__)
#define MOSS_TRY(expr)                  \
  do {                                  \
    moss_status st_ = (expr);           \
    if (st_ != MOSS_OK) return st_;     \
  } while (0)

/* Memory through the context's allocator. moss_alloc zero-fills. */
void *moss_alloc(moss_ctx *ctx, size_t size);
void *moss_realloc(moss_ctx *ctx, void *ptr, size_t old_size, size_t new_size);
void moss_free(moss_ctx *ctx, void *ptr, size_t size);

/* Checked size arithmetic: return 0 on overflow, 1 otherwise. */
int moss_size_mul(size_t a, size_t b, size_t *out);
int moss_size_add(size_t a, size_t b, size_t *out);
/* The same for sizes held in int64_t (arena offsets, weight totals, tensor
 * bytes): 0 when an operand is negative or the result exceeds INT64_MAX. */
int moss_i64_add(int64_t a, int64_t b, int64_t *out);
int moss_i64_mul(int64_t a, int64_t b, int64_t *out);

/* Bump allocator; nodes and values of a graph live in one. It takes
 * blocks of |block| bytes (at least 1024) from |a|, or of the size in the
 * environment variable MOSS_ARENA_BLOCK when that is set; 1 there gives
 * each allocation a block of its own (the unit tests set it, so that each
 * arena allocation can be made to fail). */
typedef struct moss_arena moss_arena;
moss_status moss_arena_create(moss_allocator a, size_t block, moss_arena **out_arena);
void *moss_arena_alloc(moss_arena *arena, size_t size, size_t align); /* zeroed; NULL: OOM */
char *moss_arena_strdup(moss_arena *arena, const char *s);
void moss_arena_reset(moss_arena *arena); /* keeps the first block for reuse */
void moss_arena_destroy(moss_arena *arena);

/* A growable byte buffer used by emitters; on allocation failure it keeps
 * its old content and sets |failed|. */
typedef struct moss_buf {
  moss_ctx *ctx;
  char *data;
  size_t len, cap;
  int failed;
} moss_buf;
void moss_buf_init(moss_buf *b, moss_ctx *ctx);
void moss_buf_deinit(moss_buf *b);
void moss_buf_put(moss_buf *b, const void *data, size_t n);
void moss_buf_printf(moss_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* 64-bit FNV-1a, and a SHA-256 for banners (hex string of 64 chars + NUL). */
uint64_t moss_hash64(const void *data, size_t n, uint64_t seed);
void moss_sha256_hex(const void *data, size_t n, char out_hex[65]);

/* |src| as a C identifier into |dst| (at most |cap| bytes with the NUL):
 * other characters become '_', and an 'm' goes first when it does not
 * start with a letter or '_'. Symbol prefixes of generated code. */
void moss_identifier_emit(char *dst, size_t cap, const char *src);

/* Whole-file read through the context's allocator (a NUL follows the
 * data: free |*out_size| + 1 bytes); the file is noted as an input. */
moss_status moss_file_read(moss_ctx *ctx, const char *path, uint8_t **out_data, size_t *out_size);

/* The files one command reads and writes, by device and inode (with the
 * path, to tell a file still there from a deleted one whose inode came
 * back). Owned by the caller that sets ctx->files. */
typedef struct moss_file_set {
  struct moss_file_id *ids;
  size_t n, cap;
} moss_file_set;
void moss_file_set_deinit(moss_ctx *ctx, moss_file_set *set);
/* The path of entry |i| of |set| (in the order the files were first
 * noted) when that file was read, NULL when it was written; |i| < set->n. */
const char *moss_file_set_read_path(const moss_file_set *set, size_t i);

/* Notes |path| as read by this command, when ctx->files is set. No
 * diagnostic: MOSS_E_NOMEM when out of memory, for the caller to report;
 * MOSS_OK too when the file cannot be found. */
moss_status moss_file_note_input(moss_ctx *ctx, const char *path);

/* MOSS_OK when an output may be written at |path|: nothing is there, or a
 * regular file that is not a file this command reads or has written (a
 * symbolic link is judged by the file it leads to). Otherwise an io
 * diagnostic that names |path| and says why. */
moss_status moss_file_check_output(moss_ctx *ctx, const char *path);

/* Writes the |n| parts (|parts[i]|, |sizes[i]| bytes) one after the other
 * to |path|: into a temporary file beside it, renamed over |path| at the
 * end, after moss_file_check_output; a symbolic link keeps leading to the
 * new file. On any failure |path| is unchanged and no temporary file is
 * left. The file is then noted as written. moss_file_write: one part. */
moss_status moss_file_writev(moss_ctx *ctx, const char *path, const void *const *parts,
                             const size_t *sizes, int n);
moss_status moss_file_write(moss_ctx *ctx, const char *path, const void *data, size_t size);

/* Removes |path| when it is a regular file that this command neither reads
 * nor wrote (a stale output of an earlier run); with |banner| non-NULL,
 * only when its first 512 bytes contain |banner| (a file moss generated).
 * Anything else is left alone. */
void moss_file_remove_stale(moss_ctx *ctx, const char *path, const char *banner);

/* Builds the shared object |out_so| from |srcs| with |cc| (NULL: $CC, else
 * cc), the flags in $MOSS_CFLAGS (default -O3), then |extra|, then
 * -std=c99 -fPIC -shared ... -lm, run in the folder |dir| (NULL: this one;
 * relative |srcs| are then relative to |dir|). Writes through a temporary
 * file (proc.c). */
moss_status moss_cc_shared(moss_ctx *ctx, const char *cc, const char *const *extra, int nextra,
                           const char *dir, const char *const *srcs, int nsrcs,
                           const char *out_so);
/* Removes the files of the folder |dir| (not recursive), then the folder. */
void moss_remove_dir(const char *dir);

#endif
