// The JSON record written beside each video (and read back by the GUI's history): one flat object holding
// the resolved request's keys (GenerationRequest::to_json), the result's keys (GenerationResult::to_json;
// empty strings left out) and the engine facts below. The keys are a file format: history folders written
// by earlier versions must stay readable. Torch-free.
#pragma once

#include "core/core.h"

#include <string>
#include <vector>

namespace wan {

/// One LoRA as merged for a generation: enough to find the exact file again.
struct SidecarLora {
    std::string file_name;  ///< the path's last component
    std::string sha256;     ///< of the whole file, lower-case hex
    double strength = 1.0;
    /// Two-expert models: "high" or "low" for a LoRA merged into that expert only (the request's loras_high /
    /// loras_low); "" for one merged into the whole model ("expert" is then left out of the JSON).
    std::string expert;
    bool operator==(const SidecarLora& o) const {
        return file_name == o.file_name && sha256 == o.sha256 && strength == o.strength && expert == o.expert;
    }
};

struct GenerationSidecar {
    GenerationRequest request;  ///< as generated: defaults resolved
    GenerationResult result;
    bool has_result = false;  ///< when read: the JSON carried "status" (a record without one is a finished video)

    // Engine facts ("model", "device", ...); empty when a record read back did not carry them.
    std::string model;    ///< EngineInfo::model_variant
    std::string device;   ///< EngineInfo::device
    std::string layout;   ///< "world 2, ulysses 2 × ring 1, dit_fsdp" (layout_text)
    std::string codec;    ///< encoder of the MP4
    std::string program;  ///< "WanStudio <version>"
    int fps = 16;
    double teacache_threshold = 0;  ///< 0: step caching off
    int dit_steps_computed = -1;    ///< steps whose DiT block stack ran; < 0: not recorded
    /// "lora_files": the merged LoRAs in order, the per-expert ones after the others (the request's "loras",
    /// "loras_high" and "loras_low" have the paths)
    std::vector<SidecarLora> lora_files;

    /// Pretty-printed (2 spaces), keys sorted. Also "size": "W*H" of the request.
    std::string to_json() const;
    /// Throws wan::Error naming `what` (the file) when the JSON is malformed or has no "prompt".
    static GenerationSidecar from_json(const std::string& json, const std::string& what);
};

/// The record of one generation, with the engine facts taken from `info` and this program's version.
GenerationSidecar make_sidecar(const GenerationRequest& resolved, const GenerationResult& result,
                               const EngineInfo& info, const std::string& codec, double teacache_threshold = 0,
                               int dit_steps_computed = -1);

/// "world 4, ulysses 2 × ring 2, dit_fsdp, t5_fsdp, cfg_parallel" (flags only when set).
std::string layout_text(const EngineInfo& info);

}  // namespace wan
