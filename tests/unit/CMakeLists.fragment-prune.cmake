# test_prune: compile-time pruning (compiler/passes/prune.c) on hand-made
# weights with hand-derived zero masks, every malformed spec's message, and
# allocation failures.
add_executable(test_prune ${CMAKE_CURRENT_LIST_DIR}/test_prune.c)
target_include_directories(test_prune PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(test_prune PRIVATE moss_compiler)
add_test(NAME test_prune COMMAND test_prune)

# prune_tool: a small driver for the digits check until `moss compile --prune`
# is wired: imports a model, runs the standard passes, prunes, and prints each
# pruned weight's zero mask (tests/e2e/test_prune.py, scripts/measure_prune.py).
add_executable(prune_tool ${CMAKE_CURRENT_LIST_DIR}/../e2e/prune_tool.c)
target_link_libraries(prune_tool PRIVATE moss_compiler)
add_test(NAME e2e_prune
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_prune.py
          --moss $<TARGET_FILE:moss> --prune-tool $<TARGET_FILE:prune_tool>)
set_tests_properties(e2e_prune PROPERTIES
  ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets" TIMEOUT 600)
