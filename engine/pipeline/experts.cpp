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
//
// The pinned copy is made once, at load time (allocating and registering 28 GB of pinned pages takes tens of
// seconds, which belongs to the load, not to the first video's switch), and kept: parking drops the device
// tensors, and
// unparking is one asynchronous host-to-device copy per tensor from memory that is already pinned. The first
// design copied to pageable memory and pinned it at every park: 53.8 s per switch for a 14B expert on the H200
// (docs/PERFORMANCE.md), most of it allocating and registering 28 GB of pinned pages again. A LoRA merge
// changes the weights in place, on the device, while its expert is resident (the pipeline makes each expert
// resident before merging into it; stored() refuses a parked one); the park after it copies the device
// tensors back into the pinned copy (device-to-host into pinned memory: tens of GB/s).

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

namespace {

// Each defined tensor of `blocks` replaced by a copy made by `copy` (same structure, shallow otherwise).
template <typename Copy>
std::vector<dit::BlockWeights> copied(std::vector<dit::BlockWeights> blocks, Copy copy) {
    for (dit::BlockWeights& b : blocks)
        for (at::Tensor* t : dit::block_tensors(b))  // fp8 codes and scales included
            if (t->defined()) *t = copy(*t);
    return blocks;
}

}  // namespace

std::optional<dit::BlockWeights> ParkableBlockWeights::stored(int64_t i) {
    WAN_CHECK(!parked_, "expert weights asked for in place while parked in host memory (block %lld): the expert "
              "must be made resident first", static_cast<long long>(i));
    changed_ = true;  // the caller may write into them
    return blocks_.at(static_cast<size_t>(i));
}

void ParkableBlockWeights::make_pinned_copy() {
    if (!device_.is_cuda() || !pinned_.empty() || parked_) return;
    pinned_ = copied(blocks_, [](const at::Tensor& t) {
        at::Tensor host = at::empty(t.sizes(), t.options().device(c10::kCPU).pinned_memory(true));
        host.copy_(t);  // waits for the device: the copy is complete on return
        return host;
    });
    changed_ = false;
}

void ParkableBlockWeights::park() {
    if (parked_) return;
    if (device_.is_cuda()) {
        if (pinned_.empty()) {
            make_pinned_copy();
        } else if (changed_) {  // merged into since the last park: the pinned copy takes the new values
            for (size_t b = 0; b < blocks_.size(); ++b) {
                const std::vector<at::Tensor*> from = dit::block_tensors(blocks_[b]), to = dit::block_tensors(pinned_[b]);
                for (size_t k = 0; k < from.size(); ++k)
                    if (from[k]->defined()) to[k]->copy_(*from[k]);  // synchronous: done before the device copy is freed
            }
        }
        blocks_ = copied(std::move(blocks_), [](const at::Tensor&) { return at::Tensor(); });  // device memory freed
    }
    changed_ = false;
    parked_ = true;
    ++moves_;
}

void ParkableBlockWeights::unpark() {
    if (!parked_) return;
    if (device_.is_cuda())  // ordered on the current stream before the forward that reads them
        blocks_ = copied(pinned_, [&](const at::Tensor& t) { return t.to(t.options().device(device_), /*non_blocking=*/true); });
    parked_ = false;
    ++moves_;
}

}  // namespace wan::pipeline
