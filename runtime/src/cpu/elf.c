/* elf.c - the ELF relocatable-object loader of libmossrt's CPU executor
 * (elf.h): it turns the object the LLVM backend compiled a model into
 * (llc -filetype=obj) into runnable code at open time, in place of dlopen,
 * a linker or libLLVM. Like IREE's embedded ELF loader it is a small static
 * linker for one object: a sizing pass over the sections and symbols, one
 * anonymous mapping laid out in four page-aligned groups (text and call
 * stubs; read-only data and the GOT; writable data, bss and common symbols;
 * the image record with section addresses and copies of the symbol table
 * and its strings, for mossrt_elf_find()), a second pass that copies and
 * resolves, the relocations, then W^X protections. Every symbol gets a GOT
 * slot and a call stub through it, so GOT-relative code works and a call
 * whose target is out of its instruction's reach (an import in a far
 * library) goes through the stub instead. Code built without -fPIC needs
 * its addresses in 32-bit fields: when a relocation overflows, the whole
 * load is tried once more in the low 2 GiB. Only the host architecture's
 * relocation code is compiled in. Nothing in the object is trusted: every
 * read of it is bounds-checked and every write lands inside the image. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "elf.h"

#if defined(__x86_64__)
#define MACHINE 62 /* EM_X86_64 */
#define STUB 8
#elif defined(__aarch64__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MACHINE 183 /* EM_AARCH64 */
#define STUB 16
#elif defined(__riscv) && __riscv_xlen == 64
#define MACHINE 243 /* EM_RISCV */
#define STUB 16
#else
#define MACHINE 0 /* no loader here: every object is for another machine */
#define STUB 8
#endif
#define MACHINE_STR2(m) #m
#define MACHINE_STR(m) MACHINE_STR2(m)
#define MACHINE_NAME MACHINE_STR(MACHINE)

#if defined(MAP_32BIT) && MACHINE == 62
#define LOWMAP MAP_32BIT
#else
#define LOWMAP 0
#endif
#define LOWHINT 0x40000000u          /* where code that needs the low 2 GiB is mapped */
#define LIMIT ((uint64_t)1 << 40)    /* bytes an image may take: more is corruption */
#define MAXALIGN ((uint64_t)1 << 20) /* the largest section alignment honoured */

/* The ELF64 records, read with memcpy (|obj| may be unaligned). */
typedef struct ehdr {
  uint8_t ident[16];
  uint16_t type, machine;
  uint32_t version;
  uint64_t entry, phoff, shoff;
  uint32_t flags;
  uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
} ehdr;
typedef struct shdr {
  uint32_t name, type;
  uint64_t flags, addr, offset, size;
  uint32_t link, info;
  uint64_t addralign, entsize;
} shdr;
typedef struct esym {
  uint32_t name;
  uint8_t info, other;
  uint16_t shndx;
  uint64_t value, size;
} esym;
typedef struct rela {
  uint64_t offset, info, addend;
} rela;

enum { SHT_RELA = 4, SHT_NOBITS = 8, SHT_REL = 9 };
enum { SHF_WRITE = 1, SHF_ALLOC = 2, SHF_EXEC = 4, SHF_TLS = 0x400 };
enum { RX, RO, RW, META, NGROUPS }; /* the groups of the mapping, in order */

struct mossrt_elf_image { /* at the start of the META group */
  uint8_t *map;
  size_t size;
  uint32_t nsyms;
  const esym *syms;              /* copies of the symbol table and its strings */
  const char *str;
  const uint64_t *got;           /* each symbol's address */
};

typedef struct ld {
  const uint8_t *obj;
  size_t size;
  const mossrt_elf_import *imports;
  size_t nimports;
  char *err;
  size_t errcap;
  ehdr eh;
  uint32_t symtab, nsyms;        /* the SHT_SYMTAB section (0: none) and its entries */
  shdr ss, st;                   /* its header and that of its strings */
  uint64_t base[NGROUPS];        /* each group's start: 0 while sizing, then addresses */
  uint64_t end[NGROUPS], align;  /* bytes used in each group; largest alignment */
  int big;                       /* some size went past LIMIT */
  int low;                       /* a relocated value overflowed */
  uint8_t *map;                  /* the mapping; NULL in the sizing pass */
  uint64_t *secaddr, *got;       /* per section (0: not loaded); per symbol */
  uint8_t *stubs;                /* per symbol, STUB bytes */
  mossrt_elf_image *img;
} ld;

static mossrt_status fail(ld *l, mossrt_status st, const char *fmt, ...) {
  va_list ap;
  if (l->err && l->errcap) {
    va_start(ap, fmt);
    vsnprintf(l->err, l->errcap, fmt, ap);
    va_end(ap);
  }
  return st;
}
#define FAIL(st, ...) return fail(l, (st), __VA_ARGS__)
#define TRY(x)                                                                                     \
  do {                                                                                             \
    mossrt_status st_ = (x);                                                                       \
    if (st_ != MOSSRT_OK) return st_;                                                              \
  } while (0)

/* Section header |i| (< shnum; the table was checked to lie inside |obj|). */
static shdr sec(const ld *l, uint32_t i) {
  shdr s;
  memcpy(&s, l->obj + l->eh.shoff + (uint64_t)i * sizeof s, sizeof s);
  return s;
}

/* The NUL-terminated string at |off| in section |i|; NULL when it is not one. */
static const char *str(const ld *l, uint32_t i, uint64_t off) {
  shdr s = sec(l, i);
  const char *p;
  if (s.type == SHT_NOBITS || off >= s.size) return NULL;
  p = (const char *)l->obj + s.offset + off;
  return memchr(p, 0, s.size - off) ? p : NULL;
}

/* Reserves |size| bytes aligned to |align| in group |g|; returns their address. */
static uint64_t place(ld *l, int g, uint64_t align, uint64_t size) {
  uint64_t pos = (l->end[g] + align - 1) & ~(align - 1);
  if (size > LIMIT || pos > LIMIT - size) l->big = 1, pos = size = 0;
  l->end[g] = pos + size;
  if (align > l->align) l->align = align;
  return l->base[g] + pos;
}

/* 1 when |v|, read as signed, fits in |bits| bits. */
static int fits(uint64_t v, unsigned bits) {
  return ((v + ((uint64_t)1 << (bits - 1))) >> bits) == 0;
}

#if MACHINE == 183 || MACHINE == 243
/* A 32-bit field that may hold a signed or an unsigned value. */
static int fits32(uint64_t v) { return v + 0x80000000u < 0x180000000u; }
#endif

/* Applies relocation |type| at address |p|, |room| bytes before the end of
 * its section, for symbol value |s|, addend |a|, GOT slot |g| and stub |t|.
 * 0: done; 1: the value does not fit; 2: unsupported type; 3: no room. */
static int reloc(uint64_t p, uint64_t room, uint32_t type, uint64_t s, uint64_t a, uint64_t g,
                 uint64_t t) {
  uint64_t old = 0, v = s + a, d = v - p, x = v;
  unsigned n = 4;
  int ok = 1;
  memcpy(&old, (void *)(uintptr_t)p, room < 8 ? room : 8);
  (void)old, (void)g, (void)t, (void)d;
#if MACHINE == 62
  switch (type) {
  case 0: return 0;                                  /* R_X86_64_NONE */
  case 1: n = 8; break;                              /* R_X86_64_64 */
  case 24: n = 8; x = d; break;                      /* R_X86_64_PC64 */
  case 10: ok = v >> 32 == 0; break;                 /* R_X86_64_32 */
  case 11: ok = fits(v, 32); break;                  /* R_X86_64_32S */
  case 4:                                            /* R_X86_64_PLT32 */
    if (!fits(d, 32)) d = t + a - p;
    /* fall through */
  case 2: x = d; ok = fits(d, 32); break;            /* R_X86_64_PC32 */
  case 9: case 41: case 42:                          /* R_X86_64_(REX_)GOTPCREL(X) */
    x = g + a - p;
    ok = fits(x, 32);
    break;
  default: return 2;
  }
#elif MACHINE == 183
  uint32_t ins = (uint32_t)old, sh = 0, bits = 12, pos = 10;
  switch (type) {
  case 0: case 256: return 0;                        /* R_AARCH64_NONE */
  case 257: n = 8; break;                            /* ABS64 */
  case 260: n = 8; x = d; break;                     /* PREL64 */
  case 258: ok = fits32(v); break;                   /* ABS32 */
  case 261: x = d; ok = fits32(d); break;            /* PREL32 */
  case 311:                                          /* ADR_GOT_PAGE */
    if (a) return 2;
    v = g;
    /* fall through */
  case 275: case 276:                                /* ADR_PREL_PG_HI21(_NC) */
    d = (v >> 12) - (p >> 12);
    ok = type == 276 || fits(d, 21);
    x = (ins & 0x9f00001f) | (d & 3) << 29 | (d >> 2 & 0x7ffff) << 5;
    break;
  case 312:                                          /* LD64_GOT_LO12_NC */
    if (a) return 2;
    v = g;
    sh = 3;
    goto lo12;
  case 299: sh++; /* fall through */                 /* LDST128_ABS_LO12_NC */
  case 286: sh++; /* fall through */                 /* LDST64_ABS_LO12_NC */
  case 285: sh++; /* fall through */                 /* LDST32_ABS_LO12_NC */
  case 284: sh++; /* fall through */                 /* LDST16_ABS_LO12_NC */
  case 277: case 278:                                /* ADD_ABS_LO12_NC, LDST8_ABS_LO12_NC */
  lo12:
    d = (v & 0xfff) >> sh;
    goto field;
  case 263: case 264: case 265: case 266: case 267: case 268: case 269: /* MOVW_UABS_G0..G3 */
    sh = (type - 263) / 2 * 16;
    ok = !(type & 1) || sh == 48 || !(v >> sh >> 16);
    d = v >> sh, bits = 16, pos = 5;
    goto field;
  case 279: bits = 14; goto branch;                  /* TSTBR14 */
  case 280: bits = 19; goto branch;                  /* CONDBR19 */
  case 282: case 283:                                /* JUMP26, CALL26 */
    if (!fits(d, 28)) d = t + a - p;
    bits = 26, pos = 0;
  branch:
    ok = fits(d, bits + 2);
    d >>= 2;
    if (pos) pos = 5;
  field:
    x = (ins & ~(((1u << bits) - 1) << pos)) | (uint32_t)(d & ((1u << bits) - 1)) << pos;
    break;
  default: return 2;
  }
#elif MACHINE == 243
  uint32_t ins = (uint32_t)old;
  switch (type) {
  case 0: case 43: case 51: return 0;                /* NONE, ALIGN (no relaxation), RELAX */
  case 1: ok = fits32(v); break;                     /* R_RISCV_32 */
  case 2: n = 8; break;                              /* R_RISCV_64 */
  case 57: x = d; ok = fits(d, 32); break;           /* 32_PCREL */
  case 20: d = g + a - p; /* fall through */         /* GOT_HI20 */
  case 23: v = d; /* fall through */                 /* PCREL_HI20 */
  case 26:                                           /* HI20 */
    ok = fits(v + 0x800, 32);
    x = (ins & 0xfff) | ((v + 0x800) & 0xfffff000);
    break;
  case 27: x = (ins & 0xfffff) | (v & 0xfff) << 20; break;            /* LO12_I */
  case 28: x = (ins & 0x1fff07f) | (v & 0xfe0) << 20 | (v & 0x1f) << 7; break; /* LO12_S */
  case 18: case 19:                                  /* CALL, CALL_PLT: auipc + jalr */
    if (!fits(d + 0x800, 32)) d = t + a - p;
    ok = fits(d + 0x800, 32);
    n = 8;
    x = (old & 0x000fffff00000fffu) | ((d + 0x800) & 0xfffff000) | d << 52;
    break;
  case 16:                                           /* BRANCH */
    ok = fits(d, 13);
    x = (ins & 0x1fff07f) | (d >> 12 & 1) << 31 | (d >> 5 & 0x3f) << 25 | (d >> 1 & 0xf) << 8 |
        (d >> 11 & 1) << 7;
    break;
  case 17:                                           /* JAL */
    ok = fits(d, 21);
    x = (ins & 0xfff) | (d >> 20 & 1) << 31 | (d >> 1 & 0x3ff) << 21 | (d >> 11 & 1) << 20 |
        (d & 0xff000);
    break;
  case 44:                                           /* RVC_BRANCH */
    ok = fits(d, 9), n = 2;
    x = (ins & 0xe383) | (d >> 8 & 1) << 12 | (d >> 3 & 3) << 10 | (d >> 6 & 3) << 5 |
        (d >> 1 & 3) << 3 | (d >> 5 & 1) << 2;
    break;
  case 45:                                           /* RVC_JUMP */
    ok = fits(d, 12), n = 2;
    x = (ins & 0xe003) | (d >> 11 & 1) << 12 | (d >> 4 & 1) << 11 | (d >> 8 & 3) << 9 |
        (d >> 10 & 1) << 8 | (d >> 6 & 1) << 7 | (d >> 7 & 1) << 6 | (d >> 1 & 7) << 3 |
        (d >> 5 & 1) << 2;
    break;
  case 33: case 34: case 35: case 36: n = 1u << (type - 33), x = old + v; break; /* ADD8..64 */
  case 37: case 38: case 39: case 40: n = 1u << (type - 37), x = old - v; break; /* SUB8..64 */
  case 52: n = 1, x = (old & 0xc0) | ((old - v) & 0x3f); break;                   /* SUB6 */
  case 53: n = 1, x = (old & 0xc0) | (v & 0x3f); break;                           /* SET6 */
  case 54: case 55: case 56: n = 1u << (type - 54); break;                        /* SET8..32 */
  default: return 2;
  }
#else
  (void)type, (void)fits;
  return 2;
#endif
  if (!ok) return 1;
  if (room < n) return 3;
  memcpy((void *)(uintptr_t)p, &x, n);
  return 0;
}

/* A call stub: jumps to the address in its symbol's GOT slot. */
static void stub(uint64_t p, uint64_t got) {
#if MACHINE == 62
  static const uint8_t code[STUB] = {0xff, 0x25, 0, 0, 0, 0, 0xcc, 0xcc}; /* jmp *slot(%rip) */
  memcpy((void *)(uintptr_t)p, code, STUB);
  reloc(p + 2, 4, 9, 0, (uint64_t)-4, got, 0);
#elif MACHINE == 183
  static const uint32_t code[4] = {0x90000010, 0xf9400210, 0xd61f0200, 0}; /* adrp, ldr, br x16 */
  memcpy((void *)(uintptr_t)p, code, STUB);
  reloc(p, 4, 311, 0, 0, got, 0);
  reloc(p + 4, 4, 312, 0, 0, got, 0);
#elif MACHINE == 243
  static const uint32_t code[4] = {0x00000317, 0x00033303, 0x00030067, 0}; /* auipc, ld, jr t1 */
  memcpy((void *)(uintptr_t)p, code, STUB);
  reloc(p, 8, 18, got, 0, 0, got);
#else
  (void)p, (void)got;
#endif
}

/* One pass over the sections and symbols: placing them (the sizing pass,
 * l->map NULL), or placing, copying and resolving them (the second pass,
 * which repeats the placement exactly). */
static mossrt_status walk(ld *l) {
  uint32_t i, n = l->eh.shnum;
  uint64_t got, stubs;
  const char *name, *why = "section %u: bad name, alignment or flags";
  memset(l->end, 0, sizeof l->end);
  for (i = 1; i < n; i++) {
    shdr s = sec(l, i);
    uint64_t al = s.addralign ? s.addralign : 1, a;
    if (!(s.flags & SHF_ALLOC)) continue;
    name = str(l, l->eh.shstrndx, s.name);
    if (!name || (al & (al - 1)) || al > MAXALIGN || (s.flags & (SHF_WRITE | SHF_EXEC)) == 5)
      goto bad;
    why = "section %u (%s): thread-local storage is not supported";
    if (s.flags & SHF_TLS) goto bad;
    why = "section %u (%s): constructors are not supported";
    if ((s.type >= 14 && s.type <= 16) || (name[0] && name[1] && !strncmp(name + 2, "tors", 4)))
      goto bad; /* SHT_(PRE)INIT_ARRAY, SHT_FINI_ARRAY, .ctors, .dtors */
    a = place(l, s.flags & SHF_EXEC ? RX : s.flags & SHF_WRITE ? RW : RO, al, s.size);
    if (!l->map) continue;
    l->secaddr[i] = a;
    if (s.type != SHT_NOBITS) memcpy((void *)(uintptr_t)a, l->obj + s.offset, s.size);
  }
  got = place(l, RO, 8, (uint64_t)l->nsyms * 8);
  stubs = place(l, RX, 16, (uint64_t)l->nsyms * STUB);
  l->got = (uint64_t *)(uintptr_t)got;
  l->stubs = (uint8_t *)(uintptr_t)stubs;
  for (i = 1; i < l->nsyms; i++) {
    esym s;
    uint64_t a = 0, al;
    memcpy(&s, l->obj + l->ss.offset + (uint64_t)i * sizeof s, sizeof s);
    name = str(l, l->ss.link, s.name);
    al = s.value ? s.value : 1;
    why = "symbol %u: bad name, value or section index";
    if (!name) goto bad;
    if (s.shndx == 0) { /* undefined: an import, or the linker's name for the GOT */
      size_t k;
      for (k = 0; k < l->nimports && strcmp(l->imports[k].name, name); k++) {}
      if (k < l->nimports) a = (uint64_t)(uintptr_t)l->imports[k].addr;
      else if (!strcmp(name, "_GLOBAL_OFFSET_TABLE_")) a = got;
      else if (s.info >> 4 != 2) goto unresolved; /* not weak */
    } else if (s.shndx == 0xfff1) { /* SHN_ABS */
      a = s.value;
    } else if (s.shndx == 0xfff2) { /* SHN_COMMON: st_value is the alignment */
      if ((al & (al - 1)) || al > MAXALIGN) goto bad;
      a = place(l, RW, al, s.size);
    } else if (s.shndx < n && s.shndx < 0xff00 && s.value <= sec(l, s.shndx).size) {
      if (l->map && l->secaddr[s.shndx]) a = l->secaddr[s.shndx] + s.value;
    } else {
      goto bad;
    }
    why = "symbol %u (%s): thread-local storage is not supported";
    if ((s.info & 15) == 6) goto bad;
    if (l->map) {
      l->got[i] = a;
      stub(stubs + (uint64_t)i * STUB, got + (uint64_t)i * 8);
    }
  }
  return MOSSRT_OK;
unresolved:
  why = "symbol %u '%s' is unresolved";
bad:
  return fail(l, MOSSRT_E_FORMAT, why, i, name);
}

#if MACHINE == 243
/* The value of the R_RISCV_PCREL_HI20 or GOT_HI20 relocation at address
 * |label|, which an R_RISCV_PCREL_LO12_* names as its symbol. Searched
 * backwards from relocation |j| of the |n| in |r|: it is usually just before. */
static int hi20(const ld *l, const shdr *r, uint64_t n, uint64_t j, uint64_t base, uint64_t label,
                uint64_t *out) {
  uint64_t c;
  for (c = 1; c <= n; c++) {
    rela e;
    uint64_t sym;
    uint32_t type;
    memcpy(&e, l->obj + r->offset + (j + n - c) % n * sizeof e, sizeof e);
    sym = e.info >> 32, type = (uint32_t)e.info;
    if (base + e.offset != label || (type != 20 && type != 23) || sym >= l->nsyms) continue;
    *out = (type == 20 ? (uint64_t)(uintptr_t)&l->got[sym] : l->got[sym]) + e.addend - label;
    return 1;
  }
  return 0;
}
#endif

/* Applies every relocation section whose target section is loaded. */
static mossrt_status relocate(ld *l) {
  static const char *const why[] = {"", "overflows its field", "has a type this loader lacks",
                                    "runs past its section", "names a bad symbol or offset",
                                    "has no R_RISCV_PCREL_HI20"};
  uint32_t i, n = l->eh.shnum, type = 0;
  uint64_t j = 0;
  int rc = 0;
  for (i = 1; i < n; i++) {
    shdr r = sec(l, i), t;
    uint64_t nrel = r.size / sizeof(rela), base;
    if (r.type != SHT_RELA && r.type != SHT_REL) continue;
    if (r.info >= n) break;
    base = l->secaddr[r.info];
    if (!base) continue; /* debug information and other sections that are not loaded */
    if (r.type == SHT_REL || !l->symtab || r.link != l->symtab) break;
    t = sec(l, r.info);
    for (j = 0; j < nrel; j++) {
      rela e;
      uint64_t sym, s, a;
      memcpy(&e, l->obj + r.offset + j * sizeof e, sizeof e);
      sym = e.info >> 32, type = (uint32_t)e.info, rc = 4;
      if (sym >= l->nsyms || e.offset > t.size) goto bad;
      s = l->got[sym], a = e.addend;
#if MACHINE == 243
      if (type == 24 || type == 25) { /* PCREL_LO12_I/S: the low part of their HI20's value */
        rc = 5;
        if (!hi20(l, &r, nrel, j, base, s + a, &s)) goto bad;
        a = 0, type += 3;
      }
#endif
      rc = reloc(base + e.offset, t.size - e.offset, type, s, a,
                 (uint64_t)(uintptr_t)&l->got[sym], (uint64_t)(uintptr_t)l->stubs + sym * STUB);
      l->low |= rc == 1;
      if (rc) goto bad;
    }
  }
  if (i < n)
    FAIL(MOSSRT_E_FORMAT, "section %u: a relocation section that is SHT_REL, or has a bad link "
                          "or target", i);
  return MOSSRT_OK;
bad:
  return fail(l, rc < 3 ? MOSSRT_E_TARGET : MOSSRT_E_FORMAT,
              "section %u: relocation %llu (type %u) %s", i, (unsigned long long)j, type, why[rc]);
}

/* Checks the header and the section table, sizes, maps, fills, relocates. */
static mossrt_status load(ld *l, int low, uint64_t *out_size) {
  static const int prot[NGROUPS] = {PROT_READ | PROT_EXEC, PROT_READ, PROT_READ | PROT_WRITE,
                                    PROT_READ};
  uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), al, total = 0, x = 0;
  uint32_t i, g;
  uint8_t *m;
  ehdr *e = &l->eh;
  const char *why = "not an ELF64 little-endian relocatable object";
  mossrt_status code = MOSSRT_E_FORMAT;
  if (l->size >= sizeof *e) memcpy(e, l->obj, sizeof *e);
  if (l->size < sizeof *e || memcmp(e->ident, "\177ELF\2\1\1", 7) || e->type != 1 ||
      e->shentsize != sizeof(shdr) || !e->shnum || e->shoff > l->size ||
      e->shnum > (l->size - e->shoff) / sizeof(shdr) || e->shstrndx >= e->shnum)
    goto bad;
  why = "the object is for ELF machine %llu, this runtime loads machine " MACHINE_NAME;
  code = MOSSRT_E_TARGET, x = e->machine;
  if (e->machine != MACHINE) goto bad;
  why = "section %llu: bad offset, size or link";
  code = MOSSRT_E_FORMAT;
  for (i = 0; i < e->shnum; i++) {
    shdr s = sec(l, i);
    int sym = s.type == 2; /* SHT_SYMTAB */
    x = i;
    if ((s.type != SHT_NOBITS && (s.offset > l->size || s.size > l->size - s.offset)) ||
        (sym && (l->symtab || s.entsize != sizeof(esym) || s.link >= e->shnum ||
                 sec(l, s.link).type == SHT_NOBITS)))
      goto bad;
    if (sym) l->symtab = i, l->nsyms = (uint32_t)(s.size / sizeof(esym)), l->ss = s;
  }
  if (l->symtab) l->st = sec(l, l->ss.link); /* else both stay zero */
  TRY(walk(l));
  why = "the image would take more than 1 TiB";
  if (l->big) goto bad;
  l->end[META] = sizeof(mossrt_elf_image) + e->shnum * 8u + l->ss.size + l->st.size;
  al = l->align > page ? l->align : page;
  for (g = 0; g < NGROUPS; g++) {
    l->base[g] = total;
    total += (l->end[g] + al - 1) & ~(al - 1);
  }
  x = total + al - page; /* room to align the image when a section wants more than a page */
  m = mmap(low ? (void *)(uintptr_t)LOWHINT : NULL, x, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | (low ? LOWMAP : 0), -1, 0);
  why = "cannot map %llu bytes";
  code = MOSSRT_E_NOMEM;
  if (m == MAP_FAILED) goto bad;
  l->map = m;
  *out_size = x;
  m = (uint8_t *)(((uintptr_t)m + al - 1) & ~(uintptr_t)(al - 1));
  for (g = 0; g < NGROUPS; g++) l->base[g] += (uintptr_t)m;
  l->img = (mossrt_elf_image *)(uintptr_t)l->base[META];
  l->img->map = l->map;
  l->img->size = (size_t)x;
  l->secaddr = (uint64_t *)(l->img + 1);
  l->img->syms = memcpy(l->secaddr + e->shnum, l->obj + l->ss.offset, l->ss.size);
  l->img->str = memcpy((uint8_t *)(l->secaddr + e->shnum) + l->ss.size, l->obj + l->st.offset,
                       l->st.size);
  l->img->nsyms = l->nsyms;
  TRY(walk(l));
  l->img->got = l->got;
  TRY(relocate(l));
  why = "cannot set the protection of the image";
  code = MOSSRT_E_DEVICE;
  for (g = 0; g < NGROUPS; g++) {
    size_t len = (size_t)((g + 1 < NGROUPS ? l->base[g + 1] : l->base[RX] + total) - l->base[g]);
    /* An empty group may sit at the end of the mapping; qemu-user refuses
     * mprotect() there even for 0 bytes, so leave it alone. */
    if (len && mprotect((void *)(uintptr_t)l->base[g], len, prot[g])) goto bad;
  }
  __builtin___clear_cache((char *)(uintptr_t)l->base[RX], (char *)(uintptr_t)l->base[RO]);
  return MOSSRT_OK;
bad:
  return fail(l, code, why, (unsigned long long)x);
}

mossrt_status mossrt_elf_load(const void *obj, size_t size, const mossrt_elf_import *imports,
                              size_t nimports, mossrt_elf_image **out_img, char *err,
                              size_t errcap) {
  ld l = {0};
  uint64_t mapped = 0;
  mossrt_status st;
  int low = 0;
  *out_img = NULL;
  l.obj = obj, l.size = size, l.imports = imports, l.nimports = nimports;
  l.err = err, l.errcap = errcap;
  /* Code built without -fPIC (x86-64's small, RISC-V's medlow code model)
   * holds addresses in 32-bit absolute fields: it runs only from the low
   * 2 GiB. An overflow gets a second try there. */
  while ((st = load(&l, low, &mapped)) != MOSSRT_OK) {
    if (l.map) munmap(l.map, (size_t)mapped);
    if (st != MOSSRT_E_TARGET || !l.low || low++) return st;
    l.map = NULL, l.symtab = l.nsyms = 0;
  }
  *out_img = l.img;
  return st;
}

void *mossrt_elf_find(const mossrt_elf_image *img, const char *name) {
  uint32_t i;
  for (i = 1; img && i < img->nsyms; i++) {
    const esym *s = &img->syms[i];
    /* Global or weak, defined, loaded, no section or file symbol. */
    if (s->info >> 4 && s->shndx && (s->info & 15) < 3 && img->got[i] &&
        !strcmp(img->str + s->name, name))
      return (void *)(uintptr_t)img->got[i];
  }
  return NULL;
}

void mossrt_elf_unload(mossrt_elf_image *img) {
  if (img) munmap(img->map, img->size);
}
