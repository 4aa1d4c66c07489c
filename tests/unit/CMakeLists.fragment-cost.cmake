# test_cost: the cost and energy model, its reports and `moss compare`
# (compiler/cost/, compiler/driver/compare.c), on the fixtures under
# tests/unit/data/cost/. test_cost writes the reports; test_cost_reports then
# parses them with python (JSON, CSV header, well-formed HTML and SVG).
add_executable(test_cost ${CMAKE_CURRENT_LIST_DIR}/test_cost.c)
target_include_directories(test_cost PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_compile_definitions(test_cost PRIVATE
  MOSS_TEST_DATA_DIR="${CMAKE_CURRENT_LIST_DIR}/data"
  MOSS_TEST_OUT_DIR="${CMAKE_CURRENT_BINARY_DIR}/test_cost.out")
target_link_libraries(test_cost PRIVATE moss_compiler)
file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/test_cost.out)
add_test(NAME test_cost COMMAND test_cost)
set_tests_properties(test_cost PROPERTIES
  ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets"
  FIXTURES_SETUP cost_reports)
add_test(NAME test_cost_reports
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/data/cost/check_reports.py
          ${CMAKE_CURRENT_BINARY_DIR}/test_cost.out)
set_tests_properties(test_cost_reports PROPERTIES FIXTURES_REQUIRED cost_reports)

# e2e_cost_digits: the cost model on the digits models (issue 12): the fp32
# baseline of each QDQ model equals its float model's cost, and the pruned MLP
# is costed in its CSR format (bytes and MACs counted with numpy).
add_test(NAME e2e_cost_digits
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_cost_digits.py
          --moss $<TARGET_FILE:moss>)
set_tests_properties(e2e_cost_digits PROPERTIES
  ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")
