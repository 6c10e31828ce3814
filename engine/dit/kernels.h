// Private to engine/dit: the block's kernels — the choice between the op-by-op ATen path, the fused CUDA
// kernels (Note [Fused block kernels] in fused.h) and the fused kernels with FP8 GEMMs (Note [FP8 linears]),
// made once per forward (choose_kernels) instead of statement by statement. The block (block.cpp) says
// what is computed; a BlockKernels says with which kernels. All three compute the same function; they differ
// in bf16 rounding (fused, measured in docs/PERFORMANCE.md) or in FP8 quantisation error.
#pragma once

#include "dit/forward.h"
#include "dit/fused.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace wan::dit::detail {

/// Tensors derived from resident block weights, kept for the model's lifetime and keyed by the source
/// weight's storage address (stable while resident): concatenated QKV weights/biases, FP8 copies.
struct DerivedWeights {
    struct Fp8Weight {
        at::Tensor w8;     ///< [N, K] float8_e4m3fn
        at::Tensor scale;  ///< [1, N] f32
    };
    std::mutex mu;
    std::unordered_map<const void*, at::Tensor> packed;
    std::unordered_map<const void*, Fp8Weight> fp8;
    /// Set when cuBLASLt refused an FP8 GEMM: FP8 stays off for this model from then on.
    std::atomic<bool> fp8_broken{false};
};

/// Rows entering a GEMM: a tensor (bf16, or f32 on the plain path), or rows already quantised to FP8.
struct GemmInput {
    at::Tensor rows;
    fused::Fp8Rows fp8;  ///< fp8.q defined: use these
    /// Rows [begin, begin + count) of the flattened [M, K] rows (views, no copy).
    GemmInput row_range(int64_t begin, int64_t count) const;
};

/// The block GEMMs: y = x Wᵀ + b in the weight's dtype, or with FP8 (Note [FP8 linears]). Each weight `w`
/// comes with its fp8 scale `ws`: undefined for a weight of values, [N] f32 for fp8 codes (Note [FP8 weights]).
class Linears {
public:
    /// fp8: quantise activations per token and run the FP8 GEMM (until cuBLASLt refuses). fused_quantise:
    /// quantise with the fused kernel where the width allows. resident: derived tensors may be cached.
    Linears(DerivedWeights& derived, bool resident, bool fp8, bool fused_quantise, at::ScalarType cd)
        : derived_(derived), resident_(resident), fp8_(fp8), fused_quantise_(fused_quantise), cd_(cd) {}

    /// FP8 GEMMs were asked for in this forward (even if they broke since).
    bool fp8() const { return fp8_; }
    bool fp8_broken() const { return derived_.fp8_broken.load(); }
    /// The FP8 GEMMs run now, so fp8 codes may be handed to them as they are held.
    bool takes_fp8_codes() const { return fp8_ && !fp8_broken() && WAN_TORCH_VERSION >= 205; }
    /// in [..., K] → [..., N]: FP8 when on (and not broken), else linear().
    at::Tensor gemm(const at::Tensor& in, const at::Tensor& w, const at::Tensor& ws, const at::Tensor& b);
    /// On FP8 rows a [M, K]: bf16 [lead..., N]; the dequantised bf16 GEMM where cuBLASLt refuses.
    at::Tensor gemm_fp8(const fused::Fp8Rows& a, const at::Tensor& w, const at::Tensor& ws, const at::Tensor& b,
                        std::vector<int64_t> lead);
    /// gemm_fp8 on FP8 rows, else gemm.
    at::Tensor gemm(const GemmInput& in, const at::Tensor& w, const at::Tensor& ws, const at::Tensor& b,
                    const std::vector<int64_t>& lead);
    /// q/k/v weights (or biases, or scales) as one [3N, ...] tensor (Note [Packed QKV weights] in params.cpp);
    /// undefined when they are.
    at::Tensor packed_qkv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);
    /// The weight's values in the compute dtype: `w` itself, or its fp8 codes dequantised.
    at::Tensor values(const at::Tensor& w, const at::Tensor& ws) const;

private:
    DerivedWeights::Fp8Weight fp8_weight(const at::Tensor& w, const at::Tensor& ws);
    DerivedWeights& derived_;
    bool resident_, fp8_, fused_quantise_;
    at::ScalarType cd_;
};

/// Self-attention's q, k, v: [B, s, H, d] in the attention dtype, RoPE applied to q and k.
struct Qkv {
    at::Tensor q, k, v;
};

/// The kernels of one forward's blocks and head. Each step names the norm that opens it; the fused paths
/// fold the pending residual update of the stream into that norm (ResidualStream::pending_y).
class BlockKernels {
public:
    BlockKernels(Linears linears, bool fused) : linears_(std::move(linears)), fused_(fused) {}
    virtual ~BlockKernels() = default;
    BlockKernels(const BlockKernels&) = delete;
    BlockKernels& operator=(const BlockKernels&) = delete;

    Linears& linears() { return linears_; }
    /// The fused paths: patch embedding as one GEMM, the residual stream in f32 from the start.
    bool fused() const { return fused_; }

    /// Before each block.
    virtual void begin_block(ResidualStream& s) = 0;
    /// norm1: LN(x)·(1 + scale) + shift.
    virtual GemmInput norm1(ResidualStream& s, const Modulation& m, const ForwardContext& f) = 0;
    /// q, k, v GEMMs, q/k RMS norms and RoPE.
    virtual Qkv self_qkv(const GemmInput& a, const AttentionWeights& sa, const ForwardContext& f) = 0;
    /// x += y · gate (self-attention and FFN outputs).
    virtual void add_gated(ResidualStream& s, const at::Tensor& y, const at::Tensor& gate) = 0;
    /// norm3: the affine LayerNorm before cross-attention.
    virtual GemmInput norm3(ResidualStream& s, const BlockWeights& w, const ForwardContext& f) = 0;
    /// Cross-attention's q: GEMM and RMS norm, [B, s, H, d] in the attention dtype.
    virtual at::Tensor cross_query(const GemmInput& in, const AttentionWeights& ca, const ForwardContext& f) = 0;
    /// x += o Wᵀ + b (cross-attention output; no gate). o: [B, s, D].
    virtual void add_cross_attention(ResidualStream& s, const at::Tensor& o, const AttentionWeights& ca) = 0;
    /// norm2: LN(x)·(1 + scale) + shift before the FFN.
    virtual GemmInput norm2(ResidualStream& s, const Modulation& m, const ForwardContext& f) = 0;
    /// FFN: GELU(in W0ᵀ + b0) W2ᵀ + b2 (marks the stage clock after the first GEMM), [lead..., D]; `lead` is
    /// the shape of in's rows ({B, s}, or {count} for a row_range).
    virtual at::Tensor ffn_layers(const GemmInput& in, const BlockWeights& w, const std::vector<int64_t>& lead,
                                  const ForwardContext& f) = 0;
    /// The head's input LN(x)·(1 + scale) + shift, f32, after any pending update.
    virtual at::Tensor head_input(ResidualStream& s, const at::Tensor& scale, const at::Tensor& shift,
                                  const ForwardContext& f) = 0;

protected:
    Linears linears_;

private:
    bool fused_;
};

/// The kernels for one forward: fused where ModelOptions::fused_kernels is set, the kernels are built, the
/// device is CUDA, compute is bf16 and the head dim is even; FP8 GEMMs where the device is CUDA, compute is
/// bf16, FP8 has not failed before, and either ModelOptions::fp8 is set with resident blocks or the blocks hold
/// fp8 codes (`fp8_codes`, Note [FP8 weights]) with the fused kernels and ModelOptions::fp8_direct.
std::unique_ptr<BlockKernels> choose_kernels(const ModelOptions& options, const ForwardContext& f, bool resident,
                                             bool fp8_codes, DerivedWeights& derived);

}  // namespace wan::dit::detail
