# e2e_qdq_ops: QDQ folding (compiler/passes/qdq.c), one small model per
# pattern, against numpy's evaluation of the float QDQ graph.
add_test(NAME e2e_qdq_ops
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_qdq_ops.py --moss $<TARGET_FILE:moss>)
set_tests_properties(e2e_qdq_ops PROPERTIES
  ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets" TIMEOUT 600)
