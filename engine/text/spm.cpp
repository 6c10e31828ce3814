// SentencePiece unigram encoding without libsentencepiece (see spm.h for why). Mirrors sentencepiece 0.1.97:
// normalizer.cc (Normalizer::Normalize / NormalizePrefix), unigram_model.cc (Model::EncodeOptimized) and
// sentencepiece_processor.cc (PopulateSentencePieceText: <unk> runs merged, byte fallback).
#include "text/spm.h"

#include "core/core.h"
#include "core/utf8.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace wan::text::spm {
namespace {

constexpr char kSpaceSymbol[] = "\xE2\x96\x81";  // U+2581 '▁'
constexpr float kUnkPenalty = 10.0f;

// ---- protobuf wire format -----------------------------------------------------------------------------

class WireReader {
public:
    WireReader(const char* data, size_t size, const std::string& source) : p_(data), end_(data + size), source_(source) {}
    bool done() const { return p_ >= end_; }
    /// A field's key: its number and wire type.
    struct Key {
        uint32_t field, wire;
    };
    Key key() {
        const uint64_t k = varint();
        return {static_cast<uint32_t>(k >> 3), static_cast<uint32_t>(k & 7)};
    }
    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            need(1);
            const auto c = static_cast<uint8_t>(*p_++);
            v |= static_cast<uint64_t>(c & 0x7F) << shift;
            if (c < 0x80) return v;
        }
        WAN_THROW("%s: malformed SentencePiece model (bad varint)", source_.c_str());
    }
    std::string_view bytes() {
        const uint64_t n = varint();
        need(n);
        std::string_view s(p_, n);
        p_ += n;
        return s;
    }
    float fixed32_float() {
        need(4);
        uint32_t bits = 0;
        for (int i = 0; i < 4; ++i) bits |= static_cast<uint32_t>(static_cast<uint8_t>(p_[i])) << (8 * i);
        p_ += 4;
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
    }
    void skip(uint32_t wire) {
        switch (wire) {
            case 0: varint(); break;
            case 1: need(8); p_ += 8; break;
            case 2: bytes(); break;
            case 5: need(4); p_ += 4; break;
            default: WAN_THROW("%s: malformed SentencePiece model (wire type %u)", source_.c_str(), wire);
        }
    }

private:
    void need(uint64_t n) const {
        WAN_CHECK(static_cast<uint64_t>(end_ - p_) >= n, "%s: malformed SentencePiece model (truncated)", source_.c_str());
    }
    const char* p_;
    const char* end_;
    const std::string& source_;
};

// Length of the UTF-8 character starting with `c` (sentencepiece's OneCharLen table).
size_t one_char_len(unsigned char c) {
    static const size_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return kLen[c >> 4];
}

// sentencepiece's IsValidDecodeUTF8 → length of a valid character at the start, or 0 when malformed.
size_t valid_utf8_len(std::string_view s) {
    if (s.empty()) return 0;
    const utf8::Step step = utf8::next(s);
    return step.problem == utf8::Problem::None ? step.size : 0;
}

}  // namespace

// ---- loading ------------------------------------------------------------------------------------------

UnigramModel UnigramModel::from_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    WAN_CHECK(bool(f), "tokenizer file not found: %s", path.c_str());
    std::ostringstream os;
    os << f.rdbuf();
    return from_bytes(os.str(), path);
}

UnigramModel UnigramModel::from_bytes(const std::string& bytes, const std::string& source) {
    UnigramModel m;
    int model_type = 1;  // UNIGRAM (the proto default)
    bool suffix = false;
    std::string_view charsmap;
    WireReader r(bytes.data(), bytes.size(), source);
    while (!r.done()) {
        const auto [field, wire] = r.key();
        if (wire != 2) {
            r.skip(wire);
            continue;
        }
        const std::string_view sub = r.bytes();
        WireReader s(sub.data(), sub.size(), source);
        if (field == 1) {  // SentencePiece {piece = 1, score = 2, type = 3}
            Piece piece;
            while (!s.done()) {
                const auto [f, w] = s.key();
                if (f == 1 && w == 2) piece.text = std::string(s.bytes());
                else if (f == 2 && w == 5) piece.score = s.fixed32_float();
                else if (f == 3 && w == 0) piece.type = static_cast<PieceType>(s.varint());
                else s.skip(w);
            }
            m.pieces_.push_back(std::move(piece));
        } else if (field == 2) {  // TrainerSpec {model_type = 3, treat_whitespace_as_suffix = 24, byte_fallback = 35}
            while (!s.done()) {
                const auto [f, w] = s.key();
                if (w != 0) {
                    s.skip(w);
                    continue;
                }
                const uint64_t v = s.varint();
                if (f == 3) model_type = static_cast<int>(v);
                if (f == 24) suffix = v != 0;
                if (f == 35) m.byte_fallback_ = v != 0;
            }
        } else if (field == 3) {  // NormalizerSpec {charsmap = 2, add_dummy_prefix = 3, remove_extra = 4, escape = 5}
            while (!s.done()) {
                const auto [f, w] = s.key();
                if (f == 2 && w == 2) charsmap = s.bytes();
                else if (f == 3 && w == 0) m.add_dummy_prefix_ = s.varint() != 0;
                else if (f == 4 && w == 0) m.remove_extra_whitespaces_ = s.varint() != 0;
                else if (f == 5 && w == 0) m.escape_whitespaces_ = s.varint() != 0;
                else s.skip(w);
            }
        }
    }
    WAN_CHECK(!m.pieces_.empty(), "%s: not a SentencePiece model (no pieces)", source.c_str());
    WAN_CHECK(model_type == 1, "%s: SentencePiece model type %d is not supported (only unigram, type 1)", source.c_str(),
              model_type);
    WAN_CHECK(!suffix, "%s: treat_whitespace_as_suffix models are not supported", source.c_str());

    bool have_normal = false;
    for (int i = 0; i < m.piece_size(); ++i) {
        const Piece& p = m.pieces_[i];
        WAN_CHECK(!p.text.empty(), "%s: piece %d is empty", source.c_str(), i);
        m.all_.emplace(p.text, i);
        switch (p.type) {
            case PieceType::Normal:
                m.min_score_ = have_normal ? std::min(m.min_score_, p.score) : p.score;
                m.max_score_ = have_normal ? std::max(m.max_score_, p.score) : p.score;
                have_normal = true;
                [[fallthrough]];
            case PieceType::Unused:
                m.vocab_.emplace(p.text, i);
                m.max_piece_bytes_ = std::max(m.max_piece_bytes_, p.text.size());
                break;
            case PieceType::UserDefined:
                m.vocab_.emplace(p.text, i);
                m.user_defined_.push_back(p.text);
                m.max_piece_bytes_ = std::max(m.max_piece_bytes_, p.text.size());
                break;
            case PieceType::Unknown:
                WAN_CHECK(m.unk_id_ < 0, "%s: more than one <unk> piece", source.c_str());
                m.unk_id_ = i;
                break;
            default: break;
        }
    }
    WAN_CHECK(m.unk_id_ >= 0, "%s: SentencePiece model has no <unk> piece", source.c_str());

    // Precompiled charsmap: u32 trie size, darts-clone units, then the NUL-terminated replacements.
    if (!charsmap.empty()) {
        WAN_CHECK(charsmap.size() > 4, "%s: precompiled_charsmap too short", source.c_str());
        uint32_t trie_bytes = 0;
        for (int i = 0; i < 4; ++i) trie_bytes |= static_cast<uint32_t>(static_cast<uint8_t>(charsmap[i])) << (8 * i);
        WAN_CHECK(trie_bytes < charsmap.size() - 4 + 1 && trie_bytes % 4 == 0,
                  "%s: precompiled_charsmap trie size %u does not fit the blob", source.c_str(), trie_bytes);
        m.trie_.resize(trie_bytes / 4);
        for (size_t i = 0; i < m.trie_.size(); ++i) {
            uint32_t u = 0;
            for (int b = 0; b < 4; ++b) u |= static_cast<uint32_t>(static_cast<uint8_t>(charsmap[4 + 4 * i + b])) << (8 * b);
            m.trie_[i] = u;
        }
        m.normalized_blob_ = std::string(charsmap.substr(4 + trie_bytes));
    }
    return m;
}

int UnigramModel::piece_to_id(const std::string& piece) const {
    const auto it = all_.find(piece);
    return it == all_.end() ? -1 : it->second;
}

// ---- normalizer ---------------------------------------------------------------------------------------

// darts-clone DoubleArray::commonPrefixSearch: (value, length) of every key that prefixes `input`.
std::vector<std::pair<size_t, size_t>> UnigramModel::charsmap_prefixes(std::string_view input) const {
    std::vector<std::pair<size_t, size_t>> out;
    if (trie_.empty()) return out;
    auto offset = [](uint32_t u) -> size_t { return (u >> 10) << ((u & (1U << 9)) >> 6); };
    auto label = [](uint32_t u) -> uint32_t { return u & ((1U << 31) | 0xFF); };
    auto has_leaf = [](uint32_t u) { return ((u >> 8) & 1) == 1; };
    size_t node = 0;
    uint32_t unit = trie_[node];
    node ^= offset(unit);
    for (size_t i = 0; i < input.size(); ++i) {
        const auto c = static_cast<uint8_t>(input[i]);
        node ^= c;
        if (node >= trie_.size()) break;
        unit = trie_[node];
        if (label(unit) != c) break;
        node ^= offset(unit);
        if (node >= trie_.size()) break;
        if (has_leaf(unit)) out.emplace_back(trie_[node] & ((1U << 31) - 1), i + 1);
    }
    return out;
}

std::pair<std::string_view, size_t> UnigramModel::normalize_prefix(std::string_view input) const {
    // User-defined symbols are kept as typed (longest match).
    size_t best_user = 0;
    for (const auto& u : user_defined_)
        if (u.size() > best_user && input.substr(0, u.size()) == u) best_user = u.size();
    if (best_user > 0) return {input.substr(0, best_user), best_user};

    size_t longest_len = 0, longest_value = 0;
    for (const auto& [value, len] : charsmap_prefixes(input)) {
        if (longest_len == 0 || len > longest_len) {
            longest_len = len;
            longest_value = value;
        }
    }
    if (longest_len == 0) {
        const size_t n = valid_utf8_len(input);
        if (n == 0) return {std::string_view("\xEF\xBF\xBD"), 1};  // malformed: U+FFFD, consume one byte
        return {input.substr(0, n), n};
    }
    WAN_CHECK(longest_value < normalized_blob_.size(), "SentencePiece charsmap value out of range");
    return {std::string_view(normalized_blob_.c_str() + longest_value), longest_len};
}

std::string UnigramModel::normalize(std::string_view input) const {
    std::string out;
    if (remove_extra_whitespaces_) {  // heading spaces
        while (!input.empty()) {
            const auto p = normalize_prefix(input);
            if (p.first != " ") break;
            input.remove_prefix(p.second);
        }
    }
    if (input.empty()) return out;
    out.reserve(input.size() * 3);
    auto add_ws = [&] { out += escape_whitespaces_ ? kSpaceSymbol : " "; };
    if (add_dummy_prefix_) add_ws();
    bool is_prev_space = remove_extra_whitespaces_;
    while (!input.empty()) {
        const auto p = normalize_prefix(input);
        std::string_view sp = p.first;
        while (is_prev_space && !sp.empty() && sp.front() == ' ') sp.remove_prefix(1);
        if (!sp.empty()) {
            for (char c : sp) {
                if (escape_whitespaces_ && c == ' ') out += kSpaceSymbol;
                else out += c;
            }
            is_prev_space = sp.back() == ' ';
        }
        input.remove_prefix(p.second);
        if (!remove_extra_whitespaces_) is_prev_space = false;
    }
    if (remove_extra_whitespaces_) {  // trailing spaces
        const std::string space = escape_whitespaces_ ? kSpaceSymbol : " ";
        while (out.size() >= space.size() && out.compare(out.size() - space.size(), space.size(), space) == 0)
            out.resize(out.size() - space.size());
    }
    return out;
}

// ---- Viterbi ------------------------------------------------------------------------------------------

std::vector<int> UnigramModel::encode(std::string_view input) const {
    const std::string normalized = normalize(input);
    const int size = static_cast<int>(normalized.size());
    struct BestPathNode {
        int id = -1;
        float best_path_score = 0;
        int starts_at = -1;
    };
    const float unk_score = min_score_ - kUnkPenalty;
    std::vector<BestPathNode> ends_at(static_cast<size_t>(size) + 1);
    int starts_at = 0;
    while (starts_at < size) {
        const float score_here = ends_at[starts_at].best_path_score;
        bool has_single_node = false;
        const int mblen =
            std::min<int>(static_cast<int>(one_char_len(static_cast<unsigned char>(normalized[starts_at]))), size - starts_at);
        // Every vocabulary piece that prefixes the rest, shortest first (the trie's traversal order).
        const int max_len = std::min<int>(static_cast<int>(max_piece_bytes_), size - starts_at);
        for (int length = 1; length <= max_len; ++length) {
            const auto it = vocab_.find(normalized.substr(starts_at, length));
            if (it == vocab_.end()) continue;
            const int id = it->second;
            const Piece& p = pieces_[id];
            if (p.type == PieceType::Unused) continue;
            auto& target = ends_at[starts_at + length];
            // User-defined symbols get a bonus so they are always selected (double arithmetic upstream).
            const double candidate = p.type == PieceType::UserDefined
                                         ? (length * static_cast<double>(max_score_) - 0.1) + score_here
                                         : static_cast<double>(p.score + score_here);
            if (target.starts_at == -1 || candidate > target.best_path_score) {
                target.best_path_score = static_cast<float>(candidate);
                target.starts_at = starts_at;
                target.id = id;
            }
            if (length == mblen) has_single_node = true;
        }
        if (!has_single_node) {
            auto& target = ends_at[starts_at + mblen];
            const float candidate = unk_score + score_here;
            if (target.starts_at == -1 || candidate > target.best_path_score) {
                target.best_path_score = candidate;
                target.starts_at = starts_at;
                target.id = unk_id_;
            }
        }
        starts_at += mblen;
    }
    // Backtrack.
    std::vector<std::pair<int, int>> path;  // (id, start)
    for (int end = size; end > 0;) {
        const auto& node = ends_at[end];
        path.emplace_back(node.id, node.starts_at);
        end = node.starts_at;
    }
    std::reverse(path.begin(), path.end());

    std::vector<int> ids;
    ids.reserve(path.size());
    bool prev_unk = false;
    for (size_t k = 0; k < path.size(); ++k) {
        const int id = path[k].first;
        const bool is_unk = id == unk_id_;
        if (is_unk && byte_fallback_) {
            const int begin = path[k].second;
            const int end = k + 1 < path.size() ? path[k + 1].second : size;
            for (int b = begin; b < end; ++b) {
                char name[8];
                std::snprintf(name, sizeof(name), "<0x%02X>", static_cast<unsigned>(static_cast<uint8_t>(normalized[b])));
                ids.push_back(piece_to_id(name));
            }
        } else if (!(is_unk && prev_unk)) {  // runs of <unk> merge into one
            ids.push_back(id);
        }
        prev_unk = is_unk;
    }
    return ids;
}

}  // namespace wan::text::spm
