// One rank's share of the engine: the device, the communicators and mesh of the layout, the pipeline.
#include "server/engine.h"

#include "io/component_files.h"
#include "io/io.h"
#include "core/cancel.h"
#include "protocol/deadline.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/InferenceMode.h>
#if WAN_HAVE_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#endif

#include <algorithm>
#include <thread>

namespace wan::server {

std::pair<double, double> memory_gb(c10::Device device) {
#if WAN_HAVE_CUDA
    if (device.is_cuda()) {
        auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
        const double used = static_cast<double>(stats.reserved_bytes[0].current) / 1e9;
        const double total = static_cast<double>(at::cuda::getDeviceProperties(device.index())->totalGlobalMem) / 1e9;
        return {used, total};
    }
#endif
    (void)device;
    return {0.0, 0.0};
}

std::string device_description(c10::Device device) {
#if WAN_HAVE_CUDA
    if (device.is_cuda()) {
        size_t free_b = 0, total_b = 0;
        c10::cuda::CUDAGuard g(device.index());
        cudaMemGetInfo(&free_b, &total_b);
        return strfmt("%s (%s, %.1f of %.1f GB free)", device.str().c_str(),
                      at::cuda::getDeviceProperties(device.index())->name, free_b / 1e9, total_b / 1e9);
    }
#endif
    return device.str();
}

/// How a rank's building went, besides its error message.
struct BuildOutcome {
    bool cancelled = false;  ///< the load was cancelled (agreed inside the pipeline, so on every rank alike)
    bool elsewhere = false;  ///< another rank failed (it names the reason; this rank has none of its own)
};

/// Runs `step`; its error message (also logged, unless a cancel), or "" when it worked.
template <typename Step>
std::string local_failure(Step&& step, BuildOutcome* outcome = nullptr) {
    try {
        step();
        return {};
    } catch (const Cancelled& e) {
        if (outcome) outcome->cancelled = true;
        return e.what();
    } catch (const pipeline::FailedElsewhere& e) {
        if (outcome) outcome->elsewhere = true;
        return e.what();
    } catch (const std::exception& e) {
        WAN_LOG_ERROR("%s", e.what());
        return e.what();
    }
}

/// Collective, after an agreement that failed: the message this rank ends with. Its own error when it had
/// one; otherwise (on rank 0, which reports to the user) the failing ranks named with their reasons.
std::string failure_after_agreement(MPI_Comm world, const std::string& mine, const char* what_failed) {
    const std::vector<std::string> all = dist::gather_strings(world, mine);  // filled on rank 0 only
    if (!mine.empty()) return mine;
    std::string named;
    int listed = 0, more = 0;
    for (size_t r = 0; r < all.size(); ++r) {
        if (all[r].empty()) continue;
        if (listed++ < 3) named += strfmt("%srank %zu %s: %s", named.empty() ? "" : "; ", r, what_failed, all[r].c_str());
        else ++more;
    }
    if (more) named += strfmt(" (and %d more ranks)", more);
    return named.empty() ? strfmt("another rank %s (its error is in its log)", what_failed) : named;
}

void share_cores(const dist::RankFacts& facts) {
    const int cores = static_cast<int>(std::thread::hardware_concurrency());
    if (facts.local_size > 1 && cores > 0) at::set_num_threads(std::max(1, cores / facts.local_size));
}

Engine::Engine(const EngineConfig& cfg, const LoadControl& load) : config(cfg) {
    protocol::set_collective_timeout(config.collective_timeout_s);
    protocol::start_watchdog(world);  // collective; before the first bounded wait of the engine
    facts = dist::rank_facts(world);
    set_log_rank(facts.rank);
    share_cores(facts);
    config.layout.world = facts.size;
    // Two agreements: right after the local start-up checks (device, checkpoint files, layout), so a missing
    // file on one host fails every host at once instead of leaving the others in communicator creation; then
    // after building, before anyone waits for a request.
    c10::InferenceMode guard;
    io::WanConfig wan_config;
    std::string error = local_failure([&] {
        device = dist::pick_device(config.device, facts.local_rank, facts.local_size);
        const bool demo = config.ckpt_dir.empty() && config.components.empty();
        const std::string dir = demo ? pipeline::demo_checkpoint_dir() : config.ckpt_dir;
        wan_config = io::ModelComponents::locate(dir, config.components).dit_config();
        config.layout.validate(wan_config.num_heads);  // the same verdict on every rank: all leave together
    });
    if (!dist::all_ok(world, error.empty()))
        throw Error(failure_after_agreement(world, error, "failed its start-up checks"));
    BuildOutcome outcome;
    error = local_failure([&] {
        if (facts.rank == 0)
            for (const std::string& w : config.layout.warnings()) WAN_LOG_WARN("%s", w.c_str());
        pipeline::EngineConfig pc{config};
        pc.device = device.is_cuda() ? "cuda" : "cpu";
        pc.device_index = device.is_cuda() ? device.index() : 0;
        pc.load = load;
        c10::DeviceGuard dg(device);
        if (facts.size > 1) {
            comm = dist::make_communicator(world, device);
            mesh = std::make_unique<dist::Mesh>(*comm, config.layout, wan_config.num_heads);
            pc.mesh = mesh.get();
        }
        pipe = std::make_unique<pipeline::T2VPipeline>(pc);
    }, &outcome);
    if (!dist::all_ok(world, error.empty())) {
        // A cancelled load was agreed at a component boundary (pipeline Note [Load agreement]): every rank
        // has outcome.cancelled alike, so every rank takes the same branch here.
        if (outcome.cancelled) throw Cancelled("loading cancelled");
        throw Error(failure_after_agreement(world, outcome.elsewhere ? std::string() : error, "failed to load the engine"));
    }
}

Engine::~Engine() = default;

EngineInfo Engine::info_with_memory() {
    EngineInfo info = pipe->info();
    if (device.is_cuda()) (void)at::empty({1}, at::TensorOptions().device(device));  // allocator initialised
    const auto [used, total] = memory_gb(device);
    const std::vector<double> all = dist::gather_doubles(world, {used, total});
    if (device.is_cuda() && facts.rank == 0) {
        for (int r = 0; r < facts.size; ++r) {
            info.gpu_memory_used_gb.push_back(all[static_cast<size_t>(2 * r)]);
            info.gpu_memory_total_gb.push_back(all[static_cast<size_t>(2 * r + 1)]);
        }
    }
    return info;
}

}  // namespace wan::server
