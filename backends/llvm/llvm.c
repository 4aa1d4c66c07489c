/* llvm.c - the LLVM backend: each node's kernel description becomes an
 * internal function k<id>(in, out, arena) of one module, called in plan
 * order from <prefix>_run_v; weights are constant globals; the module is
 * verified, optimized ("default<O3>" through LLVMRunPasses, with the real
 * target machine so the vectorizers know the ISA) and emitted as an object
 * in memory. Variables live in allocas that mem2reg promotes; loops are
 * plain condition/body/latch blocks the loop passes recognize. The
 * semantics of each description operator are those of kernel.h, written to
 * match what the C backend's output computes, so the two agree: int8 bit
 * for bit, float within the DESIGN.md tolerance (only libm calls and
 * contraction choices differ; no fast-math flags are set). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/BitWriter.h>
#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "../../compiler/kernel/kernel.h"
#include "../gpu/check.h"
#include "llvm.h"
#include "moss_bundle.h"

typedef struct gen {
  const moss_llvm_gpu *gpu_t; /* moss_llvm_emit_gpu: the segment's layout */
  moss_ctx *ctx;
  moss_graph *g;
  LLVMContextRef c;
  LLVMModuleRef m;
  LLVMBuilderRef b;
  LLVMTypeRef ptr, i1, i8, i16, i32, i64, f16, f32, f64, voidt;
  LLVMTypeRef kfn_type; /* unused */
  moss_kernel_cpu cpu;  /* the machine facts kernels are lowered for (from the target machine) */
  /* Distinct kernels (shared_kernel): open addressing on their keys' hashes. */
  struct kslot {
    char sha[64];
    int node;
  } *slots;
  size_t nslots;
  moss_buf keybuf;
  /* Per node: its kernel's function, type, and the values whose storage
   * the call passes (the kernel's inputs and outputs, in buffer order). */
  LLVMTypeRef *ktypes;
  const moss_value ***kio;
  int *nkio;
  LLVMValueRef fn;      /* the kernel function being built (or a part's body) */
  LLVMValueRef par;     /* the kernel's moss_bundle_par pointer (NULL in the standalone object) */
  LLVMBasicBlockRef top; /* the kernel function's entry block (where allocas go) */
  int noalias;          /* the kernel's inputs and outputs are noalias (shares_storage) */
  int nvptx;            /* the module is for NVPTX (moss_llvm_emit_gpu): math from the PTX
                         * special-function unit, no C library */
  int spir;             /* the module is for spir64 (moss_llvm_emit_gpu): math from OpenCL C's
                         * builtins, global pointers in addrspace(1) */
  int ncut;             /* the kernel's cut loops so far (their functions' names) */
  LLVMValueRef *globals; /* per value id: its weight global, or NULL */
  LLVMValueRef requant;  /* the requantization helper, made on first use */
  const moss_kernel *k;
  LLVMValueRef *bufs;   /* per kernel buffer: its base pointer */
  LLVMValueRef *vars;   /* per kernel variable: its alloca */
  moss_status st;
} gen;

int moss_llvm_can_emit(const moss_node *n) { return moss_kernel_can_lower(n); }

static moss_status fail(gen *G, moss_status st, const char *what) {
  if (G->st == MOSS_OK)
    G->st = moss_fail(G->ctx, st, G->k ? G->k->node : NULL, "LLVM backend: %s", what);
  return G->st;
}

static LLVMTypeRef scalar_type(gen *G, moss_dtype dt) {
  switch (dt) {
  case MOSS_DT_F32: return G->f32;
  case MOSS_DT_F64: return G->f64;
  case MOSS_DT_F16: return G->f16; /* a native float16 node's (moss_node.native_half) */
  case MOSS_DT_BOOL: return G->i1;
  case MOSS_DT_I8: case MOSS_DT_U8: return G->i8;
  case MOSS_DT_I16: case MOSS_DT_U16: return G->i16;
  case MOSS_DT_I32: case MOSS_DT_U32: return G->i32;
  default: return G->i64;
  }
}

/* In memory BOOL is a byte. */
static LLVMTypeRef mem_type(gen *G, moss_dtype dt) { return dt == MOSS_DT_BOOL ? G->i8 : scalar_type(G, dt); }

static LLVMTypeRef vtype(LLVMTypeRef t, int lanes) { return lanes > 1 ? LLVMVectorType(t, (unsigned)lanes) : t; }

static int is_float(moss_dtype dt) { return moss_dtype_is_float(dt); }
static int is_signed(moss_dtype dt) { return moss_dtype_is_signed(dt); }

/* ---- intrinsics and library calls ------------------------------------------------------ */

static LLVMValueRef intrinsic(gen *G, const char *name, LLVMTypeRef overload, LLVMValueRef *args,
                              unsigned nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(G->m, id, &overload, 1);
  LLVMTypeRef ft = LLVMIntrinsicGetType(G->c, id, &overload, 1);
  return LLVMBuildCall2(G->b, ft, f, args, nargs, "");
}

/* A call of the external function |name| of |nargs| arguments of |dt|,
 * returning |dt|, on each lane. */
static LLVMValueRef lib_call(gen *G, const char *name, moss_dtype dt, LLVMValueRef *args, unsigned nargs,
                             int lanes) {
  LLVMTypeRef st = scalar_type(G, dt), params[3] = {st, st, st}, ft;
  LLVMValueRef f, out;
  int l;
  unsigned i;
  ft = LLVMFunctionType(st, params, nargs, 0);
  f = LLVMGetNamedFunction(G->m, name);
  if (!f) {
    f = LLVMAddFunction(G->m, name, ft);
    LLVMSetLinkage(f, LLVMExternalLinkage);
  }
  if (lanes == 1) return LLVMBuildCall2(G->b, ft, f, args, nargs, "");
  out = LLVMGetPoison(vtype(st, lanes));
  for (l = 0; l < lanes; l++) {
    LLVMValueRef a[3], li = LLVMConstInt(G->i32, (unsigned)l, 0);
    for (i = 0; i < nargs; i++) a[i] = LLVMBuildExtractElement(G->b, args[i], li, "");
    out = LLVMBuildInsertElement(G->b, out, LLVMBuildCall2(G->b, ft, f, a, nargs, ""), li, "");
  }
  return out;
}

/* A call of the C library's |base| (float: base"f") on each lane. */
static LLVMValueRef libm(gen *G, const char *base, moss_dtype dt, LLVMValueRef *args, unsigned nargs,
                         int lanes) {
  char name[32];
  snprintf(name, sizeof name, "%s%s", base, dt == MOSS_DT_F32 ? "f" : "");
  return lib_call(G, name, dt, args, nargs, lanes);
}

/* A call of OpenCL C's builtin |base| of |nargs| float (or double)
 * arguments on each lane, by its Itanium-mangled name as OpenCL C's
 * compilers write it (_Z3expf: exp(float), _Z3powdd: pow(double,
 * double)), which llvm-spirv turns into the OpenCL.std instruction. */
static LLVMValueRef ocl_builtin(gen *G, const char *base, moss_dtype dt, LLVMValueRef *args, unsigned nargs,
                                int lanes) {
  char name[48];
  unsigned i;
  int n;
  if (dt == MOSS_DT_F16) { /* float32's, rounded once: the OpenCL C form's (backends/c/kprint.c) */
    LLVMValueRef wide[3];
    for (i = 0; i < nargs && i < 3; i++)
      wide[i] = LLVMBuildFPExt(G->b, args[i], vtype(G->f32, lanes), "");
    return LLVMBuildFPTrunc(G->b, ocl_builtin(G, base, MOSS_DT_F32, wide, i, lanes),
                            vtype(G->f16, lanes), "");
  }
  n = snprintf(name, sizeof name, "_Z%u%s", (unsigned)strlen(base), base);
  for (i = 0; i < nargs && n < (int)sizeof name - 1; i++) name[n++] = dt == MOSS_DT_F64 ? 'd' : 'f';
  name[n] = 0;
  return lib_call(G, name, dt, args, nargs, lanes);
}

static LLVMValueRef const_int(gen *G, moss_dtype dt, int64_t v, int lanes);

/* round(acc * M) as docs/numerics-int8.md defines it, on int32 values of
 * |lanes| lanes, built where the builder stands. */
static LLVMValueRef requant_build(gen *G, LLVMValueRef acc, LLVMValueRef mult, LLVMValueRef shift, int lanes) {
  LLVMTypeRef i64v = vtype(G->i64, lanes);
  LLVMValueRef p, s, sh, fl, half, odd, r, lo, hi;
#define K64(v) const_int(G, MOSS_DT_I64, (v), lanes)
  p = LLVMBuildMul(G->b, LLVMBuildSExt(G->b, acc, i64v, ""), LLVMBuildSExt(G->b, mult, i64v, ""), "p");
  s = LLVMBuildAdd(G->b, LLVMBuildSExt(G->b, shift, i64v, ""), K64(31), "s");
  /* The shift amount kept in [1, 62]; the other cases are selected below. */
  sh = LLVMBuildSelect(G->b, LLVMBuildICmp(G->b, LLVMIntSLT, s, K64(1), ""), K64(1), s, "");
  sh = LLVMBuildSelect(G->b, LLVMBuildICmp(G->b, LLVMIntSGT, sh, K64(62), ""), K64(62), sh, "sh");
  /* Ties to even in one shift: floor((p + 2^(s-1) - 1 + odd) / 2^s), odd
   * the lowest bit of floor(p / 2^s). With p = f 2^s + rem: rem below the
   * half stays at f, above it reaches f + 1, and at the half reaches f + 1
   * only when f is odd. |p| < 2^62, so the sum cannot overflow. */
  fl = LLVMBuildAShr(G->b, p, sh, "floor");
  odd = LLVMBuildAnd(G->b, fl, K64(1), "odd");
  half = LLVMBuildShl(G->b, K64(1), LLVMBuildSub(G->b, sh, K64(1), ""), "half");
  r = LLVMBuildAShr(G->b, LLVMBuildAdd(G->b, LLVMBuildAdd(G->b, p, LLVMBuildSub(G->b, half, K64(1), ""), ""), odd, ""),
                    sh, "");
  r = LLVMBuildSelect(G->b, LLVMBuildICmp(G->b, LLVMIntSLE, s, K64(0), ""), p, r, "");
  r = LLVMBuildSelect(G->b, LLVMBuildICmp(G->b, LLVMIntSGE, s, K64(63), ""), K64(0), r, "");
  lo = K64(INT32_MIN);
  hi = K64(INT32_MAX);
#undef K64
  r = LLVMBuildSelect(G->b, LLVMBuildICmp(G->b, LLVMIntSLT, r, lo, ""), lo, r, "");
  r = LLVMBuildSelect(G->b, LLVMBuildICmp(G->b, LLVMIntSGT, r, hi, ""), hi, r, "");
  return LLVMBuildTrunc(G->b, r, vtype(G->i32, lanes), "");
}

/* requant_build on scalars, one internal function of the module (inlined
 * where used). */
static LLVMValueRef requant_fn(gen *G) {
  LLVMTypeRef params[3] = {G->i32, G->i32, G->i32}, ft = LLVMFunctionType(G->i32, params, 3, 0);
  LLVMBasicBlockRef saved = LLVMGetInsertBlock(G->b), entry;
  LLVMValueRef f;
  if (G->requant) return G->requant;
  f = LLVMAddFunction(G->m, "moss_requant", ft);
  LLVMSetLinkage(f, LLVMInternalLinkage);
  entry = LLVMAppendBasicBlockInContext(G->c, f, "entry");
  LLVMPositionBuilderAtEnd(G->b, entry);
  LLVMBuildRet(G->b, requant_build(G, LLVMGetParam(f, 0), LLVMGetParam(f, 1), LLVMGetParam(f, 2), 1));
  LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                             LLVMCreateEnumAttribute(G->c, LLVMGetEnumAttributeKindForName("alwaysinline", 12), 0));
  LLVMPositionBuilderAtEnd(G->b, saved);
  G->requant = f;
  return f;
}

/* ---- expressions ---------------------------------------------------------------------- */

static LLVMValueRef expr(gen *G, const moss_kx *x);

static LLVMValueRef const_int(gen *G, moss_dtype dt, int64_t v, int lanes) {
  LLVMValueRef c = LLVMConstInt(scalar_type(G, dt), (unsigned long long)v, is_signed(dt) || dt == MOSS_DT_I64);
  if (lanes > 1) {
    LLVMValueRef el[64];
    int l;
    for (l = 0; l < lanes && l < 64; l++) el[l] = c;
    return LLVMConstVector(el, (unsigned)lanes);
  }
  return c;
}

static LLVMValueRef zero_of(gen *G, moss_dtype dt, int lanes) {
  return LLVMConstNull(vtype(scalar_type(G, dt), lanes));
}

static LLVMValueRef splat(gen *G, LLVMValueRef v, int lanes) {
  LLVMTypeRef t = LLVMTypeOf(v);
  LLVMValueRef ins, mask[64];
  int l;
  if (lanes <= 1) return v;
  ins = LLVMBuildInsertElement(G->b, LLVMGetPoison(LLVMVectorType(t, (unsigned)lanes)), v,
                               LLVMConstInt(G->i32, 0, 0), "");
  for (l = 0; l < lanes && l < 64; l++) mask[l] = LLVMConstInt(G->i32, 0, 0);
  return LLVMBuildShuffleVector(G->b, ins, LLVMGetPoison(LLVMTypeOf(ins)), LLVMConstVector(mask, (unsigned)lanes), "");
}

static LLVMValueRef elem_ptr(gen *G, int buf, LLVMValueRef index) {
  LLVMTypeRef et = mem_type(G, G->k->bufs[buf].dt);
  return LLVMBuildGEP2(G->b, et, G->bufs[buf], &index, 1, "");
}

static LLVMValueRef load(gen *G, int buf, LLVMValueRef index, int lanes) {
  moss_dtype dt = G->k->bufs[buf].dt;
  LLVMTypeRef t = vtype(mem_type(G, dt), lanes);
  LLVMValueRef v = LLVMBuildLoad2(G->b, t, elem_ptr(G, buf, index), "");
  LLVMSetAlignment(v, (unsigned)moss_dtype_size(dt));
  if (dt == MOSS_DT_BOOL) v = LLVMBuildICmp(G->b, LLVMIntNE, v, LLVMConstNull(t), "");
  return v;
}

static LLVMValueRef cast(gen *G, LLVMValueRef v, moss_dtype from, moss_dtype to, int lanes) {
  LLVMTypeRef t = vtype(scalar_type(G, to), lanes);
  if (from == to) return v;
  if (to == MOSS_DT_BOOL)
    return is_float(from) ? LLVMBuildFCmp(G->b, LLVMRealUNE, v, zero_of(G, from, lanes), "")
                          : LLVMBuildICmp(G->b, LLVMIntNE, v, zero_of(G, from, lanes), "");
  if (is_float(from) && is_float(to)) return LLVMBuildFPCast(G->b, v, t, "");
  if (is_float(from)) return is_signed(to) || to == MOSS_DT_I64 ? LLVMBuildFPToSI(G->b, v, t, "") : LLVMBuildFPToUI(G->b, v, t, "");
  if (is_float(to)) return is_signed(from) ? LLVMBuildSIToFP(G->b, v, t, "") : LLVMBuildUIToFP(G->b, v, t, "");
  return LLVMBuildIntCast2(G->b, v, t, is_signed(from), "");
}

static LLVMRealPredicate fpred(moss_kx_op op) {
  switch (op) {
  case MOSS_KX_EQ: return LLVMRealOEQ;
  case MOSS_KX_NE: return LLVMRealUNE;
  case MOSS_KX_LT: return LLVMRealOLT;
  case MOSS_KX_LE: return LLVMRealOLE;
  case MOSS_KX_GT: return LLVMRealOGT;
  default: return LLVMRealOGE;
  }
}

static LLVMIntPredicate ipred(moss_kx_op op, int sgn) {
  switch (op) {
  case MOSS_KX_EQ: return LLVMIntEQ;
  case MOSS_KX_NE: return LLVMIntNE;
  case MOSS_KX_LT: return sgn ? LLVMIntSLT : LLVMIntULT;
  case MOSS_KX_LE: return sgn ? LLVMIntSLE : LLVMIntULE;
  case MOSS_KX_GT: return sgn ? LLVMIntSGT : LLVMIntUGT;
  default: return sgn ? LLVMIntSGE : LLVMIntUGE;
  }
}

static LLVMValueRef cmp(gen *G, moss_kx_op op, moss_dtype dt, LLVMValueRef a, LLVMValueRef b) {
  if (is_float(dt)) return LLVMBuildFCmp(G->b, fpred(op), a, b, "");
  return LLVMBuildICmp(G->b, ipred(op, is_signed(dt) || dt == MOSS_DT_I64), a, b, "");
}

static LLVMValueRef binary(gen *G, const moss_kx *x) {
  moss_dtype dt = x->a[0]->dt;
  LLVMValueRef a = expr(G, x->a[0]), b = expr(G, x->a[1]);
  int f = is_float(dt), sgn = is_signed(dt) || dt == MOSS_DT_I64;
  switch (x->op) {
  case MOSS_KX_ADD: return f ? LLVMBuildFAdd(G->b, a, b, "") : LLVMBuildAdd(G->b, a, b, "");
  case MOSS_KX_SUB: return f ? LLVMBuildFSub(G->b, a, b, "") : LLVMBuildSub(G->b, a, b, "");
  case MOSS_KX_MUL: return f ? LLVMBuildFMul(G->b, a, b, "") : LLVMBuildMul(G->b, a, b, "");
  case MOSS_KX_DIV: case MOSS_KX_REM: {
    LLVMValueRef z, safe, q;
    if (f && G->spir && dt == MOSS_DT_F16 && x->op == MOSS_KX_DIV) { /* as ocl_builtin's float16 */
      LLVMTypeRef wt = vtype(G->f32, x->lanes);
      LLVMValueRef q = LLVMBuildFDiv(G->b, LLVMBuildFPExt(G->b, a, wt, ""),
                                     LLVMBuildFPExt(G->b, b, wt, ""), "");
      return LLVMBuildFPTrunc(G->b, q, LLVMTypeOf(a), "");
    }
    if (f) return x->op == MOSS_KX_DIV ? LLVMBuildFDiv(G->b, a, b, "") : LLVMBuildFRem(G->b, a, b, "");
    z = LLVMBuildICmp(G->b, LLVMIntEQ, b, zero_of(G, dt, x->lanes), "");
    safe = LLVMBuildSelect(G->b, z, const_int(G, dt, 1, x->lanes), b, "");
    if (x->op == MOSS_KX_DIV) q = sgn ? LLVMBuildSDiv(G->b, a, safe, "") : LLVMBuildUDiv(G->b, a, safe, "");
    else q = sgn ? LLVMBuildSRem(G->b, a, safe, "") : LLVMBuildURem(G->b, a, safe, "");
    return LLVMBuildSelect(G->b, z, zero_of(G, dt, x->lanes), q, "");
  }
  case MOSS_KX_MIN: return LLVMBuildSelect(G->b, cmp(G, MOSS_KX_LT, dt, a, b), a, b, "");
  case MOSS_KX_MAX: return LLVMBuildSelect(G->b, cmp(G, MOSS_KX_GT, dt, a, b), a, b, "");
  case MOSS_KX_BAND: case MOSS_KX_LAND: return LLVMBuildAnd(G->b, a, b, "");
  case MOSS_KX_BOR: case MOSS_KX_LOR: return LLVMBuildOr(G->b, a, b, "");
  case MOSS_KX_BXOR: return LLVMBuildXor(G->b, a, b, "");
  case MOSS_KX_SHL: return LLVMBuildShl(G->b, a, b, "");
  case MOSS_KX_SHR: return sgn ? LLVMBuildAShr(G->b, a, b, "") : LLVMBuildLShr(G->b, a, b, "");
  default: return cmp(G, x->op, dt, a, b);
  }
}

/* DOT4 (|sa| 0) or DOT4S (|sa| 1) on |lanes| int32 lanes: vpdpbusd or
 * sdot where the machine has it at this width, else the byte products
 * widened and summed by lane. */
static LLVMValueRef dot4(gen *G, LLVMValueRef *a, int lanes, int sa) {
  LLVMTypeRef b4 = LLVMVectorType(G->i8, (unsigned)(4 * lanes)), w4 = LLVMVectorType(G->i32, (unsigned)(4 * lanes));
  LLVMValueRef u, v, m, sum, mask[128];
  int j, l, w;
  if (lanes < 1 || lanes > 64) return fail(G, MOSS_E_INTERNAL, "dot4 wider than 64 lanes"), a[0];
  if (lanes == G->cpu.dot4 && !sa && !G->cpu.dot4_signed && (lanes == 16 || lanes == 8)) {
    const char *name = lanes == 16 ? "llvm.x86.avx512.vpdpbusd.512" : "llvm.x86.avx512.vpdpbusd.256";
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(G->m, id, NULL, 0);
    return LLVMBuildCall2(G->b, LLVMIntrinsicGetType(G->c, id, NULL, 0), f, a, 3, "");
  }
  if (lanes == G->cpu.dot4 && sa && G->cpu.dot4_signed && lanes == 4) {
    const char *name = "llvm.aarch64.neon.sdot";
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef ty[2] = {LLVMTypeOf(a[0]), b4};
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(G->m, id, ty, 2);
    LLVMValueRef args[3] = {a[0], LLVMBuildBitCast(G->b, a[1], b4, ""), LLVMBuildBitCast(G->b, a[2], b4, "")};
    return LLVMBuildCall2(G->b, LLVMIntrinsicGetType(G->c, id, ty, 2), f, args, 3, "");
  }
  u = sa ? LLVMBuildSExt(G->b, LLVMBuildBitCast(G->b, a[1], b4, ""), w4, "")
         : LLVMBuildZExt(G->b, LLVMBuildBitCast(G->b, a[1], b4, ""), w4, "");
  v = LLVMBuildSExt(G->b, LLVMBuildBitCast(G->b, a[2], b4, ""), w4, "");
  m = LLVMBuildMul(G->b, u, v, "");
  /* Pairs, then pairs of pairs: the first step is x86's pmaddwd. */
  for (w = 2 * lanes; w >= lanes; w /= 2) {
    LLVMValueRef half[2];
    for (j = 0; j < 2; j++) {
      for (l = 0; l < w; l++) mask[l] = LLVMConstInt(G->i32, (unsigned)(2 * l + j), 0);
      half[j] = LLVMBuildShuffleVector(G->b, m, LLVMGetPoison(LLVMTypeOf(m)), LLVMConstVector(mask, (unsigned)w), "");
    }
    m = LLVMBuildAdd(G->b, half[0], half[1], "");
  }
  sum = m;
  if (lanes == 1) sum = LLVMBuildExtractElement(G->b, sum, LLVMConstInt(G->i32, 0, 0), "");
  return LLVMBuildAdd(G->b, a[0], sum, "");
}

/* TBL128 on 64 bytes: vpermi2b. The lowerings take it only where the
 * machine has it (cpu.tbl128). */
static LLVMValueRef tbl128(gen *G, LLVMValueRef *a) {
  const char *name = "llvm.x86.avx512.vpermi2var.qi.512";
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef args[3] = {a[0], a[2], a[1]};
  if (G->cpu.tbl128 != 64) return fail(G, MOSS_E_INTERNAL, "tbl128 on a machine without vpermi2b"), a[0];
  return LLVMBuildCall2(G->b, LLVMIntrinsicGetType(G->c, id, NULL, 0), LLVMGetIntrinsicDeclaration(G->m, id, NULL, 0),
                        args, 3, "");
}

/* ---- exp, log and pow on NVPTX, which has no C library ---------------------------------
 * From the special-function unit's ex2.approx.f32 and lg2.approx.f32
 * (relative and absolute error about 2^-22), so float results stay within
 * DESIGN.md's tolerance:
 * - exp32(x) = 2^t with t = x log2(e) rounded, corrected by t's rounding
 *   error d = fma(x, L, -t) + x L_lo: 2^t + 2^t d ln 2;
 * - log32(x) = lg2(x) ln 2;
 * - exp64(x) = 2^k exp32(x - k ln 2), k = rint(x log2 e) clamped to
 *   +-1100 and applied as two exact powers of two;
 * - log64(x) = e ln 2 + log32(m) for x = m 2^e, m in [1, 2), on positive
 *   normal x; log32 of x rounded to float otherwise (0, inf, NaN, < 0);
 * - pow(x, y) = exp64(y log64 |x|) in double, with C's signs and cases
 *   (y = 0 or x = 1: 1; x < 0: the sign of an odd integer y, NaN for a
 *   y that is not an integer). */
static LLVMValueRef sfu(gen *G, const char *name, LLVMValueRef v) {
  LLVMTypeRef ft = LLVMFunctionType(G->f32, &G->f32, 1, 0);
  LLVMValueRef f = LLVMGetNamedFunction(G->m, name);
  if (!f) f = LLVMAddFunction(G->m, name, ft);
  return LLVMBuildCall2(G->b, ft, f, &v, 1, "");
}

static LLVMValueRef fma3(gen *G, LLVMTypeRef t, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  LLVMValueRef args[3] = {a, b, c};
  return intrinsic(G, "llvm.fma", t, args, 3);
}

static LLVMValueRef exp32(gen *G, LLVMValueRef v) {
  LLVMValueRef l2e = LLVMConstReal(G->f32, 1.44269502162933349609375); /* log2(e) in float */
  LLVMValueRef ln2 = LLVMConstReal(G->f32, 0.693147180559945309);
  LLVMValueRef t = LLVMBuildFMul(G->b, v, l2e, ""), d, p, r;
  d = fma3(G, G->f32, v, l2e, LLVMBuildFNeg(G->b, t, "")); /* x L - t, exactly */
  d = LLVMBuildFAdd(G->b, d, LLVMBuildFMul(G->b, v, LLVMConstReal(G->f32, 1.92596298909109e-08), ""), "");
  p = sfu(G, "llvm.nvvm.ex2.approx.f", t);
  r = fma3(G, G->f32, LLVMBuildFMul(G->b, p, ln2, ""), d, p);
  /* At t = +-inf (x infinite, or beyond float's range) d is NaN and 2^t
   * exactly 0 or inf; at NaN, 2^t is NaN: then 2^t itself. */
  return LLVMBuildSelect(G->b, LLVMBuildFCmp(G->b, LLVMRealOLT, intrinsic(G, "llvm.fabs", G->f32, &t, 1),
                                             LLVMConstReal(G->f32, 1.0 / 0.0), ""), r, p, "");
}

static LLVMValueRef log32(gen *G, LLVMValueRef v) {
  return LLVMBuildFMul(G->b, sfu(G, "llvm.nvvm.lg2.approx.f", v), LLVMConstReal(G->f32, 0.693147180559945309), "");
}

/* c[0] + c[1] x + ... + c[n-1] x^(n-1), by Horner's rule in fmas. */
static LLVMValueRef horner32(gen *G, LLVMValueRef x, const double *c, int n) {
  LLVMValueRef p = LLVMConstReal(G->f32, c[n - 1]);
  int i;
  for (i = n - 2; i >= 0; i--) p = fma3(G, G->f32, p, x, LLVMConstReal(G->f32, c[i]));
  return p;
}

/* |v| with the sign of |s|. */
static LLVMValueRef copysign32(gen *G, LLVMValueRef v, LLVMValueRef s) {
  LLVMValueRef a[2] = {v, s};
  return intrinsic(G, "llvm.copysign", G->f32, a, 2);
}

/* tanh on the GPU (no C library there): below |x| = 1/16 its odd Taylor
 * series to x^9 (relative error under 1e-11 before rounding), else
 * sign(x) (1 - e) / (1 + e) with e = exp(-2|x|), which is 1 at infinity
 * and NaN at NaN. */
static LLVMValueRef tanh32(gen *G, LLVMValueRef x) {
  static const double c[4] = {-1.0 / 3, 2.0 / 15, -17.0 / 315, 62.0 / 2835};
  LLVMValueRef ax = intrinsic(G, "llvm.fabs", G->f32, &x, 1), x2 = LLVMBuildFMul(G->b, x, x, ""), one, e, big, small;
  one = LLVMConstReal(G->f32, 1.0);
  small = fma3(G, G->f32, LLVMBuildFMul(G->b, x, x2, ""), horner32(G, x2, c, 4), x);
  e = exp32(G, LLVMBuildFMul(G->b, ax, LLVMConstReal(G->f32, -2.0), ""));
  big = LLVMBuildFDiv(G->b, LLVMBuildFSub(G->b, one, e, ""), LLVMBuildFAdd(G->b, one, e, ""), "");
  return LLVMBuildSelect(G->b, LLVMBuildFCmp(G->b, LLVMRealOLT, ax, LLVMConstReal(G->f32, 0.0625), ""), small,
                         copysign32(G, big, x), "");
}

/* erf on the GPU: below |x| = 1/2 its Taylor series to x^11 (relative
 * error under 3e-8 before rounding), else Abramowitz and Stegun 7.1.26
 * (absolute error under 1.5e-7, as the Vulkan backend's), odd; 1 at
 * infinity, NaN at NaN. */
static LLVMValueRef erf32(gen *G, LLVMValueRef x) {
  static const double c[6] = {1.0, -1.0 / 3, 1.0 / 10, -1.0 / 42, 1.0 / 216, -1.0 / 1320};
  static const double a[6] = {0.0, 0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429};
  LLVMValueRef ax = intrinsic(G, "llvm.fabs", G->f32, &x, 1), x2 = LLVMBuildFMul(G->b, x, x, ""), one, t, y, small;
  one = LLVMConstReal(G->f32, 1.0);
  small = LLVMBuildFMul(G->b, LLVMBuildFMul(G->b, x, horner32(G, x2, c, 6), ""),
                        LLVMConstReal(G->f32, 1.1283791670955126), "");
  t = LLVMBuildFDiv(G->b, one, fma3(G, G->f32, ax, LLVMConstReal(G->f32, 0.3275911), one), "");
  y = LLVMBuildFMul(G->b, horner32(G, t, a, 6), exp32(G, LLVMBuildFNeg(G->b, x2, "")), "");
  y = LLVMBuildFSub(G->b, one, y, "");
  return LLVMBuildSelect(G->b, LLVMBuildFCmp(G->b, LLVMRealOLT, ax, LLVMConstReal(G->f32, 0.5), ""), small,
                         copysign32(G, y, x), "");
}

/* 2^k for integer |k| <= 1022, as a double built from its bits. */
static LLVMValueRef pow2_64(gen *G, LLVMValueRef k) {
  LLVMValueRef bits = LLVMBuildShl(G->b, LLVMBuildAdd(G->b, k, LLVMConstInt(G->i64, 1023, 0), ""),
                                   LLVMConstInt(G->i64, 52, 0), "");
  return LLVMBuildBitCast(G->b, bits, G->f64, "");
}

static LLVMValueRef exp64(gen *G, LLVMValueRef x) {
  LLVMValueRef k = intrinsic(G, "llvm.rint", G->f64, (LLVMValueRef[]){LLVMBuildFMul(G->b, x,
                             LLVMConstReal(G->f64, 1.4426950408889634), "")}, 1);
  LLVMValueRef lim = LLVMConstReal(G->f64, 1100.0), r, e, ki, k1;
  k = intrinsic(G, "llvm.minnum", G->f64, (LLVMValueRef[]){k, lim}, 2);
  k = intrinsic(G, "llvm.maxnum", G->f64, (LLVMValueRef[]){k, LLVMConstReal(G->f64, -1100.0)}, 2);
  r = fma3(G, G->f64, LLVMBuildFNeg(G->b, k, ""), LLVMConstReal(G->f64, 0.6931471805599453), x);
  e = LLVMBuildFPExt(G->b, exp32(G, LLVMBuildFPTrunc(G->b, r, G->f32, "")), G->f64, "");
  ki = LLVMBuildFPToSI(G->b, k, G->i64, "");
  k1 = LLVMBuildAShr(G->b, ki, LLVMConstInt(G->i64, 1, 0), "");
  e = LLVMBuildFMul(G->b, LLVMBuildFMul(G->b, e, pow2_64(G, k1), ""), pow2_64(G, LLVMBuildSub(G->b, ki, k1, "")), "");
  return LLVMBuildSelect(G->b, LLVMBuildFCmp(G->b, LLVMRealUNO, x, x, ""), x, e, "");
}

static LLVMValueRef log64(gen *G, LLVMValueRef x) {
  LLVMValueRef bits = LLVMBuildBitCast(G->b, x, G->i64, ""), eb, m, normal, rn, ro;
  LLVMValueRef ln2 = LLVMConstReal(G->f64, 0.6931471805599453);
  eb = LLVMBuildAnd(G->b, LLVMBuildLShr(G->b, bits, LLVMConstInt(G->i64, 52, 0), ""), LLVMConstInt(G->i64, 0x7ff, 0), "");
  m = LLVMBuildOr(G->b, LLVMBuildAnd(G->b, bits, LLVMConstInt(G->i64, 0x000FFFFFFFFFFFFFULL, 0), ""),
                  LLVMConstInt(G->i64, 0x3FF0000000000000ULL, 0), "");
  m = LLVMBuildBitCast(G->b, m, G->f64, "");
  normal = LLVMBuildAnd(G->b, LLVMBuildICmp(G->b, LLVMIntNE, eb, LLVMConstInt(G->i64, 0, 0), ""),
                        LLVMBuildICmp(G->b, LLVMIntNE, eb, LLVMConstInt(G->i64, 0x7ff, 0), ""), "");
  normal = LLVMBuildAnd(G->b, normal, LLVMBuildFCmp(G->b, LLVMRealOGT, x, LLVMConstReal(G->f64, 0.0), ""), "");
  rn = LLVMBuildSIToFP(G->b, LLVMBuildSub(G->b, eb, LLVMConstInt(G->i64, 1023, 0), ""), G->f64, "");
  rn = fma3(G, G->f64, rn, ln2, LLVMBuildFPExt(G->b, log32(G, LLVMBuildFPTrunc(G->b, m, G->f32, "")), G->f64, ""));
  ro = LLVMBuildFPExt(G->b, log32(G, LLVMBuildFPTrunc(G->b, x, G->f32, "")), G->f64, "");
  return LLVMBuildSelect(G->b, normal, rn, ro, "");
}

static LLVMValueRef pow64(gen *G, LLVMValueRef x, LLVMValueRef y) {
  LLVMValueRef ax = intrinsic(G, "llvm.fabs", G->f64, &x, 1), r, yint, yodd, neg, one = LLVMConstReal(G->f64, 1.0);
  LLVMValueRef half;
  r = exp64(G, LLVMBuildFMul(G->b, y, log64(G, ax), ""));
  yint = LLVMBuildFCmp(G->b, LLVMRealOEQ, intrinsic(G, "llvm.rint", G->f64, &y, 1), y, "");
  half = LLVMBuildFMul(G->b, y, LLVMConstReal(G->f64, 0.5), "");
  yodd = LLVMBuildAnd(G->b, yint,
                      LLVMBuildFCmp(G->b, LLVMRealONE, intrinsic(G, "llvm.rint", G->f64, &half, 1), half, ""), "");
  neg = LLVMBuildFCmp(G->b, LLVMRealOLT, x, LLVMConstReal(G->f64, 0.0), "");
  r = LLVMBuildSelect(G->b, LLVMBuildAnd(G->b, neg, yodd, ""), LLVMBuildFNeg(G->b, r, ""), r, "");
  r = LLVMBuildSelect(G->b, LLVMBuildAnd(G->b, neg, LLVMBuildNot(G->b, yint, ""), ""), LLVMConstReal(G->f64, 0.0 / 0.0),
                      r, "");
  return LLVMBuildSelect(G->b,
                         LLVMBuildOr(G->b, LLVMBuildFCmp(G->b, LLVMRealOEQ, y, LLVMConstReal(G->f64, 0.0), ""),
                                     LLVMBuildFCmp(G->b, LLVMRealOEQ, x, one, ""), ""),
                         one, r, "");
}

static LLVMValueRef nvptx_math(gen *G, const moss_kx *x, LLVMValueRef *a) {
  int f64 = x->a[0]->dt == MOSS_DT_F64;
  if (x->lanes != 1 || (x->a[0]->dt != MOSS_DT_F32 && !f64) ||
      (f64 && (x->fn == MOSS_KFN_ERF || x->fn == MOSS_KFN_TANH))) {
    fail(G, MOSS_E_INTERNAL, "NVPTX: exp, log or pow of other than one f32 or f64, or erf or tanh of "
                             "other than one f32");
    return LLVMGetPoison(G->f32);
  }
  switch (x->fn) {
  case MOSS_KFN_ERF: return erf32(G, a[0]);
  case MOSS_KFN_TANH: return tanh32(G, a[0]);
  case MOSS_KFN_EXP: return f64 ? exp64(G, a[0]) : exp32(G, a[0]);
  case MOSS_KFN_LOG: return f64 ? log64(G, a[0]) : log32(G, a[0]);
  default:
    if (f64) return pow64(G, a[0], a[1]);
    return LLVMBuildFPTrunc(G->b, pow64(G, LLVMBuildFPExt(G->b, a[0], G->f64, ""), LLVMBuildFPExt(G->b, a[1], G->f64, "")),
                            G->f32, "");
  }
}

/* DOT4 (a unsigned, w signed) and DOT4S (both signed) of one int32 lane on
 * NVPTX: PTX's dp4a (sm_61 on), acc + the four byte products, as inline
 * assembly (LLVM 19 has no intrinsic for it). */
static LLVMValueRef nvptx_dp4a(gen *G, const moss_kx *x, LLVMValueRef *a) {
  static const char dp4a_ss[] = "dp4a.s32.s32 $0, $1, $2, $3;", dp4a_us[] = "dp4a.u32.s32 $0, $1, $2, $3;";
  const char *text = x->fn == MOSS_KFN_DOT4S ? dp4a_ss : dp4a_us;
  LLVMTypeRef params[3] = {G->i32, G->i32, G->i32}, ft = LLVMFunctionType(G->i32, params, 3, 0);
  LLVMValueRef asm_fn = LLVMGetInlineAsm(ft, text, strlen(text), "=r,r,r,r", 8, 0, 0, LLVMInlineAsmDialectATT, 0);
  LLVMValueRef args[3] = {a[1], a[2], a[0]};
  return LLVMBuildCall2(G->b, ft, asm_fn, args, 3, "");
}

static LLVMValueRef call(gen *G, const moss_kx *x) {
  LLVMValueRef a[3];
  LLVMTypeRef t = vtype(scalar_type(G, x->a[0]->dt), x->lanes);
  int i;
  const char *llvm_name = NULL;
  for (i = 0; i < x->nargs; i++) a[i] = expr(G, x->a[i]);
  if (G->nvptx && (x->fn == MOSS_KFN_EXP || x->fn == MOSS_KFN_LOG || x->fn == MOSS_KFN_POW ||
                   x->fn == MOSS_KFN_ERF || x->fn == MOSS_KFN_TANH))
    return nvptx_math(G, x, a);
  if (G->nvptx && (x->fn == MOSS_KFN_DOT4 || x->fn == MOSS_KFN_DOT4S) && x->lanes == 1) return nvptx_dp4a(G, x, a);
  if (G->spir) {
    switch (x->fn) {
    case MOSS_KFN_ISNAN: case MOSS_KFN_SAT: case MOSS_KFN_REQUANT: case MOSS_KFN_BITS:
    case MOSS_KFN_DOT4: case MOSS_KFN_DOT4S: case MOSS_KFN_TBL128:
      break; /* as below (gpu_has refuses the last three) */
    case MOSS_KFN_ISINF: {
      LLVMValueRef inf = LLVMConstReal(scalar_type(G, x->a[0]->dt), 1.0 / 0.0);
      LLVMValueRef av = ocl_builtin(G, "fabs", x->a[0]->dt, a, 1, x->lanes);
      return LLVMBuildFCmp(G->b, LLVMRealOEQ, av, x->lanes > 1 ? splat(G, inf, x->lanes) : inf, "");
    }
    case MOSS_KFN_ABS:
      if (is_float(x->dt)) return ocl_builtin(G, "fabs", x->dt, a, 1, x->lanes);
      break;
    default: /* the float functions, fmod too (OpenCL C's, as the source form's) */
      return ocl_builtin(G, moss_kfn_name(x->fn), x->a[0]->dt, a, (unsigned)x->nargs, x->lanes);
    }
  }
  switch (x->fn) {
  case MOSS_KFN_SQRT: llvm_name = "llvm.sqrt"; break;
  case MOSS_KFN_EXP: llvm_name = "llvm.exp"; break;
  case MOSS_KFN_LOG: llvm_name = "llvm.log"; break;
  case MOSS_KFN_SIN: llvm_name = "llvm.sin"; break;
  case MOSS_KFN_COS: llvm_name = "llvm.cos"; break;
  case MOSS_KFN_FLOOR: llvm_name = "llvm.floor"; break;
  case MOSS_KFN_CEIL: llvm_name = "llvm.ceil"; break;
  case MOSS_KFN_RINT: llvm_name = "llvm.rint"; break;
  case MOSS_KFN_TRUNC: llvm_name = "llvm.trunc"; break;
  case MOSS_KFN_FABS: llvm_name = "llvm.fabs"; break;
  case MOSS_KFN_POW: llvm_name = "llvm.pow"; break;
  case MOSS_KFN_FMIN: llvm_name = "llvm.minnum"; break;
  case MOSS_KFN_FMAX: llvm_name = "llvm.maxnum"; break;
  case MOSS_KFN_FMA: llvm_name = "llvm.fma"; break;
  case MOSS_KFN_FMOD: return LLVMBuildFRem(G->b, a[0], a[1], "");
  case MOSS_KFN_ISNAN: return LLVMBuildFCmp(G->b, LLVMRealUNO, a[0], a[0], "");
  case MOSS_KFN_ISINF: {
    LLVMValueRef inf = LLVMConstReal(scalar_type(G, x->a[0]->dt), 1.0 / 0.0);
    LLVMValueRef av = intrinsic(G, "llvm.fabs", t, a, 1);
    return LLVMBuildFCmp(G->b, LLVMRealOEQ, av, x->lanes > 1 ? splat(G, inf, x->lanes) : inf, "");
  }
  case MOSS_KFN_ABS:
    if (is_float(x->dt)) {
      llvm_name = "llvm.fabs";
      break;
    }
    return LLVMBuildSelect(G->b, LLVMBuildICmp(G->b, LLVMIntSLT, a[0], zero_of(G, x->dt, x->lanes), ""),
                           LLVMBuildNeg(G->b, a[0], ""), a[0], "");
  case MOSS_KFN_SAT: {
    moss_dtype from = x->a[0]->dt;
    int64_t lo, hi;
    LLVMValueRef w = cast(G, a[0], from, MOSS_DT_I64, x->lanes);
    if (!moss_dtype_int_range(x->dt, &lo, &hi)) return cast(G, a[0], from, x->dt, x->lanes);
    w = LLVMBuildSelect(G->b, LLVMBuildICmp(G->b, LLVMIntSLT, w, const_int(G, MOSS_DT_I64, lo, x->lanes), ""),
                        const_int(G, MOSS_DT_I64, lo, x->lanes), w, "");
    w = LLVMBuildSelect(G->b, LLVMBuildICmp(G->b, LLVMIntSGT, w, const_int(G, MOSS_DT_I64, hi, x->lanes), ""),
                        const_int(G, MOSS_DT_I64, hi, x->lanes), w, "");
    return LLVMBuildTrunc(G->b, w, vtype(scalar_type(G, x->dt), x->lanes), "");
  }
  case MOSS_KFN_REQUANT: {
    LLVMValueRef f = requant_fn(G);
    LLVMTypeRef params[3] = {G->i32, G->i32, G->i32};
    if (x->lanes > 1) return requant_build(G, a[0], a[1], a[2], x->lanes);
    return LLVMBuildCall2(G->b, LLVMFunctionType(G->i32, params, 3, 0), f, a, 3, "");
  }
  case MOSS_KFN_TBL128: return tbl128(G, a);
  case MOSS_KFN_DOT4: return dot4(G, a, x->lanes, 0);
  case MOSS_KFN_DOT4S: return dot4(G, a, x->lanes, 1);
  case MOSS_KFN_BITS: return LLVMBuildBitCast(G->b, a[0], vtype(scalar_type(G, x->dt), x->lanes), "");
  default: break;
  }
  if (llvm_name) return intrinsic(G, llvm_name, t, a, (unsigned)x->nargs);
  return libm(G, moss_kfn_name(x->fn), x->a[0]->dt, a, (unsigned)x->nargs, x->lanes);
}

static LLVMValueRef expr(gen *G, const moss_kx *x) {
  LLVMValueRef a;
  if (G->st != MOSS_OK) return LLVMGetPoison(vtype(scalar_type(G, x->dt), x->lanes));
  switch (x->op) {
  case MOSS_KX_CONST:
    if (is_float(x->dt)) return LLVMConstReal(scalar_type(G, x->dt), x->f);
    return const_int(G, x->dt, x->i, 1);
  case MOSS_KX_VAR:
    return LLVMBuildLoad2(G->b, vtype(scalar_type(G, x->dt), x->lanes), G->vars[x->var], "");
  case MOSS_KX_LOAD: return load(G, x->buf, expr(G, x->a[0]), x->lanes);
  case MOSS_KX_LOAD_OR: {
    /* Never reads when the condition is false: the index becomes 0 there
     * (a valid element), and the default is selected. */
    LLVMValueRef c = expr(G, x->a[1]), d = expr(G, x->a[2]), idx = expr(G, x->a[0]);
    if (G->k->bufs[x->buf].numel <= 0) return d;
    idx = LLVMBuildSelect(G->b, c, idx, LLVMConstInt(G->i64, 0, 0), "");
    return LLVMBuildSelect(G->b, c, load(G, x->buf, idx, 1), d, "");
  }
  case MOSS_KX_CAST: return cast(G, expr(G, x->a[0]), x->a[0]->dt, x->dt, x->lanes);
  case MOSS_KX_SPLAT: return splat(G, expr(G, x->a[0]), x->lanes);
  case MOSS_KX_HSUM: {
    LLVMValueRef args[2];
    a = expr(G, x->a[0]);
    if (G->spir) { /* lane by lane, in lane order: llvm-spirv-15 has no llvm.vector.reduce */
      LLVMValueRef sum = is_float(x->dt) ? LLVMConstReal(scalar_type(G, x->dt), -0.0) : const_int(G, x->dt, 0, 1);
      int l;
      for (l = 0; l < x->a[0]->lanes; l++) {
        LLVMValueRef e = LLVMBuildExtractElement(G->b, a, LLVMConstInt(G->i32, (unsigned)l, 0), "");
        sum = is_float(x->dt) ? LLVMBuildFAdd(G->b, sum, e, "") : LLVMBuildAdd(G->b, sum, e, "");
      }
      return sum;
    }
    if (!is_float(x->dt)) return intrinsic(G, "llvm.vector.reduce.add", LLVMTypeOf(a), &a, 1);
    args[0] = LLVMConstReal(scalar_type(G, x->dt), -0.0); /* ordered: lane order, as the C */
    args[1] = a;
    return intrinsic(G, "llvm.vector.reduce.fadd", LLVMTypeOf(a), args, 2);
  }
  case MOSS_KX_NEG:
    a = expr(G, x->a[0]);
    return is_float(x->dt) ? LLVMBuildFNeg(G->b, a, "") : LLVMBuildNeg(G->b, a, "");
  case MOSS_KX_NOT: case MOSS_KX_BNOT: return LLVMBuildNot(G->b, expr(G, x->a[0]), "");
  case MOSS_KX_SELECT: {
    LLVMValueRef c = expr(G, x->a[0]), t = expr(G, x->a[1]), e = expr(G, x->a[2]);
    return LLVMBuildSelect(G->b, c, t, e, "");
  }
  case MOSS_KX_CALL: return call(G, x);
  default: return binary(G, x);
  }
}

/* ---- statements ----------------------------------------------------------------------- */

static void store(gen *G, int buf, LLVMValueRef index, LLVMValueRef v, int lanes) {
  moss_dtype dt = G->k->bufs[buf].dt;
  LLVMValueRef s;
  if (dt == MOSS_DT_BOOL) v = LLVMBuildZExt(G->b, v, vtype(G->i8, lanes), "");
  s = LLVMBuildStore(G->b, v, elem_ptr(G, buf, index));
  LLVMSetAlignment(s, (unsigned)moss_dtype_size(dt));
}

static void stmts(gen *G, const moss_kstmt *s);

/* Loop |s| from |lo| to |hi| (its own bounds, or a part's). */
static void loop(gen *G, const moss_kstmt *s, LLVMValueRef lo, LLVMValueRef hi) {
  LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(G->c, G->fn, "loop");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(G->c, G->fn, "body");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(G->c, G->fn, "done");
  LLVMValueRef iv, var = G->vars[s->var];
  LLVMBuildStore(G->b, lo, var);
  LLVMBuildBr(G->b, head);
  LLVMPositionBuilderAtEnd(G->b, head);
  iv = LLVMBuildLoad2(G->b, G->i64, var, "");
  LLVMBuildCondBr(G->b, LLVMBuildICmp(G->b, LLVMIntSLT, iv, hi, ""), body, done);
  LLVMPositionBuilderAtEnd(G->b, body);
  stmts(G, s->body);
  iv = LLVMBuildLoad2(G->b, G->i64, var, "");
  LLVMBuildStore(G->b, LLVMBuildNSWAdd(G->b, iv, LLVMConstInt(G->i64, (unsigned long long)s->step, 0), ""), var);
  LLVMBuildBr(G->b, head);
  LLVMPositionBuilderAtEnd(G->b, done);
}

static void cut_loop(gen *G, const moss_kstmt *s);

#define MOSS_SPIR_FUNC_CC 75   /* LLVM's CallingConv::SPIR_FUNC: an OpenCL C function */
#define MOSS_SPIR_LOCAL_FENCE 1 /* OpenCL C's CLK_LOCAL_MEM_FENCE */

/* A work-group barrier (MOSS_KS_BARRIER) with the fence on the group's
 * shared memory: NVPTX's bar.sync 0 (llvm.nvvm.barrier0, __syncthreads),
 * spir64's OpenCL C barrier(CLK_LOCAL_MEM_FENCE), which llvm-spirv turns
 * into OpControlBarrier. Both are convergent: the optimizer adds no
 * condition around them, so every lane keeps reaching them alike. */
static void barrier(gen *G) {
  LLVMValueRef f, c, arg = LLVMConstInt(G->i32, MOSS_SPIR_LOCAL_FENCE, 0);
  LLVMTypeRef ft;
  if (G->nvptx) {
    unsigned id = LLVMLookupIntrinsicID("llvm.nvvm.barrier0", 18);
    if (!id) {
      fail(G, MOSS_E_INTERNAL, "NVPTX: this LLVM has no llvm.nvvm.barrier0");
      return;
    }
    LLVMBuildCall2(G->b, LLVMIntrinsicGetType(G->c, id, NULL, 0), LLVMGetIntrinsicDeclaration(G->m, id, NULL, 0),
                   NULL, 0, "");
    return;
  }
  if (!G->spir) {
    fail(G, MOSS_E_INTERNAL, "a work-group barrier on a CPU");
    return;
  }
  ft = LLVMFunctionType(G->voidt, &G->i32, 1, 0);
  if (!(f = LLVMGetNamedFunction(G->m, "_Z7barrierj"))) {
    f = LLVMAddFunction(G->m, "_Z7barrierj", ft);
    LLVMSetFunctionCallConv(f, MOSS_SPIR_FUNC_CC);
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(G->c, LLVMGetEnumAttributeKindForName("convergent", 10), 0));
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(G->c, LLVMGetEnumAttributeKindForName("nounwind", 8), 0));
  }
  c = LLVMBuildCall2(G->b, ft, f, &arg, 1, "");
  LLVMSetInstructionCallConv(c, MOSS_SPIR_FUNC_CC);
}

/* The statements from |s| up to |stop| (NULL: all). */
static void stmts_until(gen *G, const moss_kstmt *s, const moss_kstmt *stop) {
  for (; s && s != stop && G->st == MOSS_OK; s = s->next) {
    switch (s->kind) {
    case MOSS_KS_LOOP:
      /* A work-group's lanes are work-items of their own: only gpu_kernel's
       * grid runs them (its innermost loop), never one lane after the other. */
      if (s->role == MOSS_KL_GROUP) fail(G, MOSS_E_INTERNAL, "a work-group loop outside a GPU's grid");
      else if (s->parts > 1 && G->par) cut_loop(G, s);
      else loop(G, s, expr(G, s->lo), expr(G, s->hi));
      break;
    case MOSS_KS_STORE: store(G, s->buf, expr(G, s->index), expr(G, s->value), s->value->lanes); break;
    case MOSS_KS_LET: case MOSS_KS_SET: LLVMBuildStore(G->b, expr(G, s->value), G->vars[s->var]); break;
    case MOSS_KS_BARRIER: barrier(G); break;
    case MOSS_KS_IF: {
      LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(G->c, G->fn, "then");
      LLVMBasicBlockRef els = LLVMAppendBasicBlockInContext(G->c, G->fn, "else");
      LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(G->c, G->fn, "join");
      LLVMBuildCondBr(G->b, expr(G, s->cond), then, els);
      LLVMPositionBuilderAtEnd(G->b, then);
      stmts(G, s->body);
      LLVMBuildBr(G->b, join);
      LLVMPositionBuilderAtEnd(G->b, els);
      stmts(G, s->orelse);
      LLVMBuildBr(G->b, join);
      LLVMPositionBuilderAtEnd(G->b, join);
      break;
    }
    case MOSS_KS_COMMENT: break;
    }
  }
}

static void stmts(gen *G, const moss_kstmt *s) { stmts_until(G, s, NULL); }

/* ---- parts of a cut loop (moss_kernel_plan_parts) -------------------------------------- */

static void expr_vars(const moss_kx *x, unsigned char *ref) {
  int i;
  if (!x) return;
  if (x->op == MOSS_KX_VAR) ref[x->var] = 1;
  for (i = 0; i < x->nargs; i++) expr_vars(x->a[i], ref);
}

/* Marks the variables |s| (|all|: and the statements after it) reads in
 * |ref| and those it declares in |decl|. */
static void stmt_vars(const moss_kstmt *s, int all, unsigned char *ref, unsigned char *decl) {
  for (; s; s = all ? s->next : NULL) {
    if (s->kind == MOSS_KS_LOOP || s->kind == MOSS_KS_LET) decl[s->var] = 1;
    expr_vars(s->lo, ref);
    expr_vars(s->hi, ref);
    expr_vars(s->index, ref);
    expr_vars(s->value, ref);
    expr_vars(s->cond, ref);
    stmt_vars(s->body, 1, ref, decl);
    stmt_vars(s->orelse, 1, ref, decl);
  }
}

/* Loop |s|, cut into s->parts parts: a body function
 *   void k<id>_b<j>(i32 part, ptr buf..., outer variables...)
 * runs the part's iterations, [lo + trip * p / P, lo + trip * (p + 1) / P)
 * clipped to hi, with its own locals and loop variables, and the values of
 * the variables declared outside the loop that it reads (the kernel
 * planner made sure it sets none); the buffers it takes are noalias as the
 * kernel's are. A part function void k<id>_p<j>(ptr ctx, i32 part) reads
 * them from a struct the kernel fills, and is what the runtime's pool
 * calls (moss_bundle_par); without a pool the kernel calls it for each
 * part in order. */
static void cut_loop(gen *G, const moss_kstmt *s) {
  const moss_kernel *k = G->k;
  LLVMValueRef parent = G->fn, *pbufs = G->bufs, *pvars = G->vars, par = G->par;
  LLVMBasicBlockRef at = LLVMGetInsertBlock(G->b);
  size_t nb = sizeof *G->bufs * (size_t)(k->nbufs + 1), nv = sizeof *G->vars * (size_t)(k->nvars + 1);
  size_t nslot = (size_t)(k->nbufs + k->nvars + 2);
  unsigned char *ref = moss_alloc(G->ctx, (size_t)k->nvars + 1), *decl = moss_alloc(G->ctx, (size_t)k->nvars + 1);
  LLVMTypeRef *types = moss_alloc(G->ctx, sizeof *types * nslot), bty, pty, cty;
  LLVMValueRef *args = moss_alloc(G->ctx, sizeof *args * nslot), bf, pf, ctx, v, P;
  int *slot = moss_alloc(G->ctx, sizeof *slot * nslot), n = 1, i, j = G->ncut++;
  char name[48];
  G->bufs = moss_alloc(G->ctx, nb);
  G->vars = moss_alloc(G->ctx, nv);
  if (!ref || !decl || !types || !args || !slot || !G->bufs || !G->vars) {
    fail(G, MOSS_E_NOMEM, "kernel parts");
    goto out;
  }
  memset(ref, 0, (size_t)k->nvars + 1);
  memset(decl, 0, (size_t)k->nvars + 1);
  stmt_vars(s, 0, ref, decl);
  /* The body's parameters: the part, the buffers that live outside the
   * kernel's frame, the outer variables it reads; |slot| says which. */
  types[0] = G->i32;
  for (i = 0; i < k->nbufs; i++)
    if (k->bufs[i].kind != MOSS_KB_TABLE && k->bufs[i].kind != MOSS_KB_LOCAL) {
      slot[n] = i;
      types[n++] = G->ptr;
    }
  for (i = 0; i < k->nvars; i++)
    if (ref[i] && !decl[i]) {
      slot[n] = k->nbufs + i;
      types[n++] = vtype(scalar_type(G, k->vars[i].dt), k->vars[i].lanes);
    }
  bty = LLVMFunctionType(G->voidt, types, (unsigned)n, 0);
  snprintf(name, sizeof name, "k%d_b%d", k->node->id, j);
  bf = LLVMAddFunction(G->m, name, bty);
  LLVMSetLinkage(bf, LLVMInternalLinkage);
  G->fn = bf;
  G->par = NULL;
  LLVMPositionBuilderAtEnd(G->b, LLVMAppendBasicBlockInContext(G->c, bf, "entry"));
  for (i = 0; i < k->nbufs; i++) {
    G->bufs[i] = pbufs[i]; /* tables: the same globals */
    if (k->bufs[i].kind == MOSS_KB_LOCAL) {
      LLVMValueRef a = LLVMBuildAlloca(G->b, LLVMArrayType2(mem_type(G, k->bufs[i].dt),
                                                           (uint64_t)(k->bufs[i].numel > 0 ? k->bufs[i].numel : 1)),
                                       k->bufs[i].name);
      LLVMSetAlignment(a, 64);
      G->bufs[i] = a;
    }
  }
  for (i = 0; i < k->nvars; i++)
    G->vars[i] = LLVMBuildAlloca(G->b, vtype(scalar_type(G, k->vars[i].dt), k->vars[i].lanes), k->vars[i].name);
  for (i = 1; i < n; i++) {
    LLVMValueRef p = LLVMGetParam(bf, (unsigned)i);
    if (slot[i] < k->nbufs) {
      G->bufs[slot[i]] = p;
      if (G->noalias && (k->bufs[slot[i]].kind == MOSS_KB_INPUT || k->bufs[slot[i]].kind == MOSS_KB_OUTPUT))
        LLVMAddAttributeAtIndex(bf, (LLVMAttributeIndex)(i + 1),
                                LLVMCreateEnumAttribute(G->c, LLVMGetEnumAttributeKindForName("noalias", 7), 0));
    } else {
      LLVMBuildStore(G->b, p, G->vars[slot[i] - k->nbufs]);
    }
  }
  {
    LLVMValueRef lo = expr(G, s->lo), hi = expr(G, s->hi), step = LLVMConstInt(G->i64, (unsigned long long)s->step, 0);
    LLVMValueRef parts = LLVMConstInt(G->i64, (unsigned long long)s->parts, 0), zero = LLVMConstInt(G->i64, 0, 0);
    LLVMValueRef p = LLVMBuildZExt(G->b, LLVMGetParam(bf, 0), G->i64, ""), trip, b0, b1, hi1;
    trip = LLVMBuildSDiv(G->b, LLVMBuildAdd(G->b, LLVMBuildSub(G->b, hi, lo, ""),
                                            LLVMConstInt(G->i64, (unsigned long long)(s->step - 1), 0), ""), step, "");
    trip = LLVMBuildSelect(G->b, LLVMBuildICmp(G->b, LLVMIntSGT, trip, zero, ""), trip, zero, "");
    b0 = LLVMBuildSDiv(G->b, LLVMBuildMul(G->b, trip, p, ""), parts, "");
    b1 = LLVMBuildSDiv(G->b, LLVMBuildMul(G->b, trip, LLVMBuildAdd(G->b, p, LLVMConstInt(G->i64, 1, 0), ""), ""), parts, "");
    hi1 = LLVMBuildAdd(G->b, lo, LLVMBuildMul(G->b, b1, step, ""), "");
    hi1 = LLVMBuildSelect(G->b, LLVMBuildICmp(G->b, LLVMIntSLT, hi1, hi, ""), hi1, hi, "");
    loop(G, s, LLVMBuildAdd(G->b, lo, LLVMBuildMul(G->b, b0, step, ""), ""), hi1);
  }
  LLVMBuildRetVoid(G->b);
  /* The part function: the context struct's fields, then the body. */
  cty = LLVMStructTypeInContext(G->c, types + 1, (unsigned)(n - 1), 0);
  {
    LLVMTypeRef pt[2] = {G->ptr, G->i32};
    pty = LLVMFunctionType(G->voidt, pt, 2, 0);
  }
  snprintf(name, sizeof name, "k%d_p%d", k->node->id, j);
  pf = LLVMAddFunction(G->m, name, pty);
  LLVMSetLinkage(pf, LLVMInternalLinkage);
  LLVMPositionBuilderAtEnd(G->b, LLVMAppendBasicBlockInContext(G->c, pf, "entry"));
  args[0] = LLVMGetParam(pf, 1);
  for (i = 1; i < n; i++)
    args[i] = LLVMBuildLoad2(G->b, types[i], LLVMBuildStructGEP2(G->b, cty, LLVMGetParam(pf, 0), (unsigned)(i - 1), ""), "");
  LLVMBuildCall2(G->b, bty, bf, args, (unsigned)n, "");
  LLVMBuildRetVoid(G->b);
  /* In the kernel: fill the context (its alloca in the entry block), run the parts. */
  G->fn = parent;
  G->par = par;
  {
    LLVMValueRef first = LLVMGetFirstInstruction(G->top);
    if (first) LLVMPositionBuilderBefore(G->b, first);
    else LLVMPositionBuilderAtEnd(G->b, G->top);
    ctx = LLVMBuildAlloca(G->b, cty, "parts");
  }
  LLVMPositionBuilderAtEnd(G->b, at);
  for (i = 1; i < n; i++) {
    v = slot[i] < k->nbufs ? pbufs[slot[i]] : LLVMBuildLoad2(G->b, types[i], pvars[slot[i] - k->nbufs], "");
    LLVMBuildStore(G->b, v, LLVMBuildStructGEP2(G->b, cty, ctx, (unsigned)(i - 1), ""));
  }
  P = LLVMConstInt(G->i32, (unsigned long long)s->parts, 0);
  {
    LLVMBasicBlockRef pool = LLVMAppendBasicBlockInContext(G->c, parent, "pool");
    LLVMBasicBlockRef self = LLVMAppendBasicBlockInContext(G->c, parent, "serial");
    LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(G->c, parent, "part");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(G->c, parent, "joined");
    LLVMTypeRef rt, rp[4] = {G->ptr, G->ptr, G->ptr, G->i32};
    LLVMValueRef ra[4], phi, next, inc[2];
    LLVMBasicBlockRef from[2];
    LLVMBuildCondBr(G->b, LLVMBuildIsNull(G->b, par, ""), self, pool);
    LLVMPositionBuilderAtEnd(G->b, pool);
    rt = LLVMFunctionType(G->voidt, rp, 4, 0);
    ra[0] = par;
    ra[1] = pf;
    ra[2] = ctx;
    ra[3] = P;
    LLVMBuildCall2(G->b, rt, LLVMBuildLoad2(G->b, G->ptr, par, "run"), ra, 4, "");
    LLVMBuildBr(G->b, done);
    LLVMPositionBuilderAtEnd(G->b, self);
    LLVMBuildBr(G->b, head);
    LLVMPositionBuilderAtEnd(G->b, head);
    phi = LLVMBuildPhi(G->b, G->i32, "p");
    ra[0] = ctx;
    ra[1] = phi;
    LLVMBuildCall2(G->b, pty, pf, ra, 2, "");
    next = LLVMBuildAdd(G->b, phi, LLVMConstInt(G->i32, 1, 0), "");
    inc[0] = LLVMConstInt(G->i32, 0, 0);
    inc[1] = next;
    from[0] = self;
    from[1] = head;
    LLVMAddIncoming(phi, inc, from, 2);
    LLVMBuildCondBr(G->b, LLVMBuildICmp(G->b, LLVMIntULT, next, P, ""), head, done);
    LLVMPositionBuilderAtEnd(G->b, done);
  }
out:
  moss_free(G->ctx, G->bufs, nb);
  moss_free(G->ctx, G->vars, nv);
  G->bufs = pbufs;
  G->vars = pvars;
  G->fn = parent;
  G->par = par;
  moss_free(G->ctx, ref, (size_t)k->nvars + 1);
  moss_free(G->ctx, decl, (size_t)k->nvars + 1);
  moss_free(G->ctx, types, sizeof *types * nslot);
  moss_free(G->ctx, args, sizeof *args * nslot);
  moss_free(G->ctx, slot, sizeof *slot * nslot);
}

/* ---- the module ----------------------------------------------------------------------- */

static const moss_value *root_of(const moss_value *v) {
  while (v->alias) v = v->alias;
  return v;
}

/* The global holding constant |r|'s bytes, made once. */
static LLVMValueRef weight(gen *G, const moss_value *r) {
  size_t n = moss_value_nbytes(r);
  LLVMValueRef init, gv;
  char name[48];
  if (G->globals[r->id]) return G->globals[r->id];
  init = LLVMConstStringInContext(G->c, (const char *)r->data, (unsigned)n, 1);
  snprintf(name, sizeof name, "w%d", r->id);
  gv = LLVMAddGlobal(G->m, LLVMTypeOf(init), name);
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMInternalLinkage);
  LLVMSetUnnamedAddress(gv, LLVMGlobalUnnamedAddr);
  LLVMSetAlignment(gv, 64);
  G->globals[r->id] = gv;
  return gv;
}

/* Where value |v| lives, from the function's (in, out, arena). */
static LLVMValueRef storage(gen *G, const moss_value *v, LLVMValueRef in, LLVMValueRef out, LLVMValueRef arena) {
  const moss_value *r = root_of(v);
  LLVMValueRef idx;
  if (r->input_index >= 0 || r->output_index >= 0) {
    idx = LLVMConstInt(G->i64, (unsigned long long)(r->input_index >= 0 ? r->input_index : r->output_index), 0);
    return LLVMBuildLoad2(G->b, G->ptr, LLVMBuildGEP2(G->b, G->ptr, r->input_index >= 0 ? in : out, &idx, 1, ""), "");
  }
  if (r->data) return weight(G, r);
  idx = LLVMConstInt(G->i64, (unsigned long long)(r->offset > 0 ? r->offset : 0), 0);
  return LLVMBuildGEP2(G->b, G->i8, arena, &idx, 1, "");
}

/* Whether an output of |n| may share memory with one of its inputs (an
 * in-place view, or overlapping arena ranges). */
static int shares_storage(const moss_node *n) {
  int i, j;
  for (j = 0; j < n->noutputs; j++) {
    const moss_value *ry = n->outputs[j] ? root_of(n->outputs[j]) : NULL;
    if (!ry) continue;
    for (i = 0; i < n->ninputs; i++) {
      const moss_value *rx = n->inputs[i] ? root_of(n->inputs[i]) : NULL;
      if (!rx) continue;
      if (rx == ry) return 1;
      if (!rx->data && rx->input_index < 0 && rx->output_index < 0 && ry->input_index < 0 &&
          ry->output_index < 0 && rx->offset < ry->offset + (int64_t)moss_value_nbytes(ry) &&
          ry->offset < rx->offset + (int64_t)moss_value_nbytes(rx))
        return 1;
    }
  }
  return 0;
}

/* ---- one function per distinct kernel ------------------------------------------------ */

/* A kernel's identity: everything that decides its function's code (the
 * statements, expressions, buffer types and table bytes, variable types,
 * whether its pointers are noalias), not the node's name or where its
 * buffers live, which the caller passes. Nodes whose kernels serialize
 * alike share one function: a long chain of equal layers compiles once. */
static void key_expr(moss_buf *o, const moss_kx *x) {
  int i;
  if (!x) {
    moss_buf_put(o, "-", 1);
    return;
  }
  int32_t w[7] = {(int32_t)x->op, (int32_t)x->dt, x->lanes, x->nargs, x->var, x->buf, (int32_t)x->fn};
  moss_buf_put(o, "(", 1);
  moss_buf_put(o, w, sizeof w);
  moss_buf_put(o, &x->i, sizeof x->i);
  moss_buf_put(o, &x->f, sizeof x->f);
  for (i = 0; i < x->nargs; i++) key_expr(o, x->a[i]);
  moss_buf_put(o, ")", 1);
}

static void key_stmts(moss_buf *o, const moss_kstmt *st) {
  for (; st; st = st->next) {
    if (st->kind == MOSS_KS_COMMENT) continue;
    int32_t w[6] = {(int32_t)st->kind, st->var, st->buf, (int32_t)st->role, st->width, st->parts};
    moss_buf_put(o, "[", 1);
    moss_buf_put(o, w, sizeof w);
    moss_buf_put(o, &st->step, sizeof st->step);
    key_expr(o, st->lo);
    key_expr(o, st->hi);
    key_expr(o, st->index);
    key_expr(o, st->value);
    key_expr(o, st->cond);
    key_stmts(o, st->body);
    moss_buf_put(o, "|", 1);
    key_stmts(o, st->orelse);
    moss_buf_put(o, "]", 1);
  }
}

static void kernel_key(moss_buf *o, const moss_kernel *k, int noalias, char out_hex[65]) {
  int i;
  o->len = 0;
  moss_buf_printf(o, "noalias %d bufs %d vars %d\n", noalias, k->nbufs, k->nvars);
  for (i = 0; i < k->nbufs; i++) {
    const moss_kbuf *bf = &k->bufs[i];
    moss_buf_printf(o, "b %d %d %lld\n", (int)bf->kind, (int)bf->dt, (long long)bf->numel);
    if (bf->kind == MOSS_KB_TABLE) moss_buf_put(o, bf->data, (size_t)bf->numel * moss_dtype_size(bf->dt));
    if (bf->kind == MOSS_KB_SCRATCH) /* where it is in the arena */
      moss_buf_printf(o, "at %lld\n", (long long)(k->node->scratch_offset + bf->offset));
  }
  for (i = 0; i < k->nvars; i++)
    moss_buf_printf(o, "v %d %d %d\n", (int)k->vars[i].dt, k->vars[i].lanes, k->vars[i].is_loop);
  key_stmts(o, k->body);
  moss_sha256_hex(o->data ? o->data : "", o->len, out_hex);
}

/* The node whose function node |idx|'s kernel can call (-1: none yet;
 * then |idx| is recorded as the first of its kind). */
static int shared_kernel(gen *G, const moss_kernel *k, int noalias, int idx) {
  char hex[65];
  size_t h, mask = G->nslots - 1;
  kernel_key(&G->keybuf, k, noalias, hex);
  if (G->keybuf.failed) {
    fail(G, MOSS_E_NOMEM, "kernel");
    return -1;
  }
  for (h = (size_t)moss_hash64(hex, 64, 0) & mask; G->slots[h].node >= 0; h = (h + 1) & mask)
    if (!memcmp(G->slots[h].sha, hex, 64)) return G->slots[h].node;
  memcpy(G->slots[h].sha, hex, 64);
  G->slots[h].node = idx;
  return -1;
}

/* The kernel of node number |idx| as an internal function
 * void k<id>(ptr arena, ptr par, ptr buf...) taking the pool
 * (moss_bundle_par, NULL: none) and its inputs' and outputs'
 * storage; the pointers are noalias when the planner keeps the outputs
 * apart from the inputs (as the C backend's restrict), which lets the
 * vectorizer run without run-time overlap checks. */
static void inner_bufs(gen *G, const moss_kernel *k, LLVMValueRef arena);

/* Ends the kernel function being built, and frees its buffers' (|nb|
 * bytes) and variables' (|nv|) tables. */
static void kernel_done(gen *G, size_t nb, size_t nv) {
  LLVMBuildRetVoid(G->b);
  moss_free(G->ctx, G->bufs, nb);
  moss_free(G->ctx, G->vars, nv);
  G->bufs = G->vars = NULL;
  G->k = NULL;
}

static moss_status kernel_fn(gen *G, const moss_kernel *k, int idx, LLVMValueRef *kfns) {
  const moss_node *n = k->node;
  LLVMValueRef *out_fn = &kfns[idx];
  int same;
  LLVMValueRef f, arena;
  LLVMBasicBlockRef entry;
  LLVMTypeRef params[65];
  char name[32];
  int i, nio = 0, noalias = !shares_storage(n);
  size_t nb = sizeof *G->bufs * (size_t)(k->nbufs + 1), nv = sizeof *G->vars * (size_t)(k->nvars + 1);
  params[0] = params[1] = G->ptr;
  for (i = 0; i < k->nbufs; i++)
    if (k->bufs[i].kind == MOSS_KB_INPUT || k->bufs[i].kind == MOSS_KB_OUTPUT) nio++;
  if (nio + 1 > (int)(sizeof params / sizeof params[0])) return fail(G, MOSS_E_UNSUPPORTED, "more than 63 inputs and outputs");
  G->kio[idx] = moss_alloc(G->ctx, sizeof *G->kio[idx] * (size_t)(nio + 1));
  if (!G->kio[idx]) return fail(G, MOSS_E_NOMEM, "kernel");
  G->nkio[idx] = nio;
  for (i = 0, nio = 0; i < k->nbufs; i++)
    if (k->bufs[i].kind == MOSS_KB_INPUT || k->bufs[i].kind == MOSS_KB_OUTPUT) {
      G->kio[idx][nio++] = k->bufs[i].value;
      params[nio + 1] = G->ptr;
    }
  G->ktypes[idx] = LLVMFunctionType(G->voidt, params, (unsigned)(nio + 2), 0);
  same = shared_kernel(G, k, noalias, idx);
  if (G->st != MOSS_OK) return G->st;
  if (same >= 0) {
    *out_fn = kfns[same];
    return MOSS_OK;
  }
  snprintf(name, sizeof name, "k%d", n->id);
  f = LLVMAddFunction(G->m, name, G->ktypes[idx]);
  LLVMSetLinkage(f, LLVMInternalLinkage);
  /* Each kernel stays a function of its own: inlined into one entry, a
   * long graph makes one huge function, and the optimizer's time grows
   * faster than linearly with it (2,000 nodes took a minute). The call
   * costs nothing beside a kernel; noalias keeps the loops vectorized. */
  LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                          LLVMCreateEnumAttribute(G->c, LLVMGetEnumAttributeKindForName("noinline", 8), 0));
  if (noalias)
    for (i = 2; i <= nio + 1; i++)
      LLVMAddAttributeAtIndex(f, (LLVMAttributeIndex)(i + 1),
                              LLVMCreateEnumAttribute(G->c, LLVMGetEnumAttributeKindForName("noalias", 7), 0));
  G->fn = f;
  G->k = k;
  G->bufs = moss_alloc(G->ctx, nb);
  G->vars = moss_alloc(G->ctx, nv);
  if (!G->bufs || !G->vars) {
    moss_free(G->ctx, G->bufs, nb);
    moss_free(G->ctx, G->vars, nv);
    return fail(G, MOSS_E_NOMEM, "kernel");
  }
  memset(G->bufs, 0, nb);
  entry = LLVMAppendBasicBlockInContext(G->c, f, "entry");
  LLVMPositionBuilderAtEnd(G->b, entry);
  arena = LLVMGetParam(f, 0);
  G->par = LLVMGetParam(f, 1);
  G->top = entry;
  G->noalias = noalias;
  G->ncut = 0;
  for (i = 0, nio = 0; i < k->nbufs; i++)
    if (k->bufs[i].kind == MOSS_KB_INPUT || k->bufs[i].kind == MOSS_KB_OUTPUT)
      G->bufs[i] = LLVMGetParam(f, (unsigned)(++nio + 1));
  inner_bufs(G, k, arena);
  stmts(G, k->body);
  kernel_done(G, nb, nv);
  *out_fn = f;
  return G->st;
}

/* The buffers of |k| that are not its inputs and outputs (its tables, its
 * arena scratch from |arena|, its locals) and its variables, from the
 * entry block the builder is in. */
static void inner_bufs(gen *G, const moss_kernel *k, LLVMValueRef arena) {
  const moss_node *n = k->node;
  int i;
  for (i = 0; i < k->nbufs; i++) {
    const moss_kbuf *bf = &k->bufs[i];
    if (bf->kind == MOSS_KB_INPUT || bf->kind == MOSS_KB_OUTPUT || G->bufs[i]) {
      continue; /* the caller's */
    } else if (bf->kind == MOSS_KB_TABLE) {
      size_t bytes = (size_t)bf->numel * moss_dtype_size(bf->dt);
      LLVMValueRef init = LLVMConstStringInContext(G->c, (const char *)bf->data, (unsigned)bytes, 1), gv;
      char tname[48];
      snprintf(tname, sizeof tname, "t%d_%d", n->id, i);
      gv = LLVMAddGlobal(G->m, LLVMTypeOf(init), tname);
      LLVMSetInitializer(gv, init);
      LLVMSetGlobalConstant(gv, 1);
      LLVMSetLinkage(gv, LLVMInternalLinkage);
      LLVMSetAlignment(gv, 64);
      G->bufs[i] = gv;
    } else if (bf->kind == MOSS_KB_SCRATCH) {
      LLVMValueRef at = LLVMConstInt(G->i64, (unsigned long long)(n->scratch_offset + bf->offset), 0);
      G->bufs[i] = LLVMBuildGEP2(G->b, G->i8, arena, &at, 1, bf->name);
    } else if (bf->kind == MOSS_KB_SHARED) {
      /* The work-group's memory: a global of the module in addrspace(3)
       * (NVPTX's .shared, SPIR's Workgroup storage: OpenCL C's __local), one
       * per buffer of each kernel function, named after it. Uninitialized:
       * neither has initial values for it. */
      LLVMTypeRef at;
      LLVMValueRef gv;
      char sname[64];
      size_t len = 0;
      const char *fname = G->fn ? LLVMGetValueName2(G->fn, &len) : "";
      if (!G->nvptx && !G->spir) {
        fail(G, MOSS_E_INTERNAL, "a work-group's shared buffer on a CPU");
        continue;
      }
      at = LLVMArrayType2(mem_type(G, bf->dt), (uint64_t)(bf->numel > 0 ? bf->numel : 1));
      snprintf(sname, sizeof sname, "%.*s_s%d", (int)(len < 40 ? len : 40), fname, i);
      gv = LLVMAddGlobalInAddressSpace(G->m, at, sname, 3);
      LLVMSetInitializer(gv, LLVMGetUndef(at));
      LLVMSetLinkage(gv, LLVMInternalLinkage);
      LLVMSetAlignment(gv, 16);
      G->bufs[i] = gv;
    } else {
      LLVMTypeRef at = LLVMArrayType2(mem_type(G, bf->dt), (uint64_t)(bf->numel > 0 ? bf->numel : 1));
      LLVMValueRef a = LLVMBuildAlloca(G->b, at, bf->name);
      LLVMSetAlignment(a, 64);
      G->bufs[i] = a;
    }
  }
  for (i = 0; i < k->nvars; i++)
    G->vars[i] = LLVMBuildAlloca(G->b, vtype(scalar_type(G, k->vars[i].dt), k->vars[i].lanes), k->vars[i].name);
}

/* Calls node |i|'s kernel with the storage of its buffers, from the
 * entry point's (in, out, arena, par) in |args|. */
static void call_kernel(gen *G, LLVMValueRef *kfns, int i, LLVMValueRef *args) {
  LLVMValueRef a[65];
  int j;
  a[0] = args[2];
  a[1] = args[3];
  for (j = 0; j < G->nkio[i]; j++) a[j + 2] = storage(G, G->kio[i][j], args[0], args[1], args[2]);
  LLVMBuildCall2(G->b, G->ktypes[i], kfns[i], a, (unsigned)(G->nkio[i] + 2), "");
}

/* The calls of nodes |from| .. |to| - 1 (a segment's, which are
 * consecutive; or every node) with the entry's |args| (in, out, arena, par), in
 * order, from the block the builder is in. Long graphs get their calls in internal functions of at most
 * CALLS_PER_CHUNK calls each, called in turn: the code generator's time
 * grows faster than linearly with the size of one function, and a
 * 100,000-node chain would otherwise spend most of its compile there. */
#define CALLS_PER_CHUNK 256
static void call_kernels(gen *G, LLVMValueRef *kfns, const char *prefix, int from, int to,
                         LLVMValueRef *args) {
  LLVMTypeRef params[4] = {G->ptr, G->ptr, G->ptr, G->ptr};
  LLVMTypeRef vt = LLVMFunctionType(G->voidt, params, 4, 0);
  LLVMBasicBlockRef entry = LLVMGetInsertBlock(G->b);
  int i, total = 0, in_chunk = 0, j;
  char name[300];
  for (i = from; i < to; i++) total += kfns[i] != NULL;
  if (total <= CALLS_PER_CHUNK) {
    for (i = from; i < to; i++)
      if (kfns[i]) call_kernel(G, kfns, i, args);
    return;
  }
  for (i = from; i < to; i++) {
    LLVMValueRef inner[4];
    if (!kfns[i]) continue;
    if (in_chunk == 0) {
      LLVMValueRef f;
      snprintf(name, sizeof name, "%s_calls%d", prefix, i);
      f = LLVMAddFunction(G->m, name, vt);
      LLVMSetLinkage(f, LLVMInternalLinkage);
      LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex,
                              LLVMCreateEnumAttribute(G->c, LLVMGetEnumAttributeKindForName("noinline", 8), 0));
      LLVMPositionBuilderAtEnd(G->b, entry);
      LLVMBuildCall2(G->b, vt, f, args, 4, "");
      LLVMPositionBuilderAtEnd(G->b, LLVMAppendBasicBlockInContext(G->c, f, "entry"));
    }
    for (j = 0; j < 4; j++) inner[j] = LLVMGetParam(LLVMGetBasicBlockParent(LLVMGetInsertBlock(G->b)), (unsigned)j);
    call_kernel(G, kfns, i, inner);
    if (++in_chunk == CALLS_PER_CHUNK) {
      LLVMBuildRetVoid(G->b);
      in_chunk = 0;
    }
  }
  if (in_chunk) LLVMBuildRetVoid(G->b);
  LLVMPositionBuilderAtEnd(G->b, entry);
}

/* Copies graph outputs that no node writes (constants, graph inputs). */
static void output_copies(gen *G, LLVMValueRef in, LLVMValueRef out) {
  moss_graph *g = G->g;
  int i;
  for (i = 0; i < g->noutputs; i++) {
    const moss_value *v = g->outputs[i];
    LLVMValueRef dst, src, idx;
    if (v->producer) continue;
    idx = LLVMConstInt(G->i64, (unsigned long long)i, 0);
    dst = LLVMBuildLoad2(G->b, G->ptr, LLVMBuildGEP2(G->b, G->ptr, out, &idx, 1, ""), "");
    if (v->data) {
      src = weight(G, v);
    } else {
      idx = LLVMConstInt(G->i64, (unsigned long long)v->input_index, 0);
      src = LLVMBuildLoad2(G->b, G->ptr, LLVMBuildGEP2(G->b, G->ptr, in, &idx, 1, ""), "");
    }
    LLVMBuildMemCpy(G->b, dst, 1, src, 1, LLVMConstInt(G->i64, moss_value_nbytes(v), 0));
  }
}

/* The constant moss_figures (moss_bundle.h, moss_bundle_figures): the
 * |n| bytes at |fig| the bundle writer made, as 64-bit little-endian words,
 * then the entries |fns| (|nfns|) in plan order. libmossrt compares it with
 * the bundle's metadata and plan. */
static void figures_global(gen *G, const uint8_t *fig, size_t n, LLVMValueRef *fns, int nfns) {
  size_t i, nw = n / 8;
  LLVMValueRef *words = moss_alloc(G->ctx, sizeof *words * (nw + 1)), h[2], init, gv;
  if (!words) {
    fail(G, MOSS_E_NOMEM, "figures");
    return;
  }
  for (i = 0; i < nw; i++) {
    unsigned long long w = 0;
    int b;
    for (b = 7; b >= 0; b--) w = w << 8 | fig[i * 8 + (size_t)b];
    words[i] = LLVMConstInt(G->i64, w, 0);
  }
  h[0] = LLVMConstArray2(G->i64, words, (uint64_t)nw);
  h[1] = LLVMConstArray2(G->ptr, fns, (uint64_t)nfns);
  init = LLVMConstStructInContext(G->c, h, 2, 0);
  gv = LLVMAddGlobal(G->m, LLVMTypeOf(init), MOSS_BUNDLE_FIGURES_SYMBOL);
  LLVMSetInitializer(gv, init);
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMExternalLinkage);
  LLVMSetAlignment(gv, 8);
  moss_free(G->ctx, words, sizeof *words * (nw + 1));
}

/* The segmented form: int <prefix>_seg<k>(in, out, arena, par) per flagged
 * segment (moss_bundle.h: the runtime's calling convention); the first one
 * also makes the output copies. Then the figures. */
static moss_status segment_points(gen *G, LLVMValueRef *kfns, const char *prefix, const unsigned char *segs,
                                  int nseg, const uint8_t *fig, size_t nfig) {
  LLVMTypeRef params[4] = {G->ptr, G->ptr, G->ptr, G->ptr};
  LLVMTypeRef vt = LLVMFunctionType(G->i32, params, 4, 0);
  LLVMValueRef *fns = moss_alloc(G->ctx, sizeof *fns * (size_t)(nseg + 1));
  int k, i, first = 1, nfns = 0, at = 0, end;
  if (!fns) return fail(G, MOSS_E_NOMEM, "entry points");
  for (k = 0; k < nseg; k++) {
    LLVMValueRef f, args[4];
    char name[300];
    /* Segment k's nodes are the next ones numbered k (the partition keeps
     * them consecutive and in order). */
    while (at < G->g->nnodes && G->g->nodes[at]->segment < k) at++;
    for (end = at; end < G->g->nnodes && G->g->nodes[end]->segment == k; end++) continue;
    if (!segs[k]) continue;
    snprintf(name, sizeof name, "%s_seg%d", prefix, k);
    f = LLVMAddFunction(G->m, name, vt);
    fns[nfns++] = f;
    LLVMPositionBuilderAtEnd(G->b, LLVMAppendBasicBlockInContext(G->c, f, "entry"));
    for (i = 0; i < 4; i++) args[i] = LLVMGetParam(f, (unsigned)i);
    if (first) output_copies(G, args[0], args[1]);
    first = 0;
    call_kernels(G, kfns, prefix, at, end, args);
    LLVMBuildRet(G->b, LLVMConstInt(G->i32, 0, 0));
  }
  figures_global(G, fig, nfig, fns, nfns);
  moss_free(G->ctx, fns, sizeof *fns * (size_t)(nseg + 1));
  return G->st;
}

/* <prefix>_run_v and <prefix>_run. */
static moss_status entry_points(gen *G, LLVMValueRef *kfns, const char *prefix) {
  moss_graph *g = G->g;
  LLVMTypeRef params[3] = {G->ptr, G->ptr, G->ptr}, *rparams;
  LLVMTypeRef vt = LLVMFunctionType(G->i32, params, 3, 0), rt;
  LLVMValueRef run_v, run, args[4], inarr, outarr;
  char name[300];
  int i, nr = g->ninputs + g->noutputs + 1;
  snprintf(name, sizeof name, "%s_run_v", prefix);
  run_v = LLVMAddFunction(G->m, name, vt);
  LLVMPositionBuilderAtEnd(G->b, LLVMAppendBasicBlockInContext(G->c, run_v, "entry"));
  for (i = 0; i < 3; i++) args[i] = LLVMGetParam(run_v, (unsigned)i);
  args[3] = LLVMConstPointerNull(G->ptr); /* no pool: parts run in order */
  output_copies(G, args[0], args[1]);
  call_kernels(G, kfns, prefix, 0, g->nnodes, args);
  LLVMBuildRet(G->b, LLVMConstInt(G->i32, 0, 0));

  rparams = moss_alloc(G->ctx, sizeof *rparams * (size_t)nr);
  if (!rparams) return fail(G, MOSS_E_NOMEM, "entry points");
  for (i = 0; i < nr; i++) rparams[i] = G->ptr;
  rt = LLVMFunctionType(G->i32, rparams, (unsigned)nr, 0);
  snprintf(name, sizeof name, "%s_run", prefix);
  run = LLVMAddFunction(G->m, name, rt);
  LLVMPositionBuilderAtEnd(G->b, LLVMAppendBasicBlockInContext(G->c, run, "entry"));
  inarr = LLVMBuildAlloca(G->b, LLVMArrayType2(G->ptr, (uint64_t)(g->ninputs ? g->ninputs : 1)), "in");
  outarr = LLVMBuildAlloca(G->b, LLVMArrayType2(G->ptr, (uint64_t)(g->noutputs ? g->noutputs : 1)), "out");
  for (i = 0; i < g->ninputs + g->noutputs; i++) {
    int isin = i < g->ninputs;
    LLVMValueRef idx = LLVMConstInt(G->i64, (unsigned long long)(isin ? i : i - g->ninputs), 0);
    LLVMBuildStore(G->b, LLVMGetParam(run, (unsigned)i),
                   LLVMBuildGEP2(G->b, G->ptr, isin ? inarr : outarr, &idx, 1, ""));
  }
  args[0] = inarr;
  args[1] = outarr;
  args[2] = LLVMGetParam(run, (unsigned)(nr - 1));
  LLVMBuildRet(G->b, LLVMBuildCall2(G->b, vt, run_v, args, 3, ""));
  moss_free(G->ctx, rparams, sizeof *rparams * (size_t)nr);
  return G->st;
}

static void init_targets(void) {
  static int done;
  if (done) return;
  done = 1;
  LLVMInitializeX86TargetInfo();
  LLVMInitializeX86Target();
  LLVMInitializeX86TargetMC();
  LLVMInitializeX86AsmPrinter();
  LLVMInitializeAArch64TargetInfo();
  LLVMInitializeAArch64Target();
  LLVMInitializeAArch64TargetMC();
  LLVMInitializeAArch64AsmPrinter();
  LLVMInitializeRISCVTargetInfo();
  LLVMInitializeRISCVTarget();
  LLVMInitializeRISCVTargetMC();
  LLVMInitializeRISCVAsmPrinter();
  LLVMInitializeARMTargetInfo();
  LLVMInitializeARMTarget();
  LLVMInitializeARMTargetMC();
  LLVMInitializeARMAsmPrinter();
  LLVMInitializeNVPTXTargetInfo();
  LLVMInitializeNVPTXTarget();
  LLVMInitializeNVPTXTargetMC();
  LLVMInitializeNVPTXAsmPrinter();
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* cpu "native" as this machine's CPU and features; |*own_cpu| and
 * |*own_features| are then LLVM's strings, disposed by the caller. */
static void resolve_native(const char **cpu, const char **features, char **own_cpu, char **own_features) {
  *own_cpu = *own_features = NULL;
  if (!*cpu || strcmp(*cpu, "native")) return;
  *own_cpu = LLVMGetHostCPUName();
  *own_features = LLVMGetHostCPUFeatures();
  *cpu = *own_cpu;
  *features = *own_features;
}

void moss_llvm_kernel_cpu(const char *triple, const char *cpu, const char *features,
                          moss_kernel_cpu *out) {
  char *host_cpu, *host_features;
  resolve_native(&cpu, &features, &host_cpu, &host_features);
  moss_kernel_cpu_from_codegen(triple, cpu, features, out);
  if (host_cpu) LLVMDisposeMessage(host_cpu);
  if (host_features) LLVMDisposeMessage(host_features);
}

static LLVMTargetMachineRef machine(gen *G, const moss_llvm_target *t) {
  LLVMTargetRef target;
  LLVMTargetMachineRef tm;
  char *err = NULL, *host_cpu, *host_features;
  const char *cpu = t->cpu ? t->cpu : "generic", *features = t->features ? t->features : "";
  init_targets();
  if (LLVMGetTargetFromTriple(t->triple, &target, &err)) {
    moss_fail(G->ctx, MOSS_E_UNSUPPORTED, NULL, "LLVM backend: triple '%s': %s", t->triple, err ? err : "?");
    LLVMDisposeMessage(err);
    return NULL;
  }
  resolve_native(&cpu, &features, &host_cpu, &host_features);
  tm = LLVMCreateTargetMachine(target, t->triple, cpu, features, LLVMCodeGenLevelAggressive, LLVMRelocPIC,
                               LLVMCodeModelDefault);
  moss_kernel_cpu_from_codegen(t->triple, cpu, features, &G->cpu);
  G->cpu.threads = t->threads;
  if (host_cpu) LLVMDisposeMessage(host_cpu);
  if (host_features) LLVMDisposeMessage(host_features);
  if (!tm) moss_fail(G->ctx, MOSS_E_TARGET, NULL, "LLVM backend: no target machine for '%s' (cpu %s)", t->triple, cpu);
  return tm;
}

/* The data layout of spir64 (clang's SPIR64 target, whose module LLVM
 * builds without a target machine): little-endian, 64-bit pointers in
 * every address space, vectors aligned to their size. */
static const char spir64_layout[] =
    "e-i64:64-v16:16-v24:32-v32:32-v48:64-v96:128-v192:256-v256:256-v512:512-v1024:1024";

/* A context, an empty module |name| for |triple| with |tm|'s data layout
 * (NULL: spir64's), a builder, and the types G keeps. */
static void module_init(gen *G, LLVMTargetMachineRef tm, const char *name, const char *triple) {
  G->c = LLVMContextCreate();
  G->m = LLVMModuleCreateWithNameInContext(name, G->c);
  G->b = LLVMCreateBuilderInContext(G->c);
  LLVMSetTarget(G->m, triple);
  if (tm) {
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(G->m, td);
    LLVMDisposeTargetData(td);
  } else {
    LLVMSetDataLayout(G->m, spir64_layout);
  }
  G->ptr = LLVMPointerTypeInContext(G->c, 0);
  G->i1 = LLVMInt1TypeInContext(G->c);
  G->i8 = LLVMInt8TypeInContext(G->c);
  G->i16 = LLVMInt16TypeInContext(G->c);
  G->i32 = LLVMInt32TypeInContext(G->c);
  G->i64 = LLVMInt64TypeInContext(G->c);
  G->f32 = LLVMFloatTypeInContext(G->c);
  G->f16 = LLVMHalfTypeInContext(G->c);
  G->f64 = LLVMDoubleTypeInContext(G->c);
  G->voidt = LLVMVoidTypeInContext(G->c);
}

/* How verify_optimize() sets the vectorizers. */
enum {
  VEC_CPU,    /* loop and SLP vectorizers and loop unrolling on */
  VEC_NVPTX,  /* the pass builder's defaults (NVPTX's cost model keeps code scalar) */
  VEC_NONE    /* scalar code (spir64): no target machine, so no cost model to bound the
               * vector widths, SPIR-V 1.0 has vectors of 2, 3, 4, 8 and 16 elements only
               * and llvm-spirv-15 no llvm.vector.reduce.*; and LLVM 19 runs its SLP
               * vectorizer whatever the options say (at O2 too), which made <32 x i32>
               * reductions of int8 dot products and <4 x i8> ones of MaxPool windows.
               * Both vectorizers leave a function with the attribute noimplicitfloat
               * alone: every function gets it (the OpenCL driver vectorizes for its
               * device) */
};

/* Checks the module (a module that fails is our bug) and optimizes it
 * with "default<O3>" for |tm| (NULL: no target machine, the middle end's
 * target-independent passes), the vectorizers as |vec| says. |what| names
 * the backend in errors. */
static moss_status verify_optimize(gen *G, LLVMTargetMachineRef tm, int vec, const char *what) {
  LLVMPassBuilderOptionsRef po;
  LLVMErrorRef e;
  char *err = NULL;
  if (LLVMVerifyModule(G->m, LLVMReturnStatusAction, &err)) {
    G->st = moss_fail(G->ctx, MOSS_E_INTERNAL, NULL, "%s: the module does not verify: %.600s", what, err ? err : "?");
    LLVMDisposeMessage(err);
    return G->st;
  }
  LLVMDisposeMessage(err);
  po = LLVMCreatePassBuilderOptions();
  if (vec == VEC_CPU) {
    LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
    LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
    LLVMPassBuilderOptionsSetLoopUnrolling(po, 1);
  } else if (vec == VEC_NONE) {
    LLVMPassBuilderOptionsSetLoopVectorization(po, 0);
    LLVMPassBuilderOptionsSetSLPVectorization(po, 0);
  }
  moss_progress(G->ctx, "LLVM optimization", 0, 0);
  if (vec == VEC_NONE) {
    LLVMValueRef f;
    unsigned kind = LLVMGetEnumAttributeKindForName("noimplicitfloat", 15);
    for (f = LLVMGetFirstFunction(G->m); f; f = LLVMGetNextFunction(f))
      if (LLVMGetFirstBasicBlock(f))
        LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(G->c, kind, 0));
  }
  /* spir64: loops in simplified form at the end (a preheader, one latch,
   * exits of their own), else llvm-spirv-15 makes the exit blocks itself,
   * placed before the loop that dominates them */
  e = LLVMRunPasses(G->m, vec == VEC_NONE ? "default<O3>,function(loop-simplify)" : "default<O3>", tm, po);
  LLVMDisposePassBuilderOptions(po);
  if (e) {
    char *msg = LLVMGetErrorMessage(e);
    G->st = moss_fail(G->ctx, MOSS_E_INTERNAL, NULL, "%s: optimization failed: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
  }
  return G->st;
}

/* Whether node |n| belongs in this object. */
static int wanted(const moss_node *n, const unsigned char *segs, int nseg) {
  return !segs || (n->segment >= 0 && n->segment < nseg && segs[n->segment]);
}

moss_status moss_llvm_emit_object(moss_ctx *ctx, moss_graph *g, const moss_llvm_target *t,
                                  const char *prefix, const unsigned char *segs, int nseg,
                                  const uint8_t *figures, size_t nfigures, uint8_t **out_obj,
                                  size_t *out_size, moss_llvm_stats *out_stats) {
  gen G;
  moss_arena *karena = NULL;
  LLVMTargetMachineRef tm = NULL;
  LLVMValueRef *kfns = NULL;
  LLVMMemoryBufferRef mb = NULL;
  LLVMTypeRef params[3];
  char *err = NULL;
  double t0 = now(), t1, t2;
  int i;
  size_t gbytes = sizeof *G.globals * (size_t)(g->nvalues + 1), kbytes = sizeof *kfns * (size_t)(g->nnodes + 1);
  *out_obj = NULL;
  *out_size = 0;
  if (out_stats) memset(out_stats, 0, sizeof *out_stats);
  memset(&G, 0, sizeof G);
  G.ctx = ctx;
  G.g = g;
  moss_buf_init(&G.keybuf, ctx);
  for (i = 0; i < g->nnodes; i++)
    if (wanted(g->nodes[i], segs, nseg) && !moss_kernel_can_lower(g->nodes[i]))
      G.st = moss_fail(ctx, MOSS_E_UNSUPPORTED, g->nodes[i],
                       "the LLVM backend has no code for this operator yet (no kernel description of "
                       "the %s family); use --emit c", moss_op_infos[g->nodes[i]->op].family);
  if (G.st != MOSS_OK) return G.st;
  tm = machine(&G, t);
  if (!tm) return ctx->nerrors ? MOSS_E_TARGET : MOSS_E_INTERNAL;
  module_init(&G, tm, prefix, t->triple);
  params[0] = params[1] = params[2] = G.ptr;
  G.kfn_type = LLVMFunctionType(G.voidt, params, 3, 0);
  G.globals = moss_alloc(ctx, gbytes);
  kfns = moss_alloc(ctx, kbytes);
  if (!G.globals || !kfns || moss_arena_create(ctx->alloc, 1 << 16, &karena) != MOSS_OK) {
    G.st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "LLVM backend");
    goto done;
  }
  memset(G.globals, 0, gbytes);
  memset(kfns, 0, kbytes);
  G.ktypes = moss_alloc(ctx, sizeof *G.ktypes * (size_t)(g->nnodes + 1));
  G.kio = moss_alloc(ctx, sizeof *G.kio * (size_t)(g->nnodes + 1));
  G.nkio = moss_alloc(ctx, sizeof *G.nkio * (size_t)(g->nnodes + 1));
  if (!G.ktypes || !G.kio || !G.nkio) {
    G.st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "LLVM backend");
    goto done;
  }
  memset(G.kio, 0, sizeof *G.kio * (size_t)(g->nnodes + 1));
  memset(G.nkio, 0, sizeof *G.nkio * (size_t)(g->nnodes + 1));
  G.nslots = 16;
  while (G.nslots < 2 * (size_t)g->nnodes) G.nslots *= 2;
  G.slots = moss_alloc(ctx, sizeof *G.slots * G.nslots);
  if (!G.slots) {
    G.st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "LLVM backend");
    goto done;
  }
  for (i = 0; i < (int)G.nslots; i++) G.slots[i].node = -1;
  for (i = 0; i < g->nnodes && G.st == MOSS_OK; i++) {
    moss_kernel *k;
    if (!wanted(g->nodes[i], segs, nseg)) continue;
    moss_arena_reset(karena);
    moss_progress(ctx, "kernels", i, g->nnodes);
    G.st = moss_kernel_lower(ctx, karena, g->nodes[i], &G.cpu, &k);
    if (G.st == MOSS_OK) kernel_fn(&G, k, i, kfns);
  }
  if (G.st == MOSS_OK) {
    if (segs) segment_points(&G, kfns, prefix, segs, nseg, figures, nfigures);
    else entry_points(&G, kfns, prefix);
  }
  if (G.st != MOSS_OK) goto done;
  t1 = now();
  if (verify_optimize(&G, tm, VEC_CPU, "LLVM backend") != MOSS_OK) goto done;
  t2 = now();
  moss_progress(ctx, "LLVM code generation", 0, 0);
  if (LLVMTargetMachineEmitToMemoryBuffer(tm, G.m, LLVMObjectFile, &err, &mb)) {
    G.st = moss_fail(ctx, MOSS_E_INTERNAL, NULL, "LLVM backend: emitting the object failed: %s", err ? err : "?");
    goto done;
  }
  {
    size_t n = LLVMGetBufferSize(mb);
    uint8_t *obj = moss_alloc(ctx, n ? n : 1);
    if (!obj) {
      G.st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "LLVM backend: object");
      goto done;
    }
    memcpy(obj, LLVMGetBufferStart(mb), n);
    *out_obj = obj;
    *out_size = n ? n : 1;
  }
  if (out_stats) {
    out_stats->build_s = t1 - t0;
    out_stats->optimize_s = t2 - t1;
    out_stats->emit_s = now() - t2;
  }
done:
  moss_free(ctx, G.slots, sizeof *G.slots * G.nslots);
  moss_buf_deinit(&G.keybuf);
  if (err) LLVMDisposeMessage(err);
  if (mb) LLVMDisposeMemoryBuffer(mb);
  if (karena) moss_arena_destroy(karena);
  moss_free(ctx, G.globals, gbytes);
  moss_free(ctx, kfns, kbytes);
  if (G.kio)
    for (i = 0; i < g->nnodes; i++)
      if (G.kio[i]) moss_free(ctx, G.kio[i], sizeof *G.kio[i] * (size_t)(G.nkio[i] + 1));
  moss_free(ctx, G.ktypes, sizeof *G.ktypes * (size_t)(g->nnodes + 1));
  moss_free(ctx, G.kio, sizeof *G.kio * (size_t)(g->nnodes + 1));
  moss_free(ctx, G.nkio, sizeof *G.nkio * (size_t)(g->nnodes + 1));
  if (G.b) LLVMDisposeBuilder(G.b);
  if (G.m) LLVMDisposeModule(G.m);
  if (G.c) LLVMContextDispose(G.c);
  if (tm) LLVMDisposeTargetMachine(tm);
  return G.st;
}

/* ---- GPU kernels (moss_llvm_emit_gpu) ------------------------------------------------- */

/* The calls GPU code has (call(), nvptx_math(), ocl_builtin()): on NVPTX
 * none of the C library's, whose functions a PTX module cannot link; on
 * spir64 the float math of OpenCL C's builtins; on neither the CPU's
 * byte dot products and table lookups. */
static int gpu_has(const moss_kx *x, int spir, char *why, size_t cap) {
  if (!x) return 1;
  if (x->op == MOSS_KX_CALL) {
    switch (x->fn) {
    case MOSS_KFN_EXP: case MOSS_KFN_LOG: case MOSS_KFN_POW:
      if ((x->a[0]->dt != MOSS_DT_F32 && x->a[0]->dt != MOSS_DT_F64) || (!spir && x->lanes != 1)) {
        snprintf(why, cap, "%s of %s on the %s backend (float32 and float64 only)", moss_kfn_name(x->fn),
                 moss_dtype_name(x->a[0]->dt), spir ? "OpenCL SPIR-V" : "PTX");
        return 0;
      }
      break;
    case MOSS_KFN_SQRT: case MOSS_KFN_FLOOR: case MOSS_KFN_CEIL: case MOSS_KFN_RINT: case MOSS_KFN_TRUNC:
    case MOSS_KFN_FABS: case MOSS_KFN_FMIN: case MOSS_KFN_FMAX: case MOSS_KFN_FMA: case MOSS_KFN_ISINF:
      if (spir && !is_float(x->a[0]->dt)) {
        snprintf(why, cap, "%s of %s on the OpenCL SPIR-V backend (float16, 32 and 64 only)",
                 moss_kfn_name(x->fn),
                 moss_dtype_name(x->a[0]->dt));
        return 0;
      }
      break;
    case MOSS_KFN_ISNAN: case MOSS_KFN_ABS: case MOSS_KFN_SAT: case MOSS_KFN_REQUANT: case MOSS_KFN_BITS:
    case MOSS_KFN_FMOD:
      if (!spir && x->fn == MOSS_KFN_FMOD) {
        snprintf(why, cap, "the PTX backend has no fmod yet (no C library on the GPU)");
        return 0;
      }
      break;
    case MOSS_KFN_DOT4: case MOSS_KFN_DOT4S: case MOSS_KFN_TBL128:
      if (!spir && x->fn != MOSS_KFN_TBL128 && x->lanes == 1) break; /* dp4a (nvptx_dp4a) */
      snprintf(why, cap, "%s is a CPU instruction (the %s backend has none)", moss_kfn_name(x->fn),
               spir ? "OpenCL SPIR-V" : "PTX");
      return 0;
    default: /* tanh, erf, the trigonometric and hyperbolic functions, log1p */
      if (spir && (x->a[0]->dt == MOSS_DT_F32 || x->a[0]->dt == MOSS_DT_F64)) break;
      if (!spir && (x->fn == MOSS_KFN_ERF || x->fn == MOSS_KFN_TANH) && x->a[0]->dt == MOSS_DT_F32 &&
          x->lanes == 1)
        break; /* erf32, tanh32 */
      if (!spir && (x->fn == MOSS_KFN_ERF || x->fn == MOSS_KFN_TANH))
        snprintf(why, cap, "%s of %s on the PTX backend (float32 only)", moss_kfn_name(x->fn),
                 moss_dtype_name(x->a[0]->dt));
      else if (spir)
        snprintf(why, cap, "%s of %s on the OpenCL SPIR-V backend (float32 and float64 only)", moss_kfn_name(x->fn),
                 moss_dtype_name(x->a[0]->dt));
      else
        snprintf(why, cap, "the PTX backend has no %s yet (no C library on the GPU)", moss_kfn_name(x->fn));
      return 0;
    }
  }
  return 1;
}

static int nvptx_has(const moss_kx *x, char *why, size_t cap) { return gpu_has(x, 0, why, cap); }
static int spir_has(const moss_kx *x, char *why, size_t cap) { return gpu_has(x, 1, why, cap); }

int moss_llvm_nvptx_takes(moss_ctx *ctx, const moss_node *n, char *why, size_t cap) {
  return moss_gpu_kernel_check(ctx, n, nvptx_has, why, cap);
}

int moss_llvm_spir_takes(moss_ctx *ctx, const moss_node *n, char *why, size_t cap) {
  return moss_gpu_kernel_check(ctx, n, spir_has, why, cap);
}

/* A special register of NVPTX (llvm.nvvm.read.ptx.sreg.*) as i64. */
static LLVMValueRef sreg(gen *G, const char *name) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(G->m, id, NULL, 0);
  LLVMTypeRef ft = LLVMIntrinsicGetType(G->c, id, NULL, 0);
  return LLVMBuildZExt(G->b, LLVMBuildCall2(G->b, ft, f, NULL, 0, ""), G->i64, "");
}

/* The work-item's index in one dimension: on NVPTX ctaid.x * ntid.x +
 * tid.x, on spir64 OpenCL's get_global_id(0) (size_t: i64 on spir64). */
static LLVMValueRef global_id(gen *G) {
  LLVMTypeRef ft;
  LLVMValueRef f, zero = LLVMConstInt(G->i32, 0, 0);
  if (!G->spir)
    return LLVMBuildAdd(G->b,
                        LLVMBuildMul(G->b, sreg(G, "llvm.nvvm.read.ptx.sreg.ctaid.x"),
                                     sreg(G, "llvm.nvvm.read.ptx.sreg.ntid.x"), ""),
                        sreg(G, "llvm.nvvm.read.ptx.sreg.tid.x"), "gid");
  ft = LLVMFunctionType(G->i64, &G->i32, 1, 0);
  if (!(f = LLVMGetNamedFunction(G->m, "_Z13get_global_idj"))) f = LLVMAddFunction(G->m, "_Z13get_global_idj", ft);
  return LLVMBuildCall2(G->b, ft, f, &zero, 1, "gid");
}

/* The kernel argument metadata of OpenCL C 1.2 on the spir64 kernel |f|
 * of |n| parameters, all "__global uchar *" (as the OpenCL C source's
 * kernels take them): what a SPIR consumer reads for each argument. */
static void spir_kernel_args(gen *G, LLVMValueRef f, int n) {
  static const char *const kinds[5] = {"kernel_arg_addr_space", "kernel_arg_access_qual", "kernel_arg_type",
                                       "kernel_arg_base_type", "kernel_arg_type_qual"};
  LLVMMetadataRef ops[256];
  int k, i;
  if (n > 256) n = 256; /* the OpenCL backend's segments have far fewer tensors */
  for (k = 0; k < 5; k++) {
    for (i = 0; i < n; i++)
      switch (k) {
      case 0: ops[i] = LLVMValueAsMetadata(LLVMConstInt(G->i32, 1, 0)); break; /* global */
      case 1: ops[i] = LLVMMDStringInContext2(G->c, "none", 4); break;
      case 2: case 3: ops[i] = LLVMMDStringInContext2(G->c, "uchar*", 6); break;
      default: ops[i] = LLVMMDStringInContext2(G->c, "", 0); break;
      }
    LLVMGlobalSetMetadata(f, LLVMGetMDKindIDInContext(G->c, kinds[k], (unsigned)strlen(kinds[k])),
                          LLVMMDNodeInContext2(G->c, ops, (size_t)n));
  }
}

#define MOSS_PTX_KERNEL_CC 71  /* LLVM's CallingConv::PTX_Kernel: an .entry */
#define MOSS_SPIR_KERNEL_CC 76 /* LLVM's CallingConv::SPIR_KERNEL: an OpenCL __kernel */

/* The work-group size |group| that kernel |f| is launched with, for the
 * GPU's compiler: NVPTX's .reqntid (ptxas then fits the registers to that
 * many threads; it takes no .maxntid beside it), spir64's
 * reqd_work_group_size (SPIR-V's LocalSize execution mode). */
static void group_size(gen *G, LLVMValueRef f, int group) {
  LLVMMetadataRef md[3];
  if (G->spir) {
    md[0] = LLVMValueAsMetadata(LLVMConstInt(G->i32, (unsigned long long)group, 0));
    md[1] = md[2] = LLVMValueAsMetadata(LLVMConstInt(G->i32, 1, 0));
    LLVMGlobalSetMetadata(f, LLVMGetMDKindIDInContext(G->c, "reqd_work_group_size", 20),
                          LLVMMDNodeInContext2(G->c, md, 3));
    return;
  }
  md[0] = LLVMValueAsMetadata(f); /* !nvvm.annotations = !{!{ptr @f, !"reqntidx", i32 T}} */
  md[1] = LLVMMDStringInContext2(G->c, "reqntidx", 8);
  md[2] = LLVMValueAsMetadata(LLVMConstInt(G->i32, (unsigned long long)group, 0));
  LLVMAddNamedMetadataOperand(G->m, "nvvm.annotations", LLVMMetadataAsValue(G->c, LLVMMDNodeInContext2(G->c, md, 3)));
}

/* One launch of |k| (moss_kernel_launches: |body|, the kernel's or a part
 * of it) as the kernel moss_k<idx>(ptr param...): its inputs and outputs
 * at their places in the parameters (t->where), its tables in the
 * constants (t->table), its SHARED buffers in the work-group's memory
 * (inner_bufs), the loops of moss_kernel_grid as work-items, one per
 * index (global_id), none past the last. A grid ending in a GROUP loop of
 * T lanes is launched in work-groups of T (moss_kernel_group), so its
 * decomposition of the global index gives the lane as the local index
 * (gid % T) and the outer loops' values from the work-group's (gid / T). */
static moss_status gpu_kernel(gen *G, const moss_kernel *k, const moss_kstmt *body, int idx, const moss_llvm_gpu *t,
                              int64_t *items) {
  const moss_kstmt *loops[MOSS_GRID_MAX_LOOPS];
  int64_t ext[MOSS_GRID_MAX_LOOPS], total, inner;
  int n = moss_kernel_grid(body, loops, ext, &total), i;
  int group = n && loops[n - 1]->role == MOSS_KL_GROUP ? (int)ext[n - 1] : 0;
  size_t nb = sizeof *G->bufs * (size_t)(k->nbufs + 1), nv = sizeof *G->vars * (size_t)(k->nvars + 1);
  size_t np = sizeof(LLVMTypeRef) * (size_t)t->nparams;
  LLVMTypeRef *params = moss_alloc(G->ctx, np), gptr = LLVMPointerTypeInContext(G->c, G->spir ? 1 : 0);
  LLVMValueRef f, gid;
  LLVMBasicBlockRef run, out;
  char name[32];
  G->bufs = moss_alloc(G->ctx, nb);
  G->vars = moss_alloc(G->ctx, nv);
  if (!params || !G->bufs || !G->vars) {
    moss_free(G->ctx, params, np);
    moss_free(G->ctx, G->bufs, nb);
    moss_free(G->ctx, G->vars, nv);
    G->bufs = G->vars = NULL;
    return fail(G, MOSS_E_NOMEM, "GPU kernel");
  }
  memset(G->bufs, 0, nb);
  for (i = 0; i < t->nparams; i++) params[i] = gptr;
  snprintf(name, sizeof name, "moss_k%d", idx);
  f = LLVMAddFunction(G->m, name, LLVMFunctionType(G->voidt, params, (unsigned)t->nparams, 0));
  moss_free(G->ctx, params, np);
  LLVMSetFunctionCallConv(f, G->spir ? MOSS_SPIR_KERNEL_CC : MOSS_PTX_KERNEL_CC);
  if (G->spir) spir_kernel_args(G, f, t->nparams);
  if (group) group_size(G, f, group);
  G->fn = f;
  G->k = k;
  G->par = NULL;
  for (i = 0; i < k->nbufs && !group; i++)
    if (k->bufs[i].kind == MOSS_KB_SHARED) /* shared by lanes the grid does not make */
      fail(G, MOSS_E_INTERNAL, "a work-group's shared buffer in a kernel whose grid has no work-group loop");
  G->top = LLVMAppendBasicBlockInContext(G->c, f, "entry");
  LLVMPositionBuilderAtEnd(G->b, G->top);
  for (i = 0; i < k->nbufs; i++)
    if (k->bufs[i].kind == MOSS_KB_INPUT || k->bufs[i].kind == MOSS_KB_OUTPUT) {
      int param;
      int64_t off;
      LLVMValueRef at;
      t->where(t->user, k->bufs[i].value, &param, &off);
      at = LLVMConstInt(G->i64, (unsigned long long)off, 0);
      G->bufs[i] = LLVMBuildGEP2(G->b, G->i8, LLVMGetParam(f, (unsigned)param), &at, 1, k->bufs[i].name);
    } else if (k->bufs[i].kind == MOSS_KB_TABLE && t->table) {
      LLVMValueRef at = LLVMConstInt(
          G->i64, (unsigned long long)t->table(t->user, k->bufs[i].data,
                                               (size_t)k->bufs[i].numel * moss_dtype_size(k->bufs[i].dt)), 0);
      G->bufs[i] = LLVMBuildGEP2(G->b, G->i8, LLVMGetParam(f, 1), &at, 1, k->bufs[i].name);
    }
  inner_bufs(G, k, NULL);
  gid = global_id(G);
  run = LLVMAppendBasicBlockInContext(G->c, f, "run");
  out = LLVMAppendBasicBlockInContext(G->c, f, "out");
  if (group) /* launched as exactly |total| work-items: none past them, and no lane leaves before a barrier */
    LLVMBuildBr(G->b, run);
  else
    LLVMBuildCondBr(G->b, LLVMBuildICmp(G->b, LLVMIntSLT, gid, LLVMConstInt(G->i64, (unsigned long long)total, 0), ""),
                    run, out);
  LLVMPositionBuilderAtEnd(G->b, run);
  for (i = 0, inner = total; i < n; i++) {
    LLVMValueRef v;
    inner /= ext[i] ? ext[i] : 1;
    v = LLVMBuildSDiv(G->b, gid, LLVMConstInt(G->i64, (unsigned long long)(inner ? inner : 1), 0), "");
    v = LLVMBuildSRem(G->b, v, LLVMConstInt(G->i64, (unsigned long long)(ext[i] ? ext[i] : 1), 0), "");
    v = LLVMBuildMul(G->b, v, LLVMConstInt(G->i64, (unsigned long long)loops[i]->step, 0), "");
    v = LLVMBuildAdd(G->b, v, LLVMConstInt(G->i64, (unsigned long long)loops[i]->lo->i, 1), "");
    LLVMBuildStore(G->b, v, G->vars[loops[i]->var]);
  }
  for (i = 0; i < n; i++) stmts_until(G, i ? loops[i - 1]->body : body, loops[i]); /* the LETs */
  stmts(G, n ? loops[n - 1]->body : body);
  LLVMBuildBr(G->b, out);
  LLVMPositionBuilderAtEnd(G->b, out);
  kernel_done(G, nb, nv);
  *items = total > 0 ? total : 1;
  return G->st;
}

static int ptr_cmp(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
  return x < y ? -1 : x > y;
}

/* Puts the blocks of |f| in an order where each comes after every block
 * that dominates it (depth first from the entry, each block before its
 * successors: the path the search took to a block passes through all its
 * dominators), as SPIR-V requires of a function's blocks; llvm-spirv-15
 * keeps LLVM's order, which the optimizer leaves wherever it made the
 * blocks. Blocks no path reaches stay after the others. */
static void dominance_order(gen *G, LLVMValueRef f) {
  size_t n = LLVMCountBasicBlocks(f), bytes = sizeof(LLVMBasicBlockRef) * (n + 1), no = 0, depth = 0, i;
  LLVMBasicBlockRef *all = moss_alloc(G->ctx, bytes), *sorted = moss_alloc(G->ctx, bytes);
  LLVMBasicBlockRef *order = moss_alloc(G->ctx, bytes), *stack = moss_alloc(G->ctx, bytes);
  unsigned *next = moss_alloc(G->ctx, sizeof(unsigned) * (n + 1));
  unsigned char *seen = moss_alloc(G->ctx, n + 1);
  if (n < 2 || !all || !sorted || !order || !stack || !next || !seen) {
    if (n >= 2) fail(G, MOSS_E_NOMEM, "block order");
    goto out;
  }
  LLVMGetBasicBlocks(f, all);
  memcpy(sorted, all, sizeof(LLVMBasicBlockRef) * n);
  qsort(sorted, n, sizeof *sorted, ptr_cmp);
  memset(seen, 0, n);
#define SEEN(bb) (seen[(LLVMBasicBlockRef *)bsearch(&(bb), sorted, n, sizeof *sorted, ptr_cmp) - sorted])
  stack[depth] = all[0];
  next[depth++] = 0;
  SEEN(all[0]) = 1;
  order[no++] = all[0];
  while (depth) {
    LLVMValueRef term = LLVMGetBasicBlockTerminator(stack[depth - 1]);
    unsigned k = next[depth - 1]++;
    LLVMBasicBlockRef s;
    if (!term || k >= LLVMGetNumSuccessors(term)) {
      depth--;
      continue;
    }
    s = LLVMGetSuccessor(term, k);
    if (SEEN(s)) continue;
    SEEN(s) = 1;
    order[no++] = s;
    stack[depth] = s;
    next[depth++] = 0;
  }
#undef SEEN
  for (i = 1; i < no; i++) LLVMMoveBasicBlockAfter(order[i], order[i - 1]);
out:
  moss_free(G->ctx, all, bytes);
  moss_free(G->ctx, sorted, bytes);
  moss_free(G->ctx, order, bytes);
  moss_free(G->ctx, stack, bytes);
  moss_free(G->ctx, next, sizeof(unsigned) * (n + 1));
  moss_free(G->ctx, seen, n + 1);
}

/* What LLVM 15's bitcode reader (inside llvm-spirv-15) refuses in LLVM
 * 19's bitcode, taken out of the spir64 module before it is written: the
 * attribute kinds LLVM 16 to 19 added ("Unknown attribute kind" at
 * reading), which the optimizer and the intrinsics' declarations put on
 * functions, parameters and calls; and the flags LLVM 18 and 19 added to
 * casts (zext nneg, uitofp nneg, trunc nuw/nsw: LLVM 15 reads a cast
 * record with one more field as invalid); and the freeze instructions
 * (LLVM 10) that llvm-spirv-15 cannot translate, which become their
 * operand: on a value that is not poison, freeze is that value, and the
 * code never computes poison (a freeze only stops the optimizer from
 * assuming more of a value, and it has run). None of the rest changes what
 * the code computes either: they are facts for the optimizer. And what
 * SPIR-V requires of a function that LLVM does not, and llvm-spirv-15
 * leaves to its input: the blocks in dominance order (dominance_order),
 * the variables (allocas: the kernels' local arrays the optimizer kept in
 * memory) first in the first block. */
static void for_llvm_spirv15(gen *G) {
  static const char *const newer[] = {"memory", "nofpclass", "writable", "dead_on_unwind", "range", "initializes",
                                      "hybrid_patchable", "optimize_for_debugging", "coro_only_destroy_when_complete"};
  unsigned kinds[sizeof newer / sizeof newer[0]];
  size_t nk = 0, i;
  LLVMValueRef f, inst, next;
  LLVMBasicBlockRef bb;
  for (i = 0; i < sizeof newer / sizeof newer[0]; i++) {
    unsigned kind = LLVMGetEnumAttributeKindForName(newer[i], strlen(newer[i]));
    if (kind) kinds[nk++] = kind;
  }
  for (f = LLVMGetFirstFunction(G->m); f; f = LLVMGetNextFunction(f)) {
    int np = (int)LLVMCountParams(f), a;
    LLVMValueRef anchor = NULL;
    dominance_order(G, f);
    for (bb = LLVMGetFirstBasicBlock(f); bb; bb = LLVMGetNextBasicBlock(bb))
      for (inst = LLVMGetFirstInstruction(bb); inst; inst = next) {
        next = LLVMGetNextInstruction(inst);
        if (!anchor && LLVMGetInstructionOpcode(inst) != LLVMAlloca) {
          anchor = inst; /* the first that is not a variable: the variables go before it */
          LLVMPositionBuilderBefore(G->b, anchor);
        } else if (anchor && LLVMGetInstructionOpcode(inst) == LLVMAlloca) {
          LLVMInstructionRemoveFromParent(inst);
          LLVMInsertIntoBuilder(G->b, inst);
        }
      }
    for (a = -1; a <= np; a++)
      for (i = 0; i < nk; i++)
        LLVMRemoveEnumAttributeAtIndex(f, a < 0 ? (LLVMAttributeIndex)LLVMAttributeFunctionIndex : (LLVMAttributeIndex)a, kinds[i]);
    for (bb = LLVMGetFirstBasicBlock(f); bb; bb = LLVMGetNextBasicBlock(bb))
      for (inst = LLVMGetFirstInstruction(bb); inst; inst = next) {
        next = LLVMGetNextInstruction(inst);
        switch (LLVMGetInstructionOpcode(inst)) {
        case LLVMCall: {
          int nargs = (int)LLVMGetNumArgOperands(inst);
          for (a = -1; a <= nargs; a++)
            for (i = 0; i < nk; i++)
              LLVMRemoveCallSiteEnumAttribute(inst, a < 0 ? (LLVMAttributeIndex)LLVMAttributeFunctionIndex : (LLVMAttributeIndex)a,
                                              kinds[i]);
          break;
        }
        case LLVMZExt: case LLVMUIToFP: LLVMSetNNeg(inst, 0); break;
        case LLVMTrunc: LLVMSetNUW(inst, 0), LLVMSetNSW(inst, 0); break;
        case LLVMFreeze:
          LLVMReplaceAllUsesWith(inst, LLVMGetOperand(inst, 0));
          LLVMInstructionEraseFromParent(inst);
          break;
        default: break;
        }
      }
  }
}

/* |n| bytes at |data| as the caller's copy (NUL after them). */
static moss_status copy_out(gen *G, const char *data, size_t n, char **out, size_t *out_len) {
  char *c = moss_alloc(G->ctx, n + 1);
  if (!c) return fail(G, MOSS_E_NOMEM, "GPU code");
  memcpy(c, data, n);
  c[n] = 0;
  *out = c;
  *out_len = n;
  return MOSS_OK;
}

/* moss_gpu_launch_fn: one launch as a kernel function of the module. */
static moss_status gpu_launch(void *user, const moss_kernel *k, const moss_kstmt *body, int idx, int64_t *items) {
  gen *G = user;
  return gpu_kernel(G, k, body, idx, G->gpu_t, items);
}

moss_status moss_llvm_emit_gpu(moss_ctx *ctx, const moss_graph *g, moss_node *const *nodes, int nnodes,
                               const moss_llvm_gpu *t, moss_buf *items, char **out_code, size_t *out_len) {
  gen G;
  LLVMTargetMachineRef tm = NULL;
  LLVMMemoryBufferRef mb = NULL;
  moss_llvm_target lt;
  char *err = NULL;
  const char *what;
  size_t gbytes = sizeof *G.globals * (size_t)(g->nvalues + 1);
  int i;
  *out_code = NULL;
  *out_len = 0;
  memset(&G, 0, sizeof G);
  memset(&lt, 0, sizeof lt);
  G.ctx = ctx;
  G.g = (moss_graph *)g;
  G.spir = t->triple && !strncmp(t->triple, "spir64", 6);
  G.nvptx = !G.spir;
  what = G.spir ? "OpenCL SPIR-V" : "GPU backend";
  if (!G.spir) { /* spir64: no target machine in this LLVM (nor needed) */
    lt.triple = t->triple;
    lt.cpu = t->cpu;
    lt.features = t->features;
    tm = machine(&G, &lt);
    if (!tm) return ctx->nerrors ? MOSS_E_TARGET : MOSS_E_INTERNAL;
  }
  module_init(&G, tm, "moss_gpu", t->triple);
  G.globals = moss_alloc(ctx, gbytes);
  if (!G.globals) {
    G.st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "%s", what);
    goto done;
  }
  memset(G.globals, 0, gbytes);
  G.gpu_t = t;
  G.st = moss_gpu_each_launch(ctx, &t->facts, nodes, nnodes, G.spir ? spir_has : nvptx_has,
                              gpu_launch, &G, items);
  if (G.st != MOSS_OK) goto done;
  if (G.spir) { /* OpenCL C 1.2, as the source form (what llvm-spirv takes as the source language) */
    LLVMMetadataRef v[2] = {LLVMValueAsMetadata(LLVMConstInt(G.i32, 1, 0)),
                            LLVMValueAsMetadata(LLVMConstInt(G.i32, 2, 0))};
    LLVMAddNamedMetadataOperand(G.m, "opencl.ocl.version", LLVMMetadataAsValue(G.c, LLVMMDNodeInContext2(G.c, v, 2)));
    LLVMAddNamedMetadataOperand(G.m, "opencl.spir.version", LLVMMetadataAsValue(G.c, LLVMMDNodeInContext2(G.c, v, 2)));
    for (i = 0; i < nnodes && !nodes[i]->native_half; i++) {}
    if (i < nnodes) { /* float16 arithmetic: llvm-spirv then declares the Float16 capability */
      LLVMMetadataRef e = LLVMMDStringInContext2(G.c, "cl_khr_fp16", 11);
      LLVMAddNamedMetadataOperand(G.m, "opencl.used.extensions",
                                  LLVMMetadataAsValue(G.c, LLVMMDNodeInContext2(G.c, &e, 1)));
    }
  }
  if (verify_optimize(&G, tm, G.spir ? VEC_NONE : VEC_NVPTX, what) != MOSS_OK) goto done;
  if (G.spir) {
    for_llvm_spirv15(&G);
    mb = LLVMWriteBitcodeToMemoryBuffer(G.m);
    if (!mb) {
      G.st = moss_fail(ctx, MOSS_E_NOMEM, NULL, "%s: bitcode", what);
      goto done;
    }
    copy_out(&G, LLVMGetBufferStart(mb), LLVMGetBufferSize(mb), out_code, out_len);
  } else {
    size_t n;
    const char *start;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, G.m, LLVMAssemblyFile, &err, &mb)) {
      G.st = moss_fail(ctx, MOSS_E_INTERNAL, NULL, "GPU backend: emitting the code failed: %s", err ? err : "?");
      goto done;
    }
    n = LLVMGetBufferSize(mb);
    start = LLVMGetBufferStart(mb);
    while (n && !start[n - 1]) n--; /* the assembly buffer may end in a NUL */
    copy_out(&G, start, n, out_code, out_len);
  }
done:
  if (err) LLVMDisposeMessage(err);
  if (mb) LLVMDisposeMemoryBuffer(mb);
  moss_free(ctx, G.globals, gbytes);
  if (G.b) LLVMDisposeBuilder(G.b);
  if (G.m) LLVMDisposeModule(G.m);
  if (G.c) LLVMContextDispose(G.c);
  if (tm) LLVMDisposeTargetMachine(tm);
  return G.st;
}
