// Progress and cancel of loading the models (minutes for 14B from a cold disk). Torch-free: the window shows it
// as one bar, the headless runs as log lines. Ref: style.md §3.7 (loading reports bytes read and can stop).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

namespace wan {

/// Where a load stands. Bytes count over the whole load (every component), so one bar can show it; they only
/// grow and end at `bytes_total`.
struct LoadProgress {
    std::string component;     ///< "text encoder", "DiT", "high-noise DiT", "VAE"
    std::string file;          ///< the file being read
    uint64_t bytes_done = 0;
    uint64_t bytes_total = 0;  ///< of every component this rank loads; 0 before the sizes are known
    double elapsed_s = 0;      ///< since the load started
};

using LoadProgressFn = std::function<void(const LoadProgress&)>;

/// What the caller of a load gives it: where to report (may be empty) and a flag polled between tensors (may
/// be null). A set flag ends the load with wan::Cancelled, on every rank of a distributed engine.
struct LoadControl {
    LoadProgressFn progress;
    const std::atomic<bool>* cancel = nullptr;
};

}  // namespace wan
