// One DiT block (upstream WanAttentionBlock): modulated self-attention with RoPE, cross-attention to the text,
// modulated FFN, each with its residual; the kernels come from the forward's BlockKernels (kernels.h).
// Ref: wan21-reference.md §4.4 d (block and dtypes), §4.5 (attention), §8.3 (sequence parallelism).
#include "dit/forward.h"
#include "dit/internal.h"
#include "dit/kernels.h"

#include "core/core.h"
#include "core/fault_injection.h"

#include <ATen/ATen.h>

#include <algorithm>
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

// Note [Activation memory]
// Besides the weights, a forward holds the f32 residual stream x (4·N·D bytes for N tokens of width D) and the
// activations of the part that runs. Each part lets go of its tensors as soon as the next ones exist (the norm's
// rows after the GEMMs that read them, q/k/v after attention, the attention output after its GEMM). In units of
// N·D bytes on the fused FP8 path (fp8 rows 1, bf16 2, f32 4), what is alive at the worst moment of each part:
//   self-attention, one packed q/k/v GEMM: its output 6 (v is a view of it) + q, k 4 + o 2 = 12 at attention;
//     three GEMMs (ModelOptions::lean_activations): q, k, v 6 + o 2 = 8. Output GEMM: o 2 + fp8 rows 1 + y 2 = 5.
//     (Before session 30 everything lived to the end of the part: 1 + 6 + 4 + 2 + 1 + 2 = 16 at the output GEMM.)
//   FFN (F = ffn_dim = 2.7·D for 14B): rows 1 + bf16 hidden 2F/D + its fp8 rows F/D + y 2 = 11.1; on c chunks of
//     rows (ModelOptions::ffn_chunks) the hidden layer exists for one chunk: 1 + 2 + 8.1/c = 5.0 for c = 4.
//   cross-attention: at most 6 (rows 1, q 2, o 2; then o 2 + fp8 rows 1 + y 2).
// Without lean_activations the text K/V of every block are also kept across forwards, per prompt: 2 prompts ·
// layers · 2 · text_len · D bf16 = 8·L·text_len·D bytes (0.84 GB for 14B); lean recomputes them in each forward
// (two [text_len, D] GEMMs per block, ~2 TFLOP per 14B forward, a few ms).
// Peak beyond the weights for 14B (D = 5120): before, x 4 + 16 = 20 units + 0.84 GB; --ffn-chunks 1 now, 16 units +
// 0.84 GB; lean with 4 chunks, x 4 + 8 = 12 units (self-attention is then the largest part).
//   480p (N = 32760, N·D = 167.7 M): 4.19 GB → 3.52 GB → 2.01 GB: saving 2.18 GB against before.
//   720p (N = 75600, N·D = 387.1 M): 8.58 GB → 7.03 GB → 4.65 GB: saving 3.94 GB.
// Estimates from the tensor sizes (not measured; attention workspaces and the allocator's rounding come on top).
// Every choice here is row-wise or a regrouping of the same operations: the result is the same bits on the CPU
// (tests/dit/test_dit_activation_memory.cpp).

void self_attention(ResidualStream& s, const BlockWeights& w, const Modulation& m, BlockKernels& kernels,
                    const ForwardContext& f) {
    const AttentionWeights& sa = w.self_attn;
    Qkv qkv;
    {
        const GemmInput a = kernels.norm1(s, m, f);
        f.clock.mark("norm1");
        qkv = kernels.self_qkv(a, sa, f);
    }  // the norm's rows are gone
    at::Tensor o = attend_self(qkv, f);  // [B, s, H, d]
    qkv = Qkv();                         // q, k, v are gone before the output GEMM
    f.clock.mark("self_attention");
    at::Tensor y = kernels.linears().gemm(o.reshape({f.B, f.s_local, f.D}), sa.o_weight, sa.o_scale, sa.o_bias);  // cd
    o = at::Tensor();
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
    if (f.cache && !f.lean) {
        CacheAccess::key(*f.cache, i) = k;
        CacheAccess::value(*f.cache, i) = v;
    }
    return {k, v};
}

/// Cross-attention: no modulation, no gate; every text row attended.
void cross_attention(int64_t i, ResidualStream& s, const BlockWeights& w, BlockKernels& kernels,
                     const ForwardContext& f) {
    const AttentionWeights& ca = w.cross_attn;
    at::Tensor q;
    {
        const GemmInput in = kernels.norm3(s, w, f);
        f.clock.mark("norm3");
        q = kernels.cross_query(in, ca, f);
    }  // the norm's rows are gone
    at::Tensor o;
    {
        const auto [k, v] = cross_kv(i, ca, kernels.linears(), f);
        f.clock.mark("cross_q_kv");
        o = attention(q, k, v, -1, f.attention);
    }
    q = at::Tensor();
    f.clock.mark("cross_attention");
    kernels.add_cross_attention(s, o.reshape({f.B, f.s_local, f.D}), ca);
    f.clock.mark("cross_o_gemm");
}

/// The FFN of the rows `in` in `f.ffn_chunks` chunks of rows, each written into one [B, s, D] output: the
/// hidden layer exists for one chunk at a time (Note [Activation memory]). Chunks are whole multiples of 64
/// rows but the last.
at::Tensor ffn_rows(const GemmInput& in, const BlockWeights& w, BlockKernels& kernels, const ForwardContext& f) {
    const int64_t M = f.B * f.s_local;
    const int64_t chunks = std::min<int64_t>(f.ffn_chunks, M);
    if (chunks <= 1) return kernels.ffn_layers(in, w, {f.B, f.s_local}, f);
    const int64_t step = ((M + chunks - 1) / chunks + 63) / 64 * 64;
    at::Tensor y;  // [M, D]
    for (int64_t begin = 0; begin < M; begin += step) {
        const int64_t count = std::min(step, M - begin);
        const at::Tensor part = kernels.ffn_layers(in.row_range(begin, count), w, {count}, f).view({count, f.D});
        if (!y.defined()) y = at::empty({M, f.D}, part.options());
        y.narrow(0, begin, count).copy_(part);
    }
    return y.view({f.B, f.s_local, f.D});
}

void ffn(ResidualStream& s, const BlockWeights& w, const Modulation& m, BlockKernels& kernels,
         const ForwardContext& f) {
    at::Tensor y;
    {
        const GemmInput in = kernels.norm2(s, m, f);
        f.clock.mark("norm2");
        y = ffn_rows(in, w, kernels, f);
    }  // the norm's rows are gone before the residual add
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
