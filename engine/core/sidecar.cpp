#include "core/sidecar.h"

#include "core/json_fields.h"

namespace wan {

std::string layout_text(const EngineInfo& info) {
    return strfmt("world %d, ulysses %d × ring %d%s%s%s", info.world_size, info.ulysses_size, info.ring_size,
                  info.dit_fsdp ? ", dit_fsdp" : "", info.t5_fsdp ? ", t5_fsdp" : "",
                  info.cfg_parallel ? ", cfg_parallel" : "");
}

GenerationSidecar make_sidecar(const GenerationRequest& resolved, const GenerationResult& result,
                               const EngineInfo& info, const std::string& codec, double teacache_threshold,
                               int dit_steps_computed) {
    GenerationSidecar s;
    s.request = resolved;
    s.result = result;
    s.has_result = true;
    s.model = info.model_variant;
    s.device = info.device;
    s.layout = layout_text(info);
    s.codec = codec;
    s.program = std::string("WanStudio ") + version_string();
    s.teacache_threshold = teacache_threshold;
    s.dit_steps_computed = dit_steps_computed;
    return s;
}

std::string GenerationSidecar::to_json() const {
    nlohmann::json j = nlohmann::json::parse(request.to_json());
    const nlohmann::json r = nlohmann::json::parse(result.to_json());
    for (auto it = r.begin(); it != r.end(); ++it) {
        if (it.value().is_string() && it.value().get<std::string>().empty()) continue;  // paths not known yet
        j[it.key()] = it.value();
    }
    j["size"] = strfmt("%d*%d", request.width, request.height);
    j["model"] = model;
    j["device"] = device;
    j["layout"] = layout;
    j["codec"] = codec;
    j["program"] = program;
    j["fps"] = fps;
    j["teacache_threshold"] = teacache_threshold;
    if (dit_steps_computed >= 0) j["dit_steps_computed"] = dit_steps_computed;
    if (!lora_files.empty()) {
        nlohmann::json a = nlohmann::json::array();
        for (const SidecarLora& l : lora_files) {
            a.push_back({{"file_name", l.file_name}, {"sha256", l.sha256}, {"strength", l.strength}});
            if (!l.expert.empty()) a.back()["expert"] = l.expert;
        }
        j["lora_files"] = a;
    }
    return j.dump(2);
}

GenerationSidecar GenerationSidecar::from_json(const std::string& json, const std::string& what) {
    const nlohmann::json j = json_fields::parse_object(json, what);
    WAN_CHECK(j.contains("prompt"), "%s: no \"prompt\" field (not a generation record)", what.c_str());
    GenerationSidecar s;
    try {
        s.request = GenerationRequest::from_json(json);
        s.result = GenerationResult::from_json(json);
    } catch (const Error& e) {
        WAN_THROW("%s: %s", what.c_str(), e.what());
    }
    s.has_result = j.contains("status");
    if (!s.has_result) s.result.status = JobStatus::Ok;
    json_fields::get_fields(j, what, "model", s.model, "device", s.device, "layout", s.layout,  //
                            "codec", s.codec, "program", s.program, "fps", s.fps,            //
                            "teacache_threshold", s.teacache_threshold, "dit_steps_computed", s.dit_steps_computed);
    if (j.contains("lora_files")) {
        const nlohmann::json& a = j.at("lora_files");
        WAN_CHECK(a.is_array(), "%s: \"lora_files\" must be a list", what.c_str());
        for (const nlohmann::json& e : a) {
            WAN_CHECK(e.is_object(), "%s: each entry of \"lora_files\" must be an object", what.c_str());
            SidecarLora l;
            json_fields::get_fields(e, what, "file_name", l.file_name, "sha256", l.sha256, "strength", l.strength,
                                    "expert", l.expert);
            WAN_CHECK(l.expert.empty() || l.expert == "high" || l.expert == "low",
                      "%s: \"lora_files\": \"expert\" must be \"high\" or \"low\" (got \"%s\")", what.c_str(),
                      l.expert.c_str());
            s.lora_files.push_back(std::move(l));
        }
    }
    return s;
}

}  // namespace wan
