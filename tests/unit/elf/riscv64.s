# riscv64.s - relocation types test_elf checks that the compiled model
# objects do not all produce: PCREL_LO12_S, HI20/LO12_S, JAL, BRANCH,
# RVC_JUMP/RVC_BRANCH, CALL (not _PLT), 32_PCREL,
# ADD/SUB 8/16/32/64, SUB6, SET6/8/16/32 and ALIGN (assembled with
# relaxation on). Import from the test: small_import = 0x12345678.
        .option relax
        .text
        .globl  asm_store               # a0 to asm_w (PCREL_LO12_S), 2*a0 to asm_w2 (LO12_S)
asm_store:
.Lhi:   auipc   t0, %pcrel_hi(asm_w)
        sw      a0, %pcrel_lo(.Lhi)(t0)
        slli    a1, a0, 1
        lui     t1, %hi(asm_w2)
        sw      a1, %lo(asm_w2)(t1)
        ret
        .p2align 5                      # R_RISCV_ALIGN with relaxation on
        .globl  asm_branch              # a0: 0 -> 10, < 0 -> 20, else 30 (beqz, blt, j)
asm_branch:
        mv      a1, a0
        li      a0, 10
        .option push
        .option norvc
        beqz    a1, asm_ret             # BRANCH
        .option pop
        li      a0, 20
        bltz    a1, asm_ret
        li      a0, 30
        .option push
        .option norvc
        j       asm_ret                 # JAL
        .option pop
        .globl  asm_cbranch             # the same with compressed branches
asm_cbranch:
        mv      a1, a0
        li      a0, 10
        beqz    a1, asm_ret2            # RVC_BRANCH (c.beqz: a1 is x11)
        li      a0, 20
        bltz    a1, asm_ret2
        li      a0, 30
        j       asm_ret2                # RVC_JUMP
        .globl  asm_call                # calls elf_host with R_RISCV_CALL
asm_call:
        addi    sp, sp, -16
        sd      ra, 8(sp)
        .option push
        .option norvc
        .reloc  ., R_RISCV_CALL, elf_host
        .reloc  ., R_RISCV_RELAX, 0
        auipc   ra, 0
        jalr    ra, 0(ra)
        .option pop
        ld      ra, 8(sp)
        addi    sp, sp, 16
        ret
asm_ret:                                # in the same section: with relaxation on,
        ret                             # the branches above keep their relocations
asm_ret2:
        ret
.Lend:

        .data
        .p2align 3
        .globl  asm_w, asm_w2, asm_diff64, asm_diff32, asm_diff16, asm_diff8, asm_pcrel32
        .globl  asm_set, asm_sub6
asm_w:  .word   0
asm_w2: .word   0
asm_diff64:
        .quad   .Lend - asm_store + 3   # ADD64/SUB64
asm_diff32:
        .word   .Lend - asm_branch      # ADD32/SUB32
asm_diff16:
        .half   .Lend - asm_branch      # ADD16/SUB16
asm_diff8:
        .byte   .Lend - asm_cbranch     # ADD8/SUB8
asm_sub6:
        .reloc  ., R_RISCV_SET6, asm_call
        .reloc  ., R_RISCV_SUB6, asm_store
        .byte   0xc0                    # top two bits kept: 0xc0 | ((asm_call - asm_store) & 63)
        .p2align 2
asm_set:
        .reloc  ., R_RISCV_SET8, small_import
        .reloc  .+1, R_RISCV_SET16, small_import
        .reloc  .+4, R_RISCV_SET32, small_import
        .byte   0, 0, 0, 0
        .word   0
        .section .data.rel,"aw",@progbits
        .globl  asm_pcrel32
asm_pcrel32:
        .reloc  ., R_RISCV_32_PCREL, asm_w+9
        .word   0
