// Private to engine/dit: what the parts of one DiT forward share — the per-forward context, the residual
// stream, the small ops every part uses — and the parts themselves, in the upstream module tree's order:
// embeddings (embeddings.cpp), blocks (block.cpp), head (head.cpp). WanModel::forward (model.cpp) drives them.
// Ref: wan21-reference.md §4.4 (forward and dtypes), §4.5 (attention), §4.8 (autocast), §8.3 (USP chunks).
#pragma once

#include "dit/dit.h"
#include "dit/stage_clock.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace wan::dit::detail {

class BlockKernels;

// ---- small ops ------------------------------------------------------------------------------------------

/// y = x Wᵀ + b with x cast to the weight's dtype: bf16 GEMM for bf16 weights, f32 for the f32 islands,
/// exactly what autocast does in the regions upstream runs these Linears in (§4.8).
inline at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
    return at::linear(x.to(w.scalar_type()), w, b);
}

/// WanRMSNorm: f32 normalisation, rounded to the input dtype, times the f32 weight → f32 (§4.5, §4.7).
inline at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
    const at::Tensor xf = x.to(at::kFloat);
    at::Tensor n = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
    return n.to(x.scalar_type()) * weight;
}

/// LayerNorm without affine, in f32.
inline at::Tensor layer_norm(const at::Tensor& x, int64_t dim, double eps) {
    return at::layer_norm(x.to(at::kFloat), {dim}, {}, {}, eps);
}

// ---- per-forward state ----------------------------------------------------------------------------------

/// What every part of one forward reads: sizes, dtypes, this rank's rows, the RoPE tables, the text.
struct ForwardContext {
    ForwardContext(const io::WanConfig& config_in, const RootWeights& root_in, c10::Device device_in,
                   SequenceParallel& sp_in, const IntermediateHook& hook_in, StageClock& clock_in)
        : config(config_in), root(root_in), device(device_in), sp(sp_in), hook(hook_in), clock(clock_in) {}

    const io::WanConfig& config;
    const RootWeights& root;
    int64_t B = 0, D = 0, H = 0, d = 0;  ///< batch, width, heads, head dim
    double eps = 0;
    c10::Device device;
    bool mixed = false;                  ///< BF16Mixed
    at::ScalarType cd = at::kFloat;      ///< GEMM / attention dtype: bf16 in mixed precision, else f32
    bool round_output_bf16 = true;       ///< ModelOptions::round_output_bf16
    AttentionBackend attention = AttentionBackend::Auto;
    std::vector<Grid> grids;             ///< per sample
    std::vector<int64_t> tokens;         ///< per sample: real tokens (grid volume)
    bool same_len = true;                ///< every sample has tokens[0] tokens
    SequenceChunk chunk;                 ///< this rank's rows of the padded sequence
    int64_t s_local = 0;                 ///< chunk.chunk_len
    SequenceParallel& sp;
    const IntermediateHook& hook;
    StageClock& clock;
    RopeTables rope;                     ///< for this rank's rows (set after the patch embedding)
    at::Tensor text;                     ///< [B, text_len, D] cd, the text embedding
    CrossAttentionCache* cache = nullptr;  ///< per-prompt text K/V (optional)
    int64_t ffn_chunks = 1;              ///< ModelOptions::ffn_chunks
    bool lean = false;                   ///< ModelOptions::lean_activations
};

/// The residual stream x [B, s, D] and, on the fused path, a gated residual update not yet added to it
/// (Note [Row kernels in registers]: the next norm adds it in the same pass over x).
struct ResidualStream {
    at::Tensor x;            ///< bf16 values until block 0's first residual add, f32 from there
    at::Tensor pending_y;    ///< [B, s, D] bf16 update (fused path only), or undefined
    at::Tensor pending_gate; ///< [B, 1, D] f32 gate of pending_y, or undefined (no gate)
    /// Upstream's residual stream is bf16 until block 0's first residual add, and its LayerNorm returns the
    /// input dtype: norm1 of block 0 rounds LN(x) to bf16 before the modulation (§4.4 d).
    bool bf16_values = false;
    /// x += pending_y · pending_gate, if an update is pending.
    void flush();
};

/// A block's six modulation vectors m = modulation + e0, [B, 6, D] f32; each accessor gives [B, 1, D].
struct Modulation {
    at::Tensor m;
    at::Tensor shift_msa() const { return m.narrow(1, 0, 1); }
    at::Tensor scale_msa() const { return m.narrow(1, 1, 1); }
    at::Tensor gate_msa() const { return m.narrow(1, 2, 1); }
    at::Tensor shift_ffn() const { return m.narrow(1, 3, 1); }
    at::Tensor scale_ffn() const { return m.narrow(1, 4, 1); }
    at::Tensor gate_ffn() const { return m.narrow(1, 5, 1); }
};

/// The private state of a CrossAttentionCache, for the parts that fill and read it.
struct CacheAccess {
    /// The cached text embedding when `cache` was filled by `owner` for these very context tensors, else
    /// an undefined tensor.
    static at::Tensor cached_text(const CrossAttentionCache* cache, const void* owner,
                                  const std::vector<at::Tensor>& contexts);
    /// Starts the cache over for `contexts`: their text embedding and `layers` empty K/V slots.
    static void refill(CrossAttentionCache& cache, const void* owner, const std::vector<at::Tensor>& contexts,
                       const at::Tensor& text, int64_t layers);
    static at::Tensor& key(CrossAttentionCache& cache, int64_t block) { return cache.k_[static_cast<size_t>(block)]; }
    static at::Tensor& value(CrossAttentionCache& cache, int64_t block) { return cache.v_[static_cast<size_t>(block)]; }
};

// ---- the parts (embeddings.cpp) -------------------------------------------------------------------------

/// (b) e [B, D] and e0 [B, 6, D], f32: f64 sinusoid on the CPU (cos first), f32 Linears.
struct TimeEmbedding {
    at::Tensor e, e0;
};
TimeEmbedding time_embedding(const ForwardContext& f, const at::Tensor& t);
/// (c) [B, text_len, D] cd: contexts zero-padded to text_len, all rows attended; from f.cache when it holds
/// these contexts (owner: the model), else computed and stored there.
at::Tensor text_embedding(const ForwardContext& f, const std::vector<at::Tensor>& contexts, const void* owner);
/// (a) This rank's rows [B, s, D] of the patch-embedded tokens, zero rows up to the padded length: conv3d in
/// cd, or (as_gemm, the fused path) one GEMM over the unfolded patches with f32 rows.
at::Tensor patch_embedding(const ForwardContext& f, const std::vector<at::Tensor>& xs, bool as_gemm);

// ---- the blocks (block.cpp) -----------------------------------------------------------------------------

/// (d) Every block on the stream, each acquired from `blocks` right before it and released right after.
void run_blocks(ResidualStream& s, const at::Tensor& e0, BlockWeightsProvider& blocks, BlockKernels& kernels,
                const ForwardContext& f);

// ---- the head (head.cpp) --------------------------------------------------------------------------------

/// (e) [B, S, 64] f32: the head on this rank's rows (uses e, not e0), gathered over the SP group, rounded to
/// bf16 values in mixed precision.
at::Tensor head(ResidualStream& s, const at::Tensor& e, BlockKernels& kernels, const ForwardContext& f);
/// (f) One [out_dim, F, H, W] f32 tensor per sample: row n = (f, h, w) holds (p, q, r, c).
std::vector<at::Tensor> unpatchify(const at::Tensor& out, const ForwardContext& f);

}  // namespace wan::dit::detail
