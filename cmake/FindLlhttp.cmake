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

# llhttp 8.1.0 (Debian 12) rejects a chunk extension after one with a value, `5;a=b;c=d`
# ("Invalid character in chunk size"), which RFC 9112 7.1.1 allows: after `;a=b` and the next
# `;` its state machine goes to "after the chunk size" instead of "chunk extensions" (fixed in
# later llhttp). The generated source gets that one transition corrected in the build tree; a
# source without the faulty transition (another llhttp) is used as it is.
# tests/unit/http (ChunkExtensions*) checks the behaviour either way.
set(_llhttp_c ${LLHTTP_SOURCE_DIR}/llhttp.c)
if(Llhttp_FOUND)
  file(READ ${LLHTTP_SOURCE_DIR}/llhttp.c _llhttp_source)
  set(_llhttp_faulty "n_invoke_llhttp__on_chunk_extension_value_complete_2: {
      switch (llhttp__on_chunk_extension_value_complete(state, p, endp)) {
        case 0:
          goto s_n_llhttp__internal__n_chunk_size_otherwise;")
  string(FIND "${_llhttp_source}" "${_llhttp_faulty}" _llhttp_at)
  if(NOT _llhttp_at EQUAL -1)
    string(REPLACE "${_llhttp_faulty}" "n_invoke_llhttp__on_chunk_extension_value_complete_2: {
      switch (llhttp__on_chunk_extension_value_complete(state, p, endp)) {
        case 0:
          goto s_n_llhttp__internal__n_chunk_extensions;" _llhttp_source "${_llhttp_source}")
    set(_llhttp_c ${CMAKE_BINARY_DIR}/llhttp/llhttp.c)
    file(WRITE ${CMAKE_BINARY_DIR}/llhttp/llhttp.c.new "${_llhttp_source}")
    configure_file(${CMAKE_BINARY_DIR}/llhttp/llhttp.c.new ${_llhttp_c} COPYONLY)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${LLHTTP_SOURCE_DIR}/llhttp.c)
  endif()
endif()

if(Llhttp_FOUND AND NOT TARGET llhttp::llhttp)
  add_library(llhttp_c STATIC
    ${LLHTTP_SOURCE_DIR}/api.c ${LLHTTP_SOURCE_DIR}/http.c ${_llhttp_c})
  target_include_directories(llhttp_c SYSTEM PUBLIC ${LLHTTP_INCLUDE_DIR})
  set_target_properties(llhttp_c PROPERTIES C_STANDARD 99 POSITION_INDEPENDENT_CODE ON)
  target_compile_options(llhttp_c PRIVATE -O3 -w)
  add_library(llhttp::llhttp ALIAS llhttp_c)
endif()
