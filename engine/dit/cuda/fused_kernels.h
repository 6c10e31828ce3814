// Private to engine/dit: launchers of the fused CUDA kernels (raw pointers; bf16 passed as void*).
#pragma once

#include <cuda_runtime.h>

namespace wan::dit::cuda {

/// out[rows, D] bf16 = rope(bf16(RMS(x)) · w) (rope skipped when cos_t is null); tables [rows, head_dim] f32.
void rmsnorm_rope(const void* x, long x_row_stride, const float* w, const float* cos_t, const float* sin_t, void* out, long rows, int D,
                  int head_dim, float eps, cudaStream_t stream);
/// True when residual_layernorm handles rows of D floats (D % 4 == 0, D ≤ 8192).
bool residual_norm_supported(int D);
/// What residual_layernorm stores: bf16; bf16 with LN(x) rounded to bf16 before the modulation (block 0's
/// norm1); f32 (the head); FP8 e4m3 rows with one f32 scale per row (amax/448) for the FP8 GEMMs, likewise
/// with the rounded norm.
enum class RowNormOut { BF16, BF16RoundedNorm, F32, FP8, FP8RoundedNorm };
/// x[rows, D] f32 += y (bf16; · gate[b] when gate is not null), then out = LN(x)·(1 + p0[b]) + p1[b]
/// (modulate: p0/p1 = scale/shift [B, D]) or LN(x)·p0 + p1 (affine: weight/bias [D]; bf16 or FP8 out).
/// y null: no update. row_scale [rows] f32 for the FP8 outputs, else null. Pointers 16-byte aligned (y and
/// bf16/FP8 outputs 8/4-byte); see residual_norm_supported.
void residual_layernorm(float* x, const void* y, const float* gate, const float* p0, const float* p1, bool affine,
                        RowNormOut out_kind, void* out, float* row_scale, long rows, int D, long rows_per_batch,
                        float eps, cudaStream_t stream);
/// True when quantize_rows_fp8 takes rows of K values: K % 8 == 0 and K ≤ 32768 (a row held in registers).
bool quantize_rows_supported(int K);
/// q[rows, K] FP8 e4m3 = a / row_scale with row_scale[r] = amax(row r)/448; a bf16 [rows, K] (see
/// quantize_rows_supported), 16-byte aligned; gelu: the tanh GELU of a is quantised instead.
void quantize_rows_fp8(const void* a, void* q, float* row_scale, long rows, int K, bool gelu, cudaStream_t stream);
/// True when quantize_heads_fp8 handles rows of `heads` heads of `head_dim` (head_dim % 8 == 0,
/// heads·head_dim ≤ 8192).
bool quantize_heads_supported(int heads, int head_dim);
/// Per-(batch, head) FP8 of attention inputs (Note [FP8 attention]): x [B, S, heads·head_dim] bf16 rows (strides
/// in elements, multiples of 8; 16-byte aligned) → codes [B, S, heads·head_dim] e4m3 (contiguous) and scale
/// [B, heads] f32 = max(amax, 1e-12)/448 of x, or of x minus its mean over S when mean_sums (f32
/// [B, heads·head_dim], zeroed) is given. amax_bits: int [B, heads] scratch, zeroed by the caller.
void quantize_heads_fp8(const void* x, long batch_stride, long row_stride, int B, long S, int heads, int head_dim,
                        void* codes, float* scale, int* amax_bits, float* mean_sums, cudaStream_t stream);
/// x[rows, D] f32 += y (bf16) · gate[b] (f32 [B, D]).
void gated_residual(float* x, const void* y, const float* gate, long rows, int D, long rows_per_batch,
                    cudaStream_t stream);

}  // namespace wan::dit::cuda
