// The contract between the front ends (GUI, --batch) and an engine. Qt-free.
// The real backend (engine_backend_mpi.cpp) drives the MPI head and the pipeline on rank 0's engine thread;
// GUI tests use a fake. EngineSession calls every method from its own engine thread, never the GUI thread.
#pragma once

#include "core/core.h"
#include "core/load_progress.h"

#include <atomic>
#include <functional>
#include <memory>
#include <string>

namespace wan::app {

struct AppOptions;

class EngineBackend {
public:
    virtual ~EngineBackend() = default;
    /// Loads the models (may take minutes on real checkpoints). Called once, before any job. Reports through
    /// `load.progress` (from the engine thread) and polls `load.cancel`. Throws wan::Error on a bad checkpoint
    /// or layout, wan::Cancelled when the load was cancelled (the engine is then not loaded; shutdown() follows).
    virtual EngineInfo start(const LoadControl& load) = 0;
    /// Runs one job to completion, cancellation or failure; never throws (failures are in the result).
    /// `progress` is called from the engine thread; `cancel` is polled between steps and VAE frames.
    virtual GenerationResult run(const GenerationRequest& request,
                                 const std::function<void(const ProgressInfo&)>& progress,
                                 const std::atomic<bool>& cancel) = 0;
    /// "Enhance prompt". Returns the extended prompt; throws wan::Error with the reason when extension is
    /// not configured or fails (the caller keeps the original prompt).
    virtual std::string extendPrompt(const std::string& prompt, const std::string& target_lang, int64_t seed) = 0;
    /// Current info (memory per rank for the status bar). Cheap.
    virtual EngineInfo info() = 0;
    /// Tells every rank to leave its loop. Called once, last.
    virtual void shutdown() = 0;
};

/// The real backend for these options (rank 0 only). Implemented in engine_backend_mpi.cpp.
std::unique_ptr<EngineBackend> makeEngineBackend(const AppOptions& options);

}  // namespace wan::app
