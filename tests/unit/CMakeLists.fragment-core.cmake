# Unit tests of the compiler core: base, importer error paths, planner.
foreach(t test_base test_import test_plan test_robust)
  add_executable(${t} ${CMAKE_CURRENT_LIST_DIR}/${t}.c)
  target_include_directories(${t} PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_compile_definitions(${t} PRIVATE
    MOSS_TEST_DATA_DIR="${CMAKE_CURRENT_LIST_DIR}/data"
    MOSS_E2E_DIR="${CMAKE_CURRENT_LIST_DIR}/../e2e/digits"
    MOSS_TEST_OUT_DIR="${CMAKE_CURRENT_BINARY_DIR}/${t}.out")
  target_link_libraries(${t} PRIVATE moss_compiler)
  file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/${t}.out)
  add_test(NAME ${t} COMMAND ${t})
  set_tests_properties(${t} PROPERTIES ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")
endforeach()
