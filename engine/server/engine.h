// Private to engine/server: one rank's share of the engine (device, communicators, mesh, pipeline), shared
// by the head, the workers and the setup check.
#pragma once

#include "core/engine_config.h"
#include "dist/dist.h"
#include "pipeline/pipeline.h"

#include <memory>
#include <string>
#include <utility>

namespace wan::server {

struct Engine {
    /// Collective over MPI_COMM_WORLD: every rank builds its communicators, mesh and model share, then all
    /// agree that loading worked; if any rank failed, every rank throws (the failing one with its reason).
    /// `load` reports the load's progress and cancels it (pipeline Note [Load agreement]): a cancel seen by any
    /// rank throws wan::Cancelled on every rank.
    explicit Engine(const EngineConfig& config, const LoadControl& load = {});
    ~Engine();

    /// The pipeline's info plus every rank's GPU memory (collective: a gather to rank 0).
    EngineInfo info_with_memory();

    MPI_Comm world = MPI_COMM_WORLD;
    dist::RankFacts facts;
    EngineConfig config;  ///< layout.world filled in
    c10::Device device{c10::kCPU};
    std::unique_ptr<dist::Communicator> comm;
    std::unique_ptr<dist::Mesh> mesh;
    std::unique_ptr<pipeline::T2VPipeline> pipe;
};

/// "cuda:0 (NVIDIA H100 80GB HBM3, 79.1 of 79.6 GB free)" or "cpu".
std::string device_description(c10::Device device);
/// {reserved, total} GB of a CUDA device; {0, 0} on the CPU.
std::pair<double, double> memory_gb(c10::Device device);
/// Spreads a node's cores over its ranks (every rank starting one thread per core would thrash).
void share_cores(const dist::RankFacts& facts);

}  // namespace wan::server
