// DiT parameters: the expected state dict (names, shapes, which stay f32), validation against a checkpoint,
// loading, random init, and the model constructors.
// Ref: wan21-reference.md §4.2 (keys and shapes), §1.4 / §4.8 (which tensors stay f32).
#include "dit/dit.h"
#include "dit/internal.h"

#include "core/core.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <unordered_map>

namespace wan::dit {
namespace detail {

std::vector<std::pair<std::string, at::Tensor*>> block_fields(BlockWeights& w) {
    std::vector<std::pair<std::string, at::Tensor*>> out;
    auto attn = [&](const std::string& p, AttentionWeights& a) {
        out.emplace_back(p + ".q.weight", &a.q_weight);
        out.emplace_back(p + ".q.bias", &a.q_bias);
        out.emplace_back(p + ".k.weight", &a.k_weight);
        out.emplace_back(p + ".k.bias", &a.k_bias);
        out.emplace_back(p + ".v.weight", &a.v_weight);
        out.emplace_back(p + ".v.bias", &a.v_bias);
        out.emplace_back(p + ".o.weight", &a.o_weight);
        out.emplace_back(p + ".o.bias", &a.o_bias);
        out.emplace_back(p + ".norm_q.weight", &a.norm_q_weight);
        out.emplace_back(p + ".norm_k.weight", &a.norm_k_weight);
    };
    attn("self_attn", w.self_attn);
    out.emplace_back("norm3.weight", &w.norm3_weight);
    out.emplace_back("norm3.bias", &w.norm3_bias);
    attn("cross_attn", w.cross_attn);
    out.emplace_back("ffn.0.weight", &w.ffn0_weight);
    out.emplace_back("ffn.0.bias", &w.ffn0_bias);
    out.emplace_back("ffn.2.weight", &w.ffn2_weight);
    out.emplace_back("ffn.2.bias", &w.ffn2_bias);
    out.emplace_back("modulation", &w.modulation);
    return out;
}

std::vector<std::pair<std::string, at::Tensor*>> root_fields(RootWeights& w) {
    return {
        {"patch_embedding.weight", &w.patch_embedding_weight},
        {"patch_embedding.bias", &w.patch_embedding_bias},
        {"text_embedding.0.weight", &w.text_embedding0_weight},
        {"text_embedding.0.bias", &w.text_embedding0_bias},
        {"text_embedding.2.weight", &w.text_embedding2_weight},
        {"text_embedding.2.bias", &w.text_embedding2_bias},
        {"time_embedding.0.weight", &w.time_embedding0_weight},
        {"time_embedding.0.bias", &w.time_embedding0_bias},
        {"time_embedding.2.weight", &w.time_embedding2_weight},
        {"time_embedding.2.bias", &w.time_embedding2_bias},
        {"time_projection.1.weight", &w.time_projection1_weight},
        {"time_projection.1.bias", &w.time_projection1_bias},
        {"head.head.weight", &w.head_weight},
        {"head.head.bias", &w.head_bias},
        {"head.modulation", &w.head_modulation},
    };
}

Precision resolve_precision(const ModelOptions& options) {
    if (options.precision != Precision::Auto) return options.precision;
    return options.device.is_cpu() ? Precision::Float32 : Precision::BF16Mixed;
}

std::string shape_string(at::IntArrayRef shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

}  // namespace detail

namespace {

using detail::shape_string;

// Block tensors: (suffix, shape, keep_f32), in state-dict order (matches detail::block_fields).
std::vector<ParameterSpec> block_specs(const io::WanConfig& c) {
    const int64_t D = c.dim;
    std::vector<ParameterSpec> s;
    auto attn = [&](const std::string& p) {
        for (const char* m : {"q", "k", "v", "o"}) {
            s.push_back({p + "." + m + ".weight", {D, D}, false});
            s.push_back({p + "." + m + ".bias", {D}, false});
        }
        s.push_back({p + ".norm_q.weight", {D}, true});
        s.push_back({p + ".norm_k.weight", {D}, true});
    };
    attn("self_attn");
    s.push_back({"norm3.weight", {D}, true});
    s.push_back({"norm3.bias", {D}, true});
    attn("cross_attn");
    s.push_back({"ffn.0.weight", {c.ffn_dim, D}, false});
    s.push_back({"ffn.0.bias", {c.ffn_dim}, false});
    s.push_back({"ffn.2.weight", {D, c.ffn_dim}, false});
    s.push_back({"ffn.2.bias", {D}, false});
    s.push_back({"modulation", {1, 6, D}, true});
    return s;
}

std::vector<ParameterSpec> root_specs(const io::WanConfig& c) {
    const int64_t D = c.dim;
    const auto& p = c.patch_size;
    const int64_t head_out = p[0] * p[1] * p[2] * c.out_dim;
    return {
        {"patch_embedding.weight", {D, c.in_dim, p[0], p[1], p[2]}, false},
        {"patch_embedding.bias", {D}, false},
        {"text_embedding.0.weight", {D, c.text_dim}, false},
        {"text_embedding.0.bias", {D}, false},
        {"text_embedding.2.weight", {D, D}, false},
        {"text_embedding.2.bias", {D}, false},
        {"time_embedding.0.weight", {D, c.freq_dim}, true},
        {"time_embedding.0.bias", {D}, true},
        {"time_embedding.2.weight", {D, D}, true},
        {"time_embedding.2.bias", {D}, true},
        {"time_projection.1.weight", {6 * D, D}, true},
        {"time_projection.1.bias", {6 * D}, true},
        {"head.head.weight", {head_out, D}, true},
        {"head.head.bias", {head_out}, true},
        {"head.modulation", {1, 2, D}, true},
    };
}

at::ScalarType dtype_for(const ParameterSpec& spec, Precision precision) {
    return (precision == Precision::BF16Mixed && !spec.keep_f32) ? at::kBFloat16 : at::kFloat;
}

std::string check_one(const io::TensorStore& store, const ParameterSpec& spec) {
    if (!store.contains(spec.name))
        return strfmt("missing tensor '%s' (expected shape %s)", spec.name.c_str(), shape_string(spec.shape).c_str());
    const auto& found = store.info(spec.name).shape;
    if (found != spec.shape)
        return strfmt("tensor '%s' has shape %s, expected %s", spec.name.c_str(), shape_string(found).c_str(),
                      shape_string(spec.shape).c_str());
    return {};
}

void check_all(const io::TensorStore& store, const std::vector<ParameterSpec>& specs, const io::WanConfig& c) {
    std::vector<std::string> problems;
    for (const auto& s : specs) {
        std::string p = check_one(store, s);
        if (!p.empty()) problems.push_back(std::move(p));
    }
    if (problems.empty()) return;
    std::string msg = strfmt("DiT checkpoint '%s' does not match config %s: ", store.source().c_str(),
                             c.variant().c_str());
    const size_t shown = std::min<size_t>(problems.size(), 5);
    for (size_t i = 0; i < shown; ++i) msg += (i ? "; " : "") + problems[i];
    if (problems.size() > shown) msg += strfmt("; and %zu more", problems.size() - shown);
    WAN_THROW("%s", msg.c_str());
}

std::vector<ParameterSpec> prefixed_block_specs(const io::WanConfig& c, int64_t i) {
    auto specs = block_specs(c);
    const std::string prefix = "blocks." + std::to_string(i) + ".";
    for (auto& s : specs) s.name = prefix + s.name;
    return specs;
}

}  // namespace

std::vector<ParameterSpec> expected_parameter_shapes(const io::WanConfig& config) {
    auto root = root_specs(config);
    std::vector<ParameterSpec> all(root.begin(), root.begin() + 12);  // embeddings
    for (int64_t i = 0; i < config.num_layers; ++i) {
        auto b = prefixed_block_specs(config, i);
        all.insert(all.end(), b.begin(), b.end());
    }
    all.insert(all.end(), root.begin() + 12, root.end());  // head
    return all;
}

int64_t expected_parameter_count(const io::WanConfig& config) {
    int64_t n = 0;
    for (const auto& s : expected_parameter_shapes(config)) {
        int64_t k = 1;
        for (int64_t d : s.shape) k *= d;
        n += k;
    }
    return n;
}

void validate_checkpoint(const io::WanConfig& config, const io::TensorStore& store) {
    const auto specs = expected_parameter_shapes(config);
    check_all(store, specs, config);
    std::set<std::string> expected;
    for (const auto& s : specs) expected.insert(s.name);
    std::vector<std::string> extra;
    for (const auto& n : store.names())
        if (!expected.count(n)) extra.push_back(n);
    if (!extra.empty())
        WAN_LOG_WARN("DiT checkpoint '%s': %zu unexpected tensor(s) ignored (first: '%s')", store.source().c_str(),
                     extra.size(), extra.front().c_str());
}

BlockWeights load_block_weights(const io::WanConfig& config, const io::TensorStore& store, int64_t i,
                                const ModelOptions& options) {
    const Precision prec = detail::resolve_precision(options);
    const bool fp8 = resolve_weight_dtype(options, config, store) == WeightDtype::Fp8;
    const auto specs = prefixed_block_specs(config, i);
    check_all(store, specs, config);
    BlockWeights w;
    auto fields = detail::block_fields(w);
    int64_t rounded = 0;  // F8_E5M2 values e4m3 holds only rounded (io Note [E5M2 as e4m3])
    double worst = 0;
    for (size_t k = 0; k < specs.size(); ++k) {
        if (fp8 && is_fp8_linear(specs[k])) {  // Note [FP8 weights]
            Fp8Weight q = detail::load_fp8(store, specs[k].name, options.device);
            rounded += q.rounded;
            worst = std::max(worst, q.worst_relative_error);
            *fields[k].second = std::move(q.codes);
            *detail::scale_field(w, fields[k].first) = std::move(q.scale);
            continue;
        }
        *fields[k].second = store.load(specs[k].name, options.device, dtype_for(specs[k], prec));
    }
    if (rounded > 0)
        WAN_LOG_INFO("DiT block %lld: %lld F8_E5M2 value(s) more than 2^16 times smaller than their row's largest are "
                     "held rounded to e4m3's smallest steps (each within 2^-18 of its row's largest; worst relative "
                     "error %.2g)", static_cast<long long>(i), static_cast<long long>(rounded), worst);
    return w;
}

std::vector<ParameterSpec> block_parameter_specs(const io::WanConfig& config, int64_t i) {
    return prefixed_block_specs(config, i);
}

at::ScalarType parameter_dtype(const ParameterSpec& spec, Precision precision) { return dtype_for(spec, precision); }

BlockWeights block_weights_from(const io::WanConfig& config, int64_t i,
                                const std::function<at::Tensor(const std::string&)>& tensor_of,
                                const ModelOptions& options) {
    const Precision prec = detail::resolve_precision(options);
    const auto specs = prefixed_block_specs(config, i);
    BlockWeights w;
    auto fields = detail::block_fields(w);
    for (size_t k = 0; k < specs.size(); ++k) {
        at::Tensor t = tensor_of(specs[k].name);
        WAN_CHECK(t.defined() && t.sizes().vec() == specs[k].shape, "block %lld: tensor '%s' missing or of shape %s",
                  static_cast<long long>(i), specs[k].name.c_str(), t.defined() ? c10::str(t.sizes()).c_str() : "none");
        *fields[k].second = t.to(options.device, dtype_for(specs[k], prec));
    }
    return w;
}

RootWeights load_root_weights(const io::WanConfig& config, const io::TensorStore& store,
                              const ModelOptions& options) {
    const Precision prec = detail::resolve_precision(options);
    const auto specs = root_specs(config);
    check_all(store, specs, config);
    RootWeights w;
    auto fields = detail::root_fields(w);
    for (size_t k = 0; k < specs.size(); ++k)
        *fields[k].second = store.load(specs[k].name, options.device, dtype_for(specs[k], prec));
    return w;
}

// ---- WanModel construction ----------------------------------------------------------------------------

namespace {

// Note [Packed QKV weights]
// The fused forward runs q, k and v as one GEMM against the [3D, D] concatenation of their weights. On the GPU
// the resident blocks keep q/k/v in one such buffer from the start, each a view of its third, so that the
// forward takes the concatenation as a view instead of caching a copy: a copy is 3·D² bf16 per block, 6.3 GB
// for the 14B model's 40 blocks. Sharded and CPU weights stay as loaded (the CPU path uses three GEMMs).
// fp8 weights pack their codes and scales the same way (Note [FP8 weights]).
void pack_qkv(AttentionWeights& a) {
    if (!a.q_weight.is_cuda()) return;
    using Part = at::Tensor AttentionWeights::*;
    struct Triple { Part q, k, v; };
    for (const Triple& p : {Triple{&AttentionWeights::q_weight, &AttentionWeights::k_weight, &AttentionWeights::v_weight},
                            Triple{&AttentionWeights::q_bias, &AttentionWeights::k_bias, &AttentionWeights::v_bias},
                            Triple{&AttentionWeights::q_scale, &AttentionWeights::k_scale, &AttentionWeights::v_scale}}) {
        at::Tensor& q = a.*p.q;
        at::Tensor& k = a.*p.k;
        at::Tensor& v = a.*p.v;
        if (!q.defined() || !k.defined() || !v.defined() || k.sizes() != q.sizes() || v.sizes() != q.sizes() ||
            k.scalar_type() != q.scalar_type() || v.scalar_type() != q.scalar_type())
            return;
        const at::Tensor packed = at::cat({q, k, v}, 0);
        const int64_t n = q.size(0);
        q = packed.narrow(0, 0, n);
        k = packed.narrow(0, n, n);
        v = packed.narrow(0, 2 * n, n);
    }
}

std::shared_ptr<BlockWeightsProvider> load_all_blocks(const io::WanConfig& config, const io::TensorStore& store,
                                                      const ModelOptions& options) {
    config.validate("WanModel config");
    validate_checkpoint(config, store);  // every problem reported before anything is loaded
    std::vector<BlockWeights> blocks;
    blocks.reserve(static_cast<size_t>(config.num_layers));
    for (int64_t i = 0; i < config.num_layers; ++i) {
        blocks.push_back(load_block_weights(config, store, i, options));
        pack_qkv(blocks.back().self_attn);
    }
    return std::make_shared<ResidentBlockWeights>(std::move(blocks));
}

}  // namespace

WanModel::WanModel(const io::WanConfig& config, const io::TensorStore& store, ModelOptions options)
    : WanModel(config, RootWeights{}, load_all_blocks(config, store, options), options) {
    root_ = load_root_weights(config, store, options);
}

WanModel WanModel::random(const io::WanConfig& config_in, ModelOptions options, uint64_t seed,
                          int64_t num_layers_override) {
    io::WanConfig config = config_in;
    if (num_layers_override > 0) config.num_layers = num_layers_override;
    config.validate("WanModel::random config");
    const Precision prec = detail::resolve_precision(options);
    at::manual_seed(seed);
    // Scales keep activations O(1): weights ~ N(0, 1/fan_in), biases and modulation small, norm weights ~1.
    auto make = [&](const ParameterSpec& s) {
        const auto opts = at::TensorOptions().device(options.device).dtype(at::kFloat);
        at::Tensor t;
        const bool is_norm = s.name.find("norm") != std::string::npos;
        if (is_norm && s.name.find(".bias") == std::string::npos) {
            t = at::ones(s.shape, opts);
        } else if (s.shape.size() >= 2 && s.name.find("modulation") == std::string::npos) {
            int64_t fan_in = 1;
            for (size_t k = 1; k < s.shape.size(); ++k) fan_in *= s.shape[k];
            t = at::randn(s.shape, opts).mul_(1.0 / std::sqrt(static_cast<double>(fan_in)));
        } else {
            t = at::randn(s.shape, opts).mul_(0.02);
        }
        return t.to(dtype_for(s, prec));
    };
    RootWeights root;
    {
        auto specs = root_specs(config);
        auto fields = detail::root_fields(root);
        for (size_t k = 0; k < specs.size(); ++k) *fields[k].second = make(specs[k]);
    }
    std::vector<BlockWeights> blocks;
    for (int64_t i = 0; i < config.num_layers; ++i) {
        BlockWeights b;
        auto specs = prefixed_block_specs(config, i);
        auto fields = detail::block_fields(b);
        for (size_t k = 0; k < specs.size(); ++k) *fields[k].second = make(specs[k]);
        if (options.weight_dtype == WeightDtype::Fp8) detail::quantize_linears(b);  // Note [FP8 weights]
        pack_qkv(b.self_attn);
        blocks.push_back(std::move(b));
    }
    return WanModel(config, std::move(root), std::make_shared<ResidentBlockWeights>(std::move(blocks)), options);
}

std::vector<std::pair<std::string, at::Tensor>> WanModel::named_parameters() const {
    std::vector<std::pair<std::string, at::Tensor>> out;
    RootWeights root = root_;
    auto rf = detail::root_fields(root);
    for (size_t k = 0; k < 12; ++k) out.emplace_back(rf[k].first, *rf[k].second);
    for (int64_t i = 0; i < blocks_->num_blocks(); ++i) {
        std::optional<BlockWeights> b = blocks_->stored(i);
        WAN_CHECK(b.has_value(), "WanModel::named_parameters: block %lld has no stored tensors (sharded weights)",
                  static_cast<long long>(i));
        for (auto& f : detail::block_fields(*b)) {
            const std::string name = "blocks." + std::to_string(i) + "." + f.first;
            out.emplace_back(name, *f.second);
            const at::Tensor* scale = detail::scale_field(*b, f.first);
            if (scale && scale->defined()) out.emplace_back(name + "_scale", *scale);
        }
    }
    for (size_t k = 12; k < rf.size(); ++k) out.emplace_back(rf[k].first, *rf[k].second);
    return out;
}

std::vector<ParameterPart> WanModel::parameter_parts() const {
    std::vector<ParameterPart> out;
    auto whole = [&out](const std::string& name, const at::Tensor& t) { out.push_back({name, t.sizes().vec(), 0, t}); };
    if (blocks_->num_blocks() == 0 || blocks_->stored(0).has_value()) {
        for (const auto& [name, t] : named_parameters()) whole(name, t);
        return out;
    }
    // Root first, then the blocks, then the rest of the root: named_parameters()'s order.
    RootWeights root = root_;
    auto rf = detail::root_fields(root);
    for (size_t k = 0; k < 12; ++k) whole(rf[k].first, *rf[k].second);
    for (int64_t i = 0; i < blocks_->num_blocks(); ++i) {
        std::vector<ParameterPart> parts = blocks_->stored_parts(i);
        WAN_CHECK(!parts.empty(), "WanModel::parameter_parts: block %lld has neither stored tensors nor parts",
                  static_cast<long long>(i));
        for (auto& p : parts) out.push_back(std::move(p));
    }
    for (size_t k = 12; k < rf.size(); ++k) whole(rf[k].first, *rf[k].second);
    return out;
}

}  // namespace wan::dit
