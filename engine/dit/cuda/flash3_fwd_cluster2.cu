// The FlashAttention-3 forward kernel (bf16, head dim 128, non-causal, dense) for clusters of 2 CTA(s);
// one variant per file so that the two long compilations run side by side. See flash3_attention.cu.
#include "flash_fwd_launch_template.h"

template void run_flash_fwd<90, 128, 128, 2, cutlass::bfloat16_t, cutlass::bfloat16_t, false, false, false, false,
                            false, false, false, false, false, false>(Flash_fwd_params&, cudaStream_t);
