# test_partition: node placement on the fixture targets in data/partition/.
add_executable(test_partition ${CMAKE_CURRENT_LIST_DIR}/test_partition.c)
target_include_directories(test_partition PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_compile_definitions(test_partition PRIVATE MOSS_TEST_DATA_DIR="${CMAKE_CURRENT_LIST_DIR}/data")
target_link_libraries(test_partition PRIVATE moss_compiler)
add_test(NAME test_partition COMMAND test_partition)
set_tests_properties(test_partition PROPERTIES ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")
