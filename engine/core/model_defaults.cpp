#include "core/model_defaults.h"

namespace wan {

const std::vector<ModelDefaults>& model_defaults_table() {
    static const std::vector<ModelDefaults> table = {
        {"1.3B", 832, 480, 81, 50, 5.0, 5.0, {"832*480", "480*832"}},
        {"14B", 1280, 720, 81, 50, 5.0, 5.0, {"1280*720", "720*1280", "832*480", "480*832"}},
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
    info.sizes = defaults.sizes;
}

}  // namespace wan
