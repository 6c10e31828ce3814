// WanStudio text module: prompt cleaning, the UMT5 SentencePiece tokenizer and the UMT5-XXL encoder that
// turns prompts into the context tensors the DiT cross-attends to.
// Ref: wan21-reference.md §2 (tokenizer) and §3 (encoder); upstream wan/modules/tokenizers.py, t5.py.
//
// Example:
//   auto ckpt = wan::io::CheckpointDir::locate(dir);
//   wan::text::TextEncoder te(ckpt, {c10::Device(c10::kCUDA, 0)});   // bf16 on CUDA, f32 on CPU
//   auto ctx = te.encode({prompt, wan::text::kDefaultNegativePrompt});  // one batched call, B = 2
//   // ctx[0]: [L_0, 4096], ctx[1]: [L_1, 4096]
#pragma once

#include "core/model_defaults.h"
#include "io/io.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <c10/util/Optional.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace wan::io {
struct ModelComponents;  // io/component_files.h
}

namespace wan::text {

namespace spm {
class UnigramModel;  // private: engine/text/spm.h
}

/// Upstream's default negative prompt; the text lives in core/model_defaults.h.
using wan::kDefaultNegativePrompt;

constexpr int64_t kPadId = 0;  ///< `<pad>`
constexpr int64_t kEosId = 1;  ///< `</s>`, appended after the content ids
constexpr int64_t kDefaultTextLen = 512;

// ---- cleaning ---------------------------------------------------------------------------------------

/// Upstream `whitespace_clean(basic_clean(text))` (§2.1). With `ftfy` true (what upstream does, and the
/// default everywhere else in this module) it first applies the deterministic part of `ftfy.fix_text`:
/// HTML unescape once (lines before the first '<'), ANSI terminal escapes removed, C1 controls decoded as
/// Windows-1252, Latin ligatures expanded, full/half-width forms and U+3000 mapped, curly quotes
/// straightened, line breaks normalised, control characters removed. NOT done: mojibake repair and NFC
/// (the tokenizer's NFKC subsumes NFC). Then html.unescape twice, strip, `\s+` → ' ', strip.
/// With `ftfy` false it reproduces the golden data's environment where ftfy was the identity.
/// Throws wan::Error when `text` is not valid UTF-8 (naming the byte offset).
std::string clean_text(const std::string& text, bool ftfy = true);

/// Throws wan::Error "<what> is not valid UTF-8: ..." naming the offset and the bad byte.
void check_utf8(const std::string& text, const std::string& what);

// ---- tokenizer --------------------------------------------------------------------------------------

/// Token ids of a batch of prompts. Ref: wan21-reference.md §2.2.
struct TokenizedBatch {
    at::Tensor ids;                ///< int64 [B, text_len]: content ids (≤ text_len-1), EOS, then 0 padding
    at::Tensor mask;               ///< int64 [B, text_len]: 1 on content + EOS, 0 on padding
    std::vector<int64_t> lengths;  ///< per prompt: content + EOS = sum of its mask row (1 ≤ L ≤ text_len)
    int64_t batch_size() const { return static_cast<int64_t>(lengths.size()); }
};

/// The UMT5 tokenizer: whitespace cleaning + SentencePiece (unigram, NFKC) on `spiece.model`, EOS appended,
/// truncated to `text_len - 1` content ids, right-padded with 0. No BOS. The SentencePiece part is our own
/// reader/encoder of the model file (identical ids to libsentencepiece's EncodeAsIds, checked by the test
/// text_spm_crosscheck): Debian's libsentencepiece bundles protobuf 3.14 and crashes any process that
/// also loads LibTorch's libprotobuf.
/// Not done: HF's matching of special-token strings typed in the prompt (`</s>`, `<extra_id_0>`).
class UMT5Tokenizer {
public:
    /// Throws when the file is missing ("tokenizer file not found: <path>") or not a SentencePiece model.
    explicit UMT5Tokenizer(const std::string& spiece_model_path, int64_t text_len = kDefaultTextLen);
    /// From the bytes of a SentencePiece model (e.g. the `spiece_model` tensor inside a T5 file); `source`
    /// names them in messages and is what path() returns.
    static UMT5Tokenizer from_bytes(const std::string& model_bytes, const std::string& source,
                                    int64_t text_len = kDefaultTextLen);
    ~UMT5Tokenizer();
    UMT5Tokenizer(UMT5Tokenizer&&) noexcept;
    UMT5Tokenizer& operator=(UMT5Tokenizer&&) noexcept;

    /// clean_text(text, /*ftfy=*/true).
    std::string clean(const std::string& text) const;
    /// SentencePiece ids of already cleaned text (no EOS, no truncation).
    std::vector<int> piece_ids(const std::string& cleaned) const;
    /// Cleans, tokenizes, truncates, appends EOS and pads every prompt. Invalid UTF-8 → wan::Error naming
    /// the prompt index.
    TokenizedBatch encode(const std::vector<std::string>& prompts) const;

    int64_t text_len() const { return text_len_; }
    int64_t vocab_size() const;
    const std::string& path() const { return path_; }

private:
    UMT5Tokenizer() = default;
    void check_special_ids() const;

    std::unique_ptr<spm::UnigramModel> sp_;
    std::string path_;
    int64_t text_len_ = kDefaultTextLen;
};

// ---- encoder ----------------------------------------------------------------------------------------

/// UMT5 encoder sizes, all read from the checkpoint's tensor shapes except `max_dist` and `eps` (§3.1).
struct UMT5Config {
    int64_t vocab = 256384;
    int64_t dim = 4096;
    int64_t dim_attn = 4096;  ///< num_heads × head_dim
    int64_t dim_ffn = 10240;
    int64_t num_heads = 64;
    int64_t num_layers = 24;
    int64_t num_buckets = 32;
    int64_t max_dist = 128;  ///< not stored in the checkpoint
    double eps = 1e-6;       ///< not stored in the checkpoint

    int64_t head_dim() const { return dim_attn / num_heads; }
    /// Infers the sizes from `store` and checks every key's presence and shape against them; throws
    /// wan::Error naming the file, the key, and the expected vs found shape.
    static UMT5Config from_store(const io::TensorStore& store);
};

/// Parameters of one encoder block, named after the checkpoint keys `blocks.{i}.<...>` (no biases).
struct T5BlockWeights {
    at::Tensor norm1;                  ///< norm1.weight [dim]
    at::Tensor q, k, v;                ///< attn.{q,k,v}.weight [dim_attn, dim]
    at::Tensor o;                      ///< attn.o.weight [dim, dim_attn]
    at::Tensor norm2;                  ///< norm2.weight [dim]
    at::Tensor gate;                   ///< ffn.gate.0.weight [dim_ffn, dim]
    at::Tensor fc1;                    ///< ffn.fc1.weight [dim_ffn, dim]
    at::Tensor fc2;                    ///< ffn.fc2.weight [dim, dim_ffn]
    at::Tensor pos_embedding;          ///< pos_embedding.embedding.weight [num_buckets, num_heads]
};

/// Where the encoder gets its parameters. The forward pass calls `acquire(i)` just before block i runs and
/// `release(i)` right after, so a sharded provider (FSDP style) can all-gather block i's parameters on
/// acquire and free them on release without touching the maths. Tensors returned must be on the
/// encoder's device in its compute dtype. `acquire` may return a reference that stays valid until the
/// matching `release`. The non-block tensors (embedding, final norm) are fetched the same way.
class T5WeightProvider {
public:
    virtual ~T5WeightProvider() = default;
    virtual int64_t num_blocks() const = 0;
    virtual const T5BlockWeights& acquire(int64_t i) = 0;
    virtual void release(int64_t /*i*/) {}
    virtual const at::Tensor& token_embedding() = 0;  ///< token_embedding.weight [vocab, dim]
    virtual const at::Tensor& final_norm() = 0;       ///< norm.weight [dim]
};

/// Default provider: every parameter resident on one device, loaded once from the checkpoint.
class ResidentT5Weights : public T5WeightProvider {
public:
    /// Loads every tensor of `cfg` from `store` onto `device` as `dtype` (bf16 file values upcast exactly).
    ResidentT5Weights(const io::TensorStore& store, const UMT5Config& cfg, c10::Device device, at::ScalarType dtype);
    int64_t num_blocks() const override { return static_cast<int64_t>(blocks_.size()); }
    const T5BlockWeights& acquire(int64_t i) override;
    const at::Tensor& token_embedding() override { return token_embedding_; }
    const at::Tensor& final_norm() override { return norm_; }

private:
    at::Tensor token_embedding_;
    std::vector<T5BlockWeights> blocks_;
    at::Tensor norm_;
};

/// Weights in host memory, copied to `device` one block at a time (acquire) and dropped after (release).
class StreamingT5Weights : public T5WeightProvider {
public:
    StreamingT5Weights(const io::TensorStore& store, const UMT5Config& cfg, c10::Device device, at::ScalarType dtype);
    int64_t num_blocks() const override { return static_cast<int64_t>(host_.size()); }
    const T5BlockWeights& acquire(int64_t i) override;
    void release(int64_t i) override;
    const at::Tensor& token_embedding() override { return embedding_; }  ///< on the host
    const at::Tensor& final_norm() override { return norm_; }

private:
    c10::Device device_;
    at::ScalarType dtype_;
    at::Tensor embedding_, norm_;
    std::vector<T5BlockWeights> host_;
    T5BlockWeights current_;
};

/// Encoder options. `--t5_cpu` upstream = device CPU.
struct UMT5Options {
    /// Device to run on (CPU default).
    c10::Device device = c10::Device(c10::kCPU);
    /// Keep the weights in host memory and bring one block at a time to the compute device and dtype while
    /// encoding; the token embedding is looked up on the host. CUDA: the GPU holds ~1/24 of the encoder instead
    /// of 11.4 GB, at the cost of one host→device pass per encode (upstream's offload_model moves the whole
    /// encoder instead). CPU (--t5-cpu): the host copy stays bf16 as in the file, 11.4 GB instead of 22.7 GB
    /// of f32, each block converted when it runs (exact: bf16 → f32). See StreamingT5Weights.
    bool stream_weights = false;
    /// Compute dtype; default float32 on the CPU (what the golden data holds: bf16 weights upcast) and
    /// bfloat16 elsewhere (upstream default: bf16 tensors, f32 rsqrt in the norm, f32 softmax, §3.3).
    c10::optional<at::ScalarType> dtype;
    at::ScalarType resolved_dtype() const;
};

/// UMT5-XXL encoder in plain ATen ops. Ref: wan21-reference.md §3.3–3.6.
class UMT5Encoder {
public:
    /// Sizes from `store`'s shapes; weights resident on `opts.device`.
    UMT5Encoder(const io::TensorStore& store, UMT5Options opts = {});
    /// Opens `t5_path` (models_t5_umt5-xxl-enc-bf16.pth or safetensors).
    static UMT5Encoder from_file(const std::string& t5_path, UMT5Options opts = {});
    /// Custom parameter source (e.g. a sharded provider); `cfg` must describe its tensors.
    UMT5Encoder(UMT5Config cfg, std::shared_ptr<T5WeightProvider> weights, UMT5Options opts = {});

    /// Encodes a tokenized batch in one forward pass: one `[L_i, dim]` tensor per prompt (compute dtype,
    /// on the encoder's device), trimmed to its true length.
    std::vector<at::Tensor> encode(const TokenizedBatch& batch);

    /// The full forward: ids, mask int64 [B, S] (any device) → [B, S, dim]. When `intermediates` is given
    /// it receives the embedding, each block's output and the final norm output ([B, S, dim] each).
    at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask, std::vector<at::Tensor>* intermediates = nullptr);

    /// Bucket index for query i, key j as a [S, S] int64 CPU table (rel = j - i), exact integer bucket
    /// edges (§3.5). Public for tests.
    static at::Tensor relative_buckets(int64_t seq_len, int64_t num_buckets, int64_t max_dist);

    const UMT5Config& config() const { return cfg_; }
    c10::Device device() const { return opts_.device; }
    at::ScalarType dtype() const { return dtype_; }

private:
    at::Tensor bucket_table(int64_t seq_len);  // cached on the device

    UMT5Config cfg_;
    std::shared_ptr<T5WeightProvider> weights_;
    UMT5Options opts_;
    at::ScalarType dtype_;
    at::Tensor buckets_;  // [S, S] int64 on the device, for the last S used
};

/// Tokenizer + encoder. Encoding the prompt and the negative prompt is ONE batched call.
class TextEncoder {
public:
    /// From a checkpoint directory: its T5 file and tokenizer; text_len from its config.json.
    explicit TextEncoder(const io::CheckpointDir& ckpt, UMT5Options opts = {});
    /// From resolved components (a folder and/or single files, io/component_files.h): the T5 file in upstream
    /// or Hugging Face names, the tokenizer file or the one inside the T5 file; text_len from the DiT config.
    explicit TextEncoder(const io::ModelComponents& components, UMT5Options opts = {});
    TextEncoder(const std::string& t5_path, const std::string& spiece_model_path, UMT5Options opts = {},
                int64_t text_len = kDefaultTextLen);
    /// From parts (e.g. an encoder with a sharded weight provider).
    TextEncoder(UMT5Tokenizer tokenizer, UMT5Encoder encoder);

    /// One `[L_i, dim]` context per prompt (compute dtype, encoder device), in one forward of batch B.
    std::vector<at::Tensor> encode(const std::vector<std::string>& prompts);

    const UMT5Tokenizer& tokenizer() const { return tokenizer_; }
    UMT5Encoder& encoder() { return encoder_; }

private:
    UMT5Tokenizer tokenizer_;
    UMT5Encoder encoder_;
};

}  // namespace wan::text
