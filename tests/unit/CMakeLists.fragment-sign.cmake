# Trusting bundles (issue 11, part 3). test_bundle (CMakeLists.fragment-bundle.cmake)
# covers the library: the figures the CPU code states against every forged
# word of META, DEVICES and PLAN, and signatures (every byte flipped, the
# wrong key, no signature, the goldens). These two go through the moss
# command line:
# e2e_forged_bundle: each field of a bundle compiled for the host (LLVM
#   object) and for c99 (C shared object) forged with the checksums
#   repaired; `moss run` must refuse each cleanly (the issue: arena_bytes =
#   64 crashed it).
# e2e_signed_bundle: moss keygen, compile --sign, run --public-key; the
#   signature checked with python3-cryptography as well.
add_test(NAME e2e_forged_bundle
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_forged_bundle.py --moss $<TARGET_FILE:moss>)
add_test(NAME e2e_signed_bundle
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/../e2e/test_signed_bundle.py --moss $<TARGET_FILE:moss>)
set_tests_properties(e2e_forged_bundle e2e_signed_bundle PROPERTIES TIMEOUT 900
  ENVIRONMENT "MOSS_TARGETS_DIR=${CMAKE_SOURCE_DIR}/targets")
