#include "core/env.h"

#include <cstdlib>

namespace wan {

std::optional<std::string> env_string(const char* name) {
    const char* value = std::getenv(name);
    if (!value) return std::nullopt;
    return std::string(value);
}

bool env_flag(const char* name, bool fallback) {
    const std::optional<std::string> value = env_string(name);
    if (value == "1") return true;
    if (value == "0") return false;
    return fallback;
}

}  // namespace wan
