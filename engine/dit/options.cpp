// ModelOptions from the environment: the switches users and scripts set for measurements (README, scripts/gpu).
#include "dit/dit.h"

#include "core/core.h"
#include "core/env.h"

#include <optional>
#include <string>

namespace wan::dit {

ModelOptions ModelOptions::from_environment() {
    ModelOptions o;
    o.fp8 = env_flag("WAN_FP8", o.fp8);
    o.fused_kernels = env_flag("WAN_FUSED", o.fused_kernels);
    o.fp8_direct = env_flag("WAN_FP8_DIRECT", o.fp8_direct);
    o.stage_clock = env_flag("WAN_DIT_STAGES", o.stage_clock);
    const std::optional<std::string> attention = env_string("WAN_ATTENTION");
    if (attention && !attention->empty()) {
        if (const std::optional<AttentionBackend> backend = parse_attention_backend(*attention))
            o.attention = *backend;
        else
            WAN_LOG_WARN("WAN_ATTENTION=%s not understood (auto|fa3|cudnn|flash|sdpa); using auto", attention->c_str());
    }
    const std::optional<std::string> fp8_attention = env_string("WAN_FP8_ATTENTION");
    if (fp8_attention && !fp8_attention->empty()) {
        if (const std::optional<AttentionFp8> mode = parse_attention_fp8(*fp8_attention))
            o.attention_fp8 = *mode;
        else
            WAN_LOG_WARN("WAN_FP8_ATTENTION=%s not understood (off|on|kmean); using off", fp8_attention->c_str());
    }
    return o;
}

}  // namespace wan::dit
