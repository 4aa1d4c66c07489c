# test_bundle: the .moss format end to end (compiler/bundle/bundle_write.c
# writes, runtime/ libmossrt reads and runs), every damaged-bundle case with
# its message, random mutations, allocation counting. It compiles its CPU
# code and test plugins at run time with $CC (default cc).
add_executable(test_bundle ${CMAKE_CURRENT_LIST_DIR}/test_bundle.c)
target_include_directories(test_bundle PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_compile_definitions(test_bundle PRIVATE
  MOSS_TEST_DATA_DIR="${CMAKE_CURRENT_LIST_DIR}/data"
  MOSS_TEST_OUT_DIR="${CMAKE_CURRENT_BINARY_DIR}/test_bundle.out"
  MOSS_PLUGIN_INCLUDE="${CMAKE_SOURCE_DIR}/plugins/include")
target_link_libraries(test_bundle PRIVATE moss_compiler mossrt ${CMAKE_DL_LIBS})
file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/test_bundle.out)
add_test(NAME test_bundle COMMAND test_bundle)
set_tests_properties(test_bundle PROPERTIES FIXTURES_SETUP bundle_corpus TIMEOUT 600)

# mossrt_size: the .text of libmossrt's core at -Os must stay within 16 KiB (issue 10).
add_test(NAME mossrt_size COMMAND sh ${CMAKE_SOURCE_DIR}/scripts/mossrt_size.sh --check 16385)

# fuzz_bundle: libFuzzer on the bundle loader, built with clang when it
# supports -fsanitize=fuzzer, whatever compiler builds the rest; run for
# 20 seconds from the bundles test_bundle leaves in its corpus folder.
find_program(MOSS_FUZZ_CLANG NAMES clang-14 clang)
if(MOSS_FUZZ_CLANG AND NOT DEFINED MOSS_FUZZ_OK)
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/fuzz_probe.c
    "#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n")
  execute_process(COMMAND ${MOSS_FUZZ_CLANG} -fsanitize=fuzzer ${CMAKE_CURRENT_BINARY_DIR}/fuzz_probe.c
                          -o ${CMAKE_CURRENT_BINARY_DIR}/fuzz_probe
                  RESULT_VARIABLE moss_fuzz_rc OUTPUT_QUIET ERROR_QUIET)
  if(moss_fuzz_rc EQUAL 0)
    set(MOSS_FUZZ_OK ON CACHE INTERNAL "clang supports -fsanitize=fuzzer")
  else()
    set(MOSS_FUZZ_OK OFF CACHE INTERNAL "clang supports -fsanitize=fuzzer")
  endif()
endif()
if(MOSS_FUZZ_OK)
  file(GLOB MOSS_FUZZ_RT_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/runtime/src/*/*.c)
  set(MOSS_FUZZ_BUNDLE ${CMAKE_CURRENT_BINARY_DIR}/fuzz_bundle)
  add_custom_command(OUTPUT ${MOSS_FUZZ_BUNDLE}
    COMMAND ${MOSS_FUZZ_CLANG} -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined
            -fno-sanitize-recover=undefined
            -I${CMAKE_SOURCE_DIR}/runtime/include -I${CMAKE_SOURCE_DIR}/plugins/include
            ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_bundle.c ${MOSS_FUZZ_RT_SOURCES} -ldl
            -o ${MOSS_FUZZ_BUNDLE}
    DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_bundle.c ${MOSS_FUZZ_RT_SOURCES}
            ${CMAKE_SOURCE_DIR}/runtime/include/mossrt.h ${CMAKE_SOURCE_DIR}/runtime/include/moss_bundle.h
            ${CMAKE_SOURCE_DIR}/runtime/src/core/mossrt_internal.h
    COMMENT "clang -fsanitize=fuzzer fuzz_bundle")
  add_custom_target(fuzz_bundle_build ALL DEPENDS ${MOSS_FUZZ_BUNDLE})
  add_test(NAME fuzz_bundle
    COMMAND ${MOSS_FUZZ_BUNDLE} -max_total_time=20 -timeout=10 -rss_limit_mb=4096 -seed=1
            -print_final_stats=1 ${CMAKE_CURRENT_BINARY_DIR}/test_bundle.out/corpus)
  set_tests_properties(fuzz_bundle PROPERTIES FIXTURES_REQUIRED bundle_corpus TIMEOUT 120)
endif()
