# Sizes against the target (issue 11): test_fit checks the checked size
# arithmetic (base, ir), the planner's overflow checks and the plan against
# the memories a target declares (compiler/plan/fit.c) on hand-built graphs;
# e2e_sizes runs `moss compile` on models made with onnx.helper whose buffers
# are too big for the target or whose sizes overflow 64 bits, and checks the
# messages (tests/e2e/test_sizes.py).
add_executable(test_fit ${CMAKE_CURRENT_LIST_DIR}/test_fit.c)
target_include_directories(test_fit PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_compile_definitions(test_fit PRIVATE MOSS_TEST_DATA_DIR="${CMAKE_CURRENT_LIST_DIR}/data")
target_link_libraries(test_fit PRIVATE moss_compiler)
add_test(NAME test_fit COMMAND test_fit)
set_tests_properties(test_fit PROPERTIES ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")
add_test(NAME e2e_sizes
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_sizes.py --moss $<TARGET_FILE:moss>)
set_tests_properties(e2e_sizes PROPERTIES ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")
