# test_backend: the backend table (backends/backend.h) and the passes that
# ask it (partition: takes, opaque; sparse: sparse_formats).
add_executable(test_backend ${CMAKE_CURRENT_LIST_DIR}/test_backend.c)
target_include_directories(test_backend PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_compile_definitions(test_backend PRIVATE MOSS_TEST_DATA_DIR="${CMAKE_CURRENT_LIST_DIR}/data")
target_link_libraries(test_backend PRIVATE moss_compiler)
add_test(NAME test_backend COMMAND test_backend)
set_tests_properties(test_backend PROPERTIES ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")

# e2e_sparse_backends: a sparse-worthy MatMul gets the rule's format from the
# C backend (--emit c) and stays dense, and compiles, for LLVM (--emit obj).
add_test(NAME e2e_sparse_backends
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/e2e/test_sparse_backends.py --moss $<TARGET_FILE:moss>)
set_tests_properties(e2e_sparse_backends PROPERTIES ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")
