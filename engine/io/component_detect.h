// Private to engine/io: what a checkpoint file holds, from its names and shapes (component_files.h).
#pragma once

#include "io/component_files.h"

#include <string>

namespace wan::io {

struct DetectedComponent {
    ComponentKind kind = ComponentKind::Unknown;
    std::string description;  ///< for messages: "a Wan2.1 VAE", "an image-to-video (I2V) Wan DiT (img_emb.*)", …
    std::string prefix;       ///< DiT: the prefix before the upstream names ("model.diffusion_model.", "")
    bool hf_names = false;    ///< T5: Hugging Face UMT5 names (encoder.block.N.layer.…)
};

DetectedComponent detect_component(const TensorStore& raw);

/// Tensors that are not model weights: the `scaled_fp8` marker, weight and activation scales, `comfy_quant`
/// descriptors, the embedded tokenizer.
bool is_auxiliary_tensor(const std::string& name);

bool starts_with(const std::string& s, const std::string& prefix);
bool ends_with(const std::string& s, const std::string& suffix);

}  // namespace wan::io
