# e2e_malformed: malformed models (opsets, IR version, attribute types and
# ranges, declared output shapes, duplicate outputs, sizes, initializers
# without data) are refused with the right category and a message naming
# what is wrong, never compiled with a default (tests/e2e/test_malformed.py).
add_test(NAME e2e_malformed
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_malformed.py
          --moss $<TARGET_FILE:moss>)
set_tests_properties(e2e_malformed PROPERTIES
  ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets" TIMEOUT 600)
