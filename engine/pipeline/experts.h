// Wan2.2 T2V-A14B's two experts: which one runs at a timestep, with which guide, and where the idle one's
// weights live. Ref: upstream Wan2.2 wan/text2video.py; ../shared/golden/README.md §6.
//
// Example:
//   Expert e = expert_for_timestep(t, r.boundary);     // HighNoise while t ≥ boundary·1000
//   double g = guide_for(e, r);                         // guide_scale_high / guide_scale
//   auto loras = loras_for(e, r);                       // --lora, then --lora-high / --lora-low
#pragma once

#include "core/core.h"
#include "dit/dit.h"

#include <memory>
#include <vector>

namespace wan::pipeline {

enum class Expert { LowNoise = 0, HighNoise = 1 };
const char* expert_name(Expert e);  ///< "high-noise" / "low-noise"

/// Upstream's rule: the high-noise expert runs when t ≥ boundary · 1000 (num_train_timesteps), else the low-noise one.
Expert expert_for_timestep(double t, double boundary);

/// The guide of `e`: r.guide_scale_high for the high-noise expert, r.guide_scale for the low-noise one.
double guide_for(Expert e, const GenerationRequest& r);

/// The LoRAs merged into `e`: r.loras (both experts) followed by the expert's own (r.loras_high / r.loras_low).
std::vector<LoraSpec> loras_for(Expert e, const GenerationRequest& r);

/// Fills the two-expert fields of a request from a model's info: the guide pair (guide_scale = the low-noise
/// guide; guide_scale_high < 0 → guide_scale when that was given, else the default) and the boundary. For a
/// one-expert model guide_scale_high becomes guide_scale (the pair is one guide) and boundary stays as given.
void resolve_expert_fields(GenerationRequest& r, const EngineInfo& info);

/// Block weights that can be parked in host memory while their expert is idle and brought back at the
/// switch (Note [Idle expert in host memory] in experts.cpp). On the CPU both moves are no-ops.
class ParkableBlockWeights : public dit::BlockWeightsProvider {
public:
    ParkableBlockWeights(std::vector<dit::BlockWeights> blocks, c10::Device device);
    int64_t num_blocks() const override { return static_cast<int64_t>(blocks_.size()); }
    dit::BlockWeights acquire(int64_t i) override;
    /// The weights stay the same tensors only while never parked: report non-resident so the forward does
    /// not cache derived weights (packed QKV) across a park/unpark.
    bool resident() const override { return false; }
    /// The device tensors, for an in-place change (a LoRA merge) while the expert is resident; refused while
    /// parked. The next park copies them to the pinned copy (which they may no longer equal).
    std::optional<dit::BlockWeights> stored(int64_t i) override;
    /// The pinned host copy of the (resident) weights, made once; park() makes it when it was not made before.
    void make_pinned_copy();
    void park();    ///< device tensors dropped (the pinned copy made first if need be)
    void unpark();  ///< weights copied back to the device from the pinned copy
    bool parked() const { return parked_; }
    int moves() const { return moves_; }  ///< park + unpark calls that moved weights (tests)

private:
    std::vector<dit::BlockWeights> blocks_;  ///< on the device; undefined tensors while parked
    std::vector<dit::BlockWeights> pinned_;  ///< the pinned host copy, made at the first park (CUDA only)
    c10::Device device_;
    bool parked_ = false;
    bool changed_ = false;  ///< stored() handed out the device tensors since the last park
    int moves_ = 0;
};

}  // namespace wan::pipeline
