// Internal to the engine (not part of core's public header): reading the JSON objects of request.cpp,
// sidecar.cpp and io's config.json with errors that name what was read ("generation request", a file name)
// and the field.
#pragma once

#include "core/core.h"
#include "core/json_limits.h"

#include <nlohmann/json.hpp>

#include <string>

namespace wan::json_fields {

/// Parses `json`; throws "<what>: not valid JSON: ..." or "<what>: expected a JSON object".
inline nlohmann::json parse_object(const std::string& json, const std::string& what) {
    check_json_depth(json.data(), json.size(), what);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(json);
    } catch (const std::exception& e) {
        WAN_THROW("%s: not valid JSON: %s", what.c_str(), e.what());
    }
    WAN_CHECK(j.is_object(), "%s: expected a JSON object", what.c_str());
    return j;
}

/// Sets `out` from `key` when present; throws "<what>: field "<key>" has the wrong type (...)".
template <typename T>
void get_field(const nlohmann::json& j, const char* key, T& out, const std::string& what) {
    if (!j.contains(key)) return;
    try {
        out = j.at(key).get<T>();
    } catch (const std::exception&) {
        // A bounded excerpt: dumping an untrusted value whole could recurse as deep as it nests.
        WAN_THROW("%s: field \"%s\" has the wrong type (%s)", what.c_str(), key, json_excerpt(j.at(key)).c_str());
    }
}

/// get_field for each ("key", out) pair that follows `what`: one call reads a struct's fields as a table.
inline void get_fields(const nlohmann::json&, const std::string&) {}
template <typename T, typename... Rest>
void get_fields(const nlohmann::json& j, const std::string& what, const char* key, T& out, Rest&... rest) {
    get_field(j, key, out, what);
    get_fields(j, what, rest...);
}

}  // namespace wan::json_fields
