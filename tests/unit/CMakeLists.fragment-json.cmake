# The strict JSON reader (compiler/base/json.c) that `moss bench --profile`
# uses on the cost report a bundle carries:
#   test_json   every kind of value, escapes, numbers, a report-shaped
#               document; malformed, truncated and mutated inputs refused
#               with the byte offset; the nesting limit; 100,000-element
#               containers; each allocation failing in turn
#               (tests/unit/test_json.c).
add_executable(test_json ${CMAKE_CURRENT_LIST_DIR}/test_json.c)
target_include_directories(test_json PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(test_json PRIVATE moss_compiler)
add_test(NAME test_json COMMAND test_json)
