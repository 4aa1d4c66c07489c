# test_elf: libmossrt's ELF relocatable-object loader (runtime/src/cpu/elf.c).
# test_elf_objects makes the objects it loads (tests/unit/elf/build.sh: clang-14
# + llc-19, llvm-mc-19 and gcc, from elf/model.c and elf/<arch>.s); test_elf
# loads and runs them natively. test_elf_<arch>, for the two architectures
# this machine is not, builds the same test and the loader with
# <arch>-linux-gnu-gcc -static and runs it under qemu-<arch>; they exit 77
# (skipped) only when that cross compiler or qemu is missing.
set(MOSS_ELF_OUT ${CMAKE_CURRENT_BINARY_DIR}/test_elf.out)
add_executable(test_elf ${CMAKE_CURRENT_LIST_DIR}/test_elf.c)
target_compile_definitions(test_elf PRIVATE
  MOSS_ELF_OBJ_DIR="${MOSS_ELF_OUT}/${CMAKE_SYSTEM_PROCESSOR}")
target_link_libraries(test_elf PRIVATE mossrt m)
add_test(NAME test_elf_objects
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/elf/build.sh objects ${CMAKE_SYSTEM_PROCESSOR}
          ${MOSS_ELF_OUT}/${CMAKE_SYSTEM_PROCESSOR})
set_tests_properties(test_elf_objects PROPERTIES FIXTURES_SETUP elf_objects)
add_test(NAME test_elf COMMAND test_elf)
set_tests_properties(test_elf PROPERTIES FIXTURES_REQUIRED elf_objects TIMEOUT 300)
foreach(arch x86_64 aarch64 riscv64)
  if(NOT arch STREQUAL CMAKE_SYSTEM_PROCESSOR)
    add_test(NAME test_elf_${arch}
      COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/elf/build.sh run ${arch} ${MOSS_ELF_OUT}/${arch}
              ${CMAKE_SOURCE_DIR})
    set_tests_properties(test_elf_${arch} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
  endif()
endforeach()
