// The "local_qwen" back end: a Qwen2.5-Instruct folder run with the engine's own Qwen2 decoder.
// Ref: wan21-reference.md §9.3. Differences from upstream, on purpose: the seed IS applied (upstream does
// not seed, so its local extension is not reproducible), and an empty answer is a failure that keeps the
// original prompt (upstream would return status True with an empty prompt).
#include "backends.h"

#include "core/core.h"
#include "extend/qwen.h"

#include <algorithm>
#include <chrono>
#include <optional>

namespace wan::extend {

namespace {

at::ScalarType parse_dtype(const std::string& name, const c10::Device& device) {
    if (name.empty() || name == "auto") return device.is_cuda() ? at::kBFloat16 : at::kFloat;
    if (name == "float32" || name == "f32" || name == "fp32") return at::kFloat;
    if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
    if (name == "float16" || name == "f16" || name == "fp16") return at::kHalf;
    WAN_THROW("compute_dtype '%s' not supported: expected auto, float32, bfloat16 or float16", name.c_str());
}

c10::Device parse_device(const std::string& name) {
    try {
        return c10::Device(name.empty() ? std::string("cpu") : name);
    } catch (const std::exception&) {
        WAN_THROW("device '%s' not understood: expected cpu, cuda or cuda:N", name.c_str());
    }
}

class LocalQwenExtender final : public PromptExtender {
public:
    LocalQwenExtender(std::string dir, const ExtendOptions& options)
        : dir_(std::move(dir)), options_(options), device_(parse_device(options.device)),
          dtype_(parse_dtype(options.compute_dtype, device_)) {
        tokenizer_ = QwenTokenizer::from_file(dir_ + "/tokenizer.json");
        config_ = QwenConfig::from_json_file(dir_ + "/config.json");
        gen_ = QwenGenerationConfig::from_json_file(dir_ + "/generation_config.json");
    }

    std::string method() const override { return "local_qwen"; }
    std::string model() const override { return dir_; }

    ExtendResult extend(const std::string& prompt, const std::string& target_lang, int64_t seed) override {
        return guarded_extend(prompt, target_lang, seed, options_, "local_qwen", [&](ExtendResult& r) {
            const auto t0 = std::chrono::steady_clock::now();
            const std::vector<int64_t> ids = tokenizer_.encode(chatml_prompt(r.system_prompt, prompt));
            if (!model_) {
                WAN_LOG_INFO("prompt extension: loading %s on %s", dir_.c_str(), device_.str().c_str());
                model_ = QwenModel::load(dir_, device_, dtype_);
            }
            SamplingParams sp = sampling_params(r.seed);
            std::vector<int64_t> out;
            try {
                out = qwen_generate(*model_, ids, sp);
            } catch (...) {
                release_device_copy();
                throw;
            }
            release_device_copy();
            const std::string text = tokenizer_.decode(out, /*skip_special_tokens=*/true);
            const double secs =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            r.message = strfmt("local_qwen: %zu prompt tokens, %zu new tokens in %.1f s (%s)", ids.size(),
                               out.size(), secs, sp.do_sample ? "sampled" : "greedy");
            if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
                r.ok = false;
                r.message = "local_qwen: the model returned an empty prompt; keeping the original (" + r.message + ")";
                return;
            }
            r.ok = true;
            r.prompt = text;
        });
    }

private:
    SamplingParams sampling_params(int64_t seed) const {
        SamplingParams sp;
        switch (options_.decoding) {
            case ExtendOptions::Decoding::Greedy: sp.do_sample = false; break;
            case ExtendOptions::Decoding::Sample: sp.do_sample = true; break;
            default: sp.do_sample = gen_.do_sample;
        }
        sp.temperature = options_.temperature >= 0 ? options_.temperature : gen_.temperature;
        sp.top_p = options_.top_p >= 0 ? options_.top_p : gen_.top_p;
        sp.top_k = options_.top_k >= 0 ? options_.top_k : gen_.top_k;
        sp.repetition_penalty = options_.repetition_penalty >= 0 ? options_.repetition_penalty : gen_.repetition_penalty;
        sp.max_new_tokens = options_.max_new_tokens;
        sp.seed = static_cast<uint64_t>(seed);
        // Stop on generation_config's eos ids, config.json's, and the ChatML end / text end tokens.
        sp.stop_ids = gen_.eos_token_ids;
        sp.stop_ids.insert(sp.stop_ids.end(), config_.eos_token_ids.begin(), config_.eos_token_ids.end());
        for (const char* t : {"<|im_end|>", "<|endoftext|>"})
            if (const int64_t id = tokenizer_.token_to_id(t); id >= 0) sp.stop_ids.push_back(id);
        return sp;
    }

    /// Upstream moves the model back to the CPU after each call so that the GPU is free for the video
    /// model; here the device copy is dropped (the weights stay mapped from the file).
    void release_device_copy() {
        if (device_.is_cuda() && options_.offload_after_extend) model_.reset();
    }

    std::string dir_;
    ExtendOptions options_;
    c10::Device device_;
    at::ScalarType dtype_;
    QwenTokenizer tokenizer_;
    QwenConfig config_;
    QwenGenerationConfig gen_;
    std::optional<QwenModel> model_;
};

}  // namespace

std::unique_ptr<PromptExtender> make_local_qwen_extender(const std::string& model, const ExtendOptions& options) {
    const std::string dir = resolve_qwen_model_dir(model, options.model_search_dirs);
    return std::make_unique<LocalQwenExtender>(dir, options);
}

}  // namespace wan::extend
