#include "core/model_defaults.h"

namespace wan {

const std::vector<ModelDefaults>& model_defaults_table() {
    static const std::vector<ModelDefaults> table = {
        {"1.3B", 832, 480, 81, 50, 5.0, 5.0, {"832*480", "480*832"}},
        {"14B", 1280, 720, 81, 50, 5.0, 5.0, {"1280*720", "720*1280", "832*480", "480*832"}},
        // Wan2.2 T2V-A14B: guide 3.0 on the low-noise expert, 4.0 on the high-noise one, switch at t = 875.
        {"A14B", 1280, 720, 81, 40, 12.0, 3.0, {"1280*720", "720*1280", "832*480", "480*832"}, 4.0, 0.875},
        {"demo", 128, 128, 17, 8, 5.0, 5.0, {"128*128", "192*128", "128*192", "256*256"}},
    };
    return table;
}

const ModelDefaults& model_defaults(const std::string& variant) {
    const auto& table = model_defaults_table();
    for (const ModelDefaults& row : table)
        if (row.variant == variant) return row;
    return table.back();
}

void apply_model_defaults(const ModelDefaults& defaults, EngineInfo& info) {
    info.default_width = defaults.width;
    info.default_height = defaults.height;
    info.default_frames = defaults.frames;
    info.default_steps = defaults.steps;
    info.default_shift = defaults.shift;
    info.default_guide_scale = defaults.guide_scale;
    info.default_guide_scale_high = defaults.guide_scale_high > 0 ? defaults.guide_scale_high : defaults.guide_scale;
    info.two_experts = defaults.boundary > 0;
    info.default_boundary = defaults.boundary;
    info.sizes = defaults.sizes;
}

}  // namespace wan
