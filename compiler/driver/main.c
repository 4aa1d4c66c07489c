/* main.c - the moss command line (DESIGN.md "Command line"): parses
 * arguments and calls the pipeline, the runner or the target tools.
 * Diagnostics go to standard error; the exit status is 0 on success. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../target/target.h"
#include "driver.h"
#include "progress.h"
#include "ptq.h"

static void print_diag(void *user, moss_status code, const char *msg) {
  (void)user;
  (void)code;
  moss_progress_clear(); /* a diagnostic never shares the progress line */
  fprintf(stderr, "%s\n", msg);
}

static const char usage[] =
    "usage:\n"
    "  moss compile MODEL.onnx [--target NAME|FILE.xml] [--emit bundle|c|obj] [-o OUT] [--name NAME]\n"
    "               [--input-shape NAME=1x3x224x224 ...] [--constant NAME=FILE ...]\n"
    "               [--explain] [--report FILE.json|.csv|.html] [--grid-intensity G]\n"
    "               [--prune magnitude:R|magnitude-layer:R|block:HxW:R|channels:HxC:R|columns:R|\n"
    "                columns-act:R|nm:N:M]\n"
    "               [--quantize int8 --calibration DATA [--calibration-method minmax|percentile[:P]]\n"
    "                [--keep-float NODE,...]] [--float16 NODE,...] [--eval X.npy Y.npy]\n"
    "               [--budget DROP --eval X.npy Y.npy | --budget rel-l2:R --eval X.npy\n"
    "                [--calibration DATA] [--plan-out FILE] [--budget-report FILE.json|.html]\n"
    "                [--max-evals N]] [--plan FILE]\n"
    "               [--dump-ir] [--dump-kernels] [--dump-after=PASS|all] [-q] [-v] [--sign KEY]\n"
    "               [--profile] [--winograd] [--max-trip-count N] [--max-length N]\n"
    "               [--cache-key] [--depfile FILE]\n"
    "  moss run ARTIFACT [IN0 IN1 ... | --input NAME=FILE ...] [-o OUTDIR] [--time]\n"
    "               [--threads N] [--profile] [--profile-csv FILE.csv] [--public-key KEY.pub]\n"
    "               [--stream] [--state INPUT=OUTPUT ...]\n"
    "  moss bench ARTIFACT [--iterations N] [--threads N] [IN0 ...] [--profile]\n"
    "               [--profile-csv FILE.csv] [--public-key KEY.pub]\n"
    "  moss eval ARTIFACT.moss X.npy Y.npy\n"
    "  moss compare MODEL.onnx --targets A,B,C [--input-shape ...] [--constant ...]\n"
    "               [--grid-intensity G] [--report FILE.html|.json] [-q]\n"
    "  moss targets [list | show NAME | validate FILE.xml]\n"
    "  moss keygen KEY\n"
    "\n"
    "compile: imports the ONNX model, folds and fuses it, places every node on a device of the\n"
    "  target (default: host, this machine), plans one arena, estimates time, memory and energy\n"
    "  (one line on the terminal; --report writes the whole report), and writes OUT:\n"
    "    --emit bundle (default): a .moss bundle for libmossrt (OUT defaults to <name>.moss);\n"
    "      the CPU code is the C backend's, built with $CC for the target's CPU;\n"
    "    --emit c: standalone C99 (OUT/<name>.h, <name>.c, <name>.manifest; OUT defaults to\n"
    "      <name>.moss.d), the default for bare-metal targets such as cortex-m7;\n"
    "    --emit obj: native code from the LLVM backend for the target's CPU, no C compiler\n"
    "      (OUT/<name>.o, the same <name>.h, <name>.manifest; link the .o into your program).\n"
    "  --explain prints each node's device and why, and every transfer between devices.\n"
    "  -q prints no summary and no progress line. Without it, on a terminal, long work\n"
    "  (calibration, a large compile, compare over many targets) shows one line on standard\n"
    "  error, stage, done/total and seconds, redrawn in place and cleared at the end; never\n"
    "  when standard error is a file or a pipe, nor with -v (each stage's time instead).\n"
    "  --grid-intensity G: grid carbon intensity in gCO2e/kWh for the report; without it the\n"
    "  world average 475 is used and flagged as a fallback.\n"
    "  --prune SPEC zeroes Conv/Gemm/MatMul weights at compile time, R (0 <= R < 1) the share:\n"
    "    magnitude:R (smallest |w| over the whole model), magnitude-layer:R (the same per layer),\n"
    "    block:HxW:R (per layer, the HxW blocks of [out, in] with the lowest mean square),\n"
    "    channels:HxC:R (the same, blocks of H outputs x C input channels at one kernel\n"
    "    position: channels:1x4 empties the words an int8 Conv's byte dot products skip),\n"
    "    columns:R (per layer, the columns of [out, in] with the lowest mean square),\n"
    "    columns-act:R (the same, each column's mean square times its input's over\n"
    "    --calibration DATA: inputs that are always 0 go first; needs --calibration),\n"
    "    nm:N:M (keep the N largest |w| of every M along each row; nm:2:4 is 2:4 sparsity).\n"
    "    There is no retraining, so accuracy drops (digits MLP: -1.6 points at magnitude:0.5,\n"
    "    -19 at magnitude:0.8); measure it on your data. See docs/pruning.md.\n"
    "  Layers whose weights are mostly zeros get sparse kernels (docs/sparse.md).\n"
    "  --quantize int8 --calibration DATA: post-training quantization. The float model runs on\n"
    "    DATA (a .npy batch [N, ...] of typical inputs, or a folder of them) to record the range\n"
    "    of every activation (--calibration-method minmax, the default, or percentile[:P],\n"
    "    P default 99.99); then Conv/Gemm/MatMul get per-channel int8 weights, int32 biases and\n"
    "    uint8 activations (ONNX Quantize/DequantizeLinear, folded into integer-only kernels).\n"
    "    --keep-float NODE,... leaves those layers float. There is no retraining, so accuracy\n"
    "    changes: measure it (--eval). See docs/quantization.md.\n"
    "  --float16 NODE,...: those Conv/Gemm/MatMul layers read their inputs and weights rounded\n"
    "    to float16 and compute and accumulate in float16 where the target's CPU has the\n"
    "    instructions (Armv8.2 +fullfp16: rpi5, jetson-orin-nano); elsewhere they compute in\n"
    "    float32 between the roundings. See docs/kernel.md, \"Half precision\".\n"
    "  --eval X.npy Y.npy: after writing the bundle, runs it on X and prints the accuracy of\n"
    "    the argmax of output 0 against the labels Y; with --quantize also the float model's.\n"
    "  Symbolic input dimensions must be bound with --input-shape, except a batch axis: when\n"
    "  every input's only open dimension is axis 0, the model is compiled for batch 1 and run\n"
    "  over any batch N, slice by slice, if no node mixes rows (else the error names the node).\n"
    "  Graph inputs that decide\n"
    "  shapes (a Reshape's shape, a Slice's starts...) must be frozen with --constant, and\n"
    "  so must inputs that are sequences or optionals (an ONNX SequenceProto or OptionalProto\n"
    "  .pb; docs/sequences.md). Tensor files are .npy or ONNX TensorProto .pb. Every output goes to a temporary file\n"
    "  renamed over OUT only when OUT is new or a regular file that is not an input.\n"
    "run: runs a bundle through libmossrt, or builds a C artifact with the system C compiler\n"
    "  ($CC, $MOSS_CFLAGS), on the inputs (one tensor file for every graph input), and writes\n"
    "  OUTDIR/output_<i>.npy (default '.'; output_<i>.pb, an ONNX SequenceProto or\n"
    "  OptionalProto, for an output that is one). No output replaces an input, a device or a\n"
    "  folder.\n"
    "--budget DROP --eval X.npy Y.npy (compile): searches, per Conv/Gemm/MatMul layer, fp32 or\n"
    "  int8 (with --calibration DATA) and sparsity (magnitude 0.2 to 0.9, 2:4, channels:1x4,\n"
    "  columns-act with --calibration), for the least estimated\n"
    "  energy on the target whose top-1 accuracy on X is at most DROP (0.5% or 0.005) below the\n"
    "  fp32 dense model's (--budget rel-l2:R --eval X.npy: output 0's relative L2 error against\n"
    "  the fp32 model's on X at most R, no labels); writes the artifact, OUT.plan (--plan-out)\n"
    "  and OUT.budget.json (--budget-report; a FILE.html there draws the points); at most\n"
    "  --max-evals N compiles (default 80). --plan FILE compiles a plan again, the same bytes\n"
    "  (docs/budget.md).\n"
    "--stream, --state IN=OUT (run): runs a bundle chunk after chunk: each input file that is\n"
    "  not a state holds the chunks along a new first axis, and output_<i>.npy stacks each\n"
    "  chunk's output the same way. --state keeps input IN in the session, fed by output OUT of\n"
    "  the chunk before (an LSTM's h and c, a detector's state); IN's file, if given, is the\n"
    "  first chunk's state, else zeros (runtime/README.md \"Streaming\").\n"
    "bench: runs N times (default 100, at most 10000000) and prints the median time; without\n"
    "  input files it times zeros.\n"
    "--max-trip-count N (compile): a Loop whose trip count or condition only the run knows\n"
    "  (a while loop) is unrolled to N iterations, those past its end keeping its values; N is\n"
    "  a promise: a run that would go on past N stops there (docs/control-flow.md).\n"
    "--max-length N (compile): a Range whose start, limit or delta only the run knows gives\n"
    "  at most N elements: its output is planned for N and its length is the run's\n"
    "  (docs/dynamic-shapes.md; NonZero, Unique, NonMaxSuppression, Compress and TopK are\n"
    "  bounded by their inputs' sizes without it).\n"
    "--winograd (compile): stride-1 3x3 Conv layers of whole 4x4 output blocks as Winograd\n"
    "  F(4x4, 3x3), a quarter of the multiplies, with about 6x the rounding error of the direct\n"
    "  sum, which exceeds the float tolerance on some outputs; without it, such layers with\n"
    "  enough channels take F(2x2, 3x3), within the tolerance (docs/kernel.md \"Winograd\").\n"
    "  Also MOSS_WINOGRAD=on; MOSS_WINOGRAD=off takes neither.\n"
    "--threads N (run, bench): runs a bundle on N threads (default: the cores moss may use;\n"
    "  at most 1024): the parts its parallel loops were cut into at compile time, for the\n"
    "  target's cores. The outputs are the same bits for any N. C and --emit obj run one thread.\n"
    "--profile (run, bench): times every step of the bundle's plan through libmossrt (one step\n"
    "  per layer on the CPU) and prints each layer's median beside the compiler's estimate;\n"
    "  where an energy counter is readable (RAPL, NVML) it is read over >= 1 s of runs.\n"
    "  --profile-csv FILE.csv writes the table as CSV too, one row per layer.\n"
    "  compile --profile runs the new bundle here (100 runs, on zeros) and puts the measured\n"
    "  time per layer, and the platform energy from it (measured:clock), in the --report.\n"
    "--cache-key (compile): prints the compile's cache key, a SHA-256 in hex, and writes\n"
    "  nothing. It covers moss's version and the build IDs of the moss binary and the\n"
    "  libraries it loaded; the bytes of every file the compile reads (the model and its\n"
    "  external data, the target XML, every file its inherit= chain reaches, the schema,\n"
    "  plugin libraries, --constant files, the --calibration file or each .npy of its folder\n"
    "  in name order, the --sign key); the target as resolved (host: this machine's\n"
    "  figures); the model's file name, --name, --emit, --input-shape, --prune, --quantize,\n"
    "  --calibration-method, --keep-float, --float16, --grid-intensity, --report's extension,\n"
    "  --max-trip-count, --max-length, --profile, --sign, --winograd (MOSS_WINOGRAD) and\n"
    "  MOSS_SPARSE; with --quantize the host target (calibration runs here); where $CC builds\n"
    "  code (a bundle's C backend code, calibration) $CC, MOSS_CFLAGS and `$CC --version`.\n"
    "  Not -o, -q, -v, --explain, --dump-*, --eval, nor any path or time: the same inputs in\n"
    "  another folder give the same key and byte-identical outputs (--profile's measured\n"
    "  times excepted). MOSS_CACHE_KEY_TEXT=1 prints the text hashed on stderr.\n"
    "--depfile FILE (compile): also writes FILE, a Make rule 'OUTPUT: FILE...' (GNU make and\n"
    "  Ninja escapes) naming, as absolute paths, every file the key hashes; OUTPUT is -o for\n"
    "  a bundle, OUT/<name>.c for --emit c, OUT/<name>.o for --emit obj, as given.\n"
    "--sign KEY: signs the bundle with the Ed25519 secret key in KEY (moss keygen); then\n"
    "  run --public-key KEY.pub, or an application giving libmossrt the public key, refuses\n"
    "  it if one byte changes, and refuses unsigned bundles (runtime/README.md).\n"
    "keygen: writes a new Ed25519 key pair, the secret key to KEY (64 raw bytes, mode 0600)\n"
    "  and the public key to KEY.pub (32 raw bytes); it replaces no existing file.\n"
    "eval: runs a bundle on X.npy (in batches of its input), compares the argmax over the last\n"
    "  axis of output 0 with the labels Y.npy (int64 or int32) and prints the accuracy.\n"
    "compare: costs the model on each target and ranks them by platform-model energy (complete\n"
    "  figures first; partial ones marked *, not-modeled ?), with time and memory; --report\n"
    "  FILE.html draws the ranking; --report FILE.json writes it as rows, one per target.\n";

/* The context and the name of the command being run, for the messages
 * about its command line. */
static moss_ctx *cli;
static const char *cli_command;

/* A mistake on the command line: one diagnostic, "moss: invalid-model:
 * <reason>" (the command line is input as the model is), then the synopsis.
 * Returns 0; the command exits with status 2. */
#define USAGE(...) usage_fail(__LINE__, __VA_ARGS__)
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int usage_fail(int line, const char *fmt, ...) {
  const char *file = cli->file;
  va_list ap;
  cli->file = NULL; /* no file: "moss: ..." */
  va_start(ap, fmt);
  moss_diag_vfail_about(cli, __FILE__, line, MOSS_E_INVALID_MODEL, NULL, NULL, fmt, ap);
  va_end(ap);
  cli->file = file;
  { /* the command's own lines of the synopsis, else all of it */
    char head[64];
    const char *p = NULL, *end;
    if (cli_command) {
      snprintf(head, sizeof head, "\n  moss %s ", cli_command);
      p = strstr(usage, head);
    }
    end = p ? strstr(p + 1, "\n  moss ") : NULL;
    p = p ? p + 1 : strchr(usage, '\n') + 1;
    if (!end || end > strstr(usage, "\n\n")) end = strstr(usage, "\n\n");
    fprintf(stderr, "usage:\n%.*s\n(moss --help explains every option)\n", (int)(end - p), p);
  }
  return 0;
}

static int need_arg(int i, int argc, const char *flag) {
  if (i + 1 >= argc) return USAGE("%s needs a value", flag);
  return 1;
}

/* |s| as a count from 1 to |max|, else 0 and a message saying what is wrong. */
static int parse_count(const char *flag, const char *s, long max, int *out) {
  char *end;
  long v;
  errno = 0;
  v = strtol(s, &end, 10);
  if (end == s || *end || s[0] == '-' || s[0] == '+' || s[0] == ' ')
    return USAGE("%s '%s': not a whole number", flag, s);
  if (errno == ERANGE || v > max) return USAGE("%s %s: too large (at most %ld)", flag, s, max);
  if (v < 1) return USAGE("%s %s: must be at least 1", flag, s);
  *out = (int)v;
  return 1;
}

static int add_binding(moss_compile_opts *o, const char *arg, int is_file) {
  const char *eq = strchr(arg, '=');
  moss_onnx_binding *b;
  char *name;
  int i;
  if (!eq || eq == arg)
    return USAGE("%s: expected NAME=%s, got '%s'", is_file ? "--constant" : "--input-shape",
                 is_file ? "FILE" : "SHAPE", arg);
  for (i = 0; i < o->nbindings; i++) /* one binding per input: a second would be ignored */
    if (strlen(o->bindings[i].name) == (size_t)(eq - arg) &&
        !strncmp(o->bindings[i].name, arg, (size_t)(eq - arg)))
      return USAGE("%s %s: input '%s' is already bound by %s %s=%s",
                   is_file ? "--constant" : "--input-shape", arg, o->bindings[i].name,
                   o->bindings[i].file ? "--constant" : "--input-shape", o->bindings[i].name,
                   o->bindings[i].file ? o->bindings[i].file : o->bindings[i].shape);
  b = realloc(o->bindings, sizeof *b * (size_t)(o->nbindings + 1));
  name = malloc((size_t)(eq - arg) + 1);
  if (!b || !name) {
    free(name);
    if (b) o->bindings = b;
    moss_fail(cli, MOSS_E_NOMEM, NULL, "the command line");
    return 0;
  }
  memcpy(name, arg, (size_t)(eq - arg));
  name[eq - arg] = 0;
  o->bindings = b;
  b[o->nbindings].name = name;
  b[o->nbindings].shape = is_file ? NULL : eq + 1;
  b[o->nbindings].file = is_file ? eq + 1 : NULL;
  o->nbindings++;
  return 1;
}

/* --eval after the compile: the artifact's accuracy, and with --quantize
 * the float model's too (compiled into a temporary folder). */
static int eval_after(moss_ctx *ctx, const moss_compile_opts *o, const char *x, const char *y) {
  moss_eval_result q, f;
  moss_compile_opts fo = *o;
  char out[4200], dir[4096];
  const char *tmp = getenv("TMPDIR");
  int rc = 0;
  if (o->out) snprintf(out, sizeof out, "%s", o->out);
  else {
    const char *base = strrchr(o->model, '/');
    base = base ? base + 1 : o->model;
    if (o->name) snprintf(out, sizeof out, "%s.moss", o->name);
    else snprintf(out, sizeof out, "%.*s.moss", (int)(strcspn(base, ".") ? strcspn(base, ".") : strlen(base)), base);
  }
  if (moss_eval_artifact(ctx, out, x, y, &q) != MOSS_OK) return 1;
  if (!o->quantize) {
    printf("accuracy %.6f (%lld/%lld)\n", q.accuracy, (long long)q.right, (long long)q.n);
    return 0;
  }
  snprintf(dir, sizeof dir, "%s/moss-eval-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    fprintf(stderr, "moss compile: --eval: cannot make a temporary folder\n");
    return 1;
  }
  snprintf(out, sizeof out, "%s/float.moss", dir);
  fo.quantize = NULL;
  fo.depfile = NULL;
  fo.inputs = NULL;
  fo.out = out;
  fo.verbose = 0;
  fo.report = NULL;
  fo.explain = 0;
  fo.dump_ir = 0;
  fo.dump_kernels = 0;
  fo.dump_after = NULL;
  if (moss_compile(ctx, &fo) != MOSS_OK || moss_eval_artifact(ctx, out, x, y, &f) != MOSS_OK) rc = 1;
  remove(out);
  rmdir(dir);
  if (rc) return rc;
  printf("accuracy float %.6f (%lld/%lld), int8 %.6f (%lld/%lld), change %+.6f\n", f.accuracy,
         (long long)f.right, (long long)f.n, q.accuracy, (long long)q.right, (long long)q.n,
         q.accuracy - f.accuracy);
  return 0;
}

static int cmd_compile(moss_ctx *ctx, int argc, char **argv) {
  moss_compile_opts o;
  const char *eval_x = NULL, *eval_y = NULL, *budget = NULL, *plan = NULL;
  moss_budget_opts bo;
  int i, ok = 1, rc;
  moss_compile_inputs key; /* --cache-key */
  memset(&key, 0, sizeof key);
  memset(&o, 0, sizeof o);
  memset(&bo, 0, sizeof bo);
  o.verbose = 1;
  for (i = 2; i < argc && ok; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--target") && (ok = need_arg(i, argc, a))) o.target = argv[++i];
    else if (!strcmp(a, "--emit") && (ok = need_arg(i, argc, a))) o.emit = argv[++i];
    else if (!strcmp(a, "-o") && (ok = need_arg(i, argc, a))) o.out = argv[++i];
    else if (!strcmp(a, "--name") && (ok = need_arg(i, argc, a))) o.name = argv[++i];
    else if (!strcmp(a, "--input-shape") && (ok = need_arg(i, argc, a))) ok = add_binding(&o, argv[++i], 0);
    else if (!strcmp(a, "--constant") && (ok = need_arg(i, argc, a))) ok = add_binding(&o, argv[++i], 1);
    else if (!strcmp(a, "--dump-ir")) o.dump_ir = 1;
    else if (!strcmp(a, "--dump-kernels")) o.dump_kernels = 1;
    else if (!strcmp(a, "--winograd")) setenv("MOSS_WINOGRAD", "on", 1); /* lower_winograd.c reads it */
    else if (!strcmp(a, "--explain")) o.explain = 1;
    else if (!strcmp(a, "--max-trip-count") && (ok = need_arg(i, argc, a)))
      ok = parse_count(a, argv[++i], 100000, &o.max_trip_count);
    else if (!strcmp(a, "--max-length") && (ok = need_arg(i, argc, a)))
      ok = parse_count(a, argv[++i], 100000000, &o.max_length);
    else if (!strcmp(a, "--profile")) o.profile = 1;
    else if (!strcmp(a, "--prune") && (ok = need_arg(i, argc, a))) o.prune = argv[++i];
    else if (!strcmp(a, "--report") && (ok = need_arg(i, argc, a))) o.report = argv[++i];
    else if (!strcmp(a, "--grid-intensity") && (ok = need_arg(i, argc, a))) {
      char *end;
      o.grid_intensity = strtod(argv[++i], &end);
      if (*end || end == argv[i] || !(o.grid_intensity > 0) || o.grid_intensity > 1e5)
        ok = USAGE("--grid-intensity wants gCO2e/kWh, a number above 0 and at most 1e5, got "
                   "'%s'", argv[i]);
    }
    else if (!strcmp(a, "--quantize") && (ok = need_arg(i, argc, a))) {
      o.quantize = argv[++i];
      if (strcmp(o.quantize, "int8")) {
        moss_fail(ctx, MOSS_E_UNSUPPORTED, NULL, "--quantize %s: only int8 is supported",
                  o.quantize);
        ok = 0;
      }
    } else if (!strcmp(a, "--calibration") && (ok = need_arg(i, argc, a))) o.calibration = argv[++i];
    else if (!strcmp(a, "--calibration-method") && (ok = need_arg(i, argc, a))) {
      double p;
      o.calib_method = argv[++i];
      ok = moss_ptq_parse_method(ctx, o.calib_method, &p) == MOSS_OK;
    } else if (!strcmp(a, "--keep-float") && (ok = need_arg(i, argc, a))) o.keep_float = argv[++i];
    else if (!strcmp(a, "--float16") && (ok = need_arg(i, argc, a))) o.float16 = argv[++i];
    else if (!strcmp(a, "--eval") && (ok = need_arg(i, argc, a))) {
      size_t l;
      eval_x = argv[++i];
      /* Y is optional for --budget rel-l2:R: the next argument is Y unless it is an option
       * or the model (.onnx) */
      l = i + 1 < argc ? strlen(argv[i + 1]) : 0;
      if (l && argv[i + 1][0] != '-' && !(l > 5 && !strcmp(argv[i + 1] + l - 5, ".onnx")))
        eval_y = argv[++i];
    }
    else if (!strcmp(a, "--budget") && (ok = need_arg(i, argc, a))) budget = argv[++i];
    else if (!strcmp(a, "--plan") && (ok = need_arg(i, argc, a))) plan = argv[++i];
    else if (!strcmp(a, "--plan-out") && (ok = need_arg(i, argc, a))) bo.plan_out = argv[++i];
    else if (!strcmp(a, "--budget-report") && (ok = need_arg(i, argc, a))) bo.report = argv[++i];
    else if (!strcmp(a, "--max-evals") && (ok = need_arg(i, argc, a)))
      ok = parse_count(a, argv[++i], 10000, &bo.max_evals); /* each point holds its plan */
    else if (!strncmp(a, "--dump-after=", 13)) o.dump_after = a + 13;
    else if (!strcmp(a, "-q")) o.verbose = 0;
    else if (!strcmp(a, "-v")) o.timings = 1;
    else if (!strcmp(a, "--sign") && (ok = need_arg(i, argc, a))) o.sign_key = argv[++i];
    else if (!strcmp(a, "--cache-key")) o.inputs = &key, key.only = 1;
    else if (!strcmp(a, "--depfile") && (ok = need_arg(i, argc, a))) o.depfile = argv[++i];
    else if (!ok) break; /* said by need_arg */
    else if (a[0] == '-') ok = USAGE("compile: unknown option '%s'", a);
    else if (!o.model) o.model = a;
    else ok = USAGE("compile: more than one model given ('%s', '%s')", o.model, a);
  }
  if (!o.verbose || o.timings) moss_progress_enable(0); /* -q, or -v's lines instead */
  if (ok && !o.model) ok = USAGE("compile: no model given");
  if (ok && (budget || plan)) { /* the search or the plan decides these (budget.c) */
    if (budget && plan) ok = USAGE("--budget searches a plan and --plan replays one: give one");
    else if (o.quantize || o.keep_float || o.float16 || o.prune)
      ok = USAGE("%s sets each layer's precision and sparsity: drop --quantize, --keep-float, "
                 "--float16 and --prune", budget ? "--budget" : "--plan");
    else if (budget && (o.inputs || o.depfile))
      ok = USAGE("--cache-key and --depfile do not cover --budget yet (they cover --plan)");
    else if (budget && !eval_x)
      ok = USAGE("--budget %s needs --eval X.npy Y.npy: the accuracy it bounds is measured "
                 "there", budget);
    else if (budget)
      ok = moss_budget_parse(ctx, budget, &bo.budget, &bo.rel_l2) == MOSS_OK;
    if (ok && budget && !bo.rel_l2 && !eval_y)
      ok = USAGE("--budget %s needs --eval X.npy Y.npy: top-1 accuracy needs the labels Y "
                 "(or give --budget rel-l2:R, which needs X only)", budget);
  }
  if (ok && eval_x && !eval_y && !budget)
    ok = USAGE("--eval needs two files, X.npy and Y.npy");
  if (ok && !budget && (bo.plan_out || bo.report || bo.max_evals))
    ok = USAGE("--plan-out, --budget-report and --max-evals need --budget");
  if (ok && !!o.quantize != !!o.calibration && !budget && !plan &&
      !(o.calibration && moss_prune_needs_power(o.prune)))
    ok = USAGE("%s", o.quantize ? "--quantize int8 needs --calibration DATA (a .npy batch of "
               "typical inputs, or a folder of them)"
               : "--calibration needs --quantize int8 (or --prune columns-act:R)");
  if (ok && (o.calib_method || o.keep_float) && !o.quantize && !budget && !plan)
    ok = USAGE("--calibration-method and --keep-float need --quantize int8");
  if (ok && eval_x && !budget && o.emit && strcmp(o.emit, "bundle"))
    ok = USAGE("--eval runs a bundle; drop --emit %s", o.emit);
  if (ok && budget) {
    bo.eval_x = eval_x;
    bo.eval_y = eval_y;
    eval_x = NULL; /* the search prints the accuracies */
    rc = moss_budget_search(ctx, &o, &bo) == MOSS_OK ? 0 : 1;
  } else if (ok && plan) rc = moss_plan_compile(ctx, &o, plan) == MOSS_OK ? 0 : 1;
  else rc = ok ? (moss_compile(ctx, &o) == MOSS_OK ? 0 : 1) : 2;
  if (rc == 0 && key.only) printf("%s\n", key.key); /* and nothing else is written */
  else if (rc == 0 && eval_x) rc = eval_after(ctx, &o, eval_x, eval_y);
  for (i = 0; i < o.nbindings; i++) free((char *)o.bindings[i].name);
  free(o.bindings);
  return rc;
}

static int cmd_run(moss_ctx *ctx, int argc, char **argv, int bench) {
  moss_run_opts o;
  const char **ins = calloc((size_t)argc + 1, sizeof *ins);
  const char **states = calloc((size_t)argc + 1, sizeof *states);
  int i, ok = 1, rc;
  if (!ins || !states) {
    free(ins);
    free(states);
    return 1;
  }
  memset(&o, 0, sizeof o);
  o.outdir = bench ? NULL : ".";
  o.iterations = bench ? 100 : 1;
  o.zeros = bench; /* moss bench with no input file times zeros; moss run never */
  for (i = 2; i < argc && ok; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-o") && (ok = need_arg(i, argc, a))) o.outdir = argv[++i];
    else if (!strcmp(a, "--input") && (ok = need_arg(i, argc, a))) ins[o.ninputs++] = argv[++i];
    else if (!strcmp(a, "--iterations") && (ok = need_arg(i, argc, a)))
      ok = parse_count(a, argv[++i], 10000000, &o.iterations); /* 80 MB of timings at most */
    else if (!strcmp(a, "--threads") && (ok = need_arg(i, argc, a)))
      ok = parse_count(a, argv[++i], 1024, &o.threads); /* mossrt_session_set_threads' limit */
    else if (!strcmp(a, "--time")) o.print_time = 1;
    else if (!strcmp(a, "--profile")) o.profile = 1;
    else if (!strcmp(a, "--profile-csv") && (ok = need_arg(i, argc, a)))
      o.profile_csv = argv[++i], o.profile = 1;
    else if (!strcmp(a, "--public-key") && (ok = need_arg(i, argc, a))) o.public_key = argv[++i];
    else if (!strcmp(a, "--stream") && !bench) o.stream = 1;
    else if (!strcmp(a, "--state") && !bench && (ok = need_arg(i, argc, a))) {
      if (!strchr(argv[i + 1], '=')) ok = USAGE("%s: --state takes INPUT=OUTPUT, not '%s'", argv[1], argv[i + 1]);
      states[o.nstates++] = argv[++i];
      o.stream = 1;
    } else if (!ok) break; /* said by need_arg */
    else if (a[0] == '-' && a[1]) ok = USAGE("%s: unknown option '%s'", argv[1], a);
    else if (!o.artifact) o.artifact = a;
    else ins[o.ninputs++] = a;
  }
  if (ok && !o.artifact) ok = USAGE("%s: no artifact given", argv[1]);
  o.inputs = ins;
  o.states = states;
  rc = ok ? (moss_run_artifact(ctx, &o) == MOSS_OK ? 0 : 1) : 2;
  free(ins);
  free(states);
  return rc;
}

static int dispatch(moss_ctx *ctx, int argc, char **argv) {
  static const char *const commands[] = {"compile", "run",     "bench", "eval",
                                          "compare", "targets", "keygen"};
  size_t k;
  for (k = 0; argc > 1 && k < sizeof commands / sizeof commands[0]; k++)
    if (!strcmp(argv[1], commands[k])) cli_command = commands[k];
  if (argc < 2) {
    USAGE("no command given");
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    fputs(usage, stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("moss %s\n", MOSS_VERSION);
    return 0;
  }
  if (!strcmp(argv[1], "compile")) return cmd_compile(ctx, argc, argv);
  if (!strcmp(argv[1], "run")) return cmd_run(ctx, argc, argv, 0);
  if (!strcmp(argv[1], "bench")) return cmd_run(ctx, argc, argv, 1);
  if (!strcmp(argv[1], "eval")) {
    moss_eval_result r;
    if (argc != 5) {
      USAGE("eval: expected ARTIFACT X.npy Y.npy");
      return 2;
    }
    if (moss_eval_artifact(ctx, argv[2], argv[3], argv[4], &r) != MOSS_OK) return 1;
    printf("accuracy %.6f (%lld/%lld)\n", r.accuracy, (long long)r.right, (long long)r.n);
    return 0;
  }
  if (!strcmp(argv[1], "compare")) return moss_compare_cli(ctx, argc - 1, argv + 1) == MOSS_OK ? 0 : 1;
  if (!strcmp(argv[1], "targets")) return moss_targets_cli(ctx, argc - 1, argv + 1) == MOSS_OK ? 0 : 1;
  if (!strcmp(argv[1], "keygen")) { /* keys of signed bundles (keys.c) */
    if (argc != 3 || argv[2][0] == '-') {
      USAGE("keygen: expected KEY, the file for the secret key (KEY.pub gets the public key)");
      return 2;
    }
    return moss_keygen(ctx, argv[2]) == MOSS_OK ? 0 : 1;
  }
  USAGE("unknown command '%s'", argv[1]);
  return 2;
}

/* An installed moss (cmake --install) keeps its targets in
 * <prefix>/share/moss/targets, next to <prefix>/bin/moss: use them unless
 * MOSS_TARGETS_DIR says otherwise. A moss run from its build tree has none
 * there and keeps the folder compiled in (the source tree's targets/). */
static void find_installed_targets(void) {
  static const char rel[] = "/../share/moss/targets";
  char exe[4096], dir[4096 + sizeof rel + 32];
  ssize_t n;
  char *slash;
  const char *env = getenv("MOSS_TARGETS_DIR");
  if (env && *env) return;
  n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return;
  exe[n] = '\0';
  if (!(slash = strrchr(exe, '/'))) return;
  *slash = '\0';
  snprintf(dir, sizeof dir, "%s%s/moss-target.xsd", exe, rel);
  if (access(dir, R_OK) != 0) return;
  dir[strlen(dir) - strlen("/moss-target.xsd")] = '\0';
  if (realpath(dir, exe)) setenv("MOSS_TARGETS_DIR", exe, 1); /* no bin/.. in messages */
}

int main(int argc, char **argv) {
  moss_ctx ctx;
  moss_file_set files;
  int rc;
  find_installed_targets();
  moss_ctx_init(&ctx, moss_allocator_libc());
  ctx.sink = print_diag;
  if (getenv("MOSS_VERIFY")) ctx.debug = 1;
  memset(&files, 0, sizeof files);
  ctx.files = &files; /* what the command reads and writes: no output replaces an input */
  cli = &ctx;
  moss_progress_enable(isatty(2)); /* compile -q and compare -q turn it off */
  rc = dispatch(&ctx, argc, argv);
  moss_file_set_deinit(&ctx, &files);
  return rc;
}
