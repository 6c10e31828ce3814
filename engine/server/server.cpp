// The JSON sidecar written beside each video (server.h).
#include "server/server.h"

#include "core/sidecar.h"

#include <nlohmann/json.hpp>

namespace wan::server {

std::string sidecar_json(const GenerationRequest& resolved, const GenerationResult& result, const EngineInfo& info,
                         const std::string& codec, double teacache_threshold, int dit_steps_computed) {
    return make_sidecar(resolved, result, info, codec, teacache_threshold, dit_steps_computed).to_json();
}

}  // namespace wan::server
