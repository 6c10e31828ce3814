// Reading JSON that may be hostile (a checkpoint's header, a config.json, a batch line or an API request):
// nlohmann's parser and dump() recurse once per nesting level, so text nested 300,000 deep overflows the stack.
// Check the depth before parsing, and show values in messages only as bounded excerpts.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <string>

namespace wan {

/// Deepest nesting of JSON text we read. Real files nest 3 levels (safetensors header: object → tensor →
/// shape array), requests 3 (a LoRA list); 64 leaves room for any metadata while keeping every recursive
/// walk (nlohmann's parse and dump, our readers) shallow.
constexpr int kMaxJsonDepth = 64;

/// Scans JSON text for its nesting depth without parsing it (strings and escapes are skipped) and throws
/// "<source>: JSON nests deeper than N levels" when it exceeds `max_depth`. Call before nlohmann::json::parse.
void check_json_depth(const char* data, size_t size, const std::string& source, int max_depth = kMaxJsonDepth);

/// A short, bounded rendering of an untrusted JSON value for error messages: scalars as JSON (strings
/// truncated), arrays of at most 16 scalars in full, anything else as "an array of N items" / "an object
/// of N fields". Never recurses into the value.
std::string json_excerpt(const nlohmann::json& value);
std::string json_excerpt(const nlohmann::ordered_json& value);

}  // namespace wan
