// Private to engine/extend (and its tests): the local Qwen2 language model used by the "local_qwen" prompt
// extender — the byte-level BPE tokenizer of tokenizer.json, the Qwen2 decoder with a KV cache, and
// generation (greedy or seeded sampling). Ref: wan21-reference.md §9.3; the maths mirrors Hugging Face's
// Qwen2ForCausalLM (transformers 4/5) and the `tokenizers` pipeline that Qwen2.5 folders declare.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace wan::extend {

// ---- text ---------------------------------------------------------------------------------------------

/// Unicode Normalization Form C with built-in tables (engine/extend/unicode_tables.inc, Unicode 14 as
/// generated). Invalid UTF-8 bytes become U+FFFD. ASCII-only text is returned unchanged at once.
std::string nfc_normalize(const std::string& utf8);

/// The tokenizer of a Qwen2 / Qwen2.5 folder, read from its `tokenizer.json`: added tokens matched in the
/// raw text first (leftmost, longest), then on each remaining span: NFC normaliser, the Split pre-tokenizer
/// regex (behaviour Isolated) through PCRE2 in UTF + Unicode-property mode, ByteLevel byte→char mapping,
/// BPE with ranked merges. Decoding maps back to bytes and to UTF-8 (invalid sequences → U+FFFD, as the
/// Hugging Face decoder). Any other pipeline in the file is refused with a message naming the part.
/// Not supported (not used by Qwen): lstrip/rstrip/single_word flags of added tokens, BPE dropout.
class QwenTokenizer {
public:
    QwenTokenizer();
    ~QwenTokenizer();
    QwenTokenizer(QwenTokenizer&&) noexcept;
    QwenTokenizer& operator=(QwenTokenizer&&) noexcept;

    static QwenTokenizer from_file(const std::string& tokenizer_json_path);

    std::vector<int64_t> encode(const std::string& text) const;
    std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = true) const;
    /// Id of a vocabulary or added token; -1 when absent.
    int64_t token_to_id(const std::string& token) const;
    /// One more than the largest id (vocabulary and added tokens).
    int64_t size() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// ---- model --------------------------------------------------------------------------------------------

/// The fields of a Qwen2 `config.json` the decoder needs.
struct QwenConfig {
    int64_t hidden_size = 0;
    int64_t intermediate_size = 0;
    int64_t num_layers = 0;
    int64_t num_heads = 0;
    int64_t num_kv_heads = 0;
    int64_t head_dim = 0;  ///< `head_dim` when present, else hidden_size / num_heads
    int64_t vocab_size = 0;
    double rms_eps = 1e-6;
    double rope_theta = 10000.0;  ///< top-level `rope_theta` (transformers 4) or `rope_parameters.rope_theta` (5)
    bool tie_word_embeddings = false;
    std::vector<int64_t> eos_token_ids;
    static QwenConfig from_json_file(const std::string& path);
};

/// `generation_config.json` (Hugging Face defaults for what it leaves out; an absent file → greedy).
struct QwenGenerationConfig {
    bool do_sample = false;
    double temperature = 1.0;
    double top_p = 1.0;
    int top_k = 50;
    double repetition_penalty = 1.0;
    std::vector<int64_t> eos_token_ids;
    static QwenGenerationConfig from_json_file(const std::string& path);  ///< missing file → defaults
};

/// The Qwen2 decoder: embeddings, N × (RMSNorm → GQA attention with q/k/v bias and RoPE → residual,
/// RMSNorm → SwiGLU MLP → residual), final RMSNorm, lm_head (tied to the embeddings when
/// `tie_word_embeddings` or when the file has no `lm_head.weight`).
class QwenModel {
public:
    /// Per-layer key/value cache, preallocated for `capacity` positions.
    struct Cache {
        std::vector<at::Tensor> k, v;  // each [Hkv, capacity, D]
        int64_t length = 0;
        int64_t capacity = 0;
    };

    QwenModel();
    ~QwenModel();
    QwenModel(QwenModel&&) noexcept;
    QwenModel& operator=(QwenModel&&) noexcept;

    /// Loads `config.json` and the weights (`model.safetensors`, or the shards listed by
    /// `model.safetensors.index.json`) of folder `dir` onto `device` in `dtype`. On the CPU, weights whose
    /// file dtype already is `dtype` stay zero-copy views of the mapped file.
    static QwenModel load(const std::string& dir, c10::Device device, at::ScalarType dtype);

    const QwenConfig& config() const;
    c10::Device device() const;
    at::ScalarType dtype() const;

    Cache make_cache(int64_t capacity) const;
    /// Runs `ids` ([L] int64) at positions cache.length … cache.length+L-1 (0… without a cache), appending
    /// their keys/values to `cache` when given. Returns float32 logits on the CPU: [L, vocab], or [1, vocab]
    /// for the last position only when `last_only`.
    at::Tensor forward(const std::vector<int64_t>& ids, Cache* cache, bool last_only) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// How to pick tokens (Hugging Face generate() semantics and processor order: repetition penalty, then,
/// when sampling, temperature → top-k → top-p → multinomial).
struct SamplingParams {
    bool do_sample = false;
    double temperature = 1.0;
    double top_p = 1.0;
    int top_k = 0;  ///< 0 = off
    double repetition_penalty = 1.0;
    int max_new_tokens = 512;
    std::vector<int64_t> stop_ids;
    uint64_t seed = 0;  ///< seeds a CPU generator: sampling is reproducible for a given seed
};

/// Continues `prompt_ids`; returns the new tokens, the stop token included when one was produced.
std::vector<int64_t> qwen_generate(const QwenModel& model, const std::vector<int64_t>& prompt_ids,
                                   const SamplingParams& params);

}  // namespace wan::extend
