# The layering test of one library (cmake -P), run by ctest as Layering.<folder>:
#
#   cmake -DMODULE=<folder> -DREACHED=<folders it may include> -DSOURCE_DIR=<repo>
#         -DCOMPILE_COMMANDS=<build>/compile_commands.json -DWORK_DIR=<scratch dir>
#         -P check_layering.cmake
#
# Takes the compile command the build uses for one source of src/<MODULE>, and with it
#   - compiles a probe that includes core/types.hpp and checks with __has_include that a
#     header of every folder in REACHED is found: must succeed (the positive control: the
#     command line compiles, and sees every permitted folder);
#   - compiles, for every other folder of src/, a probe that includes one of its headers:
#     each must fail, and fail because the header is not found.
# Every probe stops at the include search, so the test takes well under a second.
# Also fails on an `#include "../` in src/<MODULE>, which would step around the include root.
cmake_minimum_required(VERSION 3.25)
foreach(var MODULE REACHED SOURCE_DIR COMPILE_COMMANDS WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_layering: -D${var}=... is required")
  endif()
endforeach()
string(REPLACE "," ";" REACHED "${REACHED}")
set(src ${SOURCE_DIR}/src)

# One compile command of the module, from the build's own compilation database.
file(READ ${COMPILE_COMMANDS} db)
string(JSON entries LENGTH "${db}")
math(EXPR last "${entries} - 1")
set(command "")
foreach(i RANGE ${last})
  string(JSON file GET "${db}" ${i} file)
  if(file MATCHES "^${src}/${MODULE}/[^ ]*\\.cpp$")
    string(JSON command GET "${db}" ${i} command)
    string(JSON directory GET "${db}" ${i} directory)
    break()
  endif()
endforeach()
if(command STREQUAL "")
  message(FATAL_ERROR "no compile command for a source of src/${MODULE} in ${COMPILE_COMMANDS}")
endif()
# `... -o OBJECT -c SOURCE` becomes `... -fsyntax-only -c PROBE`.
set(tail_regex " -o [^ ]+ -c [^ ]+$")
if(NOT command MATCHES "${tail_regex}")
  message(FATAL_ERROR "unexpected compile command (no '-o OBJ -c SRC' at its end): ${command}")
endif()

# The first header (by name) of a folder of src/, as "folder/file.hpp".
function(first_header folder out)
  file(GLOB headers RELATIVE ${src} ${src}/${folder}/*.hpp)
  list(SORT headers)
  list(LENGTH headers n)
  if(n EQUAL 0)
    message(FATAL_ERROR "src/${folder} has no header to probe with")
  endif()
  list(GET headers 0 first)
  set(${out} ${first} PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
function(compile_probe name text rc_out err_out)
  set(probe ${WORK_DIR}/${name}.cpp)
  file(WRITE ${probe} "${text}")
  string(REGEX REPLACE "${tail_regex}" " -fsyntax-only -c ${probe}" probe_command "${command}")
  execute_process(COMMAND sh -c "${probe_command}" WORKING_DIRECTORY ${directory}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(${rc_out} ${rc} PARENT_SCOPE)
  set(${err_out} "${out}${err}" PARENT_SCOPE)
endfunction()

# Positive control.
set(text "")
foreach(folder IN LISTS REACHED)
  first_header(${folder} header)
  string(APPEND text "#if !__has_include(\"${header}\")\n#error \"${header} is not found\"\n#endif\n")
endforeach()
string(APPEND text "#include \"core/types.hpp\"\n"
                   "static_assert(memvirt::Duration::millis(1).ns() == 1'000'000);\n")
compile_probe(permitted "${text}" rc err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${MODULE}: a probe of the permitted folders (${REACHED}) does not "
                      "compile with the library's command; the test proves nothing:\n${text}\n${err}")
endif()
message(STATUS "${MODULE}: compiles includes of ${REACHED}")

# Every other folder must be out of reach.
file(GLOB folders LIST_DIRECTORIES true RELATIVE ${src} ${src}/*)
set(failures "")
set(refused "")
foreach(folder IN LISTS folders)
  if(NOT IS_DIRECTORY ${src}/${folder} OR folder IN_LIST REACHED)
    continue()
  endif()
  first_header(${folder} header)
  compile_probe(forbidden_${folder} "#include \"${header}\"\n" rc err)
  string(REGEX REPLACE "([.+])" "\\\\\\1" header_regex "${header}")
  if(rc EQUAL 0)
    string(APPEND failures "  ${header} compiles\n")
  elseif(NOT err MATCHES "${header_regex}: No such file or directory|'${header_regex}' file not found")
    string(APPEND failures "  ${header} fails, but not as a missing file:\n${err}\n")
  else()
    list(APPEND refused ${folder})
  endif()
endforeach()
if(failures)
  message(FATAL_ERROR "${MODULE} reaches folders it does not depend on:\n${failures}")
endif()
message(STATUS "${MODULE}: does not find ${refused}")

# No way around the include root.
file(GLOB_RECURSE files ${src}/${MODULE}/*.hpp ${src}/${MODULE}/*.cpp)
foreach(f IN LISTS files)
  file(STRINGS ${f} lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"\\.\\./")
  if(lines)
    message(FATAL_ERROR "${f}: includes by a relative path: ${lines}")
  endif()
endforeach()
