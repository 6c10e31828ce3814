// EngineHead (world rank 0) and EngineWorker (ranks 1..N-1). See Note [Engine start] in server.h.
#include "server/server.h"

#include "core/clock.h"
#include "core/cancel.h"
#include "core/fault_injection.h"
#include "core/seed.h"
#include "core/sidecar.h"
#include "io/save_new.h"
#include "protocol/protocol.h"
#include "server/engine.h"
#if WAN_HAVE_FFMPEG
#include "video/video.h"
#endif
#if WAN_HAVE_EXTEND
#include "extend/extend.h"
#endif

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <csignal>

namespace wan::server {

namespace {


void send(protocol::Tag tag, int64_t job_id = 0, std::string payload = {}) {
    protocol::Message msg{tag, job_id, std::move(payload)};
    protocol::broadcast(MPI_COMM_WORLD, 0, msg);
}

/// A worker's Ctrl+C (the terminal signals every process of the job): the current job is cancelled at the
/// next point where the ranks agree, as when the head cancels it.
std::atomic<bool> g_worker_interrupted{false};
extern "C" void on_worker_interrupt(int) { g_worker_interrupted.store(true); }

}  // namespace

struct EngineHead::Impl {
    EngineConfig config;
    int world_size = 1;
    std::unique_ptr<Engine> engine;
#if WAN_HAVE_EXTEND
    std::unique_ptr<extend::PromptExtender> extender;
#endif
    /// The running job's cancel flag while its prompt is extended (DashScope polls it); nullptr otherwise.
    const std::atomic<bool>* extend_cancel = nullptr;
    bool announced = false;  ///< the workers got their first message (Start or Shutdown)
    bool shut_down = false;
    int64_t next_job = 1;

    /// The request as every rank will run it: job id, output folder, seed drawn, prompt extended (a failed
    /// extension only adds a note), defaults filled in and validated.
    /// Cancelled during the prompt extension: throws Cancelled before the workers hear of the job.
    GenerationRequest prepare(EngineHead& head, GenerationRequest req, std::vector<std::string>& notes,
                              const std::atomic<bool>& cancel);
    /// The MP4, poster and sidecar of a finished job into `result` (rank 0).
    void save(const GenerationRequest& resolved, const pipeline::PipelineOutput& out, GenerationResult& result,
              Clock::time_point t0, std::vector<std::string>& notes);
    /// After a failed video write: the latent saved (exclusively) beside the video, else in the working folder;
    /// returns the message that says where (or why not).
    static std::string keep_latent(const GenerationRequest& resolved, const pipeline::PipelineOutput& out,
                                   const std::string& why);
};

EngineHead::EngineHead(const EngineConfig& config) : impl_(std::make_unique<Impl>()) {
    impl_->config = config;
    const auto [rank, size] = dist::rank_and_size(MPI_COMM_WORLD);  // not collective: the workers are elsewhere
    WAN_CHECK(rank == 0, "EngineHead is for world rank 0; rank %d runs an EngineWorker", rank);
    impl_->world_size = size;
}

EngineHead::~EngineHead() {
    try {
        shutdown();
    } catch (const std::exception& e) {
        WAN_LOG_ERROR("engine shutdown: %s", e.what());
    }
}

EngineInfo EngineHead::start(const LoadControl& load) {
    Impl& m = *impl_;
    WAN_CHECK(!m.engine && !m.shut_down, "the engine was already started or shut down");
    if (m.world_size > 1) send(protocol::Tag::Start);
    m.announced = true;
    try {
        m.engine = std::make_unique<Engine>(m.config, load);
    } catch (...) {
        m.shut_down = true;  // every rank failed or was cancelled together: nobody serves, no Shutdown is sent
        throw;
    }
    return info();  // the workers are now in their message loop: Info first, then the memory gather
}

GenerationRequest EngineHead::Impl::prepare(EngineHead& head, GenerationRequest req, std::vector<std::string>& notes,
                                            const std::atomic<bool>& cancel) {
    if (req.output_dir.empty()) req.output_dir = config.output_dir;
    if (req.seed < 0) req.seed = draw_seed();  // drawn once here, so every rank uses the same noise
    if (req.use_prompt_extend) {
        extend_cancel = &cancel;
        struct Forget {  // the flag is the caller's: forgotten however this block ends
            const std::atomic<bool>*& slot;
            ~Forget() { slot = nullptr; }
        } forget{extend_cancel};
        try {
            std::string extended = head.extend_prompt(req.prompt, req.extend_target_lang, req.seed);
            req.original_prompt = req.prompt;
            req.prompt = extended;
        } catch (const std::exception& e) {
            if (cancel.load()) throw Cancelled();  // only rank 0 knows of this job yet: nobody else to agree with
            notes.push_back(std::string("prompt extension failed, the original prompt was used: ") + e.what());
            WAN_LOG_WARN("%s", notes.back().c_str());
        }
    }
    GenerationRequest resolved = engine->pipe->resolve(req);  // invalid requests fail here, before any rank computes
    if (!resolved.save_latents.empty()) io::check_new_output(resolved.save_latents);  // checked again when saving
#if WAN_HAVE_FFMPEG
    if (!resolved.output_dir.empty()) video::check_output_dir(resolved.output_dir);  // fail before compute
#endif
    return resolved;
}

void EngineHead::Impl::save(const GenerationRequest& resolved, const pipeline::PipelineOutput& out,
                            GenerationResult& result, Clock::time_point t0, std::vector<std::string>& notes) {
#if WAN_HAVE_FFMPEG
    at::Tensor u8 = pipeline::video_to_uint8(out.video);  // [F, H, W, 3]
    const EngineInfo& info = engine->pipe->info();
    result.seconds = seconds_since(t0);
    GenerationSidecar record = make_sidecar(resolved, result, info, video::default_encoder(),
                                            config.teacache_threshold, out.steps_computed);
    std::map<std::string, std::string> tags;  // the LoRAs in the MP4 too: "name.safetensors sha256=… strength=0.8; …"
    // Two-expert models: the per-expert LoRAs follow, marked with their expert ("… strength=1 expert=high").
    for (const auto& [list, expert] : {std::make_pair(&out.loras, ""), std::make_pair(&out.loras_high, "high"),
                                       std::make_pair(&out.loras_low, "low")}) {
        for (const lora::AppliedLora& a : *list) {
            record.lora_files.push_back({a.file_name, a.sha256, a.spec.strength, expert});
            tags["loras"] += (tags["loras"].empty() ? "" : "; ") +
                             strfmt("%s sha256=%s strength=%g%s%s", a.file_name.c_str(), a.sha256.c_str(),
                                    a.spec.strength, *expert ? " expert=" : "", expert);
        }
    }
    const std::string sidecar = record.to_json();
    const video::RgbFrames frames{u8.data_ptr<uint8_t>(), static_cast<int>(u8.size(0)), static_cast<int>(u8.size(1)),
                                  static_cast<int>(u8.size(2))};
    video::SavedOutputs saved;
    try {
        test_hooks::maybe_fail_video_write();
        saved = video::save_generation(resolved, out.seed_used, info.model_variant, frames, sidecar, tags);
    } catch (const std::exception& e) {
        WAN_THROW("%s", keep_latent(resolved, out, e.what()).c_str());
    }
    if (saved.codec != "libx264") notes.push_back("libx264 is not available; encoded with " + saved.codec);
    result.video_path = saved.video_path;
    result.poster_path = saved.poster_path;
    result.json_path = saved.json_path;
#else
    (void)resolved, (void)out, (void)result, (void)t0;
    notes.push_back("built without FFmpeg: no video file written (use --save-latents)");
#endif
}

std::string EngineHead::Impl::keep_latent(const GenerationRequest& resolved, const pipeline::PipelineOutput& out,
                                         const std::string& why) {
    // The GPU time is in the latent: keep it beside where the video should have gone (or in the working folder
    // when that folder is gone), never replacing a file.
    const std::string name = strfmt("wanstudio-job%lld-seed%lld.latent.safetensors", static_cast<long long>(resolved.job_id),
                                    static_cast<long long>(out.seed_used));
    std::string first_error;
    for (const std::string& dir : {resolved.output_dir, std::string(".")}) {
        const std::string path = dir + "/" + name;
        try {
            io::save_safetensors_new(path, {{"latent", out.latent.to(at::kFloat)}},
                                     {{"request", resolved.to_json()}, {"seed_used", std::to_string(out.seed_used)}});
            WAN_LOG_ERROR("writing the video failed (%s); the latent was saved to %s", why.c_str(), path.c_str());
            return strfmt("writing the video failed: %s; the finished latent was saved to %s", why.c_str(), path.c_str());
        } catch (const std::exception& e) {
            if (first_error.empty()) first_error = e.what();
        }
    }
    return strfmt("writing the video failed: %s; saving the latent failed too: %s", why.c_str(), first_error.c_str());
}

GenerationResult EngineHead::run(const GenerationRequest& request,
                                 const std::function<void(const ProgressInfo&)>& progress,
                                 const std::atomic<bool>& cancel) {
    Impl& m = *impl_;
    const auto t0 = Clock::now();
    GenerationResult result;
    result.job_id = request.job_id ? request.job_id : m.next_job;
    m.next_job = result.job_id + 1;
    if (!m.engine) {
        result.message = "the engine is not running";
        return result;
    }
    c10::InferenceMode guard;
    c10::DeviceGuard dg(m.engine->device);
    GenerationRequest req = request;
    req.job_id = result.job_id;
    std::vector<std::string> notes;
    try {
        const GenerationRequest resolved = m.prepare(*this, req, notes, cancel);
        if (m.world_size > 1) send(protocol::Tag::Generate, result.job_id, resolved.to_json());
        pipeline::PipelineOutput out = m.engine->pipe->generate(resolved, progress, &cancel);
        result.seed_used = out.seed_used;
        result.prompt_used = resolved.prompt;
        result.status = JobStatus::Ok;
        if (m.engine->pipe->info().demo_checkpoint)
            notes.push_back("demo checkpoint (tiny, random weights): the video is noise-like by design");
        if (!resolved.output_dir.empty()) {
            if (progress) progress(ProgressInfo{Stage::Encode, 0, 1, seconds_since(t0), -1});
            m.save(resolved, out, result, t0, notes);
        }
    } catch (const Cancelled&) {
        result.status = JobStatus::Cancelled;
        result.message = "cancelled";
    } catch (const std::exception& e) {
        result.status = JobStatus::Failed;
        result.message = e.what();
    }
    result.seconds = seconds_since(t0);
    if (result.status == JobStatus::Ok) {
        for (const auto& n : notes) result.message += (result.message.empty() ? "" : "; ") + n;
        if (progress) progress(ProgressInfo{Stage::Done, 1, 1, result.seconds, result.seconds});
    }
    return result;
}

std::string EngineHead::extend_prompt(const std::string& prompt, const std::string& target_lang, int64_t seed) {
    Impl& m = *impl_;
    WAN_CHECK(!m.config.prompt_extend_method.empty(),
              "prompt extension is not configured: start with --prompt-extend-method dashscope|local_qwen");
#if WAN_HAVE_EXTEND
    if (!m.extender) {
        extend::ExtendOptions opt;
        if (m.engine && m.engine->device.is_cuda()) opt.device = m.engine->device.str();
        m.extender = extend::make_prompt_extender(m.config.prompt_extend_method, m.config.prompt_extend_model, opt);
    }
    m.extender->set_cancel_flag(m.extend_cancel);  // a job's flag, or none (an extension on its own)
    extend::ExtendResult r = m.extender->extend(prompt, target_lang.empty() ? "zh" : target_lang, seed);
    m.extender->set_cancel_flag(nullptr);  // extend() never throws: the job's flag is not kept past the call
    WAN_CHECK(r.ok, "prompt extension failed: %s", r.message.c_str());
    std::string text = extend::clean_model_text(r.prompt);
    WAN_CHECK(!text.empty(), "prompt extension failed: the model returned no text");
    return text;
#else
    (void)prompt, (void)target_lang, (void)seed;
    WAN_THROW("prompt extension is not available in this build (libcurl/PCRE2 were missing at build time)");
#endif
}

EngineInfo EngineHead::info() {
    Impl& m = *impl_;
    WAN_CHECK(m.engine != nullptr, "the engine is not running");
    if (m.world_size > 1 && !m.shut_down) send(protocol::Tag::Info);
    return m.engine->info_with_memory();
}

void EngineHead::shutdown() {
    Impl& m = *impl_;
    if (m.shut_down) return;
    m.shut_down = true;
    m.announced = true;
    if (m.world_size > 1) send(protocol::Tag::Shutdown);  // before start(): the workers build nothing
}

// ---- EngineWorker ----------------------------------------------------------------------------------------

EngineWorker::EngineWorker(const EngineConfig& config) : config_(config) {}
EngineWorker::~EngineWorker() = default;

void EngineWorker::run() {
    protocol::Message first;
    protocol::broadcast(MPI_COMM_WORLD, 0, first);
    if (first.tag != protocol::Tag::Start) return;  // Shutdown: the head stopped before starting the engine
    // Installed before loading: a Ctrl+C (the terminal signals every rank) cancels the load on every rank
    // instead of killing this one mid-read.
    std::signal(SIGINT, on_worker_interrupt);
    try {
        LoadControl load;
        load.cancel = &g_worker_interrupted;
        engine_ = std::make_unique<Engine>(config_, load);
    } catch (const Cancelled&) {
        WAN_LOG_WARN("loading cancelled; this rank leaves");  // agreed with every rank: the head leaves too
        return;
    }
    Engine& e = *engine_;
    c10::InferenceMode guard;
    c10::DeviceGuard dg(e.device);
    while (true) {
        protocol::Message msg;
        protocol::broadcast(e.world, 0, msg);
        switch (msg.tag) {
            case protocol::Tag::Generate:
                try {
                    e.pipe->generate(GenerationRequest::from_json(msg.payload), {}, &g_worker_interrupted);
                } catch (const Cancelled&) {
                    // agreed with every rank at a step boundary; nothing to report here
                } catch (const std::exception& ex) {
                    WAN_LOG_ERROR("job %lld failed: %s", static_cast<long long>(msg.job_id), ex.what());
                }
                break;
            case protocol::Tag::Info: (void)e.info_with_memory(); break;
            case protocol::Tag::Start: WAN_LOG_WARN("engine start received twice; ignored"); break;
            case protocol::Tag::Shutdown: return;
        }
    }
}

}  // namespace wan::server
