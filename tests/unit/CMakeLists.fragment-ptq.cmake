# test_ptq: post-training quantization's rewrite on hand-built graphs with
# hand-derived scales, zero points, int8 weights and int32 biases
# (compiler/passes/ptq.c), and the --calibration-method parser.
add_executable(test_ptq ${CMAKE_CURRENT_LIST_DIR}/test_ptq.c)
target_include_directories(test_ptq PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(test_ptq PRIVATE moss_compiler)
add_test(NAME test_ptq COMMAND test_ptq)

# e2e_ptq_digits: moss's PTQ of the digits MLP and CNN, calibrated on 256
# training inputs, against the float accuracy; the CLI's error cases; and
# the qdq pass's --explain summary (all layers in integer arithmetic).
add_test(NAME e2e_ptq_digits
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_ptq_digits.py --moss $<TARGET_FILE:moss>)
set_tests_properties(e2e_ptq_digits PROPERTIES
  ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")
