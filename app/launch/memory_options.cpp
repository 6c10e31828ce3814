#include "launch/memory_options.h"

#include "core/core.h"
#include "launch/layout_proposal.h"

namespace wan::app {

MemoryOptions MemoryOptions::of(const EngineConfig& config) {
    MemoryOptions m;
    m.ditDtype = config.dit_dtype;
    m.maxVramGb = config.max_vram_gb;
    m.offloadDit = config.offload_dit;
    return m;
}

void MemoryOptions::applyTo(EngineConfig& config) const {
    config.dit_dtype = ditDtype;
    config.max_vram_gb = maxVramGb;
    config.offload_dit = offloadDit;
}

std::vector<std::string> MemoryOptions::problems() const {
    std::vector<std::string> out;
    if (ditDtype != "auto" && ditDtype != "fp8" && ditDtype != "bf16")
        out.push_back(strfmt("DiT weights '%s': expected auto, fp8 or bf16", ditDtype.c_str()));
    if (maxVramGb < 0) out.push_back(strfmt("GPU memory limit %g GB: expected a positive number, or none", maxVramGb));
    return out;
}

std::vector<std::string> MemoryOptions::arguments() const {
    std::vector<std::string> args;
    if (ditDtype != "auto") args.insert(args.end(), {"--dit-dtype", ditDtype});
    if (maxVramGb > 0) args.insert(args.end(), {"--max-vram", strfmt("%g", maxVramGb)});
    if (offloadDit) args.push_back("--offload-dit");
    return args;
}

std::string MemoryOptions::summary() const {
    std::vector<std::string> parts;
    if (ditDtype == "fp8") parts.push_back("fp8 weights");
    if (ditDtype == "bf16") parts.push_back("bf16 weights");
    if (maxVramGb > 0) parts.push_back(strfmt("at most %g GB of GPU memory", maxVramGb));
    if (offloadDit) parts.push_back("DiT streamed from host memory");
    std::string s;
    for (const std::string& p : parts) s += (s.empty() ? "" : " · ") + p;
    return s;
}

bool MemoryOptions::operator==(const MemoryOptions& o) const {
    return ditDtype == o.ditDtype && maxVramGb == o.maxVramGb && offloadDit == o.offloadDit;
}

std::vector<std::string> withMemoryOptions(const std::vector<std::string>& args, const MemoryOptions& memory) {
    std::vector<std::string> out = stripOptions(args, {"dit_dtype", "max_vram"}, {"offload_dit"});
    for (const std::string& a : memory.arguments()) out.push_back(a);
    return out;
}

}  // namespace wan::app
