# One helper per kind of artifact (STYLE.md).

# podwarp_add_test(NAME name SOURCES a_test.cpp ... LIBS lib ... [LABELS l ...])
# A GoogleTest binary registered with ctest (each TEST() becomes its own ctest case).
function(podwarp_add_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  include(GoogleTest)
  gtest_discover_tests(${T_NAME} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "unit;${T_LABELS}")
endfunction()

# podwarp_add_script_test(NAME name COMMAND cmd args... [LABELS l ...] [TIMEOUT s])
# An integration test driven by a script that talks to real peers (etcd, kubectl, python).
function(podwarp_add_script_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "COMMAND;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_test(NAME ${T_NAME} COMMAND ${T_COMMAND})
  set_tests_properties(${T_NAME} PROPERTIES
    LABELS "integration;${T_LABELS}"
    TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "PODWARP_BIN=${CMAKE_BINARY_DIR}/bin;PODWARP_SOURCE=${CMAKE_SOURCE_DIR}")
endfunction()

# podwarp_add_component(NAME lib_name [LIBS dep ...])
# A component is a folder: every *.cpp in it (but *_test.cpp and main.cpp) makes one static
# library; every *_test.cpp beside them makes one GoogleTest binary <lib_name>_test.
function(podwarp_add_component)
  cmake_parse_arguments(C "" "NAME" "LIBS;EXTRA_SOURCES" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  list(FILTER srcs EXCLUDE REGEX "(_test|/main)\\.cpp$")
  file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cpp)
  if(srcs OR C_EXTRA_SOURCES)
    add_library(${C_NAME} STATIC ${srcs} ${C_EXTRA_SOURCES})
    target_link_libraries(${C_NAME} PUBLIC ${C_LIBS})
    target_include_directories(${C_NAME} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/..)
  else()
    # A component still being written: nothing to compile yet.
    add_library(${C_NAME} INTERFACE)
    target_link_libraries(${C_NAME} INTERFACE ${C_LIBS})
    target_include_directories(${C_NAME} INTERFACE ${CMAKE_CURRENT_SOURCE_DIR}/..)
  endif()
  if(tests)
    podwarp_add_test(NAME ${C_NAME}_test SOURCES ${tests} LIBS ${C_NAME})
  endif()
endfunction()
