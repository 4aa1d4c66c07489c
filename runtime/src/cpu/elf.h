/* elf.h - libmossrt's loader of ELF relocatable objects (internal, not part
 * of the ABI). The CPU code a bundle carries can be an ELF64 ET_REL object,
 * what the LLVM backend writes (llc -filetype=obj); this loader runs it
 * without dlopen, a linker or libLLVM, for the machine this runtime was
 * built for: x86-64, AArch64 or RISC-V 64 (any other build refuses every
 * object with MOSSRT_E_TARGET).
 *
 * What it supports: SHF_ALLOC sections of any kind (text, rodata, data,
 * bss, .eh_frame, which is loaded but not registered with an unwinder),
 * SHN_COMMON and SHN_ABS symbols, undefined symbols resolved against a
 * table of imports (weak ones may stay unresolved, as 0), the relocations
 * LLVM 19 and GCC emit for the small code model, PIC or not (and AArch64's
 * large model), with a GOT and a call stub (veneer) for every symbol inside
 * the image, so that calls reach imports wherever they are. What it refuses:
 * constructors (.init_array, .ctors and their destructor twins), thread-local
 * storage, SHT_REL relocations, extended section numbering (SHN_XINDEX) and
 * relocation types other than these:
 *   x86-64   64, PC64, PC32, PLT32, 32, 32S, GOTPCREL, GOTPCRELX, REX_GOTPCRELX
 *   AArch64  ABS64, ABS32, PREL64, PREL32, CALL26, JUMP26, CONDBR19, TSTBR14,
 *            ADR_PREL_PG_HI21(_NC), ADD_ABS_LO12_NC, LDST8/16/32/64/128_ABS_LO12_NC,
 *            ADR_GOT_PAGE, LD64_GOT_LO12_NC, MOVW_UABS_G0(_NC)..G3
 *   RISC-V   32, 64, 32_PCREL, HI20, LO12_I/S, PCREL_HI20, PCREL_LO12_I/S, GOT_HI20,
 *            CALL, CALL_PLT, BRANCH, JAL, RVC_BRANCH, RVC_JUMP, ADD8/16/32/64,
 *            SUB6/8/16/32/64, SET6/8/16/32, RELAX, ALIGN
 * No relaxation is done: RISC-V R_RISCV_RELAX is ignored and so is
 * R_RISCV_ALIGN, whose nops are left in place (they execute as nops; only
 * the code alignment the assembler asked for is not guaranteed). */
#ifndef MOSSRT_ELF_H
#define MOSSRT_ELF_H

#include <stddef.h>

#include "mossrt.h"

/* A symbol the object may reference without defining. */
typedef struct mossrt_elf_import {
  const char *name;
  void *addr;
} mossrt_elf_import;

typedef struct mossrt_elf_image mossrt_elf_image;

/* Loads the ELF64 little-endian relocatable object |obj| (|size| bytes, any
 * alignment; it is neither modified nor referenced after return) into one
 * anonymous mapping: text read+execute, read-only data and the GOT read-only
 * once relocated, writable data read+write, never writable and executable
 * at once. Undefined symbols are looked up by name in |imports| (|nimports|
 * entries; may be NULL when 0); _GLOBAL_OFFSET_TABLE_ names the image's GOT.
 * Sections are placed at addresses aligned as they ask (up to 1 MiB). Code
 * built without -fPIC (absolute 32-bit addresses: x86-64's small and
 * RISC-V's medlow code model) is placed in the low 2 GiB. The instruction
 * cache is flushed where the architecture needs it.
 * |*out_img| is set to NULL on entry and to the image on success; the
 * caller owns it (mossrt_elf_unload()). On failure |err| (when not NULL and
 * |errcap| > 0) receives one NUL-terminated line giving the reason alone,
 * without category: the caller prefixes it (mossrt_fail()). On success its
 * content is unspecified.
 * Errors: MOSSRT_E_FORMAT (not an ELF64 ET_REL object; any field, offset,
 * size or index out of range or inconsistent; SHT_REL relocations; an
 * unresolved symbol; constructors; thread-local storage), MOSSRT_E_TARGET
 * (another machine, a relocation type this loader does not apply, a
 * relocated value that does not fit its field), MOSSRT_E_NOMEM (the mapping
 * failed), MOSSRT_E_DEVICE (the system refused the protections).
 * Nothing in |obj| is trusted: a malformed object gives an error, never a
 * read outside |obj| or a write outside the image. (Running the loaded
 * code is another matter: a loader cannot vet machine code.)
 * Thread-safe: it touches no global state. */
mossrt_status mossrt_elf_load(const void *obj, size_t size, const mossrt_elf_import *imports,
                              size_t nimports, mossrt_elf_image **out_img, char *err,
                              size_t errcap);

/* The address of the defined global (or weak) symbol |name| of |img|, or
 * NULL when there is none. Borrowed: valid until mossrt_elf_unload(). */
void *mossrt_elf_find(const mossrt_elf_image *img, const char *name);

/* Unmaps |img| (NULL: no-op). Nothing it defined may be used afterwards. */
void mossrt_elf_unload(mossrt_elf_image *img);

#endif
