// Byte-level BPE tokenizer of Qwen2 folders (tokenizer.json) and the NFC normaliser it needs.
// Ref: wan21-reference.md §9.3 (the local model's AutoTokenizer); pipeline as Hugging Face `tokenizers`.
#include "extend/qwen.h"

#include "core/core.h"
#include "core/utf8.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <nlohmann/json.hpp>
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <climits>
#include <fstream>
#include <sstream>
#include <unordered_map>

namespace wan::extend {

namespace {
#include "extend/unicode_tables.inc"

// ---- NFC (UAX #15) ---------------------------------------------------------------------------------------

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

int combining_class(char32_t cp) {
    if (cp < 0x300) return 0;
    const auto* first = std::begin(kCccTable);
    const auto* last = std::end(kCccTable);
    const auto* it = std::lower_bound(first, last, cp, [](const uint32_t(&e)[2], char32_t c) { return e[0] < c; });
    return (it != last && (*it)[0] == cp) ? static_cast<int>((*it)[1]) : 0;
}

void decompose(char32_t cp, std::u32string& out) {
    if (cp >= kSBase && cp < kSBase + kSCount) {  // Hangul syllable: arithmetic decomposition
        const char32_t s = cp - kSBase;
        out.push_back(kLBase + s / kNCount);
        out.push_back(kVBase + (s % kNCount) / kTCount);
        if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
        return;
    }
    if (cp >= 0xC0) {
        const auto* first = std::begin(kDecompIndex);
        const auto* last = std::end(kDecompIndex);
        const auto* it =
            std::lower_bound(first, last, cp, [](const uint32_t(&e)[3], char32_t c) { return e[0] < c; });
        if (it != last && (*it)[0] == cp) {
            for (uint32_t k = 0; k < (*it)[2]; ++k) out.push_back(kDecompSeq[(*it)[1] + k]);
            return;
        }
    }
    out.push_back(cp);
}

/// The primary composite of (a, b), or 0.
char32_t compose_pair(char32_t a, char32_t b) {
    if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
        return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
    if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
        return a + (b - kTBase);
    const auto* first = std::begin(kComposeTable);
    const auto* last = std::end(kComposeTable);
    const auto* it = std::lower_bound(first, last, std::make_pair(a, b),
                                      [](const uint32_t(&e)[3], const std::pair<char32_t, char32_t>& k) {
                                          return e[0] != k.first ? e[0] < k.first : e[1] < k.second;
                                      });
    return (it != last && (*it)[0] == a && (*it)[1] == b) ? (*it)[2] : 0;
}

}  // namespace

std::string nfc_normalize(const std::string& utf8) {
    if (std::all_of(utf8.begin(), utf8.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
        return utf8;
    const std::u32string in = wan::utf8::decode_lossy(utf8);
    // 1. Full canonical decomposition.
    std::u32string d;
    d.reserve(in.size() + 8);
    for (char32_t cp : in) decompose(cp, d);
    // 2. Canonical ordering: stable sort of each run of non-starters by combining class.
    std::vector<int> cls(d.size());
    for (size_t i = 0; i < d.size(); ++i) cls[i] = combining_class(d[i]);
    for (size_t i = 0; i < d.size();) {
        if (cls[i] == 0) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < d.size() && cls[j] != 0) ++j;
        if (j - i > 1) {
            std::vector<std::pair<int, char32_t>> run;
            for (size_t k = i; k < j; ++k) run.emplace_back(cls[k], d[k]);
            std::stable_sort(run.begin(), run.end(),
                             [](const auto& x, const auto& y) { return x.first < y.first; });
            for (size_t k = i; k < j; ++k) cls[k] = run[k - i].first, d[k] = run[k - i].second;
        }
        i = j;
    }
    // 3. Canonical composition: each character joins the last starter unless blocked.
    std::u32string out;
    out.reserve(d.size());
    size_t starter = SIZE_MAX;
    int last_class = 0;
    for (size_t i = 0; i < d.size(); ++i) {
        const char32_t ch = d[i];
        const int ch_class = cls[i];
        if (starter != SIZE_MAX) {
            const bool adjacent = out.size() - 1 == starter;
            if (adjacent || (last_class != 0 && last_class < ch_class)) {
                if (const char32_t c = compose_pair(out[starter], ch)) {
                    out[starter] = c;
                    continue;
                }
            }
        }
        if (ch_class == 0) starter = out.size();
        last_class = ch_class;
        out.push_back(ch);
    }
    return wan::utf8_from_u32(out);
}

// ---- tokenizer ------------------------------------------------------------------------------------------

namespace {

struct Pcre2CodeDeleter {
    void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct Pcre2MatchDataDeleter {
    void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

/// GPT-2's byte → printable character table (bytes_to_unicode), as UTF-8 strings.
std::array<std::string, 256> byte_level_table() {
    std::array<int, 256> cp{};
    std::vector<bool> direct(256, false);
    for (int b = '!'; b <= '~'; ++b) direct[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) direct[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) direct[b] = true;
    int n = 0;
    for (int b = 0; b < 256; ++b) cp[b] = direct[b] ? b : 256 + n++;
    std::array<std::string, 256> out;
    for (int b = 0; b < 256; ++b) wan::append_utf8(out[b], static_cast<char32_t>(cp[b]));
    return out;
}

}  // namespace

struct QwenTokenizer::Impl {
    std::string path;
    std::unordered_map<std::string, int64_t> vocab;
    std::vector<std::string> id_to_token;  // empty string for unused ids
    std::vector<char> id_is_special;
    std::unordered_map<std::string, int> merge_ranks;  // "left right" → rank (byte-level text has no ' ')
    struct Added {
        std::string content;
        int64_t id;
    };
    std::vector<Added> added;  // longest first
    bool nfc = false;
    std::unique_ptr<pcre2_code, Pcre2CodeDeleter> split_re;
    std::array<std::string, 256> byte_to_char;
    std::unordered_map<char32_t, unsigned char> char_to_byte;
    mutable std::unordered_map<std::string, std::vector<int64_t>> bpe_cache;

    void bpe(const std::string& word, std::vector<int64_t>& out) const;
    void encode_span(const std::string& text, std::vector<int64_t>& out) const;
};

namespace {

/// Splits a byte-level word into its characters (UTF-8 sequences).
std::vector<std::string> split_chars(const std::string& w) {
    std::vector<std::string> parts;
    for (size_t i = 0; i < w.size();) {
        const auto b = static_cast<unsigned char>(w[i]);
        const size_t len = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : 4;
        parts.push_back(w.substr(i, len));
        i += len;
    }
    return parts;
}

}  // namespace

void QwenTokenizer::Impl::bpe(const std::string& word, std::vector<int64_t>& out) const {
    if (auto it = bpe_cache.find(word); it != bpe_cache.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
    }
    std::vector<std::string> parts = split_chars(word);
    // Classic BPE: merge the lowest-ranked adjacent pair everywhere (left to right) until none is left.
    while (parts.size() > 1) {
        int best = INT_MAX;
        for (size_t i = 0; i + 1 < parts.size(); ++i) {
            auto it = merge_ranks.find(parts[i] + ' ' + parts[i + 1]);
            if (it != merge_ranks.end() && it->second < best) best = it->second;
        }
        if (best == INT_MAX) break;
        std::vector<std::string> merged;
        merged.reserve(parts.size());
        for (size_t i = 0; i < parts.size();) {
            if (i + 1 < parts.size()) {
                auto it = merge_ranks.find(parts[i] + ' ' + parts[i + 1]);
                if (it != merge_ranks.end() && it->second == best) {
                    merged.push_back(parts[i] + parts[i + 1]);
                    i += 2;
                    continue;
                }
            }
            merged.push_back(parts[i]);
            ++i;
        }
        parts.swap(merged);
    }
    std::vector<int64_t> ids;
    ids.reserve(parts.size());
    for (const auto& p : parts) {
        auto it = vocab.find(p);
        WAN_CHECK(it != vocab.end(), "%s: BPE produced the piece '%s', which is not in the vocabulary",
                  path.c_str(), p.c_str());
        ids.push_back(it->second);
    }
    if (bpe_cache.size() > 200000) bpe_cache.clear();
    out.insert(out.end(), ids.begin(), ids.end());
    bpe_cache.emplace(word, std::move(ids));
}

void QwenTokenizer::Impl::encode_span(const std::string& raw, std::vector<int64_t>& out) const {
    if (raw.empty()) return;
    const std::string text = nfc ? nfc_normalize(raw) : raw;
    std::unique_ptr<pcre2_match_data, Pcre2MatchDataDeleter> md(
        pcre2_match_data_create_from_pattern(split_re.get(), nullptr));
    auto emit = [&](size_t a, size_t b) {
        if (b <= a) return;
        std::string word;
        for (size_t i = a; i < b; ++i) word += byte_to_char[static_cast<unsigned char>(text[i])];
        bpe(word, out);
    };
    // Split with behaviour "Isolated": every match is a piece, and so is every gap between matches.
    size_t pos = 0, last = 0;
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    while (pos <= text.size()) {
        const int rc = pcre2_match(split_re.get(), subject, text.size(), pos, 0, md.get(), nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        WAN_CHECK(rc >= 0, "%s: pre-tokenizer regex failed on the input (PCRE2 error %d)", path.c_str(), rc);
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
        const size_t a = ov[0], b = ov[1];
        if (b == a) {  // empty match (not produced by Qwen's regex): step one character on
            pos = a + 1;
            while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
            continue;
        }
        emit(last, a);
        emit(a, b);
        last = pos = b;
    }
    emit(last, text.size());
}

QwenTokenizer::QwenTokenizer() = default;
QwenTokenizer::~QwenTokenizer() = default;
QwenTokenizer::QwenTokenizer(QwenTokenizer&&) noexcept = default;
QwenTokenizer& QwenTokenizer::operator=(QwenTokenizer&&) noexcept = default;

QwenTokenizer QwenTokenizer::from_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    WAN_CHECK(f.good(), "cannot open tokenizer file '%s'", path.c_str());
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(f);
    } catch (const std::exception& e) {
        WAN_THROW("%s: not valid JSON (%s)", path.c_str(), e.what());
    }
    auto impl = std::make_unique<Impl>();
    impl->path = path;
    const char* p = path.c_str();

    // Model: BPE with vocab and merges.
    WAN_CHECK(j.contains("model") && j["model"].is_object(), "%s: no 'model' object", p);
    const auto& m = j["model"];
    WAN_CHECK(m.value("type", "") == "BPE", "%s: model type is '%s', expected 'BPE'", p,
              m.value("type", "").c_str());
    WAN_CHECK(m.contains("vocab") && m["vocab"].is_object(), "%s: model.vocab missing", p);
    WAN_CHECK(!m.contains("dropout") || m["dropout"].is_null(), "%s: BPE dropout is not supported", p);
    int64_t max_id = -1;
    for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
        const int64_t id = it.value().get<int64_t>();
        impl->vocab.emplace(it.key(), id);
        max_id = std::max(max_id, id);
    }
    WAN_CHECK(m.contains("merges") && m["merges"].is_array(), "%s: model.merges missing", p);
    int rank = 0;
    for (const auto& mg : m["merges"]) {
        std::string key;
        if (mg.is_string()) {  // "left right" (tokenizers < 0.20)
            key = mg.get<std::string>();
        } else {  // ["left", "right"]
            WAN_CHECK(mg.is_array() && mg.size() == 2, "%s: merge #%d is neither \"a b\" nor [a, b]", p, rank);
            key = mg[0].get<std::string>() + ' ' + mg[1].get<std::string>();
        }
        impl->merge_ranks.emplace(std::move(key), rank++);
    }

    // Added tokens (matched in the raw text before anything else).
    if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
        for (const auto& a : j["added_tokens"]) {
            const int64_t id = a.at("id").get<int64_t>();
            impl->added.push_back({a.at("content").get<std::string>(), id});
            max_id = std::max(max_id, id);
        }
    }
    std::stable_sort(impl->added.begin(), impl->added.end(),
                     [](const Impl::Added& x, const Impl::Added& y) { return x.content.size() > y.content.size(); });
    impl->id_to_token.assign(static_cast<size_t>(max_id + 1), std::string());
    impl->id_is_special.assign(static_cast<size_t>(max_id + 1), 0);
    for (const auto& [tok, id] : impl->vocab) impl->id_to_token[id] = tok;
    if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
        for (const auto& a : j["added_tokens"]) {
            const int64_t id = a.at("id").get<int64_t>();
            impl->id_to_token[id] = a.at("content").get<std::string>();
            impl->id_is_special[id] = a.value("special", false) ? 1 : 0;
        }
    }

    // Normaliser: NFC or none.
    if (j.contains("normalizer") && !j["normalizer"].is_null()) {
        const std::string t = j["normalizer"].value("type", "");
        WAN_CHECK(t == "NFC", "%s: normalizer '%s' is not supported (Qwen2 uses NFC)", p, t.c_str());
        impl->nfc = true;
    }

    // Pre-tokenizer: Sequence[Split(Regex, Isolated), ByteLevel(add_prefix_space=false, use_regex=false)].
    WAN_CHECK(j.contains("pre_tokenizer") && j["pre_tokenizer"].is_object(), "%s: no pre_tokenizer", p);
    std::vector<nlohmann::json> steps;
    if (j["pre_tokenizer"].value("type", "") == "Sequence") {
        for (const auto& s : j["pre_tokenizer"].at("pretokenizers")) steps.push_back(s);
    } else {
        steps.push_back(j["pre_tokenizer"]);
    }
    std::string pattern;
    bool byte_level = false;
    for (const auto& s : steps) {
        const std::string t = s.value("type", "");
        if (t == "Split") {
            WAN_CHECK(pattern.empty(), "%s: more than one Split pre-tokenizer is not supported", p);
            WAN_CHECK(s.contains("pattern") && s["pattern"].contains("Regex"),
                      "%s: Split pre-tokenizer without a Regex pattern", p);
            WAN_CHECK(s.value("behavior", "") == "Isolated" && !s.value("invert", false),
                      "%s: Split behaviour '%s' (invert %d) not supported, expected Isolated", p,
                      s.value("behavior", "").c_str(), int(s.value("invert", false)));
            pattern = s["pattern"]["Regex"].get<std::string>();
        } else if (t == "ByteLevel") {
            WAN_CHECK(!s.value("add_prefix_space", false) && !s.value("use_regex", true),
                      "%s: ByteLevel pre-tokenizer must have add_prefix_space=false and use_regex=false", p);
            byte_level = true;
        } else {
            WAN_THROW("%s: pre-tokenizer '%s' is not supported (expected Split + ByteLevel as in Qwen2)", p,
                      t.c_str());
        }
    }
    WAN_CHECK(byte_level && !pattern.empty(), "%s: expected a Split (regex) and a ByteLevel pre-tokenizer", p);
    if (j.contains("decoder") && !j["decoder"].is_null()) {
        const std::string t = j["decoder"].value("type", "");
        WAN_CHECK(t == "ByteLevel", "%s: decoder '%s' is not supported, expected ByteLevel", p, t.c_str());
    }

    uint32_t options = PCRE2_UTF | PCRE2_UCP;
#ifdef PCRE2_MATCH_INVALID_UTF
    options |= PCRE2_MATCH_INVALID_UTF;
#endif
    int err = 0;
    PCRE2_SIZE err_off = 0;
    pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(), options, &err,
                                   &err_off, nullptr);
    if (!re) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(err, buf, sizeof(buf));
        WAN_THROW("%s: the pre-tokenizer regex does not compile with PCRE2 at offset %zu: %s", p,
                  static_cast<size_t>(err_off), reinterpret_cast<const char*>(buf));
    }
    impl->split_re.reset(re);
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // a speed-up only; the interpreter is used if JIT fails

    impl->byte_to_char = byte_level_table();
    for (int b = 0; b < 256; ++b)
        impl->char_to_byte[wan::utf8::decode_lossy(impl->byte_to_char[b])[0]] = static_cast<unsigned char>(b);

    QwenTokenizer t;
    t.impl_ = std::move(impl);
    return t;
}

std::vector<int64_t> QwenTokenizer::encode(const std::string& text) const {
    WAN_CHECK(impl_, "QwenTokenizer used before from_file()");
    std::vector<int64_t> out;
    size_t span_start = 0;
    size_t i = 0;
    while (i < text.size()) {
        const Impl::Added* hit = nullptr;
        for (const auto& a : impl_->added) {  // longest first: leftmost-longest match
            if (!a.content.empty() && text.compare(i, a.content.size(), a.content) == 0) {
                hit = &a;
                break;
            }
        }
        if (!hit) {
            ++i;
            continue;
        }
        impl_->encode_span(text.substr(span_start, i - span_start), out);
        out.push_back(hit->id);
        i += hit->content.size();
        span_start = i;
    }
    impl_->encode_span(text.substr(span_start), out);
    return out;
}

std::string QwenTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
    WAN_CHECK(impl_, "QwenTokenizer used before from_file()");
    std::string bytes;
    for (int64_t id : ids) {
        WAN_CHECK(id >= 0 && id < static_cast<int64_t>(impl_->id_to_token.size()),
                  "token id %lld is outside the vocabulary (size %zu)", static_cast<long long>(id),
                  impl_->id_to_token.size());
        if (skip_special_tokens && impl_->id_is_special[id]) continue;
        const std::string& tok = impl_->id_to_token[id];
        // ByteLevel decoder: map each character back to its byte; a token with a character outside the
        // table (an added token such as "<|im_end|>" never has one) is kept as its own UTF-8.
        std::string tb;
        bool all_mapped = true;
        for (char32_t c : wan::utf8::decode_lossy(tok)) {
            auto it = impl_->char_to_byte.find(c);
            if (it == impl_->char_to_byte.end()) {
                all_mapped = false;
                break;
            }
            tb.push_back(static_cast<char>(it->second));
        }
        bytes += all_mapped ? tb : tok;
    }
    return wan::utf8_from_u32(wan::utf8::decode_lossy(bytes));  // lossy: invalid UTF-8 → U+FFFD
}

int64_t QwenTokenizer::token_to_id(const std::string& token) const {
    for (const auto& a : impl_->added)
        if (a.content == token) return a.id;
    auto it = impl_->vocab.find(token);
    return it == impl_->vocab.end() ? -1 : it->second;
}

int64_t QwenTokenizer::size() const { return static_cast<int64_t>(impl_->id_to_token.size()); }

}  // namespace wan::extend
