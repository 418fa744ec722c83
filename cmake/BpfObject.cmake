# netprof_bpf_object(<name> SOURCE <file.bpf.c> [DEPENDS <headers...>])
#
# clang -target bpf -> bpftool gen object -> bpftool gen skeleton, the libbpf-bootstrap chain.
# Gives an INTERFACE target <name>_skel whose include directory holds <name>.skel.h; the
# skeleton embeds the BPF ELF, so the netprof binary needs no .o file at run time.
#
# BPF sources include the uapi headers (<linux/bpf.h>), not a vmlinux.h: the programs only
# touch the stable context structs (bpf_sk_lookup, bpf_sock_ops, bpf_sock_addr, sk_msg_md),
# so the build does not depend on the build host's running kernel or its BTF.

find_program(NETPROF_CLANG NAMES clang clang-16 clang-15 clang-14 REQUIRED)
find_program(NETPROF_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

# asm/types.h lives in the multiarch include directory on Debian.
if(CMAKE_LIBRARY_ARCHITECTURE)
  set(NETPROF_BPF_SYSTEM_INCLUDES -idirafter /usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
endif()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(NETPROF_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(NETPROF_BPF_ARCH arm64)
else()
  set(NETPROF_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

function(netprof_bpf_object name)
  cmake_parse_arguments(ARG "" "SOURCE" "DEPENDS" ${ARGN})
  get_filename_component(source ${ARG_SOURCE} ABSOLUTE)
  get_filename_component(source_dir ${source} DIRECTORY)
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/${name}_skel)
  set(raw_object ${out_dir}/${name}.raw.bpf.o)
  set(object ${out_dir}/${name}.bpf.o)
  set(skeleton ${out_dir}/${name}.skel.h)
  set(werror)
  if(NETPROF_WERROR)
    set(werror -Werror)
  endif()

  add_custom_command(
    OUTPUT ${skeleton} ${object}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${NETPROF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${NETPROF_BPF_ARCH}
            -Wall -Wextra -Wno-unused-parameter ${werror}
            -I${source_dir} ${NETPROF_BPF_SYSTEM_INCLUDES}
            -c ${source} -o ${raw_object}
    # gen object links/normalises the ELF (strips DWARF, keeps BTF), as libbpf-bootstrap does.
    COMMAND ${NETPROF_BPFTOOL} gen object ${object} ${raw_object}
    COMMAND ${NETPROF_BPFTOOL} gen skeleton ${object} name ${name}_bpf > ${skeleton}
    DEPENDS ${source} ${ARG_DEPENDS}
    COMMENT "BPF ${name}: clang -target bpf, bpftool gen skeleton"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skeleton})

  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  # SYSTEM: the generated skeleton is not held to our C++ warning flags.
  target_include_directories(${name}_skel SYSTEM INTERFACE ${out_dir} ${source_dir})
  set_property(TARGET ${name}_skel PROPERTY NETPROF_BPF_OBJECT ${object})
endfunction()
