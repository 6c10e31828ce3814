// Timing and memory helpers for wan-bench (private to bench/).
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <functional>
#include <string>

namespace wan::bench {

/// Waits for the device's queued work (no-op on the CPU).
void sync(c10::Device device);
/// Resets the peak-memory counter of `device` (CUDA only).
void reset_peak(c10::Device device);
/// Peak bytes allocated by LibTorch's caching allocator since the last reset (0 on the CPU).
double peak_gb(c10::Device device);
/// GPU name or "cpu".
std::string device_name(c10::Device device);

struct Timing {
    double mean_s = 0, min_s = 0;
    double first_s = 0;  ///< the first timed run (with warmup 0: the process's first call)
    int runs = 0;
};
/// `warmup` untimed calls, then `runs` timed ones, each synchronised.
Timing time_it(c10::Device device, int warmup, int runs, const std::function<void()>& fn);

/// A Chrome trace (LibTorch's Kineto profiler: host ops and, on CUDA, every kernel with its stream) of what runs
/// between construction and save(): GPU idle gaps show as holes between kernels. Throws where the LibTorch build
/// has no Kineto.
class TraceSession {
public:
    TraceSession();
    ~TraceSession();  // stops the profiler if save() was not called (the trace is dropped)
    TraceSession(const TraceSession&) = delete;
    TraceSession& operator=(const TraceSession&) = delete;
    /// Stops the profiler and writes the trace (JSON) to `path`.
    void save(const std::string& path);

private:
    bool active_ = false;
};

}  // namespace wan::bench
