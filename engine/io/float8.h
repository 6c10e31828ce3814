// Private to engine/io (tests may include it): 8-bit float formats of safetensors files (F8_E4M3, F8_E5M2)
// decoded in software, so that every build can read fp8 checkpoints whatever its LibTorch version (ATen has
// float8 types only from 2.1), and the decoding of "scaled fp8" weights (value = fp8 · scale).
#pragma once

#include "io/io.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>

namespace wan::io {

struct StoreEntry;

/// The 8-bit float encodings a safetensors header can name. Zero is not a valid value.
enum class Float8Format { None = 1, E4M3 = 2, E5M2 = 3 };

/// "F8_E4M3" → E4M3, "F8_E5M2" → E5M2, anything else → None.
Float8Format float8_format_from_safetensors(const std::string& name);
const char* float8_format_name(Float8Format format);  ///< "F8_E4M3", "F8_E5M2", "none"

/// The value of one byte. E4M3 is the "fn" variant (no infinities, S.1111.111 is NaN, max 448);
/// E5M2 follows IEEE 754 (infinities, NaNs, max 57344).
float float8_to_float(Float8Format format, uint8_t bits);
/// The nearest representable value's byte (ties to even); values beyond the largest finite value saturate to
/// it, NaN gives NaN. Used to quantise (tests, and quantising bf16 weights at load).
uint8_t float8_from_float(Float8Format format, float value);
/// The largest finite value (448 for E4M3, 57344 for E5M2).
float float8_max(Float8Format format);

/// How a view entry's stored values become its tensor: 8-bit float bytes widened, times a scale.
/// `scale` is a float32 scalar or one value per row (dim 0) of the weight.
struct EntryDecoding {
    Float8Format float8 = Float8Format::None;  ///< None: the stored dtype is an ordinary ATen dtype
    at::Tensor scale;                          ///< float32 CPU, numel 1 or rows; undefined → 1
};

/// The entry's values as `dtype` on `device`, decoded from the mapped bytes in slices of rows so that the
/// host memory used beyond the result stays bounded (a few tens of MB) for any tensor size.
at::Tensor decode_entry(const StoreEntry& entry, const EntryDecoding& decoding, c10::Device device,
                        at::ScalarType dtype);

/// The entry's stored bytes (uint8, its shape), copied into memory of their own.
at::Tensor entry_bytes(const StoreEntry& entry);

/// Bytes (uint8 CPU tensor) of 8-bit floats → float32, one table lookup per element.
at::Tensor float8_bytes_to_float(const at::Tensor& bytes, Float8Format format);

/// F8_E5M2 bytes (uint8 CPU, rows = dim 0) → e4m3 codes of the same shape and one power-of-two scale per row
/// ([rows] f32), with from_e5m2 set and what could not be held exactly counted (Note [E5M2 as e4m3]). Works in
/// slices of rows (bounded host memory). An infinity or NaN is an error naming `what`.
Float8Codes e5m2_as_e4m3(const at::Tensor& bytes, const std::string& what);

}  // namespace wan::io
