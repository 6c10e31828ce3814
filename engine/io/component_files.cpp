// Component views (renamed keys, decoded fp8) and ModelComponents. See Note [Component files].
#include "io/component_files.h"

#include "core/core.h"
#include "io/component_detect.h"
#include "io/store_impl.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <sys/stat.h>

namespace wan::io {

namespace {

bool is_file(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Quantisation formats that are "fp8 · scale" (per tensor or per row), as comfy_quant / _quantization_metadata
// name them.
void check_quant_format(const std::string& format, const std::string& where, const std::string& file) {
    static const char* const kKnown[] = {"float8_e4m3fn", "float8_e5m2", "float8_e4m3fn_scaled", "float8_e5m2_scaled"};
    for (const char* k : kKnown)
        if (format == k) return;
    WAN_THROW("%s: %s is quantised as '%s', which WanStudio cannot read (it reads fp8 weights with a per-tensor or "
              "per-row scale: float8_e4m3fn, float8_e5m2); use a bf16, fp16 or fp8 file of this model",
              file.c_str(), where.c_str(), format.c_str());
}

using LayerFormats = std::map<std::string, std::string>;  // layer → quantisation format

void check_comfy_quant(const TensorStore& raw, const std::string& name, LayerFormats& formats) {
    const at::Tensor bytes = raw.load(name);
    WAN_CHECK(bytes.scalar_type() == at::kByte, "%s: tensor '%s' is not the bytes of a JSON text", raw.source().c_str(),
              name.c_str());
    const std::string text(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), static_cast<size_t>(bytes.numel()));
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    WAN_CHECK(j.is_object() && j.contains("format") && j["format"].is_string(),
              "%s: tensor '%s' should hold JSON with a \"format\" string, got: %.200s", raw.source().c_str(), name.c_str(),
              text.c_str());
    const std::string layer = name.substr(0, name.size() - 12);
    check_quant_format(j["format"].get<std::string>(), "layer '" + layer + "'", raw.source());
    formats[layer] = j["format"].get<std::string>();
}

// Header metadata `_quantization_metadata`: {"format_version": …, "layers": {"<layer>": {"format": …}, …}}.
void check_quantization_metadata(const TensorStore& raw, LayerFormats& formats) {
    auto it = raw.metadata().find("_quantization_metadata");
    if (it == raw.metadata().end()) return;
    nlohmann::json j = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    WAN_CHECK(j.is_object(), "%s: header metadata _quantization_metadata is not a JSON object", raw.source().c_str());
    const nlohmann::json& layers = j.contains("layers") && j["layers"].is_object() ? j["layers"] : j;
    for (auto l = layers.begin(); l != layers.end(); ++l) {
        if (l.value().is_object() && l.value().contains("format") && l.value()["format"].is_string()) {
            check_quant_format(l.value()["format"].get<std::string>(), "layer '" + l.key() + "'", raw.source());
            formats[l.key()] = l.value()["format"].get<std::string>();
        }
    }
}

struct Quantisation {
    std::map<std::string, at::Tensor> scales;  ///< weight name → scale (float32, CPU)
    LayerFormats formats;                      ///< from comfy_quant tensors and _quantization_metadata
};

// Scales from `<layer>.scale_weight` or `<layer>.weight_scale`; formats checked (only fp8 · scale is read).
Quantisation collect_quantisation(const TensorStore& raw) {
    Quantisation q;
    check_quantization_metadata(raw, q.formats);
    auto& scales = q.scales;
    for (const auto& n : raw.names()) {
        if (ends_with(n, ".comfy_quant")) check_comfy_quant(raw, n, q.formats);
        std::string layer;
        if (ends_with(n, ".scale_weight")) layer = n.substr(0, n.size() - 13);
        else if (ends_with(n, ".weight_scale")) layer = n.substr(0, n.size() - 13);
        else continue;
        const std::string weight = layer + ".weight";
        WAN_CHECK(raw.contains(weight), "%s: scale '%s' has no weight '%s'", raw.source().c_str(), n.c_str(),
                  weight.c_str());
        WAN_CHECK(!scales.count(weight), "%s: weight '%s' has two scales", raw.source().c_str(), weight.c_str());
        scales[weight] = raw.load(n, c10::Device(c10::kCPU), at::kFloat);
    }
    return q;
}

// fp8 weights may be stored in a U8 container, their format named only by the quantisation descriptors.
Float8Format container_format(const StoreEntry& e, const std::string& name, const LayerFormats& formats) {
    if (e.float8 != Float8Format::None || e.info.dtype != at::kByte || !ends_with(name, ".weight")) return e.float8;
    auto f = formats.find(name.substr(0, name.size() - 7));
    if (f == formats.end()) return Float8Format::None;
    return f->second.rfind("float8_e5m2", 0) == 0 ? Float8Format::E5M2 : Float8Format::E4M3;
}

/// A view of `raw`: each tensor under `rename(name)` ("" drops it), fp8 values decoded, scales applied.
TensorStore make_view(const TensorStore& raw, const std::function<std::string(const std::string&)>& rename) {
    const Quantisation q = collect_quantisation(raw);
    const auto& scales = q.scales;
    auto view = std::make_unique<TensorStore::Impl>();
    view->source = raw.source();
    view->metadata = raw.metadata();
    const TensorStore::Impl& from = raw.impl();
    for (const auto& n : raw.names()) {
        if (is_auxiliary_tensor(n)) continue;
        const std::string to = rename(n);
        if (to.empty()) continue;
        StoreEntry e = from.entries.at(n);
        e.info.name = to;
        e.float8 = container_format(e, n, q.formats);
        auto s = scales.find(n);
        if (e.float8 != Float8Format::None || s != scales.end()) {
            auto d = std::make_shared<EntryDecoding>();
            d->float8 = e.float8;
            if (s != scales.end()) d->scale = s->second;
            if (e.float8 != Float8Format::None) e.info.dtype = at::kBFloat16;  // holds every fp8 value exactly
            e.float8 = Float8Format::None;
            e.decoding = std::move(d);
        }
        view->add(std::move(e));
    }
    return TensorStore(std::move(view));
}

std::string not_this_component(const std::string& path, const DetectedComponent& d, const char* wanted,
                               const char* hint) {
    return strfmt("%s is %s, not %s%s", path.c_str(), d.description.c_str(), wanted, hint);
}

const char* option_for(ComponentKind kind) {
    switch (kind) {
        case ComponentKind::WanDiT: return "; pass it with --dit";
        case ComponentKind::UMT5Encoder: return "; pass it with --t5";
        case ComponentKind::WanVAE21: return "; pass it with --vae";
        case ComponentKind::WanDiTI2V:
        case ComponentKind::CLIP: return "; WanStudio runs text-to-video only";
        default: return "";
    }
}

// Hugging Face UMT5 encoder names → upstream T5Encoder names ("" = not part of the encoder we run).
std::string umt5_upstream_name(const std::string& n, const std::string& source) {
    if (n == "shared.weight") return "token_embedding.weight";
    if (n == "encoder.final_layer_norm.weight") return "norm.weight";
    if (starts_with(n, "decoder.") || n == "lm_head.weight" || n == "encoder.embed_tokens.weight") return "";
    static const std::pair<const char*, const char*> kLeaves[] = {
        {"layer.0.layer_norm.weight", "norm1.weight"},
        {"layer.0.SelfAttention.q.weight", "attn.q.weight"},
        {"layer.0.SelfAttention.k.weight", "attn.k.weight"},
        {"layer.0.SelfAttention.v.weight", "attn.v.weight"},
        {"layer.0.SelfAttention.o.weight", "attn.o.weight"},
        {"layer.0.SelfAttention.relative_attention_bias.weight", "pos_embedding.embedding.weight"},
        {"layer.1.layer_norm.weight", "norm2.weight"},
        {"layer.1.DenseReluDense.wi_0.weight", "ffn.gate.0.weight"},
        {"layer.1.DenseReluDense.wi_1.weight", "ffn.fc1.weight"},
        {"layer.1.DenseReluDense.wo.weight", "ffn.fc2.weight"},
    };
    if (starts_with(n, "encoder.block.")) {
        const size_t dot = n.find('.', 14);
        if (dot != std::string::npos) {
            const std::string index = n.substr(14, dot - 14);
            const std::string leaf = n.substr(dot + 1);
            for (const auto& [hf, up] : kLeaves)
                if (leaf == hf) return "blocks." + index + "." + up;
        }
    }
    WAN_THROW("%s: tensor '%s' is not part of a UMT5 encoder in Hugging Face names", source.c_str(), n.c_str());
}

std::string read_file_bytes(const std::string& path) {
    MappedFile f(path);
    return std::string(reinterpret_cast<const char*>(f.data()), f.size());
}

}  // namespace

TensorStore open_dit_file(const std::string& path) {
    const TensorStore raw = TensorStore::open(path);
    const DetectedComponent d = detect_component(raw);
    if (d.kind != ComponentKind::WanDiT)
        throw Error(not_this_component(path, d, "a Wan2.1 text-to-video DiT", option_for(d.kind)));
    size_t ignored = 0;
    TensorStore view = make_view(raw, [&](const std::string& n) {
        if (!starts_with(n, d.prefix)) {
            ++ignored;  // other parts of an all-in-one checkpoint (text encoder, VAE)
            return std::string();
        }
        return n.substr(d.prefix.size());
    });
    if (ignored) WAN_LOG_INFO("%s: %zu tensor(s) outside '%s' ignored", path.c_str(), ignored, d.prefix.c_str());
    return view;
}

TensorStore open_t5_file(const std::string& path) {
    const TensorStore raw = TensorStore::open(path);
    const DetectedComponent d = detect_component(raw);
    if (d.kind != ComponentKind::UMT5Encoder)
        throw Error(not_this_component(path, d, "a UMT5 text encoder", option_for(d.kind)));
    if (!d.hf_names) return make_view(raw, [](const std::string& n) { return n; });
    const bool has_shared = raw.contains("shared.weight");
    return make_view(raw, [&](const std::string& n) {
        // Files without `shared` keep the embedding (the same tensor, tied in HF) under the encoder.
        if (!has_shared && n == "encoder.embed_tokens.weight") return std::string("token_embedding.weight");
        return umt5_upstream_name(n, path);
    });
}

TensorStore open_vae_file(const std::string& path) {
    const TensorStore raw = TensorStore::open(path);
    const DetectedComponent d = detect_component(raw);
    if (d.kind != ComponentKind::WanVAE21)
        throw Error(not_this_component(path, d, "the Wan2.1 VAE",
                                       d.kind == ComponentKind::WanVAEOther
                                           ? "; Wan2.1 models need the Wan2.1 VAE (Wan2.1_VAE.pth or wan_2.1_vae.safetensors)"
                                           : option_for(d.kind)));
    return make_view(raw, [](const std::string& n) { return n; });
}

namespace {
constexpr const char* kHighNoiseDir = "high_noise_model";
constexpr const char* kLowNoiseDir = "low_noise_model";

bool is_dir(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

/// One expert's files in `dir/sub`: its weights (index or single file) and config.json; what is absent goes
/// to `missing`, naming the expert. Note [Two-expert layout].
void locate_expert(const std::string& dir, const char* sub, const char* what, std::string& weights,
                   std::string& config, std::vector<std::string>& missing) {
    const std::string folder = dir + "/" + sub;
    if (!is_dir(folder)) {
        missing.push_back(strfmt("%s/ (the %s expert: config.json and %s or its shards and index)", sub, what,
                                 CheckpointDir::kDitName));
        return;
    }
    for (const char* name : {CheckpointDir::kDitIndexName, CheckpointDir::kDitName})
        if (weights.empty() && is_file(folder + "/" + name)) weights = folder + "/" + name;
    if (weights.empty())
        missing.push_back(strfmt("%s/%s (the %s expert's weights, or its shards and %s)", sub, CheckpointDir::kDitName,
                                 what, CheckpointDir::kDitIndexName));
    if (is_file(folder + "/" + CheckpointDir::kConfigName)) config = folder + "/" + CheckpointDir::kConfigName;
    else missing.push_back(strfmt("%s/%s (the %s expert's hyper-parameters)", sub, CheckpointDir::kConfigName, what));
}

void locate_experts(const std::string& dir, ModelComponents& m, std::vector<std::string>& missing) {
    m.two_experts = true;
    locate_expert(dir, kHighNoiseDir, "high-noise", m.high_noise_dit_path, m.high_noise_config_path, missing);
    locate_expert(dir, kLowNoiseDir, "low-noise", m.dit_path, m.dit_config_path, missing);
}

/// --dit-high / --dit-low (Note [Expert files]): the experts' weights from the files; their config.json
/// candidates from the folder (each expert's own in the A14B layout, else the folder's config.json), which
/// ModelComponents::dit_config() keeps only where they fit the file's shapes. --dit-config is set by locate().
void pick_expert_files(const ComponentPaths& o, const std::string& dir, bool expert_folder, ModelComponents& m,
                       std::vector<std::string>& missing) {
    m.two_experts = true;
    auto file = [&](const std::string& path, const char* option, std::string& out) {
        if (is_file(path)) out = path;
        else missing.push_back(strfmt("%s %s: file not found", option, path.c_str()));
    };
    file(o.dit_high, "--dit-high", m.high_noise_dit_path);
    file(o.dit_low, "--dit-low", m.dit_path);
    if (!o.dit_config.empty() || dir.empty()) return;
    auto existing = [](const std::string& p) { return is_file(p) ? p : std::string(); };
    if (expert_folder) {
        m.high_noise_config_path = existing(dir + "/" + kHighNoiseDir + "/" + CheckpointDir::kConfigName);
        m.dit_config_path = existing(dir + "/" + kLowNoiseDir + "/" + CheckpointDir::kConfigName);
    } else {
        m.dit_config_path = m.high_noise_config_path = existing(dir + "/" + CheckpointDir::kConfigName);
    }
}

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

TensorStore open_expert_file(const std::string& path, const char* option) {
    try {
        return open_dit_file(path);
    } catch (const Error& e) {
        throw Error(std::string(option) + ": " + e.what(), e.where());
    }
}

/// The two expert files hold one architecture: the same tensor names with the same shapes (dtypes may
/// differ: an fp8 high-noise file next to a bf16 low-noise one is fine). Reads headers only.
void check_expert_files_match(const std::string& high, const std::string& low) {
    const TensorStore h = open_expert_file(high, "--dit-high"), l = open_expert_file(low, "--dit-low");
    const std::string pair = "--dit-high " + high + " and --dit-low " + low + " are not two experts of one model";
    for (const auto& n : h.names()) {
        WAN_CHECK(l.contains(n), "%s: tensor '%s' is only in the high-noise file", pair.c_str(), n.c_str());
        WAN_CHECK(h.info(n).shape == l.info(n).shape, "%s: tensor '%s' is %s in the high-noise file and %s in the "
                  "low-noise file", pair.c_str(), n.c_str(), shape_text(h.info(n).shape).c_str(),
                  shape_text(l.info(n).shape).c_str());
    }
    for (const auto& n : l.names())
        WAN_CHECK(h.contains(n), "%s: tensor '%s' is only in the low-noise file", pair.c_str(), n.c_str());
    // ComfyUI's names say which expert a file is; a swap would run each expert on the other's timesteps.
    auto base = [](const std::string& p) { return p.substr(p.find_last_of('/') + 1); };
    if (base(high).find("low_noise") != std::string::npos || base(low).find("high_noise") != std::string::npos)
        WAN_LOG_WARN("--dit-high %s / --dit-low %s: the file names suggest the experts are swapped (the high-noise "
                     "expert runs the first, noisiest steps)", high.c_str(), low.c_str());
}

/// An explicit config (`given`), a DiT from its folder, or an override file: the candidate config.json when
/// its sizes match the file's shapes, else sizes inferred from the shapes.
WanConfig config_for(const std::string& dit_path, const std::string& config_path, bool overridden, bool given) {
    if (!overridden || given) return WanConfig::from_json_file(config_path);
    const TensorStore dit = open_dit_file(dit_path);
    if (!config_path.empty()) {
        // The folder's config describes the override file only if its sizes match the file's shapes.
        const WanConfig folder = WanConfig::from_json_file(config_path);
        bool fits = true;
        for (const auto& spec : std::vector<std::pair<std::string, std::vector<int64_t>>>{
                 {"head.modulation", {1, 2, folder.dim}},
                 {"blocks.0.ffn.0.weight", {folder.ffn_dim, folder.dim}},
                 {"text_embedding.0.weight", {folder.dim, folder.text_dim}},
                 {"blocks." + std::to_string(folder.num_layers - 1) + ".modulation", {1, 6, folder.dim}}}) {
            fits = fits && dit.contains(spec.first) && dit.info(spec.first).shape == spec.second;
        }
        fits = fits && !dit.contains("blocks." + std::to_string(folder.num_layers) + ".modulation");
        if (fits) return folder;
        WAN_LOG_INFO("%s does not describe %s; sizes inferred from its shapes", config_path.c_str(), dit_path.c_str());
    }
    return infer_dit_config(dit, dit_path);
}
}  // namespace

WanConfig ModelComponents::high_noise_dit_config() const {
    WAN_CHECK(two_experts, "high_noise_dit_config: %s is not a two-expert checkpoint", root.c_str());
    return config_for(high_noise_dit_path, high_noise_config_path, dit_overridden, dit_config_given);
}

ModelComponents ModelComponents::locate(const std::string& ckpt_dir, const ComponentPaths& o) {
    ModelComponents m;
    std::string dir = ckpt_dir;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    struct stat st {};
    WAN_CHECK(dir.empty() || (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)),
              "checkpoint directory '%s' does not exist or is not a directory", ckpt_dir.c_str());
    m.root = dir;
    std::vector<std::string> missing;
    // One component: the override (which must exist), else the folder's file.
    auto pick = [&](const std::string& given, const char* option, const std::vector<std::string>& names,
                    const char* what, std::string& out) {
        if (!given.empty()) {
            if (is_file(given)) out = given;
            else missing.push_back(strfmt("%s %s: file not found", option, given.c_str()));
            return;
        }
        for (const auto& n : names) {
            if (!dir.empty() && is_file(dir + "/" + n)) {
                out = dir + "/" + n;
                return;
            }
        }
        missing.push_back(dir.empty() ? strfmt("%s (give %s FILE or --ckpt-dir)", what, option)
                                      : strfmt("%s (%s in the folder, or %s FILE)", what, names.front().c_str(), option));
    };
    const std::string expert_problem = o.expert_files_problem();
    WAN_CHECK(expert_problem.empty(), "%s", expert_problem.c_str());
    const bool expert_files = o.has_expert_files();
    const bool expert_folder = !dir.empty() && (is_dir(dir + "/" + kHighNoiseDir) || is_dir(dir + "/" + kLowNoiseDir));
    const bool two_experts = expert_files || (o.dit.empty() && expert_folder);
    if (expert_files) pick_expert_files(o, dir, expert_folder, m, missing);
    else if (two_experts) locate_experts(dir, m, missing);
    else pick(o.dit, "--dit", {CheckpointDir::kDitIndexName, CheckpointDir::kDitName}, "DiT weights", m.dit_path);
    pick(o.t5, "--t5", {CheckpointDir::kT5Name}, "UMT5-XXL text encoder", m.t5_path);
    pick(o.vae, "--vae", {CheckpointDir::kVaeName}, "video VAE", m.vae_path);
    m.dit_overridden = !o.dit.empty() || expert_files;
    if (!o.dit_config.empty()) {
        m.dit_config_given = true;
        if (is_file(o.dit_config)) m.dit_config_path = o.dit_config;
        else missing.push_back(strfmt("--dit-config %s: file not found", o.dit_config.c_str()));
        if (expert_files) m.high_noise_config_path = m.dit_config_path;  // one architecture for both experts
    } else if (two_experts) {
        // the experts' own config.json files (locate_experts), or candidates for the files (pick_expert_files)
    } else if (!dir.empty() && is_file(dir + "/" + CheckpointDir::kConfigName)) {
        m.dit_config_path = dir + "/" + CheckpointDir::kConfigName;
    } else if (!m.dit_overridden) {
        missing.push_back(strfmt("%s (DiT hyper-parameters)", CheckpointDir::kConfigName));
    }
    if (!o.tokenizer.empty()) {
        if (is_file(o.tokenizer)) m.tokenizer_path = o.tokenizer;
        else missing.push_back(strfmt("--tokenizer %s: file not found", o.tokenizer.c_str()));
    } else if (o.t5.empty() && !dir.empty() && is_file(dir + "/" + CheckpointDir::kTokenizerName)) {
        m.tokenizer_path = dir + "/" + CheckpointDir::kTokenizerName;
    } else if (!m.t5_path.empty() && TensorStore::open(m.t5_path).contains("spiece_model")) {
        m.tokenizer_path.clear();  // the T5 file's own
    } else if (!dir.empty() && is_file(dir + "/" + CheckpointDir::kTokenizerName)) {
        m.tokenizer_path = dir + "/" + CheckpointDir::kTokenizerName;
    } else if (!m.t5_path.empty()) {
        missing.push_back(strfmt("UMT5 tokenizer (%s has no spiece_model inside; give --tokenizer spiece.model)",
                                 m.t5_path.c_str()));
    }
    if (!missing.empty()) {
        std::string msg = dir.empty() ? std::string("model files incomplete; missing:")
                                      : "checkpoint directory '" + dir + "' is incomplete; missing:";
        for (const auto& s : missing) msg += "\n  - " + s;
        msg += expert_files ? "\n(Wan2.2 T2V-A14B from single files: --dit-high and --dit-low, with the T5, VAE and "
                              "tokenizer from --ckpt-dir or --t5, --vae and --tokenizer)"
               : two_experts ? "\n(expected the layout of Wan-AI/Wan2.2-T2V-A14B: high_noise_model/ and low_noise_model/, "
                               "each with config.json and its safetensors, and the T5, VAE and tokenizer at the top)"
                             : "\n(expected the layout of Wan-AI/Wan2.1-T2V-1.3B or -14B, or single files for the missing parts)";
        throw Error(msg);
    }
    if (expert_files) check_expert_files_match(m.high_noise_dit_path, m.dit_path);
    return m;
}

WanConfig ModelComponents::dit_config() const {
    return config_for(dit_path, dit_config_path, dit_overridden, dit_config_given);
}

std::string ModelComponents::tokenizer_bytes() const {
    if (!tokenizer_path.empty()) return read_file_bytes(tokenizer_path);
    const TensorStore t5 = TensorStore::open(t5_path);
    WAN_CHECK(t5.contains("spiece_model"), "%s has no tokenizer inside (tensor spiece_model); give --tokenizer FILE",
              t5_path.c_str());
    const at::Tensor bytes = t5.load("spiece_model");
    WAN_CHECK(bytes.scalar_type() == at::kByte && bytes.dim() == 1,
              "%s: tensor spiece_model should be U8 bytes of a SentencePiece model", t5_path.c_str());
    return std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), static_cast<size_t>(bytes.numel()));
}

std::string ModelComponents::tokenizer_source() const {
    return tokenizer_path.empty() ? "spiece_model in " + t5_path : tokenizer_path;
}

}  // namespace wan::io
