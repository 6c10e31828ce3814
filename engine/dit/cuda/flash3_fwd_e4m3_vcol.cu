// The FlashAttention-3 e4m3 forward of flash3_fwd_e4m3.cu for a column-major V (the tokens of each channel
// contiguous, as our quantiser writes V: Note [FP8 attention]): the kernel needs no transpose of its V tiles
// and takes 192 keys per tile instead of 224. In its own file so that it compiles beside the others.
#include "flash_fwd_launch_template.h"

template void run_flash_fwd<90, 128, 128, 1, cutlass::float_e4m3_t, cutlass::bfloat16_t, false, false, false, false,
                            false, false, false, false, false, true>(Flash_fwd_params&, cudaStream_t);
