// The real EngineBackend: rank 0's share of the MPI engine (engine/server). Linked into the executable only,
// so GUI tests need no engine. Every call comes from EngineSession's engine thread, the only thread of rank 0
// that calls MPI (MPI_THREAD_SERIALIZED).
#include "cli/options.h"
#include "session/engine_backend.h"
#include "server/server.h"

#include <mpi.h>

namespace wan::app {

server::ServerConfig server_config(const AppOptions& o) {
    server::ServerConfig c;
    c.ckpt_dir = o.ckpt_dir;
    c.device = o.device;
    c.t5_cpu = o.t5_cpu;
    c.offload_model = o.offload_model;
    c.t5_fsdp = o.t5_fsdp;
    c.dit_fsdp = o.dit_fsdp;
    c.ulysses_size = o.ulysses_size;
    c.ring_size = o.ring_size;
    c.cfg_parallel = o.cfg_parallel;
    c.vae_dtype = o.vae_dtype;
    c.vae_tile = o.vae_tile;
    c.teacache_threshold = o.teacache_threshold;
    c.fp8 = o.fp8;
    c.prompt_extend_method = o.prompt_extend_method;
    c.prompt_extend_model = o.prompt_extend_model;
    c.output_dir = o.output_dir;
    return c;
}

namespace {

class MpiEngineBackend final : public EngineBackend {
public:
    explicit MpiEngineBackend(const AppOptions& options) : options_(options) {}

    EngineInfo start() override {
        announce(1);
        server_ = std::make_unique<server::EngineServer>(MPI_COMM_WORLD, server_config(options_));
        return server_->info();
    }
    GenerationResult run(const GenerationRequest& request, const std::function<void(const ProgressInfo&)>& progress,
                         const std::atomic<bool>& cancel) override {
        if (!server_) {
            GenerationResult r;
            r.job_id = request.job_id;
            r.message = "the engine is not running";
            return r;
        }
        return server_->run(request, progress, cancel);
    }
    std::string extend_prompt(const std::string& prompt, const std::string& target_lang, int64_t seed) override {
        WAN_CHECK(server_ != nullptr, "the engine is not running");
        return server_->extend_prompt(prompt, target_lang, seed);
    }
    EngineInfo info() override {
        WAN_CHECK(server_ != nullptr, "the engine is not running");
        return server_->info();
    }
    void shutdown() override {
        if (server_) server_->shutdown();
        else announce(0);  // never started: release the engine ranks waiting to load
    }

private:
    // See Note [Engine start] in main.cpp: tells the other ranks whether to load the engine (once).
    void announce(int start) {
        if (announced_) return;
        announced_ = true;
        int world = 1;
        MPI_Comm_size(MPI_COMM_WORLD, &world);
        if (world > 1) MPI_Bcast(&start, 1, MPI_INT, 0, MPI_COMM_WORLD);
    }

    bool announced_ = false;
    AppOptions options_;
    std::unique_ptr<server::EngineServer> server_;
};

}  // namespace

std::unique_ptr<EngineBackend> make_engine_backend(const AppOptions& options) {
    return std::make_unique<MpiEngineBackend>(options);
}

}  // namespace wan::app
