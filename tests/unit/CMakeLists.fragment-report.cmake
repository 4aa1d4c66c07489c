# What the cost reports show and how `moss compare` ranks
# (compiler/cost/report.c, compiler/driver/compare.c; docs/report.md):
#   test_report          the CSV's partial and not-modeled cells, the HTML's
#                        marks, ratio and chart labels, the compare order and
#                        page (tests/unit/test_report.c);
#   e2e_compare_rank     compare on the digits CNN over five targets against
#                        each target's own JSON report, its HTML page and
#                        its JSON rows (--report FILE.json);
#   e2e_report_browser   the HTML reports and the compare page laid out by
#                        headless Chromium at 1200 pixels: nothing overflows,
#                        nothing is clipped; screenshots kept in
#                        report_browser.out/ (skipped, 77, without Chromium
#                        outside CI).
add_executable(test_report ${CMAKE_CURRENT_LIST_DIR}/test_report.c)
target_include_directories(test_report PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_compile_definitions(test_report PRIVATE
  MOSS_TEST_DATA_DIR="${CMAKE_CURRENT_LIST_DIR}/data"
  MOSS_TEST_OUT_DIR="${CMAKE_CURRENT_BINARY_DIR}/test_report.out")
target_link_libraries(test_report PRIVATE moss_compiler)
file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/test_report.out)
add_test(NAME test_report COMMAND test_report)
add_test(NAME e2e_compare_rank
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_compare_rank.py
          --moss $<TARGET_FILE:moss>)
add_test(NAME e2e_report_browser
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_report_browser.py
          --moss $<TARGET_FILE:moss> --out ${CMAKE_CURRENT_BINARY_DIR}/report_browser.out)
set_tests_properties(test_report e2e_compare_rank e2e_report_browser PROPERTIES
  ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")
set_tests_properties(e2e_report_browser PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
