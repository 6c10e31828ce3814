// The Qwen2 decoder (Qwen2.5-Instruct) with a KV cache, and generation. Ref: wan21-reference.md §9.3; the
// maths follows Hugging Face Qwen2ForCausalLM (eager attention): RMSNorm in float32, rotate-half RoPE with
// float32 cos/sin cast to the compute dtype, softmax in float32, SwiGLU MLP.
#include "extend/qwen.h"

#include "core/core.h"
#include "core/fs.h"
#include "io/io.h"

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <fstream>

namespace wan::extend {

namespace {

nlohmann::json read_json(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    WAN_CHECK(f.good(), "cannot open '%s'", path.c_str());
    try {
        return nlohmann::json::parse(f);
    } catch (const std::exception& e) {
        WAN_THROW("%s: not valid JSON (%s)", path.c_str(), e.what());
    }
}

/// `eos_token_id` may be an int or a list of ints.
std::vector<int64_t> read_ids(const nlohmann::json& j, const char* key) {
    std::vector<int64_t> ids;
    if (!j.contains(key) || j[key].is_null()) return ids;
    if (j[key].is_array()) {
        for (const auto& v : j[key]) ids.push_back(v.get<int64_t>());
    } else {
        ids.push_back(j[key].get<int64_t>());
    }
    return ids;
}

std::string shape_str(const std::vector<int64_t>& s) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

int64_t need_int(const nlohmann::json& j, const char* key, const std::string& path) {
    WAN_CHECK(j.contains(key) && j[key].is_number_integer(), "%s: missing integer field '%s'", path.c_str(), key);
    return j[key].get<int64_t>();
}

}  // namespace

QwenConfig QwenConfig::from_json_file(const std::string& path) {
    const nlohmann::json j = read_json(path);
    QwenConfig c;
    const std::string type = j.value("model_type", "");
    WAN_CHECK(type == "qwen2", "%s: model_type is '%s', expected 'qwen2' (a Qwen2 / Qwen2.5 text model)",
              path.c_str(), type.c_str());
    c.hidden_size = need_int(j, "hidden_size", path);
    c.intermediate_size = need_int(j, "intermediate_size", path);
    c.num_layers = need_int(j, "num_hidden_layers", path);
    c.num_heads = need_int(j, "num_attention_heads", path);
    c.num_kv_heads = j.contains("num_key_value_heads") ? need_int(j, "num_key_value_heads", path) : c.num_heads;
    c.vocab_size = need_int(j, "vocab_size", path);
    WAN_CHECK(c.num_heads > 0 && c.num_kv_heads > 0 && c.num_heads % c.num_kv_heads == 0,
              "%s: num_attention_heads %lld must be a multiple of num_key_value_heads %lld", path.c_str(),
              static_cast<long long>(c.num_heads), static_cast<long long>(c.num_kv_heads));
    if (j.contains("head_dim") && j["head_dim"].is_number_integer()) {
        c.head_dim = j["head_dim"].get<int64_t>();
    } else {
        WAN_CHECK(c.hidden_size % c.num_heads == 0, "%s: hidden_size %lld not divisible by %lld heads",
                  path.c_str(), static_cast<long long>(c.hidden_size), static_cast<long long>(c.num_heads));
        c.head_dim = c.hidden_size / c.num_heads;
    }
    WAN_CHECK(c.head_dim % 2 == 0, "%s: head_dim %lld must be even for RoPE", path.c_str(),
              static_cast<long long>(c.head_dim));
    c.rms_eps = j.value("rms_norm_eps", 1e-6);
    // transformers 4 writes a top-level rope_theta, transformers 5 rope_parameters.rope_theta.
    if (j.contains("rope_theta") && j["rope_theta"].is_number()) {
        c.rope_theta = j["rope_theta"].get<double>();
    } else if (j.contains("rope_parameters") && j["rope_parameters"].is_object() &&
               j["rope_parameters"].contains("rope_theta")) {
        c.rope_theta = j["rope_parameters"]["rope_theta"].get<double>();
    }
    for (const char* k : {"rope_scaling", "rope_parameters"}) {
        if (j.contains(k) && j[k].is_object()) {
            const std::string rt = j[k].value("rope_type", j[k].value("type", "default"));
            WAN_CHECK(rt == "default", "%s: %s.rope_type '%s' is not supported (only 'default' RoPE)",
                      path.c_str(), k, rt.c_str());
        }
    }
    c.tie_word_embeddings = j.value("tie_word_embeddings", false);
    c.eos_token_ids = read_ids(j, "eos_token_id");
    return c;
}

QwenGenerationConfig QwenGenerationConfig::from_json_file(const std::string& path) {
    QwenGenerationConfig g;
    if (!fs::is_file(path)) return g;
    const nlohmann::json j = read_json(path);
    g.do_sample = j.value("do_sample", false);
    if (j.contains("temperature") && j["temperature"].is_number()) g.temperature = j["temperature"].get<double>();
    if (j.contains("top_p") && j["top_p"].is_number()) g.top_p = j["top_p"].get<double>();
    if (j.contains("top_k") && j["top_k"].is_number()) g.top_k = j["top_k"].get<int>();
    if (j.contains("repetition_penalty") && j["repetition_penalty"].is_number())
        g.repetition_penalty = j["repetition_penalty"].get<double>();
    g.eos_token_ids = read_ids(j, "eos_token_id");
    return g;
}

// ---- model ------------------------------------------------------------------------------------------------

struct QwenModel::Impl {
    QwenConfig cfg;
    c10::Device device{c10::kCPU};
    at::ScalarType dtype = at::kFloat;
    io::TensorStore store;  // keeps the mapping alive for zero-copy CPU weights
    struct Layer {
        at::Tensor in_norm, post_norm;  // [C]
        at::Tensor q_w, q_b, k_w, k_b, v_w, v_b, o_w;
        at::Tensor gate_w, up_w, down_w;
    };
    std::vector<Layer> layers;
    at::Tensor embed;    // [V, C]
    at::Tensor norm;     // [C]
    at::Tensor lm_head;  // [V, C] (the embedding when tied)
    at::Tensor inv_freq;  // [D/2] float32 on device

    at::Tensor weight(const std::string& name, std::vector<int64_t> shape) {
        const auto& info = store.info(name);
        WAN_CHECK(info.shape == shape, "%s: tensor '%s' has shape %s, expected %s for this config.json",
                  store.source().c_str(), name.c_str(), shape_str(info.shape).c_str(), shape_str(shape).c_str());
        if (device.is_cpu() && info.dtype == dtype) return store.get(name);
        return store.load(name, device, dtype);
    }

    at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w) const {
        // Hugging Face Qwen2RMSNorm: statistics in float32, result cast back before the weight multiply.
        const at::Tensor xf = x.to(at::kFloat);
        const at::Tensor var = xf.pow(2).mean(-1, /*keepdim=*/true);
        return w * (xf * at::rsqrt(var + cfg.rms_eps)).to(x.scalar_type());
    }

    static at::Tensor rotate_half(const at::Tensor& x) {
        const int64_t h = x.size(-1) / 2;
        return at::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
    }
};

QwenModel::QwenModel() = default;
QwenModel::~QwenModel() = default;
QwenModel::QwenModel(QwenModel&&) noexcept = default;
QwenModel& QwenModel::operator=(QwenModel&&) noexcept = default;

QwenModel QwenModel::load(const std::string& dir, c10::Device device, at::ScalarType dtype) {
    auto impl = std::make_unique<Impl>();
    impl->cfg = QwenConfig::from_json_file(dir + "/config.json");
    impl->device = device;
    impl->dtype = dtype;
    const std::string single = dir + "/model.safetensors";
    const std::string index = dir + "/model.safetensors.index.json";
    if (fs::is_file(single)) {
        impl->store = io::TensorStore::open_safetensors(single);
    } else if (fs::is_file(index)) {
        impl->store = io::TensorStore::open_safetensors_index(index);
    } else {
        WAN_THROW("%s: no model weights: expected model.safetensors, or model-*.safetensors shards with "
                  "model.safetensors.index.json",
                  dir.c_str());
    }
    const QwenConfig& c = impl->cfg;
    const int64_t C = c.hidden_size, D = c.head_dim, H = c.num_heads, Hkv = c.num_kv_heads,
                  F = c.intermediate_size, V = c.vocab_size;
    impl->embed = impl->weight("model.embed_tokens.weight", {V, C});
    impl->norm = impl->weight("model.norm.weight", {C});
    for (int64_t l = 0; l < c.num_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        Impl::Layer L;
        L.in_norm = impl->weight(p + "input_layernorm.weight", {C});
        L.post_norm = impl->weight(p + "post_attention_layernorm.weight", {C});
        L.q_w = impl->weight(p + "self_attn.q_proj.weight", {H * D, C});
        L.q_b = impl->weight(p + "self_attn.q_proj.bias", {H * D});
        L.k_w = impl->weight(p + "self_attn.k_proj.weight", {Hkv * D, C});
        L.k_b = impl->weight(p + "self_attn.k_proj.bias", {Hkv * D});
        L.v_w = impl->weight(p + "self_attn.v_proj.weight", {Hkv * D, C});
        L.v_b = impl->weight(p + "self_attn.v_proj.bias", {Hkv * D});
        L.o_w = impl->weight(p + "self_attn.o_proj.weight", {C, H * D});
        L.gate_w = impl->weight(p + "mlp.gate_proj.weight", {F, C});
        L.up_w = impl->weight(p + "mlp.up_proj.weight", {F, C});
        L.down_w = impl->weight(p + "mlp.down_proj.weight", {C, F});
        impl->layers.push_back(std::move(L));
    }
    // Tied embeddings when the config says so, or when the file has no separate head.
    if (!c.tie_word_embeddings && impl->store.contains("lm_head.weight")) {
        impl->lm_head = impl->weight("lm_head.weight", {V, C});
    } else {
        impl->lm_head = impl->embed;
    }
    // inv_freq = 1 / theta^(2i/D), in float32 as Hugging Face computes it.
    const at::Tensor expo = at::arange(0, D, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) /
                            static_cast<double>(D);  // [D/2]
    impl->inv_freq = at::pow(c.rope_theta, expo).reciprocal().to(device);
    QwenModel m;
    m.impl_ = std::move(impl);
    return m;
}

const QwenConfig& QwenModel::config() const { return impl_->cfg; }
c10::Device QwenModel::device() const { return impl_->device; }
at::ScalarType QwenModel::dtype() const { return impl_->dtype; }

QwenModel::Cache QwenModel::make_cache(int64_t capacity) const {
    const QwenConfig& c = impl_->cfg;
    Cache cache;
    cache.capacity = capacity;
    const auto opts = at::TensorOptions().dtype(impl_->dtype).device(impl_->device);
    for (int64_t l = 0; l < c.num_layers; ++l) {
        cache.k.push_back(at::zeros({c.num_kv_heads, capacity, c.head_dim}, opts));  // [Hkv, T, D]
        cache.v.push_back(at::zeros({c.num_kv_heads, capacity, c.head_dim}, opts));  // [Hkv, T, D]
    }
    return cache;
}

at::Tensor QwenModel::forward(const std::vector<int64_t>& ids, Cache* cache, bool last_only) const {
    const Impl& m = *impl_;
    const QwenConfig& c = m.cfg;
    const int64_t L = static_cast<int64_t>(ids.size());
    WAN_CHECK(L > 0, "QwenModel::forward: no tokens");
    const int64_t pos0 = cache ? cache->length : 0;
    const int64_t T = pos0 + L;
    if (cache) {
        WAN_CHECK(T <= cache->capacity, "KV cache holds %lld positions, %lld needed",
                  static_cast<long long>(cache->capacity), static_cast<long long>(T));
    }
    for (int64_t id : ids) {
        WAN_CHECK(id >= 0 && id < c.vocab_size, "token id %lld outside the model's vocabulary (%lld)",
                  static_cast<long long>(id), static_cast<long long>(c.vocab_size));
    }
    const int64_t H = c.num_heads, Hkv = c.num_kv_heads, D = c.head_dim, rep = H / Hkv;
    const at::Tensor id_t =
        at::tensor(ids, at::TensorOptions().dtype(at::kLong)).to(m.device);  // [L]

    // RoPE tables for positions pos0 … T-1: float32, then the compute dtype (Hugging Face order).
    const at::Tensor pos = at::arange(pos0, T, at::TensorOptions().dtype(at::kFloat).device(m.device));  // [L]
    const at::Tensor freqs = pos.unsqueeze(1) * m.inv_freq.unsqueeze(0);  // [L, D/2]
    const at::Tensor emb = at::cat({freqs, freqs}, -1);                   // [L, D]
    const at::Tensor cos = emb.cos().to(m.dtype).unsqueeze(0);            // [1, L, D]
    const at::Tensor sin = emb.sin().to(m.dtype).unsqueeze(0);            // [1, L, D]

    // Causal mask: query i (position pos0+i) sees keys 0 … pos0+i.
    at::Tensor mask;  // [rep*L, T] bool, true = hidden
    if (L > 1) {
        mask = at::ones({L, T}, at::TensorOptions().dtype(at::kBool).device(m.device)).triu(pos0 + 1)
                   .repeat({rep, 1});  // [rep*L, T]: the rows of each query head of a group
    }
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));

    at::Tensor h = at::embedding(m.embed, id_t);  // [L, C]
    for (size_t li = 0; li < m.layers.size(); ++li) {
        const Impl::Layer& w = m.layers[li];
        const at::Tensor x = m.rms_norm(h, w.in_norm);                              // [L, C]
        at::Tensor q = at::linear(x, w.q_w, w.q_b).view({L, H, D}).transpose(0, 1);    // [H, L, D]
        at::Tensor k = at::linear(x, w.k_w, w.k_b).view({L, Hkv, D}).transpose(0, 1);  // [Hkv, L, D]
        at::Tensor v = at::linear(x, w.v_w, w.v_b).view({L, Hkv, D}).transpose(0, 1);  // [Hkv, L, D]
        q = q * cos + Impl::rotate_half(q) * sin;
        k = k * cos + Impl::rotate_half(k) * sin;
        if (cache) {
            cache->k[li].narrow(1, pos0, L).copy_(k);
            cache->v[li].narrow(1, pos0, L).copy_(v);
            k = cache->k[li].narrow(1, 0, T);  // [Hkv, T, D]
            v = cache->v[li].narrow(1, 0, T);  // [Hkv, T, D]
        }
        // Grouped-query attention: key/value head j serves query heads j*rep … j*rep+rep-1 (Hugging Face
        // repeat_kv). The query heads of a group are stacked along the rows instead of copying k and v.
        const at::Tensor qg = q.reshape({Hkv, rep * L, D});               // [Hkv, rep*L, D]
        at::Tensor s = at::matmul(qg, k.transpose(1, 2)) * scale;        // [Hkv, rep*L, T]
        if (mask.defined()) s = s.masked_fill(mask, -std::numeric_limits<float>::infinity());
        const at::Tensor p = at::softmax(s, -1, at::kFloat).to(m.dtype);  // [Hkv, rep*L, T]
        const at::Tensor o = at::matmul(p, v)                              // [Hkv, rep*L, D]
                                 .view({H, L, D})
                                 .transpose(0, 1)
                                 .reshape({L, H * D});  // [L, H*D]
        h = h + at::linear(o, w.o_w);
        const at::Tensor y = m.rms_norm(h, w.post_norm);
        h = h + at::linear(at::silu(at::linear(y, w.gate_w)) * at::linear(y, w.up_w), w.down_w);
    }
    if (cache) cache->length = T;
    if (last_only) h = h.narrow(0, L - 1, 1);  // [1, C]
    h = m.rms_norm(h, m.norm);
    return at::linear(h, m.lm_head).to(at::kFloat).cpu();  // [L or 1, V]
}

// ---- generation ---------------------------------------------------------------------------------------------

std::vector<int64_t> qwen_generate(const QwenModel& model, const std::vector<int64_t>& prompt_ids,
                                   const SamplingParams& sp) {
    WAN_CHECK(!prompt_ids.empty(), "qwen_generate: empty prompt");
    WAN_CHECK(sp.max_new_tokens >= 0, "max_new_tokens must be >= 0, got %d", sp.max_new_tokens);
    std::vector<int64_t> out;
    if (sp.max_new_tokens == 0) return out;
    QwenModel::Cache cache = model.make_cache(static_cast<int64_t>(prompt_ids.size()) + sp.max_new_tokens);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(sp.seed);
    std::vector<int64_t> history = prompt_ids;
    at::Tensor logits = model.forward(prompt_ids, &cache, /*last_only=*/true)[0];  // [V] float32 CPU
    for (int n = 0; n < sp.max_new_tokens; ++n) {
        at::Tensor scores = logits.clone();
        if (sp.repetition_penalty != 1.0) {
            // Hugging Face RepetitionPenaltyLogitsProcessor over prompt and generated tokens.
            const at::Tensor idx = at::tensor(history, at::TensorOptions().dtype(at::kLong));
            const at::Tensor sc = scores.gather(0, idx);
            const at::Tensor pen =
                at::where(sc < 0, sc * sp.repetition_penalty, sc / sp.repetition_penalty);
            scores.scatter_(0, idx, pen);
        }
        int64_t next = 0;
        if (!sp.do_sample) {
            next = scores.argmax().item<int64_t>();
        } else {
            const double ninf = -std::numeric_limits<double>::infinity();
            if (sp.temperature > 0 && sp.temperature != 1.0) scores = scores / sp.temperature;
            if (sp.top_k > 0) {
                const int64_t k = std::min<int64_t>(sp.top_k, scores.size(0));
                const at::Tensor kth = std::get<0>(scores.topk(k)).select(0, k - 1);
                scores = scores.masked_fill(scores < kth, ninf);
            }
            if (sp.top_p < 1.0) {
                auto sorted = scores.sort(/*dim=*/0, /*descending=*/false);
                const at::Tensor& sorted_logits = std::get<0>(sorted);
                const at::Tensor& sorted_idx = std::get<1>(sorted);
                const at::Tensor cum = sorted_logits.softmax(0).cumsum(0);
                at::Tensor remove_sorted = cum <= (1.0 - sp.top_p);
                remove_sorted.narrow(0, remove_sorted.size(0) - 1, 1).fill_(false);  // keep at least one token
                const at::Tensor remove = remove_sorted.scatter(0, sorted_idx, remove_sorted);
                scores = scores.masked_fill(remove, ninf);
            }
            const at::Tensor probs = scores.softmax(0);
            next = at::multinomial(probs, 1, /*replacement=*/false, gen).item<int64_t>();
        }
        out.push_back(next);
        history.push_back(next);
        if (std::find(sp.stop_ids.begin(), sp.stop_ids.end(), next) != sp.stop_ids.end()) break;
        if (n + 1 == sp.max_new_tokens) break;
        logits = model.forward({next}, &cache, /*last_only=*/true)[0];
    }
    return out;
}

}  // namespace wan::extend
