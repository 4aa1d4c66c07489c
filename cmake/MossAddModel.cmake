# moss_add_model(): compile an ONNX model with moss as a build step and make
# the result a library to link (README.md "Compile at build time").
#
#   moss_add_model(<lib> MODEL file.onnx TARGET name|file.xml
#                  [EMIT c|obj|bundle] [NAME cname] [QUANTIZE int8 CALIBRATION data]
#                  [PRUNE spec] [INPUT_SHAPE name=dims ...] [CONSTANT name=file ...]
#                  [OPTIONS flag ...] [OUTPUT_DIR dir])
#
# Creates the library target <lib>:
#   EMIT c (the default)  a static library of the generated <cname>.c, built
#                         with the project's C compiler (so cross builds and
#                         firmware work), <cname>.h on its public include path
#   EMIT obj              a static library of the LLVM backend's <cname>.o, the
#                         same header
#   EMIT bundle           an interface library whose users get the definition
#                         MOSS_BUNDLE_<CNAME>="<path of the .moss file>"
# Its properties MOSS_ARTIFACT (the .c, .o or .moss), MOSS_REPORT (the JSON
# report, <cname>.report.json) and MOSS_MANIFEST (c and obj) name the files;
# they lie in OUTPUT_DIR, by default ${CMAKE_CURRENT_BINARY_DIR}/moss/<lib>.
# <cname> (NAME) defaults to <lib>.
#
# The compile runs again when, and only when, what it read changes: the
# model, the target XML and every file it inherits, the calibration data,
# --constant files (all listed by `moss compile --depfile`), the flags (kept
# in <cname>.flags, rewritten only when they change) or the moss executable.
# Relative paths are taken from ${CMAKE_CURRENT_SOURCE_DIR}.
# MOSS_EXECUTABLE must name the moss binary (find_package(Moss) sets it).

function(moss_add_model lib)
  cmake_parse_arguments(M "" "MODEL;TARGET;EMIT;NAME;QUANTIZE;CALIBRATION;PRUNE;OUTPUT_DIR"
                        "INPUT_SHAPE;CONSTANT;OPTIONS" ${ARGN})
  if(M_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "moss_add_model(${lib}): unknown arguments: ${M_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT M_MODEL OR NOT M_TARGET)
    message(FATAL_ERROR "moss_add_model(${lib}): MODEL and TARGET are required")
  endif()
  if(NOT MOSS_EXECUTABLE)
    message(FATAL_ERROR "moss_add_model(${lib}): MOSS_EXECUTABLE is not set (find_package(Moss))")
  endif()
  if(NOT M_EMIT)
    set(M_EMIT c)
  endif()
  if(NOT M_EMIT MATCHES "^(c|obj|bundle)$")
    message(FATAL_ERROR "moss_add_model(${lib}): EMIT ${M_EMIT}: expected c, obj or bundle")
  endif()
  if(NOT M_NAME)
    set(M_NAME ${lib})
  endif()
  if(NOT M_NAME MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
    message(FATAL_ERROR "moss_add_model(${lib}): NAME ${M_NAME} is not a C identifier "
                        "(the generated functions are named after it): give NAME")
  endif()
  if((M_QUANTIZE AND NOT M_CALIBRATION) OR (M_CALIBRATION AND NOT M_QUANTIZE))
    message(FATAL_ERROR "moss_add_model(${lib}): QUANTIZE and CALIBRATION go together")
  endif()
  if(NOT M_OUTPUT_DIR)
    set(M_OUTPUT_DIR ${CMAKE_CURRENT_BINARY_DIR}/moss/${lib})
  endif()
  file(MAKE_DIRECTORY ${M_OUTPUT_DIR})
  set(dir ${M_OUTPUT_DIR})

  get_filename_component(model ${M_MODEL} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  set(deps ${model} ${MOSS_EXECUTABLE})
  # A target is a file when it names one (a path, or NAME.xml); else a
  # name moss looks up among its installed targets.
  set(target ${M_TARGET})
  if(M_TARGET MATCHES "[/\\]|\\.xml$")
    get_filename_component(target ${M_TARGET} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND deps ${target})
  endif()

  set(args compile ${model} --target ${target} --emit ${M_EMIT} --name ${M_NAME} -q)
  if(M_QUANTIZE)
    get_filename_component(calib ${M_CALIBRATION} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND args --quantize ${M_QUANTIZE} --calibration ${calib})
    if(NOT IS_DIRECTORY ${calib})
      list(APPEND deps ${calib})
    endif()
  endif()
  if(M_PRUNE)
    list(APPEND args --prune ${M_PRUNE})
  endif()
  foreach(s ${M_INPUT_SHAPE})
    list(APPEND args --input-shape ${s})
  endforeach()
  foreach(c ${M_CONSTANT})
    if(NOT c MATCHES "^([^=]+)=(.+)$")
      message(FATAL_ERROR "moss_add_model(${lib}): CONSTANT ${c}: expected NAME=FILE")
    endif()
    get_filename_component(f ${CMAKE_MATCH_2} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND args --constant ${CMAKE_MATCH_1}=${f})
    list(APPEND deps ${f})
  endforeach()
  list(APPEND args ${M_OPTIONS})

  if(M_EMIT STREQUAL "bundle")
    set(artifact ${dir}/${M_NAME}.moss)
    set(outputs ${artifact})
    set(out ${artifact})
  else()
    if(M_EMIT STREQUAL "c")
      set(artifact ${dir}/${M_NAME}.c)
    else()
      set(artifact ${dir}/${M_NAME}.o)
    endif()
    set(outputs ${artifact} ${dir}/${M_NAME}.h ${dir}/${M_NAME}.manifest)
    set(out ${dir})
  endif()
  set(report ${dir}/${M_NAME}.report.json)
  list(APPEND outputs ${report})

  # The flags as a file whose time changes only with them: a Makefile
  # generator does not rerun a command whose line changed, a file dependency
  # it does see.
  string(REPLACE ";" "\n" flags "${args}")
  file(CONFIGURE OUTPUT ${dir}/${M_NAME}.flags CONTENT "${flags}\n" @ONLY)
  list(APPEND deps ${dir}/${M_NAME}.flags)

  add_custom_command(
    OUTPUT ${outputs}
    COMMAND ${MOSS_EXECUTABLE} ${args} -o ${out} --report ${report}
            --depfile ${dir}/${M_NAME}.d
    DEPENDS ${deps}
    DEPFILE ${dir}/${M_NAME}.d
    COMMENT "moss: compiling ${M_MODEL} for ${M_TARGET} (${lib})"
    VERBATIM)

  if(M_EMIT STREQUAL "bundle")
    add_custom_target(${lib}_moss ALL DEPENDS ${outputs})
    add_library(${lib} INTERFACE)
    add_dependencies(${lib} ${lib}_moss)
    string(TOUPPER ${M_NAME} upper)
    target_compile_definitions(${lib} INTERFACE MOSS_BUNDLE_${upper}="${artifact}")
  else()
    add_library(${lib} STATIC ${artifact} ${dir}/${M_NAME}.h)
    if(M_EMIT STREQUAL "obj")
      set_source_files_properties(${artifact} PROPERTIES EXTERNAL_OBJECT TRUE GENERATED TRUE)
      set_target_properties(${lib} PROPERTIES LINKER_LANGUAGE C)
    endif()
    target_include_directories(${lib} PUBLIC ${dir})
    # The generated C calls the C library's math functions (expf, ...).
    target_link_libraries(${lib} PUBLIC m)
    set_target_properties(${lib} PROPERTIES MOSS_MANIFEST ${dir}/${M_NAME}.manifest)
  endif()
  set_target_properties(${lib} PROPERTIES MOSS_ARTIFACT ${artifact} MOSS_REPORT ${report})
endfunction()
