// Elapsed wall time for the engine's timings and log lines, defined once.
#pragma once

#include <chrono>

namespace wan {

using Clock = std::chrono::steady_clock;

/// Seconds from `t0` until now.
inline double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace wan
