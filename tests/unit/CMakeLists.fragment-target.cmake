# test_target: the target model (compiler/target/target.c), the shipped
# targets/*.xml and the broken fixtures under tests/unit/data/targets/.
# Paths use CMAKE_CURRENT_LIST_DIR so the fragment works wherever it is included.
add_executable(test_target ${CMAKE_CURRENT_LIST_DIR}/test_target.c)
target_include_directories(test_target PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_compile_definitions(test_target PRIVATE
  MOSS_TEST_DATA_DIR="${CMAKE_CURRENT_LIST_DIR}/data"
  MOSS_TARGETS_DIR_FOR_TEST="${CMAKE_CURRENT_LIST_DIR}/../../targets")
# libxml2 too: one test makes libxml2's own allocator fail (xmlMemSetup).
target_link_libraries(test_target PRIVATE moss_compiler LibXml2::LibXml2)
add_test(NAME test_target COMMAND test_target)
set_tests_properties(test_target PROPERTIES
  ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")
