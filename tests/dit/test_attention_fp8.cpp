// FP8 attention's quantisation on the CPU (Note [FP8 attention] in dit/attention_fp8.cpp): the per-(batch, head)
// scales and codes against e4m3's rounding bound, K's mean subtraction, an all-zero head; attention on the
// dequantised q, k, v (everything the kernel adds is its own rounding of P) showing what the mean subtraction
// buys for a K with a common offset; the CPU fallback; the switch's names. The kernel itself:
// tests/gpu/test_attention_backends.cpp.
#include "core/core.h"
#include "dit/dit.h"
#include "io/io.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

namespace {

using wan::dit::AttentionFp8;
using wan::dit::Fp8Heads;

/// decode(codes) · scale[b][h]: the values the kernel computes with.
at::Tensor dequantize(const Fp8Heads& h) {
    return wan::io::float8_e4m3_decode(h.codes) * h.scale.view({h.scale.size(0), 1, h.scale.size(1), 1});
}

/// 10·log10(mean square of ref / mean square of (got − ref)).
double snr_db(const at::Tensor& got, const at::Tensor& ref) {
    return 10 * std::log10(ref.pow(2).mean().item<double>() / (got - ref).pow(2).mean().item<double>());
}

/// [B, S, H, d] normal values with head h scaled by 10^h (heads of very different sizes).
at::Tensor heads_of_different_sizes(int64_t B, int64_t S, int64_t H, int64_t d) {
    const at::Tensor mag = at::pow(10.0, at::arange(H, at::kFloat)).view({1, 1, H, 1});
    return at::randn({B, S, H, d}) * mag;
}

TEST(AttentionFp8, EachHeadIsScaledToE4m3sRangeAndRoundedToTheNearestCode) {
    c10::InferenceMode guard;
    at::manual_seed(3);
    const at::Tensor x = heads_of_different_sizes(2, 300, 3, 16);
    const Fp8Heads h = wan::dit::quantize_heads_fp8(x, /*subtract_mean=*/false);
    ASSERT_EQ(h.codes.sizes(), x.sizes());
    ASSERT_EQ(h.codes.scalar_type(), at::kByte);
    ASSERT_EQ(h.scale.sizes(), (std::vector<int64_t>{2, 3}));
    ASSERT_TRUE(h.codes.is_contiguous() && h.scale.is_contiguous());
    // One scale per (batch, head): amax over the tokens and the head dim, over 448.
    EXPECT_TRUE(at::allclose(h.scale, x.abs().amax({1, 3}) / 448.0, 1e-6, 0));
    // The largest value of each head becomes ±448 exactly.
    const at::Tensor decoded = wan::io::float8_e4m3_decode(h.codes);
    EXPECT_TRUE(at::allclose(decoded.abs().amax({1, 3}), at::full({2, 3}, 448.0f), 0, 1e-4));
    // Nearest e4m3: within half a step, 2^-4 of the value itself for normal numbers (3 mantissa bits), and half
    // of the subnormal step 2^-9 (times the scale) below 2^-6.
    const at::Tensor s = h.scale.view({2, 1, 3, 1});
    const at::Tensor err = (dequantize(h) - x).abs();
    const at::Tensor bound = at::maximum(x.abs() * std::ldexp(1.0, -4), s * std::ldexp(1.0, -10)) * (1 + 1e-5);
    EXPECT_TRUE(at::all(err <= bound).item<bool>()) << "worst excess " << (err - bound).max().item<double>();
}

TEST(AttentionFp8, KMeanSubtractsEachHeadsMeanOverTheTokens) {
    c10::InferenceMode guard;
    at::manual_seed(4);
    const at::Tensor offset = at::randn({1, 1, 4, 32}) * 20;
    const at::Tensor k = at::randn({2, 200, 4, 32}) + offset;
    const Fp8Heads h = wan::dit::quantize_heads_fp8(k, /*subtract_mean=*/true);
    const at::Tensor centred = k - k.mean(1, /*keepdim=*/true);
    EXPECT_TRUE(at::allclose(h.scale, centred.abs().amax({1, 3}) / 448.0, 1e-5, 0));
    EXPECT_GT(snr_db(dequantize(h), centred), 25);  // e4m3 of values that are all signal
    // Without it the offset takes the range: the scale is set by |offset| and the signal is coarsely rounded.
    const Fp8Heads raw = wan::dit::quantize_heads_fp8(k, /*subtract_mean=*/false);
    EXPECT_GT(raw.scale.min().item<double>(), 5 * h.scale.max().item<double>());
}

TEST(AttentionFp8, AnAllZeroHeadGivesZeroCodesAndAFiniteScale) {
    c10::InferenceMode guard;
    at::Tensor x = at::randn({1, 64, 2, 16});
    x.select(2, 1).zero_();
    for (const bool mean : {false, true}) {
        const Fp8Heads h = wan::dit::quantize_heads_fp8(x, mean);
        EXPECT_TRUE(at::all(at::isfinite(h.scale)).item<bool>());
        EXPECT_GT(h.scale[0][1].item<float>(), 0.f);
        EXPECT_TRUE(at::all(h.codes.select(2, 1) == 0).item<bool>());
    }
}

TEST(AttentionFp8, RejectsATensorThatIsNotBSHD) {
    try {
        (void)wan::dit::quantize_heads_fp8(at::zeros({4, 16}), false);
        ADD_FAILURE() << "expected wan::Error";
    } catch (const wan::Error& e) {
        EXPECT_NE(std::string(e.what()).find("quantize_heads_fp8: expected a [B, S, H, d] tensor"), std::string::npos)
            << e.what();
    }
}

// softmax(q·kᵀ/√d)·v on the dequantised tensors against the same on the originals: the error of the inputs'
// quantisation alone. For a K with a large common offset, subtracting its mean must bring the error back to what
// an offset-free K gives, and without it the error must be far larger.
TEST(AttentionFp8, KMeanRemovesTheErrorOfACommonKeyOffset) {
    c10::InferenceMode guard;
    at::manual_seed(5);
    const int64_t B = 1, S = 512, H = 2, d = 128;
    const at::Tensor q = at::randn({B, S, H, d}), v = at::randn({B, S, H, d});
    const at::Tensor k0 = at::randn({B, S, H, d});
    const at::Tensor k = k0 + at::randn({1, 1, H, d}) * 16;  // every token shifted by the same vector
    const auto emulated = [&](const at::Tensor& kk, bool k_mean) {
        const at::Tensor qd = dequantize(wan::dit::quantize_heads_fp8(q, false));
        const at::Tensor kd = dequantize(wan::dit::quantize_heads_fp8(kk, k_mean));
        const at::Tensor vd = dequantize(wan::dit::quantize_heads_fp8(v, false));
        return wan::dit::attention(qd, kd, vd);
    };
    const double plain = snr_db(emulated(k0, false), wan::dit::attention(q, k0, v));
    const at::Tensor ref = wan::dit::attention(q, k, v);
    const double offset_raw = snr_db(emulated(k, false), ref), offset_kmean = snr_db(emulated(k, true), ref);
    std::printf("[fp8 attention] emulated SNR: plain K %.1f dB; offset K %.1f dB, with K mean %.1f dB\n", plain,
                offset_raw, offset_kmean);
    EXPECT_GT(plain, 25);
    EXPECT_GT(offset_kmean, plain - 1);
    EXPECT_LT(offset_raw, offset_kmean - 10);
}

TEST(AttentionFp8, TheCpuRunsTheUsualAttention) {
    c10::InferenceMode guard;
    at::manual_seed(6);
    const at::Tensor q = at::randn({1, 40, 2, 16}), k = at::randn({1, 40, 2, 16}), v = at::randn({1, 40, 2, 16});
    const at::Tensor want = wan::dit::attention(q, k, v, 30);
    for (const AttentionFp8 mode : {AttentionFp8::On, AttentionFp8::KMean})
        EXPECT_TRUE(at::equal(wan::dit::attention(q, k, v, 30, wan::dit::AttentionBackend::Auto, mode), want));
    EXPECT_NE(wan::dit::flash_attention3_fp8_misfit(q, k, v), "");
}

TEST(AttentionFp8, NamesRoundTrip) {
    for (const AttentionFp8 mode : {AttentionFp8::Off, AttentionFp8::On, AttentionFp8::KMean})
        EXPECT_EQ(wan::dit::parse_attention_fp8(wan::dit::attention_fp8_name(mode)), mode);
    EXPECT_EQ(wan::dit::parse_attention_fp8("1"), AttentionFp8::On);
    EXPECT_EQ(wan::dit::parse_attention_fp8("0"), AttentionFp8::Off);
    EXPECT_FALSE(wan::dit::parse_attention_fp8("fp8").has_value());
}

}  // namespace
