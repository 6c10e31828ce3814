# `wanstudio --extend-prompt TEXT ...` as a user runs it; ctest's PASS_REGULAR_EXPRESSION would ignore the exit
# code, so this script checks stdout, stderr and the exit code together.
#   cmake -DWANSTUDIO=... -DMODEL=DIR -DEXPECT=ok|fail -P check_extend_cli.cmake
set(text "a cat")
execute_process(
  COMMAND ${WANSTUDIO} --extend-prompt "${text}" --prompt-extend-method local_qwen --prompt-extend-model ${MODEL}
          --prompt-extend-target-lang en --base-seed 7
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
string(STRIP "${out}" stripped)
message(STATUS "exit code: ${rc}\nstdout: ${out}\nstderr: ${err}")
if(EXPECT STREQUAL "ok")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "expected exit code 0, got ${rc}")
  endif()
  if(stripped STREQUAL "" OR stripped STREQUAL "${text}")
    message(FATAL_ERROR "expected an extended prompt on stdout, got '${stripped}'")
  endif()
else()
  if(rc EQUAL 0)
    message(FATAL_ERROR "expected a non-zero exit code for a missing model folder")
  endif()
  if(NOT stripped STREQUAL "${text}")
    message(FATAL_ERROR "expected the original prompt on stdout, got '${stripped}'")
  endif()
  if(NOT err MATCHES "prompt extension failed: .*${MODEL}")
    message(FATAL_ERROR "expected the reason (naming ${MODEL}) on stderr")
  endif()
endif()
