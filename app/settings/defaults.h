// Constants the application shows to the user. Qt-free.
#pragma once

#include "core/model_defaults.h"

namespace wan::app {

/// Upstream's default negative prompt pre-fills the GUI's field; the text lives in core/model_defaults.h.
using wan::kDefaultNegativePrompt;

/// Gradio's seed slider range (wan21-reference.md §10.2): −1 means random.
inline constexpr long long kMaxSeed = 2147483647LL;

}  // namespace wan::app
