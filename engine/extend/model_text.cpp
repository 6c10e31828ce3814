// clean_model_text (extend.h): what an extended prompt becomes before it reaches the prompt box, the JSON
// sidecar and the MP4 tags.
#include "extend/extend.h"

namespace wan::extend {

std::string clean_model_text(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    const size_t n = text.size();
    for (size_t i = 0; i < n;) {
        const unsigned char c = s[i];
        if (c < 0x80) {
            if (c >= 0x20 ? c != 0x7f : (c == '\t' || c == '\n')) out += static_cast<char>(c);
            else if (c == '\r' && (i + 1 >= n || s[i + 1] != '\n')) out += '\n';  // a lone CR ends a line
            ++i;
            continue;
        }
        // One UTF-8 sequence: its length from the lead byte, continuation bytes, no overlong forms,
        // no surrogates, nothing above U+10FFFF (RFC 3629 table).
        size_t len = 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c >= 0xE0 && c <= 0xEF) len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        size_t good = 0;
        if (len > 0 && i + 1 < n && s[i + 1] >= lo && s[i + 1] <= hi) {
            good = 2;
            while (good < len && i + good < n && s[i + good] >= 0x80 && s[i + good] <= 0xBF) ++good;
        }
        if (len > 0 && good == len) {
            const bool c1_control = c == 0xC2 && s[i + 1] < 0xA0;  // U+0080..U+009F
            if (!c1_control) out.append(text, i, len);
            i += len;
        } else {
            out += "\xEF\xBF\xBD";  // U+FFFD for the maximal invalid prefix, as decoders do
            i += good > 0 ? good : 1;
        }
    }
    const size_t b = out.find_first_not_of(" \t\n");
    if (b == std::string::npos) return {};
    return out.substr(b, out.find_last_not_of(" \t\n") - b + 1);
}

}  // namespace wan::extend
