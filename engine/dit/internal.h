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
/// Auto → Float32 on CPU, BF16Mixed elsewhere.
Precision resolve_precision(const ModelOptions& options);
/// "[a, b, c]".
std::string shape_string(at::IntArrayRef shape);

}  // namespace wan::dit::detail
