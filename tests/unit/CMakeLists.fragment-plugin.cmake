# test_plugin: the compile-side plugin loader (compiler/plugin/plugin.c) with
# the elementwise example plugin (plugins/elementwise) and the deliberately
# broken plugins built here from data/plugins/*.c; and e2e_plugin, a model
# compiled for and run on the example plugin's target.
set(MOSS_BROKEN_PLUGINS bad_abi no_abi no_compiler null_lower bad_table wrong_name failing_lower
    probe)
set(MOSS_BROKEN_PLUGIN_DIR ${CMAKE_CURRENT_BINARY_DIR}/test_plugin.d)
add_executable(test_plugin ${CMAKE_CURRENT_LIST_DIR}/test_plugin.c)
foreach(p ${MOSS_BROKEN_PLUGINS})
  add_library(moss_test_plugin_${p} MODULE ${CMAKE_CURRENT_LIST_DIR}/data/plugins/${p}.c)
  target_include_directories(moss_test_plugin_${p} PRIVATE ${CMAKE_SOURCE_DIR}/plugins/include)
  set_target_properties(moss_test_plugin_${p} PROPERTIES
    PREFIX "" OUTPUT_NAME ${p} SUFFIX ".so"
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${MOSS_BROKEN_PLUGIN_DIR})
  add_dependencies(test_plugin moss_test_plugin_${p})
endforeach()
add_dependencies(test_plugin moss_elementwise)
target_include_directories(test_plugin PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_compile_definitions(test_plugin PRIVATE
  MOSS_PLUGIN_GOOD="$<TARGET_FILE:moss_elementwise>"
  MOSS_PLUGIN_BROKEN_DIR="${MOSS_BROKEN_PLUGIN_DIR}"
  MOSS_PROBE_XML="${CMAKE_CURRENT_LIST_DIR}/data/plugins/probe.xml")
target_link_libraries(test_plugin PRIVATE moss_compiler ${CMAKE_DL_LIBS})
add_test(NAME test_plugin COMMAND test_plugin)

add_test(NAME e2e_plugin
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_plugin.py
          --moss $<TARGET_FILE:moss>
          --target $<TARGET_FILE_DIR:moss_elementwise>/elementwise.xml
          --work ${CMAKE_CURRENT_BINARY_DIR}/e2e_plugin.out)
set_tests_properties(e2e_plugin PROPERTIES
  ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")
