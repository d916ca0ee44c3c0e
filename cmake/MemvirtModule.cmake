# memvirt_module(NAME <folder> [DEPS <folder>...] [PUBLIC_LIBS <target>...]
#                [PRIVATE_LIBS <target>...])
#
# Builds the static library memvirt_<folder> from src/<folder>/**/*.cpp. Its include root,
# build/<preset>/include/<folder>/, holds symbolic links to src/<folder> and to the folders of
# its dependencies and of theirs, and nothing else, so that `#include "x/y.hpp"` of a folder
# the library does not depend on fails to compile (file not found). The dependencies are
# linked PUBLIC: whoever uses the library sees the headers its headers include. DEPS must
# name libraries declared before this one, so the graph has no cycle.
#
# Third-party libraries: PUBLIC_LIBS for those a header of the folder includes, PRIVATE_LIBS
# for those only its sources include.
#
# Sets the global properties MEMVIRT_MODULES (every folder declared, in order) and
# MEMVIRT_CLOSURE_<folder> (the folder and everything it reaches), which the layering tests
# (tests/layering/) read.
function(memvirt_module)
  cmake_parse_arguments(PARSE_ARGV 0 M "" "NAME" "DEPS;PUBLIC_LIBS;PRIVATE_LIBS")
  if(NOT M_NAME OR M_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "memvirt_module: NAME <folder> [DEPS ...] [PUBLIC_LIBS ...] "
                        "[PRIVATE_LIBS ...], got: ${ARGV}")
  endif()
  set(name ${M_NAME})
  set(folder ${PROJECT_SOURCE_DIR}/src/${name})
  if(NOT IS_DIRECTORY ${folder})
    message(FATAL_ERROR "memvirt_module(${name}): no folder src/${name}")
  endif()

  set(closure ${name})
  set(dep_targets)
  foreach(dep IN LISTS M_DEPS)
    get_property(declared GLOBAL PROPERTY MEMVIRT_CLOSURE_${dep} SET)
    if(NOT declared)
      message(FATAL_ERROR "memvirt_module(${name}): dependency '${dep}' must be declared first")
    endif()
    get_property(dep_closure GLOBAL PROPERTY MEMVIRT_CLOSURE_${dep})
    list(APPEND closure ${dep_closure})
    list(APPEND dep_targets memvirt_${dep})
  endforeach()
  list(REMOVE_DUPLICATES closure)
  set_property(GLOBAL PROPERTY MEMVIRT_CLOSURE_${name} ${closure})
  set_property(GLOBAL APPEND PROPERTY MEMVIRT_MODULES ${name})

  # The include root, rebuilt on every configure so that a dependency taken out of DEPS
  # leaves no link behind. file(REMOVE) removes a link, never what it points to.
  set(root ${PROJECT_BINARY_DIR}/include/${name})
  file(MAKE_DIRECTORY ${root})
  file(GLOB old_links LIST_DIRECTORIES true ${root}/*)
  foreach(link IN LISTS old_links)
    file(REMOVE ${link})
  endforeach()
  foreach(reached IN LISTS closure)
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${reached} ${root}/${reached} SYMBOLIC)
  endforeach()

  file(GLOB_RECURSE sources CONFIGURE_DEPENDS ${folder}/*.cpp)
  add_library(memvirt_${name} STATIC ${sources})
  target_include_directories(memvirt_${name} PUBLIC ${root})
  target_link_libraries(memvirt_${name} PUBLIC ${dep_targets} ${M_PUBLIC_LIBS}
                        PRIVATE ${M_PRIVATE_LIBS})
endfunction()

# Fails the configure when a folder of src/ is not declared with memvirt_module(), so that
# no folder's sources are left out of the build.
function(memvirt_check_modules_cover_src)
  get_property(modules GLOBAL PROPERTY MEMVIRT_MODULES)
  file(GLOB entries LIST_DIRECTORIES true RELATIVE ${PROJECT_SOURCE_DIR}/src
       ${PROJECT_SOURCE_DIR}/src/*)
  foreach(entry IN LISTS entries)
    if(IS_DIRECTORY ${PROJECT_SOURCE_DIR}/src/${entry} AND NOT entry IN_LIST modules)
      message(FATAL_ERROR "src/${entry} has no memvirt_module() in CMakeLists.txt")
    elseif(NOT IS_DIRECTORY ${PROJECT_SOURCE_DIR}/src/${entry})
      message(FATAL_ERROR "src/${entry}: sources belong in a folder of src/")
    endif()
  endforeach()
endfunction()
