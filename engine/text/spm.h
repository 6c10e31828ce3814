// Private: a SentencePiece unigram encoder reading `spiece.model` directly (protobuf wire format), with
// the same normaliser (precompiled charsmap, a darts-clone double array) and the same Viterbi as
// libsentencepiece's `EncodeAsIds`.
//
// Why not libsentencepiece: Debian's libsentencepiece.so.0 (0.1.97) bundles protobuf-lite 3.14 with exported
// symbols, and Debian's LibTorch loads libprotobuf.so.32 (3.21); in one process the two copies interpose
// each other and the program crashes in libprotobuf's static initialisers (or fails the protobuf version
// check when the order is reversed). This file needs no protobuf at all. The test `text_spm_crosscheck`
// (a process without LibTorch) compares it with libsentencepiece on many strings.
// No LibTorch here, so that cross-check can link it alone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace wan::text::spm {

enum class PieceType : int { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

struct Piece {
    std::string text;
    float score = 0;
    PieceType type = PieceType::Normal;
};

class UnigramModel {
public:
    /// Parses a serialized ModelProto; throws wan::Error naming `source` on malformed or unsupported data
    /// (non-unigram model, whitespace-as-suffix).
    static UnigramModel from_bytes(const std::string& bytes, const std::string& source);
    static UnigramModel from_file(const std::string& path);

    /// The normaliser output (NFKC map, dummy prefix '▁', whitespace escaping and collapsing).
    std::string normalize(std::string_view input) const;
    /// Ids as SentencePieceProcessor::EncodeAsIds gives them: normalise, Viterbi, merge runs of <unk>,
    /// byte fallback when the model enables it.
    std::vector<int> encode(std::string_view input) const;

    int piece_size() const { return static_cast<int>(pieces_.size()); }
    int piece_to_id(const std::string& piece) const;  ///< -1 when absent
    const Piece& piece(int id) const { return pieces_.at(static_cast<size_t>(id)); }
    int unk_id() const { return unk_id_; }

private:
    std::pair<std::string_view, size_t> normalize_prefix(std::string_view input) const;
    std::vector<std::pair<size_t, size_t>> charsmap_prefixes(std::string_view input) const;

    std::vector<Piece> pieces_;
    std::unordered_map<std::string, int> vocab_;  // NORMAL, USER_DEFINED, UNUSED (the encoder's trie)
    std::unordered_map<std::string, int> all_;    // every piece (piece_to_id)
    std::vector<std::string> user_defined_;       // matched before normalisation
    size_t max_piece_bytes_ = 0;
    int unk_id_ = -1;
    float min_score_ = 0, max_score_ = 0;
    bool byte_fallback_ = false;
    // NormalizerSpec
    std::vector<uint32_t> trie_;     // darts-clone units
    std::string normalized_blob_;    // NUL-terminated replacement strings
    bool add_dummy_prefix_ = true;
    bool remove_extra_whitespaces_ = true;
    bool escape_whitespaces_ = true;
};

}  // namespace wan::text::spm
