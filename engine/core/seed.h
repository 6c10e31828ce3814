// The random seed of a job that asked for one (seed -1). Drawn once, by the head, before the request is
// broadcast: every rank then draws the same noise from it.
#pragma once

#include <cstdint>
#include <random>

namespace wan {

/// A seed in [0, INT64_MAX] from the system's entropy source.
inline int64_t draw_seed() {
    std::random_device rd;
    std::uniform_int_distribution<int64_t> pick(0, INT64_MAX);
    return pick(rd);
}

}  // namespace wan
