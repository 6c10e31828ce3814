// The engine side of `wanstudio` on every rank: builds the pipeline collectively, and either serves
// requests (ranks 1..N-1) or drives them (rank 0, the head): broadcast → generate → write the files.
// Also the distributed setup check (`--check`). Qt-free. See Note [Distributed pipeline] in engine/pipeline.
#pragma once

#include "core/component_paths.h"
#include "core/core.h"

#include <mpi.h>

#include <atomic>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

namespace wan::server {

/// Everything the engine needs at load time (what the command line says).
struct ServerConfig {
    std::string ckpt_dir;            ///< empty → built-in demo checkpoint (unless `components` names files)
    ComponentPaths components;       ///< --dit, --t5, --vae, --tokenizer, --dit-config (pipeline::EngineConfig)
    std::string device = "auto";     ///< auto | cuda | cpu
    bool t5_cpu = false;
    int offload_model = -1;  ///< upstream --offload_model (-1: on for one process, off distributed)
    bool t5_fsdp = false;
    bool dit_fsdp = false;
    int ulysses_size = 1;
    int ring_size = 1;
    bool cfg_parallel = false;
    std::string vae_dtype = "auto";
    int vae_tile = 0;
    double teacache_threshold = 0;
    bool fp8 = false;
    std::string prompt_extend_method;  ///< dashscope | local_qwen | "" (not configured)
    std::string prompt_extend_model;
    std::string output_dir = "outputs";  ///< used when a request has none
};

/// The engine of one rank. Construction is collective over `world` (MPI_COMM_WORLD): every rank builds
/// its communicators, mesh and model share, then all agree that loading worked; if any rank failed, every
/// rank throws (the failing one with its reason), so no rank is left waiting.
class EngineServer {
public:
    EngineServer(MPI_Comm world, const ServerConfig& config);
    ~EngineServer();
    EngineServer(const EngineServer&) = delete;
    EngineServer& operator=(const EngineServer&) = delete;

    int rank() const;
    int world_size() const;

    /// Ranks > 0: loops on the head's messages until Shutdown. Job failures are reported by the head;
    /// this returns normally after Shutdown.
    void serve();

    // ---- head (rank 0) only --------------------------------------------------------------------------
    /// Runs one job on every rank; writes the MP4, PNG poster and JSON beside it (rank 0). Never throws:
    /// failures and cancellation are in the result. The random seed is drawn here so every rank uses it.
    GenerationResult run(const GenerationRequest& request, const std::function<void(const ProgressInfo&)>& progress,
                         const std::atomic<bool>& cancel);
    /// Prompt extension on rank 0 (the result then travels in the request). Throws wan::Error with the
    /// reason when it is not configured or fails.
    std::string extend_prompt(const std::string& prompt, const std::string& target_lang, int64_t seed);
    /// Info with per-rank GPU memory (one small collective).
    EngineInfo info();
    /// Tells every rank to leave serve(). Idempotent.
    void shutdown();

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

/// `wanstudio --check`: collective over `world`; rank 0 prints one line per check to `out`. Returns 0 only
/// if every check passed on every rank.
int run_setup_check(MPI_Comm world, const ServerConfig& config, std::ostream& out);

/// A model's text made fit for a prompt box, a JSON file and MP4 tags (C strings): invalid UTF-8 becomes
/// U+FFFD, control characters other than tab and newline (NUL included) are dropped, ends are trimmed.
/// Applied to every extended prompt: a sampled model may emit any token, e.g. the tiny random test model.
std::string clean_model_text(const std::string& text);

/// The JSON written beside each video: the resolved request's keys, the result's keys, the model and the
/// program version (flat object; the GUI's history reads it). Also "teacache_threshold" (0: step caching
/// off) and, when `dit_steps_computed` ≥ 0, "dit_steps_computed" (steps whose DiT block stack ran).
std::string sidecar_json(const GenerationRequest& resolved, const GenerationResult& result, const EngineInfo& info,
                         const std::string& codec, double teacache_threshold = 0, int dit_steps_computed = -1);

}  // namespace wan::server
