// UTF-8 decoding shared by the tokenizers, the prompt cleaner and the model-text cleaner (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF). Encoding is append_utf8 / utf8_from_u32 in
// core/core.h. Torch-free.
#pragma once

#include "core/core.h"

#include <cstddef>
#include <string>
#include <string_view>

namespace wan::utf8 {

/// Why a sequence is not valid UTF-8. Zero is never a valid value.
enum class Problem {
    None = 1,
    InvalidLeadByte,      ///< 80..C1 or F5..FF where a character should start
    Truncated,            ///< the text ends inside a sequence
    InvalidContinuation,  ///< a byte that is not 10xxxxxx inside a sequence
    Overlong,             ///< a longer encoding of a code point that has a shorter one
    Surrogate,            ///< U+D800..U+DFFF
    AboveMax,             ///< above U+10FFFF
};
const char* problem_name(Problem problem);  ///< "invalid lead byte", "truncated sequence", ...

/// One step of decoding: the character at the start of the text, or why there is none.
struct Step {
    char32_t code_point = 0;  ///< valid only when problem == Problem::None
    size_t size = 0;          ///< bytes consumed: the character, or the maximal ill-formed subpart (≥ 1)
    Problem problem = Problem::None;
};

/// Decodes the character at the start of `text` (not empty). An ill-formed sequence consumes its maximal
/// subpart, the Unicode-recommended unit for one U+FFFD (Rust's from_utf8_lossy, Hugging Face decoders).
Step next(std::string_view text);

/// Every character; each ill-formed subpart becomes one U+FFFD.
std::u32string decode_lossy(std::string_view text);

/// Every character; throws wan::Error "<what> is not valid UTF-8: <problem> at byte offset N (byte 0xXX)".
std::u32string decode_strict(std::string_view text, const std::string& what);

inline constexpr char32_t kReplacement = 0xFFFD;
inline constexpr const char* kReplacementUtf8 = "\xEF\xBF\xBD";

}  // namespace wan::utf8
