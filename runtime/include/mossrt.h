/* mossrt.h - libmossrt, the moss runtime (DESIGN.md "Runtime"): loads a
 * .moss bundle (runtime/include/moss_bundle.h), checks every field and
 * offset of it before use, and runs it.
 *
 * Life cycle: open a bundle (from a file or from memory), create one or
 * more sessions on it, run a session any number of times, destroy the
 * sessions, close the bundle.
 *
 * Memory: the runtime allocates only in mossrt_open_*(),
 * mossrt_session_create() and mossrt_session_set_threads(), through the
 * allocator given in mossrt_options (the workers' stacks: pthreads')
 * (libc's by default); mossrt_run() never allocates. (dlopen() of the CPU
 * code and of plugins allocates through libc, at open time.)
 *
 * Errors: every function that can fail returns a mossrt_status and, when
 * |err| is not NULL, fills it with one line of the shape
 *   "<bundle path or <memory>>: <category>: <reason>"
 * with the categories of DESIGN.md: invalid-model (a corrupt or malformed
 * bundle: MOSSRT_E_FORMAT), unsupported (MOSSRT_E_VERSION), target (wrong
 * architecture, missing CPU feature: MOSSRT_E_TARGET; a plugin device that
 * cannot be loaded or fails: MOSSRT_E_DEVICE), invalid-model again for a
 * bundle refused by its signature (MOSSRT_E_SIGNATURE), io (MOSSRT_E_IO),
 * out-of-memory (MOSSRT_E_NOMEM) and internal (the calling program broke
 * this API's contract, MOSSRT_E_ARG, or the CPU code reported a failure).
 * On success |err| is left untouched.
 *
 * Threads: a bundle is read-only once open and may be shared by sessions
 * on different threads; a session is used by one thread at a time. */
#ifndef MOSSRT_H
#define MOSSRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MOSSRT_API __attribute__((visibility("default")))
#else
#define MOSSRT_API
#endif

typedef enum mossrt_status {
  MOSSRT_OK = 0,
  MOSSRT_E_ARG,     /* a bad argument (NULL, misaligned or small arena, index out of range) */
  MOSSRT_E_IO,      /* the file cannot be read */
  MOSSRT_E_FORMAT,  /* not a bundle, truncated, corrupt or inconsistent */
  MOSSRT_E_VERSION, /* a bundle format version this runtime does not read */
  MOSSRT_E_TARGET,  /* built for another architecture or needs a CPU feature this CPU lacks */
  MOSSRT_E_NOMEM,   /* the allocator failed */
  MOSSRT_E_DEVICE,  /* a device (CPU code or plugin) cannot be loaded, or failed to run */
  MOSSRT_E_SIGNATURE /* a public key was given and the bundle is not signed with its secret key,
                      * or was changed after it was signed */
} mossrt_status;

typedef struct mossrt_error {
  mossrt_status status;
  char text[512];   /* NUL-terminated, truncated if longer */
} mossrt_error;

typedef struct mossrt_bundle mossrt_bundle;
typedef struct mossrt_session mossrt_session;

/* A graph input or output. The pointers borrow from the bundle. */
typedef struct mossrt_tensor_info {
  const char *name;
  int32_t dtype;          /* ONNX TensorProto.DataType code (1 float, 3 int8, ...) */
  int32_t rank;
  const int64_t *dims;    /* |rank| entries */
  uint64_t nbytes;        /* size of the caller's buffer */
} mossrt_tensor_info;

/* old_size == 0: allocate (|new_size| bytes, aligned for any type);
 * new_size == 0: free |ptr| and return NULL; otherwise resize. */
typedef void *(*mossrt_realloc_fn)(void *user, void *ptr, size_t old_size, size_t new_size);
typedef struct mossrt_allocator {
  mossrt_realloc_fn fn;   /* NULL: libc */
  void *user;
} mossrt_allocator;

/* Check the bundle completely but load neither the CPU code nor plugins
 * (no dlopen). Such a bundle can be inspected but mossrt_session_create()
 * refuses it with MOSSRT_E_ARG. For verifiers and fuzzers. */
#define MOSSRT_OPEN_VERIFY_ONLY 1u

/* A check of a bundle's signature (mossrt_options.verify): MOSSRT_OK when
 * the |nbytes| bytes at |data|, a whole bundle whose header has been
 * checked, are signed with the secret key of |public_key|; otherwise a
 * status (MOSSRT_E_SIGNATURE) with |err| (may be NULL) filled as every
 * mossrt error is, |who| (the bundle's path or "<memory>") first.
 * libmossrt_sign's mossrt_sign_verify (mossrt_sign.h) is one; the core
 * links no cryptography. */
typedef mossrt_status (*mossrt_verify_fn)(const uint8_t *public_key, const void *data,
                                          size_t nbytes, const char *who, mossrt_error *err);

typedef struct mossrt_options {
  mossrt_allocator alloc; /* every allocation of the bundle and its sessions */
  /* A bundle names each plugin library by its file name. It is looked for
   * in |plugin_dir| (if not NULL), then in each folder of the environment
   * variable MOSS_PLUGIN_PATH (colon-separated), then in the bundle's own
   * folder (mossrt_open_file*), then in moss's plugin folders beside
   * libmossrt (build/plugins/NAME, PREFIX/lib/moss/plugins/NAME), then by
   * the system's search (dlopen of the bare name). A path recorded by an
   * older moss: its file name as above, then the path itself. None found:
   * MOSSRT_E_DEVICE, the message lists where it looked
   * (runtime/README.md "Plugin libraries"). */
  const char *plugin_dir;
  uint32_t flags;         /* MOSSRT_OPEN_* */
  /* Signed bundles (runtime/README.md "Signed bundles"). When |public_key|
   * is not NULL (an Ed25519 public key, 32 bytes, read only during the
   * open call), the bundle opens only if |verify| accepts it: unsigned,
   * otherwise signed and altered bundles are refused with
   * MOSSRT_E_SIGNATURE, before any section is read. |verify| NULL with a
   * key is MOSSRT_E_ARG. NULL |public_key|: no check (a signed bundle then
   * opens like any other). */
  const uint8_t *public_key;
  mossrt_verify_fn verify; /* mossrt_sign_verify from libmossrt_sign */
} mossrt_options;

/* Opens the bundle at |path|: reads it whole, checks it, loads its CPU
 * code and the plugin libraries it names. |*out| is set to NULL on entry
 * and to the bundle on success; the caller owns it (mossrt_close()).
 * Errors: MOSSRT_E_ARG, _IO, _FORMAT, _VERSION, _TARGET, _NOMEM, _DEVICE,
 * and _SIGNATURE with a public key in the options. */
MOSSRT_API mossrt_status mossrt_open_file(const char *path, mossrt_bundle **out,
                                          mossrt_error *err);
/* As mossrt_open_file(), from |nbytes| bytes at |data|, which the runtime
 * copies: |data| may be freed once this returns. Messages say "<memory>". */
MOSSRT_API mossrt_status mossrt_open_memory(const void *data, size_t nbytes,
                                            mossrt_bundle **out, mossrt_error *err);
/* The same with options; |opt| NULL means defaults. */
MOSSRT_API mossrt_status mossrt_open_file_ex(const char *path, const mossrt_options *opt,
                                             mossrt_bundle **out, mossrt_error *err);
MOSSRT_API mossrt_status mossrt_open_memory_ex(const void *data, size_t nbytes,
                                               const mossrt_options *opt,
                                               mossrt_bundle **out, mossrt_error *err);
/* Frees |b| (NULL is a no-op). Its sessions must have been destroyed. */
MOSSRT_API void mossrt_close(mossrt_bundle *b);

/* The target name recorded in |b|. */
MOSSRT_API const char *mossrt_target(const mossrt_bundle *b);
MOSSRT_API uint32_t mossrt_input_count(const mossrt_bundle *b);
MOSSRT_API uint32_t mossrt_output_count(const mossrt_bundle *b);
/* Graph input / output |i|; MOSSRT_E_ARG when |i| is out of range (|*out|
 * is then zeroed). |err| is not taken: these only fail on a bad |i|. */
MOSSRT_API mossrt_status mossrt_input_info(const mossrt_bundle *b, uint32_t i,
                                           mossrt_tensor_info *out);
MOSSRT_API mossrt_status mossrt_output_info(const mossrt_bundle *b, uint32_t i,
                                            mossrt_tensor_info *out);
/* Bytes of arena a session needs. */
MOSSRT_API uint64_t mossrt_arena_bytes(const mossrt_bundle *b);
/* The report JSON (NUL-terminated, borrowed from |b|) and its length in
 * |*len| (may be NULL); NULL when the bundle has none. */
MOSSRT_API const char *mossrt_report_json(const mossrt_bundle *b, size_t *len);

/* Creates a session on |b|. |arena| NULL: the session allocates one of
 * mossrt_arena_bytes(b); otherwise it must be 64-byte aligned and
 * |arena_bytes| >= mossrt_arena_bytes(b) (else MOSSRT_E_ARG), and it stays
 * the caller's. Opens the plugin devices and loads their blobs.
 * |*out| is set to NULL on entry. Errors: MOSSRT_E_ARG, _NOMEM, _DEVICE. */
MOSSRT_API mossrt_status mossrt_session_create(mossrt_bundle *b, void *arena,
                                               size_t arena_bytes, mossrt_session **out,
                                               mossrt_error *err);
/* Unloads the blobs, closes the devices, stops the session's threads,
 * frees the session (NULL: no-op). */
MOSSRT_API void mossrt_session_destroy(mossrt_session *s);
/* Threads (runtime/README.md "Threads"). The compiler cut the CPU code's
 * parallel loops into parts (their number fixed at compile time from the
 * target's cores); a session runs those parts on |threads| threads: the
 * one calling mossrt_run() and |threads| - 1 workers the session starts
 * here and keeps until it is destroyed (idle workers sleep). 0: as many as
 * the cores this process may run on, which is what mossrt_session_create()
 * sets for a bundle with CPU code. 1: no workers. The outputs are the same
 * bits for any number. Allocates (the workers) and may fail with
 * MOSSRT_E_NOMEM, or MOSSRT_E_ARG for more than 1024 threads; on failure the
 * session keeps the threads it had. Do not call it while the session runs. */
MOSSRT_API mossrt_status mossrt_session_set_threads(mossrt_session *s, uint32_t threads,
                                                    mossrt_error *err);
/* The session's number of threads (1 without CPU code). */
MOSSRT_API uint32_t mossrt_session_threads(const mossrt_session *s);
/* Runs the plan once: |inputs[i]| holds graph input i (mossrt_input_info's
 * nbytes), |outputs[i]| receives graph output i. Never allocates. Buffers
 * handed to plugin devices should be 64-byte aligned (moss_plugin.h).
 * Errors: MOSSRT_E_ARG (NULL buffers), MOSSRT_E_DEVICE (a step failed; the
 * outputs are then unspecified). */
MOSSRT_API mossrt_status mossrt_run(mossrt_session *s, const void *const *inputs,
                                    void *const *outputs, mossrt_error *err);

/* Batches (runtime/README.md "Batches"): a model whose only open dimension
 * was its batch axis, compiled without --input-shape, is planned for batch
 * 1 (every input and output has axis 0 of length 1 in mossrt_input_info()
 * and mossrt_output_info()) and runs a batch of N as N runs of that plan.
 * 1 when |b| is such a bundle, 0 otherwise (or NULL). */
MOSSRT_API int mossrt_bundle_batched(const mossrt_bundle *b);
/* Runs a batched bundle on |n| slices: |inputs[i]| holds |n| times graph
 * input i's nbytes (mossrt_input_info()), slice j at j times nbytes, and
 * |outputs[i]| receives |n| times graph output i's nbytes likewise; run j
 * reads slice j of every input and writes slice j of every output, so the
 * result is that of the model at batch |n|. |n| 0 runs nothing. Never
 * allocates. Errors: MOSSRT_E_ARG (NULL buffers, a bundle that is not
 * batched, a session that keeps states, |n| times a size past SIZE_MAX),
 * MOSSRT_E_DEVICE (a step failed; the outputs are then unspecified).
 * Not thread-safe on one session, as mossrt_run(). */
MOSSRT_API mossrt_status mossrt_run_batch(mossrt_session *s, uint64_t n, const void *const *inputs,
                                          void *const *outputs, mossrt_error *err);

/* Streaming state (runtime/README.md "Streaming"): a model whose state
 * inputs feed its state outputs (a recurrent net's h and c, a voice
 * detector's state) runs chunk after chunk with the state kept in the
 * session. mossrt_session_keep_state() makes graph input |in| such a
 * state, fed by graph output |out| (the same element type and shape): from
 * then on mossrt_run() and mossrt_run_profile() read input |in| from the
 * session (inputs[in] may be NULL, and is not read) and, after a run that
 * succeeded, keep output |out| for the next run (outputs[out] still
 * receives it; it may be NULL). The state starts as zeros. Allocates two
 * copies of the tensor; call it before running, not while the session
 * runs. Errors: MOSSRT_E_ARG (an index out of range, types or shapes that
 * differ, an input kept already), MOSSRT_E_NOMEM. */
MOSSRT_API mossrt_status mossrt_session_keep_state(mossrt_session *s, uint32_t in, uint32_t out,
                                                   mossrt_error *err);
/* Sets kept state |in| to the tensor at |data| (mossrt_input_info's
 * nbytes), or to zeros when |data| is NULL: a new stream. MOSSRT_E_ARG
 * when input |in| is not kept. Never allocates. */
MOSSRT_API mossrt_status mossrt_session_set_state(mossrt_session *s, uint32_t in, const void *data,
                                                  mossrt_error *err);
/* Copies kept state |in| (what the next run will read) to |data|.
 * MOSSRT_E_ARG when input |in| is not kept or |data| is NULL. */
MOSSRT_API mossrt_status mossrt_session_get_state(const mossrt_session *s, uint32_t in, void *data,
                                                  mossrt_error *err);
/* Bounded dynamic shapes (runtime/README.md "Bounded dynamic shapes"):
 * some graph outputs (NonZero, Unique, NonMaxSuppression, TopK with a
 * run-time k) have one axis whose length only the run decides. For such an
 * output, mossrt_output_info() gives the shape at its upper bound (its
 * nbytes is the bound's size: the buffer the caller passes), and each run
 * writes the output compact, as a contiguous tensor of its actual shape,
 * at the start of that buffer; mossrt_output_dims() then says that shape.
 *
 * The axis of graph output |i| whose length the run decides (its dims
 * there, from mossrt_output_info(), are the upper bound), or -1 when the
 * output's shape is static, |i| is out of range or |b| is NULL. */
MOSSRT_API int32_t mossrt_output_bound_axis(const mossrt_bundle *b, uint32_t i);
/* Writes to |dims| the rank (mossrt_output_info()) dims of graph output |i|
 * as the last successful run of |s| left it: the static dims, and at the
 * bounded axis (mossrt_output_bound_axis()) the length that run decided.
 * Before any run, or after a run that failed, the bounded length is
 * unspecified (it may give MOSSRT_E_DEVICE). Never allocates. Errors:
 * MOSSRT_E_ARG (NULL |s| or |dims|, |i| out of range), MOSSRT_E_DEVICE (the
 * length the code left is negative or above the bound: the code broke its
 * promise); |dims| is then unspecified. Do not call it while |s| runs. */
MOSSRT_API mossrt_status mossrt_output_dims(const mossrt_session *s, uint32_t i, int64_t *dims,
                                            mossrt_error *err);

/* Sequences and optionals (docs/sequences.md): a model output that is a
 * list of tensors known at compile time is returned as consecutive graph
 * outputs, one per element. The model's outputs are the groups below and,
 * in the positions no group takes, the other graph outputs in order. */
typedef struct mossrt_group_info {
  uint32_t position; /* the model's output number */
  uint32_t first;    /* the graph output of element 0 */
  uint32_t count;    /* elements (0: an empty sequence or optional) */
  int32_t kind;      /* 1 a sequence, 2 an optional */
  int32_t optional_of_sequence; /* an optional that holds a sequence */
  int32_t absent;    /* an optional that holds nothing */
  int32_t elem;      /* the elements' ONNX data type */
} mossrt_group_info;
/* The number of such groups in |b| (0 for NULL). */
MOSSRT_API uint32_t mossrt_group_count(const mossrt_bundle *b);
/* Group |k| (in the order of their positions) into |*out|. MOSSRT_E_ARG
 * when |b| or |out| is NULL or |k| is out of range. */
MOSSRT_API mossrt_status mossrt_group_get(const mossrt_bundle *b, uint32_t k, mossrt_group_info *out,
                                          mossrt_error *err);

/* Profiling (runtime/src/profile): the plan is a list of steps, run in
 * order. An EXEC step on a CPU device runs one layer of the model (one node
 * of the compiled graph) through the CPU code's entry function; an EXEC
 * step on a plugin device runs one blob (one or more layers); a TRANSFER
 * step moves a tensor between devices (nothing to do where they share host
 * memory). The compiler's report (mossrt_report_json) lists the layers in
 * the order the steps run them. */
typedef struct mossrt_step_desc {
  const char *kind;       /* "exec" or "transfer" */
  const char *device;     /* the id of the device it runs on (TRANSFER: the destination) */
  const char *from;       /* TRANSFER: the source device's id; NULL otherwise */
  const char *entry;      /* EXEC on a CPU device: the code's function; NULL otherwise */
  int32_t blob;           /* EXEC on a plugin device: the blob it runs; -1 otherwise */
} mossrt_step_desc;

/* The number of steps of |b|'s plan (0 for NULL). */
MOSSRT_API uint32_t mossrt_step_count(const mossrt_bundle *b);
/* Step |i| of |b|'s plan; the strings borrow from |b|. MOSSRT_E_ARG when
 * |i| is out of range or |out| is NULL (|*out| is then cleared). */
MOSSRT_API mossrt_status mossrt_step_info(const mossrt_bundle *b, uint32_t i,
                                          mossrt_step_desc *out);
/* As mossrt_run(), and step_ns[i] (mossrt_step_count() entries) receives the
 * nanoseconds step i took, read from CLOCK_MONOTONIC just before and just
 * after it. Never allocates. On an error the entries of the steps not run
 * are unspecified. Errors: those of mossrt_run(); MOSSRT_E_ARG for a NULL
 * |step_ns|. */
MOSSRT_API mossrt_status mossrt_run_profile(mossrt_session *s, const void *const *inputs,
                                            void *const *outputs, uint64_t *step_ns,
                                            mossrt_error *err);

/* What a plugin device counted for one layer in the session's last run
 * (plugins/include/moss_plugin.h moss_plugin_counters, copied): cycles of
 * the device's clock, busy cycles per unit (which may overlap), stalls,
 * MACs, bytes per memory level, the most on-chip memory held at once, and
 * energy from the figures the plugin carries (< 0: not modeled). The
 * strings borrow from the plugin's program, valid until the next run or
 * the end of the session. */
typedef struct mossrt_counters {
  const char *layer, *op_type;
  uint64_t cycles, dma_cycles, array_cycles, vector_cycles, stall_cycles;
  uint64_t macs, peak_macs_per_cycle;
  uint64_t dram_read_bytes, dram_write_bytes, sram_read_bytes, sram_write_bytes;
  uint64_t sram_peak_bytes;
  double clock_mhz;
  double energy_pj;
} mossrt_counters;

/* The counters of step |i| (an EXEC step on a plugin device) from the
 * session's last run: up to |cap| of them into |out|, one per layer the
 * step ran, and their number in |*out_n| (which may exceed |cap|). A step
 * on another device, or a plugin without counters, gives 0 counters.
 * Never allocates. MOSSRT_E_ARG for a NULL |s| or |out_n|, or |i| out of
 * range; MOSSRT_E_DEVICE when the plugin's counters() fails. */
MOSSRT_API mossrt_status mossrt_step_counters(mossrt_session *s, uint32_t i, mossrt_counters *out,
                                              uint32_t cap, uint32_t *out_n, mossrt_error *err);

#ifdef __cplusplus
}
#endif

#endif
