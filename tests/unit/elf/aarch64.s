// aarch64.s - relocation types test_elf checks that the compiled model
// objects do not all produce: LDST8/16/64/128_ABS_LO12_NC, ADR_PREL_PG_HI21_NC,
// CONDBR19, TSTBR14, MOVW_UABS_G0/G1/G2 (checked forms), ABS32, PREL64,
// PREL32 and CALL26/JUMP26 against a far import (elf_host). Imports from
// the test: tiny_import = 0x1234, small_import = 0x12345678. Branch targets
// sit in another section so that the assembler leaves relocations.
        .text
        .globl  asm_loads               // d8 + d16 + d64 + low half of d128
asm_loads:
        adrp    x1, asm_d8
        ldrb    w0, [x1, :lo12:asm_d8]
        adrp    x1, asm_d16
        ldrh    w2, [x1, :lo12:asm_d16]
        add     x0, x0, x2
        adrp    x1, asm_d64
        ldr     x2, [x1, :lo12:asm_d64]
        add     x0, x0, x2
        .reloc  ., R_AARCH64_ADR_PREL_PG_HI21_NC, asm_d128
        adrp    x1, 0
        ldr     q0, [x1, :lo12:asm_d128]
        fmov    x2, d0
        add     x0, x0, x2
        ret
        .globl  asm_movw                // tiny + small + (asm_d8 & 0xffffffff0000)
asm_movw:
        movz    x0, #:abs_g0:tiny_import
        movz    x1, #:abs_g1:small_import
        movk    x1, #:abs_g0_nc:small_import
        add     x0, x0, x1
        movz    x1, #:abs_g2:asm_d8
        movk    x1, #:abs_g1_nc:asm_d8
        add     x0, x0, x1
        ret
        .globl  asm_branch              // w0: 0 -> 10, odd -> 20, else 30 (cbz, tbnz)
asm_branch:
        cbz     w0, asm_is_zero
        tbnz    w0, #0, asm_is_odd
        mov     w0, #30
        ret
        .globl  asm_tail                // tail call to elf_host (JUMP26 through a stub)
asm_tail:
        b       elf_host

        .section .text.other,"ax",@progbits
        .globl  asm_is_zero, asm_is_odd
asm_is_zero:
        mov     w0, #10
        ret
asm_is_odd:
        mov     w0, #20
        ret

        .data
        .p2align 4
        .globl  asm_d8, asm_d16, asm_d64, asm_d128
asm_d128:
        .quad   0x0102030405060708, 0x1111111111111111
asm_d64:
        .quad   0x100000000
asm_d16:
        .hword  0x2345
asm_d8:
        .byte   0x7f
        .section .data.rel,"aw",@progbits
        .p2align 3
        .globl  asm_prel64, asm_prel32, asm_abs32
asm_prel64:
        .quad   asm_d64 - . + 3         // PREL64
asm_prel32:
        .word   asm_d64 - . - 5         // PREL32
asm_abs32:
        .word   small_import + 2        // ABS32
