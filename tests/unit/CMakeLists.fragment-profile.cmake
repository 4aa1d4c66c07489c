# Measured beside estimated (issue 12, part 2; compiler/driver/profile.c,
# runtime/src/profile/profile.c):
#   e2e_profile  moss bench/run --profile tables (one step per CPU layer, a
#                plugin blob's layers under its step), compile --profile
#                reports (measured:clock per layer, platform energy from
#                measured time against host.xml's power figures), errors,
#                forged reports (tests/e2e/test_profile.py).
# The runtime's profiling API (mossrt_step_count, mossrt_step_info,
# mossrt_run_profile) is also covered by test_bundle.
add_test(NAME e2e_profile
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_profile.py
          --moss $<TARGET_FILE:moss>
          --plugin-target $<TARGET_FILE_DIR:moss_elementwise>/elementwise.xml)
set_tests_properties(e2e_profile PROPERTIES TIMEOUT 600
  ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")
