// Recognising checkpoint files by their names and shapes, inferring DiT sizes, and --inspect FILE reports.
// Facts used (wan21-reference.md §4.1 and the released files): every Wan DiT has head dim 128; T2V patch
// embedding has 16 input channels, I2V 36 (plus img_emb.* in Wan2.1), Wan2.2 TI2V-5B 48 (dim 3072);
// the Wan2.1 VAE has z_dim 16, the Wan2.2 VAE 48; UMT5 has a relative position bias in every layer.
#include "io/component_detect.h"

#include "core/core.h"
#include "io/store_impl.h"

#include <cstdlib>
#include <fcntl.h>
#include <functional>
#include <set>
#include <unistd.h>

namespace wan::io {

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_auxiliary_tensor(const std::string& n) {
    return n == "scaled_fp8" || ends_with(n, ".scaled_fp8") || n == "spiece_model" || ends_with(n, ".scale_weight") || ends_with(n, ".weight_scale") ||
           ends_with(n, ".scale_input") || ends_with(n, ".input_scale") || ends_with(n, ".comfy_quant");
}

const char* component_kind_name(ComponentKind kind) {
    switch (kind) {
        case ComponentKind::WanDiT: return "Wan2.1 T2V DiT";
        case ComponentKind::WanDiTI2V: return "Wan image-to-video DiT";
        case ComponentKind::WanDiTOther: return "Wan DiT of another model";
        case ComponentKind::UMT5Encoder: return "UMT5 text encoder";
        case ComponentKind::T5Other: return "T5 text encoder (not UMT5)";
        case ComponentKind::WanVAE21: return "Wan2.1 VAE";
        case ComponentKind::WanVAEOther: return "VAE of another Wan model";
        case ComponentKind::CLIP: return "CLIP model";
        case ComponentKind::LoRA: return "LoRA";
        default: return "unknown";
    }
}

namespace {

std::vector<int64_t> shape_or_empty(const TensorStore& st, const std::string& name) {
    return st.contains(name) ? st.info(name).shape : std::vector<int64_t>{};
}

bool any_name(const TensorStore& st, const std::function<bool(const std::string&)>& pred) {
    for (const auto& n : st.names())
        if (pred(n)) return true;
    return false;
}

DetectedComponent detect_dit(const TensorStore& raw, const std::string& prefix) {
    DetectedComponent d;
    d.prefix = prefix;
    const auto pe = shape_or_empty(raw, prefix + "patch_embedding.weight");
    const auto hm = shape_or_empty(raw, prefix + "head.modulation");
    const int64_t in_dim = pe.size() == 5 ? pe[1] : 0;
    const int64_t dim = hm.size() == 3 ? hm[2] : 0;
    if (any_name(raw, [&](const std::string& n) { return starts_with(n, prefix + "img_emb."); })) {
        d.kind = ComponentKind::WanDiTI2V;
        d.description = "an image-to-video (I2V/FLF2V) Wan DiT (it has img_emb.* tensors)";
    } else if (any_name(raw, [&](const std::string& n) { return starts_with(n, prefix + "vace_"); })) {
        d.kind = ComponentKind::WanDiTOther;
        d.description = "a Wan VACE DiT (it has vace_* tensors)";
    } else if (in_dim == 36) {
        d.kind = ComponentKind::WanDiTI2V;
        d.description = "an image-to-video Wan DiT (36 input channels: Wan2.2 I2V-A14B or similar)";
    } else if (in_dim == 48 || dim == 3072) {
        d.kind = ComponentKind::WanDiTOther;
        d.description = strfmt("a Wan2.2 TI2V-5B DiT (%lld input channels, dim %lld)", static_cast<long long>(in_dim),
                               static_cast<long long>(dim));
    } else {
        d.kind = ComponentKind::WanDiT;
        d.description = strfmt("a Wan T2V DiT (dim %lld)", static_cast<long long>(dim));
    }
    return d;
}

DetectedComponent detect_t5(const TensorStore& raw, bool hf) {
    DetectedComponent d;
    d.hf_names = hf;
    const std::string bias1 = hf ? "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"
                                 : "blocks.1.pos_embedding.embedding.weight";
    const std::string block1 = hf ? "encoder.block.1.layer.0.SelfAttention.q.weight" : "blocks.1.attn.q.weight";
    if (raw.contains(block1) && !raw.contains(bias1)) {
        d.kind = ComponentKind::T5Other;
        d.description = "a T5 encoder whose position bias is shared by all layers (T5 v1.1, not the UMT5 Wan uses)";
        return d;
    }
    d.kind = ComponentKind::UMT5Encoder;
    d.description = hf ? "a UMT5 encoder in Hugging Face names" : "a UMT5 encoder";
    return d;
}

}  // namespace

DetectedComponent detect_component(const TensorStore& raw) {
    DetectedComponent d;
    if (any_name(raw, [](const std::string& n) {
            return n.find("lora_down") != std::string::npos || n.find("lora_up") != std::string::npos ||
                   n.find(".lora_A.") != std::string::npos || n.find(".lora_B.") != std::string::npos ||
                   ends_with(n, ".diff") || ends_with(n, ".diff_b");
        })) {
        d.kind = ComponentKind::LoRA;
        d.description = "a LoRA (low-rank or difference weights, not a full model)";
        return d;
    }
    if (any_name(raw, [](const std::string& n) {
            return starts_with(n, "visual.") || starts_with(n, "textual.") || n == "log_scale" || n == "logit_scale" ||
                   n.find("vision_model.") != std::string::npos || n.find("text_model.") != std::string::npos;
        })) {
        d.kind = ComponentKind::CLIP;
        d.description = "a CLIP model (image/text encoder, used by image-to-video models)";
        return d;
    }
    for (const auto& n : raw.names()) {
        if (ends_with(n, "head.modulation")) {
            const std::string prefix = n.substr(0, n.size() - std::string("head.modulation").size());
            if (prefix.empty() || prefix.back() == '.') return detect_dit(raw, prefix);
        }
    }
    if (raw.contains("encoder.block.0.layer.0.SelfAttention.q.weight")) return detect_t5(raw, true);
    if (raw.contains("token_embedding.weight") && raw.contains("blocks.0.attn.q.weight")) return detect_t5(raw, false);
    if (raw.contains("decoder.conv1.weight") && raw.contains("conv2.weight")) {
        const auto conv2 = raw.info("conv2.weight").shape;
        const int64_t z = conv2.empty() ? 0 : conv2[0];
        d.kind = z == 16 ? ComponentKind::WanVAE21 : ComponentKind::WanVAEOther;
        d.description = z == 16 ? "a Wan2.1 VAE"
                        : z == 48 ? "a Wan2.2 VAE (z_dim 48, for Wan2.2 TI2V-5B)"
                                  : strfmt("a VAE with %lld latent channels", static_cast<long long>(z));
        return d;
    }
    d.description = "not a model file WanStudio recognises (no DiT, UMT5, VAE, CLIP or LoRA tensor names)";
    return d;
}

WanConfig infer_dit_config(const TensorStore& store, const std::string& source) {
    auto shape = [&](const std::string& name, size_t rank) {
        WAN_CHECK(store.contains(name), "%s: no tensor '%s': cannot infer the DiT's sizes", source.c_str(), name.c_str());
        const auto& s = store.info(name).shape;
        WAN_CHECK(s.size() == rank, "%s: tensor '%s' has %zu dimensions, expected %zu", source.c_str(), name.c_str(),
                  s.size(), rank);
        return s;
    };
    WanConfig c;  // upstream T2V defaults for what shapes do not tell (text_len, eps, norms)
    c.dim = shape("head.modulation", 3)[2];
    WAN_CHECK(c.dim > 0 && c.dim % 128 == 0,
              "%s: cannot infer the head count: dim %lld is not a multiple of 128 (the head size of every released "
              "Wan DiT); give the model's config.json (--dit-config FILE)",
              source.c_str(), static_cast<long long>(c.dim));
    c.num_heads = c.dim / 128;
    c.ffn_dim = shape("blocks.0.ffn.0.weight", 2)[0];
    std::set<int64_t> blocks;
    for (const auto& n : store.names()) {
        if (!starts_with(n, "blocks.")) continue;
        blocks.insert(std::strtoll(n.c_str() + 7, nullptr, 10));
    }
    c.num_layers = static_cast<int64_t>(blocks.size());
    WAN_CHECK(!blocks.empty() && *blocks.begin() == 0 && *blocks.rbegin() == c.num_layers - 1,
              "%s: DiT blocks are not numbered 0..%lld without gaps", source.c_str(),
              static_cast<long long>(c.num_layers - 1));
    const auto pe = shape("patch_embedding.weight", 5);  // [dim, in_dim, pt, ph, pw]
    c.in_dim = pe[1];
    c.patch_size = {pe[2], pe[3], pe[4]};
    const int64_t patch = pe[2] * pe[3] * pe[4];
    const auto hh = shape("head.head.weight", 2);  // [patch · out_dim, dim]
    WAN_CHECK(patch > 0 && hh[0] % patch == 0, "%s: head.head.weight rows %lld are not a multiple of the patch volume %lld",
              source.c_str(), static_cast<long long>(hh[0]), static_cast<long long>(patch));
    c.out_dim = hh[0] / patch;
    c.text_dim = shape("text_embedding.0.weight", 2)[1];
    c.freq_dim = shape("time_embedding.0.weight", 2)[1];
    c.validate(source + " (sizes inferred from tensor shapes)");
    return c;
}

namespace {

std::string stored_dtype_name(const StoreEntry& e) {
    if (e.float8 != Float8Format::None) return float8_format_name(e.float8);
    try {
        return dtype_to_safetensors(e.info.dtype);
    } catch (const Error&) {
        return c10::toString(e.info.dtype);
    }
}

std::string file_format(const std::string& path, const TensorStore& raw) {
    if (ends_with(path, ".index.json")) {
        std::set<std::string> files;
        for (const auto& n : raw.names()) files.insert(raw.info(n).file);
        return strfmt("sharded safetensors (%zu files)", files.size());
    }
    char magic[2] = {0, 0};
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (::read(fd, magic, 2) != 2) magic[0] = 0;
        ::close(fd);
    }
    return magic[0] == 'P' && magic[1] == 'K' ? "torch .pth (zip)" : "safetensors";
}

// The block Linear weights of a DiT view: blocks.N.{self_attn,cross_attn}.{q,k,v,o}.weight, blocks.N.ffn.{0,2}.weight.
bool is_block_linear_weight(const std::string& n, const TensorInfo& info) {
    return starts_with(n, "blocks.") && info.shape.size() == 2 && ends_with(n, ".weight");
}

// What --dit-dtype auto does with a DiT whose block Linear weights are all fp8 (dit Note [FP8 weights]).
std::string fp8_dit_note(const TensorStore& view) {
    uint64_t bytes = 0;
    size_t linears = 0, e5m2 = 0;
    for (const auto& n : view.names()) {
        const TensorInfo& info = view.info(n);
        if (!is_block_linear_weight(n, info)) continue;
        if (!view.stores_fp8(n)) return "";
        ++linears;
        if (!view.stores_e4m3(n)) ++e5m2;
        bytes += static_cast<uint64_t>(info.numel()) + 4 * static_cast<uint64_t>(info.shape[0]);  // codes + row scales
    }
    if (linears == 0) return "";
    const char* how = e5m2 == 0 ? ""
                      : e5m2 == linears
                          ? ", each row re-coded at load as e4m3 codes with a power-of-two scale (exact but for "
                            "values more than 2^16 times smaller than their row's largest, which the load counts)"
                          : ", the F8_E5M2 ones re-coded at load as e4m3 with a power-of-two scale per row";
    const char* format = e5m2 == 0 ? "F8_E4M3" : e5m2 == linears ? "F8_E5M2" : "F8_E4M3 and F8_E5M2";
    return strfmt("block Linear weights are %s: the DiT holds them as fp8 (--dit-dtype auto)%s, %.2f GB in %zu "
                  "weights (%llu bytes); --dit-dtype bf16 widens them at load", format, how,
                  static_cast<double>(bytes) / 1e9, linears, static_cast<unsigned long long>(bytes));
}

}  // namespace

FileReport inspect_file(const std::string& path) {
    const TensorStore raw = TensorStore::open(path);
    FileReport r;
    r.path = path;
    r.format = file_format(path, raw);
    const TensorStore::Impl& impl = raw.impl();
    for (const auto& n : raw.names()) {
        const StoreEntry& e = impl.entries.at(n);
        r.dtypes[stored_dtype_name(e)] += 1;
        r.tensors += 1;
        r.bytes += e.info.data_bytes;
        if (ends_with(n, ".scale_weight") || ends_with(n, ".weight_scale")) r.weight_scales += 1;
        if (n == "spiece_model") r.has_tokenizer = true;
        if (!is_auxiliary_tensor(n)) r.parameters += e.info.numel();
    }
    const DetectedComponent d = detect_component(raw);
    r.kind = d.kind;
    r.key_prefix = d.prefix;
    r.description = d.description;
    if (d.kind == ComponentKind::UMT5Encoder || d.kind == ComponentKind::T5Other)
        r.naming = d.hf_names ? "Hugging Face UMT5" : "upstream";
    else if (d.kind == ComponentKind::WanDiT || d.kind == ComponentKind::WanVAE21)
        r.naming = "upstream";
    if (d.kind == ComponentKind::WanDiT) {
        try {
            const WanConfig c = infer_dit_config(open_dit_file(path), path);
            r.description = strfmt("Wan2.1 T2V DiT %s: dim %lld, %lld layers, %lld heads, ffn %lld, in/out %lld/%lld",
                                   c.variant().c_str(), static_cast<long long>(c.dim),
                                   static_cast<long long>(c.num_layers), static_cast<long long>(c.num_heads),
                                   static_cast<long long>(c.ffn_dim), static_cast<long long>(c.in_dim),
                                   static_cast<long long>(c.out_dim));
        } catch (const Error& e) {
            r.notes.push_back(std::string("sizes not inferred: ") + e.what());
        }
        const std::string held = fp8_dit_note(open_dit_file(path));
        if (!held.empty()) r.notes.push_back(held);
    }
    if (raw.contains("scaled_fp8")) r.notes.push_back("scaled fp8 (marker tensor scaled_fp8)");
    if (raw.metadata().count("_quantization_metadata")) r.notes.push_back("header has _quantization_metadata");
    return r;
}

}  // namespace wan::io
