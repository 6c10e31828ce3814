// A fake EngineBackend for GUI and batch tests (and for trying the UI without a model): simulated stages with
// short sleeps, honours cancel, writes a dummy "video", a PNG poster and the JSON record, can be told to fail.
#pragma once

#include "session/engine_backend.h"

#include <atomic>
#include <memory>
#include <string>

namespace wan::app {

/// Counters a test can read while the backend lives on the engine thread.
struct FakeBackendProbe {
    std::atomic<int> starts{0};
    std::atomic<int> runs{0};
    std::atomic<int> extends{0};
    std::atomic<int> infos{0};
    std::atomic<int> shutdowns{0};
    std::atomic<int> destroyed{0};
};

struct FakeBackendConfig {
    int startDelayMs = 0;
    /// A simulated load: this many tensors over "text encoder", "DiT" and "VAE", loadStepDelayMs each, reported
    /// as load progress (1 MB per tensor) and cancellable between them.
    int loadSteps = 0;
    int loadStepDelayMs = 20;
    std::string startError;          ///< non-empty → start() throws wan::Error with this text
    int defaultSteps = 4;            ///< used when the request says 0
    int stepDelayMs = 20;            ///< per denoising step
    std::string failMarker = "FAIL"; ///< a prompt containing it fails at denoising step 2
    bool extendConfigured = true;    ///< false → extendPrompt throws "prompt extension is not configured"
    bool writeFiles = true;          ///< MP4 (dummy bytes or sampleVideo), PNG poster and JSON in output_dir
    std::string sampleVideo;         ///< an MP4 to copy as the "video" instead of dummy bytes
    EngineInfo info = defaultInfo();
    std::shared_ptr<FakeBackendProbe> probe = std::make_shared<FakeBackendProbe>();

    /// A 2-rank demo layout with the tiny demo model's defaults.
    static EngineInfo defaultInfo();
};

class FakeEngineBackend : public EngineBackend {
public:
    explicit FakeEngineBackend(FakeBackendConfig config = {});
    ~FakeEngineBackend() override;
    EngineInfo start(const LoadControl& load) override;
    GenerationResult run(const GenerationRequest& request, const std::function<void(const ProgressInfo&)>& progress,
                         const std::atomic<bool>& cancel) override;
    std::string extendPrompt(const std::string& prompt, const std::string& target_lang, int64_t seed) override;
    EngineInfo info() override;
    void shutdown() override;

private:
    FakeBackendConfig config_;
};

}  // namespace wan::app
