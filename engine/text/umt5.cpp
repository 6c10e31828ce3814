// UMT5-XXL encoder in plain ATen ops, and the TextEncoder convenience wrapper.
// Ref: wan21-reference.md §3 (upstream wan/modules/t5.py: T5Encoder, T5SelfAttention, T5Attention,
// T5FeedForward, T5LayerNorm, T5RelativeEmbedding, GELU).
#include "text/text.h"

#include "core/core.h"
#include "io/component_files.h"

#include <ATen/ATen.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cmath>
#include <limits>
#include <set>
#include <sstream>

namespace wan::text {
namespace {

std::string shape_str(at::IntArrayRef shape) {
    std::ostringstream os;
    os << "[";
    for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
    os << "]";
    return os.str();
}

std::string block_key(int64_t i, const char* leaf) { return strfmt("blocks.%lld.%s", static_cast<long long>(i), leaf); }

// The block-level keys, in checkpoint order, with their member in T5BlockWeights.
struct BlockKey {
    const char* leaf;
    at::Tensor T5BlockWeights::*member;
};
const BlockKey kBlockKeys[] = {
    {"norm1.weight", &T5BlockWeights::norm1},
    {"attn.q.weight", &T5BlockWeights::q},
    {"attn.k.weight", &T5BlockWeights::k},
    {"attn.v.weight", &T5BlockWeights::v},
    {"attn.o.weight", &T5BlockWeights::o},
    {"norm2.weight", &T5BlockWeights::norm2},
    {"ffn.gate.0.weight", &T5BlockWeights::gate},
    {"ffn.fc1.weight", &T5BlockWeights::fc1},
    {"ffn.fc2.weight", &T5BlockWeights::fc2},
    {"pos_embedding.embedding.weight", &T5BlockWeights::pos_embedding},
};

// Expected shape of a block key under `c`, with the names of the sizes for error messages.
std::pair<std::vector<int64_t>, const char*> expected_block_shape(const std::string& leaf, const UMT5Config& c) {
    if (leaf == "norm1.weight" || leaf == "norm2.weight") return {{c.dim}, "[dim]"};
    if (leaf == "attn.o.weight") return {{c.dim, c.dim_attn}, "[dim, dim_attn]"};
    if (leaf.rfind("attn.", 0) == 0) return {{c.dim_attn, c.dim}, "[dim_attn, dim]"};
    if (leaf == "ffn.fc2.weight") return {{c.dim, c.dim_ffn}, "[dim, dim_ffn]"};
    if (leaf.rfind("ffn.", 0) == 0) return {{c.dim_ffn, c.dim}, "[dim_ffn, dim]"};
    return {{c.num_buckets, c.num_heads}, "[num_buckets, num_heads]"};
}

const io::TensorInfo& require(const io::TensorStore& store, const std::string& key, size_t rank) {
    WAN_CHECK(store.contains(key), "%s: missing tensor '%s' (UMT5 encoder checkpoint)", store.source().c_str(),
              key.c_str());
    const auto& info = store.info(key);
    WAN_CHECK(info.shape.size() == rank, "%s: tensor '%s' has shape %s, expected a %zu-D tensor",
              store.source().c_str(), key.c_str(), shape_str(info.shape).c_str(), rank);
    WAN_CHECK(at::isFloatingType(info.dtype), "%s: tensor '%s' has dtype %s, expected a floating type",
              store.source().c_str(), key.c_str(), c10::toString(info.dtype));
    return info;
}

void check_shape(const io::TensorStore& store, const std::string& key, const std::vector<int64_t>& expected,
                 const char* meaning, const UMT5Config& c) {
    const auto& info = require(store, key, expected.size());
    WAN_CHECK(info.shape == expected,
              "%s: tensor '%s' has shape %s, expected %s = %s (sizes inferred from the checkpoint: vocab %lld, "
              "dim %lld, dim_attn %lld, dim_ffn %lld, num_heads %lld, num_buckets %lld)",
              store.source().c_str(), key.c_str(), shape_str(info.shape).c_str(), shape_str(expected).c_str(), meaning,
              static_cast<long long>(c.vocab), static_cast<long long>(c.dim), static_cast<long long>(c.dim_attn),
              static_cast<long long>(c.dim_ffn), static_cast<long long>(c.num_heads),
              static_cast<long long>(c.num_buckets));
}

// finfo(dtype).min: the value upstream writes over masked keys (§3.4).
double finfo_min(at::ScalarType dt) {
    switch (dt) {
        case at::kFloat: return std::numeric_limits<float>::lowest();
        case at::kDouble: return std::numeric_limits<double>::lowest();
        case at::kBFloat16: return static_cast<float>(std::numeric_limits<c10::BFloat16>::lowest());
        case at::kHalf: return static_cast<float>(std::numeric_limits<c10::Half>::lowest());
        default: WAN_THROW("UMT5 encoder: unsupported compute dtype %s", c10::toString(dt));
    }
}

// T5LayerNorm (§3.3): rsqrt of the f32 mean square, x·r promoted to f32, cast back to a half weight dtype.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
    at::Tensor r = at::rsqrt(x.to(at::kFloat).pow(2).mean(-1, /*keepdim=*/true).add(eps));  // [B, S, 1] f32
    at::Tensor u = x * r;                                                                    // [B, S, dim] f32
    const auto wt = weight.scalar_type();
    if (wt == at::kBFloat16 || wt == at::kHalf) u = u.to(wt);
    return weight * u;
}

// T5FeedForward with upstream's op-by-op tanh GELU (§3.6): every op rounds to the compute dtype.
at::Tensor feed_forward(const at::Tensor& h, const T5BlockWeights& w) {
    const double c = std::sqrt(2.0 / 3.141592653589793);  // math.sqrt(2.0 / math.pi)
    at::Tensor g0 = at::linear(h, w.gate);  // [B, S, dim_ffn]
    at::Tensor p = g0.pow(3.0);
    at::Tensor p2 = p.mul(0.044715);
    at::Tensor s = g0.add(p2);
    at::Tensor s2 = s.mul(c);
    at::Tensor t = s2.tanh();
    at::Tensor t2 = t.add(1.0);
    at::Tensor hx = g0.mul(0.5);
    at::Tensor g = hx.mul(t2);
    at::Tensor u = at::linear(h, w.fc1);  // [B, S, dim_ffn]
    return at::linear(u.mul(g), w.fc2);   // [B, S, dim]
}

// T5Attention (§3.4): no 1/sqrt(d) scaling; masked keys get finfo.min in place of the position bias.
at::Tensor attention(const at::Tensor& h, const T5BlockWeights& w, const at::Tensor& key_valid,
                     const at::Tensor& pos_bias, int64_t num_heads) {
    const int64_t B = h.size(0), S = h.size(1);
    const int64_t C = w.q.size(0) / num_heads;
    at::Tensor q = at::linear(h, w.q).view({B, S, num_heads, C}).permute({0, 2, 1, 3});  // [B, N, S, C]
    at::Tensor k = at::linear(h, w.k).view({B, S, num_heads, C}).permute({0, 2, 3, 1});  // [B, N, C, S]
    at::Tensor v = at::linear(h, w.v).view({B, S, num_heads, C}).permute({0, 2, 1, 3});  // [B, N, S, C]
    at::Tensor bias = pos_bias.expand({B, num_heads, S, S})
                          .masked_fill(key_valid.logical_not(), finfo_min(h.scalar_type()));  // [B, N, S, S]
    at::Tensor scores = at::matmul(q, k).add(bias);                                        // [B, N, S, S]
    at::Tensor attn = at::softmax(scores.to(at::kFloat), -1).to(h.scalar_type());         // [B, N, S, S]
    at::Tensor o = at::matmul(attn, v).permute({0, 2, 1, 3}).reshape({B, S, num_heads * C});  // [B, S, dim_attn]
    return at::linear(o, w.o);                                                                 // [B, S, dim]
}

// True when a^n · me^k >= me^n · md^k, i.e. log(a/me)/log(md/me)·n >= k, exactly when it fits in 128 bits.
bool reaches_bucket(int64_t a, int64_t n, int64_t me, int64_t md, int64_t k) {
    using u128 = unsigned __int128;
    auto pow_mul = [](u128 acc, int64_t base, int64_t e, bool& overflow) {
        for (int64_t i = 0; i < e && !overflow; ++i) overflow = __builtin_mul_overflow(acc, static_cast<u128>(base), &acc);
        return acc;
    };
    bool overflow = false;
    const u128 lhs = pow_mul(pow_mul(1, a, n, overflow), me, k, overflow);
    const u128 rhs = pow_mul(pow_mul(1, me, n, overflow), md, k, overflow);
    if (!overflow) return lhs >= rhs;
    const long double x = std::log(static_cast<long double>(a) / me) / std::log(static_cast<long double>(md) / me) * n;
    return x >= static_cast<long double>(k);
}

}  // namespace

// ---- config ---------------------------------------------------------------------------------------

UMT5Config UMT5Config::from_store(const io::TensorStore& store) {
    const std::string& src = store.source();
    UMT5Config c;
    const auto& emb = require(store, "token_embedding.weight", 2);
    c.vocab = emb.shape[0];
    c.dim = emb.shape[1];

    // Blocks: every `blocks.<n>.` prefix; they must be numbered 0..N-1.
    std::set<int64_t> ids;
    for (const auto& name : store.names()) {
        if (name.rfind("blocks.", 0) != 0) continue;
        const size_t dot = name.find('.', 7);
        const std::string num = name.substr(7, dot == std::string::npos ? std::string::npos : dot - 7);
        WAN_CHECK(!num.empty() && num.find_first_not_of("0123456789") == std::string::npos,
                  "%s: unexpected tensor name '%s' (expected blocks.<index>.<...>)", src.c_str(), name.c_str());
        ids.insert(std::stoll(num));
    }
    WAN_CHECK(!ids.empty(), "%s: no 'blocks.<i>.*' tensors: not a UMT5 encoder checkpoint", src.c_str());
    c.num_layers = static_cast<int64_t>(ids.size());
    WAN_CHECK(*ids.rbegin() == c.num_layers - 1, "%s: block indices are not 0..%lld (found blocks.%lld)", src.c_str(),
              static_cast<long long>(c.num_layers - 1), static_cast<long long>(*ids.rbegin()));

    c.dim_attn = require(store, "blocks.0.attn.q.weight", 2).shape[0];
    c.dim_ffn = require(store, "blocks.0.ffn.fc1.weight", 2).shape[0];
    const auto& pos = require(store, "blocks.0.pos_embedding.embedding.weight", 2);
    c.num_buckets = pos.shape[0];
    c.num_heads = pos.shape[1];
    WAN_CHECK(c.num_heads > 0 && c.dim_attn % c.num_heads == 0,
              "%s: blocks.0.attn.q.weight rows (dim_attn %lld) are not a multiple of the head count %lld "
              "(from blocks.0.pos_embedding.embedding.weight %s = [num_buckets, num_heads])",
              src.c_str(), static_cast<long long>(c.dim_attn), static_cast<long long>(c.num_heads),
              shape_str(pos.shape).c_str());
    WAN_CHECK(c.num_buckets >= 4 && c.num_buckets % 2 == 0 && c.max_dist > c.num_buckets / 4,
              "%s: blocks.0.pos_embedding.embedding.weight has %lld buckets; expected an even count >= 4 "
              "below 4*max_dist (%lld)",
              src.c_str(), static_cast<long long>(c.num_buckets), static_cast<long long>(c.max_dist));

    for (int64_t i = 0; i < c.num_layers; ++i) {
        for (const auto& bk : kBlockKeys) {
            const auto exp = expected_block_shape(bk.leaf, c);
            check_shape(store, block_key(i, bk.leaf), exp.first, exp.second, c);
        }
    }
    check_shape(store, "norm.weight", {c.dim}, "[dim]", c);
    return c;
}

// ---- weights --------------------------------------------------------------------------------------

ResidentT5Weights::ResidentT5Weights(const io::TensorStore& store, const UMT5Config& cfg, c10::Device device,
                                     at::ScalarType dtype) {
    token_embedding_ = store.load("token_embedding.weight", device, dtype);
    blocks_.resize(cfg.num_layers);
    for (int64_t i = 0; i < cfg.num_layers; ++i) {
        for (const auto& bk : kBlockKeys) blocks_[i].*(bk.member) = store.load(block_key(i, bk.leaf), device, dtype);
    }
    norm_ = store.load("norm.weight", device, dtype);
}

StreamingT5Weights::StreamingT5Weights(const io::TensorStore& store, const UMT5Config& cfg, c10::Device device,
                                       at::ScalarType dtype)
    : device_(device), dtype_(dtype) {
    const c10::Device cpu(c10::kCPU);
    // On the CPU the host copy keeps the file's dtype (bf16: half of f32) and each block is converted when it
    // runs; for CUDA it is the compute dtype in pinned memory, so the per-encode copies are fast and async.
    auto host = [&](const std::string& key) {
        at::Tensor t = store.load(key, cpu, device.is_cuda() ? dtype : store.info(key).dtype);
        return device.is_cuda() ? t.pin_memory() : t;
    };
    embedding_ = host("token_embedding.weight");  // looked up on the host, never copied whole
    host_.resize(cfg.num_layers);
    for (int64_t i = 0; i < cfg.num_layers; ++i) {
        for (const auto& bk : kBlockKeys) host_[i].*(bk.member) = host(block_key(i, bk.leaf));
    }
    norm_ = store.load("norm.weight", device, dtype);
}

const T5BlockWeights& StreamingT5Weights::acquire(int64_t i) {
    WAN_CHECK(i >= 0 && i < num_blocks(), "UMT5 weights: block %lld out of range", static_cast<long long>(i));
    for (const auto& bk : kBlockKeys)
        current_.*(bk.member) = (host_[i].*(bk.member)).to(device_, dtype_, /*non_blocking=*/true);
    return current_;
}

void StreamingT5Weights::release(int64_t /*i*/) { current_ = T5BlockWeights{}; }

const T5BlockWeights& ResidentT5Weights::acquire(int64_t i) {
    WAN_CHECK(i >= 0 && i < num_blocks(), "UMT5 weights: block %lld out of range [0, %lld)", static_cast<long long>(i),
              static_cast<long long>(num_blocks()));
    return blocks_[i];
}

// ---- encoder --------------------------------------------------------------------------------------

at::ScalarType UMT5Options::resolved_dtype() const {
    if (dtype) return *dtype;
    return device.is_cpu() ? at::kFloat : at::kBFloat16;
}

UMT5Encoder::UMT5Encoder(const io::TensorStore& store, UMT5Options opts)
    : cfg_(UMT5Config::from_store(store)), opts_(opts), dtype_(opts.resolved_dtype()) {
    if (opts_.stream_weights)
        weights_ = std::make_shared<StreamingT5Weights>(store, cfg_, opts_.device, dtype_);
    else
        weights_ = std::make_shared<ResidentT5Weights>(store, cfg_, opts_.device, dtype_);
}

UMT5Encoder UMT5Encoder::from_file(const std::string& t5_path, UMT5Options opts) {
    auto store = io::TensorStore::open(t5_path);
    return UMT5Encoder(store, opts);
}

UMT5Encoder::UMT5Encoder(UMT5Config cfg, std::shared_ptr<T5WeightProvider> weights, UMT5Options opts)
    : cfg_(cfg), weights_(std::move(weights)), opts_(opts), dtype_(opts.resolved_dtype()) {
    WAN_CHECK(weights_ != nullptr, "UMT5 encoder: no weight provider");
    WAN_CHECK(weights_->num_blocks() == cfg_.num_layers, "UMT5 encoder: provider has %lld blocks, config says %lld",
              static_cast<long long>(weights_->num_blocks()), static_cast<long long>(cfg_.num_layers));
}

at::Tensor UMT5Encoder::relative_buckets(int64_t seq_len, int64_t num_buckets, int64_t max_dist) {
    // Ref: wan21-reference.md §3.5 (bidirectional). Exact integer edges instead of f32 logf.
    const int64_t half = num_buckets / 2;
    const int64_t max_exact = half / 2;
    const int64_t n_large = half - max_exact;
    // Offset by distance a = |j - i| < seq_len, computed once per distance.
    std::vector<int64_t> offset(static_cast<size_t>(std::max<int64_t>(seq_len, 1)));
    int64_t k = 0;
    for (int64_t a = 0; a < seq_len; ++a) {
        if (a < max_exact) {
            offset[a] = a;
            continue;
        }
        while (k + 1 <= n_large - 1 && reaches_bucket(a, n_large, max_exact, max_dist, k + 1)) ++k;
        offset[a] = max_exact + k;  // at most half - 1
    }
    at::Tensor table = at::empty({seq_len, seq_len}, at::kLong);  // [S, S]
    auto t = table.accessor<int64_t, 2>();
    for (int64_t i = 0; i < seq_len; ++i) {
        for (int64_t j = 0; j < seq_len; ++j) {
            const int64_t rel = j - i;
            t[i][j] = (rel > 0 ? half : 0) + offset[std::llabs(rel)];
        }
    }
    return table;
}

at::Tensor UMT5Encoder::bucket_table(int64_t seq_len) {
    if (!buckets_.defined() || buckets_.size(0) != seq_len)
        buckets_ = relative_buckets(seq_len, cfg_.num_buckets, cfg_.max_dist).to(opts_.device);
    return buckets_;
}

at::Tensor UMT5Encoder::forward(const at::Tensor& ids_in, const at::Tensor& mask_in,
                                std::vector<at::Tensor>* intermediates) {
    WAN_CHECK(ids_in.dim() == 2 && mask_in.sizes() == ids_in.sizes(),
              "UMT5 encoder: ids and mask must both be [B, S]; got ids %s and mask %s", shape_str(ids_in.sizes()).c_str(),
              shape_str(mask_in.sizes()).c_str());
    const at::Tensor ids = ids_in.to(opts_.device, at::kLong);  // [B, S]
    const int64_t B = ids.size(0), S = ids.size(1);
    // Key padding mask, broadcast over heads and queries.
    const at::Tensor key_valid = mask_in.to(opts_.device).ne(0).view({B, 1, 1, S});  // [B, 1, 1, S] bool
    const at::Tensor buckets = bucket_table(S);                                        // [S, S]

    const at::Tensor& table = weights_->token_embedding();
    // A host-resident table (streamed weights) is looked up on the host: only [B, S, dim] crosses the bus.
    at::Tensor x = table.device() == ids.device() ? at::embedding(table, ids)
                                                  : at::embedding(table, ids.to(table.device())).to(opts_.device);  // [B, S, dim]
    if (x.scalar_type() != dtype_) x = x.to(dtype_);  // a host table kept in the file's dtype (streamed weights)
    if (intermediates) intermediates->push_back(x);
    for (int64_t i = 0; i < cfg_.num_layers; ++i) {
        const T5BlockWeights& w = weights_->acquire(i);
        // Per-block relative position bias (shared_pos = False).
        at::Tensor pos = at::embedding(w.pos_embedding, buckets).permute({2, 0, 1}).unsqueeze(0);  // [1, N, S, S]
        x = x + attention(rms_norm(x, w.norm1, cfg_.eps), w, key_valid, pos, cfg_.num_heads);
        x = x + feed_forward(rms_norm(x, w.norm2, cfg_.eps), w);
        weights_->release(i);
        if (intermediates) intermediates->push_back(x);
    }
    x = rms_norm(x, weights_->final_norm(), cfg_.eps);  // [B, S, dim]
    if (intermediates) intermediates->push_back(x);
    return x;
}

std::vector<at::Tensor> UMT5Encoder::encode(const TokenizedBatch& batch) {
    WAN_CHECK(batch.ids.defined() && batch.ids.size(0) == batch.batch_size(),
              "UMT5 encoder: tokenized batch has %lld lengths but ids %s", static_cast<long long>(batch.batch_size()),
              batch.ids.defined() ? shape_str(batch.ids.sizes()).c_str() : "undefined");
    at::Tensor y = forward(batch.ids, batch.mask);  // [B, S, dim]
    std::vector<at::Tensor> out;
    out.reserve(batch.lengths.size());
    for (int64_t b = 0; b < batch.batch_size(); ++b) out.push_back(y[b].narrow(0, 0, batch.lengths[b]));  // [L_b, dim]
    return out;
}

// ---- TextEncoder ----------------------------------------------------------------------------------

TextEncoder::TextEncoder(const io::CheckpointDir& ckpt, UMT5Options opts)
    : tokenizer_(ckpt.tokenizer_path, ckpt.config().text_len), encoder_(ckpt.open_t5(), opts) {}

TextEncoder::TextEncoder(const io::ModelComponents& components, UMT5Options opts)
    : tokenizer_(UMT5Tokenizer::from_bytes(components.tokenizer_bytes(), components.tokenizer_source(),
                                           components.dit_config().text_len)),
      encoder_(components.open_t5(), opts) {}

TextEncoder::TextEncoder(const std::string& t5_path, const std::string& spiece_model_path, UMT5Options opts,
                         int64_t text_len)
    : tokenizer_(spiece_model_path, text_len), encoder_(UMT5Encoder::from_file(t5_path, opts)) {}

TextEncoder::TextEncoder(UMT5Tokenizer tokenizer, UMT5Encoder encoder)
    : tokenizer_(std::move(tokenizer)), encoder_(std::move(encoder)) {}

std::vector<at::Tensor> TextEncoder::encode(const std::vector<std::string>& prompts) {
    WAN_CHECK(!prompts.empty(), "TextEncoder::encode: no prompts");
    return encoder_.encode(tokenizer_.encode(prompts));
}

}  // namespace wan::text
