// One LoRA a job asks for: file and strength. Torch-free (the request, the batch file, the protocol and the
// app's settings hold lists of these); the engine's lora module (engine/lora/lora.h) reads and merges them.
#pragma once

#include "core/core.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

namespace wan {

// struct LoraSpec lives in core/core.h (GenerationRequest holds a list of them).

/// `--lora PATH[:STRENGTH]`: the text after the LAST ':' is the strength when it is a complete finite
/// number ("a.safetensors:0.8", "a.safetensors:-1"); otherwise the whole text is the path (so "C:\x.safetensors"
/// and a path with ':' in a directory name still work; strength 1). Throws wan::Error naming `what` when the
/// path is empty.
inline LoraSpec parse_lora_spec(const std::string& text, const char* what = "--lora") {
    LoraSpec spec;
    spec.path = text;
    const size_t colon = text.rfind(':');
    if (colon != std::string::npos && colon + 1 < text.size()) {
        const std::string tail = text.substr(colon + 1);
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(tail.c_str(), &end);
        if (end && *end == '\0' && errno == 0 && std::isfinite(v) && tail.find_first_of("xXnNiI") == std::string::npos) {
            spec.path = text.substr(0, colon);
            spec.strength = v;
        }
    }
    if (spec.path.empty()) throw Error(strfmt("%s '%s': expected PATH[:STRENGTH] with a file path", what, text.c_str()));
    return spec;
}

/// "PATH:STRENGTH" with the shortest decimal that reads back as the same double (%.17g trimmed), the inverse
/// of parse_lora_spec for paths whose last ':'-separated part is not a number.
inline std::string format_lora_spec(const LoraSpec& spec) {
    std::string s;
    for (int prec = 1; prec <= 17; ++prec) {
        s = strfmt("%.*g", prec, spec.strength);
        if (std::strtod(s.c_str(), nullptr) == spec.strength) break;
    }
    return spec.path + ":" + s;
}

}  // namespace wan
