# wan_add_cuda_kernels(TARGET SOURCE DEFINITION): our own elementwise CUDA kernels for TARGET on a CUDA build
# (nothing elsewhere). They copy the ATen path's roundings, so fused multiply-adds are off (--fmad=false), and
# DEFINITION (e.g. WAN_HAVE_FUSED_KERNELS) tells the C++ side that they exist.
function(wan_add_cuda_kernels target source definition)
  if(NOT (WAN_HAVE_CUDA AND CMAKE_CUDA_COMPILER))
    return()
  endif()
  target_sources(${target} PRIVATE ${source})
  set_source_files_properties(${source} PROPERTIES COMPILE_OPTIONS "--fmad=false")
  set_target_properties(${target} PROPERTIES CUDA_ARCHITECTURES "${WAN_CUDA_ARCHITECTURES}")
  target_compile_definitions(${target} PRIVATE ${definition}=1)
endfunction()
