// Private to engine/io: helpers for reading numbers and JSON that come from a file and may be hostile.
// Every size, offset and stride read from a checkpoint goes through the checked arithmetic here, so that a
// crafted file fails with a message instead of wrapping around (a [3, 6148914691236517206] F32 tensor "fits"
// in 8 bytes when 3 × 6148914691236517206 × 4 is computed in 64 bits).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace wan::io {

/// a × b, or false when the product does not fit in 64 bits.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }
/// a + b, or false when the sum does not fit in 64 bits.
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_add_overflow(a, b, out); }
inline bool checked_mul(int64_t a, int64_t b, int64_t* out) { return !__builtin_mul_overflow(a, b, out); }
inline bool checked_add(int64_t a, int64_t b, int64_t* out) { return !__builtin_add_overflow(a, b, out); }

/// True when [offset, offset + length) lies inside a file of `size` bytes (no wrap-around).
inline bool range_in_file(uint64_t offset, uint64_t length, uint64_t size) {
    return offset <= size && length <= size - offset;
}

/// Deepest nesting of JSON text checkpoints and configs may use. Real files nest 3 levels (safetensors
/// header: object → tensor → shape array); 64 leaves room for any metadata while keeping every recursive
/// walk (nlohmann's dump, our readers) shallow.
constexpr int kMaxJsonDepth = 64;

/// Scans JSON text for its nesting depth without parsing it (strings and escapes are skipped) and throws
/// "<source>: JSON nests deeper than N levels" when it exceeds `max_depth`. Call before nlohmann::json::parse.
void check_json_depth(const char* data, size_t size, const std::string& source, int max_depth = kMaxJsonDepth);

/// A short, bounded rendering of an untrusted JSON value for error messages: scalars as JSON (strings
/// truncated), arrays of at most 16 scalars in full, anything else as "an array of N items" / "an object
/// of N fields". Never recurses into the value.
std::string json_excerpt(const nlohmann::json& value);
std::string json_excerpt(const nlohmann::ordered_json& value);

}  // namespace wan::io
