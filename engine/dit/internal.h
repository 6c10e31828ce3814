// Private helpers shared by the dit sources.
#pragma once

#include "dit/dit.h"

#include <string>
#include <utility>
#include <vector>

namespace wan::dit::detail {

/// Block tensors by their key suffix (after "blocks.{i}."), in state-dict order.
std::vector<std::pair<std::string, at::Tensor*>> block_fields(BlockWeights& w);
/// Root tensors by their full key, in state-dict order (head last).
std::vector<std::pair<std::string, at::Tensor*>> root_fields(RootWeights& w);
/// The fp8 scale of each block Linear weight, by the weight's key suffix ("ffn.0.weight"), in block_fields order.
std::vector<std::pair<std::string, at::Tensor*>> scale_fields(BlockWeights& w);
/// The scale field of the weight with key suffix `suffix`, or nullptr when it is not a block Linear weight.
at::Tensor* scale_field(BlockWeights& w, const std::string& suffix);
/// Replaces each block Linear weight by its fp8 codes and sets its scale (Note [FP8 weights]).
void quantize_linears(BlockWeights& w);
/// `held` with every fp8 weight dequantised to `dtype` (scales undefined); `held` itself when it holds no fp8.
BlockWeights widened(const BlockWeights& held, at::ScalarType dtype);
/// The codes of an F8_E4M3 weight as stored (scale per row), of an F8_E5M2 weight re-coded as e4m3 (a warning
/// where that rounds), else the weight quantised; on `device`.
Fp8Weight load_fp8(const io::TensorStore& store, const std::string& name, c10::Device device);
/// The largest finite float8_e4m3fn value: an fp8 scale is amax / kE4m3Max.
constexpr float kE4m3Max = 448.0f;
/// e4m3 codes (uint8) → f32 values of the same shape, on the codes' device.
at::Tensor decode_e4m3(const at::Tensor& codes);
/// f32 values (|v| ≤ 448) → nearest e4m3 codes (uint8), on the values' device.
at::Tensor encode_e4m3(const at::Tensor& values);
/// Auto → Float32 on CPU, BF16Mixed elsewhere.
Precision resolve_precision(const ModelOptions& options);
/// "[a, b, c]".
std::string shape_string(at::IntArrayRef shape);
/// quantize_heads_fp8 for FP8 attention: the fused CUDA kernels where they take x (fused::heads_fp8_supported),
/// else the ATen reference (Note [FP8 attention]).
Fp8Heads quantize_attention_heads_fp8(const at::Tensor& x, bool subtract_mean);

}  // namespace wan::dit::detail
