/* test_elf.c - the ELF relocatable-object loader (runtime/src/cpu/elf.c).
 * It loads objects made at test time (tests/unit/elf/build.sh) from
 * elf/model.c by clang-14 + llc-19 (static, PIC; AArch64's large code model;
 * RISC-V with relaxation) and by gcc (static, PIC, -fno-plt, -fcommon, with
 * debug information and one section per function), and from the hand-written
 * elf/<arch>.s, which covers the relocation types the compilers did not
 * emit. Every function is called and compared with model.c compiled into
 * this program (ELF_M() renames its globals ref_*) or with values derived
 * by hand from the assembly. Then damaged objects: wrong machine, bad
 * indices and offsets, unknown and overflowing relocations, constructors,
 * thread-local storage, unresolved imports, every truncation and thousands
 * of seeded random mutations, which must each give an error or load, never
 * crash (the suite also runs under ASan+UBSan). The same file is built for
 * AArch64 and RISC-V 64 by build.sh and run under qemu-user. */
#define _GNU_SOURCE
#include <elf.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../runtime/src/cpu/elf.h"
#include "harness.h"

#ifndef MOSS_ELF_OBJ_DIR
#error "MOSS_ELF_OBJ_DIR must name the folder build.sh wrote the objects to"
#endif

/* The import that is far from the image (in this program's text): calls to
 * it go through the loader's stubs. */
float elf_host(float x) { return 3.0f * x + 1.0f; }

#define ELF_M(name) ref_##name
#include "elf/model.c"

#if defined(__x86_64__)
#define EM_HOST EM_X86_64
#define CALL_TYPE R_X86_64_PLT32
#define SHORT_TYPE R_X86_64_32S
static const char *const model_objs[] = {"llc-static.o", "llc-pic.o",  "gcc-static.o",
                                         "gcc-pic.o",    "gcc-noplt.o", "gcc-common.o"};
#elif defined(__aarch64__)
#define EM_HOST EM_AARCH64
#define CALL_TYPE R_AARCH64_CALL26
#define SHORT_TYPE R_AARCH64_CONDBR19
static const char *const model_objs[] = {"llc-static.o", "llc-pic.o",   "llc-large.o",
                                         "gcc-static.o", "gcc-pic.o",   "gcc-noplt.o",
                                         "gcc-common.o"};
#elif defined(__riscv) && __riscv_xlen == 64
#define EM_HOST EM_RISCV
#define CALL_TYPE R_RISCV_CALL_PLT
#define SHORT_TYPE R_RISCV_BRANCH
static const char *const model_objs[] = {"llc-static.o", "llc-pic.o",   "llc-relax.o",
                                         "llc-relax-pic.o", "gcc-static.o", "gcc-pic.o",
                                         "gcc-noplt.o",  "gcc-common.o"};
#else
#error "test_elf runs on x86-64, AArch64 and RISC-V 64"
#endif
#define NOBJS (sizeof model_objs / sizeof model_objs[0])

static const mossrt_elf_import imports[] = {
    {"expf", (void *)expf},
    {"tanhf", (void *)tanhf},
    {"logf", (void *)logf},
    {"erff", (void *)erff},
    {"memcpy", (void *)memcpy},
    {"memset", (void *)memset},
    {"elf_host", (void *)elf_host},
    {"tiny_import", (void *)(uintptr_t)0x1234},
    {"small_import", (void *)(uintptr_t)0x12345678},
    {"neg_import", (void *)(intptr_t)-16},
};
#define NIMPORTS (sizeof imports / sizeof imports[0])

typedef struct blob {
  unsigned char *p;
  size_t n;
} blob;

/* Reads MOSS_ELF_OBJ_DIR/|name|; p is NULL when it cannot. */
static blob readobj(const char *name) {
  char path[1024];
  blob b = {NULL, 0};
  FILE *f;
  long n;
  snprintf(path, sizeof path, "%s/%s", MOSS_ELF_OBJ_DIR, name);
  f = fopen(path, "rb");
  if (!f) return b;
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
    b.p = malloc((size_t)n);
    if (b.p && fread(b.p, 1, (size_t)n, f) == (size_t)n) b.n = (size_t)n;
    else free(b.p), b.p = NULL;
  }
  fclose(f);
  return b;
}

static mossrt_status load(const void *p, size_t n, mossrt_elf_image **img, char *err) {
  err[0] = 0;
  return mossrt_elf_load(p, n, imports, NIMPORTS, img, err, 256);
}

/* Loads |b| from a misaligned copy that is scribbled over and freed at once:
 * the image must not refer to the object's bytes. */
static mossrt_status load_copy(const blob *b, mossrt_elf_image **img, char *err) {
  unsigned char *c = malloc(b->n + 1);
  mossrt_status st;
  if (!c) return MOSSRT_E_NOMEM;
  memcpy(c + 1, b->p, b->n);
  st = load(c + 1, b->n, img, err);
  memset(c, 0x5a, b->n + 1);
  free(c);
  return st;
}

/* The permissions ("r-xp"...) of the mapping holding |a|, from /proc/self/maps. */
static void perms(const void *a, char out[5]) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512], p[5];
  unsigned long lo, hi;
  strcpy(out, "?");
  if (!f) return;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) == 3 && lo <= (uintptr_t)a && (uintptr_t)a < hi) {
      memcpy(out, p, 5);
      break;
    }
  fclose(f);
}

static int near(float a, float b) { return fabsf(a - b) <= 1e-5f + 1e-5f * fabsf(b); }

typedef float (*act_fn)(int, float);
typedef int (*classify_fn)(int);
typedef float (*apply_fn)(int, float);
typedef int (*run_fn)(const void *const *, void *const *, void *);

static const float bias0[8] = {0.5f, -0.25f, 0.125f, 1.5f, -2.0f, 0.75f, 3.0f, -1.0f};

/* Loads model object |name| and checks everything it defines against ref_*. */
static void check_model(const char *name, int *failed_) {
  blob b = readobj(name);
  mossrt_elf_image *img = NULL;
  char err[256], pm[5];
  act_fn act;
  classify_fn classify;
  apply_fn apply;
  run_fn run;
  const float *w;
  float *bias, x[16], y[64], ry[64], arena[16], rarena[16];
  const void *in[1] = {x};
  void *out[1] = {y}, *rout[1] = {ry};
  int *runs, *common, i, k, rc;
  static const float xs[] = {-4.0f, -1.5f, -0.1f, 0.0f, 0.3f, 2.0f, 5.0f};
  if (!b.p) FAIL_("cannot read %s/%s (run build.sh objects first)", MOSS_ELF_OBJ_DIR, name);
  rc = load_copy(&b, &img, err);
  free(b.p);
  if (rc != MOSSRT_OK) FAIL_("%s: load failed (%d): %s", name, rc, err);
  act = (act_fn)mossrt_elf_find(img, "model_act");
  classify = (classify_fn)mossrt_elf_find(img, "model_classify");
  apply = (apply_fn)mossrt_elf_find(img, "model_apply");
  run = (run_fn)mossrt_elf_find(img, "model_run");
  w = mossrt_elf_find(img, "model_weights");
  bias = mossrt_elf_find(img, "model_bias");
  runs = mossrt_elf_find(img, "model_runs");
  common = mossrt_elf_find(img, "model_common");
  if (!act || !classify || !apply || !run || !w || !bias || !runs || !common) {
    mossrt_elf_unload(img);
    FAIL_("%s: a model symbol is missing", name);
  }
  ASSERT_TRUE(mossrt_elf_find(img, "dot") == NULL); /* static: not exported */
  ASSERT_TRUE(mossrt_elf_find(img, "expf") == NULL); /* an import, not a definition */
  ASSERT_TRUE(mossrt_elf_find(img, "no_such_symbol") == NULL);

  /* W^X: text executable, weights read-only, globals writable. (qemu-user
   * may report a read-only page next to code as executable too.) */
  perms((const void *)run, pm);
  ASSERT_STR_CONTAINS(pm, "r-x");
  perms(w, pm);
  ASSERT_TRUE(pm[0] == 'r' && pm[1] == '-');
  perms(bias, pm);
  ASSERT_STR_CONTAINS(pm, "rw-");

  ASSERT_TRUE(memcmp(w, ref_model_weights, sizeof ref_model_weights) == 0);
  ASSERT_TRUE(w[0] == (float)((10000 * 7919) % 1999) / 1999.0f - 0.5f);
  ASSERT_TRUE(w[19999] == (float)((29999 * 7919) % 1999) / 1999.0f - 0.5f);
  ASSERT_TRUE(memcmp(bias, bias0, sizeof bias0) == 0);
  ASSERT_EQ(*runs, 0);
  ASSERT_EQ(*common, 0);

  ref_model_runs = ref_model_common = 0;
  memcpy(ref_model_bias, bias0, sizeof bias0);
  for (k = -1; k <= 8; k++)
    for (i = 0; i < (int)(sizeof xs / sizeof xs[0]); i++)
      if (!near(act(k, xs[i]), ref_model_act(k, xs[i])))
        FAIL_("%s: model_act(%d, %g) = %.9g, expected %.9g", name, k, xs[i], act(k, xs[i]),
              ref_model_act(k, xs[i]));
  for (k = -2; k <= 10; k++) ASSERT_EQ(classify(k), ref_model_classify(k));
  for (k = 0; k < 4; k++)
    for (i = 0; i < (int)(sizeof xs / sizeof xs[0]); i++)
      if (!near(apply(k, xs[i]), ref_model_apply(k, xs[i])))
        FAIL_("%s: model_apply(%d, %g) = %.9g, expected %.9g", name, k, xs[i], apply(k, xs[i]),
              ref_model_apply(k, xs[i]));
  ASSERT_TRUE(apply(3, 2.0f) == 7.0f); /* elf_host, through a stub */

  for (i = 0; i < 16; i++) x[i] = sinf((float)i * 0.7f) * 0.5f;
  for (k = 0; k < 3; k++) {
    const void *rin[1] = {x};
    if (k == 2) bias[3] += 1.0f, ref_model_bias[3] += 1.0f;
    memset(y, 0, sizeof y);
    rc = run(in, out, arena);
    ASSERT_EQ(rc, ref_model_run(rin, rout, rarena));
    ASSERT_EQ(rc, k + 1);
    for (i = 0; i < 64; i++)
      if (!near(y[i], ry[i]))
        FAIL_("%s: run %d: y[%d] = %.9g, expected %.9g", name, k, i, y[i], ry[i]);
    ASSERT_TRUE(arena[0] == 0.0f && arena[15] == 0.0f); /* memset */
  }
  ASSERT_EQ(*runs, 3);
  ASSERT_EQ(*common, 6);
  mossrt_elf_unload(img);
}

TEST(model_objects) {
  size_t i;
  for (i = 0; i < NOBJS; i++) {
    check_model(model_objs[i], failed_);
    if (*failed_) return;
  }
}

/* elf/<arch>.s: the relocation types the compilers did not emit. */
TEST(asm_object) {
  blob b = readobj("asm.o");
  mossrt_elf_image *img = NULL;
  char err[256];
  int rc;
#define SYM(name) ((uintptr_t)mossrt_elf_find(img, name))
  if (!b.p) FAIL_("cannot read %s/asm.o", MOSS_ELF_OBJ_DIR);
  rc = load_copy(&b, &img, err);
  free(b.p);
  if (rc != MOSSRT_OK) FAIL_("load failed (%d): %s", rc, err);
  {
#if defined(__x86_64__)
    uintptr_t target = SYM("asm_target"), pc64 = SYM("asm_pc64"), pc32 = SYM("asm_pc32");
    int32_t v32;
    int64_t v64;
    ASSERT_TRUE(target && pc64 && pc32);
    ASSERT_TRUE(((uintptr_t(*)(void))SYM("asm_gotpcrel"))() == target);
    ASSERT_TRUE(((float (*)(float))SYM("asm_gotpcrelx"))(2.0f) == 7.0f);
    ASSERT_TRUE(((float (*)(float))SYM("asm_tail"))(1.0f) == 4.0f);
    ASSERT_EQ(((int64_t(*)(void))SYM("asm_imm"))(), 0x12345678 - 16);
    memcpy(&v64, (void *)pc64, 8);
    ASSERT_EQ(v64, (int64_t)(target + 5 - pc64));
    memcpy(&v32, (void *)pc32, 4);
    ASSERT_EQ(v32, (int64_t)(target - 7 - pc32));
    ASSERT_TRUE(*(uint64_t *)SYM("asm_abs64") == target + 24);
    memcpy(&v32, (void *)SYM("asm_abs32"), 4);
    ASSERT_EQ((uint32_t)v32, 0x12345679);
    memcpy(&v32, (void *)SYM("asm_abs32s"), 4);
    ASSERT_EQ(v32, -20);
#elif defined(__aarch64__)
    uintptr_t d8 = SYM("asm_d8"), d64 = SYM("asm_d64"), p64 = SYM("asm_prel64"),
              p32 = SYM("asm_prel32");
    int (*branch)(int) = (int (*)(int))SYM("asm_branch");
    int64_t v64;
    int32_t v32;
    ASSERT_TRUE(d8 && d64 && p64 && p32 && branch);
    ASSERT_TRUE(((uint64_t(*)(void))SYM("asm_loads"))() ==
                0x7fu + 0x2345u + 0x100000000u + 0x0102030405060708u);
    ASSERT_TRUE(((uint64_t(*)(void))SYM("asm_movw"))() ==
                0x1234u + 0x12345678u + (d8 & 0xffffffff0000u));
    ASSERT_EQ(branch(0), 10);
    ASSERT_EQ(branch(3), 20);
    ASSERT_EQ(branch(4), 30);
    ASSERT_TRUE(((float (*)(float))SYM("asm_tail"))(1.0f) == 4.0f);
    memcpy(&v64, (void *)p64, 8);
    ASSERT_EQ(v64, (int64_t)(d64 + 3 - p64));
    memcpy(&v32, (void *)p32, 4);
    ASSERT_EQ(v32, (int64_t)(d64 - 5 - p32));
    memcpy(&v32, (void *)SYM("asm_abs32"), 4);
    ASSERT_EQ(v32, 0x12345678 + 2);
#else
    uintptr_t store = SYM("asm_store"), branch = SYM("asm_branch"), cbranch = SYM("asm_cbranch"),
              call = SYM("asm_call"), wa = SYM("asm_w"), wa2 = SYM("asm_w2");
    uint64_t d64;
    uint32_t d32;
    uint16_t d16;
    uint8_t d8, set[8];
    int32_t pc;
    int k;
    ASSERT_TRUE(store && branch && cbranch && call && wa && wa2);
    ((void (*)(int))store)(21);
    ASSERT_EQ(*(int32_t *)wa, 21);
    ASSERT_EQ(*(int32_t *)wa2, 42);
    for (k = 0; k < 2; k++) {
      int (*f)(int) = (int (*)(int))(k ? cbranch : branch);
      ASSERT_EQ(f(0), 10);
      ASSERT_EQ(f(-5), 20);
      ASSERT_EQ(f(7), 30);
    }
    ASSERT_TRUE(((float (*)(float))call)(2.0f) == 7.0f);
    memcpy(&d64, (void *)SYM("asm_diff64"), 8);
    memcpy(&d32, (void *)SYM("asm_diff32"), 4);
    memcpy(&d16, (void *)SYM("asm_diff16"), 2);
    memcpy(&d8, (void *)SYM("asm_diff8"), 1);
    ASSERT_TRUE(store + d64 - 3 == branch + d32); /* all name the end of .text */
    ASSERT_TRUE(branch + d32 == branch + d16);
    ASSERT_TRUE(branch + d32 == cbranch + d8);
    ASSERT_EQ(*(uint8_t *)SYM("asm_sub6"), 0xc0 | ((call - store) & 63));
    memcpy(set, (void *)SYM("asm_set"), 8);
    ASSERT_EQ(set[0], 0x78);
    ASSERT_EQ(set[1] | set[2] << 8, 0x5678);
    ASSERT_EQ((uint32_t)(set[4] | set[5] << 8 | set[6] << 16 | (uint32_t)set[7] << 24), 0x12345678);
    memcpy(&pc, (void *)SYM("asm_pcrel32"), 4);
    ASSERT_EQ(pc, (int64_t)(wa + 9 - SYM("asm_pcrel32")));
#endif
  }
#undef SYM
  mossrt_elf_unload(img);
}

TEST(null_handles) {
  mossrt_elf_image *img = (mossrt_elf_image *)&img;
  char err[256];
  ASSERT_TRUE(mossrt_elf_find(NULL, "model_run") == NULL);
  mossrt_elf_unload(NULL);
  ASSERT_EQ(load(NULL, 0, &img, err), MOSSRT_E_FORMAT);
  ASSERT_TRUE(img == NULL);
  ASSERT_STR_CONTAINS(err, "not an ELF64");
  ASSERT_EQ(mossrt_elf_load("\177ELF", 4, NULL, 0, &img, NULL, 0), MOSSRT_E_FORMAT);
}

#define EH(d) ((Elf64_Ehdr *)(d)->p)
#define SH(d, i) ((Elf64_Shdr *)((d)->p + EH(d)->e_shoff) + (i))

/* The section header of type |type| (first one), or NULL. */
static Elf64_Shdr *section(blob *b, uint32_t type) {
  Elf64_Ehdr *e = (Elf64_Ehdr *)b->p;
  Elf64_Shdr *s = (Elf64_Shdr *)(b->p + e->e_shoff);
  int i;
  for (i = 0; i < e->e_shnum; i++)
    if (s[i].sh_type == type) return &s[i];
  return NULL;
}

/* The index of symbol |name| (0 if none). */
static size_t sym_index(blob *b, const char *name) {
  Elf64_Shdr *s = SH(b, 0), *symtab = section(b, SHT_SYMTAB);
  Elf64_Sym *syms = (Elf64_Sym *)(b->p + symtab->sh_offset);
  const char *str = (const char *)b->p + s[symtab->sh_link].sh_offset;
  size_t i;
  for (i = 1; i < symtab->sh_size / sizeof *syms; i++)
    if (strcmp(str + syms[i].st_name, name) == 0) return i;
  return 0;
}

/* The first relocation against symbol |name| in a section that is loaded;
 * NULL if none. */
static Elf64_Rela *find_rela(blob *b, const char *name) {
  Elf64_Ehdr *e = (Elf64_Ehdr *)b->p;
  Elf64_Shdr *s = (Elf64_Shdr *)(b->p + e->e_shoff), *symtab = section(b, SHT_SYMTAB);
  Elf64_Sym *syms = (Elf64_Sym *)(b->p + symtab->sh_offset);
  const char *str = (const char *)b->p + s[symtab->sh_link].sh_offset;
  int i;
  size_t j;
  for (i = 0; i < e->e_shnum; i++) {
    Elf64_Rela *r = (Elf64_Rela *)(b->p + s[i].sh_offset);
    if (s[i].sh_type != SHT_RELA || !(s[s[i].sh_info].sh_flags & SHF_ALLOC)) continue;
    for (j = 0; j < s[i].sh_size / sizeof *r; j++)
      if (strcmp(str + syms[ELF64_R_SYM(r[j].r_info)].st_name, name) == 0)
        return &r[j];
  }
  return NULL;
}

/* The relocation section applying to .text (or .text.model_apply with
 * -ffunction-sections), and its target. */
static Elf64_Shdr *rela_of(blob *b, Elf64_Rela *r, Elf64_Shdr **target) {
  Elf64_Ehdr *e = (Elf64_Ehdr *)b->p;
  Elf64_Shdr *s = (Elf64_Shdr *)(b->p + e->e_shoff);
  int i;
  for (i = 0; i < e->e_shnum; i++)
    if (s[i].sh_type == SHT_RELA && (unsigned char *)r >= b->p + s[i].sh_offset &&
        (unsigned char *)r < b->p + s[i].sh_offset + s[i].sh_size) {
      *target = &s[s[i].sh_info];
      return &s[i];
    }
  return NULL;
}

/* Loads a damaged copy: |damage| edits the copy, then the expected status
 * and message are checked and nothing must be left loaded. */
#define DAMAGED(obj, edit, st, msg)                                                                \
  do {                                                                                             \
    blob c_ = {malloc((obj).n), (obj).n};                                                          \
    mossrt_elf_image *img_ = NULL;                                                                 \
    char err_[256];                                                                                \
    int rc_;                                                                                       \
    ASSERT_TRUE(c_.p != NULL);                                                                     \
    memcpy(c_.p, (obj).p, (obj).n);                                                                \
    {                                                                                              \
      blob *d = &c_;                                                                               \
      (void)d;                                                                                     \
      edit;                                                                                        \
    }                                                                                              \
    rc_ = load(c_.p, c_.n, &img_, err_);                                                           \
    free(c_.p);                                                                                    \
    if (rc_ == MOSSRT_OK) mossrt_elf_unload(img_);                                                 \
    if (rc_ != (st)) FAIL_("%s: status %d, expected %d (%s)", #edit, rc_, (int)(st), err_);        \
    ASSERT_TRUE(img_ == NULL);                                                                     \
    ASSERT_STR_CONTAINS(err_, msg);                                                                \
  } while (0)

TEST(damaged_objects) {
  blob b = readobj("gcc-static.o");
  Elf64_Rela *call;
  size_t callat, symtab_i, run_i;
  if (!b.p) FAIL_("cannot read gcc-static.o");
  call = find_rela(&b, "elf_host");
  ASSERT_TRUE(call != NULL);
  callat = (size_t)((unsigned char *)call - b.p);
  symtab_i = (size_t)(section(&b, SHT_SYMTAB) - SH(&b, 0));
  run_i = sym_index(&b, "model_run");
  ASSERT_TRUE(run_i != 0);

  DAMAGED(b, EH(d)->e_ident[EI_CLASS] = ELFCLASS32, MOSSRT_E_FORMAT, "not an ELF64");
  DAMAGED(b, EH(d)->e_ident[EI_DATA] = ELFDATA2MSB, MOSSRT_E_FORMAT, "not an ELF64");
  DAMAGED(b, EH(d)->e_type = ET_EXEC, MOSSRT_E_FORMAT, "relocatable");
  DAMAGED(b, EH(d)->e_machine = EM_HOST == EM_X86_64 ? EM_AARCH64 : EM_X86_64, MOSSRT_E_TARGET,
          "machine");
  DAMAGED(b, EH(d)->e_shoff = d->n - 10, MOSSRT_E_FORMAT, "not an ELF64");
  DAMAGED(b, EH(d)->e_shnum = 0, MOSSRT_E_FORMAT, "not an ELF64");
  DAMAGED(b, EH(d)->e_shentsize = 40, MOSSRT_E_FORMAT, "not an ELF64");
  DAMAGED(b, EH(d)->e_shstrndx = EH(d)->e_shnum, MOSSRT_E_FORMAT, "not an ELF64");
  DAMAGED(b, SH(d, 1)->sh_offset = d->n, MOSSRT_E_FORMAT, "bad offset, size or link");
  DAMAGED(b, SH(d, 1)->sh_size = (uint64_t)-8, MOSSRT_E_FORMAT, "bad offset, size or link");
  DAMAGED(b, SH(d, 1)->sh_name = 0x7fffffff, MOSSRT_E_FORMAT, "bad name, alignment or flags");
  DAMAGED(b, SH(d, 1)->sh_addralign = 24, MOSSRT_E_FORMAT, "bad name, alignment or flags");
  DAMAGED(b, SH(d, 1)->sh_flags |= SHF_WRITE, MOSSRT_E_FORMAT, "bad name, alignment or flags");
  DAMAGED(b, SH(d, 1)->sh_flags |= SHF_TLS, MOSSRT_E_FORMAT, "thread-local");
  DAMAGED(b, SH(d, symtab_i)->sh_entsize = 16, MOSSRT_E_FORMAT, "bad offset, size or link");
  DAMAGED(b, SH(d, symtab_i)->sh_link = 999, MOSSRT_E_FORMAT, "bad offset, size or link");
#define SYMS(d) ((Elf64_Sym *)((d)->p + SH(d, symtab_i)->sh_offset))
  DAMAGED(b, SYMS(d)[run_i].st_name = 0x7fffffff, MOSSRT_E_FORMAT, "bad name, value or section");
  DAMAGED(b, SYMS(d)[run_i].st_shndx = EH(d)->e_shnum + 3, MOSSRT_E_FORMAT,
          "bad name, value or section");
  DAMAGED(b, SYMS(d)[run_i].st_shndx = SHN_XINDEX, MOSSRT_E_FORMAT, "bad name, value or section");
  DAMAGED(b, SYMS(d)[run_i].st_value = (uint64_t)1 << 40, MOSSRT_E_FORMAT,
          "bad name, value or section");
  DAMAGED(b, (SYMS(d)[run_i].st_shndx = SHN_COMMON, SYMS(d)[run_i].st_value = 24), MOSSRT_E_FORMAT,
          "bad name, value or section");
  DAMAGED(b, SYMS(d)[run_i].st_info = ELF64_ST_INFO(STB_GLOBAL, STT_TLS), MOSSRT_E_FORMAT,
          "thread-local");
#undef SYMS
  DAMAGED(b, ((Elf64_Rela *)(d->p + callat))->r_info = ELF64_R_INFO(100000, CALL_TYPE),
          MOSSRT_E_FORMAT, "names a bad symbol or offset");
  DAMAGED(b, ((Elf64_Rela *)(d->p + callat))->r_offset = (uint64_t)-1, MOSSRT_E_FORMAT,
          "names a bad symbol or offset");
  {
    Elf64_Shdr *target = NULL, *rs = rela_of(&b, call, &target);
    uint64_t end = target->sh_size;
    size_t rsi = (size_t)(rs - SH(&b, 0));
    ASSERT_TRUE(rs != NULL);
    DAMAGED(b, ((Elf64_Rela *)(d->p + callat))->r_offset = end, MOSSRT_E_FORMAT,
            "runs past its section");
    DAMAGED(b, SH(d, rsi)->sh_info = 999, MOSSRT_E_FORMAT, "bad link or target");
    DAMAGED(b, SH(d, rsi)->sh_link = 0, MOSSRT_E_FORMAT, "bad link or target");
    DAMAGED(b, SH(d, rsi)->sh_type = SHT_REL, MOSSRT_E_FORMAT, "SHT_REL");
  }
#define CALL(d) ((Elf64_Rela *)((d)->p + callat))
  DAMAGED(b, CALL(d)->r_info = ELF64_R_INFO(ELF64_R_SYM(call->r_info), 0x7ff0), MOSSRT_E_TARGET,
          "has a type this loader lacks");
  /* A short-range relocation towards the far import overflows. */
  DAMAGED(b, CALL(d)->r_info = ELF64_R_INFO(ELF64_R_SYM(call->r_info), SHORT_TYPE),
          MOSSRT_E_TARGET, "overflows");
#undef CALL
  free(b.p);
}

TEST(refused_objects) {
  static const struct {
    const char *obj, *msg;
  } cases[] = {{"ctor.o", "constructors are not supported"},
               {"tls.o", "thread-local storage is not supported"}};
  size_t i;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    blob b = readobj(cases[i].obj);
    mossrt_elf_image *img = NULL;
    char err[256];
    if (!b.p) FAIL_("cannot read %s", cases[i].obj);
    ASSERT_EQ(load(b.p, b.n, &img, err), MOSSRT_E_FORMAT);
    free(b.p);
    ASSERT_TRUE(img == NULL);
    ASSERT_STR_CONTAINS(err, cases[i].msg);
  }
}

TEST(unresolved_import) {
  blob b = readobj("llc-static.o");
  mossrt_elf_image *img = NULL;
  char err[256];
  if (!b.p) FAIL_("cannot read llc-static.o");
  /* Every import but tanhf (imports[1]). */
  {
    mossrt_elf_import less[NIMPORTS - 1];
    less[0] = imports[0];
    memcpy(less + 1, imports + 2, sizeof less - sizeof less[0]);
    ASSERT_EQ(mossrt_elf_load(b.p, b.n, less, NIMPORTS - 1, &img, err, sizeof err),
              MOSSRT_E_FORMAT);
  }
  ASSERT_TRUE(img == NULL);
  ASSERT_STR_CONTAINS(err, "'tanhf' is unresolved");
  ASSERT_EQ(mossrt_elf_load(b.p, b.n, NULL, 0, &img, err, sizeof err), MOSSRT_E_FORMAT);
  ASSERT_STR_CONTAINS(err, "is unresolved");
  /* A short message buffer is truncated, not overrun. */
  memset(err, 'x', sizeof err);
  ASSERT_EQ(mossrt_elf_load(b.p, b.n, NULL, 0, &img, err, 8), MOSSRT_E_FORMAT);
  ASSERT_EQ(strlen(err), 7);
  ASSERT_EQ(err[8], 'x');
  free(b.p);
}

/* Every prefix of the small objects fails cleanly. */
TEST(truncated) {
  static const char *const objs[] = {"small-llc.o", "small-gcc.o"};
  size_t i, n;
  for (i = 0; i < 2; i++) {
    blob b = readobj(objs[i]);
    if (!b.p) FAIL_("cannot read %s", objs[i]);
    for (n = 0; n < b.n; n++) {
      mossrt_elf_image *img = NULL;
      char err[256];
      unsigned char *c = malloc(n ? n : 1);
      mossrt_status st;
      memcpy(c, b.p, n);
      st = load(c, n, &img, err);
      free(c);
      if (st == MOSSRT_OK) mossrt_elf_unload(img);
      if (st == MOSSRT_OK || img) {
        free(b.p);
        FAIL_("%s truncated to %zu bytes loaded", objs[i], n);
      }
    }
    /* And the whole object loads. */
    {
      mossrt_elf_image *img = NULL;
      char err[256];
      mossrt_status st = load(b.p, b.n, &img, err);
      free(b.p);
      if (st != MOSSRT_OK) FAIL_("%s: %s", objs[i], err);
      ASSERT_TRUE(mossrt_elf_find(img, "model_run") != NULL);
      mossrt_elf_unload(img);
    }
  }
}

/* Seeded random damage, most of it in the headers and tables: each copy
 * loads or is refused; none is run. -DELF_MUTATIONS=n runs more. */
#ifndef ELF_MUTATIONS
#define ELF_MUTATIONS 2500
#endif
TEST(random_mutations) {
  static const char *const objs[] = {"small-llc.o", "small-gcc.o"};
  static const uint64_t vals[] = {0, 1, 0xff, 0x7f, 0x80, 0xffff, 0xffffffffu, 0x7fffffff,
                                  (uint64_t)-1, 4096};
  uint32_t seed = 20240601u;
  int loaded = 0, refused = 0, i, m;
  size_t o;
  for (o = 0; o < 2; o++) {
    blob b = readobj(objs[o]);
    unsigned char *c;
    size_t shoff, tables;
    if (!b.p) FAIL_("cannot read %s", objs[o]);
    c = malloc(b.n);
    shoff = (size_t)EH(&b)->e_shoff;
    /* The symbol table, the strings and the relocations lie between the
     * last loaded section and the section headers in both compilers' output. */
    tables = section(&b, SHT_SYMTAB)->sh_offset < shoff ? section(&b, SHT_SYMTAB)->sh_offset : 0;
    for (i = 0; i < ELF_MUTATIONS; i++) {
      mossrt_elf_image *img = NULL;
      char err[256];
      mossrt_status st;
      memcpy(c, b.p, b.n);
      for (m = 0; m < 1 + (i % 4); m++) {
        size_t at;
        seed = seed * 1103515245u + 12345u;
        switch ((seed >> 16) % 4) {
        case 0: at = (seed >> 4) % b.n; break;
        case 1: at = shoff + (seed >> 4) % (b.n - shoff); break;
        case 2: at = tables + (seed >> 4) % (shoff - tables); break;
        default: at = (seed >> 4) % 64; break;
        }
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 28) & 1) {
          uint64_t v = vals[(seed >> 20) % 10];
          size_t k, w = (size_t)1 << ((seed >> 24) & 3);
          for (k = 0; k < w && at + k < b.n; k++) c[at + k] = (unsigned char)(v >> (8 * k));
        } else {
          c[at] ^= (unsigned char)(1u << ((seed >> 24) & 7));
        }
      }
      st = load(c, b.n, &img, err);
      if (st == MOSSRT_OK) {
        loaded++;
        (void)mossrt_elf_find(img, "model_run");
        (void)mossrt_elf_find(img, "model_weights");
        mossrt_elf_unload(img);
      } else {
        refused++;
        if (img || !err[0]) {
          free(c), free(b.p);
          FAIL_("mutation %d of %s: status %d with %s", i, objs[o], st,
                img ? "an image" : "no message");
        }
      }
    }
    free(c);
    free(b.p);
  }
  printf("  random_mutations: %d loaded, %d refused\n", loaded, refused);
  ASSERT_TRUE(loaded > 100 && refused > 100);
}

TEST_MAIN()
