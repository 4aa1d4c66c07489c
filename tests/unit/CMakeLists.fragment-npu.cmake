# e2e_npu_systolic: int8 models (the digits models, the per-operator QDQ
# models, MobileNetV2 quantized by moss's PTQ) compiled for each of the
# npu-systolic plugin's target files (plugins/npu-systolic, configured next
# to its library) and run on its cycle-level simulator, bit for bit against
# the same models on the c99 target; its counters, its refusals of corrupt
# blobs (tests/e2e/test_npu_systolic.py). The fuzzer of its blob loader is
# fuzz_npu_blob (CMakeLists.fragment-fuzz.cmake).
if(TARGET moss_npu_systolic)
  add_test(NAME e2e_npu_systolic
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_npu_systolic.py
            --moss $<TARGET_FILE:moss>
            --plugin-dir $<TARGET_FILE_DIR:moss_npu_systolic>
            --work ${CMAKE_CURRENT_BINARY_DIR}/e2e_npu_systolic.out)
  set_tests_properties(e2e_npu_systolic PROPERTIES TIMEOUT 900
    ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")
endif()

# e2e_plugin_search: a bundle names its plugin library by file name only,
# and libmossrt finds it: beside the bundle, in moss's build and install
# layouts, through MOSS_PLUGIN_PATH, or says where it looked
# (tests/e2e/test_plugin_search.py; runtime/README.md "Plugin libraries").
if(TARGET moss_npu_systolic)
  add_test(NAME e2e_plugin_search
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_plugin_search.py
            --moss $<TARGET_FILE:moss>
            --plugin-dir $<TARGET_FILE_DIR:moss_npu_systolic>
            --runtime $<TARGET_FILE:mossrt_shared>
            --work ${CMAKE_CURRENT_BINARY_DIR}/e2e_plugin_search.out)
  set_tests_properties(e2e_plugin_search PROPERTIES TIMEOUT 300
    ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")
endif()
