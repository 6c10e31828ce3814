// The DiT's activation-memory choices (Note [Activation memory] in engine/dit/block.cpp) on the CPU: the FFN in
// chunks of token rows and the lean activations (separate q/k/v, text K/V recomputed per forward) give the same
// bits as the whole-sequence forward, for one sample, a batch of unequal samples, fp8 weights and repeated calls
// with a cross-attention cache; a chunk count below 1 is refused.
#include "tiny_dit.h"

#include "core/core.h"
#include "dit/dit.h"

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace {

using wan::dit::ModelOptions;
using wan::dit::WanModel;
using wan::io::WanConfig;

// Enough tokens for several chunks of 64 rows: 3×16×18 latent → 3·8·9 = 216 tokens.
struct Latents {
    std::vector<at::Tensor> xs, ctxs;
    at::Tensor t;
    int64_t seq_len = 216;
};
Latents latents(const WanConfig& c, int samples) {
    at::manual_seed(11);
    Latents l;
    l.xs = {at::randn({c.in_dim, 3, 16, 18}), at::randn({c.in_dim, 2, 12, 18})};  // 216 and 108 tokens
    l.ctxs = {at::randn({7, c.text_dim}), at::randn({4, c.text_dim})};
    l.xs.resize(static_cast<size_t>(samples));
    l.ctxs.resize(static_cast<size_t>(samples));
    l.t = samples == 1 ? at::scalar_tensor(640.0) : at::tensor({640.0, 320.0}, at::kDouble);
    return l;
}

WanModel tiny(ModelOptions o, int ffn_chunks, bool lean) {
    o.ffn_chunks = ffn_chunks;
    o.lean_activations = lean;
    return WanModel(wan::test::tiny_config(), wan::test::tiny_store(), o);
}

void expect_same(const std::vector<at::Tensor>& got, const std::vector<at::Tensor>& want, const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t b = 0; b < got.size(); ++b)
        EXPECT_TRUE(at::equal(got[b], want[b])) << what << ", sample " << b << ": max diff "
                                                << (got[b] - want[b]).abs().max().item<double>();
}

void check_variants(const ModelOptions& base, int samples) {
    const WanConfig c = wan::test::tiny_config();
    const Latents in = latents(c, samples);
    const WanModel whole = tiny(base, 1, false);
    const std::vector<at::Tensor> want = whole.forward(in.xs, in.t, in.ctxs, in.seq_len);
    struct Variant {
        int chunks;
        bool lean;
    };
    // 4 chunks of 216 (or 432) rows: chunks of 64 (128) rows and a shorter last one; 1000: capped at 64 rows each.
    for (const Variant v : {Variant{4, false}, Variant{1, true}, Variant{4, true}, Variant{3, true}, Variant{1000, true}}) {
        const WanModel m = tiny(base, v.chunks, v.lean);
        expect_same(m.forward(in.xs, in.t, in.ctxs, in.seq_len), want,
                    "ffn_chunks " + std::to_string(v.chunks) + (v.lean ? ", lean" : ""));
    }
}

TEST(DitActivationMemory, ChunkedFfnAndLeanActivationsGiveTheSameBits) {
    check_variants({}, 1);
}

TEST(DitActivationMemory, BatchOfUnequalSamplesTheSame) {
    check_variants({}, 2);  // 2 × 216 padded rows: chunks cross the boundary between the samples
}

TEST(DitActivationMemory, Fp8WeightsTheSame) {
    ModelOptions fp8;
    fp8.weight_dtype = wan::dit::WeightDtype::Fp8;
    check_variants(fp8, 1);
}

TEST(DitActivationMemory, LeanRecomputesTextKeysAndValuesToTheSameBits) {
    const WanConfig c = wan::test::tiny_config();
    const Latents in = latents(c, 1);
    const WanModel whole = tiny({}, 1, false);
    WanModel lean = tiny({}, 4, true);
    wan::dit::CrossAttentionCache kept, recomputed;
    for (int step = 0; step < 3; ++step) {  // from the second step the plain model takes its K/V from the cache
        const at::Tensor want = whole.forward(in.xs[0], in.t, in.ctxs[0], in.seq_len, &kept);
        const at::Tensor got = lean.forward(in.xs[0], in.t, in.ctxs[0], in.seq_len, &recomputed);
        EXPECT_TRUE(at::equal(got, want)) << "step " << step;
    }
    lean.set_activation_memory(1, false);  // switched between forwards; the cache then fills its K/V
    EXPECT_TRUE(at::equal(lean.forward(in.xs[0], in.t, in.ctxs[0], in.seq_len, &recomputed),
                          whole.forward(in.xs[0], in.t, in.ctxs[0], in.seq_len, &kept)));
}

TEST(DitActivationMemory, ChunkCountBelowOneIsRefused) {
    ModelOptions o;
    o.ffn_chunks = 0;
    try {
        WanModel m(wan::test::tiny_config(), wan::test::tiny_store(), o);
        FAIL() << "ffn_chunks 0 was accepted";
    } catch (const wan::Error& e) {
        EXPECT_NE(std::string(e.what()).find("ffn_chunks 0: must be at least 1"), std::string::npos) << e.what();
    }
    WanModel m = tiny({}, 1, false);
    EXPECT_THROW(m.set_activation_memory(-2, true), wan::Error);
}

}  // namespace
