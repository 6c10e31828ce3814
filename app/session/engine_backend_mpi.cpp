// The real EngineBackend: rank 0's engine runtime (server::EngineHead). Linked into the executable only, so
// GUI tests need no engine. Every call comes from EngineSession's engine thread, the only thread of rank 0
// that calls MPI (MPI_THREAD_SERIALIZED).
#include "cli/options.h"
#include "server/server.h"
#include "session/engine_backend.h"

namespace wan::app {

namespace {

class MpiEngineBackend final : public EngineBackend {
public:
    explicit MpiEngineBackend(const AppOptions& options) : head_(options.engine) {}

    EngineInfo start(const LoadControl& load) override { return head_.start(load); }
    GenerationResult run(const GenerationRequest& request, const std::function<void(const ProgressInfo&)>& progress,
                         const std::atomic<bool>& cancel) override {
        return head_.run(request, progress, cancel);
    }
    std::string extendPrompt(const std::string& prompt, const std::string& target_lang, int64_t seed) override {
        return head_.extend_prompt(prompt, target_lang, seed);
    }
    EngineInfo info() override { return head_.info(); }
    void shutdown() override { head_.shutdown(); }  // never started: releases the workers waiting to build

private:
    server::EngineHead head_;
};

}  // namespace

std::unique_ptr<EngineBackend> makeEngineBackend(const AppOptions& options) {
    return std::make_unique<MpiEngineBackend>(options);
}

}  // namespace wan::app
