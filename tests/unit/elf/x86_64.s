# x86_64.s - relocation types test_elf checks that the compiled model
# objects do not all produce: PC64, 32, 32S, plain GOTPCREL, GOTPCRELX and
# PLT32/PC32 against imports (tiny_import = 0x1234, small_import =
# 0x12345678, neg_import = -16, given by the test). Assembled by llvm-mc-19.
        .text
        .globl  asm_gotpcrel            # returns &asm_target through the GOT
asm_gotpcrel:
        .reloc  .+3, R_X86_64_GOTPCREL, asm_target-4
        movq    0(%rip), %rax           # 48 8b 05 <rel32>
        ret
        .globl  asm_gotpcrelx           # calls elf_host(x) through the GOT
asm_gotpcrelx:
        subq    $8, %rsp
        call    *elf_host@GOTPCREL(%rip)
        addq    $8, %rsp
        ret
        .globl  asm_imm                 # returns small_import + neg_import (32 and 32S)
asm_imm:
        movl    $small_import, %eax
        movq    $neg_import, %rcx
        addq    %rcx, %rax
        ret
        .globl  asm_tail                # tail call to elf_host (PLT32 through a stub)
asm_tail:
        jmp     elf_host

        .data
        .p2align 3
        .globl  asm_target, asm_pc64, asm_pc32, asm_abs64, asm_abs32, asm_abs32s
asm_target:
        .quad   0x1122334455667788
        .section .data.rel,"aw",@progbits   # another section: the assembler cannot resolve
        .p2align 3
asm_pc64:
        .quad   asm_target - . + 5      # R_X86_64_PC64
asm_pc32:
        .long   asm_target - . - 7      # R_X86_64_PC32
        .long   0
asm_abs64:
        .quad   asm_target + 24         # R_X86_64_64
asm_abs32:
        .long   small_import + 1        # R_X86_64_32
asm_abs32s:
        .reloc  ., R_X86_64_32S, neg_import-4
        .long   0
