// One DiT block (upstream WanAttentionBlock): modulated self-attention with RoPE, cross-attention to the text,
// modulated FFN, each with its residual; the kernels come from the forward's BlockKernels (kernels.h).
// Ref: wan21-reference.md §4.4 d (block and dtypes), §4.5 (attention), §8.3 (sequence parallelism).
#include "dit/forward.h"
#include "dit/internal.h"
#include "dit/kernels.h"

#include "core/core.h"
#include "core/fault_injection.h"

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace wan::dit::detail {

namespace {

/// Attention over the whole sequence (through the SP group), keys limited to each sample's real tokens:
/// one call for the batch when every sample has as many, else one per sample.
at::Tensor attend_self(const Qkv& t, const ForwardContext& f) {
    if (f.same_len) return f.sp.self_attention(t.q, t.k, t.v, f.tokens[0]);
    std::vector<at::Tensor> os;
    for (int64_t b = 0; b < f.B; ++b)
        os.push_back(f.sp.self_attention(t.q.narrow(0, b, 1), t.k.narrow(0, b, 1), t.v.narrow(0, b, 1), f.tokens[b]));
    return at::cat(os, 0);
}

void self_attention(ResidualStream& s, const BlockWeights& w, const Modulation& m, BlockKernels& kernels,
                    const ForwardContext& f) {
    const AttentionWeights& sa = w.self_attn;
    const GemmInput a = kernels.norm1(s, m, f);
    f.clock.mark("norm1");
    const Qkv qkv = kernels.self_qkv(a, sa, f);
    const at::Tensor o = attend_self(qkv, f);  // [B, s, H, d]
    f.clock.mark("self_attention");
    const at::Tensor y = kernels.linears().gemm(o.reshape({f.B, f.s_local, f.D}), sa.o_weight, sa.o_scale, sa.o_bias);  // cd
    f.clock.mark("o_gemm");
    kernels.add_gated(s, y, m.gate_msa());
    s.bf16_values = false;
}

/// Block i's text K/V [B, text_len, H, d] in the attention dtype: from the per-prompt cache, else computed
/// (and cached). They depend on the context only. Held fp8 weights are widened here (once per prompt).
std::pair<at::Tensor, at::Tensor> cross_kv(int64_t i, const AttentionWeights& ca, const Linears& linears,
                                           const ForwardContext& f) {
    if (f.cache && CacheAccess::key(*f.cache, i).defined())
        return {CacheAccess::key(*f.cache, i), CacheAccess::value(*f.cache, i)};
    const int64_t Lt = f.text.size(1);
    const at::Tensor k = rms_norm(linear(f.text, linears.values(ca.k_weight, ca.k_scale), ca.k_bias), ca.norm_k_weight, f.eps)
                             .view({f.B, Lt, f.H, f.d})
                             .to(f.cd);
    const at::Tensor v = linear(f.text, linears.values(ca.v_weight, ca.v_scale), ca.v_bias).view({f.B, Lt, f.H, f.d});
    if (f.cache) {
        CacheAccess::key(*f.cache, i) = k;
        CacheAccess::value(*f.cache, i) = v;
    }
    return {k, v};
}

/// Cross-attention: no modulation, no gate; every text row attended.
void cross_attention(int64_t i, ResidualStream& s, const BlockWeights& w, BlockKernels& kernels,
                     const ForwardContext& f) {
    const AttentionWeights& ca = w.cross_attn;
    const GemmInput in = kernels.norm3(s, w, f);
    f.clock.mark("norm3");
    const at::Tensor q = kernels.cross_query(in, ca, f);
    const auto [k, v] = cross_kv(i, ca, kernels.linears(), f);
    f.clock.mark("cross_q_kv");
    const at::Tensor o = attention(q, k, v, -1, f.attention);
    f.clock.mark("cross_attention");
    kernels.add_cross_attention(s, o.reshape({f.B, f.s_local, f.D}), ca);
    f.clock.mark("cross_o_gemm");
}

void ffn(ResidualStream& s, const BlockWeights& w, const Modulation& m, BlockKernels& kernels,
         const ForwardContext& f) {
    const GemmInput in = kernels.norm2(s, m, f);
    f.clock.mark("norm2");
    const at::Tensor y = kernels.ffn_layers(in, w, f);
    f.clock.mark("ffn2_gemm");
    kernels.add_gated(s, y, m.gate_ffn());
}

void run_block(int64_t i, ResidualStream& s, const BlockWeights& w, const at::Tensor& e0, BlockKernels& kernels,
               const ForwardContext& f) {
    const Modulation m{w.modulation + e0};  // [B, 6, D] f32
    kernels.begin_block(s);
    f.clock.mark("block_setup");
    self_attention(s, w, m, kernels, f);
    cross_attention(i, s, w, kernels, f);
    ffn(s, w, m, kernels, f);
}

}  // namespace

void run_blocks(ResidualStream& s, const at::Tensor& e0, BlockWeightsProvider& blocks, BlockKernels& kernels,
                const ForwardContext& f) {
    for (int64_t i = 0; i < f.config.num_layers; ++i) {
        // fp8 weights go to the FP8 GEMMs as held, or are widened for this block only (Note [FP8 weights]).
        const BlockWeights held = blocks.acquire(i);
        const BlockWeights w = kernels.linears().takes_fp8_codes() ? held : widened(held, f.cd);
        run_block(i, s, w, e0, kernels, f);
        blocks.release(i);
        test_hooks::maybe_fail_after_block(log_rank(), i);  // a fault between two blocks (tests only)
        if (f.hook) {
            s.flush();
            f.hook("block" + std::to_string(i), s.x);
        }
    }
}

}  // namespace wan::dit::detail
