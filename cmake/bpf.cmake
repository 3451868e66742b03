# bpf_object(NAME name)
# Compiles bpf/<name>.bpf.c with `clang -target bpf -O2 -g` (CO-RE) against a vmlinux.h that
# bpftool dumps from the build machine's kernel BTF, then makes a libbpf skeleton header
# <name>.skel.h (skeleton name podwarp_<name>_bpf) that embeds the object in the binary.
# Defines the INTERFACE target podwarp_bpf_<name>: link it to get the skeleton's include dir,
# bpf/ (for the kernel<->user ABI headers in bpf/lib/) and libbpf. Calling it twice is harmless.
#
# PODWARP_VMLINUX_BTF (cache) names the BTF file to dump; default /sys/kernel/btf/vmlinux.

find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBBPF REQUIRED IMPORTED_TARGET libbpf)
find_program(PODWARP_BPF_CLANG NAMES clang clang-16 clang-15 clang-14)
find_program(PODWARP_BPFTOOL bpftool PATHS /usr/sbin /sbin /usr/local/sbin)
set(PODWARP_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH
    "Kernel BTF that bpf/*.bpf.c are compiled against (vmlinux.h is dumped from it)")

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(PODWARP_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(PODWARP_BPF_ARCH arm64)
else()
  set(PODWARP_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

function(bpf_object)
  cmake_parse_arguments(B "" "NAME" "" ${ARGN})
  if(NOT B_NAME)
    message(FATAL_ERROR "bpf_object: NAME is required")
  endif()
  set(target podwarp_bpf_${B_NAME})
  if(TARGET ${target})
    return()
  endif()
  if(NOT PODWARP_BPF_CLANG)
    message(FATAL_ERROR "bpf_object(${B_NAME}): clang not found (scripts/deps.sh installs it)")
  endif()
  if(NOT PODWARP_BPFTOOL)
    message(FATAL_ERROR "bpf_object(${B_NAME}): bpftool not found (scripts/deps.sh installs it)")
  endif()
  if(NOT EXISTS ${PODWARP_VMLINUX_BTF})
    message(FATAL_ERROR
      "bpf_object(${B_NAME}): no kernel BTF at ${PODWARP_VMLINUX_BTF}. The BPF programs are "
      "compiled against vmlinux.h dumped from it: build on a kernel with CONFIG_DEBUG_INFO_BTF=y, "
      "or point -DPODWARP_VMLINUX_BTF=<file> at a BTF file of a kernel that has it.")
  endif()

  set(src ${PROJECT_SOURCE_DIR}/bpf/${B_NAME}.bpf.c)
  if(NOT EXISTS ${src})
    message(FATAL_ERROR "bpf_object(${B_NAME}): ${src} does not exist")
  endif()
  set(out ${CMAKE_BINARY_DIR}/bpf)
  set(vmlinux_h ${out}/vmlinux.h)
  set(obj ${out}/${B_NAME}.bpf.o)
  set(skel ${out}/skel/${B_NAME}.skel.h)

  # vmlinux.h: one per build dir, shared by every bpf_object().
  if(NOT TARGET podwarp_bpf_vmlinux_h)
    add_custom_command(OUTPUT ${vmlinux_h}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
      COMMAND ${PODWARP_BPFTOOL} btf dump file ${PODWARP_VMLINUX_BTF} format c > ${vmlinux_h}.tmp
      COMMAND ${CMAKE_COMMAND} -E rename ${vmlinux_h}.tmp ${vmlinux_h}
      COMMENT "BPF vmlinux.h from ${PODWARP_VMLINUX_BTF}"
      VERBATIM)
    add_custom_target(podwarp_bpf_vmlinux_h DEPENDS ${vmlinux_h})
  endif()

  file(GLOB lib_headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/bpf/lib/*.h)
  add_custom_command(OUTPUT ${obj}
    COMMAND ${PODWARP_BPF_CLANG} -target bpf -O2 -g -Wall -Werror
            -D__TARGET_ARCH_${PODWARP_BPF_ARCH}
            -I${out} -I${PROJECT_SOURCE_DIR}/bpf
            -idirafter /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}
            -c ${src} -o ${obj}
    DEPENDS ${src} ${vmlinux_h} ${lib_headers}
    COMMENT "BPF ${B_NAME}.bpf.c -> ${B_NAME}.bpf.o"
    VERBATIM)
  add_custom_command(OUTPUT ${skel}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out}/skel
    COMMAND ${PODWARP_BPFTOOL} gen skeleton ${obj} name podwarp_${B_NAME}_bpf > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "BPF ${B_NAME}.bpf.o -> skeleton ${B_NAME}.skel.h"
    VERBATIM)
  add_custom_target(${target}_gen DEPENDS ${skel})

  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_gen)
  target_include_directories(${target} INTERFACE ${out}/skel ${PROJECT_SOURCE_DIR}/bpf)
  target_link_libraries(${target} INTERFACE PkgConfig::LIBBPF)
endfunction()
