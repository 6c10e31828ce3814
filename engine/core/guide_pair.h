// The guide of a request as users write it: one value for every expert, or Wan2.2 A14B's pair "LOW,HIGH"
// (low-noise expert first, as upstream's guide_scale tuple). Torch-free.
#pragma once

#include "core/core.h"

#include <string>

namespace wan {

/// "X" sets guide_scale and guide_scale_high to X; "LOW,HIGH" sets guide_scale = LOW, guide_scale_high = HIGH.
/// Throws wan::Error naming `what` (e.g. "--sample-guide-scale") when the text is not one or two numbers ≥ 0.
void set_guide_scales(const std::string& text, GenerationRequest& r, const std::string& what);

/// "5" for a single guide, "3,4" for a pair that differs (low first): what the sidecar and logs show.
std::string guide_scales_text(const GenerationRequest& r);

}  // namespace wan
