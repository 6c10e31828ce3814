// The engine runtime of `wanstudio`: every rank runs one. World rank 0 is the head (EngineHead: takes requests
// from the front end, broadcasts them, writes the files, returns the results); ranks 1..N-1 are workers
// (EngineWorker: build their share of the engine and follow the head until Shutdown). Also the distributed
// setup check (`--check`, check.cpp) and the build facts of `--version`. Qt-free, and the app needs no MPI,
// NCCL or CUDA call of its own. See Note [Distributed pipeline] in engine/pipeline.
//
// Note [Engine start]
// The head's first message tells the workers whether the engine is built at all: Tag::Start (the front end
// called EngineHead::start()), or Tag::Shutdown (it stopped first, e.g. on a bad batch file). After Start every
// rank builds its share of the model collectively and all agree that loading worked, so no rank is left
// waiting; then the workers follow Generate / Info messages until Shutdown. A load cancelled on any rank (the
// head's Cancel, a worker's Ctrl+C) is agreed on at a component boundary (pipeline Note [Load agreement]):
// every rank then leaves, the workers' run() returns normally and the head's start() throws wan::Cancelled.
#pragma once

#include "core/core.h"
#include "core/engine_config.h"
#include "core/load_progress.h"

#include <atomic>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace wan::server {

struct Engine;  // one rank's share of the engine (engine.h, private)

/// World rank 0's runtime. Every method is called from one thread (the front end's engine thread).
class EngineHead {
public:
    /// Builds nothing yet. Throws wan::Error when this process is not world rank 0.
    explicit EngineHead(const EngineConfig& config);
    /// shutdown().
    ~EngineHead();
    EngineHead(const EngineHead&) = delete;
    EngineHead& operator=(const EngineHead&) = delete;

    /// Tells the workers to start (Note [Engine start]) and builds rank 0's share, collectively, reporting the
    /// load's progress through `load.progress` (on this engine thread) and polling `load.cancel` between tensors.
    /// Throws wan::Error on every rank when any rank failed (this rank's reason, or a pointer to the failing
    /// rank's log), wan::Cancelled when the load was cancelled (the workers have left then: no Shutdown follows).
    EngineInfo start(const LoadControl& load = {});
    /// Runs one job on every rank; writes the MP4, PNG poster and JSON (video::save_generation). Never throws:
    /// failures and cancellation are in the result. A random seed (-1) is drawn here, once, for every rank.
    GenerationResult run(const GenerationRequest& request, const std::function<void(const ProgressInfo&)>& progress,
                         const std::atomic<bool>& cancel);
    /// Prompt extension on rank 0 (the result then travels in the request). Throws wan::Error with the
    /// reason when it is not configured or fails.
    std::string extend_prompt(const std::string& prompt, const std::string& target_lang, int64_t seed);
    /// Info with per-rank GPU memory (one small collective).
    EngineInfo info();
    /// Tells every worker to leave (Shutdown); before start() it tells them not to build. Idempotent.
    void shutdown();

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

/// The runtime of world ranks 1..N-1.
class EngineWorker {
public:
    explicit EngineWorker(const EngineConfig& config);
    ~EngineWorker();
    EngineWorker(const EngineWorker&) = delete;
    EngineWorker& operator=(const EngineWorker&) = delete;

    /// Waits for the head's first message; on Start builds this rank's share (collective with
    /// EngineHead::start()) and follows the head until Shutdown. Job failures are reported by the head;
    /// returns normally after Shutdown and after a cancelled load (Ctrl+C on this rank cancels the load, or the
    /// job that runs). Throws wan::Error when building failed (on every rank at once).
    void run();

private:
    EngineConfig config_;
    std::unique_ptr<Engine> engine_;
};

/// `wanstudio --check`: collective over the world; rank 0 prints one line per check to `out`. Returns 0 only
/// if every check passed on every rank.
int run_setup_check(const EngineConfig& config, std::ostream& out);

/// `wanstudio --version`: what this engine was built with and finds at run time, one line per component
/// ("wanstudio 0.1.0", "  LibTorch … with CUDA …", "  NCCL …", "  MPI: …", "  FFmpeg …"). Not collective.
std::vector<std::string> build_facts();

/// The JSON written beside each video: the resolved request's keys, the result's keys, the model and the
/// program version (flat object; the GUI's history reads it). Also "teacache_threshold" (0: step caching
/// off) and, when `dit_steps_computed` ≥ 0, "dit_steps_computed" (steps whose DiT block stack ran).
std::string sidecar_json(const GenerationRequest& resolved, const GenerationResult& result, const EngineInfo& info,
                         const std::string& codec, double teacache_threshold = 0, int dit_steps_computed = -1);

}  // namespace wan::server
