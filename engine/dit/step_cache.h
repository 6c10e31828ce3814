// Private to engine/dit: one forward's use of a StepCache (Note [Step caching] in step_cache.cpp).
#pragma once

#include "dit/forward.h"

namespace wan::dit::detail {

class StepCacheRun {
public:
    /// `cache` may be null (no step caching). `owner`: the model; a cache filled by another model starts over.
    StepCacheRun(StepCache* cache, const void* owner) : cache_(cache), owner_(owner) {}

    /// Before the blocks: counts the step and, with a threshold, measures the indicator's change and decides.
    /// True: skip the block stack (x is then x + the cached residual, f32, as after the blocks). False: run
    /// it; x before it is kept when the residual is to be refreshed.
    bool skip_blocks(at::Tensor& x, const at::Tensor& e0, BlockWeightsProvider& blocks, const ForwardContext& f);
    /// The blocks ran and their residual is to be stored (the fused path must first add its pending update).
    bool keeps_residual() const { return x_before_.defined(); }
    /// After the blocks: residual = x − x before them (when keeps_residual()).
    void store_residual(const at::Tensor& x);

private:
    at::Tensor indicator(const at::Tensor& x, const at::Tensor& e0, BlockWeightsProvider& blocks,
                         const ForwardContext& f);
    double change_since_previous(const at::Tensor& ind, const ForwardContext& f) const;

    StepCache* cache_;
    const void* owner_;
    at::Tensor x_before_;  ///< [B, s, D] cd
};

}  // namespace wan::dit::detail
