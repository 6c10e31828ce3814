// Private to engine/extend: constructors of the two back ends behind make_prompt_extender().
#pragma once

#include "extend/extend.h"

namespace wan::extend {

/// Remote: DashScope text generation (extend/dashscope.cpp). Ref: wan21-reference.md §9.2.
std::unique_ptr<PromptExtender> make_dashscope_extender(const std::string& model, const ExtendOptions& options);
/// Local: Qwen2.5-Instruct from a folder (extend/local_qwen.cpp). Ref: wan21-reference.md §9.3.
std::unique_ptr<PromptExtender> make_local_qwen_extender(const std::string& model, const ExtendOptions& options);

/// The part of extend() both back ends share. `body` fills in a result that already holds the original
/// prompt, the seed to use (resolve_seed) and the system prompt (the options' or the one for
/// `target_lang`); any exception it throws becomes a failed result that keeps the original prompt.
template <class F>
ExtendResult guarded_extend(const std::string& prompt, const std::string& target_lang, int64_t seed,
                            const ExtendOptions& options, const char* method, F&& body) {
    ExtendResult r;
    r.prompt = prompt;
    r.seed = resolve_seed(seed);
    try {
        r.system_prompt = options.system_prompt.empty() ? system_prompt_for(target_lang) : options.system_prompt;
        body(r);
    } catch (const std::exception& e) {
        r.ok = false;
        r.prompt = prompt;
        r.message = std::string(method) + ": " + e.what();
    }
    return r;
}

}  // namespace wan::extend
