// WanModel: construction and the forward driver — patchify, time / text embeddings, blocks, head,
// unpatchify — over the parts in embeddings.cpp, block.cpp (with kernels.cpp), head.cpp and step_cache.cpp.
// Ref: wan21-reference.md §4.4 (forward and dtypes), §8.3 (USP chunks).
#include "dit/dit.h"
#include "dit/forward.h"
#include "dit/internal.h"
#include "dit/kernels.h"
#include "dit/stage_clock.h"
#include "dit/step_cache.h"
#include "dit/streaming.h"

#include "core/core.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace wan::dit {

void CrossAttentionCache::clear() {
    owner_ = nullptr;
    contexts_.clear();
    text_ = at::Tensor();
    k_.clear();
    v_.clear();
}

struct WanModel::Impl {
    /// RoPE tables of this rank's rows, cached per shape. Thread-safe.
    RopeTables rope(const std::vector<Grid>& grids, int64_t head_dim, const SequenceChunk& chunk, c10::Device device);
    /// Packed QKV weights and FP8 copies of resident blocks (kernels.h).
    detail::DerivedWeights derived;

private:
    struct RopeEntry {
        std::vector<Grid> grids;
        int64_t rows = 0, offset = 0;
        RopeTables tables;
    };
    std::mutex mu_;
    std::vector<RopeEntry> rope_cache_;  // most recent last; a handful of shapes per run (cond/uncond share)
};

RopeTables WanModel::Impl::rope(const std::vector<Grid>& grids, int64_t head_dim, const SequenceChunk& chunk,
                                c10::Device device) {
    // CPU: f64 as upstream; elsewhere f32 tables (no f64 on the GPU hot path).
    const at::ScalarType dtype = device.is_cpu() ? at::kDouble : at::kFloat;
    const int64_t rows = chunk.chunk_len;
    std::lock_guard<std::mutex> lock(mu_);
    auto same = [&](const RopeEntry& r) {
        if (r.rows != rows || r.offset != chunk.begin || r.grids.size() != grids.size()) return false;
        for (size_t i = 0; i < grids.size(); ++i)
            if (r.grids[i].f != grids[i].f || r.grids[i].h != grids[i].h || r.grids[i].w != grids[i].w) return false;
        return r.tables.cos.scalar_type() == dtype && r.tables.cos.device() == device;
    };
    auto it = std::find_if(rope_cache_.begin(), rope_cache_.end(), same);
    if (it != rope_cache_.end()) return it->tables;
    RopeTables tables = rope_tables(grids, head_dim, rows, chunk.begin, dtype, device);
    rope_cache_.push_back({grids, rows, chunk.begin, tables});
    if (rope_cache_.size() > 4) rope_cache_.erase(rope_cache_.begin());
    return tables;
}

void WanModel::weights_changed() {
    // LoRA merges write into the resident weights in place: copies derived from them are stale now.
    std::lock_guard<std::mutex> lock(impl_->derived.mu);
    impl_->derived.packed.clear();
    impl_->derived.fp8.clear();
    blocks_->weights_changed();
}

WanModel::WanModel(const io::WanConfig& config, RootWeights root, std::shared_ptr<BlockWeightsProvider> blocks,
                   ModelOptions options)
    : config_(config),
      options_(options),
      precision_(detail::resolve_precision(options)),
      root_(std::move(root)),
      blocks_(std::move(blocks)),
      sp_(std::make_shared<SequenceParallel>()),
      impl_(std::make_shared<Impl>()) {
    config_.validate("WanModel config");
    WAN_CHECK(config_.patch_size[0] >= 1 && config_.patch_size[1] >= 1 && config_.patch_size[2] >= 1,
              "WanModel: patch size must be positive");
    WAN_CHECK(blocks_ != nullptr, "WanModel: no block weights provider");
    WAN_CHECK(options_.ffn_chunks >= 1, "WanModel: ffn_chunks %d: must be at least 1", options_.ffn_chunks);
    WAN_CHECK(blocks_->num_blocks() == config_.num_layers, "WanModel: the block provider has %lld blocks, config has %lld",
              static_cast<long long>(blocks_->num_blocks()), static_cast<long long>(config_.num_layers));
    sp_->set_attention_backend(options_.attention);
    sp_->set_attention_fp8(options_.attention_fp8);
    fp8_weights_ = provider_holds_fp8();
}

// From block 0's stored tensors where the provider has them, else what the options ask for (a provider without
// stored tensors never acquires here: FSDP's acquire is a collective).
bool WanModel::provider_holds_fp8() const {
    if (config_.num_layers == 0) return false;
    const std::optional<BlockWeights> b = blocks_->stored(0);
    return b ? holds_fp8(*b) : options_.weight_dtype == WeightDtype::Fp8;
}

std::pair<int64_t, int64_t> WanModel::weight_bytes() const {
    return {config_.num_layers * block_weight_bytes(config_, precision_, fp8_weights_),
            root_weight_bytes(config_, precision_)};
}

void WanModel::set_block_weights_provider(std::shared_ptr<BlockWeightsProvider> provider) {
    WAN_CHECK(provider && provider->num_blocks() == config_.num_layers,
              "WanModel: a block provider must have num_layers = %lld blocks", static_cast<long long>(config_.num_layers));
    blocks_ = std::move(provider);
    fp8_weights_ = provider_holds_fp8();
}

void WanModel::set_activation_memory(int ffn_chunks, bool lean) {
    WAN_CHECK(ffn_chunks >= 1, "WanModel: ffn_chunks %d: must be at least 1", ffn_chunks);
    options_.ffn_chunks = ffn_chunks;
    options_.lean_activations = lean;
}

void WanModel::set_sequence_parallel(std::shared_ptr<SequenceParallel> sp) {
    sp_ = sp ? std::move(sp) : std::make_shared<SequenceParallel>();
    sp_->set_attention_backend(options_.attention);
    sp_->set_attention_fp8(options_.attention_fp8);
}

void WanModel::set_attention_fp8(AttentionFp8 mode) {
    options_.attention_fp8 = mode;
    sp_->set_attention_fp8(mode);
}

at::Tensor WanModel::forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& context, int64_t seq_len,
                             CrossAttentionCache* cache, StepCache* step_cache) const {
    WAN_CHECK(t.defined() && t.numel() == 1 && t.dim() <= 1,
              "DiT forward: timestep t must be a 0-dim or [1] tensor for one sample (got %lld elements)",
              static_cast<long long>(t.defined() ? t.numel() : 0));
    return forward(std::vector<at::Tensor>{x}, t, std::vector<at::Tensor>{context}, seq_len, cache, step_cache)[0];
}

namespace {

std::string shape_of(const at::Tensor& t) { return detail::shape_string(t.sizes()); }

// Latent b's patch grid, after checking the latent and its context against the config and seq_len.
Grid checked_grid(const io::WanConfig& c, int64_t b, const at::Tensor& x, const at::Tensor& ctx, int64_t seq_len) {
    const int64_t pt = c.patch_size[0], ph = c.patch_size[1], pw = c.patch_size[2];
    const auto ll = [](int64_t v) { return static_cast<long long>(v); };
    WAN_CHECK(x.defined() && x.dim() == 4, "DiT forward: latent %lld must be [in_dim, F, H, W], got %s", ll(b),
              x.defined() ? shape_of(x).c_str() : "undefined");
    WAN_CHECK(x.size(0) == c.in_dim, "DiT forward: latent %lld has %lld channels, the model expects in_dim = %lld",
              ll(b), ll(x.size(0)), ll(c.in_dim));
    WAN_CHECK(x.size(1) >= pt && x.size(2) >= ph && x.size(3) >= pw,
              "DiT forward: latent %lld of size F=%lld H=%lld W=%lld is smaller than the %lldx%lldx%lld patch", ll(b),
              ll(x.size(1)), ll(x.size(2)), ll(x.size(3)), ll(pt), ll(ph), ll(pw));
    // The stride-(1,2,2) conv drops a trailing odd row / column, as upstream does.
    const Grid g{x.size(1) / pt, x.size(2) / ph, x.size(3) / pw};
    WAN_CHECK(g.f <= 1024 && g.h <= 1024 && g.w <= 1024,
              "DiT forward: latent %lld patch grid %lldx%lldx%lld exceeds the 1024 positions per axis of RoPE", ll(b),
              ll(g.f), ll(g.h), ll(g.w));
    WAN_CHECK(ctx.defined() && ctx.dim() == 2, "DiT forward: context %lld must be [L, text_dim], got %s", ll(b),
              ctx.defined() ? shape_of(ctx).c_str() : "undefined");
    WAN_CHECK(ctx.size(1) == c.text_dim, "DiT forward: context %lld is %lld wide, the model expects text_dim = %lld%s",
              ll(b), ll(ctx.size(1)), ll(c.text_dim), ctx.size(1) > c.text_dim ? " (context wider than text_dim)" : "");
    WAN_CHECK(ctx.size(0) >= 1 && ctx.size(0) <= c.text_len,
              "DiT forward: context %lld has %lld rows, expected 1..text_len = %lld", ll(b), ll(ctx.size(0)),
              ll(c.text_len));
    WAN_CHECK(seq_len >= g.tokens(),
              "DiT forward: seq_len %lld is smaller than the %lld tokens of latent %lld (grid %lldx%lldx%lld)",
              ll(seq_len), ll(g.tokens()), ll(b), ll(g.f), ll(g.h), ll(g.w));
    return g;
}

// The batch's sample sizes, after checking it.
struct Samples {
    std::vector<Grid> grids;
    std::vector<int64_t> tokens;
};
Samples check_batch(const io::WanConfig& c, const std::vector<at::Tensor>& xs, const at::Tensor& t,
                    const std::vector<at::Tensor>& contexts, int64_t seq_len) {
    const int64_t B = static_cast<int64_t>(xs.size());
    WAN_CHECK(B >= 1, "DiT forward: empty batch");
    WAN_CHECK(contexts.size() == xs.size(), "DiT forward: %lld latents but %zu contexts", static_cast<long long>(B),
              contexts.size());
    Samples s;
    for (int64_t b = 0; b < B; ++b) {
        s.grids.push_back(checked_grid(c, b, xs[b], contexts[b], seq_len));
        s.tokens.push_back(s.grids.back().tokens());
    }
    WAN_CHECK(t.defined() && (t.numel() == B || t.numel() == 1),
              "DiT forward: t has %lld elements, expected 1 or the batch size %lld",
              static_cast<long long>(t.defined() ? t.numel() : 0), static_cast<long long>(B));
    return s;
}

}  // namespace

std::vector<at::Tensor> WanModel::forward(const std::vector<at::Tensor>& xs, const at::Tensor& t,
                                          const std::vector<at::Tensor>& contexts, int64_t seq_len,
                                          CrossAttentionCache* cache, StepCache* step_cache) const {
    c10::InferenceMode inference_guard;
    Samples samples = check_batch(config_, xs, t, contexts, seq_len);
    StageClock clock(options_.device, options_.stage_clock);  // Note [Stage clock]
    detail::ForwardContext f(config_, root_, options_.device, *sp_, hook_, clock);
    f.B = static_cast<int64_t>(xs.size());
    f.grids = std::move(samples.grids);
    f.tokens = std::move(samples.tokens);
    f.same_len = std::all_of(f.tokens.begin(), f.tokens.end(), [&](int64_t n) { return n == f.tokens[0]; });
    f.D = config_.dim, f.H = config_.num_heads, f.d = config_.head_dim(), f.eps = config_.eps;
    f.mixed = precision_ == Precision::BF16Mixed;
    f.cd = f.mixed ? at::kBFloat16 : at::kFloat;
    f.round_output_bf16 = options_.round_output_bf16;
    f.attention = options_.attention;
    f.chunk = sequence_chunk(seq_len, sp_->world(), sp_->rank());
    f.s_local = f.chunk.chunk_len;
    f.cache = cache;
    f.ffn_chunks = options_.ffn_chunks;
    f.lean = options_.lean_activations;

    const detail::TimeEmbedding te = detail::time_embedding(f, t);
    clock.mark("time_embedding");
    f.text = detail::text_embedding(f, contexts, impl_.get());
    clock.mark("text_embedding");
    const auto kernels = detail::choose_kernels(options_, f, blocks_->resident(), fp8_weights_, impl_->derived);
    detail::ResidualStream s;
    s.x = detail::patch_embedding(f, xs, kernels->fused());
    s.bf16_values = f.mixed;
    clock.mark("patchify");
    f.rope = impl_->rope(f.grids, f.d, f.chunk, f.device);
    clock.mark("rope_tables");

    detail::StepCacheRun steps(step_cache, impl_.get());
    const bool skip = steps.skip_blocks(s.x, te.e0, *blocks_, f);
    WAN_CHECK(!kernels->fused() || (f.rope.cos.defined() && f.rope.cos.scalar_type() == at::kFloat),
              "DiT forward: the fused path needs f32 RoPE tables");
    clock.mark("step_cache");
    if (!skip) detail::run_blocks(s, te.e0, *blocks_, *kernels, f);
    if (steps.keeps_residual()) s.flush();  // the step cache keeps the residual of the whole stack
    clock.mark("last_residual");
    steps.store_residual(s.x);

    const at::Tensor out = detail::head(s, te.e, *kernels, f);
    std::vector<at::Tensor> result = detail::unpatchify(out, f);
    clock.mark("unpatchify");
    return result;
}

}  // namespace wan::dit
