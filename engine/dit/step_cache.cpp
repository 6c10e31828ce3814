// Step caching: StepCache and its use in one forward (step_cache.h).
#include "dit/step_cache.h"

#include "core/core.h"

#include <ATen/ATen.h>

#include <utility>

namespace wan::dit {

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

namespace detail {

// The indicator (f32): e0 [B, 6, D] (the same on every rank), or block 0's modulated input [B, s, D] with
// the padding rows zeroed.
at::Tensor StepCacheRun::indicator(const at::Tensor& x, const at::Tensor& e0, BlockWeightsProvider& blocks,
                                   const ForwardContext& f) {
    StepCache& sc = *cache_;
    if (sc.options_.indicator == StepCacheOptions::Indicator::TimeModulation) return e0;
    if (!sc.block0_modulation_.defined()) {  // small and constant: fetched once (one gather with FSDP)
        sc.block0_modulation_ = blocks.acquire(0).modulation.to(at::kFloat).clone();  // [1, 6, D]
        blocks.release(0);
    }
    const at::Tensor m0 = sc.block0_modulation_ + e0;  // [B, 6, D]
    at::Tensor rows = at::arange(f.s_local, at::TensorOptions().dtype(at::kLong).device(f.device)) + f.chunk.begin;
    at::Tensor lim = at::from_blob(const_cast<int64_t*>(f.tokens.data()), {f.B}, at::TensorOptions().dtype(at::kLong))
                         .clone()
                         .to(f.device);
    const at::Tensor real = (rows.unsqueeze(0) < lim.unsqueeze(1)).unsqueeze(2).to(at::kFloat);  // [B, s, 1]
    return (layer_norm(x, f.D, f.eps) * (1 + m0.narrow(1, 1, 1)) + m0.narrow(1, 0, 1)) * real;  // [B, s, D]
}

// The rescaled relative L1 change of the indicator since the previous call (previous_ comparable).
double StepCacheRun::change_since_previous(const at::Tensor& ind, const ForwardContext& f) const {
    const StepCache& sc = *cache_;
    const StepCacheOptions& so = sc.options_;
    at::Tensor sums = at::stack({(ind - sc.previous_).abs().sum(at::kDouble), sc.previous_.abs().sum(at::kDouble)});
    if (so.indicator == StepCacheOptions::Indicator::ModulatedInput) f.sp.all_reduce_sum(sums);
    sums = f.sp.to_host(sums);
    const double num = sums[0].item<double>(), den = sums[1].item<double>();
    const double rel = den > 0 ? num / den : 1e30;
    double change = 0;
    for (double coef : so.rescale) change = change * rel + coef;  // Horner, highest degree first
    return change;
}

bool StepCacheRun::skip_blocks(at::Tensor& x, const at::Tensor& e0, BlockWeightsProvider& blocks,
                               const ForwardContext& f) {
    if (!cache_) return false;
    StepCache& sc = *cache_;
    const StepCacheOptions& so = sc.options_;
    if (!(so.threshold > 0)) {
        ++sc.step_;
        ++sc.computed_;
        return false;
    }
    if (sc.owner_ != owner_) {
        sc.owner_ = owner_;
        sc.previous_ = sc.residual_ = sc.block0_modulation_ = at::Tensor();
    }
    const int step = sc.step_++;
    const at::Tensor ind = indicator(x, e0, blocks, f);
    const bool comparable = sc.previous_.defined() && sc.previous_.sizes() == ind.sizes();
    const double change = comparable ? change_since_previous(ind, f) : 0;
    const bool forced = step < so.warmup_steps || (sc.num_steps_ > 0 && step >= sc.num_steps_ - 1) || !comparable ||
                        !sc.residual_.defined() || sc.residual_.sizes() != at::IntArrayRef({f.B, f.s_local, f.D});
    if (!forced) sc.accumulated_ += change;
    const bool skip = !forced && sc.accumulated_ < so.threshold;
    if (!skip) {
        sc.accumulated_ = 0;
        ++sc.computed_;
        x_before_ = x.clone();  // the blocks may update x in place
    }
    sc.previous_ = ind;
    sc.last_change_ = change;
    if (skip) x = x.to(at::kFloat) + sc.residual_;  // [B, s, D] f32, as after the blocks
    return skip;
}

void StepCacheRun::store_residual(const at::Tensor& x) {
    if (x_before_.defined()) cache_->residual_ = x - x_before_.to(at::kFloat);  // [B, s, D] f32
}

}  // namespace detail
}  // namespace wan::dit
