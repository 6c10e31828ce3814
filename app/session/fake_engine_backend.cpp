#include "session/fake_engine_backend.h"

#include "core/cancel.h"
#include "core/sidecar.h"

#include <QColor>
#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QImage>
#include <QPainter>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

namespace wan::app {

EngineInfo FakeBackendConfig::defaultInfo() {
    EngineInfo info;
    info.world_size = 2;
    info.ulysses_size = 2;
    info.ring_size = 1;
    info.dit_fsdp = true;
    info.model_variant = "demo (fake)";
    info.device = "cpu";
    info.demo_checkpoint = true;
    info.gpu_memory_used_gb = {1.5, 1.25};
    info.gpu_memory_total_gb = {80.0, 80.0};
    info.default_width = 64;
    info.default_height = 64;
    info.default_frames = 9;
    info.default_steps = 4;
    info.sizes = {"64*64", "96*64", "64*96"};
    return info;
}

FakeEngineBackend::FakeEngineBackend(FakeBackendConfig config) : config_(std::move(config)) {}

FakeEngineBackend::~FakeEngineBackend() { ++config_.probe->destroyed; }

EngineInfo FakeEngineBackend::start(const LoadControl& load) {
    ++config_.probe->starts;
    if (config_.startDelayMs > 0) std::this_thread::sleep_for(std::chrono::milliseconds(config_.startDelayMs));
    const auto t0 = std::chrono::steady_clock::now();
    const uint64_t tensorBytes = 1000000;
    for (int i = 0; i < config_.loadSteps; ++i) {
        if (load.cancel && load.cancel->load()) throw Cancelled("loading cancelled");
        std::this_thread::sleep_for(std::chrono::milliseconds(config_.loadStepDelayMs));
        static const char* const kComponents[] = {"text encoder", "DiT", "VAE"};
        const std::string component = kComponents[std::min(2, 3 * i / config_.loadSteps)];
        LoadProgress p;
        p.component = component;
        p.file = "/fake/" + component + ".safetensors";
        p.bytes_done = static_cast<uint64_t>(i + 1) * tensorBytes;
        p.bytes_total = static_cast<uint64_t>(config_.loadSteps) * tensorBytes;
        p.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (load.progress) load.progress(p);
    }
    WAN_CHECK(config_.startError.empty(), "%s", config_.startError.c_str());
    return config_.info;
}

GenerationResult FakeEngineBackend::run(const GenerationRequest& request,
                                        const std::function<void(const ProgressInfo&)>& progress,
                                        const std::atomic<bool>& cancel) {
    ++config_.probe->runs;
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    GenerationResult result;
    result.job_id = request.job_id;
    result.prompt_used = request.prompt;
    result.seed_used = request.seed >= 0 ? request.seed : std::random_device{}() % 2147483647LL;
    const int steps = request.sample_steps > 0 ? request.sample_steps : config_.defaultSteps;
    const double stepS = config_.stepDelayMs / 1000.0;
    const double totalS = stepS * (steps + 4);
    auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
    auto report = [&](Stage stage, int step, int total) {
        ProgressInfo p;
        p.stage = stage;
        p.step = step;
        p.total = total;
        p.elapsed_s = elapsed();
        p.eta_s = totalS;
        progress(p);
    };
    auto pause = [&] { std::this_thread::sleep_for(std::chrono::milliseconds(config_.stepDelayMs)); };
    auto cancelled = [&] {
        result.status = JobStatus::Cancelled;
        result.message = "cancelled";
        result.seconds = elapsed();
        return result;
    };

    report(Stage::Text, 0, 1);
    pause();
    report(Stage::Text, 1, 1);
    for (int i = 0; i < steps; ++i) {
        if (cancel) return cancelled();
        report(Stage::Denoise, i, steps);
        if (!config_.failMarker.empty() && request.prompt.find(config_.failMarker) != std::string::npos && i == 1) {
            result.status = JobStatus::Failed;
            result.message = "simulated failure at denoising step 2 (the prompt contains '" + config_.failMarker + "')";
            result.seconds = elapsed();
            return result;
        }
        pause();
    }
    report(Stage::Denoise, steps, steps);
    for (int i = 0; i < 2; ++i) {
        if (cancel) return cancelled();
        report(Stage::Decode, i, 2);
        pause();
    }
    if (cancel) return cancelled();
    report(Stage::Encode, 0, 1);

    if (config_.writeFiles && !request.output_dir.empty()) {
        QDir dir(QString::fromStdString(request.output_dir));
        if (!dir.mkpath(QStringLiteral("."))) {
            result.status = JobStatus::Failed;
            result.message = "cannot create the output folder " + request.output_dir;
            return result;
        }
        const QString stem = QStringLiteral("wan_%1_job%2")
                                 .arg(QDateTime::currentDateTime().toString(QStringLiteral("yyyyMMdd_hhmmss_zzz")))
                                 .arg(request.job_id);
        const QString video = dir.absoluteFilePath(stem + QStringLiteral(".mp4"));
        const QString poster = dir.absoluteFilePath(stem + QStringLiteral(".png"));
        const QString json = dir.absoluteFilePath(stem + QStringLiteral(".json"));
        bool ok = false;
        if (!config_.sampleVideo.empty()) {
            ok = QFile::copy(QString::fromStdString(config_.sampleVideo), video);
        } else {
            QFile f(video);
            ok = f.open(QIODevice::WriteOnly) && f.write("not a real video: written by FakeEngineBackend\n") > 0;
        }
        const int w = request.width > 0 ? request.width : config_.info.default_width;
        const int h = request.height > 0 ? request.height : config_.info.default_height;
        QImage image(w, h, QImage::Format_RGB32);
        {
            QPainter painter(&image);
            QLinearGradient g(0, 0, w, h);
            g.setColorAt(0, QColor::fromHsv(static_cast<int>(result.seed_used % 360), 160, 220));
            g.setColorAt(1, QColor(20, 24, 40));
            painter.fillRect(image.rect(), g);
        }
        ok = ok && image.save(poster, "PNG");
        result.video_path = video.toStdString();
        result.poster_path = poster.toStdString();
        result.json_path = json.toStdString();
        result.status = JobStatus::Ok;
        result.seconds = elapsed();
        GenerationRequest resolved = request;
        resolved.width = w;
        resolved.height = h;
        const std::string record = make_sidecar(resolved, result, config_.info, "fake").to_json();
        QFile f(json);
        ok = ok && f.open(QIODevice::WriteOnly) && f.write(record.data(), static_cast<qint64>(record.size())) > 0;
        if (!ok) {
            result.status = JobStatus::Failed;
            result.message = "cannot write the outputs in " + request.output_dir;
            return result;
        }
    }
    report(Stage::Encode, 1, 1);
    result.status = JobStatus::Ok;
    result.seconds = elapsed();
    return result;
}

std::string FakeEngineBackend::extendPrompt(const std::string& prompt, const std::string& target_lang, int64_t) {
    ++config_.probe->extends;
    WAN_CHECK(config_.extendConfigured,
              "prompt extension is not configured (start with --prompt_extend_method dashscope or local_qwen)");
    WAN_CHECK(!prompt.empty(), "prompt extension: the prompt is empty");
    if (target_lang == "zh") return prompt + "，画面细腻，光影柔和，电影质感。";
    return prompt + ", cinematic lighting, soft focus, highly detailed.";
}

EngineInfo FakeEngineBackend::info() {
    ++config_.probe->infos;
    return config_.info;
}

void FakeEngineBackend::shutdown() { ++config_.probe->shutdowns; }

}  // namespace wan::app
