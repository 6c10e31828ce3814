// save_generation: the MP4 (with the request as tags), its poster and the sidecar of one generation.
#include "video/video.h"

#include <ctime>

namespace wan::video {

SavedOutputs save_generation(const GenerationRequest& resolved, int64_t seed_used, const std::string& model_variant,
                             const RgbFrames& frames, const std::string& sidecar_json_text,
                             const std::map<std::string, std::string>& extra_tags) {
    SaveOptions so;
    so.dir = resolved.output_dir;
    so.prompt = resolved.original_prompt.empty() ? resolved.prompt : resolved.original_prompt;
    so.when = std::time(nullptr);
    so.video.fps = 16;  // upstream sample_fps
    auto& md = so.video.metadata;
    md["title"] = resolved.prompt;
    md["prompt"] = resolved.prompt;
    if (!resolved.original_prompt.empty()) md["original_prompt"] = resolved.original_prompt;
    md["negative_prompt"] = resolved.negative_prompt;
    md["seed"] = std::to_string(seed_used);
    md["size"] = strfmt("%d*%d", resolved.width, resolved.height);
    md["frame_num"] = std::to_string(resolved.frame_num);
    md["sample_steps"] = std::to_string(resolved.sample_steps);
    md["sample_shift"] = strfmt("%g", resolved.sample_shift);
    md["sample_guide_scale"] = strfmt("%g", resolved.guide_scale);
    if (resolved.boundary >= 0) {
        // A two-expert model (Wan2.2 A14B): sample_guide_scale is the low-noise expert's guide.
        md["sample_guide_scale_high"] = strfmt("%g", resolved.guide_scale_high);
        md["boundary"] = strfmt("%g", resolved.boundary);
    }
    md["sample_solver"] = resolved.solver;
    md["model"] = model_variant;
    md["encoder"] = std::string("WanStudio ") + version_string();
    if (!resolved.denoising_steps.empty()) {
        std::string steps;
        for (int k : resolved.denoising_steps) steps += (steps.empty() ? "" : ",") + std::to_string(k);
        md["denoising_steps"] = steps;
    }
    if (!resolved.preset.empty()) md["preset"] = resolved.preset;
    for (const auto& kv : extra_tags) md[kv.first] = kv.second;
    so.json_text = sidecar_json_text;
    return save_outputs(so, frames);
}

}  // namespace wan::video
