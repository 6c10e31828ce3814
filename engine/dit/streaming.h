// DiT blocks streamed from host memory (--offload-dit, --max-vram): a BlockWeightsProvider that keeps the
// first blocks on the device and the rest in host memory (pinned on CUDA), copying block i+1 on a side stream
// while block i computes. See Note [Streamed DiT blocks] in streaming.cpp.
//
// Example:
//   const int64_t keep = dit::resident_block_count(budget_bytes, dit::block_weight_bytes(cfg, prec), cfg.num_layers);
//   auto blocks = dit::StreamedBlockWeights::load(cfg, store, options, keep);
//   dit::WanModel model(cfg, dit::load_root_weights(cfg, store, options), blocks, options);
#pragma once

#include "dit/dit.h"

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace wan::dit {

/// Bytes of one block's weights held in `precision` (every block has the same size); `fp8`: its Linear weights
/// as fp8 codes with one f32 scale per row (Note [FP8 weights]).
int64_t block_weight_bytes(const io::WanConfig& config, Precision precision, bool fp8 = false);
/// Bytes of the tensors outside the blocks (embeddings and head) in `precision`.
int64_t root_weight_bytes(const io::WanConfig& config, Precision precision);

/// How many of `num_blocks` blocks of `block_bytes` each stay resident within `budget_bytes`. When not all
/// fit, room for the two streaming buffers (the block computing and the one being copied) is kept out of the
/// budget first. Never negative; a budget below two blocks streams everything.
int64_t resident_block_count(int64_t budget_bytes, int64_t block_bytes, int64_t num_blocks);

/// Blocks [0, resident) on the device, the others in host memory, copied to the device when needed.
class StreamedBlockWeights : public BlockWeightsProvider {
public:
    /// What happened to the streamed blocks, in order (for tests and logs).
    struct Event {
        enum Kind { Prefetch, Fetch, Hit } kind;  ///< copy started ahead / copied on demand / prefetched copy used
        int64_t block;
        bool operator==(const Event& o) const { return kind == o.kind && block == o.block; }
    };

    /// Loads every block of `store` (validated by the caller or by load_block_weights): blocks below
    /// `resident` onto options.device, the others onto the host in the precision options resolve to (fp8 codes
    /// where options.weight_dtype resolves to Fp8; quantised on the device, where it is faster).
    static std::shared_ptr<StreamedBlockWeights> load(const io::WanConfig& config, const io::TensorStore& store,
                                                      const ModelOptions& options, int64_t resident);
    /// From every block already on `device` (a model built elsewhere, e.g. a benchmark's random weights): blocks
    /// [resident, n) are copied to host memory (pinned on CUDA) in their dtype and their device copies dropped.
    static std::shared_ptr<StreamedBlockWeights> from_device_blocks(std::vector<BlockWeights> blocks,
                                                                    c10::Device device, int64_t resident);
    /// From blocks already built: `device_blocks` (on `device`) are blocks 0.., `host_blocks` follow them.
    StreamedBlockWeights(std::vector<BlockWeights> device_blocks, std::vector<BlockWeights> host_blocks,
                         c10::Device device);
    ~StreamedBlockWeights() override;

    int64_t num_blocks() const override { return static_cast<int64_t>(device_.size() + host_.size()); }
    int64_t resident_blocks() const { return static_cast<int64_t>(device_.size()); }
    /// Block i on the device; a streamed block is the prefetched copy (waited for) or copied now. Starts the
    /// copy of block i+1 when that one is streamed.
    BlockWeights acquire(int64_t i) override;
    void release(int64_t i) override;
    /// The tensors holding each block's values: device tensors for resident blocks, host tensors for the
    /// streamed ones (what a LoRA merge writes into; the next copy carries the change).
    std::optional<BlockWeights> stored(int64_t i) override;
    /// Drops prefetched copies (they may predate an in-place change of the host weights).
    void weights_changed() override;

    std::vector<Event> events() const;
    void clear_events();

private:
    struct Pending;
    void start_copy(int64_t i, Event::Kind kind);
    std::vector<BlockWeights> device_, host_;
    c10::Device device_type_;
    mutable std::mutex mu_;
    std::map<int64_t, std::shared_ptr<Pending>> pending_;  ///< copies started, not yet taken
    std::vector<Event> events_;
    struct CudaState;
    std::unique_ptr<CudaState> cuda_;  ///< side stream (CUDA builds, CUDA device)
};

}  // namespace wan::dit
