# tessera_add_module(<name> SOURCES <module.cc> [LIBRARIES <libs...>] [OUTPUT_DIRECTORY <dir>])
#
# Builds lib<name>.so: a module library exporting one descriptor, linked against
# Tessera::api only (plus the logic library you name), with hidden visibility and no undefined
# symbols. In modules.json the library is then {"name": "<name>"}. The same helper is installed
# with the SDK, so vendor modules have the same shape as ours.
function(tessera_add_module name)
  cmake_parse_arguments(ARG "" "OUTPUT_DIRECTORY" "SOURCES;LIBRARIES" ${ARGN})
  add_library(${name} MODULE ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES
    PREFIX "lib"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY})
  elseif(DEFINED TESSERA_MODULE_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${TESSERA_MODULE_OUTPUT_DIR})
  endif()
  target_link_libraries(${name} PRIVATE Tessera::api ${ARG_LIBRARIES})
  tessera_no_undefined(${name})
endfunction()

# tessera_no_undefined(<target>): link the shared library <target> with --no-undefined, except
# when clang's sanitizers are on: clang leaves the sanitizer runtime's symbols to the executable
# that loads the library (gcc links the runtime into the library itself).
function(tessera_no_undefined target)
  string(TOUPPER "${CMAKE_BUILD_TYPE}" type)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND
     "${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${type}}" MATCHES "-fsanitize=")
    return()
  endif()
  target_link_options(${target} PRIVATE -Wl,--no-undefined)
endfunction()
