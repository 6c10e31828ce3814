// Block Linear weights held as fp8 (--dit-dtype fp8): the quantisation rule, widening, and which tensors it
// applies to. See Note [FP8 weights].
#include "dit/dit.h"
#include "dit/internal.h"

#include "core/core.h"

#include <ATen/ATen.h>

namespace wan::dit {

// Note [FP8 weights]
// With WeightDtype::Fp8 the ten Linear weights of each block (self- and cross-attention q, k, v, o; ffn.0,
// ffn.2: 98 % of the parameters) are held as e4m3 codes (uint8, one byte each) with one f32 scale per output
// row, and no bf16 copy: the 14B blocks take 14.0 GB instead of 28.0 GB (plus 0.87 GB of root tensors, as
// before). Everything else keeps its Precision dtype. The rule is the one the FP8 GEMMs of `ModelOptions::fp8`
// use for bf16 weights (Note [FP8 linears]):
// scale = row amax / 448, codes = nearest e4m3 of w / scale. An F8_E4M3 checkpoint keeps its own codes and its
// per-tensor scale (repeated per row), so nothing is re-rounded. An F8_E5M2 checkpoint is re-coded row by row as
// e4m3 codes with a power-of-two scale, which holds its values exactly unless a row spans more than 16 binades
// (io Note [E5M2 as e4m3]; the load says per block how many values were rounded where some were). The codes are uint8 on every build (LibTorch
// 1.13 has no float8 type); where the fused FP8 GEMMs run (CUDA, LibTorch ≥ 2.5, Hopper/Ada) the block GEMMs
// read them directly as float8_e4m3fn. Everywhere else run_blocks widens each block to the compute dtype when it
// runs (decode · scale in f32, one rounding) and drops the widened copy after it, so the saving holds on any
// device. Streamed blocks (streaming.h) move the codes: half the bytes of bf16. A LoRA merge dequantises,
// adds, and quantises again; the base codes and scales are what it restores (lora/merge.cpp).

namespace detail {

at::Tensor decode_e4m3(const at::Tensor& codes) {
    if (codes.device().is_cpu()) return io::float8_e4m3_decode(codes);
#if WAN_TORCH_VERSION >= 201
    return codes.view(at::kFloat8_e4m3fn).to(at::kFloat);
#else
    return io::float8_e4m3_decode(codes.cpu()).to(codes.device());
#endif
}

// ATen's cast and io's encoder both round to nearest even (tests/gpu/test_dit_fp8_gpu.cpp compares them).
at::Tensor encode_e4m3(const at::Tensor& values) {
    if (values.device().is_cpu()) return io::float8_e4m3_encode(values);
#if WAN_TORCH_VERSION >= 201
    return values.to(at::kFloat8_e4m3fn).view(at::kByte);
#else
    return io::float8_e4m3_encode(values.cpu()).to(values.device());
#endif
}

}  // namespace detail

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::optional<WeightDtype> parse_weight_dtype(const std::string& name) {
    if (name == "auto") return WeightDtype::Auto;
    if (name == "fp8") return WeightDtype::Fp8;
    if (name == "bf16") return WeightDtype::Compute;
    return std::nullopt;
}

const char* weight_dtype_name(WeightDtype dtype) {
    switch (dtype) {
        case WeightDtype::Fp8: return "fp8";
        case WeightDtype::Compute: return "bf16";
        default: return "auto";
    }
}

Fp8Weight quantize_fp8(const at::Tensor& w) {
    WAN_CHECK(w.dim() == 2, "quantize_fp8: expected a [N, K] weight, got %lld dims", static_cast<long long>(w.dim()));
    const at::Tensor wf = w.to(at::kFloat);
    // Divided by a tensor on the weights' device, not by a number: ATen's CUDA division by a host scalar multiplies
    // by its reciprocal (one bit off a true division in some rows), and the codes must not depend on the device.
    const at::Tensor scale = wf.abs().amax(1).clamp_min(1e-12) / at::full({}, detail::kE4m3Max, wf.options());  // [N]
    return {detail::encode_e4m3(wf / scale.unsqueeze(1)).contiguous(), scale.contiguous()};
}

at::Tensor dequantize_fp8(const at::Tensor& codes, const at::Tensor& scale, at::ScalarType dtype) {
    WAN_CHECK(codes.scalar_type() == at::kByte && codes.dim() == 2 && scale.numel() == codes.size(0),
              "dequantize_fp8: expected [N, K] uint8 codes and N scales");
    return detail::decode_e4m3(codes).mul_(scale.to(at::kFloat).view({-1, 1})).to(dtype);
}

bool is_fp8_linear(const ParameterSpec& spec) {
    // In a block, the 2-D tensors are exactly the ten Linear weights (modulation is [1, 6, D]).
    return spec.name.rfind("blocks.", 0) == 0 && spec.shape.size() == 2 && ends_with(spec.name, ".weight");
}

WeightDtype resolve_weight_dtype(const ModelOptions& options, const io::WanConfig& config,
                                 const io::TensorStore& store) {
    if (options.weight_dtype != WeightDtype::Auto) return options.weight_dtype;
    for (int64_t i = 0; i < config.num_layers; ++i)
        for (const auto& spec : block_parameter_specs(config, i))
            if (is_fp8_linear(spec) && !(store.contains(spec.name) && store.stores_fp8(spec.name)))
                return WeightDtype::Compute;
    return WeightDtype::Fp8;
}

std::vector<at::Tensor*> block_tensors(BlockWeights& w) {
    std::vector<at::Tensor*> out;
    for (auto& f : detail::block_fields(w)) out.push_back(f.second);
    for (auto& s : detail::scale_fields(w))
        if (s.second->defined()) out.push_back(s.second);
    return out;
}

bool holds_fp8(const BlockWeights& w) { return w.self_attn.q_scale.defined(); }

namespace detail {

std::vector<std::pair<std::string, at::Tensor*>> scale_fields(BlockWeights& w) {
    return {
        {"self_attn.q.weight", &w.self_attn.q_scale},   {"self_attn.k.weight", &w.self_attn.k_scale},
        {"self_attn.v.weight", &w.self_attn.v_scale},   {"self_attn.o.weight", &w.self_attn.o_scale},
        {"cross_attn.q.weight", &w.cross_attn.q_scale}, {"cross_attn.k.weight", &w.cross_attn.k_scale},
        {"cross_attn.v.weight", &w.cross_attn.v_scale}, {"cross_attn.o.weight", &w.cross_attn.o_scale},
        {"ffn.0.weight", &w.ffn0_scale},                {"ffn.2.weight", &w.ffn2_scale},
    };
}

at::Tensor* scale_field(BlockWeights& w, const std::string& suffix) {
    for (auto& s : scale_fields(w))
        if (s.first == suffix) return s.second;
    return nullptr;
}

void quantize_linears(BlockWeights& w) {
    for (auto& [suffix, scale] : scale_fields(w)) {
        at::Tensor* weight = nullptr;
        for (auto& f : block_fields(w))
            if (f.first == suffix) weight = f.second;
        Fp8Weight q = quantize_fp8(*weight);
        *weight = std::move(q.codes);
        *scale = std::move(q.scale);
    }
}

BlockWeights widened(const BlockWeights& held, at::ScalarType dtype) {
    if (!holds_fp8(held)) return held;
    BlockWeights w = held;
    auto fields = block_fields(w);
    for (auto& [suffix, scale] : scale_fields(w)) {
        for (auto& f : fields)
            if (f.first == suffix) *f.second = dequantize_fp8(*f.second, *scale, dtype);
        *scale = at::Tensor();
    }
    return w;
}

Fp8Weight load_fp8(const io::TensorStore& store, const std::string& name, c10::Device device) {
    std::optional<io::Float8Codes> c = store.e4m3_codes(name);
    if (!c) return quantize_fp8(store.load(name, device, at::kFloat));
    if (c->rounded > 0)
        WAN_LOG_DEBUG("%s: tensor '%s': %lld F8_E5M2 value(s) held rounded as e4m3 (worst relative error %.3g)",
                      store.source().c_str(), name.c_str(), static_cast<long long>(c->rounded), c->worst_relative_error);
    const int64_t rows = c->codes.size(0);
    at::Tensor scale = c->scale.defined() ? c->scale.to(at::kFloat).reshape({-1}) : at::ones({1}, at::kFloat);
    WAN_CHECK(scale.numel() == 1 || scale.numel() == rows, "%s: tensor '%s': %lld scale values for %lld rows",
              store.source().c_str(), name.c_str(), static_cast<long long>(scale.numel()), static_cast<long long>(rows));
    if (scale.numel() == 1) scale = scale.expand({rows});  // a per-tensor scale, repeated per row
    Fp8Weight w{c->codes.to(device), scale.contiguous().to(device)};
    w.rounded = c->rounded;
    w.worst_relative_error = c->worst_relative_error;
    return w;
}

}  // namespace detail

}  // namespace wan::dit
