#include "core/json_limits.h"

#include "core/core.h"

#include <nlohmann/json.hpp>

namespace wan {

void check_json_depth(const char* data, size_t size, const std::string& source, int max_depth) {
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < size; ++i) {
        const char c = data[i];
        if (in_string) {
            if (c == '\\') ++i;  // the escaped character cannot end the string
            else if (c == '"') in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            WAN_CHECK(++depth <= max_depth, "%s: JSON nests deeper than %d levels (at byte %zu): not a file we read",
                      source.c_str(), max_depth, i);
        } else if (c == ']' || c == '}') {
            --depth;  // unbalanced text is left for the parser to report
        }
    }
}

namespace {

template <typename Json>
std::string excerpt(const Json& v) {
    constexpr size_t kMaxChars = 120;
    constexpr size_t kMaxItems = 16;
    auto truncated = [](std::string s) {
        if (s.size() > kMaxChars) s = s.substr(0, kMaxChars) + "…";
        return s;
    };
    if (v.is_object()) return strfmt("an object of %zu fields", v.size());
    if (v.is_array()) {
        if (v.size() <= kMaxItems) {
            bool flat = true;
            for (const auto& x : v) flat = flat && !x.is_structured();
            if (flat) return truncated(v.dump());  // one level only: its items are scalars
        }
        return strfmt("an array of %zu items", v.size());
    }
    return truncated(v.dump());
}

}  // namespace

std::string json_excerpt(const nlohmann::json& value) { return excerpt(value); }
std::string json_excerpt(const nlohmann::ordered_json& value) { return excerpt(value); }

}  // namespace wan
