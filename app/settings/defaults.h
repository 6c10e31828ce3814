// Constants the application shows to the user. Qt-free.
#pragma once

namespace wan::app {

/// Upstream's default negative prompt (`sample_neg_prompt` of wan/configs/shared_config.py), quoted exactly:
/// 137 characters, the commas are U+FF0C. Pre-fills the GUI's negative prompt field.
// Ref: wan21-reference.md Appendix B.1
inline constexpr const char* kDefaultNegativePrompt =
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，"
    "残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，"
    "背景人很多，倒着走";

/// Gradio's seed slider range (wan21-reference.md §10.2): −1 means random.
inline constexpr long long kMaxSeed = 2147483647LL;

}  // namespace wan::app
