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

# fuzz_bundle, the libFuzzer target on the bundle loader: CMakeLists.fragment-fuzz.cmake.
