// Private to engine/dit: GPU time of each stage of a DiT forward, for finding where a forward's time goes.
//
// Note [Stage clock]
// With ModelOptions::stage_clock (env WAN_DIT_STAGES=1) on a CUDA build, the forward records a CUDA event after each stage (embeddings,
// each block's norms, GEMMs, attention, ..., head) and, at its end, prints one line to stderr with the GPU
// milliseconds of each stage summed over the blocks. Events cost no synchronisation until that end, so the
// figures are the kernels' own time plus any launch gaps between them, which is what the forward loses.
// Otherwise every call is a no-op.
#pragma once

#include <c10/core/Device.h>

#include <memory>

namespace wan::dit {

class StageClock {
public:
    /// Active when `enabled`, the kernels are built for CUDA and `device` is a CUDA device.
    StageClock(c10::Device device, bool enabled);
    ~StageClock();
    StageClock(const StageClock&) = delete;
    StageClock& operator=(const StageClock&) = delete;

    /// Charges the GPU time since the previous mark (or the clock's creation) to `stage` (a string literal).
    void mark(const char* stage) {
        if (impl_) record(stage);
    }

private:
    struct Impl;
    void record(const char* stage);
    std::unique_ptr<Impl> impl_;
};

}  // namespace wan::dit
