// small_request(): the generation request the tests run through the tiny checkpoint — 32x32, 5 frames, 2 steps,
// seed 7 — small enough for a CPU test, with every stage of the pipeline doing real work.
#pragma once

#include "core/core.h"

namespace wan::test {

inline GenerationRequest small_request() {
    GenerationRequest r;
    r.prompt = "a red fox running through snow";
    r.width = 32;
    r.height = 32;
    r.frame_num = 5;
    r.sample_steps = 2;
    r.seed = 7;
    return r;
}

}  // namespace wan::test
