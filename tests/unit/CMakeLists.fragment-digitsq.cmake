# e2e_qdq_digits: torch's int8 digits models (QDQ ONNX) against torch's output
# integers, bundle and --emit c, plus the integer-only check of --explain.
add_test(NAME e2e_qdq_digits
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_qdq_digits.py --moss $<TARGET_FILE:moss>)
set_tests_properties(e2e_qdq_digits PROPERTIES
  ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")

# e2e_pruned_digits: the 90 % pruned, fine-tuned digits MLP against torch, and
# the sparse formats moss chose for its layers.
add_test(NAME e2e_pruned_digits
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_pruned_digits.py --moss $<TARGET_FILE:moss>)
set_tests_properties(e2e_pruned_digits PROPERTIES
  ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")
