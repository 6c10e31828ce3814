// The tiny DiT checkpoint (tests/data/golden/tiny-ckpt) for the DiT tests: its config, its weights and one
// shared CPU float32 model, built on first use and kept for the whole test binary (no test changes its weights).
#pragma once

#include "golden.h"

#include "dit/dit.h"

#include <ATen/ATen.h>

#include <cstdint>

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

/// One forward's inputs for the tiny DiT: a 2×6×8 latent (24 tokens after the 1×2×2 patches), timestep `t`,
/// a context of `ctx_len` tokens; drawn from seed `seed`.
struct TinyForwardInputs {
    at::Tensor x, t, ctx;
    int64_t seq_len = 0;
};
inline TinyForwardInputs tiny_forward_inputs(const io::WanConfig& c, uint64_t seed, double t, int64_t ctx_len) {
    at::manual_seed(seed);
    return {at::randn({c.in_dim, 2, 6, 8}), at::scalar_tensor(t), at::randn({ctx_len, c.text_dim}), 2 * 3 * 4};
}

}  // namespace wan::test
