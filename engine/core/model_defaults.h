// Per-model generation defaults and upstream's default negative prompt: data, written once, read by the
// engine (request resolution, EngineInfo), the GUI and the fakes. Torch-free.
#pragma once

#include "core/core.h"

#include <string>
#include <vector>

namespace wan {

/// `sample_neg_prompt` of upstream wan/configs/shared_config.py, exact UTF-8: 137 characters, the commas are
/// U+FF0C. Used when a request leaves its negative prompt empty. Ref: wan21-reference.md Appendix B.1.
inline constexpr const char* kDefaultNegativePrompt =
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，"
    "形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走";

/// What a request's 0 / negative fields become for one model variant.
struct ModelDefaults {
    std::string variant;  ///< "1.3B", "14B", "demo"
    int width = 0, height = 0;  ///< the default size; a multiple of 16
    int frames = 0;             ///< 4n+1
    int steps = 0;              ///< sampling steps
    double shift = 0, guide_scale = 0;
    std::vector<std::string> sizes;  ///< "W*H" sizes the model was trained for; the default size first
    /// Two-expert models (Wan2.2 A14B) only: guide_scale is then the low-noise guide, this the high-noise one
    /// (0 → guide_scale), and the switch (0 = one expert).
    double guide_scale_high = 0;
    double boundary = 0;
};

/// The 1.3B and 14B rows are upstream generate.py's T2V defaults, "A14B" Wan2.2's t2v_A14B config; "demo" is the
/// tiny random-weight checkpoint, small and few-step so that a laptop CPU finishes in seconds.
const std::vector<ModelDefaults>& model_defaults_table();

/// The row for `variant` ("1.3B", "14B", "A14B"); any other name (the demo checkpoint, an unknown variant) gets the
/// "demo" row, as the engine always did.
const ModelDefaults& model_defaults(const std::string& variant);

/// Writes a row into the default_* fields and sizes of `info`.
void apply_model_defaults(const ModelDefaults& defaults, EngineInfo& info);

}  // namespace wan
