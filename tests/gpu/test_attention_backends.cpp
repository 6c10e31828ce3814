// The DiT's attention backends on CUDA (dit/dit.h AttentionBackend) at the real head dim (128) against exact
// attention computed in f32: cuDNN always; FlashAttention-3 where the build has it (WAN_TEST_FLASH3). The
// q/k/v are strided views of one [B, S, 3, H, d] tensor, as the fused QKV projection leaves them, and the
// sequence lengths leave partial tiles (odd and even tile counts: FlashAttention-3 launches clusters of two
// CTAs only for an even count). FP8 attention (FlashAttention-3's e4m3 forward) against the same exact attention,
// with and without K's mean subtraction, and on a K with a large common offset. Label gpu: built only where CUDA is
// built in.
#include "core/core.h"
#include "dit/dit.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

namespace {

using wan::dit::AttentionBackend;

c10::TensorOptions cuda_f32() { return at::TensorOptions().device(at::kCUDA).dtype(at::kFloat); }

/// Exact softmax(q·kᵀ/√d)·v in f32 (no TF32), keys limited to the first k_len; [B, Sq, H, d].
at::Tensor exact_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t k_len) {
    const at::Tensor qf = q.to(at::kFloat).transpose(1, 2);                            // [B, H, Sq, d]
    const at::Tensor kf = k.narrow(1, 0, k_len).to(at::kFloat).permute({0, 2, 3, 1});  // [B, H, d, Sk]
    const at::Tensor vf = v.narrow(1, 0, k_len).to(at::kFloat).transpose(1, 2);        // [B, H, Sk, d]
    const at::Tensor p = at::softmax(at::matmul(qf, kf) / std::sqrt(static_cast<double>(q.size(3))), -1);
    return at::matmul(p, vf).transpose(1, 2);
}

struct Errors {
    double max_rel;   ///< max |a − ref| / max |ref|
    double mean_abs;  ///< mean |a − ref|
};

Errors errors(const at::Tensor& a, const at::Tensor& ref) {
    const at::Tensor d = (a.to(at::kFloat) - ref).abs();
    return {(d.max() / ref.abs().max()).item<double>(), d.mean().item<double>()};
}

struct Shape {
    int64_t B, Sq, Sk, H, k_len;
    const char* what;
};

// Self-attention at 1.3B's 12 heads: 3001 rows = 24 query tiles of 128 (even), 2900 = 23 (odd); a batch of
// two; cross-attention against 512 text slots of which 300 are real.
const Shape kShapes[] = {
    {1, 3001, 3001, 12, 3001, "self, 24 query tiles"},
    {1, 2900, 2900, 12, 2900, "self, 23 query tiles"},
    {2, 1000, 1000, 12, 1000, "self, batch 2"},
    {1, 3001, 512, 12, 300, "cross, 300 of 512 keys"},
};

class AttentionBackends : public ::testing::Test {
protected:
    void SetUp() override {
        if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
        at::manual_seed(11);
    }
    /// q [B, Sq, H, 128] as a view of a fused QKV tensor; k, v likewise from their own fused tensor.
    void make(const Shape& s) {
        const int64_t d = 128;
        const at::Tensor qkv = (at::randn({s.B, s.Sq, 3, s.H, d}, cuda_f32()) * 2).to(at::kBFloat16);
        const at::Tensor kv = (s.Sk == s.Sq) ? qkv : (at::randn({s.B, s.Sk, 3, s.H, d}, cuda_f32()) * 2).to(at::kBFloat16);
        q = qkv.select(2, 0);
        k = kv.select(2, 1);
        v = kv.select(2, 2);
        ref = exact_attention(q, k, v, s.k_len);
    }
    c10::InferenceMode guard;
    at::Tensor q, k, v, ref;
};

TEST_F(AttentionBackends, CuDNNMatchesExactAttention) {
    for (const Shape& s : kShapes) {
        make(s);
        const at::Tensor o = wan::dit::attention(q, k, v, s.k_len, AttentionBackend::CuDNN);
        ASSERT_EQ(o.sizes(), q.sizes());
        const Errors e = errors(o, ref);
        std::printf("[attention] cudnn %-24s max rel %.3g, mean abs %.3g\n", s.what, e.max_rel, e.mean_abs);
        EXPECT_LT(e.max_rel, 2e-2) << s.what;
    }
}

#if WAN_TEST_FLASH3
TEST_F(AttentionBackends, FlashAttention3MatchesExactAttentionAsCloselyAsCuDNN) {
    for (const Shape& s : kShapes) {
        make(s);
        ASSERT_EQ(wan::dit::flash_attention3_misfit(q, k.narrow(1, 0, s.k_len), v.narrow(1, 0, s.k_len)), "");
        const at::Tensor o = wan::dit::attention(q, k, v, s.k_len, AttentionBackend::FlashAttention3);
        ASSERT_EQ(o.sizes(), q.sizes());
        ASSERT_EQ(o.scalar_type(), at::kBFloat16);
        const Errors e = errors(o, ref);
        const Errors c = errors(wan::dit::attention(q, k, v, s.k_len, AttentionBackend::CuDNN), ref);
        std::printf("[attention] fa3   %-24s max rel %.3g, mean abs %.3g (cudnn %.3g)\n", s.what, e.max_rel,
                    e.mean_abs, c.mean_abs);
        EXPECT_LT(e.max_rel, 2e-2) << s.what;
        // Both round the output to bf16 once; the error in between must be of the same size.
        EXPECT_LT(e.mean_abs, 1.5 * c.mean_abs + 1e-6) << s.what;
    }
}

// The log-sum-exp ring attention merges blocks with: natural log of Σ exp(q·k/√d) per query row.
TEST_F(AttentionBackends, FlashAttention3LogSumExpIsExact) {
    for (const Shape& s : kShapes) {
        make(s);
        const at::Tensor kk = k.narrow(1, 0, s.k_len), vv = v.narrow(1, 0, s.k_len);
        const auto [o, lse] = wan::dit::flash_attention3_with_lse(q, kk, vv);
        ASSERT_TRUE(o.defined() && lse.defined()) << s.what;
        ASSERT_EQ(lse.sizes(), (std::vector<int64_t>{s.B, s.H, s.Sq}));
        const at::Tensor scores = at::matmul(q.to(at::kFloat).transpose(1, 2), kk.to(at::kFloat).permute({0, 2, 3, 1})) /
                                  std::sqrt(128.0);
        const at::Tensor ref = at::logsumexp(scores, -1);  // [B, H, Sq]
        const double err = (lse - ref).abs().max().item<double>();
        std::printf("[attention] fa3   %-24s lse max abs err %.3g\n", s.what, err);
        EXPECT_LT(err, 1e-3) << s.what;
        EXPECT_TRUE(at::equal(o, wan::dit::attention(q, k, v, s.k_len, AttentionBackend::FlashAttention3))) << s.what;
    }
}

// Note [FP8 attention]. e4m3 keeps 3 mantissa bits: each of q, k, v is rounded to within 2^-4 of itself, so the
// logits and the output move by a few per cent, and how much depends on the data (a peaked softmax amplifies
// logit errors). The bound therefore comes from the same data: exact f32 attention on the dequantised q, k, v
// (quantize_heads_fp8, the kernel's own inputs) carries all the input rounding; the kernel adds only its rounding
// of P to e4m3 (again ≤ 2^-4 per weight, which moves the output as much as V's rounding does) and f32
// accumulation. So its error power may be about twice the emulation's: SNR ≥ emulated − 4 dB. The absolute floor
// (15 dB = 18 % RMS error) only catches a kernel that computes something else.
double snr_db(const at::Tensor& got, const at::Tensor& ref) {
    const at::Tensor g = got.to(at::kFloat);
    return 10 * std::log10(ref.pow(2).mean().item<double>() / (g - ref).pow(2).mean().item<double>());
}

at::Tensor dequantized(const at::Tensor& x, bool subtract_mean) {
    const wan::dit::Fp8Heads h = wan::dit::quantize_heads_fp8(x, subtract_mean);
    return h.codes.view(at::kFloat8_e4m3fn).to(at::kFloat) * h.scale.view({x.size(0), 1, x.size(2), 1});
}

/// Exact attention on the e4m3 values the kernel receives.
at::Tensor emulated_fp8_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t k_len,
                                  bool k_mean) {
    const at::Tensor kk = k.narrow(1, 0, k_len), vv = v.narrow(1, 0, k_len);
    return exact_attention(dequantized(q, false), dequantized(kk, k_mean), dequantized(vv, false), k_len);
}

TEST_F(AttentionBackends, Fp8AttentionIsAsCloseToExactAsItsE4m3InputsAllow) {
    using wan::dit::AttentionFp8;
    for (const Shape& s : kShapes) {
        make(s);
        const std::string misfit = wan::dit::flash_attention3_fp8_misfit(q, k, v);
        if (!misfit.empty()) GTEST_SKIP() << misfit;
        for (const AttentionFp8 mode : {AttentionFp8::On, AttentionFp8::KMean}) {
            const at::Tensor o = wan::dit::attention(q, k, v, s.k_len, AttentionBackend::Auto, mode);
            ASSERT_EQ(o.sizes(), q.sizes());
            ASSERT_EQ(o.scalar_type(), at::kBFloat16);
            ASSERT_FALSE(at::equal(o, wan::dit::attention(q, k, v, s.k_len))) << "the bf16 kernel ran";
            const double got = snr_db(o, ref);
            const double emulated = snr_db(emulated_fp8_attention(q, k, v, s.k_len, mode == AttentionFp8::KMean), ref);
            std::printf("[attention] fp8 %-5s %-24s SNR %.1f dB (inputs' rounding alone %.1f dB), max rel %.3g\n",
                        wan::dit::attention_fp8_name(mode), s.what, got, emulated, errors(o, ref).max_rel);
            EXPECT_GT(got, emulated - 4) << s.what;
            EXPECT_GT(got, 15) << s.what;
        }
    }
}

// A K whose tokens share a large offset (per channel, far above their spread): only its mean subtraction keeps the
// token-to-token differences, all softmax sees, above e4m3's rounding of the offset.
TEST_F(AttentionBackends, Fp8AttentionNeedsKMeanForACommonKeyOffset) {
    using wan::dit::AttentionFp8;
    const Shape& s = kShapes[0];
    make(s);
    const std::string misfit = wan::dit::flash_attention3_fp8_misfit(q, k, v);
    if (!misfit.empty()) GTEST_SKIP() << misfit;
    const at::Tensor offset = at::randn({1, 1, s.H, 128}, cuda_f32()) * 32;
    const at::Tensor ko = (k.to(at::kFloat) + offset).to(at::kBFloat16);
    const at::Tensor want = exact_attention(q, ko, v, s.k_len);
    const double raw = snr_db(wan::dit::attention(q, ko, v, s.k_len, AttentionBackend::Auto, AttentionFp8::On), want);
    const double centred = snr_db(wan::dit::attention(q, ko, v, s.k_len, AttentionBackend::Auto, AttentionFp8::KMean), want);
    const double emulated = snr_db(emulated_fp8_attention(q, ko, v, s.k_len, true), want);
    std::printf("[attention] fp8 K offset %-24s SNR on %.1f dB, kmean %.1f dB (inputs' rounding alone %.1f dB)\n",
                s.what, raw, centred, emulated);
    EXPECT_GT(centred, emulated - 4);
    EXPECT_GT(centred, 15);
    EXPECT_LT(raw, centred - 10);
}

TEST_F(AttentionBackends, AutoPicksFlashAttention3WhereItFits) {
    if (std::getenv("WAN_ATTENTION")) GTEST_SKIP() << "WAN_ATTENTION overrides the automatic choice";
    make(kShapes[0]);
    const at::Tensor fa3 = wan::dit::attention(q, k, v, -1, AttentionBackend::FlashAttention3);
    EXPECT_TRUE(at::equal(wan::dit::attention(q, k, v), fa3));
}
#endif

TEST_F(AttentionBackends, Fp8AttentionFallsBackToBf16WhereItCannotRun) {
    // Head dim 64: FP8 attention says why not and the call gives what the bf16 path gives.
    const at::Tensor t = at::randn({1, 256, 4, 64}, cuda_f32()).to(at::kBFloat16);
    EXPECT_NE(wan::dit::flash_attention3_fp8_misfit(t, t, t), "");
    EXPECT_TRUE(at::equal(wan::dit::attention(t, t, t, -1, AttentionBackend::Auto, wan::dit::AttentionFp8::KMean),
                          wan::dit::attention(t, t, t)));
}

TEST_F(AttentionBackends, FlashAttention3RefusesWhatItCannotRunWithAReason) {
    const at::Tensor q64 = at::randn({1, 256, 4, 64}, cuda_f32()).to(at::kBFloat16);
    const at::Tensor q128f = at::randn({1, 256, 4, 128}, cuda_f32());
    for (const auto& [t, expect] : {std::pair<at::Tensor, std::string>{q64, WAN_TEST_FLASH3 ? "head dim 64" : "no FlashAttention-3"},
                                     {q128f, WAN_TEST_FLASH3 ? "bf16" : "no FlashAttention-3"}}) {
        EXPECT_NE(wan::dit::flash_attention3_misfit(t, t, t).find(expect), std::string::npos)
            << wan::dit::flash_attention3_misfit(t, t, t);
        try {
            wan::dit::attention(t, t, t, -1, AttentionBackend::FlashAttention3);
            ADD_FAILURE() << "expected wan::Error for " << expect;
        } catch (const wan::Error& e) {
            EXPECT_NE(std::string(e.what()).find("FlashAttention-3 cannot run this call"), std::string::npos) << e.what();
        }
        // The automatic choice falls back to cuDNN / SDPA instead.
        EXPECT_EQ(wan::dit::attention(t, t, t).sizes(), t.sizes());
    }
}

}  // namespace
