// The VAE's fused RMS norm + SiLU (VAESpeedOptions::fused_norm, Note [VAE speed switches] in vae_modules.h).
// Plain CUDA C++ with raw pointers: no ATen here, so nvcc compiles it quickly.
#include "vae_kernels.h"

#include <cuda_bf16.h>

namespace wan::vae::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;

__device__ __forceinline__ float round_bf16(float v) { return __bfloat162float(__float2bfloat16(v)); }

// One warp per row (a pixel's C channels, C/2 bf16 pairs). The sum of squares is accumulated in f32 as the ATen
// norm does (in another order); then the ATen path's roundings: r = bf16(1 / max(sqrt(Σx²), 1e-12)),
// bf16(x·r), bf16(·γ), bf16(SiLU). The second pass re-reads the row, which the first brought into L1.
__global__ void rms_norm_silu_kernel(const __nv_bfloat162* __restrict__ x, const __nv_bfloat162* __restrict__ gamma,
                                     __nv_bfloat162* __restrict__ out, long out_row_pairs, long rows, int pairs) {
    const long row = static_cast<long>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
    if (row >= rows) return;
    const int lane = threadIdx.x & 31;
    const __nv_bfloat162* xr = x + row * pairs;
    __nv_bfloat162* orow = out + row * out_row_pairs;
    float ss = 0.f;
    for (int p = lane; p < pairs; p += 32) {
        const float2 v = __bfloat1622float2(xr[p]);
        ss = __fadd_rn(ss, __fmul_rn(v.x, v.x));
        ss = __fadd_rn(ss, __fmul_rn(v.y, v.y));
    }
    for (int o = 16; o > 0; o >>= 1) ss = __fadd_rn(ss, __shfl_xor_sync(0xffffffffu, ss, o));
    const float r = round_bf16(__fdiv_rn(1.f, fmaxf(__fsqrt_rn(ss), 1e-12f)));
    for (int p = lane; p < pairs; p += 32) {
        const float2 v = __bfloat1622float2(xr[p]);
        const float2 g = __bfloat1622float2(gamma[p]);
        const float a = round_bf16(__fmul_rn(round_bf16(__fmul_rn(v.x, r)), g.x));
        const float b = round_bf16(__fmul_rn(round_bf16(__fmul_rn(v.y, r)), g.y));
        const float sa = __fdiv_rn(a, __fadd_rn(1.f, expf(-a)));
        const float sb = __fdiv_rn(b, __fadd_rn(1.f, expf(-b)));
        orow[p] = __floats2bfloat162_rn(sa, sb);
    }
}

}  // namespace

void rms_norm_silu_bf16(const void* x, const void* gamma, void* out, long out_row_stride, long rows, int C,
                        cudaStream_t stream) {
    if (rows <= 0) return;
    const long blocks = (rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
    rms_norm_silu_kernel<<<static_cast<unsigned>(blocks), kWarpsPerBlock * 32, 0, stream>>>(
        static_cast<const __nv_bfloat162*>(x), static_cast<const __nv_bfloat162*>(gamma),
        static_cast<__nv_bfloat162*>(out), out_row_stride / 2, rows, C / 2);
}

}  // namespace wan::vae::cuda
