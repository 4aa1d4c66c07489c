# The libFuzzer targets (tests/fuzz/README.md): fuzz_onnx (the importer,
# the passes, the planner and the cost model, as `moss compile` runs them
# before emitting), fuzz_target (the target XML loader), fuzz_tensor (the
# .npy and .pb readers), fuzz_bundle (the bundle loader, with a custom
# mutator that repairs the checksums) and fuzz_npu_blob (the npu-systolic
# plugin's blob loader and simulator, when the plugin is built). They need
# clang's -fsanitize=fuzzer and the whole compiler built with clang and the
# sanitizers, whatever compiler builds the rest, so they are a second build
# of this source tree (an ExternalProject in <build>/tests/fuzz/build,
# configured with MOSS_FUZZ_INNER) of which only the fuzzers are built.
# ctest runs each for MOSS_FUZZ_SECONDS from its committed corpus
# (tests/fuzz/corpus/<name>) and replays every input that once found a bug
# (tests/fuzz/regress/<name>).
set(MOSS_FUZZ_NAMES onnx target tensor bundle)
# fuzz_npu_blob: the npu-systolic plugin's blob loader and simulator, its
# sources linked in (when the plugin is part of this build).
if(TARGET moss_npu_systolic)
  list(APPEND MOSS_FUZZ_NAMES npu_blob)
endif()

if(MOSS_FUZZ_INNER)
  # Inside the clang build: the fuzzers themselves.
  foreach(n ${MOSS_FUZZ_NAMES})
    add_executable(fuzz_${n} EXCLUDE_FROM_ALL ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_${n}.c)
    target_link_options(fuzz_${n} PRIVATE -fsanitize=fuzzer)
  endforeach()
  foreach(n onnx target)
    target_link_libraries(fuzz_${n} PRIVATE moss_compiler mossrt)
  endforeach()
  target_include_directories(fuzz_tensor PRIVATE ${CMAKE_SOURCE_DIR}/compiler)
  target_link_libraries(fuzz_tensor PRIVATE moss_import)
  target_link_libraries(fuzz_bundle PRIVATE mossrt)
  if(TARGET moss_npu_systolic)
    get_target_property(npu_srcs moss_npu_systolic SOURCES)
    get_target_property(npu_dir moss_npu_systolic SOURCE_DIR)
    foreach(s ${npu_srcs})
      if(NOT IS_ABSOLUTE ${s})
        set(s ${npu_dir}/${s})
      endif()
      target_sources(fuzz_npu_blob PRIVATE ${s})
    endforeach()
    target_include_directories(fuzz_npu_blob PRIVATE ${npu_dir} ${CMAKE_SOURCE_DIR}/plugins/include)
    target_link_libraries(fuzz_npu_blob PRIVATE m)
  endif()
  target_compile_definitions(fuzz_target PRIVATE
    MOSS_FUZZ_MODEL="${CMAKE_SOURCE_DIR}/tests/golden/digits_cnn.onnx")
  return()
endif()

# fuzz_replay_cli: the same inputs through the moss command of this build
# (under ASan and UBSan in CI's second build), with or without clang.
add_test(NAME fuzz_replay_cli
  COMMAND sh ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_cli.sh $<TARGET_FILE:moss> ${CMAKE_SOURCE_DIR}
          ${CMAKE_CURRENT_BINARY_DIR}/fuzz_replay_cli.out)
set_tests_properties(fuzz_replay_cli PROPERTIES TIMEOUT 900 LABELS fuzz)

option(MOSS_FUZZ "Build the libFuzzer targets (tests/fuzz) with clang and run them in ctest" ON)
set(MOSS_FUZZ_SECONDS 30 CACHE STRING "Seconds each fuzzer runs in ctest (0: replay only)")
find_program(MOSS_FUZZ_CLANG NAMES clang-14 clang)
if(MOSS_FUZZ_CLANG AND NOT DEFINED MOSS_FUZZ_SANITIZERS_OK)
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/fuzz_probe.c
    "#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n")
  execute_process(COMMAND ${MOSS_FUZZ_CLANG} -fsanitize=fuzzer,address,undefined
                          ${CMAKE_CURRENT_BINARY_DIR}/fuzz_probe.c -o ${CMAKE_CURRENT_BINARY_DIR}/fuzz_probe
                  RESULT_VARIABLE moss_fuzz_rc OUTPUT_QUIET ERROR_QUIET)
  if(moss_fuzz_rc EQUAL 0)
    set(MOSS_FUZZ_SANITIZERS_OK ON CACHE INTERNAL "clang supports -fsanitize=fuzzer,address,undefined")
  else()
    set(MOSS_FUZZ_SANITIZERS_OK OFF CACHE INTERNAL "clang supports -fsanitize=fuzzer,address,undefined")
  endif()
endif()
if(MOSS_FUZZ AND NOT MOSS_FUZZ_SANITIZERS_OK)
  message(STATUS "moss: no fuzzers: clang with libclang_rt.fuzzer not found (scripts/install-deps.sh)")
endif()

if(MOSS_FUZZ AND MOSS_FUZZ_SANITIZERS_OK)
  include(ExternalProject)
  set(MOSS_FUZZ_DIR ${CMAKE_CURRENT_BINARY_DIR}/fuzz)
  set(MOSS_FUZZ_EXES)
  foreach(n ${MOSS_FUZZ_NAMES})
    list(APPEND MOSS_FUZZ_EXES fuzz_${n})
  endforeach()
  if(CMAKE_GENERATOR MATCHES "Makefiles")
    set(MOSS_FUZZ_BUILD $(MAKE) ${MOSS_FUZZ_EXES}) # shares the outer make's jobs
  else()
    set(MOSS_FUZZ_BUILD ${CMAKE_COMMAND} --build <BINARY_DIR> --target ${MOSS_FUZZ_EXES})
  endif()
  ExternalProject_Add(moss_fuzz
    SOURCE_DIR ${CMAKE_SOURCE_DIR}
    PREFIX ${MOSS_FUZZ_DIR}/ep
    BINARY_DIR ${MOSS_FUZZ_DIR}/build
    CMAKE_ARGS -DCMAKE_C_COMPILER=${MOSS_FUZZ_CLANG} -DCMAKE_BUILD_TYPE=Debug
               -DMOSS_FUZZ_INNER=ON -DMOSS_CHECK_LAYERS=OFF -DMOSS_SANITIZE=OFF -DMOSS_WERROR=OFF
               -DMOSS_ONNX_PROTO=${MOSS_ONNX_PROTO}
    CMAKE_CACHE_ARGS
      "-DCMAKE_C_FLAGS_DEBUG:STRING=-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
      "-DCMAKE_EXE_LINKER_FLAGS:STRING=-fsanitize=address,undefined"
    BUILD_COMMAND ${MOSS_FUZZ_BUILD}
    INSTALL_COMMAND ""
    BUILD_ALWAYS ON)

  foreach(n ${MOSS_FUZZ_NAMES})
    set(exe ${MOSS_FUZZ_DIR}/build/tests/fuzz_${n})
    set(regress ${CMAKE_SOURCE_DIR}/tests/fuzz/regress/${n})
    file(GLOB regress_files CONFIGURE_DEPENDS ${regress}/*)
    list(FILTER regress_files EXCLUDE REGEX "README")
    # fuzz_<name>: new inputs go to <build>/tests/fuzz/<name>.corpus (kept
    # between runs), crash reproducers to <build>/tests/fuzz/<name>-crash-*.
    if(MOSS_FUZZ_SECONDS GREATER 0)
      set(dirs ${MOSS_FUZZ_DIR}/${n}.corpus ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${n})
      if(regress_files)
        list(APPEND dirs ${regress})
      endif()
      file(MAKE_DIRECTORY ${MOSS_FUZZ_DIR}/${n}.corpus)
      add_test(NAME fuzz_${n}
        COMMAND ${exe} -max_total_time=${MOSS_FUZZ_SECONDS} -timeout=10 -rss_limit_mb=2048
                -seed=1 -print_final_stats=1 -artifact_prefix=${MOSS_FUZZ_DIR}/${n}- ${dirs}
        WORKING_DIRECTORY ${MOSS_FUZZ_DIR})
      math(EXPR limit "${MOSS_FUZZ_SECONDS} + 120")
      set_tests_properties(fuzz_${n} PROPERTIES TIMEOUT ${limit} LABELS fuzz)
    endif()
    # fuzz_<name>_regress: every input that once found a bug, run once each.
    if(regress_files)
      add_test(NAME fuzz_${n}_regress COMMAND ${exe} -timeout=10 -rss_limit_mb=2048 ${regress_files}
        WORKING_DIRECTORY ${MOSS_FUZZ_DIR})
      set_tests_properties(fuzz_${n}_regress PROPERTIES TIMEOUT 300 LABELS fuzz)
    endif()
  endforeach()
endif()
