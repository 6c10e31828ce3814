// Prompt cleaning: upstream `whitespace_clean(basic_clean(text))`. Ref: wan21-reference.md §2.1.
//
// ftfy.fix_text (ftfy 6 defaults, applied in ftfy's order) — what is done here:
//   * unescape_html "auto": entities `&#?[0-9A-Za-z]{1,24};` unescaped once, in the lines before the first
//     line that contains '<' (ftfy fixes line by line and turns this off at the first '<')
//   * remove_terminal_escapes: ANSI `ESC [ digits/; letter` sequences removed
//   * fix_c1_controls (the last part of fix_encoding): U+0080..U+009F decoded as sloppy Windows-1252
//   * fix_latin_ligatures: ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ Ĳ ĳ ŉ Ǳ ǲ ǳ Ǆ ǅ ǆ Ǉ ǈ ǉ Ǌ ǋ ǌ expanded
//   * fix_character_width: U+3000 → ' ', U+FF01..U+FFEF → their NFKC forms (ftfy's width map)
//   * uncurl_quotes: U+02BC, U+2018..U+201B → '\'';  U+201C..U+201F → '"'
//   * fix_line_breaks: CRLF, CR, U+2028, U+2029, U+0085 → '\n'
//   * remove_control_chars: U+0000..0008, 000B, 000E..001F, 007F, 206A..206F, FEFF, FFF9..FFFC removed
// NOT done: mojibake repair (fix_encoding's heuristic re-decoding, restore_byte_a0, replace_lossy_sequences,
// decode_inconsistent_utf8), surrogate repair (invalid UTF-8 is rejected instead) and the final NFC
// (SentencePiece's NFKC normaliser subsumes it for the token ids). The HTML entity table holds the HTML 4
// names and the HTML5 legacy names without ';' (clean_tables.inc), not all 2231 HTML5 names.
// Golden ids were produced with ftfy as the identity; every fix above leaves those ids unchanged because
// the tokenizer's NFKC already maps widths and ligatures (checked by golden_tokenizer).
#include "text/text.h"

#include "core/core.h"
#include "core/utf8.h"

#include <algorithm>
#include <cstring>

namespace wan::text {
namespace {

#include "clean_tables.inc"

std::u32string u32(const char* text) { return utf8::decode_strict(text, "table entry"); }

// ---- HTML -----------------------------------------------------------------------------------------

const char* find_entity(const std::string& name) {
    const auto* begin = std::begin(kHtmlEntities);
    const auto* end = std::end(kHtmlEntities);
    const auto* it = std::lower_bound(begin, end, name, [](const EntityEntry& e, const std::string& key) {
        return std::strcmp(e.name, key.c_str()) < 0;
    });
    if (it != end && name == it->name) return it->value;
    return nullptr;
}

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_hex_digit(char32_t c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_ascii_alnum(char32_t c) { return is_ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Python html._invalid_charrefs: 0 → U+FFFD, CR kept, 0x80..0x9F → Windows-1252 (undefined bytes kept).
char32_t cp1252(char32_t c) {
    static const char32_t table[32] = {0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                       0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D,   0x017D, 0x8F,
                                       0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                       0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};
    return (c >= 0x80 && c <= 0x9F) ? table[c - 0x80] : c;
}

// Python html._replace_charref for a numeric reference; appends the replacement.
void append_numeric_charref(std::u32string& out, const std::u32string& digits, bool hex) {
    uint64_t num = 0;
    bool huge = false;
    for (char32_t d : digits) {
        const uint64_t v = is_ascii_digit(d) ? d - '0' : (d | 0x20) - 'a' + 10;
        num = num * (hex ? 16 : 10) + v;
        if (num > 0x10FFFF) huge = true, num = 0x110000;
    }
    if (huge || num > 0x10FFFF || (num >= 0xD800 && num <= 0xDFFF)) {
        out.push_back(0xFFFD);
        return;
    }
    const auto c = static_cast<char32_t>(num);
    if (c == 0) return out.push_back(0xFFFD);
    if (c == 0x0D) return out.push_back(0x0D);
    if (c >= 0x80 && c <= 0x9F) return out.push_back(cp1252(c));
    const bool invalid = (c >= 0x1 && c <= 0x8) || c == 0xB || (c >= 0xE && c <= 0x1F) || c == 0x7F ||
                         (c >= 0xFDD0 && c <= 0xFDEF) || (c & 0xFFFE) == 0xFFFE;
    if (!invalid) out.push_back(c);
}

// Python's html.unescape: `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)`.
std::u32string html_unescape(const std::u32string& s) {
    std::u32string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        if (s[i] != '&') {
            out.push_back(s[i++]);
            continue;
        }
        size_t j = i + 1;
        if (j < s.size() && s[j] == '#') {
            bool hex = j + 1 < s.size() && (s[j + 1] == 'x' || s[j + 1] == 'X');
            size_t d0 = j + 1 + (hex ? 1 : 0);
            size_t d = d0;
            while (d < s.size() && (hex ? is_hex_digit(s[d]) : is_ascii_digit(s[d]))) ++d;
            if (d == d0) {  // no digits: not a reference
                out.push_back(s[i++]);
                continue;
            }
            append_numeric_charref(out, s.substr(d0, d - d0), hex);
            i = (d < s.size() && s[d] == ';') ? d + 1 : d;
            continue;
        }
        size_t e = j;
        while (e < s.size() && e - j < 32 && s[e] != '\t' && s[e] != '\n' && s[e] != '\f' && s[e] != ' ' &&
               s[e] != '<' && s[e] != '&' && s[e] != '#' && s[e] != ';')
            ++e;
        if (e == j) {
            out.push_back(s[i++]);
            continue;
        }
        const bool semi = e < s.size() && s[e] == ';';
        const std::string name = wan::utf8_from_u32(s.substr(j, e - j)) + (semi ? ";" : "");
        const size_t consumed_end = semi ? e + 1 : e;
        if (const char* v = find_entity(name)) {
            out += u32(v);
        } else {
            // Longest legacy prefix (entities that need no ';'), the rest kept as text.
            const std::u32string body = s.substr(j, consumed_end - j);
            bool found = false;
            for (size_t x = body.size() - 1; x > 1; --x) {
                if (const char* v2 = find_entity(wan::utf8_from_u32(body.substr(0, x)))) {
                    out += u32(v2);
                    out += body.substr(x);
                    found = true;
                    break;
                }
            }
            if (!found) {
                out.push_back('&');
                out += body;
            }
        }
        i = consumed_end;
    }
    return out;
}

// ftfy's unescape_html: only `&#?[0-9A-Za-z]{1,24};`, names looked up with their ';'; a numeric
// reference is kept when html.unescape would leave a ';' in it.
std::u32string ftfy_unescape_html(const std::u32string& s) {
    std::u32string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        if (s[i] == '&') {
            size_t j = i + 1;
            const bool numeric = j < s.size() && s[j] == '#';
            if (numeric) ++j;
            size_t e = j;
            while (e < s.size() && e - j < 24 && is_ascii_alnum(s[e])) ++e;
            if (e > j && e < s.size() && s[e] == ';') {
                const std::u32string ref = s.substr(i, e + 1 - i);
                if (!numeric) {
                    if (const char* v = find_entity(wan::utf8_from_u32(s.substr(j, e + 1 - j)))) {
                        out += u32(v);
                        i = e + 1;
                        continue;
                    }
                } else {
                    const std::u32string un = html_unescape(ref);
                    if (un.find(U';') == std::u32string::npos) {
                        out += un;
                        i = e + 1;
                        continue;
                    }
                }
                out += ref;
                i = e + 1;
                continue;
            }
        }
        out.push_back(s[i++]);
    }
    return out;
}

// ---- the other ftfy fixes --------------------------------------------------------------------------

const char* ligature(char32_t c) {
    switch (c) {
        case 0x0132: return "IJ";
        case 0x0133: return "ij";
        case 0x0149: return "\xCA\xBCn";  // ʼn
        case 0x01F1: return "DZ";
        case 0x01F2: return "Dz";
        case 0x01F3: return "dz";
        case 0x01C4: return "D\xC5\xBD";  // DŽ
        case 0x01C5: return "D\xC5\xBE";  // Dž
        case 0x01C6: return "d\xC5\xBE";  // dž
        case 0x01C7: return "LJ";
        case 0x01C8: return "Lj";
        case 0x01C9: return "lj";
        case 0x01CA: return "NJ";
        case 0x01CB: return "Nj";
        case 0x01CC: return "nj";
        case 0xFB00: return "ff";
        case 0xFB01: return "fi";
        case 0xFB02: return "fl";
        case 0xFB03: return "ffi";
        case 0xFB04: return "ffl";
        case 0xFB05: return "\xC5\xBFt";  // ſt
        case 0xFB06: return "st";
        default: return nullptr;
    }
}

const char* width_form(char32_t c) {
    if (c != 0x3000 && (c < 0xFF01 || c > 0xFFEF)) return nullptr;
    const auto* begin = std::begin(kWidthMap);
    const auto* end = std::end(kWidthMap);
    const auto* it = std::lower_bound(begin, end, c, [](const WidthEntry& e, char32_t k) { return e.from < k; });
    return (it != end && it->from == c) ? it->to : nullptr;
}

bool is_removed_control(char32_t c) {
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
           c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

std::u32string ftfy_subset(std::u32string s) {
    // fix_text works line by line (segments end after '\n'); "auto" HTML unescaping is switched off for
    // good at the first line that contains '<', so earlier lines are still unescaped.
    {
        std::u32string un;
        un.reserve(s.size());
        bool unescape = true;
        for (size_t pos = 0; pos < s.size();) {
            size_t brk = s.find(U'\n', pos);
            brk = brk == std::u32string::npos ? s.size() : brk + 1;
            const std::u32string segment = s.substr(pos, brk - pos);
            if (segment.find(U'<') != std::u32string::npos) unescape = false;
            un += unescape ? ftfy_unescape_html(segment) : segment;
            pos = brk;
        }
        s = std::move(un);
    }

    std::u32string t;
    t.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        // remove_terminal_escapes: \033\[((?:\d|;)*)([a-zA-Z])
        if (s[i] == 0x1B && i + 1 < s.size() && s[i + 1] == '[') {
            size_t e = i + 2;
            while (e < s.size() && (is_ascii_digit(s[e]) || s[e] == ';')) ++e;
            if (e < s.size() && ((s[e] >= 'a' && s[e] <= 'z') || (s[e] >= 'A' && s[e] <= 'Z'))) {
                i = e;
                continue;
            }
        }
        t.push_back(s[i]);
    }

    std::u32string u;
    u.reserve(t.size());
    for (char32_t c : t) {
        if (c >= 0x80 && c <= 0x9F) c = cp1252(c);  // fix_c1_controls
        if (const char* lig = ligature(c)) {
            u += u32(lig);
        } else {
            u.push_back(c);
        }
    }

    std::u32string w;
    w.reserve(u.size());
    for (size_t i = 0; i < u.size(); ++i) {
        char32_t c = u[i];
        if (const char* wf = width_form(c)) {
            w += u32(wf);
            continue;
        }
        if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) c = '\'';
        if (c >= 0x201C && c <= 0x201F) c = '"';
        w.push_back(c);
    }

    std::u32string out;
    out.reserve(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
        char32_t c = w[i];
        if (c == '\r') {
            if (i + 1 < w.size() && w[i + 1] == '\n') ++i;
            c = '\n';
        } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
            c = '\n';
        }
        if (is_removed_control(c)) continue;
        out.push_back(c);
    }
    return out;
}

// `\s` of the `regex` package: the Unicode White_Space property.
bool is_regex_space(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}
// Python str.strip(): str.isspace(), which adds U+001C..U+001F.
bool is_py_space(char32_t c) { return is_regex_space(c) || (c >= 0x1C && c <= 0x1F); }

std::u32string py_strip(const std::u32string& s) {
    size_t b = 0, e = s.size();
    while (b < e && is_py_space(s[b])) ++b;
    while (e > b && is_py_space(s[e - 1])) --e;
    return s.substr(b, e - b);
}

}  // namespace

void check_utf8(const std::string& text, const std::string& what) { (void)utf8::decode_strict(text, what); }

std::string clean_text(const std::string& text, bool ftfy) {
    std::u32string s = utf8::decode_strict(text, "prompt");
    if (ftfy) s = ftfy_subset(std::move(s));
    s = html_unescape(html_unescape(s));
    s = py_strip(s);
    std::u32string collapsed;
    collapsed.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        if (is_regex_space(s[i])) {
            while (i < s.size() && is_regex_space(s[i])) ++i;
            collapsed.push_back(' ');
        } else {
            collapsed.push_back(s[i++]);
        }
    }
    return wan::utf8_from_u32(py_strip(collapsed));
}

}  // namespace wan::text
