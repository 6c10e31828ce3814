// The engine's one reader of environment variables (API keys in engine/extend aside). Switches that users and
// scripts set in the environment (WAN_FUSED, WAN_ATTENTION, WAN_DIT_STAGES, WAN_FP8, ...) are read here, at
// the edge — by the code that builds an options struct — and never deep inside hot code.
#pragma once

#include <optional>
#include <string>

namespace wan {

/// The value of the environment variable `name`; nullopt when it is not set.
std::optional<std::string> env_string(const char* name);

/// A 0/1 switch: "1" → true, "0" → false; unset or any other value → `fallback`.
bool env_flag(const char* name, bool fallback);

}  // namespace wan
