// The JSON sidecar written beside each video (server.h).
#include "server/server.h"

#include <nlohmann/json.hpp>

namespace wan::server {

std::string sidecar_json(const GenerationRequest& resolved, const GenerationResult& result, const EngineInfo& info,
                         const std::string& codec, double teacache_threshold, int dit_steps_computed) {
    nlohmann::json j = nlohmann::json::parse(resolved.to_json());
    nlohmann::json r = nlohmann::json::parse(result.to_json());
    for (auto it = r.begin(); it != r.end(); ++it) {
        if (it.value().is_string() && it.value().get<std::string>().empty()) continue;  // paths not known yet
        j[it.key()] = it.value();
    }
    j["size"] = strfmt("%d*%d", resolved.width, resolved.height);
    j["model"] = info.model_variant;
    j["device"] = info.device;
    j["layout"] = strfmt("world %d, ulysses %d × ring %d%s%s%s", info.world_size, info.ulysses_size, info.ring_size,
                         info.dit_fsdp ? ", dit_fsdp" : "", info.t5_fsdp ? ", t5_fsdp" : "",
                         info.cfg_parallel ? ", cfg_parallel" : "");
    j["codec"] = codec;
    j["program"] = std::string("WanStudio ") + version_string();
    j["fps"] = 16;
    j["teacache_threshold"] = teacache_threshold;
    if (dit_steps_computed >= 0) j["dit_steps_computed"] = dit_steps_computed;
    return j.dump(2);
}

}  // namespace wan::server
