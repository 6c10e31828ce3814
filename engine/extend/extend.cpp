// Shared parts of prompt extension: system prompt choice, seeds, ChatML, model folder lookup, factory.
// Ref: wan21-reference.md §9.1 (interface), §9.3 (model names), §9.4 (callers).
#include "extend/extend.h"

#include "core/core.h"
#include "core/fs.h"
#include "extend/backends.h"

#include <algorithm>
#include <cstdlib>
#include <random>

#include <dirent.h>

namespace wan::extend {

namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

bool is_model_dir(const std::string& p) { return fs::is_dir(p) && fs::is_file(p + "/config.json"); }

std::string env_or_empty(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : std::string();
}

std::vector<std::string> list_subdirs(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        const std::string n = e->d_name;
        if (n != "." && n != ".." && fs::is_dir(dir + "/" + n)) out.push_back(n);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

std::string system_prompt_for(const std::string& target_lang) {
    // Upstream: task_type = (tar_lang == "zh") for T2V; zh is the default everywhere (§9.1, §9.4).
    const std::string l = lower(target_lang);
    if (l.empty() || l == "zh") return kLmZhSysPrompt;
    if (l == "en") return kLmEnSysPrompt;
    WAN_THROW("prompt extension target language '%s' is not supported: use \"zh\" or \"en\"", target_lang.c_str());
}

int64_t resolve_seed(int64_t seed) {
    if (seed >= 0) return seed;
    // Upstream draws random.randint(0, sys.maxsize).
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    return static_cast<int64_t>(rng() >> 1);
}

std::string chatml_prompt(const std::string& system, const std::string& user) {
    return "<|im_start|>system\n" + system + "<|im_end|>\n<|im_start|>user\n" + user +
           "<|im_end|>\n<|im_start|>assistant\n";
}

std::string resolve_qwen_model_dir(const std::string& model_in, const std::vector<std::string>& extra_dirs) {
    std::string model = model_in.empty() ? "Qwen2.5_14B" : model_in;  // upstream default (text)
    if (is_model_dir(model)) return model;
    WAN_CHECK(!fs::is_dir(model), "local Qwen model folder '%s' has no config.json (expected a Hugging Face "
              "Qwen2.5-Instruct folder: config.json, tokenizer.json, model*.safetensors)", model.c_str());
    // Upstream aliases (§9.3). The VL ones serve image-to-video only.
    static const std::pair<const char*, const char*> kAliases[] = {
        {"Qwen2.5_3B", "Qwen/Qwen2.5-3B-Instruct"},
        {"Qwen2.5_7B", "Qwen/Qwen2.5-7B-Instruct"},
        {"Qwen2.5_14B", "Qwen/Qwen2.5-14B-Instruct"},
    };
    for (const auto& [alias, id] : kAliases)
        if (model == alias) model = id;
    WAN_CHECK(model.rfind("QwenVL", 0) != 0 && model.find("-VL-") == std::string::npos,
              "prompt extension model '%s' is a vision-language model (image-to-video only); text-to-video "
              "uses a text model such as Qwen/Qwen2.5-7B-Instruct",
              model_in.c_str());
    WAN_CHECK(model.find("..") == std::string::npos && !model.empty() && model[0] != '/',
              "local Qwen model '%s' is neither an existing folder nor a model name like Qwen/Qwen2.5-7B-Instruct",
              model_in.c_str());
    const size_t slash = model.find('/');
    const std::string base = slash == std::string::npos ? model : model.substr(slash + 1);

    std::vector<std::string> roots = extra_dirs;
    if (const std::string d = env_or_empty("WAN_MODELS_DIR"); !d.empty()) roots.push_back(d);
    const std::string home = env_or_empty("HOME");
    if (!home.empty()) roots.push_back(home + "/.cache/wanstudio/models");

    std::vector<std::string> looked;
    auto try_dir = [&](const std::string& p) {
        looked.push_back(p);
        return is_model_dir(p);
    };
    for (const auto& r : roots) {
        if (try_dir(r + "/" + model)) return r + "/" + model;
        if (base != model && try_dir(r + "/" + base)) return r + "/" + base;
    }
    // Hugging Face hub cache: <hub>/models--Org--Name/snapshots/<revision>/.
    std::vector<std::string> hubs;
    if (const std::string d = env_or_empty("HF_HUB_CACHE"); !d.empty()) hubs.push_back(d);
    if (const std::string d = env_or_empty("HF_HOME"); !d.empty()) hubs.push_back(d + "/hub");
    if (!home.empty()) hubs.push_back(home + "/.cache/huggingface/hub");
    std::string repo = "models--" + model;
    for (size_t p = repo.find('/'); p != std::string::npos; p = repo.find('/')) repo.replace(p, 1, "--");
    for (const auto& h : hubs) {
        const std::string snaps = h + "/" + repo + "/snapshots";
        looked.push_back(snaps + "/*");
        for (const auto& rev : list_subdirs(snaps))
            if (is_model_dir(snaps + "/" + rev)) return snaps + "/" + rev;
    }
    std::string where;
    for (const auto& l : looked) where += "\n  " + l;
    WAN_THROW("local Qwen model '%s' not found (nothing is downloaded). Put the Hugging Face folder of %s "
              "(config.json, tokenizer.json, model*.safetensors) in one of these places, or pass its path:%s",
              model_in.empty() ? "(default)" : model_in.c_str(), model.c_str(), where.c_str());
}

std::unique_ptr<PromptExtender> make_prompt_extender(const std::string& method, const std::string& model,
                                                     const ExtendOptions& options) {
    const std::string m = lower(method);
    if (m == "dashscope") return make_dashscope_extender(model, options);
    if (m == "local_qwen") return make_local_qwen_extender(model, options);
    WAN_THROW("unknown prompt extension method '%s': expected \"dashscope\" or \"local_qwen\"", method.c_str());
}

}  // namespace wan::extend
