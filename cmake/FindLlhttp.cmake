# Finds the llhttp C sources that Debian's node-llhttp package installs and builds them
# as a static library target `llhttp::llhttp`. The sources are never copied into the repo.
find_path(LLHTTP_INCLUDE_DIR llhttp.h
  PATHS /usr/share/include/llhttp /usr/include/llhttp /usr/include
  DOC "Directory holding llhttp.h (Debian: node-llhttp)")
find_path(LLHTTP_SOURCE_DIR llhttp.c
  PATHS /usr/share/llhttp
  DOC "Directory holding llhttp's api.c, http.c, llhttp.c (Debian: node-llhttp)")

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Llhttp
  REQUIRED_VARS LLHTTP_SOURCE_DIR LLHTTP_INCLUDE_DIR
  FAIL_MESSAGE "llhttp C sources not found: install Debian's node-llhttp package (apt-get install node-llhttp) or set LLHTTP_SOURCE_DIR and LLHTTP_INCLUDE_DIR")

if(Llhttp_FOUND AND NOT TARGET llhttp::llhttp)
  add_library(llhttp_c STATIC
    ${LLHTTP_SOURCE_DIR}/api.c ${LLHTTP_SOURCE_DIR}/http.c ${LLHTTP_SOURCE_DIR}/llhttp.c)
  target_include_directories(llhttp_c SYSTEM PUBLIC ${LLHTTP_INCLUDE_DIR})
  set_target_properties(llhttp_c PROPERTIES C_STANDARD 99 POSITION_INDEPENDENT_CODE ON)
  target_compile_options(llhttp_c PRIVATE -O3 -w)
  add_library(llhttp::llhttp ALIAS llhttp_c)
endif()
