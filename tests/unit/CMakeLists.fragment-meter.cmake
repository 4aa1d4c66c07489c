# The energy counters of `moss bench --profile` (compiler/driver/meter.c):
#   test_meter           RAPL on fake powercap trees (MOSS_POWERCAP_DIR): the
#                        domains counted, the joules between reads, the wrap at
#                        max_energy_range_uj, unreadable trees; MOSS_METER; and
#                        no crash on the real machine (tests/unit/test_meter.c).
add_executable(test_meter ${CMAKE_CURRENT_LIST_DIR}/test_meter.c)
target_include_directories(test_meter PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(test_meter PRIVATE moss_compiler)
add_test(NAME test_meter COMMAND test_meter)
