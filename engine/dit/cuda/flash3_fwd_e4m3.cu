// The FlashAttention-3 forward kernel on float8_e4m3 q, k, v (bf16 out, head dim 128, non-causal, dense,
// V row-major: the kernel transposes its V tiles in shared memory), one CTA per cluster as flash-attention
// picks for this head dim; in its own file so that it compiles beside the bf16 ones. See flash3_attention.cu.
#include "flash_fwd_launch_template.h"

template void run_flash_fwd<90, 128, 128, 1, cutlass::float_e4m3_t, cutlass::bfloat16_t, false, false, false, false,
                            false, false, false, false, false, false>(Flash_fwd_params&, cudaStream_t);
