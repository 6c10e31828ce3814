// Private to engine/dit: fused elementwise work of the DiT block on CUDA.
//
// Note [Fused block kernels]
// Between its GEMMs and attention, a DiT block runs ~45 elementwise kernels over [S, D] tensors (LayerNorm,
// modulation, q/k RMS norms, RoPE, dtype casts, gated residuals); at 480p that is ~0.2 s of a 0.68 s forward
// on the H100, all memory traffic. Three kernels do the same arithmetic in one pass each, with upstream's
// order of f32 operations and bf16 roundings (no FMA contraction):
//   layernorm_modulate: bf16(LN(x)·(1+scale)+shift)                   (self-attention and FFN inputs)
//   rmsnorm_rope:       bf16(rope(bf16(RMS(q))·w)) per head            (q and k; no rope for cross-attn q)
//   gated_residual_:    x += f32(y)·gate                                (both gated residuals)
// and, to save a pass over x each, the residual update folded into the norm that follows it:
//   add_layernorm_affine_:   x += f32(y)·gate, then norm3 (self-attention residual → cross-attention input)
//   add_layernorm_modulate_: x += f32(y)(·gate), then LN·(1+scale)+shift (cross-attention residual → FFN
//                            input; the FFN residual → the next block's self-attention input)
// The FFN's first GEMM takes the GELU in its cuBLASLt epilogue (linear_gelu): the f32 pre-activation goes
// through the tanh GELU before the one rounding to bf16, where upstream rounds twice (measured closer to the
// exact f32 result, docs/PERFORMANCE.md).
// The paths that use them are in kernels.cpp. ModelOptions::fused_kernels = false (env WAN_FUSED=0) disables them.
#pragma once

#include "dit/dit.h"

#include <ATen/core/Tensor.h>

namespace wan::dit::fused {

/// True when the kernels were built (CUDA) and `device` is a CUDA device.
bool available(c10::Device device);
/// x [B, S, D] bf16 (rows may be strided, e.g. a narrow of a fused QKV output), w [D] f32, rope tables
/// f32 [B, S, 1, d] or null → [B, S, H, d] bf16.
at::Tensor rmsnorm_rope(const at::Tensor& x, const at::Tensor& w, const RopeTables* rope, int64_t heads, double eps);
/// x [B, S, D] f32, scale/shift [B, 1, D] f32 → bf16(LN(x)·(1 + scale) + shift) [B, S, D]. round_norm_bf16:
/// LN(x) rounded to bf16 first (block 0's norm1: upstream's LayerNorm returns the bf16 input dtype there).
at::Tensor layernorm_modulate(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& shift, double eps,
                              bool round_norm_bf16 = false);
/// x [B, S, D] f32 → bf16(LN(x)·w + b) (norm3, the cross-attention input).
at::Tensor layernorm_affine(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, double eps);
/// x [B, S, D] f32 (contiguous, modified in place) += y [B, S, D] bf16 · gate [B, 1, D] f32.
void gated_residual_(at::Tensor& x, const at::Tensor& y, const at::Tensor& gate);
/// x [B, S, D] f32 (contiguous, in place) += y [B, S, D] (· gate [B, 1, D] f32 when defined), then returns
/// bf16(LN(x)·(1 + scale) + shift), scale/shift [B, 1, D] f32.
at::Tensor add_layernorm_modulate_(at::Tensor& x, const at::Tensor& y, const at::Tensor& gate, const at::Tensor& scale,
                                   const at::Tensor& shift, double eps);
/// As add_layernorm_modulate_ (y may be undefined: no update) with an f32 result: the head's input.
at::Tensor add_layernorm_modulate_f32_(at::Tensor& x, const at::Tensor& y, const at::Tensor& gate,
                                       const at::Tensor& scale, const at::Tensor& shift, double eps);
/// As add_layernorm_modulate_ with the affine LayerNorm: bf16(LN(x)·w + b), w/b [D] f32.
at::Tensor add_layernorm_affine_(at::Tensor& x, const at::Tensor& y, const at::Tensor& gate, const at::Tensor& w,
                                 const at::Tensor& b, double eps);
/// Rows quantised to FP8 e4m3 with one f32 scale per row: row r ≈ q[r] · scale[r] (Note [FP8 linears]).
struct Fp8Rows {
    at::Tensor q;      ///< [M, K] Float8_e4m3fn
    at::Tensor scale;  ///< [M, 1] f32 (amax/448)
};
/// As add_layernorm_modulate_ (affine = false; p0/p1 = scale/shift) or add_layernorm_affine_ (affine = true;
/// p0/p1 = weight/bias), y may be undefined, with the result quantised per row to FP8 in the same pass:
/// the input of an FP8 GEMM without a bf16 round trip.
Fp8Rows layernorm_fp8_(at::Tensor& x, const at::Tensor& y, const at::Tensor& gate, const at::Tensor& p0,
                       const at::Tensor& p1, bool affine, bool round_norm_bf16, double eps);
/// True when quantize_heads_fp8 below takes x: a bf16 [B, S, H, d] CUDA tensor whose heads are contiguous within
/// a row (strides [*, *, d, 1]; batch and row strides multiples of 8 elements, 16-byte aligned), fused kernels
/// built, H·d ≤ 8192.
bool heads_fp8_supported(const at::Tensor& x);
/// wan::dit::quantize_heads_fp8 (Note [FP8 attention]) in two CUDA passes over x (amax, then codes; three with
/// subtract_mean: column sums first) instead of ~6 ATen passes with f32 intermediates. The same codes and scales
/// bit for bit; with subtract_mean the mean is summed in another order (f32 rounding apart).
Fp8Heads quantize_heads_fp8(const at::Tensor& x, bool subtract_mean);
/// a [..., K] bf16 (K % 8 == 0) → FP8 rows [M, K]; gelu: quantises gelu_tanh(a) (the FFN hidden layer; tanh by
/// the hardware approximation, 2^-11 relative, far below the e4m3 step).
Fp8Rows quantize_rows_fp8(const at::Tensor& a, bool gelu);
/// gelu_tanh(x·wᵀ + b) with the GELU in the GEMM epilogue (torch ≥ 2.0; else GEMM then GELU). x [..., K].
at::Tensor linear_gelu(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);

}  // namespace wan::dit::fused
