// Fused elementwise kernels for the DiT block on CUDA (see Note [Fused block kernels] in fused.h).
// Plain CUDA C++ with raw pointers: no ATen here, so nvcc compiles it quickly.
#include "fused_kernels.h"

#include <cuda_bf16.h>

#include <algorithm>

namespace wan::dit::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float block_sum(float v, float* shared) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (kThreads / 32) ? shared[lane] : 0.f;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) shared[0] = v;
    }
    __syncthreads();
    const float total = shared[0];
    __syncthreads();
    return total;
}

__device__ __forceinline__ float round_bf16(float v) { return __bfloat162float(__float2bfloat16(v)); }

// One block per row. out = bf16(rope(bf16(x·rsqrt(mean(x²)+eps)) · w)), rope optional. The order of
// roundings is upstream's (RMS in f32, rounded to the input dtype, times the f32 weight, RoPE in f32).
template <bool Rope>
__global__ void rmsnorm_rope_kernel(const __nv_bfloat16* __restrict__ x, long x_row_stride, const float* __restrict__ w,
                                    const float* __restrict__ cos_t, const float* __restrict__ sin_t,
                                    __nv_bfloat16* __restrict__ out, int D, int head_dim, float eps) {
    __shared__ float shared[32];
    const long row = blockIdx.x;
    const __nv_bfloat162* xr = reinterpret_cast<const __nv_bfloat162*>(x + row * x_row_stride);
    __nv_bfloat162* orow = reinterpret_cast<__nv_bfloat162*>(out + row * D);
    const int pairs = D / 2;
    float ss = 0.f;
    for (int p = threadIdx.x; p < pairs; p += kThreads) {
        const float2 v = __bfloat1622float2(xr[p]);
        ss = __fadd_rn(ss, __fmul_rn(v.x, v.x));
        ss = __fadd_rn(ss, __fmul_rn(v.y, v.y));
    }
    const float total = block_sum(ss, shared);
    const float r = rsqrtf(__fadd_rn(__fdiv_rn(total, static_cast<float>(D)), eps));
    for (int p = threadIdx.x; p < pairs; p += kThreads) {
        const int c = 2 * p;
        const float2 v = __bfloat1622float2(xr[p]);
        const float na = __fmul_rn(round_bf16(__fmul_rn(v.x, r)), w[c]);
        const float nb = __fmul_rn(round_bf16(__fmul_rn(v.y, r)), w[c + 1]);
        float oa = na, ob = nb;
        if (Rope) {
            const int j = c % head_dim;
            const long t = row * head_dim + j;
            // (a + ib)(cos + i sin): the tables hold each pair's cos twice and (−sin, +sin).
            oa = __fadd_rn(__fmul_rn(na, cos_t[t]), __fmul_rn(nb, sin_t[t]));
            ob = __fadd_rn(__fmul_rn(nb, cos_t[t + 1]), __fmul_rn(na, sin_t[t + 1]));
        }
        orow[p] = __floats2bfloat162_rn(oa, ob);
    }
}

// One block per row: out = bf16(LN(x)·(1 + scale) + shift), LN without affine, f32 throughout (two-pass
// variance, as at::layer_norm's result up to rounding).
__global__ void layernorm_modulate_kernel(const float* __restrict__ x, const float* __restrict__ scale,
                                          const float* __restrict__ shift, __nv_bfloat16* __restrict__ out, int D,
                                          long rows_per_batch, float eps) {
    __shared__ float shared[32];
    const long row = blockIdx.x;
    const long b = row / rows_per_batch;
    const float* xr = x + row * D;
    float s = 0.f;
    for (int i = threadIdx.x; i < D; i += kThreads) s += xr[i];
    const float mean = block_sum(s, shared) / static_cast<float>(D);
    float v = 0.f;
    for (int i = threadIdx.x; i < D; i += kThreads) {
        const float dlt = xr[i] - mean;
        v += dlt * dlt;
    }
    const float rstd = rsqrtf(block_sum(v, shared) / static_cast<float>(D) + eps);
    const float* sc = scale + b * D;
    const float* sh = shift + b * D;
    __nv_bfloat16* orow = out + row * D;
    for (int i = threadIdx.x; i < D; i += kThreads) {
        const float n = __fmul_rn(__fsub_rn(xr[i], mean), rstd);
        const float t = __fadd_rn(1.f, sc[i]);
        orow[i] = __float2bfloat16(__fadd_rn(__fmul_rn(n, t), sh[i]));
    }
}

// One block per row: out = bf16(LN(x)·w + b), LN with affine (norm3 before cross-attention), f32 arithmetic.
__global__ void layernorm_affine_kernel(const float* __restrict__ x, const float* __restrict__ w,
                                        const float* __restrict__ bias, __nv_bfloat16* __restrict__ out, int D,
                                        float eps) {
    __shared__ float shared[32];
    const long row = blockIdx.x;
    const float* xr = x + row * D;
    float s = 0.f;
    for (int i = threadIdx.x; i < D; i += kThreads) s += xr[i];
    const float mean = block_sum(s, shared) / static_cast<float>(D);
    float v = 0.f;
    for (int i = threadIdx.x; i < D; i += kThreads) {
        const float dlt = xr[i] - mean;
        v += dlt * dlt;
    }
    const float rstd = rsqrtf(block_sum(v, shared) / static_cast<float>(D) + eps);
    __nv_bfloat16* orow = out + row * D;
    for (int i = threadIdx.x; i < D; i += kThreads)
        orow[i] = __float2bfloat16(__fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(xr[i], mean), rstd), w[i]), bias[i]));
}

// x[row, i] += f32(y[row, i]) · gate[b, i]  (gated residual, in place)
__global__ void gated_residual_kernel(float* __restrict__ x, const __nv_bfloat16* __restrict__ y,
                                      const float* __restrict__ gate, long n, int D, long rows_per_batch) {
    for (long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; i < n; i += static_cast<long>(gridDim.x) * blockDim.x) {
        const long row = i / D;
        const int c = static_cast<int>(i - row * D);
        const long b = row / rows_per_batch;
        x[i] = __fadd_rn(x[i], __fmul_rn(__bfloat162float(y[i]), gate[b * D + c]));
    }
}

}  // namespace

void rmsnorm_rope(const void* x, long x_row_stride, const float* w, const float* cos_t, const float* sin_t, void* out,
                  long rows, int D, int head_dim, float eps, cudaStream_t stream) {
    const auto* xb = static_cast<const __nv_bfloat16*>(x);
    auto* ob = static_cast<__nv_bfloat16*>(out);
    if (cos_t)
        rmsnorm_rope_kernel<true><<<rows, kThreads, 0, stream>>>(xb, x_row_stride, w, cos_t, sin_t, ob, D, head_dim, eps);
    else
        rmsnorm_rope_kernel<false><<<rows, kThreads, 0, stream>>>(xb, x_row_stride, w, nullptr, nullptr, ob, D, head_dim, eps);
}

void layernorm_affine(const float* x, const float* w, const float* b, void* out, long rows, int D, float eps,
                      cudaStream_t stream) {
    layernorm_affine_kernel<<<rows, kThreads, 0, stream>>>(x, w, b, static_cast<__nv_bfloat16*>(out), D, eps);
}

void layernorm_modulate(const float* x, const float* scale, const float* shift, void* out, long rows, int D,
                        long rows_per_batch, float eps, cudaStream_t stream) {
    layernorm_modulate_kernel<<<rows, kThreads, 0, stream>>>(x, scale, shift, static_cast<__nv_bfloat16*>(out), D,
                                                             rows_per_batch, eps);
}

void gated_residual(float* x, const void* y, const float* gate, long rows, int D, long rows_per_batch,
                    cudaStream_t stream) {
    const long n = rows * D;
    const int blocks = static_cast<int>(std::min<long>((n + kThreads - 1) / kThreads, 65535L * 8));
    gated_residual_kernel<<<blocks, kThreads, 0, stream>>>(x, static_cast<const __nv_bfloat16*>(y), gate, n, D,
                                                           rows_per_batch);
}

}  // namespace wan::dit::cuda
