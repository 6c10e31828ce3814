// Fused elementwise kernels for the DiT block on CUDA (see Note [Fused block kernels] in fused.h).
// Plain CUDA C++ with raw pointers: no ATen here, so nvcc compiles it quickly.
#include "fused_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace wan::dit::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float block_sum(float v, float* shared) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < static_cast<int>((blockDim.x + 31) / 32) ? shared[lane] : 0.f;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (lane == 0) shared[0] = v;
    }
    __syncthreads();
    const float total = shared[0];
    __syncthreads();
    return total;
}

__device__ __forceinline__ float block_max(float v, float* shared) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < static_cast<int>((blockDim.x + 31) / 32) ? shared[lane] : 0.f;
        for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
        if (lane == 0) shared[0] = v;
    }
    __syncthreads();
    const float total = shared[0];
    __syncthreads();
    return total;
}

// FP8 e4m3 (finite, saturating) of four floats, packed as stored in memory.
__device__ __forceinline__ uint32_t fp8x4(float a, float b, float c, float d) {
    const __nv_fp8x4_e4m3 q(make_float4(a, b, c, d));
    return *reinterpret_cast<const uint32_t*>(&q);
}
constexpr float kFp8Max = 448.f;  // largest finite e4m3

__device__ __forceinline__ float round_bf16(float v) { return __bfloat162float(__float2bfloat16(v)); }

// 1/scale for the FP8 rows of the GEMM inputs: each value is multiplied by it instead of divided by the scale. An
// IEEE division is a dozen instructions and made those kernels compute-bound (the 8960-wide GELU rows above all);
// the product differs from the quotient by at most an ulp or two of f32, which moves an e4m3 code (a step of
// 2^-4) only for a value within that distance of a rounding boundary. |v·inv| ≤ 448 still holds up to that
// rounding, and the conversion saturates to 448. The attention heads keep the division (their codes are tested
// bit for bit against the ATen reference).
__device__ __forceinline__ float row_scale_inverse(float scale) { return __frcp_rn(scale); }

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


// ---- vectorised row kernels -----------------------------------------------------------------------------
// Note [Row kernels in registers]
// The rows of the residual stream are 1536 (1.3B) or 5120 (14B) floats: one thread block per row holds the
// whole row in registers as float4s (up to kMaxItems per thread), so x is read from memory once, the
// mean and the variance come from registers (still two passes, as at::layer_norm), and the loads and stores
// are 16 bytes wide. The residual update that precedes each norm in a block is folded in: the kernel adds
// y (·gate) to x, writes x back and normalises the new row, one pass instead of two.
constexpr int kMaxItems = 8;

struct Bf16x4 {
    __nv_bfloat162 lo, hi;
};

__device__ __forceinline__ float4 load_bf16x4(const __nv_bfloat16* p) {
    const Bf16x4 v = *reinterpret_cast<const Bf16x4*>(p);
    const float2 a = __bfloat1622float2(v.lo), b = __bfloat1622float2(v.hi);
    return make_float4(a.x, a.y, b.x, b.y);
}

__device__ __forceinline__ void store_bf16x4(__nv_bfloat16* p, float a, float b, float c, float d) {
    Bf16x4 v;
    v.lo = __floats2bfloat162_rn(a, b);
    v.hi = __floats2bfloat162_rn(c, d);
    *reinterpret_cast<Bf16x4*>(p) = v;
}

// Eight bf16: one 16-byte load or store.
struct Bf16x8 {
    __nv_bfloat162 h[4];
};

enum class NormKind { Modulate, Affine };

__device__ __forceinline__ void store4(__nv_bfloat16* p, const float (&r)[4]) { store_bf16x4(p, r[0], r[1], r[2], r[3]); }
__device__ __forceinline__ void store4(float* p, const float (&r)[4]) {
    *reinterpret_cast<float4*>(p) = make_float4(r[0], r[1], r[2], r[3]);
}

// x[row] (+= f32(y[row]) · gate[b] when Residual; gate null: += f32(y)), written back when Residual;
// out[row] = LN(x)·(1 + p0[b]) + p1[b] (Modulate, p0/p1 = scale/shift [B, D]) or LN(x)·p0 + p1 (Affine,
// p0/p1 = weight/bias [D]), stored as TOut (bf16, or f32 for the head). RoundNorm rounds LN(x) to bf16
// before the modulation: block 0's norm1, where upstream's residual stream is still bf16 and its LayerNorm
// returns the input dtype. items = float4s per thread, ≤ kMaxItems.
template <bool Residual, NormKind Kind, typename TOut, bool RoundNorm>
__global__ void residual_norm_kernel(float* __restrict__ x, const __nv_bfloat16* __restrict__ y,
                                     const float* __restrict__ gate, const float* __restrict__ p0,
                                     const float* __restrict__ p1, TOut* __restrict__ out,
                                     float* __restrict__ row_scale, int D, long rows_per_batch, int items, float eps) {
    constexpr bool kFp8 = std::is_same<TOut, __nv_fp8_e4m3>::value;
    __shared__ float shared[32];
    const long row = blockIdx.x;
    const long b = row / rows_per_batch;
    const int n4 = D / 4;
    float4* xr = reinterpret_cast<float4*>(x + row * D);
    float4 v[kMaxItems];
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < kMaxItems; ++k) {
        const int i = threadIdx.x + k * blockDim.x;
        if (k < items && i < n4) {
            float4 t = xr[i];
            if (Residual) {
                const float4 yy = load_bf16x4(y + row * D + 4 * i);
                if (gate) {
                    const float4 g = reinterpret_cast<const float4*>(gate + b * D)[i];
                    t.x = __fadd_rn(t.x, __fmul_rn(yy.x, g.x));
                    t.y = __fadd_rn(t.y, __fmul_rn(yy.y, g.y));
                    t.z = __fadd_rn(t.z, __fmul_rn(yy.z, g.z));
                    t.w = __fadd_rn(t.w, __fmul_rn(yy.w, g.w));
                } else {
                    t.x = __fadd_rn(t.x, yy.x);
                    t.y = __fadd_rn(t.y, yy.y);
                    t.z = __fadd_rn(t.z, yy.z);
                    t.w = __fadd_rn(t.w, yy.w);
                }
                xr[i] = t;
            }
            v[k] = t;
            s += (t.x + t.y) + (t.z + t.w);
        }
    }
    const float mean = block_sum(s, shared) / static_cast<float>(D);
    float q = 0.f;
#pragma unroll
    for (int k = 0; k < kMaxItems; ++k) {
        const int i = threadIdx.x + k * blockDim.x;
        if (k < items && i < n4) {
            const float a = v[k].x - mean, bb = v[k].y - mean, c = v[k].z - mean, d = v[k].w - mean;
            q += (a * a + bb * bb) + (c * c + d * d);
        }
    }
    const float rstd = rsqrtf(block_sum(q, shared) / static_cast<float>(D) + eps);
    const float4* a4 = reinterpret_cast<const float4*>(Kind == NormKind::Modulate ? p0 + b * D : p0);
    const float4* b4 = reinterpret_cast<const float4*>(Kind == NormKind::Modulate ? p1 + b * D : p1);
    TOut* orow = out + row * D;
    float amax = 0.f;
#pragma unroll
    for (int k = 0; k < kMaxItems; ++k) {
        const int i = threadIdx.x + k * blockDim.x;
        if (k < items && i < n4) {
            const float4 t = v[k], pa = a4[i], pb = b4[i];
            float r[4] = {t.x, t.y, t.z, t.w};
            const float ma[4] = {pa.x, pa.y, pa.z, pa.w}, mb[4] = {pb.x, pb.y, pb.z, pb.w};
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                float n = __fmul_rn(__fsub_rn(r[j], mean), rstd);
                if (RoundNorm) n = round_bf16(n);
                r[j] = Kind == NormKind::Modulate ? __fadd_rn(__fmul_rn(n, __fadd_rn(1.f, ma[j])), mb[j])
                                                  : __fadd_rn(__fmul_rn(n, ma[j]), mb[j]);
            }
            if constexpr (kFp8) {  // keep the row until its scale is known
                v[k] = make_float4(r[0], r[1], r[2], r[3]);
                amax = fmaxf(amax, fmaxf(fmaxf(fabsf(r[0]), fabsf(r[1])), fmaxf(fabsf(r[2]), fabsf(r[3]))));
            } else {
                store4(orow + 4 * i, r);
            }
        }
    }
    if constexpr (kFp8) {
        // Per-row scale amax/448, as the FP8 GEMM's per-token activation scale (Note [FP8 linears]).
        const float sc = fmaxf(block_max(amax, shared), 1e-12f) / kFp8Max;
        if (threadIdx.x == 0) row_scale[row] = sc;
        const float inv = row_scale_inverse(sc);
        uint32_t* o32 = reinterpret_cast<uint32_t*>(orow);
#pragma unroll
        for (int k = 0; k < kMaxItems; ++k) {
            const int i = threadIdx.x + k * blockDim.x;
            if (k < items && i < n4) o32[i] = fp8x4(v[k].x * inv, v[k].y * inv, v[k].z * inv, v[k].w * inv);
        }
    }
}

// The GELU before the FFN hidden layer's FP8 quantisation, with the hardware tanh (tanh.approx.f32, one MUFU
// instruction, relative error ≤ 2^-10.9): far below the e4m3 step (2^-4) the value is rounded to next. The exact
// tanhf made the quantisation compute-bound (0.67 ms per 32760 × 8960 hidden layer on the H200, against 0.06 ms
// for a 1536-wide row set); with it and the row held in registers, 0.44 ms (docs/PERFORMANCE.md, session 32).
template <bool Gelu>
__device__ __forceinline__ float maybe_gelu(float v) {
    if (!Gelu) return v;
    const float inner = 0.7978845608028654f * (v + 0.044715f * v * v * v);  // sqrt(2/pi)
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
    float t;
    asm("tanh.approx.f32 %0, %1;" : "=f"(t) : "f"(inner));
#else
    const float t = tanhf(inner);
#endif
    return 0.5f * v * (1.f + t);
}

// Per-row FP8 quantisation of a bf16 matrix [rows, K] (K % 8 == 0), optionally through the tanh GELU first
// (the FFN's hidden layer), one block per row held in registers: each thread loads its ≤ Vecs 8-element groups
// at once (all loads in flight together), evaluates the GELU once per value, and stores from registers once the
// row's amax is known (one read of the row, where a two-pass kernel read it and evaluated the GELU twice).
template <bool Gelu, int Vecs>
__global__ void __launch_bounds__(1024) quantize_rows_fp8_cached_kernel(const __nv_bfloat16* __restrict__ a, uint8_t* __restrict__ q,
                                                float* __restrict__ row_scale, int K) {
    __shared__ float shared[32];
    const long row = blockIdx.x;
    const int n8 = K / 8;
    const Bf16x8* ar = reinterpret_cast<const Bf16x8*>(a + row * K);
    Bf16x8 raw[Vecs];
#pragma unroll
    for (int k = 0; k < Vecs; ++k) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i < n8) raw[k] = ar[i];
    }
    float f[Vecs][8];
    float amax = 0.f;
#pragma unroll
    for (int k = 0; k < Vecs; ++k) {
        if (threadIdx.x + k * blockDim.x >= n8) break;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const float2 p = __bfloat1622float2(raw[k].h[j]);
            f[k][2 * j] = maybe_gelu<Gelu>(p.x);
            f[k][2 * j + 1] = maybe_gelu<Gelu>(p.y);
            amax = fmaxf(amax, fmaxf(fabsf(f[k][2 * j]), fabsf(f[k][2 * j + 1])));
        }
    }
    const float sc = fmaxf(block_max(amax, shared), 1e-12f) / kFp8Max;
    if (threadIdx.x == 0) row_scale[row] = sc;
    const float inv = row_scale_inverse(sc);
    uint2* qr = reinterpret_cast<uint2*>(q + row * K);
#pragma unroll
    for (int k = 0; k < Vecs; ++k) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i >= n8) break;
        float g[8];
#pragma unroll
        for (int j = 0; j < 8; ++j) g[j] = f[k][j] * inv;
        qr[i] = make_uint2(fp8x4(g[0], g[1], g[2], g[3]), fp8x4(g[4], g[5], g[6], g[7]));
    }
}

template <bool Gelu>
void launch_quantize_rows(const __nv_bfloat16* a, uint8_t* q, float* row_scale, long rows, int K,
                          cudaStream_t stream) {
    const int n8 = K / 8;  // ≤ 4096 (quantize_rows_supported): at most 4 groups per thread of 1024
    const int threads = n8 > 2048 ? 1024 : n8 > 1024 ? 512 : 256;
    const int per = (n8 + threads - 1) / threads;
    if (per <= 1) quantize_rows_fp8_cached_kernel<Gelu, 1><<<rows, threads, 0, stream>>>(a, q, row_scale, K);
    else if (per <= 2) quantize_rows_fp8_cached_kernel<Gelu, 2><<<rows, threads, 0, stream>>>(a, q, row_scale, K);
    else quantize_rows_fp8_cached_kernel<Gelu, 4><<<rows, threads, 0, stream>>>(a, q, row_scale, K);
}

// x += f32(y) · gate[b], four elements per thread (the last gated residual of the stack, when it is not
// folded into the next block's first norm).
__global__ void gated_residual_vec_kernel(float* __restrict__ x, const __nv_bfloat16* __restrict__ y,
                                          const float* __restrict__ gate, long n4, int D4, long rows_per_batch) {
    for (long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x; i < n4;
         i += static_cast<long>(gridDim.x) * blockDim.x) {
        const long row = i / D4;
        const int c = static_cast<int>(i - row * D4);
        const long b = row / rows_per_batch;
        float4 t = reinterpret_cast<float4*>(x)[i];
        const float4 yy = load_bf16x4(y + 4 * i);
        const float4 g = reinterpret_cast<const float4*>(gate + b * 4 * D4)[c];
        t.x = __fadd_rn(t.x, __fmul_rn(yy.x, g.x));
        t.y = __fadd_rn(t.y, __fmul_rn(yy.y, g.y));
        t.z = __fadd_rn(t.z, __fmul_rn(yy.z, g.z));
        t.w = __fadd_rn(t.w, __fmul_rn(yy.w, g.w));
        reinterpret_cast<float4*>(x)[i] = t;
    }
}


// Q/K rows are short (1536 or 5120 bf16): a block of 256 threads per row spent its time in block-wide
// barriers and scheduling rather than memory traffic, and one warp per row needed ~190 registers at 5120
// (one block per SM). So WarpsPerRow warps share a row, each lane holding Items 16-byte vectors; a block of
// 8 warps serves 8 / WarpsPerRow rows; the sum of squares is reduced by shuffles, then across the row's
// warps through shared memory.
constexpr int kWarpsPerBlock = 8;

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <int Items, int WarpsPerRow, bool Rope>
__global__ void __launch_bounds__(32 * kWarpsPerBlock)
rmsnorm_rope_rows_kernel(const __nv_bfloat16* __restrict__ x, long x_row_stride, const float* __restrict__ w,
                         const float* __restrict__ cos_t, const float* __restrict__ sin_t,
                         __nv_bfloat16* __restrict__ out, long rows, int D, int head_dim, float eps) {
    constexpr int kRowsPerBlock = kWarpsPerBlock / WarpsPerRow;
    __shared__ float partial[kWarpsPerBlock];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const long row = static_cast<long>(blockIdx.x) * kRowsPerBlock + warp / WarpsPerRow;
    const bool live = row < rows;  // no early return: the block meets at a barrier below
    const int t = (warp % WarpsPerRow) * 32 + lane;  // this thread's slot in the row
    const int n8 = D / 8;
    const Bf16x8* xr = reinterpret_cast<const Bf16x8*>(x + (live ? row : 0) * x_row_stride);
    Bf16x8 v[Items];
    float ss = 0.f;
#pragma unroll
    for (int k = 0; k < Items; ++k) {
        const int i = t + 32 * WarpsPerRow * k;
        if (live && i < n8) {
            v[k] = xr[i];
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const float2 f = __bfloat1622float2(v[k].h[j]);
                ss = __fadd_rn(ss, __fmul_rn(f.x, f.x));
                ss = __fadd_rn(ss, __fmul_rn(f.y, f.y));
            }
        }
    }
    float total = warp_sum(ss);
    if (WarpsPerRow > 1) {
        if (lane == 0) partial[warp] = total;
        __syncthreads();
        const int first = warp - warp % WarpsPerRow;
        total = 0.f;
#pragma unroll
        for (int j = 0; j < WarpsPerRow; ++j) total += partial[first + j];
    }
    if (!live) return;
    const float r = rsqrtf(__fadd_rn(__fdiv_rn(total, static_cast<float>(D)), eps));
    Bf16x8* orow = reinterpret_cast<Bf16x8*>(out + row * D);
#pragma unroll
    for (int k = 0; k < Items; ++k) {
        const int i = t + 32 * WarpsPerRow * k;
        if (i < n8) {
            const int c0 = 8 * i;
            const float4* w4 = reinterpret_cast<const float4*>(w + c0);
            const float4 wa = w4[0], wb = w4[1];
            const float wv[8] = {wa.x, wa.y, wa.z, wa.w, wb.x, wb.y, wb.z, wb.w};
            float cv[8] = {}, sv[8] = {};
            if (Rope) {
                const long tt = row * head_dim + c0 % head_dim;  // eight entries of one head (head_dim % 8 == 0)
                const float4* c4 = reinterpret_cast<const float4*>(cos_t + tt);
                const float4* s4 = reinterpret_cast<const float4*>(sin_t + tt);
                const float4 ca = c4[0], cb = c4[1], sa = s4[0], sb = s4[1];
                cv[0] = ca.x; cv[1] = ca.y; cv[2] = ca.z; cv[3] = ca.w; cv[4] = cb.x; cv[5] = cb.y; cv[6] = cb.z; cv[7] = cb.w;
                sv[0] = sa.x; sv[1] = sa.y; sv[2] = sa.z; sv[3] = sa.w; sv[4] = sb.x; sv[5] = sb.y; sv[6] = sb.z; sv[7] = sb.w;
            }
            Bf16x8 o;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const float2 f = __bfloat1622float2(v[k].h[j]);
                const float na = __fmul_rn(round_bf16(__fmul_rn(f.x, r)), wv[2 * j]);
                const float nb = __fmul_rn(round_bf16(__fmul_rn(f.y, r)), wv[2 * j + 1]);
                float oa = na, ob = nb;
                if (Rope) {
                    oa = __fadd_rn(__fmul_rn(na, cv[2 * j]), __fmul_rn(nb, sv[2 * j]));
                    ob = __fadd_rn(__fmul_rn(nb, cv[2 * j + 1]), __fmul_rn(na, sv[2 * j + 1]));
                }
                o.h[j] = __floats2bfloat162_rn(oa, ob);
            }
            orow[i] = o;
        }
    }
}

template <int Items, int WarpsPerRow>
void launch_rmsnorm_rope_rows(const __nv_bfloat16* x, long x_row_stride, const float* w, const float* cos_t,
                              const float* sin_t, __nv_bfloat16* out, long rows, int D, int head_dim, float eps,
                              cudaStream_t stream) {
    constexpr int kRowsPerBlock = kWarpsPerBlock / WarpsPerRow;
    const unsigned blocks = static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock);
    if (cos_t)
        rmsnorm_rope_rows_kernel<Items, WarpsPerRow, true><<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(
            x, x_row_stride, w, cos_t, sin_t, out, rows, D, head_dim, eps);
    else
        rmsnorm_rope_rows_kernel<Items, WarpsPerRow, false><<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(
            x, x_row_stride, w, nullptr, nullptr, out, rows, D, head_dim, eps);
}

// Few warps per row while a lane holds at most four vectors; up to six with four warps (D ≤ 6144).
// Returns false when the row is too wide (the block-per-row kernel takes it).
template <int WarpsPerRow>
bool dispatch_rmsnorm_rope_rows(int items, const __nv_bfloat16* x, long x_row_stride, const float* w,
                                const float* cos_t, const float* sin_t, __nv_bfloat16* out, long rows, int D,
                                int head_dim, float eps, cudaStream_t stream) {
    const auto go = [&](auto launch) {
        launch(x, x_row_stride, w, cos_t, sin_t, out, rows, D, head_dim, eps, stream);
        return true;
    };
    switch (items) {
        case 1: return go(launch_rmsnorm_rope_rows<1, WarpsPerRow>);
        case 2: return go(launch_rmsnorm_rope_rows<2, WarpsPerRow>);
        case 3: return go(launch_rmsnorm_rope_rows<3, WarpsPerRow>);  // 1.3B: D 1536, two warps
        case 4: return go(launch_rmsnorm_rope_rows<4, WarpsPerRow>);
        case 5: return go(launch_rmsnorm_rope_rows<5, WarpsPerRow>);  // 14B: D 5120, four warps
        case 6: return go(launch_rmsnorm_rope_rows<6, WarpsPerRow>);
        default: return false;
    }
}

// Threads and items per thread for a row of n vectors: ≤ 256 threads, as few idle lanes as possible.
struct RowLaunch {
    int threads = 0, items = 0;
};
RowLaunch row_launch(int n) {
    RowLaunch l;
    l.items = (n + 255) / 256;
    const int per = (n + l.items - 1) / l.items;
    l.threads = std::max(32, (per + 31) / 32 * 32);
    return l;
}

// ---- Per-head FP8 quantisation of attention inputs (Note [FP8 attention] in attention_fp8.cpp) ----
// x is [B, S, H·d] bf16 rows. One thread owns one 8-element column group of a row (so one head) and walks
// kHeadRows rows: every reduction is per thread in registers, then one shared atomic per thread and one global
// atomic per head and block. The maxima are non-negative floats, so their bit patterns order like the values
// and integer atomicMax is exact.
constexpr int kHeadRows = 32;

__device__ __forceinline__ void load_bf16x8(const __nv_bfloat16* p, float f[8]) {
    const Bf16x8 v = *reinterpret_cast<const Bf16x8*>(p);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const float2 t = __bfloat1622float2(v.h[j]);
        f[2 * j] = t.x;
        f[2 * j + 1] = t.y;
    }
}

struct HeadRowsArgs {
    const __nv_bfloat16* x;
    long batch_stride, row_stride;  // elements
    long S;
    int W, d;  // row width H·d, head dim
};

// Rows [r0, r1) of this block; the first element of this thread's column group in batch blockIdx.y.
__device__ __forceinline__ const __nv_bfloat16* head_rows(const HeadRowsArgs& a, long& r0, long& r1) {
    r0 = static_cast<long>(blockIdx.x) * kHeadRows;
    r1 = min(a.S, r0 + kHeadRows);
    return a.x + blockIdx.y * a.batch_stride + threadIdx.x * 8;
}

// sums[b, W] += the column sums of this block's rows (the mean over S is sums / S).
__global__ void head_column_sums_kernel(HeadRowsArgs a, float* __restrict__ sums) {
    long r0, r1;
    const __nv_bfloat16* base = head_rows(a, r0, r1);
    float acc[8] = {};
    for (long r = r0; r < r1; ++r) {
        float f[8];
        load_bf16x8(base + r * a.row_stride, f);
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[j] += f[j];
    }
    float* out = sums + static_cast<long>(blockIdx.y) * a.W + threadIdx.x * 8;
#pragma unroll
    for (int j = 0; j < 8; ++j) atomicAdd(out + j, acc[j]);
}

// The means of this thread's 8 columns (zeros when not centring).
template <bool Centred>
__device__ __forceinline__ void column_means(const HeadRowsArgs& a, const float* sums, float mean[8]) {
#pragma unroll
    for (int j = 0; j < 8; ++j)
        mean[j] = Centred ? __fdiv_rn(sums[static_cast<long>(blockIdx.y) * a.W + threadIdx.x * 8 + j],
                                      static_cast<float>(a.S))
                          : 0.f;
}

// amax_bits[b, h] = max(amax_bits[b, h], bits of max |x - mean| over this block's rows of head h).
template <bool Centred>
__global__ void head_amax_kernel(HeadRowsArgs a, const float* __restrict__ sums, int* __restrict__ amax_bits) {
    extern __shared__ int head_max[];
    const int H = a.W / a.d;
    for (int i = threadIdx.x; i < H; i += blockDim.x) head_max[i] = 0;
    __syncthreads();
    long r0, r1;
    const __nv_bfloat16* base = head_rows(a, r0, r1);
    float mean[8];
    column_means<Centred>(a, sums, mean);
    float m = 0.f;
    for (long r = r0; r < r1; ++r) {
        float f[8];
        load_bf16x8(base + r * a.row_stride, f);
#pragma unroll
        for (int j = 0; j < 8; ++j) m = fmaxf(m, fabsf(Centred ? f[j] - mean[j] : f[j]));
    }
    atomicMax(&head_max[threadIdx.x * 8 / a.d], __float_as_int(m));
    __syncthreads();
    for (int i = threadIdx.x; i < H; i += blockDim.x)
        if (head_max[i] > 0) atomicMax(&amax_bits[blockIdx.y * H + i], head_max[i]);
}

// codes[b, s, :] = e4m3((x - mean) / scale[b, h]) with scale = max(amax, 1e-12) / 448, rounded as the ATen path
// rounds (f32 difference, f32 division, nearest e4m3).
template <bool Centred>
__global__ void quantize_heads_kernel(HeadRowsArgs a, const float* __restrict__ sums,
                                      const int* __restrict__ amax_bits, uint8_t* __restrict__ codes,
                                      float* __restrict__ scale) {
    const int H = a.W / a.d, h = threadIdx.x * 8 / a.d;
    const float sc = __fdiv_rn(fmaxf(__int_as_float(amax_bits[blockIdx.y * H + h]), 1e-12f), kFp8Max);
    if (blockIdx.x == 0 && (threadIdx.x * 8) % a.d == 0) scale[blockIdx.y * H + h] = sc;
    long r0, r1;
    const __nv_bfloat16* base = head_rows(a, r0, r1);
    float mean[8];
    column_means<Centred>(a, sums, mean);
    uint8_t* out = codes + static_cast<long>(blockIdx.y) * a.S * a.W + threadIdx.x * 8;
    for (long r = r0; r < r1; ++r) {
        float f[8];
        load_bf16x8(base + r * a.row_stride, f);
#pragma unroll
        for (int j = 0; j < 8; ++j) f[j] = __fdiv_rn(Centred ? f[j] - mean[j] : f[j], sc);
        *reinterpret_cast<uint2*>(out + r * a.W) =
            make_uint2(fp8x4(f[0], f[1], f[2], f[3]), fp8x4(f[4], f[5], f[6], f[7]));
    }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }
bool aligned8(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 7u) == 0; }

}  // namespace

void rmsnorm_rope(const void* x, long x_row_stride, const float* w, const float* cos_t, const float* sin_t, void* out,
                  long rows, int D, int head_dim, float eps, cudaStream_t stream) {
    const auto* xb = static_cast<const __nv_bfloat16*>(x);
    auto* ob = static_cast<__nv_bfloat16*>(out);
    const int n8 = D / 8;
    const bool vec = D % 8 == 0 && head_dim % 8 == 0 && x_row_stride % 8 == 0 && aligned16(x) && aligned16(w) &&
                     aligned16(out) && (!cos_t || (aligned16(cos_t) && aligned16(sin_t)));
    const auto items = [&](int warps) { return (n8 + 32 * warps - 1) / (32 * warps); };
    bool done = false;
    if (vec && items(1) <= 4)
        done = dispatch_rmsnorm_rope_rows<1>(items(1), xb, x_row_stride, w, cos_t, sin_t, ob, rows, D, head_dim, eps, stream);
    else if (vec && items(2) <= 4)
        done = dispatch_rmsnorm_rope_rows<2>(items(2), xb, x_row_stride, w, cos_t, sin_t, ob, rows, D, head_dim, eps, stream);
    else if (vec)
        done = dispatch_rmsnorm_rope_rows<4>(items(4), xb, x_row_stride, w, cos_t, sin_t, ob, rows, D, head_dim, eps, stream);
    if (done) return;
    if (cos_t)  // odd widths or strides: a block per row, scalar loads
        rmsnorm_rope_kernel<true><<<rows, kThreads, 0, stream>>>(xb, x_row_stride, w, cos_t, sin_t, ob, D, head_dim, eps);
    else
        rmsnorm_rope_kernel<false><<<rows, kThreads, 0, stream>>>(xb, x_row_stride, w, nullptr, nullptr, ob, D, head_dim, eps);
}

bool residual_norm_supported(int D) { return D % 4 == 0 && row_launch(D / 4).items <= kMaxItems; }

namespace {
template <bool Residual, NormKind Kind, typename TOut, bool RoundNorm>
void launch_residual_norm(float* x, const void* y, const float* gate, const float* p0, const float* p1, void* out,
                          float* row_scale, long rows, int D, long rows_per_batch, float eps, cudaStream_t stream) {
    const RowLaunch l = row_launch(D / 4);
    residual_norm_kernel<Residual, Kind, TOut, RoundNorm><<<rows, l.threads, 0, stream>>>(
        x, static_cast<const __nv_bfloat16*>(y), gate, p0, p1, static_cast<TOut*>(out), row_scale, D, rows_per_batch,
        l.items, eps);
}
}  // namespace

void residual_layernorm(float* x, const void* y, const float* gate, const float* p0, const float* p1, bool affine,
                        RowNormOut out_kind, void* out, float* row_scale, long rows, int D, long rows_per_batch,
                        float eps, cudaStream_t stream) {
    using bf16 = __nv_bfloat16;
    using fp8 = __nv_fp8_e4m3;
    // One instantiation per (kind, output, rounding), each with and without the residual update.
    const auto go = [&](auto with_residual, auto without_residual) {
        (y ? with_residual : without_residual)(x, y, gate, p0, p1, out, row_scale, rows, D, rows_per_batch, eps, stream);
    };
    if (affine) {  // norm3 (the cross-attention input): bf16, or FP8 for the FP8 GEMM
        if (out_kind == RowNormOut::FP8)
            go(launch_residual_norm<true, NormKind::Affine, fp8, false>, launch_residual_norm<false, NormKind::Affine, fp8, false>);
        else
            go(launch_residual_norm<true, NormKind::Affine, bf16, false>, launch_residual_norm<false, NormKind::Affine, bf16, false>);
        return;
    }
    constexpr NormKind M = NormKind::Modulate;
    switch (out_kind) {
        case RowNormOut::BF16: go(launch_residual_norm<true, M, bf16, false>, launch_residual_norm<false, M, bf16, false>); break;
        case RowNormOut::BF16RoundedNorm: go(launch_residual_norm<true, M, bf16, true>, launch_residual_norm<false, M, bf16, true>); break;
        case RowNormOut::F32: go(launch_residual_norm<true, M, float, false>, launch_residual_norm<false, M, float, false>); break;
        case RowNormOut::FP8: go(launch_residual_norm<true, M, fp8, false>, launch_residual_norm<false, M, fp8, false>); break;
        case RowNormOut::FP8RoundedNorm: go(launch_residual_norm<true, M, fp8, true>, launch_residual_norm<false, M, fp8, true>); break;
    }
}

bool quantize_rows_supported(int K) { return K > 0 && K % 8 == 0 && K / 8 <= 4 * 1024; }

void quantize_rows_fp8(const void* a, void* q, float* row_scale, long rows, int K, bool gelu, cudaStream_t stream) {
    const auto* ab = static_cast<const __nv_bfloat16*>(a);
    auto* qb = static_cast<uint8_t*>(q);
    if (gelu) launch_quantize_rows<true>(ab, qb, row_scale, rows, K, stream);
    else launch_quantize_rows<false>(ab, qb, row_scale, rows, K, stream);
}

bool quantize_heads_supported(int heads, int head_dim) {
    const long W = static_cast<long>(heads) * head_dim;
    return heads > 0 && head_dim > 0 && head_dim % 8 == 0 && W / 8 <= 1024;
}

void quantize_heads_fp8(const void* x, long batch_stride, long row_stride, int B, long S, int heads, int head_dim,
                        void* codes, float* scale, int* amax_bits, float* mean_sums, cudaStream_t stream) {
    const HeadRowsArgs a{static_cast<const __nv_bfloat16*>(x), batch_stride, row_stride, S, heads * head_dim,
                         head_dim};
    const dim3 grid(static_cast<unsigned>((S + kHeadRows - 1) / kHeadRows), static_cast<unsigned>(B));
    const int threads = a.W / 8;
    const size_t shared = sizeof(int) * heads;
    auto* q = static_cast<uint8_t*>(codes);
    if (mean_sums != nullptr) {
        head_column_sums_kernel<<<grid, threads, 0, stream>>>(a, mean_sums);
        head_amax_kernel<true><<<grid, threads, shared, stream>>>(a, mean_sums, amax_bits);
        quantize_heads_kernel<true><<<grid, threads, 0, stream>>>(a, mean_sums, amax_bits, q, scale);
    } else {
        head_amax_kernel<false><<<grid, threads, shared, stream>>>(a, nullptr, amax_bits);
        quantize_heads_kernel<false><<<grid, threads, 0, stream>>>(a, nullptr, amax_bits, q, scale);
    }
}

void gated_residual(float* x, const void* y, const float* gate, long rows, int D, long rows_per_batch,
                    cudaStream_t stream) {
    const long n = rows * D;
    if (D % 4 == 0 && aligned16(x) && aligned8(y) && aligned16(gate)) {
        const long n4 = n / 4;
        const int blocks = static_cast<int>(std::min<long>((n4 + kThreads - 1) / kThreads, 132L * 16));
        gated_residual_vec_kernel<<<blocks, kThreads, 0, stream>>>(x, static_cast<const __nv_bfloat16*>(y), gate, n4,
                                                                   D / 4, rows_per_batch);
        return;
    }
    const int blocks = static_cast<int>(std::min<long>((n + kThreads - 1) / kThreads, 65535L * 8));
    gated_residual_kernel<<<blocks, kThreads, 0, stream>>>(x, static_cast<const __nv_bfloat16*>(y), gate, n, D,
                                                           rows_per_batch);
}

}  // namespace wan::dit::cuda
