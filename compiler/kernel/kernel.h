/* kernel.h - the kernel description: what one node computes, written once
 * by its operator family's lowering (compiler/kernel/lower_<family>.c) and
 * read by every backend (backends/c prints it as C99, backends/llvm builds
 * LLVM IR from it; the GPU backends map its parallel loops to work-items).
 * docs/kernel.md explains the design and how to add an operator.
 *
 * A kernel is a tree of statements (loops, stores, scalar or vector local
 * variables, conditionals) over typed expressions (constants, variables,
 * loads through index expressions, arithmetic, comparisons, selects, casts
 * and a small set of intrinsics). Memory is reached only through the
 * kernel's buffers: the node's inputs and outputs (wherever the planner put
 * them: graph I/O, arena offsets, weights), constant tables the lowering
 * made (packed weights, lookup tables) and small private arrays. Shapes are
 * static, so extents and strides are constants baked into the
 * expressions; loop bounds may still be expressions (tiles with a
 * remainder, sparse rows, the valid window of a padded pool).
 *
 * Semantics every backend implements the same way (so outputs agree across
 * backends; int8 bit for bit):
 * - Integer arithmetic wraps in the expression's type. DIV and REM
 *   truncate toward zero; a zero divisor gives 0.
 * - MIN(a, b) is `a < b ? a : b` and MAX(a, b) `a > b ? a : b`, on floats
 *   too (a NaN in |a| gives |b|); FMIN/FMAX are C's fmin/fmax.
 * - SELECT evaluates both sides (they have no side effects; loads in them
 *   must be in bounds); LOAD_OR never reads when its condition is false.
 * - CAST converts values as C does; BOOL is 0 or 1.
 * - SAT converts an integer to a narrower integer type, clamping to its
 *   range. REQUANT is docs/numerics-int8.md's requantization.
 * - Math intrinsics are the C library's float functions of the type. */
#ifndef MOSS_KERNEL_H
#define MOSS_KERNEL_H

#include "../ir/ir.h"

/* Expression operators. */
typedef enum moss_kx_op {
  MOSS_KX_CONST = 1, /* |i| for integers and BOOL, |f| for floats */
  MOSS_KX_VAR,       /* variable |var| (a loop index or a local) */
  MOSS_KX_LOAD,      /* buf[a[0]]; with lanes > 1 the |lanes| elements from a[0] on */
  MOSS_KX_LOAD_OR,   /* a[1] ? buf[a[0]] : a[2], reading nothing when a[1] is false */
  MOSS_KX_CAST,      /* a[0] converted to the expression's type */
  MOSS_KX_SPLAT,     /* scalar a[0] in every lane */
  MOSS_KX_HSUM,      /* the sum of a[0]'s lanes, in lane order */
  MOSS_KX_NEG,
  MOSS_KX_NOT,       /* logical: BOOL result */
  MOSS_KX_BNOT,      /* bitwise */
  MOSS_KX_ADD,
  MOSS_KX_SUB,
  MOSS_KX_MUL,
  MOSS_KX_DIV,
  MOSS_KX_REM,
  MOSS_KX_MIN,
  MOSS_KX_MAX,
  MOSS_KX_BAND,
  MOSS_KX_BOR,
  MOSS_KX_BXOR,
  MOSS_KX_SHL,
  MOSS_KX_SHR,       /* arithmetic for signed types, logical for unsigned */
  MOSS_KX_LAND,      /* BOOL operands */
  MOSS_KX_LOR,
  MOSS_KX_EQ,        /* comparisons: BOOL result (per lane) */
  MOSS_KX_NE,
  MOSS_KX_LT,
  MOSS_KX_LE,
  MOSS_KX_GT,
  MOSS_KX_GE,
  MOSS_KX_SELECT,    /* a[0] ? a[1] : a[2] */
  MOSS_KX_CALL,      /* intrinsic |fn| of a[0..nargs) */
  MOSS_KX_COUNT_
} moss_kx_op;

/* Intrinsics. Float ones take and give the expression's float type. */
#define MOSS_KERNEL_INTRINSICS(X)                                                      \
  X(EXP, "exp", 1) X(LOG, "log", 1) X(SQRT, "sqrt", 1) X(TANH, "tanh", 1)              \
  X(ERF, "erf", 1) X(SIN, "sin", 1) X(COS, "cos", 1) X(TAN, "tan", 1)                  \
  X(ASIN, "asin", 1) X(ACOS, "acos", 1) X(ATAN, "atan", 1) X(SINH, "sinh", 1)          \
  X(COSH, "cosh", 1) X(ASINH, "asinh", 1) X(ACOSH, "acosh", 1) X(ATANH, "atanh", 1)    \
  X(FLOOR, "floor", 1) X(CEIL, "ceil", 1) X(RINT, "rint", 1) X(TRUNC, "trunc", 1)      \
  X(FABS, "fabs", 1) X(LOG1P, "log1p", 1) X(POW, "pow", 2) X(FMOD, "fmod", 2)          \
  X(FMIN, "fmin", 2) X(FMAX, "fmax", 2) X(FMA, "fma", 3) X(ISNAN, "isnan", 1)          \
  X(ISINF, "isinf", 1) X(ABS, "abs", 1) X(SAT, "sat", 1) X(REQUANT, "requant", 3)         \
  X(DOT4, "dot4", 3) X(DOT4S, "dot4s", 3) X(BITS, "bits", 1) X(TBL128, "tbl128", 3)

typedef enum moss_kfn {
#define MOSS_KFN_ENUM(name, text, nargs) MOSS_KFN_##name,
  MOSS_KERNEL_INTRINSICS(MOSS_KFN_ENUM)
#undef MOSS_KFN_ENUM
  MOSS_KFN_COUNT_
} moss_kfn;

/* An expression: a tree node in the kernel's arena, never shared between
 * kernels. ISNAN/ISINF give BOOL; REQUANT takes (int32 acc, int32 mult,
 * int32 shift) and gives int32. DOT4(acc, a, w) takes three int32
 * operands whose lanes hold four bytes each, a's unsigned and w's signed,
 * and gives acc + the sum of the four byte products per lane (wrapping):
 * x86's vpdpbusd. DOT4S is the same with a's bytes signed too: AArch64's
 * sdot. TBL128(t0, t1, idx) takes three vectors of 64 bytes (idx U8) and
 * gives, per lane, byte (idx & 127) of the 128-byte table t0:t1 (t0's
 * when under 64): x86's vpermi2b; t0 and t1 are variables. */
typedef struct moss_kx {
  moss_kx_op op;
  moss_dtype dt;        /* element type of the result */
  int lanes;            /* 1: scalar; > 1: a vector of |lanes| elements */
  int nargs;
  struct moss_kx *a[3];
  int64_t i;            /* CONST of an integer or BOOL type */
  double f;             /* CONST of a float type */
  int var;              /* VAR */
  int buf;              /* LOAD, LOAD_OR */
  moss_kfn fn;          /* CALL */
} moss_kx;

/* Loop roles: what a backend may do with the iterations. */
typedef enum moss_kloop_role {
  MOSS_KL_SERIAL = 0,   /* in order */
  MOSS_KL_PARALLEL,     /* independent iterations: threads, GPU work-items */
  MOSS_KL_REDUCE,       /* accumulates into a variable declared outside */
  MOSS_KL_VECTOR,       /* independent, contiguous: vectorize by |width| lanes */
  MOSS_KL_UNROLL,       /* unroll fully (|width| 0) or by |width| */
  MOSS_KL_GROUP         /* the lanes of one GPU work-group: the iterations [0, T) run at once,
                         * each in a work-item of its own with its own variables (those
                         * declared inside the loop, and copies of those outside), all of one
                         * work-group, which shares the kernel's SHARED buffers and meets at
                         * BARRIERs. Only on a GPU (moss_kernel_cpu.group_max >= T), only as the
                         * innermost loop of moss_kernel_grid, bounds the constants 0 and T,
                         * step 1: the work-group is T work-items, and lane t is the work-item
                         * of local index t. A BARRIER in it must be reached by every lane
                         * alike: not inside a branch or a loop whose condition or trip count
                         * differs between lanes. The CPU backends refuse it. */
} moss_kloop_role;

typedef enum moss_ks_kind {
  MOSS_KS_LOOP = 1, /* for var = lo; var < hi; var += step: body */
  MOSS_KS_STORE,    /* buf[index] = value (a vector stores |lanes| elements) */
  MOSS_KS_LET,      /* declares variable |var| with the initial value |value| */
  MOSS_KS_SET,      /* var = value */
  MOSS_KS_IF,       /* if (cond) body else orelse */
  MOSS_KS_COMMENT,  /* a line of text for readers of the generated code */
  MOSS_KS_BARRIER   /* inside a GROUP loop: every lane of the work-group reaches this point
                     * before any goes on, and the lanes' stores to SHARED buffers before it
                     * are seen by every lane's loads after it */
} moss_ks_kind;

typedef struct moss_kstmt {
  moss_ks_kind kind;
  struct moss_kstmt *next;
  int var;                     /* LOOP, LET, SET */
  int buf;                     /* STORE */
  moss_kx *lo, *hi;            /* LOOP bounds (I64) */
  int64_t step;                /* LOOP, >= 1 */
  moss_kloop_role role;        /* LOOP */
  int width;                   /* LOOP: vector lanes or unroll factor, 0: unspecified */
  int parts;                   /* LOOP (parallel): its iterations are cut into |parts| contiguous
                                * ranges that threads may run at once (moss_kernel_plan_parts;
                                * 0: not cut, the loop runs where it stands) */
  moss_kx *index, *value;      /* STORE; LET and SET use |value| */
  moss_kx *cond;               /* IF */
  struct moss_kstmt *body;     /* LOOP, IF */
  struct moss_kstmt *orelse;   /* IF */
  const char *text;            /* COMMENT */
} moss_kstmt;

typedef enum moss_kbuf_kind {
  MOSS_KB_INPUT = 1, /* the node's input |index| (read only) */
  MOSS_KB_OUTPUT,    /* the node's output |index| */
  MOSS_KB_TABLE,     /* constant data the lowering made: |data|, |numel| elements */
  MOSS_KB_LOCAL,     /* private scratch of |numel| elements, uninitialized */
  MOSS_KB_SCRATCH,   /* |numel| elements of the node's arena scratch from byte |offset|
                      * on (node->scratch_offset + offset in the arena), uninitialized:
                      * for scratch too large for a stack */
  MOSS_KB_SHARED     /* |numel| elements shared by the lanes of one GPU work-group (OpenCL's
                      * __local, CUDA's __shared__, Vulkan's Workgroup storage),
                      * uninitialized; only in kernels with a GROUP loop */
} moss_kbuf_kind;

typedef struct moss_kbuf {
  moss_kbuf_kind kind;
  int index;               /* INPUT, OUTPUT */
  const moss_value *value; /* INPUT, OUTPUT */
  moss_dtype dt;
  int64_t numel;
  const void *data;        /* TABLE (kernel arena) */
  int64_t offset;          /* SCRATCH: bytes from the node's scratch */
  const char *name;        /* for readers: "x0", "y0", "table", "acc" */
} moss_kbuf;

typedef struct moss_kvar {
  const char *name;
  moss_dtype dt;
  int lanes;
  int is_loop;
} moss_kvar;

/* One node's computation. */
typedef struct moss_kernel {
  const moss_node *node;
  moss_kbuf *bufs;
  int nbufs;
  moss_kvar *vars;
  int nvars;
  moss_kstmt *body;
} moss_kernel;

/* What a lowering may know of the machine the code is for, filled by the
 * backend (moss_kernel_cpu_from_codegen); all zero: nothing is known and
 * the lowering writes portable scalar loops. The fast CPU paths (the
 * register-tiled matrix product, lower_tile.c) read it. */
typedef struct moss_kernel_cpu {
  int vector_bytes; /* width of one SIMD register; 0: no SIMD */
  int vector_regs;  /* SIMD (or FP) registers the code may use */
  int fma;          /* a fused multiply-add instruction (no libm call) */
  int dot4;         /* int32 lanes of one byte dot-product instruction (AVX-512 VNNI:
                     * 16, AVX-VNNI: 8, AArch64 dotprod: 4); 0: none (DOT4 is still
                     * computed, slower) */
  int dot4_signed;  /* the instruction multiplies signed bytes by signed bytes
                     * (AArch64 sdot: DOT4S), not unsigned by signed (DOT4) */
  int tbl128;       /* byte lanes of one TBL128 instruction (AVX-512 VBMI's vpermi2b:
                     * 64); 0: none (the lowerings do not use TBL128) */
  int half;         /* float16 arithmetic instructions (Armv8.2 fullfp16): the
                     * exactly rounded elementwise operators on float16 run in
                     * float16 there (passes/half.c, moss_node.native_half) */
  int no_simd;      /* the device's CPU is known to have no SIMD registers at all (its
                     * codegen triple says so: thumbv7em, riscv64 without +v), so plain
                     * loops stay scalar whatever compiles them; 0: it has them, or
                     * nothing is known */
  int threads;      /* the most threads the code may run on (the device's cores, from
                     * the target's units), for the split of parallel loops into
                     * parts; 0 or 1: one thread, no parts */
  int gpu;          /* the code runs on a GPU, one work-item per iteration of the
                     * outer parallel loops (moss_kernel_grid): the lowerings that
                     * have a GPU shape put every output element in those loops,
                     * each work-item with a reduction of its own (Gemm, MatMul,
                     * Conv); the CPU facts above are zero */
  /* The GPU's work-group limits, from the target's <codegen> (0: unknown).
   * With group_max and group_bytes both known, large matrix products and
   * convolutions are lowered as work-group tiles (GROUP loops, SHARED
   * buffers: lower_gputile.c) that fit them. */
  int group_max;         /* max-workgroup-size: the most work-items of one work-group */
  int64_t group_bytes;   /* local-memory-bytes: SHARED bytes one work-group may use */
  int subgroup;          /* subgroup-size: the work-items that run in lockstep (a warp) */
  int gpu_dot4;          /* the GPU multiplies four signed bytes packed in a word and
                          * adds them in one instruction (Vulkan's OpSDot, where the
                          * target lists DotProductInput4x8BitPacked; PTX's dp4a from
                          * sm_61): the int8 work-group tiles then use DOT4S
                          * (lower_gputile.c) */
} moss_kernel_cpu;

/* The facts of a CPU named as LLVM names it: the target triple's
 * architecture, the CPU and the feature list ("+avx2,+fma,-avx512f").
 * x86-64: 16-byte SSE, 32 with AVX, 64 and 32 registers with AVX-512F;
 * FMA with +fma, +avx512f or an x86-64-v3/v4 CPU; DOT4 with +avx512vnni
 * (and AVX-512F) or +avxvnni; TBL128 with +avx512vbmi. AArch64: 16 bytes, 32
 * registers, FMA; DOT4S with +dotprod. RISC-V 64: 16 bytes with +v (VLEN >= 128), 32
 * registers, FMA. Anything else (and NULL): nothing known. */
void moss_kernel_cpu_from_codegen(const char *triple, const char *cpu, const char *features,
                                  moss_kernel_cpu *out);

/* The builder a lowering writes through. Statements are appended at the
 * innermost open loop or branch. Any failure (no memory, an ill-typed
 * expression: our bug) is recorded once in |st|; later calls do nothing
 * and return placeholders, so a lowering checks only at the end. */
typedef struct moss_kb {
  moss_ctx *ctx;
  moss_arena *arena;
  moss_kernel *k;
  moss_status st;
  int cap_bufs, cap_vars;
  int depth;
  moss_kstmt **tail[32];   /* where the next statement goes, per open level */
  moss_kstmt *open[32];    /* the open LOOP or IF per level (open[0] unused) */
  moss_kernel_cpu cpu;     /* the machine facts a lowering may consult (zero: none) */
} moss_kb;

/* Starts a kernel for |n| in |arena| (which owns everything the kernel
 * holds, tables included), for the machine |cpu| (NULL: nothing known). */
moss_status moss_kb_init(moss_kb *b, moss_ctx *ctx, moss_arena *arena, const moss_node *n,
                         const moss_kernel_cpu *cpu);
/* Ends it: every loop and branch must be closed. */
moss_status moss_kb_finish(moss_kb *b, moss_kernel **out_kernel);
/* Records a failure (the first one wins) and returns |st|. */
moss_status moss_kb_fail(moss_kb *b, moss_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Buffers: return the buffer's index. */
int moss_k_input(moss_kb *b, int i);
int moss_k_output(moss_kb *b, int i);
int moss_k_table(moss_kb *b, const char *name, moss_dtype dt, int64_t numel, const void *data);
int moss_k_local(moss_kb *b, const char *name, moss_dtype dt, int64_t numel);
/* A SHARED buffer of the work-group (kernels with a GROUP loop). */
int moss_k_shared(moss_kb *b, const char *name, moss_dtype dt, int64_t numel);
/* |numel| elements of the node's arena scratch from byte |offset| (a
 * multiple of 64) on; they must lie within the n->scratch_bytes that
 * moss_kernel_scratch asked the planner for. */
int moss_k_arena_scratch(moss_kb *b, const char *name, moss_dtype dt, int64_t numel, int64_t offset);

/* Expressions. */
moss_kx *moss_k_int(moss_kb *b, moss_dtype dt, int64_t v);
moss_kx *moss_k_idx(moss_kb *b, int64_t v);            /* an I64 constant */
moss_kx *moss_k_zero(moss_kb *b, moss_dtype dt);       /* 0 of |dt|, integer or float */
moss_kx *moss_k_flt(moss_kb *b, moss_dtype dt, double v);
moss_kx *moss_k_var(moss_kb *b, int var);
moss_kx *moss_k_load(moss_kb *b, int buf, moss_kx *index);
moss_kx *moss_k_vload(moss_kb *b, int buf, moss_kx *index, int lanes);
moss_kx *moss_k_load_or(moss_kb *b, int buf, moss_kx *index, moss_kx *cond, moss_kx *dflt);
moss_kx *moss_k_cast(moss_kb *b, moss_dtype dt, moss_kx *a);
moss_kx *moss_k_splat(moss_kb *b, moss_kx *a, int lanes);
moss_kx *moss_k_hsum(moss_kb *b, moss_kx *a);
moss_kx *moss_k_un(moss_kb *b, moss_kx_op op, moss_kx *a);
/* Binary operators. A scalar operand of a vector operation is splatted. */
moss_kx *moss_k_bin(moss_kb *b, moss_kx_op op, moss_kx *x, moss_kx *y);
moss_kx *moss_k_select(moss_kb *b, moss_kx *c, moss_kx *x, moss_kx *y);
moss_kx *moss_k_call(moss_kb *b, moss_kfn fn, moss_kx *x, moss_kx *y, moss_kx *z);
/* A saturating conversion to the integer type |dt|. */
moss_kx *moss_k_sat(moss_kb *b, moss_dtype dt, moss_kx *a);
/* The bits of |a| as the type |dt| of the same size (BITS: float32 and
 * int32, float64 and int64). */
moss_kx *moss_k_bits(moss_kb *b, moss_dtype dt, moss_kx *a);
/* Index arithmetic on I64 with constants folded: x + c, x * c. */
moss_kx *moss_k_add(moss_kb *b, moss_kx *x, moss_kx *y);
moss_kx *moss_k_mul(moss_kb *b, moss_kx *x, moss_kx *y);
moss_kx *moss_k_addc(moss_kb *b, moss_kx *x, int64_t c);
moss_kx *moss_k_mulc(moss_kb *b, moss_kx *x, int64_t c);

/* Statements. */
/* Opens `for var in [lo, hi) step |step|` and returns the loop variable's
 * expression; moss_k_end closes it. */
moss_kx *moss_k_for(moss_kb *b, const char *name, moss_kx *lo, moss_kx *hi, int64_t step,
                    moss_kloop_role role, int width);
moss_kx *moss_k_range(moss_kb *b, const char *name, int64_t extent, moss_kloop_role role);
void moss_k_if(moss_kb *b, moss_kx *cond);
void moss_k_else(moss_kb *b);
void moss_k_end(moss_kb *b);
void moss_k_store(moss_kb *b, int buf, moss_kx *index, moss_kx *value);
/* Declares a local variable initialized to |init|; returns its expression. */
moss_kx *moss_k_let(moss_kb *b, const char *name, moss_kx *init);
void moss_k_set(moss_kb *b, moss_kx *var, moss_kx *value);
void moss_k_comment(moss_kb *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* A work-group barrier (MOSS_KS_BARRIER); only inside a GROUP loop. */
void moss_k_barrier(moss_kb *b);

/* Helpers shared by the lowerings. */
/* |n|'s fused activation (n->act) applied to the float expression |v|. */
moss_kx *moss_k_act(moss_kb *b, const moss_node *n, moss_kx *v);
/* The flat index into an input of shape |in_rank|/|in_dims| broadcast (numpy
 * rules) to the output shape |rank|/|dims|, from the loop variables
 * |idx|[0..rank). */
moss_kx *moss_k_bcast_index(moss_kb *b, int rank, const int64_t *dims, moss_kx *const *idx,
                            int in_rank, const int64_t *in_dims);
/* Opens the loops over the output shape |rank|/|dims| for |nin| inputs
 * broadcast to it: one flat loop when each input's flat index is the
 * output's or 0, else one loop per dimension. Sets |out_o| to the output's
 * flat index and out_idx[j] to input j's; returns how many loops to close
 * with moss_k_end. */
int moss_k_bcast_open(moss_kb *b, int rank, const int64_t *dims, int nin, const int *in_rank,
                      const int64_t (*in_dims)[MOSS_MAX_RANK], moss_kx **out_o, moss_kx **out_idx);
/* The row-major flat index of |idx|[0..rank) in |dims|. */
moss_kx *moss_k_flat_index(moss_kb *b, int rank, const int64_t *dims, moss_kx *const *idx);

/* Whether |dt| can be computed on in a kernel (no strings; float16 and
 * bfloat16 are held as their bits, moss_dtype_storage). */
int moss_kernel_dtype_ok(moss_dtype dt);
/* |dt| in a kernel of the node |b| lowers: moss_kernel_dtype_ok, or
 * float16 where the node computes in it (moss_node.native_half). */
int moss_kb_dtype_ok(const moss_kb *b, moss_dtype dt);
/* Whether |n| may read or write float16 and bfloat16 tensors: Cast and
 * CastLike, which convert them (stored as their bits), and a node that
 * computes in float16 (moss_node.native_half); every other node computes
 * in float32 (passes/half.c puts the Casts around it). */
int moss_kernel_half_ok(const moss_node *n);
const char *moss_kx_op_name(moss_kx_op op);
const char *moss_kfn_name(moss_kfn fn);
int moss_kfn_nargs(moss_kfn fn);

/* The compile-time split for threads (parts.c): cuts each outermost
 * parallel loop of |k| (one reached through serial loops and branches
 * only) that does enough work into parts, at most 4 x |threads|, each
 * worth at least MOSS_PART_WORK operations; sets their |parts|. A loop is
 * cut only when its parts can run on their own: its body sets no variable
 * declared outside it and uses no local buffer that code outside it uses
 * (each part gets its own locals and a copy of the outer variables).
 * Which thread runs which part never changes what any part computes, so
 * the results are the same for any number of threads. */
#define MOSS_PART_WORK 16384
void moss_kernel_plan_parts(moss_kernel *k, int threads);

/* The work-item grid of |body| for a GPU backend (parts.c): a loop nest
 * of up to MOSS_GRID_MAX_LOOPS parallel loops with constant bounds, each
 * (the first: in |body|) the only loop of the statements it is in, after
 * nothing but LET statements and comments, while their trip counts
 * multiply to at most 2^31 (one 32-bit range). Fills loops[0..n) and their
 * trip counts ext[0..n), outermost first, and |*total| (their product; 1
 * when n is 0); returns n. Work-item i runs, for each loop j, the
 * iteration lo_j + (i / inner_j % ext_j) * step_j, inner_j the product of
 * the trip counts inside loop j; then the LETs before each loop, in
 * order; then the body of loops[n-1] (the whole body when n is 0: one
 * work-item). The LETs read only the loop variables outside them, so each
 * work-item may compute them itself. */
#define MOSS_GRID_MAX_LOOPS 3
/* A GROUP loop is taken as the innermost loop of the nest (a nest with one
 * ends there): the work-group size is then ext[n-1], and the launch runs
 * |*total| / ext[n-1] work-groups of that size (moss_kernel_group). */
int moss_kernel_grid(const moss_kstmt *body, const moss_kstmt **loops, int64_t *ext, int64_t *total);

/* The launches of |k| on a GPU (parts.c): where its body is nothing but
 * LETs, comments and two or more parallel loops, and it has no local
 * buffer, each loop becomes a launch of its own, run after the one before
 * (a launch's end is a barrier for every work-item), whose body, built in
 * |arena|, is the top-level LETs before that loop and the loop; so each
 * launch has a grid (moss_kernel_grid) of its own (Concat: one per input;
 * a copy, then an update). Otherwise one launch, the body itself. Fills
 * bodies[0..n) and returns n (1 .. |max|; 1 when there would be more, or
 * on no memory). */
#define MOSS_KERNEL_MAX_LAUNCHES 64
/* The work-group size a launch of |body| needs: T when its grid
 * (moss_kernel_grid) ends in a GROUP loop of T lanes; 0: any size (the
 * executor picks). */
int moss_kernel_group(const moss_kstmt *body);
int moss_kernel_launches(moss_arena *arena, const moss_kernel *k, const moss_kstmt **bodies, int max);

/* A readable text of |k| (`moss compile --dump-kernels`). */
void moss_kernel_print(const moss_kernel *k, moss_buf *out);

/* The lowering of |n|, its family's description of the node, for the
 * machine |cpu| (NULL: nothing known, portable loops). The family table
 * (lower.c) says which families have one: moss_kernel_can_lower. */
int moss_kernel_can_lower(const moss_node *n);
/* The arena scratch in bytes that |n|'s lowering for |cpu| uses (0: none):
 * the pipeline stores it in n->scratch_bytes before planning, so that the
 * planner places it; the lowering then reads n->scratch_offset. */
int64_t moss_kernel_scratch(const moss_node *n, const moss_kernel_cpu *cpu);
/* The kernels |n|'s weight formats would run on for |cpu|
 * (MOSS_SPARSE_RULE_MAKE of compiler/ops/sparse.h, whose figures the sparse
 * pass prices them with): a float Conv the implicit product takes pruned,
 * the register tile (its dense twin on Winograd where that takes it); a float Gemm or MatMul on a machine with the tile,
 * dense on it and sparse in scalar loops; a dense int8 Conv on the byte
 * dot product, with or without the instruction; else the scalar loops. */
int moss_kernel_sparse_rule(const moss_node *n, const moss_kernel_cpu *cpu);
moss_status moss_kernel_lower(moss_ctx *ctx, moss_arena *arena, const moss_node *n,
                              const moss_kernel_cpu *cpu, moss_kernel **out_kernel);

#endif
