// Sampling presets (`--preset NAME`, the window's preset box): a preset fills the solver, steps, shift and
// guide fields, which the user may still edit afterwards. Data, not code: add a row to sampling_presets()
// for a new accelerator. Torch-free.
#pragma once

#include "core/core.h"

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

namespace wan {

/// One preset. A field at its "model default" value (0 steps, negative shift or guide: the same sentinels
/// GenerationRequest uses) leaves that field to the loaded model's own settings.
struct SamplingPreset {
    std::string name;                  ///< what --preset takes
    std::string description;           ///< one line for --help and the window's tooltip
    std::string solver;                ///< "unipc" | "dpm++" | "euler"
    std::vector<int> denoising_steps;  ///< euler's explicit step list (--denoising-steps); empty: use sample_steps
    int sample_steps = 0;              ///< 0 = model default; ignored when denoising_steps is set
    double sample_shift = -1;          ///< < 0 = model default
    double guide_scale = -1;           ///< < 0 = model default; 1 = no unconditional pass
};

/// Every preset, "default" first.
inline const std::vector<SamplingPreset>& sampling_presets() {
    static const std::vector<SamplingPreset> presets = {
        {"default", "the model's own settings (UniPC, 50 steps, shift and guide of the model)", "unipc", {}, 0, -1, -1},
        {"lightx2v-4step",
         "step-distilled accelerator LoRAs (lightx2v 4-step and alike): Euler at steps 1000,750,500,250, shift 5, "
         "no classifier-free guidance",
         "euler", {1000, 750, 500, 250}, 4, 5.0, 1.0},
    };
    return presets;
}

/// The preset called `name`; throws wan::Error naming `what` and the known names otherwise.
inline const SamplingPreset& find_sampling_preset(const std::string& name, const char* what = "--preset") {
    std::string known;
    for (const auto& p : sampling_presets()) {
        if (p.name == name) return p;
        known += (known.empty() ? "'" : ", '") + p.name + "'";
    }
    throw Error(strfmt("%s '%s': unknown preset (known: %s)", what, name.c_str(), known.c_str()));
}

/// Fills `r`'s solver, step list, steps, shift and guide from `p` and records its name; fields the preset
/// leaves to the model (0 / negative) are reset to the model default so that an earlier preset does not linger.
inline void apply_sampling_preset(const SamplingPreset& p, GenerationRequest& r) {
    r.solver = p.solver;
    r.denoising_steps = p.denoising_steps;
    r.sample_steps = p.sample_steps;
    r.sample_shift = p.sample_shift;
    r.guide_scale = p.guide_scale;
    r.preset = p.name;
}

/// "1000,750,500,250" -> {1000, 750, 500, 250} (spaces around the commas allowed), for `--denoising-steps`
/// and the batch/settings fields. Throws wan::Error naming `what` and the bad element; the range and order
/// checks are the scheduler's (sched::euler_schedule), which names `--denoising-steps` too.
inline std::vector<int> parse_step_list(const std::string& text, const char* what = "--denoising-steps") {
    std::vector<int> out;
    size_t pos = 0;
    while (true) {
        const size_t comma = text.find(',', pos);
        std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.erase(item.begin());
        while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
        char* end = nullptr;
        errno = 0;
        const long v = item.empty() ? 0 : std::strtol(item.c_str(), &end, 10);
        if (item.empty() || !end || *end != '\0' || errno != 0 || v < INT_MIN || v > INT_MAX)
            throw Error(strfmt("%s: '%s' is not a comma-separated list of integers (bad element '%s')", what,
                               text.c_str(), item.c_str()));
        out.push_back(static_cast<int>(v));
        if (comma == std::string::npos) break;
        pos = comma + 1;
    }
    return out;
}

}  // namespace wan
