/* driver.h - the compile pipeline and the commands of the moss CLI. */
#ifndef MOSS_DRIVER_H
#define MOSS_DRIVER_H

#include "../import/onnx.h"

typedef struct moss_compile_opts {
  const char *model;          /* path of the .onnx file */
  const char *target;         /* target name or XML path; NULL: host */
  const char *emit;           /* "bundle", "c" or "obj"; NULL: the target's default */
  const char *out;            /* output folder */
  const char *name;           /* symbol prefix; NULL: from the model file name */
  moss_onnx_binding *bindings;
  int nbindings;
  int dump_ir;                /* print the final IR to stdout */
  int dump_kernels;           /* print every node's kernel description to stdout */
  int timings;                /* -v: print the time each stage took to stderr */
  const char *dump_after;     /* print the IR after this pass ("all" for every pass) */
  int verbose;                /* print the arena size and a summary */
  const char *prune;          /* --prune SPEC (passes/prune.h); NULL: none */
  int explain;                /* print every node's device and why (--explain) */
  const char *report;         /* --report FILE.json|.csv|.html; NULL: none */
  double grid_intensity;      /* --grid-intensity gCO2e/kWh; <= 0: the 475 fallback, flagged */
  int no_emit;                /* stop after costing (moss compare) */
  const struct moss_target *loaded_target; /* non-NULL: use this target (borrowed) instead of
                               * loading |target| (the fuzzers, tests/fuzz/fuzz_onnx.c) */
  struct moss_cost_report **cost_out; /* non-NULL: receives the cost report (caller destroys) */
  /* Post-training quantization (calibration: compiler/driver/calibrate.c; the rewrite:
   * compiler/passes/ptq.c; docs/quantization.md). */
  const char *quantize;       /* --quantize int8; NULL: none */
  const char *calibration;    /* --calibration DATA (.npy batch or folder of .npy) */
  const char *calib_method;   /* --calibration-method minmax|percentile[:P]; NULL: minmax */
  const char *keep_float;     /* --keep-float NODE,NODE...; NULL: none */
  const char *float16;        /* --float16 NODE,NODE...: Conv/Gemm/MatMul layers rounded to and,
                               * where the device can, computed in float16 (passes/half.c);
                               * NULL: none */
  int host_half;              /* internal: this machine's LLVM code computes the float16 layers
                               * in float16 too (LLVM legalizes it where the CPU has no such
                               * instructions), so that --budget measures the accuracy of the
                               * target's float16 arithmetic here */
  int observe;                /* internal: every float activation becomes a graph output
                               * after 'fuse' (the calibration run); no quantization */
  const struct moss_act_power *act_power; /* internal: the inputs' mean squares --prune
                               * columns-act ranks by, already measured (the calibration
                               * build of a columns-act compile takes its parent's, by value
                               * id and name of the same graph); NULL: measured when needed */
  int act_npower;             /* entries of act_power */
  int profile;                /* --profile: run the bundle here, each layer timed, and put the
                               * measurement beside the estimate (profile.h) */
  const char *sign_key;       /* --sign KEY: the secret key file the bundle is signed with
                               * (keys.c); NULL: unsigned */
  int max_trip_count;         /* --max-trip-count N: a Loop whose trip count or condition is
                               * known only at run time runs at most N iterations (unrolled,
                               * docs/control-flow.md); 0: such Loops are refused */
  int max_length;             /* --max-length N: the bound of a Range whose inputs are known only
                               * at run time (docs/dynamic-shapes.md); 0: such a Range is refused */
  struct moss_compile_inputs *inputs; /* non-NULL: receives what the compile read (cachekey.c) */
  const char *depfile;        /* --depfile FILE: after the compile, a Make rule "OUTPUT: every
                               * file read" (cachekey.c); NULL: none */
  const char *plan_file;      /* internal: the --plan file the per-layer options came from
                               * (budget.c), an input of the compile like the calibration */
} moss_compile_opts;

/* The files one compile read, as the loaders opened them (ctx->files must
 * be set): the --sign key, the target schema, the target file and every
 * file its inherit= chain reached, the plugin libraries, the model, its
 * external data, the --constant files, the calibration files, the --plan
 * file and, with --quantize, the host target the calibration runs on. The cache key and
 * the depfile are both made from this one list. */
typedef struct moss_compile_inputs {
  int only;          /* 1: moss_compile stops once they are read, with |key| set (--cache-key) */
  size_t first, n;   /* set by moss_compile: entries [first, first + n) of ctx->files */
  char key[65];      /* the cache key, hex SHA-256, when |only| */
} moss_compile_inputs;

/* Called by moss_compile once the model is imported (cachekey.c): notes
 * the calibration files and, with --quantize, the host target's files,
 * sets |in|->first and |in|->n, and with |in|->only computes the key from
 * |target| (resolved), |emit| and |name| as the compile will use them. */
moss_status moss_compile_inputs_done(moss_ctx *ctx, const moss_compile_opts *opts,
                                     const struct moss_target *target, const char *emit,
                                     const char *name, size_t first, moss_compile_inputs *in);
/* Writes |depfile|: "OUTPUT: FILE ..." naming every file of |in| (absolute,
 * escaped for GNU make and Ninja); OUTPUT is the main output, |out| itself
 * for a bundle, |out|/|ident|.c for --emit c, |out|/|ident|.o for obj. */
moss_status moss_depfile_write(moss_ctx *ctx, const char *depfile, const char *emit,
                               const char *out, const char *ident, const moss_compile_inputs *in);

/* import -> passes -> plan -> emit, one stage per line (pipeline.c). */
moss_status moss_compile(moss_ctx *ctx, const moss_compile_opts *opts);

/* `moss run`: loads the artifact at |path| (a bundle, or a folder made by
 * --emit c or obj), binds |ninputs| tensor files (by position, or
 * NAME=FILE), one for every graph input, runs it and writes
 * OUTDIR/output_<i>.npy. */
typedef struct moss_run_opts {
  const char *artifact;
  const char **inputs;
  int ninputs;
  const char *outdir;
  int iterations;             /* > 1: time this many runs (moss bench) */
  int print_time;
  const char *public_key;     /* --public-key FILE: only a bundle signed with its secret key
                               * runs (keys.c, libmossrt_sign); NULL: no check */
  int profile;                /* --profile: time every step of the plan (a bundle only) and
                               * print the per-layer table (profile.h) */
  const char *profile_csv;    /* --profile-csv FILE: the table as CSV too (implies --profile) */
  int zeros;                  /* moss bench: with no input file at all, inputs are zeros (only
                               * timed); otherwise every graph input needs its file */
  int threads;                /* --threads N: a bundle's session runs on N threads
                               * (mossrt_session_set_threads); 0: the cores moss may use */
  int stream;                 /* --stream: each input file that is not a state holds chunks
                               * along a new first axis, run one after another; the outputs
                               * are stacked the same way */
  const char **states;        /* --state IN=OUT (implies --stream): input IN is kept in the
                               * session, fed by output OUT of the chunk before
                               * (mossrt_session_keep_state); its file, if given, is the
                               * first chunk's state, else zeros */
  int nstates;
} moss_run_opts;
moss_status moss_run_artifact(moss_ctx *ctx, const moss_run_opts *opts);

/* `moss eval ARTIFACT X.npy Y.npy` (eval.c): runs the bundle on X in
 * batches of its input, the argmax over the last axis of output 0 against
 * the labels Y (int64 or int32). */
typedef struct moss_eval_result {
  int64_t right, n;
  double accuracy;
} moss_eval_result;
moss_status moss_eval_artifact(moss_ctx *ctx, const char *artifact, const char *x, const char *y,
                               moss_eval_result *out);
/* Output 0 of every sample of X, in order: |*out_count| floats (|*out_n|
 * samples x the floats of one), moss_alloc'd (free |*out_count| * 4 + 1
 * bytes; NULL on failure). */
moss_status moss_eval_outputs(moss_ctx *ctx, const char *artifact, const char *x,
                              float **out_rows, int64_t *out_count, int64_t *out_n);

/* Key files of signed bundles (keys.c): the raw bytes of an Ed25519 key,
 * 64 for a secret key (|secret| 1), 32 for a public key. moss_key_read
 * copies them into |out| (may be NULL: only checked); io when the file
 * cannot be read or has another size. moss_keygen writes a new pair to
 * |out| (secret, mode 0600) and |out|.pub (public), never over an existing
 * file, and says so on stderr. */
moss_status moss_key_read(moss_ctx *ctx, const char *path, int secret, uint8_t *out);
moss_status moss_keygen(moss_ctx *ctx, const char *out);

/* What a compile for |t| emits without --emit: "bundle", or "c" for
 * bare-metal targets (no libmossrt) (pipeline.c). */
const char *moss_default_emit(const struct moss_target *t);

/* `moss compile MODEL --budget ACC --eval X Y` (budget.c, docs/budget.md):
 * per layer precision and sparsity searched for the least estimated energy
 * on opts->target whose top-1 accuracy on X drops at most |budget| below
 * the fp32 dense model's; writes the artifact (opts->out), the plan and a
 * JSON report. opts->quantize, keep_float and prune are the search's. */
typedef struct moss_budget_opts {
  double budget;              /* largest accepted drop in top-1 accuracy, 0 <= budget < 1;
                                 with rel_l2, the largest relative L2 error of output 0 */
  int rel_l2;                 /* --budget rel-l2:R: against the fp32 model's output on X */
  const char *eval_x, *eval_y; /* eval_y NULL with rel_l2 */
  const char *plan_out;       /* --plan-out FILE; NULL: OUT.plan */
  const char *report;         /* --budget-report FILE.json; NULL: OUT.budget.json */
  int max_evals;              /* --max-evals N; 0: 60 */
} moss_budget_opts;
/* "0.5%" or "0.005" into |*out| (0.005), |*rel_l2| 0; "rel-l2:R" into R, |*rel_l2| 1. */
moss_status moss_budget_parse(moss_ctx *ctx, const char *s, double *out, int *rel_l2);
moss_status moss_budget_search(moss_ctx *ctx, const moss_compile_opts *opts,
                               const moss_budget_opts *b);
/* `moss compile MODEL --plan FILE`: the configuration of |plan| compiled
 * with |opts| (the same artifact the search wrote). */
moss_status moss_plan_compile(moss_ctx *ctx, const moss_compile_opts *opts, const char *plan);

/* `moss compare MODEL --targets a,b,c ...` (compare.c). */
moss_status moss_compare_cli(moss_ctx *ctx, int argc, char **argv);

/* A moss_ctx sink that keeps the first diagnostic (and counts them) of a
 * compile run on behalf of another command: moss compare's rows, the budget
 * search's points (compare.c). */
typedef struct moss_diag_capture {
  char first[512];
  int n;
} moss_diag_capture;
void moss_diag_capture_sink(void *user, moss_status code, const char *msg);

#endif
