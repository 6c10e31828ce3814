// Prompt extension ("Prompt Enhance"): rewrites a short user prompt into a richer one with a language
// model, either remotely through Alibaba's DashScope service or locally with a Qwen2.5-Instruct model.
// Ref: wan21-reference.md §9 (upstream wan/utils/prompt_extend.py).
//
// This header has no LibTorch or curl includes, so the app (GUI button, --extend-prompt) can use it with
// the core headers only. Typical use:
//
//   wan::extend::ExtendOptions opt;                       // defaults as upstream
//   auto ext = wan::extend::make_prompt_extender("local_qwen", "Qwen/Qwen2.5-7B-Instruct", opt);
//   wan::extend::ExtendResult r = ext->extend(prompt, "zh", seed);   // never throws
//   if (r.ok) prompt = r.prompt;                          // on failure r.prompt is the original prompt
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace wan::extend {

/// Upstream's T2V system prompts, byte-exact (wan21-reference.md Appendix B.2 / B.3).
extern const char* const kLmZhSysPrompt;  ///< LM_ZH_SYS_PROMPT (target "zh", the default)
extern const char* const kLmEnSysPrompt;  ///< LM_EN_SYS_PROMPT (target "en")

/// Outcome of one extension (upstream PromptOutput). Never an exception: failures are reported here.
struct ExtendResult {
    bool ok = false;
    std::string prompt;         ///< the extended prompt, or the original one when !ok
    std::string message;        ///< reason on failure; on success the raw response (DashScope: its JSON)
    int64_t seed = 0;           ///< the seed used (drawn at random when the caller passed a negative one)
    std::string system_prompt;  ///< the system prompt sent with the request
};

/// Settings of both back ends. Defaults are upstream's (§9.2, §9.3) unless said otherwise.
struct ExtendOptions {
    /// Replaces the system prompt chosen by target language when not empty.
    std::string system_prompt;

    // ---- DashScope (remote) ----
    /// API key; empty → environment variable DASH_API_KEY.
    std::string api_key;
    /// Base URL; empty → environment variable DASH_API_URL, else https://dashscope.aliyuncs.com/api/v1.
    std::string base_url;
    /// Connection timeout (ms) and whole-request timeout (ms) of each try.
    int64_t connect_timeout_ms = 10000;
    int64_t timeout_ms = 120000;
    /// Tries in all (upstream retry_times = 4); only transient failures are retried (connection errors,
    /// timeouts, HTTP 429 and 5xx).
    int max_tries = 4;
    /// Wait before the second try (ms); doubled before each further try.
    int64_t retry_backoff_ms = 1000;
    /// Largest response body accepted (bytes); a larger one is refused as it arrives (an answer is a few KB).
    int64_t max_response_bytes = int64_t(1) << 20;

    // ---- local Qwen ----
    /// "cpu", "cuda", "cuda:N". CUDA computes in bf16, the CPU in float32 (see compute_dtype).
    std::string device = "cpu";
    /// "auto" (CPU: float32, CUDA: bfloat16), "float32", "bfloat16" or "float16".
    std::string compute_dtype = "auto";
    /// Upstream generate(max_new_tokens=512).
    int max_new_tokens = 512;
    /// Token choice: as generation_config.json says (its do_sample; Qwen2.5-Instruct samples), always greedy,
    /// or always sampled (with the file's temperature / top-p / top-k unless overridden below). Sampling is
    /// seeded with the call's seed, so a given seed reproduces its result (upstream does not seed).
    enum class Decoding { FromConfig = 1, Greedy, Sample };
    Decoding decoding = Decoding::FromConfig;
    /// Overrides of generation_config.json (a negative value keeps the file's value, or the Hugging Face
    /// default when the file does not set it: temperature 1, top_p 1, top_k 50, repetition_penalty 1).
    double temperature = -1;
    double top_p = -1;
    int top_k = -1;
    double repetition_penalty = -1;
    /// On CUDA, release the device copy of the weights after each call (upstream moves the model back to
    /// the CPU after extending, leaving the GPU to the video model). The file mapping stays open.
    bool offload_after_extend = true;
    /// Extra folders searched for a model given by name (before $WAN_MODELS_DIR and the caches).
    std::vector<std::string> model_search_dirs;
};

/// One prompt-extension back end. Implementations are not thread-safe: call from one thread at a time.
class PromptExtender {
public:
    virtual ~PromptExtender() = default;
    /// Extends `prompt` into the target language ("zh" or "en", case-insensitive; empty → "zh").
    /// `seed` < 0 → a random seed in [0, 2^63-1] is drawn and reported in the result. Never throws.
    virtual ExtendResult extend(const std::string& prompt, const std::string& target_lang, int64_t seed) = 0;
    /// "dashscope" or "local_qwen".
    virtual std::string method() const = 0;
    /// The model used ("qwen-plus", or the resolved local folder).
    virtual std::string model() const = 0;
    /// A flag that cancels extend() calls while it is set (nullptr: none); the result then says "cancelled".
    /// DashScope polls it during a request and between tries. The flag must outlive the calls it is set for.
    void set_cancel_flag(const std::atomic<bool>* flag) { cancel_ = flag; }

protected:
    bool cancel_requested() const { return cancel_ != nullptr && cancel_->load(); }

private:
    const std::atomic<bool>* cancel_ = nullptr;
};

/// Why the DashScope base URL `url` is refused, or "" when it may carry the API key: https, or plain http to this
/// machine only (localhost, 127.0.0.0/8, [::1]: a local stand-in, as the tests use). Anything else would send the
/// key in clear. `source` names where the URL came from, for the message (e.g. "DASH_API_URL").
std::string dashscope_url_refusal(const std::string& url, const std::string& source);

/// Creates a back end. `method`: "dashscope" or "local_qwen" (upstream --prompt_extend_method).
/// `model`: empty → upstream default (dashscope: "qwen-plus"; local_qwen: "Qwen/Qwen2.5-14B-Instruct").
/// For local_qwen it is a folder, or a name resolved by resolve_qwen_model_dir(); the folder's config and
/// tokenizer are read now, the weights on the first extend().
/// Throws wan::Error for an unknown method, or a local model that cannot be found or read. The DashScope
/// back end does not check the key here: a missing key is reported by extend().
std::unique_ptr<PromptExtender> make_prompt_extender(const std::string& method, const std::string& model,
                                                     const ExtendOptions& options = {});

/// The system prompt for a target language: "zh" (or empty) → kLmZhSysPrompt, "en" → kLmEnSysPrompt
/// (case-insensitive). Throws wan::Error for anything else.
std::string system_prompt_for(const std::string& target_lang);

/// `seed` if >= 0, else a fresh random seed in [0, 2^63-1].
int64_t resolve_seed(int64_t seed);

/// The ChatML text Qwen2.5-Instruct's chat template renders for a system + user pair, with the generation
/// prompt: "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n".
std::string chatml_prompt(const std::string& system, const std::string& user);

/// Finds the folder of a local Qwen model (§9.3 names, nothing is downloaded):
///  - an existing folder with a config.json is used as is;
///  - upstream aliases are mapped (Qwen2.5_3B → Qwen/Qwen2.5-3B-Instruct, Qwen2.5_7B, Qwen2.5_14B);
///  - a name "Org/Name" (or "Name") is looked for, in this order, in each of `extra_dirs`, $WAN_MODELS_DIR,
///    ~/.cache/wanstudio/models (as <dir>/Org/Name and <dir>/Name), then the Hugging Face cache
///    ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub: models--Org--Name/snapshots/*).
/// Throws wan::Error listing every place it looked. The vision-language aliases (QwenVL2.5_*) are refused
/// (image-to-video only).
std::string resolve_qwen_model_dir(const std::string& model, const std::vector<std::string>& extra_dirs = {});

/// A model's text made fit for a prompt box, a JSON file and MP4 tags (C strings): invalid UTF-8 becomes
/// U+FFFD, control characters other than tab and newline (NUL included) are dropped, ends are trimmed.
/// Applied to every extended prompt: a sampled model may emit any token, e.g. the tiny random test model.
std::string clean_model_text(const std::string& text);

}  // namespace wan::extend
