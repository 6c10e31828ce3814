# Test helpers (one place, as llama.cpp's llama_build_and_test):
#   wan_add_test(NAME SOURCES a.cpp .. [LIBS ..] [LABELS ..] [ARGS ..] [TIMEOUT s] [ENV K=V ..])
#   wan_add_mpi_test(NAME NP n TARGET t [LABELS ..] [ARGS ..] [TIMEOUT s])  (target built by wan_add_test
#   or add_executable; runs under ${MPIEXEC_EXECUTABLE} with --oversubscribe so it works on 2 cores)
#   wan_add_checked_test(NAME EXIT code|nonzero [RANKS n RANK_REGEX r] [REGEX r] [FAIL_REGEX r] [TIMEOUT s]
#                        [LABELS ..] [PROCESSORS n] [ENV K=V ..] COMMAND cmd ..)  (a run that must fail in a given way: WanCheckRun.cmake)
# Every test has a TIMEOUT so that a hang is a failure, never a stuck CI.
# A skip is reported as a skip, never as a pass: gtest binaries whose every test called GTEST_SKIP (and none
# failed) and Qt Test binaries with a QSKIP (and no failure) show as "Skipped" in ctest. The patterns match the
# final summaries, so a failure next to a skip still fails (a bare "[  SKIPPED ]" pattern would hide it:
# ctest's SKIP_REGULAR_EXPRESSION wins over the exit code).
include(CMakeParseArguments)

set(WAN_GTEST_ALL_SKIPPED_REGEX
    "\\[  PASSED  \\] 0 tests\\.\n\\[  SKIPPED \\] [0-9]+ tests?, listed below:\n(\\[  SKIPPED \\] [^\n]*\n)*[\n ]*(YOU HAVE [0-9]+ DISABLED TESTS?[\n ]*)?$")
set(WAN_QTEST_SKIPPED_REGEX "Totals: [0-9]+ passed, 0 failed, [1-9][0-9]* skipped")
set(WAN_CHECK_RUN_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/WanCheckRun.cmake)

# What every wan_add_*test sets alike, from the caller's cmake_parse_arguments results: TIMEOUT (T_TIMEOUT, else
# `default_timeout`), LABELS (T_LABELS) and, where T_ENV is given, ENVIRONMENT.
function(_wan_test_common_properties name default_timeout)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT ${default_timeout})
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}")
  if(T_ENV)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "${T_ENV}")
  endif()
endfunction()

function(wan_add_test name)
  cmake_parse_arguments(T "NO_GTEST_MAIN" "TIMEOUT" "SOURCES;LIBS;LABELS;ARGS;ENV" ${ARGN})
  if(NOT TARGET ${name})
    add_executable(${name} ${T_SOURCES})
    target_link_libraries(${name} PRIVATE ${T_LIBS} wan_test_harness)
    if(NOT T_NO_GTEST_MAIN)
      target_link_libraries(${name} PRIVATE GTest::gtest_main)
    endif()
  endif()
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  _wan_test_common_properties(${name} 300)
  set_tests_properties(${name} PROPERTIES SKIP_REGULAR_EXPRESSION "${WAN_GTEST_ALL_SKIPPED_REGEX}")
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
  add_test(NAME ${name}
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${T_NP} ${WAN_MPIEXEC_EXTRA_FLAGS}
                   ${MPIEXEC_PREFLAGS} $<TARGET_FILE:${T_TARGET}> ${MPIEXEC_POSTFLAGS} ${T_ARGS}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set(T_LABELS "mpi;${T_LABELS}")
  set(T_ENV "OMP_NUM_THREADS=1;${T_ENV}")
  _wan_test_common_properties(${name} 600)
  set_tests_properties(${name} PROPERTIES PROCESSORS ${T_NP})
endfunction()

function(wan_add_checked_test name)
  cmake_parse_arguments(T "" "EXIT;RANKS;RANK_REGEX;REGEX;FAIL_REGEX;TIMEOUT;PROCESSORS" "LABELS;COMMAND;ENV" ${ARGN})
  if(NOT T_PROCESSORS)
    set(T_PROCESSORS 1)
  endif()
  set(defs -DEXIT=${T_EXIT})
  if(T_RANK_REGEX)
    list(APPEND defs -DRANKS=${T_RANKS} "-DRANK_REGEX=${T_RANK_REGEX}")
  endif()
  if(T_REGEX)
    list(APPEND defs "-DREGEX=${T_REGEX}")
  endif()
  if(T_FAIL_REGEX)  # in addition to the crash patterns
    list(APPEND defs "-DEXTRA_FAIL_REGEX=${T_FAIL_REGEX}")
  endif()
  add_test(NAME ${name} COMMAND ${CMAKE_COMMAND} ${defs} -P ${WAN_CHECK_RUN_SCRIPT} -- ${T_COMMAND}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  _wan_test_common_properties(${name} 120)
  set_tests_properties(${name} PROPERTIES PROCESSORS ${T_PROCESSORS})
endfunction()
