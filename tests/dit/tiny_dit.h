// The tiny DiT checkpoint (tests/data/golden/tiny-ckpt) for the DiT tests: its config, its weights and one
// shared CPU float32 model, built on first use and kept for the whole test binary (no test changes its weights).
#pragma once

#include "golden.h"

#include "dit/dit.h"

namespace wan::test {

inline io::WanConfig tiny_config() { return io::CheckpointDir::locate(tiny_ckpt_dir()).config(); }

inline io::TensorStore tiny_store() { return io::CheckpointDir::locate(tiny_ckpt_dir()).open_dit(); }

inline const dit::WanModel& tiny_model() {
    static dit::WanModel* model = [] {
        auto store = tiny_store();
        return new dit::WanModel(tiny_config(), store);
    }();
    return *model;
}

}  // namespace wan::test
