# Test helpers (one place, as llama.cpp's llama_build_and_test):
#   wan_add_test(NAME SOURCES a.cpp .. [LIBS ..] [LABELS ..] [ARGS ..] [TIMEOUT s] [ENV K=V ..])
#   wan_add_mpi_test(NAME NP n TARGET t [LABELS ..] [ARGS ..] [TIMEOUT s])  (target built by wan_add_test
#   or add_executable; runs under ${MPIEXEC_EXECUTABLE} with --oversubscribe so it works on 2 cores)
# Every test has a TIMEOUT so that a hang is a failure, never a stuck CI.
include(CMakeParseArguments)

function(wan_add_test name)
  cmake_parse_arguments(T "NO_GTEST_MAIN" "TIMEOUT" "SOURCES;LIBS;LABELS;ARGS;ENV" ${ARGN})
  if(NOT TARGET ${name})
    add_executable(${name} ${T_SOURCES})
    target_link_libraries(${name} PRIVATE ${T_LIBS} wan_test_harness)
    if(NOT T_NO_GTEST_MAIN)
      target_link_libraries(${name} PRIVATE GTest::gtest_main)
    endif()
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}")
  if(T_ENV)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "${T_ENV}")
  endif()
endfunction()

set(WAN_MPIEXEC_EXTRA_FLAGS --oversubscribe CACHE STRING "Extra mpiexec flags for the MPI tests")
if(DEFINED ENV{USER} AND "$ENV{USER}" STREQUAL "root")
  list(APPEND WAN_MPIEXEC_EXTRA_FLAGS --allow-run-as-root)
elseif(NOT DEFINED ENV{USER})
  execute_process(COMMAND id -u OUTPUT_VARIABLE _wan_uid OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(_wan_uid STREQUAL "0")
    list(APPEND WAN_MPIEXEC_EXTRA_FLAGS --allow-run-as-root)
  endif()
endif()

function(wan_add_mpi_test name)
  cmake_parse_arguments(T "" "NP;TARGET;TIMEOUT" "LABELS;ARGS;ENV" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_test(NAME ${name}
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${T_NP} ${WAN_MPIEXEC_EXTRA_FLAGS}
                   ${MPIEXEC_PREFLAGS} $<TARGET_FILE:${T_TARGET}> ${MPIEXEC_POSTFLAGS} ${T_ARGS}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "mpi;${T_LABELS}"
                       PROCESSORS ${T_NP} ENVIRONMENT "OMP_NUM_THREADS=1;${T_ENV}")
endfunction()
