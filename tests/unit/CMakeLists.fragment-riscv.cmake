# e2e_target_riscv: targets/riscv64-rvv.xml (Banana Pi BPI-F3, SpacemiT K1,
# RVV 1.0 at VLEN 256) validates and shows its vector facts, llc-19 takes its
# cpu and features, and the digits MLP and CNN compiled for it as C, built
# with the riscv64 cross compiler (and, where clang and LLVM 19 are present,
# through LLVM 19 with the target's cpu and features), match torch under
# qemu-riscv64. Exits 77 (skipped) only without the cross compiler, its C
# library or qemu-riscv64.
add_test(NAME e2e_target_riscv
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_target_riscv.py --moss $<TARGET_FILE:moss>)
set_tests_properties(e2e_target_riscv PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
  ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")
