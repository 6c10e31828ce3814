# packaging_deb: cpack -> .deb -> dpkg-deb -x -> run the unpacked program. Everything happens under WORK_DIR
# (this test's own build folder), so it cannot collide with other tests or with a `ninja package` output.
cmake_minimum_required(VERSION 3.25)

function(fail msg)
  message(FATAL_ERROR "packaging_deb: ${msg}")
endfunction()
function(run_ok out_var what)  # run_ok(VAR "what" COMMAND ...): output (stdout+stderr) into VAR, fail on exit != 0
  execute_process(${ARGN} OUTPUT_VARIABLE out ERROR_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    fail("${what} failed (exit ${rc}):\n${out}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()
function(expect text pattern what)
  string(FIND "${text}" "${pattern}" pos)
  if(pos EQUAL -1)
    fail("${what}: expected to find '${pattern}' in:\n${text}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# ---- build the package ----
string(TIMESTAMP t0 "%s")
run_ok(out "cpack" COMMAND "${CPACK}" -G DEB --config "${CPACK_CONFIG}" -B "${WORK_DIR}/pkg")
file(GLOB debs "${WORK_DIR}/pkg/*.deb")
list(LENGTH debs n)
if(NOT n EQUAL 1)
  fail("expected one .deb in ${WORK_DIR}/pkg, found ${n}:\n${out}")
endif()
set(deb "${debs}")
string(TIMESTAMP t1 "%s")
math(EXPR dt "${t1} - ${t0}")
message(STATUS "built ${deb} in ${dt} s")

# ---- control fields and contents ----
run_ok(fields "dpkg-deb -f" COMMAND "${DPKG_DEB}" -f "${deb}" Package Version Depends)
expect("${fields}" "Package: wanstudio" "control")
expect("${fields}" "Version: ${VERSION}" "control")
expect("${fields}" "openmpi-bin" "Depends")
message(STATUS "control:\n${fields}")
run_ok(listing "dpkg-deb -c" COMMAND "${DPKG_DEB}" -c "${deb}")
set(required
    ./usr/bin/wanstudio
    ./usr/share/man/man1/wanstudio.1
    ./usr/share/wanstudio/demo-ckpt/config.json
    ./usr/share/wanstudio/demo-ckpt/diffusion_pytorch_model.safetensors
    ./usr/share/wanstudio/demo-ckpt/models_t5_umt5-xxl-enc-bf16.pth
    ./usr/share/wanstudio/demo-ckpt/Wan2.1_VAE.pth
    ./usr/share/wanstudio/examples/run_fsdp_example.sh
    ./usr/share/wanstudio/examples/run_sequence_parallel_example.sh
    ./usr/share/wanstudio/examples/wanstudio_launch_common.sh
    ./usr/share/doc/wanstudio/README.md)
if(WITH_APP)
  list(APPEND required ./usr/share/applications/wanstudio.desktop ./usr/share/icons/hicolor/256x256/apps/wanstudio.png
       ./usr/share/icons/hicolor/scalable/apps/wanstudio.svg)
endif()
foreach(f IN LISTS required)
  expect("${listing}" "${f}" "package contents")
endforeach()

# ---- unpack and run ----
set(root "${WORK_DIR}/root")
run_ok(out "dpkg-deb -x" COMMAND "${DPKG_DEB}" -x "${deb}" "${root}")
set(exe "${root}/usr/bin/wanstudio")
if(NOT EXISTS "${exe}")
  fail("${exe} missing after dpkg-deb -x")
endif()
unset(ENV{WAN_DEMO_CKPT})  # the installed binary must find <exe>/../share/wanstudio/demo-ckpt by itself
set(ENV{OMP_NUM_THREADS} 1)

run_ok(version "wanstudio --version" COMMAND "${exe}" --version)
message(STATUS "wanstudio --version:\n${version}")
expect("${version}" "wanstudio ${VERSION}" "--version")
expect("${version}" "LibTorch " "--version")
expect("${version}" "NCCL" "--version")
expect("${version}" "MPI: " "--version")
if(WITH_FFMPEG)
  expect("${version}" "FFmpeg " "--version")
  expect("${version}" "encoder" "--version")
endif()

run_ok(help "wanstudio --help" COMMAND "${exe}" --help)
expect("${help}" "Usage:" "--help")
expect("${help}" "--ulysses-size" "--help")

file(GLOB man "${root}/usr/share/man/man1/wanstudio.1*")
if(man MATCHES "\\.gz$")
  run_ok(man_text "gzip -dc of the man page" COMMAND gzip -dc "${man}")
else()
  file(READ "${man}" man_text)
endif()
expect("${man_text}" ".TH WANSTUDIO 1" "man page")
expect("${man_text}" "\\fB\\-\\-ulysses\\-size\\fR" "man page")
expect("${man_text}" "\\fB\\-\\-listen\\fR" "man page")  # the remote engine's options (app/remote)
expect("${man_text}" ".SH OPTIONS" "man page")

# The installed binary finds the installed demo checkpoint (single process, CPU).
run_ok(check "wanstudio --check (installed demo checkpoint)" COMMAND "${exe}" --check --device cpu)
expect("${check}" "checkpoint ${root}/usr/bin/../share/wanstudio/demo-ckpt" "--check")
expect("${check}" "setup check passed" "--check")

# The installed FSDP example end to end: 2 CPU processes on the demo checkpoint, a tiny headless job.
set(ENV{MPIRUN_FLAGS} "--oversubscribe")
unset(ENV{WANSTUDIO})
run_ok(example "installed run_fsdp_example.sh"
       COMMAND "${root}/usr/share/wanstudio/examples/run_fsdp_example.sh" "${root}/usr/share/wanstudio/demo-ckpt" 2
               -- --device cpu --prompt "packaging test" --size 64*64 --frame-num 5 --sample-steps 2
                  --output-dir "${WORK_DIR}/videos"
       WORKING_DIRECTORY "${WORK_DIR}")
expect("${example}" "setup check passed" "example script")
expect("${example}" "${root}/usr/bin/wanstudio" "example script (uses the installed binary)")
if(WITH_FFMPEG)
  file(GLOB videos "${WORK_DIR}/videos/*.mp4")
  if(NOT videos)
    fail("the example script wrote no video into ${WORK_DIR}/videos:\n${example}")
  endif()
endif()
string(TIMESTAMP t2 "%s")
math(EXPR dt "${t2} - ${t0}")
message(STATUS "packaging_deb passed in ${dt} s")
