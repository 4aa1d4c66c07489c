# layers_includes, layers_probe: the compiler's libraries against the layers
# of tests/layers/layers.txt (tests/layers/check_layers.py): every #include
# of every file lands in a layer its own may use (or on a line of
# tests/layers/exceptions.txt), and each library's compile command refuses
# the headers of the layers it may not use.
add_test(NAME layers_includes
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/layers/check_layers.py includes
          ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR})
add_test(NAME layers_probe
  COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/layers/check_layers.py probe
          ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR})
