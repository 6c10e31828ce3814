// Wan2.1 diffusion transformer (`WanModel`, model_type t2v): parameters named after the checkpoint keys,
// the single-GPU forward of upstream `wan/modules/model.py` with its dtype flow, and the hooks a later
// module needs for sharded parameters (FSDP-like) and sequence-parallel attention (Ulysses / Ring).
// Ref: wan21-reference.md §4 (forward, dtypes, attention, RoPE), §8.3 (the DiT's side of USP).
//
// Example:
//   auto ckpt = wan::io::CheckpointDir::locate(dir);
//   auto store = ckpt.open_dit();
//   wan::dit::WanModel dit(ckpt.config(), store, {c10::Device(c10::kCUDA, 0)});
//   wan::dit::CrossAttentionCache cond_cache;                         // one per prompt, reused each step
//   at::Tensor v = dit.forward(latent, t, context, seq_len, &cond_cache);   // [16, F, H, W] f32
#pragma once

#include "io/io.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace wan::dit {

// ---- parameters --------------------------------------------------------------------------------------

/// One expected checkpoint tensor. Ref: wan21-reference.md §4.2.
struct ParameterSpec {
    std::string name;            ///< checkpoint key, e.g. "blocks.3.self_attn.q.weight"
    std::vector<int64_t> shape;  ///< expected shape
    /// True for the tensors that enter f32 arithmetic on the GPU and so stay f32 in mixed precision
    /// (time_embedding.*, time_projection.*, head.head.*, head.modulation, blocks.N.modulation,
    /// norm_q/norm_k weights, norm3 weight/bias). Ref: §1.4, §4.8.
    bool keep_f32 = false;
};

/// Every tensor of the state dict in upstream order (12 + 27·num_layers + 3), sized from `config`.
/// Nothing is allocated. Used by validation, loading, random init and the parameter count.
std::vector<ParameterSpec> expected_parameter_shapes(const io::WanConfig& config);
/// Sum of numel over expected_parameter_shapes (1,418,996,800 for 1.3B; 14,288,491,584 for 14B).
int64_t expected_parameter_count(const io::WanConfig& config);

/// One attention module's tensors (`self_attn` or `cross_attn`). Linear weights are [D, D], biases and
/// norm weights [D]. With fp8 weights (Note [FP8 weights] in fp8_weights.cpp) each Linear weight holds e4m3
/// codes (uint8) and its `*_scale` the f32 scale of each row ([N]); otherwise the scales are undefined.
struct AttentionWeights {
    at::Tensor q_weight, q_bias, k_weight, k_bias, v_weight, v_bias, o_weight, o_bias;
    at::Tensor norm_q_weight, norm_k_weight;
    at::Tensor q_scale, k_scale, v_scale, o_scale;  ///< [D] f32 with fp8 weights, else undefined
};

/// All tensors of `blocks.{i}` (27 of them).
struct BlockWeights {
    AttentionWeights self_attn;
    AttentionWeights cross_attn;
    at::Tensor norm3_weight, norm3_bias;  ///< [D] LayerNorm affine before cross-attention
    at::Tensor ffn0_weight, ffn0_bias;    ///< [ffn_dim, D], [ffn_dim]
    at::Tensor ffn2_weight, ffn2_bias;    ///< [D, ffn_dim], [D]
    at::Tensor modulation;                ///< [1, 6, D] f32
    at::Tensor ffn0_scale, ffn2_scale;    ///< [ffn_dim], [D] f32 with fp8 weights, else undefined
};

/// Every tensor `w` holds: the 27 parameters, then the fp8 scales that are defined (for code that copies or
/// moves whole blocks: streaming, parking).
std::vector<at::Tensor*> block_tensors(BlockWeights& w);
/// True when the block's Linear weights are fp8 codes with scales.
bool holds_fp8(const BlockWeights& w);

/// The tensors outside the blocks (embeddings and head; 15 of them).
struct RootWeights {
    at::Tensor patch_embedding_weight, patch_embedding_bias;   ///< [D, in_dim, 1, 2, 2], [D]
    at::Tensor text_embedding0_weight, text_embedding0_bias;   ///< [D, text_dim], [D]
    at::Tensor text_embedding2_weight, text_embedding2_bias;   ///< [D, D], [D]
    at::Tensor time_embedding0_weight, time_embedding0_bias;   ///< [D, freq_dim], [D]
    at::Tensor time_embedding2_weight, time_embedding2_bias;   ///< [D, D], [D]
    at::Tensor time_projection1_weight, time_projection1_bias; ///< [6D, D], [6D]
    at::Tensor head_weight, head_bias;                         ///< [64, D], [64] (head.head.*)
    at::Tensor head_modulation;                                ///< [1, 2, D]
};

/// Weight precision / compute mode.
enum class Precision {
    Auto = 1,     ///< Float32 on the CPU, BF16Mixed on CUDA
    Float32 = 2,  ///< every weight and every op in f32 (what the CPU golden data was computed with)
    BF16Mixed = 3 ///< upstream's autocast(bf16): bf16 weights and GEMMs, f32 islands (§4.4, §4.8)
};

/// How the block Linear weights (self- and cross-attention q, k, v, o; FFN) are held (--dit-dtype). The other
/// tensors (norms, biases, modulation, embeddings, head) always stay in the Precision's dtypes.
enum class WeightDtype {
    /// fp8 when the checkpoint stores every block Linear weight as F8_E4M3 or F8_E5M2 (scaled or not), else Compute
    Auto = 1,
    Compute = 2,  ///< the Precision's GEMM dtype (bf16 on CUDA, f32 on the CPU); fp8 files are widened at load
    Fp8 = 3,      ///< e4m3 codes + one f32 scale per output row (Note [FP8 weights]); other files quantised at load
};
/// "auto", "fp8", "bf16" (= Compute) → the value; anything else → nullopt.
std::optional<WeightDtype> parse_weight_dtype(const std::string& name);
const char* weight_dtype_name(WeightDtype dtype);  ///< "auto", "fp8", "bf16"

/// A Linear weight as e4m3 codes and per-row scales: value[r][c] = decode(codes[r][c]) · scale[r].
struct Fp8Weight {
    at::Tensor codes;  ///< [N, K] uint8, on the weight's device
    at::Tensor scale;  ///< [N] f32
    /// Loaded from an F8_E5M2 file (io::Float8Codes::from_e5m2): its values held only rounded, and the worst
    /// relative error among them. 0 otherwise.
    int64_t rounded = 0;
    double worst_relative_error = 0;
};
/// The one quantisation rule (Note [FP8 weights]): scale[r] = max(amax of row r, 1e-12) / 448, codes = the
/// nearest e4m3 values of w / scale (ties to even). On the CPU, CUDA (LibTorch ≥ 2.1) or via the CPU elsewhere.
Fp8Weight quantize_fp8(const at::Tensor& w);
/// decode(codes) · scale per row, computed in f32 and rounded once to `dtype`, on the codes' device.
at::Tensor dequantize_fp8(const at::Tensor& codes, const at::Tensor& scale, at::ScalarType dtype);

/// Which kernel computes attention on CUDA (Note [Attention backend] in layers.cpp). Auto: FlashAttention-3
/// where the build has it and the call fits it (Hopper, bf16, head dim 128), else cuDNN's fused attention,
/// else PyTorch's SDPA choice. The others force one backend, for measurements (ModelOptions::attention,
/// environment variable WAN_ATTENTION=auto|fa3|cudnn|flash|sdpa). CPU calls ignore the choice.
enum class AttentionBackend { Auto, FlashAttention3, CuDNN, Flash, Sdpa };

/// Whether self-attention runs FlashAttention-3's FP8 forward (ModelOptions::attention_fp8; Note [FP8 attention]
/// in attention_fp8.cpp). Where that kernel cannot run (no FlashAttention-3 in the build, LibTorch < 2.1, not a
/// Hopper GPU, not bf16, head dim ≠ 128, a forced non-FA3 backend, ring attention) attention stays bf16 and one
/// log line says why.
enum class AttentionFp8 {
    Off = 1,    ///< q, k, v as they come (bf16 in mixed precision)
    On = 2,     ///< q, k, v as e4m3 with one scale per (batch, head), computed on the fly (amax / 448)
    KMean = 3,  ///< as On, after subtracting K's mean over the tokens of each (batch, head): exact for softmax
};
/// "off"/"0", "on"/"1", "kmean" → the value; anything else → nullopt.
std::optional<AttentionFp8> parse_attention_fp8(const std::string& name);
const char* attention_fp8_name(AttentionFp8 mode);  ///< "off", "on", "kmean"

/// Per-head e4m3 codes of a [B, S, H, d] tensor: value[b][s][h][i] ≈ decode(codes[b][s][h][i]) · scale[b][h].
struct Fp8Heads {
    at::Tensor codes;  ///< [B, S, H, d] uint8, contiguous
    at::Tensor scale;  ///< [B, H] f32, contiguous: max(amax over S and d, 1e-12) / 448
};
/// The quantisation of FP8 attention (Note [FP8 attention]), on x's device (CPU or CUDA): in f32, minus the mean
/// over S of each (b, h, i) when `subtract_mean`, then scaled per (b, h) and rounded to the nearest e4m3.
Fp8Heads quantize_heads_fp8(const at::Tensor& x, bool subtract_mean);

struct ModelOptions {
    c10::Device device = c10::Device(c10::kCPU);  ///< where weights live and the forward runs
    Precision precision = Precision::Auto;
    /// BF16Mixed only: round the model output to bf16 values before returning it (f32 tensor), as the
    /// upstream unpatchify `einsum` does under autocast (§4.4 f, Appendix A.1). Default on.
    bool round_output_bf16 = true;
    /// CUDA (Hopper, LibTorch ≥ 2.5) with BF16Mixed only: the block GEMMs (q/k/v/o, cross-attention q/o, FFN)
    /// in FP8 e4m3 with per-output-channel weight scales (computed once, at first use) and per-token
    /// activation scales (computed per call), through at::_scaled_mm. Off by default; speed and error against
    /// bf16 are in docs/PERFORMANCE.md. Resident weights only (not with FSDP). Env: WAN_FP8=1.
    bool fp8 = false;
    /// How the block Linear weights are held (--dit-dtype). Default Auto. Not with FSDP-sharded blocks
    /// (block_weights_from keeps the compute dtype).
    WeightDtype weight_dtype = WeightDtype::Auto;
    /// fp8 weights on CUDA where the FP8 GEMMs run (fused kernels, LibTorch ≥ 2.5, Hopper/Ada): the block GEMMs
    /// take the codes and scales directly (activations quantised per token, as `fp8`). False widens each block
    /// to bf16 when it runs, as everywhere else (to measure the weights' own error). Env: WAN_FP8_DIRECT=0.
    bool fp8_direct = true;
    /// CUDA with BF16Mixed only: the fused elementwise kernels of the block (Note [Fused block kernels] in
    /// fused.h) where the build has them; false runs the op-by-op ATen path. Default on. Env: WAN_FUSED=0.
    bool fused_kernels = true;
    /// The attention kernel of self- and cross-attention on CUDA (also what sequence-parallel attention runs
    /// locally). Default Auto. Env: WAN_ATTENTION=auto|fa3|cudnn|flash|sdpa.
    AttentionBackend attention = AttentionBackend::Auto;
    /// Self-attention in FP8 through FlashAttention-3 (Note [FP8 attention]); cross-attention stays bf16. Default
    /// Off; `fp8` does not turn it on. Env: WAN_FP8_ATTENTION=off|on|kmean (also 0|1).
    AttentionFp8 attention_fp8 = AttentionFp8::Off;
    /// CUDA builds: print the GPU milliseconds of each stage of every forward to stderr (Note [Stage clock]
    /// in stage_clock.h). Default off. Env: WAN_DIT_STAGES=1.
    bool stage_clock = false;
    /// Activation memory of the forward (Note [Activation memory] in block.cpp): the FFN runs on this many
    /// chunks of token rows (1: all rows at once). Row-wise, so the result does not change. Default 1.
    int ffn_chunks = 1;
    /// Fewer activations alive at once, at no change of the result: q, k and v from three GEMMs instead of one
    /// packed GEMM (whose output lives until attention ends), and the cross-attention K/V recomputed in every
    /// forward instead of kept per prompt (CrossAttentionCache then holds the text embedding only). Default off.
    bool lean_activations = false;

    /// The defaults with the switches above taken from the environment variables named there (for the
    /// program edges: pipeline construction, wan-bench, tests). An unknown WAN_ATTENTION value is
    /// logged as a warning and means Auto.
    static ModelOptions from_environment();
};

/// A parameter, or this rank's part of it where each rank holds a part of every tensor (FSDP shards): elements
/// [offset, offset + values.numel()) of the parameter of shape `shape` flattened row-major. A whole parameter
/// has offset 0 and `values` of `shape`. Writing into `values` changes the parameter (a LoRA merge).
struct ParameterPart {
    std::string name;
    std::vector<int64_t> shape;
    int64_t offset = 0;
    at::Tensor values;
};

/// Source of the per-block weights. The forward calls acquire(i) right before block i and release(i)
/// right after it, so a sharded implementation can all-gather one block at a time and free it again.
class BlockWeightsProvider {
public:
    virtual ~BlockWeightsProvider() = default;
    virtual int64_t num_blocks() const = 0;
    /// Block i's tensors on the model's device, in the model's precision. Valid until release(i).
    virtual BlockWeights acquire(int64_t i) = 0;
    virtual void release(int64_t /*i*/) {}
    /// True when acquire(i) returns the same tensors (same storage) for the model's lifetime, so that
    /// tensors derived from them (the packed QKV weight, FP8 copies; Note [FP8 linears]) may be cached by
    /// storage address. Default false (e.g. weights gathered per call).
    virtual bool resident() const { return false; }
    /// The tensors that hold block i's values for the model's lifetime, so that an in-place change (a LoRA
    /// merge through WanModel::named_parameters) reaches every later acquire(i); nullopt where there are
    /// none (weights gathered per call). Default: acquire(i) when resident().
    virtual std::optional<BlockWeights> stored(int64_t i) {
        if (!resident()) return std::nullopt;
        BlockWeights w = acquire(i);
        release(i);
        return w;
    }
    /// Where stored(i) is nullopt because each rank holds a part of every tensor (FSDP shards): this rank's parts
    /// of block i's parameters (checkpoint names, "blocks.i." prefix), which an in-place change reaches like
    /// stored()'s. Empty by default (no such parts).
    virtual std::vector<ParameterPart> stored_parts(int64_t /*i*/) { return {}; }
    /// Called by WanModel::weights_changed() after stored() tensors (or stored_parts()) were changed in place.
    virtual void weights_changed() {}
};

/// Default provider: every block resident.
class ResidentBlockWeights : public BlockWeightsProvider {
public:
    explicit ResidentBlockWeights(std::vector<BlockWeights> blocks) : blocks_(std::move(blocks)) {}
    int64_t num_blocks() const override { return static_cast<int64_t>(blocks_.size()); }
    BlockWeights acquire(int64_t i) override { return blocks_.at(static_cast<size_t>(i)); }
    bool resident() const override { return true; }

private:
    std::vector<BlockWeights> blocks_;
};

/// Loads block `i` (or the root tensors) from `store`, validating shapes, onto `options.device` in the
/// resolved precision. Building blocks for custom providers (e.g. a sharded one).
BlockWeights load_block_weights(const io::WanConfig& config, const io::TensorStore& store, int64_t i,
                                const ModelOptions& options);
RootWeights load_root_weights(const io::WanConfig& config, const io::TensorStore& store,
                              const ModelOptions& options);
/// What `options.weight_dtype` means for `store`: Auto becomes Fp8 when every block Linear weight of `config`
/// is stored as fp8 (F8_E4M3, or F8_E5M2 re-coded as e4m3 at load), else Compute.
WeightDtype resolve_weight_dtype(const ModelOptions& options, const io::WanConfig& config, const io::TensorStore& store);
/// True for the block Linear weights that fp8 holds as codes (self_attn/cross_attn q, k, v, o; ffn.0, ffn.2).
bool is_fp8_linear(const ParameterSpec& spec);
/// Block i's tensor specs (names with the "blocks.i." prefix), in state-dict order.
std::vector<ParameterSpec> block_parameter_specs(const io::WanConfig& config, int64_t i);
/// The dtype a parameter is held in under `precision` (bf16 for GEMM weights in BF16Mixed, else f32).
at::ScalarType parameter_dtype(const ParameterSpec& spec, Precision precision);
/// Block i's weights from tensors looked up by checkpoint key (e.g. the result of an FSDP all-gather),
/// converted to the model's precision on `options.device`. Throws naming a missing or misshapen tensor.
BlockWeights block_weights_from(const io::WanConfig& config, int64_t i,
                                const std::function<at::Tensor(const std::string&)>& tensor_of,
                                const ModelOptions& options);

/// Throws wan::Error when `store` lacks a tensor of `config` or has one with another shape; the message
/// names the store, the key, the expected and the found shape (all problems, up to a few). Extra keys are
/// logged as a warning (diffusers ignores them too).
void validate_checkpoint(const io::WanConfig& config, const io::TensorStore& store);

// ---- attention and sequence parallelism --------------------------------------------------------------

/// Non-causal softmax(Q·Kᵀ/sqrt(d))·V on [B, S, H, d] tensors, keys/values limited to their first `k_len`
/// rows (k_len < 0: all). Output [B, Sq, H, d] in q's dtype. LibTorch ≥ 2.0: fused attention kernels (see
/// AttentionBackend; bf16 on CUDA in mixed mode). LibTorch 1.13: exact f32 math, chunked over queries to
/// bound memory. Asking for FlashAttention3 where it cannot run throws wan::Error saying why. Ref: §4.5.
/// `fp8` other than Off: FlashAttention-3's FP8 forward where it runs (see AttentionFp8), else as Off.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t k_len = -1,
                     AttentionBackend backend = AttentionBackend::Auto, AttentionFp8 fp8 = AttentionFp8::Off);

/// Empty when FlashAttention-3 can run attention on these q, k, v ([B, S, H, d]); else why not (not built
/// in, not a Hopper GPU, dtype, head dim, alignment).
std::string flash_attention3_misfit(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);
/// Empty when FlashAttention-3's FP8 forward can run on these bf16 q, k, v ([B, S, H, d]; attention quantises
/// them itself, so their layout does not matter); else why not.
std::string flash_attention3_fp8_misfit(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

/// What a bf16, head-dim-128 attention call on `device` runs with `backend`: "fa3" or "cudnn" (Auto),
/// "cpu", or the forced backend's name ("fa3", "cudnn", "flash", "sdpa"). For reports (--check, wan-bench).
std::string attention_kernel_name(c10::Device device, AttentionBackend backend = AttentionBackend::Auto);
/// "auto", "fa3", "cudnn", "flash", "sdpa" → the backend; anything else → nullopt.
std::optional<AttentionBackend> parse_attention_backend(const std::string& name);

/// FlashAttention-3 on q, k, v ([B, S, H, d], all keys) with the log-sum-exp of each query row: returns
/// {O [B, Sq, H, d] bf16, lse [B, H, Sq] f32}, what ring attention merges blocks with; two undefined tensors
/// where it cannot run (flash_attention3_misfit says why).
std::pair<at::Tensor, at::Tensor> flash_attention3_with_lse(const at::Tensor& q, const at::Tensor& k,
                                                            const at::Tensor& v);

/// The DiT's view of sequence parallelism (§8.3). The defaults are a world of one. With world() > 1 the
/// forward pads the token sequence to a multiple of world(), keeps rank()'s contiguous chunk, applies
/// RoPE for the chunk's global positions, runs the blocks and the head on the chunk and calls
/// gather_sequence before unpatchifying.
class SequenceParallel {
public:
    virtual ~SequenceParallel() = default;
    virtual int world() const { return 1; }
    virtual int rank() const { return 0; }
    /// q, k, v: this rank's [B, s, H, d] chunk (bf16 in mixed mode, RoPE applied). `k_len` is the number
    /// of real (unpadded) tokens in the GLOBAL sequence, the same for every sample of the call (the
    /// forward calls once per sample when they differ). Returns [B, s, H, d]. Upstream USP attends padded
    /// keys too (§8.3 PARITY); the single-rank default limits keys to k_len as the single-GPU path does.
    virtual at::Tensor self_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      int64_t k_len) {
        return attention(q, k, v, k_len, attention_backend(), attention_fp8());
    }
    /// [B, S/world, C] local rows → [B, S, C], concatenated in rank order.
    virtual at::Tensor gather_sequence(const at::Tensor& local) { return local; }
    /// In-place element-wise sum over the SP group (step caching's change measure, which must be the same
    /// on every rank). Default: a world of one, nothing to do.
    virtual void all_reduce_sum(at::Tensor& /*t*/) {}
    /// `t` on the host (step caching's sums, read back every step). Default: a plain copy, which may block in a
    /// CUDA synchronisation; with peers, the pipeline's hook waits so that a peer's failure is noticed
    /// (Note [Watched device waits] in dist/dist.h).
    virtual at::Tensor to_host(const at::Tensor& t) { return t.to(at::kCPU); }
    /// The attention kernel to run locally: the model's ModelOptions::attention (WanModel sets it).
    AttentionBackend attention_backend() const { return attention_backend_; }
    void set_attention_backend(AttentionBackend backend) { attention_backend_ = backend; }
    /// Whether self-attention runs in FP8: the model's ModelOptions::attention_fp8 (WanModel sets it).
    AttentionFp8 attention_fp8() const { return attention_fp8_; }
    void set_attention_fp8(AttentionFp8 mode) { attention_fp8_ = mode; }

private:
    AttentionBackend attention_backend_ = AttentionBackend::Auto;
    AttentionFp8 attention_fp8_ = AttentionFp8::Off;
};

/// Token range of one rank: the sequence padded to a multiple of `world`, split into equal chunks.
struct SequenceChunk {
    int64_t padded_len = 0;  ///< ceil(seq_len / world) * world
    int64_t chunk_len = 0;   ///< padded_len / world
    int64_t begin = 0;       ///< rank * chunk_len
};
SequenceChunk sequence_chunk(int64_t seq_len, int world, int rank);
/// [B, S, C] → zero-padded to chunk.padded_len rows → rows [begin, begin + chunk_len).
at::Tensor split_sequence(const at::Tensor& x, const SequenceChunk& chunk);

// ---- RoPE --------------------------------------------------------------------------------------------

/// Latent-patch grid of one sample (F_p, H_p, W_p).
struct Grid {
    int64_t f = 0, h = 0, w = 0;
    int64_t tokens() const { return f * h * w; }
};

/// Rotation tables for `rows` sequence rows starting at global row `row_offset`, one per sample:
/// cos [B, rows, 1, d] and signed sin [B, rows, 1, d] with each pair's value duplicated and the sign
/// pattern (−sin, +sin), so that rope(x) = x·cos + swap_pairs(x)·sin equals the complex product of §4.6.
/// Rows at or past a sample's token count get the identity (cos 1, sin 0). Built in f64 on the CPU, then
/// converted to `dtype` on `device`.
struct RopeTables {
    at::Tensor cos, sin;
};
RopeTables rope_tables(const std::vector<Grid>& grids, int64_t head_dim, int64_t rows, int64_t row_offset,
                       at::ScalarType dtype, c10::Device device);
/// Applies the tables to x [B, S, H, d]; computes in the tables' dtype, returns that dtype.
at::Tensor apply_rope(const at::Tensor& x, const RopeTables& tables);

// ---- the model ---------------------------------------------------------------------------------------

namespace detail {
struct CacheAccess;   // the forward's parts that fill a CrossAttentionCache (dit/forward.h)
class StepCacheRun;   // one forward's use of a StepCache (dit/step_cache.h)
}  // namespace detail

/// Per-prompt cache of the text embedding and of every block's cross-attention K/V. Both depend only on
/// the context (and the weights), so one cache per prompt can be reused across all solver steps without
/// changing any value. The cache notices a different context tensor object (or shape) and recomputes;
/// call clear() after modifying a context tensor in place.
class CrossAttentionCache {
public:
    void clear();

private:
    friend struct detail::CacheAccess;
    const void* owner_ = nullptr;          ///< the model that filled it
    std::vector<at::Tensor> contexts_;     ///< the caller's tensors (identity check)
    at::Tensor text_;                      ///< [B, text_len, D] text embedding
    std::vector<at::Tensor> k_, v_;        ///< per block [B, text_len, H, d]
};

/// Step caching (TeaCache, Liu et al. 2024; beyond upstream). See Note [Step caching] in step_cache.cpp.
struct StepCacheOptions {
    /// Accumulated (rescaled) relative change below which the block stack is skipped. 0: never skip.
    double threshold = 0;
    /// Steps always computed at the start (≥ 1: step 0 has nothing to reuse). The last step of a job
    /// (StepCache::begin's num_steps) is always computed too.
    int warmup_steps = 1;
    /// What the change is measured on.
    enum class Indicator {
        /// Block 0's modulated self-attention input LN(x)·(1 + scale) + shift (the TeaCache paper's
        /// choice); depends on the latent and t. Costs one LayerNorm and keeps one f32 copy of it.
        ModulatedInput = 1,
        /// The time-embedding modulation e0 [B, 6D] (what TeaCache4Wan2.1 measures); depends on t only,
        /// so the skip schedule is fixed by the timesteps.
        TimeModulation = 2,
    };
    Indicator indicator = Indicator::ModulatedInput;
    /// Polynomial applied to each step's relative change before accumulating, highest degree first
    /// (numpy.poly1d order). Default identity. TeaCache fits these per model on real weights; ours must be
    /// fitted the same way before the threshold means the same as TeaCache's.
    std::vector<double> rescale = {1.0, 0.0};
};

/// One denoising branch's step cache (one for the conditional, one for the unconditional pass: their
/// residuals differ). Owned by the caller, passed to WanModel::forward for every step of one job.
class StepCache {
public:
    explicit StepCache(StepCacheOptions options = {});
    /// Starts a job of `num_steps` forward calls (clears the residual, the accumulator and the counters).
    /// num_steps ≤ 0: the last step is not known and not forced.
    void begin(int num_steps);
    const StepCacheOptions& options() const { return options_; }
    int steps_seen() const { return step_; }        ///< forward calls since begin()
    int steps_computed() const { return computed_; }  ///< of those, how many ran the block stack
    int steps_skipped() const { return step_ - computed_; }
    double last_change() const { return last_change_; }  ///< rescaled relative change of the last call

private:
    friend class detail::StepCacheRun;
    StepCacheOptions options_;
    int num_steps_ = 0, step_ = 0, computed_ = 0;
    double accumulated_ = 0, last_change_ = 0;
    const void* owner_ = nullptr;  ///< the model that filled it
    at::Tensor previous_;          ///< the indicator at the previous call (f32)
    at::Tensor residual_;          ///< [B, s, D] f32: x after the blocks − x before, at the last computed step
    at::Tensor block0_modulation_; ///< [1, 6, D] f32 (ModulatedInput), fetched once
};

/// Names of the forward intermediates given to the hook: "patch_embedding.<b>" [1, D, F_p, H_p, W_p],
/// "time_embedding" [B, D], "time_projection" [B, 6D], "text_embedding" [B, text_len, D],
/// "block<i>" [B, s, D], "head" [B, s, 64] (s = local sequence rows; = seq_len on one rank).
using IntermediateHook = std::function<void(const std::string& name, const at::Tensor& value)>;

class WanModel {
public:
    /// Validates `store` against `config` (every key, every shape) and loads all weights onto the device.
    WanModel(const io::WanConfig& config, const io::TensorStore& store, ModelOptions options = {});
    /// From already built weights (custom block provider, e.g. sharded).
    WanModel(const io::WanConfig& config, RootWeights root, std::shared_ptr<BlockWeightsProvider> blocks,
             ModelOptions options = {});

    /// Random weights on `options.device`, no checkpoint (benchmarks). `num_layers_override` > 0 replaces
    /// config.num_layers. Seeds the global generators with `seed` (at::manual_seed).
    static WanModel random(const io::WanConfig& config, ModelOptions options, uint64_t seed,
                           int64_t num_layers_override = -1);

    /// One sample. x: [in_dim, F, H, W] f32; t: 0-dim or [1]; context: [L, text_dim] (L ≤ text_len);
    /// seq_len ≥ N = F·⌊H/2⌋·⌊W/2⌋. Returns [out_dim, F, 2⌊H/2⌋, 2⌊W/2⌋] f32.
    /// `step_cache` (optional): may skip the block stack, reusing its cached residual (Note [Step caching]).
    at::Tensor forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& context, int64_t seq_len,
                       CrossAttentionCache* cache = nullptr, StepCache* step_cache = nullptr) const;
    /// A batch, run as one (upstream pads each sample to seq_len). t: [B] (or one value for all).
    std::vector<at::Tensor> forward(const std::vector<at::Tensor>& x, const at::Tensor& t,
                                    const std::vector<at::Tensor>& context, int64_t seq_len,
                                    CrossAttentionCache* cache = nullptr, StepCache* step_cache = nullptr) const;

    const io::WanConfig& config() const { return config_; }
    const ModelOptions& options() const { return options_; }
    c10::Device device() const { return options_.device; }
    Precision precision() const { return precision_; }  ///< resolved (never Auto)
    const RootWeights& root_weights() const { return root_; }
    BlockWeightsProvider& block_weights() const { return *blocks_; }

    /// Every parameter under its checkpoint key: the stored tensors (BlockWeightsProvider::stored), which an
    /// in-place change reaches. With fp8 weights a Linear's "<name>.weight" holds its codes (uint8) and is
    /// followed by "<name>.weight_scale" ([N] f32). Throws for a provider without stored tensors (FSDP shards).
    std::vector<std::pair<std::string, at::Tensor>> named_parameters() const;
    /// named_parameters() as whole parts where the blocks have stored tensors; else (FSDP shards) the root
    /// parameters whole and this rank's parts of the block parameters (BlockWeightsProvider::stored_parts).
    /// Throws where a block has neither.
    std::vector<ParameterPart> parameter_parts() const;
    /// Forgets what the forward derived from the weights (FP8 copies, concatenated QKV); they are rebuilt
    /// from the current values at next use. Call after changing parameters in place (a LoRA merge).
    void weights_changed();

    /// The block Linear weights are held as fp8 codes (Note [FP8 weights]).
    bool fp8_weights() const { return fp8_weights_; }
    /// Bytes of the weights as held, from the parameter shapes: {all blocks (block_weight_bytes × layers, fp8
    /// where fp8_weights()), the root (root_weight_bytes)}. For the load log and wan-bench.
    std::pair<int64_t, int64_t> weight_bytes() const;

    void set_block_weights_provider(std::shared_ptr<BlockWeightsProvider> provider);
    /// Switches the FP8 linears (ModelOptions::fp8) on or off between forwards.
    void set_fp8(bool on) { options_.fp8 = on; }
    /// Switches FP8 self-attention (ModelOptions::attention_fp8) between forwards.
    void set_attention_fp8(AttentionFp8 mode);
    /// Sets ModelOptions::ffn_chunks (≥ 1) and lean_activations between forwards.
    void set_activation_memory(int ffn_chunks, bool lean);
    void set_sequence_parallel(std::shared_ptr<SequenceParallel> sp);
    /// Debug/test hook for intermediates (empty: none; costs nothing).
    void set_intermediate_hook(IntermediateHook hook) { hook_ = std::move(hook); }

private:
    struct Impl;
    bool provider_holds_fp8() const;
    io::WanConfig config_;
    ModelOptions options_;
    Precision precision_ = Precision::Float32;
    bool fp8_weights_ = false;
    RootWeights root_;
    std::shared_ptr<BlockWeightsProvider> blocks_;
    std::shared_ptr<SequenceParallel> sp_;
    IntermediateHook hook_;
    std::shared_ptr<Impl> impl_;  ///< caches (RoPE tables, base frequency table); thread-safe
};

}  // namespace wan::dit
