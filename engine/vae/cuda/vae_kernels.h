// Private to engine/vae: launcher of the VAE's fused CUDA kernel (raw pointers; bf16 passed as void*).
#pragma once

#include <cuda_runtime.h>

namespace wan::vae::cuda {

/// out[r, :] = bf16(SiLU(bf16(bf16(x[r, :] · bf16(1 / max(‖x[r, :]‖₂, 1e-12))) · γ))) for rows r of C bf16 values
/// (a pixel's channels in the channels-last layout): x [rows, C] contiguous, out row r at out + r·out_row_stride
/// (≥ C, even: a block of channels of a wider row, as in the time-folded conv input), gamma [C] bf16 (γ·sqrt(C)),
/// C even, pointers 4-byte aligned. The roundings are those of the ATen ops it replaces (RMSNorm::forward then
/// SiLU in vae_modules.cpp).
void rms_norm_silu_bf16(const void* x, const void* gamma, void* out, long out_row_stride, long rows, int C,
                        cudaStream_t stream);

}  // namespace wan::vae::cuda
