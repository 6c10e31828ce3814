#include "core/batch_file.h"

#include "core/json_limits.h"
#include "core/presets.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

namespace wan {

namespace {

// The keys GenerationRequest::from_json reads, plus "size". job_id is the session's.
constexpr const char* kAllowedKeys[] = {
    "prompt",      "negative_prompt", "width",        "height",           "size",
    "frame_num",   "sample_steps",    "sample_shift", "sample_guide_scale", "sample_solver",
    "base_seed",   "output_dir",      "init_noise",   "save_latents",     "use_prompt_extend",
    "prompt_extend_target_lang",      "original_prompt", "sample_guide_scale_high", "boundary",
    "loras",                          "denoising_steps", "preset",   "loras_high",       "loras_low"};

bool is_allowed_key(const std::string& key) {
    return std::any_of(std::begin(kAllowedKeys), std::end(kAllowedKeys), [&](const char* k) { return key == k; });
}

std::string trim(const std::string& s) {
    const char* ws = " \t\r\n\v\f";
    const size_t b = s.find_first_not_of(ws);
    if (b == std::string::npos) return {};
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

/// One JSON line over the defaults. `where` is "<source>, line N".
GenerationRequest parse_json_line(const std::string& line, const nlohmann::json& defaults, const std::string& where) {
    check_json_depth(line.data(), line.size(), where);  // lines may come from the network (--listen)
    nlohmann::json obj;
    try {
        obj = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
        WAN_THROW("%s: not valid JSON (%s); expected a plain prompt or a JSON object such as "
                  "{\"prompt\": \"...\", \"size\": \"832*480\"}",
                  where.c_str(), e.what());
    }
    WAN_CHECK(obj.is_object(), "%s: not valid JSON (not an object); expected a plain prompt or a JSON object",
              where.c_str());
    nlohmann::json merged = defaults;
    // The preset fills its fields first; the line's own keys override them. "" is no preset (a request's own
    // JSON, as --connect sends it, always carries the key).
    if (obj.contains("preset") && !(obj.at("preset").is_string() && obj.at("preset").get<std::string>().empty())) {
        WAN_CHECK(obj.at("preset").is_string(), "%s: \"preset\" must be a string naming a preset", where.c_str());
        const std::string what = where + ": preset";
        GenerationRequest r = GenerationRequest::from_json(merged.dump());
        apply_sampling_preset(find_sampling_preset(obj.at("preset").get<std::string>(), what.c_str()), r);
        merged = nlohmann::json::parse(r.to_json());
    }
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        WAN_CHECK(is_allowed_key(it.key()),
                  "%s: unknown key \"%s\" (expected GenerationRequest keys such as prompt, negative_prompt, size, "
                  "frame_num, sample_steps, sample_shift, sample_guide_scale, sample_solver, base_seed)",
                  where.c_str(), it.key().c_str());
        merged[it.key()] = it.value();
    }
    // A line's single guide means every expert's, whatever the defaults held for the high-noise one.
    if (obj.contains("sample_guide_scale") && !obj.contains("sample_guide_scale_high")) merged.erase("sample_guide_scale_high");
    try {
        return GenerationRequest::from_json(merged.dump());  // "size" wins over width/height (applied after them)
    } catch (const Error& e) {
        WAN_THROW("%s: %s", where.c_str(), e.what());
    }
}

}  // namespace

std::vector<GenerationRequest> parse_batch_text(const std::string& text, const GenerationRequest& defaults,
                                                const std::string& source) {
    const nlohmann::json base = nlohmann::json::parse(defaults.to_json());
    std::vector<GenerationRequest> jobs;
    std::istringstream in(text);
    std::string raw;
    for (int line_no = 1; std::getline(in, raw); ++line_no) {
        if (line_no == 1 && raw.compare(0, 3, "\xEF\xBB\xBF") == 0) raw.erase(0, 3);  // byte-order mark
        const std::string line = trim(raw);
        if (line.empty() || line[0] == '#') continue;
        const std::string where = strfmt("%s, line %d", source.c_str(), line_no);
        GenerationRequest r = defaults;
        if (line[0] == '{') r = parse_json_line(line, base, where);
        else r.prompt = line;
        WAN_CHECK(!trim(r.prompt).empty(), "%s: the prompt is empty", where.c_str());
        const std::vector<std::string> problems = r.validate();
        if (!problems.empty()) {
            std::string all;
            for (const std::string& p : problems) all += (all.empty() ? "" : "; ") + p;
            WAN_THROW("%s: %s", where.c_str(), all.c_str());
        }
        r.job_id = 0;
        jobs.push_back(std::move(r));
    }
    return jobs;
}

std::vector<GenerationRequest> read_batch_file(const std::string& path, const GenerationRequest& defaults) {
    std::ifstream f(path, std::ios::binary);
    WAN_CHECK(f.good(), "--batch %s: cannot open the file (%s)", path.c_str(), std::strerror(errno));
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    WAN_CHECK(!f.bad(), "--batch %s: cannot read the file", path.c_str());
    std::vector<GenerationRequest> jobs = parse_batch_text(text, defaults, "--batch " + path);
    WAN_CHECK(!jobs.empty(), "--batch %s: no prompts in the file (one per line, or JSON lines)", path.c_str());
    return jobs;
}

}  // namespace wan
