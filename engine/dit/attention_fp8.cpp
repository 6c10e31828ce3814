// FP8 self-attention: the switch's names and the per-head quantisation of q, k, v. The kernel call and the
// fallback are in layers.cpp (beside the bf16 FlashAttention-3 call they share their parameters with).
#include "dit/dit.h"
#include "dit/internal.h"

#include "core/core.h"
#include "core/env.h"
#include "dit/fused.h"

#include <ATen/ATen.h>

namespace wan::dit {

// Note [FP8 attention]
// FlashAttention-3 has an e4m3 forward: Q·Kᵀ and P·V on FP8 tensor cores, twice the bf16 rate on Hopper. It
// takes q, k, v as e4m3 with one f32 descale per (batch, head) and folds them into the softmax scale (q, k) and
// the final normalisation (v); it quantises P itself (after shifting the row maximum so that exp spans e4m3's
// range) and writes bf16. With ModelOptions::attention_fp8 the DiT's self-attention goes through it; the
// cross-attention (512 text keys, a few per cent of the time) stays bf16.
//
// The scales are computed on the fly from each call's tensors: scale[b][h] = amax over the tokens and the head
// dim / 448 (e4m3's largest value), so every head uses the whole range and none overflows. e4m3 keeps 3 mantissa
// bits: a rounding error of at most 2^-4 of each value, relative to the value itself, so what matters is how
// much of a head's magnitude is signal. K can carry a large offset common to all tokens (a bias after its RMS
// norm), and then its token-to-token differences, which are all softmax sees, drown in the offset's rounding.
// KMean subtracts K's mean over the tokens of each (batch, head) first (SageAttention's smoothing): for every
// query the logits move by the same q·mean, which softmax ignores, so the result is exact in real arithmetic and
// only the rounding changes. Q and V are not centred: V's mean would have to be added back to the output, and
// Q's offset only scales every logit of a row by the same amount.
//
// On CUDA the quantisation runs as two kernels per tensor (fused::quantize_heads_fp8: the amax per head, then
// the codes; a column-sum pass first for KMean), reading x twice and writing one byte per value. The ATen
// formulation below (abs, amax, an f32 division, the cast: ~6 passes with f32 intermediates) is the reference
// the kernels are tested against, and the path on the CPU and for layouts they do not take.
// WAN_FP8_HEADS_FUSED=0 keeps the ATen path on CUDA too (for measurements). V stays row-major, and the e4m3
// kernel transposes it tile by tile itself: handing it V column-major (the quantiser writing it so, and
// FlashAttention-3's V_colmajor variant) was measured slower on the H200 — the kernel by 2.3 % (192 keys per
// tile instead of 224), the transposing quantiser 3.6× — commit 3198bf8, docs/PERFORMANCE.md.
// Where the kernel cannot run (AttentionFp8's list) attention() logs why once and stays bf16. wan-bench `dit
// --fp8-attention 1 [--k-mean 1] --compare 1` measures speed and error against bf16;
// tests/gpu/test_attention_backends.cpp checks the error on random tensors and on a K with an offset;
// tests/dit/test_attention_fp8.cpp checks the quantisation on the CPU, tests/gpu/test_fused_kernels.cpp the
// kernels against it.

std::optional<AttentionFp8> parse_attention_fp8(const std::string& name) {
    if (name == "off" || name == "0") return AttentionFp8::Off;
    if (name == "on" || name == "1") return AttentionFp8::On;
    if (name == "kmean") return AttentionFp8::KMean;
    return std::nullopt;
}

const char* attention_fp8_name(AttentionFp8 mode) {
    switch (mode) {
        case AttentionFp8::On: return "on";
        case AttentionFp8::KMean: return "kmean";
        default: return "off";
    }
}

Fp8Heads quantize_heads_fp8(const at::Tensor& x, bool subtract_mean) {
    WAN_CHECK(x.dim() == 4 && x.size(1) > 0, "quantize_heads_fp8: expected a [B, S, H, d] tensor with S > 0, got %s",
              detail::shape_string(x.sizes()).c_str());
    // The mean is accumulated in f32 and the difference kept in f32 (bf16 - f32 tensor promotes).
    const at::Tensor xf = subtract_mean ? x - x.mean(1, /*keepdim=*/true, at::kFloat) : x;
    // amax of bf16 values is exact in bf16; the division (by a tensor, as in quantize_fp8) promotes to f32.
    const at::Tensor amax = xf.abs().amax({1, 3}).to(at::kFloat);  // [B, H]
    const at::Tensor scale = amax.clamp_min(1e-12) / at::full({}, detail::kE4m3Max, amax.options());
    const at::Tensor scaled = xf / scale.view({x.size(0), 1, x.size(2), 1});  // f32, |v| ≤ 448
    return {detail::encode_e4m3(scaled).contiguous(), scale.contiguous()};
}

namespace detail {

Fp8Heads quantize_attention_heads_fp8(const at::Tensor& x, bool subtract_mean) {
    static const bool fused_allowed = env_flag("WAN_FP8_HEADS_FUSED", true);
    if (fused_allowed && fused::heads_fp8_supported(x)) return fused::quantize_heads_fp8(x, subtract_mean);
    return quantize_heads_fp8(x, subtract_mean);
}

}  // namespace detail

}  // namespace wan::dit
