// WanStudio engine core: errors, checks, logging and version. No LibTorch, no Qt: the GUI links this too.
#pragma once

#include "core/preview_frames.h"

#include <cstdarg>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace wan {

/// Every engine error. The message is complete and meant for a person: it names the file, option or
/// tensor involved and what was expected. `where()` is "file:line" of the throw site, kept apart so that
/// user-facing text stays clean.
class Error : public std::runtime_error {
public:
    Error(std::string message, std::string where = {})
        : std::runtime_error(std::move(message)), where_(std::move(where)) {}
    const std::string& where() const noexcept { return where_; }

private:
    std::string where_;
};

/// printf-style formatting into a std::string.
std::string strfmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string vstrfmt(const char* fmt, va_list args);

[[noreturn]] void throw_error(const char* file, int line, const std::string& message);

/// Log levels. Info comes from engine rank 0 only; warnings and errors from every rank, prefixed with
/// the rank. Debug is for per-step chatter (the denoising loop) and is off unless WAN_LOG=debug.
enum class LogLevel { Debug = 1, Info = 2, Warn = 3, Error = 4 };

/// One sink for all engine logging (llama_log_set style). The default writes "[r<rank>] W message" to
/// stderr. The app installs a sink that forwards to its log view. Thread-safe.
using LogSink = std::function<void(LogLevel, const std::string&)>;
void set_log_sink(LogSink sink);
void set_log_level(LogLevel min_level);
void set_log_rank(int rank);  ///< rank shown in the default sink's prefix; info is dropped on rank > 0
int log_rank();
void log_message(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

/// Program version ("0.1.0").
const char* version_string();

/// Appends the UTF-8 encoding of code point `cp` (callers pass valid scalar values).
void append_utf8(std::string& out, char32_t cp);
/// UTF-32 → UTF-8.
std::string utf8_from_u32(const std::u32string& s);

// ---- requests, progress, results: shared by the engine, the protocol and the app ------------------------

/// Stages of one generation, in order. Zero is never a valid value.
enum class Stage { Queued = 1, Text = 2, Denoise = 3, Decode = 4, Encode = 5, Done = 6 };
const char* stage_name(Stage stage);

/// Per-job settings (load-time settings live in the engine's config). Defaults are upstream generate.py's
/// for T2V; a width/height of 0 means "the loaded model's default size".
/// One LoRA a job asks for: file and strength (parsing and formatting: core/lora_spec.h; merging: engine/lora).
struct LoraSpec {
    std::string path;       ///< a safetensors file (any of the key styles engine/lora recognises)
    double strength = 1.0;  ///< multiplies the file's delta; negative allowed, 0 = no effect

    bool operator==(const LoraSpec& o) const { return path == o.path && strength == o.strength; }
    bool operator!=(const LoraSpec& o) const { return !(*this == o); }
};

struct GenerationRequest {
    std::string prompt;
    std::string negative_prompt;   ///< empty → upstream's default (Chinese) negative prompt
    int width = 0;                 ///< multiple of 16; 0 → model default (1.3B: 832, 14B: 1280, demo: 64)
    int height = 0;                ///< multiple of 16; 0 → model default (1.3B: 480, 14B: 720, demo: 64)
    int frame_num = 0;             ///< 4n+1; 0 → model default (81; demo: 9)
    int sample_steps = 0;          ///< ≥ 1; 0 → model default (50; demo: 4)
    double sample_shift = -1;      ///< > 0; < 0 → model default (5.0)
    double guide_scale = -1;       ///< ≥ 0; < 0 → model default (5.0). Two-expert models: the low-noise guide
    /// Two-expert models (Wan2.2 A14B): the high-noise expert's guide; < 0 → guide_scale when that was given,
    /// else the model default (4.0). Ignored by one-expert models.
    double guide_scale_high = -1;
    /// Two-expert models: the high-noise expert runs while t ≥ boundary·1000; < 0 → model default (0.875).
    double boundary = -1;
    std::string solver = "unipc";  ///< "unipc" | "dpm++" | "euler"
    std::vector<int> denoising_steps;  ///< euler only: explicit step list (1000,750,500,250); empty → sample_steps
    std::vector<LoraSpec> loras;   ///< merged into the DiT for this job, in order; empty → base weights
    /// Two-expert models (Wan2.2 A14B): LoRAs for one expert only, merged after `loras` (which go into both);
    /// Wan2.2's accelerator LoRAs come as such a high-noise / low-noise pair. A one-expert model refuses them.
    std::vector<LoraSpec> loras_high;
    std::vector<LoraSpec> loras_low;
    std::string preset;            ///< the sampling preset the fields came from ("" = none), for the metadata
    int64_t seed = -1;             ///< -1 → random; the seed used is reported in the result
    std::string output_dir;        ///< where the MP4, PNG poster and JSON go (empty → no files, tensors only)
    std::string init_noise;        ///< optional safetensors file with tensor "noise" [16,T,h,w]
    std::string save_latents;      ///< optional safetensors file for "latent" and "video" (float32)
    bool use_prompt_extend = false;
    std::string extend_target_lang = "zh";
    std::string original_prompt;   ///< set when the prompt was extended: the user's text, for the metadata
    int64_t job_id = 0;            ///< assigned by the head

    /// Problems with the request as given (empty when fine); defaults (0 / negative) are not errors.
    std::vector<std::string> validate() const;
    std::string to_json() const;
    /// Throws wan::Error naming the field when the JSON is malformed.
    static GenerationRequest from_json(const std::string& json);
};

/// What the progress callback receives.
struct ProgressInfo {
    Stage stage = Stage::Queued;
    int step = 0;
    int total = 0;
    double elapsed_s = 0;  ///< since the job started
    double eta_s = -1;     ///< estimate for the whole job; < 0 when unknown
    /// Denoising steps only (when the engine's live preview is on): the clean-video estimate after this step
    /// as small RGB frames (engine/preview). Shared, so copies of the progress are cheap.
    std::shared_ptr<const PreviewFrames> preview;
};

enum class JobStatus { Ok = 1, Cancelled = 2, Failed = 3 };
const char* job_status_name(JobStatus status);

struct GenerationResult {
    JobStatus status = JobStatus::Failed;
    std::string message;      ///< error text for Failed; notes (e.g. codec fallback) for Ok
    int64_t seed_used = -1;
    std::string prompt_used;  ///< the prompt actually generated (extended or not)
    std::string video_path;   ///< MP4 (empty when no output_dir)
    std::string poster_path;  ///< PNG poster frame
    std::string json_path;    ///< parameters beside the video
    double seconds = 0;
    int64_t job_id = 0;
    std::string to_json() const;
    static GenerationResult from_json(const std::string& json);
};

/// What the status bar shows: the engine's world and model.
struct EngineInfo {
    int world_size = 1;
    int ulysses_size = 1;
    int ring_size = 1;
    bool dit_fsdp = false;
    bool t5_fsdp = false;
    bool cfg_parallel = false;
    std::string model_variant;  ///< "1.3B", "14B", "demo (tiny)"
    std::string device;         ///< "cuda (NVIDIA H100 80GB HBM3)" or "cpu"
    bool demo_checkpoint = false;
    std::vector<double> gpu_memory_used_gb;   ///< per rank, empty on CPU
    std::vector<double> gpu_memory_total_gb;  ///< per rank
    int default_width = 832, default_height = 480, default_frames = 81, default_steps = 50;
    double default_shift = 5.0, default_guide_scale = 5.0;
    bool two_experts = false;             ///< Wan2.2 A14B: high- and low-noise experts
    double default_guide_scale_high = 5.0;  ///< two experts: the high-noise guide (default_guide_scale is the low one)
    double default_boundary = 0;          ///< two experts: the switch, as a fraction of 1000 timesteps
    std::vector<std::string> sizes;  ///< "W*H" strings the model was trained for
    std::string to_json() const;
    static EngineInfo from_json(const std::string& json);
};

}  // namespace wan

/// Throws wan::Error with the formatted message when `cond` is false.
#define WAN_CHECK(cond, ...)                                                   \
    do {                                                                       \
        if (!(cond)) ::wan::throw_error(__FILE__, __LINE__, ::wan::strfmt(__VA_ARGS__)); \
    } while (0)

#define WAN_THROW(...) ::wan::throw_error(__FILE__, __LINE__, ::wan::strfmt(__VA_ARGS__))

#define WAN_LOG_DEBUG(...) ::wan::log_message(::wan::LogLevel::Debug, __VA_ARGS__)
#define WAN_LOG_INFO(...) ::wan::log_message(::wan::LogLevel::Info, __VA_ARGS__)
#define WAN_LOG_WARN(...) ::wan::log_message(::wan::LogLevel::Warn, __VA_ARGS__)
#define WAN_LOG_ERROR(...) ::wan::log_message(::wan::LogLevel::Error, __VA_ARGS__)
