#include "core/guide_pair.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace wan {

namespace {
double parse_guide(const std::string& text, const std::string& whole, const std::string& what) {
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    WAN_CHECK(!text.empty() && end && *end == '\0' && errno == 0 && std::isfinite(v) && v >= 0,
              "%s '%s': expected a guide scale ≥ 0, or LOW,HIGH (two of them: low-noise expert first)", what.c_str(),
              whole.c_str());
    return v;
}
}  // namespace

void set_guide_scales(const std::string& text, GenerationRequest& r, const std::string& what) {
    const size_t comma = text.find(',');
    if (comma == std::string::npos) {
        r.guide_scale = r.guide_scale_high = parse_guide(text, text, what);
        return;
    }
    WAN_CHECK(text.find(',', comma + 1) == std::string::npos, "%s '%s': at most two values (LOW,HIGH)", what.c_str(),
              text.c_str());
    r.guide_scale = parse_guide(text.substr(0, comma), text, what);
    r.guide_scale_high = parse_guide(text.substr(comma + 1), text, what);
}

std::string guide_scales_text(const GenerationRequest& r) {
    if (r.guide_scale_high < 0 || r.guide_scale_high == r.guide_scale) return strfmt("%g", r.guide_scale);
    return strfmt("%g,%g", r.guide_scale, r.guide_scale_high);
}

}  // namespace wan
