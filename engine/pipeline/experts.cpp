#include "pipeline/experts.h"

#include <ATen/ATen.h>

// Note [Idle expert in host memory]
// Two 14B experts in bf16 take ≈ 57 GB; where both do not fit (or with --offload-idle-expert) the idle
// expert's block weights wait in pinned host memory and move to the device at the switch, which Wan2.2's
// schedule makes happen once per video (26 high-noise steps, then 14 low-noise ones at 40 steps, shift 12).
// The low-noise expert is parked first at load time (the device never holds both); a following video
// starts with the high-noise expert again, so from the second video on the swap happens at its start too.
// The root weights (embeddings, head: < 1% of the model) stay on the device. On a CPU build the moves are
// no-ops, but the calls run, so the switching logic is exercised by the tests.

namespace wan::pipeline {

const char* expert_name(Expert e) { return e == Expert::HighNoise ? "high-noise" : "low-noise"; }

Expert expert_for_timestep(double t, double boundary) {
    // Upstream compares the (integer-valued) timestep with boundary · num_train_timesteps (1000).
    return t >= boundary * 1000.0 ? Expert::HighNoise : Expert::LowNoise;
}

double guide_for(Expert e, const GenerationRequest& r) {
    return e == Expert::HighNoise ? r.guide_scale_high : r.guide_scale;
}

std::vector<LoraSpec> loras_for(Expert e, const GenerationRequest& r) {
    std::vector<LoraSpec> out = r.loras;
    const std::vector<LoraSpec>& own = e == Expert::HighNoise ? r.loras_high : r.loras_low;
    out.insert(out.end(), own.begin(), own.end());
    return out;
}

void resolve_expert_fields(GenerationRequest& r, const EngineInfo& info) {
    const bool low_given = r.guide_scale != -1;
    if (!low_given) r.guide_scale = info.default_guide_scale;
    if (!info.two_experts) {
        r.guide_scale_high = r.guide_scale;
        return;
    }
    if (r.guide_scale_high == -1) r.guide_scale_high = low_given ? r.guide_scale : info.default_guide_scale_high;
    if (r.boundary == -1) r.boundary = info.default_boundary;
}

ParkableBlockWeights::ParkableBlockWeights(std::vector<dit::BlockWeights> blocks, c10::Device device)
    : blocks_(std::move(blocks)), device_(device) {}

dit::BlockWeights ParkableBlockWeights::acquire(int64_t i) {
    WAN_CHECK(!parked_, "expert weights used while parked in host memory (block %lld)", static_cast<long long>(i));
    return blocks_.at(static_cast<size_t>(i));
}

void ParkableBlockWeights::move_all(c10::Device to, bool pin) {
    auto move = [&](at::Tensor& t) {
        if (!t.defined()) return;
        at::Tensor moved = t.to(at::TensorOptions().device(to));  // same dtype
        if (pin && !moved.is_pinned()) moved = moved.pin_memory();
        t = moved;
    };
    for (dit::BlockWeights& b : blocks_)
        for (at::Tensor* t : dit::block_tensors(b)) move(*t);  // fp8 codes and scales included
}

void ParkableBlockWeights::park() {
    if (parked_) return;
    if (device_.is_cuda()) move_all(c10::Device(c10::kCPU), /*pin=*/true);
    parked_ = true;
    ++moves_;
}

void ParkableBlockWeights::unpark() {
    if (!parked_) return;
    if (device_.is_cuda()) move_all(device_, /*pin=*/false);
    parked_ = false;
    ++moves_;
}

}  // namespace wan::pipeline
