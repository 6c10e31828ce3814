// WanModel forward: patchify, time / text embeddings, blocks, head, unpatchify, with upstream's dtype flow.
// Ref: wan21-reference.md §4.4 (forward and dtypes), §4.5 (attention), §4.8 (autocast), §8.3 (USP chunks).
#include "dit/dit.h"
#include "dit/fused.h"
#include "dit/stage_clock.h"

#include <unordered_map>
#include "dit/internal.h"

#include "core/core.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>

namespace wan::dit {

void CrossAttentionCache::clear() {
    owner_ = nullptr;
    contexts_.clear();
    text_ = at::Tensor();
    k_.clear();
    v_.clear();
}

// Note [Step caching]
// TeaCache (Liu et al. 2024, "Timestep Embedding Tells: It's Time to Cache for Video Diffusion Model"):
// consecutive denoising steps change the DiT's input only a little, and the block stack's residual
// (x after the blocks − x before) changes roughly as much. Each forward with a StepCache measures the
// relative L1 change of an indicator since the previous call, rel = Σ|ind_t − ind_{t−1}| / Σ|ind_{t−1}|,
// maps it through the rescale polynomial and adds it to an accumulator. While the accumulator stays below
// the threshold the blocks are skipped and the residual cached at the last computed step is added to the
// patch embedding instead; once it reaches the threshold the blocks run, the residual is refreshed and the
// accumulator resets. Warm-up steps and the last step always run. Embeddings and the head always run.
// As in TeaCache4Wan2.1 the indicator's previous value is updated at every call (consecutive changes are
// accumulated), and each CFG branch has its own cache. The indicator is block 0's modulated input by
// default (the paper's); TeaCache4Wan2.1 uses the time modulation e0 with a polynomial fitted on the real
// weights. Padded token rows are left out of the sums and, with sequence parallelism, the two sums are
// added over the SP group, so that every rank (and every layout) takes the same decision.
// Beyond upstream: off unless the caller passes a cache with a threshold > 0.

StepCache::StepCache(StepCacheOptions options) : options_(std::move(options)) {
    WAN_CHECK(options_.threshold >= 0, "step cache: threshold %g must be ≥ 0", options_.threshold);
    WAN_CHECK(options_.warmup_steps >= 1, "step cache: warmup_steps %d must be ≥ 1 (step 0 has nothing to reuse)",
              options_.warmup_steps);
    WAN_CHECK(!options_.rescale.empty(), "step cache: the rescale polynomial needs at least one coefficient");
}

void StepCache::begin(int num_steps) {
    num_steps_ = num_steps;
    step_ = computed_ = 0;
    accumulated_ = last_change_ = 0;
    previous_ = at::Tensor();
    residual_ = at::Tensor();
}

struct WanModel::Impl {
    std::mutex mu;
    struct RopeEntry {
        std::vector<Grid> grids;
        int64_t rows = 0, offset = 0;
        RopeTables tables;
    };
    std::vector<RopeEntry> rope_cache;  // most recent last; a handful of shapes per run (cond/uncond share)
    // Per-weight derived tensors of resident blocks, keyed by the source weight's storage (stable while
    // resident): the concatenated QKV weight/bias and FP8 copies. See Note [FP8 linears].
    std::unordered_map<const void*, at::Tensor> derived;
    struct Fp8Weight {
        at::Tensor w8;     ///< [N, K] float8_e4m3fn
        at::Tensor scale;  ///< [1, N] f32
    };
    std::unordered_map<const void*, Fp8Weight> fp8;
    bool fp8_broken = false;
};

void WanModel::weights_changed() {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->derived.clear();
    impl_->fp8.clear();
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
    WAN_CHECK(blocks_->num_blocks() == config_.num_layers, "WanModel: the block provider has %lld blocks, config has %lld",
              static_cast<long long>(blocks_->num_blocks()), static_cast<long long>(config_.num_layers));
}

void WanModel::set_block_weights_provider(std::shared_ptr<BlockWeightsProvider> provider) {
    WAN_CHECK(provider && provider->num_blocks() == config_.num_layers,
              "WanModel: a block provider must have num_layers = %lld blocks", static_cast<long long>(config_.num_layers));
    blocks_ = std::move(provider);
}

void WanModel::set_sequence_parallel(std::shared_ptr<SequenceParallel> sp) {
    sp_ = sp ? std::move(sp) : std::make_shared<SequenceParallel>();
}

at::Tensor WanModel::forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& context, int64_t seq_len,
                             CrossAttentionCache* cache, StepCache* step_cache) const {
    WAN_CHECK(t.defined() && t.numel() == 1 && t.dim() <= 1,
              "DiT forward: timestep t must be a 0-dim or [1] tensor for one sample (got %lld elements)",
              static_cast<long long>(t.defined() ? t.numel() : 0));
    return forward(std::vector<at::Tensor>{x}, t, std::vector<at::Tensor>{context}, seq_len, cache, step_cache)[0];
}

namespace {

// y = x Wᵀ + b with x cast to the weight's dtype: bf16 GEMM for bf16 weights, f32 for the f32 islands,
// exactly what autocast does in the regions upstream runs these Linears in (§4.8).
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
    return at::linear(x.to(w.scalar_type()), w, b);
}

// WanRMSNorm: f32 normalisation, rounded to the input dtype, times the f32 weight → f32 (§4.5, §4.7).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
    const at::Tensor xf = x.to(at::kFloat);
    at::Tensor n = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
    return n.to(x.scalar_type()) * weight;
}

at::Tensor layer_norm(const at::Tensor& x, int64_t dim, double eps) {
    return at::layer_norm(x.to(at::kFloat), {dim}, {}, {}, eps);
}

std::string shape_of(const at::Tensor& t) { return detail::shape_string(t.sizes()); }

}  // namespace

std::vector<at::Tensor> WanModel::forward(const std::vector<at::Tensor>& xs, const at::Tensor& t_in,
                                          const std::vector<at::Tensor>& contexts, int64_t seq_len,
                                          CrossAttentionCache* cache, StepCache* step_cache) const {
    c10::InferenceMode inference_guard;
    const io::WanConfig& c = config_;
    const int64_t B = static_cast<int64_t>(xs.size());
    const int64_t D = c.dim, H = c.num_heads, d = c.head_dim();
    const int64_t pt = c.patch_size[0], ph = c.patch_size[1], pw = c.patch_size[2];
    const double eps = c.eps;
    const c10::Device dev = options_.device;
    const bool mixed = precision_ == Precision::BF16Mixed;
    const at::ScalarType cd = mixed ? at::kBFloat16 : at::kFloat;  // GEMM / attention dtype
    const auto copts = at::TensorOptions().device(dev).dtype(cd);

    // ---- input checks ---------------------------------------------------------------------------------
    WAN_CHECK(B >= 1, "DiT forward: empty batch");
    WAN_CHECK(contexts.size() == xs.size(), "DiT forward: %lld latents but %zu contexts", static_cast<long long>(B),
              contexts.size());
    std::vector<Grid> grids;
    std::vector<int64_t> tokens;
    for (int64_t b = 0; b < B; ++b) {
        const at::Tensor& x = xs[b];
        WAN_CHECK(x.defined() && x.dim() == 4, "DiT forward: latent %lld must be [in_dim, F, H, W], got %s",
                  static_cast<long long>(b), x.defined() ? shape_of(x).c_str() : "undefined");
        WAN_CHECK(x.size(0) == c.in_dim, "DiT forward: latent %lld has %lld channels, the model expects in_dim = %lld",
                  static_cast<long long>(b), static_cast<long long>(x.size(0)), static_cast<long long>(c.in_dim));
        WAN_CHECK(x.size(1) >= pt && x.size(2) >= ph && x.size(3) >= pw,
                  "DiT forward: latent %lld of size F=%lld H=%lld W=%lld is smaller than the %lldx%lldx%lld patch",
                  static_cast<long long>(b), static_cast<long long>(x.size(1)), static_cast<long long>(x.size(2)),
                  static_cast<long long>(x.size(3)), static_cast<long long>(pt), static_cast<long long>(ph),
                  static_cast<long long>(pw));
        // The stride-(1,2,2) conv drops a trailing odd row / column, as upstream does.
        Grid g{x.size(1) / pt, x.size(2) / ph, x.size(3) / pw};
        WAN_CHECK(g.f <= 1024 && g.h <= 1024 && g.w <= 1024,
                  "DiT forward: latent %lld patch grid %lldx%lldx%lld exceeds the 1024 positions per axis of RoPE",
                  static_cast<long long>(b), static_cast<long long>(g.f), static_cast<long long>(g.h),
                  static_cast<long long>(g.w));
        grids.push_back(g);
        tokens.push_back(g.tokens());
        const at::Tensor& ctx = contexts[b];
        WAN_CHECK(ctx.defined() && ctx.dim() == 2, "DiT forward: context %lld must be [L, text_dim], got %s",
                  static_cast<long long>(b), ctx.defined() ? shape_of(ctx).c_str() : "undefined");
        WAN_CHECK(ctx.size(1) == c.text_dim,
                  "DiT forward: context %lld is %lld wide, the model expects text_dim = %lld%s",
                  static_cast<long long>(b), static_cast<long long>(ctx.size(1)), static_cast<long long>(c.text_dim),
                  ctx.size(1) > c.text_dim ? " (context wider than text_dim)" : "");
        WAN_CHECK(ctx.size(0) >= 1 && ctx.size(0) <= c.text_len,
                  "DiT forward: context %lld has %lld rows, expected 1..text_len = %lld", static_cast<long long>(b),
                  static_cast<long long>(ctx.size(0)), static_cast<long long>(c.text_len));
        WAN_CHECK(seq_len >= g.tokens(),
                  "DiT forward: seq_len %lld is smaller than the %lld tokens of latent %lld (grid %lldx%lldx%lld)",
                  static_cast<long long>(seq_len), static_cast<long long>(g.tokens()), static_cast<long long>(b),
                  static_cast<long long>(g.f), static_cast<long long>(g.h), static_cast<long long>(g.w));
    }
    WAN_CHECK(t_in.defined() && (t_in.numel() == B || t_in.numel() == 1),
              "DiT forward: t has %lld elements, expected 1 or the batch size %lld",
              static_cast<long long>(t_in.defined() ? t_in.numel() : 0), static_cast<long long>(B));

    StageClock clock(dev);  // Note [Stage clock]: off unless WAN_DIT_STAGES=1
    const int world = sp_->world(), rank = sp_->rank();
    const SequenceChunk chunk = sequence_chunk(seq_len, world, rank);
    const int64_t s_local = chunk.chunk_len;

    // ---- (b) time embedding: f64 sinusoid on the CPU (cos first), f32 Linears ------------------------
    at::Tensor e, e0;
    {
        at::Tensor tt = t_in.detach().to(at::kCPU, at::kDouble).reshape({-1});
        if (tt.numel() != B) tt = tt.expand({B});
        const int64_t half = c.freq_dim / 2;
        at::Tensor omega = at::pow(10000.0, at::arange(half, at::TensorOptions().dtype(at::kDouble)).div(
                                                static_cast<double>(half)).neg());
        at::Tensor arg = at::outer(tt, omega);                                             // [B, half] f64
        at::Tensor sinus = at::cat({at::cos(arg), at::sin(arg)}, 1).to(at::kFloat).to(dev); // [B, freq_dim]
        e = linear(at::silu(linear(sinus, root_.time_embedding0_weight, root_.time_embedding0_bias)),
                   root_.time_embedding2_weight, root_.time_embedding2_bias);            // [B, D] f32
        e0 = linear(at::silu(e), root_.time_projection1_weight, root_.time_projection1_bias);  // [B, 6D] f32
        if (hook_) {
            hook_("time_embedding", e);
            hook_("time_projection", e0);
        }
        e0 = e0.view({B, 6, D});
    }
    clock.mark("time_embedding");

    // ---- (c) text embedding, zero-padded to text_len, all rows attended (cached per prompt) ---------
    bool cache_ok = cache && cache->owner_ == impl_.get() && cache->contexts_.size() == contexts.size() &&
                    cache->text_.defined();
    if (cache_ok)
        for (size_t b = 0; b < contexts.size(); ++b)
            cache_ok = cache_ok && cache->contexts_[b].is_same(contexts[b]);
    at::Tensor text;  // [B, text_len, D] cd
    if (cache_ok) {
        text = cache->text_;
    } else {
        at::Tensor padded = at::zeros({B, c.text_len, c.text_dim}, copts);  // [B, text_len, text_dim]
        for (int64_t b = 0; b < B; ++b) padded[b].narrow(0, 0, contexts[b].size(0)).copy_(contexts[b]);
        text = linear(at::gelu(linear(padded, root_.text_embedding0_weight, root_.text_embedding0_bias), "tanh"),
                      root_.text_embedding2_weight, root_.text_embedding2_bias);
        if (cache) {
            cache->clear();
            cache->owner_ = impl_.get();
            cache->contexts_ = contexts;
            cache->text_ = text;
            cache->k_.assign(static_cast<size_t>(c.num_layers), at::Tensor());
            cache->v_.assign(static_cast<size_t>(c.num_layers), at::Tensor());
        }
    }
    if (hook_) hook_("text_embedding", text);
    const int64_t Lt = text.size(1);
    clock.mark("text_embedding");

    // ---- (a) patchify: conv3d with stride = kernel, tokens in (f, h, w) order, zero rows up to S ------
    // The fused CUDA path (Note [Fused block kernels]) runs the patch embedding as one GEMM over the unfolded
    // patches (cuDNN's conv3d took ~6 ms at 14B 720p for 50 GFLOP) and keeps the residual stream in f32 from
    // here: the values are the same bf16 values, which is what makes every block's norms fusable.
    const bool use_fused = fused::enabled_for(dev) && cd == at::kBFloat16 && !dev.is_cpu() && d % 2 == 0;
    at::Tensor x;  // [B, s_local, D] residual stream (bf16 values until block 0's first add, then f32)
    {
        at::Tensor tok = at::zeros({B, chunk.padded_len, D}, use_fused ? copts.dtype(at::kFloat) : copts);
        for (int64_t b = 0; b < B; ++b) {
            const Grid& g = grids[b];
            if (use_fused) {
                const at::Tensor lat = xs[b].to(dev, cd);
                const int64_t C = lat.size(0);
                const at::Tensor patches = lat.narrow(1, 0, g.f * pt).narrow(2, 0, g.h * ph).narrow(3, 0, g.w * pw)
                                               .reshape({C, g.f, pt, g.h, ph, g.w, pw})
                                               .permute({1, 3, 5, 0, 2, 4, 6})
                                               .reshape({g.tokens(), C * pt * ph * pw});  // rows in (f, h, w) order
                const at::Tensor pe = at::linear(patches, root_.patch_embedding_weight.reshape({D, -1}),
                                                 root_.patch_embedding_bias);  // [N, D] cd
                if (hook_) hook_("patch_embedding." + std::to_string(b), pe.t().reshape({1, D, g.f, g.h, g.w}));
                tok[b].narrow(0, 0, tokens[b]).copy_(pe);
            } else {
                at::Tensor pe = at::conv3d(xs[b].to(dev, cd).unsqueeze(0), root_.patch_embedding_weight,
                                           root_.patch_embedding_bias, {pt, ph, pw});  // [1, D, F_p, H_p, W_p]
                if (hook_) hook_("patch_embedding." + std::to_string(b), pe);
                tok[b].narrow(0, 0, tokens[b]).copy_(pe.flatten(2)[0].transpose(0, 1));
            }
        }
        x = world == 1 ? tok : tok.narrow(1, chunk.begin, s_local).contiguous();
    }
    clock.mark("patchify");

    // ---- RoPE tables for this rank's rows (global positions), cached per shape ------------------------
    // CPU: f64 as upstream; elsewhere f32 tables (no f64 on the GPU hot path).
    const at::ScalarType rope_dtype = dev.is_cpu() ? at::kDouble : at::kFloat;
    RopeTables rope;
    {
        std::lock_guard<std::mutex> lock(impl_->mu);
        auto& rc = impl_->rope_cache;
        auto same = [&](const Impl::RopeEntry& r) {
            if (r.rows != s_local || r.offset != chunk.begin || r.grids.size() != grids.size()) return false;
            for (size_t i = 0; i < grids.size(); ++i)
                if (r.grids[i].f != grids[i].f || r.grids[i].h != grids[i].h || r.grids[i].w != grids[i].w)
                    return false;
            return r.tables.cos.scalar_type() == rope_dtype && r.tables.cos.device() == dev;
        };
        auto it = std::find_if(rc.begin(), rc.end(), same);
        if (it != rc.end()) {
            rope = it->tables;
        } else {
            rope = rope_tables(grids, d, s_local, chunk.begin, rope_dtype, dev);
            rc.push_back({grids, s_local, chunk.begin, rope});
            if (rc.size() > 4) rc.erase(rc.begin());
        }
    }
    const bool same_len = std::all_of(tokens.begin(), tokens.end(), [&](int64_t n) { return n == tokens[0]; });
    clock.mark("rope_tables");

    // q/k after RMS norm (f32) → RoPE → f32 → attention dtype, as upstream's rope_apply(...).float() (§4.5).
    auto rope_qk = [&](const at::Tensor& n) {  // n: [B, s, D] f32
        return apply_rope(n.view({B, s_local, H, d}), rope).to(at::kFloat).to(cd);
    };

    // ---- step caching: skip the block stack or remember x before it (Note [Step caching]) --------------
    bool skip_blocks = false;
    at::Tensor x_before;  // [B, s, D] cd
    if (step_cache && step_cache->options_.threshold > 0) {
        StepCache& sc = *step_cache;
        const StepCacheOptions& so = sc.options_;
        if (sc.owner_ != impl_.get()) {
            sc.owner_ = impl_.get();
            sc.previous_ = sc.residual_ = sc.block0_modulation_ = at::Tensor();
        }
        const int step = sc.step_++;
        at::Tensor ind;  // f32 indicator
        if (so.indicator == StepCacheOptions::Indicator::TimeModulation) {
            ind = e0;  // [B, 6, D], the same on every rank
        } else {
            if (!sc.block0_modulation_.defined()) {  // small and constant: fetched once (one gather with FSDP)
                sc.block0_modulation_ = blocks_->acquire(0).modulation.to(at::kFloat).clone();  // [1, 6, D]
                blocks_->release(0);
            }
            const at::Tensor m0 = sc.block0_modulation_ + e0;  // [B, 6, D]
            at::Tensor rows = at::arange(s_local, at::TensorOptions().dtype(at::kLong).device(dev)) + chunk.begin;
            at::Tensor lim = at::from_blob(tokens.data(), {B}, at::TensorOptions().dtype(at::kLong)).clone().to(dev);
            const at::Tensor real = (rows.unsqueeze(0) < lim.unsqueeze(1)).unsqueeze(2).to(at::kFloat);  // [B, s, 1]
            ind = (layer_norm(x, D, eps) * (1 + m0.narrow(1, 1, 1)) + m0.narrow(1, 0, 1)) * real;  // [B, s, D]
        }
        double change = 0;
        const bool comparable = sc.previous_.defined() && sc.previous_.sizes() == ind.sizes();
        if (comparable) {
            at::Tensor sums = at::stack({(ind - sc.previous_).abs().sum(at::kDouble), sc.previous_.abs().sum(at::kDouble)});
            if (so.indicator == StepCacheOptions::Indicator::ModulatedInput) sp_->all_reduce_sum(sums);
            sums = sums.to(at::kCPU);
            const double num = sums[0].item<double>(), den = sums[1].item<double>();
            const double rel = den > 0 ? num / den : 1e30;
            for (double coef : so.rescale) change = change * rel + coef;  // Horner, highest degree first
        }
        const bool forced = step < so.warmup_steps || (sc.num_steps_ > 0 && step >= sc.num_steps_ - 1) ||
                            !comparable || !sc.residual_.defined() ||
                            sc.residual_.sizes() != at::IntArrayRef({B, s_local, D});
        if (!forced) sc.accumulated_ += change;
        skip_blocks = !forced && sc.accumulated_ < so.threshold;
        if (!skip_blocks) {
            sc.accumulated_ = 0;
            ++sc.computed_;
            x_before = x.clone();  // the loop may update x in place
        }
        sc.previous_ = ind;
        sc.last_change_ = change;
        if (skip_blocks) x = x.to(at::kFloat) + sc.residual_;  // [B, s, D] f32, as after the blocks
    } else if (step_cache) {
        ++step_cache->step_;
        ++step_cache->computed_;
    }

    // ---- (d) blocks ------------------------------------------------------------------------------------
    // Note [FP8 linears]: with ModelOptions::fp8 the big block GEMMs run on Hopper's FP8 tensor cores:
    // weights quantised once per output channel (scale = amax/448), activations per token at each call,
    // bf16 output with the bias added by cuBLASLt. Derived tensors are cached only for resident weights.
    const bool resident = dynamic_cast<ResidentBlockWeights*>(blocks_.get()) != nullptr;
    static const bool fp8_env = [] { const char* e = std::getenv("WAN_FP8"); return e && std::string(e) == "1"; }();
    const bool want_fp8 = (options_.fp8 || fp8_env) && resident && x.is_cuda() && cd == at::kBFloat16 && !impl_->fp8_broken;
    auto derived = [&](const at::Tensor& key, const std::function<at::Tensor()>& make) -> at::Tensor {
        if (!resident) return make();
        std::lock_guard<std::mutex> lock(impl_->mu);
        auto it = impl_->derived.find(key.data_ptr());
        if (it == impl_->derived.end()) it = impl_->derived.emplace(key.data_ptr(), make()).first;
        return it->second;
    };
    // q/k/v weights (or biases) as one [3N, ...] tensor: a view where they are consecutive thirds of one buffer
    // (Note [Packed QKV weights] in params.cpp), else their concatenation, cached for resident blocks.
    auto packed_qkv = [&](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) -> at::Tensor {
        const int64_t bytes = static_cast<int64_t>(q.nbytes());
        const auto* base = static_cast<const char*>(q.data_ptr());
        if (q.is_contiguous() && k.is_contiguous() && v.is_contiguous() && k.sizes() == q.sizes() &&
            v.sizes() == q.sizes() && k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type() &&
            q.storage().is_alias_of(k.storage()) && q.storage().is_alias_of(v.storage()) &&
            static_cast<const char*>(k.data_ptr()) == base + bytes &&
            static_cast<const char*>(v.data_ptr()) == base + 2 * bytes) {
            std::vector<int64_t> sizes = q.sizes().vec();
            sizes[0] *= 3;
            return q.as_strided(sizes, q.strides());
        }
        return derived(q, [&] { return at::cat({q, k, v}, 0); });
    };
    // FP8 GEMM on rows already quantised (a.q [M, K] e4m3, a.scale [M, 1]): bf16 [lead..., N]. Falls back to
    // the dequantised bf16 GEMM (and FP8 off from then on) where cuBLASLt refuses.
    auto gemm_fp8 = [&](const fused::Fp8Rows& a, const at::Tensor& wt, const at::Tensor& b,
                        std::vector<int64_t> shape) -> at::Tensor {
        shape.push_back(wt.size(0));
#if WAN_TORCH_VERSION >= 205
        if (!impl_->fp8_broken) {
            try {
                Impl::Fp8Weight* fw;
                {
                    std::lock_guard<std::mutex> lock(impl_->mu);
                    auto it = impl_->fp8.find(wt.data_ptr());
                    if (it == impl_->fp8.end()) {
                        at::Tensor wf = wt.to(at::kFloat);
                        at::Tensor sc = wf.abs().amax(1, true).clamp_min(1e-12) / 448.0;  // [N, 1]
                        it = impl_->fp8.emplace(wt.data_ptr(), Impl::Fp8Weight{(wf / sc).to(at::kFloat8_e4m3fn),
                                                                               sc.t().contiguous()}).first;
                    }
                    fw = &it->second;
                }
                const at::Tensor y = at::_scaled_mm(a.q, fw->w8.t(), a.scale, fw->scale, b.to(at::kBFloat16),
                                                    c10::nullopt, at::kBFloat16, /*use_fast_accum=*/true);
                return y.view(shape);
            } catch (const std::exception& e) {
                impl_->fp8_broken = true;
                WAN_LOG_WARN("FP8 linears are not available here (%s); using bf16", std::string(e.what()).substr(0, 200).c_str());
            }
        }
#endif
        return linear((a.q.to(at::kFloat) * a.scale).to(cd), wt, b).view(shape);
    };
    auto gemm = [&](const at::Tensor& in, const at::Tensor& wt, const at::Tensor& b) -> at::Tensor {
#if WAN_TORCH_VERSION >= 205
        if (want_fp8 && !impl_->fp8_broken) {
            std::vector<int64_t> lead = in.sizes().vec();
            lead.pop_back();
            if (use_fused && in.size(-1) % 8 == 0)  // one pass: amax, scale, cast
                return gemm_fp8(fused::quantize_rows_fp8(in, /*gelu=*/false), wt, b, lead);
            const at::Tensor x2 = in.reshape({-1, in.size(-1)});
            fused::Fp8Rows a;
            a.scale = x2.abs().amax(1, true).to(at::kFloat).clamp_min(1e-12) / 448.0;  // [M, 1]
            a.q = (x2 / a.scale).to(at::kFloat8_e4m3fn);
            return gemm_fp8(a, wt, b, lead);
        }
#endif
        return linear(in, wt, b);
    };
    WAN_CHECK(!use_fused || (rope.cos.defined() && rope.cos.scalar_type() == at::kFloat),
              "DiT forward: the fused path needs f32 RoPE tables");
    const int64_t layers_to_run = skip_blocks ? 0 : c.num_layers;
    // Fused path: the FFN's gated residual of block i is applied by block i+1's first norm (one pass over x,
    // Note [Row kernels in registers]); it stays pending here until then, or until something needs x.
    at::Tensor pending_y, pending_gate;
    // Upstream's residual stream is bf16 until block 0's first residual add, and its LayerNorm returns the input
    // dtype: norm1 of block 0 rounds LN(x) to bf16 before the modulation (§4.4 d). Here x is f32 throughout.
    bool stream_is_bf16 = mixed;
    auto flush_pending = [&] {
        if (!pending_y.defined()) return;
        fused::gated_residual_(x, pending_y, pending_gate);
        pending_y = pending_gate = at::Tensor();
    };
    clock.mark("step_cache");
    for (int64_t i = 0; i < layers_to_run; ++i) {
        const BlockWeights w = blocks_->acquire(i);
        const at::Tensor m = w.modulation + e0;  // [B, 6, D] f32
        auto mod = [&](int64_t j) { return m.narrow(1, j, 1); };  // [B, 1, D]

        // See Note [Fused block kernels] (dit/fused.h): same arithmetic, fewer passes over memory.
        const bool fuse = use_fused && x.scalar_type() == at::kFloat && x.is_contiguous();
        // FP8 with the fused kernels: the norms write FP8 rows for the GEMMs directly (Note [FP8 linears]).
        const bool fp8_rows = fuse && want_fp8 && !impl_->fp8_broken && WAN_TORCH_VERSION >= 205;
        const std::vector<int64_t> lead{B, s_local};
        if (!fuse) flush_pending();
        clock.mark("block_setup");
        // self-attention
        {
            at::Tensor a;
            fused::Fp8Rows a8;
            if (fp8_rows) {
                a8 = fused::layernorm_fp8_(x, pending_y, pending_gate, mod(1), mod(0), /*affine=*/false, stream_is_bf16, eps);
                pending_y = pending_gate = at::Tensor();
            } else if (fuse) {
                a = pending_y.defined() ? fused::add_layernorm_modulate_(x, pending_y, pending_gate, mod(1), mod(0), eps)
                                        : fused::layernorm_modulate(x, mod(1), mod(0), eps, stream_is_bf16);  // bf16
                pending_y = pending_gate = at::Tensor();
            } else {
                at::Tensor n1 = layer_norm(x, D, eps);
                if (x.scalar_type() != at::kFloat) n1 = n1.to(x.scalar_type()).to(at::kFloat);  // block 0 (mixed)
                // [B, s, D] f32, cast once for the three GEMMs (autocast casts it per Linear: same values).
                a = (n1 * (1 + mod(1)) + mod(0)).to(cd);
            }
            clock.mark("norm1");
            const auto& sa = w.self_attn;
            at::Tensor q, k, v;
            if (use_fused) {
                // One GEMM for q, k and v (better use of the GPU at D = 1536) against their packed weights.
                const at::Tensor wqkv = packed_qkv(sa.q_weight, sa.k_weight, sa.v_weight);
                const at::Tensor bqkv = packed_qkv(sa.q_bias, sa.k_bias, sa.v_bias);
                const at::Tensor qkv = fp8_rows ? gemm_fp8(a8, wqkv, bqkv, lead) : gemm(a, wqkv, bqkv);  // [B, s, 3D]
                clock.mark("qkv_gemm");
                q = fused::rmsnorm_rope(qkv.narrow(2, 0, D), sa.norm_q_weight, &rope, H, eps);  // [B,s,H,d]
                k = fused::rmsnorm_rope(qkv.narrow(2, D, D), sa.norm_k_weight, &rope, H, eps);
                v = qkv.narrow(2, 2 * D, D).view({B, s_local, H, d});
                clock.mark("qk_norm_rope");
            } else {
                q = rope_qk(rms_norm(linear(a, sa.q_weight, sa.q_bias), sa.norm_q_weight, eps));  // [B,s,H,d]
                k = rope_qk(rms_norm(linear(a, sa.k_weight, sa.k_bias), sa.norm_k_weight, eps));
                v = linear(a, sa.v_weight, sa.v_bias).view({B, s_local, H, d});
            }
            at::Tensor o;
            if (same_len) {
                o = sp_->self_attention(q, k, v, tokens[0]);
            } else {
                std::vector<at::Tensor> os;
                for (int64_t b = 0; b < B; ++b)
                    os.push_back(sp_->self_attention(q.narrow(0, b, 1), k.narrow(0, b, 1), v.narrow(0, b, 1), tokens[b]));
                o = at::cat(os, 0);
            }
            clock.mark("self_attention");
            const at::Tensor y = gemm(o.reshape({B, s_local, D}), sa.o_weight, sa.o_bias);  // cd
            clock.mark("o_gemm");
            if (fuse) {  // applied with norm3 below
                pending_y = y;
                pending_gate = mod(2);
            } else {
                x = x + y * mod(2);  // f32 from here on
            }
            stream_is_bf16 = false;
        }
        // cross-attention (no modulation, no gate), K/V of the text cached per prompt
        {
            const auto& ca = w.cross_attn;
            at::Tensor cin;
            fused::Fp8Rows cin8;
            if (fp8_rows) {
                cin8 = fused::layernorm_fp8_(x, pending_y, pending_gate, w.norm3_weight, w.norm3_bias, /*affine=*/true,
                                             false, eps);
                pending_y = pending_gate = at::Tensor();
            } else if (fuse) {
                cin = fused::add_layernorm_affine_(x, pending_y, pending_gate, w.norm3_weight, w.norm3_bias, eps);  // bf16
                pending_y = pending_gate = at::Tensor();
            } else {
                cin = at::layer_norm(x, {D}, w.norm3_weight, w.norm3_bias, eps);  // f32
            }
            clock.mark("norm3");
            at::Tensor q;
            if (fp8_rows)
                q = fused::rmsnorm_rope(gemm_fp8(cin8, ca.q_weight, ca.q_bias, lead), ca.norm_q_weight, nullptr, H, eps);
            else if (use_fused)
                q = fused::rmsnorm_rope(gemm(cin, ca.q_weight, ca.q_bias), ca.norm_q_weight, nullptr, H, eps);
            else
                q = rms_norm(linear(cin, ca.q_weight, ca.q_bias), ca.norm_q_weight, eps).view({B, s_local, H, d}).to(cd);
            at::Tensor k, v;
            if (cache && cache->k_[i].defined()) {
                k = cache->k_[i];
                v = cache->v_[i];
            } else {
                k = rms_norm(linear(text, ca.k_weight, ca.k_bias), ca.norm_k_weight, eps).view({B, Lt, H, d}).to(cd);
                v = linear(text, ca.v_weight, ca.v_bias).view({B, Lt, H, d});
                if (cache) {
                    cache->k_[i] = k;
                    cache->v_[i] = v;
                }
            }
            clock.mark("cross_q_kv");
            const at::Tensor o = attention(q, k, v);
            clock.mark("cross_attention");
            if (fuse) pending_y = gemm(o.reshape({B, s_local, D}), ca.o_weight, ca.o_bias);  // applied with the FFN norm
            else x = x + linear(o.reshape({B, s_local, D}), ca.o_weight, ca.o_bias);
            clock.mark("cross_o_gemm");
        }
        // FFN
        {
            at::Tensor f;
            fused::Fp8Rows f8;
            if (fp8_rows) {
                f8 = fused::layernorm_fp8_(x, pending_y, at::Tensor(), mod(4), mod(3), /*affine=*/false, false, eps);
                pending_y = at::Tensor();
            } else if (fuse) {
                f = fused::add_layernorm_modulate_(x, pending_y, at::Tensor(), mod(4), mod(3), eps);
                pending_y = at::Tensor();
            } else {
                f = layer_norm(x, D, eps) * (1 + mod(4)) + mod(3);
            }
            clock.mark("norm2");
            // The bf16 fused path takes the GELU in the GEMM epilogue (fused.h); FP8 rows take it in the
            // quantisation of the hidden layer.
            at::Tensor h, y;
            if (fp8_rows) {
                h = gemm_fp8(f8, w.ffn0_weight, w.ffn0_bias, lead);  // pre-activation, bf16
                clock.mark("ffn0_gemm_gelu");
                y = gemm_fp8(fused::quantize_rows_fp8(h, /*gelu=*/true), w.ffn2_weight, w.ffn2_bias, lead);
            } else {
                if (fuse && !want_fp8) {
                    h = fused::linear_gelu(f, w.ffn0_weight, w.ffn0_bias);
                } else if (fuse) {
                    h = gemm(f, w.ffn0_weight, w.ffn0_bias);
                    at::gelu_(h, "tanh");  // its own buffer: in place
                } else {
                    h = at::gelu(gemm(f, w.ffn0_weight, w.ffn0_bias), "tanh");
                }
                clock.mark("ffn0_gemm_gelu");
                y = gemm(h, w.ffn2_weight, w.ffn2_bias);
            }
            clock.mark("ffn2_gemm");
            if (fuse) {  // applied with the next block's first norm
                pending_y = y;
                pending_gate = mod(5);
            } else {
                x = x + y * mod(5);
            }
        }
        blocks_->release(i);
        if (hook_) {
            flush_pending();
            hook_("block" + std::to_string(i), x);
        }
    }
    if (x_before.defined()) flush_pending();  // the step cache keeps the residual of the whole stack
    clock.mark("last_residual");

    if (x_before.defined()) step_cache->residual_ = x - x_before.to(at::kFloat);  // [B, s, D] f32

    // ---- (e) head: uses e (not e0), f32 -----------------------------------------------------------------
    const at::Tensor hm = root_.head_modulation + e.unsqueeze(1);  // [B, 2, D] f32
    at::Tensor head_in;  // [B, s, D] f32
    if (use_fused && x.scalar_type() == at::kFloat && x.is_contiguous()) {
        // The last block's FFN residual and the head's norm in one pass (f32 out: the head is f32 upstream).
        head_in = fused::add_layernorm_modulate_f32_(x, pending_y, pending_gate, hm.narrow(1, 1, 1), hm.narrow(1, 0, 1), eps);
        pending_y = pending_gate = at::Tensor();
    } else {
        flush_pending();
        head_in = layer_norm(x, D, eps) * (1 + hm.narrow(1, 1, 1)) + hm.narrow(1, 0, 1);
    }
    at::Tensor out = linear(head_in, root_.head_weight, root_.head_bias);  // [B, s, P] f32
    clock.mark("head");
    if (hook_) hook_("head", out);
    if (world > 1) {
        out = sp_->gather_sequence(out);
        WAN_CHECK(out.dim() == 3 && out.size(1) == chunk.padded_len,
                  "DiT forward: gather_sequence returned %s, expected [B, %lld, P]", shape_of(out).c_str(),
                  static_cast<long long>(chunk.padded_len));
    }
    // Upstream's unpatchify einsum runs under autocast(bf16) and rounds the output to bf16 (§4.4 f).
    if (mixed && options_.round_output_bf16) out = out.to(at::kBFloat16).to(at::kFloat);

    // ---- (f) unpatchify: row n = (f, h, w) holds (p, q, r, c) ------------------------------------------
    std::vector<at::Tensor> result;
    const int64_t C = c.out_dim;
    for (int64_t b = 0; b < B; ++b) {
        const Grid& g = grids[b];
        at::Tensor u = out[b].narrow(0, 0, tokens[b]).view({g.f, g.h, g.w, pt, ph, pw, C});
        u = u.permute({6, 0, 3, 1, 4, 2, 5}).reshape({C, g.f * pt, g.h * ph, g.w * pw});  // [C, F, H, W]
        result.push_back(u.to(at::kFloat).contiguous());
    }
    clock.mark("unpatchify");
    return result;
}

}  // namespace wan::dit
