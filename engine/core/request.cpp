// GenerationRequest / GenerationResult / EngineInfo: validation and JSON (the wire format between ranks and
// the file written beside each video).
#include "core/core.h"

#include "core/json_fields.h"

#include <cmath>

namespace wan {

const char* stage_name(Stage stage) {
    switch (stage) {
        case Stage::Queued: return "queued";
        case Stage::Text: return "text";
        case Stage::Denoise: return "denoise";
        case Stage::Decode: return "decode";
        case Stage::Encode: return "encode";
        case Stage::Done: return "done";
    }
    return "?";
}

const char* job_status_name(JobStatus status) {
    switch (status) {
        case JobStatus::Ok: return "ok";
        case JobStatus::Cancelled: return "cancelled";
        case JobStatus::Failed: return "failed";
    }
    return "?";
}

namespace {
// Size limits, checked here so that a request fails before any model work instead of deep inside a step.
// A pixel is one of 8×8 per VAE latent cell (stride 4×8×8, wan21-reference.md §5) and a latent cell one of 2×2 per
// DiT token (patch 1×2×2): a side of W pixels is W / 16 token positions, and F frames are (F - 1) / 4 + 1.
// The DiT's rotary tables hold 1024 positions per axis (engine/dit/layers.cpp rope_tables, as upstream's
// rope_params(1024, …)), so a side is at most 1024 × 16 = 16384 pixels (also the largest frame the video
// writer takes, engine/video/writer.cpp check_frames) and a video at most 4 × 1023 + 1 = 4093 frames.
constexpr int kRopePositions = 1024;
constexpr int kPixelsPerToken = 16;
constexpr int kMaxSide = kRopePositions * kPixelsPerToken;
constexpr int kMaxFrames = 4 * (kRopePositions - 1) + 1;
static_assert(kMaxSide == 16384 && kMaxFrames == 4093, "limits of the rotary tables");

/// denoising_steps (euler only, each in 1..1000, strictly decreasing) and the LoRA list (paths non-empty,
/// strengths finite). The files themselves are checked where they are read (engine/lora).
void validate_steps_and_loras(const GenerationRequest& r, std::vector<std::string>& errors) {
    if (!r.denoising_steps.empty() && r.solver != "euler")
        errors.push_back("denoising_steps: only with sample_solver 'euler' (got '" + r.solver + "')");
    for (size_t i = 0; i < r.denoising_steps.size(); ++i) {
        const int k = r.denoising_steps[i];
        if (k < 1 || k > 1000) {
            errors.push_back(strfmt("denoising_steps: step %d is outside 1..1000", k));
            break;
        }
        if (i > 0 && k >= r.denoising_steps[i - 1]) {
            errors.push_back(strfmt("denoising_steps: must be strictly decreasing (%d follows %d)", k,
                                    r.denoising_steps[i - 1]));
            break;
        }
    }
    auto check_loras = [&](const std::vector<LoraSpec>& loras, const char* key) {
        for (const LoraSpec& l : loras) {
            if (l.path.empty()) errors.push_back(strfmt("%s: an entry has an empty path", key));
            if (!std::isfinite(l.strength))
                errors.push_back(strfmt("%s: '%s' has a strength that is not a finite number", key, l.path.c_str()));
        }
    };
    check_loras(r.loras, "loras");
    check_loras(r.loras_high, "loras_high");
    check_loras(r.loras_low, "loras_low");
}

nlohmann::json loras_to_json(const std::vector<LoraSpec>& loras) {
    nlohmann::json a = nlohmann::json::array();
    for (const LoraSpec& l : loras) a.push_back({{"path", l.path}, {"strength", l.strength}});
    return a;
}

/// `key` ("loras", "loras_high", "loras_low"): [{"path": "...", "strength": 0.8}, ...]; strength optional (1).
std::vector<LoraSpec> loras_from_json(const nlohmann::json& j, const char* what, const char* key = "loras") {
    std::vector<LoraSpec> out;
    if (!j.contains(key)) return out;
    const nlohmann::json& a = j.at(key);
    WAN_CHECK(a.is_array(), "%s: field \"%s\" must be a list of {\"path\": ..., \"strength\": ...} objects",
              what, key);
    for (const nlohmann::json& e : a) {
        WAN_CHECK(e.is_object() && e.contains("path") && e.at("path").is_string(),
                  "%s: each entry of \"%s\" must be an object with a string \"path\" (got %s)", what, key,
                  json_excerpt(e).c_str());
        LoraSpec l;
        l.path = e.at("path").get<std::string>();
        if (e.contains("strength")) {
            WAN_CHECK(e.at("strength").is_number(), "%s: LoRA '%s': \"strength\" must be a number (got %s)", what,
                      l.path.c_str(), json_excerpt(e.at("strength")).c_str());
            l.strength = e.at("strength").get<double>();
        }
        for (auto it = e.begin(); it != e.end(); ++it)
            WAN_CHECK(it.key() == "path" || it.key() == "strength",
                      "%s: LoRA '%s': unknown key \"%s\" (expected path, strength)", what, l.path.c_str(),
                      it.key().c_str());
        out.push_back(std::move(l));
    }
    return out;
}

}  // namespace

std::vector<std::string> GenerationRequest::validate() const {
    std::vector<std::string> errors;
    if (width != 0 && (width < 16 || width % 16 != 0))
        errors.push_back(strfmt("width %d: must be a positive multiple of 16 (VAE stride 8 × patch 2)", width));
    else if (width > kMaxSide)
        errors.push_back(strfmt("width %d: at most %d (the DiT's rotary tables hold %d positions of 16 pixels)", width,
                                kMaxSide, kRopePositions));
    if (height != 0 && (height < 16 || height % 16 != 0))
        errors.push_back(strfmt("height %d: must be a positive multiple of 16 (VAE stride 8 × patch 2)", height));
    else if (height > kMaxSide)
        errors.push_back(strfmt("height %d: at most %d (the DiT's rotary tables hold %d positions of 16 pixels)",
                                height, kMaxSide, kRopePositions));
    if (frame_num != 0 && (frame_num < 1 || (frame_num - 1) % 4 != 0))
        errors.push_back(strfmt("frame_num %d: must be 4n+1 (1, 5, 9, …, 81)", frame_num));
    else if (frame_num > kMaxFrames)
        errors.push_back(strfmt("frame_num %d: at most %d (the DiT's rotary tables hold %d latent frames of 4)",
                                frame_num, kMaxFrames, kRopePositions));
    if (sample_steps < 0)
        errors.push_back(strfmt("sample_steps %d: must be at least 1", sample_steps));
    if (sample_steps > 1000) errors.push_back(strfmt("sample_steps %d: at most 1000", sample_steps));
    if (sample_shift != -1 && !(sample_shift > 0))
        errors.push_back(strfmt("sample_shift %g: must be > 0", sample_shift));
    if (guide_scale != -1 && !(guide_scale >= 0))
        errors.push_back(strfmt("sample_guide_scale %g: must be ≥ 0", guide_scale));
    if (guide_scale_high != -1 && !(guide_scale_high >= 0))
        errors.push_back(strfmt("sample_guide_scale_high %g: must be ≥ 0", guide_scale_high));
    if (boundary != -1 && !(boundary >= 0 && boundary <= 1))
        errors.push_back(strfmt("boundary %g: must be in [0, 1] (a fraction of the 1000 timesteps)", boundary));
    if (solver != "unipc" && solver != "dpm++" && solver != "euler")
        errors.push_back("sample_solver '" + solver + "': expected 'unipc', 'dpm++' or 'euler'");
    validate_steps_and_loras(*this, errors);
    if (seed < -1) errors.push_back(strfmt("base_seed %lld: must be ≥ 0, or -1 for random", static_cast<long long>(seed)));
    if (extend_target_lang != "zh" && extend_target_lang != "en")
        errors.push_back("prompt_extend_target_lang '" + extend_target_lang + "': expected 'zh' or 'en'");
    return errors;
}

using json_fields::get_field;
using json_fields::get_fields;
using json_fields::parse_object;

std::string GenerationRequest::to_json() const {
    nlohmann::json j = {{"prompt", prompt}, {"negative_prompt", negative_prompt}, {"width", width},
                        {"height", height}, {"frame_num", frame_num}, {"sample_steps", sample_steps},
                        {"sample_shift", sample_shift}, {"sample_guide_scale", guide_scale},
                        {"sample_solver", solver}, {"base_seed", seed}, {"output_dir", output_dir},
                        {"init_noise", init_noise}, {"save_latents", save_latents},
                        {"use_prompt_extend", use_prompt_extend}, {"prompt_extend_target_lang", extend_target_lang},
                        {"original_prompt", original_prompt}, {"job_id", job_id},
                        {"denoising_steps", denoising_steps}, {"loras", loras_to_json(loras)}, {"preset", preset}};
    // Two-expert fields only where they say something (a Wan2.1 request's JSON keeps its keys).
    if (boundary >= 0 || (guide_scale_high >= 0 && guide_scale_high != guide_scale)) {
        j["sample_guide_scale_high"] = guide_scale_high;
        j["boundary"] = boundary;
    }
    // Per-expert LoRAs likewise only when there are any.
    if (!loras_high.empty()) j["loras_high"] = loras_to_json(loras_high);
    if (!loras_low.empty()) j["loras_low"] = loras_to_json(loras_low);
    return j.dump();
}

GenerationRequest GenerationRequest::from_json(const std::string& json) {
    const char* what = "generation request";
    nlohmann::json j = parse_object(json, what);
    GenerationRequest r;
    get_fields(j, what, "prompt", r.prompt, "negative_prompt", r.negative_prompt,  //
               "width", r.width, "height", r.height);
    if (j.contains("size")) {
        std::string size;
        get_field(j, "size", size, what);
        auto star = size.find_first_of("*x");
        WAN_CHECK(star != std::string::npos, "%s: size '%s' must look like W*H", what, size.c_str());
        try {
            r.width = std::stoi(size.substr(0, star));
            r.height = std::stoi(size.substr(star + 1));
        } catch (const std::exception&) {
            WAN_THROW("%s: size '%s' must look like W*H", what, size.c_str());
        }
    }
    if (j.contains("sample_guide_scale") && j["sample_guide_scale"].is_array()) {
        // Wan2.2's pair [low, high], as upstream's guide_scale tuple.
        const nlohmann::json pair = j["sample_guide_scale"];
        WAN_CHECK(pair.size() == 2 && pair[0].is_number() && pair[1].is_number(),
                  "%s: sample_guide_scale must be a number or a pair [low, high] of numbers", what);
        r.guide_scale_high = pair[1].get<double>();
        j["sample_guide_scale"] = pair[0];
    }
    get_fields(j, what, "frame_num", r.frame_num, "sample_steps", r.sample_steps,             //
               "sample_shift", r.sample_shift, "sample_guide_scale", r.guide_scale,               //
               "sample_guide_scale_high", r.guide_scale_high, "boundary", r.boundary,             //
               "sample_solver", r.solver, "base_seed", r.seed, "output_dir", r.output_dir,        //
               "init_noise", r.init_noise, "save_latents", r.save_latents,                        //
               "use_prompt_extend", r.use_prompt_extend, "prompt_extend_target_lang", r.extend_target_lang,
               "original_prompt", r.original_prompt, "job_id", r.job_id,                          //
               "denoising_steps", r.denoising_steps, "preset", r.preset);
    r.loras = loras_from_json(j, what);
    r.loras_high = loras_from_json(j, what, "loras_high");
    r.loras_low = loras_from_json(j, what, "loras_low");
    return r;
}

std::string GenerationResult::to_json() const {
    nlohmann::json j = {{"status", job_status_name(status)}, {"message", message}, {"seed_used", seed_used},
                        {"prompt_used", prompt_used}, {"video_path", video_path}, {"poster_path", poster_path},
                        {"json_path", json_path}, {"seconds", seconds}, {"job_id", job_id}};
    return j.dump();
}

GenerationResult GenerationResult::from_json(const std::string& json) {
    const char* what = "generation result";
    nlohmann::json j = parse_object(json, what);
    GenerationResult r;
    std::string status;
    get_field(j, "status", status, what);
    r.status = status == "ok" ? JobStatus::Ok : status == "cancelled" ? JobStatus::Cancelled : JobStatus::Failed;
    get_fields(j, what, "message", r.message, "seed_used", r.seed_used, "prompt_used", r.prompt_used,  //
               "video_path", r.video_path, "poster_path", r.poster_path, "json_path", r.json_path,    //
               "seconds", r.seconds, "job_id", r.job_id);
    return r;
}

std::string EngineInfo::to_json() const {
    nlohmann::json j = {{"world_size", world_size}, {"ulysses_size", ulysses_size}, {"ring_size", ring_size},
                        {"dit_fsdp", dit_fsdp}, {"t5_fsdp", t5_fsdp}, {"cfg_parallel", cfg_parallel},
                        {"model_variant", model_variant}, {"device", device}, {"demo_checkpoint", demo_checkpoint},
                        {"gpu_memory_used_gb", gpu_memory_used_gb}, {"gpu_memory_total_gb", gpu_memory_total_gb},
                        {"default_width", default_width}, {"default_height", default_height},
                        {"default_frames", default_frames}, {"default_steps", default_steps},
                        {"default_shift", default_shift}, {"default_guide_scale", default_guide_scale},
                        {"two_experts", two_experts}, {"default_guide_scale_high", default_guide_scale_high},
                        {"default_boundary", default_boundary}, {"sizes", sizes}};
    return j.dump();
}

EngineInfo EngineInfo::from_json(const std::string& json) {
    const char* what = "engine info";
    nlohmann::json j = parse_object(json, what);
    EngineInfo e;
    get_fields(j, what, "world_size", e.world_size, "ulysses_size", e.ulysses_size, "ring_size", e.ring_size,  //
               "dit_fsdp", e.dit_fsdp, "t5_fsdp", e.t5_fsdp, "cfg_parallel", e.cfg_parallel,              //
               "model_variant", e.model_variant, "device", e.device, "demo_checkpoint", e.demo_checkpoint,  //
               "gpu_memory_used_gb", e.gpu_memory_used_gb, "gpu_memory_total_gb", e.gpu_memory_total_gb,  //
               "default_width", e.default_width, "default_height", e.default_height,                    //
               "default_frames", e.default_frames, "default_steps", e.default_steps,                    //
               "default_shift", e.default_shift, "default_guide_scale", e.default_guide_scale, "sizes", e.sizes,  //
               "two_experts", e.two_experts, "default_guide_scale_high", e.default_guide_scale_high,  //
               "default_boundary", e.default_boundary);
    return e;
}

}  // namespace wan
