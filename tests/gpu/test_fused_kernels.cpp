// The fused DiT kernels (dit/fused.h) at the real model widths (1.3B: D 1536, 12 heads; 14B: D 5120, 40 heads)
// against the same arithmetic in ATen ops, on CUDA. The kernels round to bf16 once where ATen does, so the
// outputs agree to one bf16 rounding step (f32 sums taken in another order); the residual stream x, kept in
// f32, agrees to f32 rounding. Label gpu: built only where CUDA is built in.
#include "dit/dit.h"
#include "dit/fused.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

namespace {

c10::TensorOptions f32() { return at::TensorOptions().device(at::kCUDA).dtype(at::kFloat); }

/// max |a - b| / max |b|
double rel_err(const at::Tensor& a, const at::Tensor& b) {
    const at::Tensor x = a.to(at::kDouble), y = b.to(at::kDouble);
    return ((x - y).abs().max() / y.abs().max().clamp_min(1e-12)).item<double>();
}

/// Fraction of elements whose bf16 values differ (one rounding step apart at most, checked separately).
double mismatch(const at::Tensor& a, const at::Tensor& b) { return a.ne(b).to(at::kDouble).mean().item<double>(); }

class FusedKernels : public ::testing::TestWithParam<int64_t> {
protected:
    void SetUp() override {
        if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
        at::manual_seed(7);
    }
    c10::InferenceMode guard;
    const int64_t B = 2, S = 999;  // odd row count: partial tails everywhere
};

TEST_P(FusedKernels, AddLayerNormModulateMatchesATen) {
    const int64_t D = GetParam();
    const at::Tensor x0 = at::randn({B, S, D}, f32()) * 3;
    const at::Tensor y = at::randn({B, S, D}, f32()).to(at::kBFloat16);
    const at::Tensor gate = at::randn({B, 1, D}, f32()), scale = at::randn({B, 1, D}, f32()) * 0.1,
                     shift = at::randn({B, 1, D}, f32()) * 0.1;
    for (bool gated : {true, false}) {
        at::Tensor x = x0.clone();
        const at::Tensor out = wan::dit::fused::add_layernorm_modulate_(x, y, gated ? gate : at::Tensor(), scale, shift, 1e-6);
        const at::Tensor xr = gated ? x0 + y.to(at::kFloat) * gate : x0 + y.to(at::kFloat);
        const at::Tensor ref = (at::layer_norm(xr, {D}, {}, {}, 1e-6) * (1 + scale) + shift).to(at::kBFloat16);
        EXPECT_TRUE(at::equal(x, xr)) << "residual stream, gated " << gated;
        EXPECT_LT(rel_err(out, ref), 1e-2) << "gated " << gated;
        EXPECT_LT(mismatch(out, ref), 2e-2) << "gated " << gated;
        std::printf("[fused] D %lld add_layernorm_modulate gated %d: rel err %.3g, bf16 mismatches %.3g\n",
                    static_cast<long long>(D), gated, rel_err(out, ref), mismatch(out, ref));
    }
    // Without a residual; then block 0's norm1, whose LayerNorm output upstream rounds to bf16 first.
    const at::Tensor ln = at::layer_norm(x0, {D}, {}, {}, 1e-6);
    const at::Tensor out = wan::dit::fused::layernorm_modulate(x0, scale, shift, 1e-6);
    EXPECT_LT(mismatch(out, (ln * (1 + scale) + shift).to(at::kBFloat16)), 2e-2);
    const at::Tensor out0 = wan::dit::fused::layernorm_modulate(x0, scale, shift, 1e-6, /*round_norm_bf16=*/true);
    const at::Tensor ref0 = (ln.to(at::kBFloat16).to(at::kFloat) * (1 + scale) + shift).to(at::kBFloat16);
    EXPECT_LT(mismatch(out0, ref0), 2e-2);
    EXPECT_GT(mismatch(out0, (ln * (1 + scale) + shift).to(at::kBFloat16)), mismatch(out0, ref0));
    // The head: f32 out, with and without the last residual update.
    for (bool with_residual : {true, false}) {
        at::Tensor x = x0.clone();
        const at::Tensor h = wan::dit::fused::add_layernorm_modulate_f32_(x, with_residual ? y : at::Tensor(), gate, scale, shift, 1e-6);
        const at::Tensor xr = with_residual ? x0 + y.to(at::kFloat) * gate : x0;
        ASSERT_EQ(h.scalar_type(), at::kFloat);
        EXPECT_TRUE(at::equal(x, xr));
        const double e = rel_err(h, at::layer_norm(xr, {D}, {}, {}, 1e-6) * (1 + scale) + shift);
        EXPECT_LT(e, 1e-5) << "head, residual " << with_residual;
    }
}

TEST_P(FusedKernels, AddLayerNormAffineMatchesATen) {
    const int64_t D = GetParam();
    at::Tensor x = at::randn({B, S, D}, f32());
    const at::Tensor x0 = x.clone();
    const at::Tensor y = at::randn({B, S, D}, f32()).to(at::kBFloat16);
    const at::Tensor gate = at::randn({B, 1, D}, f32()), w = at::randn({D}, f32()), b = at::randn({D}, f32());
    const at::Tensor out = wan::dit::fused::add_layernorm_affine_(x, y, gate, w, b, 1e-6);
    const at::Tensor xr = x0 + y.to(at::kFloat) * gate;
    const at::Tensor ref = at::layer_norm(xr, {D}, w, b, 1e-6).to(at::kBFloat16);
    EXPECT_TRUE(at::equal(x, xr));
    EXPECT_LT(rel_err(out, ref), 1e-2);
    EXPECT_LT(mismatch(out, ref), 2e-2);
}

TEST_P(FusedKernels, GatedResidualMatchesATen) {
    const int64_t D = GetParam();
    at::Tensor x = at::randn({B, S, D}, f32());
    const at::Tensor x0 = x.clone();
    const at::Tensor y = at::randn({B, S, D}, f32()).to(at::kBFloat16), gate = at::randn({B, 1, D}, f32());
    wan::dit::fused::gated_residual_(x, y, gate);
    EXPECT_TRUE(at::equal(x, x0 + y.to(at::kFloat) * gate));
}

TEST_P(FusedKernels, RmsNormRopeMatchesATen) {
    const int64_t D = GetParam(), d = 128, H = D / d;
    const wan::dit::Grid g{3, 9, 37};  // 999 tokens
    const auto rope = wan::dit::rope_tables({g, g}, d, S, 0, at::kFloat, c10::Device(at::kCUDA));
    // q as a view of a fused [B, S, 3D] QKV output, as the block hands it over.
    const at::Tensor qkv = at::randn({B, S, 3 * D}, f32()).to(at::kBFloat16);
    const at::Tensor q = qkv.narrow(2, D, D), w = at::rand({D}, f32()) + 0.5;
    const at::Tensor out = wan::dit::fused::rmsnorm_rope(q, w, &rope, H, 1e-6);
    const at::Tensor qf = q.to(at::kFloat);
    const at::Tensor n = (qf * at::rsqrt(qf.pow(2).mean(-1, true) + 1e-6)).to(at::kBFloat16) * w;  // f32
    const at::Tensor ref = wan::dit::apply_rope(n.view({B, S, H, d}), rope).to(at::kBFloat16);
    EXPECT_LT(rel_err(out, ref), 1e-2);
    EXPECT_LT(mismatch(out, ref), 2e-2);
    const at::Tensor plain = wan::dit::fused::rmsnorm_rope(q, w, nullptr, H, 1e-6);
    EXPECT_LT(mismatch(plain, n.to(at::kBFloat16).view({B, S, H, d})), 2e-2);
}

TEST_P(FusedKernels, LinearGeluMatchesGemmThenGelu) {
    const int64_t D = GetParam();
    const at::Tensor x = at::randn({B, 257, D}, f32()).to(at::kBFloat16);
    const at::Tensor w = (at::randn({4 * D, D}, f32()) / std::sqrt(static_cast<double>(D))).to(at::kBFloat16);
    const at::Tensor b = (at::randn({4 * D}, f32()) * 0.1).to(at::kBFloat16);
    const at::Tensor out = wan::dit::fused::linear_gelu(x, w, b);
    const at::Tensor exact = at::gelu(at::linear(x.to(at::kFloat), w.to(at::kFloat), b.to(at::kFloat)), "tanh");
    const at::Tensor twice = at::gelu(at::linear(x, w, b), "tanh");  // upstream: rounds before and after the GELU
    ASSERT_EQ(out.sizes(), twice.sizes());
    std::printf("[fused] D %lld linear_gelu: epilogue rel err %.3g, GEMM-then-GELU rel err %.3g (vs f32)\n",
                static_cast<long long>(D), rel_err(out, exact), rel_err(twice, exact));
    EXPECT_LT(rel_err(out, exact), 1e-2);
    EXPECT_LE(rel_err(out, exact), rel_err(twice, exact) * 1.5);
}

#if WAN_TORCH_VERSION >= 205
// FP8 rows for the FP8 GEMMs: e4m3 keeps 3 mantissa bits, so each value is within 1/16 of itself (relative)
// or of the row's smallest step; the scale is the row's amax / 448.
TEST_P(FusedKernels, Fp8RowsDequantiseToTheNormOutput) {
    const int64_t D = GetParam();
    at::Tensor x = at::randn({B, S, D}, f32());
    const at::Tensor x0 = x.clone();
    const at::Tensor y = at::randn({B, S, D}, f32()).to(at::kBFloat16);
    const at::Tensor gate = at::randn({B, 1, D}, f32()), scale = at::randn({B, 1, D}, f32()) * 0.1,
                     shift = at::randn({B, 1, D}, f32()) * 0.1;
    const auto r = wan::dit::fused::layernorm_fp8_(x, y, gate, scale, shift, /*affine=*/false, false, 1e-6);
    const at::Tensor xr = x0 + y.to(at::kFloat) * gate;
    EXPECT_TRUE(at::equal(x, xr));
    const at::Tensor ref = (at::layer_norm(xr, {D}, {}, {}, 1e-6) * (1 + scale) + shift).reshape({B * S, D});
    ASSERT_EQ(r.q.scalar_type(), at::kFloat8_e4m3fn);
    ASSERT_EQ(r.q.sizes(), ref.sizes());
    const at::Tensor deq = r.q.to(at::kFloat) * r.scale;
    EXPECT_LT(rel_err(deq, ref), 0.07);
    EXPECT_LT(rel_err(r.scale, ref.abs().amax(1, true) / 448.0), 1e-5);
    const double snr = 10 * std::log10(ref.pow(2).mean().item<double>() / (deq - ref).pow(2).mean().item<double>());
    std::printf("[fused] D %lld layernorm_fp8_: max rel err %.3g, SNR %.1f dB\n", static_cast<long long>(D),
                rel_err(deq, ref), snr);
    EXPECT_GT(snr, 25.0);
}

TEST_P(FusedKernels, Fp8RowsOfTheGeluHiddenLayer) {
    const int64_t F = GetParam() * 4;
    const at::Tensor h = (at::randn({S, F}, f32()) * 2).to(at::kBFloat16);
    const auto r = wan::dit::fused::quantize_rows_fp8(h, /*gelu=*/true);
    const at::Tensor ref = at::gelu(h.to(at::kFloat), "tanh");
    const at::Tensor deq = r.q.to(at::kFloat) * r.scale;
    EXPECT_LT(rel_err(deq, ref), 0.07);
    const auto plain = wan::dit::fused::quantize_rows_fp8(h, /*gelu=*/false);
    EXPECT_LT(rel_err(plain.q.to(at::kFloat) * plain.scale, h.to(at::kFloat)), 0.07);
}

// FP8 attention's per-head quantisation (Note [FP8 attention]): the fused kernels give the ATen reference's codes
// and scales bit for bit, on a contiguous tensor and on a strided view like v (a third of the fused QKV rows);
// centred (K-mean), the mean is summed in another order, so a code may move by one step where a value sits on a
// rounding boundary.
TEST_P(FusedKernels, Fp8HeadsEqualTheATenQuantisation) {
    const int64_t D = GetParam(), H = D / 128;
    const at::Tensor qkv = (at::randn({B, S, 3 * D}, f32()) * 2 + 0.5).to(at::kBFloat16);
    const at::Tensor v = qkv.narrow(2, 2 * D, D).view({B, S, H, 128});  // rows of 3·D: a strided view
    const at::Tensor q = qkv.narrow(2, 0, D).contiguous().view({B, S, H, 128});
    for (const at::Tensor* x : {&q, &v}) {
        ASSERT_TRUE(wan::dit::fused::heads_fp8_supported(*x));
        const wan::dit::Fp8Heads fused = wan::dit::fused::quantize_heads_fp8(*x, false);
        const wan::dit::Fp8Heads ref = wan::dit::quantize_heads_fp8(*x, false);
        ASSERT_EQ(fused.codes.sizes(), ref.codes.sizes());
        EXPECT_TRUE(at::equal(fused.scale, ref.scale));
        EXPECT_TRUE(at::equal(fused.codes, ref.codes)) << "codes differ at " << mismatch(fused.codes, ref.codes);
    }
    const wan::dit::Fp8Heads fused = wan::dit::fused::quantize_heads_fp8(v, true);
    const wan::dit::Fp8Heads ref = wan::dit::quantize_heads_fp8(v, true);
    EXPECT_LT(rel_err(fused.scale, ref.scale), 1e-5);
    const double moved = mismatch(fused.codes, ref.codes);
    std::printf("[fused] D %lld centred heads: %.2g of the codes differ from ATen's\n", static_cast<long long>(D),
                moved);
    EXPECT_LT(moved, 1e-3);
    // One e4m3 step: 2^-3 of the value (3 mantissa bits), or the smallest subnormal 2^-9 near zero.
    const at::Tensor a = fused.codes.view(at::kFloat8_e4m3fn).to(at::kFloat),
                     b = ref.codes.view(at::kFloat8_e4m3fn).to(at::kFloat);
    EXPECT_TRUE(((a - b).abs() <= at::clamp_min(b.abs() * 0.125, 1.0 / 512)).all().item<bool>());
    EXPECT_FALSE(wan::dit::fused::heads_fp8_supported(q.to(at::kFloat)));
    EXPECT_FALSE(wan::dit::fused::heads_fp8_supported(q.transpose(1, 2)));
}
#endif

INSTANTIATE_TEST_SUITE_P(ModelWidths, FusedKernels, ::testing::Values(1536, 5120));

}  // namespace
