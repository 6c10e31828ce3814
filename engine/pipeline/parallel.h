// Private to engine/pipeline: adapters that plug engine/dist into the DiT's and T5's small interfaces.
// See Note [Distributed pipeline] in pipeline.cpp.
#pragma once

#include "dist/dist.h"
#include "dit/dit.h"
#include "pipeline/load_monitor.h"
#include "text/text.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace wan::pipeline {

/// The DiT's hook for a rank with peers but no sequence parallelism (FSDP or CFG-parallel only): a single-rank
/// forward whose host read-backs notice a peer's failure (Note [Watched device waits] in dist/dist.h).
class WatchedReadBack : public dit::SequenceParallel {
public:
    at::Tensor to_host(const at::Tensor& t) override { return dist::to_host_watched(t, "step-cache read-back"); }
};

/// The tensors an FSDP provider shards, unit by unit (a block each), and the dtype each is kept in.
struct ShardUnits {
    std::vector<std::vector<std::string>> names;
    std::function<at::ScalarType(const std::string& name)> kept_dtype;
};

/// What rank `rank` of `ranks` reads of `store` when dist::ShardedParameters shards `units` over them: per unit
/// and kept dtype, elements [r·c, (r+1)·c) of the flattened tensors, c = ⌈elements / ranks⌉ (dist.h), at the
/// element size of the file's tensor views. Headers only: the load's progress plans with it before reading
/// (Note [FSDP load progress] in pipeline.cpp).
LoadMonitor::Share shard_share(const io::TensorStore& store, const ShardUnits& units, int64_t ranks, int64_t rank);

/// The DiT's sequence-parallel hook backed by Ulysses × Ring attention over a Mesh's SP group.
class UspSequenceParallel : public WatchedReadBack {
public:
    explicit UspSequenceParallel(dist::Mesh& mesh) : mesh_(mesh) {}
    int world() const override { return mesh_.layout().sp_size(); }
    int rank() const override { return mesh_.sp().rank(); }
    at::Tensor self_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t k_len) override;
    at::Tensor gather_sequence(const at::Tensor& local) override;
    void all_reduce_sum(at::Tensor& t) override;

private:
    dist::Mesh& mesh_;
};

/// DiT blocks sharded FSDP-style: each rank of `comm` keeps 1/N of every block, read straight from the
/// checkpoint; acquire(i) all-gathers block i (prefetching i+1 on the GPU), release(i) frees it. `comm` is the
/// blocks' own group (split by the caller: on the GPU its gathers run on a side stream, which must not interleave
/// with the attention collectives of the same NCCL communicator). Building reads the store and calls no collective.
class ShardedDitBlocks : public dit::BlockWeightsProvider {
public:
    ShardedDitBlocks(const io::WanConfig& config, const io::TensorStore& store, std::unique_ptr<dist::Communicator> comm,
                     const dit::ModelOptions& options);
    /// The blocks' tensors in the precision `options` give them (what the constructor shards).
    static ShardUnits units(const io::WanConfig& config, const dit::ModelOptions& options);
    int64_t num_blocks() const override { return config_.num_layers; }
    dit::BlockWeights acquire(int64_t i) override;
    void release(int64_t i) override;
    /// This rank's part of each of block i's tensors (a LoRA merges into these only).
    std::vector<dit::ParameterPart> stored_parts(int64_t i) override;
    /// Gathered blocks are stale after a merge into the parts.
    void weights_changed() override { params_->drop_gathered(); }
    const dist::ShardedParameters& params() const { return *params_; }

private:
    io::WanConfig config_;
    dit::ModelOptions options_;
    std::unique_ptr<dist::Communicator> comm_;  ///< own group: gathers run on a side stream on the GPU
    std::unique_ptr<dist::ShardedParameters> params_;
};

/// T5 blocks sharded the same way (`comm` split by the caller, likewise); the token embedding and final norm stay
/// resident.
class ShardedT5Weights : public text::T5WeightProvider {
public:
    ShardedT5Weights(const io::TensorStore& store, const text::UMT5Config& cfg, std::unique_ptr<dist::Communicator> comm,
                     c10::Device device, at::ScalarType dtype);
    /// The blocks' tensors, all kept in `dtype` (what the constructor shards).
    static ShardUnits units(const text::UMT5Config& cfg, at::ScalarType dtype);
    const dist::ShardedParameters& params() const { return *params_; }
    int64_t num_blocks() const override { return num_blocks_; }
    const text::T5BlockWeights& acquire(int64_t i) override;
    void release(int64_t i) override;
    const at::Tensor& token_embedding() override { return token_embedding_; }
    const at::Tensor& final_norm() override { return norm_; }

private:
    int64_t num_blocks_ = 0;
    c10::Device device_;
    at::ScalarType dtype_;
    std::unique_ptr<dist::Communicator> comm_;
    std::unique_ptr<dist::ShardedParameters> params_;
    text::T5BlockWeights current_;
    at::Tensor token_embedding_, norm_;
};

}  // namespace wan::pipeline
