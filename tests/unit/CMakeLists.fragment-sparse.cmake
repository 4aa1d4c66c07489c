# test_sparse: the sparse-format pass on hand-made weights (compiler/passes/sparse.c).
add_executable(test_sparse ${CMAKE_CURRENT_LIST_DIR}/test_sparse.c)
target_include_directories(test_sparse PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(test_sparse PRIVATE moss_compiler)
add_test(NAME test_sparse COMMAND test_sparse)

# e2e_sparse: sparse kernels against their dense twins and numpy (exits 77
# while the sparse pass is not in the pipeline).
add_test(NAME e2e_sparse
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_sparse.py --moss $<TARGET_FILE:moss>)
set_tests_properties(e2e_sparse PROPERTIES SKIP_RETURN_CODE 77
  ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")

# e2e_sparse_int8: the int8 sparse kernels (QLinearConv, ConvInteger,
# QLinearMatMul, MatMulInteger) against their dense twins, bit for bit, and numpy.
add_test(NAME e2e_sparse_int8
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_sparse_int8.py --moss $<TARGET_FILE:moss>)
if(MOSS_SANITIZE) # the generated kernels too, not only moss
  set_tests_properties(e2e_sparse_int8 PROPERTIES ENVIRONMENT
    "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets;MOSS_CFLAGS=-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined")
else()
  set_tests_properties(e2e_sparse_int8 PROPERTIES
    ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")
endif()
