// Private to engine/io: helpers for reading numbers and JSON that come from a file and may be hostile.
// Every size, offset and stride read from a checkpoint goes through the checked arithmetic here, so that a
// crafted file fails with a message instead of wrapping around (a [3, 6148914691236517206] F32 tensor "fits"
// in 8 bytes when 3 × 6148914691236517206 × 4 is computed in 64 bits).
#pragma once

#include "core/json_limits.h"

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

// The JSON limits live in core (requests and batch lines need them too).
using wan::check_json_depth;
using wan::json_excerpt;
using wan::kMaxJsonDepth;

}  // namespace wan::io
