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
    int start_delay_ms = 0;
    std::string start_error;         ///< non-empty → start() throws wan::Error with this text
    int default_steps = 4;           ///< used when the request says 0
    int step_delay_ms = 20;          ///< per denoising step
    std::string fail_marker = "FAIL";  ///< a prompt containing it fails at denoising step 2
    bool extend_configured = true;   ///< false → extend_prompt throws "prompt extension is not configured"
    bool write_files = true;         ///< MP4 (dummy bytes or sample_video), PNG poster and JSON in output_dir
    std::string sample_video;        ///< an MP4 to copy as the "video" instead of dummy bytes
    EngineInfo info = default_info();
    std::shared_ptr<FakeBackendProbe> probe = std::make_shared<FakeBackendProbe>();

    /// A 2-rank demo layout with the tiny demo model's defaults.
    static EngineInfo default_info();
};

class FakeEngineBackend : public EngineBackend {
public:
    explicit FakeEngineBackend(FakeBackendConfig config = {});
    ~FakeEngineBackend() override;
    EngineInfo start() override;
    GenerationResult run(const GenerationRequest& request, const std::function<void(const ProgressInfo&)>& progress,
                         const std::atomic<bool>& cancel) override;
    std::string extend_prompt(const std::string& prompt, const std::string& target_lang, int64_t seed) override;
    EngineInfo info() override;
    void shutdown() override;

private:
    FakeBackendConfig config_;
};

}  // namespace wan::app
