#include "core/utf8.h"

namespace wan {

void append_utf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

std::string utf8_from_u32(const std::u32string& s) {
    std::string out;
    out.reserve(s.size());
    for (char32_t cp : s) append_utf8(out, cp);
    return out;
}

namespace utf8 {

const char* problem_name(Problem problem) {
    switch (problem) {
        case Problem::None: return "valid";
        case Problem::InvalidLeadByte: return "invalid lead byte";
        case Problem::Truncated: return "truncated sequence";
        case Problem::InvalidContinuation: return "invalid continuation byte";
        case Problem::Overlong: return "overlong encoding";
        case Problem::Surrogate: return "encoded surrogate";
        case Problem::AboveMax: return "code point above U+10FFFF";
    }
    return "?";
}

namespace {
bool is_continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

/// What is wrong with a lead byte `b0` whose second byte `b1` is a continuation byte outside the RFC 3629
/// range for that lead (E0 → A0..BF, ED → 80..9F, F0 → 90..BF, F4 → 80..8F).
Problem second_byte_problem(unsigned char b0) {
    if (b0 == 0xE0 || b0 == 0xF0) return Problem::Overlong;
    if (b0 == 0xED) return Problem::Surrogate;
    return Problem::AboveMax;
}
}  // namespace

Step next(std::string_view text) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const size_t n = text.size();
    const unsigned char b0 = p[0];
    if (b0 < 0x80) return {b0, 1, Problem::None};
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) len = 2;
    else if (b0 >= 0xE0 && b0 <= 0xEF) len = 3, lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
    else if (b0 >= 0xF0 && b0 <= 0xF4) len = 4, lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
    if (len == 0) return {0, 1, Problem::InvalidLeadByte};
    char32_t cp = b0 & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
    for (size_t k = 1; k < len; ++k) {
        if (k >= n) return {0, k, Problem::Truncated};
        const unsigned char b = p[k];
        if (!is_continuation(b)) return {0, k, Problem::InvalidContinuation};
        if (k == 1 && (b < lo || b > hi)) return {0, 1, second_byte_problem(b0)};
        cp = (cp << 6) | (b & 0x3F);
    }
    return {cp, len, Problem::None};
}

std::u32string decode_lossy(std::string_view text) {
    std::u32string out;
    out.reserve(text.size());
    while (!text.empty()) {
        const Step s = next(text);
        out.push_back(s.problem == Problem::None ? s.code_point : kReplacement);
        text.remove_prefix(s.size);
    }
    return out;
}

std::u32string decode_strict(std::string_view text, const std::string& what) {
    std::u32string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
        const Step s = next(text.substr(i));
        if (s.problem != Problem::None)
            WAN_THROW("%s is not valid UTF-8: %s at byte offset %zu (byte 0x%02X)", what.c_str(),
                      problem_name(s.problem), i, static_cast<unsigned>(static_cast<unsigned char>(text[i])));
        out.push_back(s.code_point);
        i += s.size;
    }
    return out;
}

}  // namespace utf8
}  // namespace wan
