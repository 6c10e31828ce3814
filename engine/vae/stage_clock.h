// Private to engine/vae: where the time of a decode goes, by kind of work and resolution level.
//
// Note [VAE stage clock]
// With DecodeCallbacks::stage_times set (wan-bench vae: WAN_VAE_STAGES=1 or --stages 1), the decoder marks the end
// of each piece of work (a convolution, a norm, the cache copies, ...) with its kind and resolution level. On a
// CUDA device a mark records an event on the current stream, so nothing waits until the decode ends; then the
// clock synchronises once and charges each interval between two marks to the later mark's stage. The figures are
// the GPU's own time plus any launch gaps, which is what the decode loses. On the CPU the ops run synchronously
// and a mark reads the wall clock. Without stage_times every mark is a test of a null pointer.
#pragma once

#include "vae/vae.h"

#include <c10/core/Device.h>

#include <array>
#include <chrono>
#include <memory>
#include <vector>

namespace wan::vae::detail {

/// The kinds of work the decoder charges time to.
enum class Stage {
    Conv333,      ///< causal 3×3×3 convolution (its input assembly excluded)
    ConvSpatial,  ///< the resample's per-frame 3×3 convolution (subpixel_upsample: its 2×2 phase convolution)
    ConvTime,     ///< the temporal up-convolution 3×1×1
    Conv111,      ///< 1×1×1 shortcut convolutions
    Pad,          ///< the causal input: cat of zeros / cached frames / input, or the time-folded input
    CacheSave,    ///< copying the last frames into the cache slot
    Norm,         ///< RMS norm · γ
    Silu,         ///< SiLU
    NormSilu,     ///< the fused norm + SiLU
    Add,          ///< the residual add
    Attention,    ///< the middle self-attention block (norm, QKV, attention, projection, residual)
    Upsample,     ///< the nearest ×2 / frame interleave copy (subpixel_upsample: the frame and phase interleaves)
    Output,       ///< copying the decoded chunk into the video
    Count
};
constexpr int kLevels = 4;  // 1/8, 1/4, 1/2, 1/1 of the output resolution

class StageClock {
public:
    /// Inactive (every mark a no-op) when `sink` is null.
    StageClock(c10::Device device, StageTimes* sink);
    ~StageClock();
    StageClock(const StageClock&) = delete;
    StageClock& operator=(const StageClock&) = delete;

    /// Charges the time since the previous mark (or the clock's start) to (stage, level).
    void mark(Stage stage, int level) {
        if (active_) record(stage, level);
    }
    /// Waits for the marked work and adds the times to the sink (also done by the destructor); the caller counts
    /// the decode.
    void finish();

private:
    struct Events;
    void record(Stage stage, int level);

    StageTimes* sink_ = nullptr;
    bool active_ = false;
    std::vector<std::pair<Stage, int>> marks_;
    std::vector<std::chrono::steady_clock::time_point> wall_;  // CPU: [start, mark 1, ...]
    std::unique_ptr<Events> events_;                          // CUDA: the same as events
};

/// Name of a stage at a level: "conv 3x3x3 1/4".
std::string stage_name(Stage stage, int level);

}  // namespace wan::vae::detail
